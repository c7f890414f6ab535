/* Unit tests: spool entry encoding (drain/entry.c) and COPY BINARY rows (drain/row.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sluice/entry.h"
#include "sluice/row.h"

/* ---- a tiny COPY BINARY row reader for the assertions */
struct field {
    int32_t len; /* -1: NULL */
    const unsigned char *p;
};

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

static size_t read_row(const char *buf, size_t len, struct field f[SL_ROW_NCOLS])
{
    const unsigned char *p = (const unsigned char *)buf;
    size_t off = 2;
    assert_true(len >= 2);
    assert_int_equal((p[0] << 8) | p[1], SL_ROW_NCOLS);
    for (int i = 0; i < SL_ROW_NCOLS; i++) {
        assert_true(off + 4 <= len);
        f[i].len = (int32_t)be32(p + off);
        off += 4;
        f[i].p = p + off;
        if (f[i].len > 0) {
            assert_true(off + (size_t)f[i].len <= len);
            off += (size_t)f[i].len;
        }
    }
    return off;
}

static void assert_text(struct field f, const char *want)
{
    assert_int_equal(f.len, (int32_t)strlen(want));
    assert_memory_equal(f.p, want, strlen(want));
}

enum { C_ID, C_RECV, C_SRC, C_EMIT, C_PREC, C_OFF, C_FAC, C_SEV, C_HOST, C_APP, C_PROC, C_MSGID, C_SD,
       C_MSG, C_RAW, C_ERR, C_TRUNC, C_TAGS, C_FRAME };

static void build(const struct sl_entry *e, const char *msg, size_t len, uint8_t flags,
                  uint32_t orig, struct sl_buf *out, struct sl_row_info *info,
                  struct field f[SL_ROW_NCOLS], const char *tags_query)
{
    struct sl_buf scratch, tags;
    struct sl_entry_msg m = {{msg, len}, orig, flags};

    sl_buf_init(&scratch, 1 << 20);
    sl_buf_init(&tags, 1 << 20);
    sl_buf_reset(out);
    assert_int_equal(sl_row_tags_json(sl_str_make(tags_query, strlen(tags_query)), &tags), 0);
    assert_int_equal(sl_row_build(out, 77, e, &m, sl_str_make(tags.p, tags.len), &scratch, info), 0);
    assert_int_equal(read_row(out->p, out->len, f), out->len);
    /* info->text is what logs.message holds, repaired once (the writer's token filters
     * read it), even when the frame id after it needed repair too */
    assert_int_equal(info->text.len, (size_t)f[C_MSG].len);
    if (info->text.len)
        assert_memory_equal(info->text.p, f[C_MSG].p, info->text.len);
    sl_buf_free(&scratch);
    sl_buf_free(&tags);
}

static void test_entry_roundtrip(void **state)
{
    struct sl_buf b;
    struct sl_entry e = {0}, d;
    struct sl_entry_msg m;
    size_t off;
    (void)state;

    sl_buf_init(&b, 1 << 20);
    e.kind = SL_ENTRY_HTTP;
    e.flags = SL_ENTRY_HOST_IS_TOKEN;
    e.source_id = 42;
    e.received_us = 1763719200123456LL;
    e.frame_id = SL_STR_LIT("09C557EAFCFB6CF2740EE62F62971098");
    e.tags = SL_STR_LIT("app=billing&env=prod");
    assert_int_equal(sl_entry_begin(&b, &e), 0);
    assert_int_equal(sl_entry_add(&b, "one", 3, 3, 0), 0);
    assert_int_equal(sl_entry_add(&b, "", 0, 0, SL_MSG_BAD_PREFIX), 0);
    assert_int_equal(sl_entry_add(&b, "tru", 3, 99, SL_MSG_TRUNCATED), 0);
    sl_entry_finish(&b, 3);

    assert_int_equal(sl_entry_decode(b.p, b.len, &d), 0);
    assert_int_equal(d.kind, SL_ENTRY_HTTP);
    assert_int_equal(d.flags, SL_ENTRY_HOST_IS_TOKEN);
    assert_int_equal(d.source_id, 42);
    assert_true(d.received_us == 1763719200123456LL);
    assert_true(sl_str_eq(d.frame_id, "09C557EAFCFB6CF2740EE62F62971098"));
    assert_true(sl_str_eq(d.tags, "app=billing&env=prod"));
    assert_int_equal(d.nmsgs, 3);
    off = d.msgs_off;
    assert_int_equal(sl_entry_next(b.p, b.len, &off, &m), 1);
    assert_true(sl_str_eq(m.bytes, "one"));
    assert_int_equal(sl_entry_next(b.p, b.len, &off, &m), 1);
    assert_int_equal(m.bytes.len, 0);
    assert_int_equal(m.flags, SL_MSG_BAD_PREFIX);
    assert_int_equal(sl_entry_next(b.p, b.len, &off, &m), 1);
    assert_int_equal(m.orig_len, 99);
    assert_int_equal(m.flags, SL_MSG_TRUNCATED);
    assert_int_equal(sl_entry_next(b.p, b.len, &off, &m), 0);
    /* every truncation of the record is detected, never read past */
    for (size_t cut = 0; cut < b.len; cut++) {
        struct sl_entry t;
        if (sl_entry_decode(b.p, cut, &t) != 0)
            continue;
        off = t.msgs_off;
        int k;
        while ((k = sl_entry_next(b.p, cut, &off, &m)) == 1)
            assert_true(off <= cut);
        assert_true(k == 0 || k == SL_ECORRUPT);
    }
    sl_buf_free(&b);
}

static void test_tags_json(void **state)
{
    static const struct {
        const char *q, *want;
    } cases[] = {
        {"", ""},
        {"app=billing&env=prod", "{\"app\":\"billing\",\"env\":\"prod\"}"},
        {"a=hello+world&b=%41%2f", "{\"a\":\"hello world\",\"b\":\"A/\"}"},
        {"flag&x=", "{\"flag\":\"\",\"x\":\"\"}"},
        {"q=%22quoted%22%5c", "{\"q\":\"\\\"quoted\\\"\\\\\"}"},
        {"n=%00%ff", "{\"n\":\"\xe2\x90\x80\xef\xbf\xbd\"}"},
        {"&&a=1&", "{\"a\":\"1\"}"},
        {"env=prod&x=1&env=dev", "{\"env\":[\"prod\",\"dev\"],\"x\":\"1\"}"},
        /* not valid percent-encoding (include/sluice/qs.h): kept as it came, whole */
        {"pct=100%&b=%zz", "{\"pct\":\"100%\",\"b\":\"%zz\"}"},
        {"m=%41+%zz", "{\"m\":\"%41+%zz\"}"},
        {"k%=v", "{\"k%\":\"v\"}"},
        {"c=%1f%0a", "{\"c\":\"\\u001f\\u000a\"}"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sl_buf b;
        sl_buf_init(&b, 4096);
        assert_int_equal(sl_row_tags_json(sl_str_make(cases[i].q, strlen(cases[i].q)), &b), 0);
        assert_int_equal(b.len, strlen(cases[i].want));
        if (b.len)
            assert_memory_equal(b.p, cases[i].want, b.len);
        sl_buf_free(&b);
    }
}

static void test_row_heroku_line(void **state)
{
    static const char msg[] = "<158>1 2026-11-21T10:00:00.123456+00:00 host heroku router - "
                              "at=info code=H12 status=503";
    struct sl_entry e = {0};
    struct sl_buf out;
    struct sl_row_info info;
    struct field f[SL_ROW_NCOLS];
    (void)state;

    sl_buf_init(&out, 1 << 20);
    e.source_id = 7;
    e.received_us = 946684800000000LL + 5;
    e.frame_id = SL_STR_LIT("F1");
    build(&e, msg, strlen(msg), 0, (uint32_t)strlen(msg), &out, &info, f, "app=x");
    assert_false(info.parse_error);
    assert_int_equal(be64(f[C_ID].p), 77);
    assert_true(sl_str_eq(info.sl.procid, "router"));
    assert_true(sl_str_eq(info.sl.msg, "at=info code=H12 status=503"));
    assert_int_equal(be64(f[C_RECV].p), 5);
    assert_int_equal(be64(f[C_SRC].p), 7);
    /* 2026-11-21T10:00:00.123456Z in µs since 2000-01-01 */
    assert_true(be64(f[C_EMIT].p) == (1795255200LL - 946684800LL) * 1000000 + 123456);
    assert_int_equal(f[C_PREC].len, 2);
    assert_int_equal(f[C_PREC].p[1], 6);
    assert_int_equal(f[C_FAC].p[1], 19);
    assert_int_equal(f[C_SEV].p[1], 6);
    assert_text(f[C_HOST], "host");
    assert_text(f[C_APP], "heroku");
    assert_text(f[C_PROC], "router");
    assert_int_equal(f[C_MSGID].len, -1);
    assert_int_equal(f[C_SD].len, -1);
    assert_text(f[C_MSG], "at=info code=H12 status=503");
    assert_int_equal(f[C_RAW].len, -1);
    assert_int_equal(f[C_ERR].len, -1);
    assert_int_equal(f[C_TRUNC].len, -1);
    assert_int_equal(f[C_TAGS].p[0], 1); /* jsonb version byte */
    assert_int_equal(f[C_TAGS].len, 1 + (int)strlen("{\"app\":\"x\"}"));
    assert_text(f[C_FRAME], "F1");
    sl_buf_free(&out);
}

static void test_row_not_syslog_and_bad_bytes(void **state)
{
    static const char junk[] = "just text \xff\0 end";
    struct sl_entry e = {0};
    struct sl_buf out;
    struct sl_row_info info;
    struct field f[SL_ROW_NCOLS];
    (void)state;

    sl_buf_init(&out, 1 << 20);
    build(&e, junk, sizeof(junk) - 1, 0, sizeof(junk) - 1, &out, &info, f, "");
    assert_true(info.parse_error);
    assert_true(info.raw_kept);
    assert_true(f[C_ERR].len > 0);
    assert_int_equal(f[C_EMIT].len, -1);
    assert_int_equal(f[C_HOST].len, -1);
    assert_text(f[C_MSG], "just text \xef\xbf\xbd\xe2\x90\x80 end");
    assert_int_equal(f[C_RAW].len, (int)sizeof(junk) - 1);
    assert_memory_equal(f[C_RAW].p, junk, sizeof(junk) - 1);
    assert_int_equal(f[C_TAGS].len, -1);
    assert_int_equal(f[C_FRAME].len, -1);

    /* a bad prefix is stored raw with its reason even when it looks like syslog */
    build(&e, "<190>1 - - - - - x", 18, SL_MSG_BAD_PREFIX, 18, &out, &info, f, "");
    assert_true(info.parse_error);
    assert_text(f[C_MSG], "<190>1 - - - - - x");
    /* truncation keeps the original length */
    build(&e, "<190>1 - h a p - - xx", 21, SL_MSG_TRUNCATED, 70000, &out, &info, f, "");
    assert_int_equal(f[C_TRUNC].len, 4);
    assert_int_equal(be32(f[C_TRUNC].p), 70000);
    sl_buf_free(&out);
}

static void test_row_token_hostname_redacted(void **state)
{
    static const char msg[] = "<190>1 2026-11-21T10:00:00Z d.0123456789abcdef app web.1 - - hi";
    struct sl_entry e = {0};
    struct sl_buf out;
    struct sl_row_info info;
    struct field f[SL_ROW_NCOLS];
    (void)state;

    sl_buf_init(&out, 1 << 20);
    e.flags = SL_ENTRY_HOST_IS_TOKEN;
    build(&e, msg, strlen(msg), 0, (uint32_t)strlen(msg), &out, &info, f, "");
    assert_text(f[C_HOST], "d.(token)");
    assert_text(f[C_MSG], "hi");
    sl_buf_free(&out);
}

static void test_row_bad_header_bytes_keep_the_whole_frame(void **state)
{
    static const char msg[] = "<190>1 2026-11-21T10:00:00Z h\xff\xfeost ap\xc3p web.1 - - fine text";
    struct sl_entry e = {0};
    struct sl_buf out;
    struct sl_row_info info;
    struct field f[SL_ROW_NCOLS];
    (void)state;

    sl_buf_init(&out, 1 << 20);
    build(&e, msg, strlen(msg), 0, (uint32_t)strlen(msg), &out, &info, f, "");
    assert_false(info.parse_error);
    assert_true(info.raw_kept);
    assert_text(f[C_MSG], "fine text");
    assert_int_equal(f[C_RAW].len, (int)strlen(msg));
    assert_memory_equal(f[C_RAW].p, msg, strlen(msg));
    sl_buf_free(&out);
}

/* The message and the frame id both repaired: the message's repaired text (info->text,
 * checked in build) survives the frame id's repair in the same scratch buffer. */
static void test_row_text_repaired_once(void **state)
{
    static const char msg[] = "<190>1 2026-11-21T10:00:00Z h\xffost app web.1 - - bad \xc3 text";
    struct sl_entry e = {0};
    struct sl_buf out;
    struct sl_row_info info;
    struct field f[SL_ROW_NCOLS];
    (void)state;

    sl_buf_init(&out, 1 << 20);
    e.frame_id = sl_str_make("frame\xfe", 6);
    build(&e, msg, strlen(msg), 0, (uint32_t)strlen(msg), &out, &info, f, "");
    assert_text(f[C_MSG], "bad \xef\xbf\xbd text");
    assert_text(f[C_FRAME], "frame\xef\xbf\xbd");
    sl_buf_free(&out);
}

static void test_row_loss_notice(void **state)
{
    static const char msg[] = "<172>1 2026-11-21T10:00:00+00:00 host heroku logplex - Error L10 "
                              "(output buffer overflow): 12 messages dropped since "
                              "2026-11-21T09:59:00+00:00.";
    struct sl_entry e = {0};
    struct sl_buf out;
    struct sl_row_info info;
    struct field f[SL_ROW_NCOLS];
    (void)state;

    sl_buf_init(&out, 1 << 20);
    build(&e, msg, strlen(msg), 0, (uint32_t)strlen(msg), &out, &info, f, "");
    assert_int_equal(info.loss_code, 10);
    assert_int_equal(info.loss_count, 12);
    sl_buf_free(&out);
}

static void test_copy_header(void **state)
{
    struct sl_buf b;
    (void)state;
    sl_buf_init(&b, 64);
    assert_int_equal(sl_row_copy_header(&b), 0);
    assert_int_equal(b.len, 19);
    assert_memory_equal(b.p, "PGCOPY\n\377\r\n\0", 11);
    assert_int_equal(sl_row_copy_trailer(&b), 0);
    assert_int_equal((unsigned char)b.p[19], 0xff);
    assert_int_equal((unsigned char)b.p[20], 0xff);
    sl_buf_free(&b);
}

static void test_buf_cap(void **state)
{
    struct sl_buf b;
    (void)state;
    sl_buf_init(&b, 10);
    assert_int_equal(sl_buf_add(&b, "0123456789", 10), 0);
    assert_int_equal(sl_buf_add(&b, "x", 1), SL_ETOOBIG);
    assert_int_equal(b.len, 10);
    sl_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_entry_roundtrip),
        cmocka_unit_test(test_tags_json),
        cmocka_unit_test(test_row_heroku_line),
        cmocka_unit_test(test_row_not_syslog_and_bad_bytes),
        cmocka_unit_test(test_row_token_hostname_redacted),
        cmocka_unit_test(test_row_text_repaired_once),
        cmocka_unit_test(test_row_loss_notice),
        cmocka_unit_test(test_row_bad_header_bytes_keep_the_whole_frame),
        cmocka_unit_test(test_copy_header),
        cmocka_unit_test(test_buf_cap),
    };
    return cmocka_run_group_tests_name("row", tests, NULL, NULL);
}
