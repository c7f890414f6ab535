/* The drain server (include/sluice/server.h).
 *
 * One libevent loop on the main thread owns every socket: the HTTP and HTTPS
 * listeners (TLS through OpenSSL bufferevents), and the syslog listeners (TCP and
 * TLS, RFC 6587 / RFC 5425 framing). A request is read whole (head, then a bounded
 * body, chunked or not, gunzipped), framed (drain/frame.c), appended to the spool as
 * one entry, and answered 204 only when the spool's syncer thread reports an fsync
 * covering it. The loop never talks to PostgreSQL: authentication uses the in-memory
 * source table (drain/sources.c) that the maintenance thread keeps fresh.
 *
 * Threads started here: spool syncer (drain/spool.c), writer (drain/writer.c),
 * maintenance (drain/maint.c). */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <zlib.h>

#include "sluice/entry.h"
#include "sluice/frame.h"
#include "sluice/http.h"
#include "sluice/api.h"
#include "sluice/feed.h"
#include "sluice/log.h"
#include "sluice/maint.h"
#include "sluice/metrics.h"
#include "sluice/notifier.h"
#include "sluice/rfc5424.h"
#include "sluice/server.h"
#include "sluice/sources.h"
#include "sluice/spool.h"
#include "sluice/writer.h"

enum conn_kind { K_HTTP, K_SYSLOG };
enum conn_state { S_HEAD, S_BODY, S_WAIT, S_API, S_TAKEN, S_CLOSING };
enum lst { L_HTTP, L_HTTPS, L_SYSLOG_TLS, L_SYSLOG, L_COUNT };

struct server;

struct conn {
    struct server *srv;
    struct bufferevent *bev;
    enum conn_kind kind;
    enum conn_state state;
    bool keep_alive;
    bool gzip;
    bool chunked;
    bool in_request;      /* bytes of a request have arrived */
    bool waiting;         /* on the durable-wait queue */
    bool linger;          /* discard input for a while before closing */
    bool head_only;       /* answering a HEAD request */
    bool api_pending;     /* the read API owes this connection an answer */
    size_t linger_bytes;
    uint64_t body_left;   /* Content-Length bytes still to read */
    size_t reserved;      /* bytes counted in srv->inflight */
    int64_t source_id;
    uint64_t wait_lsn;
    struct sl_buf head;   /* a copy of the request head; req slices point into it */
    struct sl_http_request req;
    struct sl_http_chunked ch;
    struct sl_buf body;   /* the body as sent */
    struct sl_buf dec;    /* gunzipped body */
    struct sl_buf entry;  /* the spool entry */
    struct event *deadline;
    /* syslog */
    int64_t entry_src;
    uint32_t entry_n;
    bool entry_pending;   /* an entry the spool refused (full): retried by timer */
    uint64_t skip_bytes;  /* rest of an over-long octet-counted frame to discard */
    bool skip_line;       /* rest of an over-long line to discard, up to its newline */
    int64_t last_src;
    bool last_secret;     /* last_host is the ingest token */
    uint64_t last_gen;    /* source table generation of that lookup (rotate, rm) */
    bool entry_secret;
    char last_host[128];
    size_t last_host_len;
    TAILQ_ENTRY(conn) all;
    TAILQ_ENTRY(conn) wq;
};

TAILQ_HEAD(conn_list, conn);

struct server {
    struct sl_config *cfg;
    struct event_base *base;
    SSL_CTX *ssl;
    struct evconnlistener *lev[L_COUNT];
    struct sl_spool *spool;
    struct sl_sources *sources;
    struct sl_writer *writer;
    struct sl_maint *maint;
    struct sl_notifier *notifier;
    struct sl_feed *feed;
    struct sl_api *api;
    struct event *sync_ev;
    struct event *sig_ev[2];
    struct event *drain_timer;
    struct conn_list conns;
    struct conn_list waitq;
    size_t nconns;
    uint64_t inflight;
    bool draining;
    int64_t drain_deadline;
    int64_t last_unknown_warn;
};

static void conn_free(struct conn *c);
static void http_read(struct bufferevent *bev, void *arg);
static void syslog_read(struct bufferevent *bev, void *arg);
static void conn_event(struct bufferevent *bev, short what, void *arg);

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---------------------------------------------------------------- responses */

static const char *reason(int status)
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

static void conn_release_buffers(struct conn *c)
{
    struct server *s = c->srv;

    s->inflight -= c->reserved < s->inflight ? c->reserved : s->inflight;
    c->reserved = 0;
    /* Keep small buffers for the next request on this connection; give big ones back
     * so idle keep-alive connections hold little memory. */
    if (c->body.cap > 256 * 1024)
        sl_buf_free(&c->body);
    if (c->dec.cap > 256 * 1024)
        sl_buf_free(&c->dec);
    if (c->entry.cap > 256 * 1024)
        sl_buf_free(&c->entry);
    sl_buf_reset(&c->body);
    sl_buf_reset(&c->dec);
    sl_buf_reset(&c->entry);
}

/* Closing after an early answer (401, 413, ...) while the client may still be
 * sending its body: read and discard for a moment, so the client reads our answer
 * instead of a connection reset (the "lingering close" of nginx and Apache). */
#define LINGER_MAX_BYTES (8u << 20)

static void linger_read(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);

    c->linger_bytes += evbuffer_get_length(in);
    evbuffer_drain(in, evbuffer_get_length(in));
    if (c->linger_bytes > LINGER_MAX_BYTES)
        conn_free(c);
}

static void linger_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn_free(arg);
}

static void conn_write_done(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    struct timeval tv = {2, 0};

    if (c->state != S_CLOSING || evbuffer_get_length(bufferevent_get_output(bev)) != 0)
        return;
    if (!c->linger) {
        conn_free(c);
        return;
    }
    /* answered: now only wait for the client to finish or give up */
    if (c->deadline)
        event_free(c->deadline);
    c->deadline = evtimer_new(c->srv->base, linger_timeout, c);
    if (c->deadline == NULL) {
        conn_free(c);
        return;
    }
    evtimer_add(c->deadline, &tv);
    bufferevent_setcb(bev, linger_read, NULL, conn_event, c);
    bufferevent_enable(bev, EV_READ);
}

/* Queue a response. close_after: the connection closes once it is written. */
static void respond(struct conn *c, int status, const char *ctype, const char *body, size_t blen,
                    const char *extra)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    struct server *s = c->srv;

    if (s->draining)
        c->keep_alive = false;
    sl_metrics_status(status);
    evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\n", status, reason(status));
    if (status != 204)
        evbuffer_add_printf(out, "Content-Length: %zu\r\n", blen);
    if (ctype && blen)
        evbuffer_add_printf(out, "Content-Type: %s\r\n", ctype);
    if (extra)
        evbuffer_add(out, extra, strlen(extra));
    if (!c->keep_alive)
        evbuffer_add(out, "Connection: close\r\n", 19);
    evbuffer_add(out, "\r\n", 2);
    if (blen && !c->head_only) /* HEAD: the headers a GET would get, no body */
        evbuffer_add(out, body, blen);
    c->head_only = false;

    if (c->deadline)
        evtimer_del(c->deadline);
    conn_release_buffers(c);
    c->in_request = false;
    if (!c->keep_alive) {
        /* a body still on its way: linger after answering */
        c->linger = c->state == S_HEAD || c->state == S_BODY;
        c->state = S_CLOSING;
        bufferevent_disable(c->bev, EV_READ);
        bufferevent_setcb(c->bev, NULL, conn_write_done, conn_event, c);
        bufferevent_enable(c->bev, EV_WRITE);
        return;
    }
    c->state = S_HEAD;
    bufferevent_enable(c->bev, EV_READ);
    /* A pipelined request may already be buffered: handle it from the loop, not by
     * recursion, so a long pipeline cannot grow the stack. */
    if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
        bufferevent_trigger(c->bev, EV_READ, BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
}

static void respond_text(struct conn *c, int status, const char *text, const char *extra)
{
    respond(c, status, "text/plain; charset=utf-8", text, strlen(text), extra);
}

/* ---------------------------------------------------------------- read API */

static void api_respond(void *arg, void *conn, int status, const char *ctype, const char *body,
                        size_t len, const char *extra)
{
    struct conn *c = conn;
    (void)arg;
    c->api_pending = false;
    respond(c, status, ctype, body, len, extra);
}

static void free_taken(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn_free(arg);
}

/* A tail stream: the API owns the bufferevent from now on. The connection struct is
 * freed from the loop, not here: http_read is still on the stack above us. */
static struct bufferevent *api_take(void *arg, void *conn)
{
    struct conn *c = conn;
    struct bufferevent *bev = c->bev;
    struct timeval now = {0, 0};
    (void)arg;
    c->api_pending = false;
    c->bev = NULL;
    c->state = S_TAKEN;
    bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
    if (event_base_once(c->srv->base, -1, EV_TIMEOUT, free_taken, c, &now) != 0)
        sl_warn("connection struct not freed", "%s", "");
    return bev;
}

/* ---------------------------------------------------------------- durable wait */

static void on_synced_thread(void *arg, uint64_t lsn)
{
    struct server *s = arg;
    (void)lsn;
    event_active(s->sync_ev, EV_READ, 0);
}

static void on_synced(evutil_socket_t fd, short what, void *arg)
{
    struct server *s = arg;
    uint64_t synced = sl_spool_synced_lsn(s->spool);
    struct conn *c;
    (void)fd;
    (void)what;

    while ((c = TAILQ_FIRST(&s->waitq)) != NULL && c->wait_lsn <= synced) {
        TAILQ_REMOVE(&s->waitq, c, wq);
        c->waiting = false;
        respond(c, 204, NULL, NULL, 0, NULL);
    }
}

/* The age of the oldest unwritten entry must show even while the writer cannot read
 * (PostgreSQL down): the first entry spooled into an empty backlog sets it; the writer
 * moves it forward as it commits and clears it when it has caught up. */
static void note_spooled(int64_t received_us)
{
    uint64_t none = 0;
    atomic_compare_exchange_strong(&sl_metrics.spool_oldest_us, &none, (uint64_t)received_us);
}

/* ---------------------------------------------------------------- POST /logs */

static int b64val(unsigned char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    if (ch == '+' || ch == '-')
        return 62;
    if (ch == '/' || ch == '_')
        return 63;
    return -1;
}

/* Decode base64 into out (cap bytes). Returns the length, or -1. */
static int b64decode(struct sl_str in, char *out, size_t cap)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t n = 0;

    for (size_t i = 0; i < in.len; i++) {
        int v;
        if (in.p[i] == '=')
            break;
        v = b64val((unsigned char)in.p[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n >= cap)
                return -1;
            out[n++] = (char)((acc >> bits) & 0xFF);
        }
    }
    return (int)n;
}

static int64_t authenticate(struct conn *c)
{
    const struct sl_str *h = sl_http_header_get(&c->req, "authorization");
    char dec[512];
    int n;
    const char *colon;

    size_t off = 6;

    if (h == NULL || h->len < 6 || strncasecmp(h->p, "Basic ", 6) != 0)
        return 0;
    while (off < h->len && h->p[off] == ' ')
        off++;
    n = b64decode(sl_str_make(h->p + off, h->len - off), dec, sizeof(dec));
    if (n <= 0)
        return 0;
    colon = memchr(dec, ':', (size_t)n);
    if (colon == NULL)
        return 0;
    return sl_sources_auth(c->srv->sources, dec, (size_t)(colon - dec), colon + 1,
                           (size_t)(dec + n - colon - 1));
}

static const char *const unauthorized_extra = "WWW-Authenticate: Basic realm=\"sluice\"\r\n";

static int gunzip(struct conn *c)
{
    z_stream z;
    int zr, rc = 0;

    memset(&z, 0, sizeof(z));
    if (inflateInit2(&z, 15 + 32) != Z_OK)
        return SL_ENOMEM;
    z.next_in = (Bytef *)c->body.p;
    z.avail_in = (uInt)c->body.len;
    do {
        if ((rc = sl_buf_reserve(&c->dec, 64 * 1024)) != 0) {
            if (rc == SL_ETOOBIG && c->dec.len < c->dec.max)
                rc = sl_buf_reserve(&c->dec, c->dec.max - c->dec.len);
            if (rc)
                break;
        }
        z.next_out = (Bytef *)c->dec.p + c->dec.len;
        z.avail_out = (uInt)(c->dec.cap - c->dec.len);
        zr = inflate(&z, Z_NO_FLUSH);
        c->dec.len = c->dec.cap - z.avail_out;
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
        if (c->dec.len >= c->dec.max && z.avail_out == 0) {
            rc = SL_ETOOBIG;
            break;
        }
    } while (1);
    inflateEnd(&z);
    return rc;
}

/* Frame body into the spool entry; returns the number of messages or <0. */
static int frame_body(struct conn *c, const char *p, size_t len, int64_t *nmsgs)
{
    struct server *s = c->srv;
    size_t off = 0;
    uint32_t n = 0;
    uint32_t maxm = (uint32_t)s->cfg->max_message;
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

/* The de-duplication key of a Logplex-Frame-Id: the id itself when it is short
 * printable ASCII (logplex sends 32 hex digits), else "sha256:" and the hash of its exact
 * bytes, so two different ids can never be taken for the same frame. */
static struct sl_str frame_key(struct sl_str id, char out[80])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char h[32];
    bool plain = id.len <= 128;

    for (size_t i = 0; i < id.len && plain; i++)
        plain = id.p[i] > 0x20 && id.p[i] < 0x7f;
    if (plain)
        return id;
    sl_token_hash(id.p, id.len, h);
    memcpy(out, "sha256:", 7);
    for (int i = 0; i < 32; i++) {
        out[7 + 2 * i] = hex[h[i] >> 4];
        out[8 + 2 * i] = hex[h[i] & 15];
    }
    return sl_str_make(out, 71);
}

static void http_body_done(struct conn *c)
{
    char fid[80];
    struct server *s = c->srv;
    struct sl_entry e;
    const struct sl_str *h;
    const char *p = c->body.p;
    size_t len = c->body.len;
    int64_t nmsgs = 0;
    struct iovec iov;
    int rc;

    SL_INC(bytes_received, c->body.len);
    if (c->gzip) {
        rc = gunzip(c);
        if (rc == SL_ETOOBIG) {
            respond_text(c, 413, "body too large after gzip decoding\n", NULL);
            return;
        }
        if (rc) {
            respond_text(c, 400, "body is not valid gzip\n", NULL);
            return;
        }
        p = c->dec.p;
        len = c->dec.len;
    }
    memset(&e, 0, sizeof(e));
    e.kind = SL_ENTRY_HTTP;
    e.source_id = c->source_id;
    e.received_us = now_us();
    h = sl_http_header_get(&c->req, "logplex-frame-id");
    if (h)
        e.frame_id = frame_key(*h, fid);
    e.tags = c->req.query;
    if ((rc = sl_entry_begin(&c->entry, &e)) || (rc = frame_body(c, p, len, &nmsgs))) {
        respond_text(c, 413, "body too large\n", NULL);
        return;
    }
    h = sl_http_header_get(&c->req, "logplex-msg-count");
    if (h) {
        uint64_t want;
        if (sl_http_parse_content_length(*h, &want) == 0 && want != (uint64_t)nmsgs) {
            SL_INC(msg_count_mismatch, 1);
            sl_info("msg count mismatch", "source_id=%" PRId64 " header=%" PRIu64
                    " found=%" PRId64, c->source_id, want, nmsgs);
        }
    }
    for (int i = 0; i < 2; i++) {
        uint64_t v;
        h = sl_http_header_get(&c->req, i ? "logplex-lost-count" : "logplex-drop-count");
        if (h && sl_http_parse_content_length(*h, &v) == 0)
            SL_INC(logplex_drop_count, v);
    }
    iov.iov_base = c->entry.p;
    iov.iov_len = c->entry.len;
    rc = sl_spool_appendv(s->spool, &iov, 1, &c->wait_lsn);
    if (rc == SL_EFULL) {
        SL_INC(spool_full, 1);
        respond_text(c, 503, "spool full: retry later\n", "Retry-After: 5\r\n");
        return;
    }
    if (rc) {
        respond_text(c, 503, "spool unavailable: retry later\n", "Retry-After: 5\r\n");
        return;
    }
    SL_INC(lines_accepted, nmsgs);
    note_spooled(e.received_us);
    conn_release_buffers(c);
    if (c->deadline)
        evtimer_del(c->deadline);
    c->state = S_WAIT;
    bufferevent_disable(c->bev, EV_READ);
    if (sl_spool_synced_lsn(s->spool) >= c->wait_lsn) {
        respond(c, 204, NULL, NULL, 0, NULL);
        return;
    }
    c->waiting = true;
    TAILQ_INSERT_TAIL(&s->waitq, c, wq);
}

/* ---------------------------------------------------------------- request heads */

static void handle_get(struct conn *c)
{
    struct server *s = c->srv;
    struct sl_str path = c->req.path;

    if (sl_str_eq(path, "/healthz")) {
        respond_text(c, 200, "ok\n", NULL);
    } else if (sl_str_eq(path, "/readyz")) {
        struct sl_spool_stats st;
        sl_spool_get_stats(s->spool, &st);
        if (!atomic_load(&sl_metrics.db_up))
            respond_text(c, 503, "database unreachable\n", NULL);
        else if ((double)st.depth_bytes > 0.8 * (double)s->cfg->spool_max_bytes)
            respond_text(c, 503, "spool above high-water mark\n", NULL);
        else if (s->draining)
            respond_text(c, 503, "shutting down\n", NULL);
        else
            respond_text(c, 200, "ready\n", NULL);
    } else if (sl_api_path(path)) {
        /* answered later, from a worker's result (never waits here) */
        c->state = S_API;
        c->api_pending = true;
        bufferevent_disable(c->bev, EV_READ);
        if (c->deadline)
            evtimer_del(c->deadline);
        sl_api_handle(s->api, c, &c->req);
    } else if (sl_str_eq(path, "/metrics")) {
        struct sl_buf b;
        sl_buf_init(&b, 1 << 20);
        if (sl_metrics_render(&b, s->spool) == 0)
            respond(c, 200, "text/plain; version=0.0.4", b.p, b.len, NULL);
        else
            respond_text(c, 500, "metrics unavailable\n", NULL);
        sl_buf_free(&b);
    } else {
        respond_text(c, 404, "not found\n", NULL);
    }
}

/* The head is parsed (c->req). Decide, or move on to the body. */
static void handle_head(struct conn *c)
{
    struct server *s = c->srv;
    const struct sl_str *te = sl_http_header_get(&c->req, "transfer-encoding");
    const struct sl_str *cl = sl_http_header_get(&c->req, "content-length");
    const struct sl_str *conn_h = sl_http_header_get(&c->req, "connection");
    const struct sl_str *ce = sl_http_header_get(&c->req, "content-encoding");
    const struct sl_str *expect = sl_http_header_get(&c->req, "expect");
    uint64_t clen = 0;
    bool is_post = sl_str_eq(c->req.method, "POST");

    c->keep_alive = c->req.minor_version >= 1;
    if (conn_h && sl_http_value_has_token(*conn_h, "close"))
        c->keep_alive = false;
    if (conn_h && sl_http_value_has_token(*conn_h, "keep-alive"))
        c->keep_alive = true;

    {
        /* Request smuggling defences (RFC 9112 §6.3): one framing, stated once. */
        int ncl = 0, nte = 0;
        for (size_t i = 0; i < c->req.nheaders; i++) {
            struct sl_str n = c->req.headers[i].name;
            ncl += n.len == 14 && strncasecmp(n.p, "content-length", 14) == 0;
            nte += n.len == 17 && strncasecmp(n.p, "transfer-encoding", 17) == 0;
        }
        if ((te && cl) || ncl > 1 || nte > 1) {
            c->keep_alive = false;
            respond_text(c, 400, "ambiguous message framing (Content-Length/Transfer-Encoding)\n",
                         NULL);
            return;
        }
    }
    if (te) {
        if (!(te->len == 7 && strncasecmp(te->p, "chunked", 7) == 0)) {
            c->keep_alive = false;
            respond_text(c, 501, "only Transfer-Encoding: chunked is supported\n", NULL);
            return;
        }
        c->chunked = true;
        sl_http_chunked_init(&c->ch);
    } else if (cl) {
        if (sl_http_parse_content_length(*cl, &clen)) {
            c->keep_alive = false;
            respond_text(c, 400, "bad Content-Length\n", NULL);
            return;
        }
    }
    c->chunked = te != NULL;

    if (!sl_str_eq(c->req.path, "/logs")) {
        if (sl_str_eq(c->req.method, "GET") || sl_str_eq(c->req.method, "HEAD")) {
            if (clen || c->chunked)
                c->keep_alive = false;
            c->head_only = sl_str_eq(c->req.method, "HEAD");
            handle_get(c);
        } else {
            c->keep_alive = false;
            respond_text(c, sl_str_eq(c->req.path, "/healthz") ||
                                    sl_str_eq(c->req.path, "/readyz") ||
                                    sl_str_eq(c->req.path, "/metrics") ||
                                    sl_api_path(c->req.path)
                                ? 405
                                : 404,
                         "not found\n", NULL);
        }
        return;
    }
    if (!is_post) {
        c->keep_alive = false;
        respond_text(c, 405, "POST only\n", "Allow: POST\r\n");
        return;
    }
    if (!c->chunked && cl == NULL) {
        c->keep_alive = false;
        respond_text(c, 411, "Content-Length or chunked encoding required\n", NULL);
        return;
    }
    /* Every early answer below closes: the body was not read. */
    if (sl_sources_generation(s->sources) == 0) {
        /* never loaded (PostgreSQL down since start, no snapshot): a 401 would make
         * logplex drop the frame for good */
        c->keep_alive = false;
        respond_text(c, 503, "source table not loaded yet: retry later\n", "Retry-After: 5\r\n");
        return;
    }
    c->source_id = authenticate(c);
    if (c->source_id == 0) {
        c->keep_alive = false;
        respond_text(c, 401, "unauthorized\n", unauthorized_extra);
        return;
    }
    if (clen > (uint64_t)s->cfg->max_body) {
        c->keep_alive = false;
        respond_text(c, 413, "body too large\n", NULL);
        return;
    }
    if (ce) {
        /* a list of codings, case-insensitive (RFC 9110 §8.4): identity and at most
         * one gzip */
        int ngzip = 0, other = 0;
        size_t i = 0;
        while (i < ce->len) {
            size_t j = i, a, b;
            while (j < ce->len && ce->p[j] != ',')
                j++;
            a = i;
            b = j;
            while (a < b && (ce->p[a] == ' ' || ce->p[a] == '\t'))
                a++;
            while (b > a && (ce->p[b - 1] == ' ' || ce->p[b - 1] == '\t'))
                b--;
            if ((b - a == 4 && strncasecmp(ce->p + a, "gzip", 4) == 0) ||
                (b - a == 6 && strncasecmp(ce->p + a, "x-gzip", 6) == 0))
                ngzip++;
            else if (!(b - a == 8 && strncasecmp(ce->p + a, "identity", 8) == 0) && b > a)
                other++;
            i = j + 1;
        }
        if (other || ngzip > 1) {
            c->keep_alive = false;
            respond_text(c, 415, "unsupported Content-Encoding (gzip or identity)\n", NULL);
            return;
        }
        c->gzip = ngzip == 1;
    }
    {
        struct sl_spool_stats st;
        sl_spool_get_stats(s->spool, &st);
        if (st.depth_bytes + clen > (uint64_t)s->cfg->spool_max_bytes) {
            SL_INC(spool_full, 1);
            c->keep_alive = false;
            respond_text(c, 503, "spool full: retry later\n", "Retry-After: 5\r\n");
            return;
        }
    }
    if (s->inflight + clen > (uint64_t)s->cfg->max_inflight) {
        c->keep_alive = false;
        respond_text(c, 503, "too many bytes in flight: retry later\n", "Retry-After: 1\r\n");
        return;
    }
    c->reserved = clen;
    s->inflight += clen;
    c->body_left = clen;
    if (!c->chunked && clen > 0 && sl_buf_reserve(&c->body, (size_t)clen)) {
        c->keep_alive = false;
        respond_text(c, 503, "out of memory: retry later\n", "Retry-After: 1\r\n");
        return;
    }
    if (expect && sl_str_eq(*expect, "100-continue") && c->req.minor_version >= 1)
        evbuffer_add(bufferevent_get_output(c->bev), "HTTP/1.1 100 Continue\r\n\r\n", 25);
    c->state = S_BODY;
}

/* "POST http://host/logs" (absolute form, RFC 9112 §3.2.2): route on the path. */
static void absolute_form(struct sl_http_request *r)
{
    const char *p = r->path.p, *end = r->path.p + r->path.len, *slash;
    size_t skip;

    if (r->path.len > 7 && (strncasecmp(p, "http://", 7) == 0 || strncasecmp(p, "https://", 8) == 0)) {
        skip = p[4] == ':' ? 7 : 8;
        slash = memchr(p + skip, '/', (size_t)(end - p - (ptrdiff_t)skip));
        r->path = slash ? sl_str_make(slash, (size_t)(end - slash)) : SL_STR_LIT("/");
    }
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    (void)fd;
    (void)what;
    if (c->state == S_HEAD || c->state == S_BODY) {
        c->keep_alive = false;
        respond_text(c, 408, "request took too long\n", NULL);
    }
}

static void start_deadline(struct conn *c)
{
    struct timeval tv = {(time_t)c->srv->cfg->request_timeout, 0};

    if (c->in_request)
        return;
    c->in_request = true;
    if (c->deadline == NULL)
        c->deadline = evtimer_new(c->srv->base, deadline_cb, c);
    if (c->deadline)
        evtimer_add(c->deadline, &tv);
}

static void http_read(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    struct server *s = c->srv;
    struct evbuffer *in = bufferevent_get_input(bev);

    while (c->state == S_HEAD || c->state == S_BODY) {
        size_t avail = evbuffer_get_length(in);

        if (avail == 0)
            return;
        start_deadline(c);
        if (c->state == S_HEAD) {
            size_t n = avail < (size_t)s->cfg->max_header ? avail : (size_t)s->cfg->max_header;
            const char *p = (const char *)evbuffer_pullup(in, (ev_ssize_t)n);
            int rc = sl_http_parse_request(p, n, (size_t)s->cfg->max_header, &c->req);

            if (rc == SL_EAGAIN && n < (size_t)s->cfg->max_header)
                return;
            if (rc == SL_EAGAIN || rc == SL_ETOOBIG) {
                c->keep_alive = false;
                respond_text(c, 431, "request head too large\n", NULL);
                return;
            }
            if (rc < 0) {
                c->keep_alive = false;
                respond_text(c, 400, "malformed request\n", NULL);
                return;
            }
            /* Keep a private copy of the head, so the slices outlive the buffer. */
            sl_buf_reset(&c->head);
            if (sl_buf_add(&c->head, p, (size_t)rc) ||
                sl_http_parse_request(c->head.p, c->head.len, (size_t)s->cfg->max_header,
                                      &c->req) != rc) {
                c->keep_alive = false;
                respond_text(c, 500, "internal error\n", NULL);
                return;
            }
            evbuffer_drain(in, (size_t)rc);
            absolute_form(&c->req);
            c->gzip = false;
            c->chunked = false;
            c->body_left = 0;
            handle_head(c);
            if (c->state == S_BODY && !c->chunked && c->body_left == 0)
                http_body_done(c);
            continue;
        }
        /* S_BODY */
        if (c->chunked) {
            const char *p = (const char *)evbuffer_pullup(in, -1);
            size_t before = c->body.len;
            int k = sl_http_chunked_feed(&c->ch, p, avail, &c->body);

            if (k == SL_ETOOBIG) {
                c->keep_alive = false;
                respond_text(c, 413, "body too large\n", NULL);
                return;
            }
            if (k < 0) {
                c->keep_alive = false;
                respond_text(c, 400, "bad chunked encoding\n", NULL);
                return;
            }
            if (c->body.len > before) {
                size_t grow = c->body.len - before;
                if (s->inflight + grow > (uint64_t)s->cfg->max_inflight) {
                    c->keep_alive = false;
                    respond_text(c, 503, "too many bytes in flight: retry later\n",
                                 "Retry-After: 1\r\n");
                    return;
                }
                s->inflight += grow;
                c->reserved += grow;
            }
            evbuffer_drain(in, (size_t)k);
            if (c->ch.done)
                http_body_done(c);
            else if (k == 0)
                return;
        } else {
            size_t n = avail < c->body_left ? avail : (size_t)c->body_left;
            if (sl_buf_reserve(&c->body, n)) {
                c->keep_alive = false;
                respond_text(c, 413, "body too large\n", NULL);
                return;
            }
            evbuffer_remove(in, c->body.p + c->body.len, n);
            c->body.len += n;
            c->body_left -= n;
            if (c->body_left == 0)
                http_body_done(c);
        }
    }
}

/* ---------------------------------------------------------------- syslog */

static void syslog_flush(struct conn *c);

static void syslog_retry(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    (void)fd;
    (void)what;
    syslog_flush(c);
    if (!c->entry_pending) {
        bufferevent_enable(c->bev, EV_READ);
        syslog_read(c->bev, c);
    }
}

static void syslog_flush(struct conn *c)
{
    struct iovec iov;
    uint64_t lsn;
    int rc;

    if (c->entry_n == 0)
        return;
    if (!c->entry_pending)
        sl_entry_finish(&c->entry, c->entry_n);
    iov.iov_base = c->entry.p;
    iov.iov_len = c->entry.len;
    rc = sl_spool_appendv(c->srv->spool, &iov, 1, &lsn);
    if (rc == SL_EFULL || rc == SL_EIO) {
        /* Backpressure: stop reading this connection until the spool has room. */
        struct timeval tv = {0, 200000};
        c->entry_pending = true;
        bufferevent_disable(c->bev, EV_READ);
        if (c->deadline == NULL)
            c->deadline = evtimer_new(c->srv->base, syslog_retry, c);
        if (c->deadline)
            evtimer_add(c->deadline, &tv);
        return;
    }
    SL_INC(lines_accepted, c->entry_n);
    note_spooled(now_us());
    SL_INC(syslog_lines, c->entry_n);
    c->entry_pending = false;
    c->entry_n = 0;
    sl_buf_reset(&c->entry);
}

static int64_t syslog_source(struct conn *c, const struct sl_frame *f)
{
    struct sl_syslog m;
    const char *why;

    if (f->kind != SL_FRAME_OK && f->kind != SL_FRAME_LF)
        return c->last_src;
    if (sl_syslog_parse(f->msg.p, f->msg.len, &m, &why) != 0 || m.hostname.p == NULL)
        return c->last_src;
    if (m.hostname.len == c->last_host_len && c->last_src &&
        c->last_gen == sl_sources_generation(c->srv->sources) &&
        memcmp(m.hostname.p, c->last_host, m.hostname.len) == 0)
        return c->last_src;
    c->last_gen = sl_sources_generation(c->srv->sources);
    c->last_src = sl_sources_by_host(c->srv->sources, m.hostname.p, m.hostname.len,
                                     &c->last_secret);
    c->last_host_len = m.hostname.len < sizeof(c->last_host) ? m.hostname.len : 0;
    memcpy(c->last_host, m.hostname.p, c->last_host_len);
    return c->last_src;
}

/* Add one message to the connection's pending entry. Returns false when it could not be
 * taken now (the spool is full: retried later, nothing consumed); true when it was taken
 * or refused for good (no such source: counted, as syslog has no way to answer). */
static bool syslog_take(struct conn *c, struct sl_frame *f, uint32_t orig_len, uint8_t flags)
{
    struct server *s = c->srv;
    int64_t src = syslog_source(c, f);
    uint32_t mlen = (uint32_t)f->msg.len;

    if (src == 0) {
        int64_t t = now_us();
        SL_INC(syslog_unknown_source, 1);
        if (t - s->last_unknown_warn > 10 * 1000000LL) {
            s->last_unknown_warn = t;
            sl_warn("syslog line for no known source refused",
                    "hint=\"hostname must be d.<source token> or a registered drain token\"");
        }
        return true;
    }
    if (c->entry_n && (c->entry_src != src || c->entry_secret != c->last_secret))
        syslog_flush(c);
    if (c->entry_pending)
        return false;
    if (c->entry_n == 0) {
        struct sl_entry e;
        memset(&e, 0, sizeof(e));
        e.kind = SL_ENTRY_SYSLOG;
        e.flags = c->last_secret ? SL_ENTRY_HOST_IS_TOKEN : 0;
        c->entry_secret = c->last_secret;
        e.source_id = src;
        e.received_us = now_us();
        if (sl_entry_begin(&c->entry, &e))
            return false;
        c->entry_src = src;
    }
    if (f->kind == SL_FRAME_BAD_PREFIX)
        flags |= SL_MSG_BAD_PREFIX;
    if (mlen > (uint32_t)s->cfg->max_message)
        mlen = (uint32_t)s->cfg->max_message;
    if (mlen < orig_len)
        flags |= SL_MSG_TRUNCATED;
    if (sl_entry_add(&c->entry, f->msg.p, mlen, orig_len, flags)) {
        syslog_flush(c);
        return false;
    }
    c->entry_n++;
    if (c->entry.len > (1u << 20))
        syslog_flush(c);
    return true;
}

/* The declared length of an octet-counted prefix at p ("123 "), with its length in
 * *plen; 0 when p does not start with one. */
static uint64_t octet_prefix(const char *p, size_t n, size_t *plen)
{
    uint64_t v = 0;
    size_t i = 0;

    while (i < n && i < 10 && p[i] >= '0' && p[i] <= '9')
        v = v * 10 + (uint64_t)(p[i++] - '0');
    if (i == 0 || i >= n || p[i] != ' ' || p[0] == '0')
        return 0;
    *plen = i + 1;
    return v;
}

/* A line with no usable framing: up to its newline, or cut at the message limit (the
 * rest of that line is then skipped). Returns false when more bytes are needed. */
static bool syslog_line(struct conn *c, struct evbuffer *in, const char *p, size_t n, size_t cap,
                        bool at_eof, uint8_t kind)
{
    const char *nl = memchr(p, '\n', n);
    struct sl_frame f;
    size_t len, eat;

    if (nl) {
        len = (size_t)(nl - p);
        eat = len + 1;
        if (len && p[len - 1] == '\r')
            len--;
    } else if (n >= cap || at_eof) {
        len = n > (size_t)c->srv->cfg->max_message ? (size_t)c->srv->cfg->max_message : n;
        eat = len;
        c->skip_line = !at_eof; /* the rest of this over-long line is not a new message */
    } else {
        return false;
    }
    memset(&f, 0, sizeof(f));
    f.kind = (enum sl_frame_kind)kind;
    f.msg = sl_str_make(p, len);
    if (!syslog_take(c, &f, nl ? (uint32_t)len : (uint32_t)(len + (c->skip_line ? 1 : 0)),
                     0)) {
        c->skip_line = false;
        return false;
    }
    evbuffer_drain(in, eat);
    return true;
}

/* Frame what the stream holds (RFC 6587: octet counting, or LF framing for lines that
 * start with '<'; anything else is taken line by line and stored marked). Lines over
 * the message limit are stored truncated and the rest skipped, never buffered whole:
 * the connection's memory stays bounded and nothing around them is lost. */
static void syslog_read(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    struct server *s = c->srv;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t cap = (size_t)s->cfg->max_message + 16;

    if (sl_sources_generation(s->sources) == 0) {
        /* the source table was never loaded: hold the stream (TCP backpressure) */
        struct timeval tv = {1, 0};
        bufferevent_disable(c->bev, EV_READ);
        if (c->deadline == NULL)
            c->deadline = evtimer_new(s->base, syslog_retry, c);
        if (c->deadline)
            evtimer_add(c->deadline, &tv);
        return;
    }
    while (!c->entry_pending) {
        size_t avail = evbuffer_get_length(in), n, plen = 0;
        const char *p;
        struct sl_frame f;
        uint64_t declared;
        int k;

        if (avail == 0)
            break;
        if (c->skip_bytes > 0) {
            size_t d = avail < c->skip_bytes ? avail : (size_t)c->skip_bytes;
            evbuffer_drain(in, d);
            c->skip_bytes -= d;
            continue;
        }
        n = avail < cap ? avail : cap;
        p = (const char *)evbuffer_pullup(in, (ev_ssize_t)n);
        if (c->skip_line) {
            const char *nl = memchr(p, '\n', n);
            evbuffer_drain(in, nl ? (size_t)(nl - p) + 1 : n);
            if (nl)
                c->skip_line = false;
            continue;
        }
        declared = octet_prefix(p, n, &plen);
        if (declared > (uint64_t)s->cfg->max_message) {
            /* an octet-counted frame over the limit: keep its head, skip the rest */
            if (n < plen + (size_t)s->cfg->max_message)
                break;
            memset(&f, 0, sizeof(f));
            f.kind = SL_FRAME_OK;
            f.msg = sl_str_make(p + plen, (size_t)s->cfg->max_message);
            if (!syslog_take(c, &f, declared > UINT32_MAX ? UINT32_MAX : (uint32_t)declared, 0))
                break;
            evbuffer_drain(in, plen + (size_t)s->cfg->max_message);
            c->skip_bytes = declared - (uint64_t)s->cfg->max_message;
            continue;
        }
        if (declared == 0 && p[0] != '<' && p[0] != '\n' && p[0] != '\r' && p[0] != ' ') {
            if (!syslog_line(c, in, p, n, cap, false, SL_FRAME_BAD_PREFIX))
                break;
            continue;
        }
        k = sl_frame_next(p, n, false, &f);
        if (k == SL_EAGAIN) {
            /* an LF-framed line, or garbage waiting for a resync, over the limit */
            if (n >= cap &&
                !syslog_line(c, in, p, n, cap, false,
                             p[0] == '<' ? SL_FRAME_LF : SL_FRAME_BAD_PREFIX))
                break;
            if (n >= cap)
                continue;
            break;
        }
        if (k <= 0) {
            evbuffer_drain(in, n);
            continue;
        }
        if (!syslog_take(c, &f, (uint32_t)f.msg.len, 0))
            break;
        evbuffer_drain(in, (size_t)k);
    }
    syslog_flush(c);
}

/* The peer closed: what is left without its terminator is still a line. */
static void syslog_eof(struct conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t n = evbuffer_get_length(in);

    syslog_read(c->bev, c);
    n = evbuffer_get_length(in);
    if (n > 0 && !c->entry_pending && c->skip_bytes == 0 && !c->skip_line) {
        size_t cap = (size_t)c->srv->cfg->max_message + 16;
        const char *p = (const char *)evbuffer_pullup(in, (ev_ssize_t)(n < cap ? n : cap));
        (void)syslog_line(c, in, p, n < cap ? n : cap, cap, true,
                          p[0] == '<' ? SL_FRAME_LF : SL_FRAME_SHORT);
    }
    syslog_flush(c);
}

/* ---------------------------------------------------------------- connections */

static void conn_free(struct conn *c)
{
    struct server *s = c->srv;

    if (c->waiting)
        TAILQ_REMOVE(&s->waitq, c, wq);
    if (c->api_pending)
        sl_api_forget(s->api, c);
    TAILQ_REMOVE(&s->conns, c, all);
    s->nconns--;
    atomic_fetch_sub(&sl_metrics.connections, 1);
    s->inflight -= c->reserved < s->inflight ? c->reserved : s->inflight;
    if (c->deadline)
        event_free(c->deadline);
    if (c->bev)
        bufferevent_free(c->bev);
    sl_buf_free(&c->head);
    sl_buf_free(&c->body);
    sl_buf_free(&c->dec);
    sl_buf_free(&c->entry);
    free(c);
}

static void conn_event(struct bufferevent *bev, short what, void *arg)
{
    struct conn *c = arg;
    (void)bev;

    if (what & BEV_EVENT_TIMEOUT) {
        /* idle: a silent keep-alive connection is closed quietly; a request that
         * stalls mid-way gets 408 */
        if (c->kind == K_HTTP && c->in_request && (c->state == S_HEAD || c->state == S_BODY)) {
            c->keep_alive = false;
            respond_text(c, 408, "request timeout\n", NULL);
            return;
        }
        if (c->state != S_WAIT && c->state != S_API)
            conn_free(c);
        return;
    }
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        if (c->kind == K_SYSLOG) {
            if (what & BEV_EVENT_EOF)
                syslog_eof(c);
            else
                syslog_flush(c);
        }
        if ((c->state == S_WAIT || c->state == S_API) && (what & BEV_EVENT_EOF)) {
            /* The client half-closed while we wait for durability: the data is
             * spooled; answer if we still can, then close. */
            c->keep_alive = false;
            return;
        }
        if ((what & BEV_EVENT_EOF) && c->kind == K_HTTP &&
            evbuffer_get_length(bufferevent_get_output(c->bev)) > 0) {
            /* half-closed after its request: the answer (a 204) is still on its way;
             * close once it is written */
            c->state = S_CLOSING;
            c->linger = false;
            bufferevent_disable(c->bev, EV_READ);
            bufferevent_setcb(c->bev, NULL, conn_write_done, conn_event, c);
            return;
        }
        conn_free(c);
    }
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int slen,
                      void *arg)
{
    struct server *s = evconnlistener_get_base(l) ? arg : arg;
    enum lst which = L_COUNT;
    struct conn *c;
    struct timeval idle = {(time_t)s->cfg->idle_timeout, 0};
    struct timeval wr = {30, 0};
    (void)sa;
    (void)slen;

    for (int i = 0; i < L_COUNT; i++)
        if (s->lev[i] == l)
            which = (enum lst)i;
    if (s->draining || s->nconns >= (size_t)s->cfg->max_connections) {
        SL_INC(connections_rejected, 1);
        evutil_closesocket(fd);
        return;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        evutil_closesocket(fd);
        return;
    }
    {
        /* Answers go out whole: without this, Nagle holds the last TLS record of a search
         * answer until the client's delayed ACK (~40 ms a request). */
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    c->srv = s;
    c->kind = (which == L_SYSLOG || which == L_SYSLOG_TLS) ? K_SYSLOG : K_HTTP;
    c->state = S_HEAD;
    sl_buf_init(&c->head, (size_t)s->cfg->max_header + 1);
    sl_buf_init(&c->body, (size_t)s->cfg->max_body);
    sl_buf_init(&c->dec, (size_t)s->cfg->max_body);
    /* each message costs 9 bytes of entry header: "1 x" frames make an entry ~3.4x
     * the body, so 4x always fits a body within the limit */
    sl_buf_init(&c->entry, (size_t)s->cfg->max_body * 4 + (1u << 20));
    if (which == L_HTTPS || which == L_SYSLOG_TLS) {
        SSL *ssl = SSL_new(s->ssl);
        if (ssl == NULL) {
            evutil_closesocket(fd);
            free(c);
            return;
        }
        c->bev = bufferevent_openssl_socket_new(s->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                BEV_OPT_CLOSE_ON_FREE);
        if (c->bev)
            bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
    } else {
        c->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
    }
    if (c->bev == NULL) {
        evutil_closesocket(fd);
        free(c);
        return;
    }
    TAILQ_INSERT_TAIL(&s->conns, c, all);
    s->nconns++;
    SL_INC(connections, 1);
    bufferevent_setcb(c->bev, c->kind == K_HTTP ? http_read : syslog_read, NULL, conn_event, c);
    bufferevent_set_timeouts(c->bev, &idle, &wr);
    /* Bound what one connection buffers before we parse it. */
    bufferevent_setwatermark(c->bev, EV_READ, 0,
                             c->kind == K_HTTP ? (size_t)s->cfg->max_body + 65536 : (4u << 20));
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

/* ---------------------------------------------------------------- lifecycle */

static int listen_on(struct server *s, enum lst which, int port)
{
    struct sockaddr_in sin;
    struct sockaddr_in6 sin6;
    struct sockaddr *sa;
    int salen;

    if (port <= 0)
        return 0;
    memset(&sin, 0, sizeof(sin));
    memset(&sin6, 0, sizeof(sin6));
    if (inet_pton(AF_INET, s->cfg->bind, &sin.sin_addr) == 1) {
        sin.sin_family = AF_INET;
        sin.sin_port = htons((uint16_t)port);
        sa = (struct sockaddr *)&sin;
        salen = sizeof(sin);
    } else if (inet_pton(AF_INET6, s->cfg->bind, &sin6.sin6_addr) == 1) {
        sin6.sin6_family = AF_INET6;
        sin6.sin6_port = htons((uint16_t)port);
        sa = (struct sockaddr *)&sin6;
        salen = sizeof(sin6);
    } else {
        sl_error("bad bind address", "bind=%s", s->cfg->bind);
        return SL_EINVAL;
    }
    s->lev[which] = evconnlistener_new_bind(
        s->base, on_accept, s, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
        1024, sa, salen);
    if (s->lev[which] == NULL) {
        sl_error("listen failed", "port=%d err=\"%s\"", port, strerror(errno));
        return SL_EIO;
    }
    return 0;
}

static int tls_setup(struct server *s)
{
    s->ssl = SSL_CTX_new(TLS_server_method());
    if (s->ssl == NULL)
        return SL_ENOMEM;
    SSL_CTX_set_min_proto_version(s->ssl, TLS1_2_VERSION);
    SSL_CTX_set_options(s->ssl, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (SSL_CTX_use_certificate_chain_file(s->ssl, s->cfg->tls_cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(s->ssl, s->cfg->tls_key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(s->ssl) != 1) {
        char e[256];
        ERR_error_string_n(ERR_get_error(), e, sizeof(e));
        sl_error("TLS certificate or key unusable", "cert=%s key=%s err=\"%s\"", s->cfg->tls_cert,
                 s->cfg->tls_key, e);
        return SL_EINVAL;
    }
    return 0;
}

static void drain_check(evutil_socket_t fd, short what, void *arg)
{
    struct server *s = arg;
    struct conn *c, *next;
    bool busy = false;
    (void)fd;
    (void)what;

    for (c = TAILQ_FIRST(&s->conns); c; c = next) {
        next = TAILQ_NEXT(c, all);
        if (c->kind == K_SYSLOG) {
            syslog_flush(c);
            if (!c->entry_pending)
                conn_free(c);
            else
                busy = true;
        } else if (c->state == S_HEAD && !c->in_request) {
            conn_free(c);
        } else {
            busy = true;
        }
    }
    if (!busy || sl_now_ms() >= s->drain_deadline)
        event_base_loopbreak(s->base);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct server *s = arg;
    struct timeval tv = {0, 100000};
    (void)what;

    if (s->draining)
        return;
    sl_info("shutting down", "signal=%d", (int)sig);
    s->draining = true;
    /* half the grace for in-flight requests, the rest for the spool flush */
    s->drain_deadline = sl_now_ms() + s->cfg->shutdown_grace * 1000 / 2;
    for (int i = 0; i < L_COUNT; i++)
        if (s->lev[i]) {
            evconnlistener_free(s->lev[i]);
            s->lev[i] = NULL;
        }
    s->drain_timer = event_new(s->base, -1, EV_PERSIST, drain_check, s);
    if (s->drain_timer)
        event_add(s->drain_timer, &tv);
    drain_check(-1, 0, s);
}

int sl_server_run(struct sl_config *cfg)
{
    struct server srv, *s = &srv;
    struct sl_spool_opts so;
    struct sl_writer_opts wo;
    int rc = 1;
    int64_t t0 = 0;

    memset(s, 0, sizeof(*s));
    s->cfg = cfg;
    TAILQ_INIT(&s->conns);
    TAILQ_INIT(&s->waitq);
    signal(SIGPIPE, SIG_IGN);
    if (sl_log_set_level(cfg->log_level))
        sl_warn("unknown log level; using info", "level=%s", cfg->log_level);
    if (cfg->http_port == 0 && cfg->https_port == 0 && cfg->syslog_port == 0 &&
        cfg->syslog_tls_port == 0) {
        sl_error("no listener configured", "hint=\"set PORT, SLUICE_HTTPS_PORT, "
                 "SLUICE_SYSLOG_TLS_PORT or SLUICE_SYSLOG_PORT\"");
        return 2;
    }
    if ((cfg->https_port || cfg->syslog_tls_port) && (!cfg->tls_cert[0] || !cfg->tls_key[0])) {
        sl_error("TLS listener needs SLUICE_TLS_CERT and SLUICE_TLS_KEY", "%s", "");
        return 2;
    }
    evthread_use_pthreads();
    memset(&so, 0, sizeof(so));
    so.dir = cfg->spool_dir;
    so.segment_bytes = (uint64_t)cfg->spool_segment_bytes;
    so.max_bytes = (uint64_t)cfg->spool_max_bytes;
    so.max_record = (uint32_t)(cfg->max_body * 4 + (1 << 20));
    so.fsync = cfg->fsync;
    if (sl_spool_open(&so, &s->spool)) {
        sl_error("spool unusable", "dir=%s", cfg->spool_dir);
        return 1;
    }
    {
        char snap[4096];
        snprintf(snap, sizeof(snap), "%s/sources.snapshot", cfg->spool_dir);
        if (sl_sources_new(&s->sources) ||
            sl_maint_start(cfg->database_url, s->sources, snap, &s->maint))
            goto out;
    }
    s->base = event_base_new();
    if (s->base == NULL)
        goto out;
    if ((cfg->https_port || cfg->syslog_tls_port) && tls_setup(s))
        goto out;
    s->sync_ev = event_new(s->base, -1, 0, on_synced, s);
    if (s->sync_ev == NULL || sl_spool_start_syncer(s->spool, on_synced_thread, s))
        goto out;
    if (sl_feed_new(65536, &s->feed))
        goto out;
    memset(&wo, 0, sizeof(wo));
    wo.feed = s->feed;
    wo.database_url = cfg->database_url;
    wo.spool = s->spool;
    wo.batch_rows = (int)cfg->batch_rows;
    wo.dead_dir = cfg->spool_dir;
    wo.sources = s->sources;
    wo.public_url = cfg->public_url;
    if (sl_writer_start(&wo, &s->writer))
        goto out;
    {
        struct sl_notifier_opts no;
        memset(&no, 0, sizeof(no));
        no.database_url = cfg->database_url;
        no.sources = s->sources;
        no.public_url = cfg->public_url;
        no.allow_private = cfg->alert_allow_private;
        no.timeout_ms = (long)cfg->alert_timeout * 1000;
        if (sl_notifier_start(&no, &s->notifier))
            goto out;
    }
    {
        struct sl_api_opts ao;
        memset(&ao, 0, sizeof(ao));
        ao.database_url = cfg->database_url;
        ao.sources = s->sources;
        ao.feed = s->feed;
        ao.workers = (int)cfg->search_workers;
        ao.timeout_s = (int)cfg->search_timeout;
        ao.tail_buffer = (size_t)cfg->tail_buffer;
        ao.max_tail = (int)cfg->max_tail_clients;
        ao.ops.arg = s;
        ao.ops.respond = api_respond;
        ao.ops.take = api_take;
        if (sl_api_start(s->base, &ao, &s->api))
            goto out;
    }
    if (listen_on(s, L_HTTP, cfg->http_port) || listen_on(s, L_HTTPS, cfg->https_port) ||
        listen_on(s, L_SYSLOG_TLS, cfg->syslog_tls_port) ||
        listen_on(s, L_SYSLOG, cfg->syslog_port))
        goto out;
    s->sig_ev[0] = evsignal_new(s->base, SIGTERM, on_signal, s);
    s->sig_ev[1] = evsignal_new(s->base, SIGINT, on_signal, s);
    if (!s->sig_ev[0] || !s->sig_ev[1] || event_add(s->sig_ev[0], NULL) ||
        event_add(s->sig_ev[1], NULL))
        goto out;
    sl_info("listening",
            "bind=%s http_port=%d https_port=%d syslog_tls_port=%d syslog_port=%d spool=%s "
            "node=%s fsync=%s",
            cfg->bind, cfg->http_port, cfg->https_port, cfg->syslog_tls_port, cfg->syslog_port,
            cfg->spool_dir, sl_spool_node_id(s->spool), cfg->fsync ? "on" : "off");
    event_base_dispatch(s->base);
    t0 = sl_now_ms();
    rc = 0;
out:
    if (t0 == 0)
        t0 = sl_now_ms();
    while (!TAILQ_EMPTY(&s->conns))
        conn_free(TAILQ_FIRST(&s->conns));
    sl_api_stop(s->api); /* streams closed, search threads joined */
    s->api = NULL;
    for (int i = 0; i < L_COUNT; i++)
        if (s->lev[i])
            evconnlistener_free(s->lev[i]);
    if (s->spool && sl_spool_sync_now(s->spool))
        sl_error("final spool sync failed", "%s", "");
    /* The writer gets what is left of the grace period to empty the spool. */
    sl_writer_stop(s->writer, t0 + cfg->shutdown_grace * 1000 / 2);
    sl_notifier_stop(s->notifier);
    sl_feed_free(s->feed);
    sl_maint_stop(s->maint);
    if (s->spool) {
        struct sl_spool_stats st;
        sl_spool_get_stats(s->spool, &st);
        sl_info("stopped", "unwritten_bytes=%" PRIu64, st.depth_bytes);
    }
    sl_spool_free(s->spool);
    sl_sources_free(s->sources);
    if (s->drain_timer)
        event_free(s->drain_timer);
    for (int i = 0; i < 2; i++)
        if (s->sig_ev[i])
            event_free(s->sig_ev[i]);
    if (s->sync_ev)
        event_free(s->sync_ev);
    if (s->ssl)
        SSL_CTX_free(s->ssl);
    if (s->base)
        event_base_free(s->base);
    return rc;
}
