/* Unit tests for drain/batch.c (include/sluice/batch.h): the batch cut, COPY pieces, the
 * frame-id de-duplication decision (within a batch, the arrays sent, PostgreSQL's answer
 * matched back through the '?' sanitising), the COPY order, row-id blocks, partition
 * days and the commit counts (Heroku loss codes). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "sluice/batch.h"
#include "sluice/entry.h"
#include "sluice/rfc5424.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void test_full(void **state)
{
    static const struct {
        size_t rows, bytes;
        int batch_rows;
        bool full;
    } cases[] = {
        {0, 0, 10000, false},
        {9999, 0, 10000, false},
        {10000, 0, 10000, true},
        {12000, 0, 10000, true}, /* the last record may pass the limit */
        {1, SL_BATCH_MAX_BYTES - 1, 10000, false},
        {1, SL_BATCH_MAX_BYTES, 10000, true},
        {0, 0, 1, false},
        {1, 0, 1, true},
    };
    (void)state;
    for (size_t i = 0; i < N(cases); i++)
        assert_int_equal(sl_batch_full(cases[i].rows, cases[i].bytes, cases[i].batch_rows),
                         cases[i].full);
}

static void test_copy_due(void **state)
{
    static const struct {
        size_t len;
        bool final, due;
    } cases[] = {
        {0, false, false},
        {0, true, false},
        {1, false, false},
        {1, true, true},
        {SL_BATCH_COPY_CHUNK - 1, false, false},
        {SL_BATCH_COPY_CHUNK, false, true},
        {SL_BATCH_COPY_CHUNK * 3, false, true},
    };
    (void)state;
    for (size_t i = 0; i < N(cases); i++)
        assert_int_equal(sl_batch_copy_due(cases[i].len, cases[i].final), cases[i].due);
}

#define F(sid, id)                                                                                 \
    {                                                                                              \
        (sid), {(id), sizeof(id) - 1}, false, false                                                \
    }
#define NOID(sid)                                                                                  \
    {                                                                                              \
        (sid), {NULL, 0}, false, false                                                             \
    }

static void test_frames_mark(void **state)
{
    static const struct {
        const char *name;
        struct sl_batch_frame in[6];
        size_t n;
        const char *want; /* per frame: '.' left alone, 'a' asked, 'd' duplicate in batch */
        size_t asked;
    } cases[] = {
        {"none", {NOID(1), NOID(2)}, 2, "..", 0},
        {"distinct", {F(1, "a"), F(1, "b"), F(2, "a")}, 3, "aaa", 3},
        {"repeat", {F(1, "a"), F(1, "a"), F(1, "a")}, 3, "add", 1},
        {"same id other source", {F(1, "x"), F(2, "x")}, 2, "aa", 2},
        {"prefix is not the id", {F(1, "ab"), F(1, "a")}, 2, "aa", 2},
        {"mixed", {NOID(1), F(1, "a"), NOID(1), F(1, "a"), F(2, "a")}, 5, ".a.da", 2},
    };
    (void)state;
    for (size_t c = 0; c < N(cases); c++) {
        struct sl_batch_frame f[6];
        memcpy(f, cases[c].in, sizeof(f));
        assert_int_equal(sl_batch_frames_mark(f, cases[c].n), cases[c].asked);
        for (size_t i = 0; i < cases[c].n; i++) {
            char want = cases[c].want[i];
            if (f[i].ask != (want == 'a') || f[i].dup != (want != '.'))
                fail_msg("case %s frame %zu: ask=%d dup=%d want %c", cases[c].name, i, f[i].ask,
                         f[i].dup, want);
        }
    }
}

/* A frame already marked dup by an earlier attempt of the same batch stays so. */
static void test_frames_mark_retry(void **state)
{
    struct sl_batch_frame f[2] = {F(1, "a"), F(1, "b")};

    (void)state;
    f[0].dup = true;
    assert_int_equal(sl_batch_frames_mark(f, 2), 1);
    assert_true(f[0].dup);
    assert_false(f[0].ask);
    assert_true(f[1].ask);
}

static void test_frames_arrays(void **state)
{
    static const struct {
        struct sl_batch_frame in[3];
        size_t n;
        const char *sids, *fids;
    } cases[] = {
        {{F(1, "a"), F(22, "b")}, 2, "{1,22}", "{\"a\",\"b\"}"},
        {{F(-3, "q\"x"), F(4, "back\\slash")}, 2, "{-3,4}", "{\"q\\\"x\",\"back\\\\slash\"}"},
        {{F(5, "t\x01\xc3\xa9"), F(5, "\x7f")}, 2, "{5,5}", "{\"t???\",\"?\"}"},
        {{F(1, "a"), F(1, "a"), F(2, "z")}, 3, "{1,2}", "{\"a\",\"z\"}"}, /* the repeat not sent */
    };
    (void)state;
    for (size_t c = 0; c < N(cases); c++) {
        struct sl_batch_frame f[3];
        struct sl_buf s, t;

        memcpy(f, cases[c].in, sizeof(f));
        sl_batch_frames_mark(f, cases[c].n);
        sl_buf_init(&s, 1024);
        sl_buf_init(&t, 1024);
        assert_int_equal(sl_batch_frames_arrays(f, cases[c].n, &s, &t), 0);
        assert_string_equal(s.p, cases[c].sids); /* NUL-terminated parameters */
        assert_string_equal(t.p, cases[c].fids);
        assert_int_equal(s.len, strlen(cases[c].sids) + 1);
        sl_buf_free(&s);
        sl_buf_free(&t);
    }
}

static void test_frames_arrays_cap(void **state)
{
    struct sl_batch_frame f[1] = {F(1, "0123456789")};
    struct sl_buf s, t;

    (void)state;
    sl_batch_frames_mark(f, 1);
    sl_buf_init(&s, 64);
    sl_buf_init(&t, 8);
    assert_int_equal(sl_batch_frames_arrays(f, 1, &s, &t), SL_ETOOBIG);
    sl_buf_free(&s);
    sl_buf_free(&t);
}

static void test_frames_stored(void **state)
{
    static const struct {
        const char *name;
        struct sl_batch_frame in[4];
        size_t n;
        int64_t sid;
        const char *fid;
        long idx;        /* frame cleared, -1 none */
        const char *dup; /* dup flags after: 'd' dup, '.' stored */
    } cases[] = {
        {"new", {F(1, "a"), F(1, "b")}, 2, 1, "b", 1, "d."},
        {"other source", {F(1, "a")}, 1, 2, "a", -1, "d"},
        {"longer", {F(1, "a")}, 1, 1, "ab", -1, "d"},
        {"sanitised", {F(7, "x\x01y")}, 1, 7, "x?y", 0, "."},
        {"sanitised does not match raw ?", {F(7, "x\x01y")}, 1, 7, "x\x01y", -1, "d"},
        /* two ids that read the same once sanitised: the first asked one is stored */
        {"collision", {F(3, "\x01"), F(3, "\x02")}, 2, 3, "?", 0, ".d"},
        {"repeat in batch stays dup", {F(1, "a"), F(1, "a")}, 2, 1, "a", 0, ".d"},
    };
    (void)state;
    for (size_t c = 0; c < N(cases); c++) {
        struct sl_batch_frame f[4];
        memcpy(f, cases[c].in, sizeof(f));
        sl_batch_frames_mark(f, cases[c].n);
        long got =
            sl_batch_frames_stored(f, cases[c].n, cases[c].sid, cases[c].fid, strlen(cases[c].fid));
        if (got != cases[c].idx)
            fail_msg("case %s: stored index %ld, want %ld", cases[c].name, got, cases[c].idx);
        for (size_t i = 0; i < cases[c].n; i++)
            if (f[i].dup != (cases[c].dup[i] == 'd'))
                fail_msg("case %s frame %zu: dup=%d", cases[c].name, i, f[i].dup);
    }
}

static void test_order(void **state)
{
    static const struct {
        int64_t sids[6];
        size_t n;
        size_t want[6]; /* idx in COPY order */
    } cases[] = {
        {{5}, 1, {0}},
        {{2, 1}, 2, {1, 0}},
        {{3, 1, 3, 1, 2, 3}, 6, {1, 3, 4, 0, 2, 5}}, /* stable within a source */
        {{0, -1, 0}, 3, {1, 0, 2}},                  /* undecodable (0) sorts as a source */
        {{9, 9, 9, 9}, 4, {0, 1, 2, 3}},
    };
    (void)state;
    for (size_t c = 0; c < N(cases); c++) {
        struct sl_batch_ord o[6];
        for (size_t i = 0; i < cases[c].n; i++) {
            o[i].source_id = cases[c].sids[i];
            o[i].idx = 100 + i;
        }
        sl_batch_order(o, cases[c].n);
        for (size_t i = 0; i < cases[c].n; i++)
            assert_int_equal(o[i].idx, 100 + cases[c].want[i]);
    }
}

static void test_ids(void **state)
{
    static const struct {
        int64_t next, end;
        size_t n;
        int want;
    } cases[] = {
        {0, 0, 0, 0},
        {0, 0, 1, 1},
        {10, 20, 10, 0},
        {10, 20, 11, 1},
        {0, 0, (size_t)1 << 20, 1},
        {0, 0, ((size_t)1 << 20) + 1, SL_ETOOBIG},
        {0, ((int64_t)1 << 20) + 5, ((size_t)1 << 20) + 1, 0}, /* fits what is left */
    };
    int64_t next, end;

    (void)state;
    for (size_t c = 0; c < N(cases); c++)
        assert_int_equal(sl_batch_ids_need(cases[c].next, cases[c].end, cases[c].n), cases[c].want);
    sl_batch_ids_block(0, &next, &end);
    assert_int_equal(next, 0);
    assert_int_equal(end, 1048576);
    sl_batch_ids_block(3, &next, &end);
    assert_int_equal(next, 3 * 1048576);
    assert_int_equal(end, 4 * 1048576);
}

static void test_days(void **state)
{
    struct sl_batch_days d = {{0}, 0};

    (void)state;
    assert_int_equal(sl_batch_day(0), 0);
    assert_int_equal(sl_batch_day(86400000000LL - 1), 0);
    assert_int_equal(sl_batch_day(86400000000LL), 1);
    assert_int_equal(sl_batch_day(1765065600000000LL), 20429); /* 2025-12-07 */
    assert_false(sl_batch_days_has(&d, 0));
    for (int64_t k = 1; k <= SL_BATCH_KNOWN_DAYS; k++)
        sl_batch_days_add(&d, k);
    assert_int_equal(d.n, SL_BATCH_KNOWN_DAYS);
    assert_true(sl_batch_days_has(&d, 1));
    sl_batch_days_add(&d, 100); /* the oldest goes */
    assert_int_equal(d.n, SL_BATCH_KNOWN_DAYS);
    assert_false(sl_batch_days_has(&d, 1));
    assert_true(sl_batch_days_has(&d, 2));
    assert_true(sl_batch_days_has(&d, 100));
}

/* A commit's rows per source: one group per run of a source's consecutive ids. */
static void test_groups(void **state)
{
    struct sl_batch_groups gs = {0};
    (void)state;
    /* source 7: ids 100..102, received out of order; source 9: 103..104 */
    assert_int_equal(sl_batch_group_row(&gs, 7, 100, 5000), 0);
    assert_int_equal(sl_batch_group_row(&gs, 7, 101, 4000), 0);
    assert_int_equal(sl_batch_group_row(&gs, 7, 102, 6000), 0);
    assert_int_equal(sl_batch_group_row(&gs, 9, 103, 1000), 0);
    assert_int_equal(sl_batch_group_row(&gs, 9, 104, 1000), 0);
    /* a gap in ids (a new id block) starts a new group even for the same source */
    assert_int_equal(sl_batch_group_row(&gs, 9, 1 << 20, 1200), 0);
    assert_int_equal(gs.n, 3);
    assert_int_equal(gs.g[0].source_id, 7);
    assert_int_equal(gs.g[0].id_lo, 100);
    assert_int_equal(gs.g[0].id_hi, 102);
    assert_int_equal(gs.g[0].rmin_us, 4000);
    assert_int_equal(gs.g[0].rmax_us, 6000);
    assert_int_equal(gs.g[0].nrows, 3);
    assert_int_equal(gs.g[1].source_id, 9);
    assert_int_equal(gs.g[1].id_lo, 103);
    assert_int_equal(gs.g[1].id_hi, 104);
    assert_int_equal(gs.g[1].nrows, 2);
    assert_int_equal(gs.g[2].id_lo, 1 << 20);
    assert_int_equal(gs.g[2].nrows, 1);
    /* many sources: the array grows */
    sl_batch_groups_reset(&gs);
    assert_int_equal(gs.n, 0);
    for (int i = 0; i < 500; i++)
        assert_int_equal(sl_batch_group_row(&gs, i, 1000 + i, i), 0);
    assert_int_equal(gs.n, 500);
    assert_int_equal(gs.g[499].id_lo, 1499);
    sl_batch_groups_free(&gs);
    assert_null(gs.g);
}

static void test_counts(void **state)
{
    static const struct {
        int code;
        int slot;
    } slots[] = {{0, -1}, {SL_HEROKU_L10, 0}, {SL_HEROKU_L12, 1}, {SL_HEROKU_L13, 2}, {11, -1},
                 {14, -1}};
    static const struct {
        int64_t id, t;
        bool parse_error, raw;
        int loss;
        long lost;
        unsigned flags;
    } rows[] = {
        {100, 5000, false, false, 0, 0, 0},
        {101, 3000, true, false, SL_HEROKU_L10, 7, SL_MSG_TRUNCATED},
        {102, 9000, false, true, SL_HEROKU_L13, 2, 0},
        {103, 4000, false, false, SL_HEROKU_L10, 1, 0},
        {104, 4000, false, false, 11, 50, 0}, /* not a loss code */
    };
    struct sl_batch_counts bc = {0};

    (void)state;
    for (size_t i = 0; i < N(slots); i++)
        assert_int_equal(sl_batch_loss_slot(slots[i].code), slots[i].slot);
    for (size_t i = 0; i < N(rows); i++) {
        struct sl_row_info info;
        memset(&info, 0, sizeof(info));
        info.parse_error = rows[i].parse_error;
        info.raw_kept = rows[i].raw;
        info.loss_code = rows[i].loss;
        info.loss_count = rows[i].lost;
        sl_batch_count_row(&bc, rows[i].id, rows[i].t, &info, rows[i].flags);
    }
    sl_batch_count_dup(&bc, 4);
    sl_batch_count_dup(&bc, 0);
    assert_int_equal(bc.rows, 5);
    assert_int_equal(bc.id_hi, 104);
    assert_int_equal(bc.rmin_us, 3000);
    assert_int_equal(bc.rmax_us, 9000);
    assert_int_equal(bc.parse_errors, 1);
    assert_int_equal(bc.raw, 1);
    assert_int_equal(bc.truncated, 1);
    assert_int_equal(bc.lost[0], 8);
    assert_int_equal(bc.lost[1], 0);
    assert_int_equal(bc.lost[2], 2);
    assert_int_equal(bc.dup_frames, 2);
    assert_int_equal(bc.dup_lines, 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full),          cmocka_unit_test(test_copy_due),
        cmocka_unit_test(test_frames_mark),   cmocka_unit_test(test_frames_mark_retry),
        cmocka_unit_test(test_frames_arrays), cmocka_unit_test(test_frames_arrays_cap),
        cmocka_unit_test(test_frames_stored), cmocka_unit_test(test_order),
        cmocka_unit_test(test_ids),           cmocka_unit_test(test_days),
        cmocka_unit_test(test_counts),        cmocka_unit_test(test_groups),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
