/* Unit tests for drain/http.c: request heads, header helpers, Content-Length, the
 * chunked decoder, absolute-form paths, Content-Encoding lists, reason phrases and
 * route tables (include/sluice/http.h). Table-driven; every valid head is also fed
 * at every split point, every chunked body in one piece, byte by byte and at every
 * two-piece split. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sluice/buf.h"
#include "sluice/err.h"
#include "sluice/http.h"
#include "sluice/str.h"

#define MAX_HEAD 8192

static void assert_str(struct sl_str s, const char *want)
{
    if (want == NULL) {
        assert_null(s.p);
        assert_int_equal(s.len, 0);
        return;
    }
    assert_non_null(s.p);
    if (!sl_str_eq(s, want))
        fail_msg("slice \"%.*s\" != \"%s\"", (int)s.len, s.p, want);
}

/* ---- valid heads ---- */

struct valid_case {
    const char *name;
    const char *in;
    size_t head_len; /* 0: all of in */
    const char *method, *target, *path, *query;
    int minor;
    size_t nheaders;
    const char *hname, *hvalue; /* one header to look up, or NULL */
};

#define LOGPLEX_HEAD                                                                               \
    "POST /logs?app=x HTTP/1.1\r\n"                                                                \
    "Host: drain.example.com\r\n"                                                                  \
    "Content-Type: application/logplex-1\r\n"                                                      \
    "Logplex-Msg-Count: 2\r\n"                                                                     \
    "Logplex-Frame-Id: 09C557EAFCFB6CF2740EE62F62971098\r\n"                                       \
    "Logplex-Drain-Token: d.fc6b856b-3332-4546-93de-7d0ee272c3bd\r\n"                              \
    "User-Agent: Logplex/v72\r\n"                                                                  \
    "Authorization: Basic dXNlcjpzZWNyZXQ=\r\n"                                                    \
    "Content-Length: 180\r\n"                                                                      \
    "\r\n"

static const struct valid_case valid_cases[] = {
    {"logplex", LOGPLEX_HEAD, 0, "POST", "/logs?app=x", "/logs", "app=x", 1, 8, "logplex-msg-count",
     "2"},
    {"logplex with body after", LOGPLEX_HEAD "83 <40>1 2012-11-30T06:45:29+00:00 host app web.3 - ",
     sizeof(LOGPLEX_HEAD) - 1, "POST", "/logs?app=x", "/logs", "app=x", 1, 8, "AUTHORIZATION",
     "Basic dXNlcjpzZWNyZXQ="},
    {"http/1.0, no headers", "GET / HTTP/1.0\r\n\r\n", 0, "GET", "/", "/", NULL, 0, 0, NULL, NULL},
    {"bare LF", "POST /logs HTTP/1.1\nHost: a\nContent-Length: 0\n\n", 0, "POST", "/logs", "/logs",
     NULL, 1, 2, "content-length", "0"},
    {"mixed CRLF and LF", "GET /x HTTP/1.1\r\nA: 1\n\r\n", 0, "GET", "/x", "/x", NULL, 1, 1, "a",
     "1"},
    {"empty query", "GET /logs? HTTP/1.1\r\n\r\n", 0, "GET", "/logs?", "/logs", "", 1, 0, NULL,
     NULL},
    {"query with ?", "GET /a?b=c?d HTTP/1.1\r\n\r\n", 0, "GET", "/a?b=c?d", "/a", "b=c?d", 1, 0,
     NULL, NULL},
    {"value trimmed", "GET / HTTP/1.1\r\nX-A: \t a b \t\r\n\r\n", 0, "GET", "/", "/", NULL, 1, 1,
     "x-a", "a b"},
    {"empty value", "GET / HTTP/1.1\r\nX-Empty:\r\nX-Sp:   \r\n\r\n", 0, "GET", "/", "/", NULL, 1,
     2, "x-sp", ""},
    {"obs-text in value", "GET / HTTP/1.1\r\nX: caf\xc3\xa9\r\n\r\n", 0, "GET", "/", "/", NULL, 1,
     1, "x", "caf\xc3\xa9"},
    {"token chars in name", "GET / HTTP/1.1\r\n!#$%&'*+-.^_`|~09azAZ: v\r\n\r\n", 0, "GET", "/",
     "/", NULL, 1, 1, "!#$%&'*+-.^_`|~09AZaz", "v"},
    {"leading empty lines", "\r\n\nGET / HTTP/1.1\r\n\r\n", 0, "GET", "/", "/", NULL, 1, 0, NULL,
     NULL},
    {"absolute form", "GET http://h/p?q HTTP/1.1\r\n\r\n", 0, "GET", "http://h/p?q", "http://h/p",
     "q", 1, 0, NULL, NULL},
    {"pipelined", "GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n", 19, "GET", "/1", "/1", NULL, 1,
     0, NULL, NULL},
    {"first of duplicates", "GET / HTTP/1.1\r\nX: 1\r\nx: 2\r\n\r\n", 0, "GET", "/", "/", NULL, 1,
     2, "X", "1"},
};

static void check_valid(const struct valid_case *tc, const struct sl_http_request *req)
{
    assert_str(req->method, tc->method);
    assert_str(req->target, tc->target);
    assert_str(req->path, tc->path);
    assert_str(req->query, tc->query);
    assert_int_equal(req->minor_version, tc->minor);
    assert_int_equal(req->nheaders, tc->nheaders);
    if (tc->hname != NULL) {
        const struct sl_str *v = sl_http_header_get(req, tc->hname);
        assert_non_null(v);
        assert_str(*v, tc->hvalue);
    }
}

static void test_valid_heads(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(valid_cases) / sizeof(valid_cases[0]); i++) {
        const struct valid_case *tc = &valid_cases[i];
        size_t len = strlen(tc->in);
        size_t head = tc->head_len ? tc->head_len : len;
        struct sl_http_request req;

        printf("# %s\n", tc->name);
        assert_int_equal(sl_http_parse_request(tc->in, len, MAX_HEAD, &req), (int)head);
        check_valid(tc, &req);
        /* The head exactly at max_head fits. */
        assert_int_equal(sl_http_parse_request(tc->in, len, head, &req), (int)head);
        check_valid(tc, &req);
    }
}

static void test_logplex_headers(void **state)
{
    struct sl_http_request req;
    const char *in = LOGPLEX_HEAD;
    uint64_t n = 0;

    (void)state;
    assert_int_equal(sl_http_parse_request(in, strlen(in), MAX_HEAD, &req), (int)strlen(in));
    assert_str(req.headers[0].name, "Host");
    assert_str(req.headers[0].value, "drain.example.com");
    assert_str(*sl_http_header_get(&req, "logplex-frame-id"), "09C557EAFCFB6CF2740EE62F62971098");
    assert_str(*sl_http_header_get(&req, "Logplex-Drain-Token"),
               "d.fc6b856b-3332-4546-93de-7d0ee272c3bd");
    assert_str(*sl_http_header_get(&req, "content-type"), "application/logplex-1");
    assert_int_equal(sl_http_parse_content_length(*sl_http_header_get(&req, "Content-Length"), &n),
                     0);
    assert_int_equal(n, 180);
    assert_null(sl_http_header_get(&req, "Transfer-Encoding"));
    assert_null(sl_http_header_get(&req, "Host2"));
    assert_null(sl_http_header_get(&req, "Hos"));
    /* Slices point into the input. */
    assert_ptr_equal(req.method.p, in);
}

/* Every proper prefix of a valid head is "need more". */
static void test_incomplete_every_split(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(valid_cases) / sizeof(valid_cases[0]); i++) {
        const struct valid_case *tc = &valid_cases[i];
        size_t head = tc->head_len ? tc->head_len : strlen(tc->in);
        struct sl_http_request req;

        for (size_t k = 0; k < head; k++) {
            int rc = sl_http_parse_request(tc->in, k, MAX_HEAD, &req);
            if (rc != SL_EAGAIN)
                fail_msg("%s: prefix %zu: %d", tc->name, k, rc);
        }
    }
}

/* ---- limits ---- */

static void test_too_big(void **state)
{
    const char *in = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    size_t len = strlen(in);
    struct sl_http_request req;

    (void)state;
    /* One byte over max_head, whether or not the rest has arrived. */
    assert_int_equal(sl_http_parse_request(in, len, len - 1, &req), SL_ETOOBIG);
    assert_int_equal(sl_http_parse_request(in, len - 1, len - 1, &req), SL_ETOOBIG);
    assert_int_equal(sl_http_parse_request(in, len - 2, len - 1, &req), SL_EAGAIN);
    assert_int_equal(sl_http_parse_request(in, 5, 5, &req), SL_ETOOBIG);
    assert_int_equal(sl_http_parse_request(in, 0, 0, &req), SL_ETOOBIG);
    assert_int_equal(sl_http_parse_request(in, 0, 10, &req), SL_EAGAIN);
}

static char *make_headers(size_t n)
{
    struct sl_buf b;
    sl_buf_init(&b, 1 << 20);
    assert_int_equal(sl_buf_addf(&b, "POST /logs HTTP/1.1\r\n"), 0);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(sl_buf_addf(&b, "X-H%zu: %zu\r\n", i, i), 0);
    assert_int_equal(sl_buf_addf(&b, "\r\n"), 0); /* NUL-terminated by addf */
    return b.p;
}

static void test_max_headers(void **state)
{
    struct sl_http_request req;
    char *in;

    (void)state;
    in = make_headers(SL_HTTP_MAX_HEADERS);
    assert_int_equal(sl_http_parse_request(in, strlen(in), 1 << 20, &req), (int)strlen(in));
    assert_int_equal(req.nheaders, SL_HTTP_MAX_HEADERS);
    assert_str(req.headers[SL_HTTP_MAX_HEADERS - 1].value, "63");
    free(in);

    in = make_headers(SL_HTTP_MAX_HEADERS + 1);
    assert_int_equal(sl_http_parse_request(in, strlen(in), 1 << 20, &req), SL_ETOOBIG);
    free(in);
}

/* ---- malformed heads ---- */

struct bad_case {
    const char *name;
    const char *in;
    size_t len; /* 0: strlen */
    int rc;
};

static const struct bad_case bad_cases[] = {
    {"empty method", " / HTTP/1.1\r\n\r\n", 0, SL_EPARSE},
    {"bad method char", "GE(T / HTTP/1.1\r\n\r\n", 0, SL_EPARSE},
    {"double space", "GET  / HTTP/1.1\r\n\r\n", 0, SL_EPARSE},
    {"tab separator", "GET\t/ HTTP/1.1\r\n\r\n", 0, SL_EPARSE},
    {"no target", "GET HTTP/1.1\r\n\r\n", 0, SL_EPARSE},
    {"no version", "GET /\r\n\r\n", 0, SL_EPARSE},
    {"control in target", "GET /a\x01 HTTP/1.1\r\n\r\n", 0, SL_EPARSE},
    {"DEL in target", "GET /a\x7f HTTP/1.1\r\n\r\n", 0, SL_EPARSE},
    {"non-ASCII in target", "GET /caf\xc3\xa9 HTTP/1.1\r\n\r\n", 0, SL_EPARSE},
    {"NUL in target", "GET /a\0b HTTP/1.1\r\n\r\n", 22, SL_EPARSE},
    {"HTTP/2.0", "GET / HTTP/2.0\r\n\r\n", 0, SL_EPARSE},
    {"HTTP/1.2", "GET / HTTP/1.2\r\n\r\n", 0, SL_EPARSE},
    {"HTTP/0.9", "GET / HTTP/0.9\r\n\r\n", 0, SL_EPARSE},
    {"lower-case http", "GET / http/1.1\r\n\r\n", 0, SL_EPARSE},
    {"HTTP/1.10", "GET / HTTP/1.10\r\n\r\n", 0, SL_EPARSE},
    {"space after version", "GET / HTTP/1.1 \r\n\r\n", 0, SL_EPARSE},
    {"CR without LF in request line", "GET / HTTP/1.1\rX: y\r\n\r\n", 0, SL_EPARSE},
    {"CR without LF before request", "\rGET / HTTP/1.1\r\n\r\n", 0, SL_EPARSE},
    {"header without colon", "GET / HTTP/1.1\r\nHost\r\n\r\n", 0, SL_EPARSE},
    {"empty header name", "GET / HTTP/1.1\r\n: v\r\n\r\n", 0, SL_EPARSE},
    {"space before colon", "GET / HTTP/1.1\r\nContent-Length : 5\r\n\r\n", 0, SL_EPARSE},
    {"tab before colon", "GET / HTTP/1.1\r\nTransfer-Encoding\t: chunked\r\n\r\n", 0, SL_EPARSE},
    {"space in name", "GET / HTTP/1.1\r\nX Y: v\r\n\r\n", 0, SL_EPARSE},
    {"bad name char", "GET / HTTP/1.1\r\nX(Y): v\r\n\r\n", 0, SL_EPARSE},
    {"slash in name", "GET / HTTP/1.1\r\nX/Y: v\r\n\r\n", 0, SL_EPARSE},
    {"non-ASCII in name", "GET / HTTP/1.1\r\nX\xc3\xa9: v\r\n\r\n", 0, SL_EPARSE},
    {"obs-fold space", "GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n", 0, SL_EPARSE},
    {"obs-fold tab", "GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n", 0, SL_EPARSE},
    {"whitespace before first header", "GET / HTTP/1.1\r\n Host: a\r\n\r\n", 0, SL_EPARSE},
    {"control in value", "GET / HTTP/1.1\r\nX: a\x01z\r\n\r\n", 0, SL_EPARSE},
    {"NUL in value", "GET / HTTP/1.1\r\nX: a\0z\r\n\r\n", 27, SL_EPARSE},
    {"DEL in value", "GET / HTTP/1.1\r\nX: a\x7fz\r\n\r\n", 0, SL_EPARSE},
    {"vertical tab in value", "GET / HTTP/1.1\r\nX: a\vz\r\n\r\n", 0, SL_EPARSE},
    {"bare CR in value", "GET / HTTP/1.1\r\nX: a\rz\r\n\r\n", 0, SL_EPARSE},
    {"CR without LF at end", "GET / HTTP/1.1\r\nX: a\r\n\rX", 0, SL_EPARSE},
    {"binary garbage", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 0, SL_EPARSE},
    /* Errors seen before the head is complete are reported at once. */
    {"early: bad method", "GE(", 0, SL_EPARSE},
    {"early: bad version", "GET / HTTP/2", 0, SL_EPARSE},
    {"early: bad name", "GET / HTTP/1.1\r\nX Y", 0, SL_EPARSE},
};

static void test_malformed(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        const struct bad_case *tc = &bad_cases[i];
        size_t len = tc->len ? tc->len : strlen(tc->in);
        struct sl_http_request req;
        int rc = sl_http_parse_request(tc->in, len, MAX_HEAD, &req);

        if (rc != tc->rc)
            fail_msg("%s: got %d, want %d", tc->name, rc, tc->rc);
    }
}

/* ---- header helpers ---- */

static void test_value_has_token(void **state)
{
    static const struct {
        const char *value;
        const char *token;
        bool want;
    } cases[] = {
        {"keep-alive, Upgrade", "upgrade", true},
        {"keep-alive, Upgrade", "keep-alive", true},
        {"keep-alive, Upgrade", "keep", false},
        {"close", "close", true},
        {"CLOSE", "close", true},
        {"closed", "close", false},
        {"gzip,chunked", "chunked", true},
        {"gzip , \tchunked\t", "chunked", true},
        {"chunked, gzip", "chunked", true},
        {"chunkedx", "chunked", false},
        {"x-chunked", "chunked", false},
        {",,chunked,,", "chunked", true},
        {"", "chunked", false},
        {",", "chunked", false},
        {"a, , b", "", false},
        {"chunked", "", false},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sl_str v = sl_str_make(cases[i].value, strlen(cases[i].value));
        if (sl_http_value_has_token(v, cases[i].token) != cases[i].want)
            fail_msg("\"%s\" has \"%s\": want %d", cases[i].value, cases[i].token, cases[i].want);
    }
    assert_false(sl_http_value_has_token(SL_STR_NULL, "close"));
}

static void test_content_length(void **state)
{
    static const struct {
        const char *in;
        int rc;
        uint64_t n;
    } cases[] = {
        {"0", 0, 0},
        {"180", 0, 180},
        {"007", 0, 7},
        {"999999999999999999", 0, 999999999999999999ULL}, /* 18 digits */
        {"000000000000000001", 0, 1},
        {"1000000000000000000", SL_EPARSE, 0}, /* 19 digits */
        {"0000000000000000001", SL_EPARSE, 0},
        {"18446744073709551616", SL_EPARSE, 0},
        {"", SL_EPARSE, 0},
        {"+5", SL_EPARSE, 0},
        {"-5", SL_EPARSE, 0},
        {" 5", SL_EPARSE, 0},
        {"5 ", SL_EPARSE, 0},
        {"5 5", SL_EPARSE, 0},
        {"5,5", SL_EPARSE, 0},
        {"0x10", SL_EPARSE, 0},
        {"1e3", SL_EPARSE, 0},
        {"\xd9\xa1", SL_EPARSE, 0}, /* ARABIC-INDIC DIGIT ONE */
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t n = 12345;
        int rc = sl_http_parse_content_length(sl_str_make(cases[i].in, strlen(cases[i].in)), &n);
        if (rc != cases[i].rc)
            fail_msg("\"%s\": got %d, want %d", cases[i].in, rc, cases[i].rc);
        if (rc == 0)
            assert_int_equal(n, cases[i].n);
        else
            assert_int_equal(n, 12345); /* untouched on error */
    }
    assert_int_equal(sl_http_parse_content_length(SL_STR_NULL, &(uint64_t){0}), SL_EPARSE);
}

/* ---- chunked ---- */

#define ALL 0x7fffffff

struct chunk_case {
    const char *name;
    const char *in;
    size_t len;       /* 0: strlen */
    int rc;           /* bytes consumed (ALL: len), or an error */
    bool done;        /* when rc >= 0 */
    const char *want; /* decoded output when rc >= 0 */
    size_t max;       /* out's max; 0: 1 MiB */
    size_t want_len;  /* 0: strlen(want) */
};

static const struct chunk_case chunk_cases[] = {
    {"one chunk", "5\r\nhello\r\n0\r\n\r\n", 0, ALL, true, "hello", 0, 0},
    {"two chunks", "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", 0, ALL, true, "hello world", 0, 0},
    {"empty body", "0\r\n\r\n", 0, ALL, true, "", 0, 0},
    {"hex upper and lower", "a\r\n0123456789\r\nB\r\nabcdefghijk\r\n0\r\n\r\n", 0, ALL, true,
     "0123456789abcdefghijk", 0, 0},
    {"leading zeros", "0005\r\nhello\r\n000\r\n\r\n", 0, ALL, true, "hello", 0, 0},
    {"extensions", "5;name=value\r\nhello\r\n3 ; a=\"q;\\\"x\" ;b\r\nabc\r\n0;last\r\n\r\n", 0, ALL,
     true, "helloabc", 0, 0},
    {"whitespace after size", "5 \t\r\nhello\r\n0\r\n\r\n", 0, ALL, true, "hello", 0, 0},
    {"trailers", "5\r\nhello\r\n0\r\nX-Sum: abc\r\nX-Other: 1\r\n\r\n", 0, ALL, true, "hello", 0,
     0},
    {"pipelined after body", "3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n", 0, 13, true, "abc", 0,
     0},
    {"incomplete: mid data", "5\r\nhel", 0, ALL, false, "hel", 0, 0},
    {"incomplete: no last chunk", "5\r\nhello\r\n", 0, ALL, false, "hello", 0, 0},
    {"incomplete: no final CRLF", "5\r\nhello\r\n0\r\n", 0, ALL, false, "hello", 0, 0},
    {"incomplete: in trailers", "0\r\nX: y\r\n", 0, ALL, false, "", 0, 0},
    {"data holds CRLF and NUL", "4\r\n\r\n\0x\r\n0\r\n\r\n", 14, 14, true, "\r\n\0x", 0, 4},
    {"max size", "7fffffffffffffff\r\n", 0, SL_ETOOBIG, false, NULL, 0, 0},
    {"bad hex", "5g\r\nhello\r\n0\r\n\r\n", 0, SL_EPARSE, false, NULL, 0, 0},
    {"no digits", "\r\nhello\r\n0\r\n\r\n", 0, SL_EPARSE, false, NULL, 0, 0},
    {"extension without size", ";x\r\n", 0, SL_EPARSE, false, NULL, 0, 0},
    {"0x prefix", "0x5\r\nhello\r\n0\r\n\r\n", 0, SL_EPARSE, false, NULL, 0, 0},
    {"sign", "+5\r\nhello\r\n0\r\n\r\n", 0, SL_EPARSE, false, NULL, 0, 0},
    {"leading space", " 5\r\nhello\r\n0\r\n\r\n", 0, SL_EPARSE, false, NULL, 0, 0},
    {"space inside size", "5 5\r\nhello\r\n", 0, SL_EPARSE, false, NULL, 0, 0},
    {"overflow 17 digits", "10000000000000000\r\n", 0, SL_EPARSE, false, NULL, 0, 0},
    {"overflow big", "fffffffffffffffff\r\n", 0, SL_EPARSE, false, NULL, 0, 0},
    {"missing CRLF after data", "5\r\nhelloX\r\n0\r\n\r\n", 0, SL_EPARSE, false, NULL, 0, 0},
    {"data longer than size", "3\r\nhello\r\n0\r\n\r\n", 0, SL_EPARSE, false, NULL, 0, 0},
    {"LF only after data", "5\r\nhello\n0\r\n\r\n", 0, SL_EPARSE, false, NULL, 0, 0},
    {"CR only after data", "5\r\nhello\r0\r\n\r\n", 0, SL_EPARSE, false, NULL, 0, 0},
    {"bare LF size line", "5\nhello\r\n0\r\n\r\n", 0, SL_EPARSE, false, NULL, 0, 0},
    {"bare LF in extension", "5;a\nhello\r\n0\r\n\r\n", 0, SL_EPARSE, false, NULL, 0, 0},
    {"bare CR in extension", "5;a\rb\r\nhello\r\n0\r\n\r\n", 0, SL_EPARSE, false, NULL, 0, 0},
    {"control in extension", "5;a\x01\r\nhello\r\n0\r\n\r\n", 0, SL_EPARSE, false, NULL, 0, 0},
    {"bare LF ending", "0\r\n\n", 0, SL_EPARSE, false, NULL, 0, 0},
    {"bare LF in trailer", "0\r\nX: y\n\r\n", 0, SL_EPARSE, false, NULL, 0, 0},
    {"control in trailer", "0\r\nX: \x01\r\n\r\n", 0, SL_EPARSE, false, NULL, 0, 0},
    {"too big", "5\r\nhello\r\n0\r\n\r\n", 0, SL_ETOOBIG, false, NULL, 4, 0},
    {"fits exactly", "5\r\nhello\r\n0\r\n\r\n", 0, ALL, true, "hello", 5, 0},
    {"too big across chunks", "3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n", 0, SL_ETOOBIG, false, NULL, 5,
     0},
};

struct chunk_result {
    int rc;
    bool done;
    struct sl_buf out;
};

/* Feed in pieces of step bytes (0: all at once), as a connection would. */
static void chunk_run(const char *in, size_t len, size_t step, size_t max, struct chunk_result *r)
{
    struct sl_http_chunked c;
    size_t off = 0;

    sl_http_chunked_init(&c);
    sl_buf_init(&r->out, max);
    r->rc = 0;
    r->done = false;
    while (off < len) {
        size_t n = (step == 0 || len - off < step) ? len - off : step;
        int rc = sl_http_chunked_feed(&c, in + off, n, &r->out);
        if (rc < 0) {
            r->rc = rc;
            return;
        }
        assert_true((size_t)rc <= n);
        off += (size_t)rc;
        if (c.done)
            break;
        /* A feed that is not done consumes everything it is given. */
        assert_int_equal(rc, n);
    }
    r->rc = (int)off;
    r->done = c.done;
}

/* Also feeds at every two-piece split. */
static void chunk_check(const char *name, const char *in, size_t len, size_t max, int want_rc,
                        bool want_done, const char *want, size_t want_len)
{
    size_t steps[] = {0, 1, 2, 3, 7};
    struct chunk_result r;

    for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
        chunk_run(in, len, steps[s], max, &r);
        if (r.rc != want_rc)
            fail_msg("%s (step %zu): got %d, want %d", name, steps[s], r.rc, want_rc);
        if (want_rc >= 0) {
            assert_int_equal(r.done, want_done);
            assert_int_equal(r.out.len, want_len);
            if (want_len > 0)
                assert_memory_equal(r.out.p, want, want_len);
        }
        sl_buf_free(&r.out);
    }
    for (size_t k = 1; k < len; k++) {
        struct sl_http_chunked c;
        struct sl_buf out;
        int rc1, rc2 = 0;

        sl_http_chunked_init(&c);
        sl_buf_init(&out, max);
        rc1 = sl_http_chunked_feed(&c, in, k, &out);
        if (rc1 >= 0 && !c.done) {
            assert_int_equal(rc1, k);
            rc2 = sl_http_chunked_feed(&c, in + k, len - k, &out);
            if (rc2 >= 0)
                rc1 += rc2;
            else
                rc1 = rc2;
        }
        if (rc1 != want_rc)
            fail_msg("%s (split %zu): got %d, want %d", name, k, rc1, want_rc);
        if (rc1 >= 0)
            assert_int_equal(out.len, want_len);
        sl_buf_free(&out);
    }
}

static void test_chunked(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(chunk_cases) / sizeof(chunk_cases[0]); i++) {
        const struct chunk_case *tc = &chunk_cases[i];
        size_t len;

        printf("# %s\n", tc->name);
        len = tc->len ? tc->len : strlen(tc->in);
        chunk_check(tc->name, tc->in, len, tc->max ? tc->max : 1 << 20,
                    tc->rc == ALL ? (int)len : tc->rc, tc->done, tc->want,
                    tc->want_len ? tc->want_len
                    : tc->want   ? strlen(tc->want)
                                 : 0);
    }
}

static void test_chunked_line_cap(void **state)
{
    char in[2048];
    size_t n;

    (void)state;
    /* "1;" + extension to exactly 1024 bytes of size line: accepted. */
    memset(in, 'a', sizeof(in));
    in[0] = '1';
    in[1] = ';';
    memcpy(in + 1024, "\r\nx\r\n0\r\n\r\n", 10);
    n = 1034;
    chunk_check("size line of 1024", in, n, 1 << 20, (int)n, true, "x", 1);
    /* 1025: refused. */
    memset(in, 'a', sizeof(in));
    in[0] = '1';
    in[1] = ';';
    memcpy(in + 1025, "\r\nx\r\n0\r\n\r\n", 10);
    chunk_check("size line of 1025", in, 1035, 1 << 20, SL_EPARSE, false, NULL, 0);
    /* 1025 zeros of size. */
    memset(in, '0', 1025);
    memcpy(in + 1025, "\r\n\r\n", 4);
    chunk_check("1025 size digits", in, 1029, 1 << 20, SL_EPARSE, false, NULL, 0);
    /* A trailer line over 1 KiB. */
    memcpy(in, "0\r\nX:", 5);
    memset(in + 5, 'v', 1100);
    memcpy(in + 1105, "\r\n\r\n", 4);
    chunk_check("long trailer", in, 1109, 1 << 20, SL_EPARSE, false, NULL, 0);
}

static void test_chunked_trailer_cap(void **state)
{
    struct sl_buf b;
    size_t i;

    (void)state;
    sl_buf_init(&b, 1 << 20);
    assert_int_equal(sl_buf_addf(&b, "1\r\nx\r\n0\r\n"), 0);
    for (i = 0; b.len < 11 + 8192 - 100; i++)
        assert_int_equal(sl_buf_addf(&b, "X-T%04zu: 0123456789\r\n", i), 0);
    assert_int_equal(sl_buf_addf(&b, "\r\n"), 0);
    chunk_check("trailers under 8 KiB", b.p, b.len, 1 << 20, (int)b.len, true, "x", 1);
    b.len -= 2;
    for (; b.len < 11 + 8192 + 100; i++)
        assert_int_equal(sl_buf_addf(&b, "X-T%04zu: 0123456789\r\n", i), 0);
    assert_int_equal(sl_buf_addf(&b, "\r\n"), 0);
    chunk_check("trailers over 8 KiB", b.p, b.len, 1 << 20, SL_ETOOBIG, false, NULL, 0);
    sl_buf_free(&b);
}

/* After the body ends, more feeds consume nothing. */
static void test_chunked_done_consumes_nothing(void **state)
{
    struct sl_http_chunked c;
    struct sl_buf out;
    const char *in = "0\r\n\r\nGET";

    (void)state;
    sl_http_chunked_init(&c);
    sl_buf_init(&out, 100);
    assert_false(c.done);
    assert_int_equal(sl_http_chunked_feed(&c, in, strlen(in), &out), 5);
    assert_true(c.done);
    assert_int_equal(sl_http_chunked_feed(&c, in + 5, 3, &out), 0);
    assert_int_equal(sl_http_chunked_feed(&c, in, 0, &out), 0);
    assert_int_equal(out.len, 0);
    sl_buf_free(&out);
}

/* A caller that drains out between feeds is held to out's room at each size line. */
static void test_chunked_etoobig_counts_existing(void **state)
{
    struct sl_http_chunked c;
    struct sl_buf out;

    (void)state;
    sl_http_chunked_init(&c);
    sl_buf_init(&out, 8);
    assert_int_equal(sl_buf_add(&out, "123456", 6), 0);
    assert_int_equal(sl_http_chunked_feed(&c, "3\r\n", 3, &out), SL_ETOOBIG);
    assert_int_equal(out.len, 6);
    sl_http_chunked_init(&c);
    assert_int_equal(sl_http_chunked_feed(&c, "2\r\nab\r\n", 7, &out), 7);
    assert_int_equal(out.len, 8);
    sl_buf_free(&out);
}

/* ---- absolute-form targets ------------------------------------------------------- */

static const struct {
    const char *in, *want;
} origin_cases[] = {
    {"/logs", "/logs"},
    {"/", "/"},
    {"http://drain.example/logs", "/logs"},
    {"HTTPS://drain.example:8443/logs", "/logs"},
    {"https://drain.example", "/"},
    {"http://h", "/"},
    {"http://", "http://"}, /* too short to be absolute: routed as is (then 404) */
    {"https://a/b/c", "/b/c"},
    {"ftp://host/logs", "ftp://host/logs"},
    {"http:/x/logs", "http:/x/logs"},
    {"httpx://h/logs", "httpx://h/logs"},
};

static void test_origin_path(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(origin_cases) / sizeof(origin_cases[0]); i++) {
        struct sl_str in = sl_str_make(origin_cases[i].in, strlen(origin_cases[i].in));
        struct sl_str got = sl_http_origin_path(in);
        if (!sl_str_eq(got, origin_cases[i].want))
            fail_msg("%s: got \"%.*s\", want \"%s\"", origin_cases[i].in, (int)got.len, got.p,
                     origin_cases[i].want);
    }
}

/* ---- Content-Encoding -------------------------------------------------------------- */

#define CE_BAD (-1)
static const struct {
    const char *in;
    int want; /* 0: identity, 1: gzip, CE_BAD: SL_EPARSE */
} ce_cases[] = {
    {"gzip", 1},
    {"GZip", 1},
    {"x-gzip", 1},
    {"identity", 0},
    {"IDENTITY", 0},
    {"", 0},
    {" , ,", 0},
    {"identity, gzip", 1},
    {"gzip,identity", 1},
    {" \tgzip\t ", 1},
    {"identity,identity", 0},
    {"gzip, gzip", CE_BAD},
    {"gzip, x-gzip", CE_BAD},
    {"deflate", CE_BAD},
    {"br", CE_BAD},
    {"gzip, br", CE_BAD},
    {"gzip;q=1", CE_BAD},
    {"gz ip", CE_BAD},
    {"identit", CE_BAD},
};

static void test_content_encoding(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(ce_cases) / sizeof(ce_cases[0]); i++) {
        bool gzip = false;
        int rc = sl_http_parse_content_encoding(sl_str_make(ce_cases[i].in, strlen(ce_cases[i].in)),
                                                &gzip);
        if (ce_cases[i].want == CE_BAD) {
            if (rc != SL_EPARSE)
                fail_msg("\"%s\": rc %d, want SL_EPARSE", ce_cases[i].in, rc);
        } else if (rc != 0 || gzip != (ce_cases[i].want == 1)) {
            fail_msg("\"%s\": rc %d gzip %d, want 0 and %d", ce_cases[i].in, rc, gzip,
                     ce_cases[i].want);
        }
    }
}

/* ---- reason phrases --------------------------------------------------------------- */

static void test_reason(void **state)
{
    (void)state;
    assert_string_equal(sl_http_reason(204), "No Content");
    assert_string_equal(sl_http_reason(413), "Content Too Large");
    assert_string_equal(sl_http_reason(431), "Request Header Fields Too Large");
    assert_string_equal(sl_http_reason(503), "Service Unavailable");
    assert_string_equal(sl_http_reason(418), "Unknown");
}

/* ---- route tables ----------------------------------------------------------------- */

static bool under_api(struct sl_str path)
{
    return path.len >= 5 && memcmp(path.p, "/api/", 5) == 0;
}

static const struct sl_http_route test_routes[] = {
    {"/logs", NULL, SL_HTTP_POST},
    {"/healthz", NULL, SL_HTTP_GET | SL_HTTP_HEAD},
    {NULL, under_api, SL_HTTP_GET | SL_HTTP_HEAD},
};

static const struct {
    const char *method, *path;
    int want_index, want_status;
} route_cases[] = {
    {"POST", "/logs", 0, 200},
    {"GET", "/logs", 0, 405},
    {"post", "/logs", 0, 405}, /* methods are case-sensitive */
    {"PUT", "/logs", 0, 405},
    {"GET", "/healthz", 1, 200},
    {"HEAD", "/healthz", 1, 200},
    {"POST", "/healthz", 1, 405},
    {"GET", "/api/v1/search", 2, 200},
    {"DELETE", "/api/v1/search", 2, 405},
    {"GET", "/api", -1, 404},
    {"GET", "/logs/", -1, 404},
    {"POST", "/nope", -1, 404},
    {"GET", "", -1, 404},
};

static void test_route_find(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(route_cases) / sizeof(route_cases[0]); i++) {
        int status = 0;
        int idx = sl_http_route_find(
            test_routes, sizeof(test_routes) / sizeof(test_routes[0]),
            sl_str_make(route_cases[i].method, strlen(route_cases[i].method)),
            sl_str_make(route_cases[i].path, strlen(route_cases[i].path)), &status);
        if (idx != route_cases[i].want_index || status != route_cases[i].want_status)
            fail_msg("%s %s: index %d status %d, want %d %d", route_cases[i].method,
                     route_cases[i].path, idx, status, route_cases[i].want_index,
                     route_cases[i].want_status);
    }
}

/* The Allow header's value of a 405 (RFC 9110 §10.2.1), from a route's methods. */
static const struct {
    unsigned methods;
    size_t cap;
    const char *want; /* NULL: does not fit */
} allow_cases[] = {
    {SL_HTTP_GET | SL_HTTP_HEAD, 64, "GET, HEAD"},
    {SL_HTTP_POST, 64, "POST"},
    {SL_HTTP_POST | SL_HTTP_GET | SL_HTTP_HEAD, 64, "GET, HEAD, POST"},
    {0, 64, ""},
    {SL_HTTP_GET | SL_HTTP_HEAD, 10, "GET, HEAD"}, /* exactly fits with its NUL */
    {SL_HTTP_GET | SL_HTTP_HEAD, 9, NULL},
};

static void test_allow(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(allow_cases) / sizeof(allow_cases[0]); i++) {
        char out[64];
        int n = sl_http_allow(allow_cases[i].methods, out, allow_cases[i].cap);

        if (allow_cases[i].want == NULL) {
            if (n != SL_ETOOBIG)
                fail_msg("case %zu: %d, want SL_ETOOBIG", i, n);
            continue;
        }
        if (n != (int)strlen(allow_cases[i].want) || strcmp(out, allow_cases[i].want) != 0)
            fail_msg("case %zu: %d \"%s\", want \"%s\"", i, n, out, allow_cases[i].want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_heads),
        cmocka_unit_test(test_logplex_headers),
        cmocka_unit_test(test_incomplete_every_split),
        cmocka_unit_test(test_too_big),
        cmocka_unit_test(test_max_headers),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_value_has_token),
        cmocka_unit_test(test_content_length),
        cmocka_unit_test(test_chunked),
        cmocka_unit_test(test_chunked_line_cap),
        cmocka_unit_test(test_chunked_trailer_cap),
        cmocka_unit_test(test_chunked_done_consumes_nothing),
        cmocka_unit_test(test_chunked_etoobig_counts_existing),
        cmocka_unit_test(test_origin_path),
        cmocka_unit_test(test_content_encoding),
        cmocka_unit_test(test_reason),
        cmocka_unit_test(test_route_find),
        cmocka_unit_test(test_allow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
