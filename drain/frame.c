/* Frame splitter: octet-counted syslog frames ("<len> SP <len bytes>") as logplex puts
 * them in HTTPS drain bodies and syslog+TLS senders stream them, plus non-transparent
 * (LF) framing on streams. Gives slices into the caller's buffer.
 *
 * The stream framer (sl_frame_stream_*) adds what a syslog connection needs around
 * sl_frame_next: the message size limit (a long message is cut and its rest skipped),
 * lines without framing, and the rest of the stream at its end. It decides steps; the
 * caller takes one only once it could store its message (drain/ingest_syslog.c).
 *
 * Leaves to others: decompression, HTTP chunking, buffering of a stream (the caller
 * keeps unconsumed bytes and calls again), parsing the message (rfc5424.c).
 * Thread: pure function, any thread. No I/O, no allocation, no global state.
 * Spec: RFC 6587 §3.4.1 (octet counting, MSG-LEN = NONZERO-DIGIT *DIGIT) and §3.4.2
 * (non-transparent framing), RFC 5425 §4.3. Contract in include/sluice/frame.h.
 *
 * Hot path (a good frame): skip whitespace, read at most 9 digits, one bounds check on
 * the declared length, one look at the last byte. The resynchronisation scan after a
 * bad prefix uses memchr and only runs on bad input. */
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "sluice/err.h"
#include "sluice/frame.h"

/* Result of reading a length prefix at some position. */
enum prefix_rc {
    PREFIX_OK,      /* digits then SP, value in range */
    PREFIX_BAD,     /* can never be a prefix */
    PREFIX_PARTIAL, /* a valid prefix so far, but buf ends before the SP */
};

static inline int is_skip(unsigned char c)
{
    return c == '\n' || c == '\r' || c == ' ';
}

/* Read "<NONZERO-DIGIT *DIGIT> SP" at buf[i]. On PREFIX_OK, *n is the value and
 * *body the index just after the SP. */
static inline enum prefix_rc read_prefix(const char *buf, size_t len, size_t i, size_t *n,
                                         size_t *body)
{
    size_t v = 0;
    size_t k;

    if (i >= len)
        return PREFIX_PARTIAL;
    if (buf[i] < '1' || buf[i] > '9')
        return PREFIX_BAD;
    for (k = 0; k < SL_FRAME_MAX_DIGITS; k++) {
        unsigned char c;

        if (i + k >= len)
            return PREFIX_PARTIAL;
        c = (unsigned char)buf[i + k];
        if (c == ' ') {
            if (v > SL_FRAME_MAX_DECLARED)
                return PREFIX_BAD;
            *n = v;
            *body = i + k + 1;
            return PREFIX_OK;
        }
        if (c < '0' || c > '9')
            return PREFIX_BAD;
        v = v * 10 + (size_t)(c - '0');
    }
    /* SL_FRAME_MAX_DIGITS digits read; only a SP may follow. */
    if (i + k >= len)
        return PREFIX_PARTIAL;
    if (buf[i + k] != ' ' || v > SL_FRAME_MAX_DECLARED)
        return PREFIX_BAD;
    *n = v;
    *body = i + k + 1;
    return PREFIX_OK;
}

enum plaus {
    PLAUS_YES,
    PLAUS_NO,
    PLAUS_UNKNOWN, /* stream mode: the bytes that would decide have not arrived */
};

/* Is buf[q] a plausible frame start (see frame.h): "<digits> <" whose declared
 * frame ends exactly at the end of buf (final mode) or is followed by another
 * "<digits> " prefix. Whitespace the framer would skip is allowed between the two. */
static enum plaus plausible_at(const char *buf, size_t len, size_t q, bool final)
{
    size_t n, body, end, n2, body2;
    enum prefix_rc r;

    r = read_prefix(buf, len, q, &n, &body);
    if (r == PREFIX_BAD)
        return PLAUS_NO;
    if (r == PREFIX_PARTIAL)
        return final ? PLAUS_NO : PLAUS_UNKNOWN;
    if (body >= len)
        return final ? PLAUS_NO : PLAUS_UNKNOWN;
    if (buf[body] != '<')
        return PLAUS_NO;
    if (n > len - body)
        return final ? PLAUS_NO : PLAUS_UNKNOWN;
    end = body + n;
    while (end < len && is_skip((unsigned char)buf[end]))
        end++;
    if (end == len)
        return final ? PLAUS_YES : PLAUS_UNKNOWN;
    r = read_prefix(buf, len, end, &n2, &body2);
    if (r == PREFIX_OK)
        return PLAUS_YES;
    if (r == PREFIX_PARTIAL)
        return final ? PLAUS_NO : PLAUS_UNKNOWN;
    return PLAUS_NO;
}

/* Bad prefix at buf[p]: report the bytes up to the next plausible frame start. */
static int bad_prefix(const char *buf, size_t len, size_t p, bool final, struct sl_frame *f)
{
    size_t q = p;
    size_t first_unknown = 0;
    bool have_unknown = false;
    bool enough = final || len >= SL_FRAME_MAX_DECLARED;

    if (final) {
        /* A whole body: a frame may also start right after a space inside the garbage
         * ("0 78 <190>1 ..."), not only at a line start. The chain check of
         * plausible_at (the frame ends exactly at the end of the body or is followed by
         * another prefix) keeps text that merely looks like a prefix from counting. */
        for (q = p + 1; q < len; q++) {
            if ((buf[q - 1] == ' ' || buf[q - 1] == '\n') && buf[q] >= '1' && buf[q] <= '9' &&
                plausible_at(buf, len, q, final) == PLAUS_YES)
                goto found;
        }
        q = len;
        goto found;
    }
    for (;;) {
        const char *nl = memchr(buf + q, '\n', len - q);
        enum plaus pl;

        if (nl == NULL)
            break;
        q = (size_t)(nl - buf) + 1;
        if (q >= len) {
            if (!final && !have_unknown) {
                have_unknown = true;
                first_unknown = q;
            }
            break;
        }
        pl = plausible_at(buf, len, q, final);
        if (pl == PLAUS_YES)
            goto found;
        if (pl == PLAUS_UNKNOWN) {
            /* Deciding needs more bytes. Waiting keeps the result independent of
             * how the stream was split; with the buffer at its cap, give up on it. */
            if (!enough)
                return SL_EAGAIN;
            if (!have_unknown) {
                have_unknown = true;
                first_unknown = q;
            }
        }
    }
    if (!enough)
        return SL_EAGAIN;
    /* Stream at its cap: cut before the first undecided candidate so a frame that is
     * still arriving is not thrown away with the garbage. */
    q = have_unknown && first_unknown > p ? first_unknown : len;
found:
    f->kind = SL_FRAME_BAD_PREFIX;
    f->msg = sl_str_make(buf + p, q - p);
    f->declared = 0;
    return (int)q;
}

int sl_frame_next(const char *buf, size_t len, bool final, struct sl_frame *f)
{
    size_t p = 0;
    size_t n, body;
    enum prefix_rc r;

    /* The return value is an int; a larger window is handled in pieces. Callers cap
     * bodies far below this, so the only effect is that a body over 2 GiB is framed
     * as a stream (a frame straddling the 2 GiB mark comes back as SL_EAGAIN). */
    if (len > (size_t)INT_MAX) {
        len = (size_t)INT_MAX;
        final = false;
    }
    while (p < len && is_skip((unsigned char)buf[p]))
        p++;
    if (p == len)
        return 0;

    if (!final && buf[p] == '<') {
        const char *nl = memchr(buf + p, '\n', len - p);
        size_t end;

        if (nl == NULL) {
            if (len - p < SL_FRAME_MAX_DECLARED)
                return SL_EAGAIN;
            /* A line this long is cut at the cap rather than buffered forever. */
            end = p + SL_FRAME_MAX_DECLARED;
            f->kind = SL_FRAME_LF;
            f->msg = sl_str_make(buf + p, end - p);
            f->declared = 0;
            return (int)end;
        }
        end = (size_t)(nl - buf);
        f->kind = SL_FRAME_LF;
        f->msg = sl_str_make(buf + p, end - p);
        f->declared = 0;
        return (int)(end + 1);
    }

    r = read_prefix(buf, len, p, &n, &body);
    if (r == PREFIX_OK) {
        if (n <= len - body) {
            size_t mlen = n;

            if (mlen > 0 && buf[body + mlen - 1] == '\n')
                mlen--;
            f->kind = SL_FRAME_OK;
            f->msg = sl_str_make(buf + body, mlen);
            f->declared = n;
            return (int)(body + n);
        }
        if (!final)
            return SL_EAGAIN;
        f->kind = SL_FRAME_SHORT;
        f->msg = sl_str_make(buf + body, len - body);
        f->declared = n;
        return (int)len;
    }
    if (r == PREFIX_PARTIAL && !final)
        return SL_EAGAIN;
    return bad_prefix(buf, len, p, final, f);
}

/* ---------------------------------------------------------------- syslog streams */

size_t sl_frame_stream_window(const struct sl_frame_stream *st)
{
    return st->max_message + 16;
}

/* The declared length of an octet-counted prefix at p ("123 "), with its length in
 * *plen; 0 when p does not start with one. Up to 10 digits and no upper bound (unlike
 * read_prefix): a frame over the message limit is cut, whatever length it declares. */
static uint64_t long_prefix(const char *p, size_t n, size_t *plen)
{
    uint64_t v = 0;
    size_t i = 0;

    while (i < n && i < 10 && p[i] >= '0' && p[i] <= '9')
        v = v * 10 + (uint64_t)(p[i++] - '0');
    if (i == 0 || i >= n || p[i] != ' ' || p[0] == '0')
        return 0;
    *plen = i + 1;
    return v;
}

/* A line with no usable framing: up to its newline, or cut at the message limit when
 * the window is full or the stream ended (the rest of an over-long line is then
 * skipped). Returns false when more bytes are needed. */
static bool line_step(const struct sl_frame_stream *st, const char *p, size_t n, bool at_eof,
                      enum sl_frame_kind kind, struct sl_frame_step *step)
{
    const char *nl = memchr(p, '\n', n);
    bool skip = false;
    size_t len, eat;

    if (nl) {
        len = (size_t)(nl - p);
        eat = len + 1;
        if (len && p[len - 1] == '\r')
            len--;
    } else if (n >= sl_frame_stream_window(st) || at_eof) {
        len = n > st->max_message ? st->max_message : n;
        eat = len;
        skip = !at_eof; /* the rest of this over-long line is not a new message */
    } else {
        return false;
    }
    step->eat = eat;
    step->has_msg = true;
    step->f.kind = kind;
    step->f.msg = sl_str_make(p, len);
    step->f.declared = 0;
    /* one byte more than stored marks a cut line as truncated */
    step->orig_len = (uint32_t)(len + (skip ? 1 : 0));
    step->skip_line = skip;
    return true;
}

static void step_init(const struct sl_frame_stream *st, struct sl_frame_step *step)
{
    memset(step, 0, sizeof(*step));
    step->skip_bytes = st->skip_bytes;
    step->skip_line = st->skip_line;
}

int sl_frame_stream_next(const struct sl_frame_stream *st, const char *buf, size_t len,
                         struct sl_frame_step *step)
{
    size_t cap = sl_frame_stream_window(st);
    size_t n = len < cap ? len : cap, plen = 0;
    uint64_t declared;
    int k;

    step_init(st, step);
    if (n == 0)
        return SL_EAGAIN;
    if (st->skip_bytes > 0) {
        step->eat = n < st->skip_bytes ? n : (size_t)st->skip_bytes;
        step->skip_bytes -= step->eat;
        return 1;
    }
    if (st->skip_line) {
        const char *nl = memchr(buf, '\n', n);
        step->eat = nl ? (size_t)(nl - buf) + 1 : n;
        step->skip_line = nl == NULL;
        return 1;
    }
    declared = long_prefix(buf, n, &plen);
    if (declared > st->max_message) {
        /* an octet-counted frame over the limit: keep its head, skip the rest */
        if (n < plen + st->max_message)
            return SL_EAGAIN;
        step->eat = plen + st->max_message;
        step->has_msg = true;
        step->f.kind = SL_FRAME_OK;
        step->f.msg = sl_str_make(buf + plen, st->max_message);
        step->f.declared = declared > SIZE_MAX ? SIZE_MAX : (size_t)declared;
        step->orig_len = declared > UINT32_MAX ? UINT32_MAX : (uint32_t)declared;
        step->skip_bytes = declared - st->max_message;
        return 1;
    }
    if (declared == 0 && !is_skip((unsigned char)buf[0]) && buf[0] != '<')
        return line_step(st, buf, n, false, SL_FRAME_BAD_PREFIX, step) ? 1 : SL_EAGAIN;
    k = sl_frame_next(buf, n, false, &step->f);
    if (k == SL_EAGAIN) {
        /* an LF-framed line, or garbage waiting for a resync, over the limit */
        if (n >= cap &&
            line_step(st, buf, n, false, buf[0] == '<' ? SL_FRAME_LF : SL_FRAME_BAD_PREFIX,
                      step))
            return 1;
        return SL_EAGAIN;
    }
    if (k <= 0) {
        step->eat = n; /* only whitespace */
        return 1;
    }
    step->eat = (size_t)k;
    step->has_msg = true;
    step->orig_len = (uint32_t)step->f.msg.len;
    return 1;
}

int sl_frame_stream_rest(const struct sl_frame_stream *st, const char *buf, size_t len,
                         struct sl_frame_step *step)
{
    size_t cap = sl_frame_stream_window(st);
    size_t n = len < cap ? len : cap;

    step_init(st, step);
    if (n == 0 || st->skip_bytes > 0 || st->skip_line)
        return SL_EAGAIN;
    (void)line_step(st, buf, n, true, buf[0] == '<' ? SL_FRAME_LF : SL_FRAME_SHORT, step);
    return 1;
}

void sl_frame_stream_take(struct sl_frame_stream *st, const struct sl_frame_step *step)
{
    st->skip_bytes = step->skip_bytes;
    st->skip_line = step->skip_line;
}
