/* `sluice crashes` (include/sluice/crashes_cli.h): one statement over `crashes`, grouped
 * by source and fingerprint. --since takes "30m", "6h", "2d" or an RFC 3339 time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "sluice/crashes_cli.h"
#include "sluice/db.h"

/* "90s", "30m", "6h", "2d" -> "90 seconds" ...; anything else is passed to PostgreSQL as a
 * timestamptz. Returns true for a duration. */
static bool duration(const char *s, char *out, size_t cap)
{
    char *end;
    long v = strtol(s, &end, 10);
    const char *unit = NULL;

    if (end == s || v < 0 || end[0] == '\0' || end[1] != '\0')
        return false;
    unit = end[0] == 's' ? "seconds" : end[0] == 'm' ? "minutes" : end[0] == 'h' ? "hours"
         : end[0] == 'd' ? "days" : NULL;
    if (unit == NULL)
        return false;
    snprintf(out, cap, "%ld %s", v, unit);
    return true;
}

int sl_crashes_main(struct pg_conn *c, int argc, char **argv, FILE *out)
{
    const char *source = NULL, *since = "24h";
    char lim[16] = "50", dur[64] = "", at[64] = "";
    const char *vals[4];
    PGresult *r;

    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--source") && i + 1 < argc)
            source = argv[++i];
        else if (!strcmp(argv[i], "--since") && i + 1 < argc)
            since = argv[++i];
        else if (!strcmp(argv[i], "--limit") && i + 1 < argc)
            snprintf(lim, sizeof(lim), "%d", atoi(argv[++i]) > 0 ? atoi(argv[i]) : 50);
        else {
            fprintf(stderr, "sluice: crashes: unknown option %s\n"
                            "usage: sluice crashes [--source S] [--since 24h|RFC3339] [--limit N]\n",
                    argv[i]);
            return 2;
        }
    }
    if (!duration(since, dur, sizeof(dur)))
        snprintf(at, sizeof(at), "%s", since);
    vals[0] = source;
    vals[1] = dur[0] ? dur : NULL;
    vals[2] = at[0] ? at : NULL;
    vals[3] = lim;
    if (sl_db_exec(
            c, "crashes list failed",
            "WITH w AS (SELECT c.*, s.name FROM crashes c JOIN sources s ON s.id = c.source_id "
            "  WHERE ($1::text IS NULL OR s.name = $1) AND c.last_at >= "
            "  coalesce(now() - $2::interval, $3::timestamptz, now() - interval '1 day')), "
            "d AS (SELECT source_id, fingerprint, string_agg(delivery || '=' || n, ' ' "
            "  ORDER BY delivery) del FROM (SELECT source_id, fingerprint, delivery, count(*) n "
            "  FROM w GROUP BY 1, 2, 3) x GROUP BY 1, 2) "
            "SELECT to_char(max(w.last_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
            "count(*), w.name, min(w.type), left(min(w.value), 40), "
            "left(string_agg(DISTINCT w.procid, ','), 14), d.del, left(w.fingerprint, 12), "
            "bool_or(w.truncated) "
            "FROM w JOIN d USING (source_id, fingerprint) "
            "GROUP BY w.source_id, w.name, w.fingerprint, d.del ORDER BY max(w.last_at) DESC "
            "LIMIT $4::int",
            4, vals, &r))
        return 1;
    fprintf(out, "%-20s %5s  %-16s %-12s %-32s %-40s %-14s %s\n", "LAST SEEN", "COUNT", "SOURCE",
            "FINGERPRINT", "TYPE", "VALUE", "DYNOS", "DELIVERY");
    for (int i = 0; i < PQntuples(r); i++)
        fprintf(out, "%-20s %5s  %-16s %-12s %-32s %-40s %-14s %s%s\n", PQgetvalue(r, i, 0),
                PQgetvalue(r, i, 1), PQgetvalue(r, i, 2), PQgetvalue(r, i, 7),
                PQgetvalue(r, i, 3), PQgetvalue(r, i, 4), PQgetvalue(r, i, 5),
                PQgetvalue(r, i, 6), PQgetvalue(r, i, 8)[0] == 't' ? " truncated" : "");
    if (PQntuples(r) == 0)
        fprintf(out, "(no crashes%s%s)\n", source ? " of " : "", source ? source : "");
    PQclear(r);
    return 0;
}
