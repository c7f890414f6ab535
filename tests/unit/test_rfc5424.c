/* Unit tests for drain/rfc5424.c (include/sluice/rfc5424.h): syslog header forms,
 * SD detection, RFC 3164 fallback, RFC 3339 timestamps, logplex loss notices, and the
 * one-message files of the test corpus ($SLUICE_CORPUS or tests/fixtures/corpus). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/err.h"
#include "sluice/frame.h"
#include "sluice/rfc5424.h"

#define T_2026 1795255200LL /* 2026-11-21T10:00:00Z */
#define NIL "\x01NIL" /* expect a NULL slice */

/* ---- sl_syslog_parse ----------------------------------------------------------- */

struct parse_case {
    const char *in;
    int rc;
    enum sl_syslog_form form;
    int fac, sev;
    bool has_ts;
    int64_t ts_us;
    int frac, off;
    const char *host, *app, *proc, *msgid, *sd, *msg;
};

static const struct parse_case parse_cases[] = {
    /* Heroku's logplex form: no SD field at all. */
    {"<190>1 2026-11-21T10:00:00.123456+00:00 host app web.1 - Started GET \"/\"", 0,
     SL_SYSLOG_HEROKU, 23, 6, true, T_2026 * 1000000 + 123456, 6, 0, "host", "app", "web.1", NIL,
     NIL, "Started GET \"/\""},
    {"<158>1 2026-11-21T10:00:00+00:00 host heroku router - at=info method=GET", 0,
     SL_SYSLOG_HEROKU, 19, 6, true, T_2026 * 1000000, 0, 0, "host", "heroku", "router", NIL, NIL,
     "at=info method=GET"},
    /* A Heroku line that starts with '[': not SD (no '@', not IANA). */
    {"<190>1 2026-11-21T10:00:00+00:00 host app web.1 - [INFO] started", 0, SL_SYSLOG_HEROKU, 23,
     6, true, T_2026 * 1000000, 0, 0, "host", "app", "web.1", NIL, NIL, "[INFO] started"},
    {"<190>1 2026-11-21T10:00:00+00:00 host app web.1 - [a@1 x=\"1\" unterminated", 0,
     SL_SYSLOG_HEROKU, 23, 6, true, T_2026 * 1000000, 0, 0, "host", "app", "web.1", NIL, NIL,
     "[a@1 x=\"1\" unterminated"},
    {"<190>1 2026-11-21T10:00:00+00:00 host app web.1 - [a@1]x", 0, SL_SYSLOG_HEROKU, 23, 6,
     true, T_2026 * 1000000, 0, 0, "host", "app", "web.1", NIL, NIL, "[a@1]x"},
    {"<190>1 2026-11-21T10:00:00+00:00 host app web.1 - [a@1 x=1] unquoted", 0,
     SL_SYSLOG_HEROKU, 23, 6, true, T_2026 * 1000000, 0, 0, "host", "app", "web.1", NIL, NIL,
     "[a@1 x=1] unquoted"},
    {"<190>1 2026-11-21T10:00:00+00:00 host app web.1 -", 0, SL_SYSLOG_HEROKU, 23, 6, true,
     T_2026 * 1000000, 0, 0, "host", "app", "web.1", NIL, NIL, ""},
    /* Strict RFC 5424 with the NILVALUE SD. */
    {"<190>1 2026-11-21T10:00:00Z host app web.1 - - hello", 0, SL_SYSLOG_5424, 23, 6, true,
     T_2026 * 1000000, 0, 0, "host", "app", "web.1", NIL, NIL, "hello"},
    {"<190>1 2026-11-21T10:00:00Z host app web.1 - -", 0, SL_SYSLOG_5424, 23, 6, true,
     T_2026 * 1000000, 0, 0, "host", "app", "web.1", NIL, NIL, ""},
    {"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \xEF\xBB\xBF'su root' "
     "failed for lonvick on /dev/pts/8",
     0, SL_SYSLOG_5424, 4, 2, true, 1065910455003000LL, 3, 0, "mymachine.example.com", "su", NIL,
     "ID47", NIL, "'su root' failed for lonvick on /dev/pts/8"},
    /* Real SD (RFC 5424 §6.5 examples). */
    {"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 "
     "iut=\"3\" eventSource=\"Application\" eventID=\"1011\"] \xEF\xBB\xBF"
     "An application event log entry...",
     0, SL_SYSLOG_5424, 20, 5, true, 1065910455003000LL, 3, 0, "mymachine.example.com",
     "evntslog", NIL, "ID47",
     "[exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"]",
     "An application event log entry..."},
    {"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 "
     "iut=\"3\"][examplePriority@32473 class=\"high\"]",
     0, SL_SYSLOG_5424, 20, 5, true, 1065910455003000LL, 3, 0, "mymachine.example.com",
     "evntslog", NIL, "ID47", "[exampleSDID@32473 iut=\"3\"][examplePriority@32473 class=\"high\"]",
     ""},
    {"<13>1 2026-11-21T10:00:00Z h a p m [timeQuality tzKnown=\"1\"] x", 0, SL_SYSLOG_5424, 1, 5,
     true, T_2026 * 1000000, 0, 0, "h", "a", "p", "m", "[timeQuality tzKnown=\"1\"]", "x"},
    {"<13>1 2026-11-21T10:00:00Z h a p m [meta][origin ip=\"1.2.3.4\"] x", 0, SL_SYSLOG_5424, 1,
     5, true, T_2026 * 1000000, 0, 0, "h", "a", "p", "m", "[meta][origin ip=\"1.2.3.4\"]", "x"},
    /* Escaped '"' and ']' inside a PARAM-VALUE, and an escaped backslash before '"'. */
    {"<13>1 2026-11-21T10:00:00Z h a p m [a@1 x=\"q\\\"]z\" y=\"\\\\\"] x", 0, SL_SYSLOG_5424, 1,
     5, true, T_2026 * 1000000, 0, 0, "h", "a", "p", "m", "[a@1 x=\"q\\\"]z\" y=\"\\\\\"]", "x"},
    /* SD-ID longer than 32 characters is not SD. */
    {"<13>1 2026-11-21T10:00:00Z h a p - [abcdefghijklmnopqrstuvwxyz@1234567] x", 0,
     SL_SYSLOG_HEROKU, 1, 5, true, T_2026 * 1000000, 0, 0, "h", "a", "p", NIL, NIL,
     "[abcdefghijklmnopqrstuvwxyz@1234567] x"},
    /* NILVALUE everywhere. */
    {"<0>1 - - - - - - msg", 0, SL_SYSLOG_5424, 0, 0, false, 0, 0, 0, NIL, NIL, NIL, NIL, NIL,
     "msg"},
    {"<191>1 2026-11-21T05:00:00.5-05:00 h a p - m", 0, SL_SYSLOG_HEROKU, 23, 7, true,
     T_2026 * 1000000 + 500000, 1, -300, "h", "a", "p", NIL, NIL, "m"},
    /* syslog+TLS form: drain token as hostname, trailing newline already stripped. */
    {"<190>1 2026-11-21T10:00:00.078581+00:00 d.fc6b856b-3332-4546-93de-7d0ee272c3bd app web.1 "
     "- - line",
     0, SL_SYSLOG_5424, 23, 6, true, T_2026 * 1000000 + 78581, 6, 0,
     "d.fc6b856b-3332-4546-93de-7d0ee272c3bd", "app", "web.1", NIL, NIL, "line"},
    /* RFC 3164 (no reference time: the year is unknown, so has_ts is false). */
    {"<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8", 0,
     SL_SYSLOG_3164, 4, 2, false, 0, 0, 0, "mymachine", "su", NIL, NIL, NIL,
     "'su root' failed for lonvick on /dev/pts/8"},
    {"<13>Feb  5 17:32:18 10.0.0.99 myprog[1234]: hello", 0, SL_SYSLOG_3164, 1, 5, false, 0, 0, 0,
     "10.0.0.99", "myprog", "1234", NIL, NIL, "hello"},
    {"<13>Oct 11 22:14:15 su: hi", 0, SL_SYSLOG_3164, 1, 5, false, 0, 0, 0, NIL, "su", NIL, NIL,
     NIL, "hi"},
    {"<13>just some text", 0, SL_SYSLOG_3164, 1, 5, false, 0, 0, 0, NIL, NIL, NIL, NIL, NIL,
     "just some text"},
    {"<13>2026-11-21T10:00:00Z myhost app[5]: x", 0, SL_SYSLOG_3164, 1, 5, true,
     T_2026 * 1000000, 0, 0, "myhost", "app", "5", NIL, NIL, "x"},
    {"<13>", 0, SL_SYSLOG_3164, 1, 5, false, 0, 0, 0, NIL, NIL, NIL, NIL, NIL, ""},
    /* Not syslog. */
    {.in = "", .rc = SL_EPARSE},
    {.in = "just some text that is not syslog at all", .rc = SL_EPARSE},
    {.in = "<1", .rc = SL_EPARSE},
    {.in = "<>1 2026-11-21T10:00:00Z h a p - m", .rc = SL_EPARSE},
    {.in = "<192>1 2026-11-21T10:00:00Z h a p - m", .rc = SL_EPARSE},
    {.in = "<1900>1 2026-11-21T10:00:00Z h a p - m", .rc = SL_EPARSE},
    {.in = "<13x>1 2026-11-21T10:00:00Z h a p - m", .rc = SL_EPARSE},
    {.in = "<190>1 2026-13-01T10:00:00Z h a p - m", .rc = SL_EPARSE},
    {.in = "<190>1 2026-11-21T10:00:00 h a p - m", .rc = SL_EPARSE},
    {.in = "<190>1 garbage", .rc = SL_EPARSE},
    {.in = "<190>1 2026-11-21T10:00:00Z", .rc = SL_EPARSE},
    {.in = "<190>1 2026-11-21T10:00:00Z h a p", .rc = SL_EPARSE},
    {.in = "<190>1 2026-11-21T10:00:00Z h  a p - m", .rc = SL_EPARSE},
    {.in = "<190>1  2026-11-21T10:00:00Z h a p - m", .rc = SL_EPARSE},
};

static void check_slice(size_t row, const char *field, struct sl_str got, const char *want)
{
    if (strcmp(want, NIL) == 0) {
        if (got.p != NULL || got.len != 0)
            fail_msg("row %zu: %s \"%.*s\", want NULL", row, field, (int)got.len, got.p);
        return;
    }
    if (got.p == NULL)
        fail_msg("row %zu: %s NULL, want \"%s\"", row, field, want);
    if (got.len != strlen(want) || memcmp(got.p, want, got.len) != 0)
        fail_msg("row %zu: %s \"%.*s\", want \"%s\"", row, field, (int)got.len, got.p, want);
}

static void test_parse_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
        const struct parse_case *c = &parse_cases[i];
        struct sl_syslog s;
        const char *why = NULL;
        size_t len = strlen(c->in);
        /* exact-size copy so ASan sees any read past the end */
        char *b = malloc(len ? len : 1);
        int rc;

        assert_non_null(b);
        memcpy(b, c->in, len);
        rc = sl_syslog_parse(b, len, &s, &why);
        if (rc != c->rc)
            fail_msg("row %zu \"%s\": rc %d (%s), want %d", i, c->in, rc, why ? why : "-", c->rc);
        if (rc != 0) {
            if (why == NULL || why[0] == '\0')
                fail_msg("row %zu: no reason given", i);
            free(b);
            continue;
        }
        if (s.form != c->form || s.facility != c->fac || s.severity != c->sev)
            fail_msg("row %zu: form %d fac %d sev %d, want %d %d %d", i, (int)s.form,
                     s.facility, s.severity, (int)c->form, c->fac, c->sev);
        if (s.has_ts != c->has_ts)
            fail_msg("row %zu: has_ts %d", i, (int)s.has_ts);
        if (c->has_ts && (s.ts_us != c->ts_us || s.ts_frac_digits != c->frac ||
                          s.ts_offset_min != c->off))
            fail_msg("row %zu: ts %lld/%d/%d, want %lld/%d/%d", i, (long long)s.ts_us,
                     s.ts_frac_digits, s.ts_offset_min, (long long)c->ts_us, c->frac, c->off);
        check_slice(i, "hostname", s.hostname, c->host);
        check_slice(i, "app_name", s.app_name, c->app);
        check_slice(i, "procid", s.procid, c->proc);
        check_slice(i, "msgid", s.msgid, c->msgid);
        check_slice(i, "sd", s.sd, c->sd);
        check_slice(i, "msg", s.msg, c->msg);
        free(b);
    }
}

static void test_parse_null_why(void **state)
{
    struct sl_syslog s;

    (void)state;
    /* why may be NULL */
    assert_int_equal(sl_syslog_parse("nope", 4, &s, NULL), SL_EPARSE);
    assert_int_equal(sl_syslog_parse("<13>x", 5, &s, NULL), 0);
}

static void test_parse_nul_and_bytes(void **state)
{
    static const char in[] = "<190>1 2026-11-21T10:00:00Z h a p - bad \xff\xfe here \0 after";
    struct sl_syslog s;
    const char *why;

    (void)state;
    assert_int_equal(sl_syslog_parse(in, sizeof(in) - 1, &s, &why), 0);
    assert_int_equal(s.form, SL_SYSLOG_HEROKU);
    assert_int_equal(s.msg.len, strlen("bad \xff\xfe here ") + 7);
    assert_memory_equal(s.msg.p + s.msg.len - 7, "\0 after", 7);
}

/* Every prefix of a valid message parses or fails cleanly and stays in bounds. */
static void test_parse_prefixes(void **state)
{
    static const char *const ins[] = {
        "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 "
        "[exampleSDID@32473 iut=\"3\" eventSource=\"App\\\"]\"] \xEF\xBB\xBFmsg",
        "<13>Feb  5 17:32:18 10.0.0.99 myprog[1234]: hello",
    };

    (void)state;
    for (size_t k = 0; k < 2; k++) {
        size_t full = strlen(ins[k]);

        for (size_t n = 0; n <= full; n++) {
            char *b = malloc(n ? n : 1);
            struct sl_syslog s;
            const char *why;
            int rc;

            assert_non_null(b);
            memcpy(b, ins[k], n);
            rc = sl_syslog_parse(b, n, &s, &why);
            assert_true(rc == 0 || rc == SL_EPARSE);
            if (rc == 0) {
                const struct sl_str *f[] = {&s.hostname, &s.app_name, &s.procid, &s.msgid,
                                            &s.sd, &s.msg};
                for (size_t j = 0; j < 6; j++)
                    assert_true(f[j]->p == NULL ||
                                (f[j]->p >= b && f[j]->p + f[j]->len <= b + n));
            }
            free(b);
        }
    }
}

/* ---- RFC 3164 with a reference time -------------------------------------------- */

static void test_parse_ref(void **state)
{
    static const struct {
        const char *in;
        int64_t ref_s;
        bool has_ts;
        int64_t ts_s;
    } cases[] = {
        {"<34>Oct 11 22:14:15 mymachine su: x", 1065960000LL, true, 1065910455LL},
        /* December line received on 2 January belongs to the year before. */
        {"<13>Dec 28 08:00:00 h t: x", 1767312000LL, true, 1766908800LL},
        /* January line received a second before the new year (sender clock ahead). */
        {"<13>Jan  1 00:00:00 h t: x", 1735689599LL, true, 1735689600LL},
        /* More than a month ahead of the reference: last year's line. */
        {"<13>Mar  1 00:00:00 h t: x", 1768435200LL, true, 1740787200LL},
        /* Up to a month ahead (clock skew): this year. */
        {"<13>Feb  1 00:00:00 h t: x", 1768435200LL, true, 1769904000LL},
        /* Feb 29 in a year that has none: no timestamp, but still parsed. */
        {"<13>Feb 29 00:00:00 h t: x", 1772712000LL, false, 0},
        /* An RFC 3339 stamp does not need the reference. */
        {"<13>2026-11-21T10:00:00Z h t: x", 0, true, T_2026},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sl_syslog s;
        const char *why;

        assert_int_equal(sl_syslog_parse_ref(cases[i].in, strlen(cases[i].in),
                                             cases[i].ref_s * 1000000, &s, &why),
                         0);
        assert_int_equal(s.form, SL_SYSLOG_3164);
        if (s.has_ts != cases[i].has_ts)
            fail_msg("row %zu: has_ts %d", i, (int)s.has_ts);
        if (s.has_ts && s.ts_us != cases[i].ts_s * 1000000)
            fail_msg("row %zu: ts %lld, want %lld", i, (long long)s.ts_us,
                     (long long)cases[i].ts_s * 1000000);
        assert_true(sl_str_eq(s.hostname, i == 0 ? "mymachine" : "h"));
        assert_true(sl_str_eq(s.msg, "x"));
    }
}

/* ---- sl_rfc3339_parse ---------------------------------------------------------- */

static void test_rfc3339_table(void **state)
{
    static const struct {
        const char *in;
        int rc;
        int64_t us;
        int frac, off;
    } cases[] = {
        {"1970-01-01T00:00:00Z", 0, 0, 0, 0},
        {"1969-12-31T23:59:59Z", 0, -1000000, 0, 0},
        {"2000-02-29T23:59:59.999999+00:00", 0, 951868799999999LL, 6, 0},
        {"2026-11-21T10:00:00.078581+00:00", 0, T_2026 * 1000000 + 78581, 6, 0},
        {"2026-11-21T10:00:00.123456789Z", 0, T_2026 * 1000000 + 123456, 9, 0},
        {"2026-11-21T10:00:00.1Z", 0, T_2026 * 1000000 + 100000, 1, 0},
        {"2026-11-21T11:30:00+01:30", 0, T_2026 * 1000000, 0, 90},
        {"2026-11-21T00:00:00-10:00", 0, T_2026 * 1000000, 0, -600},
        {"2026-11-21t10:00:00z", 0, T_2026 * 1000000, 0, 0},
        {"2026-11-21T10:00:60Z", 0, (T_2026 + 60) * 1000000, 0, 0},
        {"2024-12-31T23:59:59Z", 0, 1735689599000000LL, 0, 0},
        {"2001-02-29T00:00:00Z", SL_EPARSE, 0, 0, 0},
        {"2026-04-31T00:00:00Z", SL_EPARSE, 0, 0, 0},
        {"2026-00-10T00:00:00Z", SL_EPARSE, 0, 0, 0},
        {"2026-11-00T00:00:00Z", SL_EPARSE, 0, 0, 0},
        {"2026-11-21T24:00:00Z", SL_EPARSE, 0, 0, 0},
        {"2026-11-21T10:60:00Z", SL_EPARSE, 0, 0, 0},
        {"2026-11-21T10:00:61Z", SL_EPARSE, 0, 0, 0},
        {"2026-11-21T10:00:00.1234567890Z", SL_EPARSE, 0, 0, 0},
        {"2026-11-21T10:00:00.Z", SL_EPARSE, 0, 0, 0},
        {"2026-11-21 10:00:00Z", SL_EPARSE, 0, 0, 0},
        {"2026-11-21T10:00:00", SL_EPARSE, 0, 0, 0},
        {"2026-11-21T10:00:00+0100", SL_EPARSE, 0, 0, 0},
        {"2026-11-21T10:00:00+01:00x", SL_EPARSE, 0, 0, 0},
        {"2026-11-21T10:00:00+24:00", SL_EPARSE, 0, 0, 0},
        {"2026-11-21T10:00:00+01:60", SL_EPARSE, 0, 0, 0},
        {"2026-11-21T10:00:00+01:", SL_EPARSE, 0, 0, 0},
        {"2026-11-21T10:00:00.5", SL_EPARSE, 0, 0, 0},
        {"20a6-11-21T10:00:00Z", SL_EPARSE, 0, 0, 0},
        {"-", SL_EPARSE, 0, 0, 0},
        {"", SL_EPARSE, 0, 0, 0},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t len = strlen(cases[i].in);
        char *b = malloc(len ? len : 1);
        int64_t us = 42;
        int frac = 42, off = 42, rc;

        assert_non_null(b);
        memcpy(b, cases[i].in, len);
        rc = sl_rfc3339_parse(b, len, &us, &frac, &off);
        if (rc != cases[i].rc)
            fail_msg("row %zu \"%s\": rc %d, want %d", i, cases[i].in, rc, cases[i].rc);
        if (rc == 0 && (us != cases[i].us || frac != cases[i].frac || off != cases[i].off))
            fail_msg("row %zu \"%s\": %lld/%d/%d, want %lld/%d/%d", i, cases[i].in,
                     (long long)us, frac, off, (long long)cases[i].us, cases[i].frac,
                     cases[i].off);
        free(b);
    }
}

/* ---- sl_heroku_loss_notice ----------------------------------------------------- */

static void test_loss_notice_table(void **state)
{
    static const struct {
        const char *in;
        long n;
        int code;
    } cases[] = {
        {"Error L10 (output buffer overflow): 12 messages dropped since "
         "2026-11-21T09:59:00+00:00.",
         12, 10},
        {"Error L10 (output buffer overflow): 1 message dropped since 2026-11-21T09:59:00+00:00.",
         1, 10},
        {"Error L10 (output buffer overflow): 0 messages dropped", 0, 10},
        {"Error L12 (Local buffer overflow): 30 messages dropped since 2026-11-21T09:59:00+00:00.",
         30, 12},
        {"Error L12 (Local buffer overflow) -> 30 messages dropped", 30, 12},
        {"Error L13 (Local delivery error): 7 messages lost since 2026-11-21T09:59:00+00:00.", 7,
         13},
        {"Error L10 (output buffer overflow): 9223372036854775807 messages dropped",
         9223372036854775807L, 10},
        {"Error L10 (output buffer overflow): 99999999999999999999 messages dropped", -1, 0},
        {"Error L11 (Tail buffer overflow): 5 messages dropped", -1, 0},
        {"Error L14 (certificate validation error): 5 messages dropped", -1, 0},
        {"Error L10 (output buffer overflow)", -1, 0},
        {"Error L10 (output buffer overflow): 12", -1, 0},
        {"Error L10 (output buffer overflow): 12 messages kept", -1, 0},
        {"Error L10 (output buffer overflow): many messages dropped", -1, 0},
        {"Error R14 (Memory quota exceeded)", -1, 0},
        {"error L10 (output buffer overflow): 12 messages dropped", -1, 0},
        {"Error L10 output buffer overflow: 12 messages dropped", -1, 0},
        {"Error L1", -1, 0},
        {"", -1, 0},
        /* log-shuttle's own notices: no parenthesised text (issue 12) */
        {"Error L12: 30 messages dropped since 2026-11-21T09:59:00+00:00.", 30, 12},
        {"Error L13: 7 messages lost since 2026-11-21T09:59:00+00:00.", 7, 13},
        {"Error L12: 1 message dropped since 2026-11-21T09:59:00+00:00.", 1, 12},
        {"Error L10: 4 messages dropped", 4, 10},
        /* near misses of that form */
        {"Error L12 30 messages dropped since 2026-11-21T09:59:00+00:00.", -1, 0},
        {"Error L12:30 messages dropped", 30, 12},
        {"Error L12: messages dropped", -1, 0},
        {"Error L12: 30 messages kept", -1, 0},
        {"Error L11: 30 messages dropped", -1, 0},
        {"Error L120: 30 messages dropped", -1, 0},
        {"Error L12:", -1, 0},
        {"Error L12", -1, 0},
        {"Error L12 Local buffer overflow: 30 messages dropped", -1, 0},
        {"Error L13 (Local delivery error: 7 messages lost", -1, 0},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t len = strlen(cases[i].in);
        char *b = malloc(len ? len : 1);
        int code = 0;
        long n;

        assert_non_null(b);
        memcpy(b, cases[i].in, len);
        n = sl_heroku_loss_notice(sl_str_make(b, len), &code);
        if (n != cases[i].n || (n >= 0 && code != cases[i].code))
            fail_msg("row %zu \"%s\": %ld code %d, want %ld code %d", i, cases[i].in, n, code,
                     cases[i].n, cases[i].code);
        free(b);
    }
    assert_int_equal(sl_heroku_loss_notice(SL_STR_NULL, NULL), -1);
}

/* ---- corpus ---------------------------------------------------------------------- */

static char *read_corpus(const char *name, size_t *len)
{
    const char *env = getenv("SLUICE_CORPUS");
    const char *root = env && *env ? env : "tests/fixtures/corpus";
    char path[4096];
    FILE *fp;
    char *b;
    long n = 0;

    snprintf(path, sizeof(path), "%s/logplex/%s", root, name);
    fp = fopen(path, "rb");
    if (fp == NULL) {
        /* SLUICE_CORPUS may name the logplex directory itself. */
        snprintf(path, sizeof(path), "%s/%s", root, name);
        fp = fopen(path, "rb");
    }
    if (fp == NULL)
        fail_msg("cannot open corpus file %s (set SLUICE_CORPUS)", name);
    if (fseek(fp, 0, SEEK_END) != 0 || (n = ftell(fp)) < 0 || fseek(fp, 0, SEEK_SET) != 0)
        fail_msg("cannot size %s", path);
    b = malloc((size_t)n + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    *len = (size_t)n;
    return b;
}

/* Frame #idx of a corpus file, parsed. */
static void corpus_msg(const char *name, int idx, char **body, struct sl_syslog *s)
{
    size_t len, off = 0;
    struct sl_frame f;
    const char *why = NULL;
    int rc;

    *body = read_corpus(name, &len);
    for (int i = 0; i <= idx; i++) {
        rc = sl_frame_next(*body + off, len - off, true, &f);
        assert_true(rc > 0);
        off += (size_t)rc;
    }
    assert_int_equal(f.kind, SL_FRAME_OK);
    if (sl_syslog_parse(f.msg.p, f.msg.len, s, &why) != 0)
        fail_msg("%s frame %d: %s", name, idx, why);
}

static void test_corpus(void **state)
{
    struct sl_syslog s;
    char *b;
    int code = 0;

    (void)state;
    corpus_msg("with-sd.logplex", 0, &b, &s);
    assert_int_equal(s.form, SL_SYSLOG_5424);
    assert_true(sl_str_eq(s.sd, "[exampleSDID@32473 iut=\"3\" eventSource=\"Application\"]"));
    assert_true(sl_str_eq(s.msg, "hello with SD"));
    assert_null(s.msgid.p);
    free(b);

    corpus_msg("strict-nil-sd.logplex", 0, &b, &s);
    assert_int_equal(s.form, SL_SYSLOG_5424);
    assert_null(s.sd.p);
    assert_true(sl_str_eq(s.msg, "hello with nil SD"));
    free(b);

    corpus_msg("no-fraction-ts.logplex", 0, &b, &s);
    assert_int_equal(s.form, SL_SYSLOG_HEROKU);
    assert_true(s.has_ts);
    assert_int_equal(s.ts_us, T_2026 * 1000000);
    assert_int_equal(s.ts_frac_digits, 0);
    assert_true(sl_str_eq(s.msg, "no fractional seconds"));
    free(b);

    corpus_msg("heroku-basic.logplex", 0, &b, &s);
    assert_int_equal(s.form, SL_SYSLOG_HEROKU);
    assert_true(sl_str_eq(s.app_name, "heroku"));
    assert_true(sl_str_eq(s.procid, "router"));
    assert_int_equal(s.facility, 19);
    assert_int_equal(sl_heroku_loss_notice(s.msg, &code), -1);
    free(b);

    corpus_msg("heroku-basic.logplex", 2, &b, &s);
    assert_int_equal(s.facility, 21);
    assert_int_equal(s.severity, 4);
    assert_true(sl_str_eq(s.procid, "logplex"));
    assert_int_equal(sl_heroku_loss_notice(s.msg, &code), 1);
    assert_int_equal(code, 10);
    free(b);

    corpus_msg("max-size-message.logplex", 0, &b, &s);
    assert_int_equal(s.msg.len, 10058 - 1 - strlen("<190>1 2026-11-21T10:00:00.000000+00:00 "
                                                   "host app web.1 - "));
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_table),   cmocka_unit_test(test_parse_null_why),
        cmocka_unit_test(test_parse_nul_and_bytes), cmocka_unit_test(test_parse_prefixes),
        cmocka_unit_test(test_parse_ref),     cmocka_unit_test(test_rfc3339_table),
        cmocka_unit_test(test_loss_notice_table), cmocka_unit_test(test_corpus),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
