/* Notifier thread (include/sluice/notifier.h). */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "sluice/crash.h"
#include "sluice/crashctx.h"
#include "sluice/db.h"
#include "sluice/deliver.h"
#include "sluice/eval.h"
#include "sluice/log.h"
#include "sluice/metrics.h"
#include "sluice/notifier.h"
#include "sluice/payload.h"
#include "sluice/rule.h"
#include "sluice/clock.h"

#define CLAIM 32
/* A claimed row's lease only has to outlive one attempt: the delivery timeout (libcurl's
 * whole-request timeout) plus this margin for the loop's own work (the tick, recording
 * results). A node killed mid-delivery leaves its rows to whoever claims after the lease
 * (docs/alerts.md, "Delivery"). */
#define LEASE_MARGIN_MS 10000

struct sl_notifier {
    struct sl_notifier_opts o;
    char *url, *allow, *public_url;
    pthread_t thread;
    _Atomic int stop;
    _Atomic int64_t stop_at; /* ms: in-flight deliveries get 2 s more, then leases expire */
    PGconn *pg;
    struct sl_eval *ev;
    struct sl_deliver *d;
    unsigned rules_version;
    bool loaded;
    int inflight;
    bool wake; /* a NOTIFY arrived: claim now */
};

static const struct sl_destination *find_dest(struct sl_notifier *n, const char *name)
{
    const struct sl_ruleset *rs = sl_eval_rules(n->ev);
    for (size_t i = 0; rs && i < rs->ndests; i++)
        if (strcmp(rs->dests[i].name, name) == 0)
            return &rs->dests[i];
    return NULL;
}

static void row_update(struct sl_notifier *n, const char *sql, uint64_t id, const char *a1,
                       const char *a2, const char *a3)
{
    char ids[24];
    const char *vals[4] = {ids, a1, a2, a3};
    int nv = a3 ? 4 : a2 ? 3 : a1 ? 2 : 1;

    snprintf(ids, sizeof(ids), "%" PRIu64, id);
    if (sl_db_exec(n->pg, "outbox update failed", sql, nv, vals, NULL))
        return; /* logged; the lease runs out and the row is tried again */
}

static void mark_dead(struct sl_notifier *n, uint64_t id, const char *status, long http,
                      const char *why)
{
    char hs[16];
    snprintf(hs, sizeof(hs), "%ld", http);
    row_update(n,
               "UPDATE alert_outbox SET status = $2, last_status = nullif($3::int, 0), "
               "last_error = $4, lease_until = NULL WHERE id = $1::bigint",
               id, status, hs, why);
    SL_INC(deliveries_dead, 1);
}

/* A failed attempt: schedule the next one (Retry-After, else the Standard Webhooks
 * schedule) and return true, or dead-letter the row after the last and return false. err
 * receives what the row records. */
static bool retry_or_dead(struct sl_notifier *n, const struct sl_deliver_result *res,
                          int attempts, const char *hs, char *err, size_t errcap,
                          int64_t *delay_out)
{
    int64_t delay = res->retry_after >= 0 ? res->retry_after
                                          : sl_retry_delay(attempts, (double)rand() / RAND_MAX);
    char ds[24];

    *delay_out = delay;
    if (delay < 0) {
        snprintf(err, errcap, "gave up after %d attempts: %s", attempts,
                 res->status ? "HTTP error" : res->error);
        mark_dead(n, res->id, "dead", res->status, err);
        return false;
    }
    snprintf(ds, sizeof(ds), "%" PRId64, delay);
    snprintf(err, errcap, "%s", res->status ? "HTTP error" : res->error);
    row_update(n,
               "UPDATE alert_outbox SET next_attempt_at = now() + make_interval(secs => "
               "$2::bigint), last_status = nullif($3::int, 0), last_error = $4, "
               "lease_until = NULL WHERE id = $1::bigint",
               res->id, ds, hs, err);
    SL_INC(deliveries_retried, 1);
    return true;
}

/* ---- Crashes to Sentry (docs/crashes.md): outbox rows with crash_id set ---------------- */

/* The crash row's delivery state follows its outbox row's. */
static void crash_state(struct sl_notifier *n, const char *crash_id, const char *state,
                        const char *detail)
{
    const char *v[3] = {crash_id, state, detail};
    if (sl_db_exec(n->pg, "crash state update failed",
                   "UPDATE crashes SET delivery = $2, delivery_detail = $3 WHERE id = $1::bigint",
                   3, v, NULL))
        return; /* logged; the outbox row is the truth for delivery */
}

/* Remember a Sentry rate limit for a DSN (every node reads it at claim time). */
static void crash_limit(struct sl_notifier *n, const char *dsn, int64_t until_us)
{
    char u[24];
    const char *v[2] = {dsn, u};
    snprintf(u, sizeof(u), "%" PRId64, until_us);
    if (sl_db_exec(n->pg, "sentry rate limit write failed",
                   "INSERT INTO sentry_rate_limits (dsn, until_at) VALUES ($1, 'epoch'::timestamptz "
                   "+ $2::bigint * interval '1 us') ON CONFLICT (dsn) DO UPDATE SET until_at = "
                   "greatest(sentry_rate_limits.until_at, EXCLUDED.until_at)",
                   2, v, NULL))
        return;
}

/* A row dropped because its DSN is rate limited: never sent, never retried. */
static void crash_drop_limited(struct sl_notifier *n, uint64_t id, const char *crash_id,
                               const char *why)
{
    row_update(n,
               "UPDATE alert_outbox SET status = 'dropped', attempts = greatest(attempts - 1, 0), "
               "last_error = $2, lease_until = NULL WHERE id = $1::bigint",
               id, why, NULL, NULL);
    crash_state(n, crash_id, "dropped", why);
    SL_INC(crashes_dropped[SL_CRASH_DROP_RATE_LIMITED], 1);
    sl_info("crash dropped: Sentry rate limit", "outbox_id=%" PRIu64 " crash_id=%s", id, crash_id);
}

/* A claimed crash row: its envelope to the DSN's envelope endpoint, or, when the DSN is
 * rate limited or unusable, the row settled here without a request. */
static void crash_claimed(struct sl_notifier *n, uint64_t id, const char *crash_id,
                          const char *event_id, const char *dsn, const char *event,
                          bool limited)
{
    struct sl_crash_dsn d;
    struct sl_request rq;
    char why[200];
    int rc;

    if (limited) {
        crash_drop_limited(n, id, crash_id, "rate limited by Sentry (X-Sentry-Rate-Limits / 429)");
        return;
    }
    if (event == NULL || sl_crash_dsn_parse(dsn, &d, why, sizeof(why)) != 0) {
        mark_dead(n, id, "dead", 0, event ? "bad Sentry DSN" : "crash row missing");
        crash_state(n, crash_id, "dead", event ? "bad Sentry DSN" : "crash row missing");
        SL_INC(crashes_dropped[SL_CRASH_DROP_DEAD], 1);
        return;
    }
    memset(&rq, 0, sizeof(rq));
    sl_buf_init(&rq.body, 16u << 20);
    snprintf(rq.url, sizeof(rq.url), "%s", d.envelope_url);
    {
        struct sl_buf auth;
        sl_buf_init(&auth, sizeof(rq.headers[0]) - 32);
        rc = sl_crash_auth_header(&d, SL_CRASHCTX_CLIENT_VERSION, &auth);
        if (rc == 0 && (rc = sl_buf_addc(&auth, '\0')) == 0) {
            snprintf(rq.headers[0], sizeof(rq.headers[0]), "X-Sentry-Auth: %s", auth.p);
            snprintf(rq.headers[1], sizeof(rq.headers[1]),
                     "Content-Type: application/x-sentry-envelope");
            snprintf(rq.headers[2], sizeof(rq.headers[2]), "User-Agent: sluice/%s",
                     SL_CRASHCTX_CLIENT_VERSION);
            rq.nheaders = 3;
        }
        sl_buf_free(&auth);
    }
    if (rc == 0)
        rc = sl_crash_envelope(&d, event_id, sl_clock_real_us(),
                               sl_str_make(event, strlen(event)), &rq.body);
    if (rc == 0)
        rc = sl_deliver_add(n->d, id, &rq);
    if (rc == 0)
        n->inflight++;
    else if (rc == SL_EFULL)
        row_update(n, "UPDATE alert_outbox SET lease_until = NULL, attempts = attempts - 1 "
                      "WHERE id = $1::bigint",
                   id, NULL, NULL, NULL);
    else {
        mark_dead(n, id, "dead", 0, "could not build the Sentry envelope");
        crash_state(n, crash_id, "dead", "could not build the Sentry envelope");
        SL_INC(crashes_dropped[SL_CRASH_DROP_DEAD], 1);
    }
    sl_buf_free(&rq.body);
}

/* Sentry's answer (https://develop.sentry.dev/sdk/expected-features/rate-limiting/): 2xx
 * sent (its X-Sentry-Rate-Limits still count for what follows); 429 or a limit on the
 * error category drops the crash and limits the DSN, on every node; other 4xx are final;
 * 5xx and transport errors retry on the alert schedule. */
static void crash_result(struct sl_notifier *n, const struct sl_deliver_result *res,
                         int attempts, const char *crash_id, const char *dsn)
{
    int64_t now = sl_clock_real_us();
    int64_t until = sl_crash_rate_limit_until(
        (int)res->status, res->retry_after_raw[0] ? res->retry_after_raw : NULL,
        res->rate_limits[0] ? res->rate_limits : NULL, now);
    char hs[16], err[300];

    snprintf(hs, sizeof(hs), "%ld", res->status);
    if (until > now)
        crash_limit(n, dsn, until);
    if (res->status >= 200 && res->status < 300) {
        row_update(n,
                   "UPDATE alert_outbox SET status = 'delivered', delivered_at = now(), "
                   "last_status = $2::int, last_error = NULL, lease_until = NULL "
                   "WHERE id = $1::bigint",
                   res->id, hs, NULL, NULL);
        crash_state(n, crash_id, "sent", NULL);
        SL_INC(crashes_sent, 1);
        sl_info("crash sent to Sentry", "outbox_id=%" PRIu64 " crash_id=%s status=%ld", res->id,
                crash_id, res->status);
        return;
    }
    if (res->status == 429) {
        snprintf(err, sizeof(err), "rate limited by Sentry (429) for %" PRId64 " s",
                 until > now ? (until - now) / 1000000 : 0);
        crash_drop_limited(n, res->id, crash_id, err);
        return;
    }
    if (res->refused) {
        mark_dead(n, res->id, "dead", 0, res->error);
        crash_state(n, crash_id, "dead", res->error);
        SL_INC(crashes_dropped[SL_CRASH_DROP_DEAD], 1);
        sl_warn("Sentry address refused", "crash_id=%s err=\"%s\"", crash_id, res->error);
        return;
    }
    if (res->status >= 400 && res->status < 500) {
        snprintf(err, sizeof(err), "Sentry refused the event (HTTP %ld)", res->status);
        mark_dead(n, res->id, "dead", res->status, err);
        crash_state(n, crash_id, "dropped", err);
        SL_INC(crashes_dropped[SL_CRASH_DROP_REFUSED], 1);
        sl_warn("crash refused by Sentry", "crash_id=%s status=%ld", crash_id, res->status);
        return;
    }
    {
        int64_t delay;
        if (retry_or_dead(n, res, attempts, hs, err, sizeof(err), &delay)) {
            crash_state(n, crash_id, "pending", err);
        } else {
            crash_state(n, crash_id, "dead", err);
            SL_INC(crashes_dropped[SL_CRASH_DROP_DEAD], 1);
        }
    }
}

/* Results come back here from sl_deliver_run. */
static void on_result(void *arg, const struct sl_deliver_result *res)
{
    struct sl_notifier *n = arg;
    PGresult *r;
    char ids[24], hs[16];
    const char *vals[1] = {ids};
    int attempts = 1;
    bool is_pd = false;
    char dest[128] = "";

    n->inflight--;
    snprintf(ids, sizeof(ids), "%" PRIu64, res->id);
    snprintf(hs, sizeof(hs), "%ld", res->status);
    r = PQexecParams(n->pg,
                     "SELECT attempts, destination, crash_id, coalesce(doc->>'dsn', '') "
                     "FROM alert_outbox WHERE id = $1::bigint",
                     1, NULL, vals, NULL, NULL, 0);
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && !PQgetisnull(r, 0, 2)) {
        char crash_id[24], dsn[1024];
        attempts = atoi(PQgetvalue(r, 0, 0));
        snprintf(crash_id, sizeof(crash_id), "%s", PQgetvalue(r, 0, 2));
        snprintf(dsn, sizeof(dsn), "%s", PQgetvalue(r, 0, 3));
        PQclear(r);
        crash_result(n, res, attempts, crash_id, dsn);
        return;
    }
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
        const struct sl_destination *d;
        attempts = atoi(PQgetvalue(r, 0, 0));
        snprintf(dest, sizeof(dest), "%s", PQgetvalue(r, 0, 1));
        d = find_dest(n, dest);
        is_pd = d && d->type == SL_DEST_PAGERDUTY;
    }
    PQclear(r);

    if (res->status >= 200 && res->status < 300) {
        row_update(n,
                   "UPDATE alert_outbox SET status = 'delivered', delivered_at = now(), "
                   "last_status = $2::int, last_error = NULL, lease_until = NULL "
                   "WHERE id = $1::bigint",
                   res->id, hs, NULL, NULL);
        SL_INC(deliveries_ok, 1);
        sl_info("alert delivered", "outbox_id=%" PRIu64 " destination=%s status=%ld", res->id,
                dest, res->status);
        return;
    }
    if (res->refused) {
        mark_dead(n, res->id, "dead", 0, res->error);
        sl_warn("alert destination refused", "destination=%s err=\"%s\"", dest, res->error);
        return;
    }
    if (res->status == 410) {
        /* the receiver says it is gone for good: stop sending there */
        const char *v[2] = {dest, "410 Gone"};
        PQclear(PQexecParams(n->pg,
                             "UPDATE destinations SET disabled_at = now(), disabled_reason = $2 "
                             "WHERE name = $1",
                             2, NULL, v, NULL, NULL, 0));
        mark_dead(n, res->id, "disabled", res->status, "destination answered 410: disabled");
        sl_warn("alert destination disabled", "destination=%s status=410", dest);
        return;
    }
    if (is_pd && res->status == 400) {
        mark_dead(n, res->id, "dead", res->status, "PagerDuty refused the event (400)");
        return;
    }
    {
        int64_t delay;
        char err[300];
        if (!retry_or_dead(n, res, attempts, hs, err, sizeof(err), &delay)) {
            sl_warn("alert dead-lettered", "outbox_id=%" PRIu64 " destination=%s", res->id, dest);
            return;
        }
        sl_info("alert delivery failed; will retry", "outbox_id=%" PRIu64
                " destination=%s status=%ld retry_in=%" PRId64 "s",
                res->id, dest, res->status, delay);
    }
}

/* Claim due rows and hand them to libcurl. Deliveries of one alert to one destination go
 * in id order (the firing before its resolve, issue 12): a row is not claimable while an
 * earlier row of the same alert and destination is still pending (waiting to retry or in
 * flight on any node). When that earlier row ended dead or disabled, the later one is not
 * sent either (column 5 says which): a resolve without its firing would close nothing the
 * receiver knows of (docs/alerts.md). */
static void claim(struct sl_notifier *n)
{
    PGresult *r;
    char lim[16], lease[24];
    const char *vals[2] = {lim, lease};

    if (n->inflight >= CLAIM)
        return;
    snprintf(lim, sizeof(lim), "%d", CLAIM - n->inflight);
    snprintf(lease, sizeof(lease), "%ld", n->o.timeout_ms + LEASE_MARGIN_MS);
    if (sl_db_exec(
            n->pg, "outbox claim failed",
            "UPDATE alert_outbox o SET lease_until = now() + make_interval(secs => $2::bigint / "
            "1000.0), attempts = attempts + 1 "
            "WHERE id IN (SELECT id FROM alert_outbox c WHERE status = 'pending' "
            "AND next_attempt_at <= now() AND (lease_until IS NULL OR lease_until < now()) "
            "AND NOT EXISTS (SELECT 1 FROM alert_outbox e WHERE e.status = 'pending' "
            "AND e.alert_id = c.alert_id AND e.destination = c.destination AND e.id < c.id) "
            "ORDER BY id LIMIT $1::int FOR UPDATE SKIP LOCKED) "
            "RETURNING id, delivery_id, destination, doc::text, "
            "(SELECT disabled_at IS NOT NULL FROM destinations d WHERE d.name = o.destination), "
            "(SELECT e.status FROM alert_outbox e WHERE e.alert_id = o.alert_id "
            "AND e.destination = o.destination AND e.id < o.id "
            "AND e.status IN ('dead', 'disabled') ORDER BY e.id LIMIT 1), "
            "o.crash_id, (SELECT c.event::text FROM crashes c WHERE c.id = o.crash_id), "
            "coalesce((SELECT l.until_at > now() FROM sentry_rate_limits l "
            "WHERE l.dsn = o.doc->>'dsn'), false), coalesce(o.doc->>'dsn', '')",
            2, vals, &r))
        return;
    for (int i = 0; i < PQntuples(r); i++) {
        uint64_t id = strtoull(PQgetvalue(r, i, 0), NULL, 10);
        const char *dname = PQgetvalue(r, i, 2);
        const struct sl_destination *d = find_dest(n, dname);
        struct sl_request rq;
        int rc;

        if (!PQgetisnull(r, i, 6)) {
            crash_claimed(n, id, PQgetvalue(r, i, 6), PQgetvalue(r, i, 1), PQgetvalue(r, i, 9),
                          PQgetisnull(r, i, 7) ? NULL : PQgetvalue(r, i, 7),
                          PQgetvalue(r, i, 8)[0] == 't');
            continue;
        }
        if (d == NULL) {
            mark_dead(n, id, "dead", 0, "no such destination in the rules");
            continue;
        }
        if (PQgetvalue(r, i, 4)[0] == 't') {
            mark_dead(n, id, "disabled", 0, "destination disabled (410 earlier)");
            continue;
        }
        if (!PQgetisnull(r, i, 5)) {
            /* never attempted: the claim's attempt is taken back */
            row_update(n, "UPDATE alert_outbox SET attempts = attempts - 1 WHERE id = $1::bigint",
                       id, NULL, NULL, NULL);
            mark_dead(n, id, strcmp(PQgetvalue(r, i, 5), "disabled") == 0 ? "disabled" : "dead", 0,
                      "not sent: the earlier delivery of this alert to this destination "
                      "was never delivered");
            sl_info("alert delivery not sent: its earlier one was never delivered",
                    "outbox_id=%" PRIu64 " destination=%s", id, dname);
            continue;
        }
        memset(&rq, 0, sizeof(rq));
        sl_buf_init(&rq.body, 4 << 20);
        rc = sl_payload_build(d, PQgetvalue(r, i, 3), PQgetvalue(r, i, 1),
                              (int64_t)time(NULL), &rq);
        if (rc == 0)
            rc = sl_deliver_add(n->d, id, &rq);
        if (rc == 0)
            n->inflight++;
        else if (rc == SL_EFULL)
            row_update(n, "UPDATE alert_outbox SET lease_until = NULL, attempts = attempts - 1 "
                          "WHERE id = $1::bigint",
                       id, NULL, NULL, NULL);
        else
            mark_dead(n, id, "dead", 0, "could not build the request for this destination");
        sl_buf_free(&rq.body);
    }
    PQclear(r);
}

static int n_connect(struct sl_notifier *n)
{
    int rc = sl_db_listen(&n->pg, n->url, "LISTEN sluice_outbox; LISTEN sluice_rules");

    if (rc == 0)
        return 0;
    n->loaded = false; /* a new connection reloads the rules */
    /* leases of a previous life of this node are not waited out: they expire */
    return rc < 0 ? rc : 0;
}

static void *n_main(void *arg)
{
    struct sl_notifier *n = arg;
    int64_t next_tick = 0, next_claim = 0;

    while (!atomic_load(&n->stop) ||
           (n->inflight > 0 && sl_clock_mono_ms() < atomic_load(&n->stop_at) + 2000)) {
        int64_t now = sl_clock_mono_ms();
        struct pollfd pf;
        PGnotify *nt;
        unsigned v;

        if (n_connect(n)) {
            usleep(1000 * 1000);
            continue;
        }
        v = atomic_load(&sl_rules_version);
        if (!n->loaded || v != n->rules_version) {
            if (sl_eval_load(n->ev, n->pg, true) == 0) {
                n->loaded = true;
                n->rules_version = v;
            }
        }
        if (!atomic_load(&n->stop)) {
            if (now >= next_tick && sl_eval_nrules(n->ev) > 0) {
                if (sl_eval_tick(n->ev, n->pg, sl_clock_real_us()) < 0)
                    sl_warn("alert tick failed", "%s", "");
                next_tick = now + 1000;
            }
            if (n->wake || now >= next_claim) {
                n->wake = false;
                claim(n);
                next_claim = now + 1000;
            }
        }
        if (n->inflight > 0)
            sl_deliver_run(n->d, 50, on_result, n);
        pf.fd = PQsocket(n->pg);
        pf.events = POLLIN;
        if (poll(&pf, 1, n->inflight > 0 ? 0 : 100) > 0 && !PQconsumeInput(n->pg))
            continue;
        while ((nt = PQnotifies(n->pg)) != NULL) {
            n->wake = true;
            PQfreemem(nt);
        }
    }
    return NULL;
}

int sl_notifier_start(const struct sl_notifier_opts *o, struct sl_notifier **out)
{
    struct sl_notifier *n = calloc(1, sizeof(*n));

    if (n == NULL)
        return SL_ENOMEM;
    n->o = *o;
    if (n->o.timeout_ms <= 0)
        n->o.timeout_ms = 20000;
    n->url = strdup(o->database_url);
    n->allow = strdup(o->allow_private ? o->allow_private : "");
    if (n->url == NULL || n->allow == NULL ||
        sl_eval_new(o->sources, o->public_url, &n->ev) ||
        sl_deliver_new(n->allow, n->o.timeout_ms, &n->d))
        goto fail;
    if (pthread_create(&n->thread, NULL, n_main, n) != 0)
        goto fail;
    *out = n;
    return 0;
fail:
    sl_deliver_free(n->d);
    sl_eval_free(n->ev);
    free(n->url);
    free(n->allow);
    free(n);
    return SL_ENOMEM;
}

void sl_notifier_stop(struct sl_notifier *n)
{
    if (n == NULL)
        return;
    atomic_store(&n->stop_at, sl_clock_mono_ms());
    atomic_store(&n->stop, 1);
    pthread_join(n->thread, NULL);
    sl_deliver_free(n->d);
    sl_eval_free(n->ev);
    sl_db_close(n->pg);
    free(n->url);
    free(n->allow);
    free(n);
}
