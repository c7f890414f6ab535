/* Crash traces joined back from log lines (drain/crash.c, pure; issue 11, docs/crashes.md).
 *
 * Heroku cuts every stack trace into one message per line and interleaves other dynos'
 * lines between them. This module knows the shapes of Python, Go, Ruby/Rails, Node and
 * JVM traces and of Heroku's platform crashes (R10, R14, R15, H10), and turns the lines
 * of ONE (source, procid), in their own time order, into crashes: exception chains with
 * parsed frames, ready to become a Sentry event.
 *
 * Pure: no I/O, no globals, no threads. Lines come in, crashes and JSON text come out;
 * the caller owns every buffer. Used by the writer (sl_crash_anchor, per line, must stay
 * cheap: a few byte compares for an ordinary line) and by the crash thread (the rest).
 *
 * How the pieces fit (the crash thread, rules/crashd.c):
 *   1. The writer stores, in its transaction, the ids of lines for which
 *      sl_crash_anchor() is not SL_CRASH_NONE (table crash_anchors).
 *   2. The crash thread, once an anchor's procid has been quiet for the gap, reads the
 *      lines of that (source, procid) around it from `logs` in emitted-time order and
 *      feeds them to an assembler (sl_crash_asm_*). Whatever crashes come out are
 *      stored with their outbox rows and the anchors consumed, in one transaction.
 *   3. Each crash becomes a Sentry event (sl_crash_event_json) in an envelope
 *      (sl_crash_envelope) sent to the source's DSN (sl_crash_dsn_parse). */
#ifndef SLUICE_CRASH_H
#define SLUICE_CRASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/buf.h"
#include "sluice/err.h"
#include "sluice/str.h"

/* ---- 1. Anchors: does this line start (or strongly belong to) a trace? ---------------- */

enum sl_crash_anchor {
    SL_CRASH_NONE = 0,
    SL_CRASH_TRACE,    /* a line that starts or surely belongs to a stack trace */
    SL_CRASH_PLATFORM, /* a Heroku platform line: R10, R14, R15, H10, "Process exited",
                          "State changed ... to crashed" (breadcrumbs, platform events) */
    SL_CRASH_RELEASE,  /* "Release vN created by ..." (the release of later crashes) */
};

/* Classify one stored message (app_name/procid as stored, e.g. "app"/"web.1",
 * "heroku"/"router"). Cheap on ordinary lines. */
enum sl_crash_anchor sl_crash_anchor(struct sl_str app_name, struct sl_str procid,
                                     struct sl_str msg);

/* ---- 2. Assembly of one (source, procid)'s lines ------------------------------------- */

enum sl_crash_lang {
    SL_LANG_UNKNOWN = 0,
    SL_LANG_PYTHON,
    SL_LANG_GO,
    SL_LANG_RUBY,
    SL_LANG_NODE,
    SL_LANG_JAVA,
    SL_LANG_PLATFORM, /* Heroku platform crash without a trace: a message event */
};

struct sl_crash_line {
    int64_t id;        /* logs.id */
    int64_t ts_us;     /* the line's own time (emitted_at, else received_at), µs */
    struct sl_str msg; /* the message text as stored */
};

/* Each field as the runtime's official SDK fills it: e.g. Go frames have abs_path and no
 * filename (sentry-go), Node frames a filename and no abs_path (@sentry/node). */
struct sl_crash_frame {
    char *filename; /* NULL when absent; all strings NUL-terminated, owned by the crash */
    char *abs_path;
    char *function;
    char *module; /* Python module, Java class/package, Go package */
    int lineno;   /* 0: absent */
    int colno;    /* 0: absent */
    bool in_app;
};

/* One exception of a chain. Frames are in Sentry's order: oldest call first, the frame
 * that raised last (Python's printed order; Go, Node, Ruby and Java print the other way
 * and are reversed). */
struct sl_crash_exc {
    char *type;   /* as the runtime's SDK names it: "ValueError", "NoMethodError",
                     "IllegalStateException" (module "java.lang"), "runtime.boundsError",
                     "panic" (a Go panic whose value's type the log does not say),
                     "TypeError", ... */
    char *value;  /* the message, may be "" (never NULL in a completed crash) */
    char *module; /* e.g. "java.lang" / "builtins" when the type carries one; may be NULL */
    struct sl_crash_frame *frames;
    size_t nframes;
    bool frames_omitted; /* "... N more", "[Previous line repeated N more times]" */
};

struct sl_crash {
    enum sl_crash_lang lang;
    /* Sentry's chained exception.values order: the root cause first, the exception
     * that ended the program last (Python prints the root cause first; Java prints it
     * last, after "Caused by:"). */
    struct sl_crash_exc *excs;
    size_t nexcs;
    char *message;             /* platform events: "Error R14 (Memory quota exceeded)"; else NULL */
    char *platform_code;       /* "R14", "H10", ... or NULL */
    int64_t first_id, last_id; /* logs ids of the first and last line of the trace */
    int64_t first_ts_us, last_ts_us;
    int64_t *line_ids; /* every line joined into it, in order */
    size_t nlines;
    bool truncated;       /* cut by max_lines / max_bytes */
    char fingerprint[65]; /* hex SHA-256 of the type and the top in-app frames: one bug,
                             one Sentry issue */
};

struct sl_crash_limits {
    int64_t gap_us;   /* silence on the procid that closes a trace (default 500 ms) */
    size_t max_lines; /* lines of one trace (default 2 000) */
    size_t max_bytes; /* bytes of one trace (default 256 KiB) */
};

void sl_crash_limits_default(struct sl_crash_limits *l);

struct sl_crash_asm; /* opaque: the assembler of ONE (source, procid) */

/* NULL when out of memory. The assembler's memory is bounded by the limits. */
struct sl_crash_asm *sl_crash_asm_new(const struct sl_crash_limits *l);
void sl_crash_asm_free(struct sl_crash_asm *a);

/* Feed the next line in time order (the assembler keeps no pointer into line). Lines that
 * belong to no trace are ignored. Returns the number of crashes completed by this line
 * (0, 1 or 2: a trace the line closed and one it ended), also in *ncompleted (may be
 * NULL), or SL_ENOMEM (the open trace is then dropped); take them with
 * sl_crash_asm_take. */
SL_MUSTCHECK int sl_crash_asm_feed(struct sl_crash_asm *a, const struct sl_crash_line *line,
                                   size_t *ncompleted);
/* Close whatever trace is open as if the gap had passed at now_ts_us (a trace whose
 * last line is newer than now_ts_us - gap stays open). Returns crashes completed. */
SL_MUSTCHECK int sl_crash_asm_flush(struct sl_crash_asm *a, int64_t now_ts_us, size_t *ncompleted);
/* Force-close the open trace (end of the lines the caller has). */
SL_MUSTCHECK int sl_crash_asm_finish(struct sl_crash_asm *a, size_t *ncompleted);
/* Whether a trace is open, and the id of its first line (for the caller's checkpoint). */
bool sl_crash_asm_open(const struct sl_crash_asm *a, int64_t *first_id);
/* The oldest completed crash, moved out (caller frees with sl_crash_free); NULL if none. */
struct sl_crash *sl_crash_asm_take(struct sl_crash_asm *a);

void sl_crash_free(struct sl_crash *c);

/* Bytes the assembler holds now (its state and the open trace's parsed frames, not the
 * malloc overhead): what the 1 000-dynos bench measures. */
size_t sl_crash_asm_bytes(const struct sl_crash_asm *a);

/* ---- 3. Sentry ----------------------------------------------------------------------- */

/* A parsed DSN: {PROTOCOL}://{PUBLIC_KEY}[:{SECRET}]@{HOST}[:{PORT}]/{PATH}{PROJECT_ID} */
struct sl_crash_dsn {
    char scheme[8]; /* "https" or "http" */
    char public_key[128];
    char host[256];
    int port;       /* 0: the scheme's default */
    char path[256]; /* "" or "/prefix" without the trailing slash */
    char project_id[64];
    char envelope_url[768]; /* {scheme}://{host}[:{port}]{path}/api/{project_id}/envelope/ */
};

/* Parse a DSN; on error fill why ("no public key", "project id must be numeric", ...)
 * and return SL_EINVAL. */
SL_MUSTCHECK int sl_crash_dsn_parse(const char *dsn, struct sl_crash_dsn *out, char *why,
                                    size_t why_cap);

/* The X-Sentry-Auth header value: "Sentry sentry_version=7, sentry_client=sluice/<ver>,
 * sentry_key=<key>". */
SL_MUSTCHECK int sl_crash_auth_header(const struct sl_crash_dsn *d, const char *version,
                                      struct sl_buf *out);

/* The context sluice knows around a crash (all optional: NULL / 0 when unknown). */
struct sl_crash_ctx {
    const char *event_id; /* 32 lowercase hex, stable per crash (so a resend dedupes) */
    const char *source_name;
    const char *server_name;      /* the dyno, e.g. "web.1" */
    const char *release;          /* "v42" from the last "Release vN created" of the source */
    const char *environment;      /* from the source's drain tags (env=...) */
    const char *tags_json;        /* the source's drain tags as a JSON object text, or NULL */
    const char *search_url;       /* link back to the stored lines in sluice */
    const char *breadcrumbs_json; /* a JSON array of Sentry breadcrumbs, or NULL */
    int64_t timestamp_us;         /* the crash's time (its last line) */
};

/* The Sentry event JSON (exception or, for platform crashes, message event; level error;
 * platform per language; fingerprint; extra with the line ids) appended to out. cx may be
 * NULL; without cx->event_id one is derived from the crash (its fingerprint, line ids and
 * time). An event that does not fit out's cap (give it Sentry's 1 MiB) gives up frames,
 * the middle of each stack first; SL_ETOOBIG when even no frames do not fit (out then
 * holds a prefix: reset it). */
SL_MUSTCHECK int sl_crash_event_json(const struct sl_crash *c, const struct sl_crash_ctx *cx,
                                     struct sl_buf *out);

/* A whole envelope (header line with event_id, dsn and sent_at; one "event" item with
 * its length) around an event JSON, appended to out. */
SL_MUSTCHECK int sl_crash_envelope(const struct sl_crash_dsn *d, const char *event_id,
                                   int64_t sent_at_us, struct sl_str event_json,
                                   struct sl_buf *out);

/* Rate limits (https://develop.sentry.dev/sdk/expected-features/rate-limiting/): from a
 * response's status, Retry-After and X-Sentry-Rate-Limits (either may be NULL), the
 * time (µs, absolute, from now_us) until which the "error" category is limited; 0 when it
 * is not. 429 without headers: 60 s. */
int64_t sl_crash_rate_limit_until(int status, const char *retry_after,
                                  const char *x_sentry_rate_limits, int64_t now_us);

#endif
