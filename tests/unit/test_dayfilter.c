/* Unit tests for drain/dayfilter.c (include/sluice/dayfilter.h): the day level's sliced
 * filters. No false negatives after folding; folding gives exactly the filter built at the
 * folded size; slices fill at most a third; the false-positive rate; the slice and bit
 * positions are those the SQL side reads (sl_bloom_has1 on the slice's row). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/buf.h"
#include "sluice/dayfilter.h"
#include "sluice/tokens.h"

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static void test_no_false_negatives_after_folding(void **state)
{
    struct sl_dayfilter d;
    (void)state;
    /* an estimate 8x too large, as when the same tokens repeat in every block */
    assert_int_equal(sl_dayfilter_init(&d, 50000ull * 10 * 8), 0);
    for (uint64_t i = 0; i < 50000; i++)
        sl_dayfilter_add_hash(&d, mix(i));
    sl_dayfilter_fold(&d);
    for (uint64_t i = 0; i < 50000; i++)
        assert_true(sl_dayfilter_may_have(&d, mix(i)));
    /* folded to about 10 bits a token: 50000 tokens, 256 slices, ~195 each -> 2048 bits */
    assert_true(sl_dayfilter_bytes(&d) * 8 <= 50000ull * 10 * 2);
    assert_true(sl_dayfilter_bytes(&d) * 8 >= 50000ull * 10 / 2);
    for (unsigned s = 0; s < SL_DAYFILTER_SLICES; s++) {
        size_t ones = 0;
        for (size_t i = 0; i < d.nbits[s] / 8; i++)
            ones += (size_t)__builtin_popcount(d.bits[s][i]);
        assert_true(ones * 3 <= d.nbits[s] || d.nbits[s] == SL_DAYFILTER_MIN_BITS);
    }
    /* false positives: ~1-3 % at 10 bits a token, k = 4 */
    size_t fp = 0;
    for (uint64_t i = 1000000; i < 1100000; i++)
        fp += sl_dayfilter_may_have(&d, mix(i));
    assert_true(fp < 5000);
    sl_dayfilter_free(&d);
}

static void test_folding_equals_building_small(void **state)
{
    struct sl_dayfilter big, small;
    (void)state;
    assert_int_equal(sl_dayfilter_init(&big, 1u << 24), 0); /* 65536 bits a slice */
    for (uint64_t i = 0; i < 3000; i++)
        sl_dayfilter_add_hash(&big, mix(i));
    sl_dayfilter_fold(&big);
    assert_int_equal(sl_dayfilter_init(&small, 0), 0);
    for (unsigned s = 0; s < SL_DAYFILTER_SLICES; s++) {
        /* a filter built at the folded size from the start */
        free(small.bits[s]);
        small.nbits[s] = big.nbits[s];
        small.bits[s] = calloc(big.nbits[s] / 8, 1);
        assert_non_null(small.bits[s]);
    }
    for (uint64_t i = 0; i < 3000; i++)
        sl_dayfilter_add_hash(&small, mix(i));
    for (unsigned s = 0; s < SL_DAYFILTER_SLICES; s++) {
        assert_true(big.nbits[s] < 65536u);
        assert_memory_equal(big.bits[s], small.bits[s], big.nbits[s] / 8);
    }
    sl_dayfilter_free(&big);
    sl_dayfilter_free(&small);
}

/* The positions and slice the search's SQL uses: slice (h1 >> 24) & 255, bit
 * (h1 + k * h2) mod nbits read by get_bit (byte p / 8, bit p % 8 from the lowest). */
static void test_positions_are_the_sql_ones(void **state)
{
    struct sl_dayfilter d;
    uint64_t h = sl_token_hash64("h12", 3);
    uint64_t h1 = h & 0xffffffffu, h2 = (h >> 32) | 1;
    unsigned s = (unsigned)(h1 >> 24) & 255;
    (void)state;
    assert_int_equal(sl_dayfilter_init(&d, 0), 0);
    sl_dayfilter_add_text(&d, "GET /H12 done", 13);
    assert_int_equal(sl_dayfilter_slice(h), s);
    for (unsigned k = 0; k < 4; k++) {
        uint64_t p = (h1 + k * h2) % d.nbits[s];
        assert_true((d.bits[s][p / 8] >> (p % 8)) & 1);
    }
    assert_true(sl_dayfilter_may_have(&d, h));
    assert_true(sl_dayfilter_may_have(&d, sl_token_hash64("done", 4)));
    assert_int_equal(d.ntokens, 3);
    sl_dayfilter_free(&d);
}

static void test_slices_spread(void **state)
{
    unsigned count[SL_DAYFILTER_SLICES] = {0};
    (void)state;
    for (uint64_t i = 0; i < 256000; i++)
        count[sl_dayfilter_slice(mix(i))]++;
    for (unsigned s = 0; s < SL_DAYFILTER_SLICES; s++)
        assert_true(count[s] > 800 && count[s] < 1200);
}

/* The hour level's 64 slices: a token's slice is the day level's mod 64 (the SQL joins
 * them as t.s & 63), the same 4 bits in it, no false negatives, a bad count refused; a
 * JSON line's words go in with its message (as the writer's filters have them). */
static void test_hour_slices(void **state)
{
    struct sl_dayfilter d;
    struct sl_buf extra, sl, nb, hex;
    const char json[] = "{\"user\":{\"name\":\"z\\u00e9lda\"}}"; /* decoded: "zélda" */
    (void)state;
    assert_int_equal(sl_dayfilter_init_sliced(&d, 0, 48), SL_EINVAL);
    assert_int_equal(sl_dayfilter_init_sliced(&d, 0, 512), SL_EINVAL);
    assert_int_equal(sl_dayfilter_init_sliced(&d, 20000ull * 10, SL_HOURFILTER_SLICES), 0);
    assert_int_equal(d.nslices, 64);
    for (uint64_t i = 0; i < 20000; i++) {
        uint64_t h = mix(i);
        assert_int_equal(sl_dayfilter_slice_of(h, 64), sl_dayfilter_slice(h) & 63);
        sl_dayfilter_add_hash(&d, h);
    }
    sl_buf_init(&extra, 1u << 16);
    sl_dayfilter_add_line(&d, json, sizeof(json) - 1, json, sizeof(json) - 1, &extra);
    sl_dayfilter_add_line(&d, "plain", 5, NULL, 0, &extra);
    sl_buf_init(&sl, 1u << 12);
    sl_buf_init(&nb, 1u << 12);
    sl_buf_init(&hex, 1u << 22);
    assert_int_equal(sl_dayfilter_arrays(&d, &sl, &nb, &hex), 0); /* folds */
    for (uint64_t i = 0; i < 20000; i++)
        assert_true(sl_dayfilter_may_have(&d, mix(i)));
    assert_true(sl_dayfilter_may_have(&d, sl_token_hash64("z\xc3\xa9lda", 6)));
    assert_true(sl_dayfilter_may_have(&d, sl_token_hash64("user", 4)));
    assert_true(sl_dayfilter_may_have(&d, sl_token_hash64("plain", 5)));
    /* 64 rows: slices 0..63, their sizes, their bits in hex */
    assert_memory_equal(sl.p, "{0,1,2,", 7);
    assert_non_null(strstr(sl.p, ",63}"));
    assert_null(strstr(sl.p, ",64"));
    assert_int_equal(hex.len, sl_dayfilter_bytes(&d) * 2 + 64 + 1 + 1);
    size_t fp = 0;
    for (uint64_t i = 1000000; i < 1100000; i++)
        fp += sl_dayfilter_may_have(&d, mix(i));
    assert_true(fp < 5000);
    sl_buf_free(&extra);
    sl_buf_free(&sl);
    sl_buf_free(&nb);
    sl_buf_free(&hex);
    sl_dayfilter_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_false_negatives_after_folding),
        cmocka_unit_test(test_folding_equals_building_small),
        cmocka_unit_test(test_positions_are_the_sql_ones),
        cmocka_unit_test(test_slices_spread),
        cmocka_unit_test(test_hour_slices),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
