#!/usr/bin/env bash
# Field searches on the bench set (issue 16; figures in docs/search.md, "JSON lines"):
#
#   tests/bench/json_search.sh [LINES] [RUNS]
#
# A private PostgreSQL (deploy/pg.sh) gets LINES (2000000) lines of `searchgen load
# --writer-blocks` (the stream corpus's shapes over 7 days and 50 sources; 12 % of them are
# app JSON lines {"level":...,"status":200,"dur_ms":N,"user_id":N}, stored with json_at,
# their blocks built by the writer's drain/blocks.c), then ANALYZE; this tree's sluice serves
# it and tests/bench/searchbench.py times, RUNS (30) runs each over HTTPS keep-alive, all
# sources and one: a rare word (24 h), a JSON field that is as selective (user_id:N, 24 h),
# a JSON number compared (dur_ms:>=299, 1 h) and the logfmt status:>=500 (1 h). With
# BASE_SLUICE=path (a binary from before JSON fields), that binary then serves the same
# database and the word and status:>=500 searches run again (base=1 on those lines): what a
# logfmt field search pays for the JSON alternative. Prints searchbench's RESULT lines.
set -euo pipefail

LINES=${1:-2000000}
RUNS=${2:-30}
cd "$(dirname -- "$0")/../.."
tmp=$(mktemp -d /tmp/sluice-jsonsearch.XXXXXX)
chmod 0755 "$tmp"
pid=
cleanup() {
    [ -z "$pid" ] || { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
    deploy/pg.sh destroy "$tmp/pg" >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT
make -s build/sluice build/libsluice.a
mkdir -p build/bench
# shellcheck disable=SC2046
cc -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -O2 -g -Iinclude $(pkg-config --cflags libpq) \
    -o build/bench/searchgen tests/bench/searchgen.c build/libsluice.a $(pkg-config --libs libpq) -lm
export DATABASE_URL
DATABASE_URL=$(deploy/pg.sh start "$tmp/pg")
build/sluice migrate >/dev/null
build/bench/searchgen load "$DATABASE_URL" --lines "$LINES" --create-sources app --ids-from-seq \
    --partitions --writer-blocks --async-commit >&2
psql -X -q -d "$DATABASE_URL" -c ANALYZE
token=$(build/sluice token add bench --all 2>/dev/null | head -n 1)
drain=$(build/sluice source add tail 2>/dev/null | tail -n 1)
drain=${drain#https://}
drain=${drain%%@*}
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=127.0.0.1" \
    -addext "subjectAltName=IP:127.0.0.1" -keyout "$tmp/key.pem" -out "$tmp/cert.pem" \
    >/dev/null 2>&1
chmod 0600 "$tmp/key.pem"
serve_and_time() { # serve_and_time BINARY KINDS
    local hp sp
    hp=$((20000 + RANDOM % 30000))
    sp=$((hp + 1))
    SLUICE_BIND=127.0.0.1 PORT=$hp SLUICE_HTTPS_PORT=$sp SLUICE_TLS_CERT=$tmp/cert.pem \
        SLUICE_TLS_KEY=$tmp/key.pem SLUICE_SPOOL_DIR=$tmp/spool SLUICE_LOG_LEVEL=warn \
        "$1" serve 2>>"$tmp/sluice.log" &
    pid=$!
    for _ in $(seq 1 100); do
        [ "$(curl -s --max-time 1 "http://127.0.0.1:$hp/readyz" || true)" = ready ] && break
        sleep 0.1
    done
    sleep 2 # the start-up retention pass
    /usr/bin/python3 tests/bench/searchbench.py --url "https://127.0.0.1:$sp" \
        --cacert "$tmp/cert.pem" --token "$token" --dsn "$DATABASE_URL" \
        --drain-user "${drain%%:*}" --drain-password "${drain#*:}" --runs "$RUNS" \
        --only search --kinds "$2"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    pid=
}
serve_and_time build/sluice word,field,jsonnum,status
if [ -n "${BASE_SLUICE:-}" ]; then
    serve_and_time "$BASE_SLUICE" word,status | sed 's/^RESULT /RESULT base=1 /'
fi
