/* libFuzzer target for drain/crash.c: the anchor, the assembler and the Sentry event.
 *
 *   make fuzz        (builds build-fuzz/fuzz_crash, runs it with tests/fuzz/seeds/crash)
 *
 * Input: byte 0 picks the limits (high bit set: max_lines 1-64 and max_bytes 64-4095, to
 * hit the caps; else the defaults), byte 1 the time step between lines (its low 3 bits x
 * 150 ms, so some steps pass the 500 ms gap), the rest is lines separated by '\n', each
 * fed as an exact-size heap copy (a read past a line is an ASan report). Besides memory
 * errors it checks the contract: feed's count matches what take gives; every crash is
 * within its limits (lines, chain length), its line ids ascend between first_id and
 * last_id; its event JSON builds, is valid UTF-8 and parses with cJSON; the anchor,
 * DSN parser and rate-limit reader take every line without harm. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "sluice/buf.h"
#include "sluice/crash.h"
#include "sluice/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            abort();                                                                               \
    } while (0)

static void check_crash(struct sl_crash *c, const struct sl_crash_limits *lim)
{
    struct sl_buf b;
    CHECK(c->nlines <= lim->max_lines);
    CHECK(c->nexcs <= 16);
    CHECK(c->first_id <= c->last_id);
    CHECK(strlen(c->fingerprint) == 64);
    for (size_t i = 0; i < c->nlines; i++) {
        CHECK(c->line_ids[i] >= c->first_id && c->line_ids[i] <= c->last_id);
        CHECK(i == 0 || c->line_ids[i] > c->line_ids[i - 1]);
    }
    if (c->lang == SL_LANG_PLATFORM)
        CHECK(c->message != NULL && c->platform_code != NULL);
    else
        CHECK(c->nexcs > 0);
    for (size_t i = 0; i < c->nexcs; i++)
        CHECK(c->excs[i].type != NULL && c->excs[i].value != NULL);
    sl_buf_init(&b, 64u << 20);
    CHECK(sl_crash_event_json(c, NULL, &b) == 0);
    CHECK(sl_utf8_clean(b.p, b.len));
    cJSON *j = cJSON_ParseWithLength(b.p, b.len);
    CHECK(j != NULL);
    cJSON_Delete(j);
    sl_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sl_crash_limits lim;
    size_t off = 2, pending = 0;
    int64_t id = 0, ts = 0;

    if (size < 2)
        return 0;
    sl_crash_limits_default(&lim);
    if (data[0] & 0x80) {
        lim.max_lines = 1 + (data[0] & 63);
        lim.max_bytes = 64 + (size_t)data[0] * 15;
    }
    int64_t step = (data[1] & 7) * 150000;
    struct sl_crash_asm *a = sl_crash_asm_new(&lim);
    CHECK(a != NULL);
    while (off <= size) {
        const uint8_t *nl = memchr(data + off, '\n', size - off);
        size_t len = nl ? (size_t)(nl - (data + off)) : size - off;
        char *line = malloc(len + 1);
        CHECK(line != NULL);
        memcpy(line, data + off, len);
        line[len] = '\0';
        struct sl_str msg = sl_str_make(line, len);
        (void)sl_crash_anchor(SL_STR_LIT("app"), SL_STR_LIT("web.1"), msg);
        (void)sl_crash_anchor(SL_STR_LIT("heroku"), SL_STR_LIT("router"), msg);
        if (len < 300) {
            struct sl_crash_dsn d;
            char why[128];
            (void)sl_crash_dsn_parse(line, &d, why, sizeof(why));
            CHECK(sl_crash_rate_limit_until(429, line, line, 1000000) >= 0);
        }
        struct sl_crash_line ln = {++id, ts, msg};
        size_t done = 0;
        int rc = sl_crash_asm_feed(a, &ln, &done);
        CHECK(rc >= 0 && (size_t)rc == done);
        pending += done;
        free(line);
        ts += step;
        off += len + 1;
        struct sl_crash *c;
        while ((c = sl_crash_asm_take(a)) != NULL) {
            CHECK(pending > 0);
            pending--;
            check_crash(c, &lim);
            sl_crash_free(c);
        }
        CHECK(pending == 0);
    }
    size_t done = 0;
    CHECK(sl_crash_asm_finish(a, &done) >= 0);
    CHECK(!sl_crash_asm_open(a, NULL));
    struct sl_crash *c;
    while ((c = sl_crash_asm_take(a)) != NULL) {
        CHECK(done-- > 0);
        check_crash(c, &lim);
        sl_crash_free(c);
    }
    CHECK(done == 0);
    sl_crash_asm_free(a);
    return 0;
}
