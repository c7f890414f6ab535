/* searchgen: the search-design benchmark (docs/search.md, tests/bench/search_design.sh).
 *
 *   searchgen tokbench [LINES]          tokenize + hash + bloom corpus-shaped lines, one core
 *   searchgen sqlcheck URL              C-built filters vs sl_bloom_has in PostgreSQL
 *   searchgen load URL [options]        generate lines, COPY them into logs in batches like
 *                                       the writer (one transaction per batch), with or
 *                                       without the batch's log_blocks rows
 *   searchgen query URL [options]       run the search shapes, print p50/p99 per query
 *   searchgen verify URL                check log_blocks against the rows (every row in one
 *                                       block; sampled rows' tokens found by sl_bloom_has1)
 *
 * load options: --lines N (10000000) --days D (7) --sources S (50) --batch B (10000)
 *   --seed X --no-blocks --gen-only --bits-per-token N (10) --block-max-tokens N (0: none;
 *   a source's rows of a batch are split into blocks of at most N distinct tokens; default
 *   3200, so a filter is at most 32768 bits and stays inline)
 *   --end EPOCH (now) --first-id N (1) --interleave (rows of a batch in arrival order, sources
 *   mixed line by line; default: grouped by source, as the writer COPYs them)
 *   --block-seconds N (0: a source's block ends with the batch; N: blocks stay open across
 *   batches and close at the token cap or when they span N seconds of received_at, as
 *   docs/search.md condition 3 asks of the writer; run.sh uses 300)
 *   --create-sources PREFIX (insert or reuse sources PREFIX01.., and use their ids)
 *   --ids-from-seq (ids from a logs_id_block_seq block, the sequence moved past them after)
 *   --partitions (create the day partitions of the span, named as the server names them)
 *   --async-commit (synchronous_commit off for the load: for filling, not measuring ingest)
 *   --writer-blocks (log_blocks through drain/blocks.c and the writer's upsert statement,
 *   the batch's newest received_at as the writer's clock; --block-* options do not apply)
 * query options: --runs N (20) --shape bounded|lateral|twostep (twostep)
 *   --check has1|has|plpgsql|sql|inline (has1) --only word,phrase,reqid,common,status
 *
 * Lines are shaped like tests/fixtures/corpus/streams: Heroku router logfmt with request ids,
 * app JSON, heroku-postgres and dyno samples, celery and gunicorn lines, heartbeats, and
 * rare errors (KeyError, PG::UniqueViolation, H12/H10/H13). Sources are Zipf-weighted.
 * Everything is deterministic for a seed. */
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

#include "sluice/blocks.h"
#include "sluice/fields.h"
#include "sluice/row.h"
#include "sluice/tokens.h"

#define PG_EPOCH_US 946684800000000LL /* 2000-01-01 in Unix microseconds */

/* ---------- small helpers ---------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static uint64_t rng_state = 1;
static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
static unsigned rndn(unsigned n)
{
    return (unsigned)(((rnd() >> 32) * n) >> 32);
}
static double rndf(void)
{
    return (double)(rnd() >> 11) / 9007199254740992.0;
}

struct buf {
    char *p;
    size_t len, cap;
};
static void b_reserve(struct buf *b, size_t n)
{
    if (b->len + n <= b->cap)
        return;
    while (b->len + n > b->cap)
        b->cap = b->cap ? b->cap * 2 : 1 << 16;
    b->p = realloc(b->p, b->cap);
    if (!b->p)
        die("out of memory");
}
static void b_add(struct buf *b, const void *p, size_t n)
{
    b_reserve(b, n);
    memcpy(b->p + b->len, p, n);
    b->len += n;
}
static void b_be16(struct buf *b, uint16_t v)
{
    unsigned char x[2] = {(unsigned char)(v >> 8), (unsigned char)v};
    b_add(b, x, 2);
}
static void b_be32(struct buf *b, uint32_t v)
{
    unsigned char x[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    b_add(b, x, 4);
}
static void b_be64(struct buf *b, uint64_t v)
{
    b_be32(b, (uint32_t)(v >> 32));
    b_be32(b, (uint32_t)v);
}
/* COPY BINARY fields */
static void f_null(struct buf *b)
{
    b_be32(b, 0xffffffffu);
}
static void f_i8(struct buf *b, int64_t v)
{
    b_be32(b, 8);
    b_be64(b, (uint64_t)v);
}
static void f_i4(struct buf *b, int32_t v)
{
    b_be32(b, 4);
    b_be32(b, (uint32_t)v);
}
static void f_i2(struct buf *b, int16_t v)
{
    b_be32(b, 2);
    b_be16(b, (uint16_t)v);
}
static void f_ts(struct buf *b, int64_t unix_us)
{
    f_i8(b, unix_us - PG_EPOCH_US);
}
static void f_bytes(struct buf *b, const void *p, size_t n)
{
    b_be32(b, (uint32_t)n);
    b_add(b, p, n);
}
static void f_str(struct buf *b, const char *s)
{
    f_bytes(b, s, strlen(s));
}
static void copy_header(struct buf *b)
{
    b_add(b, "PGCOPY\n\377\r\n\0", 11);
    b_be32(b, 0);
    b_be32(b, 0);
}

/* ---------- the line generator ---------- */

struct line {
    int source;      /* 0-based */
    int64_t us;      /* received_at, Unix microseconds */
    int kind;        /* 0 router, 1 app, 2 heroku (platform) */
    const char *procid;
    char msg[400];
    size_t len;
    size_t json_off; /* its JSON object's byte offset (SIZE_MAX: none), set with json_at */
};

static const char *const paths[] = {"/", "/login", "/api/v1/items", "/static/app.css",
                                    "/health/ready", "/search", "/orders", "/api/v1/users",
                                    "/checkout", "/cart"};
static const char *const methods[] = {"GET", "GET", "GET", "GET", "POST", "PUT", "DELETE"};
static const char *const errors[] = {
    "KeyError: 'energyplus'",
    "PG::UniqueViolation: ERROR:  duplicate key value violates unique constraint "
    "\"index_users_on_email\"",
    "ActiveRecord::RecordNotFound (Couldn't find Order with 'id'=%u)",
    "Timeout::Error: execution expired",
    "Redis::CannotConnectError: Error connecting to Redis on 10.0.0.%u:6379 "
    "(Errno::ECONNREFUSED)",
    "NoMethodError: undefined method `email' for nil:NilClass",
    "ZeroDivisionError: division by zero",
    "django.db.utils.OperationalError: server closed the connection unexpectedly",
    "Sidekiq::Shutdown raised in job %u",
    "Traceback (most recent call last):",
};
#define NERRORS (sizeof(errors) / sizeof(errors[0]))

static double *src_cdf;
static int nsources = 50;

static void sources_init(int n)
{
    double sum = 0;
    nsources = n;
    src_cdf = calloc((size_t)n, sizeof(double));
    for (int i = 0; i < n; i++)
        sum += 1.0 / pow(i + 1, 0.8);
    for (int i = 0, acc = 0; i < n; i++, acc++) {
        src_cdf[i] = (i ? src_cdf[i - 1] : 0) + 1.0 / pow(i + 1, 0.8) / sum;
    }
    src_cdf[n - 1] = 1.0;
}

static int pick_source(void)
{
    double u = rndf();
    int lo = 0, hi = nsources - 1;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (src_cdf[mid] < u)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int uuid(char *o)
{
    uint64_t a = rnd(), b = rnd();
    return sprintf(o, "%08x-%04x-4%03x-%04x-%012" PRIx64, (unsigned)(a >> 32),
                   (unsigned)(a >> 16) & 0xffff, (unsigned)a & 0xfff,
                   0x8000 | ((unsigned)(b >> 48) & 0x3fff), (uint64_t)(b & 0xffffffffffffULL));
}

static void gen_line(struct line *l)
{
    char id[40];
    unsigned r = rndn(100000);
    int s = l->source;
    char *m = l->msg;

    l->kind = 1;
    if (r < 45000 || r >= 99850) { /* router */
        unsigned st, p = rndn(10), x = rndn(1000);
        const char *meth = methods[rndn(7)];
        uuid(id);
        l->kind = 0;
        l->procid = "router";
        if (r >= 99850) {
            const char *code = r < 99950 ? "H12" : r < 99980 ? "H10" : "H13";
            const char *desc = r < 99950 ? "Request timeout"
                               : r < 99980 ? "App crashed"
                                           : "Connection closed without response";
            l->len = (size_t)sprintf(
                m,
                "at=error code=%s desc=\"%s\" method=%s path=\"%s\" host=app%02d.herokuapp.com "
                "request_id=%s fwd=\"%u.%u.%u.%u\" dyno=web.%u connect=%ums service=%ums "
                "status=503 bytes=0 protocol=https",
                code, desc, meth, paths[p], s, id, rndn(223) + 1, rndn(256), rndn(256), rndn(256),
                rndn(4) + 1, rndn(5), r < 99950 ? 30000 : rndn(100));
            return;
        }
        st = x < 600 ? 200 : x < 680 ? 201 : x < 720 ? 204 : x < 800 ? 302 : x < 880 ? 304
             : x < 975 ? 404 : x < 990 ? 500 : x < 993 ? 502 : 503;
        l->len = (size_t)sprintf(
            m,
            "at=info method=%s path=\"%s\" host=app%02d.herokuapp.com request_id=%s "
            "fwd=\"%u.%u.%u.%u\" dyno=web.%u connect=%ums service=%ums status=%u bytes=%u "
            "protocol=https",
            meth, paths[p], s, id, rndn(223) + 1, rndn(256), rndn(256), rndn(256), rndn(4) + 1,
            rndn(5), rndn(400) + 1, st, rndn(80000));
        return;
    }
    r -= 45000;
    if (r < 12000) {
        l->procid = rndn(2) ? "worker.1" : "api.1";
        l->len = (size_t)sprintf(m,
                                 "{\"level\":\"info\",\"msg\":\"request\",\"path\":\"%s\","
                                 "\"status\":200,\"dur_ms\":%u,\"user_id\":%u}",
                                 paths[rndn(10)], rndn(300), rndn(100000));
    } else if (r < 20000) {
        l->kind = 2;
        l->procid = "heroku-postgres";
        l->len = (size_t)sprintf(m,
                                 "source=DATABASE addon=postgresql-curly-%05u "
                                 "sample#db_size=%ubytes sample#active-connections=%u "
                                 "sample#load-avg-1m=0.%02u sample#read-iops=%u",
                                 10000 + s, 300000000 + rndn(100000000), rndn(40), rndn(100),
                                 rndn(500));
    } else if (r < 25000) {
        l->kind = 2;
        l->procid = "web.1";
        l->len = (size_t)sprintf(m,
                                 "source=web.%u dyno=heroku.%u.%08x sample#memory_total=%u.%02uMB "
                                 "sample#memory_rss=%u.%02uMB sample#memory_quota=512.00MB",
                                 rndn(4) + 1, 2800000 + s, (unsigned)rnd(), 100 + rndn(400),
                                 rndn(100), 100 + rndn(400), rndn(100));
    } else if (r < 33000) {
        uuid(id);
        l->procid = "worker.1";
        l->len = (size_t)sprintf(
            m, "[INFO] celery.worker.strategy: Task validations.tasks.run[%s] received", id);
    } else if (r < 41000) {
        l->procid = "web.1";
        l->len = (size_t)sprintf(m,
                                 "%u.%u.%u.%u - - \"GET /api/v1/validations?page=%u HTTP/1.1\" "
                                 "200 %u \"-\" \"python-requests/2.31.0\"",
                                 rndn(223) + 1, rndn(256), rndn(256), rndn(256), rndn(50),
                                 rndn(9000));
    } else if (r < 47000) {
        l->procid = "api.1";
        l->len = (size_t)sprintf(m, "agent heartbeat ok");
    } else if (r < 54800) {
        l->procid = "web.2";
        if (rndn(2))
            l->len = (size_t)sprintf(m,
                                     "Started GET \"/orders/%u\" for %u.%u.%u.%u at "
                                     "2026-11-21 10:00:%02u +0000",
                                     rndn(1000000), rndn(223) + 1, rndn(256), rndn(256), rndn(256),
                                     rndn(60));
        else
            l->len = (size_t)sprintf(m,
                                     "Completed 200 OK in %ums (Views: %u.%ums | ActiveRecord: "
                                     "%u.%ums | Allocations: %u)",
                                     rndn(300), rndn(100), rndn(10), rndn(50), rndn(10),
                                     rndn(20000));
    } else { /* r in [54800, 54850): errors, 0.05 % of lines */
        char tmp[300];
        const char *e = errors[rndn(NERRORS)];
        l->procid = "web.1";
        snprintf(tmp, sizeof(tmp), e, rndn(100000), rndn(100000));
        l->len = (size_t)sprintf(m, "%s", tmp);
    }
}

/* ---------- tokbench ---------- */

struct tokctx {
    struct sl_bloom *b;
    size_t tokens;
    int err;
};

static void add_cb(void *arg, const char *tok, size_t len, uint64_t hash)
{
    struct tokctx *c = arg;
    (void)tok;
    (void)len;
    c->tokens++;
    if (sl_bloom_add(c->b, hash))
        c->err = 1;
}

static void hash_only_cb(void *arg, const char *tok, size_t len, uint64_t hash)
{
    struct tokctx *c = arg;
    (void)tok;
    (void)len;
    c->tokens += (size_t)(hash & 1);
}

static void count_cb(void *arg, uint64_t hash)
{
    (void)hash;
    (*(size_t *)arg)++;
}

static int cmd_tokbench(int argc, char **argv)
{
    size_t n = argc > 0 ? strtoull(argv[0], NULL, 10) : 2000000;
    struct line *lines = malloc(n * sizeof(*lines));
    size_t bytes = 0, block = 200;
    struct sl_bloom b;
    struct tokctx c = {&b, 0, 0};
    double t0, t1, t2;
    size_t blocks = 0;

    if (!lines)
        die("out of memory");
    sources_init(50);
    for (size_t i = 0; i < n; i++) {
        lines[i].source = pick_source();
        gen_line(&lines[i]);
        bytes += lines[i].len;
    }
    /* tokenize + hash only: best of 5 passes */
    t1 = 0;
    for (int pass = 0; pass < 5; pass++) {
        double a = now_s(), d;
        for (size_t i = 0; i < n; i++)
            sl_tokenize(lines[i].msg, lines[i].len, hash_only_cb, &c);
        d = now_s() - a;
        if (pass == 0 || d < t1)
            t1 = d;
    }
    t0 = 0;
    printf("tokenize+hash: %zu lines, %.0f B/line avg, %.2f M lines/s, %.0f MB/s\n", n,
           (double)bytes / (double)n, (double)n / (t1 - t0) / 1e6,
           (double)bytes / (t1 - t0) / 1e6);
    /* tokenize + hash + bloom add + build per block of `block` lines */
    sl_bloom_init(&b);
    c.tokens = 0;
    t1 = now_s();
    for (size_t i = 0; i < n; i++) {
        sl_tokenize(lines[i].msg, lines[i].len, add_cb, &c);
        if ((i + 1) % block == 0 || i + 1 == n) {
            if (sl_bloom_build(&b))
                die("build failed");
            blocks++;
            sl_bloom_reset(&b);
        }
    }
    t2 = now_s();
    if (c.err)
        die("add failed");
    printf("tokenize+hash+bloom (blocks of %zu lines): %.2f M lines/s, %.1f tokens/line, "
           "%zu blocks\n",
           block, (double)n / (t2 - t1) / 1e6, (double)c.tokens / (double)n, blocks);
    sl_bloom_free(&b);
    /* the writer's block path (drain/blocks.c: tokens, numeric field classes, filters),
     * driven as the writer drives it: batches of 1 000 rows, each begun, added, its
     * filters built, committed; and the numeric field classes alone, on the same lines */
    {
        struct sl_blocks *bs;
        const struct sl_block_row *rows;
        size_t nr, hashes = 0, *joff = malloc(n * sizeof(*joff));
        double best_b = 0, best_c = 0;
        if (joff == NULL || sl_blocks_new(NULL, &bs))
            die("out of memory");
        for (size_t i = 0; i < n; i++) {
            struct sl_json_at at;
            joff[i] = sl_fields_json_find(lines[i].msg, lines[i].len, &at) ? at.off : SIZE_MAX;
        }
        for (int pass = 0; pass < 3; pass++) {
            double a = now_s(), d;
            for (size_t i = 0; i < n; i++) {
                if (i % 1000 == 0)
                    sl_blocks_begin(bs, (int64_t)i * 1000);
                if (sl_blocks_add_json(bs, lines[i].source + 1, (int64_t)i + 1, (int64_t)i * 1000,
                                       lines[i].msg, lines[i].len, joff[i], NULL, 0))
                    die("sl_blocks_add failed");
                if (i % 1000 == 999 || i + 1 == n) {
                    if (sl_blocks_rows(bs, &rows, &nr))
                        die("sl_blocks_rows failed");
                    sl_blocks_commit(bs);
                }
            }
            d = now_s() - a;
            if (pass == 0 || d < best_b)
                best_b = d;
            sl_blocks_abort(bs);
        }
        for (int pass = 0; pass < 3; pass++) {
            double a = now_s(), d;
            hashes = 0;
            for (size_t i = 0; i < n; i++)
                if (sl_fields_num_classes(lines[i].msg, lines[i].len, joff[i], count_cb, &hashes))
                    die("out of memory");
            d = now_s() - a;
            if (pass == 0 || d < best_c)
                best_c = d;
        }
        printf("writer block path: %.0f ns/line; of it the numeric field classes: %.0f ns/line "
               "(%.2f class tokens/line)\n",
               best_b / (double)n * 1e9, best_c / (double)n * 1e9, (double)hashes / (double)n);
        sl_blocks_free(bs);
        free(joff);
    }
    free(lines);
    return 0;
}

/* ---------- PostgreSQL helpers ---------- */

static PGconn *connect_db(const char *url)
{
    PGconn *c = PQconnectdb(url);
    if (PQstatus(c) != CONNECTION_OK)
        die("connect: %s", PQerrorMessage(c));
    return c;
}

static void exec_ok(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        die("%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
}

static void copy_send(PGconn *c, const char *sql, struct buf *b)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COPY_IN)
        die("%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    for (size_t off = 0; off < b->len;) {
        size_t n = b->len - off > (1u << 20) ? (1u << 20) : b->len - off;
        if (PQputCopyData(c, b->p + off, (int)n) != 1)
            die("copy data: %s", PQerrorMessage(c));
        off += n;
    }
    if (PQputCopyEnd(c, NULL) != 1)
        die("copy end: %s", PQerrorMessage(c));
    r = PQgetResult(c);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        die("copy: %s", PQerrorMessage(c));
    PQclear(r);
    while ((r = PQgetResult(c)))
        PQclear(r);
}

/* Build a filter with a given bits-per-token (the header's sizing, parameterised). */
static int build_bits(struct sl_bloom *b, unsigned bits_per_token)
{
    uint64_t want = (uint64_t)b->n * bits_per_token;
    uint32_t nbits = SL_BLOOM_MIN_BITS;

    if (bits_per_token == SL_BLOOM_BITS_PER_TOKEN)
        return sl_bloom_build(b);
    while (nbits < want && nbits < SL_BLOOM_MAX_BITS)
        nbits <<= 1;
    b->bits = realloc(b->bits, nbits / 8);
    b->nbits = nbits;
    memset(b->bits, 0, nbits / 8);
    for (size_t s = 0; s < b->cap; s++) {
        if (!b->hashes[s])
            continue;
        for (unsigned k = 0; k < SL_BLOOM_K; k++) {
            uint32_t p = sl_bloom_pos(b->hashes[s], k, nbits);
            b->bits[p >> 3] |= (uint8_t)(1u << (p & 7));
        }
    }
    return 0;
}

/* ---------- sqlcheck ---------- */

static int cmd_sqlcheck(int argc, char **argv)
{
    PGconn *c;
    static const size_t sizes[] = {1, 50, 1000, 5000, 40000, 200000};
    size_t mismatches = 0, present_ok = 0, absent_pos = 0, absent_total = 0;
    PGresult *r;

    if (argc < 1)
        die("usage: searchgen sqlcheck URL");
    c = connect_db(argv[0]);
    /* get_bit's bit order, from the server itself: byte 0x01 has bit 0 set. */
    r = PQexec(c, "SELECT get_bit('\\x01'::bytea, 0), get_bit('\\x01'::bytea, 7), "
                  "get_bit('\\x0080'::bytea, 15)");
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        die("get_bit: %s", PQerrorMessage(c));
    printf("get_bit('\\x01',0)=%s get_bit('\\x01',7)=%s get_bit('\\x0080',15)=%s "
           "(1 0 1: least significant bit first)\n",
           PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 2));
    if (strcmp(PQgetvalue(r, 0, 0), "1") || strcmp(PQgetvalue(r, 0, 1), "0") ||
        strcmp(PQgetvalue(r, 0, 2), "1"))
        die("get_bit is not least-significant-bit first");
    PQclear(r);

    for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
        size_t n = sizes[si], nq = 2 * n < 4000 ? 2 * n : 4000;
        struct sl_bloom b;
        struct buf h1 = {0}, h2 = {0}, want = {0};
        char tok[64], nb[16];
        const char *vals[4];
        int lens[4], fmts[4] = {1, 0, 0, 0};

        sl_bloom_init(&b);
        for (size_t i = 0; i < n; i++) {
            size_t len = (size_t)snprintf(tok, sizeof(tok), "tok%zu-%zu", si, i);
            if (sl_bloom_add(&b, sl_token_hash64(tok, len)))
                die("add");
        }
        if (sl_bloom_build(&b))
            die("build");
        /* Queries: the first half present tokens, then absent ones. */
        b_add(&h1, "{", 1);
        b_add(&h2, "{", 1);
        for (size_t i = 0; i < nq; i++) {
            size_t len = i < nq / 2 ? (size_t)snprintf(tok, sizeof(tok), "tok%zu-%zu", si, i)
                                    : (size_t)snprintf(tok, sizeof(tok), "absent%zu-%zu", si, i);
            uint64_t h = sl_token_hash64(tok, len);
            char x[48];
            int k = snprintf(x, sizeof(x), "%s%" PRIu64, i ? "," : "", h & 0xffffffffu);
            b_add(&h1, x, (size_t)k);
            k = snprintf(x, sizeof(x), "%s%" PRIu64, i ? "," : "", (h >> 32) | 1);
            b_add(&h2, x, (size_t)k);
            b_add(&want, sl_bloom_may_have(&b, h) ? "t" : "f", 1);
        }
        b_add(&h1, "}", 2);
        b_add(&h2, "}", 2);
        snprintf(nb, sizeof(nb), "%u", b.nbits);
        vals[0] = (const char *)b.bits;
        lens[0] = (int)(b.nbits / 8);
        vals[1] = nb;
        vals[2] = h1.p;
        vals[3] = h2.p;
        lens[1] = lens[2] = lens[3] = 0;
        r = PQexecParams(c,
                         "SELECT i, sl_bloom_has($1, $2::int, ARRAY[($3::bigint[])[i]], "
                         "ARRAY[($4::bigint[])[i]]), "
                         "sl_bloom_has_plpgsql($1, $2::int, ARRAY[($3::bigint[])[i]], "
                         "ARRAY[($4::bigint[])[i]]), "
                         "sl_bloom_has_sql($1, $2::int, ARRAY[($3::bigint[])[i]], "
                         "ARRAY[($4::bigint[])[i]]), "
                         "sl_bloom_has1($1, $2::int, ($3::bigint[])[i], ($4::bigint[])[i]) "
                         "FROM generate_subscripts($3::bigint[], 1) i ORDER BY i",
                         4, NULL, vals, lens, fmts, 0);
        if (PQresultStatus(r) != PGRES_TUPLES_OK)
            die("sl_bloom_has: %s", PQerrorMessage(c));
        for (int i = 0; i < PQntuples(r); i++) {
            char got = PQgetvalue(r, i, 1)[0], got2 = PQgetvalue(r, i, 2)[0],
                 got3 = PQgetvalue(r, i, 3)[0], got4 = PQgetvalue(r, i, 4)[0];
            if (got != want.p[i] || got2 != want.p[i] || got3 != want.p[i] || got4 != want.p[i])
                mismatches++;
            if ((size_t)i < nq / 2)
                present_ok += got == 't';
            else {
                absent_total++;
                absent_pos += got == 't';
            }
        }
        PQclear(r);
        /* All present tokens at once (AND) must be true; with one absent token mostly false. */
        r = PQexecParams(c, "SELECT sl_bloom_has($1, $2::int, $3::bigint[], $4::bigint[])", 4,
                         NULL, vals, lens, fmts, 0);
        if (PQresultStatus(r) != PGRES_TUPLES_OK)
            die("sl_bloom_has: %s", PQerrorMessage(c));
        printf("filter %zu tokens, %u bits: %zu probes, sl_bloom_has/_plpgsql/_sql/has1 agree with C: %s; AND over all probes (half absent): %s\n",
               n, b.nbits, nq, mismatches ? "NO" : "yes", PQgetvalue(r, 0, 0));
        PQclear(r);
        free(h1.p);
        free(h2.p);
        free(want.p);
        sl_bloom_free(&b);
    }
    printf("sqlcheck: present found %zu, absent false positives %zu of %zu, mismatches %zu\n",
           present_ok, absent_pos, absent_total, mismatches);
    PQfinish(c);
    return mismatches ? 1 : 0;
}

/* ---------- load ---------- */

struct blockacc {
    struct sl_bloom b;
    int64_t min_us, max_us, min_id, max_id;
    int nrows;
};

static int64_t *src_ids; /* sources' ids in the database, by generator index */

static void block_flush(struct buf *out, int source, struct blockacc *a, unsigned bpt,
                        size_t *nblocks, size_t *bloom_bytes)
{
    if (a->nrows == 0)
        return;
    if (build_bits(&a->b, bpt))
        die("build");
    b_be16(out, 8);
    f_i8(out, src_ids[source]);
    f_ts(out, a->min_us);
    f_ts(out, a->max_us);
    f_i8(out, a->min_id);
    f_i8(out, a->max_id);
    f_i4(out, a->nrows);
    f_i4(out, (int32_t)a->b.nbits);
    f_bytes(out, a->b.bits, a->b.nbits / 8);
    (*nblocks)++;
    *bloom_bytes += a->b.nbits / 8;
    sl_bloom_reset(&a->b);
    a->nrows = 0;
}

/* The writer's log_blocks upsert (drain/writer.c w_blocks_upsert), same statement: the
 * batch's touched blocks as eight arrays. */
static void blocks_upsert(PGconn *c, struct sl_blocks *bs, size_t *nrows_out, size_t *bytes_out)
{
    const struct sl_block_row *rows;
    size_t n, start[8];
    struct buf sql = {0};
    const char *vals[8];
    PGresult *r;

    if (sl_blocks_rows(bs, &rows, &n))
        die("sl_blocks_rows: out of memory");
    if (n == 0)
        return;
    for (int col = 0; col < 8; col++) {
        start[col] = sql.len;
        b_add(&sql, "{", 1);
        for (size_t i = 0; i < n; i++) {
            const struct sl_block_row *b = &rows[i];
            char x[32];
            int k = 0;
            if (i)
                b_add(&sql, ",", 1);
            switch (col) {
            case 0: k = snprintf(x, sizeof(x), "%" PRId64, b->source_id); break;
            case 1: k = snprintf(x, sizeof(x), "%" PRId64, b->min_received_us); break;
            case 2: k = snprintf(x, sizeof(x), "%" PRId64, b->max_received_us); break;
            case 3: k = snprintf(x, sizeof(x), "%" PRId64, b->min_id); break;
            case 4: k = snprintf(x, sizeof(x), "%" PRId64, b->max_id); break;
            case 5: k = snprintf(x, sizeof(x), "%" PRIu32, b->nrows); break;
            case 6: k = snprintf(x, sizeof(x), "%" PRIu32, b->nbits); break;
            default:
                b_reserve(&sql, (size_t)b->nbits / 4);
                for (uint32_t j = 0; j < b->nbits / 8; j++) {
                    static const char hex[] = "0123456789abcdef";
                    sql.p[sql.len++] = hex[b->bloom[j] >> 4];
                    sql.p[sql.len++] = hex[b->bloom[j] & 15];
                }
                break;
            }
            b_add(&sql, x, (size_t)k);
            if (col == 0 && b->closed) { /* counted once, when it closes */
                (*nrows_out)++;
                *bytes_out += b->nbits / 8;
            }
        }
        b_add(&sql, "}", 2);
    }
    for (int col = 0; col < 8; col++)
        vals[col] = sql.p + start[col];
    r = PQexecParams(
        c,
        SL_BLOCKS_UPSERT_SQL,
        8, NULL, vals, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        die("log_blocks upsert: %s", PQerrorMessage(c));
    PQclear(r);
    free(sql.p);
}

/* Sources PREFIX01.. (PREFIX001.. from 100 sources on; 30-day retention, so the server's
 * retention pass keeps the 7 days); existing ones are reused. Fills src_ids in name order.
 * Their token hashes are of "PREFIXn": nothing posts to them. */
static void sources_create(PGconn *c, const char *prefix, int n)
{
    char ns[16];
    const char *vals[2] = {prefix, ns};
    PGresult *r;

    snprintf(ns, sizeof(ns), "%d", n);
    r = PQexecParams(c,
                     "INSERT INTO sources (name, token_hash, retention_days) "
                     "SELECT $1 || lpad(i::text, greatest(2, length($2::int::text)), '0'), "
                     "sha256(convert_to($1 || i, 'UTF8')), 30 "
                     "FROM generate_series(1, $2::int) i ON CONFLICT (name) DO NOTHING",
                     2, NULL, vals, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        die("sources: %s", PQerrorMessage(c));
    PQclear(r);
    r = PQexecParams(c,
                     "SELECT id FROM sources WHERE name IN "
                     "(SELECT $1 || lpad(i::text, greatest(2, length($2::int::text)), '0') "
                     "FROM generate_series(1, $2::int) i) ORDER BY name",
                     2, NULL, vals, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != n)
        die("sources: %s", PQerrorMessage(c));
    for (int i = 0; i < n; i++)
        src_ids[i] = strtoll(PQgetvalue(r, i, 0), NULL, 10);
    PQclear(r);
}

/* The day partitions of [from, to] (UTC days), named and bounded as sl_db_ensure_partitions
 * makes them, so the server's maintenance finds them in place. */
static void partitions_create(PGconn *c, int64_t from_us, int64_t to_us)
{
    time_t t = (time_t)(from_us / 1000000);
    struct tm tm;

    gmtime_r(&t, &tm);
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    for (time_t d = timegm(&tm); d <= to_us / 1000000; d += 86400) {
        char name[16], lo[32], hi[32], sql[256];
        time_t d1 = d + 86400;

        gmtime_r(&d, &tm);
        strftime(name, sizeof(name), "logs_%Y%m%d", &tm);
        strftime(lo, sizeof(lo), "%Y-%m-%d 00:00:00+00", &tm);
        gmtime_r(&d1, &tm);
        strftime(hi, sizeof(hi), "%Y-%m-%d 00:00:00+00", &tm);
        snprintf(sql, sizeof(sql),
                 "CREATE TABLE IF NOT EXISTS %s PARTITION OF logs FOR VALUES FROM ('%s') TO ('%s')",
                 name, lo, hi);
        exec_ok(c, sql);
    }
}

static int cmd_load(int argc, char **argv)
{
    const char *url = NULL;
    size_t lines = 10000000, batch = 10000, block_max_tokens = 3200;
    double days = 7; /* may be a fraction: a probe of the same density over less time */
    int sources = 50;
    unsigned bpt = SL_BLOOM_BITS_PER_TOKEN;
    bool blocks = true, gen_only = false;
    int64_t end_us = 0, first_id = 1, block_us = 0;
    const char *create_sources = NULL;
    bool ids_from_seq = false, partitions = false, writer_blocks = false, async_commit = false;
    struct sl_blocks *wb = NULL;
    PGconn *c = NULL;
    struct buf rows = {0}, bl = {0};
    struct blockacc *acc;
    struct line *bl_lines, *gen_lines;
    bool interleave = false;
    double t0, tok_cpu = 0, db_s = 0;
    size_t nblocks = 0, bloom_bytes = 0, tokens = 0, bytes = 0;
    int64_t start_us, span_us;

    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : "0";
        if (!strcmp(a, "--lines"))
            lines = strtoull(v, NULL, 10), i++;
        else if (!strcmp(a, "--days"))
            days = atof(v), i++;
        else if (!strcmp(a, "--sources"))
            sources = atoi(v), i++;
        else if (!strcmp(a, "--batch"))
            batch = strtoull(v, NULL, 10), i++;
        else if (!strcmp(a, "--seed"))
            rng_state = strtoull(v, NULL, 10), i++;
        else if (!strcmp(a, "--bits-per-token"))
            bpt = (unsigned)atoi(v), i++;
        else if (!strcmp(a, "--block-max-tokens"))
            block_max_tokens = strtoull(v, NULL, 10), i++;
        else if (!strcmp(a, "--end"))
            end_us = strtoll(v, NULL, 10) * 1000000LL, i++;
        else if (!strcmp(a, "--first-id"))
            first_id = strtoll(v, NULL, 10), i++;
        else if (!strcmp(a, "--block-seconds"))
            block_us = strtoll(v, NULL, 10) * 1000000LL, i++;
        else if (!strcmp(a, "--create-sources"))
            create_sources = v, i++;
        else if (!strcmp(a, "--ids-from-seq"))
            ids_from_seq = true;
        else if (!strcmp(a, "--partitions"))
            partitions = true;
        else if (!strcmp(a, "--writer-blocks"))
            writer_blocks = true;
        else if (!strcmp(a, "--async-commit"))
            async_commit = true;
        else if (!strcmp(a, "--no-blocks"))
            blocks = false;
        else if (!strcmp(a, "--interleave"))
            interleave = true;
        else if (!strcmp(a, "--gen-only"))
            gen_only = true;
        else if (!url)
            url = a;
        else
            die("load: unknown argument %s", a);
    }
    if (!url && !gen_only)
        die("usage: searchgen load URL [options]");
    if (!end_us)
        end_us = (int64_t)time(NULL) * 1000000LL;
    span_us = (int64_t)(days * 86400 * 1e6);
    start_us = end_us - span_us;
    sources_init(sources);
    acc = calloc((size_t)sources, sizeof(*acc));
    bl_lines = malloc(batch * sizeof(*bl_lines));
    gen_lines = malloc(batch * sizeof(*gen_lines));
    if (sources > 1000)
        die("at most 1000 sources");
    if (!acc || !bl_lines || !gen_lines)
        die("out of memory");
    for (int s = 0; s < sources; s++)
        sl_bloom_init(&acc[s].b);
    src_ids = malloc((size_t)sources * sizeof(*src_ids));
    if (!src_ids)
        die("out of memory");
    for (int s = 0; s < sources; s++)
        src_ids[s] = s + 1;
    if (!gen_only) {
        c = connect_db(url);
        if (async_commit) /* a fill, not an ingest measurement: no WAL flush per batch */
            exec_ok(c, "SET synchronous_commit = off");
        if (create_sources)
            sources_create(c, create_sources, sources);
        if (partitions)
            partitions_create(c, start_us, end_us);
        if (ids_from_seq) {
            /* Like the writer: a block of 2^20 ids from logs_id_block_seq. The load takes
             * consecutive ids from there; afterwards the sequence is moved past them. */
            PGresult *r = PQexec(c, "SELECT nextval('logs_id_block_seq')");
            if (PQresultStatus(r) != PGRES_TUPLES_OK)
                die("logs_id_block_seq: %s", PQerrorMessage(c));
            first_id = strtoll(PQgetvalue(r, 0, 0), NULL, 10) << 20;
            PQclear(r);
        }
    }
    if (writer_blocks && sl_blocks_new(NULL, &wb))
        die("sl_blocks_new failed");
    t0 = now_s();
    for (size_t done = 0; done < lines;) {
        size_t n = lines - done < batch ? lines - done : batch;
        rows.len = 0;
        bl.len = 0;
        copy_header(&rows);
        copy_header(&bl);
        for (size_t i = 0; i < n; i++) {
            size_t k = done + i;
            struct line *l = &gen_lines[i];
            l->source = pick_source();
            l->us = start_us + (int64_t)((double)span_us * ((double)k + 0.5) / (double)lines);
            gen_line(l);
            bytes += l->len;
        }
        /* Row order in the batch: grouped by source (stable), as the writer would COPY
         * them, so one block's rows are one run of heap pages; or as they arrived. */
        if (interleave)
            memcpy(bl_lines, gen_lines, n * sizeof(*bl_lines));
        else {
            size_t at[1024] = {0};
            for (size_t i = 0; i < n; i++)
                at[gen_lines[i].source + 1]++;
            for (int s2 = 1; s2 <= sources; s2++)
                at[s2] += at[s2 - 1];
            for (size_t i = 0; i < n; i++)
                bl_lines[at[gen_lines[i].source]++] = gen_lines[i];
        }
        for (size_t i = 0; i < n; i++) {
            size_t k = done + i;
            int64_t id = first_id + (int64_t)k;
            struct line *l = &bl_lines[i];
            /* the row, in SL_ROW_COLUMNS order */
            b_be16(&rows, SL_ROW_NCOLS);
            f_i8(&rows, id);
            f_ts(&rows, l->us);
            f_i8(&rows, src_ids[l->source]);
            f_ts(&rows, l->us - 3000);
            f_i2(&rows, 6);
            f_i2(&rows, 0);
            f_i2(&rows, l->kind == 0 ? 1 : l->kind == 2 ? 5 : 1);
            f_i2(&rows, l->kind == 0 && strstr(l->msg, "status=5") ? 3 : 6);
            f_str(&rows, "host");
            f_str(&rows, l->kind == 1 ? "app" : "heroku");
            f_str(&rows, l->procid);
            f_null(&rows);
            f_null(&rows);
            f_bytes(&rows, l->msg, l->len);
            f_null(&rows);
            f_null(&rows);
            f_null(&rows);
            f_null(&rows);
            f_null(&rows);
            {
                /* json_at, as drain/row.c sets it */
                struct sl_json_at at;
                l->json_off = SIZE_MAX;
                if (sl_fields_json_find(l->msg, l->len, &at)) {
                    f_i4(&rows, (int32_t)at.char_off + 1);
                    l->json_off = at.off;
                } else
                    f_null(&rows);
            }
        }
        b_be16(&rows, 0xffff);
        if (blocks && writer_blocks) {
            /* drain/blocks.c itself, driven as the writer drives it: begin at the batch's
             * clock (its newest received_at), every row in id order, upsert, commit */
            double w0 = now_s();
            int64_t clock_us = 0;
            for (size_t i = 0; i < n; i++)
                if (bl_lines[i].us > clock_us)
                    clock_us = bl_lines[i].us;
            sl_blocks_begin(wb, clock_us);
            for (size_t i = 0; i < n; i++) {
                struct line *l = &bl_lines[i];
                /* as the writer: its JSON object's numeric classes too */
                if (sl_blocks_add_json(wb, src_ids[l->source], first_id + (int64_t)(done + i),
                                       l->us, l->msg, l->len, l->json_off, NULL, 0))
                    die("sl_blocks_add failed");
            }
            tok_cpu += now_s() - w0;
        } else if (blocks) {
            /* the writer's extra work, timed as a whole: tokenize each row into its
             * source's block, cut blocks at block_max_tokens, build the filters */
            double w0 = now_s();
            for (size_t i = 0; i < n; i++) {
                struct line *l = &bl_lines[i];
                int64_t id = first_id + (int64_t)(done + i);
                struct blockacc *a = &acc[l->source];
                struct tokctx tc = {&a->b, 0, 0};
                if ((block_max_tokens && a->b.n >= block_max_tokens) ||
                    (block_us && a->nrows && l->us - a->min_us >= block_us))
                    block_flush(&bl, l->source, a, bpt, &nblocks, &bloom_bytes);
                sl_tokenize(l->msg, l->len, add_cb, &tc);
                if (tc.err)
                    die("bloom add failed");
                tokens += tc.tokens;
                if (a->nrows == 0) {
                    a->min_us = l->us;
                    a->min_id = id;
                }
                a->max_us = l->us;
                a->max_id = id;
                a->nrows++;
            }
            /* Per-batch blocks (--block-seconds 0), or the open blocks at the very end. */
            if (!block_us || done + n == lines)
                for (int s = 0; s < sources; s++)
                    block_flush(&bl, s, &acc[s], bpt, &nblocks, &bloom_bytes);
            b_be16(&bl, 0xffff);
            tok_cpu += now_s() - w0;
        }
        if (!gen_only) {
            double d0 = now_s();
            exec_ok(c, "BEGIN");
            copy_send(c, "COPY logs (" SL_ROW_COLUMNS ") FROM STDIN (FORMAT binary)", &rows);
            if (blocks && writer_blocks)
                blocks_upsert(c, wb, &nblocks, &bloom_bytes);
            else if (blocks)
                copy_send(c,
                          "COPY log_blocks (source_id, min_received, max_received, min_id, "
                          "max_id, nrows, nbits, bloom) FROM STDIN (FORMAT binary)",
                          &bl);
            exec_ok(c, "COMMIT");
            if (wb)
                sl_blocks_commit(wb);
            db_s += now_s() - d0;
        }
        done += n;
        if (done % 1000000 < batch)
            fprintf(stderr, "  %zu rows, %.0f rows/s\n", done, (double)done / (now_s() - t0));
    }
    if (c && writer_blocks) {
        /* Blocks closed by age at a batch start are not in a batch's rows: count them all. */
        PGresult *r = PQexec(c, "SELECT count(*), coalesce(sum(length(bloom)), 0) FROM log_blocks");
        if (PQresultStatus(r) != PGRES_TUPLES_OK)
            die("count blocks: %s", PQerrorMessage(c));
        nblocks = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
        bloom_bytes = strtoull(PQgetvalue(r, 0, 1), NULL, 10);
        PQclear(r);
    }
    {
        double t = now_s() - t0;
        printf("load: %zu rows in %.1f s = %.0f rows/s (%s%s); %.0f B/line; blocks %zu "
               "(%.0f rows/block, bloom avg %.0f B, total %.1f MB); tokenize+bloom %.2f s "
               "= %.2f us/line, %.1f tokens/line (0: not counted with --writer-blocks); in PostgreSQL (COPY..COMMIT) %.1f s = %.0f rows/s\n",
               lines, t, (double)lines / t, blocks ? "with log_blocks" : "logs only",
               gen_only ? ", generation only" : "", (double)bytes / (double)lines, nblocks,
               nblocks ? (double)lines / (double)nblocks : 0,
               nblocks ? (double)bloom_bytes / (double)nblocks : 0, (double)bloom_bytes / 1e6,
               tok_cpu, tok_cpu * 1e6 / (double)lines, (double)tokens / (double)lines, db_s,
               db_s > 0 ? (double)lines / db_s : 0);
    }
    if (c && ids_from_seq) {
        char sql[160];
        snprintf(sql, sizeof(sql), "SELECT setval('logs_id_block_seq', %" PRId64 ")",
                 ((first_id + (int64_t)lines) >> 20) + 1);
        exec_ok(c, sql);
    }
    for (int s = 0; s < sources; s++)
        sl_bloom_free(&acc[s].b);
    free(acc);
    free(src_ids);
    sl_blocks_free(wb);
    free(bl_lines);
    free(gen_lines);
    free(rows.p);
    free(bl.p);
    PQfinish(c);
    return 0;
}

/* ---------- verify ---------- */

struct hashlist {
    uint64_t h[512];
    int n;
};

static void collect_cb(void *arg, const char *tok, size_t len, uint64_t hash)
{
    struct hashlist *hl = arg;
    (void)tok;
    (void)len;
    if (hl->n < 512)
        hl->h[hl->n++] = hash;
}

static int64_t q_int(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    int64_t v;
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
        die("%s: %s", sql, PQerrorMessage(c));
    v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return v;
}

/* Checks a loaded database's log_blocks against its rows: they count every row once, no
 * two blocks of a source overlap in ids, every token of sampled rows is found by
 * sl_bloom_has1 in the row's own block (and in no other block of that source holding the
 * row's id), and absent tokens pass ~1 % of filters. Prints one line; exit 1 on a failure. */
static int cmd_verify(int argc, char **argv)
{
    PGconn *c;
    PGresult *r;
    int64_t nrows, nlogs, overlap, probes = 0, misses = 0, fp = 0, fp_blocks = 0;

    if (argc < 1)
        die("usage: searchgen verify URL");
    c = connect_db(argv[0]);
    nrows = q_int(c, "SELECT coalesce(sum(nrows), 0) FROM log_blocks");
    nlogs = q_int(c, "SELECT count(*) FROM logs");
    overlap = q_int(c, "SELECT count(*) FROM (SELECT min_id, lag(max_id) OVER "
                       "(PARTITION BY source_id ORDER BY min_id) AS prev FROM log_blocks) x "
                       "WHERE prev >= min_id");
    r = PQexec(c, "SELECT l.id, l.source_id, l.message FROM logs l TABLESAMPLE SYSTEM (1) "
                  "REPEATABLE (7) ORDER BY random() LIMIT 100");
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        die("sample: %s", PQerrorMessage(c));
    for (int i = 0; i < PQntuples(r); i++) {
        struct hashlist hl = {.n = 0};
        const char *msg = PQgetvalue(r, i, 2);
        sl_tokenize(msg, strlen(msg), collect_cb, &hl);
        for (int j = 0; j < hl.n; j++) {
            char h1[24], h2[24];
            const char *v[4] = {PQgetvalue(r, i, 1), PQgetvalue(r, i, 0), h1, h2};
            PGresult *q;
            snprintf(h1, sizeof(h1), "%" PRIu64, hl.h[j] & 0xffffffffu);
            snprintf(h2, sizeof(h2), "%" PRIu64, (hl.h[j] >> 32) | 1);
            q = PQexecParams(c,
                             "SELECT count(*) FROM log_blocks b WHERE b.source_id = $1::bigint "
                             "AND $2::bigint BETWEEN b.min_id AND b.max_id "
                             "AND sl_bloom_has1(b.bloom, b.nbits, $3::bigint, $4::bigint)",
                             4, NULL, v, NULL, NULL, 0);
            if (PQresultStatus(q) != PGRES_TUPLES_OK)
                die("probe: %s", PQerrorMessage(c));
            probes++;
            misses += strcmp(PQgetvalue(q, 0, 0), "1") != 0;
            PQclear(q);
        }
    }
    PQclear(r);
    /* Absent tokens against the newest 24 h of blocks: the false-positive rate. */
    for (int t = 0; t < 20; t++) {
        char tok[48], h1[24], h2[24];
        const char *v[2] = {h1, h2};
        size_t len = (size_t)snprintf(tok, sizeof(tok), "zzabsent%dqq", t);
        uint64_t h = sl_token_hash64(tok, len);
        snprintf(h1, sizeof(h1), "%" PRIu64, h & 0xffffffffu);
        snprintf(h2, sizeof(h2), "%" PRIu64, (h >> 32) | 1);
        r = PQexecParams(c,
                         "SELECT count(*) FILTER (WHERE sl_bloom_has1(bloom, nbits, $1::bigint, "
                         "$2::bigint)), count(*) FROM log_blocks "
                         "WHERE max_received > (SELECT max(max_received) FROM log_blocks) - "
                         "interval '24 hours'",
                         2, NULL, v, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_TUPLES_OK)
            die("absent: %s", PQerrorMessage(c));
        fp += strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        fp_blocks += strtoll(PQgetvalue(r, 0, 1), NULL, 10);
        PQclear(r);
    }
    printf("verify: rows %" PRId64 ", rows counted by blocks %" PRId64 ", overlapping blocks %" PRId64
           ", token probes %" PRId64 " (not found in the row's block: %" PRId64
           "), absent-token false positives %.2f %%\n",
           nlogs, nrows, overlap, probes, misses, fp_blocks ? 100.0 * (double)fp / (double)fp_blocks : 0);
    PQfinish(c);
    return nrows == nlogs && overlap == 0 && misses == 0 && probes > 0 &&
                   (double)fp <= 0.05 * (double)fp_blocks
               ? 0
               : 1;
}

/* ---------- query ---------- */

struct tokarr {
    struct buf h1, h2, pos; /* "{...}" bigint arrays; pos: the inline check SQL */
    int n;
};

static void tok_add_cb(void *arg, const char *tok, size_t len, uint64_t hash)
{
    struct tokarr *t = arg;
    char x[64];
    int k;
    (void)tok;
    (void)len;
    k = snprintf(x, sizeof(x), "%s%" PRIu64, t->n ? "," : "", hash & 0xffffffffu);
    b_add(&t->h1, x, (size_t)k);
    k = snprintf(x, sizeof(x), "%s%" PRIu64, t->n ? "," : "", (hash >> 32) | 1);
    b_add(&t->h2, x, (size_t)k);
    /* positions mod 2^20; & (nbits - 1) gives the position in any smaller filter */
    for (unsigned i = 0; i < SL_BLOOM_K; i++) {
        k = snprintf(x, sizeof(x), "%sget_bit(b.bloom, %u & (b.nbits - 1)) = 1",
                     t->n || i ? " AND " : "", sl_bloom_pos(hash, i, SL_BLOOM_MAX_BITS));
        b_add(&t->pos, x, (size_t)k);
    }
    t->n++;
}

static void tokarr_make(struct tokarr *t, const char *text)
{
    memset(t, 0, sizeof(*t));
    b_add(&t->h1, "{", 1);
    b_add(&t->h2, "{", 1);
    sl_tokenize(text, strlen(text), tok_add_cb, t);
    b_add(&t->h1, "}", 2);
    b_add(&t->h2, "}", 2);
    b_add(&t->pos, "", 1);
}

static void tokarr_free(struct tokarr *t)
{
    free(t->h1.p);
    free(t->h2.p);
    free(t->pos.p);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int cmp_double_desc(const void *a, const void *b)
{
    return cmp_double(b, a);
}

static const char *check_name = "has1";

/* The block filter condition for the chosen variant ($h1/$h2 are parameters 3 and 4). */
static void bloom_cond(char *out, size_t n, const struct tokarr *t)
{
    if (!strcmp(check_name, "inline"))
        snprintf(out, n, "(%s)", t->pos.p);
    else if (!strcmp(check_name, "has1")) {
        size_t o = 0;
        o += (size_t)snprintf(out + o, n - o, "(true");
        for (int i = 1; i <= t->n && o < n; i++)
            o += (size_t)snprintf(out + o, n - o,
                                  " AND sl_bloom_has1(b.bloom, b.nbits, ($3::bigint[])[%d], "
                                  "($4::bigint[])[%d])",
                                  i, i);
        if (o < n)
            snprintf(out + o, n - o, ")");
    }
    else if (!strcmp(check_name, "plpgsql"))
        snprintf(out, n, "sl_bloom_has_plpgsql(b.bloom, b.nbits, $3::bigint[], $4::bigint[])");
    else if (!strcmp(check_name, "sql"))
        snprintf(out, n, "sl_bloom_has_sql(b.bloom, b.nbits, $3::bigint[], $4::bigint[])");
    else
        snprintf(out, n, "sl_bloom_has(b.bloom, b.nbits, $3::bigint[], $4::bigint[])");
}

#define LIMIT 100

/* One search: words/phrase text (tokens for the filter) and a recheck pattern (ILIKE).
 * Returns rows found; *ms the wall time. */
static int run_search(PGconn *c, const char *shape, const char *text, const char *pattern,
                      const char *since, const char *until, const char *source, double *ms,
                      bool verbose)
{
    struct tokarr t;
    char cond[16384], sql[24000], src_cond[64] = "";
    const char *vals[6];
    PGresult *r;
    int found = 0;
    double t0 = now_s();

    tokarr_make(&t, text);
    bloom_cond(cond, sizeof(cond), &t);
    if (source)
        snprintf(src_cond, sizeof(src_cond), " AND b.source_id = $6::bigint");
    vals[0] = since;
    vals[1] = until;
    vals[2] = t.h1.p;
    vals[3] = t.h2.p;
    vals[4] = pattern;
    vals[5] = source;
    if (!strcmp(shape, "bounded")) {
        /* One statement per round: the newest k candidate blocks, their rows through the
         * btree, newest LIMIT; plus the (k+1)-th candidate's end and the candidate count.
         * Exact when LIMIT rows came back and no further candidate ends after the
         * LIMIT-th, or when there were no more candidates; else again with a larger k. */
        /* First round: about two batches' worth of blocks (a batch has one block per
         * source in scope), so a common word finishes in it; a rare word has fewer
         * candidates than that and finishes too. */
        int ks[2] = {source ? 16 : 128, 1 << 30};
        for (int round = 0; round < 2; round++) {
            int k = ks[round], n;
            snprintf(sql, sizeof(sql),
                     "WITH b AS MATERIALIZED ("
                     "  SELECT b.source_id, b.min_received, b.max_received FROM log_blocks b"
                     "  WHERE b.max_received >= $1::timestamptz AND b.min_received <= $2::timestamptz"
                     "    AND %s%s AND $3::bigint[] IS NOT NULL AND $4::bigint[] IS NOT NULL"
                     "  ORDER BY b.max_received DESC LIMIT %d + 1) "
                     "SELECT l.id, l.received_at, l.source_id, l.message,"
                     " extract(epoch FROM l.received_at),"
                     " (SELECT extract(epoch FROM max_received) FROM b ORDER BY max_received DESC"
                     "  OFFSET %d LIMIT 1), (SELECT count(*) FROM b) "
                     "FROM (SELECT * FROM b ORDER BY max_received DESC LIMIT %d) bb "
                     "CROSS JOIN LATERAL ("
                     "  SELECT l.id, l.received_at, l.source_id, l.message FROM logs l"
                     "  WHERE l.source_id = bb.source_id"
                     "    AND l.received_at BETWEEN bb.min_received AND bb.max_received"
                     "    AND l.received_at BETWEEN $1::timestamptz AND $2::timestamptz"
                     "    AND position($5::text in lower(l.message COLLATE \"C\")) > 0 OFFSET 0) l "
                     "ORDER BY l.received_at DESC, l.id DESC LIMIT %d",
                     cond, src_cond, k, k, k, LIMIT);
            r = PQexecParams(c, sql, source ? 6 : 5, NULL, vals, NULL, NULL, 0);
            if (PQresultStatus(r) != PGRES_TUPLES_OK)
                die("search: %s\n%s", PQerrorMessage(c), sql);
            n = PQntuples(r);
            found = n;
            if (n > 0 && (PQgetisnull(r, 0, 5) || atoi(PQgetvalue(r, 0, 6)) <= k)) {
                PQclear(r);
                break; /* every candidate was read */
            }
            if (n == LIMIT && atof(PQgetvalue(r, 0, 5)) < atof(PQgetvalue(r, LIMIT - 1, 4))) {
                PQclear(r);
                break;
            }
            PQclear(r);
        }
    } else if (!strcmp(shape, "lateral")) {
        /* One statement: candidate blocks, each block's rows through the btree, exact order. */
        snprintf(sql, sizeof(sql),
                 "SELECT l.id, l.received_at, l.source_id, l.message "
                 "FROM log_blocks b CROSS JOIN LATERAL ("
                 "  SELECT l.id, l.received_at, l.source_id, l.message FROM logs l"
                 "  WHERE l.source_id = b.source_id"
                 "    AND l.received_at BETWEEN b.min_received AND b.max_received"
                 "    AND l.received_at BETWEEN $1::timestamptz AND $2::timestamptz"
                 "    AND position($5::text in lower(l.message COLLATE \"C\")) > 0 OFFSET 0) l "
                 "WHERE b.max_received >= $1::timestamptz AND b.min_received <= $2::timestamptz"
                 "  AND %s%s AND $3::bigint[] IS NOT NULL AND $4::bigint[] IS NOT NULL "
                 "ORDER BY l.received_at DESC, l.id DESC LIMIT %d",
                 cond, src_cond, LIMIT);
        r = PQexecParams(c, sql, source ? 6 : 5, NULL, vals, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_TUPLES_OK)
            die("search: %s\n%s", PQerrorMessage(c), sql);
        found = PQntuples(r);
        PQclear(r);
    } else {
        /* Two steps. 1: candidate blocks newest first. 2: read them in growing groups,
         * each group's rows newest first through the btree; stop when LIMIT rows are held
         * and the next block ends before the LIMIT-th newest of them. */
        PGresult *blk;
        int nb, i = 0, group = 8, lim = 256; /* step 1: 256 candidates first (a common word
                                                needs a few), all of them when those run out */
        bool stopped = false;
        double *got = malloc(sizeof(double) * 2 * LIMIT);
        int ngot = 0;
    again:
        snprintf(sql, sizeof(sql),
                 "SELECT b.source_id, b.min_received, b.max_received,"
                 " extract(epoch FROM b.max_received), extract(epoch FROM b.min_received)"
                 " FROM log_blocks b "
                 "WHERE b.max_received >= $1::timestamptz AND b.min_received <= $2::timestamptz"
                 "  AND %s%s AND $5::text IS NOT NULL AND $3::bigint[] IS NOT NULL"
                 "  AND $4::bigint[] IS NOT NULL "
                 "ORDER BY b.max_received DESC LIMIT %d",
                 cond, src_cond, lim);
        blk = PQexecParams(c, sql, source ? 6 : 5, NULL, vals, NULL, NULL, 0);
        if (PQresultStatus(blk) != PGRES_TUPLES_OK)
            die("blocks: %s\n%s", PQerrorMessage(c), sql);
        nb = PQntuples(blk);
        while (i < nb) {
            struct buf s = {0}, lo = {0}, hi = {0};
            const char *v2[6];
            int end = i + group < nb ? i + group : nb;
            double t_lo = 1e300;
            /* Close the group in time: add every later block that ends after the oldest
             * start in it, so all candidate rows newer than that start are read. */
            for (int j = i; j < end; j++)
                if (atof(PQgetvalue(blk, j, 4)) < t_lo)
                    t_lo = atof(PQgetvalue(blk, j, 4));
            while (end < nb && atof(PQgetvalue(blk, end, 3)) >= t_lo)
                end++;
            b_add(&s, "{", 1);
            b_add(&lo, "{", 1);
            b_add(&hi, "{", 1);
            for (int j = i; j < end; j++) {
                const char *sep = j > i ? "," : "";
                b_add(&s, sep, strlen(sep));
                b_add(&s, PQgetvalue(blk, j, 0), strlen(PQgetvalue(blk, j, 0)));
                b_add(&lo, sep, strlen(sep));
                b_add(&lo, "\"", 1);
                b_add(&lo, PQgetvalue(blk, j, 1), strlen(PQgetvalue(blk, j, 1)));
                b_add(&lo, "\"", 1);
                b_add(&hi, sep, strlen(sep));
                b_add(&hi, "\"", 1);
                b_add(&hi, PQgetvalue(blk, j, 2), strlen(PQgetvalue(blk, j, 2)));
                b_add(&hi, "\"", 1);
            }
            b_add(&s, "}", 2);
            b_add(&lo, "}", 2);
            b_add(&hi, "}", 2);
            v2[0] = since;
            v2[1] = until;
            v2[2] = s.p;
            v2[3] = lo.p;
            v2[4] = hi.p;
            v2[5] = pattern;
            r = PQexecParams(
                c,
                "SELECT l.id, l.received_at, l.source_id, l.message,"
                " extract(epoch FROM l.received_at) "
                "FROM unnest($3::bigint[], $4::timestamptz[], $5::timestamptz[]) AS b(s, lo, hi)"
                " CROSS JOIN LATERAL (SELECT l.id, l.received_at, l.source_id, l.message"
                "  FROM logs l WHERE l.source_id = b.s AND l.received_at BETWEEN b.lo AND b.hi"
                "   AND l.received_at BETWEEN $1::timestamptz AND $2::timestamptz"
                "   AND position($6::text in lower(l.message COLLATE \"C\")) > 0 OFFSET 0) l "
                "ORDER BY l.received_at DESC, l.id DESC LIMIT 100",
                6, NULL, v2, NULL, NULL, 0);
            if (PQresultStatus(r) != PGRES_TUPLES_OK)
                die("rows: %s", PQerrorMessage(c));
            for (int k = 0; k < PQntuples(r); k++)
                got[ngot++] = atof(PQgetvalue(r, k, 4));
            PQclear(r);
            free(s.p);
            free(lo.p);
            free(hi.p);
            i = end;
            group *= 2;
            /* keep the newest LIMIT (descending) */
            qsort(got, (size_t)ngot, sizeof(double), cmp_double_desc);
            if (ngot > LIMIT)
                ngot = LIMIT;
            if (ngot == LIMIT && i < nb && atof(PQgetvalue(blk, i, 3)) < got[LIMIT - 1]) {
                stopped = true;
                break;
            }
        }
        /* Ran out of candidates of a full first page: fetch them all, go on after i. */
        if (!stopped && nb == lim && lim == 256) {
            PQclear(blk);
            lim = 1000000;
            goto again;
        }
        found = ngot < LIMIT ? ngot : LIMIT;
        if (verbose)
            fprintf(stderr, "    blocks %d, read %d\n", nb, i);
        PQclear(blk);
        free(got);
    }
    *ms = (now_s() - t0) * 1000;
    tokarr_free(&t);
    return found;
}

/* The recheck text: ASCII lowercased, as lower(x COLLATE "C") and the tokenizer do. */
static void lower_ascii(char *out, size_t n, const char *in)
{
    size_t i = 0;
    for (; in[i] && i + 1 < n; i++)
        out[i] = (char)(in[i] >= 'A' && in[i] <= 'Z' ? in[i] + 32 : in[i]);
    out[i] = '\0';
}

static void report(const char *name, double *ms, int n, int found)
{
    qsort(ms, (size_t)n, sizeof(double), cmp_double);
    printf("%-52s p50 %8.1f ms  p99 %8.1f ms  max %8.1f  rows %d\n", name, ms[n / 2],
           ms[(int)ceil(0.99 * n) - 1], ms[n - 1], found);
    fflush(stdout);
}

static int cmd_query(int argc, char **argv)
{
    const char *url = NULL, *shape = "twostep", *only = NULL;
    int runs = 20;
    PGconn *c;
    PGresult *r;
    char end[64], since24[64], since1h[64], since7d[64], big_src[16], small_src[16];
    double ms[1000];
    int found = 0;
    char reqids[200][40], reqsrc[200][16];
    int nreq = 0;

    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--runs") && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--shape") && i + 1 < argc)
            shape = argv[++i];
        else if (!strcmp(argv[i], "--check") && i + 1 < argc)
            check_name = argv[++i];
        else if (!strcmp(argv[i], "--only") && i + 1 < argc)
            only = argv[++i];
        else
            url = argv[i];
    }
    if (!url || runs < 1 || runs > 1000)
        die("usage: searchgen query URL [--runs N] [--shape lateral|twostep] [--check ...]");
    c = connect_db(url);
    r = PQexec(c, "SELECT max(max_received), max(max_received) - interval '24 hours',"
                  " max(max_received) - interval '1 hour', max(max_received) - interval '7 days'"
                  " FROM log_blocks");
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQgetisnull(r, 0, 0))
        die("no log_blocks: %s", PQerrorMessage(c));
    snprintf(end, sizeof(end), "%s", PQgetvalue(r, 0, 0));
    snprintf(since24, sizeof(since24), "%s", PQgetvalue(r, 0, 1));
    snprintf(since1h, sizeof(since1h), "%s", PQgetvalue(r, 0, 2));
    snprintf(since7d, sizeof(since7d), "%s", PQgetvalue(r, 0, 3));
    PQclear(r);
    snprintf(big_src, sizeof(big_src), "1");
    snprintf(small_src, sizeof(small_src), "%d", 30);
    /* Request ids from random rows over the 7 days (sampled, not timed). */
    r = PQexec(c, "SELECT substring(message from 'request_id=([0-9a-f-]{36})'), source_id FROM logs "
                  "TABLESAMPLE SYSTEM (0.05) WHERE message LIKE 'at=info%' LIMIT 200");
    for (int i = 0; i < PQntuples(r) && nreq < 200; i++)
        if (!PQgetisnull(r, i, 0)) {
            snprintf(reqsrc[nreq], 16, "%s", PQgetvalue(r, i, 1));
            snprintf(reqids[nreq++], 40, "%s", PQgetvalue(r, i, 0));
        }
    PQclear(r);
    if (nreq == 0)
        die("no request ids sampled");
    printf("window end %s; shape %s; check %s; %d runs each\n", end, shape, check_name, runs);

    static const char *const sel_words[] = {"KeyError", "UniqueViolation", "ZeroDivisionError",
                                            "CannotConnectError", "RecordNotFound",
                                            "NoMethodError", "OperationalError", "Sidekiq",
                                            "Traceback", "expired"};
    static const char *const phrases[] = {"duplicate key value violates unique constraint",
                                          "division by zero", "App crashed",
                                          "server closed the connection unexpectedly",
                                          "Connection closed without response",
                                          "execution expired", "most recent call last",
                                          "undefined method"};
    static const char *const common[] = {"heartbeat", "celery", "sample", "Completed",
                                         "validations"};
    for (int scoped = 0; scoped < 2; scoped++) {
        const char *src = scoped ? big_src : NULL;
        const char *tag = scoped ? " [source 1]" : " [all sources]";
        char name[128], pat[256];

        if (!only || strstr(only, "word")) {
            for (int i = 0; i < runs; i++) {
                const char *w = sel_words[i % 10];
                lower_ascii(pat, sizeof(pat), w);
                found = run_search(c, shape, w, pat, since24, end, src, &ms[i], false);
            }
            snprintf(name, sizeof(name), "selective word, 24 h, newest 100%s", tag);
            report(name, ms, runs, found);
        }
        if (!only || strstr(only, "phrase")) {
            for (int i = 0; i < runs; i++) {
                const char *p = phrases[i % 8];
                lower_ascii(pat, sizeof(pat), p);
                found = run_search(c, shape, p, pat, since24, end, src, &ms[i], false);
            }
            snprintf(name, sizeof(name), "phrase, 24 h, newest 100%s", tag);
            report(name, ms, runs, found);
        }
        if (!only || strstr(only, "reqid")) {
            int total = 0;
            for (int i = 0; i < runs; i++) {
                const char *id = reqids[i % nreq];
                lower_ascii(pat, sizeof(pat), id);
                /* scoped: the id's own source */
                total += run_search(c, shape, id, pat, since7d, end, scoped ? reqsrc[i % nreq] : NULL,
                                    &ms[i], false);
            }
            snprintf(name, sizeof(name), "request id, 7 days%s", scoped ? " [its source]" : tag);
            report(name, ms, runs, total);
        }
        if (!only || strstr(only, "common")) {
            for (int i = 0; i < runs; i++) {
                const char *w = common[i % 5];
                lower_ascii(pat, sizeof(pat), w);
                found = run_search(c, shape, w, pat, since24, end, src, &ms[i], false);
            }
            snprintf(name, sizeof(name), "common word, 24 h, newest 100%s", tag);
            report(name, ms, runs, found);
        }
        if (!only || strstr(only, "status")) {
            /* status:>=500 over the last hour: no filter, the btree over the hour's rows.
             * The source list is what the read token may see (here: all 50, or one). */
            const char *sql =
                "SELECT id, received_at, source_id, message FROM logs "
                "WHERE source_id = ANY($3::bigint[]) "
                "  AND received_at BETWEEN $1::timestamptz AND $2::timestamptz "
                "  AND message LIKE '%status=5%' "
                "  AND substring(message from '(?:^|\\s)status=(\\d{1,9})(?:\\s|$)')::int >= 500 "
                "ORDER BY received_at DESC, id DESC LIMIT 100";
            char all[256] = "{";
            for (int s = 1; s <= 50; s++)
                snprintf(all + strlen(all), sizeof(all) - strlen(all), "%s%d", s > 1 ? "," : "",
                         s);
            strcat(all, "}");
            for (int i = 0; i < runs; i++) {
                const char *vals[3] = {since1h, end, scoped ? "{1}" : all};
                double t0 = now_s();
                r = PQexecParams(c, sql, 3, NULL, vals, NULL, NULL, 0);
                if (PQresultStatus(r) != PGRES_TUPLES_OK)
                    die("status: %s", PQerrorMessage(c));
                found = PQntuples(r);
                PQclear(r);
                ms[i] = (now_s() - t0) * 1000;
            }
            snprintf(name, sizeof(name), "status>=500, 1 h, newest 100%s", tag);
            report(name, ms, runs, found);
        }
    }
    PQfinish(c);
    return 0;
}

/* reblock DSN SINCE_UNIX: the live blocks whose newest row is at or after SINCE, rebuilt
 * from their rows by this release's drain/blocks.c (as its writer would write them: with
 * the numeric field classes, docs/search.md "Numeric fields"), one source a transaction.
 * For measuring a data set loaded by an older release without loading it again. */
static int cmd_reblock(int argc, char **argv)
{
    PGconn *c;
    PGresult *r;
    int nsrc;
    long long rows = 0, blocks = 0;

    if (argc != 2)
        die("usage: searchgen reblock DSN SINCE_UNIX");
    c = connect_db(argv[0]);
    r = PQexecParams(c, "SELECT DISTINCT source_id FROM log_blocks WHERE NOT packed AND "
                        "max_received >= to_timestamp($1::bigint) ORDER BY 1",
                     1, NULL, (const char *const[]){argv[1]}, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        die("reblock: %s", PQerrorMessage(c));
    nsrc = PQntuples(r);
    for (int i = 0; i < nsrc; i++) {
        const char *v[2] = {PQgetvalue(r, i, 0), argv[1]};
        struct sl_blocks *bs;
        PGresult *q;
        size_t nb = 0, bytes = 0;
        exec_ok(c, "BEGIN");
        /* every row from the first of those blocks on is one of theirs */
        q = PQexecParams(c, "WITH d AS (DELETE FROM log_blocks WHERE source_id = $1::bigint AND "
                            "NOT packed AND max_received >= to_timestamp($2::bigint) RETURNING "
                            "min_received) SELECT l.id, (extract(epoch FROM l.received_at) * "
                            "1000000)::bigint, l.message, l.json_at FROM logs l WHERE "
                            "l.source_id = $1::bigint AND l.received_at >= (SELECT min(min_received) "
                            "FROM d) ORDER BY l.id",
                         2, NULL, v, NULL, NULL, 0);
        if (PQresultStatus(q) != PGRES_TUPLES_OK)
            die("reblock: %s", PQerrorMessage(c));
        if (sl_blocks_new(NULL, &bs))
            die("reblock: out of memory");
        /* as the writer: batches of rows, each begun at its first row's time (blocks open
         * five minutes at most), upserted, committed */
        for (int k = 0; k < PQntuples(q); k++) {
            int64_t us = strtoll(PQgetvalue(q, k, 1), NULL, 10);
            const char *msg = PQgetvalue(q, k, 2);
            size_t len = (size_t)PQgetlength(q, k, 2), joff = SIZE_MAX;
            if (!PQgetisnull(q, k, 3)) { /* json_at counts characters: find the object */
                struct sl_json_at at;
                if (sl_fields_json_find(msg, len, &at))
                    joff = at.off;
            }
            if (k % 1000 == 0)
                sl_blocks_begin(bs, us);
            if (sl_blocks_add_json(bs, strtoll(v[0], NULL, 10), strtoll(PQgetvalue(q, k, 0), NULL,
                                   10), us, msg, len, joff, NULL, 0))
                die("reblock: out of memory");
            if (k % 1000 == 999 || k == PQntuples(q) - 1) {
                blocks_upsert(c, bs, &nb, &bytes);
                sl_blocks_commit(bs);
            }
        }
        rows += PQntuples(q);
        PQclear(q);
        sl_blocks_free(bs);
        exec_ok(c, "COMMIT");
        blocks += (long long)nb;
    }
    PQclear(r);
    printf("reblock: %d sources, %lld rows, %lld closed blocks\n", nsrc, rows, blocks);
    PQfinish(c);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        die("usage: searchgen tokbench|sqlcheck|load|query|reblock ...");
    if (!strcmp(argv[1], "reblock"))
        return cmd_reblock(argc - 2, argv + 2);
    if (!strcmp(argv[1], "tokbench"))
        return cmd_tokbench(argc - 2, argv + 2);
    if (!strcmp(argv[1], "sqlcheck"))
        return cmd_sqlcheck(argc - 2, argv + 2);
    if (!strcmp(argv[1], "load"))
        return cmd_load(argc - 2, argv + 2);
    if (!strcmp(argv[1], "verify"))
        return cmd_verify(argc - 2, argv + 2);
    if (!strcmp(argv[1], "query"))
        return cmd_query(argc - 2, argv + 2);
    die("unknown command %s", argv[1]);
    return 1;
}
