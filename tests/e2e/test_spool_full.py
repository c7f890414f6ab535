"""Issue 13 item 2: a full spool disk must not wedge sluice.

The spool lives on an 8 MiB tmpfs (smaller than one default 64 MiB segment). With
PostgreSQL down, posts fill the disk until the drain answers 503. Once PostgreSQL is
back and the writer has caught up, the server must answer 204 again without a restart
(and after a restart made while the disk was full), /readyz and /metrics must say
"full" while appends are refused, and the log must say so once per state change.
Nothing acknowledged may be lost.

Mounting needs root (CI runs as root). Where the mount is impossible the tests fail
with the reason: they must not pass without having run.
"""

import http.client
import os
import re
import ssl
import subprocess
import tempfile
import time

import pytest

from conftest import basic_auth, frame_body, heroku_line, wait_for

FS_BYTES = 8 << 20
LINES = 400  # ~60 KiB bodies: the disk fills after ~130 posts
SEQ = re.compile(r"seq=([a-z]\d+-\d+)")


@pytest.fixture
def small_fs(workdir):
    mnt = tempfile.mkdtemp(prefix="spoolfs.", dir=workdir)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={FS_BYTES},mode=0700", "tmpfs", mnt],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.fail(f"cannot mount a small tmpfs for the spool (needs root): {r.stderr.strip()}")
    try:
        yield os.path.join(mnt, "spool")
    finally:
        subprocess.run(["umount", "-l", mnt], capture_output=True)


class Poster:
    """One keep-alive HTTPS connection posting numbered bodies; remembers what got 204."""

    def __init__(self, server, src):
        self.server, self.src = server, src
        self.conn = None
        self.acked = set()
        self.n = 0

    def post(self, tag):
        self.n += 1
        r = self.n
        body = frame_body(heroku_line(f"full seq={tag}{r}-{i} " + "q" * 100) for i in range(LINES))
        if self.conn is None:
            ctx = ssl.create_default_context(cafile=self.server.tls.cert)
            self.conn = http.client.HTTPSConnection("127.0.0.1", self.server.https_port,
                                                    context=ctx, timeout=10)
        try:
            self.conn.request("POST", "/logs", body=body,
                              headers={"Content-Type": "application/logplex-1",
                                       "Authorization": basic_auth(self.src)})
            resp = self.conn.getresponse()
            resp.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        if resp.will_close:
            self.close()
        if resp.status == 204:
            self.acked |= {f"{tag}{r}-{i}" for i in range(LINES)}
        return resp.status, resp.getheader("Retry-After")

    def close(self):
        if self.conn is not None:
            self.conn.close()
        self.conn = None


def fill_until_503(poster, tag, limit=400):
    statuses = []
    for _ in range(limit):
        st, retry_after = poster.post(tag)
        statuses.append(st)
        if st == 503:
            assert retry_after is not None and retry_after.strip().isdigit(), retry_after
            return statuses
    pytest.fail(f"no 503 after {limit} posts on a {FS_BYTES}-byte spool: {statuses[-5:]}")


def stored(db, src):
    rows = db.query("SELECT message FROM logs WHERE source_id = %s", (src.id,))
    return [SEQ.search(r["message"]).group(1) for r in rows]


def assert_exactly_once(db, src, acked, timeout=60):
    wait_for(lambda: acked <= set(stored(db, src)), timeout, interval=0.5,
             what=f"{len(acked)} acknowledged lines in PostgreSQL")
    seqs = stored(db, src)
    assert len(seqs) == len(set(seqs)), f"{len(seqs) - len(set(seqs))} lines stored twice"


def log_count(server, needle):
    with open(server.log_path, "rb") as f:
        return f.read().decode("utf-8", "replace").count(needle)


def assert_full_reported(s):
    r = s.get("/readyz")
    assert r.status == 503, r
    assert b"spool disk full" in r.body, r.body
    assert s.metric("sluice_spool_full") == 1
    assert s.metric("sluice_spool_fs_free_bytes") < 1 << 20


def test_full_spool_disk_recovers_without_restart(sluice, db, pg, small_fs):
    s = sluice(spool_dir=small_fs)
    src = s.add_source()
    p = Poster(s, src)
    pg.stop()
    try:
        statuses = fill_until_503(p, "a")
        assert set(statuses[:-1]) == {204}, statuses
        # Refused again and again while the disk is full: one log line, not one per request.
        for _ in range(20):
            assert p.post("a")[0] == 503
        assert_full_reported(s)
    finally:
        pg.start()
    assert_exactly_once(db, src, p.acked)
    wait_for(lambda: p.post("b")[0] == 204, 30, interval=0.5,
             what="204 again once the writer caught up (no restart)")
    wait_for(lambda: s.get("/readyz").status == 200, 20, interval=0.5, what="/readyz 200 again")
    assert s.metric("sluice_spool_full") == 0
    assert s.metric("sluice_spool_fs_free_bytes") > FS_BYTES // 2
    assert log_count(s, 'msg="spool disk full"') == 1, s.log_tail()
    assert log_count(s, 'msg="spool has room again"') == 1, s.log_tail()
    assert log_count(s, "spool write failed") <= 1, s.log_tail()
    p.close()
    assert_exactly_once(db, src, p.acked)


def test_full_spool_disk_recovers_after_restart(sluice, db, pg, small_fs):
    s = sluice(spool_dir=small_fs)
    src = s.add_source()
    p = Poster(s, src)
    pg.stop()
    try:
        fill_until_503(p, "a")
        p.close()
        s.stop()
    finally:
        pg.start()
    s.start()  # on a full disk: the last segment fills it
    assert_exactly_once(db, src, p.acked)
    wait_for(lambda: p.post("b")[0] == 204, 30, interval=0.5,
             what="204 again after a restart on a full disk")
    wait_for(lambda: s.get("/readyz").status == 200, 20, interval=0.5, what="/readyz 200 again")
    assert s.metric("sluice_spool_full") == 0
    p.close()
    assert_exactly_once(db, src, p.acked)
