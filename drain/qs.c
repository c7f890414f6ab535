/* URL query strings (include/sluice/qs.h): the pair splitter and the one percent-decoding
 * rule the drain's tags and the read API share. Pure; any thread. WHATWG URL
 * "application/x-www-form-urlencoded parsing", made strict about bad escapes. */
#include <string.h>

#include "sluice/qs.h"

int sl_qs_next(struct sl_str query, size_t *pos, struct sl_qs_pair *pair)
{
    size_t i = *pos;

    while (query.p && i < query.len) {
        size_t j = i, eq;
        while (j < query.len && query.p[j] != '&')
            j++;
        eq = i;
        while (eq < j && query.p[eq] != '=')
            eq++;
        *pos = j + 1;
        if (j > i) {
            pair->key = sl_str_make(query.p + i, eq - i);
            pair->val = eq < j ? sl_str_make(query.p + eq + 1, j - eq - 1) : sl_str_make("", 0);
            return 1;
        }
        i = j + 1;
    }
    *pos = query.len;
    return 0;
}

long sl_qs_decode(struct sl_str in, char *out, size_t cap)
{
    size_t o = 0;

    for (size_t i = 0; i < in.len; i++) {
        int c = (unsigned char)in.p[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            int h = i + 2 < in.len ? sl_hexval((unsigned char)in.p[i + 1]) : -1;
            int l = i + 2 < in.len ? sl_hexval((unsigned char)in.p[i + 2]) : -1;
            if (h < 0 || l < 0)
                return SL_EPARSE;
            c = h << 4 | l;
            i += 2;
        }
        if (o >= cap)
            return SL_ETOOBIG;
        out[o++] = (char)c;
    }
    return (long)o;
}

long sl_qs_decode_cstr(struct sl_str in, char *out, size_t cap)
{
    long n;

    if (cap == 0)
        return SL_ETOOBIG;
    if ((n = sl_qs_decode(in, out, cap - 1)) < 0)
        return n;
    if (memchr(out, '\0', (size_t)n) != NULL)
        return SL_EPARSE;
    out[n] = '\0';
    return n;
}
