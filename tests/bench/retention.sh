#!/usr/bin/env bash
# Request latency while retention deletes a large backlog (issue 17; figures in
# docs/retention.md, "Cost under load"):
#
#   tests/bench/retention.sh [ROUNDS]
#
# A private PostgreSQL (deploy/pg.sh), one sluice (HTTPS, fsync on) and two sources kept
# 30 days: `load` takes a steady paced load (loadgen --rate BENCH_RATE lines/s, default
# 3000, in bodies of BENCH_LINES_PER_BODY lines, default 20, so 150 requests a second,
# over 8 connections for BENCH_SECONDS, default 30 s), `old` holds BENCH_OLD_ROWS
# (default 1 000 000) rows of three days ago, stored straight by SQL, vacuumed and
# checkpointed. Each round measures the load's request p99 twice: once with nothing to
# delete, once right after `sluice source set old --retention-days 1`, which starts a
# pass that deletes the backlog in SLUICE_RETENTION_BATCH_ROWS batches paced by
# SLUICE_RETENTION_PAUSE_MS and SLUICE_RETENTION_WAL_RATE (the server's defaults unless
# set). After the window the rest of the backlog is deleted by SQL and vacuumed, the pass
# ends, and the backlog is put back for the next round. Before each round the machine
# settles (no autovacuum, a checkpoint, `sync`) and an unmeasured window of the same load
# runs, so both measured windows follow a loaded one. Compaction is off: it would pack the
# backlog (a closed day) between rounds, and the pass would then delete packs, not rows
# (docs/retention.md "Packed days"; far less WAL a row). Prints each run, how much of the
# backlog the pass deleted in the window and the WAL it wrote, and the medians.
# BENCH_CONTROL=1 runs the same rounds without the delete (an A/A run: what the second
# window's place alone does to the comparison).
set -euo pipefail

rounds=${1:-3}
RATE=${BENCH_RATE:-3000}
SECS=${BENCH_SECONDS:-30}
LPB=${BENCH_LINES_PER_BODY:-20}
OLD=${BENCH_OLD_ROWS:-1000000}
cd "$(dirname -- "$0")/../.."
bin=$PWD/build/sluice
loadgen=$PWD/build/bench/loadgen
mkdir -p build/bench
cc -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -O2 -Iinclude \
    $(pkg-config --cflags libevent_openssl openssl zlib) -o "$loadgen" \
    tests/bench/loadgen.c $(pkg-config --libs libevent_openssl openssl zlib)

tmp=$(mktemp -d /tmp/sluice-retbench.XXXXXX)
chmod 0755 "$tmp"
pid=
cleanup() {
    [ -z "$pid" ] || { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
    deploy/pg.sh destroy "$tmp/pg" >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT
export DATABASE_URL
DATABASE_URL=$(deploy/pg.sh start "$tmp/pg")
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=127.0.0.1" \
    -addext "subjectAltName=IP:127.0.0.1" -keyout "$tmp/key.pem" -out "$tmp/cert.pem" \
    >/dev/null 2>&1
chmod 0600 "$tmp/key.pem"
"$bin" migrate >/dev/null
d=$("$bin" source add load --retention-days 30 | tail -n 1)
d=${d#https://}
creds=${d%%@*}
"$bin" source add old --retention-days 30 >/dev/null
q() { psql -X -qtA -d "$DATABASE_URL" -c "$1"; }
day=$(q "SELECT to_char((now() - interval '3 days') AT TIME ZONE 'UTC', 'YYYY-MM-DD')")
next=$(q "SELECT to_char('$day'::date + 1, 'YYYY-MM-DD')")
q "CREATE TABLE IF NOT EXISTS logs_${day//-/} PARTITION OF logs FOR VALUES FROM
   ('$day 00:00:00+00') TO ('$next 00:00:00+00')" >/dev/null

backlog() { # the old source's rows of three days ago, over one hour of that day
    q "SELECT set_config('synchronous_commit', 'off', false);
       INSERT INTO logs (received_at, source_id, facility, severity, hostname, app_name,
         procid, message)
       SELECT '$day 10:00:00+00'::timestamptz + (i * interval '3 ms'), s.id, 23, 6, 'host',
         'app', 'web.1', 'at=info method=GET path=/orders/' || i || ' host=shop.example.com '
         || 'request_id=' || md5(i::text) || ' fwd=10.0.0.1 dyno=web.1 connect=1ms status=200'
       FROM generate_series(1, $OLD) i, sources s WHERE s.name = 'old';
       ANALYZE logs;" >/dev/null
    q "VACUUM logs_${day//-/}" >/dev/null
    settle
}

# Before a window: no autovacuum at work, a checkpoint, and the page cache written out.
# Otherwise the pages the backlog's insert and VACUUM dirtied reach the disk ~30 s later
# (the kernel's dirty_expire), in one burst of ~100 MB that stalls the spool's fsyncs for
# 50 ms, and that lands in whichever window comes next (seen with loadgen --latency-log).
settle() {
    for _ in $(seq 1 300); do
        [ "$(q "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'")" = 0 ] &&
            break
        sleep 0.2
    done
    q CHECKPOINT >/dev/null
    sync
}

hp=$((20000 + RANDOM % 30000))
sp=$((hp + 1))
SLUICE_BIND=127.0.0.1 PORT=$hp SLUICE_HTTPS_PORT=$sp SLUICE_TLS_CERT=$tmp/cert.pem \
    SLUICE_TLS_KEY=$tmp/key.pem SLUICE_SPOOL_DIR=$tmp/spool SLUICE_LOG_LEVEL=warn \
    SLUICE_RETENTION_INTERVAL=86400 SLUICE_COMPACT_AFTER_HOURS=0 "$bin" serve 2>"$tmp/sluice.log" &
pid=$!
for _ in $(seq 1 100); do
    [ "$(curl -s --max-time 1 "http://127.0.0.1:$hp/readyz" || true)" = ready ] && break
    sleep 0.1
done
metric() {
    curl -s --max-time 2 "http://127.0.0.1:$hp/metrics" | awk -v n="$1" '$1 == n { print $2 }'
}

load() { # prints the load's p99 in ms
    "$loadgen" --url "https://$creds@127.0.0.1:$sp/logs" --connections 8 \
        --lines $((RATE * SECS)) --rate "$RATE" --lines-per-body "$LPB" --duration-max $((SECS * 3)) 2>/dev/null |
        sed -n 's/^RESULT .* p99_ms=\([^ ]*\).*/\1/p'
}

declare -a quiet busy
for r in $(seq 1 "$rounds"); do
    "$bin" source set old --retention-days 30 >/dev/null
    backlog
    load >/dev/null # a window unmeasured: both measured ones come after a loaded one
    p=$(load)
    quiet+=("$p")
    printf 'round %d  no delete        p99 %7.2f ms\n' "$r" "$p"
    d0=$(metric sluice_retention_rows_deleted_total)
    b0=$(metric sluice_retention_batches_total)
    w0=$(metric sluice_retention_wal_bytes_total)
    n0=$(metric sluice_retention_passes_total)
    # BENCH_CONTROL=1: the second window without the delete (an A/A run), to see what
    # the windows' order alone does to the comparison
    [ "${BENCH_CONTROL:-0}" = 1 ] || "$bin" source set old --retention-days 1 >/dev/null
    p=$(load)
    busy+=("$p")
    d1=$(metric sluice_retention_rows_deleted_total)
    b1=$(metric sluice_retention_batches_total)
    w1=$(metric sluice_retention_wal_bytes_total)
    printf 'round %d  during delete    p99 %7.2f ms  (%d rows deleted in %d statements in the window, %.1f MB of WAL)\n' \
        "$r" "$p" "$((${d1%.*} - ${d0%.*}))" "$((${b1%.*} - ${b0%.*}))" \
        "$(bc -l <<<"(${w1%.*} - ${w0%.*}) / 1000000")"
    # the rest of the backlog goes now, not at the pass's pace; then the pass ends
    q "DELETE FROM logs WHERE source_id = (SELECT id FROM sources WHERE name = 'old')" >/dev/null
    q "VACUUM logs_${day//-/}" >/dev/null
    settle
    for _ in $(seq 1 600); do
        n1=$(metric sluice_retention_passes_total)
        [ "${n1%.*}" -gt "${n0%.*}" ] || [ "${BENCH_CONTROL:-0}" = 1 ] && break
        sleep 0.2
    done
done
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
mq=$(median "${quiet[@]}")
mb=$(median "${busy[@]}")
# and paired: each round's delete window against its own no-delete one, which followed
# the same preparation a minute earlier
declare -a ratio
for i in "${!quiet[@]}"; do
    ratio+=("$(bc -l <<<"(${busy[$i]} - ${quiet[$i]}) * 100 / ${quiet[$i]}")")
done
printf 'median p99: no delete %.2f ms, during delete %.2f ms (%+.1f %%; median of the rounds'"'"' own differences %+.1f %%); %s lines/s in bodies of %s lines over 8 HTTPS connections for %s s, backlog %s rows\n' \
    "$mq" "$mb" "$(bc -l <<<"($mb - $mq) * 100 / $mq")" "$(median "${ratio[@]}")" "$RATE" "$LPB" \
    "$SECS" "$OLD"
