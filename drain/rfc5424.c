/* Syslog message parser: splits one frame's bytes into PRI, timestamp, header fields,
 * STRUCTURED-DATA and MSG. RFC 5424 in three shapes (strict with "-" SD, with real SD,
 * and Heroku's logplex form with no SD field at all), RFC 3164 (BSD) as a fallback,
 * RFC 3339 timestamps to microseconds UTC, and the senders' loss notices (logplex's and
 * log-shuttle's L10/L12/L13).
 *
 * Leaves to others: framing (frame.c), decoding SD-PARAM escapes, UTF-8 validation,
 * what a message means (search compiles logfmt fields to SQL: query.c), storing
 * unparsable frames raw.
 * Thread: pure functions, any thread. No I/O, no allocation, no global state; results
 * point into the caller's buffer.
 * Spec: RFC 5424 §6 (header, §6.2.3 timestamp, §6.3 SD), RFC 3339 §5.6, RFC 3164 §4.1,
 * Heroku logplex drain format (shared/reference/heroku-drains.md). Contract in
 * include/sluice/rfc5424.h.
 *
 * The header split is memchr per field plus a hand-rolled timestamp reader: no
 * per-byte function calls. */
#include <limits.h>
#include <string.h>

#include "sluice/err.h"
#include "sluice/rfc5424.h"
#include "sluice/str.h"

#define SD_NAME_MAX 32 /* RFC 5424 §6.3.2, §6.3.3 */

/* Two ASCII digits at b[0..1] (caller checked the bound), or -1. */
static inline int two_digits(const char *b)
{
    unsigned char a = (unsigned char)b[0], c = (unsigned char)b[1];

    if (!sl_ascii_digit(a) || !sl_ascii_digit(c))
        return -1;
    return (a - '0') * 10 + (c - '0');
}

static inline bool is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

    return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

/* Days since 1970-01-01 of a proleptic Gregorian date, years 0..9999 (H. Hinnant's
 * days_from_civil, shifted by one 400-year era so every term is unsigned). */
static int64_t days_from_civil(int y, int m, int d)
{
    uint32_t yy = (uint32_t)(y + 400) - (m <= 2);
    uint32_t era = yy / 400;
    uint32_t yoe = yy - era * 400;
    uint32_t doy = (153u * (uint32_t)(m > 2 ? m - 3 : m + 9) + 2) / 5 + (uint32_t)d - 1;
    uint32_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

    return (int64_t)era * 146097 + (int64_t)doe - 719468 - 146097;
}

static int64_t to_us(int y, int mo, int d, int h, int mi, int s)
{
    int64_t days = days_from_civil(y, mo, d);

    return ((days * 86400) + (int64_t)h * 3600 + (int64_t)mi * 60 + s) * 1000000;
}

/* Value of the digit at b[i], or sets *bad. Branch-free so a whole stamp is checked
 * with one test at the end. */
#define DIG(b, i, bad) ((*(bad) |= (unsigned)((unsigned char)(b)[i] - '0') > 9), ((b)[i] - '0'))

/* FULL-DATE "T" FULL-TIME; 'T' and 'Z' also accepted in lower case (RFC 3339 §5.6 NOTE).
 * Seconds 60 (a leap second) is accepted and lands on the next minute's :00. */
int sl_rfc3339_parse(const char *buf, size_t len, int64_t *us, int *frac_digits,
                     int *offset_min)
{
    int y, mo, d, h, mi, s, oh, om, off, fd = 0;
    int64_t frac_us = 0, t;
    unsigned bad = 0;
    size_t i;

    /* "YYYY-MM-DDThh:mm:ss" is 19 bytes, plus at least "Z". */
    if (buf == NULL || len < 20)
        return SL_EPARSE;
    if (buf[4] != '-' || buf[7] != '-' || (buf[10] != 'T' && buf[10] != 't') ||
        buf[13] != ':' || buf[16] != ':')
        return SL_EPARSE;
    y = DIG(buf, 0, &bad) * 1000 + DIG(buf, 1, &bad) * 100 + DIG(buf, 2, &bad) * 10 +
        DIG(buf, 3, &bad);
    mo = DIG(buf, 5, &bad) * 10 + DIG(buf, 6, &bad);
    d = DIG(buf, 8, &bad) * 10 + DIG(buf, 9, &bad);
    h = DIG(buf, 11, &bad) * 10 + DIG(buf, 12, &bad);
    mi = DIG(buf, 14, &bad) * 10 + DIG(buf, 15, &bad);
    s = DIG(buf, 17, &bad) * 10 + DIG(buf, 18, &bad);
    if (bad || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || s > 60)
        return SL_EPARSE;
    if (d > days_in_month(y, mo))
        return SL_EPARSE;
    i = 19;
    if (buf[i] == '.') {
        i++;
        while (i < len && sl_ascii_digit((unsigned char)buf[i])) {
            if (fd >= 9)
                return SL_EPARSE;
            if (fd < 6)
                frac_us = frac_us * 10 + (buf[i] - '0');
            fd++;
            i++;
        }
        if (fd == 0)
            return SL_EPARSE;
        for (int k = fd; k < 6; k++)
            frac_us *= 10;
    }
    if (i >= len)
        return SL_EPARSE;
    if (buf[i] == 'Z' || buf[i] == 'z') {
        off = 0;
        i++;
    } else if (buf[i] == '+' || buf[i] == '-') {
        if (len - i < 6 || buf[i + 3] != ':')
            return SL_EPARSE;
        oh = DIG(buf, i + 1, &bad) * 10 + DIG(buf, i + 2, &bad);
        om = DIG(buf, i + 4, &bad) * 10 + DIG(buf, i + 5, &bad);
        if (bad || oh > 23 || om > 59)
            return SL_EPARSE;
        off = oh * 60 + om;
        if (buf[i] == '-')
            off = -off;
        i += 6;
    } else {
        return SL_EPARSE;
    }
    if (i != len)
        return SL_EPARSE;
    t = to_us(y, mo, d, h, mi, s) - (int64_t)off * 60 * 1000000 + frac_us;
    if (us != NULL)
        *us = t;
    if (frac_digits != NULL)
        *frac_digits = fd;
    if (offset_min != NULL)
        *offset_min = off;
    return 0;
}

/* ---- RFC 5424 header --------------------------------------------------------- */

/* Next SP-terminated header field starting at *i. Fails on an empty field or when no
 * SP follows (unless last, where the field may run to the end). */
static int next_field(const char *buf, size_t len, size_t *i, struct sl_str *field, bool last)
{
    const char *sp;
    size_t start = *i;

    if (start >= len)
        return SL_EPARSE;
    sp = memchr(buf + start, ' ', len - start);
    if (sp == NULL) {
        if (!last)
            return SL_EPARSE;
        *field = sl_str_make(buf + start, len - start);
        *i = len;
        return 0;
    }
    if ((size_t)(sp - buf) == start)
        return SL_EPARSE;
    *field = sl_str_make(buf + start, (size_t)(sp - buf) - start);
    *i = (size_t)(sp - buf) + 1;
    return 0;
}

static inline struct sl_str nil_to_null(struct sl_str s)
{
    if (s.len == 1 && s.p[0] == '-')
        return SL_STR_NULL;
    return s;
}

static inline bool sd_name_char(unsigned char c)
{
    return c > 32 && c < 127 && c != '=' && c != ']' && c != '"';
}

/* The end of an SD-NAME (1 to 32 name bytes) starting at buf[start], or 0 when there is
 * none there (RFC 5424 §6.3.2, §6.3.3). */
static size_t sd_name_end(const char *buf, size_t len, size_t start)
{
    size_t i = start;

    while (i < len && sd_name_char((unsigned char)buf[i]))
        i++;
    return i == start || i - start > SD_NAME_MAX ? 0 : i;
}

/* Length of the SD-ELEMENTs at buf[0..len) (stops before the first byte that does not
 * begin another element), or 0 if they do not parse. *first_id gets the first SD-ID. */
static size_t sd_scan(const char *buf, size_t len, struct sl_str *first_id)
{
    size_t i = 0;
    bool first = true;

    while (i < len && buf[i] == '[') {
        size_t start;

        start = ++i;
        if ((i = sd_name_end(buf, len, start)) == 0)
            return 0;
        if (first) {
            *first_id = sl_str_make(buf + start, i - start);
            first = false;
        }
        for (;;) {
            if (i >= len)
                return 0;
            if (buf[i] == ']') {
                i++;
                break;
            }
            if (buf[i] != ' ')
                return 0;
            if ((i = sd_name_end(buf, len, i + 1)) == 0)
                return 0;
            if (i + 1 >= len || buf[i] != '=' || buf[i + 1] != '"')
                return 0;
            i += 2;
            /* PARAM-VALUE up to the first '"' not escaped by '\'. */
            for (;;) {
                const char *q = memchr(buf + i, '"', len - i);
                size_t j, bs = 0;

                if (q == NULL)
                    return 0;
                j = (size_t)(q - buf);
                while (j - bs > i && buf[j - bs - 1] == '\\')
                    bs++;
                i = j + 1;
                if (bs % 2 == 0)
                    break;
            }
        }
    }
    return first ? 0 : i;
}

static bool sd_id_accepted(struct sl_str id)
{
    if (memchr(id.p, '@', id.len) != NULL)
        return true;
    return sl_str_eq(id, "timeQuality") || sl_str_eq(id, "origin") || sl_str_eq(id, "meta");
}

static struct sl_str strip_bom(const char *p, size_t len)
{
    if (len >= 3 && (unsigned char)p[0] == 0xEF && (unsigned char)p[1] == 0xBB &&
        (unsigned char)p[2] == 0xBF)
        return sl_str_make(p + 3, len - 3);
    return sl_str_make(p, len);
}

static int parse_5424(const char *buf, size_t len, size_t i, struct sl_syslog *out,
                      const char **why)
{
    struct sl_str ts, host, app, proc, msgid;
    const char *rest;
    size_t rlen;

    if (next_field(buf, len, &i, &ts, false)) {
        *why = "bad header";
        return SL_EPARSE;
    }
    if (ts.len == 1 && ts.p[0] == '-') {
        out->has_ts = false;
    } else if (sl_rfc3339_parse(ts.p, ts.len, &out->ts_us, &out->ts_frac_digits,
                                &out->ts_offset_min) == 0) {
        out->has_ts = true;
    } else {
        *why = "bad timestamp";
        return SL_EPARSE;
    }
    if (next_field(buf, len, &i, &host, false) || next_field(buf, len, &i, &app, false) ||
        next_field(buf, len, &i, &proc, false) || next_field(buf, len, &i, &msgid, true)) {
        *why = "bad header";
        return SL_EPARSE;
    }
    out->hostname = nil_to_null(host);
    out->app_name = nil_to_null(app);
    out->procid = nil_to_null(proc);
    out->msgid = nil_to_null(msgid);

    rest = buf + i;
    rlen = len - i;
    if (rlen == 0) {
        /* Header only: no SD and no MSG. */
        out->form = SL_SYSLOG_HEROKU;
        out->msg = sl_str_make(rest, 0);
        return 0;
    }
    if (rest[0] == '-' && (rlen == 1 || rest[1] == ' ')) {
        out->form = SL_SYSLOG_5424;
        out->msg = rlen > 2 ? strip_bom(rest + 2, rlen - 2) : sl_str_make(rest + rlen, 0);
        return 0;
    }
    if (rest[0] == '[') {
        struct sl_str id = SL_STR_NULL;
        size_t n = sd_scan(rest, rlen, &id);

        if (n > 0 && (n == rlen || rest[n] == ' ') && sd_id_accepted(id)) {
            out->form = SL_SYSLOG_5424;
            out->sd = sl_str_make(rest, n);
            out->msg = n + 1 < rlen ? strip_bom(rest + n + 1, rlen - n - 1)
                                    : sl_str_make(rest + rlen, 0);
            return 0;
        }
    }
    out->form = SL_SYSLOG_HEROKU;
    out->msg = strip_bom(rest, rlen);
    return 0;
}

/* ---- RFC 3164 ------------------------------------------------------------------ */

static int month_index(const char *p)
{
    static const char names[] = "JanFebMarAprMayJunJulAugSepOctNovDec";

    for (int m = 0; m < 12; m++) {
        if (p[0] == names[m * 3] && p[1] == names[m * 3 + 1] && p[2] == names[m * 3 + 2])
            return m + 1;
    }
    return 0;
}

/* "Mmm dd hh:mm:ss" (day space-padded or zero-padded) at buf[0..15). */
static bool bsd_stamp(const char *buf, size_t len, int *mo, int *d, int *h, int *mi, int *s)
{
    int dd;

    if (len < 15 || buf[3] != ' ' || buf[6] != ' ' || buf[9] != ':' || buf[12] != ':')
        return false;
    *mo = month_index(buf);
    if (*mo == 0)
        return false;
    if (buf[4] == ' ' && sl_ascii_digit((unsigned char)buf[5]))
        dd = buf[5] - '0';
    else
        dd = two_digits(buf + 4);
    *d = dd;
    *h = two_digits(buf + 7);
    *mi = two_digits(buf + 10);
    *s = two_digits(buf + 13);
    return dd >= 1 && dd <= 31 && *h >= 0 && *h <= 23 && *mi >= 0 && *mi <= 59 && *s >= 0 &&
           *s <= 60;
}

/* Which year puts month/day closest before (or at most a month after) ref. */
static int guess_year(int64_t ref_us, int mo)
{
    int64_t days = ref_us / 86400000000LL;
    /* civil_from_days, year and month only */
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int rm = (int)(mp < 10 ? mp + 3 : mp - 9);
    int ry = (int)(yoe + era * 400 + (rm <= 2));

    if (mo > rm + 1)
        return ry - 1; /* December stamps received in January */
    if (mo < rm - 10)
        return ry + 1; /* January stamps received late in December, clock skew */
    return ry;
}

static void parse_3164(const char *buf, size_t len, size_t i, bool have_ref, int64_t ref_us,
                       struct sl_syslog *out)
{
    int mo, d, h, mi, s;
    bool stamped = false;

    out->form = SL_SYSLOG_3164;
    /* Some relays (rsyslog's forward format) put an RFC 3339 stamp here instead. */
    if (i < len && sl_ascii_digit((unsigned char)buf[i])) {
        const char *sp = memchr(buf + i, ' ', len - i);
        size_t tl = sp != NULL ? (size_t)(sp - buf) - i : len - i;

        if (sl_rfc3339_parse(buf + i, tl, &out->ts_us, &out->ts_frac_digits,
                             &out->ts_offset_min) == 0) {
            out->has_ts = true;
            stamped = true;
            i += tl;
        }
    } else if (bsd_stamp(buf + i, len - i, &mo, &d, &h, &mi, &s)) {
        stamped = true;
        i += 15;
        if (have_ref) {
            int y = guess_year(ref_us, mo);

            if (d <= days_in_month(y, mo)) {
                out->ts_us = to_us(y, mo, d, h, mi, s);
                out->has_ts = true;
            }
        }
    }
    if (stamped) {
        /* HOSTNAME: a word followed by SP that is not itself "TAG:" or "TAG[PID]..." */
        const char *sp;

        if (i < len && buf[i] == ' ')
            i++;
        sp = i < len ? memchr(buf + i, ' ', len - i) : NULL;
        if (sp != NULL && (size_t)(sp - buf) > i) {
            size_t wl = (size_t)(sp - buf) - i;

            if (buf[i + wl - 1] != ':' && memchr(buf + i, '[', wl) == NULL) {
                out->hostname = sl_str_make(buf + i, wl);
                i += wl + 1;
            }
        }
    }
    /* TAG[PID]: or TAG: */
    {
        size_t t = i;

        while (t < len && t - i <= 48 && buf[t] != '[' && buf[t] != ':' && buf[t] != ' ')
            t++;
        if (t > i && t < len && t - i <= 48) {
            size_t tag_end = t;
            size_t pid_s = 0, pid_e = 0;

            if (buf[t] == '[') {
                const char *rb = memchr(buf + t, ']', len - t);

                if (rb != NULL && memchr(buf + t, ' ', (size_t)(rb - buf) - t) == NULL) {
                    pid_s = t + 1;
                    pid_e = (size_t)(rb - buf);
                    t = pid_e + 1;
                } else {
                    t = len; /* not a tag */
                }
            }
            if (t < len && buf[t] == ':') {
                out->app_name = sl_str_make(buf + i, tag_end - i);
                if (pid_e > pid_s)
                    out->procid = sl_str_make(buf + pid_s, pid_e - pid_s);
                i = t + 1;
                if (i < len && buf[i] == ' ')
                    i++;
            }
        }
    }
    out->msg = strip_bom(buf + i, len - i);
}

static int parse_any(const char *buf, size_t len, bool have_ref, int64_t ref_us,
                     struct sl_syslog *out, const char **why)
{
    const char *dummy;
    size_t i;
    int pri = 0;

    if (why == NULL)
        why = &dummy;
    *why = NULL;
    memset(out, 0, sizeof(*out));
    if (buf == NULL || len < 3 || buf[0] != '<') {
        *why = "no PRI";
        return SL_EPARSE;
    }
    for (i = 1; i < len && i <= 4 && sl_ascii_digit((unsigned char)buf[i]); i++)
        pri = pri * 10 + (buf[i] - '0');
    if (i == 1 || i > 4 || i >= len || buf[i] != '>' || pri > 191) {
        *why = "bad PRI";
        return SL_EPARSE;
    }
    out->facility = pri >> 3;
    out->severity = pri & 7;
    i++;

    /* VERSION SP (1-3 digits, first non-zero) selects RFC 5424. */
    if (i < len && buf[i] >= '1' && buf[i] <= '9') {
        size_t v = i + 1;

        while (v < len && v - i < 3 && sl_ascii_digit((unsigned char)buf[v]))
            v++;
        if (v < len && buf[v] == ' ')
            return parse_5424(buf, len, v + 1, out, why);
    }
    parse_3164(buf, len, i, have_ref, ref_us, out);
    return 0;
}

int sl_syslog_parse(const char *buf, size_t len, struct sl_syslog *out, const char **why)
{
    return parse_any(buf, len, false, 0, out, why);
}

int sl_syslog_parse_ref(const char *buf, size_t len, int64_t ref_us, struct sl_syslog *out,
                        const char **why)
{
    return parse_any(buf, len, true, ref_us, out, why);
}

/* ---- loss notices (logplex, log-shuttle) --------------------------------------- */

/* "Error L10 (output buffer overflow): 12 messages dropped since 2026-...". The text
 * between the code and the count varies by sender ("): ", ") -> "), and log-shuttle
 * writes none at all ("Error L12: 30 messages dropped since ..."), so the match is on the
 * code, then either a parenthesised reason or a colon right after it, the count and
 * "message(s) dropped|lost". */
long sl_heroku_loss_notice(struct sl_str msg, int *code)
{
    const char *p = msg.p;
    size_t len = msg.len, i;
    const char *rp;
    long n = 0;
    int c;

    if (p == NULL || len < 10 || memcmp(p, "Error L1", 8) != 0 ||
        !sl_ascii_digit((unsigned char)p[8]))
        return -1;
    c = 10 + (p[8] - '0');
    if (c != SL_HEROKU_L10 && c != SL_HEROKU_L12 && c != SL_HEROKU_L13)
        return -1;
    i = 9;
    if (p[i] == ':') {
        i++; /* log-shuttle: "Error L12: N messages dropped" */
    } else {
        if (p[i] != ' ' || i + 1 >= len || p[i + 1] != '(')
            return -1;
        i++;
        rp = memchr(p + i, ')', len - i);
        if (rp == NULL)
            return -1;
        i = (size_t)(rp - p) + 1;
    }
    while (i < len && (p[i] == ' ' || p[i] == ':' || p[i] == '-' || p[i] == '>'))
        i++;
    if (i >= len || !sl_ascii_digit((unsigned char)p[i]))
        return -1;
    while (i < len && sl_ascii_digit((unsigned char)p[i])) {
        int d = p[i] - '0';

        if (n > (LONG_MAX - d) / 10)
            return -1;
        n = n * 10 + d;
        i++;
    }
    if (len - i < 8 || memcmp(p + i, " message", 8) != 0)
        return -1;
    i += 8;
    if (i < len && p[i] == 's')
        i++;
    if (!((len - i >= 8 && memcmp(p + i, " dropped", 8) == 0) ||
          (len - i >= 5 && memcmp(p + i, " lost", 5) == 0)))
        return -1;
    if (code != NULL)
        *code = c;
    return n;
}
