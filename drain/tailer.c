/* The read API's tail thread (drain/readq.h): it LISTENs to sluice_commits (every node's
 * writer announces its commits there) and waits on the commit feed (drain/feed.c: this
 * node's writer, new and resumed streams), and, for each live tail stream, reads the new
 * matching rows in commit order through the commit log (drain/search.c: log_commits, so
 * lines stored by other nodes on the same database come too) and queues their
 * Server-Sent Events text for the loop. A stream whose
 * client fell behind is paused: the rows it skips are counted and it is told
 * (`event: missed`) once it caught up. A stream whose read token was removed or
 * narrowed is ended.
 *
 * Isolation (issue 13): one stream's slowness costs only that stream. Each round does at
 * most one bounded statement per group of streams: streams with the same query, scope and
 * position share one read; a replay (a position more than LIVE_COMMITS commits behind)
 * reads one window of commits per round (sl_tail_window), after the live reads; a paused stream costs no
 * statement until it resumes (then one count for its `missed`); a stream with
 * SLUICE_TAIL_BUFFER bytes queued and not yet taken by the loop is not read for.
 *
 * What it leaves to others: the sockets, keep-alives, the decision to pause and cutting a
 * stalled client (drain/api.c, on the loop), the SQL (drain/search.c). Threads: tail_main
 * on the tail thread; the sl_tailer_* / sl_tail_stream_* calls on the loop. libpq only; no
 * libevent: the loop is woken through the callback it registered. */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "readq.h"
#include "sluice/clock.h"
#include "sluice/db.h"
#include "sluice/feed.h"
#include "sluice/metrics.h"
#include "sluice/search.h"
#include "sluice/sources.h"

/* Rows per tail read, and the SSE text per read (a read stops after the row that
 * passes it). A paused client may catch up for TAIL_GRACE_MS before lines are skipped. */
#define TAIL_BATCH 1000
#define TAIL_BATCH_BYTES (256u * 1024u)
#define TAIL_GRACE_MS 1000
#define TAIL_OUT_MAX (64u << 20) /* one round's SSE text for one stream */
#define TAIL_WINDOW_ROWS 2000    /* a replay step reads the commits holding about this many rows */
#define LIVE_COMMITS 8           /* a stream this many commits behind or less reads all at once */

/* A live tail stream. refs counts the loop, the tail thread (while listed) and every
 * queued message; the last one frees it. */
struct sl_tail_stream {
    _Atomic int refs;
    _Atomic int closed;    /* the loop closed the stream */
    _Atomic int paused;    /* the client is behind: the loop set it */
    void *ctx;             /* the loop's side; never read here */
    struct sl_tailer *t;   /* set by sl_tailer_add */
    _Atomic size_t queued; /* bytes of queued messages the loop has not freed */
    struct sl_tail_q *tq;
    /* tail thread only */
    int64_t after_id;            /* the Last-Event-ID it opened with; -1: none */
    int64_t start_seq;           /* without one: after this commit (0: the newest) */
    struct sl_tail_pos pos;      /* behind the stream (search.h), once started */
    struct sl_tail_pos missed_after; /* skipping since this position, when missing */
    bool missing;                /* skipping: counted once it resumes */
    bool replaying;              /* a resume not yet caught up: never skipped for slowness */
    int64_t paused_ms;    /* when the tail thread first saw it paused; 0: not paused */
    int64_t *scope;       /* the source ids tq reads: with q, what streams share a read by */
    size_t nscope;
    bool want;    /* this round: has rows to read */
    bool ended;   /* told its token was removed: nothing more is read */
    bool started; /* its first round is done (a resume's reach was bounded) */
    uint64_t gen; /* source table generation the scope was resolved at */
    char *token;  /* re-checked when the table changes: rm ends the stream */
    size_t toklen;
    char *q;
    bool every_source;                /* an --all token without source=: new sources join */
    TAILQ_ENTRY(sl_tail_stream) link; /* t->streams (under mu) */
};
TAILQ_HEAD(stream_list, sl_tail_stream);

struct sl_tailer {
    struct sl_tailer_opts o;
    pthread_mutex_t mu;
    struct stream_list streams; /* under mu */
    size_t nstreams;
    struct sl_tail_msg_list msgs; /* under mu */
    pthread_t thread;
    bool started;
    _Atomic int stop;
};

/* ---------------------------------------------------------------- streams */

static void stream_unref(struct sl_tail_stream *s)
{
    if (atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    sl_tail_stream_discard(s);
}

int sl_tail_stream_new(struct sl_tail_q *tq, const char *q, const int64_t *scope, size_t nscope,
                       const char *token, size_t toklen, uint64_t gen, bool every_source,
                       int64_t last_id, int64_t start_seq, void *ctx,
                       struct sl_tail_stream **out)
{
    struct sl_tail_stream *s = calloc(1, sizeof(*s));

    if (s == NULL) {
        sl_tail_free(tq);
        return SL_ENOMEM;
    }
    s->tq = tq;
    s->token = malloc(toklen + 1);
    s->q = strdup(q);
    s->scope = malloc((nscope + 1) * sizeof(*scope));
    if (s->token == NULL || s->q == NULL || s->scope == NULL) {
        sl_tail_stream_discard(s);
        return SL_ENOMEM;
    }
    memcpy(s->token, token, toklen);
    s->token[toklen] = '\0';
    s->toklen = toklen;
    s->gen = gen;
    s->every_source = every_source;
    if (nscope)
        memcpy(s->scope, scope, nscope * sizeof(*scope));
    s->nscope = nscope;
    s->after_id = last_id;
    s->start_seq = start_seq;
    s->ctx = ctx;
    atomic_store(&s->refs, 1); /* the loop's */
    *out = s;
    return 0;
}

void sl_tail_stream_discard(struct sl_tail_stream *s)
{
    if (s == NULL)
        return;
    sl_tail_free(s->tq);
    free(s->token);
    free(s->q);
    free(s->scope);
    free(s);
}

void sl_tailer_add(struct sl_tailer *t, struct sl_tail_stream *s)
{
    atomic_fetch_add(&s->refs, 1); /* the tail thread's */
    s->t = t;
    pthread_mutex_lock(&t->mu);
    TAILQ_INSERT_TAIL(&t->streams, s, link);
    t->nstreams++;
    pthread_mutex_unlock(&t->mu);
    sl_feed_wake(t->o.feed);
}

bool sl_tailer_full(struct sl_tailer *t)
{
    bool full;

    pthread_mutex_lock(&t->mu);
    full = t->nstreams >= (size_t)t->o.max_streams;
    pthread_mutex_unlock(&t->mu);
    return full;
}

void sl_tailer_close(struct sl_tailer *t, struct sl_tail_stream *s)
{
    if (atomic_exchange(&s->closed, 1))
        return;
    s->ctx = NULL;
    sl_feed_wake(t->o.feed); /* the tail thread lets go of it */
    stream_unref(s);
}

void sl_tailer_pause(struct sl_tail_stream *s)
{
    atomic_store(&s->paused, 1);
}

void sl_tailer_resume(struct sl_tailer *t, struct sl_tail_stream *s)
{
    if (atomic_exchange(&s->paused, 0))
        sl_feed_wake(t->o.feed);
}

bool sl_tail_stream_closed(const struct sl_tail_stream *s)
{
    return atomic_load(&s->closed) != 0;
}

void *sl_tail_stream_ctx(const struct sl_tail_stream *s)
{
    return s->ctx;
}

/* ---------------------------------------------------------------- messages */

void sl_tailer_take_msgs(struct sl_tailer *t, struct sl_tail_msg_list *out)
{
    pthread_mutex_lock(&t->mu);
    TAILQ_CONCAT(out, &t->msgs, link);
    pthread_mutex_unlock(&t->mu);
}

void sl_tailer_msg_free(struct sl_tail_msg *m)
{
    size_t was;

    if (m == NULL)
        return;
    /* the stream's queue fell under its cap: the tail thread reads for it again */
    was = atomic_fetch_sub(&m->s->queued, m->text.len);
    if (m->s->t && was >= m->s->t->o.stream_cap && was - m->text.len < m->s->t->o.stream_cap)
        sl_feed_wake(m->s->t->o.feed);
    stream_unref(m->s);
    sl_buf_free(&m->text);
    free(m);
}

/* Tail thread: queue text for a stream (close: end it after the text). The text moves
 * into the message; *text is left empty with the same cap. */
static void post_msg(struct sl_tailer *t, struct sl_tail_stream *s, struct sl_buf *text, bool close)
{
    struct sl_tail_msg *m = calloc(1, sizeof(*m));

    if (m == NULL) {
        sl_buf_reset(text);
        return;
    }
    atomic_fetch_add(&s->refs, 1);
    atomic_fetch_add(&s->queued, text->len);
    m->s = s;
    m->close = close;
    m->text = *text;
    sl_buf_init(text, text->max);
    pthread_mutex_lock(&t->mu);
    TAILQ_INSERT_TAIL(&t->msgs, m, link);
    pthread_mutex_unlock(&t->mu);
    t->o.wake.fn(t->o.wake.arg);
}

static void post(struct sl_tailer *t, struct sl_tail_stream *s, struct sl_buf *text)
{
    post_msg(t, s, text, false);
}

/* ---------------------------------------------------------------- the tail thread */

/* The source table changed. A removed or rescoped token ends the stream; a stream of an
 * --all token takes in new sources. Returns false when it was ended. */
static bool tail_rescope(struct sl_tailer *t, struct sl_tail_stream *s, uint64_t gen,
                         struct sl_buf *out)
{
    static const char ended[] =
        "event: error\ndata: {\"error\": \"the read token was removed or changed\"}\n\n";
    struct sl_read_scope sc = {false, NULL, 0};
    bool ok = sl_sources_read_auth(t->o.sources, s->token, s->toklen, &sc) == 0;

    s->gen = gen;
    if (ok && s->every_source && sc.all) {
        int64_t *ids = NULL;
        size_t n = 0;
        struct sl_tail_q *tq = NULL;
        struct sl_buf err;
        sl_buf_init(&err, 4096);
        if (sl_sources_all_ids(t->o.sources, &ids, &n) == 0 &&
            sl_tail_prepare(t->o.sources, s->q, ids, n, &tq, &err) == 0) {
            sl_tail_free(s->tq);
            s->tq = tq;
            free(s->scope);
            s->scope = ids; /* the stream keeps them: its share key */
            s->nscope = n;
            ids = NULL;
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
        post_msg(t, s, out, true);
    return false;
}

static bool pos_lt(struct sl_tail_pos a, struct sl_tail_pos b)
{
    return a.seq < b.seq || (a.seq == b.seq && a.id < b.id);
}

static void post_missed(struct sl_tailer *t, struct sl_tail_stream *s, int64_t count,
                        int64_t after_id, int64_t resume_id, struct sl_buf *out)
{
    SL_INC(tail_missed, (uint64_t)count);
    sl_buf_reset(out);
    if (sl_buf_addf(out,
                    "event: missed\ndata: {\"missed\": %" PRId64 ", \"after_id\": \"%" PRId64
                    "\", \"resume_id\": \"%" PRId64 "\"}\n\n",
                    count, after_id, resume_id) == 0)
        post(t, s, out);
}

/* Count what a stream that was paused skipped and tell it (`event: missed`), now that it
 * caught up: one statement over (missed_after, pos], bounded by the stall deadline the
 * loop enforces. Returns false when the count failed (it is tried again). */
static bool tail_missed(struct sl_tailer *t, PGconn *pg, struct sl_tail_stream *s,
                        struct sl_buf *out)
{
    int64_t c = 0;

    if (sl_tail_count(pg, s->tq, s->missed_after, s->pos, &c))
        return false;
    if (c > 0)
        post_missed(t, s, c, s->missed_after.id, s->pos.id, out);
    s->missing = false;
    return true;
}

/* A stream's first round: where it starts. A Last-Event-ID is found in the commit log
 * (an id it no longer holds starts at the oldest commit it holds); a resume reaches back
 * at most replay_max stored lines of its sources: what is older is skipped and announced
 * (`event: missed`, its count an upper bound from the commit log). Without one, after
 * commit start_seq, or the newest. Returns false when the database failed (tried again). */
static bool tail_start(struct sl_tailer *t, PGconn *pg, struct sl_tail_stream *s,
                       struct sl_tail_pos hi, struct sl_buf *out)
{
    struct sl_tail_pos from = hi, start;
    int64_t skipped = 0;
    bool found;

    if (s->after_id >= 0) {
        if (sl_tail_locate(pg, s->after_id, &from, &found))
            return false;
        if (pos_lt(from, hi) &&
            sl_tail_replay_start(pg, s->tq, from, hi, t->o.replay_max, &start, &skipped))
            return false;
        if (skipped > 0) {
            post_missed(t, s, skipped, s->after_id, start.id, out);
            from = start;
        }
        s->replaying = pos_lt(from, hi);
    } else if (s->start_seq > 0 && s->start_seq < hi.seq) {
        if (sl_tail_commit_end(pg, s->start_seq, &from))
            return false;
    }
    s->pos = from;
    s->started = true;
    return true;
}

/* One stream before this round's reads: rescope, pause (skip what comes while it is
 * paused past the grace), a pending `missed`, its queue cap. Sets s->want when it has
 * rows to read up to hi. No statement unless it starts, rescopes or resumes. */
static void tail_prep(struct sl_tailer *t, PGconn *pg, struct sl_tail_stream *s,
                      struct sl_tail_pos hi, struct sl_buf *out)
{
    uint64_t gen = sl_sources_generation(t->o.sources);

    s->want = false;
    if (s->ended)
        return;
    if (gen != s->gen && !tail_rescope(t, s, gen, out)) {
        s->ended = true;
        return;
    }
    if (!s->started && !tail_start(t, pg, s, hi, out))
        return;
    if (!atomic_load(&s->paused))
        s->paused_ms = 0;
    else if (s->paused_ms == 0)
        s->paused_ms = sl_clock_mono_ms();
    if (s->paused_ms) {
        /* give it time to read what it has; nothing is read meanwhile. A resume reads
         * stored lines at the client's pace: it is not skipped, however slow (the loop
         * cuts a client that takes nothing for 30 s). */
        if (s->replaying || sl_clock_mono_ms() - s->paused_ms < TAIL_GRACE_MS)
            return;
        if (!s->missing) {
            s->missing = true;
            s->missed_after = s->pos;
        }
        if (pos_lt(s->pos, hi))
            s->pos = hi; /* skipped: counted once, when it resumes */
        return;
    }
    if (s->missing && pos_lt(s->missed_after, s->pos) && !tail_missed(t, pg, s, out))
        return;
    s->missing = false;
    if (atomic_load(&s->queued) >= t->o.stream_cap)
        return; /* the loop has not taken its text yet: it waits, nothing is skipped */
    s->want = pos_lt(s->pos, hi);
}

/* Do a and b read the same rows from the same position? */
static bool same_read(const struct sl_tail_stream *a, const struct sl_tail_stream *b)
{
    return a->pos.seq == b->pos.seq && a->pos.id == b->pos.id && a->gen == b->gen &&
           a->nscope == b->nscope && strcmp(a->q, b->q) == 0 &&
           (a->nscope == 0 || memcmp(a->scope, b->scope, a->nscope * sizeof(*a->scope)) == 0);
}

/* One read for list[i] and every later stream that wants the same rows (moved into grp):
 * the rows after their position up to hi (live: all of them; replay: one window of
 * commits), the text posted to each. live: this pass serves only streams at most
 * LIVE_COMMITS behind (a replay's step waits for the live reads). Returns true when
 * there is more to read now. */
static bool tail_group(struct sl_tailer *t, PGconn *pg, struct sl_tail_stream **list, size_t n,
                       size_t i, struct sl_tail_pos hi, bool live, struct sl_tail_stream **grp,
                       struct sl_buf *out)
{
    struct sl_tail_stream *s = list[i];
    struct sl_tail_pos to = hi, last;
    size_t ng = 0, rows = 0;

    if ((s->pos.seq + LIVE_COMMITS >= hi.seq) != live)
        return false;
    for (size_t j = i; j < n; j++) {
        if (list[j]->want && !atomic_load(&list[j]->closed) && (j == i || same_read(s, list[j]))) {
            list[j]->want = false;
            grp[ng++] = list[j];
        }
    }
    if (!live && sl_tail_window(pg, s->tq, s->pos, hi, TAIL_WINDOW_ROWS, &to))
        return false;
    sl_buf_reset(out);
    if (sl_tail_fetch(pg, s->tq, s->pos, to, TAIL_BATCH, TAIL_BATCH_BYTES, out, &last, &rows))
        return false;
    for (size_t k = 0; k < ng; k++) {
        struct sl_buf copy;
        grp[k]->pos = last;
        if (!pos_lt(last, hi))
            grp[k]->replaying = false; /* caught up: live from now on */
        if (rows == 0)
            continue;
        SL_INC(tail_lines, rows);
        if (k + 1 == ng) {
            post(t, grp[k], out);
            continue;
        }
        sl_buf_init(&copy, out->max);
        if (sl_buf_add(&copy, out->p, out->len) == 0)
            post(t, grp[k], &copy);
        sl_buf_free(&copy);
    }
    sl_buf_reset(out);
    return pos_lt(last, hi);
}

/* What NOTIFY sluice_commits brought since the last call (the commit numbers go to the
 * feed). False when the connection broke. */
static bool tail_notified(struct sl_tailer *t, PGconn *pg)
{
    PGnotify *nf;

    if (PQconsumeInput(pg) != 1)
        return false;
    while ((nf = PQnotifies(pg)) != NULL) {
        sl_feed_push(t->o.feed, strtoll(nf->extra, NULL, 10));
        PQfreemem(nf);
    }
    return true;
}

static void *tail_main(void *arg)
{
    struct sl_tailer *t = arg;
    PGconn *pg = NULL;
    struct sl_tail_pos hi = {0, 0};
    struct sl_buf out;
    bool busy = false;

    sl_buf_init(&out, TAIL_OUT_MAX);
    while (!atomic_load(&t->stop)) {
        struct sl_tail_stream **list = NULL, **grp = NULL;
        size_t n = 0;
        bool fresh = false;

        if (pg == NULL || PQstatus(pg) != CONNECTION_OK) {
            sl_db_close(pg);
            pg = NULL;
            if (sl_db_connect(t->o.database_url, &pg)) {
                pg = NULL;
                sl_feed_wait(t->o.feed, -1, 1000);
                continue;
            }
            /* Every tail read has an index to follow (log_commits by source and number,
             * logs by source and time): a new stream or a resume right after new commits
             * arrive met stale statistics, and the planner read all of the blocks it
             * then read (214 ms at 109k blocks, one tail thread stalled for every stream). */
            PQclear(PQexec(pg, "SET jit = off; SET max_parallel_workers_per_gather = 0; "
                               "SET enable_seqscan = off; SET application_name = 'sluice-tail'"));
            if (sl_db_exec(pg, "tail listen failed", "LISTEN sluice_commits", 0, NULL, NULL)) {
                sl_db_close(pg);
                pg = NULL;
                continue;
            }
        }
        /* the streams, each held for this round */
        pthread_mutex_lock(&t->mu);
        list = calloc(t->nstreams + 1, sizeof(*list));
        grp = calloc(t->nstreams + 1, sizeof(*grp));
        if (list && grp) {
            struct sl_tail_stream *s, *next;
            for (s = TAILQ_FIRST(&t->streams); s; s = next) {
                next = TAILQ_NEXT(s, link);
                if (atomic_load(&s->closed)) {
                    TAILQ_REMOVE(&t->streams, s, link);
                    t->nstreams--;
                    stream_unref(s);
                    continue;
                }
                atomic_fetch_add(&s->refs, 1);
                list[n++] = s;
                fresh |= !s->started;
            }
        }
        pthread_mutex_unlock(&t->mu);
        /* Sleep until a commit is announced (NOTIFY from any node, or this node's writer
         * through the feed) or a stream is added, unpaused or closed (those wake the feed).
         * A new stream is served at once. The head is read every round with a stream, so
         * a NOTIFY lost to a reconnect costs at most the one-second wait. NOTIFYs that came
         * in during the last round's statements wait in libpq's queue, not on the socket:
         * taking them first pushes them to the feed, whose eventfd ends the wait at once. */
        if (!busy && !fresh && tail_notified(t, pg))
            sl_feed_wait(t->o.feed, PQsocket(pg), 1000);
        if (n == 0 && tail_notified(t, pg)) {
            free(list); /* no stream: nothing to read (the NOTIFYs still move the feed) */
            free(grp);
            busy = false;
            continue;
        }
        if (!tail_notified(t, pg) || sl_tail_head(pg, &hi)) {
            for (size_t i = 0; i < n; i++)
                stream_unref(list[i]);
            free(list);
            free(grp);
            sl_db_close(pg);
            pg = NULL;
            continue;
        }
        sl_feed_push(t->o.feed, hi.seq);
        busy = false;
        for (size_t i = 0; i < n && !atomic_load(&t->stop); i++) {
            if (!atomic_load(&list[i]->closed))
                tail_prep(t, pg, list[i], hi, &out);
            else
                list[i]->want = false;
            sl_buf_reset(&out);
        }
        /* the live reads first, then one step of each replay */
        for (int pass = 0; pass < 2; pass++)
            for (size_t i = 0; i < n && !atomic_load(&t->stop); i++)
                if (list[i]->want && tail_group(t, pg, list, n, i, hi, pass == 0, grp, &out))
                    busy = true;
        for (size_t i = 0; i < n; i++)
            stream_unref(list[i]);
        free(list);
        free(grp);
    }
    sl_buf_free(&out);
    sl_db_close(pg);
    return NULL;
}

int sl_tailer_start(const struct sl_tailer_opts *o, struct sl_tailer **out)
{
    struct sl_tailer *t = calloc(1, sizeof(*t));

    if (t == NULL)
        return SL_ENOMEM;
    t->o = *o;
    TAILQ_INIT(&t->streams);
    TAILQ_INIT(&t->msgs);
    pthread_mutex_init(&t->mu, NULL);
    if (pthread_create(&t->thread, NULL, tail_main, t) != 0) {
        sl_tailer_stop(t);
        return SL_ENOMEM;
    }
    t->started = true;
    *out = t;
    return 0;
}

void sl_tailer_stop(struct sl_tailer *t)
{
    struct sl_tail_stream *s;
    struct sl_tail_msg *m;

    if (t == NULL)
        return;
    atomic_store(&t->stop, 1);
    if (t->o.feed)
        sl_feed_wake(t->o.feed);
    if (t->started)
        pthread_join(t->thread, NULL);
    /* the thread is gone: drop its references (the loop closed its side already) */
    while ((s = TAILQ_FIRST(&t->streams)) != NULL) {
        TAILQ_REMOVE(&t->streams, s, link);
        stream_unref(s);
    }
    while ((m = TAILQ_FIRST(&t->msgs)) != NULL) {
        TAILQ_REMOVE(&t->msgs, m, link);
        sl_tailer_msg_free(m);
    }
    pthread_mutex_destroy(&t->mu);
    free(t);
}
