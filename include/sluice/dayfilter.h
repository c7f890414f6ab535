/* The coarse filter level of a packed (source, UTC day): one Bloom filter per slice
 * (drain/dayfilter.c, docs/search.md "The day level").
 *
 * A token's hash picks its slice from bits 24..31 of h1 (the low 32 bits), which no bit
 * position inside a filter of at most SL_BLOOM_MAX_BITS (2^20) bits depends on; its
 * SL_BLOOM_K bits are those of include/sluice/tokens.h in that slice's filter (the SQL
 * sl_bloom_has1 reads them). A search for a token therefore reads one small row per
 * (source, day) instead of every block's filter of the day: log_day_filters (slice, day,
 * source_id, nbits, bloom).
 *
 * Built while compaction reads the day (drain/compact.c): each slice starts at the size
 * the day's old block filters add up to (they give 10 bits per token of each block, an
 * upper bound of the day's distinct tokens), bits are set as tokens come, then each slice
 * is folded in half (bit p goes to p mod nbits/2: the filter that size would have had)
 * while the result stays at most a third full (~10 bits per distinct token at k = 4). So
 * memory is bounded by the old filters' size (at most 256 x 2^20 bits, 32 MiB) and never
 * holds a hash set. A false positive costs reading the day's blocks; there is never a
 * false negative.
 *
 * Pure: no I/O. One thread per filter. */
#ifndef SLUICE_DAYFILTER_H
#define SLUICE_DAYFILTER_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/err.h"

#define SL_DAYFILTER_SLICES 256u
/* The hour level (drain/hourlevel.c) cuts the same hash into fewer slices: its slice is
 * the day level's slice mod 64. */
#define SL_HOURFILTER_SLICES 64u
#define SL_DAYFILTER_MIN_BITS 64u

static inline unsigned sl_dayfilter_slice_of(uint64_t hash, unsigned nslices)
{
    return (unsigned)((hash & 0xffffffffu) >> 24) & (nslices - 1);
}

static inline unsigned sl_dayfilter_slice(uint64_t hash)
{
    return sl_dayfilter_slice_of(hash, SL_DAYFILTER_SLICES);
}

struct sl_dayfilter {
    unsigned nslices;                    /* a power of two, at most SL_DAYFILTER_SLICES */
    uint32_t nbits[SL_DAYFILTER_SLICES]; /* powers of two */
    uint8_t *bits[SL_DAYFILTER_SLICES];  /* nbits / 8 bytes; bit p is bits[p>>3] >> (p&7) */
    uint64_t ntokens;                    /* tokens added (with repeats) */
};

/* Sized for est_bits filter bits over all slices (the sum of the old blocks' nbits; 0: the
 * minimum). Returns 0 or SL_ENOMEM (then sl_dayfilter_free). */
SL_MUSTCHECK int sl_dayfilter_init(struct sl_dayfilter *d, uint64_t est_bits);
/* The same with nslices slices (a power of two, at most SL_DAYFILTER_SLICES). */
SL_MUSTCHECK int sl_dayfilter_init_sliced(struct sl_dayfilter *d, uint64_t est_bits,
                                          unsigned nslices);
void sl_dayfilter_free(struct sl_dayfilter *d);
/* Every token of text (sl_tokenize: the writer's tokens). */
void sl_dayfilter_add_text(struct sl_dayfilter *d, const char *text, size_t len);
void sl_dayfilter_add_hash(struct sl_dayfilter *d, uint64_t hash);
struct sl_buf;
/* Every token of a stored line as the writer's filters have them: its message, and when
 * json (the message's JSON text, or NULL) decodes, the JSON words too (extra: scratch,
 * sized as the writer's). */
void sl_dayfilter_add_line(struct sl_dayfilter *d, const char *msg, size_t len, const char *json,
                           size_t jlen, struct sl_buf *extra);
/* Shrink each slice while it stays at most a third full. Call once, after the last add. */
void sl_dayfilter_fold(struct sl_dayfilter *d);
/* false: no token of this hash was added. */
bool sl_dayfilter_may_have(const struct sl_dayfilter *d, uint64_t hash);
/* Bytes of filter bits held (for the stats line). */
size_t sl_dayfilter_bytes(const struct sl_dayfilter *d);

/* Folds d, then appends its rows as three PostgreSQL array literals: the slice numbers
 * (smallint[]), their nbits (int[]) and their bits in hex (text[]; decode(x, 'hex')).
 * Returns 0 or SL_ENOMEM. */
SL_MUSTCHECK int sl_dayfilter_arrays(struct sl_dayfilter *d, struct sl_buf *slices,
                                     struct sl_buf *nbits, struct sl_buf *hex);
#endif
