#!/usr/bin/env bash
# A legitimate drain's p99 while hostile connections come and go (issue 13 item 1):
# a private PostgreSQL (deploy/pg.sh), a fresh sluice on 127.0.0.1 with its default
# connection settings, then tests/bench/connattack.py against it.
#
#   tests/bench/connattack.sh [connattack.py args...]    (default: --hostile 5000)
#
# Bounded: the run has a deadline (CONNATTACK_DEADLINE, 300 s); everything it started is
# stopped on exit. Prints connattack.py's RESULT line.
set -euo pipefail

cd "$(dirname -- "$0")/../.."
BUILD=${BUILD:-build}
tmp=$(mktemp -d /tmp/connattack.XXXXXX)
sluice_pid=
cleanup() {
    [ -n "$sluice_pid" ] && kill "$sluice_pid" 2>/dev/null && wait "$sluice_pid" 2>/dev/null
    deploy/pg.sh destroy "$tmp/pg" >/dev/null 2>&1 || true
    rm -rf -- "$tmp"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

export DATABASE_URL
DATABASE_URL=$(deploy/pg.sh start "$tmp/pg" | tail -n 1)
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=127.0.0.1" \
    -addext "subjectAltName=IP:127.0.0.1" -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null
"$BUILD"/sluice migrate >&2
http_port=$(free_port)
https_port=$(free_port)
export SLUICE_PUBLIC_URL=https://127.0.0.1:$https_port
SLUICE_BIND=127.0.0.1 PORT=$http_port SLUICE_HTTPS_PORT=$https_port \
    SLUICE_TLS_CERT=$tmp/cert.pem SLUICE_TLS_KEY=$tmp/key.pem SLUICE_SPOOL_DIR=$tmp/spool \
    SLUICE_LOG_LEVEL=warn \
    "$BUILD"/sluice serve 2>"$tmp/sluice.log" &
sluice_pid=$!
drain_url=$("$BUILD"/sluice source add attackbench 2>/dev/null | tail -n 1)
for _ in $(seq 100); do
    curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$http_port/healthz" && break
    sleep 0.1
done
sleep 1.5 # the source table reload (LISTEN/NOTIFY)
rc=0
timeout "${CONNATTACK_DEADLINE:-300}" python3 tests/bench/connattack.py \
    --url "$drain_url" --http-port "$http_port" --cacert "$tmp/cert.pem" "$@" || rc=$?
curl -s --max-time 2 "http://127.0.0.1:$http_port/metrics" |
    grep -E '^sluice_(connections|head_timeouts|accept_paused)' >&2 || true
exit $rc
