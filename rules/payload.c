/* Alert document -> the HTTP request one destination expects (include/sluice/payload.h).
 *
 * What it does: reads the alert document the writer stored (docs/alerts.md "Alert
 * document") with cJSON, checks the fields every destination needs, and writes the URL,
 * headers and body for a Standard Webhooks endpoint (signed JSON envelope), a Slack
 * incoming webhook (mrkdwn section, 3000-byte cap), PagerDuty Events API v2
 * (trigger/resolve, dedup_key = alert id) or a Papertrail-style alert webhook
 * (application/x-www-form-urlencoded "payload=<JSON>"). What it leaves to others: sending
 * (rules/deliver.c), retries and the outbox (rules/notifier.c), resolving secrets from
 * the environment (rules/ruleset.c).
 *
 * Pure apart from allocation: no I/O, no clock (the caller passes now_s), no globals.
 * Any thread. The same document and delivery_id give the same body on every retry;
 * only webhook-timestamp and webhook-signature change with now_s.
 *
 * Specs: Standard Webhooks v1 (signature = base64 HMAC-SHA256 over "id.ts.body");
 * Slack "Sending messages using incoming webhooks" and mrkdwn escaping (& < >);
 * PagerDuty Events API v2 /v2/enqueue; Papertrail "Web hooks" payload format.
 *
 * Required in the document (else SL_EINVAL): id (non-empty string), event ("firing" or
 * "resolved"), rule.name, rule.condition (match|threshold|absence), rule.severity
 * (info|warning|error|critical), count (number), fired_at (string), and resolved_at
 * (string) when the event is "resolved". Optional: group (string or null), rule.id,
 * rule.window, first_at, last_at, lines (array of objects), search_url. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "sluice/buf.h"
#include "sluice/enc.h"
#include "sluice/err.h"
#include "sluice/payload.h"
#include "sluice/utf8.h"
#include "sluice/rule.h"
#include "sluice/str.h"

#define DOC_MAX (4u << 20)  /* an alert document larger than this is refused */
#define SLACK_TEXT_MAX 3000 /* Slack section text limit (we count bytes: <= chars) */
#define PD_SUMMARY_MAX 1024 /* PagerDuty payload.summary limit (bytes, <= chars) */
#define SECRET_B64_MAX 172  /* base64 of 128 bytes: more than any whsec_ secret */
#define DELIVERY_ID_MAX 400 /* must fit a 512-byte header line */
#define PD_DEFAULT_URL "https://events.pagerduty.com"
#define ELLIPSIS "\xe2\x80\xa6"    /* U+2026, 3 bytes, 1 char */
#define EM_DASH "\xe2\x80\x94"     /* U+2014 */
#define REPLACEMENT "\xef\xbf\xbd" /* U+FFFD for bytes that are not UTF-8 */

/* The fields of an alert document, borrowed from the parsed cJSON tree. */
struct alert_doc {
    const char *id;
    bool resolved;
    const char *rule_name;
    const char *condition;
    const char *severity;
    const cJSON *rule_id; /* number or NULL */
    const cJSON *window;  /* number or NULL */
    const char *group;    /* NULL when absent, null or "" */
    long long count;
    const char *fired_at;
    const char *resolved_at; /* NULL unless resolved */
    const char *first_at, *last_at;
    const cJSON *lines;     /* array or NULL */
    const char *search_url; /* NULL when absent */
    const char *pattern;    /* rule.pattern if the writer included it */
};

/* ---- small helpers ------------------------------------------------------------------ */

static const char *jstr(const cJSON *obj, const char *name)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsString(it) && it->valuestring != NULL ? it->valuestring : NULL;
}

static const cJSON *jnum(const cJSON *obj, const char *name)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsNumber(it) && isfinite(it->valuedouble) ? it : NULL;
}

static long long num_ll(const cJSON *n)
{
    double v = n->valuedouble;
    if (v > 9e15)
        return 9000000000000000LL;
    if (v < -9e15)
        return -9000000000000000LL;
    return (long long)v;
}

static bool one_of(const char *s, const char *const *set, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, set[i]) == 0)
            return true;
    return false;
}

static int doc_read(const cJSON *doc, struct alert_doc *a)
{
    static const char *const conds[] = {"match", "threshold", "absence"};
    static const char *const sevs[] = {"info", "warning", "error", "critical"};
    const cJSON *rule, *cnt, *g, *lines;
    const char *ev;

    memset(a, 0, sizeof(*a));
    if (!cJSON_IsObject(doc))
        return SL_EINVAL;
    a->id = jstr(doc, "id");
    ev = jstr(doc, "event");
    rule = cJSON_GetObjectItemCaseSensitive(doc, "rule");
    cnt = jnum(doc, "count");
    a->fired_at = jstr(doc, "fired_at");
    if (a->id == NULL || a->id[0] == '\0' || ev == NULL || !cJSON_IsObject(rule) || cnt == NULL ||
        a->fired_at == NULL)
        return SL_EINVAL;
    if (strcmp(ev, "resolved") == 0)
        a->resolved = true;
    else if (strcmp(ev, "firing") != 0)
        return SL_EINVAL;
    a->rule_name = jstr(rule, "name");
    a->condition = jstr(rule, "condition");
    a->severity = jstr(rule, "severity");
    if (a->rule_name == NULL || a->rule_name[0] == '\0' || a->condition == NULL ||
        a->severity == NULL || !one_of(a->condition, conds, 3) || !one_of(a->severity, sevs, 4))
        return SL_EINVAL;
    a->rule_id = jnum(rule, "id");
    a->window = jnum(rule, "window");
    a->pattern = jstr(rule, "pattern");
    a->count = num_ll(cnt);
    g = cJSON_GetObjectItemCaseSensitive(doc, "group");
    if (g != NULL && !cJSON_IsNull(g) && !cJSON_IsString(g))
        return SL_EINVAL;
    a->group = jstr(doc, "group");
    if (a->group != NULL && a->group[0] == '\0')
        a->group = NULL;
    if (a->resolved) {
        a->resolved_at = jstr(doc, "resolved_at");
        if (a->resolved_at == NULL)
            return SL_EINVAL;
    }
    a->first_at = jstr(doc, "first_at");
    a->last_at = jstr(doc, "last_at");
    lines = cJSON_GetObjectItemCaseSensitive(doc, "lines");
    if (lines != NULL && !cJSON_IsNull(lines)) {
        const cJSON *ln;
        if (!cJSON_IsArray(lines))
            return SL_EINVAL;
        cJSON_ArrayForEach(ln, lines)
        {
            if (!cJSON_IsObject(ln))
                return SL_EINVAL;
        }
        a->lines = lines;
    }
    a->search_url = jstr(doc, "search_url");
    if (a->search_url != NULL && a->search_url[0] == '\0')
        a->search_url = NULL;
    return 0;
}

/* The first line's message, or NULL. */
static const char *first_message(const struct alert_doc *a)
{
    const cJSON *ln = a->lines ? cJSON_GetArrayItem(a->lines, 0) : NULL;
    return ln ? jstr(ln, "message") : NULL;
}

static int add_header(struct sl_request *out, const char *name, const char *value)
{
    int n;

    if (out->nheaders >= SL_PAYLOAD_MAX_HEADERS)
        return SL_ETOOBIG;
    for (const char *p = value; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return SL_EINVAL; /* no header injection through ids or URLs */
    n = snprintf(out->headers[out->nheaders], sizeof(out->headers[0]), "%s: %s", name, value);
    if (n < 0 || (size_t)n >= sizeof(out->headers[0]))
        return SL_ETOOBIG;
    out->nheaders++;
    return 0;
}

static int set_url(struct sl_request *out, const char *base, const char *suffix)
{
    size_t blen = strlen(base);
    int n;

    if (suffix[0] != '\0')
        while (blen > 0 && base[blen - 1] == '/')
            blen--;
    if (blen == 0 || blen > INT32_MAX)
        return SL_EINVAL;
    n = snprintf(out->url, sizeof(out->url), "%.*s%s", (int)blen, base, suffix);
    if (n < 0 || (size_t)n >= sizeof(out->url))
        return SL_ETOOBIG;
    return 0;
}

/* Append text s to b, escaped for Slack mrkdwn when mrkdwn (& < > as entities, backticks
 * as ' so a sample cannot close its code block), invalid UTF-8 as U+FFFD, and never more
 * than budget bytes. When s does not fit it is cut at a character boundary (never inside
 * an entity) and ends with an ellipsis. Sets *cut when it cut. */
static int add_text(struct sl_buf *b, const char *s, size_t budget, bool mrkdwn, bool *cut)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t used = 0, limit = budget;
    bool fits = true;
    int rc;

    /* First pass: does all of s fit? If not, leave room for the ellipsis. */
    for (int pass = 0; pass < 2; pass++) {
        p = (const unsigned char *)s;
        used = 0;
        while (*p) {
            const char *piece = (const char *)p;
            size_t plen = sl_utf8_seq(p, 4, NULL), adv = plen; /* stops at the NUL */

            if (plen == 0) {
                piece = REPLACEMENT;
                plen = 3;
                adv = 1;
            } else if (mrkdwn && *p == '&') {
                piece = "&amp;";
                plen = 5;
            } else if (mrkdwn && *p == '<') {
                piece = "&lt;";
                plen = 4;
            } else if (mrkdwn && *p == '>') {
                piece = "&gt;";
                plen = 4;
            } else if (mrkdwn && *p == '`') {
                piece = "'";
            }
            if (used + plen > limit) {
                if (pass == 0) {
                    fits = false;
                    break;
                }
                goto done;
            }
            if (pass == 1) {
                rc = sl_buf_add(b, piece, plen);
                if (rc)
                    return rc;
            }
            used += plen;
            p += adv;
        }
        if (pass == 0 && !fits)
            limit = budget >= 3 ? budget - 3 : 0;
    }
done:
    if (!fits) {
        if (cut)
            *cut = true;
        if (budget >= 3)
            return sl_buf_add(b, ELLIPSIS, 3);
    }
    return 0;
}

/* "12 matches in 60 s", "1 matching line", "no matching line in 900 s". */
static void describe(const struct alert_doc *a, char *out, size_t outlen)
{
    long long w = a->window ? num_ll(a->window) : -1;

    if (strcmp(a->condition, "absence") == 0) {
        if (w >= 0)
            snprintf(out, outlen, "no matching line in %lld s", w);
        else
            snprintf(out, outlen, "no matching line");
    } else if (strcmp(a->condition, "threshold") == 0 && w >= 0) {
        snprintf(out, outlen, "%lld %s in %lld s", a->count, a->count == 1 ? "match" : "matches",
                 w);
    } else {
        snprintf(out, outlen, "%lld matching %s", a->count, a->count == 1 ? "line" : "lines");
    }
}

/* cJSON builders that remember the first allocation failure. */
struct jb {
    bool oom;
};

static void jb_str(struct jb *j, cJSON *o, const char *name, const char *v)
{
    if (cJSON_AddStringToObject(o, name, v ? v : "") == NULL)
        j->oom = true;
}

static void jb_num(struct jb *j, cJSON *o, const char *name, double v)
{
    if (cJSON_AddNumberToObject(o, name, v) == NULL)
        j->oom = true;
}

static void jb_item(struct jb *j, cJSON *o, const char *name, cJSON *item)
{
    if (item == NULL || !cJSON_AddItemToObject(o, name, item)) {
        cJSON_Delete(item);
        j->oom = true;
    }
}

static void jb_copy(struct jb *j, cJSON *o, const char *name, const cJSON *from)
{
    jb_item(j, o, name, cJSON_Duplicate(from, 1));
}

/* Print root compactly into out->body. */
static int emit_json(const struct jb *j, const cJSON *root, struct sl_request *out)
{
    char *s;
    int rc;

    if (j->oom || root == NULL)
        return SL_ENOMEM;
    s = cJSON_PrintUnformatted(root);
    if (s == NULL)
        return SL_ENOMEM;
    rc = sl_buf_add(&out->body, s, strlen(s));
    cJSON_free(s);
    return rc;
}

/* ---- Standard Webhooks -------------------------------------------------------------- */

int sl_webhook_sign(const char *secret, const char *id, int64_t ts, const char *body, size_t blen,
                    char *out, size_t outlen)
{
    unsigned char key[SECRET_B64_MAX], mac[EVP_MAX_MD_SIZE];
    const unsigned char *k;
    char tsbuf[24];
    size_t klen, maclen = 0;
    EVP_MAC *m = NULL;
    EVP_MAC_CTX *ctx = NULL;
    OSSL_PARAM params[2];
    char digest[] = "SHA256";
    int rc = SL_EINVAL, n;

    if (secret == NULL || id == NULL || (body == NULL && blen > 0) || out == NULL ||
        outlen < sizeof("v1,") + 44)
        return SL_EINVAL;
    if (strncmp(secret, "whsec_", 6) == 0) {
        /* The key is the base64 after the prefix (padding optional). */
        size_t slen = strlen(secret + 6);
        int dl;

        if (slen == 0 || slen > SECRET_B64_MAX)
            return SL_EINVAL;
        if ((dl = sl_enc_unb64(secret + 6, slen, key, sizeof(key))) < 0)
            return SL_EINVAL;
        klen = (size_t)dl;
        k = key;
    } else {
        k = (const unsigned char *)secret;
        klen = strlen(secret);
    }
    if (klen == 0)
        return SL_EINVAL;
    n = snprintf(tsbuf, sizeof(tsbuf), "%lld", (long long)ts);

    m = EVP_MAC_fetch(NULL, "HMAC", NULL);
    ctx = m ? EVP_MAC_CTX_new(m) : NULL;
    if (ctx == NULL) {
        rc = SL_ENOMEM;
        goto out;
    }
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0);
    params[1] = OSSL_PARAM_construct_end();
    if (!EVP_MAC_init(ctx, k, klen, params) ||
        !EVP_MAC_update(ctx, (const unsigned char *)id, strlen(id)) ||
        !EVP_MAC_update(ctx, (const unsigned char *)".", 1) ||
        !EVP_MAC_update(ctx, (const unsigned char *)tsbuf, (size_t)n) ||
        !EVP_MAC_update(ctx, (const unsigned char *)".", 1) ||
        (blen > 0 && !EVP_MAC_update(ctx, (const unsigned char *)body, blen)) ||
        !EVP_MAC_final(ctx, mac, &maclen, sizeof(mac)) || maclen != 32)
        goto out;
    memcpy(out, "v1,", 3);
    sl_enc_b64(mac, 32, out + 3); /* 44 chars and a NUL */
    rc = 0;
out:
    OPENSSL_cleanse(key, sizeof(key));
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(m);
    return rc;
}

static int build_webhook(const struct sl_destination *d, const cJSON *doc,
                         const struct alert_doc *a, const char *delivery_id, int64_t now_s,
                         struct sl_request *out)
{
    struct jb j = {false};
    cJSON *root = cJSON_CreateObject();
    char ts[24], sig[64];
    int rc;

    if (delivery_id == NULL || delivery_id[0] == '\0' || strlen(delivery_id) > DELIVERY_ID_MAX) {
        rc = SL_EINVAL;
        goto out;
    }
    jb_str(&j, root, "type", a->resolved ? "alert.resolved" : "alert.firing");
    jb_str(&j, root, "timestamp", a->resolved ? a->resolved_at : a->fired_at);
    jb_copy(&j, root, "data", doc);
    rc = emit_json(&j, root, out);
    if (rc)
        goto out;
    snprintf(ts, sizeof(ts), "%lld", (long long)now_s);
    if ((rc = set_url(out, d->url, "")) ||
        (rc = add_header(out, "Content-Type", "application/json")) ||
        (rc = add_header(out, "webhook-id", delivery_id)) ||
        (rc = add_header(out, "webhook-timestamp", ts)))
        goto out;
    if (d->secret != NULL && d->secret[0] != '\0') {
        rc = sl_webhook_sign(d->secret, delivery_id, now_s, out->body.p, out->body.len, sig,
                             sizeof(sig));
        if (rc == 0)
            rc = add_header(out, "webhook-signature", sig);
        OPENSSL_cleanse(sig, sizeof(sig));
    }
out:
    cJSON_Delete(root);
    return rc;
}

/* ---- Slack -------------------------------------------------------------------------- */

/* The headline, mrkdwn-escaped when mrkdwn:
 * ":rotating_light: *h12-burst* firing for billing — 12 matches in 60 s (critical)". */
static int slack_headline(struct sl_buf *b, const struct alert_doc *a, bool mrkdwn, size_t budget)
{
    struct sl_buf raw;
    char what[96];
    int rc;

    sl_buf_init(&raw, 1u << 16);
    describe(a, what, sizeof(what));
    if (a->resolved)
        rc = sl_buf_addf(&raw, ":white_check_mark: *%s* resolved", a->rule_name);
    else
        rc = sl_buf_addf(&raw, ":rotating_light: *%s* firing", a->rule_name);
    if (rc == 0 && a->group != NULL)
        rc = sl_buf_addf(&raw, " for %.1000s", a->group);
    if (rc == 0 && !a->resolved)
        rc = sl_buf_addf(&raw, " " EM_DASH " %s", what);
    if (rc == 0)
        rc = sl_buf_addf(&raw, " (%s)", a->severity);
    if (rc == 0)
        rc = add_text(b, raw.p, budget, mrkdwn, NULL);
    sl_buf_free(&raw);
    return rc;
}

/* A link Slack can parse: <url|label> with the characters that end one percent-encoded. */
static int slack_link(struct sl_buf *b, const char *url)
{
    int rc = sl_buf_add(b, "<", 1);

    for (const char *p = url; rc == 0 && *p; p++) {
        if (*p == '<' || *p == '>' || *p == '|' || *p == ' ' || (unsigned char)*p < 0x20)
            rc = sl_buf_addf(b, "%%%02X", (unsigned)(unsigned char)*p);
        else
            rc = sl_buf_addc(b, *p);
    }
    return rc ? rc : sl_buf_add(b, "|Search in sluice>", 18);
}

static int build_slack(const struct sl_destination *d, const struct alert_doc *a,
                       struct sl_request *out)
{
    static const char fence_open[] = "\n```", fence_close[] = "```";
    struct sl_buf head, link, text;
    struct jb j = {false};
    cJSON *root = NULL, *blocks, *sec, *txt;
    const char *sample = a->resolved ? NULL : first_message(a);
    int rc;

    sl_buf_init(&head, SLACK_TEXT_MAX);
    sl_buf_init(&link, 8192);
    sl_buf_init(&text, SLACK_TEXT_MAX + 1);
    if ((rc = slack_headline(&head, a, true, SLACK_TEXT_MAX)))
        goto out;
    if (a->search_url != NULL && (rc = sl_buf_add(&link, "\n", 1)) == 0)
        rc = slack_link(&link, a->search_url);
    if (rc)
        goto out;
    /* The headline always; the link when it fits; the sample in what is left, cut. */
    if ((rc = sl_buf_add(&text, head.p, head.len)))
        goto out;
    if (head.len + link.len > SLACK_TEXT_MAX)
        link.len = 0;
    if (sample != NULL && sample[0] != '\0' &&
        head.len + link.len + sizeof(fence_open) - 1 + sizeof(fence_close) - 1 + 8 <=
            SLACK_TEXT_MAX) {
        size_t budget = SLACK_TEXT_MAX - head.len - link.len - (sizeof(fence_open) - 1) -
                        (sizeof(fence_close) - 1);
        if ((rc = sl_buf_add(&text, fence_open, sizeof(fence_open) - 1)) ||
            (rc = add_text(&text, sample, budget, true, NULL)) ||
            (rc = sl_buf_add(&text, fence_close, sizeof(fence_close) - 1)))
            goto out;
    }
    if ((rc = sl_buf_add(&text, link.p, link.len)) || (rc = sl_buf_addc(&text, '\0')))
        goto out;
    sl_buf_reset(&head);
    if ((rc = slack_headline(&head, a, false, SLACK_TEXT_MAX - 1)) ||
        (rc = sl_buf_addc(&head, '\0')))
        goto out;

    root = cJSON_CreateObject();
    jb_str(&j, root, "text", head.p);
    blocks = cJSON_CreateArray();
    sec = cJSON_CreateObject();
    txt = cJSON_CreateObject();
    jb_str(&j, txt, "type", "mrkdwn");
    jb_str(&j, txt, "text", text.p);
    jb_str(&j, sec, "type", "section");
    jb_item(&j, sec, "text", txt);
    if (sec != NULL && !cJSON_AddItemToArray(blocks, sec)) {
        cJSON_Delete(sec);
        j.oom = true;
    }
    jb_item(&j, root, "blocks", blocks);
    if ((rc = emit_json(&j, root, out)) || (rc = set_url(out, d->url, "")) ||
        (rc = add_header(out, "Content-Type", "application/json")))
        goto out;
out:
    cJSON_Delete(root);
    sl_buf_free(&head);
    sl_buf_free(&link);
    sl_buf_free(&text);
    return rc;
}

/* ---- PagerDuty Events API v2 -------------------------------------------------------- */

static int build_pagerduty(const struct sl_destination *d, const struct alert_doc *a,
                           struct sl_request *out)
{
    struct jb j = {false};
    cJSON *root = cJSON_CreateObject(), *pl, *cd, *links, *lk;
    struct sl_buf sum;
    char what[96];
    const char *msg, *source;
    int rc;

    sl_buf_init(&sum, PD_SUMMARY_MAX + 1);
    if (d->routing_key == NULL || d->routing_key[0] == '\0') {
        rc = SL_EINVAL;
        goto out;
    }
    jb_str(&j, root, "routing_key", d->routing_key);
    jb_str(&j, root, "event_action", a->resolved ? "resolve" : "trigger");
    jb_str(&j, root, "dedup_key", a->id);
    if (a->resolved)
        goto emit; /* PagerDuty needs nothing else to resolve */

    /* "h12-burst firing for billing — 12 matches in 60 s: <first line>", cut at 1024. */
    describe(a, what, sizeof(what));
    {
        struct sl_buf raw;
        sl_buf_init(&raw, 1u << 20);
        rc = sl_buf_addf(&raw, "%s firing", a->rule_name);
        if (rc == 0 && a->group != NULL)
            rc = sl_buf_addf(&raw, " for %.1000s", a->group);
        if (rc == 0)
            rc = sl_buf_addf(&raw, " " EM_DASH " %s", what);
        msg = first_message(a);
        if (rc == 0 && msg != NULL && msg[0] != '\0')
            rc = sl_buf_addf(&raw, ": %.4000s", msg);
        if (rc == 0)
            rc = add_text(&sum, raw.p, PD_SUMMARY_MAX, false, NULL);
        sl_buf_free(&raw);
        if (rc || (rc = sl_buf_addc(&sum, '\0')))
            goto out;
    }
    source = a->group;
    if (source == NULL && a->lines != NULL) {
        const cJSON *ln = cJSON_GetArrayItem(a->lines, 0);
        source = ln ? jstr(ln, "source_name") : NULL;
    }
    if (source == NULL || source[0] == '\0')
        source = "sluice";

    pl = cJSON_CreateObject();
    jb_str(&j, pl, "summary", sum.p);
    jb_str(&j, pl, "source", source);
    jb_str(&j, pl, "severity", a->severity); /* validated: PagerDuty's four names */
    jb_str(&j, pl, "timestamp", a->fired_at);
    jb_str(&j, pl, "component", "sluice");
    jb_str(&j, pl, "group", a->rule_name);
    jb_str(&j, pl, "class", a->condition);
    cd = cJSON_CreateObject();
    jb_num(&j, cd, "count", (double)a->count);
    if (a->window != NULL)
        jb_num(&j, cd, "window", a->window->valuedouble);
    if (a->group != NULL)
        jb_str(&j, cd, "group", a->group);
    if (a->first_at != NULL)
        jb_str(&j, cd, "first_at", a->first_at);
    if (a->last_at != NULL)
        jb_str(&j, cd, "last_at", a->last_at);
    if (a->lines != NULL)
        jb_copy(&j, cd, "lines", a->lines);
    jb_item(&j, pl, "custom_details", cd);
    jb_item(&j, root, "payload", pl);
    if (a->search_url != NULL) {
        links = cJSON_CreateArray();
        lk = cJSON_CreateObject();
        jb_str(&j, lk, "href", a->search_url);
        jb_str(&j, lk, "text", "Search in sluice");
        if (lk != NULL && !cJSON_AddItemToArray(links, lk)) {
            cJSON_Delete(lk);
            j.oom = true;
        }
        jb_item(&j, root, "links", links);
    }
emit:
    if ((rc = emit_json(&j, root, out)) ||
        (rc = set_url(out, d->url && d->url[0] ? d->url : PD_DEFAULT_URL, "/v2/enqueue")) ||
        (rc = add_header(out, "Content-Type", "application/json")))
        goto out;
out:
    cJSON_Delete(root);
    sl_buf_free(&sum);
    return rc;
}

/* ---- Papertrail alert webhook ------------------------------------------------------- */

/* Papertrail's display_received_at, "May 18 20:30:02", from an RFC 3339 time as written
 * (its own offset); the RFC 3339 text itself when it does not parse. */
static void display_time(const char *rfc3339, char *out, size_t outlen)
{
    static const char *const mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    int y, mo, d, h, mi, s;

    if (sscanf(rfc3339, "%4d-%2d-%2dT%2d:%2d:%2d", &y, &mo, &d, &h, &mi, &s) == 6 && mo >= 1 &&
        mo <= 12 && d >= 1 && d <= 31 && h >= 0 && h <= 23 && mi >= 0 && mi <= 59 && s >= 0 &&
        s <= 60)
        snprintf(out, outlen, "%s %02d %02d:%02d:%02d", mon[mo - 1], d, h, mi, s);
    else
        snprintf(out, outlen, "%s", rfc3339);
}

/* A line id as a string ("123"), whether the document holds it as a string or number. */
static const char *line_id(const cJSON *ln, char *tmp, size_t tmplen)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(ln, "id");

    if (cJSON_IsString(id) && id->valuestring != NULL)
        return id->valuestring;
    if (cJSON_IsNumber(id) && isfinite(id->valuedouble)) {
        snprintf(tmp, tmplen, "%lld", num_ll(id));
        return tmp;
    }
    return "";
}

/* Numeric comparison of decimal id strings (longer is larger), so "10" > "9". */
static int id_cmp(const char *x, const char *y)
{
    size_t lx = strlen(x), ly = strlen(y);
    if (lx != ly)
        return lx < ly ? -1 : 1;
    return strcmp(x, y);
}

/* The decoded q= parameter of the search URL ("" when there is none). */
static void search_query(const char *url, char *out, size_t outlen)
{
    const char *q = url ? strchr(url, '?') : NULL;
    size_t n = 0;

    out[0] = '\0';
    while (q != NULL) {
        q++;
        if (strncmp(q, "q=", 2) == 0)
            break;
        q = strchr(q, '&');
    }
    if (q == NULL)
        return;
    for (q += 2; *q && *q != '&' && *q != '#' && n + 1 < outlen; q++) {
        if (*q == '+') {
            out[n++] = ' ';
        } else if (*q == '%' && sl_hexval((unsigned char)q[1]) >= 0 &&
                   sl_hexval((unsigned char)q[2]) >= 0) {
            out[n++] = (char)(sl_hexval((unsigned char)q[1]) * 16 + sl_hexval((unsigned char)q[2]));
            q += 2;
        } else {
            out[n++] = *q;
        }
    }
    out[n] = '\0';
}

static int build_papertrail(const struct sl_destination *d, const struct alert_doc *a,
                            struct sl_request *out)
{
    struct jb j = {false};
    cJSON *root = cJSON_CreateObject(), *events = cJSON_CreateArray(), *ss;
    const cJSON *ln;
    char idtmp[32], maxtmp[32] = "", mintmp[32] = "", disp[64], query[1024];
    const char *max_id = NULL, *min_id = NULL;
    char *json = NULL;
    int rc;

    if (a->lines != NULL) {
        cJSON_ArrayForEach(ln, a->lines)
        {
            cJSON *ev = cJSON_CreateObject();
            const char *id = line_id(ln, idtmp, sizeof(idtmp));
            const char *recv = jstr(ln, "received_at");
            const cJSON *sid = jnum(ln, "source_id");

            if (max_id == NULL || id_cmp(id, max_id) > 0)
                max_id = snprintf(maxtmp, sizeof(maxtmp), "%s", id) >= 0 ? maxtmp : id;
            if (min_id == NULL || id_cmp(id, min_id) < 0)
                min_id = snprintf(mintmp, sizeof(mintmp), "%s", id) >= 0 ? mintmp : id;
            display_time(recv ? recv : "", disp, sizeof(disp));
            jb_str(&j, ev, "id", id);
            jb_str(&j, ev, "received_at", recv);
            jb_str(&j, ev, "display_received_at", disp);
            jb_str(&j, ev, "source_name", jstr(ln, "source_name"));
            jb_num(&j, ev, "source_id", sid ? sid->valuedouble : 0);
            jb_str(&j, ev, "hostname", jstr(ln, "hostname"));
            jb_str(&j, ev, "program", jstr(ln, "program"));
            jb_str(&j, ev, "severity", jstr(ln, "severity"));
            jb_str(&j, ev, "facility", jstr(ln, "facility"));
            jb_str(&j, ev, "message", jstr(ln, "message"));
            if (ev != NULL && !cJSON_AddItemToArray(events, ev)) {
                cJSON_Delete(ev);
                j.oom = true;
            }
        }
    }
    jb_item(&j, root, "events", events);
    events = NULL;
    ss = cJSON_CreateObject();
    jb_num(&j, ss, "id", a->rule_id ? a->rule_id->valuedouble : 0);
    jb_str(&j, ss, "name", a->rule_name);
    search_query(a->search_url, query, sizeof(query));
    jb_str(&j, ss, "query", query[0] ? query : a->pattern);
    jb_str(&j, ss, "html_edit_url", a->search_url);
    jb_str(&j, ss, "html_search_url", a->search_url);
    jb_item(&j, root, "saved_search", ss);
    jb_str(&j, root, "max_id", max_id ? max_id : "0");
    jb_str(&j, root, "min_id", min_id ? min_id : "0");
    /* Not Papertrail's: it has no resolve. Receivers that do not know it ignore it. */
    jb_str(&j, root, "event", a->resolved ? "resolved" : "firing");
    if (j.oom || (json = cJSON_PrintUnformatted(root)) == NULL) {
        rc = SL_ENOMEM;
        goto out;
    }
    if ((rc = sl_buf_add(&out->body, "payload=", 8)) ||
        (rc = sl_enc_pct(&out->body, json, strlen(json), true)) ||
        (rc = set_url(out, d->url, "")) ||
        (rc = add_header(out, "Content-Type", "application/x-www-form-urlencoded")))
        goto out;
out:
    cJSON_free(json);
    cJSON_Delete(events);
    cJSON_Delete(root);
    return rc;
}

/* ---- entry point -------------------------------------------------------------------- */

int sl_payload_build(const struct sl_destination *d, const char *alert_json,
                     const char *delivery_id, int64_t now_s, struct sl_request *out)
{
    struct alert_doc a;
    cJSON *doc = NULL;
    int rc;

    if (d == NULL || alert_json == NULL || out == NULL)
        return SL_EINVAL;
    out->url[0] = '\0';
    out->nheaders = 0;
    sl_buf_reset(&out->body);
    if (strlen(alert_json) > DOC_MAX)
        return SL_ETOOBIG;
    if (d->type != SL_DEST_PAGERDUTY && (d->url == NULL || d->url[0] == '\0'))
        return SL_EINVAL;
    doc = cJSON_ParseWithOpts(alert_json, NULL, 1); /* 1: nothing may follow the JSON */
    if (doc == NULL)
        return SL_EINVAL;
    rc = doc_read(doc, &a);
    if (rc)
        goto out;
    switch (d->type) {
    case SL_DEST_WEBHOOK:
        rc = build_webhook(d, doc, &a, delivery_id, now_s, out);
        break;
    case SL_DEST_SLACK:
        rc = build_slack(d, &a, out);
        break;
    case SL_DEST_PAGERDUTY:
        rc = build_pagerduty(d, &a, out);
        break;
    case SL_DEST_PAPERTRAIL:
        rc = build_papertrail(d, &a, out);
        break;
    default:
        rc = SL_EINVAL;
        break;
    }
    if (rc == 0)
        rc = add_header(out, "User-Agent", "sluice");
out:
    if (rc) {
        out->url[0] = '\0';
        out->nheaders = 0;
        sl_buf_reset(&out->body);
    }
    cJSON_Delete(doc);
    return rc;
}
