/* `sluice search` and `sluice tail`: the command-line client of the search and tail API
 * (docs/api.md), in drain/client.c.
 *
 * The pure parts are public so tests/unit/test_client.c covers them without a network:
 * the argument parser, the cli.conf reader, the Server-Sent Events parser, the line
 * formatter and small helpers. They do no I/O and keep no global state; the SSE parser
 * and the formatter allocate only inside the caller's buffers (struct sl_buf, bounded).
 * sl_client_main does the I/O (libcurl, stdout, stderr) on the calling thread. */
#ifndef SLUICE_CLIENT_H
#define SLUICE_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/buf.h"
#include "sluice/err.h"
#include "sluice/str.h"

/* ------------------------------------------------------------------ arguments */

enum sl_client_cmd { SL_CLIENT_SEARCH, SL_CLIENT_TAIL };
enum sl_client_color { SL_CLIENT_COLOR_AUTO, SL_CLIENT_COLOR_ALWAYS, SL_CLIENT_COLOR_NEVER };

#define SL_CLIENT_MAX_SOURCES 64
#define SL_CLIENT_MAX_QUERY 4096       /* the server's SL_QUERY_MAX_LEN */
#define SL_CLIENT_PAGE 10000           /* the API's largest limit */
#define SL_CLIENT_MAX_LIMIT 1000000000 /* --limit / -n */

struct sl_client_opts {
    enum sl_client_cmd cmd;
    char query[SL_CLIENT_MAX_QUERY + 1];        /* the positional words joined by one space */
    const char *sources[SL_CLIENT_MAX_SOURCES]; /* borrowed from argv */
    size_t nsources;
    const char *since, *until; /* passed to the server as written; NULL: its default */
    long limit;                /* search --limit (100), tail -n (20) */
    bool follow;               /* tail -f */
    bool json;
    bool help;
    enum sl_client_color color;
    const char *url, *token, *cacert; /* flags; NULL when not given */
    bool insecure;
};

/* Parse the arguments after the command word (argv[0] is the first of them). Options
 * may come before or after the query words; `--` ends options (so `-word`, a negation,
 * can start the query); --opt=value and --opt value both work. Returns 0, or SL_EINVAL
 * with a one-line reason in err (always NUL-terminated when cap > 0). Borrows argv. */
SL_MUSTCHECK int sl_client_args(enum sl_client_cmd cmd, int argc, char **argv,
                                struct sl_client_opts *o, char *err, size_t cap);

/* ------------------------------------------------------------------ cli.conf */

/* Settings from a cli.conf file: `key = value` lines (url, token, cacert), blank lines
 * and `#` comments; surrounding spaces and one pair of "double quotes" around a value
 * are dropped. Fields are NULL when absent; the struct owns them. */
struct sl_client_conf {
    char *url, *token, *cacert;
};

/* Parse text[0..len) into c (zeroed by the caller or by an earlier free; a repeated key
 * keeps the last value). Returns 0, SL_EPARSE with *bad_line (1-based) for a line that
 * is not `key = value` or names an unknown key, or SL_ENOMEM. */
SL_MUSTCHECK int sl_client_conf_parse(const char *text, size_t len, struct sl_client_conf *c,
                                      size_t *bad_line);
/* Frees the fields and zeroes them; accepts NULL. */
void sl_client_conf_free(struct sl_client_conf *c);

/* The path of cli.conf: $XDG_CONFIG_HOME/sluice/cli.conf, else $HOME/.config/sluice/cli.conf
 * (xdg and home may be NULL or empty). Returns 0, or SL_ENOTFOUND when neither is set,
 * SL_ETOOBIG when out (cap bytes) is too small. */
SL_MUSTCHECK int sl_client_conf_path(const char *xdg, const char *home, char *out, size_t cap);

/* ------------------------------------------------------------------ Server-Sent Events */

/* One dispatched event (WHATWG HTML "Server-sent events", §9.2.6 interpretation). The
 * pointers borrow the parser's buffers and are valid during the callback only. */
struct sl_sse_event {
    const char *type; /* "message" unless an event: field said otherwise */
    size_t type_len;
    const char *data; /* data: lines joined by "\n", without the final one; NUL-terminated */
    size_t data_len;
    const char *id; /* the last event ID (it carries over from earlier events, as in the
                       spec); "" when none */
    size_t id_len;
    bool id_here; /* this event had its own id: field */
};

/* Returns 0 to go on; anything else stops sl_sse_feed, which returns it. */
typedef int (*sl_sse_cb)(const struct sl_sse_event *ev, void *arg);

/* Incremental parser state. Lines end with CRLF, LF or CR (a CR at the end of one chunk
 * and an LF at the start of the next are one line end); a leading UTF-8 BOM is dropped. */
struct sl_sse {
    struct sl_buf line; /* the unfinished line of the previous chunk */
    struct sl_buf data, event, id;
    long retry_ms; /* the last retry: field, -1 when none */
    bool cr;       /* the previous chunk ended in CR */
    bool first;    /* the next line is the stream's first */
    bool id_here;
};

/* max caps one line and one event's data (SL_ETOOBIG beyond). Allocates nothing. */
void sl_sse_init(struct sl_sse *p, size_t max);
/* A new connection: drop the unfinished line and event (the spec discards an event the
 * stream ended inside); keep the last event ID and retry. */
void sl_sse_reset(struct sl_sse *p);
/* Accepts NULL; the struct may be reused after sl_sse_init. */
void sl_sse_free(struct sl_sse *p);
/* Feed the next bytes of the stream; calls cb for each complete event (not for comments
 * or events without data). Returns 0, SL_ETOOBIG, SL_ENOMEM, or cb's non-zero result. */
SL_MUSTCHECK int sl_sse_feed(struct sl_sse *p, const char *buf, size_t len, sl_sse_cb cb,
                             void *arg);

/* ------------------------------------------------------------------ output */

/* The fields of an EVENT that a plain line shows; NULL when absent (JSON null). */
struct sl_client_line {
    const char *received_at; /* RFC 3339, as the API sends it */
    const char *hostname;
    const char *app_name;
    const char *procid;
    const char *message;
};

/* Append one line, papertrail-cli's layout, with "\n":
 *   Nov 22 04:16:01 HOST PROGRAM: MESSAGE
 * The time is received_at in UTC, or in the local zone (TZ) when local is true (a
 * received_at that does not parse is shown as sent). PROGRAM is app_name/procid, or
 * whichever is set; an absent host or program is "-". Control characters (C0, DEL, C1)
 * in any field are written as \n, \r, \xNN or \u00NN, so a line is one line and cannot
 * drive the terminal. With color, HOST and PROGRAM get the ANSI colour
 * sl_client_color_of picks for their text. Returns 0, SL_ETOOBIG or SL_ENOMEM. */
SL_MUSTCHECK int sl_client_format(const struct sl_client_line *l, bool color, bool local,
                                  struct sl_buf *out);

/* A stable colour for a string: an ANSI SGR foreground code 31..36 from its FNV-1a hash
 * (the same host is the same colour in every run and on every machine). */
int sl_client_color_of(const char *s, size_t len);

/* Append `?key=value` (or `&key=value` when url already has a '?') with value
 * percent-encoded (RFC 3986 unreserved characters kept). Returns 0, SL_ETOOBIG or SL_ENOMEM. */
SL_MUSTCHECK int sl_client_url_param(struct sl_buf *url, const char *key, const char *value);

/* A decimal event id (the API sends them as strings) to a number. Returns 0 or SL_EPARSE. */
SL_MUSTCHECK int sl_client_id_parse(const char *s, size_t len, uint64_t *out);

/* The exact text of each element of the top-level "events" array of a search answer,
 * so --json prints the events byte for byte as the server sent them. Fills up to max
 * slices into body and returns how many elements there are, or SL_EPARSE. */
SL_MUSTCHECK long sl_client_json_events(const char *body, size_t len, struct sl_str *items,
                                        size_t max);

/* The message of an error answer ({"error": "...", ...}), or NULL when body is not one.
 * Borrows nothing: writes into out (cap bytes, NUL-terminated, cut if longer). */
const char *sl_client_errmsg(const char *body, size_t len, char *out, size_t cap);

/* The stderr notice for an `event: missed` data document:
 *   sluice: missed 1234 lines after id A (up to id B): run `sluice search` to see them
 * Returns out, or NULL when data is not a missed document. */
const char *sl_client_missed_notice(const char *data, size_t len, char *out, size_t cap);

/* ------------------------------------------------------------------ caps */

/* What the client accepts, from what a server with the default SLUICE_MAX_MESSAGE_BYTES
 * and SLUICE_MAX_HEADER_BYTES may send (include/sluice/search.h, sl_search_event_max /
 * sl_search_answer_max): one search answer of n events is at most
 * sl_client_answer_max(n) bytes (about 581 KB an event, and never more than
 * SL_CLIENT_ANSWER_MAX, twice SLUICE_SEARCH_ANSWER_BYTES's default: a server truncates
 * its answers there and `sluice search` follows the cursor);
 * the lines `sluice search` holds until it prints them oldest first are at most
 * sl_client_lines_max(limit): one plain line or --json line is never longer than its
 * EVENT (a control byte is \u00NN in JSON, \xNN in a line). A server that stores
 * longer messages can send more: the client then stops and says so (exit status 1).
 * Both saturate at SIZE_MAX. */
#define SL_CLIENT_ANSWER_MAX ((size_t)32 << 20) /* 2 x SL_SEARCH_DEFAULT_ANSWER_BYTES */
size_t sl_client_answer_max(long events);
size_t sl_client_lines_max(long limit);

/* ------------------------------------------------------------------ the commands */

/* `sluice search ARGS` / `sluice tail ARGS` (argv after the command word). Reads the
 * environment (SLUICE_URL, SLUICE_TOKEN, SLUICE_CA_FILE, XDG_CONFIG_HOME, HOME, TZ,
 * NO_COLOR) and cli.conf; writes lines to stdout and problems to stderr. Returns the
 * exit status: 0; 1 (token refused, server unreachable or failing); 2 (usage, bad
 * query or parameter: the server's message and position are printed). */
int sl_client_main(enum sl_client_cmd cmd, int argc, char **argv);

#endif
