/* Process start-up and shutdown of `sluice serve` (include/sluice/server.h).
 *
 * Opens the spool and starts every thread of the process: the spool syncer
 * (drain/spool.c), the writer (drain/writer.c), maintenance (drain/maint.c), the alert
 * notifier (rules/notifier.c) and the read API's workers and tail thread (drain/api.c);
 * then the event loop, its listeners (drain/listen.c) and signals. SIGTERM or SIGINT
 * starts a graceful drain: listeners close, connections finish what they hold (half the
 * grace period), then the writer gets the rest to empty the spool.
 *
 * Leaves to others: sockets and connections (drain/listen.c), the protocols
 * (drain/ingest_http.c, drain/ingest_syslog.c). Thread: the main thread, which then
 * runs the event loop. */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "sluice/api.h"
#include "sluice/clock.h"
#include "sluice/feed.h"
#include "sluice/log.h"
#include "sluice/maint.h"
#include "sluice/notifier.h"
#include "sluice/serve.h"
#include "sluice/sources.h"
#include "sluice/spool.h"
#include "sluice/writer.h"

#include "conn-internal.h"

/* The syncer thread made more of the spool durable: wake the loop, which answers the
 * requests it covers (drain/ingest_http.c). */
static void on_synced_thread(void *arg, uint64_t lsn)
{
    struct server *s = arg;
    (void)lsn;
    event_active(s->sync_ev, EV_READ, 0);
}

/* Shutdown: once a tenth of a second, close what is idle; stop the loop when nothing is
 * left or the first half of the grace period is over. */
static void drain_check(evutil_socket_t fd, short what, void *arg)
{
    struct server *s = arg;
    bool busy = sl_listen_drain(s);
    (void)fd;
    (void)what;

    if (!busy || sl_clock_mono_ms() >= s->drain_deadline)
        event_base_loopbreak(s->base);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct server *s = arg;
    struct timeval tv = {0, 100000};
    (void)what;

    if (s->draining)
        return;
    sl_info("shutting down", "signal=%d", (int)sig);
    s->draining = true;
    /* half the grace for in-flight requests, the rest for the spool flush */
    s->drain_deadline = sl_clock_mono_ms() + s->cfg->shutdown_grace * 1000 / 2;
    sl_listen_close(s);
    s->drain_timer = event_new(s->base, -1, EV_PERSIST, drain_check, s);
    if (s->drain_timer)
        event_add(s->drain_timer, &tv);
    drain_check(-1, 0, s);
}

/* The spool syncer, the writer, the notifier and the read API's threads; the
 * maintenance thread is already running (it loads the source table). */
static int start_threads(struct server *s)
{
    const struct sl_config *cfg = s->cfg;
    struct sl_writer_opts wo;
    struct sl_notifier_opts no;
    struct sl_api_opts ao;

    s->sync_ev = event_new(s->base, -1, 0, sl_ingest_http_synced, s);
    if (s->sync_ev == NULL || sl_spool_start_syncer(s->spool, on_synced_thread, s))
        return SL_EIO;
    if (sl_feed_new(&s->feed))
        return SL_ENOMEM;
    memset(&wo, 0, sizeof(wo));
    wo.feed = s->feed;
    wo.database_url = cfg->database_url;
    wo.spool = s->spool;
    wo.batch_rows = (int)cfg->batch_rows;
    wo.dead_dir = cfg->spool_dir;
    wo.sources = s->sources;
    wo.public_url = cfg->public_url;
    if (sl_writer_start(&wo, &s->writer))
        return SL_EIO;
    memset(&no, 0, sizeof(no));
    no.database_url = cfg->database_url;
    no.sources = s->sources;
    no.public_url = cfg->public_url;
    no.allow_private = cfg->alert_allow_private;
    no.timeout_ms = (long)cfg->alert_timeout * 1000;
    if (sl_notifier_start(&no, &s->notifier))
        return SL_EIO;
    memset(&ao, 0, sizeof(ao));
    ao.database_url = cfg->database_url;
    ao.sources = s->sources;
    ao.feed = s->feed;
    ao.workers = (int)cfg->search_workers;
    ao.timeout_s = (int)cfg->search_timeout;
    ao.answer_bytes = (size_t)cfg->search_answer_bytes;
    ao.token_jobs = (int)cfg->search_token_jobs;
    ao.tail_buffer = (size_t)cfg->tail_buffer;
    ao.max_tail = (int)cfg->max_tail_clients;
    ao.max_message = (size_t)cfg->max_message;
    ao.max_header = (size_t)cfg->max_header;
    ao.tail_replay = cfg->tail_replay;
    sl_ingest_http_api_ops(s, &ao.ops);
    if (sl_api_start(s->base, &ao, &s->api))
        return SL_EIO;
    return 0;
}

/* File descriptors: the soft RLIMIT_NOFILE is raised to the hard one, and settings the
 * limit cannot honour are refused at start (accept() failing with EMFILE at run time
 * is then an accident, handled by pausing accepts in drain/listen.c). Every connection
 * and live-tail stream takes one; the health reserve and the process's own margin
 * (spool, PostgreSQL connections, webhook deliveries) come on top. */
static int check_fd_limit(const struct sl_config *cfg)
{
    struct rlimit rl;
    int64_t need =
        cfg->max_connections + sl_listen_health_reserve(cfg) + sl_listen_fd_margin(cfg);

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 0; /* cannot tell: accept pauses on EMFILE all the same */
    if (rl.rlim_cur != rl.rlim_max) {
        struct rlimit up = {rl.rlim_max, rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &up) == 0)
            rl = up;
    }
    if (rl.rlim_cur != RLIM_INFINITY && (int64_t)rl.rlim_cur < need) {
        sl_error("open file limit too low for SLUICE_MAX_CONNECTIONS",
                 "nofile=%llu need=%" PRId64 " max_connections=%" PRId64
                 " hint=\"raise ulimit -n (hard limit) to %" PRId64
                 " or lower SLUICE_MAX_CONNECTIONS to %" PRId64 "\"",
                 (unsigned long long)rl.rlim_cur, need, cfg->max_connections, need,
                 cfg->max_connections - (need - (int64_t)rl.rlim_cur));
        return SL_EINVAL;
    }
    return 0;
}

/* The listeners, then SIGTERM and SIGINT. */
static int start_loop(struct server *s)
{
    const struct sl_config *cfg = s->cfg;

    if (sl_listen_open(s, L_HTTP, cfg->http_port) || sl_listen_open(s, L_HTTPS, cfg->https_port) ||
        sl_listen_open(s, L_SYSLOG_TLS, cfg->syslog_tls_port) ||
        sl_listen_open(s, L_SYSLOG, cfg->syslog_port))
        return SL_EIO;
    s->sig_ev[0] = evsignal_new(s->base, SIGTERM, on_signal, s);
    s->sig_ev[1] = evsignal_new(s->base, SIGINT, on_signal, s);
    if (!s->sig_ev[0] || !s->sig_ev[1] || event_add(s->sig_ev[0], NULL) ||
        event_add(s->sig_ev[1], NULL))
        return SL_EIO;
    return 0;
}

/* Stop everything start-up started, in order: connections and streams, listeners, a
 * final spool sync, the writer (it gets until t0 plus half the grace period to empty the
 * spool), the other threads, then memory. Accepts a half-started server. */
static void stop_all(struct server *s, int64_t t0)
{
    while (!TAILQ_EMPTY(&s->conns))
        sl_conn_free(TAILQ_FIRST(&s->conns));
    sl_api_stop(s->api); /* streams closed, search threads joined */
    s->api = NULL;
    sl_listen_free(s); /* listeners and the TLS context */
    /* libevent closes a freed bufferevent's socket from the loop (deferred finalizers):
     * run it once, or the sockets stay open, unread, while the writer below takes the
     * grace period (a request sent on one hung until exit, then was reset). */
    if (s->base)
        (void)event_base_loop(s->base, EVLOOP_NONBLOCK);
    if (s->spool && sl_spool_sync_now(s->spool))
        sl_error("final spool sync failed", "%s", "");
    sl_writer_stop(s->writer, t0 + s->cfg->shutdown_grace * 1000 / 2);
    sl_notifier_stop(s->notifier);
    sl_feed_free(s->feed);
    sl_maint_stop(s->maint);
    if (s->spool) {
        struct sl_spool_stats st;
        sl_spool_get_stats(s->spool, &st);
        sl_info("stopped", "unwritten_bytes=%" PRIu64, st.depth_bytes);
    }
    sl_spool_free(s->spool);
    sl_sources_free(s->sources);
    if (s->drain_timer)
        event_free(s->drain_timer);
    for (int i = 0; i < 2; i++)
        if (s->sig_ev[i])
            event_free(s->sig_ev[i]);
    if (s->sync_ev)
        event_free(s->sync_ev);
    if (s->base)
        event_base_free(s->base);
}

int sl_server_run(struct sl_config *cfg)
{
    struct server srv, *s = &srv;
    struct sl_spool_opts so;
    char snap[4096];
    int rc = 1;
    int64_t t0 = 0;

    memset(s, 0, sizeof(*s));
    s->cfg = cfg;
    TAILQ_INIT(&s->conns);
    TAILQ_INIT(&s->waitq);
    s->proto.http_read = sl_ingest_http_read;
    s->proto.syslog_read = sl_ingest_syslog_read;
    s->proto.syslog_init = sl_ingest_syslog_init;
    s->proto.syslog_flush = sl_ingest_syslog_flush;
    s->proto.syslog_eof = sl_ingest_syslog_eof;
    signal(SIGPIPE, SIG_IGN);
    if (sl_log_set_level(cfg->log_level))
        sl_warn("unknown log level; using info", "level=%s", cfg->log_level);
    if (cfg->http_port == 0 && cfg->https_port == 0 && cfg->syslog_port == 0 &&
        cfg->syslog_tls_port == 0) {
        sl_error("no listener configured", "hint=\"set PORT, SLUICE_HTTPS_PORT, "
                                           "SLUICE_SYSLOG_TLS_PORT or SLUICE_SYSLOG_PORT\"");
        return 2;
    }
    if ((cfg->https_port || cfg->syslog_tls_port) && (!cfg->tls_cert[0] || !cfg->tls_key[0])) {
        sl_error("TLS listener needs SLUICE_TLS_CERT and SLUICE_TLS_KEY", "%s", "");
        return 2;
    }
    if (check_fd_limit(cfg))
        return 2;
    evthread_use_pthreads();
    memset(&so, 0, sizeof(so));
    so.dir = cfg->spool_dir;
    so.segment_bytes = (uint64_t)cfg->spool_segment_bytes;
    so.max_bytes = (uint64_t)cfg->spool_max_bytes;
    so.max_record = (uint32_t)(cfg->max_body * 4 + (1 << 20));
    so.fsync = cfg->fsync;
    if (sl_spool_open(&so, &s->spool)) {
        sl_error("spool unusable", "dir=%s", cfg->spool_dir);
        return 1;
    }
    snprintf(snap, sizeof(snap), "%s/sources.snapshot", cfg->spool_dir);
    if (sl_sources_new(&s->sources) ||
        sl_maint_start(cfg->database_url, s->sources, snap, &s->maint))
        goto out;
    s->base = event_base_new();
    if (s->base == NULL)
        goto out;
    if ((cfg->https_port || cfg->syslog_tls_port) && sl_listen_tls_setup(s))
        goto out;
    if (start_threads(s) || start_loop(s))
        goto out;
    sl_info("listening",
            "bind=%s http_port=%d https_port=%d syslog_tls_port=%d syslog_port=%d spool=%s "
            "node=%s fsync=%s",
            cfg->bind, cfg->http_port, cfg->https_port, cfg->syslog_tls_port, cfg->syslog_port,
            cfg->spool_dir, sl_spool_node_id(s->spool), cfg->fsync ? "on" : "off");
    event_base_dispatch(s->base);
    t0 = sl_clock_mono_ms();
    rc = 0;
out:
    stop_all(s, t0 ? t0 : sl_clock_mono_ms());
    return rc;
}
