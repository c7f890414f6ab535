/* Unit tests for rules/alertdoc.c (include/sluice/alertdoc.h): timestamps, sample lines
 * as JSON, their merge with the lines a group kept (first three, newest three, window
 * cut), the search link (sources, window, query, escaping, absence), the document, and
 * the match_times array text both ways. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "sluice/alertdoc.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define SEC 1000000LL

static bool names(void *arg, int64_t id, char *out, size_t cap)
{
    (void)arg;
    if (id != 1)
        return false;
    snprintf(out, cap, "billing");
    return true;
}

static struct sl_buf scratch;
static struct sl_alertdoc_ctx cx = {names, NULL, "https://l.example", &scratch};

static struct sl_str S(const char *s) {
    return sl_str_make(s, strlen(s));
}

static void
test_rfc3339(void **state)
{
    static const struct {
        int64_t us;
        const char *want;
    } cases[] = {
        {0, "1970-01-01T00:00:00.000000Z"},
        {1, "1970-01-01T00:00:00.000001Z"},
        {61 * SEC + 500000, "1970-01-01T00:01:01.500000Z"},
        {1765065600123456LL, "2025-12-07T00:00:00.123456Z"},
    };
    (void)state;
    for (size_t i = 0; i < N(cases); i++) {
        char ts[40];
        sl_alertdoc_rfc3339(cases[i].us, ts);
        assert_string_equal(ts, cases[i].want);
    }
    assert_string_equal(sl_alertdoc_severity(SL_SEV_INFO), "info");
    assert_string_equal(sl_alertdoc_severity(SL_SEV_CRITICAL), "critical");
}

static void test_source_name(void **state)
{
    char out[64];

    (void)state;
    sl_alertdoc_source_name(&cx, 1, out, sizeof(out));
    assert_string_equal(out, "billing");
    sl_alertdoc_source_name(&cx, 42, out, sizeof(out));
    assert_string_equal(out, "42");
}

/* "first:1,2|last:3" from a kept object */
static void ids_of(const cJSON *kept, char *out, size_t cap)
{
    size_t n = 0;

    for (int part = 0; part < 2; part++) {
        const cJSON *x;
        int k = 0;
        n += (size_t)snprintf(out + n, cap - n, part ? "|last:" : "first:");
        cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(kept, part ? "last" : "first"))
        {
            n += (size_t)snprintf(out + n, cap - n, k++ ? ",%s" : "%s",
                                  cJSON_GetObjectItemCaseSensitive(x, "id")->valuestring);
        }
    }
}

static void add_matches(struct sl_evalgroup *g, int64_t from, int64_t to)
{
    for (int64_t id = from; id <= to; id++) {
        struct sl_eval_sample smp = {.id = id,
                                     .received_us = id * SEC,
                                     .source_id = 1,
                                     .msg = S("m"),
                                     .severity = 6,
                                     .set = true};
        sl_evalgroup_add(g, &smp);
    }
}

static void test_lines(void **state)
{
    static const char old[] = "{\"first\":[{\"id\":\"1\",\"t\":1000000}],"
                              "\"last\":[{\"id\":\"2\",\"t\":2000000}]}";
    static const struct {
        const char *name;
        const char *stored;
        int64_t from, to; /* this batch's matches (ids, time id seconds); 0: no group */
        double min_t;
        const char *want;
    } cases[] = {
        {"two lines", NULL, 1, 2, 0, "first:1,2|last:"},
        {"seven lines", NULL, 1, 7, 0, "first:1,2,3|last:5,6,7"},
        {"stored and new", old, 10, 11, 0, "first:1,10,11|last:2"},
        {"stored and many new", old, 10, 16, 0, "first:1,10,11|last:14,15,16"},
        {"window cut", old, 0, 0, 1500000, "first:|last:2"},
        {"all slid out", old, 0, 0, 9e6, "first:|last:"},
        {"nothing", NULL, 0, 0, 0, "first:|last:"},
        {"stored only", old, 0, 0, 0, "first:1|last:2"},
    };
    (void)state;
    for (size_t c = 0; c < N(cases); c++) {
        struct sl_evalgroups s = {0};
        struct sl_evalgroup *g = NULL;
        char got[256];
        cJSON *kept;

        if (cases[c].from) {
            g = sl_evalgroups_find(&s, 0, S("k"));
            add_matches(g, cases[c].from, cases[c].to);
        }
        kept = sl_alertdoc_lines(&cx, cases[c].stored, g, cases[c].min_t);
        assert_non_null(kept);
        ids_of(kept, got, sizeof(got));
        if (strcmp(got, cases[c].want) != 0)
            fail_msg("case %s: %s, want %s", cases[c].name, got, cases[c].want);
        cJSON_Delete(kept);
        sl_evalgroups_free(&s);
    }
}

static void test_sample_json(void **state)
{
    struct sl_evalgroups s = {0};
    struct sl_evalgroup *g = sl_evalgroups_find(&s, 0, S("k"));
    struct sl_eval_sample a = {.id = 5,
                               .received_us = 3 * SEC,
                               .source_id = 1,
                               .host = S("h1"),
                               .app = S("app"),
                               .procid = S("web.1"),
                               .msg = S("bad \xff byte"),
                               .severity = 3,
                               .facility = 16,
                               .set = true};
    struct sl_eval_sample b = {.id = 6,
                               .received_us = 4 * SEC,
                               .source_id = 9,
                               .msg = S("raw"),
                               .severity = -1,
                               .set = true};
    cJSON *kept, *x;
    char *text;

    (void)state;
    sl_evalgroup_add(g, &a);
    sl_evalgroup_add(g, &b);
    kept = sl_alertdoc_lines(&cx, NULL, g, 0);
    x = cJSON_GetObjectItemCaseSensitive(kept, "first");
    text = cJSON_PrintUnformatted(x);
    assert_string_equal(text, "[{\"id\":\"5\",\"received_at\":\"1970-01-01T00:00:03.000000Z\","
                              "\"source_name\":\"billing\",\"source_id\":1,\"hostname\":\"h1\","
                              "\"program\":\"app/web.1\",\"severity\":\"error\",\"facility\":16,"
                              "\"message\":\"bad \xef\xbf\xbd byte\",\"t\":3000000},"
                              "{\"id\":\"6\",\"received_at\":\"1970-01-01T00:00:04.000000Z\","
                              "\"source_name\":\"9\",\"source_id\":9,\"hostname\":\"\","
                              "\"program\":\"\",\"severity\":\"unknown\",\"facility\":-1,"
                              "\"message\":\"raw\",\"t\":4000000}]");
    free(text);
    cJSON_Delete(kept);
    sl_evalgroups_free(&s);
}

/* A JSON line's sample carries its fields: dotted paths, the last duplicate, numbers as
 * written, decoded strings; a cut line carries none. */
static void test_sample_fields(void **state)
{
    struct sl_evalgroups s = {0};
    struct sl_evalgroup *g = sl_evalgroups_find(&s, 0, S("k"));
    struct sl_eval_sample a = {.id = 7,
                               .received_us = 3 * SEC,
                               .source_id = 1,
                               .msg = S("2026-12-07 ERROR {\"level\":\"info\",\"msg\":\"caf\\u00e9\","
                                        "\"user\":{\"id\":42},\"latency_ms\":1.50e3,"
                                        "\"ok\":false,\"level\":\"error\",\"x\":null}"),
                               .severity = 3,
                               .set = true};
    struct sl_eval_sample b = {.id = 8,
                               .received_us = 4 * SEC,
                               .source_id = 1,
                               .msg = S("{\"level\":\"error\""),
                               .severity = 3,
                               .set = true};
    cJSON *kept, *x;
    char *text;

    (void)state;
    sl_evalgroup_add(g, &a);
    sl_evalgroup_add(g, &b);
    kept = sl_alertdoc_lines(&cx, NULL, g, 0);
    x = cJSON_GetObjectItemCaseSensitive(kept, "first");
    text = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(x, 0),
                                                                   "fields"));
    assert_string_equal(text, "{\"level\":\"error\",\"msg\":\"caf\xc3\xa9\",\"user.id\":42,"
                              "\"latency_ms\":1.50e3,\"ok\":false,\"x\":null}");
    free(text);
    assert_null(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(x, 1), "fields"));
    cJSON_Delete(kept);
    sl_evalgroups_free(&s);
}

static void test_search_url(void **state)
{
    static const char two[] =
        "{\"first\":[{\"id\":\"1\",\"source_name\":\"billing\",\"t\":5000000},"
        "{\"id\":\"2\",\"source_name\":\"api worker\",\"t\":9000000}],"
        "\"last\":[{\"id\":\"3\",\"source_name\":\"billing\",\"t\":7000000}]}";
    static const char none[] = "{\"first\":[],\"last\":[]}";
    static const char many[] =
        "{\"first\":[{\"source_name\":\"s1\",\"t\":1000000},{\"source_name\":\"s2\",\"t\":1000000},"
        "{\"source_name\":\"s3\",\"t\":1000000}],\"last\":[{\"source_name\":\"s4\",\"t\":1000000},"
        "{\"source_name\":\"s5\",\"t\":1000000},{\"source_name\":\"s6\",\"t\":1000000},"
        "{\"source_name\":\"s7\",\"t\":1000000},{\"source_name\":\"s8\",\"t\":1000000},"
        "{\"source_name\":\"s9\",\"t\":1000000}]}";
    static const struct {
        const char *name;
        const char *pattern;
        enum sl_condition cond;
        enum sl_group_by by;
        const char *group;
        int64_t fired_us, now_us;
        enum sl_alert_event what;
        const char *kept;
        const char *want;
    } cases[] = {
        {"lines", "H12", SL_COND_THRESHOLD, SL_GROUP_NONE, "", 10 * SEC, 10 * SEC, SL_ALERT_FIRE,
         two,
         "https://l.example/api/v1/search?q=%2FH12%2F&source=billing&source=api%20worker&"
         "since=1970-01-01T00%3A00%3A04.000000Z&until=1970-01-01T00%3A00%3A10.000000Z&"
         "order=asc&limit=1000"},
        {"absence", "(?i)x", SL_COND_ABSENCE, SL_GROUP_SOURCE, "api/1", 100 * SEC, 100 * SEC,
         SL_ALERT_FIRE, none,
         "https://l.example/api/v1/search?source=api%2F1&"
         "since=1970-01-01T00%3A00%3A39.000000Z&until=1970-01-01T00%3A01%3A41.000000Z&"
         "order=asc&limit=1000"},
        {"absence resolved, never fired", "(?i)x", SL_COND_ABSENCE, SL_GROUP_SOURCE, "api", 0,
         200 * SEC, SL_ALERT_RESOLVE, none,
         "https://l.example/api/v1/search?source=api&"
         "since=1970-01-01T00%3A02%3A19.000000Z&until=1970-01-01T00%3A03%3A21.000000Z&"
         "order=asc&limit=1000"},
        {"match without lines names no source", "a b", SL_COND_MATCH, SL_GROUP_NONE, "g", 100 * SEC,
         130 * SEC, SL_ALERT_RESOLVE, none,
         "https://l.example/api/v1/search?q=%2Fa%20b%2F&"
         "since=1970-01-01T00%3A00%3A39.000000Z&until=1970-01-01T00%3A02%3A11.000000Z&"
         "order=asc&limit=1000"},
        {"eight sources at most", "(?i)x", SL_COND_MATCH, SL_GROUP_NONE, "", SEC, SEC,
         SL_ALERT_FIRE, many,
         "https://l.example/api/v1/search?source=s1&source=s2&source=s3&source=s4&source=s5&"
         "source=s6&source=s7&source=s8&since=1970-01-01T00%3A00%3A00.000000Z&"
         "until=1970-01-01T00%3A00%3A02.000000Z&order=asc&limit=1000"},
    };
    (void)state;
    for (size_t c = 0; c < N(cases); c++) {
        char pattern[64];
        struct sl_rule r;
        struct sl_alert_state st;
        struct sl_buf url;
        cJSON *kept = cJSON_Parse(cases[c].kept);

        memset(&r, 0, sizeof(r));
        memset(&st, 0, sizeof(st));
        snprintf(pattern, sizeof(pattern), "%s", cases[c].pattern);
        r.pattern = pattern;
        r.condition = cases[c].cond;
        r.group_by = cases[c].by;
        r.window = 60;
        st.fired_us = cases[c].fired_us;
        sl_buf_init(&url, 4096);
        assert_int_equal(sl_alertdoc_search_url(&cx, &r, cases[c].group, &st, cases[c].what, kept,
                                                cases[c].now_us, &url),
                         0);
        assert_int_equal(sl_buf_addc(&url, '\0'), 0);
        if (strcmp(url.p, cases[c].want) != 0)
            fail_msg("case %s:\n got %s\nwant %s", cases[c].name, url.p, cases[c].want);
        sl_buf_free(&url);
        cJSON_Delete(kept);
    }
}

static void test_doc(void **state)
{
    char pattern[] = "H12";
    struct sl_rule r;
    struct sl_alert_state st;
    struct sl_evalgroups s = {0};
    struct sl_evalgroup *g = sl_evalgroups_find(&s, 0, S("billing"));
    cJSON *kept, *d, *lines;
    char *text;

    (void)state;
    memset(&r, 0, sizeof(r));
    memset(&st, 0, sizeof(st));
    snprintf(r.name, sizeof(r.name), "h12-burst");
    r.pattern = pattern;
    r.condition = SL_COND_THRESHOLD;
    r.window = 60;
    r.count = 2;
    r.severity = SL_SEV_CRITICAL;
    snprintf(st.alert_id, sizeof(st.alert_id), "abc");
    st.fired_us = 20 * SEC;
    st.count = 5;
    add_matches(g, 10, 14);
    kept = sl_alertdoc_lines(&cx, NULL, g, 0);
    for (int what = SL_ALERT_FIRE; what <= SL_ALERT_RESOLVE; what++) {
        text =
            sl_alertdoc_doc(&cx, &r, 7, "billing", &st, (enum sl_alert_event)what, kept, 30 * SEC);
        assert_non_null(text);
        d = cJSON_Parse(text);
        assert_non_null(d);
        assert_string_equal(cJSON_GetObjectItem(d, "id")->valuestring, "abc");
        assert_string_equal(cJSON_GetObjectItem(d, "event")->valuestring,
                            what == SL_ALERT_FIRE ? "firing" : "resolved");
        assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(d, "rule"), "id")->valueint, 7);
        assert_string_equal(
            cJSON_GetObjectItem(cJSON_GetObjectItem(d, "rule"), "severity")->valuestring,
            "critical");
        assert_string_equal(
            cJSON_GetObjectItem(cJSON_GetObjectItem(d, "rule"), "condition")->valuestring,
            "threshold");
        assert_int_equal(cJSON_GetObjectItem(d, "count")->valueint, 5);
        assert_string_equal(cJSON_GetObjectItem(d, "first_at")->valuestring,
                            "1970-01-01T00:00:10.000000Z");
        assert_string_equal(cJSON_GetObjectItem(d, "last_at")->valuestring,
                            "1970-01-01T00:00:14.000000Z");
        assert_string_equal(cJSON_GetObjectItem(d, "fired_at")->valuestring,
                            "1970-01-01T00:00:20.000000Z");
        if (what == SL_ALERT_FIRE)
            assert_true(cJSON_IsNull(cJSON_GetObjectItem(d, "resolved_at")));
        else
            assert_string_equal(cJSON_GetObjectItem(d, "resolved_at")->valuestring,
                                "1970-01-01T00:00:30.000000Z");
        lines = cJSON_GetObjectItem(d, "lines");
        assert_int_equal(cJSON_GetArraySize(lines), 5); /* 10, 11, 12 and 13, 14 */
        assert_null(cJSON_GetObjectItem(cJSON_GetArrayItem(lines, 0), "t"));
        assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(lines, 4), "id")->valuestring,
                            "14");
        assert_string_equal(cJSON_GetObjectItem(d, "search_url")->valuestring,
                            "https://l.example/api/v1/search?q=%2FH12%2F&source=billing&"
                            "since=1970-01-01T00%3A00%3A09.000000Z&"
                            "until=1970-01-01T00%3A00%3A15.000000Z&order=asc&limit=1000");
        cJSON_Delete(d);
        free(text);
    }
    cJSON_Delete(kept);
    sl_evalgroups_free(&s);
}

static void test_times(void **state)
{
    static const struct {
        const char *in;
        uint32_t n;
        const char *out;
    } cases[] = {
        {"{}", 0, "{}"},
        {"", 0, "{}"},
        {"{1}", 1, "{1}"},
        {"{1,2,3}", 3, "{1,2,3}"},
        {"{-5,1765065600123456}", 2, "{-5,1765065600123456}"},
        {"{1,x,3}", 1, "{1}"}, /* reading stops at what is not a number */
    };
    (void)state;
    for (size_t i = 0; i < N(cases); i++) {
        struct sl_alert_state st;
        struct sl_buf b;

        memset(&st, 0, sizeof(st));
        assert_int_equal(sl_alertdoc_times_parse(cases[i].in, &st), 0);
        assert_int_equal(st.ntimes, cases[i].n);
        sl_buf_init(&b, 1024);
        assert_int_equal(sl_alertdoc_times_text(&st, &b), 0);
        assert_string_equal(b.p, cases[i].out);
        assert_int_equal(b.len, strlen(cases[i].out) + 1); /* with its NUL */
        sl_buf_free(&b);
        sl_alert_state_free(&st);
    }
}

static int setup(void **state)
{
    (void)state;
    sl_buf_init(&scratch, 1 << 20);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sl_buf_free(&scratch);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc3339),    cmocka_unit_test(test_source_name),
        cmocka_unit_test(test_lines),      cmocka_unit_test(test_sample_json), cmocka_unit_test(test_sample_fields),
        cmocka_unit_test(test_search_url), cmocka_unit_test(test_doc),
        cmocka_unit_test(test_times),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
