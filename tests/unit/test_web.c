/* Unit tests for drain/web.c (include/sluice/web.h): the embedded files' table (every
 * file of drain/web/ is there, "/" is the page), content types, and If-None-Match
 * matching (lists, weak tags, "*", near misses). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "sluice/web.h"

static struct sl_str S(const char *s)
{
    return (struct sl_str){s, strlen(s)};
}

static void test_find(void **state)
{
    const struct sl_web_file *f;
    (void)state;
    f = sl_web_find(S("/"));
    assert_non_null(f);
    assert_string_equal(f->path, "/index.html");
    assert_string_equal(sl_web_ctype(f), "text/html; charset=utf-8");
    assert_true(f->len > 100 && f->p[f->len] == '\0');
    assert_int_equal(strlen(f->etag), 20);
    f = sl_web_find(S("/viewer.js"));
    assert_non_null(f);
    assert_string_equal(sl_web_ctype(f), "text/javascript; charset=utf-8");
    assert_string_equal(sl_web_ctype(sl_web_find(S("/viewer.css"))), "text/css; charset=utf-8");
    assert_string_equal(sl_web_ctype(sl_web_find(S("/favicon.svg"))), "image/svg+xml");
    assert_null(sl_web_find(S("/viewer.js/")));
    assert_null(sl_web_find(S("/../viewer.js")));
    assert_null(sl_web_find(S("")));
    assert_null(sl_web_find(S("/api/v1/search")));
    assert_true(sl_web_path(S("/")));
    assert_false(sl_web_path(S("/index")));
    /* the files differ, so do their tags */
    assert_string_not_equal(sl_web_find(S("/viewer.js"))->etag, sl_web_find(S("/"))->etag);
}

static void test_etag(void **state)
{
    const char *e = "0123456789abcdef0123";
    (void)state;
    assert_true(sl_web_etag_match(S("\"0123456789abcdef0123\""), e));
    assert_true(sl_web_etag_match(S("W/\"0123456789abcdef0123\""), e));
    assert_true(sl_web_etag_match(S("\"x\", \"0123456789abcdef0123\""), e));
    assert_true(sl_web_etag_match(S(" * "), e));
    assert_false(sl_web_etag_match(S("\"0123456789abcdef012\""), e));
    assert_false(sl_web_etag_match(S("0123456789abcdef0123"), e));
    assert_false(sl_web_etag_match(S("\"0123456789abcdef01234\""), e));
    assert_false(sl_web_etag_match(S(""), e));
    assert_false(sl_web_etag_match(S(","), e));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_find),
        cmocka_unit_test(test_etag),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
