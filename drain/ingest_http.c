/* The HTTP drain protocol (drain/conn-internal.h): what the bytes of an HTTP or HTTPS
 * connection mean.
 *
 * A request head is parsed (drain/http.c) and decided early: keep-alive, one framing
 * only (request smuggling), the route (a table, which also gives the 405 answers),
 * HTTP Basic against the in-memory source table (drain/sources.c), size and encoding,
 * then the admission checks that answer 503. A POST /logs body (Content-Length or
 * chunked, gunzipped) is framed (drain/frame.c), appended to the spool as one entry,
 * and the request waits on the durable-wait queue: 204 only once the spool's syncer
 * reports an fsync covering it. GET /healthz, /readyz and /metrics are answered here;
 * /api/... is handed to the read API (drain/api.c) through struct sl_api_ops.
 *
 * Leaves to others: sockets, timeouts, writing answers and closing (drain/listen.c),
 * parsing (drain/http.c, drain/frame.c), the spool record format (drain/entry.c).
 * Thread: the event loop (main thread); it never waits on PostgreSQL or on fsync.
 * Specs: RFC 9112 (HTTP/1.1 messages), RFC 9110 §8.4 (Content-Encoding), RFC 7617
 * (Basic), RFC 6587 §3.4.1 (octet counting), Heroku's Logplex drain format. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <zlib.h>

#include "sluice/api.h"
#include "sluice/clock.h"
#include "sluice/diskguard.h"
#include "sluice/enc.h"
#include "sluice/entry.h"
#include "sluice/log.h"
#include "sluice/logplex.h"
#include "sluice/metrics.h"
#include "sluice/sources.h"
#include "sluice/spool.h"
#include "sluice/web.h"

#include "conn-internal.h"

/* An answer before the body was read: the connection closes after it. */
static void refuse(struct conn *c, int status, const char *text, const char *extra)
{
    c->http.keep_alive = false;
    sl_conn_respond_text(c, status, text, extra);
}

/* 413: say the limit and the setting that sets it. decoded: the gunzipped size passed it
 * (the body was read: the connection may go on); else the body, sent or declared, did
 * (answered before the body was read: it closes). */
static void too_large(struct conn *c, bool decoded)
{
    char text[128];

    snprintf(text, sizeof(text), "%s over %" PRId64 " bytes (SLUICE_MAX_BODY_BYTES)\n",
             decoded ? "gunzipped body" : "body", c->srv->cfg->max_body);
    if (decoded)
        sl_conn_respond_text(c, 413, text, NULL);
    else
        refuse(c, 413, text, NULL);
}

/* ---------------------------------------------------------------- read API */

static void api_respond(void *arg, void *conn, int status, const char *ctype, const char *body,
                        size_t len, const char *extra)
{
    struct conn *c = conn;
    (void)arg;
    c->http.api_pending = false;
    if (status < 400) /* a read token was accepted */
        sl_conn_authed(c);
    sl_conn_respond(c, status, ctype, body, len, extra);
}

static void free_taken(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    sl_conn_free(arg);
}

/* A tail stream: the API owns the bufferevent from now on. The connection struct is
 * freed from the loop, not here: sl_ingest_http_read is still on the stack above us. */
static struct bufferevent *api_take(void *arg, void *conn)
{
    struct conn *c = conn;
    struct bufferevent *bev = c->bev;
    struct timeval now = {0, 0};
    (void)arg;
    c->http.api_pending = false;
    c->bev = NULL;
    c->http.state = S_TAKEN;
    bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
    if (event_base_once(c->srv->base, -1, EV_TIMEOUT, free_taken, c, &now) != 0)
        sl_warn("connection struct not freed", "%s", "");
    return bev;
}

static bool api_tls(void *arg, void *conn)
{
    (void)arg;
    return ((struct conn *)conn)->tls;
}

void sl_ingest_http_api_ops(struct server *s, struct sl_api_ops *ops)
{
    ops->arg = s;
    ops->respond = api_respond;
    ops->take = api_take;
    ops->tls = api_tls;
}

/* ---------------------------------------------------------------- durable wait */

void sl_ingest_http_synced(evutil_socket_t fd, short what, void *arg)
{
    struct server *s = arg;
    uint64_t synced = sl_spool_synced_lsn(s->spool);
    struct conn *c;
    (void)fd;
    (void)what;

    while ((c = TAILQ_FIRST(&s->waitq)) != NULL && c->http.wait_lsn <= synced) {
        TAILQ_REMOVE(&s->waitq, c, http.wq);
        c->http.waiting = false;
        sl_conn_respond(c, 204, NULL, NULL, 0, NULL);
    }
}

/* Spooled: answer 204 once an fsync covers the entry (maybe already). */
static void wait_durable(struct conn *c)
{
    struct server *s = c->srv;

    sl_conn_request_timer_stop(c);
    c->http.state = S_WAIT;
    bufferevent_disable(c->bev, EV_READ);
    if (sl_spool_synced_lsn(s->spool) >= c->http.wait_lsn) {
        sl_conn_respond(c, 204, NULL, NULL, 0, NULL);
        return;
    }
    c->http.waiting = true;
    TAILQ_INSERT_TAIL(&s->waitq, c, http.wq);
}

/* ---------------------------------------------------------------- authentication */

/* The source an "Authorization: Basic" header names, or 0. The credentials are standard
 * base64 (RFC 7617 §2, RFC 4648 §4) as every client sends them; anything else (another
 * alphabet, text after the padding, more than dec holds) names no source. */
static int64_t authenticate(struct conn *c)
{
    const struct sl_str *h = sl_http_header_get(&c->http.req, "authorization");
    char dec[512];
    int n;
    const char *colon;
    size_t off = 6;

    if (h == NULL || h->len < 6 || strncasecmp(h->p, "Basic ", 6) != 0)
        return 0;
    while (off < h->len && h->p[off] == ' ')
        off++;
    n = sl_enc_unb64(h->p + off, h->len - off, (unsigned char *)dec, sizeof(dec));
    if (n <= 0)
        return 0;
    colon = memchr(dec, ':', (size_t)n);
    if (colon == NULL)
        return 0;
    return sl_sources_auth(c->srv->sources, dec, (size_t)(colon - dec), colon + 1,
                           (size_t)(dec + n - colon - 1));
}

/* ---------------------------------------------------------------- POST /logs body */

static int gunzip(struct conn *c)
{
    struct sl_buf *dec = &c->http.dec;
    z_stream z;
    int zr, rc = 0;

    memset(&z, 0, sizeof(z));
    if (inflateInit2(&z, 15 + 32) != Z_OK)
        return SL_ENOMEM;
    z.next_in = (Bytef *)c->http.body.p;
    z.avail_in = (uInt)c->http.body.len;
    do {
        if ((rc = sl_buf_reserve(dec, 64 * 1024)) != 0) {
            if (rc == SL_ETOOBIG && dec->len < dec->max)
                rc = sl_buf_reserve(dec, dec->max - dec->len);
            if (rc)
                break;
        }
        z.next_out = (Bytef *)dec->p + dec->len;
        z.avail_out = (uInt)(dec->cap - dec->len);
        zr = inflate(&z, Z_NO_FLUSH);
        dec->len = dec->cap - z.avail_out;
        if (zr == Z_STREAM_END) {
            /* zero padding after the last member is ignored, as gzip(1) does */
            size_t k = 0;
            while (k < z.avail_in && z.next_in[k] == 0)
                k++;
            if (k == z.avail_in)
                break;
            /* concatenated gzip members (gzip -c a b) */
            if (inflateReset(&z) == Z_OK)
                continue;
            break;
        }
        if (zr != Z_OK && zr != Z_BUF_ERROR) {
            rc = SL_EPARSE;
            break;
        }
        if (zr == Z_BUF_ERROR && z.avail_in == 0) {
            rc = SL_EPARSE; /* truncated stream */
            break;
        }
        if (dec->len >= dec->max && z.avail_out == 0) {
            rc = SL_ETOOBIG;
            break;
        }
    } while (1);
    inflateEnd(&z);
    return rc;
}

/* Frame a body into the spool entry; *nmsgs is the number of messages. */
static int frame_body(struct conn *c, const char *p, size_t len, int64_t *nmsgs)
{
    size_t off = 0;
    uint32_t n = 0;
    uint32_t maxm = (uint32_t)c->srv->cfg->max_message;
    int rc;

    while (off < len) {
        struct sl_frame f;
        int k = sl_frame_next(p + off, len - off, true, &f);
        uint8_t flags = 0;
        uint32_t mlen, olen;

        if (k <= 0)
            break; /* only whitespace left */
        if (f.kind == SL_FRAME_BAD_PREFIX)
            flags |= SL_MSG_BAD_PREFIX;
        else if (f.kind == SL_FRAME_SHORT)
            flags |= SL_MSG_SHORT;
        olen = (uint32_t)f.msg.len;
        mlen = olen;
        if (mlen > maxm) {
            mlen = maxm;
            flags |= SL_MSG_TRUNCATED;
        }
        if ((rc = sl_entry_add(&c->entry, f.msg.p, mlen, olen, flags)))
            return rc;
        n++;
        off += (size_t)k;
    }
    sl_entry_finish(&c->entry, n);
    *nmsgs = n;
    return 0;
}

/* Logplex's own counts: a message count that differs from what was framed is logged
 * and counted; its drop and loss counts go to the metrics. */
static void logplex_counts(struct conn *c, int64_t nmsgs)
{
    const struct sl_str *h = sl_http_header_get(&c->http.req, "logplex-msg-count");

    if (h) {
        uint64_t want;
        if (sl_http_parse_content_length(*h, &want) == 0 && want != (uint64_t)nmsgs) {
            SL_INC(msg_count_mismatch, 1);
            sl_info("msg count mismatch", "source_id=%" PRId64 " header=%" PRIu64 " found=%" PRId64,
                    c->http.source_id, want, nmsgs);
        }
    }
    for (int i = 0; i < 2; i++) {
        uint64_t v;
        h = sl_http_header_get(&c->http.req, i ? "logplex-lost-count" : "logplex-drop-count");
        if (h && sl_http_parse_content_length(*h, &v) == 0)
            SL_INC(logplex_drop_count, v);
    }
}

/* The whole body is here: decode, frame, spool, then wait for durability. */
static void body_done(struct conn *c)
{
    char fid[SL_LOGPLEX_KEY_MAX];
    struct http_conn *h = &c->http;
    struct sl_entry e;
    const struct sl_str *hdr;
    const char *p = h->body.p;
    size_t len = h->body.len;
    int64_t nmsgs = 0;
    struct iovec iov;
    int rc;

    SL_INC(bytes_received, h->body.len);
    if (h->gzip) {
        rc = gunzip(c);
        if (rc == SL_ETOOBIG) {
            too_large(c, true);
            return;
        }
        if (rc) {
            sl_conn_respond_text(c, 400, "body is not valid gzip\n", NULL);
            return;
        }
        p = h->dec.p;
        len = h->dec.len;
    }
    memset(&e, 0, sizeof(e));
    e.kind = SL_ENTRY_HTTP;
    e.source_id = h->source_id;
    e.received_us = sl_clock_real_us();
    /* The frame key: Logplex-Frame-Id, else log-shuttle's X-Request-Id, which it keeps
     * across the retries of a batch; a retry is then stored once (the writer's
     * ingest_frames). */
    if ((hdr = sl_http_header_get(&h->req, "logplex-frame-id")) != NULL)
        e.frame_id = sl_logplex_frame_key(*hdr, fid);
    else if ((hdr = sl_http_header_get(&h->req, "x-request-id")) != NULL)
        e.frame_id = sl_logplex_request_key(*hdr, fid);
    e.tags = h->req.query;
    if ((rc = sl_entry_begin(&c->entry, &e)) || (rc = frame_body(c, p, len, &nmsgs))) {
        if (rc == SL_ENOMEM)
            sl_conn_respond_text(c, 503, "out of memory: retry later\n", "Retry-After: 5\r\n");
        else /* the body was read: the connection may go on */
            sl_conn_respond_text(c, 413, "body's frames over the spool record cap "
                                 "(SLUICE_MAX_BODY_BYTES)\n", NULL);
        return;
    }
    logplex_counts(c, nmsgs);
    iov.iov_base = c->entry.p;
    iov.iov_len = c->entry.len;
    rc = sl_spool_appendv(c->srv->spool, &iov, 1, &h->wait_lsn);
    if (rc == SL_EFULL) {
        SL_INC(spool_full, 1);
        sl_conn_respond_text(c, 503, "spool full: retry later\n", "Retry-After: 5\r\n");
        return;
    }
    if (rc) {
        sl_conn_respond_text(c, 503, "spool unavailable: retry later\n", "Retry-After: 5\r\n");
        return;
    }
    SL_INC(lines_accepted, nmsgs);
    note_spooled(e.received_us);
    sl_conn_release_buffers(c);
    wait_durable(c);
}

/* ---------------------------------------------------------------- GET endpoints */

static void get_healthz(struct conn *c)
{
    sl_conn_respond_text(c, 200, "ok\n", NULL);
}

/* The disk guard's state as the maintenance thread published it (drain/evict.c), in
 * words for /readyz: "disk refusing: 96.2% of the budget used". */
static void disk_words(char *out, size_t len)
{
    uint64_t state = atomic_load(&sl_metrics.disk_state);
    uint64_t bp = atomic_load(&sl_metrics.disk_used_bp);
    uint64_t fig = atomic_load(&sl_metrics.disk_figure);

    snprintf(out, len, "disk %s: %llu.%llu%% of the %s used",
             sl_diskguard_state_name((enum sl_diskguard_state)state),
             (unsigned long long)(bp / 100), (unsigned long long)(bp % 100 / 10),
             fig == SL_DISK_FIGURE_FILESYSTEM ? "filesystem" : "budget");
}

static void get_readyz(struct conn *c)
{
    struct server *s = c->srv;
    struct sl_spool_stats st;
    uint64_t disk = atomic_load(&sl_metrics.disk_state);
    char words[96], body[160];

    sl_spool_get_stats(s->spool, &st);
    disk_words(words, sizeof(words));
    if (st.full) /* first: it is what refuses appends, whatever the database does */
        sl_conn_respond_text(c, 503, "spool disk full\n", NULL);
    else if (!atomic_load(&sl_metrics.db_up))
        sl_conn_respond_text(c, 503, "database unreachable\n", NULL);
    else if (disk == SL_DISK_REFUSING) {
        snprintf(body, sizeof(body), "%s; ingest refused (SLUICE_DISK_REFUSE_PCT)\n", words);
        sl_conn_respond_text(c, 503, body, NULL);
    } else if ((double)st.depth_bytes > 0.8 * (double)s->cfg->spool_max_bytes)
        sl_conn_respond_text(c, 503, "spool above high-water mark\n", NULL);
    else if (s->draining)
        sl_conn_respond_text(c, 503, "shutting down\n", NULL);
    else if (disk == SL_DISK_EVICTING) {
        /* still ready: ingest goes on while the oldest data of opted-in sources goes */
        snprintf(body, sizeof(body), "ready; %s, evicting the oldest data\n", words);
        sl_conn_respond_text(c, 200, body, NULL);
    } else
        sl_conn_respond_text(c, 200, "ready\n", NULL);
}

static bool loopback_peer(const struct conn *c)
{
    static const unsigned char v6[16] = {[15] = 1};
    static const unsigned char v4[12] = {[10] = 0xff, [11] = 0xff};

    return memcmp(c->addr, v6, 16) == 0 || (memcmp(c->addr, v4, 12) == 0 && c->addr[12] == 127);
}

/* /metrics on the drain's ports: with SLUICE_METRICS_TOKEN set, only to
 * "Authorization: Bearer <it>" (compared in constant time); without it, only to
 * loopback clients (a scraper on the host, the tests and benchmarks). */
static bool metrics_allowed(struct conn *c)
{
    const char *tok = c->srv->cfg->metrics_token;
    const struct sl_str *h = sl_http_header_get(&c->http.req, "authorization");
    size_t tl = strlen(tok);
    unsigned char diff = 0;

    if (tl == 0) {
        if (loopback_peer(c))
            return true;
        refuse(c, 403, "/metrics answers loopback clients only unless SLUICE_METRICS_TOKEN is "
                       "set\n", NULL);
        return false;
    }
    if (h == NULL || h->len != 7 + tl || strncasecmp(h->p, "Bearer ", 7) != 0) {
        diff = 1;
    } else {
        for (size_t i = 0; i < tl; i++)
            diff |= (unsigned char)(h->p[7 + i] ^ tok[i]);
    }
    if (diff == 0)
        return true;
    sl_conn_respond_text(c, 401, "unauthorized\n", "WWW-Authenticate: Bearer realm=\"sluice\"\r\n");
    return false;
}

static void get_metrics(struct conn *c)
{
    struct sl_buf b;

    if (!metrics_allowed(c))
        return;
    sl_buf_init(&b, 1 << 20);
    if (sl_metrics_render(&b, c->srv->spool) == 0)
        sl_conn_respond(c, 200, "text/plain; version=0.0.4", b.p, b.len, NULL);
    else
        sl_conn_respond_text(c, 500, "metrics unavailable\n", NULL);
    sl_buf_free(&b);
}

/* Answered later, from a worker's result (never waits here). */
static void get_api(struct conn *c)
{
    c->http.state = S_API;
    c->http.api_pending = true;
    sl_conn_request_timer_stop(c);
    sl_api_handle(c->srv->api, c, &c->http.req);
}

/* The web viewer's files (drain/web.c): embedded, revalidated by ETag (304), with the
 * viewer's security headers. */
static void get_web(struct conn *c)
{
    const struct sl_web_file *f = sl_web_find(c->http.req.path);
    const struct sl_str *inm = sl_http_header_get(&c->http.req, "if-none-match");
    char extra[1024];

    if (f == NULL) {
        sl_conn_respond_text(c, 404, "not found\n", NULL);
        return;
    }
    snprintf(extra, sizeof(extra), SL_WEB_HEADERS "ETag: \"%s\"\r\n", f->etag);
    if (inm && sl_web_etag_match(*inm, f->etag)) {
        sl_conn_respond(c, 304, NULL, NULL, 0, extra);
        return;
    }
    sl_conn_respond(c, 200, sl_web_ctype(f), (const char *)f->p, f->len, extra);
}

/* ---------------------------------------------------------------- request heads */

/* How the request's body is framed. */
struct framing {
    bool chunked;
    bool has_length; /* Content-Length was sent */
    uint64_t clen;   /* its value */
};

static void post_logs(struct conn *c, const struct framing *fr);

enum route_id { R_LOGS, R_HEALTHZ, R_READYZ, R_METRICS, R_SESSION, R_API, R_WEB, R_COUNT };

/* The viewer's sign-in and sign-out (POST, no body) and who-am-I (GET): drain/api.c. */
static bool session_path(struct sl_str path)
{
    return sl_str_eq(path, "/api/v1/session") || sl_str_eq(path, "/api/v1/session/signout");
}

static const struct sl_http_route routes[R_COUNT] = {
    [R_LOGS] = {"/logs", NULL, SL_HTTP_POST},
    [R_HEALTHZ] = {"/healthz", NULL, SL_HTTP_GET | SL_HTTP_HEAD},
    [R_READYZ] = {"/readyz", NULL, SL_HTTP_GET | SL_HTTP_HEAD},
    [R_METRICS] = {"/metrics", NULL, SL_HTTP_GET | SL_HTTP_HEAD},
    [R_SESSION] = {NULL, session_path, SL_HTTP_GET | SL_HTTP_HEAD | SL_HTTP_POST},
    [R_API] = {NULL, sl_api_path, SL_HTTP_GET | SL_HTTP_HEAD},
    [R_WEB] = {NULL, sl_web_path, SL_HTTP_GET | SL_HTTP_HEAD},
};

/* What each route does, and the body of its 405 (the Allow header comes from the
 * route's methods in the table above, RFC 9110 §15.5.6). The read API's errors are
 * JSON (docs/api.md). */
static const struct route_action {
    void (*get)(struct conn *c); /* GET and HEAD routes */
    const char *not_allowed;
    const char *ctype;
} actions[R_COUNT] = {
    [R_LOGS] = {NULL, "POST only\n", NULL},
    [R_HEALTHZ] = {get_healthz, "method not allowed\n", NULL},
    [R_READYZ] = {get_readyz, "method not allowed\n", NULL},
    [R_METRICS] = {get_metrics, "method not allowed\n", NULL},
    [R_SESSION] = {get_api, "{\"error\":\"method not allowed\"}\n", "application/json"},
    [R_API] = {get_api, "{\"error\":\"method not allowed\"}\n", "application/json"},
    [R_WEB] = {get_web, "method not allowed\n", NULL},
};

/* 405 with the Allow header every 405 must carry (RFC 9110 §15.5.6). */
static void not_allowed(struct conn *c, int r)
{
    char methods[32], allow[64];

    if (sl_http_allow(routes[r].methods, methods, sizeof(methods)) < 0) {
        refuse(c, 500, "internal error\n", NULL); /* a route table no header can hold */
        return;
    }
    snprintf(allow, sizeof(allow), "Allow: %s\r\n", methods);
    if (actions[r].ctype == NULL) {
        refuse(c, 405, actions[r].not_allowed, allow);
        return;
    }
    c->http.keep_alive = false; /* the body, if any, was not read */
    sl_conn_respond(c, 405, actions[r].ctype, actions[r].not_allowed,
                    strlen(actions[r].not_allowed), allow);
}

/* Connection: close / keep-alive (RFC 9112 §9.3); HTTP/1.0 closes by default. */
static void head_keep_alive(struct conn *c)
{
    const struct sl_str *conn_h = sl_http_header_get(&c->http.req, "connection");

    c->http.keep_alive = c->http.req.minor_version >= 1;
    if (conn_h && sl_http_value_has_token(*conn_h, "close"))
        c->http.keep_alive = false;
    if (conn_h && sl_http_value_has_token(*conn_h, "keep-alive"))
        c->http.keep_alive = true;
}

/* Request smuggling defences (RFC 9112 §6.3): one framing, stated once; chunked is the
 * only transfer coding. Returns false when the request was answered. */
static bool head_framing(struct conn *c, struct framing *fr)
{
    const struct sl_http_request *req = &c->http.req;
    const struct sl_str *te = sl_http_header_get(req, "transfer-encoding");
    const struct sl_str *cl = sl_http_header_get(req, "content-length");
    int ncl = 0, nte = 0;

    memset(fr, 0, sizeof(*fr));
    for (size_t i = 0; i < req->nheaders; i++) {
        struct sl_str n = req->headers[i].name;
        ncl += n.len == 14 && strncasecmp(n.p, "content-length", 14) == 0;
        nte += n.len == 17 && strncasecmp(n.p, "transfer-encoding", 17) == 0;
    }
    if ((te && cl) || ncl > 1 || nte > 1) {
        refuse(c, 400, "ambiguous message framing (Content-Length/Transfer-Encoding)\n", NULL);
        return false;
    }
    if (te) {
        if (!(te->len == 7 && strncasecmp(te->p, "chunked", 7) == 0)) {
            refuse(c, 501, "only Transfer-Encoding: chunked is supported\n", NULL);
            return false;
        }
        fr->chunked = true;
        sl_http_chunked_init(&c->http.ch);
    } else if (cl) {
        if (sl_http_parse_content_length(*cl, &fr->clen)) {
            refuse(c, 400, "bad Content-Length\n", NULL);
            return false;
        }
        fr->has_length = true;
    }
    c->http.chunked = fr->chunked;
    return true;
}

/* Route from the table: POST /logs goes on to its body; GET and HEAD endpoints answer
 * (keeping the connection unless the request has a body, which is not read); anything
 * else is 404 or the route's 405, and closes. */
static void head_route(struct conn *c, const struct framing *fr)
{
    const struct sl_http_request *req = &c->http.req;
    unsigned method = sl_http_method_bit(req->method);
    bool get = (method & (SL_HTTP_GET | SL_HTTP_HEAD)) != 0;
    int status;
    int r = sl_http_route_find(routes, R_COUNT, req->method, req->path, &status);

    if (r == R_LOGS && status == 200) {
        post_logs(c, fr);
        return;
    }
    if (r == R_SESSION && status == 200 && !get) {
        /* sign-in and sign-out carry no body: one sent is not read, and closes */
        if (fr->clen || fr->chunked)
            c->http.keep_alive = false;
        get_api(c);
        return;
    }
    if (status == 200 || (status == 404 && get)) {
        if (fr->clen || fr->chunked)
            c->http.keep_alive = false;
        c->http.head_only = method == SL_HTTP_HEAD;
        if (r < 0 || actions[r].get == NULL)
            sl_conn_respond_text(c, 404, "not found\n", NULL);
        else
            actions[r].get(c);
        return;
    }
    if (r < 0)
        refuse(c, 404, "not found\n", NULL);
    else
        not_allowed(c, r);
}

/* Admission, 503 #1: a source table never loaded (PostgreSQL down since start, no
 * snapshot) cannot authenticate, and a 401 would make logplex drop the frame for good. */
static bool admit_sources_loaded(struct conn *c)
{
    if (sl_sources_generation(c->srv->sources) != 0)
        return true;
    refuse(c, 503, "source table not loaded yet: retry later\n", "Retry-After: 5\r\n");
    return false;
}

/* Admission, 503 #1b: the disk guard refuses ingest (docs/retention.md, "Disk guard"):
 * the database's disk is past SLUICE_DISK_REFUSE_PCT. An atomic the maintenance thread
 * sets; nothing here waits. */
static bool admit_disk(struct conn *c)
{
    if (atomic_load_explicit(&sl_metrics.disk_state, memory_order_relaxed) != SL_DISK_REFUSING)
        return true;
    SL_INC(disk_refused, 1);
    refuse(c, 503, "database disk nearly full: retry later\n", "Retry-After: 30\r\n");
    return false;
}

/* Admission, 503 #2: the spool has room for the body as declared. */
static bool admit_spool_room(struct conn *c, uint64_t clen)
{
    struct sl_spool_stats st;

    sl_spool_get_stats(c->srv->spool, &st);
    if (st.depth_bytes + clen <= (uint64_t)c->srv->cfg->spool_max_bytes)
        return true;
    SL_INC(spool_full, 1);
    refuse(c, 503, "spool full: retry later\n", "Retry-After: 5\r\n");
    return false;
}

/* Admission, 503 #3: the bytes of all bodies being read stay under
 * SLUICE_MAX_INFLIGHT_BYTES; this body's declared length is reserved. */
static bool admit_inflight(struct conn *c, uint64_t clen)
{
    struct server *s = c->srv;

    if (s->inflight + clen > (uint64_t)s->cfg->max_inflight) {
        refuse(c, 503, "too many bytes in flight: retry later\n", "Retry-After: 1\r\n");
        return false;
    }
    c->http.reserved = clen;
    s->inflight += clen;
    return true;
}

/* Admission, 503 #4: memory for a Content-Length body, taken before reading it. */
static bool admit_body_buffer(struct conn *c, uint64_t clen)
{
    if (c->http.chunked || clen == 0 || sl_buf_reserve(&c->http.body, (size_t)clen) == 0)
        return true;
    refuse(c, 503, "out of memory: retry later\n", "Retry-After: 1\r\n");
    return false;
}

/* POST /logs: authenticate and admit before reading the body. Every early answer
 * closes: the body was not read. */
static void post_logs(struct conn *c, const struct framing *fr)
{
    struct http_conn *h = &c->http;
    const struct sl_str *ce = sl_http_header_get(&h->req, "content-encoding");
    const struct sl_str *expect = sl_http_header_get(&h->req, "expect");

    if (!fr->chunked && !fr->has_length) {
        refuse(c, 411, "Content-Length or chunked encoding required\n", NULL);
        return;
    }
    if (!admit_sources_loaded(c))
        return;
    h->source_id = authenticate(c);
    if (h->source_id == 0) {
        refuse(c, 401, "unauthorized\n", "WWW-Authenticate: Basic realm=\"sluice\"\r\n");
        return;
    }
    sl_conn_authed(c);
    if (!admit_disk(c))
        return;
    if (fr->clen > (uint64_t)c->srv->cfg->max_body) {
        too_large(c, false);
        return;
    }
    if (ce && sl_http_parse_content_encoding(*ce, &h->gzip) != 0) {
        refuse(c, 415, "unsupported Content-Encoding (gzip or identity)\n", NULL);
        return;
    }
    if (!admit_spool_room(c, fr->clen) || !admit_inflight(c, fr->clen))
        return;
    h->body_left = fr->clen;
    if (!admit_body_buffer(c, fr->clen))
        return;
    if (expect && sl_str_eq(*expect, "100-continue") && h->req.minor_version >= 1)
        evbuffer_add(bufferevent_get_output(c->bev), "HTTP/1.1 100 Continue\r\n\r\n", 25);
    h->state = S_BODY;
}

/* Requests only the operational endpoints (/healthz, /readyz, /metrics) answer
 * normally: on a connection of the health reserve (accepted past SLUICE_MAX_CONNECTIONS)
 * and while shutting down. Returns false when the request was answered (503, closing). */
static bool head_admit_connection(struct conn *c)
{
    const struct sl_str path = c->http.req.path;
    bool health = sl_str_eq(path, "/healthz") || sl_str_eq(path, "/readyz") ||
                  sl_str_eq(path, "/metrics");

    if (c->reserve)
        c->http.keep_alive = false;
    if (health)
        return true;
    if (c->srv->draining && !c->srv->handover) {
        refuse(c, 503, "shutting down: retry later\n", "Retry-After: 5\r\n");
        return false;
    }
    if (c->reserve) {
        refuse(c, 503, "too many connections: retry later (SLUICE_MAX_CONNECTIONS)\n",
               "Retry-After: 1\r\n");
        return false;
    }
    return true;
}

/* One Authorization header at most: two could be read differently by a proxy in front
 * and by us (RFC 9110 §5.3 allows repeats only of list-valued fields). */
static bool head_single_authorization(struct conn *c)
{
    const struct sl_http_request *req = &c->http.req;
    int n = 0;

    for (size_t i = 0; i < req->nheaders; i++) {
        struct sl_str name = req->headers[i].name;
        n += name.len == 13 && strncasecmp(name.p, "authorization", 13) == 0;
    }
    if (n <= 1)
        return true;
    refuse(c, 400, "more than one Authorization header\n", NULL);
    return false;
}

/* The head is parsed (c->http.req). Decide, or move on to the body. */
static void handle_head(struct conn *c)
{
    struct framing fr;

    head_keep_alive(c);
    if (!head_admit_connection(c) || !head_single_authorization(c) || !head_framing(c, &fr))
        return;
    head_route(c, &fr);
}

/* ---------------------------------------------------------------- reading */

/* Parse a request head from in. Returns false when more bytes are needed or the
 * request was answered. */
static bool read_head(struct conn *c, struct evbuffer *in, size_t avail)
{
    struct http_conn *h = &c->http;
    size_t max = (size_t)c->srv->cfg->max_header;
    size_t n = avail < max ? avail : max;
    const char *p = (const char *)evbuffer_pullup(in, (ev_ssize_t)n);
    int rc = sl_http_parse_request(p, n, max, &h->req);

    if (rc == SL_EAGAIN && n < max)
        return false;
    if (rc == SL_EAGAIN || rc == SL_ETOOBIG) {
        refuse(c, 431, "request head too large\n", NULL);
        return false;
    }
    if (rc < 0) {
        refuse(c, 400, "malformed request\n", NULL);
        return false;
    }
    /* Keep a private copy of the head, so the slices outlive the buffer. */
    sl_buf_reset(&h->head);
    if (sl_buf_add(&h->head, p, (size_t)rc) ||
        sl_http_parse_request(h->head.p, h->head.len, max, &h->req) != rc) {
        refuse(c, 500, "internal error\n", NULL);
        return false;
    }
    evbuffer_drain(in, (size_t)rc);
    sl_conn_head_timer_stop(c);
    /* "POST http://host/logs" (absolute form): route on the path */
    h->req.path = sl_http_origin_path(h->req.path);
    h->gzip = false;
    h->chunked = false;
    h->body_left = 0;
    handle_head(c);
    if (h->state == S_BODY && !h->chunked && h->body_left == 0)
        body_done(c);
    return true;
}

/* Decode chunked body bytes from in, reserving what they add to the bytes in flight.
 * Returns false when more bytes are needed or the request was answered. */
static bool read_chunked(struct conn *c, struct evbuffer *in, size_t avail)
{
    struct server *s = c->srv;
    struct http_conn *h = &c->http;
    const char *p = (const char *)evbuffer_pullup(in, -1);
    size_t before = h->body.len;
    int k = sl_http_chunked_feed(&h->ch, p, avail, &h->body);

    if (k == SL_ETOOBIG) {
        too_large(c, false);
        return false;
    }
    if (k < 0) {
        refuse(c, 400, "bad chunked encoding\n", NULL);
        return false;
    }
    if (h->body.len > before) {
        size_t grow = h->body.len - before;
        if (s->inflight + grow > (uint64_t)s->cfg->max_inflight) {
            refuse(c, 503, "too many bytes in flight: retry later\n", "Retry-After: 1\r\n");
            return false;
        }
        s->inflight += grow;
        h->reserved += grow;
    }
    evbuffer_drain(in, (size_t)k);
    if (h->ch.done)
        body_done(c);
    else if (k == 0)
        return false;
    return true;
}

/* Copy Content-Length body bytes from in. */
static bool read_length(struct conn *c, struct evbuffer *in, size_t avail)
{
    struct http_conn *h = &c->http;
    size_t n = avail < h->body_left ? avail : (size_t)h->body_left;

    if (sl_buf_reserve(&h->body, n)) {
        too_large(c, false);
        return false;
    }
    evbuffer_remove(in, h->body.p + h->body.len, n);
    h->body.len += n;
    h->body_left -= n;
    if (h->body_left == 0)
        body_done(c);
    return true;
}

/* Handle the requests in in, as far as they have arrived. */
static void read_requests(struct conn *c, struct evbuffer *in)
{
    while (c->http.state == S_HEAD || c->http.state == S_BODY) {
        size_t avail = evbuffer_get_length(in);
        bool more;

        if (avail == 0)
            return;
        sl_conn_request_timer_start(c);
        if (c->http.state == S_HEAD)
            more = read_head(c, in, avail);
        else if (c->http.chunked)
            more = read_chunked(c, in, avail);
        else
            more = read_length(c, in, avail);
        if (!more)
            return;
    }
}

void sl_ingest_http_read(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;

    if (c->http.state == S_API)
        return;
    read_requests(c, bufferevent_get_input(bev));
    if (c->http.eof) /* the client half-closed after what was just read */
        sl_conn_eof(c);
}
