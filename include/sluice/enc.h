/* Byte encodings: hex, base64 (RFC 4648 §4, through OpenSSL's EVP block coder) and JSON
 * string escaping (RFC 8259 §7). Pure: no I/O, no globals; the sl_buf forms append to a
 * buffer the caller owns. Any thread. */
#ifndef SLUICE_ENC_H
#define SLUICE_ENC_H

#include <stdbool.h>
#include <stddef.h>

#include "sluice/buf.h"
#include "sluice/err.h"

/* Lowercase hex of in[0..n) into out: 2n characters and a NUL (out holds 2n + 1). */
void sl_enc_hex(const void *in, size_t n, char *out);
/* The same, appended to b (no NUL). SL_ETOOBIG past b's cap. */
SL_MUSTCHECK int sl_enc_hex_buf(struct sl_buf *b, const void *in, size_t n);
/* Decode exactly len hex digits (either case) into out. Returns the byte count (len / 2),
 * SL_EPARSE for an odd length or a non-hex character, SL_ETOOBIG when it exceeds cap. */
SL_MUSTCHECK int sl_enc_unhex(const char *hex, size_t len, unsigned char *out, size_t cap);

/* Bytes base64 of n bytes takes, without the NUL. */
#define SL_ENC_B64_LEN(n) (((n) + 2) / 3 * 4)
/* Standard base64 of in[0..n) into out with '=' padding and a NUL; out holds
 * SL_ENC_B64_LEN(n) + 1. Returns the length written (without the NUL). */
size_t sl_enc_b64(const void *in, size_t n, char *out);
/* Decode standard base64 (alphabet A-Z a-z 0-9 + /). Padding is optional, but when
 * present it is one or two '=' that complete the last quantum and nothing follows it.
 * Whitespace, the URL-safe alphabet and a lone trailing character (len % 4 == 1) are
 * SL_EPARSE. Returns the exact number of bytes decoded (padding never counts),
 * SL_ETOOBIG when they do not fit in cap. out may be partly written on error. */
SL_MUSTCHECK int sl_enc_unb64(const char *in, size_t len, unsigned char *out, size_t cap);

/* Percent-encode s[0..n) onto b with uppercase hex (RFC 3986 §2.1). form false: a URL
 * query component, every byte but the unreserved A-Z a-z 0-9 - . _ ~ escaped. form true:
 * application/x-www-form-urlencoded (WHATWG URL serializer): A-Z a-z 0-9 * - . _ kept,
 * space as '+', the rest escaped. On SL_ETOOBIG b holds a prefix. */
SL_MUSTCHECK int sl_enc_pct(struct sl_buf *b, const char *s, size_t n, bool form);

/* Append p[0..n) to b as a JSON string with its quotes: '"' and '\\' escaped with a
 * backslash, bytes below 0x20 as \u00XX, every other byte as it is (the caller makes
 * the text valid UTF-8 first when it must be). */
SL_MUSTCHECK int sl_enc_json_str(struct sl_buf *b, const char *p, size_t n);

#endif
