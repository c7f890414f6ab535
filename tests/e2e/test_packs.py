"""Compressed packs (drain/pg/sluice_pg.c, docs/search.md "Compressed packs").

The server module runs inside the real PostgreSQL of the suite (installed by `make
pg-module`, bound by `sluice migrate`). A pack must give back exactly the rows it was
given, every column byte for byte; a damaged one must be an error, never fewer rows; and
a database whose packs were written as arrays (the module not bound yet) answers the same
before and after they are compressed."""

import datetime
import os
import random
import re
import subprocess

import psycopg2
import pytest

from conftest import (SLUICE, Database, Server, add_read_token, add_source, api_get,
                      day_partition, empty_database, sluice_cli)
from test_compact import day_window, search_answers, worded_rows

UTC = datetime.timezone.utc

# Rows that reach every corner of the format: NULLs in some rows of a column and in every
# row of another, empty strings, text that is not ASCII, a bytea with NUL bytes, JSON,
# numbers that go down as well as up (deltas below zero), the extremes of each integer
# type, and one message of 1 MB.
EDGE_ROWS = """
SELECT ARRAY[
  ROW(9223372036854775807, '2026-01-02 03:04:05.678901+00', -9223372036854775808,
      '1999-12-31 23:59:59.999999+00', 6, -720, 23, 7, 'h\u00f4te', '', 'web.1', '-',
      '[x@1 a="b"]', 'r\u00e9sum\u00e9 \u2603 \U0001F600', '\\x00ff00'::bytea, 'bad frame',
      2147483647, '{"k": [1, {"z": null}], "s": "\u00e9"}'::jsonb, 'frame-1', 3)::logs,
  ROW(1, '1970-01-01 00:00:00+00', 0, NULL, NULL, NULL, NULL, 0, NULL, NULL, NULL, NULL,
      NULL, '', NULL, NULL, -2147483648, NULL, NULL, NULL)::logs,
  ROW(-5, 'infinity', 5, '-infinity', -32768, 32767, 0, 0, 'h', 'a', 'p', 'm', 's',
      repeat('0123456789abcdef', 65536), ''::bytea, '', 0, '{}'::jsonb, '', 1)::logs
] AS a
"""


def test_a_pack_gives_back_every_column_byte_for_byte(db):
    got = db.query(f"SELECT a::text AS want, (SELECT array_agg(u)::text FROM "
                   f"sluice_unpack(sluice_pack(a)) u) AS got, a IS NOT DISTINCT FROM (SELECT "
                   f"array_agg(u) FROM sluice_unpack(sluice_pack(a)) u) AS same, "
                   f"octet_length(sluice_pack(a)) AS packed, octet_length(a::text) AS raw "
                   f"FROM ({EDGE_ROWS}) x")[0]
    assert got["same"] and got["got"] == got["want"]
    assert got["packed"] < got["raw"] / 50, "a repeated 1 MB message compresses"
    # order is kept, and the empty pack is no row
    order = db.query("SELECT array_agg(u.id) AS ids FROM sluice_unpack(sluice_pack(ARRAY["
                     "json_populate_record(NULL::logs, '{\"id\": 3, \"message\": \"c\"}'), "
                     "json_populate_record(NULL::logs, '{\"id\": 1, \"message\": \"a\"}'), "
                     "json_populate_record(NULL::logs, '{\"id\": 2, \"message\": \"b\"}')])) u")
    assert order[0]["ids"] == [3, 1, 2]
    assert db.query("SELECT count(*) AS n FROM sluice_unpack(sluice_pack('{}'::logs[]))")[0]["n"] == 0


def test_a_pack_without_the_needles_gives_no_row_and_one_with_them_all(db):
    """sluice_unpack_having: the search's own necessary condition (strpos of the ASCII-
    lowercased message), once a pack. Needles come lowercased; a needle may match across
    two messages (a superset: the pack is read and each row's check decides)."""
    msgs = ["Error connecting to REDIS on 10.0.0.169", "ÉTÉ ok", "tail"]
    rows = "ARRAY[" + ", ".join(
        f"json_populate_record(NULL::logs, json_build_object('id', {i + 1}, 'message', %s))"
        for i in range(len(msgs))) + "]"

    def n(needles):
        return db.query(f"SELECT count(*) AS n FROM sluice_unpack_having(sluice_pack({rows}), "
                        f"%s::text[])", (*msgs, needles))[0]["n"]

    # the messages back to back, lowered: "error connecting to redis on 10.0.0.169ÉtÉ oktail"
    assert n(["connecting to redis on 10.0.0.169"]) == 3
    assert n(["connecting to redis", "ok", "tail"]) == 3
    assert n(["connecting to redis on 10.0.0.168"]) == 0
    assert n(["redis", "absent"]) == 0
    assert n(["REDIS"]) == 0
    assert n(["été"]) == 0, "lower() under a C collation folds ASCII only, as the search does"
    assert n(["ét"]) == 0 and n(["Ét"]) == 3
    assert n(["169Ét"]) == 3, "across two messages: a superset"
    assert n([]) == 3 and n(None) == 3
    assert db.query("SELECT count(*) AS n FROM sluice_unpack_having(NULL, '{x}')")[0]["n"] == 0


def test_a_damaged_pack_is_an_error_never_fewer_rows(db):
    good = db.query(f"SELECT sluice_pack(a) AS p FROM ({EDGE_ROWS}) x")[0]["p"].tobytes()
    bad = {
        "magic": b"XLP\x01" + good[4:],
        "version": good[:3] + b"\x02" + good[4:],
        "truncated": good[:len(good) // 2],
        "header only": good[:12],
        "flipped body byte": good[:-20] + bytes([good[-20] ^ 0x55]) + good[-19:],
        "empty": b"",
        "row count": good[:4] + b"\xff\xff\xff\xff\x0f" + good[5:],
    }
    conn = psycopg2.connect(db.url)
    conn.autocommit = True
    try:
        for what, b in bad.items():
            with conn.cursor() as cur:
                with pytest.raises(psycopg2.Error) as e:
                    cur.execute("SELECT count(*) FROM sluice_unpack(%s)", (psycopg2.Binary(b),))
                    pytest.fail(f"{what}: {cur.fetchone()[0]} rows from a damaged pack")
                assert "sluice_unpack" in str(e.value), (what, str(e.value))
        # the backend is still there and still unpacks
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM sluice_unpack(%s)", (psycopg2.Binary(good),))
            assert cur.fetchone()[0] == 3
    finally:
        conn.close()


def test_random_damage_never_crashes_the_backend(db):
    """400 packs damaged at random (a byte changed, a cut, a byte inserted, in the header
    or the body): each is an error naming sluice_unpack or, when the damage happens to
    leave a valid pack, some rows; the same connection answers after every one, so no
    backend died (a crash would restart them all)."""
    rng = random.Random(17)
    good = db.query(f"SELECT sluice_pack(a) AS p FROM ({EDGE_ROWS}) x")[0]["p"].tobytes()
    small = db.query("SELECT sluice_pack(ARRAY[json_populate_record(NULL::logs, "
                     "'{\"id\": 5, \"message\": \"x\", \"hostname\": \"h\"}')]) AS p")[0]["p"].tobytes()
    conn = psycopg2.connect(db.url)
    conn.autocommit = True
    errors = 0
    try:
        for i in range(400):
            b = bytearray(good if i % 2 else small)
            at = rng.randrange(len(b)) if rng.random() < 0.5 else rng.randrange(min(len(b), 40))
            op = i % 3
            if op == 0:
                b[at] ^= rng.randrange(1, 256)
            elif op == 1:
                del b[at:]
            else:
                b.insert(at, rng.randrange(256))
            with conn.cursor() as cur:
                try:
                    cur.execute("SELECT count(*) FROM sluice_unpack(%s)", (psycopg2.Binary(bytes(b)),))
                    cur.fetchone()
                except psycopg2.Error as e:
                    errors += 1
                    assert "sluice_unpack" in str(e), str(e)
                cur.execute("SELECT pg_backend_pid(), 1")
                assert cur.fetchone()[1] == 1
        assert errors > 300, errors
    finally:
        conn.close()


def forms(db, src):
    return db.query("SELECT count(*) FILTER (WHERE rows IS NOT NULL) AS arrays, count(*) FILTER "
                    "(WHERE data IS NOT NULL) AS compressed FROM log_packs WHERE source_id = %s",
                    (src.id,))[0]


def stored(db, src):
    """Every stored row of src, live or packed, as PostgreSQL prints it."""
    return [r["t"] for r in db.query(
        "SELECT t FROM (SELECT l.id, l::text AS t FROM logs l WHERE source_id = %s UNION ALL "
        "SELECT u.id, u::text FROM log_packs p, sl_pack_rows(p.rows, p.data) u WHERE "
        "p.source_id = %s) x ORDER BY id", (src.id, src.id))]


def test_array_packs_answer_alike_once_compressed(pg, tls, workdir):
    """A database packed before the module was bound: its array packs and the compressed
    packs written after it answer alike, and `sluice compact` compresses the arrays."""
    name = "e2e_packs_arrays"
    empty_database(pg, name)
    d = Database(pg, name)
    env = dict(os.environ, DATABASE_URL=d.url)
    r = subprocess.run([SLUICE, "migrate"], env=dict(env, SLUICE_PACK_MODULE="off"),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "packs: arrays of rows" in r.stdout, r.stdout + r.stderr
    src = add_source(d, "packs-arrays")
    tok = add_read_token(d, "packs-arrays-reader", "--all")
    today = datetime.datetime.now(UTC).date()
    days = [today - datetime.timedelta(days=k) for k in (3, 2)]
    for day in days:
        day_partition(d, day)
        worded_rows(d, src, day, 3000, words="needle kv=17")
    before_rows = stored(d, src)
    win = day_window(datetime.datetime.combine(days[0], datetime.time(), UTC),
                     datetime.datetime.combine(today, datetime.time(), UTC))
    queries = ["needle", "zq5", '"aged line 42"', "kv:17", "kv:>16 zq9", "-zq3 needle", ""]
    s = Server(d, tls, workdir, {})
    try:
        s.start()
        before = search_answers(s, tok, win, queries)
        # the first day packed as arrays (the module not bound)
        sluice_cli(d, "compact", "--day", days[0].isoformat(), "--fence-seconds", "0")
        assert forms(d, src)["compressed"] == 0 and forms(d, src)["arrays"] > 0
        # bound: the second day is packed compressed; both forms answer as live rows did
        r = sluice_cli(d, "migrate")
        assert "packs: compressed" in r.stdout, r.stdout
        sluice_cli(d, "compact", "--day", days[1].isoformat(), "--fence-seconds", "0")
        f = forms(d, src)
        assert f["arrays"] > 0 and f["compressed"] > 0, f
        assert stored(d, src) == before_rows
        assert search_answers(s, tok, win, queries) == before
        # the arrays are compressed by the maintenance step (here: `sluice compact`)
        r = sluice_cli(d, "compact", "--fence-seconds", "0")
        n = int(re.search(r"compressed: (\d+) packs", r.stdout).group(1))
        f2 = forms(d, src)
        assert f2["arrays"] == 0 and n == f["arrays"] and f2["compressed"] == n + f["compressed"]
        assert stored(d, src) == before_rows
        assert search_answers(s, tok, win, queries) == before
        # and they take less room than the arrays did
        size = d.query("SELECT sum(pg_column_size(data)) AS z FROM log_packs WHERE source_id = %s",
                       (src.id,))[0]["z"]
        assert size < sum(len(t) for t in before_rows) / 3
    finally:
        s.stop()
        d.close()


def test_a_role_that_may_not_create_c_functions_keeps_arrays(pg):
    """A managed PostgreSQL's application role is no superuser: `sluice migrate` says why
    packs stay arrays, and compaction and reading work as before."""
    name = "e2e_packs_role"
    conn = pg.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
            cur.execute("DROP ROLE IF EXISTS sluice_app")
            cur.execute("CREATE ROLE sluice_app LOGIN")
            cur.execute(f'CREATE DATABASE "{name}" OWNER sluice_app TEMPLATE template0')
    finally:
        conn.close()
    d = Database(pg, name)
    d.url = re.sub(r"user=[^&]*", "user=sluice_app", d.url)
    assert "user=sluice_app" in d.url
    try:
        r = sluice_cli(d, "migrate")
        assert "packs: arrays of rows" in r.stdout and "permission denied" in r.stdout, r.stdout
        src = add_source(d, "packs-role")
        day = datetime.datetime.now(UTC).date() - datetime.timedelta(days=2)
        day_partition(d, day)
        worded_rows(d, src, day, 500, words="needle")
        before = stored(d, src)
        sluice_cli(d, "compact", "--day", day.isoformat(), "--fence-seconds", "0")
        f = forms(d, src)
        assert f["compressed"] == 0 and f["arrays"] > 0, f
        assert stored(d, src) == before
        # and `sluice compact` leaves them arrays (nothing to compress them with)
        r = sluice_cli(d, "compact", "--fence-seconds", "0")
        assert "compressed:" not in r.stdout and forms(d, src) == f
    finally:
        d.close()
        conn = pg.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
                cur.execute("DROP ROLE IF EXISTS sluice_app")
        finally:
            conn.close()
