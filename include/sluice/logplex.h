/* Heroku Logplex drain conventions (drain/logplex.c) that the HTTP drain applies to a
 * request: the de-duplication key of its Logplex-Frame-Id header, or of log-shuttle's
 * X-Request-Id when there is none.
 * Pure: no I/O, no allocation, no global state; any thread. */
#ifndef SLUICE_LOGPLEX_H
#define SLUICE_LOGPLEX_H

#include "sluice/str.h"

/* Room for a key that is not the id itself: "sha256:" and 64 hex digits, or an
 * X-Request-Id key ("x-request-id " and a frame key of at most 128 bytes). */
#define SL_LOGPLEX_KEY_MAX 160

/* The de-duplication key of a Logplex-Frame-Id: the id itself when it is short (at most
 * 128 bytes) printable ASCII without spaces (logplex sends 32 hex digits); else
 * "sha256:" and the hex SHA-256 of its exact bytes, written to out, so two different ids
 * can never be taken for the same frame. The result points into id or into out. */
struct sl_str sl_logplex_frame_key(struct sl_str id, char out[SL_LOGPLEX_KEY_MAX]);

/* The de-duplication key of a request with no Logplex-Frame-Id but an X-Request-Id
 * (log-shuttle sends the same one on every retry of a batch): "x-request-id " and the
 * frame key of its value, written to out. The space keeps the two key spaces apart: no
 * frame key has one (a plain id has no space, a hashed one is "sha256:" and hex), so a
 * Logplex-Frame-Id and an X-Request-Id with the same text are different frames. */
struct sl_str sl_logplex_request_key(struct sl_str id, char out[SL_LOGPLEX_KEY_MAX]);

#endif
