/* The disk guard's database side (include/sluice/evict.h, docs/retention.md "Disk
 * guard"). Measures what the database uses, publishes the state for the event loop
 * (sl_metrics.disk_*), and evicts: the oldest closed day with rows of opted-in sources
 * first; within it, the oldest rows across those sources, one bounded DELETE a step (an
 * archived source's hour archived first, by archive.c's retention step), only as many
 * rows as the figures say must go; then the day's partition is dropped (nothing is left
 * in it) or rewritten (VACUUM FULL: deleted rows free no disk until their table is
 * rewritten) and the figure measured again. The decisions are drain/diskguard.c's.
 *
 * Leaves to others: pacing between steps and the thread (drain/maint.c), archives
 * (drain/archive.c), admission while refusing (drain/ingest_http.c, ingest_syslog.c).
 * Thread: the maintenance thread, with its connection (the session advisory lock 7355018
 * lives on it for an episode). */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include <libpq-fe.h>

#include "sluice/archive.h"
#include "sluice/buf.h"
#include "sluice/clock.h"
#include "sluice/db.h"
#include "sluice/diskguard.h"
#include "sluice/evict.h"
#include "sluice/log.h"
#include "sluice/metrics.h"

#define EVICT_LOCK "7355018"
#define SKIP_MAX 64        /* archived sources set aside for an episode */
#define FAILED_DAYS_MAX 16 /* days whose drop or rewrite kept failing, set aside */
#define FINISH_TRIES 5     /* a drop or rewrite that cannot get its lock, tried again */

struct sl_evict {
    struct sl_evict_settings set;
    /* the data directory, probed once per connection */
    bool probed, fs_ok;
    char datadir[PATH_MAX];
    /* the last check */
    enum sl_diskguard_state state;
    enum sl_diskguard_figure which;
    double pct;
    int64_t need;   /* bytes to free to get under the evict mark, less the hysteresis */
    bool exhausted; /* said that nothing more may go (until the state is ok again) */
    /* the episode: this node holds the lock and evicts */
    bool locked;
    int64_t started_us;
    long long ep_rows, ep_parts;
    int64_t skip[SKIP_MAX]; /* archived sources whose hour could not be archived */
    size_t nskip;
    int64_t failed[FAILED_DAYS_MAX];
    size_t nfailed;
    /* the day under way: day_s 0 when none */
    int64_t day_s;
    bool drop_whole; /* every row may go and all are needed: archive what must be, DROP */
    bool resumed;    /* left mid-way by an earlier episode: only its end is due */
    int64_t rows_left;
    long long day_rows;
    int finish_tries;
    int64_t day_started_us;
    /* a rewrite under way can be cancelled by sl_evict_cancel (another thread) */
    pthread_mutex_t cancel_mu;
    PGcancel *cancel;
    bool stopping;
};

int sl_evict_new(const struct sl_evict_settings *set, struct sl_evict **out)
{
    struct sl_evict *e = calloc(1, sizeof(*e));

    if (e == NULL)
        return SL_ENOMEM;
    if (pthread_mutex_init(&e->cancel_mu, NULL) != 0) {
        free(e);
        return SL_ENOMEM;
    }
    e->set = *set;
    if (e->set.batch_rows <= 0)
        e->set.batch_rows = 10000;
    e->pct = -1;
    *out = e;
    return 0;
}

void sl_evict_free(struct sl_evict *e)
{
    if (e == NULL)
        return;
    pthread_mutex_destroy(&e->cancel_mu);
    free(e);
}

void sl_evict_cancel(struct sl_evict *e)
{
    char err[256];

    pthread_mutex_lock(&e->cancel_mu);
    e->stopping = true;
    if (e->cancel && !PQcancel(e->cancel, err, sizeof(err)))
        sl_warn("disk guard: cancel failed", "err=\"%s\"", err);
    pthread_mutex_unlock(&e->cancel_mu);
}

/* Around a long statement (a rewrite): make it cancellable by sl_evict_cancel. False
 * when the server is stopping: do not start it. */
static bool long_begin(struct sl_evict *e, PGconn *c)
{
    bool ok;

    pthread_mutex_lock(&e->cancel_mu);
    ok = !e->stopping;
    if (ok)
        e->cancel = PQgetCancel(c);
    pthread_mutex_unlock(&e->cancel_mu);
    return ok;
}

static void long_end(struct sl_evict *e)
{
    pthread_mutex_lock(&e->cancel_mu);
    PQfreeCancel(e->cancel);
    e->cancel = NULL;
    pthread_mutex_unlock(&e->cancel_mu);
}

bool sl_evict_active(const struct sl_evict *e)
{
    return e->locked;
}

void sl_evict_reset(struct sl_evict *e)
{
    e->probed = e->fs_ok = false;
    e->locked = false;
    e->day_s = 0;
}

/* The primary message of a failed result, for a log line. */
static const char *pg_message(const PGresult *r)
{
    const char *m = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    return m ? m : "no result";
}

/* Is PostgreSQL's data directory on this host, and is it this server's? Its path comes
 * from the server (superusers and pg_read_all_settings only); postmaster.pid there must
 * carry the server's start time when it can be read (the same path on another machine's
 * server would otherwise be measured); statvfs must work on it. */
static void probe(struct sl_evict *e, PGconn *c)
{
    PGresult *r = PQexec(c, "SELECT current_setting('data_directory'), "
                            "extract(epoch FROM pg_postmaster_start_time())::bigint");
    char pid[PATH_MAX + 32], line[256];
    struct statvfs v;
    long long start, file_start = -1;
    const char *dir;
    FILE *f;

    e->probed = true;
    e->fs_ok = false;
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        sl_info("disk guard: no filesystem figure (the server does not tell its data "
                "directory)",
                "err=\"%s\"", pg_message(r));
        PQclear(r);
        return;
    }
    dir = PQgetvalue(r, 0, 0);
    start = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    snprintf(pid, sizeof(pid), "%s/postmaster.pid", dir);
    if ((f = fopen(pid, "r")) != NULL) {
        /* line 1 the pid, 2 the directory, 3 the start time (epoch seconds) */
        for (int i = 0; i < 3 && fgets(line, sizeof(line), f); i++)
            if (i == 2)
                file_start = strtoll(line, NULL, 10);
        fclose(f);
        if (file_start < start - 2 || file_start > start + 2) {
            sl_info("disk guard: no filesystem figure (the data directory here belongs to "
                    "another server)",
                    "path=\"%s\"", dir);
            PQclear(r);
            return;
        }
    } else if (errno != EACCES) {
        sl_info("disk guard: no filesystem figure (PostgreSQL's data directory is not on "
                "this host)",
                "path=\"%s\"", dir);
        PQclear(r);
        return;
    }
    if (statvfs(dir, &v) != 0 || strlen(dir) >= sizeof(e->datadir)) {
        sl_info("disk guard: no filesystem figure (statvfs failed)", "path=\"%s\" err=\"%s\"", dir,
                strerror(errno));
        PQclear(r);
        return;
    }
    snprintf(e->datadir, sizeof(e->datadir), "%s", dir);
    e->fs_ok = true;
    sl_info("disk guard: watching the filesystem of PostgreSQL's data directory", "path=\"%s\"",
            dir);
    PQclear(r);
}

static int measure(struct sl_evict *e, PGconn *c, struct sl_diskguard_figures *f)
{
    PGresult *r = NULL;
    struct statvfs v;

    f->db_bytes = f->fs_used_bytes = f->fs_avail_bytes = -1;
    f->budget_bytes = e->set.budget_bytes;
    if (sl_db_exec(c, "disk check failed", "SELECT pg_database_size(current_database())", 0, NULL,
                   &r))
        return SL_EDB;
    f->db_bytes = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    if (!e->set.filesystem)
        return 0;
    if (!e->probed)
        probe(e, c);
    if (e->fs_ok) {
        if (statvfs(e->datadir, &v) == 0) {
            f->fs_used_bytes = (int64_t)(v.f_blocks - v.f_bfree) * (int64_t)v.f_frsize;
            f->fs_avail_bytes = (int64_t)v.f_bavail * (int64_t)v.f_frsize;
        } else
            sl_warn("disk guard: statvfs failed", "path=\"%s\" err=\"%s\"", e->datadir,
                    strerror(errno));
    }
    return 0;
}

/* Figure and state for the loop: the figure first, so a reader of a new state finds its
 * figure. */
static void publish(const struct sl_evict *e, const struct sl_diskguard_figures *f)
{
    atomic_store(&sl_metrics.disk_used_bp, e->pct > 0 ? (uint64_t)(e->pct * 100.0 + 0.5) : 0);
    atomic_store(&sl_metrics.disk_figure, (uint64_t)e->which);
    atomic_store(&sl_metrics.disk_db_bytes, f->db_bytes > 0 ? (uint64_t)f->db_bytes : 0);
    atomic_store(&sl_metrics.disk_state, (uint64_t)e->state);
}

static void log_change(const struct sl_evict *e, enum sl_diskguard_state prev,
                       const struct sl_diskguard_figures *f)
{
    static const char *const msg[] = {
        [SL_DISK_OK] = "disk guard: ok",
        [SL_DISK_EVICTING] = "disk guard: evicting the oldest data of opted-in sources",
        [SL_DISK_REFUSING] = "disk guard: refusing ingest",
    };
    enum sl_log_level lvl = e->state > prev ? SL_LOG_WARN : SL_LOG_INFO;

    sl_log(lvl, msg[e->state],
           "state=%s from=%s used=%.1f%% figure=%s database_bytes=%" PRId64 " budget_bytes=%" PRId64
           " evict_pct=%d refuse_pct=%d",
           sl_diskguard_state_name(e->state), sl_diskguard_state_name(prev), e->pct,
           sl_diskguard_figure_name(e->which), f->db_bytes, f->budget_bytes,
           e->set.limits.evict_pct, e->set.limits.refuse_pct);
}

static void episode_end(struct sl_evict *e, PGconn *c)
{
    if (!e->locked)
        return;
    PQclear(PQexec(c, "SELECT pg_advisory_unlock(" EVICT_LOCK ")"));
    e->locked = false;
    e->day_s = 0;
    if (e->ep_rows || e->ep_parts)
        sl_info("disk guard: eviction ended",
                "rows=%lld partitions=%lld seconds=%.1f used=%.1f%% state=%s", e->ep_rows,
                e->ep_parts, (double)(sl_clock_real_us() - e->started_us) / 1e6, e->pct,
                sl_diskguard_state_name(e->state));
}

static void try_lock(struct sl_evict *e, PGconn *c)
{
    PGresult *r = NULL;

    if (sl_db_exec(c, "disk guard lock failed", "SELECT pg_try_advisory_lock(" EVICT_LOCK ")", 0,
                   NULL, &r))
        return;
    e->locked = PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    if (!e->locked) {
        sl_debug("disk guard: another node evicts", "%s", "");
        return;
    }
    e->started_us = sl_clock_real_us();
    e->ep_rows = e->ep_parts = 0;
    e->nskip = e->nfailed = 0;
    e->day_s = 0;
}

int sl_evict_check(struct sl_evict *e, struct pg_conn *c)
{
    struct sl_diskguard_figures f;
    enum sl_diskguard_state prev = e->state;
    int rc;

    if ((rc = measure(e, c, &f)))
        return rc;
    e->pct = sl_diskguard_used_pct(&f, &e->which);
    e->state = sl_diskguard_next(prev, e->pct, &e->set.limits);
    e->need = sl_diskguard_need_bytes(&f, &e->set.limits);
    publish(e, &f);
    if (e->state != prev)
        log_change(e, prev, &f);
    if (e->state == SL_DISK_OK) {
        e->exhausted = false;
        /* a day whose rows were deleted is still rewritten; nothing more is deleted */
        if (e->day_s)
            e->rows_left = 0;
        else
            episode_end(e, c);
    } else if (!e->locked)
        try_lock(e, c);
    return 0;
}

/* The skipped sources as an array literal for $1::bigint[]. */
static int skip_array(const struct sl_evict *e, char *out, size_t len)
{
    size_t n = 0;

    out[n++] = '{';
    for (size_t i = 0; i < e->nskip; i++) {
        int k = snprintf(out + n, len - n, "%s%" PRId64, i ? "," : "", e->skip[i]);
        if (k < 0 || (size_t)k >= len - n)
            return SL_ETOOBIG;
        n += (size_t)k;
    }
    if (n + 2 > len)
        return SL_ETOOBIG;
    out[n++] = '}';
    out[n] = '\0';
    return 0;
}

/* Sources whose rows in a day may go: opted in, not set aside this episode, the day not
 * held by a restore. $1 the set-aside ids, $2 the day (date). */
#define EVICTABLE                                                                                  \
    "s.disk_evict AND s.id <> ALL($1::bigint[]) AND NOT EXISTS (SELECT 1 FROM archive_holds "      \
    "h WHERE h.source_id = s.id AND h.day = $2::date AND h.until > now())"
/* A source s has stored data in the day ($2) whose logs partition is %s: live rows there,
 * or packed ones (compaction, docs/search.md "Compacted days": a packed block's rows are
 * all of one day). */
#define HAS_DATA(part)                                                                             \
    "(EXISTS (SELECT 1 FROM " part " l WHERE l.source_id = s.id) OR EXISTS (SELECT 1 FROM "       \
    "log_blocks b WHERE b.packed AND b.source_id = s.id AND b.min_received >= "                   \
    "$2::date::timestamp AT TIME ZONE 'UTC' AND b.min_received < ($2::date + 1)::timestamp AT "   \
    "TIME ZONE 'UTC'))"
#define KEPT                                                                                       \
    "(NOT s.disk_evict OR s.id = ANY($1::bigint[]) OR EXISTS (SELECT 1 FROM archive_holds "        \
    "h WHERE h.source_id = s.id AND h.day = $2::date AND h.until > now()))"

static bool day_failed(const struct sl_evict *e, int64_t day_s)
{
    for (size_t i = 0; i < e->nfailed; i++)
        if (e->failed[i] == day_s)
            return true;
    return false;
}

/* "YYYY-MM-DD" of the partition logs_YYYYMMDD. */
static void day_text(const char *part, char out[11])
{
    snprintf(out, 11, "%.4s-%.2s-%.2s", part + 5, part + 9, part + 11);
}

/* A day whose rows were deleted but whose partition was not rewritten or dropped (this
 * node or another stopped in between, see disk_evict_days) is finished first: the space
 * of its deleted rows is lost to the disk until then. Days whose partition is gone are
 * forgotten. */
static int day_resume(struct sl_evict *e, PGconn *c, bool *found)
{
    PGresult *r = NULL;
    int rc;

    if ((rc = sl_db_exec(c, "disk guard query failed",
                         "DELETE FROM disk_evict_days d WHERE to_regclass('logs_' || "
                         "to_char(d.day, 'YYYYMMDD')) IS NULL",
                         0, NULL, NULL)) ||
        (rc = sl_db_exec(c, "disk guard query failed",
                         "SELECT extract(epoch FROM day::timestamp AT TIME ZONE 'UTC')::bigint, "
                         "to_char(day, 'YYYY-MM-DD') FROM disk_evict_days ORDER BY day",
                         0, NULL, &r)))
        return rc;
    for (int i = 0; i < PQntuples(r) && !*found; i++) {
        int64_t day_s = strtoll(PQgetvalue(r, i, 0), NULL, 10);
        if (day_failed(e, day_s))
            continue;
        e->day_s = day_s;
        e->drop_whole = false;
        e->rows_left = 0; /* only its end: the next measure says whether more must go */
        e->day_rows = 0;
        e->resumed = true; /* its end rewrites it though this episode deleted nothing */
        e->finish_tries = 0;
        e->day_started_us = sl_clock_real_us();
        *found = true;
        sl_info("disk guard: finishing a day left mid-way", "day=%s", PQgetvalue(r, i, 1));
    }
    PQclear(r);
    return 0;
}

/* Remember (or forget) that a day's rows are being deleted and its partition is not yet
 * rewritten: committed before the first DELETE, removed once the partition is. */
static int day_mark(PGconn *c, int64_t day_s, bool on)
{
    char d[24];
    const char *vals[1] = {d};

    snprintf(d, sizeof(d), "%" PRId64, day_s);
    return sl_db_exec(c, "disk guard mark failed",
                      on ? "INSERT INTO disk_evict_days (day) VALUES "
                           "((to_timestamp($1::bigint) AT TIME ZONE 'UTC')::date) "
                           "ON CONFLICT DO NOTHING"
                         : "DELETE FROM disk_evict_days WHERE day = "
                           "(to_timestamp($1::bigint) AT TIME ZONE 'UTC')::date",
                      1, vals, NULL);
}

/* Choose the oldest closed day holding rows that may go, and how many of them go.
 * *found false: none. */
static int day_begin(struct sl_evict *e, PGconn *c, bool *found)
{
    char skip[SKIP_MAX * 24 + 4], day[11], sql[2048];
    const char *vals[2] = {skip, day};
    PGresult *r = NULL, *k = NULL;
    int rc;

    *found = false;
    if ((rc = skip_array(e, skip, sizeof(skip))))
        return rc;
    if ((rc = day_resume(e, c, found)) || *found)
        return rc;
    /* closed days only: today's rows are the ones being written, searched and tailed */
    if ((rc = sl_db_exec(c, "disk guard query failed",
                         "SELECT c.relname, extract(epoch FROM to_date(substr(c.relname, 6), "
                         "'YYYYMMDD')::timestamp AT TIME ZONE 'UTC')::bigint "
                         "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                         "WHERE i.inhparent = 'logs'::regclass "
                         "AND c.relname ~ '^logs_[0-9]{8}$' AND to_date(substr(c.relname, 6), "
                         "'YYYYMMDD') < (now() AT TIME ZONE 'UTC')::date ORDER BY 1",
                         0, NULL, &r)))
        return rc;
    for (int i = 0; i < PQntuples(r) && !*found; i++) {
        const char *part = PQgetvalue(r, i, 0);
        int64_t day_s = strtoll(PQgetvalue(r, i, 1), NULL, 10);
        int64_t bytes, rows, want;
        bool kept, archived;

        if (day_failed(e, day_s))
            continue;
        day_text(part, day);
        /* the day's bytes and rows: its logs partition and its packs */
        snprintf(sql, sizeof(sql),
                 "SELECT pg_total_relation_size('%s'::regclass) + coalesce("
                 "pg_total_relation_size(to_regclass('log_packs_' || to_char($2::date, "
                 "'YYYYMMDD'))), 0), "
                 "greatest((SELECT reltuples::bigint FROM pg_class WHERE oid = '%s'::regclass), 0) "
                 "+ coalesce((SELECT sum(nrows) FROM log_blocks WHERE packed AND min_received >= "
                 "$2::date::timestamp AT TIME ZONE 'UTC' AND min_received < ($2::date + 1)"
                 "::timestamp AT TIME ZONE 'UTC'), 0), "
                 "EXISTS (SELECT 1 FROM sources s WHERE " EVICTABLE " AND " HAS_DATA("%s") "), "
                 "EXISTS (SELECT 1 FROM sources s WHERE " KEPT " AND " HAS_DATA("%s") "), "
                 "EXISTS (SELECT 1 FROM sources s WHERE " EVICTABLE " AND s.archive IS NOT "
                 "  NULL AND " HAS_DATA("%s") ")",
                 part, part, part, part, part);
        if ((rc = sl_db_exec(c, "disk guard query failed", sql, 2, vals, &k)))
            goto out;
        if (PQgetvalue(k, 0, 2)[0] != 't') {
            PQclear(k);
            k = NULL;
            continue;
        }
        bytes = strtoll(PQgetvalue(k, 0, 0), NULL, 10);
        rows = strtoll(PQgetvalue(k, 0, 1), NULL, 10);
        kept = PQgetvalue(k, 0, 3)[0] == 't';
        archived = PQgetvalue(k, 0, 4)[0] == 't';
        PQclear(k);
        k = NULL;
        if (rows <= 0) { /* never analysed: count */
            snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", part);
            if ((rc = sl_db_exec(c, "disk guard query failed", sql, 0, NULL, &k)))
                goto out;
            rows = strtoll(PQgetvalue(k, 0, 0), NULL, 10);
            PQclear(k);
            k = NULL;
        }
        want = sl_diskguard_rows_needed(e->need, bytes, rows, e->set.batch_rows);
        e->day_s = day_s;
        e->drop_whole = !kept && e->need >= bytes;
        /* a whole day goes by DROP; only an archived source's rows are deleted first, as
         * they are archived hour by hour */
        e->rows_left = e->drop_whole ? (archived ? INT64_MAX : 0) : (want > 0 ? want : 1);
        e->day_rows = 0;
        e->resumed = false;
        e->finish_tries = 0;
        e->day_started_us = sl_clock_real_us();
        if (e->rows_left > 0 && (rc = day_mark(c, day_s, true))) {
            e->day_s = 0;
            goto out;
        }
        *found = true;
        sl_info("disk guard: evicting a day",
                "day=%s bytes=%" PRId64 " rows=%" PRId64 " need_bytes=%" PRId64
                " whole=%s rows_to_delete=%" PRId64,
                day, bytes, rows, e->need, e->drop_whole ? "yes" : "no",
                e->drop_whole ? rows : e->rows_left);
    }
    rc = 0;
out:
    PQclear(k);
    PQclear(r);
    return rc;
}

/* One bounded DELETE in the day under way: the oldest rows of the source whose oldest
 * row is the oldest, up to the oldest row of the others. *more false: nothing left that
 * may go in this day. */
static int delete_batch(struct sl_evict *e, PGconn *c, bool *more)
{
    char skip[SKIP_MAX * 24 + 4], day[11], part[16], lo[24], hi[24], lim[24], cap[24], sid[24];
    const char *qv[3] = {skip, day, e->drop_whole ? "t" : "f"};
    const char *dv[5] = {sid, lo, hi, lim, cap};
    PGresult *r = NULL;
    int64_t *oldest = NULL, capv;
    int64_t limit = e->rows_left < e->set.batch_rows ? e->rows_left : e->set.batch_rows;
    long long n = 0;
    size_t ns, pick;
    int rc;

    *more = false;
    if ((rc = skip_array(e, skip, sizeof(skip))))
        return rc;
    sl_db_partition_name(e->day_s * 1000000, part);
    day_text(part, day);
    if ((rc = sl_db_exec(c, "disk guard query failed",
                         "SELECT s.id, s.name, coalesce(s.archive, ''), "
                         "(SELECT (extract(epoch FROM least(min(l.received_at), (SELECT "
                         "  min(b.min_received) FROM log_blocks b WHERE b.packed AND b.source_id "
                         "  = s.id AND b.min_received >= $2::date::timestamp AT TIME ZONE 'UTC' "
                         "  AND b.min_received < ($2::date + 1)::timestamp AT TIME ZONE 'UTC'))) "
                         "  * 1000000)::bigint "
                         "  FROM logs l WHERE l.source_id = s.id "
                         "  AND l.received_at >= $2::date::timestamp AT TIME ZONE 'UTC' "
                         "  AND l.received_at < ($2::date + 1)::timestamp AT TIME ZONE 'UTC') "
                         "FROM sources s WHERE " EVICTABLE
                         " AND (NOT $3::boolean OR s.archive IS NOT NULL) ORDER BY s.id",
                         3, qv, &r)))
        return rc;
    ns = (size_t)PQntuples(r);
    if (ns == 0)
        goto done;
    if ((oldest = calloc(ns, sizeof(*oldest))) == NULL) {
        rc = SL_ENOMEM;
        goto done;
    }
    for (size_t i = 0; i < ns; i++)
        oldest[i] =
            PQgetisnull(r, (int)i, 3) ? INT64_MAX : strtoll(PQgetvalue(r, (int)i, 3), NULL, 10);
    pick = sl_diskguard_pick(oldest, ns, &capv);
    if (pick == ns)
        goto done;
    *more = true;
    if (PQgetvalue(r, (int)pick, 2)[0]) {
        /* archived: its oldest hour is written and verified first, as retention does */
        struct sl_retention_job job;
        memset(&job, 0, sizeof(job));
        job.source_id = strtoll(PQgetvalue(r, (int)pick, 0), NULL, 10);
        job.days = 1;
        job.cut_s = e->day_s + 86400;
        snprintf(job.name, sizeof(job.name), "%s", PQgetvalue(r, (int)pick, 1));
        snprintf(job.archive, sizeof(job.archive), "%s", PQgetvalue(r, (int)pick, 2));
        if ((rc = sl_archive_retention_step(c, &job, (int)limit, &n)))
            goto done;
        if (n == 0 && e->nskip < SKIP_MAX) {
            /* not archived (logged and counted by archive.c), or another node's retention
             * has the source in hand: its rows stay this episode */
            e->skip[e->nskip++] = job.source_id;
            sl_warn("disk guard: archived source set aside (its hour is not archived)",
                    "source=%s day=%s", job.name, day);
        } else if (n == 0)
            *more = false;
    } else {
        snprintf(sid, sizeof(sid), "%s", PQgetvalue(r, (int)pick, 0));
        snprintf(lo, sizeof(lo), "%" PRId64, e->day_s);
        snprintf(hi, sizeof(hi), "%" PRId64, e->day_s + 86400);
        snprintf(lim, sizeof(lim), "%" PRId64, limit > 0 ? limit : 1);
        snprintf(cap, sizeof(cap), "%" PRId64, capv);
        PQclear(r);
        r = NULL;
        /* the bounded batch (SL_DB_BATCH_DELETE_SQL), within the day and no later than the
         * others' oldest row */
        if ((rc = sl_db_exec(c, "disk guard delete failed",
                             SL_DB_BATCH_DELETE_SQL " AND ($5::bigint = 9223372036854775807 OR "
                             "received_at <= timestamptz 'epoch' + $5::bigint * "
                             "interval '1 microsecond')",
                             5, dv, &r)))
            goto done;
        n = atoll(PQcmdTuples(r));
        if (n == 0) {
            /* no live row left to go: the source's packed rows of the day, oldest packs
             * first, up to the others' oldest row (sl_packs_delete: [from, to)) */
            PQclear(r);
            r = NULL;
            if ((rc = sl_db_exec(c, "disk guard delete failed",
                                 "SELECT sl_packs_delete($1::bigint, to_timestamp($2::bigint), "
                                 "CASE WHEN $5::bigint = 9223372036854775807 THEN "
                                 "to_timestamp($3::bigint) ELSE least(to_timestamp($3::bigint), "
                                 "timestamptz 'epoch' + ($5::bigint + 1) * interval "
                                 "'1 microsecond') END, ($4::bigint / 256 + 1)::int)",
                                 5, dv, &r)))
                goto done;
            n = atoll(PQgetvalue(r, 0, 0));
        }
        *more = n > 0;
    }
    e->rows_left -= n;
    e->day_rows += n;
    e->ep_rows += n;
    SL_INC(disk_evicted_rows, n);
done:
    free(oldest);
    PQclear(r);
    return rc;
}

/* Search blocks and commit-log rows of opted-in sources ending in the day (or the one
 * before) none of whose rows are left. */
static int forget_ranges(PGconn *c, int64_t day_s)
{
    char lo[24], hi[24];
    const char *vals[2] = {lo, hi};
    int rc;

    snprintf(lo, sizeof(lo), "%" PRId64, day_s - 86400);
    snprintf(hi, sizeof(hi), "%" PRId64, day_s + 86400);
    rc = sl_db_exec(c, "disk guard blocks failed",
                    "DELETE FROM log_blocks b WHERE b.max_received >= to_timestamp($1::bigint) "
                    "AND b.max_received < to_timestamp($2::bigint) "
                    "AND b.source_id IN (SELECT id FROM sources WHERE disk_evict) "
                    "AND NOT EXISTS (SELECT 1 FROM logs l WHERE l.source_id = b.source_id "
                    "  AND l.received_at >= b.min_received AND l.received_at <= b.max_received) "
                    /* a packed block goes only with its pack (a dropped day's) */
                    "AND NOT (b.packed AND EXISTS (SELECT 1 FROM log_packs p WHERE p.source_id = "
                    "  b.source_id AND p.day = (b.min_received AT TIME ZONE 'UTC')::date "
                    "  AND p.min_id = b.min_id))",
                    2, vals, NULL);
    if (rc)
        return rc;
    return sl_db_exec(c, "disk guard commits failed",
                      "DELETE FROM log_commits k WHERE k.max_received >= to_timestamp($1::bigint) "
                      "AND k.max_received < to_timestamp($2::bigint) "
                      "AND k.source_id IN (SELECT id FROM sources WHERE disk_evict) "
                      "AND NOT EXISTS (SELECT 1 FROM logs l WHERE l.source_id = k.source_id "
                      "  AND l.received_at >= k.min_received AND l.received_at <= k.max_received)",
                      2, vals, NULL);
}

/* The end of a day: DROP its partition when nothing that must stay is in it, else
 * rewrite it so the deleted rows' space goes back to the disk; then measure again. */
static int day_finish(struct sl_evict *e, PGconn *c)
{
    char skip[SKIP_MAX * 24 + 4], day[11], part[16], packs[32], sql[1536];
    const char *vals[2] = {skip, day};
    PGresult *r = NULL;
    bool kept = true, empty = false, has_packs = false, queried, done = false;
    const char *how = "dropped";
    int rc;

    if ((rc = skip_array(e, skip, sizeof(skip))))
        return rc;
    sl_db_partition_name(e->day_s * 1000000, part);
    day_text(part, day);
    /* retention (of this node or another) may have dropped the day meanwhile */
    snprintf(sql, sizeof(sql), "SELECT to_regclass('%s') IS NULL", part);
    if (sl_db_exec(c, "disk guard query failed", sql, 0, NULL, &r) == 0 &&
        PQgetvalue(r, 0, 0)[0] == 't') {
        PQclear(r);
        sl_info("disk guard: day already dropped", "day=%s rows=%lld", day, e->day_rows);
        if (day_mark(c, e->day_s, false))
            sl_warn("disk guard: day left marked", "day=%s", day);
        e->day_s = 0;
        return sl_evict_check(e, c);
    }
    PQclear(r);
    r = NULL;
    /* the day is its logs partition and its packs' (log_packs_YYYYMMDD, when compaction
     * made one): empty when both are */
    snprintf(packs, sizeof(packs), "log_packs_%s", part + 5);
    snprintf(sql, sizeof(sql),
             "SELECT NOT EXISTS (SELECT 1 FROM %s) AND NOT EXISTS (SELECT 1 FROM log_packs WHERE "
             "day = $2::date), EXISTS (SELECT 1 FROM sources s WHERE " KEPT " AND " HAS_DATA("%s")
             "), to_regclass('%s') IS NOT NULL",
             part, part, packs);
    if ((queried = sl_db_exec(c, "disk guard query failed", sql, 2, vals, &r) == 0)) {
        empty = PQgetvalue(r, 0, 0)[0] == 't';
        kept = PQgetvalue(r, 0, 1)[0] == 't';
        has_packs = PQgetvalue(r, 0, 2)[0] == 't';
        PQclear(r);
    }
    if (!queried) {
        how = "kept"; /* a failed end: a day that keeps failing is set aside below */
    } else if (empty || (e->drop_whole && !kept)) {
        /* as retention drops: a short lock_timeout, so the writer never queues behind it */
        snprintf(sql, sizeof(sql),
                 "SET lock_timeout = '2s'; DROP TABLE IF EXISTS %s, %s; RESET lock_timeout", part,
                 packs);
        if (sl_db_exec(c, "disk guard drop failed", sql, 0, NULL, NULL) == 0) {
            done = true;
            e->ep_parts++;
            SL_INC(disk_evicted_partitions, 1);
            /* its day and hour levels go with it */
            sl_db_levels_drop_day(c, "disk guard drop failed", day);
        } else
            PQclear(PQexec(c, "RESET lock_timeout"));
    } else if (e->day_rows > 0 || e->resumed) {
        /* VACUUM cannot run in a transaction block: three statements. It holds an ACCESS
         * EXCLUSIVE lock on this closed day's partition only while it copies its rows. */
        how = "rewritten";
        snprintf(sql, sizeof(sql), "VACUUM (FULL, ANALYZE) %s%s%s", part, has_packs ? ", " : "",
                 has_packs ? packs : "");
        if (sl_db_exec(c, "disk guard lock timeout failed", "SET lock_timeout = '2s'", 0, NULL,
                       NULL) == 0 &&
            long_begin(e, c)) {
            if (sl_db_exec(c, "disk guard rewrite failed", sql, 0, NULL, NULL) == 0) {
                done = true;
                SL_INC(disk_rewritten_partitions, 1);
            }
            long_end(e);
        }
        PQclear(PQexec(c, "RESET lock_timeout"));
    } else {
        /* nothing went and nothing can: set the day aside for this episode */
        e->finish_tries = FINISH_TRIES;
        how = "kept";
    }
    if (!done && ++e->finish_tries < FINISH_TRIES)
        return 0; /* the next step tries again */
    if (!done) {
        if (e->nfailed < FAILED_DAYS_MAX)
            e->failed[e->nfailed++] = e->day_s;
        sl_warn("disk guard: day set aside (its partition could not be dropped or rewritten)",
                "day=%s rows=%lld", day, e->day_rows);
    } else {
        if (day_mark(c, e->day_s, false))
            sl_warn("disk guard: day left marked (it is rewritten again)", "day=%s", day);
        if (forget_ranges(c, e->day_s))
            sl_warn("disk guard: search blocks of evicted rows kept", "day=%s", day);
        sl_info("disk guard: day evicted", "day=%s rows=%lld partition=%s seconds=%.1f", day,
                e->day_rows, how, (double)(sl_clock_real_us() - e->day_started_us) / 1e6);
    }
    e->day_s = 0;
    return sl_evict_check(e, c);
}

int sl_evict_step(struct sl_evict *e, struct pg_conn *c)
{
    bool found, more;
    int rc;

    if (!e->locked)
        return 0;
    if (e->day_s == 0) {
        if (e->state == SL_DISK_OK) {
            episode_end(e, c);
            return 0;
        }
        if ((rc = day_begin(e, c, &found)))
            return rc;
        if (!found) {
            if (!e->exhausted)
                sl_warn("disk guard: nothing more may be evicted",
                        "used=%.1f%% state=%s hint=\"opt sources in (sluice source set NAME "
                        "--disk-evict yes), raise the budget or add disk\"",
                        e->pct, sl_diskguard_state_name(e->state));
            e->exhausted = true;
            episode_end(e, c); /* the next check takes the lock and looks again */
        }
        return 0;
    }
    if (e->rows_left > 0) {
        if ((rc = delete_batch(e, c, &more))) {
            /* a statement that keeps failing (logged) ends the day's deletes: its end then
             * rewrites what went, or sets the day aside */
            if (++e->finish_tries >= FINISH_TRIES) {
                e->rows_left = 0;
                e->finish_tries = 0;
            }
            return rc;
        }
        if (more)
            return 0;
        e->rows_left = 0;
    }
    return day_finish(e, c);
}
