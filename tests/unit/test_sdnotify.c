/* Unit tests for drain/sdnotify.c (include/sluice/sdnotify.h): the sd_notify datagram on
 * a real AF_UNIX socket (a path, and the abstract namespace), NOTIFY_SOCKET unset or
 * unusable, LISTEN_FDS / LISTEN_PID / LISTEN_FDNAMES (only for our own pid, names split,
 * the variables removed, the descriptors made close-on-exec) and WATCHDOG_USEC. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "sluice/sdnotify.h"

static int bound_dgram(struct sockaddr_un *sa, socklen_t len)
{
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)sa, len), 0);
    return fd;
}

static void expect_datagram(int fd, const char *want)
{
    char buf[256];
    ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
    assert_true(n >= 0);
    buf[n] = '\0';
    assert_string_equal(buf, want);
}

static void test_notify_path(void **state)
{
    char dir[] = "/tmp/sdnotify.XXXXXX";
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/notify", dir);
    fd = bound_dgram(&sa, sizeof(sa));
    setenv("NOTIFY_SOCKET", sa.sun_path, 1);
    assert_int_equal(sl_sd_notify("READY=1\nSTATUS=serving"), 0);
    expect_datagram(fd, "READY=1\nSTATUS=serving");
    assert_int_equal(sl_sd_notify("STOPPING=1"), 0);
    expect_datagram(fd, "STOPPING=1");
    close(fd);
    unlink(sa.sun_path);
    rmdir(dir);
    /* the socket is gone: an error, never a crash */
    assert_true(sl_sd_notify("READY=1") < 0);
    unsetenv("NOTIFY_SOCKET");
}

static void test_notify_abstract(void **state)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    char name[64];
    int fd, n;

    (void)state;
    n = snprintf(name, sizeof(name), "@sluice-test-%ld", (long)getpid());
    memcpy(sa.sun_path, name, (size_t)n);
    sa.sun_path[0] = '\0';
    fd = bound_dgram(&sa, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + (size_t)n));
    setenv("NOTIFY_SOCKET", name, 1);
    assert_int_equal(sl_sd_notify("MAINPID=42"), 0);
    expect_datagram(fd, "MAINPID=42");
    close(fd);
    unsetenv("NOTIFY_SOCKET");
}

static void test_notify_unset_or_unusable(void **state)
{
    (void)state;
    unsetenv("NOTIFY_SOCKET");
    assert_int_equal(sl_sd_notify("READY=1"), 1);
    setenv("NOTIFY_SOCKET", "relative/path", 1);
    assert_true(sl_sd_notify("READY=1") < 0);
    unsetenv("NOTIFY_SOCKET");
}

static void set_listen_env(long pid, const char *n, const char *names)
{
    char p[32];
    snprintf(p, sizeof(p), "%ld", pid);
    setenv("LISTEN_PID", p, 1);
    setenv("LISTEN_FDS", n, 1);
    if (names)
        setenv("LISTEN_FDNAMES", names, 1);
    else
        unsetenv("LISTEN_FDNAMES");
}

static void test_listen_fds(void **state)
{
    int fds[SL_SD_MAX_FDS], a = -1, b = -1;
    const char *names[SL_SD_MAX_FDS];

    (void)state;
    /* descriptors 3 and 4 must be ours for the test: move whatever is there away */
    for (int fd = 3; fd <= 4; fd++) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        assert_true(s >= 0);
        if (s != fd) {
            assert_int_equal(dup2(s, fd), fd);
            close(s);
        }
        fcntl(fd, F_SETFD, 0);
    }
    set_listen_env((long)getpid(), "2", "https:syslog-tls");
    assert_int_equal(sl_sd_listen_fds(fds, names, SL_SD_MAX_FDS), 2);
    a = fds[0];
    b = fds[1];
    assert_int_equal(a, 3);
    assert_int_equal(b, 4);
    assert_string_equal(names[0], "https");
    assert_string_equal(names[1], "syslog-tls");
    assert_true(fcntl(3, F_GETFD) & FD_CLOEXEC);
    assert_null(getenv("LISTEN_FDS"));
    assert_null(getenv("LISTEN_PID"));
    assert_null(getenv("LISTEN_FDNAMES"));
    /* read once: a second call finds nothing */
    assert_int_equal(sl_sd_listen_fds(fds, names, SL_SD_MAX_FDS), 0);

    /* without names: "" for each */
    set_listen_env((long)getpid(), "1", NULL);
    assert_int_equal(sl_sd_listen_fds(fds, names, SL_SD_MAX_FDS), 1);
    assert_string_equal(names[0], "");

    /* for another process (a parent that forgot to unset them): ignored, and removed */
    set_listen_env((long)getpid() + 1, "2", "http:https");
    assert_int_equal(sl_sd_listen_fds(fds, names, SL_SD_MAX_FDS), 0);
    assert_null(getenv("LISTEN_FDS"));

    /* garbage counts */
    set_listen_env((long)getpid(), "two", NULL);
    assert_int_equal(sl_sd_listen_fds(fds, names, SL_SD_MAX_FDS), 0);
    set_listen_env((long)getpid(), "0", NULL);
    assert_int_equal(sl_sd_listen_fds(fds, names, SL_SD_MAX_FDS), 0);
    close(a);
    close(b);
}

static void test_watchdog(void **state)
{
    char pid[32];

    (void)state;
    unsetenv("WATCHDOG_PID");
    unsetenv("WATCHDOG_USEC");
    assert_int_equal(sl_sd_watchdog_usec(), 0);
    setenv("WATCHDOG_USEC", "30000000", 1);
    assert_int_equal(sl_sd_watchdog_usec(), 30000000);
    snprintf(pid, sizeof(pid), "%ld", (long)getpid());
    setenv("WATCHDOG_PID", pid, 1);
    assert_int_equal(sl_sd_watchdog_usec(), 30000000);
    snprintf(pid, sizeof(pid), "%ld", (long)getpid() + 1);
    setenv("WATCHDOG_PID", pid, 1); /* meant for another process */
    assert_int_equal(sl_sd_watchdog_usec(), 0);
    unsetenv("WATCHDOG_PID");
    setenv("WATCHDOG_USEC", "30s", 1);
    assert_int_equal(sl_sd_watchdog_usec(), 0);
    unsetenv("WATCHDOG_USEC");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_notify_path),
        cmocka_unit_test(test_notify_abstract),
        cmocka_unit_test(test_notify_unset_or_unusable),
        cmocka_unit_test(test_listen_fds),
        cmocka_unit_test(test_watchdog),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
