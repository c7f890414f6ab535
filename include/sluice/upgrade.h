/* Binary upgrade without closing the ports: `sluice serve` on SIGUSR2 starts the binary
 * now at its own path with its listening sockets passed as descriptors (the
 * LISTEN_FDS convention, include/sluice/sdnotify.h), so there is one accept queue the
 * whole time and no connection is refused. The new process says on a pipe when it holds
 * the listeners; the old one then stops accepting, finishes what it holds and releases
 * the spool, which the new one waits for (docs/operations.md, "Upgrades"). Main thread. */
#ifndef SLUICE_UPGRADE_H
#define SLUICE_UPGRADE_H

#include <sys/types.h>

#include "sluice/err.h"

/* Remember how this process was started: the path of /proc/self/exe and the arguments
 * of /proc/self/cmdline, read now, before the binary at that path may be replaced.
 * Returns 0, SL_EIO (upgrades then fail, logged, and the server keeps running). */
int sl_upgrade_init(void);

/* Start the new process: fds[i] (named names[i], "" for none) becomes its descriptor
 * 3+i, with LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES set; the write end of a pipe
 * becomes 3+n, named by SLUICE_UPGRADE_FD. Every other descriptor is closed in it.
 * Returns 0 with *pid and *ready_fd (the read end, non-blocking, close-on-exec; the
 * caller closes it), SL_EINVAL (no sl_upgrade_init, n out of range), SL_EIO. */
SL_MUSTCHECK int sl_upgrade_spawn(const int *fds, const char *const *names, int n, pid_t *pid,
                                  int *ready_fd);

/* In a process started by sl_upgrade_spawn: the pipe to the old process (close-on-exec
 * from now on), or -1 for an ordinary start. Removes SLUICE_UPGRADE_FD from the
 * environment. */
int sl_upgrade_take_fd(void);

/* The new process holds the listeners and waits for the spool: tell the old one, which
 * then stops accepting. Closes fd. Returns 0, SL_EIO (the old process is gone). */
SL_MUSTCHECK int sl_upgrade_signal_ready(int fd);

#endif
