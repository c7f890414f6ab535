/* Unit tests for rules/evalsrc.c (include/sluice/evalsrc.h): rule source names resolved
 * to ids in rule order, and the decisions of issue 12: look again only when a matcher
 * exists and the table's generation moved; compile again only when an id changed. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "sluice/evalsrc.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* A source table: "billing" 1, "api" 3, "late" only once `late` is set. */
struct table {
    bool late;
    int calls;
};

static int64_t lookup(void *arg, const char *name)
{
    struct table *t = arg;

    t->calls++;
    if (strcmp(name, "billing") == 0)
        return 1;
    if (strcmp(name, "api") == 0)
        return 3;
    if (strcmp(name, "late") == 0 && t->late)
        return 12;
    return 0;
}

static void test_lookup(void **state)
{
    char billing[] = "billing", api[] = "api", late[] = "late", gone[] = "gone";
    struct sl_rule rules[3];
    struct sl_ruleset rs = {3, rules, 0, NULL};
    struct table t = {false, 0};
    int64_t *ids;
    size_t n;

    (void)state;
    memset(rules, 0, sizeof(rules));
    rules[0].nsources = 2;
    rules[0].sources[0] = billing;
    rules[0].sources[1] = late;
    /* rules[1] names no source */
    rules[2].nsources = 3;
    rules[2].sources[0] = gone;
    rules[2].sources[1] = NULL; /* never asked */
    rules[2].sources[2] = api;
    assert_int_equal(sl_evalsrc_lookup(&rs, lookup, &t, &ids, &n), 0);
    assert_int_equal(n, 5);
    {
        static const int64_t want[] = {1, 0, 0, 0, 3};
        for (size_t i = 0; i < N(want); i++)
            assert_int_equal(ids[i], want[i]);
    }
    assert_int_equal(t.calls, 4);
    free(ids);
    t.late = true;
    assert_int_equal(sl_evalsrc_lookup(&rs, lookup, &t, &ids, &n), 0);
    assert_int_equal(ids[1], 12);
    free(ids);
    /* no rule names a source: nothing allocated */
    rs.nrules = 2;
    rules[0].nsources = 0;
    assert_int_equal(sl_evalsrc_lookup(&rs, lookup, &t, &ids, &n), 0);
    assert_null(ids);
    assert_int_equal(n, 0);
}

static void test_stale(void **state)
{
    static const struct {
        bool compiled;
        uint64_t resolved, gen;
        bool want;
    } cases[] = {
        {false, 1, 2, false}, /* no matcher: nothing to recompile */
        {true, 1, 1, false},
        {true, 1, 2, true},
        {true, 5, 0, true}, /* any move, even backwards */
    };
    (void)state;
    for (size_t i = 0; i < N(cases); i++)
        assert_int_equal(sl_evalsrc_stale(cases[i].compiled, cases[i].resolved, cases[i].gen),
                         cases[i].want);
}

static void test_changed(void **state)
{
    static const int64_t a[] = {1, 0, 3}, b[] = {1, 12, 3}, c[] = {1, 0};
    static const struct {
        const int64_t *was;
        size_t nwas;
        const int64_t *now;
        size_t nnow;
        bool want;
    } cases[] = {
        {NULL, 0, NULL, 0, false}, /* rules name no source */
        {a, 3, a, 3, false},       /* the periodic reload */
        {a, 3, b, 3, true},        /* a named source was added */
        {b, 3, a, 3, true},        /* ... or removed */
        {a, 3, c, 2, true},        /* other rules */
        {NULL, 0, c, 2, true},
    };
    (void)state;
    for (size_t i = 0; i < N(cases); i++)
        assert_int_equal(
            sl_evalsrc_changed(cases[i].was, cases[i].nwas, cases[i].now, cases[i].nnow),
            cases[i].want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookup),
        cmocka_unit_test(test_stale),
        cmocka_unit_test(test_changed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
