/* Search tokens and per-block Bloom filters (include/sluice/tokens.h).
 *
 * The writer tokenizes every message it COPYs and builds one filter per block (one
 * source's consecutive rows) for the `log_blocks` table; the search side tokenizes the
 * query the same way and asks sl_bloom_has1 / sl_bloom_has (SQL, docs/search.md) which
 * blocks may hold all of its tokens. Leaves to others: block boundaries and the COPY of log_blocks (writer),
 * query parsing and the text recheck (query module). Thread: any; no I/O, no global
 * state; only struct sl_bloom allocates. Design and figures: docs/search.md.
 *
 * Speed matters: this runs on the writer thread for every stored line (target >= 2M
 * corpus-shaped lines/s on one core; measured by tests/bench/searchgen.c `tokbench`). */
#include <stdlib.h>
#include <string.h>

#include "sluice/tokens.h"

/* Byte class and lowercase in one table: 0 for a separator, else the byte to keep.
 * Word bytes: [0-9A-Za-z_] and every byte >= 0x80 (UTF-8 lead and continuation bytes). */
#define W(c) (c)
#define U(c) ((c) + 32)
static const unsigned char word_byte[256] = {
    /* 0x00-0x2f: separators */
    ['0'] = W('0'), ['1'] = W('1'), ['2'] = W('2'), ['3'] = W('3'), ['4'] = W('4'),
    ['5'] = W('5'), ['6'] = W('6'), ['7'] = W('7'), ['8'] = W('8'), ['9'] = W('9'),
    ['A'] = U('A'), ['B'] = U('B'), ['C'] = U('C'), ['D'] = U('D'), ['E'] = U('E'),
    ['F'] = U('F'), ['G'] = U('G'), ['H'] = U('H'), ['I'] = U('I'), ['J'] = U('J'),
    ['K'] = U('K'), ['L'] = U('L'), ['M'] = U('M'), ['N'] = U('N'), ['O'] = U('O'),
    ['P'] = U('P'), ['Q'] = U('Q'), ['R'] = U('R'), ['S'] = U('S'), ['T'] = U('T'),
    ['U'] = U('U'), ['V'] = U('V'), ['W'] = U('W'), ['X'] = U('X'), ['Y'] = U('Y'),
    ['Z'] = U('Z'), ['_'] = W('_'),
    ['a'] = W('a'), ['b'] = W('b'), ['c'] = W('c'), ['d'] = W('d'), ['e'] = W('e'),
    ['f'] = W('f'), ['g'] = W('g'), ['h'] = W('h'), ['i'] = W('i'), ['j'] = W('j'),
    ['k'] = W('k'), ['l'] = W('l'), ['m'] = W('m'), ['n'] = W('n'), ['o'] = W('o'),
    ['p'] = W('p'), ['q'] = W('q'), ['r'] = W('r'), ['s'] = W('s'), ['t'] = W('t'),
    ['u'] = W('u'), ['v'] = W('v'), ['w'] = W('w'), ['x'] = W('x'), ['y'] = W('y'),
    ['z'] = W('z'),
#define R8(b) [b] = b, [b + 1] = b + 1, [b + 2] = b + 2, [b + 3] = b + 3, [b + 4] = b + 4, \
              [b + 5] = b + 5, [b + 6] = b + 6, [b + 7] = b + 7
#define R32(b) R8(b), R8(b + 8), R8(b + 16), R8(b + 24)
    R32(0x80), R32(0xa0), R32(0xc0), R32(0xe0),
#undef R32
#undef R8
};
#undef W
#undef U

static inline uint64_t rotl64(uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}

/* Bytes p[0..n) (n <= 8) as a little-endian word, missing high bytes zero. */
static inline uint64_t load_le(const unsigned char *p, size_t n)
{
    uint64_t w = 0;

    if (n == 8) {
        memcpy(&w, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        w = __builtin_bswap64(w);
#endif
        return w;
    }
    for (size_t j = 0; j < n; j++)
        w |= (uint64_t)p[j] << (8 * j);
    return w;
}

/* One 8-byte word into the state (murmur3's block step). */
static inline uint64_t mix_word(uint64_t h, uint64_t k)
{
    k *= 0x87c37b91114253d5ULL;
    k = rotl64(k, 31);
    k *= 0x4cf5ad432745937fULL;
    h ^= k;
    return rotl64(h, 27) * 5 + 0x52dce729;
}

/* fmix64 (MurmurHash3): every input bit reaches both 32-bit halves. */
static inline uint64_t fmix64(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

static inline uint64_t hash_seed(size_t len)
{
    return 0x9e3779b97f4a7c15ULL ^ ((uint64_t)len * 0xc2b2ae3d27d4eb4fULL);
}

/* The stored format depends on every constant here: see the header before touching.
 * Words are the bytes in order, 8 at a time, little-endian; the last word (or the only
 * one, for len 0) is zero-padded; a len that is a multiple of 8 (> 0) adds no empty word. */
uint64_t sl_token_hash64(const char *p, size_t len)
{
    const unsigned char *s = (const unsigned char *)p;
    uint64_t h = hash_seed(len);
    size_t i = 0;

    for (; len - i >= 8; i += 8)
        h = mix_word(h, load_le(s + i, 8));
    if (i < len || len == 0)
        h = mix_word(h, load_le(s + i, len - i));
    return fmix64(h);
}

/* The same hash for a buffer with at least 8 readable bytes after len (any values):
 * whole-word loads, the last word masked. */
static inline uint64_t hash_masked(const unsigned char *s, size_t len)
{
    uint64_t h = hash_seed(len);
    size_t i = 0;

    for (; len - i >= 8; i += 8)
        h = mix_word(h, load_le(s + i, 8));
    if (i < len || len == 0)
        h = mix_word(h, load_le(s + i, 8) & ((1ULL << (8 * (len - i))) - 1));
    return fmix64(h);
}

#define SCAN_MAX 4096 /* lines up to this long take the two-pass path */

/* Lines of up to SCAN_MAX bytes: one branch-free pass records where tokens start and end
 * and writes the lowercased line (separators as 0), then a second pass hashes. Token
 * boundaries are data-dependent, so a loop that branches on them mispredicts about twice
 * per token; this is ~1.5x faster on corpus lines (docs/search.md). */
static size_t tokenize_short(const unsigned char *s, size_t len, sl_token_cb cb, void *arg)
{
    unsigned char low[SCAN_MAX + 8];
    uint16_t st[SCAN_MAX / 2 + 2], en[SCAN_MAX / 2 + 2];
    size_t ns = 0, ne = 0;
    unsigned prev = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = word_byte[s[i]];
        unsigned w = c != 0;

        low[i] = c;
        st[ns] = (uint16_t)i;
        ns += w & ~prev;
        en[ne] = (uint16_t)i;
        ne += prev & ~w;
        prev = w;
    }
    if (prev)
        en[ne++] = (uint16_t)len;
    memset(low + len, 0, 8);
    for (size_t t = 0; t < ns; t++) {
        size_t n = (size_t)(en[t] - st[t]);
        const unsigned char *p = low + st[t];

        if (n > SL_TOKEN_MAX)
            n = SL_TOKEN_MAX;
        cb(arg, (const char *)p, n, hash_masked(p, n));
    }
    return ns;
}

size_t sl_tokenize(const char *text, size_t len, sl_token_cb cb, void *arg)
{
    const unsigned char *s = (const unsigned char *)text;
    /* 8 spare bytes after the token let the hash load whole words. */
    unsigned char tok[SL_TOKEN_MAX + 8];
    size_t i = 0, count = 0;

    if (len <= SCAN_MAX)
        return tokenize_short(s, len, cb, arg);
    while (i < len) {
        size_t n = 0;
        unsigned char c;

        while (i < len && word_byte[s[i]] == 0)
            i++;
        if (i >= len)
            break;
        /* A run of word bytes; kept up to SL_TOKEN_MAX, the rest skipped. */
        while (i < len && (c = word_byte[s[i]]) != 0) {
            if (n < SL_TOKEN_MAX)
                tok[n++] = c;
            i++;
        }
        cb(arg, (const char *)tok, n, hash_masked(tok, n));
        count++;
    }
    return count;
}

void sl_bloom_init(struct sl_bloom *b)
{
    memset(b, 0, sizeof(*b));
}

void sl_bloom_free(struct sl_bloom *b)
{
    if (b == NULL)
        return;
    free(b->hashes);
    free(b->bits);
    memset(b, 0, sizeof(*b));
}

void sl_bloom_reset(struct sl_bloom *b)
{
    if (b->n > 0)
        memset(b->hashes, 0, b->cap * sizeof(b->hashes[0]));
    b->n = 0;
    b->nbits = 0;
}

/* 0 marks an empty slot. Hash 0 is stored as 1 << 32 instead: both give h1 = 0 and
 * h2 = 1, so they set the same bits. */
static inline uint64_t slot_value(uint64_t h)
{
    return h ? h : (1ULL << 32);
}

/* Insert into a table known to have room; returns true when the value is new. */
static bool set_insert(uint64_t *t, size_t cap, uint64_t v)
{
    /* The low bits feed the filter positions; the high bits pick the slot. */
    size_t i = (size_t)(v >> 40) & (cap - 1);

    while (t[i] != 0) {
        if (t[i] == v)
            return false;
        i = (i + 1) & (cap - 1);
    }
    t[i] = v;
    return true;
}

static int set_grow(struct sl_bloom *b)
{
    size_t ncap = b->cap ? b->cap * 2 : 1024;
    uint64_t *t = calloc(ncap, sizeof(*t));

    if (t == NULL)
        return SL_ENOMEM;
    for (size_t i = 0; i < b->cap; i++)
        if (b->hashes[i])
            (void)set_insert(t, ncap, b->hashes[i]);
    free(b->hashes);
    b->hashes = t;
    b->cap = ncap;
    return 0;
}

static bool set_has(const struct sl_bloom *b, uint64_t v)
{
    size_t i = (size_t)(v >> 40) & (b->cap - 1);

    while (b->hashes[i] != 0) {
        if (b->hashes[i] == v)
            return true;
        i = (i + 1) & (b->cap - 1);
    }
    return false;
}

int sl_bloom_add(struct sl_bloom *b, uint64_t hash)
{
    uint64_t v = slot_value(hash);
    int rc;

    /* At the cap a duplicate is still fine; only a new hash fails. */
    if (b->n >= SL_BLOOM_MAX_HASHES)
        return set_has(b, v) ? 0 : SL_ETOOBIG;
    /* Keep the table at most half full so probes stay short. */
    if (2 * (b->n + 1) > b->cap && (rc = set_grow(b)))
        return rc;
    if (set_insert(b->hashes, b->cap, v))
        b->n++;
    return 0;
}

uint32_t sl_bloom_pos(uint64_t hash, unsigned i, uint32_t nbits)
{
    uint64_t h1 = hash & 0xffffffffu, h2 = (hash >> 32) | 1;

    return (uint32_t)((h1 + i * h2) & (nbits - 1));
}

int sl_bloom_build(struct sl_bloom *b)
{
    uint64_t want = (uint64_t)b->n * SL_BLOOM_BITS_PER_TOKEN;
    uint32_t nbits = SL_BLOOM_MIN_BITS;
    uint8_t *bits;

    while (nbits < want && nbits < SL_BLOOM_MAX_BITS)
        nbits <<= 1;
    bits = realloc(b->bits, nbits / 8);
    if (bits == NULL)
        return SL_ENOMEM;
    b->bits = bits;
    b->nbits = nbits;
    memset(bits, 0, nbits / 8);
    for (size_t s = 0; s < b->cap; s++) {
        uint64_t h = b->hashes[s];
        uint32_t h1 = (uint32_t)h, h2 = (uint32_t)(h >> 32) | 1;

        if (h == 0)
            continue;
        /* uint32 arithmetic wraps mod 2^32, a multiple of nbits: same as exact. */
        for (unsigned k = 0; k < SL_BLOOM_K; k++) {
            uint32_t p = (h1 + k * h2) & (nbits - 1);
            bits[p >> 3] |= (uint8_t)(1u << (p & 7));
        }
    }
    return 0;
}

bool sl_bloom_may_have(const struct sl_bloom *b, uint64_t hash)
{
    if (b->nbits == 0)
        return false;
    for (unsigned k = 0; k < SL_BLOOM_K; k++) {
        uint32_t p = sl_bloom_pos(hash, k, b->nbits);
        if (!((b->bits[p >> 3] >> (p & 7)) & 1))
            return false;
    }
    return true;
}

uint64_t sl_numclass_hash(const char *key, size_t klen, int cls)
{
    char b[SL_NUMCLASS_KEY_MAX + 3 + 8];

    if (klen > SL_NUMCLASS_KEY_MAX)
        klen = SL_NUMCLASS_KEY_MAX; /* never asked for (sl_numclass_query's callers) */
    b[0] = 1;
    memcpy(b + 1, key, klen);
    b[klen + 1] = 2;
    b[klen + 2] = (char)('a' + cls);
    return sl_token_hash64(b, klen + 3);
}

/* The class of v[0..n) (-1: not a number as the SQL reads one), and whether v is exactly
 * its class's lowest value (0, 100, ... 900, 1000). */
static int numclass_parse(const char *v, size_t n, bool *at_lo)
{
    size_t i = 0, i0, ni, nz = 0;
    bool neg = false, frac = false;
    unsigned ip = 0;

    *at_lo = false;
    if (n > 0 && v[0] == '"')
        i++;
    if (n > i && v[n - 1] == '"')
        n--;
    if (i < n && v[i] == '-') {
        neg = true;
        i++;
    }
    i0 = i;
    while (i < n && v[i] >= '0' && v[i] <= '9') {
        if (v[i] != '0' || nz > 0)
            nz++; /* digits from the first non-zero one */
        i++;
    }
    ni = i - i0;
    if (ni < 1 || ni > 20)
        return -1;
    if (i < n && v[i] == '.') {
        size_t f0 = ++i;
        while (i < n && v[i] >= '0' && v[i] <= '9') {
            frac = frac || v[i] != '0';
            i++;
        }
        if (i - f0 < 1 || i - f0 > 20)
            return -1;
    }
    if (i != n)
        return -1;
    if (neg && (nz > 0 || frac))
        return SL_NUMCLASS_NEG;
    if (nz >= 4) {
        *at_lo = nz == 4 && !frac && memcmp(v + i0 + ni - 4, "1000", 4) == 0;
        return SL_NUMCLASS_BIG;
    }
    for (size_t k = i0; k < i0 + ni; k++)
        ip = ip * 10 + (unsigned)(v[k] - '0');
    *at_lo = ip % 100 == 0 && !frac;
    return SL_NUMCLASS_H0 + (int)(ip / 100);
}

int sl_numclass_of(const char *v, size_t n)
{
    bool at_lo;
    return numclass_parse(v, n, &at_lo);
}

unsigned sl_numclass_query(int op, const char *x, size_t n)
{
    bool at_lo;
    int cx = numclass_parse(x, n, &at_lo);
    unsigned set = 1u << SL_NUMCLASS_ANY;

    if (op == 1 || op < 0 || op > 5)
        return 0;
    if (cx < 0) {
        /* another spelling of a number: through a double, widened by a relative 1e-9 so
         * the rounding never loses a class */
        char tmp[64];
        double v, d;
        if (n == 0 || n >= sizeof(tmp))
            return 0;
        memcpy(tmp, x, n);
        tmp[n] = '\0';
        v = strtod(tmp, NULL);
        if (!(v == v) || v > 1e300 || v < -1e300)
            return 0;
        d = 1e-9 * (v < 0 ? -v : v) + 1e-9;
        for (int c = SL_NUMCLASS_NEG; c <= SL_NUMCLASS_BIG; c++) {
            double lo = c == SL_NUMCLASS_NEG ? -1e308 : c == SL_NUMCLASS_BIG ? 1000 : 100.0 * (c - 1);
            double up = c == SL_NUMCLASS_NEG ? 0 : c == SL_NUMCLASS_BIG ? 1e308 : 100.0 * c;
            bool any = op == 0 ? lo <= v + d && up > v - d : op <= 3 ? lo <= v + d : up > v - d;
            if (any)
                set |= 1u << c;
        }
        return set;
    }
    /* classes are [lo, up) and ordered: NEG < H0 < ... < H9 < BIG */
    for (int c = SL_NUMCLASS_NEG; c <= SL_NUMCLASS_BIG; c++) {
        bool any;
        switch (op) {
        case 0: /* = */
            any = c == cx;
            break;
        case 2: /* <: below x's class, or in it when x is above its lowest value */
            any = c < cx || (c == cx && !at_lo);
            break;
        case 3: /* <= */
            any = c <= cx;
            break;
        default: /* > and >=: x's class holds values above x (it is open above) */
            any = c >= cx;
            break;
        }
        if (any)
            set |= 1u << c;
    }
    return set;
}
