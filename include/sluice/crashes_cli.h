/* `sluice crashes [--source S] [--since T] [--limit N]` (rules/crashes_cli.c): the
 * recent crashes grouped by fingerprint, with their count, last time seen, dynos and
 * delivery state (docs/crashes.md). */
#ifndef SLUICE_CRASHES_CLI_H
#define SLUICE_CRASHES_CLI_H

#include <stdio.h>

struct pg_conn;

/* argv: the arguments after "crashes". Returns a process exit code; prints to out. */
int sl_crashes_main(struct pg_conn *c, int argc, char **argv, FILE *out);

#endif
