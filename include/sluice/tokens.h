/* Search tokens and per-block token filters (drain/tokens.c). No I/O, no global state;
 * only struct sl_bloom allocates. Any thread (a bloom is not shared between threads).
 *
 * The writer tokenizes every stored message and keeps, per block of rows (one source's
 * consecutive rows: one COPY batch's, or several batches' at low rates, cut at 3200
 * distinct tokens; docs/search.md), a Bloom filter of the tokens' hashes in `log_blocks`.
 * A search for words first asks which blocks may hold all of them (SQL sl_bloom_has1 per
 * token, or sl_bloom_has),
 * then reads only those blocks' rows through the (source_id, received_at) btree and
 * rechecks the text. Both sides hash tokens here, so they always agree.
 *
 * A token is a maximal run of word bytes: ASCII letters and digits, '_', and every byte
 * >= 0x80 (so UTF-8 words stay whole); ASCII letters are lowercased. Tokens longer than
 * SL_TOKEN_MAX bytes are cut there (the rest of the run is dropped, not a new token; the
 * cut may fall inside a UTF-8 character: both sides cut the same way). Design, figures and
 * the SQL side: docs/search.md. */
#ifndef SLUICE_TOKENS_H
#define SLUICE_TOKENS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/err.h"
#include "sluice/str.h"

#define SL_TOKEN_MAX 64
#define SL_BLOOM_K 4              /* bit positions per token */
#define SL_BLOOM_MIN_BITS 1024
#define SL_BLOOM_MAX_BITS (1u << 20)
#define SL_BLOOM_BITS_PER_TOKEN 10 /* ~1% false positives at k = 4 */

/* 64-bit hash of one token's bytes (already lowercased). The value is part of the
 * stored format (log_blocks rows outlive a sluice version): never change it. Defined in
 * drain/tokens.c (murmur3-style over 8-byte little-endian words, fmix64 finaliser);
 * sl_token_hash64("h12", 3) == 0xb1b3f53028a8fa07 (tests/unit/test_tokens.c).
 * The bit positions of a token in a filter of nbits bits are (h1 + i * h2) mod nbits,
 * i = 0..SL_BLOOM_K-1, with h1 = low 32 bits, h2 = high 32 bits | 1 (both unsigned,
 * exact arithmetic: at most 2^32 + 3 * 2^32, fits a bigint). nbits is a power of two, so
 * position = ((h1 + i * h2) mod SL_BLOOM_MAX_BITS) & (nbits - 1) too: a query can
 * compute positions once for every filter size. */
uint64_t sl_token_hash64(const char *p, size_t len);

/* Call cb for every token of text, in order, with the lowercased token (borrowed: a
 * buffer of the tokenizer, valid during the call only, not NUL-terminated) and its
 * sl_token_hash64. Returns the number of tokens. */
typedef void (*sl_token_cb)(void *arg, const char *tok, size_t len, uint64_t hash);
size_t sl_tokenize(const char *text, size_t len, sl_token_cb cb, void *arg);

/* Numeric field classes (docs/search.md "Numeric fields"). A field compared as a number
 * (status:>=500) has no word to look up, so the writer adds, for every key=value of a line
 * whose value reads as a number (and every numeric leaf of its JSON object), the token
 * "class of this key's value" to the block's filter. Classes: negative, [0,100),
 * [100,200) ... [900,1000), 1000 and above; SL_NUMCLASS_ANY for a value the writer could
 * not place (a JSON number with an exponent, a string with escapes). A comparison then
 * requires, for its key, one of the classes that can satisfy it, or ANY. */
enum {
    SL_NUMCLASS_NEG = 0,
    SL_NUMCLASS_H0 = 1, /* H0 + k: [100k, 100k + 100) */
    SL_NUMCLASS_BIG = 11,
    SL_NUMCLASS_ANY = 12,
    SL_NUMCLASS_N = 13
};
/* The hash of (key, class): sl_token_hash64 of "\x01" key "\x02" class, which no word
 * token can equal (word tokens hold neither byte). Part of the stored format. key: at
 * most SL_NUMCLASS_KEY_MAX bytes (longer: never hashed; see sl_numclass_query). */
#define SL_NUMCLASS_KEY_MAX 255
uint64_t sl_numclass_hash(const char *key, size_t klen, int cls);
/* The class of v[0..n) when it is a number as the query's SQL reads one
 * (^"?-?[0-9]{1,20}(\.[0-9]{1,20})?"?$, include/sluice/query.h); -1 otherwise. */
int sl_numclass_of(const char *v, size_t n);
/* The classes a value v satisfying "v op x" may fall in, plus ANY, as a bit set (bit c:
 * class c); op: 0 =, 2 <, 3 <=, 4 >, 5 >= (query_sql.c's cmp order); x[0..n) the query's
 * number, compared exactly when it is written as the SQL reads numbers, else through a
 * double widened by a relative 1e-9 (so rounding never loses a class). 0: no class
 * constraint possible (another op, x not a finite number). */
unsigned sl_numclass_query(int op, const char *x, size_t n);

/* A Bloom filter under construction: collect hashes (duplicates are fine: they are
 * dropped as they come, so n counts distinct hashes), then size and fill. Caller owns
 * the struct; sl_bloom_free releases its storage (and accepts a zeroed or half-built
 * one). sl_bloom_reset empties it for the next block and keeps the storage. */
struct sl_bloom {
    uint64_t *hashes; /* open-addressing set of the distinct hashes (0 = empty slot) */
    size_t n, cap;    /* distinct hashes held; slots (a power of two) */
    uint8_t *bits;    /* after sl_bloom_build: nbits / 8 bytes; bit b is
                         (bits[b >> 3] >> (b & 7)) & 1, least significant bit first, which
                         is PostgreSQL's get_bit(bytea, b) (byteaGetBit, varlena.c; checked
                         against a real server by tests/bench/search_design.sh) */
    uint32_t nbits;   /* 0 until built */
};
void sl_bloom_init(struct sl_bloom *b);
void sl_bloom_free(struct sl_bloom *b);
void sl_bloom_reset(struct sl_bloom *b);
/* Add a token hash. Returns 0, SL_ENOMEM, or SL_ETOOBIG past SL_BLOOM_MAX_HASHES distinct
 * hashes (the caller should end the block earlier; see docs/search.md). */
#define SL_BLOOM_MAX_HASHES (1u << 22)
SL_MUSTCHECK int sl_bloom_add(struct sl_bloom *b, uint64_t hash);
/* Size (the power of two >= SL_BLOOM_BITS_PER_TOKEN per distinct hash, clamped to
 * [SL_BLOOM_MIN_BITS, SL_BLOOM_MAX_BITS]) and set bits. Returns 0 or SL_ENOMEM. May be
 * called again after more sl_bloom_add calls. */
SL_MUSTCHECK int sl_bloom_build(struct sl_bloom *b);
/* After sl_bloom_build: false when hash was never added; true when it was (and for a
 * fraction of other hashes: the false-positive rate). False when not built. */
bool sl_bloom_may_have(const struct sl_bloom *b, uint64_t hash);
/* Bit position i (0..SL_BLOOM_K-1) of hash in a filter of nbits bits (a power of two). */
uint32_t sl_bloom_pos(uint64_t hash, unsigned i, uint32_t nbits);

#endif
