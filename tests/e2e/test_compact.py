"""Compaction of closed days (drain/compact.c, docs/search.md "Compacted days").

One server, the search suite's lines (the two stream-corpus apps, the crafted lines that
exercise every operator of the query language, filler) plus JSON lines, all ingested
through the drain. Every answer of the search API, the Papertrail API, context and the
aggregate is read, the day is packed (`sluice compact --day`), and every answer is read
again: they must be identical, byte for byte. Then retention and archives over packed
rows, exact to the row."""

import datetime
import gzip
import json
import os
import re
import subprocess

import pytest

from conftest import (CORPUS, SLUICE, Database, Server, add_read_token, add_source, api_get,
                      day_partition, empty_database, frame_body, sluice_cli, wait_for)
from test_search import APPS, BODIES, CRAFTED, CRAFTED_TAGS, FILLER, QUERIES, line

UTC = datetime.timezone.utc
JSON_LINES = [
    line('{"level":"error","msg":"payment failed","latency_ms":1200,"user":{"id":42}}'),
    line('{"level":"info","msg":"ok","latency_ms":12,"user":{"id":7},"ok":true}'),
    line('worker: {"level":"warn","msg":"retry \\u00e9t\\u00e9","latency_ms":300.5}'),
    line('{"level":"error","env":"staging","msg":"boom","latency_ms":99}'),
]
JSON_QUERIES = ["level:error", "latency_ms:>1000", "user.id:42", "-env:staging", "ok:true",
                "été", "latency_ms:<=300.5 level:warn"]


@pytest.fixture(scope="module")
def world(db, tls, workdir):
    class W:
        pass
    w = W()
    w.db = db
    w.server = Server(db, tls, workdir, {})
    w.server.start()
    try:
        w.src = {app: w.server.add_source(f"cmp-{app}") for app in APPS}
        w.crafted = w.server.add_source("cmp-crafted")
        w.filler = w.server.add_source("cmp-filler")
        w.ids = [s.id for s in (*w.src.values(), w.crafted, w.filler)]
        w.tok = add_read_token(db, "compact-all", "--all")
        for app in APPS:
            for i in range(BODIES):
                r = w.server.post(w.src[app], f"{CORPUS}/streams/{app}/{i:03d}.logplex")
                assert r.status == 204, r
        assert w.server.post(w.crafted, frame_body(CRAFTED + JSON_LINES),
                             query=CRAFTED_TAGS).status == 204
        assert w.server.post(w.filler, frame_body(FILLER), query="rep=1").status == 204
        w.n = 410 + 412 + len(CRAFTED) + len(JSON_LINES) + len(FILLER)
        wait_for(lambda: live(w) >= w.n, 30, what=f"{w.n} rows")
        now = datetime.datetime.now(UTC).replace(microsecond=0)
        w.win = {"since": (now - datetime.timedelta(hours=1)).isoformat().replace("+00:00", "Z"),
                 "until": (now + datetime.timedelta(hours=1)).isoformat().replace("+00:00", "Z")}
        w.ptwin = {"min_time": int(now.timestamp()) - 3600, "max_time": int(now.timestamp()) + 3600}
        yield w
    finally:
        w.server.stop()


def live(w):
    return w.db.query("SELECT count(*) AS n FROM logs WHERE source_id = ANY(%s)", (w.ids,))[0]["n"]


def packed(w):
    return w.db.query("SELECT count(*) AS n FROM log_packs p, sl_pack_rows(p.rows, p.data) u "
                      "WHERE p.source_id = ANY(%s)", (w.ids,))[0]["n"]


def answers(w):
    """Every answer, keyed by request: status and body bytes."""
    got = {}
    ids = [r["id"] for r in w.db.query(
        "SELECT id FROM (SELECT id FROM logs WHERE source_id = ANY(%s) UNION ALL SELECT u.id "
        "FROM log_packs p, sl_pack_rows(p.rows, p.data) u WHERE p.source_id = ANY(%s)) x ORDER BY id",
        (w.ids, w.ids))]
    assert len(ids) >= w.n
    reqs = [("/api/v1/search", {"q": q, "limit": 10000, **w.win}) for q in QUERIES + JSON_QUERIES]
    reqs += [("/api/v1/search", {"q": q, "limit": 7, "order": "asc", **w.win})
             for q in ("", "error", "status:>=500")]
    reqs += [("/api/v1/events/search.json", {"q": q, "limit": 50, **w.ptwin})
             for q in ("", "error", "KeyError", "level:error")]
    reqs += [("/api/v1/events/search.json", {"min_id": ids[len(ids) // 3], "limit": 20, **w.ptwin}),
             ("/api/v1/events/search.json", {"max_id": ids[2 * len(ids) // 3], "limit": 20,
                                             **w.ptwin})]
    reqs += [("/api/v1/context", {"id": i, "n": 5}) for i in ids[:: max(1, len(ids) // 12)]]
    reqs += [("/api/v1/aggregate", {"q": q, "buckets": 30, **w.win})
             for q in ("", "error", "status:>=500")]
    for path, params in reqs:
        r = api_get(w.server, path, params, token=w.tok)
        got[(path, json.dumps(params, sort_keys=True))] = (r.status, r.body)
    return got


def test_search_answers_identical_after_compaction(world):
    w = world
    before = answers(w)
    ok = sum(1 for st, _ in before.values() if st == 200)
    assert ok >= len(before) - 5, "most requests of the battery must succeed"
    today = datetime.datetime.now(UTC).date().isoformat()
    r = sluice_cli(w.db, "compact", "--day", today, "--fence-seconds", "0")
    assert re.search(r"compacted: \d+ rows", r.stdout), r.stdout
    assert live(w) == 0, "every row of the day left logs"
    assert packed(w) == w.n
    nb = w.db.query("SELECT count(*) FILTER (WHERE packed) AS p, count(*) FILTER (WHERE NOT packed) "
                    "AS l FROM log_blocks WHERE source_id = ANY(%s)", (w.ids,))[0]
    assert nb["p"] > 0 and nb["l"] == 0, nb
    assert w.db.query("SELECT count(*) AS n FROM log_day_filters WHERE source_id = ANY(%s)",
                      (w.ids,))[0]["n"] == 256 * len(w.ids)
    # through the day level as the server decides (auto), through it whenever a packed
    # day is in the window (always), and through every block's own filter (off)
    for mode in ("auto", "always", "off"):
        w.server.stop()
        w.server.start(SLUICE_SEARCH_DAY_LEVEL=mode, SLUICE_LOG_LEVEL="debug")
        after = answers(w)
        diff = [k for k in before if before[k] != after[k]]
        if diff:
            x, y = before[diff[0]][1], after[diff[0]][1]
            at = next((i for i in range(min(len(x), len(y))) if x[i] != y[i]),
                      min(len(x), len(y)))
            pytest.fail(f"day level {mode}: {len(diff)} answers changed, e.g. {diff[:3]}; the "
                        f"first at byte {at}: {x[max(0, at - 200):at + 100]!r} -> "
                        f"{y[max(0, at - 200):at + 100]!r}")
        used = w.server.log_tail(100000).count('msg="search day level" packed_days=')
        via = w.server.log_tail(100000).count("used=1")
        if mode == "off":
            assert used == 0, used
        else:
            assert via > 0 and (via == used or mode == "auto"), (mode, used, via)
    w.server.stop()
    w.server.start(SLUICE_SEARCH_DAY_LEVEL="auto", SLUICE_LOG_LEVEL="info")  # env persists


def test_new_lines_after_compaction_join_packed_ones(world):
    w = world
    doc = api_get(w.server, "/api/v1/search", {"q": "KeyError", "limit": 1000}, token=w.tok).json()
    old = [e["id"] for e in doc["events"]]
    assert old
    # a writer's blocks stay open up to five minutes; a restart closes them (compaction
    # waits SL_COMPACT_FENCE_S after a block's last upsert, this test told it not to)
    w.server.restart()
    assert w.server.post(w.crafted, frame_body([line("KeyError: 'fresh' after packing")]),
                         query=CRAFTED_TAGS).status == 204
    wait_for(lambda: live(w) >= 1, 20, what="the new line stored")
    doc = api_get(w.server, "/api/v1/search", {"q": "KeyError", "limit": 1000}, token=w.tok).json()
    ids = [e["id"] for e in doc["events"]]
    assert ids[1:] == old and "fresh" in doc["events"][0]["message"]
    # packing again takes the new row too, and nothing is lost or doubled
    today = datetime.datetime.now(UTC).date().isoformat()
    r = sluice_cli(w.db, "compact", "--day", today)
    assert "1 waiting for a writer" in r.stdout, r.stdout
    assert live(w) == 1, "the block a writer touched a moment ago is left alone"
    w.server.restart()
    sluice_cli(w.db, "compact", "--day", today, "--fence-seconds", "0")
    assert live(w) == 0 and packed(w) == w.n + 1
    doc = api_get(w.server, "/api/v1/search", {"q": "KeyError", "limit": 1000}, token=w.tok).json()
    assert [e["id"] for e in doc["events"]] == ids


def old_day(db, name, n, archive=None):
    """A source with n rows spread over yesterday (UTC) up to a minute ago, stored as the
    writer stores them (filters that say yes to every token), in yesterday's partition."""
    src = add_source(db, name, "--retention-days", "7")
    if archive:
        sluice_cli(db, "source", "set", name, "--archive", archive)
    now = datetime.datetime.now(UTC)
    day = (now - datetime.timedelta(days=1)).date()
    d0 = datetime.datetime.combine(day, datetime.time(), UTC)
    end = min(d0 + datetime.timedelta(days=1), now - datetime.timedelta(minutes=1))
    step = (end - d0) / n
    day_partition(db, day)
    first = db.query("SELECT nextval('logs_id_block_seq') AS b")[0]["b"] << 20
    db.query("INSERT INTO logs (id, received_at, source_id, hostname, app_name, procid, message) "
             "SELECT %s + i, %s::timestamptz + i * %s::interval, %s, 'host', 'app', 'web.1', "
             "'old line ' || i FROM generate_series(0, %s) i", (first, d0, step, src.id, n - 1))
    db.query("INSERT INTO log_blocks SELECT %s, %s::timestamptz + lo * %s::interval, "
             "%s::timestamptz + hi * %s::interval, %s + lo, %s + hi, hi - lo + 1, 8, '\\xff'::bytea "
             "FROM (SELECT b * 100 AS lo, least(b * 100 + 100, %s) - 1 AS hi "
             "FROM generate_series(0, %s) b) x",
             (src.id, d0, step, d0, step, first, first, n, (n - 1) // 100))
    rows = db.query("SELECT id, received_at FROM logs WHERE source_id = %s ORDER BY id", (src.id,))
    sluice_cli(db, "compact", "--day", day.isoformat(), "--fence-seconds", "0")
    assert db.query("SELECT count(*) AS n FROM logs WHERE source_id = %s", (src.id,))[0]["n"] == 0
    return src, rows


def packed_ids(db, src):
    return {r["id"] for r in db.query("SELECT u.id FROM log_packs p, sl_pack_rows(p.rows, p.data) u "
                                      "WHERE p.source_id = %s", (src.id,))}


def test_retention_of_packed_rows_is_exact_to_the_row(db, sluice):
    src, rows = old_day(db, "cmp-retained", 3000)
    assert packed_ids(db, src) == {r["id"] for r in rows}
    sluice_cli(db, "source", "set", src.name, "--retention-days", "1")
    s = sluice()  # the maintenance thread runs retention as it starts
    wait_for(lambda: len(packed_ids(db, src)) < len(rows), 30, what="retention over packs")
    wait_for(lambda: db.query("SELECT count(*) AS n FROM log_blocks WHERE source_id = %s AND "
                              "min_received < now() - interval '1 day'", (src.id,))[0]["n"] == 0,
             30, what="the packs past retention gone")
    t_after = datetime.datetime.now(UTC)
    left = packed_ids(db, src)
    past = {r["id"] for r in rows if r["received_at"] < t_after - datetime.timedelta(days=1)
            - datetime.timedelta(seconds=5)}
    assert not (left & past), "a row past the retention is still stored"
    keep = {r["id"] for r in rows if r["received_at"] >= t_after - datetime.timedelta(days=1)
            + datetime.timedelta(seconds=5)}
    assert keep <= left, f"{len(keep - left)} rows inside the retention were deleted"
    # the blocks' bounds follow: every packed block's rows are within them
    bad = db.query("SELECT count(*) AS n FROM log_blocks b JOIN log_packs p USING (source_id, "
                   "min_id), sl_pack_rows(p.rows, p.data) u WHERE b.source_id = %s AND (u.received_at < "
                   "b.min_received OR u.received_at > b.max_received OR u.id < b.min_id OR "
                   "u.id > b.max_id OR b.nrows <> (SELECT count(*) FROM sl_pack_rows(p.rows, p.data)))", (src.id,))[0]["n"]
    assert bad == 0
    s.stop()


def test_archive_reads_packed_rows(db, sluice, tmp_path):
    dest = str(tmp_path / "archive")
    os.makedirs(dest)
    src, rows = old_day(db, "cmp-archived", 1200, archive=dest)
    sluice_cli(db, "source", "set", src.name, "--retention-days", "1")
    s = sluice()
    cutoff = datetime.datetime.now(UTC) - datetime.timedelta(days=1)
    whole_hours = {r["id"]: r for r in rows
                   if r["received_at"].replace(minute=0, second=0, microsecond=0)
                   + datetime.timedelta(hours=1) <= cutoff}
    assert whole_hours

    def archived_ids():
        got = set()
        for root, _, files in os.walk(dest):
            for f in files:
                if f.endswith(".tsv.gz"):
                    with gzip.open(os.path.join(root, f), "rt", encoding="utf-8") as fh:
                        for ln in fh:
                            got.add(int(ln.split("\t", 1)[0]))
        return got
    wait_for(lambda: set(whole_hours) <= archived_ids(), 40, what="the packed hours archived")
    wait_for(lambda: not (packed_ids(db, src) & set(whole_hours)), 40,
             what="archived packed rows deleted")
    # nothing archived twice, nothing outside the archived hours deleted
    assert archived_ids() <= {r["id"] for r in rows}
    later = {r["id"] for r in rows if r["received_at"] >= cutoff + datetime.timedelta(seconds=5)}
    assert later <= packed_ids(db, src)
    s.stop()


def old_rows(db, name, n):
    """n rows of a new source spread over yesterday (UTC), in yesterday's partition, with
    blocks a writer last touched an hour ago; not packed. Returns (source, rows, day)."""
    src = add_source(db, name)
    day = (datetime.datetime.now(UTC) - datetime.timedelta(days=1)).date()
    day_partition(db, day)
    worded_rows(db, src, day, n)
    rows = db.query("SELECT id, received_at FROM logs WHERE source_id = %s ORDER BY id", (src.id,))
    return src, rows, day


def test_two_compactors_at_once_pack_each_row_once(db):
    src, rows, day = old_rows(db, "cmp-race", 4000)
    env = dict(os.environ, DATABASE_URL=db.url)
    procs = [subprocess.Popen([SLUICE, "compact", "--day", day.isoformat()], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    got = db.query("SELECT u.id FROM log_packs p, sl_pack_rows(p.rows, p.data) u WHERE p.source_id = %s",
                   (src.id,))
    assert sorted(r["id"] for r in got) == [r["id"] for r in rows], "each row packed exactly once"
    assert db.query("SELECT count(*) AS n FROM logs WHERE source_id = %s", (src.id,))[0]["n"] == 0


def test_two_hour_level_builders_at_once_mark_each_block_once(db):
    """Two `sluice compact` at once over 8 sources' closed hours: both finish without a
    failure, every block is marked hourly by one of them, and each (source, hour) has
    exactly one set (the other found its blocks locked, then marked, and wrote none)."""
    day = (datetime.datetime.now(UTC) - datetime.timedelta(days=1)).date()
    day_partition(db, day)
    srcs = [add_source(db, f"hl-race-{k}") for k in range(8)]
    for k, src in enumerate(srcs):
        worded_rows(db, src, day, 2400, f"race{k}")  # 48 blocks, about two an hour
    ids = [x.id for x in srcs]
    env = dict(os.environ, DATABASE_URL=db.url)
    procs = [subprocess.Popen([SLUICE, "compact", "--fence-seconds", "0"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    assert all(re.search(r"hour level: \d+ filter sets .*; 0 failed", o) for o, _ in outs), outs
    assert db.query("SELECT count(*) AS n FROM log_blocks WHERE source_id = ANY(%s) AND NOT "
                    "hourly", (ids,))[0]["n"] == 0
    sets = db.query("SELECT source_id, hour, count(DISTINCT gen) AS gens, count(*) AS n FROM "
                    "log_hour_filters WHERE source_id = ANY(%s) GROUP BY 1, 2", (ids,))
    want = db.query("SELECT count(DISTINCT (source_id, date_trunc('hour', max_received))) AS n "
                    "FROM log_blocks WHERE source_id = ANY(%s)", (ids,))[0]["n"]
    assert len(sets) == want and all(x["gens"] == 1 and x["n"] == 64 for x in sets), sets[:3]


def test_the_server_packs_closed_days_by_itself(db, sluice):
    src, rows, day = old_rows(db, "cmp-auto", 3000)
    fresh = old_rows(db, "cmp-fresh", 500)[0]
    # a block a writer touched a moment ago waits (the writer may still have it open)
    db.query("UPDATE log_blocks SET touched_at = now() WHERE source_id = %s", (fresh.id,))
    tok = add_read_token(db, "compact-auto", "--source", src.name)
    s = sluice(SLUICE_COMPACT_AFTER_HOURS="1")
    d0 = datetime.datetime.combine(day, datetime.time(), UTC)
    win = dict(day_window(d0, d0 + datetime.timedelta(days=1)), q="zq42")
    before = api_get(s, "/api/v1/search", win, token=tok)
    assert before.status == 200 and len(before.json()["events"]) == len(
        [r for r in rows if (r["id"] - rows[0]["id"]) % 97 == 42])
    wait_for(lambda: db.query("SELECT count(*) AS n FROM logs WHERE source_id = %s",
                              (src.id,))[0]["n"] == 0, 30, what="the maintenance thread to pack")
    assert s.metric("sluice_compacted_rows_total") >= len(rows)
    assert db.query("SELECT count(*) AS n FROM logs WHERE source_id = %s", (fresh.id,))[0]["n"] == 500
    after = api_get(s, "/api/v1/search", win, token=tok)
    assert after.body == before.body
    s.stop()


def packed_day(db, src, days_ago, n):
    """n rows of src over the UTC day `days_ago` back, packed (`sluice compact --day`);
    returns {id: received_at}."""
    day = (datetime.datetime.now(UTC) - datetime.timedelta(days=days_ago)).date()
    d0 = datetime.datetime.combine(day, datetime.time(), UTC)
    day_partition(db, day)
    first = db.query("SELECT nextval('logs_id_block_seq') AS b")[0]["b"] << 20
    db.query("INSERT INTO logs (id, received_at, source_id, message) SELECT %s + i, "
             "%s::timestamptz + i * %s::interval, %s, 'bulky ' || md5(i::text) || md5((-i)::text) "
             "|| md5((i * 7)::text) || md5((i * 13)::text) FROM generate_series(0, %s) i",
             (first, d0, datetime.timedelta(days=1) / n, src.id, n - 1))
    sluice_cli(db, "compact", "--day", day.isoformat(), "--fence-seconds", "0")
    return {r["id"]: r["received_at"] for r in db.query(
        "SELECT u.id, u.received_at FROM log_packs p, sl_pack_rows(p.rows, p.data) u WHERE p.source_id = %s "
        "AND p.day = %s", (src.id, day))}


def test_disk_guard_evicts_packed_rows_oldest_first(db, sluice):
    a = add_source(db, None, "--disk-evict", "yes")
    b = add_source(db, None)  # never evicted
    rows_a, rows_b = {}, {}
    for d in (6, 5, 4, 3):
        rows_a.update(packed_day(db, a, d, 6000))
        rows_b.update(packed_day(db, b, d, 500))
    size = db.query("SELECT pg_database_size(current_database()) AS n")[0]["n"]
    # 87 % of the budget: down to 80 % is about a day and a half of a's packs
    s = sluice(SLUICE_DISK_BUDGET=str(int(size / 0.87)), SLUICE_DISK_CHECK_INTERVAL="1",
               SLUICE_RETENTION_BATCH_ROWS="1000", SLUICE_RETENTION_PAUSE_MS="20")
    # a small database is mostly PostgreSQL's own overhead: eviction may run out of rows
    # before the figure is under the mark; either way it ends
    wait_for(lambda: 'msg="disk guard: eviction ended"' in s.log_tail(400), 60,
             what="eviction of packed rows to end")
    left = packed_ids(db, a)
    ordered = sorted(rows_a, key=lambda i: (rows_a[i], i))
    assert 0 < len(left) < len(rows_a), len(left)
    assert left == set(ordered[len(ordered) - len(left):]), "not the newest packed rows kept"
    assert packed_ids(db, b) == set(rows_b), "an opted-out source's packs were touched"
    assert db.query("SELECT pg_database_size(current_database()) AS n")[0]["n"] < size
    # the blocks follow their packs
    assert db.query("SELECT count(*) AS n FROM log_blocks b WHERE b.packed AND b.source_id = %s "
                    "AND NOT EXISTS (SELECT 1 FROM log_packs p WHERE p.source_id = b.source_id "
                    "AND p.min_id = b.min_id)", (a.id,))[0]["n"] == 0
    s.stop()


def test_a_packed_day_past_every_retention_is_dropped_whole(db, sluice):
    src = add_source(db, None)
    longest = db.query("SELECT max(retention_days) AS d FROM sources")[0]["d"]
    day = (datetime.datetime.now(UTC) - datetime.timedelta(days=longest + 2)).date()
    rows = packed_day(db, src, longest + 2, 300)
    assert rows
    tag = day.strftime("%Y%m%d")
    assert db.query(f"SELECT to_regclass('log_packs_{tag}') IS NOT NULL AS t")[0]["t"]
    assert db.query("SELECT count(*) AS n FROM log_day_filters WHERE day = %s",
                    (day,))[0]["n"] == 256
    # retention runs as the server starts, or a few seconds later when the module's other
    # server is running a pass (one node at a time: docs/retention.md), which may take as
    # long as the archived source's due hours at a second each
    s = sluice()
    wait_for(lambda: db.query(f"SELECT to_regclass('log_packs_{tag}') IS NULL AND "
                              f"to_regclass('logs_{tag}') IS NULL AS t")[0]["t"], 60,
             what="the day's logs and log_packs partitions dropped")
    wait_for(lambda: db.query("SELECT count(*) AS n FROM log_day_filters WHERE day = %s",
                              (day,))[0]["n"] == 0, 20, what="the day's day level gone")
    wait_for(lambda: db.query("SELECT count(*) AS n FROM log_blocks WHERE source_id = %s",
                              (src.id,))[0]["n"] == 0, 20, what="its packed blocks gone")
    s.stop()


def test_cli_refuses_a_database_older_than_itself(pg):
    """A database command on a schema this binary does not know the whole of stops with
    a hint instead of failing table by table (a `sluice compact` after an upgrade, before
    `sluice migrate`, failed once per (source, day) with "relation does not exist")."""
    name = "e2e_compact_unmigrated"
    empty_database(pg, name)
    env = dict(os.environ, DATABASE_URL=pg.db_url(name))

    def cli(*args):
        return subprocess.run([SLUICE, *args], env=env, capture_output=True, text=True,
                              timeout=60)

    r = cli("compact")
    assert r.returncode == 1 and "no sluice schema" in r.stderr, r.stderr
    assert "run sluice migrate first" in r.stderr
    assert cli("migrate").returncode == 0
    db = Database(pg, name)
    try:
        last = db.query("DELETE FROM schema_migrations WHERE version = "
                        "(SELECT max(version) FROM schema_migrations) RETURNING version")
        r = cli("source", "list")
        assert r.returncode == 1 and "schema is older than this sluice" in r.stderr, r.stderr
        db.query("INSERT INTO schema_migrations (version) VALUES (%s)", (last[0]["version"],))
        r = cli("compact")
        assert r.returncode == 0 and "compacted: 0 rows" in r.stdout, r.stdout + r.stderr
    finally:
        db.close()


def worded_rows(db, src, day, n, words="", start=None, span=datetime.timedelta(days=1)):
    """n rows of src over day (UTC), or over `span` from `start`: 'aged line I zqI%97' and
    `words`, with blocks of 50 rows whose filters say yes to every token, last touched an
    hour ago (a writer's, long closed). The day's partition must exist."""
    d0 = start or datetime.datetime.combine(day, datetime.time(), UTC)
    step = span / (n + 1)
    first = db.query("SELECT nextval('logs_id_block_seq') AS b")[0]["b"] << 20
    db.query("INSERT INTO logs (id, received_at, source_id, message) SELECT %s + i, "
             "%s::timestamptz + (i + 1) * %s::interval, %s, rtrim('aged line ' || i || ' zq' || "
             "(i %% 97) || ' ' || %s) FROM generate_series(0, %s) i",
             (first, d0, step, src.id, words, n - 1))
    db.query("INSERT INTO log_blocks (source_id, min_received, max_received, min_id, max_id, "
             "nrows, nbits, bloom, touched_at) SELECT %s, %s::timestamptz + (lo + 1) * "
             "%s::interval, %s::timestamptz + (hi + 1) * %s::interval, %s + lo, %s + hi, "
             "hi - lo + 1, 8, '\\xff'::bytea, now() - interval '1 hour' FROM (SELECT b * 50 AS "
             "lo, least(b * 50 + 50, %s) - 1 AS hi FROM generate_series(0, %s) b) x",
             (src.id, d0, step, d0, step, first, first, n, (n - 1) // 50))


def day_window(t0, t1):
    """A search window, at most 1 000 lines."""
    return {"limit": 1000, "since": t0.isoformat().replace("+00:00", "Z"),
            "until": t1.isoformat().replace("+00:00", "Z")}


def search_answers(s, tok, win, queries):
    """Each query's answer body over win, every one 200."""
    out = {}
    for q in queries:
        r = api_get(s, "/api/v1/search", dict(win, q=q), token=tok)
        assert r.status == 200, (q, r.body)
        out[q] = r.body
    return out


def test_the_day_level_reads_only_days_that_may_hold_the_words(db, sluice):
    """Twelve sources packed for yesterday: a word of one source is looked up in the day
    level and only that (source, day)'s blocks are read; every answer is the same before
    and after packing, after late lines of the day are packed too (their blocks have no
    day level and are read as live ones), and after the day level is rebuilt for days
    packed without one (before migration 13)."""
    day = (datetime.datetime.now(UTC) - datetime.timedelta(days=1)).date()
    d0 = datetime.datetime.combine(day, datetime.time(), UTC)
    day_partition(db, day)
    srcs = [add_source(db, f"dl-{k}") for k in range(12)]
    for k, src in enumerate(srcs):
        worded_rows(db, src, day, 600, f"wq{k} common")
    tok = add_read_token(db, "day-level", *[a for x in srcs for a in ("--source", x.name)])
    ids = [x.id for x in srcs]
    win = day_window(d0, d0 + datetime.timedelta(days=1))
    queries = ["wq3", "wq3 zq5", "wq3 OR wq7", "wq11 -zq1", '"line 17 zq17"', "common zq42",
               "wq3 wq4", "nosuchword"]

    def answers(s):
        return search_answers(s, tok, win, queries)

    s = sluice(SLUICE_LOG_LEVEL="debug")
    before = answers(s)
    assert len(json.loads(before["wq3"])["events"]) == 600
    assert len(json.loads(before["wq3 OR wq7"])["events"]) == 1000  # the limit
    assert json.loads(before["wq3 wq4"])["events"] == []
    sluice_cli(db, "compact", "--day", day.isoformat(), "--fence-seconds", "0")
    levels = db.query("SELECT source_id, day, count(*) AS n FROM log_day_filters WHERE "
                      "source_id = ANY(%s) GROUP BY 1, 2", (ids,))
    assert sorted(r["source_id"] for r in levels) == sorted(ids)
    assert all(r["n"] == 256 and r["day"] == day for r in levels)
    assert db.query("SELECT count(*) AS n FROM log_blocks WHERE packed AND NOT coarse AND "
                    "source_id = ANY(%s)", (ids,))[0]["n"] == 0
    used0 = s.log_tail(100000).count('msg="search day level" packed_days=12 passing=1 used=1')
    assert answers(s) == before
    # wq3, "wq3 zq5" and "wq11 -zq1" pass one (source, day) of twelve
    assert s.log_tail(100000).count('msg="search day level" packed_days=12 passing=1 used=1') >= used0 + 3
    assert 'passing=0 used=1' in s.log_tail(100000)  # "wq3 wq4", "nosuchword"

    # late lines of the packed day: packed later, without a day level of their own
    worded_rows(db, srcs[3], day, 40, "wq3 late")
    late = api_get(s, "/api/v1/search", dict(win, q="wq3 late"), token=tok)
    assert len(late.json()["events"]) == 40
    sluice_cli(db, "compact", "--day", day.isoformat(), "--fence-seconds", "0")
    assert db.query("SELECT count(*) AS n FROM log_blocks WHERE source_id = %s AND packed AND "
                    "NOT coarse", (srcs[3].id,))[0]["n"] > 0
    assert db.query("SELECT count(*) AS n FROM log_day_filters WHERE source_id = ANY(%s)",
                    (ids,))[0]["n"] == 12 * 256
    assert api_get(s, "/api/v1/search", dict(win, q="wq3 late"), token=tok).body == late.body
    assert len(api_get(s, "/api/v1/search", dict(win, q="wq3"),
                       token=tok).json()["events"]) == 640

    # a day packed before the day level existed gets one from its packs
    db.query("DELETE FROM log_day_filters WHERE source_id = ANY(%s)", (ids,))
    db.query("UPDATE log_blocks SET coarse = false WHERE source_id = ANY(%s)", (ids,))
    before = answers(s)  # every block read through its own filter
    assert len(json.loads(before["wq3 zq5"])["events"]) == 7 + 1  # one late line
    r = sluice_cli(db, "compact", "--fence-seconds", "0")
    assert "12 day levels added" in r.stdout, r.stdout
    assert db.query("SELECT count(*) AS n FROM log_blocks WHERE packed AND NOT coarse AND "
                    "source_id = ANY(%s)", (ids,))[0]["n"] == 0
    assert db.query("SELECT count(*) AS n FROM log_day_filters WHERE source_id = ANY(%s)",
                    (ids,))[0]["n"] == 12 * 256
    assert answers(s) == before
    s.stop()


def test_the_hour_level_reads_only_hours_that_may_hold_the_words(db, sluice):
    """Live blocks of yesterday's closed hours (not yet packed): `sluice compact` writes one
    filter set per (source, hour) and marks the blocks hourly; a word of one hour of one
    source reads only that (source, hour)'s blocks; every answer is the same through the
    filters alone, the hour level as the server decides, and always. Blocks that come
    late to an hour get a set of their own; a writer's upsert of a block clears its mark;
    packing the day removes the day's hour level."""
    day = (datetime.datetime.now(UTC) - datetime.timedelta(days=1)).date()
    d0 = datetime.datetime.combine(day, datetime.time(), UTC)
    day_partition(db, day)
    srcs = [add_source(db, f"hl-{k}") for k in range(4)]
    for k, src in enumerate(srcs):
        worded_rows(db, src, day, 1200, f"hq{k} common")  # 24 blocks of ~59 minutes
    h13 = d0 + datetime.timedelta(hours=13)
    worded_rows(db, srcs[0], day, 30, "needle common", start=h13 + datetime.timedelta(minutes=1),
                span=datetime.timedelta(minutes=50))
    # an hour whose blocks' newest rows come in the reverse order of their sources' ids
    for k, src in enumerate(srcs):
        worded_rows(db, src, day, 10, f"hq{k} late15",
                    start=d0 + datetime.timedelta(hours=15, minutes=10 * (3 - k)),
                    span=datetime.timedelta(minutes=5))
    # a block across 15:00 (its newest row in hour 15), searched until 15:00
    worded_rows(db, srcs[1], day, 10, "edgeword", start=d0 + datetime.timedelta(hours=14,
                minutes=55), span=datetime.timedelta(minutes=9))
    tok = add_read_token(db, "hour-level", *[a for x in srcs for a in ("--source", x.name)])
    ids = [x.id for x in srcs]
    win = day_window(d0, d0 + datetime.timedelta(days=1))
    edge = day_window(d0, d0 + datetime.timedelta(hours=15))
    queries = ["needle", "needle zq5", "hq1", "hq2 OR needle", "common -hq3", '"line 17 zq17"',
               "hq1 hq2", "nosuchword", "common zq7", "late15 hq2"]

    def answers(s):
        out = search_answers(s, tok, win, queries)
        out["edge"] = search_answers(s, tok, edge, ["edgeword"])["edgeword"]
        return out

    def level_log(s):
        return re.findall(r'msg="search day level" packed_days=0 passing=0 used=(\d) '
                          r'hours=(\d+) passing_hours=(\d+)', s.log_tail(100000))

    s = sluice(SLUICE_SEARCH_DAY_LEVEL="off")
    before = answers(s)
    s.stop()
    assert len(json.loads(before["needle"])["events"]) == 30
    assert len(json.loads(before["edge"])["events"]) == 6  # 14:55:49 .. 14:59:53
    assert len(json.loads(before["hq1"])["events"]) == 1000  # the limit: 1 210 match
    assert json.loads(before["hq1 hq2"])["events"] == []
    r = sluice_cli(db, "compact", "--fence-seconds", "0")
    assert re.search(r"hour level: \d+ filter sets", r.stdout), r.stdout
    # every block of the four sources is marked, and each (source, hour) of a block's
    # newest row has one set of 64 rows
    assert db.query("SELECT count(*) AS n FROM log_blocks WHERE source_id = ANY(%s) AND NOT "
                    "hourly", (ids,))[0]["n"] == 0
    want = db.query("SELECT count(DISTINCT (source_id, date_trunc('hour', max_received))) AS n "
                    "FROM log_blocks WHERE source_id = ANY(%s)", (ids,))[0]["n"]
    sets = db.query("SELECT source_id, hour, gen, count(*) AS n FROM log_hour_filters WHERE "
                    "source_id = ANY(%s) GROUP BY 1, 2, 3", (ids,))
    assert len(sets) == want and all(x["n"] == 64 for x in sets), (want, sets[:3])
    for mode in ("auto", "always"):
        s = sluice(SLUICE_SEARCH_DAY_LEVEL=mode, SLUICE_LOG_LEVEL="debug")
        assert answers(s) == before, mode
        seen = level_log(s)
        s.stop()
        assert len(seen) == len(queries) + 1, seen  # every query has a word
        edge_seen, seen = seen[-1], seen[:-1]
        assert all(int(h) == want for _, h, _ in seen), seen
        # "needle" and "needle zq5": one (source, hour) of them all; "hq1 hq2" and
        # "nosuchword": none; "edgeword" until 15:00: the (source, hour 15) of its block
        assert [int(p) for _, _, p in seen[:2]] == [1, 1], seen
        assert sorted(int(p) for _, _, p in seen).count(0) == 2, seen
        assert edge_seen[2] == "1", edge_seen
        assert all(u == "1" for u, _, _ in seen) or mode == "auto", seen
        assert seen[0][0] == "1", seen

    # late blocks of an hour that has its level: found through their own filters, then a
    # second set of their own
    worded_rows(db, srcs[0], day, 20, "needle late", start=h13 + datetime.timedelta(minutes=55),
                span=datetime.timedelta(minutes=4))
    s = sluice(SLUICE_LOG_LEVEL="debug")
    late = api_get(s, "/api/v1/search", dict(win, q="needle"), token=tok).json()["events"]
    assert len(late) == 50
    r = sluice_cli(db, "compact", "--fence-seconds", "0")
    assert "hour level: " in r.stdout, r.stdout  # or the server's maintenance did it
    gens = db.query("SELECT count(DISTINCT gen) AS n FROM log_hour_filters WHERE source_id = %s "
                    "AND hour = %s", (srcs[0].id, h13))[0]["n"]
    assert gens == 2
    assert api_get(s, "/api/v1/search", dict(win, q="needle"), token=tok).json()["events"] == late
    assert re.search(r"used=1 hours=\d+ passing_hours=1\b", s.log_tail(100000))

    # a block whose mark its writer cleared (a late upsert) goes into a set of its own, even
    # when it was the first block of its old set
    first = db.query("SELECT min(min_id) AS m FROM log_blocks WHERE source_id = %s AND "
                     "max_received >= %s AND max_received < %s", (srcs[0].id, h13,
                                                                 h13 + datetime.timedelta(hours=1)))[0]["m"]
    db.query("UPDATE log_blocks SET hourly = false WHERE source_id = %s AND min_id = %s",
             (srcs[0].id, first))
    r = sluice_cli(db, "compact", "--fence-seconds", "0")
    assert re.search(r"hour level: \d+ filter sets .*; 0 failed", r.stdout), r.stdout
    assert db.query("SELECT hourly FROM log_blocks WHERE source_id = %s AND min_id = %s",
                    (srcs[0].id, first))[0]["hourly"]
    assert db.query("SELECT count(DISTINCT gen) AS n FROM log_hour_filters WHERE source_id = %s "
                    "AND hour = %s", (srcs[0].id, h13))[0]["n"] == 3
    assert api_get(s, "/api/v1/search", dict(win, q="needle"), token=tok).json()["events"] == late

    # a writer's upsert of a block clears its mark: a block of today the writer holds open
    # is marked by hand, and the next line the writer adds to it unmarks it (the writer's
    # ids are past yesterday's: its block is told from them by id, not by time, which
    # just after midnight would also take yesterday's last block)
    top = db.query("SELECT max(max_id) AS m FROM log_blocks WHERE source_id = %s",
                   (srcs[3].id,))[0]["m"]
    assert s.post(srcs[3], frame_body([line("fresh one")])).status == 204
    wait_for(lambda: db.query("SELECT count(*) AS n FROM log_blocks WHERE source_id = %s AND "
                              "min_id > %s", (srcs[3].id, top))[0]["n"]
             == 1, 20, what="the open block stored")
    db.query("UPDATE log_blocks SET hourly = true WHERE source_id = %s AND min_id > %s",
             (srcs[3].id, top))
    assert s.post(srcs[3], frame_body([line("fresh two")])).status == 204
    wait_for(lambda: db.query("SELECT nrows, hourly FROM log_blocks WHERE source_id = %s AND "
                              "min_id > %s", (srcs[3].id, top))
             == [{"nrows": 2, "hourly": False}], 20, what="the block upserted and unmarked")
    s.stop()

    # packing the day takes its hour level with its live blocks
    sluice_cli(db, "compact", "--day", day.isoformat(), "--fence-seconds", "0")
    assert db.query("SELECT count(*) AS n FROM log_hour_filters WHERE source_id = ANY(%s) AND "
                    "hour < %s", (ids, d0 + datetime.timedelta(days=1)))[0]["n"] == 0
    assert db.query("SELECT count(*) AS n FROM log_blocks WHERE source_id = ANY(%s) AND hourly "
                    "AND max_received < %s", (ids, d0 + datetime.timedelta(days=1)))[0]["n"] == 0
    s = sluice()
    assert api_get(s, "/api/v1/search", dict(win, q="needle"), token=tok).json()["events"] == late
    s.stop()


def test_a_number_compared_reads_only_blocks_holding_its_class(db, sluice):
    """status:>=500 asks each block (written with classes) for one of status's classes
    that can hold a value >= 500 (docs/search.md "Numeric fields"), logfmt and JSON alike;
    a block written by an older release (classes false) is read as before."""
    s = sluice()
    ok, other = add_source(db, "cls-ok"), add_source(db, "cls-other")
    tok = add_read_token(db, "classes", "--source", ok.name, "--source", other.name)
    body = [line(f"at=info method=GET path=/a status=200 bytes={100 + i}") for i in range(40)]
    body += [line("at=error path=/b status=503 bytes=9"),
             line('worker {"status":"502","latency_ms":1.5e3,"msg":"upstream"}'),
             line("at=info status=-1 odd=\"7\"")]
    assert s.post(ok, frame_body(body)).status == 204
    assert s.post(other, frame_body([line(f"at=info status=abc n={i}") for i in range(20)])
                  ).status == 204
    wait_for(lambda: db.query("SELECT count(*) AS n FROM logs WHERE source_id = ANY(%s)",
                              ([ok.id, other.id],))[0]["n"] == 63, 20, what="63 rows")
    assert db.query("SELECT bool_and(classes) AS c FROM log_blocks WHERE source_id = ANY(%s)",
                    ([ok.id, other.id],))[0]["c"]

    def msgs(q):
        r = api_get(s, "/api/v1/search", {"q": q, "limit": 1000}, token=tok)
        assert r.status == 200, r.body
        return sorted(e["message"] for e in r.json()["events"])

    assert msgs("status:>=500") == sorted(["at=error path=/b status=503 bytes=9",
                                           'worker {"status":"502","latency_ms":1.5e3,'
                                           '"msg":"upstream"}'])
    assert msgs("status:<0") == ["at=info status=-1 odd=\"7\""]
    assert len(msgs("status:<300")) == 41
    assert msgs("latency_ms:>=1000") == ['worker {"status":"502","latency_ms":1.5e3,'
                                         '"msg":"upstream"}']
    assert msgs("odd:=7") == ["at=info status=-1 odd=\"7\""]
    assert len(msgs("bytes:>=100 bytes:<110")) == 10
    # a row changed under its block (only a test does that): the block's filter holds no
    # class of status >= 500, so the search skips the block...
    db.query("UPDATE logs SET message = 'at=info status=504 n=0' WHERE source_id = %s AND "
             "message = 'at=info status=abc n=0'", (other.id,))
    assert msgs("status:>=500") == sorted(["at=error path=/b status=503 bytes=9",
                                           'worker {"status":"502","latency_ms":1.5e3,'
                                           '"msg":"upstream"}'])
    # ...unless the block was written without classes (by an older release): read, found
    db.query("UPDATE log_blocks SET classes = false WHERE source_id = %s", (other.id,))
    assert "at=info status=504 n=0" in msgs("status:>=500")
    s.stop()
