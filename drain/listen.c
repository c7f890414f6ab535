/* Listeners and connections of the drain (drain/conn-internal.h).
 *
 * Owns the sockets: the four listeners (HTTP, HTTPS, syslog TCP, syslog TLS; TLS through
 * OpenSSL bufferevents), admission at accept (the connection cap with live-tail streams
 * counted, the per-address cap on unauthenticated connections, idle ones reclaimed near
 * the cap, the health reserve, a pause when descriptors run out), a connection's
 * lifetime (head deadline, idle timeout, EOF and errors, free), the HTTP response writer
 * both HTTP paths use (the drain's and the read API's, through drain/ingest_http.c), the
 * request deadline and the lingering close. What a connection's bytes mean is left to drain/ingest_http.c and
 * drain/ingest_syslog.c; start-up and shutdown to drain/serve.c.
 *
 * Thread: the event loop (main thread). Specs: RFC 9112 §9 (connection management),
 * RFC 9110 §15 (status codes). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "sluice/api.h"
#include "sluice/log.h"
#include "sluice/metrics.h"

#include "conn-internal.h"

/* ---------------------------------------------------------------- responses */

void sl_conn_release_buffers(struct conn *c)
{
    struct server *s = c->srv;
    struct http_conn *h = &c->http;

    s->inflight -= h->reserved < s->inflight ? h->reserved : s->inflight;
    h->reserved = 0;
    /* Keep small buffers for the next request on this connection; give big ones back
     * so idle keep-alive connections hold little memory. */
    if (h->body.cap > 256 * 1024)
        sl_buf_free(&h->body);
    if (h->dec.cap > 256 * 1024)
        sl_buf_free(&h->dec);
    if (c->entry.cap > 256 * 1024)
        sl_buf_free(&c->entry);
    sl_buf_reset(&h->body);
    sl_buf_reset(&h->dec);
    sl_buf_reset(&c->entry);
}

static void conn_event(struct bufferevent *bev, short what, void *arg);

/* Closing after an early answer (401, 413, ...) while the client may still be
 * sending its body: read and discard for a moment, so the client reads our answer
 * instead of a connection reset (the "lingering close" of nginx and Apache). */
#define LINGER_MAX_BYTES (8u << 20)

static void linger_read(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);

    c->http.linger_bytes += evbuffer_get_length(in);
    evbuffer_drain(in, evbuffer_get_length(in));
    if (c->http.linger_bytes > LINGER_MAX_BYTES)
        sl_conn_free(c);
}

static void linger_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    sl_conn_free(arg);
}

static void conn_write_done(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    struct timeval tv = {2, 0};

    if (c->http.state != S_CLOSING || evbuffer_get_length(bufferevent_get_output(bev)) != 0)
        return;
    if (!c->http.linger) {
        sl_conn_free(c);
        return;
    }
    /* answered: now only wait for the client to finish or give up */
    if (c->http.linger_timer == NULL)
        c->http.linger_timer = evtimer_new(c->srv->base, linger_timeout, c);
    if (c->http.linger_timer == NULL) {
        sl_conn_free(c);
        return;
    }
    evtimer_add(c->http.linger_timer, &tv);
    bufferevent_setcb(bev, linger_read, NULL, conn_event, c);
    bufferevent_enable(bev, EV_READ);
}

/* Stop reading; free the connection once what is queued has been written. */
static void close_when_written(struct conn *c)
{
    c->http.state = S_CLOSING;
    bufferevent_disable(c->bev, EV_READ);
    bufferevent_setcb(c->bev, NULL, conn_write_done, conn_event, c);
}

static void head_timer_start(struct conn *c);

void sl_conn_respond(struct conn *c, int status, const char *ctype, const char *body, size_t blen,
                     const char *extra)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    struct http_conn *h = &c->http;

    if (c->srv->draining)
        h->keep_alive = false;
    sl_metrics_status(status);
    evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\n", status, sl_http_reason(status));
    if (status != 204)
        evbuffer_add_printf(out, "Content-Length: %zu\r\n", blen);
    if (ctype && blen)
        evbuffer_add_printf(out, "Content-Type: %s\r\n", ctype);
    if (extra)
        evbuffer_add(out, extra, strlen(extra));
    if (!h->keep_alive)
        evbuffer_add(out, "Connection: close\r\n", 19);
    evbuffer_add(out, "\r\n", 2);
    if (blen && !h->head_only) /* HEAD: the headers a GET would get, no body */
        evbuffer_add(out, body, blen);
    h->head_only = false;

    sl_conn_request_timer_stop(c);
    sl_conn_release_buffers(c);
    h->in_request = false;
    if (!h->keep_alive) {
        /* a body still on its way: linger after answering */
        h->linger = h->state == S_HEAD || h->state == S_BODY;
        close_when_written(c);
        bufferevent_enable(c->bev, EV_WRITE);
        return;
    }
    h->state = S_HEAD;
    /* s->conns stays in order of last activity: the idle reclaimed first near the cap
     * (reclaim_idle) are then the ones that waited longest */
    TAILQ_REMOVE(&c->srv->conns, c, all);
    TAILQ_INSERT_TAIL(&c->srv->conns, c, all);
    if (!c->authed)
        head_timer_start(c);
    bufferevent_enable(c->bev, EV_READ);
    /* A pipelined request may already be buffered: handle it from the loop, not by
     * recursion, so a long pipeline cannot grow the stack. */
    if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
        bufferevent_trigger(c->bev, EV_READ, BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
}

void sl_conn_respond_text(struct conn *c, int status, const char *text, const char *extra)
{
    sl_conn_respond(c, status, "text/plain; charset=utf-8", text, strlen(text), extra);
}

/* ---------------------------------------------------------------- request deadline */

static void request_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    (void)fd;
    (void)what;
    if (c->http.state == S_HEAD || c->http.state == S_BODY) {
        c->http.keep_alive = false;
        sl_conn_respond_text(c, 408, "request took too long\n", NULL);
    }
}

void sl_conn_request_timer_start(struct conn *c)
{
    struct timeval tv = {(time_t)c->srv->cfg->request_timeout, 0};

    if (c->http.in_request)
        return;
    c->http.in_request = true;
    if (c->http.request_timer == NULL)
        c->http.request_timer = evtimer_new(c->srv->base, request_timeout, c);
    if (c->http.request_timer)
        evtimer_add(c->http.request_timer, &tv);
}

void sl_conn_request_timer_stop(struct conn *c)
{
    if (c->http.request_timer)
        evtimer_del(c->http.request_timer);
}

/* ---------------------------------------------------------------- head deadline */

/* SLUICE_HEAD_TIMEOUT, from accept (the TLS handshake included) or from the last answer
 * of a connection that has not authenticated: a client that has not sent a whole
 * request head by then (a syslog stream: a line of a known source) is closed, with 408
 * when part of a request came. Authenticated connections keep SLUICE_IDLE_TIMEOUT. */
static void head_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    (void)fd;
    (void)what;

    if (c->authed)
        return;
    if (c->kind == K_HTTP && c->http.state != S_HEAD)
        return; /* a whole head came: its answer is on its way */
    SL_INC(head_timeouts, 1);
    if (c->kind == K_HTTP && c->http.in_request) {
        c->http.keep_alive = false;
        sl_conn_respond_text(c, 408, "request head took too long (SLUICE_HEAD_TIMEOUT)\n", NULL);
        return;
    }
    sl_conn_free(c);
}

static void head_timer_start(struct conn *c)
{
    struct timeval tv = {(time_t)c->srv->cfg->head_timeout, 0};

    if (c->srv->cfg->head_timeout <= 0)
        return;
    if (c->head_timer == NULL)
        c->head_timer = evtimer_new(c->srv->base, head_timeout, c);
    if (c->head_timer)
        evtimer_add(c->head_timer, &tv);
}

void sl_conn_head_timer_stop(struct conn *c)
{
    if (c->head_timer)
        evtimer_del(c->head_timer);
}

void sl_conn_authed(struct conn *c)
{
    c->authed = true;
    sl_conn_head_timer_stop(c);
}

/* ---------------------------------------------------------------- connections */

void sl_conn_free(struct conn *c)
{
    struct server *s = c->srv;

    TAILQ_REMOVE(&s->conns, c, all);
    s->nconns--;
    atomic_fetch_sub(&sl_metrics.connections, 1);
    if (c->head_timer)
        event_free(c->head_timer);
    if (c->kind == K_HTTP) {
        struct http_conn *h = &c->http;
        if (h->waiting)
            TAILQ_REMOVE(&s->waitq, c, http.wq);
        if (h->api_pending)
            sl_api_forget(s->api, c);
        s->inflight -= h->reserved < s->inflight ? h->reserved : s->inflight;
        if (h->request_timer)
            event_free(h->request_timer);
        if (h->linger_timer)
            event_free(h->linger_timer);
        sl_buf_free(&h->head);
        sl_buf_free(&h->body);
        sl_buf_free(&h->dec);
    } else if (c->sys.retry_timer) {
        event_free(c->sys.retry_timer);
    }
    if (c->bev)
        bufferevent_free(c->bev);
    sl_buf_free(&c->entry);
    free(c);
}

/* The idle timeout (SLUICE_IDLE_TIMEOUT, the bufferevent's read timeout): a silent
 * keep-alive or syslog connection is closed quietly; a request that stalls mid-way gets
 * 408; one waiting for durability or for the read API is left alone. */
static void conn_idle(struct conn *c)
{
    if (c->kind == K_SYSLOG) {
        sl_conn_free(c);
        return;
    }
    if (c->http.in_request && (c->http.state == S_HEAD || c->http.state == S_BODY)) {
        c->http.keep_alive = false;
        sl_conn_respond_text(c, 408, "request timeout\n", NULL);
        return;
    }
    if (c->http.state != S_WAIT && c->http.state != S_API)
        sl_conn_free(c);
}

void sl_conn_eof(struct conn *c)
{
    struct http_conn *h = &c->http;

    if (h->state == S_API) {
        /* The client left while its search runs: free the connection, which forgets the
         * job (sl_api_forget) and so cancels its statement. Like Go's net/http, a
         * half-close during a search is taken as leaving (docs/api.md). */
        sl_conn_free(c);
        return;
    }
    if (h->state == S_WAIT || h->state == S_API) {
        /* the answer is owed (durability, the read API): it closes the connection */
        h->keep_alive = false;
        return;
    }
    if (h->state == S_TAKEN)
        return; /* the read API's socket now */
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) > 0) {
        /* half-closed after its request: the answer (a 204) is still on its way;
         * close once it is written. An OpenSSL bufferevent stops writing as well as
         * reading at EOF (a plain one only stops reading): start writing again, which
         * also restarts the write timeout, the timer of this state. */
        h->linger = false;
        close_when_written(c);
        bufferevent_enable(c->bev, EV_WRITE);
        return;
    }
    sl_conn_free(c);
}

static void conn_event(struct bufferevent *bev, short what, void *arg)
{
    struct conn *c = arg;
    (void)bev;

    if (what & BEV_EVENT_TIMEOUT) {
        conn_idle(c);
        return;
    }
    if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
        return;
    if (c->kind == K_SYSLOG) {
        if (what & BEV_EVENT_EOF)
            c->srv->proto.syslog_eof(c);
        else
            c->srv->proto.syslog_flush(c);
        sl_conn_free(c);
        return;
    }
    if ((what & BEV_EVENT_EOF) && (c->http.state == S_HEAD || c->http.state == S_BODY) &&
        bufferevent_openssl_get_ssl(c->bev) != NULL) {
        /* TLS: the request before the half-close may not be read yet. libevent's
         * OpenSSL bufferevent reports EOF before it commits the bytes it read along
         * with it (do_read), so read them from the loop first: the read callback then
         * calls sl_conn_eof. A plain bufferevent hands over its bytes before its EOF
         * and is closed at once, which keeps a closed connection off the count. */
        c->http.eof = true;
        bufferevent_trigger(c->bev, EV_READ, BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
        return;
    }
    if (what & BEV_EVENT_EOF) {
        c->http.eof = true;
        sl_conn_eof(c);
        return;
    }
    sl_conn_free(c);
}

/* The protocol of a new connection: its buffers and callbacks. */
static void conn_init(struct conn *c, enum lst which)
{
    const struct sl_config *cfg = c->srv->cfg;

    c->kind = (which == L_SYSLOG || which == L_SYSLOG_TLS) ? K_SYSLOG : K_HTTP;
    /* each message costs 9 bytes of entry header: "1 x" frames make an entry ~3.4x
     * the body, so 4x always fits a body within the limit */
    sl_buf_init(&c->entry, (size_t)cfg->max_body * 4 + (1u << 20));
    if (c->kind == K_SYSLOG) {
        c->srv->proto.syslog_init(c);
        return;
    }
    c->http.state = S_HEAD;
    sl_buf_init(&c->http.head, (size_t)cfg->max_header + 1);
    sl_buf_init(&c->http.body, (size_t)cfg->max_body);
    sl_buf_init(&c->http.dec, (size_t)cfg->max_body);
}

/* ---------------------------------------------------------------- admission */

/* Admission at accept, in the manner of nginx and haproxy:
 *  - near the cap (9/10 of SLUICE_MAX_CONNECTIONS, live-tail streams included) each new
 *    connection closes the idle one that waited longest, unauthenticated ones first,
 *    so idle sockets cannot keep drains out;
 *  - past the cap, sl_listen_health_reserve() more HTTP connections are kept for
 *    /healthz and /readyz (anything else on them is 503);
 *  - one address holds at most SLUICE_MAX_CONNECTIONS_PER_ADDRESS connections that
 *    have not authenticated; with SLUICE_HEAD_TIMEOUT this bounds what one client
 *    without a token can hold, and for how long.
 * The counts are scans of s->conns: bounded by the cap, and only made at accept. */

int64_t sl_listen_health_reserve(const struct sl_config *cfg)
{
    return cfg->max_connections / 64 + 2;
}

/* spool segments, the PostgreSQL connections of the writer, maintenance, notifier, tail
 * thread and search workers, up to 32 webhook deliveries, listeners, the loop's own */
int64_t sl_listen_fd_margin(const struct sl_config *cfg)
{
    return 96 + cfg->search_workers;
}

static size_t open_total(const struct server *s)
{
    return s->nconns + (size_t)atomic_load(&sl_metrics.tail_clients);
}

static bool conn_idle_now(const struct conn *c)
{
    return c->kind == K_HTTP && c->bev && c->http.state == S_HEAD && !c->http.in_request &&
           evbuffer_get_length(bufferevent_get_output(c->bev)) == 0;
}

/* Close the idle connection that waited longest (s->conns is in order of last
 * activity), an unauthenticated one if any. Returns whether one was closed. */
static bool reclaim_idle(struct server *s)
{
    struct conn *c, *authed = NULL;

    TAILQ_FOREACH(c, &s->conns, all) {
        if (!conn_idle_now(c))
            continue;
        if (!c->authed)
            break;
        if (authed == NULL)
            authed = c;
    }
    if (c == NULL)
        c = authed;
    if (c == NULL)
        return false;
    SL_INC(connections_reclaimed, 1);
    sl_conn_free(c);
    return true;
}

static void peer_key(const struct sockaddr *sa, unsigned char out[16])
{
    memset(out, 0, 16);
    if (sa != NULL && sa->sa_family == AF_INET) {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)(const void *)sa;
        out[10] = out[11] = 0xff;
        memcpy(out + 12, &in4->sin_addr, 4);
    } else if (sa != NULL && sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        memcpy(out, &in6->sin6_addr, 16);
    }
}

static int64_t unauthed_from(const struct server *s, const unsigned char addr[16])
{
    const struct conn *c;
    int64_t n = 0;

    TAILQ_FOREACH(c, &s->conns, all)
        n += !c->authed && memcmp(c->addr, addr, 16) == 0;
    return n;
}

/* Whether the connection may be taken, and whether it goes in the health reserve. */
static bool admit(struct server *s, enum lst which, const unsigned char addr[16], bool *reserve)
{
    const struct sl_config *cfg = s->cfg;
    size_t cap = (size_t)cfg->max_connections;

    *reserve = false;
    if (s->draining)
        goto refuse;
    if (open_total(s) * 10 >= cap * 9)
        (void)reclaim_idle(s);
    if (cfg->max_per_address > 0 && unauthed_from(s, addr) >= cfg->max_per_address) {
        SL_INC(connections_rejected_address, 1);
        return false;
    }
    if (open_total(s) < cap)
        return true;
    if ((which == L_HTTP || which == L_HTTPS) &&
        open_total(s) < cap + (size_t)sl_listen_health_reserve(cfg)) {
        *reserve = true;
        return true;
    }
refuse:
    SL_INC(connections_rejected, 1);
    return false;
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int slen,
                      void *arg)
{
    struct server *s = arg;
    enum lst which = L_COUNT;
    struct conn *c;
    struct timeval idle = {(time_t)s->cfg->idle_timeout, 0};
    struct timeval wr = {30, 0};
    unsigned char addr[16];
    bool reserve;
    int one = 1;
    (void)slen;

    if (s->accept_paused) {
        s->accept_paused = false;
        sl_info("accepting connections again", "open=%zu", open_total(s));
    }
    for (int i = 0; i < L_COUNT; i++)
        if (s->lev[i] == l)
            which = (enum lst)i;
    peer_key(sa, addr);
    if (!admit(s, which, addr, &reserve)) {
        evutil_closesocket(fd);
        return;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        evutil_closesocket(fd);
        return;
    }
    /* Answers go out whole: without this, Nagle holds the last TLS record of a search
     * answer until the client's delayed ACK (~40 ms a request). */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->srv = s;
    c->reserve = reserve;
    c->tls = which == L_HTTPS || which == L_SYSLOG_TLS;
    memcpy(c->addr, addr, sizeof(addr));
    conn_init(c, which);
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
    head_timer_start(c);
    bufferevent_setcb(c->bev, c->kind == K_HTTP ? s->proto.http_read : s->proto.syslog_read, NULL,
                      conn_event, c);
    bufferevent_set_timeouts(c->bev, &idle, &wr);
    /* Bound what one connection buffers before we parse it. */
    bufferevent_setwatermark(c->bev, EV_READ, 0,
                             c->kind == K_HTTP ? (size_t)s->cfg->max_body + 65536 : (4u << 20));
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

/* Out of file descriptors (EMFILE, ENFILE) or kernel memory: accept() would fail again
 * at once, so stop listening for a moment instead of spinning; one log line an episode
 * (it ends with the next accepted connection). */
static void accept_resume(evutil_socket_t fd, short what, void *arg)
{
    struct server *s = arg;
    (void)fd;
    (void)what;

    if (s->draining)
        return;
    for (int i = 0; i < L_COUNT; i++)
        if (s->lev[i])
            evconnlistener_enable(s->lev[i]);
}

static void on_accept_error(struct evconnlistener *l, void *arg)
{
    struct server *s = arg;
    int err = EVUTIL_SOCKET_ERROR();
    struct timeval tv = {0, 250000};
    (void)l;

    if (!s->accept_paused)
        sl_warn("accept failed: pausing accepts", "err=\"%s\" open=%zu hint=\"%s\"",
                strerror(err), open_total(s),
                err == EMFILE ? "raise ulimit -n or lower SLUICE_MAX_CONNECTIONS" : "");
    if (!s->accept_paused)
        SL_INC(accept_paused, 1);
    s->accept_paused = true;
    for (int i = 0; i < L_COUNT; i++)
        if (s->lev[i])
            evconnlistener_disable(s->lev[i]);
    if (s->accept_timer == NULL)
        s->accept_timer = evtimer_new(s->base, accept_resume, s);
    if (s->accept_timer)
        evtimer_add(s->accept_timer, &tv);
}

bool sl_listen_drain(struct server *s)
{
    struct conn *c, *next;
    bool busy = false;

    for (c = TAILQ_FIRST(&s->conns); c; c = next) {
        next = TAILQ_NEXT(c, all);
        if (c->kind == K_SYSLOG) {
            c->srv->proto.syslog_flush(c);
            if (!c->sys.entry_pending)
                sl_conn_free(c);
            else
                busy = true;
        } else if (c->http.state == S_HEAD && !c->http.in_request) {
            sl_conn_free(c);
        } else {
            busy = true;
        }
    }
    return busy;
}

/* ---------------------------------------------------------------- listeners */

int sl_listen_open(struct server *s, enum lst which, int port)
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
    evconnlistener_set_error_cb(s->lev[which], on_accept_error);
    return 0;
}

static const char *const lst_names[L_COUNT] = {
    [L_HTTP] = "http", [L_HTTPS] = "https", [L_SYSLOG_TLS] = "syslog-tls", [L_SYSLOG] = "syslog"};

const char *sl_listen_name(enum lst which)
{
    return which < L_COUNT ? lst_names[which] : "";
}

enum lst sl_listen_by_name(const char *name)
{
    for (int i = 0; i < L_COUNT; i++)
        if (strcmp(name, lst_names[i]) == 0)
            return (enum lst)i;
    return L_COUNT;
}

int sl_listen_get_fd(struct server *s, enum lst which)
{
    return s->lev[which] ? (int)evconnlistener_get_fd(s->lev[which]) : -1;
}

int sl_listen_fd_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int type = 0, acc = 0;
    socklen_t tl = sizeof(type), al = sizeof(acc);

    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) != 0 || type != SOCK_STREAM ||
        getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &al) != 0 || !acc ||
        getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return 0;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)(void *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)(void *)&ss)->sin6_port);
    return 0;
}

int sl_listen_adopt(struct server *s, enum lst which, int fd)
{
    if (sl_listen_fd_port(fd) == 0 || evutil_make_socket_nonblocking(fd) != 0 ||
        evutil_make_socket_closeonexec(fd) != 0) {
        sl_error("passed socket is not a listening TCP socket", "fd=%d listener=%s", fd,
                 lst_names[which]);
        close(fd);
        return SL_EINVAL;
    }
    /* backlog -1: it listens already, with the backlog its owner chose */
    s->lev[which] = evconnlistener_new(
        s->base, on_accept, s, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, fd);
    if (s->lev[which] == NULL) {
        close(fd);
        return SL_EIO;
    }
    evconnlistener_set_error_cb(s->lev[which], on_accept_error);
    sl_info("listening on a passed socket", "listener=%s port=%d fd=%d", lst_names[which],
            sl_listen_fd_port(fd), fd);
    return 0;
}

void sl_listen_close(struct server *s)
{
    for (int i = 0; i < L_COUNT; i++)
        if (s->lev[i]) {
            evconnlistener_free(s->lev[i]);
            s->lev[i] = NULL;
        }
}

int sl_listen_tls_setup(struct server *s)
{
    s->ssl = SSL_CTX_new(TLS_server_method());
    if (s->ssl == NULL)
        return SL_ENOMEM;
    SSL_CTX_set_min_proto_version(s->ssl, TLS1_2_VERSION);
    SSL_CTX_set_options(s->ssl, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
    /* A peer that shuts its side down without close_notify (a half-close on the TCP
     * socket) is an EOF, as bufferevent_openssl_set_allow_dirty_shutdown asks: OpenSSL 3
     * reports it as a protocol error otherwise, which libevent cannot tell from one, and
     * the connection was dropped with its 204 unsent. Request bodies are framed
     * (Content-Length, chunked), so a cut one is still seen as incomplete. */
    SSL_CTX_set_options(s->ssl, SSL_OP_IGNORE_UNEXPECTED_EOF);
#endif
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

void sl_listen_free(struct server *s)
{
    sl_listen_close(s);
    if (s->accept_timer)
        event_free(s->accept_timer);
    s->accept_timer = NULL;
    if (s->ssl)
        SSL_CTX_free(s->ssl);
    s->ssl = NULL;
}
