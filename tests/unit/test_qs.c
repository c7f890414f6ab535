/* Unit tests for drain/qs.c (include/sluice/qs.h): the pair splitter and the one
 * decoding rule ('+', %XX, bad escapes and over-long results are errors, never kept or
 * cut). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "sluice/qs.h"

static void test_split(void **state)
{
    static const struct {
        const char *q;
        const char *want; /* pairs as "key=val;" */
    } cases[] = {
        {"", ""},
        {"a=1", "a=1;"},
        {"a=1&b=2", "a=1;b=2;"},
        {"&&a=1&", "a=1;"},
        {"flag&x=", "flag=;x=;"},
        {"=v", "=v;"},
        {"a=b=c", "a=b=c;"},
        {"a=%zz&b", "a=%zz;b=;"}, /* the splitter does not decode */
        {"&", ""},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sl_str q = sl_str_make(cases[i].q, strlen(cases[i].q));
        struct sl_qs_pair p;
        size_t pos = 0;
        char got[128];
        int n = 0;

        got[0] = '\0';
        while (sl_qs_next(q, &pos, &p) == 1)
            n += snprintf(got + n, sizeof(got) - (size_t)n, "%.*s=%.*s;", (int)p.key.len,
                          p.key.p, (int)p.val.len, p.val.p);
        assert_string_equal(got, cases[i].want);
        assert_int_equal(sl_qs_next(q, &pos, &p), 0); /* stays at the end */
    }
}

static void test_decode(void **state)
{
    static const struct {
        const char *in;
        size_t cap;
        long want; /* length or error */
        const char *out;
        size_t outlen;
    } cases[] = {
        {"", 8, 0, "", 0},
        {"abc", 8, 3, "abc", 3},
        {"a+b", 8, 3, "a b", 3},
        {"%41%2f%2F", 8, 3, "A//", 3},
        {"%e2%82%ac", 8, 3, "\xe2\x82\xac", 3},
        {"%2B+", 8, 2, "+ ", 2},
        {"%00x", 8, 2, "\0x", 2}, /* NUL decodes; decode_cstr refuses it */
        {"100%", 8, SL_EPARSE, NULL, 0},
        {"%4", 8, SL_EPARSE, NULL, 0},
        {"%zz", 8, SL_EPARSE, NULL, 0},
        {"%4g", 8, SL_EPARSE, NULL, 0},
        {"a%%41", 8, SL_EPARSE, NULL, 0},
        {"abcd", 4, 4, "abcd", 4},
        {"abcde", 4, SL_ETOOBIG, NULL, 0}, /* never cut */
        {"%41%41%41%41%41", 4, SL_ETOOBIG, NULL, 0},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[16];
        long got = sl_qs_decode(sl_str_make(cases[i].in, strlen(cases[i].in)), out, cases[i].cap);
        if (got != cases[i].want)
            fail_msg("case %zu \"%s\": got %ld, want %ld", i, cases[i].in, got, cases[i].want);
        if (got > 0)
            assert_memory_equal(out, cases[i].out, cases[i].outlen);
    }
}

static void test_decode_cstr(void **state)
{
    static const struct {
        const char *in;
        size_t cap;
        long want;
        const char *out;
    } cases[] = {
        {"a+b%2Fc", 8, 5, "a b/c"},
        {"", 1, 0, ""},
        {"abc", 4, 3, "abc"},
        {"abcd", 4, SL_ETOOBIG, NULL}, /* the NUL counts */
        {"%00", 8, SL_EPARSE, NULL},
        {"a%00b", 8, SL_EPARSE, NULL},
        {"%", 8, SL_EPARSE, NULL},
        {"x", 0, SL_ETOOBIG, NULL},
        /* from the read API's old sl_api_unescape cases */
        {"a+b%20c%2Fd", 16, 7, "a b c/d"},
        {"%3e%3D500", 16, 5, ">=500"}, /* either case of hex digit */
        {"%4", 8, SL_EPARSE, NULL},    /* truncated escape */
        {"%zz", 8, SL_EPARSE, NULL},
        {"0123456789abcdef", 16, SL_ETOOBIG, NULL},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[16];
        long got =
            sl_qs_decode_cstr(sl_str_make(cases[i].in, strlen(cases[i].in)), out, cases[i].cap);
        if (got != cases[i].want)
            fail_msg("case %zu \"%s\": got %ld, want %ld", i, cases[i].in, got, cases[i].want);
        if (got >= 0)
            assert_string_equal(out, cases[i].out);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_decode),
        cmocka_unit_test(test_decode_cstr),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
