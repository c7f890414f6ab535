/* The writer's open blocks of search tokens (drain/blocks.c), for `log_blocks`.
 *
 * A block is one source's consecutive stored rows with a Bloom filter of their tokens
 * (the format of include/sluice/tokens.h, docs/search.md). One block per source is OPEN at a time and
 * lives across COPY batches; every batch's transaction upserts the `log_blocks` row of each
 * block it touched, keyed (source_id, min_id). A block closes when it holds max_tokens
 * distinct tokens or max_rows rows (the source's next row opens a new one), when its
 * received_at span reaches max_age_us (checked as rows arrive), or when it was opened
 * max_age_us ago by the writer's clock (checked at batch start).
 *
 * Invariants the search relies on: a block's ids grow (rows are added in id order) and a
 * source's blocks have disjoint id ranges, so a row of `logs` lies in exactly one block
 * (source_id = s AND received_at BETWEEN min/max AND id BETWEEN min_id/max_id).
 *
 * Pure: no I/O, no libpq; allocates. One thread (the writer's); not thread-safe.
 *
 * Batch protocol:
 *   sl_blocks_begin(now)                     close blocks opened too long ago
 *   sl_blocks_add(...) per stored row, in id order
 *   sl_blocks_rows(&rows, &n)                filters built; upsert these n rows
 *   COMMIT ok: sl_blocks_commit              closed blocks dropped, open ones kept
 *   anything failed: sl_blocks_abort         every block forgotten (their committed rows in
 *                                            PostgreSQL stay valid; new rows open new blocks) */
#ifndef SLUICE_BLOCKS_H
#define SLUICE_BLOCKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/err.h"

#define SL_BLOCK_MAX_TOKENS 3200                /* filter <= 32768 bits (docs/search.md) */
/* 5 minutes. Measured at the volume (10M lines a week over 50 sources, ~0.3 lines/s
 * a source): 5-minute blocks hold ~90 rows (109k filters a week); 15-minute ones ~260 rows
 * (38k), which made the 7-day filter scan cheaper but word and phrase searches slower
 * (more rows read per matching block): docs/search.md. */
#define SL_BLOCK_MAX_AGE_US (300LL * 1000000LL)
#define SL_BLOCK_MAX_ROWS 16384 /* bounds what one candidate block costs a search to read */
/* The largest filter stored: log_blocks.bloom is STORAGE PLAIN, so a row must fit in one
 * 8 KiB heap page (a 65536-bit filter does not). A block whose last row took it past ~3276
 * distinct tokens keeps this size (more false positives, never a false negative). Smaller
 * blocks get the size sl_bloom_build picks: 10 bits per distinct token, a power of two,
 * at least SL_BLOOM_MIN_BITS, and the same bits. */
#define SL_BLOCK_MAX_BITS 32768u

struct sl_blocks;

/* The upsert of block rows, one statement for many: eight arrays ($1 source ids, $2/$3
 * min/max received_at in µs since the epoch, $4/$5 min/max id, $6 rows, $7 bits, $8 the
 * filters in hex) unnested side by side, keyed (source_id, min_id). The writer's, and the
 * benchmark loader's (tests/bench/searchgen.c), so both write the same rows. Every
 * filter blocks.c builds holds the numeric field classes: classes = true. */
#define SL_BLOCKS_UPSERT_SQL                                                                      \
    "INSERT INTO log_blocks (source_id, min_received, max_received, min_id, max_id, nrows, "      \
    "nbits, bloom, classes) "                                                                     \
    "SELECT s, timestamptz 'epoch' + r0 * interval '1 microsecond', "                             \
    "timestamptz 'epoch' + r1 * interval '1 microsecond', i0, i1, n, nb, decode(b, 'hex'), true " \
    "FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], "         \
    "$6::int[], $7::int[], $8::text[]) AS u (s, r0, r1, i0, i1, n, nb, b) "                       \
    "ON CONFLICT (source_id, min_id) DO UPDATE SET min_received = EXCLUDED.min_received, "        \
    "max_received = EXCLUDED.max_received, max_id = EXCLUDED.max_id, "                            \
    "nrows = EXCLUDED.nrows, nbits = EXCLUDED.nbits, bloom = EXCLUDED.bloom, touched_at = now(), " \
    "hourly = false"

struct sl_blocks_opts {
    size_t max_tokens;  /* 0: SL_BLOCK_MAX_TOKENS */
    int64_t max_age_us; /* 0: SL_BLOCK_MAX_AGE_US */
    uint32_t max_rows;  /* 0: SL_BLOCK_MAX_ROWS */
};

/* One `log_blocks` row. bloom (nbits / 8 bytes) is borrowed from the block: valid until the
 * next sl_blocks_* call. */
struct sl_block_row {
    int64_t source_id;
    int64_t min_received_us, max_received_us; /* µs since the Unix epoch */
    int64_t min_id, max_id;
    uint32_t nrows, nbits;
    const uint8_t *bloom;
    bool closed; /* no further row will join it */
};

/* opts may be NULL (defaults). Caller frees with sl_blocks_free. */
SL_MUSTCHECK int sl_blocks_new(const struct sl_blocks_opts *opts, struct sl_blocks **out);
/* Accepts NULL. */
void sl_blocks_free(struct sl_blocks *bs);

/* Start a batch at now_us (µs since the epoch, the writer's clock): closes (forgets) open
 * blocks opened max_age_us ago or more. Their rows were upserted when last touched. */
void sl_blocks_begin(struct sl_blocks *bs, int64_t now_us);

/* One stored row without a JSON object (json_at NULL): source, row id (greater than every
 * id added before), received_at, and the message text exactly as stored in logs.message
 * (tokenized here, with its numeric field classes: sl_fields_num_classes). Returns 0 or
 * SL_ENOMEM (then call sl_blocks_abort). */
SL_MUSTCHECK int sl_blocks_add(struct sl_blocks *bs, int64_t source_id, int64_t id,
                               int64_t received_us, const char *text, size_t len);
/* The same for a row whose JSON object starts at text + json_off (its json_at; SIZE_MAX:
 * none), with more words for the row's filter: extra[0..elen) (the object's decoded
 * strings and canonical numbers, sl_fields_json_extra), tokenized into the same block.
 * extra may be NULL when elen is 0. */
SL_MUSTCHECK int sl_blocks_add_json(struct sl_blocks *bs, int64_t source_id, int64_t id,
                                    int64_t received_us, const char *text, size_t len,
                                    size_t json_off, const char *extra, size_t elen);

/* The blocks touched since sl_blocks_begin (closed ones included), filters built: *rows
 * and *n, owned by bs, valid until the next sl_blocks_* call. Returns 0 or SL_ENOMEM. */
SL_MUSTCHECK int sl_blocks_rows(struct sl_blocks *bs, const struct sl_block_row **rows, size_t *n);

/* The batch's transaction committed: drop the blocks closed in it, keep the open ones. */
void sl_blocks_commit(struct sl_blocks *bs);
/* The batch's transaction failed (or its outcome is unknown): forget every block, open ones
 * included, so nothing built from rows that were not committed can be upserted later. */
void sl_blocks_abort(struct sl_blocks *bs);

/* Open blocks held (for tests and metrics). */
size_t sl_blocks_open(const struct sl_blocks *bs);

#endif
