/* The read API's search workers (drain/readq.h): a bounded queue of search jobs
 * from the event loop, SLUICE_SEARCH_WORKERS threads each with its own PostgreSQL
 * connection running them (drain/search.c), and the finished jobs handed back through a
 * second queue and the loop's wake callback.
 *
 * Fairness: a worker takes the queued job of the owner (read token) served least
 * recently, skipping owners that already run workers - 1 jobs; submit refuses an owner
 * past token_jobs (429). A watchdog thread cancels, with PQcancel, the statement of a
 * job whose client left or whose whole run passed SLUICE_SEARCH_TIMEOUT (statement_timeout
 * is also set on each job, and checked: a connection found broken there, or by the search,
 * is reconnected and the job run once more).
 *
 * What it leaves to others: parsing and answering requests (drain/api.c, on the loop),
 * the SQL (drain/search.c). Threads: sl_searchd_start/submit/cancel/take_done/stop on the
 * loop; worker_main on each worker; watch_main on the watchdog. libpq only; no libevent.
 * Locks: mu (queues, job state, owner table) is never held across PostgreSQL calls;
 * cmu (each worker's cancel handle and current job) is taken after mu, never before. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "readq.h"
#include "sluice/clock.h"
#include "sluice/db.h"
#include "sluice/log.h"
#include "sluice/metrics.h"
#include "sluice/search.h"
#include "sluice/session.h"
#include "sluice/str.h"

enum { J_QUEUED = 1, J_RUNNING, J_DONE };

#define OWNERS 64 /* owners remembered for round-robin (the least recent is forgotten) */

struct worker {
    struct sl_searchd *d;
    pthread_t th;
    /* under d->cmu: for the watchdog */
    PGcancel *cancel;          /* of the worker's connection, NULL when none */
    struct sl_search_job *cur; /* the job running, NULL between jobs */
    int64_t deadline_ms;       /* cur's end (monotonic) */
    bool sent;                 /* a cancel went for cur */
};

struct sl_searchd {
    struct sl_searchd_opts o;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct sl_search_job_list todo, running, done; /* under mu */
    size_t nout;                                   /* submitted, not yet taken back (under mu) */
    size_t max_out;
    int owner_running;                             /* most running jobs of one owner */
    struct {
        uint64_t owner, seq;
    } served[OWNERS];                              /* under mu: when each owner last started */
    uint64_t seq;
    pthread_mutex_t cmu;
    struct worker *workers;
    int nworkers;
    pthread_t watch;
    bool watching;
    _Atomic int stop;
};

struct sl_search_job *sl_search_job_new(size_t answer_max)
{
    struct sl_search_job *j = calloc(1, sizeof(*j));

    if (j) {
        sl_buf_init(&j->body, answer_max);
        atomic_init(&j->cancel, 0);
        atomic_init(&j->timed_out, 0);
    }
    return j;
}

void sl_search_job_free(struct sl_search_job *j)
{
    if (j == NULL)
        return;
    sl_buf_free(&j->body);
    free(j->q);
    free(j->scope);
    if (j->secret) {
        explicit_bzero(j->secret, strlen(j->secret));
        free(j->secret);
    }
    free(j->extra);
    free(j);
}

size_t sl_searchd_queue_max(int workers)
{
    return (size_t)(workers < 1 ? 1 : workers) * SL_SEARCHD_JOBS_PER_WORKER;
}

/* The same JSON error shape as search.c's, for the one error made here. */
static void set_error(struct sl_search_job *j, int status, const char *msg)
{
    j->status = status;
    sl_buf_reset(&j->body);
    if (sl_buf_addf(&j->body, "{\"error\":\"%s\"}\n", msg))
        sl_buf_reset(&j->body);
}

uint64_t sl_searchd_owner(const char *token, size_t len)
{
    return sl_fnv1a64(token, len);
}

/* Under mu: when owner last started a job (0: not lately). */
static uint64_t served_seq(const struct sl_searchd *d, uint64_t owner)
{
    for (int i = 0; i < OWNERS; i++)
        if (d->served[i].seq && d->served[i].owner == owner)
            return d->served[i].seq;
    return 0;
}

/* Under mu: owner starts a job now (replaces its entry, or the least recent one). */
static void served_note(struct sl_searchd *d, uint64_t owner)
{
    int k = 0;

    for (int i = 0; i < OWNERS; i++) {
        if (d->served[i].seq && d->served[i].owner == owner) {
            k = i;
            break;
        }
        if (d->served[i].seq < d->served[k].seq)
            k = i;
    }
    d->served[k].owner = owner;
    d->served[k].seq = ++d->seq;
}

/* Under mu: jobs of owner in list l. */
static int count_owner(const struct sl_search_job_list *l, uint64_t owner)
{
    const struct sl_search_job *j;
    int n = 0;

    TAILQ_FOREACH(j, l, link)
        n += j->owner == owner;
    return n;
}

/* Under mu: the next job to run, or NULL: among the queued jobs whose owner runs fewer
 * than owner_running, the first of the owner served least recently. The queue holds at
 * most workers x SL_SEARCHD_JOBS_PER_WORKER jobs, so the scans stay short. */
static struct sl_search_job *pick(struct sl_searchd *d)
{
    struct sl_search_job *j, *best = NULL;
    uint64_t best_seq = 0;

    TAILQ_FOREACH(j, &d->todo, link) {
        uint64_t seq;
        if (best && j->owner == best->owner)
            continue;
        if (count_owner(&d->running, j->owner) >= d->owner_running)
            continue;
        seq = served_seq(d, j->owner);
        if (best == NULL || seq < best_seq) {
            best = j;
            best_seq = seq;
        }
    }
    return best;
}

/* A connection that answered a statement: set this job's statement_timeout on it
 * (checked: a connection that fails here is reconnected once). 0, or SL_EDB. */
static int worker_ready(struct worker *w, PGconn **pg)
{
    const struct sl_searchd *d = w->d;
    char sql[192];
    PGresult *r;

    for (int attempt = 0; attempt < 2; attempt++) {
        if (*pg == NULL || PQstatus(*pg) != CONNECTION_OK) {
            pthread_mutex_lock(&w->d->cmu);
            PQfreeCancel(w->cancel);
            w->cancel = NULL;
            pthread_mutex_unlock(&w->d->cmu);
            sl_db_close(*pg);
            *pg = NULL;
            if (sl_db_connect(d->o.database_url, pg))
                return SL_EDB;
            /* No JIT (compiling costs more than these short queries run) and no parallel
             * workers: each is a new process that page-faults in every shared buffer it
             * reads, which without huge pages cost a 7-day block scan 140 ms instead of
             * 57 ms (docs/search.md). */
            r = PQexec(*pg, "SET jit = off; SET max_parallel_workers_per_gather = 0; "
                            "SET application_name = 'sluice-search'");
            PQclear(r);
            pthread_mutex_lock(&w->d->cmu);
            w->cancel = PQgetCancel(*pg);
            pthread_mutex_unlock(&w->d->cmu);
        }
        snprintf(sql, sizeof(sql), "SET statement_timeout = %d", d->o.timeout_s * 1000);
        r = PQexec(*pg, sql);
        if (r != NULL && PQresultStatus(r) == PGRES_COMMAND_OK) {
            PQclear(r);
            return 0;
        }
        /* a connection PostgreSQL dropped (a restart) is noticed here: once more */
        sl_db_log_error("search connection check failed", *pg, r);
        PQclear(r);
        sl_db_close(*pg);
        *pg = NULL;
    }
    return SL_EDB;
}

static void set_cur(struct worker *w, struct sl_search_job *j)
{
    pthread_mutex_lock(&w->d->cmu);
    w->cur = j;
    w->sent = false;
    w->deadline_ms = sl_clock_mono_ms() + (int64_t)w->d->o.timeout_s * 1000;
    pthread_mutex_unlock(&w->d->cmu);
}

/* The job's statements on pg: 0, or SL_EDB when the connection failed. */
static int job_run(PGconn *pg, struct sl_sources *src, struct sl_search_job *j)
{
    switch (j->kind) {
    case SL_JOB_AGGREGATE:
        return sl_search_aggregate(pg, src, &j->p, j->buckets, &j->status, &j->body);
    case SL_JOB_CONTEXT:
        return sl_search_context(pg, &j->p, j->ctx_id, j->ctx_n, &j->status, &j->body);
    case SL_JOB_SESSION_ADD:
        return sl_session_add(pg, src, j->secret, j->tok_hex, j->expires_s, &j->status, &j->body);
    case SL_JOB_SESSION_RM:
        return sl_session_rm(pg, src, j->secret, &j->status, &j->body);
    case SL_JOB_SEARCH:
    default:
        return sl_search_run(pg, src, &j->p, &j->status, &j->body);
    }
}

static void run_job(struct worker *w, PGconn **pg, struct sl_search_job *j)
{
    j->p.cancel = &j->cancel;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (worker_ready(w, pg)) {
            set_error(j, 503, "database unreachable: retry later");
            return;
        }
        if (job_run(*pg, w->d->o.sources, j) == 0)
            break;
        /* the connection failed under the search: reconnect, and run it once more */
        sl_db_close(*pg);
        *pg = NULL;
        if (attempt == 1 || atomic_load(&j->cancel))
            break;
    }
    if (atomic_load(&j->timed_out))
        set_error(j, 504, "search timed out: narrow the time range or the query");
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct sl_searchd *d = w->d;
    PGconn *pg = NULL;

    for (;;) {
        struct sl_search_job *j = NULL;
        int64_t t0;

        pthread_mutex_lock(&d->mu);
        while (!atomic_load(&d->stop) && (j = pick(d)) == NULL)
            pthread_cond_wait(&d->cv, &d->mu);
        if (atomic_load(&d->stop)) {
            pthread_mutex_unlock(&d->mu);
            break;
        }
        TAILQ_REMOVE(&d->todo, j, link);
        TAILQ_INSERT_TAIL(&d->running, j, link);
        j->state = J_RUNNING;
        served_note(d, j->owner);
        pthread_mutex_unlock(&d->mu);

        t0 = sl_clock_mono_ms();
        set_cur(w, j);
        run_job(w, &pg, j);
        set_cur(w, NULL);
        SL_INC(search_usec, (uint64_t)(sl_clock_mono_ms() - t0) * 1000);
        if (j->status == 200)
            SL_INC(searches, 1);
        else
            SL_INC(search_errors, 1);
        pthread_mutex_lock(&d->mu);
        TAILQ_REMOVE(&d->running, j, link);
        TAILQ_INSERT_TAIL(&d->done, j, link);
        j->state = J_DONE;
        pthread_cond_broadcast(&d->cv); /* its owner may run another one now */
        pthread_mutex_unlock(&d->mu);
        d->o.wake.fn(d->o.wake.arg);
    }
    pthread_mutex_lock(&d->cmu);
    PQfreeCancel(w->cancel);
    w->cancel = NULL;
    pthread_mutex_unlock(&d->cmu);
    sl_db_close(pg);
    return NULL;
}

/* The watchdog: every SL_SEARCHD_WATCH_MS, cancel the statement of each running job
 * whose client left or whose time is up. PQcancel connects to PostgreSQL, so it runs
 * here, not on the loop, and under cmu only (a worker between jobs waits for it; a
 * cancel that reaches an idle backend is dropped by PostgreSQL). */
static void *watch_main(void *arg)
{
    struct sl_searchd *d = arg;
    struct timespec ts = {0, SL_SEARCHD_WATCH_MS * 1000000L};

    while (!atomic_load(&d->stop)) {
        int64_t now;
        nanosleep(&ts, NULL);
        now = sl_clock_mono_ms();
        pthread_mutex_lock(&d->cmu);
        for (int i = 0; i < d->nworkers; i++) {
            struct worker *w = &d->workers[i];
            char err[256];
            if (w->cur == NULL || w->sent)
                continue;
            if (now >= w->deadline_ms)
                atomic_store(&w->cur->timed_out, 1);
            else if (!atomic_load(&w->cur->cancel))
                continue;
            atomic_store(&w->cur->cancel, 1);
            w->sent = true;
            if (w->cancel && !PQcancel(w->cancel, err, sizeof(err)))
                sl_warn("search cancel failed", "err=\"%s\"", err);
        }
        pthread_mutex_unlock(&d->cmu);
    }
    return NULL;
}

int sl_searchd_start(const struct sl_searchd_opts *o, struct sl_searchd **out)
{
    struct sl_searchd *d = calloc(1, sizeof(*d));

    if (d == NULL)
        return SL_ENOMEM;
    d->o = *o;
    if (d->o.workers < 1)
        d->o.workers = 1;
    d->max_out = sl_searchd_queue_max(d->o.workers);
    d->owner_running = d->o.workers > 1 ? d->o.workers - 1 : 1;
    TAILQ_INIT(&d->todo);
    TAILQ_INIT(&d->running);
    TAILQ_INIT(&d->done);
    pthread_mutex_init(&d->mu, NULL);
    pthread_mutex_init(&d->cmu, NULL);
    pthread_cond_init(&d->cv, NULL);
    d->workers = calloc((size_t)d->o.workers, sizeof(*d->workers));
    if (d->workers == NULL)
        goto fail;
    for (int i = 0; i < d->o.workers; i++) {
        d->workers[i].d = d;
        if (pthread_create(&d->workers[i].th, NULL, worker_main, &d->workers[i]) != 0)
            goto fail;
        d->nworkers++;
    }
    if (pthread_create(&d->watch, NULL, watch_main, d) != 0)
        goto fail;
    d->watching = true;
    *out = d;
    return 0;
fail:
    sl_searchd_stop(d);
    return SL_ENOMEM;
}

int sl_searchd_submit(struct sl_searchd *d, struct sl_search_job *j)
{
    int rc = SL_EFULL;

    pthread_mutex_lock(&d->mu);
    if (d->nout >= d->max_out)
        goto out;
    rc = SL_EAGAIN;
    if (d->o.token_jobs > 0 &&
        count_owner(&d->todo, j->owner) + count_owner(&d->running, j->owner) >= d->o.token_jobs)
        goto out;
    d->nout++;
    j->state = J_QUEUED;
    TAILQ_INSERT_TAIL(&d->todo, j, link);
    pthread_cond_broadcast(&d->cv); /* a worker that skipped a busy owner may take this one */
    rc = 0;
out:
    pthread_mutex_unlock(&d->mu);
    return rc;
}

void sl_searchd_cancel(struct sl_searchd *d, struct sl_search_job *j)
{
    bool dropped = false;

    pthread_mutex_lock(&d->mu);
    atomic_store(&j->cancel, 1); /* a running one: the watchdog sends the cancel */
    if (j->state == J_QUEUED) {
        TAILQ_REMOVE(&d->todo, j, link);
        TAILQ_INSERT_TAIL(&d->done, j, link);
        j->state = J_DONE;
        dropped = true;
    }
    pthread_mutex_unlock(&d->mu);
    if (dropped)
        d->o.wake.fn(d->o.wake.arg);
}

void sl_searchd_take_done(struct sl_searchd *d, struct sl_search_job_list *out)
{
    struct sl_search_job *j;
    size_t n = 0;

    pthread_mutex_lock(&d->mu);
    for (j = TAILQ_FIRST(&d->done); j; j = TAILQ_NEXT(j, link))
        n++;
    d->nout -= n;
    TAILQ_CONCAT(out, &d->done, link);
    pthread_mutex_unlock(&d->mu);
}

void sl_searchd_stop(struct sl_searchd *d)
{
    struct sl_search_job *j;

    if (d == NULL)
        return;
    atomic_store(&d->stop, 1);
    pthread_mutex_lock(&d->mu);
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
    for (int i = 0; i < d->nworkers; i++)
        pthread_join(d->workers[i].th, NULL);
    if (d->watching)
        pthread_join(d->watch, NULL);
    while ((j = TAILQ_FIRST(&d->todo)) != NULL) {
        TAILQ_REMOVE(&d->todo, j, link);
        sl_search_job_free(j);
    }
    while ((j = TAILQ_FIRST(&d->done)) != NULL) {
        TAILQ_REMOVE(&d->done, j, link);
        sl_search_job_free(j);
    }
    free(d->workers);
    pthread_mutex_destroy(&d->mu);
    pthread_mutex_destroy(&d->cmu);
    pthread_cond_destroy(&d->cv);
    free(d);
}
