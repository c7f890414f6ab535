/* The disk guard's decisions (docs/retention.md, "Disk guard"), as pure functions: the
 * used figure from what was measured (the database's size against SLUICE_DISK_BUDGET,
 * the filesystem of PostgreSQL's data directory), the state (ok, evicting, refusing) with
 * its hysteresis, how many bytes must go to get back under the evict mark, how many rows
 * of a day partition that is, and which source's rows go next (the oldest first). No I/O,
 * no globals; drain/evict.c measures and deletes, drain/maint.c runs it. */
#ifndef SLUICE_DISKGUARD_H
#define SLUICE_DISKGUARD_H

#include <stddef.h>
#include <stdint.h>

#include "sluice/err.h"

enum sl_diskguard_state {
    SL_DISK_OK = 0,
    SL_DISK_EVICTING = 1, /* past the evict mark: the oldest evictable data goes */
    SL_DISK_REFUSING = 2, /* past the refuse mark: ingest refused too (503, syslog paused) */
};

/* Which figure decided (the larger one). */
enum sl_diskguard_figure {
    SL_DISK_FIGURE_NONE = 0, /* nothing measured: the guard is off */
    SL_DISK_FIGURE_BUDGET = 1,
    SL_DISK_FIGURE_FILESYSTEM = 2,
};

/* The marks, in percent of the budget or of the filesystem (SLUICE_DISK_*_PCT). */
struct sl_diskguard_limits {
    int evict_pct;      /* start evicting at or above */
    int refuse_pct;     /* refuse ingest at or above */
    int hysteresis_pct; /* a state is left only this far below its mark */
};

/* What one check measured; -1 (or 0 for the budget) when not known. */
struct sl_diskguard_figures {
    int64_t db_bytes;       /* pg_database_size(current_database()) */
    int64_t budget_bytes;   /* SLUICE_DISK_BUDGET, 0: none */
    int64_t fs_used_bytes;  /* statvfs of the data directory: blocks in use */
    int64_t fs_avail_bytes; /* blocks available to unprivileged users */
};

/* 0 when the marks make sense (0 < evict - hysteresis, evict < refuse <= 100,
 * hysteresis >= 0); SL_EINVAL with the reason in why otherwise. */
SL_MUSTCHECK int sl_diskguard_limits_check(const struct sl_diskguard_limits *l, char *why,
                                           size_t whylen);

/* The used figure in percent: the larger of the database's size over the budget and the
 * filesystem's used share (df's Use%: used / (used + available)); -1 when neither is
 * known. *which (may be NULL) says which one it is. */
double sl_diskguard_used_pct(const struct sl_diskguard_figures *f, enum sl_diskguard_figure *which);

/* The state after a check that found used_pct (negative: unknown, OK), coming from prev:
 * refusing at the refuse mark and until hysteresis below it, evicting at the evict mark
 * and (once evicting or refusing) until hysteresis below it, ok under that. */
enum sl_diskguard_state sl_diskguard_next(enum sl_diskguard_state prev, double used_pct,
                                          const struct sl_diskguard_limits *l);

/* Bytes to free to get hysteresis below the evict mark, by whichever figure is further
 * over (0 when none is). */
int64_t sl_diskguard_need_bytes(const struct sl_diskguard_figures *f,
                                const struct sl_diskguard_limits *l);

/* Rows of a partition of part_bytes (table and indexes) and part_rows rows whose removal
 * frees need_bytes, rounded up to a whole number of batches of `batch` rows (so that a
 * partition is rewritten once, not again for its last few rows); 0 when nothing is
 * needed, INT64_MAX when the partition's figures are unknown (every evictable row). */
int64_t sl_diskguard_rows_needed(int64_t need_bytes, int64_t part_bytes, int64_t part_rows,
                                 int64_t batch);

/* The oldest first: of n sources whose oldest evictable row was received at oldest[i]
 * (µs since the epoch; INT64_MAX: none), the index of the one to delete from next (the
 * first of equals), or n when none has rows. *cap gets the oldest row of the others
 * (INT64_MAX when none): a batch deletes only rows up to it, so rows go in time order
 * across sources. */
size_t sl_diskguard_pick(const int64_t *oldest, size_t n, int64_t *cap);

/* "ok", "evicting", "refusing". */
const char *sl_diskguard_state_name(enum sl_diskguard_state s);
/* "budget", "filesystem", "none". */
const char *sl_diskguard_figure_name(enum sl_diskguard_figure w);

#endif
