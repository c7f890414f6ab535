/* The alert document and what goes into it (rules/alertdoc.c, docs/alerts.md): the
 * sample lines kept with a group's state ({"first": [...], "last": [...]}) merged across
 * batches, the search link (issue 12), the document itself, and the alert_state
 * match_times array text. Pure: no I/O, no globals; source names come through the
 * caller's function. Writer thread (sl_eval_commit) and notifier thread (sl_eval_tick),
 * each with its own context. */
#ifndef SLUICE_ALERTDOC_H
#define SLUICE_ALERTDOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/alert.h"
#include "sluice/buf.h"
#include "sluice/err.h"
#include "sluice/evalgroup.h"
#include "sluice/rule.h"

struct cJSON;

/* The name of source id into out (cap bytes, NUL-terminated); false when unknown. */
typedef bool (*sl_alertdoc_name_fn)(void *arg, int64_t id, char *out, size_t cap);

struct sl_alertdoc_ctx {
    sl_alertdoc_name_fn name; /* source names (rules/eval.c: the source table) */
    void *name_arg;
    const char *public_url; /* prefix of search links, e.g. "https://logs.example.com" */
    struct sl_buf *scratch; /* working space the caller owns; clobbered by every call */
};

#define SL_ALERTDOC_URL_SOURCES 8 /* source= parameters of a search link at most */

/* us (µs since the epoch) as RFC 3339 UTC with microseconds: "2026-12-07T00:49:05.000123Z". */
void sl_alertdoc_rfc3339(int64_t us, char out[40]);
/* "info", "warning", "error", "critical". */
const char *sl_alertdoc_severity(enum sl_severity s);
/* The name of source id, or the id in decimal when it has none. */
void sl_alertdoc_source_name(const struct sl_alertdoc_ctx *cx, int64_t id, char *out, size_t cap);

/* The sample lines to keep with a group: the first and the last SL_EVALGROUP_SAMPLES
 * matching lines since the window (or the alert) began, across batches. stored: the
 * state's lines as stored (JSON text) or NULL; a: this batch's group or NULL; samples
 * with a time below min_t (µs) slid out of a threshold window and are dropped. Each
 * sample carries "t" (received_at in µs, internal). Caller frees with cJSON_Delete;
 * NULL when memory ran out. */
struct cJSON *sl_alertdoc_lines(const struct sl_alertdoc_ctx *cx, const char *stored,
                                const struct sl_evalgroup *a, double min_t);

/* The alert's search link appended to url: GET /api/v1/search on the public URL with
 * the quoted lines' sources (at most SL_ALERTDOC_URL_SOURCES), a window from one second
 * before the first quoted line to one second after the last, and the rule's pattern as
 * a query when the language can express it. Without quoted lines: the group's source
 * (absence, group_by source) and the rule's window before the alert fired. SL_ETOOBIG
 * past url's cap (url then holds a prefix). */
SL_MUSTCHECK int sl_alertdoc_search_url(const struct sl_alertdoc_ctx *cx, const struct sl_rule *r,
                                        const char *group, const struct sl_alert_state *st,
                                        enum sl_alert_event what, const struct cJSON *kept,
                                        int64_t now_us, struct sl_buf *url);

/* The alert document (docs/alerts.md) of event `what` of rule r (database id rule_id),
 * quoting kept (as from sl_alertdoc_lines, "t" stripped). Caller frees the string;
 * NULL when memory ran out. */
char *sl_alertdoc_doc(const struct sl_alertdoc_ctx *cx, const struct sl_rule *r, int rule_id,
                      const char *group, const struct sl_alert_state *st, enum sl_alert_event what,
                      const struct cJSON *kept, int64_t now_us);

/* alert_state.match_times as PostgreSQL array text ("{1,2,3}") into st->times (owned
 * by st: sl_alert_state_free) and st->ntimes; reading stops at the first non-number.
 * SL_ENOMEM. */
SL_MUSTCHECK int sl_alertdoc_times_parse(const char *text, struct sl_alert_state *st);
/* st's times as array text with its NUL, appended to b. SL_ETOOBIG past b's cap. */
SL_MUSTCHECK int sl_alertdoc_times_text(const struct sl_alert_state *st, struct sl_buf *b);

#endif
