/* UTF-8 (RFC 3629): validation and the one repair rule every stored or shown text goes
 * through. PostgreSQL's text columns take neither NUL nor invalid UTF-8, so the repair
 * is: each byte that does not start a well-formed sequence (overlong, surrogate, above
 * U+10FFFF, truncated, stray continuation) becomes U+FFFD, NUL becomes U+2400. Pure; any
 * thread. */
#ifndef SLUICE_UTF8_H
#define SLUICE_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/buf.h"
#include "sluice/err.h"

/* Length (1-4) of the well-formed sequence at p[0..n), 0 when p does not start one
 * (n == 0 too). An ASCII byte, NUL included, is a sequence of 1. Stops reading at the
 * first byte that is not a continuation, so a NUL-ended string may pass n = 4. When cp
 * is not NULL it gets the code point. */
size_t sl_utf8_seq(const unsigned char *p, size_t n, uint32_t *cp);
/* Is p valid UTF-8 with no NUL byte? */
bool sl_utf8_clean(const char *p, size_t len);
/* Append p to out repaired: invalid bytes as U+FFFD, NUL as U+2400 (see above).
 * SL_ETOOBIG past out's cap. */
SL_MUSTCHECK int sl_utf8_sanitize(const char *p, size_t len, struct sl_buf *out);

#endif
