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


def pack_of(db, msgs):
    """sluice_pack of rows with these messages (ids 1..n), as bytes."""
    rows = "ARRAY[" + ", ".join(
        f"json_populate_record(NULL::logs, json_build_object('id', {i + 1}, 'message', %s))"
        for i in range(len(msgs))) + "]::logs[]"
    return db.query(f"SELECT sluice_pack({rows}) AS p", tuple(msgs))[0]["p"].tobytes()


def split_pack(p):
    """(the pack as the module before the pair filter wrote it, the filter's bytes)."""
    assert p[-16:-8] == b"SLPAIRS1", p[-16:]
    f = int.from_bytes(p[-8:-4], "little")
    return p[:len(p) - 16 - f], p[len(p) - 16 - f:len(p) - 16]


def having(db, p, needles):
    return db.query("SELECT count(*) AS n FROM sluice_unpack_having(%s, %s::text[])",
                    (psycopg2.Binary(p), needles))[0]["n"]


def test_the_pair_filter_turns_away_a_pack_without_the_phrase(db):
    """A phrase matches only at token boundaries (the search's regex), so its adjacent
    tokens are adjacent tokens of a message: the pack's pair filter answers for a phrase
    whose words are all there but never side by side, where the plain text check cannot."""
    msgs = ["Error connecting to Redis on 10.0.0.1690:6379", "xfoo bar", "no route to host"]
    p = pack_of(db, msgs)
    old, f = split_pack(p)
    assert len(f) == 9, "5 bits for each of the 13 distinct pairs"
    # the text is there (a substring), the pairs are not: (0, 169), (foo, bar)
    for needles in (["redis on 10.0.0.169"], ["foo bar"], ["route to", "foo bar"]):
        assert having(db, old, needles) == 3, needles
        assert having(db, p, needles) == 0, needles
    for needles in (["redis on 10.0.0.1690"], ["xfoo bar"], ["route to", "to redis on"],
                    ["foo"], ["bar", "0.1690:6379"], []):
        assert having(db, p, needles) == 3, needles
    # the module before the filter wrote exactly the bytes before it; they still read
    same = db.query("SELECT (SELECT array_agg(u::text) FROM sluice_unpack(%s) u) = "
                    "(SELECT array_agg(u::text) FROM sluice_unpack(%s) u) AS same",
                    (psycopg2.Binary(p), psycopg2.Binary(old)))[0]["same"]
    assert same


def test_the_pair_filter_never_turns_away_a_pack_that_holds_the_phrase(db):
    """Every phrase cut from a message at token boundaries (any separators, case, UTF-8,
    numbers, tokens that mix digits and letters, a token past the 64-byte cap) finds its
    pack."""
    rng = random.Random(23)
    words = ["Redis", "on", "10", "0", "169", "GET", "/api/v1", "x" * 70, "été", "ok_1",
             "status", "503", "a", "B", "connect", "to", "ms", "\u2603", "395ms", "7f3a"]
    seps = [" ", "  ", ".", ":", "=", "/", "-", ", ", "\t", "\"", "[", "] "]
    msgs = []
    for _ in range(60):
        parts = []
        for _ in range(rng.randrange(2, 12)):
            parts.append(rng.choice(words))
            parts.append(rng.choice(seps))
        msgs.append("".join(parts[:-1]))
    p = pack_of(db, msgs)
    tok = re.compile(r"[0-9A-Za-z_\u0080-\U0010ffff]+")
    checked = 0
    for _ in range(300):
        m = rng.choice(msgs)
        spans = [t.span() for t in tok.finditer(m)]
        if len(spans) < 2:
            continue
        i = rng.randrange(len(spans) - 1)
        j = rng.randrange(i + 1, min(len(spans), i + 5))
        phrase = m[spans[i][0]:spans[j][1]]
        needle = "".join(c.lower() if c.isascii() else c for c in phrase)
        assert having(db, p, [needle]) == len(msgs), (phrase, m)
        checked += 1
    assert checked > 250


def test_a_pack_with_too_many_pairs_has_no_filter_and_still_answers(db):
    """Past 2^21 distinct pairs (PAIR_MAX) a pack is written without a filter, as before
    the filters were, and every needle reads it whole."""
    got = db.query("""
        WITH m AS (SELECT string_agg(g::text, ' ') AS msg FROM generate_series(1, 2100000) g),
        p AS (SELECT sluice_pack(ARRAY[json_populate_record(NULL::logs,
                  json_build_object('id', 1, 'message', msg))]) AS d FROM m)
        SELECT encode(substr(d, octet_length(d) - 15, 8), 'escape') AS tail,
               (SELECT count(*) FROM sluice_unpack_having(d, '{"2099999 2100000"}')) AS hit,
               (SELECT count(*) FROM sluice_unpack_having(d, '{"2100000 1"}')) AS miss
        FROM p""")[0]
    assert got["tail"] != "SLPAIRS1"
    assert got["hit"] == 1 and got["miss"] == 0


def test_the_pair_filter_is_read_without_the_body(db):
    """The filter is checked from the end of the value alone: with the body damaged, a
    phrase whose pair is missing still gives no row, while one that needs the body is an
    error, as is any damage to the filter itself."""
    p = pack_of(db, ["connecting to redis on 10.0.0.5"] * 50 + ["tail line"])
    old, f = split_pack(p)
    body = bytearray(p)
    body[len(old) - 10] ^= 0x5a  # inside the zlib stream
    body = bytes(body)
    assert having(db, body, ["on 10.0.0.169"]) == 0
    conn = psycopg2.connect(db.url)
    conn.autocommit = True
    try:
        bad_filter = bytearray(p)
        bad_filter[len(old) + 1] ^= 0x01
        bad_magic = bytearray(p)
        bad_magic[-12] ^= 0x01
        cases = [(body, ["on 10.0.0.5"]), (bytes(bad_filter), None), (bytes(bad_filter), ["on 10"]),
                 (bytes(bad_magic), None), (p + b"x", None), (p[:-1], None)]
        for b, needles in cases:
            with conn.cursor() as cur:
                with pytest.raises(psycopg2.Error) as e:
                    cur.execute("SELECT count(*) FROM sluice_unpack_having(%s, %s::text[])",
                                (psycopg2.Binary(b), needles))
                    pytest.fail(f"{cur.fetchone()[0]} rows from a damaged pack")
                assert "corrupt pack" in str(e.value), str(e.value)
    finally:
        conn.close()


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
