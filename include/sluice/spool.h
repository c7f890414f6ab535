/* The spool: an append-only, checksummed, segmented log on local disk.
 *
 * Every accepted request is appended here before its sender gets 2xx; the sender
 * is answered only once an fsync covers its record (group commit: one fdatasync
 * serves every append made before it started). A writer thread reads records back
 * in order and moves them into PostgreSQL; once the position it reached is
 * committed there, segments wholly below it are deleted.
 *
 * Positions are LSNs: byte offsets in one logical stream that runs across the
 * segment files. A segment is named after the LSN of its first byte
 * ("<dir>/seg-%016" PRIx64 ".spool"). A record on disk is
 *     u32 magic 0x534c5331 ("SLS1"), u32 payload length, u32 CRC-32C of the payload,
 *     payload bytes
 * all integers little-endian. A record never spans two segments.
 *
 * Threads: sl_spool_append from any thread (typically the event loop); the syncer
 * thread (sl_spool_start_syncer) does the fdatasyncs; one reader thread. All shared
 * state is behind one mutex. See docs/internals/spool.md. */
#ifndef SLUICE_SPOOL_H
#define SLUICE_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "sluice/err.h"

struct sl_spool;
struct sl_spool_reader;

struct sl_spool_opts {
    const char *dir;          /* created (0700) if missing */
    uint64_t segment_bytes;   /* roll to a new segment past this size (default 64 MiB;
                               * capped at 1/8 of the filesystem, at least 1 MiB) */
    uint64_t max_bytes;       /* cap on unreleased bytes: appends beyond it get SL_EFULL */
    uint32_t max_record;      /* largest payload accepted (SL_ETOOBIG beyond) */
    bool fsync;               /* false: records count as durable once written (benchmarks) */
    int lock_wait_ms;         /* another process holds the directory: wait this long for it
                               * to let go (a binary upgrade's hand-over); 0: fail at once */
};

/* Open (or create) the spool in o->dir. Recovery: every segment is kept; the last
 * one is scanned and a torn or corrupt tail (bad magic, short record, CRC mismatch)
 * is truncated away and counted (sl_spool_stats.torn_bytes). Appends continue
 * after the last good record. Returns 0 and *out (caller frees with sl_spool_free),
 * SL_EIO, SL_ENOMEM, SL_EINVAL. */
SL_MUSTCHECK int sl_spool_open(const struct sl_spool_opts *o, struct sl_spool **out);

/* Stop the syncer (after a last sync) and free everything. Accepts NULL. */
void sl_spool_free(struct sl_spool *s);

/* A stable identifier of this spool directory (32 hex chars), created on first open
 * and stored in <dir>/node_id. The PostgreSQL checkpoint is keyed by it. Borrowed. */
const char *sl_spool_node_id(const struct sl_spool *s);

/* Append one record made of iovcnt pieces. Returns 0 and *end_lsn (the LSN just past
 * the record: it is durable once sl_spool_synced_lsn() >= *end_lsn), SL_EFULL when the
 * unreleased bytes would pass max_bytes or the disk is full (ENOSPC: the segment is
 * ended so it can be deleted once released; appends resume when there is room),
 * SL_ETOOBIG past max_record, SL_EIO. */
SL_MUSTCHECK int sl_spool_appendv(struct sl_spool *s, const struct iovec *iov, int iovcnt,
                                  uint64_t *end_lsn);

/* Called on the syncer thread after every sync with the new synced LSN. It must not
 * block: it typically wakes the event loop (event_active). */
typedef void (*sl_spool_synced_cb)(void *arg, uint64_t synced_lsn);

/* Start the group-commit thread: it waits for appends, fdatasyncs the segments that
 * have unsynced bytes, then publishes the new synced LSN and calls cb. With
 * o->fsync false it publishes at once without syncing. */
SL_MUSTCHECK int sl_spool_start_syncer(struct sl_spool *s, sl_spool_synced_cb cb, void *arg);

/* Flush and sync everything appended so far on the calling thread (shutdown, tests). */
SL_MUSTCHECK int sl_spool_sync_now(struct sl_spool *s);

uint64_t sl_spool_written_lsn(struct sl_spool *s);
uint64_t sl_spool_synced_lsn(struct sl_spool *s);

/* Wait until synced LSN > lsn or timeout_ms passes. Returns the synced LSN. */
uint64_t sl_spool_wait(struct sl_spool *s, uint64_t lsn, int timeout_ms);

/* Everything below lsn is committed downstream: delete segments that end at or
 * below it (never the segment being written). Also the base of the depth figure. */
void sl_spool_release(struct sl_spool *s, uint64_t lsn);

/* The LSN of the first byte of the oldest segment still on disk. */
uint64_t sl_spool_first_lsn(struct sl_spool *s);

struct sl_spool_stats {
    uint64_t written_lsn, synced_lsn, released_lsn;
    uint64_t depth_bytes;     /* written - released */
    uint64_t segments;        /* files on disk */
    uint64_t syncs;           /* fdatasync rounds */
    uint64_t torn_bytes;      /* truncated at open */
    uint64_t corrupt_records; /* skipped by readers */
    bool full;                /* the disk is full: appends get SL_EFULL until there is room */
};
void sl_spool_get_stats(struct sl_spool *s, struct sl_spool_stats *st);

/* Bytes free (for an unprivileged writer) on the spool's filesystem; 0 if unknown. One
 * fstatvfs: for /metrics, not for every request. */
uint64_t sl_spool_fs_free_bytes(struct sl_spool *s);

/* Open a reader at from_lsn (a record boundary: 0 or the first LSN of the oldest
 * segment mean "from the start"; an LSN below the first segment is moved up to it).
 * One reader at a time; it reads only synced bytes. Caller frees. */
SL_MUSTCHECK int sl_spool_reader_open(struct sl_spool *s, uint64_t from_lsn,
                                      struct sl_spool_reader **out);
void sl_spool_reader_free(struct sl_spool_reader *r);

/* The next record. Returns 1 with *payload / *len (valid until the next call) and
 * *end_lsn (the LSN just past this record), 0 when no synced record is available yet,
 * SL_EIO on a read error. A record that fails its checksum is skipped up to the next
 * segment, counted in corrupt_records and logged: never returned. */
SL_MUSTCHECK int sl_spool_reader_next(struct sl_spool_reader *r, const void **payload,
                                      size_t *len, uint64_t *end_lsn);

/* CRC-32C (Castagnoli), exported for tests. */
uint32_t sl_crc32c(uint32_t crc, const void *buf, size_t len);

#endif
