/* Unit tests for rules/match.c (include/sluice/match.h): the literal reader behind the
 * prefilter, globs, scoped matching with exclude / caseless / group captures, hostile
 * message bytes, the per-line limits, compile errors, and the prefilter checked against
 * plain PCRE2 (limits.no_prefilter) over random-ish rules and the stream corpus, and over
 * rules whose literals are longer than the automaton's 16-byte window.
 * Rulesets are built by hand here (not parsed), and freed by free_rs below.
 * Corpus root: $SLUICE_CORPUS (the directory holding streams/), else tests/fixtures/corpus
 * relative to the repository root (the corpus test is skipped when neither exists). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sluice/buf.h"
#include "sluice/err.h"
#include "sluice/frame.h"
#include "sluice/match.h"
#include "sluice/rfc5424.h"
#include "sluice/rule.h"
#include "sluice/ruleset.h"

/* ---- building rulesets by hand ---------------------------------------------------- */

struct trule {
    const char *name;
    const char *pattern;
    const char *exclude;
    bool caseless;
    const char *sources; /* comma-separated names, or NULL */
    const char *app;
    const char *procid;
    enum sl_group_by group_by;
    const char *capture;
};

static char *xstrdup(const char *s)
{
    char *p;
    if (s == NULL)
        return NULL;
    p = strdup(s);
    assert_non_null(p);
    return p;
}

static void free_rs(struct sl_ruleset *rs)
{
    if (rs == NULL)
        return;
    for (size_t i = 0; i < rs->nrules; i++) {
        struct sl_rule *r = &rs->rules[i];
        free(r->pattern);
        free(r->exclude);
        for (size_t k = 0; k < r->nsources; k++)
            free(r->sources[k]);
        free(r->app);
        free(r->procid);
        free(r->group_capture);
    }
    free(rs->rules);
    free(rs);
}

static struct sl_ruleset *make_rs(const struct trule *t, size_t n)
{
    struct sl_ruleset *rs = calloc(1, sizeof(*rs));
    assert_non_null(rs);
    rs->rules = calloc(n ? n : 1, sizeof(*rs->rules));
    assert_non_null(rs->rules);
    rs->nrules = n;
    for (size_t i = 0; i < n; i++) {
        struct sl_rule *r = &rs->rules[i];
        snprintf(r->name, sizeof(r->name), "%s", t[i].name ? t[i].name : "r");
        r->pattern = xstrdup(t[i].pattern);
        r->exclude = xstrdup(t[i].exclude);
        r->caseless = t[i].caseless;
        r->app = xstrdup(t[i].app);
        r->procid = xstrdup(t[i].procid);
        r->group_by = t[i].group_by;
        r->group_capture = xstrdup(t[i].capture);
        if (t[i].sources != NULL) {
            char *list = xstrdup(t[i].sources), *save = NULL;
            for (char *tok = strtok_r(list, ",", &save); tok != NULL;
                 tok = strtok_r(NULL, ",", &save))
                r->sources[r->nsources++] = xstrdup(tok);
            free(list);
        }
    }
    return rs;
}

/* Source names: "billing" = 1, "shop" = 2, anything else unknown. */
static int64_t lookup(void *arg, const char *name)
{
    (void)arg;
    if (strcmp(name, "billing") == 0)
        return 1;
    if (strcmp(name, "shop") == 0)
        return 2;
    return 0;
}

static struct sl_str S(const char *s) {
    return s ? sl_str_make(s, strlen(s)) : SL_STR_NULL;
}

/* ---- literal reader ---------------------------------------------------------------- */

struct lit_case {
    const char *pattern;
    bool caseless;
    const char *want; /* literals joined by '\n'; "" = none */
};

#define X16 "xxxxxxxxxxxxxxxx"

static const struct lit_case lit_cases[] = {
    {"code=H12", false, "code=h12"},
    {"code=H1[0-9]", false, "code=h1"},
    {"Error R14", false, "error r14"},
    {"status=5\\d\\d", false, "status=5"},
    {"(?<error>OperationalError|InterfaceError)", false, "operationalerror\ninterfaceerror"},
    {"OperationalError|InterfaceError", false, "operationalerror\ninterfaceerror"},
    {"foo|ba", false, ""}, /* a branch below 3 bytes: no prefilter */
    {"foo|", false, ""},   /* an empty branch matches everywhere */
    {"ab", false, ""},     /* too short */
    {"abc?", false, ""},   /* "ab" is all that is required */
    {"abcd?e", false, "abc"},
    {"colou?r", false, "colo"},
    {"x+yz", false, "xyz"},
    {"ab*cdef", false, "cdef"},
    {"a{2}bcd", false, "bcd"},
    {"ab{2,3}cdef", false, "cdef"},
    {"wxyz{,3}", false, "wxy"}, /* taken as a quantifier: conservative */
    {"abc{", false, "abc{"},    /* not a quantifier: a literal brace */
    {"a.b.c", false, ""},
    {"https?://example\\.com", false, "://example.com"},
    {"\\/api\\/v1\\/", false, "/api/v1/"},
    {"a\\.b\\.c", false, "a.b.c"},
    {"x\\-y\\-z", false, "x-y-z"},
    {"[abc]def", false, "def"},
    {"[]xyz]abc", false, "abc"},
    {"[^\\]]+ghi", false, "ghi"},
    {"[[:alpha:]]+jkl", false, "jkl"},
    {"\\bERROR\\b", false, "error"},
    {"\\p{Lu}abc", false, "abc"},
    {"\\d+ms$", false, ""},
    {"^at=error code=H\\d+", false, "at=error code=h"},
    {"level=(?:error|fatal) msg", false, "level="},
    {"(foo)?barbaz", false, "barbaz"},
    {"(foobar)+x", false, "foobar"},
    {"(?:alpha|beta)\\d", false, "alpha\nbeta"},
    {"((foo|bar)baz|qux)", false, "baz\nqux"},
    {"(?=abc)x", false, ""}, /* lookahead: not used */
    {"(?!abc)defg", false, "defg"},
    {"(?<=abc)defg", false, "defg"},
    {"(?i)timeout", false, "timeout"},
    {"Timeout", true, "timeout"},
    {"(?i)disk full", false, " full"}, /* caseless: 's' and 'k' break literals */
    {"SIGKILL", true, "ill"},
    {"SIGKILL", false, "sigkill"},
    {"café au lait", false, "café au lait"},
    {"café au lait", true, " au lait"}, /* caseless: non-ASCII breaks literals */
    {"ab(?i)cdef", false, "cdef"},
    {"(?x) foo bar", false, ""}, /* extended mode: not read */
    {"foo(?#c)bar", false, ""},
    {"\\x41BCD", false, ""},
    {"(a)\\1abc", false, ""},
    {"\\Qa.b\\E", false, ""},
    {"(*UTF)abcdef", false, ""},
    {"(?1)abcdef(x)", false, ""},
    {"abc)", false, ""},
    {"(a+)+$", false, ""},
    {"aa1|bb1|cc1|dd1|ee1|ff1|gg1|hh1", false, "aa1\nbb1\ncc1\ndd1\nee1\nff1\ngg1\nhh1"},
    {"aa1|bb1|cc1|dd1|ee1|ff1|gg1|hh1|ii1", false, ""}, /* more than 8 branches */
    {"dup|dup", false, "dup"},
    {"tab\there", false, "here"},
    {"", false, ""},
    /* escapes the reader gives up on, or reads past */
    {"\\p{Lu", false, ""},  /* \p{ unterminated */
    {"abcd\\p", false, ""}, /* \p at the end */
    {"abcd\\P{", false, ""},
    {"\\pLabcd", false, "abcd"},           /* one-letter property */
    {"abcd\\", false, ""},                 /* a lone backslash at the end */
    {"abcd\\\001ef", false, "abcd"},       /* escaped control byte: ends the run */
    {"abc\\\001+defgh", false, "defgh"},   /* ... and takes its quantifier */
    {"abc\\\177def", false, "abc\177def"}, /* escaped DEL: a literal byte */
    {"abcd\177ef", false, "abcd"},         /* raw DEL: ends the run */
    {"abc\\\303\251def", false, ""},       /* escaped non-ASCII: not read */
    {"abc\\xdef", false, ""},
    {"abc\\cXdef", false, ""},
    {"\\N{U+41}bcd", false, ""},
    {"\\Nabcd", false, "abcd"},
    /* groups: unterminated names, named and option groups, nesting past 32 levels */
    {"(?<name", false, ""},
    {"(?<n'abc)", false, ""},
    {"(abcd", false, ""},
    {"(?i", false, ""},
    {"(?'n'abcd)", false, "abcd"},
    {"(?P<n>abcd)", false, "abcd"},
    {"(?P=n)abcd", false, ""},
    {"(?i:abcd)", false, "abcd"},
    {"(?s-m)abcd", false, "abcd"},
    {"(?|abc|abd)", false, "abc\nabd"},
    {"(?>abcd)", false, "abcd"},
    {"((((((((((((((((((((((((((((((((abc))))))))))))))))))))))))))))))))", false, "abc"},
    {"(((((((((((((((((((((((((((((((((abc)))))))))))))))))))))))))))))))))", false, ""},
    /* classes: unterminated, \Q / \E inside, POSIX names and word boundaries */
    {"[abc", false, ""},
    {"abc[a\\", false, ""},
    {"[\\Qa]\\E]xyz", false, ""},
    {"[a\\Ebc]xyz", false, ""},
    {"[[:alpha:]", false, ""},
    {"[[:^digit:]]abc", false, "abc"},
    {"[[:<:]]abc", false, "abc"}, /* a word boundary, not "]abc" */
    {"ab[[:>:]]cde", false, "cde"},
    /* a quantifier with nothing to repeat */
    {"*abc", false, ""},
    {"+abc", false, ""},
    {"?abc", false, ""},
    {"{2}abc", false, ""},
    {"abc|+def", false, ""},
    /* lazy and possessive quantifiers */
    {"abcd+?ef", false, "abcd"},
    {"abc?+defg", false, "defg"},
    {"x{2,}+abcd", false, "abcd"},
    {"(abcd)++", false, "abcd"},
    /* bytes that are no UTF-8 character */
    {"abc\200def", false, ""},
    {"abc\xc3(", false, ""},
    /* over-long runs: cut at 64 bytes, and never joined across a character that does not
     * fit */
    {X16 X16 X16 "xxxxxxxxxxxxxx\342\202\254yz", false, X16 X16 X16 "xxxxxxxxxxxxxx"},
    {X16 X16 X16 "xxxxxxxxxxxxxxx\303\251yz", false, X16 X16 X16 "xxxxxxxxxxxxxxx"},
    {X16 X16 X16 X16 "+abc", false, X16 X16 X16 X16},
};

static void test_literals(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(lit_cases) / sizeof(lit_cases[0]); i++) {
        const struct lit_case *c = &lit_cases[i];
        char out[1024];
        size_t n = sl_match_required_literals(c->pattern, c->caseless, out, sizeof(out));
        size_t want_n = 0;
        if (c->want[0] != '\0') {
            want_n = 1;
            for (const char *q = c->want; *q; q++)
                want_n += *q == '\n';
        }
        if (n != want_n || strcmp(out, c->want) != 0)
            fail_msg("pattern \"%s\"%s: got %zu \"%s\", want %zu \"%s\"", c->pattern,
                     c->caseless ? " (caseless)" : "", n, out, want_n, c->want);
    }
}

static void test_literal_cap(void **state)
{
    char pat[200], out[200];
    (void)state;
    memset(pat, 'x', 100);
    pat[100] = '\0';
    assert_int_equal(sl_match_required_literals(pat, false, out, sizeof(out)), 1);
    assert_int_equal(strlen(out), SL_MATCH_LITERAL_MAX);
    /* a small out buffer truncates but still reports the count */
    assert_int_equal(sl_match_required_literals("abcdef", false, out, 4), 1);
    assert_string_equal(out, "abc");
    assert_int_equal(sl_match_required_literals("abcdef", false, NULL, 0), 1);
    /* no pattern: no literal */
    out[0] = 'x';
    assert_int_equal(sl_match_required_literals(NULL, false, out, sizeof(out)), 0);
    assert_string_equal(out, "");
}

/* ---- globs ------------------------------------------------------------------------- */

struct glob_case {
    const char *glob, *s;
    bool want;
};

static const struct glob_case glob_cases[] = {
    {"web.*", "web.1", true},
    {"web.*", "web.", true},
    {"web.*", "worker.1", false},
    {"web.*", "web", false},
    {"*", "", true},
    {"*", NULL, true},
    {"", "", true},
    {"", "x", false},
    {"router", "router", true},
    {"router", "routers", false},
    {"rout?r", "router", true},
    {"?", "", false},
    {"*.1", "web.1", true},
    {"*.1", "web.12", false},
    {"w*b*1", "wxxbyy1", true},
    {"*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false},
    {"heroku", NULL, false},
    {"a**b", "ab", true},
};

static void test_glob(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(glob_cases) / sizeof(glob_cases[0]); i++) {
        const struct glob_case *c = &glob_cases[i];
        if (sl_glob_match(c->glob, S(c->s)) != c->want)
            fail_msg("glob \"%s\" on \"%s\": want %d", c->glob, c->s ? c->s : "(null)", c->want);
    }
    /* no glob: any value, absent too */
    assert_true(sl_glob_match(NULL, S("web.1")));
    assert_true(sl_glob_match(NULL, SL_STR_NULL));
}

/* ---- matching ---------------------------------------------------------------------- */

static const struct trule match_rules[] = {
    /* 0 */ {"h12", "code=H12", NULL, false, NULL, "heroku", "router", SL_GROUP_NONE, NULL},
    /* 1 */
    {"dberr", "(?<error>OperationalError|InterfaceError)", NULL, false, NULL, NULL, "worker.*",
     SL_GROUP_CAPTURE, "error"},
    /* 2 */
    {"billing-info", "at=info", NULL, false, "billing,nosuch", NULL, NULL, SL_GROUP_SOURCE, NULL},
    /* 3 */ {"timeout", "timeout", "health", true, NULL, NULL, NULL, SL_GROUP_PROCID, NULL},
    /* 4 */ {"5xx", "status=5\\d\\d", NULL, false, NULL, NULL, "web.?", SL_GROUP_NONE, NULL},
    /* 5 */ {"unknown-src", "at=info", NULL, false, "nosuch", NULL, NULL, SL_GROUP_NONE, NULL},
    /* 6 */ {"kelvin", "kelvin", NULL, true, NULL, NULL, NULL, SL_GROUP_NONE, NULL},
    /* 7 */ {"digits", "^\\d+$", NULL, false, NULL, NULL, NULL, SL_GROUP_NONE, NULL},
    /* 8 */
    {"opt", "user=(?<user>\\w+)?;", NULL, false, NULL, NULL, NULL, SL_GROUP_CAPTURE, "user"},
};

struct match_case {
    const char *name;
    int64_t source_id;
    const char *app, *procid, *msg;
    size_t msg_len;   /* 0: strlen */
    const char *want; /* "rule[=group] ..." in rule order; "" for no hit */
};

static const struct match_case match_cases[] = {
    {"h12 in scope", 3, "heroku", "router", "at=error code=H12 desc=\"Request timeout\"", 0,
     "0 3=router"},
    {"h12 wrong app", 3, "app", "router", "at=error code=H12", 0, ""},
    {"h12 wrong procid", 3, "heroku", "web.1", "at=error code=H12", 0, ""},
    {"h12 absent app", 3, NULL, "router", "code=H12", 0, ""},
    {"capture first branch", 3, "app", "worker.1", "psycopg2.OperationalError: x", 0,
     "1=OperationalError"},
    {"capture second branch", 3, "app", "worker.12", "InterfaceError: connection closed", 0,
     "1=InterfaceError"},
    {"capture out of procid scope", 3, "app", "web.1", "OperationalError", 0, ""},
    {"source scope", 1, "app", "web.1", "at=info method=GET", 0, "2"},
    {"source scope, other source", 2, "app", "web.1", "at=info method=GET", 0, ""},
    {"caseless", 3, "app", "web.1", "Read TIMEOUT after 30s", 0, "3=web.1"},
    {"exclude wins", 3, "app", "web.1", "health check timeout", 0, ""},
    {"exclude caseless too", 3, "app", "web.1", "HEALTH check timeout", 0, ""},
    {"5xx", 3, "app", "web.1", "status=503 bytes=0", 0, "4"},
    {"5xx glob ? is one char", 3, "app", "web.12", "status=503 bytes=0", 0, ""},
    {"4xx", 3, "app", "web.1", "status=404 bytes=0", 0, ""},
    {"kelvin ascii", 3, "a", "p", "KELVIN scale", 0, "6"},
    /* U+212A KELVIN SIGN folds to k: the prefilter must not drop it */
    {"kelvin sign", 3, "a", "p",
     "\xe2\x84\xaa"
     "elvin scale",
     0, "6"},
    {"no literal rule", 3, "a", "p", "12345", 0, "7"},
    {"optional capture set", 3, "a", "p", "user=bob;", 0, "8=bob"},
    {"optional capture unset", 3, "a", "p", "user=;", 0, "8"},
    {"invalid utf-8 before match", 3, "a", "web.1", "\xff\xfe\xc3 Timeout \xc3", 0, "3=web.1"},
    {"invalid utf-8 only", 3, "a", "p", "\xff\xff\xff\xc0\x80", 0, ""},
    {"overlong and surrogate", 3, "a", "p", "\xc0\xaf\xed\xa0\x80 timeout", 0, "3=p"},
    {"NUL bytes", 3, "heroku", "router", "a\0b\0code=H12\0timeout", 20, "0 3=router"},
    {"NUL hides nothing", 3, "a", "web.1", "x\0status=500", 12, "4"},
    {"empty message", 3, "a", "p", "", 0, ""},
    {"absent message", 3, "a", "p", NULL, 0, ""},
    {"several rules in order", 1, "app", "worker.3", "at=info OperationalError timeout", 0,
     "1=OperationalError 2 3=worker.3"},
};

static void format_hits(const struct sl_match_hit *h, size_t n, char *out, size_t cap)
{
    size_t w = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && w < cap; i++) {
        int k;
        if (h[i].group.len > 0)
            k = snprintf(out + w, cap - w, "%s%u=%.*s", i ? " " : "", h[i].rule,
                         (int)h[i].group.len, h[i].group.p);
        else
            k = snprintf(out + w, cap - w, "%s%u", i ? " " : "", h[i].rule);
        if (k < 0)
            break;
        w += (size_t)k;
    }
}

static void run_match_cases(bool no_prefilter)
{
    size_t nr = sizeof(match_rules) / sizeof(match_rules[0]);
    struct sl_ruleset *rs = make_rs(match_rules, nr);
    struct sl_matcher_limits lim = {0, 0, 0, no_prefilter};
    struct sl_matcher *m = NULL;
    struct sl_buf errs;

    sl_buf_init(&errs, 4096);
    if (sl_matcher_new(rs, lookup, NULL, &lim, &m, &errs) != 0)
        fail_msg("sl_matcher_new: %.*s", (int)errs.len, errs.p ? errs.p : "");
    for (size_t i = 0; i < sizeof(match_cases) / sizeof(match_cases[0]); i++) {
        const struct match_case *c = &match_cases[i];
        struct sl_match_line line = {c->source_id, S(c->app), S(c->procid), S(c->msg)};
        struct sl_match_hit hits[16];
        char got[512];
        size_t n;

        if (c->msg_len)
            line.msg.len = c->msg_len;
        n = sl_matcher_run(m, &line, hits, 16);
        format_hits(hits, n, got, sizeof(got));
        if (strcmp(got, c->want) != 0)
            fail_msg("%s%s: got \"%s\", want \"%s\"", c->name,
                     no_prefilter ? " (no prefilter)" : "", got, c->want);
        for (size_t k = 0; k < n; k++) {
            /* slices point into the line */
            const struct sl_str g = hits[k].group;
            if (g.len == 0)
                continue;
            assert_true((g.p >= line.msg.p && g.p + g.len <= line.msg.p + line.msg.len) ||
                        (g.p == line.procid.p && g.len == line.procid.len));
        }
    }
    sl_matcher_free(m);
    sl_buf_free(&errs);
    free_rs(rs);
}

static void test_match_table(void **state)
{
    (void)state;
    run_match_cases(false);
}

static void test_match_table_no_prefilter(void **state)
{
    (void)state;
    run_match_cases(true);
}

static void test_max_hits_and_stats(void **state)
{
    static const struct trule t[] = {
        {"a", "alpha", NULL, false, NULL, NULL, NULL, SL_GROUP_NONE, NULL},
        {"b", "beta", NULL, false, NULL, NULL, NULL, SL_GROUP_NONE, NULL},
        {"c", "gamma", NULL, false, NULL, "web", NULL, SL_GROUP_NONE, NULL},
        {"d", "\\w+", NULL, false, NULL, NULL, NULL, SL_GROUP_NONE, NULL},
        {"e", "epsilon", NULL, false, NULL, NULL, NULL, SL_GROUP_NONE, NULL},
    };
    /* four rules with a literal: enough for the matcher to build its automaton */
    struct sl_ruleset *rs = make_rs(t, 5);
    struct sl_matcher *m = NULL;
    struct sl_match_hit hits[4];
    struct sl_match_line line = {1, S("web"), S("web.1"), S("alpha beta gamma")};
    struct sl_rule_stats st;
    (void)state;

    assert_int_equal(sl_matcher_new(rs, lookup, NULL, NULL, &m, NULL), 0);
    assert_int_equal(sl_matcher_run(m, &line, hits, 2), 2);
    assert_int_equal(hits[0].rule, 0);
    assert_int_equal(hits[1].rule, 1);
    assert_int_equal(sl_matcher_run(m, &line, hits, 4), 4);
    line.msg = S("nothing here");
    line.app = S("api");
    assert_int_equal(sl_matcher_run(m, &line, hits, 4), 1);
    assert_int_equal(hits[0].rule, 3);

    sl_matcher_rule_stats(m, 0, &st);
    assert_int_equal(st.evaluated, 3);
    assert_int_equal(st.prefiltered, 1);
    assert_int_equal(st.matched, 2);
    assert_int_equal(st.limit_hits, 0);
    sl_matcher_rule_stats(m, 2, &st); /* out of app scope on the third line */
    assert_int_equal(st.evaluated, 1);
    assert_int_equal(st.matched, 1);
    sl_matcher_rule_stats(m, 3, &st); /* no literal: never prefiltered */
    assert_int_equal(st.evaluated, 2);
    assert_int_equal(st.prefiltered, 0);
    assert_int_equal(st.matched, 2);
    sl_matcher_rule_stats(m, 99, &st);
    assert_int_equal(st.evaluated, 0);

    sl_matcher_free(m);
    free_rs(rs);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void catastrophic(bool jit_stack_tiny)
{
    static const struct trule t[] = {
        {"evil", "(a+)+$", NULL, false, NULL, NULL, NULL, SL_GROUP_NONE, NULL},
        {"evil-exclude", "aaa", "(a|aa)+$", false, NULL, NULL, NULL, SL_GROUP_NONE, NULL},
        {"fine", "aaab", NULL, false, NULL, NULL, NULL, SL_GROUP_NONE, NULL},
    };
    struct sl_ruleset *rs = make_rs(t, 3);
    struct sl_matcher_limits lim = {0, 0, jit_stack_tiny ? 4096 : 0, false};
    struct sl_matcher *m = NULL;
    struct sl_match_hit hits[3];
    char msg[64];
    struct sl_match_line line = {1, S("app"), S("web.1"), SL_STR_NULL};
    struct sl_rule_stats st;
    double t0, dt;
    size_t n;

    memset(msg, 'a', 30);
    msg[30] = 'b';
    msg[31] = '\0';
    line.msg = S(msg);
    assert_int_equal(sl_matcher_new(rs, lookup, NULL, &lim, &m, NULL), 0);
    t0 = now_s();
    for (int i = 0; i < 10; i++) {
        n = sl_matcher_run(m, &line, hits, 3);
        /* both evil rules are cut off and count as no match; the third still runs */
        assert_int_equal(n, 1);
        assert_int_equal(hits[0].rule, 2);
    }
    dt = now_s() - t0;
    sl_matcher_rule_stats(m, 0, &st);
    assert_int_equal(st.limit_hits, 10);
    assert_int_equal(st.matched, 0);
    sl_matcher_rule_stats(m, 1, &st);
    assert_int_equal(st.limit_hits, 10);
    assert_int_equal(st.matched, 0);
    /* generous: 10 lines; unbounded backtracking would take hours */
    if (dt > 5.0)
        fail_msg("10 catastrophic lines took %.2f s", dt);
    sl_matcher_free(m);
    free_rs(rs);
}

static void test_catastrophic_bounded(void **state)
{
    (void)state;
    catastrophic(false);
}

static void test_catastrophic_small_jit_stack(void **state)
{
    (void)state;
    catastrophic(true);
}

static void test_bad_pattern(void **state)
{
    static const struct trule t[] = {
        {"good", "abc", NULL, false, NULL, NULL, NULL, SL_GROUP_NONE, NULL},
        {"h12-burst", "code=(H12", NULL, false, NULL, NULL, NULL, SL_GROUP_NONE, NULL},
        {"bad-exclude", "abc", "x[", false, NULL, NULL, NULL, SL_GROUP_NONE, NULL},
        {"no-group", "(?<err>abc)", NULL, false, NULL, NULL, NULL, SL_GROUP_CAPTURE, "error"},
        {"bad-utf8", "ab\xff", NULL, false, NULL, NULL, NULL, SL_GROUP_NONE, NULL},
    };
    struct sl_ruleset *rs = make_rs(t, 5);
    struct sl_matcher *m = (struct sl_matcher *)&m; /* must be reset to NULL */
    struct sl_buf errs;
    char *text;
    (void)state;

    sl_buf_init(&errs, 4096);
    assert_int_equal(sl_matcher_new(rs, lookup, NULL, NULL, &m, &errs), SL_EINVAL);
    assert_null(m);
    assert_non_null(errs.p);
    text = calloc(1, errs.len + 1);
    assert_non_null(text);
    memcpy(text, errs.p, errs.len);
    /* every bad rule reported, one line each, each naming the rule and the offset */
    assert_non_null(
        strstr(text, "rule h12-burst: pattern: missing closing parenthesis at offset 9\n"));
    assert_non_null(strstr(text, "rule bad-exclude: exclude: "));
    assert_non_null(strstr(text, "rule no-group: group_by: "));
    assert_non_null(strstr(text, "\"error\""));
    assert_non_null(strstr(text, "rule bad-utf8: pattern: "));
    assert_null(strstr(text, "rule good"));
    {
        int lines = 0;
        for (char *q = text; *q; q++)
            lines += *q == '\n';
        assert_int_equal(lines, 4);
    }
    for (char *line = text; *line;) {
        char *nl = strchr(line, '\n');
        *nl = '\0';
        if (strstr(line, "group_by") == NULL && strstr(line, " at offset ") == NULL)
            fail_msg("no offset in \"%s\"", line);
        line = nl + 1;
    }
    free(text);
    /* errors may be NULL */
    assert_int_equal(sl_matcher_new(rs, lookup, NULL, NULL, &m, NULL), SL_EINVAL);
    sl_buf_free(&errs);
    free_rs(rs);
}

static void test_empty_ruleset(void **state)
{
    struct sl_ruleset *rs = make_rs(NULL, 0);
    struct sl_matcher *m = NULL;
    struct sl_match_line line = {1, S("a"), S("b"), S("c")};
    struct sl_match_hit h;
    (void)state;
    assert_int_equal(sl_matcher_new(rs, NULL, NULL, NULL, &m, NULL), 0);
    assert_int_equal(sl_matcher_run(m, &line, &h, 1), 0);
    sl_matcher_free(m);
    sl_matcher_free(NULL);
    free_rs(rs);
}

/* ---- prefilter against plain PCRE2 over the corpus ------------------------------------ */

struct cline {
    char *app, *procid; /* NUL-terminated copies */
    char *msg;
    size_t msg_len;
};

static uint64_t rng = 0x9e3779b97f4a7c15u;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

static char *copy_str(struct sl_str s)
{
    char *p = calloc(1, s.len + 1);
    assert_non_null(p);
    if (s.len)
        memcpy(p, s.p, s.len);
    return p;
}

static size_t load_corpus(struct cline **out)
{
    const char *env = getenv("SLUICE_CORPUS");
    char pat[4096];
    glob_t g;
    size_t n = 0, cap = 0;
    struct cline *lines = NULL;

    snprintf(pat, sizeof(pat), "%s/streams/*/*.logplex", env ? env : "tests/fixtures/corpus");
    if (glob(pat, 0, NULL, &g) != 0)
        return 0;
    for (size_t f = 0; f < g.gl_pathc; f++) {
        FILE *fp = fopen(g.gl_pathv[f], "rb");
        char *buf;
        long len;
        size_t off = 0;
        assert_non_null(fp);
        assert_int_equal(fseek(fp, 0, SEEK_END), 0);
        len = ftell(fp);
        assert_true(len >= 0);
        rewind(fp);
        buf = malloc((size_t)len + 1);
        assert_non_null(buf);
        assert_int_equal(fread(buf, 1, (size_t)len, fp), (size_t)len);
        fclose(fp);
        while (off < (size_t)len) {
            struct sl_frame fr;
            struct sl_syslog sy;
            const char *why;
            int k = sl_frame_next(buf + off, (size_t)len - off, true, &fr);
            if (k <= 0)
                break;
            off += (size_t)k;
            if (sl_syslog_parse(fr.msg.p, fr.msg.len, &sy, &why) != 0)
                continue;
            if (n == cap) {
                cap = cap ? cap * 2 : 1024;
                lines = realloc(lines, cap * sizeof(*lines));
                assert_non_null(lines);
            }
            lines[n].app = copy_str(sy.app_name);
            lines[n].procid = copy_str(sy.procid);
            lines[n].msg = copy_str(sy.msg);
            lines[n].msg_len = sy.msg.len;
            n++;
        }
        free(buf);
    }
    globfree(&g);
    *out = lines;
    return n;
}

/* A pattern-safe piece of a corpus message: 3..10 bytes of [A-Za-z0-9=_ ], with random
 * case changes so that caseless rules matter. */
static void piece(const struct cline *l, size_t nl, char *out, size_t cap)
{
    for (int tries = 0; tries < 100; tries++) {
        const struct cline *c = &l[rnd() % nl];
        size_t want = 3 + rnd() % 8, at, k = 0;
        if (c->msg_len < want)
            continue;
        at = rnd() % (c->msg_len - want + 1);
        for (; k < want && k + 1 < cap; k++) {
            char ch = c->msg[at + k];
            if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '=' || ch == '_' || ch == ' '))
                break;
            if (rnd() % 8 == 0 && ch >= 'a' && ch <= 'z')
                ch = (char)(ch - 'a' + 'A');
            out[k] = ch;
        }
        if (k == want) {
            out[k] = '\0';
            return;
        }
    }
    snprintf(out, cap, "zzqx%u", rnd() % 100);
}

static void test_prefilter_equivalence(void **state)
{
    enum { NR = 160 };
    static const char *const fixed[] = {
        "code=H1[0-9]",
        "Error R14",
        "OperationalError",
        "status=5\\d\\d",
        "at=error",
        "(?i)TIMEOUT",
        "dyno=web\\.\\d",
        "^\\S+ \\d+$",
        "(?<m>GET|POST) /",
        "service=\\d{3,}ms",
        "\"level\":\"(?:warn|error)\"",
        "kelvin",
        "[Ee]rror",
        "status=(2|3)0\\d",
    };
    struct cline *lines = NULL;
    size_t nl = load_corpus(&lines);
    struct trule t[NR];
    char pats[NR][64], excl[NR][32];
    struct sl_ruleset *rs;
    struct sl_matcher *a = NULL, *b = NULL;
    struct sl_matcher_limits off = {0, 0, 0, true};
    uint64_t total_hits = 0, prefiltered = 0;
    (void)state;

    if (nl == 0)
        fail_msg("no corpus streams under $SLUICE_CORPUS or tests/fixtures/corpus");
    memset(t, 0, sizeof(t));
    for (size_t i = 0; i < NR; i++) {
        char p1[16], p2[16];
        t[i].name = "rand";
        t[i].pattern = pats[i];
        t[i].caseless = rnd() % 4 == 0;
        if (i < sizeof(fixed) / sizeof(fixed[0])) {
            snprintf(pats[i], sizeof(pats[i]), "%s", fixed[i]);
            continue;
        }
        piece(lines, nl, p1, sizeof(p1));
        piece(lines, nl, p2, sizeof(p2));
        switch (rnd() % 9) {
        case 0:
            snprintf(pats[i], sizeof(pats[i]), "%s", p1);
            break;
        case 1:
            snprintf(pats[i], sizeof(pats[i]), "(?i)%s", p1);
            break;
        case 2:
            snprintf(pats[i], sizeof(pats[i]), "%s\\d+", p1);
            break;
        case 3:
            snprintf(pats[i], sizeof(pats[i]), "%s|%s", p1, p2);
            break;
        case 4:
            snprintf(pats[i], sizeof(pats[i]), "%s.*%s", p1, p2);
            break;
        case 5:
            snprintf(pats[i], sizeof(pats[i]), "[a-z]+%s", p1);
            break;
        case 6:
            snprintf(pats[i], sizeof(pats[i]), "%s(?:x|y)?%s", p1, p2);
            break;
        case 7:
            snprintf(pats[i], sizeof(pats[i]), "(?<g>%s)s?", p1);
            break;
        default:
            snprintf(pats[i], sizeof(pats[i]), "\\b%s", p1);
            break;
        }
        if (rnd() % 6 == 0) {
            piece(lines, nl, excl[i], sizeof(excl[i]));
            t[i].exclude = excl[i];
        }
        if (rnd() % 8 == 0)
            t[i].procid = rnd() % 2 ? "web.*" : "router";
        if (rnd() % 10 == 0)
            t[i].app = rnd() % 2 ? "heroku" : "app";
    }
    rs = make_rs(t, NR);
    assert_int_equal(sl_matcher_new(rs, lookup, NULL, NULL, &a, NULL), 0);
    assert_int_equal(sl_matcher_new(rs, lookup, NULL, &off, &b, NULL), 0);
    for (size_t i = 0; i < nl; i++) {
        struct sl_match_line line = {1, S(lines[i].app), S(lines[i].procid),
                                     sl_str_make(lines[i].msg, lines[i].msg_len)};
        struct sl_match_hit ha[NR], hb[NR];
        size_t na = sl_matcher_run(a, &line, ha, NR), nb = sl_matcher_run(b, &line, hb, NR);
        if (na != nb)
            fail_msg("line %zu: %zu hits with the prefilter, %zu without: %s", i, na, nb,
                     lines[i].msg);
        for (size_t k = 0; k < na; k++) {
            assert_int_equal(ha[k].rule, hb[k].rule);
            assert_int_equal(ha[k].group.len, hb[k].group.len);
            assert_ptr_equal(ha[k].group.p, hb[k].group.p);
        }
        total_hits += na;
    }
    for (uint32_t i = 0; i < NR; i++) {
        struct sl_rule_stats sa, sb;
        sl_matcher_rule_stats(a, i, &sa);
        sl_matcher_rule_stats(b, i, &sb);
        assert_int_equal(sa.matched, sb.matched);
        assert_int_equal(sa.evaluated, sb.evaluated);
        assert_int_equal(sb.prefiltered, 0);
        prefiltered += sa.prefiltered;
    }
    /* not vacuous: lines hit, and the prefilter skipped work */
    assert_true(total_hits > nl / 10);
    assert_true(prefiltered > nl * NR / 4);
    sl_matcher_free(a);
    sl_matcher_free(b);
    free_rs(rs);
    for (size_t i = 0; i < nl; i++) {
        free(lines[i].app);
        free(lines[i].procid);
        free(lines[i].msg);
    }
    free(lines);
}

/* ---- the prefilter on literals longer than its 16-byte window -------------------------- */

/* The automaton keeps the rarest 16 bytes of each literal (rare_window): a rule whose
 * literals are longer must still see every line its pattern matches. Each case pairs a
 * pattern with a line it matches; the test builds lines that contain the literal at
 * every offset (across the middle of a long line too: the scan walks two halves) and
 * lines that nearly contain it (one byte changed, dropped or recased, one end cut). */
struct long_case {
    const char *pattern;
    bool caseless;
    const char *sample;
};

#define E16 "eeeeeeeeeeeeeeee"

static const struct long_case long_cases[] = {
    {"connection reset by peer while reading response header", false,
     "upstream: connection reset by peer while reading response header from upstream"},
    {"deadlock detected on relation #4242 @ shard-7", false,
     "ERROR: deadlock detected on relation #4242 @ shard-7"},
    {"upstream_timeout_exceeded\\{zone=eu-west-1\\}", false,
     "upstream_timeout_exceeded{zone=eu-west-1} after 30s"},
    {"(?i)Request Timeout After \\d+ms; retrying upstream connection", false,
     "request timeout after 350ms; RETRYING UPSTREAM CONNECTION"},
    {"Worker Heartbeat Missed For Queue", true, "WORKER HEARTBEAT MISSED FOR QUEUE default"},
    {"alpha-bravo-charlie-delta-echo|foxtrot-golf-hotel-india-juliet", false,
     "x foxtrot-golf-hotel-india-juliet y"},
    {"\\b\\d+ (?:GET|POST) /api/v2/organisations/[0-9]+/members\\?page=", false,
     "12 GET /api/v2/organisations/77/members?page=3"},
    {"\"level\":\"error\",\"msg\":\"payment provider unavailable\"", false,
     "{\"level\":\"error\",\"msg\":\"payment provider unavailable\"}"},
    {"(?<svc>billing|shipping)-service-unavailable-after-retries", false,
     "shipping-service-unavailable-after-retries=3"},
    /* a 63-byte run, then a 2-byte character past the 64-byte cap, then a rare byte */
    {E16 E16 E16 "eeeeeeeeeeeeeee\xc3\xa9#", false, E16 E16 E16 "eeeeeeeeeeeeeee\xc3\xa9#"},
    /* "[[:<:]]" is a word boundary, not a class followed by a literal "]" */
    {"[[:<:]]payment_gateway_unreachable", false, "err payment_gateway_unreachable"},
};

#define NLONG (sizeof(long_cases) / sizeof(long_cases[0]))

static const char filler[] =
    "at=info method=GET path=/ host=example.com fwd=10.0.0.1 dyno=web.1 connect=1ms "
    "service=5ms status=200 bytes=1234 protocol=https at=info method=POST path=/orders "
    "host=shop.example.com dyno=web.2 connect=0ms service=17ms status=201 bytes=88 ";

/* Runs both matchers on msg and fails unless they give the same hits; returns the
 * number of hits. */
static size_t agree(struct sl_matcher *a, struct sl_matcher *b, const char *msg, size_t len)
{
    struct sl_match_line line = {1, S("app"), S("web.1"), sl_str_make(msg, len)};
    struct sl_match_hit ha[NLONG], hb[NLONG];
    size_t na = sl_matcher_run(a, &line, ha, NLONG), nb = sl_matcher_run(b, &line, hb, NLONG);

    if (na != nb)
        fail_msg("%zu hits with the prefilter, %zu without, on \"%.*s\"", na, nb, (int)len, msg);
    for (size_t k = 0; k < na; k++) {
        if (ha[k].rule != hb[k].rule)
            fail_msg("rule %u with the prefilter, %u without, on \"%.*s\"", ha[k].rule, hb[k].rule,
                     (int)len, msg);
        assert_int_equal(ha[k].group.len, hb[k].group.len);
        assert_ptr_equal(ha[k].group.p, hb[k].group.p);
    }
    return na;
}

static char toggle_case(char c)
{
    if (c >= 'a' && c <= 'z')
        return (char)(c - 'a' + 'A');
    if (c >= 'A' && c <= 'Z')
        return (char)(c - 'A' + 'a');
    return c;
}

static void test_prefilter_long_literals(void **state)
{
    struct trule t[NLONG];
    struct sl_ruleset *rs;
    struct sl_matcher *a = NULL, *b = NULL;
    struct sl_matcher_limits off = {0, 0, 0, true};
    struct cline *clines = NULL;
    size_t ncl = load_corpus(&clines), nlong = 0, nlines = 0;
    char line[1024];
    uint64_t prefiltered = 0;
    (void)state;

    memset(t, 0, sizeof(t));
    for (size_t i = 0; i < NLONG; i++) {
        char lits[1024];
        size_t maxlen = 0, run = 0;
        t[i].name = "long";
        t[i].pattern = long_cases[i].pattern;
        t[i].caseless = long_cases[i].caseless;
        if (strncmp(t[i].pattern, "(?<svc>", 7) == 0) {
            t[i].group_by = SL_GROUP_CAPTURE;
            t[i].capture = "svc";
        }
        /* every case has a literal, and most have one longer than the window */
        if (sl_match_required_literals(t[i].pattern, t[i].caseless, lits, sizeof(lits)) == 0)
            fail_msg("\"%s\": no literal", t[i].pattern);
        for (const char *q = lits;; q++) {
            if (*q == '\n' || *q == '\0') {
                maxlen = run > maxlen ? run : maxlen;
                run = 0;
                if (*q == '\0')
                    break;
            } else {
                run++;
            }
        }
        nlong += maxlen > 16;
    }
    assert_true(nlong >= NLONG - 2);
    rs = make_rs(t, NLONG);
    assert_int_equal(sl_matcher_new(rs, lookup, NULL, NULL, &a, NULL), 0);
    assert_int_equal(sl_matcher_new(rs, lookup, NULL, &off, &b, NULL), 0);

    for (size_t i = 0; i < NLONG; i++) {
        const char *smp = long_cases[i].sample;
        size_t n = strlen(smp);
        assert_true(n + 2 * sizeof(filler) < sizeof(line));
        /* the sample itself hits its rule */
        if (agree(a, b, smp, n) == 0)
            fail_msg("\"%s\" does not match its sample", long_cases[i].pattern);
        /* at every offset of a long line: one scan or two halves, across the middle */
        for (size_t pad = 0; pad + 1 < sizeof(filler); pad++) {
            size_t len = 0;
            memcpy(line, filler, pad);
            len += pad;
            line[len++] = ' ';
            memcpy(line + len, smp, n);
            len += n;
            line[len++] = ' ';
            memcpy(line + len, filler, 60);
            len += 60;
            if (agree(a, b, line, len) == 0)
                fail_msg("\"%s\" does not match its sample at offset %zu", long_cases[i].pattern,
                         pad);
            nlines++;
        }
        /* nearly: one byte changed, dropped, recased; one end cut */
        for (size_t j = 0; j < n; j++) {
            memcpy(line, smp, n);
            line[j] = line[j] == '#' ? '%' : '#';
            (void)agree(a, b, line, n);
            line[j] = toggle_case(smp[j]);
            (void)agree(a, b, line, n);
            memcpy(line, smp, j);
            memcpy(line + j, smp + j + 1, n - j - 1);
            (void)agree(a, b, line, n - 1);
            (void)agree(a, b, smp, j);
            (void)agree(a, b, smp + j, n - j);
            nlines += 5;
        }
    }
    for (size_t i = 0; i < ncl; i++) {
        (void)agree(a, b, clines[i].msg, clines[i].msg_len);
        nlines++;
    }
    /* not vacuous: the automaton was in use for every rule */
    for (uint32_t i = 0; i < NLONG; i++) {
        struct sl_rule_stats sa, sb;
        sl_matcher_rule_stats(a, i, &sa);
        sl_matcher_rule_stats(b, i, &sb);
        assert_int_equal(sa.matched, sb.matched);
        assert_int_equal(sb.prefiltered, 0);
        if (sa.prefiltered == 0)
            fail_msg("\"%s\": no line prefiltered", long_cases[i].pattern);
        prefiltered += sa.prefiltered;
    }
    assert_true(prefiltered > nlines);
    sl_matcher_free(a);
    sl_matcher_free(b);
    free_rs(rs);
    for (size_t i = 0; i < ncl; i++) {
        free(clines[i].app);
        free(clines[i].procid);
        free(clines[i].msg);
    }
    free(clines);
}

/* Which 16 bytes of a long literal the automaton keeps: the window of the rarest bytes
 * (byte_commonness: ' ' > "etaoinsrhl" > punctuation and digits > other letters > the
 * rest). A line holding only that window reaches PCRE2; a line holding 16 bytes of the
 * literal elsewhere is skipped. runs[] is, per line, which rules reached PCRE2. */
static void test_prefilter_rare_window(void **state)
{
    static const struct trule t[] = {
        /* window at the end: "eeeeeeeeeeeee#zq" */
        {"tail", E16 E16 "#zq", NULL, false, NULL, NULL, NULL, SL_GROUP_NONE, NULL},
        /* window at the start: "#zqeeeeeeeeeeeee" */
        {"head", "#zq" E16 E16, NULL, false, NULL, NULL, NULL, SL_GROUP_NONE, NULL},
        /* window over the two rare bytes, the first of the equal ones: "eeeeeeeeeeeeee@@" */
        {"mid", E16 "@@" E16, NULL, false, NULL, NULL, NULL, SL_GROUP_NONE, NULL},
        {"short", "wxyzwxyz", NULL, false, NULL, NULL, NULL, SL_GROUP_NONE, NULL},
    };
    static const struct {
        const char *msg;
        const char *runs; /* one char per rule: 1 = reached PCRE2 */
    } lines[] = {
        {E16 E16 E16, "0000"},
        {"x eeeeeeeeeeeee#zq x", "1000"},
        {"x #zqeeeeeeeeeeeee x", "0100"},
        {"x eeeeeeeeeeeeee@@ x", "0010"},
        {"x eeeeeeeeeeeee@ x", "0000"},
        {"wxyzwxyz " E16 E16 "#zq", "1001"},
    };
    struct sl_ruleset *rs = make_rs(t, 4);
    struct sl_matcher *m = NULL;
    struct sl_match_hit hits[4];
    uint64_t before[4];
    (void)state;

    assert_int_equal(sl_matcher_new(rs, lookup, NULL, NULL, &m, NULL), 0);
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        struct sl_match_line line = {1, S("a"), S("p"), S(lines[i].msg)};
        for (uint32_t r = 0; r < 4; r++) {
            struct sl_rule_stats st;
            sl_matcher_rule_stats(m, r, &st);
            before[r] = st.evaluated - st.prefiltered;
        }
        (void)sl_matcher_run(m, &line, hits, 4);
        for (uint32_t r = 0; r < 4; r++) {
            struct sl_rule_stats st;
            sl_matcher_rule_stats(m, r, &st);
            if (st.evaluated - st.prefiltered - before[r] != (uint64_t)(lines[i].runs[r] - '0'))
                fail_msg("line \"%s\", rule %s: %s PCRE2", lines[i].msg, t[r].name,
                         lines[i].runs[r] == '1' ? "did not reach" : "reached");
        }
    }
    sl_matcher_free(m);
    free_rs(rs);
}

/* Past AC_MAX_ENTRIES (4 Mi table entries) the prefilter is off and every rule runs
 * PCRE2: same hits, nothing prefiltered. 300 rules of 8 literals of 16 characters drawn
 * from ~120 byte values (2-byte UTF-8 characters give many distinct bytes) need about
 * 38 400 states of ~120 classes. */
static void test_prefilter_too_big(void **state)
{
    enum { NR = 300, NALT = 8, NCH = 16 };
    static const char ascii[] = "abcdefghijklmnopqrstuvwxyz0123456789 =,:/-_@%!~<>'\"#&;`";
    struct trule *t = calloc(NR, sizeof(*t));
    char(*pats)[NALT * (NCH * 2 + 1) + 1] = calloc(NR, sizeof(*pats));
    struct sl_ruleset *rs;
    struct sl_matcher *a = NULL, *b = NULL;
    struct sl_matcher_limits off = {0, 0, 0, true};
    struct sl_match_hit ha[NR], hb[NR];
    uint64_t rng2 = 12345;
    size_t hits = 0;
    (void)state;

    assert_non_null(t);
    assert_non_null(pats);
    for (size_t i = 0; i < NR; i++) {
        size_t w = 0;
        for (size_t k = 0; k < NALT; k++) {
            if (k > 0)
                pats[i][w++] = '|';
            for (size_t j = 0; j < NCH; j++) {
                rng2 = rng2 * 6364136223846793005u + 1442695040888963407u;
                unsigned v = (unsigned)(rng2 >> 33) % 120;
                if (v < sizeof(ascii) - 1) {
                    pats[i][w++] = ascii[v];
                } else { /* U+00C0 .. U+017F */
                    unsigned cp = 0xc0 + (unsigned)(rng2 >> 40) % 0xc0;
                    pats[i][w++] = (char)(0xc0 | (cp >> 6));
                    pats[i][w++] = (char)(0x80 | (cp & 0x3f));
                }
            }
        }
        pats[i][w] = '\0';
        t[i].name = "big";
        t[i].pattern = pats[i];
        assert_int_equal(sl_match_required_literals(pats[i], false, NULL, 0), NALT);
    }
    rs = make_rs(t, NR);
    assert_int_equal(sl_matcher_new(rs, lookup, NULL, NULL, &a, NULL), 0);
    assert_int_equal(sl_matcher_new(rs, lookup, NULL, &off, &b, NULL), 0);
    for (size_t i = 0; i < NR; i += 7) {
        /* a line holding one literal of rule i, and one holding none */
        char line[256];
        const char *bar = strchr(pats[i], '|');
        int n = snprintf(line, sizeof(line), "x %.*s y", (int)(bar - pats[i]), pats[i]);
        struct sl_match_line l1 = {1, S("a"), S("p"), sl_str_make(line, (size_t)n)};
        struct sl_match_line l2 = {1, S("a"), S("p"), S("nothing to see")};
        size_t na = sl_matcher_run(a, &l1, ha, NR), nb = sl_matcher_run(b, &l1, hb, NR);
        assert_int_equal(na, nb);
        assert_true(na >= 1);
        for (size_t k = 0; k < na; k++)
            assert_int_equal(ha[k].rule, hb[k].rule);
        hits += na;
        assert_int_equal(sl_matcher_run(a, &l2, ha, NR), 0);
    }
    assert_true(hits > 0);
    for (uint32_t i = 0; i < NR; i++) {
        struct sl_rule_stats st;
        sl_matcher_rule_stats(a, i, &st);
        assert_int_equal(st.prefiltered, 0);
        assert_true(st.evaluated > 0);
    }
    sl_matcher_free(a);
    sl_matcher_free(b);
    free_rs(rs);
    free(pats);
    free(t);
}

/* Arguments sl_matcher_new refuses, a rule without a pattern, an error line longer
 * than add_error's 512 bytes (cut, still one line), and an errors buffer too small
 * for a line (the code still says SL_EINVAL). */
static void test_matcher_new_errors(void **state)
{
    char longcap[700];
    struct trule t[2] = {
        {"nopat", NULL, NULL, false, NULL, NULL, NULL, SL_GROUP_NONE, NULL},
        {"longcap", "(?<x>abc)", NULL, false, NULL, NULL, NULL, SL_GROUP_CAPTURE, longcap},
    };
    struct sl_ruleset *rs;
    struct sl_ruleset empty = {0};
    struct sl_matcher *m = (struct sl_matcher *)&m;
    struct sl_buf errs;
    char *text;
    (void)state;

    memset(longcap, 'c', sizeof(longcap) - 1);
    longcap[sizeof(longcap) - 1] = '\0';
    assert_int_equal(sl_matcher_new(NULL, lookup, NULL, NULL, &m, NULL), SL_EINVAL);
    assert_null(m);
    empty.nrules = 3; /* rules missing */
    assert_int_equal(sl_matcher_new(&empty, lookup, NULL, NULL, &m, NULL), SL_EINVAL);
    assert_null(m);

    rs = make_rs(t, 2);
    sl_buf_init(&errs, 4096);
    assert_int_equal(sl_matcher_new(rs, lookup, NULL, NULL, &m, &errs), SL_EINVAL);
    assert_null(m);
    text = calloc(1, errs.len + 1);
    assert_non_null(text);
    memcpy(text, errs.p, errs.len);
    assert_non_null(strstr(text, "rule nopat: pattern: missing\n"));
    {
        const char *l2 = strstr(text, "rule longcap: group_by: the pattern has no capture group");
        assert_non_null(l2);
        assert_int_equal(strlen(l2), 511); /* 510 bytes and '\n' */
        assert_int_equal(l2[510], '\n');
    }
    free(text);
    sl_buf_free(&errs);

    sl_buf_init(&errs, 10);
    assert_int_equal(sl_matcher_new(rs, lookup, NULL, NULL, &m, &errs), SL_EINVAL);
    assert_null(m);
    assert_int_equal(errs.len, 0);
    sl_buf_free(&errs);
    free_rs(rs);
}

/* match_limit and depth_limit given: a backtracking pattern on a line it needs a few
 * thousand steps for stops at the limit (a limit hit, no match), where the default
 * limit lets it finish; a plain pattern still matches. */
static void test_match_limits_given(void **state)
{
    static const struct trule t[] = {
        {"evil", "(a+)+$", NULL, false, NULL, NULL, NULL, SL_GROUP_NONE, NULL},
        {"fine", "aaab", NULL, false, NULL, NULL, NULL, SL_GROUP_NONE, NULL},
    };
    struct sl_ruleset *rs = make_rs(t, 2);
    struct sl_matcher_limits lim = {5000, 200, 0, false};
    struct sl_matcher *m = NULL, *dflt = NULL;
    struct sl_match_hit hits[2];
    struct sl_match_line line = {1, S("a"), S("p"), S("aaaaaaaaaaaaab")};
    struct sl_rule_stats st;
    (void)state;

    assert_int_equal(sl_matcher_new(rs, lookup, NULL, &lim, &m, NULL), 0);
    assert_int_equal(sl_matcher_new(rs, lookup, NULL, NULL, &dflt, NULL), 0);
    assert_int_equal(sl_matcher_run(m, &line, hits, 2), 1);
    assert_int_equal(hits[0].rule, 1);
    sl_matcher_rule_stats(m, 0, &st);
    assert_int_equal(st.limit_hits, 1);
    assert_int_equal(st.matched, 0);
    assert_int_equal(sl_matcher_run(dflt, &line, hits, 2), 1);
    sl_matcher_rule_stats(dflt, 0, &st);
    assert_int_equal(st.limit_hits, 0);
    line.msg = S("aaaa");
    assert_int_equal(sl_matcher_run(m, &line, hits, 2), 1);
    assert_int_equal(hits[0].rule, 0);
    sl_matcher_free(m);
    sl_matcher_free(dflt);
    free_rs(rs);
}

static void test_env_knob(void **state)
{
    static const struct trule t[] = {
        {"a", "alpha", NULL, false, NULL, NULL, NULL, SL_GROUP_NONE, NULL},
        {"b", "bravo", NULL, false, NULL, NULL, NULL, SL_GROUP_NONE, NULL},
        {"c", "charlie", NULL, false, NULL, NULL, NULL, SL_GROUP_NONE, NULL},
        {"d", "delta", NULL, false, NULL, NULL, NULL, SL_GROUP_NONE, NULL},
    };
    struct sl_ruleset *rs = make_rs(t, 4);
    struct sl_matcher *m = NULL;
    struct sl_match_line line = {1, S("a"), S("b"), S("beta")};
    struct sl_match_hit h;
    struct sl_rule_stats st;
    (void)state;

    assert_int_equal(setenv("SLUICE_MATCH_NO_PREFILTER", "1", 1), 0);
    assert_int_equal(sl_matcher_new(rs, lookup, NULL, NULL, &m, NULL), 0);
    assert_int_equal(unsetenv("SLUICE_MATCH_NO_PREFILTER"), 0);
    assert_int_equal(sl_matcher_run(m, &line, &h, 1), 0);
    sl_matcher_rule_stats(m, 0, &st);
    assert_int_equal(st.evaluated, 1);
    assert_int_equal(st.prefiltered, 0);
    sl_matcher_free(m);
    /* without the knob the same line is prefiltered */
    assert_int_equal(sl_matcher_new(rs, lookup, NULL, NULL, &m, NULL), 0);
    assert_int_equal(sl_matcher_run(m, &line, &h, 1), 0);
    sl_matcher_rule_stats(m, 0, &st);
    assert_int_equal(st.prefiltered, 1);
    sl_matcher_free(m);
    free_rs(rs);
}

/* Issue 12: an alert's search link must use a query the search API accepts. */
static void test_search_query_table(void **state)
{
    static const struct {
        const char *pattern, *exclude;
        bool caseless;
        const char *want;
    } cases[] = {
        {"status=5\\d\\d", NULL, false, "/status=5\\d\\d/"},
        {"code=H12\\b", NULL, true, "/code=H12\\b/i"},
        {"(?<error>OperationalError|InterfaceError)", NULL, false,
         "/(OperationalError|InterfaceError)/"},
        {"(?P<e>a+)x(?'f'b)", NULL, false, "/(a+)x(b)/"},
        {"(?<=a)b", NULL, false, "/(?<=a)b/"},
        {"a/b", NULL, false, "/a\\/b/"},
        {"a\\/b", NULL, false, "/a\\/b/"},
        {"[/(?<x>]", NULL, false, "/[\\/(?<x>]/"},
        {"deploy failed", "dry run", false, "/deploy failed/ -/dry run/"},
        /* what the language refuses is left out: exclude first, then the pattern */
        {"deploy failed", "(?i)dry", false, "/deploy failed/"},
        {"(?i)deploy", NULL, false, ""},
        {"(a)\\1", NULL, false, ""},
    };
    char out[256];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sl_rule r;
        size_t n;

        memset(&r, 0, sizeof(r));
        r.pattern = (char *)(uintptr_t)cases[i].pattern;
        r.exclude = (char *)(uintptr_t)cases[i].exclude;
        r.caseless = cases[i].caseless;
        n = sl_match_search_query(&r, out, sizeof(out));
        if (strcmp(out, cases[i].want) != 0 || n != strlen(out))
            fail_msg("row %zu \"%s\": got \"%s\" (%zu), want \"%s\"", i, cases[i].pattern, out,
                     n, cases[i].want);
    }
    {
        struct sl_rule r;
        memset(&r, 0, sizeof(r));
        r.pattern = (char *)(uintptr_t) "a_long_pattern";
        assert_int_equal(sl_match_search_query(&r, out, 8), 0); /* does not fit */
        assert_string_equal(out, "");
    }
}

/* Rules on fields (issue 16): where on JSON leaves and logfmt fields, a where-only rule,
 * group_by a field, and the alert link of a where-only rule. */
static void test_fields_rules(void **state)
{
    static const char json[] =
        "{\"destinations\":{\"d\":{\"type\":\"slack\",\"url\":\"https://hooks.example.com/x\"}},"
        "\"rules\":["
        "{\"name\":\"slow\",\"where\":{\"level\":\"error\",\"latency_ms\":\">1000\"},"
        "\"group_by\":\"user.id\",\"notify\":[\"d\"]},"
        "{\"name\":\"charge\",\"pattern\":\"charge\",\"where\":{\"env\":\"!=staging\"},"
        "\"group_by\":\"field:route\",\"notify\":[\"d\"]},"
        "{\"name\":\"h12\",\"where\":\"code:H1? status:=503\",\"notify\":[\"d\"]}]}";
    static const struct {
        const char *msg;
        const char *hits; /* "rule=group;..." */
    } cases[] = {
        {"{\"level\":\"error\",\"msg\":\"charge failed\",\"user\":{\"id\":42},\"latency_ms\":1834,"
         "\"route\":\"/charge\",\"env\":\"prod\"}",
         "0=42;1=/charge;"},
        {"2026-12-07 ERROR {\"level\":\"error\",\"latency_ms\":999,\"user\":{\"id\":7}}", ""},
        {"{\"level\":\"error\",\"latency_ms\":\"2000\",\"user\":{\"id\":\"u-9\"}}", "0=u-9;"},
        {"{\"level\":\"error\",\"latency_ms\":1e4}", "0=;"}, /* no user.id: empty group */
        {"{\"level\":\"info\",\"level\":\"error\",\"latency_ms\":5000,\"user\":{\"id\":1}}",
         "0=1;"}, /* the last duplicate wins */
        {"{\"level\":\"error\",\"level\":\"info\",\"latency_ms\":5000}", ""},
        {"{\"msg\":\"charge\",\"env\":\"staging\",\"route\":\"/x\"}", ""},
        {"charge ok route=/pay env=prod", "1=/pay;"},
        {"at=error code=H12 status=503", "2=;"},
        {"at=error code=H12 status=200", ""},
        {"{\"level\":\"error\",\"latency_ms\":5000", ""}, /* cut: text, never a failure */
    };
    struct sl_ruleset *rs = NULL;
    struct sl_matcher *m = NULL;
    struct sl_buf errs;
    char out[256];

    (void)state;
    sl_buf_init(&errs, 4096);
    if (sl_ruleset_parse(json, sizeof(json) - 1, false, &rs, &errs) != 0)
        fail_msg("parse: %.*s", (int)errs.len, errs.p);
    assert_int_equal(rs->rules[0].group_by, SL_GROUP_FIELD);
    assert_null(rs->rules[0].pattern);
    assert_int_equal(rs->rules[0].nwhere, 2);
    assert_int_equal(sl_matcher_new(rs, NULL, NULL, NULL, &m, &errs), 0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sl_match_line line = {1, SL_STR_NULL, SL_STR_NULL,
                                     sl_str_make(cases[i].msg, strlen(cases[i].msg))};
        struct sl_match_hit hits[8];
        size_t nh = sl_matcher_run(m, &line, hits, 8), w = 0;
        for (size_t k = 0; k < nh; k++)
            w += (size_t)snprintf(out + w, sizeof(out) - w, "%u=%.*s;", hits[k].rule,
                                  (int)hits[k].group.len, hits[k].group.p ? hits[k].group.p : "");
        out[w] = '\0';
        if (strcmp(out, cases[i].hits) != 0)
            fail_msg("case %zu %s: hits %s, want %s", i, cases[i].msg, out, cases[i].hits);
    }
    /* the alert link of a where-only rule: its conditions as query terms */
    assert_int_equal(sl_match_search_query(&rs->rules[0], out, sizeof(out)),
                     strlen("level:\"error\" latency_ms:>1000"));
    assert_string_equal(out, "level:\"error\" latency_ms:>1000");
    /* a rule with a pattern and where: both */
    assert_string_equal((sl_match_search_query(&rs->rules[1], out, sizeof(out)), out),
                        "/charge/ env:!=\"staging\"");
    /* and a rule written back reads the same */
    {
        char *j = sl_rule_to_json(&rs->rules[0]);
        assert_non_null(j);
        assert_non_null(strstr(j, "\"where\":{\"level\":\"error\",\"latency_ms\":\">1000\"}"));
        assert_non_null(strstr(j, "\"group_by\":\"field:user.id\""));
        free(j);
    }
    sl_matcher_free(m);
    sl_ruleset_free(rs);
    sl_buf_free(&errs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_literals),
        cmocka_unit_test(test_literal_cap),
        cmocka_unit_test(test_glob),
        cmocka_unit_test(test_match_table),
        cmocka_unit_test(test_match_table_no_prefilter),
        cmocka_unit_test(test_max_hits_and_stats),
        cmocka_unit_test(test_catastrophic_bounded),
        cmocka_unit_test(test_catastrophic_small_jit_stack),
        cmocka_unit_test(test_bad_pattern),
        cmocka_unit_test(test_empty_ruleset),
        cmocka_unit_test(test_prefilter_equivalence),
        cmocka_unit_test(test_prefilter_long_literals),
        cmocka_unit_test(test_prefilter_rare_window),
        cmocka_unit_test(test_prefilter_too_big),
        cmocka_unit_test(test_matcher_new_errors),
        cmocka_unit_test(test_match_limits_given),
        cmocka_unit_test(test_env_knob),
        cmocka_unit_test(test_search_query_table),
        cmocka_unit_test(test_fields_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
