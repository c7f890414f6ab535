/* sluice: one binary, subcommands. This file only dispatches; each command's work
 * lives in its module (serve.c, db.c). Operator commands use DATABASE_URL. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sluice/archive.h"
#include "sluice/client.h"
#include "sluice/clock.h"
#include "sluice/compact.h"
#include "sluice/hourlevel.h"
#include "sluice/config.h"
#include "sluice/crash.h"
#include "sluice/crashes_cli.h"
#include "sluice/db.h"
#include "sluice/log.h"
#include "sluice/rules_cli.h"
#include "sluice/ruleset.h"
#include "sluice/serve.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: sluice COMMAND [ARGS]\n\n"
               "  serve [--help]                 run the drain server\n"
               "  migrate                        apply database migrations (safe to repeat)\n"
               "  source add NAME [--retention-days N] [--drain-token d.UUID]\n"
               "                  [--disk-evict yes|no]\n"
               "                                 create a source; prints its drain URL\n"
               "  source list                    list sources\n"
               "  source rotate NAME             new ingest token; prints the new drain URL\n"
               "  source rm NAME                 remove a source\n"
               "  source set NAME [--sentry-dsn DSN] [--retention-days N]\n"
               "                                 send the source's crashes to Sentry ('' clears);\n"
               "                                 change how many days its lines are kept\n"
               "  source set NAME --disk-evict yes|no\n"
               "                                 may the disk guard delete its oldest rows\n"
               "                                 before their retention (default no;\n"
               "                                 docs/retention.md \"Disk guard\")\n"
               "  source set NAME --archive DIR|s3://BUCKET/PREFIX\n"
               "                                 archive hours before retention deletes them\n"
               "                                 ('' clears; docs/retention.md)\n"
               "  compact [--day YYYY-MM-DD] [--fence-seconds N]\n"
               "                                 pack closed days' lines now (docs/search.md);\n"
               "                                 --day: that day, even if it is still open\n"
               "  archive restore --source S --day YYYY-MM-DD [--from DIR] [--hold-days N]\n"
               "                                 reload an archived day so it is searchable\n"
               "  token add NAME (--source SRC)... | --all\n"
               "                                 read token for the search API; prints it once\n"
               "  token list                     read tokens and their scope (never the token)\n"
               "  token rm NAME                  remove a read token\n"
               "  rules check FILE.json          validate a rules file (regex errors with offsets)\n"
               "  rules apply FILE.json          make FILE the stored rule set (idempotent)\n"
               "  rules list                     stored rules and how many groups are firing\n"
               "  rules test FILE.json [--source NAME] < lines\n"
               "                                 which rules sample lines would match and fire\n"
               "  alerts [--limit N]             recent alerts and their delivery state\n"
               "  crashes [--source S] [--since T] [--limit N]\n"
               "                                 recent crashes by fingerprint, delivery state\n"
               "  search [QUERY] [--source S]... [--since T] [--until T] [--limit N] [--json]\n"
               "                                 matching lines, oldest first (default 100)\n"
               "  tail [QUERY] [-f] [--source S]... [-n N] [--json]\n"
               "                                 the newest N lines (default 20); -f follows\n"
               "  (search/tail: SLUICE_URL, SLUICE_TOKEN or ~/.config/sluice/cli.conf;\n"
               "   --color/--no-color; times in UTC unless TZ is set; `sluice search -h`)\n\n"
               "Operator commands use DATABASE_URL (default postgresql:///sluice).\n"
               "`sluice serve --help` lists every setting.\n");
}

static const char *db_url(void)
{
    const char *u = getenv("DATABASE_URL");
    return u && *u ? u : "postgresql:///sluice";
}

/* https://NAME:TOKEN@host[:port]/logs from SLUICE_PUBLIC_URL */
static void print_drain_url(const char *name, const char *token)
{
    const char *pub = getenv("SLUICE_PUBLIC_URL");
    const char *scheme_end, *host;
    char scheme[16] = "https";
    size_t hl;

    if (pub == NULL || !*pub)
        pub = "https://localhost:8443";
    scheme_end = strstr(pub, "://");
    if (scheme_end && (size_t)(scheme_end - pub) < sizeof(scheme)) {
        memcpy(scheme, pub, (size_t)(scheme_end - pub));
        scheme[scheme_end - pub] = '\0';
        host = scheme_end + 3;
    } else
        host = pub;
    hl = strlen(host);
    while (hl > 0 && host[hl - 1] == '/')
        hl--;
    printf("heroku drains:add '%s://%s:%s@%.*s/logs' -a YOUR_APP\n", scheme, name, token, (int)hl,
           host);
    printf("%s://%s:%s@%.*s/logs\n", scheme, name, token, (int)hl, host);
}

/* A positive whole number of days (at most ten years), or -1. */
static int parse_days(const char *s)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || *end || v <= 0 || v > 3650)
        return -1;
    return (int)v;
}

/* --disk-evict yes|no: 1, 0, or -1 when neither. */
static int parse_yes_no(const char *s)
{
    if (!strcmp(s, "yes"))
        return 1;
    if (!strcmp(s, "no"))
        return 0;
    return -1;
}

/* Store --disk-evict and say what it means. Returns an exit status. */
static int set_disk_evict(struct pg_conn *c, const char *name, bool evict)
{
    int rc = sl_db_source_set_disk_evict(c, name, evict);

    if (rc) {
        fprintf(stderr, "sluice: could not set %s: %s\n", name, sl_strerror(rc));
        return 1;
    }
    if (evict)
        printf("source %s: its oldest rows may go before their retention when the database's "
               "disk passes SLUICE_DISK_EVICT_PCT (archived first if it has an archive)\n",
               name);
    else
        printf("source %s: the disk guard never deletes its rows (only retention does)\n",
               name);
    return 0;
}

/* sluice source set NAME [--sentry-dsn DSN] [--retention-days N]: a DSN ('' clears it)
 * is checked here, so a bad one is refused with what is wrong instead of failing every
 * crash later. Running servers pick either up through NOTIFY sluice_sources. */
static int source_set(int argc, char **argv, struct pg_conn *c)
{
    const char *dsn = NULL, *days_s = NULL, *archive = NULL, *evict_s = NULL;
    struct sl_crash_dsn d;
    char why[200];
    int rc, days = 0;

    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--sentry-dsn") && i + 1 < argc)
            dsn = argv[++i];
        else if (!strncmp(argv[i], "--sentry-dsn=", 13))
            dsn = argv[i] + 13;
        else if (!strcmp(argv[i], "--retention-days") && i + 1 < argc)
            days_s = argv[++i];
        else if (!strncmp(argv[i], "--retention-days=", 17))
            days_s = argv[i] + 17;
        else if (!strcmp(argv[i], "--archive") && i + 1 < argc)
            archive = argv[++i];
        else if (!strncmp(argv[i], "--archive=", 10))
            archive = argv[i] + 10;
        else if (!strcmp(argv[i], "--disk-evict") && i + 1 < argc)
            evict_s = argv[++i];
        else if (!strncmp(argv[i], "--disk-evict=", 13))
            evict_s = argv[i] + 13;
        else {
            fprintf(stderr, "sluice: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (dsn == NULL && days_s == NULL && archive == NULL && evict_s == NULL) {
        fprintf(stderr, "sluice: source set needs --sentry-dsn DSN ('' clears it), "
                        "--retention-days N, --archive DIR|s3://BUCKET/PREFIX ('' clears it) "
                        "or --disk-evict yes|no\n");
        return 2;
    }
    if (evict_s && parse_yes_no(evict_s) < 0) {
        fprintf(stderr, "sluice: --disk-evict must be yes or no\n");
        return 2;
    }
    if (archive && archive[0] && sl_archive_dest_check(archive, why, sizeof(why))) {
        fprintf(stderr, "sluice: bad --archive %s: %s\n", archive, why);
        return 2;
    }
    if (days_s && (days = parse_days(days_s)) < 0) {
        fprintf(stderr, "sluice: --retention-days must be a whole number of days, 1 to 3650\n");
        return 2;
    }
    if (dsn && dsn[0] != '\0' && sl_crash_dsn_parse(dsn, &d, why, sizeof(why)) != 0) {
        fprintf(stderr, "sluice: bad Sentry DSN: %s\n", why);
        return 2;
    }
    if (days_s) {
        if ((rc = sl_db_source_set_retention(c, argv[1], days))) {
            fprintf(stderr, "sluice: could not set %s: %s\n", argv[1], sl_strerror(rc));
            return 1;
        }
        printf("source %s: retention %d days (rows older go at the next retention pass, "
               "which a running server starts now)\n", argv[1], days);
    }
    if (archive) {
        if ((rc = sl_db_source_set_archive(c, argv[1], archive))) {
            fprintf(stderr, "sluice: could not set %s: %s\n", argv[1], sl_strerror(rc));
            return 1;
        }
        if (archive[0])
            printf("source %s: hours past retention are archived to %s/%s/ before they are "
                   "deleted\n", argv[1], archive, argv[1]);
        else
            printf("source %s: archive cleared; rows past retention are deleted unarchived\n",
                   argv[1]);
    }
    if (evict_s && (rc = set_disk_evict(c, argv[1], parse_yes_no(evict_s) == 1)))
        return rc;
    if (dsn == NULL)
        return 0;
    if ((rc = sl_db_source_set_dsn(c, argv[1], dsn))) {
        fprintf(stderr, "sluice: could not set %s: %s\n", argv[1], sl_strerror(rc));
        return 1;
    }
    if (dsn[0])
        printf("source %s: crashes go to Sentry project %s at %s\n", argv[1], d.project_id,
               d.envelope_url);
    else
        printf("source %s: Sentry DSN cleared\n", argv[1]);
    return 0;
}

static int cmd_source(int argc, char **argv, struct pg_conn *c)
{
    char token[SL_TOKEN_HEX + 1];
    int rc;

    if (argc < 1) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[0], "list"))
        return sl_db_source_list(c, stdout) ? 1 : 0;
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[0], "add")) {
        int days = 7, evict = -1;
        const char *dtok = NULL;
        for (int i = 2; i < argc; i++) {
            if (!strcmp(argv[i], "--retention-days") && i + 1 < argc)
                days = atoi(argv[++i]);
            else if (!strncmp(argv[i], "--retention-days=", 17))
                days = atoi(argv[i] + 17);
            else if (!strcmp(argv[i], "--drain-token") && i + 1 < argc)
                dtok = argv[++i];
            else if (!strncmp(argv[i], "--drain-token=", 14))
                dtok = argv[i] + 14;
            else if ((!strcmp(argv[i], "--disk-evict") && i + 1 < argc) ||
                     !strncmp(argv[i], "--disk-evict=", 13)) {
                const char *v = argv[i][12] == '=' ? argv[i] + 13 : argv[++i];
                if ((evict = parse_yes_no(v)) < 0) {
                    fprintf(stderr, "sluice: --disk-evict must be yes or no\n");
                    return 2;
                }
            } else {
                fprintf(stderr, "sluice: unknown option %s\n", argv[i]);
                return 2;
            }
        }
        if (days <= 0) {
            fprintf(stderr, "sluice: --retention-days must be a positive number of days\n");
            return 2;
        }
        if ((rc = sl_db_source_add(c, argv[1], days, dtok, token))) {
            fprintf(stderr, "sluice: could not add source %s: %s\n", argv[1],
                    rc == SL_EINVAL ? "bad name or it exists already" : sl_strerror(rc));
            return 1;
        }
        printf("source %s added (retention %d days)\n", argv[1], days);
        /* before the URL: callers read the drain URL from the last line */
        if (evict >= 0 && (rc = set_disk_evict(c, argv[1], evict == 1)))
            return rc;
        print_drain_url(argv[1], token);
        return 0;
    }
    if (!strcmp(argv[0], "rotate")) {
        if ((rc = sl_db_source_rotate(c, argv[1], token))) {
            fprintf(stderr, "sluice: could not rotate %s: %s\n", argv[1], sl_strerror(rc));
            return 1;
        }
        printf("source %s: new token; the old one no longer works\n", argv[1]);
        print_drain_url(argv[1], token);
        return 0;
    }
    if (!strcmp(argv[0], "set"))
        return source_set(argc, argv, c);
    if (!strcmp(argv[0], "rm")) {
        if ((rc = sl_db_source_rm(c, argv[1]))) {
            fprintf(stderr, "sluice: could not remove %s: %s\n", argv[1], sl_strerror(rc));
            return 1;
        }
        printf("source %s removed\n", argv[1]);
        return 0;
    }
    usage(stderr);
    return 2;
}

/* sluice compact [--day YYYY-MM-DD] [--fence-seconds N]: every closed day due
 * (SLUICE_COMPACT_AFTER_HOURS), or the one day given, packed now (docs/search.md
 * "Compacted days"), then the hour level of every closed hour ("The hour level"). Blocks
 * a writer touched in the last N seconds (600) wait. */
static int cmd_compact(int argc, char **argv, struct pg_conn *c)
{
    struct sl_compact_stats st;
    struct sl_hour_level_stats hl = {.after = -1};
    int64_t now = sl_clock_real_us(), day = -1;
    int rc = 0, fence = SL_COMPACT_FENCE_S;
    bool did = true;

    memset(&st, 0, sizeof(st));
    for (int i = 0; i < argc; i++) {
        struct tm tm;
        const char *e;
        char *end;
        if (!strcmp(argv[i], "--day") && i + 1 < argc) {
            memset(&tm, 0, sizeof(tm));
            e = strptime(argv[++i], "%Y-%m-%d", &tm);
            if (e == NULL || *e != '\0') {
                fprintf(stderr, "sluice: --day must be YYYY-MM-DD\n");
                return 2;
            }
            day = (int64_t)timegm(&tm) * 1000000;
        } else if (!strcmp(argv[i], "--fence-seconds") && i + 1 < argc) {
            long v = strtol(argv[++i], &end, 10);
            if (*end != '\0' || v < 0 || v > 86400) {
                fprintf(stderr, "sluice: --fence-seconds must be 0 to 86400\n");
                return 2;
            }
            fence = (int)v;
        } else {
            fprintf(stderr, "usage: sluice compact [--day YYYY-MM-DD] [--fence-seconds N]\n");
            return 2;
        }
    }
    if (day >= 0)
        rc = sl_compact_day(c, day, fence, &st);
    else {
        struct sl_config cfg;
        char *none[] = {NULL};
        if (sl_config_load(&cfg, 0, none) != 0)
            return 2;
        while (rc == 0 && did && cfg.compact_after_hours > 0)
            rc = sl_compact_step(c, now - cfg.compact_after_hours * 3600 * 1000000, fence, &st,
                                 &did);
        sl_config_free(&cfg);
    }
    /* then the hour level of every closed hour's live blocks (fence: as compaction's) */
    did = true;
    while (rc == 0 && did)
        rc = sl_hour_level_step(c, now - (int64_t)fence * 1000000, fence, &hl, &did);
    printf("compacted: %lld rows of %lld (source, day) into %lld packs; %lld waiting for a "
           "writer; %lld failed; %lld day levels added to days packed before\n",
           st.rows, st.sources, st.packs, st.busy, st.skipped, st.levels);
    if (st.repacked)
        printf("compressed: %lld packs stored as arrays before\n", st.repacked);
    printf("hour level: %lld filter sets for %lld live blocks (%lld rows read); %lld failed\n",
           hl.levels, hl.blocks, hl.rows, hl.skipped);
    return rc || st.skipped || hl.skipped ? 1 : 0;
}

/* sluice archive restore --source S --day D [--from DIR] [--hold-days N] */
static int cmd_archive(int argc, char **argv, struct pg_conn *c)
{
    const char *src = NULL, *day = NULL, *from = NULL;
    int hold = 7;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--source") && i + 1 < argc)
            src = argv[++i];
        else if (!strcmp(argv[i], "--day") && i + 1 < argc)
            day = argv[++i];
        else if (!strcmp(argv[i], "--from") && i + 1 < argc)
            from = argv[++i];
        else if (!strcmp(argv[i], "--hold-days") && i + 1 < argc) {
            if ((hold = parse_days(argv[++i])) < 0) {
                fprintf(stderr, "sluice: --hold-days must be 1 to 3650\n");
                return 2;
            }
        } else {
            fprintf(stderr, "sluice: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (argc < 1 || strcmp(argv[0], "restore") != 0 || src == NULL || day == NULL) {
        fprintf(stderr, "usage: sluice archive restore --source S --day YYYY-MM-DD "
                        "[--from DIR] [--hold-days N]\n");
        return 2;
    }
    return sl_archive_restore_day(c, src, day, from, hold, stdout) ? 1 : 0;
}

/* sluice token add NAME (--source SRC)... | --all; token list; token rm NAME. Arguments
 * are checked before connecting, so a usage error is exit 2 even without a database. */
static int cmd_token(int argc, char **argv)
{
    const char **srcs = NULL;
    size_t nsrc = 0;
    bool all = false;
    const char *unknown = NULL;
    char token[SL_READ_TOKEN_LEN + 1];
    struct pg_conn *c = NULL;
    int rc = 2;

    if (argc < 1 || (!strcmp(argv[0], "list") && argc != 1) ||
        (!strcmp(argv[0], "rm") && argc != 2) ||
        (!strcmp(argv[0], "add") && (argc < 2 || argv[1][0] == '-')) ||
        (strcmp(argv[0], "list") && strcmp(argv[0], "rm") && strcmp(argv[0], "add"))) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[0], "add")) {
        if ((srcs = calloc((size_t)argc, sizeof(*srcs))) == NULL)
            return 1;
        for (int i = 2; i < argc; i++) {
            if (!strcmp(argv[i], "--all"))
                all = true;
            else if (!strcmp(argv[i], "--source") && i + 1 < argc)
                srcs[nsrc++] = argv[++i];
            else if (!strncmp(argv[i], "--source=", 9))
                srcs[nsrc++] = argv[i] + 9;
            else {
                fprintf(stderr, "sluice: unknown option %s\n", argv[i]);
                goto out;
            }
        }
        if (all == (nsrc > 0)) {
            fprintf(stderr, "sluice: token add needs --source NAME (repeatable) or --all, "
                            "not both\n");
            goto out;
        }
    }
    rc = 1;
    if (sl_db_connect(db_url(), &c))
        goto out;
    if (!strcmp(argv[0], "list")) {
        rc = sl_db_read_token_list(c, stdout) ? 1 : 0;
    } else if (!strcmp(argv[0], "rm")) {
        int e = sl_db_read_token_rm(c, argv[1]);
        if (e)
            fprintf(stderr, "sluice: could not remove read token %s: %s\n", argv[1],
                    e == SL_ENOTFOUND ? "no such read token" : sl_strerror(e));
        else
            printf("read token %s removed\n", argv[1]);
        rc = e ? 1 : 0;
    } else {
        int e = sl_db_read_token_add(c, argv[1], all, srcs, nsrc, token, &unknown);
        if (e == SL_ENOTFOUND && unknown)
            fprintf(stderr, "sluice: no source named %s; nothing stored (see sluice source list)\n",
                    unknown);
        else if (e)
            fprintf(stderr, "sluice: could not add read token %s: %s\n", argv[1],
                    e == SL_EINVAL ? "bad name (1-63 of A-Z a-z 0-9 . _ -, starting "
                                     "alphanumeric) or it exists already"
                                   : sl_strerror(e));
        else {
            printf("%s\nread token %s for %s", token, argv[1], all ? "all sources" : "");
            for (size_t i = 0; i < nsrc; i++)
                printf("%s%s", i ? "," : "", srcs[i]);
            printf(": send it as 'Authorization: Bearer TOKEN' or set SLUICE_TOKEN=TOKEN; "
                   "it is not shown again\n");
        }
        rc = e ? 1 : 0;
    }
out:
    sl_db_close(c);
    free(srcs);
    return rc;
}

int main(int argc, char **argv)
{
    struct pg_conn *c = NULL;
    int rc;

    if (getenv("SLUICE_LOG_LEVEL"))
        (void)sl_log_set_level(getenv("SLUICE_LOG_LEVEL"));
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "serve")) {
        struct sl_config cfg;
        rc = sl_config_load(&cfg, argc - 2, argv + 2);
        if (rc == 1) {
            sl_config_free(&cfg);
            return 0;
        }
        if (rc) {
            sl_config_free(&cfg);
            return 2;
        }
        rc = sl_server_run(&cfg);
        sl_config_free(&cfg);
        return rc;
    }
    if (!strcmp(argv[1], "token"))
        return cmd_token(argc - 2, argv + 2);
    if (!strcmp(argv[1], "search"))
        return sl_client_main(SL_CLIENT_SEARCH, argc - 2, argv + 2);
    if (!strcmp(argv[1], "tail"))
        return sl_client_main(SL_CLIENT_TAIL, argc - 2, argv + 2);
    if (!strcmp(argv[1], "rules") && argc >= 4 && !strcmp(argv[2], "check"))
        return sl_rules_check_file(argv[3], stdout);
    if (!strcmp(argv[1], "rules") && argc >= 4 && !strcmp(argv[2], "test")) {
        const char *src = NULL;
        for (int i = 4; i + 1 < argc; i++)
            if (!strcmp(argv[i], "--source"))
                src = argv[i + 1];
        return sl_rules_test(argv[3], src, stdin, stdout);
    }
    if (!strcmp(argv[1], "rules") &&
        !(argc >= 4 && !strcmp(argv[2], "apply")) && !(argc >= 3 && !strcmp(argv[2], "list"))) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "migrate") != 0 && strcmp(argv[1], "source") != 0 &&
        strcmp(argv[1], "rules") != 0 && strcmp(argv[1], "alerts") != 0 &&
        strcmp(argv[1], "crashes") != 0 && strcmp(argv[1], "archive") != 0 &&
        strcmp(argv[1], "compact") != 0) {
        fprintf(stderr, "sluice: unknown command %s\n\n", argv[1]);
        usage(stderr);
        return 2;
    }
    if (sl_db_connect(db_url(), &c))
        return 1;
    if (!strcmp(argv[1], "migrate"))
        rc = sl_db_migrate(c, stdout) || sl_db_pack_module(c, stdout) < 0 ? 1 : 0;
    else if (sl_db_schema_check(c))
        rc = 1;
    else if (!strcmp(argv[1], "rules"))
        rc = !strcmp(argv[2], "apply") ? sl_rules_apply(c, argv[3], stdout)
                                       : sl_rules_list(c, stdout);
    else if (!strcmp(argv[1], "alerts")) {
        int limit = 50;
        for (int i = 2; i + 1 < argc; i++)
            if (!strcmp(argv[i], "--limit"))
                limit = atoi(argv[i + 1]);
        rc = sl_alerts_list(c, limit, stdout);
    } else if (!strcmp(argv[1], "crashes"))
        rc = sl_crashes_main(c, argc - 2, argv + 2, stdout);
    else if (!strcmp(argv[1], "archive"))
        rc = cmd_archive(argc - 2, argv + 2, c);
    else if (!strcmp(argv[1], "compact"))
        rc = cmd_compact(argc - 2, argv + 2, c);
    else
        rc = cmd_source(argc - 2, argv + 2, c);
    sl_db_close(c);
    return rc;
}
