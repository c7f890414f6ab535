/* The read queues (drain/readq.h): the read API's boundary between the event loop and its
 * database threads.
 *
 * drain/api.c is the loop side: routes, read-token auth, parameters, answers and the
 * Server-Sent Events sockets. It includes libevent and never libpq. drain/searchd.c (the
 * search workers and their job queue) and drain/tailer.c (the tail thread and its
 * streams) include libpq and never libevent: they hand their results back through
 * queues under their own mutex and wake the loop through a struct sl_api_wake the loop
 * registers. Private to those three files; include/sluice/api.h is the public face.
 *
 * Ownership, in one place:
 *   - a search job is allocated by the loop (sl_search_job_new); sl_searchd_submit takes
 *     it; sl_searchd_take_done gives it back with its answer; the loop answers and frees
 *     it (sl_search_job_free). Jobs still inside searchd at sl_searchd_stop are freed there.
 *   - a job's answer (job->body) belongs to the job: written only by the worker that runs
 *     it, read only by the loop after take_done, freed with the job.
 *   - a tail stream is counted: one reference for the loop (dropped by sl_tailer_close),
 *     one for the tail thread while the stream is listed, one per queued message.
 *   - a tail message is made by the tail thread, taken by the loop (sl_tailer_take_msgs),
 *     and freed by the loop (sl_tailer_msg_free, which drops its stream reference). */
#ifndef SLUICE_READQ_H
#define SLUICE_READQ_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "sluice/buf.h"
#include "sluice/err.h"
#include "sluice/search.h"

struct sl_sources;
struct sl_feed;
struct sl_tail_q;

/* How a database thread wakes the loop. fn runs on the worker or tail thread, so it must
 * be safe there (api.c: event_active on an event of a pthreads-enabled base). */
struct sl_api_wake {
    void (*fn)(void *arg);
    void *arg;
};

/* ---------------------------------------------------------------- search workers */

/* A search waits behind at most this many others per worker (its own included): at most
 * 8 x SLUICE_SEARCH_TIMEOUT before it starts (4 minutes at the default; the CLI waits 10). */
#define SL_SEARCHD_JOBS_PER_WORKER 8

/* What a job does (searchd.c's run_job): a search, or one of the web viewer's reads and
 * its session writes (docs/viewer.md). */
enum sl_job_kind {
    SL_JOB_SEARCH = 0,   /* sl_search_run */
    SL_JOB_AGGREGATE,    /* sl_search_aggregate: p's window in `buckets` */
    SL_JOB_CONTEXT,      /* sl_search_context: around ctx_id, ctx_n each side */
    SL_JOB_SESSION_ADD,  /* sl_session_add: secret, for the token of hash tok_hex */
    SL_JOB_SESSION_RM,   /* sl_session_rm: secret */
};

struct sl_search_job {
    enum sl_job_kind kind;
    int buckets;                /* SL_JOB_AGGREGATE */
    int64_t ctx_id;             /* SL_JOB_CONTEXT */
    int ctx_n;
    char *secret;               /* SL_JOB_SESSION_*: the session cookie's value */
    char tok_hex[65];           /* SL_JOB_SESSION_ADD: SHA-256 of the read token, hex */
    int64_t expires_s;          /* SL_JOB_SESSION_ADD: Unix seconds */
    char *extra;                /* headers to add to a 2xx answer (Set-Cookie), or NULL */
    struct sl_search_params p; /* p.q and p.scope point at q and scope below, p.cancel at cancel */
    char *q;
    int64_t *scope;
    uint64_t owner;                     /* the read token's hash (sl_searchd_owner): fairness */
    _Atomic int cancel;                 /* set by searchd: the client left or the time is up */
    _Atomic int timed_out;              /* set by searchd's watchdog: answer 504 */
    int state;                          /* searchd's: queued, running, done (under its mutex) */
    int status;                         /* set by the worker */
    struct sl_buf body;                 /* the JSON answer or a JSON error; max = its cap */
    void *conn;                         /* loop thread only: the connection, NULL once it closed */
    TAILQ_ENTRY(sl_search_job) link;    /* searchd's todo / done queue (under its mutex) */
    TAILQ_ENTRY(sl_search_job) pending; /* loop thread only: waiting for its answer */
};
TAILQ_HEAD(sl_search_job_list, sl_search_job);

/* A zeroed job whose answer may grow to answer_max bytes (SLUICE_SEARCH_ANSWER_BYTES).
 * NULL when out of memory. The caller owns it. */
struct sl_search_job *sl_search_job_new(size_t answer_max);
/* Accepts NULL and a half-filled job. */
void sl_search_job_free(struct sl_search_job *j);

/* Scheduling (docs/api.md, "Fairness"): the queue is served least-recently-served owner first
 * (round-robin across read tokens, FIFO within one); one owner has at most token_jobs
 * jobs queued or running (sl_searchd_submit: SL_EAGAIN, a 429) and at most workers - 1
 * running (at least 1), so one token never holds every worker. A watchdog thread cancels
 * (PQcancel) a running job whose client left (sl_searchd_cancel) or that passed
 * timeout_s in all (504): the worker is free right after. */
struct sl_searchd_opts {
    const char *database_url;
    struct sl_sources *sources;
    int workers;             /* threads, each with its own PostgreSQL connection (at least 1) */
    int timeout_s;           /* a whole search: statement_timeout and the watchdog's deadline */
    int token_jobs;          /* one owner's jobs queued or running (0: no limit) */
    struct sl_api_wake wake; /* called after each finished job */
};

struct sl_searchd;

/* The most jobs submitted and not yet taken back: workers x SL_SEARCHD_JOBS_PER_WORKER. */
size_t sl_searchd_queue_max(int workers);

SL_MUSTCHECK int sl_searchd_start(const struct sl_searchd_opts *o, struct sl_searchd **out);
/* The owner key of a read token (FNV-1a of its bytes; the token itself is not kept). */
uint64_t sl_searchd_owner(const char *token, size_t len);
/* Queue j for a worker. 0: searchd owns j until sl_searchd_take_done returns it.
 * SL_EFULL: sl_searchd_queue_max jobs are out already; SL_EAGAIN: j->owner has
 * token_jobs out already. On an error the caller keeps j. */
SL_MUSTCHECK int sl_searchd_submit(struct sl_searchd *d, struct sl_search_job *j);
/* Loop thread: nobody waits for j's answer any more (its client left). A queued j is
 * dropped from the queue; a running one is cancelled in PostgreSQL by the watchdog
 * (within SL_SEARCHD_WATCH_MS). Either way take_done still returns it (to be freed). */
void sl_searchd_cancel(struct sl_searchd *d, struct sl_search_job *j);
#define SL_SEARCHD_WATCH_MS 100
/* Move every finished job to the end of *out; the caller owns them from now on. */
void sl_searchd_take_done(struct sl_searchd *d, struct sl_search_job_list *out);
/* Stop and join the workers, free every job not taken back. Accepts NULL. */
void sl_searchd_stop(struct sl_searchd *d);

/* ---------------------------------------------------------------- tail thread */

struct sl_tailer_opts {
    const char *database_url;
    struct sl_sources *sources;
    struct sl_feed *feed;
    int max_streams;         /* listed streams (sl_tailer_full) */
    size_t stream_cap;       /* a stream with this many bytes queued for the loop is not read for */
    int64_t replay_max;      /* stored lines of its sources a resume reaches back */
    struct sl_api_wake wake; /* called after each queued message */
};

struct sl_tailer;
struct sl_tail_stream; /* opaque: shared by the loop and the tail thread, counted */

/* Text for the loop to write on a stream; close: end the stream after it. */
struct sl_tail_msg {
    struct sl_tail_stream *s; /* holds a reference */
    bool close;
    struct sl_buf text;
    TAILQ_ENTRY(sl_tail_msg) link;
};
TAILQ_HEAD(sl_tail_msg_list, sl_tail_msg);

SL_MUSTCHECK int sl_tailer_start(const struct sl_tailer_opts *o, struct sl_tailer **out);
/* Stop and join the thread, drop its references and every queued message. The loop
 * closes its streams (sl_tailer_close) first. Accepts NULL. */
void sl_tailer_stop(struct sl_tailer *t);

/* Loop thread: are max_streams streams open? (Only the loop adds streams, so the answer
 * stays true-or-better until the next sl_tailer_add.) */
bool sl_tailer_full(struct sl_tailer *t);

/* Loop thread: a stream of query q (tq prepared from it and the source ids scope[nscope]
 * (copied: streams with the same q and scope share reads) at source table generation gen,
 * taken over) for the holder of a read token (copied: a removed or rescoped token ends
 * the stream), starting after the row last_id (a Last-Event-ID), or when last_id is -1
 * after commit start_seq (the newest the loop knew of; 0: the newest when the tail thread
 * first reads, docs/architecture.md "The path of a tail"). every_source: an --all
 * token without source=, which takes in new sources. ctx is the loop's own side of the
 * stream (the tail thread never reads it). Not listed until sl_tailer_add. SL_ENOMEM
 * (tq is freed). */
SL_MUSTCHECK int sl_tail_stream_new(struct sl_tail_q *tq, const char *q, const int64_t *scope,
                                    size_t nscope, const char *token, size_t toklen, uint64_t gen,
                                    bool every_source, int64_t last_id, int64_t start_seq,
                                    void *ctx, struct sl_tail_stream **out);
/* Loop thread: free a stream never added. Accepts NULL. */
void sl_tail_stream_discard(struct sl_tail_stream *s);
/* Loop thread: list s for the tail thread (which takes a reference) and wake it. */
void sl_tailer_add(struct sl_tailer *t, struct sl_tail_stream *s);
/* Loop thread: end s and drop the loop's reference (the tail thread drops its own).
 * Later messages for it are dropped by the loop. */
void sl_tailer_close(struct sl_tailer *t, struct sl_tail_stream *s);
/* Loop thread: the client is behind (its unsent output passed SLUICE_TAIL_BUFFER). */
void sl_tailer_pause(struct sl_tail_stream *s);
/* Loop thread: the client caught up; wakes the tail thread when it was paused. */
void sl_tailer_resume(struct sl_tailer *t, struct sl_tail_stream *s);
bool sl_tail_stream_closed(const struct sl_tail_stream *s);
void *sl_tail_stream_ctx(const struct sl_tail_stream *s);

/* Loop thread: move every queued message to the end of *out (the caller frees each). */
void sl_tailer_take_msgs(struct sl_tailer *t, struct sl_tail_msg_list *out);
/* Frees the text and drops the message's stream reference. */
void sl_tailer_msg_free(struct sl_tail_msg *m);

#endif
