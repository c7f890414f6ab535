/* Binary upgrade by socket inheritance, nginx-style (include/sluice/upgrade.h).
 *
 * The old process forks and execs the binary at the path it was started from (a package
 * upgrade replaced the file there; /proc/self/exe would still name the old inode), with
 * its original arguments and environment, its listening sockets at descriptors 3.. and a
 * readiness pipe after them. Between fork and exec the child only calls
 * async-signal-safe functions (dup2, close_range, execve, _exit): the parent has
 * threads. Leaves to drain/serve.c when to upgrade and the hand-over of the spool; to
 * drain/sdnotify.c reading LISTEN_FDS in the new process. Thread: the main thread. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sluice/log.h"
#include "sluice/sdnotify.h"
#include "sluice/upgrade.h"

#define MAX_ARGS 256
#define MAX_CMDLINE 65536
#define MAX_ENV 4096

extern char **environ;

static char exe_path[PATH_MAX];
static char *args_buf;
static char *args[MAX_ARGS + 1];

int sl_upgrade_init(void)
{
    ssize_t n;
    size_t len = 0;
    int fd, nargs = 0;

    n = readlink("/proc/self/exe", exe_path, sizeof(exe_path) - 1);
    if (n <= 0)
        goto failed;
    exe_path[n] = '\0';
    free(args_buf);
    args_buf = calloc(1, MAX_CMDLINE + 1);
    if (args_buf == NULL)
        goto failed;
    fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        goto failed;
    while (len < MAX_CMDLINE) {
        ssize_t r = read(fd, args_buf + len, MAX_CMDLINE - len);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    if (len == 0 || len >= MAX_CMDLINE)
        goto failed;
    for (size_t i = 0; i < len && nargs < MAX_ARGS; i += strlen(args_buf + i) + 1)
        args[nargs++] = args_buf + i;
    args[nargs] = NULL;
    args[0] = exe_path; /* argv[0] as the path we exec */
    return 0;
failed:
    sl_warn("binary upgrade unavailable: cannot read how this process was started", "err=\"%s\"",
            strerror(errno));
    exe_path[0] = '\0';
    return SL_EIO;
}

/* The variables that describe this process, not the new one. WATCHDOG_USEC stays: without
 * WATCHDOG_PID the new process takes it as its own once systemd knows its pid. */
static bool env_dropped(const char *e)
{
    static const char *const drop[] = {"LISTEN_PID=",        "LISTEN_FDS=",   "LISTEN_FDNAMES=",
                                       "SLUICE_UPGRADE_FD=", "WATCHDOG_PID="};
    for (size_t i = 0; i < sizeof(drop) / sizeof(drop[0]); i++)
        if (strncmp(e, drop[i], strlen(drop[i])) == 0)
            return true;
    return false;
}

/* Decimal digits of v into out (async-signal-safe, no stdio). */
static void put_decimal(char *out, long v)
{
    char tmp[24];
    int n = 0;

    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0 && n < (int)sizeof(tmp));
    while (n > 0)
        *out++ = tmp[--n];
    *out = '\0';
}

int sl_upgrade_spawn(const int *fds, const char *const *names, int n, pid_t *pid, int *ready_fd)
{
    char **envp = NULL;
    char fdsenv[32], namesenv[512], upenv[48], pidenv[48];
    int tmp[SL_SD_MAX_FDS + 1], pfd[2] = {-1, -1}, ne = 0, rc = SL_EIO;
    size_t nl = 0;
    pid_t child;

    if (exe_path[0] == '\0' || n <= 0 || n > SL_SD_MAX_FDS)
        return SL_EINVAL;
    for (int i = 0; i <= n; i++)
        tmp[i] = -1;
    if (pipe2(pfd, O_CLOEXEC | O_NONBLOCK) != 0)
        goto out;
    /* Copies above every target descriptor (3 .. 3+n), so the dup2 calls in the child
     * cannot overwrite a source not yet moved. */
    for (int i = 0; i < n; i++)
        if ((tmp[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 4 + n)) < 0)
            goto out;
    if ((tmp[n] = fcntl(pfd[1], F_DUPFD_CLOEXEC, 4 + n)) < 0)
        goto out;

    snprintf(fdsenv, sizeof(fdsenv), "LISTEN_FDS=%d", n);
    snprintf(upenv, sizeof(upenv), "SLUICE_UPGRADE_FD=%d", 3 + n);
    nl = (size_t)snprintf(namesenv, sizeof(namesenv), "LISTEN_FDNAMES=");
    for (int i = 0; i < n && nl < sizeof(namesenv); i++)
        nl +=
            (size_t)snprintf(namesenv + nl, sizeof(namesenv) - nl, "%s%s", i ? ":" : "", names[i]);
    memcpy(pidenv, "LISTEN_PID=", 12);
    envp = calloc(MAX_ENV + 5, sizeof(*envp));
    if (envp == NULL)
        goto out;
    for (char **e = environ; *e && ne < MAX_ENV; e++)
        if (!env_dropped(*e))
            envp[ne++] = *e;
    envp[ne++] = fdsenv;
    envp[ne++] = namesenv;
    envp[ne++] = upenv;
    envp[ne++] = pidenv;
    envp[ne] = NULL;

    child = fork();
    if (child < 0)
        goto out;
    if (child == 0) {
        put_decimal(pidenv + 11, (long)getpid());
        for (int i = 0; i <= n; i++)
            if (dup2(tmp[i], 3 + i) < 0) /* dup2 clears close-on-exec on the copy */
                _exit(127);
        close_range((unsigned)(4 + n), ~0U, 0);
        execve(exe_path, args, envp);
        _exit(127);
    }
    *pid = child;
    *ready_fd = pfd[0];
    pfd[0] = -1;
    rc = 0;
out:
    if (rc)
        sl_error("binary upgrade: could not start the new process", "path=%s err=\"%s\"", exe_path,
                 strerror(errno));
    for (int i = 0; i <= n; i++)
        if (tmp[i] >= 0)
            close(tmp[i]);
    if (pfd[0] >= 0)
        close(pfd[0]);
    if (pfd[1] >= 0)
        close(pfd[1]);
    free(envp);
    return rc;
}

int sl_upgrade_take_fd(void)
{
    const char *v = getenv("SLUICE_UPGRADE_FD");
    char *end;
    long fd;

    if (v == NULL)
        return -1;
    fd = strtol(v, &end, 10);
    unsetenv("SLUICE_UPGRADE_FD");
    if (*end || fd < 3 || fd > 1024 || fcntl((int)fd, F_SETFD, FD_CLOEXEC) != 0)
        return -1;
    return (int)fd;
}

int sl_upgrade_signal_ready(int fd)
{
    ssize_t r = write(fd, "R", 1);

    close(fd);
    return r == 1 ? 0 : SL_EIO;
}
