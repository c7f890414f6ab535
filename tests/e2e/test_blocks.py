"""The writer's per-block token filters in log_blocks (docs/search.md, drain/blocks.c).

After real ingest through the server, checked in PostgreSQL: every row of `logs` lies in
exactly one block (source, received_at range, id range); each block's counts and ranges are
exactly those of its rows; a source's blocks do not overlap in ids; filter sizes are powers
of two; every token of every stored message (as stored, repaired text included) is in its
block's filter, in Python and through SQL sl_bloom_has1. Also: records COPYed grouped by
source, blocks shared across small batches, cut at 3200 distinct tokens, a failed batch and
a kill -9 mid-load keep all of that true.

The token hash is ported from drain/tokens.c (sl_token_hash64) and pinned to the value
tests/unit/test_tokens.c pins.
"""

import datetime
import http.client
import json
import os
import ssl
import threading
import time

import psycopg2

from conftest import (CORPUS, add_source, basic_auth, corpus_path, frame_body, heroku_line,
                      wait_for)
from test_durability import Load, assert_exactly_once

M64 = (1 << 64) - 1


def _rotl(x, r):
    return ((x << r) | (x >> (64 - r))) & M64


def _mix(h, k):
    k = (k * 0x87C37B91114253D5) & M64
    k = _rotl(k, 31)
    k = (k * 0x4CF5AD432745937F) & M64
    h ^= k
    return (_rotl(h, 27) * 5 + 0x52DCE729) & M64


def _fmix(h):
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & M64
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & M64
    h ^= h >> 33
    return h


def token_hash(tok):
    """sl_token_hash64 of a lowercased token (bytes)."""
    n = len(tok)
    h = 0x9E3779B97F4A7C15 ^ ((n * 0xC2B2AE3D27D4EB4F) & M64)
    i = 0
    while n - i >= 8:
        h = _mix(h, int.from_bytes(tok[i:i + 8], "little"))
        i += 8
    if i < n or n == 0:
        h = _mix(h, int.from_bytes(tok[i:], "little"))
    return _fmix(h)


def _word(c):
    return c >= 0x80 or 48 <= c <= 57 or 65 <= c <= 90 or 97 <= c <= 122 or c == 95


def tokens(text):
    """sl_tokenize: runs of word bytes, ASCII lowercased, cut at 64 bytes."""
    out, cur, run = [], bytearray(), False
    for c in text:
        if _word(c):
            if len(cur) < 64:
                cur.append(c + 32 if 65 <= c <= 90 else c)
            run = True
        elif run:
            out.append(bytes(cur))
            cur, run = bytearray(), False
    if run:
        out.append(bytes(cur))
    return out


def h1h2(h):
    return h & 0xFFFFFFFF, (h >> 32) | 1


def bloom_has(bloom, nbits, h):
    a, b = h1h2(h)
    for i in range(4):
        p = (a + i * b) % nbits
        if not (bloom[p >> 3] >> (p & 7)) & 1:
            return False
    return True


def test_hash_port_matches_c():
    assert token_hash(b"h12") == 0xB1B3F53028A8FA07
    assert tokens(b"at=error code=H12 desc=\"Request timeout\"") == \
        [b"at", b"error", b"code", b"h12", b"desc", b"request", b"timeout"]


def check_blocks(db):
    """The coverage invariants over the whole database; returns the blocks."""
    uncovered = db.query(
        "SELECT l.id, l.source_id, count(b.min_id) AS n FROM logs l LEFT JOIN log_blocks b "
        "ON b.source_id = l.source_id AND l.received_at BETWEEN b.min_received AND b.max_received "
        "AND l.id BETWEEN b.min_id AND b.max_id GROUP BY l.id, l.source_id HAVING count(b.min_id) <> 1")
    assert not uncovered, f"rows not in exactly one block: {uncovered[:5]}"
    bad = db.query(
        "SELECT b.source_id, b.min_id, b.max_id, b.nrows, b.min_received, b.max_received, "
        "  count(l.id) AS n, min(l.id) AS lo, max(l.id) AS hi, "
        "  min(l.received_at) AS rlo, max(l.received_at) AS rhi "
        "FROM log_blocks b LEFT JOIN logs l ON l.source_id = b.source_id "
        "  AND l.id BETWEEN b.min_id AND b.max_id "
        "  AND l.received_at BETWEEN b.min_received AND b.max_received "
        "GROUP BY b.source_id, b.min_id, b.max_id, b.nrows, b.min_received, b.max_received "
        "HAVING count(l.id) <> b.nrows OR min(l.id) <> b.min_id OR max(l.id) <> b.max_id "
        "  OR min(l.received_at) <> b.min_received OR max(l.received_at) <> b.max_received")
    assert not bad, f"blocks whose ranges or counts differ from their rows: {bad[:3]}"
    sums = db.query(
        "SELECT s.source_id, s.n, coalesce(b.n, 0) AS nb FROM "
        "(SELECT source_id, count(*) AS n FROM logs GROUP BY 1) s LEFT JOIN "
        "(SELECT source_id, sum(nrows) AS n FROM log_blocks GROUP BY 1) b USING (source_id) "
        "WHERE s.n <> coalesce(b.n, 0)")
    assert not sums, f"sum(nrows) differs from the row count: {sums}"
    overlap = db.query(
        "SELECT a.source_id, a.min_id, a.max_id, b.min_id AS b_min, b.max_id AS b_max "
        "FROM log_blocks a JOIN log_blocks b ON a.source_id = b.source_id "
        "AND a.min_id < b.min_id AND a.max_id >= b.min_id")
    assert not overlap, f"blocks of one source overlap in ids: {overlap[:3]}"
    blocks = db.query("SELECT * FROM log_blocks ORDER BY source_id, min_id")
    for b in blocks:
        nbits = b["nbits"]
        assert nbits >= 1024 and nbits & (nbits - 1) == 0, b["nbits"]
        assert len(bytes(b["bloom"])) * 8 == nbits
        assert b["max_received"] - b["min_received"] < datetime.timedelta(minutes=5)
    return blocks


def check_tokens(db, source_id):
    """Every token of every stored message of the source is in its block's filter."""
    blocks = db.query("SELECT min_id, max_id, nbits, bloom FROM log_blocks WHERE source_id = %s "
                      "ORDER BY min_id", (source_id,))
    rows = db.query("SELECT id, message FROM logs WHERE source_id = %s ORDER BY id", (source_id,))
    assert rows and blocks
    checked = 0
    for r in rows:
        b = next(b for b in blocks if b["min_id"] <= r["id"] <= b["max_id"])
        bloom = bytes(b["bloom"])
        for t in tokens(r["message"].encode()):
            assert bloom_has(bloom, b["nbits"], token_hash(t)), (r["id"], t, r["message"])
            checked += 1
    return checked


def sql_has(db, source_id, word):
    """Blocks of the source whose filter may hold word (SQL sl_bloom_has1), and all blocks."""
    h1, h2 = h1h2(token_hash(word.lower().encode()))
    r = db.query("SELECT count(*) FILTER (WHERE sl_bloom_has1(bloom, nbits, %s, %s)) AS yes, "
                 "count(*) AS n FROM log_blocks WHERE source_id = %s", (h1, h2, source_id))[0]
    return r["yes"], r["n"]


def post_raw(server, src, body, conn=None):
    ctx = ssl.create_default_context(cafile=server.tls.cert)
    c = conn or http.client.HTTPSConnection("127.0.0.1", server.https_port, context=ctx, timeout=20)
    c.request("POST", "/logs", body=body, headers={"Content-Type": "application/logplex-1",
                                                   "Authorization": basic_auth(src)})
    resp = c.getresponse()
    resp.read()
    if conn is None:
        c.close()
    return resp.status


def test_stream_corpus_interleaved(server, db):
    """Both apps of the stream corpus, their bodies alternating, plus the invalid-UTF-8 file."""
    with open(corpus_path("streams", "manifest.json")) as f:
        manifest = json.load(f)
    apps = sorted(manifest)
    srcs = {a: server.add_source(f"blocks-{a}") for a in apps}
    total = {a: 0 for a in apps}
    for i in range(max(len(manifest[a]["bodies"]) for a in apps)):
        for a in apps:
            if i < len(manifest[a]["bodies"]):
                body = manifest[a]["bodies"][i]
                r = server.post(srcs[a], os.path.join(CORPUS, body["file"]))
                assert r.status == 204, r
                total[a] += body["msg_count"]
    bad = server.add_source("blocks-invalid-utf8")
    r = server.post(bad, corpus_path("logplex", "invalid-utf8-and-nul.logplex"))
    assert r.status == 204
    for a in apps:
        db.wait_rows(srcs[a].id, total[a])
    wait_for(lambda: db.count(bad.id) > 0, 20, what="invalid-utf8 rows")
    time.sleep(0.5)
    check_blocks(db)
    for a in apps:
        assert check_tokens(db, srcs[a].id) > 1000
        # a word the corpus has (the crash's router line) and one it has not
        yes, n = sql_has(db, srcs[a].id, "H10")
        assert yes >= 1
        # words it has not: about 1 % false positives per filter
        absent = [sql_has(db, srcs[a].id, f"zzqx{i}absent") for i in range(20)]
        assert sum(y for y, _ in absent) <= sum(n for _, n in absent) // 4, absent
    assert check_tokens(db, bad.id) > 0
    # repaired text: the stored U+FFFD is what was tokenized
    rows = db.query("SELECT message FROM logs WHERE source_id = %s AND message_raw IS NOT NULL",
                    (bad.id,))
    assert rows and any("\ufffd" in r["message"] for r in rows)


def test_records_grouped_by_source(server, db, pg):
    """Records waiting together are COPYed grouped by source: with the writer held up (a
    lock on spool_checkpoints), bodies posted A, B, A, B, ... land in one or two batches, so
    each source's rows form at most two runs of consecutive ids (interleaved: four)."""
    a, b = server.add_source("group-a"), server.add_source("group-b")
    lock = psycopg2.connect(db.url)
    try:
        with lock.cursor() as cur:
            cur.execute("LOCK TABLE spool_checkpoints IN ACCESS EXCLUSIVE MODE")
        for i in range(4):
            for src in (a, b):
                body = frame_body(heroku_line(f"group {src.name} body={i} line={j}")
                                  for j in range(5))
                assert post_raw(server, src, body) == 204
        time.sleep(0.5)
    finally:
        lock.rollback()
        lock.close()
    for src in (a, b):
        rows = db.wait_rows(src.id, 20)
        ids = [r["id"] for r in rows]
        runs = 1 + sum(1 for x, y in zip(ids, ids[1:]) if y != x + 1)
        assert runs <= 2, f"{src.name}: {runs} runs of ids {ids}"
        assert [r["message"] for r in rows] == [f"group {src.name} body={i} line={j}"
                                                for i in range(4) for j in range(5)]
    check_blocks(db)


def test_small_batches_share_a_block(server, db):
    """At a few lines per batch, one open block per source lives across the batches."""
    src = server.add_source("trickle")
    for i in range(12):
        assert server.post(src, frame_body([heroku_line(f"trickle line {i} word{i}")])).status == 204
        wait_for(lambda: db.count(src.id) == i + 1, 10, interval=0.05, what=f"line {i}")
    blocks = db.query("SELECT nrows FROM log_blocks WHERE source_id = %s", (src.id,))
    assert [b["nrows"] for b in blocks] == [12]
    assert sql_has(db, src.id, "word7") == (1, 1)
    check_tokens(db, src.id)
    check_blocks(db)


def test_cut_at_3200_tokens_and_concurrent_sources(server, db):
    """Six sources posting at once from threads; one of them sends 3 new tokens a line."""
    srcs = [server.add_source(f"conc-{i}") for i in range(6)]
    lines = 40

    def run(k, src):
        ctx = ssl.create_default_context(cafile=server.tls.cert)
        c = http.client.HTTPSConnection("127.0.0.1", server.https_port, context=ctx, timeout=20)
        for r in range(30):
            body = frame_body(heroku_line(f"src{k} req{r} line{j} u{k}x{r}x{j}a u{k}x{r}x{j}b "
                                          f"u{k}x{r}x{j}c status=200")
                              for j in range(lines))
            assert post_raw(server, src, body, conn=c) == 204
        c.close()

    threads = [threading.Thread(target=run, args=(k, s)) for k, s in enumerate(srcs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    for s in srcs:
        db.wait_rows(s.id, 30 * lines)
    blocks = check_blocks(db)
    for s in srcs:
        mine = [b for b in blocks if b["source_id"] == s.id]
        # 1200 lines x >= 3 new tokens each: over 3600 distinct tokens, so at least 2 blocks
        assert len(mine) >= 2, len(mine)
        assert all(b["nbits"] <= 32768 for b in mine), [b["nbits"] for b in mine]
        assert sum(b["nrows"] for b in mine) == 30 * lines
    check_tokens(db, srcs[0].id)


def test_failed_batch_forgets_open_blocks(server, db):
    """A batch whose transaction fails (a trigger refuses its log_blocks upsert once) is
    retried; the open block it had joined is not reused with rows counted twice."""
    src = server.add_source("fail-once")
    assert server.post(src, frame_body(heroku_line(f"before {i}") for i in range(10))).status == 204
    db.wait_rows(src.id, 10)
    failures0 = server.metric("sluice_copy_failures_total")
    db.query("CREATE SEQUENCE e2e_fail_seq")
    db.query("CREATE FUNCTION e2e_fail_once() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN "
             "IF nextval('e2e_fail_seq') = 1 THEN RAISE EXCEPTION 'e2e: refused once'; END IF; "
             "RETURN NEW; END $f$")
    db.query("CREATE TRIGGER e2e_fail BEFORE INSERT ON log_blocks FOR EACH ROW "
             "EXECUTE FUNCTION e2e_fail_once()")
    try:
        assert server.post(src, frame_body(heroku_line(f"after {i}") for i in range(10))).status == 204
        rows = db.wait_rows(src.id, 20)
    finally:
        db.query("DROP TRIGGER e2e_fail ON log_blocks")
        db.query("DROP FUNCTION e2e_fail_once()")
        db.query("DROP SEQUENCE e2e_fail_seq")
    assert server.metric("sluice_copy_failures_total") >= failures0 + 1
    assert sorted(r["message"] for r in rows) == sorted(
        [f"before {i}" for i in range(10)] + [f"after {i}" for i in range(10)])
    blocks = db.query("SELECT nrows FROM log_blocks WHERE source_id = %s ORDER BY min_id",
                      (src.id,))
    assert [b["nrows"] for b in blocks] == [10, 10]
    check_tokens(db, src.id)
    check_blocks(db)


def test_kill9_mid_load_keeps_coverage(sluice, db):
    s = sluice()
    src = s.add_source("blocks-kill9")
    load = Load(s, src, clients=4, lines=100).start()
    time.sleep(1.5)
    s.kill()
    time.sleep(0.3)
    load.stop()
    acked = load.acked_lines()
    assert acked, f"no request was acknowledged before the kill: {load.statuses()}"
    s.start()  # same spool directory, fresh ports
    assert_exactly_once(db, src, acked)
    blocks = check_blocks(db)
    assert sum(b["nrows"] for b in blocks if b["source_id"] == src.id) == db.count(src.id)
    check_tokens(db, src.id)


def test_long_lines_filter_fits_a_page(server, db):
    """Lines of 1 500 new tokens each take a block far past 3 200 tokens: its filter is
    folded to 32 768 bits (bloom is STORAGE PLAIN: the row must fit in an 8 KiB page), and
    every line is stored, none dead-lettered."""
    src = server.add_source("long-lines")
    failures0 = server.metric("sluice_copy_failures_total")
    lines = [heroku_line(" ".join(f"t{i}x{j}" for j in range(1500))) for i in range(3)]
    assert server.post(src, frame_body(lines)).status == 204
    db.wait_rows(src.id, 3)
    blocks = db.query("SELECT nbits, nrows FROM log_blocks WHERE source_id = %s", (src.id,))
    assert blocks == [{"nbits": 32768, "nrows": 3}], blocks
    assert server.metric("sluice_copy_failures_total") == failures0
    assert check_tokens(db, src.id) == 4500
    check_blocks(db)


def test_retention_deletes_old_blocks(sluice, db):
    """Retention (run by the maintenance thread at start, then hourly) deletes blocks whose
    newest row is past their source's retention, and blocks of sources that no longer exist;
    it keeps the others. The blocks here are made up (no rows), so the test removes what it
    keeps at the end."""
    short = add_source(db, "ret-short", "--retention-days", "1")
    long_ = add_source(db, "ret-long", "--retention-days", "30")
    gone = 987654321
    made = [(short.id, "3 days", 1), (short.id, "1 hour", 2), (long_.id, "3 days", 3),
            (gone, "1 hour", 4)]
    for sid, age, mid in made:
        db.query("INSERT INTO log_blocks VALUES (%s, now() - %s::interval - interval '1 minute', "
                 "now() - %s::interval, %s, %s, 1, 1024, decode(repeat('00', 128), 'hex'))",
                 (sid, age, age, mid, mid))

    def left():
        return sorted(r["min_id"] for r in db.query(
            "SELECT min_id FROM log_blocks WHERE source_id = ANY(%s)",
            ([short.id, long_.id, gone],)))

    try:
        assert left() == [1, 2, 3, 4]
        sluice()
        wait_for(lambda: left() == [2, 3], 20, what=f"retention of log_blocks (left: {left()})")
    finally:
        db.query("DELETE FROM log_blocks WHERE source_id = ANY(%s)", ([short.id, long_.id, gone],))
