/* Unit tests for drain/logplex.c (include/sluice/logplex.h): the de-duplication key of a
 * Logplex-Frame-Id and of an X-Request-Id (issue 12: log-shuttle's retries), table-driven. */
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

/* X-Request-Id keys: the frame key behind a prefix with a space, which no frame key has. */
static const struct {
    const char *name;
    const char *id;
    const char *want; /* NULL: "x-request-id sha256:" and 64 hex digits */
} request_cases[] = {
    {"log-shuttle's UUID", "0b5f5c4e-3a43-4d0f-9a3e-2f6c1f2b7d11",
     "x-request-id 0b5f5c4e-3a43-4d0f-9a3e-2f6c1f2b7d11"},
    {"the same text as a frame id is another key", "2d8ad3ee0f2b4e6f8b1f0a9c7d6e5f40",
     "x-request-id 2d8ad3ee0f2b4e6f8b1f0a9c7d6e5f40"},
    {"a space: hashed, still prefixed", "a b",
     "x-request-id sha256:c8687a08aa5d6ed2044328fa6a697ab8e96dc34291e8c2034ae8c38e6fcc6d65"},
    {"128 bytes kept",
     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
     "x-request-id "
     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"},
    {"129 bytes hashed",
     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
     NULL},
};

static void test_request_key(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(request_cases) / sizeof(request_cases[0]); i++) {
        char out[SL_LOGPLEX_KEY_MAX], fout[SL_LOGPLEX_KEY_MAX];
        struct sl_str id = sl_str_make(request_cases[i].id, strlen(request_cases[i].id));
        struct sl_str key = sl_logplex_request_key(id, out);
        struct sl_str fkey = sl_logplex_frame_key(id, fout);

        if (request_cases[i].want && !sl_str_eq(key, request_cases[i].want))
            fail_msg("%s: got \"%.*s\"", request_cases[i].name, (int)key.len, key.p);
        if (!request_cases[i].want &&
            (key.len != 13 + 71 || memcmp(key.p, "x-request-id sha256:", 20) != 0))
            fail_msg("%s: not a hashed request key: \"%.*s\"", request_cases[i].name,
                     (int)key.len, key.p);
        /* the two key spaces never meet: a frame key has no space */
        if (memchr(fkey.p, ' ', fkey.len) != NULL ||
            (key.len == fkey.len && memcmp(key.p, fkey.p, key.len) == 0))
            fail_msg("%s: request key equals a frame key", request_cases[i].name);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame_key),
        cmocka_unit_test(test_request_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
