#!/usr/bin/env bash
# Benchmarks for docs/benchmarks.md: `tests/bench/run.sh quick|full` (make bench-quick / bench).
#
# Builds sluice, the parse bench and the load generator; starts a private PostgreSQL
# (deploy/pg.sh) and a self-signed certificate in a temporary directory; then measures
#   1. parsebench: memchr / framing / syslog parse over the stream corpus, one core
#   2. loadgen -> sluice over HTTPS, fsync on, then SLUICE_FSYNC=off (a fresh sluice and a
#      fresh spool for each run, so each has its own peak RSS); each run ends when every
#      accepted line is committed in PostgreSQL (sluice_lines_stored_total)
#   3. the COPY ceiling: the rows of the last run dumped with \copy and loaded back into the
#      truncated table with \copy, one psql connection: once in one transaction, once in
#      transactions of 10 000 rows (the writer's batch)
#   4. syslog over plain TCP, octet-counted RFC 5424 frames from `loadgen --syslog`, the same
#      lines (HOSTNAME = the source's drain token) into the same PostgreSQL:
#      sluice (SLUICE_SYSLOG_PORT, fsync on, BENCH_LINES lines) and the peers with
#      BENCH_PEER_LINES lines each: rsyslog imptcp -> ompgsql with 1 and 2 queue workers,
#      syslog-ng syslog(transport("tcp")) -> sql(). Each peer writes to its own table
#      created LIKE logs (same columns, defaults and btree index, partitioned with one
#      DEFAULT partition); a run ends when count(*) reaches the line count. Peer configs are
#      tests/bench/peers/*.conf.in; their pid, work and persist files live in the temporary
#      directory. rsyslog needs rsyslog-pgsql installed; syslog-ng (which conflicts with the
#      rsyslog package) is unpacked from its .deb files into build/bench/syslog-ng/root
#      (apt-get download + dpkg -x, once) and run from there. A peer that cannot run is
#      skipped, with the reason in the table.
#   5. rulesbench: the rule matcher (rules/match.c) over the stream corpus, one core, with 1,
#      10 and 100 rules (literal prefilter on, and off for comparison), and the per-line cost
#      of a catastrophic pattern on a line built to make it backtrack until the PCRE2 limit
#   6. alert latency: a `match` rule grouped by a named capture that is unique per probe
#      line, a webhook destination on 127.0.0.1 (tests/bench/alertlat.py receives it);
#      BENCH_ALERT_PROBES probe lines posted one at a time over HTTPS into sluice (fsync on),
#      each timed from request sent to its webhook received. quick: idle; full: idle, then
#      again while loadgen --rate BENCH_ALERT_LOAD_RATE lines/s runs into the same sluice.
#      The time is split into stages from PostgreSQL and sluice's log (see alertlat.py).
#   8. crashes (issue 11, docs/crashes.md): BENCH_CRASH_PROBES Python traces (8 lines, one
#      POST each, 0.2 s apart, on 50 dynos) into sluice (fsync on, default gap and settle
#      delay) with SENTRY_DSN pointing at tests/bench/crashlat.py's envelope endpoint on
#      127.0.0.1: last line acknowledged -> envelope received, p50/p99; then the HTTPS fsync-on
#      ingest run again with SLUICE_CRASHES=off, for the cost of crash assembly on ingest.
#   7. search and tail (issue 3): BENCH_SEARCH_LINES lines over 7 days and 50 sources loaded
#      into a database of its own by `searchgen load --writer-blocks` (the writer's
#      log_blocks code and statement), checked by `searchgen verify`; sluice serves it and
#      tests/bench/searchbench.py times selective word, phrase, request-id and status:>=500
#      searches over HTTPS (all sources and one source) and tail latency (POST 2xx -> SSE
#      event). The HTTPS fsync-on ingest row is the ingest target with the search filters
#      (the writer's log_blocks in the same transactions).
# Prints one table and rewrites docs/benchmarks.md. Everything it starts it stops on exit.
# Only 127.0.0.1 is used.
#
# Knobs (environment): BENCH_CONNECTIONS (8), BENCH_LINES (quick 200000, full 1000000),
# BENCH_LINES_PER_BODY (100), BENCH_SYSLOG_CONNECTIONS (4), BENCH_PEER_LINES (quick 20000,
# full 300000), BENCH_PEERS (1; 0 skips the peers), BENCH_KEEP=1 keeps the temporary directory,
# BENCH_DOC (docs/benchmarks.md; empty: do not write it), BENCH_PERF=DIR records
# `perf record -a -g` of each load run into DIR/perf-RUN.data (the whole machine: sluice,
# PostgreSQL and the load generator), BENCH_RULES_LINES (lines per timed rulesbench pass:
# quick 300000, full 2000000), BENCH_ALERT_PROBES (quick 50, full 200), BENCH_ALERT_PAUSE
# (seconds between probes, 0.075), BENCH_ALERT_LOAD_RATE (background lines/s in full, 50000;
# 0: no loaded run), BENCH_COMPACT=1 (pack the search data's closed days first: compact_days),
# BENCH_SEARCH_LINES (quick 1000000, full 10000000), BENCH_SEARCH_RUNS (timed
# runs per search kind and scope, 30), BENCH_TAIL_SAMPLES (200), BENCH_ONLY=search (only the
# search section; docs/benchmarks.md is then not written), BENCH_ONLY=crash (only the HTTPS
# fsync-on run and section 8; the same), BENCH_CRASH_PROBES (quick 50, full 200), BENCH_SEARCH_EXPLAIN=MS (diagnosis:
# auto_explain plans of statements over MS ms into BUILD/bench/search-explain.log; slows every
# statement), BUILD (build directory, build).
set -euo pipefail

mode=${1:-}
case "$mode" in
quick) lines_default=200000 peer_lines_default=20000 rules_lines_default=300000 probes_default=50 load_rate_default=0 search_lines_default=1000000 ;;
full) lines_default=1000000 peer_lines_default=300000 rules_lines_default=2000000 probes_default=200 load_rate_default=50000 search_lines_default=10000000 ;;
*)
    echo "usage: tests/bench/run.sh quick|full" >&2
    exit 2
    ;;
esac

cd "$(dirname -- "$0")/../.."
root=$PWD
LINES=${BENCH_LINES:-$lines_default}
CONNS=${BENCH_CONNECTIONS:-8}
SYSLOG_CONNS=${BENCH_SYSLOG_CONNECTIONS:-4}
PEER_LINES=${BENCH_PEER_LINES:-$peer_lines_default}
PEERS=${BENCH_PEERS:-1}
PER_BODY=${BENCH_LINES_PER_BODY:-100}
RULES_LINES=${BENCH_RULES_LINES:-$rules_lines_default}
PROBES=${BENCH_ALERT_PROBES:-$probes_default}
PROBE_PAUSE=${BENCH_ALERT_PAUSE:-0.075}
LOAD_RATE=${BENCH_ALERT_LOAD_RATE:-$load_rate_default}
DOC=${BENCH_DOC-docs/benchmarks.md}
SEARCH_LINES=${BENCH_SEARCH_LINES:-$search_lines_default}
SEARCH_RUNS=${BENCH_SEARCH_RUNS:-30}
TAIL_SAMPLES=${BENCH_TAIL_SAMPLES:-200}
CRASH_PROBES=${BENCH_CRASH_PROBES:-$probes_default}
ONLY=${BENCH_ONLY:-}
case "$ONLY" in
"") ;;
search | crash) DOC= ;; # a partial table never replaces docs/benchmarks.md
*) echo "BENCH_ONLY: only 'search' or 'crash' is known" >&2; exit 2 ;;
esac
cmdline="tests/bench/run.sh $*"
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
BUILD=${BUILD:-build} # the build directory (make BUILD=...)

log() { echo "bench: $*" >&2; }
die() {
    log "$*"
    exit 1
}

# ------------------------------------------------------------------ build
CFLAGS_BENCH="-std=c11 -D_GNU_SOURCE -pedantic -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes
 -Wmissing-prototypes -Wformat=2 -Wvla -Wcast-qual -Wwrite-strings -Wundef -O2 -g -Iinclude"
log "building"
make -s BUILD="$BUILD" all "$BUILD/libsluice.a" >&2
mkdir -p "$BUILD"/bench
# shellcheck disable=SC2086
cc $CFLAGS_BENCH -o "$BUILD"/bench/parsebench tests/bench/parsebench.c "$BUILD"/libsluice.a -lm
# shellcheck disable=SC2086,SC2046
cc $CFLAGS_BENCH $(pkg-config --cflags libevent_openssl openssl zlib) -o "$BUILD"/bench/loadgen \
    tests/bench/loadgen.c $(pkg-config --libs libevent_openssl openssl zlib)
# shellcheck disable=SC2086,SC2046
cc $CFLAGS_BENCH -o "$BUILD"/bench/rulesbench tests/bench/rulesbench.c "$BUILD"/libsluice.a \
    $(pkg-config --libs libpcre2-8) -lm
# shellcheck disable=SC2086
cc $CFLAGS_BENCH -o "$BUILD"/bench/crashbench tests/bench/crashbench.c "$BUILD"/libsluice.a -lcrypto -lm
cc -std=c11 -Wall -Wextra -Werror -O2 -shared -fPIC -o "$BUILD"/bench/dbi_driver_dir.so \
    tests/bench/peers/dbi_driver_dir.c -ldl
# shellcheck disable=SC2046
cc -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wmissing-prototypes -O2 -g -Iinclude \
    $(pkg-config --cflags libpq) -o "$BUILD"/bench/searchgen tests/bench/searchgen.c \
    "$BUILD"/libsluice.a $(pkg-config --libs libpq) -lm

# ------------------------------------------------------------------ temp dir, clean-up
tmp=$(mktemp -d /tmp/sluice-bench.XXXXXX)
chmod 0755 "$tmp" # deploy/pg.sh runs postgres as `postgres` when we are root
sluice_pid=
perf_pid=
peer_pid=
bg_pid=
pg_started=0

stop_perf() {
    [ -n "$perf_pid" ] || return 0
    kill -INT "$perf_pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
        kill -0 "$perf_pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$perf_pid" 2>/dev/null || true
    wait "$perf_pid" 2>/dev/null || true
    perf_pid=
}

stop_sluice() {
    [ -n "$sluice_pid" ] || return 0
    if kill -0 "$sluice_pid" 2>/dev/null; then
        kill -TERM "$sluice_pid" 2>/dev/null || true
        for _ in $(seq 1 300); do # at most 30 s (its shutdown grace is 25 s)
            kill -0 "$sluice_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$sluice_pid" 2>/dev/null || true
    fi
    wait "$sluice_pid" 2>/dev/null || true
    sluice_pid=
}

# Stops the cluster with pg_ctl itself, then lets deploy/pg.sh remove it. Versions of
# deploy/pg.sh before 98cd4b4 let the postmaster inherit their flock on the parent directory
# (fd 9), so a later `deploy/pg.sh stop` waited on it forever; this works with both.
stop_pg() {
    local data
    data=$(realpath -m -- "$tmp/pg")/data
    [ -f "$data/postmaster.pid" ] || return 0
    if [ "$(id -u)" -eq 0 ]; then
        (cd / && runuser -u postgres -- "$PGBIN/pg_ctl" -D "$data" -w -t 60 -s -m fast stop)
    else
        (cd / && "$PGBIN/pg_ctl" -D "$data" -w -t 60 -s -m fast stop)
    fi
}

# Stops the running peer (rsyslogd or syslog-ng): TERM, then KILL after 15 s.
stop_peer() {
    [ -n "$peer_pid" ] || return 0
    if kill -0 "$peer_pid" 2>/dev/null; then
        kill -TERM "$peer_pid" 2>/dev/null || true
        for _ in $(seq 1 150); do
            kill -0 "$peer_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$peer_pid" 2>/dev/null || true
    fi
    wait "$peer_pid" 2>/dev/null || true
    peer_pid=
}

# Stops the background load generator of the alert run (TERM; it holds no state).
stop_bg() {
    [ -n "$bg_pid" ] || return 0
    kill -TERM "$bg_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
        kill -0 "$bg_pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$bg_pid" 2>/dev/null || true
    wait "$bg_pid" 2>/dev/null || true
    bg_pid=
}

cleanup() {
    local rc=$?
    set +e
    stop_bg
    stop_perf
    stop_peer
    stop_sluice
    if [ $pg_started = 1 ]; then
        stop_pg >/dev/null 2>&1
        if [ "${BENCH_KEEP:-0}" != 1 ]; then
            timeout 60 deploy/pg.sh destroy "$tmp/pg" >/dev/null 2>&1
        fi
    fi
    if [ "${BENCH_KEEP:-0}" = 1 ]; then
        log "kept $tmp"
    else
        rm -rf -- "$tmp"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------------ PostgreSQL, cert, source
log "starting PostgreSQL in $tmp/pg"
pg_started=1
DATABASE_URL=$(deploy/pg.sh start "$tmp/pg" | tail -n 1)
export DATABASE_URL
psql_q() { psql -X -q -v ON_ERROR_STOP=1 -d "$DATABASE_URL" -tAc "$1"; }
pg_version=$(psql_q "SHOW server_version")
pg_shared_buffers=$(psql_q "SHOW shared_buffers")

mkdir -p "$tmp/tls"
cert=$tmp/tls/cert.pem
key=$tmp/tls/key.pem
if [ -x deploy/cert.sh ]; then
    deploy/cert.sh "$tmp" >&2 || true # writes $tmp/tls/cert.pem and key.pem
fi
if [ ! -s "$cert" ] || [ ! -s "$key" ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=127.0.0.1" \
        -addext "subjectAltName=IP:127.0.0.1" -keyout "$key" -out "$cert" >/dev/null 2>&1 ||
        die "openssl req failed"
fi
chmod 0600 "$key"

"$BUILD"/sluice migrate >&2
# The drain token is what Heroku puts in HOSTNAME on syslog drains: the syslog runs use it
# as the HOSTNAME of every line (sluice maps it to the source; the peers just store it).
drain_token=d.$(cat /proc/sys/kernel/random/uuid)
drain_url=$("$BUILD"/sluice source add bench --drain-token "$drain_token" 2>/dev/null | tail -n 1)
creds=${drain_url#https://}
creds=${creds%%@*}
[ -n "$creds" ] && [ "$creds" != "$drain_url" ] || die "cannot read the drain URL ($drain_url)"

# ------------------------------------------------------------------ helpers
free_port() {
    local p
    for _ in $(seq 1 100); do
        p=$((20000 + RANDOM % 30000))
        if ! ss -Htln "sport = :$p" 2>/dev/null | grep -q .; then
            echo "$p"
            return 0
        fi
    done
    die "no free port"
}

metric() { # metric NAME: value from /metrics, 0 when absent
    curl -s --max-time 2 "http://127.0.0.1:$http_port/metrics" |
        awk -v n="$1" '$1 == n { print $2; found = 1 } END { if (!found) print 0 }'
}

start_sluice() { # start_sluice NAME FSYNC [SYSLOG_PORT [LOG_LEVEL]]
    local name=$1 fsync=$2 syslog_port=${3:-0} level=${4:-${BENCH_LOG_LEVEL:-warn}}
    http_port=$(free_port)
    https_port=$(free_port)
    [ "$http_port" != "$https_port" ] || https_port=$((http_port + 1))
    SLUICE_BIND=127.0.0.1 PORT=$http_port SLUICE_HTTPS_PORT=$https_port \
        SLUICE_SYSLOG_PORT=$syslog_port \
        SLUICE_TLS_CERT=$cert SLUICE_TLS_KEY=$key SLUICE_SPOOL_DIR=$tmp/spool-$name \
        SLUICE_FSYNC=$fsync SLUICE_LOG_LEVEL=$level SLUICE_ALERT_ALLOW_PRIVATE=127.0.0.1 \
        SLUICE_PUBLIC_URL=https://127.0.0.1:$https_port \
        "$BUILD"/sluice serve 2>"$tmp/sluice-$name.log" &
    sluice_pid=$!
    for _ in $(seq 1 100); do # 10 s
        if [ "$(curl -s --max-time 1 "http://127.0.0.1:$http_port/readyz" || true)" = ready ]; then
            return 0
        fi
        kill -0 "$sluice_pid" 2>/dev/null || break
        sleep 0.1
    done
    tail -n 20 "$tmp/sluice-$name.log" >&2
    die "sluice did not become ready"
}

# Every run starts from empty tables and a fresh checkpoint, so that no run pays for the
# checkpoint (and the full-page writes after it) of the WAL its predecessor wrote.
reset_tables() {
    psql_q "TRUNCATE logs, log_blocks, ingest_frames, spool_checkpoints" >/dev/null
    psql_q "CHECKPOINT" >/dev/null
}

kv() { # kv KEY LINE: value of KEY=... in a RESULT line
    tr ' ' '\n' <<<"$2" | awk -F= -v k="$1" '$1 == k { print $2 }'
}

# Client connections to the bench database other than the asking one.
db_conns() {
    psql_q "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'
            AND datname = current_database() AND pid <> pg_backend_pid()" 2>/dev/null || echo 0
}

# CPU seconds (user + system) of a process, all threads.
cpu_s() {
    awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.1f", ($12 + $13) / hz }' \
        "/proc/$1/stat" 2>/dev/null || echo "?"
}

peak_rss() {
    awk '/^VmHWM/ { printf "%.0f MB", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo "?"
}

k() { printf '%.1fk' "$(bc -l <<<"$1/1000")"; }
ratio() { printf '%.2f' "$(bc -l <<<"$1 / $2")"; }

declare -a rows_tbl=()
add_row() { rows_tbl+=("$(printf '| %s | %s | %s | %s | %s | %s |' "$@")"); }

if [ -z "$ONLY" ]; then # every section up to the search one
# ------------------------------------------------------------------ 1. parse bench
log "parse bench"
parse_out=$("$BUILD"/bench/parsebench)
echo "$parse_out" >&2
for pass in memchr frame frame+parse; do
    read -r mbs lps < <(awk -v p="$pass" '$1 == p { print $2, $3 }' <<<"$parse_out")
    add_row "parse: $pass (1 core, in memory)" "$(printf '%.1fM' "$(bc -l <<<"$lps/1000000")")" \
        "$mbs MB/s" "" "" ""
done

# ------------------------------------------------------------------ 1b. rules bench
# Lines/s of the matcher alone (no I/O), best of 3 passes of ~RULES_LINES lines.
log "rules bench ($RULES_LINES lines per pass)"
rules_out=$("$BUILD"/bench/rulesbench "tests/fixtures/corpus/streams/*/*.logplex" "$RULES_LINES")
echo "$rules_out" >&2
rb_field() { # rb_field LABEL N: field N after the 28-column label of rulesbench's line LABEL
    awk -v l="$1" -v n="$2" '{ lab = substr($0, 1, 28); sub(/ +$/, "", lab) }
        lab == l { split(substr($0, 29), f, " +"); i = (f[1] == "" ? n + 1 : n); print f[i]; exit }' <<<"$rules_out"
}
rb_off() { # lines/s of the "(prefilter off)" line after LABEL
    awk -v l="$1" '{ lab = substr($0, 1, 28); sub(/ +$/, "", lab) }
        found && lab == "  (prefilter off)" { split(substr($0, 29), f, " +"); print (f[1] == "" ? f[2] : f[1]); exit }
        lab == l { found = 1 }' <<<"$rules_out"
}
mlps() { printf '%.2fM' "$(bc -l <<<"$1/1000000")"; }
for r in "1 rule" "10 rules" "100 rules"; do
    lps=$(rb_field "$r" 1)
    off=$(rb_off "$r")
    if [ -z "$lps" ] || [ -z "$off" ]; then die "cannot read rulesbench's \"$r\" line"; fi
    note="prefilter off: $(mlps "$off") lines/s; PCRE2 skipped by the prefilter for $(rb_field "$r" 2) of in-scope rule checks; $(rb_field "$r" 3) hits/line"
    label="rules: $r, evaluation (1 core, in memory)"
    if [ "$r" = "100 rules" ]; then
        label="**rules: 100 rules, evaluation (1 core, in memory)** (target ≥ 1M)"
        if [ "$(bc -l <<<"$lps >= 1000000")" = 1 ]; then note="target met; $note"; else note="TARGET MISSED; $note"; fi
    fi
    add_row "$label" "$(mlps "$lps")" "$(mlps "$lps") lines/s per core" "" "" "$note"
done
lit_label=$(awk '{ lab = substr($0, 1, 28); sub(/ +$/, "", lab) } lab ~ /rules, all with literal$/ { print lab; exit }' <<<"$rules_out")
if [ -n "$lit_label" ]; then
    lps=$(rb_field "$lit_label" 1)
    add_row "rules: ${lit_label/, all with literal/ with a required literal} (1 core, in memory)" "$(mlps "$lps")" "" "" "" \
        "the 100 minus the rules with no literal (those always run PCRE2); prefilter skips PCRE2 for $(rb_field "$lit_label" 3) of in-scope rule checks"
fi
# ------------------------------------------------------------------ 1c. crash bench
# The crash anchor the writer runs per stored line, the assembler, and its memory with
# 1 000 dynos each in the middle of a trace (tests/bench/crashbench.c).
log "crash bench"
crash_out=$("$BUILD"/bench/crashbench "tests/fixtures/corpus/streams/*/*.logplex" "$RULES_LINES")
echo "$crash_out" >&2
cb() { awk -v n="$1" '$1 == n { print $2; exit }' <<<"$crash_out"; }
[ -n "$(cb anchor-ordinary)" ] && [ -n "$(cb memory-malloc)" ] || die "cannot read crashbench's output"
add_row "crash: anchor per stored line (1 core, in memory)" "" "$(cb anchor) ns/line" "" "" \
    "ordinary lines $(cb anchor-ordinary) ns/line: $(bc -l <<<"scale=2; $(cb anchor-ordinary) * 100 / 5000")% of the writer's ~5 µs/line (target < 1 %)"
add_row "crash: assembler, corpus lines (1 core, in memory)" "$(mlps "$(cb assemble)")" "" "" "" \
    "one assembler per procid; mostly ordinary lines"
add_row "crash: assembler, trace lines only (1 core, in memory)" "$(mlps "$(cb assemble-trace)")" "" "" "" \
    "a 40-frame Python trace, a JVM trace with a cause, a Go panic, over and over"
add_row "crash: memory, 1 000 dynos each mid-trace" "" "" "" "$(( $(cb memory-malloc) * 1000 / 1024 )) KiB" \
    "$(cb memory-malloc) bytes per open assembler (malloc), $(cb memory-counted) counted; each bounded by max_lines/max_bytes"

lps=$(rb_field '"(a+)+$", corpus lines' 1)
add_row 'rules: catastrophic "(a+)+$" alone, corpus lines' "$(mlps "$lps")" "" "" "" \
    "no backtracking on ordinary lines (no run of a's followed by a non-a)"
evil=$(awk '{ lab = substr($0, 1, 28); sub(/ +$/, "", lab) } lab == "\"(a+)+$\", 30 '"'"'a'"'"' + '"'"'b'"'"'" { print substr($0, 29); exit }' <<<"$rules_out")
read -r evil_lps evil_us _ _ _ evil_hits _ evil_n <<<"${evil//,/}"
[ -n "$evil_n" ] || die "cannot read rulesbench's catastrophic line: $evil"
add_row "**rules: catastrophic \"(a+)+\$\", 30 'a' + 'b'** (bounded, limit hit)" "$(printf '%.1fk' "$(bc -l <<<"$evil_lps/1000")")" \
    "$evil_us µs/line" "" "" \
    "PCRE2 limit hit on $evil_hits of $evil_n lines: bounded, counted as no match and reported (sluice_rule_limit_hits_total, a log line)"

fi # [ -z "$ONLY" ]: run_load is defined for BENCH_ONLY=crash too

# ------------------------------------------------------------------ 2. loadgen runs
declare -A e2e_lps=() drain_lps=()
last_lines=0
run_load() { # run_load NAME FSYNC LABEL
    local name=$1 fsync=$2 label=$3 out result rc lines_ok first stored t_end e2e hwm
    local timeout_s=$((60 + LINES / 2000))
    reset_tables
    start_sluice "$name" "$fsync"
    log "run $name: $LINES lines, $CONNS connections, fsync=$fsync"
    if [ -n "${BENCH_PERF:-}" ]; then
        mkdir -p "$BENCH_PERF"
        perf record -F 999 -a -g -o "$BENCH_PERF/perf-$name.data" >/dev/null 2>&1 &
        perf_pid=$!
        sleep 1
    fi
    rc=0
    out=$("$BUILD"/bench/loadgen --url "https://$creds@127.0.0.1:$https_port/logs" \
        --connections "$CONNS" --lines "$LINES" --lines-per-body "$PER_BODY" \
        --duration-max "$timeout_s") || rc=$?
    echo "$out" >&2
    # Stored so far and when: what the writer commits after the client has stopped shows
    # PostgreSQL's pace without the load generator's share of the CPUs.
    local t_load stored_load
    t_load=$(date +%s.%N)
    stored_load=$(metric sluice_lines_stored_total)
    result=$(grep '^RESULT ' <<<"$out" || true)
    [ -n "$result" ] || die "loadgen printed no RESULT"
    [ "$(kv tls "$result")" = yes ] || die "loadgen did not confirm TLS"
    lines_ok=$(kv lines_ok "$result")
    first=$(kv first_send_epoch "$result")
    # Wait until every accepted line is committed (bounded), polling the counter.
    stored=0
    # Every 0.1 s: finer polling (a curl each time) takes CPU from PostgreSQL on a
    # small machine; the end time is late by at most one interval.
    local i=0 nconn=0 c
    for i in $(seq 1 $((timeout_s * 10))); do
        stored=$(metric sluice_lines_stored_total)
        [ "${stored%.*}" -ge "$lines_ok" ] && break
        if [ $((i % 20)) = 1 ]; then # connections, every 2 s
            c=$(db_conns)
            [ "$c" -le "$nconn" ] || nconn=$c
        fi
        sleep 0.1
    done
    t_end=$(date +%s.%N)
    stop_perf
    [ "${stored%.*}" -ge "$lines_ok" ] || die "only $stored of $lines_ok lines stored after ${timeout_s}s"
    hwm=$(awk '/^VmHWM/ { printf "%.0f MB", $2 / 1024 }' "/proc/$sluice_pid/status")
    # CPU seconds per sluice thread (the main thread is the event loop; the busiest other
    # one is normally the writer).
    local tcpu cpu_loop cpu_total
    tcpu=$(for t in /proc/"$sluice_pid"/task/*; do
        awk -v tid="${t##*/}" -v main="$sluice_pid" -v hz="$(getconf CLK_TCK)" \
            '{ sub(/^.*\) /, ""); c = ($12 + $13) / hz; if (c >= 0.01) printf "%s%s=%.2fs ", (tid == main ? "loop" : "t"), (tid == main ? "" : tid), c }' "$t/stat"
    done)
    log "run $name: sluice CPU by thread: $tcpu"
    cpu_loop=$(awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.1f", ($12 + $13) / hz }' \
        "/proc/$sluice_pid/task/$sluice_pid/stat")
    cpu_total=$(awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.1f", ($12 + $13) / hz }' \
        "/proc/$sluice_pid/stat")
    local count
    count=$(psql_q "SELECT count(*) FROM logs")
    [ "$count" -ge "$lines_ok" ] || die "count(*) = $count < $lines_ok"
    e2e=$(bc -l <<<"$lines_ok / ($t_end - $first)")
    e2e_lps[$name]=$e2e
    local after=""
    if [ "$(bc -l <<<"$lines_ok - ${stored_load%.*} >= 100000")" = 1 ]; then
        drain_lps[$name]=$(bc -l <<<"($lines_ok - ${stored_load%.*}) / ($t_end - $t_load)")
        after="after the client stopped: $(printf '%.1fk' "$(bc -l <<<"${drain_lps[$name]}/1000")") lines/s committed ($(( lines_ok - ${stored_load%.*} )) lines); "
    fi
    last_lines=$count
    # The search filters: the writer upserts log_blocks in the same transactions as the rows.
    local nblk blk_rows target=""
    read -r nblk blk_rows <<<"$(psql_q "SELECT count(*), coalesce(sum(nrows), 0) FROM log_blocks" | tr '|' ' ')"
    if [ "$nblk" = 0 ]; then
        label="$label, NO search filters"
        target="the writer wrote no log_blocks, so this is ingest WITHOUT the search filters; "
    else
        label="$label, with search filters"
        if [ "$name" = fsync-on ]; then
            label="**$label** (target ≥ 100k)"
            if [ "$(bc -l <<<"$e2e >= 100000")" = 1 ]; then target="target met; "; else target="TARGET MISSED; "; fi
        fi
        target+="search filters: $nblk log_blocks rows covering $blk_rows rows, written in the same transactions; "
    fi
    add_row "$label" "$(printf '%.1fk' "$(bc -l <<<"$e2e/1000")")" \
        "$(printf '%.1fk lines/s accepted' "$(bc -l <<<"$(kv lines_per_s "$result")/1000")")" \
        "$(kv p50_ms "$result") / $(kv p99_ms "$result") ms" "$hwm" \
        "$target$after$lines_ok lines; non-204 $(kv non2xx "$result"), failed $(kv failed "$result"); sluice CPU ${cpu_total} s (event loop ${cpu_loop} s); DB connections seen: $nconn"
    stop_sluice
    [ $rc = 0 ] || die "loadgen failed (exit $rc)"
}

if [ -z "$ONLY" ]; then
run_load fsync-on on "HTTPS -> PostgreSQL, fsync on"
run_load fsync-off off "HTTPS -> PostgreSQL, SLUICE_FSYNC=off"

# ------------------------------------------------------------------ 3. COPY ceiling
log "COPY ceiling over $last_lines rows"
cols="received_at, source_id, emitted_at, emitted_precision, emitted_offset, facility, severity,
 hostname, app_name, procid, msgid, sd, message, message_raw, parse_error, truncated_from, tags,
 frame_id"
cols=$(tr -d '\n' <<<"$cols")
dump=$tmp/rows.copy
psql -X -q -v ON_ERROR_STOP=1 -d "$DATABASE_URL" -c "\\copy (SELECT $cols FROM logs) TO '$dump'"
load_rows() { # load_rows PSQL_ARGS...: empty logs, load it with psql ARGS; prints rows/s
    local t0 t1 loaded
    psql_q "TRUNCATE logs" >/dev/null
    psql_q "CHECKPOINT" >/dev/null
    t0=$(date +%s.%N)
    psql -X -q -v ON_ERROR_STOP=1 -d "$DATABASE_URL" "$@" >&2
    t1=$(date +%s.%N)
    loaded=$(psql_q "SELECT count(*) FROM logs")
    [ "$loaded" = "$last_lines" ] || die "ceiling loaded $loaded rows, expected $last_lines"
    bc -l <<<"$loaded / ($t1 - $t0)"
}
ceiling=$(load_rows -c "\\copy logs($cols) FROM '$dump'")
ratio_on=$(bc -l <<<"${e2e_lps[fsync-on]} / $ceiling")
ratio_off=$(bc -l <<<"${e2e_lps[fsync-off]} / $ceiling")
add_row "COPY ceiling: psql \\copy, 1 connection, same rows" \
    "$(printf '%.1fk' "$(bc -l <<<"$ceiling/1000")")" "" "" "" \
    "$last_lines rows; sluice / ceiling: fsync on $(printf '%.2f' "$ratio_on"), off $(printf '%.2f' "$ratio_off")"
# The same rows in transactions of the writer's size (SLUICE_BATCH_ROWS, 10 000), one \copy
# each on one connection: what committing that often costs PostgreSQL by itself.
split -l 10000 -d -a 4 "$dump" "$tmp/rows.part."
for f in "$tmp"/rows.part.*; do echo "\\copy logs($cols) FROM '$f'"; done >"$tmp/parts.sql"
ceiling_tx=$(load_rows -f "$tmp/parts.sql")
rm -f "$tmp"/rows.part.*
add_row "COPY ceiling in 10 000-row transactions (the writer's)" \
    "$(printf '%.1fk' "$(bc -l <<<"$ceiling_tx/1000")")" "" "" "" \
    "$last_lines rows, one \\copy per transaction on one connection; sluice / it: fsync on $(ratio "${e2e_lps[fsync-on]}" "$ceiling_tx"), off $(ratio "${e2e_lps[fsync-off]}" "$ceiling_tx")"

# ------------------------------------------------------------------ 4. syslog TCP: sluice, peers
# Every syslog run: `loadgen --syslog` over SYSLOG_CONNS plain TCP connections, the same
# line shapes with the nil SD of strict RFC 5424 and HOSTNAME = the drain token. Lines/s is
# end to end: from the first byte sent to the moment every line is a committed row.
declare -A sys_lps=()
declare -A sys_note=()

send_syslog() { # send_syslog PORT LINES TIMEOUT: prints loadgen's RESULT line
    local out rc=0
    out=$("$BUILD"/bench/loadgen --syslog "tcp://127.0.0.1:$1" --hostname "$drain_token" \
        --connections "$SYSLOG_CONNS" --lines "$2" --lines-per-body "$PER_BODY" \
        --duration-max "$3") || rc=$?
    echo "$out" >&2
    grep '^RESULT ' <<<"$out" || true
    [ $rc = 0 ] || log "loadgen --syslog exited $rc"
}

log "run sluice-syslog: $LINES lines over $SYSLOG_CONNS syslog TCP connections, fsync on"
reset_tables
syslog_port=$(free_port)
start_sluice syslog on "$syslog_port"
timeout_s=$((60 + LINES / 2000))
result=$(send_syslog "$syslog_port" "$LINES" "$timeout_s")
[ -n "$result" ] || die "loadgen --syslog printed no RESULT"
[ "$(kv lines_ok "$result")" = "$LINES" ] || die "loadgen --syslog wrote $(kv lines_ok "$result") of $LINES lines"
first=$(kv first_send_epoch "$result")
stored=0
nconn=0
for i in $(seq 1 $((timeout_s * 10))); do
    stored=$(metric sluice_lines_stored_total)
    [ "${stored%.*}" -ge "$LINES" ] && break
    if [ $((i % 20)) = 1 ]; then
        c=$(db_conns)
        [ "$c" -le "$nconn" ] || nconn=$c
    fi
    sleep 0.1
done
t_end=$(date +%s.%N)
[ "${stored%.*}" -ge "$LINES" ] || die "sluice stored only $stored of $LINES syslog lines after ${timeout_s}s"
count=$(psql_q "SELECT count(*) FROM logs")
[ "$count" = "$LINES" ] || die "sluice syslog: count(*) = $count, expected $LINES"
sys_lps[sluice]=$(bc -l <<<"$LINES / ($t_end - $first)")
add_row "syslog TCP -> sluice -> PostgreSQL, fsync on" "$(k "${sys_lps[sluice]}")" \
    "$(k "$(kv lines_per_s "$result")") lines/s written" "" "$(peak_rss "$sluice_pid")" \
    "$LINES lines; sluice CPU $(cpu_s "$sluice_pid") s; DB connections seen: $nconn (rows: 1, the writer)"
stop_sluice

# Waits until TABLE has WANT rows (bounded by TIMEOUT s); sets peer_end (epoch) and
# peer_rows; samples the peer's DB connections into peer_conns.
wait_rows() { # wait_rows TABLE WANT TIMEOUT PID
    local table=$1 want=$2 timeout=$3 pid=$4 t0 c
    t0=$(date +%s)
    peer_rows=0
    peer_conns=0
    while :; do
        peer_rows=$(psql_q "SELECT count(*) FROM $table")
        [ "$peer_rows" -ge "$want" ] && break
        c=$(db_conns)
        [ "$c" -le "$peer_conns" ] || peer_conns=$c
        kill -0 "$pid" 2>/dev/null || break
        [ $(($(date +%s) - t0)) -lt "$timeout" ] || break
        sleep 0.2
    done
    peer_end=$(date +%s.%N)
}

peer_table() { # peer_table NAME: a fresh table shaped like logs
    psql_q "DROP TABLE IF EXISTS $1; CREATE TABLE $1 (LIKE logs INCLUDING DEFAULTS INCLUDING INDEXES)
            PARTITION BY RANGE (received_at); CREATE TABLE ${1}_all PARTITION OF $1 DEFAULT;
            CHECKPOINT" >/dev/null
}

# Fills in @NAME@ fields of a config template: render IN OUT NAME=VALUE...
render() {
    local in=$1 out=$2 text kvp
    shift 2
    text=$(<"$in")
    for kvp in "$@"; do
        text=${text//"@${kvp%%=*}@"/"${kvp#*=}"}
    done
    printf '%s\n' "$text" >"$out"
}

pg_sockdir=$(sed -n 's/.*[?&]host=\([^&]*\).*/\1/p' <<<"$DATABASE_URL" | sed 's/%2F/\//g')

# run_peer NAME LABEL TABLE: the peer is already started (peer_pid) and listening on
# peer_port; sends PEER_LINES lines, waits for the rows, stops it, adds a row.
run_peer() {
    local name=$1 label=$2 table=$3 result first timeout=$((60 + PEER_LINES / 2000)) lps cpu rss
    log "run $name: $PEER_LINES lines over $SYSLOG_CONNS syslog TCP connections"
    result=$(send_syslog "$peer_port" "$PEER_LINES" "$timeout")
    first=$(kv first_send_epoch "$result")
    if [ -z "$result" ] || [ "$(kv lines_ok "$result")" != "$PEER_LINES" ]; then
        add_row "$label" "failed" "" "" "" "loadgen --syslog could not send the lines (see stderr)"
        stop_peer
        return 0
    fi
    wait_rows "$table" "$PEER_LINES" "$timeout" "$peer_pid"
    cpu=$(cpu_s "$peer_pid")
    rss=$(peak_rss "$peer_pid")
    stop_peer
    if [ "$peer_rows" -lt "$PEER_LINES" ]; then
        add_row "$label" "incomplete" "" "" "$rss" "$peer_rows of $PEER_LINES rows after ${timeout}s; see $tmp/peers/$name.out"
        tail -n 20 "$tmp/peers/$name.out" >&2 || true
        return 0
    fi
    [ "$peer_rows" = "$PEER_LINES" ] || sys_note[$name]+="; $((peer_rows - PEER_LINES)) duplicate rows"
    lps=$(bc -l <<<"$PEER_LINES / ($peer_end - $first)")
    sys_lps[$name]=$lps
    add_row "$label" "$(k "$lps")" "$(k "$(kv lines_per_s "$result")") lines/s written" "" "$rss" \
        "$PEER_LINES lines (BENCH_PEER_LINES); CPU $cpu s; DB connections seen: $peer_conns; ${sys_note[$name]:-}"
}

peer_skip() { # peer_skip LABEL WHY
    add_row "$1" "skipped" "" "" "" "$2"
    log "skipped $1: $2"
}

mkdir -p "$tmp/peers"

# rsyslog: rsyslogd -n with its own config, work directory and pid file.
run_rsyslog() { # run_rsyslog WORKERS
    local w=$1 name=rsyslog-$1w label conf check
    label="syslog TCP -> rsyslog imptcp -> ompgsql, $w worker$([ "$w" = 1 ] || echo s)"
    conf=$tmp/peers/$name.conf
    mkdir -p "$tmp/peers/$name-work"
    peer_table peer_rsyslog
    peer_port=$(free_port)
    render tests/bench/peers/rsyslog.conf.in "$conf" WORK="$tmp/peers/$name-work" \
        TABLE=peer_rsyslog QSIZE=$((PEER_LINES + 10000)) WORKERS="$w" PORT="$peer_port" \
        PGHOST="$pg_sockdir" PGPORT=5432 PGDB=sluice PGUSER=postgres
    if ! check=$(rsyslogd -N1 -f "$conf" 2>&1); then
        peer_skip "$label" "rsyslogd -N1 rejected the config: $(tr '\n' ' ' <<<"$check" | cut -c1-200)"
        return 0
    fi
    rsyslogd -n -f "$conf" -i "$tmp/peers/$name.pid" >"$tmp/peers/$name.out" 2>&1 &
    peer_pid=$!
    for _ in $(seq 1 100); do # 10 s
        ss -Htln "sport = :$peer_port" 2>/dev/null | grep -q . && break
        kill -0 "$peer_pid" 2>/dev/null || break
        sleep 0.1
    done
    if ! kill -0 "$peer_pid" 2>/dev/null; then
        peer_skip "$label" "rsyslogd exited: $(tail -n 3 "$tmp/peers/$name.out" | tr '\n' ' ' | cut -c1-200)"
        peer_pid=
        return 0
    fi
    sys_note[$name]="transactions of queue.dequeueBatchSize=1000 rows, one INSERT per row"
    run_peer "$name" "$label" peer_rsyslog
}

# syslog-ng: the Debian 12 .deb files unpacked into build/bench/syslog-ng/root, once.
sng_root=$root/$BUILD/bench/syslog-ng/root
sng_bin=$sng_root/usr/sbin/syslog-ng
sng_version=
setup_syslog_ng() { # sets sng_why when it cannot be used
    local debs=$root/$BUILD/bench/syslog-ng/debs d missing
    sng_why=
    if [ ! -x "$sng_bin" ] || [ ! -e "$sng_root/usr/lib/x86_64-linux-gnu/dbd/libdbdpgsql.so" ]; then
        log "fetching syslog-ng .deb files into $debs (apt-get download; nothing is installed)"
        rm -rf -- "$debs" "$sng_root"
        mkdir -p "$debs" "$sng_root"
        if ! (cd "$debs" && timeout 120 apt-get -q download syslog-ng-core syslog-ng-mod-sql \
            libdbi1 libdbd-pgsql libivykis0 libnet1 >&2 2>"$debs/../download.log"); then
            sng_why="apt-get download failed: $(tail -n 2 "$debs/../download.log" | tr '\n' ' ' | cut -c1-200)"
            return 0
        fi
        for d in "$debs"/*.deb; do
            dpkg -x "$d" "$sng_root" || {
                sng_why="dpkg -x $d failed"
                return 0
            }
        done
    fi
    export SNG_LD_LIBRARY_PATH=$sng_root/usr/lib/syslog-ng:$sng_root/usr/lib/x86_64-linux-gnu
    missing=$(for f in "$sng_bin" "$sng_root"/usr/lib/syslog-ng/3.*/libafsql.so \
        "$sng_root"/usr/lib/syslog-ng/3.*/libafsocket.so \
        "$sng_root"/usr/lib/syslog-ng/3.*/libsyslogformat.so \
        "$sng_root"/usr/lib/x86_64-linux-gnu/dbd/libdbdpgsql.so; do
        LD_LIBRARY_PATH=$SNG_LD_LIBRARY_PATH ldd "$f" 2>/dev/null | awk '/not found/ { print $1 }'
    done | sort -u | tr '\n' ' ')
    [ -z "$missing" ] || sng_why="libraries missing for the private root: $missing"
    sng_version=$(LD_LIBRARY_PATH=$SNG_LD_LIBRARY_PATH "$sng_bin" --version 2>/dev/null |
        awk 'NR == 1 { print $NF }' | tr -d '()' || true)
}

run_syslog_ng() {
    local name=syslog-ng label="syslog TCP -> syslog-ng syslog() -> sql(), flow-control" conf modpath
    setup_syslog_ng
    if [ -n "$sng_why" ]; then
        peer_skip "$label" "$sng_why"
        return 0
    fi
    modpath=$(echo "$sng_root"/usr/lib/syslog-ng/3.*)
    conf=$tmp/peers/$name.conf
    peer_table peer_syslogng
    peer_port=$(free_port)
    render tests/bench/peers/syslog-ng.conf.in "$conf" PORT="$peer_port" TABLE=peer_syslogng \
        PGHOST="$pg_sockdir" PGPORT=5432 PGDB=sluice PGUSER=postgres \
        FIFO=$((PEER_LINES + 10000)) IWSIZE=64000
    # One command line for both calls; `exec env` so that the pid we keep is syslog-ng's.
    local -a sng=(env LD_LIBRARY_PATH="$SNG_LD_LIBRARY_PATH"
        LD_PRELOAD="$root/$BUILD/bench/dbi_driver_dir.so"
        BENCH_DBD_DIR="$sng_root/usr/lib/x86_64-linux-gnu/dbd"
        "$sng_bin" --module-path="$modpath" -f "$conf")
    if ! check=$("${sng[@]}" --syntax-only 2>&1); then
        peer_skip "$label" "syslog-ng --syntax-only rejected the config: $(tr '\n' ' ' <<<"$check" | cut -c1-200)"
        return 0
    fi
    exec "${sng[@]}" -F --no-caps --pidfile="$tmp/peers/$name.pid" \
        --persist-file="$tmp/peers/$name.persist" --control="$tmp/peers/$name.ctl" \
        >"$tmp/peers/$name.out" 2>&1 &
    peer_pid=$!
    for _ in $(seq 1 100); do
        ss -Htln "sport = :$peer_port" 2>/dev/null | grep -q . && break
        kill -0 "$peer_pid" 2>/dev/null || break
        sleep 0.1
    done
    if ! kill -0 "$peer_pid" 2>/dev/null; then
        peer_skip "$label" "syslog-ng exited: $(tail -n 3 "$tmp/peers/$name.out" | tr '\n' ' ' | cut -c1-200)"
        peer_pid=
        return 0
    fi
    sys_note[$name]="batch-lines(1000) with explicit-commits, one INSERT per row; syslog-ng $sng_version from its .deb, unpacked"
    run_peer "$name" "$label" peer_syslogng
}

if [ "$PEERS" = 1 ]; then
    if [ -e /usr/lib/x86_64-linux-gnu/rsyslog/ompgsql.so ] && command -v rsyslogd >/dev/null; then
        run_rsyslog 1
        run_rsyslog 2
    else
        peer_skip "syslog TCP -> rsyslog imptcp -> ompgsql" "rsyslog / rsyslog-pgsql not installed (deploy/deps.sh)"
    fi
    run_syslog_ng
else
    peer_skip "syslog peers (rsyslog, syslog-ng)" "BENCH_PEERS=0"
fi

# ------------------------------------------------------------------ 5. alert latency
# One `match` rule grouped by the named capture `probe`, unique per probe line (cooldown 0,
# resolve_after 1), notifying a webhook on 127.0.0.1 that alertlat.py receives. It is the
# only stored rule, so the background lines (which never match it) cost one prefiltered
# rule check each.
alert_secret="whsec_$(head -c 32 /dev/urandom | base64 -w0)"
run_alert() { # run_alert NAME LABEL RATE
    local name=$1 label=$2 rate=$3 hook_port rules out result stages dur bg_lines
    local s0 s1 t0 t1 bg_note="" p99 met
    reset_tables
    psql_q "TRUNCATE alerts, alert_outbox, alert_state" >/dev/null
    hook_port=$(free_port)
    rules=$tmp/alert-rules-$name.json
    printf '%s\n' '{' \
        "  \"destinations\": {\"bench-hook\": {\"type\": \"webhook\", \"url\": \"http://127.0.0.1:$hook_port/hook\", \"secret\": \"$alert_secret\"}}," \
        '  "rules": [{"name": "bench-probe", "pattern": "sluice-probe id=(?<probe>[A-Za-z0-9-]+)",' \
        '             "condition": "match", "group_by": "probe", "cooldown": 0, "resolve_after": 1,' \
        '             "severity": "info", "notify": ["bench-hook"]}]' \
        '}' >"$rules"
    "$BUILD"/sluice rules apply "$rules" >&2
    start_sluice "alert-$name" on 0 info
    log "run alert-$name: $PROBES probes, ${PROBE_PAUSE}s apart$([ "$rate" = 0 ] || echo ", background load $rate lines/s")"
    if [ "$rate" != 0 ]; then
        # Enough lines to outlast the probes; stopped once they are done.
        dur=$(bc -l <<<"$PROBES * ($PROBE_PAUSE + 0.05) + 20" | cut -d. -f1)
        bg_lines=$((rate * dur))
        "$BUILD"/bench/loadgen --url "https://$creds@127.0.0.1:$https_port/logs" \
            --connections 4 --lines "$bg_lines" --lines-per-body "$PER_BODY" --rate "$rate" \
            --duration-max "$((dur + 30))" >"$tmp/alert-bg-$name.out" 2>&1 &
        bg_pid=$!
        for _ in $(seq 1 300); do # wait (at most 30 s) for the load to reach PostgreSQL
            [ "$(metric sluice_lines_stored_total | cut -d. -f1)" -gt 0 ] && break
            kill -0 "$bg_pid" 2>/dev/null ||
                die "background loadgen exited: $(tail -n 3 "$tmp/alert-bg-$name.out")"
            sleep 0.1
        done
        sleep 2 # let it settle
    fi
    s0=$(metric sluice_lines_stored_total)
    t0=$(date +%s.%N)
    out=$(timeout $((60 + PROBES)) python3 tests/bench/alertlat.py \
        --url "https://$creds@127.0.0.1:$https_port/logs" --hook-port "$hook_port" \
        --probes "$PROBES" --pause "$PROBE_PAUSE" --wait 15 --tag "$name" \
        --detail "$tmp/alert-$name.detail") || log "alertlat exited $?"
    s1=$(metric sluice_lines_stored_total)
    t1=$(date +%s.%N)
    echo "$out" >&2
    if [ -n "$bg_pid" ]; then
        kill -0 "$bg_pid" 2>/dev/null || log "background loadgen ended before the probes did"
        stop_bg
        bg_note="; background: loadgen --rate $rate, 4 HTTPS connections, $(k "$(bc -l <<<"($s1 - $s0 - $PROBES) / ($t1 - $t0)")") lines/s stored while probing"
    fi
    result=$(grep '^RESULT ' <<<"$out" || true)
    [ -n "$result" ] || die "alertlat printed no RESULT"
    # Where the time went, per probe: received_at of its row, BEGIN of the writer's
    # transaction (the outbox row's created_at = now()), delivered_at.
    psql -X -q -v ON_ERROR_STOP=1 -d "$DATABASE_URL" -tA -F'|' -c "
        SELECT a.group_key, extract(epoch FROM l.received_at), extract(epoch FROM o.created_at),
               extract(epoch FROM o.delivered_at)
        FROM alerts a JOIN alert_outbox o ON o.alert_id = a.id AND o.event = 'firing'
        JOIN logs l ON rtrim(l.message, E'\\r\\n') = 'sluice-probe id=' || a.group_key
        WHERE a.rule_name = 'bench-probe'" >"$tmp/alert-$name.db"
    stages=$(python3 tests/bench/alertlat.py --stages "$tmp/alert-$name.detail" \
        "$tmp/alert-$name.db" "$tmp/sluice-alert-$name.log" || true)
    echo "$stages" >&2
    p99=$(kv p99_ms "$result")
    if [ "$(kv delivered "$result")" = "$PROBES" ] && [ "$(bc -l <<<"$p99 < 1000")" = 1 ]; then
        met="target met"
    else
        met="TARGET MISSED"
    fi
    st() { printf '%s %s/%s' "$1" "$(kv "${1}_p50_ms" "$stages")" "$(kv "${1}_p99_ms" "$stages")"; }
    add_row "$label" "" "max $(kv max_ms "$result") ms" "$(kv p50_ms "$result") / $p99 ms" \
        "$(peak_rss "$sluice_pid")" \
        "$met; $(kv delivered "$result") of $PROBES probes delivered ($(kv acked "$result") acked), 1 line per POST, ${PROBE_PAUSE} s apart; POST -> 204 p50/p99 $(kv post_p50_ms "$result")/$(kv post_p99_ms "$result") ms; stages p50/p99 ms: $(st post), $(st queue), $(st txn), $(st notify)$bg_note"
    stop_sluice
}
run_alert idle "**alert: line posted -> webhook received, idle** (target p99 < 1 s)" 0
if [ "$LOAD_RATE" != 0 ]; then
    run_alert load "**alert: line posted -> webhook received, under load** (target p99 < 1 s)" \
        "$LOAD_RATE"
fi

fi # [ -z "$ONLY" ]

# ------------------------------------------------------------------ 8. crashes
run_crash_latency() {
    local port out result p99 met
    reset_tables
    psql_q "TRUNCATE crash_anchors, crash_cursors, crashes, alert_outbox" >/dev/null
    port=$(free_port)
    SENTRY_DSN="http://0123456789abcdef0123456789abcdef@127.0.0.1:$port/1" \
        start_sluice crash on 0 info
    log "run crash: $CRASH_PROBES traces, 0.2 s apart"
    out=$(timeout $((60 + CRASH_PROBES)) python3 tests/bench/crashlat.py \
        --url "https://$creds@127.0.0.1:$https_port/logs" --sentry-port "$port" \
        --probes "$CRASH_PROBES" --pause 0.2 --wait 20) || log "crashlat exited $?"
    echo "$out" >&2
    result=$(grep '^RESULT ' <<<"$out" || true)
    [ -n "$result" ] || die "crashlat printed no RESULT"
    p99=$(kv p99_ms "$result")
    if [ "$(kv delivered "$result")" = "$CRASH_PROBES" ] && [ "$(kv dup "$result")" = 0 ] &&
        [ "$(bc -l <<<"$p99 < 2000")" = 1 ]; then
        met="target met"
    else
        met="TARGET MISSED"
    fi
    add_row "**crash: last line received -> Sentry envelope received** (target p99 < 2 s)" "" \
        "max $(kv max_ms "$result") ms" "$(kv p50_ms "$result") / $p99 ms" "$(peak_rss "$sluice_pid")" \
        "$met; $(kv delivered "$result") of $CRASH_PROBES traces delivered, $(kv dup "$result") duplicates; 8-line Python traces, one POST each, 0.2 s apart, 50 dynos; SLUICE_CRASH_GAP_MS 500, SLUICE_CRASH_SETTLE_MS 1000 (defaults)"
    stop_sluice
}
if [ -z "$ONLY" ] || [ "$ONLY" = crash ]; then
    [ "$ONLY" != crash ] || run_load fsync-on on "HTTPS -> PostgreSQL, fsync on"
    run_crash_latency
    SLUICE_CRASHES=off run_load crashes-off on "HTTPS -> PostgreSQL, fsync on, SLUICE_CRASHES=off"
    add_row "**crash assembly on ÷ off** (target ≥ 0.95)" \
        "$(ratio "${e2e_lps[fsync-on]}" "${e2e_lps[crashes-off]}")x" "HTTPS fsync on" "" "" \
        "one run each on this machine: on $(k "${e2e_lps[fsync-on]}")/s, off $(k "${e2e_lps[crashes-off]}")/s; the load holds no traces, so this is sl_crash_anchor on every line plus an idle crash thread"
fi

# ------------------------------------------------------------------ 6. search and tail
# A database of its own (sluice_search, migrated by `sluice migrate`) filled by
# `searchgen load --writer-blocks`: SEARCH_LINES corpus-shaped lines spread evenly over the
# 7 days up to now, 50 Zipf-weighted sources app01..app50, rows COPYed in 10 000-row
# transactions grouped by source, log_blocks built by drain/blocks.c and upserted with the
# writer's statement; then ANALYZE and `searchgen verify`. A read token (`sluice
# token add bench --all`) and a source for the tail lines; then sluice serves it (fsync on)
# and tests/bench/searchbench.py measures every search kind over one keep-alive HTTPS
# connection and the tail latency (2xx -> SSE event).
# BENCH_COMPACT=1 (docs/search.md "Compacted days"): before sluice serves the search
# database, every day before today is packed (`sluice compact --day D`, one after the other),
# with the bytes per stored line of those days and the WAL written, before and after.
compact_days() {
    local url=$1 days before after wal0 wal1 t0 t1 lines
    days=$(psql -X -qtA -d "$url" -c "SELECT to_char(to_date(substr(c.relname, 6), 'YYYYMMDD'), 'YYYY-MM-DD')
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'logs'::regclass
        AND c.relname ~ '^logs_[0-9]{8}$' AND to_date(substr(c.relname, 6), 'YYYYMMDD') < (now() AT TIME ZONE 'UTC')::date ORDER BY 1")
    # log_packs' bytes: the sum of its partitions (a partitioned parent's own size is 0)
    local packs="(SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_inherits i
          JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'log_packs'::regclass)"
    # the closed days' bytes: their partitions (heap, TOAST, index), their blocks' rows
    # (filters) and share of log_blocks' indexes, their commit-log rows, their packs and
    # day levels. Blocks count by their rows, not the table's size: the live blocks that
    # compaction deletes leave space that the next day's live blocks reuse.
    local q="SELECT (SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'logs'::regclass
        AND c.relname ~ '^logs_[0-9]{8}$' AND to_date(substr(c.relname, 6), 'YYYYMMDD') < (now() AT TIME ZONE 'UTC')::date)
      + (SELECT coalesce(sum(pg_column_size(b.*)), 0) FROM log_blocks b
          WHERE b.max_received < date_trunc('day', now(), 'UTC'))
      + (SELECT pg_indexes_size('log_blocks') * (SELECT count(*) FROM log_blocks
          WHERE max_received < date_trunc('day', now(), 'UTC'))::numeric / greatest(1, (SELECT count(*) FROM log_blocks)))
      + (SELECT pg_total_relation_size('log_commits') * (SELECT count(*) FROM log_commits
          WHERE max_received < date_trunc('day', now(), 'UTC'))::numeric / greatest(1, (SELECT count(*) FROM log_commits)))
      + $packs
      + pg_total_relation_size('log_day_filters')"
    lines=$(psql -X -qtA -d "$url" -c "SELECT count(*) FROM logs WHERE received_at < date_trunc('day', now(), 'UTC')")
    before=$(psql -X -qtA -d "$url" -c "$q")
    wal0=$(psql -X -qtA -d "$url" -c "SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")
    t0=$(date +%s.%N)
    for d in $days; do
        DATABASE_URL=$url "$BUILD"/sluice compact --day "$d" --fence-seconds 0 >&2
    done
    t1=$(date +%s.%N)
    wal1=$(psql -X -qtA -d "$url" -c "SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")
    psql -X -q -d "$url" -c "ANALYZE" >&2
    after=$(psql -X -qtA -d "$url" -c "$q")
    log "compact: of which packs $(bc <<<"$(psql -X -qtA -d "$url" -c "SELECT $packs") / $lines") B/line, day level $(bc <<<"$(psql -X -qtA -d "$url" -c "SELECT pg_total_relation_size('log_day_filters')") / $lines") B/line"
    log "compact: $lines lines of $(wc -w <<<"$days") closed days in $(printf '%.1f' "$(bc -l <<<"$t1 - $t0")") s; \
$(bc <<<"$before / $lines") B/line before, $(bc <<<"$after / $lines") B/line after \
(ratio $(printf '%.3f' "$(bc -l <<<"$after / $before")")); WAL $(bc <<<"($wal1 - $wal0) / $lines") B/line"
    add_row "compaction: closed days packed" "$(k "$(bc -l <<<"$lines / ($t1 - $t0)")")" "" "" "" \
        "$lines lines of $(wc -w <<<"$days") days: $(bc <<<"$before / $lines") B/line before (partitions with index, their filters and commit-log rows), $(bc <<<"$after / $lines") B/line after (packs, filters); WAL $(bc <<<"($wal1 - $wal0) / $lines") B/line; the search rows below ran on the packed days"
}

run_search() {
    local surl out token tail_url tail_creds t0 t1 load_out ver
    surl=${DATABASE_URL/\/sluice\?//sluice_search?}
    [ "$surl" != "$DATABASE_URL" ] || die "cannot derive the search database URL from $DATABASE_URL"
    psql_q "CREATE DATABASE sluice_search" >/dev/null
    DATABASE_URL=$surl "$BUILD"/sluice migrate >&2
    log "search: loading $SEARCH_LINES lines over 7 days and 50 sources"
    t0=$(date +%s.%N)
    load_out=$("$BUILD"/bench/searchgen load "$surl" --lines "$SEARCH_LINES" --create-sources app \
        --ids-from-seq --partitions --writer-blocks --async-commit)
    echo "$load_out" >&2
    psql -X -q -v ON_ERROR_STOP=1 -d "$surl" -c "ANALYZE" >&2
    t1=$(date +%s.%N)
    ver=$("$BUILD"/bench/searchgen verify "$surl") || die "searchgen verify failed: $ver"
    echo "$ver" >&2
    if [ "${BENCH_COMPACT:-0}" = 1 ]; then
        compact_days "$surl"
    fi
    read -r nblk avg_rows <<<"$(psql -X -qtA -d "$surl" -F ' ' -c "SELECT count(*), round(avg(nrows)) FROM log_blocks")"
    token=$(DATABASE_URL=$surl "$BUILD"/sluice token add bench --all 2>/dev/null | head -n 1)
    [[ "$token" == slr_* ]] || die "sluice token add printed no token"
    tail_url=$(DATABASE_URL=$surl "$BUILD"/sluice source add tail 2>/dev/null | tail -n 1)
    tail_creds=${tail_url#https://}
    tail_creds=${tail_creds%%@*}
    if [ -n "${BENCH_SEARCH_EXPLAIN:-}" ]; then
        # Diagnosis only (instrumented timing slows every statement): plans of statements
        # over BENCH_SEARCH_EXPLAIN ms go to the PostgreSQL log, copied out at the end.
        psql -X -q -v ON_ERROR_STOP=1 -d "$surl" \
            -c "ALTER DATABASE sluice_search SET session_preload_libraries = 'auto_explain'" \
            -c "ALTER DATABASE sluice_search SET auto_explain.log_min_duration = '${BENCH_SEARCH_EXPLAIN}ms'" \
            -c "ALTER DATABASE sluice_search SET auto_explain.log_analyze = on" \
            -c "ALTER DATABASE sluice_search SET auto_explain.log_buffers = on" >&2
    fi
    local saved=$DATABASE_URL
    DATABASE_URL=$surl
    start_sluice search on
    DATABASE_URL=$saved
    # sluice's maintenance thread runs its retention pass at start (batched DELETEs over
    # logs, then log_blocks); measuring while it scans the table would measure that scan.
    local r0 passes ret_s
    r0=$(date +%s.%N)
    for _ in $(seq 1 1200); do
        passes=$(curl -s --max-time 2 "http://127.0.0.1:$http_port/metrics" |
            awk '$1 == "sluice_retention_passes_total" { print $2 }')
        [ "${passes:-0}" -ge 1 ] && break
        sleep 0.1
    done
    ret_s=$(printf '%.1f' "$(bc -l <<<"$(date +%s.%N) - $r0")")
    log "search: sluice's start-up retention pass done after ${ret_s}s"
    log "search: $SEARCH_RUNS runs per kind, $TAIL_SAMPLES tail samples"
    out=$(/usr/bin/python3 tests/bench/searchbench.py --url "https://127.0.0.1:$https_port" \
        --http-url "http://127.0.0.1:$http_port" \
        --cacert "$cert" --token "$token" --dsn "$surl" --drain-user "${tail_creds%%:*}" \
        --drain-password "${tail_creds#*:}" --runs "$SEARCH_RUNS" --samples "$TAIL_SAMPLES") ||
        die "searchbench failed: $out"
    echo "$out" >&2
    local what="$SEARCH_LINES lines over 7 days, 50 sources, $nblk log_blocks (avg $avg_rows rows)"
    search_row() { # search_row KIND LABEL P50_TARGET P99_TARGET NOTE
        local all one p50 p99 met=met plain=""
        all=$(grep "^RESULT kind=$1 scope=all via=https " <<<"$out" || grep "^RESULT kind=$1 " <<<"$out")
        one=
        if [ "$1" != tail ]; then
            one=$(grep "^RESULT kind=$1 scope=one via=https " <<<"$out")
            local ha ho
            ha=$(grep "^RESULT kind=$1 scope=all via=http " <<<"$out")
            ho=$(grep "^RESULT kind=$1 scope=one via=http " <<<"$out")
            plain="; over plain HTTP: all $(kv p50_ms "$ha") / $(kv p99_ms "$ha") ms, one source $(kv p50_ms "$ho") / $(kv p99_ms "$ho") ms"
        fi
        p50=$(kv p50_ms "$all")
        p99=$(kv p99_ms "$all")
        [ -z "$3" ] || [ "$(bc -l <<<"$p50 < $3")" = 1 ] || met=MISSED
        [ "$(bc -l <<<"$p99 < $4")" = 1 ] || met=MISSED
        if [ "$1" != tail ]; then
            [ -z "$3" ] || [ "$(bc -l <<<"$(kv p50_ms "$one") < $3")" = 1 ] || met=MISSED
            [ "$(bc -l <<<"$(kv p99_ms "$one") < $4")" = 1 ] || met=MISSED
        fi
        if [ $met = met ]; then met="target met"; else met="TARGET MISSED"; fi
        add_row "$2" "" "max $(kv max_ms "$all") ms" "$p50 / $p99 ms" "" \
            "$met; $5$([ -n "$one" ] && echo "; one source: $(kv p50_ms "$one") / $(kv p99_ms "$one") ms (max $(kv max_ms "$one"))")$plain"
    }
    search_row word "**search: selective word, last 24 h, all sources** (target p50 < 50, p99 < 300 ms)" 50 300 \
        "$(kv n "$(grep '^RESULT kind=word scope=all via=https ' <<<"$out")") runs over HTTPS keep-alive, rare words and numbers, newest 100; $what"
    search_row phrase "**search: phrase, last 24 h, all sources** (target p50 < 50, p99 < 300 ms)" 50 300 \
        "quoted phrases of 2-6 words, newest 100"
    search_row status "**search: status:>=500, last hour, all sources** (target p99 < 100 ms)" "" 100 \
        "newest 100"
    search_row reqid "**search: request id, 7 days, all sources** (target p99 < 100 ms)" "" 100 \
        "ids sampled from the 7 days, each found; one source = the id's own"
    local tl
    tl=$(grep '^RESULT kind=tail ' <<<"$out")
    search_row tail "**tail: 2xx -> SSE event** (target p99 < 250 ms)" "" 250 \
        "$(kv n "$tl") lines, 1 per POST, each sent after the previous one's event; lost $(kv lost "$tl"); POST -> 2xx p50/p99 $(kv post_p50_ms "$tl")/$(kv post_p99_ms "$tl") ms"
    add_row "search: load for the rows above" "$(k "$(bc -l <<<"$SEARCH_LINES / ($t1 - $t0)")")" "" "" "" \
        "searchgen load --writer-blocks + ANALYZE, one thread; sluice's retention pass at start (waited for): ${ret_s} s; $(sed -n 's/^verify: //p' <<<"$ver")"
    stop_sluice
    if [ -n "${BENCH_SEARCH_EXPLAIN:-}" ]; then
        cp "$tmp/pg/postgresql.log" "$BUILD/bench/search-explain.log" 2>/dev/null &&
            log "search: plans in $BUILD/bench/search-explain.log"
    fi
}
[ "$ONLY" = crash ] || run_search

# ------------------------------------------------------------------ ratios
if [ -z "$ONLY" ]; then
best_peer=
best_lps=0
for p in rsyslog-1w rsyslog-2w syslog-ng; do
    [ -n "${sys_lps[$p]:-}" ] || continue
    if [ "$(bc -l <<<"${sys_lps[$p]} > $best_lps")" = 1 ]; then
        best_peer=$p
        best_lps=${sys_lps[$p]}
    fi
done
if [ "$(bc -l <<<"${e2e_lps[fsync-on]} / $ceiling >= 0.8")" = 1 ]; then cmark="target met"; else cmark="TARGET MISSED"; fi
cmark+="; ÷ the ceiling in the writer's 10 000-row transactions: $(ratio "${e2e_lps[fsync-on]}" "$ceiling_tx")x"
if [ -n "${drain_lps[fsync-on]:-}" ]; then
    cmark+="; after the client stopped (PostgreSQL no longer sharing the 2 CPUs with the load generator): $(ratio "${drain_lps[fsync-on]}" "$ceiling")x"
fi
add_row "**sluice ÷ COPY ceiling** (target ≥ 0.8)" "$(ratio "${e2e_lps[fsync-on]}" "$ceiling")x" \
    "HTTPS fsync on" "" "" \
    "$cmark; HTTPS fsync off $(ratio "${e2e_lps[fsync-off]}" "$ceiling")x; syslog TCP fsync on $(ratio "${sys_lps[sluice]}" "$ceiling")x"
for pair in "rsyslog-1w rsyslog-2w|rsyslog (best of 1, 2 workers)" "syslog-ng|syslog-ng"; do
    names=${pair%%|*}
    what=${pair#*|}
    bp=
    bl=0
    for p in $names; do
        [ -n "${sys_lps[$p]:-}" ] || continue
        if [ "$(bc -l <<<"${sys_lps[$p]} > $bl")" = 1 ]; then
            bp=$p
            bl=${sys_lps[$p]}
        fi
    done
    if [ -n "$bp" ]; then
        add_row "sluice ÷ $what" "$(ratio "${sys_lps[sluice]}" "$bl")x" "syslog TCP, like for like" "" "" \
            "vs $bp $(k "$bl")/s; sluice HTTPS fsync on ÷ it: $(ratio "${e2e_lps[fsync-on]}" "$bl")x"
    else
        add_row "sluice ÷ $what" "n/a" "" "" "" "peer did not run"
    fi
done
if [ -n "$best_peer" ]; then
    add_row "**sluice ÷ faster peer** (target ≥ 5)" "$(ratio "${sys_lps[sluice]}" "$best_lps")x" \
        "syslog TCP, like for like" "" "" "faster peer: $best_peer; HTTPS fsync on ÷ it: $(ratio "${e2e_lps[fsync-on]}" "$best_lps")x"
fi

fi # [ -z "$ONLY" ]

# ------------------------------------------------------------------ report
table=$(
    echo "| what | lines/s | throughput | latency p50 / p99 | peak RSS | notes |"
    echo "|---|---|---|---|---|---|"
    printf '%s\n' "${rows_tbl[@]}"
)
echo "$table"

if [ -n "$DOC" ]; then
    commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
    dirty=$(git status --porcelain 2>/dev/null | grep -q . && echo " (working tree modified)" || true)
    cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
    mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
    if [ "$LOAD_RATE" != 0 ]; then
        load_text="\`loadgen --rate $LOAD_RATE\` (BENCH_ALERT_LOAD_RATE; 100 lines per request, 4 HTTPS
  connections) posts into the same sluice during the probes"
    else
        load_text="not run in this mode (full runs it with \`loadgen --rate 50000\`; BENCH_ALERT_LOAD_RATE)"
    fi
    cat >"$DOC" <<EOF
# Benchmarks

Written by \`$cmdline\` (\`make bench\` / \`make bench-quick\`); rerun it rather than editing.

- date: $(date -u +%Y-%m-%dT%H:%M:%SZ)
- commit: $commit$dirty
- machine: $(nproc) CPUs ($cpu), $mem memory, $(uname -sr)
- PostgreSQL: $pg_version (deploy/pg.sh settings: fsync on, synchronous_commit on, wal_level minimal, shared_buffers $pg_shared_buffers)
- load: $LINES lines per sluice run, $PER_BODY lines per body, $CONNS keep-alive HTTPS connections,
  one request in flight per connection; syslog runs: $SYSLOG_CONNS plain TCP connections,
  $LINES lines into sluice and $PEER_LINES into each peer$([ "$PEER_LINES" -lt "$LINES" ] && echo " (peers are capped: they run at tens of thousands of rows/s)"); load generator, receivers and
  PostgreSQL share the machine
- peers: $(rsyslogd -v 2>/dev/null | awk 'NR == 1 { print "rsyslog " $2 }' || true); syslog-ng ${sng_version:-not run}

$table

How to read it:

- **lines/s** for the HTTPS rows is end to end: from the first request sent to the moment
  \`sluice_lines_stored_total\` showed every accepted line committed in PostgreSQL.
  "accepted" is what the load generator saw answered with 204 (spooled, and with fsync on,
  fdatasync'ed).
- **latency p50 / p99**: for the HTTPS rows, per request (send start to response), $PER_BODY
  lines per request; for the alert rows, per probe line from its request sent to its webhook
  received.
- **peak RSS** is VmHWM of the receiver (sluice, rsyslogd or syslog-ng), restarted for each run.
- **COPY ceiling** reloads the same rows with psql's text \`\\copy\` on one connection into
  the same (truncated, indexed, partitioned) \`logs\` table: what PostgreSQL alone takes.
  The HTTPS rows' "after the client stopped" is the writer's pace once loadgen has sent its
  last line: on 2 CPUs, loadgen, sluice's event loop, the writer and the PostgreSQL backend
  share the cores while the client sends, so end to end falls further below the ceiling the
  faster PostgreSQL is; the ratio row also gives the pace after the client stopped.
  The ceiling is one transaction; in the writer's 10 000-row transactions PostgreSQL alone
  is slower (its own row), since each COMMIT writes and flushes the WAL in the backend
  instead of leaving it to the WAL writer.
  The search filters cost the writer ~0.3 µs a line: ~8 % of end to end (measured
  2026-12-06: 146k against 160k lines/s over plain HTTP, 2 runs each, with a build whose
  writer skipped them).
- **syslog TCP** rows: \`build/bench/loadgen --syslog\` writes the same line shapes as
  octet-counted RFC 5424 frames (nil SD, HOSTNAME = the source's drain token) over plain TCP
  on 127.0.0.1, as fast as the receiver reads. Lines/s is end to end: first byte sent to
  every line committed (sluice: \`sluice_lines_stored_total\`; peers: \`count(*)\` of their
  table polled every 0.2 s, so a peer's end is late by at most that). "written" is how fast
  the kernel took the bytes (TCP back-pressure from the receiver).
- Each peer writes to its own table created \`LIKE logs INCLUDING DEFAULTS INCLUDING INDEXES\`:
  the same columns, the same id sequence default and the same btree (source_id, received_at),
  partitioned by received_at with one DEFAULT partition (sluice's \`logs\` has day
  partitions). The peers fill received_at, source_id (constant 1), emitted_at, facility,
  severity, hostname, app_name, procid, msgid, sd and message; sluice's COPY carries all
  19 columns (NULL where it has nothing, e.g. tags). Configs: \`tests/bench/peers/rsyslog.conf.in\`
  (imptcp with supportOctetCountedFraming, a ruleset queue with dequeueBatchSize 1000 and
  1 or 2 workers, ompgsql: one connection per worker, BEGIN, one INSERT per row, COMMIT) and
  \`tests/bench/peers/syslog-ng.conf.in\` (syslog(transport("tcp")), sql() with
  explicit-commits and batch-lines(1000), flags(flow-control); one connection). Neither
  peer loads a system input (no /dev/log, no kernel log) nor reads the system configuration.
- **DB connections seen** is the most client connections to the bench database seen while
  the run was in progress (sampled every 2 s for sluice, 0.2 s for the peers; the polling
  psql excluded). sluice writes every row through one connection, its writer (COPY); the
  others it holds (source list, alert outbox) sit idle during a run.
- sluice fsyncs its spool before it acknowledges (HTTPS 204) or reads on (syslog); the
  peers keep their queues in memory and fsync nothing of their own. PostgreSQL commits are
  durable for all (synchronous_commit on).
- The parse rows are one core over the stream corpus replicated in memory to ~256 MB
  (\`build/bench/parsebench\`); memchr is the memory-bandwidth ceiling.
- **rules** rows (\`build/bench/rulesbench\`, \`tests/bench/rulesbench.c\`): the rule matcher
  alone (\`rules/match.c\`: scope filters, the Aho-Corasick literal prefilter, PCRE2 JIT), one
  core, no I/O, over the messages of the stream corpus (APP-NAME, PROCID, MSG), best of 3
  passes of ~$RULES_LINES lines. "evaluation" is lines/s through N rules: every line checked
  against every rule, as the writer does for each stored line. The 100 rules are a Heroku
  app's mix (router codes, dyno errors, exceptions, 5xx, caseless rules, two with no
  literal); 1 and 10 are the first of them. "prefilter off" runs PCRE2 for every rule in
  scope; "skipped" is the share of in-scope (line, rule) checks that the prefilter settled
  without running PCRE2 (a rule scoped to \`app\`/\`procid\` is not checked on other lines).
  The catastrophic rows run \`(a+)+\$\` alone: on corpus lines (which never make it
  backtrack) and on a line of 30 \`a\` then \`b\`, where it would backtrack ~2^30 times:
  the throughput column is the cost per such line with the default match/depth limits,
  and "limit hit" counts the lines where PCRE2 stopped at the limit (the rule then counts
  as not matching, and sluice reports it in \`sluice_rule_limit_hits_total\` and its log).
- **crash latency** and **crash assembly on ÷ off** rows (\`tests/bench/crashlat.py\`, [crashes.md](crashes.md)): $CRASH_PROBES
  8-line Python traces, one POST each, 0.2 s apart, over 50 dynos, into sluice (fsync on,
  default gap and settle delay) whose \`SENTRY_DSN\` is crashlat.py's envelope endpoint on
  127.0.0.1; each timed from its 204 (the last line received) to its envelope read. "crash
  assembly on ÷ off": the HTTPS fsync-on run against the same run with \`SLUICE_CRASHES=off\`.
- **crash** rows (\`build/bench/crashbench\`, \`tests/bench/crashbench.c\`): the crash anchor
  (\`sl_crash_anchor\`, run by the writer on every stored line) and the crash assembler
  (\`drain/crash.c\`), one core, no I/O, best of 3 passes; the memory row is 1 000
  assemblers each holding a 20-frame Python traceback whose exception line has not come
  yet ([internals/crash-assembly.md](internals/crash-assembly.md)).
- **alert** rows (\`tests/bench/alertlat.py\`): sluice (fsync on) with one rule, \`match\`
  on \`sluice-probe id=(?<probe>...)\`, \`group_by\` the capture (unique per probe, so every
  probe fires an alert of its own), cooldown 0, resolve_after 1, notifying a webhook
  destination on 127.0.0.1 (\`SLUICE_ALERT_ALLOW_PRIVATE=127.0.0.1\`) that alertlat.py
  serves. It posts $PROBES probe lines over HTTPS, one line per request on one keep-alive
  connection, ${PROBE_PAUSE} s apart, and times each from just before its request is sent
  to the moment its \`alert.firing\` webhook (matched by \`data.group\`) is read; the
  "throughput" column holds the worst one. "idle": nothing else runs;
  "under load": $load_text. "stages" split each latency (p50/p99
  ms): **post** request sent -> the row's received_at (TLS, HTTP, parse); **queue**
  received_at -> BEGIN of the writer's transaction holding the line (the outbox row's
  created_at; covers the spool fdatasync, the 204, and waiting for the writer to finish
  its previous batch); **txn** BEGIN -> the "alert firing" log line (dedupe, COPY,
  evaluation, outbox insert; before COMMIT); **notify** "alert firing" -> webhook read
  (COMMIT, NOTIFY sluice_outbox, the notifier's claim, the signed HTTP delivery). The log
  has millisecond timestamps, so txn and notify are ±1 ms. The receiver listens with a
  backlog of 256: the notifier opens a connection per delivery in flight, and a tick that
  resolves a dozen alerts at once overflowed Python's default backlog of 5, so dropped SYNs
  were retried after Linux's 1 s initial RTO and showed up as ~1.04 s alert latencies.
- The HTTPS fsync-on ingest row is issue 3's ingest target: the writer tokenizes every line
  and upserts its \`log_blocks\` filters in the same transactions as the rows (the note
  counts them); a row labelled "NO search filters" means the writer wrote none.
- **search** rows (\`tests/bench/searchbench.py\`): a database of its own holding
  $SEARCH_LINES lines spread evenly over the 7 days up to the run (\`build/bench/searchgen load
  --writer-blocks\`: corpus-shaped lines, 50 Zipf-weighted sources app01..app50, 10 000-row
  COPY BINARY transactions grouped by source, \`log_blocks\` built by \`drain/blocks.c\` and
  upserted with the writer's statement, then ANALYZE; \`searchgen verify\` checks every row is
  in exactly one block and sampled rows' tokens are found by \`sl_bloom_has1\`). sluice
  (fsync on) serves it after its start-up retention pass; each search is timed on the client
  from request sent to the last byte of the answer, over one keep-alive HTTPS connection
  with a read token for every source, $SEARCH_RUNS timed runs per row after 3 untimed ones,
  varied values: rare words (error class names, ~10 a day per million lines, and rare
  numbers from the last day), quoted phrases, request ids sampled from the 7 days (each must
  come back), \`status:>=500\` (\`since=1h\`); all limit 100, newest first. "one source"
  adds \`source=app01\` (the busiest) or, for request ids, the id's own source. p99 is the
  nearest rank, so with fewer than 100 runs it is the slowest run. The same searches are
  repeated over plain HTTP (in the notes) to separate the server's search time from its TLS
  write path.
- **tail**: \`GET /api/v1/tail?q=MARKER\` open over HTTPS; $TAIL_SAMPLES lines carrying the
  marker POSTed one per request (HTTPS keep-alive, the source's drain credentials), each
  after the previous one's event; latency is from the POST's 2xx read to its SSE event read.
EOF
    # the month-scale targets, from the last `make bench-scale` (tests/bench/scale_bench.sh)
    if [ -s docs/benchmarks-scale.md ]; then
        printf '\n' >>"$DOC"
        cat docs/benchmarks-scale.md >>"$DOC"
    fi
    log "wrote $DOC"
fi
