/* The read API's event-loop side (include/sluice/api.h, docs/api.md): routes the
 * /api/v1/ paths, checks read tokens against the in-memory table, parses the parameters,
 * and hands the work on: a search becomes a job for the search workers
 * (drain/searchd.c), a tail stream is answered 200 text/event-stream here and fed by
 * the tail thread (drain/tailer.c). Their results come back through the wake callback
 * (an event_active) and are written on the connections here.
 *
 * What it leaves to others: the SQL and PostgreSQL connections (searchd.c, tailer.c,
 * search.c; this file does not include libpq), the HTTP server and its connections
 * (drain/server.c, through struct sl_api_ops). Runs on the event loop only, apart from
 * wake(), which the database threads call. */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/random.h>
#include <sys/time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "readq.h"
#include "sluice/api.h"
#include "sluice/buf.h"
#include "sluice/clock.h"
#include "sluice/digest.h"
#include "sluice/enc.h"
#include "sluice/feed.h"
#include "sluice/metrics.h"
#include "sluice/qs.h"
#include "sluice/search.h"
#include "sluice/sources.h"

#define KEEPALIVE_S 15
/* A stream client that takes none of its pending output for this long is cut (its slot
 * and buffer go; it reconnects with Last-Event-ID). */
#define TAIL_CUT_S 30
#define QS_MAX 64
#define VAL_MAX 8192
/* since/until refused by sl_search_parse_time: the forms it takes, with an example */
#define BAD_TIME                                                                            \
    "bad %s: RFC 3339 with 'T' and a real date (2026-11-21T10:00:00Z), a date (2026-11-21), " \
    "relative (15m, 2h, 3d) or Unix seconds"

/* The loop's side of a tail stream: the socket and its keep-alive timer. Freed when
 * the stream closes (stream_close); the shared part is the tail thread's too. */
struct stream {
    struct sl_api *api;
    struct sl_tail_stream *ts;
    struct bufferevent *bev;
    struct event *keepalive;
    TAILQ_ENTRY(stream) link; /* api->streams */
};
TAILQ_HEAD(stream_list, stream);

struct sl_api {
    struct sl_api_opts o;
    struct event_base *base;
    struct event *done_ev;              /* woken by the database threads */
    struct sl_searchd *searchd;
    struct sl_tailer *tailer;
    struct sl_search_job_list pending;  /* searches waiting for their answer */
    struct stream_list streams;         /* open tail streams */
};

static void json_err(struct sl_buf *b, const char *msg)
{
    sl_buf_reset(b);
    if (sl_buf_add(b, "{\"error\":", 9) || sl_enc_json_str(b, msg, strlen(msg)) ||
        sl_buf_add(b, "}\n", 2))
        b->len = 0;
}

static void answer_error(struct sl_api *a, void *conn, int status, const char *msg,
                         const char *extra)
{
    struct sl_buf b;
    sl_buf_init(&b, 4096);
    json_err(&b, msg);
    a->o.ops.respond(a->o.ops.arg, conn, status, "application/json", b.p ? b.p : "", b.len,
                     extra);
    sl_buf_free(&b);
}

/* Any thread: a database thread has something for the loop. */
static void wake(void *arg)
{
    struct sl_api *a = arg;
    event_active(a->done_ev, EV_READ, 0);
}

/* ---------------------------------------------------------------- tail streams */

/* End the stream: the socket goes, the tail thread lets go of the shared part. */
static void stream_close(struct stream *st)
{
    struct sl_api *a = st->api;

    if (st->keepalive)
        event_free(st->keepalive);
    if (st->bev)
        bufferevent_free(st->bev);
    atomic_fetch_sub(&sl_metrics.tail_clients, 1);
    TAILQ_REMOVE(&a->streams, st, link);
    sl_tailer_close(a->tailer, st->ts);
    free(st);
}

static void stream_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
        stream_close(arg);
}

static void stream_read(struct bufferevent *bev, void *arg)
{
    struct evbuffer *in = bufferevent_get_input(bev);
    (void)arg;
    evbuffer_drain(in, evbuffer_get_length(in)); /* a stream client has nothing to say */
}

/* The output fell under the low-water mark: a paused client catches up. */
static void stream_written(struct bufferevent *bev, void *arg)
{
    struct stream *st = arg;
    (void)bev;
    sl_tailer_resume(st->api->tailer, st->ts);
}

/* The last text of an ended stream is written: close. */
static void stream_flushed(struct bufferevent *bev, void *arg)
{
    if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        stream_close(arg);
}

static void stream_keepalive(evutil_socket_t fd, short what, void *arg)
{
    struct stream *st = arg;
    (void)fd;
    (void)what;
    evbuffer_add(bufferevent_get_output(st->bev), ": keep-alive\n\n", 14);
}

/* Text from the tail thread for one stream. */
static void stream_write(struct sl_api *a, struct sl_tail_msg *m)
{
    struct stream *st = sl_tail_stream_ctx(m->s);
    struct evbuffer *o;

    if (sl_tail_stream_closed(m->s) || st == NULL)
        return;
    o = bufferevent_get_output(st->bev);
    evbuffer_add(o, m->text.p, m->text.len);
    if (evbuffer_get_length(o) > a->o.tail_buffer)
        sl_tailer_pause(m->s);
    if (m->close) {
        /* flush what is queued, then close */
        bufferevent_setcb(st->bev, NULL, stream_flushed, stream_event, st);
        bufferevent_setwatermark(st->bev, EV_WRITE, 0, 0);
        if (evbuffer_get_length(o) == 0)
            stream_close(st);
    }
}

/* ---------------------------------------------------------------- loop side */

static void on_done(evutil_socket_t fd, short what, void *arg)
{
    struct sl_api *a = arg;
    struct sl_search_job_list done;
    struct sl_tail_msg_list msgs;
    struct sl_search_job *j;
    struct sl_tail_msg *m;
    (void)fd;
    (void)what;

    TAILQ_INIT(&done);
    TAILQ_INIT(&msgs);
    sl_searchd_take_done(a->searchd, &done);
    sl_tailer_take_msgs(a->tailer, &msgs);
    while ((j = TAILQ_FIRST(&done)) != NULL) {
        TAILQ_REMOVE(&done, j, link);
        if (j->conn) {
            TAILQ_REMOVE(&a->pending, j, pending);
            a->o.ops.respond(a->o.ops.arg, j->conn, j->status, "application/json",
                             j->body.p ? j->body.p : "", j->body.len,
                             j->status < 300 ? j->extra : NULL);
        }
        sl_search_job_free(j);
    }
    while ((m = TAILQ_FIRST(&msgs)) != NULL) {
        TAILQ_REMOVE(&msgs, m, link);
        stream_write(a, m);
        sl_tailer_msg_free(m);
    }
}
bool sl_api_path(struct sl_str path)
{
    return path.len >= 5 && memcmp(path.p, "/api/", 5) == 0;
}

struct qs {
    size_t n;
    struct {
        char key[32];
        char *val;
    } kv[QS_MAX];
};

static void qs_free(struct qs *q)
{
    for (size_t i = 0; i < q->n; i++)
        free(q->kv[i].val);
    q->n = 0;
}

/* Split and decode the query (sluice/qs.h's rule). Returns NULL, or an error message. */
static const char *qs_parse(struct sl_str query, struct qs *q)
{
    struct sl_qs_pair pair;
    size_t pos = 0;

    q->n = 0;
    while (sl_qs_next(query, &pos, &pair)) {
        char *val;
        if (q->n == QS_MAX)
            return "too many parameters";
        if (sl_qs_decode_cstr(pair.key, q->kv[q->n].key, sizeof(q->kv[q->n].key)) < 0)
            return "bad parameter name";
        val = malloc(VAL_MAX);
        if (val == NULL)
            return "out of memory";
        if (sl_qs_decode_cstr(pair.val, val, VAL_MAX) < 0) {
            free(val);
            return "bad parameter value (percent-encoding, NUL, or over 8 KiB)";
        }
        q->kv[q->n].val = val;
        q->n++;
    }
    return NULL;
}

static const char *qs_get(const struct qs *q, const char *key)
{
    for (size_t i = 0; i < q->n; i++)
        if (strcmp(q->kv[i].key, key) == 0)
            return q->kv[i].val;
    return NULL;
}

/* ---------------------------------------------------------------- viewer sessions */

#define COOKIE "sluice_session"
#define SESSION_S (12 * 3600) /* a session's life from sign-in */
#define NO_STORE "Cache-Control: no-store\r\n"

/* The value of the session cookie in the request's Cookie header (RFC 6265 §5.4:
 * "a=b; c=d"), or an empty slice. */
static struct sl_str req_cookie(const struct sl_http_request *req)
{
    const struct sl_str *h = sl_http_header_get(req, "cookie");
    struct sl_str none = {NULL, 0};
    size_t i = 0, klen = sizeof(COOKIE) - 1;

    if (h == NULL)
        return none;
    while (i < h->len) {
        size_t j = i;
        while (j < h->len && h->p[j] != ';')
            j++;
        while (i < j && h->p[i] == ' ')
            i++;
        if (j - i > klen && memcmp(h->p + i, COOKIE "=", klen + 1) == 0)
            return (struct sl_str){h->p + i + klen + 1, j - i - klen - 1};
        i = j + 1;
    }
    return none;
}

/* A session cookie's value is "s1.<expiry, Unix seconds>.<64 hex digits>"; its SHA-256
 * is stored, so the expiry cannot be changed. Has it expired (or is it not one)? */
static bool session_expired(struct sl_str v, int64_t now_s)
{
    char tmp[32];
    size_t k = 0;

    if (v.len != 3 + 10 + 1 + 64 || memcmp(v.p, "s1.", 3) != 0)
        return true;
    for (size_t i = 3; i < 13; i++)
        tmp[k++] = v.p[i];
    tmp[k] = '\0';
    return strtoll(tmp, NULL, 10) <= now_s;
}

/* A state-changing request of the viewer (sign-in, sign-out) came from the viewer's
 * own page: it carries X-Sluice-Request (a header a cross-site form cannot send and a
 * cross-origin fetch cannot send without a preflight sluice never allows), and its
 * Origin, when sent, is this host. */
static bool csrf_ok(const struct sl_http_request *req)
{
    const struct sl_str *x = sl_http_header_get(req, "x-sluice-request");
    const struct sl_str *o = sl_http_header_get(req, "origin");
    const struct sl_str *h = sl_http_header_get(req, "host");
    const struct sl_str *sfs = sl_http_header_get(req, "sec-fetch-site");

    if (x == NULL || x->len == 0)
        return false;
    if (sfs && !sl_str_eq(*sfs, "same-origin") && !sl_str_eq(*sfs, "none"))
        return false;
    if (o && !sl_str_eq(*o, "null")) {
        const char *rest;
        size_t n;
        if (h == NULL)
            return false;
        if (o->len > 8 && memcmp(o->p, "https://", 8) == 0)
            rest = o->p + 8, n = o->len - 8;
        else if (o->len > 7 && memcmp(o->p, "http://", 7) == 0)
            rest = o->p + 7, n = o->len - 7;
        else
            return false;
        if (n != h->len || memcmp(rest, h->p, n) != 0)
            return false;
    } else if (o) {
        return false;
    }
    return true;
}

/* The read token of a request, or an empty slice. *cookie: it is the session cookie
 * (accepted for GET and HEAD only; an expired one is no token). */
static struct sl_str req_token(const struct sl_http_request *req, bool *cookie)
{
    const struct sl_str *h = sl_http_header_get(req, "authorization");
    struct sl_str t = {NULL, 0};

    *cookie = false;
    if (h == NULL && sl_http_header_get(req, "x-papertrail-token") == NULL &&
        (sl_str_eq(req->method, "GET") || sl_str_eq(req->method, "HEAD"))) {
        t = req_cookie(req);
        if (t.len && session_expired(t, sl_clock_real_us() / 1000000))
            t.len = 0;
        *cookie = t.len > 0;
        return t;
    }

    if (h && h->len > 7 && strncasecmp(h->p, "Bearer ", 7) == 0) {
        t.p = h->p + 7;
        t.len = h->len - 7;
        while (t.len && *t.p == ' ') {
            t.p++;
            t.len--;
        }
    } else if ((h = sl_http_header_get(req, "x-papertrail-token")) != NULL) {
        t = *h;
    }
    return t;
}

static int id_cmp(const void *x, const void *y)
{
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return a < b ? -1 : a > b;
}

static bool in_scope(const struct sl_read_scope *sc, const int64_t *all, size_t nall, int64_t id)
{
    if (sc->all)
        return bsearch(&id, all, nall, sizeof(id), id_cmp) != NULL;
    return bsearch(&id, sc->ids, sc->n, sizeof(id), id_cmp) != NULL;
}

/* The sources a request sees: the token's scope, narrowed by source= (names, ids for
 * Papertrail's system_id/group_id), comma-separated or repeated. *ids malloc'd. */
static int req_scope(struct sl_api *a, const struct sl_read_scope *sc, const struct qs *q,
                     const char *const *keys, int64_t **ids, size_t *n)
{
    int64_t *all = NULL;
    size_t nall = 0, k = 0, cap;
    bool named = false;

    if (sl_sources_all_ids(a->o.sources, &all, &nall))
        return SL_ENOMEM;
    if (!sc->all && sc->n > 1)
        qsort(sc->ids, sc->n, sizeof(*sc->ids), id_cmp);
    cap = nall + 1;
    *ids = calloc(cap, sizeof(**ids));
    if (*ids == NULL) {
        free(all);
        return SL_ENOMEM;
    }
    for (size_t i = 0; i < q->n; i++) {
        bool match = false;
        for (const char *const *kk = keys; *kk; kk++)
            match |= strcmp(q->kv[i].key, *kk) == 0;
        if (!match)
            continue;
        named = true;
        for (char *save = NULL, *tok = strtok_r(q->kv[i].val, ",", &save); tok;
             tok = strtok_r(NULL, ",", &save)) {
            int64_t id = sl_sources_id(a->o.sources, tok);
            if (id == 0 && keys[0] && strcmp(keys[0], "system_id") == 0) {
                char *end;
                long long v = strtoll(tok, &end, 10);
                if (*end == '\0' && v > 0 && bsearch(&(int64_t){v}, all, nall, sizeof(int64_t), id_cmp))
                    id = v;
            }
            if (id > 0 && in_scope(sc, all, nall, id) && k < cap) {
                bool dup = false;
                for (size_t d = 0; d < k; d++)
                    dup |= (*ids)[d] == id;
                if (!dup)
                    (*ids)[k++] = id;
            }
        }
    }
    if (!named)
        for (size_t i = 0; i < nall; i++)
            if (in_scope(sc, all, nall, all[i]))
                (*ids)[k++] = all[i];
    free(all);
    *n = k;
    return 0;
}

static void handle_tail(struct sl_api *a, void *conn, const struct sl_http_request *req,
                        struct qs *q, int64_t *ids, size_t nids, struct sl_str tok,
                        bool every_source)
{
    const struct sl_str *lei = sl_http_header_get(req, "last-event-id");
    const char *lid = qs_get(q, "last_id");
    const char *qq = qs_get(q, "q");
    struct sl_buf err;
    struct sl_tail_q *tq = NULL;
    struct sl_tail_stream *ts = NULL;
    struct stream *st;
    struct bufferevent *bev;
    int64_t after = -1, newest;
    uint64_t gen;
    char idbuf[32];
    struct timeval ka = {KEEPALIVE_S, 0}, wr = {TAIL_CUT_S, 0};
    static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                               "Cache-Control: no-store\r\nX-Accel-Buffering: no\r\n"
                               "Connection: close\r\n\r\nretry: 2000\n\n";

    if (lei && lei->len > 0 && lei->len < sizeof(idbuf)) {
        memcpy(idbuf, lei->p, lei->len);
        idbuf[lei->len] = '\0';
        lid = idbuf;
    }
    if (lid && *lid) {
        char *end;
        long long v = strtoll(lid, &end, 10);
        if (*end || v < 0) {
            answer_error(a, conn, 400, "bad Last-Event-ID (an event id)", NULL);
            return;
        }
        after = v;
    }
    if (sl_tailer_full(a->tailer)) {
        answer_error(a, conn, 503, "too many tail streams: retry later", "Retry-After: 5\r\n");
        return;
    }
    sl_buf_init(&err, 4096);
    if (sl_tail_prepare(a->o.sources, qq ? qq : "", ids, nids, &tq, &err)) {
        a->o.ops.respond(a->o.ops.arg, conn, 400, "application/json", err.p ? err.p : "",
                         err.len, NULL);
        sl_buf_free(&err);
        return;
    }
    sl_buf_free(&err);
    gen = sl_sources_generation(a->o.sources);
    st = calloc(1, sizeof(*st));
    newest = sl_feed_head(a->o.feed);
    if (st == NULL || sl_tail_stream_new(tq, qq ? qq : "", ids, nids, tok.p, tok.len, gen,
                                         every_source, after, newest, st, &ts)) {
        if (st == NULL)
            sl_tail_free(tq);
        free(st);
        answer_error(a, conn, 503, "out of memory", "Retry-After: 1\r\n");
        return;
    }
    bev = a->o.ops.take(a->o.ops.arg, conn);
    if (bev == NULL) {
        sl_tail_stream_discard(ts);
        free(st);
        return;
    }
    st->api = a;
    st->ts = ts;
    st->bev = bev;
    evbuffer_add(bufferevent_get_output(bev), head, sizeof(head) - 1);
    bufferevent_setcb(bev, stream_read, stream_written, stream_event, st);
    bufferevent_setwatermark(bev, EV_WRITE, a->o.tail_buffer / 2, 0);
    bufferevent_set_timeouts(bev, NULL, &wr);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    st->keepalive = event_new(a->base, -1, EV_PERSIST, stream_keepalive, st);
    if (st->keepalive)
        event_add(st->keepalive, &ka);
    atomic_fetch_add(&sl_metrics.tail_clients, 1);
    TAILQ_INSERT_TAIL(&a->streams, st, link);
    sl_tailer_add(a->tailer, ts);
}

static int parse_limit(const char *v, int def, int *out)
{
    char *end;
    long n;

    if (v == NULL || *v == '\0') {
        *out = def;
        return 0;
    }
    n = strtol(v, &end, 10);
    if (*end || n < 1 || n > SL_SEARCH_MAX_LIMIT)
        return SL_EPARSE;
    *out = (int)n;
    return 0;
}

/* since/until (Papertrail: min_time/max_time) into p's window. false: answered 400. */
static bool parse_window(struct sl_api *a, void *conn, const struct qs *q, bool papertrail,
                         int64_t now, struct sl_search_params *p)
{
    const char *ks = papertrail ? "min_time" : "since";
    const char *ku = papertrail ? "max_time" : "until";
    const char *vs = qs_get(q, ks), *vu = qs_get(q, ku);
    int64_t window = papertrail ? 7LL * 86400 * 1000000 : 86400LL * 1000000;
    char msg[160];

    p->until_us = now;
    if (vu && *vu && sl_search_parse_time(vu, now, &p->until_us)) {
        snprintf(msg, sizeof(msg), BAD_TIME, ku);
        answer_error(a, conn, 400, msg, NULL);
        return false;
    }
    if (papertrail && vu && *vu)
        p->until_us += 1000000; /* Papertrail's max_time includes that second */
    p->default_window = !(vs && *vs);
    p->since_us = p->until_us - window;
    if (vs && *vs && sl_search_parse_time(vs, now, &p->since_us)) {
        snprintf(msg, sizeof(msg), BAD_TIME, ks);
        answer_error(a, conn, 400, msg, NULL);
        return false;
    }
    if (p->since_us >= p->until_us) {
        answer_error(a, conn, 400, "the time range is empty (since is not before until)", NULL);
        return false;
    }
    return true;
}

/* Queue job j (its kind and fields set) for the search workers; the answer comes
 * through on_done. Takes j (freed on an error). */
static void submit(struct sl_api *a, void *conn, struct sl_search_job *j, struct sl_str tok)
{
    j->conn = conn;
    j->p.q = j->q;
    j->p.scope = j->scope;
    j->owner = sl_searchd_owner(tok.p, tok.len);
    switch (sl_searchd_submit(a->searchd, j)) {
    case 0:
        TAILQ_INSERT_TAIL(&a->pending, j, pending);
        return;
    case SL_EAGAIN:
        answer_error(a, conn, 429,
                     "too many searches of this token at once (SLUICE_SEARCH_TOKEN_JOBS): "
                     "retry later",
                     "Retry-After: 1\r\n");
        break;
    default:
        answer_error(a, conn, 503, "every search worker is busy: retry later", "Retry-After: 1\r\n");
        break;
    }
    sl_search_job_free(j);
}

/* GET /api/v1/sources: the sources the token may read (from memory). */
static void answer_sources(struct sl_api *a, void *conn, const struct sl_read_scope *sc,
                           const int64_t *ids, size_t n)
{
    struct sl_buf b;
    int rc;

    sl_buf_init(&b, 1u << 24);
    rc = sl_buf_addf(&b, "{\"all\":%s,\"sources\":[", sc->all ? "true" : "false");
    for (size_t i = 0, k = 0; i < n && rc == 0; i++) {
        char name[SL_SOURCE_NAME_MAX + 1];
        if (!sl_sources_name(a->o.sources, ids[i], name, sizeof(name)))
            continue;
        rc = sl_buf_addf(&b, "%s{\"id\":%" PRId64 ",\"name\":", k++ ? "," : "", ids[i]);
        if (rc == 0)
            rc = sl_enc_json_str(&b, name, strlen(name));
        if (rc == 0)
            rc = sl_buf_addc(&b, '}');
    }
    if (rc == 0)
        rc = sl_buf_add(&b, "]}\n", 3);
    if (rc)
        answer_error(a, conn, 503, "out of memory", "Retry-After: 1\r\n");
    else
        a->o.ops.respond(a->o.ops.arg, conn, 200, "application/json", b.p, b.len, NO_STORE);
    sl_buf_free(&b);
}

/* POST /api/v1/session (sign in: the read token in Authorization, never in a URL) and
 * POST /api/v1/session/signout (the cookie), both CSRF-checked; GET /api/v1/session
 * says whether the request is signed in (401 when not). docs/viewer.md. */
static void handle_session(struct sl_api *a, void *conn, const struct sl_http_request *req,
                           struct sl_str tok, bool cookie, const struct sl_read_scope *sc)
{
    bool post = sl_str_eq(req->method, "POST");
    bool signout = sl_str_eq(req->path, "/api/v1/session/signout");
    bool secure = a->o.ops.tls && a->o.ops.tls(a->o.ops.arg, conn);
    struct sl_search_job *j;
    unsigned char rnd[32];
    char hex[65], secret[96], extra[320];
    int64_t exp;

    if (!post) {
        if (signout) {
            answer_error(a, conn, 405, "POST only", "Allow: POST\r\n");
            return;
        }
        snprintf(extra, sizeof(extra), "{\"signed_in\":true,\"session\":%s,\"all\":%s}\n",
                 cookie ? "true" : "false", sc->all ? "true" : "false");
        a->o.ops.respond(a->o.ops.arg, conn, 200, "application/json", extra, strlen(extra),
                         NO_STORE);
        return;
    }
    if (!csrf_ok(req)) {
        answer_error(a, conn, 403,
                     "cross-site request refused (X-Sluice-Request and a same-origin Origin "
                     "are required)",
                     NULL);
        return;
    }
    j = sl_search_job_new(4096);
    if (j == NULL) {
        answer_error(a, conn, 503, "out of memory", "Retry-After: 1\r\n");
        return;
    }
    if (signout) {
        struct sl_str c = req_cookie(req);
        j->kind = SL_JOB_SESSION_RM;
        snprintf(extra, sizeof(extra),
                 "Set-Cookie: " COOKIE "=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict%s\r\n"
                 NO_STORE "Clear-Site-Data: \"cookies\"\r\n",
                 secure ? "; Secure" : "");
        if (c.len == 0 || c.len >= sizeof(secret)) {
            sl_search_job_free(j);
            a->o.ops.respond(a->o.ops.arg, conn, 204, NULL, NULL, 0, extra);
            return;
        }
        memcpy(secret, c.p, c.len);
        secret[c.len] = '\0';
    } else {
        size_t got = 0;
        while (got < sizeof(rnd)) {
            ssize_t k = getrandom(rnd + got, sizeof(rnd) - got, 0);
            if (k <= 0) {
                sl_search_job_free(j);
                answer_error(a, conn, 503, "no randomness: retry later", "Retry-After: 1\r\n");
                return;
            }
            got += (size_t)k;
        }
        sl_enc_hex(rnd, sizeof(rnd), hex);
        explicit_bzero(rnd, sizeof(rnd));
        exp = sl_clock_real_us() / 1000000 + SESSION_S;
        snprintf(secret, sizeof(secret), "s1.%010lld.%s", (long long)exp, hex);
        explicit_bzero(hex, sizeof(hex));
        j->kind = SL_JOB_SESSION_ADD;
        j->expires_s = exp;
        sl_digest_sha256_hex(tok.p, tok.len, j->tok_hex);
        snprintf(extra, sizeof(extra),
                 "Set-Cookie: " COOKIE "=%s; Path=/; Max-Age=%d; HttpOnly; SameSite=Strict%s\r\n"
                 NO_STORE,
                 secret, SESSION_S, secure ? "; Secure" : "");
    }
    j->secret = strdup(secret);
    j->extra = strdup(extra);
    explicit_bzero(secret, sizeof(secret));
    explicit_bzero(extra, sizeof(extra));
    if (j->secret == NULL || j->extra == NULL || (j->q = strdup("")) == NULL) {
        sl_search_job_free(j);
        answer_error(a, conn, 503, "out of memory", "Retry-After: 1\r\n");
        return;
    }
    submit(a, conn, j, tok.len ? tok : (struct sl_str){j->secret, strlen(j->secret)});
}

void sl_api_handle(struct sl_api *a, void *conn, const struct sl_http_request *req)
{
    enum { R_SEARCH, R_PAPERTRAIL, R_TAIL, R_AGGREGATE, R_CONTEXT, R_SOURCES, R_SESSION } route;
    struct sl_str path = req->path;
    bool cookie = false;
    struct sl_str tok = req_token(req, &cookie);
    struct sl_read_scope sc = {false, NULL, 0};
    struct qs q;
    const char *e;
    int64_t *ids = NULL, now = sl_clock_real_us();
    size_t nids = 0;
    struct sl_search_params p;
    struct sl_search_job *j = NULL;

    if (sl_str_eq(path, "/api/v1/search"))
        route = R_SEARCH;
    else if (sl_str_eq(path, "/api/v1/events/search.json"))
        route = R_PAPERTRAIL;
    else if (sl_str_eq(path, "/api/v1/tail"))
        route = R_TAIL;
    else if (sl_str_eq(path, "/api/v1/aggregate"))
        route = R_AGGREGATE;
    else if (sl_str_eq(path, "/api/v1/context"))
        route = R_CONTEXT;
    else if (sl_str_eq(path, "/api/v1/sources"))
        route = R_SOURCES;
    else if (sl_str_eq(path, "/api/v1/session") || sl_str_eq(path, "/api/v1/session/signout"))
        route = R_SESSION;
    else {
        answer_error(a, conn, 404, "no such API path", NULL);
        return;
    }
    SL_INC(api_requests, 1);
    if (sl_sources_generation(a->o.sources) == 0) {
        answer_error(a, conn, 503, "token table not loaded yet: retry later", "Retry-After: 5\r\n");
        return;
    }
    if (route == R_SESSION && sl_str_eq(path, "/api/v1/session/signout")) {
        handle_session(a, conn, req, tok, cookie, &sc); /* the cookie, not a token */
        return;
    }
    if (tok.len == 0 || sl_sources_read_auth(a->o.sources, tok.p, tok.len, &sc) != 0) {
        answer_error(a, conn, 401,
                     "a read token is required (Authorization: Bearer TOKEN; `sluice token add`)",
                     "WWW-Authenticate: Bearer realm=\"sluice\"\r\n");
        return;
    }
    if (route == R_SESSION) {
        handle_session(a, conn, req, tok, cookie, &sc);
        free(sc.ids);
        return;
    }
    memset(&q, 0, sizeof(q));
    if ((e = qs_parse(req->query, &q)) != NULL) {
        answer_error(a, conn, 400, e, NULL);
        goto out;
    }
    {
        static const char *const api_keys[] = {"source", NULL};
        static const char *const pt_keys[] = {"system_id", "group_id", NULL};
        if (req_scope(a, &sc, &q, route == R_PAPERTRAIL ? pt_keys : api_keys, &ids, &nids)) {
            answer_error(a, conn, 503, "out of memory", "Retry-After: 1\r\n");
            goto out;
        }
    }
    if (route == R_SOURCES) {
        answer_sources(a, conn, &sc, ids, nids);
        goto out;
    }
    if (route == R_TAIL && sl_str_eq(req->method, "HEAD")) {
        a->o.ops.respond(a->o.ops.arg, conn, 200, "text/event-stream", "", 0, NULL);
        goto out;
    }
    if (route == R_TAIL) {
        handle_tail(a, conn, req, &q, ids, nids, tok, sc.all && qs_get(&q, "source") == NULL);
        goto out;
    }
    memset(&p, 0, sizeof(p));
    p.kind = route == R_PAPERTRAIL ? SL_SEARCH_PAPERTRAIL : SL_SEARCH_API;
    if (route != R_CONTEXT && !parse_window(a, conn, &q, route == R_PAPERTRAIL, now, &p))
        goto out;
    j = sl_search_job_new(a->o.answer_bytes);
    if (j == NULL) {
        answer_error(a, conn, 503, "out of memory", "Retry-After: 1\r\n");
        goto out;
    }
    if (route == R_AGGREGATE) {
        const char *v = qs_get(&q, "buckets");
        char *end;
        long n = v && *v ? strtol(v, &end, 10) : 60;
        if (v && *v && (*end || n < 1 || n > SL_SEARCH_MAX_BUCKETS)) {
            answer_error(a, conn, 400, "bad buckets: 1 to 500", NULL);
            goto out;
        }
        j->kind = SL_JOB_AGGREGATE;
        j->buckets = (int)n;
    } else if (route == R_CONTEXT) {
        const char *v = qs_get(&q, "id"), *vn = qs_get(&q, "n");
        char *end;
        long long id = v ? strtoll(v, &end, 10) : 0;
        long n = vn && *vn ? strtol(vn, &end, 10) : 20;
        if (v == NULL || id <= 0 || *end) {
            answer_error(a, conn, 400, "bad id: an event id", NULL);
            goto out;
        }
        if (vn && *vn && (strtol(vn, &end, 10), *end || n < 1 || n > 200)) {
            answer_error(a, conn, 400, "bad n: 1 to 200", NULL);
            goto out;
        }
        j->kind = SL_JOB_CONTEXT;
        j->ctx_id = id;
        j->ctx_n = (int)n;
    } else {
        if (parse_limit(qs_get(&q, "limit"), route == R_PAPERTRAIL ? 1000 : 100, &p.limit)) {
            answer_error(a, conn, 400, "bad limit: 1 to 10000", NULL);
            goto out;
        }
        if (route == R_SEARCH) {
            const char *o = qs_get(&q, "order"), *c = qs_get(&q, "cursor");
            if (o && *o && strcmp(o, "asc") && strcmp(o, "desc")) {
                answer_error(a, conn, 400, "bad order: asc or desc", NULL);
                goto out;
            }
            p.asc = o && strcmp(o, "asc") == 0;
            if (c && *c && sl_search_parse_cursor(c, &p.cursor, &p.cur_us, &p.cur_id)) {
                answer_error(a, conn, 400, "bad cursor (use next_cursor or prev_cursor as given)",
                             NULL);
                goto out;
            }
        } else {
            const char *mi = qs_get(&q, "min_id"), *ma = qs_get(&q, "max_id");
            char *end;
            if (mi && *mi && ((p.min_id = strtoll(mi, &end, 10)) <= 0 || *end)) {
                answer_error(a, conn, 400, "bad min_id", NULL);
                goto out;
            }
            if (ma && *ma && ((p.max_id = strtoll(ma, &end, 10)) <= 0 || *end)) {
                answer_error(a, conn, 400, "bad max_id", NULL);
                goto out;
            }
            p.asc = true;
        }
    }
    /* The answer's budget, SLUICE_SEARCH_ANSWER_BYTES: beyond it the search answers the
     * events that fit, `truncated`, with a cursor (the buffer grows only as it fills). */
    if ((j->q = strdup(qs_get(&q, "q") ? qs_get(&q, "q") : "")) == NULL) {
        answer_error(a, conn, 503, "out of memory", "Retry-After: 1\r\n");
        goto out;
    }
    j->p = p;
    j->scope = ids;
    ids = NULL;
    j->p.nscope = nids;
    submit(a, conn, j, tok);
    j = NULL;
out:
    sl_search_job_free(j);
    free(ids);
    free(sc.ids);
    qs_free(&q);
}

void sl_api_forget(struct sl_api *a, void *conn)
{
    struct sl_search_job *j;

    if (a == NULL)
        return;
    TAILQ_FOREACH(j, &a->pending, pending)
        if (j->conn == conn) {
            j->conn = NULL;
            TAILQ_REMOVE(&a->pending, j, pending);
            sl_searchd_cancel(a->searchd, j); /* nobody reads its answer: free the worker */
            return;
        }
}

int sl_api_start(struct event_base *base, const struct sl_api_opts *o, struct sl_api **out)
{
    struct sl_api *a = calloc(1, sizeof(*a));
    struct sl_searchd_opts so;
    struct sl_tailer_opts to;

    if (a == NULL)
        return SL_ENOMEM;
    a->o = *o;
    if (a->o.tail_buffer < 65536)
        a->o.tail_buffer = 65536;
    if (a->o.max_message == 0)
        a->o.max_message = SL_SEARCH_DEFAULT_MAX_MESSAGE;
    if (a->o.max_header == 0)
        a->o.max_header = SL_SEARCH_DEFAULT_MAX_HEADER;
    if (a->o.answer_bytes == 0)
        a->o.answer_bytes = SL_SEARCH_DEFAULT_ANSWER_BYTES;
    /* one event of the largest size the settings let a row hold always fits */
    if (a->o.answer_bytes < sl_search_answer_max(1, a->o.max_message, a->o.max_header))
        a->o.answer_bytes = sl_search_answer_max(1, a->o.max_message, a->o.max_header);
    a->base = base;
    TAILQ_INIT(&a->pending);
    TAILQ_INIT(&a->streams);
    a->done_ev = event_new(base, -1, 0, on_done, a);
    if (a->done_ev == NULL)
        goto fail;
    memset(&so, 0, sizeof(so));
    so.database_url = o->database_url;
    so.sources = o->sources;
    so.workers = o->workers;
    so.timeout_s = o->timeout_s;
    so.token_jobs = o->token_jobs;
    so.wake.fn = wake;
    so.wake.arg = a;
    if (sl_searchd_start(&so, &a->searchd))
        goto fail;
    memset(&to, 0, sizeof(to));
    to.database_url = o->database_url;
    to.sources = o->sources;
    to.feed = o->feed;
    to.max_streams = o->max_tail;
    to.stream_cap = a->o.tail_buffer;
    to.replay_max = a->o.tail_replay > 0 ? a->o.tail_replay : 100000;
    to.wake.fn = wake;
    to.wake.arg = a;
    if (sl_tailer_start(&to, &a->tailer))
        goto fail;
    *out = a;
    return 0;
fail:
    sl_api_stop(a);
    return SL_ENOMEM;
}

void sl_api_stop(struct sl_api *a)
{
    struct stream *st;

    if (a == NULL)
        return;
    /* the loop's side of every stream first; the tail thread drops its own at stop */
    while ((st = TAILQ_FIRST(&a->streams)) != NULL)
        stream_close(st);
    /* the threads are joined before the event they wake goes; the jobs still inside
     * searchd (the pending ones among them) are freed there */
    sl_searchd_stop(a->searchd);
    sl_tailer_stop(a->tailer);
    if (a->done_ev)
        event_free(a->done_ev);
    free(a);
}
