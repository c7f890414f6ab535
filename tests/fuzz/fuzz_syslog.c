/* libFuzzer target for drain/rfc5424.c (sl_syslog_parse, sl_syslog_parse_ref,
 * sl_rfc3339_parse, sl_heroku_loss_notice).
 *
 *   make fuzz        (builds build-fuzz/fuzz_syslog, runs it with tests/fuzz/seeds/syslog)
 *
 * The input is one frame's bytes, given as an exact-size heap copy so ASan sees any
 * read past the end. Checks: slices lie inside the input or are NULL, fields are in
 * range, the header fields hold no SP, and every accepted RFC 3339 stamp agrees with
 * timegm(3) on the same fields. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sluice/err.h"
#include "sluice/rfc5424.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                           \
    do {                                                                                   \
        if (!(x))                                                                          \
            abort();                                                                       \
    } while (0)

static void check_slice(struct sl_str s, const char *buf, size_t len)
{
    if (s.p == NULL) {
        CHECK(s.len == 0);
        return;
    }
    CHECK(s.p >= buf && s.len <= len && (size_t)(s.p - buf) <= len - s.len);
}

static void check_field(struct sl_str s, const char *buf, size_t len)
{
    check_slice(s, buf, len);
    if (s.p != NULL)
        CHECK(s.len > 0 && memchr(s.p, ' ', s.len) == NULL);
}

static int dig(const char *p)
{
    return (p[0] - '0') * 10 + (p[1] - '0');
}

/* Oracle for an accepted stamp: the same fields through timegm(3). */
static void check_rfc3339(const char *b, size_t len, int64_t us, int frac, int off)
{
    struct tm tm;
    int64_t frac_us = 0, secs;
    size_t i = 20;

    CHECK(len >= 20 && frac >= 0 && frac <= 9 && off > -24 * 60 && off < 24 * 60);
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = dig(b) * 100 + dig(b + 2) - 1900;
    tm.tm_mon = dig(b + 5) - 1;
    tm.tm_mday = dig(b + 8);
    tm.tm_hour = dig(b + 11);
    tm.tm_min = dig(b + 14);
    tm.tm_sec = dig(b + 17);
    secs = (int64_t)timegm(&tm);
    if (frac > 0) {
        for (int k = 0; k < 6; k++)
            frac_us = frac_us * 10 + (k < frac ? b[i + (size_t)k] - '0' : 0);
    }
    CHECK(us == (secs - (int64_t)off * 60) * 1000000 + frac_us);
}

static void check_syslog(const char *b, size_t len, const struct sl_syslog *s)
{
    CHECK(s->form == SL_SYSLOG_5424 || s->form == SL_SYSLOG_HEROKU || s->form == SL_SYSLOG_3164);
    CHECK(s->facility >= 0 && s->facility <= 23 && s->severity >= 0 && s->severity <= 7);
    if (s->has_ts)
        CHECK(s->ts_frac_digits >= 0 && s->ts_frac_digits <= 9 && s->ts_offset_min > -1440 &&
              s->ts_offset_min < 1440);
    check_field(s->hostname, b, len);
    check_field(s->app_name, b, len);
    check_field(s->procid, b, len);
    check_field(s->msgid, b, len);
    check_slice(s->sd, b, len);
    check_slice(s->msg, b, len);
    CHECK(s->msg.p != NULL);
    if (s->sd.p != NULL)
        CHECK(s->form == SL_SYSLOG_5424 && s->sd.len >= 2 && s->sd.p[0] == '[' &&
              s->sd.p[s->sd.len - 1] == ']');
    if (s->form != SL_SYSLOG_3164)
        CHECK(len >= 2 && b[0] == '<');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *b = malloc(size ? size : 1);
    struct sl_syslog s;
    const char *why = NULL;
    int64_t us;
    int frac, off, code = 0, rc;
    long n;

    CHECK(b != NULL);
    memcpy(b, data, size);

    rc = sl_syslog_parse(b, size, &s, &why);
    CHECK(rc == 0 || rc == SL_EPARSE);
    if (rc == 0) {
        check_syslog(b, size, &s);
        n = sl_heroku_loss_notice(s.msg, &code);
        CHECK(n == -1 || (n >= 0 && (code == 10 || code == 12 || code == 13)));
    } else {
        CHECK(why != NULL && why[0] != '\0');
    }

    /* With a reference time (taken from the input) the result only gains a stamp. */
    {
        struct sl_syslog s2;
        int64_t ref = 0;

        for (size_t i = 0; i < size && i < 5; i++)
            ref = ref * 256 + data[i];
        rc = sl_syslog_parse_ref(b, size, ref * 1000, &s2, &why);
        CHECK(rc == (sl_syslog_parse(b, size, &s, NULL)));
        if (rc == 0) {
            check_syslog(b, size, &s2);
            CHECK(s2.form == s.form && s2.msg.p == s.msg.p && s2.msg.len == s.msg.len);
            CHECK(s2.hostname.p == s.hostname.p && s2.app_name.p == s.app_name.p);
            CHECK(!s.has_ts || (s2.has_ts && s2.ts_us == s.ts_us));
        }
    }

    /* The whole input as a timestamp. */
    if (sl_rfc3339_parse(b, size, &us, &frac, &off) == 0)
        check_rfc3339(b, size, us, frac, off);

    /* The whole input as a notice. */
    n = sl_heroku_loss_notice(sl_str_make(b, size), &code);
    CHECK(n == -1 || (n >= 0 && (code == 10 || code == 12 || code == 13)));

    free(b);
    return 0;
}
