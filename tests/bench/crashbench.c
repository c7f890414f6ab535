/* Crash assembly benchmark (drain/crash.c), one core, in memory, no I/O while timed.
 *
 *   build/bench/crashbench [GLOB] [LINES]
 *
 * Loads the messages of tests/fixtures/corpus/streams/STREAM/NNN.logplex (or GLOB) with
 * their APP-NAME and PROCID, then prints (best of 3 passes of about LINES lines, default
 * 2 000 000):
 *   anchor         ns per line of sl_crash_anchor over the corpus lines (what the writer
 *                  adds per stored line), and the same over the lines that are no anchor
 *   assemble       lines/s through one assembler per procid, corpus lines (mostly ordinary)
 *   assemble-trace lines/s of trace lines only: a 40-frame Python trace, a 30-frame JVM
 *                  trace with a cause and a Go panic, over and over, crashes taken and freed
 *   memory         1 000 assemblers (1 000 dynos) each in the middle of a trace (a Python
 *                  traceback with 20 frames, its exception line not yet seen): bytes each
 *                  as the assembler counts them (sl_crash_asm_bytes) and as malloc holds them
 *                  (mallinfo2 before and after)
 * Times are this thread's CPU time (CLOCK_THREAD_CPUTIME_ID), so a busy machine slows the
 * run but not the figures. Output lines: `NAME VALUE UNIT`, read by tests/bench/run.sh.
 * Run from the repository root. */
#include <glob.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sluice/crash.h"

struct msg {
    struct sl_str app, proc, text;
    int proc_idx;
};

static double now_s(void)
{
    struct timespec ts;
    /* this thread's CPU time: the cost per line, not the machine's other jobs */
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static volatile uint64_t sink;

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *p = NULL;
    long n;
    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        p = malloc((size_t)n + 1);
        if (p && fread(p, 1, (size_t)n, f) == (size_t)n)
            *len = (size_t)n;
        else {
            free(p);
            p = NULL;
        }
    }
    fclose(f);
    return p;
}

#define MAXMSG 100000
#define MAXPROC 64
static struct msg msgs[MAXMSG];
static size_t nmsgs;
static char procnames[MAXPROC][32];
static int nproc;

static void load(const char *pattern)
{
    glob_t g;
    if (glob(pattern, 0, NULL, &g) != 0) {
        fprintf(stderr, "crashbench: no files match %s\n", pattern);
        exit(1);
    }
    for (size_t f = 0; f < g.gl_pathc; f++) {
        size_t n = 0;
        char *b = slurp(g.gl_pathv[f], &n);
        if (!b)
            continue;
        size_t i = 0;
        while (i < n && nmsgs < MAXMSG) {
            size_t len = 0;
            while (i < n && b[i] >= '0' && b[i] <= '9')
                len = len * 10 + (size_t)(b[i++] - '0');
            if (i >= n || b[i] != ' ' || i + 1 + len > n)
                break;
            i++;
            const char *p = b + i, *end = b + i + len, *fld[6];
            int ok = 1;
            for (int k = 0; k < 6 && ok; k++) {
                fld[k] = p;
                p = memchr(p, ' ', (size_t)(end - p));
                if (!p)
                    ok = 0;
                else
                    p++;
            }
            if (ok) {
                struct msg *m = &msgs[nmsgs++];
                size_t tl = (size_t)(end - p);
                if (tl && p[tl - 1] == '\n')
                    tl--;
                m->app = sl_str_make(fld[3], (size_t)(fld[4] - fld[3] - 1));
                m->proc = sl_str_make(fld[4], (size_t)(fld[5] - fld[4] - 1));
                m->text = sl_str_make(p, tl);
                int k;
                for (k = 0; k < nproc; k++)
                    if (strlen(procnames[k]) == m->proc.len &&
                        memcmp(procnames[k], m->proc.p, m->proc.len) == 0)
                        break;
                if (k == nproc && nproc < MAXPROC)
                    snprintf(procnames[nproc++], 32, "%.*s", (int)m->proc.len, m->proc.p);
                m->proc_idx = k < MAXPROC ? k : 0;
            }
            i += len;
        }
        /* the bodies stay loaded: messages point into them */
    }
    globfree(&g);
}

/* clang-format off */
static const char *const TRACE[] = {
    "Traceback (most recent call last):",
#define PYF "  File \"/app/.heroku/python/lib/python3.12/site-packages/django/core/handlers/base.py\", line 197, in _get_response", "    response = wrapped_callback(request, *callback_args, **callback_kwargs)"
    PYF, PYF, PYF, PYF, PYF, PYF, PYF, PYF, PYF, PYF, PYF, PYF, PYF, PYF, PYF, PYF, PYF, PYF, PYF, PYF,
    PYF, PYF, PYF, PYF, PYF, PYF, PYF, PYF, PYF, PYF, PYF, PYF, PYF, PYF, PYF, PYF, PYF, PYF, PYF, PYF,
    "KeyError: 'energyplus'",
    "Exception in thread \"main\" java.lang.IllegalStateException: outer",
#define JF "\tat com.acme.billing.InvoiceService.charge(InvoiceService.java:120)"
    JF, JF, JF, JF, JF, JF, JF, JF, JF, JF, JF, JF, JF, JF, JF, JF, JF, JF, JF, JF,
    "Caused by: java.net.ConnectException: Connection refused",
    JF, JF, JF, JF, JF, JF, JF, JF, JF, JF, "\t... 20 more",
    "panic: runtime error: invalid memory address or nil pointer dereference",
    "[signal SIGSEGV: segmentation violation code=0x1 addr=0x18 pc=0x6b1c2e]",
    "",
    "goroutine 57 [running]:",
    "github.com/acme/packfinderz/internal/checkout.(*Service).Place(0xc0001a2000, {0x9a1f40, 0xc00031e0c0})",
    "\t/app/internal/checkout/service.go:88 +0x2e",
    "github.com/acme/packfinderz/internal/api.(*Handler).Checkout(0xc000120f00, {0x9a0e20, 0xc0003a6000}, 0xc00039e200)",
    "\t/app/internal/api/checkout.go:41 +0x1b4",
    "net/http.HandlerFunc.ServeHTTP(0x0?, {0x9a0e20?, 0xc0003a6000?}, 0x0?)",
    "\t/usr/local/go/src/net/http/server.go:2136 +0x29",
    "exit status 2",
};
/* clang-format on */
#define NTRACE (sizeof(TRACE) / sizeof(TRACE[0]))

int main(int argc, char **argv)
{
    const char *pattern = argc > 1 ? argv[1] : "tests/fixtures/corpus/streams/*/*.logplex";
    size_t want = argc > 2 ? (size_t)atoll(argv[2]) : 2000000;
    load(pattern);
    if (nmsgs == 0) {
        fprintf(stderr, "crashbench: no messages\n");
        return 1;
    }
    size_t passes = want / nmsgs + 1;

    /* anchor, all lines and ordinary lines */
    double best_all = 1e9, best_ord = 1e9;
    size_t nord = 0;
    static struct msg ord[MAXMSG];
    for (size_t i = 0; i < nmsgs; i++)
        if (sl_crash_anchor(msgs[i].app, msgs[i].proc, msgs[i].text) == SL_CRASH_NONE)
            ord[nord++] = msgs[i];
    for (int r = 0; r < 3; r++) {
        double t0 = now_s();
        for (size_t p = 0; p < passes; p++)
            for (size_t i = 0; i < nmsgs; i++)
                sink += (uint64_t)sl_crash_anchor(msgs[i].app, msgs[i].proc, msgs[i].text);
        double t = (now_s() - t0) / (double)(passes * nmsgs);
        if (t < best_all)
            best_all = t;
        t0 = now_s();
        for (size_t p = 0; p < passes; p++)
            for (size_t i = 0; i < nord; i++)
                sink += (uint64_t)sl_crash_anchor(ord[i].app, ord[i].proc, ord[i].text);
        t = (now_s() - t0) / (double)(passes * nord);
        if (t < best_ord)
            best_ord = t;
    }
    printf("anchor %.1f ns/line\n", best_all * 1e9);
    printf("anchor-ordinary %.1f ns/line\n", best_ord * 1e9);

    /* the assembler over the corpus lines, one per procid */
    double best = 0;
    size_t crashes = 0;
    for (int r = 0; r < 3; r++) {
        struct sl_crash_asm *a[MAXPROC];
        for (int k = 0; k < nproc; k++)
            a[k] = sl_crash_asm_new(NULL);
        int64_t id = 0;
        crashes = 0;
        double t0 = now_s();
        for (size_t p = 0; p < passes; p++)
            for (size_t i = 0; i < nmsgs; i++) {
                struct sl_crash_line ln = {++id, id * 1000, msgs[i].text};
                struct sl_crash_asm *x = a[msgs[i].proc_idx];
                if (sl_crash_asm_feed(x, &ln, NULL) > 0) {
                    struct sl_crash *c;
                    while ((c = sl_crash_asm_take(x)) != NULL) {
                        crashes++;
                        sl_crash_free(c);
                    }
                }
            }
        double lps = (double)(passes * nmsgs) / (now_s() - t0);
        if (lps > best)
            best = lps;
        for (int k = 0; k < nproc; k++)
            sl_crash_asm_free(a[k]);
    }
    printf("assemble %.0f lines/s (%zu crashes per pass set)\n", best, crashes);

    /* trace lines only */
    best = 0;
    size_t tpasses = want / NTRACE + 1;
    for (int r = 0; r < 3; r++) {
        struct sl_crash_asm *a = sl_crash_asm_new(NULL);
        int64_t id = 0;
        crashes = 0;
        double t0 = now_s();
        for (size_t p = 0; p < tpasses; p++)
            for (size_t i = 0; i < NTRACE; i++) {
                struct sl_crash_line ln = {++id, id, {TRACE[i], strlen(TRACE[i])}};
                if (sl_crash_asm_feed(a, &ln, NULL) > 0) {
                    struct sl_crash *c;
                    while ((c = sl_crash_asm_take(a)) != NULL) {
                        crashes++;
                        sl_crash_free(c);
                    }
                }
            }
        double lps = (double)(tpasses * NTRACE) / (now_s() - t0);
        if (lps > best)
            best = lps;
        sl_crash_asm_free(a);
    }
    printf("assemble-trace %.0f lines/s (%.0f crashes/s)\n", best, best / (double)NTRACE * 3.0);

    /* 1 000 dynos, each in the middle of a 20-frame Python traceback */
    struct sl_crash_asm *dyn[1000];
    struct mallinfo2 m0 = mallinfo2();
    size_t counted = 0;
    for (int d = 0; d < 1000; d++) {
        dyn[d] = sl_crash_asm_new(NULL);
        for (size_t i = 0; i < 41; i++) {
            struct sl_crash_line ln = {(int64_t)i + 1, (int64_t)i, {TRACE[i], strlen(TRACE[i])}};
            if (sl_crash_asm_feed(dyn[d], &ln, NULL) != 0)
                return 1;
        }
        if (!sl_crash_asm_open(dyn[d], NULL))
            return 1;
        counted += sl_crash_asm_bytes(dyn[d]);
    }
    struct mallinfo2 m1 = mallinfo2();
    printf("memory-counted %zu bytes/assembler\n", counted / 1000);
    printf("memory-malloc %zu bytes/assembler\n", (m1.uordblks - m0.uordblks) / 1000);
    for (int d = 0; d < 1000; d++)
        sl_crash_asm_free(dyn[d]);
    return 0;
}
