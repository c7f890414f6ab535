/* The search query language: text -> AST, error positions, and the AST as an
 * S-expression. Contract and language in include/sluice/query.h; spec: issue 3 "Query
 * language" and Papertrail's search syntax (docs/reference outbound.md).
 *
 * Leaves to others: the SQL and the required tokens (drain/query_sql.c, which reads the
 * AST of drain/query-internal.h), the PCRE -> PostgreSQL regex translation
 * (drain/pcre2pg.c), resolving source names (the caller). Pure: no I/O, no libpq, no
 * global state; any thread. Allocates the AST.
 *
 * Invariant worth knowing before changing anything: a /regex/ is validated by
 * drain/pcre2pg.c against the part of PCRE that PostgreSQL's ARE runs with the same
 * meaning, so a query that parses never makes PostgreSQL raise. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query-internal.h"
#include "sluice/buf.h"
#include "sluice/err.h"
#include "sluice/pcre2pg.h"
#include "sluice/query.h"
#include "sluice/utf8.h"

/* ------------------------------------------------------------------ tables */

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

const struct sl_query_unit sl_query_units[] = {
    {"us", D_TIME, "0.001"},    {"ms", D_TIME, "1"},           {"s", D_TIME, "1000"},
    {"b", D_BYTES, "1"},        {"bytes", D_BYTES, "1"},       {"kb", D_BYTES, "1024"},
    {"mb", D_BYTES, "1048576"}, {"gb", D_BYTES, "1073741824"}, {NULL, D_NONE, NULL},
};

/* Digits of each part of a number; drain/query_sql.c's RE_NUMV accepts the same. */
#define NUM_DIGITS_MAX 20

/* ------------------------------------------------------------------ small helpers */

static bool is_ws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
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

/* After NOT or AND: a term must follow, not the end, a ')' or another keyword. */
static bool term_follows(const struct parser *p)
{
    return !(p->i >= p->len || p->s[p->i] == ')' || keyword(p, "OR") || keyword(p, "AND"));
}

/* One level deeper (a group or a negation) at pos; the caller decrements p->depth. */
static int nest(struct parser *p, size_t pos)
{
    if (++p->depth > SL_QUERY_MAX_DEPTH)
        return fail(p, SL_ETOOBIG, pos, 0, "nesting too deep");
    return 0;
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

/* ------------------------------------------------------------------ terms */

/* The run of 1..NUM_DIGITS_MAX digits at v[*i] (of n bytes), *i moved past it; the
 * errors cite the whole value at pos. */
static int digit_run(struct parser *p, const char *v, size_t n, size_t *i, size_t pos)
{
    size_t d = *i;

    while (*i < n && sl_ascii_digit((unsigned char)v[*i]))
        ++*i;
    if (*i == d)
        return fail(p, SL_EPARSE, pos, n, "expected a number");
    if (*i - d > NUM_DIGITS_MAX)
        return fail(p, SL_EPARSE, pos, n, "number too long");
    return 0;
}

/* The number of nd->val (n bytes), with an optional unit; cuts the unit off nd->val. */
static int parse_number(struct parser *p, size_t n, size_t pos, struct node *nd)
{
    const char *v = nd->val;
    size_t i = 0;
    int rc;

    if (i < n && v[i] == '-')
        i++;
    if ((rc = digit_run(p, v, n, &i, pos)) != 0)
        return rc;
    if (i < n && v[i] == '.') {
        i++;
        if ((rc = digit_run(p, v, n, &i, pos)) != 0)
            return rc;
    }
    nd->dim = D_NONE;
    if (i < n) {
        int u;
        for (u = 0; sl_query_units[u].name != NULL; u++)
            if (ieq(v + i, n - i, sl_query_units[u].name))
                break;
        if (sl_query_units[u].name == NULL)
            return fail(p, SL_EPARSE, pos + i, n - i, "unknown unit");
        nd->dim = sl_query_units[u].dim;
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
    return i < n && sl_ascii_digit((unsigned char)v[i]);
}

static int lookup_num(const struct name_num *t, int max, const char *v, size_t n, int64_t *out)
{
    if (n > 0 && n <= 2 && sl_ascii_digit((unsigned char)v[0]) &&
        (n == 1 || sl_ascii_digit((unsigned char)v[1]))) {
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

/* Source and the syslog attributes compare with = or != only, message: with = only. */
static bool op_allowed(enum nkind kind, enum cmp op, bool has_op)
{
    switch (kind) {
    case N_SOURCE:
    case N_APP:
    case N_PROC:
    case N_HOST:
        return op == C_EQ || op == C_NE;
    case N_MESSAGE:
        return !has_op || op == C_EQ;
    default:
        return true;
    }
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
    if (!op_allowed(kind, op, has_op)) {
        rc = fail(p, SL_EPARSE, start + keylen + 1, vpos - start - keylen - 1,
                  "operator not allowed here");
        goto out;
    }
    switch (kind) {
    case N_SOURCE:
    case N_APP:
    case N_PROC:
    case N_HOST:
        nd->glob = has_glob(nd->val, nd->vlen);
        if (kind == N_SOURCE) {
            bool ok = nd->vlen > 0 && nd->vlen <= 64;
            for (size_t k = 0; k < nd->vlen; k++) {
                unsigned char c = (unsigned char)nd->val[k];
                if (!sl_ascii_alnum(c) && c != '.' && c != '_' && c != '-' && c != '*' && c != '?')
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
        if (nd->vlen == 0) {
            rc = fail(p, SL_EPARSE, vpos, 0, "empty phrase");
            goto out;
        }
        break;
    case N_SEVERITY:
    case N_FACILITY: {
        bool sev = kind == N_SEVERITY;
        if (lookup_num(sev ? severities : facilities, sev ? 7 : 23, nd->val, nd->vlen, &nd->num) !=
            0) {
            rc = fail(p, SL_EPARSE, vpos, nd->vlen, sev ? "unknown severity" : "unknown facility");
            goto out;
        }
        break;
    }
    default: /* N_FIELD */
        if ((nd->key = dup_n(key, keylen)) == NULL)
            goto out;
        /* < <= > >= always compare numbers; = and != when written with a number */
        if ((op != C_EQ && op != C_NE) || (has_op && looks_numeric(nd->val, nd->vlen))) {
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

    if (i >= p->len || !(sl_ascii_alpha((unsigned char)p->s[i]) || p->s[i] == '_'))
        return 0;
    while (i < p->len && i - p->i < 64 &&
           (sl_ascii_alnum((unsigned char)p->s[i]) || strchr("_.#-", p->s[i]) != NULL))
        i++;
    return i < p->len && p->s[i] == ':' ? i - p->i : 0;
}

static int parse_or(struct parser *p, struct node **out);

static int parse_regex(struct parser *p, size_t close, bool icase, struct node **out)
{
    size_t start = p->i, n = close - start - 1;
    const char *body = p->s + start + 1;
    struct sl_pcre2pg_err e;
    struct sl_buf re;
    struct node *nd = NULL;
    int rc;

    if (close == start + 1)
        return fail(p, SL_EPARSE, start, 0, "empty regex");
    if ((rc = count_term(p, start)) != 0)
        return rc;
    sl_buf_init(&re, 4 * SL_QUERY_MAX_LEN);
    if ((rc = sl_pcre2pg_translate(body, n, &re, &e)) != 0) {
        if (rc == SL_EPARSE)
            rc = fail(p, rc, start + 1 + e.pos, e.len, e.reason);
        goto out;
    }
    rc = SL_ENOMEM;
    if ((nd = node_new(N_REGEX)) == NULL)
        goto out;
    nd->icase = icase;
    if ((nd->val = dup_n(body, n)) == NULL || (nd->re = dup_n(re.p, re.len)) == NULL)
        goto out;
    nd->vlen = n;
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
        if ((rc = nest(p, start)) != 0)
            return rc;
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
        if (!term_follows(p))
            return fail(p, SL_EPARSE, start, 0, "nothing to negate");
        neg = true;
    }
    if (neg) {
        struct node *nd, *kid = NULL;
        int rc;
        if ((rc = nest(p, start)) != 0)
            return rc;
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

/* Moves *kid into *all, an AND or OR node (kind) made on first use. On error *kid stays
 * the caller's. */
static int join(struct node **all, enum nkind kind, struct node **kid)
{
    int rc;

    if (*all == NULL && (*all = node_new(kind)) == NULL)
        return SL_ENOMEM;
    if ((rc = node_add(*all, *kid)) != 0)
        return rc;
    *kid = NULL;
    return 0;
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
            if (!term_follows(p)) {
                rc = fail(p, SL_EPARSE, at, 3, "AND needs a term after it");
                goto out;
            }
        }
        if (kid != NULL && (rc = join(&all, N_AND, &kid)) != 0)
            goto out;
        if ((rc = parse_unary(p, &kid)) != 0)
            goto out;
    }
    if (all != NULL && kid != NULL && (rc = join(&all, N_AND, &kid)) != 0)
        goto out;
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
        if (all == NULL && !keyword(p, "OR")) {
            *out = kid; /* a lone AND term */
            return 0;
        }
        if ((rc = join(&all, N_OR, &kid)) != 0)
            goto out;
        if (!keyword(p, "OR"))
            break;
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
        if ((l = sl_utf8_seq((const unsigned char *)text + i, len - i, &cp)) == 0)
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

/* " = \"v\"", " != ...", " glob ..." or " !glob ...": a value compared as text. */
static int dump_text_cmp(const struct node *nd, struct sl_buf *b)
{
    int rc =
        sl_buf_addf(b, " %s ", nd->glob ? (nd->op == C_EQ ? "glob" : "!glob") : cmp_dump[nd->op]);

    return rc ? rc : dump_str(b, nd->val, nd->vlen);
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
        rc = dump_text_cmp(nd, b);
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
                rc = sl_buf_addf(b, " %s", sl_query_units[nd->unit].name);
        } else if (rc == 0) {
            rc = dump_text_cmp(nd, b);
        }
        break;
    }
    return rc ? rc : sl_buf_addc(b, ')');
}

int sl_query_dump(const struct sl_query *q, struct sl_buf *out)
{
    return dump_node(q->root, out);
}
