/* Rules benchmark: how many lines per second one core runs through the rule matcher
 * (rules/match.c) with 1, 10 and 100 rules, with and without the literal prefilter, and
 * what one catastrophic rule costs per line.
 *
 * Build and run from the repository root:
 *   make build/libsluice.a && mkdir -p build/bench && cc -std=c11 -D_GNU_SOURCE -pedantic \
 *     -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 \
 *     -Wvla -Wcast-qual -Wwrite-strings -Wundef -O2 -g -Iinclude -o build/bench/rulesbench \
 *     tests/bench/rulesbench.c build/libsluice.a $(pkg-config --libs libpcre2-8) -lm
 *   build/bench/rulesbench [GLOB] [LINES]
 *
 * Loads every body in tests/fixtures/corpus/streams/STREAM/NNN.logplex (or GLOB), frames
 * and parses them (sl_frame_next, sl_syslog_parse), and runs the messages (APP-NAME,
 * PROCID, MSG) through the matcher, repeated to about LINES lines (default 2000000) per
 * timed pass, best of 3. The rule mix is what a Heroku app would set: router error
 * codes, dyno errors, application exceptions, 5xx statuses, words that hardly ever
 * occur, a few caseless rules and a few with no literal (those always run PCRE2).
 * Single-threaded, no I/O during the timed passes. */
#include <glob.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sluice/frame.h"
#include "sluice/match.h"
#include "sluice/rfc5424.h"
#include "sluice/rule.h"

struct line {
    struct sl_str app, procid, msg;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Reads a whole file; caller frees. Returns NULL on error. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *p = NULL;
    long n;

    if (f == NULL)
        return NULL;
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
        goto out;
    p = malloc((size_t)n + 1);
    if (p == NULL || fread(p, 1, (size_t)n, f) != (size_t)n) {
        free(p);
        p = NULL;
        goto out;
    }
    *len = (size_t)n;
out:
    fclose(f);
    return p;
}

/* The rule mix, most selective first; the first N are used. {pattern, caseless, app,
 * procid}. Rules 1 and 10 keep the proportions of the whole list roughly. */
struct brule {
    const char *pattern;
    bool caseless;
    const char *app, *procid;
};

static const struct brule mix[] = {
    {"code=H1[0-9]", false, "heroku", "router"},
    {"Error R14", false, "heroku", NULL},
    {"OperationalError", false, NULL, "worker.*"},
    {"status=5\\d\\d", false, NULL, NULL},
    {"(?i)out of memory", true, NULL, NULL},
    {"^\\d+ \\w+ \\d+$", false, NULL, NULL}, /* no literal */
    {"code=H12", false, "heroku", "router"},
    {"Error R1[0-7]", false, "heroku", NULL},
    {"(?<error>InterfaceError|IntegrityError)", false, NULL, NULL},
    {"segfault", false, NULL, NULL},
    {"code=H10", false, "heroku", "router"},
    {"code=H13", false, "heroku", "router"},
    {"code=H14", false, "heroku", "router"},
    {"code=H15", false, "heroku", "router"},
    {"code=H18", false, "heroku", "router"},
    {"code=H2[0-9]", false, "heroku", "router"},
    {"code=H8[0-9]", false, "heroku", "router"},
    {"code=H99", false, "heroku", "router"},
    {"Error R10 \\(Boot timeout\\)", false, "heroku", NULL},
    {"Error R15", false, "heroku", NULL},
    {"Error L1[0-3]", false, NULL, NULL},
    {"Process exited with status [1-9]", false, "heroku", NULL},
    {"State changed from up to crashed", false, "heroku", NULL},
    {"Stopping all processes with SIGKILL", false, "heroku", NULL},
    {"sock=backend", false, "heroku", "router"},
    {"status=50[234]", false, "heroku", "router"},
    {"service=[0-9]{5,}ms", false, "heroku", "router"},
    {"deadlock detected", false, NULL, NULL},
    {"could not serialize access", false, NULL, NULL},
    {"too many connections", true, NULL, NULL},
    {"connection refused", true, NULL, NULL},
    {"ECONNRESET", false, NULL, NULL},
    {"ETIMEDOUT", false, NULL, NULL},
    {"EADDRINUSE", false, NULL, NULL},
    {"UnhandledPromiseRejection", false, NULL, NULL},
    {"Traceback \\(most recent call last\\)", false, NULL, NULL},
    {"NoMethodError", false, NULL, NULL},
    {"ActiveRecord::\\w+Error", false, NULL, NULL},
    {"PG::ConnectionBad", false, NULL, NULL},
    {"Redis::TimeoutError", false, NULL, NULL},
    {"OutOfMemoryError", false, NULL, NULL},
    {"java\\.lang\\.\\w+Exception", false, NULL, NULL},
    {"NullPointerException", false, NULL, NULL},
    {"panic: ", false, NULL, NULL},
    {"fatal error: ", false, NULL, NULL},
    {"goroutine \\d+ \\[running\\]", false, NULL, NULL},
    {"\"level\":\"(?:error|fatal)\"", false, NULL, NULL},
    {"level=(?:error|fatal)", false, NULL, NULL},
    {"\\[ERROR\\]", false, NULL, NULL},
    {"(?i)critical", true, NULL, NULL},
    {"(?i)unauthorized", true, NULL, NULL},
    {"permission denied", true, NULL, NULL},
    {"certificate verify failed", false, NULL, NULL},
    {"SSL_ERROR_\\w+", false, NULL, NULL},
    {"x509: certificate", false, NULL, NULL},
    {"Rack::Timeout", false, NULL, NULL},
    {"Worker timeout", false, NULL, NULL},
    {"WORKER TIMEOUT", false, NULL, NULL},
    {"Booting worker with pid", false, NULL, NULL},
    {"Memory quota exceeded", false, "heroku", NULL},
    {"sample#memory-total=\\d{4,}", false, NULL, NULL},
    {"sample#load-avg-1m=[4-9]", false, NULL, NULL},
    {"addon=postgresql-\\w+ .*sample#db_size=\\d{11,}", false, NULL, NULL},
    {"sample#waiting-connections=[1-9]", false, NULL, NULL},
    {"replication lag", true, NULL, NULL},
    {"checkpoints are occurring too frequently", false, NULL, NULL},
    {"canceling statement due to statement timeout", false, NULL, NULL},
    {"duplicate key value violates unique constraint", false, NULL, NULL},
    {"relation \"\\w+\" does not exist", false, NULL, NULL},
    {"Stripe::CardError", false, NULL, NULL},
    {"webhook signature verification failed", true, NULL, NULL},
    {"rate limit exceeded", true, NULL, NULL},
    {"HTTP 429", false, NULL, NULL},
    {"upstream prematurely closed", false, NULL, NULL},
    {"no live upstreams", false, NULL, NULL},
    {"Killed process \\d+", false, NULL, NULL},
    {"oom-kill", false, NULL, NULL},
    {"disk quota exceeded", true, NULL, NULL},
    {"No space left on device", false, NULL, NULL},
    {"Read-only file system", false, NULL, NULL},
    {"\\bE[0-9]{4}\\b", false, NULL, NULL}, /* no literal */
    {"Sidekiq::Shutdown", false, NULL, NULL},
    {"retry_count=\\d{2,}", false, NULL, NULL},
    {"job failed", true, NULL, NULL},
    {"Celery.*WorkerLostError", false, NULL, NULL},
    {"Task \\S+ raised unexpected", false, NULL, NULL},
    {"SoftTimeLimitExceeded", false, NULL, NULL},
    {"botocore\\.exceptions\\.\\w+", false, NULL, NULL},
    {"AccessDenied", false, NULL, NULL},
    {"NoSuchBucket", false, NULL, NULL},
    {"ThrottlingException", false, NULL, NULL},
    {"invalid_grant", false, NULL, NULL},
    {"token expired", true, NULL, NULL},
    {"CSRF token", false, NULL, NULL},
    {"SQLSTATE\\[\\w+\\]", false, NULL, NULL},
    {"Allowed memory size of \\d+ bytes exhausted", false, NULL, NULL},
    {"Maximum execution time", false, NULL, NULL},
    {"[0-9a-f]{8}-dead-beef", false, NULL, NULL},
    {"^\\s*at \\S+\\(\\S+:\\d+\\)$", false, NULL, NULL}, /* literal "at " only */
    {"(?i)bad gateway", true, NULL, NULL},
};
#define NMIX (sizeof(mix) / sizeof(mix[0]))

static struct sl_ruleset *make_rs(const struct brule *r, size_t n)
{
    struct sl_ruleset *rs = calloc(1, sizeof(*rs));
    if (rs == NULL || (rs->rules = calloc(n, sizeof(*rs->rules))) == NULL) {
        free(rs);
        return NULL;
    }
    rs->nrules = n;
    for (size_t i = 0; i < n; i++) {
        snprintf(rs->rules[i].name, sizeof(rs->rules[i].name), "bench-%zu", i);
        /* borrowed string literals: freed by free_rs, which frees only the arrays */
        rs->rules[i].pattern = (char *)(uintptr_t)r[i].pattern;
        rs->rules[i].caseless = r[i].caseless;
        rs->rules[i].app = (char *)(uintptr_t)r[i].app;
        rs->rules[i].procid = (char *)(uintptr_t)r[i].procid;
    }
    return rs;
}

static void free_rs(struct sl_ruleset *rs)
{
    if (rs != NULL)
        free(rs->rules);
    free(rs);
}

static volatile uint64_t sink;

/* Runs lines through m until about target lines are done; returns lines/s. */
static double timed(struct sl_matcher *m, const struct line *lines, size_t nl, size_t target,
                    uint64_t *hits_out)
{
    struct sl_match_hit hits[NMIX + 1];
    double best = 1e30;
    size_t reps = (target + nl - 1) / nl;
    uint64_t hits_total = 0;

    for (int r = 0; r < 3; r++) {
        double t0 = now_s();
        hits_total = 0;
        for (size_t k = 0; k < reps; k++) {
            for (size_t i = 0; i < nl; i++) {
                struct sl_match_line ml = {1, lines[i].app, lines[i].procid, lines[i].msg};
                hits_total += sl_matcher_run(m, &ml, hits, NMIX + 1);
            }
        }
        double dt = now_s() - t0;
        if (dt < best)
            best = dt;
    }
    sink += hits_total;
    *hits_out = hits_total / reps;
    return (double)(reps * nl) / best;
}

static int bench_rules(const struct brule *r, size_t n, const char *label, bool both,
                       const struct line *lines, size_t nl, size_t target)
{
    struct sl_ruleset *rs = make_rs(r, n);
    struct sl_matcher_limits on = {0, 0, 0, false}, off = {0, 0, 0, true};
    struct sl_matcher *m = NULL;
    double lps_on, lps_off = 0;
    uint64_t hits = 0, hits_off = 0, skipped = 0, eval = 0;

    if (rs == NULL || sl_matcher_new(rs, NULL, NULL, &on, &m, NULL) != 0) {
        fprintf(stderr, "rulesbench: cannot compile the %s rules\n", label);
        free_rs(rs);
        return -1;
    }
    lps_on = timed(m, lines, nl, target, &hits);
    for (uint32_t i = 0; i < n; i++) {
        struct sl_rule_stats st;
        sl_matcher_rule_stats(m, i, &st);
        skipped += st.prefiltered;
        eval += st.evaluated;
    }
    sl_matcher_free(m);
    m = NULL;
    if (both) {
        if (sl_matcher_new(rs, NULL, NULL, &off, &m, NULL) != 0) {
            free_rs(rs);
            return -1;
        }
        lps_off = timed(m, lines, nl, target, &hits_off);
        sl_matcher_free(m);
        if (hits_off != hits) {
            fprintf(stderr, "rulesbench: %s: %llu hits with the prefilter, %llu without\n", label,
                    (unsigned long long)hits, (unsigned long long)hits_off);
            free_rs(rs);
            return -1;
        }
    }
    printf("%-28s %12.0f %14s %10.1f%% %12.2f\n", label, lps_on, both ? "" : "-",
           eval ? 100.0 * (double)skipped / (double)eval : 0.0, (double)hits / (double)nl);
    if (both)
        printf("%-28s %12.0f %14s %11s %12s\n", "  (prefilter off)", lps_off, "", "", "");
    free_rs(rs);
    return 0;
}

int main(int argc, char **argv)
{
    const char *pattern = argc > 1 ? argv[1] : "tests/fixtures/corpus/streams/*/*.logplex";
    size_t target = argc > 2 ? (size_t)atol(argv[2]) : 2000000;

    if (target == 0)
        target = 1;
    glob_t g;
    char **bufs = NULL;
    struct line *lines = NULL;
    size_t nl = 0, cap = 0, bytes = 0;
    int rc = 1;

    if (glob(pattern, 0, NULL, &g) != 0 || g.gl_pathc == 0) {
        fprintf(stderr, "rulesbench: no files match %s (run from the repository root)\n", pattern);
        return 1;
    }
    bufs = calloc(g.gl_pathc, sizeof(*bufs));
    if (bufs == NULL)
        goto out;
    for (size_t f = 0; f < g.gl_pathc; f++) {
        size_t len = 0, off = 0;
        char *p = slurp(g.gl_pathv[f], &len);
        if (p == NULL) {
            fprintf(stderr, "rulesbench: cannot read %s\n", g.gl_pathv[f]);
            goto out;
        }
        bufs[f] = p;
        while (off < len) {
            struct sl_frame fr;
            struct sl_syslog sy;
            const char *why;
            int k = sl_frame_next(p + off, len - off, true, &fr);
            if (k <= 0)
                break;
            off += (size_t)k;
            if (sl_syslog_parse(fr.msg.p, fr.msg.len, &sy, &why) != 0)
                continue;
            if (nl == cap) {
                struct line *nlines;
                cap = cap ? cap * 2 : 4096;
                nlines = realloc(lines, cap * sizeof(*lines));
                if (nlines == NULL)
                    goto out;
                lines = nlines;
            }
            lines[nl].app = sy.app_name;
            lines[nl].procid = sy.procid;
            lines[nl].msg = sy.msg;
            bytes += sy.msg.len;
            nl++;
        }
    }
    if (nl == 0) {
        fprintf(stderr, "rulesbench: no lines\n");
        goto out;
    }
    printf("rulesbench: %zu files, %zu messages, %.0f bytes/message on average, "
           "~%zu lines per pass, best of 3, 1 core\n",
           g.gl_pathc, nl, (double)bytes / (double)nl, target);
    printf("%-28s %12s %14s %11s %12s\n", "rules", "lines/s", "", "prefiltered", "hits/line");
    if (bench_rules(mix, 1, "1 rule", true, lines, nl, target) != 0 ||
        bench_rules(mix, 10, "10 rules", true, lines, nl, target) != 0 ||
        bench_rules(mix, NMIX, "100 rules", true, lines, nl, target) != 0)
        goto out;
    {
        /* The same rules minus those without a literal: what those cost. */
        struct brule lit_only[NMIX];
        size_t n = 0;
        for (size_t i = 0; i < NMIX; i++) {
            char tmp[2 * SL_MATCH_LITERAL_MAX * SL_MATCH_LITERALS_MAX];
            if (sl_match_required_literals(mix[i].pattern, mix[i].caseless, tmp, sizeof(tmp)) > 0)
                lit_only[n++] = mix[i];
        }
        char label[64];
        snprintf(label, sizeof(label), "%zu rules, all with literal", n);
        if (bench_rules(lit_only, n, label, false, lines, nl, target) != 0)
            goto out;
    }

    /* A catastrophic rule: its cost on ordinary lines, and on a line built to make it
     * backtrack until the match limit stops it. */
    {
        static const struct brule evil[] = {{"(a+)+$", false, NULL, NULL}};
        struct sl_ruleset *rs = make_rs(evil, 1);
        struct sl_matcher *m = NULL;
        struct sl_match_hit h;
        struct sl_rule_stats st;
        char bad[32];
        struct line hostile;
        uint64_t hits = 0;
        double lps, t0, dt;
        const int n = 2000;

        if (rs == NULL || sl_matcher_new(rs, NULL, NULL, NULL, &m, NULL) != 0) {
            free_rs(rs);
            goto out;
        }
        lps = timed(m, lines, nl, target / 4, &hits);
        printf("%-28s %12.0f %14s\n", "\"(a+)+$\", corpus lines", lps, "");
        memset(bad, 'a', 30);
        bad[30] = 'b';
        hostile.app = sl_str_make("app", 3);
        hostile.procid = sl_str_make("web.1", 5);
        hostile.msg = sl_str_make(bad, 31);
        t0 = now_s();
        for (int i = 0; i < n; i++) {
            struct sl_match_line ml = {1, hostile.app, hostile.procid, hostile.msg};
            sink += sl_matcher_run(m, &ml, &h, 1);
        }
        dt = now_s() - t0;
        sl_matcher_rule_stats(m, 0, &st);
        printf("%-28s %12.0f %14s  %.1f us/line, limit hits %llu of %d\n",
               "\"(a+)+$\", 30 'a' + 'b'", (double)n / dt, "", dt / n * 1e6,
               (unsigned long long)st.limit_hits, n);
        sl_matcher_free(m);
        free_rs(rs);
    }
    rc = 0;
out:
    for (size_t f = 0; bufs != NULL && f < g.gl_pathc; f++)
        free(bufs[f]);
    free(bufs);
    free(lines);
    globfree(&g);
    return rc;
}
