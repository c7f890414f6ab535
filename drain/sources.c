/* In-memory source table and read tokens (include/sluice/sources.h). Readers: the
 * event loop. Writer: the maintenance thread. Tables are small (one row per app, a few
 * read tokens), so lookups are linear scans over contiguous arrays: simple and
 * constant-time enough. */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "sluice/digest.h"
#include "sluice/enc.h"
#include "sluice/sources.h"
#include "sluice/str.h"

struct sl_sources {
    pthread_rwlock_t lock;
    struct sl_source_row *rows;
    size_t n;
    struct sl_read_token_row *toks;
    size_t ntoks;
    uint64_t gen;
};

#define SNAP_MAX_ROWS 1000000

static int cmp_id(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Sort ids, drop duplicates; returns the new count. */
static size_t sort_unique(int64_t *ids, size_t n)
{
    size_t k = 0;

    if (n == 0)
        return 0;
    qsort(ids, n, sizeof(*ids), cmp_id);
    for (size_t i = 1; i < n; i++)
        if (ids[i] != ids[k])
            ids[++k] = ids[i];
    return k + 1;
}

static bool row_has(const struct sl_source_row *rows, size_t n, const int64_t *sorted, int64_t id)
{
    if (sorted)
        return bsearch(&id, sorted, n, sizeof(*sorted), cmp_id) != NULL;
    for (size_t i = 0; i < n; i++)
        if (rows[i].id == id)
            return true;
    return false;
}

/* A token's scope keeps only ids of sources in rows (removed sources are dropped). */
static void prune_scopes(const struct sl_source_row *rows, size_t n, struct sl_read_token_row *toks,
                         size_t ntoks)
{
    int64_t *sorted = malloc((n + 1) * sizeof(*sorted));

    if (sorted) {
        for (size_t i = 0; i < n; i++)
            sorted[i] = rows[i].id;
        qsort(sorted, n, sizeof(*sorted), cmp_id);
    }
    for (size_t t = 0; t < ntoks; t++) {
        size_t k = 0;
        toks[t].n_sources = sort_unique(toks[t].source_ids, toks[t].n_sources);
        for (size_t i = 0; i < toks[t].n_sources; i++)
            if (row_has(rows, n, sorted, toks[t].source_ids[i]))
                toks[t].source_ids[k++] = toks[t].source_ids[i];
        toks[t].n_sources = k;
    }
    free(sorted);
}

int sl_sources_new(struct sl_sources **out)
{
    struct sl_sources *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return SL_ENOMEM;
    pthread_rwlock_init(&s->lock, NULL);
    *out = s;
    return 0;
}

void sl_sources_free(struct sl_sources *s)
{
    if (s == NULL)
        return;
    pthread_rwlock_destroy(&s->lock);
    free(s->rows);
    sl_read_token_rows_free(s->toks, s->ntoks);
    free(s);
}

void sl_sources_replace_all(struct sl_sources *s, struct sl_source_row *rows, size_t n,
                            struct sl_read_token_row *toks, size_t ntoks)
{
    struct sl_source_row *old;
    struct sl_read_token_row *old_toks;
    size_t old_ntoks;

    prune_scopes(rows, n, toks, ntoks);
    pthread_rwlock_wrlock(&s->lock);
    old = s->rows;
    old_toks = s->toks;
    old_ntoks = s->ntoks;
    s->rows = rows;
    s->n = n;
    s->toks = toks;
    s->ntoks = ntoks;
    s->gen++;
    pthread_rwlock_unlock(&s->lock);
    free(old);
    sl_read_token_rows_free(old_toks, old_ntoks);
}

void sl_sources_replace(struct sl_sources *s, struct sl_source_row *rows, size_t n)
{
    sl_sources_replace_all(s, rows, n, NULL, 0);
}

uint64_t sl_sources_generation(struct sl_sources *s)
{
    uint64_t g;
    pthread_rwlock_rdlock(&s->lock);
    g = s->gen;
    pthread_rwlock_unlock(&s->lock);
    return g;
}

int sl_sources_save(struct sl_sources *s, const char *path)
{
    char tmp[4096];
    FILE *f;
    int fd, rc = 0;

    /* per process: during a binary upgrade the old and the new process both save */
    snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid());
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || (f = fdopen(fd, "w")) == NULL) {
        if (fd >= 0)
            close(fd);
        return SL_EIO;
    }
    pthread_rwlock_rdlock(&s->lock);
    fprintf(f, "sluice-sources 1 %zu\n", s->n);
    for (size_t i = 0; i < s->n; i++) {
        fprintf(f, "%lld %d %s ", (long long)s->rows[i].id, s->rows[i].retention_days,
                s->rows[i].name);
        for (int k = 0; k < 32; k++)
            fprintf(f, "%02x", s->rows[i].token_hash[k]);
        fprintf(f, " %s\n", s->rows[i].drain_token[0] ? s->rows[i].drain_token : "-");
    }
    /* After the rows, so a reader of format 1 without read tokens stops before them. */
    fprintf(f, "read-tokens %zu\n", s->ntoks);
    for (size_t i = 0; i < s->ntoks; i++) {
        const struct sl_read_token_row *t = &s->toks[i];
        fprintf(f, "%lld %d %s ", (long long)t->id, t->all ? 1 : 0, t->name);
        for (int k = 0; k < 32; k++)
            fprintf(f, "%02x", t->token_hash[k]);
        fprintf(f, " %zu", t->n_sources);
        for (size_t k = 0; k < t->n_sources; k++)
            fprintf(f, " %lld", (long long)t->source_ids[k]);
        fputc('\n', f);
    }
    pthread_rwlock_unlock(&s->lock);
    if (fflush(f) != 0 || fsync(fileno(f)) != 0)
        rc = SL_EIO;
    if (fclose(f) != 0)
        rc = SL_EIO;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = SL_EIO;
    if (rc)
        unlink(tmp);
    return rc;
}

/* 64 hex digits (checked by the caller) -> 32 bytes. */
static void parse_hash(const char *hex, unsigned char out[32])
{
    if (sl_enc_unhex(hex, 64, out, 32) != 32)
        memset(out, 0, 32);
}

/* The read-token section of a snapshot; an end of file instead (a snapshot written
 * before read tokens) is no tokens. */
static int load_read_tokens(FILE *f, struct sl_read_token_row **out, size_t *nout)
{
    struct sl_read_token_row *toks;
    size_t n = 0, i;
    int got = fscanf(f, "read-tokens %zu\n", &n);

    *out = NULL;
    *nout = 0;
    if (got == EOF)
        return 0;
    if (got != 1 || n > SNAP_MAX_ROWS || (toks = calloc(n + 1, sizeof(*toks))) == NULL)
        return SL_ECORRUPT;
    for (i = 0; i < n; i++) {
        struct sl_read_token_row *t = &toks[i];
        long long id;
        int all;
        size_t k;
        char hex[65];

        if (fscanf(f, "%lld %d %63s %64s %zu", &id, &all, t->name, hex, &t->n_sources) != 5 ||
            strlen(hex) != 64 || (all != 0 && all != 1) || t->n_sources > SNAP_MAX_ROWS)
            break;
        t->id = id;
        t->all = all == 1;
        parse_hash(hex, t->token_hash);
        if (t->n_sources && (t->source_ids = malloc(t->n_sources * sizeof(*t->source_ids))) == NULL)
            break;
        for (k = 0; k < t->n_sources; k++) {
            long long sid;
            if (fscanf(f, "%lld", &sid) != 1)
                break;
            t->source_ids[k] = sid;
        }
        if (k != t->n_sources)
            break;
    }
    if (i != n) {
        sl_read_token_rows_free(toks, n);
        return SL_ECORRUPT;
    }
    *out = toks;
    *nout = n;
    return 0;
}

int sl_sources_load_file(struct sl_sources *s, const char *path)
{
    FILE *f = fopen(path, "r");
    struct sl_source_row *rows = NULL;
    struct sl_read_token_row *toks = NULL;
    size_t n = 0, ntoks = 0, i;
    int ver;

    if (f == NULL)
        return SL_ENOTFOUND;
    if (fscanf(f, "sluice-sources %d %zu\n", &ver, &n) != 2 || ver != 1 || n > SNAP_MAX_ROWS ||
        (rows = calloc(n + 1, sizeof(*rows))) == NULL) {
        fclose(f);
        return SL_ECORRUPT;
    }
    for (i = 0; i < n; i++) {
        long long id;
        char hex[65], dt[128];
        if (fscanf(f, "%lld %d %63s %64s %127s\n", &id, &rows[i].retention_days, rows[i].name, hex,
                   dt) != 5 ||
            strlen(hex) != 64)
            break;
        rows[i].id = id;
        parse_hash(hex, rows[i].token_hash);
        snprintf(rows[i].drain_token, sizeof(rows[i].drain_token), "%s", strcmp(dt, "-") ? dt : "");
    }
    if (i != n || load_read_tokens(f, &toks, &ntoks) != 0) {
        fclose(f);
        free(rows);
        return SL_ECORRUPT;
    }
    fclose(f);
    sl_sources_replace_all(s, rows, n, toks, ntoks);
    return 0;
}

size_t sl_sources_count(struct sl_sources *s)
{
    size_t n;
    pthread_rwlock_rdlock(&s->lock);
    n = s->n;
    pthread_rwlock_unlock(&s->lock);
    return n;
}

size_t sl_sources_read_token_count(struct sl_sources *s)
{
    size_t n;
    pthread_rwlock_rdlock(&s->lock);
    n = s->ntoks;
    pthread_rwlock_unlock(&s->lock);
    return n;
}

int64_t sl_sources_auth(struct sl_sources *s, const char *name, size_t nlen, const char *token,
                        size_t tlen)
{
    static const unsigned char dummy[32];
    unsigned char h[32];
    const unsigned char *want = dummy;
    int64_t id = 0;

    sl_digest_sha256(token, tlen, h);
    pthread_rwlock_rdlock(&s->lock);
    for (size_t i = 0; i < s->n; i++) {
        if (strlen(s->rows[i].name) == nlen && memcmp(s->rows[i].name, name, nlen) == 0) {
            want = s->rows[i].token_hash;
            id = s->rows[i].id;
            break;
        }
    }
    /* Always compare, so an unknown name and a wrong token take the same time. */
    if (CRYPTO_memcmp(h, want, 32) != 0 || want == dummy)
        id = 0;
    pthread_rwlock_unlock(&s->lock);
    return id;
}

int64_t sl_sources_by_host(struct sl_sources *s, const char *host, size_t len, bool *secret)
{
    unsigned char h[32];
    int64_t id = 0;
    bool hashed = false;

    *secret = false;
    if (len < 3 || host[0] != 'd' || host[1] != '.')
        return 0;
    pthread_rwlock_rdlock(&s->lock);
    for (size_t i = 0; i < s->n && id == 0; i++)
        if (s->rows[i].drain_token[0] && strlen(s->rows[i].drain_token) == len &&
            memcmp(s->rows[i].drain_token, host, len) == 0)
            id = s->rows[i].id;
    for (size_t i = 0; i < s->n && id == 0; i++) {
        if (!hashed) {
            sl_digest_sha256(host + 2, len - 2, h);
            hashed = true;
        }
        if (CRYPTO_memcmp(h, s->rows[i].token_hash, 32) == 0) {
            id = s->rows[i].id;
            *secret = true;
        }
    }
    pthread_rwlock_unlock(&s->lock);
    return id;
}

bool sl_sources_name(struct sl_sources *s, int64_t id, char *out, size_t cap)
{
    bool found = false;

    pthread_rwlock_rdlock(&s->lock);
    for (size_t i = 0; i < s->n && !found; i++)
        if (s->rows[i].id == id) {
            snprintf(out, cap, "%s", s->rows[i].name);
            found = true;
        }
    pthread_rwlock_unlock(&s->lock);
    return found;
}

int64_t sl_sources_id(void *sources, const char *name)
{
    struct sl_sources *s = sources;
    int64_t id = 0;

    pthread_rwlock_rdlock(&s->lock);
    for (size_t i = 0; i < s->n && id == 0; i++)
        if (strcmp(s->rows[i].name, name) == 0)
            id = s->rows[i].id;
    pthread_rwlock_unlock(&s->lock);
    return id;
}

/* Longer than any token sluice makes: hashing it would only cost time. */
#define READ_TOKEN_MAX 1024

int sl_sources_read_auth(struct sl_sources *s, const char *token, size_t len,
                         struct sl_read_scope *out)
{
    unsigned char h[32];
    const struct sl_read_token_row *hit = NULL;
    int rc = SL_ENOTFOUND;

    out->all = false;
    out->ids = NULL;
    out->n = 0;
    if (len == 0 || len > READ_TOKEN_MAX)
        return SL_ENOTFOUND;
    sl_digest_sha256(token, len, h);
    pthread_rwlock_rdlock(&s->lock);
    /* Every candidate is compared in full (no early exit), so the time says nothing
     * about which token, or how much of one, matched. */
    for (size_t i = 0; i < s->ntoks; i++)
        if (CRYPTO_memcmp(h, s->toks[i].token_hash, 32) == 0)
            hit = &s->toks[i];
    if (hit && hit->all) {
        out->all = true;
        rc = 0;
    } else if (hit) {
        out->ids = malloc((hit->n_sources + 1) * sizeof(*out->ids));
        if (out->ids == NULL)
            rc = SL_ENOMEM;
        else {
            if (hit->n_sources)
                memcpy(out->ids, hit->source_ids, hit->n_sources * sizeof(*out->ids));
            out->n = hit->n_sources;
            rc = 0;
        }
    }
    pthread_rwlock_unlock(&s->lock);
    return rc;
}

void sl_read_scope_free(struct sl_read_scope *scope)
{
    if (scope == NULL)
        return;
    free(scope->ids);
    scope->ids = NULL;
    scope->n = 0;
    scope->all = false;
}

bool sl_read_scope_has(const struct sl_read_scope *scope, int64_t id)
{
    if (scope->all)
        return true;
    return scope->n > 0 && bsearch(&id, scope->ids, scope->n, sizeof(id), cmp_id) != NULL;
}

bool sl_sources_glob(const char *glob, size_t glen, const char *name, size_t nlen)
{
    size_t g = 0, i = 0, star = SIZE_MAX, mark = 0;

    /* Greedy with backtracking to the last `*`: O(glen * nlen) at worst. */
    while (i < nlen) {
        if (g < glen && glob[g] == '*') {
            star = g++;
            mark = i;
        } else if (g < glen && (glob[g] == '?' || glob[g] == name[i])) {
            g++;
            i++;
        } else if (star != SIZE_MAX) {
            g = star + 1;
            i = ++mark;
        } else
            return false;
    }
    while (g < glen && glob[g] == '*')
        g++;
    return g == glen;
}

/* Ids of the rows whose name matches glob (every row when glob is NULL), sorted. */
static int collect_ids(struct sl_sources *s, const char *glob, size_t glen, int64_t **ids,
                       size_t *n)
{
    int64_t *v;
    size_t k = 0;

    pthread_rwlock_rdlock(&s->lock);
    v = malloc((s->n + 1) * sizeof(*v));
    if (v != NULL)
        for (size_t i = 0; i < s->n; i++)
            if (glob == NULL ||
                sl_sources_glob(glob, glen, s->rows[i].name, strlen(s->rows[i].name)))
                v[k++] = s->rows[i].id;
    pthread_rwlock_unlock(&s->lock);
    if (v == NULL)
        return SL_ENOMEM;
    *n = sort_unique(v, k);
    *ids = v;
    return 0;
}

int sl_sources_all_ids(struct sl_sources *s, int64_t **ids, size_t *n)
{
    return collect_ids(s, NULL, 0, ids, n);
}

int sl_sources_match(struct sl_sources *s, const char *glob, size_t len, int64_t **ids, size_t *n)
{
    if (len > 4096)
        return SL_ETOOBIG;
    return collect_ids(s, glob ? glob : "", glob ? len : 0, ids, n);
}
