/* The web viewer's sessions in PostgreSQL (include/sluice/session.h, docs/viewer.md):
 * the insert at sign-in, the delete at sign-out, each followed by NOTIFY sluice_sources
 * so every node reloads its read tokens (drain/maint.c), and a bounded wait until this
 * node's table has the change, so the answer's next request is already served right.
 *
 * Runs on a search worker (drain/searchd.c) with its connection; libpq only. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "sluice/db.h"
#include "sluice/digest.h"
#include "sluice/session.h"
#include "sluice/sources.h"

#define WAIT_STEPS 200 /* x 10 ms: how long the answer waits for the reload */

static void set_error(struct sl_buf *body, int *status, int code, const char *msg)
{
    *status = code;
    sl_buf_reset(body);
    if (sl_buf_addf(body, "{\"error\":\"%s\"}\n", msg))
        sl_buf_reset(body);
}

/* Wait until this node authenticates secret (want true) or not (false). */
static void wait_loaded(struct sl_sources *src, const char *secret, bool want)
{
    struct timespec ts = {0, 10 * 1000000L};

    for (int i = 0; i < WAIT_STEPS; i++) {
        struct sl_read_scope sc;
        bool ok = sl_sources_read_auth(src, secret, strlen(secret), &sc) == 0;
        sl_read_scope_free(&sc);
        if (ok == want)
            return;
        nanosleep(&ts, NULL);
    }
}

int sl_session_add(struct pg_conn *pg, struct sl_sources *src, const char *secret,
                   const char *tok_hex, int64_t expires_s, int *status, struct sl_buf *body)
{
    char hash[65], exp[24];
    const char *v[3] = {hash, tok_hex, exp};
    PGresult *r = NULL;
    int n;

    sl_digest_sha256_hex(secret, strlen(secret), hash);
    snprintf(exp, sizeof(exp), "%" PRId64, expires_s);
    if (sl_db_exec(pg, "session add failed",
                   "WITH gone AS (DELETE FROM web_sessions WHERE expires_at < now()) "
                   "INSERT INTO web_sessions (session_hash, token_id, expires_at) "
                   "SELECT decode($1, 'hex'), id, to_timestamp($3::bigint) FROM read_tokens "
                   "WHERE token_hash = decode($2, 'hex') RETURNING token_id",
                   3, v, &r)) {
        set_error(body, status, 503, "database unreachable: retry later");
        return PQstatus(pg) != CONNECTION_OK ? SL_EDB : 0;
    }
    n = PQntuples(r);
    PQclear(r);
    if (n != 1) {
        set_error(body, status, 401, "the read token is gone");
        return 0;
    }
    if (sl_db_exec(pg, "session add failed", "NOTIFY sluice_sources", 0, NULL, NULL)) {
        set_error(body, status, 503, "database unreachable: retry later");
        return PQstatus(pg) != CONNECTION_OK ? SL_EDB : 0;
    }
    wait_loaded(src, secret, true);
    *status = 204;
    sl_buf_reset(body);
    return 0;
}

int sl_session_rm(struct pg_conn *pg, struct sl_sources *src, const char *secret, int *status,
                  struct sl_buf *body)
{
    char hash[65];
    const char *v[1] = {hash};

    sl_digest_sha256_hex(secret, strlen(secret), hash);
    if (sl_db_exec(pg, "session remove failed",
                   "DELETE FROM web_sessions WHERE session_hash = decode($1, 'hex')", 1, v, NULL) ||
        sl_db_exec(pg, "session remove failed", "NOTIFY sluice_sources", 0, NULL, NULL)) {
        set_error(body, status, 503, "database unreachable: retry later");
        return PQstatus(pg) != CONNECTION_OK ? SL_EDB : 0;
    }
    wait_loaded(src, secret, false);
    *status = 204;
    sl_buf_reset(body);
    return 0;
}
