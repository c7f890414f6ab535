/* The web viewer's sign-in sessions in PostgreSQL (drain/session.c, docs/viewer.md).
 *
 * A session is a second secret of one read token (its cookie's value), stored as its
 * SHA-256 in `web_sessions` with the token's id and an expiry. The maintenance thread
 * loads the sessions with the read tokens (sl_db_load_read_tokens), so a session
 * authenticates like its token, with its scope, on every node of the database; removing
 * the token removes its sessions. Called on the API's search workers (drain/searchd.c),
 * never on the event loop. */
#ifndef SLUICE_SESSION_H
#define SLUICE_SESSION_H

#include <stdint.h>

#include "sluice/buf.h"
#include "sluice/err.h"

struct pg_conn;
struct sl_sources;

/* Store the session `secret` for the read token whose SHA-256 is tok_hex, expiring at
 * expires_s (Unix seconds), delete expired sessions, NOTIFY sluice_sources, and wait (at
 * most 2 s) until this node's source table authenticates it. *status: 204, 401 (the
 * token is gone), 503; body a JSON error or empty. Returns 0, or SL_EDB when the
 * connection failed. */
SL_MUSTCHECK int sl_session_add(struct pg_conn *pg, struct sl_sources *src, const char *secret,
                                const char *tok_hex, int64_t expires_s, int *status,
                                struct sl_buf *body);

/* Delete the session `secret` (sign-out), NOTIFY sluice_sources, and wait (at most 2 s)
 * until this node no longer authenticates it. *status 204 (also when it was gone). */
SL_MUSTCHECK int sl_session_rm(struct pg_conn *pg, struct sl_sources *src, const char *secret,
                               int *status, struct sl_buf *body);

#endif
