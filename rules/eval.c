/* Alert evaluation (include/sluice/eval.h). Writer thread (lines, commit) and
 * notifier thread (tick), each with its own sl_eval and connection.
 *
 * Per (rule, group) touched by a batch: one upsert that row-locks and returns the
 * state, the pure step (rules/alert.c), one update; per event one alerts row and one
 * outbox row per destination. Groups are visited in (rule id, group) order so two
 * nodes lock in the same order. The pure parts live apart: the per-batch groups in
 * rules/evalgroup.c, the source-name resolution in rules/evalsrc.c, the alert document,
 * sample lines and search link in rules/alertdoc.c; this file keeps the matcher, libpq
 * and the order of statements. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <libpq-fe.h>

#include "sluice/alert.h"
#include "sluice/alertdoc.h"
#include "sluice/db.h"
#include "sluice/eval.h"
#include "sluice/evalgroup.h"
#include "sluice/evalsrc.h"
#include "sluice/log.h"
#include "sluice/match.h"
#include "sluice/metrics.h"
#include "sluice/ruleset.h"
#include "sluice/sources.h"

#define MAX_HITS 128

_Atomic unsigned sl_rules_version;

struct sl_eval {
    struct sl_sources *sources;
    char *public_url;
    struct sl_ruleset *rs;
    struct sl_matcher *m;
    int *rule_ids; /* database id of each rule */
    struct sl_evalgroups groups; /* this batch's matches per (rule, group) */
    struct sl_buf scratch;
    struct sl_alertdoc_ctx doc; /* source names, public URL, scratch: for the documents */
    uint64_t *limit_seen; /* per rule: limit hits already reported */
    uint64_t src_gen;     /* generation of the source table the matcher resolved names in */
    int64_t *src_ids;     /* the ids it found, every rule's names in order (0: unknown) */
    size_t nsrc_ids;
};

static bool source_name(void *sources, int64_t id, char *out, size_t cap)
{
    return sl_sources_name(sources, id, out, cap);
}

int sl_eval_new(struct sl_sources *sources, const char *public_url, struct sl_eval **out)
{
    struct sl_eval *ev = calloc(1, sizeof(*ev));

    if (ev == NULL)
        return SL_ENOMEM;
    ev->sources = sources;
    ev->public_url = strdup(public_url ? public_url : "");
    sl_buf_init(&ev->scratch, 1 << 20);
    if (ev->public_url == NULL) {
        free(ev);
        return SL_ENOMEM;
    }
    ev->doc.name = source_name;
    ev->doc.name_arg = sources;
    ev->doc.public_url = ev->public_url;
    ev->doc.scratch = &ev->scratch;
    *out = ev;
    return 0;
}

static void rules_clear(struct sl_eval *ev)
{
    sl_matcher_free(ev->m);
    sl_ruleset_free(ev->rs);
    free(ev->rule_ids);
    free(ev->src_ids);
    ev->m = NULL;
    ev->rs = NULL;
    ev->rule_ids = NULL;
    ev->src_ids = NULL;
    ev->nsrc_ids = 0;
}

void sl_eval_free(struct sl_eval *ev)
{
    if (ev == NULL)
        return;
    sl_evalgroups_free(&ev->groups);
    rules_clear(ev);
    free(ev->limit_seen);
    sl_buf_free(&ev->scratch);
    free(ev->public_url);
    free(ev);
}

const struct sl_ruleset *sl_eval_rules(const struct sl_eval *ev)
{
    return ev->rs;
}

size_t sl_eval_nrules(const struct sl_eval *ev)
{
    return ev->rs ? ev->rs->nrules : 0;
}

int sl_eval_load(struct sl_eval *ev, struct pg_conn *c, bool resolve_env)
{
    PGresult *rr = NULL, *rd = NULL;
    cJSON *doc = NULL, *rules, *dests;
    char *text = NULL;
    struct sl_ruleset *rs = NULL;
    struct sl_matcher *m = NULL;
    struct sl_buf errs;
    int *ids = NULL;
    uint64_t gen = 0;
    int64_t *src_ids = NULL;
    size_t nsrc_ids = 0;
    int rc = SL_EDB;

    sl_buf_init(&errs, 1 << 16);
    if (sl_db_exec(c, "rules load failed", "SELECT id, name, spec::text FROM rules ORDER BY id",
                   0, NULL, &rr) ||
        sl_db_exec(c, "rules load failed",
                   "SELECT name, spec::text FROM destinations ORDER BY name", 0, NULL, &rd))
        goto out;
    if (PQntuples(rr) == 0) {
        rules_clear(ev);
        rc = 0;
        goto out;
    }
    rc = SL_ENOMEM;
    doc = cJSON_CreateObject();
    dests = cJSON_AddObjectToObject(doc, "destinations");
    rules = cJSON_AddArrayToObject(doc, "rules");
    if (doc == NULL || dests == NULL || rules == NULL)
        goto out;
    for (int i = 0; i < PQntuples(rd); i++) {
        cJSON *d = cJSON_Parse(PQgetvalue(rd, i, 1));
        if (d)
            cJSON_AddItemToObject(dests, PQgetvalue(rd, i, 0), d);
    }
    for (int i = 0; i < PQntuples(rr); i++) {
        cJSON *r = cJSON_Parse(PQgetvalue(rr, i, 2));
        if (r)
            cJSON_AddItemToArray(rules, r);
    }
    text = cJSON_PrintUnformatted(doc);
    if (text == NULL)
        goto out;
    rc = sl_ruleset_parse(text, strlen(text), resolve_env, &rs, &errs);
    /* read before compiling: a change while compiling is seen at the next batch */
    gen = sl_sources_generation(ev->sources);
    if (rc == 0)
        rc = sl_evalsrc_lookup(rs, sl_sources_id, ev->sources, &src_ids, &nsrc_ids);
    if (rc == 0)
        rc = sl_matcher_new(rs, sl_sources_id, ev->sources, NULL, &m, &errs);
    if (rc) {
        sl_error("stored rules do not compile; keeping the previous set", "errors=\"%.*s\"",
                 (int)(errs.len > 400 ? 400 : errs.len), errs.p ? errs.p : "");
        goto out;
    }
    ids = calloc(rs->nrules + 1, sizeof(*ids));
    if (ids == NULL) {
        rc = SL_ENOMEM;
        goto out;
    }
    for (size_t k = 0; k < rs->nrules; k++)
        for (int i = 0; i < PQntuples(rr); i++)
            if (strcmp(PQgetvalue(rr, i, 1), rs->rules[k].name) == 0)
                ids[k] = atoi(PQgetvalue(rr, i, 0));
    rules_clear(ev);
    ev->rs = rs;
    ev->m = m;
    ev->rule_ids = ids;
    ev->src_gen = gen;
    ev->src_ids = src_ids;
    ev->nsrc_ids = nsrc_ids;
    src_ids = NULL;
    free(ev->limit_seen);
    ev->limit_seen = calloc(rs->nrules + 1, sizeof(*ev->limit_seen));
    rs = NULL;
    m = NULL;
    sl_info("rules loaded", "rules=%zu destinations=%zu", ev->rs->nrules, ev->rs->ndests);
    rc = 0;
out:
    sl_matcher_free(m);
    sl_ruleset_free(rs);
    free(src_ids);
    free(text);
    cJSON_Delete(doc);
    PQclear(rr);
    PQclear(rd);
    sl_buf_free(&errs);
    return rc;
}

static void report_limits(struct sl_eval *ev);

/* Rules name sources; the matcher holds their ids, looked up when it was compiled. When
 * the source table changes and a name now has another id (a source added, or removed and
 * added again), compile the matcher again so the rule sees it (issue 12). The maintenance
 * thread of every node reloads the table on NOTIFY sluice_sources before the new
 * credentials are accepted, and a batch's records were accepted before the batch begins,
 * so no line of a new source is matched with names resolved before it existed. On
 * failure the old matcher stays and the next batch tries again. */
static void resolve_sources(struct sl_eval *ev)
{
    uint64_t gen = sl_sources_generation(ev->sources);
    struct sl_matcher *m = NULL;
    uint64_t *seen = NULL;
    int64_t *ids = NULL;
    size_t n = 0;

    if (!sl_evalsrc_stale(ev->rs != NULL && ev->m != NULL, ev->src_gen, gen))
        return;
    if (sl_evalsrc_lookup(ev->rs, sl_sources_id, ev->sources, &ids, &n) != 0)
        goto failed;
    if (!sl_evalsrc_changed(ev->src_ids, ev->nsrc_ids, ids, n)) {
        free(ids); /* the periodic reload, or sources the rules do not name */
        ev->src_gen = gen;
        return;
    }
    seen = calloc(ev->rs->nrules + 1, sizeof(*seen));
    if (seen == NULL || sl_matcher_new(ev->rs, sl_sources_id, ev->sources, NULL, &m, NULL))
        goto failed;
    report_limits(ev); /* the old matcher's counts, before its counters go */
    sl_matcher_free(ev->m);
    ev->m = m;
    free(ev->limit_seen);
    ev->limit_seen = seen;
    free(ev->src_ids);
    ev->src_ids = ids;
    ev->nsrc_ids = n;
    ev->src_gen = gen;
    sl_info("rules recompiled for the source table", "rules=%zu", ev->rs->nrules);
    return;
failed:
    free(seen);
    free(ids);
    sl_warn("rules not recompiled for the new sources; will retry", "%s", "");
}

void sl_eval_begin(struct sl_eval *ev)
{
    sl_evalgroups_clear(&ev->groups);
    resolve_sources(ev);
}

static void eval_line(struct sl_eval *ev, int64_t row_id, const struct sl_entry *e,
                      const struct sl_row_info *info, bool crash);

void sl_eval_line(struct sl_eval *ev, int64_t row_id, const struct sl_entry *e,
                  const struct sl_row_info *info)
{
    eval_line(ev, row_id, e, info, false);
}

void sl_eval_crash(struct sl_eval *ev, int64_t row_id, const struct sl_entry *e,
                   const struct sl_row_info *info)
{
    eval_line(ev, row_id, e, info, true);
}

static void eval_line(struct sl_eval *ev, int64_t row_id, const struct sl_entry *e,
                      const struct sl_row_info *info, bool crash)
{
    struct sl_match_line line;
    struct sl_match_hit hits[MAX_HITS];
    size_t n;
    char name[SL_SOURCE_NAME_MAX + 1];

    if (ev->m == NULL)
        return;
    line.source_id = e->source_id;
    line.app = info->parse_error ? SL_STR_NULL : info->sl.app_name;
    line.procid = info->parse_error ? SL_STR_NULL : info->sl.procid;
    line.msg = info->sl.msg;
    n = crash ? sl_matcher_run_crash(ev->m, &line, hits, MAX_HITS)
              : sl_matcher_run(ev->m, &line, hits, MAX_HITS);
    for (size_t i = 0; i < n; i++) {
        const struct sl_rule *r = &ev->rs->rules[hits[i].rule];
        struct sl_str group = hits[i].group;
        struct sl_evalgroup *a;
        struct sl_eval_sample smp;

        if (r->group_by == SL_GROUP_SOURCE) {
            sl_alertdoc_source_name(&ev->doc, e->source_id, name, sizeof(name));
            group = sl_str_make(name, strlen(name));
        }
        a = sl_evalgroups_find(&ev->groups, hits[i].rule, group);
        if (a == NULL)
            continue;
        sl_eval_sample_make(&smp, row_id, e, info);
        sl_evalgroup_add(a, &smp);
    }
}

/* Lock (creating if needed) and read the state of (rule, group). */
static int state_lock(PGconn *c, int rule_id, const char *group, int64_t source_id,
                      int64_t init_last_match, struct sl_alert_state *st, char **lines)
{
    char rid[16], sid[24], lm[24];
    const char *vals[4] = {rid, group, sid, lm};
    PGresult *r;

    snprintf(rid, sizeof(rid), "%d", rule_id);
    snprintf(sid, sizeof(sid), "%" PRId64, source_id);
    snprintf(lm, sizeof(lm), "%" PRId64, init_last_match);
    r = PQexecParams(c,
                     "INSERT INTO alert_state (rule_id, group_key, source_id, last_match_at) "
                     "VALUES ($1::int, $2, nullif($3::bigint, 0), $4::bigint) "
                     "ON CONFLICT (rule_id, group_key) DO UPDATE SET rule_id = EXCLUDED.rule_id "
                     "RETURNING firing, fired_at, resolved_at, last_match_at, count, "
                     "coalesce(alert_id, ''), match_times::text, lines::text",
                     4, NULL, vals, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        sl_db_log_error("alert state lock failed", c, r);
        PQclear(r);
        return SL_EDB;
    }
    memset(st, 0, sizeof(*st));
    st->firing = PQgetvalue(r, 0, 0)[0] == 't';
    st->fired_us = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    st->resolved_us = strtoll(PQgetvalue(r, 0, 2), NULL, 10);
    st->last_match_us = strtoll(PQgetvalue(r, 0, 3), NULL, 10);
    st->count = strtoull(PQgetvalue(r, 0, 4), NULL, 10);
    snprintf(st->alert_id, sizeof(st->alert_id), "%s", PQgetvalue(r, 0, 5));
    *lines = strdup(PQgetvalue(r, 0, 7));
    if (*lines == NULL || sl_alertdoc_times_parse(PQgetvalue(r, 0, 6), st)) {
        PQclear(r);
        return SL_ENOMEM;
    }
    PQclear(r);
    return 0;
}

static int state_store(PGconn *c, int rule_id, const char *group, const struct sl_alert_state *st,
                       const cJSON *kept)
{
    char rid[16], f[24], rs[24], lm[24], cnt[24];
    char *lines = kept ? cJSON_PrintUnformatted(kept) : NULL;
    struct sl_buf times;
    const char *vals[10];
    int rc = 0;

    sl_buf_init(&times, 1 << 20);
    if (sl_alertdoc_times_text(st, &times))
        return SL_ENOMEM;
    snprintf(rid, sizeof(rid), "%d", rule_id);
    snprintf(f, sizeof(f), "%" PRId64, st->fired_us);
    snprintf(rs, sizeof(rs), "%" PRId64, st->resolved_us);
    snprintf(lm, sizeof(lm), "%" PRId64, st->last_match_us);
    snprintf(cnt, sizeof(cnt), "%" PRIu64, st->count);
    vals[0] = rid;
    vals[1] = group;
    vals[2] = st->firing ? "t" : "f";
    vals[3] = f;
    vals[4] = rs;
    vals[5] = lm;
    vals[6] = cnt;
    vals[7] = st->alert_id[0] ? st->alert_id : NULL;
    vals[8] = times.p;
    vals[9] = lines ? lines : "{}";
    if (sl_db_exec(c, "alert state update failed",
                   "UPDATE alert_state SET firing = $3::boolean, fired_at = $4::bigint, "
                   "resolved_at = $5::bigint, last_match_at = $6::bigint, count = $7::bigint, "
                   "alert_id = $8, match_times = $9::bigint[], lines = $10::jsonb "
                   "WHERE rule_id = $1::int AND group_key = $2",
                   10, vals, NULL))
        rc = SL_EDB;
    free(lines);
    sl_buf_free(&times);
    return rc;
}

/* Record the event: the alerts row and one outbox row per destination. */
static int emit(struct sl_eval *ev, PGconn *c, uint32_t ri, const char *group,
                const struct sl_alert_state *st, enum sl_alert_event what, const cJSON *kept,
                int64_t now_us)
{
    const struct sl_rule *r = &ev->rs->rules[ri];
    char *doc = sl_alertdoc_doc(&ev->doc, r, ev->rule_ids[ri], group, st, what, kept, now_us);
    char rid[16], cnt[24], fired[24], now[24];
    struct sl_buf dests;
    const char *vals[8];
    int rc = SL_EDB;

    if (doc == NULL)
        return SL_ENOMEM;
    sl_buf_init(&dests, 1 << 16);
    snprintf(rid, sizeof(rid), "%d", ev->rule_ids[ri]);
    snprintf(cnt, sizeof(cnt), "%" PRIu64, st->count);
    snprintf(fired, sizeof(fired), "%.6f", (double)st->fired_us / 1e6);
    snprintf(now, sizeof(now), "%.6f", (double)now_us / 1e6);
    vals[0] = st->alert_id;
    vals[1] = rid;
    vals[2] = r->name;
    vals[3] = group;
    vals[4] = sl_alertdoc_severity(r->severity);
    vals[5] = cnt;
    vals[6] = fired;
    vals[7] = doc;
    if (what == SL_ALERT_FIRE) {
        if (sl_db_exec(c, "alert insert failed",
                       "INSERT INTO alerts (id, rule_id, rule_name, group_key, severity, state, "
                       "count, fired_at, doc) VALUES ($1, $2::int, $3, $4, $5, 'firing', "
                       "$6::bigint, to_timestamp($7::double precision), $8::jsonb) "
                       "ON CONFLICT (id) DO NOTHING",
                       8, vals, NULL))
            goto out;
    } else {
        const char *uv[4] = {st->alert_id, cnt, now, doc};
        if (sl_db_exec(c, "alert insert failed",
                       "UPDATE alerts SET state = 'resolved', count = $2::bigint, "
                       "resolved_at = to_timestamp($3::double precision), doc = $4::jsonb "
                       "WHERE id = $1",
                       4, uv, NULL))
            goto out;
    }
    for (size_t i = 0; i < r->nnotify; i++)
        if (sl_db_array_add(&dests, r->notify[i]))
            goto out;
    if (sl_db_array_end(&dests))
        goto out;
    {
        const char *ov[4] = {st->alert_id, what == SL_ALERT_FIRE ? "firing" : "resolved", doc,
                             dests.p};
        if (sl_db_exec(c, "outbox insert failed",
                       "INSERT INTO alert_outbox (alert_id, event, destination, delivery_id, "
                       "doc) SELECT $1, $2, d, $1 || '.' || $2 || '.' || d, $3::jsonb "
                       "FROM unnest($4::text[]) d ON CONFLICT (delivery_id) DO NOTHING",
                       4, ov, NULL))
            goto out;
    }
    if (what == SL_ALERT_FIRE)
        SL_INC(alerts_fired, 1);
    else
        SL_INC(alerts_resolved, 1);
    sl_info(what == SL_ALERT_FIRE ? "alert firing" : "alert resolved",
            "rule=%s group=\"%.60s\" id=%s count=%" PRIu64, r->name, group, st->alert_id,
            st->count);
    rc = 0;
out:
    sl_buf_free(&dests);
    free(doc);
    return rc;
}

/* A rule whose pattern hits the PCRE2 limits is reported, not silently useless. */
static void report_limits(struct sl_eval *ev)
{
    for (size_t i = 0; ev->limit_seen && i < ev->rs->nrules; i++) {
        struct sl_rule_stats st;
        sl_matcher_rule_stats(ev->m, (uint32_t)i, &st);
        if (st.limit_hits > ev->limit_seen[i]) {
            SL_INC(rule_limit_hits, st.limit_hits - ev->limit_seen[i]);
            sl_warn("rule hit the PCRE2 match limit; those lines count as no match",
                    "rule=%s lines=%" PRIu64 " total=%" PRIu64, ev->rs->rules[i].name,
                    st.limit_hits - ev->limit_seen[i], st.limit_hits);
            ev->limit_seen[i] = st.limit_hits;
        }
    }
}

int sl_eval_commit(struct sl_eval *ev, struct pg_conn *c, int64_t now_us)
{
    int events = 0;

    if (ev->rs && ev->m)
        report_limits(ev);
    if (ev->groups.n == 0 || ev->rs == NULL)
        return 0;
    /* group keys made valid UTF-8 (text columns), in the order every node locks them */
    sl_evalgroups_sort(&ev->groups, ev->rule_ids);
    for (size_t i = 0; i < ev->groups.n; i++) {
        struct sl_evalgroup *a = &ev->groups.g[i];
        const struct sl_rule *r = &ev->rs->rules[a->rule];
        struct sl_alert_state st;
        enum sl_alert_event what;
        int rc;

        char *stored = NULL;
        cJSON *kept;
        bool was_firing;
        double min_t = 0;

        if ((rc = state_lock(c, ev->rule_ids[a->rule], a->group,
                             r->group_by == SL_GROUP_SOURCE ? a->source_id : 0, now_us, &st,
                             &stored)))
            return rc;
        was_firing = st.firing;
        what = sl_alert_on_matches(r, ev->rule_ids[a->rule], a->group, &st, a->times, a->ntimes,
                                   now_us);
        /* a threshold window forgets lines that slid out of it */
        if (!was_firing && r->condition == SL_COND_THRESHOLD && st.last_match_us)
            min_t = (double)(st.last_match_us - (int64_t)r->window * 1000000);
        /* a match alert quotes the lines of its own batch: nothing before it counts */
        if (!was_firing && r->condition == SL_COND_MATCH) {
            free(stored);
            stored = NULL;
        }
        kept = sl_alertdoc_lines(&ev->doc, stored, a, min_t);
        free(stored);
        if (kept == NULL) {
            sl_alert_state_free(&st);
            return SL_ENOMEM;
        }
        rc = 0;
        if (what != SL_ALERT_NONE)
            rc = emit(ev, c, a->rule, a->group, &st, what, kept, now_us);
        if (rc == 0) {
            if (what == SL_ALERT_RESOLVE) { /* the next alert starts with fresh lines */
                cJSON_Delete(kept);
                kept = sl_alertdoc_lines(&ev->doc, NULL, NULL, 0);
            }
            rc = state_store(c, ev->rule_ids[a->rule], a->group, &st, kept);
        }
        if (what != SL_ALERT_NONE)
            events++;
        cJSON_Delete(kept);
        sl_alert_state_free(&st);
        if (rc)
            return rc;
    }
    if (events)
        PQclear(PQexec(c, "NOTIFY sluice_outbox"));
    return events;
}

int sl_eval_tick(struct sl_eval *ev, struct pg_conn *c, int64_t now_us)
{
    PGresult *r;
    int events = 0, rc = 0;

    if (ev->rs == NULL)
        return 0;
    /* Absence rules watch their sources from the moment they exist. */
    for (size_t i = 0; i < ev->rs->nrules; i++) {
        const struct sl_rule *rule = &ev->rs->rules[i];
        char rid[16], lm[24];
        const char *vals[3] = {rid, lm, NULL};
        struct sl_buf names;

        if (rule->condition != SL_COND_ABSENCE)
            continue;
        sl_buf_init(&names, 1 << 16);
        snprintf(rid, sizeof(rid), "%d", ev->rule_ids[i]);
        snprintf(lm, sizeof(lm), "%" PRId64, now_us);
        for (size_t k = 0; k < rule->nsources; k++)
            if (sl_db_array_add(&names, rule->sources[k]))
                break;
        if (sl_db_array_end(&names) == 0) {
            vals[2] = names.p;
            PQclear(PQexecParams(
                c,
                "INSERT INTO alert_state (rule_id, group_key, source_id, last_match_at) "
                "SELECT $1::int, s.name, s.id, $2::bigint FROM sources s "
                "WHERE cardinality($3::text[]) = 0 OR s.name = ANY($3::text[]) "
                "ON CONFLICT DO NOTHING",
                3, NULL, vals, NULL, NULL, 0));
        }
        sl_buf_free(&names);
    }
    if (PQresultStatus(r = PQexec(c, "BEGIN")) != PGRES_COMMAND_OK) {
        PQclear(r);
        return SL_EDB;
    }
    PQclear(r);
    {
        /* only what can change with time alone: firing alerts, and absence groups */
        struct sl_buf ids;
        const char *v[1];
        sl_buf_init(&ids, 1 << 16);
        if (sl_buf_addc(&ids, '{') == 0) {
            bool first = true;
            for (size_t i = 0; i < ev->rs->nrules; i++)
                if (ev->rs->rules[i].condition == SL_COND_ABSENCE &&
                    sl_buf_addf(&ids, first ? "%d" : ",%d", ev->rule_ids[i]) == 0)
                    first = false;
        }
        if (sl_buf_add(&ids, "}", 2))
            sl_buf_reset(&ids);
        v[0] = ids.len ? ids.p : "{}";
        if (sl_db_exec(c, "alert tick failed",
                       "SELECT rule_id, group_key FROM alert_state "
                       "WHERE firing OR rule_id = ANY($1::int[]) "
                       "ORDER BY rule_id, group_key FOR UPDATE SKIP LOCKED",
                       1, v, &r))
            r = NULL; /* logged */
        sl_buf_free(&ids);
    }
    if (r == NULL) {
        PQclear(PQexec(c, "ROLLBACK"));
        return SL_EDB;
    }
    for (int i = 0; i < PQntuples(r) && rc == 0; i++) {
        int rule_db = atoi(PQgetvalue(r, i, 0));
        const char *group = PQgetvalue(r, i, 1);
        struct sl_alert_state st;
        enum sl_alert_event what;
        size_t ri;

        for (ri = 0; ri < ev->rs->nrules && ev->rule_ids[ri] != rule_db; ri++)
            ;
        if (ri == ev->rs->nrules)
            continue;
        char *stored = NULL;
        if ((rc = state_lock(c, rule_db, group, 0, now_us, &st, &stored)))
            break;
        what = sl_alert_on_tick(&ev->rs->rules[ri], rule_db, group, &st, now_us);
        if (what != SL_ALERT_NONE) {
            cJSON *kept = sl_alertdoc_lines(&ev->doc, stored, NULL, 0);
            rc = emit(ev, c, (uint32_t)ri, group, &st, what, kept, now_us);
            if (rc == 0) {
                cJSON *fresh =
                    what == SL_ALERT_RESOLVE ? sl_alertdoc_lines(&ev->doc, NULL, NULL, 0) : NULL;
                rc = state_store(c, rule_db, group, &st, fresh ? fresh : kept);
                cJSON_Delete(fresh);
            }
            cJSON_Delete(kept);
            events++;
        }
        free(stored);
        sl_alert_state_free(&st);
    }
    PQclear(r);
    if (rc) {
        PQclear(PQexec(c, "ROLLBACK"));
        return rc;
    }
    if (events)
        PQclear(PQexec(c, "NOTIFY sluice_outbox"));
    r = PQexec(c, "COMMIT");
    rc = PQresultStatus(r) == PGRES_COMMAND_OK ? events : SL_EDB;
    PQclear(r);
    return rc;
}
