#!/usr/bin/env bash
# The web viewer's first paint and first results (issue 14, docs/viewer.md "Speed"):
# `tests/bench/viewer.sh` (make bench-viewer).
#
# A private PostgreSQL (deploy/pg.sh) in a temporary directory, filled by
# `searchgen load --writer-blocks` with VIEWER_LINES corpus-shaped lines over 7 days and 50
# sources (the search bench's loader, tests/bench/searchgen.c), then `sluice serve` on
# 127.0.0.1 and tests/bench/viewerbench.js: headless Chromium (Debian's chromium, driven by
# playwright-core from $BUILD/npm) signs in once and loads the page VIEWER_RUNS times per
# query, reading the browser's performance timings (first-contentful-paint, the viewer's
# `sluice-first-results` mark, the aggregate request's end). Prints RESULT lines. Everything
# it starts it stops on exit.
#
# Screenshots of the loaded set go to VIEWER_SHOTS ($BUILD/artifacts).
# Knobs: VIEWER_LINES (10000000), VIEWER_RUNS (10), VIEWER_SHOTS, BUILD (build), BENCH_KEEP=1.
set -euo pipefail

BUILD=${BUILD:-build}
LINES=${VIEWER_LINES:-10000000}
RUNS=${VIEWER_RUNS:-10}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
log() { echo "viewer-bench: $*" >&2; }
die() { log "$*"; exit 1; }

make -s all
mkdir -p "$BUILD"/bench
# shellcheck disable=SC2046
cc -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wmissing-prototypes -O2 -g -Iinclude \
    $(pkg-config --cflags libpq) -o "$BUILD"/bench/searchgen tests/bench/searchgen.c \
    "$BUILD"/libsluice.a $(pkg-config --libs libpq) -lm
[ -f "$BUILD/npm/node_modules/playwright-core/package.json" ] ||
    npm install --no-audit --no-fund --prefix "$BUILD/npm" playwright-core >&2
[ -x /usr/bin/chromium ] || die "/usr/bin/chromium is missing (deploy/deps.sh installs it)"

tmp=$(mktemp -d /tmp/sluice-viewer-bench.XXXXXX)
chmod 0755 "$tmp"
sluice_pid=
pg_started=0
cleanup() {
    local rc=$?
    set +e
    if [ -n "$sluice_pid" ]; then
        kill -TERM "$sluice_pid" 2>/dev/null
        wait "$sluice_pid" 2>/dev/null
    fi
    if [ $pg_started = 1 ]; then
        data=$(realpath -m -- "$tmp/pg")/data
        if [ -f "$data/postmaster.pid" ]; then
            if [ "$(id -u)" -eq 0 ]; then
                (cd / && runuser -u postgres -- "$PGBIN/pg_ctl" -D "$data" -w -t 60 -s -m fast stop)
            else
                (cd / && "$PGBIN/pg_ctl" -D "$data" -w -t 60 -s -m fast stop)
            fi
        fi >/dev/null 2>&1
        [ "${BENCH_KEEP:-0}" = 1 ] || timeout 60 deploy/pg.sh destroy "$tmp/pg" >/dev/null 2>&1
    fi
    [ "${BENCH_KEEP:-0}" = 1 ] && log "kept $tmp" || rm -rf -- "$tmp"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pg_started=1
DATABASE_URL=$(deploy/pg.sh start "$tmp/pg" | tail -n 1)
export DATABASE_URL
"$BUILD"/sluice migrate >&2
log "loading $LINES lines over 7 days and 50 sources"
t0=$(date +%s)
"$BUILD"/bench/searchgen load "$DATABASE_URL" --lines "$LINES" --create-sources app \
    --ids-from-seq --partitions --writer-blocks --async-commit >&2
psql -X -q -v ON_ERROR_STOP=1 -d "$DATABASE_URL" -c "ANALYZE" >&2
log "loaded in $(( $(date +%s) - t0 )) s"
token=$("$BUILD"/sluice token add viewerbench --all 2>/dev/null | head -n 1)
[[ "$token" == slr_* ]] || die "sluice token add printed no token"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
SLUICE_BIND=127.0.0.1 PORT=$port SLUICE_HTTPS_PORT=0 SLUICE_SYSLOG_TLS_PORT=0 SLUICE_SYSLOG_PORT=0 \
    SLUICE_SPOOL_DIR="$tmp/spool" SLUICE_LOG_LEVEL=warn "$BUILD"/sluice serve 2>"$tmp/sluice.log" &
sluice_pid=$!
for _ in $(seq 1 200); do
    curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break
    sleep 0.1
done
# the start-up retention pass scans the table: wait for it, as tests/bench/run.sh does
sleep 0.5
for _ in $(seq 1 1200); do
    busy=$(psql -X -qtA -d "$DATABASE_URL" -c "SELECT count(*) FROM pg_stat_activity WHERE
        datname = current_database() AND state = 'active' AND query LIKE 'DELETE FROM log%'")
    [ "$busy" = 0 ] && break
    sleep 0.1
done
rows=$(psql -X -qtA -d "$DATABASE_URL" -c "SELECT count(*) FROM logs")
log "sluice on 127.0.0.1:$port over $rows stored lines; $RUNS page loads per query"
VIEWER_SHOTS=${VIEWER_SHOTS:-$BUILD/artifacts} NODE_PATH="$BUILD/npm/node_modules" node tests/bench/viewerbench.js "http://127.0.0.1:$port" \
    "$token" "$RUNS" "" "KeyError" "status:>=500" | sed "s/^RESULT /RESULT lines=$rows /"
