/* Unit tests for drain/pcre2pg.c (include/sluice/pcre2pg.h): every construct the
 * translator accepts with the ARE text it writes, every refusal with its position, length
 * and reason, and the output cap. Table-driven; positions are offsets in the regex itself
 * (the query module adds the offset of the regex in the query).
 *
 * That the accepted texts run on PostgreSQL with PCRE's meaning belongs to the search e2e
 * suite (tests/e2e/test_search.py, against an independent oracle). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/buf.h"
#include "sluice/err.h"
#include "sluice/pcre2pg.h"

struct ok_case {
    const char *in;
    const char *out; /* NULL: the same as in */
};

static const struct ok_case ok_cases[] = {
    {"", NULL},
    /* literals, any valid UTF-8 */
    {"abc", NULL},
    {"日本", NULL},
    {"caf\xc3\xa9", NULL},
    {"\xf0\x9f\x98\x80+", NULL}, /* U+1F600, 4 bytes */
    {"[\xf0\x9f\x98\x80-\xf4\x8f\xbf\xbf]", NULL},
    {"a.b", NULL},
    {"}", NULL},
    {"]", NULL},
    /* escapes kept as written: punctuation, classes, control characters, \xHH */
    {"\\.\\-\\/\\\\\\{\\}\\(\\)\\[\\]\\*\\+\\?\\|\\^\\$", NULL},
    {"\\d\\D\\s\\S\\w\\W", NULL},
    {"\\t\\n\\r\\f", NULL},
    {"\\x41\\x7e", NULL},
    {"\\x4a", NULL},
    /* assertions ARE spells differently */
    {"\\bword\\b", "\\yword\\y"},
    {"\\Bx\\B", "\\Yx\\Y"},
    {"\\Aa", NULL},
    {"a\\z", "a\\Z"},
    {"a\\Z", NULL},
    {"^a$", NULL},
    /* alternation, groups, lookaround (one level) */
    {"a|b|", NULL},
    {"()", NULL},
    {"(a)(b)", NULL},
    {"(?:x)+?", NULL},
    {"(?=a)b", NULL},
    {"(?!x)y", NULL},
    {"(?<=a+)b", NULL},
    {"(?<!a)b", NULL},
    {"(?=a)(?!b)", NULL}, /* siblings, not nested */
    {"((((x))))", NULL},
    /* quantifiers, greedy and lazy */
    {"a*b+c?", NULL},
    {"a*?b+?c??", NULL},
    {"a{2}b{1,}c{0,255}?", NULL},
    {"a{0}", NULL},
    {"a{0,0}", NULL},
    {"(a{2}|b)*", NULL},
    {"(ab){255}", NULL},
    {"[ab]{3}", NULL},
    {"\\d{4}-\\d{2}", NULL},
    {"x\\x41{2}", NULL},
    {"é+", NULL},
    {"(a)+", NULL},
    /* bracket expressions */
    {"[abc]", NULL},
    {"[^abc]", NULL},
    {"[]a]", NULL},
    {"[^]a-]", NULL},
    {"[-a]", NULL},
    {"[a-]", NULL},
    {"[a\\]]", NULL},
    {"[\\d\\s\\w]", NULL},
    {"[\\t\\n\\r\\f]", NULL},
    {"[\\x41-\\x5a]", NULL},
    {"[a-z0-9_]", NULL},
    {"[a-a]", NULL},
    {"[é-ü]", NULL},
    {"[\\--\\/]", NULL},
    {"[[:alpha:]_]", NULL},
    {"[[:alnum:][:blank:][:cntrl:][:digit:][:graph:][:lower:]]", NULL},
    {"[[:print:][:punct:][:space:][:upper:][:xdigit:]]", NULL},
    {"[a-c-]", NULL},
    {"[.]", NULL},
    {"[(|)*+?{]", NULL},
};

static void test_ok(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(ok_cases) / sizeof(ok_cases[0]); i++) {
        const struct ok_case *c = &ok_cases[i];
        const char *want = c->out != NULL ? c->out : c->in;
        struct sl_pcre2pg_err e = {99, 99, NULL};
        struct sl_buf b;
        int rc;

        sl_buf_init(&b, 1 << 16);
        rc = sl_pcre2pg_translate(c->in, strlen(c->in), &b, &e);
        if (rc != 0)
            fail_msg("%s: rc %d (%s at %zu)", c->in, rc, e.reason ? e.reason : "-", e.pos);
        if (b.len != strlen(want) || (b.len > 0 && memcmp(b.p, want, b.len) != 0))
            fail_msg("%s\n  got  %.*s\n  want %s", c->in, (int)b.len, b.p ? b.p : "", want);
        assert_null(e.reason);
        sl_buf_free(&b);
    }
}

struct bad_case {
    const char *in;
    size_t len; /* 0: strlen(in) */
    size_t pos, elen;
    const char *reason;
};

#define ESC "unsupported regex escape"
#define RANGE "invalid character range in regex"
#define CLASS "unsupported character class in regex"
#define DQ "double quantifier in regex"
#define NOOP "quantifier without operand in regex"
#define COUNT "invalid repetition count in regex"
#define NESTED "nested counted repetition in regex"
#define HEX "\\x needs exactly two hex digits in a regex"

static const struct bad_case bad_cases[] = {
    /* bytes */
    {"a\0b", 3, 1, 1, "NUL in regex"},
    {"\xff", 0, 0, 1, "invalid UTF-8"},
    {"ab\xc3", 0, 2, 1, "invalid UTF-8"},
    {"\xed\xa0\x80", 0, 0, 1, "invalid UTF-8"},     /* a surrogate */
    {"\xc0\xaf", 0, 0, 1, "invalid UTF-8"},         /* overlong */
    {"\xe0\x80\x80", 0, 0, 1, "invalid UTF-8"},     /* overlong */
    {"\xc3(", 0, 0, 1, "invalid UTF-8"},            /* not a continuation byte */
    {"\xf4\x90\x80\x80", 0, 0, 1, "invalid UTF-8"}, /* beyond U+10FFFF */
    {"\xf0\x9f\x98", 0, 0, 1, "invalid UTF-8"},     /* truncated */
    {"[\xff]", 0, 1, 1, "invalid UTF-8"},
    /* escapes */
    {"a\\", 0, 1, 1, "regex ends with a backslash"},
    {"\\é", 0, 0, 2, ESC},
    {"\\p{L}", 0, 0, 2, ESC},
    {"a\\h", 0, 1, 2, ESC},
    {"\\v", 0, 0, 2, ESC},
    {"\\Qa.b\\E", 0, 0, 2, ESC},
    {"\\K", 0, 0, 2, ESC},
    {"\\G", 0, 0, 2, ESC},
    {"(a)\\1", 0, 3, 2, "back references are not supported in a regex"},
    {"\\0", 0, 0, 2, "back references are not supported in a regex"},
    {"\\x", 0, 0, 2, HEX},
    {"\\x4", 0, 0, 2, HEX},
    {"\\x4g", 0, 0, 2, HEX},
    {"a\\x41B", 0, 1, 2, HEX},
    {"\\x00", 0, 0, 4, "NUL in regex"},
    /* groups */
    {"(?i)a", 0, 0, 2, "unsupported regex group"},
    {"(?<name>a)", 0, 0, 2, "unsupported regex group"},
    {"(?>a)", 0, 0, 2, "unsupported regex group"},
    {"(?", 0, 0, 2, "unsupported regex group"},
    {"(?<", 0, 0, 2, "unsupported regex group"},
    {"(?=(?<=a)b)", 0, 3, 4, "nested lookaround in a regex"},
    {"(?!(a(?=b)))", 0, 5, 3, "nested lookaround in a regex"},
    {"(a", 0, 2, 0, "unbalanced parenthesis in regex"},
    {"((a)", 0, 4, 0, "unbalanced parenthesis in regex"},
    {"a)", 0, 1, 1, "unbalanced parenthesis in regex"},
    {"(((((((((((((((((((((((((((((((((a)))))))))))))))))))))))))))))))))", 0, 32, 1,
     "regex nesting too deep"},
    /* quantifiers */
    {"*a", 0, 0, 1, NOOP},
    {"a|+", 0, 2, 1, NOOP},
    {"(+)", 0, 1, 1, NOOP},
    {"^*", 0, 1, 1, NOOP},
    {"a$?", 0, 2, 1, NOOP},
    {"\\b+", 0, 2, 1, NOOP},
    {"(?=a)*", 0, 5, 1, NOOP},
    {"{2}", 0, 0, 3, NOOP},
    {"a**", 0, 2, 1, DQ},
    {"a*+", 0, 2, 1, DQ},
    {"a*?*", 0, 3, 1, DQ},
    {"a{2}{3}", 0, 4, 1, DQ},
    {"a+{2}", 0, 2, 1, DQ},
    {"a{", 0, 1, 1, "a literal { must be escaped (\\{) in a regex"},
    {"a{,3}", 0, 1, 1, "a literal { must be escaped (\\{) in a regex"},
    {"a{x}", 0, 1, 1, "a literal { must be escaped (\\{) in a regex"},
    {"a{3", 0, 1, 2, COUNT},
    {"a{3,", 0, 1, 3, COUNT},
    {"a{3x}", 0, 1, 3, COUNT},
    {"a{3,1}", 0, 1, 5, COUNT},
    {"a{256}", 0, 1, 5, COUNT},
    {"a{1,256}", 0, 1, 7, COUNT},
    {"a{12345}", 0, 1, 6, COUNT},
    {"(a{100}){100}", 0, 8, 5, NESTED},
    {"((a{2})*){2}", 0, 9, 3, NESTED},
    {"((a{2})|b){2}", 0, 10, 3, NESTED},
    /* bracket expressions */
    {"[a", 0, 0, 0, "unterminated bracket expression in regex"},
    {"[]", 0, 0, 0, "unterminated bracket expression in regex"},
    {"[^", 0, 0, 0, "unterminated bracket expression in regex"},
    {"x[a-", 0, 1, 0, "unterminated bracket expression in regex"},
    {"[\\", 0, 1, 1, "regex ends with a backslash"},
    {"[\\é]", 0, 1, 2, ESC},
    {"[\\b]", 0, 1, 2, ESC},
    {"[\\D]", 0, 1, 2, ESC},
    {"[\\p]", 0, 1, 2, ESC},
    {"[\\x4]", 0, 1, 2, HEX},
    {"[\\x00]", 0, 1, 4, "NUL in regex"},
    {"[z-a]", 0, 3, 1, RANGE},
    {"[\\x5a-\\x41]", 0, 6, 4, RANGE},
    {"[ü-é]", 0, 4, 2, RANGE},
    {"[a-c-e]", 0, 4, 1, RANGE},
    {"[\\d-z]", 0, 3, 1, RANGE},
    {"[a-\\d]", 0, 3, 2, RANGE},
    {"[a-[:alpha:]]", 0, 3, 9, RANGE},
    {"[[:alpha:]-z]", 0, 10, 1, RANGE},
    {"[[.a.]]", 0, 1, 2, "collating elements are not supported in a regex"},
    {"[[=a=]]", 0, 1, 2, "collating elements are not supported in a regex"},
    {"[[:word:]]", 0, 1, 8, CLASS},
    {"[[:^alpha:]]", 0, 1, 2, CLASS},
    {"[[:alpha]]", 0, 1, 2, CLASS},
    {"[[:alpha:", 0, 1, 2, CLASS},
};

static void test_refused(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        const struct bad_case *c = &bad_cases[i];
        size_t n = c->len ? c->len : strlen(c->in);
        struct sl_pcre2pg_err e = {99, 99, NULL};
        struct sl_buf b;
        int rc;

        sl_buf_init(&b, 1 << 16);
        rc = sl_pcre2pg_translate(c->in, n, &b, &e);
        if (rc != SL_EPARSE)
            fail_msg("%s: rc %d, want SL_EPARSE", c->in, rc);
        assert_non_null(e.reason);
        if (e.pos != c->pos || e.len != c->elen || strcmp(e.reason, c->reason) != 0)
            fail_msg("%s\n  got  %zu+%zu %s\n  want %zu+%zu %s", c->in, e.pos, e.len, e.reason,
                     c->pos, c->elen, c->reason);
        assert_true(e.pos + e.len <= n);
        sl_buf_free(&b);
    }
}

/* The weight of counted repetitions: (upper bound x bytes of the atom), summed. */
static void test_weight(void **state)
{
    struct sl_pcre2pg_err e = {0, 0, NULL};
    struct sl_buf b;
    char re[1024];
    size_t n = 0;

    (void)state;
    /* 78 x a{255} = 19 890: accepted; the 79th passes SL_PCRE2PG_MAX_WEIGHT */
    for (int i = 0; i < 78; i++)
        n += (size_t)snprintf(re + n, sizeof(re) - n, "a{255}");
    sl_buf_init(&b, 1 << 16);
    assert_int_equal(sl_pcre2pg_translate(re, n, &b, &e), 0);
    assert_int_equal(b.len, n);
    sl_buf_reset(&b);
    n += (size_t)snprintf(re + n, sizeof(re) - n, "a{255}");
    assert_int_equal(sl_pcre2pg_translate(re, n, &b, &e), SL_EPARSE);
    assert_string_equal(e.reason, "regex too complex");
    assert_int_equal(e.pos, 78 * 6 + 1);
    assert_int_equal(e.len, 5);
    /* a group weighs its output bytes: (abcdefghij) is 12, x 255 x 7 = 21 420 */
    sl_buf_reset(&b);
    n = 0;
    for (int i = 0; i < 7; i++)
        n += (size_t)snprintf(re + n, sizeof(re) - n, "(abcdefghij){255}");
    assert_int_equal(sl_pcre2pg_translate(re, n, &b, &e), SL_EPARSE);
    assert_string_equal(e.reason, "regex too complex");
    assert_int_equal(e.pos, 6 * 17 + 12);
    /* {m,} weighs m */
    sl_buf_reset(&b);
    n = 0;
    for (int i = 0; i < 79; i++)
        n += (size_t)snprintf(re + n, sizeof(re) - n, "a{1,}");
    assert_int_equal(sl_pcre2pg_translate(re, n, &b, &e), 0);
    sl_buf_free(&b);
}

/* 32 nested groups are accepted (SL_PCRE2PG_MAX_GROUPS), 33 refused (in the table). */
static void test_depth(void **state)
{
    char re[2 * SL_PCRE2PG_MAX_GROUPS + 2];
    struct sl_buf b;
    size_t n = 0;

    (void)state;
    for (int i = 0; i < SL_PCRE2PG_MAX_GROUPS; i++)
        re[n++] = '(';
    re[n++] = 'a';
    for (int i = 0; i < SL_PCRE2PG_MAX_GROUPS; i++)
        re[n++] = ')';
    sl_buf_init(&b, 1 << 16);
    assert_int_equal(sl_pcre2pg_translate(re, n, &b, NULL), 0);
    assert_int_equal(b.len, n);
    sl_buf_free(&b);
}

/* The output buffer's cap is reported as SL_ETOOBIG; err is left alone; err may be NULL. */
static void test_cap(void **state)
{
    struct sl_pcre2pg_err e = {7, 7, NULL};
    struct sl_buf b;

    (void)state;
    sl_buf_init(&b, 4);
    assert_int_equal(sl_pcre2pg_translate("abcde", 5, &b, &e), SL_ETOOBIG);
    assert_null(e.reason);
    assert_int_equal(e.pos, 7);
    sl_buf_reset(&b);
    assert_int_equal(sl_pcre2pg_translate("ab\\b", 4, &b, &e), 0); /* "ab\\y": exactly 4 */
    sl_buf_free(&b);
    sl_buf_init(&b, 16);
    assert_int_equal(sl_pcre2pg_translate("a)", 2, &b, NULL), SL_EPARSE);
    /* appends: what out held before stays */
    sl_buf_reset(&b);
    assert_int_equal(sl_buf_add(&b, "x~", 2), 0);
    assert_int_equal(sl_pcre2pg_translate("\\b", 2, &b, NULL), 0);
    assert_int_equal(b.len, 4);
    assert_memory_equal(b.p, "x~\\y", 4);
    sl_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ok),    cmocka_unit_test(test_refused), cmocka_unit_test(test_weight),
        cmocka_unit_test(test_depth), cmocka_unit_test(test_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
