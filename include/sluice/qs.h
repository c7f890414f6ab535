/* URL query strings ("app=billing&env=prod"): split into pairs and percent-decode, with
 * ONE decoding rule for the drain's tags and the read API's parameters:
 *
 *   - pairs are separated by '&'; empty pairs ("&&") are skipped; the key ends at the
 *     first '='; a pair without '=' has an empty value;
 *   - '+' decodes to a space (application/x-www-form-urlencoded);
 *   - "%XX" with two hex digits (either case) decodes to the byte 0xXX, %00 included
 *     (sl_qs_decode_cstr refuses it, for callers that need C strings);
 *   - a '%' not followed by two hex digits is SL_EPARSE: it is never kept as it is;
 *   - a result longer than the caller's buffer is SL_ETOOBIG: it is never cut.
 *
 * What a caller does with an error is its own choice (the API answers 400; the drain
 * keeps such a tag as it came, see row.h). Pure: slices in, bytes out. Any thread. */
#ifndef SLUICE_QS_H
#define SLUICE_QS_H

#include <stddef.h>

#include "sluice/err.h"
#include "sluice/str.h"

/* One pair, still encoded: slices into the query. */
struct sl_qs_pair {
    struct sl_str key, val;
};

/* The next non-empty pair of query at or after *pos (start with *pos = 0). Returns 1 and
 * fills *pair, or 0 when there are no more. */
int sl_qs_next(struct sl_str query, size_t *pos, struct sl_qs_pair *pair);

/* Decode in into out[0..cap). Returns the decoded length (<= in.len), SL_EPARSE for a
 * bad escape, SL_ETOOBIG when it does not fit. */
SL_MUSTCHECK long sl_qs_decode(struct sl_str in, char *out, size_t cap);
/* The same, NUL-terminated (cap counts the NUL); a decoded NUL is SL_EPARSE. */
SL_MUSTCHECK long sl_qs_decode_cstr(struct sl_str in, char *out, size_t cap);

#endif
