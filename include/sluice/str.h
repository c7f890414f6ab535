/* Byte slices that point into a caller's buffer. Parsers return these instead of
 * copies: a slice is valid only as long as the buffer it points into. */
#ifndef SLUICE_STR_H
#define SLUICE_STR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct sl_str {
    const char *p; /* NULL with len 0 for "absent" (e.g. a syslog NILVALUE) */
    size_t len;
};

#define SL_STR_NULL ((struct sl_str){NULL, 0})
#define SL_STR_LIT(s) ((struct sl_str){(s), sizeof(s) - 1})

static inline struct sl_str sl_str_make(const char *p, size_t len)
{
    struct sl_str s = {p, len};
    return s;
}

static inline bool sl_str_eq(struct sl_str a, const char *lit)
{
    size_t n = strlen(lit);
    return a.len == n && (n == 0 || memcmp(a.p, lit, n) == 0);
}

/* ASCII classes, independent of the locale (<ctype.h> is not). */
static inline bool sl_ascii_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static inline bool sl_ascii_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static inline bool sl_ascii_alnum(unsigned char c)
{
    return sl_ascii_alpha(c) || sl_ascii_digit(c);
}

/* 64-bit FNV-1a of p[0..len): a short, stable, non-cryptographic key (alert ids, the
 * search workers' per-token fairness). Its values are part of stored alert ids: never
 * change it. */
static inline uint64_t sl_fnv1a64(const void *p, size_t len)
{
    const unsigned char *s = (const unsigned char *)p;
    uint64_t h = 1469598103934665603ULL;

    for (size_t i = 0; i < len; i++)
        h = (h ^ s[i]) * 1099511628211ULL;
    return h;
}

/* The value of a hex digit, or -1. */
static inline int sl_hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

#endif
