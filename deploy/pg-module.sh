#!/usr/bin/env bash
# Installs sluice's PostgreSQL server module (build/sluice_pg.so, drain/pg/sluice_pg.c)
# into the server's $libdir, where `CREATE FUNCTION ... AS 'sluice_pg'` finds it.
#
#   deploy/pg-module.sh build/sluice_pg.so     (`make pg-module`; PG_CONFIG picks the server)
#
# The file is replaced by a rename, never rewritten in place: a backend that has the old
# one mapped keeps it, new backends load the new one. Without write access to $libdir
# (not root, or a managed PostgreSQL) it says so and exits 0: sluice then stores packs as
# arrays of rows (docs/search.md "Compressed packs"). For a PostgreSQL on another host,
# copy the file to that host's `pg_config --pkglibdir` (same major version).
set -euo pipefail

so=${1:?usage: deploy/pg-module.sh build/sluice_pg.so}
pg_config=${PG_CONFIG:-pg_config}
dir=$("$pg_config" --pkglibdir)
dst="$dir/sluice_pg.so"

if cmp -s "$so" "$dst"; then
    exit 0
fi
if [ ! -w "$dir" ]; then
    echo "pg-module: $dir is not writable: packs stay arrays of rows (docs/search.md \"Compressed packs\")" >&2
    exit 0
fi
tmp="$dir/.sluice_pg.so.$$"
cp "$so" "$tmp"
chmod 0755 "$tmp"
mv -f "$tmp" "$dst"
echo "pg-module: installed $dst" >&2
