/* The hour level: a coarse filter level for live (not yet packed) blocks (drain/hourlevel.c,
 * docs/search.md "The hour level").
 *
 * For each closed UTC hour, each source's live blocks whose newest row falls in it (and
 * that span less than an hour, so a search knows which hours a window's blocks are in) get one
 * sliced Bloom filter of every token of their rows (drain/dayfilter.c with
 * SL_HOURFILTER_SLICES slices: 64 rows of log_hour_filters, keyed (slice, hour, source_id,
 * gen)), and are marked hourly in the same transaction. A search with words reads, per
 * token, one row per (source, hour, gen) and then only the hourly blocks of the (source,
 * hour)s that may hold every token of a conjunction (drain/search.c). Blocks that come
 * late to an hour that has its level, or whose mark a writer cleared, get a filter set of
 * their own (another gen, from a sequence), so nothing stays unmarked for good.
 *
 * Invariant: a block marked hourly has its tokens in a filter of (its source, the hour of
 * its max_received). So the mark is cleared by whatever changes a block (the writer's
 * upsert, compaction's trimming of a block across midnight), and the filters go only with
 * their blocks: compaction deletes a (source, day)'s hour level with its live blocks;
 * retention and the disk guard with the day's partition.
 *
 * Maintenance thread or CLI; the caller's connection. Memory: one filter (at most
 * SL_HOURFILTER_SLICES x 2^20 bits, 8 MiB) and one FETCH of rows. */
#ifndef SLUICE_HOURLEVEL_H
#define SLUICE_HOURLEVEL_H

#include <stdbool.h>
#include <stdint.h>

#include "sluice/err.h"

struct pg_conn;

struct sl_hour_level_stats {
    long long levels;  /* filter sets written */
    long long blocks;  /* blocks marked hourly */
    long long rows;    /* rows read */
    long long skipped; /* (source, hour) passed over: the step failed (see the log) */
    /* sl_hour_level_step's place in the round: the hour (s since the epoch) and the last
     * source done in it */
    int64_t hour;
    int64_t after;
};

/* At most this many blocks (and about this many rows) per filter set: a busy source's hour
 * takes a few sets, each one short transaction. */
#define SL_HOUR_LEVEL_MAX_BLOCKS 2048
#define SL_HOUR_LEVEL_MAX_ROWS 2000000

/* One step: the next (source, hour) of the round, among the hours that ended at or before
 * before_us (µs since the epoch), with live blocks not yet marked and untouched by a
 * writer for fence_s seconds: one filter set written, its blocks marked, one transaction.
 * *did: something was written (false: the round is over; the next starts from the oldest
 * hour again). st starts zeroed and is kept between steps. */
SL_MUSTCHECK int sl_hour_level_step(struct pg_conn *c, int64_t before_us, int fence_s,
                                    struct sl_hour_level_stats *st, bool *did);

#endif
