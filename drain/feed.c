/* The writer's commit feed (include/sluice/feed.h): a mutex-guarded ring of commits. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "sluice/clock.h"
#include "sluice/feed.h"

struct commit {
    int64_t lo, hi, rmin, rmax;
};

struct sl_feed {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct commit *ring;
    size_t cap, head, n; /* newest at (head + n - 1) % cap */
    int64_t last_id;
    int64_t evicted_hi; /* hi of the newest commit pushed out of the ring; -1: none */
    uint64_t wakes;
};

int sl_feed_new(size_t cap, struct sl_feed **out)
{
    struct sl_feed *f = calloc(1, sizeof(*f));
    pthread_condattr_t ca;

    if (f == NULL)
        return SL_ENOMEM;
    f->cap = cap < 16 ? 16 : cap;
    f->evicted_hi = -1;
    f->ring = calloc(f->cap, sizeof(*f->ring));
    if (f->ring == NULL) {
        free(f);
        return SL_ENOMEM;
    }
    pthread_mutex_init(&f->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&f->cv, &ca);
    pthread_condattr_destroy(&ca);
    *out = f;
    return 0;
}

void sl_feed_free(struct sl_feed *f)
{
    if (f == NULL)
        return;
    pthread_mutex_destroy(&f->mu);
    pthread_cond_destroy(&f->cv);
    free(f->ring);
    free(f);
}

void sl_feed_push(struct sl_feed *f, int64_t id_lo, int64_t id_hi, int64_t rmin_us,
                  int64_t rmax_us)
{
    struct commit *c;

    if (f == NULL || id_hi < id_lo)
        return;
    pthread_mutex_lock(&f->mu);
    if (f->n == f->cap) {
        f->evicted_hi = f->ring[f->head].hi;
        f->head = (f->head + 1) % f->cap;
        f->n--;
    }
    c = &f->ring[(f->head + f->n) % f->cap];
    c->lo = id_lo;
    c->hi = id_hi;
    c->rmin = rmin_us;
    c->rmax = rmax_us;
    f->n++;
    if (id_hi > f->last_id)
        f->last_id = id_hi;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

int64_t sl_feed_last_id(struct sl_feed *f)
{
    int64_t v;

    pthread_mutex_lock(&f->mu);
    v = f->last_id;
    pthread_mutex_unlock(&f->mu);
    return v;
}

int64_t sl_feed_wait(struct sl_feed *f, int64_t after_id, int timeout_ms)
{
    struct timespec ts;
    int64_t v;
    uint64_t w;

    sl_clock_mono_deadline(&ts, timeout_ms);
    pthread_mutex_lock(&f->mu);
    w = f->wakes;
    while (f->last_id <= after_id && f->wakes == w)
        if (pthread_cond_timedwait(&f->cv, &f->mu, &ts) == ETIMEDOUT)
            break;
    v = f->last_id;
    pthread_mutex_unlock(&f->mu);
    return v;
}

void sl_feed_wake(struct sl_feed *f)
{
    pthread_mutex_lock(&f->mu);
    f->wakes++;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

bool sl_feed_since(struct sl_feed *f, int64_t after_id, int64_t *rmin_us, int64_t *rmax_us,
                   int64_t *hi_id)
{
    bool ok = false, any = false;
    int64_t lo = INT64_MAX, hi = INT64_MIN;

    pthread_mutex_lock(&f->mu);
    *hi_id = f->last_id > after_id ? f->last_id : after_id;
    if (f->last_id > after_id && f->n > 0) {
        /* the ring reaches back far enough when its oldest commit starts at or before
         * after_id + 1, or when after_id was in a commit that left it: every later
         * commit is in the ring */
        const struct commit *oldest = &f->ring[f->head];
        if (oldest->lo <= after_id + 1 || (f->evicted_hi >= 0 && after_id >= f->evicted_hi)) {
            for (size_t i = f->n; i-- > 0;) {
                const struct commit *c = &f->ring[(f->head + i) % f->cap];
                if (c->hi <= after_id)
                    break;
                any = true;
                lo = c->rmin < lo ? c->rmin : lo;
                hi = c->rmax > hi ? c->rmax : hi;
            }
            ok = any;
        }
    }
    pthread_mutex_unlock(&f->mu);
    if (ok) {
        *rmin_us = lo;
        *rmax_us = hi;
    }
    return ok;
}
