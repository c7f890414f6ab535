#!/usr/bin/env bash
# Where one PostgreSQL stops (docs/scaling.md): `tests/bench/scale.sh [LINES]`.
#
# A private PostgreSQL (deploy/pg.sh) in a temporary directory, `sluice migrate`, then:
#   1. `searchgen load` LINES (1000000) corpus-shaped lines over one day, 50 sources, COPY
#      in the writer's 10 000-row transactions with its log_blocks (fsync on): rows/s;
#   2. disk: logs partitions + their index, log_blocks, log_commits, bytes per row;
#   3. tests/bench/multiwriter.py: 1, 2 and 3 writers into the same database, 10 000-row
#      transactions, with and without the commit stamp (the commit-order lock), SECONDS
#      (BENCH_SCALE_SECONDS, 10) each, two rounds (the machine may be shared);
#   4. `searchgen query`: search shapes against the rows stored (p50/p99).
# Prints what it measured; writes nothing in the repository. Only a unix socket is used.
set -euo pipefail
cd "$(dirname -- "$0")/../.."
BUILD=${BUILD:-build}
LINES=${1:-1000000}
SECS=${BENCH_SCALE_SECONDS:-10}

make -s BUILD="$BUILD" all "$BUILD/libsluice.a" >&2
mkdir -p "$BUILD"/bench
# shellcheck disable=SC2046
cc -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wmissing-prototypes -O2 -g -Iinclude \
    $(pkg-config --cflags libpq) -o "$BUILD"/bench/searchgen tests/bench/searchgen.c \
    "$BUILD"/libsluice.a $(pkg-config --libs libpq) -lm

tmp=$(mktemp -d /tmp/sluice-scale.XXXXXX)
chmod 0755 "$tmp"
trap 'deploy/pg.sh destroy "$tmp/pg" >/dev/null 2>&1 || true; rm -rf -- "$tmp"' EXIT
url=$(deploy/pg.sh start "$tmp/pg")
DATABASE_URL=$url "$BUILD"/sluice migrate >&2
q() { psql -X -qtA -d "$url" -c "$1"; }

t0=$(date +%s.%N)
"$BUILD"/bench/searchgen load "$url" --lines "$LINES" --days 1 --create-sources app \
    --ids-from-seq --partitions --writer-blocks >&2
t1=$(date +%s.%N)
q "ANALYZE" >/dev/null
echo "load: $LINES rows in $(echo "$t1 - $t0" | bc) s: $(echo "$LINES / ($t1 - $t0)" | bc) rows/s (one connection, fsync on, with log_blocks)"
q "SELECT 'disk: logs ' || pg_size_pretty(sum(pg_total_relation_size(c.oid))) || ' (' ||
   round(sum(pg_total_relation_size(c.oid)) / $LINES::numeric) || ' B/row, index included), log_blocks ' ||
   pg_size_pretty(pg_total_relation_size('log_blocks')) || ' (' ||
   round(pg_total_relation_size('log_blocks') / $LINES::numeric, 1) || ' B/row)'
   FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'logs'::regclass"
q "SELECT 'message: ' || round(avg(octet_length(message))) || ' B average' FROM logs"
for round in 1 2; do for w in 1 2 3; do
    for m in nostamp stamp; do
        /usr/bin/python3 tests/bench/multiwriter.py "$url" "$SECS" "$w" "$m"
    done
done; done
q "SELECT 'log_commits: ' || count(*) || ' rows, ' || pg_size_pretty(pg_total_relation_size('log_commits')) ||
   ' (' || round(pg_total_relation_size('log_commits') / greatest(1, sum(nrows))::numeric, 2) || ' B per row listed)'
   FROM log_commits"
q "ANALYZE" >/dev/null
echo "rows stored now: $(q "SELECT count(*) FROM logs")"
"$BUILD"/bench/searchgen query "$url" --runs 20 --only word,phrase,reqid,status
