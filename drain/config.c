/* Configuration of `sluice serve`: one table of settings, read from defaults, then
 * the environment, then flags. Runs once on the main thread before anything starts. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sluice/config.h"

enum opt_type { T_STR, T_INT, T_SIZE, T_BOOL, T_PORT };

struct opt {
    const char *env;
    const char *flag;
    enum opt_type type;
    size_t off;
    const char *def;
    const char *help;
};

#define O(f) offsetof(struct sl_config, f)
static const struct opt opts[] = {
    {"DATABASE_URL", "database-url", T_STR, O(database_url), "postgresql:///sluice",
     "PostgreSQL connection URI (libpq)"},
    {"SLUICE_BIND", "bind", T_STR, O(bind), "0.0.0.0", "address every listener binds to"},
    {"PORT", "port", T_PORT, O(http_port), "0",
     "plain HTTP port (behind a TLS-terminating router such as Heroku's); 0 = off"},
    {"SLUICE_HTTPS_PORT", "https-port", T_PORT, O(https_port), "0",
     "HTTPS port (needs SLUICE_TLS_CERT and SLUICE_TLS_KEY); 0 = off"},
    {"SLUICE_TLS_CERT", "tls-cert", T_STR, O(tls_cert), "", "PEM certificate chain for TLS"},
    {"SLUICE_TLS_KEY", "tls-key", T_STR, O(tls_key), "", "PEM private key for TLS"},
    {"SLUICE_SYSLOG_TLS_PORT", "syslog-tls-port", T_PORT, O(syslog_tls_port), "0",
     "syslog over TLS port (RFC 5425, octet counting); 0 = off"},
    {"SLUICE_SYSLOG_PORT", "syslog-port", T_PORT, O(syslog_port), "0",
     "plain TCP syslog port (RFC 6587, octet counting or LF framing); 0 = off"},
    {"SLUICE_SPOOL_DIR", "spool-dir", T_STR, O(spool_dir), "./var/spool",
     "directory of the durable spool (one per node)"},
    {"SLUICE_PUBLIC_URL", "public-url", T_STR, O(public_url), "https://localhost:8443",
     "base URL senders use to reach this server (printed in drain URLs)"},
    {"SLUICE_SPOOL_MAX_BYTES", "spool-max-bytes", T_SIZE, O(spool_max_bytes), "1073741824",
     "cap on unwritten spool bytes; beyond it drains get 503 + Retry-After"},
    {"SLUICE_SPOOL_SEGMENT_BYTES", "spool-segment-bytes", T_SIZE, O(spool_segment_bytes),
     "67108864", "size at which the spool rolls to a new segment file"},
    {"SLUICE_FSYNC", "fsync", T_BOOL, O(fsync), "on",
     "fdatasync the spool before answering 2xx (off only for benchmarks)"},
    {"SLUICE_MAX_BODY_BYTES", "max-body-bytes", T_SIZE, O(max_body), "4194304",
     "largest request body, after gzip decoding (413 beyond)"},
    {"SLUICE_MAX_MESSAGE_BYTES", "max-message-bytes", T_SIZE, O(max_message), "65536",
     "longer messages are stored truncated, with their original length"},
    {"SLUICE_MAX_HEADER_BYTES", "max-header-bytes", T_SIZE, O(max_header), "16384",
     "largest request head (431 beyond)"},
    {"SLUICE_MAX_INFLIGHT_BYTES", "max-inflight-bytes", T_SIZE, O(max_inflight), "268435456",
     "request bytes buffered across all connections (503 beyond)"},
    {"SLUICE_MAX_CONNECTIONS", "max-connections", T_INT, O(max_connections), "1024",
     "open client connections and live-tail streams; idle ones are closed first near the cap"},
    {"SLUICE_MAX_CONNECTIONS_PER_ADDRESS", "max-connections-per-address", T_INT,
     O(max_per_address), "128",
     "connections one client address may hold before they authenticate (0 = no limit)"},
    {"SLUICE_HEAD_TIMEOUT", "head-timeout", T_INT, O(head_timeout), "10",
     "seconds from accept to a whole request head, TLS handshake included (syslog: to the "
     "first line of a known source); an unauthenticated keep-alive gets it between requests"},
    {"SLUICE_METRICS_TOKEN", "metrics-token", T_STR, O(metrics_token), "",
     "Bearer token /metrics asks for; empty = /metrics answers loopback clients only"},
    {"SLUICE_IDLE_TIMEOUT", "idle-timeout", T_INT, O(idle_timeout), "120",
     "seconds a keep-alive or syslog connection may stay silent"},
    {"SLUICE_REQUEST_TIMEOUT", "request-timeout", T_INT, O(request_timeout), "30",
     "seconds from a request's first byte to its whole body (408 beyond)"},
    {"SLUICE_BATCH_ROWS", "batch-rows", T_INT, O(batch_rows), "10000",
     "rows per COPY transaction into PostgreSQL"},
    {"SLUICE_SHUTDOWN_GRACE", "shutdown-grace", T_INT, O(shutdown_grace), "25",
     "seconds SIGTERM waits for in-flight requests and the spool flush"},
    {"SLUICE_LOG_LEVEL", "log-level", T_STR, O(log_level), "info", "debug, info, warn, error"},
    {"SLUICE_ALERT_ALLOW_PRIVATE", "alert-allow-private", T_STR, O(alert_allow_private), "",
     "alert destinations allowed although special-purpose (loopback, private, reserved, "
     "documentation; exact addresses, \"127.0.0.1,::1\"; * = all)"},
    {"SLUICE_ALERT_TIMEOUT", "alert-timeout", T_INT, O(alert_timeout), "20",
     "seconds one alert delivery may take"},
    {"SLUICE_SEARCH_WORKERS", "search-workers", T_INT, O(search_workers), "2",
     "threads (each with its own PostgreSQL connection) answering search requests"},
    {"SLUICE_SEARCH_TIMEOUT", "search-timeout", T_INT, O(search_timeout), "30",
     "seconds one search may run in PostgreSQL, all its statements together (504 beyond)"},
    {"SLUICE_SEARCH_DAY_LEVEL", "search-day-level", T_STR, O(search_day_level), "auto",
     "packed days' day level before their blocks: auto (when at most a quarter of the "
     "window's packed (source, day)s may hold the words), always, off (docs/search.md)"},
    {"SLUICE_SEARCH_ANSWER_BYTES", "search-answer-bytes", T_SIZE, O(search_answer_bytes),
     "16777216",
     "bytes of one search answer; a search stops at it and answers `truncated` with a cursor"},
    {"SLUICE_SEARCH_TOKEN_JOBS", "search-token-jobs", T_INT, O(search_token_jobs), "4",
     "searches one read token may have queued or running (429 beyond)"},
    {"SLUICE_TAIL_BUFFER", "tail-buffer", T_SIZE, O(tail_buffer), "1048576",
     "unsent bytes a live-tail client may fall behind before it skips lines (and is told)"},
    {"SLUICE_MAX_TAIL_CLIENTS", "max-tail-clients", T_INT, O(max_tail_clients), "256",
     "open live-tail streams (503 beyond)"},
    {"SLUICE_TAIL_REPLAY", "tail-replay", T_INT, O(tail_replay), "100000",
     "stored lines a live-tail resume (Last-Event-ID) reaches back; older ones are `missed`"},
    {"SLUICE_CRASHES", "crashes", T_BOOL, O(crashes), "on",
     "join stack traces back into crashes and send them to Sentry (docs/crashes.md)"},
    {"SENTRY_DSN", "sentry-dsn", T_STR, O(sentry_dsn), "",
     "Sentry DSN for the crashes of sources without one of their own (source set)"},
    {"SLUICE_CRASH_GAP_MS", "crash-gap-ms", T_INT, O(crash_gap_ms), "500",
     "silence on a dyno (the lines' own times) that ends a stack trace"},
    {"SLUICE_CRASH_SETTLE_MS", "crash-settle-ms", T_INT, O(crash_settle_ms), "1000",
     "wait after a line is received before assembling (its trace may be on another node)"},
    {"SLUICE_CRASH_MAX_LINES", "crash-max-lines", T_INT, O(crash_max_lines), "2000",
     "lines of one trace; a longer one is cut and sent marked truncated"},
    {"SLUICE_CRASH_MAX_BYTES", "crash-max-bytes", T_SIZE, O(crash_max_bytes), "262144",
     "bytes of one trace; a longer one is cut and sent marked truncated"},
    {"SLUICE_RETENTION_BATCH_ROWS", "retention-batch-rows", T_INT, O(retention_batch_rows),
     "10000", "rows one retention DELETE removes at most (docs/retention.md)"},
    {"SLUICE_RETENTION_PAUSE_MS", "retention-pause-ms", T_INT, O(retention_pause_ms), "1000",
     "least milliseconds between two retention DELETEs (at least 4x the last one's time)"},
    {"SLUICE_RETENTION_WAL_RATE", "retention-wal-rate", T_SIZE, O(retention_wal_rate),
     "524288", "bytes of WAL a second retention's DELETEs write on average (0: no limit)"},
    {"SLUICE_RETENTION_INTERVAL", "retention-interval", T_INT, O(retention_interval), "600",
     "seconds between retention passes (a source change starts one at once)"},
    {"SLUICE_COMPACT_AFTER_HOURS", "compact-after-hours", T_INT, O(compact_after_hours), "24",
     "hours after a day ends before its lines are packed (docs/search.md; 0: never)"},
    {"SLUICE_DISK_BUDGET", "disk-budget", T_SIZE, O(disk_budget), "0",
     "bytes sluice's database may use (pg_database_size; e.g. 50GB); 0: no budget, only the "
     "filesystem figure (docs/retention.md, \"Disk guard\")"},
    {"SLUICE_DISK_FILESYSTEM", "disk-filesystem", T_BOOL, O(disk_filesystem), "on",
     "also watch the used share of PostgreSQL's data directory's filesystem when this host "
     "can see it"},
    {"SLUICE_DISK_EVICT_PCT", "disk-evict-pct", T_INT, O(disk_evict_pct), "85",
     "percent of the budget or filesystem at which the oldest rows of opted-in sources go"},
    {"SLUICE_DISK_REFUSE_PCT", "disk-refuse-pct", T_INT, O(disk_refuse_pct), "95",
     "percent at which ingest is refused (503 + Retry-After; syslog not read)"},
    {"SLUICE_DISK_HYSTERESIS_PCT", "disk-hysteresis-pct", T_INT, O(disk_hysteresis_pct), "5",
     "points under a mark before its state ends (eviction goes down to evict - this)"},
    {"SLUICE_DISK_CHECK_INTERVAL", "disk-check-interval", T_INT, O(disk_check_interval), "30",
     "seconds between two disk checks (the maintenance thread)"},
};
#undef O

static int parse_size(const char *s, int64_t *out)
{
    char *end;
    long long v;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || end == s || v < 0)
        return SL_EINVAL;
    /* kB, MB, GB, TB count in 1024s, as PostgreSQL's sizes do (pg_size_pretty) */
    if (strcasecmp(end, "k") == 0 || strcasecmp(end, "kib") == 0 || strcasecmp(end, "kb") == 0)
        v *= 1024;
    else if (strcasecmp(end, "m") == 0 || strcasecmp(end, "mib") == 0 ||
             strcasecmp(end, "mb") == 0)
        v *= 1024 * 1024;
    else if (strcasecmp(end, "g") == 0 || strcasecmp(end, "gib") == 0 ||
             strcasecmp(end, "gb") == 0)
        v *= 1024LL * 1024 * 1024;
    else if ((strcasecmp(end, "t") == 0 || strcasecmp(end, "tib") == 0 ||
              strcasecmp(end, "tb") == 0) && v < (1LL << 23))
        v *= 1024LL * 1024 * 1024 * 1024;
    else if (*end != '\0')
        return SL_EINVAL;
    *out = v;
    return 0;
}

static int set_opt(struct sl_config *c, const struct opt *o, const char *val)
{
    char *base = (char *)c + o->off;
    int64_t v;

    switch (o->type) {
    case T_STR: {
        char *dup = strdup(val);
        if (dup == NULL)
            return SL_ENOMEM;
        free(*(char **)base);
        *(char **)base = dup;
        return 0;
    }
    case T_BOOL:
        if (!strcasecmp(val, "on") || !strcasecmp(val, "1") || !strcasecmp(val, "true") ||
            !strcasecmp(val, "yes"))
            *(bool *)base = true;
        else if (!strcasecmp(val, "off") || !strcasecmp(val, "0") || !strcasecmp(val, "false") ||
                 !strcasecmp(val, "no"))
            *(bool *)base = false;
        else
            return SL_EINVAL;
        return 0;
    case T_PORT:
        if (parse_size(val, &v) || v > 65535)
            return SL_EINVAL;
        *(int *)base = (int)v;
        return 0;
    case T_INT:
    case T_SIZE:
        if (parse_size(val, &v))
            return SL_EINVAL;
        *(int64_t *)base = v;
        return 0;
    }
    return SL_EINVAL;
}

void sl_config_usage(FILE *f)
{
    fprintf(f, "usage: sluice serve [--flag value ...]\n\n"
               "Settings come from the environment; flags override them.\n\n");
    for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
        fprintf(f, "  %-27s --%-21s default %s\n      %s\n", opts[i].env, opts[i].flag,
                opts[i].def[0] ? opts[i].def : "(none)", opts[i].help);
}

int sl_config_load(struct sl_config *c, int argc, char **argv)
{
    size_t n = sizeof(opts) / sizeof(opts[0]);

    memset(c, 0, sizeof(*c));
    for (size_t i = 0; i < n; i++) {
        const char *env = getenv(opts[i].env);
        if (set_opt(c, &opts[i], opts[i].def))
            return SL_ENOMEM;
        if (env != NULL && env[0] != '\0' && set_opt(c, &opts[i], env)) {
            fprintf(stderr, "sluice: bad value for %s: %s\n", opts[i].env, env);
            return SL_EINVAL;
        }
    }
    for (int a = 0; a < argc; a++) {
        const char *arg = argv[a], *val = NULL, *eq;
        size_t nl;
        const struct opt *o = NULL;

        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            sl_config_usage(stdout);
            return 1;
        }
        if (strncmp(arg, "--", 2) != 0) {
            fprintf(stderr, "sluice: unexpected argument %s (see --help)\n", arg);
            return SL_EINVAL;
        }
        arg += 2;
        eq = strchr(arg, '=');
        nl = eq ? (size_t)(eq - arg) : strlen(arg);
        for (size_t i = 0; i < n; i++)
            if (strlen(opts[i].flag) == nl && !strncmp(opts[i].flag, arg, nl))
                o = &opts[i];
        if (o == NULL) {
            fprintf(stderr, "sluice: unknown flag --%.*s (see --help)\n", (int)nl, arg);
            return SL_EINVAL;
        }
        if (eq)
            val = eq + 1;
        else if (a + 1 < argc)
            val = argv[++a];
        else {
            fprintf(stderr, "sluice: --%s needs a value\n", o->flag);
            return SL_EINVAL;
        }
        if (set_opt(c, o, val)) {
            fprintf(stderr, "sluice: bad value for --%s: %s\n", o->flag, val);
            return SL_EINVAL;
        }
    }
    return 0;
}

void sl_config_free(struct sl_config *c)
{
    for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
        if (opts[i].type == T_STR) {
            char **p = (char **)((char *)c + opts[i].off);
            free(*p);
            *p = NULL;
        }
}
