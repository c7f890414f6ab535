/* HTTP delivery of alert requests with libcurl's multi interface (rules/deliver.c).
 * libcurl is used here and nowhere else. One sl_deliver per thread (the notifier's).
 *
 * Destinations on special-purpose addresses (IANA registries: loopback, private,
 * link-local, CGNAT, documentation, benchmarking, multicast, reserved, IPv6 outside
 * 2000::/3, and IPv4-mapped/-compatible, NAT64 and 6to4 forms of a private IPv4) are
 * refused (checked on the resolved address at connect time, so DNS cannot rebind around
 * it) unless the address is in the allow list (SLUICE_ALERT_ALLOW_PRIVATE, e.g.
 * "127.0.0.1,::1"; "*" allows all; an address is matched exactly, so "127.0.0.1" does
 * not admit "::127.0.0.1"). Redirects are not followed (3xx is a failure). */
#ifndef SLUICE_DELIVER_H
#define SLUICE_DELIVER_H

#include <stdbool.h>
#include <stdint.h>

#include "sluice/err.h"
#include "sluice/payload.h"

struct sl_deliver;

struct sl_deliver_result {
    uint64_t id;         /* the caller's id from sl_deliver_add */
    long status;         /* HTTP status, 0 when no response */
    int64_t retry_after; /* seconds from Retry-After (or X-Sentry-Rate-Limits), -1 if none */
    char error[256];     /* curl's reason when status is 0, e.g. "refused: private address" */
    bool refused;        /* blocked by the private-address rule: do not retry */
    char retry_after_raw[64];  /* the Retry-After header as sent ("" none): for Sentry */
    char rate_limits[512];     /* X-Sentry-Rate-Limits as sent ("" none; cut at 511) */
};

typedef void (*sl_deliver_cb)(void *arg, const struct sl_deliver_result *r);

/* allow: comma-separated addresses allowed although private ("" none, "*" all).
 * timeout_ms: whole-request timeout (15-30 s for webhooks). */
SL_MUSTCHECK int sl_deliver_new(const char *allow, long timeout_ms, struct sl_deliver **out);
void sl_deliver_free(struct sl_deliver *d);

/* Queue a request (copied). At most max_inflight (64) at once: SL_EFULL beyond. */
SL_MUSTCHECK int sl_deliver_add(struct sl_deliver *d, uint64_t id, const struct sl_request *rq);
/* Drive transfers for up to wait_ms; calls cb for each finished one. Returns how many
 * are still in flight. */
int sl_deliver_run(struct sl_deliver *d, int wait_ms, sl_deliver_cb cb, void *arg);

/* Is this literal address private/loopback (per the rule above)? For checks at
 * `rules check` time on literal IPs and "localhost". */
bool sl_addr_is_private(const char *host);
bool sl_deliver_allowed(const char *allow, const char *host);

/* Delay before attempt number `attempt` (1 = the first retry) on the Standard Webhooks
 * schedule: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h, each with +-10 %
 * jitter from r in [0,1); -1 after the last: dead-letter. */
int64_t sl_retry_delay(int attempt, double r);

#endif
