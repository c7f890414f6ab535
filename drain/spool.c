/* The spool: append-only, CRC-32C checksummed segment files that hold every accepted
 * request until the writer has committed it to PostgreSQL (include/sluice/spool.h is
 * the contract, docs/internals/spool.md explains the invariants).
 *
 * What it does: appends records (pwritev under the spool mutex), runs the group-commit
 * syncer thread (fdatasync of the segments with unsynced bytes, then the directory when
 * a segment was created, then publish the synced LSN), hands synced records to one
 * reader, deletes released segments, and at open truncates a torn tail of the last
 * segment. What it leaves to others: answering senders (they compare their end LSN with
 * sl_spool_synced_lsn), the checkpoint in PostgreSQL (the writer), retries.
 *
 * Threads: sl_spool_appendv from any thread; one syncer thread; one reader thread;
 * sl_spool_release from the writer. All shared state is behind s->mu; no fsync, no
 * unlink and no checksum is done while holding it. File descriptors of the segment being
 * written are closed only by the thread that holds the "syncing" token (or by
 * sl_spool_free), so a sync round may use them without the mutex.
 *
 * CRC-32C: Castagnoli polynomial 0x1EDC6F41 (reflected 0x82F63B78), as in RFC 3720
 * §12.1 (iSCSI). SSE4.2 crc32 instruction when the CPU has it, slicing-by-8 otherwise. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "sluice/clock.h"
#include "sluice/err.h"
#include "sluice/log.h"
#include "sluice/spool.h"

#define SPOOL_MAGIC 0x534c5331u /* "SLS1" */
#define SPOOL_HDR 12u
#define SPOOL_DEF_SEGMENT (64ull << 20)
#define SPOOL_DEF_MAX (1ull << 30)
#define SPOOL_DEF_RECORD (64u << 20)
#define SPOOL_READ_CHUNK (256u << 10) /* reader read-ahead and recovery scan buffer */
#define SPOOL_STACK_IOV 16
#define SPOOL_NAME_LEN 32 /* "seg-" + 16 hex + ".spool" + NUL = 27 */
/* A segment is at most 1/8 of its filesystem (but never below SPOOL_MIN_SEGMENT), so
 * whole segments can be released while the writer catches up on a small disk. */
#define SPOOL_FS_SHARE 8u
#define SPOOL_MIN_SEGMENT (1ull << 20)
/* While the disk is full, an append is tried only when this much more than the record
 * is free (filesystem metadata, blocks rounding). */
#define SPOOL_ROOM_SLACK (64ull << 10)

#ifndef IOV_MAX
#define IOV_MAX 1024
#endif

/* ------------------------------------------------------------------------------------ */
/* CRC-32C                                                                              */
/* ------------------------------------------------------------------------------------ */

static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = crc_table[0][i];
        for (int t = 1; t < 8; t++) {
            c = crc_table[0][c & 0xff] ^ (c >> 8);
            crc_table[t][i] = c;
        }
    }
}

static uint64_t load_le64(const unsigned char *p)
{
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
           (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 |
           (uint64_t)p[7] << 56;
}

/* Slicing-by-8 on the inverted CRC; byte order independent (loads are little-endian). */
static uint32_t crc32c_sw(uint32_t c, const unsigned char *p, size_t len)
{
    pthread_once(&crc_once, crc_init);
    while (len > 0 && ((uintptr_t)p & 7) != 0) {
        c = crc_table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
        len--;
    }
    while (len >= 8) {
        uint64_t v = load_le64(p) ^ c;
        c = crc_table[7][v & 0xff] ^ crc_table[6][(v >> 8) & 0xff] ^
            crc_table[5][(v >> 16) & 0xff] ^ crc_table[4][(v >> 24) & 0xff] ^
            crc_table[3][(v >> 32) & 0xff] ^ crc_table[2][(v >> 40) & 0xff] ^
            crc_table[1][(v >> 48) & 0xff] ^ crc_table[0][v >> 56];
        p += 8;
        len -= 8;
    }
    while (len-- > 0)
        c = crc_table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
    return c;
}

/* -DSL_SPOOL_NO_HW_CRC builds the software path only (to test it on SSE4.2 machines). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(SL_SPOOL_NO_HW_CRC)
#define SPOOL_HAVE_HW_CRC 1
/* One crc32 chain: bound by the instruction's 3-cycle latency (about 7 GB/s here). Input
 * of 3 KiB or more goes through crc32c_hw below, three chains at once (about 18 GB/s). */
__attribute__((target("sse4.2"))) static uint32_t crc32c_hw1(uint32_t c0, const unsigned char *p,
                                                             size_t len)
{
    uint64_t c = c0;
    while (len > 0 && ((uintptr_t)p & 7) != 0) {
        c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
        len--;
    }
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = __builtin_ia32_crc32di(c, v);
        p += 8;
        len -= 8;
    }
    while (len-- > 0)
        c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
    return (uint32_t)c;
}

/* mat is a 32x32 GF(2) matrix stored as its columns: mat[k] is the image of bit k. */
static uint32_t gf2_times(const uint32_t *mat, uint32_t vec)
{
    uint32_t sum = 0;
    for (; vec; vec >>= 1, mat++)
        if (vec & 1)
            sum ^= *mat;
    return sum;
}

/* The raw CRC update is linear, so "HW_BLOCK more zero bytes" is a 32x32 matrix whose
 * columns are the basis states run through the zeros; shift_tab holds it byte-sliced so
 * applying it costs four lookups. */
#define HW_BLOCK 1024u
static uint32_t shift_tab[4][256];
static pthread_once_t shift_once = PTHREAD_ONCE_INIT;

static void shift_init(void)
{
    static const unsigned char zeros[HW_BLOCK];
    uint32_t col[32];

    for (int k = 0; k < 32; k++)
        col[k] = crc32c_sw(1u << k, zeros, HW_BLOCK);
    for (int t = 0; t < 4; t++)
        for (uint32_t b = 0; b < 256; b++)
            shift_tab[t][b] = gf2_times(col, b << (8 * t));
}

static uint32_t shift_block(uint32_t c)
{
    return shift_tab[0][c & 0xff] ^ shift_tab[1][(c >> 8) & 0xff] ^ shift_tab[2][(c >> 16) & 0xff] ^
           shift_tab[3][c >> 24];
}

/* Three independent chains over three consecutive HW_BLOCKs hide that latency; the
 * partial CRCs are merged with the shift operator: crc(A||B) = shift(crc(A)) ^ crc0(B). */
__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t c, const unsigned char *p,
                                                            size_t len)
{
    if (len >= 3 * HW_BLOCK) {
        pthread_once(&shift_once, shift_init);
        while (len > 0 && ((uintptr_t)p & 7) != 0) {
            c = __builtin_ia32_crc32qi(c, *p++);
            len--;
        }
        while (len >= 3 * HW_BLOCK) {
            uint64_t a = c, b = 0, d = 0;
            const unsigned char *pa = p, *pb = p + HW_BLOCK, *pd = p + 2 * HW_BLOCK;
            for (size_t i = 0; i < HW_BLOCK; i += 8) {
                uint64_t va, vb, vd;
                memcpy(&va, pa + i, 8);
                memcpy(&vb, pb + i, 8);
                memcpy(&vd, pd + i, 8);
                a = __builtin_ia32_crc32di(a, va);
                b = __builtin_ia32_crc32di(b, vb);
                d = __builtin_ia32_crc32di(d, vd);
            }
            /* raw (non-inverted) chains: crc(A||B) = shift(crc(A)) ^ crc_raw(B) */
            c = shift_block((uint32_t)a) ^ (uint32_t)b;
            c = shift_block(c) ^ (uint32_t)d;
            p += 3 * HW_BLOCK;
            len -= 3 * HW_BLOCK;
        }
    }
    return crc32c_hw1(c, p, len);
}
#endif

uint32_t sl_crc32c(uint32_t crc, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    uint32_t c = ~crc;

#ifdef SPOOL_HAVE_HW_CRC
    if (__builtin_cpu_supports("sse4.2"))
        return ~crc32c_hw(c, p, len);
#endif
    return ~crc32c_sw(c, p, len);
}

/* ------------------------------------------------------------------------------------ */
/* The spool object                                                                     */
/* ------------------------------------------------------------------------------------ */

struct spool_seg {
    uint64_t base; /* LSN of the first byte; the file is named after it */
};

struct sl_spool {
    char *dir; /* owned */
    int dirfd; /* owned; holds the flock that keeps a second process out */
    char node_id[33];
    uint64_t segment_bytes, max_bytes;
    uint64_t seg_limit; /* segment_bytes, capped by the filesystem size (SPOOL_FS_SHARE) */
    uint32_t max_record;
    bool fsync;

    pthread_mutex_t mu;
    pthread_cond_t work;   /* syncer: something to sync, or stop */
    pthread_cond_t synced; /* synced LSN moved, or a sync round ended */
    bool mu_ok, work_ok, synced_ok;

    /* Everything below is protected by mu. */
    struct spool_seg *segs; /* owned, sorted by base; the last one is being written */
    size_t nsegs, capsegs;
    int fd;           /* write fd of the last segment; closed by the sync-token holder */
    uint64_t seg_off; /* bytes in the last segment == written_lsn - its base */
    int *oldfd;       /* owned: fds of rolled segments not yet synced+closed */
    size_t nold, capold;
    bool dir_dirty; /* a segment was created since the last directory fsync */
    bool syncing;   /* a sync round holds the token (runs without mu) */
    bool failed;    /* an fsync or a write failed unrecoverably: no more appends */
    bool full;      /* a write hit ENOSPC/EDQUOT: appends get SL_EFULL until there is room;
                     * while set with seg_off > 0, the last segment still has to be rolled */
    bool stop;
    bool reader_open;
    uint64_t written_lsn, synced_lsn, released_lsn;
    uint64_t syncs, torn_bytes, corrupt_records;

    pthread_t thread;
    bool thread_started;
    sl_spool_synced_cb cb;
    void *cb_arg;
    uint64_t cb_lsn; /* last LSN handed to cb */
};

struct sl_spool_reader {
    struct sl_spool *s; /* borrowed */
    uint64_t pos;       /* LSN of the next record */
    int fd;             /* read fd of the segment holding pos, or -1 */
    uint64_t fd_base;
    bool skip;          /* a corrupt record: wait for the next segment */
    unsigned char *buf; /* owned read-ahead: file bytes [buf_off, buf_off + buf_len) */
    size_t buf_len, buf_cap;
    uint64_t buf_off; /* offset in segment fd_base */
};

static void seg_name(char *out, uint64_t base)
{
    snprintf(out, SPOOL_NAME_LEN, "seg-%016" PRIx64 ".spool", base);
}

static bool parse_seg_name(const char *name, uint64_t *base)
{
    uint64_t v = 0;

    if (strncmp(name, "seg-", 4) != 0 || strlen(name) != 4 + 16 + 6 ||
        strcmp(name + 20, ".spool") != 0)
        return false;
    for (int i = 4; i < 20; i++) {
        char ch = name[i];
        int d;
        if (ch >= '0' && ch <= '9')
            d = ch - '0';
        else if (ch >= 'a' && ch <= 'f')
            d = ch - 'a' + 10;
        else
            return false;
        v = v << 4 | (uint64_t)d;
    }
    *base = v;
    return true;
}

static int cmp_seg(const void *a, const void *b)
{
    uint64_t x = ((const struct spool_seg *)a)->base, y = ((const struct spool_seg *)b)->base;
    return x < y ? -1 : x > y;
}

static void put_le32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static uint32_t get_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Reads up to len bytes at off; returns bytes read (short only at end of file) or -1. */
static ssize_t pread_full(int fd, void *buf, size_t len, uint64_t off)
{
    size_t done = 0;

    while (done < len) {
        ssize_t n = pread(fd, (char *)buf + done, len - done, (off_t)(off + done));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (n == 0)
            break;
        done += (size_t)n;
    }
    return (ssize_t)done;
}

/* Writes every byte of v[0..n) at off, IOV_MAX pieces per call. v is consumed.
 * Returns 0 or -1 with errno set. */
static int pwritev_full(int fd, struct iovec *v, int n, uint64_t off)
{
    while (n > 0) {
        ssize_t w = pwritev(fd, v, n > IOV_MAX ? IOV_MAX : n, (off_t)off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (w == 0) {
            errno = EIO;
            return -1;
        }
        off += (uint64_t)w;
        while (n > 0 && (size_t)w >= v->iov_len) {
            w -= (ssize_t)v->iov_len;
            v++;
            n--;
        }
        if (n > 0) {
            v->iov_base = (char *)v->iov_base + w;
            v->iov_len -= (size_t)w;
        }
    }
    return 0;
}

static int sync_dir(struct sl_spool *s)
{
    if (!s->fsync)
        return 0;
    if (fsync(s->dirfd) != 0) {
        sl_error("spool dir fsync failed", "path=%s err=\"%s\"", s->dir, strerror(errno));
        return SL_EIO;
    }
    return 0;
}

/* Size and free space (for an unprivileged writer) of the spool's filesystem. Returns
 * false when fstatvfs fails: callers then keep their defaults. */
static bool fs_space(const struct sl_spool *s, uint64_t *total, uint64_t *avail)
{
    struct statvfs v;

    if (fstatvfs(s->dirfd, &v) != 0)
        return false;
    *total = (uint64_t)v.f_blocks * v.f_frsize;
    *avail = (uint64_t)v.f_bavail * v.f_frsize;
    return true;
}

/* The roll-over size: segment_bytes, but no more than a share of the filesystem. A
 * segment larger than the disk is never rolled, so it could never be released. */
static uint64_t seg_limit_for(const struct sl_spool *s)
{
    uint64_t total, avail, cap;

    if (!fs_space(s, &total, &avail) || total == 0)
        return s->segment_bytes;
    cap = total / SPOOL_FS_SHARE;
    if (cap < SPOOL_MIN_SEGMENT)
        cap = SPOOL_MIN_SEGMENT;
    return cap < s->segment_bytes ? cap : s->segment_bytes;
}

/* mkdir -p with 0700 for the parts it creates. */
static int make_dirs(const char *dir)
{
    int rc = SL_EIO;
    char *p = strdup(dir);

    if (p == NULL)
        return SL_ENOMEM;
    for (char *q = p + 1;; q++) {
        if (*q != '/' && *q != '\0')
            continue;
        char save = *q;
        *q = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST) {
            sl_error("spool mkdir failed", "path=%s err=\"%s\"", p, strerror(errno));
            goto out;
        }
        *q = save;
        if (save == '\0')
            break;
    }
    rc = 0;
out:
    free(p);
    return rc;
}

static bool is_hex32(const char *p, size_t n)
{
    if (n != 32)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
            return false;
    return true;
}

static int random_bytes(unsigned char *out, size_t n)
{
    size_t done = 0;
    int fd = -1, rc = SL_EIO;

    while (done < n) {
        ssize_t k = getrandom(out + done, n - done, 0);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            break; /* ENOSYS and friends: fall back to the device */
        }
        done += (size_t)k;
    }
    if (done == n)
        return 0;
    fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        sl_error("open /dev/urandom failed", "err=\"%s\"", strerror(errno));
        goto out;
    }
    if (pread_full(fd, out, n, 0) != (ssize_t)n) {
        sl_error("read /dev/urandom failed", "err=\"%s\"", strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    return rc;
}

/* Reads <dir>/node_id, or creates it (write node_id.tmp, fsync, rename, fsync dir). A
 * malformed file is an error, not replaced: the PostgreSQL checkpoint is keyed by it. */
static int load_node_id(struct sl_spool *s)
{
    int rc = SL_EIO, fd = -1;
    char buf[64];
    unsigned char raw[16];
    ssize_t n;

    fd = openat(s->dirfd, "node_id", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        n = pread_full(fd, buf, sizeof(buf), 0);
        if (n < 0) {
            sl_error("spool node_id read failed", "path=%s/node_id err=\"%s\"", s->dir,
                     strerror(errno));
            goto out;
        }
        if (n > 0 && buf[n - 1] == '\n')
            n--;
        if (!is_hex32(buf, (size_t)n)) {
            sl_error("spool node_id malformed", "path=%s/node_id", s->dir);
            rc = SL_EINVAL;
            goto out;
        }
        memcpy(s->node_id, buf, 32);
        s->node_id[32] = '\0';
        rc = 0;
        goto out;
    }
    if (errno != ENOENT) {
        sl_error("spool node_id open failed", "path=%s/node_id err=\"%s\"", s->dir,
                 strerror(errno));
        goto out;
    }
    rc = random_bytes(raw, sizeof(raw));
    if (rc)
        goto out;
    rc = SL_EIO;
    for (int i = 0; i < 16; i++)
        snprintf(s->node_id + 2 * i, 3, "%02x", raw[i]);
    fd = openat(s->dirfd, "node_id.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        sl_error("spool node_id create failed", "path=%s/node_id.tmp err=\"%s\"", s->dir,
                 strerror(errno));
        goto out;
    }
    memcpy(buf, s->node_id, 32);
    buf[32] = '\n';
    if (pwrite(fd, buf, 33, 0) != 33 || fsync(fd) != 0) {
        sl_error("spool node_id write failed", "path=%s/node_id.tmp err=\"%s\"", s->dir,
                 strerror(errno));
        goto out;
    }
    if (renameat(s->dirfd, "node_id.tmp", s->dirfd, "node_id") != 0) {
        sl_error("spool node_id rename failed", "path=%s/node_id err=\"%s\"", s->dir,
                 strerror(errno));
        goto out;
    }
    if (fsync(s->dirfd) != 0) {
        sl_error("spool dir fsync failed", "path=%s err=\"%s\"", s->dir, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    return rc;
}

static int segs_reserve(struct sl_spool *s, size_t want)
{
    struct spool_seg *n;
    size_t cap;

    if (want <= s->capsegs)
        return 0;
    cap = s->capsegs ? s->capsegs * 2 : 16;
    while (cap < want)
        cap *= 2;
    n = realloc(s->segs, cap * sizeof(*n));
    if (n == NULL)
        return SL_ENOMEM;
    s->segs = n;
    s->capsegs = cap;
    return 0;
}

/* Lists seg-*.spool in the directory into s->segs, sorted. */
static int list_segments(struct sl_spool *s)
{
    int rc = SL_EIO, fd;
    DIR *d = NULL;
    struct dirent *e;

    fd = openat(s->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || (d = fdopendir(fd)) == NULL) {
        sl_error("spool opendir failed", "path=%s err=\"%s\"", s->dir, strerror(errno));
        if (fd >= 0)
            close(fd);
        goto out;
    }
    for (;;) {
        uint64_t base;
        errno = 0;
        e = readdir(d);
        if (e == NULL) {
            if (errno != 0) {
                sl_error("spool readdir failed", "path=%s err=\"%s\"", s->dir, strerror(errno));
                goto out;
            }
            break;
        }
        if (!parse_seg_name(e->d_name, &base))
            continue;
        rc = segs_reserve(s, s->nsegs + 1);
        if (rc)
            goto out;
        rc = SL_EIO;
        s->segs[s->nsegs++].base = base;
    }
    if (s->nsegs > 1) /* qsort(NULL, 0) is undefined */
        qsort(s->segs, s->nsegs, sizeof(*s->segs), cmp_seg);
    rc = 0;
out:
    if (d != NULL)
        closedir(d);
    return rc;
}

/* Scans the segment open on fd (size bytes) from the start; *good is the offset just past
 * the last record whose header and CRC check out. */
static int scan_segment(struct sl_spool *s, int fd, uint64_t size, uint64_t *good)
{
    int rc = SL_ENOMEM;
    unsigned char hdr[SPOOL_HDR];
    unsigned char *buf = malloc(SPOOL_READ_CHUNK);
    uint64_t off = 0;
    char name[SPOOL_NAME_LEN];

    seg_name(name, s->segs[s->nsegs - 1].base);
    if (buf == NULL)
        goto out;
    rc = SL_EIO;
    while (off + SPOOL_HDR <= size) {
        uint32_t len, want, crc = 0;
        uint64_t p;

        if (pread_full(fd, hdr, SPOOL_HDR, off) != (ssize_t)SPOOL_HDR) {
            sl_error("spool scan read failed", "path=%s/%s err=\"%s\"", s->dir, name,
                     errno ? strerror(errno) : "short read");
            goto out;
        }
        len = get_le32(hdr + 4);
        want = get_le32(hdr + 8);
        if (get_le32(hdr) != SPOOL_MAGIC || size - off - SPOOL_HDR < len)
            break;
        /* CRC over the payload in chunks: recovery memory does not grow with records. */
        for (p = 0; p < len;) {
            size_t k = len - p < SPOOL_READ_CHUNK ? (size_t)(len - p) : SPOOL_READ_CHUNK;
            if (pread_full(fd, buf, k, off + SPOOL_HDR + p) != (ssize_t)k) {
                sl_error("spool scan read failed", "path=%s/%s err=\"%s\"", s->dir, name,
                         errno ? strerror(errno) : "short read");
                goto out;
            }
            crc = sl_crc32c(crc, buf, k);
            p += k;
        }
        if (crc != want)
            break;
        off += SPOOL_HDR + len;
    }
    *good = off;
    rc = 0;
out:
    free(buf);
    return rc;
}

/* Opens the last segment for writing (creating segment 0 in an empty directory), truncates
 * its torn tail and makes everything already on disk durable, so synced == written. */
static int recover(struct sl_spool *s)
{
    int rc = SL_EIO, fd = -1;
    char name[SPOOL_NAME_LEN];
    struct stat st;
    uint64_t good = 0, base;

    if (s->nsegs == 0) {
        rc = segs_reserve(s, 1);
        if (rc)
            goto out;
        rc = SL_EIO;
        s->segs[0].base = 0;
        s->nsegs = 1;
        seg_name(name, 0);
        fd = openat(s->dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0) {
            sl_error("spool segment create failed", "path=%s/%s err=\"%s\"", s->dir, name,
                     strerror(errno));
            goto out;
        }
        if (fsync(s->dirfd) != 0) {
            sl_error("spool dir fsync failed", "path=%s err=\"%s\"", s->dir, strerror(errno));
            goto out;
        }
        s->fd = fd;
        fd = -1;
        rc = 0;
        goto out;
    }

    /* Older segments were complete when the next one was created; a crash after that can
     * only have lost bytes that no sender was told are durable (the reader skips such a
     * gap). Sync them anyway: after a process crash their bytes may sit only in the page
     * cache, and the reader is about to treat them as synced. */
    for (size_t i = 0; i + 1 < s->nsegs && s->fsync; i++) {
        int ofd;
        seg_name(name, s->segs[i].base);
        ofd = openat(s->dirfd, name, O_RDONLY | O_CLOEXEC);
        if (ofd < 0 || fdatasync(ofd) != 0) {
            sl_error("spool segment sync failed", "path=%s/%s err=\"%s\"", s->dir, name,
                     strerror(errno));
            if (ofd >= 0)
                close(ofd);
            goto out;
        }
        close(ofd);
    }

    base = s->segs[s->nsegs - 1].base;
    seg_name(name, base);
    fd = openat(s->dirfd, name, O_RDWR | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0) {
        sl_error("spool segment open failed", "path=%s/%s err=\"%s\"", s->dir, name,
                 strerror(errno));
        goto out;
    }
    rc = scan_segment(s, fd, (uint64_t)st.st_size, &good);
    if (rc)
        goto out;
    rc = SL_EIO;
    if (good < (uint64_t)st.st_size) {
        s->torn_bytes = (uint64_t)st.st_size - good;
        sl_warn("spool torn tail truncated", "path=%s/%s good=%" PRIu64 " torn_bytes=%" PRIu64,
                s->dir, name, good, s->torn_bytes);
        if (ftruncate(fd, (off_t)good) != 0) {
            sl_error("spool truncate failed", "path=%s/%s err=\"%s\"", s->dir, name,
                     strerror(errno));
            goto out;
        }
    }
    if (s->fsync && (fdatasync(fd) != 0 || fsync(s->dirfd) != 0)) {
        sl_error("spool recovery sync failed", "path=%s/%s err=\"%s\"", s->dir, name,
                 strerror(errno));
        goto out;
    }
    if (UINT64_MAX - base < good) {
        sl_error("spool segment name out of range", "path=%s/%s", s->dir, name);
        goto out;
    }
    s->fd = fd;
    fd = -1;
    s->seg_off = good;
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    if (rc == 0) {
        s->written_lsn = s->segs[s->nsegs - 1].base + s->seg_off;
        s->synced_lsn = s->written_lsn;
        s->cb_lsn = s->written_lsn;
        s->released_lsn = s->segs[0].base;
    }
    return rc;
}

static int roll_locked(struct sl_spool *s, bool quiet);

/* After recovery: size segments for this filesystem, and when it has no room for another
 * segment, end the last one now. Otherwise a restart on a full disk would keep appending
 * to (and never releasing) the segment that fills it. */
static int open_space_check(struct sl_spool *s)
{
    uint64_t total, avail;
    int rc = 0;

    s->seg_limit = seg_limit_for(s);
    if (s->seg_limit < s->segment_bytes)
        sl_info("spool segments capped by the filesystem size",
                "path=%s segment_bytes=%" PRIu64 " capped_to=%" PRIu64, s->dir, s->segment_bytes,
                s->seg_limit);
    if (!fs_space(s, &total, &avail) || avail >= s->seg_limit)
        return 0;
    if (s->seg_off > 0)
        rc = roll_locked(s, false);
    if (rc == 0 && avail < SPOOL_ROOM_SLACK) {
        s->full = true;
        sl_warn("spool disk full", "path=%s free_bytes=%" PRIu64 " at=open", s->dir, avail);
    }
    return rc;
}

/* flock the directory, retrying every 5 ms for up to wait_ms while another process
 * holds it. Returns 0, or -1 with errno. */
static int lock_dir(int dirfd, int wait_ms)
{
    int64_t deadline = sl_clock_mono_ms() + (wait_ms > 0 ? wait_ms : 0);

    for (;;) {
        if (flock(dirfd, LOCK_EX | LOCK_NB) == 0)
            return 0;
        if (errno != EWOULDBLOCK || sl_clock_mono_ms() >= deadline)
            return -1;
        usleep(5000);
    }
}

int sl_spool_open(const struct sl_spool_opts *o, struct sl_spool **out)
{
    int rc = SL_EINVAL;
    struct sl_spool *s = NULL;
    pthread_condattr_t ca;

    *out = NULL;
    if (o == NULL || o->dir == NULL || o->dir[0] == '\0')
        goto out;
    rc = SL_ENOMEM;
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        goto out;
    s->dirfd = -1;
    s->fd = -1;
    s->segment_bytes = o->segment_bytes ? o->segment_bytes : SPOOL_DEF_SEGMENT;
    s->max_bytes = o->max_bytes ? o->max_bytes : SPOOL_DEF_MAX;
    s->max_record = o->max_record ? o->max_record : SPOOL_DEF_RECORD;
    s->fsync = o->fsync;
    s->dir = strdup(o->dir);
    if (s->dir == NULL)
        goto out;

    if (pthread_mutex_init(&s->mu, NULL) != 0)
        goto out;
    s->mu_ok = true;
    if (pthread_condattr_init(&ca) != 0)
        goto out;
    /* sl_spool_wait's timeout must not jump with the wall clock. */
    if (pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 &&
        pthread_cond_init(&s->synced, &ca) == 0)
        s->synced_ok = true;
    pthread_condattr_destroy(&ca);
    if (!s->synced_ok || pthread_cond_init(&s->work, NULL) != 0)
        goto out;
    s->work_ok = true;

    rc = make_dirs(s->dir);
    if (rc)
        goto out;
    rc = SL_EIO;
    s->dirfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->dirfd < 0) {
        sl_error("spool dir open failed", "path=%s err=\"%s\"", s->dir, strerror(errno));
        goto out;
    }
    /* Two processes appending to one spool would interleave records. A binary upgrade
     * waits here for the old process to release it (o->lock_wait_ms). */
    if (lock_dir(s->dirfd, o->lock_wait_ms) != 0) {
        sl_error("spool dir locked", "path=%s err=\"%s\" waited_ms=%d", s->dir, strerror(errno),
                 o->lock_wait_ms);
        goto out;
    }
    rc = load_node_id(s);
    if (rc)
        goto out;
    rc = list_segments(s);
    if (rc)
        goto out;
    rc = recover(s);
    if (rc)
        goto out;
    rc = open_space_check(s);
    if (rc)
        goto out;
    sl_info("spool open",
            "path=%s node_id=%s segments=%zu first_lsn=%" PRIu64 " written_lsn=%" PRIu64
            " torn_bytes=%" PRIu64,
            s->dir, s->node_id, s->nsegs, s->segs[0].base, s->written_lsn, s->torn_bytes);
    *out = s;
    s = NULL;
    rc = 0;
out:
    sl_spool_free(s);
    return rc;
}

const char *sl_spool_node_id(const struct sl_spool *s)
{
    return s->node_id;
}

/* ------------------------------------------------------------------------------------ */
/* Group commit                                                                         */
/* ------------------------------------------------------------------------------------ */

/* One sync round. Called and returns with s->mu held; drops it around the fsyncs. Takes
 * the "syncing" token so that only one round (syncer or sl_spool_sync_now) touches the
 * fds at a time. Order: rolled segments, the directory, the segment being written; only
 * then may the synced LSN pass into the later segments. */
static int sync_round_locked(struct sl_spool *s)
{
    int rc = 0, fd;
    int *old;
    size_t nold;
    bool dir;
    uint64_t target;

    while (s->syncing)
        pthread_cond_wait(&s->synced, &s->mu);
    if (s->failed)
        return SL_EIO;
    target = s->written_lsn;
    if (target == s->synced_lsn && s->nold == 0 && !s->dir_dirty)
        return 0;
    fd = s->fd;
    old = s->oldfd;
    nold = s->nold;
    dir = s->dir_dirty;
    s->oldfd = NULL;
    s->nold = s->capold = 0;
    s->dir_dirty = false;
    s->syncing = true;
    pthread_mutex_unlock(&s->mu);

    for (size_t i = 0; i < nold; i++) {
        if (s->fsync && rc == 0 && fdatasync(old[i]) != 0) {
            sl_error("spool fdatasync failed", "path=%s err=\"%s\"", s->dir, strerror(errno));
            rc = SL_EIO;
        }
        close(old[i]);
    }
    free(old);
    if (rc == 0 && dir)
        rc = sync_dir(s);
    if (rc == 0 && s->fsync && fdatasync(fd) != 0) {
        sl_error("spool fdatasync failed", "path=%s err=\"%s\"", s->dir, strerror(errno));
        rc = SL_EIO;
    }

    pthread_mutex_lock(&s->mu);
    s->syncing = false;
    if (rc == 0) {
        if (target > s->synced_lsn)
            s->synced_lsn = target;
        s->syncs++;
    } else {
        /* After a failed fsync the kernel may have dropped the dirty pages: retrying
         * could report success for lost data. Stop accepting and stop publishing. */
        s->failed = true;
    }
    pthread_cond_broadcast(&s->synced);
    return rc;
}

static bool syncer_has_work(const struct sl_spool *s)
{
    return s->written_lsn > s->synced_lsn || s->nold > 0 || s->dir_dirty ||
           (s->cb != NULL && s->synced_lsn > s->cb_lsn);
}

static void *syncer_main(void *arg)
{
    struct sl_spool *s = arg;

    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->stop && !s->failed && !syncer_has_work(s))
            pthread_cond_wait(&s->work, &s->mu);
        if (s->failed)
            break;
        /* On stop this is the last sync: everything appended before free is covered. */
        if (syncer_has_work(s)) {
            if (sync_round_locked(s) != 0)
                break;
            if (s->cb != NULL && s->synced_lsn > s->cb_lsn) {
                uint64_t lsn = s->synced_lsn;
                s->cb_lsn = lsn;
                pthread_mutex_unlock(&s->mu);
                s->cb(s->cb_arg, lsn);
                pthread_mutex_lock(&s->mu);
            }
            continue;
        }
        if (s->stop)
            break;
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

int sl_spool_start_syncer(struct sl_spool *s, sl_spool_synced_cb cb, void *arg)
{
    int rc = SL_EINVAL, err;

    pthread_mutex_lock(&s->mu);
    if (s->thread_started)
        goto out;
    s->cb = cb;
    s->cb_arg = arg;
    s->cb_lsn = s->synced_lsn;
    err = pthread_create(&s->thread, NULL, syncer_main, s);
    if (err != 0) {
        sl_error("spool syncer start failed", "err=\"%s\"", strerror(err));
        rc = SL_EIO;
        goto out;
    }
    s->thread_started = true;
    rc = 0;
out:
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int sl_spool_sync_now(struct sl_spool *s)
{
    int rc;

    pthread_mutex_lock(&s->mu);
    rc = sync_round_locked(s);
    /* The syncer owns the callback: let it report what this round published. */
    if (s->cb != NULL)
        pthread_cond_signal(&s->work);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

void sl_spool_free(struct sl_spool *s)
{
    if (s == NULL)
        return;
    if (s->thread_started) {
        pthread_mutex_lock(&s->mu);
        s->stop = true;
        pthread_cond_signal(&s->work);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->thread, NULL);
    }
    if (s->mu_ok && s->synced_ok && s->fd >= 0) {
        /* No syncer ran (or it stopped on a failure): a clean close is still durable. */
        pthread_mutex_lock(&s->mu);
        if (sync_round_locked(s) != 0)
            sl_error("spool final sync failed", "path=%s", s->dir);
        pthread_mutex_unlock(&s->mu);
    }
    for (size_t i = 0; i < s->nold; i++)
        close(s->oldfd[i]);
    free(s->oldfd);
    if (s->fd >= 0)
        close(s->fd);
    if (s->dirfd >= 0)
        close(s->dirfd); /* drops the flock */
    if (s->work_ok)
        pthread_cond_destroy(&s->work);
    if (s->synced_ok)
        pthread_cond_destroy(&s->synced);
    if (s->mu_ok)
        pthread_mutex_destroy(&s->mu);
    free(s->segs);
    free(s->dir);
    free(s);
}

/* ------------------------------------------------------------------------------------ */
/* Appends                                                                              */
/* ------------------------------------------------------------------------------------ */

/* Starts a new segment at written_lsn. mu held. The old write fd goes to s->oldfd for the
 * next sync round to fdatasync and close (the appender never waits for fsync); the
 * directory entry is made durable by that round too (dir_dirty). quiet: do not log a
 * failed create (retried on every append while the disk is full). */
static int roll_locked(struct sl_spool *s, bool quiet)
{
    char name[SPOOL_NAME_LEN];
    int fd, rc;

    rc = segs_reserve(s, s->nsegs + 1);
    if (rc)
        return rc;
    if (s->fsync && s->nold == s->capold) {
        size_t cap = s->capold ? s->capold * 2 : 4;
        int *n = realloc(s->oldfd, cap * sizeof(*n));
        if (n == NULL)
            return SL_ENOMEM;
        s->oldfd = n;
        s->capold = cap;
    }
    seg_name(name, s->written_lsn);
    fd = openat(s->dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (!quiet)
            sl_error("spool segment create failed", "path=%s/%s err=\"%s\"", s->dir, name,
                     strerror(errno));
        return SL_EIO;
    }
    if (s->fsync) {
        s->oldfd[s->nold++] = s->fd;
        s->dir_dirty = true;
    } else {
        close(s->fd); /* not syncing: nothing left to do with it */
    }
    s->fd = fd;
    s->seg_off = 0;
    s->segs[s->nsegs++].base = s->written_lsn;
    s->seg_limit = seg_limit_for(s); /* the filesystem may have been resized */
    return 0;
}

/* Deletes every segment whose successor starts at or below released_lsn (never the last
 * one). Called and returns with mu held; one segment per lock hold, the unlink without
 * the lock: appends do not wait on the filesystem. Returns the number deleted. */
static size_t reclaim_locked(struct sl_spool *s)
{
    char name[SPOOL_NAME_LEN];
    size_t n = 0;

    while (s->nsegs > 1 && s->segs[1].base <= s->released_lsn) {
        seg_name(name, s->segs[0].base);
        memmove(s->segs, s->segs + 1, (s->nsegs - 1) * sizeof(*s->segs));
        s->nsegs--;
        n++;
        pthread_mutex_unlock(&s->mu);
        if (unlinkat(s->dirfd, name, 0) != 0 && errno != ENOENT)
            sl_error("spool segment unlink failed", "path=%s/%s err=\"%s\"", s->dir, name,
                     strerror(errno));
        pthread_mutex_lock(&s->mu);
    }
    return n;
}

/* The disk was full and segments were deleted: if there is room for a whole segment
 * (or a quarter of a disk smaller than that) again, say so once. An append that
 * succeeds clears it too. mu held. */
static void check_room_locked(struct sl_spool *s)
{
    uint64_t total, avail;

    if (!s->full || s->seg_off != 0 || !fs_space(s, &total, &avail))
        return;
    if (avail >= s->seg_limit || avail >= total / 4) {
        s->full = false;
        sl_info("spool has room again", "path=%s free_bytes=%" PRIu64, s->dir, avail);
    }
}

int sl_spool_appendv(struct sl_spool *s, const struct iovec *iov, int iovcnt, uint64_t *end_lsn)
{
    int rc = SL_EINVAL, n = 0;
    struct iovec stackv[SPOOL_STACK_IOV + 1];
    struct iovec *v = stackv;
    unsigned char hdr[SPOOL_HDR];
    uint64_t len = 0, rec;
    uint32_t crc = 0;
    bool locked = false, rolled = false;

    if (iovcnt < 0 || (iovcnt > 0 && iov == NULL))
        goto out;
    for (int i = 0; i < iovcnt; i++) {
        len += iov[i].iov_len;
        if (iov[i].iov_len > s->max_record || len > s->max_record) {
            rc = SL_ETOOBIG;
            goto out;
        }
    }
    /* Checksum and iovec copy outside the lock: the critical section is the write. */
    if (iovcnt > SPOOL_STACK_IOV) {
        rc = SL_ENOMEM;
        v = malloc(((size_t)iovcnt + 1) * sizeof(*v));
        if (v == NULL)
            goto out;
    }
    v[n].iov_base = hdr;
    v[n++].iov_len = SPOOL_HDR;
    for (int i = 0; i < iovcnt; i++) {
        if (iov[i].iov_len == 0)
            continue;
        crc = sl_crc32c(crc, iov[i].iov_base, iov[i].iov_len);
        v[n++] = iov[i];
    }
    put_le32(hdr, SPOOL_MAGIC);
    put_le32(hdr + 4, (uint32_t)len);
    put_le32(hdr + 8, crc);
    rec = SPOOL_HDR + len;

    pthread_mutex_lock(&s->mu);
    locked = true;
    rc = SL_EIO;
    if (s->failed || s->stop)
        goto out;
    rc = SL_EFULL;
    if (s->written_lsn - s->released_lsn + rec > s->max_bytes)
        goto out;
    if (s->full) {
        /* Refused quietly until there is room: no write attempt (and no log line) per
         * request. The full segment is ended first, so that once the writer has released
         * it, it can be deleted. */
        uint64_t total, avail;
        if (s->seg_off > 0) {
            if (roll_locked(s, true) != 0)
                goto out;
            rolled = true;
        }
        if (fs_space(s, &total, &avail) && avail < rec + SPOOL_ROOM_SLACK)
            goto out;
    }
    /* A record never spans segments; one larger than the segment size gets its own. */
    if (s->seg_off > 0 && s->seg_off + rec > s->seg_limit) {
        rc = roll_locked(s, false);
        if (rc)
            goto out;
        rolled = true;
    }
    if (pwritev_full(s->fd, v, n, s->seg_off) != 0) {
        int err = errno;
        char name[SPOOL_NAME_LEN];
        bool nospace = err == ENOSPC || err == EDQUOT;
        seg_name(name, s->segs[s->nsegs - 1].base);
        if (!nospace)
            sl_error("spool write failed", "path=%s/%s err=\"%s\"", s->dir, name, strerror(err));
        /* Cut the partial record off so the stream stays parseable; if even that fails
         * the next record would land after garbage: refuse further appends. The record
         * was never acknowledged, and its LSNs are reused by the next append. */
        if (ftruncate(s->fd, (off_t)s->seg_off) != 0) {
            sl_error("spool truncate failed", "path=%s/%s err=\"%s\"", s->dir, name,
                     strerror(errno));
            s->failed = true;
        }
        rc = SL_EIO;
        if (nospace && !s->failed) {
            /* Out of space: end this segment (a new one starts at written_lsn) so that
             * it is deleted as soon as the writer releases it, and refuse with SL_EFULL
             * until there is room. One log line per state change. */
            if (!s->full)
                sl_warn("spool disk full",
                        "path=%s/%s written_lsn=%" PRIu64 " released_lsn=%" PRIu64 " err=\"%s\"",
                        s->dir, name, s->written_lsn, s->released_lsn, strerror(err));
            s->full = true;
            if (s->seg_off > 0 && roll_locked(s, true) == 0)
                rolled = true;
            rc = SL_EFULL;
        }
        goto out;
    }
    if (s->full) {
        s->full = false;
        sl_info("spool has room again", "path=%s written_lsn=%" PRIu64, s->dir, s->written_lsn);
    }
    s->seg_off += rec;
    s->written_lsn += rec;
    *end_lsn = s->written_lsn;
    if (!s->fsync) {
        /* Benchmarks: written counts as durable. The syncer only has the callback to
         * make; waking it for nothing would cost a futex wake per record. */
        s->synced_lsn = s->written_lsn;
        pthread_cond_broadcast(&s->synced);
        if (s->cb != NULL)
            pthread_cond_signal(&s->work);
    } else {
        pthread_cond_signal(&s->work);
    }
    rc = 0;
out:
    /* Out of space: the segment just ended may already be released (the writer caught
     * up before the roll), and no release may come to delete it: do it now. Only then,
     * so that in normal operation the event loop never waits on an unlink. */
    if (rolled && s->full && reclaim_locked(s) > 0)
        check_room_locked(s);
    if (locked)
        pthread_mutex_unlock(&s->mu);
    if (v != stackv)
        free(v);
    return rc;
}

uint64_t sl_spool_written_lsn(struct sl_spool *s)
{
    uint64_t v;
    pthread_mutex_lock(&s->mu);
    v = s->written_lsn;
    pthread_mutex_unlock(&s->mu);
    return v;
}

uint64_t sl_spool_synced_lsn(struct sl_spool *s)
{
    uint64_t v;
    pthread_mutex_lock(&s->mu);
    v = s->synced_lsn;
    pthread_mutex_unlock(&s->mu);
    return v;
}

uint64_t sl_spool_wait(struct sl_spool *s, uint64_t lsn, int timeout_ms)
{
    struct timespec until;
    uint64_t v;

    sl_clock_mono_deadline(&until, timeout_ms);
    pthread_mutex_lock(&s->mu);
    while (s->synced_lsn <= lsn && timeout_ms > 0) {
        if (pthread_cond_timedwait(&s->synced, &s->mu, &until) == ETIMEDOUT)
            break;
    }
    v = s->synced_lsn;
    pthread_mutex_unlock(&s->mu);
    return v;
}

/* ------------------------------------------------------------------------------------ */
/* Release                                                                              */
/* ------------------------------------------------------------------------------------ */

void sl_spool_release(struct sl_spool *s, uint64_t lsn)
{
    pthread_mutex_lock(&s->mu);
    /* Nothing above the synced LSN can have been committed downstream. */
    if (lsn > s->synced_lsn)
        lsn = s->synced_lsn;
    if (lsn > s->released_lsn)
        s->released_lsn = lsn;
    /* Segment i covers [base_i, base_{i+1}); the last one is never deleted. */
    if (reclaim_locked(s) > 0)
        check_room_locked(s);
    pthread_mutex_unlock(&s->mu);
}

uint64_t sl_spool_first_lsn(struct sl_spool *s)
{
    uint64_t v;
    pthread_mutex_lock(&s->mu);
    v = s->segs[0].base;
    pthread_mutex_unlock(&s->mu);
    return v;
}

void sl_spool_get_stats(struct sl_spool *s, struct sl_spool_stats *st)
{
    pthread_mutex_lock(&s->mu);
    st->written_lsn = s->written_lsn;
    st->synced_lsn = s->synced_lsn;
    st->released_lsn = s->released_lsn;
    st->depth_bytes = s->written_lsn - s->released_lsn;
    st->segments = s->nsegs;
    st->syncs = s->syncs;
    st->torn_bytes = s->torn_bytes;
    st->corrupt_records = s->corrupt_records;
    st->full = s->full;
    pthread_mutex_unlock(&s->mu);
}

uint64_t sl_spool_fs_free_bytes(struct sl_spool *s)
{
    uint64_t total, avail;

    return fs_space(s, &total, &avail) ? avail : 0;
}

/* ------------------------------------------------------------------------------------ */
/* Reader                                                                               */
/* ------------------------------------------------------------------------------------ */

int sl_spool_reader_open(struct sl_spool *s, uint64_t from_lsn, struct sl_spool_reader **out)
{
    int rc = SL_EINVAL;
    struct sl_spool_reader *r = NULL;
    bool locked = true;

    *out = NULL;
    pthread_mutex_lock(&s->mu);
    if (s->reader_open) {
        sl_error("spool reader already open", "path=%s", s->dir);
        goto out;
    }
    if (from_lsn > s->written_lsn) {
        /* A checkpoint past everything on disk: the spool lost data (or is not the one
         * the checkpoint was taken from). Starting anyway would hide the loss. */
        sl_error("spool reader start beyond the spool",
                 "path=%s from_lsn=%" PRIu64 " written_lsn=%" PRIu64, s->dir, from_lsn,
                 s->written_lsn);
        goto out;
    }
    rc = SL_ENOMEM;
    r = calloc(1, sizeof(*r));
    if (r == NULL)
        goto out;
    r->s = s;
    r->fd = -1;
    r->pos = from_lsn < s->segs[0].base ? s->segs[0].base : from_lsn;
    s->reader_open = true;
    pthread_mutex_unlock(&s->mu);
    locked = false;
    *out = r;
    rc = 0;
out:
    if (locked)
        pthread_mutex_unlock(&s->mu);
    return rc;
}

void sl_spool_reader_free(struct sl_spool_reader *r)
{
    if (r == NULL)
        return;
    pthread_mutex_lock(&r->s->mu);
    r->s->reader_open = false;
    pthread_mutex_unlock(&r->s->mu);
    if (r->fd >= 0)
        close(r->fd);
    free(r->buf);
    free(r);
}

static void reader_close_fd(struct sl_spool_reader *r)
{
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
    r->buf_len = 0;
}

/* Makes r->buf hold segment bytes [off, off + need); reads ahead up to limit (the end of
 * the synced part of this segment). Returns 1, 0 when the file ends first, or SL_EIO /
 * SL_ENOMEM. */
static int reader_fill(struct sl_spool_reader *r, uint64_t off, size_t need, uint64_t limit)
{
    size_t want;
    ssize_t n;

    if (off >= r->buf_off && off + need <= r->buf_off + r->buf_len)
        return 1;
    want = need > SPOOL_READ_CHUNK ? need : SPOOL_READ_CHUNK;
    if (limit - off < want)
        want = (size_t)(limit - off); /* >= need: callers check it */
    if (r->buf_cap < want) {
        unsigned char *nb = realloc(r->buf, want);
        if (nb == NULL)
            return SL_ENOMEM;
        r->buf = nb;
        r->buf_cap = want;
    }
    r->buf_off = off;
    r->buf_len = 0;
    n = pread_full(r->fd, r->buf, want, off);
    if (n < 0) {
        sl_error("spool read failed", "path=%s segment=%016" PRIx64 " err=\"%s\"", r->s->dir,
                 r->fd_base, strerror(errno));
        return SL_EIO;
    }
    r->buf_len = (size_t)n;
    return (size_t)n >= need ? 1 : 0;
}

int sl_spool_reader_next(struct sl_spool_reader *r, const void **payload, size_t *len,
                         uint64_t *end_lsn)
{
    struct sl_spool *s = r->s;
    char name[SPOOL_NAME_LEN];

    for (;;) {
        uint64_t synced, base, next, limit, off, plen;
        const unsigned char *h;
        const char *why = NULL;
        size_t i;
        int rc;

        pthread_mutex_lock(&s->mu);
        synced = s->synced_lsn;
        if (r->pos < s->segs[0].base)
            r->pos = s->segs[0].base; /* released underneath us */
        for (i = s->nsegs - 1; i > 0 && s->segs[i].base > r->pos; i--)
            ;
        base = s->segs[i].base;
        next = i + 1 < s->nsegs ? s->segs[i + 1].base : UINT64_MAX;
        pthread_mutex_unlock(&s->mu);

        if (r->skip) {
            if (next == UINT64_MAX)
                return 0; /* the corrupt record is in the segment being written */
            r->skip = false;
            r->pos = next;
            continue;
        }
        if (r->pos >= synced)
            return 0;
        if (r->fd < 0 || r->fd_base != base) {
            reader_close_fd(r);
            seg_name(name, base);
            r->fd = openat(s->dirfd, name, O_RDONLY | O_CLOEXEC);
            if (r->fd < 0) {
                if (errno == ENOENT && next != UINT64_MAX)
                    continue; /* released meanwhile: the list no longer holds it */
                sl_error("spool segment open failed", "path=%s/%s err=\"%s\"", s->dir, name,
                         strerror(errno));
                return SL_EIO;
            }
            r->fd_base = base;
        }
        off = r->pos - base;
        limit = (synced < next ? synced : next) - base;
        if (limit - off < SPOOL_HDR) {
            why = "short header";
            goto corrupt;
        }
        rc = reader_fill(r, off, SPOOL_HDR, limit);
        if (rc < 0)
            return rc;
        if (rc == 0) {
            /* The file ends before the next segment starts: bytes that were written but
             * never synced before a crash, then a new segment (nobody was answered). */
            why = "segment ends early";
            goto corrupt;
        }
        h = r->buf + (off - r->buf_off);
        plen = get_le32(h + 4);
        if (get_le32(h) != SPOOL_MAGIC) {
            why = "bad magic";
            goto corrupt;
        }
        if (limit - off - SPOOL_HDR < plen) {
            why = "record runs past the segment or the synced LSN";
            goto corrupt;
        }
        rc = reader_fill(r, off, (size_t)(SPOOL_HDR + plen), limit);
        if (rc < 0)
            return rc;
        if (rc == 0) {
            why = "short payload";
            goto corrupt;
        }
        h = r->buf + (off - r->buf_off);
        if (sl_crc32c(0, h + SPOOL_HDR, (size_t)plen) != get_le32(h + 8)) {
            why = "crc mismatch";
            goto corrupt;
        }
        *payload = h + SPOOL_HDR;
        *len = (size_t)plen;
        r->pos += SPOOL_HDR + plen;
        *end_lsn = r->pos;
        return 1;

    corrupt:
        /* Never return a bad record; the rest of this segment cannot be framed. */
        pthread_mutex_lock(&s->mu);
        s->corrupt_records++;
        pthread_mutex_unlock(&s->mu);
        sl_warn("spool corrupt record skipped",
                "path=%s segment=%016" PRIx64 " lsn=%" PRIu64 " reason=\"%s\" skip_to=%" PRIu64,
                s->dir, base, r->pos, why, next == UINT64_MAX ? 0 : next);
        if (next == UINT64_MAX) {
            r->skip = true;
            return 0;
        }
        r->pos = next;
    }
}
