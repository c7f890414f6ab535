/* Load generator for the sluice drain endpoint: behaves like logplex posting to an
 * HTTPS drain, as fast as the server answers.
 *
 *   loadgen --url https://NAME:TOKEN@127.0.0.1:PORT/logs [--connections N] [--lines TOTAL]
 *           [--lines-per-body N] [--duration-max SECONDS] [--gzip] [--rate LINES_PER_S]
 *           [--json-share PCT] [--latency-log FILE]
 *   loadgen --syslog tcp://127.0.0.1:PORT [--hostname NAME] [--connections N] [--lines TOTAL]
 *           [--lines-per-body N] [--duration-max SECONDS]
 *
 * --syslog: the same lines as octet-counted RFC 5424 frames (RFC 6587 §3.4.1) over plain
 * TCP, for syslog receivers (sluice's SLUICE_SYSLOG_PORT, rsyslog imptcp, syslog-ng
 * syslog()). Each line gets the nil STRUCTURED-DATA "-" that strict RFC 5424 requires
 * (logplex omits it) and HOSTNAME NAME (default "host"; sluice takes only d.<token>). Lines
 * are written in chunks of --lines-per-body, as fast as the receiver reads them; a chunk
 * counts as done once the kernel has taken all of its bytes (there is no answer in syslog):
 * the caller measures the end by polling the receiver's database.
 *
 * --json-share PCT: PCT % of the lines are structured loggers' JSON (slog/pino/structlog
 * shaped: nested user, numbers, a few with a text prefix, ~220 bytes) instead of the mix
 * below (which holds 12.5 % JSON app lines already), for the JSON-lines ingest figures
 * (docs/search.md, "JSON lines").
 *
 * --rate (HTTP/HTTPS only): at most LINES_PER_S lines per second over all connections (the
 * next request waits until its lines are due), for a steady background load; default: as
 * fast as the server answers.
 *
 * --latency-log FILE: one line per answered request, "SENT_EPOCH_S LATENCY_MS", in the
 * order answered, to line slow requests up with what else ran (tests/bench/retention.sh).
 *
 * N keep-alive connections, one request in flight on each (logplex's model). Every body is
 * generated before the clock starts: octet-counted RFC 5424 frames (RFC 6587 §3.4.1) shaped
 * like the stream corpus (router logfmt lines and app lines, ~150-250 bytes), each line made
 * unique by a sequence number. Latency is measured from queueing a request to reading its
 * whole response. For https the TLS session is checked after the handshake (no certificate
 * verification: the bench uses a self-signed one).
 *
 * Prints a human summary and one "RESULT key=value ..." line for scripts. Exits 0 only when
 * every request got a 204; 1 when any failed or the time ran out; 2 on bad usage.
 *
 * One thread, one libevent loop. Not part of the server. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <zlib.h>

#define MAX_CONNS 4096
#define MAX_RESPONSE_HEAD (64 * 1024)

struct req {
    char *p; /* the whole request: head + body */
    size_t len;
    int lines;
};

struct conn {
    int id;
    struct bufferevent *bev;
    long cur;         /* index of the request in flight, -1 when idle */
    double sent_at;
    bool connected;
    bool tls_checked;
    long q_reqs;  /* syslog: chunks queued on this connection since its buffer was empty */
    long q_lines;
    struct event *pace; /* --rate: fires when this connection's next request is due */
};

static struct {
    /* options */
    bool tls;
    char host[256];
    char port[16];
    char path[512];
    char user[256];
    char pass[256];
    int nconns;
    long lines;
    int per_body;
    double duration_max;
    bool gzip;
    bool syslog;
    char hostname[256];
    double rate; /* lines/s over all connections; 0: unpaced */
    int json_share; /* --json-share: % of lines that are structured JSON */
    double pace_start;

    /* state */
    struct event_base *base;
    SSL_CTX *ssl_ctx;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    struct req *reqs;
    long nreqs;
    long next;       /* next request to send */
    long done;       /* requests answered or failed */
    double *lat;     /* seconds, per answered request */
    double *lat_at;  /* when each was sent, epoch seconds (--latency-log) */
    const char *latency_log;
    long nlat;
    long lines_ok;
    long status_2xx, status_other, failed;
    long statuses[6]; /* 1xx..5xx by first digit */
    long reconnects;
    double first_send, last_done, first_send_epoch;
    bool timed_out;
    struct conn conns[MAX_CONNS];
    char tls_desc[128];
} G;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double epoch_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *msg)
{
    fprintf(stderr, "loadgen: %s\n", msg);
    exit(2);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: loadgen --url http[s]://NAME:TOKEN@HOST:PORT/logs [--connections N]\n"
            "               [--lines TOTAL] [--lines-per-body N] [--duration-max SECONDS]"
            " [--gzip] [--rate LINES_PER_S] [--json-share PCT]\n"
            "               [--latency-log FILE]\n"
            "       loadgen --syslog tcp://HOST:PORT [--hostname NAME] [--connections N]\n"
            "               [--lines TOTAL] [--lines-per-body N] [--duration-max SECONDS]\n");
    exit(2);
}

/* ------------------------------------------------------------------ URL */

static void copy_part(char *dst, size_t cap, const char *p, size_t n)
{
    if (n >= cap)
        die("URL part too long");
    memcpy(dst, p, n);
    dst[n] = '\0';
}

static void parse_url(const char *url)
{
    const char *p, *at, *slash, *colon, *hostp;

    if (G.syslog) {
        if (strncmp(url, "tcp://", 6) != 0)
            die("--syslog must start with tcp://");
        G.tls = false;
        p = url + 6;
    } else if (strncmp(url, "https://", 8) == 0) {
        G.tls = true;
        p = url + 8;
    } else if (strncmp(url, "http://", 7) == 0) {
        G.tls = false;
        p = url + 7;
    } else {
        die("--url must start with http:// or https://");
    }
    if (G.syslog && strpbrk(p, "@/") != NULL) {
        die("--syslog takes tcp://HOST:PORT only");
    }
    slash = strchr(p, '/');
    if (slash == NULL)
        slash = p + strlen(p);
    copy_part(G.path, sizeof(G.path), *slash ? slash : "/", *slash ? strlen(slash) : 1);
    at = memchr(p, '@', (size_t)(slash - p));
    hostp = p;
    if (at) {
        colon = memchr(p, ':', (size_t)(at - p));
        if (colon == NULL)
            die("--url credentials must be NAME:TOKEN");
        copy_part(G.user, sizeof(G.user), p, (size_t)(colon - p));
        copy_part(G.pass, sizeof(G.pass), colon + 1, (size_t)(at - colon - 1));
        hostp = at + 1;
    }
    colon = memchr(hostp, ':', (size_t)(slash - hostp));
    if (colon) {
        copy_part(G.host, sizeof(G.host), hostp, (size_t)(colon - hostp));
        copy_part(G.port, sizeof(G.port), colon + 1, (size_t)(slash - colon - 1));
    } else {
        copy_part(G.host, sizeof(G.host), hostp, (size_t)(slash - hostp));
        snprintf(G.port, sizeof(G.port), "%s", G.tls ? "443" : "80");
    }
}

static void resolve(void)
{
    struct addrinfo hints, *res = NULL;
    int rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    rc = getaddrinfo(G.host, G.port, &hints, &res);
    if (rc != 0 || res == NULL) {
        fprintf(stderr, "loadgen: cannot resolve %s:%s: %s\n", G.host, G.port, gai_strerror(rc));
        exit(2);
    }
    memcpy(&G.addr, res->ai_addr, res->ai_addrlen);
    G.addrlen = (socklen_t)res->ai_addrlen;
    freeaddrinfo(res);
}

/* ------------------------------------------------------------------ bodies */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rnd(void)
{
    /* xorshift64*: cheap and deterministic, so runs are comparable */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}

static const char *const methods[] = {"GET", "GET", "GET", "POST", "PUT"};
static const char *const paths[] = {"/", "/login", "/search?q=widgets", "/api/v1/items/4711",
                                    "/assets/app-3f2a9c.js", "/healthz"};
static const int statuses[] = {200, 200, 200, 201, 302, 304, 404, 500};
static const char *const app_msgs[] = {
    "{\"level\":\"info\",\"msg\":\"request\",\"path\":\"/search\",\"status\":200,\"dur_ms\":%d,"
    "\"seq\":%ld}",
    "level=info msg=\"job finished\" queue=default job=SendEmailJob duration_ms=%d seq=%ld",
    "source=DATABASE addon=postgresql-curly-12345 sample#db_size=7602816984bytes "
    "sample#active-connections=%d seq=%ld",
    "Completed 200 OK in %dms (Views: 3.1ms | ActiveRecord: 1.2ms | Allocations: 2210) "
    "seq=%ld",
};

static const char *const levels[] = {"info", "info", "info", "debug", "warn", "error"};

/* A structured logger's JSON line for seq (one in 8 after a text prefix). */
static int make_json_line(char *dst, size_t cap, long seq, const char *ts)
{
    uint64_t r = rnd();
    static const char *const procs[] = {"web.1", "web.2", "worker.1", "api.1"};
    int k = snprintf(dst, cap, "<190>1 %s %s app %s - %s%s", ts, G.hostname, procs[(r >> 8) % 4],
                     G.syslog ? "- " : "", (r >> 12) % 8 == 0 ? "2026-12-07T03:00:00Z INFO " : "");

    return k + snprintf(dst + k, cap - (size_t)k,
                        "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":\"request handled\","
                        "\"route\":\"%s\",\"status\":%d,\"latency_ms\":%u.%u,"
                        "\"user\":{\"id\":%u,\"plan\":\"%s\"},\"ok\":%s,\"seq\":%ld}",
                        ts, levels[(r >> 16) % 6], paths[(r >> 20) % 6], statuses[(r >> 24) % 8],
                        (unsigned)(r >> 28) % 3000, (unsigned)(r >> 40) % 10,
                        (unsigned)(r >> 44) % 100000, (r >> 60) % 2 ? "pro" : "free",
                        (r >> 62) % 2 ? "true" : "false", seq);
}

/* Writes one message (no length prefix) for line seq into dst; returns its length. */
static int make_line(char *dst, size_t cap, long seq, const char *ts)
{
    uint64_t r = rnd();
    int n;

    if (G.json_share > 0 && (int)(rnd() % 100) < G.json_share) {
        n = make_json_line(dst, cap, seq, ts);
    } else if (r % 2 == 0) {
        uint64_t r2 = rnd();
        n = snprintf(dst, cap,
                     "<158>1 %s %s heroku router - %sat=info method=%s path=\"%s\" "
                     "host=bench.herokuapp.com request_id=%08lx-%04x-4%03x-a%03x-%012" PRIx64
                     " fwd=\"%u.%u.%u.%u\" dyno=web.%u connect=%ums service=%ums status=%d "
                     "bytes=%u protocol=https",
                     ts, G.hostname, G.syslog ? "- " : "", methods[(r >> 8) % 5], paths[(r >> 12) % 6], (unsigned long)seq,
                     (unsigned)(r >> 16) & 0xffff, (unsigned)(r >> 32) & 0xfff,
                     (unsigned)(r >> 44) & 0xfff, (uint64_t)(r2 & 0xffffffffffffull),
                     (unsigned)(r2 >> 48) & 0xff, (unsigned)(r2 >> 40) & 0xff,
                     (unsigned)(r2 >> 32) & 0xff, (unsigned)(r2 >> 24) & 0xff,
                     (unsigned)(r2 % 4) + 1, (unsigned)(r2 >> 8) % 5,
                     (unsigned)(r2 >> 12) % 900, statuses[(r2 >> 20) % 8],
                     (unsigned)(r2 >> 28) % 90000);
    } else {
        static const char *const procs[] = {"web.1", "web.2", "worker.1", "api.1"};
        const char *proc = procs[(r >> 8) % 4];
        int k = snprintf(dst, cap, "<190>1 %s %s app %s - %s", ts, G.hostname, proc,
                         G.syslog ? "- " : "");
        /* The format is one of app_msgs, chosen at random; all take (int, long). */
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
#endif
        n = k + snprintf(dst + k, cap - (size_t)k, app_msgs[(r >> 16) % 4],
                         (int)((r >> 24) % 900), seq);
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
    }
    if (n < 0 || (size_t)n >= cap)
        die("line too long");
    return n;
}

static void b64(const char *in, size_t n, char *out, size_t cap)
{
    if (4 * ((n + 2) / 3) + 1 > cap)
        die("credentials too long");
    EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)in, (int)n);
}

/* gzip src into a new buffer; caller frees. */
static char *gzip_buf(const char *src, size_t len, size_t *outlen)
{
    z_stream z;
    size_t cap = len + len / 100 + 1024;
    char *out = malloc(cap);

    if (out == NULL)
        die("out of memory");
    memset(&z, 0, sizeof(z));
    if (deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        die("deflateInit2 failed");
    z.next_in = (Bytef *)(uintptr_t)src;
    z.avail_in = (uInt)len;
    z.next_out = (Bytef *)out;
    z.avail_out = (uInt)cap;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END)
        die("deflate failed");
    *outlen = cap - z.avail_out;
    deflateEnd(&z);
    return out;
}

static void build_requests(void)
{
    char auth[800], cred[600], ts[64], line[1024];
    char *body;
    size_t bodycap = (size_t)G.per_body * 1100 + 64;
    long seq = 0;
    uint64_t run_id;
    struct timespec now;
    struct tm tm;

    clock_gettime(CLOCK_REALTIME, &now);
    rng_state ^= (uint64_t)now.tv_nsec;
    run_id = rnd();
    snprintf(cred, sizeof(cred), "%s:%s", G.user, G.pass);
    b64(cred, strlen(cred), auth, sizeof(auth));
    G.nreqs = (G.lines + G.per_body - 1) / G.per_body;
    G.reqs = calloc((size_t)G.nreqs, sizeof(*G.reqs));
    G.lat = calloc((size_t)G.nreqs, sizeof(*G.lat));
    if (G.latency_log)
        G.lat_at = calloc((size_t)G.nreqs, sizeof(*G.lat_at));
    body = malloc(bodycap);
    if (G.reqs == NULL || G.lat == NULL || body == NULL || (G.latency_log && G.lat_at == NULL))
        die("out of memory");
    gmtime_r(&now.tv_sec, &tm);
    for (long i = 0; i < G.nreqs; i++) {
        size_t blen = 0, head_len, sendlen;
        int nlines = (int)(G.lines - seq < G.per_body ? G.lines - seq : G.per_body);
        char head[2048];
        char *gz = NULL;
        const char *payload;

        for (int j = 0; j < nlines; j++, seq++) {
            /* timestamps advance 10 µs per line from the start, like a busy app */
            long us = (long)(now.tv_nsec / 1000) + seq * 10;
            struct tm t = tm;
            char base[32];
            t.tm_sec += (int)(us / 1000000);
            timegm(&t);
            strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &t);
            snprintf(ts, sizeof(ts), "%s.%06ld+00:00", base, us % 1000000);
            int n = make_line(line, sizeof(line), seq, ts);
            int k = snprintf(body + blen, bodycap - blen, "%d %s", n, line);
            if (k < 0 || (size_t)k >= bodycap - blen)
                die("body too long");
            blen += (size_t)k;
        }
        payload = body;
        sendlen = blen;
        if (G.syslog) { /* no HTTP: the chunk is the frames */
            G.reqs[i].p = malloc(blen);
            if (G.reqs[i].p == NULL)
                die("out of memory");
            memcpy(G.reqs[i].p, body, blen);
            G.reqs[i].len = blen;
            G.reqs[i].lines = nlines;
            continue;
        }
        if (G.gzip) {
            gz = gzip_buf(body, blen, &sendlen);
            payload = gz;
        }
        head_len = (size_t)snprintf(
            head, sizeof(head),
            "POST %s HTTP/1.1\r\n"
            "Host: %s:%s\r\n"
            "Authorization: Basic %s\r\n"
            "Content-Type: application/logplex-1\r\n"
            "%s"
            "Logplex-Msg-Count: %d\r\n"
            "Logplex-Frame-Id: %016" PRIx64 "%010ld\r\n"
            "Logplex-Drain-Token: d.bench\r\n"
            "User-Agent: Logplex/v123 (sluice loadgen)\r\n"
            "Content-Length: %zu\r\n"
            "\r\n",
            G.path, G.host, G.port, auth, G.gzip ? "Content-Encoding: gzip\r\n" : "", nlines,
            run_id, i, sendlen);
        G.reqs[i].p = malloc(head_len + sendlen);
        if (G.reqs[i].p == NULL)
            die("out of memory");
        memcpy(G.reqs[i].p, head, head_len);
        memcpy(G.reqs[i].p + head_len, payload, sendlen);
        G.reqs[i].len = head_len + sendlen;
        G.reqs[i].lines = nlines;
        free(gz);
    }
    free(body);
}

/* ------------------------------------------------------------------ connections */

static void conn_open(struct conn *c);
static void send_next(struct conn *c);

static void maybe_finish(void)
{
    if (G.done >= G.nreqs)
        event_base_loopexit(G.base, NULL);
}

static void request_failed(struct conn *c, const char *why)
{
    if (c->cur >= 0) {
        if (G.failed < 10)
            fprintf(stderr, "loadgen: request %ld on connection %d failed: %s\n", c->cur, c->id,
                    why);
        G.failed++;
        G.done++;
        G.last_done = now_s();
        c->cur = -1;
    }
    maybe_finish();
}

/* Close c and, while there is work left, open a new connection in its place. */
static void conn_reset(struct conn *c)
{
    if (c->bev) {
        bufferevent_free(c->bev);
        c->bev = NULL;
    }
    if (c->pace)
        evtimer_del(c->pace);
    c->connected = false;
    if (G.next < G.nreqs && !G.timed_out) {
        if (++G.reconnects > 10L * G.nconns + 100) {
            fprintf(stderr, "loadgen: too many reconnects; giving up\n");
            G.timed_out = true;
            event_base_loopexit(G.base, NULL);
            return;
        }
        conn_open(c);
    }
}

/* Parse a whole response at the head of the input buffer. Returns 1 when one was consumed,
 * 0 when more bytes are needed, -1 on garbage. */
static int read_response(struct conn *c, int *status, bool *close_after)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
    size_t head_len, clen = 0;
    char *head;

    if (end.pos < 0)
        return evbuffer_get_length(in) > MAX_RESPONSE_HEAD ? -1 : 0;
    head_len = (size_t)end.pos + 4;
    head = malloc(head_len + 1);
    if (head == NULL)
        return -1;
    evbuffer_copyout(in, head, head_len);
    head[head_len] = '\0';
    if (sscanf(head, "HTTP/1.%*d %d", status) != 1) {
        free(head);
        return -1;
    }
    *close_after = false;
    for (char *l = strstr(head, "\r\n"); l && l[2] != '\r'; l = strstr(l + 2, "\r\n")) {
        const char *h = l + 2;
        if (strncasecmp(h, "content-length:", 15) == 0)
            clen = (size_t)strtoull(h + 15, NULL, 10);
        else if (strncasecmp(h, "connection:", 11) == 0 && strstr(h, "close") != NULL &&
                 strstr(h, "close") < strstr(h, "\r\n"))
            *close_after = true;
    }
    free(head);
    if (evbuffer_get_length(in) < head_len + clen)
        return 0;
    evbuffer_drain(in, head_len + clen);
    return 1;
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    int status = 0;
    bool close_after = false;
    int r;

    (void)bev;
    r = read_response(c, &status, &close_after);
    if (r == 0)
        return;
    if (r < 0 || c->cur < 0) {
        request_failed(c, "bad response");
        conn_reset(c);
        return;
    }
    {
        double t = now_s();
        if (G.lat_at)
            G.lat_at[G.nlat] = G.first_send_epoch + (c->sent_at - G.first_send);
        G.lat[G.nlat++] = t - c->sent_at;
        G.last_done = t;
    }
    if (status >= 100 && status < 600)
        G.statuses[status / 100]++;
    if (status == 204) { /* sluice's only success answer to a drain POST */
        G.status_2xx++;
        G.lines_ok += G.reqs[c->cur].lines;
    } else {
        if (G.status_other < 10)
            fprintf(stderr, "loadgen: request %ld got status %d\n", c->cur, status);
        G.status_other++;
    }
    G.done++;
    c->cur = -1;
    maybe_finish();
    if (close_after)
        conn_reset(c);
    else
        send_next(c);
}

/* syslog: the output buffer is empty (connected, or libevent handed everything to the
 * kernel). What was queued is done; queue the next chunks, or half-close when none is left. */
static void syslog_fill(struct conn *c)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);

    if (evbuffer_get_length(out) != 0)
        return;
    if (c->q_reqs) {
        G.done += c->q_reqs;
        G.lines_ok += c->q_lines;
        G.status_2xx += c->q_reqs;
        G.last_done = now_s();
        c->q_reqs = c->q_lines = 0;
    }
    /* A few chunks at a time keep the socket buffer full without queueing everything on
     * the first connection. */
    for (int k = 0; k < 4 && G.next < G.nreqs && !G.timed_out; k++) {
        struct req *r = &G.reqs[G.next++];
        if (G.first_send == 0) {
            G.first_send = now_s();
            G.first_send_epoch = epoch_s();
        }
        if (evbuffer_add_reference(out, r->p, r->len, NULL, NULL) != 0)
            die("evbuffer_add_reference failed");
        c->q_reqs++;
        c->q_lines += r->lines;
    }
    if (c->q_reqs == 0)
        shutdown(bufferevent_getfd(c->bev), SHUT_WR);
    maybe_finish();
}

static void on_write(struct bufferevent *bev, void *arg)
{
    (void)bev;
    syslog_fill(arg);
}

static void check_tls(struct conn *c)
{
    SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
    const SSL_CIPHER *cipher;

    if (ssl == NULL || !SSL_is_init_finished(ssl) ||
        (cipher = SSL_get_current_cipher(ssl)) == NULL) {
        fprintf(stderr, "loadgen: connection %d: TLS session not established\n", c->id);
        exit(1);
    }
    if (G.tls_desc[0] == '\0')
        snprintf(G.tls_desc, sizeof(G.tls_desc), "%s %s", SSL_get_version(ssl),
                 SSL_CIPHER_get_name(cipher));
    c->tls_checked = true;
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct conn *c = arg;

    (void)bev;
    if (what & BEV_EVENT_CONNECTED) {
        c->connected = true;
        if (G.tls)
            check_tls(c);
        if (G.syslog)
            syslog_fill(c);
        else
            send_next(c);
        return;
    }
    if (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF)) {
        char why[256];
        unsigned long e = G.tls ? bufferevent_get_openssl_error(c->bev) : 0;
        if (e)
            ERR_error_string_n(e, why, sizeof(why));
        else
            snprintf(why, sizeof(why), "%s%s",
                     (what & BEV_EVENT_EOF) ? "connection closed" : "socket error: ",
                     (what & BEV_EVENT_EOF) ? "" : strerror(EVUTIL_SOCKET_ERROR()));
        if (G.syslog && c->q_reqs) {
            fprintf(stderr, "loadgen: connection %d: %s with %ld chunks unsent\n", c->id, why,
                    c->q_reqs);
            G.failed += c->q_reqs;
            G.done += c->q_reqs;
            c->q_reqs = c->q_lines = 0;
            maybe_finish();
        } else if (c->cur >= 0)
            request_failed(c, why);
        else if (!c->connected)
            fprintf(stderr, "loadgen: connection %d: %s\n", c->id, why);
        conn_reset(c);
    }
}

static void conn_open(struct conn *c)
{
    int one = 1;
    evutil_socket_t fd = socket(G.addr.ss_family, SOCK_STREAM, 0);

    /* Without TCP_NODELAY the tail of each request waits for the server's delayed ACK
     * (~40 ms per request on loopback): the bench would measure Nagle, not sluice. */
    if (fd < 0 || setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0 ||
        evutil_make_socket_nonblocking(fd) != 0)
        die("socket setup failed");
    if (G.tls) {
        SSL *ssl = SSL_new(G.ssl_ctx);
        if (ssl == NULL)
            die("SSL_new failed");
        SSL_set_tlsext_host_name(ssl, G.host);
        c->bev = bufferevent_openssl_socket_new(G.base, fd, ssl, BUFFEREVENT_SSL_CONNECTING,
                                                BEV_OPT_CLOSE_ON_FREE);
    } else {
        c->bev = bufferevent_socket_new(G.base, fd, BEV_OPT_CLOSE_ON_FREE);
    }
    if (c->bev == NULL)
        die("bufferevent_socket_new failed");
    c->cur = -1;
    c->connected = false;
    /* One request is one write where the socket buffer allows (libevent's default is
     * 16 KiB per write). */
    bufferevent_set_max_single_write(c->bev, 4 * 1024 * 1024);
    c->q_reqs = c->q_lines = 0;
    bufferevent_setcb(c->bev, G.syslog ? NULL : on_read, G.syslog ? on_write : NULL, on_event,
                      c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&G.addr, (int)G.addrlen) < 0) {
        fprintf(stderr, "loadgen: connect to %s:%s failed\n", G.host, G.port);
        bufferevent_free(c->bev);
        c->bev = NULL;
        exit(1);
    }
}

static void on_pace(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;

    (void)fd;
    (void)what;
    if (c->bev != NULL && c->connected && c->cur < 0)
        send_next(c);
}

static void send_next(struct conn *c)
{
    struct req *r;

    if (G.next >= G.nreqs || G.timed_out)
        return;
    if (G.rate > 0) { /* request i is due when the lines before it are, at G.rate */
        double now = now_s(), due;
        if (G.pace_start == 0)
            G.pace_start = now;
        due = G.pace_start + (double)G.next * G.per_body / G.rate;
        if (due > now) {
            struct timeval tv;
            double d = due - now;
            tv.tv_sec = (time_t)d;
            tv.tv_usec = (suseconds_t)((d - (double)tv.tv_sec) * 1e6);
            evtimer_add(c->pace, &tv);
            return;
        }
    }
    c->cur = G.next++;
    r = &G.reqs[c->cur];
    c->sent_at = now_s();
    if (G.first_send == 0) {
        G.first_send = c->sent_at;
        G.first_send_epoch = epoch_s();
    }
    /* The request bytes stay ours; libevent only references them. */
    if (evbuffer_add_reference(bufferevent_get_output(c->bev), r->p, r->len, NULL, NULL) != 0)
        request_failed(c, "evbuffer_add_reference failed");
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    fprintf(stderr, "loadgen: --duration-max reached with %ld of %ld requests answered\n", G.done,
            G.nreqs);
    G.timed_out = true;
    event_base_loopexit(G.base, NULL);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double p)
{
    long i;
    if (G.nlat == 0)
        return 0;
    i = (long)(p * (double)(G.nlat - 1) + 0.5);
    return G.lat[i];
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"url", required_argument, NULL, 'u'},
        {"connections", required_argument, NULL, 'c'},
        {"lines", required_argument, NULL, 'n'},
        {"lines-per-body", required_argument, NULL, 'b'},
        {"duration-max", required_argument, NULL, 'd'},
        {"gzip", no_argument, NULL, 'z'},
        {"syslog", required_argument, NULL, 's'},
        {"hostname", required_argument, NULL, 'H'},
        {"rate", required_argument, NULL, 'r'},
        {"json-share", required_argument, NULL, 'j'},
        {"latency-log", required_argument, NULL, 'L'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *url = NULL;
    struct event *deadline;
    struct timeval tv;
    double t_gen, elapsed;
    long unanswered;
    int o;

    G.nconns = 4;
    G.lines = 100000;
    G.per_body = 100;
    G.duration_max = 300;
    snprintf(G.hostname, sizeof(G.hostname), "host");
    while ((o = getopt_long(argc, argv, "u:c:n:b:d:zs:H:r:j:L:h", opts, NULL)) != -1) {
        switch (o) {
        case 'u': url = optarg; break;
        case 'c': G.nconns = atoi(optarg); break;
        case 'n': G.lines = atol(optarg); break;
        case 'b': G.per_body = atoi(optarg); break;
        case 'd': G.duration_max = atof(optarg); break;
        case 'z': G.gzip = true; break;
        case 'r': G.rate = atof(optarg); break;
        case 'j': G.json_share = atoi(optarg); break;
        case 'L': G.latency_log = optarg; break;
        case 's':
            url = optarg;
            G.syslog = true;
            break;
        case 'H':
            if (strlen(optarg) == 0 || strlen(optarg) >= sizeof(G.hostname) ||
                strpbrk(optarg, " \t\r\n") != NULL)
                usage();
            snprintf(G.hostname, sizeof(G.hostname), "%s", optarg);
            break;
        default: usage();
        }
    }
    if (url == NULL || optind != argc || G.nconns < 1 || G.nconns > MAX_CONNS || G.lines < 1 ||
        G.per_body < 1 || G.per_body > 100000 || G.duration_max <= 0 || (G.syslog && G.gzip) ||
        G.rate < 0 || (G.syslog && G.rate > 0) || G.json_share < 0 || G.json_share > 100)
        usage();
    parse_url(url);
    resolve();

    t_gen = now_s();
    build_requests();
    t_gen = now_s() - t_gen;

    if (G.tls) {
        G.ssl_ctx = SSL_CTX_new(TLS_client_method());
        if (G.ssl_ctx == NULL)
            die("SSL_CTX_new failed");
        SSL_CTX_set_verify(G.ssl_ctx, SSL_VERIFY_NONE, NULL); /* self-signed bench cert */
    }
    G.base = event_base_new();
    if (G.base == NULL)
        die("event_base_new failed");
    tv.tv_sec = (time_t)G.duration_max;
    tv.tv_usec = (suseconds_t)((G.duration_max - (double)tv.tv_sec) * 1e6);
    deadline = evtimer_new(G.base, on_deadline, NULL);
    evtimer_add(deadline, &tv);
    for (int i = 0; i < G.nconns; i++) {
        G.conns[i].id = i;
        G.conns[i].cur = -1;
        G.conns[i].pace = evtimer_new(G.base, on_pace, &G.conns[i]);
        if (G.conns[i].pace == NULL)
            die("evtimer_new failed");
        conn_open(&G.conns[i]);
    }
    event_base_dispatch(G.base);

    unanswered = G.nreqs - G.done;
    elapsed = G.last_done > G.first_send ? G.last_done - G.first_send : 0;
    if (G.latency_log) { /* before the sort: one line per answered request, in order */
        FILE *f = fopen(G.latency_log, "w");
        if (f == NULL)
            die("--latency-log: cannot write the file");
        for (long i = 0; i < G.nlat; i++)
            fprintf(f, "%.6f %.3f\n", G.lat_at[i], G.lat[i] * 1e3);
        fclose(f);
    }
    qsort(G.lat, (size_t)G.nlat, sizeof(*G.lat), cmp_double);
    printf("loadgen: %s %s:%s, %d connections, %ld lines in %ld %s of %d lines%s "
           "(generated in %.2f s)\n",
           G.syslog ? "syslog tcp" : G.tls ? "https" : "http", G.host, G.port, G.nconns, G.lines, G.nreqs,
           G.syslog ? "chunks" : "requests", G.per_body,
           G.gzip ? ", gzip" : "", t_gen);
    if (G.tls)
        printf("loadgen: TLS in use: %s\n", G.tls_desc[0] ? G.tls_desc : "(no handshake)");
    if (G.syslog)
        printf("loadgen: %.2f s, %.0f lines/s written to the kernel (%ld chunks), no answers in "
               "syslog\n",
               elapsed, elapsed > 0 ? (double)G.lines_ok / elapsed : 0, G.status_2xx);
    else
        printf("loadgen: %.2f s, %.0f lines/s accepted, %.0f requests/s, latency p50 %.2f ms "
           "p99 %.2f ms max %.2f ms\n",
           elapsed, elapsed > 0 ? (double)G.lines_ok / elapsed : 0,
           elapsed > 0 ? (double)G.nlat / elapsed : 0, pct(0.50) * 1e3, pct(0.99) * 1e3,
           G.nlat ? G.lat[G.nlat - 1] * 1e3 : 0);
    printf("loadgen: statuses 2xx=%ld 4xx=%ld 5xx=%ld other=%ld, non-2xx %ld, failed %ld, "
           "unanswered %ld, reconnects %ld\n",
           G.statuses[2], G.statuses[4], G.statuses[5],
           G.statuses[1] + G.statuses[3], G.status_other, G.failed, unanswered, G.reconnects);
    printf("RESULT lines_ok=%ld requests=%ld elapsed_s=%.4f lines_per_s=%.0f req_per_s=%.0f "
           "p50_ms=%.3f p99_ms=%.3f max_ms=%.3f non2xx=%ld failed=%ld unanswered=%ld "
           "first_send_epoch=%.6f tls=%s\n",
           G.lines_ok, G.nlat, elapsed, elapsed > 0 ? (double)G.lines_ok / elapsed : 0,
           elapsed > 0 ? (double)G.nlat / elapsed : 0, pct(0.50) * 1e3, pct(0.99) * 1e3,
           G.nlat ? G.lat[G.nlat - 1] * 1e3 : 0, G.status_other, G.failed, unanswered,
           G.first_send_epoch, G.tls ? (G.tls_desc[0] ? "yes" : "no") : "off");

    for (int i = 0; i < G.nconns; i++) {
        if (G.conns[i].bev)
            bufferevent_free(G.conns[i].bev);
        if (G.conns[i].pace)
            event_free(G.conns[i].pace);
    }
    event_free(deadline);
    event_base_free(G.base);
    if (G.ssl_ctx)
        SSL_CTX_free(G.ssl_ctx);
    for (long i = 0; i < G.nreqs; i++)
        free(G.reqs[i].p);
    free(G.reqs);
    free(G.lat);
    return (G.status_other || G.failed || unanswered || G.timed_out) ? 1 : 0;
}
