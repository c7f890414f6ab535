/* The query AST -> a parameterised SQL predicate over `logs l`, and the tokens a match
 * requires (for the block Bloom prefilter). Contract in include/sluice/query.h; the AST
 * comes from drain/query.c (drain/query-internal.h), regexes arrive already translated to
 * PostgreSQL's ARE (drain/pcre2pg.c).
 *
 * Leaves to others: parsing (drain/query.c), resolving source names (the caller maps them
 * to ids), the time range, scoping, ordering, paging; running the SQL (drain/search.c).
 * Pure: no I/O, no libpq, no global state; any thread. Allocates the parameter strings
 * and the token arrays.
 *
 * Invariants worth knowing before changing anything:
 *  - User text only ever reaches parameters. The SQL text is made of this file's
 *    constants and $n; it never contains a quote.
 *  - Every token sl_query_tokens reports is present in every line the SQL matches
 *    (otherwise the Bloom prefilter would silently drop results). Words and phrases
 *    therefore match at token boundaries, case-insensitively for ASCII only (exactly
 *    the tokenizer's folding), and a regex contributes only tokens lying strictly
 *    inside one of its required literals. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query-internal.h"
#include "sluice/buf.h"
#include "sluice/err.h"
#include "sluice/fields.h"
#include "sluice/match.h"
#include "sluice/query.h"
#include "sluice/tokens.h"

/* ------------------------------------------------------------------ tables */

static const char *const cmp_sql[] = {"=", "<>", "<", "<=", ">", ">="};

/* The unit suffixes a line's value may carry, per dimension: re (ASCII
 * case-insensitive) and the factor to the dimension's base. */
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
 * a logfmt separator (any byte <= ' '). */
#define RE_NW "[\\x01-\\x2f\\x3a-\\x40\\x5b-\\x5e\\x60\\x7b-\\x7f]"
#define RE_SEP "[\\x01-\\x20]"
#define RE_NUMV "-?[0-9]{1,20}(?:\\.[0-9]{1,20})?"

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
static int param_only(struct gen *g, const char *v, size_t n)
{
    size_t len = g->sql->len;
    int rc = param(g, v, n);

    g->sql->len = len; /* drop the "$n" param() wrote */
    return rc;
}

/* A NUL-terminated constant of this file. */
static int buf_adds(struct sl_buf *b, const char *s)
{
    return sl_buf_add(b, s, strlen(s));
}

static int add_s(struct gen *g, const char *s)
{
    return buf_adds(g->sql, s);
}

/* One byte of literal text in an ARE. */
static int re_lit(struct sl_buf *b, unsigned char c, bool icase)
{
    if (icase && sl_ascii_alpha(c)) {
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
        rc = buf_adds(b, "(?:^|" RE_NW ")");
    if (rc == 0)
        rc = re_lits(b, s, n, true);
    if (rc == 0 && is_tok((unsigned char)s[n - 1]))
        rc = buf_adds(b, "(?:" RE_NW "|$)");
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
    int rc = buf_adds(b, "(?:^|" RE_SEP ")");

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
        rc = buf_adds(b, "\")(?:" RE_SEP "|$)");
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

/* The numeric value of text expression fv (which may be NULL-valued) under the node's
 * unit dimension: a bare number, or with one of the dimension's units converted to its
 * base. NULL when the text is no such number; only text a regex accepted is cast. */
static int gen_num_value(struct gen *g, const struct node *nd, const char *fv)
{
    struct sl_buf b;
    int l, rc = 0;

    sl_buf_init(&b, 4 * SL_QUERY_MAX_LEN);
    if (nd->dim == D_NONE) {
        int r = g->next;
        rc = buf_adds(&b, "^\"?" RE_NUMV "\"?$");
        if (rc == 0)
            rc = param_only(g, b.p, b.len);
        if (rc == 0)
            rc = sl_buf_addf(g->sql, "CASE WHEN %s ~ $%d THEN btrim(%s, chr(34))::numeric END", fv,
                             r, fv);
    } else {
        const struct unit_alt *alts = nd->dim == D_TIME ? time_alts : byte_alts;
        const char *letters = nd->dim == D_TIME ? "usmUSM" : "bytesgkmBYTESGKM";
        l = g->next;
        rc = param_only(g, letters, strlen(letters));
        if (rc == 0)
            rc = add_s(g, "COALESCE(");
        for (int a = 0; rc == 0 && alts[a].re != NULL; a++) {
            int r = g->next;
            bool base = strcmp(alts[a].factor, "1") == 0;
            sl_buf_reset(&b);
            rc = sl_buf_addf(&b, base ? "^\"?%s(?:%s)?\"?$" : "^\"?%s%s\"?$", RE_NUMV, alts[a].re);
            if (rc == 0)
                rc = param_only(g, b.p, b.len);
            if (rc == 0)
                rc = sl_buf_addf(g->sql,
                                 "%sCASE WHEN %s ~ $%d THEN rtrim(btrim(%s, chr(34)), $%d)::numeric%s%s END",
                                 a > 0 ? ", " : "", fv, r, fv, l, base ? "" : " * ",
                                 base ? "" : alts[a].factor);
        }
        if (rc == 0)
            rc = sl_buf_addc(g->sql, ')');
    }
    sl_buf_free(&b);
    return rc;
}

/* " op $n::numeric" and the query unit's factor. */
static int gen_num_rhs(struct gen *g, const struct node *nd)
{
    int rc = sl_buf_addf(g->sql, " %s ", cmp_sql[nd->op]);

    if (rc == 0)
        rc = param(g, nd->val, nd->vlen);
    if (rc == 0)
        rc = add_s(g, "::numeric");
    if (rc == 0 && nd->dim != D_NONE && strcmp(sl_query_units[nd->unit].factor, "1") != 0)
        rc = sl_buf_addf(g->sql, " * %s", sl_query_units[nd->unit].factor);
    return rc;
}

static int gen_field_num(struct gen *g, const struct node *nd)
{
    struct sl_buf b;
    char fv[128];
    int k, rc;

    sl_buf_init(&b, 4 * SL_QUERY_MAX_LEN);
    rc = sl_buf_addf(&b, " %s=", nd->key);
    k = g->next;
    if (rc == 0)
        rc = param_only(g, b.p, b.len);
    sl_buf_free(&b);
    (void)snprintf(fv, sizeof(fv), FV, k);
    if (rc == 0)
        rc = gen_num_value(g, nd, fv);
    return rc ? rc : gen_num_rhs(g, nd);
}

/* ------------------------------------------------------------------ JSON fields */

/* A glob (* ?) as a LIKE pattern (PostgreSQL's default escape, the backslash). */
static int like_pattern(struct sl_buf *b, const char *v, size_t n)
{
    int rc = 0;

    for (size_t i = 0; i < n && rc == 0; i++) {
        char c = v[i];
        if (c == '*')
            rc = sl_buf_addc(b, '%');
        else if (c == '?')
            rc = sl_buf_addc(b, '_');
        else if (c == '%' || c == '_' || c == '\\')
            rc = sl_buf_add(b, (const char[]){'\\', c}, 2);
        else
            rc = sl_buf_addc(b, c);
    }
    return rc;
}

/* The key as a text[] literal of its dotted segments: {"user","id"}. */
static int path_array(struct sl_buf *b, const char *key)
{
    int rc = sl_buf_add(b, "{\"", 2);

    for (const char *c = key; *c != '\0' && rc == 0; c++) {
        if (*c == '.')
            rc = sl_buf_add(b, "\",\"", 3);
        else if (*c == '"' || *c == '\\')
            rc = sl_buf_add(b, (const char[]){'\\', *c}, 2);
        else
            rc = sl_buf_addc(b, *c);
    }
    return rc ? rc : sl_buf_add(b, "\"}", 2);
}

/* The field on the line's JSON object (drain/fields.c; docs/search.md "JSON lines"),
 * never NULL: false for a row without one. The object text is cast only for rows whose
 * json_at the writer set after validating it, so the cast never raises; duplicate keys
 * keep the last (jsonb). v is the value at the path, or at the whole key at the top level
 * when nothing nests ({"user.id": 1}). Strings compare as text, numbers as numbers
 * (42.0 is 42), true/false/null as themselves; <, >... take numbers and strings holding
 * one (with the query's units). Every placeholder is a parameter: no quote in the SQL. */
static int gen_field_json(struct gen *g, const struct node *nd)
{
    struct sl_buf b;
    int e, rc;

    sl_buf_init(&b, 4 * SL_QUERY_MAX_LEN);
    /* $e, the empty path (a scalar's text), only where it is used: PostgreSQL cannot type
     * a parameter the statement never mentions */
    e = g->next;
    rc = nd->numeric || nd->glob ? param_only(g, "{}", 2) : 0;
    if (rc == 0)
        rc = add_s(g, "COALESCE(CASE WHEN l.json_at IS NULL THEN false ELSE (SELECT ");
    if (rc != 0)
        goto out;
    if (nd->numeric) {
        char fv[96];
        int tn = g->next;
        rc = param_only(g, "number", 6);
        if (rc == 0)
            rc = sl_buf_addf(g->sql, "CASE WHEN jsonb_typeof(v) = $%d THEN v::numeric ELSE ", tn);
        (void)snprintf(fv, sizeof(fv), "jsonb_extract_path_text(v, VARIADIC $%d::text[])", e);
        if (rc == 0)
            rc = gen_num_value(g, nd, fv);
        if (rc == 0)
            rc = add_s(g, " END");
        if (rc == 0)
            rc = gen_num_rhs(g, nd);
    } else {
        int t = g->next;
        /* "null" quoted: a bare NULL in an array literal is SQL's NULL */
        static const char types[] = "{string,number,boolean,\"null\"}";
        rc = param_only(g, types, sizeof(types) - 1);
        if (rc == 0)
            rc = sl_buf_addf(g->sql, "(jsonb_typeof(v) = ANY($%d::text[]) AND %s(", t,
                             nd->op == C_NE ? "NOT " : "");
        if (rc == 0 && nd->glob) {
            rc = sl_buf_addf(g->sql, "jsonb_extract_path_text(v, VARIADIC $%d::text[]) LIKE ", e);
            if (rc == 0)
                rc = like_pattern(&b, nd->val, nd->vlen);
            if (rc == 0)
                rc = param_buf(g, &b);
        } else if (rc == 0) {
            char canon[SL_FIELDS_CANON_MAX + 2];
            bool lit = sl_fields_num_canon(nd->val, nd->vlen, canon, sizeof(canon)) > 0 ||
                       strcmp(nd->val, "true") == 0 || strcmp(nd->val, "false") == 0 ||
                       strcmp(nd->val, "null") == 0;
            rc = add_s(g, "v = to_jsonb(");
            if (rc == 0)
                rc = param(g, nd->val, nd->vlen);
            if (rc == 0)
                rc = add_s(g, "::text)");
            if (rc == 0 && lit) {
                rc = add_s(g, " OR v = ");
                if (rc == 0)
                    rc = param(g, nd->val, nd->vlen);
                if (rc == 0)
                    rc = add_s(g, "::jsonb");
            }
        }
        if (rc == 0)
            rc = add_s(g, "))");
    }
    if (rc == 0)
        rc = add_s(g, " FROM (SELECT COALESCE(jsonb_extract_path(j, VARIADIC ");
    sl_buf_reset(&b);
    if (rc == 0)
        rc = path_array(&b, nd->key);
    if (rc == 0)
        rc = param_buf(g, &b);
    if (rc == 0)
        rc = add_s(g, "::text[]), jsonb_extract_path(j, ");
    if (rc == 0)
        rc = param(g, nd->key, strlen(nd->key));
    if (rc == 0)
        rc = add_s(g, "::text)) AS v FROM (SELECT substr(l.message, l.json_at)::jsonb AS j) "
                      "AS jo) AS jv) END, false)");
out:
    sl_buf_free(&b);
    return rc;
}

/* A field: the logfmt field of the line OR the JSON leaf of its object. */
static int gen_field(struct gen *g, const struct node *nd)
{
    struct sl_buf b;
    int rc = sl_buf_add(g->sql, "((", 2);

    if (rc == 0 && nd->numeric) {
        rc = gen_field_num(g, nd);
    } else if (rc == 0) {
        sl_buf_init(&b, 32 * SL_QUERY_MAX_LEN);
        rc = add_s(g, "l.message ~ ");
        if (rc == 0)
            rc = re_field_text(&b, nd);
        if (rc == 0)
            rc = param_buf(g, &b);
        sl_buf_free(&b);
    }
    if (rc == 0)
        rc = add_s(g, ") OR ");
    if (rc == 0)
        rc = gen_field_json(g, nd);
    return rc ? rc : sl_buf_addc(g->sql, ')');
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
            rc = sl_buf_addc(&b, (char)lower((unsigned char)nd->val[i]));
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
        return gen_field(g, nd);
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

/* Numeric classes only for keys well inside the JSON walk's path bound (a leaf past it is
 * never walked, so the writer could not have classed it). */
#define NUMCLASS_KEY_QUERY_MAX 200
_Static_assert(SL_NUMCLASS_N <= SL_QUERY_MAX_CONJ, "a field's classes fit one DNF");

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
        /* A plain number compared (status:>=500): one of the classes a satisfying value
         * may have, or the key's ANY (include/sluice/tokens.h) */
        if (nd->numeric && nd->dim == D_NONE && strlen(nd->key) <= NUMCLASS_KEY_QUERY_MAX) {
            unsigned set = sl_numclass_query((int)nd->op, nd->val, nd->vlen);
            if (set != 0) {
                out->any = false;
                for (int k = 0; k < SL_NUMCLASS_N && out->n < SL_QUERY_MAX_CONJ; k++)
                    if (set & (1u << k)) {
                        struct conj *cc = &out->c[out->n++];
                        *cc = c;
                        conj_add(cc, sl_numclass_hash(nd->key, strlen(nd->key), k));
                    }
                return 0;
            }
        }
        /* A JSON number equals the value whatever its form (42.0, 4.2e1): the writer adds
         * the canonical text of a line's non-canonical numbers, so a canonical value's
         * tokens are there; a non-canonical value ("42.0") requires only the key. */
        if (!nd->numeric && nd->op == C_EQ) {
            char canon[SL_FIELDS_CANON_MAX + 2];
            size_t k = sl_fields_num_canon(nd->val, nd->vlen, canon, sizeof(canon));
            bool num = sl_fields_is_number(nd->val, nd->vlen);
            if (!num || (k == nd->vlen && memcmp(canon, nd->val, k) == 0))
                bounded_tokens(&c, nd->val, nd->vlen, true, nd->glob);
        }
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

/* The query's own tokens by hash, for sl_query_tokens' cls and rare: every numeric class
 * a comparison may ask for, and a rarity guess for each word. Room for all: at most one
 * token per two bytes of the text, and SL_NUMCLASS_N classes per term. */
#define QTOK_MAX (SL_QUERY_MAX_LEN / 2 + SL_QUERY_MAX_TERMS * SL_NUMCLASS_N)
struct qtoks {
    uint64_t h[QTOK_MAX];
    uint8_t rare[QTOK_MAX];
    bool cls[QTOK_MAX];
    size_t k;
};

static void qtok_add(struct qtoks *t, uint64_t hash, uint8_t rare, bool cls)
{
    for (size_t i = 0; i < t->k; i++)
        if (t->h[i] == hash)
            return;
    if (t->k < QTOK_MAX) {
        t->h[t->k] = hash;
        t->rare[t->k] = rare;
        t->cls[t->k++] = cls;
    }
}

static void qtok_cb(void *arg, const char *tok, size_t len, uint64_t hash)
{
    size_t score = len > 190 ? 190 : len;
    for (size_t i = 0; i < len; i++)
        if (tok[i] >= '0' && tok[i] <= '9') {
            score += 64; /* ids and numbers are rarer than words */
            break;
        }
    qtok_add(arg, hash, (uint8_t)score, false);
}

static void qtok_walk(const struct node *nd, struct qtoks *t)
{
    if (nd->kind == N_WORD || nd->kind == N_PHRASE || nd->kind == N_MESSAGE)
        (void)sl_tokenize(nd->val, nd->vlen, qtok_cb, t);
    if (nd->kind == N_FIELD) {
        if (nd->numeric && nd->dim == D_NONE)
            for (int k = 0; k < SL_NUMCLASS_N; k++)
                qtok_add(t, sl_numclass_hash(nd->key, strlen(nd->key), k), 0, true);
        (void)sl_tokenize(nd->key, strlen(nd->key), qtok_cb, t);
        (void)sl_tokenize(nd->val, nd->vlen, qtok_cb, t);
    }
    for (size_t i = 0; i < nd->nkid; i++)
        qtok_walk(nd->kid[i], t);
}

int sl_query_tokens(const struct sl_query *q, struct sl_query_tokens *out)
{
    struct dnf *d;
    struct qtoks *tl = NULL;
    size_t total = 0, w = 0;
    int rc;

    out->hash = NULL;
    out->cls = NULL;
    out->rare = NULL;
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
    out->cls = malloc(total ? total : 1);
    out->rare = malloc(total ? total : 1);
    out->off = malloc((d->n + 1) * sizeof(*out->off));
    if (out->hash == NULL || out->cls == NULL || out->rare == NULL || out->off == NULL ||
        (tl = malloc(sizeof(*tl))) == NULL) {
        sl_query_tokens_free(out);
        goto out;
    }
    tl->k = 0;
    qtok_walk(q->root, tl);
    for (size_t i = 0; i < d->n; i++) {
        out->off[i] = w;
        memcpy(out->hash + w, d->c[i].h, d->c[i].n * sizeof(uint64_t));
        for (size_t j = 0; j < d->c[i].n; j++) {
            out->cls[w + j] = 0;
            out->rare[w + j] = 0;
            for (size_t k = 0; k < tl->k; k++)
                if (tl->h[k] == d->c[i].h[j]) {
                    out->cls[w + j] = tl->cls[k];
                    out->rare[w + j] = tl->rare[k];
                    break;
                }
        }
        w += d->c[i].n;
    }
    out->off[d->n] = w;
    out->nconj = d->n;
    rc = 0;
out:
    free(tl);
    free(d);
    return rc;
}

void sl_query_tokens_free(struct sl_query_tokens *t)
{
    if (t == NULL)
        return;
    free(t->hash);
    free(t->cls);
    free(t->rare);
    free(t->off);
    t->hash = NULL;
    t->cls = NULL;
    t->rare = NULL;
    t->off = NULL;
    t->nconj = 0;
}

static bool is_needle(const struct node *nd)
{
    return (nd->kind == N_WORD || nd->kind == N_PHRASE || nd->kind == N_MESSAGE) && nd->vlen > 0;
}

/* One element of a text[] literal: "text", with " and \ escaped. */
static int add_needle(struct sl_buf *out, const struct node *nd, bool first)
{
    int rc = first ? 0 : sl_buf_addc(out, ',');

    if (rc == 0)
        rc = sl_buf_addc(out, '"');
    for (size_t i = 0; i < nd->vlen && rc == 0; i++) {
        unsigned char c = lower((unsigned char)nd->val[i]);
        if (c == '"' || c == '\\')
            rc = sl_buf_addc(out, '\\');
        if (rc == 0)
            rc = sl_buf_addc(out, (char)c);
    }
    return rc ? rc : sl_buf_addc(out, '"');
}

int sl_query_needles(const struct sl_query *q, struct sl_buf *out)
{
    const struct node *root = q ? q->root : NULL;
    int rc = sl_buf_addc(out, '{');
    bool first = true;

    if (rc == 0 && root && is_needle(root)) {
        rc = add_needle(out, root, true);
    } else if (rc == 0 && root && root->kind == N_AND) {
        for (size_t i = 0; i < root->nkid && rc == 0; i++)
            if (is_needle(root->kid[i])) {
                rc = add_needle(out, root->kid[i], first);
                first = false;
            }
    }
    return rc ? rc : sl_buf_addc(out, '}');
}
