/* Unit tests for drain/sources.c (include/sluice/sources.h): the in-memory source table
 * with read tokens. Read-token authentication (a good token, a wrong one, an ingest
 * token, near misses), scopes (all sources, ids with removed sources dropped), source
 * name globs, and the local snapshot: a round trip with read tokens, a snapshot of the
 * older format without them, and a damaged one that must not replace the table. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sluice/db.h"
#include "sluice/digest.h"
#include "sluice/err.h"
#include "sluice/sources.h"

#define TOK_ALL "slr_00112233445566778899aabbccddeeff00112233"
#define TOK_SCOPED "slr_ffeeddccbbaa99887766554433221100ffeeddcc"
#define TOK_GONE "slr_0123456789abcdef0123456789abcdef01234567"
#define INGEST "0123456789012345678901234567890123456789"

static struct sl_source_row *make_rows(size_t *n)
{
    /* Not in id order: the snapshot and the API must not depend on it. */
    static const struct {
        int64_t id;
        const char *name;
    } src[] = {{7, "billing-eu"}, {1, "billing"}, {3, "api"}, {12, "api.worker_2"}};
    struct sl_source_row *rows = calloc(4, sizeof(*rows));

    assert_non_null(rows);
    for (size_t i = 0; i < 4; i++) {
        rows[i].id = src[i].id;
        snprintf(rows[i].name, sizeof(rows[i].name), "%s", src[i].name);
        sl_digest_sha256(INGEST, strlen(INGEST), rows[i].token_hash);
        rows[i].retention_days = 7;
    }
    snprintf(rows[2].drain_token, sizeof(rows[2].drain_token), "d.6f1c5c7e-aaaa");
    *n = 4;
    return rows;
}

static void set_tok(struct sl_read_token_row *t, int64_t id, const char *name, const char *tok,
                    bool all, const int64_t *ids, size_t n)
{
    t->id = id;
    snprintf(t->name, sizeof(t->name), "%s", name);
    sl_digest_sha256(tok, strlen(tok), t->token_hash);
    t->all = all;
    t->n_sources = n;
    t->source_ids = NULL;
    if (n) {
        t->source_ids = malloc(n * sizeof(int64_t));
        assert_non_null(t->source_ids);
        memcpy(t->source_ids, ids, n * sizeof(int64_t));
    }
}

static struct sl_read_token_row *make_toks(size_t *n)
{
    /* Unsorted, a duplicate, and 99, which no source has. */
    static const int64_t scoped[] = {7, 99, 1, 7};
    static const int64_t gone[] = {99};
    struct sl_read_token_row *t = calloc(3, sizeof(*t));

    assert_non_null(t);
    set_tok(&t[0], 1, "grafana", TOK_ALL, true, NULL, 0);
    set_tok(&t[1], 2, "billing-team", TOK_SCOPED, false, scoped, 4);
    set_tok(&t[2], 3, "old", TOK_GONE, false, gone, 1);
    *n = 3;
    return t;
}

static struct sl_sources *loaded(void)
{
    struct sl_sources *s;
    struct sl_source_row *rows;
    struct sl_read_token_row *toks;
    size_t n, nt;

    assert_int_equal(sl_sources_new(&s), 0);
    rows = make_rows(&n);
    toks = make_toks(&nt);
    sl_sources_replace_all(s, rows, n, toks, nt);
    return s;
}

static void assert_ids(const int64_t *got, size_t n, const int64_t *want, size_t wn)
{
    assert_int_equal(n, wn);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(got[i], want[i]);
}

static void test_read_auth(void **state)
{
    struct sl_sources *s = loaded();
    struct sl_read_scope sc;
    static const int64_t want[] = {1, 7};
    (void)state;

    assert_int_equal(sl_sources_generation(s), 1);
    assert_int_equal(sl_sources_read_token_count(s), 3);

    assert_int_equal(sl_sources_read_auth(s, TOK_ALL, strlen(TOK_ALL), &sc), 0);
    assert_true(sc.all);
    assert_true(sl_read_scope_has(&sc, 12345));
    sl_read_scope_free(&sc);

    /* Scope: sorted, de-duplicated, the id of a source that no longer exists dropped. */
    assert_int_equal(sl_sources_read_auth(s, TOK_SCOPED, strlen(TOK_SCOPED), &sc), 0);
    assert_false(sc.all);
    assert_ids(sc.ids, sc.n, want, 2);
    assert_true(sl_read_scope_has(&sc, 1));
    assert_true(sl_read_scope_has(&sc, 7));
    assert_false(sl_read_scope_has(&sc, 3));
    assert_false(sl_read_scope_has(&sc, 99));
    sl_read_scope_free(&sc);
    assert_null(sc.ids);

    /* Every source of the token is gone: still a token, reading nothing. */
    assert_int_equal(sl_sources_read_auth(s, TOK_GONE, strlen(TOK_GONE), &sc), 0);
    assert_false(sc.all);
    assert_int_equal(sc.n, 0);
    assert_false(sl_read_scope_has(&sc, 99));
    sl_read_scope_free(&sc);
    sl_sources_free(s);
}

static void test_read_auth_rejects(void **state)
{
    struct sl_sources *s = loaded();
    struct sl_read_scope sc;
    char buf[2048];
    (void)state;

    /* The ingest token of a source is not a read token, though it authenticates there. */
    assert_int_equal(sl_sources_auth(s, "api", 3, INGEST, strlen(INGEST)), 3);
    assert_int_equal(sl_sources_read_auth(s, INGEST, strlen(INGEST), &sc), SL_ENOTFOUND);
    assert_false(sc.all);
    assert_null(sc.ids);

    /* One character off, a prefix, one character more, empty, huge. */
    snprintf(buf, sizeof(buf), "%s", TOK_ALL);
    buf[10] ^= 1;
    assert_int_equal(sl_sources_read_auth(s, buf, strlen(buf), &sc), SL_ENOTFOUND);
    assert_int_equal(sl_sources_read_auth(s, TOK_ALL, strlen(TOK_ALL) - 1, &sc), SL_ENOTFOUND);
    snprintf(buf, sizeof(buf), "%sx", TOK_ALL);
    assert_int_equal(sl_sources_read_auth(s, buf, strlen(buf), &sc), SL_ENOTFOUND);
    assert_int_equal(sl_sources_read_auth(s, "", 0, &sc), SL_ENOTFOUND);
    memset(buf, 'a', sizeof(buf));
    assert_int_equal(sl_sources_read_auth(s, buf, sizeof(buf), &sc), SL_ENOTFOUND);
    /* The hash of the token, given as a token, is not the token. */
    assert_int_equal(sl_sources_read_auth(s, "grafana", 7, &sc), SL_ENOTFOUND);

    /* A reload without the token (token rm): it stops working at once. */
    {
        size_t n;
        struct sl_source_row *rows = make_rows(&n);
        sl_sources_replace(s, rows, n);
    }
    assert_int_equal(sl_sources_generation(s), 2);
    assert_int_equal(sl_sources_read_auth(s, TOK_ALL, strlen(TOK_ALL), &sc), SL_ENOTFOUND);
    assert_int_equal(sl_sources_count(s), 4);
    sl_sources_free(s);
}

static void test_never_loaded(void **state)
{
    struct sl_sources *s;
    struct sl_read_scope sc;
    int64_t *ids = NULL;
    size_t n = 1;
    (void)state;

    assert_int_equal(sl_sources_new(&s), 0);
    assert_int_equal(sl_sources_generation(s), 0);
    assert_int_equal(sl_sources_read_auth(s, TOK_ALL, strlen(TOK_ALL), &sc), SL_ENOTFOUND);
    assert_int_equal(sl_sources_all_ids(s, &ids, &n), 0);
    assert_non_null(ids);
    assert_int_equal(n, 0);
    free(ids);
    sl_sources_free(s);
}

static void test_all_ids(void **state)
{
    struct sl_sources *s = loaded();
    static const int64_t want[] = {1, 3, 7, 12};
    int64_t *ids;
    size_t n;
    (void)state;

    assert_int_equal(sl_sources_all_ids(s, &ids, &n), 0);
    assert_ids(ids, n, want, 4);
    free(ids);
    sl_sources_free(s);
}

struct match_case {
    const char *glob;
    int64_t want[5]; /* ends at 0 */
};

static const struct match_case match_cases[] = {
    {"billing", {1, 0}},
    {"billing*", {1, 7, 0}},
    {"*", {1, 3, 7, 12, 0}},
    {"**", {1, 3, 7, 12, 0}},
    {"?pi", {3, 0}},
    {"api*", {3, 12, 0}},
    {"api.*", {12, 0}},
    {"*_2", {12, 0}},
    {"b*-eu", {7, 0}},
    {"bill?ng-*", {7, 0}},
    {"*i*", {1, 3, 7, 12, 0}},
    {"*ing*eu", {7, 0}},
    {"Billing", {0}}, /* case-sensitive */
    {"billin", {0}},
    {"billing?", {0}},
    {"", {0}},
    {"?", {0}},
    {"nope*", {0}},
};

static void test_match(void **state)
{
    struct sl_sources *s = loaded();
    (void)state;

    for (size_t c = 0; c < sizeof(match_cases) / sizeof(match_cases[0]); c++) {
        const struct match_case *mc = &match_cases[c];
        int64_t *ids = NULL;
        size_t n = 99, wn = 0;

        while (mc->want[wn])
            wn++;
        assert_int_equal(sl_sources_match(s, mc->glob, strlen(mc->glob), &ids, &n), 0);
        if (n != wn)
            fail_msg("glob \"%s\": %zu matches, want %zu", mc->glob, n, wn);
        assert_non_null(ids);
        assert_ids(ids, n, mc->want, wn);
        free(ids);
    }
    /* The glob is a slice: bytes past len are not part of it. */
    {
        static const int64_t want[] = {3};
        int64_t *ids;
        size_t n;
        assert_int_equal(sl_sources_match(s, "api,billing", 3, &ids, &n), 0);
        assert_ids(ids, n, want, 1);
        free(ids);
    }
    {
        char big[5000];
        int64_t *ids = NULL;
        size_t n;
        memset(big, '*', sizeof(big));
        assert_int_equal(sl_sources_match(s, big, sizeof(big), &ids, &n), SL_ETOOBIG);
        /* Many stars: still linear enough, still a match. */
        assert_int_equal(sl_sources_match(s, big, 4096, &ids, &n), 0);
        assert_int_equal(n, 4);
        free(ids);
    }
    sl_sources_free(s);
}

struct glob_case {
    const char *glob, *name;
    bool want;
};

static const struct glob_case glob_cases[] = {
    {"a*b*c", "aXbYc", true},
    {"a*b*c", "abc", true},
    {"a*b*c", "acb", false},
    {"*aab", "aaaab", true},
    {"a*", "a", true},
    {"*a", "", false},
    {"", "", true},
    {"*", "", true},
    {"??", "a", false},
    {"a?c", "abc", true},
    {"a?c", "ac", false},
    {"*.*.*", "a.b.c", true},
    {"*x*x*x*", "xxax", true},
    {"*x*x*x*", "xax", false},
    {"[a]", "a", false}, /* only * and ? are special */
    {"[a]", "[a]", true},
};

static void test_glob(void **state)
{
    (void)state;
    for (size_t c = 0; c < sizeof(glob_cases) / sizeof(glob_cases[0]); c++) {
        const struct glob_case *g = &glob_cases[c];
        if (sl_sources_glob(g->glob, strlen(g->glob), g->name, strlen(g->name)) != g->want)
            fail_msg("glob \"%s\" vs \"%s\": want %d", g->glob, g->name, g->want);
    }
}

static char *tmp_path(char dir[64], const char *name)
{
    static char path[128];
    snprintf(dir, 64, "/tmp/test_sources.XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return path;
}

static void cleanup(const char *dir, const char *path)
{
    unlink(path);
    rmdir(dir);
}

static void test_snapshot_round_trip(void **state)
{
    struct sl_sources *s = loaded(), *t;
    struct sl_read_scope sc;
    char dir[64], line[512];
    char *path = tmp_path(dir, "sources.snapshot");
    static const int64_t want[] = {1, 7};
    struct stat st;
    FILE *f;
    bool drain_ok;
    (void)state;

    assert_int_equal(sl_sources_save(s, path), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* Token hashes only: no token is in the file. */
    f = fopen(path, "r");
    assert_non_null(f);
    while (fgets(line, sizeof(line), f)) {
        assert_null(strstr(line, "slr_"));
        assert_null(strstr(line, INGEST));
    }
    fclose(f);

    assert_int_equal(sl_sources_new(&t), 0);
    assert_int_equal(sl_sources_load_file(t, path), 0);
    assert_int_equal(sl_sources_generation(t), 1);
    assert_int_equal(sl_sources_count(t), 4);
    assert_int_equal(sl_sources_read_token_count(t), 3);
    assert_int_equal(sl_sources_auth(t, "billing", 7, INGEST, strlen(INGEST)), 1);
    assert_int_equal(sl_sources_by_host(t, "d.6f1c5c7e-aaaa", 15, &drain_ok), 3);
    assert_int_equal(sl_sources_read_auth(t, TOK_ALL, strlen(TOK_ALL), &sc), 0);
    assert_true(sc.all);
    sl_read_scope_free(&sc);
    assert_int_equal(sl_sources_read_auth(t, TOK_SCOPED, strlen(TOK_SCOPED), &sc), 0);
    assert_false(sc.all);
    assert_ids(sc.ids, sc.n, want, 2);
    sl_read_scope_free(&sc);
    assert_int_equal(sl_sources_read_auth(t, TOK_GONE, strlen(TOK_GONE), &sc), 0);
    assert_int_equal(sc.n, 0);
    sl_read_scope_free(&sc);
    assert_int_equal(sl_sources_read_auth(t, INGEST, strlen(INGEST), &sc), SL_ENOTFOUND);

    /* Saved again, the same bytes: nothing is lost or reordered by a round trip. */
    {
        char path2[160], a[4096], b[4096];
        size_t na, nb;
        FILE *fa, *fb;
        snprintf(path2, sizeof(path2), "%s.2", path);
        assert_int_equal(sl_sources_save(t, path2), 0);
        fa = fopen(path, "r");
        fb = fopen(path2, "r");
        assert_non_null(fa);
        assert_non_null(fb);
        na = fread(a, 1, sizeof(a), fa);
        nb = fread(b, 1, sizeof(b), fb);
        fclose(fa);
        fclose(fb);
        assert_int_equal(na, nb);
        assert_memory_equal(a, b, na);
        unlink(path2);
    }
    sl_sources_free(t);
    sl_sources_free(s);
    cleanup(dir, path);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

/* A snapshot written before read tokens existed (format 1, sources only). */
static void test_snapshot_old_format(void **state)
{
    struct sl_sources *s;
    struct sl_read_scope sc;
    char dir[64], text[1024], hex[65];
    char *path = tmp_path(dir, "old.snapshot");
    unsigned char h[32];
    int64_t *ids;
    size_t n;
    static const int64_t want[] = {4, 9};
    (void)state;

    sl_digest_sha256(INGEST, strlen(INGEST), h);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", h[i]);
    snprintf(text, sizeof(text),
             "sluice-sources 1 2\n"
             "9 7 web %s -\n"
             "4 30 billing %s d.1234\n",
             hex, hex);
    write_file(path, text);
    assert_int_equal(sl_sources_new(&s), 0);
    assert_int_equal(sl_sources_load_file(s, path), 0);
    assert_int_equal(sl_sources_generation(s), 1);
    assert_int_equal(sl_sources_count(s), 2);
    assert_int_equal(sl_sources_read_token_count(s), 0);
    assert_int_equal(sl_sources_auth(s, "billing", 7, INGEST, strlen(INGEST)), 4);
    assert_int_equal(sl_sources_read_auth(s, TOK_ALL, strlen(TOK_ALL), &sc), SL_ENOTFOUND);
    assert_int_equal(sl_sources_all_ids(s, &ids, &n), 0);
    assert_ids(ids, n, want, 2);
    free(ids);

    /* A damaged read-token section: the file is refused, the table kept as it was. */
    snprintf(text + strlen(text), sizeof(text) - strlen(text), "read-tokens 2\n1 1 grafana %s 0\n",
             hex);
    write_file(path, text);
    assert_int_equal(sl_sources_load_file(s, path), SL_ECORRUPT);
    assert_int_equal(sl_sources_generation(s), 1);
    assert_int_equal(sl_sources_count(s), 2);
    /* A read token whose scope is cut short. */
    snprintf(text + strlen(text), sizeof(text) - strlen(text), "2 0 team %s 3 4 9\n", hex);
    write_file(path, text);
    assert_int_equal(sl_sources_load_file(s, path), SL_ECORRUPT);
    assert_int_equal(sl_sources_generation(s), 1);
    sl_sources_free(s);
    cleanup(dir, path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_auth),
        cmocka_unit_test(test_read_auth_rejects),
        cmocka_unit_test(test_never_loaded),
        cmocka_unit_test(test_all_ids),
        cmocka_unit_test(test_match),
        cmocka_unit_test(test_glob),
        cmocka_unit_test(test_snapshot_round_trip),
        cmocka_unit_test(test_snapshot_old_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
