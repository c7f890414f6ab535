/* The crash thread (rules/crashd.c; docs/crashes.md): from stored lines to crashes, once.
 *
 * The writer stores, with the rows, the ids of the lines sl_crash_anchor() flags
 * (crash_anchors). This thread claims the (source, procid) groups whose anchors are due
 * (received more than the settle delay ago), one at a time under a transaction-scoped
 * advisory lock, reads that procid's lines from `logs` in their own time order after the
 * group's cursor (crash_cursors), feeds them to an assembler (include/sluice/crash.h)
 * and, in ONE transaction, inserts the completed crashes (UNIQUE per source, procid and
 * first line), their Sentry outbox rows, moves the cursor and consumes the anchors. So
 * several nodes on one database and restarts give every crash once. Delivery is the
 * notifier's (rules/notifier.c). */
#ifndef SLUICE_CRASHD_H
#define SLUICE_CRASHD_H

#include <stdint.h>

#include "sluice/err.h"

struct sl_crashd;
struct sl_sources;

struct sl_crashd_opts {
    const char *database_url;
    const char *public_url;  /* search links in events */
    const char *default_dsn; /* SENTRY_DSN: sources without a DSN of their own; "" none */
    int64_t gap_ms;          /* SLUICE_CRASH_GAP_MS */
    int64_t settle_ms;       /* SLUICE_CRASH_SETTLE_MS */
    int64_t max_lines;       /* SLUICE_CRASH_MAX_LINES */
    int64_t max_bytes;       /* SLUICE_CRASH_MAX_BYTES */
    struct sl_sources *sources; /* for crash rules (names, scopes); NULL: no rules */
};

/* Start the thread (it connects and reconnects by itself). */
SL_MUSTCHECK int sl_crashd_start(const struct sl_crashd_opts *o, struct sl_crashd **out);
/* Stop after the current group's transaction, join, free. Accepts NULL. */
void sl_crashd_stop(struct sl_crashd *d);

#endif
