/* HTTP/1.1 request parsing for the drain listener (include/sluice/http.h): the request
 * head (RFC 9112 §2-§5), header lookup, Content-Length (RFC 9112 §6.3), the chunked
 * transfer coding (RFC 9112 §7.1), and the request path's small rules: absolute-form
 * targets (RFC 9112 §3.2.2), Content-Encoding lists (RFC 9110 §8.4), route tables and the
 * Allow value of a route's methods (RFC 9110 §10.2.1), reason phrases.
 *
 * Pure functions after picohttpparser: no I/O, no global state, no allocation except
 * through the caller's sl_buf in the chunked decoder. Results are slices into the
 * caller's buffer. Connection handling, body framing decisions (Content-Length versus
 * Transfer-Encoding, duplicates) and timeouts are drain/ingest_http.c's and
 * drain/listen.c's. Any thread.
 *
 * Strictness, as a defence against request smuggling: header names are tokens with the
 * ':' right after them (RFC 9112 §5.1), obs-fold and control characters are rejected,
 * a CR must be followed by LF. The head accepts a bare LF line end (RFC 9112 §2.2); the
 * chunked framing does not: its lines end in CRLF only, the reading other parsers agree
 * on. */
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "sluice/buf.h"
#include "sluice/err.h"
#include "sluice/http.h"
#include "sluice/str.h"

/* A chunk-size line (size and extensions) or a trailer line may hold this many bytes
 * before its CRLF. */
#define CHUNK_LINE_MAX 1024
/* The whole trailer section, which is read and dropped, may hold this many bytes. */
#define CHUNK_TRAILERS_MAX 8192

/* tchar (RFC 9110 §5.6.2) */
static bool is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* field-vchar / SP / HTAB (RFC 9110 §5.5): everything but the controls and DEL. */
static bool is_field_char(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static unsigned char ascii_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c - 'A' + 'a') : c;
}

static bool ascii_caseeq(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (ascii_lower((unsigned char)a[i]) != ascii_lower((unsigned char)b[i]))
            return false;
    }
    return true;
}

/* At p[*i]: 1 and *i past the line end for CRLF or LF, 0 when there is no line end
 * here, SL_EAGAIN when a CR is the last byte, SL_EPARSE for a CR without LF. */
static int take_eol(const unsigned char *p, size_t lim, size_t *i)
{
    if (*i >= lim)
        return SL_EAGAIN;
    if (p[*i] == '\n') {
        *i += 1;
        return 1;
    }
    if (p[*i] != '\r')
        return 0;
    if (*i + 1 >= lim)
        return SL_EAGAIN;
    if (p[*i + 1] != '\n')
        return SL_EPARSE;
    *i += 2;
    return 1;
}

int sl_http_parse_request(const char *buf, size_t len, size_t max_head, struct sl_http_request *req)
{
    const unsigned char *p = (const unsigned char *)buf;
    size_t lim = len < max_head ? len : max_head;
    size_t i = 0, start, q;
    static const char version[] = "HTTP/1.";
    int r;

    /* The return value is the head's length as an int. */
    if (lim > INT_MAX)
        lim = INT_MAX;
    req->method = req->target = req->path = req->query = SL_STR_NULL;
    req->minor_version = 0;
    req->nheaders = 0;

    /* Empty lines before the request line are ignored (RFC 9112 §2.2). */
    while ((r = take_eol(p, lim, &i)) == 1)
        ;
    if (r == SL_EAGAIN)
        goto more;
    if (r < 0)
        return r;

    /* method SP request-target SP HTTP-version (RFC 9112 §3), single spaces */
    start = i;
    while (i < lim && is_tchar(p[i]))
        i++;
    if (i >= lim)
        goto more;
    if (i == start || p[i] != ' ')
        return SL_EPARSE;
    req->method = sl_str_make(buf + start, i - start);
    i++;

    start = i;
    while (i < lim && p[i] > 0x20 && p[i] < 0x7f)
        i++;
    if (i >= lim)
        goto more;
    if (i == start || p[i] != ' ')
        return SL_EPARSE;
    req->target = sl_str_make(buf + start, i - start);
    for (q = start; q < i && p[q] != '?'; q++)
        ;
    req->path = sl_str_make(buf + start, q - start);
    if (q < i)
        req->query = sl_str_make(buf + q + 1, i - q - 1);
    i++;

    for (size_t k = 0; k < sizeof(version) - 1; k++, i++) {
        if (i >= lim)
            goto more;
        if (p[i] != (unsigned char)version[k])
            return SL_EPARSE;
    }
    if (i >= lim)
        goto more;
    if (p[i] != '0' && p[i] != '1')
        return SL_EPARSE;
    req->minor_version = p[i] - '0';
    i++;
    r = take_eol(p, lim, &i);
    if (r == SL_EAGAIN)
        goto more;
    if (r != 1)
        return SL_EPARSE;

    /* field-name ":" OWS field-value OWS (RFC 9112 §5), until the empty line */
    for (;;) {
        struct sl_http_header *h;
        size_t vstart, vend;

        r = take_eol(p, lim, &i);
        if (r == SL_EAGAIN)
            goto more;
        if (r < 0)
            return r;
        if (r == 1)
            return (int)i;
        /* Whitespace here is obs-fold, or whitespace between the request line and
         * the first field (RFC 9112 §2.2, §5.2): both rejected. */
        if (p[i] == ' ' || p[i] == '\t')
            return SL_EPARSE;
        if (req->nheaders == SL_HTTP_MAX_HEADERS)
            return SL_ETOOBIG;

        start = i;
        while (i < lim && is_tchar(p[i]))
            i++;
        if (i >= lim)
            goto more;
        /* No whitespace before the colon (RFC 9112 §5.1). */
        if (i == start || p[i] != ':')
            return SL_EPARSE;
        h = &req->headers[req->nheaders];
        h->name = sl_str_make(buf + start, i - start);
        i++;

        while (i < lim && (p[i] == ' ' || p[i] == '\t'))
            i++;
        vstart = vend = i;
        for (;;) {
            if (i >= lim)
                goto more;
            if (p[i] == '\r' || p[i] == '\n')
                break;
            if (!is_field_char(p[i]))
                return SL_EPARSE;
            i++;
            if (p[i - 1] != ' ' && p[i - 1] != '\t')
                vend = i;
        }
        r = take_eol(p, lim, &i);
        if (r == SL_EAGAIN)
            goto more;
        if (r < 0)
            return r;
        h->value = sl_str_make(buf + vstart, vend - vstart);
        req->nheaders++;
    }

more:
    /* Out of bytes. Only when all of buf was looked at and it is shorter than
     * max_head can the head still fit. */
    return (lim == len && len < max_head) ? SL_EAGAIN : SL_ETOOBIG;
}

const struct sl_str *sl_http_header_get(const struct sl_http_request *req, const char *name)
{
    size_t n = strlen(name);

    for (size_t i = 0; i < req->nheaders; i++) {
        const struct sl_http_header *h = &req->headers[i];
        if (h->name.len == n && ascii_caseeq(h->name.p, name, n))
            return &h->value;
    }
    return NULL;
}

bool sl_http_value_has_token(struct sl_str value, const char *token)
{
    size_t tlen = strlen(token);
    size_t i = 0;

    if (tlen == 0 || value.p == NULL)
        return false;
    while (i < value.len) {
        size_t s = i, e;

        while (i < value.len && value.p[i] != ',')
            i++;
        e = i;
        while (s < e && (value.p[s] == ' ' || value.p[s] == '\t'))
            s++;
        while (e > s && (value.p[e - 1] == ' ' || value.p[e - 1] == '\t'))
            e--;
        if (e - s == tlen && ascii_caseeq(value.p + s, token, tlen))
            return true;
        i++; /* the comma */
    }
    return false;
}

int sl_http_parse_content_length(struct sl_str v, uint64_t *n)
{
    uint64_t x = 0;

    /* 18 digits always fit in a uint64_t (and an off_t). */
    if (v.p == NULL || v.len == 0 || v.len > 18)
        return SL_EPARSE;
    for (size_t i = 0; i < v.len; i++) {
        if (v.p[i] < '0' || v.p[i] > '9')
            return SL_EPARSE;
        x = x * 10 + (uint64_t)(v.p[i] - '0');
    }
    *n = x;
    return 0;
}

struct sl_str sl_http_origin_path(struct sl_str target)
{
    const char *p = target.p, *end = target.p + target.len, *slash;
    size_t skip;

    if (target.len < 8 ||
        !(ascii_caseeq(p, "http://", 7) || ascii_caseeq(p, "https://", 8)))
        return target;
    skip = p[4] == ':' ? 7 : 8;
    slash = memchr(p + skip, '/', (size_t)(end - p - (ptrdiff_t)skip));
    return slash ? sl_str_make(slash, (size_t)(end - slash)) : SL_STR_LIT("/");
}

int sl_http_parse_content_encoding(struct sl_str v, bool *gzip)
{
    int ngzip = 0, other = 0;
    size_t i = 0;

    while (i < v.len) {
        size_t j = i, a, b;

        while (j < v.len && v.p[j] != ',')
            j++;
        a = i;
        b = j;
        while (a < b && (v.p[a] == ' ' || v.p[a] == '\t'))
            a++;
        while (b > a && (v.p[b - 1] == ' ' || v.p[b - 1] == '\t'))
            b--;
        if ((b - a == 4 && ascii_caseeq(v.p + a, "gzip", 4)) ||
            (b - a == 6 && ascii_caseeq(v.p + a, "x-gzip", 6)))
            ngzip++;
        else if (b > a && !(b - a == 8 && ascii_caseeq(v.p + a, "identity", 8)))
            other++;
        i = j + 1;
    }
    if (other || ngzip > 1)
        return SL_EPARSE;
    *gzip = ngzip == 1;
    return 0;
}

const char *sl_http_reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 411:
        return "Length Required";
    case 413:
        return "Content Too Large";
    case 415:
        return "Unsupported Media Type";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    default:
        return "Unknown";
    }
}

unsigned sl_http_method_bit(struct sl_str method)
{
    if (sl_str_eq(method, "GET"))
        return SL_HTTP_GET;
    if (sl_str_eq(method, "HEAD"))
        return SL_HTTP_HEAD;
    if (sl_str_eq(method, "POST"))
        return SL_HTTP_POST;
    return 0;
}

int sl_http_allow(unsigned methods, char *out, size_t cap)
{
    static const struct {
        unsigned bit;
        const char *name;
    } names[] = {{SL_HTTP_GET, "GET"}, {SL_HTTP_HEAD, "HEAD"}, {SL_HTTP_POST, "POST"}};
    size_t n = 0;

    if (cap == 0)
        return SL_ETOOBIG;
    out[0] = '\0';
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        size_t len = strlen(names[i].name);
        size_t sep = n ? 2 : 0;

        if (!(methods & names[i].bit))
            continue;
        if (n + sep + len + 1 > cap)
            return SL_ETOOBIG;
        memcpy(out + n, ", ", sep);
        memcpy(out + n + sep, names[i].name, len + 1);
        n += sep + len;
    }
    return (int)n;
}

int sl_http_route_find(const struct sl_http_route *table, size_t n, struct sl_str method,
                       struct sl_str path, int *status)
{
    for (size_t i = 0; i < n; i++) {
        const struct sl_http_route *r = &table[i];
        bool hit = r->path ? sl_str_eq(path, r->path) : r->match != NULL && r->match(path);

        if (hit) {
            *status = (r->methods & sl_http_method_bit(method)) ? 200 : 405;
            return (int)i;
        }
    }
    *status = 404;
    return -1;
}

enum {
    CH_SIZE,       /* hex digits of a chunk size; line_len counts them */
    CH_SIZE_WS,    /* whitespace after the size: ';' or CR may follow */
    CH_EXT,        /* chunk extensions, ignored up to CR */
    CH_SIZE_LF,    /* CR of the size line seen */
    CH_DATA,       /* remaining bytes of chunk data */
    CH_DATA_CR,    /* CRLF after the data */
    CH_DATA_LF,    /* CR after the data seen */
    CH_TRAILER,    /* a trailer line, or the empty line ending the body */
    CH_TRAILER_LF, /* CR of a trailer line seen */
    CH_END_LF,     /* CR of the final empty line seen */
    CH_DONE,
};

void sl_http_chunked_init(struct sl_http_chunked *c)
{
    c->state = CH_SIZE;
    c->remaining = 0;
    c->line_len = 0;
    c->done = false;
}

/* The size line ended: go to the data, or to the trailers after the last chunk. */
static int chunk_size_done(struct sl_http_chunked *c, const struct sl_buf *out)
{
    c->line_len = 0;
    if (c->remaining == 0) {
        c->state = CH_TRAILER;
        return 0;
    }
    /* Refuse a chunk that cannot fit before its data arrives. */
    if (out->len > out->max || c->remaining > out->max - out->len)
        return SL_ETOOBIG;
    c->state = CH_DATA;
    return 0;
}

int sl_http_chunked_feed(struct sl_http_chunked *c, const char *in, size_t len, struct sl_buf *out)
{
    const unsigned char *p = (const unsigned char *)in;
    size_t i = 0;
    int rc;

    /* The return value is a byte count as an int; the caller feeds the rest later. */
    if (len > INT_MAX)
        len = INT_MAX;
    while (i < len && c->state != CH_DONE) {
        unsigned char ch = p[i];
        int v;

        switch (c->state) {
        case CH_SIZE:
            v = sl_hexval(ch);
            if (v >= 0) {
                if (c->remaining > (UINT64_MAX >> 4))
                    return SL_EPARSE;
                c->remaining = (c->remaining << 4) | (uint64_t)v;
            } else if (c->line_len == 0) {
                return SL_EPARSE; /* no digits */
            } else if (ch == ' ' || ch == '\t') {
                c->state = CH_SIZE_WS;
            } else if (ch == ';') {
                c->state = CH_EXT;
            } else if (ch == '\r') {
                c->state = CH_SIZE_LF;
                i++;
                break;
            } else {
                return SL_EPARSE;
            }
            if (++c->line_len > CHUNK_LINE_MAX)
                return SL_EPARSE;
            i++;
            break;
        case CH_SIZE_WS:
            if (ch == ';')
                c->state = CH_EXT;
            else if (ch == '\r')
                c->state = CH_SIZE_LF;
            else if (ch != ' ' && ch != '\t')
                return SL_EPARSE;
            if (ch != '\r' && ++c->line_len > CHUNK_LINE_MAX)
                return SL_EPARSE;
            i++;
            break;
        case CH_EXT:
            /* A bare LF or CR inside an extension is where parsers disagree about
             * where the line ends: rejected. */
            if (ch == '\r') {
                c->state = CH_SIZE_LF;
            } else if (!is_field_char(ch)) {
                return SL_EPARSE;
            } else if (++c->line_len > CHUNK_LINE_MAX) {
                return SL_EPARSE;
            }
            i++;
            break;
        case CH_SIZE_LF:
            if (ch != '\n')
                return SL_EPARSE;
            i++;
            rc = chunk_size_done(c, out);
            if (rc)
                return rc;
            break;
        case CH_DATA: {
            size_t n = len - i;
            if ((uint64_t)n > c->remaining)
                n = (size_t)c->remaining;
            rc = sl_buf_add(out, in + i, n);
            if (rc)
                return rc;
            i += n;
            c->remaining -= n;
            if (c->remaining == 0)
                c->state = CH_DATA_CR;
            break;
        }
        case CH_DATA_CR:
            if (ch != '\r')
                return SL_EPARSE;
            c->state = CH_DATA_LF;
            i++;
            break;
        case CH_DATA_LF:
            if (ch != '\n')
                return SL_EPARSE;
            c->state = CH_SIZE;
            i++;
            break;
        case CH_TRAILER:
            /* remaining counts the trailer section's bytes. */
            if (++c->remaining > CHUNK_TRAILERS_MAX)
                return SL_ETOOBIG;
            if (ch == '\r') {
                c->state = c->line_len == 0 ? CH_END_LF : CH_TRAILER_LF;
            } else if (!is_field_char(ch)) {
                return SL_EPARSE;
            } else if (++c->line_len > CHUNK_LINE_MAX) {
                return SL_EPARSE;
            }
            i++;
            break;
        case CH_TRAILER_LF:
            if (ch != '\n')
                return SL_EPARSE;
            c->remaining++;
            c->line_len = 0;
            c->state = CH_TRAILER;
            i++;
            break;
        case CH_END_LF:
            if (ch != '\n')
                return SL_EPARSE;
            c->state = CH_DONE;
            c->remaining = 0;
            c->done = true;
            i++;
            break;
        default:
            return SL_EPARSE;
        }
    }
    return (int)i;
}
