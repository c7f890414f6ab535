/* The fields of a log line: a JSON object in the line (structured loggers: slog, zap,
 * pino, lograge, structlog), its scalar leaves by dotted path, the logfmt key=value
 * fields, and conditions on either (docs/search.md "JSON lines", docs/alerts.md "where").
 *
 * Pure: no I/O, no allocation except into a caller's sl_buf, no global state; any thread.
 * Bounded: a line's object is at most SL_JSON_MAX_BYTES, SL_JSON_MAX_DEPTH deep, its
 * numbers SL_JSON_MAX_NUMBER bytes with an exponent within +-SL_JSON_MAX_EXP; anything
 * else is "not JSON" and the line is searched as text. The rules are those under which
 * PostgreSQL 15's jsonb input accepts the object text (substr(message, json_at)::jsonb
 * must never raise for a row this module accepted): no \u0000, no lone surrogate, strings
 * of valid UTF-8 without raw control bytes, whitespace only space, tab, CR, LF.
 *
 * Duplicate keys: the LAST one wins, as in jsonb and JSON.parse; lookups here follow it.
 * A path is the keys joined by '.', array elements by their index (tags.0); a key that
 * holds dots itself ({"user.id": 1}) is found by the whole path at the top level when
 * the nested lookup finds nothing (SQL: COALESCE(j #> path, j -> key)). */
#ifndef SLUICE_FIELDS_H
#define SLUICE_FIELDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/buf.h"
#include "sluice/err.h"
#include "sluice/str.h"

#define SL_JSON_MAX_BYTES (256 * 1024)
#define SL_JSON_MAX_DEPTH 32
#define SL_JSON_MAX_NUMBER 64
#define SL_JSON_MAX_EXP 24 /* jsonb prints every digit: 1e24 is 25 bytes out */
#define SL_JSON_FIND_TRIES 4  /* '{' positions tried in one line */
#define SL_JSON_PATH_MAX 256  /* longer paths are not walked (the line stays valid) */
#define SL_FIELDS_CANON_MAX 40 /* canonical number text longer than this: none */

/* Where a line's JSON object starts: the first of SL_JSON_FIND_TRIES '{' from which a
 * valid object runs to the end of the line (trailing space, tab, CR, LF allowed). */
struct sl_json_at {
    size_t off;       /* byte offset of the '{' */
    size_t char_off;  /* UTF-8 characters before it (PostgreSQL's substr counts these) */
    bool escapes;     /* a key or string holds a backslash escape */
    bool odd_numbers; /* a number is not in its canonical form (42.0, 1e3) */
};

/* true and *out when line[0..len) holds an object under the rules above. */
bool sl_fields_json_find(const char *line, size_t len, struct sl_json_at *out);

/* true when p[0..n) is exactly one valid object (whitespace around allowed). */
bool sl_fields_json_valid(const char *p, size_t n);

enum sl_jtype { SL_J_STRING, SL_J_NUMBER, SL_J_TRUE, SL_J_FALSE, SL_J_NULL, SL_J_OBJECT, SL_J_ARRAY };

struct sl_jleaf {
    enum sl_jtype type;
    struct sl_str raw; /* a string's bytes between the quotes, escapes as written; a
                          number, true, false, null as written; the whole object/array */
    bool escaped;      /* a string holding a backslash */
};

/* Every scalar leaf of a VALID object (sl_fields_json_find / _valid said so) in text
 * order, duplicates included (the caller keeps the last). path is the decoded dotted
 * path, NUL-terminated, valid during the call. A non-zero return from cb stops the walk
 * and is returned. Leaves past SL_JSON_PATH_MAX bytes of path are skipped. */
typedef int (*sl_jleaf_cb)(void *arg, const char *path, size_t plen, const struct sl_jleaf *leaf);
int sl_fields_json_walk(const char *obj, size_t len, sl_jleaf_cb cb, void *arg);

/* The value at path in a VALID object, last duplicate winning. true and *out when found
 * (any type, objects and arrays included). */
bool sl_fields_json_get(const char *obj, size_t len, const char *path, size_t plen,
                        struct sl_jleaf *out);

/* A validated string's raw bytes decoded (\uXXXX pairs to UTF-8) into out. */
SL_MUSTCHECK int sl_fields_json_unescape(struct sl_str raw, struct sl_buf *out);

/* Whether s[0..n) is one JSON number within the limits above. */
bool sl_fields_is_number(const char *s, size_t n);

/* The canonical decimal text of a JSON number (no exponent, no trailing fraction zeros,
 * sign kept): "4.2e1" -> "42", "42.50" -> "42.5". Writes it NUL-terminated to out and
 * returns its length; 0 when s is not a JSON number or the text would pass
 * SL_FIELDS_CANON_MAX bytes (or cap). */
size_t sl_fields_num_canon(const char *s, size_t n, char *out, size_t cap);

/* The words a block filter must hold for a JSON line beyond the line's own tokens:
 * every key and string holding escapes, decoded, and the canonical text of every number
 * not written canonically. Appended to out, separated by spaces (nothing when the object
 * has neither). */
SL_MUSTCHECK int sl_fields_json_extra(const char *obj, size_t len, struct sl_buf *out);

/* The logfmt field key=value or key="value" of a line (the first one; a key starts the
 * line or follows a byte <= ' '). *val is the value as written (quotes stripped,
 * escapes kept). */
bool sl_fields_logfmt_get(const char *line, size_t len, const char *key, size_t klen,
                          struct sl_str *val);

/* Every numeric field class token of a stored line (include/sluice/tokens.h,
 * sl_numclass_hash): for each space-separated run holding '=', each key before an '='
 * with the rest of the run as its value, when that value reads as a number (every
 * occurrence: the query reads the first, a superset costs nothing); and when json_off is
 * not SIZE_MAX, every numeric leaf of the line's JSON object at text + json_off (a VALID
 * one) under its dotted path: a number without exponent or a string holding one by its
 * class, another number or an escaped string as SL_NUMCLASS_ANY. cb gets each hash
 * (repeats included). Returns 0 or SL_ENOMEM. */
typedef void (*sl_hash_cb)(void *arg, uint64_t hash);
SL_MUSTCHECK int sl_fields_num_classes(const char *text, size_t len, size_t json_off,
                                       sl_hash_cb cb, void *arg);

/* ------------------------------------------------------------------ conditions */

enum sl_fop { SL_FOP_EQ, SL_FOP_NE, SL_FOP_LT, SL_FOP_LE, SL_FOP_GT, SL_FOP_GE };

/* One condition on a field, as a rule's "where" writes it: "error" (text, or a number
 * compared as a number when both are), "web.*" (glob), "!=staging" (present and
 * different), ">1000", ">=5", "<0.5", "<=3", "=42" (numbers). */
struct sl_field_cond {
    char key[SL_JSON_PATH_MAX];
    enum sl_fop op;
    bool glob;
    bool numeric; /* op compares numbers (every op but a text = / !=) */
    double num;   /* the number when numeric or when val is a number */
    bool val_num; /* val reads as a JSON number */
    char val[256];
};

/* Parses key and expression into *c. Returns 0 or SL_EPARSE with *why set. */
SL_MUSTCHECK int sl_fields_cond_parse(const char *key, const char *expr, struct sl_field_cond *c,
                                      const char **why);

/* The line's view for conditions: the JSON object (found once per line), the text, and an
 * index of the object's paths built by the first lookup (one walk, then each lookup is a
 * table probe). An object with a duplicate key, an empty key, a key holding '.' or an
 * escape, or more
 * than SL_FIELDS_INDEX_MAX paths is not indexed: its lookups walk it (same answers). */
#define SL_FIELDS_INDEX_MAX 64
#define SL_FIELDS_INDEX_PATHS 2048
struct sl_fields_line {
    const char *text;
    size_t len;
    bool has_json;
    struct sl_json_at at;
    int indexed; /* 0: not yet; 1: idx holds every path; -1: look up by walking */
    size_t nidx, pused;
    struct {
        uint32_t hash;
        uint32_t poff, plen;
        struct sl_jleaf leaf;
    } idx[SL_FIELDS_INDEX_MAX];
    char paths[SL_FIELDS_INDEX_PATHS];
};
void sl_fields_line_init(struct sl_fields_line *fl, const char *text, size_t len);

/* The field as written: a JSON leaf (preferred when the line has an object holding the
 * path) else a logfmt field. true and *val (into the line) / *type. */
bool sl_fields_line_get(struct sl_fields_line *fl, const char *key, struct sl_str *val,
                        enum sl_jtype *type);

/* Whether the line meets c: its JSON leaf OR its logfmt field does (as a search's field
 * term). A JSON string's escapes are decoded for the comparison (one holding escapes and
 * longer than 1 KiB compares as absent). */
bool sl_fields_cond_eval(const struct sl_field_cond *c, struct sl_fields_line *fl);

#endif
