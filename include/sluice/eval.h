/* Alert evaluation against PostgreSQL (rules/eval.c): the glue between the matcher,
 * the alert state machine and the tables alert_state, alerts and alert_outbox.
 *
 * The writer thread owns one sl_eval: per batch it feeds every stored line
 * (sl_eval_line) and, inside the batch's transaction, calls sl_eval_commit, which
 * row-locks each (rule, group) touched, steps its state, and writes the alerts and the
 * outbox rows of every event. The notifier thread owns another, for sl_eval_tick
 * (resolve after silence, absence) in transactions of its own. Row locks taken in a
 * fixed order make several nodes agree: a condition fires once per group. */
#ifndef SLUICE_EVAL_H
#define SLUICE_EVAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "sluice/entry.h"
#include "sluice/err.h"
#include "sluice/row.h"

struct pg_conn;
struct sl_sources;
struct sl_eval;
struct sl_ruleset;

/* Bumped (by the maintenance thread) whenever NOTIFY sluice_rules arrives: holders of
 * an sl_eval reload when it differs from what they loaded. */
extern _Atomic unsigned sl_rules_version;

/* public_url makes search links in alerts. Caller frees with sl_eval_free. */
SL_MUSTCHECK int sl_eval_new(struct sl_sources *sources, const char *public_url,
                             struct sl_eval **out);
void sl_eval_free(struct sl_eval *ev);

/* (Re)load rules and destinations from PostgreSQL and compile them. With
 * resolve_env, destination secrets are read from the environment. A set that does
 * not compile keeps the previous one (logged). */
SL_MUSTCHECK int sl_eval_load(struct sl_eval *ev, struct pg_conn *c, bool resolve_env);
/* The rules in force (NULL when none): borrowed. */
const struct sl_ruleset *sl_eval_rules(const struct sl_eval *ev);
size_t sl_eval_nrules(const struct sl_eval *ev);

/* Forget the aggregation of the previous (possibly failed) batch. When the source table
 * changed since the rules were compiled and a source name of a rule now has another id
 * (a source added after the rules), compile the matcher again first: call it after the
 * batch's records were read, so a line of a new source meets its rules. */
void sl_eval_begin(struct sl_eval *ev);
/* One stored line (row id, its entry, what building the row parsed). Slices must stay
 * valid until sl_eval_commit. */
void sl_eval_line(struct sl_eval *ev, int64_t row_id, const struct sl_entry *e,
                  const struct sl_row_info *info);
/* A crash (the crash thread, docs/alerts.md "Crash rules"): info->sl.msg is "Type: value"
 * then the trace's lines; only rules "on": "crashes" see it. row_id: its last line. */
void sl_eval_crash(struct sl_eval *ev, int64_t row_id, const struct sl_entry *e,
                   const struct sl_row_info *info);
/* Inside the caller's transaction: lock, step and store the state of every group
 * touched; insert alerts and outbox rows; NOTIFY sluice_outbox. Returns the number of
 * events (>= 0) or SL_EDB. */
int sl_eval_commit(struct sl_eval *ev, struct pg_conn *c, int64_t now_us);

/* Resolve quiet firing alerts and fire absence alerts, in a transaction of its own.
 * Returns the number of events or SL_EDB. */
int sl_eval_tick(struct sl_eval *ev, struct pg_conn *c, int64_t now_us);

#endif
