/* The commit feed (include/sluice/feed.h): the highest commit number seen and an eventfd
 * that wakes the tail thread, which also polls its PostgreSQL socket for NOTIFY. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "sluice/feed.h"

struct sl_feed {
    pthread_mutex_t mu;
    int64_t head; /* under mu */
    int efd;      /* readable after a push or a wake */
};

int sl_feed_new(struct sl_feed **out)
{
    struct sl_feed *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return SL_ENOMEM;
    f->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (f->efd < 0) {
        free(f);
        return SL_EIO;
    }
    pthread_mutex_init(&f->mu, NULL);
    *out = f;
    return 0;
}

void sl_feed_free(struct sl_feed *f)
{
    if (f == NULL)
        return;
    close(f->efd);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

void sl_feed_wake(struct sl_feed *f)
{
    uint64_t one = 1;

    /* EAGAIN: the counter is full, the waiter wakes anyway */
    if (write(f->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        return;
}

void sl_feed_push(struct sl_feed *f, int64_t seq)
{
    bool fresh;

    if (f == NULL)
        return;
    pthread_mutex_lock(&f->mu);
    fresh = seq > f->head;
    if (fresh)
        f->head = seq;
    pthread_mutex_unlock(&f->mu);
    if (fresh)
        sl_feed_wake(f);
}

int64_t sl_feed_head(struct sl_feed *f)
{
    int64_t v;

    pthread_mutex_lock(&f->mu);
    v = f->head;
    pthread_mutex_unlock(&f->mu);
    return v;
}

bool sl_feed_wait(struct sl_feed *f, int fd, int timeout_ms)
{
    struct pollfd p[2] = {{f->efd, POLLIN, 0}, {fd, POLLIN, 0}};
    uint64_t v;
    bool woken;

    if (poll(p, fd >= 0 ? 2 : 1, timeout_ms) < 0)
        return false;
    woken = (p[0].revents & POLLIN) != 0;
    if (woken && read(f->efd, &v, sizeof(v)) < 0)
        woken = errno == EAGAIN ? false : woken;
    return woken;
}
