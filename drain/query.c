/* The search query language: text -> AST -> parameterised SQL, plus the tokens a query
 * requires (for the block Bloom prefilter) and an S-expression dump. Contract and
 * language in include/sluice/query.h; spec: issue 3 "Query language" and Papertrail's
 * search syntax (docs/reference outbound.md).
 *
 * Leaves to others: resolving source names (the caller maps them to ids), the time
 * range, source scoping, ordering, paging; running the SQL. Pure: no I/O, no libpq, no
 * global state; any thread. Allocates the AST and the parameter strings.
 *
 * Invariants worth knowing before changing anything:
 *  - User text only ever reaches parameters. The SQL text is made of this file's
 *    constants and $n; it never contains a quote.
 *  - Every token sl_query_tokens reports is present in every line the SQL matches
 *    (otherwise the Bloom prefilter would silently drop results). Words and phrases
 *    therefore match at token boundaries, case-insensitively for ASCII only (exactly
 *    the tokenizer's folding), and a regex contributes only tokens lying strictly
 *    inside one of its required literals.
 *  - A /regex/ is validated against the part of PCRE that PostgreSQL's ARE runs with
 *    the same meaning, so a query that parses never makes PostgreSQL raise. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/buf.h"
#include "sluice/err.h"
#include "sluice/match.h"
#include "sluice/query.h"
#include "sluice/tokens.h"

enum nkind {
    N_AND,
    N_OR,
    N_NOT,
    N_WORD,
    N_PHRASE,
    N_MESSAGE,
    N_REGEX,
    N_SOURCE,
    N_APP,
    N_PROC,
    N_HOST,
    N_SEVERITY,
    N_FACILITY,
    N_FIELD,
};

enum cmp { C_EQ, C_NE, C_LT, C_LE, C_GT, C_GE };

enum dim { D_NONE, D_TIME, D_BYTES };

struct node {
    enum nkind kind;
    enum cmp op;
    bool glob;    /* value holds * or ? */
    bool icase;   /* regex /i */
    bool numeric; /* field compared as a number */
    enum dim dim;
    int unit;    /* index into units[] when dim != D_NONE */
    int64_t num; /* severity, facility */
    size_t src;  /* source name index */
    char *key;   /* field key */
    char *val;   /* value (unescaped) / regex as written / number text */
    size_t vlen;
    char *re; /* regex translated for PostgreSQL */
    struct node **kid;
    size_t nkid, kcap;
};

struct sl_query {
    struct node *root;
    char **src;
    size_t nsrc;
};

/* ------------------------------------------------------------------ tables */

static const char *const cmp_sql[] = {"=", "<>", "<", "<=", ">", ">="};
static const char *const cmp_dump[] = {"=", "!=", "<", "<=", ">", ">="};

struct name_num {
    const char *name;
    int num;
};

static const struct name_num severities[] = {
    {"emerg", 0},    {"emergency", 0}, {"panic", 0},         {"alert", 1},   {"crit", 2},
    {"critical", 2}, {"err", 3},       {"error", 3},         {"warning", 4}, {"warn", 4},
    {"notice", 5},   {"info", 6},      {"informational", 6}, {"debug", 7},   {NULL, 0},
};

static const struct name_num facilities[] = {
    {"kern", 0},          {"user", 1},    {"mail", 2},    {"daemon", 3},    {"auth", 4},
    {"syslog", 5},        {"lpr", 6},     {"news", 7},    {"uucp", 8},      {"cron", 9},
    {"authpriv", 10},     {"ftp", 11},    {"ntp", 12},    {"security", 13}, {"console", 14},
    {"solaris-cron", 15}, {"local0", 16}, {"local1", 17}, {"local2", 18},   {"local3", 19},
    {"local4", 20},       {"local5", 21}, {"local6", 22}, {"local7", 23},   {NULL, 0},
};

/* Units of logfmt numbers. In the line, each unit of the query's dimension is tried (re:
 * its suffix, ASCII case-insensitive) and converted to the dimension's base (ms, bytes)
 * by factor; a bare number counts in the base unit (bytes=656 is 656 bytes). */
struct unit {
    const char *name;
    enum dim dim;
    const char *factor; /* SQL numeric constant; "1": none */
};

static const struct unit units[] = {
    {"us", D_TIME, "0.001"},    {"ms", D_TIME, "1"},           {"s", D_TIME, "1000"},
    {"b", D_BYTES, "1"},        {"bytes", D_BYTES, "1"},       {"kb", D_BYTES, "1024"},
    {"mb", D_BYTES, "1048576"}, {"gb", D_BYTES, "1073741824"}, {NULL, D_NONE, NULL},
};

struct unit_alt {
    const char *re;
    const char *factor;
};
static const struct unit_alt time_alts[] = {
    {"[uU][sS]", "0.001"}, {"[mM][sS]", "1"}, {"[sS]", "1000"}, {NULL, NULL}};
static const struct unit_alt byte_alts[] = {{"[bB](?:[yY][tT][eE][sS])?", "1"},
                                            {"[kK][bB]", "1024"},
                                            {"[mM][bB]", "1048576"},
                                            {"[gG][bB]", "1073741824"},
                                            {NULL, NULL}};

/* Regex pieces. A token byte is an ASCII letter, digit, '_' or any byte >= 0x80 (a
 * non-ASCII character); NW is one character that is not (NUL cannot be in text). SEP is
 * a logfmt separator (any byte <= ' ', drain/logfmt.c). */
#define RE_NW "[\\x01-\\x2f\\x3a-\\x40\\x5b-\\x5e\\x60\\x7b-\\x7f]"
#define RE_SEP "[\\x01-\\x20]"
#define RE_NUMV "-?[0-9]{1,20}(?:\\.[0-9]{1,20})?"
#define NUM_DIGITS_MAX 20

/* ------------------------------------------------------------------ small helpers */

static bool is_ws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alnum(unsigned char c)
{
    return is_alpha(c) || is_digit(c);
}

/* A byte of a token (include/sluice/tokens.h). */
static bool is_tok(unsigned char c)
{
    return is_alnum(c) || c == '_' || c >= 0x80;
}

static unsigned char lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

static bool ieq(const char *a, size_t n, const char *lit)
{
    size_t k = strlen(lit);

    if (k != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)a[i]) != (unsigned char)lit[i])
            return false;
    return true;
}

static char *dup_n(const char *p, size_t n)
{
    char *s = malloc(n + 1);

    if (s != NULL) {
        if (n > 0)
            memcpy(s, p, n);
        s[n] = '\0';
    }
    return s;
}

/* Length of the valid UTF-8 sequence at p[0..n), 0 if invalid (overlong, surrogate,
 * beyond U+10FFFF, truncated): PostgreSQL rejects those in text parameters. */
static size_t utf8_len(const unsigned char *p, size_t n, uint32_t *cp)
{
    unsigned char c = p[0];
    size_t k;
    uint32_t v, min;

    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        k = 2;
        v = c & 0x1f;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        k = 3;
        v = c & 0x0f;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        k = 4;
        v = c & 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    if (k > n)
        return 0;
    for (size_t i = 1; i < k; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        v = v << 6 | (p[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return k;
}

/* ------------------------------------------------------------------ AST */

static void node_free(struct node *n)
{
    if (n == NULL)
        return;
    for (size_t i = 0; i < n->nkid; i++)
        node_free(n->kid[i]);
    free(n->kid);
    free(n->key);
    free(n->val);
    free(n->re);
    free(n);
}

void sl_query_free(struct sl_query *q)
{
    if (q == NULL)
        return;
    node_free(q->root);
    for (size_t i = 0; i < q->nsrc; i++)
        free(q->src[i]);
    free(q->src);
    free(q);
}

static struct node *node_new(enum nkind kind)
{
    struct node *n = calloc(1, sizeof(*n));

    if (n != NULL)
        n->kind = kind;
    return n;
}

static int node_add(struct node *parent, struct node *kid)
{
    if (parent->nkid == parent->kcap) {
        size_t cap = parent->kcap ? parent->kcap * 2 : 4;
        struct node **k = realloc(parent->kid, cap * sizeof(*k));
        if (k == NULL)
            return SL_ENOMEM;
        parent->kid = k;
        parent->kcap = cap;
    }
    parent->kid[parent->nkid++] = kid;
    return 0;
}

/* ------------------------------------------------------------------ parser */

struct parser {
    const char *s;
    size_t len, i;
    size_t terms;
    int depth;
    struct sl_query *q;
    struct sl_query_err *err;
};

static int fail(struct parser *p, int rc, size_t pos, size_t len, const char *reason)
{
    if (p->err != NULL) {
        p->err->pos = pos;
        p->err->len = len;
        p->err->reason = reason;
    }
    return rc;
}

static void skip_ws(struct parser *p)
{
    while (p->i < p->len && is_ws((unsigned char)p->s[p->i]))
        p->i++;
}

/* Ends an unquoted word or value. */
static bool at_delim(const struct parser *p, size_t i)
{
    return i >= p->len || is_ws((unsigned char)p->s[i]) || p->s[i] == '(' || p->s[i] == ')';
}

static bool keyword(const struct parser *p, const char *kw)
{
    size_t n = strlen(kw);

    return p->len - p->i >= n && memcmp(p->s + p->i, kw, n) == 0 && at_delim(p, p->i + n);
}

static int count_term(struct parser *p, size_t pos)
{
    if (++p->terms > SL_QUERY_MAX_TERMS)
        return fail(p, SL_ETOOBIG, pos, 0, "too many terms");
    return 0;
}

/* A quoted string at p->i (quote char q): unescapes \q and \\ into *out. Leaves p->i
 * after the closing quote, which must be followed by a delimiter. */
static int read_quoted(struct parser *p, char **out, size_t *outlen)
{
    char q = p->s[p->i];
    size_t start = p->i, i = p->i + 1, w = 0;
    char *b;

    b = malloc(p->len - start + 1);
    if (b == NULL)
        return SL_ENOMEM;
    for (;;) {
        if (i >= p->len) {
            free(b);
            return fail(p, SL_EPARSE, start, 0, "unterminated quote");
        }
        if (p->s[i] == '\\' && i + 1 < p->len && (p->s[i + 1] == q || p->s[i + 1] == '\\')) {
            b[w++] = p->s[i + 1];
            i += 2;
            continue;
        }
        if (p->s[i] == q)
            break;
        b[w++] = p->s[i++];
    }
    i++;
    if (!at_delim(p, i)) {
        free(b);
        return fail(p, SL_EPARSE, i, 0, "expected a space after the closing quote");
    }
    b[w] = '\0';
    p->i = i;
    *out = b;
    *outlen = w;
    return 0;
}

/* ---------------------------------------------------------- regex validation */

/* Validates a /regex/ body against the subset of PCRE that PostgreSQL's ARE runs with
 * the same meaning and writes the ARE text to out. Conservative: whatever is not known
 * to be both valid and equal in meaning is refused. */
struct rv {
    struct parser *p;
    const char *s;
    size_t n, i, base;
    struct sl_buf *out;
};

#define RV_MAX_GROUPS 32
#define RV_MAX_WEIGHT 20000 /* sum of (bound x atom bytes) of counted repetitions */

enum atom { A_NONE, A_ATOM, A_ASSERT };

static int rv_fail(struct rv *v, size_t at, size_t len, const char *reason)
{
    return fail(v->p, SL_EPARSE, v->base + at, len, reason);
}

static bool is_hex(unsigned char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* \xHH: exactly two hex digits not followed by a third (ARE reads any number), not 0. */
static int rv_hex(struct rv *v, size_t at, uint32_t *cp)
{
    const char *s = v->s;

    if (at + 3 < v->n && is_hex((unsigned char)s[at + 2]) && is_hex((unsigned char)s[at + 3]) &&
        (at + 4 >= v->n || !is_hex((unsigned char)s[at + 4]))) {
        uint32_t x = (uint32_t)(sl_hexval((unsigned char)s[at + 2]) * 16 +
                                sl_hexval((unsigned char)s[at + 3]));
        if (x == 0)
            return rv_fail(v, at, 4, "NUL in regex");
        *cp = x;
        return 0;
    }
    return rv_fail(v, at, 2, "\\x needs exactly two hex digits in a regex");
}

static const char *const posix_classes[] = {"alnum", "alpha",  "blank", "cntrl", "digit",
                                            "graph", "lower",  "print", "punct", "space",
                                            "upper", "xdigit", NULL};

/* A bracket expression at v->i ('['). */
static int rv_bracket(struct rv *v)
{
    size_t start = v->i, i = v->i + 1;
    bool first = true, after_range = false;
    uint32_t prev = 0;
    int rc;

    if (i < v->n && v->s[i] == '^')
        i++;
    for (;;) {
        uint32_t cp = 0;
        bool single = true;
        size_t at = i, k;

        if (i >= v->n)
            return rv_fail(v, start, 0, "unterminated bracket expression in regex");
        if (v->s[i] == ']' && !first)
            break;
        first = false;
        if (v->s[i] == '[' && i + 1 < v->n &&
            (v->s[i + 1] == ':' || v->s[i + 1] == '.' || v->s[i + 1] == '=')) {
            if (v->s[i + 1] != ':')
                return rv_fail(v, i, 2, "collating elements are not supported in a regex");
            k = i + 2;
            while (k < v->n && is_alpha((unsigned char)v->s[k]))
                k++;
            if (k + 1 >= v->n || v->s[k] != ':' || v->s[k + 1] != ']')
                return rv_fail(v, i, 2, "unsupported character class in regex");
            {
                bool ok = false;
                for (size_t c = 0; posix_classes[c] != NULL; c++)
                    if (strlen(posix_classes[c]) == k - i - 2 &&
                        memcmp(posix_classes[c], v->s + i + 2, k - i - 2) == 0)
                        ok = true;
                if (!ok)
                    return rv_fail(v, i, k + 2 - i, "unsupported character class in regex");
            }
            i = k + 2;
            single = false;
        } else if (v->s[i] == '\\') {
            unsigned char c = i + 1 < v->n ? (unsigned char)v->s[i + 1] : 0;
            if (c == 0)
                return rv_fail(v, i, 1, "regex ends with a backslash");
            if (c >= 0x80)
                return rv_fail(v, i, 2, "unsupported regex escape");
            if (!is_alnum(c)) {
                cp = c;
                i += 2;
            } else if (c == 'd' || c == 's' || c == 'w') {
                single = false;
                i += 2;
            } else if (c == 't' || c == 'n' || c == 'r' || c == 'f') {
                cp = c == 't' ? '\t' : c == 'n' ? '\n' : c == 'r' ? '\r' : '\f';
                i += 2;
            } else if (c == 'x') {
                if ((rc = rv_hex(v, i, &cp)) != 0)
                    return rc;
                i += 4;
            } else {
                return rv_fail(v, i, 2, "unsupported regex escape");
            }
        } else {
            size_t l = utf8_len((const unsigned char *)v->s + i, v->n - i, &cp);
            if (l == 0)
                return rv_fail(v, i, 1, "invalid UTF-8");
            i += l;
        }
        /* ranges: a-z; a '-' first, last or right after '[' is literal */
        if (after_range) {
            if (!single)
                return rv_fail(v, at, i - at, "invalid character range in regex");
            if (cp < prev)
                return rv_fail(v, at, i - at, "invalid character range in regex");
            after_range = false;
            /* "a-c-e": PostgreSQL refuses a '-' right after a range */
            if (i < v->n && v->s[i] == '-' && i + 1 < v->n && v->s[i + 1] != ']')
                return rv_fail(v, i, 1, "invalid character range in regex");
            continue;
        }
        if (single && i + 1 < v->n && v->s[i] == '-' && v->s[i + 1] != ']') {
            prev = cp;
            after_range = true;
            i++;
            continue;
        }
        if (!single && i + 1 < v->n && v->s[i] == '-' && v->s[i + 1] != ']')
            return rv_fail(v, i, 1, "invalid character range in regex");
    }
    i++; /* ']' */
    rc = sl_buf_add(v->out, v->s + start, i - start);
    v->i = i;
    return rc;
}

struct rv_group {
    bool lookaround;
    bool counted; /* holds a counted repetition */
    size_t start; /* output offset of the group, for the atom size */
};

static int rv_run(struct rv *v)
{
    struct rv_group g[RV_MAX_GROUPS + 1];
    size_t depth = 0;
    enum atom last = A_NONE;
    bool last_counted = false; /* the last atom (a group) holds a counted repetition */
    bool quantified = false;
    size_t atom_out = 0; /* output offset where the last atom starts */
    size_t weight = 0;
    int rc = 0;

    g[0].lookaround = false;
    g[0].counted = false;
    g[0].start = 0;
    while (v->i < v->n && rc == 0) {
        size_t at = v->i, here = v->out->len;
        unsigned char c = (unsigned char)v->s[at];

        switch (c) {
        case '\\': {
            unsigned char e = at + 1 < v->n ? (unsigned char)v->s[at + 1] : 0;
            uint32_t cp;
            if (e == 0)
                return rv_fail(v, at, 1, "regex ends with a backslash");
            if (e >= 0x80)
                return rv_fail(v, at, 2, "unsupported regex escape");
            if (!is_alnum(e) || strchr("dDsSwWtnrf", e) != NULL) {
                rc = sl_buf_add(v->out, v->s + at, 2);
                v->i += 2;
                last = A_ATOM;
            } else if (e == 'x') {
                if ((rc = rv_hex(v, at, &cp)) != 0)
                    return rc;
                rc = sl_buf_add(v->out, v->s + at, 4);
                v->i += 4;
                last = A_ATOM;
            } else if (e == 'b' || e == 'B' || e == 'A' || e == 'Z' || e == 'z') {
                /* PCRE's \b \B \z are ARE's \y \Y \Z (ARE's \b is a backspace) */
                const char *t = e == 'b' ? "\\y" : e == 'B' ? "\\Y" : e == 'A' ? "\\A" : "\\Z";
                rc = sl_buf_add(v->out, t, 2);
                v->i += 2;
                last = A_ASSERT;
            } else if (is_digit(e)) {
                return rv_fail(v, at, 2, "back references are not supported in a regex");
            } else {
                return rv_fail(v, at, 2, "unsupported regex escape");
            }
            last_counted = false;
            quantified = false;
            atom_out = here;
            break;
        }
        case '[':
            rc = rv_bracket(v);
            last = A_ATOM;
            last_counted = false;
            quantified = false;
            atom_out = here;
            break;
        case '(': {
            bool look = false;
            size_t skip = 1;
            if (at + 1 < v->n && v->s[at + 1] == '?') {
                const char *r = v->s + at + 2;
                size_t left = v->n - at - 2;
                if (left >= 1 && (r[0] == ':' || r[0] == '=' || r[0] == '!')) {
                    look = r[0] != ':';
                    skip = 3;
                } else if (left >= 2 && r[0] == '<' && (r[1] == '=' || r[1] == '!')) {
                    look = true;
                    skip = 4;
                } else {
                    return rv_fail(v, at, 2, "unsupported regex group");
                }
            }
            if (depth >= RV_MAX_GROUPS)
                return rv_fail(v, at, 1, "regex nesting too deep");
            if (look)
                for (size_t k = 0; k <= depth; k++)
                    if (g[k].lookaround)
                        return rv_fail(v, at, skip, "nested lookaround in a regex");
            depth++;
            g[depth].lookaround = look;
            g[depth].counted = false;
            g[depth].start = here;
            rc = sl_buf_add(v->out, v->s + at, skip);
            v->i += skip;
            last = A_NONE;
            break;
        }
        case ')':
            if (depth == 0)
                return rv_fail(v, at, 1, "unbalanced parenthesis in regex");
            rc = sl_buf_addc(v->out, ')');
            v->i++;
            last = g[depth].lookaround ? A_ASSERT : A_ATOM;
            last_counted = g[depth].counted;
            atom_out = g[depth].start;
            depth--;
            g[depth].counted = g[depth].counted || last_counted;
            quantified = false;
            break;
        case '|':
            rc = sl_buf_addc(v->out, '|');
            v->i++;
            last = A_NONE;
            break;
        case '^':
        case '$':
            rc = sl_buf_addc(v->out, (char)c);
            v->i++;
            last = A_ASSERT;
            break;
        case '*':
        case '+':
        case '?':
        case '{': {
            size_t q = at + 1;
            unsigned long lo = 0, hi = 0;
            bool counted = c == '{';
            if (counted) {
                size_t d = q;
                while (q < v->n && is_digit((unsigned char)v->s[q]) && q - d < 4)
                    lo = lo * 10 + (unsigned long)(v->s[q++] - '0');
                if (q == d)
                    return rv_fail(v, at, 1, "a literal { must be escaped (\\{) in a regex");
                hi = lo;
                if (q < v->n && v->s[q] == ',') {
                    size_t e;
                    q++;
                    e = q;
                    hi = 0;
                    while (q < v->n && is_digit((unsigned char)v->s[q]) && q - e < 4)
                        hi = hi * 10 + (unsigned long)(v->s[q++] - '0');
                    if (q == e)
                        hi = lo; /* {m,}: unbounded, weighs m */
                }
                if (q >= v->n || v->s[q] != '}' || lo > 255 || hi > 255 || hi < lo)
                    return rv_fail(v, at, q - at + (q < v->n), "invalid repetition count in regex");
                q++;
            }
            if (last != A_ATOM || quantified)
                return rv_fail(v, at, q - at,
                               last == A_ATOM ? "double quantifier in regex"
                                              : "quantifier without operand in regex");
            if (counted) {
                size_t atom = here - atom_out;
                if (last_counted)
                    return rv_fail(v, at, q - at, "nested counted repetition in regex");
                weight += (size_t)hi * (atom ? atom : 1);
                if (weight > RV_MAX_WEIGHT)
                    return rv_fail(v, at, q - at, "regex too complex");
                g[depth].counted = true;
            }
            if (q < v->n && v->s[q] == '?') /* lazy: same truth value */
                q++;
            if (q < v->n && strchr("*+?{", v->s[q]) != NULL)
                return rv_fail(v, q, 1, "double quantifier in regex");
            rc = sl_buf_add(v->out, v->s + at, q - at);
            v->i = q;
            quantified = true;
            break;
        }
        default: {
            uint32_t cp;
            size_t l = utf8_len((const unsigned char *)v->s + at, v->n - at, &cp);
            if (l == 0)
                return rv_fail(v, at, 1, "invalid UTF-8");
            rc = sl_buf_add(v->out, v->s + at, l);
            v->i += l;
            last = A_ATOM;
            last_counted = false;
            quantified = false;
            atom_out = here;
            break;
        }
        }
    }
    if (rc != 0)
        return rc;
    if (depth != 0)
        return rv_fail(v, v->n, 0, "unbalanced parenthesis in regex");
    return 0;
}

/* ------------------------------------------------------------------ terms */

/* The number of nd->val (n bytes), with an optional unit; cuts the unit off nd->val. */
static int parse_number(struct parser *p, size_t n, size_t pos, struct node *nd)
{
    const char *v = nd->val;
    size_t i = 0, d;

    if (i < n && v[i] == '-')
        i++;
    d = i;
    while (i < n && is_digit((unsigned char)v[i]))
        i++;
    if (i == d)
        return fail(p, SL_EPARSE, pos, n, "expected a number");
    if (i - d > NUM_DIGITS_MAX)
        return fail(p, SL_EPARSE, pos, n, "number too long");
    if (i < n && v[i] == '.') {
        size_t f = ++i;
        while (i < n && is_digit((unsigned char)v[i]))
            i++;
        if (i == f)
            return fail(p, SL_EPARSE, pos, n, "expected a number");
        if (i - f > NUM_DIGITS_MAX)
            return fail(p, SL_EPARSE, pos, n, "number too long");
    }
    nd->dim = D_NONE;
    if (i < n) {
        int u;
        for (u = 0; units[u].name != NULL; u++)
            if (ieq(v + i, n - i, units[u].name))
                break;
        if (units[u].name == NULL)
            return fail(p, SL_EPARSE, pos + i, n - i, "unknown unit");
        nd->dim = units[u].dim;
        nd->unit = u;
    }
    nd->numeric = true;
    nd->vlen = i; /* v is nd->val: keep the number, drop the unit */
    nd->val[i] = '\0';
    return 0;
}

static bool looks_numeric(const char *v, size_t n)
{
    size_t i = 0;

    if (i < n && v[i] == '-')
        i++;
    return i < n && is_digit((unsigned char)v[i]);
}

static int lookup_num(const struct name_num *t, int max, const char *v, size_t n, int64_t *out)
{
    if (n > 0 && n <= 2 && is_digit((unsigned char)v[0]) &&
        (n == 1 || is_digit((unsigned char)v[1]))) {
        int x = n == 1 ? v[0] - '0' : (v[0] - '0') * 10 + (v[1] - '0');
        if (x <= max && !(n == 2 && v[0] == '0')) {
            *out = x;
            return 0;
        }
        return -1;
    }
    for (; t->name != NULL; t++)
        if (ieq(v, n, t->name)) {
            *out = t->num;
            return 0;
        }
    return -1;
}

static int add_source(struct sl_query *q, const char *name, size_t *idx)
{
    char **s;

    for (size_t i = 0; i < q->nsrc; i++)
        if (strcmp(q->src[i], name) == 0) {
            *idx = i;
            return 0;
        }
    s = realloc(q->src, (q->nsrc + 1) * sizeof(*s));
    if (s == NULL)
        return SL_ENOMEM;
    q->src = s;
    q->src[q->nsrc] = dup_n(name, strlen(name));
    if (q->src[q->nsrc] == NULL)
        return SL_ENOMEM;
    *idx = q->nsrc++;
    return 0;
}

static bool has_glob(const char *v, size_t n)
{
    return memchr(v, '*', n) != NULL || memchr(v, '?', n) != NULL;
}

/* key:[op]value at p->i; keylen bytes of key, then ':'. */
static int parse_attr(struct parser *p, size_t keylen, struct node **out)
{
    const char *key = p->s + p->i;
    size_t start = p->i, i = p->i + keylen + 1, vpos;
    bool has_op = false, quoted = false;
    enum cmp op = C_EQ;
    char *val = NULL;
    size_t vlen = 0;
    struct node *nd = NULL;
    enum nkind kind;
    int rc;

    if (i + 1 < p->len && (p->s[i] == '>' || p->s[i] == '<' || p->s[i] == '!') &&
        p->s[i + 1] == '=') {
        op = p->s[i] == '>' ? C_GE : p->s[i] == '<' ? C_LE : C_NE;
        i += 2;
        has_op = true;
    } else if (i < p->len && (p->s[i] == '>' || p->s[i] == '<' || p->s[i] == '=')) {
        op = p->s[i] == '>' ? C_GT : p->s[i] == '<' ? C_LT : C_EQ;
        i++;
        has_op = true;
    }
    vpos = i;
    if (i < p->len && p->s[i] == '(')
        return fail(p, SL_EPARSE, i, 0, "attribute groups are not supported");
    if (i < p->len && (p->s[i] == '"' || p->s[i] == '\'')) {
        p->i = i;
        if ((rc = read_quoted(p, &val, &vlen)) != 0)
            return rc;
        quoted = true;
        vpos = i + 1;
    } else {
        while (!at_delim(p, i))
            i++;
        vlen = i - vpos;
        p->i = i;
    }

#define KEY(k) (keylen == sizeof(k) - 1 && memcmp(key, k, keylen) == 0)
    if (KEY("source"))
        kind = N_SOURCE;
    else if (KEY("app"))
        kind = N_APP;
    else if (KEY("program") || KEY("proc"))
        kind = N_PROC;
    else if (KEY("host") || KEY("sender"))
        kind = N_HOST;
    else if (KEY("severity"))
        kind = N_SEVERITY;
    else if (KEY("facility"))
        kind = N_FACILITY;
    else if (KEY("message"))
        kind = N_MESSAGE;
    else
        kind = N_FIELD;
#undef KEY

    if (!quoted && vlen == 0) {
        if (!has_op && kind == N_FIELD) {
            *out = NULL; /* "KeyError:" is a word */
            p->i = start;
            return 1;
        }
        return fail(p, SL_EPARSE, vpos, 0, "missing value");
    }
    if (!quoted && (val = dup_n(p->s + vpos, vlen)) == NULL)
        return SL_ENOMEM;
    if ((rc = count_term(p, start)) != 0)
        goto out;
    rc = SL_ENOMEM;
    if ((nd = node_new(kind)) == NULL)
        goto out;
    nd->op = op;
    nd->val = val;
    nd->vlen = vlen;
    val = NULL;
    switch (kind) {
    case N_SOURCE:
    case N_APP:
    case N_PROC:
    case N_HOST:
        if (op != C_EQ && op != C_NE) {
            rc = fail(p, SL_EPARSE, start + keylen + 1, vpos - start - keylen - 1,
                      "operator not allowed here");
            goto out;
        }
        nd->glob = has_glob(nd->val, nd->vlen);
        if (kind == N_SOURCE) {
            bool ok = nd->vlen > 0 && nd->vlen <= 64;
            for (size_t k = 0; k < nd->vlen; k++) {
                unsigned char c = (unsigned char)nd->val[k];
                if (!is_alnum(c) && c != '.' && c != '_' && c != '-' && c != '*' && c != '?')
                    ok = false;
            }
            if (!ok) {
                rc = fail(p, SL_EPARSE, vpos, quoted ? 0 : vlen, "invalid source name");
                goto out;
            }
            if ((rc = add_source(p->q, nd->val, &nd->src)) != 0)
                goto out;
        }
        break;
    case N_MESSAGE:
        if (has_op && op != C_EQ) {
            rc = fail(p, SL_EPARSE, start + keylen + 1, vpos - start - keylen - 1,
                      "operator not allowed here");
            goto out;
        }
        if (nd->vlen == 0) {
            rc = fail(p, SL_EPARSE, vpos, 0, "empty phrase");
            goto out;
        }
        break;
    case N_SEVERITY:
        if (lookup_num(severities, 7, nd->val, nd->vlen, &nd->num) != 0) {
            rc = fail(p, SL_EPARSE, vpos, nd->vlen, "unknown severity");
            goto out;
        }
        break;
    case N_FACILITY:
        if (lookup_num(facilities, 23, nd->val, nd->vlen, &nd->num) != 0) {
            rc = fail(p, SL_EPARSE, vpos, nd->vlen, "unknown facility");
            goto out;
        }
        break;
    default: /* N_FIELD */
        if ((nd->key = dup_n(key, keylen)) == NULL)
            goto out;
        if (op != C_EQ && op != C_NE) {
            if ((rc = parse_number(p, nd->vlen, vpos, nd)) != 0)
                goto out;
        } else if (has_op && looks_numeric(nd->val, nd->vlen)) {
            if ((rc = parse_number(p, nd->vlen, vpos, nd)) != 0)
                goto out;
        } else {
            nd->glob = has_glob(nd->val, nd->vlen);
        }
        break;
    }
    *out = nd;
    nd = NULL;
    rc = 0;
out:
    free(val);
    node_free(nd);
    return rc;
}

/* Key of an attribute at p->i: [A-Za-z_][A-Za-z0-9_.#-]* then ':'. Returns its length,
 * 0 if there is none. */
static size_t attr_key(const struct parser *p)
{
    size_t i = p->i;

    if (i >= p->len || !(is_alpha((unsigned char)p->s[i]) || p->s[i] == '_'))
        return 0;
    while (i < p->len && i - p->i < 64 &&
           (is_alnum((unsigned char)p->s[i]) || strchr("_.#-", p->s[i]) != NULL))
        i++;
    return i < p->len && p->s[i] == ':' ? i - p->i : 0;
}

static int parse_or(struct parser *p, struct node **out);

static int parse_regex(struct parser *p, size_t close, bool icase, struct node **out)
{
    size_t start = p->i;
    struct sl_buf re;
    struct rv v;
    struct node *nd = NULL;
    int rc;

    if (close == start + 1)
        return fail(p, SL_EPARSE, start, 0, "empty regex");
    if ((rc = count_term(p, start)) != 0)
        return rc;
    sl_buf_init(&re, 4 * SL_QUERY_MAX_LEN);
    v.p = p;
    v.s = p->s + start + 1;
    v.n = close - start - 1;
    v.i = 0;
    v.base = start + 1;
    v.out = &re;
    if ((rc = rv_run(&v)) != 0)
        goto out;
    rc = SL_ENOMEM;
    if ((nd = node_new(N_REGEX)) == NULL)
        goto out;
    nd->icase = icase;
    if ((nd->val = dup_n(v.s, v.n)) == NULL || (nd->re = dup_n(re.p ? re.p : "", re.len)) == NULL)
        goto out;
    nd->vlen = v.n;
    p->i = close + 1 + (icase ? 1 : 0);
    *out = nd;
    nd = NULL;
    rc = 0;
out:
    node_free(nd);
    sl_buf_free(&re);
    return rc;
}

static int parse_primary(struct parser *p, struct node **out)
{
    size_t start = p->i;
    char c = p->s[start];
    struct node *nd;
    int rc;

    if (c == '(') {
        if (++p->depth > SL_QUERY_MAX_DEPTH)
            return fail(p, SL_ETOOBIG, start, 0, "nesting too deep");
        p->i++;
        skip_ws(p);
        if (p->i < p->len && p->s[p->i] == ')')
            return fail(p, SL_EPARSE, start, 0, "empty parentheses");
        if ((rc = parse_or(p, out)) != 0)
            return rc;
        if (p->i >= p->len || p->s[p->i] != ')') {
            node_free(*out);
            *out = NULL;
            return fail(p, SL_EPARSE, start, 0, "unbalanced parenthesis");
        }
        p->i++;
        p->depth--;
        return 0;
    }
    if (c == ')')
        return fail(p, SL_EPARSE, start, 0, "unbalanced parenthesis");
    if (c == '"' || c == '\'') {
        char *val;
        size_t vlen;
        if ((rc = read_quoted(p, &val, &vlen)) != 0)
            return rc;
        if (vlen == 0) {
            free(val);
            return fail(p, SL_EPARSE, start, 0, "empty phrase");
        }
        if ((rc = count_term(p, start)) != 0 || (nd = node_new(N_PHRASE)) == NULL) {
            free(val);
            return rc ? rc : SL_ENOMEM;
        }
        nd->val = val;
        nd->vlen = vlen;
        *out = nd;
        return 0;
    }
    if (c == '/') {
        /* a regex if the first unescaped '/' is followed by [i] and a delimiter */
        size_t j = start + 1;
        while (j < p->len && p->s[j] != '/')
            j += p->s[j] == '\\' ? 2 : 1;
        if (j < p->len) {
            bool icase = j + 1 < p->len && p->s[j + 1] == 'i';
            if (at_delim(p, j + 1 + (icase ? 1 : 0)))
                return parse_regex(p, j, icase, out);
        }
    } else {
        size_t klen = attr_key(p);
        if (klen > 0) {
            rc = parse_attr(p, klen, out);
            if (rc <= 0)
                return rc;
            /* 1: not an attribute after all, read a word */
        }
    }
    {
        size_t i = start;
        while (!at_delim(p, i))
            i++;
        if ((rc = count_term(p, start)) != 0)
            return rc;
        if ((nd = node_new(N_WORD)) == NULL || (nd->val = dup_n(p->s + start, i - start)) == NULL) {
            node_free(nd);
            return SL_ENOMEM;
        }
        nd->vlen = i - start;
        p->i = i;
        *out = nd;
        return 0;
    }
}

static int parse_unary(struct parser *p, struct node **out)
{
    size_t start = p->i;
    bool neg = false;

    if (p->s[start] == '-') {
        if (at_delim(p, start + 1) && !(start + 1 < p->len && p->s[start + 1] == '('))
            return fail(p, SL_EPARSE, start, 0, "nothing to negate");
        neg = true;
        p->i++;
    } else if (keyword(p, "NOT")) {
        p->i += 3;
        skip_ws(p);
        if (p->i >= p->len || p->s[p->i] == ')' || keyword(p, "OR") || keyword(p, "AND"))
            return fail(p, SL_EPARSE, start, 0, "nothing to negate");
        neg = true;
    }
    if (neg) {
        struct node *nd, *kid = NULL;
        int rc;
        if (++p->depth > SL_QUERY_MAX_DEPTH)
            return fail(p, SL_ETOOBIG, start, 0, "nesting too deep");
        if ((rc = parse_unary(p, &kid)) != 0)
            return rc;
        p->depth--;
        if ((nd = node_new(N_NOT)) == NULL || node_add(nd, kid) != 0) {
            node_free(nd);
            node_free(kid);
            return SL_ENOMEM;
        }
        *out = nd;
        return 0;
    }
    return parse_primary(p, out);
}

/* Wraps kids in an AND/OR node unless there is just one. */
static int parse_and(struct parser *p, struct node **out)
{
    struct node *all = NULL, *kid = NULL;
    int rc;

    *out = NULL;
    for (;;) {
        size_t at;
        skip_ws(p);
        at = p->i;
        if (p->i >= p->len || p->s[p->i] == ')' || keyword(p, "OR"))
            break;
        if (keyword(p, "AND")) {
            if (all == NULL && kid == NULL) {
                rc = fail(p, SL_EPARSE, at, 3, "AND needs a term before it");
                goto out;
            }
            p->i += 3;
            skip_ws(p);
            if (p->i >= p->len || p->s[p->i] == ')' || keyword(p, "OR") || keyword(p, "AND")) {
                rc = fail(p, SL_EPARSE, at, 3, "AND needs a term after it");
                goto out;
            }
        }
        if (kid != NULL) {
            if (all == NULL) {
                rc = SL_ENOMEM;
                if ((all = node_new(N_AND)) == NULL)
                    goto out;
            }
            if ((rc = node_add(all, kid)) != 0)
                goto out;
            kid = NULL;
        }
        if ((rc = parse_unary(p, &kid)) != 0)
            goto out;
    }
    if (all != NULL && kid != NULL) {
        if ((rc = node_add(all, kid)) != 0)
            goto out;
        kid = NULL;
    }
    *out = all != NULL ? all : kid;
    return 0;
out:
    node_free(all);
    node_free(kid);
    return rc;
}

static int parse_or(struct parser *p, struct node **out)
{
    struct node *all = NULL, *kid = NULL;
    size_t or_at = 0;
    int rc;

    *out = NULL;
    for (;;) {
        if ((rc = parse_and(p, &kid)) != 0)
            goto out;
        if (kid == NULL) {
            if (all != NULL) {
                /* after an OR: p->i is at the end, ')' or another OR */
                rc = fail(p, SL_EPARSE, or_at, 2, "OR needs a term after it");
                goto out;
            }
            if (keyword(p, "OR")) {
                rc = fail(p, SL_EPARSE, p->i, 2, "OR needs a term before it");
                goto out;
            }
            break; /* empty: the caller reports it */
        }
        if (!keyword(p, "OR")) {
            if (all == NULL) {
                *out = kid;
                return 0;
            }
            if ((rc = node_add(all, kid)) != 0)
                goto out;
            kid = NULL;
            break;
        }
        if (all == NULL) {
            rc = SL_ENOMEM;
            if ((all = node_new(N_OR)) == NULL)
                goto out;
        }
        if ((rc = node_add(all, kid)) != 0)
            goto out;
        kid = NULL;
        or_at = p->i;
        p->i += 2; /* OR */
    }
    *out = all;
    return 0;
out:
    node_free(all);
    node_free(kid);
    return rc;
}

int sl_query_parse(const char *text, size_t len, struct sl_query **out, struct sl_query_err *err)
{
    struct parser p;
    struct sl_query *q;
    int rc;

    *out = NULL;
    memset(&p, 0, sizeof(p));
    p.s = text;
    p.len = len;
    p.err = err;
    if (len > SL_QUERY_MAX_LEN)
        return fail(&p, SL_ETOOBIG, SL_QUERY_MAX_LEN, 0, "query too long");
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)text[i];
        uint32_t cp;
        size_t l;
        if (c == 0)
            return fail(&p, SL_EPARSE, i, 0, "NUL byte");
        if ((c < 0x20 && !is_ws(c)) || c == 0x7f)
            return fail(&p, SL_EPARSE, i, 0, "control character");
        if ((l = utf8_len((const unsigned char *)text + i, len - i, &cp)) == 0)
            return fail(&p, SL_EPARSE, i, 0, "invalid UTF-8");
        i += l;
    }
    if ((q = calloc(1, sizeof(*q))) == NULL)
        return SL_ENOMEM;
    p.q = q;
    skip_ws(&p);
    if (p.i >= len) {
        rc = fail(&p, SL_EPARSE, 0, 0, "empty query");
        goto out;
    }
    if ((rc = parse_or(&p, &q->root)) != 0)
        goto out;
    if (p.i < len) { /* only a ')' stops the top level early */
        rc = fail(&p, SL_EPARSE, p.i, 0, "unbalanced parenthesis");
        goto out;
    }
    if (q->root == NULL) {
        rc = fail(&p, SL_EPARSE, 0, 0, "empty query");
        goto out;
    }
    *out = q;
    return 0;
out:
    sl_query_free(q);
    return rc;
}

size_t sl_query_errfmt(const struct sl_query_err *e, const char *text, size_t len, char *out,
                       size_t cap)
{
    size_t n = e->len, w = 0;
    int k;

    if (cap == 0)
        return 0;
    if (e->pos > len || n > len - e->pos)
        n = 0;
    if (n > 64) {
        n = 64;
        while (n > 0 && ((unsigned char)text[e->pos + n] & 0xc0) == 0x80)
            n--;
    }
    if (n > 0)
        k = snprintf(out, cap, "%s '%.*s' at %zu", e->reason, (int)n, text + e->pos, e->pos);
    else
        k = snprintf(out, cap, "%s at %zu", e->reason, e->pos);
    if (k > 0)
        w = (size_t)k < cap ? (size_t)k : cap - 1;
    return w;
}

size_t sl_query_sources(const struct sl_query *q, const char **names, size_t max)
{
    for (size_t i = 0; i < q->nsrc && i < max; i++)
        names[i] = q->src[i];
    return q->nsrc;
}

/* ------------------------------------------------------------------ SQL */

void sl_query_params_init(struct sl_query_params *p)
{
    p->v = NULL;
    p->n = 0;
    p->cap = 0;
}

void sl_query_params_free(struct sl_query_params *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->n; i++)
        free(p->v[i]);
    free(p->v);
    sl_query_params_init(p);
}

struct gen {
    struct sl_buf *sql;
    struct sl_query_params *par;
    int next;
    const struct sl_query_ids *src;
    size_t nsrc;
};

/* Appends $n to the SQL and value to the parameters. */
static int param(struct gen *g, const char *v, size_t n)
{
    char *s;
    int rc;

    if (g->next >= 65535)
        return SL_ETOOBIG; /* the protocol's limit */
    if (g->par->n == g->par->cap) {
        size_t cap = g->par->cap ? g->par->cap * 2 : 8;
        char **a = realloc(g->par->v, cap * sizeof(*a));
        if (a == NULL)
            return SL_ENOMEM;
        g->par->v = a;
        g->par->cap = cap;
    }
    if ((s = dup_n(v, n)) == NULL)
        return SL_ENOMEM;
    if ((rc = sl_buf_addf(g->sql, "$%d", g->next)) != 0) {
        free(s);
        return rc;
    }
    g->par->v[g->par->n++] = s;
    g->next++;
    return 0;
}

static int param_buf(struct gen *g, struct sl_buf *b)
{
    return param(g, b->p ? b->p : "", b->len);
}

/* A parameter the caller refers to by number (g->next before the call) later, maybe more
 * than once: nothing is written to the SQL. */
static int param_only(struct gen *g, struct sl_buf *b)
{
    size_t len = g->sql->len;
    int rc = param_buf(g, b);

    g->sql->len = len; /* drop the "$n" param() wrote */
    return rc;
}

static int param_only_s(struct gen *g, const char *v)
{
    size_t len = g->sql->len;
    int rc = param(g, v, strlen(v));

    g->sql->len = len;
    return rc;
}

static int add_s(struct gen *g, const char *s)
{
    return sl_buf_add(g->sql, s, strlen(s));
}

/* One byte of literal text in an ARE. */
static int re_lit(struct sl_buf *b, unsigned char c, bool icase)
{
    if (icase && is_alpha(c)) {
        char cls[4] = {'[', (char)lower(c), (char)(lower(c) - 32), ']'};
        return sl_buf_add(b, cls, 4);
    }
    if (c < 0x80 && strchr("\\^$.|?*+()[]{}", c) != NULL && c != '\0') {
        int rc = sl_buf_addc(b, '\\');
        return rc ? rc : sl_buf_addc(b, (char)c);
    }
    return sl_buf_addc(b, (char)c);
}

static int re_lits(struct sl_buf *b, const char *s, size_t n, bool icase)
{
    int rc = 0;

    for (size_t i = 0; i < n && rc == 0; i++)
        rc = re_lit(b, (unsigned char)s[i], icase);
    return rc;
}

/* A word or phrase: its text at token boundaries, ASCII case-insensitive. */
static int re_word(struct sl_buf *b, const char *s, size_t n)
{
    int rc = 0;

    if (is_tok((unsigned char)s[0]))
        rc = sl_buf_add(b, "(?:^|" RE_NW ")", strlen("(?:^|" RE_NW ")"));
    if (rc == 0)
        rc = re_lits(b, s, n, true);
    if (rc == 0 && is_tok((unsigned char)s[n - 1]))
        rc = sl_buf_add(b, "(?:" RE_NW "|$)", strlen("(?:" RE_NW "|$)"));
    return rc;
}

/* A logfmt value, unquoted (quoted false) or as it is written between quotes (\" \\),
 * with * and ? as wildcards when glob. */
static int re_fval(struct sl_buf *b, const char *v, size_t n, bool quoted, bool glob)
{
    int rc = 0;

    for (size_t i = 0; i < n && rc == 0; i++) {
        unsigned char c = (unsigned char)v[i];
        if (glob && (c == '*' || c == '?')) {
            const char *w = quoted ? (c == '*' ? "(?:[^\"\\\\]|\\\\.)*" : "(?:[^\"\\\\]|\\\\.)")
                                   : (c == '*' ? "[^\\x01-\\x20]*" : "[^\\x01-\\x20]");
            rc = sl_buf_add(b, w, strlen(w));
        } else if (quoted && (c == '"' || c == '\\')) {
            rc = sl_buf_add(b, "\\\\", 2);
            if (rc == 0)
                rc = re_lit(b, c, false);
        } else {
            rc = re_lit(b, c, false);
        }
    }
    return rc;
}

static int re_key(struct sl_buf *b, const char *key)
{
    int rc = sl_buf_add(b, "(?:^|" RE_SEP ")", strlen("(?:^|" RE_SEP ")"));

    if (rc == 0)
        rc = re_lits(b, key, strlen(key), false);
    if (rc == 0)
        rc = sl_buf_addc(b, '=');
    return rc;
}

/* key=value or key="value" (ne: key= followed by anything else). */
static int re_field_text(struct sl_buf *b, const struct node *nd)
{
    bool unq = nd->vlen == 0 || nd->val[0] != '"';
    int rc;

    for (size_t i = 0; i < nd->vlen; i++)
        if ((unsigned char)nd->val[i] <= ' ')
            unq = false;
    rc = re_key(b, nd->key);
    if (rc == 0)
        rc = sl_buf_add(b, nd->op == C_NE ? "(?!(?:" : "(?:", nd->op == C_NE ? 6 : 3);
    if (rc == 0 && unq) {
        rc = re_fval(b, nd->val, nd->vlen, false, nd->glob);
        if (rc == 0)
            rc = sl_buf_addc(b, '|');
    }
    if (rc == 0)
        rc = sl_buf_addc(b, '"');
    if (rc == 0)
        rc = re_fval(b, nd->val, nd->vlen, true, nd->glob);
    if (rc == 0)
        rc = sl_buf_add(b, "\")(?:" RE_SEP "|$)", strlen("\")(?:" RE_SEP "|$)"));
    if (rc == 0 && nd->op == C_NE)
        rc = sl_buf_addc(b, ')');
    return rc;
}

static bool may_null(const struct node *nd)
{
    switch (nd->kind) {
    case N_APP:
    case N_PROC:
    case N_HOST:
    case N_SEVERITY:
    case N_FACILITY:
        return true;
    case N_FIELD:
        return nd->numeric;
    case N_AND:
    case N_OR:
        for (size_t i = 0; i < nd->nkid; i++)
            if (may_null(nd->kid[i]))
                return true;
        return false;
    default:
        return false;
    }
}

static int gen_node(struct gen *g, const struct node *nd);

/* A logfmt number, compared as numeric. The value is cut out with split_part (the text
 * after the first " key=", up to the next space) and only a value the regex $R accepts
 * is cast, so the cast never raises. Measured on PostgreSQL 15, 500k router lines:
 * 1.7 s against 7.3 s for substring(l.message from <capturing regex>), whose capture
 * phase dominates. Keys are found after a space or at the start of the line (not after
 * a tab). $K and $L are used several times: placeholders may repeat. */
#define FV "split_part(split_part(chr(32) || l.message, $%d, 2), chr(32), 1)"

static int gen_field_num(struct gen *g, const struct node *nd)
{
    struct sl_buf b;
    int k, l = 0, rc;

    sl_buf_init(&b, 4 * SL_QUERY_MAX_LEN);
    rc = sl_buf_addf(&b, " %s=", nd->key);
    k = g->next;
    if (rc == 0)
        rc = param_only(g, &b);
    if (rc == 0 && nd->dim == D_NONE) {
        int r = g->next;
        sl_buf_reset(&b);
        rc = sl_buf_add(&b, "^\"?" RE_NUMV "\"?$", strlen("^\"?" RE_NUMV "\"?$"));
        if (rc == 0)
            rc = param_only(g, &b);
        if (rc == 0)
            rc = sl_buf_addf(
                g->sql, "CASE WHEN " FV " ~ $%d THEN btrim(" FV ", chr(34))::numeric END", k, r, k);
    } else if (rc == 0) {
        const struct unit_alt *alts = nd->dim == D_TIME ? time_alts : byte_alts;
        const char *letters = nd->dim == D_TIME ? "usmUSM" : "bytesgkmBYTESGKM";
        l = g->next;
        rc = param_only_s(g, letters);
        if (rc == 0)
            rc = add_s(g, "COALESCE(");
        for (int a = 0; rc == 0 && alts[a].re != NULL; a++) {
            int r = g->next;
            bool base = strcmp(alts[a].factor, "1") == 0;
            sl_buf_reset(&b);
            rc = sl_buf_addf(&b, base ? "^\"?%s(?:%s)?\"?$" : "^\"?%s%s\"?$", RE_NUMV, alts[a].re);
            if (rc == 0)
                rc = param_only(g, &b);
            if (rc == 0)
                rc = sl_buf_addf(g->sql,
                                 "%sCASE WHEN " FV " ~ $%d THEN rtrim(btrim(" FV
                                 ", chr(34)), $%d)::numeric%s%s END",
                                 a > 0 ? ", " : "", k, r, k, l, base ? "" : " * ",
                                 base ? "" : alts[a].factor);
        }
        if (rc == 0)
            rc = sl_buf_addc(g->sql, ')');
    }
    if (rc == 0)
        rc = sl_buf_addf(g->sql, " %s ", cmp_sql[nd->op]);
    if (rc == 0)
        rc = param(g, nd->val, nd->vlen);
    if (rc == 0)
        rc = add_s(g, "::numeric");
    if (rc == 0 && nd->dim != D_NONE && strcmp(units[nd->unit].factor, "1") != 0)
        rc = sl_buf_addf(g->sql, " * %s", units[nd->unit].factor);
    sl_buf_free(&b);
    return rc;
}

/* app/proc/host: = or LIKE (glob * ? to % _, escaping \ % _ with PostgreSQL's default
 * LIKE escape, the backslash: no ESCAPE clause, so no string literal in the SQL). */
static int gen_col(struct gen *g, const struct node *nd, const char *col)
{
    struct sl_buf b;
    int rc;

    if (!nd->glob) {
        rc = sl_buf_addf(g->sql, "%s %s ", col, nd->op == C_EQ ? "=" : "<>");
        return rc ? rc : param(g, nd->val, nd->vlen);
    }
    sl_buf_init(&b, 2 * SL_QUERY_MAX_LEN);
    rc = sl_buf_addf(g->sql, "%s %s ", col, nd->op == C_EQ ? "LIKE" : "NOT LIKE");
    for (size_t i = 0; i < nd->vlen && rc == 0; i++) {
        char c = nd->val[i];
        if (c == '*')
            rc = sl_buf_addc(&b, '%');
        else if (c == '?')
            rc = sl_buf_addc(&b, '_');
        else if (c == '%' || c == '_' || c == '\\')
            rc = sl_buf_add(&b, (const char[]){'\\', c}, 2);
        else
            rc = sl_buf_addc(&b, c);
    }
    if (rc == 0)
        rc = param_buf(g, &b);
    sl_buf_free(&b);
    return rc;
}

static int gen_source(struct gen *g, const struct node *nd)
{
    const struct sl_query_ids *ids;
    bool eq = nd->op == C_EQ;
    char num[24];
    struct sl_buf b;
    int rc;

    if (nd->src >= g->nsrc || g->src == NULL)
        return SL_EINVAL;
    ids = &g->src[nd->src];
    if (ids->n == 0)
        return add_s(g, eq ? "FALSE" : "TRUE");
    if (ids->n == 1) {
        int k = snprintf(num, sizeof(num), "%lld", (long long)ids->ids[0]);
        rc = add_s(g, eq ? "l.source_id = " : "l.source_id <> ");
        return rc ? rc : param(g, num, (size_t)k);
    }
    sl_buf_init(&b, 32 * ids->n + 16);
    rc = add_s(g, eq ? "l.source_id = ANY (" : "l.source_id <> ALL (");
    if (rc == 0)
        rc = sl_buf_addc(&b, '{');
    for (size_t i = 0; i < ids->n && rc == 0; i++)
        rc = sl_buf_addf(&b, "%s%lld", i ? "," : "", (long long)ids->ids[i]);
    if (rc == 0)
        rc = sl_buf_addc(&b, '}');
    if (rc == 0)
        rc = param_buf(g, &b);
    if (rc == 0)
        rc = add_s(g, "::bigint[])");
    sl_buf_free(&b);
    return rc;
}

static int gen_node(struct gen *g, const struct node *nd)
{
    struct sl_buf b;
    int rc = 0;

    switch (nd->kind) {
    case N_AND:
    case N_OR:
        rc = sl_buf_addc(g->sql, '(');
        for (size_t i = 0; i < nd->nkid && rc == 0; i++) {
            if (i > 0)
                rc = add_s(g, nd->kind == N_AND ? " AND " : " OR ");
            if (rc == 0)
                rc = gen_node(g, nd->kid[i]);
        }
        return rc ? rc : sl_buf_addc(g->sql, ')');
    case N_NOT:
        if (may_null(nd->kid[0])) {
            rc = sl_buf_addc(g->sql, '(');
            if (rc == 0)
                rc = gen_node(g, nd->kid[0]);
            return rc ? rc : add_s(g, ") IS NOT TRUE");
        }
        rc = add_s(g, "NOT (");
        if (rc == 0)
            rc = gen_node(g, nd->kid[0]);
        return rc ? rc : sl_buf_addc(g->sql, ')');
    case N_WORD:
    case N_PHRASE:
    case N_MESSAGE:
        /* The token-boundary regex costs ~2.6 us a line; the ASCII-lowercased text's
         * plain position (~0.6 us, lower() under a C collation folds ASCII only, as the
         * regex's classes do) is a necessary condition, so it runs first and most lines
         * never reach the regex. CASE fixes the order (the planner would reorder an AND). */
        sl_buf_init(&b, 32 * SL_QUERY_MAX_LEN);
        for (size_t i = 0; i < nd->vlen && rc == 0; i++) {
            unsigned char ch = (unsigned char)nd->val[i];
            rc = sl_buf_addc(&b, (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch));
        }
        if (rc == 0)
            rc = add_s(g, "(CASE WHEN strpos(lower(l.message COLLATE ucs_basic), ");
        if (rc == 0)
            rc = param_buf(g, &b);
        if (rc == 0)
            rc = add_s(g, ") > 0 THEN l.message ~ ");
        sl_buf_reset(&b);
        if (rc == 0)
            rc = re_word(&b, nd->val, nd->vlen);
        if (rc == 0)
            rc = param_buf(g, &b);
        if (rc == 0)
            rc = add_s(g, " ELSE false END)");
        sl_buf_free(&b);
        return rc;
    case N_REGEX:
        rc = add_s(g, nd->icase ? "l.message ~* " : "l.message ~ ");
        return rc ? rc : param(g, nd->re, strlen(nd->re));
    case N_SOURCE:
        return gen_source(g, nd);
    case N_APP:
        return gen_col(g, nd, "l.app_name");
    case N_PROC:
        return gen_col(g, nd, "l.procid");
    case N_HOST:
        return gen_col(g, nd, "l.hostname");
    case N_SEVERITY:
    case N_FACILITY: {
        char num[8];
        int k = snprintf(num, sizeof(num), "%d", (int)nd->num);
        rc = sl_buf_addf(g->sql, "%s %s ", nd->kind == N_SEVERITY ? "l.severity" : "l.facility",
                         cmp_sql[nd->op]);
        return rc ? rc : param(g, num, (size_t)k);
    }
    case N_FIELD:
        if (nd->numeric)
            return gen_field_num(g, nd);
        sl_buf_init(&b, 32 * SL_QUERY_MAX_LEN);
        rc = add_s(g, "l.message ~ ");
        if (rc == 0)
            rc = re_field_text(&b, nd);
        if (rc == 0)
            rc = param_buf(g, &b);
        sl_buf_free(&b);
        return rc;
    }
    return SL_EINVAL;
}

int sl_query_sql(const struct sl_query *q, int first, const struct sl_query_ids *src, size_t nsrc,
                 struct sl_buf *sql, struct sl_query_params *params)
{
    struct gen g;

    if (q == NULL || first < 1 || q->nsrc > nsrc || (q->nsrc > 0 && src == NULL))
        return SL_EINVAL;
    g.sql = sql;
    g.par = params;
    g.next = first;
    g.src = src;
    g.nsrc = nsrc;
    return gen_node(&g, q->root);
}

/* ------------------------------------------------------------------ tokens */

struct conj {
    size_t n;
    uint64_t h[SL_QUERY_MAX_CONJ_TOKENS];
};

/* any: no constraint (every line may match). Otherwise an OR of n conjunctions. */
struct dnf {
    bool any;
    size_t n;
    struct conj c[SL_QUERY_MAX_CONJ];
};

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* Adds a hash to a conjunction (kept sorted, unique; past the cap it is dropped, which
 * only weakens the filter). */
static void conj_add(struct conj *c, uint64_t h)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->h[i] == h)
            return;
    if (c->n < SL_QUERY_MAX_CONJ_TOKENS) {
        c->h[c->n++] = h;
        qsort(c->h, c->n, sizeof(c->h[0]), cmp_u64);
    }
}

static void tok_cb(void *arg, const char *tok, size_t len, uint64_t hash)
{
    (void)tok;
    (void)len;
    conj_add(arg, hash);
}

/* Tokens of the runs of token bytes in s[0..n) that are bounded on both sides: by a
 * non-token byte inside s (not a wildcard when glob), or by s's own edge where
 * edges_bounded says the match pins it. */
static void bounded_tokens(struct conj *c, const char *s, size_t n, bool edges_bounded, bool glob)
{
    size_t i = 0;

    while (i < n) {
        size_t a;
        if (!is_tok((unsigned char)s[i])) {
            i++;
            continue;
        }
        a = i;
        while (i < n && is_tok((unsigned char)s[i]))
            i++;
        {
            bool left = a == 0 ? edges_bounded : !(glob && (s[a - 1] == '*' || s[a - 1] == '?'));
            bool right = i == n ? edges_bounded : !(glob && (s[i] == '*' || s[i] == '?'));
            if (left && right)
                (void)sl_tokenize(s + a, i - a, tok_cb, c);
        }
    }
}

static void dnf_leaf(struct dnf *d, const struct conj *c)
{
    d->any = c->n == 0;
    d->n = c->n == 0 ? 0 : 1;
    if (c->n > 0)
        d->c[0] = *c;
}

static void dnf_and(struct dnf *a, const struct dnf *b, struct dnf *tmp)
{
    if (b->any)
        return;
    if (a->any) {
        *a = *b;
        return;
    }
    if (a->n * b->n > SL_QUERY_MAX_CONJ) {
        /* too many products: either side alone is a weaker, still valid filter */
        if (b->n < a->n)
            *a = *b;
        return;
    }
    tmp->any = false;
    tmp->n = 0;
    for (size_t i = 0; i < a->n; i++)
        for (size_t j = 0; j < b->n; j++) {
            struct conj *c = &tmp->c[tmp->n++];
            *c = a->c[i];
            for (size_t k = 0; k < b->c[j].n; k++)
                conj_add(c, b->c[j].h[k]);
        }
    *a = *tmp;
}

static void dnf_or(struct dnf *a, const struct dnf *b)
{
    if (a->any)
        return;
    if (b->any || a->n + b->n > SL_QUERY_MAX_CONJ) {
        a->any = true;
        a->n = 0;
        return;
    }
    for (size_t j = 0; j < b->n; j++)
        a->c[a->n++] = b->c[j];
}

static int node_tokens(const struct node *nd, struct dnf *out)
{
    struct conj c;
    int rc = 0;

    c.n = 0;
    out->any = true;
    out->n = 0;
    switch (nd->kind) {
    case N_AND:
    case N_OR: {
        struct dnf *kid = malloc(2 * sizeof(*kid));
        if (kid == NULL)
            return SL_ENOMEM;
        for (size_t i = 0; i < nd->nkid && rc == 0; i++) {
            rc = node_tokens(nd->kid[i], &kid[0]);
            if (rc != 0)
                break;
            if (i == 0)
                *out = kid[0];
            else if (nd->kind == N_AND)
                dnf_and(out, &kid[0], &kid[1]);
            else
                dnf_or(out, &kid[0]);
        }
        free(kid);
        return rc;
    }
    case N_WORD:
    case N_PHRASE:
    case N_MESSAGE:
        bounded_tokens(&c, nd->val, nd->vlen, true, false);
        dnf_leaf(out, &c);
        return 0;
    case N_FIELD:
        bounded_tokens(&c, nd->key, strlen(nd->key), true, false);
        if (!nd->numeric && nd->op == C_EQ)
            bounded_tokens(&c, nd->val, nd->vlen, true, nd->glob);
        dnf_leaf(out, &c);
        return 0;
    case N_REGEX: {
        char lits[SL_MATCH_LITERALS_MAX * (SL_MATCH_LITERAL_MAX + 1) + 1];
        size_t n = sl_match_required_literals(nd->val, nd->icase, lits, sizeof(lits));
        const char *s = lits;
        if (n == 0 || n > SL_QUERY_MAX_CONJ)
            return 0;
        out->any = false;
        for (size_t k = 0; k < n; k++) {
            const char *e = strchr(s, '\n');
            size_t l = e ? (size_t)(e - s) : strlen(s);
            c.n = 0;
            bounded_tokens(&c, s, l, false, false); /* a literal's edges are unknown */
            if (c.n == 0) {
                out->any = true;
                out->n = 0;
                return 0;
            }
            out->c[out->n++] = c;
            s = e ? e + 1 : s + l;
        }
        return 0;
    }
    default: /* NOT, syslog attributes: no constraint on message tokens */
        return 0;
    }
}

int sl_query_tokens(const struct sl_query *q, struct sl_query_tokens *out)
{
    struct dnf *d;
    size_t total = 0, w = 0;
    int rc;

    out->hash = NULL;
    out->off = NULL;
    out->nconj = 0;
    if ((d = malloc(sizeof(*d))) == NULL)
        return SL_ENOMEM;
    if ((rc = node_tokens(q->root, d)) != 0)
        goto out;
    if (d->any || d->n == 0)
        goto out;
    for (size_t i = 0; i < d->n; i++)
        total += d->c[i].n;
    rc = SL_ENOMEM;
    out->hash = malloc((total ? total : 1) * sizeof(*out->hash));
    out->off = malloc((d->n + 1) * sizeof(*out->off));
    if (out->hash == NULL || out->off == NULL) {
        sl_query_tokens_free(out);
        goto out;
    }
    for (size_t i = 0; i < d->n; i++) {
        out->off[i] = w;
        memcpy(out->hash + w, d->c[i].h, d->c[i].n * sizeof(uint64_t));
        w += d->c[i].n;
    }
    out->off[d->n] = w;
    out->nconj = d->n;
    rc = 0;
out:
    free(d);
    return rc;
}

void sl_query_tokens_free(struct sl_query_tokens *t)
{
    if (t == NULL)
        return;
    free(t->hash);
    free(t->off);
    t->hash = NULL;
    t->off = NULL;
    t->nconj = 0;
}

/* ------------------------------------------------------------------ dump */

static int dump_str(struct sl_buf *b, const char *s, size_t n)
{
    int rc = sl_buf_addc(b, '"');

    for (size_t i = 0; i < n && rc == 0; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            rc = sl_buf_addf(b, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            rc = sl_buf_addf(b, "\\x%02x", c);
        else
            rc = sl_buf_addc(b, (char)c);
    }
    return rc ? rc : sl_buf_addc(b, '"');
}

static int dump_node(const struct node *nd, struct sl_buf *b)
{
    static const char *const names[] = {"and",     "or",       "not",      "word", "phrase",
                                        "message", "regex",    "source",   "app",  "proc",
                                        "host",    "severity", "facility", "field"};
    int rc = sl_buf_addf(b, "(%s", names[nd->kind]);

    if (rc != 0)
        return rc;
    switch (nd->kind) {
    case N_AND:
    case N_OR:
    case N_NOT:
        for (size_t i = 0; i < nd->nkid && rc == 0; i++) {
            rc = sl_buf_addc(b, ' ');
            if (rc == 0)
                rc = dump_node(nd->kid[i], b);
        }
        break;
    case N_WORD:
    case N_PHRASE:
    case N_MESSAGE:
        rc = sl_buf_addc(b, ' ');
        if (rc == 0)
            rc = dump_str(b, nd->val, nd->vlen);
        break;
    case N_REGEX:
        rc = sl_buf_addc(b, ' ');
        if (rc == 0)
            rc = dump_str(b, nd->val, nd->vlen);
        if (rc == 0 && nd->icase)
            rc = sl_buf_add(b, " i", 2);
        break;
    case N_SOURCE:
    case N_APP:
    case N_PROC:
    case N_HOST:
        rc = sl_buf_addf(b, " %s ",
                         nd->glob ? (nd->op == C_EQ ? "glob" : "!glob") : cmp_dump[nd->op]);
        if (rc == 0)
            rc = dump_str(b, nd->val, nd->vlen);
        break;
    case N_SEVERITY:
    case N_FACILITY:
        rc = sl_buf_addf(b, " %s %d", cmp_dump[nd->op], (int)nd->num);
        break;
    case N_FIELD:
        rc = sl_buf_addc(b, ' ');
        if (rc == 0)
            rc = dump_str(b, nd->key, strlen(nd->key));
        if (rc == 0 && nd->numeric) {
            rc = sl_buf_addf(b, " %s %s", cmp_dump[nd->op], nd->val);
            if (rc == 0 && nd->dim != D_NONE)
                rc = sl_buf_addf(b, " %s", units[nd->unit].name);
        } else if (rc == 0) {
            rc = sl_buf_addf(b, " %s ",
                             nd->glob ? (nd->op == C_EQ ? "glob" : "!glob") : cmp_dump[nd->op]);
            if (rc == 0)
                rc = dump_str(b, nd->val, nd->vlen);
        }
        break;
    }
    return rc ? rc : sl_buf_addc(b, ')');
}

int sl_query_dump(const struct sl_query *q, struct sl_buf *out)
{
    return dump_node(q->root, out);
}
