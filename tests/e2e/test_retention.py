"""Retention (drain/db.c sl_db_retention, run by the maintenance thread at start and every
hour): per-source retention of rows, of their search blocks and of their commit log rows,
whole partitions past the longest retention dropped, and what is inside retention kept."""

import datetime
import time

from conftest import add_source, day_partition, sluice_cli, stamp_commits, wait_for


def put_row(db, source, rid, when, text):
    db.query("INSERT INTO logs (id, received_at, source_id, message) VALUES (%s, %s, %s, %s)",
             (rid, when, source.id, text))
    db.query("INSERT INTO log_blocks (source_id, min_received, max_received, min_id, max_id, "
             "nrows, nbits, bloom) VALUES (%s, %s, %s, %s, %s, 1, 8, '\\xff'::bytea)",
             (source.id, when, when, rid, rid))
    stamp_commits(db, source.id, [(rid, rid)], when)


def test_retention_per_source_rows_blocks_and_partitions(db, sluice):
    short = add_source(db, None, "--retention-days", "1")
    long_ = add_source(db, None, "--retention-days", "10")
    now = datetime.datetime.now(datetime.timezone.utc)
    three = now - datetime.timedelta(days=3)
    twelve = now - datetime.timedelta(days=12)
    recent = now - datetime.timedelta(hours=2)
    for d in (three.date(), twelve.date(), recent.date()):
        day_partition(db, d)
    old_part = "logs_" + twelve.date().strftime("%Y%m%d")
    base = 9_000_000_000
    put_row(db, short, base + 1, three, "short old")
    put_row(db, long_, base + 2, three, "long old")
    put_row(db, long_, base + 3, twelve, "past every retention")
    put_row(db, short, base + 4, recent, "short recent")

    sluice()  # the maintenance thread runs retention as it starts

    def blocks_now():
        return {(r["source_id"], r["min_id"]) for r in
                db.query("SELECT source_id, min_id FROM log_blocks WHERE min_id > %s", (base,))}

    def gone():
        # One retention pass deletes rows, then blocks, each in its own statement: wait
        # for the pass to reach the blocks too.
        ids = {r["id"] for r in db.query("SELECT id FROM logs WHERE id > %s", (base,))}
        return ids == {base + 2, base + 4} and len(blocks_now()) <= 2
    wait_for(gone, 20, what="retention to remove the short source's old row and the old day")
    # the day past every source's retention went as a whole partition
    assert db.query("SELECT to_regclass(%s) AS t", (old_part,))[0]["t"] is None
    # blocks follow their rows: the short source's old block and the dropped day's are gone
    assert blocks_now() == {(long_.id, base + 2), (short.id, base + 4)}
    # so do the commit log's rows (the live tail's order)
    wait_for(lambda: {(r["source_id"], r["id_lo"]) for r in db.query(
        "SELECT source_id, id_lo FROM log_commits WHERE id_lo > %s", (base,))}
        == {(long_.id, base + 2), (short.id, base + 4)}, 20, what="the commit log's retention")


def test_retention_change_applies_without_restart_in_batches(db, sluice):
    """`source set --retention-days` reaches a running server by NOTIFY: the next pass
    deletes the source's older rows in bounded batches (7 rows each here), the rows
    inside the new retention and another source's rows of the same day stay."""
    changed = add_source(db, None, "--retention-days", "10")
    other = add_source(db, None, "--retention-days", "10")
    now = datetime.datetime.now(datetime.timezone.utc)
    three = now - datetime.timedelta(days=3)
    one = now - datetime.timedelta(days=1)
    for d in (three.date(), one.date()):
        day_partition(db, d)
    base = 9_100_000_000
    n_old = 50
    for i in range(n_old):
        put_row(db, changed, base + i, three + datetime.timedelta(seconds=i), f"old {i}")
    put_row(db, other, base + 100, three, "other old")
    put_row(db, changed, base + 101, one, "changed inside the new retention")

    s = sluice(SLUICE_RETENTION_BATCH_ROWS="7", SLUICE_RETENTION_PAUSE_MS="0")
    wait_for(lambda: s.metric("sluice_retention_passes_total") >= 1, 20,
             what="the first retention pass")
    ids = lambda: {r["id"] for r in db.query("SELECT id FROM logs WHERE id >= %s", (base,))}
    # every source keeps 10 days: nothing of these goes
    assert len(ids()) == n_old + 2
    batches0 = s.metric("sluice_retention_batches_total")
    deleted0 = s.metric("sluice_retention_rows_deleted_total")

    r = sluice_cli(db, "source", "set", changed.name, "--retention-days", "2")
    assert "retention 2 days" in r.stdout
    wait_for(lambda: ids() == {base + 100, base + 101}, 20,
             what="the changed source's rows older than 2 days to go")
    wait_for(lambda: s.metric("sluice_retention_rows_deleted_total") - deleted0 == n_old, 10,
             what="the deleted-rows counter")
    # 50 rows at most 7 per statement: at least 8 DELETEs (the last one finds nothing)
    assert s.metric("sluice_retention_batches_total") - batches0 >= 8
    listed = sluice_cli(db, "source", "list").stdout
    assert any(l.split()[:2] == [changed.name, "2"] for l in listed.splitlines())


def old_source(db, n, text):
    """A source kept 10 days with n rows of three days ago, a millisecond apart:
    'TEXT I md5(I)'. Returns the source."""
    src = add_source(db, None, "--retention-days", "10")
    three = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=3)
    day_partition(db, three.date())
    db.query("INSERT INTO logs (received_at, source_id, message) SELECT %s + i * interval "
             "'1 ms', %s, %s || ' ' || i || ' ' || md5(i::text) FROM generate_series(1, %s) i",
             (three, src.id, text, n))
    return src


def test_retention_pass_is_paced_by_its_wal(db, sluice):
    """SLUICE_RETENTION_WAL_RATE: after each DELETE the pass waits as long as the WAL the
    statement wrote takes at that rate (docs/retention.md "Cost under load"), so a pass
    that wrote W bytes lasts at least about W / rate, whatever the pause floor."""
    n = 1500
    src = old_source(db, n, "paced row")
    rate = 64 * 1024
    s = sluice(SLUICE_RETENTION_BATCH_ROWS="150", SLUICE_RETENTION_PAUSE_MS="0",
               SLUICE_RETENTION_WAL_RATE=str(rate))
    wait_for(lambda: s.metric("sluice_retention_passes_total") >= 1, 20,
             what="the first retention pass")
    wal0 = s.metric("sluice_retention_wal_bytes_total")
    batches0 = s.metric("sluice_retention_batches_total")
    left = lambda: db.query("SELECT count(*) AS n FROM logs WHERE source_id = %s",
                            (src.id,))[0]["n"]
    assert left() == n
    t0 = time.monotonic()
    sluice_cli(db, "source", "set", src.name, "--retention-days", "2")
    wait_for(lambda: left() == 0, 60, what="the source's rows to go")
    took = time.monotonic() - t0
    wal = s.metric("sluice_retention_wal_bytes_total") - wal0
    # every deleted row is a WAL record of its own (and each page a full image)
    assert wal >= n * 40, wal
    assert s.metric("sluice_retention_batches_total") - batches0 >= n // 150
    # the pauses of every statement but the last one, at least half of it all
    assert took >= 0.5 * wal / rate, (took, wal)


def test_one_node_at_a_time_runs_a_pass(db, sluice):
    """Two nodes on one database: the pass's advisory lock (drain/maint.c PASS_LOCK) lets
    one node delete while the other puts its pass off
    (sluice_retention_passes_skipped_total) until the first is over, and then finds
    nothing left: SLUICE_RETENTION_WAL_RATE paces the cluster, not each node, and no
    node's DELETE waits on the other's rows."""
    n = 600
    src = old_source(db, n, "two nodes")
    env = dict(SLUICE_RETENTION_BATCH_ROWS="50", SLUICE_RETENTION_PAUSE_MS="200")
    nodes = [sluice(**env), sluice(**env)]
    metric = lambda name: [s.metric(name) for s in nodes]
    # each node's first pass ran (one after the other)
    wait_for(lambda: min(metric("sluice_retention_passes_total")) >= 1, 30,
             what="both nodes' first pass")
    deleted0 = metric("sluice_retention_rows_deleted_total")
    skipped0 = metric("sluice_retention_passes_skipped_total")
    passes0 = metric("sluice_retention_passes_total")
    left = lambda: db.query("SELECT count(*) AS n FROM logs WHERE source_id = %s",
                            (src.id,))[0]["n"]
    assert left() == n

    sluice_cli(db, "source", "set", src.name, "--retention-days", "2")
    wait_for(lambda: left() == 0, 60, what="the source's rows to go")
    # both nodes ran a pass for the change, one after the other
    wait_for(lambda: all(p > q for p, q in zip(metric("sluice_retention_passes_total"),
                                                passes0)), 30, what="both nodes' passes")
    deleted = [a - b for a, b in zip(metric("sluice_retention_rows_deleted_total"), deleted0)]
    skipped = [a - b for a, b in zip(metric("sluice_retention_passes_skipped_total"), skipped0)]
    # one node deleted every row (in 50-row statements, ~2.4 s at least); the other put
    # its pass off while that ran, and then found nothing
    assert sorted(deleted) == [0, n], deleted
    worker = deleted.index(n)
    assert skipped[1 - worker] >= 1, skipped


def test_source_set_retention_refuses_bad_values(db):
    src = add_source(db, None, "--retention-days", "5")
    for bad in ("0", "-3", "x", "4000", ""):
        r = sluice_cli(db, "source", "set", src.name, "--retention-days", bad, check=False)
        assert r.returncode == 2, (bad, r.stdout, r.stderr)
    r = sluice_cli(db, "source", "set", "no-such-source", "--retention-days", "3", check=False)
    assert r.returncode == 1
    assert db.query("SELECT retention_days FROM sources WHERE id = %s",
                    (src.id,))[0]["retention_days"] == 5
