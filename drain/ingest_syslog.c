/* The syslog protocol (drain/conn-internal.h): syslog over TCP and TLS streams.
 *
 * Frames what a stream holds with the stream framer of drain/frame.c (octet counting,
 * LF framing for lines starting with '<', anything else line by line; over-long
 * messages cut, their rest skipped), finds each message's source from its HOSTNAME
 * (`d.<token>` or a registered Heroku drain token, drain/sources.c) and batches
 * consecutive messages of one source into one spool entry. Syslog has no
 * acknowledgement: durability is the spool's, and backpressure is TCP's (reading stops
 * while the spool is full, the source table was never loaded or the disk guard refuses
 * ingest, retried by timer).
 *
 * Leaves to others: sockets, idle timeouts and closing (drain/listen.c), framing
 * (drain/frame.c), parsing the HOSTNAME (drain/rfc5424.c), the record format
 * (drain/entry.c). Thread: the event loop (main thread).
 * Specs: RFC 6587 (syslog over TCP), RFC 5425 (over TLS), RFC 5424 (HOSTNAME). */
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "sluice/clock.h"
#include "sluice/diskguard.h"
#include "sluice/entry.h"
#include "sluice/log.h"
#include "sluice/metrics.h"
#include "sluice/rfc5424.h"
#include "sluice/sources.h"
#include "sluice/spool.h"

#include "conn-internal.h"

void sl_ingest_syslog_init(struct conn *c)
{
    c->sys.fs.max_message = (size_t)c->srv->cfg->max_message;
}

static void syslog_retry(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    (void)fd;
    (void)what;
    sl_ingest_syslog_flush(c);
    if (!c->sys.entry_pending) {
        bufferevent_enable(c->bev, EV_READ);
        sl_ingest_syslog_read(c->bev, c);
    }
}

/* Backpressure: stop reading this connection; try again after tv. */
static void retry_later(struct conn *c, struct timeval tv)
{
    bufferevent_disable(c->bev, EV_READ);
    if (c->sys.retry_timer == NULL)
        c->sys.retry_timer = evtimer_new(c->srv->base, syslog_retry, c);
    if (c->sys.retry_timer)
        evtimer_add(c->sys.retry_timer, &tv);
}

void sl_ingest_syslog_flush(struct conn *c)
{
    struct syslog_conn *y = &c->sys;
    struct iovec iov;
    uint64_t lsn;
    int rc;

    if (y->entry_n == 0)
        return;
    if (!y->entry_pending)
        sl_entry_finish(&c->entry, y->entry_n);
    iov.iov_base = c->entry.p;
    iov.iov_len = c->entry.len;
    rc = sl_spool_appendv(c->srv->spool, &iov, 1, &lsn);
    if (rc == SL_EFULL || rc == SL_EIO) {
        y->entry_pending = true;
        retry_later(c, (struct timeval){0, 200000});
        return;
    }
    SL_INC(lines_accepted, y->entry_n);
    note_spooled(sl_clock_real_us());
    SL_INC(syslog_lines, y->entry_n);
    y->entry_pending = false;
    y->entry_n = 0;
    sl_buf_reset(&c->entry);
}

/* The source of a message, from its HOSTNAME; a message without a readable one belongs
 * to the source of the one before it. The last lookup is reused while the HOSTNAME and
 * the source table stay the same. */
static int64_t syslog_source(struct conn *c, const struct sl_frame *f)
{
    struct syslog_conn *y = &c->sys;
    struct sl_syslog m;
    const char *why;

    if (f->kind != SL_FRAME_OK && f->kind != SL_FRAME_LF)
        return y->last_src;
    if (sl_syslog_parse(f->msg.p, f->msg.len, &m, &why) != 0 || m.hostname.p == NULL)
        return y->last_src;
    if (m.hostname.len == y->last_host_len && y->last_src &&
        y->last_gen == sl_sources_generation(c->srv->sources) &&
        memcmp(m.hostname.p, y->last_host, m.hostname.len) == 0)
        return y->last_src;
    y->last_gen = sl_sources_generation(c->srv->sources);
    y->last_src =
        sl_sources_by_host(c->srv->sources, m.hostname.p, m.hostname.len, &y->last_secret);
    y->last_host_len = m.hostname.len < sizeof(y->last_host) ? m.hostname.len : 0;
    memcpy(y->last_host, m.hostname.p, y->last_host_len);
    return y->last_src;
}

/* Add one message to the connection's pending entry. Returns false when it could not be
 * taken now (the spool is full: retried later, nothing consumed); true when it was taken
 * or refused for good (no such source: counted, as syslog has no way to answer). */
static bool syslog_take(struct conn *c, const struct sl_frame *f, uint32_t orig_len)
{
    struct server *s = c->srv;
    struct syslog_conn *y = &c->sys;
    int64_t src = syslog_source(c, f);
    uint32_t mlen = (uint32_t)f->msg.len;
    uint8_t flags = 0;

    if (src == 0) {
        int64_t t = sl_clock_real_us();
        SL_INC(syslog_unknown_source, 1);
        if (t - s->last_unknown_warn > 10 * 1000000LL) {
            s->last_unknown_warn = t;
            sl_warn("syslog line for no known source refused",
                    "hint=\"hostname must be d.<source token> or a registered drain token\"");
        }
        return true;
    }
    if (!c->authed) /* a line of a known source: the head deadline is met */
        sl_conn_authed(c);
    if (y->entry_n && (y->entry_src != src || y->entry_secret != y->last_secret))
        sl_ingest_syslog_flush(c);
    if (y->entry_pending)
        return false;
    if (y->entry_n == 0) {
        struct sl_entry e;
        memset(&e, 0, sizeof(e));
        e.kind = SL_ENTRY_SYSLOG;
        e.flags = y->last_secret ? SL_ENTRY_HOST_IS_TOKEN : 0;
        y->entry_secret = y->last_secret;
        e.source_id = src;
        e.received_us = sl_clock_real_us();
        if (sl_entry_begin(&c->entry, &e))
            return false;
        y->entry_src = src;
    }
    if (f->kind == SL_FRAME_BAD_PREFIX)
        flags |= SL_MSG_BAD_PREFIX;
    if (mlen > (uint32_t)s->cfg->max_message)
        mlen = (uint32_t)s->cfg->max_message;
    if (mlen < orig_len)
        flags |= SL_MSG_TRUNCATED;
    if (sl_entry_add(&c->entry, f->msg.p, mlen, orig_len, flags)) {
        sl_ingest_syslog_flush(c);
        return false;
    }
    y->entry_n++;
    if (c->entry.len > (1u << 20))
        sl_ingest_syslog_flush(c);
    return true;
}

/* Store a step's message (if any) and consume its bytes. Returns false when the message
 * could not be taken now: nothing consumed, the stream's state unchanged. */
static bool take_step(struct conn *c, struct evbuffer *in, const struct sl_frame_step *step)
{
    if (step->has_msg && !syslog_take(c, &step->f, step->orig_len))
        return false;
    sl_frame_stream_take(&c->sys.fs, step);
    evbuffer_drain(in, step->eat);
    return true;
}

/* Frame and take what the input holds, as far as the spool takes it. */
static void read_input(struct conn *c, struct evbuffer *in)
{
    size_t window = sl_frame_stream_window(&c->sys.fs);

    while (!c->sys.entry_pending) {
        size_t avail = evbuffer_get_length(in);
        size_t n = avail < window ? avail : window;
        struct sl_frame_step step;
        const char *p;

        if (avail == 0)
            break;
        p = (const char *)evbuffer_pullup(in, (ev_ssize_t)n);
        if (sl_frame_stream_next(&c->sys.fs, p, n, &step) != 1 || !take_step(c, in, &step))
            break;
    }
    sl_ingest_syslog_flush(c);
}

void sl_ingest_syslog_read(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;

    if (sl_sources_generation(c->srv->sources) == 0) {
        /* the source table was never loaded: hold the stream (TCP backpressure) */
        retry_later(c, (struct timeval){1, 0});
        return;
    }
    if (atomic_load_explicit(&sl_metrics.disk_state, memory_order_relaxed) ==
        SL_DISK_REFUSING) {
        /* the disk guard refuses ingest: stop reading (the sender's TCP window fills and it
         * waits), look again in a second; what was already read is spooled, never dropped */
        SL_INC(disk_syslog_paused, 1);
        sl_ingest_syslog_flush(c);
        retry_later(c, (struct timeval){1, 0});
        return;
    }
    read_input(c, bufferevent_get_input(bev));
}

/* The peer closed: what is left without its terminator is still a line. */
void sl_ingest_syslog_eof(struct conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t window = sl_frame_stream_window(&c->sys.fs);
    size_t n;

    /* What the peer sent before closing is taken even while the disk guard refuses: the
     * connection ends here, and those bytes would otherwise be lost. */
    if (sl_sources_generation(c->srv->sources) != 0)
        read_input(c, in);
    n = evbuffer_get_length(in);
    if (n > 0 && !c->sys.entry_pending) {
        struct sl_frame_step step;
        size_t w = n < window ? n : window;
        const char *p = (const char *)evbuffer_pullup(in, (ev_ssize_t)w);

        if (sl_frame_stream_rest(&c->sys.fs, p, w, &step) == 1)
            (void)take_step(c, in, &step);
    }
    sl_ingest_syslog_flush(c);
}
