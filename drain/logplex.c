/* Heroku Logplex drain conventions (include/sluice/logplex.h): the de-duplication key of
 * a Logplex-Frame-Id, or of an X-Request-Id (log-shuttle) in a key space of its own. The
 * headers themselves are read by drain/ingest_http.c; the key is
 * stored with the spool entry and checked by the writer (ingest_frames).
 *
 * Pure: no I/O, no allocation, no global state; any thread (the event loop uses it).
 * Spec: Heroku's HTTPS drain format (Logplex-Msg-Count, Logplex-Frame-Id, Logplex-Drain-Token);
 * log-shuttle's outlet (X-Request-Id per batch, kept across retries). */
#include <stdbool.h>
#include <string.h>

#include "sluice/digest.h"
#include "sluice/logplex.h"

struct sl_str sl_logplex_frame_key(struct sl_str id, char out[SL_LOGPLEX_KEY_MAX])
{
    bool plain = id.len <= 128;

    for (size_t i = 0; i < id.len && plain; i++)
        plain = id.p[i] > 0x20 && id.p[i] < 0x7f;
    if (plain)
        return id;
    memcpy(out, "sha256:", 7);
    sl_digest_sha256_hex(id.p, id.len, out + 7); /* 64 digits and a NUL: 72 <= the cap */
    return sl_str_make(out, 71);
}

struct sl_str sl_logplex_request_key(struct sl_str id, char out[SL_LOGPLEX_KEY_MAX])
{
    static const char prefix[] = "x-request-id ";
    const size_t plen = sizeof(prefix) - 1;
    char tmp[SL_LOGPLEX_KEY_MAX];
    struct sl_str key = sl_logplex_frame_key(id, tmp);

    /* a frame key is at most 128 bytes (plain) or 71 (hashed): it always fits */
    memcpy(out, prefix, plen);
    memcpy(out + plen, key.p, key.len);
    return sl_str_make(out, plen + key.len);
}
