/* Unit tests for drain/diskguard.c (include/sluice/diskguard.h): the marks' check, the
 * used figure from the budget and the filesystem, the state machine and its hysteresis,
 * the bytes and rows to free, and the order of eviction across sources. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "sluice/diskguard.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const struct sl_diskguard_limits DEF = {85, 95, 5};

static void test_limits_check(void **state)
{
    static const struct {
        struct sl_diskguard_limits l;
        int ok;
    } cases[] = {
        {{85, 95, 5}, 1},  {{50, 51, 0}, 1}, {{85, 85, 5}, 0},  {{90, 85, 5}, 0},
        {{85, 101, 5}, 0}, {{5, 95, 5}, 0},  {{85, 95, -1}, 0}, {{99, 100, 1}, 1},
    };
    char why[128];
    (void)state;
    for (size_t i = 0; i < N(cases); i++)
        assert_int_equal(sl_diskguard_limits_check(&cases[i].l, why, sizeof(why)) == 0,
                         cases[i].ok);
}

static void test_used_pct(void **state)
{
    enum sl_diskguard_figure w;
    struct sl_diskguard_figures f = {-1, 0, -1, -1};
    (void)state;

    assert_true(sl_diskguard_used_pct(&f, &w) < 0);
    assert_int_equal(w, SL_DISK_FIGURE_NONE);
    /* a size without a budget is no figure */
    f.db_bytes = 900;
    assert_true(sl_diskguard_used_pct(&f, &w) < 0);
    f.budget_bytes = 1000;
    assert_true(sl_diskguard_used_pct(&f, &w) == 90.0);
    assert_int_equal(w, SL_DISK_FIGURE_BUDGET);
    /* df's Use%: used / (used + available), reserved blocks left out */
    f.fs_used_bytes = 20;
    f.fs_avail_bytes = 60;
    assert_true(sl_diskguard_used_pct(&f, &w) == 90.0);
    assert_int_equal(w, SL_DISK_FIGURE_BUDGET); /* the first of equals */
    f.fs_used_bytes = 95;
    f.fs_avail_bytes = 5;
    assert_true(sl_diskguard_used_pct(&f, &w) == 95.0);
    assert_int_equal(w, SL_DISK_FIGURE_FILESYSTEM);
    f.budget_bytes = 0; /* the filesystem alone */
    assert_true(sl_diskguard_used_pct(&f, NULL) == 95.0);
    assert_string_equal(sl_diskguard_figure_name(SL_DISK_FIGURE_FILESYSTEM), "filesystem");
}

static void test_state_from_figures(void **state)
{
    static const struct {
        enum sl_diskguard_state prev;
        double pct;
        enum sl_diskguard_state want;
    } cases[] = {
        {SL_DISK_OK, -1, SL_DISK_OK},
        {SL_DISK_REFUSING, -1, SL_DISK_OK}, /* nothing measured: never refuse on a guess */
        {SL_DISK_OK, 0, SL_DISK_OK},
        {SL_DISK_OK, 84.99, SL_DISK_OK},
        {SL_DISK_OK, 85, SL_DISK_EVICTING},
        {SL_DISK_OK, 94.9, SL_DISK_EVICTING},
        {SL_DISK_OK, 95, SL_DISK_REFUSING},
        {SL_DISK_OK, 250, SL_DISK_REFUSING},
        /* hysteresis: a state is left 5 points under its mark */
        {SL_DISK_EVICTING, 84, SL_DISK_EVICTING},
        {SL_DISK_EVICTING, 80, SL_DISK_EVICTING},
        {SL_DISK_EVICTING, 79.9, SL_DISK_OK},
        {SL_DISK_REFUSING, 94, SL_DISK_REFUSING},
        {SL_DISK_REFUSING, 90, SL_DISK_REFUSING},
        {SL_DISK_REFUSING, 89.9, SL_DISK_EVICTING},
        {SL_DISK_REFUSING, 79.9, SL_DISK_OK},
        {SL_DISK_EVICTING, 92, SL_DISK_EVICTING}, /* refusing only at its own mark */
    };
    (void)state;
    for (size_t i = 0; i < N(cases); i++)
        assert_int_equal(sl_diskguard_next(cases[i].prev, cases[i].pct, &DEF), cases[i].want);
    assert_string_equal(sl_diskguard_state_name(SL_DISK_REFUSING), "refusing");
}

/* A figure going up and down through the marks: no flapping at a mark. */
static void test_hysteresis_sequence(void **state)
{
    static const double pcts[] = {70, 84, 85, 86, 84, 85, 81, 80, 79,
                                  84, 95, 96, 93, 91, 89, 95, 88, 78};
    static const enum sl_diskguard_state want[] = {
        SL_DISK_OK,       SL_DISK_OK,       SL_DISK_EVICTING, SL_DISK_EVICTING, SL_DISK_EVICTING,
        SL_DISK_EVICTING, SL_DISK_EVICTING, SL_DISK_EVICTING, SL_DISK_OK,       SL_DISK_OK,
        SL_DISK_REFUSING, SL_DISK_REFUSING, SL_DISK_REFUSING, SL_DISK_REFUSING, SL_DISK_EVICTING,
        SL_DISK_REFUSING, SL_DISK_EVICTING, SL_DISK_OK,
    };
    enum sl_diskguard_state s = SL_DISK_OK;
    int changes = 0;
    (void)state;
    for (size_t i = 0; i < N(pcts); i++) {
        enum sl_diskguard_state n = sl_diskguard_next(s, pcts[i], &DEF);
        assert_int_equal(n, want[i]);
        changes += n != s;
        s = n;
    }
    assert_int_equal(changes, 7);
}

static void test_need_bytes(void **state)
{
    struct sl_diskguard_figures f = {900, 1000, -1, -1};
    (void)state;
    /* down to 80 % of the budget */
    assert_int_equal(sl_diskguard_need_bytes(&f, &DEF), 100);
    f.db_bytes = 800;
    assert_int_equal(sl_diskguard_need_bytes(&f, &DEF), 0);
    f.db_bytes = 500;
    assert_int_equal(sl_diskguard_need_bytes(&f, &DEF), 0);
    /* the filesystem further over wins: 90 of 100 used, 80 wanted */
    f.fs_used_bytes = 90;
    f.fs_avail_bytes = 10;
    assert_int_equal(sl_diskguard_need_bytes(&f, &DEF), 10);
    f.db_bytes = 2000;
    assert_int_equal(sl_diskguard_need_bytes(&f, &DEF), 1200);
    f.budget_bytes = 0;
    assert_int_equal(sl_diskguard_need_bytes(&f, &DEF), 10);
}

static void test_rows_needed(void **state)
{
    (void)state;
    assert_int_equal(sl_diskguard_rows_needed(0, 1000, 10, 1), 0);
    assert_int_equal(sl_diskguard_rows_needed(-5, 1000, 10, 1), 0);
    assert_int_equal(sl_diskguard_rows_needed(100, 1000, 10, 1), 1);
    assert_int_equal(sl_diskguard_rows_needed(101, 1000, 10, 1), 2);   /* rounded up */
    assert_int_equal(sl_diskguard_rows_needed(5000, 1000, 10, 1), 50); /* more than it holds */
    assert_int_equal(sl_diskguard_rows_needed(1, 1000000, 3, 0), 1);
    /* whole batches: one rewrite rather than another for the last few rows */
    assert_int_equal(sl_diskguard_rows_needed(101, 1000, 10, 4), 4);
    assert_int_equal(sl_diskguard_rows_needed(400, 1000, 10, 4), 4);
    assert_int_equal(sl_diskguard_rows_needed(401, 1000, 10, 4), 8);
    assert_int_equal(sl_diskguard_rows_needed(244700, 1794048, 4000, 500), 1000);
    assert_true(sl_diskguard_rows_needed(100, 0, 10, 1) == INT64_MAX);
    assert_true(sl_diskguard_rows_needed(100, 1000, 0, 1) == INT64_MAX);
}

static void test_pick_oldest_first(void **state)
{
    const int64_t none = INT64_MAX;
    int64_t cap;
    (void)state;
    {
        int64_t v[] = {300, 100, 200};
        assert_int_equal(sl_diskguard_pick(v, 3, &cap), 1);
        assert_true(cap == 200);
    }
    {
        int64_t v[] = {100, 300, 200};
        assert_int_equal(sl_diskguard_pick(v, 3, &cap), 0);
        assert_true(cap == 200);
    }
    { /* equals: the first, and the cap is the same time (its rows at that time go too) */
        int64_t v[] = {none, 50, 50};
        assert_int_equal(sl_diskguard_pick(v, 3, &cap), 1);
        assert_true(cap == 50);
    }
    { /* a single source: no cap */
        int64_t v[] = {none, 7, none};
        assert_int_equal(sl_diskguard_pick(v, 3, &cap), 1);
        assert_true(cap == INT64_MAX);
    }
    {
        int64_t v[] = {none, none};
        assert_int_equal(sl_diskguard_pick(v, 2, &cap), 2);
        assert_int_equal(sl_diskguard_pick(v, 0, &cap), 0);
    }
}

/* Repeated picks with the batches they allow empty the sources in time order, whatever
 * the batch size: the eviction of three interleaved sources, row by row. */
static void test_pick_drains_in_time_order(void **state)
{
    /* three sources' row times, each ascending */
    static const int64_t a[] = {1, 4, 5, 6, 12};
    static const int64_t b[] = {2, 3, 9, 10};
    static const int64_t c[] = {7, 8, 11, 13, 14};
    const int64_t *src[3] = {a, b, c};
    const size_t len[3] = {N(a), N(b), N(c)};
    (void)state;
    for (size_t batch = 1; batch <= 4; batch++) {
        size_t pos[3] = {0, 0, 0};
        int64_t last = 0, deleted = 0;
        for (;;) {
            int64_t oldest[3], cap;
            size_t k;
            for (int i = 0; i < 3; i++)
                oldest[i] = pos[i] < len[i] ? src[i][pos[i]] : INT64_MAX;
            k = sl_diskguard_pick(oldest, 3, &cap);
            if (k == 3)
                break;
            /* the batch: up to `batch` rows of source k, none past cap */
            for (size_t n = 0; n < batch && pos[k] < len[k] && src[k][pos[k]] <= cap; n++) {
                assert_true(src[k][pos[k]] > last); /* never a younger row before an older */
                last = src[k][pos[k]++];
                deleted++;
            }
        }
        assert_int_equal(deleted, 14);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limits_check),       cmocka_unit_test(test_used_pct),
        cmocka_unit_test(test_state_from_figures), cmocka_unit_test(test_hysteresis_sequence),
        cmocka_unit_test(test_need_bytes),         cmocka_unit_test(test_rows_needed),
        cmocka_unit_test(test_pick_oldest_first),  cmocka_unit_test(test_pick_drains_in_time_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
