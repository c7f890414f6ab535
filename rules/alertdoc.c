/* The alert document (include/sluice/alertdoc.h, docs/alerts.md): sample lines as JSON,
 * their merge with the lines a group's state kept, the search link (issue 12), the
 * document, and the match_times array text of alert_state. Pure: no I/O, no globals;
 * source names through the caller's function, working space in the caller's buffer.
 * Writer thread (alerts of a batch) and notifier thread (tick), each its own context.
 * PostgreSQL and the state machine stay in rules/eval.c and rules/alert.c. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "sluice/alertdoc.h"
#include "sluice/enc.h"
#include "sluice/fields.h"
#include "sluice/match.h"
#include "sluice/names.h"
#include "sluice/query.h"
#include "sluice/utf8.h"

#define SAMPLES SL_EVALGROUP_SAMPLES
#define URL_SOURCES SL_ALERTDOC_URL_SOURCES

static const char *const sev_names[] = {"info", "warning", "error", "critical"};
static const char *const cond_names[] = {"match", "threshold", "absence"};
static const char *const syslog_sev[] = {"emergency", "alert",  "critical", "error",
                                         "warning",   "notice", "info",     "debug"};

void sl_alertdoc_rfc3339(int64_t us, char out[40])
{
    time_t t = (time_t)(us / 1000000);
    struct tm tm;
    size_t n;

    gmtime_r(&t, &tm);
    n = strftime(out, 40, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 40 - n, ".%06dZ", (int)(us % 1000000));
}

const char *sl_alertdoc_severity(enum sl_severity s)
{
    return sev_names[s & 3];
}

void sl_alertdoc_source_name(const struct sl_alertdoc_ctx *cx, int64_t id, char *out, size_t cap)
{
    if (!cx->name(cx->name_arg, id, out, cap))
        snprintf(out, cap, "%" PRId64, id);
}

/* A NUL-terminated, valid UTF-8 copy of s in cx->scratch (valid until the next call). */
static const char *clean(const struct sl_alertdoc_ctx *cx, struct sl_str s, size_t cap)
{
    sl_buf_reset(cx->scratch);
    if (s.p && sl_utf8_sanitize(s.p, s.len > cap ? cap : s.len, cx->scratch))
        sl_buf_reset(cx->scratch);
    if (sl_buf_addc(cx->scratch, '\0'))
        return "";
    return cx->scratch->p;
}

/* A JSON line's fields, quoted in the alert (docs/alerts.md "Fields"): its scalar leaves
 * by dotted path, the last duplicate winning, at most SAMPLE_FIELDS of them, strings cut
 * to SAMPLE_FIELD_MAX bytes, numbers exactly as written. */
#define SAMPLE_FIELDS 32
#define SAMPLE_FIELD_MAX 256

struct fields_acc {
    cJSON *obj;
    size_t n;
    struct sl_buf tmp;
};

static int sample_field(void *arg, const char *path, size_t plen, const struct sl_jleaf *leaf)
{
    struct fields_acc *fa = arg;
    cJSON *v = NULL;

    (void)plen;
    switch (leaf->type) {
    case SL_J_STRING:
        sl_buf_reset(&fa->tmp);
        if (sl_fields_json_unescape(leaf->raw, &fa->tmp) != 0)
            return 0;
        {
            size_t n = fa->tmp.len > SAMPLE_FIELD_MAX ? SAMPLE_FIELD_MAX : fa->tmp.len;
            while (n > 0 && n < fa->tmp.len && ((unsigned char)fa->tmp.p[n] & 0xC0) == 0x80)
                n--; /* not inside a UTF-8 sequence */
            if (sl_buf_reserve(&fa->tmp, 1) != 0)
                return 0;
            fa->tmp.p[n] = '\0';
            v = cJSON_CreateString(fa->tmp.p);
        }
        break;
    case SL_J_NUMBER: {
        char num[SL_JSON_MAX_NUMBER + 1];
        memcpy(num, leaf->raw.p, leaf->raw.len);
        num[leaf->raw.len] = '\0';
        v = cJSON_CreateRaw(num);
        break;
    }
    case SL_J_TRUE:
    case SL_J_FALSE:
        v = cJSON_CreateBool(leaf->type == SL_J_TRUE);
        break;
    default:
        v = cJSON_CreateNull();
        break;
    }
    if (v == NULL)
        return 0;
    if (cJSON_GetObjectItemCaseSensitive(fa->obj, path) != NULL)
        (void)cJSON_ReplaceItemInObjectCaseSensitive(fa->obj, path, v);
    else if (fa->n < SAMPLE_FIELDS && cJSON_AddItemToObject(fa->obj, path, v))
        fa->n++;
    else
        cJSON_Delete(v);
    return 0;
}

static void sample_fields(cJSON *o, struct sl_str msg)
{
    struct sl_json_at at;
    struct fields_acc fa;

    if (msg.p == NULL || !sl_fields_json_find(msg.p, msg.len, &at))
        return;
    if ((fa.obj = cJSON_AddObjectToObject(o, "fields")) == NULL)
        return;
    fa.n = 0;
    sl_buf_init(&fa.tmp, SL_JSON_MAX_BYTES + 1);
    (void)sl_fields_json_walk(msg.p + at.off, msg.len - at.off, sample_field, &fa);
    sl_buf_free(&fa.tmp);
}

/* One sample line as JSON; "t" (received_at in µs) is internal and stripped from
 * documents. */
static cJSON *sample_json(const struct sl_alertdoc_ctx *cx, const struct sl_eval_sample *s)
{
    cJSON *o = cJSON_CreateObject();
    char ts[40], idbuf[24], name[SL_SOURCE_NAME_MAX + 1], prog[256];

    if (o == NULL)
        return NULL;
    snprintf(idbuf, sizeof(idbuf), "%" PRId64, s->id);
    sl_alertdoc_rfc3339(s->received_us, ts);
    sl_alertdoc_source_name(cx, s->source_id, name, sizeof(name));
    cJSON_AddStringToObject(o, "id", idbuf);
    cJSON_AddStringToObject(o, "received_at", ts);
    cJSON_AddStringToObject(o, "source_name", name);
    cJSON_AddNumberToObject(o, "source_id", (double)s->source_id);
    cJSON_AddStringToObject(o, "hostname", clean(cx, s->host, 255));
    snprintf(prog, sizeof(prog), "%s", clean(cx, s->app, 100));
    if (s->procid.len) {
        size_t k = strlen(prog);
        snprintf(prog + k, sizeof(prog) - k, "/%s", clean(cx, s->procid, 100));
    }
    cJSON_AddStringToObject(o, "program", prog);
    cJSON_AddStringToObject(
        o, "severity", s->severity >= 0 && s->severity < 8 ? syslog_sev[s->severity] : "unknown");
    cJSON_AddNumberToObject(o, "facility", s->severity >= 0 ? s->facility : -1);
    cJSON_AddStringToObject(o, "message", clean(cx, s->msg, 2048));
    sample_fields(o, s->msg);
    cJSON_AddNumberToObject(o, "t", (double)s->received_us);
    return o;
}

static double sample_t(const cJSON *o)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "t");
    return cJSON_IsNumber(t) ? t->valuedouble : 0;
}

static const char *sample_id(const cJSON *o)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id");
    return cJSON_IsString(id) ? id->valuestring : "";
}

static bool has_id(const cJSON *arr, const char *id)
{
    const cJSON *x;
    cJSON_ArrayForEach(x, arr) if (strcmp(sample_id(x), id) == 0) return true;
    return false;
}

/* The sample lines kept with a group's state, {"first": [...], "last": [...]}: the first
 * and the last SAMPLES matching lines since the window (or the alert) began, across
 * batches. min_t drops samples that slid out of a threshold window. */
cJSON *sl_alertdoc_lines(const struct sl_alertdoc_ctx *cx, const char *stored,
                         const struct sl_evalgroup *a, double min_t)
{
    cJSON *old = stored ? cJSON_Parse(stored) : NULL;
    cJSON *out = cJSON_CreateObject();
    cJSON *first = cJSON_AddArrayToObject(out, "first");
    cJSON *last = cJSON_AddArrayToObject(out, "last");
    cJSON *cand = cJSON_CreateArray(), *x;

    if (out == NULL || first == NULL || last == NULL || cand == NULL) {
        cJSON_Delete(old);
        cJSON_Delete(cand);
        cJSON_Delete(out);
        return NULL;
    }
    cJSON_ArrayForEach(
        x, cJSON_GetObjectItemCaseSensitive(old, "first")) if (sample_t(x) >= min_t &&
                                                               cJSON_GetArraySize(first) < SAMPLES)
        cJSON_AddItemToArray(first, cJSON_Duplicate(x, 1));
    cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(old, "last")) if (sample_t(x) >= min_t)
        cJSON_AddItemToArray(cand, cJSON_Duplicate(x, 1));
    if (a) {
        for (size_t i = 0; i < SAMPLES; i++) {
            if (!a->first[i].set)
                continue;
            if (cJSON_GetArraySize(first) < SAMPLES)
                cJSON_AddItemToArray(first, sample_json(cx, &a->first[i]));
            cJSON_AddItemToArray(cand, sample_json(cx, &a->first[i]));
        }
        for (size_t i = 0; i < sl_evalgroup_nlast(a); i++)
            cJSON_AddItemToArray(cand, sample_json(cx, sl_evalgroup_last(a, i)));
    }
    /* last: the newest SAMPLES candidates not already in first */
    {
        int n = cJSON_GetArraySize(cand), from = n;
        int kept = 0;
        while (from > 0 && kept < SAMPLES) {
            from--;
            if (!has_id(first, sample_id(cJSON_GetArrayItem(cand, from))))
                kept++;
        }
        for (int i = from; i < n; i++) {
            cJSON *c = cJSON_GetArrayItem(cand, i);
            if (!has_id(first, sample_id(c)) && !has_id(last, sample_id(c)))
                cJSON_AddItemToArray(last, cJSON_Duplicate(c, 1));
        }
    }
    cJSON_Delete(cand);
    cJSON_Delete(old);
    return out;
}

/* The alert's search link (issue 12): GET /api/v1/search on the public URL (docs/api.md)
 * with the sources of the quoted lines, a window from one second before the first quoted
 * line to one second after the last, and the rule's pattern as a query the API accepts
 * (sl_match_search_query: named groups made plain; a pattern the language cannot express
 * is left out and the link shows every line of those sources in that window). An alert
 * without quoted lines (absence) gets its group's source and the rule's window before
 * it fired. */
int sl_alertdoc_search_url(const struct sl_alertdoc_ctx *cx, const struct sl_rule *r,
                           const char *group, const struct sl_alert_state *st,
                           enum sl_alert_event what, const cJSON *kept, int64_t now_us,
                           struct sl_buf *url)
{
    const char *names[URL_SOURCES];
    size_t nnames = 0;
    double lo = 0, hi = 0;
    int64_t since, until;
    char q[SL_QUERY_MAX_LEN + 1], ts[40];
    int rc;

    for (int part = 0; part < 2; part++) {
        const cJSON *x;
        cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(kept, part ? "last" : "first"))
        {
            const cJSON *sn = cJSON_GetObjectItemCaseSensitive(x, "source_name");
            double t = sample_t(x);
            size_t k;

            lo = lo == 0 || t < lo ? t : lo;
            hi = t > hi ? t : hi;
            if (!cJSON_IsString(sn))
                continue;
            for (k = 0; k < nnames && strcmp(names[k], sn->valuestring) != 0; k++)
                ;
            if (k == nnames && nnames < URL_SOURCES)
                names[nnames++] = sn->valuestring;
        }
    }
    if (lo > 0) {
        since = (int64_t)lo - 1000000;
        until = (int64_t)hi + 1000000;
    } else {
        int64_t fired = st->fired_us ? st->fired_us : now_us;
        since = fired - (int64_t)r->window * 1000000 - 1000000;
        until = (what == SL_ALERT_RESOLVE ? now_us : fired) + 1000000;
    }
    if (nnames == 0 && (r->condition == SL_COND_ABSENCE || r->group_by == SL_GROUP_SOURCE))
        names[nnames++] = group;
    if ((rc = sl_buf_addf(url, "%s/api/v1/search?", cx->public_url)) != 0)
        return rc;
    if (sl_match_search_query(r, q, sizeof(q)) > 0) {
        if ((rc = sl_buf_add(url, "q=", 2)) != 0 ||
            (rc = sl_enc_pct(url, q, strlen(q), false)) != 0 || (rc = sl_buf_addc(url, '&')) != 0)
            return rc;
    }
    for (size_t k = 0; k < nnames; k++)
        if ((rc = sl_buf_add(url, "source=", 7)) != 0 ||
            (rc = sl_enc_pct(url, names[k], strlen(names[k]), false)) != 0 ||
            (rc = sl_buf_addc(url, '&')) != 0)
            return rc;
    sl_alertdoc_rfc3339(since, ts);
    if ((rc = sl_buf_add(url, "since=", 6)) != 0 ||
        (rc = sl_enc_pct(url, ts, strlen(ts), false)) != 0)
        return rc;
    sl_alertdoc_rfc3339(until, ts);
    if ((rc = sl_buf_add(url, "&until=", 7)) != 0 ||
        (rc = sl_enc_pct(url, ts, strlen(ts), false)) != 0)
        return rc;
    /* oldest first, so the first quoted lines are on the first page */
    return sl_buf_add(url, "&order=asc&limit=1000", 21);
}

char *sl_alertdoc_doc(const struct sl_alertdoc_ctx *cx, const struct sl_rule *r, int rule_id,
                      const char *group, const struct sl_alert_state *st, enum sl_alert_event what,
                      const cJSON *kept, int64_t now_us)
{
    cJSON *d = cJSON_CreateObject(), *rule, *lines;
    char ts[40], *out = NULL;
    struct sl_buf url;

    if (d == NULL)
        return NULL;
    cJSON_AddStringToObject(d, "id", st->alert_id);
    cJSON_AddStringToObject(d, "event", what == SL_ALERT_FIRE ? "firing" : "resolved");
    rule = cJSON_AddObjectToObject(d, "rule");
    if (rule) {
        cJSON_AddNumberToObject(rule, "id", rule_id);
        cJSON_AddStringToObject(rule, "name", r->name);
        cJSON_AddStringToObject(rule, "condition", cond_names[r->condition]);
        cJSON_AddStringToObject(rule, "pattern", r->pattern);
        cJSON_AddNumberToObject(rule, "window", r->window);
        cJSON_AddNumberToObject(rule, "count", r->count);
        cJSON_AddStringToObject(rule, "severity", sev_names[r->severity & 3]);
    }
    cJSON_AddStringToObject(d, "group", group);
    cJSON_AddNumberToObject(d, "count", (double)st->count);
    {
        /* first_at / last_at: the span of the kept sample lines */
        double lo = 0, hi = 0;
        const cJSON *x;
        for (int part = 0; part < 2; part++)
            cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(kept, part ? "last" : "first"))
            {
                double t = sample_t(x);
                lo = lo == 0 || t < lo ? t : lo;
                hi = t > hi ? t : hi;
            }
        if (lo > 0) {
            sl_alertdoc_rfc3339((int64_t)lo, ts);
            cJSON_AddStringToObject(d, "first_at", ts);
        }
        if (hi > 0 || st->last_match_us) {
            sl_alertdoc_rfc3339(hi > 0 ? (int64_t)hi : st->last_match_us, ts);
            cJSON_AddStringToObject(d, "last_at", ts);
        }
    }
    sl_alertdoc_rfc3339(st->fired_us ? st->fired_us : now_us, ts);
    cJSON_AddStringToObject(d, "fired_at", ts);
    if (what == SL_ALERT_RESOLVE) {
        sl_alertdoc_rfc3339(now_us, ts);
        cJSON_AddStringToObject(d, "resolved_at", ts);
    } else
        cJSON_AddNullToObject(d, "resolved_at");
    lines = cJSON_AddArrayToObject(d, "lines");
    for (int part = 0; lines && part < 2; part++) {
        const cJSON *x;
        cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(kept, part ? "last" : "first"))
        {
            cJSON *c = cJSON_Duplicate(x, 1);
            cJSON_DeleteItemFromObjectCaseSensitive(c, "t");
            cJSON_AddItemToArray(lines, c);
        }
    }
    sl_buf_init(&url, 16384);
    if (sl_alertdoc_search_url(cx, r, group, st, what, kept, now_us, &url) != 0)
        sl_buf_reset(&url);
    if (sl_buf_addc(&url, '\0') == 0)
        cJSON_AddStringToObject(d, "search_url", url.p);
    sl_buf_free(&url);
    out = cJSON_PrintUnformatted(d);
    cJSON_Delete(d);
    return out;
}

int sl_alertdoc_times_parse(const char *text, struct sl_alert_state *st)
{
    /* PostgreSQL array text: {1,2,3} */
    size_t n = 0, cap = 0;
    const char *p = text;

    st->times = NULL;
    st->ntimes = 0;
    if (*p == '{')
        p++;
    while (*p && *p != '}') {
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end == p)
            break;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            int64_t *nt = realloc(st->times, nc * sizeof(*nt));
            if (nt == NULL)
                return SL_ENOMEM;
            st->times = nt;
            cap = nc;
        }
        st->times[n++] = v;
        p = end;
        if (*p == ',')
            p++;
    }
    st->ntimes = (uint32_t)n;
    return 0;
}

int sl_alertdoc_times_text(const struct sl_alert_state *st, struct sl_buf *b)
{
    int rc = sl_buf_addc(b, '{');
    for (uint32_t i = 0; i < st->ntimes && rc == 0; i++)
        rc = sl_buf_addf(b, i ? ",%" PRId64 : "%" PRId64, st->times[i]);
    if (rc == 0)
        rc = sl_buf_add(b, "}", 2);
    return rc;
}
