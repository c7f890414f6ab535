/* Heroku Logplex drain conventions (include/sluice/logplex.h): the de-duplication key of
 * a Logplex-Frame-Id. The headers themselves are read by drain/ingest_http.c; the key is
 * stored with the spool entry and checked by the writer (ingest_frames).
 *
 * Pure: no I/O, no allocation, no global state; any thread (the event loop uses it).
 * Spec: Heroku's HTTPS drain format (Logplex-Msg-Count, Logplex-Frame-Id, Logplex-Drain-Token). */
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
