/* The hour level (include/sluice/hourlevel.h, docs/search.md "The hour level").
 *
 * One step, one transaction:
 *   1. the next (source, hour) of the round, after its place (hour, source): the first
 *      hour with a live block (neither packed nor coarse nor hourly; log_blocks_fine)
 *      whose newest row is in a closed hour, untouched by a writer for the fence, and
 *      the first such source of that hour;
 *   2. that (source, hour)'s such blocks, FOR UPDATE (a writer's late upsert of one waits;
 *      another node doing the same (source, hour) waits, then finds them marked), at most
 *      SL_HOUR_LEVEL_MAX_BLOCKS and about SL_HOUR_LEVEL_MAX_ROWS rows;
 *   3. the source's rows within their bounds (times and ids: a superset of their rows,
 *      other blocks' rows in between only add tokens) through a cursor, every token into
 *      one sliced filter (drain/dayfilter.c, SL_HOURFILTER_SLICES slices);
 *   4. the blocks marked hourly, the filter's rows written (gen: a new value of
 *      log_hour_filters_gen), COMMIT. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "sluice/buf.h"
#include "sluice/dayfilter.h"
#include "sluice/db.h"
#include "sluice/hourlevel.h"
#include "sluice/log.h"

#define HOUR_S ((int64_t)3600)

#define TS_US(col) "(extract(epoch from " col ") * 1000000)::bigint"
/* a live block (of log_blocks b) without a level, untouched by a writer for $4 seconds,
 * spanning less than an hour (a search looks its hour up from its window: the hour of its
 * newest row is at most one past the window's last; a restored day's blocks span more) */
#define DUE                                                                                        \
    "NOT b.coarse AND NOT b.hourly AND NOT b.packed AND b.touched_at < now() - $4::int * "       \
    "interval '1 second' AND b.max_received - b.min_received < interval '1 hour'"

/* Step 1: the next (source, hour) due after the round's place. */
static int next_due(PGconn *c, int64_t before_us, int fence_s, const struct sl_hour_level_stats *st,
                    int64_t *src, int64_t *hour, bool *found)
{
    char h[24], b[24], a[24], f[16];
    const char *v[4] = {h, b, a, f};
    PGresult *r = NULL;
    int rc;

    snprintf(h, sizeof(h), "%" PRId64, st->hour);
    /* the hours that ended at or before before_us */
    snprintf(b, sizeof(b), "%" PRId64, before_us / 1000000 / HOUR_S * HOUR_S);
    snprintf(a, sizeof(a), "%" PRId64, st->after);
    snprintf(f, sizeof(f), "%d", fence_s);
    /* the first hour with a due block after the place, then its first due source after
     * the place: blocks are found in max_received order (log_blocks_fine), sources
     * within the hour in id order */
    rc = sl_db_exec(c, "hour level query failed",
                    "WITH h AS (SELECT (floor(extract(epoch FROM b.max_received) / 3600) * "
                    "3600)::bigint AS h FROM log_blocks b WHERE " DUE " AND b.max_received >= "
                    "to_timestamp($1::bigint) AND b.max_received < to_timestamp($2::bigint) AND "
                    "(b.max_received >= to_timestamp($1::bigint + 3600) OR b.source_id > "
                    "$3::bigint) ORDER BY b.max_received LIMIT 1) "
                    "SELECT min(b.source_id), h.h FROM h JOIN log_blocks b ON b.max_received >= "
                    "to_timestamp(h.h) AND b.max_received < to_timestamp(h.h + 3600) WHERE " DUE
                    " AND (h.h > $1::bigint OR b.source_id > $3::bigint) GROUP BY h.h",
                    4, v, &r);
    if (rc)
        return rc;
    *found = PQntuples(r) > 0;
    if (*found) {
        *src = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        *hour = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    }
    PQclear(r);
    return 0;
}

/* Step 3: every token of the rows of src received in [r0, r1] with ids in [i0, i1]. */
static int read_rows(PGconn *c, const char *src, int64_t r0, int64_t r1, int64_t i0, int64_t i1,
                     struct sl_dayfilter *df, long long *nrows)
{
    char a[24], b[24], x[24], y[24];
    const char *v[5] = {src, a, b, x, y};

    snprintf(a, sizeof(a), "%" PRId64, r0);
    snprintf(b, sizeof(b), "%" PRId64, r1);
    snprintf(x, sizeof(x), "%" PRId64, i0);
    snprintf(y, sizeof(y), "%" PRId64, i1);
    return sl_db_level_read(c, "hour level read failed",
                            "SELECT message, CASE WHEN json_at IS NOT NULL THEN substr(message, "
                            "json_at) END FROM logs WHERE source_id = $1::bigint AND received_at "
                            ">= 'epoch'::timestamptz + $2::bigint * interval '1 us' AND "
                            "received_at <= 'epoch'::timestamptz + $3::bigint * interval '1 us' "
                            "AND id BETWEEN $4::bigint AND $5::bigint",
                            5, v, df, nrows);
}

/* Step 4: the filter's rows of (src, hour), a new gen. */
static int write_level(PGconn *c, const char *src, const char *hour, struct sl_dayfilter *df)
{
    const char *v[2] = {src, hour};

    return sl_db_level_write(c, "hour level write failed",
                             "INSERT INTO log_hour_filters (slice, hour, source_id, gen, nbits, "
                             "bloom) SELECT s, to_timestamp($2::bigint), $1::bigint, g.g, n, "
                             "decode(h, 'hex') FROM (SELECT nextval('log_hour_filters_gen') AS g) "
                             "g, unnest($3::smallint[], $4::int[], $5::text[]) AS u (s, n, h)",
                             2, v, df);
}

/* Steps 2-4 for (src, hour) in one transaction. */
static int build(PGconn *c, int64_t src, int64_t hour, int fence_s, struct sl_hour_level_stats *st,
                 bool *more)
{
    char s[24], h[24], f[16], lim[16];
    const char *v[4] = {s, h, f, lim};
    struct sl_dayfilter df;
    struct sl_buf keys;
    PGresult *r = NULL;
    int64_t r0 = INT64_MAX, r1 = INT64_MIN, i0 = INT64_MAX, i1 = INT64_MIN;
    uint64_t est = 0, est_rows = 0;
    long long rows = 0, marked;
    int n = 0, rc;

    *more = false;
    memset(&df, 0, sizeof(df));
    sl_buf_init(&keys, (size_t)SL_HOUR_LEVEL_MAX_BLOCKS * 24 + 4);
    snprintf(s, sizeof(s), "%" PRId64, src);
    snprintf(h, sizeof(h), "%" PRId64, hour);
    snprintf(f, sizeof(f), "%d", fence_s);
    snprintf(lim, sizeof(lim), "%d", SL_HOUR_LEVEL_MAX_BLOCKS);
    if ((rc = sl_db_exec(c, "hour level failed", "BEGIN", 0, NULL, NULL)))
        goto out;
    if ((rc = sl_db_exec(c, "hour level query failed",
                         "SELECT min_id, max_id, nrows, nbits, " TS_US("min_received") ", "
                         TS_US("max_received") " FROM log_blocks WHERE source_id = $1::bigint "
                         "AND max_received >= to_timestamp($2::bigint) AND max_received < "
                         "to_timestamp($2::bigint + 3600) AND NOT coarse AND NOT hourly AND NOT "
                         "packed AND touched_at < now() - $3::int * interval '1 second' AND "
                         "max_received - min_received < interval '1 hour' ORDER BY "
                         "min_id LIMIT $4::int FOR UPDATE",
                         4, v, &r)))
        goto fail;
    for (int i = 0; i < PQntuples(r); i++) {
        int64_t a = strtoll(PQgetvalue(r, i, 0), NULL, 10), b = strtoll(PQgetvalue(r, i, 1), NULL, 10);
        int64_t nr = strtoll(PQgetvalue(r, i, 2), NULL, 10), nbits = strtoll(PQgetvalue(r, i, 3), NULL, 10);
        int64_t t0 = strtoll(PQgetvalue(r, i, 4), NULL, 10), t1 = strtoll(PQgetvalue(r, i, 5), NULL, 10);
        if (n > 0 && est_rows + (uint64_t)nr > SL_HOUR_LEVEL_MAX_ROWS) {
            *more = true; /* the rest: another set, next step */
            break;
        }
        if (sl_buf_addf(&keys, "%s%" PRId64, n ? "," : "{", a)) {
            PQclear(r);
            rc = SL_ENOMEM;
            goto fail;
        }
        n++;
        est += (uint64_t)nbits;
        est_rows += (uint64_t)nr;
        r0 = t0 < r0 ? t0 : r0;
        r1 = t1 > r1 ? t1 : r1;
        i0 = a < i0 ? a : i0;
        i1 = b > i1 ? b : i1;
    }
    *more = *more || n == SL_HOUR_LEVEL_MAX_BLOCKS;
    PQclear(r);
    if (n == 0) { /* another node marked them meanwhile, or a writer touched them */
        PQclear(PQexec(c, "ROLLBACK"));
        goto out;
    }
    if (sl_buf_add(&keys, "}", 2)) {
        rc = SL_ENOMEM;
        goto fail;
    }
    /* the first size: 10 bits per token of each block, or 16 per row when more (blocks
     * whose filters say yes to everything), as the day level (drain/compact.c) */
    if (est < est_rows * 16)
        est = est_rows * 16;
    if ((rc = sl_dayfilter_init_sliced(&df, est, SL_HOURFILTER_SLICES)) ||
        (rc = read_rows(c, s, r0, r1, i0, i1, &df, &rows)))
        goto fail;
    {
        const char *mv[2] = {s, keys.p};
        if ((rc = sl_db_exec(c, "hour level mark failed",
                             "UPDATE log_blocks SET hourly = true WHERE source_id = $1::bigint AND "
                             "min_id = ANY($2::bigint[])",
                             2, mv, &r)))
            goto fail;
    }
    marked = atoll(PQcmdTuples(r));
    PQclear(r);
    if (marked != n) {
        sl_error("hour level mark failed", "source=%s hour=%s marked=%lld blocks=%d", s, h, marked,
                 n);
        rc = SL_EDB;
        goto fail;
    }
    if ((rc = write_level(c, s, h, &df)) ||
        (rc = sl_db_exec(c, "hour level commit failed", "COMMIT", 0, NULL, NULL)))
        goto fail;
    st->levels++;
    st->blocks += n;
    st->rows += rows;
    sl_debug("hour level", "source=%s hour=%s blocks=%d rows=%lld bytes=%zu", s, h, n, rows,
             sl_dayfilter_bytes(&df));
    goto out;
fail:
    PQclear(PQexec(c, "ROLLBACK"));
out:
    sl_buf_free(&keys);
    sl_dayfilter_free(&df);
    return rc;
}

int sl_hour_level_step(struct pg_conn *c, int64_t before_us, int fence_s,
                       struct sl_hour_level_stats *st, bool *did)
{
    int64_t src = 0, hour = 0;
    bool found, more = false;
    int rc;

    *did = false;
    if ((rc = next_due(c, before_us, fence_s, st, &src, &hour, &found)))
        return rc;
    if (!found) { /* the round is over */
        st->hour = 0;
        st->after = -1;
        return 0;
    }
    /* the round moves past (source, hour) whatever comes of it: a failure is not retried
     * before the next round */
    st->hour = hour;
    st->after = src;
    *did = true;
    rc = build(c, src, hour, fence_s, st, &more);
    if (rc == 0 && more)
        st->after = src - 1; /* the source's next set of this hour comes next */
    if (rc && PQstatus(c) == CONNECTION_OK) {
        st->skipped++;
        sl_warn("hour level skipped", "source=%" PRId64 " hour=%" PRId64 " err=%d", src, hour, rc);
        return 0;
    }
    return rc;
}
