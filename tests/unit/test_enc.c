/* Unit tests for drain/enc.c (include/sluice/enc.h): hex both ways, base64 both ways
 * (padding, whitespace, bad characters, exact lengths, the output cap), JSON strings. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "sluice/enc.h"

static void test_hex(void **state)
{
    static const struct {
        const char *raw;
        size_t n;
        const char *hex;
    } cases[] = {
        {"", 0, ""},
        {"\x00", 1, "00"},
        {"\x01\xab\xff", 3, "01abff"},
        {"sluice", 6, "736c75696365"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[64];
        unsigned char back[32];
        struct sl_buf b;

        sl_enc_hex(cases[i].raw, cases[i].n, out);
        assert_string_equal(out, cases[i].hex);
        sl_buf_init(&b, 64);
        assert_int_equal(sl_enc_hex_buf(&b, cases[i].raw, cases[i].n), 0);
        assert_int_equal(b.len, 2 * cases[i].n);
        if (b.len)
            assert_memory_equal(b.p, cases[i].hex, b.len);
        sl_buf_free(&b);
        assert_int_equal(sl_enc_unhex(out, strlen(out), back, sizeof(back)), (int)cases[i].n);
        if (cases[i].n)
            assert_memory_equal(back, cases[i].raw, cases[i].n);
    }
}

static void test_unhex_errors(void **state)
{
    static const struct {
        const char *in;
        size_t cap;
        int want;
    } cases[] = {
        {"ABcd", 2, 2},           /* either case */
        {"abc", 8, SL_EPARSE},    /* odd length */
        {"zz", 8, SL_EPARSE},     /* not hex */
        {"0g", 8, SL_EPARSE},     /* second digit */
        {" a", 8, SL_EPARSE},     /* whitespace */
        {"abcdef", 2, SL_ETOOBIG}, /* over the cap */
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        unsigned char out[8];
        assert_int_equal(sl_enc_unhex(cases[i].in, strlen(cases[i].in), out, cases[i].cap),
                         cases[i].want);
    }
}

static void test_b64_encode(void **state)
{
    static const struct {
        const char *raw, *b64;
    } cases[] = {
        {"", ""},          {"f", "Zg=="},         {"fo", "Zm8="},         {"foo", "Zm9v"},
        {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}, /* RFC 4648 §10 */
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[SL_ENC_B64_LEN(8) + 1];
        size_t n = sl_enc_b64(cases[i].raw, strlen(cases[i].raw), out);
        assert_int_equal(n, strlen(cases[i].b64));
        assert_int_equal(n, SL_ENC_B64_LEN(strlen(cases[i].raw)));
        assert_string_equal(out, cases[i].b64);
    }
}

static void test_b64_decode(void **state)
{
    static const struct {
        const char *in;
        size_t cap;
        int want;          /* length, or an error */
        const char *bytes; /* the decoded bytes when want >= 0 */
    } cases[] = {
        /* RFC 4648 §10, padded and not */
        {"", 16, 0, ""},
        {"Zg==", 16, 1, "f"},
        {"Zg", 16, 1, "f"},
        {"Zm8=", 16, 2, "fo"},
        {"Zm8", 16, 2, "fo"},
        {"Zm9v", 16, 3, "foo"},
        {"Zm9vYg==", 16, 4, "foob"},
        {"Zm9vYmE", 16, 5, "fooba"},
        {"Zm9vYmFy", 16, 6, "foobar"},
        {"+/+/", 16, 3, "\xfb\xff\xbf"},
        {"AAAA", 16, 3, "\0\0\0"},
        /* padding that does not complete the quantum, or too much of it */
        {"Zg=", 16, SL_EPARSE, NULL},
        {"Zm9v=", 16, SL_EPARSE, NULL},
        {"Zm9v==", 16, SL_EPARSE, NULL},
        {"Z===", 16, SL_EPARSE, NULL},
        {"====", 16, SL_EPARSE, NULL},
        {"=", 16, SL_EPARSE, NULL},
        {"Zg==Zg==", 16, SL_EPARSE, NULL}, /* padding in the middle */
        {"Zg==x", 16, SL_EPARSE, NULL},    /* something after the padding */
        /* a lone character in the last quantum */
        {"Z", 16, SL_EPARSE, NULL},
        {"Zm9vY", 16, SL_EPARSE, NULL},
        /* whitespace is not skipped (EVP_DecodeBlock would) */
        {" Zm9v", 16, SL_EPARSE, NULL},
        {"Zm9v ", 16, SL_EPARSE, NULL},
        {"Zm9v\n", 16, SL_EPARSE, NULL},
        {"Zm\r\n9v", 16, SL_EPARSE, NULL},
        /* other alphabets and bytes */
        {"Zm-_", 16, SL_EPARSE, NULL},
        {"Zm9v\x80", 16, SL_EPARSE, NULL},
        {"Zm.v", 16, SL_EPARSE, NULL},
        /* the cap counts decoded bytes exactly */
        {"Zm9vYmFy", 6, 6, "foobar"},
        {"Zm9vYmFy", 5, SL_ETOOBIG, NULL},
        {"Zm9vYg", 4, 4, "foob"},
        {"Zm9vYg", 3, SL_ETOOBIG, NULL},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        unsigned char out[16];
        int got;

        memset(out, 0xee, sizeof(out));
        got = sl_enc_unb64(cases[i].in, strlen(cases[i].in), out, cases[i].cap);
        if (got != cases[i].want)
            fail_msg("case %zu \"%s\": got %d, want %d", i, cases[i].in, got, cases[i].want);
        if (got >= 0) {
            if (got)
                assert_memory_equal(out, cases[i].bytes, (size_t)got);
            /* nothing written past the decoded length */
            assert_int_equal(out[got], 0xee);
        }
    }
}

static void test_b64_roundtrip(void **state)
{
    unsigned char raw[200], back[200];
    char b64[SL_ENC_B64_LEN(200) + 1];

    (void)state;
    for (size_t i = 0; i < sizeof(raw); i++)
        raw[i] = (unsigned char)(i * 37 + 11);
    for (size_t n = 0; n <= sizeof(raw); n++) {
        size_t len = sl_enc_b64(raw, n, b64);
        assert_int_equal(sl_enc_unb64(b64, len, back, sizeof(back)), (int)n);
        if (n)
            assert_memory_equal(back, raw, n);
        /* and without the padding */
        while (len > 0 && b64[len - 1] == '=')
            len--;
        assert_int_equal(sl_enc_unb64(b64, len, back, sizeof(back)), (int)n);
    }
}

static void test_json_str(void **state)
{
    static const struct {
        const char *in;
        size_t n;
        const char *want;
    } cases[] = {
        {"", 0, "\"\""},
        {"plain", 5, "\"plain\""},
        {"a\"b\\c", 5, "\"a\\\"b\\\\c\""},
        {"\n\t\x1f", 3, "\"\\u000a\\u0009\\u001f\""},
        {"nul\0x", 5, "\"nul\\u0000x\""},
        {"\x7f\xc3\xa9", 3, "\"\x7f\xc3\xa9\""}, /* DEL and UTF-8 as they are */
        {"/</", 3, "\"/</\""},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sl_buf b;
        sl_buf_init(&b, 256);
        assert_int_equal(sl_enc_json_str(&b, cases[i].in, cases[i].n), 0);
        assert_int_equal(b.len, strlen(cases[i].want));
        assert_memory_equal(b.p, cases[i].want, b.len);
        sl_buf_free(&b);
    }
}

static void test_pct(void **state)
{
    static const struct {
        const char *in;
        bool form;
        const char *want;
    } cases[] = {
        {"", false, ""},
        {"AZaz09-._~", false, "AZaz09-._~"},
        {"a b*c", false, "a%20b%2Ac"},
        {"/h12/&x=\xc3\xa9", false, "%2Fh12%2F%26x%3D%C3%A9"},
        {"AZaz09-._*", true, "AZaz09-._*"},
        {"a b~c", true, "a+b%7Ec"},
        {"{\"k\":1}", true, "%7B%22k%22%3A1%7D"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sl_buf b;
        sl_buf_init(&b, 256);
        assert_int_equal(sl_enc_pct(&b, cases[i].in, strlen(cases[i].in), cases[i].form), 0);
        assert_int_equal(b.len, strlen(cases[i].want));
        if (b.len)
            assert_memory_equal(b.p, cases[i].want, b.len);
        sl_buf_free(&b);
    }
}

static void test_caps(void **state)
{
    struct sl_buf b;

    (void)state;
    sl_buf_init(&b, 4);
    assert_int_equal(sl_enc_hex_buf(&b, "abc", 3), SL_ETOOBIG);
    sl_buf_reset(&b);
    assert_int_equal(sl_enc_json_str(&b, "abcdef", 6), SL_ETOOBIG);
    sl_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hex),           cmocka_unit_test(test_unhex_errors),
        cmocka_unit_test(test_b64_encode),    cmocka_unit_test(test_b64_decode),
        cmocka_unit_test(test_b64_roundtrip), cmocka_unit_test(test_json_str),
        cmocka_unit_test(test_pct),           cmocka_unit_test(test_caps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
