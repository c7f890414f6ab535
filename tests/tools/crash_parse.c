/* crash_parse: the crash assembler (drain/crash.c) on stdin, for the SDK oracle tests.
 *
 *   build/crash_parse < trace.txt
 *
 * Each input line is one stored message of ONE (source, procid): line i (from 0) gets
 * id i + 1 and time i ms. Every crash the assembler completes is printed as one Sentry
 * event JSON (sl_crash_event_json) on its own line, in order; at the end of the input the
 * open trace is closed. Exit 0, or 1 when out of memory or an event does not fit 4 MiB.
 * Options: --gap-ms N (the silence that closes a trace, default 500), --max-lines N,
 * --max-bytes N (the assembler's caps), --server-name NAME (the event's server_name). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/buf.h"
#include "sluice/crash.h"
#include "sluice/digest.h"

static int emit(struct sl_crash_asm *a, const char *server_name)
{
    struct sl_crash *c;
    int rc = 0;

    while ((c = sl_crash_asm_take(a)) != NULL) {
        struct sl_buf b;
        char seed[64], h[65], eid[33];
        struct sl_crash_ctx cx = {0};

        snprintf(seed, sizeof(seed), "crash_parse:%lld", (long long)c->first_id);
        sl_digest_sha256_hex(seed, strlen(seed), h);
        memcpy(eid, h, 32);
        eid[32] = '\0';
        cx.event_id = eid;
        cx.server_name = server_name;
        cx.timestamp_us = c->last_ts_us;
        sl_buf_init(&b, 4 << 20);
        if (sl_crash_event_json(c, &cx, &b) == 0) {
            fwrite(b.p, 1, b.len, stdout);
            fputc('\n', stdout);
        } else {
            fprintf(stderr, "crash_parse: event too big\n");
            rc = 1;
        }
        sl_buf_free(&b);
        sl_crash_free(c);
    }
    return rc;
}

int main(int argc, char **argv)
{
    struct sl_crash_limits lim;
    const char *server_name = NULL;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int64_t i = 0;
    int rc = 0;

    sl_crash_limits_default(&lim);
    for (int k = 1; k < argc; k++) {
        if (k + 1 < argc && strcmp(argv[k], "--gap-ms") == 0)
            lim.gap_us = atoll(argv[++k]) * 1000;
        else if (k + 1 < argc && strcmp(argv[k], "--max-lines") == 0)
            lim.max_lines = (size_t)atoll(argv[++k]);
        else if (k + 1 < argc && strcmp(argv[k], "--max-bytes") == 0)
            lim.max_bytes = (size_t)atoll(argv[++k]);
        else if (k + 1 < argc && strcmp(argv[k], "--server-name") == 0)
            server_name = argv[++k];
        else {
            fprintf(stderr, "usage: crash_parse [--gap-ms N] [--max-lines N] [--max-bytes N] "
                            "[--server-name NAME] < lines\n");
            return 2;
        }
    }
    struct sl_crash_asm *a = sl_crash_asm_new(&lim);
    if (!a)
        return 1;
    while ((n = getline(&line, &cap, stdin)) >= 0) {
        size_t len = (size_t)n;
        if (len && line[len - 1] == '\n')
            len--;
        struct sl_crash_line ln = {i + 1, i * 1000, {line, len}};
        size_t done = 0;
        if (sl_crash_asm_feed(a, &ln, &done) < 0)
            rc = 1;
        if (done)
            rc |= emit(a, server_name);
        i++;
    }
    size_t done = 0;
    if (sl_crash_asm_finish(a, &done) < 0)
        rc = 1;
    rc |= emit(a, server_name);
    free(line);
    sl_crash_asm_free(a);
    return rc;
}
