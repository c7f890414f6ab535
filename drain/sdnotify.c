/* systemd's notification and socket-passing protocols without libsystemd
 * (include/sluice/sdnotify.h).
 *
 * sd_notify(3): one AF_UNIX datagram of "KEY=VALUE\n..." to the socket named by
 * $NOTIFY_SOCKET ("@" first: the abstract namespace). sd_listen_fds(3): LISTEN_PID,
 * LISTEN_FDS and LISTEN_FDNAMES describe descriptors 3 .. 3+n-1. Leaves to others what
 * the sockets are for (drain/listen.c) and when to notify (drain/serve.c). Thread: the
 * main thread. Specs: systemd's sd_notify(3), sd_listen_fds(3), "Interface Portability
 * and Stability" (the datagram protocol is stable). */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "sluice/log.h"
#include "sluice/sdnotify.h"

int sl_sd_notify(const char *state)
{
    static bool warned;
    const char *path = getenv("NOTIFY_SOCKET");
    struct sockaddr_un sa;
    socklen_t salen;
    size_t plen;
    int fd, rc = SL_EIO;

    if (path == NULL || path[0] == '\0')
        return 1;
    plen = strlen(path);
    if ((path[0] != '/' && path[0] != '@') || plen >= sizeof(sa.sun_path))
        goto out;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, plen);
    if (path[0] == '@')
        sa.sun_path[0] = '\0'; /* abstract: no trailing NUL in the length */
    salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen + (path[0] == '/'));
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto out;
    if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, salen) ==
        (ssize_t)strlen(state))
        rc = 0;
    close(fd);
out:
    if (rc && !warned) {
        warned = true;
        sl_warn("sd_notify failed", "socket=%s err=\"%s\"", path, strerror(errno));
    }
    return rc;
}

uint64_t sl_sd_watchdog_usec(void)
{
    const char *u = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
    char *end;
    unsigned long long v;

    if (u == NULL || (pid && strtol(pid, NULL, 10) != (long)getpid()))
        return 0;
    v = strtoull(u, &end, 10);
    return *end ? 0 : (uint64_t)v;
}

int sl_sd_listen_fds(int *fds, const char **names, int max)
{
    static char namebuf[1024];
    const char *pid_s = getenv("LISTEN_PID"), *n_s = getenv("LISTEN_FDS");
    const char *names_s = getenv("LISTEN_FDNAMES");
    char *end, *p;
    long pid, n;
    int got = 0;

    if (pid_s == NULL || n_s == NULL)
        goto out;
    pid = strtol(pid_s, &end, 10);
    if (*end || pid != (long)getpid())
        goto out;
    n = strtol(n_s, &end, 10);
    if (*end || n <= 0 || n > 1000)
        goto out;
    snprintf(namebuf, sizeof(namebuf), "%s", names_s ? names_s : "");
    p = namebuf;
    for (long i = 0; i < n; i++) {
        int fd = 3 + (int)i;
        char *colon;
        const char *name = p ? p : "";

        if (p) {
            colon = strchr(p, ':');
            if (colon)
                *colon = '\0';
            p = colon ? colon + 1 : NULL;
        }
        (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
        if (got >= max) {
            sl_warn("too many passed sockets: closing", "fd=%d", fd);
            close(fd);
            continue;
        }
        fds[got] = fd;
        names[got] = name;
        got++;
    }
out:
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    return got;
}
