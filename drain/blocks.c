/* The writer's open blocks of search tokens (include/sluice/blocks.h).
 *
 * Each open block sets its tokens' bits straight into a filter of SL_BLOCK_MAX_BITS bits
 * (4 KiB, in cache) and counts a token as new when it set at least one bit (an estimate of
 * the distinct tokens, low by the filter's false-positive rate: ~1 % at 3 200). The stored
 * filter is that one folded to the size sl_bloom_build would pick for the count: positions
 * are (h1 + i * h2) mod nbits and every size is a power of two, so folding gives exactly
 * the bits a filter of that size built from the same tokens has (tests/unit/test_blocks.c
 * compares them with sl_bloom_build). No per-block hash set: past the tokenizer, this
 * costs about half of what sl_bloom_add + sl_bloom_build did (0.25 against 0.4-0.6 µs per
 * loadgen-shaped line on one core), and 8 KiB per open block instead of ~70 KiB.
 *
 * Keeps one open block per source in a small open-addressing table keyed by source id
 * (keys are never deleted: a source that closed its block keeps its slot with no block;
 * sl_blocks_abort empties the table), the list of blocks touched by the current batch, and a
 * few spare blocks whose filter storage is reused. Leaves to the writer: the upsert of the
 * rows it hands out, and when to commit or abort. Writer thread only; no I/O.
 * Design and sizes: docs/search.md ("Conditions this rests on"). */
#include <stdlib.h>
#include <string.h>

#include "sluice/blocks.h"
#include "sluice/fields.h"
#include "sluice/tokens.h"

#define SPARE_MAX 64
#define FULL_BYTES (SL_BLOCK_MAX_BITS / 8)

struct block {
    int64_t source_id;
    int64_t min_received, max_received, min_id, max_id;
    int64_t opened_us; /* the writer's clock when the block opened */
    uint32_t nrows;
    uint32_t ntokens;         /* distinct tokens, estimated (see the top of the file) */
    bool touched;             /* in bs->touched (changed since the last commit/abort) */
    bool closed;              /* no longer in the table */
    uint8_t full[FULL_BYTES]; /* the filter at SL_BLOCK_MAX_BITS bits */
    uint8_t out[FULL_BYTES];  /* folded to the stored size, by sl_blocks_rows */
};

struct slot {
    int64_t source_id;
    struct block *b; /* the open block, or NULL */
    bool used;
};

struct sl_blocks {
    struct sl_blocks_opts o;
    struct slot *slots;
    size_t nused, cap; /* cap: 0 or a power of two */
    size_t nopen;
    struct block **touched;
    size_t ntouched, captouched;
    struct sl_block_row *rows;
    size_t caprows;
    struct block *spare[SPARE_MAX];
    size_t nspare;
    int64_t now_us;
};

int sl_blocks_new(const struct sl_blocks_opts *opts, struct sl_blocks **out)
{
    struct sl_blocks *bs = calloc(1, sizeof(*bs));

    if (bs == NULL)
        return SL_ENOMEM;
    if (opts)
        bs->o = *opts;
    if (bs->o.max_tokens == 0)
        bs->o.max_tokens = SL_BLOCK_MAX_TOKENS;
    if (bs->o.max_age_us <= 0)
        bs->o.max_age_us = SL_BLOCK_MAX_AGE_US;
    if (bs->o.max_rows == 0)
        bs->o.max_rows = SL_BLOCK_MAX_ROWS;
    *out = bs;
    return 0;
}

static void block_destroy(struct block *b)
{
    free(b);
}

/* Done with a block: keep it for the next one, up to SPARE_MAX. */
static void recycle(struct sl_blocks *bs, struct block *b)
{
    if (bs->nspare < SPARE_MAX)
        bs->spare[bs->nspare++] = b;
    else
        block_destroy(b);
}

void sl_blocks_free(struct sl_blocks *bs)
{
    if (bs == NULL)
        return;
    sl_blocks_abort(bs);
    for (size_t i = 0; i < bs->nspare; i++)
        block_destroy(bs->spare[i]);
    free(bs->slots);
    free(bs->touched);
    free(bs->rows);
    free(bs);
}

static size_t slot_of(int64_t source_id, size_t cap)
{
    return (size_t)(((uint64_t)source_id * 0x9e3779b97f4a7c15ULL) >> 32) & (cap - 1);
}

static int table_grow(struct sl_blocks *bs)
{
    size_t ncap = bs->cap ? bs->cap * 2 : 64;
    struct slot *t = calloc(ncap, sizeof(*t));

    if (t == NULL)
        return SL_ENOMEM;
    for (size_t i = 0; i < bs->cap; i++) {
        size_t j;
        if (!bs->slots[i].used)
            continue;
        j = slot_of(bs->slots[i].source_id, ncap);
        while (t[j].used)
            j = (j + 1) & (ncap - 1);
        t[j] = bs->slots[i];
    }
    free(bs->slots);
    bs->slots = t;
    bs->cap = ncap;
    return 0;
}

/* The slot of source_id, created when missing. NULL on ENOMEM. */
static struct slot *slot_get(struct sl_blocks *bs, int64_t source_id)
{
    size_t i;

    if (2 * (bs->nused + 1) > bs->cap && table_grow(bs))
        return NULL;
    i = slot_of(source_id, bs->cap);
    while (bs->slots[i].used) {
        if (bs->slots[i].source_id == source_id)
            return &bs->slots[i];
        i = (i + 1) & (bs->cap - 1);
    }
    bs->slots[i].used = true;
    bs->slots[i].source_id = source_id;
    bs->slots[i].b = NULL;
    bs->nused++;
    return &bs->slots[i];
}

/* The block leaves the table. One the current batch touched stays listed until commit or
 * abort (its row is still to be upserted); an untouched one was stored as it is. */
static void block_close(struct sl_blocks *bs, struct slot *s)
{
    struct block *b = s->b;

    s->b = NULL;
    bs->nopen--;
    b->closed = true;
    if (!b->touched)
        recycle(bs, b);
}

static struct block *block_open(struct sl_blocks *bs, struct slot *s)
{
    struct block *b;

    if (bs->nspare > 0)
        b = bs->spare[--bs->nspare];
    else if ((b = malloc(sizeof(*b))) == NULL)
        return NULL;
    memset(b->full, 0, sizeof(b->full));
    b->source_id = s->source_id;
    b->nrows = 0;
    b->ntokens = 0;
    b->touched = b->closed = false;
    b->opened_us = bs->now_us;
    s->b = b;
    bs->nopen++;
    return b;
}

void sl_blocks_begin(struct sl_blocks *bs, int64_t now_us)
{
    /* A batch that neither committed nor aborted: its outcome is unknown, so forget. */
    if (bs->ntouched > 0)
        sl_blocks_abort(bs);
    bs->now_us = now_us;
    for (size_t i = 0; i < bs->cap && bs->nopen > 0; i++)
        if (bs->slots[i].b && now_us - bs->slots[i].b->opened_us >= bs->o.max_age_us)
            block_close(bs, &bs->slots[i]);
}

/* The token's SL_BLOOM_K bits, as sl_bloom_build sets them (uint32 arithmetic wraps mod
 * 2^32, a multiple of the size). Hash 0 gives h1 = 0, h2 = 1 there too. */
static void add_token(void *arg, const char *tok, size_t len, uint64_t hash)
{
    struct block *b = arg;
    uint32_t h1 = (uint32_t)hash, h2 = (uint32_t)(hash >> 32) | 1;
    unsigned fresh = 0;

    (void)tok;
    (void)len;
    for (unsigned k = 0; k < SL_BLOOM_K; k++) {
        uint32_t p = (h1 + k * h2) & (SL_BLOCK_MAX_BITS - 1);
        uint8_t m = (uint8_t)(1u << (p & 7));
        fresh |= !(b->full[p >> 3] & m);
        b->full[p >> 3] |= m;
    }
    b->ntokens += fresh;
}

static void add_hash(void *arg, uint64_t hash)
{
    add_token(arg, NULL, 0, hash);
}

int sl_blocks_add(struct sl_blocks *bs, int64_t source_id, int64_t id, int64_t received_us,
                  const char *text, size_t len)
{
    return sl_blocks_add_json(bs, source_id, id, received_us, text, len, SIZE_MAX, NULL, 0);
}

int sl_blocks_add_json(struct sl_blocks *bs, int64_t source_id, int64_t id, int64_t received_us,
                       const char *text, size_t len, size_t json_off, const char *extra,
                       size_t elen)
{
    struct slot *s = slot_get(bs, source_id);
    struct block *b;

    if (s == NULL)
        return SL_ENOMEM;
    b = s->b;
    if (b != NULL) {
        /* Keep a block's received_at span under max_age_us (a search reads it whole). */
        int64_t lo = received_us < b->min_received ? received_us : b->min_received;
        int64_t hi = received_us > b->max_received ? received_us : b->max_received;
        if (hi - lo >= bs->o.max_age_us) {
            block_close(bs, s);
            b = NULL;
        }
    }
    if (b == NULL && (b = block_open(bs, s)) == NULL)
        return SL_ENOMEM;
    if (!b->touched) {
        if (bs->ntouched == bs->captouched) {
            size_t nc = bs->captouched ? bs->captouched * 2 : 64;
            struct block **t = realloc(bs->touched, nc * sizeof(*t));
            if (t == NULL)
                return SL_ENOMEM;
            bs->touched = t;
            bs->captouched = nc;
        }
        bs->touched[bs->ntouched++] = b;
        b->touched = true;
    }
    if (b->nrows == 0) {
        b->min_received = b->max_received = received_us;
        b->min_id = b->max_id = id;
    } else {
        if (received_us < b->min_received)
            b->min_received = received_us;
        if (received_us > b->max_received)
            b->max_received = received_us;
        b->max_id = id;
    }
    b->nrows++;
    (void)sl_tokenize(text, len, add_token, b);
    if (elen > 0)
        (void)sl_tokenize(extra, elen, add_token, b);
    if (sl_fields_num_classes(text, len, json_off, add_hash, b))
        return SL_ENOMEM;
    if (b->ntokens >= bs->o.max_tokens || b->nrows >= bs->o.max_rows)
        block_close(bs, s);
    return 0;
}

/* Fold the full filter into out[0 .. to) (to a power of two): bit p of the full filter is
 * bit p mod (8 * to) of the small one, because positions are taken modulo the size and one
 * size divides the other. */
static void fold(const uint8_t *full, uint8_t *out, size_t to)
{
    memcpy(out, full, to);
    for (size_t off = to; off < FULL_BYTES; off += to)
        for (size_t i = 0; i < to; i++)
            out[i] |= full[off + i];
}

int sl_blocks_rows(struct sl_blocks *bs, const struct sl_block_row **rows, size_t *n)
{
    if (bs->ntouched > bs->caprows) {
        struct sl_block_row *r = realloc(bs->rows, bs->ntouched * sizeof(*r));
        if (r == NULL)
            return SL_ENOMEM;
        bs->rows = r;
        bs->caprows = bs->ntouched;
    }
    for (size_t i = 0; i < bs->ntouched; i++) {
        struct block *b = bs->touched[i];
        struct sl_block_row *r = &bs->rows[i];
        uint32_t nbits;

        r->source_id = b->source_id;
        r->min_received_us = b->min_received;
        r->max_received_us = b->max_received;
        r->min_id = b->min_id;
        r->max_id = b->max_id;
        r->nrows = b->nrows;
        r->closed = b->closed;
        /* sl_bloom_build's size for this many tokens, at most SL_BLOCK_MAX_BITS */
        nbits = SL_BLOOM_MIN_BITS;
        while (nbits < (uint64_t)b->ntokens * SL_BLOOM_BITS_PER_TOKEN && nbits < SL_BLOCK_MAX_BITS)
            nbits <<= 1;
        r->nbits = nbits;
        if (nbits == SL_BLOCK_MAX_BITS) {
            r->bloom = b->full;
        } else {
            fold(b->full, b->out, nbits / 8);
            r->bloom = b->out;
        }
    }
    *rows = bs->rows;
    *n = bs->ntouched;
    return 0;
}

void sl_blocks_commit(struct sl_blocks *bs)
{
    for (size_t i = 0; i < bs->ntouched; i++) {
        struct block *b = bs->touched[i];
        b->touched = false;
        if (b->closed)
            recycle(bs, b);
    }
    bs->ntouched = 0;
}

void sl_blocks_abort(struct sl_blocks *bs)
{
    /* Untouched open blocks from the table; touched ones (open or closed) from the list. */
    for (size_t i = 0; i < bs->cap; i++)
        if (bs->slots[i].b && !bs->slots[i].b->touched)
            recycle(bs, bs->slots[i].b);
    for (size_t i = 0; i < bs->ntouched; i++) {
        bs->touched[i]->touched = false;
        recycle(bs, bs->touched[i]);
    }
    bs->ntouched = 0;
    if (bs->cap)
        memset(bs->slots, 0, bs->cap * sizeof(*bs->slots));
    bs->nused = 0;
    bs->nopen = 0;
}

size_t sl_blocks_open(const struct sl_blocks *bs)
{
    return bs->nopen;
}
