/* Unit tests for drain/utf8.c (include/sluice/utf8.h): the sequence stepper, validation
 * and the repair rule (U+FFFD per bad byte, U+2400 for NUL). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "sluice/utf8.h"

static void test_utf8(void **state)
{
    static const struct {
        const char *s;
        size_t n;
        int clean;
        const char *sanitized;
    } cases[] = {
        {"plain ascii", 11, 1, "plain ascii"},
        {"caf\xc3\xa9", 5, 1, "caf\xc3\xa9"},
        {"\xe2\x82\xac euro", 8, 1, "\xe2\x82\xac euro"},
        {"\xf0\x9f\x98\x80", 4, 1, "\xf0\x9f\x98\x80"},
        {"a\0b", 3, 0, "a\xe2\x90\x80" "b"},
        {"bad \xff\xfe", 6, 0, "bad \xef\xbf\xbd\xef\xbf\xbd"},
        {"\xc3", 1, 0, "\xef\xbf\xbd"},
        {"\xc0\xaf", 2, 0, "\xef\xbf\xbd\xef\xbf\xbd"},           /* overlong */
        {"\xed\xa0\x80", 3, 0, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* surrogate */
        {"0123456789abcdef\xff", 17, 0, "0123456789abcdef\xef\xbf\xbd"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sl_buf b;
        sl_buf_init(&b, 1024);
        assert_int_equal(sl_utf8_clean(cases[i].s, cases[i].n), cases[i].clean);
        assert_int_equal(sl_utf8_sanitize(cases[i].s, cases[i].n, &b), 0);
        assert_int_equal(b.len, strlen(cases[i].sanitized));
        assert_memory_equal(b.p, cases[i].sanitized, b.len);
        assert_true(sl_utf8_clean(b.p, b.len));
        sl_buf_free(&b);
    }
}

static void test_seq(void **state)
{
    static const struct {
        const char *s;
        size_t n;
        size_t want;
        uint32_t cp;
    } cases[] = {
        {"", 0, 0, 0},
        {"A", 1, 1, 'A'},
        {"\0", 1, 1, 0}, /* NUL is a sequence; sl_utf8_clean refuses it */
        {"\x7f", 1, 1, 0x7f},
        {"\xc2\x80", 2, 2, 0x80},
        {"\xdf\xbf", 2, 2, 0x7ff},
        {"\xe0\xa0\x80", 3, 3, 0x800},
        {"\xef\xbf\xbd", 3, 3, 0xfffd},
        {"\xf0\x90\x80\x80", 4, 4, 0x10000},
        {"\xf4\x8f\xbf\xbf", 4, 4, 0x10ffff},
        {"\xc3\xa9xyz", 5, 2, 0xe9},
        {"\x80", 1, 0, 0},              /* stray continuation */
        {"\xc0\x80", 2, 0, 0},          /* overlong NUL */
        {"\xc1\xbf", 2, 0, 0},          /* overlong */
        {"\xe0\x9f\xbf", 3, 0, 0},      /* overlong */
        {"\xf0\x8f\xbf\xbf", 4, 0, 0},  /* overlong */
        {"\xed\xa0\x80", 3, 0, 0},      /* surrogate */
        {"\xf4\x90\x80\x80", 4, 0, 0},  /* above U+10FFFF */
        {"\xf5\x80\x80\x80", 4, 0, 0},  /* no such lead */
        {"\xff", 1, 0, 0},
        {"\xe2\x82", 2, 0, 0},          /* truncated by n */
        {"\xe2\x82\xac", 2, 0, 0},      /* n says truncated even if bytes follow */
        {"\xe2\x00\xac", 4, 0, 0},      /* stops at the NUL */
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint32_t cp = 0xdeadbeef;
        size_t got = sl_utf8_seq((const unsigned char *)cases[i].s, cases[i].n, &cp);
        if (got != cases[i].want)
            fail_msg("case %zu: got %zu, want %zu", i, got, cases[i].want);
        if (got)
            assert_int_equal(cp, cases[i].cp);
    }
}

static void test_sanitize_cap(void **state)
{
    struct sl_buf b;

    (void)state;
    sl_buf_init(&b, 4);
    assert_int_equal(sl_utf8_sanitize("\xff\xff", 2, &b), SL_ETOOBIG);
    sl_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_seq),
        cmocka_unit_test(test_sanitize_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
