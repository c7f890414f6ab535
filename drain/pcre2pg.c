/* PCRE -> PostgreSQL ARE regex translation (include/sluice/pcre2pg.h).
 *
 * Validates a regex written in PCRE syntax against the subset that PostgreSQL's
 * Advanced Regular Expressions (PostgreSQL manual §9.7.3) run with the same meaning, and
 * writes the ARE text. Conservative: whatever is not known to be both valid in ARE and
 * equal in meaning is refused, with its position. Most constructs are copied as written;
 * only the assertions ARE spells differently are rewritten (\b \B \z).
 *
 * Leaves to others: the query syntax around the regex (/.../i, the empty regex: the
 * query module), running it (PostgreSQL), the literals a match requires (rules/match.c).
 * Pure: no I/O, no global state, any thread; allocates only through the caller's sl_buf. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "sluice/buf.h"
#include "sluice/err.h"
#include "sluice/pcre2pg.h"
#include "sluice/str.h"
#include "sluice/utf8.h"

/* What the last thing written was, for the quantifier checks. */
enum atom { A_NONE, A_ATOM, A_ASSERT };

struct rv {
    const char *s;
    size_t n, i;
    struct sl_buf *out;
    struct sl_pcre2pg_err *err;
    enum atom last;
    bool last_counted; /* the last atom (a group) holds a counted repetition */
    bool quantified;   /* the last atom already has its quantifier */
    size_t atom_out;   /* output offset where the last atom starts */
};

struct rv_group {
    bool lookaround;
    bool counted; /* holds a counted repetition */
    size_t start; /* output offset of the group, for the atom size */
};

static const char *const posix_classes[] = {"alnum", "alpha",  "blank", "cntrl", "digit",
                                            "graph", "lower",  "print", "punct", "space",
                                            "upper", "xdigit", NULL};

static int rv_fail(struct rv *v, size_t at, size_t len, const char *reason)
{
    if (v->err != NULL) {
        v->err->pos = at;
        v->err->len = len;
        v->err->reason = reason;
    }
    return SL_EPARSE;
}

/* Records that an atom (or an assertion) starting at output offset out_at was written. */
static void rv_atom(struct rv *v, enum atom kind, size_t out_at)
{
    v->last = kind;
    v->last_counted = false;
    v->quantified = false;
    v->atom_out = out_at;
}

/* The byte after the backslash at `at`, outside or inside a bracket: refuses a trailing
 * backslash and a non-ASCII escaped character. */
static int rv_escape(struct rv *v, size_t at, unsigned char *e)
{
    *e = at + 1 < v->n ? (unsigned char)v->s[at + 1] : 0;
    if (*e == 0)
        return rv_fail(v, at, 1, "regex ends with a backslash");
    if (*e >= 0x80)
        return rv_fail(v, at, 2, "unsupported regex escape");
    return 0;
}

/* \xHH: exactly two hex digits not followed by a third (ARE reads any number), not 0. */
static int rv_hex(struct rv *v, size_t at, uint32_t *cp)
{
    const unsigned char *s = (const unsigned char *)v->s;

    if (at + 3 < v->n && sl_hexval(s[at + 2]) >= 0 && sl_hexval(s[at + 3]) >= 0 &&
        (at + 4 >= v->n || sl_hexval(s[at + 4]) < 0)) {
        uint32_t x = (uint32_t)(sl_hexval(s[at + 2]) * 16 + sl_hexval(s[at + 3]));
        if (x == 0)
            return rv_fail(v, at, 4, "NUL in regex");
        *cp = x;
        return 0;
    }
    return rv_fail(v, at, 2, "\\x needs exactly two hex digits in a regex");
}

/* [:name:] at i (after its '['): a POSIX class ARE knows. Leaves *end after the ":]". */
static int rv_class(struct rv *v, size_t i, size_t *end)
{
    size_t k = i + 2;

    if (v->s[i + 1] != ':')
        return rv_fail(v, i, 2, "collating elements are not supported in a regex");
    while (k < v->n && sl_ascii_alpha((unsigned char)v->s[k]))
        k++;
    if (k + 1 >= v->n || v->s[k] != ':' || v->s[k + 1] != ']')
        return rv_fail(v, i, 2, "unsupported character class in regex");
    for (size_t c = 0; posix_classes[c] != NULL; c++)
        if (strlen(posix_classes[c]) == k - i - 2 &&
            memcmp(posix_classes[c], v->s + i + 2, k - i - 2) == 0) {
            *end = k + 2;
            return 0;
        }
    return rv_fail(v, i, k + 2 - i, "unsupported character class in regex");
}

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
        size_t at = i;

        if (i >= v->n)
            return rv_fail(v, start, 0, "unterminated bracket expression in regex");
        if (v->s[i] == ']' && !first)
            break;
        first = false;
        if (v->s[i] == '[' && i + 1 < v->n &&
            (v->s[i + 1] == ':' || v->s[i + 1] == '.' || v->s[i + 1] == '=')) {
            if ((rc = rv_class(v, i, &i)) != 0)
                return rc;
            single = false;
        } else if (v->s[i] == '\\') {
            unsigned char c;
            if ((rc = rv_escape(v, i, &c)) != 0)
                return rc;
            if (!sl_ascii_alnum(c)) {
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
            size_t l = sl_utf8_seq((const unsigned char *)v->s + i, v->n - i, &cp);
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

/* An escape outside a bracket at v->i. */
static int rv_backslash(struct rv *v)
{
    size_t at = v->i, here = v->out->len;
    unsigned char e;
    uint32_t cp;
    int rc;

    if ((rc = rv_escape(v, at, &e)) != 0)
        return rc;
    if (!sl_ascii_alnum(e) || strchr("dDsSwWtnrf", e) != NULL) {
        rc = sl_buf_add(v->out, v->s + at, 2);
        v->i += 2;
        rv_atom(v, A_ATOM, here);
    } else if (e == 'x') {
        if ((rc = rv_hex(v, at, &cp)) != 0)
            return rc;
        rc = sl_buf_add(v->out, v->s + at, 4);
        v->i += 4;
        rv_atom(v, A_ATOM, here);
    } else if (e == 'b' || e == 'B' || e == 'A' || e == 'Z' || e == 'z') {
        /* PCRE's \b \B \z are ARE's \y \Y \Z (ARE's \b is a backspace) */
        const char *t = e == 'b' ? "\\y" : e == 'B' ? "\\Y" : e == 'A' ? "\\A" : "\\Z";
        rc = sl_buf_add(v->out, t, 2);
        v->i += 2;
        rv_atom(v, A_ASSERT, here);
    } else if (sl_ascii_digit(e)) {
        return rv_fail(v, at, 2, "back references are not supported in a regex");
    } else {
        return rv_fail(v, at, 2, "unsupported regex escape");
    }
    return rc;
}

/* Up to 4 decimal digits at *q (advanced past them) into *x; false if there are none. */
static bool rv_count(const struct rv *v, size_t *q, unsigned long *x)
{
    size_t d = *q;

    *x = 0;
    while (*q < v->n && sl_ascii_digit((unsigned char)v->s[*q]) && *q - d < 4)
        *x = *x * 10 + (unsigned long)(v->s[(*q)++] - '0');
    return *q > d;
}

/* A quantifier * + ? {m} {m,} {m,n}, maybe lazy, at v->i; g: the innermost open group,
 * weight: the running sum of counted repetitions. */
static int rv_quantifier(struct rv *v, struct rv_group *g, size_t *weight)
{
    size_t at = v->i, q = at + 1, here = v->out->len;
    unsigned long lo = 0, hi = 0;
    bool counted = v->s[at] == '{';

    if (counted) {
        if (!rv_count(v, &q, &lo))
            return rv_fail(v, at, 1, "a literal { must be escaped (\\{) in a regex");
        hi = lo;
        if (q < v->n && v->s[q] == ',') {
            q++;
            if (!rv_count(v, &q, &hi))
                hi = lo; /* {m,}: unbounded, weighs m */
        }
        if (q >= v->n || v->s[q] != '}' || lo > 255 || hi > 255 || hi < lo)
            return rv_fail(v, at, q - at + (q < v->n), "invalid repetition count in regex");
        q++;
    }
    if (v->last != A_ATOM || v->quantified)
        return rv_fail(v, at, q - at,
                       v->last == A_ATOM ? "double quantifier in regex"
                                         : "quantifier without operand in regex");
    if (counted) {
        size_t atom = here - v->atom_out;
        if (v->last_counted)
            return rv_fail(v, at, q - at, "nested counted repetition in regex");
        *weight += (size_t)hi * (atom ? atom : 1);
        if (*weight > SL_PCRE2PG_MAX_WEIGHT)
            return rv_fail(v, at, q - at, "regex too complex");
        g->counted = true;
    }
    if (q < v->n && v->s[q] == '?') /* lazy: same truth value */
        q++;
    if (q < v->n && strchr("*+?{", v->s[q]) != NULL)
        return rv_fail(v, q, 1, "double quantifier in regex");
    v->i = q;
    v->quantified = true;
    return sl_buf_add(v->out, v->s + at, q - at);
}

/* A group opening at v->i: ( (?: (?= (?! (?<= (?<!; g[0..*depth] are the open groups. */
static int rv_open(struct rv *v, struct rv_group *g, size_t *depth)
{
    size_t at = v->i, skip = 1;
    bool look = false;

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
    if (*depth >= SL_PCRE2PG_MAX_GROUPS)
        return rv_fail(v, at, 1, "regex nesting too deep");
    if (look)
        for (size_t k = 0; k <= *depth; k++)
            if (g[k].lookaround)
                return rv_fail(v, at, skip, "nested lookaround in a regex");
    ++*depth;
    g[*depth].lookaround = look;
    g[*depth].counted = false;
    g[*depth].start = v->out->len;
    v->i += skip;
    v->last = A_NONE;
    return sl_buf_add(v->out, v->s + at, skip);
}

int sl_pcre2pg_translate(const char *re, size_t n, struct sl_buf *out, struct sl_pcre2pg_err *err)
{
    struct rv_group g[SL_PCRE2PG_MAX_GROUPS + 1];
    struct rv v = {.s = re, .n = n, .out = out, .err = err, .last = A_NONE};
    size_t depth = 0, weight = 0;
    const char *nul = n > 0 ? memchr(re, '\0', n) : NULL;
    int rc = 0;

    /* PostgreSQL text cannot hold NUL (the query module refuses it in the whole query) */
    if (nul != NULL)
        return rv_fail(&v, (size_t)(nul - re), 1, "NUL in regex");
    g[0].lookaround = false;
    g[0].counted = false;
    g[0].start = 0;
    while (v.i < v.n && rc == 0) {
        size_t at = v.i, here = v.out->len;
        unsigned char c = (unsigned char)v.s[at];

        switch (c) {
        case '\\':
            rc = rv_backslash(&v);
            break;
        case '[':
            rc = rv_bracket(&v);
            rv_atom(&v, A_ATOM, here);
            break;
        case '(':
            rc = rv_open(&v, g, &depth);
            break;
        case ')':
            if (depth == 0)
                return rv_fail(&v, at, 1, "unbalanced parenthesis in regex");
            rc = sl_buf_addc(v.out, ')');
            v.i++;
            v.last = g[depth].lookaround ? A_ASSERT : A_ATOM;
            v.last_counted = g[depth].counted;
            v.atom_out = g[depth].start;
            depth--;
            g[depth].counted = g[depth].counted || v.last_counted;
            v.quantified = false;
            break;
        case '|':
            rc = sl_buf_addc(v.out, '|');
            v.i++;
            v.last = A_NONE;
            break;
        case '^':
        case '$':
            rc = sl_buf_addc(v.out, (char)c);
            v.i++;
            v.last = A_ASSERT;
            break;
        case '*':
        case '+':
        case '?':
        case '{':
            rc = rv_quantifier(&v, &g[depth], &weight);
            break;
        default: {
            uint32_t cp;
            size_t l = sl_utf8_seq((const unsigned char *)v.s + at, v.n - at, &cp);
            if (l == 0)
                return rv_fail(&v, at, 1, "invalid UTF-8");
            rc = sl_buf_add(v.out, v.s + at, l);
            v.i += l;
            rv_atom(&v, A_ATOM, here);
            break;
        }
        }
    }
    if (rc != 0)
        return rc;
    if (depth != 0)
        return rv_fail(&v, v.n, 0, "unbalanced parenthesis in regex");
    return 0;
}
