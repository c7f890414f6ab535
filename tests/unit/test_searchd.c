/* Unit tests for the search workers' queue (drain/searchd.c, drain/readq.h)
 * without PostgreSQL or libevent: the workers cannot connect, so every job comes back
 * as a 503 JSON error through the wake callback. The queue's bound counts jobs until the
 * loop takes them back, so it is exact here however fast the workers are. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../drain/readq.h"
#include "sluice/err.h"
#include "sluice/log.h"

/* The loop's side of the wake callback: counts the wakes. */
struct waker {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int wakes;
};

static void on_wake(void *arg)
{
    struct waker *w = arg;
    pthread_mutex_lock(&w->mu);
    w->wakes++;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void wait_wakes(struct waker *w, int n)
{
    pthread_mutex_lock(&w->mu);
    while (w->wakes < n)
        pthread_cond_wait(&w->cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
}

static void test_queue_max(void **state)
{
    (void)state;
    assert_int_equal(sl_searchd_queue_max(1), SL_SEARCHD_JOBS_PER_WORKER);
    assert_int_equal(sl_searchd_queue_max(2), 2 * SL_SEARCHD_JOBS_PER_WORKER);
    assert_int_equal(sl_searchd_queue_max(0), SL_SEARCHD_JOBS_PER_WORKER); /* one worker */
    assert_int_equal(sl_searchd_queue_max(-3), SL_SEARCHD_JOBS_PER_WORKER);
}

static void test_submit_full_take_done(void **state)
{
    struct waker w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
    struct sl_searchd_opts o;
    struct sl_searchd *d = NULL;
    struct sl_search_job_list done;
    struct sl_search_job *j, *extra;
    size_t max = sl_searchd_queue_max(2), n = 0;
    (void)state;

    memset(&o, 0, sizeof(o));
    o.database_url = "host=/nonexistent-sluice-test dbname=none connect_timeout=1";
    o.workers = 2;
    o.timeout_s = 1;
    o.wake.fn = on_wake;
    o.wake.arg = &w;
    assert_int_equal(sl_searchd_start(&o, &d), 0);
    for (size_t i = 0; i < max; i++) {
        j = sl_search_job_new(4096);
        assert_non_null(j);
        assert_int_equal(sl_searchd_submit(d, j), 0);
    }
    /* full until the loop takes jobs back, finished or not */
    extra = sl_search_job_new(4096);
    assert_non_null(extra);
    assert_int_equal(sl_searchd_submit(d, extra), SL_EFULL);
    wait_wakes(&w, (int)max);
    assert_int_equal(sl_searchd_submit(d, extra), SL_EFULL);
    TAILQ_INIT(&done);
    sl_searchd_take_done(d, &done);
    while ((j = TAILQ_FIRST(&done)) != NULL) {
        TAILQ_REMOVE(&done, j, link);
        assert_int_equal(j->status, 503);
        assert_int_equal(j->body.len,
                         strlen("{\"error\":\"database unreachable: retry later\"}\n"));
        assert_memory_equal(j->body.p, "{\"error\":\"database unreachable: retry later\"}\n",
                            j->body.len);
        sl_search_job_free(j);
        n++;
    }
    assert_int_equal(n, max);
    /* room again; the job left inside is freed by stop */
    assert_int_equal(sl_searchd_submit(d, extra), 0);
    sl_searchd_stop(d);
}

/* A PostgreSQL that never answers: a listening socket nobody accepts on, so a worker's
 * connect waits out connect_timeout (2 s) and its job stays running meanwhile. */
static int silent_port(int *fd)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);

    *fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(*fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(*fd, 4), 0);
    assert_int_equal(getsockname(*fd, (struct sockaddr *)&a, &len), 0);
    return ntohs(a.sin_port);
}

/* One token's jobs past token_jobs are refused (SL_EAGAIN: the API's 429), another
 * token's are not; a queued job cancelled comes back at once, before the running one. */
static void test_owner_limit_and_cancel_queued(void **state)
{
    struct waker w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
    struct sl_searchd_opts o;
    struct sl_searchd *d = NULL;
    struct sl_search_job_list done;
    struct sl_search_job *a1, *a2, *a3, *b1;
    uint64_t ta = sl_searchd_owner("slr_a", 5), tb = sl_searchd_owner("slr_b", 5);
    char url[128];
    int fd;
    (void)state;

    assert_true(ta != tb);
    assert_int_equal(ta, sl_searchd_owner("slr_a", 5));
    snprintf(url, sizeof(url), "host=127.0.0.1 port=%d dbname=none connect_timeout=2",
             silent_port(&fd));
    memset(&o, 0, sizeof(o));
    o.database_url = url;
    o.workers = 1;
    o.timeout_s = 30;
    o.token_jobs = 2;
    o.wake.fn = on_wake;
    o.wake.arg = &w;
    assert_int_equal(sl_searchd_start(&o, &d), 0);
    a1 = sl_search_job_new(4096);
    a2 = sl_search_job_new(4096);
    a3 = sl_search_job_new(4096);
    b1 = sl_search_job_new(4096);
    a1->owner = a2->owner = a3->owner = ta;
    b1->owner = tb;
    assert_int_equal(sl_searchd_submit(d, a1), 0);
    assert_int_equal(sl_searchd_submit(d, a2), 0);
    assert_int_equal(sl_searchd_submit(d, a3), SL_EAGAIN); /* a1 running, a2 queued */
    assert_int_equal(sl_searchd_submit(d, b1), 0);
    sl_searchd_cancel(d, b1); /* still queued behind a1: dropped at once */
    wait_wakes(&w, 1);
    TAILQ_INIT(&done);
    sl_searchd_take_done(d, &done);
    assert_ptr_equal(TAILQ_FIRST(&done), b1);
    assert_null(TAILQ_NEXT(b1, link));
    TAILQ_REMOVE(&done, b1, link);
    sl_search_job_free(b1);
    sl_search_job_free(a3);
    sl_searchd_stop(d); /* frees a1 and a2 */
    close(fd);
}

static void test_job_free_accepts_null(void **state)
{
    struct sl_search_job *j = sl_search_job_new(16);
    (void)state;
    sl_search_job_free(NULL);
    assert_non_null(j);
    assert_int_equal(j->body.max, 16);
    sl_search_job_free(j); /* half-filled: no q, no scope */
    sl_searchd_stop(NULL);
}

int main(void)
{
    sl_log_min_level = (enum sl_log_level)(SL_LOG_ERROR + 1); /* the failed connections */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_queue_max),
        cmocka_unit_test(test_submit_full_take_done),
        cmocka_unit_test(test_owner_limit_and_cancel_queued),
        cmocka_unit_test(test_job_free_accepts_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
