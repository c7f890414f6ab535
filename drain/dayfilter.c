/* The day level's sliced Bloom filters (include/sluice/dayfilter.h). */
#include <stdlib.h>
#include <string.h>

#include "sluice/dayfilter.h"
#include "sluice/enc.h"
#include "sluice/fields.h"
#include "sluice/buf.h"
#include "sluice/tokens.h"

static uint32_t pow2_at_least(uint64_t v)
{
    uint32_t n = SL_DAYFILTER_MIN_BITS;
    while (n < v && n < SL_BLOOM_MAX_BITS)
        n <<= 1;
    return n;
}

int sl_dayfilter_init_sliced(struct sl_dayfilter *d, uint64_t est_bits, unsigned nslices)
{
    uint32_t nb;

    memset(d, 0, sizeof(*d));
    if (nslices == 0 || nslices > SL_DAYFILTER_SLICES || (nslices & (nslices - 1)))
        return SL_EINVAL;
    d->nslices = nslices;
    nb = pow2_at_least(est_bits / nslices);
    for (unsigned s = 0; s < nslices; s++) {
        d->nbits[s] = nb;
        if ((d->bits[s] = calloc(nb / 8, 1)) == NULL)
            return SL_ENOMEM;
    }
    return 0;
}

int sl_dayfilter_init(struct sl_dayfilter *d, uint64_t est_bits)
{
    return sl_dayfilter_init_sliced(d, est_bits, SL_DAYFILTER_SLICES);
}

void sl_dayfilter_free(struct sl_dayfilter *d)
{
    for (unsigned s = 0; s < SL_DAYFILTER_SLICES; s++) {
        free(d->bits[s]);
        d->bits[s] = NULL;
    }
}

void sl_dayfilter_add_hash(struct sl_dayfilter *d, uint64_t hash)
{
    unsigned s = sl_dayfilter_slice_of(hash, d->nslices);
    uint8_t *b = d->bits[s];

    for (unsigned k = 0; k < SL_BLOOM_K; k++) {
        uint32_t p = sl_bloom_pos(hash, k, d->nbits[s]);
        b[p >> 3] |= (uint8_t)(1u << (p & 7));
    }
    d->ntokens++;
}

static void add_cb(void *arg, const char *tok, size_t len, uint64_t hash)
{
    (void)tok;
    (void)len;
    sl_dayfilter_add_hash(arg, hash);
}

void sl_dayfilter_add_text(struct sl_dayfilter *d, const char *text, size_t len)
{
    (void)sl_tokenize(text, len, add_cb, d);
}

void sl_dayfilter_add_line(struct sl_dayfilter *d, const char *msg, size_t len, const char *json,
                           size_t jlen, struct sl_buf *extra)
{
    sl_dayfilter_add_text(d, msg, len);
    if (json == NULL)
        return;
    sl_buf_reset(extra);
    if (sl_fields_json_extra(json, jlen, extra) == 0)
        sl_dayfilter_add_text(d, extra->p, extra->len);
}

void sl_dayfilter_fold(struct sl_dayfilter *d)
{
    for (unsigned s = 0; s < d->nslices; s++) {
        uint8_t *b = d->bits[s];
        while (d->nbits[s] > SL_DAYFILTER_MIN_BITS) {
            size_t half = d->nbits[s] / 16, ones = 0; /* bytes of the folded filter */
            for (size_t i = 0; i < half; i++)
                ones += (size_t)__builtin_popcount(b[i] | b[i + half]);
            if (ones * 3 > half * 8)
                break;
            for (size_t i = 0; i < half; i++)
                b[i] |= b[i + half];
            d->nbits[s] /= 2;
        }
    }
}

bool sl_dayfilter_may_have(const struct sl_dayfilter *d, uint64_t hash)
{
    unsigned s = sl_dayfilter_slice_of(hash, d->nslices);

    for (unsigned k = 0; k < SL_BLOOM_K; k++) {
        uint32_t p = sl_bloom_pos(hash, k, d->nbits[s]);
        if (!((d->bits[s][p >> 3] >> (p & 7)) & 1))
            return false;
    }
    return true;
}

size_t sl_dayfilter_bytes(const struct sl_dayfilter *d)
{
    size_t n = 0;
    for (unsigned s = 0; s < d->nslices; s++)
        n += d->nbits[s] / 8;
    return n;
}

int sl_dayfilter_arrays(struct sl_dayfilter *d, struct sl_buf *slices, struct sl_buf *nbits,
                        struct sl_buf *hex)
{
    int rc = 0;

    sl_dayfilter_fold(d);
    for (unsigned s = 0; s < d->nslices && rc == 0; s++) {
        const char *sep = s ? "," : "{";
        rc = sl_buf_addf(slices, "%s%u", sep, s) || sl_buf_addf(nbits, "%s%u", sep, d->nbits[s]) ||
             sl_buf_add(hex, sep, 1) || sl_enc_hex_buf(hex, d->bits[s], d->nbits[s] / 8);
    }
    if (rc == 0)
        rc = sl_buf_add(slices, "}", 2) || sl_buf_add(nbits, "}", 2) || sl_buf_add(hex, "}", 2);
    return rc ? SL_ENOMEM : 0;
}
