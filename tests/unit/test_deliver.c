/* Unit tests for rules/deliver.c (include/sluice/deliver.h). A tiny HTTP receiver runs in
 * a thread on 127.0.0.1:0: it accepts one connection, reads one request (head and
 * Content-Length body), answers with a scripted response (or never answers), and stops
 * itself after a bounded time. Checked: what arrives byte for byte, status and
 * Retry-After handling, no redirects, private-address refusal and the allow list,
 * timeouts, the in-flight bound, the retry schedule and the address table. */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "sluice/buf.h"
#include "sluice/deliver.h"
#include "sluice/log.h"
#include "sluice/payload.h"

#define RCV_MAX (1u << 20)

struct rcv {
    int lfd;
    int port;
    const char *response; /* raw bytes to answer with; NULL: read, then never answer */
    size_t resp_len;
    int accept_ms; /* how long to wait for a connection */
    int hold_ms;   /* without a response: how long to keep the connection open */
    char *req;     /* what arrived: head and body */
    size_t req_len;
    size_t head_len; /* bytes up to and including the blank line */
    int conns;       /* connections accepted */
    pthread_t th;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool wait_fd(int fd, short ev, int ms)
{
    struct pollfd p = {.fd = fd, .events = ev};
    int rc;
    do
        rc = poll(&p, 1, ms);
    while (rc < 0 && errno == EINTR);
    return rc == 1;
}

/* Content-Length of the request head, or 0. */
static size_t content_length(const char *head, size_t n)
{
    const char *p = head, *end = head + n;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL)
            break;
        if ((size_t)(eol - p) > 15 && strncasecmp(p, "Content-Length:", 15) == 0)
            return (size_t)strtoul(p + 15, NULL, 10);
        p = eol + 1;
    }
    return 0;
}

static void *rcv_main(void *arg)
{
    struct rcv *r = arg;
    int fd = -1;
    int64_t deadline;

    if (wait_fd(r->lfd, POLLIN, r->accept_ms))
        fd = accept(r->lfd, NULL, NULL);
    if (fd < 0)
        goto out;
    r->conns++;
    deadline = mono_ms() + 5000; /* bounded whatever the client does */
    while (r->req_len < RCV_MAX - 1 && mono_ms() < deadline) {
        ssize_t n;
        char *hdr_end;

        if (!wait_fd(fd, POLLIN, 100))
            continue;
        n = read(fd, r->req + r->req_len, RCV_MAX - 1 - r->req_len);
        if (n <= 0)
            break;
        r->req_len += (size_t)n;
        r->req[r->req_len] = '\0';
        hdr_end = strstr(r->req, "\r\n\r\n");
        if (hdr_end != NULL) {
            r->head_len = (size_t)(hdr_end + 4 - r->req);
            if (r->req_len >= r->head_len + content_length(r->req, r->head_len))
                break;
        }
    }
    if (r->response != NULL) {
        size_t off = 0;
        while (off < r->resp_len) {
            ssize_t n = write(fd, r->response + off, r->resp_len - off);
            if (n <= 0)
                break;
            off += (size_t)n;
        }
        shutdown(fd, SHUT_WR);
        wait_fd(fd, POLLIN, 1000); /* let the client read and close first */
    } else {
        char sink[256];
        int64_t end = mono_ms() + r->hold_ms;
        while (mono_ms() < end && (!wait_fd(fd, POLLIN, 50) || read(fd, sink, sizeof(sink)) > 0))
            ;
    }
    close(fd);
out:
    /* Stop listening so a second (redirected) request would be refused, not queued. */
    close(r->lfd);
    r->lfd = -1;
    return NULL;
}

static struct rcv *rcv_start(const char *response, size_t resp_len)
{
    struct rcv *r = calloc(1, sizeof(*r));
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t sl = sizeof(sa);

    assert_non_null(r);
    r->req = calloc(1, RCV_MAX);
    assert_non_null(r->req);
    r->response = response;
    r->resp_len = resp_len ? resp_len : (response ? strlen(response) : 0);
    r->accept_ms = 5000;
    r->hold_ms = 3000;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    r->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(r->lfd >= 0);
    assert_int_equal(bind(r->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(r->lfd, 4), 0);
    assert_int_equal(getsockname(r->lfd, (struct sockaddr *)&sa, &sl), 0);
    r->port = ntohs(sa.sin_port);
    assert_int_equal(pthread_create(&r->th, NULL, rcv_main, r), 0);
    return r;
}

/* Wait for the receiver thread to finish (it always does, within its bounds). */
static void rcv_join(struct rcv *r)
{
    pthread_join(r->th, NULL);
}

static void rcv_free(struct rcv *r)
{
    free(r->req);
    free(r);
}

static void rcv_stop(struct rcv *r)
{
    rcv_join(r);
    rcv_free(r);
}

/* A request to the receiver with a few headers and a body of n bytes. */
static void make_request(struct sl_request *rq, int port, const char *path, size_t n)
{
    memset(rq, 0, sizeof(*rq));
    sl_buf_init(&rq->body, 1u << 20);
    snprintf(rq->url, sizeof(rq->url), "http://127.0.0.1:%d%s", port, path);
    rq->nheaders = 3;
    strcpy(rq->headers[0], "Content-Type: application/json");
    strcpy(rq->headers[1], "webhook-id: al-42.firing.oncall");
    strcpy(rq->headers[2], "User-Agent: sluice");
    for (size_t i = 0; i < n; i++)
        assert_int_equal(sl_buf_addc(&rq->body, (char)('a' + i % 26)), 0);
}

struct got {
    int calls;
    struct sl_deliver_result r;
};

static void on_done(void *arg, const struct sl_deliver_result *r)
{
    struct got *g = arg;
    g->calls++;
    g->r = *r;
}

/* Deliver rq and wait (bounded) for its result. */
static struct sl_deliver_result deliver_one(const char *allow, long timeout_ms,
                                            struct sl_request *rq)
{
    struct sl_deliver *d = NULL;
    struct got g = {0};
    int64_t end = mono_ms() + 10000;

    assert_int_equal(sl_deliver_new(allow, timeout_ms, &d), 0);
    assert_int_equal(sl_deliver_add(d, 77, rq), 0);
    sl_buf_free(&rq->body); /* the request was copied */
    while (sl_deliver_run(d, 200, on_done, &g) > 0 && mono_ms() < end)
        ;
    assert_int_equal(g.calls, 1);
    assert_int_equal(g.r.id, 77);
    sl_deliver_free(d);
    return g.r;
}

static bool has_header_line(const struct rcv *r, const char *line)
{
    char want[600];
    snprintf(want, sizeof(want), "\r\n%s\r\n", line);
    return memmem(r->req, r->head_len, want, strlen(want)) != NULL;
}

static void test_delivered_2xx_exact_bytes(void **state)
{
    static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    struct rcv *r = rcv_start(resp, 0);
    struct sl_request rq;
    struct sl_deliver_result res;
    char body[3000];
    (void)state;

    make_request(&rq, r->port, "/hook?x=1", sizeof(body));
    memcpy(body, rq.body.p, sizeof(body));
    res = deliver_one("127.0.0.1", 5000, &rq);
    rcv_join(r);
    assert_int_equal(res.status, 200);
    assert_int_equal(res.retry_after, -1);
    assert_false(res.refused);
    assert_string_equal(res.error, "");

    assert_int_equal(r->conns, 1);
    assert_true(strncmp(r->req, "POST /hook?x=1 HTTP/1.1\r\n", 25) == 0);
    assert_true(has_header_line(r, "Content-Type: application/json"));
    assert_true(has_header_line(r, "webhook-id: al-42.firing.oncall"));
    assert_true(has_header_line(r, "User-Agent: sluice"));
    assert_true(has_header_line(r, "Content-Length: 3000"));
    assert_null(memmem(r->req, r->head_len, "Expect:", 7));
    assert_null(memmem(r->req, r->head_len, "Proxy", 5));
    assert_int_equal(r->req_len - r->head_len, sizeof(body));
    assert_memory_equal(r->req + r->head_len, body, sizeof(body));
    rcv_free(r);
}

static void test_429_retry_after_seconds(void **state)
{
    static const char resp[] =
        "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\nContent-Length: 0\r\n\r\n";
    struct rcv *r = rcv_start(resp, 0);
    struct sl_request rq;
    struct sl_deliver_result res;
    (void)state;

    make_request(&rq, r->port, "/", 10);
    res = deliver_one("127.0.0.1", 5000, &rq);
    rcv_stop(r);
    assert_int_equal(res.status, 429);
    assert_int_equal(res.retry_after, 7);
    assert_false(res.refused);
}

static void http_date(time_t t, char *out, size_t n)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, n, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

/* The HTTP-date is taken relative to the response's Date, so a skewed server clock does
 * not matter: Date an hour in the past, Retry-After two minutes after it -> 120. */
static void test_503_retry_after_http_date(void **state)
{
    char resp[512], d1[64], d2[64];
    struct rcv *r;
    struct sl_request rq;
    struct sl_deliver_result res;
    time_t base = time(NULL) - 3600;
    (void)state;

    http_date(base, d1, sizeof(d1));
    http_date(base + 120, d2, sizeof(d2));
    snprintf(resp, sizeof(resp),
             "HTTP/1.1 503 Service Unavailable\r\nDate: %s\r\nRetry-After: %s\r\n"
             "Content-Length: 0\r\n\r\n",
             d1, d2);
    r = rcv_start(resp, 0);
    make_request(&rq, r->port, "/", 10);
    res = deliver_one("127.0.0.1", 5000, &rq);
    rcv_stop(r);
    assert_int_equal(res.status, 503);
    assert_int_equal(res.retry_after, 120);

    /* Without a Date header: against our clock. */
    http_date(time(NULL) + 90, d2, sizeof(d2));
    snprintf(resp, sizeof(resp),
             "HTTP/1.1 503 Service Unavailable\r\nRetry-After: %s\r\nContent-Length: 0\r\n\r\n",
             d2);
    r = rcv_start(resp, 0);
    make_request(&rq, r->port, "/", 10);
    res = deliver_one("127.0.0.1", 5000, &rq);
    rcv_stop(r);
    assert_int_equal(res.status, 503);
    assert_true(res.retry_after >= 85 && res.retry_after <= 90);
}

static void test_sentry_rate_limits_header(void **state)
{
    static const char resp[] =
        "HTTP/1.1 429 Too Many Requests\r\n"
        "X-Sentry-Rate-Limits: 60:error:key, 2700:default;error:organization\r\n"
        "Content-Length: 0\r\n\r\n";
    struct rcv *r = rcv_start(resp, 0);
    struct sl_request rq;
    struct sl_deliver_result res;
    (void)state;

    make_request(&rq, r->port, "/", 1);
    res = deliver_one("127.0.0.1", 5000, &rq);
    rcv_stop(r);
    assert_int_equal(res.status, 429);
    assert_int_equal(res.retry_after, 2700);
}

static void test_301_not_followed(void **state)
{
    char resp[256];
    struct rcv *r;
    struct sl_request rq;
    struct sl_deliver_result res;
    (void)state;

    /* Location points at a port that is not listening: following it would fail. */
    snprintf(resp, sizeof(resp),
             "HTTP/1.1 301 Moved Permanently\r\nLocation: http://127.0.0.1:9/elsewhere\r\n"
             "Content-Length: 0\r\n\r\n");
    r = rcv_start(resp, 0);
    make_request(&rq, r->port, "/hook", 10);
    res = deliver_one("127.0.0.1", 5000, &rq);
    rcv_join(r);
    assert_int_equal(res.status, 301);
    assert_false(res.refused);
    assert_string_equal(res.error, "");
    assert_int_equal(r->conns, 1);
    rcv_free(r);
}

static void test_refused_private_unless_allowed(void **state)
{
    struct rcv *r = rcv_start("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 0);
    struct sl_request rq;
    struct sl_deliver_result res;
    (void)state;

    r->accept_ms = 1500;
    make_request(&rq, r->port, "/", 10);
    res = deliver_one("", 5000, &rq);
    assert_int_equal(res.status, 0);
    assert_true(res.refused);
    assert_string_equal(res.error, "refused: private address 127.0.0.1");
    make_request(&rq, r->port, "/", 10);
    res = deliver_one("10.0.0.1, ::1", 5000, &rq); /* others allowed, not this one */
    assert_true(res.refused);
    rcv_join(r);
    assert_int_equal(r->conns, 0); /* nothing ever connected */
    rcv_free(r);
}

static void test_allowed_forms(void **state)
{
    static const char *const allows[] = {"127.0.0.1", "*", "10.0.0.1, 127.0.0.1 ",
                                         "::ffff:127.0.0.1", "localhost"};
    (void)state;

    for (size_t i = 0; i < sizeof(allows) / sizeof(allows[0]); i++) {
        struct rcv *r = rcv_start("HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n", 0);
        struct sl_request rq;
        struct sl_deliver_result res;

        make_request(&rq, r->port, "/", 10);
        res = deliver_one(allows[i], 5000, &rq);
        rcv_stop(r);
        if (res.status != 202)
            fail_msg("allow \"%s\": status %ld error %s", allows[i], res.status, res.error);
        assert_false(res.refused);
    }
}

/* Refused before any connection: no receiver needed. */
static void test_refused_literal_forms(void **state)
{
    static const struct {
        const char *url, *addr;
    } cases[] = {
        {"http://[::1]:9/", "::1"},
        {"http://[::ffff:127.0.0.1]:9/", "127.0.0.1"},
        {"http://127.1:9/", "127.0.0.1"},
        {"http://0.0.0.0:9/", "0.0.0.0"},
        {"http://[fe80::1]:9/", "fe80::1"},
        {"http://169.254.169.254/latest/meta-data/", "169.254.169.254"},
        {"http://[::127.0.0.1]:9/", "::127.0.0.1"},
        {"http://198.18.0.1:9/", "198.18.0.1"},
        {"http://198.19.255.254:9/", "198.19.255.254"},
        {"http://192.0.0.170:9/", "192.0.0.170"},
        {"http://240.0.0.1:9/", "240.0.0.1"},
        {"http://255.255.255.255:9/", "255.255.255.255"},
        {"http://[64:ff9b::7f00:1]:9/", "64:ff9b::7f00:1"},
        {"http://[2002:7f00:1::1]:9/", "2002:7f00:1::1"},
        {"http://[ff02::1]:9/", "ff02::1"},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sl_request rq;
        struct sl_deliver_result res;
        char want[128];

        make_request(&rq, 9, "/", 1);
        snprintf(rq.url, sizeof(rq.url), "%s", cases[i].url);
        res = deliver_one("", 3000, &rq);
        snprintf(want, sizeof(want), "refused: private address %s", cases[i].addr);
        if (!res.refused || res.status != 0 || strcmp(res.error, want) != 0)
            fail_msg("%s: refused=%d status=%ld error=%s", cases[i].url, res.refused, res.status,
                     res.error);
    }
}

static void test_other_protocols_rejected(void **state)
{
    struct sl_request rq;
    struct sl_deliver_result res;
    (void)state;

    make_request(&rq, 9, "/", 1);
    snprintf(rq.url, sizeof(rq.url), "file:///etc/passwd");
    res = deliver_one("*", 3000, &rq);
    assert_int_equal(res.status, 0);
    assert_false(res.refused);
    assert_true(res.error[0] != '\0');
}

static void test_timeout_no_answer(void **state)
{
    struct rcv *r = rcv_start(NULL, 0);
    struct sl_request rq;
    struct sl_deliver_result res;
    int64_t t0 = mono_ms(), took;
    (void)state;

    r->hold_ms = 2000;
    make_request(&rq, r->port, "/", 10);
    res = deliver_one("127.0.0.1", 300, &rq);
    took = mono_ms() - t0;
    rcv_stop(r);
    assert_int_equal(res.status, 0);
    assert_false(res.refused);
    assert_non_null(strstr(res.error, "timed out"));
    assert_true(took >= 250 && took < 1500);
}

static void test_large_response_body_bounded(void **state)
{
    size_t n = 200000, hl;
    char *resp = malloc(n + 128);
    struct rcv *r;
    struct sl_request rq;
    struct sl_deliver_result res;
    (void)state;

    assert_non_null(resp);
    hl = (size_t)snprintf(resp, 128, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", n);
    memset(resp + hl, 'z', n);
    r = rcv_start(resp, hl + n);
    make_request(&rq, r->port, "/", 10);
    res = deliver_one("127.0.0.1", 5000, &rq);
    rcv_stop(r);
    free(resp);
    assert_int_equal(res.status, 200); /* delivered; the rest of the body is not read */
    assert_string_equal(res.error, "");
}

static void test_inflight_bound(void **state)
{
    struct sl_deliver *d = NULL;
    struct sl_request rq;
    struct got g = {0};
    int64_t end = mono_ms() + 10000;
    (void)state;

    make_request(&rq, 9, "/", 5);
    assert_int_equal(sl_deliver_new("", 3000, &d), 0);
    for (uint64_t i = 0; i < 64; i++)
        assert_int_equal(sl_deliver_add(d, i, &rq), 0);
    assert_int_equal(sl_deliver_add(d, 64, &rq), SL_EFULL);
    while (sl_deliver_run(d, 100, on_done, &g) > 0 && mono_ms() < end)
        ;
    assert_int_equal(g.calls, 64);
    assert_true(g.r.refused);
    assert_int_equal(sl_deliver_add(d, 65, &rq), 0); /* room again */
    sl_deliver_free(d);                              /* frees one still in flight */
    sl_buf_free(&rq.body);
}

static void test_bad_arguments(void **state)
{
    struct sl_deliver *d = NULL;
    struct sl_request rq;
    (void)state;

    assert_int_equal(sl_deliver_new("", 0, &d), SL_EINVAL);
    assert_null(d);
    assert_int_equal(sl_deliver_new("", 1000, &d), 0);
    make_request(&rq, 9, "/", 1);
    rq.url[0] = '\0';
    assert_int_equal(sl_deliver_add(d, 1, &rq), SL_EINVAL);
    assert_int_equal(sl_deliver_run(d, 0, on_done, NULL), 0);
    sl_buf_free(&rq.body);
    sl_deliver_free(d);
    sl_deliver_free(NULL);
}

static void test_retry_schedule(void **state)
{
    static const int64_t want[] = {5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400};
    (void)state;

    assert_int_equal(sl_retry_delay(0, 0.5), 0);
    for (int a = 1; a <= 9; a++) {
        int64_t b = want[a - 1];
        assert_int_equal(sl_retry_delay(a, 0.5), b); /* the middle of the jitter */
        assert_int_equal(sl_retry_delay(a, 0.0), (int64_t)llround(0.9 * (double)b));
        for (double r = 0.0; r < 1.0; r += 0.0625) {
            int64_t v = sl_retry_delay(a, r);
            assert_true(v >= (int64_t)(0.9 * (double)b) && v <= (int64_t)(1.1 * (double)b + 1));
        }
        assert_true(sl_retry_delay(a, 0.999999) <= (int64_t)llround(1.1 * (double)b));
        /* out-of-range r is clamped, not trusted */
        assert_true(sl_retry_delay(a, -3.0) == sl_retry_delay(a, 0.0));
        assert_true(sl_retry_delay(a, 7.0) <= (int64_t)llround(1.1 * (double)b));
        assert_true(sl_retry_delay(a, NAN) == sl_retry_delay(a, 0.0));
    }
    assert_int_equal(sl_retry_delay(10, 0.5), -1);
    assert_int_equal(sl_retry_delay(1000, 0.5), -1);
    assert_int_equal(sl_retry_delay(1, 0.0), 5);  /* 4.5 rounds up */
    assert_int_equal(sl_retry_delay(1, 0.99), 5); /* 5.49 */
}

static void test_addr_table(void **state)
{
    static const struct {
        const char *host;
        bool priv;
    } t[] = {
        {"127.0.0.1", true},
        {"127.255.255.254", true},
        {"10.1.2.3", true},
        {"172.16.0.1", true},
        {"172.31.255.255", true},
        {"172.15.0.1", false},
        {"172.32.0.1", false},
        {"192.168.1.1", true},
        {"192.169.1.1", false},
        {"169.254.169.254", true},
        {"0.0.0.0", true},
        {"0.1.2.3", true},
        {"100.64.0.1", true},
        {"100.127.255.255", true},
        {"100.63.255.255", false},
        {"100.128.0.0", false},
        {"8.8.8.8", false},
        {"1.1.1.1", false},
        {"::1", true},
        {"[::1]", true},
        {"::", true},
        {"fc00::1", true},
        {"fdff:ffff::1", true},
        {"fe80::1", true},
        {"fe80::1%eth0", true},
        {"febf::1", true},
        {"fec0::1", true}, /* site-local, deprecated: never a public destination */
        {"2001:db8::1", true},
        {"2606:4700::1111", false},
        {"::ffff:127.0.0.1", true},
        {"::ffff:10.0.0.1", true},
        {"::ffff:8.8.8.8", false},
        {"::ffff:7f00:1", true},
        {"127.1", true},
        {"0x7f.0.0.1", true},
        {"2130706433", true},
        {"localhost", true},
        {"LOCALHOST", true},
        {"foo.localhost", true},
        {"example.com", false},
        {"cafe.be", false},
        {"", false},
        {"127.0.0.1.nip.io", false},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        if (sl_addr_is_private(t[i].host) != t[i].priv)
            fail_msg("sl_addr_is_private(\"%s\") != %d", t[i].host, t[i].priv);
    assert_false(sl_addr_is_private(NULL));
}

/* Every special-purpose range of the IANA registries: its first and last address, and
 * the public neighbours on either side, which must stay allowed (issue 13, item 7). */
static void test_special_purpose_ranges(void **state)
{
    static const struct {
        const char *host;
        bool priv;
    } t[] = {
        /* IPv4 */
        {"0.0.0.0", true},
        {"0.255.255.255", true},
        {"1.0.0.0", false},
        {"9.255.255.255", false},
        {"10.0.0.0", true},
        {"10.255.255.255", true},
        {"11.0.0.0", false},
        {"100.63.255.255", false},
        {"100.64.0.0", true},
        {"100.127.255.255", true},
        {"100.128.0.0", false},
        {"126.255.255.255", false},
        {"127.0.0.0", true},
        {"127.255.255.255", true},
        {"128.0.0.0", false},
        {"169.253.255.255", false},
        {"169.254.0.0", true},
        {"169.254.255.255", true},
        {"169.255.0.0", false},
        {"172.15.255.255", false},
        {"172.16.0.0", true},
        {"172.31.255.255", true},
        {"172.32.0.0", false},
        {"191.255.255.255", false},
        {"192.0.0.0", true},
        {"192.0.0.9", true},
        {"192.0.0.255", true},
        {"192.0.1.0", false},
        {"192.0.1.255", false},
        {"192.0.2.0", true},
        {"192.0.2.255", true},
        {"192.0.3.0", false},
        {"192.88.98.255", false},
        {"192.88.99.0", true},
        {"192.88.99.255", true},
        {"192.88.100.0", false},
        {"192.167.255.255", false},
        {"192.168.0.0", true},
        {"192.168.255.255", true},
        {"192.169.0.0", false},
        {"198.17.255.255", false},
        {"198.18.0.0", true},
        {"198.19.255.255", true},
        {"198.20.0.0", false},
        {"198.51.99.255", false},
        {"198.51.100.0", true},
        {"198.51.100.255", true},
        {"198.51.101.0", false},
        {"203.0.112.255", false},
        {"203.0.113.0", true},
        {"203.0.113.255", true},
        {"203.0.114.0", false},
        {"223.255.255.255", false},
        {"224.0.0.0", true},
        {"239.255.255.255", true},
        {"240.0.0.0", true},
        {"255.255.255.254", true},
        {"255.255.255.255", true},
        {"8.8.8.8", false},
        {"192.31.196.1", false},
        {"192.52.193.1", false},
        /* IPv6: unspecified, loopback, IPv4-compatible ::/96 (the whole block) */
        {"::", true},
        {"::1", true},
        {"[::127.0.0.1]", true},
        {"::127.0.0.1", true},
        {"::8.8.8.8", true},
        {"::ffff:ffff", true},
        {"::1:0:0", true},
        /* IPv4-mapped ::ffff:0:0/96: the embedded address decides */
        {"::ffff:127.0.0.1", true},
        {"::ffff:198.18.0.1", true},
        {"::ffff:240.0.0.1", true},
        {"::ffff:192.0.0.1", true},
        {"::ffff:8.8.8.8", false},
        {"::ffff:1.1.1.1", false},
        /* SIIT ::ffff:0:0:0/96 (RFC 2765): the same */
        {"::ffff:0:7f00:1", true},
        {"::ffff:0:808:808", false},
        /* NAT64 64:ff9b::/96: the same; the local-use 64:ff9b:1::/48 always */
        {"64:ff9b::7f00:1", true},
        {"64:ff9b::10.0.0.1", true},
        {"64:ff9b::a9fe:a9fe", true},
        {"64:ff9b::808:808", false},
        {"64:ff9b::1.1.1.1", false},
        {"64:ff9b:1::1", true},
        {"64:ff9b:1:ffff:ffff:ffff:ffff:ffff", true},
        /* 100::/64 discard-only, and the rest outside 2000::/3 */
        {"100::", true},
        {"100::ffff:ffff:ffff:ffff", true},
        {"100:0:0:1::", true},
        {"1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true},
        {"4000::1", true},
        {"5f00::1", true},
        {"e000::1", true},
        /* 2001::/23 (Teredo, benchmarking, ORCHID ...) */
        {"2000:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false},
        {"2001::", true},
        {"2001:0:4136:e378:8000:63bf:3fff:fdd2", true},
        {"2001:2::1", true},
        {"2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff", true},
        {"2001:200::", false},
        /* 2001:db8::/32 documentation */
        {"2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", false},
        {"2001:db8::", true},
        {"2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", true},
        {"2001:db9::", false},
        /* 3fff::/20 documentation */
        {"3ffe:ffff::1", false},
        {"3fff::", true},
        {"3fff:fff::1", true},
        {"3fff:1000::", false},
        /* 6to4 2002::/16: the embedded address decides */
        {"2002:7f00:1::1", true},
        {"2002:a00:1::", true},
        {"2002:c612:1::1", true},
        {"2002:f000::1", true},
        {"2002:808:808::1", false},
        {"2002:101:101::", false},
        /* fc00::/7, fe80::/10, fec0::/10, ff00::/8 */
        {"fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true}, /* outside 2000::/3 anyway */
        {"fc00::", true},
        {"fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true},
        {"fe80::", true},
        {"febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true},
        {"fec0::1", true},
        {"ff00::", true},
        {"ff02::1", true},
        {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true},
        /* global unicast */
        {"2000::", false},
        {"2606:4700:4700::1111", false},
        {"2a00:1450:4001::200e", false},
        {"3ffe::1", false},
        {"2003::1", false},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        if (sl_addr_is_private(t[i].host) != t[i].priv)
            fail_msg("sl_addr_is_private(\"%s\") != %d", t[i].host, t[i].priv);
}

/* A name is judged by the address it resolves to, not by its text: "localhost" goes
 * through curl's resolver and is refused at connect time, with a receiver listening. */
static void test_refused_name_resolving_private(void **state)
{
    struct rcv *r = rcv_start("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 0);
    struct sl_request rq;
    struct sl_deliver_result res;
    (void)state;

    r->accept_ms = 1500;
    make_request(&rq, r->port, "/", 10);
    snprintf(rq.url, sizeof(rq.url), "http://localhost:%d/", r->port);
    res = deliver_one("::1", 5000, &rq);
    assert_int_equal(res.status, 0);
    assert_true(res.refused);
    assert_non_null(strstr(res.error, "refused: private address "));
    rcv_join(r);
    assert_int_equal(r->conns, 0);
    rcv_free(r);
}

/* The allow list's "127.0.0.1" (the tests' escape hatch) admits exactly that address:
 * not ::127.0.0.1, which some stacks route to it (issue 13, item 7). */
static void test_refused_ipv4_compatible_with_allow(void **state)
{
    struct rcv *r = rcv_start("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 0);
    struct sl_request rq;
    struct sl_deliver_result res;
    (void)state;

    r->accept_ms = 1500;
    make_request(&rq, r->port, "/", 10);
    snprintf(rq.url, sizeof(rq.url), "http://[::127.0.0.1]:%d/", r->port);
    res = deliver_one("127.0.0.1", 5000, &rq);
    assert_int_equal(res.status, 0);
    assert_true(res.refused);
    assert_string_equal(res.error, "refused: private address ::127.0.0.1");
    rcv_join(r);
    assert_int_equal(r->conns, 0);
    rcv_free(r);
}

static void test_allow_table(void **state)
{
    static const struct {
        const char *allow, *host;
        bool ok;
    } t[] = {
        {"", "127.0.0.1", false},
        {"*", "10.0.0.1", true},
        {"127.0.0.1,::1", "::1", true},
        {"127.0.0.1,::1", "0:0::1", true},
        {"127.0.0.1,::1", "[::1]", true},
        {"127.0.0.1,::1", "127.0.0.2", false},
        {" 10.0.0.1 , 127.0.0.1 ", "127.0.0.1", true},
        {"127.0.0.1", "::ffff:127.0.0.1", true},
        {"::ffff:10.0.0.5", "10.0.0.5", true},
        {"localhost", "localhost", true},
        {"127.0.0.1", "localhost", false},
        {"10.0.0.1", "10.0.0.10", false},
        {",,", "10.0.0.1", false},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        if (sl_deliver_allowed(t[i].allow, t[i].host) != t[i].ok)
            fail_msg("sl_deliver_allowed(\"%s\", \"%s\") != %d", t[i].allow, t[i].host, t[i].ok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_delivered_2xx_exact_bytes),
        cmocka_unit_test(test_429_retry_after_seconds),
        cmocka_unit_test(test_503_retry_after_http_date),
        cmocka_unit_test(test_sentry_rate_limits_header),
        cmocka_unit_test(test_301_not_followed),
        cmocka_unit_test(test_refused_private_unless_allowed),
        cmocka_unit_test(test_allowed_forms),
        cmocka_unit_test(test_refused_literal_forms),
        cmocka_unit_test(test_other_protocols_rejected),
        cmocka_unit_test(test_timeout_no_answer),
        cmocka_unit_test(test_large_response_body_bounded),
        cmocka_unit_test(test_inflight_bound),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_retry_schedule),
        cmocka_unit_test(test_addr_table),
        cmocka_unit_test(test_allow_table),
        cmocka_unit_test(test_special_purpose_ranges),
        cmocka_unit_test(test_refused_name_resolving_private),
        cmocka_unit_test(test_refused_ipv4_compatible_with_allow),
    };

    if (getenv("SLUICE_TEST_VERBOSE") == NULL)
        sl_log_min_level = (enum sl_log_level)(SL_LOG_ERROR + 1);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
