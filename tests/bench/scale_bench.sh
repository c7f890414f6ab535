#!/usr/bin/env bash
# Search at a month's scale (issue 17, docs/search.md "A month of logs (bench-scale)"):
# `tests/bench/scale_bench.sh` (make bench-scale).
#
#   1. The data set, built ONCE into a private PostgreSQL (deploy/pg.sh) in SCALE_DIR/pg and
#      reused by later runs: SCALE_LINES (100 000 000) lines from `searchgen load
#      --writer-blocks --async-commit` over the 30 days up to the build, 200 Zipf-weighted
#      sources app001..app200, seed SCALE_SEED. SCALE_DIR/stamp records what was built
#      (lines, days, sources, seed, end, load time, WAL of the load); a run whose settings
#      match it reuses the cluster, SCALE_REBUILD=1 builds it again. Before building, a
#      probe of 1M lines (the same generator and density, a throw-away database) measures
#      bytes per line, and the build is refused unless that estimate plus 30 % plus
#      max_wal_size (8 GB) fits the free disk.
#   2. Disk per million lines by part (logs heap, TOAST, indexes, log_blocks, log_commits,
#      log_packs and log_filters_coarse when they exist) and the WAL the load wrote.
#   3. `sluice serve` on 127.0.0.1 (HTTPS) over it and tests/bench/searchbench.py --month
#      --end (windows end at the data set's end): p50/p99 per kind over SCALE_RUNS (60)
#      varied runs, all sources and one source, and the tail; a TARGET line per target
#      with PASS or MISS.
# Everything it starts it stops (PostgreSQL too: the data set stays on disk). Start the
# cluster by hand with `deploy/pg.sh start SCALE_DIR/pg` (prints the DATABASE_URL).
# Knobs: SCALE_LINES, SCALE_DIR (var/bench-scale), SCALE_SEED (1), SCALE_REBUILD,
# SCALE_RUNS (60), SCALE_TAIL_SAMPLES (200), SCALE_ONLY (build: stop after the build and
# the disk report; coarse: sections 1, 2 and 4 only), SCALE_COARSE=1 (also section 4, the
# coarse-level prototype), SCALE_COMPACT=1 (pack the closed days first, with their day
# level, as the server does a day later, and write the hour level of the closed hours'
# live blocks, as it does ten minutes after each hour), BUILD (build). The server measured
# neither packs nor guards the disk meanwhile (SLUICE_COMPACT_AFTER_HOURS=0,
# SLUICE_DISK_FILESYSTEM=off); its maintenance thread still writes the hour level of hours
# that closed since (none, on a set built earlier).
set -euo pipefail
cd "$(dirname -- "$0")/../.."
BUILD=${BUILD:-build}
LINES=${SCALE_LINES:-100000000}
DAYS=30
SOURCES=200
SEED=${SCALE_SEED:-1}
RUNS=${SCALE_RUNS:-60}
TAIL_SAMPLES=${SCALE_TAIL_SAMPLES:-200}
PROBE_LINES=1000000
log() { echo "bench-scale: $*" >&2; }
die() {
    log "$*"
    exit 1
}
if ! [[ "$LINES" =~ ^[0-9]+$ ]] || [ "$LINES" -lt 100000 ]; then
    die "SCALE_LINES must be a number >= 100000"
fi

make -s all
mkdir -p "$BUILD"/bench
bench_cc() { # bench_cc NAME: tests/bench/NAME.c -> $BUILD/bench/NAME
    # shellcheck disable=SC2046
    cc -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wmissing-prototypes -O2 -g \
        -Iinclude $(pkg-config --cflags libpq) -o "$BUILD/bench/$1" "tests/bench/$1.c" \
        "$BUILD"/libsluice.a $(pkg-config --libs libpq) -lm
}
bench_cc searchgen

mkdir -p -- "${SCALE_DIR:-var/bench-scale}"
DIR=$(realpath -- "${SCALE_DIR:-var/bench-scale}")
PG=$DIR/pg
STAMP=$DIR/stamp
tmp=$(mktemp -d /tmp/sluice-scale-bench.XXXXXX)
chmod 0755 "$tmp"
sluice_pid=
cleanup() {
    local rc=$?
    set +e
    if [ -n "$sluice_pid" ]; then
        kill -TERM "$sluice_pid" 2>/dev/null
        wait "$sluice_pid" 2>/dev/null
    fi
    timeout 120 deploy/pg.sh stop "$PG" >/dev/null 2>&1
    rm -rf -- "$tmp"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

stamp_get() { [ ! -f "$STAMP" ] || sed -n "s/^$1=//p" "$STAMP" | tail -n 1; }
q() { psql -X -qtA -v ON_ERROR_STOP=1 -d "$1" -c "$2"; }

# PostgreSQL for a month of logs on a 2-core, 24 GB box (docs/search.md lists them):
# a 4 GB cache (the last days' partitions and every log_blocks row stay in it), checkpoints
# at most every 30 min or 8 GB of WAL (a load does not checkpoint every few seconds),
# 1 GB for VACUUM/CREATE INDEX, an SSD's random reads.
pg_settings() {
    q "$1" "ALTER SYSTEM SET shared_buffers = '4GB'" >/dev/null
    q "$1" "ALTER SYSTEM SET effective_cache_size = '16GB'" >/dev/null
    q "$1" "ALTER SYSTEM SET max_wal_size = '8GB'" >/dev/null
    q "$1" "ALTER SYSTEM SET min_wal_size = '1GB'" >/dev/null
    q "$1" "ALTER SYSTEM SET checkpoint_timeout = '30min'" >/dev/null
    q "$1" "ALTER SYSTEM SET checkpoint_completion_target = 0.9" >/dev/null
    q "$1" "ALTER SYSTEM SET maintenance_work_mem = '1GB'" >/dev/null
    q "$1" "ALTER SYSTEM SET work_mem = '32MB'" >/dev/null
    q "$1" "ALTER SYSTEM SET random_page_cost = 1.1" >/dev/null
    q "$1" "ALTER SYSTEM SET effective_io_concurrency = 200" >/dev/null
    q "$1" "ALTER SYSTEM SET wal_compression = 'lz4'" >/dev/null
    deploy/pg.sh stop "$PG"
    deploy/pg.sh start "$PG" >/dev/null
}

# ------------------------------------------------------------------ 1. the data set
want="$LINES $DAYS $SOURCES $SEED"
have="$(stamp_get lines) $(stamp_get days) $(stamp_get sources) $(stamp_get seed)"
if [ "${SCALE_REBUILD:-0}" != 1 ] && [ "$want" = "$have" ] && [ -n "$(stamp_get end)" ] &&
    [ -f "$PG/data/PG_VERSION" ]; then
    log "reusing the data set in $PG (built $(stamp_get built): $LINES lines, $DAYS days, $SOURCES sources, seed $SEED)"
    url=$(deploy/pg.sh start "$PG" | tail -n 1)
else
    log "building the data set in $PG: $LINES lines over $DAYS days, $SOURCES sources, seed $SEED"
    rm -f -- "$STAMP"
    deploy/pg.sh destroy "$PG" >&2 || true
    url=$(deploy/pg.sh start "$PG" | tail -n 1)
    pg_settings "$url"
    # The probe: 1M lines (or all of them) into a database of their own, then dropped, at
    # the data set's density (lines per second of received_at, so blocks as full): over
    # DAYS x 1M / LINES days.
    probe=${url/\/sluice\?//sluice_probe?}
    [ "$probe" != "$url" ] || die "cannot derive the probe database URL from $url"
    q "$url" "CREATE DATABASE sluice_probe" >/dev/null
    DATABASE_URL=$probe "$BUILD"/sluice migrate >&2
    n=$((LINES < PROBE_LINES ? LINES : PROBE_LINES))
    s0=$(q "$probe" "SELECT pg_database_size(current_database())")
    probe_days=$(awk -v d="$DAYS" -v n="$n" -v l="$LINES" 'BEGIN { printf "%.6f", d * n / l }')
    "$BUILD"/bench/searchgen load "$probe" --lines "$n" --days "$probe_days" --sources "$SOURCES" \
        --seed "$SEED" --create-sources app --ids-from-seq --partitions --writer-blocks \
        --async-commit >/dev/null
    s1=$(q "$probe" "SELECT pg_database_size(current_database())")
    q "$url" "DROP DATABASE sluice_probe" >/dev/null
    bpl=$(((s1 - s0) / n))
    # + 30 %, + the WAL PostgreSQL keeps (max_wal_size, pg_settings)
    need=$((bpl * LINES * 13 / 10 / 1000000 + 8192))
    avail=$(($(df -B1 --output=avail "$(realpath -- "$PG")" | tail -n 1) / 1000000))
    log "probe: $bpl bytes per line at $n lines over $probe_days days; $LINES lines + 30 % + 8 GB of WAL need ~$need MB, $avail MB free"
    if [ "$need" -gt "$avail" ]; then
        die "refusing to build: ~$need MB needed (measured $bpl B/line x $LINES lines + 30 % + 8 GB of WAL), only $avail MB free on $(df --output=target "$(realpath -- "$PG")" | tail -n 1); set SCALE_LINES lower or SCALE_DIR elsewhere"
    fi
    DATABASE_URL=$url "$BUILD"/sluice migrate >&2
    end=$(date +%s)
    wal0=$(q "$url" "SELECT pg_current_wal_lsn()")
    t0=$(date +%s.%N)
    "$BUILD"/bench/searchgen load "$url" --lines "$LINES" --days "$DAYS" --sources "$SOURCES" \
        --seed "$SEED" --end "$end" --create-sources app --ids-from-seq --partitions \
        --writer-blocks --async-commit >&2
    t1=$(date +%s.%N)
    wal=$(q "$url" "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '$wal0')::bigint")
    # The steady state of a store a month old: statistics, visibility map set. Sources keep
    # their rows for 10 years, so no server's retention pass ever trims the data set.
    q "$url" "UPDATE sources SET retention_days = 3650" >/dev/null
    v0=$(date +%s)
    q "$url" "VACUUM (ANALYZE)" >/dev/null
    load_s=$(printf '%.0f' "$(bc -l <<<"$t1 - $t0")")
    cat >"$STAMP" <<EOF
lines=$LINES
days=$DAYS
sources=$SOURCES
seed=$SEED
end=$end
built=$(date -u +%Y-%m-%dT%H:%M:%SZ)
load_s=$load_s
rows_per_s=$(printf '%.0f' "$(bc -l <<<"$LINES / ($t1 - $t0)")")
vacuum_s=$(($(date +%s) - v0))
wal_bytes=$wal
probe_bytes_per_line=$bpl
EOF
    log "built in $load_s s (+ VACUUM ANALYZE $(stamp_get vacuum_s) s)"
fi
END=$(stamp_get end)
# this sluice's schema (a set built by an older one), then SCALE_COMPACT=1: the closed days
# packed as the server would pack them (days that ended SLUICE_COMPACT_AFTER_HOURS, 24,
# ago; docs/search.md "Compacted days") with their day level ("The day level"), and the
# closed hours' live blocks given their hour level ("The hour level"), once: the stamp
# records it, a later run finds nothing left to do
DATABASE_URL=$url "$BUILD"/sluice migrate >/dev/null || die "sluice migrate failed"
if [ "${SCALE_COMPACT:-0}" = 1 ]; then
    c0=$(date +%s.%N)
    out=$(DATABASE_URL=$url "$BUILD"/sluice compact --fence-seconds 0 2>"$tmp/compact.log") ||
        die "sluice compact failed: $out $(tail -n 5 "$tmp/compact.log")"
    c1=$(date +%s.%N)
    log "$out"
    # as autovacuum would soon after: the deleted blocks' and rows' space marked free
    q "$url" "VACUUM (ANALYZE)" >/dev/null
    grep -q '^compacted=' "$STAMP" || echo "compacted=$(date -u +%Y-%m-%dT%H:%M:%SZ)" >>"$STAMP"
    echo "RESULT kind=compact seconds=$(printf '%.1f' "$(bc -l <<<"$c1 - $c0")") $(tr ' ;' '_ ' <<<"$out")"
fi
echo "RESULT kind=load lines=$LINES days=$DAYS sources=$SOURCES seed=$SEED load_s=$(stamp_get load_s) rows_per_s=$(stamp_get rows_per_s) vacuum_analyze_s=$(stamp_get vacuum_s) built=$(stamp_get built) dir=$PG"

# ------------------------------------------------------------------ 2. disk
# Every relation of a table's partition tree (a plain table is its own tree): heap (main
# fork, free-space and visibility maps), TOAST (with its index), indexes.
psql -X -qtA -v ON_ERROR_STOP=1 -d "$url" -v lines="$LINES" -v wal="$(stamp_get wal_bytes)" <<'EOF' | tee "$tmp/disk"
WITH t(name) AS (VALUES ('logs'), ('log_blocks'), ('log_commits'), ('log_packs'),
                       ('log_day_filters'), ('log_hour_filters'), ('log_filters_coarse')),
rel AS (
    SELECT DISTINCT t.name, c.oid AS relid, c.reltoastrelid
    FROM t, LATERAL (SELECT relid FROM pg_partition_tree(to_regclass(t.name))
                     UNION ALL SELECT to_regclass(t.name)) p
    JOIN pg_class c ON c.oid = p.relid
    WHERE to_regclass(t.name) IS NOT NULL AND c.relkind IN ('r', 'm')),
sz AS (
    SELECT name,
           sum(pg_table_size(relid) - CASE WHEN reltoastrelid <> 0
               THEN pg_total_relation_size(reltoastrelid) ELSE 0 END) AS heap,
           sum(CASE WHEN reltoastrelid <> 0 THEN pg_total_relation_size(reltoastrelid)
               ELSE 0 END) AS toast,
           sum(pg_indexes_size(relid)) AS idx
    FROM rel GROUP BY name),
rows AS (
    SELECT name, part, bytes FROM sz,
    LATERAL (VALUES ('heap', heap), ('toast', toast), ('indexes', idx)) v(part, bytes)
    UNION ALL SELECT 'wal_of_load', 'all', :'wal'::bigint
    UNION ALL SELECT 'total', 'database', pg_database_size(current_database()))
SELECT format('RESULT kind=disk table=%s part=%s bytes=%s mb=%s mb_per_million_lines=%s bytes_per_line=%s',
              name, part, bytes, round(bytes / 1e6, 1), round(bytes / 1e6 / (:lines / 1e6), 2),
              round(bytes::numeric / :lines, 1))
FROM rows ORDER BY name = 'total', name = 'wal_of_load', name, part;
EOF
q "$url" "SELECT format('RESULT kind=blocks log_blocks=%s avg_rows=%s partitions=%s', count(*),
    round(avg(nrows)), (SELECT count(*) FROM pg_inherits WHERE inhparent = 'logs'::regclass))
    FROM log_blocks"
[ "${SCALE_ONLY:-}" != build ] || exit 0

# ------------------------------------------------------------------ 3. search and tail
misses=0
if [ "${SCALE_ONLY:-}" != coarse ]; then
    cert=$tmp/cert.pem
    key=$tmp/key.pem
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=127.0.0.1" \
        -addext "subjectAltName=IP:127.0.0.1" -keyout "$key" -out "$cert" 2>/dev/null ||
        die "openssl req failed"
    token=$(DATABASE_URL=$url "$BUILD"/sluice token add "scalebench$$" --all 2>/dev/null | head -n 1)
    [[ "$token" == slr_* ]] || die "sluice token add printed no token"
    tail_url=$(DATABASE_URL=$url "$BUILD"/sluice source add "tail$$" --retention-days 3650 2>/dev/null |
        tail -n 1)
    tail_creds=${tail_url#https://}
    tail_creds=${tail_creds%%@*}
    if [ -z "$tail_creds" ] || [ "$tail_creds" = "$tail_url" ]; then
        die "sluice source add printed no URL"
    fi
    free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
    http_port=$(free_port)
    https_port=$(free_port)
    [ "$http_port" != "$https_port" ] || https_port=$((http_port + 1))
    DATABASE_URL=$url SLUICE_BIND=127.0.0.1 PORT=$http_port SLUICE_HTTPS_PORT=$https_port \
        SLUICE_SYSLOG_PORT=0 SLUICE_SYSLOG_TLS_PORT=0 SLUICE_TLS_CERT=$cert SLUICE_TLS_KEY=$key \
        SLUICE_SPOOL_DIR=$tmp/spool SLUICE_LOG_LEVEL=warn SLUICE_PUBLIC_URL=https://127.0.0.1:$https_port \
        SLUICE_COMPACT_AFTER_HOURS=0 SLUICE_DISK_FILESYSTEM=off \
        "$BUILD"/sluice serve 2>"$tmp/sluice.log" &
    sluice_pid=$!
    for _ in $(seq 1 300); do
        [ "$(curl -s --max-time 1 "http://127.0.0.1:$http_port/readyz" || true)" = ready ] && break
        kill -0 "$sluice_pid" 2>/dev/null || break
        sleep 0.1
    done
    [ "$(curl -s --max-time 1 "http://127.0.0.1:$http_port/readyz" || true)" = ready ] || {
        tail -n 20 "$tmp/sluice.log" >&2
        die "sluice did not become ready"
    }
    # the start-up retention pass: measured searches must not share the machine with it
    for _ in $(seq 1 3000); do
        passes=$(curl -s --max-time 2 "http://127.0.0.1:$http_port/metrics" |
            awk '$1 == "sluice_retention_passes_total" { print $2 }')
        [ "${passes:-0}" -ge 1 ] && break
        sleep 0.1
    done
    log "sluice on 127.0.0.1:$https_port; $RUNS runs per kind and scope, $TAIL_SAMPLES tail samples"
    out=$(/usr/bin/python3 tests/bench/searchbench.py --url "https://127.0.0.1:$https_port" \
        --cacert "$cert" --token "$token" --dsn "$url" --drain-user "${tail_creds%%:*}" \
        --drain-password "${tail_creds#*:}" --runs "$RUNS" --samples "$TAIL_SAMPLES" \
        --kinds word,reqid,phrase,status --month --end "$END") || {
        echo "$out"
        tail -n 20 "$tmp/sluice.log" >&2
        die "searchbench failed"
    }
    echo "$out"

    kv() { tr ' ' '\n' <<<"$2" | awk -F= -v k="$1" '$1 == k { print $2 }'; }
    target() { # target KIND SCOPE P50_MS P99_MS LABEL
        local line p50 p99 ok=PASS
        line=$(grep "^RESULT kind=$1 scope=$2 " <<<"$out" | head -n 1)
        [ -n "$line" ] || die "no RESULT line for $1 $2"
        p50=$(kv p50_ms "$line")
        p99=$(kv p99_ms "$line")
        [ "$3" = - ] || [ "$(bc -l <<<"$p50 < $3")" = 1 ] || ok=MISS
        [ "$(bc -l <<<"$p99 < $4")" = 1 ] || ok=MISS
        [ $ok = PASS ] || misses=$((misses + 1))
        echo "TARGET $ok kind=$1 scope=$2 p50_ms=$p50 (target ${3/-/none}) p99_ms=$p99 (target $4): $5"
        echo "| $5 | $2 | $p50 / $p99 | $([ "$3" = - ] || echo "p50 < $3, ")p99 < $4 | $ok |" >>"$tmp/targets.md"
    }
    for scope in all one; do
        target word $scope 50 300 "selective word, last 24 h"
        target reqid $scope - 300 "request id, 30 days"
        target phrase $scope - 500 "phrase, 7 days"
        target status $scope - 100 "status:>=500, last hour"
    done
    target tail one - 250 "live tail, 2xx -> SSE event (as docs/benchmarks.md)"
fi

# ------------------------------------------------------------------ 4. the coarse level
# SCALE_COARSE=1: the prototype of a coarser filter level (tests/bench/coarse.c): built
# once into log_filters_coarse (kept with the data set), then the block scan of today
# against coarse level + blocks, for request ids over 30 days and phrases over 7 days.
if [ "${SCALE_COARSE:-0}" = 1 ] || [ "${SCALE_ONLY:-}" = coarse ]; then
    if [ -n "$sluice_pid" ]; then
        kill -TERM "$sluice_pid" 2>/dev/null
        wait "$sluice_pid" 2>/dev/null || true
        sluice_pid=
    fi
    bench_cc coarse
    if [ "$(q "$url" "SELECT to_regclass('log_filters_coarse') IS NOT NULL")" != t ]; then
        log "building the coarse level (log_filters_coarse)"
        "$BUILD"/bench/coarse build "$url"
    fi
    q "$url" "SELECT format('RESULT kind=disk table=log_filters_coarse part=all bytes=%s mb_per_million_lines=%s rows=%s',
        pg_total_relation_size('log_filters_coarse'),
        round(pg_total_relation_size('log_filters_coarse') / 1e6 / ($LINES / 1e6), 2), count(*))
        FROM log_filters_coarse"
    q "$url" "SELECT '\"' || substring(message from 'request_id=([0-9a-f-]{36})') || '\"'
        FROM logs TABLESAMPLE SYSTEM (0.05) WHERE message LIKE 'at=info%'
        AND received_at > to_timestamp($END) - interval '29 days 23 hours' LIMIT $RUNS" >"$tmp/reqids"
    q "$url" "SELECT DISTINCT '\"' || coalesce(substring(message from '(raised in job [0-9]+)'),
        substring(message from '(connecting to Redis on 10[.]0[.]0[.][0-9]+)')) || '\"'
        FROM logs TABLESAMPLE SYSTEM (5) WHERE received_at > to_timestamp($END) - interval '6 days 23 hours'
        AND (message LIKE 'Sidekiq::Shutdown%' OR message LIKE 'Redis::CannotConnectError%')
        LIMIT $RUNS" >"$tmp/phrases"
    for pass in 1 2; do
        "$BUILD"/bench/coarse query "$url" --since $((END - 30 * 86400)) --until $((END + 1)) \
            --runs-file "$tmp/reqids" 2>/dev/null | sed "s/^RESULT kind=coarse_proto /RESULT kind=coarse_proto what=reqid_30d pass=$pass /"
        "$BUILD"/bench/coarse query "$url" --since $((END - 7 * 86400)) --until $((END + 1)) \
            --runs-file "$tmp/phrases" 2>/dev/null | sed "s/^RESULT kind=coarse_proto /RESULT kind=coarse_proto what=phrase_7d pass=$pass /"
    done
fi
# ------------------------------------------------------------------ 5. the document
# Issue 17's disk target: a packed line's bytes (its pack, its block's row and share of
# log_blocks' indexes, the day level) against a live line's (its logs partition, its
# block, the hour level), each over its own lines (docs/search.md "Compressed packs").
# After the searches: it reads every block, which would change their page cache.
psql -X -qtA -v ON_ERROR_STOP=1 -d "$url" <<'EOF' | tee "$tmp/closed"
WITH b AS (SELECT count(*) FILTER (WHERE packed) AS pb, count(*) FILTER (WHERE NOT packed) AS lb,
                  coalesce(sum(nrows) FILTER (WHERE packed), 0) AS pn,
                  coalesce(sum(nrows) FILTER (WHERE NOT packed), 0) AS ln,
                  coalesce(sum(pg_column_size(x.*)) FILTER (WHERE packed), 0) AS prb,
                  coalesce(sum(pg_column_size(x.*)) FILTER (WHERE NOT packed), 0) AS lrb,
                  greatest(count(*), 1) AS nb
           FROM log_blocks x),
s AS (SELECT (SELECT coalesce(sum(pg_total_relation_size(relid)), 0)
              FROM pg_partition_tree(to_regclass('log_packs')) WHERE isleaf) AS packs,
             (SELECT coalesce(sum(pg_total_relation_size(relid)), 0)
              FROM pg_partition_tree('logs') WHERE isleaf) AS logs,
             pg_indexes_size('log_blocks') AS bidx,
             coalesce(pg_total_relation_size(to_regclass('log_day_filters')), 0) AS dayf,
             coalesce(pg_total_relation_size(to_regclass('log_hour_filters')), 0) AS hourf),
v AS (SELECT pn, ln, s.packs + prb + s.bidx * pb::numeric / nb + s.dayf AS pbytes,
             s.logs + lrb + s.bidx * lb::numeric / nb + s.hourf AS lbytes FROM b, s)
SELECT format('RESULT kind=closed_days packed_lines=%s packed_bytes_per_line=%s live_lines=%s live_bytes_per_line=%s',
              pn, round(pbytes / greatest(pn, 1), 1), ln, round(lbytes / greatest(ln, 1), 1))
FROM v;
EOF

# SCALE_DOC (docs/benchmarks-scale.md; empty: not written): this run's targets and disk,
# which tests/bench/run.sh appends to docs/benchmarks.md. Only a run that measured them.
DOC=${SCALE_DOC-docs/benchmarks-scale.md}
if [ -n "$DOC" ] && [ -s "$tmp/targets.md" ]; then
    bpl() { awk -v t="$1" '$3 == "table=" t { for (i = 1; i <= NF; i++) if ($i ~ /^bytes_per_line=/) { sub("bytes_per_line=", "", $i); s += $i } } END { printf "%.1f", s }' "$tmp/disk"; }
    {
        echo "## A month of logs (\`make bench-scale\`)"
        echo
        echo "Written by \`tests/bench/scale_bench.sh\` (\`make bench-scale\`); rerun it rather than editing."
        echo "Design and the runs before this one: [search.md](search.md) (\"A month of logs\","
        echo "\"The day level\", \"The hour level\", \"Numeric fields\")."
        echo
        echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ); commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git status --porcelain 2>/dev/null | grep -q . && echo " (working tree modified)" || true)"
        echo "- data set: $LINES lines over $DAYS days, $SOURCES Zipf-weighted sources (seed $SEED), loaded in $(stamp_get load_s) s ($(stamp_get rows_per_s) rows/s), built $(stamp_get built)$(grep -q '^compacted=' "$STAMP" && echo ", closed days packed $(stamp_get compacted)")"
        echo "- disk, bytes per line of the whole set: database $(bpl total), logs $(bpl logs), log_packs $(bpl log_packs), log_blocks $(bpl log_blocks), log_day_filters $(bpl log_day_filters), log_hour_filters $(bpl log_hour_filters)"
        cv() { tr ' ' '\n' <"$tmp/closed" | awk -F= -v k="$1" '$1 == k { print $2 }'; }
        echo "- closed days: a packed line $(cv packed_bytes_per_line) B ($(cv packed_lines) lines), a live one $(cv live_bytes_per_line) B ($(cv live_lines) lines): $(printf '%.2f' "$(bc -l <<<"$(cv packed_bytes_per_line) / $(cv live_bytes_per_line)")")x"
        echo "- searches: $RUNS timed runs per row over HTTPS keep-alive, newest 100, a cold cluster; p99 is the nearest rank (with fewer than 100 runs, the slowest run)"
        echo
        echo "| search | scope | p50 / p99 ms | target | |"
        echo "|---|---|---|---|---|"
        cat "$tmp/targets.md"
    } >"$DOC"
    log "wrote $DOC"
fi
log "$misses target(s) missed; data set kept in $PG (deploy/pg.sh start $PG)"
