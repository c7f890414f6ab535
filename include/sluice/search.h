/* Running searches and tail reads in PostgreSQL (drain/search.c).
 *
 * Called on the API's search worker threads (drain/searchd.c) and its tail thread
 * (drain/tailer.c), each with its own connection; never on the event loop. A search is two steps (docs/search.md): the candidate
 * blocks of `log_blocks` (their Bloom filters checked for the query's tokens), newest
 * first, then those blocks' rows through the (source_id, received_at) btree in growing
 * groups, with the whole query as a predicate, until the newest `limit` matches are
 * certain (their keys only), then the events of those matches, one row at a time, while
 * they fit the answer's budget (SLUICE_SEARCH_ANSWER_BYTES). All SQL is parameterised: user text is only ever a parameter value.
 *
 * The pure helpers (time and cursor parsing) are unit-tested in tests/unit/test_search.c. */
#ifndef SLUICE_SEARCH_H
#define SLUICE_SEARCH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/buf.h"
#include "sluice/err.h"

struct pg_conn;
struct sl_sources;

#define SL_SEARCH_MAX_LIMIT 10000

enum sl_search_kind { SL_SEARCH_API, SL_SEARCH_PAPERTRAIL };

/* One search request, as the HTTP layer parsed it. Owned by the caller. */
struct sl_search_params {
    enum sl_search_kind kind;
    const char *q;          /* NUL-terminated; "" matches every line */
    const int64_t *scope;   /* the source ids the request may see (token and source=) */
    size_t nscope;
    int64_t since_us;       /* window [since, until), µs since the epoch */
    int64_t until_us;
    bool default_window;    /* since was not given */
    int limit;              /* 1..SL_SEARCH_MAX_LIMIT */
    bool asc;               /* output order (Papertrail: always oldest first) */
    char cursor;            /* 0: none; 'o': older than (cur_us, cur_id); 'n': newer than */
    int64_t cur_us, cur_id;
    int64_t min_id, max_id; /* Papertrail: newer than / older than this id; 0 = not given */
    const _Atomic int *cancel; /* NULL, or set (by another thread) to stop between statements */
};

/* Run p on pg. Always fills *status (200, 400, 504, 500 or 503) and body (the JSON
 * answer or a JSON error, never a part of an answer). body->max is the answer's budget
 * (SLUICE_SEARCH_ANSWER_BYTES): the matches are found by key first, then their events
 * are fetched one row at a time in order while they fit (body->max less
 * SL_SEARCH_ANSWER_FIXED for the envelope); the answer then says `truncated: true`
 * and its cursor (Papertrail: min_id/max_id, reached_* false) continues right after
 * the last event returned. One event alone past the budget is a 500 JSON error.
 * Returns 0, or SL_EDB when the connection failed (the caller reconnects). */
SL_MUSTCHECK int sl_search_run(struct pg_conn *pg, struct sl_sources *src,
                               const struct sl_search_params *p, int *status,
                               struct sl_buf *body);

/* The day level's use by every search of the process (SLUICE_SEARCH_DAY_LEVEL): "auto"
 * (when at most a quarter of the window's packed (source, day)s may hold the words),
 * "always" (whenever the window has one: tests compare answers through it), "off". Set
 * once at start-up; returns 0, or SL_EINVAL (then auto) for another value. */
int sl_search_set_day_level(const char *mode);

/* ---- the web viewer's reads (docs/viewer.md) ---- */

#define SL_SEARCH_MAX_BUCKETS 500

/* The volume graph: p's window [since, until) cut into at most `buckets` buckets of whole
 * seconds (1..SL_SEARCH_MAX_BUCKETS), and for each the lines of p's scope and the lines
 * matching p->q, counted by PostgreSQL with the search's predicate. Fills *status (200,
 * 400 bad query, 504, 500) and body (the JSON answer or a JSON error). Returns 0, or
 * SL_EDB when the connection failed. */
SL_MUSTCHECK int sl_search_aggregate(struct pg_conn *pg, struct sl_sources *src,
                                     const struct sl_search_params *p, int buckets, int *status,
                                     struct sl_buf *body);

/* A line's context: the event with id `id` if its source is in p's scope (else 404, as
 * for a line not stored), and n lines before and after it of its dyno (same app_name and
 * procid) and of its whole source, within an hour of it, each list in time order.
 * Returns as sl_search_aggregate. */
SL_MUSTCHECK int sl_search_context(struct pg_conn *pg, const struct sl_search_params *p,
                                   int64_t id, int n, int *status, struct sl_buf *body);

/* ---- live tail ---- */

/* A query prepared for repeated tail reads: the predicate SQL and its parameters. */
struct sl_tail_q;

/* Parse q and resolve its source: terms within scope. SL_EPARSE with a JSON error in
 * err (status 400), SL_ENOMEM. */
SL_MUSTCHECK int sl_tail_prepare(struct sl_sources *src, const char *q, const int64_t *scope,
                                 size_t nscope, struct sl_tail_q **out, struct sl_buf *err);
void sl_tail_free(struct sl_tail_q *t);

/* A position in the commit order (docs/architecture.md "The path of a tail"): every row of
 * a commit numbered below seq (log_commits.seq), and the rows of commit seq with ids up to
 * id, are behind it. (0, 0) is before everything. Row ids are unique but do not grow in
 * commit order across nodes; within one commit and source they are contiguous. */
struct sl_tail_pos {
    int64_t seq, id;
};

/* Append to out, as Server-Sent Events ("id: N\ndata: EVENT\n\n"), the matching rows
 * after `from` in commits numbered up to hi.seq, in (commit, id) order, at most limit of
 * them, stopping after the row that takes out past max_bytes. hi is a commit's end
 * (sl_tail_head, sl_tail_window). *last: the position up to which the stream is now
 * complete (hi when fewer than limit rows came, else the last row's); *nrows: rows
 * appended. Returns 0 or SL_EDB. */
SL_MUSTCHECK int sl_tail_fetch(struct pg_conn *pg, const struct sl_tail_q *t,
                               struct sl_tail_pos from, struct sl_tail_pos hi, int limit,
                               size_t max_bytes, struct sl_buf *out, struct sl_tail_pos *last,
                               size_t *nrows);

/* How many rows match after `from` up to the end of commit to.seq (a client that fell
 * behind is told). */
SL_MUSTCHECK int sl_tail_count(struct pg_conn *pg, const struct sl_tail_q *t,
                               struct sl_tail_pos from, struct sl_tail_pos to, int64_t *count);

/* The newest commit's end ((0, 0) when none). */
SL_MUSTCHECK int sl_tail_head(struct pg_conn *pg, struct sl_tail_pos *head);
/* The end of commit seq: (seq, its highest row id; 0 when it has none left). */
SL_MUSTCHECK int sl_tail_commit_end(struct pg_conn *pg, int64_t seq, struct sl_tail_pos *pos);
/* The position right after row id (a Last-Event-ID): *found false (and (0, 0)) when no
 * commit holds it (its rows aged out); id 0 is (0, 0), found. Returns 0 or SL_EDB. */
SL_MUSTCHECK int sl_tail_locate(struct pg_conn *pg, int64_t id, struct sl_tail_pos *pos,
                                bool *found);

/* A replay's next bounded step: *win, at most hi, the end of a commit such that the
 * stream's commits in (from, *win] hold about `rows` rows (at most 256 commits), so a read
 * up to it sorts a bounded set instead of every row after from. Returns 0 or SL_EDB. */
SL_MUSTCHECK int sl_tail_window(struct pg_conn *pg, const struct sl_tail_q *t,
                                struct sl_tail_pos from, struct sl_tail_pos hi, int64_t rows,
                                struct sl_tail_pos *win);

/* Where a resume from `from` starts so that it reads about `rows` stored lines of the
 * stream's sources (at most 4096 commits) up to hi: *start (from when everything fits,
 * else a commit's end) and *skipped, the lines of those sources in (from, *start]
 * (matching or not: an upper bound of the matching ones, from the commit log, without
 * reading them). Returns 0 or SL_EDB. */
SL_MUSTCHECK int sl_tail_replay_start(struct pg_conn *pg, const struct sl_tail_q *t,
                                      struct sl_tail_pos from, struct sl_tail_pos hi,
                                      int64_t rows, struct sl_tail_pos *start,
                                      int64_t *skipped);

/* Commits (or blocks) in read order holding nrows[i] lines each: the index of the first
 * at which their running sum reaches rows (>= rows), or n when it never does. Pure. */
size_t sl_tail_blocks_reach(const int64_t *nrows, size_t n, int64_t rows);

/* ---- answer caps (pure) ----
 *
 * One EVENT's JSON is at most sl_search_event_max(max_message, max_header) bytes, from
 * what a stored row can hold when it was received under those settings
 * (SLUICE_MAX_MESSAGE_BYTES, SLUICE_MAX_HEADER_BYTES):
 *   - the text columns (hostname, app_name, procid, msgid, sd, message) are disjoint
 *     pieces of one received message, at most max_message bytes together; UTF-8 repair
 *     makes a byte at most 3 (U+FFFD) and JSON escaping at most 6 (a control byte is
 *     \u001f), so SL_SEARCH_JSON_EXPANSION x max_message;
 *   - message_raw is the base64 of at most that message: 4 x ceil(max_message / 3);
 *   - tags and frame_id come from the drain request's head: 6 x max_header;
 *   - fields, the jsonb of a JSON line's object: strings no longer than in the message,
 *     ", " and ": " at most 1.5 x, numbers (exponent within SL_JSON_MAX_EXP, fields.h)
 *     at most 5.4 x their text: SL_SEARCH_JSON_EXPANSION x max_message;
 *   - the rest (keys, ids, times, names, parse_error) fits SL_SEARCH_EVENT_FIXED.
 * An answer of `limit` events is limit x (event + a comma) + SL_SEARCH_ANSWER_FIXED (the
 * envelope: count, window, cursors, or Papertrail's fields; or a JSON error).
 * Both saturate at SIZE_MAX. The server's answer budget is at least
 * sl_search_answer_max(1, ...), so one event always fits; a row stored under larger
 * settings than the server now has can pass it: a search whose first event does not fit
 * fails with one JSON error, never a partial body. */
#define SL_SEARCH_JSON_EXPANSION 6
#define SL_SEARCH_EVENT_FIXED 2048
#define SL_SEARCH_ANSWER_FIXED 1024
#define SL_SEARCH_DEFAULT_MAX_MESSAGE 65536 /* SLUICE_MAX_MESSAGE_BYTES's default */
#define SL_SEARCH_DEFAULT_MAX_HEADER 16384  /* SLUICE_MAX_HEADER_BYTES's default */
#define SL_SEARCH_DEFAULT_ANSWER_BYTES (16u << 20) /* SLUICE_SEARCH_ANSWER_BYTES's default */

size_t sl_search_event_max(size_t max_message, size_t max_header);
size_t sl_search_answer_max(size_t limit, size_t max_message, size_t max_header);

/* ---- pure helpers ---- */

/* A time parameter: RFC 3339 ("2026-11-21T10:00:00Z", fraction and offset optional),
 * a date ("2026-11-21", UTC midnight), relative to now_us ("90s", "15m", "2h", "3d",
 * "1w": that long before now), or Unix seconds ("1732181000", "1732181000.25").
 * Returns 0 and *us, or SL_EPARSE. */
SL_MUSTCHECK int sl_search_parse_time(const char *s, int64_t now_us, int64_t *us);

/* Cursors: "o<us>.<id>" (older than) and "n<us>.<id>" (newer than). */
SL_MUSTCHECK int sl_search_parse_cursor(const char *s, char *dir, int64_t *us, int64_t *id);
void sl_search_cursor(char dir, int64_t us, int64_t id, char out[48]);

/* "2026-11-22T04:16:01.123456Z" */
void sl_search_fmt_time(int64_t us, char out[32]);

#endif
