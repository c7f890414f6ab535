/* JSON fields benchmark (issue 16; figures in docs/search.md, "JSON lines"), one core:
 *   1. what the writer adds per line: sl_fields_json_find (find + validate) on structured
 *      JSON lines, on prefixed ones, on logfmt and plain lines, and sl_fields_json_extra
 *      on JSON lines that hold escapes;
 *   2. the rule matcher (rules/match.c) with rules on fields: 10 where-rules (JSON leaves
 *      and logfmt fields, numbers and text), group_by a field, over a 50 % JSON mix,
 *      lines per second.
 *
 * Build and run from the repository root:
 *   make build/libsluice.a && mkdir -p build/bench && cc -std=c11 -D_GNU_SOURCE -Wall -Wextra \
 *     -Werror -O2 -g -Iinclude -o build/bench/fieldsbench tests/bench/fieldsbench.c \
 *     build/libsluice.a $(pkg-config --libs libpcre2-8 libcjson libcrypto) -lm
 *   build/bench/fieldsbench [LINES]
 *
 * Lines are generated like tests/bench/loadgen.c --json-share (~200 bytes each), best of
 * 3 timed passes of LINES (default 2000000). Single-threaded, no I/O while timing. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sluice/buf.h"
#include "sluice/fields.h"
#include "sluice/match.h"
#include "sluice/rule.h"
#include "sluice/ruleset.h"

#define NLINES 4096

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng = 88172645463325252ull;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static const char *const levels[] = {"info", "info", "info", "debug", "warn", "error"};
static const char *const routes[] = {"/", "/login", "/search", "/api/v1/items", "/checkout"};

/* kind 0: JSON, 1: JSON after a prefix, 2: JSON with escapes, 3: logfmt, 4: plain */
static int gen(char *m, size_t cap, int kind, long seq)
{
    uint64_t r = rnd();
    switch (kind) {
    case 0:
    case 1:
    case 2:
        return snprintf(m, cap,
                        "%s{\"time\":\"2026-12-07T03:00:00.%06ldZ\",\"level\":\"%s\",\"msg\":\"%s\","
                        "\"route\":\"%s\",\"status\":%d,\"latency_ms\":%u.%u,"
                        "\"user\":{\"id\":%u,\"plan\":\"%s\"},\"ok\":%s,\"seq\":%ld}",
                        kind == 1 ? "2026-12-07T03:00:00Z INFO " : "", seq % 1000000,
                        levels[r % 6], kind == 2 ? "caf\\u00e9 \\\"quoted\\\"\\n" : "request handled",
                        routes[(r >> 8) % 5], (r >> 12) % 10 ? 200 : 503, (unsigned)(r >> 16) % 3000,
                        (unsigned)(r >> 28) % 10, (unsigned)(r >> 32) % 100000,
                        (r >> 50) % 2 ? "pro" : "free", (r >> 51) % 2 ? "true" : "false", seq);
    case 3:
        return snprintf(m, cap,
                        "at=info method=GET path=\"%s\" host=bench.herokuapp.com request_id=%08lx "
                        "fwd=\"10.0.0.%u\" dyno=web.%u connect=%ums service=%ums status=%d "
                        "bytes=%u protocol=https",
                        routes[r % 5], (unsigned long)seq, (unsigned)(r >> 8) % 255,
                        (unsigned)(r >> 16) % 4 + 1, (unsigned)(r >> 20) % 5,
                        (unsigned)(r >> 24) % 900, (r >> 34) % 10 ? 200 : 503,
                        (unsigned)(r >> 40) % 90000);
    default:
        return snprintf(m, cap, "Completed 200 OK in %ums (Views: 3.1ms | ActiveRecord: 1.2ms) seq=%ld",
                        (unsigned)r % 900, seq);
    }
}

struct lines {
    char m[NLINES][512];
    size_t n[NLINES];
};

static void fill(struct lines *L, const int *kinds, int nk)
{
    for (int i = 0; i < NLINES; i++)
        L->n[i] = (size_t)gen(L->m[i], sizeof(L->m[i]), kinds[(size_t)i % (size_t)nk], i);
}

/* ns per line of find (+ extra when with_extra), best of 3 */
static double time_find(struct lines *L, size_t total, bool with_extra, size_t *found)
{
    double best = 1e9;
    struct sl_buf b;

    sl_buf_init(&b, 64u << 20);
    for (int pass = 0; pass < 3; pass++) {
        size_t f = 0;
        double t0 = now_s();
        for (size_t k = 0; k < total; k++) {
            struct sl_json_at at;
            size_t i = k % NLINES;
            if (sl_fields_json_find(L->m[i], L->n[i], &at)) {
                f++;
                if (with_extra && (at.escapes || at.odd_numbers)) {
                    sl_buf_reset(&b);
                    if (sl_fields_json_extra(L->m[i] + at.off, L->n[i] - at.off, &b) != 0)
                        abort();
                }
            }
        }
        double dt = (now_s() - t0) / (double)total * 1e9;
        if (dt < best)
            best = dt;
        *found = f;
    }
    sl_buf_free(&b);
    return best;
}

static const char rules_json[] =
    "{\"destinations\":{\"d\":{\"type\":\"slack\",\"url\":\"https://hooks.example.com/x\"}},"
    "\"rules\":["
    "{\"name\":\"r1\",\"where\":{\"level\":\"error\",\"latency_ms\":\">1000\"},\"group_by\":\"user.id\",\"notify\":[\"d\"]},"
    "{\"name\":\"r2\",\"where\":{\"status\":\">=500\"},\"group_by\":\"field:route\",\"notify\":[\"d\"]},"
    "{\"name\":\"r3\",\"where\":{\"user.plan\":\"pro\",\"ok\":false},\"notify\":[\"d\"]},"
    "{\"name\":\"r4\",\"where\":{\"route\":\"/api/*\",\"level\":\"!=debug\"},\"notify\":[\"d\"]},"
    "{\"name\":\"r5\",\"where\":{\"latency_ms\":\">2900\"},\"notify\":[\"d\"]},"
    "{\"name\":\"r6\",\"where\":{\"user.id\":4711},\"notify\":[\"d\"]},"
    "{\"name\":\"r7\",\"pattern\":\"checkout\",\"where\":{\"level\":\"error\"},\"notify\":[\"d\"]},"
    "{\"name\":\"r8\",\"where\":{\"dyno\":\"web.1\",\"service\":\">800\"},\"notify\":[\"d\"]},"
    "{\"name\":\"r9\",\"where\":{\"level\":\"warn\"},\"group_by\":\"field:route\",\"notify\":[\"d\"]},"
    "{\"name\":\"r10\",\"where\":{\"status\":503,\"route\":\"/login\"},\"notify\":[\"d\"]}]}";

int main(int argc, char **argv)
{
    size_t total = argc > 1 ? (size_t)atol(argv[1]) : 2000000;
    struct lines *L = malloc(sizeof(*L));
    static const int json[] = {0}, prefixed[] = {1}, escaped[] = {2}, logfmt[] = {3},
                     plain[] = {4}, mix[] = {0, 3, 0, 4, 1, 3, 0, 4};
    struct sl_ruleset *rs = NULL;
    struct sl_matcher *m = NULL;
    struct sl_buf errs;
    size_t found;
    double ns, best = 1e9;
    uint64_t hits = 0;

    if (L == NULL)
        return 1;
    printf("%-44s %10s\n", "sl_fields_json_find per line", "ns/line");
    fill(L, json, 1);
    ns = time_find(L, total, false, &found);
    printf("%-44s %10.0f  (%zu of %zu JSON)\n", "JSON (~210 B)", ns, found, total);
    fill(L, prefixed, 1);
    printf("%-44s %10.0f\n", "JSON after a prefix", time_find(L, total, false, &found));
    fill(L, escaped, 1);
    printf("%-44s %10.0f\n", "JSON with escapes, + sl_fields_json_extra", time_find(L, total, true, &found));
    fill(L, logfmt, 1);
    printf("%-44s %10.0f\n", "logfmt router line", time_find(L, total, false, &found));
    fill(L, plain, 1);
    printf("%-44s %10.0f\n", "plain text line", time_find(L, total, false, &found));

    sl_buf_init(&errs, 4096);
    if (sl_ruleset_parse(rules_json, sizeof(rules_json) - 1, false, &rs, &errs) != 0 ||
        sl_matcher_new(rs, NULL, NULL, NULL, &m, &errs) != 0) {
        fprintf(stderr, "rules: %.*s\n", (int)errs.len, errs.p);
        return 1;
    }
    fill(L, mix, 8);
    for (int pass = 0; pass < 3; pass++) {
        double t0 = now_s();
        for (size_t k = 0; k < total; k++) {
            size_t i = k % NLINES;
            struct sl_match_line ln = {1, SL_STR_NULL, SL_STR_NULL, sl_str_make(L->m[i], L->n[i])};
            struct sl_match_hit h[16];
            hits += sl_matcher_run(m, &ln, h, 16);
        }
        double dt = now_s() - t0;
        if (dt < best)
            best = dt;
    }
    printf("%-44s %10.0f lines/s (%.0f ns/line; %llu hits)\n",
           "10 field rules, 50 % JSON mix, one core", (double)total / best,
           best / (double)total * 1e9, (unsigned long long)(hits / 3));
    sl_matcher_free(m);
    sl_ruleset_free(rs);
    sl_buf_free(&errs);
    free(L);
    return 0;
}
