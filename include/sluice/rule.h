/* Alert rules and destinations as sluice holds them in memory: what `sluice rules
 * apply FILE.json` stores (rules/ruleset.c parses and validates the file), what the
 * matcher compiles (rules/match.c), what the alert state machine evaluates
 * (rules/alert.c) and what the notifier delivers to (rules/deliver.c, payload.c).
 * See docs/alerts.md. Plain data: the owner of a struct sl_ruleset frees it with
 * sl_ruleset_free. */
#ifndef SLUICE_RULE_H
#define SLUICE_RULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SL_RULE_NAME_MAX 63
#define SL_RULE_MAX_NOTIFY 8
#define SL_RULE_MAX_SOURCES 64
#define SL_RULE_MAX_COUNT 10000 /* threshold counts above this are refused */

enum sl_condition { SL_COND_MATCH = 0, SL_COND_THRESHOLD, SL_COND_ABSENCE };
enum sl_group_by { SL_GROUP_NONE = 0, SL_GROUP_SOURCE, SL_GROUP_PROCID, SL_GROUP_CAPTURE };
enum sl_severity { SL_SEV_INFO = 0, SL_SEV_WARNING, SL_SEV_ERROR, SL_SEV_CRITICAL };
enum sl_dest_type { SL_DEST_WEBHOOK = 0, SL_DEST_SLACK, SL_DEST_PAGERDUTY, SL_DEST_PAPERTRAIL };

struct sl_rule {
    char name[SL_RULE_NAME_MAX + 1];
    char *pattern;           /* PCRE2 pattern (UTF mode), required */
    char *exclude;           /* PCRE2 pattern or NULL: a line matching it never counts */
    bool caseless;           /* "flags": "i" */
    /* scope: all empty = every line */
    size_t nsources;
    char *sources[SL_RULE_MAX_SOURCES]; /* source names */
    char *app;               /* glob on APP-NAME, or NULL */
    char *procid;            /* glob on PROCID (web.*), or NULL */
    enum sl_condition condition;
    uint32_t count;          /* threshold: at least count matches ... */
    uint32_t window;         /* ... in window seconds; absence: silence for window s */
    enum sl_group_by group_by;
    char *group_capture;     /* named capture group when group_by = capture */
    uint32_t cooldown;       /* seconds after firing before the same group fires again */
    uint32_t resolve_after;  /* seconds without a match before a firing alert resolves
                                (threshold, match); 0 = never auto-resolve */
    enum sl_severity severity;
    size_t nnotify;
    char *notify[SL_RULE_MAX_NOTIFY]; /* destination names */
    char *pack;              /* "heroku" when it came from a built-in pack, else NULL */
    bool on_crashes;         /* "on": "crashes": matches crashes joined by the crash thread
                                ("Type: value" then the trace), never stored lines
                                (docs/alerts.md, "Crash rules") */
};

struct sl_destination {
    char name[SL_RULE_NAME_MAX + 1];
    enum sl_dest_type type;
    char *url;         /* webhook/slack/papertrail URL; PagerDuty base URL
                          (default https://events.pagerduty.com) */
    char *secret;      /* webhook signing secret "whsec_..." (resolved from secret_env) */
    char *routing_key; /* PagerDuty routing key (resolved from routing_key_env) */
    /* as written in the file, so `rules apply` stores env references, not secrets */
    char *url_env, *secret_env, *routing_key_env;
};

struct sl_ruleset {
    size_t nrules;
    struct sl_rule *rules;
    size_t ndests;
    struct sl_destination *dests;
};

void sl_ruleset_free(struct sl_ruleset *rs);

#endif
