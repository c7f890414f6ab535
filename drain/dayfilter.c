/* The day level's sliced Bloom filters (include/sluice/dayfilter.h). */
#include <stdlib.h>
#include <string.h>

#include "sluice/dayfilter.h"
#include "sluice/tokens.h"

static uint32_t pow2_at_least(uint64_t v)
{
    uint32_t n = SL_DAYFILTER_MIN_BITS;
    while (n < v && n < SL_BLOOM_MAX_BITS)
        n <<= 1;
    return n;
}

int sl_dayfilter_init(struct sl_dayfilter *d, uint64_t est_bits)
{
    uint32_t nb = pow2_at_least(est_bits / SL_DAYFILTER_SLICES);

    memset(d, 0, sizeof(*d));
    for (unsigned s = 0; s < SL_DAYFILTER_SLICES; s++) {
        d->nbits[s] = nb;
        if ((d->bits[s] = calloc(nb / 8, 1)) == NULL)
            return SL_ENOMEM;
    }
    return 0;
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
    unsigned s = sl_dayfilter_slice(hash);
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

void sl_dayfilter_fold(struct sl_dayfilter *d)
{
    for (unsigned s = 0; s < SL_DAYFILTER_SLICES; s++) {
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
    unsigned s = sl_dayfilter_slice(hash);

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
    for (unsigned s = 0; s < SL_DAYFILTER_SLICES; s++)
        n += d->nbits[s] / 8;
    return n;
}
