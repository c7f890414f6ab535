/* PostgreSQL administration: connections, versioned migrations, sources and their
 * tokens, day partitions of `logs`, retention. Used by the CLI (migrate, source ...)
 * and by the maintenance thread of `sluice serve`. The hot path (COPY of spooled
 * lines) lives in drain/writer.c.
 *
 * Every function runs on the caller's thread with the caller's connection; none is
 * ever called from the event loop. Errors are logged here, where they happen. */
#ifndef SLUICE_DB_H
#define SLUICE_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "sluice/buf.h"
#include "sluice/err.h"
#include "sluice/names.h"

struct pg_conn;   /* libpq's PGconn */
struct pg_result; /* libpq's PGresult */

#define SL_TOKEN_HEX 40 /* ingest tokens: 20 random bytes in hex */

struct sl_source_row {
    int64_t id;
    char name[SL_SOURCE_NAME_MAX + 1];
    unsigned char token_hash[32]; /* SHA-256 of the ingest token */
    char drain_token[128];        /* Heroku's d.<uuid> for syslog drains, "" if none */
    int retention_days;
};

/* Connect; logs the reason on failure. Caller closes with sl_db_close. */
SL_MUSTCHECK int sl_db_connect(const char *url, struct pg_conn **out);
void sl_db_close(struct pg_conn *c);
/* Log a libpq error (of r, or of the connection when r is NULL) as one logfmt line. */
void sl_db_log_error(const char *what, struct pg_conn *c, const struct pg_result *r);
/* Run sql, then check, log, clear: the shape of almost every statement. n == 0 runs it
 * with PQexec (the simple protocol: several statements may be given, the last one's
 * result counts); n > 0 with PQexecParams and n text parameters vals. When the status
 * is PGRES_COMMAND_OK or PGRES_TUPLES_OK returns 0 and hands the result to *res (caller
 * PQclears it) or clears it when res is NULL. Otherwise logs `what` with PostgreSQL's
 * message (sl_db_log_error), clears the result, sets *res to NULL and returns SL_EDB. */
/* A bounded batch of one source's rows: $1 the source, [to_timestamp($2),
 * to_timestamp($3)) the range, at most $4 rows oldest first (every row at the last one's
 * received_at goes with it, so a batch never splits a timestamp). A caller may append
 * " AND ..." on the logs row's columns. The archive's hour step and the disk guard's day step. */
#define SL_DB_BATCH_DELETE_SQL                                                                     \
    "WITH edge AS (SELECT max(received_at) AS t FROM (SELECT received_at "                        \
    "  FROM logs WHERE source_id = $1::bigint "                                                    \
    "  AND received_at >= to_timestamp($2::bigint) "                                               \
    "  AND received_at < to_timestamp($3::bigint) "                                                \
    "  ORDER BY received_at LIMIT $4::int) x) "                                                    \
    "DELETE FROM logs WHERE source_id = $1::bigint "                                               \
    "AND received_at >= to_timestamp($2::bigint) "                                                 \
    "AND received_at < to_timestamp($3::bigint) "                                                  \
    "AND received_at <= (SELECT t FROM edge)"

SL_MUSTCHECK int sl_db_exec(struct pg_conn *c, const char *what, const char *sql, int n,
                            const char *const *vals, struct pg_result **res);
/* The connection of a thread that waits on NOTIFY. Returns 0 when *c is connected;
 * otherwise closes it, connects to url, runs listen ("LISTEN a; LISTEN b") and returns 1:
 * a fresh connection, so what the caller derives from notifications must be reloaded.
 * SL_EDB when connecting (logged) or listening fails; *c is then NULL or unusable. */
SL_MUSTCHECK int sl_db_listen(struct pg_conn **c, const char *url, const char *listen);

/* Build a PostgreSQL array literal of names, {"a","b"}, for a $n::text[] parameter: call
 * sl_db_array_add per name on an empty buffer, then sl_db_array_end (which NUL-terminates;
 * no names gives {}). Names must be validated identifiers (no quote or backslash). */
SL_MUSTCHECK int sl_db_array_add(struct sl_buf *b, const char *name);
SL_MUSTCHECK int sl_db_array_end(struct sl_buf *b);

/* Is the connection usable? Resets it when it is not; returns true when usable. */
bool sl_db_ok(struct pg_conn *c);

/* Apply every migration not yet in schema_migrations, each in its own transaction,
 * under an advisory lock (several nodes may run it at once). Safe to run twice. */
SL_MUSTCHECK int sl_db_migrate(struct pg_conn *c, FILE *progress);
/* 0 when the schema is at this binary's latest migration or newer (a newer node may have
 * migrated first); else SL_EDB, logged with a hint to run `sluice migrate`. The CLI's
 * database commands check this first, so none runs against tables it does not know. */
SL_MUSTCHECK int sl_db_schema_check(struct pg_conn *c);
/* Compressed packs (docs/search.md "Compressed packs"): bind sluice_pack/sluice_unpack to
 * the server module sluice_pg (drain/pg/sluice_pg.c) unless SLUICE_PACK_MODULE=off, and
 * check a round trip. 1: bound (now or before); 0: packs stay arrays (the module is not
 * in the server's $libdir, or this role may not create C functions: said on progress and
 * in the log); SL_EDB when the database failed. A bound database stays bound. */
SL_MUSTCHECK int sl_db_pack_module(struct pg_conn *c, FILE *progress);

/* A new random token: SL_TOKEN_HEX hex chars and a NUL. */
SL_MUSTCHECK int sl_token_new(char out[SL_TOKEN_HEX + 1]);

/* Source administration. `token` receives a new ingest token (add, rotate).
 * SL_EINVAL: bad name (1-63 of [A-Za-z0-9._-], starting alphanumeric) or the name
 * exists (add); SL_ENOTFOUND: no such source (rotate, rm). Each NOTIFYs
 * sluice_sources so running servers reload at once. */
SL_MUSTCHECK int sl_db_source_add(struct pg_conn *c, const char *name, int retention_days,
                                  const char *drain_token, char token[SL_TOKEN_HEX + 1]);
SL_MUSTCHECK int sl_db_source_rotate(struct pg_conn *c, const char *name,
                                     char token[SL_TOKEN_HEX + 1]);
SL_MUSTCHECK int sl_db_source_rm(struct pg_conn *c, const char *name);
SL_MUSTCHECK int sl_db_source_list(struct pg_conn *c, FILE *out);
/* Set the Sentry DSN of a source (docs/crashes.md); NULL or "" clears it. The caller has
 * checked it (sl_crash_dsn_parse). SL_ENOTFOUND: no such source. */
SL_MUSTCHECK int sl_db_source_set_dsn(struct pg_conn *c, const char *name, const char *dsn);

/* Load every source. *rows is malloc'd: caller frees. */
SL_MUSTCHECK int sl_db_load_sources(struct pg_conn *c, struct sl_source_row **rows, size_t *n);

/* Read tokens (docs/api.md "Read tokens"): "slr_" and SL_TOKEN_HEX random hex
 * characters; only the SHA-256 of the whole token (prefix included) is stored. */
#define SL_READ_TOKEN_PREFIX "slr_"
#define SL_READ_TOKEN_LEN (4 + SL_TOKEN_HEX)

struct sl_read_token_row {
    int64_t id;
    char name[SL_SOURCE_NAME_MAX + 1];
    unsigned char token_hash[32]; /* SHA-256 of the token */
    bool all;                     /* every source, present and future */
    int64_t *source_ids;          /* ascending; malloc'd (NULL when n_sources is 0) */
    size_t n_sources;
};

/* Free an array of n rows and each row's source_ids. Accepts NULL. */
void sl_read_token_rows_free(struct sl_read_token_row *rows, size_t n);

/* Create read token `name`, for every source (all) or for the sources named in
 * sources[0..nsources) (at least one). `token` receives the new token. SL_EINVAL: bad
 * name, the name exists, or neither/both of all and sources; SL_ENOTFOUND: a source does
 * not exist, and *unknown points at its name in sources (nothing is stored). NOTIFYs
 * sluice_sources. */
SL_MUSTCHECK int sl_db_read_token_add(struct pg_conn *c, const char *name, bool all,
                                      const char *const *sources, size_t nsources,
                                      char token[SL_READ_TOKEN_LEN + 1], const char **unknown);
/* Remove read token `name`; SL_ENOTFOUND when there is none. NOTIFYs sluice_sources. */
SL_MUSTCHECK int sl_db_read_token_rm(struct pg_conn *c, const char *name);
/* Print NAME, CREATED and SCOPE ("all sources" or the source names) of every read
 * token; never the token or its hash. */
SL_MUSTCHECK int sl_db_read_token_list(struct pg_conn *c, FILE *out);
/* Load every read token. *rows is malloc'd: caller frees with sl_read_token_rows_free.
 * A database without the read_tokens table (migration 3 not applied) gives 0 rows. */
SL_MUSTCHECK int sl_db_load_read_tokens(struct pg_conn *c, struct sl_read_token_row **rows,
                                        size_t *n);

/* Make the day partitions of logs covering [from_us, from_us + days) exist
 * (CREATE TABLE IF NOT EXISTS ... PARTITION OF logs). Safe against other nodes. */
SL_MUSTCHECK int sl_db_ensure_partitions(struct pg_conn *c, int64_t from_us, int days);

/* Retention (docs/retention.md), run by the maintenance thread in small steps so
 * ingest and searches never wait behind it. A pass is: sl_db_retention_drop, then
 * sl_db_retention_batch for each job of sl_db_retention_sources until it deletes
 * nothing, then sl_db_retention_finish. */
struct sl_retention_job {
    int64_t source_id;
    int days;
    char name[SL_SOURCE_NAME_MAX + 1];
    char archive[1024]; /* "" when the source is not archived (sluice/archive.h) */
    int64_t cut_s;      /* 0: rows past `days` of retention; else rows received before this
                         * (epoch seconds): the disk guard's eviction of a day */
};
/* Drop the day partitions past every source's retention (each with a short lock
 * timeout; one that cannot be locked waits for the next pass), except a day held by a
 * restore or still holding rows of an archived source (those go hour by hour, archived
 * first). *dropped: how many. */
SL_MUSTCHECK int sl_db_retention_drop(struct pg_conn *c, long long *dropped);
/* The sources whose rows go by DELETE: every archived source, and those whose retention
 * is shorter than the longest. *jobs is malloc'd (free()). */
SL_MUSTCHECK int sl_db_retention_sources(struct pg_conn *c, struct sl_retention_job **jobs,
                                         size_t *n);
/* The server's WAL insert position in bytes (pg_current_wal_insert_lsn()): the
 * difference of two readings is the WAL written between them, by every session. */
SL_MUSTCHECK int sl_db_wal_position(struct pg_conn *c, uint64_t *out);
/* Delete about `limit` of the oldest rows of job's source past its retention, in one
 * short statement; *deleted 0 means the source is done. */
SL_MUSTCHECK int sl_db_retention_batch(struct pg_conn *c, const struct sl_retention_job *job,
                                       int limit, long long *deleted);
/* End of a pass: search blocks past their source's retention (or of removed sources),
 * frame ids older than a day. */
SL_MUSTCHECK int sl_db_retention_finish(struct pg_conn *c);
/* Change a source's retention; NOTIFYs sluice_sources. SL_ENOTFOUND when none. */
SL_MUSTCHECK int sl_db_source_set_retention(struct pg_conn *c, const char *name, int days);
/* Set (or clear, with "" or NULL) a source's archive destination. SL_ENOTFOUND when none. */
SL_MUSTCHECK int sl_db_source_set_archive(struct pg_conn *c, const char *name, const char *dest);

/* Let (or not) the disk guard delete a source's oldest rows before their retention
 * (docs/retention.md "Disk guard"); NOTIFYs sluice_sources. SL_ENOTFOUND when none. */
SL_MUSTCHECK int sl_db_source_set_disk_evict(struct pg_conn *c, const char *name, bool evict);

/* The partition name for the UTC day containing us: logs_YYYYMMDD. */
void sl_db_partition_name(int64_t us, char out[16]);

/* The coarse levels' I/O, shared by the day level (drain/compact.c) and the hour level
 * (drain/hourlevel.c); docs/search.md "The day level", "The hour level". In the caller's
 * transaction. */
struct sl_dayfilter;
/* Every row of `select` (a SELECT whose columns are the message, then a JSON line's object
 * text or NULL; parameters vals[0..n)) into df (sl_dayfilter_add_line), through the
 * cursor sl_level, FETCHed 5 000 rows at a time. *nrows: rows read. */
SL_MUSTCHECK int sl_db_level_read(struct pg_conn *c, const char *what, const char *select, int n,
                                  const char *const *vals, struct sl_dayfilter *df,
                                  long long *nrows);
/* df folded, then insert_sql run with vals[0..n) and three more parameters, $n+1..$n+3:
 * its slice numbers (smallint[]), their nbits (int[]) and their bits in hex (text[]). */
SL_MUSTCHECK int sl_db_level_write(struct pg_conn *c, const char *what, const char *insert_sql,
                                   int n, const char *const *vals, struct sl_dayfilter *df);
/* The day level and the hour level of a day whose partitions were dropped (day: a date
 * PostgreSQL reads, YYYY-MM-DD or YYYYMMDD); a failure is logged (what) and left: no block
 * points at those rows any more, a search never reads them. */
void sl_db_levels_drop_day(struct pg_conn *c, const char *what, const char *day);

#endif
