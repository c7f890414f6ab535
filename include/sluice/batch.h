/* The writer's batch arithmetic (drain/batch.c), apart from PostgreSQL: when a batch is
 * cut, when COPY data goes to libpq, the frame-id de-duplication decision, the COPY
 * order by source, row-id blocks, the partition days already made, and the counts a
 * commit adds to the metrics. Pure: no I/O, no allocation, no globals. Writer thread
 * (drain/writer.c does the I/O and calls these). */
#ifndef SLUICE_BATCH_H
#define SLUICE_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/buf.h"
#include "sluice/err.h"
#include "sluice/row.h"
#include "sluice/str.h"

#define SL_BATCH_MAX_BYTES (32u * 1024u * 1024u) /* spooled bytes per batch, at most */
/* COPY data goes to libpq in pieces of this size (see drain/writer.c for the figures). */
#define SL_BATCH_COPY_CHUNK (16u << 10)
#define SL_BATCH_ID_BLOCK_BITS 20 /* row ids come in blocks of 2^20 from logs_id_block_seq */
#define SL_BATCH_KNOWN_DAYS 8

/* Whether a batch holding `rows` rows and `bytes` spooled bytes takes no more records
 * (batch_rows: SLUICE_BATCH_ROWS). A record is never split: the last one may pass. */
bool sl_batch_full(size_t rows, size_t bytes, int batch_rows);

/* Whether `len` bytes of encoded COPY data should go to libpq now (final: the last
 * piece, sent whatever its size unless empty). */
bool sl_batch_copy_due(size_t len, bool final);

/* ---- frame-id de-duplication */

/* One record of the batch as the de-duplication sees it. */
struct sl_batch_frame {
    int64_t source_id;
    struct sl_str id; /* Logplex-Frame-Id, borrowed; len 0: none, or the record undecodable */
    bool dup;         /* in: as the previous attempt left it; out: skip the record */
    bool ask;         /* out: its (source, id) goes to ingest_frames */
};

/* Decide within the batch: a frame that repeats an earlier record's (source, id) is a
 * duplicate; every other frame with an id is a duplicate until PostgreSQL says it is new
 * (dup and ask set). A frame already marked dup on entry (a retried batch) stays so and
 * is not asked again. Records without an id are left alone. Returns how many to ask. */
size_t sl_batch_frames_mark(struct sl_batch_frame *f, size_t n);

/* The asked frames as two PostgreSQL array literals, "{1,2}" and "{\"a\",\"b\"}", each
 * ended by a NUL (parameters of the ingest_frames insert). Frame-id bytes that are
 * control characters or not ASCII become '?' ('"' and '\' are escaped). Appends to
 * sids and fids (caller owns); SL_ETOOBIG past their caps. */
SL_MUSTCHECK int sl_batch_frames_arrays(const struct sl_batch_frame *f, size_t n,
                                        struct sl_buf *sids, struct sl_buf *fids);

/* PostgreSQL stored (source_id, fid[0..flen)) as new: the first frame still marked dup
 * whose source matches and whose id reads fid once sanitised as above is cleared. Returns
 * its index, or -1 when none matches. */
long sl_batch_frames_stored(struct sl_batch_frame *f, size_t n, int64_t source_id, const char *fid,
                            size_t flen);

/* ---- COPY order */

/* A record's place in the COPY order: by source, then by spool order. */
struct sl_batch_ord {
    int64_t source_id;
    size_t idx;
};

/* Sort o[0..n) by source, keeping idx order within a source (idx breaks ties, so the
 * sort is stable). */
void sl_batch_order(struct sl_batch_ord *o, size_t n);

/* ---- row ids */

/* 0 when [next, end) still holds n ids, 1 when a new block must be taken, SL_ETOOBIG
 * when n rows can never fit in one block. */
int sl_batch_ids_need(int64_t next, int64_t end, size_t n);
/* The ids of block number `block` of logs_id_block_seq: [*next, *end). */
void sl_batch_ids_block(int64_t block, int64_t *next, int64_t *end);

/* ---- day partitions the writer already made */

struct sl_batch_days {
    int64_t day[SL_BATCH_KNOWN_DAYS]; /* oldest first */
    int n;
};

/* The UTC day number of a receive time (µs since the epoch, >= 0). */
int64_t sl_batch_day(int64_t received_us);
bool sl_batch_days_has(const struct sl_batch_days *d, int64_t day);
/* Remember day, forgetting the oldest one when full. */
void sl_batch_days_add(struct sl_batch_days *d, int64_t day);

/* ---- the commit's rows per source, for its log_commits rows (the live tail's order) */

/* One source's rows in a commit: a contiguous id range (the COPY is grouped by source and
 * ids are given in COPY order), its received_at range and row count. */
struct sl_batch_group {
    int64_t source_id, id_lo, id_hi, rmin_us, rmax_us, nrows;
};

/* Groups of one transaction, grown as rows are added. */
struct sl_batch_groups {
    struct sl_batch_group *g;
    size_t n, cap;
};

/* Row id of source_id received at received_us, the next row COPYed: it extends the last
 * group when of the same source and the next id, else starts one. SL_ENOMEM. */
SL_MUSTCHECK int sl_batch_group_row(struct sl_batch_groups *gs, int64_t source_id, int64_t id,
                                    int64_t received_us);
/* Forget the groups (a new transaction); keeps the memory. */
void sl_batch_groups_reset(struct sl_batch_groups *gs);
void sl_batch_groups_free(struct sl_batch_groups *gs);

/* ---- what a commit adds to the metrics */

struct sl_batch_counts {
    uint64_t rows, parse_errors, raw, truncated, dup_frames, dup_lines;
    uint64_t lost[3]; /* lines the sender reported lost: Heroku L10, L12, L13 */
    int64_t id_lo, id_hi, rmin_us, rmax_us; /* of the rows stored (when rows > 0) */
};

/* The index in sl_batch_counts.lost of a logplex loss code, -1 for any other code. */
int sl_batch_loss_slot(int code);
/* Count one stored row: its id, receive time, what building it found, its message flags
 * (SL_MSG_*). */
void sl_batch_count_row(struct sl_batch_counts *bc, int64_t id, int64_t received_us,
                        const struct sl_row_info *info, unsigned msg_flags);
/* Count one record skipped as a retried frame, with its nmsgs lines. */
void sl_batch_count_dup(struct sl_batch_counts *bc, uint32_t nmsgs);

#endif
