/* Parse benchmark: how fast one core frames, parses and tokenizes logplex bodies.
 *
 * Loads every body in tests/fixtures/corpus/streams/STREAM/NNN.logplex (or the glob given as
 * argv[1]), replicates the bodies in memory to about 256 MB (argv[2] MB to change it) and
 * times three passes over them, best of 3 each:
 *   memchr   one memchr for '\n' over every body (a memory-bandwidth ceiling)
 *   frame    sl_frame_next(final = true) over every body
 *   parse    frame + sl_syslog_parse of each message
 * Each body is framed separately, as the server does for one HTTP request.
 *
 * Single-threaded, no I/O during the timed passes. Run from the repository root. */
#include <glob.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sluice/frame.h"
#include "sluice/rfc5424.h"

struct body {
    const char *p;
    size_t len;
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

/* A sink the optimiser cannot see through. */
static volatile uint64_t sink;

enum mode { M_MEMCHR, M_FRAME, M_PARSE };

/* One pass over every body. Returns the number of lines (frames) seen. */
static uint64_t pass(const struct body *b, size_t nb, enum mode m, uint64_t *errors)
{
    uint64_t lines = 0, acc = 0;

    for (size_t i = 0; i < nb; i++) {
        const char *p = b[i].p;
        size_t len = b[i].len, off = 0;

        if (m == M_MEMCHR) {
            const char *q = p, *end = p + len;
            while (q < end && (q = memchr(q, '\n', (size_t)(end - q))) != NULL) {
                lines++;
                q++;
            }
            continue;
        }
        while (off < len) {
            struct sl_frame f;
            struct sl_syslog s;
            const char *why;
            int k = sl_frame_next(p + off, len - off, true, &f);

            if (k <= 0)
                break;
            off += (size_t)k;
            lines++;
            acc += f.msg.len;
            if (m == M_FRAME)
                continue;
            if (sl_syslog_parse(f.msg.p, f.msg.len, &s, &why) != 0) {
                (*errors)++;
                continue;
            }
            acc += (uint64_t)s.ts_us + s.msg.len;
        }
    }
    sink += acc;
    return lines;
}

int main(int argc, char **argv)
{
    const char *pattern = argc > 1 ? argv[1] : "tests/fixtures/corpus/streams/*/*.logplex";
    size_t target = (size_t)(argc > 2 ? atol(argv[2]) : 256) * 1024 * 1024;
    static const char *const names[] = {"memchr", "frame", "frame+parse"};
    glob_t g;
    struct body *src = NULL, *bodies = NULL;
    size_t nsrc = 0, srcbytes = 0, nb = 0, total = 0, copies;
    char *arena = NULL, *w;
    int rc = 1;

    if (glob(pattern, 0, NULL, &g) != 0 || g.gl_pathc == 0) {
        fprintf(stderr, "parsebench: no files match %s (run from the repository root)\n",
                pattern);
        return 1;
    }
    src = calloc(g.gl_pathc, sizeof(*src));
    if (src == NULL)
        goto out;
    for (size_t i = 0; i < g.gl_pathc; i++) {
        size_t len = 0;
        char *p = slurp(g.gl_pathv[i], &len);
        if (p == NULL) {
            fprintf(stderr, "parsebench: cannot read %s\n", g.gl_pathv[i]);
            goto out;
        }
        src[nsrc].p = p;
        src[nsrc++].len = len;
        srcbytes += len;
    }
    copies = (target + srcbytes - 1) / srcbytes;
    /* One contiguous arena so the passes stream through memory, like request bodies. */
    arena = malloc(copies * srcbytes);
    bodies = calloc(copies * nsrc, sizeof(*bodies));
    if (arena == NULL || bodies == NULL)
        goto out;
    w = arena;
    for (size_t c = 0; c < copies; c++) {
        for (size_t i = 0; i < nsrc; i++) {
            memcpy(w, src[i].p, src[i].len);
            bodies[nb].p = w;
            bodies[nb++].len = src[i].len;
            w += src[i].len;
            total += src[i].len;
        }
    }
    printf("parsebench: %zu files, %zu bytes, x%zu = %.1f MB in %zu bodies, best of 3\n", nsrc,
           srcbytes, copies, (double)total / 1e6, nb);
    printf("%-20s %12s %14s %10s\n", "pass", "MB/s", "lines/s", "lines");
    for (int m = M_MEMCHR; m <= M_PARSE; m++) {
        double best = 1e30;
        uint64_t lines = 0, errors = 0;
        for (int r = 0; r < 3; r++) {
            double t0 = now_s();
            errors = 0;
            lines = pass(bodies, nb, (enum mode)m, &errors);
            double dt = now_s() - t0;
            if (dt < best)
                best = dt;
        }
        printf("%-20s %12.0f %14.0f %10llu", names[m], (double)total / 1e6 / best,
               (double)lines / best, (unsigned long long)lines);
        if (errors)
            printf("  (%llu parse errors)", (unsigned long long)errors);
        printf("\n");
    }
    rc = 0;
out:
    for (size_t i = 0; i < nsrc; i++)
        free((void *)(uintptr_t)src[i].p);
    free(src);
    free(bodies);
    free(arena);
    globfree(&g);
    return rc;
}
