/* Compaction of closed days (include/sluice/compact.h, docs/search.md "Compacted days").
 *
 * One (source, day) per transaction:
 *   1. LOCK the day's partition SHARE ROW EXCLUSIVE: another node compacting it waits, and
 *      so does a late insert into that day (rare: a clock behind, a restore);
 *   2. the source's old (unpacked) blocks of the day go, and their hour level; one that
 *      also covers rows of another day keeps only those rows' bounds (and loses its
 *      hourly mark: its hour may have changed);
 *   3. read the source's rows of the day in id order through a cursor and re-block them
 *      with drain/blocks.c (the writer's tokens and filters; blocks of up to an hour);
 *      every CHUNK_BLOCKS closed blocks, INSERT one log_packs row per block (array_agg of
 *      its rows, grouped by the blocks' first ids through width_bucket) and the blocks,
 *      packed; so memory holds one FETCH and one chunk of filters, whatever the day's size;
 *   4. the day level (the first time the (source, day) is packed): one sliced filter of
 *      every token read (drain/dayfilter.c), 256 rows of log_day_filters, and the blocks
 *      of step 3 marked coarse (a search reads them only when the day level passes);
 *   5. DELETE the day's rows from logs (as many as were read) and COMMIT.
 * A packed block's rows are exactly its pack. Any failure rolls the whole step back. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "sluice/blocks.h"
#include "sluice/compact.h"
#include "sluice/dayfilter.h"
#include "sluice/db.h"
#include "sluice/enc.h"
#include "sluice/fields.h"
#include "sluice/log.h"
#include "sluice/str.h"
#include "sluice/tokens.h"

#define FETCH_ROWS 5000
#define CHUNK_BLOCKS 256 /* blocks packed per INSERT: at most ~2 MiB of filters in hex */
#define DAY_US (86400LL * 1000000LL)
/* Packed blocks span up to an hour (the writer's close at five minutes): fewer, larger
 * blocks for old days, so a month's filter scan is shorter and packs compress better. */
#define PACK_MAX_AGE_US (3600LL * 1000000LL)

#define TS_US(col) "(extract(epoch from " col ") * 1000000)::bigint"
#define DAY_RANGE                                                                                  \
    "received_at >= 'epoch'::timestamptz + $2::bigint * interval '1 us' AND received_at < "       \
    "'epoch'::timestamptz + $3::bigint * interval '1 us'"

/* A chunk of new blocks of one (source, day), as the arrays of SL_BLOCKS_UPSERT_SQL, with
 * their ranges together. */
struct newblocks {
    struct sl_buf s, r0, r1, i0, i1, n, nb, hex;
    size_t count;
    int64_t rmin, rmax, imin, imax;
    bool coarse; /* the day level is written with them: the blocks are marked coarse */
};

static void nb_init(struct newblocks *b)
{
    memset(b, 0, sizeof(*b));
    /* a chunk is CHUNK_BLOCKS blocks (and the few a FETCH closes past it) */
    sl_buf_init(&b->s, 1u << 20);
    sl_buf_init(&b->r0, 1u << 20);
    sl_buf_init(&b->r1, 1u << 20);
    sl_buf_init(&b->i0, 1u << 20);
    sl_buf_init(&b->i1, 1u << 20);
    sl_buf_init(&b->n, 1u << 20);
    sl_buf_init(&b->nb, 1u << 20);
    sl_buf_init(&b->hex, 1u << 26);
}

static void nb_free(struct newblocks *b)
{
    struct sl_buf *all[8] = {&b->s, &b->r0, &b->r1, &b->i0, &b->i1, &b->n, &b->nb, &b->hex};
    for (int i = 0; i < 8; i++)
        sl_buf_free(all[i]);
}

static void nb_reset(struct newblocks *b)
{
    struct sl_buf *all[8] = {&b->s, &b->r0, &b->r1, &b->i0, &b->i1, &b->n, &b->nb, &b->hex};
    for (int i = 0; i < 8; i++)
        sl_buf_reset(all[i]);
    b->count = 0;
}

static int nb_add(struct newblocks *b, const struct sl_block_row *r)
{
    const char *sep = b->count ? "," : "{";

    if (b->count == 0 || r->min_received_us < b->rmin)
        b->rmin = r->min_received_us;
    if (b->count == 0 || r->max_received_us > b->rmax)
        b->rmax = r->max_received_us;
    if (b->count == 0 || r->min_id < b->imin)
        b->imin = r->min_id;
    if (b->count == 0 || r->max_id > b->imax)
        b->imax = r->max_id;
    int rc = sl_buf_addf(&b->s, "%s%" PRId64, sep, r->source_id) ||
             sl_buf_addf(&b->r0, "%s%" PRId64, sep, r->min_received_us) ||
             sl_buf_addf(&b->r1, "%s%" PRId64, sep, r->max_received_us) ||
             sl_buf_addf(&b->i0, "%s%" PRId64, sep, r->min_id) ||
             sl_buf_addf(&b->i1, "%s%" PRId64, sep, r->max_id) ||
             sl_buf_addf(&b->n, "%s%u", sep, r->nrows) ||
             sl_buf_addf(&b->nb, "%s%u", sep, r->nbits) || sl_buf_add(&b->hex, sep, 1) ||
             sl_enc_hex_buf(&b->hex, r->bloom, r->nbits / 8);
    b->count++;
    return rc ? SL_ENOMEM : 0;
}

static int nb_close(struct newblocks *b)
{
    struct sl_buf *all[8] = {&b->s, &b->r0, &b->r1, &b->i0, &b->i1, &b->n, &b->nb, &b->hex};
    for (int i = 0; i < 8; i++)
        if (sl_buf_add(all[i], "}", 2))
            return SL_ENOMEM;
    return 0;
}

/* Take the blocks the last rows touched: closed ones (or all, at the end) into nb. */
static int take_blocks(struct sl_blocks *bs, struct newblocks *nb, bool all)
{
    const struct sl_block_row *rows;
    size_t n;
    int rc = sl_blocks_rows(bs, &rows, &n);

    for (size_t i = 0; rc == 0 && i < n; i++)
        if (all || rows[i].closed)
            rc = nb_add(nb, &rows[i]);
    if (rc == 0)
        sl_blocks_commit(bs);
    return rc;
}

/* Step 3's INSERTs for the chunk in nb: its packs (the rows of its id range, which are
 * exactly its blocks' rows: they were read in id order), then its blocks, packed. */
static int flush(PGconn *c, const char *const *v, struct newblocks *nb, long long *npacks)
{
    char r0[24], r1[24], i0[24], i1[24];
    const char *pv[8], *bv[9];
    PGresult *r = NULL;
    long long got;
    int rc;

    if (nb->count == 0)
        return 0;
    /* the arrays' pointers only after nb_close: its "}" may move a buffer (realloc) */
    if ((rc = nb_close(nb)))
        return rc;
    pv[0] = v[0], pv[1] = v[1], pv[2] = v[2], pv[3] = r0, pv[4] = r1, pv[5] = i0, pv[6] = i1;
    pv[7] = nb->i0.p;
    bv[0] = nb->s.p, bv[1] = nb->r0.p, bv[2] = nb->r1.p, bv[3] = nb->i0.p, bv[4] = nb->i1.p;
    bv[5] = nb->n.p, bv[6] = nb->nb.p, bv[7] = nb->hex.p, bv[8] = nb->coarse ? "t" : "f";
    snprintf(r0, sizeof(r0), "%" PRId64, nb->rmin);
    snprintf(r1, sizeof(r1), "%" PRId64, nb->rmax);
    snprintf(i0, sizeof(i0), "%" PRId64, nb->imin);
    snprintf(i1, sizeof(i1), "%" PRId64, nb->imax);
    if ((rc = sl_db_exec(c, "compaction pack failed",
                         /* compressed when the module is bound, else the array
                          * (OFFSET 0: sluice_pack runs once a pack) */
                         "INSERT INTO log_packs (source_id, day, min_id, rows, data) SELECT "
                         "$1::bigint, (to_timestamp($2::bigint / 1000000) AT TIME ZONE "
                         "'UTC')::date, m, CASE WHEN z IS NULL THEN a END, z FROM (SELECT m, a, "
                         "sluice_pack(a) z FROM (SELECT min(l.id) m, array_agg(l ORDER BY l.id) a "
                         "FROM logs l WHERE "
                         "l.source_id = $1::bigint AND " DAY_RANGE " AND l.received_at BETWEEN "
                         "'epoch'::timestamptz + $4::bigint * interval '1 us' AND "
                         "'epoch'::timestamptz + $5::bigint * interval '1 us' AND l.id BETWEEN "
                         "$6::bigint AND $7::bigint GROUP BY width_bucket(l.id, $8::bigint[])) g "
                         "OFFSET 0) x",
                         8, pv, &r)))
        return rc;
    got = atoll(PQcmdTuples(r));
    PQclear(r);
    if (got != (long long)nb->count) {
        sl_error("compaction pack failed", "packs=%lld blocks=%zu", got, nb->count);
        return SL_EDB;
    }
    *npacks += got;
    rc = sl_db_exec(c, "compaction blocks failed",
                    "INSERT INTO log_blocks (source_id, min_received, max_received, min_id, "
                    "max_id, nrows, nbits, bloom, packed, coarse, classes) SELECT s, timestamptz "
                    "'epoch' + r0 * interval '1 microsecond', timestamptz 'epoch' + r1 * interval "
                    "'1 microsecond', i0, i1, n, nb, decode(b, 'hex'), true, $9::boolean, true FROM "
                    "unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], "
                    "$5::bigint[], $6::int[], $7::int[], $8::text[]) AS u (s, r0, r1, i0, i1, "
                    "n, nb, b)",
                    9, bv, NULL);
    nb_reset(nb);
    return rc;
}

/* Row i's JSON words (column col: the JSON text of a JSON line, else NULL) decoded into
 * extra, as the writer adds them to the filters (a superset when its strings hold no
 * escapes: the same words again). false: not a JSON line, or not decodable. */
static bool json_words(PGresult *r, int i, int col, struct sl_buf *extra)
{
    if (PQgetisnull(r, i, col))
        return false;
    sl_buf_reset(extra);
    return sl_fields_json_extra(PQgetvalue(r, i, col), (size_t)PQgetlength(r, i, col), extra) ==
           0;
}

/* Step 3: the rows of (source, day) in id order through blocks.c, packed a chunk at a
 * time. *nrows: rows read. */
static int reblock(PGconn *c, int64_t src, const char *const *v, struct newblocks *nb,
                   struct sl_dayfilter *df, long long *nrows, long long *npacks)
{
    static const struct sl_blocks_opts opts = {0, PACK_MAX_AGE_US, 0};
    struct sl_blocks *bs = NULL;
    struct sl_buf extra;
    int rc;

    *nrows = 0;
    sl_buf_init(&extra, (SL_FIELDS_CANON_MAX + 2) * SL_JSON_MAX_BYTES); /* as the writer */
    if ((rc = sl_blocks_new(&opts, &bs)))
        goto out;
    if ((rc = sl_db_exec(c, "compaction read failed",
                         "DECLARE sl_compact NO SCROLL CURSOR FOR SELECT id, " TS_US("received_at")
                         ", message, CASE WHEN json_at IS NOT NULL THEN substr(message, json_at) "
                         "END FROM logs WHERE source_id = $1::bigint AND " DAY_RANGE
                         " ORDER BY id",
                         3, v, NULL)))
        goto out;
    for (;;) {
        PGresult *r = NULL;
        int nt;
        if ((rc = sl_db_exec(c, "compaction read failed", "FETCH 5000 FROM sl_compact", 0, NULL,
                             &r)))
            goto out;
        nt = PQntuples(r);
        for (int i = 0; i < nt && rc == 0; i++) {
            int64_t id = strtoll(PQgetvalue(r, i, 0), NULL, 10);
            int64_t us = strtoll(PQgetvalue(r, i, 1), NULL, 10);
            const char *msg = PQgetvalue(r, i, 2);
            size_t len = (size_t)PQgetlength(r, i, 2);
            bool json = json_words(r, i, 3, &extra);
            /* the object is the message's tail: json_at is where it starts */
            size_t joff = PQgetisnull(r, i, 3) ? SIZE_MAX : len - (size_t)PQgetlength(r, i, 3);
            rc = json ? sl_blocks_add_json(bs, src, id, us, msg, len, joff, extra.p, extra.len)
                      : sl_blocks_add_json(bs, src, id, us, msg, len, joff, NULL, 0);
            if (df != NULL) {
                sl_dayfilter_add_text(df, msg, len);
                if (json)
                    sl_dayfilter_add_text(df, extra.p, extra.len);
            }
        }
        PQclear(r);
        *nrows += nt;
        if (rc == 0)
            rc = take_blocks(bs, nb, nt < FETCH_ROWS);
        if (rc == 0 && (nb->count >= CHUNK_BLOCKS || nt < FETCH_ROWS))
            rc = flush(c, v, nb, npacks);
        if (rc || nt < FETCH_ROWS)
            break;
    }
    if (rc == 0)
        rc = sl_db_exec(c, "compaction read failed", "CLOSE sl_compact", 0, NULL, NULL);
out:
    sl_blocks_free(bs);
    sl_buf_free(&extra);
    return rc;
}

/* Step 2: the source's old blocks of the day, before any new one is written (a new
 * block's key may be an old one's). One inside the day goes; one that also covers rows
 * of another day (a block open across midnight) keeps the bounds of those rows. */
static int clear_old(PGconn *c, const char *const *v)
{
    int rc = sl_db_exec(c, "compaction blocks failed",
                        "WITH old AS (SELECT b.min_id AS k, x.* FROM log_blocks b CROSS JOIN "
                        "LATERAL (SELECT min(l.received_at) r0, max(l.received_at) r1, "
                        "min(l.id) i0, max(l.id) i1, count(*) n FROM logs l WHERE "
                        "l.source_id = b.source_id AND l.received_at BETWEEN b.min_received "
                        "AND b.max_received AND l.id BETWEEN b.min_id AND b.max_id AND NOT ("
                        DAY_RANGE ")) x WHERE b.source_id = $1::bigint AND NOT b.packed AND "
                        "b.max_received >= 'epoch'::timestamptz + $2::bigint * interval '1 us' "
                        "AND b.min_received < 'epoch'::timestamptz + $3::bigint * interval "
                        "'1 us' AND NOT (b.min_received >= 'epoch'::timestamptz + $2::bigint * "
                        "interval '1 us' AND b.max_received < 'epoch'::timestamptz + $3::bigint "
                        "* interval '1 us')), "
                        "gone AS (DELETE FROM log_blocks b USING old WHERE b.source_id = "
                        "$1::bigint AND b.min_id = old.k AND old.n = 0) "
                        "UPDATE log_blocks b SET min_received = old.r0, max_received = old.r1, "
                        "min_id = old.i0, max_id = old.i1, nrows = old.n, hourly = false FROM old WHERE "
                        "b.source_id = $1::bigint AND b.min_id = old.k AND old.n > 0",
                        3, v, NULL);
    if (rc)
        return rc;
    rc = sl_db_exec(c, "compaction blocks failed",
                    "DELETE FROM log_blocks WHERE source_id = $1::bigint AND NOT packed AND "
                    "min_received >= 'epoch'::timestamptz + $2::bigint * interval '1 us' AND "
                    "max_received < 'epoch'::timestamptz + $3::bigint * interval '1 us'",
                    3, v, NULL);
    if (rc)
        return rc;
    /* the hour level of the day's live blocks goes with them (drain/hourlevel.c) */
    return sl_db_exec(c, "compaction blocks failed",
                      "DELETE FROM log_hour_filters WHERE source_id = $1::bigint AND hour >= "
                      "'epoch'::timestamptz + $2::bigint * interval '1 us' AND hour < "
                      "'epoch'::timestamptz + $3::bigint * interval '1 us'",
                      3, v, NULL);
}

/* Step 4: the day's rows leave logs (exactly those read), and their commit-log rows (the
 * tail's list of live rows). */
static int finish(PGconn *c, const char *const *v, long long nrows)
{
    PGresult *r = NULL;
    long long got;
    int rc;

    if ((rc = sl_db_exec(c, "compaction delete failed",
                         "DELETE FROM logs WHERE source_id = $1::bigint AND " DAY_RANGE, 3, v,
                         &r)))
        return rc;
    got = atoll(PQcmdTuples(r));
    PQclear(r);
    if (got != nrows) {
        sl_error("compaction delete failed", "deleted=%lld read=%lld", got, nrows);
        return SL_EDB;
    }
    return sl_db_exec(c, "compaction delete failed",
                      "DELETE FROM log_commits WHERE source_id = $1::bigint AND min_received "
                      ">= 'epoch'::timestamptz + $2::bigint * interval '1 us' AND max_received "
                      "< 'epoch'::timestamptz + $3::bigint * interval '1 us'",
                      3, v, NULL);
}

/* The day's partition of log_packs (log_packs_YYYYMMDD), made before the packing
 * transaction: creating a partition locks the parent table, so this is a short statement
 * of its own that gives up after 2 s (the next step tries again) rather than hold the
 * lock while a day is packed. */
static int pack_partition(PGconn *c, int64_t d0)
{
    char name[32], lo[16], hi[16], sql[512];
    time_t t = (time_t)(d0 / 1000000), t1 = t + 86400;
    struct tm tm;
    PGresult *r = NULL;
    bool have;
    int rc;

    gmtime_r(&t, &tm);
    strftime(name, sizeof(name), "log_packs_%Y%m%d", &tm);
    strftime(lo, sizeof(lo), "%Y-%m-%d", &tm);
    gmtime_r(&t1, &tm);
    strftime(hi, sizeof(hi), "%Y-%m-%d", &tm);
    snprintf(sql, sizeof(sql), "SELECT to_regclass('%s') IS NOT NULL", name);
    if ((rc = sl_db_exec(c, "compaction partition failed", sql, 0, NULL, &r)))
        return rc;
    have = PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    if (have)
        return 0;
    /* lz4 where the server has it: a little larger than pglz, read 25 % faster; no
     * planner statistics of the packs themselves (never compared; ANALYZE would rewrite
     * pg_statistic rows for nothing) */
    snprintf(sql, sizeof(sql),
             "SET lock_timeout = '2s'; CREATE TABLE IF NOT EXISTS %s PARTITION OF log_packs FOR "
             "VALUES FROM ('%s') TO ('%s'); RESET lock_timeout; ALTER TABLE %s ALTER COLUMN rows "
             "SET STATISTICS 0; DO $d$ BEGIN EXECUTE 'ALTER TABLE %s ALTER COLUMN rows SET "
             "COMPRESSION lz4'; EXCEPTION WHEN OTHERS THEN NULL; END $d$",
             name, lo, hi, name, name);
    rc = sl_db_exec(c, "compaction partition failed", sql, 0, NULL, NULL);
    if (rc)
        PQclear(PQexec(c, "RESET lock_timeout"));
    return rc;
}

/* The day filter's first size: the old blocks' filter bits (10 per distinct token of each
 * block: at least 10 per distinct token of the day), or 16 per row when that is more (blocks
 * whose filters say yes to everything, from an old release or a restore). */
#define LEVEL_EST "greatest(coalesce(sum(nbits), 0), coalesce(sum(nrows), 0) * 16)"

/* Whether (source, day) has its day level already (packed before, and rows of the day came
 * late), and the day filter's first size: LEVEL_EST of the day's blocks that are packed
 * (a backfill reads those) or not (compaction reads those). */
static int day_level_state(PGconn *c, const char *const *v, bool packed, bool *have,
                           uint64_t *bits)
{
    const char *pv[4] = {v[0], v[1], v[2], packed ? "t" : "f"};
    PGresult *r = NULL;
    int rc = sl_db_exec(c, "compaction query failed",
                        "SELECT EXISTS (SELECT 1 FROM log_day_filters WHERE slice = 0 AND day = "
                        "(to_timestamp($2::bigint / 1000000) AT TIME ZONE 'UTC')::date AND "
                        "source_id = $1::bigint), (SELECT " LEVEL_EST " FROM log_blocks "
                        "WHERE source_id = $1::bigint AND packed = $4::boolean AND max_received >= "
                        "'epoch'::timestamptz + $2::bigint * interval '1 us' AND min_received < "
                        "'epoch'::timestamptz + $3::bigint * interval '1 us')",
                        4, pv, &r);
    if (rc)
        return rc;
    *have = PQgetvalue(r, 0, 0)[0] == 't';
    *bits = strtoull(PQgetvalue(r, 0, 1), NULL, 10);
    PQclear(r);
    return 0;
}

/* The day level's 256 rows of (source, day), folded first. */
static int write_day_level(PGconn *c, const char *const *v, struct sl_dayfilter *df)
{
    return sl_db_level_write(c, "compaction day level failed",
                             "INSERT INTO log_day_filters (slice, day, source_id, nbits, bloom) "
                             "SELECT s, (to_timestamp($2::bigint / 1000000) AT TIME ZONE "
                             "'UTC')::date, $1::bigint, n, decode(h, 'hex') FROM "
                             "unnest($3::smallint[], $4::int[], $5::text[]) AS u (s, n, h)",
                             2, v, df);
}

/* A day packed before its day level existed (migration 13): the oldest such (source, day)
 * packed before before_us gets one now, from its packs, and its packed blocks are marked
 * coarse, in one transaction. Another node packing late rows of the same (source, day)
 * meanwhile writes the same 256 keys: one of the two fails on the primary key and rolls
 * back whole, so no block is marked coarse whose rows the filter did not see. */
static int backfill_one(PGconn *c, int64_t before_us, bool *did, struct sl_compact_stats *st)
{
    char bs[24], s[24], a[24], b[24];
    const char *bv[1] = {bs}, *v[3] = {s, a, b};
    struct sl_dayfilter df;
    PGresult *r = NULL;
    bool have = false;
    uint64_t est = 0;
    long long n = 0;
    int rc;

    *did = false;
    memset(&df, 0, sizeof(df));
    snprintf(bs, sizeof(bs), "%" PRId64, before_us / 1000000);
    if ((rc = sl_db_exec(c, "compaction query failed",
                         "SELECT b.source_id, extract(epoch FROM (b.min_received AT TIME ZONE "
                         "'UTC')::date::timestamp)::bigint FROM log_blocks b WHERE NOT b.coarse "
                         /* a packed block is never hourly: said, so log_blocks_fine serves */
                         "AND NOT b.hourly AND b.packed AND b.max_received < "
                         "to_timestamp($1::bigint) AND NOT "
                         "EXISTS (SELECT 1 FROM log_day_filters f WHERE f.slice = 0 AND f.day = "
                         "(b.min_received AT TIME ZONE 'UTC')::date AND f.source_id = b.source_id) "
                         "ORDER BY b.max_received LIMIT 1",
                         1, bv, &r)))
        return rc;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return 0;
    }
    snprintf(s, sizeof(s), "%s", PQgetvalue(r, 0, 0));
    snprintf(a, sizeof(a), "%lld", atoll(PQgetvalue(r, 0, 1)) * 1000000LL);
    snprintf(b, sizeof(b), "%lld", (atoll(PQgetvalue(r, 0, 1)) + 86400) * 1000000LL);
    PQclear(r);
    if ((rc = sl_db_exec(c, "compaction failed", "BEGIN", 0, NULL, NULL)))
        goto out;
    if ((rc = day_level_state(c, v, true, &have, &est)))
        goto fail;
    if (have)
        goto fail; /* a node wrote it meanwhile */
    if ((rc = sl_dayfilter_init(&df, est)) ||
        (rc = sl_db_level_read(c, "compaction read failed",
                               "SELECT message, CASE WHEN json_at IS NOT NULL THEN "
                               "substr(message, json_at) END FROM sl_packed_rows($1::bigint, "
                               "'epoch'::timestamptz + $2::bigint * interval '1 us', "
                               "'epoch'::timestamptz + $3::bigint * interval '1 us')",
                               3, v, &df, &n)) ||
        (rc = write_day_level(c, v, &df)) ||
        (rc = sl_db_exec(c, "compaction day level failed",
                         "UPDATE log_blocks SET coarse = true WHERE source_id = $1::bigint AND "
                         "packed AND NOT coarse AND max_received >= 'epoch'::timestamptz + "
                         "$2::bigint * interval '1 us' AND max_received < 'epoch'::timestamptz + "
                         "$3::bigint * interval '1 us'",
                         3, v, NULL)) ||
        (rc = sl_db_exec(c, "compaction commit failed", "COMMIT", 0, NULL, NULL)))
        goto fail;
    st->levels++;
    *did = true;
    sl_debug("day level added", "source=%s day_us=%s rows=%lld", s, a, n);
    goto out;
fail:
    PQclear(PQexec(c, "ROLLBACK"));
out:
    sl_dayfilter_free(&df);
    return rc;
}

/* Packs written as arrays (before the module was bound, or by a node without it) made
 * compressed, REPACK_BATCH a statement, when sluice_pack is bound (docs/search.md
 * "Compressed packs"). Each pack is read and locked in one go (FOR UPDATE returns its
 * newest version), so a pack that retention rewrote meanwhile is compressed as it now
 * is; a locked one is left for the next round. */
#define REPACK_BATCH "32"
static int repack(PGconn *c, bool *did, struct sl_compact_stats *st)
{
    PGresult *r = NULL;
    long long n;
    int rc;

    if ((rc = sl_db_exec(c, "repack failed",
                         "WITH t AS MATERIALIZED (SELECT source_id, day, min_id, "
                         "sluice_pack(rows) z FROM log_packs WHERE rows IS NOT NULL AND EXISTS "
                         "(SELECT FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang WHERE "
                         "p.oid = 'sluice_pack(logs[])'::regprocedure AND l.lanname = 'c') "
                         "ORDER BY day LIMIT " REPACK_BATCH " FOR UPDATE SKIP LOCKED) "
                         "UPDATE log_packs p SET data = t.z, rows = NULL FROM t WHERE "
                         "p.source_id = t.source_id AND p.day = t.day AND p.min_id = t.min_id "
                         "AND t.z IS NOT NULL",
                         0, NULL, &r)))
        return rc;
    n = atoll(PQcmdTuples(r));
    PQclear(r);
    st->repacked += n;
    *did = n > 0;
    return 0;
}

/* backfill_one, or when no day wants a level, repack; a failure with the connection up
 * (two nodes at once: the primary key) is logged and waits for the next round. */
static int backfill(PGconn *c, int64_t before_us, bool *did, struct sl_compact_stats *st)
{
    int rc = backfill_one(c, before_us, did, st);
    bool level = true;

    if (rc == 0 && !*did) {
        level = false;
        rc = repack(c, did, st);
    }
    if (rc && PQstatus(c) == CONNECTION_OK) {
        st->skipped++;
        sl_warn(level ? "day level skipped" : "repack skipped", "err=%d", rc);
        *did = false;
        return 0;
    }
    return rc;
}

/* One (source, day) in one transaction: the partition locked, re-blocked, packed. */
static int compact_source(PGconn *c, const char *part, int64_t src, int64_t d0, int64_t d1,
                          int fence_s, bool *busy, struct sl_compact_stats *st)
{
    char s[24], a[24], b[24], f[16], lock[96];
    const char *v[3] = {s, a, b};
    const char *fv[4] = {s, a, b, f};
    PGresult *r = NULL;
    struct newblocks nb;
    struct sl_dayfilter df;
    bool have_level = false, level = false;
    uint64_t est_bits = 0;
    long long nrows = 0, npacks = 0;
    int rc;

    memset(&df, 0, sizeof(df));
    snprintf(s, sizeof(s), "%" PRId64, src);
    snprintf(a, sizeof(a), "%" PRId64, d0);
    snprintf(b, sizeof(b), "%" PRId64, d1);
    snprintf(f, sizeof(f), "%d", fence_s);
    *busy = false;
    snprintf(lock, sizeof(lock), "LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE", part);
    nb_init(&nb);
    if ((rc = pack_partition(c, d0)) ||
        (rc = sl_db_exec(c, "compaction failed", "BEGIN", 0, NULL, NULL)))
        goto out;
    if ((rc = sl_db_exec(c, "compaction failed", "SET LOCAL work_mem = '64MB'", 0, NULL, NULL)) ||
        (rc = sl_db_exec(c, "compaction lock failed", lock, 0, NULL, NULL)))
        goto fail;
    /* A block a writer upserted lately may still be open in its memory (blocks close
     * within SL_BLOCK_MAX_AGE_US of opening): it would upsert it again over the packed
     * rows. Such a (source, day) waits. */
    if ((rc = sl_db_exec(c, "compaction query failed",
                         "SELECT EXISTS (SELECT 1 FROM log_blocks WHERE source_id = $1::bigint AND "
                         "NOT packed AND max_received >= 'epoch'::timestamptz + $2::bigint * "
                         "interval '1 us' AND min_received < 'epoch'::timestamptz + $3::bigint * "
                         "interval '1 us' AND touched_at > now() - $4::int * interval '1 second')",
                         4, fv, &r)))
        goto fail;
    *busy = PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    if (*busy) {
        PQclear(PQexec(c, "ROLLBACK"));
        goto out;
    }
    /* The day level is written once per (source, day), with its first packing; rows
     * packed later (a day's late lines) are blocks without it, read as live ones are. */
    if ((rc = day_level_state(c, v, false, &have_level, &est_bits)))
        goto fail;
    if (!have_level) {
        if ((rc = sl_dayfilter_init(&df, est_bits)))
            goto fail;
        level = true;
    }
    nb.coarse = level;
    if ((rc = clear_old(c, v)) ||
        (rc = reblock(c, src, v, &nb, level ? &df : NULL, &nrows, &npacks)) ||
        (nrows > 0 && level && (rc = write_day_level(c, v, &df))) ||
        (nrows > 0 && (rc = finish(c, v, nrows))))
        goto fail;
    if ((rc = sl_db_exec(c, "compaction commit failed", "COMMIT", 0, NULL, NULL)))
        goto out;
    st->sources += nrows > 0;
    st->rows += nrows;
    st->packs += npacks;
    sl_debug("compacted", "partition=%s source=%" PRId64 " rows=%lld packs=%lld", part, src,
            nrows, npacks);
    goto out;
fail:
    PQclear(PQexec(c, "ROLLBACK"));
out:
    nb_free(&nb);
    sl_dayfilter_free(&df);
    return rc;
}

/* The day partition holding day_us (day_us >= 0), or the oldest one after `after` (a
 * name, "" for none) that ended at or before before_us: its name and first µs. */
static int day_of(PGconn *c, int64_t before_us, int64_t day_us, const char *after, char part[16],
                  int64_t *d0, bool *found)
{
    char bs[24], ds[24];
    const char *v[3] = {bs, ds, after};
    PGresult *r = NULL;
    int rc;

    snprintf(bs, sizeof(bs), "%" PRId64, before_us / 1000000);
    snprintf(ds, sizeof(ds), "%" PRId64, day_us < 0 ? -1 : day_us / 1000000);
    /* logs_YYYYMMDD holds [D 00:00, D + 1 00:00) UTC (sl_db_ensure_partitions) */
    rc = sl_db_exec(c, "compaction query failed",
                    "SELECT c.relname, extract(epoch FROM to_date(substr(c.relname, 6), "
                    "'YYYYMMDD')::timestamp AT TIME ZONE 'UTC')::bigint FROM pg_inherits i "
                    "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'logs'::regclass "
                    "AND c.relname ~ '^logs_[0-9]{8}$' AND CASE WHEN $2::bigint >= 0 THEN "
                    "c.relname = to_char(to_timestamp($2::bigint) AT TIME ZONE 'UTC', "
                    "'\"logs_\"YYYYMMDD') ELSE (to_date(substr(c.relname, 6), 'YYYYMMDD') + 1)"
                    "::timestamp AT TIME ZONE 'UTC' <= to_timestamp($1::bigint) AND c.relname > $3 END "
                    "ORDER BY 1 LIMIT 1",
                    3, v, &r);
    if (rc)
        return rc;
    *found = PQntuples(r) > 0;
    if (*found) {
        snprintf(part, 16, "%s", PQgetvalue(r, 0, 0));
        *d0 = strtoll(PQgetvalue(r, 0, 1), NULL, 10) * 1000000;
    }
    PQclear(r);
    return 0;
}

/* The next source of the partition with rows (*src -1: none). */
static int next_source(PGconn *c, const char *part, int64_t after, int64_t *src)
{
    char sql[128], a[24];
    const char *v[1] = {a};
    PGresult *r = NULL;
    int rc;

    snprintf(a, sizeof(a), "%" PRId64, after);
    snprintf(sql, sizeof(sql), "SELECT min(source_id) FROM %s WHERE source_id > $1::bigint",
             part);
    if ((rc = sl_db_exec(c, "compaction query failed", sql, 1, v, &r)))
        return rc;
    *src = PQgetisnull(r, 0, 0) ? -1 : strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return 0;
}

/* A day whose rows all left gives its space back at once: TRUNCATE (a DELETE leaves the
 * heap to VACUUM and the index pages for good). It needs the partition's ACCESS EXCLUSIVE
 * lock, so it waits at most 200 ms (a search holding the partition goes on; the next
 * round tries again), and only when no row came back meanwhile. */
static void truncate_day(PGconn *c, const char *part)
{
    char sql[256];
    PGresult *r = NULL;
    bool empty;

    if (sl_db_exec(c, "compaction truncate failed", "BEGIN", 0, NULL, NULL))
        return;
    snprintf(sql, sizeof(sql), "SET LOCAL lock_timeout = '200ms'; LOCK TABLE %s IN ACCESS "
             "EXCLUSIVE MODE", part);
    if (sl_db_exec(c, "compaction truncate failed", sql, 0, NULL, NULL))
        goto fail;
    snprintf(sql, sizeof(sql), "SELECT NOT EXISTS (SELECT 1 FROM %s)", part);
    if (sl_db_exec(c, "compaction truncate failed", sql, 0, NULL, &r))
        goto fail;
    empty = PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    snprintf(sql, sizeof(sql), "TRUNCATE %s", part);
    if (empty && sl_db_exec(c, "compaction truncate failed", sql, 0, NULL, NULL))
        goto fail;
    if (sl_db_exec(c, "compaction truncate failed", "COMMIT", 0, NULL, NULL) == 0 && empty)
        sl_info("compacted day", "partition=%s", part);
    return;
fail:
    PQclear(PQexec(c, "ROLLBACK"));
}

int sl_compact_step(struct pg_conn *c, int64_t before_us, int fence_s,
                    struct sl_compact_stats *st, bool *did)
{
    char part[16];
    int64_t d0 = 0, src;
    bool found, busy = false;
    int rc;

    *did = false;
    /* bounded: a step visits at most this many sources or partitions */
    for (int i = 0; i < 1000; i++) {
        if (st->part[0] == '\0') {
            if ((rc = day_of(c, before_us, -1, "", part, &d0, &found)))
                return rc;
            if (!found)
                return backfill(c, before_us, did, st);
            snprintf(st->part, sizeof(st->part), "%s", part);
            st->d0 = d0;
            st->after = -1;
        }
        if ((rc = next_source(c, st->part, st->after, &src)))
            return rc;
        if (src < 0) {
            /* this day is done (or waits): the next one that ended, or a new round */
            if (st->packed_here)
                truncate_day(c, st->part);
            st->packed_here = false;
            if ((rc = day_of(c, before_us, -1, st->part, part, &d0, &found)))
                return rc;
            if (!found) {
                st->part[0] = '\0';
                return backfill(c, before_us, did, st);
            }
            snprintf(st->part, sizeof(st->part), "%s", part);
            st->d0 = d0;
            st->after = -1;
            continue;
        }
        st->after = src;
        rc = compact_source(c, st->part, src, st->d0, st->d0 + DAY_US, fence_s, &busy, st);
        if (rc && PQstatus(c) == CONNECTION_OK) {
            /* logged; the step goes on with the day's next source */
            st->skipped++;
            sl_warn("compaction skipped", "partition=%s source=%" PRId64, st->part, src);
            *did = true;
            return 0;
        }
        if (rc)
            return rc;
        if (busy) {
            st->busy++;
            continue;
        }
        st->packed_here = true;
        *did = true;
        return 0;
    }
    return 0;
}

int sl_compact_day(struct pg_conn *c, int64_t day_us, int fence_s, struct sl_compact_stats *st)
{
    char part[16];
    int64_t d0 = 0, src = -1;
    bool found, busy;
    int rc;

    if ((rc = day_of(c, 0, day_us, "", part, &d0, &found)) || !found)
        return rc;
    for (;;) {
        if ((rc = next_source(c, part, src, &src)))
            return rc;
        if (src < 0) {
            truncate_day(c, part);
            return 0;
        }
        if ((rc = compact_source(c, part, src, d0, d0 + DAY_US, fence_s, &busy, st)))
            return rc;
        st->busy += busy;
    }
}
