/* HTTP/1.1 request parsing for the drain listener (RFC 9112): the request head, the
 * chunked transfer coding, and the small rules the request path applies (the target of
 * an absolute-form request, Content-Encoding lists, the route table, reason phrases).
 * The connection handling lives in drain/listen.c and drain/ingest_http.c.
 *
 * Every function here is pure (the head parser after picohttpparser): bytes in, slices
 * out. */
#ifndef SLUICE_HTTP_H
#define SLUICE_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/buf.h"
#include "sluice/err.h"
#include "sluice/str.h"

#define SL_HTTP_MAX_HEADERS 64

struct sl_http_header {
    struct sl_str name;
    struct sl_str value; /* leading and trailing spaces/tabs removed */
};

struct sl_http_request {
    struct sl_str method;
    struct sl_str target; /* as sent: "/logs?app=x" */
    struct sl_str path;   /* target up to '?' */
    struct sl_str query;  /* after '?', without it; NULL slice when absent */
    int minor_version;    /* 0 or 1 (HTTP/1.0, HTTP/1.1) */
    size_t nheaders;
    struct sl_http_header headers[SL_HTTP_MAX_HEADERS];
};

/* Parse a request head at the start of buf (request line, headers, empty line;
 * CRLF or bare LF line ends).
 * Returns the head's length in bytes (> 0) once it is complete; SL_EAGAIN when
 * buf holds part of a head (and len < max_head); SL_ETOOBIG when the head is
 * longer than max_head or has more than SL_HTTP_MAX_HEADERS headers; SL_EPARSE
 * for a malformed head (bad request line, a header without ':', obs-fold, a
 * control character, an HTTP version other than 1.0/1.1). */
int sl_http_parse_request(const char *buf, size_t len, size_t max_head,
                          struct sl_http_request *req);

/* The value of the first header named name (case-insensitive), or NULL. */
const struct sl_str *sl_http_header_get(const struct sl_http_request *req, const char *name);

/* Does a comma-separated header value contain token (case-insensitive)?
 * ("keep-alive, Upgrade" contains "upgrade") */
bool sl_http_value_has_token(struct sl_str value, const char *token);

/* Parse a Content-Length value: digits only, at most 18 of them.
 * Returns 0 and *n, or SL_EPARSE. */
int sl_http_parse_content_length(struct sl_str v, uint64_t *n);

/* The path to route on for a request target: for the absolute form ("http://host/logs",
 * RFC 9112 §3.2.2) the part from the first '/' after the authority ("/" when there is
 * none); any other target unchanged. The result points into target. */
struct sl_str sl_http_origin_path(struct sl_str target);

/* Parse a Content-Encoding value: a comma-separated list of codings, case-insensitive
 * (RFC 9110 §8.4). Accepted: "identity" any number of times, and at most one "gzip" (or
 * "x-gzip"); empty list items are ignored. Returns 0 and *gzip (true when the body is
 * gzipped), or SL_EPARSE for any other coding or a second gzip. */
SL_MUSTCHECK int sl_http_parse_content_encoding(struct sl_str v, bool *gzip);

/* The reason phrase of a status code the server sends ("Unknown" for any other). */
const char *sl_http_reason(int status);

/* Methods a route accepts (a bit set). */
enum {
    SL_HTTP_GET = 1,
    SL_HTTP_HEAD = 2,
    SL_HTTP_POST = 4,
};

/* The SL_HTTP_* bit of a method name (case-sensitive, RFC 9110 §9.1), 0 for others. */
unsigned sl_http_method_bit(struct sl_str method);

/* The value of an Allow header (RFC 9110 §10.2.1) for a set of SL_HTTP_* bits:
 * "GET, HEAD, POST" in that order, the ones present; written to out (cap bytes, NUL
 * included). Returns its length, or SL_ETOOBIG when it does not fit. */
SL_MUSTCHECK int sl_http_allow(unsigned methods, char *out, size_t cap);

/* One entry of a route table: an exact path, or (path NULL) a predicate on the path. */
struct sl_http_route {
    const char *path;
    bool (*match)(struct sl_str path);
    unsigned methods; /* SL_HTTP_* bits */
};

/* Look a request up in a route table (first matching path wins).
 * Returns the index of the route whose path matches, with *status 200 when it accepts
 * method and 405 when it does not; -1 with *status 404 when no route has the path. */
int sl_http_route_find(const struct sl_http_route *table, size_t n, struct sl_str method,
                       struct sl_str path, int *status);

/* Decoder for "Transfer-Encoding: chunked" bodies (RFC 9112 §7.1): chunk sizes in
 * hex, chunk extensions ignored, trailers read and dropped. */
struct sl_http_chunked {
    int state;          /* private */
    uint64_t remaining; /* private */
    size_t line_len;    /* private: bytes of the current size/trailer line */
    bool done;          /* set once the last chunk and the trailers are consumed */
};

void sl_http_chunked_init(struct sl_http_chunked *c);

/* Feed len bytes of the wire form; the decoded data is appended to out.
 * Returns the number of bytes consumed (it stops right after the end of the
 * body, so bytes of a pipelined next request are left to the caller), SL_EPARSE for
 * a malformed encoding (bad hex, a size line over 1 KiB, missing CRLF after data),
 * SL_ETOOBIG when out would pass its max. Can be called with any split of the input. */
int sl_http_chunked_feed(struct sl_http_chunked *c, const char *in, size_t len,
                         struct sl_buf *out);

#endif
