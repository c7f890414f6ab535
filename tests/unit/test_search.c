/* Unit tests for the pure parts of the read API: time parameters, cursors, time
 * formatting and the answer caps (drain/search.c), query-string decoding (drain/api.c),
 * and the commit feed the tail thread waits on (drain/feed.c). */
#include <unistd.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "sluice/api.h"
#include "sluice/config.h"
#include "sluice/err.h"
#include "sluice/feed.h"
#include "sluice/search.h"

#define NOW 1795321752920661LL /* 2026-11-22T04:29:12.920661Z */

static void test_parse_time_rfc3339(void **state)
{
    int64_t us;
    (void)state;
    assert_int_equal(sl_search_parse_time("2026-11-22T04:29:12.920661Z", NOW, &us), 0);
    assert_int_equal(us, NOW);
    assert_int_equal(sl_search_parse_time("2026-11-22T05:29:12.920661+01:00", NOW, &us), 0);
    assert_int_equal(us, NOW);
    assert_int_equal(sl_search_parse_time("2026-11-21T23:29:12.920661-05:00", NOW, &us), 0);
    assert_int_equal(us, NOW);
    assert_int_equal(sl_search_parse_time("2026-11-22t04:29:12z", NOW, &us), 0);
    assert_int_equal(us, NOW - 920661);
    assert_int_equal(sl_search_parse_time("2026-11-22T04:29:12.5Z", NOW, &us), 0);
    assert_int_equal(us, NOW - 920661 + 500000);
    /* up to 9 fraction digits, cut to microseconds */
    assert_int_equal(sl_search_parse_time("2026-11-22T04:29:12.920661999Z", NOW, &us), 0);
    assert_int_equal(us, NOW);
    assert_int_equal(sl_search_parse_time("1970-01-01", NOW, &us), 0);
    assert_int_equal(us, 0);
    assert_int_equal(sl_search_parse_time("2024-02-29", NOW, &us), 0);
    assert_int_equal(us, 1709164800LL * 1000000);
    /* malformed */
    const char *bad[] = {"",       "2026-11-22T04:29",      "2026-13-01",         "2026-11-22T25:00:00Z",
                         "2026-11-22T04:29:12", "2026-11-22T04:29:12.Z", "2026-11-22T04:29:12+0100",
                         "yesterday", "15x",  "15mm", "-5m", "1.2.3", "12s3",
                         /* sl_rfc3339_parse is stricter than the old copy: a space for
                          * 'T', a tenth fraction digit, impossible dates */
                         "2026-11-22 04:29:12.5Z", "2026-11-22T04:29:12.9206619999Z",
                         "2026-02-31", "2025-02-29", "2026-04-31T10:00:00Z", "2026-11-22T",
                         "2026-11-2x", "2026-00-10", NULL};
    for (int i = 0; bad[i]; i++)
        assert_int_equal(sl_search_parse_time(bad[i], NOW, &us), SL_EPARSE);
}

static void test_parse_time_relative_and_unix(void **state)
{
    int64_t us;
    (void)state;
    assert_int_equal(sl_search_parse_time("90s", NOW, &us), 0);
    assert_int_equal(us, NOW - 90 * 1000000LL);
    assert_int_equal(sl_search_parse_time("15m", NOW, &us), 0);
    assert_int_equal(us, NOW - 900 * 1000000LL);
    assert_int_equal(sl_search_parse_time("2h", NOW, &us), 0);
    assert_int_equal(us, NOW - 7200 * 1000000LL);
    assert_int_equal(sl_search_parse_time("3d", NOW, &us), 0);
    assert_int_equal(us, NOW - 3 * 86400 * 1000000LL);
    assert_int_equal(sl_search_parse_time("1w", NOW, &us), 0);
    assert_int_equal(us, NOW - 7 * 86400 * 1000000LL);
    assert_int_equal(sl_search_parse_time("1732181000", NOW, &us), 0);
    assert_int_equal(us, 1732181000LL * 1000000);
    assert_int_equal(sl_search_parse_time("1732181000.25", NOW, &us), 0);
    assert_int_equal(us, 1732181000LL * 1000000 + 250000);
    /* absurd relative values are refused, not wrapped */
    assert_int_equal(sl_search_parse_time("99999999999999d", NOW, &us), SL_EPARSE);
}

static void test_cursor_round_trip(void **state)
{
    char buf[48], dir = 0;
    int64_t us = 0, id = 0;
    (void)state;
    sl_search_cursor('o', NOW, 4611686018427387905LL, buf);
    assert_string_equal(buf, "o1795321752920661.4611686018427387905");
    assert_int_equal(sl_search_parse_cursor(buf, &dir, &us, &id), 0);
    assert_int_equal(dir, 'o');
    assert_int_equal(us, NOW);
    assert_int_equal(id, 4611686018427387905LL);
    sl_search_cursor('n', 1, 2, buf);
    assert_int_equal(sl_search_parse_cursor(buf, &dir, &us, &id), 0);
    assert_int_equal(dir, 'n');
    const char *bad[] = {"", "x1.2", "o", "o1", "o1.", "o.2", "o1.2x", "o-1.2", "o1.-2", "O1.2",
                         "o99999999999999999999.1", NULL};
    for (int i = 0; bad[i]; i++)
        assert_int_equal(sl_search_parse_cursor(bad[i], &dir, &us, &id), SL_EPARSE);
}

static void test_fmt_time(void **state)
{
    char out[32];
    (void)state;
    sl_search_fmt_time(NOW, out);
    assert_string_equal(out, "2026-11-22T04:29:12.920661Z");
    sl_search_fmt_time(0, out);
    assert_string_equal(out, "1970-01-01T00:00:00.000000Z");
    sl_search_fmt_time(-1, out);
    assert_string_equal(out, "1969-12-31T23:59:59.999999Z");
}

/* The caps are arithmetic on the settings: each case is (limit, max_message, max_header)
 * and the bytes they allow. */
static void test_answer_caps(void **state)
{
    static const struct {
        size_t msg, head, event;
    } ev[] = {
        {0, 0, SL_SEARCH_EVENT_FIXED},
        {1, 0, 6 + 4 + 6 + SL_SEARCH_EVENT_FIXED}, /* base64 of 1 byte is 4; fields 6 x */
        {3, 0, 18 + 4 + 18 + SL_SEARCH_EVENT_FIXED},
        {4, 0, 24 + 8 + 24 + SL_SEARCH_EVENT_FIXED},
        {0, 100, 600 + SL_SEARCH_EVENT_FIXED},
        /* the defaults: 6 x 64 KiB + base64 of 64 KiB + 6 x 16 KiB + fields 6 x 64 KiB + fixed */
        {65536, 16384, 393216 + 87384 + 98304 + 393216 + SL_SEARCH_EVENT_FIXED},
        {SIZE_MAX, 0, SIZE_MAX}, /* saturates */
        {0, SIZE_MAX / 2, SIZE_MAX},
    };
    static const struct {
        size_t limit, msg, head, answer;
    } an[] = {
        {0, 65536, 16384, SL_SEARCH_ANSWER_FIXED},
        {1, 0, 0, SL_SEARCH_EVENT_FIXED + 1 + SL_SEARCH_ANSWER_FIXED},
        {100, 65536, 16384, 100 * (974168 + 1) + SL_SEARCH_ANSWER_FIXED},
        {SL_SEARCH_MAX_LIMIT, 65536, 16384, 10000 * (size_t)(974168 + 1) + SL_SEARCH_ANSWER_FIXED},
        {SIZE_MAX, 1, 1, SIZE_MAX},
        {2, SIZE_MAX / 8, 0, SIZE_MAX},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(ev) / sizeof(ev[0]); i++)
        assert_int_equal(sl_search_event_max(ev[i].msg, ev[i].head), ev[i].event);
    for (size_t i = 0; i < sizeof(an) / sizeof(an[0]); i++)
        assert_int_equal(sl_search_answer_max(an[i].limit, an[i].msg, an[i].head), an[i].answer);
    /* larger settings never allow less */
    assert_true(sl_search_answer_max(10, 65537, 16384) > sl_search_answer_max(10, 65536, 16384));
    assert_true(sl_search_answer_max(11, 65536, 16384) > sl_search_answer_max(10, 65536, 16384));
}

/* The defaults the API falls back on are the settings table's. */
static void test_answer_cap_defaults(void **state)
{
    struct sl_config c;
    (void)state;
    unsetenv("SLUICE_MAX_MESSAGE_BYTES");
    unsetenv("SLUICE_MAX_HEADER_BYTES");
    assert_int_equal(sl_config_load(&c, 0, NULL), 0);
    assert_int_equal(c.max_message, SL_SEARCH_DEFAULT_MAX_MESSAGE);
    assert_int_equal(c.max_header, SL_SEARCH_DEFAULT_MAX_HEADER);
    sl_config_free(&c);
}

static void test_feed(void **state)
{
    struct sl_feed *f;
    int p[2];
    (void)state;
    assert_int_equal(sl_feed_new(&f), 0);
    assert_int_equal(sl_feed_head(f), 0);
    /* nothing pushed: the wait times out */
    assert_false(sl_feed_wait(f, -1, 10));
    /* a push wakes the waiter once; commit numbers from other nodes arrive out of order
     * (NOTIFY after this node's own push): the head only grows, an older one wakes nobody */
    sl_feed_push(f, 7);
    assert_int_equal(sl_feed_head(f), 7);
    assert_true(sl_feed_wait(f, -1, 1000));
    assert_false(sl_feed_wait(f, -1, 10));
    sl_feed_push(f, 5);
    assert_int_equal(sl_feed_head(f), 7);
    assert_false(sl_feed_wait(f, -1, 10));
    /* a wake (new stream, shutdown) wakes it too */
    sl_feed_wake(f);
    assert_true(sl_feed_wait(f, -1, 1000));
    /* a readable socket (NOTIFY) returns without a wake */
    assert_int_equal(pipe(p), 0);
    assert_int_equal(write(p[1], "x", 1), 1);
    assert_false(sl_feed_wait(f, p[0], 1000));
    close(p[0]);
    close(p[1]);
    sl_feed_free(f);
}

/* Where a tail window or a resume's reach ends, from the blocks' line counts. */
static void test_tail_blocks_reach(void **state)
{
    static const int64_t blocks[] = {1000, 1000, 500, 0, 2000, 7};
    static const struct {
        const char *name;
        size_t n;
        int64_t rows;
        size_t want;
    } cases[] = {
        {"first block reaches", 6, 1000, 0},
        {"one past the first", 6, 1001, 1},
        {"exactly two", 6, 2000, 1},
        {"sum crosses in the third", 6, 2400, 2},
        {"an empty block does not end it", 6, 2501, 4},
        {"the last block", 6, 4507, 5},
        {"never reached", 6, 4508, 6},
        {"no blocks", 0, 1, 0},
        {"zero rows: the first block", 6, 0, 0},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t got = sl_tail_blocks_reach(blocks, cases[i].n, cases[i].rows);
        if (got != cases[i].want)
            fail_msg("%s: got %zu, want %zu", cases[i].name, got, cases[i].want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_time_rfc3339),
        cmocka_unit_test(test_parse_time_relative_and_unix),
        cmocka_unit_test(test_cursor_round_trip),
        cmocka_unit_test(test_fmt_time),
        cmocka_unit_test(test_answer_caps),
        cmocka_unit_test(test_answer_cap_defaults),
        cmocka_unit_test(test_feed),
        cmocka_unit_test(test_tail_blocks_reach),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
