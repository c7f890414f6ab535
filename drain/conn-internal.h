/* Private to the drain's ingest layer: the server state and the connection struct that
 * drain/serve.c (start-up), drain/listen.c (listeners, connection lifetime, responses,
 * timers), drain/ingest_http.c (the HTTP drain protocol) and drain/ingest_syslog.c
 * (syslog over TCP/TLS) share. Everything here runs on the event loop thread.
 *
 * A connection is a common part (socket, spool entry being built) plus the state of
 * one protocol: `http` or `sys`, never both (a union: read only the one of c->kind). */
#ifndef SLUICE_CONN_INTERNAL_H
#define SLUICE_CONN_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <time.h>

#include <event2/util.h>

#include "sluice/buf.h"
#include "sluice/config.h"
#include "sluice/err.h"
#include "sluice/frame.h"
#include "sluice/http.h"
#include "sluice/metrics.h"

struct bufferevent;
struct event;
struct event_base;
struct evconnlistener;
struct ssl_ctx_st;
struct sl_api;
struct sl_api_ops;
struct sl_feed;
struct sl_maint;
struct sl_notifier;
struct sl_crashd;
struct sl_sources;
struct sl_spool;
struct sl_writer;

enum conn_kind { K_HTTP, K_SYSLOG };
enum lst { L_HTTP, L_HTTPS, L_SYSLOG_TLS, L_SYSLOG, L_COUNT };

/* Where an HTTP connection is in its request. */
enum http_state {
    S_HEAD,    /* reading a request head (or idle between requests) */
    S_BODY,    /* reading the body of a POST /logs */
    S_WAIT,    /* spooled: on the durable-wait queue until an fsync covers it */
    S_API,     /* the read API owes the answer */
    S_TAKEN,   /* the API took the socket for a stream; the struct is freed soon */
    S_CLOSING, /* the last answer is being written (then maybe a lingering read) */
};

struct conn;

/* The HTTP drain protocol's part of a connection. */
struct http_conn {
    enum http_state state;
    bool keep_alive;
    bool gzip;
    bool chunked;
    bool in_request;  /* bytes of a request have arrived */
    bool waiting;     /* on the durable-wait queue */
    bool linger;      /* discard input for a while before closing */
    bool head_only;   /* answering a HEAD request */
    bool api_pending; /* the read API owes this connection an answer */
    bool eof;         /* the client shut its side down: close once answered */
    size_t linger_bytes;
    uint64_t body_left; /* Content-Length bytes still to read */
    size_t reserved;    /* bytes counted in srv->inflight */
    int64_t source_id;
    uint64_t wait_lsn;
    struct sl_buf head; /* a copy of the request head; req slices point into it */
    struct sl_http_request req;
    struct sl_http_chunked ch;
    struct sl_buf body;          /* the body as sent */
    struct sl_buf dec;           /* gunzipped body */
    struct event *request_timer; /* SLUICE_REQUEST_TIMEOUT from a request's first byte: 408 */
    struct event *linger_timer;  /* how long a lingering close discards input */
    TAILQ_ENTRY(conn) wq;        /* durable-wait queue */
};

/* The syslog protocol's part of a connection. */
struct syslog_conn {
    struct sl_frame_stream fs; /* message limit and skipping state of the stream */
    int64_t entry_src;         /* source of the entry being built */
    uint32_t entry_n;          /* messages in it */
    bool entry_pending;        /* an entry the spool refused (full): retried by timer */
    bool entry_secret;         /* its HOSTNAME is the ingest token */
    int64_t last_src;          /* the last HOSTNAME lookup, reused while it repeats */
    bool last_secret;          /* last_host is the ingest token */
    uint64_t last_gen;         /* source table generation of that lookup (rotate, rm) */
    char last_host[128];
    size_t last_host_len;
    struct event *retry_timer; /* spool full, or source table not loaded: read later */
};

struct conn {
    struct server *srv;
    struct bufferevent *bev;
    enum conn_kind kind;
    bool authed;             /* a request or a syslog line of it authenticated */
    bool reserve;            /* accepted past the cap: health endpoints only */
    unsigned char addr[16];  /* the peer's address (IPv4 mapped into IPv6) */
    struct event *head_timer; /* SLUICE_HEAD_TIMEOUT while not authenticated */
    struct sl_buf entry; /* the spool entry being built */
    TAILQ_ENTRY(conn) all;
    union {
        struct http_conn http;  /* kind K_HTTP */
        struct syslog_conn sys; /* kind K_SYSLOG */
    };
};

TAILQ_HEAD(conn_list, conn);

struct server {
    struct sl_config *cfg;
    struct event_base *base;
    struct ssl_ctx_st *ssl;
    struct evconnlistener *lev[L_COUNT];
    struct sl_spool *spool;
    struct sl_sources *sources;
    struct sl_writer *writer;
    struct sl_maint *maint;
    struct sl_notifier *notifier;
    struct sl_crashd *crashd; /* NULL with SLUICE_CRASHES=off */
    struct sl_feed *feed;
    struct sl_api *api;
    struct event *sync_ev;
    struct event *sig_ev[2];
    struct event *drain_timer;
    struct event *accept_timer; /* out of file descriptors: accepting again later */
    bool accept_paused;         /* an episode of EMFILE/ENFILE (logged once) */
    struct conn_list conns;
    struct conn_list waitq;
    size_t nconns;
    uint64_t inflight;
    bool draining;
    int64_t drain_deadline;
    int64_t last_unknown_warn;
    /* The protocols' entry points, set by serve.c: listen.c reaches ingest_http.c and
     * ingest_syslog.c only through these, so the protocols stand above the connections
     * they use (no circle between listen.c and the ingest files). */
    struct {
        void (*http_read)(struct bufferevent *bev, void *arg);
        void (*syslog_read)(struct bufferevent *bev, void *arg);
        void (*syslog_init)(struct conn *c);
        void (*syslog_flush)(struct conn *c);
        void (*syslog_eof)(struct conn *c);
    } proto;
};

/* The age of the oldest unwritten entry must show even while the writer cannot read
 * (PostgreSQL down): the first entry spooled into an empty backlog sets it; the writer
 * moves it forward as it commits and clears it when it has caught up. */
static inline void note_spooled(int64_t received_us)
{
    uint64_t none = 0;
    atomic_compare_exchange_strong(&sl_metrics.spool_oldest_us, &none, (uint64_t)received_us);
}

/* ---- drain/listen.c: listeners, connections, responses, timers */

/* Listen on port (0: not at all) for connections of one kind. */
SL_MUSTCHECK int sl_listen_open(struct server *s, enum lst which, int port);
/* The TLS context of the HTTPS and syslog TLS listeners (cfg->tls_cert, tls_key). */
SL_MUSTCHECK int sl_listen_tls_setup(struct server *s);
/* Stop accepting: free every listener. */
void sl_listen_close(struct server *s);
/* At exit, after the connections: the listeners and the TLS context. */
void sl_listen_free(struct server *s);
/* Shutdown: close every connection with nothing in flight (a syslog stream once its
 * entry is spooled). Returns true while some are still busy. */
bool sl_listen_drain(struct server *s);

void sl_conn_free(struct conn *c);
/* Queue an HTTP response; the connection then reads the next request or closes
 * (keep_alive false: closes once written, with a lingering read when a body may still
 * be on its way). extra: header lines, each ending in CRLF. */
void sl_conn_respond(struct conn *c, int status, const char *ctype, const char *body, size_t blen,
                     const char *extra);
void sl_conn_respond_text(struct conn *c, int status, const char *text, const char *extra);
/* The client shut its side down (c->http.eof) and what it sent before has been read:
 * close now, or once the answer it is owed has been written. */
void sl_conn_eof(struct conn *c);
/* Give back the request's reservation and its big buffers. */
void sl_conn_release_buffers(struct conn *c);
/* The request deadline: started by a request's first byte, stopped when it is answered
 * or handed on (spooled, API). */
void sl_conn_request_timer_start(struct conn *c);
void sl_conn_request_timer_stop(struct conn *c);
/* The head deadline (SLUICE_HEAD_TIMEOUT): armed at accept and, while the connection
 * has not authenticated, again after each answer; stopped by a whole request head. */
void sl_conn_head_timer_stop(struct conn *c);
/* A request or a syslog line on c authenticated: the head deadline and the per-address
 * cap no longer apply to it. */
void sl_conn_authed(struct conn *c);
/* Connections kept past SLUICE_MAX_CONNECTIONS for /healthz and /readyz. */
int64_t sl_listen_health_reserve(const struct sl_config *cfg);
/* File descriptors the process needs beyond its client connections. */
int64_t sl_listen_fd_margin(const struct sl_config *cfg);

/* ---- drain/ingest_http.c: the HTTP drain protocol */

void sl_ingest_http_read(struct bufferevent *bev, void *arg);
/* The spool syncer reported an fsync: answer 204 to every request it covers. */
void sl_ingest_http_synced(evutil_socket_t fd, short what, void *arg);
/* The callbacks the read API (drain/api.c) answers through. */
void sl_ingest_http_api_ops(struct server *s, struct sl_api_ops *ops);

/* ---- drain/ingest_syslog.c: syslog over TCP/TLS */

void sl_ingest_syslog_init(struct conn *c);
void sl_ingest_syslog_read(struct bufferevent *bev, void *arg);
/* Spool the entry being built (retried by timer while the spool is full). */
void sl_ingest_syslog_flush(struct conn *c);
/* The peer closed: frame what is left, spool it. */
void sl_ingest_syslog_eof(struct conn *c);

#endif
