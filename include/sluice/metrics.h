/* Process-wide counters and gauges, rendered as Prometheus text at GET /metrics.
 * Counters are C11 atomics: any thread adds, the event loop renders. */
#ifndef SLUICE_METRICS_H
#define SLUICE_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#include "sluice/buf.h"

/* HTTP statuses we count; others go to the last slot ("other"). */
#define SL_METRICS_STATUSES 14

struct sl_metrics {
    _Atomic uint64_t http_status[SL_METRICS_STATUSES];
    _Atomic uint64_t lines_accepted;   /* framed and spooled */
    _Atomic uint64_t bytes_received;   /* request bodies as sent (before gunzip) */
    _Atomic uint64_t lines_stored;     /* committed in PostgreSQL */
    _Atomic uint64_t parse_errors;     /* stored with parse_error set */
    _Atomic uint64_t duplicate_frames; /* retried Logplex-Frame-Id skipped */
    _Atomic uint64_t duplicate_lines;
    _Atomic uint64_t msg_count_mismatch;
    _Atomic uint64_t truncated;
    _Atomic uint64_t invalid_utf8;     /* messages kept in message_raw */
    _Atomic uint64_t sender_lost[3];   /* L10, L12, L13 notice counts */
    _Atomic uint64_t logplex_drop_count; /* Logplex-Drop-Count / -Lost-Count headers */
    _Atomic uint64_t copy_batches;
    _Atomic uint64_t copy_rows;
    _Atomic uint64_t copy_usec;        /* summed COPY transaction time */
    _Atomic uint64_t copy_last_rows;
    _Atomic uint64_t copy_failures;
    _Atomic uint64_t connections;      /* open now */
    _Atomic uint64_t connections_rejected;
    _Atomic uint64_t connections_rejected_address; /* over SLUICE_MAX_CONNECTIONS_PER_ADDRESS */
    _Atomic uint64_t connections_reclaimed; /* idle ones closed near the cap for a new one */
    _Atomic uint64_t head_timeouts;    /* closed at SLUICE_HEAD_TIMEOUT */
    _Atomic uint64_t accept_paused;    /* times accepting paused: out of file descriptors */
    _Atomic uint64_t syslog_lines;
    _Atomic uint64_t syslog_unknown_source;
    _Atomic uint64_t spool_full;       /* 503s because the spool was full */
    _Atomic uint64_t spool_oldest_us;  /* received_us of the oldest unwritten entry, 0 none */
    _Atomic uint64_t db_up;
    _Atomic uint64_t alerts_fired;
    _Atomic uint64_t alerts_resolved;
    _Atomic uint64_t deliveries_ok;
    _Atomic uint64_t deliveries_retried;
    _Atomic uint64_t deliveries_dead;
    _Atomic uint64_t api_requests;     /* /api/ requests */
    _Atomic uint64_t searches;         /* searches answered, by outcome */
    _Atomic uint64_t search_errors;
    _Atomic uint64_t search_usec;      /* summed search time in the workers */
    _Atomic uint64_t tail_clients;     /* open tail streams now */
    _Atomic uint64_t tail_lines;       /* lines sent to tail streams */
    _Atomic uint64_t tail_missed;      /* lines skipped for tail clients that fell behind */
    _Atomic uint64_t crashes_assembled;  /* crashes stored (each once, on the node that joined it) */
    _Atomic uint64_t crashes_sent;       /* envelopes Sentry accepted */
    _Atomic uint64_t crashes_dropped[4]; /* SL_CRASH_DROP_*: rate limited, no DSN, refused, dead */
    _Atomic uint64_t crash_anchors_pending; /* gauge: anchors not yet consumed */
    _Atomic uint64_t rule_limit_hits;            /* 1 when the last database operation worked */
    _Atomic uint64_t retention_rows_deleted;       /* rows removed by batched DELETE */
    _Atomic uint64_t retention_batches;            /* DELETE statements run */
    _Atomic uint64_t retention_wal_bytes;          /* WAL written while they ran */
    _Atomic uint64_t retention_partitions_dropped; /* whole day partitions */
    _Atomic uint64_t retention_passes;             /* passes finished */
    _Atomic uint64_t retention_passes_skipped;     /* put off: another node's pass under way */
    _Atomic uint64_t compacted_rows;               /* rows packed into log_packs */
    _Atomic uint64_t archive_files;                /* hour files written and verified */
    _Atomic uint64_t archive_bytes;                /* their gzip bytes */
    _Atomic uint64_t archive_failures;             /* hours not archived (rows kept) */
    /* the disk guard (docs/retention.md "Disk guard"): written by the maintenance thread,
     * read without locks by the loop (admission, /readyz) */
    _Atomic uint64_t disk_state;           /* enum sl_diskguard_state */
    _Atomic uint64_t disk_figure;          /* enum sl_diskguard_figure that decided */
    _Atomic uint64_t disk_used_bp;         /* the used figure in hundredths of a percent */
    _Atomic uint64_t disk_db_bytes;        /* pg_database_size at the last check */
    _Atomic uint64_t disk_evicted_rows;    /* rows deleted by eviction (batched DELETEs) */
    _Atomic uint64_t disk_evicted_partitions; /* day partitions dropped by eviction */
    _Atomic uint64_t disk_rewritten_partitions; /* day partitions rewritten (VACUUM FULL) */
    _Atomic uint64_t disk_refused;         /* drain POSTs answered 503 while refusing */
    _Atomic uint64_t disk_syslog_paused;   /* syslog reads held back while refusing */
};

extern struct sl_metrics sl_metrics;

/* crashes_dropped slots (label reason=) */
#define SL_CRASH_DROP_RATE_LIMITED 0
#define SL_CRASH_DROP_NO_DSN 1
#define SL_CRASH_DROP_REFUSED 2 /* Sentry answered 4xx other than 429 */
#define SL_CRASH_DROP_DEAD 3    /* retries exhausted, private address */

#define SL_INC(field, n) atomic_fetch_add_explicit(&sl_metrics.field, (uint64_t)(n), memory_order_relaxed)

void sl_metrics_status(int status);

struct sl_spool;
/* Append the Prometheus text exposition to b. */
int sl_metrics_render(struct sl_buf *b, struct sl_spool *spool);

#endif
