/* The writer's commit feed, for live tail (drain/feed.c).
 *
 * After each COMMIT the writer pushes the id range and the received_at range of the
 * rows it just made visible. The tail worker waits on it instead of polling PostgreSQL,
 * and uses the received_at bound to read only the new rows through the
 * (source_id, received_at) btree. A bounded ring (the newest commits); thread-safe.
 *
 * Row ids of one writer grow in commit order (one writer per database: see
 * docs/architecture.md), so "rows with id > X" are exactly the rows committed after
 * the commit that held X. */
#ifndef SLUICE_FEED_H
#define SLUICE_FEED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/err.h"

struct sl_feed;

/* A ring of cap commits (at least 16). */
SL_MUSTCHECK int sl_feed_new(size_t cap, struct sl_feed **out);
/* Accepts NULL. */
void sl_feed_free(struct sl_feed *f);

/* The writer, after a COMMIT that stored rows with ids id_lo..id_hi (every id of the
 * range belongs to the commit; id_lo <= id_hi) and received_at (µs since the epoch)
 * rmin_us..rmax_us. Wakes the waiters. */
void sl_feed_push(struct sl_feed *f, int64_t id_lo, int64_t id_hi, int64_t rmin_us,
                  int64_t rmax_us);

/* The highest committed id (0 before the first push). */
int64_t sl_feed_last_id(struct sl_feed *f);

/* Block until the highest committed id passes after_id, timeout_ms passes, or
 * sl_feed_wake is called. Returns the highest committed id. */
int64_t sl_feed_wait(struct sl_feed *f, int64_t after_id, int timeout_ms);
/* Wake every waiter (shutdown, a new subscriber). */
void sl_feed_wake(struct sl_feed *f);

/* For the rows with id > after_id: when the ring still holds every commit after
 * after_id, true with *rmin_us the smallest received_at among them, *rmax_us the
 * largest and *hi_id the highest id (rows with id > after_id and <= *hi_id all have
 * received_at within [*rmin_us, *rmax_us]). False when no commit is newer than
 * after_id (*hi_id = after_id) or when the ring no longer reaches back that far
 * (*hi_id = the highest id; the caller reads without the time bound). */
bool sl_feed_since(struct sl_feed *f, int64_t after_id, int64_t *rmin_us, int64_t *rmax_us,
                   int64_t *hi_id);

#endif
