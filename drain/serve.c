/* Process start-up and shutdown of `sluice serve` (include/sluice/server.h).
 *
 * Opens the spool and starts every thread of the process: the spool syncer
 * (drain/spool.c), the writer (drain/writer.c), maintenance (drain/maint.c), the alert
 * notifier (rules/notifier.c) and the read API's workers and tail thread (drain/api.c);
 * then the event loop, its listeners (drain/listen.c, bound here or passed by systemd or by
 * the process this one replaces) and signals. SIGTERM or SIGINT starts a graceful drain:
 * listeners close, connections finish what they hold (half the grace period), then the
 * writer gets the rest to empty the spool. SIGUSR2 upgrades the binary without closing
 * the ports (drain/upgrade.c): the new process gets the listening sockets, and once it
 * holds them this one drains as for SIGTERM, except that requests still arriving on its
 * open connections are answered and the writer stops at once, leaving the spool to the
 * new process, which waits for its lock. systemd hears READY=1 (listeners bound,
 * PostgreSQL reachable), STOPPING=1, WATCHDOG=1 from the loop when WatchdogSec= is set
 * and, on an upgrade, MAINPID= of the new process.
 *
 * Leaves to others: sockets and connections (drain/listen.c), the protocols
 * (drain/ingest_http.c, drain/ingest_syslog.c). Thread: the main thread, which then
 * runs the event loop. */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "sluice/api.h"
#include "sluice/clock.h"
#include "sluice/crashd.h"
#include "sluice/diskguard.h"
#include "sluice/feed.h"
#include "sluice/log.h"
#include "sluice/maint.h"
#include "sluice/notifier.h"
#include "sluice/sdnotify.h"
#include "sluice/search.h"
#include "sluice/serve.h"
#include "sluice/sources.h"
#include "sluice/spool.h"
#include "sluice/upgrade.h"
#include "sluice/writer.h"

#include "conn-internal.h"

/* How long the old process of an upgrade lets its connections finish before it releases
 * the spool, and how long it waits for the new process to take the listeners. */
#define HANDOVER_DRAIN_MS 2000
#define UPGRADE_START_S 60

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

/* Stop accepting and let the connections finish. handover: a new process holds the
 * listeners (an upgrade); requests on open connections are still answered. */
static void begin_drain(struct server *s, bool handover)
{
    /* a hand-over is watched closely: connections queue while it lasts */
    struct timeval tv = {0, handover ? 10000 : 100000};
    int64_t grace_ms = s->cfg->shutdown_grace * 1000 / 2;

    s->draining = true;
    s->handover = handover;
    /* Half the grace for in-flight requests, the rest for the spool flush. A hand-over
     * waits at most HANDOVER_DRAIN_MS: connections queue meanwhile in the shared accept
     * queue, and an unanswered request is retried by its sender (nothing it was told
     * is stored can be lost: the spool goes to the new process). */
    if (handover && grace_ms > HANDOVER_DRAIN_MS)
        grace_ms = HANDOVER_DRAIN_MS;
    s->drain_deadline = sl_clock_mono_ms() + grace_ms;
    sl_listen_close(s);
    s->drain_timer = event_new(s->base, -1, EV_PERSIST, drain_check, s);
    if (s->drain_timer)
        event_add(s->drain_timer, &tv);
    drain_check(-1, 0, s);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct server *s = arg;
    (void)what;

    if (s->draining)
        return;
    sl_info("shutting down", "signal=%d", (int)sig);
    sl_sd_notify("STOPPING=1");
    if (s->upgrade_pid > 0) {
        /* an upgrade under way: its new process has not taken over; stop it too */
        kill(s->upgrade_pid, SIGKILL);
        waitpid(s->upgrade_pid, NULL, 0);
        s->upgrade_pid = 0;
    }
    begin_drain(s, false);
}

/* The new process of an upgrade wrote its readiness byte (it holds the listeners), closed
 * the pipe without it (it failed), or did neither in time. */
static void on_upgrade_ready(evutil_socket_t fd, short what, void *arg)
{
    struct server *s = arg;
    char b = 0;
    ssize_t r = (what & EV_READ) ? read(fd, &b, 1) : -1;
    char msg[64];

    event_free(s->upgrade_ev);
    s->upgrade_ev = NULL;
    close(fd);
    if (r == 1 && !s->draining) {
        sl_info("upgrade: the new process holds the listeners; handing over",
                "pid=%d", s->upgrade_pid);
        snprintf(msg, sizeof(msg), "MAINPID=%d", s->upgrade_pid);
        sl_sd_notify(msg);
        begin_drain(s, true);
        return;
    }
    sl_error("upgrade failed: the new process did not take over; still serving",
             "pid=%d reason=%s", s->upgrade_pid, (what & EV_TIMEOUT) ? "timeout" : "exited");
    kill(s->upgrade_pid, SIGKILL);
    waitpid(s->upgrade_pid, NULL, 0);
    s->upgrade_pid = 0;
}

/* SIGUSR2: start the binary now at our path with our listeners. */
static void on_upgrade_signal(evutil_socket_t sig, short what, void *arg)
{
    struct server *s = arg;
    struct timeval tv = {UPGRADE_START_S, 0};
    int fds[L_COUNT], n = 0, ready_fd;
    const char *names[L_COUNT];
    pid_t pid;
    (void)sig;
    (void)what;

    if (s->draining || s->upgrade_pid > 0) {
        sl_warn("upgrade signal ignored", "reason=%s",
                s->draining ? "shutting down" : "an upgrade is under way");
        return;
    }
    for (int i = 0; i < L_COUNT; i++)
        if (s->lev[i]) {
            fds[n] = sl_listen_get_fd(s, (enum lst)i);
            names[n++] = sl_listen_name((enum lst)i);
        }
    if (sl_upgrade_spawn(fds, names, n, &pid, &ready_fd))
        return;
    s->upgrade_pid = (int)pid;
    s->upgrade_ev = event_new(s->base, ready_fd, EV_READ, on_upgrade_ready, s);
    if (s->upgrade_ev == NULL || event_add(s->upgrade_ev, &tv)) {
        close(ready_fd);
        on_upgrade_ready(-1, 0, s);
        return;
    }
    sl_info("upgrade: new process started", "pid=%d", s->upgrade_pid);
}

/* Readiness for systemd (Type=notify): the listeners are bound (this runs from the loop)
 * and PostgreSQL answered; until then, every 100 ms, a STATUS line. */
static void ready_check(evutil_socket_t fd, short what, void *arg)
{
    struct server *s = arg;
    char msg[128];
    (void)fd;
    (void)what;

    if (!atomic_load(&sl_metrics.db_up)) {
        if (!s->said_waiting)
            sl_sd_notify("STATUS=waiting for PostgreSQL");
        s->said_waiting = true;
        return;
    }
    snprintf(msg, sizeof(msg), "READY=1\nSTATUS=serving\nMAINPID=%ld", (long)getpid());
    if (sl_sd_notify(msg) <= 0)
        sl_info("ready", "pid=%ld", (long)getpid());
    event_free(s->ready_timer);
    s->ready_timer = NULL;
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
    wo.crashes = cfg->crashes;
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
    if (cfg->crashes) {
        struct sl_crashd_opts co;
        memset(&co, 0, sizeof(co));
        co.database_url = cfg->database_url;
        co.public_url = cfg->public_url;
        co.default_dsn = cfg->sentry_dsn;
        co.gap_ms = cfg->crash_gap_ms;
        co.settle_ms = cfg->crash_settle_ms;
        co.max_lines = cfg->crash_max_lines;
        co.max_bytes = cfg->crash_max_bytes;
        co.sources = s->sources;
        if (sl_crashd_start(&co, &s->crashd))
            return SL_EIO;
    }
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

/* The listeners: a socket passed for it (systemd socket activation, or the process this
 * one replaces: matched by its LISTEN_FDNAMES name, else by its port), else bound here.
 * A passed socket no listener wants is closed. */
static int start_listeners(struct server *s, const int *fds, const char **names, int nfds)
{
    const struct sl_config *cfg = s->cfg;
    const int ports[L_COUNT] = {[L_HTTP] = cfg->http_port, [L_HTTPS] = cfg->https_port,
                                [L_SYSLOG_TLS] = cfg->syslog_tls_port,
                                [L_SYSLOG] = cfg->syslog_port};
    int rc = 0, owner[SL_SD_MAX_FDS];

    for (int j = 0; j < nfds; j++) {
        enum lst w = sl_listen_by_name(names[j]);
        int port = sl_listen_fd_port(fds[j]);
        owner[j] = -1;
        for (int i = 0; w == L_COUNT && i < L_COUNT; i++)
            if (port && ports[i] == port)
                w = (enum lst)i;
        if (w < L_COUNT && ports[w] > 0)
            owner[j] = (int)w;
    }
    for (int i = 0; i < L_COUNT; i++) {
        int fd = -1;
        for (int j = 0; j < nfds; j++)
            if (owner[j] == i && fd < 0) {
                fd = fds[j];
                owner[j] = -2; /* taken */
            }
        if (rc == 0 && fd >= 0)
            rc = sl_listen_adopt(s, (enum lst)i, fd);
        else if (fd >= 0)
            close(fd);
        else if (rc == 0)
            rc = sl_listen_open(s, (enum lst)i, ports[i]);
    }
    for (int j = 0; j < nfds; j++)
        if (owner[j] != -2) {
            sl_warn("passed socket matches no configured listener: closed", "fd=%d name=%s port=%d",
                    fds[j], names[j], sl_listen_fd_port(fds[j]));
            close(fds[j]);
        }
    return rc;
}

/* systemd's watchdog: the loop is alive. */
static void watchdog_ping(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    sl_sd_notify("WATCHDOG=1");
}

/* SIGTERM, SIGINT, SIGUSR2, the readiness check and the watchdog for systemd. */
static int start_loop(struct server *s)
{
    struct timeval tv = {0, 100000};
    uint64_t wd = sl_sd_watchdog_usec();

    if (wd > 0) {
        struct timeval half = {(time_t)(wd / 2 / 1000000), (suseconds_t)(wd / 2 % 1000000)};
        s->watchdog_ev = event_new(s->base, -1, EV_PERSIST, watchdog_ping, s);
        if (s->watchdog_ev == NULL || event_add(s->watchdog_ev, &half))
            return SL_EIO;
        watchdog_ping(-1, 0, s);
    }

    s->sig_ev[0] = evsignal_new(s->base, SIGTERM, on_signal, s);
    s->sig_ev[1] = evsignal_new(s->base, SIGINT, on_signal, s);
    s->sig_ev[2] = evsignal_new(s->base, SIGUSR2, on_upgrade_signal, s);
    s->ready_timer = event_new(s->base, -1, EV_PERSIST, ready_check, s);
    if (!s->sig_ev[0] || !s->sig_ev[1] || !s->sig_ev[2] || !s->ready_timer ||
        event_add(s->sig_ev[0], NULL) || event_add(s->sig_ev[1], NULL) ||
        event_add(s->sig_ev[2], NULL) || event_add(s->ready_timer, &tv))
        return SL_EIO;
    event_active(s->ready_timer, EV_TIMEOUT, 0);
    return 0;
}

/* The spool; lock_wait_ms: how long to wait for a process that holds it (an upgrade). */
static int open_spool(struct server *s, int lock_wait_ms)
{
    const struct sl_config *cfg = s->cfg;
    struct sl_spool_opts so;

    memset(&so, 0, sizeof(so));
    so.dir = cfg->spool_dir;
    so.segment_bytes = (uint64_t)cfg->spool_segment_bytes;
    so.max_bytes = (uint64_t)cfg->spool_max_bytes;
    so.max_record = (uint32_t)(cfg->max_body * 4 + (1 << 20));
    so.fsync = cfg->fsync;
    so.lock_wait_ms = lock_wait_ms;
    if (sl_spool_open(&so, &s->spool)) {
        sl_error("spool unusable", "dir=%s", cfg->spool_dir);
        return SL_EIO;
    }
    return 0;
}

/* The last use of the spool: its stats, then close it, which drops its lock (the new
 * process of an upgrade waits for that). */
static void release_spool(struct server *s)
{
    struct sl_spool_stats st;
    uint64_t unwritten;

    if (s->spool == NULL)
        return;
    memset(&st, 0, sizeof(st));
    sl_spool_get_stats(s->spool, &st);
    unwritten = st.depth_bytes;
    /* after a hand-over the new process writes what is left */
    sl_info("stopped", "unwritten_bytes=%" PRIu64 "%s", unwritten,
            s->handover ? " handed_over=true" : "");
    sl_spool_free(s->spool);
    s->spool = NULL;
}

/* Stop everything start-up started, in order: connections and streams, listeners, a
 * final spool sync, the writer (it gets until t0 plus half the grace period to empty the
 * spool), the other threads, then memory. A hand-over releases the spool right after
 * the writer, before the threads that do not use it, so the new process waits less.
 * Accepts a half-started server. */
static void stop_all(struct server *s, int64_t t0)
{
    while (!TAILQ_EMPTY(&s->conns))
        sl_conn_free(TAILQ_FIRST(&s->conns));
    if (!s->handover) {
        sl_api_stop(s->api); /* streams closed, search threads joined */
        s->api = NULL;
    }
    sl_listen_free(s); /* listeners and the TLS context */
    /* libevent closes a freed bufferevent's socket from the loop (deferred finalizers):
     * run it once, or the sockets stay open, unread, while the writer below takes the
     * grace period (a request sent on one hung until exit, then was reset). */
    if (s->base)
        (void)event_base_loop(s->base, EVLOOP_NONBLOCK);
    if (s->spool && sl_spool_sync_now(s->spool))
        sl_error("final spool sync failed", "%s", "");
    /* A hand-over leaves the spool to the new process: the writer stops after the commit
     * under way instead of emptying it. */
    sl_writer_stop(s->writer, s->handover ? sl_clock_mono_ms()
                                          : t0 + s->cfg->shutdown_grace * 1000 / 2);
    if (s->handover) {
        release_spool(s);
        sl_api_stop(s->api);
        s->api = NULL;
        (void)event_base_loop(s->base, EVLOOP_NONBLOCK); /* the streams' sockets */
    }
    sl_crashd_stop(s->crashd);
    sl_notifier_stop(s->notifier);
    sl_feed_free(s->feed);
    sl_maint_stop(s->maint);
    release_spool(s);
    sl_sources_free(s->sources);
    if (s->drain_timer)
        event_free(s->drain_timer);
    for (int i = 0; i < 3; i++)
        if (s->sig_ev[i])
            event_free(s->sig_ev[i]);
    if (s->ready_timer)
        event_free(s->ready_timer);
    if (s->watchdog_ev)
        event_free(s->watchdog_ev);
    if (s->upgrade_ev) {
        close(event_get_fd(s->upgrade_ev));
        event_free(s->upgrade_ev);
    }
    if (s->sync_ev)
        event_free(s->sync_ev);
    if (s->base)
        event_base_free(s->base);
}

/* The disk guard's marks must make sense (docs/retention.md, "Disk guard"). */
static int check_disk_limits(const struct sl_config *cfg)
{
    struct sl_diskguard_limits l = {(int)cfg->disk_evict_pct, (int)cfg->disk_refuse_pct,
                                    (int)cfg->disk_hysteresis_pct};
    char why[160];

    if (cfg->disk_evict_pct > 100 || cfg->disk_refuse_pct > 100 ||
        cfg->disk_hysteresis_pct > 100 || cfg->disk_check_interval <= 0) {
        sl_error("bad disk guard setting", "hint=\"percentages 0-100, SLUICE_DISK_CHECK_INTERVAL "
                 "at least 1\"");
        return SL_EINVAL;
    }
    if (sl_diskguard_limits_check(&l, why, sizeof(why)) == 0)
        return 0;
    sl_error("bad disk guard setting", "err=\"%s\"", why);
    return SL_EINVAL;
}

int sl_server_run(struct sl_config *cfg)
{
    struct server srv, *s = &srv;
    char snap[4096];
    struct sl_maint_retention ret;
    int rc = 1, upgrade_fd, nfds, passed[SL_SD_MAX_FDS];
    const char *passed_names[SL_SD_MAX_FDS];
    int64_t t0 = 0;

    /* first: these descriptors must not leak into anything this process starts */
    nfds = sl_sd_listen_fds(passed, passed_names, SL_SD_MAX_FDS);
    upgrade_fd = sl_upgrade_take_fd();
    sl_upgrade_init();
    /* Until the handler is installed, SIGUSR2 would kill the process: ignored meanwhile
     * (a second `systemctl reload` reaching a new process still waiting for the spool). */
    signal(SIGUSR2, SIG_IGN);

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
    if (sl_search_set_day_level(cfg->search_day_level))
        sl_warn("unknown SLUICE_SEARCH_DAY_LEVEL; using auto", "value=%s", cfg->search_day_level);
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
    if (check_disk_limits(cfg))
        return 2;
    evthread_use_pthreads();
    /* An upgrade's new process takes the spool last, once the old one lets it go. */
    if (upgrade_fd < 0 && open_spool(s, 0))
        goto out;
    snprintf(snap, sizeof(snap), "%s/sources.snapshot", cfg->spool_dir);
    ret.batch_rows = (int)cfg->retention_batch_rows;
    ret.pause_ms = (int)cfg->retention_pause_ms;
    ret.interval_s = (int)cfg->retention_interval;
    ret.wal_rate = cfg->retention_wal_rate;
    ret.compact_after_h = (int)cfg->compact_after_hours;
    memset(&ret.disk, 0, sizeof(ret.disk));
    ret.disk.budget_bytes = cfg->disk_budget;
    ret.disk.filesystem = cfg->disk_filesystem;
    ret.disk.limits.evict_pct = (int)cfg->disk_evict_pct;
    ret.disk.limits.refuse_pct = (int)cfg->disk_refuse_pct;
    ret.disk.limits.hysteresis_pct = (int)cfg->disk_hysteresis_pct;
    ret.disk_interval_s = (int)cfg->disk_check_interval;
    if (sl_sources_new(&s->sources) ||
        sl_maint_start(cfg->database_url, s->sources, snap, &ret, &s->maint))
        goto out;
    s->base = event_base_new();
    if (s->base == NULL)
        goto out;
    if ((cfg->https_port || cfg->syslog_tls_port) && sl_listen_tls_setup(s))
        goto out;
    rc = start_listeners(s, passed, passed_names, nfds);
    nfds = 0;
    if (rc) {
        rc = 1;
        goto out;
    }
    rc = 1;
    if (upgrade_fd >= 0) {
        /* Connections queue in the listeners' accept queues until the loop runs. */
        int ufd = upgrade_fd;
        upgrade_fd = -1;
        if (sl_upgrade_signal_ready(ufd)) {
            sl_error("upgrade: the old process is gone before the hand-over", "%s", "");
            goto out;
        }
        sl_info("upgrade: waiting for the old process to release the spool", "dir=%s",
                cfg->spool_dir);
        if (open_spool(s, (int)(cfg->shutdown_grace + 30) * 1000))
            goto out;
    }
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
    for (int j = 0; j < nfds; j++)
        close(passed[j]);
    if (upgrade_fd >= 0)
        close(upgrade_fd);
    stop_all(s, t0 ? t0 : sl_clock_mono_ms());
    return rc;
}
