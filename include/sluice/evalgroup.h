/* A batch's rule matches grouped per (rule, group) (rules/evalgroup.c): how many lines
 * matched, their receive times for threshold windows, the first and the last few sample
 * lines, and the order groups are locked in. Pure apart from the allocation of the set
 * it owns; no I/O, no globals. Writer thread (rules/eval.c feeds it and writes the
 * groups' state in the batch's transaction). */
#ifndef SLUICE_EVALGROUP_H
#define SLUICE_EVALGROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/entry.h"
#include "sluice/err.h"
#include "sluice/row.h"
#include "sluice/str.h"

#define SL_EVALGROUP_SAMPLES 3    /* first and last sample lines kept per group */
#define SL_EVALGROUP_MAX 4096     /* groups per batch; matches of more are counted as dropped */
#define SL_EVALGROUP_KEY_MAX 1024 /* a group key made valid UTF-8 keeps this many bytes */

/* One matching line as an alert quotes it. Slices borrow the batch's buffers: valid
 * until the batch commits. */
struct sl_eval_sample {
    int64_t id, received_us, source_id;
    struct sl_str host, app, procid, msg;
    int severity, facility; /* severity -1: the line did not parse as syslog */
    bool set;
};

/* The matches of one (rule, group) in this batch. */
struct sl_evalgroup {
    uint32_t rule;     /* index in the rule set */
    char *group;       /* owned, NUL-terminated */
    int64_t source_id; /* of the last match */
    int64_t *times;    /* owned; receive times, at most SL_RULE_MAX_COUNT */
    size_t ntimes, cap;
    uint64_t n; /* matches */
    struct sl_eval_sample first[SL_EVALGROUP_SAMPLES];
    struct sl_eval_sample last[SL_EVALGROUP_SAMPLES]; /* ring, see sl_evalgroup_last */
    size_t nlast;
};

/* The groups of one batch. Zero-initialise; sl_evalgroups_free releases. */
struct sl_evalgroups {
    struct sl_evalgroup *g;
    size_t n, cap;
    uint64_t dropped; /* matches of groups past SL_EVALGROUP_MAX, since the set was made */
};

/* Forget every group (keeps the array). */
void sl_evalgroups_clear(struct sl_evalgroups *s);
/* Release everything. Accepts a zeroed set. */
void sl_evalgroups_free(struct sl_evalgroups *s);

/* The group (rule, key), created when new; the newest groups are searched first.
 * Returns NULL when SL_EVALGROUP_MAX groups exist (counted in dropped) or memory ran
 * out. Borrowed: valid until the next find, clear or sort. */
struct sl_evalgroup *sl_evalgroups_find(struct sl_evalgroups *s, uint32_t rule, struct sl_str key);

/* The sample of line row_id of entry e (what building its row parsed). */
void sl_eval_sample_make(struct sl_eval_sample *smp, int64_t row_id, const struct sl_entry *e,
                         const struct sl_row_info *info);

/* Count one match of the group: its time (while fewer than SL_RULE_MAX_COUNT are held;
 * a time that finds no memory is not kept) and the sample (one of the first
 * SL_EVALGROUP_SAMPLES, else into the ring of the last ones). */
void sl_evalgroup_add(struct sl_evalgroup *a, const struct sl_eval_sample *smp);

/* How many of the last samples the ring holds, and the i-th of them, oldest first. */
size_t sl_evalgroup_nlast(const struct sl_evalgroup *a);
const struct sl_eval_sample *sl_evalgroup_last(const struct sl_evalgroup *a, size_t i);

/* Make every group key valid UTF-8 (group keys are text columns; a key that was not
 * keeps its first SL_EVALGROUP_KEY_MAX bytes, repaired), then sort the groups by
 * (rule_ids[rule], key): the order every node locks alert_state rows in. rule_ids is
 * indexed by rule. A key that cannot be repaired for lack of memory stays as it is. */
void sl_evalgroups_sort(struct sl_evalgroups *s, const int *rule_ids);

#endif
