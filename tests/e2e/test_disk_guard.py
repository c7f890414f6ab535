"""The disk guard (docs/retention.md, "Disk guard"; drain/evict.c run by the maintenance
thread, drain/diskguard.c's decisions): a budget smaller than the database puts it past the
evict mark, and then

(i)   /readyz (still 200) and /metrics say "evicting" before anything is refused;
(ii)  the oldest rows of the opted-in sources go first, exact to the row at every moment
      watched, an archived source's hours are archived before its rows go, and the rows of
      an opted-out source are untouched;
(iii) past the refuse mark (a restart with a smaller budget) a drain POST gets 503 with
      Retry-After, /readyz 503 names the disk, a syslog stream is not read;
(iv)  once the database is back under the marks (a table dropped), ingest resumes by
      itself: the held syslog line is read and stored, POSTs get 204, and nothing that
      got a 2xx is lost.

One server (restarted with new settings) shares the file; the filesystem figure is off so
the machine's own disk does not decide."""

import datetime
import gzip
import os
import socket
import subprocess

import pytest

from conftest import (SLUICE, Server, add_source, day_partition, frame_body, free_port,
                      heroku_line, sluice_cli, store_rows_directly, wait_for)

UTC = datetime.timezone.utc
A_DAYS = (5, 4, 3)  # the opted-in source's rows, days ago
B_DAYS = (5, 3)     # the opted-out source's
C_DAY = 4           # the opted-in, archived source's
PER_DAY_A, PER_DAY_B, ROWS_C = 300, 200, 40


def db_size(db):
    return db.query("SELECT pg_database_size(current_database()) AS n")[0]["n"]


def rows_days_ago(db, src, n, days):
    """n rows of src stored as the writer would (conftest.store_rows_directly), moved `days`
    back (their blocks and commit-log rows too); returns {id: received_at}."""
    for d in (0, days - 1, days, days + 1):  # today (stored), then the day they land on
        day_partition(db, (datetime.datetime.now(UTC) - datetime.timedelta(days=d)).date())
    ids = store_rows_directly(db, src.id, n, "'line ' || i", per_block=50)
    back = f"{days} days"
    db.query("UPDATE logs SET received_at = received_at - %s::interval "
             "WHERE source_id = %s AND id BETWEEN %s AND %s", (back, src.id, ids[0], ids[-1]))
    for table in ("log_blocks", "log_commits"):
        lo = "min_id" if table == "log_blocks" else "id_lo"
        db.query(f"UPDATE {table} SET min_received = min_received - %s::interval, "
                 f"max_received = max_received - %s::interval "
                 f"WHERE source_id = %s AND {lo} BETWEEN %s AND %s",
                 (back, back, src.id, ids[0], ids[-1]))
    return {r["id"]: r["received_at"] for r in db.query(
        "SELECT id, received_at FROM logs WHERE source_id = %s AND id BETWEEN %s AND %s",
        (src.id, ids[0], ids[-1]))}


def times_of(db, src):
    return {r["id"]: r["received_at"] for r in
            db.query("SELECT id, received_at FROM logs WHERE source_id = %s", (src.id,))}


@pytest.fixture(scope="module")
def setup(db, tls, workdir):
    a = add_source(db, None, "--disk-evict", "yes")
    b = add_source(db, None)  # the default: never evicted
    c = add_source(db, None, "--disk-evict", "yes")
    archive = os.path.join(workdir, f"disk-guard-archive-{os.getpid()}")
    sluice_cli(db, "source", "set", c.name, "--archive", archive)
    rows = {"a": {}, "b": {}, "c": {}}
    for d in A_DAYS:
        rows["a"].update(rows_days_ago(db, a, PER_DAY_A, d))
    for d in B_DAYS:
        rows["b"].update(rows_days_ago(db, b, PER_DAY_B, d))
    rows["c"].update(rows_days_ago(db, c, ROWS_C, C_DAY))
    # ~3 MB that is not logs: dropping it later brings the database under the marks
    db.query("CREATE TABLE disk_guard_padding AS SELECT repeat('x', 1000) || i AS t "
             "FROM generate_series(1, 3000) i")
    db.query("VACUUM ANALYZE logs")
    s = Server(db, tls, workdir, {"SLUICE_DISK_FILESYSTEM": "off",
                                  "SLUICE_DISK_CHECK_INTERVAL": "1",
                                  "SLUICE_RETENTION_BATCH_ROWS": "40",
                                  "SLUICE_RETENTION_PAUSE_MS": "20"})
    yield dict(a=a, b=b, c=c, rows=rows, archive=archive, server=s)
    s.stop()


def test_evicting_oldest_first_then_refusing_then_recovered(db, setup):
    s, a, b, c, rows = setup["server"], setup["a"], setup["b"], setup["c"], setup["rows"]
    a_sorted = sorted(rows["a"], key=lambda i: (rows["a"][i], i))
    # 90 % of the budget: past the evict mark (85), under the refuse mark (95)
    s.start(SLUICE_DISK_BUDGET=str(int(db_size(db) / 0.90)))

    # (ii) watched while it runs: what is left of the opted-in source is always its newest
    # rows (a suffix in time order), never a younger row gone before an older one
    snapshots = []

    def watch():
        left = set(times_of(db, a))
        snapshots.append(len(left))
        assert left == set(a_sorted[len(a_sorted) - len(left):]), \
            f"{len(left)} rows left of {len(a_sorted)}, not the newest ones"
        return not left and not times_of(db, c)
    wait_for(watch, 30, interval=0.02, what="the opted-in sources' old rows to be evicted")
    assert any(0 < n < len(a_sorted) for n in snapshots), \
        f"no moment seen with part of the rows gone: {snapshots[:5]}...{snapshots[-5:]}"
    # the opted-out source: every row, unchanged
    assert times_of(db, b) == rows["b"]
    # the archived source's rows were archived (written and verified) before they went
    files = [os.path.join(d, f) for d, _, fs in os.walk(os.path.join(setup["archive"], c.name))
             for f in fs if f.endswith(".tsv.gz")]
    assert files, "no archive file for the archived source"
    archived_ids = set()
    for f in files:
        with gzip.open(f, "rt") as fh:
            archived_ids |= {int(line.split("\t")[0]) for line in fh}
    assert archived_ids == set(rows["c"])
    assert db.query("SELECT count(*) AS n FROM archive_hours WHERE source_id = %s",
                    (c.id,))[0]["n"] == len(files)

    # the last day's partition is rewritten after its rows went: wait for that too
    wait_for(lambda: s.metric("sluice_disk_rewritten_partitions_total") >= 2, 10,
             what="the days holding opted-out rows to be rewritten")
    # (i) said so, while ingest goes on: 200 with "evicting", the gauges, the counters
    r = s.get("/readyz")
    assert r.status == 200 and b"evicting" in r.body, r
    m = s.metrics()
    assert m[("sluice_disk_state", frozenset())] == 1
    assert 0.80 <= m[("sluice_disk_used_ratio", frozenset())] < 0.95
    assert m[("sluice_disk_evicted_rows_total", frozenset())] >= len(a_sorted) - 2 * PER_DAY_A
    # day 4 held only opted-in rows: dropped whole; days 5 and 3 kept b's: rewritten
    assert m[("sluice_disk_evicted_partitions_total", frozenset())] >= 1
    assert m[("sluice_disk_rewritten_partitions_total", frozenset())] >= 2
    c_day = min(rows["c"].values()).astimezone(UTC).strftime("%Y%m%d")
    assert db.query("SELECT to_regclass(%s) AS t", (f"logs_{c_day}",))[0]["t"] is None
    log = s.log_tail(200)
    assert 'msg="disk guard: evicting the oldest data of opted-in sources"' in log
    assert "refusing" not in log
    ok = s.post(b, frame_body([heroku_line("while evicting")]))
    assert ok.status == 204, ok

    # (iii) past the refuse mark: 503 + Retry-After, /readyz 503 names the disk
    s.restart(SLUICE_DISK_BUDGET=str(int(db_size(db) / 0.97)))
    wait_for(lambda: s.get("/readyz").status == 503, 10, what="/readyz 503 while refusing")
    r = s.get("/readyz")
    assert b"disk refusing" in r.body and b"of the budget used" in r.body, r
    refused = s.post(b, frame_body([heroku_line("refused")]))
    assert refused.status == 503 and "retry-after" in refused.headers, refused
    assert s.metric("sluice_disk_state") == 2 and s.metric("sluice_disk_refused_total") >= 1
    assert 'msg="disk guard: refusing ingest"' in s.log_tail(200)
    # API reads still work
    assert s.get("/healthz").status == 200
    # syslog: not read while refusing (the sender waits; nothing is dropped)
    line = f"<190>1 2026-11-21T10:00:00Z {b.hostname} app web.1 - syslog while refusing\n"
    with socket.create_connection(("127.0.0.1", s.syslog_port), timeout=5) as sock:
        sock.sendall(line.encode())
        wait_for(lambda: s.metric("sluice_disk_syslog_paused_total") >= 1, 10,
                 what="the syslog stream to be held back")
        assert not db.query("SELECT 1 FROM logs WHERE source_id = %s AND message LIKE %s",
                            (b.id, "%syslog while refusing%"))
        # (iv) the database shrinks under the marks (what the operator would do: free
        # space, or raise the budget): ingest resumes by itself, the held stream first
        db.query("DROP TABLE disk_guard_padding")
        wait_for(lambda: s.get("/readyz").status == 200, 10, what="/readyz 200 after recovery")
        assert s.get("/readyz").body == b"ready\n"
        assert s.metric("sluice_disk_state") == 0
        wait_for(lambda: db.query("SELECT 1 FROM logs WHERE source_id = %s AND message LIKE %s",
                                  (b.id, "%syslog while refusing%")), 10,
                 what="the held syslog line to be read and stored")
    assert 'msg="disk guard: ok"' in s.log_tail(200)
    again = s.post(b, frame_body([heroku_line("after recovery")]))
    assert again.status == 204, again
    # every line that got a 2xx is stored; the refused one is not
    msgs = lambda: {r["message"] for r in db.query(
        "SELECT message FROM logs WHERE source_id = %s AND id <> ALL(%s)",
        (b.id, list(rows["b"])))}
    wait_for(lambda: {"while evicting", "after recovery"} <= msgs(), 10,
             what="the acknowledged lines")
    assert "refused" not in msgs()
    assert {i: t for i, t in times_of(db, b).items() if i in rows["b"]} == rows["b"]


def test_only_as_many_rows_as_needed(db, setup, sluice):
    """Part of a day is needed: the rows the figures call for go (the oldest), then the
    day's partition is rewritten and measured; the newer rows stay, and the state is ok."""
    setup["server"].stop()  # one server evicting at a time keeps the figures readable
    d = add_source(db, None, "--disk-evict", "yes")
    rows = rows_days_ago(db, d, 4000, 2)
    db.query("UPDATE logs SET message = repeat('y', 300) || id WHERE source_id = %s", (d.id,))
    db.query("VACUUM FULL ANALYZE logs")
    part = "logs_" + min(rows.values()).astimezone(UTC).strftime("%Y%m%d")
    part_bytes = db.query("SELECT pg_total_relation_size(%s) AS n", (part,))[0]["n"]
    size = db_size(db)
    # 87 % of the budget: eviction down to 80 % needs ~8 % of the database, a part of the day
    budget = int(size / 0.87)
    need = size - 0.80 * budget
    assert need < 0.8 * part_bytes, (need, part_bytes)
    s = sluice(SLUICE_DISK_BUDGET=str(budget), SLUICE_DISK_FILESYSTEM="off",
               SLUICE_DISK_CHECK_INTERVAL="1", SLUICE_RETENTION_BATCH_ROWS="500",
               SLUICE_RETENTION_PAUSE_MS="20")
    wait_for(lambda: s.metric("sluice_disk_state") == 0 and
             s.metric("sluice_disk_rewritten_partitions_total") >= 1, 30,
             what="eviction to get under the mark")
    left = times_of(db, d)
    ordered = sorted(rows, key=lambda i: (rows[i], i))
    assert 0 < len(left) < len(rows), len(left)
    assert set(left) == set(ordered[len(ordered) - len(left):]), "not the newest rows kept"
    assert 'msg="disk guard: ok"' in s.log_tail(200)


def test_two_nodes_evict_once(db, setup, sluice):
    """Two nodes on one database: both say evicting, one at a time evicts (advisory lock),
    so no day is evicted twice."""
    setup["server"].stop()
    e = add_source(db, None, "--disk-evict", "yes")
    f = add_source(db, None)  # opted out: its days are evicted by batches, not dropped
    kept = {}
    for days in (7, 6):
        rows_days_ago(db, e, 400, days)
        kept.update(rows_days_ago(db, f, 10, days))
    env = dict(SLUICE_DISK_BUDGET=str(int(db_size(db) / 0.90)), SLUICE_DISK_FILESYSTEM="off",
               SLUICE_DISK_CHECK_INTERVAL="1", SLUICE_RETENTION_BATCH_ROWS="40",
               SLUICE_RETENTION_PAUSE_MS="100")  # slow enough for the nodes to overlap
    nodes = [sluice(**env), sluice(**env)]
    wait_for(lambda: not times_of(db, e), 30, what="the new source's rows to be evicted")
    for n in nodes:
        r = n.get("/readyz")
        assert r.status == 200 and b"evicting" in r.body, r
    days = [line.split("day=")[1].split()[0] for n in nodes for line in n.log_tail(400).splitlines()
            if 'msg="disk guard: evicting a day"' in line]
    assert days and len(days) == len(set(days)), days
    assert times_of(db, f) == kept


def test_a_day_left_mid_way_is_finished(db, setup, sluice):
    """A node stopped between a day's DELETEs and its rewrite (disk_evict_days still names
    the day): the next node that evicts rewrites that day first, so its deleted rows'
    space goes back to the disk."""
    setup["server"].stop()
    b, b_rows = setup["b"], setup["rows"]["b"]
    day = min(b_rows.values()).astimezone(UTC).date()
    db.query("INSERT INTO disk_evict_days (day) VALUES (%s) ON CONFLICT DO NOTHING", (day,))
    s = sluice(SLUICE_DISK_BUDGET=str(int(db_size(db) / 0.90)), SLUICE_DISK_FILESYSTEM="off",
               SLUICE_DISK_CHECK_INTERVAL="1", SLUICE_RETENTION_PAUSE_MS="20")
    wait_for(lambda: not db.query("SELECT 1 FROM disk_evict_days"), 20,
             what="the day left mid-way to be finished")
    assert f'msg="disk guard: finishing a day left mid-way" day={day.isoformat()}' in s.log_tail(400)
    assert s.metric("sluice_disk_rewritten_partitions_total") >= 1
    assert {i: t for i, t in times_of(db, b).items() if i in b_rows} == b_rows


def test_filesystem_figure(db, sluice):
    """No budget: the figure is the used share of the filesystem of PostgreSQL's data
    directory (the private PostgreSQL of the tests is on this host), as df counts it."""
    datadir = db.query("SHOW data_directory")[0]["data_directory"]
    s = sluice(SLUICE_DISK_CHECK_INTERVAL="1", SLUICE_DISK_FILESYSTEM="on")
    wait_for(lambda: "watching the filesystem of PostgreSQL's data directory" in s.log_tail(50),
             10, what="the data directory's filesystem to be watched")
    v = os.statvfs(datadir)
    used = (v.f_blocks - v.f_bfree) * v.f_frsize
    want = used / (used + v.f_bavail * v.f_frsize)
    wait_for(lambda: s.metric("sluice_disk_used_ratio") > 0, 10, what="the figure published")
    assert abs(s.metric("sluice_disk_used_ratio") - want) < 0.01
    assert s.metric("sluice_disk_database_bytes") > 0


def test_source_disk_evict_flag(db):
    src = add_source(db, None)
    assert db.query("SELECT disk_evict FROM sources WHERE id = %s", (src.id,))[0]["disk_evict"] is False
    r = sluice_cli(db, "source", "set", src.name, "--disk-evict", "yes")
    assert "may go before their retention" in r.stdout
    assert db.query("SELECT disk_evict FROM sources WHERE id = %s", (src.id,))[0]["disk_evict"] is True
    listed = [l.split() for l in sluice_cli(db, "source", "list").stdout.splitlines()]
    assert [src.name, "7", "yes"] in [l[:3] for l in listed]
    for bad in ("maybe", ""):
        r = sluice_cli(db, "source", "set", src.name, "--disk-evict", bad, check=False)
        assert r.returncode == 2 and "yes or no" in r.stderr
    sluice_cli(db, "source", "set", src.name, "--disk-evict=no")
    assert db.query("SELECT disk_evict FROM sources WHERE id = %s", (src.id,))[0]["disk_evict"] is False


def test_bad_marks_refuse_to_start(db):
    env = dict(os.environ, DATABASE_URL=db.url, SLUICE_BIND="127.0.0.1", PORT=str(free_port()),
               SLUICE_HTTPS_PORT="0", SLUICE_SYSLOG_TLS_PORT="0", SLUICE_SYSLOG_PORT="0",
               SLUICE_DISK_EVICT_PCT="96")
    r = subprocess.run([SLUICE, "serve"], env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "SLUICE_DISK_EVICT_PCT must be below" in r.stderr, r.stderr
