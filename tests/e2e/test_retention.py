"""Retention (drain/db.c sl_db_retention, run by the maintenance thread at start and every
hour): per-source retention of rows, of their search blocks and of their commit log rows,
whole partitions past the longest retention dropped, and what is inside retention kept."""

import datetime

from conftest import add_source, stamp_commits, wait_for


def day_partition(db, day):
    """Creates the logs partition of a UTC day (named as the server names them)."""
    name = "logs_" + day.strftime("%Y%m%d")
    nxt = day + datetime.timedelta(days=1)
    db.query(f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF logs FOR VALUES "
             f"FROM ('{day.isoformat()} 00:00:00+00') TO ('{nxt.isoformat()} 00:00:00+00')")
    return name


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
