/* The writer thread: spool -> PostgreSQL, exactly once.
 *
 * It reads synced spool records in order, batches them, and in ONE transaction:
 * records the batch's Logplex-Frame-Ids (a retried frame is skipped), COPYs the rows
 * into `logs` grouped by source, upserts the `log_blocks` token filters of the blocks the
 * rows joined (drain/blocks.c, docs/search.md), and stores the spool LSN reached in
 * spool_checkpoints; its last statement numbers the commit in log_commits (sl_commit_stamp:
 * the commit-order lock, NOTIFY sluice_commits). After the commit it releases the spool up
 * to that LSN and pushes the commit's number to the commit feed (include/sluice/feed.h),
 * for live tail on this node; the other nodes hear the NOTIFY. A restart
 * reads the checkpoint and resumes there: no gaps, no duplicates.
 * See docs/internals/writer.md. */
#ifndef SLUICE_WRITER_H
#define SLUICE_WRITER_H

#include <stdbool.h>
#include <stdint.h>

#include "sluice/err.h"

struct sl_feed;
struct sl_spool;
struct sl_sources;
struct sl_writer;

struct sl_writer_opts {
    const char *database_url;
    struct sl_spool *spool;
    int batch_rows;       /* rows per transaction (upper bound) */
    const char *dead_dir; /* where entries PostgreSQL refuses are kept */
    struct sl_sources *sources; /* for alert rules: source names and scopes */
    const char *public_url;     /* for search links in alerts */
    struct sl_feed *feed;       /* told of every commit that stored rows; NULL: none.
                                   Borrowed: must outlive the writer */
    bool crashes;               /* store crash anchors (sl_crash_anchor) with the rows */
};

/* Start the thread. Returns 0 and *out; the thread connects (and reconnects) by
 * itself, so PostgreSQL need not be up yet. */
SL_MUSTCHECK int sl_writer_start(const struct sl_writer_opts *o, struct sl_writer **out);

/* Write what is spooled until the spool is empty or deadline_ms (CLOCK_MONOTONIC,
 * milliseconds) passes, then stop the thread and free. Accepts NULL. */
void sl_writer_stop(struct sl_writer *w, int64_t deadline_ms);

#endif
