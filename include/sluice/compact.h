/* Compaction of closed days (drain/compact.c, docs/search.md "Compacted days").
 *
 * A day partition of `logs` that ended before a boundary is packed source by source: the
 * source's rows of the day are re-blocked (the writer's tokenizer and filters, blocks of up
 * to an hour), each new block's rows go into one `log_packs` row (an array of the logs
 * row type, compressed by TOAST) and the block is marked packed; the rows leave `logs` in
 * the same transaction. Search, context,
 * aggregates, archives and retention read a packed block's rows from its pack, so every
 * answer is the same before and after.
 *
 * Maintenance thread or CLI; the caller's own connection; no event loop. Memory: one
 * FETCH of rows and the day's block filters of one source. */
#ifndef SLUICE_COMPACT_H
#define SLUICE_COMPACT_H

#include <stdbool.h>
#include <stdint.h>

#include "sluice/err.h"

struct pg_conn;

struct sl_compact_stats {
    long long sources; /* (source, day) packed */
    long long rows;    /* rows moved into packs */
    long long packs;   /* packs written */
    long long busy;    /* (source, day) passed over: a writer touched its blocks lately */
    long long skipped; /* (source, day) passed over: the step failed (see the log) */
    long long levels;  /* day levels written for days packed without one (before
                        * migration 13) */
    long long repacked; /* array packs compressed (docs/search.md "Compressed packs") */
    /* sl_compact_step's place: the day partition under way, its first µs, the last
     * source visited in it */
    char part[16];
    int64_t d0;
    int64_t after;
    bool packed_here; /* a source of it was packed this round: TRUNCATE it when empty */
};

/* How long after a writer last touched a block its rows wait (SL_BLOCK_MAX_AGE_US, the
 * writer's longest-open block, twice over). */
#define SL_COMPACT_FENCE_S 600

/* One step: in the oldest day partitions that ended at or before before_us (µs since the
 * epoch), pack the next source with rows (one transaction). *did: something was packed
 * (false: nothing is due this round). A (source, day) whose blocks a writer touched in
 * the last fence_s seconds waits; one that fails is logged and passed over until the
 * next round. Emptied partitions stay (retention drops them): a writer far behind may
 * still add to the day, and those rows are packed in a later round. When no day is due,
 * a step gives the oldest (source, day) packed without a day level (before migration 13)
 * its day level instead (st->levels). st starts zeroed and is kept between steps. */
SL_MUSTCHECK int sl_compact_step(struct pg_conn *c, int64_t before_us, int fence_s,
                                 struct sl_compact_stats *st, bool *did);

/* Every source of the day holding day_us, now (even an open day). For `sluice compact
 * --day` and tests. */
SL_MUSTCHECK int sl_compact_day(struct pg_conn *c, int64_t day_us, int fence_s,
                                struct sl_compact_stats *st);

#endif
