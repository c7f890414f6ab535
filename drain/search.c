/* Searches and tail reads in PostgreSQL (include/sluice/search.h). Runs on the API's
 * worker and tail threads, never on the event loop. */
#include <ctype.h>
#include <stdatomic.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "sluice/batch.h"
#include "sluice/dayfilter.h"
#include "sluice/db.h"
#include "sluice/enc.h"
#include "sluice/log.h"
#include "sluice/query.h"
#include "sluice/rfc5424.h"
#include "sluice/search.h"
#include "sluice/sources.h"
#include "sluice/tokens.h"

/* ---------------------------------------------------------------- pure helpers */

void sl_search_fmt_time(int64_t us, char out[32])
{
    char tmp[96];
    time_t t = (time_t)(us >= 0 ? us / 1000000 : (us - 999999) / 1000000);
    int64_t frac = us - (int64_t)t * 1000000;
    struct tm tm;

    gmtime_r(&t, &tm);
    snprintf(tmp, sizeof(tmp), "%04d-%02d-%02dT%02d:%02d:%02d.%06d" "Z", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)frac);
    tmp[31] = '\0';
    memcpy(out, tmp, 32);
}

/* An RFC 3339 date-time (sl_rfc3339_parse: 'T', at most 9 fraction digits, a real date,
 * an offset or Z), or a full-date alone ("2026-11-21": that day's UTC midnight). */
static int parse_rfc3339(const char *s, size_t n, int64_t *us)
{
    char stamp[32];
    int fd, off;

    if (n == 10) {
        /* the date-only form, checked by the same parser at 00:00:00Z */
        memcpy(stamp, s, 10);
        memcpy(stamp + 10, "T00:00:00Z", 11);
        s = stamp;
        n = 20;
    }
    return sl_rfc3339_parse(s, n, us, &fd, &off);
}

int sl_search_parse_time(const char *s, int64_t now_us, int64_t *us)
{
    size_t n = strlen(s);
    char *end;

    if (n == 0 || n > 64)
        return SL_EPARSE;
    if (parse_rfc3339(s, n, us) == 0)
        return 0;
    if (isdigit((unsigned char)s[0])) {
        /* relative: digits then one unit */
        unsigned long long v = strtoull(s, &end, 10);
        int64_t unit = 0;
        if (end[0] && !end[1]) {
            switch (end[0]) {
            case 's':
                unit = 1;
                break;
            case 'm':
                unit = 60;
                break;
            case 'h':
                unit = 3600;
                break;
            case 'd':
                unit = 86400;
                break;
            case 'w':
                unit = 7 * 86400;
                break;
            default:
                return SL_EPARSE;
            }
            if (v > 100ULL * 365 * 86400 / (unsigned long long)unit)
                return SL_EPARSE;
            *us = now_us - (int64_t)v * unit * 1000000;
            return 0;
        }
        /* Unix seconds, with an optional fraction */
        if (*end == '\0' || *end == '.') {
            int64_t frac = 0, scale = 100000;
            if (v > 1ULL << 40)
                return SL_EPARSE;
            if (*end == '.') {
                end++;
                if (!isdigit((unsigned char)*end))
                    return SL_EPARSE;
                for (; isdigit((unsigned char)*end); end++) {
                    frac += (*end - '0') * scale;
                    scale /= 10;
                }
                if (*end)
                    return SL_EPARSE;
            }
            *us = (int64_t)v * 1000000 + frac;
            return 0;
        }
    }
    return SL_EPARSE;
}

int sl_search_parse_cursor(const char *s, char *dir, int64_t *us, int64_t *id)
{
    char *end;
    long long a, b;

    if ((s[0] != 'o' && s[0] != 'n') || !isdigit((unsigned char)s[1]))
        return SL_EPARSE;
    a = strtoll(s + 1, &end, 10);
    if (*end != '.' || !isdigit((unsigned char)end[1]))
        return SL_EPARSE;
    b = strtoll(end + 1, &end, 10);
    if (*end != '\0' || a <= 0 || b <= 0 || a >= INT64_MAX / 2 || b == INT64_MAX)
        return SL_EPARSE;
    *dir = s[0];
    *us = a;
    *id = b;
    return 0;
}

void sl_search_cursor(char dir, int64_t us, int64_t id, char out[48])
{
    snprintf(out, 48, "%c%" PRId64 ".%" PRId64, dir, us, id);
}

/* ---------------------------------------------------------------- answer caps */

static size_t sat_add(size_t a, size_t b)
{
    return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

static size_t sat_mul(size_t a, size_t b)
{
    return b != 0 && a > SIZE_MAX / b ? SIZE_MAX : a * b;
}

size_t sl_search_event_max(size_t max_message, size_t max_header)
{
    size_t text = sat_mul(max_message, SL_SEARCH_JSON_EXPANSION);
    size_t raw = sat_mul(max_message / 3 + (max_message % 3 != 0), 4);
    size_t head = sat_mul(max_header, SL_SEARCH_JSON_EXPANSION);
    /* fields: the jsonb of the message's object (drain/fields.c bounds its numbers so
     * their digits stay within this) */
    size_t fields = sat_mul(max_message, SL_SEARCH_JSON_EXPANSION);

    return sat_add(sat_add(sat_add(sat_add(text, raw), head), fields), SL_SEARCH_EVENT_FIXED);
}

size_t sl_search_answer_max(size_t limit, size_t max_message, size_t max_header)
{
    size_t ev = sat_add(sl_search_event_max(max_message, max_header), 1); /* and a comma */

    return sat_add(sat_mul(limit, ev), SL_SEARCH_ANSWER_FIXED);
}

/* "2026-11-22 04:16:01.123456+00": timestamptz input, exact to the microsecond. */
static void pg_time(int64_t us, char out[40])
{
    char tmp[96];
    time_t t = (time_t)(us >= 0 ? us / 1000000 : (us - 999999) / 1000000);
    int64_t frac = us - (int64_t)t * 1000000;
    struct tm tm;

    gmtime_r(&t, &tm);
    snprintf(tmp, sizeof(tmp), "%04d-%02d-%02d %02d:%02d:%02d.%06d" "+00", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)frac);
    tmp[39] = '\0';
    memcpy(out, tmp, 40);
}

/* ---------------------------------------------------------------- JSON bits */

static void json_error(struct sl_buf *b, const char *msg, long pos)
{
    sl_buf_reset(b);
    if (sl_buf_add(b, "{\"error\":", 9) || sl_enc_json_str(b, msg, strlen(msg)) ||
        (pos >= 0 && sl_buf_addf(b, ",\"position\":%ld", pos)) || sl_buf_add(b, "}\n", 2)) {
        sl_buf_reset(b);
        if (sl_buf_add(b, "{\"error\":\"out of memory\"}\n", 26))
            b->len = 0;
    }
}

/* ---------------------------------------------------------------- the plan */

/* Every query's SQL pieces: the predicate over `logs l` and the block filter over
 * `log_blocks b`, each with its own parameter list. */
struct plan {
    struct sl_buf pred;              /* "(...)" using $first.. */
    struct sl_query_params pp;       /* its values */
    struct sl_buf bloom;             /* "" or " AND ((...) OR (...))" using $bfirst.. */
    struct sl_query_params bp;
    char *scope;                     /* "{1,2,3}" */
    bool wide;                       /* scope holds most sources: filter blocks, no index */
    /* the day level's look-up (fetch_blocks): per token its slice, h1, h2 and the index
     * of its conjunction, as arrays; nconj 0 when the query has no token */
    struct sl_buf dl_sl, dl_hs, dl_h1, dl_h2, dl_c, dl_lead, dl_lhs;
    size_t nconj;
    bool nolevel; /* a conjunction of numeric classes only: the levels cannot check it */
    /* sl_query_needles' text[] literal: what every match's message holds; "{}": nothing
     * known, packs are read whole */
    struct sl_buf needles;
    struct sl_query_params np; /* pp, then the needles; empty when there are none */
};

static void plan_init(struct plan *pl)
{
    memset(pl, 0, sizeof(*pl));
    sl_buf_init(&pl->pred, 1u << 22);
    sl_buf_init(&pl->bloom, 1u << 20);
    sl_buf_init(&pl->dl_sl, 1u << 20);
    sl_buf_init(&pl->dl_h1, 1u << 20);
    sl_buf_init(&pl->dl_h2, 1u << 20);
    sl_buf_init(&pl->dl_c, 1u << 20);
    sl_buf_init(&pl->dl_lead, 1u << 20);
    sl_buf_init(&pl->dl_hs, 1u << 20);
    sl_buf_init(&pl->dl_lhs, 1u << 20);
    sl_buf_init(&pl->needles, 1u << 20);
    sl_query_params_init(&pl->np);
    sl_query_params_init(&pl->pp);
    sl_query_params_init(&pl->bp);
}

static void plan_free(struct plan *pl)
{
    sl_buf_free(&pl->pred);
    sl_buf_free(&pl->bloom);
    sl_buf_free(&pl->dl_sl);
    sl_buf_free(&pl->dl_h1);
    sl_buf_free(&pl->dl_h2);
    sl_buf_free(&pl->dl_c);
    sl_buf_free(&pl->dl_lead);
    sl_buf_free(&pl->dl_hs);
    sl_buf_free(&pl->dl_lhs);
    sl_buf_free(&pl->needles);
    sl_query_params_free(&pl->np);
    sl_query_params_free(&pl->pp);
    sl_query_params_free(&pl->bp);
    free(pl->scope);
}

static int param_push(struct sl_query_params *p, const char *v)
{
    if (p->n == p->cap) {
        size_t nc = p->cap ? p->cap * 2 : 16;
        char **nv = realloc(p->v, nc * sizeof(*nv));
        if (nv == NULL)
            return SL_ENOMEM;
        p->v = nv;
        p->cap = nc;
    }
    if ((p->v[p->n] = strdup(v)) == NULL)
        return SL_ENOMEM;
    p->n++;
    return 0;
}

static char *ids_literal(const int64_t *ids, size_t n)
{
    struct sl_buf b;
    int rc;

    sl_buf_init(&b, 1u << 24);
    rc = sl_buf_addc(&b, '{');
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = sl_buf_addf(&b, "%s%" PRId64, i ? "," : "", ids[i]);
    if (rc == 0)
        rc = sl_buf_add(&b, "}", 2);
    if (rc) {
        sl_buf_free(&b);
        return NULL;
    }
    return b.p;
}

/* Whether conjunction c's words (its tokens but numeric classes) are an earlier one's. */
static bool same_words(const struct sl_query_tokens *tk, size_t c)
{
    for (size_t e = 0; e < c; e++) {
        size_t i = tk->off[e], j = tk->off[c];
        for (;;) {
            while (i < tk->off[e + 1] && tk->cls[i])
                i++;
            while (j < tk->off[c + 1] && tk->cls[j])
                j++;
            if (i == tk->off[e + 1] || j == tk->off[c + 1]) {
                if (i == tk->off[e + 1] && j == tk->off[c + 1])
                    return true;
                break;
            }
            if (tk->hash[i++] != tk->hash[j++])
                break;
        }
    }
    return false;
}

/* Build the plan for q over scope; pred placeholders start at $pfirst, bloom ones at
 * $bfirst. On a bad query: SL_EPARSE with the JSON error in err. */
static int plan_build(struct plan *pl, struct sl_sources *src, const char *q, const int64_t *scope,
                      size_t nscope, int pfirst, int bfirst, struct sl_buf *err)
{
    struct sl_query *ast = NULL;
    struct sl_query_err qe = {0, 0, NULL};
    const char *names[SL_QUERY_MAX_TERMS];
    struct sl_query_ids ids[SL_QUERY_MAX_TERMS];
    int64_t *idbuf = NULL;
    size_t nnames, qlen = strlen(q), k = 0;
    struct sl_query_tokens tk = {0};
    int rc;
    bool blank = true;

    if ((pl->scope = ids_literal(scope, nscope)) == NULL)
        return SL_ENOMEM;
    pl->wide = nscope * 2 > sl_sources_count(src);
    for (size_t i = 0; i < qlen; i++)
        blank &= q[i] == ' ' || q[i] == '\t' || q[i] == '\r' || q[i] == '\n';
    if (blank)
        return sl_buf_add(&pl->pred, "TRUE", 5) ? SL_ENOMEM : (pl->pred.len--, 0);
    rc = sl_query_parse(q, qlen, &ast, &qe);
    if (rc == SL_EPARSE || rc == SL_ETOOBIG) {
        char msg[256], full[300];
        sl_query_errfmt(&qe, q, qlen, msg, sizeof(msg));
        snprintf(full, sizeof(full), "bad query: %s", msg);
        json_error(err, full, (long)qe.pos);
        return SL_EPARSE;
    }
    if (rc)
        return rc;
    /* source: terms see only the sources in scope */
    nnames = sl_query_sources(ast, names, SL_QUERY_MAX_TERMS);
    if (nnames > SL_QUERY_MAX_TERMS)
        nnames = SL_QUERY_MAX_TERMS;
    idbuf = calloc(nnames * (nscope ? nscope : 1) + 1, sizeof(*idbuf));
    if (idbuf == NULL) {
        rc = SL_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < nnames; i++) {
        ids[i].ids = idbuf + k;
        ids[i].n = 0;
        for (size_t j = 0; j < nscope; j++) {
            char name[SL_SOURCE_NAME_MAX + 1];
            if (sl_sources_name(src, scope[j], name, sizeof(name)) &&
                sl_sources_glob(names[i], strlen(names[i]), name, strlen(name))) {
                idbuf[k++] = scope[j];
                ids[i].n++;
            }
        }
    }
    if ((rc = sl_query_sql(ast, pfirst, ids, nnames, &pl->pred, &pl->pp)))
        goto out;
    if ((rc = sl_query_needles(ast, &pl->needles)) || (rc = sl_buf_addc(&pl->needles, '\0')))
        goto out;
    pl->needles.len--;
    if (pl->needles.len > 2) {
        for (size_t i = 0; i < pl->pp.n && rc == 0; i++)
            rc = param_push(&pl->np, pl->pp.v[i]);
        if (rc || (rc = param_push(&pl->np, pl->needles.p)))
            goto out;
    }
    if ((rc = sl_query_tokens(ast, &tk)))
        goto out;
    if (tk.nconj > 0) {
        int n = bfirst;
        rc = sl_buf_add(&pl->bloom, " AND (", 6);
        size_t nl = 0; /* tokens in the levels' arrays */
        for (size_t c = 0; c < tk.nconj && rc == 0; c++) {
            /* the levels check a conjunction's words; one whose words an earlier one has
             * too (a number compared: one conjunction per class, the same words) adds
             * nothing there */
            bool word = false, dup = same_words(&tk, c);
            size_t lead = SIZE_MAX; /* the levels check its rarest-looking word first */
            for (size_t h = tk.off[c]; h < tk.off[c + 1]; h++)
                if (!tk.cls[h] && (lead == SIZE_MAX || tk.rare[h] > tk.rare[lead]))
                    lead = h;
            rc = sl_buf_add(&pl->bloom, c ? " OR (" : "(", c ? 5 : 1);
            for (size_t h = tk.off[c]; h < tk.off[c + 1] && rc == 0; h++) {
                char v1[24], v2[24];
                uint64_t hv = tk.hash[h];
                snprintf(v1, sizeof(v1), "%" PRIu64, hv & 0xffffffffu);
                snprintf(v2, sizeof(v2), "%" PRIu64, (hv >> 32) | 1u);
                /* a numeric class: only in filters written with classes; never in the
                 * day and hour levels (include/sluice/query.h) */
                rc = sl_buf_addf(&pl->bloom,
                                 tk.cls[h] ? "%s(NOT b.classes OR sl_bloom_has1(b.bloom, b.nbits, "
                                             "$%d::bigint, $%d::bigint))"
                                           : "%ssl_bloom_has1(b.bloom, b.nbits, $%d::bigint, "
                                             "$%d::bigint)",
                                 h > tk.off[c] ? " AND " : "", n, n + 1);
                if (!tk.cls[h])
                    word = true;
                if (rc == 0 && !tk.cls[h] && !dup) {
                    const char *sep = nl++ > 0 ? "," : "{";
                    rc = sl_buf_addf(&pl->dl_sl, "%s%u", sep, sl_dayfilter_slice(hv)) ||
                         sl_buf_addf(&pl->dl_hs, "%s%u", sep,
                                     sl_dayfilter_slice_of(hv, SL_HOURFILTER_SLICES)) ||
                         sl_buf_addf(&pl->dl_h1, "%s%s", sep, v1) ||
                         sl_buf_addf(&pl->dl_h2, "%s%s", sep, v2) ||
                         sl_buf_addf(&pl->dl_c, "%s%zu", sep, c) ||
                         sl_buf_addf(&pl->dl_lead, "%s%c", sep, h == lead ? 't' : 'f');
                    if (rc == 0 && h == lead)
                        rc = sl_buf_addf(&pl->dl_lhs, "%s%u", pl->dl_lhs.len ? "," : "{",
                                         sl_dayfilter_slice_of(hv, SL_HOURFILTER_SLICES));
                }
                if (rc == 0)
                    rc = param_push(&pl->bp, v1);
                if (rc == 0)
                    rc = param_push(&pl->bp, v2);
                n += 2;
            }
            if (rc == 0)
                rc = sl_buf_addc(&pl->bloom, ')');
            if (!word) /* a conjunction the levels cannot check: they are not read */
                pl->nolevel = true;
        }
        if (rc == 0)
            rc = sl_buf_addc(&pl->bloom, ')');
        if (rc == 0 && nl == 0)
            rc = sl_buf_addc(&pl->dl_sl, '{') || sl_buf_addc(&pl->dl_h1, '{') ||
                 sl_buf_addc(&pl->dl_h2, '{') || sl_buf_addc(&pl->dl_c, '{') ||
                 sl_buf_addc(&pl->dl_lead, '{') || sl_buf_addc(&pl->dl_hs, '{') ||
                 sl_buf_addc(&pl->dl_lhs, '{');
        if (rc == 0)
            rc = sl_buf_add(&pl->dl_sl, "}", 2) || sl_buf_add(&pl->dl_h1, "}", 2) ||
                 sl_buf_add(&pl->dl_h2, "}", 2) || sl_buf_add(&pl->dl_c, "}", 2) ||
                 sl_buf_add(&pl->dl_lead, "}", 2) || sl_buf_add(&pl->dl_hs, "}", 2) ||
                 sl_buf_add(&pl->dl_lhs, "}", 2);
        pl->nconj = tk.nconj;
    }
    if (rc == 0)
        rc = sl_buf_addc(&pl->bloom, '\0');
    if (rc == 0)
        pl->bloom.len--;
    if (rc == 0)
        rc = sl_buf_addc(&pl->pred, '\0');
    if (rc == 0)
        pl->pred.len--;
out:
    sl_query_tokens_free(&tk);
    sl_query_free(ast);
    free(idbuf);
    return rc;
}

/* ---------------------------------------------------------------- SQL pieces */

#define FAC_NAMES                                                                                  \
    "ARRAY['kern','user','mail','daemon','auth','syslog','lpr','news','uucp','cron',"             \
    "'authpriv','ftp','ntp','security','console','solaris-cron','local0','local1','local2',"      \
    "'local3','local4','local5','local6','local7']"
#define SEV_NAMES "ARRAY['emerg','alert','crit','err','warning','notice','info','debug']"
#define TS_US(col) "(extract(epoch from " col ") * 1000000)::bigint"

/* The rows of one block (log_blocks): source s, received r0..r1, ids i0..i1, packed pk.
 * A live block's are in logs (through the (source_id, received_at) index); a packed
 * block's are exactly its pack (log_packs, docs/search.md "Compacted days"). The
 * planner pushes a WHERE on the result into both arms. */
#define BLOCK_ROWS_F(s, r0, r1, i0, i1, pk, packrows)                                              \
    "(SELECT * FROM logs l WHERE NOT " pk " AND l.source_id = " s " AND l.received_at BETWEEN "   \
    r0 " AND " r1 " AND l.id BETWEEN " i0 " AND " i1 " UNION ALL SELECT u.* FROM log_packs p "   \
    "CROSS JOIN LATERAL " packrows " u WHERE " pk " AND p.source_id = " s " AND p.day = ("         \
    r0 " AT TIME ZONE 'UTC')::date AND p.min_id = " i0 ")"
#define BLOCK_ROWS(s, r0, r1, i0, i1, pk)                                                          \
    BLOCK_ROWS_F(s, r0, r1, i0, i1, pk, "sl_pack_rows(p.rows, p.data)")
#define ISO_US(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
#define ISO_S(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"+00:00\"')"

/* The JSON of one row of `logs l` (every column), as docs/api.md shows it. */
#define EVENT_JSON                                                                                 \
    "json_build_object('id', l.id::text, 'received_at', " ISO_US("l.received_at") ", " \
    "'source', (SELECT s.name FROM sources s WHERE s.id = l.source_id), " \
    "'source_id', l.source_id, 'emitted_at', " ISO_US("l.emitted_at") ", " \
    "'emitted_precision', l.emitted_precision, 'emitted_offset', l.emitted_offset, " \
    "'facility', l.facility, 'facility_name', (" FAC_NAMES ")[l.facility + 1], " \
    "'severity', l.severity, 'severity_name', (" SEV_NAMES ")[l.severity + 1], " \
    "'hostname', l.hostname, 'app_name', l.app_name, 'procid', l.procid, 'msgid', l.msgid, " \
    "'sd', l.sd, 'message', l.message, " \
    "'message_raw', translate(encode(l.message_raw, 'base64'), E'\\n', ''), " \
    "'parse_error', l.parse_error, 'truncated_from', l.truncated_from, 'tags', l.tags, " \
    "'frame_id', l.frame_id, " \
    "'fields', CASE WHEN l.json_at IS NOT NULL THEN substr(l.message, l.json_at)::jsonb END)::text"
static const char event_json[] = EVENT_JSON;

/* Papertrail's event (docs/api.md). */
static const char papertrail_json[] =
    "json_build_object('id', l.id::text, 'received_at', " ISO_S("l.received_at") ", "
    "'generated_at', " ISO_S("coalesce(l.emitted_at, l.received_at)") ", "
    "'display_received_at', to_char(l.received_at AT TIME ZONE 'UTC', 'Mon DD HH24:MI:SS'), "
    "'source_ip', NULL, 'source_name', (SELECT s.name FROM sources s WHERE s.id = l.source_id), "
    "'source_id', l.source_id, 'hostname', l.hostname, "
    "'program', CASE WHEN l.app_name IS NOT NULL AND l.procid IS NOT NULL "
    "THEN l.app_name || '/' || l.procid ELSE coalesce(l.app_name, l.procid) END, "
    "'severity', initcap((" SEV_NAMES ")[l.severity + 1]), "
    "'facility', initcap((" FAC_NAMES ")[l.facility + 1]), 'message', l.message)::text";

/* The fixed values then the plan's parameter list a, in order, as one array of *n
 * (caller frees), or NULL without memory. */
static const char **run_params(const char *const *fixed, int nfixed,
                               const struct sl_query_params *a, int *n)
{
    const char **v;
    int k = 0;

    *n = nfixed + (int)a->n;
    if ((v = calloc((size_t)*n + 1, sizeof(*v))) == NULL)
        return NULL;
    for (int i = 0; i < nfixed; i++)
        v[k++] = fixed[i];
    for (size_t i = 0; i < a->n; i++)
        v[k++] = a->v[i];
    return v;
}

/* A statement that did not return rows: *status and body filled by its SQLSTATE, r
 * cleared. See run(). */
static int result_error(PGconn *pg, const char *what, PGresult *r, int *status,
                        struct sl_buf *body)
{
    const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    bool tmo = st && strcmp(st, "57014") == 0;
    bool bad_re = st && strcmp(st, "2201B") == 0; /* invalid_regular_expression */

    if (!bad_re)
        sl_db_log_error(what, pg, r);
    *status = tmo ? 504 : bad_re ? 400 : 500;
    json_error(body, tmo      ? "search timed out: narrow the time range or the query"
                     : bad_re ? "bad query: the regular expression is not valid"
                              : "search failed",
               -1);
    PQclear(r);
    return tmo ? SL_ETOOBIG : bad_re ? SL_EPARSE : SL_EDB;
}

/* Run a search statement with those parameters: 0 and *res (its rows), SL_ENOMEM, or,
 * when it did not return rows, *status and body filled by its SQLSTATE (not
 * sl_db_exec, which clears the result): a timeout (57014) is a 504, a regular
 * expression PostgreSQL refuses (2201B: the user's, so not logged) a 400, anything else
 * a 500 logged as what; SL_ETOOBIG, SL_EPARSE or SL_EDB. */
static int run(PGconn *pg, const char *what, const char *sql, const char *const *fixed,
               int nfixed, const struct sl_query_params *a, int *status, struct sl_buf *body,
               PGresult **res)
{
    int n;
    const char **v = run_params(fixed, nfixed, a, &n);
    PGresult *r;

    *res = NULL;
    if (v == NULL)
        return SL_ENOMEM;
    r = PQexecParams(pg, sql, n, NULL, v, NULL, NULL, 0);
    free(v);
    if (r == NULL)
        return SL_ENOMEM;
    if (PQresultStatus(r) == PGRES_TUPLES_OK) {
        *res = r;
        return 0;
    }
    return result_error(pg, what, r, status, body);
}

/* The same through sl_db_exec: 0 and *res, or SL_EDB (logged as what), SL_ENOMEM. */
static int run_checked(PGconn *pg, const char *what, const char *sql, const char *const *fixed,
                       int nfixed, const struct sl_query_params *a, PGresult **res)
{
    int n, rc;
    const char **v = run_params(fixed, nfixed, a, &n);

    if (v == NULL)
        return SL_ENOMEM;
    rc = sl_db_exec(pg, what, sql, n, v, res);
    free(v);
    return rc;
}

/* ---------------------------------------------------------------- search */

struct blk {
    int64_t source_id, min_us, max_us, min_id, max_id;
    int64_t nrows; /* as its log_blocks row says (an open block may have more by now) */
    bool packed;   /* its rows are its pack's (log_packs), not in logs */
};

/* A match's key: the row's JSON is fetched only for the matches that fit the answer. */
struct hit {
    int64_t us, id, src;
    int64_t pack; /* the min_id of the packed block it was read from, or -1 */
};

struct run {
    PGconn *pg;
    const struct sl_search_params *p;
    struct plan pl;
    bool desc;            /* fetch direction */
    int64_t lo_us, hi_us; /* rows: lo <= received_at < hi */
    char cdir;            /* cursor bound on (received_at, id), 0 = none */
    int64_t c_us, c_id;
    struct blk *blks;
    size_t nblk, capblk, next; /* blocks fetched; next to visit */
    bool blocks_done;          /* no more blocks beyond those fetched */
    struct blk key;            /* keyset of the last block fetched */
    bool have_key;
    struct hit *hits;
    size_t nhits, caphits;
    struct sl_buf sql, a1, a2, a3, a4, a5, a6;
    /* the coarse levels, looked up once per search (day_level): 0 not yet, 1 no use
     * (every block through the filters), 2 the coarse blocks of dl_src/dl_day and the
     * hourly blocks of hl_src/hl_hour only */
    int dl;
    char *dl_src, *dl_day, *hl_src, *hl_hour;
};

static bool cancelled(const struct run *R)
{
    return R->p->cancel != NULL && atomic_load(R->p->cancel) != 0;
}

#define BLOCK_PAGE 2048

/* The array p of *cap elements of size el, reallocated to twice that (256 at first):
 * the new pointer and *cap, or NULL (p untouched) without memory. */
static void *grow(void *p, size_t *cap, size_t el)
{
    size_t nc = *cap ? *cap * 2 : 256;
    void *np = realloc(p, nc * el);

    if (np != NULL)
        *cap = nc;
    return np;
}

/* The day level (docs/search.md "The day level"): the packed (source, day)s of the
 * window whose sliced day filters may hold the query (every token of one conjunction), and
 * how many packed (source, day)s the window has. When at most a quarter pass, the blocks
 * are read as the live ones (not coarse) plus the coarse ones of those (source, day)s
 * only; otherwise (or with no token, or no day level in the window) every block is
 * checked as before. One statement, once per search. */
static _Atomic int day_level_mode; /* 0 auto, 1 always, 2 off */

int sl_search_set_day_level(const char *mode)
{
    int m = !strcmp(mode, "auto") ? 0 : !strcmp(mode, "always") ? 1 : !strcmp(mode, "off") ? 2 : -1;
    atomic_store(&day_level_mode, m < 0 ? 0 : m);
    return m < 0 ? SL_EINVAL : 0;
}

/* The day level (packed days, drain/compact.c) and the hour level (closed hours of live
 * blocks, drain/hourlevel.c) of the window, in one statement: the (source, day)s and
 * (source, hour)s whose filters may hold every token of some conjunction. Used when at
 * most a quarter of them pass (or always, SLUICE_SEARCH_DAY_LEVEL=always). */
static int day_level(struct run *R, int *status, struct sl_buf *body)
{
    char d0[16], d1[16], h0[24], h1[24];
    const char *v[12] = {R->pl.scope, d0, d1, R->pl.dl_sl.p, R->pl.dl_h1.p, R->pl.dl_h2.p,
                         R->pl.dl_c.p, h0, h1, R->pl.dl_lead.p, R->pl.dl_hs.p, R->pl.dl_lhs.p};
    struct sl_query_params none = {NULL, 0, 0};
    time_t t0 = (time_t)(R->lo_us / 1000000), t1 = (time_t)((R->hi_us - 1) / 1000000);
    struct tm tm;
    PGresult *r;
    long long days, dpass, hours, hpass;
    int rc;

    int mode = atomic_load(&day_level_mode);

    R->dl = 1;
    if (R->pl.nconj == 0 || R->pl.nolevel || R->hi_us <= R->lo_us || mode == 2)
        return 0;
    gmtime_r(&t0, &tm);
    strftime(d0, sizeof(d0), "%Y-%m-%d", &tm);
    gmtime_r(&t1, &tm);
    strftime(d1, sizeof(d1), "%Y-%m-%d", &tm);
    snprintf(h0, sizeof(h0), "%lld", (long long)t0 - (long long)t0 % 3600);
    /* an hourly block spans less than an hour (drain/hourlevel.c): one overlapping the
     * window has its newest row at most in the hour after the window's last */
    snprintf(h1, sizeof(h1), "%lld", (long long)t1 - (long long)t1 % 3600 + 3600);
    if ((rc = run(R->pg, "search day level failed",
                  /* per conjunction, its lead (rarest-looking) word first, through every
                   * (source, day) and (source, hour, gen) of the window; the others only
                   * where the lead may be (a primary-key probe each). $12, the leads' hour
                   * slices, tells the planner how few rows of log_hour_filters they are
                   * (a hash join on slice read all of it: 60 ms at 435k rows) */
                  "WITH t AS (SELECT * FROM unnest($4::smallint[], $5::bigint[], $6::bigint[], "
                  "$7::int[], $10::boolean[], $11::smallint[]) AS t (s, h1, h2, c, lead, hs)), "
                  "p AS (SELECT DISTINCT f.source_id, f.day FROM t l JOIN log_day_filters f ON "
                  "f.slice = l.s WHERE l.lead AND f.day >= $2::date AND f.day <= $3::date AND "
                  "f.source_id = ANY($1::bigint[]) AND sl_bloom_has1(f.bloom, f.nbits, l.h1, l.h2) "
                  "AND NOT EXISTS (SELECT 1 FROM t o JOIN log_day_filters g ON g.slice = o.s AND "
                  "g.day = f.day AND g.source_id = f.source_id WHERE o.c = l.c AND NOT o.lead AND "
                  "NOT sl_bloom_has1(g.bloom, g.nbits, o.h1, o.h2))), "
                  "q AS (SELECT DISTINCT f.source_id, f.hour FROM t l JOIN log_hour_filters f ON "
                  "f.slice = l.hs WHERE l.lead AND f.slice = ANY($12::smallint[]) AND f.hour >= "
                  "to_timestamp($8::bigint) AND "
                  "f.hour <= to_timestamp($9::bigint) AND f.source_id = ANY($1::bigint[]) AND "
                  "sl_bloom_has1(f.bloom, f.nbits, l.h1, l.h2) AND NOT EXISTS (SELECT 1 FROM t o "
                  "JOIN log_hour_filters g ON g.slice = o.hs AND g.hour = f.hour AND "
                  "g.source_id = f.source_id AND g.gen = f.gen WHERE o.c = l.c AND NOT o.lead AND "
                  "NOT sl_bloom_has1(g.bloom, g.nbits, o.h1, o.h2))) "
                  "SELECT (SELECT count(*) FROM log_day_filters WHERE slice = 0 AND day >= "
                  "$2::date AND day <= $3::date AND source_id = ANY($1::bigint[])), "
                  "(SELECT count(*) FROM p), (SELECT coalesce(array_agg(source_id ORDER BY "
                  "source_id, day), '{}') FROM p), (SELECT coalesce(array_agg(day ORDER BY "
                  "source_id, day), '{}') FROM p), "
                  "(SELECT count(DISTINCT (source_id, hour)) FROM log_hour_filters WHERE slice = "
                  "0 AND hour >= to_timestamp($8::bigint) AND hour <= to_timestamp($9::bigint) "
                  "AND source_id = ANY($1::bigint[])), (SELECT count(*) FROM q), "
                  "(SELECT coalesce(array_agg(source_id ORDER BY source_id, hour), '{}') FROM q), "
                  "(SELECT coalesce(array_agg(extract(epoch FROM hour)::bigint ORDER BY "
                  "source_id, hour), '{}') FROM q)",
                  v, 12, &none, status, body, &r)))
        return rc;
    days = atoll(PQgetvalue(r, 0, 0));
    dpass = atoll(PQgetvalue(r, 0, 1));
    hours = atoll(PQgetvalue(r, 0, 4));
    hpass = atoll(PQgetvalue(r, 0, 5));
    if (days + hours > 0 && ((dpass + hpass) * 4 <= days + hours || mode == 1)) {
        R->dl_src = strdup(PQgetvalue(r, 0, 2));
        R->dl_day = strdup(PQgetvalue(r, 0, 3));
        R->hl_src = strdup(PQgetvalue(r, 0, 6));
        R->hl_hour = strdup(PQgetvalue(r, 0, 7));
        if (R->dl_src == NULL || R->dl_day == NULL || R->hl_src == NULL || R->hl_hour == NULL) {
            PQclear(r);
            return SL_ENOMEM;
        }
        R->dl = 2;
    }
    sl_debug("search day level", "packed_days=%lld passing=%lld used=%d hours=%lld "
             "passing_hours=%lld", days, dpass, R->dl == 2, hours, hpass);
    PQclear(r);
    return 0;
}

#define BLK_COLS "b.source_id, b.min_received, b.max_received, b.min_id, b.max_id, b.packed, b.nrows"

static int fetch_blocks(struct run *R, int *status, struct sl_buf *body)
{
    char blo[40], bhi[40], k1[40], k2[24], k3[24];
    const char *fixed[6] = {R->pl.scope, blo, bhi, k1, k2, k3};
    int64_t lo = R->lo_us, hi = R->hi_us - 1;
    PGresult *r;
    int rc;

    if (R->dl == 0 && (rc = day_level(R, status, body)))
        return rc;
    if (R->cdir == 'o' && R->c_us < hi)
        hi = R->c_us;
    if (R->cdir == 'n' && R->c_us > lo)
        lo = R->c_us;
    pg_time(lo, blo);
    pg_time(hi, bhi);
    if (R->have_key) {
        pg_time(R->desc ? R->key.max_us : R->key.min_us, k1);
        snprintf(k2, sizeof(k2), "%" PRId64, R->key.source_id);
        snprintf(k3, sizeof(k3), "%" PRId64, R->key.min_id);
    } else {
        snprintf(k1, sizeof(k1), "%s", R->desc ? "infinity" : "-infinity");
        snprintf(k2, sizeof(k2), "%s", R->desc ? "9223372036854775807" : "0");
        snprintf(k3, sizeof(k3), "%s", R->desc ? "9223372036854775807" : "0");
    }
    /* A scope of most sources is checked on each block read by time (hashed ANY) rather
     * than through a source_id index: a 7-day request id over 50 sources took 53 ms
     * through the bitmap of log_blocks_key and 38 ms without it; one source keeps its
     * (source_id, max_received) index. */
    const char *ord = R->desc ? "b.max_received DESC, b.source_id DESC, b.min_id DESC"
                              : "b.min_received, b.source_id, b.min_id";
    const char *kcol = R->desc ? "b.max_received" : "b.min_received", *kop = R->desc ? "<" : ">";
    const char *bl = R->pl.bloom.len ? R->pl.bloom.p : "";
    sl_buf_reset(&R->sql);
    if (R->dl != 2) {
        if (sl_buf_addf(&R->sql,
                        "SELECT b.source_id, " TS_US("b.min_received") ", " TS_US("b.max_received")
                        ", b.min_id, b.max_id, b.packed, b.nrows FROM log_blocks b "
                        "WHERE %s = ANY($1::bigint[]) AND b.max_received >= $2::timestamptz "
                        "AND b.min_received <= $3::timestamptz "
                        "AND (%s, b.source_id, b.min_id) %s ($4::timestamptz, $5::bigint, $6::bigint)"
                        "%s ORDER BY %s LIMIT %d",
                        R->pl.wide ? "(b.source_id + 0)" : "b.source_id", kcol, kop, bl, ord,
                        BLOCK_PAGE) ||
            sl_buf_addc(&R->sql, '\0'))
            return SL_ENOMEM;
        if ((rc = run(R->pg, "search blocks failed", R->sql.p, fixed, 6, &R->pl.bp, status, body,
                      &r)))
            return rc;
    } else {
        /* the blocks without a level (the open hours' live ones, late ones, packed ones
         * without a day level), the coarse blocks of the passing (source, day)s and the
         * hourly blocks of the passing (source, hour)s, both found through (source_id,
         * max_received): a coarse block lies inside its day, an hourly one's newest row in
         * its hour */
        struct sl_query_params ext = {NULL, R->pl.bp.n + 4, 0};
        int na = 7 + (int)R->pl.bp.n;
        if ((ext.v = calloc(ext.n, sizeof(*ext.v))) == NULL)
            return SL_ENOMEM;
        for (size_t i = 0; i < R->pl.bp.n; i++)
            ext.v[i] = R->pl.bp.v[i];
        ext.v[R->pl.bp.n] = R->dl_src;
        ext.v[R->pl.bp.n + 1] = R->dl_day;
        ext.v[R->pl.bp.n + 2] = R->hl_src;
        ext.v[R->pl.bp.n + 3] = R->hl_hour;
        rc = sl_buf_addf(&R->sql,
                         "SELECT b.source_id, " TS_US("b.min_received") ", " TS_US("b.max_received")
                         ", b.min_id, b.max_id, b.packed, b.nrows FROM ("
                         "(SELECT " BLK_COLS " FROM log_blocks b WHERE NOT b.coarse AND NOT "
                         "b.hourly AND %s = ANY($1::bigint[]) "
                         "AND b.max_received >= $2::timestamptz AND b.min_received <= $3::timestamptz "
                         "AND (%s, b.source_id, b.min_id) %s ($4::timestamptz, $5::bigint, $6::bigint)"
                         "%s ORDER BY %s LIMIT %d) UNION ALL "
                         "(SELECT " BLK_COLS " FROM unnest($%d::bigint[], $%d::date[]) AS u (s, d) JOIN "
                         "log_blocks b ON b.source_id = u.s AND b.max_received >= (u.d::timestamp "
                         "AT TIME ZONE 'UTC') AND b.max_received < ((u.d + 1)::timestamp AT TIME "
                         "ZONE 'UTC') WHERE b.coarse AND b.max_received >= $2::timestamptz AND "
                         "b.min_received <= $3::timestamptz AND (%s, b.source_id, b.min_id) %s "
                         "($4::timestamptz, $5::bigint, $6::bigint)%s ORDER BY %s LIMIT %d) UNION ALL "
                         "(SELECT " BLK_COLS " FROM unnest($%d::bigint[], $%d::bigint[]) AS u (s, h) "
                         "JOIN log_blocks b ON b.source_id = u.s AND b.max_received >= "
                         "to_timestamp(u.h) AND b.max_received < to_timestamp(u.h + 3600) WHERE "
                         "b.hourly AND b.max_received >= $2::timestamptz AND b.min_received <= "
                         "$3::timestamptz AND (%s, b.source_id, b.min_id) %s ($4::timestamptz, "
                         "$5::bigint, $6::bigint)%s ORDER BY %s LIMIT %d)) b "
                         "ORDER BY %s LIMIT %d",
                         R->pl.wide ? "(b.source_id + 0)" : "b.source_id", kcol, kop, bl, ord,
                         BLOCK_PAGE, na, na + 1, kcol, kop, bl, ord, BLOCK_PAGE, na + 2, na + 3,
                         kcol, kop, bl, ord, BLOCK_PAGE, ord, BLOCK_PAGE);
        if (rc == 0)
            rc = sl_buf_addc(&R->sql, '\0');
        if (rc) {
            free(ext.v);
            return SL_ENOMEM;
        }
        rc = run(R->pg, "search blocks failed", R->sql.p, fixed, 6, &ext, status, body, &r);
        free(ext.v);
        if (rc)
            return rc;
    }
    for (int i = 0; i < PQntuples(r); i++) {
        struct blk *b;
        if (R->nblk == R->capblk) {
            struct blk *nb = grow(R->blks, &R->capblk, sizeof(*nb));
            if (nb == NULL) {
                PQclear(r);
                return SL_ENOMEM;
            }
            R->blks = nb;
        }
        b = &R->blks[R->nblk++];
        b->source_id = strtoll(PQgetvalue(r, i, 0), NULL, 10);
        b->min_us = strtoll(PQgetvalue(r, i, 1), NULL, 10);
        b->max_us = strtoll(PQgetvalue(r, i, 2), NULL, 10);
        b->min_id = strtoll(PQgetvalue(r, i, 3), NULL, 10);
        b->max_id = strtoll(PQgetvalue(r, i, 4), NULL, 10);
        b->packed = PQgetvalue(r, i, 5)[0] == 't';
        b->nrows = strtoll(PQgetvalue(r, i, 6), NULL, 10);
        R->key = *b;
        R->have_key = true;
    }
    R->blocks_done = PQntuples(r) < BLOCK_PAGE;
    PQclear(r);
    return 0;
}

static int hit_cmp_desc(const void *a, const void *b)
{
    const struct hit *x = a, *y = b;
    if (x->us != y->us)
        return x->us < y->us ? 1 : -1;
    return x->id < y->id ? 1 : x->id > y->id ? -1 : 0;
}

static int hit_cmp_asc(const void *a, const void *b)
{
    return -hit_cmp_desc(a, b);
}

/* Read the rows of blocks [from, to) and merge them into the hits (keeping need). */
static int read_group(struct run *R, size_t from, size_t to, size_t need, int *status,
                      struct sl_buf *body)
{
    char lo[40], hi[40], cu[40], ci[24], lim[24];
    const char *fixed[11];
    struct sl_buf *arr[6] = {&R->a1, &R->a2, &R->a3, &R->a4, &R->a5, &R->a6};
    PGresult *r;
    int rc = 0;
    /* A query with needles reads a compressed pack only when its messages hold them all
     * (sluice_unpack_having): the needles go after the predicate's parameters. */
    bool needles = R->pl.np.n > 0;
    char packrows[96];

    snprintf(packrows, sizeof(packrows), "sl_pack_rows_having(p.rows, p.data, $%zu::text[])",
             11 + R->pl.np.n);
    for (int k = 0; k < 6; k++) {
        sl_buf_reset(arr[k]);
        rc |= sl_buf_addc(arr[k], '{');
    }
    for (size_t i = from; i < to && rc == 0; i++) {
        const struct blk *b = &R->blks[i];
        char t1[40], t2[40];
        pg_time(b->min_us, t1);
        pg_time(b->max_us, t2);
        rc |= sl_buf_addf(&R->a1, "%s%" PRId64, i > from ? "," : "", b->source_id);
        rc |= sl_buf_addf(&R->a2, "%s\"%s\"", i > from ? "," : "", t1);
        rc |= sl_buf_addf(&R->a3, "%s\"%s\"", i > from ? "," : "", t2);
        rc |= sl_buf_addf(&R->a4, "%s%" PRId64, i > from ? "," : "", b->min_id);
        rc |= sl_buf_addf(&R->a5, "%s%" PRId64, i > from ? "," : "", b->max_id);
        rc |= sl_buf_addf(&R->a6, "%s%c", i > from ? "," : "", b->packed ? 't' : 'f');
    }
    for (int k = 0; k < 6 && rc == 0; k++)
        rc |= sl_buf_add(arr[k], "}", 2);
    if (rc)
        return SL_ENOMEM;
    pg_time(R->lo_us, lo);
    pg_time(R->hi_us, hi);
    if (R->cdir) {
        pg_time(R->c_us, cu);
        snprintf(ci, sizeof(ci), "%" PRId64, R->c_id);
    } else if (R->desc) {
        pg_time(R->hi_us, cu); /* (t, id) < (until, 0): t < until */
        snprintf(ci, sizeof(ci), "0");
    } else {
        pg_time(R->lo_us, cu); /* (t, id) > (since, 0): t >= since */
        snprintf(ci, sizeof(ci), "0");
    }
    snprintf(lim, sizeof(lim), "%zu", need);
    fixed[0] = R->a1.p;
    fixed[1] = R->a2.p;
    fixed[2] = R->a3.p;
    fixed[3] = R->a4.p;
    fixed[4] = R->a5.p;
    fixed[5] = lo;
    fixed[6] = hi;
    fixed[7] = cu;
    fixed[8] = ci;
    fixed[9] = lim;
    fixed[10] = R->a6.p;
    sl_buf_reset(&R->sql);
    if (sl_buf_addf(
            &R->sql,
            "SELECT " TS_US("l.received_at") ", l.id, l.source_id, CASE WHEN bb.pk THEN bb.imin "
            "ELSE -1 END FROM unnest($1::bigint[], $2::timestamptz[], $3::timestamptz[], "
            "$4::bigint[], $5::bigint[], $11::boolean[]) AS bb(s, rmin, rmax, imin, imax, pk) "
            "CROSS JOIN LATERAL (SELECT * FROM "
            BLOCK_ROWS_F("bb.s", "bb.rmin", "bb.rmax", "bb.imin", "bb.imax", "bb.pk", "%s")
            " l WHERE l.received_at >= $6::timestamptz "
            "AND l.received_at < $7::timestamptz AND (l.received_at, l.id) %s "
            "($8::timestamptz, $9::bigint) AND %s OFFSET 0) l "
            "ORDER BY l.received_at %s, l.id %s LIMIT $10::bigint",
            needles ? packrows : "sl_pack_rows(p.rows, p.data)", R->desc ? "<" : ">",
            R->pl.pred.p, R->desc ? "DESC" : "ASC", R->desc ? "DESC" : "ASC") ||
        sl_buf_addc(&R->sql, '\0'))
        return SL_ENOMEM;
    if ((rc = run(R->pg, "search rows failed", R->sql.p, fixed, 11, needles ? &R->pl.np : &R->pl.pp,
                  status, body, &r)))
        return rc;
    for (int i = 0; i < PQntuples(r); i++) {
        struct hit *h;
        if (R->nhits == R->caphits) {
            struct hit *nh = grow(R->hits, &R->caphits, sizeof(*nh));
            if (nh == NULL) {
                PQclear(r);
                return SL_ENOMEM;
            }
            R->hits = nh;
        }
        h = &R->hits[R->nhits];
        h->us = strtoll(PQgetvalue(r, i, 0), NULL, 10);
        h->id = strtoll(PQgetvalue(r, i, 1), NULL, 10);
        h->src = strtoll(PQgetvalue(r, i, 2), NULL, 10);
        h->pack = strtoll(PQgetvalue(r, i, 3), NULL, 10);
        R->nhits++;
    }
    PQclear(r);
    if (R->nhits > 1) { /* hits is NULL until the first one */
        size_t k = 1;
        qsort(R->hits, R->nhits, sizeof(*R->hits), R->desc ? hit_cmp_desc : hit_cmp_asc);
        /* Blocks of one source written by two nodes at once may overlap (a wide block
         * holds the other node's ids between its own), so a row can come from two
         * blocks: sorted by (time, id), its copies are neighbours. */
        for (size_t i = 1; i < R->nhits; i++) {
            if (R->hits[i].id != R->hits[k - 1].id)
                R->hits[k++] = R->hits[i];
        }
        R->nhits = k;
    }
    if (R->nhits > need)
        R->nhits = need;
    return 0;
}

/* The (received_at, id) key of row id, for Papertrail's min_id/max_id. */
static int id_key(PGconn *pg, int64_t id, const int64_t *scope, const char *scope_lit,
                  int64_t *us, bool *found)
{
    char ids[24];
    const char *v[2] = {ids, scope_lit};
    PGresult *r;
    (void)scope;

    snprintf(ids, sizeof(ids), "%" PRId64, id);
    if (sl_db_exec(pg, "id lookup failed",
                   "SELECT " TS_US("l.received_at") " FROM log_blocks b CROSS JOIN LATERAL "
                   "(SELECT l.received_at FROM "
                   BLOCK_ROWS("b.source_id", "b.min_received", "b.max_received", "b.min_id",
                              "b.max_id", "b.packed")
                   " l WHERE l.id = $1::bigint OFFSET 0) l WHERE b.max_id >= $1::bigint AND "
                   "b.min_id <= $1::bigint AND b.source_id = ANY($2::bigint[]) LIMIT 1",
                   2, v, &r))
        return SL_EDB;
    *found = PQntuples(r) > 0;
    if (*found)
        *us = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return 0;
}

static void run_free(struct run *R)
{
    plan_free(&R->pl);
    free(R->dl_src);
    free(R->dl_day);
    free(R->hl_src);
    free(R->hl_hour);
    free(R->hits);
    free(R->blks);
    sl_buf_free(&R->sql);
    sl_buf_free(&R->a1);
    sl_buf_free(&R->a2);
    sl_buf_free(&R->a3);
    sl_buf_free(&R->a4);
    sl_buf_free(&R->a5);
    sl_buf_free(&R->a6);
}

/* Visit blocks in groups until the first `need` hits are certain. Sets *exhausted when
 * every block was read (no match lies beyond the hits). A group is sized from the match
 * rate so far (blocks read per hit), so a common predicate reads about what it needs and
 * a rare one grows fast; once `need` hits are in, only the blocks that could still hold a
 * better one are read. */
static int collect(struct run *R, size_t need, bool *exhausted, int *status, struct sl_buf *body)
{
    size_t group = 16;
    int64_t rows = 0; /* rows of the blocks read so far (their log_blocks nrows) */
    int rc;

    *exhausted = false;
    if ((rc = fetch_blocks(R, status, body)))
        return rc;
    for (;;) {
        size_t to;
        if (cancelled(R)) {
            *status = 504;
            json_error(body, "search cancelled or timed out", -1);
            return SL_ETOOBIG;
        }
        if (R->next == R->nblk) {
            if (R->blocks_done) {
                *exhausted = true;
                return 0;
            }
            if ((rc = fetch_blocks(R, status, body)))
                return rc;
            continue;
        }
        to = R->next + group < R->nblk ? R->next + group : R->nblk;
        if ((rc = read_group(R, R->next, to, need, status, body)))
            return rc;
        for (size_t i = R->next; i < to; i++)
            rows += R->blks[i].nrows;
        R->next = to;
        if (R->nhits >= need) {
            /* final when the need-th hit lies strictly beyond every unvisited block */
            const struct hit *last = &R->hits[need - 1];
            size_t k = 0;
            if (R->next == R->nblk && !R->blocks_done &&
                (rc = fetch_blocks(R, status, body)))
                return rc;
            if (R->next == R->nblk)
                return 0;
            while (R->next + k < R->nblk &&
                   (R->desc ? last->us <= R->blks[R->next + k].max_us
                            : last->us >= R->blks[R->next + k].min_us))
                k++;
            if (k == 0)
                return 0;
            group = k;
        } else if (R->nhits == 0) {
            group = group * 4 > 4096 ? 4096 : group * 4;
        } else {
            /* rows still needed at the rate so far (hits per row: the newest blocks are
             * the open ones, a few rows each, so a rate per block misjudges), and a
             * quarter more, as the next blocks' rows add up */
            double want = (double)(need - R->nhits) * (double)rows / (double)R->nhits * 1.25;
            double got = 0;
            /* a rate from a few hits is noise (matches come in bursts): at most four
             * times the rows read so far, so a wrong guess costs a round, not the page */
            if (want > 4.0 * (double)rows)
                want = 4.0 * (double)rows;
            size_t k = 0;
            while (R->next + k < R->nblk && got < want)
                got += (double)R->blks[R->next + k++].nrows;
            group = k < 16 ? 16 : k > 4096 ? 4096 : k;
        }
    }
}

/* Append to body the JSON of hits[0..n), in that order, comma-separated, while body
 * stays within room bytes: *k events appended, their keys moved to hits[0..k) (a row
 * removed since it matched is skipped), off[i] the start of the i-th. *full when one
 * did not fit. Rows come one at a time (libpq's single-row mode) in groups sized from
 * the rows so far, so at most one row beyond the answer is held here, and a group
 * read past the budget costs a few rows, not the rest of the limit. */
static int fetch_events(struct run *R, size_t n, size_t room, struct sl_buf *body, size_t *off,
                        size_t *k, bool *full, int *status)
{
    size_t i = 0, group = 16;
    int rc = 0;

    *k = 0;
    *full = false;
    sl_buf_reset(&R->sql);
    /* A live hit is one index probe. The packed hits' packs are each unpacked once (a
     * pack holds up to 16 384 rows and a page of hits often comes from a few packs),
     * then joined to their hits by id. */
    const char *json = R->p->kind == SL_SEARCH_PAPERTRAIL ? papertrail_json : event_json;
    if (sl_buf_addf(&R->sql,
                    "WITH k AS MATERIALIZED (SELECT * FROM unnest($1::bigint[], "
                    "$2::timestamptz[], $3::bigint[], $4::bigint[]) WITH ORDINALITY AS k(s, t, i, "
                    "pk, o)) "
                    "SELECT k.o, %s FROM k CROSS JOIN LATERAL (SELECT * FROM logs l WHERE k.pk < 0 "
                    "AND l.source_id = k.s AND l.received_at = k.t AND l.id = k.i LIMIT 1) l "
                    "UNION ALL SELECT k.o, %s FROM (SELECT DISTINCT s, (t AT TIME ZONE "
                    "'UTC')::date AS d, pk FROM k WHERE pk >= 0) x JOIN log_packs p ON "
                    "p.source_id = x.s AND p.day = x.d AND p.min_id = x.pk CROSS JOIN LATERAL "
                    "sl_pack_rows(p.rows, p.data) l JOIN k ON k.pk = x.pk AND k.s = x.s AND "
                    "k.i = l.id ORDER BY 1",
                    json, json) ||
        sl_buf_addc(&R->sql, '\0'))
        return SL_ENOMEM;
    while (i < n && rc == 0 && !*full) {
        size_t to = i + group < n ? i + group : n;
        const char *v[4];
        PGresult *r;
        struct sl_buf *arr[4] = {&R->a1, &R->a2, &R->a3, &R->a4};

        if (cancelled(R)) {
            *status = 504;
            json_error(body, "search cancelled or timed out", -1);
            return SL_ETOOBIG;
        }
        for (int a = 0; a < 4; a++) {
            sl_buf_reset(arr[a]);
            rc |= sl_buf_addc(arr[a], '{');
        }
        for (size_t h = i; h < to && rc == 0; h++) {
            char t[40];
            pg_time(R->hits[h].us, t);
            rc |= sl_buf_addf(&R->a1, "%s%" PRId64, h > i ? "," : "", R->hits[h].src);
            rc |= sl_buf_addf(&R->a2, "%s\"%s\"", h > i ? "," : "", t);
            rc |= sl_buf_addf(&R->a3, "%s%" PRId64, h > i ? "," : "", R->hits[h].id);
            rc |= sl_buf_addf(&R->a4, "%s%" PRId64, h > i ? "," : "", R->hits[h].pack);
        }
        for (int a = 0; a < 4 && rc == 0; a++)
            rc |= sl_buf_add(arr[a], "}", 2);
        if (rc)
            return SL_ENOMEM;
        v[0] = R->a1.p;
        v[1] = R->a2.p;
        v[2] = R->a3.p;
        v[3] = R->a4.p;
        if (!PQsendQueryParams(R->pg, R->sql.p, 4, NULL, v, NULL, NULL, 0)) {
            sl_db_log_error("search events failed", R->pg, NULL);
            *status = 500;
            json_error(body, "search failed", -1);
            return SL_EDB;
        }
        (void)PQsetSingleRowMode(R->pg);
        while ((r = PQgetResult(R->pg)) != NULL) {
            ExecStatusType st = PQresultStatus(r);
            if (st == PGRES_SINGLE_TUPLE && rc == 0 && !*full) {
                size_t o = (size_t)strtoull(PQgetvalue(r, 0, 0), NULL, 10);
                size_t len = (size_t)PQgetlength(r, 0, 1);
                if (o < 1 || i + o > to) {
                    rc = SL_EDB;
                } else if (body->len + (*k ? 1 : 0) + len > room) {
                    *full = true;
                } else if ((*k && sl_buf_addc(body, ',')) ||
                           (off[*k] = body->len, sl_buf_add(body, PQgetvalue(r, 0, 1), len))) {
                    rc = SL_ENOMEM;
                } else {
                    R->hits[*k] = R->hits[i + o - 1];
                    (*k)++;
                }
            } else if (st != PGRES_SINGLE_TUPLE && st != PGRES_TUPLES_OK && rc == 0) {
                int st2 = 500;
                rc = result_error(R->pg, "search events failed", r, &st2, body);
                *status = st2;
                continue; /* r was cleared */
            }
            PQclear(r);
        }
        i = to;
        if (*k > 0) {
            size_t avg = body->len / *k + 1;
            group = body->len < room ? (room - body->len) / avg + 1 : 1;
            group = group > 256 ? 256 : group;
        } else {
            group = 256;
        }
    }
    return rc;
}

/* Reverse the order of the k comma-separated events of body starting at off[0..k): the
 * whole range backwards, then each event forwards again. In place: no second copy of
 * the answer. */
static void reverse_events(struct sl_buf *body, const size_t *off, size_t k)
{
    size_t start, end = body->len, pos;

    if (k < 2)
        return;
    start = off[0];
    for (size_t a = start, b = end - 1; a < b; a++, b--) {
        char t = body->p[a];
        body->p[a] = body->p[b];
        body->p[b] = t;
    }
    pos = start;
    for (size_t j = k; j-- > 0;) {
        size_t len = (j + 1 < k ? off[j + 1] - 1 : end) - off[j];
        for (size_t a = pos, b = pos + len - 1; len > 1 && a < b; a++, b--) {
            char t = body->p[a];
            body->p[a] = body->p[b];
            body->p[b] = t;
        }
        pos += len + 1;
    }
}

int sl_search_run(struct pg_conn *pg, struct sl_sources *src, const struct sl_search_params *p,
                  int *status, struct sl_buf *body)
{
    struct run R;
    bool exhausted = false, out_asc;
    size_t need = (size_t)p->limit + 1, n, *off = NULL;
    int rc;
    char t1[32], t2[32];

    memset(&R, 0, sizeof(R));
    R.pg = pg;
    R.p = p;
    plan_init(&R.pl);
    sl_buf_init(&R.sql, 1u << 24);
    sl_buf_init(&R.a1, 1u << 24);
    sl_buf_init(&R.a2, 1u << 24);
    sl_buf_init(&R.a3, 1u << 24);
    sl_buf_init(&R.a4, 1u << 24);
    sl_buf_init(&R.a5, 1u << 24);
    sl_buf_init(&R.a6, 1u << 24);
    *status = 500;
    R.lo_us = p->since_us;
    R.hi_us = p->until_us;
    out_asc = p->kind == SL_SEARCH_PAPERTRAIL ? true : p->asc;
    rc = plan_build(&R.pl, src, p->q, p->scope, p->nscope, 12, 7, body);
    if (rc == SL_EPARSE) {
        *status = 400;
        rc = 0;
        goto out;
    }
    if (rc)
        goto fail;
    /* One snapshot for every statement of the search: the levels, the block pages, their
     * rows and the events. Compaction or the hour level committing in between (blocks
     * marked coarse or hourly after the levels were read, rows moved into packs after
     * their blocks were listed) would otherwise hide lines from it. */
    {
        PGresult *b = PQexec(pg, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY");
        bool ok = PQresultStatus(b) == PGRES_COMMAND_OK;
        PQclear(b);
        if (!ok) {
            sl_warn("search failed", "what=\"begin\" err=\"%s\"", PQerrorMessage(pg));
            rc = SL_EDB;
            goto fail;
        }
    }
    /* direction and cursor */
    if (p->kind == SL_SEARCH_PAPERTRAIL) {
        int64_t kid = p->min_id ? p->min_id : p->max_id;
        R.desc = p->min_id == 0;
        if (kid) {
            bool found = false;
            int64_t us = 0;
            if ((rc = id_key(pg, kid, p->scope, R.pl.scope, &us, &found)))
                goto fail;
            if (!found) {
                /* an id this token cannot see, or gone: nothing beyond it */
                R.hi_us = R.lo_us;
            } else {
                R.cdir = p->min_id ? 'n' : 'o';
                R.c_us = us;
                R.c_id = kid;
            }
        }
    } else {
        R.cdir = p->cursor;
        R.c_us = p->cur_us;
        R.c_id = p->cur_id;
        /* paging back against the output order reads the other way */
        R.desc = p->cursor ? p->cursor == 'o' : !p->asc;
    }
    if (p->nscope == 0 || R.hi_us <= R.lo_us) {
        exhausted = true;
    } else {
        int st = 500;
        rc = collect(&R, need, &exhausted, &st, body);
        if (rc == SL_ETOOBIG || rc == SL_EPARSE) {
            *status = st;
            rc = 0;
            goto out;
        }
        if (rc) {
            *status = st;
            goto fail;
        }
    }
    n = R.nhits < (size_t)p->limit ? R.nhits : (size_t)p->limit;
    bool more = R.nhits > (size_t)p->limit || !exhausted;
    bool truncated = false;
    /* The events in read order while they fit the answer's budget (body->max less the
     * envelope), then turned to the output order. */
    sl_buf_reset(body);
    rc = sl_buf_add(body, "{\"events\":[", 11);
    if (rc == 0 && n > 0) {
        size_t k = 0, room = body->max > SL_SEARCH_ANSWER_FIXED ? body->max - SL_SEARCH_ANSWER_FIXED : 0;
        bool full = false;
        int st = 500;
        if ((off = calloc(n, sizeof(*off))) == NULL) {
            rc = SL_ENOMEM;
            goto fail;
        }
        rc = fetch_events(&R, n, room, body, off, &k, &full, &st);
        if (rc == SL_ETOOBIG || rc == SL_EPARSE) {
            *status = st;
            rc = 0;
            goto out;
        }
        if (rc) {
            *status = st;
            goto fail;
        }
        if (full && k == 0) {
            /* one stored event larger than the budget (stored under larger settings):
             * one clear error, not an answer that cannot move on */
            char m[200];
            snprintf(m, sizeof(m),
                     "an event passes the answer budget of %zu bytes "
                     "(SLUICE_SEARCH_ANSWER_BYTES): raise it",
                     body->max);
            *status = 500;
            json_error(body, m, -1);
            goto out;
        }
        truncated = full;
        more |= full;
        n = k;
        if (out_asc == R.desc) {
            reverse_events(body, off, n);
            for (size_t i = 0; i < n / 2; i++) {
                struct hit t = R.hits[i];
                R.hits[i] = R.hits[n - 1 - i];
                R.hits[n - 1 - i] = t;
            }
        }
    }
    if (rc == 0)
        rc = sl_buf_addc(body, ']');
    if (p->kind == SL_SEARCH_PAPERTRAIL) {
        char a[24] = "", b[24] = "";
        if (n) {
            snprintf(a, sizeof(a), "%" PRId64, R.hits[0].id);
            snprintf(b, sizeof(b), "%" PRId64, R.hits[n - 1].id);
        }
        sl_search_fmt_time(p->since_us, t1);
        /* reading older lines (desc) and no more in the window: the beginning */
        bool beginning = R.desc && !more;
        if (rc == 0)
            rc = sl_buf_addf(body,
                             ",\"min_id\":%s%s%s,\"max_id\":%s%s%s,\"reached_beginning\":%s,"
                             "\"reached_time_limit\":%s,\"reached_record_limit\":%s,"
                             "\"truncated\":%s,\"min_time_at\":\"%.19s+00:00\"}\n",
                             n ? "\"" : "", n ? a : "null", n ? "\"" : "", n ? "\"" : "",
                             n ? b : "null", n ? "\"" : "", beginning ? "true" : "false",
                             beginning && n < (size_t)p->limit ? "true" : "false",
                             n == (size_t)p->limit ? "true" : "false",
                             truncated ? "true" : "false", t1);
    } else {
        char nc[48] = "", pc[48] = "";
        bool fwd = out_asc != R.desc; /* read in the output direction */
        bool has_next = n > 0 && (fwd ? more : true);
        bool has_prev = n > 0 && (fwd ? true : more);
        if (n && fwd && p->cursor == 0)
            has_prev = true; /* newer (or older) lines may arrive or exist before the first */
        if (n) {
            const struct hit *first = &R.hits[0], *last = &R.hits[n - 1];
            sl_search_cursor(out_asc ? 'n' : 'o', last->us, last->id, nc);
            sl_search_cursor(out_asc ? 'o' : 'n', first->us, first->id, pc);
        }
        sl_search_fmt_time(p->since_us, t1);
        sl_search_fmt_time(p->until_us, t2);
        if (rc == 0)
            rc = sl_buf_addf(body,
                             ",\"count\":%zu,\"since\":\"%s\",\"until\":\"%s\","
                             "\"default_window\":%s,\"order\":\"%s\",\"next_cursor\":%s%s%s,"
                             "\"prev_cursor\":%s%s%s,\"reached_end\":%s,\"truncated\":%s}\n",
                             n, t1, t2, p->default_window ? "true" : "false",
                             out_asc ? "asc" : "desc", has_next ? "\"" : "",
                             has_next ? nc : "null", has_next ? "\"" : "", has_prev ? "\"" : "",
                             has_prev ? pc : "null", has_prev ? "\"" : "",
                             fwd && !more ? "true" : "false", truncated ? "true" : "false");
    }
    if (rc == SL_ETOOBIG) {
        /* never a partial body: the whole answer, or one error */
        char m[200];
        snprintf(m, sizeof(m), "the answer passes %zu bytes (SLUICE_SEARCH_ANSWER_BYTES)",
                 body->max);
        *status = 500;
        json_error(body, m, -1);
        rc = 0;
        goto out;
    }
    if (rc) {
        sl_buf_reset(body); /* a part of the answer is not an error message */
        goto fail;
    }
    *status = 200;
    rc = 0;
    goto out;
fail:
    if (*status == 200 || *status < 500)
        *status = 500;
    if (body->len == 0 || body->p[0] != '{' || rc == SL_ENOMEM)
        json_error(body, rc == SL_ENOMEM ? "out of memory" : "search failed", -1);
    rc = (rc == SL_EDB && PQstatus(pg) != CONNECTION_OK) ? SL_EDB : 0;
out:
    if (PQstatus(pg) == CONNECTION_OK && PQtransactionStatus(pg) != PQTRANS_IDLE)
        PQclear(PQexec(pg, "ROLLBACK")); /* read only: nothing to keep */
    free(off);
    run_free(&R);
    return rc;
}

/* ---------------------------------------------------------------- tail */

struct sl_tail_q {
    struct plan pl;
    struct sl_buf sql;
};

int sl_tail_prepare(struct sl_sources *src, const char *q, const int64_t *scope, size_t nscope,
                    struct sl_tail_q **out, struct sl_buf *err)
{
    struct sl_tail_q *t = calloc(1, sizeof(*t));
    int rc;

    if (t == NULL)
        return SL_ENOMEM;
    plan_init(&t->pl);
    sl_buf_init(&t->sql, 1u << 24);
    /* $1 scope, $2 from seq, $3 from id, $4 hi seq, $5 limit; the predicate from $6 */
    rc = plan_build(&t->pl, src, q, scope, nscope, 6, 1000, err);
    if (rc) {
        sl_tail_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

void sl_tail_free(struct sl_tail_q *t)
{
    if (t == NULL)
        return;
    plan_free(&t->pl);
    sl_buf_free(&t->sql);
    free(t);
}

/* The tail reads rows through the commit log (log_commits, docs/architecture.md "The path
 * of a tail"): the commits of the stream's sources numbered after `from` up to hi_seq,
 * and per commit row its rows through the (source_id, received_at) btree, bounded by the
 * commit's time and id ranges. Position (seq, id): every row of a commit numbered below
 * seq, and the rows of commit seq with ids up to id, are behind the stream. count: the
 * select list is count(*), else the commit number, id and JSON, in (seq, id) order and
 * limited. Returns 0 and *res, SL_EDB (logged as what) or SL_ENOMEM. */
static int tail_query(PGconn *pg, const char *what, const struct sl_tail_q *tc, bool count,
                      struct sl_tail_pos from, int64_t hi_seq, int limit, PGresult **res)
{
    struct sl_tail_q *t = (struct sl_tail_q *)(uintptr_t)tc;
    char fs[24], fi[24], h[24], lim[24];
    const char *fixed[5] = {t->pl.scope, fs, fi, h, lim};

    snprintf(fs, sizeof(fs), "%" PRId64, from.seq);
    snprintf(fi, sizeof(fi), "%" PRId64, from.id);
    snprintf(h, sizeof(h), "%" PRId64, hi_seq);
    snprintf(lim, sizeof(lim), "%d", limit);
    sl_buf_reset(&t->sql);
    if (sl_buf_addf(&t->sql,
                    "SELECT %s FROM log_commits k CROSS JOIN LATERAL (SELECT * FROM logs l "
                    "WHERE l.source_id = k.source_id AND l.received_at BETWEEN k.min_received "
                    "AND k.max_received AND l.id BETWEEN k.id_lo AND k.id_hi AND %s OFFSET 0) l "
                    "WHERE k.source_id = ANY($1::bigint[]) AND k.seq >= $2::bigint AND "
                    "k.seq <= $4::bigint AND (k.seq, l.id) > ($2::bigint, $3::bigint) %s "
                    "LIMIT $5::bigint",
                    count ? "count(*)" : "k.seq, l.id, " EVENT_JSON, t->pl.pred.p,
                    count ? "" : "ORDER BY k.seq, l.id") ||
        sl_buf_addc(&t->sql, '\0'))
        return SL_ENOMEM;
    return run_checked(pg, what, t->sql.p, fixed, 5, &t->pl.pp, res);
}

int sl_tail_fetch(struct pg_conn *pg, const struct sl_tail_q *t, struct sl_tail_pos from,
                  struct sl_tail_pos hi, int limit, size_t max_bytes, struct sl_buf *out,
                  struct sl_tail_pos *last, size_t *nrows)
{
    PGresult *r;
    int n, rc;

    *nrows = 0;
    *last = from;
    if ((rc = tail_query(pg, "tail read failed", t, false, from, hi.seq, limit, &r)))
        return rc;
    n = PQntuples(r);
    for (int i = 0; i < n && rc == 0; i++) {
        const char *id = PQgetvalue(r, i, 1);
        if (i > 0 && out->len >= max_bytes) {
            n = limit; /* the rest on the next read */
            break;
        }
        rc = sl_buf_addf(out, "id: %s\ndata: %s\n\n", id, PQgetvalue(r, i, 2));
        if (rc == 0) {
            last->seq = strtoll(PQgetvalue(r, i, 0), NULL, 10);
            last->id = strtoll(id, NULL, 10);
            (*nrows)++;
        }
    }
    if (rc == 0 && n < limit)
        *last = hi;
    PQclear(r);
    return rc;
}

int sl_tail_count(struct pg_conn *pg, const struct sl_tail_q *t, struct sl_tail_pos from,
                  struct sl_tail_pos to, int64_t *count)
{
    PGresult *r;
    int rc;

    if ((rc = tail_query(pg, "tail count failed", t, true, from, to.seq, 1, &r)))
        return rc;
    *count = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return 0;
}

size_t sl_tail_blocks_reach(const int64_t *nrows, size_t n, int64_t rows)
{
    int64_t sum = 0;

    for (size_t i = 0; i < n; i++) {
        sum += nrows[i] > 0 ? nrows[i] : 0;
        if (sum >= rows)
            return i;
    }
    return n;
}

/* Up to max rows of (seq, rows) into seqs[] and nr[]; *n rows. 0 or SL_EDB. */
static int tail_commits(PGconn *pg, const char *sql, const char *const v[3], size_t max,
                        int64_t *seqs, int64_t *nr, size_t *n)
{
    PGresult *r;

    *n = 0;
    if (sl_db_exec(pg, "tail commits failed", sql, 3, v, &r))
        return SL_EDB;
    for (int i = 0; i < PQntuples(r) && *n < max; i++, (*n)++) {
        seqs[i] = strtoll(PQgetvalue(r, i, 0), NULL, 10);
        nr[i] = strtoll(PQgetvalue(r, i, 1), NULL, 10);
    }
    PQclear(r);
    return 0;
}

int sl_tail_commit_end(struct pg_conn *pg, int64_t seq, struct sl_tail_pos *pos)
{
    char s[24];
    const char *v[1] = {s};
    PGresult *r;

    snprintf(s, sizeof(s), "%" PRId64, seq);
    if (sl_db_exec(pg, "tail commit end failed",
                   "SELECT coalesce(max(id_hi), 0) FROM log_commits WHERE seq = $1::bigint", 1, v,
                   &r))
        return SL_EDB;
    pos->seq = seq;
    pos->id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return 0;
}

int sl_tail_head(struct pg_conn *pg, struct sl_tail_pos *head)
{
    PGresult *r;

    /* one round trip: read every tail round */
    if (sl_db_exec(pg, "tail head failed",
                   "SELECT m.s, coalesce((SELECT max(id_hi) FROM log_commits WHERE seq = m.s), 0) "
                   "FROM (SELECT coalesce(max(seq), 0) AS s FROM log_commits) m",
                   0, NULL, &r))
        return SL_EDB;
    head->seq = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    head->id = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    PQclear(r);
    return 0;
}

int sl_tail_locate(struct pg_conn *pg, int64_t id, struct sl_tail_pos *pos, bool *found)
{
    char s[24];
    const char *v[1] = {s};
    PGresult *r;

    *pos = (struct sl_tail_pos){0, 0};
    *found = id == 0;
    if (id <= 0)
        return 0;
    snprintf(s, sizeof(s), "%" PRId64, id);
    /* commit ranges of rows stored since the commit log are disjoint */
    if (sl_db_exec(pg, "tail locate failed",
                   "SELECT seq FROM log_commits WHERE id_lo <= $1::bigint AND "
                   "id_hi >= $1::bigint ORDER BY id_lo DESC LIMIT 1",
                   1, v, &r))
        return SL_EDB;
    if (PQntuples(r) == 1) {
        pos->seq = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        pos->id = id;
        *found = true;
    }
    PQclear(r);
    return 0;
}

int sl_tail_window(struct pg_conn *pg, const struct sl_tail_q *t, struct sl_tail_pos from,
                   struct sl_tail_pos hi, int64_t rows, struct sl_tail_pos *win)
{
    /* rows of one commit (a source's, rarely two) are adjacent in seq order: no GROUP BY,
     * so the seq index is read in order and the scan stops at the LIMIT */
    static const char sql[] = "SELECT seq, nrows FROM log_commits WHERE "
                              "source_id = ANY($1::bigint[]) AND seq > $2::bigint AND "
                              "seq <= $3::bigint ORDER BY seq LIMIT 256";
    char a[24], h[24];
    const char *v[3] = {t->pl.scope, a, h};
    int64_t seqs[256], nr[256];
    size_t n, at;

    *win = hi;
    snprintf(a, sizeof(a), "%" PRId64, from.seq);
    snprintf(h, sizeof(h), "%" PRId64, hi.seq);
    if (tail_commits(pg, sql, v, 256, seqs, nr, &n))
        return SL_EDB;
    at = sl_tail_blocks_reach(nr, n, rows);
    if (at == n && n == 256)
        at = 255; /* many small commits: a window of 256 */
    if (at < n && seqs[at] < hi.seq)
        return sl_tail_commit_end(pg, seqs[at], win);
    return 0;
}

int sl_tail_replay_start(struct pg_conn *pg, const struct sl_tail_q *t, struct sl_tail_pos from,
                         struct sl_tail_pos hi, int64_t rows, struct sl_tail_pos *start,
                         int64_t *skipped)
{
    enum { WALK = 4096 };
    static const char walk[] = "SELECT seq, nrows FROM log_commits WHERE "
                               "source_id = ANY($1::bigint[]) AND seq > $2::bigint AND "
                               "seq <= $3::bigint ORDER BY seq DESC LIMIT 4096";
    /* the stored lines of the scope in (from, start]: whole commits after from's, and the
     * rest of from's own (a commit's ids per source are contiguous) */
    static const char sum[] = "SELECT coalesce(sum(CASE WHEN seq = $2::bigint THEN "
                              "greatest(0, id_hi - greatest(id_lo - 1, $4::bigint)) "
                              "ELSE nrows END), 0) FROM log_commits WHERE "
                              "source_id = ANY($1::bigint[]) AND seq >= $2::bigint AND "
                              "seq <= $3::bigint";
    char a[24], h[24], fi[24];
    const char *v[4] = {t->pl.scope, a, h, fi};
    int64_t *seqs = malloc(WALK * sizeof(*seqs)), *nr = malloc(WALK * sizeof(*nr));
    PGresult *r = NULL;
    size_t n, at;
    int rc = SL_ENOMEM;

    *start = from;
    *skipped = 0;
    if (seqs == NULL || nr == NULL)
        goto out;
    snprintf(a, sizeof(a), "%" PRId64, from.seq);
    snprintf(h, sizeof(h), "%" PRId64, hi.seq);
    snprintf(fi, sizeof(fi), "%" PRId64, from.id);
    rc = tail_commits(pg, walk, v, WALK, seqs, nr, &n);
    if (rc)
        goto out;
    /* from the newest commit down: the one that takes the sum past rows (or the last of
     * WALK small ones) is the newest one skipped */
    at = sl_tail_blocks_reach(nr, n, rows < INT64_MAX ? rows + 1 : rows);
    if (at == n && n == WALK)
        at = WALK - 1;
    if (at == n)
        goto out; /* everything fits */
    snprintf(h, sizeof(h), "%" PRId64, seqs[at]);
    rc = sl_db_exec(pg, "tail replay count failed", sum, 4, v, &r);
    if (rc)
        goto out;
    *skipped = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    rc = sl_tail_commit_end(pg, seqs[at], start);
out:
    PQclear(r);
    free(seqs);
    free(nr);
    return rc;
}


/* ---------------------------------------------------------------- the viewer's reads */

/* The lines of the window per bucket, exact: a block (log_blocks) inside one bucket and
 * the window, younger than its source's retention, counts its nrows without reading
 * its rows; the rows of every other block of the window are counted one by one. Each row
 * is in exactly one block's nrows (the writer upserts the block in the row's
 * transaction); a straddling block's rows are found by its ranges, which hold only its
 * own rows unless two nodes wrote the source in the same moment (then a straddling block
 * may count rows of the other's block as well: docs/viewer.md). $1 scope, $2 since, $3
 * until, $4 since µs, $5 bucket µs. */
static const char agg_lines_sql[] =
    "WITH blk AS MATERIALIZED (SELECT b.source_id, b.min_received, b.max_received, b.min_id, "
    "b.max_id, b.nrows, b.packed, b.min_received >= $2::timestamptz AND b.max_received < $3::timestamptz "
    "AND (" TS_US("b.min_received") " - $4::bigint) / $5::bigint = (" TS_US("b.max_received")
    " - $4::bigint) / $5::bigint AND b.min_received >= now() - make_interval(days => "
    "s.retention_days) AS whole FROM log_blocks b JOIN sources s ON s.id = b.source_id "
    "WHERE b.source_id = ANY($1::bigint[]) AND b.max_received >= $2::timestamptz AND "
    "b.min_received < $3::timestamptz) "
    "SELECT k, sum(n)::bigint FROM (SELECT (" TS_US("min_received") " - $4::bigint) / "
    "$5::bigint AS k, nrows::bigint AS n FROM blk WHERE whole UNION ALL "
    "SELECT (" TS_US("l.received_at") " - $4::bigint) / $5::bigint, 1 FROM blk CROSS JOIN "
    "LATERAL (SELECT l.received_at FROM "
    BLOCK_ROWS("blk.source_id", "blk.min_received", "blk.max_received", "blk.min_id",
               "blk.max_id", "blk.packed")
    " l WHERE l.received_at >= $2::timestamptz AND l.received_at < $3::timestamptz "
    "OFFSET 0) l WHERE NOT blk.whole) x GROUP BY 1";

/* Copy the parameter values of a then b into out. */
static int params_cat(struct sl_query_params *out, const struct sl_query_params *a,
                      const struct sl_query_params *b)
{
    for (size_t i = 0; i < a->n; i++)
        if (param_push(out, a->v[i]))
            return SL_ENOMEM;
    for (size_t i = 0; i < b->n; i++)
        if (param_push(out, b->v[i]))
            return SL_ENOMEM;
    return 0;
}

/* Run sql (fixed then params) and add each row's (bucket, count) into into[nb]. */
static int agg_run(PGconn *pg, const char *sql, const char *const *fixed,
                   const struct sl_query_params *params, int nb, int64_t *into, int *status,
                   struct sl_buf *body)
{
    PGresult *r = NULL;
    int rc = run(pg, "aggregate failed", sql, fixed, 5, params, status, body, &r);

    if (rc)
        return rc;
    for (int i = 0; i < PQntuples(r); i++) {
        long long k = strtoll(PQgetvalue(r, i, 0), NULL, 10);
        if (k >= 0 && k < nb)
            into[k] += strtoll(PQgetvalue(r, i, 1), NULL, 10);
    }
    PQclear(r);
    return 0;
}

int sl_search_aggregate(struct pg_conn *pg, struct sl_sources *src, const struct sl_search_params *p,
                        int buckets, int *status, struct sl_buf *body)
{
    struct plan pl;
    struct sl_buf sql;
    struct sl_query_params all;
    char lo[40], hi[40], lous[24], wus[24], t1[32], t2[32];
    const char *fixed[5] = {NULL, lo, hi, lous, wus};
    int64_t range = p->until_us - p->since_us, width, *lines = NULL, *hits = NULL, tl = 0, tm = 0;
    int nb, rc;
    bool blank = true;

    *status = 500;
    plan_init(&pl);
    sl_query_params_init(&all);
    sl_buf_init(&sql, 1u << 24);
    if (buckets < 1)
        buckets = 1;
    if (buckets > SL_SEARCH_MAX_BUCKETS)
        buckets = SL_SEARCH_MAX_BUCKETS;
    /* whole seconds, at least one; the last bucket may end past until (it is cut there) */
    width = (range + buckets - 1) / buckets;
    width = width < 1000000 ? 1000000 : (width + 999999) / 1000000 * 1000000;
    nb = (int)((range + width - 1) / width);
    for (const char *c = p->q; *c; c++)
        blank &= *c == ' ' || *c == '\t' || *c == '\r' || *c == '\n';
    /* the predicate's parameters follow the 5 fixed ones, the Bloom filter's follow
     * those: a first build says how many the predicate has */
    rc = plan_build(&pl, src, p->q, p->scope, p->nscope, 6, 6, body);
    if (rc == 0) {
        int bfirst = 6 + (int)pl.pp.n;
        plan_free(&pl);
        plan_init(&pl);
        rc = plan_build(&pl, src, p->q, p->scope, p->nscope, 6, bfirst, body);
    }
    if (rc == SL_EPARSE) {
        *status = 400;
        rc = 0;
        goto out;
    }
    if (rc)
        goto fail;
    lines = calloc((size_t)nb, sizeof(*lines));
    hits = calloc((size_t)nb, sizeof(*hits));
    if (lines == NULL || hits == NULL || params_cat(&all, &pl.pp, &pl.bp)) {
        rc = SL_ENOMEM;
        goto fail;
    }
    if (p->nscope > 0) {
        struct sl_query_params none;
        sl_query_params_init(&none);
        pg_time(p->since_us, lo);
        pg_time(p->until_us, hi);
        snprintf(lous, sizeof(lous), "%" PRId64, p->since_us);
        snprintf(wus, sizeof(wus), "%" PRId64, width);
        fixed[0] = pl.scope;
        rc = agg_run(pg, agg_lines_sql, fixed, &none, nb, lines, status, body);
        /* The matches: the rows of the blocks whose Bloom filter may hold the query's
         * tokens (every block when it has none), with the search's predicate; a row read
         * through two overlapping blocks counts once. */
        if (rc == 0 && !blank) {
            if (sl_buf_addf(&sql,
                            "SELECT (" TS_US("x.received_at") " - $4::bigint) / $5::bigint, "
                            "count(*) FROM (SELECT DISTINCT l.id, l.received_at FROM log_blocks b "
                            "CROSS JOIN LATERAL (SELECT l.id, l.received_at FROM "
                            BLOCK_ROWS("b.source_id", "b.min_received", "b.max_received",
                                       "b.min_id", "b.max_id", "b.packed")
                            " l WHERE "
                            "l.received_at >= $2::timestamptz AND l.received_at < $3::timestamptz "
                            "AND %s OFFSET 0) l WHERE b.source_id = ANY($1::bigint[]) AND "
                            "b.max_received >= $2::timestamptz AND b.min_received < "
                            "$3::timestamptz%s) x GROUP BY 1",
                            pl.pred.p, pl.bloom.len ? pl.bloom.p : "") ||
                sl_buf_addc(&sql, '\0'))
                rc = SL_ENOMEM;
            else
                rc = agg_run(pg, sql.p, fixed, &all, nb, hits, status, body);
        }
        if (rc == SL_ETOOBIG || rc == SL_EPARSE) {
            rc = 0;
            goto out;
        }
        if (rc)
            goto fail;
    }
    for (int i = 0; i < nb; i++) {
        if (blank)
            hits[i] = lines[i];
        tl += lines[i];
        tm += hits[i];
    }
    sl_search_fmt_time(p->since_us, t1);
    sl_search_fmt_time(p->until_us, t2);
    sl_buf_reset(body);
    rc = sl_buf_addf(body,
                     "{\"since\":\"%s\",\"until\":\"%s\",\"default_window\":%s,"
                     "\"bucket_seconds\":%" PRId64 ",\"lines\":%" PRId64 ",\"matches\":%" PRId64
                     ",\"buckets\":[",
                     t1, t2, p->default_window ? "true" : "false", width / 1000000, tl, tm);
    for (int i = 0; i < nb && rc == 0; i++) {
        sl_search_fmt_time(p->since_us + (int64_t)i * width, t1);
        rc = sl_buf_addf(body, "%s{\"start\":\"%s\",\"lines\":%" PRId64 ",\"matches\":%" PRId64 "}",
                         i ? "," : "", t1, lines[i], hits[i]);
    }
    if (rc == 0)
        rc = sl_buf_add(body, "]}\n", 3);
    if (rc)
        goto fail;
    *status = 200;
    goto out;
fail:
    *status = 500;
    json_error(body, rc == SL_ENOMEM ? "out of memory" : "aggregate failed", -1);
    rc = (rc == SL_EDB && PQstatus(pg) != CONNECTION_OK) ? SL_EDB : 0;
out:
    free(lines);
    free(hits);
    sl_buf_free(&sql);
    sl_query_params_free(&all);
    plan_free(&pl);
    return rc;
}

/* n lines of the event's source before (or after) it, in time order: all of them or
 * only those of its dyno (same app_name and procid), within an hour of it. */
static int ctx_side(struct sl_buf *b, const char *key, bool dyno, bool before)
{
    return sl_buf_addf(
        b,
        ", '%s', (SELECT coalesce(json_agg(x.j ORDER BY x.t, x.i), '[]'::json) FROM (SELECT "
        "l.received_at t, l.id i, (%s)::json j FROM (SELECT * FROM logs l WHERE l.source_id = "
        "e.source_id UNION ALL SELECT * FROM sl_packed_rows(e.source_id, e.received_at - "
        "interval '1 hour', e.received_at + interval '1 hour 1 microsecond')) l WHERE true %s "
        "AND (l.received_at, l.id) %s (e.received_at, e.id) AND l.received_at BETWEEN "
        "e.received_at - interval '1 hour' AND e.received_at + interval '1 hour' ORDER BY "
        "l.received_at %s, l.id %s LIMIT $3::int) x)",
        key, event_json,
        dyno ? "AND l.app_name IS NOT DISTINCT FROM e.app_name AND l.procid IS NOT DISTINCT "
               "FROM e.procid"
             : "",
        before ? "<" : ">", before ? "DESC" : "ASC", before ? "DESC" : "ASC");
}

/* The crash the event's line was joined into (docs/crashes.md), if any: the crashes of
 * its source and dyno around its time (the crashes' unique key leads with source_id,
 * procid), then the line ids the crash's event lists. Null when it is in none. */
#define CTX_CRASH                                                                                  \
    ", 'crash', (SELECT json_build_object('id', c.id::text, 'type', c.type, 'value', c.value, "   \
    "'lang', c.lang, 'lines', c.nlines, 'truncated', c.truncated, 'delivery', c.delivery, "       \
    "'delivery_detail', c.delivery_detail, "                                                       \
    "'first_line_id', c.first_line_id::text, 'last_line_id', c.last_line_id::text, "             \
    "'exception', c.event->'exception', 'message', c.event->'message') FROM crashes c "           \
    "WHERE c.source_id = e.source_id AND c.procid = e.procid AND c.first_at <= "                 \
    "coalesce(e.emitted_at, e.received_at) AND c.last_at >= coalesce(e.emitted_at, "             \
    "e.received_at) AND c.event->'extra'->'sluice.line_ids' ? e.id::text ORDER BY c.id LIMIT 1)"

/* The context query: the event (found through its blocks, within the scope $2), its
 * four lists and the crash it belongs to. */
static int context_sql(struct sl_buf *b)
{
    return sl_buf_addf(b,
                       "WITH e AS (SELECT l.* FROM log_blocks b CROSS JOIN LATERAL (SELECT * "
                       "FROM "
                       BLOCK_ROWS("b.source_id", "b.min_received", "b.max_received", "b.min_id",
                                  "b.max_id", "b.packed")
                       " l WHERE l.id = $1::bigint OFFSET 0) l "
                       "WHERE b.max_id >= $1::bigint AND b.min_id <= $1::bigint AND "
                       "b.source_id = ANY($2::bigint[]) LIMIT 1) "
                       "SELECT json_build_object('event', (SELECT (%s)::json FROM e l)",
                       event_json) ||
           ctx_side(b, "dyno_before", true, true) || ctx_side(b, "dyno_after", true, false) ||
           ctx_side(b, "all_before", false, true) || ctx_side(b, "all_after", false, false) ||
           sl_buf_add(b, CTX_CRASH ")::text FROM e", strlen(CTX_CRASH) + 15);
}

int sl_search_context(struct pg_conn *pg, const struct sl_search_params *p, int64_t id, int n,
                      int *status, struct sl_buf *body)
{
    char ids[24], ns[16];
    char *scope = ids_literal(p->scope, p->nscope);
    const char *v[3] = {ids, scope, ns};
    PGresult *r = NULL;
    struct sl_query_params none;
    struct sl_buf sql;
    int rc;

    sl_query_params_init(&none);
    sl_buf_init(&sql, 1u << 20);
    *status = 500;
    if (scope == NULL || context_sql(&sql)) {
        free(scope);
        sl_buf_free(&sql);
        json_error(body, "out of memory", -1);
        return 0;
    }
    snprintf(ids, sizeof(ids), "%" PRId64, id);
    snprintf(ns, sizeof(ns), "%d", n);
    rc = run(pg, "context failed", sql.p, v, 3, &none, status, body, &r);
    free(scope);
    sl_buf_free(&sql);
    if (rc == SL_ETOOBIG || rc == SL_EPARSE)
        return 0;
    if (rc)
        return PQstatus(pg) != CONNECTION_OK ? SL_EDB : 0;
    sl_buf_reset(body);
    if (PQntuples(r) == 0) {
        /* not stored, or of a source outside the scope: the same answer */
        *status = 404;
        json_error(body, "no such line", -1);
    } else if (sl_buf_add(body, PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0)) ||
               sl_buf_add(body, "\n", 1)) {
        *status = 500;
        json_error(body, "the context passes the answer budget (SLUICE_SEARCH_ANSWER_BYTES)", -1);
    } else {
        *status = 200;
    }
    PQclear(r);
    return 0;
}
