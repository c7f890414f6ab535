/* The context sluice adds around a crash before it becomes a Sentry event
 * (rules/crashctx.c, pure; docs/crashes.md). The crash thread (rules/crashd.c) reads
 * stored lines and rows; these helpers turn them into the strings of struct
 * sl_crash_ctx (include/sluice/crash.h): the release of a "Release vN created" line, the
 * stable event id of a crash, the Heroku platform lines as Sentry breadcrumbs, the
 * search link back to the stored lines, the dyno type of a procid.
 *
 * Pure: no I/O, no globals; the caller owns every buffer. */
#ifndef SLUICE_CRASHCTX_H
#define SLUICE_CRASHCTX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/buf.h"
#include "sluice/err.h"
#include "sluice/str.h"

/* The version sluice reports as its Sentry client: sentry_client=sluice/<this>. */
#define SL_CRASHCTX_CLIENT_VERSION "0.11.0"

/* "Release v42 created by user dev@example.com" -> "v42" in out (NUL-terminated).
 * Returns false (out "") when msg is no such line or the release does not fit. */
bool sl_crashctx_release(struct sl_str msg, char *out, size_t cap);

/* The event id of the crash whose first stored line is first_id in (source_id, procid):
 * 32 lowercase hex characters of a SHA-256, so every node and every retry names one
 * crash with one id (Sentry drops a second event with the same id). */
void sl_crashctx_event_id(int64_t source_id, struct sl_str procid, int64_t first_id,
                          char out[33]);

/* The dyno type of a procid: "web.1" -> "web", "worker.12" -> "worker", "router" ->
 * "router", "run.1234" -> "run". At most cap - 1 bytes. */
void sl_crashctx_dyno_type(struct sl_str procid, char *out, size_t cap);

/* Breadcrumbs: call begin on an empty buffer, add per Heroku platform line (its own
 * time in µs and its text) in time order, then end. Levels: "error" for R10/R14/R15/H10
 * and "State changed ... to crashed", "info" otherwise ("Process exited with status 0"
 * is info, any other status warning). The text is cut at 1 000 bytes. begin/add/end
 * return 0 or SL_ETOOBIG (the buffer's cap). */
SL_MUSTCHECK int sl_crashctx_crumbs_begin(struct sl_buf *b);
SL_MUSTCHECK int sl_crashctx_crumbs_add(struct sl_buf *b, int64_t ts_us, struct sl_str msg);
SL_MUSTCHECK int sl_crashctx_crumbs_end(struct sl_buf *b);
/* The level a platform line gets as a breadcrumb. */
const char *sl_crashctx_crumb_level(struct sl_str msg);

/* The search link of a crash appended to url (NUL-terminated): GET /api/v1/search on
 * public_url for the source, the procid as a query, from one second before the first
 * line to one second after the last, oldest first. */
SL_MUSTCHECK int sl_crashctx_search_url(const char *public_url, const char *source_name,
                                        struct sl_str procid, int64_t first_us, int64_t last_us,
                                        struct sl_buf *url);

#endif
