/* Unit tests for drain/frame.c (include/sluice/frame.h): table-driven framing cases,
 * stream mode fed in every split, the shared logplex/stream corpora, and the syslog
 * stream framer (message limit, skipping, end of stream) fed at every split.
 * Corpus root: $SLUICE_CORPUS (the directory holding logplex/ and streams/, or the
 * logplex/ directory itself), else tests/fixtures/corpus relative to the repo root. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "sluice/err.h"
#include "sluice/frame.h"
#include "sluice/rfc5424.h"

/* ---- helpers ------------------------------------------------------------------ */

#define K_END (-100) /* expect rc == 0 (only whitespace left) */
#define K_AGAIN (-101) /* expect rc == SL_EAGAIN */

struct exp_frame {
    int kind; /* enum sl_frame_kind, K_END or K_AGAIN */
    const char *msg;
    size_t declared;
};

struct frame_case {
    const char *name;
    const char *in;
    size_t in_len; /* 0: strlen(in) */
    bool final;
    struct exp_frame exp[8]; /* terminated by K_END or K_AGAIN */
};

static void run_case(const struct frame_case *c)
{
    size_t len = c->in_len ? c->in_len : strlen(c->in);
    size_t off = 0;

    for (int i = 0; i < 8; i++) {
        const struct exp_frame *e = &c->exp[i];
        struct sl_frame f;
        int rc = sl_frame_next(c->in + off, len - off, c->final, &f);

        if (e->kind == K_END) {
            if (rc != 0)
                fail_msg("%s: frame %d: rc %d, want 0", c->name, i, rc);
            return;
        }
        if (e->kind == K_AGAIN) {
            if (rc != SL_EAGAIN)
                fail_msg("%s: frame %d: rc %d, want SL_EAGAIN", c->name, i, rc);
            return;
        }
        if (rc <= 0)
            fail_msg("%s: frame %d: rc %d, want a frame", c->name, i, rc);
        if ((int)f.kind != e->kind)
            fail_msg("%s: frame %d: kind %d, want %d", c->name, i, (int)f.kind, e->kind);
        if (f.msg.len != strlen(e->msg) || memcmp(f.msg.p, e->msg, f.msg.len) != 0)
            fail_msg("%s: frame %d: msg \"%.*s\", want \"%s\"", c->name, i, (int)f.msg.len,
                     f.msg.p, e->msg);
        if (f.declared != e->declared)
            fail_msg("%s: frame %d: declared %zu, want %zu", c->name, i, f.declared,
                     e->declared);
        /* msg must lie inside the consumed bytes */
        assert_true(f.msg.p >= c->in + off);
        assert_true(f.msg.p + f.msg.len <= c->in + off + (size_t)rc);
        off += (size_t)rc;
        assert_true(off <= len);
    }
    fail_msg("%s: table row has no terminator", c->name);
}

#define OK(m, d) {SL_FRAME_OK, (m), (d)}
#define LF(m) {SL_FRAME_LF, (m), 0}
#define BAD(m) {SL_FRAME_BAD_PREFIX, (m), 0}
#define SHORT(m, d) {SL_FRAME_SHORT, (m), (d)}
#define END {K_END, NULL, 0}
#define AGAIN {K_AGAIN, NULL, 0}

static const struct frame_case cases[] = {
    {"two frames", "8 <1>abcd\n7 <2>efg\n", 0, true, {OK("<1>abcd", 8), OK("<2>efg", 7), END}},
    {"no trailing newline (L10)", "5 <1>ab6 <1>cd\n", 0, true,
     {OK("<1>ab", 5), OK("<1>cd", 6), END}},
    {"newlines inside a frame are kept", "9 <1>a\nb\nc\n5 <2>xy", 0, true,
     {OK("<1>a\nb\nc", 9), OK("<2>xy", 5), END}},
    {"only one trailing newline stripped", "5 <1>\n\n3 <2>", 0, true,
     {OK("<1>\n", 5), OK("<2>", 3), END}},
    {"CR LF and spaces between frames", "\r\n 5 <1>ab\r\n\n  5 <1>cd \n", 0, true,
     {OK("<1>ab", 5), OK("<1>cd", 5), END}},
    {"empty input", "", 0, true, {END}},
    {"whitespace only", " \r\n\n ", 0, true, {END}},
    {"whitespace only, stream", "\n\n", 0, false, {END}},
    {"frame that is just a newline", "1 \n5 <1>ab", 0, true, {OK("", 1), OK("<1>ab", 5), END}},
    {"message need not start with <", "4 abcd", 0, true, {OK("abcd", 4), END}},
    {"zero length is bad", "0 <1>ab", 0, true, {BAD("0 <1>ab"), END}},
    {"leading zero is bad", "05 <1>ab", 0, true, {BAD("05 <1>ab"), END}},
    {"too many digits", "1234567890 <1>", 0, true, {BAD("1234567890 <1>"), END}},
    {"declared above the cap", "67108865 <1>", 0, true, {BAD("67108865 <1>"), END}},
    {"declared at the cap, short", "67108864 <1>x", 0, true, {SHORT("<1>x", 67108864), END}},
    {"no space after digits", "12x <190>1 garbage", 0, true, {BAD("12x <190>1 garbage"), END}},
    {"digits to the end, final", "12", 0, true, {BAD("12"), END}},
    {"digits to the end, stream", "12", 0, false, {AGAIN}},
    {"short, final", "10 <1>ab", 0, true, {SHORT("<1>ab", 10), END}},
    {"short keeps trailing newline", "10 <1>ab\n", 0, true, {SHORT("<1>ab\n", 10), END}},
    {"short, stream", "10 <1>ab", 0, false, {AGAIN}},
    {"prefix without body, stream", "10 ", 0, false, {AGAIN}},
    {"good then short", "5 <1>ab9 <1>", 0, true, {OK("<1>ab", 5), SHORT("<1>", 9), END}},
    {"resync at end of body", "junk\n5 <1>ab", 0, true, {BAD("junk\n"), OK("<1>ab", 5), END}},
    {"resync before another prefix", "junk\n5 <1>ab5 <1>cd", 0, true,
     {BAD("junk\n"), OK("<1>ab", 5), OK("<1>cd", 5), END}},
    {"resync after a space in a whole body", "junk 5 <1>ab", 0, true,
     {BAD("junk "), OK("<1>ab", 5), END}},
    {"resync after a zero-length prefix (0 78 <...)", "1 x0 5 <1>ab", 0, true,
     {OK("x", 1), BAD("0 "), OK("<1>ab", 5), END}},
    {"resync skips a frame running past the end", "junk\n50 <1>ab\n5 <1>cd", 0, true,
     {BAD("junk\n50 <1>ab\n"), OK("<1>cd", 5), END}},
    {"resync needs < after the prefix", "junk\n5 abcde", 0, true, {BAD("junk\n5 abcde"), END}},
    {"resync needs a prefix after the frame", "junk\n3 <1>x 5 <1>cd", 0, true,
     {BAD("junk\n3 <1>x "), OK("<1>cd", 5), END}},
    {"resync allows whitespace before next prefix", "junk\n3 <1>\r\n5 <1>cd", 0, true,
     {BAD("junk\n"), OK("<1>", 3), OK("<1>cd", 5), END}},
    {"bad prefix inside a body keeps both neighbours", "5 <1>ab\nx\n5 <1>cd", 0, true,
     {OK("<1>ab", 5), BAD("x\n"), OK("<1>cd", 5), END}},
    {"bad prefix, stream, undecided", "junk\n5 <1>ab", 0, false, {AGAIN}},
    {"bad prefix, stream, decided", "junk\n5 <1>ab5 <1>cd", 0, false,
     {BAD("junk\n"), OK("<1>ab", 5), OK("<1>cd", 5), END}},
    {"bad prefix, stream, nothing yet", "junk", 0, false, {AGAIN}},
    {"LF framing, stream", "<13>hello\n<14>x\n", 0, false, {LF("<13>hello"), LF("<14>x"), END}},
    {"LF line keeps CR", "<13>hi\r\n", 0, false, {LF("<13>hi\r"), END}},
    {"LF framing waits for newline", "<13>hel", 0, false, {AGAIN}},
    {"LF then octet", "<13>a\n5 <1>ab", 0, false, {LF("<13>a"), OK("<1>ab", 5), END}},
    {"< in final mode is a bad prefix", "<13>hello\n", 0, true, {BAD("<13>hello\n"), END}},
};

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        run_case(&cases[i]);
}

static void test_nul_frame_len(void **state)
{
    static const char in[] = "5 <1>\0b";
    struct sl_frame f;

    (void)state;
    assert_int_equal(sl_frame_next(in, 7, true, &f), 7);
    assert_int_equal(f.kind, SL_FRAME_OK);
    assert_int_equal(f.msg.len, 5);
    assert_memory_equal(f.msg.p, "<1>\0b", 5);
}

/* The framer must read nothing past len: give it an exact-size heap copy (ASan and
 * valgrind see a read past the end) of every prefix of a tricky input. */
static void test_no_read_past_len(void **state)
{
    static const char in[] = "junk\n12 <1>abcdefgh\n9 <1>a\nb\nc\n<13>x\n67108864 ";

    (void)state;
    for (int mode = 0; mode < 2; mode++) {
        for (size_t n = 0; n <= sizeof(in) - 1; n++) {
            char *b = malloc(n ? n : 1);
            struct sl_frame f;
            size_t off = 0;
            int rc;

            assert_non_null(b);
            memcpy(b, in, n);
            while ((rc = sl_frame_next(b + off, n - off, mode == 1, &f)) > 0) {
                off += (size_t)rc;
                assert_true(off <= n);
                assert_true(f.msg.p >= b && f.msg.p + f.msg.len <= b + n);
            }
            assert_true(rc == 0 || rc == SL_EAGAIN);
            if (mode == 1)
                assert_int_equal(rc, 0); /* final mode never says EAGAIN */
            free(b);
        }
    }
}

/* ---- stream mode: every split gives the same frames --------------------------- */

struct rec {
    int kind;
    size_t declared;
    size_t off; /* offset of msg in the stream */
    size_t len;
};

#define MAX_REC 64

/* Feed stream[0..total) in pieces ending at cuts[0..ncuts), then all of it, then flush
 * what is left with final=true as a caller does when the connection ends. */
static size_t feed(const char *stream, size_t total, const size_t *cuts, size_t ncuts,
                   struct rec *out)
{
    size_t consumed = 0, n = 0;
    struct sl_frame f;
    int rc;

    /* Steps: each cut in stream mode, all bytes in stream mode, then the flush. */
    for (size_t c = 0; c <= ncuts + 1; c++) {
        size_t have = c < ncuts ? cuts[c] : total;
        bool final = c == ncuts + 1;

        /* A private copy of exactly the bytes received so far, so a read of a byte
         * not yet "received" is caught by ASan. */
        char *b = malloc(have ? have : 1);
        assert_non_null(b);
        memcpy(b, stream, have);
        while ((rc = sl_frame_next(b + consumed, have - consumed, final, &f)) > 0) {
            assert_true(n < MAX_REC);
            out[n].kind = (int)f.kind;
            out[n].declared = f.declared;
            out[n].off = (size_t)(f.msg.p - b);
            out[n].len = f.msg.len;
            n++;
            consumed += (size_t)rc;
        }
        assert_true(rc == 0 || (rc == SL_EAGAIN && !final));
        free(b);
    }
    return n;
}

static const char split_body[] =
    "69 <190>1 2026-11-21T10:00:00.000000+00:00 host app web.1 - good before\n"
    "<13>an LF-framed line\n"
    "\r\n"
    "9 <1>a\nb\nc\n"
    "5 <1>ab"
    "12x <190>1 garbage\n"
    "7 <1>tail"
    "71 <190>1 2026-11-21T10:00:00.000000+00:00 host app web.1 - after garbage\n"
    "8 <1>la";

static void check_same(const struct rec *a, size_t na, const struct rec *b, size_t nb,
                       const char *what, size_t at)
{
    if (na != nb)
        fail_msg("%s %zu: %zu frames, want %zu", what, at, na, nb);
    for (size_t i = 0; i < na; i++) {
        if (a[i].kind != b[i].kind || a[i].off != b[i].off || a[i].len != b[i].len ||
            a[i].declared != b[i].declared)
            fail_msg("%s %zu: frame %zu differs (kind %d/%d off %zu/%zu len %zu/%zu)", what,
                     at, i, a[i].kind, b[i].kind, a[i].off, b[i].off, a[i].len, b[i].len);
    }
}

static void test_stream_splits(void **state)
{
    const size_t total = sizeof(split_body) - 1;
    struct rec ref[MAX_REC], got[MAX_REC];
    size_t nref, ngot;
    size_t *cuts;

    (void)state;
    nref = feed(split_body, total, NULL, 0, ref);
    /* What the whole stream must give, spelled out once. */
    {
        static const int kinds[] = {SL_FRAME_OK, SL_FRAME_LF, SL_FRAME_OK, SL_FRAME_OK,
                                    SL_FRAME_BAD_PREFIX, SL_FRAME_OK, SL_FRAME_OK,
                                    SL_FRAME_SHORT};
        assert_int_equal(nref, sizeof(kinds) / sizeof(kinds[0]));
        for (size_t i = 0; i < nref; i++)
            assert_int_equal(ref[i].kind, kinds[i]);
        assert_int_equal(ref[4].len, strlen("12x <190>1 garbage\n"));
        assert_memory_equal(split_body + ref[4].off, "12x <190>1 garbage\n", ref[4].len);
        assert_memory_equal(split_body + ref[3].off, "<1>ab", 5);
        assert_memory_equal(split_body + ref[2].off, "<1>a\nb\nc", 8);
    }
    /* One split at every byte position. */
    for (size_t k = 0; k <= total; k++) {
        ngot = feed(split_body, total, &k, 1, got);
        check_same(got, ngot, ref, nref, "split at", k);
    }
    /* Two splits at every pair of positions. */
    for (size_t i = 0; i <= total; i++) {
        for (size_t j = i; j <= total; j += 7) {
            size_t two[2] = {i, j};
            ngot = feed(split_body, total, two, 2, got);
            check_same(got, ngot, ref, nref, "split pair at", i * 1000 + j);
        }
    }
    /* One byte at a time. */
    cuts = malloc(total * sizeof(*cuts));
    assert_non_null(cuts);
    for (size_t k = 0; k < total; k++)
        cuts[k] = k + 1;
    ngot = feed(split_body, total, cuts, total, got);
    check_same(got, ngot, ref, nref, "byte at a time", 0);
    free(cuts);
}

/* ---- corpus ------------------------------------------------------------------- */

static char corpus_root[4096];

static const char *corpus_dir(const char *sub, char *dst, size_t cap)
{
    snprintf(dst, cap, "%s/%s", corpus_root, sub);
    return dst;
}

static void find_corpus(void)
{
    const char *env = getenv("SLUICE_CORPUS");
    char probe[4200];
    DIR *d;

    snprintf(corpus_root, sizeof(corpus_root), "%s",
             env && *env ? env : "tests/fixtures/corpus");
    snprintf(probe, sizeof(probe), "%s/logplex", corpus_root);
    d = opendir(probe);
    if (d != NULL) {
        closedir(d);
        return;
    }
    /* SLUICE_CORPUS may name the logplex directory itself. */
    if (strlen(corpus_root) + 4 < sizeof(corpus_root))
        strcat(corpus_root, "/..");
}

static char *read_file(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    char *b = NULL;
    long n = 0;

    if (fp == NULL)
        fail_msg("cannot open %s", path);
    if (fseek(fp, 0, SEEK_END) != 0 || (n = ftell(fp)) < 0 || fseek(fp, 0, SEEK_SET) != 0)
        fail_msg("cannot size %s", path);
    b = malloc((size_t)n + 1);
    assert_non_null(b);
    if (fread(b, 1, (size_t)n, fp) != (size_t)n)
        fail_msg("short read %s", path);
    fclose(fp);
    *len = (size_t)n;
    return b;
}

static char *gunzip(const char *in, size_t in_len, size_t *out_len)
{
    size_t cap = 1 << 20;
    char *out = malloc(cap);
    z_stream zs;

    assert_non_null(out);
    memset(&zs, 0, sizeof(zs));
    assert_int_equal(inflateInit2(&zs, 16 + MAX_WBITS), Z_OK);
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)in_len;
    zs.next_out = (Bytef *)out;
    zs.avail_out = (uInt)cap;
    assert_int_equal(inflate(&zs, Z_FINISH), Z_STREAM_END);
    *out_len = zs.total_out;
    inflateEnd(&zs);
    return out;
}

struct frames {
    size_t n;
    size_t count[4];
    struct sl_frame f[2048];
};

/* Frame a whole body in final mode; checks the invariants every body must keep. */
static void frame_all(const char *b, size_t len, bool final, struct frames *fs)
{
    size_t off = 0;
    int rc;

    memset(fs, 0, sizeof(*fs));
    while ((rc = sl_frame_next(b + off, len - off, final, &fs->f[fs->n])) > 0) {
        assert_true((int)fs->f[fs->n].kind >= 0 && (int)fs->f[fs->n].kind < 4);
        fs->count[fs->f[fs->n].kind]++;
        off += (size_t)rc;
        assert_true(off <= len);
        fs->n++;
        assert_true(fs->n < 2048);
    }
    if (final) {
        assert_int_equal(rc, 0);
        for (; off < len; off++)
            assert_true(b[off] == '\n' || b[off] == '\r' || b[off] == ' ');
    }
}

static bool msg_eq(const struct sl_frame *f, const char *s)
{
    return f->msg.len == strlen(s) && memcmp(f->msg.p, s, f->msg.len) == 0;
}

static void assert_parses(const struct sl_frame *f, const char *file)
{
    struct sl_syslog s;
    const char *why = NULL;

    if (sl_syslog_parse(f->msg.p, f->msg.len, &s, &why) != 0)
        fail_msg("%s: frame \"%.*s\" does not parse: %s", file, (int)f->msg.len, f->msg.p,
                 why ? why : "?");
}

static void check_logplex_file(const char *name, const char *b, size_t len)
{
    static struct frames fs;
    struct sl_syslog s;
    const char *why;

    if (strcmp(name, "gzip-50-lines.logplex") == 0) {
        size_t ulen;
        char *u;

        assert_true(len > 2 && (unsigned char)b[0] == 0x1f && (unsigned char)b[1] == 0x8b);
        u = gunzip(b, len, &ulen);
        frame_all(u, ulen, true, &fs);
        assert_int_equal(fs.n, 50);
        assert_int_equal(fs.count[SL_FRAME_OK], 50);
        for (size_t i = 0; i < fs.n; i++)
            assert_parses(&fs.f[i], name);
        free(u);
        return;
    }
    frame_all(b, len, true, &fs);
    if (strcmp(name, "bad-length-prefix.logplex") == 0) {
        assert_int_equal(fs.n, 3);
        assert_int_equal(fs.f[0].kind, SL_FRAME_OK);
        assert_true(msg_eq(&fs.f[0], "<190>1 2026-11-21T10:00:00.000000+00:00 host app web.1 - "
                                     "good before"));
        assert_int_equal(fs.f[1].kind, SL_FRAME_BAD_PREFIX);
        assert_true(msg_eq(&fs.f[1], "12x <190>1 garbage\n"));
        assert_int_equal(fs.f[2].kind, SL_FRAME_OK);
        assert_true(msg_eq(&fs.f[2], "<190>1 2026-11-21T10:00:00.000000+00:00 host app web.1 - "
                                     "after garbage"));
        assert_parses(&fs.f[0], name);
        assert_parses(&fs.f[2], name);
    } else if (strcmp(name, "length-beyond-body.logplex") == 0) {
        assert_int_equal(fs.n, 1);
        assert_int_equal(fs.f[0].kind, SL_FRAME_SHORT);
        assert_int_equal(fs.f[0].declared, 1000000);
        assert_int_equal(fs.f[0].msg.len, len - strlen("1000000 "));
    } else if (strcmp(name, "not-syslog.logplex") == 0) {
        assert_int_equal(fs.n, 1);
        assert_int_equal(fs.f[0].kind, SL_FRAME_OK);
        assert_true(msg_eq(&fs.f[0], "just some text that is not syslog at all"));
        why = NULL;
        assert_int_equal(sl_syslog_parse(fs.f[0].msg.p, fs.f[0].msg.len, &s, &why), SL_EPARSE);
        assert_non_null(why);
    } else if (strcmp(name, "heroku-basic.logplex") == 0) {
        int code = 0;

        assert_int_equal(fs.n, 3);
        assert_int_equal(fs.count[SL_FRAME_OK], 3);
        for (size_t i = 0; i < 3; i++)
            assert_parses(&fs.f[i], name);
        /* The L10 notice has no trailing newline and must not swallow anything. */
        assert_int_equal(sl_syslog_parse(fs.f[2].msg.p, fs.f[2].msg.len, &s, &why), 0);
        assert_int_equal(sl_heroku_loss_notice(s.msg, &code), 1);
        assert_int_equal(code, 10);
    } else if (strcmp(name, "invalid-utf8-and-nul.logplex") == 0) {
        assert_int_equal(fs.n, 1);
        assert_int_equal(fs.f[0].kind, SL_FRAME_OK);
        assert_int_equal(fs.f[0].declared, 88);
        assert_int_equal(fs.f[0].msg.len, 87);
        assert_non_null(memchr(fs.f[0].msg.p, '\0', fs.f[0].msg.len));
        assert_parses(&fs.f[0], name);
    } else if (strcmp(name, "max-size-message.logplex") == 0) {
        assert_int_equal(fs.n, 1);
        assert_int_equal(fs.f[0].kind, SL_FRAME_OK);
        assert_int_equal(fs.f[0].declared, 10058);
        assert_parses(&fs.f[0], name);
    } else if (strcmp(name, "no-fraction-ts.logplex") == 0 ||
               strcmp(name, "strict-nil-sd.logplex") == 0 ||
               strcmp(name, "with-sd.logplex") == 0) {
        assert_int_equal(fs.n, 1);
        assert_int_equal(fs.f[0].kind, SL_FRAME_OK);
        assert_parses(&fs.f[0], name);
    } else {
        /* A file added later: it must at least frame into something. */
        assert_true(fs.n > 0);
    }
}

static void test_corpus_logplex(void **state)
{
    static const char *const known[] = {
        "bad-length-prefix.logplex", "gzip-50-lines.logplex", "heroku-basic.logplex",
        "invalid-utf8-and-nul.logplex", "length-beyond-body.logplex",
        "max-size-message.logplex", "no-fraction-ts.logplex", "not-syslog.logplex",
        "strict-nil-sd.logplex", "with-sd.logplex"};
    bool seen[sizeof(known) / sizeof(known[0])] = {false};
    char dir[4200], path[8400];
    struct dirent *de;
    DIR *d;
    int files = 0;

    (void)state;
    corpus_dir("logplex", dir, sizeof(dir));
    d = opendir(dir);
    if (d == NULL)
        fail_msg("corpus directory %s not found (set SLUICE_CORPUS)", dir);
    while ((de = readdir(d)) != NULL) {
        size_t len;
        char *b;

        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        b = read_file(path, &len);
        check_logplex_file(de->d_name, b, len);
        for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
            if (strcmp(known[i], de->d_name) == 0)
                seen[i] = true;
        free(b);
        files++;
    }
    closedir(d);
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (!seen[i])
            fail_msg("corpus file %s missing from %s", known[i], dir);
    assert_true(files >= 10);
}

/* manifest.json: {"app": {"bodies": [{"file": "streams/app/000.logplex", "msg_count": N},
 * ...]}}. A small scan for "file"/"msg_count" pairs keeps this test free of a JSON
 * library. */
static void test_corpus_streams(void **state)
{
    char path[8400];
    size_t mlen, nbodies = 0;
    char *man, *p;

    (void)state;
    snprintf(path, sizeof(path), "%s/streams/manifest.json", corpus_root);
    man = read_file(path, &mlen);
    man[mlen] = '\0';
    for (p = strstr(man, "\"file\""); p != NULL; p = strstr(p, "\"file\"")) {
        static struct frames fs;
        char rel[512], full[9000];
        char *q1, *q2;
        const char *mc;
        long want;
        size_t len;
        char *b;

        q1 = strchr(p + 6, '"');
        assert_non_null(q1);
        q2 = strchr(q1 + 1, '"');
        assert_non_null(q2);
        assert_true((size_t)(q2 - q1 - 1) < sizeof(rel));
        memcpy(rel, q1 + 1, (size_t)(q2 - q1 - 1));
        rel[q2 - q1 - 1] = '\0';
        mc = strstr(q2, "\"msg_count\"");
        assert_non_null(mc);
        mc = strchr(mc + 11, ':');
        assert_non_null(mc);
        want = strtol(mc + 1, NULL, 10);
        assert_true(want > 0);

        snprintf(full, sizeof(full), "%s/%s", corpus_root, rel);
        b = read_file(full, &len);
        frame_all(b, len, true, &fs);
        if ((long)fs.n != want || (long)fs.count[SL_FRAME_OK] != want)
            fail_msg("%s: %zu frames (%zu ok), manifest says %ld", rel, fs.n,
                     fs.count[SL_FRAME_OK], want);
        for (size_t i = 0; i < fs.n; i++) {
            struct sl_syslog s;
            const char *why;

            assert_parses(&fs.f[i], rel);
            assert_int_equal(sl_syslog_parse(fs.f[i].msg.p, fs.f[i].msg.len, &s, &why), 0);
            assert_true(s.has_ts);
            assert_non_null(s.app_name.p);
        }
        /* As a stream the same body gives the same count (the last frame is complete). */
        frame_all(b, len, false, &fs);
        assert_int_equal((long)fs.count[SL_FRAME_OK], want);
        free(b);
        nbodies++;
        p = q2;
    }
    free(man);
    assert_true(nbodies >= 10);
}

/* ---- the syslog stream framer (sl_frame_stream_*) ---------------------------------- */

#define SMAX 10 /* max_message of these cases: window 26 bytes */

struct smsg {
    int kind;
    const char *msg;
    uint32_t orig_len;
};

struct stream_case {
    const char *name;
    const char *in;
    struct smsg exp[8]; /* terminated by kind K_END */
};

static const struct stream_case stream_cases[] = {
    {"octet frames", "5 <1>ab3 <2>",
     {{SL_FRAME_OK, "<1>ab", 5}, {SL_FRAME_OK, "<2>", 3}, {K_END, NULL, 0}}},
    {"LF lines (a CR before the LF stays)", "<1>a\n<2>b\r\n",
     {{SL_FRAME_LF, "<1>a", 4}, {SL_FRAME_LF, "<2>b\r", 5}, {K_END, NULL, 0}}},
    {"octet frame over the limit: head kept, rest skipped, next frame kept",
     "30 <1>aaaaaaaaaaaaaaaaaaaaaaaaaaa4 <2>x",
     {{SL_FRAME_OK, "<1>aaaaaaa", 30}, {SL_FRAME_OK, "<2>x", 4}, {K_END, NULL, 0}}},
    {"huge declared length: orig_len saturates",
     "9999999999 <1>aaaaaaaaaa",
     {{SL_FRAME_OK, "<1>aaaaaaa", UINT32_MAX}, {K_END, NULL, 0}}},
    {"line without framing: its own message, newline framed", "hello\n<1>a\n",
     {{SL_FRAME_BAD_PREFIX, "hello", 5}, {SL_FRAME_LF, "<1>a", 4}, {K_END, NULL, 0}}},
    {"unframed line CRLF", "hi\r\n3 <1>",
     {{SL_FRAME_BAD_PREFIX, "hi", 2}, {SL_FRAME_OK, "<1>", 3}, {K_END, NULL, 0}}},
    {"unframed line over the window: cut, rest of the line skipped",
     "abcdefghijklmnopqrstuvwxyz0123456789\n<1>a\n",
     {{SL_FRAME_BAD_PREFIX, "abcdefghij", 11}, {SL_FRAME_LF, "<1>a", 4}, {K_END, NULL, 0}}},
    {"LF line over the window: cut, rest skipped",
     "<1>abcdefghijklmnopqrstuvwxyz0123456789\n<2>b\n",
     {{SL_FRAME_LF, "<1>abcdefg", 11}, {SL_FRAME_LF, "<2>b", 4}, {K_END, NULL, 0}}},
    {"whitespace between frames", "\n\r 3 <1>\n\n",
     {{SL_FRAME_OK, "<1>", 3}, {K_END, NULL, 0}}},
    {"end of stream: an unterminated LF line is still a line", "<1>abc",
     {{SL_FRAME_LF, "<1>abc", 6}, {K_END, NULL, 0}}},
    {"end of stream: a short octet frame", "9 <1>ab",
     {{SL_FRAME_SHORT, "9 <1>ab", 7}, {K_END, NULL, 0}}},
    {"end of stream: unframed rest", "3 <1>tail",
     {{SL_FRAME_OK, "<1>", 3}, {SL_FRAME_SHORT, "tail", 4}, {K_END, NULL, 0}}},
    {"leading zero is no prefix", "0 <1>\n",
     {{SL_FRAME_BAD_PREFIX, "0 <1>", 5}, {K_END, NULL, 0}}},
    {"empty stream", "", {{K_END, NULL, 0}}},
};

struct smsgs {
    struct smsg m[16];
    char store[16][64];
    size_t n;
};

static void stream_add(struct smsgs *out, const struct sl_frame_step *step)
{
    assert_true(out->n < 16);
    assert_true(step->f.msg.len < 64);
    memcpy(out->store[out->n], step->f.msg.p, step->f.msg.len);
    out->store[out->n][step->f.msg.len] = '\0';
    out->m[out->n].kind = (int)step->f.kind;
    out->m[out->n].msg = out->store[out->n];
    out->m[out->n].orig_len = step->orig_len;
    out->n++;
}

/* Feed in (len bytes) cut at cut, as a connection would: frame what is buffered after
 * each piece, then the rest at the end of the stream. */
static void stream_run(const char *in, size_t len, size_t cut, struct smsgs *out)
{
    struct sl_frame_stream st = {.max_message = SMAX};
    char buf[256];
    size_t have = 0, fed = 0;
    struct sl_frame_step step;

    memset(out, 0, sizeof(*out));
    assert_true(len < sizeof(buf));
    for (int piece = 0; piece < 2; piece++) {
        size_t upto = piece == 0 ? cut : len;
        memcpy(buf + have, in + fed, upto - fed);
        have += upto - fed;
        fed = upto;
        while (sl_frame_stream_next(&st, buf, have, &step) == 1) {
            assert_true(step.eat > 0 && step.eat <= have);
            if (step.has_msg)
                stream_add(out, &step);
            sl_frame_stream_take(&st, &step);
            memmove(buf, buf + step.eat, have - step.eat);
            have -= step.eat;
        }
    }
    if (sl_frame_stream_rest(&st, buf, have, &step) == 1) {
        assert_true(step.has_msg);
        stream_add(out, &step);
    }
}

static void test_stream_framer(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(stream_cases) / sizeof(stream_cases[0]); i++) {
        const struct stream_case *c = &stream_cases[i];
        size_t len = strlen(c->in);

        for (size_t cut = 0; cut <= len; cut++) {
            struct smsgs got;
            size_t k = 0;

            stream_run(c->in, len, cut, &got);
            for (; c->exp[k].kind != K_END; k++) {
                if (k >= got.n)
                    fail_msg("%s (cut %zu): message %zu missing", c->name, cut, k);
                if (got.m[k].kind != c->exp[k].kind || strcmp(got.m[k].msg, c->exp[k].msg) != 0 ||
                    got.m[k].orig_len != c->exp[k].orig_len)
                    fail_msg("%s (cut %zu): message %zu is kind %d \"%s\" orig %u, want %d \"%s\" %u",
                             c->name, cut, k, got.m[k].kind, got.m[k].msg, got.m[k].orig_len,
                             c->exp[k].kind, c->exp[k].msg, c->exp[k].orig_len);
            }
            if (got.n != k)
                fail_msg("%s (cut %zu): %zu messages, want %zu", c->name, cut, got.n, k);
        }
    }
}

/* A step that is not taken changes nothing: the same bytes give the same step. */
static void test_stream_step_not_taken(void **state)
{
    struct sl_frame_stream st = {.max_message = SMAX};
    const char *in = "abcdefghijklmnopqrstuvwxyz0123456789\n";
    struct sl_frame_step a, b;
    (void)state;

    assert_int_equal(sl_frame_stream_next(&st, in, strlen(in), &a), 1);
    assert_true(a.has_msg && a.skip_line);
    assert_false(st.skip_line);
    assert_int_equal(sl_frame_stream_next(&st, in, strlen(in), &b), 1);
    assert_int_equal(a.eat, b.eat);
    assert_int_equal(sl_frame_stream_window(&st), SMAX + 16);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_nul_frame_len),
        cmocka_unit_test(test_no_read_past_len),
        cmocka_unit_test(test_stream_splits),
        cmocka_unit_test(test_corpus_logplex),
        cmocka_unit_test(test_corpus_streams),
        cmocka_unit_test(test_stream_framer),
        cmocka_unit_test(test_stream_step_not_taken),
    };

    find_corpus();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
