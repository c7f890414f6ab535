/* HTTP delivery of alert requests with libcurl's multi interface
 * (include/sluice/deliver.h is the contract).
 *
 * What it does: copies each request into an easy handle (POST, the request's headers, a
 * whole-request timeout, no redirects, http/https only, no proxy), drives up to 64 at once,
 * reports the HTTP status and any Retry-After (delta-seconds or HTTP-date, RFC 9110
 * §10.2.3; X-Sentry-Rate-Limits when there is no Retry-After), and discards response
 * bodies past a small bound. Every socket is opened by open_socket(), which sees the
 * address curl is about to connect to (after DNS, so a name cannot rebind around the
 * check) and refuses every special-purpose address of the IANA registries (loopback,
 * private, link-local, CGNAT, documentation, benchmarking, multicast, reserved; IPv6
 * outside 2000::/3; IPv4-mapped, IPv4-compatible, NAT64 and 6to4 forms judged by the
 * IPv4 address they carry) unless the allow list names the address exactly.
 *
 * What it leaves to others: what to retry and when (the notifier, with sl_retry_delay),
 * building requests (rules/payload.c), reading secrets.
 *
 * Threads: one struct sl_deliver belongs to one thread (the notifier's). curl_global_init
 * runs once per process, from the first sl_deliver_new (pthread_once). Proxies from the
 * environment are ignored on purpose: through a proxy the address check would see the
 * proxy, not the destination. */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "sluice/clock.h"
#include "sluice/deliver.h"
#include "sluice/err.h"
#include "sluice/log.h"
#include "sluice/payload.h"

#define MAX_INFLIGHT 64
#define RESPONSE_BODY_MAX (64u << 10) /* read and dropped; beyond this the transfer stops */
#define RETRY_AFTER_MAX (366LL * 86400)

struct xfer {
    struct sl_deliver *d;
    CURL *easy;
    struct curl_slist *hdrs;
    uint64_t id;
    int64_t retry_after;  /* from Retry-After, -1 none */
    int64_t sentry_limit; /* from X-Sentry-Rate-Limits, -1 none */
    int64_t date;         /* the response's Date, -1 none */
    char retry_date[64];  /* a Retry-After HTTP-date, resolved against Date at the end */
    char retry_raw[64];   /* the headers as sent, for the Sentry rate-limit rules */
    char limits_raw[512];
    size_t body_seen;
    bool refused;
    char refused_addr[INET6_ADDRSTRLEN];
    char errbuf[CURL_ERROR_SIZE];
    struct xfer *prev, *next;
};

struct sl_deliver {
    CURLM *multi;
    char *allow;
    long timeout_ms;
    size_t inflight;
    struct xfer *head;
};

/* ---- addresses ---------------------------------------------------------------------- */

/* A binary address: IPv4-mapped IPv6 (::ffff:a.b.c.d) is turned into its IPv4 form so
 * the same rules and allow-list entries apply. */
struct addr {
    int family; /* AF_INET or AF_INET6 */
    unsigned char b[16];
};

static void addr_normalise(struct addr *a)
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (a->family == AF_INET6 && memcmp(a->b, mapped, 12) == 0) {
        memmove(a->b, a->b + 12, 4);
        a->family = AF_INET;
    }
}

/* Parse a literal address ("127.0.0.1", "::1", "[::1]", "fe80::1%eth0"). Also the
 * shorthand IPv4 forms curl and inet_aton accept ("127.1", "0x7f.1"). */
static bool addr_parse(const char *s, size_t n, struct addr *a)
{
    char tmp[INET6_ADDRSTRLEN + 16];
    struct in_addr in4;
    char *pct;

    while (n > 0 && (*s == ' ' || *s == '\t')) {
        s++;
        n--;
    }
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
        s++;
        n -= 2;
    }
    if (n == 0 || n >= sizeof(tmp))
        return false;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    pct = strchr(tmp, '%');
    if (pct != NULL)
        *pct = '\0'; /* an IPv6 zone id does not change what the address is */
    memset(a, 0, sizeof(*a));
    if (inet_pton(AF_INET6, tmp, a->b) == 1) {
        a->family = AF_INET6;
        addr_normalise(a);
        return true;
    }
    if (pct == NULL && strspn(tmp, "0123456789abcdefABCDEFxX.") == strlen(tmp) &&
        inet_aton(tmp, &in4) != 0) {
        a->family = AF_INET;
        memcpy(a->b, &in4.s_addr, 4);
        return true;
    }
    return false;
}

/* Special-purpose ranges (IANA IPv4 and IPv6 Special-Purpose Address Registries, RFC
 * 6890 and its updates) that a webhook must never reach: not globally reachable, or
 * reserved, documentation, benchmarking, multicast or broadcast. */
struct range {
    unsigned char p[16];
    unsigned char bits;
};

static const struct range v4_refused[] = {
    {{0}, 8},             /* 0.0.0.0/8 "this network" */
    {{10}, 8},            /* 10/8 private */
    {{100, 64}, 10},      /* 100.64/10 shared (CGNAT) */
    {{127}, 8},           /* 127/8 loopback */
    {{169, 254}, 16},     /* 169.254/16 link-local (cloud metadata) */
    {{172, 16}, 12},      /* 172.16/12 private */
    {{192, 0, 0}, 24},    /* 192.0.0/24 IETF protocol assignments */
    {{192, 0, 2}, 24},    /* 192.0.2/24 TEST-NET-1 */
    {{192, 88, 99}, 24},  /* 192.88.99/24 6to4 relay anycast (deprecated) */
    {{192, 168}, 16},     /* 192.168/16 private */
    {{198, 18}, 15},      /* 198.18/15 benchmarking */
    {{198, 51, 100}, 24}, /* 198.51.100/24 TEST-NET-2 */
    {{203, 0, 113}, 24},  /* 203.0.113/24 TEST-NET-3 */
    {{224}, 4},           /* 224/4 multicast */
    {{240}, 4},           /* 240/4 reserved, 255.255.255.255 broadcast included */
};

/* IPv6 outside 2000::/3 is refused as a whole (below); these are the named ranges, kept
 * for the record and for the ones inside 2000::/3. */
static const struct range v6_refused[] = {
    {{0}, 96},                                  /* ::/96: ::, ::1, IPv4-compatible ::a.b.c.d */
    {{0x01, 0x00}, 64},                         /* 100::/64 discard-only */
    {{0x00, 0x64, 0xff, 0x9b, 0x00, 0x01}, 48}, /* 64:ff9b:1::/48 local-use NAT64 */
    {{0x20, 0x01}, 23},                         /* 2001::/23 IETF protocol assignments */
    {{0x20, 0x01, 0x0d, 0xb8}, 32},             /* 2001:db8::/32 documentation */
    {{0x3f, 0xff}, 20},                         /* 3fff::/20 documentation (RFC 9637) */
    {{0x5f, 0x00}, 16},                         /* 5f00::/16 SRv6 SIDs (RFC 9602) */
    {{0xfc}, 7},                                /* fc00::/7 unique local */
    {{0xfe, 0x80}, 10},                         /* fe80::/10 link-local */
    {{0xfe, 0xc0}, 10},                         /* fec0::/10 site-local (deprecated) */
    {{0xff}, 8},                                /* ff00::/8 multicast */
};

static bool prefix_match(const unsigned char *b, const struct range *r)
{
    unsigned full = r->bits / 8u, rest = r->bits % 8u;

    if (memcmp(b, r->p, full) != 0)
        return false;
    return rest == 0 || ((b[full] ^ r->p[full]) & (unsigned char)(0xffu << (8u - rest))) == 0;
}

static bool v4_private(const unsigned char *b4)
{
    for (size_t i = 0; i < sizeof(v4_refused) / sizeof(v4_refused[0]); i++)
        if (prefix_match(b4, &v4_refused[i]))
            return true;
    return false;
}

/* a is normalised: IPv4-mapped (::ffff:0:0/96) arrives as AF_INET. */
static bool addr_private(const struct addr *a)
{
    static const unsigned char nat64[12] = {0x00, 0x64, 0xff, 0x9b};                  /* /96 */
    static const unsigned char siit[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0}; /* /96 */
    const unsigned char *b = a->b;

    if (a->family == AF_INET)
        return v4_private(b);
    for (size_t i = 0; i < sizeof(v6_refused) / sizeof(v6_refused[0]); i++)
        if (prefix_match(b, &v6_refused[i]))
            return true;
    /* Forms that carry an IPv4 address a gateway will reach: judge that address. */
    if (memcmp(b, nat64, 12) == 0 || memcmp(b, siit, 12) == 0) /* RFC 6052, RFC 2765 */
        return v4_private(b + 12);
    if (b[0] == 0x20 && b[1] == 0x02) /* 2002:aabb:ccdd::/48 6to4 (RFC 3056) */
        return v4_private(b + 2);
    /* Only 2000::/3 is global unicast; everything else is reserved or unassigned. */
    return (b[0] & 0xe0) != 0x20;
}

static bool addr_equal(const struct addr *x, const struct addr *y)
{
    return x->family == y->family && memcmp(x->b, y->b, x->family == AF_INET ? 4 : 16) == 0;
}

bool sl_addr_is_private(const char *host)
{
    struct addr a;
    size_t n;

    if (host == NULL)
        return false;
    n = strlen(host);
    if (strcasecmp(host, "localhost") == 0 || strcasecmp(host, "localhost.") == 0 ||
        (n > 10 && strcasecmp(host + n - 10, ".localhost") == 0))
        return true; /* RFC 6761 §6.3: always loopback */
    return addr_parse(host, n, &a) && addr_private(&a);
}

/* Is the address (or, for names, the host text) in the allow list? */
static bool allowed(const char *allow, const char *host, const struct addr *ha)
{
    const char *p = allow;

    if (allow == NULL)
        return false;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        const char *s = p;
        size_t sn = n;
        struct addr a;

        while (sn > 0 && (*s == ' ' || *s == '\t')) {
            s++;
            sn--;
        }
        while (sn > 0 && (s[sn - 1] == ' ' || s[sn - 1] == '\t'))
            sn--;
        if (sn == 1 && s[0] == '*')
            return true;
        if (sn > 0) {
            if (ha != NULL && sn == 9 && strncasecmp(s, "localhost", 9) == 0) {
                /* "localhost" stands for the loopback addresses */
                static const unsigned char v6lo[16] = {[15] = 1};
                if ((ha->family == AF_INET && ha->b[0] == 127) ||
                    (ha->family == AF_INET6 && memcmp(ha->b, v6lo, 16) == 0))
                    return true;
            } else if (ha != NULL && addr_parse(s, sn, &a)) {
                if (addr_equal(&a, ha))
                    return true;
            } else if (ha == NULL && host != NULL && strlen(host) == sn &&
                       strncasecmp(host, s, sn) == 0) {
                return true;
            }
        }
        p += n;
        if (*p == ',')
            p++;
    }
    return false;
}

bool sl_deliver_allowed(const char *allow, const char *host)
{
    struct addr a;

    if (host == NULL)
        return false;
    if (addr_parse(host, strlen(host), &a))
        return allowed(allow, host, &a);
    return allowed(allow, host, NULL);
}

/* ---- retry schedule ----------------------------------------------------------------- */

int64_t sl_retry_delay(int attempt, double r)
{
    /* Standard Webhooks: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h. */
    static const int64_t sched[] = {5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400};
    double base, d;

    if (attempt < 1)
        return 0; /* the first delivery: now */
    if ((size_t)attempt > sizeof(sched) / sizeof(sched[0]))
        return -1;
    if (!(r >= 0.0)) /* NaN too */
        r = 0.0;
    if (r >= 1.0)
        r = nextafter(1.0, 0.0);
    base = (double)sched[attempt - 1];
    d = base * (0.9 + 0.2 * r); /* [0.9, 1.1) x base */
    return (int64_t)llround(d);
}

/* ---- curl callbacks ----------------------------------------------------------------- */

static curl_socket_t open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *sa)
{
    struct xfer *x = clientp;
    struct addr a;
    curl_socket_t fd;

    (void)purpose;
    memset(&a, 0, sizeof(a));
    if (sa->family == AF_INET && sa->addrlen >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)&sa->addr;
        a.family = AF_INET;
        memcpy(a.b, &in->sin_addr, 4);
    } else if (sa->family == AF_INET6 && sa->addrlen >= sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)&sa->addr;
        a.family = AF_INET6;
        memcpy(a.b, &in6->sin6_addr, 16);
        addr_normalise(&a);
    } else {
        x->refused = true; /* AF_UNIX and anything else we cannot judge */
        snprintf(x->refused_addr, sizeof(x->refused_addr), "family %d", sa->family);
        return CURL_SOCKET_BAD;
    }
    if (addr_private(&a) && !allowed(x->d->allow, NULL, &a)) {
        x->refused = true;
        if (inet_ntop(a.family, a.b, x->refused_addr, sizeof(x->refused_addr)) == NULL)
            snprintf(x->refused_addr, sizeof(x->refused_addr), "?");
        return CURL_SOCKET_BAD;
    }
    fd = socket(sa->family, sa->socktype | SOCK_CLOEXEC, sa->protocol);
    return fd < 0 ? CURL_SOCKET_BAD : fd;
}

static int64_t parse_seconds(const char *s, size_t n)
{
    int64_t v = 0;
    size_t i = 0;

    if (n == 0)
        return -1;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
        v = v < RETRY_AFTER_MAX ? v * 10 + (s[i] - '0') : v;
    if (i == 0 || i != n)
        return -1;
    return v > RETRY_AFTER_MAX ? RETRY_AFTER_MAX : v;
}

/* X-Sentry-Rate-Limits: "60:transaction:key, 2700:default;error;security:organization":
 * the longest limit. */
static int64_t sentry_limit(const char *s, size_t n)
{
    int64_t best = -1;
    size_t i = 0;

    while (i < n) {
        size_t j;
        while (i < n && s[i] == ' ')
            i++;
        j = i;
        while (j < n && s[j] >= '0' && s[j] <= '9')
            j++;
        if (j > i && j < n && s[j] == ':') {
            int64_t v = parse_seconds(s + i, j - i);
            if (v > best)
                best = v;
        }
        while (i < n && s[i] != ',')
            i++;
        if (i < n)
            i++;
    }
    return best;
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *userdata)
{
    struct xfer *x = userdata;
    size_t len = size * nitems, n = len, vlen;
    const char *colon, *v;

    if (len >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
        /* A new response (after 1xx, or a proxy's): forget the previous one's headers. */
        x->retry_after = -1;
        x->sentry_limit = -1;
        x->date = -1;
        x->retry_date[0] = '\0';
        x->retry_raw[0] = '\0';
        x->limits_raw[0] = '\0';
        return len;
    }
    while (n > 0 && (buf[n - 1] == '\r' || buf[n - 1] == '\n'))
        n--;
    colon = memchr(buf, ':', n);
    if (colon == NULL)
        return len;
    v = colon + 1;
    while (v < buf + n && (*v == ' ' || *v == '\t'))
        v++;
    vlen = (size_t)(buf + n - v);
    while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
        vlen--;
#define IS(name)                                                                                   \
    ((size_t)(colon - buf) == sizeof(name) - 1 && strncasecmp(buf, name, sizeof(name) - 1) == 0)
    if (IS("Retry-After")) {
        int64_t s = parse_seconds(v, vlen);
        snprintf(x->retry_raw, sizeof(x->retry_raw), "%.*s", (int)vlen, v);
        if (s >= 0) {
            x->retry_after = s;
            x->retry_date[0] = '\0';
        } else if (vlen < sizeof(x->retry_date)) {
            memcpy(x->retry_date, v, vlen);
            x->retry_date[vlen] = '\0';
        }
    } else if (IS("X-Sentry-Rate-Limits")) {
        x->sentry_limit = sentry_limit(v, vlen);
        snprintf(x->limits_raw, sizeof(x->limits_raw), "%.*s", (int)vlen, v);
    } else if (IS("Date") && vlen < 64) {
        char tmp[64];
        time_t t;
        memcpy(tmp, v, vlen);
        tmp[vlen] = '\0';
        t = curl_getdate(tmp, NULL);
        x->date = t == (time_t)-1 ? -1 : (int64_t)t;
    }
#undef IS
    return len;
}

static size_t on_body(char *buf, size_t size, size_t nitems, void *userdata)
{
    struct xfer *x = userdata;
    size_t len = size * nitems;

    (void)buf;
    x->body_seen += len;
    if (x->body_seen > RESPONSE_BODY_MAX)
        return 0; /* CURLE_WRITE_ERROR; the status is already known */
    return len;
}

/* ---- the multi ---------------------------------------------------------------------- */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;

static void global_init(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int sl_deliver_new(const char *allow, long timeout_ms, struct sl_deliver **out)
{
    struct sl_deliver *d;

    *out = NULL;
    if (timeout_ms <= 0)
        return SL_EINVAL;
    pthread_once(&global_once, global_init);
    if (global_rc != CURLE_OK) {
        sl_error("curl_global_init failed", "err=\"%s\"", curl_easy_strerror(global_rc));
        return SL_EIO;
    }
    d = calloc(1, sizeof(*d));
    if (d == NULL)
        return SL_ENOMEM;
    d->allow = strdup(allow ? allow : "");
    d->multi = curl_multi_init();
    d->timeout_ms = timeout_ms;
    if (d->allow == NULL || d->multi == NULL) {
        sl_deliver_free(d);
        return SL_ENOMEM;
    }
    *out = d;
    return 0;
}

static void xfer_free(struct xfer *x)
{
    if (x == NULL)
        return;
    if (x->easy != NULL) {
        if (x->d != NULL && x->d->multi != NULL)
            curl_multi_remove_handle(x->d->multi, x->easy);
        curl_easy_cleanup(x->easy);
    }
    curl_slist_free_all(x->hdrs);
    free(x);
}

static void xfer_unlink(struct sl_deliver *d, struct xfer *x)
{
    if (x->prev)
        x->prev->next = x->next;
    else
        d->head = x->next;
    if (x->next)
        x->next->prev = x->prev;
    x->prev = x->next = NULL;
    d->inflight--;
}

void sl_deliver_free(struct sl_deliver *d)
{
    if (d == NULL)
        return;
    while (d->head != NULL) {
        struct xfer *x = d->head;
        xfer_unlink(d, x);
        xfer_free(x);
    }
    if (d->multi != NULL)
        curl_multi_cleanup(d->multi);
    free(d->allow);
    free(d);
}

int sl_deliver_add(struct sl_deliver *d, uint64_t id, const struct sl_request *rq)
{
    struct xfer *x;
    CURL *e;
    CURLcode c = CURLE_OK;
    int rc = SL_ENOMEM;

    if (d == NULL || rq == NULL || rq->url[0] == '\0' ||
        memchr(rq->url, '\0', sizeof(rq->url)) == NULL || rq->nheaders > SL_PAYLOAD_MAX_HEADERS)
        return SL_EINVAL;
    if (d->inflight >= MAX_INFLIGHT)
        return SL_EFULL;
    x = calloc(1, sizeof(*x));
    if (x == NULL)
        return SL_ENOMEM;
    x->d = d;
    x->id = id;
    x->retry_after = x->sentry_limit = x->date = -1;
    for (size_t i = 0; i < rq->nheaders; i++) {
        struct curl_slist *h;
        if (memchr(rq->headers[i], '\0', sizeof(rq->headers[i])) == NULL) {
            rc = SL_EINVAL;
            goto failed;
        }
        h = curl_slist_append(x->hdrs, rq->headers[i]);
        if (h == NULL)
            goto failed;
        x->hdrs = h;
    }
    {
        /* No "Expect: 100-continue" (curl adds it to larger POSTs): a receiver that does
         * not answer it would cost a second per request. */
        struct curl_slist *h = curl_slist_append(x->hdrs, "Expect:");
        if (h == NULL)
            goto failed;
        x->hdrs = h;
    }
    x->easy = e = curl_easy_init();
    if (e == NULL)
        goto failed;
#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if (c == CURLE_OK)                                                                         \
            c = curl_easy_setopt(e, opt, val);                                                     \
    } while (0)
    SET(CURLOPT_URL, rq->url);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_PROXY, ""); /* no proxy from the environment: see the top of the file */
    SET(CURLOPT_TIMEOUT_MS, d->timeout_ms);
    SET(CURLOPT_POST, 1L);
    SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body.len);
    /* COPYPOSTFIELDS copies POSTFIELDSIZE bytes (set first), so the body need not be a
     * string and the caller may free rq at once. */
    SET(CURLOPT_COPYPOSTFIELDS, rq->body.len > 0 ? rq->body.p : "");
    SET(CURLOPT_HTTPHEADER, x->hdrs);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, x);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, x);
    SET(CURLOPT_OPENSOCKETFUNCTION, open_socket);
    SET(CURLOPT_OPENSOCKETDATA, x);
    SET(CURLOPT_ERRORBUFFER, x->errbuf);
    SET(CURLOPT_PRIVATE, x);
#undef SET
    if (c != CURLE_OK) {
        sl_warn("delivery setup failed", "err=\"%s\"", curl_easy_strerror(c));
        rc = c == CURLE_OUT_OF_MEMORY ? SL_ENOMEM : SL_EINVAL;
        goto failed;
    }
    if (curl_multi_add_handle(d->multi, e) != CURLM_OK)
        goto failed;
    x->next = d->head;
    if (d->head)
        d->head->prev = x;
    d->head = x;
    d->inflight++;
    return 0;
failed:
    x->d = NULL; /* not in the multi */
    xfer_free(x);
    return rc;
}

/* Fill the result of a finished transfer. */
static void xfer_result(struct xfer *x, CURLcode code, struct sl_deliver_result *r)
{
    long status = 0;

    memset(r, 0, sizeof(*r));
    r->id = x->id;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    r->status = status;
    r->retry_after = x->retry_after;
    memcpy(r->retry_after_raw, x->retry_raw, sizeof(r->retry_after_raw));
    memcpy(r->rate_limits, x->limits_raw, sizeof(r->rate_limits));
    if (r->retry_after < 0 && x->retry_date[0] != '\0') {
        time_t t = curl_getdate(x->retry_date, NULL);
        if (t != (time_t)-1) {
            /* Against the server's Date when it sent one: immune to our clock's skew. */
            int64_t now = x->date >= 0 ? x->date : (int64_t)time(NULL);
            int64_t delta = (int64_t)t - now;
            r->retry_after = delta < 0 ? 0 : delta > RETRY_AFTER_MAX ? RETRY_AFTER_MAX : delta;
        }
    }
    if (r->retry_after < 0)
        r->retry_after = x->sentry_limit;
    if (status == 0 && x->refused) {
        r->refused = true;
        snprintf(r->error, sizeof(r->error), "refused: private address %s", x->refused_addr);
    } else if (code != CURLE_OK && !(status > 0 && code == CURLE_WRITE_ERROR)) {
        snprintf(r->error, sizeof(r->error), "%s",
                 x->errbuf[0] ? x->errbuf : curl_easy_strerror(code));
    }
}

int sl_deliver_run(struct sl_deliver *d, int wait_ms, sl_deliver_cb cb, void *arg)
{
    int64_t deadline = sl_clock_mono_ms() + (wait_ms > 0 ? wait_ms : 0);
    int running = 0;

    if (d == NULL)
        return 0;
    for (;;) {
        CURLMsg *m;
        int left;
        int64_t remain;

        curl_multi_perform(d->multi, &running);
        while ((m = curl_multi_info_read(d->multi, &left)) != NULL) {
            struct xfer *x;
            struct sl_deliver_result r;
            char *priv = NULL;

            if (m->msg != CURLMSG_DONE)
                continue;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
            if (priv == NULL)
                continue;
            x = (struct xfer *)(void *)priv;
            xfer_result(x, m->data.result, &r);
            /* Unlink and free before the callback, so it may add the next request. */
            xfer_unlink(d, x);
            xfer_free(x);
            if (cb != NULL)
                cb(arg, &r);
        }
        if (d->inflight == 0)
            break;
        remain = deadline - sl_clock_mono_ms();
        if (remain <= 0)
            break;
        if (curl_multi_poll(d->multi, NULL, 0, (int)(remain > 1000 ? 1000 : remain), NULL) !=
            CURLM_OK)
            break;
    }
    return (int)d->inflight;
}
