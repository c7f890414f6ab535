/* The query AST, shared by the parser (drain/query.c) and the SQL and token generator
 * (drain/query_sql.c). Private to those two files: the public contract is
 * include/sluice/query.h, where struct sl_query is opaque. */
#ifndef SLUICE_QUERY_INTERNAL_H
#define SLUICE_QUERY_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "sluice/str.h"

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
    int unit;    /* index into sl_query_units[] when dim != D_NONE */
    int64_t num; /* severity, facility */
    size_t src;  /* source name index */
    char *key;   /* field key */
    char *val;   /* value (unescaped) / regex as written / number text */
    size_t vlen;
    char *re; /* regex translated for PostgreSQL (drain/pcre2pg.c) */
    struct node **kid;
    size_t nkid, kcap;
};

struct sl_query {
    struct node *root;
    char **src; /* source names in order of first appearance */
    size_t nsrc;
};

/* Units of logfmt numbers (key:>1s, key:<10mb), ended by a NULL name. In the line, each
 * unit of the query's dimension is tried and converted to the dimension's base (ms,
 * bytes) by factor; a bare number counts in the base unit (bytes=656 is 656 bytes). */
struct sl_query_unit {
    const char *name;
    enum dim dim;
    const char *factor; /* SQL numeric constant; "1": none */
};
extern const struct sl_query_unit sl_query_units[];

/* A byte of a token (include/sluice/tokens.h). */
static inline bool is_tok(unsigned char c)
{
    return sl_ascii_alnum(c) || c == '_' || c >= 0x80;
}

static inline unsigned char lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

/* A NUL-terminated copy of p[0..n) (p may be NULL when n is 0); NULL when out of memory. */
static inline char *dup_n(const char *p, size_t n)
{
    char *s = malloc(n + 1);

    if (s != NULL) {
        if (n > 0)
            memcpy(s, p, n);
        s[n] = '\0';
    }
    return s;
}

#endif
