#!/usr/bin/env bash
# Paired ingest runs for JSON lines (issue 16; figures in docs/search.md, "JSON lines"):
#
#   tests/bench/json_ingest.sh BASE_SLUICE [ROUNDS]
#
# BASE_SLUICE is a sluice binary built from the code before JSON fields (e.g. `git archive
# <base> | tar -x -C /tmp/base && make -C /tmp/base`); the other is this tree's build/sluice.
# Each round runs both, in alternating order, on the same private PostgreSQL (deploy/pg.sh,
# one database each, each migrated by its own binary), HTTPS with fsync on, loadgen with
# BENCH_JSON_SHARE (50) % structured JSON lines, BENCH_LINES (300000) lines over
# BENCH_CONNECTIONS (8) connections. A run's figure is end to end: the lines loadgen got a
# 204 for, over the time from its first send until sluice_lines_stored_total reached them
# (every line committed in PostgreSQL with its block filters). Tables are truncated and
# checkpointed before every run. Prints one line per run and the medians.
set -euo pipefail

base_bin=$(realpath "${1:?usage: json_ingest.sh BASE_SLUICE [ROUNDS]}")
rounds=${2:-3}
LINES=${BENCH_LINES:-300000}
CONNS=${BENCH_CONNECTIONS:-8}
SHARE=${BENCH_JSON_SHARE:-50}
cd "$(dirname -- "$0")/../.."
new_bin=$PWD/build/sluice
loadgen=$PWD/build/bench/loadgen
cc -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -O2 -Iinclude \
    $(pkg-config --cflags libevent_openssl openssl zlib) -o build/bench/loadgen \
    tests/bench/loadgen.c $(pkg-config --libs libevent_openssl openssl zlib)

tmp=$(mktemp -d /tmp/sluice-jsonbench.XXXXXX)
chmod 0755 "$tmp"
pid=
cleanup() {
    [ -z "$pid" ] || { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
    deploy/pg.sh destroy "$tmp/pg" >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT
url=$(deploy/pg.sh start "$tmp/pg")
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=127.0.0.1" \
    -addext "subjectAltName=IP:127.0.0.1" -keyout "$tmp/key.pem" -out "$tmp/cert.pem" \
    >/dev/null 2>&1
chmod 0600 "$tmp/key.pem"

declare -A dburl creds
for which in base new; do
    psql -X -q -d "$url" -c "CREATE DATABASE sluice_$which" >/dev/null
    dburl[$which]=${url/\/sluice\?//sluice_$which?}
    bin=$base_bin
    [ "$which" = new ] && bin=$new_bin
    DATABASE_URL=${dburl[$which]} "$bin" migrate >/dev/null 2>&1
    d=$(DATABASE_URL=${dburl[$which]} "$bin" source add bench 2>/dev/null | tail -n 1)
    d=${d#https://}
    creds[$which]=${d%%@*}
done

port() { echo $((20000 + RANDOM % 30000)); }

run() { # run base|new: prints lines/s end to end
    local which=$1 bin=$base_bin hp sp out first ok stored t_end i
    [ "$which" = new ] && bin=$new_bin
    export DATABASE_URL=${dburl[$which]}
    psql -X -q -d "$DATABASE_URL" -c "TRUNCATE logs, log_blocks, ingest_frames, spool_checkpoints" -c CHECKPOINT >/dev/null
    rm -rf "$tmp/spool"
    hp=$(port)
    sp=$((hp + 1))
    SLUICE_BIND=127.0.0.1 PORT=$hp SLUICE_HTTPS_PORT=$sp SLUICE_TLS_CERT=$tmp/cert.pem \
        SLUICE_TLS_KEY=$tmp/key.pem SLUICE_SPOOL_DIR=$tmp/spool SLUICE_LOG_LEVEL=warn \
        "$bin" serve 2>"$tmp/sluice-$which.log" &
    pid=$!
    for i in $(seq 1 100); do
        [ "$(curl -s --max-time 1 "http://127.0.0.1:$hp/readyz" || true)" = ready ] && break
        sleep 0.1
    done
    out=$("$loadgen" --url "https://${creds[$which]}@127.0.0.1:$sp/logs" --connections "$CONNS" \
        --lines "$LINES" --json-share "$SHARE" --duration-max 300 2>/dev/null | grep '^RESULT ')
    first=$(sed -n 's/.* first_send_epoch=\([^ ]*\).*/\1/p' <<<"$out")
    ok=$(sed -n 's/.* lines_ok=\([^ ]*\).*/\1/p' <<<"$out")
    for i in $(seq 1 3000); do
        stored=$(curl -s --max-time 2 "http://127.0.0.1:$hp/metrics" |
            awk '$1 == "sluice_lines_stored_total" { print $2 }')
        [ "${stored%.*}" -ge "$ok" ] && break
        sleep 0.1
    done
    t_end=$(date +%s.%N)
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    pid=
    bc -l <<<"$ok / ($t_end - $first)"
}

declare -a base_r new_r
for r in $(seq 1 "$rounds"); do
    if [ $((r % 2)) = 1 ]; then order="base new"; else order="new base"; fi
    for which in $order; do
        v=$(run "$which")
        printf 'round %d %-4s %.1fk lines/s\n' "$r" "$which" "$(bc -l <<<"$v/1000")"
        if [ "$which" = base ]; then base_r+=("$v"); else new_r+=("$v"); fi
    done
done
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
mb=$(median "${base_r[@]}")
mn=$(median "${new_r[@]}")
printf 'median: base %.1fk, new %.1fk lines/s (%+.1f %%), %s lines, %s %% JSON, %s connections\n' \
    "$(bc -l <<<"$mb/1000")" "$(bc -l <<<"$mn/1000")" "$(bc -l <<<"($mn - $mb) * 100 / $mb")" \
    "$LINES" "$SHARE" "$CONNS"
