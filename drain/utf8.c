/* UTF-8 validation and repair (include/sluice/utf8.h): the rule row.c stores lines by,
 * the writer's token filters and the alert samples follow, and the query language and
 * Slack payloads step characters with. Pure; any thread. RFC 3629 §4. */
#include <string.h>

#include "sluice/utf8.h"

size_t sl_utf8_seq(const unsigned char *p, size_t n, uint32_t *cp)
{
    unsigned char c;
    size_t k;
    uint32_t v, min;

    if (n == 0)
        return 0;
    c = p[0];
    if (c < 0x80) {
        k = 1;
        v = c;
        goto done;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        k = 2;
        v = c & 0x1f;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        k = 3;
        v = c & 0x0f;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        k = 4;
        v = c & 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    for (size_t i = 1; i < k; i++) {
        if (i >= n || (p[i] & 0xc0) != 0x80)
            return 0;
        v = v << 6 | (p[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
done:
    if (cp)
        *cp = v;
    return k;
}

bool sl_utf8_clean(const char *p, size_t len)
{
    const unsigned char *s = (const unsigned char *)p, *end = s + len;

    while (s < end) {
        size_t k;
        /* ASCII fast path, 8 bytes at a time */
        while (end - s >= 8) {
            uint64_t w;
            memcpy(&w, s, 8);
            /* any byte >= 0x80, or any zero byte */
            if ((w & 0x8080808080808080ULL) ||
                ((w - 0x0101010101010101ULL) & ~w & 0x8080808080808080ULL))
                break;
            s += 8;
        }
        if (s >= end)
            break;
        if (*s == 0)
            return false;
        if ((k = sl_utf8_seq(s, (size_t)(end - s), NULL)) == 0)
            return false;
        s += k;
    }
    return true;
}

int sl_utf8_sanitize(const char *p, size_t len, struct sl_buf *out)
{
    const unsigned char *s = (const unsigned char *)p, *end = s + len, *run = s;
    int rc = 0;

    /* valid runs are copied in one call; each bad byte is replaced on its own */
    while (s < end && rc == 0) {
        size_t k = *s == 0 ? 0 : sl_utf8_seq(s, (size_t)(end - s), NULL);
        if (k) {
            s += k;
            continue;
        }
        if ((rc = sl_buf_add(out, run, (size_t)(s - run))))
            break;
        rc = *s == 0 ? sl_buf_add(out, "\xe2\x90\x80", 3) : sl_buf_add(out, "\xef\xbf\xbd", 3);
        run = ++s;
    }
    if (rc == 0)
        rc = sl_buf_add(out, run, (size_t)(s - run));
    return rc;
}
