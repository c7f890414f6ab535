/* Unit tests for rules/crashctx.c (include/sluice/crashctx.h): the release of a release
 * line, the stable event id, the dyno type, breadcrumbs (levels, JSON, cut, UTF-8) and the
 * search link. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/crashctx.h"

static struct sl_str S(const char *s)
{
    return sl_str_make(s, strlen(s));
}

static void test_release(void **state)
{
    char out[16];
    (void)state;
    assert_true(sl_crashctx_release(S("Release v42 created by user dev@example.com"), out,
                                    sizeof(out)));
    assert_string_equal(out, "v42");
    assert_true(sl_crashctx_release(S("Release v7 created by user a@b"), out, sizeof(out)));
    assert_string_equal(out, "v7");
    assert_false(sl_crashctx_release(S("Release v created by user a@b"), out, sizeof(out)));
    assert_string_equal(out, "");
    assert_false(sl_crashctx_release(S("Release v42 rolled back"), out, sizeof(out)));
    assert_false(sl_crashctx_release(S("Deploy 1a2b3c by user a@b"), out, sizeof(out)));
    assert_false(sl_crashctx_release(S("Release v123456789 created by x"), out, 4));
    assert_false(sl_crashctx_release(S("Release v"), out, sizeof(out)));
}

static void test_event_id(void **state)
{
    char a[33], b[33], c[33], d[33];
    (void)state;
    sl_crashctx_event_id(3, S("web.1"), 1048577, a);
    sl_crashctx_event_id(3, S("web.1"), 1048577, b);
    sl_crashctx_event_id(3, S("web.2"), 1048577, c);
    sl_crashctx_event_id(3, S("web.1"), 1048578, d);
    assert_int_equal(strlen(a), 32);
    for (int i = 0; i < 32; i++)
        assert_true((a[i] >= '0' && a[i] <= '9') || (a[i] >= 'a' && a[i] <= 'f'));
    assert_string_equal(a, b);
    assert_string_not_equal(a, c);
    assert_string_not_equal(a, d);
}

static void test_dyno_type(void **state)
{
    char out[16];
    (void)state;
    sl_crashctx_dyno_type(S("web.1"), out, sizeof(out));
    assert_string_equal(out, "web");
    sl_crashctx_dyno_type(S("worker.12"), out, sizeof(out));
    assert_string_equal(out, "worker");
    sl_crashctx_dyno_type(S("router"), out, sizeof(out));
    assert_string_equal(out, "router");
    sl_crashctx_dyno_type(S("averyveryverylongdynoname.1"), out, 5);
    assert_string_equal(out, "aver");
    sl_crashctx_dyno_type(SL_STR_NULL, out, sizeof(out));
    assert_string_equal(out, "");
}

static void test_levels(void **state)
{
    (void)state;
    assert_string_equal(sl_crashctx_crumb_level(S("Error R14 (Memory quota exceeded)")), "error");
    assert_string_equal(sl_crashctx_crumb_level(S("Error R10 (Boot timeout)")), "error");
    assert_string_equal(sl_crashctx_crumb_level(S("State changed from up to crashed")), "error");
    assert_string_equal(sl_crashctx_crumb_level(S("at=error code=H10 desc=\"App crashed\"")),
                        "error");
    assert_string_equal(sl_crashctx_crumb_level(S("Process exited with status 1")), "warning");
    assert_string_equal(sl_crashctx_crumb_level(S("Process exited with status 137")), "warning");
    assert_string_equal(sl_crashctx_crumb_level(S("Process exited with status 0")), "info");
    assert_string_equal(sl_crashctx_crumb_level(S("State changed from starting to up")), "info");
}

static void test_crumbs(void **state)
{
    struct sl_buf b;
    char big[1500];
    (void)state;
    sl_buf_init(&b, 1 << 16);
    assert_int_equal(sl_crashctx_crumbs_begin(&b), 0);
    assert_int_equal(sl_crashctx_crumbs_end(&b), 0);
    assert_string_equal(b.p, "[]");
    sl_buf_reset(&b);
    assert_int_equal(sl_crashctx_crumbs_begin(&b), 0);
    assert_int_equal(sl_crashctx_crumbs_add(&b, 1700000000123456LL, S("Error R14 \"x\"")), 0);
    assert_int_equal(sl_crashctx_crumbs_add(&b, 1700000001000000LL, S("Process exited with status 0")), 0);
    assert_int_equal(sl_crashctx_crumbs_end(&b), 0);
    assert_string_equal(
        b.p, "[{\"timestamp\":\"2023-11-14T22:13:20.123456Z\",\"type\":\"default\",\"category\":"
             "\"heroku\",\"level\":\"error\",\"message\":\"Error R14 \\\"x\\\"\"},"
             "{\"timestamp\":\"2023-11-14T22:13:21.000000Z\",\"type\":\"default\",\"category\":"
             "\"heroku\",\"level\":\"info\",\"message\":\"Process exited with status 0\"}]");
    /* a long line is cut at 1 000 bytes, never inside a UTF-8 sequence */
    memset(big, 'a', sizeof(big));
    memcpy(big + 999, "\xc3\xa9", 2);
    sl_buf_reset(&b);
    assert_int_equal(sl_crashctx_crumbs_begin(&b), 0);
    assert_int_equal(sl_crashctx_crumbs_add(&b, 0, sl_str_make(big, sizeof(big))), 0);
    assert_int_equal(sl_crashctx_crumbs_end(&b), 0);
    assert_non_null(strstr(b.p, "\"message\":\""));
    assert_int_equal(strlen(strstr(b.p, "\"message\":\"") + 11), 999 + 3); /* "}] */
    /* the cap of the buffer is an error, never a cut JSON */
    sl_buf_free(&b);
    sl_buf_init(&b, 40);
    assert_int_equal(sl_crashctx_crumbs_begin(&b), 0);
    assert_int_equal(sl_crashctx_crumbs_add(&b, 0, S("Process exited with status 1")), SL_ETOOBIG);
    sl_buf_free(&b);
}

static void test_search_url(void **state)
{
    struct sl_buf b;
    (void)state;
    sl_buf_init(&b, 4096);
    assert_int_equal(sl_crashctx_search_url("https://logs.example.com", "shop", S("web.1"),
                                            1700000000000000LL, 1700000002500000LL, &b),
                     0);
    assert_string_equal(b.p, "https://logs.example.com/api/v1/search?q=proc%3Aweb.1&source=shop"
                             "&since=2023-11-14T22%3A13%3A19.000000Z"
                             "&until=2023-11-14T22%3A13%3A23.500000Z&order=asc&limit=1000");
    sl_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_release),   cmocka_unit_test(test_event_id),
        cmocka_unit_test(test_dyno_type), cmocka_unit_test(test_levels),
        cmocka_unit_test(test_crumbs),    cmocka_unit_test(test_search_url),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
