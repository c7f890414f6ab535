/* The disk guard's database side (docs/retention.md, "Disk guard"): measures what the
 * database uses (pg_database_size against SLUICE_DISK_BUDGET; the filesystem of
 * PostgreSQL's data directory when this host can see it), publishes the state through
 * sl_metrics (disk_state, disk_used_bp: the event loop reads them without locks), and,
 * while evicting, deletes the oldest rows of the sources that allow it, a bounded
 * statement per step, closed days only, archiving first what must be archived, then
 * drops or rewrites the day's partition so the disk is really freed. One node evicts at
 * a time (advisory lock 7355018, held on the caller's connection for the episode).
 * libpq; runs on the maintenance thread, with its connection. The decisions themselves
 * are drain/diskguard.c's. */
#ifndef SLUICE_EVICT_H
#define SLUICE_EVICT_H

#include <stdbool.h>
#include <stdint.h>

#include "sluice/diskguard.h"
#include "sluice/err.h"

struct pg_conn;
struct sl_evict;

struct sl_evict_settings {
    int64_t budget_bytes; /* SLUICE_DISK_BUDGET; 0: none */
    bool filesystem;      /* SLUICE_DISK_FILESYSTEM */
    struct sl_diskguard_limits limits;
    int batch_rows; /* rows one DELETE removes at most (SLUICE_RETENTION_BATCH_ROWS) */
};

/* A guard with these settings (copied). Caller frees with sl_evict_free. */
SL_MUSTCHECK int sl_evict_new(const struct sl_evict_settings *set, struct sl_evict **out);
void sl_evict_free(struct sl_evict *e); /* accepts NULL */

/* From another thread, at shutdown: cancel a rewrite under way (it rolls back; the day's
 * deleted rows stay deleted) and start no other. */
void sl_evict_cancel(struct sl_evict *e);

/* A new connection: the advisory lock and what was probed on the old one are gone. */
void sl_evict_reset(struct sl_evict *e);

/* Measure, decide the state, publish it, log a change; take the eviction lock when over
 * the evict mark (another node holding it evicts instead), let it go when back under. */
SL_MUSTCHECK int sl_evict_check(struct sl_evict *e, struct pg_conn *c);

/* Whether this node has eviction steps to run (it holds the lock). */
bool sl_evict_active(const struct sl_evict *e);

/* One step of eviction: one bounded DELETE (or one archived hour's), or the end of a day
 * (DROP of its partition, or VACUUM FULL of it), which measures again. */
SL_MUSTCHECK int sl_evict_step(struct sl_evict *e, struct pg_conn *c);

#endif
