/* The maintenance thread of `sluice serve`: keeps the in-memory source table in step
 * with PostgreSQL (LISTEN sluice_sources, and a reload every minute), creates the
 * day partitions of `logs` ahead of time, runs retention (docs/retention.md) at
 * start, every interval and when a source changes, one bounded DELETE at a time, and the
 * disk guard (drain/evict.c): checks, and eviction steps paced the same way. Own
 * thread, own connection; reconnects by itself. */
#ifndef SLUICE_MAINT_H
#define SLUICE_MAINT_H

#include "sluice/err.h"
#include "sluice/evict.h"

struct sl_sources;
struct sl_maint;

/* Retention pacing (SLUICE_RETENTION_*): rows per DELETE, pause between two, seconds
 * between passes. Zero or negative fields take the defaults (10000, 1000, 600). The disk
 * guard (SLUICE_DISK_*, docs/retention.md "Disk guard"): checked every disk_interval_s
 * (default 30) when disk.budget_bytes or disk.filesystem is set; its eviction steps are
 * paced as retention's and go before them. */
struct sl_maint_retention {
    int batch_rows;
    int pause_ms;
    int interval_s;
    int64_t wal_rate; /* bytes of WAL a second a pass writes on average; 0: no limit */
    int compact_after_h; /* 0: no compaction (docs/search.md "Compacted days") */
    struct sl_evict_settings disk;
    int disk_interval_s;
};

/* The pause after one retention or eviction statement that took took_us and, while it ran,
 * saw wal_bytes of WAL written: max(pause_ms, 4 x took_us, wal_bytes / wal_rate seconds),
 * in microseconds, at most an hour. wal_rate <= 0: no WAL pacing. */
int64_t sl_maint_pause_us(int64_t took_us, int pause_ms, uint64_t wal_bytes, int64_t wal_rate);

/* The share of server_wal (the server's WAL insert position moved that much while a
 * retention statement ran, other sessions' writes included) the statement can have
 * written itself, having removed `rows` rows: at most one record and one full-page image
 * per row. A statement that waited on another's locks and then found its rows gone
 * removed nothing and wrote (nearly) nothing: 0, so it does not pause for the other's
 * WAL. */
uint64_t sl_maint_step_wal(uint64_t server_wal, long long rows);

/* Start the thread. If PostgreSQL is reachable, the source table is loaded before
 * this returns, so the listener can authenticate from its first request; if not, the
 * last snapshot (snapshot_path, written after every load) is used until it is. */
SL_MUSTCHECK int sl_maint_start(const char *database_url, struct sl_sources *sources,
                                const char *snapshot_path,
                                const struct sl_maint_retention *ret, struct sl_maint **out);
/* Stop the thread and free. Accepts NULL. */
void sl_maint_stop(struct sl_maint *m);

#endif
