/* Unit tests for drain/digest.c (include/sluice/digest.h): SHA-256 against the FIPS 180-4
 * example vectors, raw and hex, and byte-exactness (NUL inside the input). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "sluice/digest.h"
#include "sluice/enc.h"

static void test_sha256(void **state)
{
    static const struct {
        const char *in;
        size_t n;
        const char *hex;
    } cases[] = {
        {"", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56,
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
        /* a NUL is a byte like any other: "a\0b" is not "a" */
        {"a\0b", 3, "59b271ae1bbcb1d31d41929817f4b16fb439eb4f31520b5ad1d5ce98920a7138"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        unsigned char raw[SL_DIGEST_LEN];
        char hex[2 * SL_DIGEST_LEN + 1], hex2[2 * SL_DIGEST_LEN + 1];

        sl_digest_sha256(cases[i].in, cases[i].n, raw);
        sl_enc_hex(raw, sizeof(raw), hex);
        sl_digest_sha256_hex(cases[i].in, cases[i].n, hex2);
        assert_string_equal(hex, hex2);
        assert_string_equal(hex, cases[i].hex);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
