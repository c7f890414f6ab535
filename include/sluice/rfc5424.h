/* Syslog message parser: RFC 5424 (§6), including Heroku's form with no
 * STRUCTURED-DATA field at all, and RFC 3164 (BSD) messages as a fallback.
 *
 * Pure: no I/O, no allocation, results point into the caller's buffer. */
#ifndef SLUICE_RFC5424_H
#define SLUICE_RFC5424_H

#include <stdbool.h>
#include <stdint.h>

#include "sluice/str.h"

enum sl_syslog_form {
    SL_SYSLOG_5424 = 0,  /* strict RFC 5424 with SD ("-" or elements) */
    SL_SYSLOG_HEROKU,    /* RFC 5424 header with no SD field (logplex) */
    SL_SYSLOG_3164,      /* BSD syslog: <PRI>Mmm dd hh:mm:ss HOST TAG[PID]: MSG */
};

struct sl_syslog {
    enum sl_syslog_form form;
    int facility;          /* 0..23 */
    int severity;          /* 0..7 */
    bool has_ts;           /* false for NILVALUE or when unparsable in 3164 */
    int64_t ts_us;         /* emitted time, microseconds since the Unix epoch, UTC */
    int ts_frac_digits;    /* digits of fraction the sender gave (0..9); precision */
    int ts_offset_min;     /* the sender's UTC offset in minutes (+00:00 / Z = 0) */
    struct sl_str hostname; /* NILVALUE '-' gives a NULL slice */
    struct sl_str app_name; /* 3164: the TAG */
    struct sl_str procid;   /* 3164: the [PID] */
    struct sl_str msgid;
    struct sl_str sd;       /* raw STRUCTURED-DATA ("[id k=\"v\"]..."); NULL if none */
    struct sl_str msg;      /* MSG, a leading UTF-8 BOM removed */
};

/* Parse one message (one frame's bytes, trailing newline already stripped).
 *
 * SD detection after MSGID: '[' begins STRUCTURED-DATA only if the whole SD
 * parses and its first SD-ID contains '@' or is one registered by IANA
 * (timeQuality, origin, meta); otherwise the text is MSG (Heroku lines such as
 * "[INFO] started"). "- " or a lone "-" is the NILVALUE SD. Anything else is
 * Heroku's no-SD form.
 *
 * Returns 0 and fills *out, or SL_EPARSE with *why set to a static reason
 * ("no PRI", "bad timestamp", ...) when buf is not syslog at all. */
int sl_syslog_parse(const char *buf, size_t len, struct sl_syslog *out, const char **why);

/* The same, with the receive time ref_us (microseconds since the epoch, UTC) used to
 * give an RFC 3164 "Mmm dd hh:mm:ss" stamp its missing year (and UTC as its zone).
 * sl_syslog_parse, which has no clock, leaves has_ts false for such year-less stamps. */
int sl_syslog_parse_ref(const char *buf, size_t len, int64_t ref_us, struct sl_syslog *out,
                        const char **why);

/* Parse an RFC 3339 timestamp as RFC 5424 §6.2.3 allows it.
 * Returns 0 and fills us/frac_digits/offset_min, or SL_EPARSE. */
int sl_rfc3339_parse(const char *buf, size_t len, int64_t *us, int *frac_digits,
                     int *offset_min);

/* Heroku's error codes for lines a sender lost (devcenter.heroku.com/articles/error-codes). */
#define SL_HEROKU_L10 10 /* logplex: output buffer overflow (drain too slow) */
#define SL_HEROKU_L12 12 /* log-shuttle / logplex: local buffer overflow */
#define SL_HEROKU_L13 13 /* log-shuttle / logplex: local delivery error */

/* Lines the sender uses to report its own losses: logplex "Error L10 (output buffer
 * overflow): N messages dropped since ...", "Error L12 ...: N messages dropped",
 * "Error L13 ...: N messages lost ...", and log-shuttle's own form without the
 * parenthesised text, "Error L12: N messages dropped since ...", "Error L13: N messages
 * lost since ...". Returns N (>= 0) and sets *code to SL_HEROKU_L10, _L12 or _L13, or -1
 * when msg is no such notice. */
long sl_heroku_loss_notice(struct sl_str msg, int *code);

#endif
