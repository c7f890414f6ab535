/* Spooled message -> COPY BINARY row of `logs` (include/sluice/row.h). Pure; runs on
 * the writer thread. Syslog parsing happens here, not in the request path. */
#include <string.h>

#include "sluice/enc.h"
#include "sluice/fields.h"
#include "sluice/qs.h"
#include "sluice/rfc5424.h"
#include "sluice/row.h"
#include "sluice/utf8.h"

#define PG_EPOCH_US 946684800000000LL /* 2000-01-01 minus 1970-01-01 */

int sl_row_copy_header(struct sl_buf *out)
{
    static const char sig[] = "PGCOPY\n\377\r\n\0";
    int rc = sl_buf_add(out, sig, 11);
    if (rc == 0)
        rc = sl_buf_add_be32(out, 0);
    if (rc == 0)
        rc = sl_buf_add_be32(out, 0);
    return rc;
}

int sl_row_copy_trailer(struct sl_buf *out)
{
    return sl_buf_add_be16(out, 0xFFFF);
}

/* Percent-decode s (include/sluice/qs.h) into tmp, then append it JSON-escaped and valid
 * UTF-8. A component that is not valid percent-encoding is kept as it came: a tag is
 * never dropped or cut. */
static int json_string(struct sl_str s, struct sl_buf *out)
{
    char tmp[SL_ENTRY_MAX_ID];
    long n = sl_qs_decode(s, tmp, sizeof(tmp));
    struct sl_buf clean;
    int rc;

    if (n >= 0)
        s = sl_str_make(tmp, (size_t)n);
    sl_buf_init(&clean, 3 * s.len + 16); /* a repaired byte takes 3 */
    rc = sl_utf8_sanitize(s.p, s.len, &clean);
    if (rc == 0)
        rc = sl_enc_json_str(out, clean.p ? clean.p : "", clean.len);
    sl_buf_free(&clean);
    return rc;
}

#define MAX_TAGS 64

/* Same key as another after percent-decoding? Compared raw: a=1&a=2 share "a". */
static bool same_key(struct sl_str a, struct sl_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

int sl_row_tags_json(struct sl_str query, struct sl_buf *out)
{
    struct sl_str keys[MAX_TAGS], vals[MAX_TAGS];
    struct sl_qs_pair pair;
    size_t n = 0, i = 0;
    int rc = 0, first = 1;

    if (query.len == 0)
        return 0;
    while (n < MAX_TAGS && sl_qs_next(query, &i, &pair) == 1) {
        keys[n] = pair.key;
        vals[n++] = pair.val;
    }
    /* one member per key; a key given more than once keeps every value, in order, as
     * an array (?env=prod&env=dev -> "env": ["prod", "dev"]) */
    rc = sl_buf_addc(out, '{');
    for (size_t k = 0; k < n && rc == 0; k++) {
        size_t count = 0;
        bool seen = false;
        for (size_t m = 0; m < k && !seen; m++)
            seen = same_key(keys[m], keys[k]);
        if (seen)
            continue;
        for (size_t m = k; m < n; m++)
            count += same_key(keys[m], keys[k]);
        if (!first)
            rc = sl_buf_addc(out, ',');
        first = 0;
        if (rc == 0)
            rc = json_string(keys[k], out);
        if (rc == 0)
            rc = sl_buf_addc(out, ':');
        if (rc == 0 && count > 1)
            rc = sl_buf_addc(out, '[');
        for (size_t m = k, c = 0; m < n && rc == 0; m++) {
            if (!same_key(keys[m], keys[k]))
                continue;
            if (c++ && (rc = sl_buf_addc(out, ',')))
                break;
            rc = json_string(vals[m], out);
        }
        if (rc == 0 && count > 1)
            rc = sl_buf_addc(out, ']');
    }
    if (rc == 0)
        rc = sl_buf_addc(out, '}');
    return rc;
}

static int f_null(struct sl_buf *o)
{
    return sl_buf_add_be32(o, 0xFFFFFFFFu);
}

static int f_i64(struct sl_buf *o, int64_t v)
{
    int rc = sl_buf_add_be32(o, 8);
    return rc ? rc : sl_buf_add_be64(o, (uint64_t)v);
}

static int f_i32(struct sl_buf *o, int32_t v)
{
    int rc = sl_buf_add_be32(o, 4);
    return rc ? rc : sl_buf_add_be32(o, (uint32_t)v);
}

static int f_i16(struct sl_buf *o, int v)
{
    int rc = sl_buf_add_be32(o, 2);
    return rc ? rc : sl_buf_add_be16(o, (uint16_t)(int16_t)v);
}

static int f_bytes(struct sl_buf *o, const void *p, size_t len)
{
    int rc = sl_buf_add_be32(o, (uint32_t)len);
    return rc ? rc : sl_buf_add(o, p, len);
}

/* A text field: NULL slice -> SQL NULL; otherwise made valid UTF-8. Returns whether
 * the text had to be changed via *changed. A repaired text is appended to scratch (not
 * over what an earlier field left there) and starts at *at. */
static int f_text(struct sl_buf *o, struct sl_str s, struct sl_buf *scratch, bool *changed,
                  size_t *at)
{
    size_t start = scratch->len;
    int rc;

    if (s.p == NULL)
        return f_null(o);
    if (sl_utf8_clean(s.p, s.len)) {
        if (changed)
            *changed = false;
        return f_bytes(o, s.p, s.len);
    }
    if (changed)
        *changed = true;
    if (at)
        *at = start;
    if ((rc = sl_utf8_sanitize(s.p, s.len, scratch)))
        return rc;
    return f_bytes(o, scratch->p + start, scratch->len - start);
}

int sl_row_build(struct sl_buf *out, int64_t id, const struct sl_entry *e,
                 const struct sl_entry_msg *m, struct sl_str tags_json, struct sl_buf *scratch,
                 struct sl_row_info *info)
{
    struct sl_syslog sl;
    const char *why = NULL;
    bool parsed = false, changed = false, header_changed = false;
    struct sl_str msg = m->bytes;
    size_t text_at = 0, text_end = 0;
    int rc;

    memset(info, 0, sizeof(*info));
    sl_buf_reset(scratch);
    memset(&sl, 0, sizeof(sl));
    if (m->flags & SL_MSG_BAD_PREFIX)
        why = "bad octet-count prefix";
    else if (m->flags & SL_MSG_SHORT)
        why = "octet count runs past the end of the body";
    else if (sl_syslog_parse_ref(m->bytes.p, m->bytes.len, e->received_us, &sl, &why) == 0) {
        parsed = true;
        msg = sl.msg;
        if (msg.p == NULL)
            msg = sl_str_make("", 0);
    } else if (why == NULL)
        why = "not syslog";
    info->parse_error = !parsed;

    if ((rc = sl_buf_add_be16(out, SL_ROW_NCOLS)) || (rc = f_i64(out, id)) ||
        (rc = f_i64(out, e->received_us - PG_EPOCH_US)) || (rc = f_i64(out, e->source_id)))
        return rc;
    if (parsed && sl.has_ts) {
        if ((rc = f_i64(out, sl.ts_us - PG_EPOCH_US)) || (rc = f_i16(out, sl.ts_frac_digits)) ||
            (rc = f_i16(out, sl.ts_offset_min)))
            return rc;
    } else if ((rc = f_null(out)) || (rc = f_null(out)) || (rc = f_null(out)))
        return rc;
    if (parsed) {
        bool c[5] = {false, false, false, false, false};
        if ((rc = f_i16(out, sl.facility)) || (rc = f_i16(out, sl.severity)) ||
            (rc = f_text(out,
                         (e->flags & SL_ENTRY_HOST_IS_TOKEN) && sl.hostname.p
                             ? SL_STR_LIT("d.(token)")
                             : sl.hostname,
                         scratch, &c[0], NULL)) ||
            (rc = f_text(out, sl.app_name, scratch, &c[1], NULL)) ||
            (rc = f_text(out, sl.procid, scratch, &c[2], NULL)) ||
            (rc = f_text(out, sl.msgid, scratch, &c[3], NULL)) ||
            (rc = f_text(out, sl.sd.len ? sl.sd : SL_STR_NULL, scratch, &c[4], NULL)))
            return rc;
        header_changed = c[0] || c[1] || c[2] || c[3] || c[4];
    } else {
        for (int i = 0; i < 7; i++)
            if ((rc = f_null(out)))
                return rc;
    }
    if ((rc = f_text(out, msg, scratch, &changed, &text_at)))
        return rc;
    text_end = scratch->len;
    /* message_raw: the exact bytes whenever a text column had to differ: the message's
     * own, or the whole frame's when a header field (hostname, app-name, procid, msgid,
     * structured data) was repaired */
    if (header_changed) {
        info->raw_kept = true;
        rc = f_bytes(out, m->bytes.p, m->bytes.len);
    } else if (changed) {
        info->raw_kept = true;
        rc = f_bytes(out, msg.p, msg.len);
    } else
        rc = f_null(out);
    if (rc)
        return rc;
    if ((rc = why && !parsed ? f_bytes(out, why, strlen(why)) : f_null(out)))
        return rc;
    if ((rc = (m->flags & SL_MSG_TRUNCATED) ? f_i32(out, (int32_t)m->orig_len) : f_null(out)))
        return rc;
    if (tags_json.len) {
        if ((rc = sl_buf_add_be32(out, (uint32_t)tags_json.len + 1)) ||
            (rc = sl_buf_addc(out, 1)) || (rc = sl_buf_add(out, tags_json.p, tags_json.len)))
            return rc;
    } else if ((rc = f_null(out)))
        return rc;
    if ((rc = f_text(out, e->frame_id.len ? e->frame_id : SL_STR_NULL, scratch, NULL, NULL)))
        return rc;
    info->sl = sl;
    info->sl.msg = msg;
    /* scratch may have moved since the message was repaired: point into it only now */
    info->text = changed ? sl_str_make(scratch->p + text_at, text_end - text_at) : msg;
    /* json_at: where the message's JSON object starts, in characters from 1 (substr's
     * position), NULL when it holds none under drain/fields.c's rules */
    info->has_json = sl_fields_json_find(info->text.p, info->text.len, &info->json);
    if ((rc = info->has_json ? f_i32(out, (int32_t)info->json.char_off + 1) : f_null(out)))
        return rc;
    if (parsed) {
        int code = 0;
        long n = sl_heroku_loss_notice(msg, &code);
        if (n >= 0) {
            info->loss_code = code;
            info->loss_count = n;
        }
    }
    return 0;
}
