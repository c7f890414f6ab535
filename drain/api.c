/* The read API (include/sluice/api.h, docs/api.md): request parsing and auth on the
 * event loop, searches on worker threads, live tail on the tail thread. */
#include <ctype.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <libpq-fe.h>

#include "sluice/api.h"
#include "sluice/buf.h"
#include "sluice/db.h"
#include "sluice/feed.h"
#include "sluice/log.h"
#include "sluice/metrics.h"
#include "sluice/search.h"
#include "sluice/sources.h"
#include "sluice/writer.h"

#define MAX_QUEUED 64
#define TAIL_BATCH 1000
#define TAIL_BATCH_BYTES (256u * 1024u) /* SSE text per read; a read stops after the row
                                           that passes it */
#define TAIL_GRACE_MS 1000 /* a paused client may catch up this long before lines are skipped */
#define KEEPALIVE_S 15
#define QS_MAX 64
#define VAL_MAX 8192

/* ---------------------------------------------------------------- jobs */

struct job {
    struct sl_api *api;
    void *conn;                 /* loop thread only; NULL once forgotten */
    struct sl_search_params p;
    char *q;
    int64_t *scope;
    int status;
    struct sl_buf body;
    TAILQ_ENTRY(job) link;      /* todo / done queue (under mu) */
    TAILQ_ENTRY(job) pending;   /* loop thread: waiting for an answer */
};
TAILQ_HEAD(job_list, job);

/* A live tail stream. Shared by the loop (bev, writing) and the tail thread (reads):
 * refs counts the owners and the queued messages. */
struct sub {
    struct sl_api *api;
    _Atomic int refs;
    _Atomic int closed;     /* the loop closed the stream */
    _Atomic int paused;     /* the client is behind: the loop set it */
    struct bufferevent *bev;
    struct event *keepalive;
    struct sl_tail_q *tq;
    /* tail thread only */
    int64_t last_id;        /* -1: start at the newest id */
    int64_t missed, missed_after;
    int64_t paused_ms;      /* when the tail thread first saw it paused; 0: not paused */
    uint64_t gen;           /* source table generation the scope was resolved at */
    char *token;            /* re-checked when the table changes: rm ends the stream */
    size_t toklen;
    char *q;
    bool every_source;      /* an --all token without source=: new sources join */
    TAILQ_ENTRY(sub) link;  /* api->subs (under mu) */
};
TAILQ_HEAD(sub_list, sub);

struct msg {
    struct sub *s;
    bool close;             /* end the stream after this text */
    struct sl_buf text;
    TAILQ_ENTRY(msg) link;
};
TAILQ_HEAD(msg_list, msg);

struct sl_api {
    struct sl_api_opts o;
    struct event_base *base;
    struct event *done_ev;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct job_list todo, done;
    struct job_list pending; /* loop thread only */
    size_t nqueued;
    struct sub_list subs;
    size_t nsubs;
    struct msg_list msgs;
    pthread_t *workers;
    int nworkers;
    pthread_t tail;
    bool tail_started;
    _Atomic int stop;
};

static void json_err(struct sl_buf *b, const char *msg)
{
    sl_buf_reset(b);
    if (sl_buf_add(b, "{\"error\":\"", 10))
        return;
    for (const char *p = msg; *p; p++) {
        unsigned char c = (unsigned char)*p;
        int rc = (c == '"' || c == '\\') ? sl_buf_addf(b, "\\%c", c)
                 : c < 0x20              ? sl_buf_addf(b, "\\u%04x", c)
                                         : sl_buf_addc(b, (char)c);
        if (rc)
            return;
    }
    if (sl_buf_add(b, "\"}\n", 3))
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

/* ---------------------------------------------------------------- workers */

static int worker_connect(struct sl_api *a, PGconn **pg)
{
    char sql[192];
    PGresult *r;

    if (*pg && PQstatus(*pg) == CONNECTION_OK)
        return 0;
    sl_db_close(*pg);
    *pg = NULL;
    if (sl_db_connect(a->o.database_url, pg))
        return SL_EDB;
    /* No JIT (compiling costs more than these short queries run) and no parallel
     * workers: each is a new process that page-faults in every shared buffer it reads,
     * which without huge pages cost a 7-day block scan 140 ms instead of 57 ms
     * (docs/search.md). */
    snprintf(sql, sizeof(sql),
             "SET statement_timeout = %d; SET jit = off; SET max_parallel_workers_per_gather = 0; "
             "SET application_name = 'sluice-search'",
             a->o.timeout_s * 1000);
    r = PQexec(*pg, sql);
    PQclear(r);
    return 0;
}

static void *worker_main(void *arg)
{
    struct sl_api *a = arg;
    PGconn *pg = NULL;

    for (;;) {
        struct job *j;
        pthread_mutex_lock(&a->mu);
        while (TAILQ_EMPTY(&a->todo) && !atomic_load(&a->stop))
            pthread_cond_wait(&a->cv, &a->mu);
        if (atomic_load(&a->stop)) {
            pthread_mutex_unlock(&a->mu);
            break;
        }
        j = TAILQ_FIRST(&a->todo);
        TAILQ_REMOVE(&a->todo, j, link);
        pthread_mutex_unlock(&a->mu);

        int64_t t0 = sl_now_ms();
        if (worker_connect(a, &pg)) {
            j->status = 503;
            json_err(&j->body, "database unreachable: retry later");
        } else if (sl_search_run(pg, a->o.sources, &j->p, &j->status, &j->body)) {
            sl_db_close(pg); /* reconnect for the next one */
            pg = NULL;
        }
        SL_INC(search_usec, (uint64_t)(sl_now_ms() - t0) * 1000);
        if (j->status == 200)
            SL_INC(searches, 1);
        else
            SL_INC(search_errors, 1);
        pthread_mutex_lock(&a->mu);
        TAILQ_INSERT_TAIL(&a->done, j, link);
        pthread_mutex_unlock(&a->mu);
        event_active(a->done_ev, EV_READ, 0);
    }
    sl_db_close(pg);
    return NULL;
}

static void job_free(struct job *j)
{
    sl_buf_free(&j->body);
    free(j->q);
    free(j->scope);
    free(j);
}

/* ---------------------------------------------------------------- subs */

static void sub_unref(struct sub *s)
{
    if (atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    sl_tail_free(s->tq);
    free(s->token);
    free(s->q);
    free(s);
}

/* Loop thread: end the stream. */
static void sub_close(struct sub *s)
{
    struct sl_api *a = s->api;

    if (atomic_exchange(&s->closed, 1))
        return;
    if (s->keepalive)
        event_free(s->keepalive);
    s->keepalive = NULL;
    if (s->bev)
        bufferevent_free(s->bev);
    s->bev = NULL;
    atomic_fetch_sub(&sl_metrics.tail_clients, 1);
    sl_feed_wake(a->o.feed); /* the tail thread lets go of it */
    sub_unref(s);
}

static void sub_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
        sub_close(arg);
}

static void sub_read(struct bufferevent *bev, void *arg)
{
    struct evbuffer *in = bufferevent_get_input(bev);
    (void)arg;
    evbuffer_drain(in, evbuffer_get_length(in)); /* a stream client has nothing to say */
}

/* The output fell under the low-water mark: a paused client catches up. */
static void sub_written(struct bufferevent *bev, void *arg)
{
    struct sub *s = arg;
    (void)bev;
    if (atomic_exchange(&s->paused, 0))
        sl_feed_wake(s->api->o.feed);
}

/* The last text of an ended stream is written: close. */
static void sub_flushed(struct bufferevent *bev, void *arg)
{
    if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        sub_close(arg);
}

static void sub_keepalive(evutil_socket_t fd, short what, void *arg)
{
    struct sub *s = arg;
    (void)fd;
    (void)what;
    if (s->bev)
        evbuffer_add(bufferevent_get_output(s->bev), ": keep-alive\n\n", 14);
}

/* Tail thread: queue text for a stream (close: end it after the text). */
static void post_msg(struct sl_api *a, struct sub *s, struct sl_buf *text, bool close)
{
    struct msg *m = calloc(1, sizeof(*m));

    if (m == NULL) {
        sl_buf_reset(text);
        return;
    }
    atomic_fetch_add(&s->refs, 1);
    m->s = s;
    m->close = close;
    m->text = *text;
    sl_buf_init(text, text->max);
    pthread_mutex_lock(&a->mu);
    TAILQ_INSERT_TAIL(&a->msgs, m, link);
    pthread_mutex_unlock(&a->mu);
    event_active(a->done_ev, EV_READ, 0);
}

static void post(struct sl_api *a, struct sub *s, struct sl_buf *text)
{
    post_msg(a, s, text, false);
}

/* Tail thread: the source table changed. A removed or rescoped token ends the stream; a
 * stream of an --all token takes in new sources. Returns false when it was ended. */
static bool tail_rescope(struct sl_api *a, struct sub *s, uint64_t gen, struct sl_buf *out)
{
    static const char ended[] =
        "event: error\ndata: {\"error\": \"the read token was removed or changed\"}\n\n";
    struct sl_read_scope sc = {false, NULL, 0};
    bool ok = sl_sources_read_auth(a->o.sources, s->token, s->toklen, &sc) == 0;

    s->gen = gen;
    if (ok && s->every_source && sc.all) {
        int64_t *ids = NULL;
        size_t n = 0;
        struct sl_tail_q *tq = NULL;
        struct sl_buf err;
        sl_buf_init(&err, 4096);
        if (sl_sources_all_ids(a->o.sources, &ids, &n) == 0 &&
            sl_tail_prepare(a->o.sources, s->q, ids, n, &tq, &err) == 0) {
            sl_tail_free(s->tq);
            s->tq = tq;
        }
        sl_buf_free(&err);
        free(ids);
    }
    if (ok && !sc.all && s->every_source)
        ok = false; /* the token no longer reads every source: reconnect to rescope */
    sl_read_scope_free(&sc);
    if (ok)
        return true;
    sl_buf_reset(out);
    if (sl_buf_add(out, ended, sizeof(ended) - 1) == 0)
        post_msg(a, s, out, true);
    return false;
}

/* Tail thread: serve one stream up to hi. Returns true when it has more to send now. */
static bool tail_one(struct sl_api *a, PGconn *pg, struct sub *s, int64_t hi, struct sl_buf *out)
{
    int64_t rmin = 0, rmax = 0, fhi = 0, last = 0;
    bool range = false;
    size_t n = 0;
    uint64_t gen = sl_sources_generation(a->o.sources);

    if (gen != s->gen && !tail_rescope(a, s, gen, out))
        return false;
    if (s->last_id < 0)
        s->last_id = hi;
    if (!atomic_load(&s->paused))
        s->paused_ms = 0;
    else if (s->paused_ms == 0)
        s->paused_ms = sl_now_ms();
    if (s->last_id >= hi)
        goto flush_missed;
    range = sl_feed_since(a->o.feed, s->last_id, &rmin, &rmax, &fhi) && fhi <= hi;
    if (!range)
        fhi = hi;
    if (s->paused_ms && sl_now_ms() - s->paused_ms < TAIL_GRACE_MS)
        return false; /* give it time to read what it has; nothing is fetched meanwhile */
    if (s->paused_ms) {
        int64_t c = 0;
        if (sl_tail_count(pg, s->tq, s->last_id, fhi, range, rmin, rmax, &c))
            return false;
        if (c > 0) {
            if (s->missed == 0)
                s->missed_after = s->last_id;
            s->missed += c;
            SL_INC(tail_missed, (uint64_t)c);
        }
        s->last_id = fhi;
        return false;
    }
flush_missed:
    if (s->missed > 0 && !atomic_load(&s->paused)) {
        if (sl_buf_addf(out,
                        "event: missed\ndata: {\"missed\": %" PRId64 ", \"after_id\": \"%" PRId64
                        "\", \"resume_id\": \"%" PRId64 "\"}\n\n",
                        s->missed, s->missed_after, s->last_id) == 0) {
            s->missed = 0;
            post(a, s, out);
        }
    }
    if (s->last_id >= hi)
        return false;
    if (sl_tail_fetch(pg, s->tq, s->last_id, fhi, range, rmin, rmax, TAIL_BATCH,
                      TAIL_BATCH_BYTES, out, &last, &n))
        return false;
    s->last_id = last;
    if (n > 0) {
        SL_INC(tail_lines, n);
        post(a, s, out);
    } else {
        sl_buf_reset(out);
    }
    return s->last_id < hi;
}

static void *tail_main(void *arg)
{
    struct sl_api *a = arg;
    PGconn *pg = NULL;
    int64_t db_hi = -1, hi, seen = -1;
    struct sl_buf out;
    bool busy = false;

    sl_buf_init(&out, 64u << 20);
    while (!atomic_load(&a->stop)) {
        struct sub **list = NULL;
        size_t n = 0;
        int64_t min_after = INT64_MAX;

        if (pg == NULL || PQstatus(pg) != CONNECTION_OK) {
            sl_db_close(pg);
            pg = NULL;
            if (sl_db_connect(a->o.database_url, &pg)) {
                pg = NULL;
                sl_feed_wait(a->o.feed, INT64_MAX, 1000);
                continue;
            }
            /* Every tail read has an index to follow (log_blocks by max_id, logs by
             * source and time): a new stream or a resume right after new ids arrive
             * met stale statistics, and the planner read all of log_blocks (214 ms
             * at 109k blocks, one tail thread stalled for every stream). */
            PQclear(PQexec(pg, "SET jit = off; SET max_parallel_workers_per_gather = 0; "
                               "SET enable_seqscan = off; SET application_name = 'sluice-tail'"));
            db_hi = -1;
        }
        if (db_hi < 0 && sl_search_max_id(pg, &db_hi)) {
            db_hi = -1;
            sl_db_close(pg);
            pg = NULL;
            continue;
        }
        /* the streams, each held for this round */
        pthread_mutex_lock(&a->mu);
        list = calloc(a->nsubs + 1, sizeof(*list));
        if (list) {
            struct sub *s, *next;
            for (s = TAILQ_FIRST(&a->subs); s; s = next) {
                next = TAILQ_NEXT(s, link);
                if (atomic_load(&s->closed)) {
                    TAILQ_REMOVE(&a->subs, s, link);
                    a->nsubs--;
                    sub_unref(s);
                    continue;
                }
                atomic_fetch_add(&s->refs, 1);
                list[n++] = s;
                if (s->last_id < min_after)
                    min_after = s->last_id;
            }
        }
        pthread_mutex_unlock(&a->mu);
        /* Sleep until a commit passes what the last round saw (or a stream is added,
         * unpaused or closed: those wake the feed). A stream starting from the newest
         * id (last_id -1) is served at once. */
        if (!busy && seen >= 0 && min_after >= 0)
            sl_feed_wait(a->o.feed, seen, 1000);
        hi = sl_feed_last_id(a->o.feed);
        if (hi < db_hi)
            hi = db_hi;
        seen = hi;
        busy = false;
        for (size_t i = 0; i < n && !atomic_load(&a->stop); i++) {
            struct sub *s = list[i];
            if (!atomic_load(&s->closed) && tail_one(a, pg, s, hi, &out))
                busy = true;
            sl_buf_reset(&out);
        }
        for (size_t i = 0; i < n; i++)
            sub_unref(list[i]);
        free(list);
    }
    sl_buf_free(&out);
    sl_db_close(pg);
    return NULL;
}

/* ---------------------------------------------------------------- loop side */

static void on_done(evutil_socket_t fd, short what, void *arg)
{
    struct sl_api *a = arg;
    struct job_list done;
    struct msg_list msgs;
    struct job *j;
    struct msg *m;
    (void)fd;
    (void)what;

    TAILQ_INIT(&done);
    TAILQ_INIT(&msgs);
    pthread_mutex_lock(&a->mu);
    TAILQ_CONCAT(&done, &a->done, link);
    TAILQ_CONCAT(&msgs, &a->msgs, link);
    pthread_mutex_unlock(&a->mu);
    while ((j = TAILQ_FIRST(&done)) != NULL) {
        TAILQ_REMOVE(&done, j, link);
        pthread_mutex_lock(&a->mu);
        a->nqueued--;
        pthread_mutex_unlock(&a->mu);
        if (j->conn) {
            TAILQ_REMOVE(&a->pending, j, pending);
            a->o.ops.respond(a->o.ops.arg, j->conn, j->status, "application/json",
                             j->body.p ? j->body.p : "", j->body.len, NULL);
        }
        job_free(j);
    }
    while ((m = TAILQ_FIRST(&msgs)) != NULL) {
        TAILQ_REMOVE(&msgs, m, link);
        if (!atomic_load(&m->s->closed) && m->s->bev) {
            struct evbuffer *o = bufferevent_get_output(m->s->bev);
            evbuffer_add(o, m->text.p, m->text.len);
            if (evbuffer_get_length(o) > m->s->api->o.tail_buffer)
                atomic_store(&m->s->paused, 1);
            if (m->close) {
                /* flush what is queued, then close */
                bufferevent_setcb(m->s->bev, NULL, sub_flushed, sub_event, m->s);
                bufferevent_setwatermark(m->s->bev, EV_WRITE, 0, 0);
                if (evbuffer_get_length(o) == 0)
                    sub_close(m->s);
            }
        }
        sub_unref(m->s);
        sl_buf_free(&m->text);
        free(m);
    }
}

bool sl_api_path(struct sl_str path)
{
    return path.len >= 5 && memcmp(path.p, "/api/", 5) == 0;
}

long sl_api_unescape(const char *p, size_t n, char *out, size_t cap)
{
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)p[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            int h, l;
            if (i + 2 >= n)
                return -1;
            h = isdigit((unsigned char)p[i + 1]) ? p[i + 1] - '0'
                : isxdigit((unsigned char)p[i + 1]) ? (tolower((unsigned char)p[i + 1]) - 'a' + 10)
                                                    : -1;
            l = isdigit((unsigned char)p[i + 2]) ? p[i + 2] - '0'
                : isxdigit((unsigned char)p[i + 2]) ? (tolower((unsigned char)p[i + 2]) - 'a' + 10)
                                                    : -1;
            if (h < 0 || l < 0)
                return -1;
            c = h * 16 + l;
            i += 2;
        }
        if (c == 0 || o + 1 >= cap)
            return -1;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return (long)o;
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

/* Returns NULL, or an error message. */
static const char *qs_parse(struct sl_str query, struct qs *q)
{
    size_t i = 0;

    q->n = 0;
    while (query.p && i < query.len) {
        size_t j = i, eq;
        while (j < query.len && query.p[j] != '&')
            j++;
        eq = i;
        while (eq < j && query.p[eq] != '=')
            eq++;
        if (j > i) {
            char key[32];
            char *val;
            if (q->n == QS_MAX)
                return "too many parameters";
            if (sl_api_unescape(query.p + i, eq - i, key, sizeof(key)) < 0)
                return "bad parameter name";
            val = malloc(VAL_MAX);
            if (val == NULL)
                return "out of memory";
            if (sl_api_unescape(query.p + (eq < j ? eq + 1 : j), eq < j ? j - eq - 1 : 0, val,
                                VAL_MAX) < 0) {
                free(val);
                return "bad parameter value (percent-encoding, NUL, or over 8 KiB)";
            }
            snprintf(q->kv[q->n].key, sizeof(q->kv[q->n].key), "%s", key);
            q->kv[q->n].val = val;
            q->n++;
        }
        i = j + 1;
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

/* The read token of a request, or an empty slice. */
static struct sl_str req_token(const struct sl_http_request *req)
{
    const struct sl_str *h = sl_http_header_get(req, "authorization");
    struct sl_str t = {NULL, 0};

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
    struct sub *s;
    struct bufferevent *bev;
    int64_t after = -1;
    bool full;
    char idbuf[32];
    struct timeval ka = {KEEPALIVE_S, 0}, wr = {120, 0};
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
    pthread_mutex_lock(&a->mu);
    full = a->nsubs >= (size_t)a->o.max_tail;
    pthread_mutex_unlock(&a->mu);
    if (full) {
        answer_error(a, conn, 503, "too many tail streams: retry later", "Retry-After: 5\r\n");
        return;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        answer_error(a, conn, 503, "out of memory", "Retry-After: 1\r\n");
        return;
    }
    sl_buf_init(&err, 4096);
    if (sl_tail_prepare(a->o.sources, qq ? qq : "", ids, nids, &s->tq, &err)) {
        a->o.ops.respond(a->o.ops.arg, conn, 400, "application/json", err.p ? err.p : "",
                         err.len, NULL);
        sl_buf_free(&err);
        free(s);
        return;
    }
    sl_buf_free(&err);
    s->gen = sl_sources_generation(a->o.sources);
    s->every_source = every_source;
    s->token = malloc(tok.len + 1);
    s->q = strdup(qq ? qq : "");
    if (s->token == NULL || s->q == NULL) {
        sl_tail_free(s->tq);
        free(s->token);
        free(s->q);
        free(s);
        answer_error(a, conn, 503, "out of memory", "Retry-After: 1\r\n");
        return;
    }
    memcpy(s->token, tok.p, tok.len);
    s->token[tok.len] = '\0';
    s->toklen = tok.len;
    bev = a->o.ops.take(a->o.ops.arg, conn);
    if (bev == NULL) {
        sl_tail_free(s->tq);
        free(s->token);
        free(s->q);
        free(s);
        return;
    }
    s->api = a;
    s->bev = bev;
    s->last_id = after >= 0 ? after : sl_feed_last_id(a->o.feed) > 0 ? sl_feed_last_id(a->o.feed)
                                                                      : -1;
    atomic_store(&s->refs, 2); /* the loop and the tail thread */
    evbuffer_add(bufferevent_get_output(bev), head, sizeof(head) - 1);
    bufferevent_setcb(bev, sub_read, sub_written, sub_event, s);
    bufferevent_setwatermark(bev, EV_WRITE, a->o.tail_buffer / 2, 0);
    bufferevent_set_timeouts(bev, NULL, &wr);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    s->keepalive = event_new(a->base, -1, EV_PERSIST, sub_keepalive, s);
    if (s->keepalive)
        event_add(s->keepalive, &ka);
    atomic_fetch_add(&sl_metrics.tail_clients, 1);
    pthread_mutex_lock(&a->mu);
    TAILQ_INSERT_TAIL(&a->subs, s, link);
    a->nsubs++;
    pthread_mutex_unlock(&a->mu);
    sl_feed_wake(a->o.feed);
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

void sl_api_handle(struct sl_api *a, void *conn, const struct sl_http_request *req)
{
    enum { R_SEARCH, R_PAPERTRAIL, R_TAIL } route;
    struct sl_str path = req->path;
    struct sl_str tok = req_token(req);
    struct sl_read_scope sc = {false, NULL, 0};
    struct qs q;
    const char *e;
    int64_t *ids = NULL, now = sl_now_us();
    size_t nids = 0;
    struct job *j = NULL;
    char msg[160];

    if (sl_str_eq(path, "/api/v1/search"))
        route = R_SEARCH;
    else if (sl_str_eq(path, "/api/v1/events/search.json"))
        route = R_PAPERTRAIL;
    else if (sl_str_eq(path, "/api/v1/tail"))
        route = R_TAIL;
    else {
        answer_error(a, conn, 404, "no such API path", NULL);
        return;
    }
    SL_INC(api_requests, 1);
    if (sl_sources_generation(a->o.sources) == 0) {
        answer_error(a, conn, 503, "token table not loaded yet: retry later", "Retry-After: 5\r\n");
        return;
    }
    if (tok.len == 0 || sl_sources_read_auth(a->o.sources, tok.p, tok.len, &sc) != 0) {
        answer_error(a, conn, 401,
                     "a read token is required (Authorization: Bearer TOKEN; `sluice token add`)",
                     "WWW-Authenticate: Bearer realm=\"sluice\"\r\n");
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
    if (route == R_TAIL && sl_str_eq(req->method, "HEAD")) {
        a->o.ops.respond(a->o.ops.arg, conn, 200, "text/event-stream", "", 0, NULL);
        goto out;
    }
    if (route == R_TAIL) {
        handle_tail(a, conn, req, &q, ids, nids, tok, sc.all && qs_get(&q, "source") == NULL);
        goto out;
    }
    j = calloc(1, sizeof(*j));
    if (j == NULL) {
        answer_error(a, conn, 503, "out of memory", "Retry-After: 1\r\n");
        goto out;
    }
    sl_buf_init(&j->body, 1u << 30);
    j->api = a;
    j->p.kind = route == R_PAPERTRAIL ? SL_SEARCH_PAPERTRAIL : SL_SEARCH_API;
    j->q = strdup(qs_get(&q, "q") ? qs_get(&q, "q") : "");
    j->scope = ids;
    ids = NULL;
    j->p.q = j->q;
    j->p.scope = j->scope;
    j->p.nscope = nids;
    if (j->q == NULL) {
        answer_error(a, conn, 503, "out of memory", "Retry-After: 1\r\n");
        goto out;
    }
    {
        const char *ks = route == R_PAPERTRAIL ? "min_time" : "since";
        const char *ku = route == R_PAPERTRAIL ? "max_time" : "until";
        const char *vs = qs_get(&q, ks), *vu = qs_get(&q, ku);
        int64_t window = route == R_PAPERTRAIL ? 7LL * 86400 * 1000000 : 86400LL * 1000000;
        j->p.until_us = now;
        if (vu && *vu && sl_search_parse_time(vu, now, &j->p.until_us)) {
            snprintf(msg, sizeof(msg), "bad %s: RFC 3339, relative (15m, 2h, 3d) or Unix seconds",
                     ku);
            answer_error(a, conn, 400, msg, NULL);
            goto out;
        }
        if (route == R_PAPERTRAIL && vu && *vu)
            j->p.until_us += 1000000; /* Papertrail's max_time includes that second */
        j->p.default_window = !(vs && *vs);
        j->p.since_us = j->p.until_us - window;
        if (vs && *vs && sl_search_parse_time(vs, now, &j->p.since_us)) {
            snprintf(msg, sizeof(msg), "bad %s: RFC 3339, relative (15m, 2h, 3d) or Unix seconds",
                     ks);
            answer_error(a, conn, 400, msg, NULL);
            goto out;
        }
        if (j->p.since_us >= j->p.until_us) {
            answer_error(a, conn, 400, "the time range is empty (since is not before until)", NULL);
            goto out;
        }
    }
    if (parse_limit(qs_get(&q, "limit"), route == R_PAPERTRAIL ? 1000 : 100, &j->p.limit)) {
        answer_error(a, conn, 400, "bad limit: 1 to 10000", NULL);
        goto out;
    }
    if (route == R_SEARCH) {
        const char *o = qs_get(&q, "order"), *c = qs_get(&q, "cursor");
        if (o && *o && strcmp(o, "asc") && strcmp(o, "desc")) {
            answer_error(a, conn, 400, "bad order: asc or desc", NULL);
            goto out;
        }
        j->p.asc = o && strcmp(o, "asc") == 0;
        if (c && *c &&
            sl_search_parse_cursor(c, &j->p.cursor, &j->p.cur_us, &j->p.cur_id)) {
            answer_error(a, conn, 400, "bad cursor (use next_cursor or prev_cursor as given)", NULL);
            goto out;
        }
    } else {
        const char *mi = qs_get(&q, "min_id"), *ma = qs_get(&q, "max_id");
        char *end;
        if (mi && *mi && ((j->p.min_id = strtoll(mi, &end, 10)) <= 0 || *end)) {
            answer_error(a, conn, 400, "bad min_id", NULL);
            goto out;
        }
        if (ma && *ma && ((j->p.max_id = strtoll(ma, &end, 10)) <= 0 || *end)) {
            answer_error(a, conn, 400, "bad max_id", NULL);
            goto out;
        }
        j->p.asc = true;
    }
    pthread_mutex_lock(&a->mu);
    if (a->nqueued >= MAX_QUEUED) {
        pthread_mutex_unlock(&a->mu);
        answer_error(a, conn, 503, "every search worker is busy: retry later", "Retry-After: 1\r\n");
        goto out;
    }
    a->nqueued++;
    j->conn = conn;
    TAILQ_INSERT_TAIL(&a->todo, j, link);
    TAILQ_INSERT_TAIL(&a->pending, j, pending);
    pthread_cond_signal(&a->cv);
    pthread_mutex_unlock(&a->mu);
    j = NULL;
out:
    if (j)
        job_free(j);
    free(ids);
    free(sc.ids);
    qs_free(&q);
}

void sl_api_forget(struct sl_api *a, void *conn)
{
    struct job *j;

    if (a == NULL)
        return;
    TAILQ_FOREACH(j, &a->pending, pending)
        if (j->conn == conn) {
            j->conn = NULL;
            TAILQ_REMOVE(&a->pending, j, pending);
            return;
        }
}

int sl_api_start(struct event_base *base, const struct sl_api_opts *o, struct sl_api **out)
{
    struct sl_api *a = calloc(1, sizeof(*a));

    if (a == NULL)
        return SL_ENOMEM;
    a->o = *o;
    if (a->o.workers < 1)
        a->o.workers = 1;
    if (a->o.tail_buffer < 65536)
        a->o.tail_buffer = 65536;
    a->base = base;
    TAILQ_INIT(&a->todo);
    TAILQ_INIT(&a->done);
    TAILQ_INIT(&a->pending);
    TAILQ_INIT(&a->subs);
    TAILQ_INIT(&a->msgs);
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cv, NULL);
    a->done_ev = event_new(base, -1, 0, on_done, a);
    a->workers = calloc((size_t)a->o.workers, sizeof(*a->workers));
    if (a->done_ev == NULL || a->workers == NULL)
        goto fail;
    for (int i = 0; i < a->o.workers; i++) {
        if (pthread_create(&a->workers[i], NULL, worker_main, a) != 0)
            goto fail;
        a->nworkers++;
    }
    if (pthread_create(&a->tail, NULL, tail_main, a) != 0)
        goto fail;
    a->tail_started = true;
    *out = a;
    return 0;
fail:
    sl_api_stop(a);
    return SL_ENOMEM;
}

void sl_api_stop(struct sl_api *a)
{
    struct sub *s;
    struct job *j;
    struct msg *m;

    if (a == NULL)
        return;
    atomic_store(&a->stop, 1);
    pthread_mutex_lock(&a->mu);
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
    if (a->o.feed)
        sl_feed_wake(a->o.feed);
    for (int i = 0; i < a->nworkers; i++)
        pthread_join(a->workers[i], NULL);
    if (a->tail_started)
        pthread_join(a->tail, NULL);
    /* the threads are gone: close the streams (the loop's reference) and drop the tail
     * thread's */
    while ((s = TAILQ_FIRST(&a->subs)) != NULL) {
        TAILQ_REMOVE(&a->subs, s, link);
        atomic_fetch_add(&s->refs, 1);
        sub_close(s);
        sub_unref(s);
        sub_unref(s);
    }
    while ((m = TAILQ_FIRST(&a->msgs)) != NULL) {
        TAILQ_REMOVE(&a->msgs, m, link);
        sub_unref(m->s);
        sl_buf_free(&m->text);
        free(m);
    }
    while ((j = TAILQ_FIRST(&a->todo)) != NULL) {
        TAILQ_REMOVE(&a->todo, j, link);
        job_free(j);
    }
    while ((j = TAILQ_FIRST(&a->done)) != NULL) {
        TAILQ_REMOVE(&a->done, j, link);
        job_free(j);
    }
    if (a->done_ev)
        event_free(a->done_ev);
    free(a->workers);
    pthread_mutex_destroy(&a->mu);
    pthread_cond_destroy(&a->cv);
    free(a);
}
