/* PCRE -> PostgreSQL ARE regex translation (drain/pcre2pg.c).
 *
 * The search language's /regex/ is written in PCRE syntax and run by PostgreSQL's
 * `~` / `~*` (Advanced Regular Expressions). This module accepts only the part of PCRE
 * that ARE runs with the same meaning and writes the ARE text; everything else is
 * refused with its position and a reason, so a translated regex never makes PostgreSQL
 * raise and never matches something PCRE would not.
 *
 * Accepted: literals (valid UTF-8, no NUL byte), escaped punctuation (\. \/ ...), \d \D \s \S
 * \w \W \t \n \r \f, \xHH (exactly two hex digits, not 00), . ^ $ |, bracket expressions
 * ([a-z], [^...], [[:alpha:]] with the 12 POSIX classes, \d \s \w \t \n \r \f \xHH and
 * escaped punctuation inside), groups ( ) (?: ) and one level of lookaround (?= ) (?! )
 * (?<= ) (?<! ), quantifiers * + ? {m} {m,} {m,n} (m, n <= 255) each optionally lazy (?).
 * Translated: \b -> \y, \B -> \Y, \z and \Z -> \Z, \A kept.
 * Refused: back references, other escapes (\p \h \v \Q \K ...), other (? groups,
 * collating elements, unknown classes, bad ranges, double quantifiers, nested counted
 * repetitions, more than SL_PCRE2PG_MAX_GROUPS nested groups, a total counted-repetition
 * weight above SL_PCRE2PG_MAX_WEIGHT.
 *
 * Pure: no I/O, no global state; any thread. Allocates only through the caller's sl_buf. */
#ifndef SLUICE_PCRE2PG_H
#define SLUICE_PCRE2PG_H

#include <stddef.h>

#include "sluice/buf.h"
#include "sluice/err.h"

#define SL_PCRE2PG_MAX_GROUPS 32
/* Sum over counted repetitions of (upper bound x bytes of the repeated atom): bounds the
 * size of the automaton PostgreSQL builds. */
#define SL_PCRE2PG_MAX_WEIGHT 20000

/* Why a regex is refused: reason is a static string; [pos, pos + len) is the offending
 * text in the regex (0-based; len may be 0). */
struct sl_pcre2pg_err {
    size_t pos;
    size_t len;
    const char *reason;
};

/* Translate the PCRE re[0..n) (need not be NUL-terminated) and append the ARE to out.
 * Returns 0, SL_EPARSE with *err filled (err may be NULL), or out's SL_ETOOBIG /
 * SL_ENOMEM (err untouched). On error out may hold a partial translation. */
SL_MUSTCHECK int sl_pcre2pg_translate(const char *re, size_t n, struct sl_buf *out,
                                      struct sl_pcre2pg_err *err);

#endif
