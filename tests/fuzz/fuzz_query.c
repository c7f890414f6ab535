/* libFuzzer target for the query module: drain/query.c, query_sql.c and pcre2pg.c
 * (sl_query_parse, _sql, _tokens, _dump, _errfmt).
 *
 *   make fuzz     needs, in the Makefile:
 *                   FUZZ_SRC_query := drain/query.c drain/query_sql.c drain/pcre2pg.c
 *                                     drain/tokens.c drain/util.c rules/match.c
 *                   FUZZ_LIBS_query := -lpcre2-8
 *
 * Besides memory errors (the query is an exact-size heap copy, so a read past len is an
 * ASan report) it checks the contract: a refused query has an error inside the text and
 * one of the two error codes; an accepted one dumps, generates SQL made only of this
 * module's alphabet (never a quote or ';') whose placeholders are exactly $first ..
 * $first+n-1 for n parameters (some used more than once), with every parameter valid UTF-8 and free
 * of NUL; and reports sorted, duplicate-free token conjunctions within the caps. The first input
 * byte picks how many ids each source name resolves to and the first parameter index. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/buf.h"
#include "sluice/err.h"
#include "sluice/query.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            abort();                                                                               \
    } while (0)

static bool utf8_ok(const unsigned char *p, size_t n)
{
    size_t i = 0;

    while (i < n) {
        unsigned char c = p[i];
        size_t k = c < 0x80                 ? 1
                   : c >= 0xc2 && c <= 0xdf ? 2
                   : c >= 0xe0 && c <= 0xef ? 3
                   : c >= 0xf0 && c <= 0xf4 ? 4
                                            : 0;
        if (k == 0 || i + k > n)
            return false;
        for (size_t j = 1; j < k; j++)
            if ((p[i + j] & 0xc0) != 0x80)
                return false;
        i += k;
    }
    return true;
}

/* The SQL's placeholders are exactly first .. first+n-1, each used at least once (a
 * placeholder may repeat and need not appear in order), and nothing else. */
#define MAX_PARAMS 2048
static void check_sql(const char *s, size_t len, int first, size_t n)
{
    static bool used[MAX_PARAMS];

    CHECK(n < MAX_PARAMS);
    memset(used, 0, sizeof(used));
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        CHECK((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr(" _.$()<>=~*,[]:|", c) != NULL);
        if (c == '$') {
            long v = 0;
            size_t j = i + 1;
            CHECK(j < len && s[j] >= '1' && s[j] <= '9');
            while (j < len && s[j] >= '0' && s[j] <= '9' && v < 100000)
                v = v * 10 + (s[j++] - '0');
            CHECK(v >= first && (size_t)(v - first) < n);
            used[v - first] = true;
            i = j - 1;
        }
    }
    for (size_t k = 0; k < n; k++)
        CHECK(used[k]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int64_t ids[3] = {1, 2, 3};
    struct sl_query *q = NULL;
    struct sl_query_err e = {0, 0, NULL};
    struct sl_buf b;
    struct sl_query_params par;
    struct sl_query_tokens t;
    const char *names[SL_QUERY_MAX_TERMS];
    struct sl_query_ids src[SL_QUERY_MAX_TERMS];
    char msg[256];
    char *text;
    size_t nsrc;
    int first, rc;
    uint8_t mode;

    if (size < 1)
        return 0;
    mode = data[0];
    data++;
    size--;
    text = malloc(size ? size : 1);
    CHECK(text != NULL);
    memcpy(text, data, size);

    rc = sl_query_parse(text, size, &q, &e);
    if (rc != 0) {
        CHECK(q == NULL);
        CHECK(rc == SL_EPARSE || rc == SL_ETOOBIG);
        CHECK(e.reason != NULL && e.reason[0] != '\0');
        CHECK(e.pos <= size || (rc == SL_ETOOBIG && e.pos == SL_QUERY_MAX_LEN));
        if (e.pos <= size)
            CHECK(e.len <= size - e.pos);
        CHECK(sl_query_errfmt(&e, text, size, msg, sizeof(msg)) < sizeof(msg));
        CHECK(strlen(msg) < sizeof(msg));
        free(text);
        return 0;
    }
    CHECK(q != NULL && size <= SL_QUERY_MAX_LEN);

    sl_buf_init(&b, 1 << 22);
    CHECK(sl_query_dump(q, &b) == 0 && b.len > 0 && b.p[0] == '(');
    sl_buf_free(&b);

    nsrc = sl_query_sources(q, names, SL_QUERY_MAX_TERMS);
    CHECK(nsrc <= SL_QUERY_MAX_TERMS);
    for (size_t i = 0; i < nsrc; i++) {
        CHECK(names[i] != NULL && names[i][0] != '\0');
        src[i].ids = ids;
        src[i].n = (mode + i) % 4; /* 0..3 ids */
    }
    first = 1 + (mode >> 4);
    sl_buf_init(&b, 1 << 22);
    sl_query_params_init(&par);
    CHECK(sl_query_sql(q, first, src, nsrc, &b, &par) == 0);
    CHECK(b.len > 0);
    check_sql(b.p, b.len, first, par.n);
    for (size_t i = 0; i < par.n; i++)
        CHECK(utf8_ok((const unsigned char *)par.v[i], strlen(par.v[i])));
    sl_query_params_free(&par);
    sl_buf_free(&b);

    CHECK(sl_query_tokens(q, &t) == 0);
    CHECK(t.nconj <= SL_QUERY_MAX_CONJ);
    for (size_t k = 0; k < t.nconj; k++) {
        size_t n = t.off[k + 1] - t.off[k];
        CHECK(n >= 1 && n <= SL_QUERY_MAX_CONJ_TOKENS);
        for (size_t j = t.off[k] + 1; j < t.off[k + 1]; j++)
            CHECK(t.hash[j - 1] < t.hash[j]);
    }
    sl_query_tokens_free(&t);
    sl_query_free(q);
    free(text);
    return 0;
}
