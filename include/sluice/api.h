/* The read API (docs/api.md): GET /api/v1/search, the Papertrail-compatible
 * GET /api/v1/events/search.json and the Server-Sent Events stream GET /api/v1/tail.
 *
 * The event loop (drain/api.c) only parses, authenticates (read tokens, in memory) and
 * hands the work on: searches go to a pool of worker threads, each with its own
 * PostgreSQL connection (drain/searchd.c); tail streams are fed by one tail thread that
 * wakes on the commit feed and NOTIFY sluice_commits of every node (drain/tailer.c,
 * include/sluice/feed.h). Answers
 * come back to the loop through locked queues and an event, so the request path never
 * waits on PostgreSQL. The boundary between the two sides: drain/readq.h.
 *
 * Memory: a search's answer is capped at SLUICE_SEARCH_ANSWER_BYTES (raised to one
 * largest event, sl_search_answer_max(1, max_message, max_header)); a worker holds that
 * and one row more; at most workers x SL_SEARCHD_JOBS_PER_WORKER searches are queued or
 * running (503 beyond), at most token_jobs of one read token (429 beyond). */
#ifndef SLUICE_API_H
#define SLUICE_API_H

#include <stdbool.h>
#include <stddef.h>

#include "sluice/err.h"
#include "sluice/http.h"
#include "sluice/str.h"

struct event_base;
struct bufferevent;
struct sl_sources;
struct sl_feed;
struct sl_api;

/* What the server does for the API with one of its connections (conn is opaque here). */
struct sl_api_ops {
    void *arg;
    /* Answer the request on conn (the server's response path: keep-alive, HEAD, ...). */
    void (*respond)(void *arg, void *conn, int status, const char *ctype, const char *body,
                    size_t len, const char *extra);
    /* Hand the connection's bufferevent to the API for a stream; the server forgets
     * the connection (it no longer counts it, frees it or answers on it). */
    struct bufferevent *(*take)(void *arg, void *conn);
    /* Did conn come in over TLS? (the viewer's session cookie is then Secure) */
    bool (*tls)(void *arg, void *conn);
};

struct sl_api_opts {
    const char *database_url;
    struct sl_sources *sources;
    struct sl_feed *feed;
    int workers;          /* search threads */
    int timeout_s;        /* statement_timeout of a search */
    size_t tail_buffer;   /* unsent bytes before a tail client skips (and is told) */
    int max_tail;         /* open tail streams */
    int64_t tail_replay;  /* stored lines a resume reaches back (0: the default) */
    size_t max_message;   /* SLUICE_MAX_MESSAGE_BYTES (0: its default): sizes the answer cap */
    size_t max_header;    /* SLUICE_MAX_HEADER_BYTES (0: its default): sizes the answer cap */
    size_t answer_bytes;  /* SLUICE_SEARCH_ANSWER_BYTES (0: its default), at least one event */
    int token_jobs;       /* SLUICE_SEARCH_TOKEN_JOBS: one token's searches queued or running */
    struct sl_api_ops ops;
};

SL_MUSTCHECK int sl_api_start(struct event_base *base, const struct sl_api_opts *o,
                              struct sl_api **out);
/* Close every stream, stop the threads, free. Call on the loop thread, before the
 * event base is freed. Accepts NULL. */
void sl_api_stop(struct sl_api *a);

/* Is path one the API serves (/api/...)? */
bool sl_api_path(struct sl_str path);

/* Handle a GET or HEAD request for an API path on conn (the request head is only read
 * during the call). The answer comes later through ops.respond, or the connection is
 * taken for a stream. */
void sl_api_handle(struct sl_api *a, void *conn, const struct sl_http_request *req);

/* The server is closing conn before its answer came: drop the answer. */
void sl_api_forget(struct sl_api *a, void *conn);

#endif
