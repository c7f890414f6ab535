/* Reading and checking a rules file (include/sluice/ruleset.h, docs/alerts.md): cJSON
 * turns the text into a tree, this module checks every field and builds a struct
 * sl_ruleset, collecting every problem as one line ("rule NAME: FIELD: what") instead
 * of stopping at the first. Patterns are compiled with PCRE2 only to check them (and
 * the capture group named by group_by); rules/match.c compiles them for real. The
 * built-in Heroku pack is a JSON text here that goes through the same checks.
 *
 * Runs on the CLI (`sluice rules check|apply|test`) and on the writer thread when the
 * rules are reloaded; no global state (cJSON's global error pointer is not used, the
 * parse end pointer is), only getenv for *_env references. Secrets are never put in
 * an error line, and sl_rule_to_json / sl_dest_to_json never write a value that came
 * from the environment. */
#define PCRE2_CODE_UNIT_WIDTH 8

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>
#include <pcre2.h>

#include "sluice/buf.h"
#include "sluice/enc.h"
#include "sluice/err.h"
#include "sluice/rule.h"
#include "sluice/ruleset.h"
#include "sluice/names.h"
#include "sluice/str.h"

#define MAX_SECONDS (86400u * 7) /* window, cooldown, resolve_after */
#define DEFAULT_COOLDOWN 300u
#define DEFAULT_RESOLVE_AFTER 300u
#define MAX_PATTERN 4096 /* bytes of pattern / exclude */
#define MAX_GLOB 128     /* RFC 5424 PROCID is at most 128 */
#define MAX_URL 2048
#define MAX_ENV_NAME 128
#define MAX_CAPTURE_NAME 32 /* PCRE2's limit on group names */
#define MAX_ROUTING_KEY 128
#define SECRET_PREFIX "whsec_"
#define SECRET_MIN 24 /* decoded bytes, as Standard Webhooks says */
#define SECRET_MAX 64
#define PD_DEFAULT_URL "https://events.pagerduty.com"
#define ERR_LINE_MAX 512  /* one error line, longer ones are cut */
#define ERR_RESERVE 128   /* kept free in errors for the "N more errors" line */
#define FIELD_SHOW_MAX 40 /* an unknown field's name is cut to this in messages */
#define MAX_FIELDS 64     /* members of one object: keeps the duplicate check cheap */

/* One definition of the Heroku pack: sl_ruleset_heroku_pack returns it, and a "packs"
 * entry expands it (adding the entry's sources and notify to every rule). */
static const char heroku_pack[] =
    "[{\"name\":\"heroku/h10-app-crashed\",\"pattern\":\"\\\\bcode=H10\\\\b\",\"app\":\"heroku\","
    "\"procid\":\"router\",\"condition\":\"threshold\",\"count\":3,\"window\":60,"
    "\"group_by\":\"source\",\"severity\":\"critical\",\"pack\":\"heroku\"},\n"
    "{\"name\":\"heroku/h12-request-timeout\",\"pattern\":\"\\\\bcode=H12\\\\b\","
    "\"app\":\"heroku\",\"procid\":\"router\",\"condition\":\"threshold\",\"count\":10,"
    "\"window\":60,\"group_by\":\"source\",\"severity\":\"error\",\"pack\":\"heroku\"},\n"
    "{\"name\":\"heroku/h13-connection-closed\",\"pattern\":\"\\\\bcode=H13\\\\b\","
    "\"app\":\"heroku\",\"procid\":\"router\",\"condition\":\"threshold\",\"count\":5,"
    "\"window\":60,\"group_by\":\"source\",\"severity\":\"error\",\"pack\":\"heroku\"},\n"
    "{\"name\":\"heroku/r14-memory-quota-exceeded\",\"pattern\":\"\\\\bError R14\\\\b\","
    "\"app\":\"heroku\",\"condition\":\"match\",\"group_by\":\"procid\","
    "\"severity\":\"warning\",\"pack\":\"heroku\"},\n"
    "{\"name\":\"heroku/r15-memory-quota-vastly-exceeded\",\"pattern\":\"\\\\bError R15\\\\b\","
    "\"app\":\"heroku\",\"condition\":\"match\",\"group_by\":\"procid\","
    "\"severity\":\"critical\",\"pack\":\"heroku\"},\n"
    "{\"name\":\"heroku/dyno-crashed\",\"pattern\":\"State changed from \\\\w+ to crashed\","
    "\"app\":\"heroku\",\"condition\":\"match\",\"group_by\":\"procid\","
    "\"severity\":\"error\",\"pack\":\"heroku\"},\n"
    "{\"name\":\"heroku/release-failed\",\"pattern\":\"Process exited with status [1-9]\","
    "\"app\":\"heroku\",\"procid\":\"release.*\",\"condition\":\"match\","
    "\"group_by\":\"procid\",\"severity\":\"error\",\"pack\":\"heroku\"},\n"
    "{\"name\":\"heroku/l10-drain-buffer-overflow\",\"pattern\":\"\\\\bError L10\\\\b\","
    "\"app\":\"heroku\",\"procid\":\"logplex\",\"condition\":\"match\","
    "\"severity\":\"warning\",\"pack\":\"heroku\"}]\n";

static const char *const cond_names[] = {"match", "threshold", "absence"};
static const char *const sev_names[] = {"info", "warning", "error", "critical"};
static const char *const dest_type_names[] = {"webhook", "slack", "pagerduty", "papertrail"};

static const char *const top_fields[] = {"destinations", "rules", "packs", NULL};
static const char *const rule_fields[] = {
    "name",          "pattern",   "exclude", "flags",  "sources",  "app",
    "procid",        "condition", "count",   "window", "group_by", "cooldown",
    "resolve_after", "severity",  "notify",  "pack",   "on",     NULL};
static const char *const dest_fields[] = {"type",       "url",         "url_env",         "secret",
                                          "secret_env", "routing_key", "routing_key_env", NULL};
static const char *const pack_fields[] = {"sources", "notify", NULL};

/* Which destination fields (besides type) each type takes, by dest_fields index. */
#define F_URL (1u << 1)
#define F_URL_ENV (1u << 2)
#define F_SECRET (1u << 3)
#define F_SECRET_ENV (1u << 4)
#define F_KEY (1u << 5)
#define F_KEY_ENV (1u << 6)
static const unsigned dest_allowed[] = {
    [SL_DEST_WEBHOOK] = F_URL | F_URL_ENV | F_SECRET | F_SECRET_ENV,
    [SL_DEST_SLACK] = F_URL | F_URL_ENV,
    [SL_DEST_PAGERDUTY] = F_URL | F_URL_ENV | F_KEY | F_KEY_ENV,
    [SL_DEST_PAPERTRAIL] = F_URL | F_URL_ENV,
};

struct pctx {
    struct sl_buf *errors; /* may be NULL */
    unsigned nerr;
    unsigned dropped; /* lines that did not fit in errors */
    bool oom;
    bool resolve_env;
    const struct sl_ruleset *rs; /* destinations, for notify */
};

static void errf(struct pctx *c, const char *label, const char *field, const char *fmt, ...)
    SL_PRINTF(4, 5);

static void errf(struct pctx *c, const char *label, const char *field, const char *fmt, ...)
{
    char line[ERR_LINE_MAX];
    int n, m;
    va_list ap;

    c->nerr++;
    if (c->errors == NULL)
        return;
    if (field != NULL)
        n = snprintf(line, sizeof(line), "%s: %s: ", label, field);
    else
        n = snprintf(line, sizeof(line), "%s: ", label);
    if (n < 0)
        n = 0;
    if ((size_t)n < sizeof(line)) {
        va_start(ap, fmt);
        m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
        va_end(ap);
        if (m > 0)
            n += m;
    }
    if ((size_t)n >= sizeof(line))
        n = (int)sizeof(line) - 1;
    /* Keep room for the closing "N more errors" line. */
    if (c->errors->max < c->errors->len + (size_t)n + 1 + ERR_RESERVE) {
        c->dropped++;
        return;
    }
    if (sl_buf_add(c->errors, line, (size_t)n) != 0 || sl_buf_addc(c->errors, '\n') != 0)
        c->dropped++;
}

static char *dup_str(struct pctx *c, const char *s)
{
    char *p = strdup(s);
    if (p == NULL)
        c->oom = true;
    return p;
}

/* Copies s for a message: printable ASCII kept, anything else '?', cut with "...". */
static void show(char *dst, size_t cap, const char *s, size_t max)
{
    size_t i = 0;
    for (; i < max && i + 4 < cap && s[i] != '\0'; i++) {
        unsigned char ch = (unsigned char)s[i];
        dst[i] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
    }
    if (s[i] != '\0' && i + 4 <= cap) {
        memcpy(dst + i, "...", 3);
        i += 3;
    }
    dst[i] = '\0';
}

/* Rule and destination names: [A-Za-z0-9][A-Za-z0-9._/-]{0,62}. */
static bool valid_name(const char *s)
{
    size_t i;
    if (!sl_ascii_alnum((unsigned char)s[0]))
        return false;
    for (i = 1; s[i] != '\0'; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (i >= SL_RULE_NAME_MAX ||
            !(sl_ascii_alnum(ch) || ch == '.' || ch == '_' || ch == '/' || ch == '-'))
            return false;
    }
    return true;
}

/* Source names as the sources table allows them: [A-Za-z0-9][A-Za-z0-9._-]{0,62}. */
static bool valid_source(const char *s)
{
    size_t i;
    if (!sl_ascii_alnum((unsigned char)s[0]))
        return false;
    for (i = 1; s[i] != '\0'; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (i >= SL_SOURCE_NAME_MAX ||
            !(sl_ascii_alnum(ch) || ch == '.' || ch == '_' || ch == '-'))
            return false;
    }
    return true;
}

/* Environment variable names (at most MAX_ENV_NAME bytes) and PCRE2 group names (at
 * most MAX_CAPTURE_NAME): a letter or underscore, then letters, digits and underscores,
 * at most max bytes in all. */
static bool valid_ident(const char *s, size_t max)
{
    size_t i;
    if (!(s[0] == '_' || (sl_ascii_alnum((unsigned char)s[0]) && !(s[0] >= '0' && s[0] <= '9'))))
        return false;
    for (i = 1; s[i] != '\0'; i++)
        if (i >= max || !(sl_ascii_alnum((unsigned char)s[i]) || s[i] == '_'))
            return false;
    return true;
}

/* APP-NAME and PROCID are printable US-ASCII (RFC 5424 §6.2.5, §6.2.6); so are globs. */
static bool valid_glob(const char *s)
{
    size_t i;
    for (i = 0; s[i] != '\0'; i++)
        if (i >= MAX_GLOB || (unsigned char)s[i] < 33 || (unsigned char)s[i] > 126)
            return false;
    return i > 0;
}

/* NULL when s is an http(s) URL with a host, else what is wrong (never the value:
 * Slack webhook URLs are secrets). */
static const char *check_url(const char *s)
{
    size_t i, n = strlen(s), skip;
    if (n > MAX_URL)
        return "longer than 2048 bytes";
    if (strncasecmp(s, "https://", 8) == 0)
        skip = 8;
    else if (strncasecmp(s, "http://", 7) == 0)
        skip = 7;
    else
        return "must be an http:// or https:// URL";
    for (i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] == 0x7f)
            return "URL contains spaces or control characters";
    if (s[skip] == '\0' || s[skip] == '/' || s[skip] == '?' || s[skip] == '#' || s[skip] == ':')
        return "URL has no host";
    return NULL;
}

/* Standard Webhooks secret: "whsec_" then standard base64 (padding optional) of 24 to
 * 64 bytes. Only the shape is checked; the value is never shown. */
static const char *check_secret(const char *s)
{
    unsigned char key[SECRET_MAX];
    int n;

    if (strncmp(s, SECRET_PREFIX, sizeof(SECRET_PREFIX) - 1) != 0)
        return "must start with \"whsec_\"";
    s += sizeof(SECRET_PREFIX) - 1;
    n = sl_enc_unb64(s, strlen(s), key, sizeof(key));
    explicit_bzero(key, sizeof(key));
    if (n == SL_EPARSE)
        return "must be \"whsec_\" followed by base64";
    if (n < SECRET_MIN) /* SL_ETOOBIG or short */
        return "must decode to 24-64 bytes";
    return NULL;
}

static const char *check_routing_key(const char *s)
{
    size_t i;
    for (i = 0; s[i] != '\0'; i++)
        if (i >= MAX_ROUTING_KEY || (unsigned char)s[i] < 33 || (unsigned char)s[i] > 126)
            return "must be printable ASCII without spaces, at most 128 bytes";
    return NULL;
}

/* Edit distance, for "did you mean" on unknown fields; 99 when either is long. */
static unsigned edit_distance(const char *a, const char *b)
{
    unsigned d[FIELD_SHOW_MAX + 1][FIELD_SHOW_MAX + 1];
    size_t la = strlen(a), lb = strlen(b), i, j;
    if (la > FIELD_SHOW_MAX || lb > FIELD_SHOW_MAX)
        return 99;
    for (i = 0; i <= la; i++)
        d[i][0] = (unsigned)i;
    for (j = 0; j <= lb; j++)
        d[0][j] = (unsigned)j;
    for (i = 1; i <= la; i++) {
        for (j = 1; j <= lb; j++) {
            unsigned best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < best)
                best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            d[i][j] = best;
        }
    }
    return d[la][lb];
}

static int field_index(const char *const *known, const char *key)
{
    int i;
    for (i = 0; known[i] != NULL; i++)
        if (strcmp(known[i], key) == 0)
            return i;
    return -1;
}

/* Reports unknown and repeated fields of obj. A typo must not silently drop a setting. */
static void check_fields(struct pctx *c, const char *label, const cJSON *obj,
                         const char *const *known)
{
    const cJSON *it, *prev;
    char shown[FIELD_SHOW_MAX + 8];

    if (cJSON_GetArraySize(obj) > MAX_FIELDS) {
        errf(c, label, NULL, "more than %d fields", MAX_FIELDS);
        return;
    }
    for (it = obj->child; it != NULL; it = it->next) {
        const char *key = it->string != NULL ? it->string : "";
        show(shown, sizeof(shown), key, FIELD_SHOW_MAX);
        for (prev = obj->child; prev != it; prev = prev->next)
            if (prev->string != NULL && strcmp(prev->string, key) == 0)
                break;
        if (prev != it) {
            errf(c, label, shown, "given twice");
            continue;
        }
        if (field_index(known, key) < 0) {
            const char *best = NULL;
            unsigned bestd = 3, i;
            for (i = 0; known[i] != NULL; i++) {
                unsigned dist = edit_distance(key, known[i]);
                if (dist < bestd) {
                    bestd = dist;
                    best = known[i];
                }
            }
            if (best != NULL && strlen(key) >= 3)
                errf(c, label, shown, "unknown field (did you mean \"%s\"?)", best);
            else
                errf(c, label, shown, "unknown field");
        }
    }
}

/* The first member named key (exact case). */
static const cJSON *member(const cJSON *obj, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(obj, key);
}

/* 1 and *out: a string; 0: absent; -1: not a string (reported). */
static int get_string(struct pctx *c, const char *label, const cJSON *obj, const char *key,
                      const char **out)
{
    const cJSON *v = member(obj, key);
    if (v == NULL)
        return 0;
    if (!cJSON_IsString(v) || v->valuestring == NULL) {
        errf(c, label, key, "must be a string");
        return -1;
    }
    *out = v->valuestring;
    return 1;
}

/* Like get_string, and an empty string is an error. */
static int get_nonempty(struct pctx *c, const char *label, const cJSON *obj, const char *key,
                        const char **out)
{
    int rc = get_string(c, label, obj, key, out);
    if (rc > 0 && (*out)[0] == '\0') {
        errf(c, label, key, "must not be empty");
        return -1;
    }
    return rc;
}

/* 1 and *out: a whole number in [min, max]; 0: absent; -1: reported. */
static int get_uint(struct pctx *c, const char *label, const cJSON *obj, const char *key,
                    uint32_t min, uint32_t max, uint32_t *out)
{
    const cJSON *v = member(obj, key);
    double d;
    if (v == NULL)
        return 0;
    if (!cJSON_IsNumber(v)) {
        errf(c, label, key, "must be a number");
        return -1;
    }
    d = v->valuedouble;
    if (!(d >= (double)min && d <= (double)max)) {
        errf(c, label, key, "must be between %u and %u", (unsigned)min, (unsigned)max);
        return -1;
    }
    if ((double)(uint32_t)d != d) {
        errf(c, label, key, "must be a whole number");
        return -1;
    }
    *out = (uint32_t)d;
    return 1;
}

/* One of names[0..n). 1 and *out: found; 0: absent; -1: reported. */
static int get_enum(struct pctx *c, const char *label, const cJSON *obj, const char *key,
                    const char *const *names, size_t n, const char *expect, int *out)
{
    const char *s;
    size_t i;
    int rc = get_string(c, label, obj, key, &s);
    if (rc <= 0)
        return rc;
    for (i = 0; i < n; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (int)i;
            return 1;
        }
    }
    errf(c, label, key, "must be %s", expect);
    return -1;
}

/* An array of unique strings each passing valid, at most max of them, copied into dst.
 * 1: present (possibly empty), 0: absent, -1: reported. */
static int get_names(struct pctx *c, const char *label, const cJSON *obj, const char *key,
                     size_t max, bool (*valid)(const char *), const char *what, char **dst,
                     size_t *n)
{
    const cJSON *v = member(obj, key), *it;
    char shown[SL_RULE_NAME_MAX + 8];
    size_t i;
    int rc = 1;

    if (v == NULL)
        return 0;
    if (!cJSON_IsArray(v)) {
        errf(c, label, key, "must be an array of names");
        return -1;
    }
    if ((size_t)cJSON_GetArraySize(v) > max) {
        errf(c, label, key, "more than %zu names", max);
        return -1;
    }
    cJSON_ArrayForEach(it, v)
    {
        if (!cJSON_IsString(it) || it->valuestring == NULL) {
            errf(c, label, key, "must be an array of names");
            rc = -1;
            continue;
        }
        show(shown, sizeof(shown), it->valuestring, SL_RULE_NAME_MAX);
        if (!valid(it->valuestring)) {
            errf(c, label, key, "\"%s\" is not a valid %s", shown, what);
            rc = -1;
            continue;
        }
        for (i = 0; i < *n; i++)
            if (strcmp(dst[i], it->valuestring) == 0)
                break;
        if (i < *n) {
            errf(c, label, key, "\"%s\" given twice", shown);
            rc = -1;
            continue;
        }
        dst[*n] = dup_str(c, it->valuestring);
        if (dst[*n] == NULL)
            return -1;
        (*n)++;
    }
    return rc;
}

static const struct sl_destination *find_dest(const struct sl_ruleset *rs, const char *name)
{
    size_t i;
    for (i = 0; i < rs->ndests; i++)
        if (strcmp(rs->dests[i].name, name) == 0)
            return &rs->dests[i];
    return NULL;
}

/* "notify": 1 to SL_RULE_MAX_NOTIFY destination names, each declared. */
static void get_notify(struct pctx *c, const char *label, const cJSON *obj, char **dst, size_t *n)
{
    size_t i;
    int rc = get_names(c, label, obj, "notify", SL_RULE_MAX_NOTIFY, valid_name, "destination name",
                       dst, n);
    if (rc == 0)
        errf(c, label, "notify", "required (destination names)");
    else if (rc > 0 && *n == 0)
        errf(c, label, "notify", "needs at least one destination");
    for (i = 0; i < *n; i++)
        if (find_dest(c->rs, dst[i]) == NULL)
            errf(c, label, "notify", "no destination named \"%s\"", dst[i]);
}

/* Compiles a pattern to check it. NULL (reported) when it does not compile. */
static pcre2_code *compile(struct pctx *c, const char *label, const char *field,
                           const char *pattern, bool caseless)
{
    int errcode;
    PCRE2_SIZE off;
    PCRE2_UCHAR msg[256];
    uint32_t opts = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | (caseless ? PCRE2_CASELESS : 0);
    pcre2_code *code =
        pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, opts, &errcode, &off, NULL);

    if (code == NULL) {
        if (errcode == PCRE2_ERROR_NOMEMORY) {
            c->oom = true;
            return NULL;
        }
        if (pcre2_get_error_message(errcode, msg, sizeof(msg)) < 0)
            snprintf((char *)msg, sizeof(msg), "error %d", errcode);
        errf(c, label, field, "%s at offset %zu", (const char *)msg, (size_t)off);
    }
    return code;
}

/* pattern or exclude: a non-empty string of at most MAX_PATTERN bytes that compiles. */
static pcre2_code *get_pattern(struct pctx *c, const char *label, const cJSON *obj,
                               const char *field, bool required, bool caseless, char **dst)
{
    const char *s;
    int rc = get_string(c, label, obj, field, &s);
    if (rc == 0 && required)
        errf(c, label, field, "required");
    if (rc <= 0)
        return NULL;
    if (s[0] == '\0') {
        errf(c, label, field, "must not be empty (\"^\" matches every line)");
        return NULL;
    }
    if (strlen(s) > MAX_PATTERN) {
        errf(c, label, field, "longer than %d bytes", MAX_PATTERN);
        return NULL;
    }
    *dst = dup_str(c, s);
    if (*dst == NULL)
        return NULL;
    return compile(c, label, field, s, caseless);
}

static void get_glob(struct pctx *c, const char *label, const cJSON *obj, const char *field,
                     char **dst)
{
    const char *s;
    if (get_string(c, label, obj, field, &s) <= 0)
        return;
    if (!valid_glob(s)) {
        errf(c, label, field, "must be 1-128 printable ASCII characters without spaces");
        return;
    }
    *dst = dup_str(c, s);
}

/* One rule object. idx is its place in the file (for "rule #N" when it has no usable
 * name). The pack entries arrive here too, with the pack's sources and notify added. */
/* "on": "lines" (the default) or "crashes" (docs/alerts.md, "Crash rules"). */
static void get_rule_on(struct pctx *c, const char *label, const cJSON *o, struct sl_rule *r)
{
    const char *s;

    r->on_crashes = false;
    if (get_string(c, label, o, "on", &s) <= 0)
        return;
    if (strcmp(s, "crashes") == 0)
        r->on_crashes = true;
    else if (strcmp(s, "lines") != 0)
        errf(c, label, "on", "must be \"lines\" or \"crashes\"");
    else
        return;
    if (r->on_crashes && r->condition == SL_COND_ABSENCE)
        errf(c, label, "on", "crash rules are match or threshold rules");
}

static void parse_rule(struct pctx *c, const cJSON *o, size_t idx, struct sl_rule *r)
{
    char label[SL_RULE_NAME_MAX + 16], shown[SL_RULE_NAME_MAX + 8];
    const char *s;
    int rc, v;
    bool have_cond = true;
    pcre2_code *code = NULL, *xcode = NULL;

    snprintf(label, sizeof(label), "rule #%zu", idx + 1);
    if (!cJSON_IsObject(o)) {
        errf(c, label, NULL, "must be an object");
        return;
    }
    rc = get_nonempty(c, label, o, "name", &s);
    if (rc == 0) {
        errf(c, label, "name", "required");
    } else if (rc > 0 && !valid_name(s)) {
        show(shown, sizeof(shown), s, SL_RULE_NAME_MAX);
        errf(c, label, "name",
             "\"%s\" is not valid: 1-63 of A-Z a-z 0-9 . _ / -, starting with a letter or digit",
             shown);
    } else if (rc > 0) {
        memcpy(r->name, s, strlen(s) + 1);
        snprintf(label, sizeof(label), "rule %s", r->name);
    }
    check_fields(c, label, o, rule_fields);

    rc = get_string(c, label, o, "flags", &s);
    if (rc > 0 && strcmp(s, "i") == 0)
        r->caseless = true;
    else if (rc > 0 && s[0] != '\0')
        errf(c, label, "flags", "must be \"i\" (caseless) or \"\"");
    code = get_pattern(c, label, o, "pattern", true, r->caseless, &r->pattern);
    xcode = get_pattern(c, label, o, "exclude", false, r->caseless, &r->exclude);

    (void)get_names(c, label, o, "sources", SL_RULE_MAX_SOURCES, valid_source, "source name",
                    r->sources, &r->nsources);
    get_glob(c, label, o, "app", &r->app);
    get_glob(c, label, o, "procid", &r->procid);

    v = SL_COND_MATCH;
    rc = get_enum(c, label, o, "condition", cond_names, 3, "match, threshold or absence", &v);
    if (rc < 0)
        have_cond = false;
    r->condition = (enum sl_condition)v;

    if (member(o, "count") != NULL && have_cond && r->condition != SL_COND_THRESHOLD)
        errf(c, label, "count", "only for threshold rules");
    else if (get_uint(c, label, o, "count", 1, SL_RULE_MAX_COUNT, &r->count) == 0 && have_cond &&
             r->condition == SL_COND_THRESHOLD)
        errf(c, label, "count", "required for threshold rules");

    if (member(o, "window") != NULL && have_cond && r->condition == SL_COND_MATCH)
        errf(c, label, "window", "only for threshold and absence rules");
    else if (get_uint(c, label, o, "window", 1, MAX_SECONDS, &r->window) == 0 && have_cond &&
             r->condition != SL_COND_MATCH)
        errf(c, label, "window", "required for %s rules", cond_names[r->condition]);

    r->cooldown = DEFAULT_COOLDOWN;
    (void)get_uint(c, label, o, "cooldown", 0, MAX_SECONDS, &r->cooldown);

    /* An absence alert resolves with the next match: resolve_after does not apply. */
    if (have_cond && r->condition == SL_COND_ABSENCE) {
        r->resolve_after = 0;
        if (member(o, "resolve_after") != NULL)
            errf(c, label, "resolve_after",
                 "not for absence rules (they resolve with the next match)");
    } else {
        r->resolve_after = DEFAULT_RESOLVE_AFTER;
        (void)get_uint(c, label, o, "resolve_after", 0, MAX_SECONDS, &r->resolve_after);
    }

    /* Groups of an absence rule are its sources. */
    r->group_by = r->condition == SL_COND_ABSENCE ? SL_GROUP_SOURCE : SL_GROUP_NONE;
    if (get_string(c, label, o, "group_by", &s) > 0) {
        if (strcmp(s, "source") == 0) {
            r->group_by = SL_GROUP_SOURCE;
        } else if (have_cond && r->condition == SL_COND_ABSENCE) {
            errf(c, label, "group_by", "absence rules group by source only");
        } else if (strcmp(s, "procid") == 0) {
            r->group_by = SL_GROUP_PROCID;
        } else if (!valid_ident(s, MAX_CAPTURE_NAME)) {
            show(shown, sizeof(shown), s, MAX_CAPTURE_NAME);
            errf(c, label, "group_by", "\"%s\" is not source, procid or a capture group name",
                 shown);
        } else {
            r->group_by = SL_GROUP_CAPTURE;
            r->group_capture = dup_str(c, s);
            /* PCRE2_ERROR_NOUNIQUESUBSTRING: a (?J) name used twice, still a name. */
            if (code != NULL &&
                pcre2_substring_number_from_name(code, (PCRE2_SPTR)s) == PCRE2_ERROR_NOSUBSTRING)
                errf(c, label, "group_by", "pattern has no capture group named \"%s\"", s);
        }
    }

    v = SL_SEV_ERROR;
    (void)get_enum(c, label, o, "severity", sev_names, 4, "info, warning, error or critical", &v);
    r->severity = (enum sl_severity)v;

    get_notify(c, label, o, r->notify, &r->nnotify);

    if (get_string(c, label, o, "pack", &s) > 0) {
        if (strcmp(s, "heroku") != 0)
            errf(c, label, "pack", "must be \"heroku\"");
        else
            r->pack = dup_str(c, s);
    }
    get_rule_on(c, label, o, r);
    pcre2_code_free(code);
    pcre2_code_free(xcode);
}

enum vkind { V_URL, V_SECRET, V_KEY };

static const char *check_value(enum vkind kind, const char *s)
{
    switch (kind) {
    case V_URL:
        return check_url(s);
    case V_SECRET:
        return check_secret(s);
    case V_KEY:
        return check_routing_key(s);
    }
    return "unknown kind";
}

/* A value given either literally (field) or by environment variable (env_field).
 * The literal is stored in *val; the variable's name in *env, and with resolve_env its
 * value in *val. */
static void get_value_or_env(struct pctx *c, const char *label, const cJSON *o, const char *field,
                             const char *env_field, enum vkind kind, bool required, char **val,
                             char **env)
{
    const char *s, *why;
    bool lit = member(o, field) != NULL, byenv = member(o, env_field) != NULL;

    if (lit && byenv) {
        errf(c, label, env_field, "give %s or %s, not both", field, env_field);
        return;
    }
    if (!lit && !byenv) {
        if (required)
            errf(c, label, field, "required (%s or %s)", field, env_field);
        return;
    }
    if (lit) {
        if (get_nonempty(c, label, o, field, &s) <= 0)
            return;
        if ((why = check_value(kind, s)) != NULL) {
            errf(c, label, field, "%s", why);
            return;
        }
        *val = dup_str(c, s);
        return;
    }
    if (get_nonempty(c, label, o, env_field, &s) <= 0)
        return;
    if (!valid_ident(s, MAX_ENV_NAME)) {
        errf(c, label, env_field, "must be an environment variable name ([A-Za-z_][A-Za-z0-9_]*)");
        return;
    }
    *env = dup_str(c, s);
    if (*env == NULL || !c->resolve_env)
        return;
    {
        const char *value = getenv(s);
        if (value == NULL) {
            errf(c, label, env_field, "environment variable %s is not set", s);
        } else if (value[0] == '\0') {
            errf(c, label, env_field, "environment variable %s is empty", s);
        } else if ((why = check_value(kind, value)) != NULL) {
            errf(c, label, env_field, "environment variable %s: %s", s, why);
        } else {
            *val = dup_str(c, value);
        }
    }
}

static void parse_dest(struct pctx *c, const cJSON *o, size_t idx, struct sl_destination *d)
{
    char label[SL_RULE_NAME_MAX + 24], shown[SL_RULE_NAME_MAX + 8];
    const char *name = o->string != NULL ? o->string : "";
    const cJSON *it;
    int t = -1, i;
    unsigned allowed;

    if (!valid_name(name)) {
        snprintf(label, sizeof(label), "destination #%zu", idx + 1);
        show(shown, sizeof(shown), name, SL_RULE_NAME_MAX);
        errf(c, label, "name",
             "\"%s\" is not valid: 1-63 of A-Z a-z 0-9 . _ / -, starting with a letter or digit",
             shown);
    } else {
        memcpy(d->name, name, strlen(name) + 1);
        snprintf(label, sizeof(label), "destination %s", d->name);
    }
    if (!cJSON_IsObject(o)) {
        errf(c, label, NULL, "must be an object");
        return;
    }
    check_fields(c, label, o, dest_fields);
    if (get_enum(c, label, o, "type", dest_type_names, 4, "webhook, slack, pagerduty or papertrail",
                 &t) == 0)
        errf(c, label, "type", "required (webhook, slack, pagerduty or papertrail)");
    if (t < 0)
        return;
    d->type = (enum sl_dest_type)t;
    allowed = dest_allowed[d->type];
    for (it = o->child; it != NULL; it = it->next) {
        i = it->string != NULL ? field_index(dest_fields, it->string) : -1;
        if (i > 0 && !(allowed & (1u << i)))
            errf(c, label, it->string, "not used by %s destinations", dest_type_names[t]);
    }
    get_value_or_env(c, label, o, "url", "url_env", V_URL, d->type != SL_DEST_PAGERDUTY, &d->url,
                     &d->url_env);
    if (d->type == SL_DEST_WEBHOOK)
        get_value_or_env(c, label, o, "secret", "secret_env", V_SECRET, false, &d->secret,
                         &d->secret_env);
    if (d->type == SL_DEST_PAGERDUTY) {
        get_value_or_env(c, label, o, "routing_key", "routing_key_env", V_KEY, true,
                         &d->routing_key, &d->routing_key_env);
        if (d->url == NULL && d->url_env == NULL && member(o, "url") == NULL)
            d->url = dup_str(c, PD_DEFAULT_URL);
    }
}

/* Reports repeated member names of an object whose members are named things. */
static bool first_of_name(const cJSON *obj, const cJSON *it)
{
    const cJSON *prev;
    for (prev = obj->child; prev != it; prev = prev->next)
        if (prev->string != NULL && it->string != NULL && strcmp(prev->string, it->string) == 0)
            return false;
    return true;
}

static void parse_dests(struct pctx *c, const cJSON *v, struct sl_ruleset *rs)
{
    const cJSON *it;
    size_t n, i = 0;

    if (!cJSON_IsObject(v)) {
        errf(c, "rules file", "destinations", "must be an object of named destinations");
        return;
    }
    n = (size_t)cJSON_GetArraySize(v);
    if (n > SL_RULESET_MAX_DESTS) {
        errf(c, "rules file", "destinations", "more than %d destinations", SL_RULESET_MAX_DESTS);
        return;
    }
    if (n == 0)
        return;
    rs->dests = calloc(n, sizeof(*rs->dests));
    if (rs->dests == NULL) {
        c->oom = true;
        return;
    }
    rs->ndests = n;
    cJSON_ArrayForEach(it, v)
    {
        if (!first_of_name(v, it)) {
            char shown[SL_RULE_NAME_MAX + 8];
            show(shown, sizeof(shown), it->string, SL_RULE_NAME_MAX);
            errf(c, "rules file", "destinations", "\"%s\" given twice", shown);
        } else {
            parse_dest(c, it, i, &rs->dests[i]);
        }
        i++;
    }
}

/* "packs": {"heroku": {"sources": [...], "notify": [...]}} -> *expanded, an array of
 * the pack's rule objects with sources and notify added (caller deletes). */
static void parse_packs(struct pctx *c, const cJSON *v, cJSON **expanded)
{
    const cJSON *it;
    char shown[FIELD_SHOW_MAX + 8];

    if (!cJSON_IsObject(v)) {
        errf(c, "rules file", "packs", "must be an object");
        return;
    }
    if (cJSON_GetArraySize(v) > MAX_FIELDS) {
        errf(c, "rules file", "packs", "more than %d packs", MAX_FIELDS);
        return;
    }
    cJSON_ArrayForEach(it, v)
    {
        struct sl_rule scratch;
        const char *label = "pack heroku";
        const cJSON *src, *ntf;
        cJSON *rules, *r;
        size_t i;
        unsigned before = c->nerr;

        show(shown, sizeof(shown), it->string != NULL ? it->string : "", FIELD_SHOW_MAX);
        if (it->string == NULL || strcmp(it->string, "heroku") != 0) {
            errf(c, "rules file", "packs", "unknown pack \"%s\" (known: heroku)", shown);
            continue;
        }
        if (!first_of_name(v, it)) {
            errf(c, "rules file", "packs", "\"heroku\" given twice");
            continue;
        }
        if (!cJSON_IsObject(it)) {
            errf(c, label, NULL, "must be an object");
            continue;
        }
        check_fields(c, label, it, pack_fields);
        /* Check sources and notify once here, not once per expanded rule. */
        memset(&scratch, 0, sizeof(scratch));
        (void)get_names(c, label, it, "sources", SL_RULE_MAX_SOURCES, valid_source, "source name",
                        scratch.sources, &scratch.nsources);
        get_notify(c, label, it, scratch.notify, &scratch.nnotify);
        for (i = 0; i < scratch.nsources; i++)
            free(scratch.sources[i]);
        for (i = 0; i < scratch.nnotify; i++)
            free(scratch.notify[i]);
        if (c->nerr != before || c->oom)
            continue;

        rules = cJSON_Parse(heroku_pack);
        if (rules == NULL) {
            c->oom = true; /* the text is tested to parse: only allocation can fail */
            continue;
        }
        src = member(it, "sources");
        ntf = member(it, "notify");
        cJSON_ArrayForEach(r, rules)
        {
            cJSON *s2 = src != NULL ? cJSON_Duplicate(src, true) : NULL;
            cJSON *n2 = cJSON_Duplicate(ntf, true);
            if ((src != NULL && s2 == NULL) || n2 == NULL) {
                cJSON_Delete(s2);
                cJSON_Delete(n2);
                c->oom = true;
                break;
            }
            if (s2 != NULL)
                cJSON_AddItemToObject(r, "sources", s2);
            cJSON_AddItemToObject(r, "notify", n2);
        }
        if (c->oom) {
            cJSON_Delete(rules);
            continue;
        }
        if (*expanded != NULL) /* cannot happen: "heroku" twice was refused above */
            cJSON_Delete(rules);
        else
            *expanded = rules;
    }
}

/* NUL bytes and raw control characters in strings are refused before cJSON sees the
 * text, and so is the escape \u0000: cJSON would cut a string there, silently
 * shortening a pattern. Returns false (reported) when the text has one. */
static bool prescan(struct pctx *c, const char *json, size_t len)
{
    size_t i;
    bool in_str = false;

    for (i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)json[i];
        if (ch == 0) {
            errf(c, "rules file", NULL, "NUL byte at byte %zu", i);
            return false;
        }
        if (!in_str) {
            if (ch == '"')
                in_str = true;
            continue;
        }
        if (ch == '"') {
            in_str = false;
        } else if (ch < 0x20) {
            errf(c, "rules file", NULL, "control character in a string at byte %zu", i);
            return false;
        } else if (ch == '\\' && i + 1 < len) {
            if (len - i >= 6 && memcmp(json + i + 1, "u0000", 5) == 0) {
                errf(c, "rules file", NULL, "\\u0000 in a string at byte %zu", i);
                return false;
            }
            i++; /* the escaped character */
        }
    }
    return true;
}

void sl_ruleset_free(struct sl_ruleset *rs)
{
    size_t i, j;

    if (rs == NULL)
        return;
    for (i = 0; rs->rules != NULL && i < rs->nrules; i++) {
        struct sl_rule *r = &rs->rules[i];
        free(r->pattern);
        free(r->exclude);
        for (j = 0; j < r->nsources && j < SL_RULE_MAX_SOURCES; j++)
            free(r->sources[j]);
        free(r->app);
        free(r->procid);
        free(r->group_capture);
        for (j = 0; j < r->nnotify && j < SL_RULE_MAX_NOTIFY; j++)
            free(r->notify[j]);
        free(r->pack);
    }
    free(rs->rules);
    for (i = 0; rs->dests != NULL && i < rs->ndests; i++) {
        struct sl_destination *d = &rs->dests[i];
        free(d->url);
        free(d->secret);
        free(d->routing_key);
        free(d->url_env);
        free(d->secret_env);
        free(d->routing_key_env);
    }
    free(rs->dests);
    free(rs);
}

int sl_ruleset_parse(const char *json, size_t len, bool resolve_env, struct sl_ruleset **out,
                     struct sl_buf *errors)
{
    struct pctx c = {.errors = errors, .resolve_env = resolve_env};
    struct sl_ruleset *rs = NULL;
    cJSON *root = NULL, *pack_rules = NULL;
    const cJSON *rules, *it;
    const char *end = NULL;
    size_t nfile = 0, npack = 0, i, j;
    int rc = SL_EINVAL;

    *out = NULL;
    if (len > SL_RULESET_MAX_BYTES) {
        errf(&c, "rules file", NULL, "larger than %u bytes", SL_RULESET_MAX_BYTES);
        goto out;
    }
    if (!prescan(&c, json, len))
        goto out;
    root = cJSON_ParseWithLengthOpts(json, len, &end, false);
    if (root != NULL) {
        /* Nothing but white space may follow the document. */
        while (end < json + len && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r'))
            end++;
    }
    if (root == NULL || end != json + len) {
        size_t off = end != NULL && end >= json && end <= json + len ? (size_t)(end - json) : 0;
        errf(&c, "rules file", NULL, "invalid JSON near byte %zu", off);
        goto out;
    }
    if (!cJSON_IsObject(root)) {
        errf(&c, "rules file", NULL, "must be a JSON object");
        goto out;
    }
    check_fields(&c, "rules file", root, top_fields);

    rs = calloc(1, sizeof(*rs));
    if (rs == NULL) {
        c.oom = true;
        goto out;
    }
    c.rs = rs;
    if ((it = member(root, "destinations")) != NULL)
        parse_dests(&c, it, rs);
    if ((it = member(root, "packs")) != NULL)
        parse_packs(&c, it, &pack_rules);
    if (c.oom)
        goto out;

    rules = member(root, "rules");
    if (rules != NULL && !cJSON_IsArray(rules)) {
        errf(&c, "rules file", "rules", "must be an array of rules");
        rules = NULL;
    }
    nfile = rules != NULL ? (size_t)cJSON_GetArraySize(rules) : 0;
    npack = pack_rules != NULL ? (size_t)cJSON_GetArraySize(pack_rules) : 0;
    if (nfile + npack > SL_RULESET_MAX_RULES) {
        errf(&c, "rules file", "rules", "more than %d rules (packs included)",
             SL_RULESET_MAX_RULES);
        goto out;
    }
    if (nfile + npack > 0) {
        rs->rules = calloc(nfile + npack, sizeof(*rs->rules));
        if (rs->rules == NULL) {
            c.oom = true;
            goto out;
        }
        rs->nrules = nfile + npack;
    }
    i = 0;
    if (rules != NULL) {
        cJSON_ArrayForEach(it, rules)
        {
            parse_rule(&c, it, i, &rs->rules[i]);
            i++;
        }
    }
    if (pack_rules != NULL) {
        cJSON_ArrayForEach(it, pack_rules)
        {
            parse_rule(&c, it, i, &rs->rules[i]);
            i++;
        }
    }

    for (i = 1; i < rs->nrules; i++) {
        if (rs->rules[i].name[0] == '\0')
            continue;
        for (j = 0; j < i; j++) {
            if (strcmp(rs->rules[i].name, rs->rules[j].name) == 0) {
                char label[SL_RULE_NAME_MAX + 16];
                snprintf(label, sizeof(label), "rule %s", rs->rules[i].name);
                errf(&c, label, "name", "given to more than one rule (rules #%zu and #%zu)", j + 1,
                     i + 1);
                break;
            }
        }
    }
    if (c.oom || c.nerr > 0)
        goto out;
    *out = rs;
    rs = NULL;
    rc = 0;
out:
    if (c.oom) {
        rc = SL_ENOMEM;
    } else if (c.dropped > 0 && errors != NULL) {
        char line[64];
        int n = snprintf(line, sizeof(line), "rules file: %u more errors not shown\n", c.dropped);
        if (n > 0 && sl_buf_add(errors, line, (size_t)n) != 0) {
            /* no room even for that: the caller still gets SL_EINVAL */
        }
    }
    cJSON_Delete(pack_rules);
    cJSON_Delete(root);
    sl_ruleset_free(rs);
    return rc;
}

/* cJSON_Add*ToObject return NULL when they fail; so does this. */
static bool add_str(cJSON *o, const char *key, const char *val)
{
    return val == NULL || cJSON_AddStringToObject(o, key, val) != NULL;
}

static bool add_num(cJSON *o, const char *key, uint32_t val)
{
    return cJSON_AddNumberToObject(o, key, (double)val) != NULL;
}

static bool add_names(cJSON *o, const char *key, char *const *names, size_t n)
{
    cJSON *a;
    size_t i;
    if (n == 0)
        return true;
    a = cJSON_AddArrayToObject(o, key);
    if (a == NULL)
        return false;
    for (i = 0; i < n; i++) {
        cJSON *s = cJSON_CreateString(names[i]);
        if (s == NULL)
            return false;
        cJSON_AddItemToArray(a, s);
    }
    return true;
}

static char *print_and_delete(cJSON *o, bool ok)
{
    char *txt = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return txt;
}

/* Every effective value is written, defaults included, so a stored rule keeps its
 * meaning if a default changes. */
char *sl_rule_to_json(const struct sl_rule *r)
{
    cJSON *o;
    bool ok;
    const char *group = NULL;

    if (r == NULL || (o = cJSON_CreateObject()) == NULL)
        return NULL;
    switch (r->group_by) {
    case SL_GROUP_NONE:
        break;
    case SL_GROUP_SOURCE:
        group = "source";
        break;
    case SL_GROUP_PROCID:
        group = "procid";
        break;
    case SL_GROUP_CAPTURE:
        group = r->group_capture;
        break;
    }
    ok = add_str(o, "name", r->name) && add_str(o, "pattern", r->pattern) &&
         add_str(o, "exclude", r->exclude) && (!r->caseless || add_str(o, "flags", "i")) &&
         add_names(o, "sources", r->sources, r->nsources) && add_str(o, "app", r->app) &&
         add_str(o, "procid", r->procid) && add_str(o, "condition", cond_names[r->condition % 3]) &&
         (r->condition != SL_COND_THRESHOLD || add_num(o, "count", r->count)) &&
         (r->condition == SL_COND_MATCH || add_num(o, "window", r->window)) &&
         add_str(o, "group_by", group) && add_num(o, "cooldown", r->cooldown) &&
         (r->condition == SL_COND_ABSENCE || add_num(o, "resolve_after", r->resolve_after)) &&
         add_str(o, "severity", sev_names[r->severity % 4]) &&
         add_names(o, "notify", r->notify, r->nnotify) && add_str(o, "pack", r->pack) &&
         add_str(o, "on", r->on_crashes ? "crashes" : NULL);
    return print_and_delete(o, ok);
}

/* Values that came from *_env are not written: only the variable's name is. */
char *sl_dest_to_json(const struct sl_destination *d)
{
    cJSON *o;
    bool ok;
    const char *url = d != NULL ? d->url : NULL;

    if (d == NULL || (o = cJSON_CreateObject()) == NULL)
        return NULL;
    if (d->url_env != NULL ||
        (d->type == SL_DEST_PAGERDUTY && url != NULL && strcmp(url, PD_DEFAULT_URL) == 0))
        url = NULL;
    ok = add_str(o, "type", dest_type_names[d->type % 4]) && add_str(o, "url", url) &&
         add_str(o, "url_env", d->url_env) &&
         add_str(o, "secret", d->secret_env == NULL ? d->secret : NULL) &&
         add_str(o, "secret_env", d->secret_env) &&
         add_str(o, "routing_key", d->routing_key_env == NULL ? d->routing_key : NULL) &&
         add_str(o, "routing_key_env", d->routing_key_env);
    return print_and_delete(o, ok);
}

const char *sl_ruleset_heroku_pack(void)
{
    return heroku_pack;
}

int sl_rules_check_file(const char *path, FILE *out)
{
    struct sl_buf errors;
    struct sl_ruleset *rs = NULL;
    char *text = NULL;
    size_t len = 0;
    FILE *f;
    int rc = 1, prc;

    sl_buf_init(&errors, 64 * 1024);
    f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(out, "rules file: cannot open %s: %s\n", path, strerror(errno));
        goto out;
    }
    text = malloc(SL_RULESET_MAX_BYTES + 1);
    if (text == NULL) {
        fprintf(out, "rules file: out of memory\n");
        goto out;
    }
    len = fread(text, 1, SL_RULESET_MAX_BYTES + 1, f);
    if (ferror(f)) {
        fprintf(out, "rules file: cannot read %s: %s\n", path, strerror(errno));
        goto out;
    }
    if (len > SL_RULESET_MAX_BYTES) {
        fprintf(out, "rules file: larger than %u bytes\n", SL_RULESET_MAX_BYTES);
        goto out;
    }
    prc = sl_ruleset_parse(text, len, true, &rs, &errors);
    if (prc == 0) {
        fprintf(out, "ok: %zu rules, %zu destinations\n", rs->nrules, rs->ndests);
        rc = 0;
    } else if (errors.len > 0) {
        fwrite(errors.p, 1, errors.len, out);
    } else {
        fprintf(out, "rules file: %s\n", sl_strerror(prc));
    }
out:
    if (f != NULL)
        fclose(f);
    free(text);
    sl_ruleset_free(rs);
    sl_buf_free(&errors);
    return rc;
}
