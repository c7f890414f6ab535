/* The rule matcher (include/sluice/match.h): every stored line against every rule.
 *
 * Runs on the writer thread; one matcher per thread (the match data, JIT stack and
 * counters are not shared). Compiles patterns with PCRE2 10.42 (UTF +
 * MATCH_INVALID_UTF, so any bytes a log line holds are matched, never refused; JIT when
 * available, else the interpreter). Per line: scope filters (source ids, app / procid
 * globs), then the literal prefilter, then PCRE2 for the rules that survive, then the
 * rule's exclude pattern. Match, depth and JIT stack limits bound the cost of a
 * pathological pattern; a line that reaches one counts as no match (limit_hits).
 *
 * Prefilter. For each rule a conservative reader of the pattern text
 * (sl_match_required_literals) finds literals of which every match must contain one.
 * All rules' literals, ASCII-lowercased, go into one Aho-Corasick automaton compiled
 * to a dense DFA over byte classes (bytes that occur in no literal share class 0), so a
 * line costs one table walk over its message whatever the number of rules. The
 * automaton is caseless for every rule: for a case-sensitive rule that only lets a few
 * more lines through to PCRE2, never fewer. Rules without a literal always run PCRE2.
 * Parsing the rules file and validating it is rules/ruleset.c's job; this module
 * compiles what it is given and reports compile errors in the same line format. */
#define PCRE2_CODE_UNIT_WIDTH 8

#include <pcre2.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/buf.h"
#include "sluice/err.h"
#include "sluice/log.h"
#include "sluice/match.h"
#include "sluice/query.h"
#include "sluice/str.h"

#define DEFAULT_MATCH_LIMIT 100000u
#define DEFAULT_DEPTH_LIMIT 10000u
#define DEFAULT_JIT_STACK_MAX (512u * 1024u)
#define JIT_STACK_START (32u * 1024u)
/* Dense DFA size cap (entries of 4 bytes). Past it the prefilter is off: every rule
 * runs PCRE2, which is slower but still correct. */
#define AC_MAX_ENTRIES (4u * 1024u * 1024u)
#define AC_FLAG 0x80000000u /* in a transition: the target state ends some literal */
#define LIT_MAX_DEPTH 32    /* group nesting the literal reader follows */
/* The automaton keeps the rarest AC_LIT_MAX bytes of each literal (any piece of a
 * required literal is required): a smaller table, and short overlap when a message is
 * scanned in two halves. */
#define AC_LIT_MAX 16
/* With fewer rules than this having a literal, no automaton: PCRE2's JIT finds a
 * leading literal itself (SIMD memchr), faster than a table walk over the line. */
#define AC_MIN_RULES 4

struct mrule {
    pcre2_code *re;
    pcre2_code *ex; /* exclude, or NULL */
    bool src_scoped;
    size_t nsrc;
    int64_t *src; /* known source ids of the scope */
    int app;      /* index into the matcher's globs, or -1 */
    int procid;
    enum sl_group_by group_by;
    size_t ncap;
    uint32_t *cap;  /* group numbers carrying the group_by name (several with (?J)) */
    bool prefilter; /* has literals in the automaton */
    uint32_t scope; /* index into the matcher's scopes */
    bool on_crashes; /* sees crashes only; other rules never see them */
    /* counters; evaluated = scope's lines - unevaluated, prefiltered = evaluated - runs */
    uint64_t runs, unevaluated, matched, limit_hits;
};

/* Rules with the same scope (sources, app glob, procid glob) share one scope check per
 * line. */
struct mscope {
    bool src_scoped;
    size_t nsrc;
    const int64_t *src; /* borrowed from the first rule with this scope */
    int app, procid;
    uint64_t *mask; /* its rules */
    uint64_t lines; /* lines in scope */
};

struct sl_matcher {
    bool crash_mode; /* inside sl_matcher_run_crash: only rules "on": "crashes" run */
    size_t nrules;
    struct mrule *r;
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    pcre2_jit_stack *jstack;
    /* Aho-Corasick DFA: delta[state * ncls + cls[byte]] = next state * ncls, | AC_FLAG
     * when that state ends a literal; rules ending there are outs[outoff[s] ..
     * outoff[s + 1]). */
    uint8_t cls[256];
    uint32_t ncls;
    uint32_t nstates;
    uint32_t *delta;
    uint32_t *outoff;
    uint32_t *outs;
    size_t maxlit; /* longest literal in the automaton */
    size_t nwords;
    uint64_t *seen;    /* per line: rules whose literal occurred */
    uint64_t *litmask; /* rules in the automaton */
    uint64_t *inscope; /* per line: rules whose scope takes the line */
    size_t nscopes;
    struct mscope *scopes;
    /* Scope globs, each distinct one evaluated at most once per line: result[k] is
     * valid when gen[k] == line_gen. */
    size_t nglobs;
    char **globs;
    uint32_t *glob_gen;
    bool *glob_res;
    uint32_t line_gen;
};

/* ------------------------------------------------------------------ small helpers */

static unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + ('a' - 'A')) : c;
}

static void add_error(struct sl_buf *errors, const char *fmt, ...) SL_PRINTF(2, 3);
static void add_error(struct sl_buf *errors, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    int n;

    if (errors == NULL)
        return;
    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof(line) - 2)
        n = (int)(sizeof(line) - 2);
    line[n++] = '\n';
    if (sl_buf_add(errors, line, (size_t)n) != 0)
        return; /* the error list is capped; the return code still says SL_EINVAL */
}

bool sl_glob_match(const char *glob, struct sl_str s)
{
    const char *g = glob, *star = NULL;
    size_t i = 0, star_i = 0;

    if (glob == NULL)
        return true;
    /* Iterative with one backtrack point (the last '*'): linear in practice, never
     * exponential. */
    while (i < s.len) {
        if (*g == '*') {
            star = g++;
            star_i = i;
            continue;
        }
        if (*g != '\0' && (*g == '?' || *g == s.p[i])) {
            g++;
            i++;
            continue;
        }
        if (star == NULL)
            return false;
        g = star + 1;
        i = ++star_i;
    }
    while (*g == '*')
        g++;
    return *g == '\0';
}

/* ------------------------------------------------------------------ literal reader
 *
 * Reads a pattern the way PCRE2 would, but only as far as it is sure: anything it does
 * not know gives up for the whole pattern (no literal: the rule always runs PCRE2,
 * which is slower but never wrong). A sequence yields its best requirement: a run of
 * literal characters, or the requirement of a group that must take part; an
 * alternation yields the union of its branches' requirements, if every branch has
 * one. */

struct litset {
    size_t n; /* 0: no requirement */
    uint8_t len[SL_MATCH_LITERALS_MAX];
    char lit[SL_MATCH_LITERALS_MAX][SL_MATCH_LITERAL_MAX];
};

struct lreader {
    const char *p;
    size_t i;
    bool caseless;
    bool fail;
    int depth;
};

static size_t litset_min(const struct litset *s)
{
    size_t m = SIZE_MAX;
    for (size_t k = 0; k < s->n; k++)
        if (s->len[k] < m)
            m = s->len[k];
    return m;
}

/* Is a a better (more selective) requirement than b? Longer shortest literal first,
 * then fewer literals. */
static bool litset_better(const struct litset *a, const struct litset *b)
{
    size_t am, bm;

    if (a->n == 0)
        return false;
    if (b->n == 0)
        return true;
    am = litset_min(a);
    bm = litset_min(b);
    if (am != bm)
        return am > bm;
    return a->n < b->n;
}

/* Adds the literals of src to dst; false when that makes too many. */
static bool litset_union(struct litset *dst, const struct litset *src)
{
    for (size_t k = 0; k < src->n; k++) {
        bool dup = false;
        for (size_t j = 0; j < dst->n && !dup; j++)
            dup = dst->len[j] == src->len[k] && memcmp(dst->lit[j], src->lit[k], src->len[k]) == 0;
        if (dup)
            continue;
        if (dst->n == SL_MATCH_LITERALS_MAX)
            return false;
        dst->len[dst->n] = src->len[k];
        memcpy(dst->lit[dst->n], src->lit[k], src->len[k]);
        dst->n++;
    }
    return true;
}

enum quant { Q_NONE = 0, Q_OPT, Q_PLUS };

/* Length of a "{...}" that could be a quantifier at p, else 0. Wider than what PCRE2
 * 10.42 accepts ({n}, {n,}, {n,m}): a literal taken for a quantifier only loses a
 * literal, the other way round would be wrong. */
static size_t brace_quant_len(const char *p)
{
    size_t k = 1;

    if (p[0] != '{')
        return 0;
    while (sl_ascii_digit((unsigned char)p[k]) || p[k] == ',' || p[k] == ' ')
        k++;
    return (p[k] == '}' && k > 1) ? k + 1 : 0;
}

/* Reads a quantifier (and a lazy / possessive suffix) at the cursor, if any. Any braced
 * count is taken as "may be absent": conservative for {n} with n >= 1. */
static enum quant read_quant(struct lreader *lr)
{
    enum quant q = Q_NONE;
    char c = lr->p[lr->i];
    size_t bl;

    if (c == '?' || c == '*') {
        q = Q_OPT;
        lr->i++;
    } else if (c == '+') {
        q = Q_PLUS;
        lr->i++;
    } else if ((bl = brace_quant_len(lr->p + lr->i)) > 0) {
        q = Q_OPT;
        lr->i += bl;
    }
    if (q != Q_NONE && (lr->p[lr->i] == '+' || lr->p[lr->i] == '?'))
        lr->i++;
    return q;
}

struct run {
    char b[SL_MATCH_LITERAL_MAX];
    size_t len;
};

/* Ends the current run of literal bytes: it becomes a candidate for best. */
static void run_flush(struct run *r, struct litset *best)
{
    if (r->len >= SL_MATCH_LITERAL_MIN) {
        struct litset one;
        one.n = 1;
        one.len[0] = (uint8_t)r->len;
        memcpy(one.lit[0], r->b, r->len);
        if (litset_better(&one, best))
            *best = one;
    }
    r->len = 0;
}

/* Appends one character (n bytes) to the run, or ends the run if the character cannot
 * be part of a caseless literal. A character that does not fit under the cap ends the
 * run (its prefix is offered to best) and starts the next one: skipping it and adding
 * a later, shorter character would join bytes that are not adjacent in the pattern. */
static void run_add(struct lreader *lr, struct run *r, struct litset *best, const char *c, size_t n)
{
    unsigned char b0 = (unsigned char)c[0];

    if (lr->caseless && (b0 >= 0x80 || lower(b0) == 'k' || lower(b0) == 's')) {
        /* PCRE2 caseless UTF matching folds U+212A onto k and U+017F onto s, and
         * non-ASCII letters onto other byte sequences. */
        run_flush(r, best);
        return;
    }
    if (r->len + n > SL_MATCH_LITERAL_MAX)
        run_flush(r, best);
    for (size_t k = 0; k < n; k++)
        r->b[r->len++] = (char)lower((unsigned char)c[k]);
}

static void read_alt(struct lreader *lr, struct litset *out);

/* One literal character of n bytes at the cursor, with its quantifier. */
static void read_char(struct lreader *lr, struct run *r, struct litset *best, const char *c,
                      size_t n, size_t skip)
{
    enum quant q;

    lr->i += skip;
    q = read_quant(lr);
    if (q == Q_OPT) {
        run_flush(r, best);
    } else if (q == Q_PLUS) {
        /* "ab+c": "ab" is required, and so is "bc". */
        run_add(lr, r, best, c, n);
        run_flush(r, best);
        run_add(lr, r, best, c, n);
    } else {
        run_add(lr, r, best, c, n);
    }
}

/* Skips a character class at the cursor ('['). */
static void skip_class(struct lreader *lr)
{
    const char *p = lr->p;
    size_t i = lr->i + 1;

    if (p[i] == '^')
        i++;
    if (p[i] == ']')
        i++;
    for (;;) {
        if (p[i] == '\0') {
            lr->fail = true;
            return;
        }
        if (p[i] == '\\') {
            if (p[i + 1] == '\0' || p[i + 1] == 'Q' || p[i + 1] == 'E') {
                lr->fail = true;
                return;
            }
            i += 2;
            continue;
        }
        if (p[i] == '[' && p[i + 1] == ':') {
            /* [:name:], [:^name:], and the word boundaries of "[[:<:]]" / "[[:>:]]" */
            size_t k = i + 2;
            if (p[k] == '^')
                k++;
            while ((p[k] >= 'a' && p[k] <= 'z') || p[k] == '<' || p[k] == '>')
                k++;
            if (p[k] == ':' && p[k + 1] == ']') {
                i = k + 2;
                continue;
            }
        }
        if (p[i] == ']') {
            lr->i = i + 1;
            return;
        }
        i++;
    }
}

/* Reads a group at the cursor ('('). A group that must take part offers its
 * requirement to best. */
static void read_group(struct lreader *lr, struct run *r, struct litset *best)
{
    const char *p = lr->p;
    size_t i = lr->i + 1;
    bool use = true;
    struct litset inner;
    enum quant q;

    run_flush(r, best);
    if (p[i] == '*') {
        lr->fail = true; /* (*VERB) */
        return;
    }
    if (p[i] == '?') {
        char c = p[i + 1];
        if (c == ':' || c == '|' || c == '>') {
            i += 2;
        } else if (c == '=' || c == '!') {
            use = false; /* lookahead: zero width */
            i += 2;
        } else if (c == '<' && (p[i + 2] == '=' || p[i + 2] == '!')) {
            use = false;
            i += 3;
        } else if (c == '<' || c == '\'' || (c == 'P' && p[i + 2] == '<')) {
            char close = c == '\'' ? '\'' : '>';
            i += c == 'P' ? 3 : 2;
            while (sl_ascii_alnum((unsigned char)p[i]) || p[i] == '_')
                i++;
            if (p[i] != close) {
                lr->fail = true;
                return;
            }
            i++;
        } else {
            /* Option settings: (?i) (?s-m) (?i:...). Anything else ((?R), (?1), (?&n),
             * (?(cond)..), (?#...), (?C..)) is beyond this reader. */
            size_t k = i + 1;
            bool sets_i = false;
            while (p[k] != '\0' && strchr("imnsJU-^", p[k]) != NULL) {
                if (p[k] == 'i')
                    sets_i = true;
                k++;
            }
            if (k == i + 1 || (p[k] != ')' && p[k] != ':')) {
                lr->fail = true; /* includes (?x): whitespace and comments change meaning */
                return;
            }
            /* Caseless from here on, even past the group's end: stricter, never wrong. */
            if (sets_i)
                lr->caseless = true;
            if (p[k] == ')') {
                lr->i = k + 1;
                return;
            }
            i = k + 1;
        }
    }
    lr->i = i;
    if (++lr->depth > LIT_MAX_DEPTH) {
        lr->fail = true;
        return;
    }
    read_alt(lr, &inner);
    lr->depth--;
    if (lr->fail)
        return;
    if (p[lr->i] != ')') {
        lr->fail = true;
        return;
    }
    lr->i++;
    q = read_quant(lr);
    if (use && q != Q_OPT && litset_better(&inner, best))
        *best = inner;
}

/* Reads an escape at the cursor ('\'). */
static void read_escape(struct lreader *lr, struct run *r, struct litset *best)
{
    const char *p = lr->p;
    char c = p[lr->i + 1];

    if (c == '\0' || (unsigned char)c >= 0x80) {
        lr->fail = true;
        return;
    }
    if (!sl_ascii_alnum((unsigned char)c)) {
        if ((unsigned char)c < 0x20) {
            run_flush(r, best);
            lr->i += 2;
            (void)read_quant(lr);
            return;
        }
        read_char(lr, r, best, p + lr->i + 1, 1, 2); /* \. \- \/ \\ \( ... */
        return;
    }
    if (c == 'p' || c == 'P') {
        size_t k = lr->i + 2;
        if (p[k] == '{') {
            while (p[k] != '\0' && p[k] != '}')
                k++;
            if (p[k] != '}') {
                lr->fail = true;
                return;
            }
            k++;
        } else if (p[k] != '\0') {
            k++;
        } else {
            lr->fail = true;
            return;
        }
        run_flush(r, best);
        lr->i = k;
        (void)read_quant(lr);
        return;
    }
    if (strchr("dDwWsShHvVRXNbBAzZGKCntrfea", c) != NULL && !(c == 'N' && p[lr->i + 2] == '{')) {
        /* a character type, an assertion or a control character: ends the run */
        run_flush(r, best);
        lr->i += 2;
        (void)read_quant(lr);
        return;
    }
    /* \x \o \c \N{} \Q \E \g \k, back references and octal: not read. */
    lr->fail = true;
}

/* Reads one branch (up to '|', ')' or the end) and leaves its requirement in best. */
static void read_seq(struct lreader *lr, struct litset *best)
{
    const char *p = lr->p;
    struct run r;

    r.len = 0;
    best->n = 0;
    while (!lr->fail) {
        unsigned char c = (unsigned char)p[lr->i];

        if (c == '\0' || c == '|' || c == ')')
            break;
        switch (c) {
        case '(':
            read_group(lr, &r, best);
            break;
        case '[':
            run_flush(&r, best);
            skip_class(lr);
            if (!lr->fail)
                (void)read_quant(lr);
            break;
        case '\\':
            read_escape(lr, &r, best);
            break;
        case '.':
        case '^':
        case '$':
            run_flush(&r, best);
            lr->i++;
            (void)read_quant(lr);
            break;
        case '*':
        case '+':
        case '?':
            lr->fail = true; /* a quantifier with nothing to repeat */
            break;
        case '{':
            if (brace_quant_len(p + lr->i) > 0) {
                lr->fail = true;
                break;
            }
            read_char(lr, &r, best, p + lr->i, 1, 1);
            break;
        default:
            if (c < 0x20 || c == 0x7f) {
                run_flush(&r, best);
                lr->i++;
                (void)read_quant(lr);
            } else if (c < 0x80) {
                read_char(lr, &r, best, p + lr->i, 1, 1);
            } else {
                /* One UTF-8 character: a quantifier after it applies to all of it. */
                size_t n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;
                for (size_t k = 1; k < n; k++)
                    if (((unsigned char)p[lr->i + k] & 0xc0) != 0x80)
                        n = 0;
                if (n == 0) {
                    lr->fail = true;
                    break;
                }
                read_char(lr, &r, best, p + lr->i, n, n);
            }
            break;
        }
    }
    run_flush(&r, best);
}

/* Reads branches up to ')' or the end: the union of their requirements, or none if a
 * branch has none. */
static void read_alt(struct lreader *lr, struct litset *out)
{
    bool ok = true;

    out->n = 0;
    for (;;) {
        struct litset branch;
        read_seq(lr, &branch);
        if (lr->fail)
            return;
        if (branch.n == 0 || !litset_union(out, &branch))
            ok = false;
        if (lr->p[lr->i] != '|')
            break;
        lr->i++;
    }
    if (!ok)
        out->n = 0;
}

static void required_literals(const char *pattern, bool caseless, struct litset *out)
{
    struct lreader lr = {pattern, 0, caseless, false, 0};

    out->n = 0;
    if (pattern == NULL)
        return;
    read_alt(&lr, out);
    if (lr.fail || pattern[lr.i] != '\0') /* an unbalanced ')' */
        out->n = 0;
}

size_t sl_match_required_literals(const char *pattern, bool caseless, char *out, size_t cap)
{
    struct litset s;
    size_t w = 0;

    required_literals(pattern, caseless, &s);
    if (cap == 0)
        return s.n;
    for (size_t k = 0; k < s.n; k++) {
        if (k > 0 && w + 1 < cap)
            out[w++] = '\n';
        for (size_t j = 0; j < s.len[k] && w + 1 < cap; j++)
            out[w++] = s.lit[k][j];
    }
    out[w] = '\0';
    return s.n;
}

/* ------------------------------------------------------------------ Aho-Corasick */

struct ac_lit {
    const char *b;
    size_t len;
    uint32_t rule;
};

/* Builds the automaton over lits. Returns 0, SL_ENOMEM, or SL_ETOOBIG when the table
 * would pass AC_MAX_ENTRIES. */
static int ac_build(struct sl_matcher *m, const struct ac_lit *lits, size_t nlits)
{
    int rc = SL_ENOMEM;
    size_t maxstates = 1, total_outs = 0;
    uint8_t id[256];
    uint32_t ncls = 1, nstates = 1;
    uint32_t *go = NULL, *fail = NULL, *queue = NULL, *term = NULL, *term_next = NULL;
    uint32_t *out_n = NULL, *own_head = NULL, *rank = NULL;
    size_t qh = 0, qt = 0;

    memset(id, 0, sizeof(id));
    for (size_t k = 0; k < nlits; k++) {
        maxstates += lits[k].len;
        if (lits[k].len > m->maxlit)
            m->maxlit = lits[k].len;
        for (size_t j = 0; j < lits[k].len; j++) {
            unsigned char b = (unsigned char)lits[k].b[j];
            if (id[b] == 0)
                id[b] = (uint8_t)ncls++;
        }
    }
    if (ncls > 255 || maxstates * ncls > AC_MAX_ENTRIES)
        return SL_ETOOBIG;
    for (int b = 0; b < 256; b++)
        m->cls[b] = id[lower((unsigned char)b)];
    m->ncls = ncls;

    go = calloc(maxstates * ncls, sizeof(*go));
    fail = calloc(maxstates, sizeof(*fail));
    queue = calloc(maxstates, sizeof(*queue));
    own_head = calloc(maxstates, sizeof(*own_head)); /* 1-based index into term */
    out_n = calloc(maxstates, sizeof(*out_n));
    term = calloc(nlits + 1, sizeof(*term));
    term_next = calloc(nlits + 1, sizeof(*term_next));
    if (!go || !fail || !queue || !own_head || !out_n || !term || !term_next)
        goto out;

    /* The trie. State 0 is the root; 0 in go[] means "no child" (the root is nobody's
     * child). */
    for (size_t k = 0; k < nlits; k++) {
        uint32_t s = 0;
        for (size_t j = 0; j < lits[k].len; j++) {
            uint32_t c = id[(unsigned char)lits[k].b[j]];
            if (go[(size_t)s * ncls + c] == 0)
                go[(size_t)s * ncls + c] = nstates++;
            s = go[(size_t)s * ncls + c];
        }
        term[k + 1] = lits[k].rule;
        term_next[k + 1] = own_head[s];
        own_head[s] = (uint32_t)(k + 1);
    }

    /* Breadth first: failure links, the full transition table, and each state's output
     * (its own literals plus its failure state's, already final when we get there). */
    for (uint32_t c = 0; c < ncls; c++) {
        uint32_t t = go[c];
        if (t != 0) {
            fail[t] = 0;
            queue[qt++] = t;
        }
    }
    {
        uint32_t *order = queue; /* BFS order, states 1.. */
        while (qh < qt) {
            uint32_t s = order[qh++];
            for (uint32_t c = 0; c < ncls; c++) {
                uint32_t t = go[(size_t)s * ncls + c];
                if (t != 0) {
                    fail[t] = go[(size_t)fail[s] * ncls + c];
                    order[qt++] = t;
                } else {
                    go[(size_t)s * ncls + c] = go[(size_t)fail[s] * ncls + c];
                }
            }
        }
    }
    /* Output counts (BFS order: fail[s] is final before s). */
    for (size_t q = 0; q < qt; q++) {
        uint32_t s = queue[q];
        uint32_t n = out_n[fail[s]];
        for (uint32_t t = own_head[s]; t != 0; t = term_next[t])
            n++;
        out_n[s] = n;
        total_outs += n;
    }
    /* Renumber the states in BFS order (root 0, then queue order), so the shallow
     * states a scan spends nearly all its time in share a few cache lines. */
    rank = calloc(maxstates, sizeof(*rank));
    m->outoff = calloc((size_t)nstates + 1, sizeof(*m->outoff));
    m->outs = calloc(total_outs + 1, sizeof(*m->outs));
    m->delta = calloc((size_t)nstates * ncls, sizeof(*m->delta));
    if (!rank || !m->outoff || !m->outs || !m->delta)
        goto out;
    for (size_t q = 0; q < qt; q++)
        rank[queue[q]] = (uint32_t)(q + 1);
    {
        uint32_t off = 0;
        for (uint32_t ns = 0; ns < nstates; ns++) {
            uint32_t s = ns == 0 ? 0 : queue[ns - 1];
            m->outoff[ns] = off;
            off += out_n[s];
        }
        m->outoff[nstates] = off;
    }
    for (size_t q = 0; q < qt; q++) {
        uint32_t s = queue[q], f = fail[s];
        uint32_t w = m->outoff[q + 1], from = m->outoff[rank[f]];
        for (uint32_t t = own_head[s]; t != 0; t = term_next[t])
            m->outs[w++] = term[t];
        for (uint32_t k = 0; k < out_n[f]; k++)
            m->outs[w++] = m->outs[from + k];
    }
    for (uint32_t ns = 0; ns < nstates; ns++) {
        uint32_t s = ns == 0 ? 0 : queue[ns - 1];
        for (uint32_t c = 0; c < ncls; c++) {
            uint32_t t = go[(size_t)s * ncls + c];
            m->delta[(size_t)ns * ncls + c] = rank[t] * ncls | (out_n[t] ? AC_FLAG : 0);
        }
    }
    m->nstates = nstates;
    rc = 0;
out:
    free(go);
    free(fail);
    free(queue);
    free(own_head);
    free(out_n);
    free(term);
    free(term_next);
    free(rank);
    return rc;
}

static inline void ac_mark(struct sl_matcher *m, uint32_t s)
{
    uint32_t st = (s & ~AC_FLAG) / m->ncls;
    for (uint32_t k = m->outoff[st]; k < m->outoff[st + 1]; k++)
        m->seen[m->outs[k] / 64] |= (uint64_t)1 << (m->outs[k] % 64);
}

/* One pass over the message: sets m->seen bits of the rules whose literal occurs.
 * Each step is a load that depends on the one before, so a long message is walked as
 * two halves at once (two independent chains the CPU overlaps); the second half starts
 * maxlit - 1 bytes early so that a literal across the middle is still seen whole. */
static void ac_scan(struct sl_matcher *m, const unsigned char *p, size_t n)
{
    const uint32_t *delta = m->delta;
    const uint8_t *cls = m->cls;
    uint32_t sa = 0, sb = 0;
    size_t i = 0;

    memset(m->seen, 0, m->nwords * sizeof(*m->seen));
    if (n >= 2 * m->maxlit + 32) {
        size_t mid = n / 2, bstart = mid - (m->maxlit - 1);
        const unsigned char *pb = p + bstart;
        size_t nb = n - bstart;
        for (; i < mid; i++) {
            sa = delta[(sa & ~AC_FLAG) + cls[p[i]]];
            sb = delta[(sb & ~AC_FLAG) + cls[pb[i]]];
            if ((sa | sb) & AC_FLAG) {
                if (sa & AC_FLAG)
                    ac_mark(m, sa);
                if (sb & AC_FLAG)
                    ac_mark(m, sb);
            }
        }
        for (; i < nb; i++) {
            sb = delta[(sb & ~AC_FLAG) + cls[pb[i]]];
            if (sb & AC_FLAG)
                ac_mark(m, sb);
        }
        return;
    }
    for (; i < n; i++) {
        sa = delta[(sa & ~AC_FLAG) + cls[p[i]]];
        if (sa & AC_FLAG)
            ac_mark(m, sa);
    }
}

/* ------------------------------------------------------------------ compile */

static int compile_one(const struct sl_rule *r, const char *field, const char *pat,
                       pcre2_code **out, uint32_t *max_groups, struct sl_buf *errors)
{
    uint32_t opts = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | (r->caseless ? PCRE2_CASELESS : 0);
    int ec = 0, jrc;
    PCRE2_SIZE eo = 0;
    uint32_t ncap = 0;
    pcre2_code *re;

    re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, opts, &ec, &eo, NULL);
    if (re == NULL) {
        PCRE2_UCHAR msg[256];
        if (pcre2_get_error_message(ec, msg, sizeof(msg)) < 0)
            snprintf((char *)msg, sizeof(msg), "error %d", ec);
        add_error(errors, "rule %s: %s: %s at offset %zu", r->name, field, (const char *)msg,
                  (size_t)eo);
        return SL_EINVAL;
    }
    jrc = pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    if (jrc != 0)
        sl_debug("rule pattern not JIT-compiled, using the interpreter",
                 "rule=\"%s\" field=%s "
                 "err=%d",
                 r->name, field, jrc);
    if (pcre2_pattern_info(re, PCRE2_INFO_CAPTURECOUNT, &ncap) == 0 && ncap + 1 > *max_groups)
        *max_groups = ncap + 1;
    *out = re;
    return 0;
}

/* Group numbers that carry the name (more than one only with duplicate names). */
static int capture_numbers(struct mrule *mr, const struct sl_rule *r, struct sl_buf *errors)
{
    const char *name = r->group_capture ? r->group_capture : "";
    PCRE2_SPTR first = NULL, last = NULL;
    int n = pcre2_substring_nametable_scan(mr->re, (PCRE2_SPTR)name, &first, &last);
    size_t esz, count;

    if (n <= 0 || first == NULL || last == NULL) {
        add_error(errors, "rule %s: group_by: the pattern has no capture group named \"%s\"",
                  r->name, name);
        return SL_EINVAL;
    }
    esz = (size_t)n; /* with first/last, the scan returns the entry size */
    count = (size_t)(last - first) / esz + 1;
    mr->cap = calloc(count, sizeof(*mr->cap));
    if (mr->cap == NULL)
        return SL_ENOMEM;
    for (size_t k = 0; k < count; k++) {
        PCRE2_SPTR e = first + k * esz;
        mr->cap[k] = ((uint32_t)e[0] << 8) | e[1];
    }
    mr->ncap = count;
    return 0;
}

/* The index of glob g on field (0 app, 1 procid) in m->globs, adding it if new; -1 for
 * no glob, -2 when out of memory. globs has room for two per rule. */
static int add_glob(struct sl_matcher *m, const char *g, int field)
{
    if (g == NULL)
        return -1;
    for (size_t k = 0; k < m->nglobs; k++)
        if (m->globs[k][0] == (char)('0' + field) && strcmp(m->globs[k] + 1, g) == 0)
            return (int)k;
    /* stored as "<field><glob>" */
    m->globs[m->nglobs] = malloc(strlen(g) + 2);
    if (m->globs[m->nglobs] == NULL)
        return -2;
    m->globs[m->nglobs][0] = (char)('0' + field);
    memcpy(m->globs[m->nglobs] + 1, g, strlen(g) + 1);
    return (int)m->nglobs++;
}

static int compile_rule(struct sl_matcher *m, struct mrule *mr, const struct sl_rule *r,
                        sl_source_lookup lookup, void *arg, uint32_t *max_groups,
                        struct sl_buf *errors)
{
    int rc;

    mr->group_by = r->group_by;
    mr->on_crashes = r->on_crashes;
    mr->app = mr->procid = -1;
    if (r->pattern == NULL) {
        add_error(errors, "rule %s: pattern: missing", r->name);
        return SL_EINVAL;
    }
    rc = compile_one(r, "pattern", r->pattern, &mr->re, max_groups, errors);
    if (r->exclude != NULL) {
        int rc2 = compile_one(r, "exclude", r->exclude, &mr->ex, max_groups, errors);
        if (rc == 0)
            rc = rc2;
    }
    if (rc != 0)
        return rc;
    if (r->group_by == SL_GROUP_CAPTURE) {
        rc = capture_numbers(mr, r, errors);
        if (rc != 0)
            return rc;
    }
    if (r->nsources > 0) {
        size_t ns = r->nsources < SL_RULE_MAX_SOURCES ? r->nsources : SL_RULE_MAX_SOURCES;
        mr->src_scoped = true;
        mr->src = calloc(ns, sizeof(*mr->src));
        if (mr->src == NULL)
            return SL_ENOMEM;
        for (size_t k = 0; k < ns; k++) {
            /* Unknown names (id 0, or no lookup at all) match no line. */
            int64_t id = (lookup && r->sources[k]) ? lookup(arg, r->sources[k]) : 0;
            if (id != 0)
                mr->src[mr->nsrc++] = id;
        }
    }
    mr->app = add_glob(m, r->app, 0);
    mr->procid = add_glob(m, r->procid, 1);
    if (mr->app == -2 || mr->procid == -2)
        return SL_ENOMEM;
    return 0;
}

/* How common a (lowercased) byte is in log text, roughly: 4 very .. 0 rare. */
static int byte_commonness(unsigned char c)
{
    if (c == ' ')
        return 4;
    if (strchr("etaoinsrhl", c) != NULL && c != '\0')
        return 3;
    if (strchr("=.:/\"-_,0123456789", c) != NULL && c != '\0')
        return 2;
    if (c >= 'a' && c <= 'z')
        return 1;
    return 0;
}

/* Start of the len-byte window of lit (n bytes) made of the rarest bytes. */
static size_t rare_window(const char *lit, size_t n, size_t len)
{
    size_t best = 0;
    int best_score = 1 << 30;

    if (n <= len)
        return 0;
    for (size_t at = 0; at + len <= n; at++) {
        int score = 0;
        for (size_t k = 0; k < len; k++)
            score += byte_commonness((unsigned char)lit[at + k]);
        if (score < best_score) {
            best_score = score;
            best = at;
        }
    }
    return best;
}

/* Puts rule i into the scope group of the rules with the same scope, or a new one. */
static int assign_scope(struct sl_matcher *m, uint32_t i)
{
    const struct mrule *mr = &m->r[i];
    struct mscope *sc = NULL;

    for (size_t k = 0; k < m->nscopes && sc == NULL; k++) {
        struct mscope *c = &m->scopes[k];
        if (c->src_scoped == mr->src_scoped && c->nsrc == mr->nsrc && c->app == mr->app &&
            c->procid == mr->procid &&
            (c->nsrc == 0 || memcmp(c->src, mr->src, c->nsrc * sizeof(*c->src)) == 0))
            sc = c;
    }
    if (sc == NULL) {
        sc = &m->scopes[m->nscopes];
        sc->mask = calloc(m->nwords, sizeof(*sc->mask));
        if (sc->mask == NULL)
            return SL_ENOMEM;
        sc->src_scoped = mr->src_scoped;
        sc->nsrc = mr->nsrc;
        sc->src = mr->src;
        sc->app = mr->app;
        sc->procid = mr->procid;
        m->nscopes++;
    }
    sc->mask[i / 64] |= (uint64_t)1 << (i % 64);
    m->r[i].scope = (uint32_t)(sc - m->scopes);
    return 0;
}

/* Builds the prefilter. Without it (too large) every rule runs PCRE2. */
static int build_prefilter(struct sl_matcher *m, const struct sl_ruleset *rs)
{
    struct litset *sets = calloc(rs->nrules ? rs->nrules : 1, sizeof(*sets));
    struct ac_lit *lits = NULL;
    size_t nlits = 0, nwith = 0;
    int rc = SL_ENOMEM;

    if (sets == NULL)
        goto out;
    for (size_t i = 0; i < rs->nrules; i++) {
        required_literals(rs->rules[i].pattern, rs->rules[i].caseless, &sets[i]);
        nlits += sets[i].n;
        nwith += sets[i].n > 0;
    }
    rc = 0;
    if (nwith < AC_MIN_RULES)
        goto out;
    rc = SL_ENOMEM;
    lits = calloc(nlits, sizeof(*lits));
    if (lits == NULL)
        goto out;
    nlits = 0;
    for (size_t i = 0; i < rs->nrules; i++) {
        for (size_t k = 0; k < sets[i].n; k++) {
            size_t at = rare_window(sets[i].lit[k], sets[i].len[k], AC_LIT_MAX);
            lits[nlits].b = sets[i].lit[k] + at;
            lits[nlits].len = sets[i].len[k] < AC_LIT_MAX ? sets[i].len[k] : AC_LIT_MAX;
            lits[nlits++].rule = (uint32_t)i;
        }
    }
    rc = ac_build(m, lits, nlits);
    if (rc == SL_ETOOBIG) {
        sl_warn("rule literals too many for the prefilter; every rule runs PCRE2", "literals=%zu",
                nlits);
        rc = 0;
        goto out;
    }
    if (rc != 0)
        goto out;
    for (size_t i = 0; i < rs->nrules; i++) {
        m->r[i].prefilter = sets[i].n > 0;
        if (m->r[i].prefilter)
            m->litmask[i / 64] |= (uint64_t)1 << (i % 64);
    }
out:
    free(lits);
    free(sets);
    return rc;
}

int sl_matcher_new(const struct sl_ruleset *rs, sl_source_lookup lookup, void *arg,
                   const struct sl_matcher_limits *limits, struct sl_matcher **out,
                   struct sl_buf *errors)
{
    struct sl_matcher *m;
    uint32_t match_limit = DEFAULT_MATCH_LIMIT, depth_limit = DEFAULT_DEPTH_LIMIT;
    size_t jit_max = DEFAULT_JIT_STACK_MAX;
    uint32_t max_groups = 1;
    bool no_prefilter = false;
    const char *env = getenv("SLUICE_MATCH_NO_PREFILTER");
    int rc = SL_ENOMEM;

    *out = NULL;
    if (rs == NULL || (rs->nrules > 0 && rs->rules == NULL) || rs->nrules > UINT32_MAX / 2)
        return SL_EINVAL;
    if (limits != NULL) {
        if (limits->match_limit)
            match_limit = limits->match_limit;
        if (limits->depth_limit)
            depth_limit = limits->depth_limit;
        if (limits->jit_stack_max)
            jit_max = limits->jit_stack_max;
        no_prefilter = limits->no_prefilter;
    }
    if (env != NULL && env[0] != '\0' && strcmp(env, "0") != 0)
        no_prefilter = true;

    m = calloc(1, sizeof(*m));
    if (m == NULL)
        return SL_ENOMEM;
    m->nrules = rs->nrules;
    m->r = calloc(rs->nrules ? rs->nrules : 1, sizeof(*m->r));
    m->nwords = (rs->nrules + 63) / 64;
    m->seen = calloc(m->nwords ? m->nwords : 1, sizeof(*m->seen));
    m->litmask = calloc(m->nwords ? m->nwords : 1, sizeof(*m->litmask));
    m->inscope = calloc(m->nwords ? m->nwords : 1, sizeof(*m->inscope));
    m->scopes = calloc(rs->nrules ? rs->nrules : 1, sizeof(*m->scopes));
    if (!m->litmask || !m->inscope || !m->scopes)
        goto failed;
    m->globs = calloc(2 * rs->nrules + 1, sizeof(*m->globs));
    m->glob_gen = calloc(2 * rs->nrules + 1, sizeof(*m->glob_gen));
    m->glob_res = calloc(2 * rs->nrules + 1, sizeof(*m->glob_res));
    m->line_gen = 1;
    if (m->r == NULL || m->seen == NULL || !m->globs || !m->glob_gen || !m->glob_res)
        goto failed;

    /* Compile them all so that every bad rule is reported, not only the first. */
    rc = 0;
    for (size_t i = 0; i < rs->nrules; i++) {
        int r1 = compile_rule(m, &m->r[i], &rs->rules[i], lookup, arg, &max_groups, errors);
        if (r1 == SL_ENOMEM)
            goto failed_rc;
        if (r1 != 0)
            rc = r1;
    }
    if (rc != 0)
        goto failed;
    rc = SL_ENOMEM;
    for (size_t i = 0; i < rs->nrules; i++)
        if (assign_scope(m, (uint32_t)i) != 0)
            goto failed;

    m->md = pcre2_match_data_create(max_groups, NULL);
    m->mctx = pcre2_match_context_create(NULL);
    if (m->md == NULL || m->mctx == NULL)
        goto failed;
    if (pcre2_set_match_limit(m->mctx, match_limit) != 0 ||
        pcre2_set_depth_limit(m->mctx, depth_limit) != 0)
        goto failed;
    m->jstack = pcre2_jit_stack_create(jit_max < JIT_STACK_START ? jit_max : JIT_STACK_START,
                                       jit_max, NULL);
    if (m->jstack != NULL)
        pcre2_jit_stack_assign(m->mctx, NULL, m->jstack);
    /* else JIT code runs on its 32 KiB machine-stack default: still bounded. */

    if (!no_prefilter) {
        rc = build_prefilter(m, rs);
        if (rc != 0)
            goto failed;
    }
    *out = m;
    return 0;

failed_rc:
    rc = SL_ENOMEM;
failed:
    sl_matcher_free(m);
    return rc;
}

void sl_matcher_free(struct sl_matcher *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; m->r != NULL && i < m->nrules; i++) {
        struct mrule *mr = &m->r[i];
        pcre2_code_free(mr->re);
        pcre2_code_free(mr->ex);
        free(mr->src);
        free(mr->cap);
    }
    free(m->r);
    for (size_t k = 0; m->scopes != NULL && k < m->nscopes; k++)
        free(m->scopes[k].mask);
    free(m->scopes);
    free(m->litmask);
    free(m->inscope);
    for (size_t k = 0; k < m->nglobs; k++)
        free(m->globs[k]);
    free(m->globs);
    free(m->glob_gen);
    free(m->glob_res);
    pcre2_match_data_free(m->md);
    pcre2_match_context_free(m->mctx);
    pcre2_jit_stack_free(m->jstack);
    free(m->delta);
    free(m->outoff);
    free(m->outs);
    free(m->seen);
    free(m);
}

/* ------------------------------------------------------------------ matching */

enum { RE_NOMATCH = 0, RE_MATCH = 1, RE_LIMIT = -1 };

static int run_re(struct sl_matcher *m, const pcre2_code *re, const char *s, size_t n)
{
    int rc = pcre2_match(re, (PCRE2_SPTR)s, n, 0, 0, m->md, m->mctx);

    if (rc >= 0)
        return RE_MATCH; /* 0: ovector too small, cannot happen (sized for the largest) */
    switch (rc) {
    case PCRE2_ERROR_NOMATCH:
        return RE_NOMATCH;
    case PCRE2_ERROR_MATCHLIMIT:
    case PCRE2_ERROR_DEPTHLIMIT:
    case PCRE2_ERROR_HEAPLIMIT:
    case PCRE2_ERROR_JIT_STACKLIMIT:
        return RE_LIMIT;
    default:
        sl_debug("pcre2_match failed", "err=%d", rc);
        return RE_NOMATCH;
    }
}

/* Glob k on this line, evaluated once per line however many rules share it. */
static bool glob_on_line(struct sl_matcher *m, int k, const struct sl_match_line *line)
{
    if (m->glob_gen[k] != m->line_gen) {
        const char *g = m->globs[k];
        m->glob_res[k] = sl_glob_match(g + 1, g[0] == '0' ? line->app : line->procid);
        m->glob_gen[k] = m->line_gen;
    }
    return m->glob_res[k];
}

static bool in_scope(struct sl_matcher *m, const struct mscope *mr,
                     const struct sl_match_line *line)
{
    if (mr->src_scoped) {
        bool found = false;
        for (size_t k = 0; k < mr->nsrc && !found; k++)
            found = mr->src[k] == line->source_id;
        if (!found)
            return false;
    }
    if (mr->app >= 0 && !glob_on_line(m, mr->app, line))
        return false;
    if (mr->procid >= 0 && !glob_on_line(m, mr->procid, line))
        return false;
    return true;
}

/* The group_by slice of the match just made (before another match reuses md). */
static struct sl_str hit_group(const struct sl_matcher *m, const struct mrule *mr,
                               const struct sl_match_line *line, const char *s)
{
    if (mr->group_by == SL_GROUP_PROCID)
        return line->procid;
    if (mr->group_by == SL_GROUP_CAPTURE) {
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(m->md);
        uint32_t nov = pcre2_get_ovector_count(m->md);
        for (size_t k = 0; k < mr->ncap; k++) {
            uint32_t g = mr->cap[k];
            if (g < nov && ov[2 * g] != PCRE2_UNSET && ov[2 * g + 1] >= ov[2 * g])
                return sl_str_make(s + ov[2 * g], ov[2 * g + 1] - ov[2 * g]);
        }
    }
    return SL_STR_NULL;
}

/* Runs rule i on the message; fills *hit and returns true when it counts. */
static bool eval_rule(struct sl_matcher *m, uint32_t i, const struct sl_match_line *line,
                      const char *s, size_t n, struct sl_match_hit *hit)
{
    struct mrule *mr = &m->r[i];
    struct sl_str group;
    int r;

    if (mr->on_crashes != m->crash_mode)
        return false;
    mr->runs++;
    r = run_re(m, mr->re, s, n);
    if (r == RE_LIMIT)
        mr->limit_hits++;
    if (r != RE_MATCH)
        return false;
    group = hit_group(m, mr, line, s);
    if (mr->ex != NULL) {
        /* A limit on the exclude leaves the line undecided: it does not count. */
        r = run_re(m, mr->ex, s, n);
        if (r == RE_LIMIT)
            mr->limit_hits++;
        if (r != RE_NOMATCH)
            return false;
    }
    mr->matched++;
    hit->rule = i;
    hit->group = group;
    return true;
}

size_t sl_matcher_run(struct sl_matcher *m, const struct sl_match_line *line,
                      struct sl_match_hit *hits, size_t max)
{
    const char *s = line->msg.p != NULL ? line->msg.p : "";
    size_t n = line->msg.p != NULL ? line->msg.len : 0;
    size_t nh = 0, nw = m->nwords;
    uint64_t any_lit = 0;

    if (max == 0)
        return 0;
    if (++m->line_gen == 0) {
        memset(m->glob_gen, 0, m->nglobs * sizeof(*m->glob_gen));
        m->line_gen = 1;
    }
    /* Scope: one check per distinct scope. */
    memset(m->inscope, 0, nw * sizeof(*m->inscope));
    for (size_t k = 0; k < m->nscopes; k++) {
        struct mscope *sc = &m->scopes[k];
        if (!in_scope(m, sc, line))
            continue;
        sc->lines++;
        for (size_t w = 0; w < nw; w++)
            m->inscope[w] |= sc->mask[w];
    }
    /* Prefilter: one pass over the message if any rule in scope has a literal. */
    for (size_t w = 0; w < nw; w++)
        any_lit |= m->inscope[w] & m->litmask[w];
    if (any_lit)
        ac_scan(m, (const unsigned char *)s, n);
    /* PCRE2 for the rules that remain, in rule order. */
    for (size_t w = 0; w < nw; w++) {
        uint64_t cand = m->inscope[w];
        if (any_lit)
            cand &= m->seen[w] | ~m->litmask[w];
        while (cand != 0) {
            uint32_t i = (uint32_t)(w * 64 + (size_t)__builtin_ctzll(cand));
            cand &= cand - 1;
            if (!eval_rule(m, i, line, s, n, &hits[nh]))
                continue;
            if (++nh < max)
                continue;
            /* hits is full: the rules after i in scope were not evaluated */
            for (size_t w2 = w; w2 < nw; w2++) {
                uint64_t rest = m->inscope[w2];
                if (w2 == w)
                    rest &= (i % 64 == 63) ? 0 : ~(((uint64_t)2 << (i % 64)) - 1);
                while (rest != 0) {
                    m->r[w2 * 64 + (size_t)__builtin_ctzll(rest)].unevaluated++;
                    rest &= rest - 1;
                }
            }
            return nh;
        }
    }
    return nh;
}

size_t sl_matcher_run_crash(struct sl_matcher *m, const struct sl_match_line *line,
                            struct sl_match_hit *hits, size_t max)
{
    size_t n;

    m->crash_mode = true;
    n = sl_matcher_run(m, line, hits, max);
    m->crash_mode = false;
    return n;
}

void sl_matcher_rule_stats(const struct sl_matcher *m, uint32_t i, struct sl_rule_stats *st)
{
    const struct mrule *mr;

    memset(st, 0, sizeof(*st));
    if (m == NULL || i >= m->nrules)
        return;
    mr = &m->r[i];
    st->evaluated = m->scopes[mr->scope].lines - mr->unevaluated;
    st->prefiltered = st->evaluated - mr->runs;
    st->matched = mr->matched;
    st->limit_hits = mr->limit_hits;
}

/* ---------------------------------------------------------------- search links */

/* "/pattern/" as a query term into out[*n..cap): named groups plain, '/' escaped.
 * Returns false when it does not fit. */
static bool query_regex(const char *pat, bool negate, bool caseless, char *out, size_t cap,
                        size_t *n)
{
    bool in_class = false;
    size_t i = 0, len = strlen(pat);

#define PUT(c)                                                                                     \
    do {                                                                                           \
        if (*n + 1 >= cap)                                                                         \
            return false;                                                                          \
        out[(*n)++] = (c);                                                                         \
    } while (0)
    if (negate)
        PUT('-');
    PUT('/');
    while (i < len) {
        char c = pat[i];

        if (c == '\\') {
            PUT(c);
            if (i + 1 < len)
                PUT(pat[i + 1]);
            i += 2;
            continue;
        }
        if (in_class) {
            if (c == ']')
                in_class = false;
            if (c == '/')
                PUT('\\');
            PUT(c);
            i++;
            continue;
        }
        if (c == '[') {
            /* a ']' right after "[" or "[^" is a literal member, not the end */
            in_class = true;
            PUT(c);
            i++;
            if (i < len && pat[i] == '^')
                PUT(pat[i++]);
            if (i < len && pat[i] == ']')
                PUT(pat[i++]);
            continue;
        }
        if (c == '(' && i + 2 < len && pat[i + 1] == '?') {
            /* (?<name> (?P<name> (?'name' -> ( ; lookbehinds (?<= (?<! stay */
            size_t k = i + 2;
            char close = 0;
            if (pat[k] == 'P' && k + 1 < len && pat[k + 1] == '<')
                k++;
            if (pat[k] == '<' && k + 1 < len && pat[k + 1] != '=' && pat[k + 1] != '!')
                close = '>';
            else if (pat[k] == '\'')
                close = '\'';
            if (close) {
                const char *e = memchr(pat + k + 1, close, len - k - 1);
                if (e != NULL) {
                    PUT('(');
                    i = (size_t)(e - pat) + 1;
                    continue;
                }
            }
        }
        if (c == '/')
            PUT('\\');
        PUT(c);
        i++;
    }
    PUT('/');
    if (caseless)
        PUT('i');
#undef PUT
    out[*n] = '\0';
    return true;
}

static bool query_ok(const char *q, size_t n)
{
    struct sl_query *parsed = NULL;

    if (n == 0 || n > SL_QUERY_MAX_LEN || sl_query_parse(q, n, &parsed, NULL) != 0)
        return false;
    sl_query_free(parsed);
    return true;
}

size_t sl_match_search_query(const struct sl_rule *r, char *out, size_t cap)
{
    size_t n = 0, pat_n;

    if (cap == 0)
        return 0;
    out[0] = '\0';
    if (r == NULL || r->pattern == NULL ||
        !query_regex(r->pattern, false, r->caseless, out, cap, &n) || !query_ok(out, n)) {
        out[0] = '\0';
        return 0;
    }
    pat_n = n;
    if (r->exclude != NULL && n + 1 < cap) {
        out[n++] = ' ';
        if (!query_regex(r->exclude, true, r->caseless, out, cap, &n) || !query_ok(out, n)) {
            n = pat_n; /* the pattern alone: more lines, never fewer */
            out[n] = '\0';
        }
    }
    return n;
}
