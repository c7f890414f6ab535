"""Live tail isolation between streams (issue 13 item 6, docs/api.md "GET /api/v1/tail").

One stream's slowness costs only that stream. Real sluice, real PostgreSQL, real SSE
clients over HTTPS: a stalled reader connects and never reads. A healthy selective stream's
latency is measured from the POST's 2xx to its event on the stream (docs: 250 ms).

Before the fix (measured on this machine): 50 stalled readers pushed the selective stream's
p50 to seconds; a `Last-Event-ID: 0` replay delayed a live stream for seconds and replayed
at ~140 events/s; unfiltered readers fell behind with no `missed`. The figures of each run
are in the assertion messages.
"""

import base64
import http.client
import json
import select
import socket
import ssl
import time
import urllib.parse

import pytest

from conftest import (LOGPLEX_CT, Server, add_read_token, api_get, frame_body, stamp_commits,
                      store_rows_directly)

# Latency and memory bounds: run alone, after the parallel phase (tests/run_e2e.sh).
pytestmark = pytest.mark.serial

TAIL = "/api/v1/tail"
TARGET = 0.250  # docs/api.md: within 250 ms of the 2xx


def line(msg):
    return f"<190>1 2026-11-22T04:00:00.000000+00:00 host app web.1 - {msg}\n"


class Poster:
    """Drain POSTs over one HTTPS keep-alive connection (Basic auth, logplex body)."""

    def __init__(self, server, src):
        self.server, self.src = server, src
        self.auth = "Basic " + base64.b64encode(f"{src.name}:{src.token}".encode()).decode()
        self.c = None

    def post(self, msgs):
        body = frame_body([line(m) for m in msgs])
        for attempt in range(2):
            if self.c is None:
                self.c = self.server.https_connection(timeout=30)
            try:
                self.c.request("POST", "/logs", body=body,
                               headers={"Content-Type": LOGPLEX_CT, "Authorization": self.auth,
                                        "Logplex-Msg-Count": str(len(msgs))})
                r = self.c.getresponse()
                r.read()
                break
            except (http.client.HTTPException, OSError):
                self.c.close()
                self.c = None
                if attempt:
                    raise
        assert r.status == 204, r.status
        return time.monotonic()

    def close(self):
        if self.c:
            self.c.close()


class Stream:
    """An SSE client over TLS on a non-blocking socket: pump() reads what is there."""

    def __init__(self, server, token, params=None, last_event_id=None, rcvbuf=None):
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        raw.settimeout(10)
        raw.connect(("127.0.0.1", server.https_port))
        ctx = ssl.create_default_context(cafile=server.tls.cert)
        self.sock = ctx.wrap_socket(raw, server_hostname="localhost")
        path = TAIL + ("?" + urllib.parse.urlencode(params) if params else "")
        h = f"GET {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n"
        if last_event_id is not None:
            h += f"Last-Event-ID: {last_event_id}\r\n"
        self.sock.sendall((h + "\r\n").encode())
        self.buf = b""
        self.events = []  # (event, id, data, t_received)
        self.closed = False
        self.status = None
        self.sock.setblocking(False)

    def fileno(self):
        return self.sock.fileno()

    def pump(self):
        """Reads everything available now; parses events. False at EOF."""
        while not self.closed:
            try:
                b = self.sock.recv(1 << 20)
            except (ssl.SSLWantReadError, BlockingIOError):
                break
            except OSError:
                b = b""
            if not b:
                self.closed = True
                break
            self.buf += b
        now = time.monotonic()
        if self.status is None and b"\r\n\r\n" in self.buf:
            head, self.buf = self.buf.split(b"\r\n\r\n", 1)
            self.status = int(head.split()[1])
        if self.status is not None:
            while b"\n\n" in self.buf:
                block, self.buf = self.buf.split(b"\n\n", 1)
                ev = {"event": "message"}
                for ln in block.decode().split("\n"):
                    if ln.startswith(":") or not ln:
                        continue
                    k, _, v = ln.partition(":")
                    ev[k] = v[1:] if v.startswith(" ") else v
                if "data" in ev:
                    ev["data"] = json.loads(ev["data"])
                    ev["t"] = now
                    self.events.append(ev)
        return not self.closed

    def messages(self):
        return [e for e in self.events if e["event"] == "message"]

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def pump_until(streams, pred, timeout):
    """Pumps every stream until pred() or timeout; returns pred()."""
    deadline = time.monotonic() + timeout
    while not pred():
        left = deadline - time.monotonic()
        if left <= 0:
            return pred()
        live = [s for s in streams if not s.closed]
        if not live:
            return pred()
        pending = [s for s in live if s.sock.pending()]
        if not pending:
            pending, _, _ = select.select(live, [], [], min(left, 0.05))
        for s in pending:
            s.pump()
    return True


def open_ok(server, token, **kw):
    s = Stream(server, token, **kw)
    assert pump_until([s], lambda: s.status is not None and b"retry:" not in s.buf, 5)
    assert s.status == 200, s.status
    return s


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


class World:
    pass


@pytest.fixture(scope="module")
def world(db, tls, workdir):
    w = World()
    w.db = db
    w.server = Server(db, tls, workdir, {"SLUICE_MAX_TAIL_CLIENTS": 200,
                                         "SLUICE_TAIL_REPLAY": REPLAY_MAX})
    w.server.start()
    try:
        w.src = w.server.add_source("iso-a")
        w.tok = add_read_token(db, "iso-all", "--all")
        w.poster = Poster(w.server, w.src)
        yield w
    finally:
        w.poster.close()
        w.server.stop()


def live_latencies(w, healthy, word, rounds, flood, pad, others=()):
    """Posts `rounds` bodies of `flood` lines, one of them matching `word` on the healthy
    stream; returns the latencies (s) from each 2xx to the event on the stream."""
    lat = []
    for k in range(rounds):
        msgs = [f"flood {k}-{i} {pad}" for i in range(flood)]
        msgs[flood // 2] = f"{word} {k} {pad}"
        before = len(healthy.messages())
        t0 = w.poster.post(msgs)
        ok = pump_until([healthy, *others], lambda: len(healthy.messages()) > before, 15)
        assert ok, f"no event for round {k} within 15 s"
        ev = healthy.messages()[before]
        assert ev["data"]["message"].startswith(f"{word} {k} "), ev
        lat.append(max(0.0, ev["t"] - t0))
    return lat


def test_stalled_readers_do_not_delay_a_selective_stream(world):
    """50 unfiltered readers that never read: the selective stream's p95 stays < 250 ms."""
    w = world
    stalled = [Stream(w.server, w.tok, rcvbuf=4096) for _ in range(50)]
    healthy = open_ok(w.server, w.tok, params={"q": "isoword"})
    try:
        lat = live_latencies(w, healthy, "isoword", 30, 300, "p" * 400)
        p50, p95 = pct(lat, 50), pct(lat, 95)
        msg = (f"selective stream with 50 stalled readers: p50 {p50 * 1000:.0f} ms, "
               f"p95 {p95 * 1000:.0f} ms, max {max(lat) * 1000:.0f} ms over {len(lat)} lines")
        print(msg)
        assert p95 < TARGET, msg
    finally:
        for s in stalled:
            s.close()
        healthy.close()


REPLAY_ROWS = 150000  # stored for the replay test, straight into PostgreSQL
REPLAY_MAX = 100000   # SLUICE_TAIL_REPLAY of the module's server


def store_rows(db, source_id, n, per_block=1000):
    """n rows of source_id stored as the writer would (conftest.store_rows_directly); the
    server restarts after it so its writer takes a newer id block. Returns the ids."""
    return store_rows_directly(db, source_id, n,
                               "'replayline ' || i || ' ' || repeat('r', 150)", per_block)


def test_replay_from_zero_is_bulk_and_does_not_delay_live(world):
    """A `Last-Event-ID: 0` replay of 150 000 stored lines: it reaches back SLUICE_TAIL_REPLAY
    lines (`missed` for the older ones), goes at thousands of events/s, and a live stream
    keeps its 250 ms meanwhile."""
    w = world
    rsrc = w.server.add_source("iso-replay")
    rtok = add_read_token(w.db, "iso-replay-only", "--source", rsrc.name)
    ids = store_rows(w.db, rsrc.id, REPLAY_ROWS)
    w.poster.close()
    w.server.restart()
    healthy = open_ok(w.server, w.tok, params={"q": "liveword"})
    try:
        t0 = time.monotonic()
        replay = Stream(w.server, rtok, last_event_id=0)
        lat = live_latencies(w, healthy, "liveword", 15, 20, "l" * 100, others=[replay])

        def replay_done():
            m = replay.messages()
            return m and int(m[-1]["id"]) == ids[-1]
        done = pump_until([replay, healthy], replay_done, 60)
        got = replay.messages()
        took = (got[-1]["t"] if got else time.monotonic()) - t0
        rate = len(got) / took
        p95 = pct(lat, 95)
        msg = (f"replay from 0 over {REPLAY_ROWS} stored lines: {len(got)} events in "
               f"{took:.2f} s ({rate:.0f} events/s); live stream meanwhile p50 "
               f"{pct(lat, 50) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms")
        print(msg)
        assert done, msg
        assert p95 < TARGET, msg
        assert rate >= 2000, msg
        got_ids = [int(e["id"]) for e in got]
        missed = [e for e in replay.events if e["event"] == "missed"]
        assert len(missed) == 1 and replay.events[0] is missed[0], (msg, missed[:2])
        d = missed[0]["data"]
        assert d["after_id"] == "0"
        # the replay reaches back about SLUICE_TAIL_REPLAY lines, then every line, in order
        assert got_ids == [i for i in ids if i > int(d["resume_id"])], msg
        assert REPLAY_MAX - 1000 <= len(got) <= REPLAY_MAX, msg
        # `missed` counts at least the lines it skipped (every line of the source there)
        assert d["missed"] >= REPLAY_ROWS - len(got), d
        replay.close()
    finally:
        healthy.close()


def test_reader_that_stops_gets_missed_and_others_keep_up(world):
    """50 readers that read, one (of another source, with 15 MB of lines) that stops: the
    readers that read get every line within a second of the last 2xx and no `missed`; the
    stopped one, when it reads again, gets its lines in order and `missed` for the rest
    (sent + missed = every matching line), or was cut."""
    w = world
    big = w.server.add_source("iso-big")
    bp = Poster(w.server, big)
    readers = [open_ok(w.server, w.tok, params={"source": w.src.name}) for _ in range(50)]
    stopped = open_ok(w.server, w.tok, params={"source": big.name}, rcvbuf=4096)
    try:
        total = nbig = 0
        t_last = None
        for k in range(10):
            msgs = [f"many {k}-{i} " + "m" * 100 for i in range(300)]
            t_last = w.poster.post(msgs)
            total += len(msgs)
            bp.post([f"big {k}-{i} " + "b" * 10000 for i in range(150)])
            nbig += 150
            pump_until(readers, lambda: False, 0.05)
        got_all = pump_until(readers, lambda: all(len(r.messages()) >= total for r in readers),
                             30)
        behind = [len(r.messages()) for r in readers]
        t_done = max(r.messages()[-1]["t"] for r in readers if r.messages())
        msg = (f"50 reading streams beside a stopped one: {min(behind)}..{max(behind)} of "
               f"{total} lines; the last arrived {(t_done - t_last) * 1000:.0f} ms after the "
               f"last 2xx")
        print(msg)
        assert got_all, msg
        assert not any(e["event"] == "missed" for r in readers for e in r.events), msg
        assert t_done - t_last < 1.0, msg
        last = w.db.query("SELECT max(id) AS m FROM logs WHERE source_id = %s", (big.id,))[0]["m"]
        # the stopped reader reads again: events in order, a `missed` accounting for the rest
        stopped.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)

        def stopped_done():
            if stopped.closed:
                return True
            e = stopped.events[-1] if stopped.events else None
            return e is not None and (int(e["id"]) == last if e["event"] == "message"
                                      else int(e["data"]["resume_id"]) >= last)
        assert pump_until([stopped], stopped_done, 30), "the stopped reader never caught up"
        missed = [e for e in stopped.events if e["event"] == "missed"]
        sent = len(stopped.messages())
        skipped = sum(e["data"]["missed"] for e in missed)
        print(f"stopped reader: {sent} events, {len(missed)} missed notices for {skipped} "
              f"lines, closed={stopped.closed}")
        ids = [int(e["id"]) for e in stopped.messages()]
        assert ids == sorted(ids)
        if not stopped.closed:
            assert missed, f"a reader that stopped got no `missed` ({sent} of {nbig} sent)"
            assert sent + skipped == nbig, (sent, skipped, nbig)
    finally:
        for r in readers:
            r.close()
        stopped.close()
        bp.close()


def test_replay_reads_a_block_whose_ids_span_several_id_blocks(world):
    """A block's ids may span more than one id block (2^20): the writer's reservation ran
    out inside it while other nodes reserved, or migration 3's hourly backfill. The replay
    reads blocks over a bounded max_id range; such a wide block, cut off by that bound,
    used to lose its rows from the replay. The replay now follows the commit log, not the
    blocks; this keeps the shape, the rows of X in two commits around Y's. Here: a wide
    block X (ids in id blocks b1 and b3) and a normal block Y of 3 000 rows (id block b2)
    between them, so the replay's first window ends at Y's last id, more than 2^20 before
    X's. Every row must arrive, in order."""
    w = world
    src = w.server.add_source("iso-wide")
    tok = add_read_token(w.db, "iso-wide-only", "--source", src.name)
    b1, b2, b3 = (w.db.query("SELECT nextval('logs_id_block_seq') AS b")[0]["b"]
                  for _ in range(3))
    b3 = w.db.query("SELECT setval('logs_id_block_seq', %s) AS b", (b3 + 2,))[0]["b"]
    t = w.db.query("SELECT now() - interval '1 minute' AS t")[0]["t"]
    x_ids = [b1 << 20, (b1 << 20) + 1, b3 << 20]
    y_ids = [(b2 << 20) + i for i in range(3000)]
    w.db.query("INSERT INTO logs (id, received_at, source_id, facility, severity, hostname, "
               "app_name, procid, message) SELECT i, %s, %s, 23, 6, 'host', 'app', 'web.1', "
               "'wideline ' || i FROM unnest(%s::bigint[]) i", (t, src.id, x_ids + y_ids))
    w.db.query("INSERT INTO log_blocks VALUES (%s, %s, %s, %s, %s, %s, 8, '\\xff'::bytea), "
               "(%s, %s, %s, %s, %s, %s, 8, '\\xff'::bytea)",
               (src.id, t, t, x_ids[0], x_ids[-1], len(x_ids),
                src.id, t, t, y_ids[0], y_ids[-1], len(y_ids)))
    w.db.query("ANALYZE log_blocks")
    # committed in id order: X's first two rows, Y, X's last row
    stamp_commits(w.db, src.id, [(x_ids[0], x_ids[1]), (y_ids[0], y_ids[-1]),
                                 (x_ids[2], x_ids[2])], t)
    w.poster.close()
    w.server.restart()
    replay = Stream(w.server, tok, last_event_id=0)
    want = sorted(x_ids + y_ids)
    try:
        done = pump_until([replay], lambda: len(replay.messages()) >= len(want)
                          or (replay.messages() and int(replay.messages()[-1]["id"]) == want[-1]
                              and len(replay.messages()) < len(want)), 30)
        got = [int(e["id"]) for e in replay.messages()]
        missing = sorted(set(want) - set(got))
        assert done and got == want, (f"{len(got)} of {len(want)} rows replayed; missing "
                                      f"{missing[:5]}")
        # A search reads the same overlapping blocks: each row once.
        r = api_get(w.server, "/api/v1/search", {"q": "wideline", "source": src.name,
                                                  "since": "1h", "limit": 10000}, token=tok)
        assert r.status == 200, r.body[:300]
        ids = [int(e["id"]) for e in r.json()["events"]]
        assert sorted(ids) == want, f"{len(ids)} events for {len(want)} rows"
    finally:
        replay.close()
