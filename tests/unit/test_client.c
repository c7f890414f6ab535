/* Unit tests for the pure parts of drain/client.c (include/sluice/client.h): the
 * Server-Sent Events parser (table-driven, every case also fed one byte at a time and
 * split at every offset), the papertrail-style line formatter with and without colour,
 * the cli.conf reader, argument parsing, URL parameters, ids and error documents. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/buf.h"
#include "sluice/client.h"
#include "sluice/err.h"
#include "sluice/search.h"

/* ------------------------------------------------------------------ SSE */

/* Events rendered as "type|id|idhere|data\n" lines so a case is one string. */
struct sse_got {
    char text[4096];
    size_t len;
    int stop_after; /* callback returns 42 after this many events; 0: never */
    int n;
};

static int sse_cb(const struct sl_sse_event *ev, void *arg)
{
    struct sse_got *g = arg;
    int w;

    assert_int_equal(strlen(ev->data), ev->data_len); /* NUL-terminated, no NUL inside */
    w = snprintf(g->text + g->len, sizeof(g->text) - g->len, "%.*s|%.*s|%d|%.*s\n",
                 (int)ev->type_len, ev->type, (int)ev->id_len, ev->id, ev->id_here ? 1 : 0,
                 (int)ev->data_len, ev->data);
    assert_true(w > 0 && (size_t)w < sizeof(g->text) - g->len);
    g->len += (size_t)w;
    g->n++;
    return g->stop_after && g->n >= g->stop_after ? 42 : 0;
}

struct sse_case {
    const char *in;
    const char *want;
};

static const struct sse_case sse_cases[] = {
    /* The API's stream: retry, an event, a keep-alive comment, a missed event. */
    {"retry: 2000\n\nid: 4611686018427387905\ndata: {\"id\":\"4611686018427387905\"}\n\n"
     ": keep-alive\n\nevent: missed\ndata: {\"missed\": 3}\n\n",
     "message|4611686018427387905|1|{\"id\":\"4611686018427387905\"}\n"
     "missed|4611686018427387905|0|{\"missed\": 3}\n"},
    /* Multi-line data is joined with LF; the last LF is dropped. */
    {"data: a\ndata: b\ndata\ndata:c\n\n", "message||0|a\nb\n\nc\n"},
    /* CRLF and lone CR line ends. */
    {"id: 1\r\ndata: x\r\n\r\nid: 2\rdata: y\r\r", "message|1|1|x\nmessage|2|1|y\n"},
    /* Only one space after the colon is dropped. */
    {"data:  two spaces\n\n", "message||0| two spaces\n"},
    /* Without a blank line at the end, nothing is dispatched. */
    {"data: pending\n", ""},
    /* Comments only and events without data dispatch nothing; the type is forgotten. */
    {": hi\n:\n\nevent: missed\n\ndata: z\n\n", "message||0|z\n"},
    /* Unknown fields are ignored; a field without a colon is its name with "". */
    {"foo: bar\nid\ndata: q\n\n", "message||1|q\n"},
    /* The id carries over to later events (the spec's last event ID). */
    {"id: 7\ndata: a\n\ndata: b\n\n", "message|7|1|a\nmessage|7|0|b\n"},
    /* An id holding NUL is ignored. */
    {"id: 5\ndata: a\n\nid: 6\0x\ndata: b\n\n", "message|5|1|a\nmessage|5|0|b\n"},
    /* A leading BOM is dropped (only on the first line). */
    {"\xEF\xBB\xBF"
     "data: bom\n\n",
     "message||0|bom\n"},
    /* Non-ASCII data passes through untouched. */
    {"data: caf\xC3\xA9 \xE2\x9C\x93\n\n", "message||0|caf\xC3\xA9 \xE2\x9C\x93\n"},
    /* Blank lines between events do nothing. */
    {"\n\n\ndata: a\n\n\n\n", "message||0|a\n"},
};

/* The NUL inside case 8 needs the real length: every case literal is measured with a
 * length table instead of strlen. */
static size_t case_len(size_t i)
{
    if (i == 8)
        return sizeof("id: 5\ndata: a\n\nid: 6\0x\ndata: b\n\n") - 1;
    return strlen(sse_cases[i].in);
}

static void run_split(const char *in, size_t len, size_t split, struct sse_got *g)
{
    struct sl_sse p;

    sl_sse_init(&p, 1 << 16);
    memset(g, 0, sizeof(*g));
    assert_int_equal(sl_sse_feed(&p, in, split, sse_cb, g), 0);
    assert_int_equal(sl_sse_feed(&p, in + split, len - split, sse_cb, g), 0);
    sl_sse_free(&p);
}

static void test_sse_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(sse_cases) / sizeof(sse_cases[0]); i++) {
        const char *in = sse_cases[i].in;
        size_t len = case_len(i);
        struct sse_got g;
        struct sl_sse p;

        /* Every split point gives the same events. */
        for (size_t split = 0; split <= len; split++) {
            run_split(in, len, split, &g);
            if (strcmp(g.text, sse_cases[i].want) != 0)
                fail_msg("case %zu split %zu: got [%s] want [%s]", i, split, g.text,
                         sse_cases[i].want);
        }
        /* One byte at a time. */
        sl_sse_init(&p, 1 << 16);
        memset(&g, 0, sizeof(g));
        for (size_t k = 0; k < len; k++)
            assert_int_equal(sl_sse_feed(&p, in + k, 1, sse_cb, &g), 0);
        if (strcmp(g.text, sse_cases[i].want) != 0)
            fail_msg("case %zu bytewise: got [%s] want [%s]", i, g.text, sse_cases[i].want);
        sl_sse_free(&p);
    }
}

/* retry: takes digits only; CR then LF in the next chunk is one line end. */
static void test_sse_retry_and_crlf_split(void **state)
{
    struct sl_sse p;
    struct sse_got g;

    (void)state;
    memset(&g, 0, sizeof(g));
    sl_sse_init(&p, 1 << 16);
    assert_int_equal(p.retry_ms, -1);
    assert_int_equal(sl_sse_feed(&p, "retry: 1500\n", 12, sse_cb, &g), 0);
    assert_int_equal(p.retry_ms, 1500);
    assert_int_equal(sl_sse_feed(&p, "retry: 15s\nretry:\n", 18, sse_cb, &g), 0);
    assert_int_equal(p.retry_ms, 1500);
    assert_int_equal(sl_sse_feed(&p, "data: a\r", 8, sse_cb, &g), 0);
    assert_int_equal(sl_sse_feed(&p, "\n\r", 2, sse_cb, &g), 0);
    assert_int_equal(sl_sse_feed(&p, "\n", 1, sse_cb, &g), 0); /* CR LF: one blank line */
    assert_string_equal(g.text, "message||0|a\n");
    assert_int_equal(sl_sse_feed(&p, "data: b\r\r", 9, sse_cb, &g), 0);
    assert_string_equal(g.text, "message||0|a\nmessage||0|b\n");
    sl_sse_free(&p);
}

/* A reconnection drops the half-received event but keeps the last id and retry. */
static void test_sse_reset(void **state)
{
    struct sl_sse p;
    struct sse_got g;
    static const char a[] = "retry: 700\nid: 10\ndata: one\n\nid: 11\ndata: hal";

    (void)state;
    memset(&g, 0, sizeof(g));
    sl_sse_init(&p, 1 << 16);
    assert_int_equal(sl_sse_feed(&p, a, sizeof(a) - 1, sse_cb, &g), 0);
    sl_sse_reset(&p);
    assert_int_equal(sl_sse_feed(&p, "f\n\ndata: two\n\n", 15, sse_cb, &g), 0);
    /* "f" is a field named f (ignored); the pending "hal" data was dropped. */
    assert_string_equal(g.text, "message|10|1|one\nmessage|11|0|two\n");
    assert_int_equal(p.retry_ms, 700);
    sl_sse_free(&p);
}

/* A callback's non-zero result stops the feed and comes back. */
static void test_sse_callback_stops(void **state)
{
    struct sl_sse p;
    struct sse_got g;
    static const char s[] = "data: 1\n\ndata: 2\n\ndata: 3\n\n";

    (void)state;
    memset(&g, 0, sizeof(g));
    g.stop_after = 2;
    sl_sse_init(&p, 1 << 16);
    assert_int_equal(sl_sse_feed(&p, s, sizeof(s) - 1, sse_cb, &g), 42);
    assert_int_equal(g.n, 2);
    sl_sse_free(&p);
}

/* Lines and data past the cap are SL_ETOOBIG, whole or split. */
static void test_sse_caps(void **state)
{
    struct sl_sse p;
    struct sse_got g;
    char big[300];

    (void)state;
    memset(big, 'x', sizeof(big));
    memset(&g, 0, sizeof(g));
    sl_sse_init(&p, 256);
    assert_int_equal(sl_sse_feed(&p, big, sizeof(big), sse_cb, &g), SL_ETOOBIG);
    sl_sse_free(&p);

    sl_sse_init(&p, 256);
    for (int i = 0; i < 20; i++) {
        int rc = sl_sse_feed(&p, "data: 0123456789abcdef\n", 23, sse_cb, &g);
        if (rc) {
            assert_int_equal(rc, SL_ETOOBIG);
            assert_true(i >= 256 / 17 - 1);
            sl_sse_free(&p);
            return;
        }
    }
    sl_sse_free(&p);
    fail_msg("data past the cap was accepted");
}

/* ------------------------------------------------------------------ line format */

struct fmt_case {
    struct sl_client_line l;
    bool color;
    const char *want;
};

static const struct fmt_case fmt_cases[] = {
    {{"2026-11-22T04:16:01.123456Z", "host", "app", "web.1", "at=info status=200"},
     false,
     "Nov 22 04:16:01 host app/web.1: at=info status=200\n"},
    /* A JSON line: its prefix, then its leaves logfmt style (the last duplicate, strings
     * decoded and quoted when they hold a space, '"' or '='; control bytes escaped) */
    {{"2026-11-22T04:16:01Z", "h", "app", "web.1",
      "INFO {\"level\":\"info\",\"msg\":\"charge failed\",\"user\":{\"id\":42},"
      "\"ok\":true,\"level\":\"error\",\"e\":\"\",\"nl\":\"a\\nb\",\"n\":null}"},
     false,
     "Nov 22 04:16:01 h app/web.1: INFO level=error msg=\"charge failed\" user.id=42 ok=true "
     "e=\"\" nl=a\\nb n=null\n"},
    /* malformed JSON is shown as it is */
    {{"2026-11-22T04:16:01Z", "h", "app", NULL, "{\"level\":\"error\""},
     false,
     "Nov 22 04:16:01 h app: {\"level\":\"error\"\n"},
    /* Other offsets are converted to UTC. */
    {{"2026-01-02T01:02:03+02:00", "h", "app", NULL, "m"}, false, "Jan 01 23:02:03 h app: m\n"},
    {{"2026-03-05T00:00:00Z", "h", NULL, "web.2", "m"}, false, "Mar 05 00:00:00 h web.2: m\n"},
    {{"2026-03-05T00:00:00Z", NULL, "", NULL, NULL}, false, "Mar 05 00:00:00 - -: \n"},
    /* A received_at that does not parse is shown as sent. */
    {{"yesterday", "h", "a", "p", "m"}, false, "yesterday h a/p: m\n"},
    {{NULL, "h", "a", "p", "m"}, false, "- h a/p: m\n"},
    /* Control characters cannot break the line or drive the terminal; tabs stay. */
    {{"2026-11-22T04:16:01Z", "h\x1b", "a", "p",
      "one\ntwo\r\x1b[31mred\x7f\tt\xc2\x9b"
      "2J \xc3\xa9"},
     false,
     "Nov 22 04:16:01 h\\x1b a/p: one\\ntwo\\r\\x1b[31mred\\x7f\tt\\u009b2J \xc3\xa9\n"},
};

static void test_format_table(void **state)
{
    struct sl_buf b;

    (void)state;
    sl_buf_init(&b, 1 << 16);
    for (size_t i = 0; i < sizeof(fmt_cases) / sizeof(fmt_cases[0]); i++) {
        sl_buf_reset(&b);
        assert_int_equal(sl_client_format(&fmt_cases[i].l, fmt_cases[i].color, false, &b), 0);
        assert_int_equal(sl_buf_addc(&b, '\0'), 0);
        if (strcmp(b.p, fmt_cases[i].want) != 0)
            fail_msg("case %zu: got [%s] want [%s]", i, b.p, fmt_cases[i].want);
    }
    sl_buf_free(&b);
}

static void test_format_color(void **state)
{
    struct sl_client_line l = {"2026-11-22T04:16:01Z", "web-host", "app", "web.1", "hello"};
    char want[256];
    struct sl_buf b;
    int ch = sl_client_color_of("web-host", 8), cp = sl_client_color_of("app/web.1", 9);

    (void)state;
    sl_buf_init(&b, 1 << 16);
    assert_int_equal(sl_client_format(&l, true, false, &b), 0);
    assert_int_equal(sl_buf_addc(&b, '\0'), 0);
    snprintf(want, sizeof(want),
             "Nov 22 04:16:01 \033[%dmweb-host\033[0m \033[%dmapp/web.1\033[0m: hello\n", ch, cp);
    assert_string_equal(b.p, want);
    /* The message is never coloured, and without colour there is no escape at all. */
    sl_buf_reset(&b);
    assert_int_equal(sl_client_format(&l, false, false, &b), 0);
    assert_null(memchr(b.p, '\033', b.len));
    sl_buf_free(&b);
}

/* The colour is a pure function of the text (stable across runs and machines), in
 * 31..36, and spreads over the palette. */
static void test_color_of(void **state)
{
    int seen[8] = {0};
    char name[32];

    (void)state;
    /* FNV-1a 32 of "" is 2166136261; 2166136261 % 6 == 1 -> 32. */
    assert_int_equal(sl_client_color_of("", 0), 32);
    assert_int_equal(sl_client_color_of("web.1", 5), sl_client_color_of("web.1", 5));
    for (int i = 0; i < 60; i++) {
        int c;
        snprintf(name, sizeof(name), "host-%d", i);
        c = sl_client_color_of(name, strlen(name));
        assert_in_range(c, 31, 36);
        seen[c - 31] = 1;
    }
    for (int i = 0; i < 6; i++)
        assert_int_equal(seen[i], 1);
}

/* A too-small buffer leaves it as it was. */
static void test_format_toobig(void **state)
{
    struct sl_client_line l = {"2026-11-22T04:16:01Z", "h", "a", "p", "a long enough message"};
    struct sl_buf b;

    (void)state;
    sl_buf_init(&b, 20);
    assert_int_equal(sl_buf_add(&b, "keep", 4), 0);
    assert_int_equal(sl_client_format(&l, false, false, &b), SL_ETOOBIG);
    assert_int_equal(b.len, 4);
    sl_buf_free(&b);
}

/* ------------------------------------------------------------------ caps */

/* The client's caps are the server's at its default settings (include/sluice/search.h). */
static void test_caps(void **state)
{
    size_t ev = sl_search_event_max(SL_SEARCH_DEFAULT_MAX_MESSAGE, SL_SEARCH_DEFAULT_MAX_HEADER);
    (void)state;
    assert_int_equal(sl_client_answer_max(1), sl_search_answer_max(1, 65536, 16384));
    assert_int_equal(sl_client_answer_max(20), sl_search_answer_max(20, 65536, 16384));
    /* a page of 10000 is capped at twice the server's default answer budget, not 5.8 GB */
    assert_int_equal(sl_client_answer_max(SL_CLIENT_PAGE), SL_CLIENT_ANSWER_MAX);
    assert_int_equal(SL_CLIENT_ANSWER_MAX, 2 * (size_t)SL_SEARCH_DEFAULT_ANSWER_BYTES);
    assert_int_equal(sl_client_answer_max(0), SL_SEARCH_ANSWER_FIXED);
    assert_int_equal(sl_client_answer_max(-1), SL_SEARCH_ANSWER_FIXED);
    assert_int_equal(sl_client_lines_max(1), ev + 1);
    assert_int_equal(sl_client_lines_max(100), 100 * (ev + 1));
    assert_int_equal(sl_client_lines_max(SL_CLIENT_MAX_LIMIT),
                     (size_t)SL_CLIENT_MAX_LIMIT * (ev + 1)); /* no overflow on 64 bits */
    assert_int_equal(sl_client_lines_max(0), 0);
}

/* The longest plain line a default server's event can make fits one line's share:
 * every byte of the message a control byte (\xNN, 4x) or a C1 character (\u0085 from
 * two bytes), with colour. */
static void test_caps_hold_a_worst_line(void **state)
{
    static const char *fill[] = {"\x01", "\x7f", "\xc2\x85"};
    size_t m = SL_SEARCH_DEFAULT_MAX_MESSAGE;
    (void)state;
    for (size_t k = 0; k < sizeof(fill) / sizeof(fill[0]); k++) {
        size_t fl = strlen(fill[k]);
        char *msg = malloc(m + 1), *host = malloc(256);
        struct sl_buf b;
        assert_non_null(msg);
        assert_non_null(host);
        for (size_t i = 0; i + fl <= m; i += fl)
            memcpy(msg + i, fill[k], fl);
        msg[m - m % fl] = '\0';
        memset(host, 'h', 255);
        host[255] = '\0';
        struct sl_client_line l = {"2026-11-22T04:16:01.123456Z", host, "app", "web.1", msg};
        sl_buf_init(&b, sl_client_lines_max(1));
        assert_int_equal(sl_client_format(&l, true, false, &b), 0);
        assert_true(b.len > 3 * m); /* it did expand */
        sl_buf_free(&b);
        free(msg);
        free(host);
    }
}

/* ------------------------------------------------------------------ cli.conf */

static void test_conf(void **state)
{
    static const char text[] = "# sluice client\n"
                               "\n"
                               "url = https://logs.example.com:8443/\n"
                               "  token=slr_0123   \n"
                               "cacert = \"/etc/ssl/private ca.pem\"\r\n"
                               "token = slr_second\n";
    struct sl_client_conf c = {NULL, NULL, NULL};
    size_t bad = 0;

    (void)state;
    assert_int_equal(sl_client_conf_parse(text, sizeof(text) - 1, &c, &bad), 0);
    assert_string_equal(c.url, "https://logs.example.com:8443/");
    assert_string_equal(c.token, "slr_second"); /* the last one wins */
    assert_string_equal(c.cacert, "/etc/ssl/private ca.pem");
    sl_client_conf_free(&c);
    assert_null(c.url);

    assert_int_equal(sl_client_conf_parse("url = x\ntoekn = y\n", 18, &c, &bad), SL_EPARSE);
    assert_int_equal(bad, 2);
    sl_client_conf_free(&c);
    assert_int_equal(sl_client_conf_parse("# c\nurl https://x\n", 18, &c, &bad), SL_EPARSE);
    assert_int_equal(bad, 2);
    sl_client_conf_free(&c);
    assert_int_equal(sl_client_conf_parse("url =\n", 6, &c, &bad), 0);
    assert_string_equal(c.url, "");
    sl_client_conf_free(&c);
    assert_int_equal(sl_client_conf_parse("", 0, &c, &bad), 0);
    assert_null(c.token);
    sl_client_conf_free(NULL);
}

static void test_conf_path(void **state)
{
    char p[64];

    (void)state;
    assert_int_equal(sl_client_conf_path("/x/cfg", "/home/u", p, sizeof(p)), 0);
    assert_string_equal(p, "/x/cfg/sluice/cli.conf");
    assert_int_equal(sl_client_conf_path("", "/home/u", p, sizeof(p)), 0);
    assert_string_equal(p, "/home/u/.config/sluice/cli.conf");
    assert_int_equal(sl_client_conf_path(NULL, NULL, p, sizeof(p)), SL_ENOTFOUND);
    assert_int_equal(sl_client_conf_path("/a/very/long/directory/name", NULL, p, 20), SL_ETOOBIG);
}

/* ------------------------------------------------------------------ arguments */

static int parse(enum sl_client_cmd cmd, struct sl_client_opts *o, char *err, ...)
{
    char *argv[32];
    int argc = 0;
    va_list ap;

    va_start(ap, err);
    for (char *a; (a = va_arg(ap, char *)) != NULL;)
        argv[argc++] = a;
    va_end(ap);
    return sl_client_args(cmd, argc, argv, o, err, 128);
}

static void test_args_search(void **state)
{
    struct sl_client_opts o;
    char err[128];

    (void)state;
    assert_int_equal(parse(SL_CLIENT_SEARCH, &o, err, NULL), 0);
    assert_string_equal(o.query, "");
    assert_int_equal(o.limit, 100);
    assert_int_equal(o.color, SL_CLIENT_COLOR_AUTO);

    assert_int_equal(parse(SL_CLIENT_SEARCH, &o, err, "status:>=500", "--source", "api",
                           "--source=billing", "-h12", "--since", "2h", "--until=2026-11-21",
                           "--limit", "25000", "--json", "--no-color", NULL),
                     SL_EINVAL); /* -h12 is an unknown option */
    assert_non_null(strstr(err, "-h12"));
    assert_non_null(strstr(err, "--"));

    assert_int_equal(parse(SL_CLIENT_SEARCH, &o, err, "status:>=500", "--source", "api",
                           "--source=billing", "--since", "2h", "--until=2026-11-21", "--limit",
                           "25000", "--json", "--no-color", "--", "-h12", "--json", NULL),
                     0);
    assert_string_equal(o.query, "status:>=500 -h12 --json");
    assert_int_equal(o.nsources, 2);
    assert_string_equal(o.sources[0], "api");
    assert_string_equal(o.sources[1], "billing");
    assert_string_equal(o.since, "2h");
    assert_string_equal(o.until, "2026-11-21");
    assert_int_equal(o.limit, 25000);
    assert_true(o.json);
    assert_int_equal(o.color, SL_CLIENT_COLOR_NEVER);

    assert_int_equal(parse(SL_CLIENT_SEARCH, &o, err, "--limit", "0", NULL), SL_EINVAL);
    assert_int_equal(parse(SL_CLIENT_SEARCH, &o, err, "--limit", "12x", NULL), SL_EINVAL);
    assert_int_equal(parse(SL_CLIENT_SEARCH, &o, err, "--limit", NULL), SL_EINVAL);
    assert_int_equal(parse(SL_CLIENT_SEARCH, &o, err, "--limit", "99999999999999999999", NULL),
                     SL_EINVAL);
    assert_int_equal(parse(SL_CLIENT_SEARCH, &o, err, "--source", NULL), SL_EINVAL);
    assert_int_equal(parse(SL_CLIENT_SEARCH, &o, err, "-f", NULL), SL_EINVAL); /* tail only */
    assert_int_equal(parse(SL_CLIENT_SEARCH, &o, err, "--color=sometimes", NULL), SL_EINVAL);
    assert_int_equal(parse(SL_CLIENT_SEARCH, &o, err, "--color", "x", NULL), 0);
    assert_int_equal(o.color, SL_CLIENT_COLOR_ALWAYS);
    assert_int_equal(parse(SL_CLIENT_SEARCH, &o, err, "--url", "https://h", "--token=t", "--cacert",
                           "/ca.pem", "--insecure", "-", NULL),
                     0);
    assert_string_equal(o.url, "https://h");
    assert_string_equal(o.token, "t");
    assert_string_equal(o.cacert, "/ca.pem");
    assert_true(o.insecure);
    assert_string_equal(o.query, "-"); /* a lone dash is a word */

    /* papertrail-cli's spellings: -s / --system for a source, -j for --json */
    assert_int_equal(parse(SL_CLIENT_SEARCH, &o, err, "-s", "api", "--system", "web", "--system=db",
                           "-j", "H12", NULL),
                     0);
    assert_int_equal(o.nsources, 3);
    assert_string_equal(o.sources[0], "api");
    assert_string_equal(o.sources[1], "web");
    assert_string_equal(o.sources[2], "db");
    assert_true(o.json);
    assert_string_equal(o.query, "H12");
    assert_int_equal(parse(SL_CLIENT_SEARCH, &o, err, "-s", NULL), SL_EINVAL);
    assert_non_null(strstr(err, "--source"));
    assert_int_equal(parse(SL_CLIENT_TAIL, &o, err, "-f", "-s", "api", "-j", NULL), 0);
    assert_int_equal(o.nsources, 1);
    assert_true(o.follow && o.json);
}

static void test_args_tail(void **state)
{
    struct sl_client_opts o;
    char err[128];

    (void)state;
    assert_int_equal(parse(SL_CLIENT_TAIL, &o, err, NULL), 0);
    assert_int_equal(o.limit, 20);
    assert_false(o.follow);
    assert_int_equal(parse(SL_CLIENT_TAIL, &o, err, "-f", "-n", "0", "app:web", NULL), 0);
    assert_true(o.follow);
    assert_int_equal(o.limit, 0);
    assert_string_equal(o.query, "app:web");
    assert_int_equal(parse(SL_CLIENT_TAIL, &o, err, "-n50", "--follow", NULL), 0);
    assert_int_equal(o.limit, 50);
    assert_int_equal(parse(SL_CLIENT_TAIL, &o, err, "--lines=7", NULL), 0);
    assert_int_equal(o.limit, 7);
    assert_int_equal(parse(SL_CLIENT_TAIL, &o, err, "-n", NULL), SL_EINVAL);
    assert_int_equal(parse(SL_CLIENT_TAIL, &o, err, "--since", "1h", NULL), SL_EINVAL);
}

static void test_args_query_cap(void **state)
{
    static char big[SL_CLIENT_MAX_QUERY + 2];
    struct sl_client_opts o;
    char err[128];

    (void)state;
    memset(big, 'a', SL_CLIENT_MAX_QUERY);
    big[SL_CLIENT_MAX_QUERY] = '\0';
    assert_int_equal(parse(SL_CLIENT_SEARCH, &o, err, big, NULL), 0);
    assert_int_equal(strlen(o.query), SL_CLIENT_MAX_QUERY);
    assert_int_equal(parse(SL_CLIENT_SEARCH, &o, err, big, "b", NULL), SL_EINVAL);
    assert_non_null(strstr(err, "4096"));
}

/* ------------------------------------------------------------------ helpers */

static void test_url_param(void **state)
{
    struct sl_buf u;

    (void)state;
    sl_buf_init(&u, 1 << 12);
    assert_int_equal(sl_buf_add(&u, "https://h/api/v1/search", 23), 0);
    assert_int_equal(sl_client_url_param(&u, "q", "\"conn refused\" status:>=500 a&b=c/é~_.-"), 0);
    assert_int_equal(sl_client_url_param(&u, "source", "api"), 0);
    assert_int_equal(sl_buf_addc(&u, '\0'), 0);
    assert_string_equal(u.p, "https://h/api/v1/search?q=%22conn%20refused%22%20status%3A%3E%3D500"
                             "%20a%26b%3Dc%2F%C3%A9~_.-&source=api");
    sl_buf_free(&u);

    sl_buf_init(&u, 12);
    assert_int_equal(sl_buf_add(&u, "x?a=1", 5), 0);
    assert_int_equal(sl_client_url_param(&u, "q", "0123456789"), SL_ETOOBIG);
    assert_int_equal(u.len, 5); /* unchanged */
    sl_buf_free(&u);
}

static void test_id_parse(void **state)
{
    uint64_t v = 0;

    (void)state;
    assert_int_equal(sl_client_id_parse("4611686018427387905", 19, &v), 0);
    assert_true(v == 4611686018427387905ULL);
    assert_int_equal(sl_client_id_parse("18446744073709551615", 20, &v), 0);
    assert_true(v == UINT64_MAX);
    assert_int_equal(sl_client_id_parse("18446744073709551616", 20, &v), SL_EPARSE);
    assert_int_equal(sl_client_id_parse("", 0, &v), SL_EPARSE);
    assert_int_equal(sl_client_id_parse("12a", 3, &v), SL_EPARSE);
    assert_int_equal(sl_client_id_parse("-1", 2, &v), SL_EPARSE);
}

static void test_errmsg_and_missed(void **state)
{
    static const char e[] = "{\"error\": \"bad query: unknown severity 'bogus' at 9\", "
                            "\"position\": 9}";
    static const char m[] = "{\"missed\": 1234, \"after_id\": \"10\", \"resume_id\": \"99\"}";
    char out[256];

    (void)state;
    assert_non_null(sl_client_errmsg(e, sizeof(e) - 1, out, sizeof(out)));
    assert_string_equal(out, "bad query: unknown severity 'bogus' at 9");
    assert_null(sl_client_errmsg("<html>", 6, out, sizeof(out)));
    assert_null(sl_client_errmsg("{\"error\": 3}", 12, out, sizeof(out)));
    assert_non_null(sl_client_errmsg(e, sizeof(e) - 1, out, 10));
    assert_string_equal(out, "bad query"); /* cut, NUL-terminated */

    assert_non_null(sl_client_missed_notice(m, sizeof(m) - 1, out, sizeof(out)));
    assert_non_null(strstr(out, "missed 1234 lines after id 10 (up to id 99)"));
    assert_null(strchr(out, '\n'));
    assert_null(sl_client_missed_notice("{}", 2, out, sizeof(out)));
}

/* --json prints each event's own text: the slices of the "events" array. */
static void test_json_events(void **state)
{
    static const char body[] =
        "{\"count\" : 3, \"nested\": {\"events\": [9]}, \"s\": \"\\\"events\\\": [8]\",\n"
        " \"events\" : [ {\"id\" : \"1\", \"tags\" : {\"a\": [1, {\"b\": null}]}} ,"
        "{\"id\":\"2\",\"message\":\"a ] } , \\\" \\\\\"},\n\t{\"id\": \"3\", \"n\": -1.5e3} ],"
        " \"reached_end\": true, \"next_cursor\": null}";
    struct sl_str it[4];

    (void)state;
    assert_int_equal(sl_client_json_events(body, sizeof(body) - 1, it, 4), 3);
    assert_int_equal(it[0].len, strlen("{\"id\" : \"1\", \"tags\" : {\"a\": [1, {\"b\": null}]}}"));
    assert_memory_equal(it[0].p, "{\"id\" : \"1\", \"tags\" : {\"a\": [1, {\"b\": null}]}}",
                        it[0].len);
    assert_int_equal(it[1].len, strlen("{\"id\":\"2\",\"message\":\"a ] } , \\\" \\\\\"}"));
    assert_memory_equal(it[1].p, "{\"id\":\"2\",\"message\":\"a ] } , \\\" \\\\\"}", it[1].len);
    assert_int_equal(it[2].len, strlen("{\"id\": \"3\", \"n\": -1.5e3}"));
    /* Fewer slots than events: the count is still right. */
    assert_int_equal(sl_client_json_events(body, sizeof(body) - 1, it, 1), 3);
    assert_int_equal(sl_client_json_events("{\"events\": []}", 14, it, 4), 0);
    /* Not an answer, no events array, or cut short. */
    assert_int_equal(sl_client_json_events("{}", 2, it, 4), SL_EPARSE);
    assert_int_equal(sl_client_json_events("[1]", 3, it, 4), SL_EPARSE);
    assert_int_equal(sl_client_json_events("{\"count\": 1}", 12, it, 4), SL_EPARSE);
    assert_int_equal(sl_client_json_events("{\"events\": null}", 16, it, 4), SL_EPARSE);
    for (size_t cut = 0; cut < sizeof(body) - 1; cut++)
        assert_int_equal(sl_client_json_events(body, cut, it, 4), SL_EPARSE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sse_table),         cmocka_unit_test(test_sse_retry_and_crlf_split),
        cmocka_unit_test(test_sse_reset),         cmocka_unit_test(test_sse_callback_stops),
        cmocka_unit_test(test_sse_caps),          cmocka_unit_test(test_format_table),
        cmocka_unit_test(test_format_color),      cmocka_unit_test(test_color_of),
        cmocka_unit_test(test_format_toobig),     cmocka_unit_test(test_caps),
        cmocka_unit_test(test_caps_hold_a_worst_line), cmocka_unit_test(test_conf),
        cmocka_unit_test(test_conf_path),         cmocka_unit_test(test_args_search),
        cmocka_unit_test(test_args_tail),         cmocka_unit_test(test_args_query_cap),
        cmocka_unit_test(test_url_param),         cmocka_unit_test(test_id_parse),
        cmocka_unit_test(test_errmsg_and_missed), cmocka_unit_test(test_json_events),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
