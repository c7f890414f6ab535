/* Unit tests for rules/ruleset.c (include/sluice/ruleset.h): the docs/alerts.md example
 * with its defaults, one table row per error class (each its own cmocka test), several
 * errors at once, *_env resolution, the Heroku pack (expansion, and its patterns
 * against the sample lines of the Heroku reference), the to_json round trip and
 * `rules check`, and each validator at its limits (the longest value accepted, one byte
 * more refused).
 *
 * JSON in the tables is written with ' for " (q() swaps them back) to stay readable. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <cjson/cJSON.h>
#include <pcre2.h>

#include "sluice/buf.h"
#include "sluice/err.h"
#include "sluice/rule.h"
#include "sluice/ruleset.h"

#define SECRET32 "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define SECRET16 "whsec_AAECAwQFBgcICQoLDA0ODw=="
#define SECRET65                                                                                   \
    "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+"   \
    "P0A="
#define SECRET64_NOPAD                                                                             \
    "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+"   \
    "Pw"

/* 24 bytes: whsec_ and 32 base64 characters, no padding */
#define SECRET24 "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYX"
#define C16 "aaaaaaaaaaaaaaaa"
#define C64 C16 C16 C16 C16
#define C256 C64 C64 C64 C64
#define C1024 C256 C256 C256 C256

/* The example of docs/alerts.md, verbatim. */
static const char example[] =
    "{\n"
    "  \"destinations\": {\n"
    "    \"oncall\": {\"type\": \"webhook\", \"url\": \"https://hooks.example.com/sluice\", "
    "\"secret_env\": \"ONCALL_SECRET\"},\n"
    "    \"chat\":   {\"type\": \"slack\", \"url_env\": \"SLACK_WEBHOOK_URL\"},\n"
    "    \"pager\":  {\"type\": \"pagerduty\", \"routing_key_env\": \"PD_ROUTING_KEY\"},\n"
    "    \"legacy\": {\"type\": \"papertrail\", \"url\": "
    "\"https://tools.example.com/papertrail-hook\"}\n"
    "  },\n"
    "  \"rules\": [\n"
    "    {\"name\": \"h12-burst\", \"pattern\": \"code=H12\", \"app\": \"heroku\", \"procid\": "
    "\"router\",\n"
    "     \"condition\": \"threshold\", \"count\": 10, \"window\": 60, \"group_by\": \"source\",\n"
    "     \"cooldown\": 300, \"resolve_after\": 300, \"severity\": \"critical\", \"notify\": "
    "[\"pager\", \"chat\"]},\n"
    "    {\"name\": \"worker-db-errors\", \"pattern\": "
    "\"(?<error>OperationalError|InterfaceError)\",\n"
    "     \"procid\": \"worker.*\", \"condition\": \"match\", \"group_by\": \"error\", "
    "\"cooldown\": 600,\n"
    "     \"severity\": \"error\", \"notify\": [\"oncall\"]},\n"
    "    {\"name\": \"billing-quiet\", \"pattern\": \"at=info\", \"sources\": [\"billing\"],\n"
    "     \"condition\": \"absence\", \"window\": 900, \"severity\": \"warning\", \"notify\": "
    "[\"chat\"]}\n"
    "  ],\n"
    "  \"packs\": {\"heroku\": {\"sources\": [\"billing\", \"shop\"], \"notify\": [\"pager\"]}}\n"
    "}\n";

#define PD_KEY "R0123456789abcdef0123456789abcde"
#define SLACK_URL "https://hooks.slack.com/services/T000/B000/XXXX"

static void set_example_env(void)
{
    setenv("ONCALL_SECRET", SECRET32, 1);
    setenv("SLACK_WEBHOOK_URL", SLACK_URL, 1);
    setenv("PD_ROUTING_KEY", PD_KEY, 1);
}

/* s with every ' turned into ". Caller frees. */
static char *q(const char *s)
{
    char *p = strdup(s), *c;
    assert_non_null(p);
    for (c = p; *c != '\0'; c++)
        if (*c == '\'')
            *c = '"';
    return p;
}

/* Parses text (' for "), returns the result code; errors NUL-terminated in *errs. */
static int parse(const char *text, bool resolve, struct sl_ruleset **rs, struct sl_buf *errs)
{
    char *json = q(text);
    int rc;
    sl_buf_init(errs, 64 * 1024);
    rc = sl_ruleset_parse(json, strlen(json), resolve, rs, errs);
    free(json);
    assert_int_equal(sl_buf_addc(errs, '\0'), 0);
    return rc;
}

/* parse() that must succeed; shows the errors when it does not. */
static struct sl_ruleset *parse_ok(const char *text, bool resolve)
{
    struct sl_ruleset *rs = NULL;
    struct sl_buf errs;
    if (parse(text, resolve, &rs, &errs) != 0)
        fail_msg("parse failed:\n%s", errs.p);
    sl_buf_free(&errs);
    return rs;
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s != '\0'; s++)
        n += *s == '\n';
    return n;
}

static const struct sl_rule *find_rule(const struct sl_ruleset *rs, const char *name)
{
    size_t i;
    for (i = 0; i < rs->nrules; i++)
        if (strcmp(rs->rules[i].name, name) == 0)
            return &rs->rules[i];
    return NULL;
}

static const struct sl_destination *find_dest(const struct sl_ruleset *rs, const char *name)
{
    size_t i;
    for (i = 0; i < rs->ndests; i++)
        if (strcmp(rs->dests[i].name, name) == 0)
            return &rs->dests[i];
    return NULL;
}

/* ---- the example ------------------------------------------------------------------ */

static void test_example(void **state)
{
    struct sl_ruleset *rs = NULL;
    struct sl_buf errs;
    const struct sl_rule *r;
    const struct sl_destination *d;
    size_t i;
    (void)state;

    set_example_env();
    sl_buf_init(&errs, 4096);
    assert_int_equal(sl_ruleset_parse(example, strlen(example), true, &rs, &errs), 0);
    assert_int_equal(errs.len, 0);
    assert_non_null(rs);
    assert_int_equal(rs->ndests, 4);
    assert_int_equal(rs->nrules, 3 + 8);

    r = &rs->rules[0];
    assert_string_equal(r->name, "h12-burst");
    assert_string_equal(r->pattern, "code=H12");
    assert_null(r->exclude);
    assert_false(r->caseless);
    assert_int_equal(r->nsources, 0);
    assert_string_equal(r->app, "heroku");
    assert_string_equal(r->procid, "router");
    assert_int_equal(r->condition, SL_COND_THRESHOLD);
    assert_int_equal(r->count, 10);
    assert_int_equal(r->window, 60);
    assert_int_equal(r->group_by, SL_GROUP_SOURCE);
    assert_null(r->group_capture);
    assert_int_equal(r->cooldown, 300);
    assert_int_equal(r->resolve_after, 300);
    assert_int_equal(r->severity, SL_SEV_CRITICAL);
    assert_int_equal(r->nnotify, 2);
    assert_string_equal(r->notify[0], "pager");
    assert_string_equal(r->notify[1], "chat");
    assert_null(r->pack);

    r = &rs->rules[1];
    assert_string_equal(r->name, "worker-db-errors");
    assert_null(r->app);
    assert_string_equal(r->procid, "worker.*");
    assert_int_equal(r->condition, SL_COND_MATCH);
    assert_int_equal(r->count, 0);
    assert_int_equal(r->window, 0);
    assert_int_equal(r->group_by, SL_GROUP_CAPTURE);
    assert_string_equal(r->group_capture, "error");
    assert_int_equal(r->cooldown, 600);
    assert_int_equal(r->resolve_after, 300); /* default */
    assert_int_equal(r->severity, SL_SEV_ERROR);
    assert_int_equal(r->nnotify, 1);
    assert_string_equal(r->notify[0], "oncall");

    r = &rs->rules[2];
    assert_string_equal(r->name, "billing-quiet");
    assert_int_equal(r->nsources, 1);
    assert_string_equal(r->sources[0], "billing");
    assert_int_equal(r->condition, SL_COND_ABSENCE);
    assert_int_equal(r->window, 900);
    assert_int_equal(r->group_by, SL_GROUP_SOURCE); /* absence groups are its sources */
    assert_int_equal(r->cooldown, 300);             /* default */
    assert_int_equal(r->resolve_after, 0);          /* resolves with the next match */
    assert_int_equal(r->severity, SL_SEV_WARNING);

    for (i = 3; i < rs->nrules; i++) {
        r = &rs->rules[i];
        assert_int_equal(strncmp(r->name, "heroku/", 7), 0);
        assert_string_equal(r->pack, "heroku");
        assert_int_equal(r->nsources, 2);
        assert_string_equal(r->sources[0], "billing");
        assert_string_equal(r->sources[1], "shop");
        assert_int_equal(r->nnotify, 1);
        assert_string_equal(r->notify[0], "pager");
        assert_string_equal(r->app, "heroku");
    }

    d = find_dest(rs, "oncall");
    assert_non_null(d);
    assert_int_equal(d->type, SL_DEST_WEBHOOK);
    assert_string_equal(d->url, "https://hooks.example.com/sluice");
    assert_null(d->url_env);
    assert_string_equal(d->secret, SECRET32);
    assert_string_equal(d->secret_env, "ONCALL_SECRET");
    assert_null(d->routing_key);

    d = find_dest(rs, "chat");
    assert_non_null(d);
    assert_int_equal(d->type, SL_DEST_SLACK);
    assert_string_equal(d->url, SLACK_URL);
    assert_string_equal(d->url_env, "SLACK_WEBHOOK_URL");
    assert_null(d->secret);

    d = find_dest(rs, "pager");
    assert_non_null(d);
    assert_int_equal(d->type, SL_DEST_PAGERDUTY);
    assert_string_equal(d->url, "https://events.pagerduty.com");
    assert_null(d->url_env);
    assert_string_equal(d->routing_key, PD_KEY);
    assert_string_equal(d->routing_key_env, "PD_ROUTING_KEY");

    d = find_dest(rs, "legacy");
    assert_non_null(d);
    assert_int_equal(d->type, SL_DEST_PAPERTRAIL);
    assert_string_equal(d->url, "https://tools.example.com/papertrail-hook");

    sl_ruleset_free(rs);
    sl_buf_free(&errs);
}

/* Without resolve_env the references are kept and nothing is read. */
static void test_example_unresolved(void **state)
{
    struct sl_ruleset *rs = NULL;
    struct sl_buf errs;
    const struct sl_destination *d;
    (void)state;

    unsetenv("ONCALL_SECRET");
    unsetenv("SLACK_WEBHOOK_URL");
    unsetenv("PD_ROUTING_KEY");
    sl_buf_init(&errs, 4096);
    assert_int_equal(sl_ruleset_parse(example, strlen(example), false, &rs, &errs), 0);
    d = find_dest(rs, "chat");
    assert_null(d->url);
    assert_string_equal(d->url_env, "SLACK_WEBHOOK_URL");
    d = find_dest(rs, "oncall");
    assert_string_equal(d->url, "https://hooks.example.com/sluice");
    assert_null(d->secret);
    assert_string_equal(d->secret_env, "ONCALL_SECRET");
    d = find_dest(rs, "pager");
    assert_null(d->routing_key);
    assert_string_equal(d->routing_key_env, "PD_ROUTING_KEY");
    sl_ruleset_free(rs);

    /* The same file with resolve_env and no environment: three errors, one per variable. */
    rs = NULL;
    sl_buf_reset(&errs);
    assert_int_equal(sl_ruleset_parse(example, strlen(example), true, &rs, &errs), SL_EINVAL);
    assert_null(rs);
    assert_int_equal(sl_buf_addc(&errs, '\0'), 0);
    assert_int_equal(count_lines(errs.p), 3);
    assert_non_null(strstr(errs.p, "destination oncall: secret_env: environment variable "
                                   "ONCALL_SECRET is not set\n"));
    assert_non_null(strstr(errs.p, "destination chat: url_env: environment variable "
                                   "SLACK_WEBHOOK_URL is not set\n"));
    assert_non_null(strstr(errs.p, "destination pager: routing_key_env: environment variable "
                                   "PD_ROUTING_KEY is not set\n"));
    sl_buf_free(&errs);
}

/* A variable that is set but empty or malformed: named, and its value never shown. */
static void test_env_bad_values(void **state)
{
    struct sl_ruleset *rs = NULL;
    struct sl_buf errs;
    (void)state;

    set_example_env();
    setenv("SLACK_WEBHOOK_URL", "", 1);
    setenv("ONCALL_SECRET", "hunter2-not-a-webhook-secret", 1);
    setenv("PD_ROUTING_KEY", "has a space", 1);
    assert_int_equal(parse(example, true, &rs, &errs), SL_EINVAL);
    assert_int_equal(count_lines(errs.p), 3);
    assert_non_null(strstr(errs.p, "destination chat: url_env: environment variable "
                                   "SLACK_WEBHOOK_URL is empty\n"));
    assert_non_null(strstr(errs.p, "destination oncall: secret_env: environment variable "
                                   "ONCALL_SECRET: must start with \"whsec_\"\n"));
    assert_non_null(strstr(errs.p, "destination pager: routing_key_env: environment variable "
                                   "PD_ROUTING_KEY: must be printable ASCII"));
    assert_null(strstr(errs.p, "hunter2"));
    assert_null(strstr(errs.p, "has a space"));
    sl_buf_free(&errs);

    setenv("SLACK_WEBHOOK_URL", "ftp://hooks.slack.com/secret-path", 1);
    set_example_env();
    setenv("SLACK_WEBHOOK_URL", "ftp://hooks.slack.com/secret-path", 1);
    assert_int_equal(parse(example, true, &rs, &errs), SL_EINVAL);
    assert_string_equal(errs.p, "destination chat: url_env: environment variable "
                                "SLACK_WEBHOOK_URL: must be an http:// or https:// URL\n");
    sl_buf_free(&errs);
    set_example_env();
}

/* ---- one row per error class -------------------------------------------------------- */

struct err_case {
    const char *name;
    const char *json;   /* ' for " */
    const char *exp[3]; /* substrings of the error text */
    size_t nlines;      /* error lines expected */
};

#define DESTS                                                                                      \
    "'destinations':{'d':{'type':'slack','url':'https://hooks.example.com/x'},"                    \
    "'e':{'type':'webhook','url':'https://h.example.com/w'}}"
#define RULES(x) "{" DESTS ",'rules':[" x "]}"
#define OKR "'name':'r','pattern':'x','notify':['d']"
#define RULE(x) RULES("{" OKR "," x "}")
#define DEST(x) "{'destinations':{" x "}}"
#define PACK(x) "{" DESTS ",'packs':{" x "}}"

static struct err_case err_cases[] = {
    /* not const: cmocka's state is void * */
    /* the file */
    {"json_syntax", "{'rules': [}", {"rules file: invalid JSON near byte 11\n"}, 1},
    {"json_trailing", "{} x", {"rules file: invalid JSON near byte 3\n"}, 1},
    {"json_empty", "", {"rules file: invalid JSON near byte 0\n"}, 1},
    {"not_object", "[]", {"rules file: must be a JSON object\n"}, 1},
    {"top_unknown",
     "{'rule':[]}",
     {"rules file: rule: unknown field (did you mean \"rules\"?)\n"},
     1},
    {"nul_escape",
     RULES("{'name':'r','pattern':'a\\u0000b','notify':['d']}"),
     {"rules file: \\u0000 in a string at byte "},
     1},
    {"control_char",
     "{'rules':[{'name':'r\t'}]}",
     {"rules file: control character in a string at byte 20\n"},
     1},
    {"rules_not_array", "{'rules':{}}", {"rules file: rules: must be an array of rules\n"}, 1},
    {"dests_not_object",
     "{'destinations':[]}",
     {"rules file: destinations: must be an object of named destinations\n"},
     1},
    /* rules */
    {"rule_not_object", "{'rules':[5]}", {"rule #1: must be an object\n"}, 1},
    {"name_missing", RULES("{'pattern':'x','notify':['d']}"), {"rule #1: name: required\n"}, 1},
    {"name_invalid",
     RULES("{'name':'-bad','pattern':'x','notify':['d']}"),
     {"rule #1: name: \"-bad\" is not valid"},
     1},
    {"name_too_long",
     RULES("{'name':'a234567890123456789012345678901234567890123456789012345678901234',"
           "'pattern':'x','notify':['d']}"),
     {"rule #1: name: \"a2345"},
     1},
    {"name_duplicate",
     RULES("{" OKR "},{" OKR "}"),
     {"rule r: name: given to more than one rule (rules #1 and #2)\n"},
     1},
    {"field_twice", RULES("{" OKR ",'name':'r'}"), {"rule r: name: given twice\n"}, 1},
    {"field_unknown",
     RULE("'conditon':'match'"),
     {"rule r: conditon: unknown field (did you mean \"condition\"?)\n"},
     1},
    {"field_unknown_far", RULE("'zzzzzzzz':1"), {"rule r: zzzzzzzz: unknown field\n"}, 1},
    {"field_wrong_case",
     RULE("'Severity':'info'"),
     {"rule r: Severity: unknown field (did you mean \"severity\"?)\n"},
     1},
    {"pattern_missing", RULES("{'name':'r','notify':['d']}"), {"rule r: pattern: required\n"}, 1},
    {"pattern_empty",
     RULES("{'name':'r','pattern':'','notify':['d']}"),
     {"rule r: pattern: must not be empty"},
     1},
    {"pattern_type",
     RULES("{'name':'r','pattern':5,'notify':['d']}"),
     {"rule r: pattern: must be a string\n"},
     1},
    {"pattern_regex",
     RULES("{'name':'r','pattern':'a(b','notify':['d']}"),
     {"rule r: pattern: missing closing parenthesis at offset 3\n"},
     1},
    {"pattern_regex_mid",
     RULES("{'name':'db','pattern':'ab)c','notify':['d']}"),
     {"rule db: pattern: ", " at offset 2\n"},
     1},
    {"exclude_regex",
     RULE("'exclude':'[z'"),
     {"rule r: exclude: missing terminating ] for character class at offset 2\n"},
     1},
    {"flags", RULE("'flags':'x'"), {"rule r: flags: must be \"i\""}, 1},
    {"condition",
     RULE("'condition':'often'"),
     {"rule r: condition: must be match, threshold or absence\n"},
     1},
    {"count_missing",
     RULE("'condition':'threshold','window':60"),
     {"rule r: count: required for threshold rules\n"},
     1},
    {"count_zero",
     RULE("'condition':'threshold','count':0,'window':60"),
     {"rule r: count: must be between 1 and 10000\n"},
     1},
    {"count_big",
     RULE("'condition':'threshold','count':10001,'window':60"),
     {"rule r: count: must be between 1 and 10000\n"},
     1},
    {"count_fraction",
     RULE("'condition':'threshold','count':1.5,'window':60"),
     {"rule r: count: must be a whole number\n"},
     1},
    {"count_string",
     RULE("'condition':'threshold','count':'10','window':60"),
     {"rule r: count: must be a number\n"},
     1},
    {"count_on_match", RULE("'count':3"), {"rule r: count: only for threshold rules\n"}, 1},
    {"window_missing_threshold",
     RULE("'condition':'threshold','count':3"),
     {"rule r: window: required for threshold rules\n"},
     1},
    {"window_missing_absence",
     RULE("'condition':'absence'"),
     {"rule r: window: required for absence rules\n"},
     1},
    {"window_zero",
     RULE("'condition':'absence','window':0"),
     {"rule r: window: must be between 1 and 604800\n"},
     1},
    {"window_big",
     RULE("'condition':'absence','window':604801"),
     {"rule r: window: must be between 1 and 604800\n"},
     1},
    {"window_on_match",
     RULE("'window':60"),
     {"rule r: window: only for threshold and absence rules\n"},
     1},
    {"cooldown_negative",
     RULE("'cooldown':-1"),
     {"rule r: cooldown: must be between 0 and 604800\n"},
     1},
    {"resolve_after_type",
     RULE("'resolve_after':'5m'"),
     {"rule r: resolve_after: must be a number\n"},
     1},
    {"resolve_after_absence",
     RULE("'condition':'absence','window':60,'resolve_after':60"),
     {"rule r: resolve_after: not for absence rules"},
     1},
    {"group_by_absence",
     RULE("'condition':'absence','window':60,'group_by':'procid'"),
     {"rule r: group_by: absence rules group by source only\n"},
     1},
    {"group_by_no_capture",
     RULE("'group_by':'err'"),
     {"rule r: group_by: pattern has no capture group named \"err\"\n"},
     1},
    /* fields (issue 16) */
    {"where_not_object", RULE("'where':['level:error']"),
     {"rule r: where: must be an object of field: condition, or field terms\n"}, 1},
    {"where_terms_or", RULE("'where':'level:error OR x'"),
     {"rule r: where: \"OR x\": terms are field:value (AND only)\n"}, 1},
    {"where_terms_negation", RULE("'where':'-env:staging'"),
     {"rule r: where: \"-env:staging\": terms are field:value (AND only)\n"}, 1},
    {"where_terms_empty", RULE("'where':'  '"), {"rule r: where: needs 1-16 conditions\n"}, 1},
    {"where_terms_bad", RULE("'where':'latency_ms:>slow'"),
     {"rule r: where: latency_ms: <, <=, >, >= need a number\n"}, 1},
    {"where_empty", RULE("'where':{}"), {"rule r: where: needs 1-16 conditions\n"}, 1},
    {"where_bad_op", RULE("'where':{'latency_ms':'>slow'}"),
     {"rule r: where: latency_ms: <, <=, >, >= need a number\n"}, 1},
    {"where_bad_value", RULE("'where':{'a':[1]}"),
     {"rule r: where: a: a string, number or boolean\n"}, 1},
    {"where_bad_key", RULE("'where':{'a b':'x'}"),
     {"rule r: where: a b: a field name holds no space, control byte or quote\n"}, 1},
    {"no_pattern_no_where", RULES("{'name':'r','notify':['d']}"),
     {"rule r: pattern: required\n"}, 1},
    {"capture_without_pattern", RULES("{'name':'r','notify':['d'],'where':{'a':'b'},'group_by':'g'}"),
     {"rule r: group_by: a capture group needs a pattern (a field: \"field:g\")\n"}, 1},
    {"group_by_bad_field", RULE("'group_by':'field:a b'"),
     {"rule r: group_by: field a b: a field name holds no space, control byte or quote\n"}, 1},
    {"group_by_bad_name",
     RULE("'group_by':'bad-name'"),
     {"rule r: group_by: \"bad-name\" is not source, procid or a capture group name\n"},
     1},
    {"severity",
     RULE("'severity':'fatal'"),
     {"rule r: severity: must be info, warning, error or critical\n"},
     1},
    {"notify_missing",
     RULES("{'name':'r','pattern':'x'}"),
     {"rule r: notify: required (destination names)\n"},
     1},
    {"notify_empty",
     RULES("{'name':'r','pattern':'x','notify':[]}"),
     {"rule r: notify: needs at least one destination\n"},
     1},
    {"notify_unknown",
     RULES("{'name':'r','pattern':'x','notify':['d','nope']}"),
     {"rule r: notify: no destination named \"nope\"\n"},
     1},
    {"notify_twice",
     RULES("{'name':'r','pattern':'x','notify':['d','d']}"),
     {"rule r: notify: \"d\" given twice\n"},
     1},
    {"notify_string",
     RULES("{'name':'r','pattern':'x','notify':'d'}"),
     {"rule r: notify: must be an array of names\n"},
     1},
    {"notify_too_many",
     RULES("{'name':'r','pattern':'x','notify':['d','e','d1','d2','d3','d4','d5','d6','d7']}"),
     {"rule r: notify: more than 8 names\n"},
     1},
    {"sources_bad",
     RULE("'sources':['bad name']"),
     {"rule r: sources: \"bad name\" is not a valid source name\n"},
     1},
    {"sources_twice", RULE("'sources':['a','a']"), {"rule r: sources: \"a\" given twice\n"}, 1},
    {"app_glob", RULE("'app':'has space'"), {"rule r: app: must be 1-128 printable"}, 1},
    {"procid_empty", RULE("'procid':''"), {"rule r: procid: must be 1-128 printable"}, 1},
    {"pack_field", RULE("'pack':'aws'"), {"rule r: pack: must be \"heroku\"\n"}, 1},
    /* destinations */
    {"dest_not_object", DEST("'x':5"), {"destination x: must be an object\n"}, 1},
    {"dest_type_missing",
     DEST("'x':{'url':'https://a.example'}"),
     {"destination x: type: required"},
     1},
    {"dest_type_bad",
     DEST("'x':{'type':'email'}"),
     {"destination x: type: must be webhook, slack, pagerduty or papertrail\n"},
     1},
    {"dest_name_bad",
     DEST("'-x':{'type':'slack','url':'https://a.example'}"),
     {"destination #1: name: \"-x\" is not valid"},
     1},
    {"dest_twice",
     DEST("'x':{'type':'slack','url':'https://a.example'},'x':{'type':'slack','url':'https://b'}"),
     {"rules file: destinations: \"x\" given twice\n"},
     1},
    {"dest_unknown_field",
     DEST("'x':{'type':'slack','uri':'https://a.example'}"),
     {"destination x: uri: unknown field (did you mean \"url\"?)\n",
      "destination x: url: required (url or url_env)\n"},
     2},
    {"url_scheme",
     DEST("'x':{'type':'slack','url':'ftp://a.example/secret'}"),
     {"destination x: url: must be an http:// or https:// URL\n"},
     1},
    {"url_no_host",
     DEST("'x':{'type':'papertrail','url':'https:///path'}"),
     {"destination x: url: URL has no host\n"},
     1},
    {"url_space",
     DEST("'x':{'type':'slack','url':'https://a.example/a b'}"),
     {"destination x: url: URL contains spaces or control characters\n"},
     1},
    {"url_missing",
     DEST("'x':{'type':'webhook'}"),
     {"destination x: url: required (url or url_env)\n"},
     1},
    {"url_both",
     DEST("'x':{'type':'slack','url':'https://a.example','url_env':'X'}"),
     {"destination x: url_env: give url or url_env, not both\n"},
     1},
    {"env_name_bad",
     DEST("'x':{'type':'slack','url_env':'1BAD'}"),
     {"destination x: url_env: must be an environment variable name"},
     1},
    {"env_unset",
     DEST("'x':{'type':'slack','url_env':'SLUICE_TEST_UNSET_VAR'}"),
     {"destination x: url_env: environment variable SLUICE_TEST_UNSET_VAR is not set\n"},
     1},
    {"secret_prefix",
     DEST("'x':{'type':'webhook','url':'https://"
          "a.example','secret':'abcdefabcdefabcdefabcdefabcdef'}"),
     {"destination x: secret: must start with \"whsec_\"\n"},
     1},
    {"secret_short",
     DEST("'x':{'type':'webhook','url':'https://a.example','secret':'" SECRET16 "'}"),
     {"destination x: secret: must decode to 24-64 bytes\n"},
     1},
    {"secret_long",
     DEST("'x':{'type':'webhook','url':'https://a.example','secret':'" SECRET65 "'}"),
     {"destination x: secret: must decode to 24-64 bytes\n"},
     1},
    {"secret_not_base64",
     DEST("'x':{'type':'webhook','url':'https://"
          "a.example','secret':'whsec_!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!'}"),
     {"destination x: secret: must be \"whsec_\" followed by base64\n"},
     1},
    {"secret_on_slack",
     DEST("'x':{'type':'slack','url':'https://a.example','secret':'" SECRET32 "'}"),
     {"destination x: secret: not used by slack destinations\n"},
     1},
    {"routing_key_missing",
     DEST("'x':{'type':'pagerduty'}"),
     {"destination x: routing_key: required (routing_key or routing_key_env)\n"},
     1},
    {"routing_key_on_webhook",
     DEST("'x':{'type':'webhook','url':'https://a.example','routing_key':'abc'}"),
     {"destination x: routing_key: not used by webhook destinations\n"},
     1},
    /* validators */
    {"sources_first_byte",
     RULE("'sources':['-billing']"),
     {"rule r: sources: \"-billing\" is not a valid source name\n"},
     1},
    {"sources_slash",
     RULE("'sources':['shop/eu']"),
     {"rule r: sources: \"shop/eu\" is not a valid source name\n"},
     1},
    {"sources_too_long",
     RULE("'sources':['a23456789012345678901234567890123456789012345678901234567890123x']"),
     {"rule r: sources: \"a23456789012345678901234567890123456789012345678901234567890123...\" is "
      "not a valid source name\n"},
     1},
    {"sources_not_string",
     RULE("'sources':['a',5]"),
     {"rule r: sources: must be an array of names\n"},
     1},
    {"env_name_bad_char",
     DEST("'x':{'type':'slack','url_env':'SLACK-URL'}"),
     {"destination x: url_env: must be an environment variable name"},
     1},
    {"env_name_too_long",
     DEST("'x':{'type':'slack','url_env':'"
          "EEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEE"
          "EEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEX'}"),
     {"destination x: url_env: must be an environment variable name"},
     1},
    {"env_name_longest",
     DEST("'x':{'type':'slack','url_env':'"
          "EEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEE"
          "EEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEE'}"),
     {"destination x: url_env: environment variable "
      "EEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEE"
      "EEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEE is not set\n"},
     1},
    {"env_name_underscore",
     DEST("'x':{'type':'slack','url_env':'_SLUICE_TEST_UNSET_VAR'}"),
     {"destination x: url_env: environment variable _SLUICE_TEST_UNSET_VAR is not set\n"},
     1},
    {"env_name_empty",
     DEST("'x':{'type':'slack','url_env':''}"),
     {"destination x: url_env: must not be empty\n"},
     1},
    {"url_not_string",
     DEST("'x':{'type':'slack','url':5}"),
     {"destination x: url: must be a string\n"},
     1},
    {"url_too_long",
     DEST("'x':{'type':'slack','url':'https://a.example/" C1024 C1024 "'}"),
     {"destination x: url: longer than 2048 bytes\n"},
     1},
    {"group_by_digit_first",
     RULE("'group_by':'1err'"),
     {"rule r: group_by: \"1err\" is not source, procid or a capture group name\n"},
     1},
    {"group_by_too_long",
     RULES("{'name':'r','pattern':'(?<g2345678901234567890123456789012>x)','notify':['d'],'group_"
           "by':'g2345678901234567890123456789012x'}"),
     {"rule r: group_by: \"g2345678901234567890123456789012...\" is not source, procid or a "
      "capture group name\n"},
     1},
    {"group_by_empty",
     RULE("'group_by':''"),
     {"rule r: group_by: \"\" is not source, procid or a capture group name\n"},
     1},
    {"secret_pad_misplaced",
     DEST("'x':{'type':'webhook','url':'https://a.example','secret':'" SECRET24 "='}"),
     {"destination x: secret: must be \"whsec_\" followed by base64\n"},
     1},
    {"secret_pad_one_short",
     DEST("'x':{'type':'webhook','url':'https://a.example','secret':'" SECRET24 "AA='}"),
     {"destination x: secret: must be \"whsec_\" followed by base64\n"},
     1},
    {"secret_pad_three",
     DEST("'x':{'type':'webhook','url':'https://a.example','secret':'" SECRET24 "A==='}"),
     {"destination x: secret: must be \"whsec_\" followed by base64\n"},
     1},
    {"secret_one_char_over",
     DEST("'x':{'type':'webhook','url':'https://a.example','secret':'" SECRET24 "A'}"),
     {"destination x: secret: must be \"whsec_\" followed by base64\n"},
     1},
    {"secret_pad_inside",
     DEST("'x':{'type':'webhook','url':'https://a.example','secret':'" SECRET24 "AA==AAAA'}"),
     {"destination x: secret: must be \"whsec_\" followed by base64\n"},
     1},
    {"field_unknown_long",
     RULE("'severityseverityseverityseverityseverityseverity':'info'"),
     {"rule r: severityseverityseverityseverityseverity...: unknown field\n"},
     1},
    {"field_unknown_two_bytes", RULE("'nm':'x'"), {"rule r: nm: unknown field\n"}, 1},
    {"field_unknown_three_bytes",
     RULE("'nam':'x'"),
     {"rule r: nam: unknown field (did you mean \"name\"?)\n"},
     1},
    {"name_empty",
     RULES("{'name':'','pattern':'x','notify':['d']}"),
     {"rule #1: name: must not be empty\n"},
     1},
    {"names_missing_twice",
     RULES("{'pattern':'x','notify':['d']},{'pattern':'y','notify':['d']}"),
     {"rule #1: name: required\n", "rule #2: name: required\n"},
     2},
    {"packs_not_object", "{'packs':[]}", {"rules file: packs: must be an object\n"}, 1},
    {"pack_twice",
     PACK("'heroku':{'notify':['d']},'heroku':{'notify':['e']}"),
     {"rules file: packs: \"heroku\" given twice\n"},
     1},
    {"pack_not_object", PACK("'heroku':5"), {"pack heroku: must be an object\n"}, 1},
    /* packs */
    {"pack_unknown",
     PACK("'aws':{'notify':['d']}"),
     {"rules file: packs: unknown pack \"aws\" (known: heroku)\n"},
     1},
    {"pack_notify_missing",
     PACK("'heroku':{'sources':['billing']}"),
     {"pack heroku: notify: required (destination names)\n"},
     1},
    {"pack_notify_unknown",
     PACK("'heroku':{'notify':['zz']}"),
     {"pack heroku: notify: no destination named \"zz\"\n"},
     1},
    {"pack_field_unknown",
     PACK("'heroku':{'notify':['d'],'source':['x']}"),
     {"pack heroku: source: unknown field (did you mean \"sources\"?)\n"},
     1},
    {"pack_name_taken",
     "{" DESTS ",'rules':[{'name':'heroku/dyno-crashed','pattern':'x','notify':['d']}],"
     "'packs':{'heroku':{'notify':['d']}}}",
     {"rule heroku/dyno-crashed: name: given to more than one rule"},
     1},
};

static void test_error_case(void **state)
{
    const struct err_case *tc = *state;
    struct sl_ruleset *rs = (struct sl_ruleset *)(uintptr_t)1; /* must be reset to NULL */
    struct sl_buf errs;
    size_t i;

    unsetenv("SLUICE_TEST_UNSET_VAR");
    assert_int_equal(parse(tc->json, true, &rs, &errs), SL_EINVAL);
    assert_null(rs);
    for (i = 0; i < 3 && tc->exp[i] != NULL; i++) {
        if (strstr(errs.p, tc->exp[i]) == NULL)
            fail_msg("%s: expected \"%s\" in:\n%s", tc->name, tc->exp[i], errs.p);
    }
    if (tc->nlines != 0 && count_lines(errs.p) != tc->nlines)
        fail_msg("%s: expected %zu lines, got:\n%s", tc->name, tc->nlines, errs.p);
    sl_buf_free(&errs);
}

/* A NUL byte inside the given length. */
static void test_nul_byte(void **state)
{
    static const char text[] = "{\"rules\":[\0]}";
    struct sl_ruleset *rs = NULL;
    struct sl_buf errs;
    (void)state;

    sl_buf_init(&errs, 1024);
    assert_int_equal(sl_ruleset_parse(text, sizeof(text) - 1, true, &rs, &errs), SL_EINVAL);
    assert_int_equal(sl_buf_addc(&errs, '\0'), 0);
    assert_string_equal(errs.p, "rules file: NUL byte at byte 10\n");
    sl_buf_free(&errs);
}

/* Errors in several rules and destinations are all reported, in file order. */
static void test_several_errors(void **state)
{
    struct sl_ruleset *rs = NULL;
    struct sl_buf errs;
    const char *a, *b, *c, *d;
    (void)state;

    assert_int_equal(
        parse("{'destinations':{'d':{'type':'slack','url':'gopher://x'}},"
              "'rules':[{'name':'one','pattern':'(','notify':['d']},"
              "{'name':'two','pattern':'x','condition':'threshold','window':60,'notify':['d']},"
              "{'name':'three','pattern':'x','notify':['d'],'severty':'info'}]}",
              true, &rs, &errs),
        SL_EINVAL);
    assert_int_equal(count_lines(errs.p), 4);
    a = strstr(errs.p, "destination d: url: must be an http:// or https:// URL\n");
    b = strstr(errs.p, "rule one: pattern: missing closing parenthesis at offset 1\n");
    c = strstr(errs.p, "rule two: count: required for threshold rules\n");
    d = strstr(errs.p, "rule three: severty: unknown field (did you mean \"severity\"?)\n");
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_non_null(d);
    assert_true(a < b && b < c && c < d);
    sl_buf_free(&errs);
}

/* A small errors buffer: lines that do not fit are counted, not cut in half. */
static void test_errors_capped(void **state)
{
    struct sl_ruleset *rs = NULL;
    struct sl_buf errs;
    struct sl_buf big;
    size_t i;
    (void)state;

    sl_buf_init(&big, 1 << 20);
    assert_int_equal(sl_buf_addf(&big, "{\"rules\":["), 0);
    for (i = 0; i < 100; i++)
        assert_int_equal(
            sl_buf_addf(&big, "%s{\"name\":\"r%zu\",\"pattern\":\"(\"}", i ? "," : "", i), 0);
    assert_int_equal(sl_buf_addf(&big, "]}"), 0);
    sl_buf_init(&errs, 1024);
    assert_int_equal(sl_ruleset_parse(big.p, big.len, true, &rs, &errs), SL_EINVAL);
    assert_true(errs.len > 0 && errs.len <= 1024);
    assert_int_equal(errs.p[errs.len - 1], '\n');
    assert_int_equal(sl_buf_addc(&errs, '\0'), 0);
    assert_non_null(strstr(errs.p, "more errors not shown\n"));
    sl_buf_free(&errs);

    /* errors may be NULL */
    assert_int_equal(sl_ruleset_parse(big.p, big.len, true, &rs, NULL), SL_EINVAL);
    assert_null(rs);
    sl_buf_free(&big);
}

/* ---- defaults and accepted forms ---------------------------------------------------- */

static void test_defaults(void **state)
{
    struct sl_ruleset *rs = NULL;
    struct sl_buf errs;
    const struct sl_rule *r;
    const struct sl_destination *d;
    (void)state;

    assert_int_equal(
        parse("{'destinations':{'pd':{'type':'pagerduty','routing_key':'" PD_KEY "'},"
              "'pd2':{'type':'pagerduty','routing_key':'k','url':'https://pd.example.com'},"
              "'w':{'type':'webhook','url':'HTTP://w.example.com','secret':'" SECRET64_NOPAD "'}},"
              "'rules':[{'name':'m','pattern':'x','notify':['pd']},"
              "{'name':'t','pattern':'x','condition':'threshold','count':1,'window':1,"
              "'notify':['pd'],'flags':'i','group_by':'procid','resolve_after':0,'cooldown':0},"
              "{'name':'a.b_c/d-e','pattern':'x','condition':'absence','window':604800,"
              "'group_by':'source','notify':['w','pd2'],'flags':''}]}",
              true, &rs, &errs),
        0);
    r = find_rule(rs, "m");
    assert_int_equal(r->condition, SL_COND_MATCH);
    assert_int_equal(r->group_by, SL_GROUP_NONE);
    assert_int_equal(r->cooldown, 300);
    assert_int_equal(r->resolve_after, 300);
    assert_int_equal(r->severity, SL_SEV_ERROR);
    assert_false(r->caseless);
    r = find_rule(rs, "t");
    assert_true(r->caseless);
    assert_int_equal(r->group_by, SL_GROUP_PROCID);
    assert_int_equal(r->resolve_after, 0);
    assert_int_equal(r->cooldown, 0);
    r = find_rule(rs, "a.b_c/d-e");
    assert_non_null(r);
    assert_int_equal(r->window, 604800);
    assert_false(r->caseless);
    d = find_dest(rs, "pd");
    assert_string_equal(d->url, "https://events.pagerduty.com");
    d = find_dest(rs, "pd2");
    assert_string_equal(d->url, "https://pd.example.com");
    d = find_dest(rs, "w");
    assert_string_equal(d->secret, SECRET64_NOPAD);
    sl_ruleset_free(rs);
    sl_buf_free(&errs);

    /* An empty document is a valid, empty rule set. */
    rs = NULL;
    assert_int_equal(parse("{}", true, &rs, &errs), 0);
    assert_int_equal(rs->nrules, 0);
    assert_int_equal(rs->ndests, 0);
    sl_ruleset_free(rs);
    sl_buf_free(&errs);
}

/* ---- the Heroku pack ---------------------------------------------------------------- */

static void test_pack_text(void **state)
{
    cJSON *pack = cJSON_Parse(sl_ruleset_heroku_pack());
    cJSON *it;
    (void)state;

    assert_non_null(pack);
    assert_true(cJSON_IsArray(pack));
    assert_int_equal(cJSON_GetArraySize(pack), 8);
    cJSON_ArrayForEach(it, pack)
    {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(it, "name");
        assert_true(cJSON_IsString(name));
        assert_int_equal(strncmp(name->valuestring, "heroku/", 7), 0);
        assert_null(cJSON_GetObjectItemCaseSensitive(it, "notify"));
        assert_null(cJSON_GetObjectItemCaseSensitive(it, "sources"));
    }
    cJSON_Delete(pack);
}

struct pack_exp {
    const char *name;
    enum sl_condition cond;
    uint32_t count, window;
    enum sl_group_by group;
    enum sl_severity sev;
    const char *procid; /* NULL: any */
    const char *hit;    /* a Heroku line (MSG) the pattern must match */
};

static const struct pack_exp pack_exp[] = {
    {"heroku/h10-app-crashed", SL_COND_THRESHOLD, 3, 60, SL_GROUP_SOURCE, SL_SEV_CRITICAL, "router",
     "at=error code=H10 desc=\"App crashed\" method=GET path=\"/\" host=shop.herokuapp.com "
     "request_id=8601b555-6a83-4c12-8269-97c8e32cdb22 fwd=\"17.17.17.17\" dyno= connect= "
     "service= status=503 bytes= protocol=https"},
    {"heroku/h12-request-timeout", SL_COND_THRESHOLD, 10, 60, SL_GROUP_SOURCE, SL_SEV_ERROR,
     "router",
     "at=error code=H12 desc=\"Request timeout\" method=GET path=\"/\" host=shop.herokuapp.com "
     "dyno=web.1 connect=6ms service=30001ms status=503 bytes=0 protocol=https"},
    {"heroku/h13-connection-closed", SL_COND_THRESHOLD, 5, 60, SL_GROUP_SOURCE, SL_SEV_ERROR,
     "router",
     "at=error code=H13 desc=\"Connection closed without response\" method=POST path=\"/\" "
     "dyno=web.2 status=503"},
    {"heroku/r14-memory-quota-exceeded", SL_COND_MATCH, 0, 0, SL_GROUP_PROCID, SL_SEV_WARNING, NULL,
     "Error R14 (Memory quota exceeded)"},
    {"heroku/r15-memory-quota-vastly-exceeded", SL_COND_MATCH, 0, 0, SL_GROUP_PROCID,
     SL_SEV_CRITICAL, NULL, "Error R15 (Memory quota vastly exceeded)"},
    {"heroku/dyno-crashed", SL_COND_MATCH, 0, 0, SL_GROUP_PROCID, SL_SEV_ERROR, NULL,
     "State changed from up to crashed"},
    {"heroku/release-failed", SL_COND_MATCH, 0, 0, SL_GROUP_PROCID, SL_SEV_ERROR, "release.*",
     "Process exited with status 2"},
    {"heroku/l10-drain-buffer-overflow", SL_COND_MATCH, 0, 0, SL_GROUP_NONE, SL_SEV_WARNING,
     "logplex",
     "Error L10 (output buffer overflow): 12 messages dropped since "
     "2026-11-21T09:59:00+00:00."},
};

/* Heroku lines no pack rule may match. */
static const char *const pack_misses[] = {
    ("at=info method=GET path=\"/cart\" host=shop.herokuapp.com dyno=web.1 connect=1ms "
     "service=22ms status=304 bytes=656 protocol=https"),
    "State changed from starting to up",
    "Process exited with status 0",
    "Stopping all processes with SIGTERM",
    "at=error code=H120 desc=\"not a code\"",
    "Error R140",
};

static bool pattern_matches(const struct sl_rule *r, const char *line)
{
    int ec;
    PCRE2_SIZE off;
    pcre2_code *code =
        pcre2_compile((PCRE2_SPTR)r->pattern, PCRE2_ZERO_TERMINATED,
                      PCRE2_UTF | (r->caseless ? PCRE2_CASELESS : 0), &ec, &off, NULL);
    pcre2_match_data *md;
    int rc;
    assert_non_null(code);
    md = pcre2_match_data_create_from_pattern(code, NULL);
    rc = pcre2_match(code, (PCRE2_SPTR)line, strlen(line), 0, 0, md, NULL);
    pcre2_match_data_free(md);
    pcre2_code_free(code);
    return rc >= 0;
}

static void test_pack_expansion(void **state)
{
    struct sl_ruleset *rs = NULL;
    struct sl_buf errs;
    size_t i, j;
    (void)state;

    assert_int_equal(parse("{" DESTS ",'packs':{'heroku':{'sources':['billing','shop'],"
                           "'notify':['d','e']}}}",
                           true, &rs, &errs),
                     0);
    assert_int_equal(rs->nrules, sizeof(pack_exp) / sizeof(pack_exp[0]));
    for (i = 0; i < rs->nrules; i++) {
        const struct sl_rule *r = &rs->rules[i];
        const struct pack_exp *e = &pack_exp[i];
        assert_string_equal(r->name, e->name);
        assert_string_equal(r->pack, "heroku");
        assert_int_equal(r->condition, e->cond);
        assert_int_equal(r->count, e->count);
        assert_int_equal(r->window, e->window);
        assert_int_equal(r->group_by, e->group);
        assert_int_equal(r->severity, e->sev);
        assert_string_equal(r->app, "heroku");
        if (e->procid != NULL)
            assert_string_equal(r->procid, e->procid);
        else
            assert_null(r->procid);
        assert_int_equal(r->nsources, 2);
        assert_string_equal(r->sources[0], "billing");
        assert_string_equal(r->sources[1], "shop");
        assert_int_equal(r->nnotify, 2);
        assert_string_equal(r->notify[0], "d");
        assert_string_equal(r->notify[1], "e");
        /* Its line matches it and no other rule of the pack. */
        for (j = 0; j < rs->nrules; j++)
            if (pattern_matches(&rs->rules[j], e->hit) != (i == j))
                fail_msg("%s on \"%s\": %s", rs->rules[j].name, e->hit,
                         i == j ? "no match" : "unexpected match");
        for (j = 0; j < sizeof(pack_misses) / sizeof(pack_misses[0]); j++)
            if (pattern_matches(r, pack_misses[j]))
                fail_msg("%s matched \"%s\"", r->name, pack_misses[j]);
    }
    sl_ruleset_free(rs);
    sl_buf_free(&errs);

    /* Without sources the pack applies to every source. */
    rs = NULL;
    assert_int_equal(parse("{" DESTS ",'packs':{'heroku':{'notify':['d']}}}", true, &rs, &errs), 0);
    assert_int_equal(rs->rules[0].nsources, 0);
    sl_ruleset_free(rs);
    sl_buf_free(&errs);
}

/* ---- round trip ---------------------------------------------------------------------- */

static void assert_str_eq(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        assert_ptr_equal(a, b);
    else
        assert_string_equal(a, b);
}

static void assert_rule_eq(const struct sl_rule *a, const struct sl_rule *b)
{
    size_t i;
    assert_string_equal(a->name, b->name);
    assert_str_eq(a->pattern, b->pattern);
    assert_str_eq(a->exclude, b->exclude);
    assert_int_equal(a->caseless, b->caseless);
    assert_int_equal(a->nsources, b->nsources);
    for (i = 0; i < a->nsources; i++)
        assert_string_equal(a->sources[i], b->sources[i]);
    assert_str_eq(a->app, b->app);
    assert_str_eq(a->procid, b->procid);
    assert_int_equal(a->condition, b->condition);
    assert_int_equal(a->count, b->count);
    assert_int_equal(a->window, b->window);
    assert_int_equal(a->group_by, b->group_by);
    assert_str_eq(a->group_capture, b->group_capture);
    assert_int_equal(a->cooldown, b->cooldown);
    assert_int_equal(a->resolve_after, b->resolve_after);
    assert_int_equal(a->severity, b->severity);
    assert_int_equal(a->nnotify, b->nnotify);
    for (i = 0; i < a->nnotify; i++)
        assert_string_equal(a->notify[i], b->notify[i]);
    assert_str_eq(a->pack, b->pack);
}

static void assert_dest_eq(const struct sl_destination *a, const struct sl_destination *b)
{
    assert_string_equal(a->name, b->name);
    assert_int_equal(a->type, b->type);
    assert_str_eq(a->url, b->url);
    assert_str_eq(a->secret, b->secret);
    assert_str_eq(a->routing_key, b->routing_key);
    assert_str_eq(a->url_env, b->url_env);
    assert_str_eq(a->secret_env, b->secret_env);
    assert_str_eq(a->routing_key_env, b->routing_key_env);
}

/* Rebuilds a document from to_json as the lead does from PostgreSQL, parses it again
 * and compares. Returns the rebuilt text (caller frees). */
static char *round_trip(const struct sl_ruleset *rs, bool resolve)
{
    struct sl_buf doc, errs;
    struct sl_ruleset *rs2 = NULL;
    char *txt;
    size_t i;

    sl_buf_init(&doc, 1 << 20);
    assert_int_equal(sl_buf_addf(&doc, "{\"destinations\":{"), 0);
    for (i = 0; i < rs->ndests; i++) {
        txt = sl_dest_to_json(&rs->dests[i]);
        assert_non_null(txt);
        assert_int_equal(sl_buf_addf(&doc, "%s\"%s\":%s", i ? "," : "", rs->dests[i].name, txt), 0);
        free(txt);
    }
    assert_int_equal(sl_buf_addf(&doc, "},\"rules\":["), 0);
    for (i = 0; i < rs->nrules; i++) {
        txt = sl_rule_to_json(&rs->rules[i]);
        assert_non_null(txt);
        assert_int_equal(sl_buf_addf(&doc, "%s%s", i ? "," : "", txt), 0);
        free(txt);
    }
    assert_int_equal(sl_buf_addf(&doc, "]}"), 0);

    sl_buf_init(&errs, 4096);
    if (sl_ruleset_parse(doc.p, doc.len, resolve, &rs2, &errs) != 0) {
        assert_int_equal(sl_buf_addc(&errs, '\0'), 0);
        fail_msg("reparse failed:\n%s", errs.p);
    }
    assert_int_equal(rs2->nrules, rs->nrules);
    assert_int_equal(rs2->ndests, rs->ndests);
    for (i = 0; i < rs->nrules; i++)
        assert_rule_eq(&rs->rules[i], &rs2->rules[i]);
    for (i = 0; i < rs->ndests; i++)
        assert_dest_eq(&rs->dests[i], &rs2->dests[i]);
    sl_ruleset_free(rs2);
    sl_buf_free(&errs);
    assert_int_equal(sl_buf_addc(&doc, '\0'), 0);
    return doc.p;
}

static void test_round_trip(void **state)
{
    struct sl_ruleset *rs = NULL;
    struct sl_buf errs;
    char *doc;
    (void)state;

    set_example_env();
    assert_int_equal(parse(example, true, &rs, &errs), 0);
    doc = round_trip(rs, true);
    /* Resolved values never leave; literal ones the user wrote do. */
    assert_null(strstr(doc, SECRET32));
    assert_null(strstr(doc, SLACK_URL));
    assert_null(strstr(doc, PD_KEY));
    assert_non_null(strstr(doc, "\"secret_env\":\"ONCALL_SECRET\""));
    assert_non_null(strstr(doc, "https://tools.example.com/papertrail-hook"));
    free(doc);
    sl_ruleset_free(rs);
    sl_buf_free(&errs);

    rs = NULL;
    assert_int_equal(parse(example, false, &rs, &errs), 0);
    free(round_trip(rs, false));
    sl_ruleset_free(rs);
    sl_buf_free(&errs);

    /* Every optional field, literal secrets, odd characters in patterns. */
    rs = parse_ok(
        "{'destinations':{'w':{'type':'webhook','url':'https://a.example/x?y=1',"
        "'secret':'" SECRET32 "'},'p':{'type':'pagerduty','routing_key':'" PD_KEY "',"
        "'url':'http://pd.internal:8080'},'p2':{'type':'pagerduty','routing_key_env':"
        "'PD_ROUTING_KEY','url':'https://events.pagerduty.com'}},"
        "'rules':[{'name':'all','pattern':'caf\xc3\xa9 \\\"q\\\" "
        "(?<g>\\\\d+)\\\\t','exclude':'x|y',"
        "'flags':'i','sources':['a','b.c'],'app':'ap*','procid':'web.?','condition':"
        "'threshold','count':10000,'window':604800,'group_by':'g','cooldown':0,"
        "'resolve_after':604800,'severity':'info','notify':['w','p','p2'],'pack':'heroku'}]}",
        true);
    assert_string_equal(rs->rules[0].pattern, "caf\xc3\xa9 \"q\" (?<g>\\d+)\\t");
    free(round_trip(rs, true));
    sl_ruleset_free(rs);
}

/* The canonical form: compact, fields in a fixed order, defaults written out. */
static void test_to_json_canonical(void **state)
{
    struct sl_ruleset *rs = NULL;
    struct sl_buf errs;
    char *txt;
    (void)state;

    assert_int_equal(
        parse("{" DESTS ",'rules':[{'notify':['d'],'pattern':'x','name':'r'}]}", false, &rs, &errs),
        0);
    txt = sl_rule_to_json(&rs->rules[0]);
    assert_string_equal(txt, "{\"name\":\"r\",\"pattern\":\"x\",\"condition\":\"match\","
                             "\"cooldown\":300,\"resolve_after\":300,\"severity\":\"error\","
                             "\"notify\":[\"d\"]}");
    free(txt);
    txt = sl_dest_to_json(&rs->dests[0]);
    assert_string_equal(txt, "{\"type\":\"slack\",\"url\":\"https://hooks.example.com/x\"}");
    free(txt);
    assert_null(sl_rule_to_json(NULL));
    assert_null(sl_dest_to_json(NULL));
    sl_ruleset_free(rs);
    sl_buf_free(&errs);
}

/* ---- free and the CLI --------------------------------------------------------------- */

static void test_free_half_built(void **state)
{
    struct sl_ruleset *rs = calloc(1, sizeof(*rs));
    (void)state;

    sl_ruleset_free(NULL);
    assert_non_null(rs);
    rs->rules = calloc(3, sizeof(*rs->rules));
    rs->nrules = 3;
    rs->rules[0].pattern = strdup("x");
    rs->rules[0].sources[0] = strdup("a");
    rs->rules[0].nsources = 1;
    rs->ndests = 2; /* dests not allocated yet */
    sl_ruleset_free(rs);
}

static char *write_temp(const char *text)
{
    char *path = strdup("/tmp/test_ruleset_XXXXXX");
    int fd;
    assert_non_null(path);
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void test_check_file(void **state)
{
    char *path, *out = NULL;
    size_t outlen = 0;
    FILE *f;
    (void)state;

    set_example_env();
    path = write_temp(example);
    f = open_memstream(&out, &outlen);
    assert_int_equal(sl_rules_check_file(path, f), 0);
    fclose(f);
    assert_string_equal(out, "ok: 11 rules, 4 destinations\n");
    free(out);
    unlink(path);
    free(path);

    path = write_temp("{\"rules\":[{\"name\":\"r\",\"pattern\":\"(\",\"notify\":[\"x\"]}]}");
    f = open_memstream(&out, &outlen);
    assert_int_equal(sl_rules_check_file(path, f), 1);
    fclose(f);
    assert_string_equal(out, "rule r: pattern: missing closing parenthesis at offset 1\n"
                             "rule r: notify: no destination named \"x\"\n");
    free(out);
    unlink(path);
    free(path);

    f = open_memstream(&out, &outlen);
    assert_int_equal(sl_rules_check_file("/nonexistent/rules.json", f), 1);
    fclose(f);
    assert_non_null(strstr(out, "rules file: cannot open /nonexistent/rules.json: "));
    free(out);
}

/* ---- limits: the longest value accepted, and one byte more -------------------------- */

/* n copies of c, NUL-terminated. Caller frees. */
static char *rep(char c, size_t n)
{
    char *p = malloc(n + 1);
    assert_non_null(p);
    memset(p, c, n);
    p[n] = '\0';
    return p;
}

/* "https://a.example/" padded with 'u' to n bytes. Caller frees. */
static char *url_of(size_t n)
{
    char *p = rep('u', n);
    memcpy(p, "https://a.example/", 18);
    return p;
}

/* Parses the text in b (real JSON, no ' swap); errors NUL-terminated in *errs. */
static int parse_buf(struct sl_buf *b, bool resolve, struct sl_ruleset **rs, struct sl_buf *errs)
{
    int rc;
    sl_buf_init(errs, 64 * 1024);
    rc = sl_ruleset_parse(b->p, b->len, resolve, rs, errs);
    assert_int_equal(sl_buf_addc(errs, '\0'), 0);
    return rc;
}

#define G32 "g2345678901234567890123456789012"
#define SRC63 "s2345678901234567890123456789012345678901234567890123456789.-_3"
#define NAME63 "n2345678901234567890123456789012345678901234567890123456789/.-3"

/* Each validator's upper bound, and the first-byte and alphabet forms it accepts. */
static void test_longest_accepted(void **state)
{
    char *env128 = rep('E', 128), *url = url_of(2048), *pat = rep('p', 4096);
    struct sl_ruleset *rs = NULL;
    struct sl_buf text, errs;
    const struct sl_destination *d;
    const struct sl_rule *r;
    (void)state;

    env128[5] = '_';
    env128[6] = '9';
    assert_int_equal(setenv(env128, url, 1), 0);
    assert_int_equal(setenv("_SLUICE_TEST_URL", "https://b.example/", 1), 0);
    sl_buf_init(&text, 1 << 20);
    assert_int_equal(
        sl_buf_addf(
            &text,
            "{\"destinations\":{"
            "\"hook\":{\"type\":\"webhook\",\"url\":\"%s\","
            "\"secret\":\"whsec_+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/\"},"
            "\"nopad\":{\"type\":\"webhook\",\"url\":\"https://a.example\",\"secret\":\"" SECRET24
            "\"},"
            "\"pad2\":{\"type\":\"webhook\",\"url\":\"https://a.example\","
            "\"secret\":\"" SECRET24 "AAECAwQFBg==\"},"
            "\"chat\":{\"type\":\"slack\",\"url_env\":\"%s\"},"
            "\"chat2\":{\"type\":\"slack\",\"url_env\":\"_SLUICE_TEST_URL\"}},"
            "\"rules\":[{\"name\":\"" NAME63 "\",\"pattern\":\"(?<" G32 ">x)\","
            "\"group_by\":\"" G32 "\",\"sources\":[\"" SRC63 "\",\"9\"],\"notify\":[\"hook\"]},"
            "{\"name\":\"r2\",\"pattern\":\"%s\",\"exclude\":\"%s\",\"notify\":[\"chat\"]},"
            "{\"name\":\"r3\",\"pattern\":\"(?<_g>y)\",\"group_by\":\"_g\","
            "\"notify\":[\"chat2\"]}]}",
            url, env128, pat, pat),
        0);
    if (parse_buf(&text, true, &rs, &errs) != 0)
        fail_msg("parse failed:\n%s", errs.p);
    d = find_dest(rs, "hook");
    assert_non_null(d);
    assert_string_equal(d->url, url);
    assert_string_equal(d->secret, "whsec_+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/");
    assert_string_equal(find_dest(rs, "nopad")->secret, SECRET24);
    assert_string_equal(find_dest(rs, "pad2")->secret, SECRET24 "AAECAwQFBg==");
    d = find_dest(rs, "chat");
    assert_string_equal(d->url_env, env128);
    assert_string_equal(d->url, url);
    assert_string_equal(find_dest(rs, "chat2")->url, "https://b.example/");
    r = find_rule(rs, NAME63);
    assert_non_null(r);
    assert_int_equal(r->group_by, SL_GROUP_CAPTURE);
    assert_string_equal(r->group_capture, G32);
    assert_int_equal(r->nsources, 2);
    assert_string_equal(r->sources[0], SRC63);
    assert_string_equal(r->sources[1], "9");
    assert_int_equal(strlen(find_rule(rs, "r2")->pattern), 4096);
    assert_int_equal(strlen(find_rule(rs, "r2")->exclude), 4096);
    assert_string_equal(find_rule(rs, "r3")->group_capture, "_g");
    sl_ruleset_free(rs);
    sl_buf_free(&errs);
    sl_buf_free(&text);
    unsetenv(env128);
    unsetenv("_SLUICE_TEST_URL");
    free(env128);
    free(url);
    free(pat);
}

/* One byte past each length limit, and one past each count limit: each refused with the
 * rule or destination and what is wrong. */
static void test_one_past(void **state)
{
    char *url = url_of(2049), *pat = rep('p', 4097);
    struct sl_ruleset *rs = NULL;
    struct sl_buf text, errs;
    size_t i;
    (void)state;

    assert_int_equal(setenv("SLUICE_TEST_LONG_URL", url, 1), 0);
    sl_buf_init(&text, 1 << 20);
    assert_int_equal(
        sl_buf_addf(&text,
                    "{\"destinations\":{\"hook\":{\"type\":\"webhook\",\"url\":\"%s\"},"
                    "\"chat\":{\"type\":\"slack\",\"url_env\":\"SLUICE_TEST_LONG_URL\"},"
                    "\"d\":{\"type\":\"slack\",\"url\":\"https://a.example\"}},"
                    "\"rules\":[{\"name\":\"big\",\"pattern\":\"%s\",\"notify\":[\"d\"]},"
                    "{\"name\":\"bigx\",\"pattern\":\"x\",\"exclude\":\"%s\","
                    "\"notify\":[\"d\"]}]}",
                    url, pat, pat),
        0);
    assert_int_equal(parse_buf(&text, true, &rs, &errs), SL_EINVAL);
    assert_null(rs);
    assert_int_equal(count_lines(errs.p), 4);
    assert_non_null(strstr(errs.p, "destination hook: url: longer than 2048 bytes\n"));
    assert_non_null(strstr(errs.p, "destination chat: url_env: environment variable "
                                   "SLUICE_TEST_LONG_URL: longer than 2048 bytes\n"));
    assert_non_null(strstr(errs.p, "rule big: pattern: longer than 4096 bytes\n"));
    assert_non_null(strstr(errs.p, "rule bigx: exclude: longer than 4096 bytes\n"));
    assert_null(strstr(errs.p, "uuuu")); /* the URL (a secret for Slack) is never shown */
    sl_buf_free(&errs);
    unsetenv("SLUICE_TEST_LONG_URL");

    /* 65 fields in one rule: refused as a whole, not 62 "unknown field" lines */
    sl_buf_reset(&text);
    assert_int_equal(sl_buf_addf(&text, "{\"destinations\":{\"d\":{\"type\":\"slack\",\"url\":"
                                        "\"https://a.example\"}},\"rules\":[{\"name\":\"wide\","
                                        "\"pattern\":\"x\",\"notify\":[\"d\"]"),
                     0);
    for (i = 0; i < 62; i++)
        assert_int_equal(sl_buf_addf(&text, ",\"f%zu\":1", i), 0);
    assert_int_equal(sl_buf_addf(&text, "}]}"), 0);
    assert_int_equal(parse_buf(&text, true, &rs, &errs), SL_EINVAL);
    assert_string_equal(errs.p, "rule wide: more than 64 fields\n");
    sl_buf_free(&errs);

    /* 65 destinations */
    sl_buf_reset(&text);
    assert_int_equal(sl_buf_addf(&text, "{\"destinations\":{"), 0);
    for (i = 0; i < 65; i++)
        assert_int_equal(sl_buf_addf(&text,
                                     "%s\"d%zu\":{\"type\":\"slack\",\"url\":"
                                     "\"https://a.example\"}",
                                     i ? "," : "", i),
                         0);
    assert_int_equal(sl_buf_addf(&text, "}}"), 0);
    assert_int_equal(parse_buf(&text, true, &rs, &errs), SL_EINVAL);
    assert_string_equal(errs.p, "rules file: destinations: more than 64 destinations\n");
    sl_buf_free(&errs);

    /* 65 packs: refused as a whole, not 65 "unknown pack" lines */
    sl_buf_reset(&text);
    assert_int_equal(sl_buf_addf(&text, "{\"packs\":{"), 0);
    for (i = 0; i < 65; i++)
        assert_int_equal(sl_buf_addf(&text, "%s\"p%zu\":{}", i ? "," : "", i), 0);
    assert_int_equal(sl_buf_addf(&text, "}}"), 0);
    assert_int_equal(parse_buf(&text, true, &rs, &errs), SL_EINVAL);
    assert_string_equal(errs.p, "rules file: packs: more than 64 packs\n");
    sl_buf_free(&errs);

    /* none at all is fine */
    sl_buf_reset(&text);
    assert_int_equal(sl_buf_addf(&text, "{\"destinations\":{},\"packs\":{},\"rules\":[]}"), 0);
    assert_int_equal(parse_buf(&text, true, &rs, &errs), 0);
    assert_int_equal(rs->ndests, 0);
    assert_int_equal(rs->nrules, 0);
    sl_ruleset_free(rs);
    rs = NULL;
    sl_buf_free(&errs);

    /* 1017 rules and the pack's 8: one past 1024, packs included */
    sl_buf_reset(&text);
    assert_int_equal(sl_buf_addf(&text, "{\"destinations\":{\"d\":{\"type\":\"slack\",\"url\":"
                                        "\"https://a.example\"}},\"packs\":{\"heroku\":{"
                                        "\"notify\":[\"d\"]}},\"rules\":["),
                     0);
    for (i = 0; i < 1017; i++)
        assert_int_equal(sl_buf_addf(&text,
                                     "%s{\"name\":\"r%zu\",\"pattern\":\"x\","
                                     "\"notify\":[\"d\"]}",
                                     i ? "," : "", i),
                         0);
    assert_int_equal(sl_buf_addf(&text, "]}"), 0);
    assert_int_equal(parse_buf(&text, true, &rs, &errs), SL_EINVAL);
    assert_string_equal(errs.p, "rules file: rules: more than 1024 rules (packs included)\n");
    sl_buf_free(&errs);
    /* one rule fewer fits */
    text.len -= strlen(",{\"name\":\"r1016\",\"pattern\":\"x\",\"notify\":[\"d\"]}]}");
    assert_int_equal(sl_buf_addf(&text, "]}"), 0);
    assert_int_equal(parse_buf(&text, true, &rs, &errs), 0);
    assert_int_equal(rs->nrules, 1024);
    sl_ruleset_free(rs);
    rs = NULL;
    sl_buf_free(&errs);
    sl_buf_free(&text);

    free(url);
    free(pat);
}

/* A file one byte over SL_RULESET_MAX_BYTES, given to the parser and to `rules check`,
 * and a path that opens but cannot be read. */
static void test_file_too_big(void **state)
{
    char *big = rep(' ', SL_RULESET_MAX_BYTES + 1), *path, *out = NULL;
    struct sl_ruleset *rs = NULL;
    struct sl_buf errs;
    size_t outlen = 0;
    FILE *f;
    (void)state;

    big[1] = '{';
    big[SL_RULESET_MAX_BYTES] = '}';
    sl_buf_init(&errs, 1024);
    assert_int_equal(sl_ruleset_parse(big, SL_RULESET_MAX_BYTES + 1, true, &rs, &errs), SL_EINVAL);
    assert_null(rs);
    assert_int_equal(sl_buf_addc(&errs, '\0'), 0);
    assert_string_equal(errs.p, "rules file: larger than 4194304 bytes\n");
    sl_buf_free(&errs);
    /* the largest size is still read */
    assert_int_equal(sl_ruleset_parse(big + 1, SL_RULESET_MAX_BYTES, true, &rs, NULL), 0);
    assert_int_equal(rs->nrules, 0);
    sl_ruleset_free(rs);

    path = write_temp(big);
    f = open_memstream(&out, &outlen);
    assert_int_equal(sl_rules_check_file(path, f), 1);
    fclose(f);
    assert_string_equal(out, "rules file: larger than 4194304 bytes\n");
    free(out);
    unlink(path);
    free(path);

    f = open_memstream(&out, &outlen);
    assert_int_equal(sl_rules_check_file("/", f), 1);
    fclose(f);
    assert_non_null(strstr(out, "rules file: cannot read /: "));
    free(out);
    free(big);
}

#define NCASES (sizeof(err_cases) / sizeof(err_cases[0]))

int main(void)
{
    static const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_example),           cmocka_unit_test(test_example_unresolved),
        cmocka_unit_test(test_env_bad_values),    cmocka_unit_test(test_nul_byte),
        cmocka_unit_test(test_several_errors),    cmocka_unit_test(test_errors_capped),
        cmocka_unit_test(test_defaults),          cmocka_unit_test(test_pack_text),
        cmocka_unit_test(test_pack_expansion),    cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_to_json_canonical), cmocka_unit_test(test_free_half_built),
        cmocka_unit_test(test_check_file),        cmocka_unit_test(test_longest_accepted),
        cmocka_unit_test(test_one_past),          cmocka_unit_test(test_file_too_big),
    };
    static struct CMUnitTest tests[sizeof(fixed) / sizeof(fixed[0]) + NCASES];
    size_t i, n = 0;

    for (i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        tests[n++] = fixed[i];
    for (i = 0; i < NCASES; i++) {
        struct CMUnitTest t = cmocka_unit_test_prestate(test_error_case, (void *)&err_cases[i]);
        t.name = err_cases[i].name;
        tests[n++] = t;
    }
    return _cmocka_run_group_tests("ruleset", tests, n, NULL, NULL);
}
