/* The crash thread (include/sluice/crashd.h is the contract; docs/crashes.md).
 *
 * One round, every POLL_MS: the (source, procid) groups with an anchor received more
 * than the settle delay ago, then each group in a transaction of its own:
 *   1. pg_try_advisory_xact_lock on the group: another node holding it does this group;
 *   2. the group's cursor (crash_cursors: the last line already judged, in own-time
 *      order) and its unconsumed anchors, read again under the lock;
 *   3. the procid's lines from `logs` through the (source_id, received_at) index, from
 *      LOOKBACK before the oldest anchor, after the cursor, in their own time order
 *      (emitted_at, else received_at; then id), fed to an assembler until the first line
 *      received less than the settle delay ago (a line of the same trace may still sit
 *      in another node's spool: the order past it is not known yet);
 *   4. when every line read was settled, the assembler is flushed at now - settle: a
 *      trace whose last line is older than the gap is complete;
 *   5. each completed crash: its context (release, tags, breadcrumbs, search link), its
 *      Sentry event, INSERT ... ON CONFLICT DO NOTHING on (source, procid, first line),
 *      its alert_outbox row (crash_id set, NOTIFY sluice_outbox);
 *   6. the cursor moves to the last line before any still-open trace, anchors up to it
 *      are consumed; COMMIT.
 * A crash of the thread or of the node between 1 and 6 rolls everything back: the next
 * round (here or on another node) does it again from the same cursor, and the UNIQUE key
 * would stop a second copy anyway. */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "sluice/buf.h"
#include "sluice/clock.h"
#include "sluice/crash.h"
#include "sluice/crashctx.h"
#include "sluice/crashd.h"
#include "sluice/db.h"
#include "sluice/entry.h"
#include "sluice/eval.h"
#include "sluice/log.h"
#include "sluice/metrics.h"
#include "sluice/row.h"

#define POLL_MS 100
#define GROUPS_PER_ROUND "32"
/* Lines are read from the settle delay plus the gap before the group's oldest anchor (a
 * trace's first line is its anchor; the lines of the same trace another node received
 * earlier are within that) up to WINDOW_US after it. */
/* Lines of one group per transaction (the rest next round), each cut to LINE_MAX_CHARS:
 * what one round holds in memory stays under READ_MAX x LINE_MAX_CHARS x 4 bytes. */
#define READ_MAX 5000
#define READ_MAX_S "5000"
#define LINE_MAX_CHARS "4096"
#define CRUMBS_MAX "30"
#define CRUMB_WINDOW "60 seconds" /* platform lines before a crash that become breadcrumbs */
#define SKIP_MAX 64               /* groups that failed, left alone for SKIP_MS */
#define SKIP_MS 30000
#define ADVISORY_CLASS "7355011"  /* pg_advisory_xact_lock(class, hash of the group) */
#define WINDOW_US ((int64_t)60000000)

struct sl_crashd {
    struct sl_crashd_opts o;
    char *url, *public_url, *default_dsn;
    pthread_t thread;
    _Atomic int stop;
    PGconn *pg;
    struct sl_crash_limits limits;
    struct sl_buf ev, crumbs, link, text;
    struct sl_eval *rules; /* crash rules ("on": "crashes"), NULL without sources */
    unsigned rules_version;
    bool rules_loaded;
    int64_t next_gauge_ms, next_cleanup_ms;
    /* A group whose transaction failed while the connection is fine (a row PostgreSQL
     * refuses, say) is left alone for SKIP_MS, so it cannot hold up the others. */
    struct {
        char key[160]; /* "source_id/procid" */
        int64_t until_ms;
    } skip[SKIP_MAX];
    struct sl_buf skipped; /* the keys as a text[] literal */
};

/* A group being judged. */
struct group {
    int64_t source_id;
    const char *procid;
    char source_name[128];
    char dsn[1024];
};

static int64_t i64(const PGresult *r, int row, int col)
{
    return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static const char *lang_name(enum sl_crash_lang l)
{
    static const char *const names[] = {"unknown", "python", "go",   "ruby",
                                        "node",    "java",   "platform"};
    return (size_t)l < sizeof(names) / sizeof(names[0]) ? names[l] : "unknown";
}

/* The release named by the last "Release vN created" line of the source at or before us. */
static void release_of(struct sl_crashd *d, const struct group *g, int64_t us, char *out,
                       size_t cap)
{
    char src[24], ts[24];
    const char *vals[2] = {src, ts};
    PGresult *r;

    out[0] = '\0';
    snprintf(src, sizeof(src), "%" PRId64, g->source_id);
    snprintf(ts, sizeof(ts), "%" PRId64, us);
    if (sl_db_exec(d->pg, "crash release read failed",
                   "SELECT l.message FROM crash_anchors a JOIN logs l ON l.source_id = a.source_id "
                   "AND l.received_at = a.received_at AND l.id = a.line_id "
                   "WHERE a.source_id = $1::bigint AND a.kind = 3 "
                   "AND a.line_at <= 'epoch'::timestamptz + $2::bigint * interval '1 us' "
                   "ORDER BY a.line_at DESC LIMIT 1",
                   2, vals, &r))
        return;
    if (PQntuples(r) == 1) {
        const char *m = PQgetvalue(r, 0, 0);
        (void)sl_crashctx_release(sl_str_make(m, strlen(m)), out, cap);
    }
    PQclear(r);
}

/* The Heroku platform lines of the dyno from CRUMB_WINDOW before the crash to the settle
 * horizon after it, as a JSON array in d->crumbs (NULL when there are none). */
static const char *crumbs_of(struct sl_crashd *d, const struct group *g, const struct sl_crash *c)
{
    char src[24], a[24], b[24];
    const char *vals[4] = {src, g->procid, a, b};
    PGresult *r;
    int n, rc;

    snprintf(src, sizeof(src), "%" PRId64, g->source_id);
    snprintf(a, sizeof(a), "%" PRId64, c->first_ts_us);
    snprintf(b, sizeof(b), "%" PRId64, c->last_ts_us + 10000000);
    if (sl_db_exec(d->pg, "crash breadcrumbs read failed",
                   "SELECT (extract(epoch FROM a.line_at) * 1000000)::bigint, l.message "
                   "FROM crash_anchors a JOIN logs l ON l.source_id = a.source_id "
                   "AND l.received_at = a.received_at AND l.id = a.line_id "
                   "WHERE a.source_id = $1::bigint AND a.procid = $2 AND a.kind = 2 "
                   "AND a.line_at >= 'epoch'::timestamptz + $3::bigint * interval '1 us' "
                   "  - interval '" CRUMB_WINDOW "' "
                   "AND a.line_at <= 'epoch'::timestamptz + $4::bigint * interval '1 us' "
                   "ORDER BY a.line_at, a.line_id LIMIT " CRUMBS_MAX,
                   4, vals, &r))
        return NULL;
    n = PQntuples(r);
    sl_buf_reset(&d->crumbs);
    rc = sl_crashctx_crumbs_begin(&d->crumbs);
    for (int i = 0; i < n && rc == 0; i++) {
        const char *m = PQgetvalue(r, i, 1);
        rc = sl_crashctx_crumbs_add(&d->crumbs, i64(r, i, 0), sl_str_make(m, strlen(m)));
    }
    if (rc == 0)
        rc = sl_crashctx_crumbs_end(&d->crumbs);
    PQclear(r);
    return rc == 0 && n > 0 ? d->crumbs.p : NULL;
}

/* A new crash through the crash rules, in the open transaction: the text they see is
 * "Type: value" and then the trace's lines (cut at the text buffer's cap), so an alert
 * quotes the joined trace. */
static int crash_rules(struct sl_crashd *d, const struct group *g, const struct sl_crash *c,
                       const char *type, const char *value, const PGresult *lines, int nfed)
{
    struct sl_entry e;
    struct sl_row_info info;
    size_t k = 0;
    int rc;

    if (d->rules == NULL || !d->rules_loaded || sl_eval_nrules(d->rules) == 0)
        return 0;
    sl_buf_reset(&d->text);
    rc = sl_buf_addf(&d->text, "%s: %s", type, value);
    for (int i = 0; i < nfed && k < c->nlines && rc == 0; i++) {
        if (strtoll(PQgetvalue(lines, i, 0), NULL, 10) != c->line_ids[k])
            continue;
        k++;
        if (d->text.len + (size_t)PQgetlength(lines, i, 2) + 2 > d->text.max)
            break;
        rc = sl_buf_addc(&d->text, '\n');
        if (rc == 0)
            rc = sl_buf_add(&d->text, PQgetvalue(lines, i, 2), (size_t)PQgetlength(lines, i, 2));
    }
    memset(&e, 0, sizeof(e));
    memset(&info, 0, sizeof(info));
    e.kind = SL_ENTRY_HTTP;
    e.source_id = g->source_id;
    e.received_us = sl_clock_real_us();
    info.sl.form = SL_SYSLOG_HEROKU;
    info.sl.severity = 3;
    info.sl.facility = 1;
    info.sl.has_ts = true;
    info.sl.ts_us = c->last_ts_us;
    info.sl.app_name = SL_STR_LIT("crash");
    info.sl.procid = sl_str_make(g->procid, strlen(g->procid));
    info.sl.msg = sl_str_make(d->text.p, d->text.len);
    info.text = info.sl.msg;
    sl_eval_begin(d->rules);
    sl_eval_crash(d->rules, c->last_id, &e, &info);
    return sl_eval_commit(d->rules, d->pg, e.received_us) < 0 ? SL_EDB : 0;
}

/* Store one completed crash (and its outbox row) in the open transaction. Returns 0, or
 * SL_EDB (the caller rolls back). */
static int store_crash(struct sl_crashd *d, const struct group *g, const struct sl_crash *c,
                       int64_t last_received_us, const PGresult *lines, int nfed)
{
    char event_id[33], release[64], src[24], fid[24], lid[24], nl[16], fts[24], lts[24],
        lrecv[24];
    const char *dsn = g->dsn[0] ? g->dsn : d->default_dsn;
    const char *type, *value, *delivery = "pending", *detail = NULL, *crumbs;
    bool built = true;
    struct sl_crash_ctx cx;
    struct sl_crash_dsn parsed;
    char why[200], tags_env[2][4096];
    PGresult *r;
    int rc;

    sl_crashctx_event_id(g->source_id, sl_str_make(g->procid, strlen(g->procid)), c->first_id,
                         event_id);
    release_of(d, g, c->last_ts_us, release, sizeof(release));
    snprintf(src, sizeof(src), "%" PRId64, g->source_id);
    snprintf(lid, sizeof(lid), "%" PRId64, c->last_id);
    snprintf(lrecv, sizeof(lrecv), "%" PRId64, last_received_us);
    tags_env[0][0] = tags_env[1][0] = '\0';
    {
        const char *v[3] = {src, lrecv, lid};
        if (sl_db_exec(d->pg, "crash tags read failed",
                       "SELECT coalesce(tags::text, ''), coalesce(tags->>'environment', "
                       "tags->>'env', '') FROM (SELECT * FROM logs WHERE source_id = $1::bigint "
                       "UNION ALL SELECT * FROM sl_packed_rows($1::bigint, 'epoch'::timestamptz + "
                       "$2::bigint * interval '1 us', 'epoch'::timestamptz + ($2::bigint + 1) * "
                       "interval '1 us')) l WHERE received_at = "
                       "'epoch'::timestamptz + $2::bigint * interval '1 us' AND id = $3::bigint",
                       3, v, &r) == 0) {
            if (PQntuples(r) == 1) {
                snprintf(tags_env[0], sizeof(tags_env[0]), "%s", PQgetvalue(r, 0, 0));
                snprintf(tags_env[1], sizeof(tags_env[1]), "%s", PQgetvalue(r, 0, 1));
            }
            PQclear(r);
        }
    }
    crumbs = crumbs_of(d, g, c);
    sl_buf_reset(&d->link);
    if (sl_crashctx_search_url(d->public_url, g->source_name,
                               sl_str_make(g->procid, strlen(g->procid)), c->first_ts_us,
                               c->last_ts_us, &d->link))
        sl_buf_reset(&d->link);
    memset(&cx, 0, sizeof(cx));
    cx.event_id = event_id;
    cx.source_name = g->source_name;
    cx.server_name = g->procid;
    cx.release = release[0] ? release : NULL;
    cx.environment = tags_env[1][0] ? tags_env[1] : NULL;
    cx.tags_json = tags_env[0][0] == '{' ? tags_env[0] : NULL;
    cx.search_url = d->link.len ? d->link.p : NULL;
    cx.breadcrumbs_json = crumbs;
    cx.timestamp_us = c->last_ts_us;
    sl_buf_reset(&d->ev);
    if ((rc = sl_crash_event_json(c, &cx, &d->ev)) || (rc = sl_buf_addc(&d->ev, '\0'))) {
        /* stored all the same (listed by `sluice crashes`, matched by crash rules), not sent */
        sl_error("crash event not built", "source=%s procid=%s first_id=%" PRId64 " err=%s",
                 g->source_name, g->procid, c->first_id, sl_strerror(rc));
        sl_buf_reset(&d->ev);
        if (sl_buf_add(&d->ev, "{}", 3))
            return SL_ENOMEM;
        built = false;
    }
    if (c->nexcs > 0) {
        type = c->excs[c->nexcs - 1].type ? c->excs[c->nexcs - 1].type : "";
        value = c->excs[c->nexcs - 1].value ? c->excs[c->nexcs - 1].value : "";
    } else {
        type = c->platform_code ? c->platform_code : "platform";
        value = c->message ? c->message : "";
    }
    if (!built) {
        delivery = "dead";
        detail = "the Sentry event could not be built (see the log)";
    } else if (dsn == NULL || dsn[0] == '\0') {
        delivery = "dropped";
        detail = "no Sentry DSN for this source (sluice source set NAME --sentry-dsn DSN)";
    } else if (sl_crash_dsn_parse(dsn, &parsed, why, sizeof(why)) != 0) {
        delivery = "dropped";
        detail = "bad Sentry DSN";
    }
    snprintf(fid, sizeof(fid), "%" PRId64, c->first_id);
    snprintf(nl, sizeof(nl), "%zu", c->nlines);
    snprintf(fts, sizeof(fts), "%" PRId64, c->first_ts_us);
    snprintf(lts, sizeof(lts), "%" PRId64, c->last_ts_us);
    if (sl_db_exec(d->pg, "crash savepoint failed", "SAVEPOINT crash", 0, NULL, NULL))
        return SL_EDB;
    for (int attempt = 0;; attempt++) {
        const char *v[16] = {src,        g->procid,   lang_name(c->lang),
                             type,       value,       c->fingerprint,
                             fid,        lid,         nl,
                             c->truncated ? "t" : "f", fts, lts,
                             event_id,   d->ev.p,     delivery,
                             detail};
        if (sl_db_exec(d->pg, "crash insert failed",
                       "INSERT INTO crashes (source_id, procid, lang, type, value, fingerprint, "
                       "first_line_id, last_line_id, nlines, truncated, first_at, last_at, "
                       "event_id, event, delivery, delivery_detail) VALUES ($1::bigint, $2, $3, "
                       "$4, $5, $6, $7::bigint, $8::bigint, $9::int, $10::boolean, "
                       "'epoch'::timestamptz + $11::bigint * interval '1 us', "
                       "'epoch'::timestamptz + $12::bigint * interval '1 us', $13, $14::jsonb, "
                       "$15, $16) ON CONFLICT DO NOTHING RETURNING id",
                       16, v, &r) == 0)
            break;
        /* PostgreSQL refused the row (the event, say): stored without it, dead, once */
        if (attempt > 0 || PQstatus(d->pg) != CONNECTION_OK ||
            sl_db_exec(d->pg, "crash rollback failed", "ROLLBACK TO SAVEPOINT crash", 0, NULL,
                       NULL))
            return SL_EDB;
        sl_buf_reset(&d->ev);
        if (sl_buf_add(&d->ev, "{}", 3))
            return SL_ENOMEM;
        built = false;
        delivery = "dead";
        detail = "PostgreSQL refused the crash's event (see the log)";
    }
    if (PQntuples(r) == 0) { /* stored before (a retry of this group): nothing more */
        PQclear(r);
        return 0;
    }
    {
        const char *v[3] = {PQgetvalue(r, 0, 0), event_id, dsn ? dsn : ""};
        SL_INC(crashes_assembled, 1);
        sl_info("crash assembled", "source=%s procid=%s crash_id=%s type=\"%s\" lines=%zu%s",
                g->source_name, g->procid, v[0], type, c->nlines,
                c->truncated ? " truncated=1" : "");
        if (strcmp(delivery, "pending") != 0) {
            SL_INC(crashes_dropped[built ? SL_CRASH_DROP_NO_DSN : SL_CRASH_DROP_DEAD], 1);
        } else if (sl_db_exec(d->pg, "crash outbox insert failed",
                              "INSERT INTO alert_outbox (alert_id, event, destination, "
                              "delivery_id, doc, crash_id) VALUES ('crash-' || $1, 'crash', "
                              "'sentry', $2, jsonb_build_object('dsn', $3::text), $1::bigint)",
                              3, v, NULL)) {
            PQclear(r);
            return SL_EDB;
        }
    }
    PQclear(r);
    return crash_rules(d, g, c, type, value, lines, nfed);
}

/* Judge one group in one transaction. Returns 0 or SL_EDB. */
static int do_group(struct sl_crashd *d, int64_t source_id, const char *procid)
{
    struct group g = {.source_id = source_id, .procid = procid};
    char src[24], cur_at[24] = "0", cur_id[24] = "0", from[24], settle[24], to[24], at[24],
        id[24];
    const char *vals[6];
    PGresult *r = NULL, *lines = NULL;
    struct sl_crash_asm *a = NULL;
    int64_t done_at = 0, done_id = 0;
    bool have_cursor = false, all_settled = true, moved = false;
    size_t ncompleted = 0;
    int n, nfed = 0, rc = SL_EDB, nstored = 0;

    snprintf(src, sizeof(src), "%" PRId64, source_id);
    vals[0] = src;
    vals[1] = procid;
    if (sl_db_exec(d->pg, "crash group begin failed", "BEGIN", 0, NULL, NULL))
        return SL_EDB;
    if (sl_db_exec(d->pg, "crash group lock failed",
                   "SELECT pg_try_advisory_xact_lock(" ADVISORY_CLASS ", "
                   "hashtext($1::text || '/' || $2::text))",
                   2, vals, &r))
        goto out;
    if (PQgetvalue(r, 0, 0)[0] != 't') { /* another node judges this group now */
        rc = 0;
        goto out;
    }
    PQclear(r);
    r = NULL;
    if (sl_db_exec(d->pg, "crash group read failed",
                   "SELECT (SELECT (extract(epoch FROM min(received_at)) * 1000000)::bigint "
                   "  FROM crash_anchors WHERE source_id = $1::bigint AND procid = $2 AND NOT "
                   "  consumed), "
                   "(SELECT (extract(epoch FROM line_at) * 1000000)::bigint FROM crash_cursors "
                   "  WHERE source_id = $1::bigint AND procid = $2), "
                   "(SELECT line_id FROM crash_cursors WHERE source_id = $1::bigint AND procid = $2), "
                   "(SELECT name FROM sources WHERE id = $1::bigint), "
                   "(SELECT coalesce(sentry_dsn, '') FROM sources WHERE id = $1::bigint)",
                   2, vals, &r))
        goto out;
    if (PQgetisnull(r, 0, 0) || PQgetisnull(r, 0, 3)) { /* judged meanwhile, or no source */
        if (PQgetisnull(r, 0, 3))
            if (sl_db_exec(d->pg, "crash anchors of a removed source",
                           "DELETE FROM crash_anchors WHERE source_id = $1::bigint", 1, vals,
                           NULL))
                goto out;
        rc = 0;
        goto commit;
    }
    snprintf(from, sizeof(from), "%" PRId64,
             i64(r, 0, 0) - (d->o.settle_ms * 1000 + d->limits.gap_us));
    if (!PQgetisnull(r, 0, 1)) {
        have_cursor = true;
        snprintf(cur_at, sizeof(cur_at), "%s", PQgetvalue(r, 0, 1));
        snprintf(cur_id, sizeof(cur_id), "%s", PQgetvalue(r, 0, 2));
        done_at = strtoll(cur_at, NULL, 10);
        done_id = strtoll(cur_id, NULL, 10);
    }
    snprintf(g.source_name, sizeof(g.source_name), "%s", PQgetvalue(r, 0, 3));
    snprintf(g.dsn, sizeof(g.dsn), "%s", PQgetvalue(r, 0, 4));
    PQclear(r);
    r = NULL;

    snprintf(settle, sizeof(settle), "%" PRId64, d->o.settle_ms * 1000);
    snprintf(to, sizeof(to), "%" PRId64, (int64_t)strtoll(from, NULL, 10) + WINDOW_US);
    {
        const char *v[7] = {src, procid, from, cur_at, cur_id, settle, to};
        if (sl_db_exec(d->pg, "crash lines read failed",
                       "SELECT id, (extract(epoch FROM coalesce(emitted_at, received_at)) * "
                       "1000000)::bigint, left(message, " LINE_MAX_CHARS "), "
                       "received_at <= now() - $6::bigint * "
                       "interval '1 us', (extract(epoch FROM received_at) * 1000000)::bigint "
                       "FROM logs WHERE source_id = $1::bigint AND procid = $2 "
                       "AND received_at >= 'epoch'::timestamptz + $3::bigint * interval '1 us' "
                       "AND received_at < 'epoch'::timestamptz + $7::bigint * interval '1 us' "
                       "AND (coalesce(emitted_at, received_at), id) > "
                       "('epoch'::timestamptz + $4::bigint * interval '1 us', $5::bigint) "
                       "ORDER BY coalesce(emitted_at, received_at), id LIMIT " READ_MAX_S,
                       7, v, &lines))
            goto out;
    }
    if ((a = sl_crash_asm_new(&d->limits)) == NULL) {
        rc = SL_ENOMEM;
        goto out;
    }
    n = PQntuples(lines);
    for (int i = 0; i < n; i++) {
        struct sl_crash_line ln;
        const char *m = PQgetvalue(lines, i, 2);

        if (PQgetvalue(lines, i, 3)[0] != 't') {
            all_settled = false;
            break;
        }
        ln.id = i64(lines, i, 0);
        ln.ts_us = i64(lines, i, 1);
        ln.msg = sl_str_make(m, (size_t)PQgetlength(lines, i, 2));
        if (sl_crash_asm_feed(a, &ln, &ncompleted) < 0)
            goto out;
        nfed = i + 1;
    }
    if (all_settled && n < READ_MAX &&
        sl_crash_asm_flush(a, sl_clock_real_us() - d->o.settle_ms * 1000, &ncompleted) < 0)
        goto out;
    {
        /* a read full of one open trace (longer than any cap): closed here, cut */
        int64_t open_first;
        if (n == READ_MAX && nfed == n && sl_crash_asm_open(a, &open_first) &&
            open_first == i64(lines, 0, 0) && sl_crash_asm_finish(a, &ncompleted) < 0)
            goto out;
    }
    {
        struct sl_crash *c;
        while ((c = sl_crash_asm_take(a)) != NULL) {
            int64_t lrecv = 0;
            /* the received time of its last line: the index key of the tags read */
            for (int i = nfed - 1; i >= 0; i--)
                if (i64(lines, i, 0) == c->last_id) {
                    lrecv = i64(lines, i, 4);
                    break;
                }
            rc = store_crash(d, &g, c, lrecv, lines, nfed);
            sl_crash_free(c);
            if (rc)
                goto out;
            nstored++;
        }
    }
    {
        /* The cursor: the last line judged, stopping before a trace still open (its
         * lines are read again next round). */
        int64_t open_first = -1;
        bool open = sl_crash_asm_open(a, &open_first);
        for (int i = 0; i < nfed; i++) {
            if (open && i64(lines, i, 0) == open_first)
                break;
            done_at = i64(lines, i, 1);
            done_id = i64(lines, i, 0);
            moved = true;
        }
    }
    snprintf(at, sizeof(at), "%" PRId64, done_at);
    snprintf(id, sizeof(id), "%" PRId64, done_id);
    if (moved) {
        const char *v[4] = {src, procid, at, id};
        if (sl_db_exec(d->pg, "crash cursor write failed",
                       "INSERT INTO crash_cursors (source_id, procid, line_at, line_id) VALUES "
                       "($1::bigint, $2, 'epoch'::timestamptz + $3::bigint * interval '1 us', "
                       "$4::bigint) ON CONFLICT (source_id, procid) DO UPDATE SET line_at = "
                       "EXCLUDED.line_at, line_id = EXCLUDED.line_id",
                       4, v, NULL))
            goto out;
    }
    if (moved || have_cursor) {
        /* anchors at or before the cursor are judged (late ones behind it included) */
        const char *v[4] = {src, procid, at, id};
        if (sl_db_exec(d->pg, "crash anchors consume failed",
                       "UPDATE crash_anchors SET consumed = true WHERE source_id = $1::bigint "
                       "AND procid = $2 AND NOT consumed AND (line_at, line_id) <= "
                       "('epoch'::timestamptz + $3::bigint * interval '1 us', $4::bigint)",
                       4, v, NULL))
            goto out;
    }
    if (n == 0) {
        /* no line left for the anchors (retention removed them): nothing to judge */
        const char *v[3] = {src, procid, settle};
        if (sl_db_exec(d->pg, "crash anchors consume failed",
                       "UPDATE crash_anchors SET consumed = true WHERE source_id = $1::bigint "
                       "AND procid = $2 AND NOT consumed AND received_at <= now() - "
                       "$3::bigint * interval '1 us'",
                       3, v, NULL))
            goto out;
    }
    if (nstored > 0 &&
        sl_db_exec(d->pg, "crash notify failed", "NOTIFY sluice_outbox", 0, NULL, NULL))
        goto out;
    rc = 0;
commit:
    if (sl_db_exec(d->pg, "crash group commit failed", "COMMIT", 0, NULL, NULL))
        rc = SL_EDB;
    goto done;
out:
    PQclear(PQexec(d->pg, "ROLLBACK"));
done:
    PQclear(r);
    PQclear(lines);
    sl_crash_asm_free(a);
    return rc;
}

/* Leave a failed group alone for SKIP_MS (the oldest entry gives way when all are used). */
static void skip_group(struct sl_crashd *d, int64_t source_id, const char *procid, int64_t now)
{
    int k, oldest = 0;

    for (k = 0; k < SKIP_MAX && d->skip[k].until_ms > now; k++)
        if (d->skip[k].until_ms < d->skip[oldest].until_ms)
            oldest = k;
    if (k == SKIP_MAX)
        k = oldest;
    snprintf(d->skip[k].key, sizeof(d->skip[k].key), "%" PRId64 "/%s", source_id, procid);
    d->skip[k].until_ms = now + SKIP_MS;
    sl_warn("crash group failed; left alone for 30 s", "source_id=%" PRId64 " procid=%s",
            source_id, procid);
}

/* One round: the due groups, each judged in its own transaction. */
static int round_once(struct sl_crashd *d)
{
    char settle[24];
    const char *vals[2] = {settle, NULL};
    PGresult *r;
    int n, rc = 0;

    int64_t now = sl_clock_mono_ms();

    snprintf(settle, sizeof(settle), "%" PRId64, d->o.settle_ms * 1000);
    sl_buf_reset(&d->skipped);
    for (int k = 0; k < SKIP_MAX && rc == 0; k++)
        if (d->skip[k].until_ms > now)
            rc = sl_db_array_add(&d->skipped, d->skip[k].key);
    if (rc || (rc = sl_db_array_end(&d->skipped)))
        return rc;
    vals[1] = d->skipped.p;
    if (sl_db_exec(d->pg, "crash groups read failed",
                   "SELECT source_id, procid FROM crash_anchors WHERE NOT consumed "
                   "AND NOT (source_id::text || '/' || procid = ANY($2::text[])) "
                   "GROUP BY source_id, procid HAVING min(received_at) <= now() - "
                   "$1::bigint * interval '1 us' ORDER BY min(received_at) "
                   "LIMIT " GROUPS_PER_ROUND,
                   2, vals, &r))
        return SL_EDB;
    n = PQntuples(r);
    for (int i = 0; i < n && !atomic_load(&d->stop); i++) {
        if (do_group(d, i64(r, i, 0), PQgetvalue(r, i, 1)) == 0)
            continue;
        if (PQstatus(d->pg) != CONNECTION_OK) {
            rc = SL_EDB;
            break;
        }
        skip_group(d, i64(r, i, 0), PQgetvalue(r, i, 1), now);
    }
    PQclear(r);
    return rc;
}

/* Every 5 s the pending gauge; every hour, anchors consumed more than a week ago (the
 * newest release line of each source stays: it names the release of later crashes) and
 * crashes older than 90 days with their settled outbox rows. */
static void housekeeping(struct sl_crashd *d)
{
    int64_t now = sl_clock_mono_ms();
    PGresult *r;

    if (now >= d->next_gauge_ms) {
        d->next_gauge_ms = now + 5000;
        if (sl_db_exec(d->pg, "crash anchors count failed",
                       "SELECT count(*) FROM crash_anchors WHERE NOT consumed", 0, NULL, &r) == 0) {
            atomic_store(&sl_metrics.crash_anchors_pending, (uint64_t)i64(r, 0, 0));
            PQclear(r);
        }
    }
    if (now >= d->next_cleanup_ms) {
        d->next_cleanup_ms = now + 3600 * 1000;
        if (sl_db_exec(d->pg, "crash anchors cleanup failed",
                         "DELETE FROM crash_anchors a WHERE consumed AND received_at < now() - "
                         "interval '7 days' AND NOT (kind = 3 AND line_at = (SELECT max(b.line_at) "
                         "FROM crash_anchors b WHERE b.source_id = a.source_id AND b.kind = 3))",
                         0, NULL, NULL) ||
            sl_db_exec(d->pg, "crashes cleanup failed",
                       "WITH old AS (DELETE FROM crashes WHERE created_at < now() - "
                       "interval '90 days' RETURNING id) DELETE FROM alert_outbox o USING old "
                       "WHERE o.crash_id = old.id AND o.status <> 'pending'",
                       0, NULL, NULL))
            return; /* logged; tried again in an hour */
    }
}

static void *d_main(void *arg)
{
    struct sl_crashd *d = arg;

    while (!atomic_load(&d->stop)) {
        if (d->pg == NULL || !sl_db_ok(d->pg)) {
            sl_db_close(d->pg);
            d->pg = NULL;
            d->rules_loaded = false;
            if (sl_db_connect(d->url, &d->pg)) {
                d->pg = NULL;
                for (int i = 0; i < 10 && !atomic_load(&d->stop); i++)
                    usleep(100 * 1000);
                continue;
            }
        }
        if (d->rules) {
            unsigned v = atomic_load(&sl_rules_version);
            if ((!d->rules_loaded || v != d->rules_version) &&
                sl_eval_load(d->rules, d->pg, false) == 0) {
                d->rules_loaded = true;
                d->rules_version = v;
            }
        }
        if (round_once(d) == 0)
            housekeeping(d);
        usleep(POLL_MS * 1000);
    }
    return NULL;
}

int sl_crashd_start(const struct sl_crashd_opts *o, struct sl_crashd **out)
{
    struct sl_crashd *d = calloc(1, sizeof(*d));
    struct sl_crash_dsn parsed;
    char why[200];

    if (d == NULL)
        return SL_ENOMEM;
    d->o = *o;
    d->url = strdup(o->database_url);
    d->public_url = strdup(o->public_url ? o->public_url : "");
    d->default_dsn = strdup(o->default_dsn ? o->default_dsn : "");
    if (d->url == NULL || d->public_url == NULL || d->default_dsn == NULL)
        goto fail;
    if (d->default_dsn[0] && sl_crash_dsn_parse(d->default_dsn, &parsed, why, sizeof(why))) {
        sl_error("SENTRY_DSN is not a valid DSN; crashes of sources without one are not sent",
                 "why=\"%s\"", why);
        d->default_dsn[0] = '\0';
    }
    sl_crash_limits_default(&d->limits);
    if (o->gap_ms > 0)
        d->limits.gap_us = o->gap_ms * 1000;
    if (o->max_lines > 0)
        d->limits.max_lines = (size_t)o->max_lines;
    if (o->max_bytes > 0)
        d->limits.max_bytes = (size_t)o->max_bytes;
    if (d->o.settle_ms < 0)
        d->o.settle_ms = 0;
    sl_buf_init(&d->ev, 1u << 20); /* Sentry takes events up to 1 MiB: crash.c fits them */
    sl_buf_init(&d->crumbs, 1u << 20);
    sl_buf_init(&d->link, 1u << 16);
    sl_buf_init(&d->text, 32u << 10);
    sl_buf_init(&d->skipped, SKIP_MAX * 200);
    if (o->sources && sl_eval_new(o->sources, d->public_url, &d->rules))
        goto fail;
    if (pthread_create(&d->thread, NULL, d_main, d) != 0)
        goto fail;
    *out = d;
    return 0;
fail:
    sl_eval_free(d->rules);
    free(d->url);
    free(d->public_url);
    free(d->default_dsn);
    free(d);
    return SL_ENOMEM;
}

void sl_crashd_stop(struct sl_crashd *d)
{
    if (d == NULL)
        return;
    atomic_store(&d->stop, 1);
    pthread_join(d->thread, NULL);
    sl_db_close(d->pg);
    sl_buf_free(&d->ev);
    sl_buf_free(&d->crumbs);
    sl_buf_free(&d->link);
    sl_buf_free(&d->text);
    sl_buf_free(&d->skipped);
    sl_eval_free(d->rules);
    free(d->url);
    free(d->public_url);
    free(d->default_dsn);
    free(d);
}
