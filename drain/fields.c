/* The fields of a log line: a bounded JSON scanner (find, validate, walk, look up), the
 * logfmt field lookup, and conditions on fields. Contract in include/sluice/fields.h.
 *
 * Pure: no I/O, no allocation except into a caller's sl_buf, no global state; any thread.
 * Every read checks its bound first; recursion is bounded by SL_JSON_MAX_DEPTH.
 *
 * The validator is the one authority on "this row is JSON": the writer stores the object's
 * start for the rows it accepts and the search casts only those rows' text to jsonb, so
 * what it accepts must be a subset of what PostgreSQL 15's json lexer accepts (tests in
 * tests/unit/test_fields.c list the edge cases, and tests/e2e/test_json_fields.py casts
 * them in PostgreSQL). Walks and lookups assume a validated object and only skip. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/buf.h"
#include "sluice/err.h"
#include "sluice/fields.h"
#include "sluice/str.h"
#include "sluice/tokens.h"
#include "sluice/utf8.h"

/* ------------------------------------------------------------------ validation */

struct scan {
    const unsigned char *p;
    size_t n, i;
    int depth;
    bool esc, odd;
};

static bool is_ws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void skip_ws(struct scan *s)
{
    while (s->i < s->n && is_ws(s->p[s->i]))
        s->i++;
}

static int hex4(const unsigned char *p)
{
    int v = 0;

    for (int k = 0; k < 4; k++) {
        int h = sl_hexval(p[k]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

static bool scan_string(struct scan *s)
{
    if (s->i >= s->n || s->p[s->i] != '"')
        return false;
    s->i++;
    while (s->i < s->n) {
        unsigned char c = s->p[s->i];
        /* the common bytes first: printable ASCII other than '"' and '\\' */
        while (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            if (++s->i >= s->n)
                return false;
            c = s->p[s->i];
        }
        if (c == '"') {
            s->i++;
            return true;
        }
        if (c < 0x20)
            return false;
        if (c == '\\') {
            unsigned char e;
            s->esc = true;
            if (s->i + 1 >= s->n)
                return false;
            e = s->p[s->i + 1];
            if (e == 'u') {
                int cp;
                if (s->n - s->i < 6 || (cp = hex4(s->p + s->i + 2)) < 0 || cp == 0)
                    return false;
                s->i += 6;
                if (cp >= 0xDC00 && cp <= 0xDFFF)
                    return false; /* a low surrogate alone */
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    int lo;
                    if (s->n - s->i < 6 || s->p[s->i] != '\\' || s->p[s->i + 1] != 'u' ||
                        (lo = hex4(s->p + s->i + 2)) < 0xDC00 || lo > 0xDFFF)
                        return false;
                    s->i += 6;
                }
                continue;
            }
            if (strchr("\"\\/bfnrt", e) == NULL || e == '\0')
                return false;
            s->i += 2;
            continue;
        }
        if (c < 0x80) {
            s->i++;
            continue;
        }
        {
            uint32_t cp;
            size_t k = sl_utf8_seq(s->p + s->i, s->n - s->i, &cp);
            if (k == 0)
                return false;
            s->i += k;
        }
    }
    return false;
}

static bool scan_number(struct scan *s)
{
    size_t a = s->i;
    long exp = 0;
    bool fzero = false;

    if (s->i < s->n && s->p[s->i] == '-')
        s->i++;
    if (s->i >= s->n || !sl_ascii_digit(s->p[s->i]))
        return false;
    if (s->p[s->i] == '0')
        s->i++;
    else
        while (s->i < s->n && sl_ascii_digit(s->p[s->i]))
            s->i++;
    if (s->i < s->n && s->p[s->i] == '.') {
        s->i++;
        if (s->i >= s->n || !sl_ascii_digit(s->p[s->i]))
            return false;
        while (s->i < s->n && sl_ascii_digit(s->p[s->i]))
            fzero = s->p[s->i++] == '0';
        if (fzero)
            s->odd = true;
    }
    if (s->i < s->n && (s->p[s->i] == 'e' || s->p[s->i] == 'E')) {
        s->i++;
        s->odd = true;
        if (s->i < s->n && (s->p[s->i] == '+' || s->p[s->i] == '-'))
            s->i++;
        if (s->i >= s->n || !sl_ascii_digit(s->p[s->i]))
            return false;
        while (s->i < s->n && sl_ascii_digit(s->p[s->i])) {
            if (exp <= SL_JSON_MAX_EXP)
                exp = exp * 10 + (s->p[s->i] - '0');
            s->i++;
        }
        if (exp > SL_JSON_MAX_EXP)
            return false;
    }
    return s->i - a <= SL_JSON_MAX_NUMBER;
}

static bool scan_lit(struct scan *s, const char *w)
{
    size_t k = strlen(w);

    if (s->n - s->i < k || memcmp(s->p + s->i, w, k) != 0)
        return false;
    s->i += k;
    return true;
}

static bool scan_value(struct scan *s);

static bool scan_container(struct scan *s, bool obj)
{
    unsigned char close = obj ? '}' : ']';

    if (++s->depth > SL_JSON_MAX_DEPTH)
        return false;
    s->i++; /* { or [ */
    skip_ws(s);
    if (s->i < s->n && s->p[s->i] == close) {
        s->i++;
        s->depth--;
        return true;
    }
    for (;;) {
        if (obj) {
            if (!scan_string(s))
                return false;
            skip_ws(s);
            if (s->i >= s->n || s->p[s->i] != ':')
                return false;
            s->i++;
            skip_ws(s);
        }
        if (!scan_value(s))
            return false;
        skip_ws(s);
        if (s->i >= s->n)
            return false;
        if (s->p[s->i] == close) {
            s->i++;
            s->depth--;
            return true;
        }
        if (s->p[s->i] != ',')
            return false;
        s->i++;
        skip_ws(s);
    }
}

static bool scan_value(struct scan *s)
{
    if (s->i >= s->n)
        return false;
    switch (s->p[s->i]) {
    case '{':
        return scan_container(s, true);
    case '[':
        return scan_container(s, false);
    case '"':
        return scan_string(s);
    case 't':
        return scan_lit(s, "true");
    case 'f':
        return scan_lit(s, "false");
    case 'n':
        return scan_lit(s, "null");
    default:
        return scan_number(s);
    }
}

/* An object from p[0] to the end (whitespace after it allowed). */
static bool scan_object(const char *p, size_t n, struct scan *s)
{
    memset(s, 0, sizeof(*s));
    s->p = (const unsigned char *)p;
    s->n = n;
    if (n == 0 || n > SL_JSON_MAX_BYTES || p[0] != '{')
        return false;
    if (!scan_container(s, true))
        return false;
    skip_ws(s);
    return s->i == s->n;
}

bool sl_fields_json_valid(const char *p, size_t n)
{
    struct scan s;
    size_t a = 0;

    while (a < n && is_ws((unsigned char)p[a]))
        a++;
    return scan_object(p + a, n - a, &s);
}

bool sl_fields_json_find(const char *line, size_t len, struct sl_json_at *out)
{
    const char *p = line, *end = line + len;

    for (int t = 0; t < SL_JSON_FIND_TRIES && p < end; t++) {
        struct scan s;
        const char *b = memchr(p, '{', (size_t)(end - p));
        if (b == NULL)
            return false;
        if (scan_object(b, (size_t)(end - b), &s)) {
            size_t chars = 0;
            for (const char *q = line; q < b; q++)
                chars += ((unsigned char)*q & 0xC0) != 0x80;
            out->off = (size_t)(b - line);
            out->char_off = chars;
            out->escapes = s.esc;
            out->odd_numbers = s.odd;
            return true;
        }
        p = b + 1;
    }
    return false;
}

/* ------------------------------------------------------------------ skipping (valid input) */

struct rd {
    const char *p;
    size_t n, i;
};

static void rd_ws(struct rd *r)
{
    while (r->i < r->n && is_ws((unsigned char)r->p[r->i]))
        r->i++;
}

/* At a '"': the bytes between the quotes; r->i past the closing quote. */
static struct sl_str rd_string(struct rd *r, bool *escaped)
{
    size_t a = ++r->i;

    *escaped = false;
    while (r->i < r->n && r->p[r->i] != '"') {
        if (r->p[r->i] == '\\') {
            *escaped = true;
            r->i++;
        }
        r->i++;
    }
    if (r->i > r->n)
        r->i = r->n;
    {
        struct sl_str v = sl_str_make(r->p + a, r->i - a);
        if (r->i < r->n)
            r->i++;
        return v;
    }
}

/* Skips one value; fills *leaf with its type and raw text. */
static void rd_value(struct rd *r, struct sl_jleaf *leaf)
{
    size_t a = r->i;
    char c = r->i < r->n ? r->p[r->i] : '\0';

    leaf->escaped = false;
    if (c == '"') {
        leaf->type = SL_J_STRING;
        leaf->raw = rd_string(r, &leaf->escaped);
        return;
    }
    if (c == '{' || c == '[') {
        int depth = 0;
        bool esc;
        leaf->type = c == '{' ? SL_J_OBJECT : SL_J_ARRAY;
        while (r->i < r->n) {
            char d = r->p[r->i];
            if (d == '"') {
                (void)rd_string(r, &esc);
                continue;
            }
            r->i++;
            if (d == '{' || d == '[')
                depth++;
            else if ((d == '}' || d == ']') && --depth == 0)
                break;
        }
        leaf->raw = sl_str_make(r->p + a, r->i - a);
        return;
    }
    while (r->i < r->n && !is_ws((unsigned char)r->p[r->i]) && r->p[r->i] != ',' &&
           r->p[r->i] != '}' && r->p[r->i] != ']')
        r->i++;
    leaf->raw = sl_str_make(r->p + a, r->i - a);
    leaf->type = c == 't' ? SL_J_TRUE : c == 'f' ? SL_J_FALSE : c == 'n' ? SL_J_NULL : SL_J_NUMBER;
}

/* Decodes a validated string into out[0..cap) (never longer than its raw form). */
static size_t unescape(struct sl_str raw, char *out, size_t cap)
{
    size_t w = 0;

    for (size_t i = 0; i < raw.len && w < cap; i++) {
        unsigned char c = (unsigned char)raw.p[i];
        uint32_t cp;
        if (c != '\\') {
            out[w++] = (char)c;
            continue;
        }
        if (++i >= raw.len)
            break;
        c = (unsigned char)raw.p[i];
        switch (c) {
        case 'b': out[w++] = '\b'; continue;
        case 'f': out[w++] = '\f'; continue;
        case 'n': out[w++] = '\n'; continue;
        case 'r': out[w++] = '\r'; continue;
        case 't': out[w++] = '\t'; continue;
        case 'u': break;
        default: out[w++] = (char)c; continue;
        }
        if (raw.len - i < 5)
            break;
        cp = (uint32_t)hex4((const unsigned char *)raw.p + i + 1);
        i += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF && raw.len - i >= 7 && raw.p[i + 1] == '\\') {
            uint32_t lo = (uint32_t)hex4((const unsigned char *)raw.p + i + 3);
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            i += 6;
        }
        if (cp < 0x80) {
            out[w++] = (char)cp;
        } else if (cp < 0x800) {
            if (cap - w < 2)
                break;
            out[w++] = (char)(0xC0 | (cp >> 6));
            out[w++] = (char)(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            if (cap - w < 3)
                break;
            out[w++] = (char)(0xE0 | (cp >> 12));
            out[w++] = (char)(0x80 | ((cp >> 6) & 0x3F));
            out[w++] = (char)(0x80 | (cp & 0x3F));
        } else {
            if (cap - w < 4)
                break;
            out[w++] = (char)(0xF0 | (cp >> 18));
            out[w++] = (char)(0x80 | ((cp >> 12) & 0x3F));
            out[w++] = (char)(0x80 | ((cp >> 6) & 0x3F));
            out[w++] = (char)(0x80 | (cp & 0x3F));
        }
    }
    return w;
}

int sl_fields_json_unescape(struct sl_str raw, struct sl_buf *out)
{
    int rc = sl_buf_reserve(out, raw.len + 1);

    if (rc != 0)
        return rc;
    out->len += unescape(raw, out->p + out->len, raw.len);
    return 0;
}

/* ------------------------------------------------------------------ walking */

struct walk {
    struct rd r;
    char path[SL_JSON_PATH_MAX + 1];
    sl_jleaf_cb cb;
    void *arg;
};

/* Appends seg to the path at plen (with a dot when plen > 0); the new length, or
 * SIZE_MAX when it does not fit. */
static size_t path_push(struct walk *w, size_t plen, const char *seg, size_t n, bool esc)
{
    size_t need = plen + (plen > 0) + n;

    if (need > SL_JSON_PATH_MAX)
        return SIZE_MAX;
    if (plen > 0)
        w->path[plen++] = '.';
    if (esc)
        n = unescape(sl_str_make(seg, n), w->path + plen, n);
    else
        memcpy(w->path + plen, seg, n);
    w->path[plen + n] = '\0';
    return plen + n;
}

static int walk_value(struct walk *w, size_t plen);

static int walk_container(struct walk *w, size_t plen, bool obj)
{
    struct rd *r = &w->r;
    char close = obj ? '}' : ']';
    size_t idx = 0;
    int rc = 0;

    r->i++;
    rd_ws(r);
    while (r->i < r->n && r->p[r->i] != close && rc == 0) {
        size_t np;
        if (obj) {
            bool esc;
            struct sl_str k = rd_string(r, &esc);
            rd_ws(r);
            r->i++; /* ':' */
            rd_ws(r);
            np = path_push(w, plen, k.p, k.len, esc);
        } else {
            char num[24];
            int k = snprintf(num, sizeof(num), "%zu", idx++);
            np = path_push(w, plen, num, (size_t)k, false);
        }
        if (np == SIZE_MAX) {
            struct sl_jleaf skip;
            rd_value(r, &skip);
        } else {
            rc = walk_value(w, np);
        }
        rd_ws(r);
        if (r->i < r->n && r->p[r->i] == ',') {
            r->i++;
            rd_ws(r);
        }
    }
    if (r->i < r->n)
        r->i++;
    return rc;
}

static int walk_value(struct walk *w, size_t plen)
{
    struct sl_jleaf leaf;
    char c = w->r.i < w->r.n ? w->r.p[w->r.i] : '\0';

    if (c == '{' || c == '[')
        return walk_container(w, plen, c == '{');
    rd_value(&w->r, &leaf);
    return w->cb(w->arg, w->path, plen, &leaf);
}

int sl_fields_json_walk(const char *obj, size_t len, sl_jleaf_cb cb, void *arg)
{
    struct walk *w = malloc(sizeof(*w));
    int rc;

    if (w == NULL)
        return SL_ENOMEM;
    w->r.p = obj;
    w->r.n = len;
    w->r.i = 0;
    w->path[0] = '\0';
    w->cb = cb;
    w->arg = arg;
    rd_ws(&w->r);
    rc = walk_value(w, 0);
    free(w);
    return rc;
}

/* ------------------------------------------------------------------ lookup */

/* Whether a raw key equals seg[0..n) once decoded. */
static bool key_eq(struct sl_str k, bool esc, const char *seg, size_t n)
{
    char tmp[SL_JSON_PATH_MAX];

    if (!esc)
        return k.len == n && memcmp(k.p, seg, n) == 0;
    if (k.len > sizeof(tmp))
        return false;
    return unescape(k, tmp, sizeof(tmp)) == n && memcmp(tmp, seg, n) == 0;
}

/* The value at path (segments separated by '.') under the value at r->i. */
static bool get_at(struct rd *r, const char *path, size_t plen, struct sl_jleaf *out)
{
    const char *dot = memchr(path, '.', plen);
    size_t n = dot ? (size_t)(dot - path) : plen;
    char c = r->i < r->n ? r->p[r->i] : '\0';
    size_t found = SIZE_MAX;

    if (c == '{') {
        r->i++;
        rd_ws(r);
        while (r->i < r->n && r->p[r->i] != '}') {
            bool esc;
            struct sl_jleaf skip;
            struct sl_str k = rd_string(r, &esc);
            rd_ws(r);
            r->i++;
            rd_ws(r);
            if (key_eq(k, esc, path, n))
                found = r->i; /* the last one wins */
            rd_value(r, &skip);
            rd_ws(r);
            if (r->i < r->n && r->p[r->i] == ',') {
                r->i++;
                rd_ws(r);
            }
        }
    } else if (c == '[') {
        size_t want = 0, idx = 0;
        if (n == 0 || n > 9 || (n > 1 && path[0] == '0'))
            return false;
        for (size_t k = 0; k < n; k++) {
            if (!sl_ascii_digit((unsigned char)path[k]))
                return false;
            want = want * 10 + (size_t)(path[k] - '0');
        }
        r->i++;
        rd_ws(r);
        while (r->i < r->n && r->p[r->i] != ']') {
            struct sl_jleaf skip;
            if (idx++ == want) {
                found = r->i;
                break;
            }
            rd_value(r, &skip);
            rd_ws(r);
            if (r->i < r->n && r->p[r->i] == ',') {
                r->i++;
                rd_ws(r);
            }
        }
    }
    if (found == SIZE_MAX)
        return false;
    r->i = found;
    if (dot == NULL) {
        rd_value(r, out);
        return true;
    }
    return get_at(r, dot + 1, plen - n - 1, out);
}

bool sl_fields_json_get(const char *obj, size_t len, const char *path, size_t plen,
                        struct sl_jleaf *out)
{
    struct rd r = {obj, len, 0};

    if (plen == 0)
        return false;
    rd_ws(&r);
    if (get_at(&r, path, plen, out))
        return true;
    if (memchr(path, '.', plen) == NULL)
        return false;
    /* {"user.id": 1}: the whole path as one top-level key */
    r.i = 0;
    rd_ws(&r);
    {
        char c = r.i < r.n ? r.p[r.i] : '\0';
        size_t found = SIZE_MAX;
        if (c != '{')
            return false;
        r.i++;
        rd_ws(&r);
        while (r.i < r.n && r.p[r.i] != '}') {
            bool esc;
            struct sl_jleaf skip;
            struct sl_str k = rd_string(&r, &esc);
            rd_ws(&r);
            r.i++;
            rd_ws(&r);
            if (key_eq(k, esc, path, plen))
                found = r.i;
            rd_value(&r, &skip);
            rd_ws(&r);
            if (r.i < r.n && r.p[r.i] == ',') {
                r.i++;
                rd_ws(&r);
            }
        }
        if (found == SIZE_MAX)
            return false;
        r.i = found;
        rd_value(&r, out);
        return true;
    }
}

/* ------------------------------------------------------------------ numbers */

bool sl_fields_is_number(const char *s, size_t n)
{
    struct scan sc = {(const unsigned char *)s, n, 0, 0, false, false};

    return n > 0 && scan_number(&sc) && sc.i == n;
}

size_t sl_fields_num_canon(const char *s, size_t n, char *out, size_t cap)
{
    char dig[SL_JSON_MAX_NUMBER + 1];
    size_t nd = 0, i = 0, w = 0;
    long point, exp = 0;
    bool neg = false, eneg = false;
    struct scan sc = {(const unsigned char *)s, n, 0, 0, false, false};

    if (n == 0 || n > SL_JSON_MAX_NUMBER || !scan_number(&sc) || sc.i != n)
        return 0;
    if (s[i] == '-') {
        neg = true;
        i++;
    }
    while (i < n && sl_ascii_digit((unsigned char)s[i]))
        dig[nd++] = s[i++];
    point = (long)nd;
    if (i < n && s[i] == '.') {
        i++;
        while (i < n && sl_ascii_digit((unsigned char)s[i]))
            dig[nd++] = s[i++];
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (s[i] == '+' || s[i] == '-')
            eneg = s[i++] == '-';
        while (i < n)
            exp = exp * 10 + (s[i++] - '0');
    }
    point += eneg ? -exp : exp;
    /* strip leading zeros (moving the point) and trailing zeros */
    {
        size_t a = 0;
        while (a < nd && dig[a] == '0') {
            a++;
            point--;
        }
        while (nd > a && dig[nd - 1] == '0')
            nd--;
        if (a == nd) {
            if (cap < 2)
                return 0;
            out[0] = '0';
            out[1] = '\0';
            return 1;
        }
        memmove(dig, dig + a, nd - a);
        nd -= a;
    }
    /* digits d[0..nd) with the decimal point after `point` of them */
#define PUT(ch)                                                                                    \
    do {                                                                                           \
        if (w + 1 >= cap || w >= SL_FIELDS_CANON_MAX)                                              \
            return 0;                                                                              \
        out[w++] = (ch);                                                                           \
    } while (0)
    if (point < -SL_FIELDS_CANON_MAX || point > SL_FIELDS_CANON_MAX)
        return 0;
    if (neg)
        PUT('-');
    if (point <= 0) {
        PUT('0');
        PUT('.');
        for (long z = 0; z < -point; z++)
            PUT('0');
        for (size_t k = 0; k < nd; k++)
            PUT(dig[k]);
    } else {
        for (long k = 0; k < point; k++)
            PUT((size_t)k < nd ? dig[k] : '0');
        if ((size_t)point < nd) {
            PUT('.');
            for (size_t k = (size_t)point; k < nd; k++)
                PUT(dig[k]);
        }
    }
#undef PUT
    out[w] = '\0';
    return w;
}

/* ------------------------------------------------------------------ extra tokens */

/* One pass over the object's tokens: outside strings, only numbers hold '-' or digits.
 * Every string (key or value) holding an escape goes in decoded, every number not written
 * canonically goes in canonical: at most the object's string bytes plus
 * SL_FIELDS_CANON_MAX + 1 bytes per number (a number takes 2 bytes of the object at
 * least). */
int sl_fields_json_extra(const char *obj, size_t len, struct sl_buf *out)
{
    struct scan s;
    struct rd r = {obj, len, 0};
    int rc = 0;

    if (!scan_object(obj, len, &s) || (!s.esc && !s.odd))
        return 0;
    while (r.i < r.n && rc == 0) {
        char c = r.p[r.i];
        if (c == '"') {
            bool esc;
            struct sl_str v = rd_string(&r, &esc);
            if (esc && s.esc) {
                rc = sl_buf_addc(out, ' ');
                if (rc == 0)
                    rc = sl_fields_json_unescape(v, out);
            }
        } else if ((c == '-' || sl_ascii_digit((unsigned char)c)) && s.odd) {
            struct sl_jleaf leaf;
            char cn[SL_FIELDS_CANON_MAX + 2];
            size_t k;
            rd_value(&r, &leaf);
            k = sl_fields_num_canon(leaf.raw.p, leaf.raw.len, cn, sizeof(cn));
            if (k > 0 && (k != leaf.raw.len || memcmp(cn, leaf.raw.p, k) != 0)) {
                rc = sl_buf_addc(out, ' ');
                if (rc == 0)
                    rc = sl_buf_add(out, cn, k);
            }
        } else {
            r.i++;
        }
    }
    return rc;
}

/* ------------------------------------------------------------------ logfmt */

bool sl_fields_logfmt_get(const char *line, size_t len, const char *key, size_t klen,
                          struct sl_str *val)
{
    for (size_t i = 0; klen > 0 && i + klen < len; i++) {
        size_t j;
        const char *hit = memmem(line + i, len - i, key, klen);
        if (hit == NULL)
            return false;
        i = (size_t)(hit - line);
        if (i + klen >= len)
            return false;
        if (i > 0 && (unsigned char)line[i - 1] > ' ')
            continue;
        if (line[i + klen] != '=')
            continue;
        j = i + klen + 1;
        if (j < len && line[j] == '"') {
            size_t a = ++j;
            while (j < len && line[j] != '"') {
                if (line[j] == '\\')
                    j++;
                j++;
            }
            if (j >= len)
                continue;
            if (j + 1 < len && (unsigned char)line[j + 1] > ' ')
                continue;
            *val = sl_str_make(line + a, j - a);
            return true;
        }
        {
            size_t a = j;
            while (j < len && (unsigned char)line[j] > ' ')
                j++;
            *val = sl_str_make(line + a, j - a);
            return true;
        }
    }
    return false;
}

/* ------------------------------------------------------------------ conditions */

/* A whole JSON number in s[0..n) as a double. */
static bool read_num(const char *s, size_t n, double *out)
{
    char tmp[SL_JSON_MAX_NUMBER + 1];

    if (!sl_fields_is_number(s, n))
        return false;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    *out = strtod(tmp, NULL);
    return isfinite(*out);
}

int sl_fields_cond_parse(const char *key, const char *expr, struct sl_field_cond *c,
                         const char **why)
{
    static const struct {
        const char *s;
        enum sl_fop op;
    } ops[] = {{">=", SL_FOP_GE}, {"<=", SL_FOP_LE}, {"!=", SL_FOP_NE}, {">", SL_FOP_GT},
               {"<", SL_FOP_LT},  {"=", SL_FOP_EQ}};
    size_t kl = strlen(key), vl;
    bool has_op = false;

    memset(c, 0, sizeof(*c));
    if (kl == 0 || kl >= sizeof(c->key)) {
        *why = "a field name is 1-255 bytes";
        return SL_EPARSE;
    }
    for (size_t i = 0; i < kl; i++)
        if ((unsigned char)key[i] <= ' ' || key[i] == '"') {
            *why = "a field name holds no space, control byte or quote";
            return SL_EPARSE;
        }
    memcpy(c->key, key, kl + 1);
    c->op = SL_FOP_EQ;
    for (size_t k = 0; k < sizeof(ops) / sizeof(ops[0]); k++) {
        size_t n = strlen(ops[k].s);
        if (strncmp(expr, ops[k].s, n) == 0) {
            c->op = ops[k].op;
            expr += n;
            has_op = true;
            break;
        }
    }
    vl = strlen(expr);
    if (vl >= sizeof(c->val)) {
        *why = "a value is at most 255 bytes";
        return SL_EPARSE;
    }
    memcpy(c->val, expr, vl + 1);
    c->val_num = read_num(c->val, vl, &c->num);
    if (c->op != SL_FOP_EQ && c->op != SL_FOP_NE) {
        if (!c->val_num) {
            *why = "<, <=, >, >= need a number";
            return SL_EPARSE;
        }
        c->numeric = true;
    } else if (has_op && c->op == SL_FOP_EQ) {
        if (!c->val_num) {
            *why = "= needs a number (write the text without =)";
            return SL_EPARSE;
        }
        c->numeric = true;
    } else {
        c->glob = strpbrk(c->val, "*?") != NULL;
    }
    return 0;
}

void sl_fields_line_init(struct sl_fields_line *fl, const char *text, size_t len)
{
    fl->text = text;
    fl->len = len;
    fl->has_json = sl_fields_json_find(text, len, &fl->at);
    fl->indexed = 0;
    fl->nidx = 0;
    fl->pused = 0;
}

static uint32_t path_hash(const char *p, size_t n)
{
    uint32_t h = 2166136261u;

    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 16777619u;
    return h;
}

/* The index walk: every path (containers too) with its value; false when the object
 * needs walking lookups instead (see fields.h). */
static bool index_add(struct sl_fields_line *fl, const char *path, size_t plen,
                      const struct sl_jleaf *leaf)
{
    size_t k = fl->nidx;

    if (k == SL_FIELDS_INDEX_MAX || fl->pused + plen > SL_FIELDS_INDEX_PATHS)
        return false;
    memcpy(fl->paths + fl->pused, path, plen);
    fl->idx[k].hash = path_hash(path, plen);
    fl->idx[k].poff = (uint32_t)fl->pused;
    fl->idx[k].plen = (uint32_t)plen;
    fl->idx[k].leaf = *leaf;
    fl->pused += plen;
    fl->nidx++;
    return true;
}

static bool index_value(struct sl_fields_line *fl, struct rd *r, char *path, size_t plen);

static bool index_container(struct sl_fields_line *fl, struct rd *r, char *path, size_t plen,
                            bool obj)
{
    struct sl_str keys[SL_FIELDS_INDEX_MAX];
    size_t nkeys = 0, idx = 0;
    char close = obj ? '}' : ']';

    r->i++;
    rd_ws(r);
    while (r->i < r->n && r->p[r->i] != close) {
        size_t np;
        if (obj) {
            bool esc;
            struct sl_str k = rd_string(r, &esc);
            if (esc || k.len == 0 || memchr(k.p, '.', k.len) != NULL ||
                nkeys == SL_FIELDS_INDEX_MAX)
                return false; /* paths would be ambiguous: lookups walk */
            for (size_t j = 0; j < nkeys; j++)
                if (keys[j].len == k.len && memcmp(keys[j].p, k.p, k.len) == 0)
                    return false; /* a duplicate: the last wins, lookups walk */
            keys[nkeys++] = k;
            rd_ws(r);
            r->i++; /* ':' */
            rd_ws(r);
            if (plen + 1 + k.len > SL_JSON_PATH_MAX)
                return false;
            np = plen;
            if (np > 0)
                path[np++] = '.';
            memcpy(path + np, k.p, k.len);
            np += k.len;
        } else {
            char num[24];
            int kn = snprintf(num, sizeof(num), "%zu", idx++);
            if (plen + 1 + (size_t)kn > SL_JSON_PATH_MAX)
                return false;
            np = plen;
            if (np > 0)
                path[np++] = '.';
            memcpy(path + np, num, (size_t)kn);
            np += (size_t)kn;
        }
        if (!index_value(fl, r, path, np))
            return false;
        rd_ws(r);
        if (r->i < r->n && r->p[r->i] == ',') {
            r->i++;
            rd_ws(r);
        }
    }
    if (r->i < r->n)
        r->i++;
    return true;
}

static bool index_value(struct sl_fields_line *fl, struct rd *r, char *path, size_t plen)
{
    char c = r->i < r->n ? r->p[r->i] : '\0';
    struct sl_jleaf leaf;

    if (c == '{' || c == '[') {
        size_t a = r->i;
        if (!index_container(fl, r, path, plen, c == '{'))
            return false;
        if (plen == 0)
            return true; /* the object itself */
        leaf.type = c == '{' ? SL_J_OBJECT : SL_J_ARRAY;
        leaf.raw = sl_str_make(r->p + a, r->i - a);
        leaf.escaped = false;
        return index_add(fl, path, plen, &leaf);
    }
    rd_value(r, &leaf);
    return index_add(fl, path, plen, &leaf);
}

static void index_build(struct sl_fields_line *fl)
{
    struct rd r = {fl->text + fl->at.off, fl->len - fl->at.off, 0};
    char path[SL_JSON_PATH_MAX + 1];

    fl->nidx = 0;
    fl->pused = 0;
    fl->indexed = index_value(fl, &r, path, 0) ? 1 : -1;
}

/* The JSON value at key (sl_fields_json_get's answer, from the index when there is one). */
static bool line_json(struct sl_fields_line *fl, const char *key, size_t kl,
                      struct sl_jleaf *out)
{
    if (!fl->has_json)
        return false;
    if (fl->indexed == 0)
        index_build(fl);
    if (fl->indexed < 0)
        return sl_fields_json_get(fl->text + fl->at.off, fl->len - fl->at.off, key, kl, out);
    {
        uint32_t h = path_hash(key, kl);
        for (size_t k = 0; k < fl->nidx; k++)
            if (fl->idx[k].hash == h && fl->idx[k].plen == kl &&
                memcmp(fl->paths + fl->idx[k].poff, key, kl) == 0) {
                *out = fl->idx[k].leaf;
                return true;
            }
    }
    return false;
}

bool sl_fields_line_get(struct sl_fields_line *fl, const char *key, struct sl_str *val,
                        enum sl_jtype *type)
{
    struct sl_jleaf leaf;
    size_t kl = strlen(key);

    if (line_json(fl, key, kl, &leaf)) {
        *val = leaf.raw;
        *type = leaf.type;
        return true;
    }
    if (sl_fields_logfmt_get(fl->text, fl->len, key, kl, val)) {
        *type = SL_J_STRING;
        return true;
    }
    return false;
}

static bool glob_eq(const char *g, const char *s, size_t n)
{
    /* '*' any run, '?' one byte; iterative with one backtrack point */
    size_t gi = 0, si = 0, star = SIZE_MAX, mark = 0, gl = strlen(g);

    while (si < n) {
        if (gi < gl && (g[gi] == '?' || g[gi] == s[si])) {
            gi++;
            si++;
        } else if (gi < gl && g[gi] == '*') {
            star = gi++;
            mark = si;
        } else if (star != SIZE_MAX) {
            gi = star + 1;
            si = ++mark;
        } else {
            return false;
        }
    }
    while (gi < gl && g[gi] == '*')
        gi++;
    return gi == gl;
}

static bool cmp_num(enum sl_fop op, double a, double b)
{
    switch (op) {
    case SL_FOP_EQ: return a == b;
    case SL_FOP_NE: return a != b;
    case SL_FOP_LT: return a < b;
    case SL_FOP_LE: return a <= b;
    case SL_FOP_GT: return a > b;
    case SL_FOP_GE: return a >= b;
    }
    return false;
}

/* One value (decoded text, its type) against c. */
static bool cond_value(const struct sl_field_cond *c, const char *v, size_t n, enum sl_jtype t)
{
    double x;
    bool eq;

    if (t == SL_J_OBJECT || t == SL_J_ARRAY)
        return false;
    if (c->numeric) {
        /* a number, or a string holding one (logfmt values are strings) */
        if (t != SL_J_NUMBER && t != SL_J_STRING)
            return false;
        return read_num(v, n, &x) && cmp_num(c->op, x, c->num);
    }
    if (t == SL_J_NUMBER && c->val_num && !c->glob)
        eq = read_num(v, n, &x) && x == c->num;
    else if (t == SL_J_NULL && !c->glob)
        eq = strcmp(c->val, "null") == 0;
    else if (c->glob)
        eq = t != SL_J_NULL && glob_eq(c->val, v, n);
    else
        eq = n == strlen(c->val) && memcmp(v, c->val, n) == 0;
    return c->op == SL_FOP_NE ? !eq : eq;
}

bool sl_fields_cond_eval(const struct sl_field_cond *c, struct sl_fields_line *fl)
{
    struct sl_jleaf leaf;
    struct sl_str v;
    size_t kl = strlen(c->key);

    if (line_json(fl, c->key, kl, &leaf)) {
        if (leaf.type == SL_J_STRING && leaf.escaped) {
            char tmp[1024];
            size_t n = leaf.raw.len <= sizeof(tmp) ? unescape(leaf.raw, tmp, sizeof(tmp)) : 0;
            if (leaf.raw.len <= sizeof(tmp) && cond_value(c, tmp, n, leaf.type))
                return true;
        } else if (cond_value(c, leaf.raw.p, leaf.raw.len, leaf.type)) {
            return true;
        }
    }
    if (sl_fields_logfmt_get(fl->text, fl->len, c->key, kl, &v))
        return cond_value(c, v.p, v.len, SL_J_STRING);
    return false;
}

/* ------------------------------------------------------------------ numeric classes */

struct numcls {
    sl_hash_cb cb;
    void *arg;
};

static int numcls_leaf(void *arg, const char *path, size_t plen, const struct sl_jleaf *leaf)
{
    struct numcls *nc = arg;
    int c;

    if (leaf->type == SL_J_NUMBER) {
        c = sl_numclass_of(leaf->raw.p, leaf->raw.len);
        if (c < 0)
            c = SL_NUMCLASS_ANY; /* an exponent, or more digits than the query reads */
    } else if (leaf->type == SL_J_STRING) {
        c = leaf->escaped ? SL_NUMCLASS_ANY : sl_numclass_of(leaf->raw.p, leaf->raw.len);
    } else {
        return 0;
    }
    if (c >= 0)
        nc->cb(nc->arg, sl_numclass_hash(path, plen, c));
    return 0;
}

int sl_fields_num_classes(const char *text, size_t len, size_t json_off, sl_hash_cb cb, void *arg)
{
    const char *end = text + len, *p = text, *eq;

    /* each '=': its key runs back to the space before it, its value on to the next */
    while (p < end && (eq = memchr(p, '=', (size_t)(end - p))) != NULL) {
        const char *sp = memrchr(text, ' ', (size_t)(eq - text));
        const char *a = sp ? sp + 1 : text, *e = memchr(eq + 1, ' ', (size_t)(end - eq - 1));
        int c;
        if (e == NULL)
            e = end;
        if (eq > a && (c = sl_numclass_of(eq + 1, (size_t)(e - eq - 1))) >= 0)
            cb(arg, sl_numclass_hash(a, (size_t)(eq - a), c));
        p = eq + 1;
    }
    if (json_off != SIZE_MAX && json_off < len) {
        struct numcls nc = {cb, arg};
        return sl_fields_json_walk(text + json_off, len - json_off, numcls_leaf, &nc);
    }
    return 0;
}
