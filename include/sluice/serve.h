/* `sluice serve` (drain/serve.c): the event loop with its listeners (HTTP, HTTPS, syslog
 * over TCP and TLS; drain/listen.c, drain/ingest_http.c, drain/ingest_syslog.c), plus the
 * spool syncer, writer, maintenance, notifier and read API threads it starts and stops.
 * See docs/architecture.md for the threads and the path of a line. */
#ifndef SLUICE_SERVE_H
#define SLUICE_SERVE_H

#include "sluice/config.h"

/* Run until SIGTERM/SIGINT, then shut down gracefully. Returns a process exit code. */
int sl_server_run(struct sl_config *cfg);

#endif
