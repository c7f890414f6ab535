/* Archives (include/sluice/archive.h, docs/retention.md "Archives"): hour files of gzip
 * TSV in Papertrail's layout, written by COPY ... TO STDOUT through zlib into a temporary
 * file, renamed into a directory (or uploaded to S3-compatible storage with libcurl's AWS
 * SigV4), read back and checked before retention deletes a row of the hour; and the
 * restore of a day. Maintenance thread or CLI; own connection; no event loop. Memory is
 * bounded by one COPY row and two 64 KiB buffers. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <libpq-fe.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <zlib.h>

#include "sluice/archive.h"
#include "sluice/log.h"
#include "sluice/metrics.h"

#define CHUNK 65536

#define FAC_NAMES                                                                                  \
    "ARRAY['kern','user','mail','daemon','auth','syslog','lpr','news','uucp','cron',"             \
    "'authpriv','ftp','ntp','security','console','solaris-cron','local0','local1','local2',"      \
    "'local3','local4','local5','local6','local7']"
#define SEV_NAMES "ARRAY['emerg','alert','crit','err','warning','notice','info','debug']"
#define PT_TIME(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* Papertrail's ten columns, then sluice's own (every other column of logs, exact), so a
 * restore gives back the same rows. COPY's text format escapes tab, newline and
 * backslash; NULL is \N. */
#define ARCHIVE_COLUMNS                                                                            \
    "l.id, " PT_TIME("coalesce(l.emitted_at, l.received_at)") ", " PT_TIME("l.received_at")       \
    ", l.source_id, s.name, NULL, initcap((" FAC_NAMES ")[l.facility + 1]), "                     \
    "initcap((" SEV_NAMES ")[l.severity + 1]), "                                                 \
    "CASE WHEN l.app_name IS NOT NULL AND l.procid IS NOT NULL "                                  \
    "THEN l.app_name || '/' || l.procid ELSE coalesce(l.app_name, l.procid) END, l.message, "     \
    "l.received_at, l.emitted_at, l.emitted_precision, l.emitted_offset, l.facility, "            \
    "l.severity, l.hostname, l.app_name, l.procid, l.msgid, l.sd, l.message_raw, "               \
    "l.parse_error, l.truncated_from, l.tags, l.frame_id, l.json_at"

/* The restore's staging table: the file's columns in order. */
#define RESTORE_TABLE                                                                              \
    "CREATE TEMP TABLE archive_restore (id bigint, pt_generated_at text, pt_received_at text, "   \
    "pt_source_id bigint, pt_source_name text, pt_source_ip text, pt_facility text, "             \
    "pt_severity text, pt_program text, message text, received_at timestamptz, "                 \
    "emitted_at timestamptz, emitted_precision smallint, emitted_offset smallint, "               \
    "facility smallint, severity smallint, hostname text, app_name text, procid text, "           \
    "msgid text, sd text, message_raw bytea, parse_error text, truncated_from integer, "          \
    "tags jsonb, frame_id text, json_at int) ON COMMIT DROP"

#define LOG_COLUMNS                                                                                \
    "id, received_at, source_id, emitted_at, emitted_precision, emitted_offset, facility, "       \
    "severity, hostname, app_name, procid, msgid, sd, message, message_raw, parse_error, "        \
    "truncated_from, tags, frame_id, json_at"

/* s3://BUCKET[/PREFIX]: a bucket of S3's rules (3-63 of a-z 0-9 . -), a prefix of
 * A-Z a-z 0-9 . _ - / (nothing that needs encoding in a URL or a signature). */
static bool s3_dest_ok(const char *dest, char *why, size_t whylen)
{
    const char *b = dest + 5, *slash = strchr(b, '/');
    size_t bl = slash ? (size_t)(slash - b) : strlen(b);

    if (bl < 3 || bl > 63 || strspn(b, "abcdefghijklmnopqrstuvwxyz0123456789.-") < bl) {
        snprintf(why, whylen, "bucket must be 3-63 of a-z 0-9 . -");
        return false;
    }
    static const char prefix_chars[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-/";

    if (slash && strspn(slash, prefix_chars) < strlen(slash)) {
        snprintf(why, whylen, "prefix must be of A-Z a-z 0-9 . _ - /");
        return false;
    }
    return true;
}

int sl_archive_dest_check(const char *dest, char *why, size_t whylen)
{
    if (dest == NULL || dest[0] == '\0') {
        snprintf(why, whylen, "empty destination");
        return SL_EINVAL;
    }
    if (strlen(dest) > SL_ARCHIVE_PATH_MAX - 1) {
        snprintf(why, whylen, "longer than %d bytes", SL_ARCHIVE_PATH_MAX - 1);
        return SL_EINVAL;
    }
    if (strncmp(dest, "s3://", 5) == 0)
        return s3_dest_ok(dest, why, whylen) ? 0 : SL_EINVAL;
    if (strstr(dest, "://")) {
        snprintf(why, whylen, "a directory or s3://BUCKET/PREFIX");
        return SL_EINVAL;
    }
    if (dest[0] != '/') {
        snprintf(why, whylen, "the directory must be an absolute path");
        return SL_EINVAL;
    }
    if (strlen(dest) > SL_ARCHIVE_PATH_MAX - 1) {
        snprintf(why, whylen, "path longer than %d bytes", SL_ARCHIVE_PATH_MAX - 1);
        return SL_EINVAL;
    }
    return 0;
}

int sl_archive_path(const char *dest, const char *name, int64_t hour_s, char *out, size_t outlen)
{
    time_t t = (time_t)hour_s;
    struct tm tm;
    char day[16], hh[4];
    int n;

    gmtime_r(&t, &tm);
    strftime(day, sizeof(day), "%Y-%m-%d", &tm);
    strftime(hh, sizeof(hh), "%H", &tm);
    n = snprintf(out, outlen, "%s/%s/dt=%s/%s-%s.tsv.gz", dest, name, day, day, hh);
    return n < 0 || (size_t)n >= outlen ? SL_EINVAL : 0;
}

/* mkdir -p of the directories above path. */
static int make_parents(const char *path)
{
    char d[SL_ARCHIVE_PATH_MAX + 64];

    snprintf(d, sizeof(d), "%s", path);
    for (char *p = d + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(d, 0750) != 0 && errno != EEXIST)
            return SL_EIO;
        *p = '/';
    }
    return 0;
}

static int fsync_dir_of(const char *path)
{
    char d[SL_ARCHIVE_PATH_MAX + 64];
    char *slash;
    int fd, rc;

    snprintf(d, sizeof(d), "%s", path);
    slash = strrchr(d, '/');
    if (slash == NULL)
        return 0;
    *slash = '\0';
    fd = open(d, O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return SL_EIO;
    rc = fsync(fd) == 0 ? 0 : SL_EIO;
    close(fd);
    return rc;
}

static int write_all(int fd, const unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return SL_EIO;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Deflate in[0..n) (flush: Z_NO_FLUSH or Z_FINISH) to fd, hashing and counting what is
 * written. */
static int deflate_out(z_stream *z, int fd, EVP_MD_CTX *md, long long *bytes,
                       const void *in, size_t n, int flush)
{
    unsigned char out[CHUNK];
    int zr;

    z->next_in = (unsigned char *)(uintptr_t)in;
    z->avail_in = (uInt)n;
    do {
        z->next_out = out;
        z->avail_out = sizeof(out);
        zr = deflate(z, flush);
        if (zr == Z_STREAM_ERROR)
            return SL_EIO;
        size_t have = sizeof(out) - z->avail_out;
        if (have && (write_all(fd, out, have) || EVP_DigestUpdate(md, out, have) != 1))
            return SL_EIO;
        *bytes += (long long)have;
    } while (z->avail_out == 0 || (flush == Z_FINISH && zr != Z_STREAM_END));
    return 0;
}

static void hex32(const unsigned char d[32], char out[65])
{
    static const char hx[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hx[d[i] >> 4];
        out[2 * i + 1] = hx[d[i] & 15];
    }
    out[64] = '\0';
}

/* Read the file back: its size and SHA-256, and the lines of its gzip content. */
static int read_back(const char *path, long long *bytes, char sha[65], long long *lines)
{
    unsigned char in[CHUNK], out[CHUNK], d[32];
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    z_stream z;
    int fd = -1, rc = SL_EIO, zr = Z_OK;
    unsigned int dl = 0;
    bool zinit = false;

    *bytes = *lines = 0;
    memset(&z, 0, sizeof(z));
    if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
        goto out;
    if (inflateInit2(&z, 15 + 16) != Z_OK)
        goto out;
    zinit = true;
    if ((fd = open(path, O_RDONLY)) < 0)
        goto out;
    for (;;) {
        ssize_t r = read(fd, in, sizeof(in));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            goto out;
        if (r == 0)
            break;
        *bytes += r;
        if (EVP_DigestUpdate(md, in, (size_t)r) != 1)
            goto out;
        z.next_in = in;
        z.avail_in = (uInt)r;
        while (z.avail_in > 0 && zr != Z_STREAM_END) {
            z.next_out = out;
            z.avail_out = sizeof(out);
            zr = inflate(&z, Z_NO_FLUSH);
            if (zr != Z_OK && zr != Z_STREAM_END)
                goto out;
            for (size_t i = 0; i < sizeof(out) - z.avail_out; i++)
                *lines += out[i] == '\n';
        }
    }
    if (zr != Z_STREAM_END || EVP_DigestFinal_ex(md, d, &dl) != 1)
        goto out;
    hex32(d, sha);
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    if (zinit)
        inflateEnd(&z);
    EVP_MD_CTX_free(md);
    return rc;
}

/* ---- S3-compatible storage (libcurl's AWS SigV4) ---------------------------------- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_rc = CURLE_FAILED_INIT;

static void curl_init_once(void)
{
    curl_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static const char *env_or(const char *name, const char *def)
{
    const char *v = getenv(name);
    return v && *v ? v : def;
}

/* The object URL of an archive path s3://BUCKET/KEY: path style on the endpoint
 * (SLUICE_ARCHIVE_S3_ENDPOINT, default https://s3.REGION.amazonaws.com); '=' of the
 * dt=... directory percent-encoded, as SigV4's canonical URI has it. */
static int s3_url(const char *path, char *out, size_t outlen)
{
    char def[128];
    const char *ep;
    size_t n;
    int k;

    snprintf(def, sizeof(def), "https://s3.%s.amazonaws.com",
             env_or("SLUICE_ARCHIVE_S3_REGION", "us-east-1"));
    ep = env_or("SLUICE_ARCHIVE_S3_ENDPOINT", def);
    n = strlen(ep);
    while (n > 0 && ep[n - 1] == '/')
        n--;
    k = snprintf(out, outlen, "%.*s/", (int)n, ep);
    if (k < 0 || (size_t)k >= outlen)
        return SL_EINVAL;
    for (const char *p = path + 5; *p; p++) {
        size_t used = strlen(out);
        if (used + 4 >= outlen)
            return SL_EINVAL;
        if (*p == '=')
            memcpy(out + used, "%3D", 4);
        else {
            out[used] = *p;
            out[used + 1] = '\0';
        }
    }
    return 0;
}

struct s3_sink {
    EVP_MD_CTX *md;
    long long bytes;
    int fd; /* -1: hash only */
    bool failed;
};

static size_t s3_write(char *p, size_t size, size_t nmemb, void *arg)
{
    struct s3_sink *k = arg;
    size_t n = size * nmemb;

    if (EVP_DigestUpdate(k->md, p, n) != 1 ||
        (k->fd >= 0 && write_all(k->fd, (const unsigned char *)p, n) != 0)) {
        k->failed = true;
        return 0;
    }
    k->bytes += (long long)n;
    return n;
}

/* One signed request: PUT of the file `upload` (its SHA-256 hex in sha, which S3 checks)
 * or GET into sink. *status: the HTTP status (0 when none). */
static int s3_request(const char *url, const char *upload, long long bytes, const char *sha,
                      struct s3_sink *sink, long *status)
{
    char sigv4[96], hdr[128], err[CURL_ERROR_SIZE] = "";
    struct curl_slist *hl = NULL;
    FILE *in = NULL;
    CURL *h = NULL;
    CURLcode cc;
    int rc = SL_EIO;

    *status = 0;
    pthread_once(&curl_once, curl_init_once);
    if (curl_rc != CURLE_OK || (h = curl_easy_init()) == NULL)
        return SL_EIO;
    snprintf(sigv4, sizeof(sigv4), "aws:amz:%s:s3",
             env_or("SLUICE_ARCHIVE_S3_REGION", "us-east-1"));
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_AWS_SIGV4, sigv4);
    curl_easy_setopt(h, CURLOPT_USERNAME, env_or("AWS_ACCESS_KEY_ID", ""));
    curl_easy_setopt(h, CURLOPT_PASSWORD, env_or("AWS_SECRET_ACCESS_KEY", ""));
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 600L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, err);
    if (upload) {
        if ((in = fopen(upload, "rb")) == NULL)
            goto out;
        snprintf(hdr, sizeof(hdr), "x-amz-content-sha256: %s", sha);
        hl = curl_slist_append(hl, hdr);
        hl = curl_slist_append(hl, "Content-Type: application/gzip");
        hl = curl_slist_append(hl, "Expect:");
        if (hl == NULL)
            goto out;
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_READDATA, in);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)bytes);
    } else {
        /* the SHA-256 of an empty body */
        hl = curl_slist_append(hl, "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb924"
                                   "27ae41e4649b934ca495991b7852b855");
        if (hl == NULL)
            goto out;
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, s3_write);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, sink);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    cc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    if (cc != CURLE_OK && !(cc == CURLE_WRITE_ERROR && *status != 200)) {
        sl_error("archive S3 request failed", "url=%s err=\"%s\"", url,
                 err[0] ? err : curl_easy_strerror(cc));
        goto out;
    }
    rc = 0;
out:
    if (in)
        fclose(in);
    curl_slist_free_all(hl);
    curl_easy_cleanup(h);
    return rc;
}

/* PUT the local file, then GET it back: size and SHA-256 must be what was written. */
static int s3_store(const char *path, const char *local, long long bytes, const char *sha)
{
    char url[SL_ARCHIVE_PATH_MAX + 512], got[65];
    unsigned char d[32];
    unsigned int dl = 0;
    struct s3_sink k = {.md = EVP_MD_CTX_new(), .fd = -1};
    long status = 0;
    int rc = SL_EIO;

    if (k.md == NULL || EVP_DigestInit_ex(k.md, EVP_sha256(), NULL) != 1 ||
        s3_url(path, url, sizeof(url)))
        goto out;
    if (s3_request(url, local, bytes, sha, NULL, &status))
        goto out;
    if (status != 200) {
        sl_error("archive S3 upload refused", "url=%s status=%ld", url, status);
        goto out;
    }
    if (s3_request(url, NULL, 0, NULL, &k, &status) || status != 200 || k.failed ||
        EVP_DigestFinal_ex(k.md, d, &dl) != 1)
        goto out;
    hex32(d, got);
    if (k.bytes != bytes || strcmp(got, sha) != 0) {
        sl_error("archive S3 verification failed", "url=%s bytes=%lld read=%lld", url, bytes,
                 k.bytes);
        goto out;
    }
    rc = 0;
out:
    EVP_MD_CTX_free(k.md);
    return rc;
}

/* GET the object of archive path `path` into the file fd. *found false on 404. */
static int s3_fetch(const char *path, int fd, bool *found)
{
    char url[SL_ARCHIVE_PATH_MAX + 512];
    struct s3_sink k = {.md = EVP_MD_CTX_new(), .fd = fd};
    long status = 0;
    int rc = SL_EIO;

    *found = false;
    if (k.md == NULL || EVP_DigestInit_ex(k.md, EVP_sha256(), NULL) != 1 ||
        s3_url(path, url, sizeof(url)))
        goto out;
    if (s3_request(url, NULL, 0, NULL, &k, &status))
        goto out;
    if (status == 404 || (status == 200 && !k.failed)) {
        *found = status == 200;
        rc = 0;
    } else
        sl_error("archive S3 read failed", "url=%s status=%ld", url, status);
out:
    EVP_MD_CTX_free(k.md);
    return rc;
}

int sl_archive_write_hour(struct pg_conn *c, const char *dest, int64_t source_id,
                          const char *name, int64_t hour_s, struct sl_archive_file *f)
{
    char tmp[SL_ARCHIVE_PATH_MAX + 80], sql[4096], sha[65], hs[24], sids[24];
    const char *vals[6];
    unsigned char d[32];
    unsigned int dl = 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    z_stream z;
    PGresult *r = NULL;
    bool zinit = false, began = false, tmp_live = false, s3 = strncmp(dest, "s3://", 5) == 0;
    int fd = -1, rc = SL_EIO, n;
    char *buf = NULL;
    long long back_bytes = 0, back_lines = 0;

    memset(f, 0, sizeof(*f));
    memset(&z, 0, sizeof(z));
    if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
        goto out;
    if ((rc = sl_archive_path(dest, name, hour_s, f->path, sizeof(f->path))))
        goto out;
    rc = SL_EIO;
    if (s3) {
        /* staged in a local file, uploaded once it is whole and checked */
        snprintf(tmp, sizeof(tmp), "%s/sluice-archive-XXXXXX", env_or("TMPDIR", "/tmp"));
        fd = mkostemp(tmp, O_CLOEXEC);
    } else {
        /* a name of its own: two nodes archiving one hour never share a file */
        snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", f->path);
        if (make_parents(f->path)) {
            sl_error("archive directory not created", "path=%s err=\"%s\"", f->path,
                     strerror(errno));
            goto out;
        }
        fd = mkostemp(tmp, O_CLOEXEC);
    }
    if (fd < 0) {
        sl_error("archive file not opened", "path=%s err=\"%s\"", tmp, strerror(errno));
        goto out;
    }
    tmp_live = true;
    if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        goto out;
    zinit = true;
    /* The hour is in the past: no writer adds to it; one statement reads it whole. */
    if (sl_db_exec(c, "archive read failed", "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
                   0, NULL, NULL))
        goto out;
    began = true;
    if (sl_db_exec(c, "archive read failed", "SET LOCAL TimeZone = 'UTC'", 0, NULL, NULL))
        goto out;
    snprintf(sql, sizeof(sql),
             "COPY (SELECT " ARCHIVE_COLUMNS " FROM (SELECT * FROM logs WHERE source_id = %" PRId64
             " UNION ALL SELECT * FROM sl_packed_rows(%" PRId64 ", to_timestamp(%" PRId64 "), "
             "to_timestamp(%" PRId64 "))) l JOIN sources s ON s.id = l.source_id "
             "WHERE l.source_id = %" PRId64 " AND l.received_at >= to_timestamp(%" PRId64 ") "
             "AND l.received_at < to_timestamp(%" PRId64 ") ORDER BY l.id) TO STDOUT",
             source_id, source_id, hour_s, hour_s + 3600, source_id, hour_s, hour_s + 3600);
    r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COPY_OUT) {
        sl_db_log_error("archive read failed", c, r);
        goto out;
    }
    PQclear(r);
    r = NULL;
    while ((n = PQgetCopyData(c, &buf, 0)) > 0) {
        int e = deflate_out(&z, fd, md, &f->bytes, buf, (size_t)n, Z_NO_FLUSH);
        PQfreemem(buf);
        buf = NULL;
        if (e) {
            sl_error("archive write failed", "path=%s err=\"%s\"", tmp, strerror(errno));
            while (PQgetCopyData(c, &buf, 0) > 0) /* drain the COPY: the connection lives on */
                PQfreemem(buf);
            buf = NULL;
            goto out;
        }
    }
    r = PQgetResult(c);
    if (n != -1 || PQresultStatus(r) != PGRES_COMMAND_OK) {
        sl_db_log_error("archive read failed", c, r);
        goto out;
    }
    f->rows = atoll(PQcmdTuples(r));
    PQclear(r);
    r = NULL;
    while ((r = PQgetResult(c)) != NULL)
        PQclear(r);
    if (deflate_out(&z, fd, md, &f->bytes, "", 0, Z_FINISH) ||
        EVP_DigestFinal_ex(md, d, &dl) != 1 || fsync(fd) != 0) {
        sl_error("archive write failed", "path=%s err=\"%s\"", tmp, strerror(errno));
        goto out;
    }
    hex32(d, f->sha256);
    close(fd);
    fd = -1;
    if (!s3 && (rename(tmp, f->path) != 0 || fsync_dir_of(f->path))) {
        sl_error("archive rename failed", "path=%s err=\"%s\"", f->path, strerror(errno));
        goto out;
    }
    if (!s3)
        tmp_live = false;
    /* What is on disk now, not what was meant to be: size, checksum and every line. */
    if (read_back(s3 ? tmp : f->path, &back_bytes, sha, &back_lines) ||
        back_bytes != f->bytes || strcmp(sha, f->sha256) != 0 || back_lines != f->rows) {
        sl_error("archive verification failed", "path=%s bytes=%lld read=%lld lines=%lld rows=%lld",
                 f->path, f->bytes, back_bytes, back_lines, f->rows);
        goto out;
    }
    /* S3: uploaded, then read back from the store (size and SHA-256). */
    if (s3 && s3_store(f->path, tmp, f->bytes, f->sha256))
        goto out;
    PQclear(PQexec(c, "COMMIT"));
    began = false;
    snprintf(sids, sizeof(sids), "%" PRId64, source_id);
    snprintf(hs, sizeof(hs), "%" PRId64, hour_s);
    char rows_s[24], bytes_s[24];
    snprintf(rows_s, sizeof(rows_s), "%lld", f->rows);
    snprintf(bytes_s, sizeof(bytes_s), "%lld", f->bytes);
    vals[0] = sids;
    vals[1] = hs;
    vals[2] = f->path;
    vals[3] = rows_s;
    vals[4] = bytes_s;
    vals[5] = f->sha256;
    if (sl_db_exec(c, "archive record failed",
                   "INSERT INTO archive_hours (source_id, hour, path, nrows, bytes, sha256) "
                   "VALUES ($1::bigint, to_timestamp($2::bigint), $3, $4::bigint, $5::bigint, $6) "
                   "ON CONFLICT (source_id, hour) DO UPDATE SET path = EXCLUDED.path, "
                   "nrows = EXCLUDED.nrows, bytes = EXCLUDED.bytes, sha256 = EXCLUDED.sha256, "
                   "written_at = now()",
                   6, vals, NULL))
        goto out;
    SL_INC(archive_files, 1);
    SL_INC(archive_bytes, f->bytes);
    sl_info("archive written", "path=%s rows=%lld bytes=%lld sha256=%s", f->path, f->rows,
            f->bytes, f->sha256);
    rc = 0;
out:
    PQclear(r);
    if (began)
        PQclear(PQexec(c, "ROLLBACK"));
    if (fd >= 0)
        close(fd);
    if (tmp_live)
        unlink(tmp);
    if (zinit)
        deflateEnd(&z);
    EVP_MD_CTX_free(md);
    return rc;
}

/* The oldest hour of job's source with rows past its retention, skipping held days
 * (at most 32 of them). *hour_s -1: none; *whole: the hour is wholly past. */
static int oldest_hour(PGconn *c, const struct sl_retention_job *job, int64_t *hour_s,
                       bool *whole, bool *archived)
{
    char sid[24], days[16], after[24] = "-infinity", cut[24];
    const char *vals[4] = {sid, days, after, cut};
    PGresult *r = NULL;

    snprintf(sid, sizeof(sid), "%" PRId64, job->source_id);
    snprintf(days, sizeof(days), "%d", job->days);
    /* the disk guard's eviction of a day gives its end instead of a retention */
    snprintf(cut, sizeof(cut), "%" PRId64, job->cut_s);
    *hour_s = -1;
    for (int tries = 0; tries < 32; tries++) {
        bool held;
        if (sl_db_exec(c, "retention query failed",
                       /* the oldest live row, and the oldest packed one: a packed block's
                        * bounds are its rows', so only blocks across $3 are read */
                       "WITH c AS (SELECT CASE WHEN $4::bigint > 0 THEN to_timestamp($4::bigint) "
                       "  ELSE now() - make_interval(days => $2::int) END AS t), "
                       "h AS (SELECT date_trunc('hour', least("
                       "  (SELECT min(received_at) FROM logs WHERE source_id = $1::bigint "
                       "  AND received_at >= $3::timestamptz AND received_at < (SELECT t FROM c)), "
                       "  (SELECT min(min_received) FROM log_blocks WHERE packed AND source_id = "
                       "  $1::bigint AND min_received >= $3::timestamptz "
                       "  AND min_received < (SELECT t FROM c)), "
                       "  (SELECT min(u.received_at) FROM log_blocks b JOIN log_packs p ON "
                       "  p.source_id = b.source_id AND p.day = (b.min_received AT TIME ZONE "
                       "  'UTC')::date AND p.min_id = b.min_id CROSS JOIN LATERAL "
                       "  sl_pack_rows(p.rows, p.data) u WHERE b.packed AND b.source_id = $1::bigint "
                       "  AND b.min_received < $3::timestamptz AND b.max_received >= $3::timestamptz "
                       "  AND u.received_at >= $3::timestamptz AND u.received_at < (SELECT t FROM c))"
                       "), 'UTC') AS h) "
                       "SELECT extract(epoch FROM h)::bigint, "
                       "h + interval '1 hour' <= (SELECT t FROM c), "
                       "EXISTS (SELECT 1 FROM archive_hours a WHERE a.source_id = $1::bigint "
                       "  AND a.hour = h), "
                       "EXISTS (SELECT 1 FROM archive_holds d WHERE d.source_id = $1::bigint "
                       "  AND d.until > now() AND d.day = (h AT TIME ZONE 'UTC')::date), "
                       "((h AT TIME ZONE 'UTC')::date + 1)::timestamp AT TIME ZONE 'UTC' "
                       "FROM h WHERE h IS NOT NULL",
                       4, vals, &r))
            return SL_EDB;
        if (PQntuples(r) == 0) {
            PQclear(r);
            return 0;
        }
        held = PQgetvalue(r, 0, 3)[0] == 't';
        if (!held) {
            *hour_s = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
            *whole = PQgetvalue(r, 0, 1)[0] == 't';
            *archived = PQgetvalue(r, 0, 2)[0] == 't';
            PQclear(r);
            return 0;
        }
        snprintf(after, sizeof(after), "%s", PQgetvalue(r, 0, 4)); /* the next day */
        PQclear(r);
        r = NULL;
    }
    return 0;
}

int sl_archive_retention_step(struct pg_conn *c, const struct sl_retention_job *job, int limit,
                              long long *deleted)
{
    struct sl_archive_file f;
    char sid[24], lim[16], lo[24], hi[24];
    const char *vals[4] = {sid, lo, hi, lim};
    PGresult *r = NULL;
    int64_t hour_s;
    bool whole = false, archived = false, locked;
    int rc;

    *deleted = 0;
    snprintf(sid, sizeof(sid), "%" PRId64, job->source_id);
    /* One node at a time archives and deletes a source's hour (every node runs passes):
     * another node holding the source's lock has it in hand this pass. */
    if ((rc = sl_db_exec(c, "archive lock failed",
                         "SELECT pg_try_advisory_lock(7355017, "
                         "($1::bigint % 2147483647)::int)",
                         1, vals, &r)))
        return rc;
    locked = PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    r = NULL;
    if (!locked)
        return 0;
    if ((rc = oldest_hour(c, job, &hour_s, &whole, &archived)))
        goto out;
    /* An hour is archived whole: the part of it not yet past the retention waits. */
    if (hour_s < 0 || !whole)
        goto out;
    if (!archived && sl_archive_write_hour(c, job->archive, job->source_id, job->name, hour_s,
                                           &f) != 0) {
        SL_INC(archive_failures, 1);
        sl_warn("archive failed; rows kept, retried next pass", "source=%s hour=%" PRId64,
                job->name, hour_s);
        goto out;
    }
    snprintf(lo, sizeof(lo), "%" PRId64, hour_s);
    snprintf(hi, sizeof(hi), "%" PRId64, hour_s + 3600);
    snprintf(lim, sizeof(lim), "%d", limit > 0 ? limit : 1);
    /* The same bounded batch as sl_db_retention_batch, inside the archived hour. */
    if ((rc = sl_db_exec(c, "retention delete failed", SL_DB_BATCH_DELETE_SQL, 4, vals, &r)))
        goto out;
    *deleted = atoll(PQcmdTuples(r));
    /* then the hour's packed rows (docs/search.md "Compacted days"), a few packs a call */
    if (*deleted < (limit > 0 ? limit : 1)) {
        PQclear(r);
        r = NULL;
        if ((rc = sl_db_exec(c, "retention delete failed",
                             "SELECT sl_packs_delete($1::bigint, to_timestamp($2::bigint), "
                             "to_timestamp($3::bigint), $4::int / 256 + 1)",
                             4, vals, &r)))
            goto out;
        *deleted += atoll(PQgetvalue(r, 0, 0));
    }
out:
    PQclear(r);
    r = NULL;
    if (sl_db_exec(c, "archive unlock failed",
                   "SELECT pg_advisory_unlock(7355017, ($1::bigint % 2147483647)::int)", 1,
                   vals, NULL))
        rc = rc ? rc : SL_EDB;
    return rc;
}

/* COPY one gzip file into archive_restore. *lines: its lines. */
static int copy_in(PGconn *c, const char *path, long long *lines)
{
    unsigned char in[CHUNK], out[CHUNK];
    z_stream z;
    PGresult *r = NULL;
    int fd = -1, rc = SL_EIO, zr = Z_OK;
    bool zinit = false, copying = false;

    *lines = 0;
    memset(&z, 0, sizeof(z));
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return SL_EIO;
    if (inflateInit2(&z, 15 + 16) != Z_OK)
        goto out;
    zinit = true;
    r = PQexec(c, "COPY archive_restore FROM STDIN");
    if (PQresultStatus(r) != PGRES_COPY_IN) {
        sl_db_log_error("archive restore failed", c, r);
        goto out;
    }
    PQclear(r);
    r = NULL;
    copying = true;
    for (;;) {
        ssize_t n = read(fd, in, sizeof(in));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            goto out;
        if (n == 0)
            break;
        z.next_in = in;
        z.avail_in = (uInt)n;
        while (z.avail_in > 0 && zr != Z_STREAM_END) {
            size_t have;
            z.next_out = out;
            z.avail_out = sizeof(out);
            zr = inflate(&z, Z_NO_FLUSH);
            if (zr != Z_OK && zr != Z_STREAM_END)
                goto out;
            have = sizeof(out) - z.avail_out;
            for (size_t i = 0; i < have; i++)
                *lines += out[i] == '\n';
            if (have && PQputCopyData(c, (const char *)out, (int)have) != 1)
                goto out;
        }
    }
    if (zr != Z_STREAM_END)
        goto out;
    copying = false;
    if (PQputCopyEnd(c, NULL) != 1)
        goto out;
    r = PQgetResult(c);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        sl_db_log_error("archive restore failed", c, r);
        goto out;
    }
    rc = 0;
out:
    if (copying) {
        PQputCopyEnd(c, "archive file unreadable");
        PQclear(PQgetResult(c));
    }
    PQclear(r);
    while ((r = PQgetResult(c)) != NULL)
        PQclear(r);
    if (zinit)
        inflateEnd(&z);
    close(fd);
    if (rc)
        sl_error("archive file not restored", "path=%s", path);
    return rc;
}

int sl_archive_restore_day(struct pg_conn *c, const char *name, const char *day,
                           const char *dest, int hold_days, FILE *out)
{
    char path[SL_ARCHIVE_PATH_MAX + 64], why[160], sid[24], holds[16], destbuf[SL_ARCHIVE_PATH_MAX];
    const char *vals[3];
    PGresult *r = NULL;
    struct tm tm;
    int64_t day_s, source_id;
    long long files = 0, lines = 0, inserted = 0, blocks = 0;
    bool began = false;
    int rc;

    memset(&tm, 0, sizeof(tm));
    if (strlen(day) != 10 || strptime(day, "%Y-%m-%d", &tm) == NULL) {
        fprintf(stderr, "sluice: --day wants YYYY-MM-DD (UTC)\n");
        return SL_EINVAL;
    }
    day_s = (int64_t)timegm(&tm);
    vals[0] = name;
    if ((rc = sl_db_exec(c, "archive restore failed",
                         "SELECT id, coalesce(archive, '') FROM sources WHERE name = $1", 1, vals,
                         &r)))
        return rc;
    if (PQntuples(r) != 1) {
        PQclear(r);
        fprintf(stderr, "sluice: no source named %s\n", name);
        return SL_ENOTFOUND;
    }
    source_id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    snprintf(destbuf, sizeof(destbuf), "%s", dest ? dest : PQgetvalue(r, 0, 1));
    PQclear(r);
    r = NULL;
    if (sl_archive_dest_check(destbuf, why, sizeof(why))) {
        fprintf(stderr, "sluice: archive of %s: %s (give --from DIR)\n", name, why);
        return SL_EINVAL;
    }
    if ((rc = sl_db_ensure_partitions(c, day_s * 1000000, 1)))
        return rc;
    if ((rc = sl_db_exec(c, "archive restore failed", "BEGIN", 0, NULL, NULL)))
        return rc;
    began = true;
    if ((rc = sl_db_exec(c, "archive restore failed", "SET LOCAL TimeZone = 'UTC'", 0, NULL,
                         NULL)) ||
        (rc = sl_db_exec(c, "archive restore failed", RESTORE_TABLE, 0, NULL, NULL)))
        goto out;
    for (int h = 0; h < 24; h++) {
        long long n = 0;
        if ((rc = sl_archive_path(destbuf, name, day_s + h * 3600, path, sizeof(path))))
            goto out;
        if (strncmp(destbuf, "s3://", 5) == 0) {
            char tmp[256];
            bool found = false;
            int fd;
            snprintf(tmp, sizeof(tmp), "%s/sluice-restore-XXXXXX", env_or("TMPDIR", "/tmp"));
            if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
                rc = SL_EIO;
                goto out;
            }
            rc = s3_fetch(path, fd, &found);
            close(fd);
            if (rc == 0 && found)
                rc = copy_in(c, tmp, &n);
            unlink(tmp);
            if (rc)
                goto out;
            if (!found)
                continue;
        } else {
            if (access(path, F_OK) != 0)
                continue;
            if ((rc = copy_in(c, path, &n)))
                goto out;
        }
        files++;
        lines += n;
    }
    snprintf(sid, sizeof(sid), "%" PRId64, source_id);
    snprintf(holds, sizeof(holds), "%d", hold_days);
    vals[0] = sid;
    vals[1] = day;
    vals[2] = holds;
    /* The hold first: a retention pass that runs meanwhile leaves the day alone. */
    if ((rc = sl_db_exec(c, "archive restore failed",
                         "INSERT INTO archive_holds (source_id, day, until) VALUES ($1::bigint, "
                         "$2::date, now() + make_interval(days => $3::int)) ON CONFLICT "
                         "(source_id, day) DO UPDATE SET until = greatest(archive_holds.until, "
                         "EXCLUDED.until)",
                         3, vals, NULL)))
        goto out;
    /* Rows already in logs (the same id at the same time) are skipped. */
    if ((rc = sl_db_exec(c, "archive restore failed",
                         "INSERT INTO logs (" LOG_COLUMNS ") SELECT t.id, t.received_at, "
                         "$1::bigint, t.emitted_at, t.emitted_precision, t.emitted_offset, "
                         "t.facility, t.severity, t.hostname, t.app_name, t.procid, t.msgid, t.sd, "
                         "t.message, t.message_raw, t.parse_error, t.truncated_from, t.tags, "
                         "t.frame_id, t.json_at FROM archive_restore t "
                         "WHERE t.received_at >= $2::date::timestamp AT TIME ZONE 'UTC' "
                         "AND t.received_at < ($2::date + 1)::timestamp AT TIME ZONE 'UTC' "
                         "AND NOT EXISTS (SELECT 1 FROM logs l WHERE l.source_id = $1::bigint "
                         "AND l.received_at = t.received_at AND l.id = t.id) "
                         "AND t.id NOT IN (SELECT u.id FROM sl_packed_rows($1::bigint, "
                         "$2::date::timestamp AT TIME ZONE 'UTC', ($2::date + 1)::timestamp AT "
                         "TIME ZONE 'UTC') u)",
                         2, vals, &r)))
        goto out;
    inserted = atoll(PQcmdTuples(r));
    PQclear(r);
    r = NULL;
    /* Search blocks for the rows no block of the source covers: one per gap between the
     * source's existing blocks (blocks of a source never overlap in ids), with a filter
     * that says yes to every token (searched by reading). */
    if ((rc = sl_db_exec(c, "archive restore failed",
                         "INSERT INTO log_blocks (source_id, min_received, max_received, min_id, "
                         "max_id, nrows, nbits, bloom) SELECT $1::bigint, min(t.received_at), "
                         "max(t.received_at), min(t.id), max(t.id), count(*), 8, '\\xff'::bytea "
                         "FROM archive_restore t LEFT JOIN LATERAL (SELECT b.min_id, b.max_id "
                         "FROM log_blocks b WHERE b.source_id = $1::bigint AND b.min_id <= t.id "
                         "ORDER BY b.min_id DESC LIMIT 1) p ON true "
                         "WHERE t.received_at >= $2::date::timestamp AT TIME ZONE 'UTC' "
                         "AND t.received_at < ($2::date + 1)::timestamp AT TIME ZONE 'UTC' "
                         "AND (p.max_id IS NULL OR p.max_id < t.id) "
                         "GROUP BY p.min_id ON CONFLICT (source_id, min_id) DO NOTHING",
                         2, vals, &r)))
        goto out;
    blocks = atoll(PQcmdTuples(r));
    PQclear(r);
    r = NULL;
    if ((rc = sl_db_exec(c, "archive restore failed", "COMMIT", 0, NULL, NULL)))
        goto out;
    began = false;
    fprintf(out, "source %s day %s: %lld files, %lld lines in them, %lld rows restored "
                 "(%lld were there), %lld search blocks added; held from retention for %d days\n",
            name, day, files, lines, inserted, lines - inserted, blocks, hold_days);
out:
    PQclear(r);
    if (began)
        PQclear(PQexec(c, "ROLLBACK"));
    return rc;
}
