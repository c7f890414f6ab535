/* systemd's readiness notification (sd_notify) and socket passing (LISTEN_FDS), spoken
 * directly: a datagram to $NOTIFY_SOCKET, descriptors from 3 on. No libsystemd. The same
 * socket-passing convention carries the listeners from an old `sluice serve` to the one
 * replacing it (drain/upgrade.c). Main thread, at start and on signals. */
#ifndef SLUICE_SDNOTIFY_H
#define SLUICE_SDNOTIFY_H

#include <stdint.h>

#include "sluice/err.h"

/* Largest number of passed sockets taken (more are closed and logged). */
#define SL_SD_MAX_FDS 16

/* Send state ("READY=1", "STOPPING=1", "MAINPID=123\nREADY=1", ...) as one datagram to
 * $NOTIFY_SOCKET (a path, or "@name" for the abstract namespace). Returns 1 when
 * NOTIFY_SOCKET is unset (nothing to do), 0 when sent, SL_EIO (logged once) otherwise. */
int sl_sd_notify(const char *state);

/* The watchdog interval systemd asks for (WatchdogSec=): WATCHDOG_USEC, when
 * WATCHDOG_PID is absent or our pid; 0 when there is none. Send "WATCHDOG=1" at half of
 * it. */
uint64_t sl_sd_watchdog_usec(void);

/* The sockets passed to this process: LISTEN_PID must be our pid and LISTEN_FDS their
 * count (from fd 3); names[i] is the i-th field of LISTEN_FDNAMES ("" when absent;
 * borrowed from a static buffer). The three variables are removed from the environment
 * so no child takes them for its own. Each fd is made close-on-exec. Returns the count
 * (0 when none), at most max. */
int sl_sd_listen_fds(int *fds, const char **names, int max);

#endif
