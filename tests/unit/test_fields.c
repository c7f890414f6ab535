/* Unit tests for drain/fields.c (include/sluice/fields.h): which lines hold a JSON object
 * (the edge cases PostgreSQL's jsonb refuses are refused here too), prefixes, depth, size
 * and number limits, dotted paths with the last duplicate winning, canonical numbers,
 * the extra filter words, logfmt lookup and rule conditions. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/fields.h"
#include "sluice/tokens.h"

static void test_valid_table(void **state)
{
    static const struct {
        const char *s;
        int ok;
    } cases[] = {
        {"{}", 1},
        {"{\"a\":1}", 1},
        {" {\"a\" : [1, 2.5, -0, 1e3, true, false, null, \"x\"]} \r\n", 1},
        {"{\"a\":{\"b\":{\"c\":\"d\"}}}", 1},
        {"{\"a\":\"caf\xc3\xa9\"}", 1},
        {"{\"a\":\"\\u00e9\\n\\t\\\"\\\\\\/\\b\\f\\r\"}", 1},
        {"{\"a\":\"\\ud83d\\ude00\"}", 1}, /* a surrogate pair */
        {"{\"a\":1,\"a\":2}", 1},          /* duplicates: valid, last wins */
        {"{\"a\":\"\x7f\"}", 1},
        {"", 0},
        {"[1,2]", 0},                   /* objects only */
        {"{\"a\":1", 0},                /* cut */
        {"{\"a\":\"abc", 0},            /* cut inside a string */
        {"{\"a\":1}x", 0},              /* text after */
        {"{\"a\":1}\f", 0},             /* \f is not JSON whitespace */
        {"{a:1}", 0},
        {"{\"a\":1,}", 0},
        {"{\"a\":01}", 0},
        {"{\"a\":1.}", 0},
        {"{\"a\":.5}", 0},
        {"{\"a\":+1}", 0},
        {"{\"a\":1e}", 0},
        {"{\"a\":NaN}", 0},
        {"{\"a\":\"\\u0000\"}", 0},     /* jsonb: unsupported Unicode escape sequence */
        {"{\"a\":\"\\ud800\"}", 0},     /* lone high surrogate */
        {"{\"a\":\"\\udc00\"}", 0},     /* lone low surrogate */
        {"{\"a\":\"\\ud800\\u0041\"}", 0},
        {"{\"a\":\"\\x41\"}", 0},
        {"{\"a\":\"\\u12\"}", 0},
        {"{\"a\":\"tab\there\"}", 0},   /* raw control byte */
        {"{\"a\":\"\xff\"}", 0},        /* invalid UTF-8 */
        {"{\"a\":\"\xc3\"}", 0},
        {"{\"a\":\"\xed\xa0\x80\"}", 0}, /* an encoded surrogate */
        {"{\"a\":1e25}", 0},  /* jsonb prints every digit: the exponent is bounded */
        {"{\"a\":1e-25}", 0}, /* (and 1e1000000 overflows numeric) */
        {"{\"a\":1e24}", 1},
        {"{\"a\":-1.5E-24}", 1},
        {"{\"a\":tru}", 0},
        {"{\"a\" 1}", 0},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (sl_fields_json_valid(cases[i].s, strlen(cases[i].s)) != (bool)cases[i].ok)
            fail_msg("case %zu: %s", i, cases[i].s);
    }
}

static void test_limits(void **state)
{
    char *s = malloc(SL_JSON_MAX_BYTES + 64);
    size_t n = 0;

    (void)state;
    assert_non_null(s);
    /* depth: SL_JSON_MAX_DEPTH containers are fine, one more is not */
    for (int d = 0; d < 2; d++) {
        int depth = SL_JSON_MAX_DEPTH + d;
        n = 0;
        s[n++] = '{';
        for (int k = 1; k < depth; k++)
            n += (size_t)sprintf(s + n, "\"a\":{");
        for (int k = 0; k < depth; k++)
            s[n++] = '}';
        assert_int_equal(sl_fields_json_valid(s, n), d == 0);
    }
    /* a number of SL_JSON_MAX_NUMBER bytes, and one more */
    for (int d = 0; d < 2; d++) {
        n = (size_t)sprintf(s, "{\"a\":");
        for (int k = 0; k < SL_JSON_MAX_NUMBER + d; k++)
            s[n++] = '7';
        s[n++] = '}';
        assert_int_equal(sl_fields_json_valid(s, n), d == 0);
    }
    /* size */
    n = (size_t)sprintf(s, "{\"a\":\"");
    while (n < SL_JSON_MAX_BYTES + 8)
        s[n++] = 'x';
    s[n++] = '"';
    s[n++] = '}';
    assert_false(sl_fields_json_valid(s, n));
    free(s);
}

static void test_find(void **state)
{
    static const struct {
        const char *line;
        long off, chars; /* -1: none */
    } cases[] = {
        {"{\"level\":\"error\"}", 0, 0},
        {"2026-12-07T03:00:00Z INFO {\"k\":1}", 26, 26},
        {"caf\xc3\xa9 {\"k\":1}", 6, 5}, /* substr counts characters */
        {"[{worker}] {\"k\":1}", 11, 11}, /* a '{' in the prefix is skipped */
        {"data={\"a\":1}  ", 5, 5},
        {"at=info status=200", -1, -1},
        {"{\"k\":1} trailing", -1, -1},
        {"{{{{{\"k\":1}", -1, -1}, /* past SL_JSON_FIND_TRIES */
        {"{\"msg\":\"cut by the platform's line limit", -1, -1},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sl_json_at at;
        bool found = sl_fields_json_find(cases[i].line, strlen(cases[i].line), &at);
        if (found != (cases[i].off >= 0))
            fail_msg("case %zu: %s", i, cases[i].line);
        if (found) {
            assert_int_equal(at.off, (size_t)cases[i].off);
            assert_int_equal(at.char_off, (size_t)cases[i].chars);
        }
    }
}

static void get_is(const char *obj, const char *path, int type, const char *raw)
{
    struct sl_jleaf l;
    bool ok = sl_fields_json_get(obj, strlen(obj), path, strlen(path), &l);

    if (raw == NULL) {
        if (ok)
            fail_msg("%s in %s: found %.*s", path, obj, (int)l.raw.len, l.raw.p);
        return;
    }
    if (!ok)
        fail_msg("%s in %s: not found", path, obj);
    assert_int_equal(l.type, type);
    if (l.raw.len != strlen(raw) || memcmp(l.raw.p, raw, l.raw.len) != 0)
        fail_msg("%s in %s: %.*s, want %s", path, obj, (int)l.raw.len, l.raw.p, raw);
}

static void test_get(void **state)
{
    const char *o = "{\"level\":\"error\",\"user\":{\"id\":42,\"name\":\"a\\\"b\"},"
                    "\"tags\":[\"x\",{\"k\":true}],\"n\":null,\"user.id\":7}";
    (void)state;
    get_is(o, "level", SL_J_STRING, "error");
    get_is(o, "user.id", SL_J_NUMBER, "42"); /* nested first */
    get_is(o, "user.name", SL_J_STRING, "a\\\"b");
    get_is(o, "tags.0", SL_J_STRING, "x");
    get_is(o, "tags.1.k", SL_J_TRUE, "true");
    get_is(o, "tags.2", 0, NULL);
    get_is(o, "n", SL_J_NULL, "null");
    get_is(o, "user", SL_J_OBJECT, "{\"id\":42,\"name\":\"a\\\"b\"}");
    get_is(o, "missing", 0, NULL);
    get_is(o, "level.x", 0, NULL);
    /* a flat dotted key when nothing nests */
    get_is("{\"user.id\":7}", "user.id", SL_J_NUMBER, "7");
    /* duplicates: the last wins, also for a nested object replaced by a later one */
    get_is("{\"a\":1,\"a\":2}", "a", SL_J_NUMBER, "2");
    get_is("{\"a\":{\"x\":1},\"a\":{\"y\":2}}", "a.x", 0, NULL);
    get_is("{\"a\":{\"x\":1},\"a\":{\"y\":2}}", "a.y", SL_J_NUMBER, "2");
    /* escaped keys are compared decoded */
    get_is("{\"caf\\u00e9\":1}", "caf\xc3\xa9", SL_J_NUMBER, "1");
    get_is(" { \"a\" : [ 1 , 2 ] } ", "a.1", SL_J_NUMBER, "2");
}

struct leaves {
    char out[1024];
    size_t n;
};

static int leaf_cb(void *arg, const char *path, size_t plen, const struct sl_jleaf *l)
{
    struct leaves *lv = arg;

    lv->n += (size_t)snprintf(lv->out + lv->n, sizeof(lv->out) - lv->n, "%.*s=%d:%.*s;",
                              (int)plen, path, (int)l->type, (int)l->raw.len, l->raw.p);
    return 0;
}

static void test_walk(void **state)
{
    struct leaves lv = {.n = 0};
    const char *o = "{\"a\":{\"b\":[1,\"x\"]},\"c\":false,\"a\":3,\"e\":{}}";

    (void)state;
    assert_int_equal(sl_fields_json_walk(o, strlen(o), leaf_cb, &lv), 0);
    assert_string_equal(lv.out, "a.b.0=1:1;a.b.1=0:x;c=3:false;a=1:3;");
}

static void test_canon(void **state)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"42", "42"},     {"42.0", "42"},   {"4.2e1", "42"},     {"42.50", "42.5"},
        {"-0", "0"},      {"0.0", "0"},     {"1.5e-06", "0.0000015"}, {"1E+3", "1000"},
        {"-12.340", "-12.34"}, {"0.001", "0.001"}, {"1e24", "1000000000000000000000000"}, {"1e25", ""}, {"01", ""}, {"abc", ""},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[64];
        size_t n = sl_fields_num_canon(cases[i].in, strlen(cases[i].in), out, sizeof(out));
        if (n != strlen(cases[i].out) || (n > 0 && strcmp(out, cases[i].out) != 0))
            fail_msg("case %zu: %s -> %s (want %s)", i, cases[i].in, n ? out : "", cases[i].out);
    }
}

static void test_extra(void **state)
{
    struct sl_buf b;
    const char *plain = "{\"a\":\"x\",\"n\":42}";
    const char *odd = "{\"caf\\u00e9\":\"na\\u00efve\\nline\",\"n\":4.2e1,\"m\":7}";

    (void)state;
    sl_buf_init(&b, 4096);
    assert_int_equal(sl_fields_json_extra(plain, strlen(plain), &b), 0);
    assert_int_equal(b.len, 0);
    assert_int_equal(sl_fields_json_extra(odd, strlen(odd), &b), 0);
    assert_int_equal(b.len, strlen(" caf\xc3\xa9 na\xc3\xafve\nline 42"));
    assert_memory_equal(b.p, " caf\xc3\xa9 na\xc3\xafve\nline 42", b.len);
    sl_buf_free(&b);
}

static void test_logfmt(void **state)
{
    const char *l = "at=error code=H12 desc=\"Request timeout\" status=503 xstatus=1";
    struct sl_str v;

    (void)state;
    assert_true(sl_fields_logfmt_get(l, strlen(l), "code", 4, &v));
    assert_int_equal(v.len, 3);
    assert_memory_equal(v.p, "H12", 3);
    assert_true(sl_fields_logfmt_get(l, strlen(l), "desc", 4, &v));
    assert_int_equal(v.len, 15);
    assert_true(sl_fields_logfmt_get(l, strlen(l), "status", 6, &v));
    assert_memory_equal(v.p, "503", 3);
    assert_false(sl_fields_logfmt_get(l, strlen(l), "tatus", 5, &v));
    assert_false(sl_fields_logfmt_get(l, strlen(l), "missing", 7, &v));
}

static bool cond(const char *key, const char *expr, const char *line)
{
    struct sl_field_cond c;
    struct sl_fields_line fl;
    const char *why = NULL;

    assert_int_equal(sl_fields_cond_parse(key, expr, &c, &why), 0);
    sl_fields_line_init(&fl, line, strlen(line));
    return sl_fields_cond_eval(&c, &fl);
}

static void test_cond(void **state)
{
    const char *j = "2026-12-07 INFO {\"level\":\"error\",\"latency_ms\":1834,\"user\":{\"id\":42},"
                    "\"env\":\"prod\",\"ok\":true,\"route\":\"/charge\",\"msg\":\"a\\u00e9\"}";
    struct sl_field_cond c;
    const char *why;

    (void)state;
    assert_true(cond("level", "error", j));
    assert_false(cond("level", "info", j));
    assert_true(cond("latency_ms", ">1000", j));
    assert_false(cond("latency_ms", "<1000", j));
    assert_true(cond("user.id", "42", j));
    assert_true(cond("user.id", "42.0", j)); /* numbers compare as numbers */
    assert_true(cond("user.id", "=42", j));
    assert_true(cond("env", "!=staging", j));
    assert_false(cond("env", "!=prod", j));
    assert_false(cond("missing", "!=x", j)); /* != needs the field */
    assert_true(cond("ok", "true", j));
    assert_true(cond("route", "/ch*", j));
    assert_true(cond("msg", "a\xc3\xa9", j));
    assert_false(cond("level", ">1", j));
    /* logfmt lines too */
    assert_true(cond("status", ">=500", "at=error status=503 code=H12"));
    assert_true(cond("code", "H1?", "at=error status=503 code=H12"));
    assert_false(cond("status", ">=500", "at=info status=200"));
    /* malformed JSON is text: no field, and no failure */
    assert_false(cond("level", "error", "{\"level\":\"error\""));
    assert_true(cond("level", "error", "{\"level\":\"info\" level=error"));
    assert_int_equal(sl_fields_cond_parse("a", ">x", &c, &why), SL_EPARSE);
    assert_int_equal(sl_fields_cond_parse("a", "=x", &c, &why), SL_EPARSE);
    assert_int_equal(sl_fields_cond_parse("a b", "x", &c, &why), SL_EPARSE);
    assert_int_equal(sl_fields_cond_parse("", "x", &c, &why), SL_EPARSE);
}

struct hashes {
    uint64_t h[64];
    size_t n;
};

static void collect(void *arg, uint64_t h)
{
    struct hashes *hs = arg;
    for (size_t i = 0; i < hs->n; i++)
        if (hs->h[i] == h)
            return;
    assert_true(hs->n < 64);
    hs->h[hs->n++] = h;
}

/* The line's class tokens are exactly want ("key=class" pairs, class a digit 0-9 for
 * [100k, 100k+100), N negative, B 1000 and above, A any). */
static void check_num_classes(const char *line, bool json, const char *const *want)
{
    struct hashes hs = {{0}, 0};
    const char *brace = strchr(line, '{');
    size_t n = 0;

    assert_int_equal(sl_fields_num_classes(line, strlen(line),
                                           json ? (size_t)(brace - line) : SIZE_MAX, collect,
                                           &hs),
                     0);
    for (; want[n] != NULL; n++) {
        const char *eq = strrchr(want[n], '=');
        char c = eq[1];
        int cls = c == 'N' ? SL_NUMCLASS_NEG : c == 'B' ? SL_NUMCLASS_BIG
                : c == 'A' ? SL_NUMCLASS_ANY : SL_NUMCLASS_H0 + (c - '0');
        uint64_t h = sl_numclass_hash(want[n], (size_t)(eq - want[n]), cls);
        bool found = false;
        for (size_t i = 0; i < hs.n; i++)
            found |= hs.h[i] == h;
        if (!found)
            fail_msg("%s: no %s", line, want[n]);
    }
    if (hs.n != n)
        fail_msg("%s: %zu class tokens, want %zu", line, hs.n, n);
}

static void test_num_classes(void **state)
{
    (void)state;
    check_num_classes("at=info status=503 bytes=1234 connect=1ms service=-2 fwd=\"1.2.3.4\"",
                      false, (const char *const[]){"status=5", "bytes=B", "service=N", NULL});
    /* every occurrence (the query reads the first); quoted values; a key after '=' */
    check_num_classes("status=abc status=404 k=\"42\" x=1=2 =5 y=",
                      false, (const char *const[]){"status=4", "k=0", "x=1=0", NULL});
    /* a tab is part of a run, as the SQL's split on spaces has it */
    check_num_classes("a\tstatus=503", false, (const char *const[]){"a\tstatus=5", NULL});
    /* JSON leaves by dotted path, arrays by index; an exponent or an escape: ANY */
    check_num_classes("msg {\"status\":503,\"lat\":1e3,\"s\":\"-5\",\"e\":\"\\u0035\","
                      "\"n\":{\"m\":[1,2000]},\"b\":true,\"t\":\"abc\"}",
                      true, (const char *const[]){"status=5", "lat=A", "s=N", "e=A", "n.m.0=0",
                                                  "n.m.1=B", NULL});
    /* the same object not marked as the line's JSON: no leaves */
    check_num_classes("msg {\"status\":503}", false, (const char *const[]){NULL});
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_table), cmocka_unit_test(test_limits),
        cmocka_unit_test(test_find),        cmocka_unit_test(test_get),
        cmocka_unit_test(test_walk),        cmocka_unit_test(test_canon),
        cmocka_unit_test(test_extra),       cmocka_unit_test(test_logfmt),
        cmocka_unit_test(test_cond),        cmocka_unit_test(test_num_classes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
