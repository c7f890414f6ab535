"""Archives before retention deletes (drain/archive.c, docs/retention.md "Archives"): hour
files in Papertrail's layout and columns written and verified before the rows go, a failed
write keeping the rows, and `sluice archive restore` giving the same search answers back."""

import datetime
import gzip
import hashlib
import json
import os
import subprocess

import pytest

from conftest import (SLUICE, add_read_token, add_source, api_get, npm_require, sluice_cli,
                      wait_for)
from test_retention import day_partition

SEARCH = "/api/v1/search"
BASE = 9_200_000_000
UTC = datetime.timezone.utc

# Messages a TSV must escape (tab, newline, backslash), non-ASCII, JSON with a prefix.
MESSAGES = ["order 1 placed\tby tab", "order 2 line\nbreak", "order 3 back\\slash",
            "order 4 caf\u00e9 \u2603", 'order 5 json {"user": {"id": 7}, "ok": true}']


def put_hour(db, source, first_id, start, n, raw=False):
    """n rows of source from `start` a second apart, ids first_id.., and one search block
    (a filter that says yes to every token) over them, as the writer would leave them."""
    for i in range(n):
        msg = f"#{i} " + MESSAGES[i % len(MESSAGES)]
        json_at = msg.index("{") + 1 if "{" in msg else None
        db.query("INSERT INTO logs (id, received_at, source_id, emitted_at, emitted_precision, "
                 "emitted_offset, facility, severity, hostname, app_name, procid, msgid, sd, "
                 "message, message_raw, tags, frame_id, json_at) VALUES (%s, %s, %s, %s, 6, 0, "
                 "23, %s, 'host', 'app', 'web.1', '-', NULL, %s, %s, %s, %s, %s)",
                 (first_id + i, start + datetime.timedelta(seconds=i), source.id,
                  start + datetime.timedelta(seconds=i, microseconds=-1500), i % 8, msg,
                  msg.encode() + b"\xff" if raw and i == 0 else None,
                  json.dumps({"k": i}) if i % 3 == 0 else None, f"frame-{i}", json_at))
    db.query("INSERT INTO log_blocks (source_id, min_received, max_received, min_id, max_id, "
             "nrows, nbits, bloom) VALUES (%s, %s, %s, %s, %s, %s, 8, '\\xff'::bytea)",
             (source.id, start, start + datetime.timedelta(seconds=n - 1), first_id,
              first_id + n - 1, n))


def search_events(server, token, q, day):
    lo = datetime.datetime.combine(day, datetime.time(), UTC)
    r = api_get(server, SEARCH, {"q": q, "since": lo.isoformat(), "limit": 1000,
                                 "until": (lo + datetime.timedelta(days=1)).isoformat()},
                token=token)
    assert r.status == 200, r.body[:300]
    return r.json()["events"]


def test_archive_delete_restore_round_trip(db, sluice, workdir):
    adir = os.path.join(workdir, "archive-rt")
    src = add_source(db, None, "--retention-days", "10")
    keep = add_source(db, None, "--retention-days", "10")
    sluice_cli(db, "source", "set", src.name, "--archive", adir)
    day = (datetime.datetime.now(UTC) - datetime.timedelta(days=3)).date()
    day_partition(db, day)
    h10 = datetime.datetime.combine(day, datetime.time(10), UTC)
    put_hour(db, src, BASE, h10, 23, raw=True)
    put_hour(db, src, BASE + 100, h10 + datetime.timedelta(hours=1), 6)
    put_hour(db, keep, BASE + 200, h10, 4)
    token = add_read_token(db, f"rt-{os.getpid()}", "--all")

    s = sluice(SLUICE_RETENTION_BATCH_ROWS="5", SLUICE_RETENTION_PAUSE_MS="0")
    wait_for(lambda: s.metric("sluice_retention_passes_total") >= 1, 20, what="first pass")
    before = {q: search_events(s, token, q, day) for q in ("order", "caf\u00e9", "json", "")}
    assert len(before["order"]) == 33 and len(before[""]) == 33
    ours = lambda: [e for e in search_events(s, token, "", day)  # noqa: E731
                    if e["source"] == src.name]
    assert len(ours()) == 29

    sluice_cli(db, "source", "set", src.name, "--retention-days", "2")
    wait_for(lambda: db.count(src.id) == 0, 30, what="the archived source's rows to go")
    assert db.count(keep.id) == 4  # the other source's rows of the same day stay
    assert ours() == []

    files = sorted(os.path.relpath(os.path.join(d, f), adir)
                   for d, _, fs in os.walk(adir) for f in fs)
    dt = day.isoformat()
    assert files == [f"{src.name}/dt={dt}/{dt}-10.tsv.gz", f"{src.name}/dt={dt}/{dt}-11.tsv.gz"]
    recs = db.query("SELECT path, nrows, bytes, sha256 FROM archive_hours WHERE source_id = %s "
                    "ORDER BY hour", (src.id,))
    assert [r["nrows"] for r in recs] == [23, 6]
    for rec in recs:
        data = open(rec["path"], "rb").read()
        assert len(data) == rec["bytes"]
        assert hashlib.sha256(data).hexdigest() == rec["sha256"]
    assert s.metric("sluice_archive_files_total") == 2

    # Papertrail's columns first: id, generated_at, received_at, source_id, source_name,
    # source_ip, facility_name, severity_name, program, message (COPY text escapes).
    lines = gzip.decompress(open(recs[0]["path"], "rb").read()).decode().split("\n")
    assert lines[-1] == "" and len(lines) == 24
    first = lines[0].split("\t")
    assert first[0] == str(BASE)
    assert first[2] == h10.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert first[3:10] == [str(src.id), src.name, "\\N", "Local7", "Emerg", "app/web.1",
                           "#0 order 1 placed\\tby tab"]
    assert lines[1].split("\t")[9] == "#1 order 2 line\\nbreak"
    assert lines[2].split("\t")[9] == "#2 order 3 back\\\\slash"
    assert [int(l.split("\t")[0]) for l in lines[:-1]] == list(range(BASE, BASE + 23))

    r = sluice_cli(db, "archive", "restore", "--source", src.name, "--day", dt)
    assert "29 rows restored" in r.stdout, r.stdout
    snapshot = db.query("SELECT * FROM logs WHERE source_id = %s ORDER BY id", (src.id,))
    r = sluice_cli(db, "archive", "restore", "--source", src.name, "--day", dt)
    assert "0 rows restored (29 were there)" in r.stdout, r.stdout
    assert db.query("SELECT * FROM logs WHERE source_id = %s ORDER BY id", (src.id,)) == snapshot
    after = {q: search_events(s, token, q, day) for q in before}
    assert after == before
    # the hold keeps the restored day from the next pass
    before_passes = s.metric("sluice_retention_passes_total")
    sluice_cli(db, "source", "set", src.name, "--retention-days", "2")  # starts a pass
    wait_for(lambda: s.metric("sluice_retention_passes_total") > before_passes, 20,
             what="another pass")
    assert db.count(src.id) == 29


def test_archive_failure_keeps_rows(db, sluice, workdir):
    blocker = os.path.join(workdir, "archive-blocker")
    with open(blocker, "w") as f:
        f.write("a file where the archive wants a directory\n")
    src = add_source(db, None, "--retention-days", "2")
    sluice_cli(db, "source", "set", src.name, "--archive", blocker + "/sub")
    day = (datetime.datetime.now(UTC) - datetime.timedelta(days=4)).date()
    day_partition(db, day)
    put_hour(db, src, BASE + 1000, datetime.datetime.combine(day, datetime.time(3), UTC), 5)

    s = sluice(SLUICE_RETENTION_PAUSE_MS="0")
    wait_for(lambda: s.metric("sluice_archive_failures_total") >= 1, 20,
             what="the failed archive to be counted")
    wait_for(lambda: s.metric("sluice_retention_passes_total") >= 1, 20, what="the pass")
    assert db.count(src.id) == 5
    assert db.query("SELECT count(*) AS n FROM archive_hours WHERE source_id = %s",
                    (src.id,))[0]["n"] == 0
    # the day's partition stays too: it still holds rows of an archived source
    assert db.query("SELECT to_regclass(%s) AS t", ("logs_" + day.strftime("%Y%m%d"),))[0]["t"]


def test_archive_setting_checked(db):
    src = add_source(db, None)
    for bad in ("relative/dir", "s3://Bad_Bucket/prefix", "s3://ok-bucket/pre fix", "ftp://x/y"):
        r = sluice_cli(db, "source", "set", src.name, "--archive", bad, check=False)
        assert r.returncode == 2, (bad, r.stdout, r.stderr)
    assert db.query("SELECT archive FROM sources WHERE id = %s", (src.id,))[0]["archive"] is None
    r = sluice_cli(db, "archive", "restore", "--source", src.name, "--day", "2026-01-01",
                   check=False)
    assert r.returncode == 1 and "give --from DIR" in r.stderr


S3RVER_JS = r"""
const S3rver = require('s3rver');
new S3rver({address: '127.0.0.1', port: 0, silent: true, directory: process.argv[2],
            configureBuckets: [{name: 'sluice-archive'}]}).run((err, addr) => {
  if (err) { console.error(err); process.exit(1); }
  console.log('PORT ' + addr.port);
});
setTimeout(() => process.exit(0), 600000); // never outlives a stuck test
"""


@pytest.fixture
def s3rver(workdir):
    """An S3-compatible server from the npm registry (s3rver: it checks the access key id
    S3RVER and the x-amz-content-sha256 header, not the SigV4 signature itself) on
    127.0.0.1; yields (endpoint, data directory)."""
    mods = npm_require("s3rver@^3")
    data = os.path.join(workdir, "s3rver-data")
    script = os.path.join(workdir, "s3rver.js")
    with open(script, "w") as f:
        f.write(S3RVER_JS)
    proc = subprocess.Popen(["node", script, data], stdout=subprocess.PIPE, text=True,
                            env=dict(os.environ, NODE_PATH=mods))
    try:
        line = proc.stdout.readline()
        assert line.startswith("PORT "), f"s3rver did not start: {line!r}"
        yield f"http://127.0.0.1:{int(line.split()[1])}", data
    finally:
        proc.terminate()
        proc.wait(timeout=10)


S3_ENV = {"AWS_ACCESS_KEY_ID": "S3RVER", "AWS_SECRET_ACCESS_KEY": "S3RVER",
          "SLUICE_ARCHIVE_S3_REGION": "us-east-1"}


def test_archive_to_s3_round_trip(db, sluice, s3rver):
    endpoint, data = s3rver
    env = dict(S3_ENV, SLUICE_ARCHIVE_S3_ENDPOINT=endpoint)
    src = add_source(db, None, "--retention-days", "2")
    sluice_cli(db, "source", "set", src.name, "--archive", "s3://sluice-archive/logs/prod")
    day = (datetime.datetime.now(UTC) - datetime.timedelta(days=5)).date()
    day_partition(db, day)
    h7 = datetime.datetime.combine(day, datetime.time(7), UTC)
    put_hour(db, src, BASE + 3000, h7, 12, raw=True)
    original = db.query("SELECT * FROM logs WHERE source_id = %s ORDER BY id", (src.id,))

    s = sluice(SLUICE_RETENTION_PAUSE_MS="0", **env)
    wait_for(lambda: db.count(src.id) == 0, 30, what="the S3-archived hour's rows to go")
    dt = day.isoformat()
    rec = db.query("SELECT path, nrows, bytes, sha256 FROM archive_hours WHERE source_id = %s",
                   (src.id,))
    key = f"logs/prod/{src.name}/dt={dt}/{dt}-07.tsv.gz"
    assert [(r["path"], r["nrows"]) for r in rec] == [(f"s3://sluice-archive/{key}", 12)]
    # the object as the S3 server stored it, byte for byte what was verified
    stored = open(os.path.join(data, "sluice-archive", key + "._S3rver_object"), "rb").read()
    assert len(stored) == rec[0]["bytes"]
    assert hashlib.sha256(stored).hexdigest() == rec[0]["sha256"]
    assert gzip.decompress(stored).count(b"\n") == 12
    assert s.metric("sluice_archive_files_total") == 1

    # restore reads the objects back (SigV4 GETs) and gives the same rows
    r = subprocess.run([SLUICE, "archive", "restore", "--source", src.name, "--day", dt],
                       env=dict(os.environ, DATABASE_URL=db.url, **env), capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0 and "12 rows restored" in r.stdout, r.stdout + r.stderr
    assert db.query("SELECT * FROM logs WHERE source_id = %s ORDER BY id", (src.id,)) == original


def test_archive_to_s3_refused_keeps_rows(db, sluice, s3rver):
    endpoint, _ = s3rver
    src = add_source(db, None, "--retention-days", "2")
    sluice_cli(db, "source", "set", src.name, "--archive", "s3://sluice-archive/bad-keys")
    day = (datetime.datetime.now(UTC) - datetime.timedelta(days=6)).date()
    day_partition(db, day)
    put_hour(db, src, BASE + 4000, datetime.datetime.combine(day, datetime.time(1), UTC), 3)
    # s3rver checks the access key id (not a SigV4 signature): an unknown key is refused
    s = sluice(SLUICE_RETENTION_PAUSE_MS="0", SLUICE_ARCHIVE_S3_ENDPOINT=endpoint,
               **dict(S3_ENV, AWS_ACCESS_KEY_ID="NOT-A-KEY"))
    wait_for(lambda: s.metric("sluice_retention_passes_total") >= 1, 20, what="the pass")
    assert s.metric("sluice_archive_failures_total") >= 1
    assert "archive S3 upload refused" in s.log_tail(200) and "status=403" in s.log_tail(200)
    assert db.count(src.id) == 3
    assert db.query("SELECT count(*) AS n FROM archive_hours WHERE source_id = %s",
                    (src.id,))[0]["n"] == 0
