/* sluice serve configuration: environment variables (twelve-factor: PORT,
 * DATABASE_URL, SLUICE_*), overridden by command-line flags. One table in
 * drain/config.c lists every setting with its default and help text; `sluice serve
 * --help` and docs/configuration.md are generated from the same facts. */
#ifndef SLUICE_CONFIG_H
#define SLUICE_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "sluice/err.h"

struct sl_config {
    char *database_url;
    char *bind;
    int http_port;
    int https_port;
    char *tls_cert;
    char *tls_key;
    int syslog_tls_port;
    int syslog_port;
    char *spool_dir;
    char *public_url;
    int64_t spool_max_bytes;
    int64_t spool_segment_bytes;
    bool fsync;
    int64_t max_body;
    int64_t max_message;
    int64_t max_header;
    int64_t max_inflight;
    int64_t max_connections;
    int64_t max_per_address;
    int64_t head_timeout;
    char *metrics_token;
    int64_t idle_timeout;
    int64_t request_timeout;
    int64_t batch_rows;
    int64_t shutdown_grace;
    char *log_level;
    char *alert_allow_private;
    int64_t alert_timeout;
    int64_t search_workers;
    int64_t search_timeout;
    char *search_day_level;
    int64_t search_answer_bytes;
    int64_t search_token_jobs;
    int64_t tail_buffer;
    int64_t max_tail_clients;
    int64_t tail_replay;
    bool crashes;
    char *sentry_dsn;
    int64_t crash_gap_ms;
    int64_t crash_settle_ms;
    int64_t crash_max_lines;
    int64_t crash_max_bytes;
    int64_t retention_batch_rows;
    int64_t retention_pause_ms;
    int64_t retention_interval;
    int64_t retention_wal_rate;
    int64_t compact_after_hours;
    int64_t disk_budget;
    bool disk_filesystem;
    int64_t disk_evict_pct;
    int64_t disk_refuse_pct;
    int64_t disk_hysteresis_pct;
    int64_t disk_check_interval;
};

/* Fill c from defaults, then the environment, then argv (flags "--name value" or
 * "--name=value"). Returns 0, SL_EINVAL with a message on stderr, or 1 when --help
 * was printed. Strings are owned by c: free with sl_config_free. */
SL_MUSTCHECK int sl_config_load(struct sl_config *c, int argc, char **argv);
void sl_config_free(struct sl_config *c);
/* Print the settings table (name, flag, default, meaning). */
void sl_config_usage(FILE *f);

#endif
