/* SHA-256 (include/sluice/digest.h), the token digest the CLI stores and the ingest and
 * read paths compare against. Its own module so that the loop does not reach into the
 * administration code (db.c) to hash a token. OpenSSL EVP (FIPS 180-4); any thread. */
#include <openssl/evp.h>

#include "sluice/digest.h"
#include "sluice/enc.h"

void sl_digest_sha256(const void *p, size_t len, unsigned char out[SL_DIGEST_LEN])
{
    unsigned int n = SL_DIGEST_LEN;
    EVP_Digest(p, len, out, &n, EVP_sha256(), NULL);
}

void sl_digest_sha256_hex(const void *p, size_t len, char out[2 * SL_DIGEST_LEN + 1])
{
    unsigned char h[SL_DIGEST_LEN];

    sl_digest_sha256(p, len, h);
    sl_enc_hex(h, sizeof(h), out);
}
