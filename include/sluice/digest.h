/* SHA-256 through OpenSSL: the digest of ingest and read tokens (what `sources` and
 * `read_tokens` store, what the loop compares in constant time) and of long
 * Logplex-Frame-Ids. Pure; any thread. */
#ifndef SLUICE_DIGEST_H
#define SLUICE_DIGEST_H

#include <stddef.h>

#define SL_DIGEST_LEN 32

/* SHA-256 of p[0..len) into out. */
void sl_digest_sha256(const void *p, size_t len, unsigned char out[SL_DIGEST_LEN]);
/* Its lowercase hex: 64 characters and a NUL. */
void sl_digest_sha256_hex(const void *p, size_t len, char out[2 * SL_DIGEST_LEN + 1]);

#endif
