/* The search query language: query text -> AST (drain/query.c) -> parameterised SQL and
 * required tokens (drain/query_sql.c); regexes through drain/pcre2pg.c.
 *
 * Pure: no I/O, no libpq, no global state. Allocates the AST, the SQL text (into the
 * caller's sl_buf) and the parameter strings. User text never reaches the SQL text:
 * every value is a $n parameter in text form; the SQL fragment holds only column names,
 * operators, $n and constants of this module, and never a quote character.
 *
 * Language (Papertrail's, plus regexes and logfmt fields; issue 3 "Query language"):
 *   error timeout          words, implicitly ANDed (an explicit AND is accepted)
 *   "connection refused"   phrase ('single quotes' work too; \" and \\ escape)
 *   a OR b                 OR (uppercase keyword); binds looser than AND:
 *                          a b OR c == (a AND b) OR c
 *   -word -"p" -(..) -k:v  negation (NOT x is the same)
 *   ( ... )                grouping
 *   source:NAME            source by name (glob * ?); the caller resolves the names
 *   app:NAME               syslog APP-NAME, glob * ?
 *   program:P proc:P       syslog PROCID, glob (program:web.*)
 *   host:H sender:H        syslog HOSTNAME, glob
 *   severity:err           name (emerg alert crit err warning notice info debug, aliases
 *                          emergency panic critical error warn informational), or 0..7;
 *                          severity:<=warning compares the number: warning or worse
 *   facility:local0        name (kern user mail daemon auth syslog lpr news uucp cron
 *                          authpriv ftp ntp security console solaris-cron local0..local7)
 *                          or 0..23
 *   message:x message:"a b" a word or phrase in the message (same as a bare one: bare
 *                          words search only the message as well)
 *   /regex/ /regex/i       PostgreSQL ARE, accepting only the part of PCRE syntax that
 *                          PostgreSQL runs with the same meaning (\b is translated to \y);
 *                          anything else is refused with its position. A '/' inside is
 *                          written \/. "/a/b" (no closing '/' before a delimiter) is a word.
 *   key:value              any other key: a logfmt field of the line (key=value or
 *                          key="value"), value compared as text or glob (dyno:web.*);
 *   key:>=500 key:>1s      with = != < <= > >= and a number, compared as a number; units
 *                          us ms s (time, compared in ms) and b bytes kb mb gb (1024-based)
 *                          convert the line's value; a bare number in the line counts in
 *                          ms or bytes. key:!=v needs the field to be present.
 *   attr:"a b"             any value may be quoted.
 *
 * Words and phrases match whole tokens (the tokens of include/sluice/tokens.h), ASCII
 * case-insensitively: "error" matches "Error:" and "an error" but not "errors" or
 * "KeyError". That is what lets every word's tokens be *required* for the block Bloom
 * prefilter (sl_query_tokens). Use a regex for a substring search (/rror/i).
 *
 * Caps: query SL_QUERY_MAX_LEN bytes, SL_QUERY_MAX_TERMS terms, SL_QUERY_MAX_DEPTH
 * nested groups or negations; beyond: SL_ETOOBIG with a position. */
#ifndef SLUICE_QUERY_H
#define SLUICE_QUERY_H

#include <stddef.h>
#include <stdint.h>

#include "sluice/buf.h"
#include "sluice/err.h"

#define SL_QUERY_MAX_LEN 4096
#define SL_QUERY_MAX_TERMS 64
#define SL_QUERY_MAX_DEPTH 16
/* Token DNF caps: beyond SL_QUERY_MAX_CONJ alternatives the prefilter is dropped
 * ("none"); a conjunction keeps at most SL_QUERY_MAX_CONJ_TOKENS hashes (fewer hashes
 * only make the filter weaker, never wrong). */
#define SL_QUERY_MAX_CONJ 16
#define SL_QUERY_MAX_CONJ_TOKENS 32

struct sl_query; /* opaque AST */

/* Why a query is bad. reason is a static string ("unbalanced parenthesis"); pos is the
 * byte offset (0-based) in the query text; [pos, pos + len) is the offending text when
 * quoting it helps (len 0 otherwise). */
struct sl_query_err {
    size_t pos;
    size_t len;
    const char *reason;
};

/* Parse text[0..len) (need not be NUL-terminated; must be UTF-8 without NUL or control
 * bytes other than tab, CR, LF). Returns 0 and *out (caller frees with sl_query_free),
 * SL_EPARSE or SL_ETOOBIG with *err filled, or SL_ENOMEM. err may be NULL. */
SL_MUSTCHECK int sl_query_parse(const char *text, size_t len, struct sl_query **out,
                                struct sl_query_err *err);
/* Accepts NULL. */
void sl_query_free(struct sl_query *q);

/* "unknown severity 'bogus' at 9": the reason, the offending text (cut to 64 bytes) if
 * any, and the position. text/len: the query the error came from. Always NUL-terminates
 * out (cap > 0); returns the length written. */
size_t sl_query_errfmt(const struct sl_query_err *e, const char *text, size_t len, char *out,
                       size_t cap);

/* The distinct source names (source:NAME, globs kept as written) in order of first
 * appearance. Writes up to max borrowed pointers (valid while q lives) and returns how
 * many there are. */
size_t sl_query_sources(const struct sl_query *q, const char **names, size_t max);

/* The caller's resolution of source name i (sl_query_sources order) to the source ids
 * it may see: none (unknown or not allowed: that term matches nothing), one or many. */
struct sl_query_ids {
    const int64_t *ids;
    size_t n;
};

/* Parameter values for the SQL, NUL-terminated, owned by the struct. v[0] is $first. */
struct sl_query_params {
    char **v;
    size_t n, cap;
};
void sl_query_params_init(struct sl_query_params *p);
/* Frees the strings and the array; accepts NULL; the struct may be reused after init. */
void sl_query_params_free(struct sl_query_params *p);

/* Append to sql a boolean SQL expression over `logs l` (one operand: a leaf predicate or
 * parenthesised, safe to AND with the caller's conditions) whose placeholders are
 * $first, $first+1, ..., and append their values to params (n grows by the number used).
 * src[i] resolves source name i; nsrc must cover every name (else SL_EINVAL). NOT of an
 * attribute that may be NULL is written "(x) IS NOT TRUE", so -host:a keeps lines with no
 * hostname. Returns 0, SL_EINVAL (first < 1), SL_ETOOBIG (sql's cap) or SL_ENOMEM; on
 * error sql and params may hold a partial fragment (reset them). */
SL_MUSTCHECK int sl_query_sql(const struct sl_query *q, int first, const struct sl_query_ids *src,
                              size_t nsrc, struct sl_buf *sql, struct sl_query_params *params);

/* The tokens the query requires, in disjunctive normal form: a line can match only if,
 * for some i, it holds every token of conj i. nconj == 0 means "no prefilter" (every
 * block must be read): a negation, a regex without safe literals, an attribute... Hashes
 * are sl_token_hash64 values, each conjunction sorted ascending without duplicates. A
 * number compared (key:>=500) requires one of the key's numeric classes (sl_numclass_hash,
 * include/sluice/tokens.h): one conjunction per class; cls[i] marks those hashes, which
 * only filters written with classes hold (log_blocks.classes), never the day and hour
 * levels. */
struct sl_query_tokens {
    uint64_t *hash; /* all conjunctions, back to back */
    uint8_t *cls;   /* cls[i]: hash[i] is a numeric class token */
    uint8_t *rare;  /* rare[i]: a guess of how rare the token is, to check it first: its
                     * length (at most 190), plus 64 when it holds a digit (ids and numbers
                     * are rarer than words); 0: unknown (a regex literal's) */
    size_t *off;    /* conj i is hash[off[i] .. off[i + 1]) */
    size_t nconj;
};
SL_MUSTCHECK int sl_query_tokens(const struct sl_query *q, struct sl_query_tokens *out);
/* Accepts NULL and a zeroed struct. */
void sl_query_tokens_free(struct sl_query_tokens *t);

/* Texts every matching line's message holds, ASCII-lowercased, as a PostgreSQL text[]
 * literal appended to out: the words and phrases of a query that is one of them or an
 * AND of terms (the positive ones; "{}" for anything else). Each is the needle of the
 * line's own prefilter (strpos of lower(message) under a C collation), so a compressed
 * pack whose messages hold none of them cannot match (sluice_unpack_having,
 * docs/search.md "Compressed packs"). SL_ENOMEM, else 0. */
SL_MUSTCHECK int sl_query_needles(const struct sl_query *q, struct sl_buf *out);

/* The AST as an S-expression for tests and debugging, e.g.
 * (and (word "h12") (or (app = "web") (proc glob "web.*")) (not (field "status" >= 500))). */
SL_MUSTCHECK int sl_query_dump(const struct sl_query *q, struct sl_buf *out);

#endif
