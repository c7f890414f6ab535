/* coarse: a prototype of a coarser token-filter level checked before log_blocks (issue 17,
 * docs/search.md "A month of logs (bench-scale)"). Bench tool only: the server does not
 * read what it builds.
 *
 *   coarse build URL [--slices S (256)]   one filter per (source, UTC day, slice) of the
 *                                          stored lines, in table log_filters_coarse
 *   coarse build URL --unit hour [--slices S (16)]
 *                                          the same per (source, UTC hour, slice), in
 *                                          log_filters_coarse_hour
 *   coarse query URL [--unit hour] --since EPOCH --until EPOCH [--runs-file FILE] [TEXT...]
 *                                          per query text: the block scan the server runs
 *                                          today (drain/search.c fetch_blocks, first page,
 *                                          every source) against the coarse level first,
 *                                          then only the blocks of the (source, day)s it
 *                                          lets through: times, candidate counts, p50/p99;
 *                                          each query's lines holding the text inside the
 *                                          blocks found must be the same both ways (checked,
 *                                          untimed: the coarse level may only drop blocks
 *                                          that a block filter's false positive let in);
 *                                          also the coarse check alone, and "adaptive": the
 *                                          coarse path when it let through at most a quarter
 *                                          of the window's (source, day)s, else the check's
 *                                          time plus today's scan
 *
 * The coarse level is a blocked Bloom filter: a token's hash picks its slice (bits 24..31
 * of h1, independent of the bit positions inside a filter of at most 2^24 bits, which use
 * h1's low bits and h2), and all SL_BLOOM_K bits of the token lie in that slice's filter,
 * sized 10 bits per distinct token (a power of two, at least 64 bits). A query reads, per
 * token, one small row per (source, day): 200 sources x 30 days = 6 000 rows per token
 * for a month, instead of every block of the month (1.4-1.7 million). Tokens are those of
 * the message (sl_tokenize), the same hashes as log_blocks'; the writer also adds the
 * structured fields' text to a block (drain/blocks.c "extra"), which this prototype leaves
 * out (its queries are message words). */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "sluice/tokens.h"

#define MAX_SOURCES 4096
#define MAX_TOK 64

/* --unit day (default) or hour: one filter per (source, UTC day or hour, slice) */
static bool hourly;
static const char *tbl = "log_filters_coarse";
static unsigned nunits = 1; /* units per day: 1 or 24 */

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static PGresult *q(PGconn *c, const char *sql, int n, const char *const *v, ExecStatusType want)
{
    PGresult *r = n ? PQexecParams(c, sql, n, NULL, v, NULL, NULL, 0) : PQexec(c, sql);
    if (PQresultStatus(r) != want)
        die("%.200s: %s", sql, PQerrorMessage(c));
    return r;
}

static PGconn *connect_db(const char *url)
{
    PGconn *c = PQconnectdb(url);
    if (PQstatus(c) != CONNECTION_OK)
        die("connect: %s", PQerrorMessage(c));
    return c;
}

static unsigned slice_of(uint64_t h, unsigned slices)
{
    return (unsigned)((h & 0xffffffffu) >> 24) & (slices - 1);
}

static void set_unit(const char *u)
{
    if (!strcmp(u, "hour")) {
        hourly = true;
        tbl = "log_filters_coarse_hour";
        nunits = 24;
    } else if (strcmp(u, "day")) {
        die("--unit day|hour, not %s", u);
    }
}

/* ---------- build ---------- */

struct day_sets {
    struct sl_bloom *b[MAX_SOURCES]; /* per source: nunits x slices sets, NULL: no line */
};

struct tok_arg {
    struct sl_bloom *sets;
    unsigned slices;
};

static void on_token(void *arg, const char *tok, size_t len, uint64_t hash)
{
    struct tok_arg *a = arg;
    (void)tok;
    (void)len;
    if (sl_bloom_add(&a->sets[slice_of(hash, a->slices)], hash))
        die("out of memory");
}

static void hexbyte(char *o, unsigned v)
{
    static const char hx[] = "0123456789abcdef";
    o[0] = hx[v >> 4];
    o[1] = hx[v & 15];
}

/* COPY one day's filters; frees the sets. Returns bytes of filters written. */
static size_t flush_day(PGconn *c, struct day_sets *d, const char *day, unsigned slices)
{
    size_t cap = 1 << 20, len = 0, fbytes = 0;
    char *out = malloc(cap);
    char sql[128];
    PGresult *r;

    snprintf(sql, sizeof(sql),
             "COPY %s (day, slice, source_id, nbits, ntokens, bloom) FROM STDIN", tbl);
    r = q(c, sql, 0, NULL, PGRES_COPY_IN);
    PQclear(r);
    if (out == NULL)
        die("out of memory");
    /* slice-major, as a query reads them: (slice, day, source_id) rows of a slice are
     * adjacent in the heap, so a token's 200 rows of a day are a few pages */
    for (unsigned k = 0; k < slices * nunits; k++) {
        unsigned slice = k / nunits, unit = k % nunits;
        char key[40];
        if (hourly)
            snprintf(key, sizeof(key), "%s %02u:00:00", day, unit);
        else
            snprintf(key, sizeof(key), "%s", day);
        for (int s = 0; s < MAX_SOURCES; s++) {
            struct sl_bloom *b;
            if (d->b[s] == NULL)
                continue;
            b = &d->b[s][unit * slices + slice];
            uint32_t nbits = 64;
            uint8_t *bits;
            if (b->n == 0)
                continue;
            while (nbits < SL_BLOOM_BITS_PER_TOKEN * b->n && nbits < (1u << 24))
                nbits <<= 1;
            bits = calloc(nbits / 8, 1);
            if (bits == NULL)
                die("out of memory");
            for (size_t i = 0; i < b->cap; i++) {
                if (b->hashes[i] == 0)
                    continue;
                for (unsigned j = 0; j < SL_BLOOM_K; j++) {
                    uint32_t p = sl_bloom_pos(b->hashes[i], j, nbits);
                    bits[p >> 3] |= (uint8_t)(1u << (p & 7));
                }
            }
            if (len + nbits / 4 + 128 > cap) {
                if (PQputCopyData(c, out, (int)len) != 1)
                    die("copy: %s", PQerrorMessage(c));
                len = 0;
                if (nbits / 4 + 128 > cap) {
                    cap = nbits / 4 + 128;
                    out = realloc(out, cap);
                    if (out == NULL)
                        die("out of memory");
                }
            }
            len += (size_t)sprintf(out + len, "%s\t%u\t%d\t%u\t%zu\t\\\\x", key, slice, s, nbits,
                                   b->n);
            for (uint32_t i = 0; i < nbits / 8; i++, len += 2)
                hexbyte(out + len, bits[i]);
            out[len++] = '\n';
            fbytes += nbits / 8;
            free(bits);
            sl_bloom_free(b);
        }
    }
    for (int s = 0; s < MAX_SOURCES; s++) {
        free(d->b[s]);
        d->b[s] = NULL;
    }
    if (len && PQputCopyData(c, out, (int)len) != 1)
        die("copy: %s", PQerrorMessage(c));
    if (PQputCopyEnd(c, NULL) != 1)
        die("copy end: %s", PQerrorMessage(c));
    r = PQgetResult(c);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        die("copy: %s", PQerrorMessage(c));
    PQclear(r);
    free(out);
    return fbytes;
}

static int cmd_build(int argc, char **argv)
{
    const char *url = NULL;
    unsigned slices = 0;
    PGconn *c;
    PGresult *days;
    char sql[300];
    static struct day_sets d;
    double t0 = now_s();
    size_t lines = 0, fbytes = 0;
    char slc[16];

    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--slices") && i + 1 < argc)
            slices = (unsigned)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--unit") && i + 1 < argc)
            set_unit(argv[++i]);
        else if (!url)
            url = argv[i];
        else
            die("build: unknown argument %s", argv[i]);
    }
    if (slices == 0)
        slices = hourly ? 16 : 256;
    if (!url || slices < 1 || slices > 256 || (slices & (slices - 1)))
        die("usage: coarse build URL [--slices S (a power of two <= 256)]");
    c = connect_db(url);
    PQclear(q(c, "SET synchronous_commit = off", 0, NULL, PGRES_COMMAND_OK));
    snprintf(sql, sizeof(sql), "DROP TABLE IF EXISTS %s", tbl);
    PQclear(q(c, sql, 0, NULL, PGRES_COMMAND_OK));
    /* day: a date; hour: the hour's start, a UTC timestamp */
    snprintf(sql, sizeof(sql),
             "CREATE TABLE %s (day %s NOT NULL, slice int NOT NULL, source_id bigint NOT NULL, "
             "nbits int NOT NULL, ntokens int NOT NULL, bloom bytea NOT NULL)",
             tbl, hourly ? "timestamp" : "date");
    PQclear(q(c, sql, 0, NULL, PGRES_COMMAND_OK));
    snprintf(sql, sizeof(sql), "ALTER TABLE %s ALTER COLUMN bloom SET STORAGE EXTERNAL", tbl);
    PQclear(q(c, sql, 0, NULL, PGRES_COMMAND_OK));
    days = q(c,
             "SELECT d::date::text FROM generate_series((SELECT date_trunc('day', "
             "min(min_received) AT TIME ZONE 'UTC') FROM log_blocks), (SELECT date_trunc('day', "
             "max(max_received) AT TIME ZONE 'UTC') FROM log_blocks), interval '1 day') d",
             0, NULL, PGRES_TUPLES_OK);
    snprintf(slc, sizeof(slc), "%u", slices);
    for (int di = 0; di < PQntuples(days); di++) {
        const char *day = PQgetvalue(days, di, 0);
        const char *v[1] = {day};
        size_t dl = 0;
        PQclear(q(c, "BEGIN", 0, NULL, PGRES_COMMAND_OK));
        PQclear(q(c,
                  "DECLARE cur NO SCROLL CURSOR FOR SELECT source_id, message, "
                  "extract(hour FROM received_at AT TIME ZONE 'UTC')::int FROM logs "
                  "WHERE received_at >= ($1::date)::timestamp AT TIME ZONE 'UTC' "
                  "AND received_at < ($1::date + 1)::timestamp AT TIME ZONE 'UTC'",
                  1, v, PGRES_COMMAND_OK));
        for (;;) {
            PGresult *r = q(c, "FETCH 50000 FROM cur", 0, NULL, PGRES_TUPLES_OK);
            int n = PQntuples(r);
            for (int i = 0; i < n; i++) {
                long long sid = strtoll(PQgetvalue(r, i, 0), NULL, 10);
                struct tok_arg a;
                if (sid < 0 || sid >= MAX_SOURCES)
                    die("source id %lld out of range", sid);
                if (d.b[sid] == NULL) {
                    d.b[sid] = calloc(slices * nunits, sizeof(struct sl_bloom));
                    if (d.b[sid] == NULL)
                        die("out of memory");
                    for (unsigned k = 0; k < slices * nunits; k++)
                        sl_bloom_init(&d.b[sid][k]);
                }
                a.sets = d.b[sid] + (hourly ? (unsigned)atoi(PQgetvalue(r, i, 2)) * slices : 0);
                a.slices = slices;
                (void)sl_tokenize(PQgetvalue(r, i, 1), (size_t)PQgetlength(r, i, 1), on_token, &a);
            }
            PQclear(r);
            dl += (size_t)n;
            if (n == 0)
                break;
        }
        PQclear(q(c, "CLOSE cur", 0, NULL, PGRES_COMMAND_OK));
        fbytes += flush_day(c, &d, day, slices);
        PQclear(q(c, "COMMIT", 0, NULL, PGRES_COMMAND_OK));
        lines += dl;
        fprintf(stderr, "coarse: %s: %zu lines, %.0f s so far\n", day, dl, now_s() - t0);
    }
    PQclear(days);
    snprintf(sql, sizeof(sql), "CREATE UNIQUE INDEX ON %s (slice, day, source_id)", tbl);
    PQclear(q(c, sql, 0, NULL, PGRES_COMMAND_OK));
    snprintf(sql, sizeof(sql), "ANALYZE %s", tbl);
    PQclear(q(c, sql, 0, NULL, PGRES_COMMAND_OK));
    printf("coarse build: %zu lines, %u slices, %.0f s, filter bits %.1f MB\n", lines, slices,
           now_s() - t0, (double)fbytes / 1e6);
    PQfinish(c);
    return 0;
}

/* ---------- query ---------- */

struct toks {
    uint64_t h[MAX_TOK];
    size_t n;
};

static void on_qtoken(void *arg, const char *tok, size_t len, uint64_t hash)
{
    struct toks *t = arg;
    (void)tok;
    (void)len;
    for (size_t i = 0; i < t->n; i++)
        if (t->h[i] == hash)
            return;
    if (t->n < MAX_TOK)
        t->h[t->n++] = hash;
}

/* SQL of the unit: the first and last unit of the window [$2, $3) (Unix seconds), and a
 * passing unit u's start, end and the bound of its blocks' max_received. */
static const char *u_lo, *u_hi, *u_start, *u_end, *u_bound;

static void unit_sql(void)
{
    u_lo = hourly ? "date_trunc('hour', to_timestamp($2) AT TIME ZONE 'UTC')"
                  : "(to_timestamp($2) AT TIME ZONE 'UTC')::date";
    u_hi = hourly ? "(to_timestamp($3) AT TIME ZONE 'UTC')"
                  : "(to_timestamp($3) AT TIME ZONE 'UTC')::date";
    u_start = hourly ? "u.day AT TIME ZONE 'UTC'" : "u.day::timestamp AT TIME ZONE 'UTC'";
    u_end = hourly ? "(u.day + interval '1 hour') AT TIME ZONE 'UTC'"
                   : "(u.day + 1)::timestamp AT TIME ZONE 'UTC'";
    u_bound = hourly ? "(u.day + interval '1 day') AT TIME ZONE 'UTC'"
                     : "(u.day + 2)::timestamp AT TIME ZONE 'UTC'";
}

/* The units of the window among sources $1 whose slice filters may hold every token ($4
 * slices, $5 h1s, $6 h2s, $7 how many tokens). */
static void passing_sql(char *out, size_t n)
{
    snprintf(out, n,
             "SELECT f.source_id, f.day FROM %s f "
             "JOIN unnest($4::int[], $5::bigint[], $6::bigint[]) t(s, h1, h2) ON f.slice = t.s "
             "WHERE f.day >= %s AND f.day <= %s AND f.source_id = ANY($1::bigint[]) "
             "AND sl_bloom_has1(f.bloom, f.nbits, t.h1, t.h2) GROUP BY 1, 2 "
             "HAVING count(*) = $7::int",
             tbl, u_lo, u_hi);
}

static int dcmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double p)
{
    size_t k = (size_t)ceil(p / 100 * (double)n);
    qsort(v, n, sizeof(*v), dcmp);
    return v[k ? k - 1 : 0];
}

/* Lines of the blocks in r (columns source_id, min_id, max_id, min_received, max_received)
 * whose message holds text
 * (case-insensitively): the answer a search would read from them. */
static long long lines_in(PGconn *c, PGresult *r, const char *text)
{
    size_t cap = 64 + (size_t)PQntuples(r) * 64, o1 = 0, o2 = 0, o3 = 0, o4 = 0, o5 = 0;
    char *a1 = malloc(cap), *a2 = malloc(cap), *a3 = malloc(cap), *a4 = malloc(cap),
         *a5 = malloc(cap);
    const char *v[6];
    char pat[600];
    PGresult *x;
    long long n;
    size_t pl = 0;

    if (!a1 || !a2 || !a3 || !a4 || !a5)
        die("out of memory");
    o1 += (size_t)sprintf(a1, "{");
    o2 += (size_t)sprintf(a2, "{");
    o3 += (size_t)sprintf(a3, "{");
    o4 += (size_t)sprintf(a4, "{");
    o5 += (size_t)sprintf(a5, "{");
    for (int i = 0; i < PQntuples(r); i++) {
        o1 += (size_t)sprintf(a1 + o1, "%s%s", i ? "," : "", PQgetvalue(r, i, 0));
        o2 += (size_t)sprintf(a2 + o2, "%s%s", i ? "," : "", PQgetvalue(r, i, 1));
        o3 += (size_t)sprintf(a3 + o3, "%s%s", i ? "," : "", PQgetvalue(r, i, 2));
        o4 += (size_t)sprintf(a4 + o4, "%s\"%s\"", i ? "," : "", PQgetvalue(r, i, 3));
        o5 += (size_t)sprintf(a5 + o5, "%s\"%s\"", i ? "," : "", PQgetvalue(r, i, 4));
    }
    sprintf(a1 + o1, "}");
    sprintf(a2 + o2, "}");
    sprintf(a3 + o3, "}");
    sprintf(a4 + o4, "}");
    sprintf(a5 + o5, "}");
    /* the text without its quotes, LIKE-escaped */
    for (const char *p = text; *p && pl + 3 < sizeof(pat); p++) {
        if (*p == '"')
            continue;
        if (*p == '%' || *p == '_' || *p == '\\')
            pat[pl++] = '\\';
        pat[pl++] = *p;
    }
    pat[pl] = '\0';
    v[0] = a1;
    v[1] = a2;
    v[2] = a3;
    v[3] = pat;
    v[4] = a4;
    v[5] = a5;
    x = q(c,
          "SELECT count(*) FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], "
          "$5::timestamptz[], $6::timestamptz[]) bb(s, i0, i1, r0, r1) "
          "CROSS JOIN LATERAL (SELECT 1 FROM logs l WHERE l.source_id = bb.s "
          "AND l.received_at BETWEEN bb.r0 AND bb.r1 AND l.id BETWEEN bb.i0 AND bb.i1 "
          "AND l.message ILIKE '%' || $4 || '%' OFFSET 0) l",
          6, v, PGRES_TUPLES_OK);
    n = atoll(PQgetvalue(x, 0, 0));
    PQclear(x);
    free(a1);
    free(a2);
    free(a3);
    free(a4);
    free(a5);
    return n;
}

/* Run a block statement (timed into *ms), add its blocks to *cand; returns the lines
 * holding text in them (untimed). */
static long long timed_blocks(PGconn *c, const char *sql, int n, const char *const *pv,
                              const char *text, double *ms, long long *cand)
{
    double t0 = now_s();
    PGresult *r = q(c, sql, n, pv, PGRES_TUPLES_OK);
    long long lines;

    *ms = (now_s() - t0) * 1000;
    *cand += PQntuples(r);
    lines = lines_in(c, r, text);
    PQclear(r);
    return lines;
}

static int cmd_query(int argc, char **argv)
{
    const char *url = NULL, *runs_file = NULL;
    long long since = 0, until = 0;
    char **texts = calloc((size_t)argc + 4096, sizeof(char *));
    size_t nt = 0;
    PGconn *c;
    PGresult *r;
    char scope[8192], lo[32], hi[32], passing[1024], sql0[128];
    size_t sl = 0;
    unsigned slices;
    double *tb, *tc, *tk, *ta;
    long long total_units = 0;
    long long cand_b = 0, cand_c = 0, units = 0, lines_b = 0, lines_c = 0;

    if (texts == NULL)
        die("out of memory");
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--since") && i + 1 < argc)
            since = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--until") && i + 1 < argc)
            until = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--unit") && i + 1 < argc)
            set_unit(argv[++i]);
        else if (!strcmp(argv[i], "--runs-file") && i + 1 < argc)
            runs_file = argv[++i];
        else if (!url)
            url = argv[i];
        else
            texts[nt++] = argv[i];
    }
    if (runs_file) {
        FILE *f = fopen(runs_file, "r");
        char line[512];
        if (f == NULL)
            die("%s: cannot open", runs_file);
        while (nt < (size_t)argc + 4096 && fgets(line, sizeof(line), f)) {
            line[strcspn(line, "\n")] = '\0';
            if (*line && (texts[nt] = strdup(line)) != NULL)
                nt++;
        }
        fclose(f);
    }
    if (!url || !since || !until || nt == 0)
        die("usage: coarse query URL --since EPOCH --until EPOCH [--runs-file F] [TEXT...]");
    c = connect_db(url);
    /* the server's search session settings (drain/searchd.c) */
    PQclear(q(c, "SET jit = off", 0, NULL, PGRES_COMMAND_OK));
    PQclear(q(c, "SET max_parallel_workers_per_gather = 0", 0, NULL, PGRES_COMMAND_OK));
    unit_sql();
    passing_sql(passing, sizeof(passing));
    snprintf(sql0, sizeof(sql0), "SELECT coalesce(max(slice), 0) + 1 FROM %s", tbl);
    r = q(c, sql0, 0, NULL, PGRES_TUPLES_OK);
    slices = (unsigned)atoi(PQgetvalue(r, 0, 0));
    PQclear(r);
    r = q(c, "SELECT '{' || string_agg(id::text, ',' ORDER BY id) || '}' FROM sources", 0, NULL,
          PGRES_TUPLES_OK);
    sl = (size_t)snprintf(scope, sizeof(scope), "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    if (sl >= sizeof(scope))
        die("too many sources");
    snprintf(lo, sizeof(lo), "%lld", since);
    snprintf(hi, sizeof(hi), "%lld", until);
    tb = calloc(nt, sizeof(double));
    tc = calloc(nt, sizeof(double));
    tk = calloc(nt, sizeof(double));
    ta = calloc(nt, sizeof(double));
    if (!tb || !tc || !tk || !ta)
        die("out of memory");
    for (size_t qi = 0; qi < nt; qi++) {
        struct toks t = {.n = 0};
        char bloom[16384], a_s[4096], a_1[4096], a_2[4096], nts[16];
        size_t bo = 0, o1 = 0, o2 = 0, o3 = 0;
        char sql[40000];
        const char *pv[8];
        double t0;
        long long nb, nc;
        (void)sl_tokenize(texts[qi], strlen(texts[qi]), on_qtoken, &t);
        if (t.n == 0)
            die("no token in %s", texts[qi]);
        /* the server's per-block predicate, literal hashes (the server binds them) */
        bo += (size_t)snprintf(bloom + bo, sizeof(bloom) - bo, " AND (");
        o1 += (size_t)snprintf(a_s + o1, sizeof(a_s) - o1, "{");
        o2 += (size_t)snprintf(a_1 + o2, sizeof(a_1) - o2, "{");
        o3 += (size_t)snprintf(a_2, sizeof(a_2), "{");
        for (size_t i = 0; i < t.n; i++) {
            uint64_t h1 = t.h[i] & 0xffffffffu, h2 = (t.h[i] >> 32) | 1u;
            bo += (size_t)snprintf(bloom + bo, sizeof(bloom) - bo,
                                   "%ssl_bloom_has1(b.bloom, b.nbits, %" PRIu64 ", %" PRIu64 ")",
                                   i ? " AND " : "", h1, h2);
            o1 += (size_t)snprintf(a_s + o1, sizeof(a_s) - o1, "%s%u", i ? "," : "",
                                   slice_of(t.h[i], slices));
            o2 += (size_t)snprintf(a_1 + o2, sizeof(a_1) - o2, "%s%" PRIu64, i ? "," : "", h1);
            o3 += (size_t)snprintf(a_2 + o3, sizeof(a_2) - o3, "%s%" PRIu64, i ? "," : "", h2);
        }
        snprintf(bloom + bo, sizeof(bloom) - bo, ")");
        snprintf(a_s + o1, sizeof(a_s) - o1, "}");
        snprintf(a_1 + o2, sizeof(a_1) - o2, "}");
        snprintf(a_2 + o3, sizeof(a_2) - o3, "}");
        snprintf(nts, sizeof(nts), "%zu", t.n);
        /* 1. today: drain/search.c fetch_blocks, first page, newest first, all sources */
        snprintf(sql, sizeof(sql),
                 "SELECT b.source_id, b.min_id, b.max_id, b.min_received, b.max_received "
                 "FROM log_blocks b "
                 "WHERE (b.source_id + 0) = ANY($1::bigint[]) "
                 "AND b.max_received >= to_timestamp($2) AND b.min_received < to_timestamp($3) "
                 "AND (b.max_received, b.source_id, b.min_id) < ('infinity', "
                 "9223372036854775807, 9223372036854775807)%s "
                 "ORDER BY b.max_received DESC, b.source_id DESC, b.min_id DESC LIMIT 2048",
                 bloom);
        pv[0] = scope;
        pv[1] = lo;
        pv[2] = hi;
        nb = timed_blocks(c, sql, 3, pv, texts[qi], &tb[qi], &cand_b);
        lines_b += nb;
        /* 2. the coarse level first: (source, day)s whose slice filters may hold every
         * token, then only their blocks, same order and page. A block spanning midnight
         * belongs to two days: DISTINCT. A block spans less than a day (the writer closes
         * it when its received_at span reaches max_age_us, 300 s; include/sluice/blocks.h):
         * max_received < day + 2 bounds the index range. */
        snprintf(sql, sizeof(sql),
                 "WITH u AS (%s), "
                 "k AS (SELECT count(*) n FROM u) "
                 "SELECT DISTINCT b.source_id, b.min_id, b.max_id, b.min_received, "
                 "b.max_received, (SELECT n FROM k) FROM u "
                 "JOIN log_blocks b ON b.source_id = u.source_id "
                 "AND b.max_received >= greatest(to_timestamp($2), %s) "
                 "AND b.max_received < %s "
                 "AND b.min_received < least(to_timestamp($3), %s) WHERE true%s "
                 "ORDER BY b.max_received DESC, b.source_id DESC, b.min_id DESC LIMIT 2048",
                 passing, u_start, u_bound, u_end, bloom);
        pv[3] = a_s;
        pv[4] = a_1;
        pv[5] = a_2;
        pv[6] = nts;
        nc = timed_blocks(c, sql, 7, pv, texts[qi], &tc[qi], &cand_c);
        lines_c += nc;
        if (nc != nb)
            die("coarse: %s: %lld lines through the blocks, %lld through the coarse level",
                texts[qi], nb, nc);
        /* 3. the coarse check alone: how many (source, day)s pass, of how many */
        snprintf(sql, sizeof(sql),
                 "SELECT count(*), (SELECT count(DISTINCT (day, source_id)) FROM %s f "
                 "WHERE slice = 0 AND source_id = ANY($1::bigint[]) "
                 "AND day >= %s AND day <= %s) FROM (%s) u",
                 tbl, u_lo, u_hi, passing);
        t0 = now_s();
        r = q(c, sql, 7, pv, PGRES_TUPLES_OK);
        tk[qi] = (now_s() - t0) * 1000;
        {
            long long passed = atoll(PQgetvalue(r, 0, 0)), all = atoll(PQgetvalue(r, 0, 1));
            units += passed;
            total_units += all;
            /* adaptive: the coarse level's blocks when it let through at most a quarter of
             * the (source, day)s, else today's scan after the check */
            ta[qi] = 4 * passed <= all ? tc[qi] : tk[qi] + tb[qi];
        }
        PQclear(r);
        fprintf(stderr, "coarse: %-45s blocks %.1f ms, coarse+blocks %.1f ms\n", texts[qi], tb[qi],
                tc[qi]);
    }
    printf("RESULT kind=coarse_proto runs=%zu since=%lld until=%lld slices=%u "
           "blocks_p50_ms=%.1f blocks_p99_ms=%.1f coarse_p50_ms=%.1f coarse_p99_ms=%.1f "
           "blocks_found=%lld coarse_blocks_found=%lld coarse_units_passed=%lld "
           "lines_blocks=%lld lines_coarse=%lld units_per_query=%lld check_p50_ms=%.1f "
           "check_p99_ms=%.1f adaptive_p50_ms=%.1f adaptive_p99_ms=%.1f\n",
           nt, since, until, slices, pct(tb, nt, 50), pct(tb, nt, 99), pct(tc, nt, 50),
           pct(tc, nt, 99), cand_b, cand_c, units, lines_b, lines_c, total_units / (long long)nt,
           pct(tk, nt, 50), pct(tk, nt, 99), pct(ta, nt, 50), pct(ta, nt, 99));
    PQfinish(c);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "build"))
        return cmd_build(argc - 2, argv + 2);
    if (argc >= 2 && !strcmp(argv[1], "query"))
        return cmd_query(argc - 2, argv + 2);
    die("usage: coarse build|query URL ... (see the top of tests/bench/coarse.c)");
    return 1;
}
