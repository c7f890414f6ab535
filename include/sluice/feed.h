/* The commit feed, for live tail (drain/feed.c).
 *
 * Several writers (nodes) may share one database, so row ids do not grow in commit order
 * (each node takes its ids from its own block of 2^20). Every writer commit is numbered in
 * the database (log_commits.seq, taken under a lock just before COMMIT, so the numbers
 * become visible in order) and announced with NOTIFY sluice_commits. The feed is the
 * tail thread's wake-up: this node's writer pushes the number of each commit it made, the
 * tail thread pushes the numbers it hears through NOTIFY, and the loop reads the highest
 * one when a stream opens (where a stream without Last-Event-ID starts). Thread-safe.
 *
 * It holds no ranges: the tail reads them from log_commits (drain/search.c). */
#ifndef SLUICE_FEED_H
#define SLUICE_FEED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/err.h"

struct sl_feed;

SL_MUSTCHECK int sl_feed_new(struct sl_feed **out);
/* Accepts NULL. */
void sl_feed_free(struct sl_feed *f);

/* A commit numbered seq is visible (this node's writer after COMMIT, or the tail thread
 * after a NOTIFY or a read of log_commits). Wakes the waiter when it is new. */
void sl_feed_push(struct sl_feed *f, int64_t seq);

/* The highest commit number pushed (0 before the first). */
int64_t sl_feed_head(struct sl_feed *f);

/* Wake the waiter (shutdown, a stream added, unpaused or closed). */
void sl_feed_wake(struct sl_feed *f);

/* The tail thread: wait until a push or a wake since the last wait, until fd (the tail's
 * PostgreSQL socket, -1: none) is readable, or timeout_ms. Returns true when woken by a
 * push or wake, false on the socket or the timeout. */
bool sl_feed_wait(struct sl_feed *f, int fd, int timeout_ms);

#endif
