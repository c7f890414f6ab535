/* Unit tests for drain/spool.c (include/sluice/spool.h): record format and LSNs, group
 * commit, segment roll-over and release, bounds, recovery of torn tails, the reader, and
 * concurrent appends. Every test works in its own mkdtemp directory under /tmp. */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cmocka.h>

#include "sluice/log.h"
#include "sluice/spool.h"

#define HDR 12u

struct fx {
    char dir[64];
};

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/sluice-spool-XXXXXX");
    if (mkdtemp(f->dir) == NULL) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    nftw(f->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static struct sl_spool *open_spool(const char *dir, uint64_t seg, uint64_t max, uint32_t rec,
                                   bool fs)
{
    struct sl_spool_opts o = {
        .dir = dir, .segment_bytes = seg, .max_bytes = max, .max_record = rec, .fsync = fs};
    struct sl_spool *s = NULL;
    assert_int_equal(sl_spool_open(&o, &s), 0);
    assert_non_null(s);
    return s;
}

/* Deterministic payload i: length varies (including 0), content depends on i. */
static size_t make_payload(unsigned i, unsigned char *buf, size_t cap)
{
    size_t len = (i * 37u) % 300u;
    if (len > cap)
        len = cap;
    for (size_t k = 0; k < len; k++)
        buf[k] = (unsigned char)(i * 131u + k * 7u);
    return len;
}

static uint64_t append_buf(struct sl_spool *s, const void *p, size_t len)
{
    struct iovec v = {.iov_base = (void *)(uintptr_t)p, .iov_len = len};
    uint64_t end = 0;
    assert_int_equal(sl_spool_appendv(s, &v, 1, &end), 0);
    return end;
}

static uint64_t append_str(struct sl_spool *s, const char *str)
{
    return append_buf(s, str, strlen(str));
}

/* Appends payloads [from, to) and returns the end LSN of the last. */
static uint64_t append_range(struct sl_spool *s, unsigned from, unsigned to)
{
    unsigned char buf[512];
    uint64_t end = 0;
    for (unsigned i = from; i < to; i++)
        end = append_buf(s, buf, make_payload(i, buf, sizeof(buf)));
    return end;
}

/* Reads from lsn and checks payloads [from, to) come back exactly, then nothing. */
static void expect_range(struct sl_spool *s, uint64_t lsn, unsigned from, unsigned to)
{
    struct sl_spool_reader *r = NULL;
    unsigned char want[512];
    const void *p;
    size_t len;
    uint64_t end, prev = lsn;

    assert_int_equal(sl_spool_reader_open(s, lsn, &r), 0);
    for (unsigned i = from; i < to; i++) {
        size_t wl = make_payload(i, want, sizeof(want));
        assert_int_equal(sl_spool_reader_next(r, &p, &len, &end), 1);
        assert_int_equal(len, wl);
        if (wl > 0)
            assert_memory_equal(p, want, wl);
        assert_int_equal(end, prev + HDR + wl); /* LSNs run on across segments */
        prev = end;
    }
    assert_int_equal(sl_spool_reader_next(r, &p, &len, &end), 0);
    sl_spool_reader_free(r);
}

static int count_segments(const char *dir, char *last, size_t lastcap)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    assert_non_null(d);
    if (last != NULL)
        last[0] = '\0';
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, "seg-", 4) != 0)
            continue;
        n++;
        if (last != NULL && strcmp(e->d_name, last) > 0) {
            size_t nl = strlen(e->d_name);
            assert_true(nl < lastcap);
            memcpy(last, e->d_name, nl + 1);
        }
    }
    closedir(d);
    return n;
}

static void last_segment_path(const char *dir, char *out, size_t cap)
{
    char name[256];
    assert_true(count_segments(dir, name, sizeof(name)) > 0);
    int k = snprintf(out, cap, "%s/%s", dir, name);
    assert_true(k > 0 && (size_t)k < cap);
}

static off_t file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_size;
}

/* Bitwise CRC-32C, the obviously-correct reference. */
static uint32_t crc_ref(uint32_t crc, const unsigned char *p, size_t len)
{
    crc = ~crc;
    while (len--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++)
            crc = (crc & 1) ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
    }
    return ~crc;
}

/* A fake small disk for issue 13 item 2. The test binary defines pwritev and fstatvfs, so
 * drain/spool.c (linked from libsluice.a) calls these; with fake_cap < 0 they pass
 * through. Otherwise the segment files in fake_dir may hold at most fake_cap bytes: a
 * write that would go past it writes what fits (a torn record, as a real full disk
 * leaves) and then fails with ENOSPC; fstatvfs reports the same capacity. */
static long long fake_cap = -1;
static const char *fake_dir;

static uint64_t fake_used(void)
{
    DIR *d = opendir(fake_dir);
    struct dirent *e;
    uint64_t sum = 0;

    if (d == NULL)
        return 0;
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        if (strncmp(e->d_name, "seg-", 4) == 0 && fstatat(dirfd(d), e->d_name, &st, 0) == 0)
            sum += (uint64_t)st.st_size;
    }
    closedir(d);
    return sum;
}

ssize_t pwritev(int fd, const struct iovec *iov, int iovcnt, off_t off)
{
    ssize_t (*real)(int, const struct iovec *, int, off_t);
    *(void **)&real = dlsym(RTLD_NEXT, "pwritev");
    if (fake_cap >= 0 && iovcnt > 0) {
        struct stat st;
        uint64_t len = 0, used = fake_used(), grow, room;
        for (int i = 0; i < iovcnt; i++)
            len += iov[i].iov_len;
        if (fstat(fd, &st) != 0)
            return -1;
        grow = (uint64_t)off + len > (uint64_t)st.st_size
                   ? (uint64_t)off + len - (uint64_t)st.st_size
                   : 0;
        room = (uint64_t)fake_cap > used ? (uint64_t)fake_cap - used : 0;
        if (grow > room) {
            /* what fits of the first piece, as the file system would; then ENOSPC */
            uint64_t fit = (uint64_t)off + room > (uint64_t)st.st_size
                               ? (uint64_t)off + room - (uint64_t)st.st_size
                               : 0;
            if (fit == 0 || (uint64_t)off < (uint64_t)st.st_size) {
                errno = ENOSPC;
                return -1;
            }
            return pwrite(fd, iov[0].iov_base, fit < iov[0].iov_len ? fit : iov[0].iov_len, off);
        }
    }
    return real(fd, iov, iovcnt, off);
}

int fstatvfs(int fd, struct statvfs *v)
{
    int (*real)(int, struct statvfs *);
    *(void **)&real = dlsym(RTLD_NEXT, "fstatvfs");
    if (real(fd, v) != 0)
        return -1;
    if (fake_cap >= 0) {
        uint64_t used = fake_used();
        v->f_frsize = 1;
        v->f_blocks = (fsblkcnt_t)fake_cap;
        v->f_bfree = v->f_bavail =
            (fsblkcnt_t)((uint64_t)fake_cap > used ? (uint64_t)fake_cap - used : 0);
    }
    return 0;
}

static int setup_fakefs(void **state)
{
    int rc = setup(state);
    if (rc == 0)
        fake_dir = ((struct fx *)*state)->dir;
    return rc;
}

static int teardown_fakefs(void **state)
{
    fake_cap = -1;
    fake_dir = NULL;
    return teardown(state);
}

/* ---------------------------------------------------------------------------------- */

static void test_crc32c_vectors(void **state)
{
    unsigned char b[32];
    (void)state;
    assert_int_equal(sl_crc32c(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(sl_crc32c(0, "", 0), 0);
    memset(b, 0, sizeof(b));
    assert_int_equal(sl_crc32c(0, b, 32), 0x8A9136AAu); /* RFC 3720 B.4 */
    memset(b, 0xff, sizeof(b));
    assert_int_equal(sl_crc32c(0, b, 32), 0x62A8AB43u);
    for (int i = 0; i < 32; i++)
        b[i] = (unsigned char)i;
    assert_int_equal(sl_crc32c(0, b, 32), 0x46DD794Eu);
    /* incremental == one shot */
    assert_int_equal(sl_crc32c(sl_crc32c(0, "1234", 4), "56789", 5), 0xE3069283u);
}

static void test_crc32c_matches_bitwise(void **state)
{
    size_t big = (1u << 20) + 13;
    unsigned char *buf = malloc(big + 8);
    (void)state;
    assert_non_null(buf);
    for (size_t i = 0; i < big + 8; i++)
        buf[i] = (unsigned char)(i * 2654435761u >> 13);
    for (size_t off = 0; off < 8; off++)
        for (size_t len = 0; len < 4200; len += (len < 64 ? 1 : 97))
            assert_int_equal(sl_crc32c(0, buf + off, len), crc_ref(0, buf + off, len));
    assert_int_equal(sl_crc32c(0, buf + 3, big), crc_ref(0, buf + 3, big));
    /* split at odd places, including inside the 3-way blocks */
    assert_int_equal(sl_crc32c(sl_crc32c(0, buf, 5000), buf + 5000, big - 5000),
                     crc_ref(0, buf, big));
    free(buf);
}

static void test_append_read_roundtrip(void **state)
{
    struct fx *f = *state;
    struct sl_spool *s = open_spool(f->dir, 0, 0, 0, true);
    append_range(s, 0, 500);
    assert_int_equal(sl_spool_sync_now(s), 0);
    expect_range(s, 0, 0, 500);
    sl_spool_free(s);
}

static void test_end_lsn_arithmetic(void **state)
{
    struct fx *f = *state;
    struct sl_spool *s = open_spool(f->dir, 0, 0, 0, true);
    struct iovec v[3] = {{.iov_base = (void *)(uintptr_t) "ab", .iov_len = 2},
                         {.iov_base = NULL, .iov_len = 0},
                         {.iov_base = (void *)(uintptr_t) "cde", .iov_len = 3}};
    struct sl_spool_reader *r = NULL;
    const void *p;
    size_t len;
    uint64_t end = 0, e2;

    assert_int_equal(sl_spool_written_lsn(s), 0);
    assert_int_equal(append_str(s, "hello"), HDR + 5);
    assert_int_equal(sl_spool_appendv(s, v, 3, &end), 0);
    assert_int_equal(end, 2 * HDR + 5 + 5);
    assert_int_equal(sl_spool_appendv(s, NULL, 0, &end), 0); /* empty record */
    assert_int_equal(end, 3 * HDR + 10);
    assert_int_equal(sl_spool_written_lsn(s), end);
    assert_int_equal(sl_spool_synced_lsn(s), 0);
    assert_int_equal(sl_spool_sync_now(s), 0);
    assert_int_equal(sl_spool_synced_lsn(s), end);

    assert_int_equal(sl_spool_reader_open(s, 0, &r), 0);
    assert_int_equal(sl_spool_reader_next(r, &p, &len, &e2), 1);
    assert_int_equal(e2, HDR + 5);
    assert_memory_equal(p, "hello", 5);
    assert_int_equal(sl_spool_reader_next(r, &p, &len, &e2), 1);
    assert_int_equal(len, 5);
    assert_memory_equal(p, "abcde", 5);
    assert_int_equal(sl_spool_reader_next(r, &p, &len, &e2), 1);
    assert_int_equal(len, 0);
    assert_int_equal(e2, end);
    assert_int_equal(sl_spool_reader_next(r, &p, &len, &e2), 0);
    sl_spool_reader_free(r);
    /* the file is exactly the records */
    {
        char path[256];
        last_segment_path(f->dir, path, sizeof(path));
        assert_int_equal(file_size(path), (off_t)end);
    }
    sl_spool_free(s);
}

static void test_reader_only_synced(void **state)
{
    struct fx *f = *state;
    struct sl_spool *s = open_spool(f->dir, 0, 0, 0, true);
    struct sl_spool_reader *r = NULL;
    const void *p;
    size_t len;
    uint64_t end, last;

    last = append_range(s, 0, 10);
    assert_int_equal(sl_spool_reader_open(s, 0, &r), 0);
    assert_int_equal(sl_spool_reader_next(r, &p, &len, &end), 0);
    assert_int_equal(sl_spool_sync_now(s), 0);
    for (int i = 0; i < 10; i++)
        assert_int_equal(sl_spool_reader_next(r, &p, &len, &end), 1);
    assert_int_equal(end, last);
    /* more appends: invisible until the next sync */
    last = append_range(s, 10, 20);
    assert_int_equal(sl_spool_reader_next(r, &p, &len, &end), 0);
    assert_int_equal(sl_spool_sync_now(s), 0);
    for (int i = 10; i < 20; i++)
        assert_int_equal(sl_spool_reader_next(r, &p, &len, &end), 1);
    assert_int_equal(end, last);
    assert_int_equal(sl_spool_reader_next(r, &p, &len, &end), 0);
    sl_spool_reader_free(r);
    sl_spool_free(s);
}

/* Parses a segment file and checks it holds only whole, valid records. */
static uint64_t check_segment_file(const char *path, uint64_t *nrec)
{
    FILE *fp = fopen(path, "rb");
    unsigned char h[HDR], buf[512];
    uint64_t off = 0;
    assert_non_null(fp);
    *nrec = 0;
    while (fread(h, 1, HDR, fp) == HDR) {
        uint32_t magic =
            (uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 24;
        uint32_t len =
            (uint32_t)h[4] | (uint32_t)h[5] << 8 | (uint32_t)h[6] << 16 | (uint32_t)h[7] << 24;
        uint32_t crc =
            (uint32_t)h[8] | (uint32_t)h[9] << 8 | (uint32_t)h[10] << 16 | (uint32_t)h[11] << 24;
        assert_int_equal(magic, 0x534c5331u);
        assert_true(len <= sizeof(buf));
        assert_int_equal(fread(buf, 1, len, fp), len);
        assert_int_equal(crc_ref(0, buf, len), crc);
        off += HDR + len;
        (*nrec)++;
    }
    assert_true(feof(fp));
    fclose(fp);
    return off;
}

static void test_rollover_and_cross_segment_read(void **state)
{
    struct fx *f = *state;
    struct sl_spool *s = open_spool(f->dir, 1024, 0, 0, true);
    DIR *d;
    struct dirent *e;
    uint64_t total = 0, recs = 0, end;
    int nseg;

    end = append_range(s, 0, 200);
    assert_int_equal(sl_spool_sync_now(s), 0);
    nseg = count_segments(f->dir, NULL, 0);
    assert_true(nseg > 10);
    {
        struct sl_spool_stats st;
        sl_spool_get_stats(s, &st);
        assert_int_equal(st.segments, (uint64_t)nseg);
        assert_int_equal(st.written_lsn, end);
        assert_int_equal(st.synced_lsn, end);
    }
    /* every file: whole records, at most segment_bytes, named after its first LSN; the
     * names and sizes tile the LSN range without gaps */
    d = opendir(f->dir);
    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        char path[512];
        uint64_t n, base, size;
        if (strncmp(e->d_name, "seg-", 4) != 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", f->dir, e->d_name);
        size = check_segment_file(path, &n);
        assert_true(size <= 1024);
        assert_true(n > 0);
        base = strtoull(e->d_name + 4, NULL, 16);
        assert_true(base + size <= end);
        total += size;
        recs += n;
    }
    closedir(d);
    assert_int_equal(total, end);
    assert_int_equal(recs, 200);
    expect_range(s, 0, 0, 200);
    sl_spool_free(s);
}

static void test_large_record_gets_own_segment(void **state)
{
    struct fx *f = *state;
    struct sl_spool *s = open_spool(f->dir, 256, 0, 0, true);
    static unsigned char big[5000];
    struct sl_spool_reader *r = NULL;
    const void *p;
    size_t len;
    uint64_t end;

    memset(big, 'x', sizeof(big));
    append_str(s, "a");
    append_buf(s, big, sizeof(big));
    append_str(s, "b");
    assert_int_equal(sl_spool_sync_now(s), 0);
    assert_int_equal(count_segments(f->dir, NULL, 0), 3);
    assert_int_equal(sl_spool_reader_open(s, 0, &r), 0);
    assert_int_equal(sl_spool_reader_next(r, &p, &len, &end), 1);
    assert_int_equal(sl_spool_reader_next(r, &p, &len, &end), 1);
    assert_int_equal(len, sizeof(big));
    assert_memory_equal(p, big, sizeof(big));
    assert_int_equal(sl_spool_reader_next(r, &p, &len, &end), 1);
    assert_memory_equal(p, "b", 1);
    assert_int_equal(sl_spool_reader_next(r, &p, &len, &end), 0);
    sl_spool_reader_free(r);
    sl_spool_free(s);
}

static void test_release_deletes_old_segments_never_current(void **state)
{
    struct fx *f = *state;
    struct sl_spool *s = open_spool(f->dir, 1024, 0, 0, true);
    struct sl_spool_reader *r = NULL;
    struct sl_spool_stats st;
    const void *p;
    size_t len;
    uint64_t end, mid = 0, last;
    int before, after;

    last = append_range(s, 0, 100);
    assert_int_equal(sl_spool_sync_now(s), 0);
    before = count_segments(f->dir, NULL, 0);
    assert_true(before >= 4);
    assert_int_equal(sl_spool_first_lsn(s), 0);

    /* read half, release there: segments wholly below go, the one holding mid stays */
    assert_int_equal(sl_spool_reader_open(s, 0, &r), 0);
    for (int i = 0; i < 50; i++)
        assert_int_equal(sl_spool_reader_next(r, &p, &len, &mid), 1);
    sl_spool_release(s, mid);
    after = count_segments(f->dir, NULL, 0);
    assert_true(after < before);
    assert_true(sl_spool_first_lsn(s) > 0);
    assert_true(sl_spool_first_lsn(s) <= mid);
    sl_spool_get_stats(s, &st);
    assert_int_equal(st.released_lsn, mid);
    assert_int_equal(st.depth_bytes, last - mid);
    assert_int_equal(st.segments, (uint64_t)after);
    /* the reader goes on across the release */
    for (int i = 50; i < 100; i++)
        assert_int_equal(sl_spool_reader_next(r, &p, &len, &end), 1);
    assert_int_equal(end, last);
    sl_spool_reader_free(r);

    /* release everything: exactly the current segment remains, appends go on */
    sl_spool_release(s, last);
    assert_int_equal(count_segments(f->dir, NULL, 0), 1);
    sl_spool_get_stats(s, &st);
    assert_int_equal(st.depth_bytes, 0);
    assert_int_equal(st.segments, 1);
    end = append_range(s, 100, 120);
    assert_int_equal(sl_spool_sync_now(s), 0);
    expect_range(s, last, 100, 120);
    /* a reader asked for 0 starts at the oldest segment still on disk */
    {
        uint64_t first = sl_spool_first_lsn(s);
        assert_int_equal(sl_spool_reader_open(s, 0, &r), 0);
        assert_int_equal(sl_spool_reader_next(r, &p, &len, &end), 1);
        assert_true(end > first);
        sl_spool_reader_free(r);
    }
    sl_spool_free(s);
}

static void test_release_clamped_to_synced(void **state)
{
    struct fx *f = *state;
    struct sl_spool *s = open_spool(f->dir, 256, 0, 0, true);
    struct sl_spool_stats st;

    append_range(s, 0, 30);
    sl_spool_release(s, UINT64_MAX); /* nothing synced yet: nothing may go */
    sl_spool_get_stats(s, &st);
    assert_int_equal(st.released_lsn, 0);
    assert_int_equal(count_segments(f->dir, NULL, 0), (int)st.segments);
    assert_int_equal(sl_spool_first_lsn(s), 0);
    assert_int_equal(sl_spool_sync_now(s), 0);
    expect_range(s, 0, 0, 30);
    sl_spool_free(s);
}

static void test_efull_then_release(void **state)
{
    struct fx *f = *state;
    struct sl_spool *s = open_spool(f->dir, 512, 2048, 0, true);
    char rec[100];
    struct iovec v = {.iov_base = rec, .iov_len = sizeof(rec)};
    uint64_t end = 0, last = 0;
    int n = 0, rc;

    memset(rec, 'r', sizeof(rec));
    while ((rc = sl_spool_appendv(s, &v, 1, &end)) == 0) {
        last = end;
        n++;
        assert_true(n < 100);
    }
    assert_int_equal(rc, SL_EFULL);
    assert_int_equal(n, 2048 / (HDR + 100)); /* 18 records of 112 bytes */
    assert_int_equal(sl_spool_written_lsn(s), last);
    assert_true(last + HDR + 100 > 2048);
    /* still full after a sync: only a release makes room */
    assert_int_equal(sl_spool_sync_now(s), 0);
    assert_int_equal(sl_spool_appendv(s, &v, 1, &end), SL_EFULL);
    sl_spool_release(s, last);
    for (int i = 0; i < n; i++)
        assert_int_equal(sl_spool_appendv(s, &v, 1, &end), 0);
    assert_int_equal(sl_spool_appendv(s, &v, 1, &end), SL_EFULL);
    sl_spool_free(s);
}

/* Issue 13 item 2: a full spool disk wedged the drain for good. The segment that filled
 * the disk was never rolled, so even once the writer had released everything it stayed
 * (the last segment is never deleted) and every append hit ENOSPC again. */
static void test_enospc_rolls_then_reclaims(void **state)
{
    struct fx *f = *state;
    struct sl_spool *s;
    struct sl_spool_stats st;
    unsigned char rec[10000];
    struct iovec v = {.iov_base = rec, .iov_len = sizeof(rec)};
    uint64_t end = 0, last = 0;
    int n = 0, rc;

    fake_cap = 1 << 20; /* smaller than one default 64 MiB segment */
    s = open_spool(f->dir, 0, 0, 0, true);
    memset(rec, 'x', sizeof(rec));
    while ((rc = sl_spool_appendv(s, &v, 1, &end)) == 0) {
        last = end;
        n++;
        assert_true(n < 200);
    }
    assert_int_equal(rc, SL_EFULL);
    assert_int_equal(n, (1 << 20) / (HDR + sizeof(rec)));
    assert_int_equal(sl_spool_written_lsn(s), last);
    sl_spool_get_stats(s, &st);
    assert_true(st.full);
    /* the full segment was ended: a new (empty) one starts at the end of the last record,
     * and the torn record was cut off (the old file ends exactly there) */
    assert_int_equal(st.segments, 2);
    assert_int_equal(sl_spool_first_lsn(s), 0);
    assert_int_equal(fake_used(), last);
    /* refused again while full, without growing anything */
    assert_int_equal(sl_spool_appendv(s, &v, 1, &end), SL_EFULL);
    assert_int_equal(sl_spool_appendv(s, &v, 1, &end), SL_EFULL);
    sl_spool_get_stats(s, &st);
    assert_int_equal(st.segments, 2);
    assert_int_equal(st.written_lsn, last);

    /* every acknowledged record reads back, nothing of the failed ones */
    assert_int_equal(sl_spool_sync_now(s), 0);
    {
        struct sl_spool_reader *r = NULL;
        const void *p;
        size_t len;
        assert_int_equal(sl_spool_reader_open(s, 0, &r), 0);
        for (int i = 0; i < n; i++) {
            assert_int_equal(sl_spool_reader_next(r, &p, &len, &end), 1);
            assert_int_equal(len, sizeof(rec));
        }
        assert_int_equal(end, last);
        assert_int_equal(sl_spool_reader_next(r, &p, &len, &end), 0);
        sl_spool_reader_free(r);
    }
    sl_spool_get_stats(s, &st);
    assert_int_equal(st.corrupt_records, 0);

    /* the writer catches up: the full segment goes, there is room, appends resume */
    sl_spool_release(s, last);
    sl_spool_get_stats(s, &st);
    assert_false(st.full);
    assert_int_equal(st.segments, 1);
    assert_int_equal(sl_spool_first_lsn(s), last);
    assert_int_equal(sl_spool_appendv(s, &v, 1, &end), 0);
    assert_int_equal(end, last + HDR + sizeof(rec));
    assert_int_equal(sl_spool_sync_now(s), 0);
    sl_spool_free(s);

    /* and a reopen finds nothing torn */
    s = open_spool(f->dir, 0, 0, 0, true);
    sl_spool_get_stats(s, &st);
    assert_int_equal(st.torn_bytes, 0);
    assert_int_equal(st.written_lsn, end);
    sl_spool_free(s);
}

/* The writer had already released everything when the disk filled (a segment larger
 * than the disk): the ended segment is deleted by the failing append itself, so the
 * next append fits without waiting for another release. */
static void test_enospc_after_release_reclaims_at_once(void **state)
{
    struct fx *f = *state;
    struct sl_spool *s;
    struct sl_spool_stats st;
    unsigned char rec[10000];
    struct iovec v = {.iov_base = rec, .iov_len = sizeof(rec)};
    uint64_t end = 0, last = 0;
    int rc;

    fake_cap = 1 << 20;
    s = open_spool(f->dir, 0, 0, 0, true);
    memset(rec, 'y', sizeof(rec));
    while ((rc = sl_spool_appendv(s, &v, 1, &end)) == 0) {
        last = end;
        assert_int_equal(sl_spool_sync_now(s), 0);
        sl_spool_release(s, last); /* the writer keeps up */
    }
    assert_int_equal(rc, SL_EFULL);
    sl_spool_get_stats(s, &st);
    assert_int_equal(st.segments, 1); /* rolled, and the old one deleted at once */
    assert_int_equal(sl_spool_first_lsn(s), last);
    assert_false(st.full); /* room again right away */
    assert_int_equal(sl_spool_appendv(s, &v, 1, &end), 0);
    assert_int_equal(end, last + HDR + sizeof(rec));
    sl_spool_free(s);
}

/* A restart on a full disk: the last segment (which fills it) is ended at open, so the
 * writer's first release deletes it; the acknowledged records are all still read. */
static void test_open_on_full_disk_ends_last_segment(void **state)
{
    struct fx *f = *state;
    struct sl_spool *s = open_spool(f->dir, 0, 0, 0, true);
    struct sl_spool_stats st;
    uint64_t last;

    last = append_range(s, 0, 2000);
    sl_spool_free(s);

    fake_cap = (long long)last + 1000; /* about 1000 bytes left */
    s = open_spool(f->dir, 0, 0, 0, true);
    sl_spool_get_stats(s, &st);
    assert_true(st.full);
    assert_int_equal(st.segments, 2);
    assert_int_equal(st.written_lsn, last);
    assert_int_equal(sl_spool_fs_free_bytes(s), 1000);
    expect_range(s, 0, 0, 2000);
    sl_spool_release(s, last);
    sl_spool_get_stats(s, &st);
    assert_false(st.full);
    assert_int_equal(st.segments, 1);
    assert_int_equal(append_range(s, 2000, 2010) > last, 1);
    assert_int_equal(sl_spool_sync_now(s), 0);
    expect_range(s, last, 2000, 2010);
    sl_spool_free(s);
}

/* Segments are at most 1/8 of the filesystem (at least 1 MiB): a default 64 MiB segment
 * on a 16 MiB disk rolls at 2 MiB. */
static void test_segment_capped_by_filesystem(void **state)
{
    struct fx *f = *state;
    struct sl_spool *s;
    static unsigned char rec[100000];
    struct iovec v = {.iov_base = rec, .iov_len = sizeof(rec)};
    uint64_t end = 0;
    char last[256];

    fake_cap = 16ll << 20;
    s = open_spool(f->dir, 0, 0, 0, false);
    for (int i = 0; i < 30; i++)
        assert_int_equal(sl_spool_appendv(s, &v, 1, &end), 0);
    assert_int_equal(count_segments(f->dir, last, sizeof(last)), 2);
    assert_string_equal(last, "seg-00000000001e8570.spool"); /* 20 records of 100012 */
    sl_spool_free(s);
}

static void test_etoobig(void **state)
{
    struct fx *f = *state;
    struct sl_spool *s = open_spool(f->dir, 0, 0, 100, true);
    char buf[101];
    struct iovec v[2] = {{.iov_base = buf, .iov_len = 60}, {.iov_base = buf, .iov_len = 41}};
    uint64_t end = 0;

    memset(buf, 'z', sizeof(buf));
    assert_int_equal(sl_spool_appendv(s, v, 2, &end), SL_ETOOBIG);
    v[1].iov_len = 40;
    assert_int_equal(sl_spool_appendv(s, v, 2, &end), 0);
    assert_int_equal(end, HDR + 100);
    v[0].iov_len = 101;
    assert_int_equal(sl_spool_appendv(s, v, 1, &end), SL_ETOOBIG);
    assert_int_equal(sl_spool_appendv(s, v, -1, &end), SL_EINVAL);
    assert_int_equal(sl_spool_written_lsn(s), HDR + 100);
    sl_spool_free(s);
}

static void test_many_iov_pieces(void **state)
{
    struct fx *f = *state;
    struct sl_spool *s = open_spool(f->dir, 0, 0, 0, true);
    enum { N = 2500 }; /* past IOV_MAX: written in several pwritev calls */
    struct iovec *v = calloc(N, sizeof(*v));
    char *want = malloc(N);
    struct sl_spool_reader *r = NULL;
    const void *p;
    size_t len;
    uint64_t end = 0, e2;

    assert_non_null(v);
    assert_non_null(want);
    for (int i = 0; i < N; i++) {
        want[i] = (char)('a' + i % 26);
        v[i].iov_base = want + i;
        v[i].iov_len = 1;
    }
    assert_int_equal(sl_spool_appendv(s, v, N, &end), 0);
    assert_int_equal(end, HDR + N);
    assert_int_equal(sl_spool_sync_now(s), 0);
    assert_int_equal(sl_spool_reader_open(s, 0, &r), 0);
    assert_int_equal(sl_spool_reader_next(r, &p, &len, &e2), 1);
    assert_int_equal(len, N);
    assert_memory_equal(p, want, N);
    sl_spool_reader_free(r);
    free(v);
    free(want);
    sl_spool_free(s);
}

static void test_reopen_continues_lsns(void **state)
{
    struct fx *f = *state;
    struct sl_spool *s = open_spool(f->dir, 2048, 0, 0, true);
    char id[33];
    uint64_t end, end2;
    struct sl_spool_stats st;

    end = append_range(s, 0, 100);
    assert_int_equal(sl_spool_sync_now(s), 0);
    snprintf(id, sizeof(id), "%s", sl_spool_node_id(s));
    sl_spool_free(s);

    s = open_spool(f->dir, 2048, 0, 0, true);
    assert_string_equal(sl_spool_node_id(s), id);
    assert_int_equal(sl_spool_written_lsn(s), end);
    assert_int_equal(sl_spool_synced_lsn(s), end);
    sl_spool_get_stats(s, &st);
    assert_int_equal(st.torn_bytes, 0);
    end2 = append_range(s, 100, 150);
    assert_true(end2 > end);
    assert_int_equal(sl_spool_sync_now(s), 0);
    expect_range(s, 0, 0, 150);
    expect_range(s, end, 100, 150);
    sl_spool_free(s);
}

static void test_free_without_sync_is_durable(void **state)
{
    struct fx *f = *state;
    struct sl_spool *s = open_spool(f->dir, 1024, 0, 0, true);
    uint64_t end = append_range(s, 0, 40);

    assert_int_equal(sl_spool_synced_lsn(s), 0);
    sl_spool_free(s); /* no syncer, no sync_now: free syncs */
    s = open_spool(f->dir, 1024, 0, 0, true);
    assert_int_equal(sl_spool_written_lsn(s), end);
    expect_range(s, 0, 0, 40);
    sl_spool_free(s);
}

/* Writes 20 records, closes, damages the last file with fn, reopens and checks that
 * exactly the first keep records survive and that new appends are readable after them. */
static void torn_case(const char *dir,
                      void (*fn)(const char *path, uint64_t rec_off, uint64_t file_size),
                      unsigned keep)
{
    struct sl_spool *s = open_spool(dir, 0, 0, 0, true);
    uint64_t offs[21], end;
    char path[256];
    struct sl_spool_stats st;
    unsigned char buf[512];

    offs[0] = 0;
    for (unsigned i = 0; i < 20; i++)
        offs[i + 1] = append_buf(s, buf, make_payload(i + 1, buf, sizeof(buf)));
    assert_int_equal(sl_spool_sync_now(s), 0);
    sl_spool_free(s);

    last_segment_path(dir, path, sizeof(path));
    fn(path, offs[19], (uint64_t)file_size(path));

    s = open_spool(dir, 0, 0, 0, true);
    sl_spool_get_stats(s, &st);
    assert_int_equal(st.written_lsn, offs[keep]);
    assert_int_equal(file_size(path), (off_t)offs[keep]);
    end = append_str(s, "after-recovery");
    assert_int_equal(end, offs[keep] + HDR + 14);
    assert_int_equal(sl_spool_sync_now(s), 0);
    {
        struct sl_spool_reader *r = NULL;
        const void *p;
        size_t len;
        uint64_t e;
        assert_int_equal(sl_spool_reader_open(s, 0, &r), 0);
        for (unsigned i = 0; i < keep; i++) {
            size_t wl = make_payload(i + 1, buf, sizeof(buf));
            assert_int_equal(sl_spool_reader_next(r, &p, &len, &e), 1);
            assert_int_equal(len, wl);
            assert_memory_equal(p, buf, wl);
        }
        assert_int_equal(sl_spool_reader_next(r, &p, &len, &e), 1);
        assert_int_equal(len, 14);
        assert_memory_equal(p, "after-recovery", 14);
        assert_int_equal(sl_spool_reader_next(r, &p, &len, &e), 0);
        sl_spool_reader_free(r);
        sl_spool_get_stats(s, &st);
        assert_int_equal(st.corrupt_records, 0);
    }
    sl_spool_free(s);
}

static uint64_t g_cut; /* offset inside the last record for cut_at */

static void cut_at(const char *path, uint64_t rec_off, uint64_t size)
{
    (void)size;
    assert_int_equal(truncate(path, (off_t)(rec_off + g_cut)), 0);
}

static void add_garbage(const char *path, uint64_t rec_off, uint64_t size)
{
    FILE *fp = fopen(path, "ab");
    (void)rec_off;
    (void)size;
    assert_non_null(fp);
    assert_int_equal(fwrite("\x31\x53\x4c\x53garbage!", 1, 12, fp), 12); /* magic + junk */
    fclose(fp);
}

static void add_zeros(const char *path, uint64_t rec_off, uint64_t size)
{
    (void)rec_off;
    assert_int_equal(truncate(path, (off_t)(size + 4096)), 0);
}

static void flip_byte(const char *path, uint64_t off)
{
    int fd = open(path, O_RDWR);
    unsigned char c;
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, &c, 1, (off_t)off), 1);
    c ^= 0x40;
    assert_int_equal(pwrite(fd, &c, 1, (off_t)off), 1);
    close(fd);
}

static void flip_payload(const char *path, uint64_t rec_off, uint64_t size)
{
    (void)size;
    flip_byte(path, rec_off + HDR + 3);
}

static void flip_magic(const char *path, uint64_t rec_off, uint64_t size)
{
    (void)size;
    flip_byte(path, rec_off);
}

static void flip_length(const char *path, uint64_t rec_off, uint64_t size)
{
    (void)size;
    flip_byte(path, rec_off + 6); /* length now runs past the file */
}

static void test_torn_tail_truncated_mid_record(void **state)
{
    struct fx *f = *state;
    /* record 20 has payload (20*37)%300 = 140 bytes; cut in the header and the payload */
    static const uint64_t cuts[] = {1, 4, 11, 12, 13, 100, 151};
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
        char sub[128];
        snprintf(sub, sizeof(sub), "%s/c%zu", f->dir, i);
        g_cut = cuts[i];
        torn_case(sub, cut_at, 19);
    }
}

static void test_torn_tail_garbage_appended(void **state)
{
    struct fx *f = *state;
    char sub[128];
    snprintf(sub, sizeof(sub), "%s/g", f->dir);
    torn_case(sub, add_garbage, 20);
    snprintf(sub, sizeof(sub), "%s/z", f->dir);
    torn_case(sub, add_zeros, 20);
}

static void test_torn_tail_flipped_payload_byte(void **state)
{
    struct fx *f = *state;
    char sub[128];
    snprintf(sub, sizeof(sub), "%s/p", f->dir);
    torn_case(sub, flip_payload, 19);
    snprintf(sub, sizeof(sub), "%s/m", f->dir);
    torn_case(sub, flip_magic, 19);
    snprintf(sub, sizeof(sub), "%s/l", f->dir);
    torn_case(sub, flip_length, 19);
}

static void test_torn_tail_counted(void **state)
{
    struct fx *f = *state;
    struct sl_spool *s = open_spool(f->dir, 0, 0, 0, true);
    struct sl_spool_stats st;
    char path[256];
    uint64_t end = append_str(s, "keep");

    append_str(s, "lose-me");
    assert_int_equal(sl_spool_sync_now(s), 0);
    sl_spool_free(s);
    last_segment_path(f->dir, path, sizeof(path));
    assert_int_equal(truncate(path, (off_t)(end + 5)), 0);
    s = open_spool(f->dir, 0, 0, 0, true);
    sl_spool_get_stats(s, &st);
    assert_int_equal(st.torn_bytes, 5);
    assert_int_equal(st.written_lsn, end);
    sl_spool_free(s);
}

static void test_reader_from_middle_lsn(void **state)
{
    struct fx *f = *state;
    struct sl_spool *s = open_spool(f->dir, 2048, 0, 0, true);
    uint64_t mid = append_range(s, 0, 60);

    append_range(s, 60, 130);
    assert_int_equal(sl_spool_sync_now(s), 0);
    expect_range(s, mid, 60, 130);
    sl_spool_free(s);
}

static void test_reader_start_beyond_written_refused(void **state)
{
    struct fx *f = *state;
    struct sl_spool *s = open_spool(f->dir, 0, 0, 0, true);
    struct sl_spool_reader *r = NULL, *r2 = NULL;
    uint64_t end = append_str(s, "x");

    assert_int_equal(sl_spool_reader_open(s, end + 1, &r), SL_EINVAL);
    assert_null(r);
    assert_int_equal(sl_spool_reader_open(s, end, &r), 0);
    assert_int_equal(sl_spool_reader_open(s, 0, &r2), SL_EINVAL); /* one reader */
    sl_spool_reader_free(r);
    sl_spool_reader_free(NULL);
    sl_spool_free(s);
}

static void test_reader_skips_corrupt_record_in_old_segment(void **state)
{
    struct fx *f = *state;
    struct sl_spool *s = open_spool(f->dir, 1024, 0, 0, true);
    struct sl_spool_reader *r = NULL;
    struct sl_spool_stats st;
    const void *p;
    size_t len;
    uint64_t end, last;
    char path[256];
    int n = 0;

    last = append_range(s, 1, 40);
    assert_int_equal(sl_spool_sync_now(s), 0);
    /* corrupt the first record of the first segment (payload 37 bytes) */
    snprintf(path, sizeof(path), "%s/seg-%016x.spool", f->dir, 0);
    flip_byte(path, HDR + 1);
    assert_int_equal(sl_spool_reader_open(s, 0, &r), 0);
    while (sl_spool_reader_next(r, &p, &len, &end) == 1)
        n++;
    assert_int_equal(end, last);
    sl_spool_get_stats(s, &st);
    assert_int_equal(st.corrupt_records, 1);
    assert_true(n > 0 && n < 39); /* the rest of segment 0 was skipped */
    sl_spool_reader_free(r);
    sl_spool_free(s);
}

struct cb_log {
    pthread_mutex_t mu;
    uint64_t lsns[100000];
    size_t n;
    bool bad_order;
};

static void record_cb(void *arg, uint64_t lsn)
{
    struct cb_log *l = arg;
    pthread_mutex_lock(&l->mu);
    if (l->n > 0 && lsn <= l->lsns[l->n - 1])
        l->bad_order = true;
    if (l->n < sizeof(l->lsns) / sizeof(l->lsns[0]))
        l->lsns[l->n++] = lsn;
    pthread_mutex_unlock(&l->mu);
}

static void test_syncer_callback_increasing(void **state)
{
    struct fx *f = *state;
    struct sl_spool *s = open_spool(f->dir, 4096, 0, 0, true);
    struct cb_log *l = calloc(1, sizeof(*l));
    uint64_t last = 0, got = 0;
    struct sl_spool_stats st;

    assert_non_null(l);
    pthread_mutex_init(&l->mu, NULL);
    assert_int_equal(sl_spool_start_syncer(s, record_cb, l), 0);
    assert_int_equal(sl_spool_start_syncer(s, record_cb, l), SL_EINVAL);
    for (unsigned i = 0; i < 300; i++) {
        last = append_range(s, i, i + 1);
        if (i % 50 == 0) /* let some rounds cover one record, others many */
            (void)sl_spool_wait(s, last - 1, 5000);
    }
    for (int k = 0; k < 100 && got < last; k++)
        got = sl_spool_wait(s, last - 1, 100);
    assert_int_equal(got, last);
    /* the callback runs after the LSN is published: wait for it to see the end */
    for (int k = 0; k < 500; k++) {
        bool done;
        pthread_mutex_lock(&l->mu);
        done = l->n > 0 && l->lsns[l->n - 1] == last;
        pthread_mutex_unlock(&l->mu);
        if (done)
            break;
        usleep(10000);
    }
    sl_spool_free(s);
    assert_false(l->bad_order);
    assert_true(l->n > 0);
    assert_int_equal(l->lsns[l->n - 1], last);
    (void)st;
    pthread_mutex_destroy(&l->mu);
    free(l);
}

static void test_syncer_final_sync_on_free(void **state)
{
    struct fx *f = *state;
    struct sl_spool *s = open_spool(f->dir, 512, 0, 0, true);
    uint64_t end;

    assert_int_equal(sl_spool_start_syncer(s, NULL, NULL), 0);
    end = append_range(s, 0, 100);
    sl_spool_free(s);
    s = open_spool(f->dir, 512, 0, 0, true);
    assert_int_equal(sl_spool_written_lsn(s), end);
    expect_range(s, 0, 0, 100);
    sl_spool_free(s);
}

static void test_wait_times_out(void **state)
{
    struct fx *f = *state;
    struct sl_spool *s = open_spool(f->dir, 0, 0, 0, true);
    uint64_t end = append_str(s, "unsynced");

    /* no syncer: nothing moves */
    assert_int_equal(sl_spool_wait(s, 0, 50), 0);
    assert_int_equal(sl_spool_sync_now(s), 0);
    assert_int_equal(sl_spool_wait(s, 0, 50), end);
    sl_spool_free(s);
}

#define NTHREADS 4
#define PER_THREAD 400

struct worker {
    struct sl_spool *s;
    int id;
    int rc;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    char buf[64];
    for (int i = 0; i < PER_THREAD; i++) {
        int n = snprintf(buf, sizeof(buf), "t%d-%05d-%.*s", w->id, i, i % 20,
                         "abcdefghijklmnopqrstuvwxyz");
        struct iovec v = {.iov_base = buf, .iov_len = (size_t)n};
        uint64_t end;
        int rc = sl_spool_appendv(w->s, &v, 1, &end);
        if (rc != 0) {
            w->rc = rc;
            break;
        }
        if (i % 64 == 0) /* like a request waiting for its 2xx */
            (void)sl_spool_wait(w->s, end - 1, 5000);
    }
    return NULL;
}

static void test_concurrent_appends(void **state)
{
    struct fx *f = *state;
    struct sl_spool *s = open_spool(f->dir, 8192, 0, 0, true);
    pthread_t th[NTHREADS];
    struct worker w[NTHREADS];
    static int seen[NTHREADS][PER_THREAD];
    int next[NTHREADS] = {0};
    struct sl_spool_reader *r = NULL;
    const void *p;
    size_t len;
    uint64_t end;
    int total = 0;

    memset(seen, 0, sizeof(seen));
    assert_int_equal(sl_spool_start_syncer(s, NULL, NULL), 0);
    assert_int_equal(sl_spool_reader_open(s, 0, &r), 0);
    for (int i = 0; i < NTHREADS; i++) {
        w[i] = (struct worker){.s = s, .id = i, .rc = 0};
        assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
    }
    /* read concurrently with the appends, as the writer thread does */
    for (int spins = 0; total < NTHREADS * PER_THREAD && spins < 100000;) {
        int rc = sl_spool_reader_next(r, &p, &len, &end);
        assert_true(rc >= 0);
        if (rc == 0) {
            (void)sl_spool_wait(s, end, 10);
            spins++;
            continue;
        }
        {
            char tmp[64];
            int t, i;
            assert_true(len < sizeof(tmp));
            memcpy(tmp, p, len);
            tmp[len] = '\0';
            assert_int_equal(sscanf(tmp, "t%d-%d-", &t, &i), 2);
            assert_true(t >= 0 && t < NTHREADS && i >= 0 && i < PER_THREAD);
            assert_int_equal(seen[t][i], 0);
            assert_int_equal(i, next[t]); /* per-thread order kept */
            next[t]++;
            seen[t][i] = 1;
            total++;
        }
    }
    for (int i = 0; i < NTHREADS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].rc, 0);
    }
    assert_int_equal(total, NTHREADS * PER_THREAD);
    assert_int_equal(sl_spool_reader_next(r, &p, &len, &end), 0);
    assert_int_equal(end, sl_spool_written_lsn(s));
    sl_spool_reader_free(r);
    sl_spool_free(s);
}

static void test_fsync_off(void **state)
{
    struct fx *f = *state;
    struct sl_spool *s = open_spool(f->dir, 1024, 0, 0, false);
    struct cb_log *l = calloc(1, sizeof(*l));
    uint64_t end;
    struct sl_spool_stats st;

    assert_non_null(l);
    pthread_mutex_init(&l->mu, NULL);
    end = append_range(s, 0, 50);
    assert_int_equal(sl_spool_synced_lsn(s), end); /* durable once written */
    expect_range(s, 0, 0, 50);
    assert_int_equal(sl_spool_start_syncer(s, record_cb, l), 0);
    end = append_range(s, 50, 100);
    assert_int_equal(sl_spool_wait(s, end - 1, 1000), end);
    for (int k = 0; k < 500; k++) {
        bool done;
        pthread_mutex_lock(&l->mu);
        done = l->n > 0 && l->lsns[l->n - 1] == end;
        pthread_mutex_unlock(&l->mu);
        if (done)
            break;
        usleep(10000);
    }
    sl_spool_get_stats(s, &st);
    assert_int_equal(st.syncs, 0);
    sl_spool_free(s);
    assert_false(l->bad_order);
    assert_int_equal(l->lsns[l->n - 1], end);
    pthread_mutex_destroy(&l->mu);
    free(l);
    s = open_spool(f->dir, 1024, 0, 0, false);
    expect_range(s, 0, 0, 100);
    sl_spool_free(s);
}

static void test_node_id_and_bad_args(void **state)
{
    struct fx *f = *state;
    struct sl_spool_opts o = {.dir = NULL};
    struct sl_spool *s = (struct sl_spool *)(uintptr_t)1, *s2 = NULL;
    const char *id;
    char sub[128], path[256];
    FILE *fp;

    assert_int_equal(sl_spool_open(&o, &s), SL_EINVAL);
    assert_null(s);
    sl_spool_free(NULL);

    /* created with missing parents, mode 0700 */
    snprintf(sub, sizeof(sub), "%s/a/b/spool", f->dir);
    s = open_spool(sub, 0, 0, 0, true);
    {
        struct stat st;
        assert_int_equal(stat(sub, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0700);
    }
    id = sl_spool_node_id(s);
    assert_int_equal(strlen(id), 32);
    for (int i = 0; i < 32; i++)
        assert_non_null(strchr("0123456789abcdef", id[i]));
    /* a second open of a spool in use is refused */
    o.dir = sub;
    assert_int_equal(sl_spool_open(&o, &s2), SL_EIO);
    assert_null(s2);
    sl_spool_free(s);

    /* another directory gets another id */
    s = open_spool(f->dir, 0, 0, 0, true);
    s2 = open_spool(sub, 0, 0, 0, true);
    assert_string_not_equal(sl_spool_node_id(s), sl_spool_node_id(s2));
    sl_spool_free(s);
    sl_spool_free(s2);

    /* a damaged node_id is not silently replaced */
    snprintf(path, sizeof(path), "%s/node_id", sub);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("not-hex\n", fp);
    fclose(fp);
    assert_int_equal(sl_spool_open(&o, &s2), SL_EINVAL);
    assert_null(s2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c_vectors),
        cmocka_unit_test(test_crc32c_matches_bitwise),
        cmocka_unit_test_setup_teardown(test_append_read_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_end_lsn_arithmetic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reader_only_synced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollover_and_cross_segment_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_record_gets_own_segment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_release_deletes_old_segments_never_current, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_release_clamped_to_synced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_efull_then_release, setup, teardown),
        cmocka_unit_test_setup_teardown(test_enospc_rolls_then_reclaims, setup_fakefs,
                                        teardown_fakefs),
        cmocka_unit_test_setup_teardown(test_enospc_after_release_reclaims_at_once, setup_fakefs,
                                        teardown_fakefs),
        cmocka_unit_test_setup_teardown(test_open_on_full_disk_ends_last_segment, setup_fakefs,
                                        teardown_fakefs),
        cmocka_unit_test_setup_teardown(test_segment_capped_by_filesystem, setup_fakefs,
                                        teardown_fakefs),
        cmocka_unit_test_setup_teardown(test_etoobig, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_iov_pieces, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_continues_lsns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_without_sync_is_durable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail_truncated_mid_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail_garbage_appended, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail_flipped_payload_byte, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail_counted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reader_from_middle_lsn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reader_start_beyond_written_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reader_skips_corrupt_record_in_old_segment, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_syncer_callback_increasing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_syncer_final_sync_on_free, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wait_times_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_appends, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fsync_off, setup, teardown),
        cmocka_unit_test_setup_teardown(test_node_id_and_bad_args, setup, teardown),
    };

    /* Expected warnings (torn tails, corrupt records) would drown the results. */
    if (getenv("SLUICE_TEST_VERBOSE") == NULL)
        sl_log_min_level = (enum sl_log_level)(SL_LOG_ERROR + 1);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
