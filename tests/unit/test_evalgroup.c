/* Unit tests for rules/evalgroup.c (include/sluice/evalgroup.h): groups found and made
 * per (rule, key), the cap on groups, times and samples per group (first three, then a
 * ring of the last three read oldest first), samples built from parsed and unparsed
 * lines, and the lock order (rule id, then key) after keys are made valid UTF-8. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "sluice/evalgroup.h"
#include "sluice/rule.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static struct sl_str S(const char *s) {
    return sl_str_make(s, strlen(s));
}

static void
test_find(void **state)
{
    static const struct {
        uint32_t rule;
        const char *key;
        size_t want; /* index of the group it lands in */
    } steps[] = {
        {0, "", 0}, {0, "a", 1}, {1, "a", 2}, {0, "a", 1}, {0, "", 0}, {0, "ab", 3}, {1, "a", 2},
    };
    struct sl_evalgroups s = {0};

    (void)state;
    for (size_t i = 0; i < N(steps); i++) {
        struct sl_evalgroup *g = sl_evalgroups_find(&s, steps[i].rule, S(steps[i].key));
        assert_non_null(g);
        assert_int_equal(g - s.g, steps[i].want);
        assert_string_equal(g->group, steps[i].key);
        assert_int_equal(g->rule, steps[i].rule);
    }
    assert_int_equal(s.n, 4);
    sl_evalgroups_clear(&s);
    assert_int_equal(s.n, 0);
    assert_non_null(sl_evalgroups_find(&s, 5, S("x")));
    assert_int_equal(s.n, 1);
    sl_evalgroups_free(&s);
}

static void test_cap(void **state)
{
    struct sl_evalgroups s = {0};
    char key[16];

    (void)state;
    for (int i = 0; i < SL_EVALGROUP_MAX; i++) {
        snprintf(key, sizeof(key), "g%d", i);
        assert_non_null(sl_evalgroups_find(&s, 0, S(key)));
    }
    assert_null(sl_evalgroups_find(&s, 0, S("one more")));
    assert_null(sl_evalgroups_find(&s, 1, S("g0")));
    assert_int_equal(s.dropped, 2);
    assert_non_null(sl_evalgroups_find(&s, 0, S("g7"))); /* an existing group still counts */
    assert_int_equal(s.dropped, 2);
    sl_evalgroups_free(&s);
}

static void test_samples(void **state)
{
    static const struct {
        size_t matches;
        uint64_t first[3]; /* ids of first[] (0: unset) */
        size_t nlast;
        uint64_t last[3]; /* oldest first */
    } cases[] = {
        {1, {1, 0, 0}, 0, {0}},       {3, {1, 2, 3}, 0, {0}},       {4, {1, 2, 3}, 1, {4}},
        {6, {1, 2, 3}, 3, {4, 5, 6}}, {7, {1, 2, 3}, 3, {5, 6, 7}}, {11, {1, 2, 3}, 3, {9, 10, 11}},
    };
    (void)state;
    for (size_t c = 0; c < N(cases); c++) {
        struct sl_evalgroups s = {0};
        struct sl_evalgroup *g = sl_evalgroups_find(&s, 0, S("k"));

        for (size_t m = 1; m <= cases[c].matches; m++) {
            struct sl_eval_sample smp = {.id = (int64_t)m,
                                         .received_us = 1000 * (int64_t)m,
                                         .source_id = 40 + (int64_t)m,
                                         .set = true};
            sl_evalgroup_add(g, &smp);
        }
        assert_int_equal(g->n, cases[c].matches);
        assert_int_equal(g->ntimes, cases[c].matches);
        assert_int_equal(g->times[cases[c].matches - 1], 1000 * (int64_t)cases[c].matches);
        assert_int_equal(g->source_id, 40 + (int64_t)cases[c].matches);
        for (size_t i = 0; i < 3; i++) {
            assert_int_equal(g->first[i].set, cases[c].first[i] != 0);
            if (cases[c].first[i])
                assert_int_equal(g->first[i].id, cases[c].first[i]);
        }
        assert_int_equal(sl_evalgroup_nlast(g), cases[c].nlast);
        for (size_t i = 0; i < cases[c].nlast; i++)
            assert_int_equal(sl_evalgroup_last(g, i)->id, cases[c].last[i]);
        sl_evalgroups_free(&s);
    }
}

static void test_times_cap(void **state)
{
    struct sl_evalgroups s = {0};
    struct sl_evalgroup *g = sl_evalgroups_find(&s, 0, S("k"));
    struct sl_eval_sample smp = {.set = true};

    (void)state;
    for (int i = 0; i < SL_RULE_MAX_COUNT + 5; i++) {
        smp.received_us = i;
        sl_evalgroup_add(g, &smp);
    }
    assert_int_equal(g->n, SL_RULE_MAX_COUNT + 5);
    assert_int_equal(g->ntimes, SL_RULE_MAX_COUNT);
    assert_int_equal(g->times[SL_RULE_MAX_COUNT - 1], SL_RULE_MAX_COUNT - 1);
    sl_evalgroups_free(&s);
}

static void test_sample_make(void **state)
{
    struct sl_entry e;
    struct sl_row_info info;
    struct sl_eval_sample smp;

    (void)state;
    memset(&e, 0, sizeof(e));
    memset(&info, 0, sizeof(info));
    e.source_id = 9;
    e.received_us = 123456;
    info.sl.hostname = S("host");
    info.sl.app_name = S("app");
    info.sl.procid = S("web.1");
    info.sl.msg = S("hello");
    info.sl.severity = 3;
    info.sl.facility = 16;
    sl_eval_sample_make(&smp, 77, &e, &info);
    assert_true(smp.set);
    assert_int_equal(smp.id, 77);
    assert_int_equal(smp.received_us, 123456);
    assert_int_equal(smp.source_id, 9);
    assert_int_equal(smp.severity, 3);
    assert_int_equal(smp.facility, 16);
    assert_memory_equal(smp.procid.p, "web.1", 5);
    assert_memory_equal(smp.msg.p, "hello", 5);
    /* a line that did not parse: only the message, severity -1 */
    info.parse_error = true;
    sl_eval_sample_make(&smp, 78, &e, &info);
    assert_int_equal(smp.severity, -1);
    assert_int_equal(smp.facility, 0);
    assert_null(smp.host.p);
    assert_null(smp.app.p);
    assert_int_equal(smp.msg.len, 5);
}

static void test_sort(void **state)
{
    static const struct {
        uint32_t rule;
        const char *key;
    } add[] = {{0, "b"}, {1, "z"}, {0, "a"}, {2, "m"}, {1, "bad\xff"}, {0, "\xc3\xa9"}};
    /* rule 0 has database id 30, rule 1 id 10, rule 2 id 20 */
    static const int ids[] = {30, 10, 20};
    static const struct {
        uint32_t rule;
        const char *key;
    } want[] = {{1, "bad\xef\xbf\xbd"}, {1, "z"}, {2, "m"}, {0, "a"}, {0, "b"}, {0, "\xc3\xa9"}};
    struct sl_evalgroups s = {0};

    (void)state;
    for (size_t i = 0; i < N(add); i++)
        assert_non_null(sl_evalgroups_find(&s, add[i].rule, S(add[i].key)));
    sl_evalgroups_sort(&s, ids);
    for (size_t i = 0; i < N(want); i++) {
        assert_int_equal(s.g[i].rule, want[i].rule);
        assert_string_equal(s.g[i].group, want[i].key);
    }
    sl_evalgroups_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_find),        cmocka_unit_test(test_cap),
        cmocka_unit_test(test_samples),     cmocka_unit_test(test_times_cap),
        cmocka_unit_test(test_sample_make), cmocka_unit_test(test_sort),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
