/* Writer thread (include/sluice/writer.h): spooled entries -> COPY BINARY into
 * `logs`, frame-id de-duplication, the `log_blocks` token filters of the rows
 * (drain/blocks.c, docs/search.md) and the spool checkpoint in the same transaction.
 * A batch's records are COPYed grouped by source (a stable sort), so a block's rows sit on
 * few heap pages. The transaction's last statement numbers it in log_commits (one row per
 * source: id and time ranges) under the commit-order lock and NOTIFYs sluice_commits; after
 * COMMIT its number goes to the commit feed (live tail, on this node and every other).
 * Runs on its own thread with its own PostgreSQL connection; talks to the event loop
 * only through the spool and the atomic metrics. The batch arithmetic (cut, COPY
 * pieces, frame-id decisions, order, id blocks, counts) is pure, in drain/batch.c. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "sluice/batch.h"
#include "sluice/blocks.h"
#include "sluice/clock.h"
#include "sluice/crash.h"
#include "sluice/db.h"
#include "sluice/enc.h"
#include "sluice/entry.h"
#include "sluice/eval.h"
#include "sluice/feed.h"
#include "sluice/fields.h"
#include "sluice/log.h"
#include "sluice/metrics.h"
#include "sluice/row.h"
#include "sluice/spool.h"
#include "sluice/str.h"
#include "sluice/writer.h"

/* COPY data goes to libpq in small pieces (SL_BATCH_COPY_CHUNK) so that PostgreSQL always
 * has rows waiting in the socket while the writer encodes the next ones: with 1 MiB pieces
 * it sat idle for most of each piece (the socket holds ~200 KB). Measured 2026-12-06, 1M
 * spooled lines drained with no client running: 188k lines/s with 1 MiB pieces, 205k with
 * 16 KiB. The batch arithmetic itself is pure, in drain/batch.c. */
#define BATCH_MAX_BYTES SL_BATCH_MAX_BYTES
#define COPY_CHUNK SL_BATCH_COPY_CHUNK

struct rec {
    size_t off, len;   /* in the arena */
    uint64_t end_lsn;
    int64_t source_id; /* for the grouping by source; 0 when undecodable */
    bool dup;          /* a retried frame already stored */
};


struct sl_writer {
    struct sl_writer_opts o;
    pthread_t thread;
    bool started;
    _Atomic int stop;          /* 1: drain then exit */
    _Atomic int64_t deadline;  /* ms, when stopping */
    PGconn *pg;
    struct sl_spool_reader *reader;
    uint64_t committed_lsn;
    struct sl_buf arena;
    struct rec *recs;
    size_t nrecs, caprecs;
    struct sl_batch_ord *ord;
    size_t capord;
    struct sl_batch_frame *frames; /* de-duplication view of the records being committed */
    size_t capframes;
    size_t rows;
    struct sl_buf copy, scratch, tags, sql, sql2;
    struct sl_buf jextra; /* a JSON line's extra filter words (w_block_row) */
    struct sl_blocks *blocks; /* open token-filter blocks, one per source */
    struct sl_buf bsql;       /* the log_blocks upsert's arrays */
    struct sl_batch_days known_days; /* day partitions this writer made or saw */
    int64_t next_id, id_end; /* row ids: a block of 2^20 from logs_id_block_seq */
    struct sl_batch_groups grps; /* this transaction's rows per source (log_commits) */
    struct sl_buf csql;      /* the commit stamp's arrays */
    struct sl_eval *ev;
    unsigned rules_version;
    bool rules_loaded;
    struct sl_buf anchors; /* this batch's crash anchors as a JSON array (w_anchor) */
    size_t nanchors;
};

#define log_pg sl_db_log_error

static bool stopping_now(struct sl_writer *w)
{
    return atomic_load(&w->stop) && sl_clock_mono_ms() >= atomic_load(&w->deadline);
}

/* Connect, read this node's checkpoint, open the reader there. */
static int w_connect(struct sl_writer *w)
{
    const char *node = sl_spool_node_id(w->o.spool);
    const char *vals[1] = {node};
    PGresult *r;
    int rc;

    if (w->pg == NULL) {
        if ((rc = sl_db_connect(w->o.database_url, &w->pg)))
            return rc;
    } else if (!sl_db_ok(w->pg))
        return SL_EDB;
    if ((rc = sl_db_exec(w->pg, "checkpoint read failed",
                         "SELECT lsn FROM spool_checkpoints WHERE node_id = $1", 1, vals, &r)))
        return rc;
    w->committed_lsn = PQntuples(r) ? strtoull(PQgetvalue(r, 0, 0), NULL, 10) : 0;
    PQclear(r);
    sl_spool_reader_free(w->reader);
    w->reader = NULL;
    if ((rc = sl_spool_reader_open(w->o.spool, w->committed_lsn, &w->reader)))
        return rc;
    sl_spool_release(w->o.spool, w->committed_lsn);
    w->nrecs = 0;
    w->rows = 0;
    sl_buf_reset(&w->arena);
    w->rules_loaded = false;
    w->id_end = w->next_id = 0;
    sl_blocks_abort(w->blocks);
    sl_info("writer connected", "node=%s checkpoint_lsn=%" PRIu64, node, w->committed_lsn);
    atomic_store(&sl_metrics.db_up, 1);
    return 0;
}

/* Read records into the batch until it is full or nothing more is synced. */
static int w_fill(struct sl_writer *w)
{
    while (!sl_batch_full(w->rows, w->arena.len, w->o.batch_rows)) {
        const void *p;
        size_t len;
        uint64_t end;
        struct sl_entry e;
        int rc = sl_spool_reader_next(w->reader, &p, &len, &end);

        if (rc <= 0)
            return rc;
        if (w->nrecs == w->caprecs) {
            size_t nc = w->caprecs ? w->caprecs * 2 : 256;
            struct rec *nr = realloc(w->recs, nc * sizeof(*nr));
            if (nr == NULL)
                return SL_ENOMEM;
            w->recs = nr;
            w->caprecs = nc;
        }
        w->recs[w->nrecs].off = w->arena.len;
        w->recs[w->nrecs].len = len;
        w->recs[w->nrecs].end_lsn = end;
        w->recs[w->nrecs].dup = false;
        w->recs[w->nrecs].source_id = 0;
        if ((rc = sl_buf_add(&w->arena, p, len)))
            return rc;
        if (sl_entry_decode(p, len, &e) == 0) {
            w->recs[w->nrecs].source_id = e.source_id;
            if (w->nrecs == 0)
                atomic_store(&sl_metrics.spool_oldest_us, (uint64_t)e.received_us);
            w->rows += e.nmsgs;
        }
        w->nrecs++;
    }
    return 1;
}

/* Mark retried frames: within the batch, then against ingest_frames (inserting the
 * new ones, in the current transaction). The decision is sl_batch_frames_*. */
static int w_dedupe(struct sl_writer *w, size_t from, size_t to)
{
    PGresult *r;
    const char *vals[2];
    size_t n = to - from;
    int rc;

    if (n > w->capframes) {
        struct sl_batch_frame *f = realloc(w->frames, n * sizeof(*f));
        if (f == NULL)
            return SL_ENOMEM;
        w->frames = f;
        w->capframes = n;
    }
    for (size_t i = from; i < to; i++) {
        struct sl_batch_frame *f = &w->frames[i - from];
        struct sl_entry e;

        f->source_id = 0;
        f->id = SL_STR_NULL;
        f->dup = w->recs[i].dup;
        if (sl_entry_decode(w->arena.p + w->recs[i].off, w->recs[i].len, &e) == 0) {
            f->source_id = e.source_id;
            f->id = e.frame_id;
        }
    }
    rc = sl_batch_frames_mark(w->frames, n) == 0;
    for (size_t i = from; i < to; i++)
        w->recs[i].dup = w->frames[i - from].dup;
    if (rc) /* nothing to ask */
        return 0;
    sl_buf_reset(&w->sql);
    sl_buf_reset(&w->sql2);
    if (sl_batch_frames_arrays(w->frames, n, &w->sql, &w->sql2))
        return SL_ENOMEM;
    vals[0] = w->sql.p;
    vals[1] = w->sql2.p;
    if (sl_db_exec(w->pg, "frame de-duplication failed",
                   "INSERT INTO ingest_frames (source_id, frame_id) "
                   "SELECT * FROM unnest($1::bigint[], $2::text[]) "
                   "ON CONFLICT DO NOTHING RETURNING source_id, frame_id",
                   2, vals, &r)) {
        /* PostgreSQL never answered for the asked frames: they are not known duplicates,
         * so the retry (entry by entry, in a new transaction) must ask again. Keeping the
         * "duplicate until PostgreSQL says new" mark would skip acknowledged lines. */
        for (size_t i = 0; i < n; i++)
            if (w->frames[i].ask)
                w->recs[from + i].dup = false;
        return SL_EDB;
    }
    for (int k = 0; k < PQntuples(r); k++) {
        const char *fid = PQgetvalue(r, k, 1);
        long i = sl_batch_frames_stored(w->frames, n, strtoll(PQgetvalue(r, k, 0), NULL, 10), fid,
                                        strlen(fid));
        if (i >= 0)
            w->recs[from + (size_t)i].dup = false;
    }
    PQclear(r);
    return 0;
}

static int w_partitions(struct sl_writer *w, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++) {
        struct sl_entry e;
        int64_t day;

        if (sl_entry_decode(w->arena.p + w->recs[i].off, w->recs[i].len, &e))
            continue;
        day = sl_batch_day(e.received_us);
        if (sl_batch_days_has(&w->known_days, day))
            continue;
        if (sl_db_ensure_partitions(w->pg, e.received_us, 1))
            return SL_EDB;
        sl_batch_days_add(&w->known_days, day);
    }
    return 0;
}

static int put_copy(struct sl_writer *w, bool final)
{
    if (!sl_batch_copy_due(w->copy.len, final))
        return 0;
    if (PQputCopyData(w->pg, w->copy.p, (int)w->copy.len) != 1) {
        log_pg("copy send failed", w->pg, NULL);
        return SL_EDB;
    }
    sl_buf_reset(&w->copy);
    return 0;
}

static size_t w_rows(struct sl_writer *w, size_t from, size_t to)
{
    size_t n = 0;
    for (size_t i = from; i < to; i++) {
        struct sl_entry e;
        if (sl_entry_decode(w->arena.p + w->recs[i].off, w->recs[i].len, &e) == 0)
            n += e.nmsgs;
    }
    return n;
}

/* Enough row ids for n rows (outside COPY: this may ask PostgreSQL for a block).
 * Ids are unique across nodes; a block left unused is a harmless gap. */
static int w_reserve_ids(struct sl_writer *w, size_t n)
{
    PGresult *r;
    int64_t b;
    int need = sl_batch_ids_need(w->next_id, w->id_end, n);

    if (need <= 0)
        return need;
    if (sl_db_exec(w->pg, "row id block failed", "SELECT nextval('logs_id_block_seq')", 0, NULL,
                   &r))
        return SL_EDB;
    b = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    sl_batch_ids_block(b, &w->next_id, &w->id_end);
    /* A token-filter block's ids stay inside one id block, so another node's ids can never
     * fall inside its range. Between batches every open block is stored as it is, so
     * forgetting them here closes them. */
    sl_blocks_abort(w->blocks);
    return 0;
}

/* Reload the alert rules when `sluice rules apply` changed them. */
static void w_rules(struct sl_writer *w)
{
    unsigned v = atomic_load(&sl_rules_version);

    if (w->ev == NULL || (w->rules_loaded && v == w->rules_version))
        return;
    if (sl_eval_load(w->ev, w->pg, false) == 0) {
        w->rules_version = v;
        w->rules_loaded = true;
    }
}

/* w->ord[0 .. to - from): records [from, to) grouped by source, spool order within a
 * source (the index breaks ties, so qsort is stable here). Records are per request and per
 * source, so this moves whole requests; the checkpoint and de-duplication do not depend
 * on the order. */
static int w_order(struct sl_writer *w, size_t from, size_t to)
{
    size_t n = to - from;

    if (n > w->capord) {
        struct sl_batch_ord *o = realloc(w->ord, n * sizeof(*o));
        if (o == NULL)
            return SL_ENOMEM;
        w->ord = o;
        w->capord = n;
    }
    for (size_t i = 0; i < n; i++) {
        w->ord[i].source_id = w->recs[from + i].source_id;
        w->ord[i].idx = from + i;
    }
    sl_batch_order(w->ord, n);
    return 0;
}

/* The row's tokens go to its source's block: the text exactly as stored in
 * logs.message (row.c repaired it once, into info->text). */
static int w_block_row(struct sl_writer *w, const struct sl_entry *e, int64_t id,
                       const struct sl_row_info *info)
{
    /* A JSON line whose strings hold escapes or whose numbers are not written
     * canonically (rare) also gives its decoded words (docs/search.md, "JSON lines") */
    if (info->has_json && (info->json.escapes || info->json.odd_numbers)) {
        const char *obj = info->text.p + info->json.off;
        size_t n = info->text.len - info->json.off;
        sl_buf_reset(&w->jextra);
        if (sl_fields_json_extra(obj, n, &w->jextra) == 0)
            return sl_blocks_add_json(w->blocks, e->source_id, id, e->received_us,
                                      info->text.p, info->text.len, info->json.off,
                                      w->jextra.p, w->jextra.len);
        return SL_ENOMEM; /* its cap holds any object's words (fields.h) */
    }
    if (info->has_json) /* its numeric leaves' classes (sl_fields_num_classes) */
        return sl_blocks_add_json(w->blocks, e->source_id, id, e->received_us, info->text.p,
                                  info->text.len, info->json.off, NULL, 0);
    return sl_blocks_add(w->blocks, e->source_id, id, e->received_us, info->text.p,
                         info->text.len);
}

/* A crash anchor (docs/crashes.md): a line sl_crash_anchor() flags joins this batch's
 * JSON array [line id, source id, procid, kind, own time µs, received µs], stored by
 * w_anchors_insert in the rows' transaction. Only procids of printable ASCII (Heroku's
 * "web.1", "router", "api") are kept, so the JSON is valid whatever the bytes were. */
static int w_anchor(struct sl_writer *w, const struct sl_entry *e, int64_t id,
                    const struct sl_row_info *info)
{
    struct sl_str proc = info->sl.procid;
    enum sl_crash_anchor k;

    if (info->parse_error || proc.len == 0 || proc.len > 128)
        return 0;
    k = sl_crash_anchor(info->sl.app_name, proc, info->text);
    if (k == SL_CRASH_NONE)
        return 0;
    for (size_t i = 0; i < proc.len; i++)
        if ((unsigned char)proc.p[i] < 0x21 || (unsigned char)proc.p[i] > 0x7e ||
            proc.p[i] == '"' || proc.p[i] == '\\')
            return 0;
    w->nanchors++;
    return sl_buf_addf(&w->anchors, "%s[%" PRId64 ",%" PRId64 ",\"%.*s\",%d,%" PRId64 ",%" PRId64 "]",
                       w->nanchors > 1 ? "," : "[", id, e->source_id, (int)proc.len, proc.p,
                       (int)k, info->sl.has_ts ? info->sl.ts_us : e->received_us,
                       e->received_us);
}

/* The batch's anchors, one statement (nothing when there are none). Release lines are
 * stored consumed: they only name the release of later crashes. */
static int w_anchors_insert(struct sl_writer *w)
{
    const char *vals[1];

    if (w->nanchors == 0)
        return 0;
    if (sl_buf_add(&w->anchors, "]", 2))
        return SL_ENOMEM;
    vals[0] = w->anchors.p;
    return sl_db_exec(w->pg, "crash anchors insert failed",
                      "INSERT INTO crash_anchors (line_id, source_id, procid, kind, line_at, "
                      "received_at, consumed) SELECT (a->>0)::bigint, (a->>1)::bigint, a->>2, "
                      "(a->>3)::smallint, 'epoch'::timestamptz + (a->>4)::bigint * interval '1 us', "
                      "'epoch'::timestamptz + (a->>5)::bigint * interval '1 us', (a->>3)::int = 3 "
                      "FROM jsonb_array_elements($1::jsonb) a ON CONFLICT (line_id) DO NOTHING",
                      1, vals, NULL);
}

#define STAMP_COLS 6

/* The transaction's last statement: number it in log_commits (sl_commit_stamp, under the
 * commit-order lock until COMMIT) and announce it (NOTIFY sluice_commits at COMMIT).
 * *seq: its number. */
static int w_stamp(struct sl_writer *w, int64_t *seq)
{
    const char *vals[STAMP_COLS + 1];
    size_t start[STAMP_COLS];
    PGresult *r;
    int rc = 0;

    sl_buf_reset(&w->csql);
    for (int c = 0; c < STAMP_COLS && rc == 0; c++) {
        start[c] = w->csql.len;
        rc = sl_buf_addc(&w->csql, '{');
        for (size_t i = 0; i < w->grps.n && rc == 0; i++) {
            const struct sl_batch_group *g = &w->grps.g[i];
            const int64_t v[STAMP_COLS] = {g->source_id, g->id_lo,   g->id_hi,
                                           g->rmin_us,   g->rmax_us, g->nrows};
            rc = sl_buf_addf(&w->csql, "%s%" PRId64, i ? "," : "", v[c]);
        }
        if (rc == 0)
            rc = sl_buf_add(&w->csql, "}", 2); /* with the NUL that ends the parameter */
    }
    if (rc)
        return rc;
    vals[0] = sl_spool_node_id(w->o.spool);
    for (int c = 0; c < STAMP_COLS; c++)
        vals[c + 1] = w->csql.p + start[c];
    if (sl_db_exec(w->pg, "commit stamp failed",
                   "SELECT sl_commit_stamp($1, $2::bigint[], $3::bigint[], $4::bigint[], "
                   "$5::bigint[], $6::bigint[], $7::int[])",
                   STAMP_COLS + 1, vals, &r))
        return SL_EDB;
    *seq = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return 0;
}

/* COPY the rows of records [from, to), grouped by source. */
static int w_copy(struct sl_writer *w, size_t from, size_t to, struct sl_batch_counts *bc)
{
    PGresult *r;
    int rc;

    if (w_order(w, from, to))
        return SL_ENOMEM;
    r = PQexec(w->pg, "COPY logs (" SL_ROW_COLUMNS ") FROM STDIN (FORMAT binary)");
    if (PQresultStatus(r) != PGRES_COPY_IN) {
        log_pg("copy start failed", w->pg, r);
        PQclear(r);
        return SL_EDB;
    }
    PQclear(r);
    sl_buf_reset(&w->copy);
    sl_buf_reset(&w->anchors);
    w->nanchors = 0;
    rc = sl_row_copy_header(&w->copy);
    bc->id_lo = w->next_id;
    for (size_t o = 0; o < to - from && rc == 0; o++) {
        size_t i = w->ord[o].idx;
        const char *p = w->arena.p + w->recs[i].off;
        size_t len = w->recs[i].len, off;
        struct sl_entry e;
        struct sl_entry_msg m;
        int k;

        if (sl_entry_decode(p, len, &e)) {
            sl_error("spool entry undecodable", "lsn=%" PRIu64, w->recs[i].end_lsn);
            continue;
        }
        if (w->recs[i].dup) {
            sl_batch_count_dup(bc, e.nmsgs);
            continue;
        }
        sl_buf_reset(&w->tags);
        if ((rc = sl_row_tags_json(e.tags, &w->tags)))
            break;
        off = e.msgs_off;
        while ((k = sl_entry_next(p, len, &off, &m)) == 1) {
            struct sl_row_info info;
            int64_t id = w->next_id++;
            if ((rc = sl_row_build(&w->copy, id, &e, &m, sl_str_make(w->tags.p, w->tags.len),
                                   &w->scratch, &info)) ||
                (rc = put_copy(w, false)) || (rc = w_block_row(w, &e, id, &info)) ||
                (rc = sl_batch_group_row(&w->grps, e.source_id, id, e.received_us)))
                break;
            if (w->ev)
                sl_eval_line(w->ev, id, &e, &info);
            if (w->o.crashes && (rc = w_anchor(w, &e, id, &info)))
                break;
            sl_batch_count_row(bc, id, e.received_us, &info, m.flags);
        }
        if (k < 0)
            sl_error("spool entry truncated", "lsn=%" PRIu64, w->recs[i].end_lsn);
    }
    if (rc == 0)
        rc = sl_row_copy_trailer(&w->copy);
    if (rc == 0)
        rc = put_copy(w, true);
    if (PQputCopyEnd(w->pg, rc ? "sluice: row encoding failed" : NULL) != 1) {
        log_pg("copy end failed", w->pg, NULL);
        return SL_EDB;
    }
    r = PQgetResult(w->pg);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        log_pg("copy failed", w->pg, r);
        rc = SL_EDB;
    }
    PQclear(r);
    while ((r = PQgetResult(w->pg)) != NULL)
        PQclear(r);
    return rc;
}

#define BLOCK_COLS 8

/* Upsert the log_blocks row of every block this batch touched (closed ones included), in
 * one statement: eight arrays unnested side by side. Times go as µs since the epoch
 * (exact: interval arithmetic is in whole µs), filters as hex text. */
static int w_blocks_upsert(struct sl_writer *w)
{
    const struct sl_block_row *rows;
    size_t n, start[BLOCK_COLS];
    const char *vals[BLOCK_COLS];
    int rc;

    if ((rc = sl_blocks_rows(w->blocks, &rows, &n)))
        return rc;
    if (n == 0)
        return 0;
    sl_buf_reset(&w->bsql);
    for (int c = 0; c < BLOCK_COLS && rc == 0; c++) {
        start[c] = w->bsql.len;
        rc = sl_buf_addc(&w->bsql, '{');
        for (size_t i = 0; i < n && rc == 0; i++) {
            const struct sl_block_row *b = &rows[i];
            const int64_t v[BLOCK_COLS - 1] = {b->source_id, b->min_received_us,
                                               b->max_received_us, b->min_id, b->max_id,
                                               b->nrows, b->nbits};
            if (i && (rc = sl_buf_addc(&w->bsql, ',')))
                break;
            rc = c < BLOCK_COLS - 1 ? sl_buf_addf(&w->bsql, "%" PRId64, v[c])
                                    : sl_enc_hex_buf(&w->bsql, b->bloom, b->nbits / 8);
        }
        if (rc == 0)
            rc = sl_buf_add(&w->bsql, "}", 2); /* with the NUL that ends the parameter */
    }
    if (rc)
        return rc;
    for (int c = 0; c < BLOCK_COLS; c++)
        vals[c] = w->bsql.p + start[c];
    return sl_db_exec(w->pg, "log_blocks upsert failed", SL_BLOCKS_UPSERT_SQL, BLOCK_COLS, vals,
                      NULL);
}

static int exec_ok(PGconn *c, const char *sql)
{
    return sl_db_exec(c, "statement failed", sql, 0, NULL, NULL);
}

/* Upsert this node's checkpoint (inside the caller's transaction, if any). */
static int w_checkpoint(struct sl_writer *w, uint64_t lsn)
{
    char ls[24];
    const char *vals[2] = {sl_spool_node_id(w->o.spool), ls};

    snprintf(ls, sizeof(ls), "%" PRIu64, lsn);
    return sl_db_exec(w->pg, "checkpoint write failed",
                      "INSERT INTO spool_checkpoints (node_id, lsn) VALUES ($1, $2::bigint) "
                      "ON CONFLICT (node_id) DO UPDATE SET lsn = EXCLUDED.lsn, updated_at = now()",
                      2, vals, NULL);
}

/* One transaction for records [from, to). */
static int w_commit_range(struct sl_writer *w, size_t from, size_t to)
{
    struct sl_batch_counts bc = {0};
    struct timespec a, b;
    int64_t seq = 0;

    clock_gettime(CLOCK_MONOTONIC, &a);
    if (w_partitions(w, from, to) || w_reserve_ids(w, w_rows(w, from, to)))
        return SL_EDB;
    w_rules(w);
    if (w->ev)
        sl_eval_begin(w->ev);
    sl_blocks_begin(w->blocks, sl_clock_real_us());
    sl_batch_groups_reset(&w->grps);
    if (exec_ok(w->pg, "BEGIN"))
        return SL_EDB;
    if (w_dedupe(w, from, to) || w_copy(w, from, to, &bc))
        goto fail;
    /* The filters of the blocks these rows joined, visible with the rows themselves. */
    if (w_blocks_upsert(w))
        goto fail;
    /* Crash anchors with their lines: the crash thread works from what was stored. */
    if (w_anchors_insert(w))
        goto fail;
    /* Alert windows and the outbox move in the same transaction as the lines. */
    if (w->ev && sl_eval_commit(w->ev, w->pg, sl_clock_real_us()) < 0)
        goto fail;
    if (w_checkpoint(w, w->recs[to - 1].end_lsn))
        goto fail;
    /* Last: the commit-order lock is held from here to COMMIT only. */
    if (bc.rows > 0 && w_stamp(w, &seq))
        goto fail;
    if (exec_ok(w->pg, "COMMIT"))
        goto fail_nocommit;
    clock_gettime(CLOCK_MONOTONIC, &b);
    sl_blocks_commit(w->blocks);
    if (bc.rows > 0)
        sl_feed_push(w->o.feed, seq);
    w->committed_lsn = w->recs[to - 1].end_lsn;
    sl_spool_release(w->o.spool, w->committed_lsn);
    SL_INC(copy_batches, 1);
    SL_INC(copy_rows, bc.rows);
    SL_INC(copy_usec, (uint64_t)((b.tv_sec - a.tv_sec) * 1000000 + (b.tv_nsec - a.tv_nsec) / 1000));
    atomic_store(&sl_metrics.copy_last_rows, bc.rows);
    SL_INC(lines_stored, bc.rows);
    SL_INC(parse_errors, bc.parse_errors);
    SL_INC(invalid_utf8, bc.raw);
    SL_INC(truncated, bc.truncated);
    SL_INC(duplicate_frames, bc.dup_frames);
    SL_INC(duplicate_lines, bc.dup_lines);
    for (int i = 0; i < 3; i++)
        SL_INC(sender_lost[i], bc.lost[i]);
    atomic_store(&sl_metrics.db_up, 1);
    return 0;
fail:
    PQclear(PQexec(w->pg, "ROLLBACK"));
fail_nocommit:
    /* Rows of this batch may be in the open blocks but not in PostgreSQL (or the COMMIT's
     * outcome is unknown): start every source afresh. Committed block rows stay valid. */
    sl_blocks_abort(w->blocks);
    SL_INC(copy_failures, 1);
    return SL_EDB;
}

/* An entry PostgreSQL refuses even alone is kept in a file, logged and counted,
 * so one bad record cannot stop the pipeline: nothing is dropped silently. */
static void w_dead_letter(struct sl_writer *w, size_t i)
{
    char path[1024];
    int fd;

    snprintf(path, sizeof(path), "%s/dead-%016" PRIx64 ".entry", w->o.dead_dir,
             w->recs[i].end_lsn);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, w->arena.p + w->recs[i].off, w->recs[i].len) < 0 || fsync(fd) < 0)
        sl_error("dead letter write failed", "path=%s err=\"%s\"", path, strerror(errno));
    if (fd >= 0)
        close(fd);
    sl_error("entry refused by PostgreSQL, kept aside", "path=%s", path);
    SL_INC(copy_failures, 1);
}

/* Move the checkpoint past a record kept aside (autocommit). */
static int w_commit_checkpoint_only(struct sl_writer *w, uint64_t lsn)
{
    if (w_checkpoint(w, lsn))
        return SL_EDB;
    w->committed_lsn = lsn;
    sl_spool_release(w->o.spool, lsn);
    return 0;
}

/* The batch failed while the connection is fine: retry entry by entry. */
static int w_commit_one_by_one(struct sl_writer *w)
{
    for (size_t i = 0; i < w->nrecs; i++) {
        if (w_commit_range(w, i, i + 1) == 0)
            continue;
        if (PQstatus(w->pg) != CONNECTION_OK)
            return SL_EDB;
        w_dead_letter(w, i);
        if (w_commit_checkpoint_only(w, w->recs[i].end_lsn))
            return SL_EDB;
    }
    return 0;
}

static void *w_main(void *arg)
{
    struct sl_writer *w = arg;
    int backoff_ms = 200, failures = 0;
    bool connected = false;

    while (!stopping_now(w)) {
        int rc;

        if (!connected) {
            if (w_connect(w) != 0) {
                atomic_store(&sl_metrics.db_up, 0);
                if (atomic_load(&w->stop) && sl_spool_synced_lsn(w->o.spool) <= w->committed_lsn)
                    break;
                usleep((useconds_t)backoff_ms * 1000);
                backoff_ms = backoff_ms * 2 > 5000 ? 5000 : backoff_ms * 2;
                continue;
            }
            connected = true;
            backoff_ms = 200;
        }
        rc = w_fill(w);
        if (rc < 0) {
            sl_error("spool read failed", "err=\"%s\"", sl_strerror(rc));
            usleep(100000);
            continue;
        }
        if (w->nrecs == 0) {
            uint64_t synced = sl_spool_synced_lsn(w->o.spool);
            if (synced <= w->committed_lsn) {
                atomic_store(&sl_metrics.spool_oldest_us, 0);
                if (atomic_load(&w->stop))
                    break;
            }
            /* Nothing readable now: sleep until more is synced (not until synced passes
             * the checkpoint, which a skipped corrupt record could make true for ever). */
            sl_spool_wait(w->o.spool, synced, 100);
            continue;
        }
        rc = w_commit_range(w, 0, w->nrecs);
        if (rc == 0) {
            failures = 0;
        } else if (PQstatus(w->pg) != CONNECTION_OK) {
            /* Keep the batch; reconnecting re-reads it from the checkpoint. */
            atomic_store(&sl_metrics.db_up, 0);
            connected = false;
            continue;
        } else if (++failures >= 3) {
            if (w_commit_one_by_one(w))
                connected = false;
            failures = 0;
        } else {
            usleep((useconds_t)(100000 * failures));
            continue; /* retry the same batch */
        }
        if (connected) {
            w->nrecs = 0;
            w->rows = 0;
            sl_buf_reset(&w->arena);
        }
    }
    return NULL;
}

int sl_writer_start(const struct sl_writer_opts *o, struct sl_writer **out)
{
    struct sl_writer *w = calloc(1, sizeof(*w));

    if (w == NULL)
        return SL_ENOMEM;
    w->o = *o;
    if (w->o.batch_rows <= 0)
        w->o.batch_rows = 10000;
    sl_buf_init(&w->arena, BATCH_MAX_BYTES + (64u << 20));
    sl_buf_init(&w->copy, 2 * COPY_CHUNK + (1u << 20) * 70);
    sl_buf_init(&w->scratch, 1u << 28);
    sl_buf_init(&w->tags, 1u << 20);
    sl_buf_init(&w->jextra, (SL_FIELDS_CANON_MAX + 2) * SL_JSON_MAX_BYTES);
    sl_buf_init(&w->sql, 1u << 26);
    sl_buf_init(&w->sql2, 1u << 26);
    sl_buf_init(&w->bsql, 1u << 28);
    sl_buf_init(&w->anchors, 1u << 28);
    sl_buf_init(&w->csql, 1u << 26);
    if (sl_blocks_new(NULL, &w->blocks)) {
        free(w);
        return SL_ENOMEM;
    }
    if (o->sources && sl_eval_new(o->sources, o->public_url, &w->ev)) {
        sl_blocks_free(w->blocks);
        free(w);
        return SL_ENOMEM;
    }
    if (pthread_create(&w->thread, NULL, w_main, w) != 0) {
        sl_eval_free(w->ev);
        sl_blocks_free(w->blocks);
        free(w);
        return SL_EIO;
    }
    w->started = true;
    *out = w;
    return 0;
}

void sl_writer_stop(struct sl_writer *w, int64_t deadline_ms)
{
    if (w == NULL)
        return;
    atomic_store(&w->deadline, deadline_ms);
    atomic_store(&w->stop, 1);
    if (w->started)
        pthread_join(w->thread, NULL);
    sl_spool_reader_free(w->reader);
    sl_eval_free(w->ev);
    sl_db_close(w->pg);
    sl_buf_free(&w->arena);
    sl_buf_free(&w->copy);
    sl_buf_free(&w->scratch);
    sl_buf_free(&w->tags);
    sl_buf_free(&w->jextra);
    sl_buf_free(&w->sql);
    sl_buf_free(&w->sql2);
    sl_buf_free(&w->bsql);
    sl_buf_free(&w->anchors);
    sl_buf_free(&w->csql);
    sl_batch_groups_free(&w->grps);
    sl_blocks_free(w->blocks);
    free(w->recs);
    free(w->ord);
    free(w->frames);
    free(w);
}
