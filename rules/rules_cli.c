/* `sluice rules apply|list|test` and `sluice alerts` (include/sluice/rules_cli.h).
 * CLI main thread only. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "sluice/alert.h"
#include "sluice/db.h"
#include "sluice/match.h"
#include "sluice/rfc5424.h"
#include "sluice/rules_cli.h"
#include "sluice/ruleset.h"

#define FILE_MAX (16u << 20)

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    size_t n;

    if (f == NULL) {
        fprintf(stderr, "sluice: cannot read %s: %s\n", path, strerror(errno));
        return NULL;
    }
    buf = malloc(FILE_MAX + 1);
    if (buf == NULL) {
        fclose(f);
        return NULL;
    }
    n = fread(buf, 1, FILE_MAX + 1, f);
    fclose(f);
    if (n > FILE_MAX) {
        fprintf(stderr, "sluice: %s is larger than %u bytes\n", path, FILE_MAX);
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

static struct sl_ruleset *load(const char *path, bool resolve_env)
{
    size_t len;
    char *text = read_file(path, &len);
    struct sl_ruleset *rs = NULL;
    struct sl_buf errs;

    if (text == NULL)
        return NULL;
    sl_buf_init(&errs, 1 << 20);
    if (sl_ruleset_parse(text, len, resolve_env, &rs, &errs) != 0) {
        fprintf(stderr, "%s: not applied:\n%.*s", path, (int)errs.len, errs.p ? errs.p : "");
        if (errs.len && errs.p[errs.len - 1] != '\n')
            fputc('\n', stderr);
        rs = NULL;
    }
    sl_buf_free(&errs);
    free(text);
    return rs;
}

static int exec_ok(PGconn *c, const char *sql)
{
    return sl_db_exec(c, "statement failed", sql, 0, NULL, NULL) ? 1 : 0;
}

/* Upsert one named spec; returns 'a'dded, 'c'hanged, 'u'nchanged, or 0 on error. */
static char upsert(PGconn *c, const char *table, const char *name, const char *spec)
{
    const char *vals[2] = {name, spec};
    char sql[512];
    PGresult *r;
    char what = 0;

    snprintf(sql, sizeof(sql),
             "WITH old AS (SELECT spec FROM %s WHERE name = $1) "
             "INSERT INTO %s (name, spec) VALUES ($1, $2::jsonb) ON CONFLICT (name) DO UPDATE "
             "SET spec = EXCLUDED.spec, updated_at = now() WHERE %s.spec IS DISTINCT FROM "
             "EXCLUDED.spec RETURNING (SELECT count(*) FROM old)",
             table, table, table);
    if (sl_db_exec(c, "rules apply failed", sql, 2, vals, &r))
        return 0;
    what = PQntuples(r) == 0 ? 'u' : atoi(PQgetvalue(r, 0, 0)) ? 'c' : 'a';
    PQclear(r);
    return what;
}

static long remove_missing(PGconn *c, const char *table, const char *names_array)
{
    const char *vals[1] = {names_array};
    char sql[256];
    PGresult *r;
    long n = -1;

    snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE NOT (name = ANY($1::text[]))", table);
    if (sl_db_exec(c, "rules apply failed", sql, 1, vals, &r))
        return n;
    n = atol(PQcmdTuples(r));
    PQclear(r);
    return n;
}

int sl_rules_apply(struct pg_conn *c, const char *path, FILE *out)
{
    struct sl_ruleset *rs = load(path, false);
    struct sl_buf rn, dn;
    int counts[2][3] = {{0}};
    long removed[2] = {0, 0};
    int rc = 1;

    if (rs == NULL)
        return 1;
    sl_buf_init(&rn, 1 << 20);
    sl_buf_init(&dn, 1 << 20);
    if (exec_ok(c, "BEGIN"))
        goto out;
    for (size_t i = 0; i < rs->ndests; i++) {
        char *spec = sl_dest_to_json(&rs->dests[i]);
        char w = spec ? upsert(c, "destinations", rs->dests[i].name, spec) : 0;
        free(spec);
        if (!w || sl_db_array_add(&dn, rs->dests[i].name))
            goto fail;
        counts[1][w == 'a' ? 0 : w == 'c' ? 1 : 2]++;
    }
    for (size_t i = 0; i < rs->nrules; i++) {
        char *spec = sl_rule_to_json(&rs->rules[i]);
        char w = spec ? upsert(c, "rules", rs->rules[i].name, spec) : 0;
        free(spec);
        if (!w || sl_db_array_add(&rn, rs->rules[i].name))
            goto fail;
        counts[0][w == 'a' ? 0 : w == 'c' ? 1 : 2]++;
    }
    if (sl_db_array_end(&rn) || sl_db_array_end(&dn))
        goto fail;
    removed[0] = remove_missing(c, "rules", rn.p);
    removed[1] = remove_missing(c, "destinations", dn.p);
    if (removed[0] < 0 || removed[1] < 0)
        goto fail;
    /* a changed destination may work again: clear a 410 disable */
    if (exec_ok(c, "UPDATE destinations SET disabled_at = NULL, disabled_reason = NULL "
                   "WHERE disabled_at IS NOT NULL AND updated_at > disabled_at") ||
        exec_ok(c, "NOTIFY sluice_rules") || exec_ok(c, "COMMIT"))
        goto fail;
    fprintf(out,
            "rules: %d added, %d changed, %ld removed, %d unchanged\n"
            "destinations: %d added, %d changed, %ld removed, %d unchanged\n",
            counts[0][0], counts[0][1], removed[0], counts[0][2], counts[1][0], counts[1][1],
            removed[1], counts[1][2]);
    rc = 0;
    goto out;
fail:
    PQclear(PQexec(c, "ROLLBACK"));
    fprintf(stderr, "%s: not applied (database error)\n", path);
out:
    sl_buf_free(&rn);
    sl_buf_free(&dn);
    sl_ruleset_free(rs);
    return rc;
}

int sl_rules_list(struct pg_conn *c, FILE *out)
{
    PGresult *r;

    if (sl_db_exec(c, "rules list failed",
                   "SELECT r.name, coalesce(r.spec->>'condition', 'match'), "
                   "coalesce(r.spec->>'severity', ''), r.spec->>'pattern', "
                   "(SELECT count(*) FROM alert_state s WHERE s.rule_id = r.id AND s.firing), "
                   "to_char(r.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
                   "FROM rules r ORDER BY r.name",
                   0, NULL, &r))
        return 1;
    fprintf(out, "%-32s %-10s %-9s %-7s %-21s %s\n", "NAME", "CONDITION", "SEVERITY", "FIRING",
            "UPDATED", "PATTERN");
    for (int i = 0; i < PQntuples(r); i++)
        fprintf(out, "%-32s %-10s %-9s %-7s %-21s %s\n", PQgetvalue(r, i, 0),
                PQgetvalue(r, i, 1), PQgetvalue(r, i, 2), PQgetvalue(r, i, 4),
                PQgetvalue(r, i, 5), PQgetvalue(r, i, 3));
    PQclear(r);
    return 0;
}

int sl_alerts_list(struct pg_conn *c, int limit, FILE *out)
{
    char lim[16];
    const char *vals[1] = {lim};
    PGresult *r;

    snprintf(lim, sizeof(lim), "%d", limit > 0 ? limit : 50);
    if (sl_db_exec(
            c, "alerts list failed",
            "SELECT to_char(a.fired_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
            "a.rule_name, a.group_key, a.severity, a.state, a.count, a.id, "
            "coalesce((SELECT string_agg(o.destination || ':' || o.event || '=' || o.status || "
            "  CASE WHEN o.status = 'pending' AND o.attempts > 0 THEN '(retry ' || o.attempts || ')' "
            "  ELSE '' END, ' ' ORDER BY o.id) FROM alert_outbox o WHERE o.alert_id = a.id), '-') "
            "FROM alerts a ORDER BY a.fired_at DESC LIMIT $1::int",
            1, vals, &r))
        return 1;
    fprintf(out, "%-21s %-24s %-16s %-9s %-9s %6s  %s\n", "FIRED", "RULE", "GROUP", "SEVERITY",
            "STATE", "COUNT", "DELIVERIES");
    for (int i = 0; i < PQntuples(r); i++)
        fprintf(out, "%-21s %-24s %-16.16s %-9s %-9s %6s  %s\n", PQgetvalue(r, i, 0),
                PQgetvalue(r, i, 1), PQgetvalue(r, i, 2), PQgetvalue(r, i, 3),
                PQgetvalue(r, i, 4), PQgetvalue(r, i, 5), PQgetvalue(r, i, 7));
    PQclear(r);
    return 0;
}

static int64_t test_lookup(void *arg, const char *name)
{
    const char *want = arg;
    return want == NULL || strcmp(want, name) == 0 ? 1 : 0;
}

/* "2026-11-21T10:00:00.123+00:00 app[web.1]: message" (heroku logs output) */
static bool human_line(const char *p, size_t n, struct sl_match_line *ml, int64_t *ts)
{
    const char *sp = memchr(p, ' ', n), *lb, *rb;
    int frac, off;

    if (sp == NULL || sl_rfc3339_parse(p, (size_t)(sp - p), ts, &frac, &off) != 0)
        return false;
    lb = memchr(sp, '[', n - (size_t)(sp - p));
    if (lb == NULL)
        return false;
    rb = memchr(lb, ']', n - (size_t)(lb - p));
    if (rb == NULL || rb + 2 >= p + n || rb[1] != ':' || rb[2] != ' ')
        return false;
    ml->app = sl_str_make(sp + 1, (size_t)(lb - sp - 1));
    ml->procid = sl_str_make(lb + 1, (size_t)(rb - lb - 1));
    ml->msg = sl_str_make(rb + 3, n - (size_t)(rb + 3 - p));
    return true;
}

int sl_rules_test(const char *path, const char *source, FILE *in, FILE *out)
{
    struct sl_ruleset *rs = load(path, false);
    struct sl_matcher *m = NULL;
    struct sl_alert_state *st = NULL;
    uint64_t *matches = NULL, *fires = NULL;
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    ssize_t n;
    int64_t clock_us = (int64_t)time(NULL) * 1000000;
    struct sl_buf errs;
    int rc = 1;

    if (rs == NULL)
        return 1;
    sl_buf_init(&errs, 1 << 16);
    if (sl_matcher_new(rs, test_lookup, (void *)(uintptr_t)source, NULL, &m, &errs)) {
        fprintf(stderr, "%.*s", (int)errs.len, errs.p ? errs.p : "");
        goto out;
    }
    st = calloc(rs->nrules + 1, sizeof(*st));
    matches = calloc(rs->nrules + 1, sizeof(*matches));
    fires = calloc(rs->nrules + 1, sizeof(*fires));
    if (st == NULL || matches == NULL || fires == NULL)
        goto out;
    while ((n = getline(&line, &cap, in)) > 0) {
        struct sl_match_line ml;
        struct sl_match_hit hits[64];
        struct sl_syslog sl;
        const char *why;
        int64_t ts = clock_us + (int64_t)lineno * 1000;
        size_t k;

        lineno++;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        memset(&ml, 0, sizeof(ml));
        ml.source_id = 1;
        if (sl_syslog_parse(line, (size_t)n, &sl, &why) == 0) {
            ml.app = sl.app_name;
            ml.procid = sl.procid;
            ml.msg = sl.msg;
            if (sl.has_ts)
                ts = sl.ts_us;
        } else if (!human_line(line, (size_t)n, &ml, &ts)) {
            ml.msg = sl_str_make(line, (size_t)n);
        }
        k = sl_matcher_run(m, &ml, hits, 64);
        for (size_t h = 0; h < k; h++) {
            const struct sl_rule *r = &rs->rules[hits[h].rule];
            char group[256];
            enum sl_alert_event ev;

            snprintf(group, sizeof(group), "%.*s", (int)hits[h].group.len,
                     hits[h].group.p ? hits[h].group.p : "");
            if (r->group_by == SL_GROUP_SOURCE)
                snprintf(group, sizeof(group), "%s", source ? source : "(source)");
            matches[hits[h].rule]++;
            ev = sl_alert_on_matches(r, (int64_t)hits[h].rule + 1, group, &st[hits[h].rule],
                                     &ts, 1, ts);
            fprintf(out, "line %zu: %s%s%s%s\n", lineno, r->name, group[0] ? " [" : "", group,
                    group[0] ? "]" : "");
            if (ev == SL_ALERT_FIRE) {
                fires[hits[h].rule]++;
                fprintf(out, "line %zu: %s FIRES (%s, %" PRIu64 " matches)\n", lineno, r->name,
                        r->condition == SL_COND_THRESHOLD ? "threshold reached" : "match",
                        st[hits[h].rule].count);
            }
        }
    }
    fprintf(out, "\n%-32s %8s %6s\n", "RULE", "MATCHES", "FIRES");
    for (size_t i = 0; i < rs->nrules; i++)
        fprintf(out, "%-32s %8" PRIu64 " %6" PRIu64 "%s\n", rs->rules[i].name, matches[i],
                fires[i],
                rs->rules[i].condition == SL_COND_ABSENCE ? "  (absence: fires on silence)" : "");
    fprintf(out, "%zu lines read\n", lineno);
    rc = 0;
out:
    if (st)
        for (size_t i = 0; i < rs->nrules; i++)
            sl_alert_state_free(&st[i]);
    free(st);
    free(matches);
    free(fires);
    free(line);
    sl_matcher_free(m);
    sl_ruleset_free(rs);
    sl_buf_free(&errs);
    return rc;
}
