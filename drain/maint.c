/* Maintenance thread (include/sluice/maint.h): reloads of the source table and read
 * tokens on NOTIFY, partitions ahead, retention in small steps, the disk guard's checks
 * and eviction steps (drain/evict.c; docs/retention.md), compaction of closed days and
 * the hour level of closed hours (drain/compact.c, drain/hourlevel.c). Runs
 * on its own thread with its own connection; never touches the event loop except through
 * sl_sources_replace_all. */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "sluice/archive.h"
#include "sluice/clock.h"
#include "sluice/compact.h"
#include "sluice/db.h"
#include "sluice/eval.h"
#include "sluice/evict.h"
#include "sluice/hourlevel.h"
#include "sluice/log.h"
#include "sluice/maint.h"
#include "sluice/metrics.h"
#include "sluice/sources.h"

struct sl_maint {
    char *url;
    char *snapshot;
    struct sl_sources *sources;
    PGconn *pg;
    pthread_t thread;
    _Atomic int stop;
    int wake[2]; /* a pipe: stop wakes the poll at once */
    struct sl_maint_retention ret;
    /* the retention pass under way: jobs[next..njobs) still to delete from */
    struct sl_retention_job *jobs;
    size_t njobs, next;
    bool pass_active;
    bool pass_locked;  /* this session holds PASS_LOCK */
    int64_t next_pass; /* when the next pass starts (0: at once, as after a NOTIFY) */
    long long pass_rows, pass_parts;
    int64_t pass_started;
    int64_t next_step; /* when the next DELETE of the pass (or of eviction) may run */
    struct sl_evict *evict; /* the disk guard; NULL when nothing is watched */
    struct sl_compact_stats compact;
    int64_t next_compact; /* when the next compaction step may run */
    struct sl_hour_level_stats hour;
    int64_t next_hour; /* when the next hour-level step may run */
};

/* A DELETE may take at most a fifth of the time while a pass runs: after a statement
 * that took d, the next waits max(SLUICE_RETENTION_PAUSE_MS, DUTY x d). A retention
 * statement that wrote w bytes of WAL also waits w / SLUICE_RETENTION_WAL_RATE, so that
 * the pass's writes (WAL, then the same pages again at the checkpoint) stay a small share
 * of the disk the spool's fsyncs need (docs/retention.md "Cost under load"). The WAL is
 * the server's insert position read before and after the statement: it includes what
 * other sessions wrote meanwhile, a few kilobytes against the statement's megabytes,
 * unless the statement waited on another's locks; sl_maint_step_wal bounds it by what the
 * rows removed can have written. */
#define DUTY 4

/* The most WAL one removed row can cost: its record (a heap delete, ~60 bytes; a pack
 * row's share of the rewritten pack) and the full-page image of its page, if it is the
 * page's first change since the last checkpoint. */
#define WAL_ROW_MAX (8192 + 512)

/* The session advisory lock a node holds while it runs a retention pass: one node at a
 * time deletes, so SLUICE_RETENTION_WAL_RATE is the cluster's pace, not each node's, and
 * two nodes never wait on each other's rows (the disk guard has 7355018, the archive
 * 7355017 per source, crash grouping 7355011). */
#define PASS_LOCK "7355019"
#define SKIP_RETRY_S 5 /* a node that found the lock taken tries again this much later */

uint64_t sl_maint_step_wal(uint64_t server_wal, long long rows)
{
    uint64_t most;

    if (rows <= 0)
        return 0;
    most = (uint64_t)rows * WAL_ROW_MAX;
    if (most / WAL_ROW_MAX != (uint64_t)rows) /* overflow: no bound */
        return server_wal;
    return server_wal < most ? server_wal : most;
}

int64_t sl_maint_pause_us(int64_t took_us, int pause_ms, uint64_t wal_bytes, int64_t wal_rate)
{
    int64_t pause = (int64_t)pause_ms * 1000;

    if (took_us > 0 && took_us * DUTY > pause)
        pause = took_us * DUTY;
    if (wal_rate > 0 && wal_bytes > 0) {
        double w = (double)wal_bytes * 1e6 / (double)wal_rate;
        if (w > 3600e6) /* an hour at most, whatever the reading */
            w = 3600e6;
        if ((int64_t)w > pause)
            pause = (int64_t)w;
    }
    return pause;
}

/* The pass over (finished, failed or lost with its connection): PASS_LOCK released. */
static void pass_end(struct sl_maint *m)
{
    m->pass_active = false;
    if (m->pass_locked && m->pg) {
        /* a session lock is counted: one left taken would make the next pass's try
         * succeed twice and this node the only one ever to run a pass */
        PGTransactionStatusType ts = PQtransactionStatus(m->pg);
        if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR)
            PQclear(PQexec(m->pg, "ROLLBACK"));
        PQclear(PQexec(m->pg, "SELECT pg_advisory_unlock(" PASS_LOCK ")"));
    }
    m->pass_locked = false;
}

/* Start a retention pass: partitions ahead, then, if no other node is running one, whole
 * days dropped and the list of sources whose rows go by batched DELETE. */
static int pass_start(struct sl_maint *m, int64_t now)
{
    long long dropped = 0;
    PGresult *r = NULL;
    int rc;

    free(m->jobs);
    m->jobs = NULL;
    m->njobs = m->next = 0;
    if ((rc = sl_db_ensure_partitions(m->pg, now, 3)))
        return rc;
    /* Tried, never waited for: a node that misses it tries again in SKIP_RETRY_S (the
     * caller), so it runs its own pass, at its start or after a NOTIFY, once the
     * holder's is over: after a complete pass, a quick one. */
    if ((rc = sl_db_exec(m->pg, "retention lock failed",
                         "SELECT pg_try_advisory_lock(" PASS_LOCK ")", 0, NULL, &r)))
        return rc;
    m->pass_locked = PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    if (!m->pass_locked) {
        SL_INC(retention_passes_skipped, 1);
        sl_debug("retention pass waits for another node's", "retry_s=%d", SKIP_RETRY_S);
        return 0;
    }
    if ((rc = sl_db_retention_drop(m->pg, &dropped)) ||
        (rc = sl_db_retention_sources(m->pg, &m->jobs, &m->njobs))) {
        pass_end(m);
        return rc;
    }
    SL_INC(retention_partitions_dropped, dropped);
    m->pass_parts = dropped;
    m->pass_rows = 0;
    m->pass_started = now;
    m->pass_active = true;
    return 0;
}

/* One step of the pass under way: one bounded DELETE (*removed: its rows), or the pass's
 * end. */
static int pass_step(struct sl_maint *m, long long *removed)
{
    long long n = 0;
    int rc;

    *removed = 0;
    if (m->next < m->njobs) {
        const struct sl_retention_job *j = &m->jobs[m->next];
        rc = j->archive[0] ? sl_archive_retention_step(m->pg, j, m->ret.batch_rows, &n)
                           : sl_db_retention_batch(m->pg, j, m->ret.batch_rows, &n);
        if (rc)
            return rc;
        SL_INC(retention_batches, 1);
        SL_INC(retention_rows_deleted, n);
        m->pass_rows += n;
        *removed = n;
        if (n == 0)
            m->next++;
        return 0;
    }
    if ((rc = sl_db_retention_finish(m->pg)))
        return rc;
    pass_end(m);
    SL_INC(retention_passes, 1);
    if (m->pass_rows || m->pass_parts)
        sl_info("retention", "rows=%lld partitions=%lld seconds=%.1f", m->pass_rows,
                m->pass_parts, (double)(sl_clock_real_us() - m->pass_started) / 1e6);
    return 0;
}

static int reload(struct sl_maint *m)
{
    struct sl_source_row *rows = NULL;
    struct sl_read_token_row *toks = NULL;
    size_t n = 0, ntoks = 0;
    int rc;

    /* One snapshot of both tables, so a token never names a source the rows miss. */
    PQclear(PQexec(m->pg, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"));
    rc = sl_db_load_sources(m->pg, &rows, &n);
    if (rc == 0 && (rc = sl_db_load_read_tokens(m->pg, &toks, &ntoks)) != 0) {
        free(rows);
        rows = NULL;
    }
    PQclear(PQexec(m->pg, rc ? "ROLLBACK" : "COMMIT"));
    if (rc)
        return rc;
    sl_sources_replace_all(m->sources, rows, n, toks, ntoks);
    sl_debug("sources loaded", "count=%zu read_tokens=%zu", n, ntoks);
    if (m->snapshot && sl_sources_save(m->sources, m->snapshot))
        sl_warn("source snapshot not written", "path=%s", m->snapshot);
    return 0;
}

static int m_connect(struct sl_maint *m)
{
    int rc = sl_db_listen(&m->pg, m->url, "LISTEN sluice_sources; LISTEN sluice_rules");

    if (rc <= 0)
        return rc;
    if (m->evict) /* the eviction lock was the old connection's */
        sl_evict_reset(m->evict);
    if (m->pass_active) { /* so was the pass's: it starts over */
        m->pass_locked = false;
        pass_end(m);
        m->next_pass = 0;
    }
    if (reload(m))
        return SL_EDB;
    /* Today and the next two days, so midnight never waits on DDL. */
    if (sl_db_ensure_partitions(m->pg, sl_clock_real_us(), 3))
        return SL_EDB;
    /* readiness (sd_notify READY=1, /readyz) may be told before the writer connects */
    atomic_store(&sl_metrics.db_up, 1);
    return 0;
}

/* Milliseconds until the next compaction or hour-level step is due, at most a second. */
static int compact_wait_ms(const struct sl_maint *m, int64_t t)
{
    int64_t next = m->next_hour;
    if (m->ret.compact_after_h > 0 && m->next_compact < next)
        next = m->next_compact;
    if (next >= t + 1000000)
        return 1000;
    return next > t ? (int)((next - t + 999) / 1000) : 0;
}

static void *m_main(void *arg)
{
    struct sl_maint *m = arg;
    int64_t next_reload = 0, next_disk = 0;

    while (!atomic_load(&m->stop)) {
        struct pollfd pf[2];
        int64_t t = sl_clock_real_us();
        PGnotify *nt;
        bool notified = false, evicting;

        if (m_connect(m)) {
            atomic_store(&sl_metrics.db_up, 0);
            pf[0].fd = m->wake[0];
            pf[0].events = POLLIN;
            poll(pf, 1, 2000);
            continue;
        }
        /* The disk guard's check: never on the request path; the loop reads its state */
        if (m->evict && t >= next_disk) {
            if (sl_evict_check(m->evict, m->pg))
                sl_debug("disk check failed; retried next interval", "%s", "");
            next_disk = t + (int64_t)m->ret.disk_interval_s * 1000000;
        }
        evicting = m->evict && sl_evict_active(m->evict);
        if (!m->pass_active && t >= m->next_pass) {
            int64_t wait_s = 60; /* a failed start */
            if (pass_start(m, t) == 0) /* started, or put off: another node's under way */
                wait_s = m->pass_active || m->ret.interval_s < SKIP_RETRY_S ? m->ret.interval_s
                                                                             : SKIP_RETRY_S;
            m->next_pass = t + wait_s * 1000000;
        } else if ((m->pass_active || evicting) && t >= m->next_step) {
            int64_t took;
            uint64_t wal0 = 0, wal1 = 0, wal = 0;
            long long removed = 0;
            /* eviction first: it is what keeps ingest from being refused */
            if (evicting) {
                if (sl_evict_step(m->evict, m->pg))
                    sl_debug("eviction step failed; tried again after the pause", "%s", "");
            } else {
                bool paced = m->ret.wal_rate > 0 && sl_db_wal_position(m->pg, &wal0) == 0;
                if (pass_step(m, &removed))
                    pass_end(m); /* a failed statement: the next pass starts over */
                if (paced && sl_db_wal_position(m->pg, &wal1) == 0 && wal1 > wal0) {
                    wal = sl_maint_step_wal(wal1 - wal0, removed);
                    SL_INC(retention_wal_bytes, wal);
                }
            }
            took = sl_clock_real_us() - t;
            m->next_step = t + took + sl_maint_pause_us(took, m->ret.pause_ms, wal, m->ret.wal_rate);
            sl_debug("maintenance step", "kind=%s ms=%.1f wal=%" PRIu64 " pause_ms=%.0f",
                     evicting ? "evict" : "retention", (double)took / 1e3, wal,
                     (double)(m->next_step - t - took) / 1e3);
        }
        /* Compaction (docs/search.md "Compacted days"): one (source, day) a step, between
         * retention passes, paced like them. */
        if (!m->pass_active && m->ret.compact_after_h > 0 && t >= m->next_compact) {
            bool did = false;
            long long rows = m->compact.rows;
            int64_t took;
            if (sl_compact_step(m->pg, t - (int64_t)m->ret.compact_after_h * 3600 * 1000000,
                                SL_COMPACT_FENCE_S, &m->compact, &did))
                did = false;
            took = sl_clock_real_us() - t;
            SL_INC(compacted_rows, m->compact.rows - rows);
            m->next_compact = did ? t + took + took * DUTY : t + 60LL * 1000000;
        }
        /* The hour level of live blocks (docs/search.md "The hour level"): one (source,
         * hour) a step, paced the same way. */
        t = sl_clock_real_us();
        if (!m->pass_active && t >= m->next_hour) {
            bool did = false;
            int64_t took;
            if (sl_hour_level_step(m->pg, t - (int64_t)SL_COMPACT_FENCE_S * 1000000,
                                   SL_COMPACT_FENCE_S, &m->hour, &did))
                did = false;
            took = sl_clock_real_us() - t;
            m->next_hour = did ? t + took + took * DUTY : t + 60LL * 1000000;
        }
        if (t >= next_reload) {
            if (reload(m) == 0)
                next_reload = t + 60LL * 1000000;
        }
        pf[0].fd = PQsocket(m->pg);
        pf[0].events = POLLIN;
        pf[1].fd = m->wake[0];
        pf[1].events = POLLIN;
        /* Between two DELETE batches: a pause, so the writer's COPY and searches get
         * the disk and the locks; a NOTIFY still wakes the loop at once. */
        t = sl_clock_real_us();
        evicting = m->evict && sl_evict_active(m->evict);
        if (poll(pf, 2, !m->pass_active && !evicting ? compact_wait_ms(m, t)
                         : m->next_step > t ? (int)((m->next_step - t + 999) / 1000) : 0) < 0 &&
            errno != EINTR)
            continue;
        if (pf[0].revents && !PQconsumeInput(m->pg))
            continue; /* connection lost: the next round reconnects */
        while ((nt = PQnotifies(m->pg)) != NULL) {
            if (strcmp(nt->relname, "sluice_rules") == 0)
                atomic_fetch_add(&sl_rules_version, 1);
            else
                notified = true;
            PQfreemem(nt);
        }
        /* A changed retention or archive applies now (or right after the pass under
         * way), not at the next interval. */
        if (notified && reload(m) == 0)
            m->next_pass = 0;
    }
    return NULL;
}

/* Everything a started (or half-started) maintenance object holds, once its thread is
 * joined or was never created. */
static void m_free(struct sl_maint *m)
{
    sl_db_close(m->pg);
    if (m->wake[0] >= 0)
        close(m->wake[0]);
    if (m->wake[1] >= 0)
        close(m->wake[1]);
    free(m->url);
    free(m->snapshot);
    free(m->jobs);
    sl_evict_free(m->evict);
    free(m);
}

int sl_maint_start(const char *database_url, struct sl_sources *sources,
                   const char *snapshot_path, const struct sl_maint_retention *ret,
                   struct sl_maint **out)
{
    struct sl_maint *m = calloc(1, sizeof(*m));

    if (m == NULL)
        return SL_ENOMEM;
    m->wake[0] = m->wake[1] = -1;
    m->url = strdup(database_url);
    m->snapshot = snapshot_path ? strdup(snapshot_path) : NULL;
    m->sources = sources;
    m->hour.after = -1;
    m->ret.batch_rows = ret && ret->batch_rows > 0 ? ret->batch_rows : 10000;
    m->ret.pause_ms = ret && ret->pause_ms >= 0 ? ret->pause_ms : 1000;
    m->ret.interval_s = ret && ret->interval_s > 0 ? ret->interval_s : 600;
    m->ret.wal_rate = ret ? ret->wal_rate : 0;
    m->ret.compact_after_h = ret && ret->compact_after_h > 0 ? ret->compact_after_h : 0;
    m->ret.disk_interval_s = ret && ret->disk_interval_s > 0 ? ret->disk_interval_s : 30;
    if (ret && (ret->disk.budget_bytes > 0 || ret->disk.filesystem)) {
        struct sl_evict_settings ds = ret->disk;
        ds.batch_rows = m->ret.batch_rows;
        if (sl_evict_new(&ds, &m->evict)) {
            m_free(m);
            return SL_ENOMEM;
        }
    }
    if (m->url == NULL || (snapshot_path && m->snapshot == NULL) || pipe(m->wake) != 0) {
        m_free(m);
        return SL_ENOMEM;
    }
    if (m_connect(m)) {
        if (m->snapshot && sl_sources_generation(sources) == 0 &&
            sl_sources_load_file(sources, m->snapshot) == 0)
            sl_warn("database not reachable at start; sources from the last snapshot",
                    "count=%zu read_tokens=%zu", sl_sources_count(sources),
                    sl_sources_read_token_count(sources));
        else
            sl_warn("database not reachable at start; will retry", "%s", "");
    }
    if (pthread_create(&m->thread, NULL, m_main, m) != 0) {
        m_free(m);
        return SL_EIO;
    }
    *out = m;
    return 0;
}

void sl_maint_stop(struct sl_maint *m)
{
    if (m == NULL)
        return;
    atomic_store(&m->stop, 1);
    if (m->evict) /* a partition rewrite may take minutes: shutdown does not wait on it */
        sl_evict_cancel(m->evict);
    if (write(m->wake[1], "x", 1) < 0)
        sl_debug("maint wake failed", "err=\"%s\"", strerror(errno));
    pthread_join(m->thread, NULL);
    m_free(m);
}
