/* Byte encodings (include/sluice/enc.h): hex, base64 and JSON strings, the one copy the
 * drain and the rules share. base64 rides on OpenSSL's EVP_EncodeBlock/EVP_DecodeBlock
 * (already linked for TLS and SHA-256); EVP_DecodeBlock wants whole quanta, skips
 * surrounding whitespace and counts padding as zero bytes, so the input is checked here
 * first and the exact length computed. Pure; any thread. RFC 4648 §4, RFC 8259 §7. */
#include <string.h>

#include <openssl/evp.h>

#include "sluice/enc.h"
#include "sluice/str.h"

static const char hexdig[] = "0123456789abcdef";

void sl_enc_hex(const void *in, size_t n, char *out)
{
    const unsigned char *p = in;

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hexdig[p[i] >> 4];
        out[2 * i + 1] = hexdig[p[i] & 15];
    }
    out[2 * n] = '\0';
}

int sl_enc_hex_buf(struct sl_buf *b, const void *in, size_t n)
{
    const unsigned char *p = in;
    int rc = sl_buf_reserve(b, 2 * n);

    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++) {
        b->p[b->len++] = hexdig[p[i] >> 4];
        b->p[b->len++] = hexdig[p[i] & 15];
    }
    return 0;
}

int sl_enc_unhex(const char *hex, size_t len, unsigned char *out, size_t cap)
{
    if (len % 2 != 0)
        return SL_EPARSE;
    if (len / 2 > cap || len / 2 > (size_t)0x7fffffff)
        return SL_ETOOBIG;
    for (size_t i = 0; i < len / 2; i++) {
        int h = sl_hexval((unsigned char)hex[2 * i]), l = sl_hexval((unsigned char)hex[2 * i + 1]);
        if (h < 0 || l < 0)
            return SL_EPARSE;
        out[i] = (unsigned char)(h << 4 | l);
    }
    return (int)(len / 2);
}

size_t sl_enc_b64(const void *in, size_t n, char *out)
{
    size_t done = 0, o = 0;

    /* EVP_EncodeBlock takes an int length: feed it in slices (a multiple of 3 bytes). */
    while (n - done > 0) {
        size_t k = n - done > 3 * (1u << 28) ? 3 * (1u << 28) : n - done;
        o += (size_t)EVP_EncodeBlock((unsigned char *)out + o, (const unsigned char *)in + done,
                                     (int)k);
        done += k;
    }
    out[o] = '\0';
    return o;
}

static bool b64_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '+' || c == '/';
}

int sl_enc_unb64(const char *in, size_t len, unsigned char *out, size_t cap)
{
    size_t pad = 0, body, whole, tail, want;
    unsigned char last[4], three[3];

    while (pad < 2 && len - pad > 0 && in[len - pad - 1] == '=')
        pad++;
    body = len - pad;
    for (size_t i = 0; i < body; i++)
        if (!b64_char((unsigned char)in[i]))
            return SL_EPARSE;
    tail = body % 4;
    if (tail == 1 || (pad > 0 && tail + pad != 4))
        return SL_EPARSE;
    whole = body - tail;
    want = whole / 4 * 3 + (tail ? tail - 1 : 0);
    if (want > cap || want > (size_t)0x7fffffff)
        return SL_ETOOBIG;
    /* whole quanta straight into out, in slices EVP's int length can take */
    for (size_t done = 0; done < whole;) {
        size_t k = whole - done > 4 * (1u << 28) ? 4 * (1u << 28) : whole - done;
        if (EVP_DecodeBlock(out + done / 4 * 3, (const unsigned char *)in + done, (int)k) < 0)
            return SL_EPARSE;
        done += k;
    }
    if (tail) {
        /* the last, short quantum padded here; its padding decodes to bytes we drop */
        memcpy(last, in + whole, tail);
        memset(last + tail, '=', 4 - tail);
        if (EVP_DecodeBlock(three, last, 4) != 3)
            return SL_EPARSE;
        memcpy(out + whole / 4 * 3, three, tail - 1);
    }
    return (int)want;
}

int sl_enc_pct(struct sl_buf *b, const char *s, size_t n, bool form)
{
    static const char upper[] = "0123456789ABCDEF";
    int rc = 0;

    for (size_t i = 0; i < n && rc == 0; i++) {
        unsigned char c = (unsigned char)s[i];
        bool keep = (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                    c == '-' || c == '.' || c == '_' || (form ? c == '*' : c == '~');
        if (keep) {
            rc = sl_buf_addc(b, (char)c);
        } else if (form && c == ' ') {
            rc = sl_buf_addc(b, '+');
        } else {
            char e[3] = {'%', upper[c >> 4], upper[c & 15]};
            rc = sl_buf_add(b, e, 3);
        }
    }
    return rc;
}

int sl_enc_json_str(struct sl_buf *b, const char *p, size_t n)
{
    int rc = sl_buf_addc(b, '"');
    size_t run = 0;

    /* copy runs of plain bytes in one call; escape the rest one by one */
    for (size_t i = 0; i < n && rc == 0; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c != '"' && c != '\\' && c >= 0x20)
            continue;
        if ((rc = sl_buf_add(b, p + run, i - run)))
            break;
        run = i + 1;
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            rc = sl_buf_add(b, e, 2);
        } else {
            char e[6] = {'\\', 'u', '0', '0', hexdig[c >> 4], hexdig[c & 15]};
            rc = sl_buf_add(b, e, 6);
        }
    }
    if (rc == 0)
        rc = sl_buf_add(b, p + run, n - run);
    return rc ? rc : sl_buf_addc(b, '"');
}
