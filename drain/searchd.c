/* The read API's search workers (drain/readq.h): a bounded queue of search jobs
 * from the event loop, SLUICE_SEARCH_WORKERS threads each with its own PostgreSQL
 * connection running them (drain/search.c), and the finished jobs handed back through a
 * second queue and the loop's wake callback.
 *
 * What it leaves to others: parsing and answering requests (drain/api.c, on the loop),
 * the SQL (drain/search.c). Threads: sl_searchd_start/submit/take_done/stop on the loop;
 * worker_main on each worker. libpq only; no libevent. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include <libpq-fe.h>

#include "readq.h"
#include "sluice/clock.h"
#include "sluice/db.h"
#include "sluice/metrics.h"
#include "sluice/search.h"

struct sl_searchd {
    struct sl_searchd_opts o;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct sl_search_job_list todo, done; /* under mu */
    size_t nout;                          /* submitted, not yet taken back (under mu) */
    size_t max_out;
    pthread_t *workers;
    int nworkers;
    _Atomic int stop;
};

struct sl_search_job *sl_search_job_new(size_t answer_max)
{
    struct sl_search_job *j = calloc(1, sizeof(*j));

    if (j)
        sl_buf_init(&j->body, answer_max);
    return j;
}

void sl_search_job_free(struct sl_search_job *j)
{
    if (j == NULL)
        return;
    sl_buf_free(&j->body);
    free(j->q);
    free(j->scope);
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

static int worker_connect(const struct sl_searchd *d, PGconn **pg)
{
    char sql[192];

    if (*pg && PQstatus(*pg) == CONNECTION_OK)
        return 0;
    sl_db_close(*pg);
    *pg = NULL;
    if (sl_db_connect(d->o.database_url, pg))
        return SL_EDB;
    /* No JIT (compiling costs more than these short queries run) and no parallel
     * workers: each is a new process that page-faults in every shared buffer it reads,
     * which without huge pages cost a 7-day block scan 140 ms instead of 57 ms
     * (docs/search.md). */
    snprintf(sql, sizeof(sql),
             "SET statement_timeout = %d; SET jit = off; SET max_parallel_workers_per_gather = 0; "
             "SET application_name = 'sluice-search'",
             d->o.timeout_s * 1000);
    PQclear(PQexec(*pg, sql));
    return 0;
}

static void *worker_main(void *arg)
{
    struct sl_searchd *d = arg;
    PGconn *pg = NULL;

    for (;;) {
        struct sl_search_job *j;
        int64_t t0;

        pthread_mutex_lock(&d->mu);
        while (TAILQ_EMPTY(&d->todo) && !atomic_load(&d->stop))
            pthread_cond_wait(&d->cv, &d->mu);
        if (atomic_load(&d->stop)) {
            pthread_mutex_unlock(&d->mu);
            break;
        }
        j = TAILQ_FIRST(&d->todo);
        TAILQ_REMOVE(&d->todo, j, link);
        pthread_mutex_unlock(&d->mu);

        t0 = sl_clock_mono_ms();
        if (worker_connect(d, &pg)) {
            set_error(j, 503, "database unreachable: retry later");
        } else if (sl_search_run(pg, d->o.sources, &j->p, &j->status, &j->body)) {
            sl_db_close(pg); /* reconnect for the next one */
            pg = NULL;
        }
        SL_INC(search_usec, (uint64_t)(sl_clock_mono_ms() - t0) * 1000);
        if (j->status == 200)
            SL_INC(searches, 1);
        else
            SL_INC(search_errors, 1);
        pthread_mutex_lock(&d->mu);
        TAILQ_INSERT_TAIL(&d->done, j, link);
        pthread_mutex_unlock(&d->mu);
        d->o.wake.fn(d->o.wake.arg);
    }
    sl_db_close(pg);
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
    TAILQ_INIT(&d->todo);
    TAILQ_INIT(&d->done);
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->cv, NULL);
    d->workers = calloc((size_t)d->o.workers, sizeof(*d->workers));
    if (d->workers == NULL)
        goto fail;
    for (int i = 0; i < d->o.workers; i++) {
        if (pthread_create(&d->workers[i], NULL, worker_main, d) != 0)
            goto fail;
        d->nworkers++;
    }
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
    if (d->nout < d->max_out) {
        d->nout++;
        TAILQ_INSERT_TAIL(&d->todo, j, link);
        pthread_cond_signal(&d->cv);
        rc = 0;
    }
    pthread_mutex_unlock(&d->mu);
    return rc;
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
        pthread_join(d->workers[i], NULL);
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
    pthread_cond_destroy(&d->cv);
    free(d);
}
