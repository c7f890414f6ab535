/* Unit tests for drain/blocks.c (include/sluice/blocks.h): where blocks are cut (3200
 * distinct tokens, SL_BLOCK_MAX_AGE_US of received_at or open, the row cap), per-source
 * separation, every token of every row in its block's filter, id and time ranges, and the
 * commit/abort protocol against a model of the log_blocks table: after any sequence of
 * committed and failed batches, every committed row lies in exactly one stored block. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/blocks.h"
#include "sluice/tokens.h"

#define T0 1763800000000000LL /* µs since the epoch */
#define MIN_US (60LL * 1000000LL)
#define AGE_US SL_BLOCK_MAX_AGE_US

static bool filter_has(const struct sl_block_row *r, uint64_t h)
{
    for (unsigned k = 0; k < SL_BLOOM_K; k++) {
        uint32_t p = sl_bloom_pos(h, k, r->nbits);
        if (!((r->bloom[p >> 3] >> (p & 7)) & 1))
            return false;
    }
    return true;
}

struct check_ctx {
    const struct sl_block_row *r;
    size_t missing, seen;
};

static void check_token(void *arg, const char *tok, size_t len, uint64_t h)
{
    struct check_ctx *c = arg;

    (void)tok;
    (void)len;
    c->seen++;
    c->missing += !filter_has(c->r, h);
}

/* Every token of text is in r's filter. */
static void assert_all_tokens(const struct sl_block_row *r, const char *text)
{
    struct check_ctx c = {r, 0, 0};

    (void)sl_tokenize(text, strlen(text), check_token, &c);
    assert_int_equal(c.missing, 0);
}

static const struct sl_block_row *find_row(const struct sl_block_row *rows, size_t n,
                                           int64_t source_id, int64_t min_id)
{
    for (size_t i = 0; i < n; i++)
        if (rows[i].source_id == source_id && rows[i].min_id == min_id)
            return &rows[i];
    return NULL;
}

/* 100 distinct tokens per row: the block closes on the row that brings it to 3200, the
 * next row opens another. */
static void test_cut_at_max_tokens(void **state)
{
    struct sl_blocks *bs;
    const struct sl_block_row *rows;
    size_t n;
    char text[2000];
    int closed_at = -1;

    (void)state;
    assert_int_equal(sl_blocks_new(NULL, &bs), 0);
    sl_blocks_begin(bs, T0);
    for (int row = 0; row < 40; row++) {
        size_t len = 0;
        for (int j = 0; j < 100; j++)
            len += (size_t)snprintf(text + len, sizeof(text) - len, "w%d_%d ", row, j);
        assert_int_equal(sl_blocks_add(bs, 7, 1000 + row, T0 + row, text, len), 0);
        if (closed_at < 0 && sl_blocks_open(bs) == 0)
            closed_at = row;
    }
    /* 3200 distinct tokens after row 31; the count is an estimate that may lag by the
     * filter's false-positive rate (~1 %): closed by the 32nd to 34th row */
    assert_in_range(closed_at, 31, 33);
    assert_int_equal(sl_blocks_rows(bs, &rows, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(rows[0].min_id, 1000);
    assert_int_equal(rows[0].max_id, 1000 + closed_at);
    assert_int_equal(rows[0].nrows, closed_at + 1);
    assert_true(rows[0].closed);
    assert_int_equal(rows[0].nbits, 32768); /* ~3200 tokens x 10 bits, rounded up */
    assert_int_equal(rows[0].min_received_us, T0);
    assert_int_equal(rows[0].max_received_us, T0 + closed_at);
    assert_int_equal(rows[1].min_id, 1001 + closed_at);
    assert_int_equal(rows[1].max_id, 1039);
    assert_int_equal(rows[1].nrows, 39 - closed_at);
    assert_false(rows[1].closed);
    assert_int_equal(rows[1].nbits, 8192); /* 600-800 tokens */
    sl_blocks_commit(bs);
    /* the closed block is gone: the next batch lists only the open one it touches */
    sl_blocks_begin(bs, T0 + 1);
    assert_int_equal(sl_blocks_add(bs, 7, 2000, T0 + 2, "x", 1), 0);
    assert_int_equal(sl_blocks_rows(bs, &rows, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(rows[0].min_id, 1001 + closed_at);
    assert_int_equal(rows[0].max_id, 2000);
    assert_int_equal(rows[0].nrows, 40 - closed_at);
    sl_blocks_free(bs);
}

struct bloom_ctx {
    struct sl_bloom *b;
};

static void bloom_token(void *arg, const char *tok, size_t len, uint64_t h)
{
    (void)tok;
    (void)len;
    assert_int_equal(sl_bloom_add(arg, h), 0);
}

/* The stored filter is bit for bit what sl_bloom_build makes of the same tokens at every
 * size from 1024 to 32768 bits (the search side reads it with sl_bloom_pos / SQL). */
static void test_same_bits_as_sl_bloom(void **state)
{
    static const int ntok[] = {1, 50, 102, 150, 300, 700, 1500, 3000};
    char text[64];
    size_t same = 0;

    (void)state;
    for (size_t t = 0; t < sizeof(ntok) / sizeof(ntok[0]); t++) {
        struct sl_blocks *bs;
        struct sl_bloom ref;
        const struct sl_block_row *rows;
        size_t n;

        assert_int_equal(sl_blocks_new(NULL, &bs), 0);
        sl_bloom_init(&ref);
        sl_blocks_begin(bs, T0);
        for (int j = 0; j < ntok[t]; j++) {
            int len = snprintf(text, sizeof(text), "Tok%d-%zu", j, t);
            assert_int_equal(sl_blocks_add(bs, 9, j + 1, T0, text, (size_t)len), 0);
            (void)sl_tokenize(text, (size_t)len, bloom_token, &ref);
        }
        assert_int_equal(sl_bloom_build(&ref), 0);
        assert_int_equal(sl_blocks_rows(bs, &rows, &n), 0);
        assert_int_equal(n, 1);
        if (rows[0].nbits == ref.nbits) {
            assert_memory_equal(rows[0].bloom, ref.bits, ref.nbits / 8);
            same++;
        } else /* the count is an estimate: at most one size smaller, near a boundary */
            assert_int_equal(rows[0].nbits * 2, ref.nbits);
        sl_bloom_free(&ref);
        sl_blocks_free(bs);
    }
    assert_true(same >= 7); /* none of these counts is within 1 % of a size boundary */
}

/* A row that takes a block far past 3200 tokens: the filter is folded to 32768 bits (a
 * log_blocks row must fit in a page), and still holds every token. */
static void test_filter_capped(void **state)
{
    struct sl_blocks *bs;
    const struct sl_block_row *rows;
    size_t n, len = 0;
    static char text[64 * 1024];
    struct check_ctx c;

    (void)state;
    assert_int_equal(sl_blocks_new(NULL, &bs), 0);
    sl_blocks_begin(bs, T0);
    for (int j = 0; j < 3199; j++)
        len += (size_t)snprintf(text + len, sizeof(text) - len, "a%d ", j);
    assert_int_equal(sl_blocks_add(bs, 1, 1, T0, text, len), 0);
    assert_int_equal(sl_blocks_open(bs), 1);
    len = 0;
    for (int j = 0; j < 5000; j++)
        len += (size_t)snprintf(text + len, sizeof(text) - len, "b%d ", j);
    assert_int_equal(sl_blocks_add(bs, 1, 2, T0, text, len), 0);
    assert_int_equal(sl_blocks_open(bs), 0);
    assert_int_equal(sl_blocks_rows(bs, &rows, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(rows[0].nbits, SL_BLOCK_MAX_BITS);
    assert_int_equal(rows[0].nrows, 2);
    c = (struct check_ctx){&rows[0], 0, 0};
    (void)sl_tokenize(text, len, check_token, &c);
    assert_int_equal(c.seen, 5000);
    assert_int_equal(c.missing, 0);
    assert_true(filter_has(&rows[0], sl_token_hash64("a0", 2)));
    assert_true(filter_has(&rows[0], sl_token_hash64("a3198", 5)));
    sl_blocks_free(bs);
}

/* received_at span: a row SL_BLOCK_MAX_AGE_US after the block's first starts a new block. */
static void test_cut_at_max_age_received(void **state)
{
    struct sl_blocks *bs;
    const struct sl_block_row *rows;
    size_t n;

    (void)state;
    assert_int_equal(sl_blocks_new(NULL, &bs), 0);
    sl_blocks_begin(bs, T0);
    assert_int_equal(sl_blocks_add(bs, 1, 10, T0, "a", 1), 0);
    assert_int_equal(sl_blocks_add(bs, 1, 11, T0 + AGE_US - 1, "b", 1), 0);
    assert_int_equal(sl_blocks_add(bs, 1, 12, T0 + AGE_US, "c", 1), 0);
    assert_int_equal(sl_blocks_rows(bs, &rows, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(rows[0].max_id, 11);
    assert_int_equal(rows[0].max_received_us, T0 + AGE_US - 1);
    assert_true(rows[0].closed);
    assert_int_equal(rows[1].min_id, 12);
    assert_int_equal(rows[1].min_received_us, T0 + AGE_US);
    sl_blocks_commit(bs);
    sl_blocks_free(bs);
}

/* Open for SL_BLOCK_MAX_AGE_US of the writer's clock: closed at batch start, and not listed (it
 * was stored when last touched). */
static void test_cut_at_max_age_open(void **state)
{
    struct sl_blocks *bs;
    const struct sl_block_row *rows;
    size_t n;

    (void)state;
    assert_int_equal(sl_blocks_new(NULL, &bs), 0);
    sl_blocks_begin(bs, T0);
    assert_int_equal(sl_blocks_add(bs, 1, 10, T0 - 4 * AGE_US, "old", 3), 0);
    assert_int_equal(sl_blocks_add(bs, 2, 11, T0 - 4 * AGE_US, "old", 3), 0);
    assert_int_equal(sl_blocks_rows(bs, &rows, &n), 0);
    sl_blocks_commit(bs);
    sl_blocks_begin(bs, T0 + AGE_US - MIN_US);
    assert_int_equal(sl_blocks_open(bs), 2);
    assert_int_equal(sl_blocks_add(bs, 2, 12, T0 - 4 * AGE_US, "old", 3), 0);
    sl_blocks_commit(bs);
    sl_blocks_begin(bs, T0 + AGE_US);
    assert_int_equal(sl_blocks_open(bs), 0);
    assert_int_equal(sl_blocks_rows(bs, &rows, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(sl_blocks_add(bs, 1, 13, T0 - 4 * AGE_US, "new", 3), 0);
    assert_int_equal(sl_blocks_rows(bs, &rows, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(rows[0].min_id, 13);
    assert_int_equal(rows[0].nrows, 1);
    sl_blocks_free(bs);
}

/* Repetitive lines never reach the token cap; the row cap ends the block. */
static void test_cut_at_max_rows(void **state)
{
    struct sl_blocks_opts o = {.max_rows = 10};
    struct sl_blocks *bs;
    const struct sl_block_row *rows;
    size_t n;

    (void)state;
    assert_int_equal(sl_blocks_new(&o, &bs), 0);
    sl_blocks_begin(bs, T0);
    for (int i = 0; i < 25; i++)
        assert_int_equal(sl_blocks_add(bs, 3, 100 + i, T0, "heartbeat ok", 12), 0);
    assert_int_equal(sl_blocks_rows(bs, &rows, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(rows[0].nrows, 10);
    assert_int_equal(rows[1].nrows, 10);
    assert_int_equal(rows[1].min_id, 110);
    assert_int_equal(rows[2].nrows, 5);
    assert_int_equal(rows[2].max_id, 124);
    sl_blocks_free(bs);
}

/* Interleaved sources: each row in its own source's block, every token in its filter,
 * ranges exact. */
static void test_sources_separate(void **state)
{
    static const char *const lines[] = {
        "at=info method=GET path=\"/\" status=200 request_id=05726858-c44e-4f94",
        "KeyError: 'energyplus'",
        "PG::UniqueViolation: ERROR:  duplicate key value violates unique constraint",
        "heartbeat",
        "caf\xc3\xa9 na\xc3\xafve \xef\xbf\xbd repaired",
        "",
    };
    struct sl_blocks *bs;
    const struct sl_block_row *rows;
    size_t n;

    (void)state;
    assert_int_equal(sl_blocks_new(NULL, &bs), 0);
    sl_blocks_begin(bs, T0);
    for (int i = 0; i < 60; i++)
        assert_int_equal(sl_blocks_add(bs, 1 + i % 3, 500 + i, T0 + i * 1000, lines[i % 6],
                                       strlen(lines[i % 6])),
                         0);
    assert_int_equal(sl_blocks_open(bs), 3);
    assert_int_equal(sl_blocks_rows(bs, &rows, &n), 0);
    assert_int_equal(n, 3);
    for (int s = 1; s <= 3; s++) {
        const struct sl_block_row *r = find_row(rows, n, s, 500 + s - 1);
        assert_non_null(r);
        assert_int_equal(r->nrows, 20);
        assert_int_equal(r->max_id, 500 + 57 + s - 1);
        assert_int_equal(r->min_received_us, T0 + (s - 1) * 1000);
        assert_int_equal(r->max_received_us, T0 + (57 + s - 1) * 1000);
        for (int i = s - 1; i < 60; i += 3)
            assert_all_tokens(r, lines[i % 6]);
    }
    /* source 1 saw lines 0 and 3 only: a token of source 2's lines is (almost surely) not
     * in its filter */
    assert_false(filter_has(find_row(rows, n, 1, 500), sl_token_hash64("keyerror", 8)));
    assert_true(filter_has(find_row(rows, n, 2, 501), sl_token_hash64("keyerror", 8)));
    sl_blocks_free(bs);
}

/* A failed batch forgets every block: the next rows open new ones, and nothing of the old
 * open blocks is handed out again. */
static void test_abort_forgets(void **state)
{
    struct sl_blocks *bs;
    const struct sl_block_row *rows;
    size_t n;

    (void)state;
    assert_int_equal(sl_blocks_new(NULL, &bs), 0);
    sl_blocks_begin(bs, T0);
    assert_int_equal(sl_blocks_add(bs, 1, 1, T0, "committed", 9), 0);
    assert_int_equal(sl_blocks_rows(bs, &rows, &n), 0);
    sl_blocks_commit(bs);
    sl_blocks_begin(bs, T0);
    assert_int_equal(sl_blocks_add(bs, 1, 2, T0, "failed", 6), 0);
    assert_int_equal(sl_blocks_add(bs, 2, 3, T0, "failed", 6), 0);
    sl_blocks_abort(bs);
    assert_int_equal(sl_blocks_open(bs), 0);
    sl_blocks_begin(bs, T0);
    assert_int_equal(sl_blocks_rows(bs, &rows, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(sl_blocks_add(bs, 1, 4, T0, "retried", 7), 0);
    assert_int_equal(sl_blocks_rows(bs, &rows, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(rows[0].min_id, 4);
    assert_int_equal(rows[0].nrows, 1);
    assert_false(filter_has(&rows[0], sl_token_hash64("failed", 6)));
    /* a batch left neither committed nor aborted is forgotten by the next begin */
    sl_blocks_begin(bs, T0);
    assert_int_equal(sl_blocks_open(bs), 0);
    sl_blocks_free(bs);
}

/* ------------------------------------------------------------ model of log_blocks */

#define MAXB 4096
#define MAXR 40000

struct mblock {
    int64_t source_id, rmin, rmax, min_id, max_id;
    uint32_t nrows, nbits;
    uint8_t bloom[SL_BLOOM_MAX_BITS / 8 / 32]; /* up to 32768 bits */
};

struct mrow {
    int64_t source_id, id, received;
    int word; /* the row's text is "common w<word> s<source>" */
};

static struct mblock *db;
static struct mrow *stored;

/* Random batches of rows from 5 sources, some of which fail; the committed ones upsert
 * into the model table as the writer's SQL does. */
static void test_model_coverage(void **state)
{
    struct sl_blocks *bs;
    size_t ndb = 0, nstored = 0;
    int64_t id = 1, now = T0;
    unsigned seed = 12345;
    struct mrow batch[200];

    (void)state;
    db = calloc(MAXB, sizeof(*db));
    stored = calloc(MAXR, sizeof(*stored));
    assert_non_null(db);
    assert_non_null(stored);
    assert_int_equal(sl_blocks_new(NULL, &bs), 0);
    for (int b = 0; b < 300; b++) {
        const struct sl_block_row *rows;
        size_t n, nb = (size_t)(rand_r(&seed) % 200);
        bool fail = rand_r(&seed) % 7 == 0;

        now += (int64_t)(rand_r(&seed) % 40) * 1000000; /* up to 40 s per batch */
        sl_blocks_begin(bs, now);
        for (size_t i = 0; i < nb; i++) {
            char text[64];
            struct mrow *r = &batch[i];
            r->source_id = 1 + rand_r(&seed) % 5;
            r->id = id++;
            r->received = now - (int64_t)(rand_r(&seed) % 3000000);
            r->word = (int)(rand_r(&seed) % 20000);
            snprintf(text, sizeof(text), "common w%d s%" PRId64, r->word, r->source_id);
            assert_int_equal(
                sl_blocks_add(bs, r->source_id, r->id, r->received, text, strlen(text)), 0);
        }
        assert_int_equal(sl_blocks_rows(bs, &rows, &n), 0);
        if (fail) {
            sl_blocks_abort(bs);
            continue;
        }
        for (size_t i = 0; i < n; i++) {
            struct mblock *m = NULL;
            for (size_t j = 0; j < ndb && m == NULL; j++)
                if (db[j].source_id == rows[i].source_id && db[j].min_id == rows[i].min_id)
                    m = &db[j];
            if (m == NULL) {
                assert_true(ndb < MAXB);
                m = &db[ndb++];
            }
            assert_true(rows[i].nbits / 8 <= sizeof(m->bloom));
            m->source_id = rows[i].source_id;
            m->rmin = rows[i].min_received_us;
            m->rmax = rows[i].max_received_us;
            m->min_id = rows[i].min_id;
            m->max_id = rows[i].max_id;
            m->nrows = rows[i].nrows;
            m->nbits = rows[i].nbits;
            memcpy(m->bloom, rows[i].bloom, rows[i].nbits / 8);
            assert_true(m->rmax - m->rmin < SL_BLOCK_MAX_AGE_US);
        }
        sl_blocks_commit(bs);
        assert_true(nstored + nb <= MAXR);
        memcpy(stored + nstored, batch, nb * sizeof(*batch));
        nstored += nb;
    }
    assert_true(nstored > 10000);
    assert_true(ndb > 20);
    /* every stored row in exactly one block, and its tokens in that block's filter */
    for (size_t i = 0; i < nstored; i++) {
        const struct mrow *r = &stored[i];
        const struct mblock *hit = NULL;
        int hits = 0;
        char w[16];
        for (size_t j = 0; j < ndb; j++)
            if (db[j].source_id == r->source_id && r->received >= db[j].rmin &&
                r->received <= db[j].rmax && r->id >= db[j].min_id && r->id <= db[j].max_id) {
                hits++;
                hit = &db[j];
            }
        assert_int_equal(hits, 1);
        snprintf(w, sizeof(w), "w%d", r->word);
        {
            struct sl_block_row v = {.nbits = hit->nbits, .bloom = hit->bloom};
            assert_true(filter_has(&v, sl_token_hash64(w, strlen(w))));
            assert_true(filter_has(&v, sl_token_hash64("common", 6)));
        }
    }
    /* nrows add up; a source's blocks do not overlap in ids */
    {
        uint64_t sum = 0;
        for (size_t j = 0; j < ndb; j++) {
            sum += db[j].nrows;
            for (size_t k = 0; k < ndb; k++)
                if (k != j && db[k].source_id == db[j].source_id)
                    assert_true(db[k].max_id < db[j].min_id || db[k].min_id > db[j].max_id);
        }
        assert_int_equal(sum, nstored);
    }
    sl_blocks_free(bs);
    free(db);
    free(stored);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cut_at_max_tokens),   cmocka_unit_test(test_same_bits_as_sl_bloom),
        cmocka_unit_test(test_filter_capped),       cmocka_unit_test(test_cut_at_max_age_received),
        cmocka_unit_test(test_cut_at_max_age_open), cmocka_unit_test(test_cut_at_max_rows),
        cmocka_unit_test(test_sources_separate),    cmocka_unit_test(test_abort_forgets),
        cmocka_unit_test(test_model_coverage),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
