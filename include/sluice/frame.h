/* Octet-counted syslog framing (RFC 6587 §3.4.1, RFC 5425 §4.3), as logplex sends
 * it in HTTPS drain bodies and as syslog+TLS senders stream it; and the stream framer
 * of syslog connections (message size limit, skipping, end of stream).
 *
 * Pure: no I/O, no allocation. Never splits on newlines inside an octet-counted
 * frame. Recovers from a bad length prefix by resynchronising on the next
 * plausible frame, so good frames around a bad one are kept. */
#ifndef SLUICE_FRAME_H
#define SLUICE_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/err.h"

#include "sluice/str.h"

enum sl_frame_kind {
    SL_FRAME_OK = 0,     /* an octet-counted frame */
    SL_FRAME_LF,         /* non-transparent framing (RFC 6587 §3.4.2): a line that
                            started with '<', ended by '\n' (stream mode only) */
    SL_FRAME_BAD_PREFIX, /* bytes that do not start with a valid length prefix;
                            msg covers them up to the next plausible frame start */
    SL_FRAME_SHORT,      /* final mode: the declared length runs past the end of the
                            data; msg covers everything after the prefix */
};

struct sl_frame {
    enum sl_frame_kind kind;
    struct sl_str msg;  /* the message; for OK/LF at most one trailing '\n' is
                           stripped; for BAD_PREFIX the raw skipped bytes */
    size_t declared;    /* the length the prefix declared (OK, SHORT), else 0 */
};

/* Largest length prefix accepted: more digits than this, or a value above
 * SL_FRAME_MAX_DECLARED, is a bad prefix. */
#define SL_FRAME_MAX_DIGITS 9
#define SL_FRAME_MAX_DECLARED (64u * 1024u * 1024u)

/* Parse the next frame at the start of buf.
 *
 * final:  true when buf holds all the data there will be (an HTTP body). Then
 *         SL_EAGAIN is never returned: a frame whose length runs past the end comes
 *         back as SL_FRAME_SHORT, consuming all of buf.
 *         false for a stream (syslog over TCP/TLS): an incomplete frame returns
 *         SL_EAGAIN; the caller reads more and calls again with the same start.
 *         In stream mode a line starting with '<' is taken as non-transparent
 *         framing and returned as SL_FRAME_LF once its '\n' has arrived.
 *
 * A bad prefix (not digits, no SP after them, too many digits, zero) returns
 * SL_FRAME_BAD_PREFIX with msg covering the bytes up to the next position that
 * starts a plausible frame: "<digits> <" at the start of a line (in final mode also
 * right after a space, as in "0 78 <190>1 ...") whose declared
 * frame either ends exactly at the end of buf (final mode) or is followed by
 * another "<digits> " prefix. If no such position exists, the rest of buf is the
 * bad frame (final mode), or SL_EAGAIN while fewer than SL_FRAME_MAX_DECLARED bytes
 * are buffered (stream mode).
 *
 * Leading '\n' / '\r' / ' ' bytes between frames are skipped (counted in the
 * return value) and never reported as a frame.
 *
 * Returns the number of bytes consumed (> 0) and fills *f; 0 when buf holds only
 * skippable whitespace (or len == 0); SL_EAGAIN as above. */
int sl_frame_next(const char *buf, size_t len, bool final, struct sl_frame *f);

/* A syslog stream (TCP or TLS) with a message size limit: sl_frame_next in stream mode,
 * plus what a stream needs around it. Octet counting or LF framing for lines that start
 * with '<' (RFC 6587); anything else is taken line by line as SL_FRAME_BAD_PREFIX. A
 * message over max_message is returned cut, with its length as sent, and the rest of it
 * is skipped, never buffered: a connection's memory stays bounded and nothing around the
 * long message is lost. */
struct sl_frame_stream {
    size_t max_message;  /* set by the caller */
    uint64_t skip_bytes; /* private: rest of an over-long octet-counted frame to discard */
    bool skip_line;      /* private: rest of an over-long line to discard, to its '\n' */
};

/* One step over the stream: bytes to consume, maybe a message, the state after it. */
struct sl_frame_step {
    size_t eat;          /* bytes at the start of buf this step consumes */
    bool has_msg;        /* f and orig_len hold a message */
    struct sl_frame f;   /* kind OK, LF, BAD_PREFIX or SHORT; msg may run up to the
                            window: store at most max_message bytes of it */
    uint32_t orig_len;   /* the message's length as sent (> f.msg.len when it was cut) */
    uint64_t skip_bytes; /* the stream's state once the step is taken */
    bool skip_line;
};

/* The window the stream framer looks at: pass min(buffered, this) bytes. */
size_t sl_frame_stream_window(const struct sl_frame_stream *st);

/* The next step over buf (the bytes the stream has buffered, at most the window: more
 * is ignored). Nothing changes until the caller takes the step with
 * sl_frame_stream_take (and drops step->eat bytes); a caller that cannot store the
 * message now simply calls again later with the same bytes.
 * Returns 1 and *step, or SL_EAGAIN when more bytes are needed. */
SL_MUSTCHECK int sl_frame_stream_next(const struct sl_frame_stream *st, const char *buf,
                                      size_t len, struct sl_frame_step *step);

/* The peer closed: what is left (buf, at most the window) is one last message up to its
 * first '\n', kind SL_FRAME_LF when it starts with '<', else SL_FRAME_SHORT. Call after
 * sl_frame_stream_next returned SL_EAGAIN. Returns 1 and *step, or SL_EAGAIN when nothing
 * is left to store (len 0, or the rest of a skipped message). */
SL_MUSTCHECK int sl_frame_stream_rest(const struct sl_frame_stream *st, const char *buf,
                                      size_t len, struct sl_frame_step *step);

/* Take a step: the stream's state moves on (the caller drops step->eat bytes). */
void sl_frame_stream_take(struct sl_frame_stream *st, const struct sl_frame_step *step);

#endif
