"""Several `sluice serve` nodes on one PostgreSQL behind a real haproxy (issue 15).

Three nodes share the database; Debian's haproxy (config written here, 127.0.0.1 only)
spreads drain POSTs over them round-robin and checks /healthz. The nodes are shared by
the tests of this file. What is proven:
- ingest is spread (every node's writer committed rows: log_commits.node_id);
- a node SIGKILLed mid-load loses nothing acknowledged: while every writer is held at the
  commit-order lock (so acknowledged frames sit in the spools only), one node is killed;
  the sender retries what was not acknowledged through haproxy; the node comes back on
  its spool and drains it; every 2xx frame is in PostgreSQL exactly once;
- live tail across nodes: a tail on node A gets the lines posted to B and C, each once,
  and a resume on another node with Last-Event-ID goes on exactly where it stopped; a
  stream that stops reading while other nodes store lines gets lines + `missed` = every
  matching line;
- the commit-number race: a commit numbered before another but not yet committed holds
  the later one back (the number is taken under the commit-order lock), so the tail
  never passes it;
- alert windows are exact across nodes: a threshold fed from all three fires once at
  its count;
- search answers the same from every node.
"""
import http.client
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time

import psycopg2
import pytest

from conftest import (LOGPLEX_CT, Server, add_read_token, add_source, api_get, basic_auth,
                      free_port, frame_body, heroku_line, wait_for)
from test_alerts import alerts, apply_rules, hook
from test_tail_isolation import open_ok, pump_until

NODES = 3
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
COMMIT_LOCK = 7355002  # sl_commit_stamp's advisory lock (drain/db.c)
ALERT_RULE = "mn-threshold"


class Haproxy:
    """haproxy in the foreground on a free 127.0.0.1 port, round-robin over the nodes'
    plain HTTP ports, /healthz checked every 100 ms; a stats socket to move a node that
    came back on new ports."""

    def __init__(self, workdir, nodes):
        if not os.access(HAPROXY, os.X_OK):
            pytest.fail("haproxy is not installed: run deploy/deps.sh")
        self.dir = tempfile.mkdtemp(prefix="haproxy.", dir=workdir)
        self.port = free_port()
        self.sock = os.path.join(self.dir, "admin.sock")
        servers = "\n".join(f"    server n{i} 127.0.0.1:{n.http_port} check"
                            for i, n in enumerate(nodes))
        cfg = f"""global
    stats socket {self.sock} mode 600 level admin
    maxconn 2000
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    retries 2
    option redispatch
frontend drain
    bind 127.0.0.1:{self.port}
    default_backend nodes
backend nodes
    balance roundrobin
    option httpchk
    http-check send meth GET uri /healthz
    default-server inter 100ms fall 1 rise 1
{servers}
"""
        self.cfg = os.path.join(self.dir, "haproxy.cfg")
        with open(self.cfg, "w") as f:
            f.write(cfg)
        r = subprocess.run([HAPROXY, "-c", "-f", self.cfg], capture_output=True, text=True)
        assert r.returncode == 0, f"haproxy -c: {r.stdout}{r.stderr}"
        self.log = open(os.path.join(self.dir, "haproxy.log"), "wb")
        self.proc = subprocess.Popen([HAPROXY, "-db", "-f", self.cfg], stdout=self.log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_for(lambda: self.up() == len(nodes), 10, what="haproxy to see every node up")

    def admin(self, cmd):
        s = socket.socket(socket.AF_UNIX)
        try:
            s.connect(self.sock)
            s.sendall(cmd.encode() + b"\n")
            out = b""
            while True:
                b = s.recv(65536)
                if not b:
                    return out.decode()
                out += b
        finally:
            s.close()

    def up(self):
        """How many nodes haproxy's checks see up."""
        try:
            rows = self.admin("show stat").splitlines()
        except OSError:
            return 0
        return sum(1 for r in rows if r.startswith("nodes,n") and ",UP," in r)

    def move(self, i, port):
        out = self.admin(f"set server nodes/n{i} addr 127.0.0.1 port {port}")
        assert "changed" in out or "no need" in out, out

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


class Cluster:
    pass


@pytest.fixture(scope="module")
def cluster(db, tls, workdir):
    c = Cluster()
    c.db = db
    c.alert_src = add_source(db, "mn-alert")
    # rules before the nodes start: each loads them at start (no wait for the NOTIFY)
    apply_rules(db, tempfile.mkdtemp(dir=workdir), {
        "destinations": {"sink": hook("https://127.0.0.1:9/hook")},
        "rules": [{"name": ALERT_RULE, "pattern": "mn-boom", "condition": "threshold",
                   "count": 6, "window": 300, "group_by": "source", "sources": ["mn-alert"],
                   "severity": "error", "notify": ["sink"]}]})
    c.nodes = [Server(db, tls, workdir, {"SLUICE_ALERT_ALLOW_PRIVATE": "127.0.0.1"})
               for _ in range(NODES)]
    c.lb = None
    try:
        for n in c.nodes:
            n.start()
        c.lb = Haproxy(workdir, c.nodes)
        c.src = c.nodes[0].add_source("mn-a")
        for n in c.nodes[1:]:
            n.wait_source(c.src)
        c.tok = add_read_token(db, "mn-read", "--all")
        yield c
    finally:
        if c.lb:
            c.lb.stop()
        for n in c.nodes:
            n.stop()


def post_lb(c, frame_id, lines, timeout=10):
    """One drain POST through haproxy on a new connection (round-robin per connection);
    returns the status, or None when the connection failed."""
    h = http.client.HTTPConnection("127.0.0.1", c.lb.port, timeout=timeout)
    try:
        h.request("POST", "/logs", body=frame_body(lines),
                  headers={"Content-Type": LOGPLEX_CT, "Authorization": basic_auth(c.src),
                           "Logplex-Msg-Count": str(len(lines)), "Logplex-Frame-Id": frame_id,
                           "Connection": "close"})
        r = h.getresponse()
        r.read()
        return r.status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        h.close()


def hold_commit_lock(db):
    """A connection holding the writers' commit-order lock until it rolls back."""
    conn = psycopg2.connect(db.url)
    cur = conn.cursor()
    cur.execute("SELECT pg_advisory_xact_lock(%s)", (COMMIT_LOCK,))
    return conn


def writers_waiting(db):
    return db.query("SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND "
                    "objid = %s AND NOT granted", (COMMIT_LOCK,))[0]["n"]


def test_sigkill_mid_load_loses_nothing_acknowledged(cluster):
    c = cluster
    acked, stop = {}, threading.Event()
    seq = [0]

    def sender():
        while not stop.is_set():
            seq[0] += 1
            fid = f"mn-{seq[0]:06d}"
            lines = [heroku_line(f"load {fid} {k}") for k in range(3)]
            for _ in range(40):  # a logplex-like sender retries the same frame
                st = post_lb(c, fid, lines)
                if st is not None and 200 <= st < 300:
                    acked[fid] = len(lines)
                    break
                time.sleep(0.05)

    t = threading.Thread(target=sender)
    lock = hold_commit_lock(c.db)
    try:
        t.start()
        wait_for(lambda: len(acked) >= 60, 20, what="60 acknowledged frames")
        wait_for(lambda: writers_waiting(c.db) >= 2, 10, what="writers at the commit lock")
        victim = c.nodes[1]
        depth = victim.metric("sluice_spool_depth_bytes")
        victim.kill()
        n_at_kill = len(acked)
        wait_for(lambda: len(acked) >= n_at_kill + 60, 20, what="load going on without it")
    finally:
        lock.rollback()
        lock.close()
    assert depth > 0, "the killed node held no acknowledged frame in its spool"
    victim.start()  # same spool directory, new ports
    c.lb.move(1, victim.http_port)
    wait_for(lambda: c.lb.up() == NODES, 10, what="haproxy to see the node back")
    wait_for(lambda: len(acked) >= n_at_kill + 150, 20, what="load with the node back")
    stop.set()
    t.join(30)
    assert not t.is_alive()
    # its spool drains: every acknowledged frame is stored, exactly once
    wait_for(lambda: victim.metric("sluice_spool_depth_bytes") == 0, 20,
             what="the restarted node's spool to drain")

    def stored():
        rows = c.db.query("SELECT frame_id, count(*) AS n FROM logs WHERE source_id = %s "
                          "GROUP BY frame_id", (c.src.id,))
        return {r["frame_id"]: r["n"] for r in rows}
    wait_for(lambda: set(acked) <= set(stored()), 20, what="every acknowledged frame stored")
    got = stored()
    assert {f: got[f] for f in acked} == acked, "an acknowledged frame stored twice or cut"
    assert all(n == 3 for n in got.values()), "a frame stored more than once"
    nodes = c.db.query("SELECT node_id, count(*) AS n FROM log_commits WHERE source_id = %s "
                       "GROUP BY node_id", (c.src.id,))
    assert len(nodes) == NODES, f"ingest not spread over the nodes: {nodes}"


def test_tail_on_one_node_sees_the_others_and_resumes_on_another(cluster):
    c = cluster
    a, b, d = c.nodes
    src = a.add_source("mn-tail")
    for n in (b, d):
        n.wait_source(src)
    q = {"source": src.name}
    s1 = open_ok(a, c.tok, params=q)
    sent = []

    def post_to(node, k):
        msgs = [f"tail {k}-{i}" for i in range(5)]
        r = node.post(src, frame_body([heroku_line(m) for m in msgs]))
        assert r.status == 204, r
        sent.extend(msgs)

    for k in range(6):
        post_to((b, d)[k % 2], k)
    got1 = lambda: [e["data"]["message"] for e in s1.messages()]  # noqa: E731
    assert pump_until([s1], lambda: len(got1()) >= len(sent), 15), (len(got1()), len(sent))
    assert sorted(got1()) == sorted(sent), "node A's tail missed or repeated other nodes' lines"
    # stop in the middle of the posts, resume on another node with the last id received
    for k in range(6, 12):
        post_to((a, b, d)[k % 3], k)
    pump_until([s1], lambda: len(got1()) >= len(sent) - 10, 15)
    first = s1.messages()
    s1.close()
    for k in range(12, 18):
        post_to((a, b, d)[k % 3], k)
    s2 = open_ok(d, c.tok, params=q, last_event_id=first[-1]["id"])
    got2 = lambda: [e["data"]["message"] for e in s2.messages()]  # noqa: E731
    assert pump_until([s2], lambda: len(first) + len(got2()) >= len(sent), 15)
    pump_until([s2], lambda: False, 0.5)  # nothing more may come
    s2.close()
    both = [e["data"]["message"] for e in first] + got2()
    assert sorted(both) == sorted(sent), "the resume on another node skipped or repeated lines"
    assert not [e for e in s2.events if e["event"] != "message"], s2.events


def test_missed_is_exact_with_lines_from_other_nodes(cluster):
    """A stream on node A that stops reading while nodes B and C store lines: once it reads
    again, the lines it got plus the `missed` counts are every matching line, none twice."""
    c = cluster
    a, b, d = c.nodes
    src = a.add_source("mn-slow")
    for n in (b, d):
        n.wait_source(src)
    s = open_ok(a, c.tok, params={"source": src.name, "q": "slowword"}, rcvbuf=4096)
    pad = "x" * 1000
    total = 0

    def flood(ks):
        nonlocal total
        for k in ks:
            msgs = [f"slowword {k}-{i} {pad}" if i % 10 else f"other {k}-{i} {pad}"
                    for i in range(400)]
            r = (b, d)[k % 2].post(src, frame_body([heroku_line(m) for m in msgs]))
            assert r.status == 204, r
            total += 360
    try:
        flood(range(12))
        wait_for(lambda: c.db.count(src.id) >= 12 * 400, 30, what="the flood stored")
        time.sleep(3)  # past the 1 s grace: what comes next is skipped and counted
        flood(range(12, 16))
        wait_for(lambda: c.db.count(src.id) >= 16 * 400, 30, what="the flood stored")
        s.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)

        def accounted():
            return (len(s.messages()) + sum(e["data"]["missed"] for e in s.events
                                            if e["event"] == "missed")) >= total
        assert pump_until([s], accounted, 40), (len(s.messages()), total)
        pump_until([s], lambda: False, 0.5)  # nothing more may come
        missed = [e for e in s.events if e["event"] == "missed"]
        got = [e["data"]["message"].split()[1] for e in s.messages()]
        assert missed, "no `event: missed` although the client fell far behind"
        assert len(got) == len(set(got)), "a line sent twice"
        last = None
        for e in s.events:  # each `missed` says after which line it skipped
            if e["event"] == "missed" and last is not None:
                assert e["data"]["after_id"] == last, (e["data"], last)
            last = e["id"] if e["event"] == "message" else last
        assert len(got) + sum(e["data"]["missed"] for e in missed) == total, \
            (len(got), [e["data"] for e in missed], total)
    finally:
        s.close()


def test_commit_numbered_first_but_visible_later_is_not_skipped(cluster):
    """Commit X takes its number, then stalls before COMMIT; a node's writer commits Y
    meanwhile. Y must wait for X (the number is taken under the commit-order lock): had Y
    been numbered after X and visible first, a tail would have read past X's number."""
    c = cluster
    a, b, _ = c.nodes
    src = a.add_source("mn-race")
    b.wait_source(src)
    s = open_ok(a, c.tok, params={"source": src.name})
    x = psycopg2.connect(c.db.url)
    try:
        cur = x.cursor()
        cur.execute("SELECT nextval('logs_id_block_seq') << 20, now()")
        first, t = cur.fetchone()
        cur.execute("INSERT INTO logs (id, received_at, source_id, message) SELECT %s + i, %s, "
                    "%s, 'race x ' || i FROM generate_series(0, 2) i", (first, t, src.id))
        us = "(extract(epoch FROM %s::timestamptz) * 1e6)::bigint"
        cur.execute("SELECT sl_commit_stamp('test', ARRAY[%s::bigint], ARRAY[%s::bigint], "
                    f"ARRAY[%s::bigint], ARRAY[{us}], ARRAY[{us}], ARRAY[3])",
                    (src.id, first, first + 2, t, t))
        x_seq = cur.fetchone()[0]
        r = b.post(src, frame_body([heroku_line("race y")]))
        assert r.status == 204
        wait_for(lambda: writers_waiting(c.db) >= 1 or c.db.count(src.id) >= 1, 10,
                 what="node B's writer at the lock (or Y committed)")
        pump_until([s], lambda: False, 0.5)
        assert s.messages() == [], "a line became visible while an earlier number was open"
        x.commit()
    finally:
        x.close()
    assert pump_until([s], lambda: len(s.messages()) >= 4, 15), s.events
    msgs = [e["data"]["message"] for e in s.messages()]
    assert msgs == ["race x 0", "race x 1", "race x 2", "race y"], msgs
    y_seq = c.db.query("SELECT max(seq) AS s FROM log_commits WHERE source_id = %s",
                       (src.id,))[0]["s"]
    assert y_seq > x_seq
    s.close()


def test_threshold_fed_by_three_nodes_fires_once_at_its_count(cluster):
    c = cluster
    src = c.alert_src
    for n in c.nodes:
        n.wait_source(src)
    for k in range(5):
        r = c.nodes[k % NODES].post(src, frame_body([heroku_line(f"mn-boom {k}")]))
        assert r.status == 204
        wait_for(lambda: c.db.count(src.id) >= k + 1, 10, what="the line stored")
    assert alerts(c.db, ALERT_RULE) == [], "fired below the threshold"
    r = c.nodes[2].post(src, frame_body([heroku_line("mn-boom 5")]))
    assert r.status == 204
    wait_for(lambda: alerts(c.db, ALERT_RULE), 10, what="the alert")
    got = alerts(c.db, ALERT_RULE)
    assert len(got) == 1 and got[0]["count"] == 6 and got[0]["state"] == "firing", got
    r = c.nodes[0].post(src, frame_body([heroku_line("mn-boom 6")]))
    assert r.status == 204
    wait_for(lambda: c.db.count(src.id) >= 7, 10, what="the line stored")
    assert len(alerts(c.db, ALERT_RULE)) == 1, "fired twice"


def test_search_is_the_same_from_every_node(cluster):
    c = cluster
    answers = []
    for n in c.nodes:
        r = api_get(n, "/api/v1/search", {"q": "load", "source": c.src.name, "limit": 200},
                    token=c.tok)
        assert r.status == 200, r
        answers.append([e["id"] for e in r.json()["events"]])
    assert len(answers[0]) == 200 and answers[0] == answers[1] == answers[2]


PER_SOURCE = ("logs", "log_blocks", "log_commits", "ingest_frames")  # docs/scaling.md
REFERENCE = ("sources", "read_tokens", "rules", "destinations")


def test_schema_stays_distributable_by_source(db):
    """docs/scaling.md: the tables a Citus cluster would distribute by source_id keep it in
    every unique key, and have no foreign key except to the reference tables."""
    uniq = db.query("SELECT c.relname AS t, i.indexrelid::regclass::text AS idx, "
                    "bool_or(a.attname = 'source_id') AS has FROM pg_index i "
                    "JOIN pg_class c ON c.oid = i.indrelid JOIN pg_attribute a ON "
                    "a.attrelid = c.oid AND a.attnum = ANY(i.indkey) WHERE i.indisunique AND "
                    "c.relname = ANY(%s) GROUP BY 1, 2", (list(PER_SOURCE),))
    assert uniq and all(r["has"] for r in uniq), uniq
    fks = db.query("SELECT conrelid::regclass::text AS t, confrelid::regclass::text AS ref "
                   "FROM pg_constraint WHERE contype = 'f'")
    bad = [r for r in fks if r["t"] in PER_SOURCE or (r["ref"] in PER_SOURCE)
           or r["ref"] not in REFERENCE]
    assert not bad, bad
