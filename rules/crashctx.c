/* The context around a crash (include/sluice/crashctx.h): release, event id, dyno type,
 * breadcrumbs, search link. Pure: strings in, strings out. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "sluice/alertdoc.h"
#include "sluice/crashctx.h"
#include "sluice/digest.h"
#include "sluice/enc.h"

#define CRUMB_TEXT_MAX 1000

static bool has_at(struct sl_str s, size_t at, const char *lit)
{
    size_t n = strlen(lit);
    return at + n <= s.len && memcmp(s.p + at, lit, n) == 0;
}

static bool contains(struct sl_str s, const char *lit)
{
    size_t n = strlen(lit);
    for (size_t i = 0; i + n <= s.len; i++)
        if (memcmp(s.p + i, lit, n) == 0)
            return true;
    return false;
}

bool sl_crashctx_release(struct sl_str msg, char *out, size_t cap)
{
    size_t i = 8, start;

    if (cap > 0)
        out[0] = '\0';
    if (!has_at(msg, 0, "Release v"))
        return false;
    start = i;
    i++; /* the 'v' */
    while (i < msg.len && sl_ascii_digit((unsigned char)msg.p[i]))
        i++;
    if (i == start + 1 || !has_at(msg, i, " created") || i - start + 1 > cap)
        return false;
    memcpy(out, msg.p + start, i - start);
    out[i - start] = '\0';
    return true;
}

void sl_crashctx_event_id(int64_t source_id, struct sl_str procid, int64_t first_id, char out[33])
{
    char key[256], hex[2 * SL_DIGEST_LEN + 1];
    int n = snprintf(key, sizeof(key), "%" PRId64 "/%" PRId64 "/%.*s", source_id, first_id,
                     (int)(procid.len > 200 ? 200 : procid.len), procid.p ? procid.p : "");

    sl_digest_sha256_hex(key, (size_t)n, hex);
    memcpy(out, hex, 32);
    out[32] = '\0';
}

void sl_crashctx_dyno_type(struct sl_str procid, char *out, size_t cap)
{
    size_t n = 0;

    if (cap == 0)
        return;
    while (n < procid.len && procid.p[n] != '.' && n + 1 < cap)
        n++;
    if (n > 0) /* an empty procid may have no bytes at all (p NULL) */
        memcpy(out, procid.p, n);
    out[n] = '\0';
}

const char *sl_crashctx_crumb_level(struct sl_str msg)
{
    if (contains(msg, "Error R1") || contains(msg, "code=H10") || contains(msg, "code=H13") ||
        contains(msg, "to crashed"))
        return "error";
    if (has_at(msg, 0, "Process exited with status ") &&
        !(msg.len == 28 && msg.p[27] == '0'))
        return "warning";
    return "info";
}

int sl_crashctx_crumbs_begin(struct sl_buf *b)
{
    return sl_buf_addc(b, '[');
}

int sl_crashctx_crumbs_add(struct sl_buf *b, int64_t ts_us, struct sl_str msg)
{
    char ts[40];
    size_t n = msg.len > CRUMB_TEXT_MAX ? CRUMB_TEXT_MAX : msg.len;
    int rc;

    /* never cut inside a UTF-8 sequence */
    while (n > 0 && n < msg.len && ((unsigned char)msg.p[n] & 0xC0) == 0x80)
        n--;
    sl_alertdoc_rfc3339(ts_us, ts);
    if ((b->len > 1 && (rc = sl_buf_addc(b, ','))) ||
        (rc = sl_buf_addf(b, "{\"timestamp\":\"%s\",\"type\":\"default\",\"category\":\"heroku\","
                             "\"level\":\"%s\",\"message\":",
                          ts, sl_crashctx_crumb_level(msg))) ||
        (rc = sl_enc_json_str(b, msg.p, n)) || (rc = sl_buf_addc(b, '}')))
        return rc;
    return 0;
}

int sl_crashctx_crumbs_end(struct sl_buf *b)
{
    return sl_buf_add(b, "]", 2); /* with the NUL */
}

int sl_crashctx_search_url(const char *public_url, const char *source_name, struct sl_str procid,
                           int64_t first_us, int64_t last_us, struct sl_buf *url)
{
    char ts[40], q[160];
    int rc, n;

    n = snprintf(q, sizeof(q), "proc:%.*s", (int)(procid.len > 120 ? 120 : procid.len),
                 procid.p ? procid.p : "");
    if ((rc = sl_buf_addf(url, "%s/api/v1/search?q=", public_url)) ||
        (rc = sl_enc_pct(url, q, (size_t)n, false)) || (rc = sl_buf_add(url, "&source=", 8)) ||
        (rc = sl_enc_pct(url, source_name, strlen(source_name), false)))
        return rc;
    sl_alertdoc_rfc3339(first_us - 1000000, ts);
    if ((rc = sl_buf_add(url, "&since=", 7)) || (rc = sl_enc_pct(url, ts, strlen(ts), false)))
        return rc;
    sl_alertdoc_rfc3339(last_us + 1000000, ts);
    if ((rc = sl_buf_add(url, "&until=", 7)) || (rc = sl_enc_pct(url, ts, strlen(ts), false)))
        return rc;
    return sl_buf_add(url, "&order=asc&limit=1000", 22); /* with the NUL */
}
