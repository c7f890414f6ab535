/* sluice_pg: compressed packs, as a module loaded by the PostgreSQL server (not by sluice).
 *
 * A packed block's rows (docs/search.md "Compacted days") are stored by default as an
 * array of the `logs` row type, which TOAST compresses with pglz or lz4: LZ77 without
 * entropy coding, 2.8x on log text. This module stores them column by column and deflates
 * the result (zlib): 4.6x on the same text, and the other columns (ids, timestamps, the
 * repeated host, app and frame names) almost vanish once laid side by side and
 * delta-coded. It runs inside PostgreSQL, so every query still reads `logs` rows with the
 * one SQL predicate: sluice_unpack(bytea) returns exactly the rows sluice_pack(logs[])
 * was given, byte for byte, in the same order.
 *
 *   sluice_pack(logs[]) RETURNS bytea          STRICT IMMUTABLE
 *   sluice_unpack(bytea) RETURNS SETOF logs    STRICT IMMUTABLE
 *   sluice_unpack_having(bytea, text[]) RETURNS SETOF logs    IMMUTABLE
 *       the same rows, or none when the pack's messages, ASCII-lowercased, do not hold
 *       every one of the texts: a search's necessary condition (each word or phrase of
 *       an AND is matched only where strpos(lower(message), text) > 0), checked once a
 *       pack instead of once a row, and before the rows are formed. First, without
 *       inflating or even reading the body, the pack's pair filter (below) must hold
 *       every pair of adjacent tokens of every text: a phrase matches only at token
 *       boundaries (the search's regex), so its adjacent tokens are adjacent tokens of
 *       the message.
 *
 * Bound by sluice at start (drain/db.c sl_db_pack_module) when this file is installed in
 * the server's $libdir (`make pg-module`); until then migration 17's placeholders keep
 * arrays. The format is generic over the row type, so a later migration that adds or
 * drops a column of logs still reads older packs:
 *
 *   "SLP" 0x01                         magic and version
 *   varint nrows, varint ncols
 *   ncols x (varint attnum, varint type oid)
 *   varint rawlen                      the body's length before deflate
 *   zlib stream of the body: per column, in the order above,
 *     u8 nulls (0 none, 1 all, 2 a bitmap of ceil(nrows/8) bytes follows, bit set = NULL)
 *     by value (length 1, 2, 4, 8): zigzag varint of each value minus the previous one
 *     varlena or cstring: varint length of each value, then their bytes back to back
 *     other fixed length: the values' bytes back to back
 *   the pair filter (optional; packs before it end with the zlib stream):
 *     F bytes: a Bloom filter of F * 8 bits, PAIR_K positions per pair of adjacent
 *       search tokens (drain/tokens.c sl_tokenize) of one message, except those with a
 *       token that mixes digits with letters (pairs_kept), PAIR_BITS bits per distinct
 *       pair (~9 % false positives a pair)
 *     "SLPAIRS1", u32 F, u32 crc32 of the F bytes (both little-endian)
 * The filter trails the zlib stream so that a reader before it (which stops at the end of
 * the stream) reads these packs unchanged: backends that mapped the older module during an
 * upgrade keep answering. It is last so that a search reads it alone, as a slice of the
 * TOASTed value (the column is EXTERNAL: uncompressed chunks), before fetching the body.
 * Values are unpacked by the type of the stored column; a stored column whose attnum the
 * row type no longer has is skipped, and a column the pack does not hold reads NULL. A
 * pack that does not parse is an ERROR (data corrupted), never a short answer. */
#include "postgres.h"

#include "access/detoast.h"
#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "utils/tuplestore.h"
#include "utils/typcache.h"

#include <zlib.h>

#include "sluice/tokens.h"

PG_MODULE_MAGIC;

#define PACK_MAGIC "SLP\001"
#define PACK_LEVEL 6
/* a pack is one block's rows: at most 16 384 (drain/blocks.c). The bound also keeps a
 * damaged header from asking for gigabytes of NULL flags. */
#define PACK_MAX_ROWS (1 << 20)
#define PACK_MAX_COLS 1600 /* MaxHeapAttributeNumber */

/* The pair filter. Its format depends on every constant here, on pair_hash and on
 * pairs_kept. At 4.9 distinct pairs a line (one day of the 100M bench set), 5 bits a pair
 * add ~3 bytes to a packed line of 60; each pair of a phrase is ~9 % likely to pass a
 * pack that lacks it (docs/search.md "Compressed packs"). */
#define PAIR_MAGIC "SLPAIRS1"
#define PAIR_TRAILER 16 /* magic, u32 filter bytes, u32 crc32 */
#define PAIR_BITS 5
#define PAIR_K 3
#define PAIR_MAX (1 << 21)  /* distinct pairs a pack may have a filter for */
#define PAIR_TAIL_READ 8192 /* bytes read from a pack's end in one slice */

PG_FUNCTION_INFO_V1(sluice_pack);
PG_FUNCTION_INFO_V1(sluice_unpack);
PG_FUNCTION_INFO_V1(sluice_unpack_having);

static void put_varint(StringInfo s, uint64 v)
{
    while (v >= 0x80) {
        appendStringInfoCharMacro(s, (char)(v | 0x80));
        v >>= 7;
    }
    appendStringInfoCharMacro(s, (char)v);
}

static uint64 zigzag(int64 v)
{
    return ((uint64)v << 1) ^ (uint64)(v >> 63);
}

static int64 unzigzag(uint64 v)
{
    return (int64)(v >> 1) ^ -(int64)(v & 1);
}

/* A by-value datum of length len as a signed 64-bit integer, and back. */
static int64 byval_get(Datum d, int16 len)
{
    switch (len) {
    case 1:
        return (int64)DatumGetChar(d);
    case 2:
        return (int64)DatumGetInt16(d);
    case 4:
        return (int64)DatumGetInt32(d);
    default:
        return DatumGetInt64(d);
    }
}

static Datum byval_put(int64 v, int16 len)
{
    switch (len) {
    case 1:
        return CharGetDatum((char)v);
    case 2:
        return Int16GetDatum((int16)v);
    case 4:
        return Int32GetDatum((int32)v);
    default:
        return Int64GetDatum(v);
    }
}

/* A pair of adjacent tokens (their sl_token_hash64 values, in order) as one hash; never
 * 0, the empty slot of struct pairs. */
static uint64 pair_hash(uint64 a, uint64 b)
{
    uint64 h = a ^ ((b << 29) | (b >> 35)) ^ 0x6a09e667f3bcc909ULL;

    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h ? h : 1;
}

/* Bit i of a filter of nbits bits for pair hash h (nbits need not be a power of two). */
static uint32 pair_pos(uint64 h, unsigned i, uint32 nbits)
{
    uint32 x = (uint32)h + i * ((uint32)(h >> 32) | 1);

    return (uint32)(((uint64)x * nbits) >> 32);
}

/* The distinct pairs of a pack (open addressing, at most half full), or of a search's
 * texts; over once a pack has more than PAIR_MAX. The same table as drain/tokens.c's
 * distinct-hash set behind sl_bloom_add, kept here in palloc'd memory: that one is
 * malloc'd, which an ERROR in the backend (an interrupt, a TOAST read) would leak. */
struct pairs {
    uint64 *t;
    uint32 cap, n;
    bool over;
    bool have;   /* the tokenizer callback: the token before in this text may pair */
    uint64 prev; /* and its hash */
};

static void pairs_add(struct pairs *ps, uint64 h)
{
    uint32 i;

    if (ps->over)
        return;
    if (2 * (ps->n + 1) > ps->cap) {
        uint32 ncap = ps->cap ? ps->cap * 2 : 1024;
        uint64 *t;

        if (ps->n + 1 > PAIR_MAX) {
            ps->over = true;
            return;
        }
        t = palloc0(sizeof(uint64) * (Size)ncap);
        for (uint32 j = 0; j < ps->cap; j++)
            if (ps->t[j]) {
                uint32 k = (uint32)(ps->t[j] >> 40) & (ncap - 1);
                while (t[k])
                    k = (k + 1) & (ncap - 1);
                t[k] = ps->t[j];
            }
        if (ps->t)
            pfree(ps->t);
        ps->t = t;
        ps->cap = ncap;
    }
    for (i = (uint32)(h >> 40) & (ps->cap - 1); ps->t[i]; i = (i + 1) & (ps->cap - 1))
        if (ps->t[i] == h)
            return;
    ps->t[i] = h;
    ps->n++;
}

/* Whether a token takes part in pairs: one that mixes digits with other bytes (an id, a
 * hash, a duration with its unit: 763f3a8a, 395ms) does not. Such tokens are mostly rare
 * alone, which the block filters already use, and their pairs are mostly new with each
 * line: they were half of the distinct pairs (9.3 a line against 4.9 without them, one day
 * of the 100M bench set). Numbers and words, the tokens common enough for a phrase of them
 * to pass the block filters where it is absent, keep theirs. */
static bool pairs_kept(const char *tok, size_t len)
{
    bool digit = false, other = false;

    for (size_t i = 0; i < len; i++) {
        if (tok[i] >= '0' && tok[i] <= '9')
            digit = true;
        else
            other = true;
    }
    return !(digit && other);
}

static void pairs_token(void *arg, const char *tok, size_t len, uint64_t hash)
{
    struct pairs *ps = arg;
    bool kept = pairs_kept(tok, len);

    if (ps->have && kept)
        pairs_add(ps, pair_hash(ps->prev, hash));
    ps->prev = hash;
    ps->have = kept;
}

/* The pairs of one text: adjacent tokens of the text, never across two texts, neither of
 * them left out by pairs_kept. The same function gives a pack's pairs and a search's, so
 * both leave out the same ones. */
static void pairs_of(struct pairs *ps, const char *text, size_t len)
{
    ps->have = false;
    (void)sl_tokenize(text, len, pairs_token, ps);
}

/* The filter of a pack's pairs and its trailer, appended to out; nothing when there are
 * more than PAIR_MAX pairs (the pack then reads as one from before the filter). */
static void pairs_filter(StringInfo out, const struct pairs *ps)
{
    uint32 nbytes, nbits;
    unsigned char *f;
    uint32 crc;
    unsigned char tail[PAIR_TRAILER];

    if (ps->over)
        return;
    nbytes = (uint32)(((uint64)ps->n * PAIR_BITS + 7) / 8);
    if (nbytes < 8)
        nbytes = 8;
    nbits = nbytes * 8;
    f = palloc0(nbytes);
    for (uint32 j = 0; j < ps->cap; j++)
        if (ps->t[j])
            for (unsigned k = 0; k < PAIR_K; k++) {
                uint32 p = pair_pos(ps->t[j], k, nbits);
                f[p >> 3] |= (unsigned char)(1u << (p & 7));
            }
    crc = (uint32)crc32(0L, f, nbytes);
    memcpy(tail, PAIR_MAGIC, 8);
    for (int i = 0; i < 4; i++) {
        tail[8 + i] = (unsigned char)(nbytes >> (8 * i));
        tail[12 + i] = (unsigned char)(crc >> (8 * i));
    }
    appendBinaryStringInfo(out, (const char *)f, (int)nbytes);
    appendBinaryStringInfo(out, (const char *)tail, PAIR_TRAILER);
    pfree(f);
}

/* The filter's byte count from a trailer (the last PAIR_TRAILER bytes of a pack), or -1
 * when these bytes are not one. */
static int64 trailer_bytes(const unsigned char *tail)
{
    uint32 nbytes = 0;

    if (memcmp(tail, PAIR_MAGIC, 8) != 0)
        return -1;
    for (int i = 0; i < 4; i++)
        nbytes |= (uint32)tail[8 + i] << (8 * i);
    return nbytes;
}

static bool trailer_crc_ok(const unsigned char *f, uint32 nbytes, const unsigned char *tail)
{
    uint32 crc = 0;

    for (int i = 0; i < 4; i++)
        crc |= (uint32)tail[12 + i] << (8 * i);
    return (uint32)crc32(0L, f, nbytes) == crc;
}

static void pack_column(StringInfo b, Datum *vals, bool *nulls, int n, int natts, int col,
                        int16 len, bool byval)
{
    int nnull = 0;
    int64 prev = 0;

    for (int i = 0; i < n; i++)
        nnull += nulls[i * natts + col];
    if (nnull == 0) {
        appendStringInfoCharMacro(b, 0);
    } else if (nnull == n) {
        appendStringInfoCharMacro(b, 1);
        return;
    } else {
        appendStringInfoCharMacro(b, 2);
        for (int i = 0; i < n; i += 8) {
            unsigned char m = 0;
            for (int j = 0; j < 8 && i + j < n; j++)
                if (nulls[(i + j) * natts + col])
                    m |= (unsigned char)(1u << j);
            appendStringInfoCharMacro(b, (char)m);
        }
    }
    if (byval) {
        for (int i = 0; i < n; i++) {
            int64 v;
            if (nulls[i * natts + col])
                continue;
            v = byval_get(vals[i * natts + col], len);
            put_varint(b, zigzag((int64)((uint64)v - (uint64)prev)));
            prev = v;
        }
    } else if (len < 0) {
        /* lengths first, then the bytes: the text compresses as one stream */
        for (int i = 0; i < n; i++) {
            Datum d = vals[i * natts + col];
            if (nulls[i * natts + col])
                continue;
            if (len == -1) {
                struct varlena *v = PG_DETOAST_DATUM_PACKED(d);
                vals[i * natts + col] = PointerGetDatum(v);
                put_varint(b, VARSIZE_ANY_EXHDR(v));
            } else {
                put_varint(b, strlen(DatumGetCString(d)));
            }
        }
        for (int i = 0; i < n; i++) {
            Datum d = vals[i * natts + col];
            if (nulls[i * natts + col])
                continue;
            if (len == -1)
                appendBinaryStringInfo(b, VARDATA_ANY(DatumGetPointer(d)),
                                       (int)VARSIZE_ANY_EXHDR(DatumGetPointer(d)));
            else
                appendBinaryStringInfo(b, DatumGetCString(d), (int)strlen(DatumGetCString(d)));
        }
    } else {
        for (int i = 0; i < n; i++)
            if (!nulls[i * natts + col])
                appendBinaryStringInfo(b, DatumGetPointer(vals[i * natts + col]), len);
    }
}

Datum sluice_pack(PG_FUNCTION_ARGS)
{
    ArrayType *arr = PG_GETARG_ARRAYTYPE_P(0);
    Oid elemtype = ARR_ELEMTYPE(arr);
    TupleDesc td;
    Datum *elems, *vals;
    bool *elnulls, *nulls;
    int n, natts, ncols = 0, msg = -1;
    StringInfoData head, body, filter;
    struct pairs ps = {0};
    uLongf zlen;
    bytea *out;

    if (!type_is_rowtype(elemtype))
        ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
                        errmsg("sluice_pack: an array of a row type is needed")));
    td = lookup_rowtype_tupdesc(elemtype, -1);
    natts = td->natts;
    deconstruct_array(arr, elemtype, -1, false, TYPALIGN_DOUBLE, &elems, &elnulls, &n);
    if (n > PACK_MAX_ROWS)
        ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
                        errmsg("sluice_pack: %d rows, more than %d", n, PACK_MAX_ROWS)));
    vals = palloc(sizeof(Datum) * (Size)Max(n, 1) * (Size)natts);
    nulls = palloc(sizeof(bool) * (Size)Max(n, 1) * (Size)natts);
    for (int i = 0; i < n; i++) {
        HeapTupleHeader th;
        HeapTupleData tup;

        if (elnulls[i])
            ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                            errmsg("sluice_pack: row %d is NULL", i + 1)));
        th = DatumGetHeapTupleHeader(elems[i]);
        tup.t_len = HeapTupleHeaderGetDatumLength(th);
        ItemPointerSetInvalid(&tup.t_self);
        tup.t_tableOid = InvalidOid;
        tup.t_data = th;
        heap_deform_tuple(&tup, td, vals + (Size)i * natts, nulls + (Size)i * natts);
    }

    initStringInfo(&head);
    initStringInfo(&body);
    appendBinaryStringInfo(&head, PACK_MAGIC, 4);
    put_varint(&head, (uint64)n);
    for (int a = 0; a < natts; a++)
        ncols += !TupleDescAttr(td, a)->attisdropped;
    put_varint(&head, (uint64)ncols);
    for (int a = 0; a < natts; a++) {
        Form_pg_attribute att = TupleDescAttr(td, a);
        if (att->attisdropped)
            continue;
        put_varint(&head, (uint64)att->attnum);
        put_varint(&head, (uint64)att->atttypid);
        pack_column(&body, vals, nulls, n, natts, a, att->attlen, att->attbyval);
        if (att->atttypid == TEXTOID && strcmp(NameStr(att->attname), "message") == 0)
            msg = a;
    }
    ReleaseTupleDesc(td);
    put_varint(&head, (uint64)body.len);

    /* pack_column left the messages detoasted in vals */
    initStringInfo(&filter);
    if (msg >= 0) {
        for (int i = 0; i < n; i++) {
            Datum d = vals[(Size)i * natts + msg];
            if (!nulls[(Size)i * natts + msg])
                pairs_of(&ps, VARDATA_ANY(DatumGetPointer(d)),
                         VARSIZE_ANY_EXHDR(DatumGetPointer(d)));
        }
        pairs_filter(&filter, &ps);
        if (ps.t)
            pfree(ps.t);
    }

    zlen = compressBound((uLong)body.len);
    out = palloc(VARHDRSZ + (Size)head.len + zlen + (Size)filter.len);
    memcpy(VARDATA(out), head.data, (size_t)head.len);
    if (compress2((Bytef *)VARDATA(out) + head.len, &zlen, (const Bytef *)body.data,
                  (uLong)body.len, PACK_LEVEL) != Z_OK)
        ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR), errmsg("sluice_pack: deflate failed")));
    memcpy(VARDATA(out) + head.len + zlen, filter.data, (size_t)filter.len);
    SET_VARSIZE(out, VARHDRSZ + head.len + (Size)zlen + (Size)filter.len);
    PG_RETURN_BYTEA_P(out);
}

/* A bounded reader over one buffer; every read past its end is an ERROR. */
struct rd {
    const unsigned char *p, *end;
};

static void corrupt(const char *what)
{
    ereport(ERROR,
            (errcode(ERRCODE_DATA_CORRUPTED), errmsg("sluice_unpack: corrupt pack: %s", what)));
}

static uint64 get_varint(struct rd *r)
{
    uint64 v = 0;

    for (int shift = 0; shift < 64; shift += 7) {
        unsigned char c;
        if (r->p >= r->end)
            corrupt("truncated number");
        c = *r->p++;
        v |= (uint64)(c & 0x7f) << shift;
        if (!(c & 0x80))
            return v;
    }
    corrupt("number too long");
    return 0;
}

static const unsigned char *get_bytes(struct rd *r, uint64 len)
{
    const unsigned char *p = r->p;

    if (len > (uint64)(r->end - r->p))
        corrupt("truncated value");
    r->p += len;
    return p;
}

/* One stored column as unpacked: its values (pointing into the inflated body) and nulls. */
struct col {
    int attnum;
    Oid type;
    int16 len;
    bool byval;
    bool *isnull;
    int64 *num;                 /* by value */
    const unsigned char **data; /* by reference */
    uint32 *dlen;
};

static void unpack_column(struct rd *r, struct col *c, int n)
{
    int kind;
    const unsigned char *bitmap = NULL;

    if (r->p >= r->end)
        corrupt("truncated column");
    kind = *r->p++;
    c->isnull = palloc0(sizeof(bool) * (Size)Max(n, 1));
    if (kind == 1) {
        for (int i = 0; i < n; i++)
            c->isnull[i] = true;
        return;
    }
    if (kind == 2)
        bitmap = get_bytes(r, ((uint64)n + 7) / 8);
    else if (kind != 0)
        corrupt("unknown null mark");
    if (bitmap)
        for (int i = 0; i < n; i++)
            c->isnull[i] = (bitmap[i / 8] >> (i % 8)) & 1;
    if (c->byval) {
        int64 prev = 0;
        c->num = palloc(sizeof(int64) * (Size)Max(n, 1));
        for (int i = 0; i < n; i++) {
            if (c->isnull[i])
                continue;
            prev = (int64)((uint64)prev + (uint64)unzigzag(get_varint(r)));
            c->num[i] = prev;
        }
        return;
    }
    c->data = palloc(sizeof(*c->data) * (Size)Max(n, 1));
    c->dlen = palloc(sizeof(uint32) * (Size)Max(n, 1));
    if (c->len < 0) {
        for (int i = 0; i < n; i++) {
            uint64 l;
            if (c->isnull[i])
                continue;
            l = get_varint(r);
            if (l > MaxAllocSize - VARHDRSZ - 1)
                corrupt("value too long");
            c->dlen[i] = (uint32)l;
        }
        for (int i = 0; i < n; i++)
            if (!c->isnull[i])
                c->data[i] = get_bytes(r, c->dlen[i]);
    } else {
        for (int i = 0; i < n; i++)
            if (!c->isnull[i]) {
                c->dlen[i] = (uint32)c->len;
                c->data[i] = get_bytes(r, (uint64)c->len);
            }
    }
}

/* Whether the non-NULL values of a text column, back to back and ASCII-lowercased, hold
 * every needle (a superset of "some value holds each": a needle may straddle two). */
static bool holds_all(const struct col *c, int n, ArrayType *needles)
{
    Datum *nd;
    bool *nn;
    int k, first = -1, last = -1;
    size_t len;
    char *low;
    bool all = true;

    deconstruct_array(needles, TEXTOID, -1, false, TYPALIGN_INT, &nd, &nn, &k);
    if (k == 0)
        return true;
    for (int i = 0; i < n; i++)
        if (!c->isnull[i]) {
            if (first < 0)
                first = i;
            last = i;
        }
    if (first < 0)
        return false;
    /* a column's bytes lie back to back in the inflated body */
    len = (size_t)(c->data[last] + c->dlen[last] - c->data[first]);
    low = palloc(len + 1);
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = c->data[first][i];
        low[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
    }
    for (int j = 0; j < k && all; j++) {
        text *t;
        if (nn[j])
            continue;
        t = DatumGetTextPP(nd[j]);
        if (VARSIZE_ANY_EXHDR(t) > 0 &&
            memmem(low, len, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t)) == NULL)
            all = false;
    }
    pfree(low);
    return all;
}

static Datum unpack(FunctionCallInfo fcinfo, ArrayType *needles);

Datum sluice_unpack(PG_FUNCTION_ARGS)
{
    return unpack(fcinfo, NULL);
}

/* Not STRICT: a NULL pack is no row, NULL needles check nothing. */
Datum sluice_unpack_having(PG_FUNCTION_ARGS)
{
    if (PG_ARGISNULL(0)) {
        InitMaterializedSRF(fcinfo, 0);
        return (Datum)0;
    }
    return unpack(fcinfo, PG_ARGISNULL(1) ? NULL : PG_GETARG_ARRAYTYPE_P(1));
}

/* Whether the pair filter of the pack d shows that some pair of adjacent tokens of a
 * needle is in none of its messages. Reads only the end of the value (a slice of the TOAST
 * chunks); false when there is nothing to check (no needle of two tokens, a pack from
 * before the filter, or one too short or damaged to have it: unpack then reads it whole
 * and says what is wrong). */
static bool pairs_missing(Datum d, ArrayType *needles)
{
    Datum *nd;
    bool *nn;
    int k;
    struct pairs want = {0};
    Size size;
    uint32 nbits;
    int64 nbytes, got;
    bytea *tail;
    const unsigned char *end, *f;
    bool missing = false;

    deconstruct_array(needles, TEXTOID, -1, false, TYPALIGN_INT, &nd, &nn, &k);
    for (int j = 0; j < k; j++)
        if (!nn[j]) {
            text *t = DatumGetTextPP(nd[j]);
            pairs_of(&want, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
        }
    if (want.n == 0)
        return false;
    size = toast_raw_datum_size(d) - VARHDRSZ;
    if (size < PAIR_TRAILER + 8)
        return false;
    got = Min((int64)size, PAIR_TAIL_READ);
    tail = DatumGetByteaPSlice(d, (int32)(size - got), (int32)got);
    if ((int64)VARSIZE_ANY_EXHDR(tail) != got)
        return false;
    end = (const unsigned char *)VARDATA_ANY(tail) + got;
    nbytes = trailer_bytes(end - PAIR_TRAILER);
    if (nbytes < 8 || nbytes > (int64)size - PAIR_TRAILER - 4 || nbytes > PG_INT32_MAX / 8)
        return false;
    if (nbytes + PAIR_TRAILER > got) {
        got = nbytes + PAIR_TRAILER;
        tail = DatumGetByteaPSlice(d, (int32)(size - got), (int32)got);
        if ((int64)VARSIZE_ANY_EXHDR(tail) != got)
            return false;
        end = (const unsigned char *)VARDATA_ANY(tail) + got;
    }
    f = end - PAIR_TRAILER - nbytes;
    if (!trailer_crc_ok(f, (uint32)nbytes, end - PAIR_TRAILER))
        return false;
    nbits = (uint32)nbytes * 8;
    for (uint32 j = 0; j < want.cap && !missing; j++)
        if (want.t[j])
            for (unsigned i = 0; i < PAIR_K; i++) {
                uint32 p = pair_pos(want.t[j], i, nbits);
                if (!((f[p >> 3] >> (p & 7)) & 1)) {
                    missing = true;
                    break;
                }
            }
    return missing;
}

static Datum unpack(FunctionCallInfo fcinfo, ArrayType *needles)
{
    bytea *in;
    ReturnSetInfo *rsinfo = (ReturnSetInfo *)fcinfo->resultinfo;
    TupleDesc td;
    struct rd r;
    struct rd b;
    uint64 n64, ncols64, rawlen;
    int n, ncols, natts;
    struct col *cols;
    int *map;
    unsigned char *raw;
    uLongf got;
    uLong zin;
    Datum *values;
    bool *isnull;
    MemoryContext rowcx, old;

    InitMaterializedSRF(fcinfo, 0);
    if (needles && pairs_missing(PG_GETARG_DATUM(0), needles))
        return (Datum)0;
    in = PG_GETARG_BYTEA_PP(0);
    r.p = (const unsigned char *)VARDATA_ANY(in);
    r.end = r.p + VARSIZE_ANY_EXHDR(in);
    td = rsinfo->setDesc;
    natts = td->natts;
    if (VARSIZE_ANY_EXHDR(in) < 4 || memcmp(r.p, PACK_MAGIC, 4) != 0)
        corrupt("not a sluice pack (magic or version)");
    r.p += 4;
    n64 = get_varint(&r);
    ncols64 = get_varint(&r);
    if (n64 > PACK_MAX_ROWS || ncols64 > PACK_MAX_COLS)
        corrupt("row or column count out of range");
    n = (int)n64;
    ncols = (int)ncols64;
    cols = palloc0(sizeof(*cols) * (Size)Max(ncols, 1));
    map = palloc(sizeof(int) * (Size)Max(natts, 1));
    for (int a = 0; a < natts; a++)
        map[a] = -1;
    for (int k = 0; k < ncols; k++) {
        uint64 attnum = get_varint(&r), type = get_varint(&r);
        if (attnum < 1 || attnum > PACK_MAX_COLS || type > PG_UINT32_MAX)
            corrupt("column out of range");
        cols[k].attnum = (int)attnum;
        cols[k].type = (Oid)type;
        if (!OidIsValid(cols[k].type) ||
            !SearchSysCacheExists1(TYPEOID, ObjectIdGetDatum(cols[k].type)))
            corrupt("unknown column type");
        get_typlenbyval(cols[k].type, &cols[k].len, &cols[k].byval);
        if (cols[k].byval && cols[k].len != 1 && cols[k].len != 2 && cols[k].len != 4 &&
            cols[k].len != 8)
            corrupt("unsupported by-value length");
        if (attnum <= (uint64)natts) {
            Form_pg_attribute att = TupleDescAttr(td, attnum - 1);
            if (att->attisdropped)
                continue;
            if (att->atttypid != cols[k].type)
                ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
                                errmsg("sluice_unpack: column %s is of type %u in the pack, %u now",
                                       NameStr(att->attname), cols[k].type, att->atttypid)));
            if (map[attnum - 1] >= 0)
                corrupt("column twice");
            map[attnum - 1] = k;
        }
    }
    rawlen = get_varint(&r);
    if (rawlen > MaxAllocSize)
        corrupt("body too long");
    raw = palloc(Max(rawlen, 1));
    got = (uLongf)rawlen;
    zin = (uLong)(r.end - r.p);
    if (uncompress2(raw, &got, r.p, &zin) != Z_OK || got != rawlen)
        corrupt("body does not inflate to its length");
    /* after the stream: nothing, or exactly the pair filter and its trailer */
    if (zin < (uLong)(r.end - r.p)) {
        int64 left = (int64)(r.end - r.p) - (int64)zin, nbytes;
        if (left < PAIR_TRAILER || (nbytes = trailer_bytes(r.end - PAIR_TRAILER)) < 0 ||
            nbytes != left - PAIR_TRAILER ||
            !trailer_crc_ok(r.p + zin, (uint32)nbytes, r.end - PAIR_TRAILER))
            corrupt("bytes after the body that are not its pair filter");
    }
    b.p = raw;
    b.end = raw + rawlen;
    for (int k = 0; k < ncols; k++)
        unpack_column(&b, &cols[k], n);
    if (b.p != b.end)
        corrupt("bytes left after the last column");
    if (needles) {
        int m = -1;
        for (int a = 0; a < natts; a++)
            if (!TupleDescAttr(td, a)->attisdropped &&
                strcmp(NameStr(TupleDescAttr(td, a)->attname), "message") == 0)
                m = map[a];
        if (m >= 0 && cols[m].len == -1 && !holds_all(&cols[m], n, needles))
            return (Datum)0;
    }

    values = palloc(sizeof(Datum) * (Size)Max(natts, 1));
    isnull = palloc(sizeof(bool) * (Size)Max(natts, 1));
    rowcx =
        AllocSetContextCreate(CurrentMemoryContext, "sluice_unpack row", ALLOCSET_DEFAULT_SIZES);
    for (int i = 0; i < n; i++) {
        old = MemoryContextSwitchTo(rowcx);
        for (int a = 0; a < natts; a++) {
            struct col *c;
            if (map[a] < 0 || cols[map[a]].isnull[i]) {
                values[a] = (Datum)0;
                isnull[a] = true;
                continue;
            }
            c = &cols[map[a]];
            isnull[a] = false;
            if (c->byval) {
                values[a] = byval_put(c->num[i], c->len);
            } else if (c->len == -1) {
                struct varlena *v = palloc(VARHDRSZ + c->dlen[i]);
                SET_VARSIZE(v, VARHDRSZ + c->dlen[i]);
                memcpy(VARDATA(v), c->data[i], c->dlen[i]);
                values[a] = PointerGetDatum(v);
            } else if (c->len == -2) {
                char *s = palloc(c->dlen[i] + 1);
                memcpy(s, c->data[i], c->dlen[i]);
                s[c->dlen[i]] = '\0';
                values[a] = CStringGetDatum(s);
            } else {
                values[a] = PointerGetDatum(c->data[i]);
            }
        }
        MemoryContextSwitchTo(old);
        tuplestore_putvalues(rsinfo->setResult, td, values, isnull);
        MemoryContextReset(rowcx);
        CHECK_FOR_INTERRUPTS();
    }
    MemoryContextDelete(rowcx);
    return (Datum)0;
}
