/* Archives of what retention deletes (docs/retention.md, "Archives"): one gzip TSV file
 * per source and UTC hour in Papertrail's layout and columns, written to a directory,
 * read back and checked (size, SHA-256, line count) before any row of the hour is deleted;
 * and the restore of a day from those files into `logs` and `log_blocks`. libpq, zlib and
 * OpenSSL; runs on the maintenance thread (retention) or the CLI (restore), never on the
 * event loop. */
#ifndef SLUICE_ARCHIVE_H
#define SLUICE_ARCHIVE_H

#include <stdint.h>

#include "sluice/db.h"
#include "sluice/err.h"

#define SL_ARCHIVE_PATH_MAX 1024

/* One written and verified hour file. */
struct sl_archive_file {
    char path[SL_ARCHIVE_PATH_MAX + 64];
    long long rows;
    long long bytes;
    char sha256[65];
};

/* Whether dest is an archive destination this build writes to: an absolute directory
 * path (created as needed). why gets the reason when not. */
SL_MUSTCHECK int sl_archive_dest_check(const char *dest, char *why, size_t whylen);

/* The file of source `name`'s hour starting at hour_s (epoch seconds, UTC):
 * DEST/NAME/dt=YYYY-MM-DD/YYYY-MM-DD-HH.tsv.gz. SL_EINVAL when it does not fit. */
SL_MUSTCHECK int sl_archive_path(const char *dest, const char *name, int64_t hour_s,
                                 char *out, size_t outlen);

/* Write the hour [hour_s, hour_s + 3600) of source_id to its file (a temporary file,
 * fsync, rename), read it back and check size, SHA-256 and line count, then record it in
 * archive_hours. 0 only when all of that held; the rows are untouched either way. */
SL_MUSTCHECK int sl_archive_write_hour(struct pg_conn *c, const char *dest, int64_t source_id,
                                       const char *name, int64_t hour_s,
                                       struct sl_archive_file *out);

/* One retention step of an archived source (job->archive set): the oldest hour past the
 * retention is archived if it is not yet, then up to `limit` of its rows are deleted.
 * *deleted 0: nothing more to do this pass (done, or the hour could not be archived:
 * logged, counted in sluice_archive_failures_total, retried next pass). */
SL_MUSTCHECK int sl_archive_retention_step(struct pg_conn *c, const struct sl_retention_job *job,
                                           int limit, long long *deleted);

/* `sluice archive restore`: load source `name`'s day (YYYY-MM-DD) from dest (or, when
 * NULL, the source's archive setting) back into `logs` with the original ids (rows
 * already there are skipped: running it twice changes nothing), give the rows that no
 * search block covers a block (a filter that says yes to every token), and hold the day
 * for hold_days so retention leaves it alone. Prints what it did to out. */
SL_MUSTCHECK int sl_archive_restore_day(struct pg_conn *c, const char *name, const char *day,
                                        const char *dest, int hold_days, FILE *out);

#endif
