/* The writer's batch arithmetic (include/sluice/batch.h): batch cut and COPY piece
 * rules, the frame-id de-duplication decision, the COPY order by source, row-id blocks,
 * the partition days already made, and the per-commit counts. Pure: no I/O, no
 * allocation, no globals; PostgreSQL, the spool and the metrics stay in drain/writer.c.
 * Writer thread. Heroku loss codes: include/sluice/rfc5424.h. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/batch.h"
#include "sluice/entry.h"
#include "sluice/rfc5424.h"

bool sl_batch_full(size_t rows, size_t bytes, int batch_rows)
{
    return rows >= (size_t)batch_rows || bytes >= SL_BATCH_MAX_BYTES;
}

bool sl_batch_copy_due(size_t len, bool final)
{
    return len != 0 && (final || len >= SL_BATCH_COPY_CHUNK);
}

/* A frame-id byte as it goes to PostgreSQL: text columns take no control bytes, and
 * the ids Logplex sends are ASCII. */
static char frame_char(unsigned char c)
{
    return (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
}

static bool same_frame(const struct sl_batch_frame *a, const struct sl_batch_frame *b)
{
    return a->source_id == b->source_id && a->id.len == b->id.len &&
           memcmp(a->id.p, b->id.p, a->id.len) == 0;
}

size_t sl_batch_frames_mark(struct sl_batch_frame *f, size_t n)
{
    size_t ask = 0;

    for (size_t i = 0; i < n; i++) {
        f[i].ask = false;
        if (f[i].id.len == 0)
            continue;
        for (size_t j = 0; j < i; j++)
            if (f[j].id.len && same_frame(&f[j], &f[i])) {
                f[i].dup = true;
                break;
            }
        if (f[i].dup)
            continue;
        f[i].dup = true; /* until PostgreSQL says it is new */
        f[i].ask = true;
        ask++;
    }
    return ask;
}

static int array_text(struct sl_buf *b, struct sl_str s)
{
    int rc = sl_buf_addc(b, '"');

    for (size_t i = 0; i < s.len && rc == 0; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (c == '"' || c == '\\')
            rc = sl_buf_addc(b, '\\');
        if (rc == 0)
            rc = sl_buf_addc(b, frame_char(c));
    }
    if (rc == 0)
        rc = sl_buf_addc(b, '"');
    return rc;
}

int sl_batch_frames_arrays(const struct sl_batch_frame *f, size_t n, struct sl_buf *sids,
                           struct sl_buf *fids)
{
    size_t k = 0;
    int rc = sl_buf_addc(sids, '{');

    if (rc == 0)
        rc = sl_buf_addc(fids, '{');
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (!f[i].ask)
            continue;
        if (k++ && ((rc = sl_buf_addc(sids, ',')) || (rc = sl_buf_addc(fids, ','))))
            break;
        if ((rc = sl_buf_addf(sids, "%" PRId64, f[i].source_id)) == 0)
            rc = array_text(fids, f[i].id);
    }
    if (rc == 0)
        rc = sl_buf_add(sids, "}", 2); /* with the NUL that ends the parameter */
    if (rc == 0)
        rc = sl_buf_add(fids, "}", 2);
    return rc;
}

long sl_batch_frames_stored(struct sl_batch_frame *f, size_t n, int64_t source_id, const char *fid,
                            size_t flen)
{
    for (size_t i = 0; i < n; i++) {
        bool same = true;

        if (!f[i].dup || f[i].source_id != source_id || f[i].id.len != flen)
            continue;
        /* compare as array_text sanitised it */
        for (size_t c = 0; c < flen && same; c++)
            same = frame_char((unsigned char)f[i].id.p[c]) == fid[c];
        if (same) {
            f[i].dup = false;
            return (long)i;
        }
    }
    return -1;
}

static int ord_cmp(const void *a, const void *b)
{
    const struct sl_batch_ord *x = a, *y = b;

    if (x->source_id != y->source_id)
        return x->source_id < y->source_id ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

void sl_batch_order(struct sl_batch_ord *o, size_t n)
{
    if (n > 1)
        qsort(o, n, sizeof(*o), ord_cmp);
}

int sl_batch_ids_need(int64_t next, int64_t end, size_t n)
{
    if (end - next >= (int64_t)n)
        return 0;
    if (n > ((size_t)1 << SL_BATCH_ID_BLOCK_BITS))
        return SL_ETOOBIG;
    return 1;
}

void sl_batch_ids_block(int64_t block, int64_t *next, int64_t *end)
{
    *next = block << SL_BATCH_ID_BLOCK_BITS;
    *end = (block + 1) << SL_BATCH_ID_BLOCK_BITS;
}

int64_t sl_batch_day(int64_t received_us)
{
    return received_us / 86400000000LL;
}

bool sl_batch_days_has(const struct sl_batch_days *d, int64_t day)
{
    for (int k = 0; k < d->n; k++)
        if (d->day[k] == day)
            return true;
    return false;
}

void sl_batch_days_add(struct sl_batch_days *d, int64_t day)
{
    if (d->n == SL_BATCH_KNOWN_DAYS) {
        memmove(d->day, d->day + 1, sizeof(d->day[0]) * (SL_BATCH_KNOWN_DAYS - 1));
        d->n--;
    }
    d->day[d->n++] = day;
}

int sl_batch_loss_slot(int code)
{
    switch (code) {
    case SL_HEROKU_L10:
        return 0;
    case SL_HEROKU_L12:
        return 1;
    case SL_HEROKU_L13:
        return 2;
    default:
        return -1;
    }
}

void sl_batch_count_row(struct sl_batch_counts *bc, int64_t id, int64_t received_us,
                        const struct sl_row_info *info, unsigned msg_flags)
{
    int slot = sl_batch_loss_slot(info->loss_code);

    if (bc->rows == 0 || received_us < bc->rmin_us)
        bc->rmin_us = received_us;
    if (bc->rows == 0 || received_us > bc->rmax_us)
        bc->rmax_us = received_us;
    bc->id_hi = id;
    bc->rows++;
    bc->parse_errors += info->parse_error;
    bc->raw += info->raw_kept;
    bc->truncated += (msg_flags & SL_MSG_TRUNCATED) != 0;
    if (slot >= 0)
        bc->lost[slot] += (uint64_t)info->loss_count;
}

void sl_batch_count_dup(struct sl_batch_counts *bc, uint32_t nmsgs)
{
    bc->dup_frames++;
    bc->dup_lines += nmsgs;
}

int sl_batch_group_row(struct sl_batch_groups *gs, int64_t source_id, int64_t id,
                       int64_t received_us)
{
    struct sl_batch_group *g = gs->n ? &gs->g[gs->n - 1] : NULL;

    if (g == NULL || g->source_id != source_id || id != g->id_hi + 1) {
        if (gs->n == gs->cap) {
            size_t nc = gs->cap ? gs->cap * 2 : 64;
            struct sl_batch_group *ng = realloc(gs->g, nc * sizeof(*ng));
            if (ng == NULL)
                return SL_ENOMEM;
            gs->g = ng;
            gs->cap = nc;
        }
        g = &gs->g[gs->n++];
        *g = (struct sl_batch_group){source_id, id, id, received_us, received_us, 0};
    }
    g->id_hi = id;
    g->rmin_us = received_us < g->rmin_us ? received_us : g->rmin_us;
    g->rmax_us = received_us > g->rmax_us ? received_us : g->rmax_us;
    g->nrows++;
    return 0;
}

void sl_batch_groups_reset(struct sl_batch_groups *gs)
{
    gs->n = 0;
}

void sl_batch_groups_free(struct sl_batch_groups *gs)
{
    free(gs->g);
    *gs = (struct sl_batch_groups){NULL, 0, 0};
}
