/* Prometheus text rendering of the process counters (include/sluice/metrics.h).
 * Any thread increments; GET /metrics renders on the event loop. */
#include <time.h>

#include "sluice/metrics.h"
#include "sluice/spool.h"

struct sl_metrics sl_metrics;

static const int statuses[SL_METRICS_STATUSES - 1] = {200, 204, 400, 401, 404, 405, 408,
                                                      411, 413, 415, 431, 500, 503};

void sl_metrics_status(int status)
{
    int i;
    for (i = 0; i < SL_METRICS_STATUSES - 1; i++)
        if (statuses[i] == status)
            break;
    SL_INC(http_status[i], 1);
}

#define LOAD(f) atomic_load_explicit(&sl_metrics.f, memory_order_relaxed)

static int counter(struct sl_buf *b, const char *name, const char *help, uint64_t v)
{
    return sl_buf_addf(b, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name,
                       (unsigned long long)v);
}

static int metric_f(struct sl_buf *b, const char *type, const char *name, const char *help,
                    double v)
{
    return sl_buf_addf(b, "# HELP %s %s\n# TYPE %s %s\n%s %.6f\n", name, help, name, type, name,
                       v);
}

static int gauge(struct sl_buf *b, const char *name, const char *help, double v)
{
    return metric_f(b, "gauge", name, help, v);
}

int sl_metrics_render(struct sl_buf *b, struct sl_spool *spool)
{
    struct sl_spool_stats st = {0};
    struct timespec now;
    uint64_t oldest = LOAD(spool_oldest_us);
    double age = 0;
    int rc;

    clock_gettime(CLOCK_REALTIME, &now);
    if (spool)
        sl_spool_get_stats(spool, &st);
    if (oldest && st.depth_bytes > 0) {
        double nowus = (double)now.tv_sec * 1e6 + (double)now.tv_nsec / 1e3;
        age = (nowus - (double)oldest) / 1e6;
        if (age < 0)
            age = 0;
    }
    rc = sl_buf_addf(b, "# HELP sluice_http_requests_total HTTP responses by status.\n"
                        "# TYPE sluice_http_requests_total counter\n");
    for (int i = 0; i < SL_METRICS_STATUSES && !rc; i++) {
        if (i < SL_METRICS_STATUSES - 1)
            rc = sl_buf_addf(b, "sluice_http_requests_total{status=\"%d\"} %llu\n", statuses[i],
                             (unsigned long long)LOAD(http_status[i]));
        else
            rc = sl_buf_addf(b, "sluice_http_requests_total{status=\"other\"} %llu\n",
                             (unsigned long long)LOAD(http_status[i]));
    }
    if (rc)
        return rc;
    if ((rc = counter(b, "sluice_lines_accepted_total", "Lines framed and spooled.",
                      LOAD(lines_accepted))) ||
        (rc = counter(b, "sluice_bytes_received_total", "Request body bytes as sent.",
                      LOAD(bytes_received))) ||
        (rc = counter(b, "sluice_lines_stored_total", "Lines committed in PostgreSQL.",
                      LOAD(lines_stored))) ||
        (rc = counter(b, "sluice_parse_errors_total",
                      "Lines stored raw with a parse-error mark.", LOAD(parse_errors))) ||
        (rc = counter(b, "sluice_duplicate_frames_total",
                      "Retried requests (same Logplex-Frame-Id) stored once.",
                      LOAD(duplicate_frames))) ||
        (rc = counter(b, "sluice_duplicate_lines_total", "Lines of duplicate frames skipped.",
                      LOAD(duplicate_lines))) ||
        (rc = counter(b, "sluice_msg_count_mismatch_total",
                      "Requests whose Logplex-Msg-Count differed from the frames found.",
                      LOAD(msg_count_mismatch))) ||
        (rc = counter(b, "sluice_truncated_total", "Messages stored truncated.",
                      LOAD(truncated))) ||
        (rc = counter(b, "sluice_invalid_utf8_total",
                      "Messages whose exact bytes went to message_raw.", LOAD(invalid_utf8))))
        return rc;
    rc = sl_buf_addf(b,
                     "# HELP sluice_sender_lost_total Lines senders reported lost "
                     "(logplex L10/L12/L13 notices).\n"
                     "# TYPE sluice_sender_lost_total counter\n"
                     "sluice_sender_lost_total{code=\"L10\"} %llu\n"
                     "sluice_sender_lost_total{code=\"L12\"} %llu\n"
                     "sluice_sender_lost_total{code=\"L13\"} %llu\n",
                     (unsigned long long)LOAD(sender_lost[0]),
                     (unsigned long long)LOAD(sender_lost[1]),
                     (unsigned long long)LOAD(sender_lost[2]));
    if (rc ||
        (rc = counter(b, "sluice_logplex_drop_count_total",
                      "Lines senders reported dropped in Logplex-Drop-Count/-Lost-Count.",
                      LOAD(logplex_drop_count))) ||
        (rc = counter(b, "sluice_copy_batches_total", "COPY transactions committed.",
                      LOAD(copy_batches))) ||
        (rc = counter(b, "sluice_copy_rows_total", "Rows committed by COPY.", LOAD(copy_rows))) ||
        (rc = metric_f(b, "counter", "sluice_copy_seconds_total",
                       "Time spent in COPY transactions.", (double)LOAD(copy_usec) / 1e6)))
        return rc;
    if ((rc = counter(b, "sluice_copy_failures_total", "COPY transactions that failed.",
                      LOAD(copy_failures))) ||
        (rc = gauge(b, "sluice_copy_last_batch_rows", "Rows in the last COPY batch.",
                    (double)LOAD(copy_last_rows))) ||
        (rc = gauge(b, "sluice_connections", "Open client connections.",
                    (double)LOAD(connections))) ||
        (rc = counter(b, "sluice_connections_rejected_total",
                      "Connections closed at accept over the limit.",
                      LOAD(connections_rejected))) ||
        (rc = counter(b, "sluice_connections_rejected_address_total",
                      "Connections closed at accept: their address held "
                      "SLUICE_MAX_CONNECTIONS_PER_ADDRESS unauthenticated ones.",
                      LOAD(connections_rejected_address))) ||
        (rc = counter(b, "sluice_connections_reclaimed_total",
                      "Idle connections closed near the connection cap to make room.",
                      LOAD(connections_reclaimed))) ||
        (rc = counter(b, "sluice_head_timeouts_total",
                      "Connections closed at SLUICE_HEAD_TIMEOUT without a request head.",
                      LOAD(head_timeouts))) ||
        (rc = counter(b, "sluice_accept_paused_total",
                      "Times accepting paused because file descriptors ran out.",
                      LOAD(accept_paused))) ||
        (rc = counter(b, "sluice_syslog_lines_total", "Lines received over syslog.",
                      LOAD(syslog_lines))) ||
        (rc = counter(b, "sluice_syslog_unknown_source_total",
                      "syslog lines whose hostname matched no source (not stored).",
                      LOAD(syslog_unknown_source))) ||
        (rc = counter(b, "sluice_spool_full_total", "Requests refused with 503: spool full.",
                      LOAD(spool_full))) ||
        (rc = gauge(b, "sluice_spool_depth_bytes", "Spooled bytes not yet in PostgreSQL.",
                    (double)st.depth_bytes)) ||
        (rc = gauge(b, "sluice_spool_segments", "Spool segment files on disk.",
                    (double)st.segments)) ||
        (rc = gauge(b, "sluice_spool_full",
                    "1 while the spool disk is full and appends are refused.",
                    st.full ? 1.0 : 0.0)) ||
        (rc = gauge(b, "sluice_spool_fs_free_bytes",
                    "Bytes free on the spool's filesystem.",
                    spool ? (double)sl_spool_fs_free_bytes(spool) : 0.0)) ||
        (rc = counter(b, "sluice_spool_syncs_total", "Spool fdatasync rounds.", st.syncs)) ||
        (rc = counter(b, "sluice_spool_corrupt_records_total",
                      "Spool records that failed their checksum.", st.corrupt_records)) ||
        (rc = gauge(b, "sluice_spool_oldest_age_seconds",
                    "Age of the oldest spooled entry not yet in PostgreSQL.", age)) ||
        (rc = gauge(b, "sluice_db_up", "1 when the last PostgreSQL operation worked.",
                    (double)LOAD(db_up))) ||
        (rc = counter(b, "sluice_alerts_fired_total", "Alerts fired.", LOAD(alerts_fired))) ||
        (rc = counter(b, "sluice_alerts_resolved_total", "Alerts resolved.",
                      LOAD(alerts_resolved))) ||
        (rc = counter(b, "sluice_alert_deliveries_total",
                      "Alert deliveries that got a 2xx.", LOAD(deliveries_ok))) ||
        (rc = counter(b, "sluice_alert_retries_total", "Alert deliveries scheduled again.",
                      LOAD(deliveries_retried))) ||
        (rc = counter(b, "sluice_alert_dead_total",
                      "Alert deliveries given up (dead letters, disabled destinations).",
                      LOAD(deliveries_dead))) ||
        (rc = counter(b, "sluice_rule_limit_hits_total",
                      "Lines where a rule hit its PCRE2 match/depth limit.",
                      LOAD(rule_limit_hits))))
        return rc;
    if ((rc = counter(b, "sluice_crashes_assembled_total",
                      "Crashes joined from stored lines (docs/crashes.md).",
                      LOAD(crashes_assembled))) ||
        (rc = counter(b, "sluice_crashes_sent_total", "Crash envelopes Sentry accepted.",
                      LOAD(crashes_sent))) ||
        (rc = sl_buf_addf(b,
                          "# HELP sluice_crashes_dropped_total Crashes not sent to Sentry, by "
                          "reason.\n# TYPE sluice_crashes_dropped_total counter\n"
                          "sluice_crashes_dropped_total{reason=\"rate_limited\"} %llu\n"
                          "sluice_crashes_dropped_total{reason=\"no_dsn\"} %llu\n"
                          "sluice_crashes_dropped_total{reason=\"refused\"} %llu\n"
                          "sluice_crashes_dropped_total{reason=\"dead\"} %llu\n",
                          (unsigned long long)LOAD(crashes_dropped[0]),
                          (unsigned long long)LOAD(crashes_dropped[1]),
                          (unsigned long long)LOAD(crashes_dropped[2]),
                          (unsigned long long)LOAD(crashes_dropped[3]))) ||
        (rc = gauge(b, "sluice_crash_anchors_pending",
                    "Stored trace lines not yet assembled (all nodes; sampled every 5 s).",
                    (double)LOAD(crash_anchors_pending))))
        return rc;
    if ((rc = counter(b, "sluice_compacted_rows_total",
                      "Rows of closed days packed into compressed rows (docs/search.md).",
                      LOAD(compacted_rows))))
        return rc;
    if ((rc = counter(b, "sluice_retention_rows_deleted_total",
                      "Rows removed by retention's batched DELETEs (docs/retention.md).",
                      LOAD(retention_rows_deleted))) ||
        (rc = counter(b, "sluice_retention_batches_total", "Retention DELETE statements run.",
                      LOAD(retention_batches))) ||
        (rc = counter(b, "sluice_retention_wal_bytes_total",
                      "WAL retention's statements wrote (their pacing; docs/retention.md).",
                      LOAD(retention_wal_bytes))) ||
        (rc = counter(b, "sluice_retention_partitions_dropped_total",
                      "Day partitions dropped as past every source's retention.",
                      LOAD(retention_partitions_dropped))) ||
        (rc = counter(b, "sluice_retention_passes_total", "Retention passes finished.",
                      LOAD(retention_passes))) ||
        (rc = counter(b, "sluice_retention_passes_skipped_total",
                      "Retention pass starts put off because another node's pass held the "
                      "lock (tried again every 5 s).",
                      LOAD(retention_passes_skipped))) ||
        (rc = counter(b, "sluice_archive_files_total",
                      "Archive hour files written and verified before their rows went.",
                      LOAD(archive_files))) ||
        (rc = counter(b, "sluice_archive_bytes_total", "Bytes of those files (gzip).",
                      LOAD(archive_bytes))) ||
        (rc = counter(b, "sluice_archive_failures_total",
                      "Hours whose archive could not be written or verified (rows kept, "
                      "retried next pass).",
                      LOAD(archive_failures))))
        return rc;
    if ((rc = gauge(b, "sluice_disk_state",
                    "Disk guard: 0 ok, 1 evicting the oldest data of opted-in sources, 2 "
                    "refusing ingest (docs/retention.md).",
                    (double)LOAD(disk_state))) ||
        (rc = gauge(b, "sluice_disk_used_ratio",
                    "Disk guard's figure: the database's size over SLUICE_DISK_BUDGET or its "
                    "filesystem's used share, whichever is larger (0 when neither is known).",
                    (double)LOAD(disk_used_bp) / 10000.0)) ||
        (rc = gauge(b, "sluice_disk_database_bytes",
                    "pg_database_size of sluice's database at the last check.",
                    (double)LOAD(disk_db_bytes))) ||
        (rc = counter(b, "sluice_disk_evicted_rows_total",
                      "Rows the disk guard deleted before their retention.",
                      LOAD(disk_evicted_rows))) ||
        (rc = counter(b, "sluice_disk_evicted_partitions_total",
                      "Day partitions the disk guard dropped.", LOAD(disk_evicted_partitions))) ||
        (rc = counter(b, "sluice_disk_rewritten_partitions_total",
                      "Day partitions the disk guard rewrote to free their deleted rows' space.",
                      LOAD(disk_rewritten_partitions))) ||
        (rc = counter(b, "sluice_disk_refused_total",
                      "Drain POSTs answered 503 because the disk guard refuses ingest.",
                      LOAD(disk_refused))) ||
        (rc = counter(b, "sluice_disk_syslog_paused_total",
                      "Syslog reads held back because the disk guard refuses ingest (once per "
                      "connection and second).",
                      LOAD(disk_syslog_paused))))
        return rc;
    if ((rc = counter(b, "sluice_api_requests_total", "Requests to /api/ paths.",
                      LOAD(api_requests))) ||
        (rc = counter(b, "sluice_searches_total", "Searches answered 200.", LOAD(searches))) ||
        (rc = counter(b, "sluice_search_errors_total",
                      "Searches answered with an error (400, 5xx).", LOAD(search_errors))) ||
        (rc = metric_f(b, "counter", "sluice_search_seconds_total",
                       "Time the search workers spent on searches.",
                       (double)LOAD(search_usec) / 1e6)) ||
        (rc = gauge(b, "sluice_tail_clients", "Open live-tail streams.",
                    (double)LOAD(tail_clients))) ||
        (rc = counter(b, "sluice_tail_lines_total", "Lines sent to live-tail streams.",
                      LOAD(tail_lines))) ||
        (rc = counter(b, "sluice_tail_missed_total",
                      "Lines skipped (and announced) for tail clients that fell behind.",
                      LOAD(tail_missed))))
        return rc;
    return 0;
}
