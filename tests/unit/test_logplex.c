/* Unit tests for drain/logplex.c (include/sluice/logplex.h): the de-duplication key of a
 * Logplex-Frame-Id, table-driven. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sluice/logplex.h"
#include "sluice/str.h"

static const struct {
    const char *name;
    const char *id;
    size_t len; /* 0: strlen(id) */
    const char *want;
} cases[] = {
    {"logplex's 32 hex digits", "2d8ad3ee0f2b4e6f8b1f0a9c7d6e5f40", 0,
     "2d8ad3ee0f2b4e6f8b1f0a9c7d6e5f40"},
    {"any printable ASCII is kept", "frame-1/a:b", 0, "frame-1/a:b"},
    {"empty id", "", 0, ""},
    {"a space: hashed", "a b", 0,
     "sha256:c8687a08aa5d6ed2044328fa6a697ab8e96dc34291e8c2034ae8c38e6fcc6d65"},
    {"a NUL: hashed, all bytes count", "a\0b", 3,
     "sha256:59b271ae1bbcb1d31d41929817f4b16fb439eb4f31520b5ad1d5ce98920a7138"},
    {"128 bytes kept",
     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
     0,
     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"},
    {"129 bytes hashed",
     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
     0, NULL /* checked by shape below */},
    {"DEL byte: hashed", "a\x7f", 0, NULL},
};

static void test_frame_key(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[SL_LOGPLEX_KEY_MAX];
        size_t len = cases[i].len ? cases[i].len : strlen(cases[i].id);
        struct sl_str key = sl_logplex_frame_key(sl_str_make(cases[i].id, len), out);

        if (cases[i].want) {
            if (!sl_str_eq(key, cases[i].want))
                fail_msg("%s: got \"%.*s\"", cases[i].name, (int)key.len, key.p);
            continue;
        }
        if (key.len != 71 || memcmp(key.p, "sha256:", 7) != 0 || key.p != out)
            fail_msg("%s: not a sha256 key: \"%.*s\"", cases[i].name, (int)key.len, key.p);
        for (size_t k = 7; k < key.len; k++)
            if (!((key.p[k] >= '0' && key.p[k] <= '9') || (key.p[k] >= 'a' && key.p[k] <= 'f')))
                fail_msg("%s: not lowercase hex at %zu", cases[i].name, k);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
