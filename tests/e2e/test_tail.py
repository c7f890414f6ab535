"""Live tail end to end (issue 3, docs/api.md "GET /api/v1/tail"): Server-Sent Events over a
raw socket (no third-party client), against the real server and PostgreSQL.

Matching lines posted after the stream opened arrive in id order as EVENT JSON and
non-matching ones never; a stream resumed with Last-Event-ID (or last_id) gets exactly
the matching lines it missed, without duplicates, then goes live; a token scoped to one
source never shows another's lines; keep-alive comments are comments, not events; a
client that stops reading is told `event: missed` with counts that agree with the
database and with a search over the same id range.
"""

import json
import socket
import time
import urllib.parse

import pytest

import query_oracle
from conftest import Server, add_read_token, api_get, frame_body, wait_for

TAIL = "/api/v1/tail"
TAIL_BUFFER = 64 * 1024  # SLUICE_TAIL_BUFFER of the module's server
MAX_LATENCY = 3.0        # seconds from the 204 to the event (the 250 ms target is a benchmark)


def line(msg, app="app", proc="web.1"):
    return f"<190>1 2026-11-22T04:00:00.000000+00:00 host {app} {proc} - {msg}\n"


class SSE:
    """A minimal text/event-stream client on a raw socket. Every read is bounded."""

    def __init__(self, server, params=None, token=None, last_event_id=None, rcvbuf=None,
                 headers=None, timeout=10):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", server.http_port))
        path = TAIL + ("?" + urllib.parse.urlencode(params, doseq=True) if params else "")
        h = {"Host": "127.0.0.1", "Accept": "text/event-stream"}
        if token:
            h["Authorization"] = "Bearer " + token
        if last_event_id is not None:
            h["Last-Event-ID"] = str(last_event_id)
        h.update(headers or {})
        req = f"GET {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items()) + "\r\n"
        self.sock.sendall(req.encode())
        self.raw = b""      # bytes received, not yet de-chunked
        self.text = b""     # event-stream bytes not yet parsed
        self.closed = False
        self.chunked = False
        self.events = []    # dispatched: {"event", "id", "data"}; "data" parsed as JSON
        self.comments = []
        self.retry = None
        self._cur = {}
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.raw:
            if not self._recv(deadline):
                raise AssertionError(f"tail: no response head: {self.raw[:300]!r}")
        head, self.raw = self.raw.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {}
        for ln in lines[1:]:
            k, v = ln.split(":", 1)
            self.headers[k.strip().lower()] = v.strip()
        self.chunked = "chunked" in self.headers.get("transfer-encoding", "").lower()
        if self.status != 200:
            n = int(self.headers.get("content-length", "0"))
            while len(self.raw) < n and self._recv(deadline):
                pass
            self.body = self.raw
        else:
            self._decode()

    def _recv(self, deadline):
        """One recv (at most until deadline). False at EOF or timeout."""
        left = deadline - time.monotonic()
        if left <= 0 or self.closed:
            return False
        self.sock.settimeout(min(left, 0.5))
        try:
            b = self.sock.recv(65536)
        except socket.timeout:
            return time.monotonic() < deadline
        except OSError:
            b = b""
        if not b:
            self.closed = True
            return False
        self.raw += b
        return True

    def _decode(self):
        if not self.chunked:
            self.text += self.raw
            self.raw = b""
        else:
            while True:
                i = self.raw.find(b"\r\n")
                if i < 0:
                    break
                n = int(self.raw[:i].split(b";")[0], 16)
                if len(self.raw) < i + 2 + n + 2:
                    break
                self.text += self.raw[i + 2:i + 2 + n]
                self.raw = self.raw[i + 2 + n + 2:]
                if n == 0:
                    self.closed = True
                    break
        # event-stream lines end in LF, CRLF or CR (we only expect LF from sluice)
        while b"\n" in self.text:
            ln, self.text = self.text.split(b"\n", 1)
            ln = ln.rstrip(b"\r").decode("utf-8")
            if ln == "":
                if "data" in self._cur:
                    ev = dict(self._cur)
                    ev.setdefault("event", "message")
                    ev["data"] = json.loads(ev["data"])
                    self.events.append(ev)
                self._cur = {}
            elif ln.startswith(":"):
                self.comments.append(ln[1:].strip())
            else:
                k, _, v = ln.partition(":")
                v = v[1:] if v.startswith(" ") else v
                if k == "data":
                    self._cur["data"] = self._cur["data"] + "\n" + v if "data" in self._cur else v
                elif k in ("id", "event"):
                    self._cur[k] = v
                elif k == "retry":
                    self.retry = int(v)

    def pump(self, seconds):
        """Reads for `seconds` (or until EOF)."""
        deadline = time.monotonic() + seconds
        while self._recv(deadline):
            self._decode()
        self._decode()

    def wait(self, pred, timeout, what="events"):
        """Reads until pred(self) is true; fails after timeout s."""
        deadline = time.monotonic() + timeout
        while not pred(self):
            if not self._recv(deadline):
                self._decode()
                if pred(self):
                    break
                raise AssertionError(
                    f"tail: timed out after {timeout}s waiting for {what}; have "
                    f"{[(e.get('event'), e.get('id')) for e in self.events][-10:]} closed={self.closed}")
            self._decode()
        return self

    def data_events(self):
        return [e for e in self.events if e["event"] == "message"]

    def ids(self):
        return [int(e["id"]) for e in self.data_events()]

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def open_stream(server, token, **kw):
    s = SSE(server, token=token, **kw)
    assert s.status == 200, f"tail: {s.status} {getattr(s, 'body', b'')[:300]!r}"
    assert s.headers.get("content-type", "").startswith("text/event-stream"), s.headers
    assert "no-store" in s.headers.get("cache-control", ""), s.headers
    # the stream starts with `retry: 2000`: once it is here the subscription exists
    s.wait(lambda c: c.retry is not None, 5, "retry: line")
    assert s.retry == 2000
    return s


class World:
    pass


@pytest.fixture(scope="module")
def world(db, tls, workdir):
    w = World()
    w.db = db
    w.server = Server(db, tls, workdir, {"SLUICE_TAIL_BUFFER": TAIL_BUFFER})
    w.server.start()
    w.idle = None
    try:
        w.a = w.server.add_source("tail-a")
        w.b = w.server.add_source("tail-b")
        w.tok_all = add_read_token(db, "tail-all", "--all")
        w.tok_a = add_read_token(db, "tail-a-only", "--source", w.a.name)
        # an idle stream for the keep-alive test (last in this module)
        w.idle = open_stream(w.server, w.tok_all, params={"q": "wordthatneverappears"})
        w.idle_opened = time.monotonic()
        yield w
    finally:
        if w.idle:
            w.idle.close()
        w.server.stop()


def post(w, src, msgs):
    r = w.server.post(src, frame_body([line(m) for m in msgs]))
    assert r.status == 204, r
    return time.monotonic()


def db_matching(w, q, source_ids, after_id=0):
    """(id, message) of the stored lines of source_ids with id > after_id matching q, by id."""
    rows = w.db.query("SELECT l.*, s.name AS source FROM logs l JOIN sources s ON s.id = "
                      "l.source_id WHERE l.source_id = ANY(%s) AND l.id > %s ORDER BY l.id",
                      (list(source_ids), after_id))
    names = {w.a.name: w.a.id, w.b.name: w.b.id}
    ids = query_oracle.matching_ids(q, rows, set(source_ids), names)
    return [r["id"] for r in rows if r["id"] in ids]


def wait_stored(w, source_ids, n_total, timeout=30):
    wait_for(lambda: w.db.query("SELECT count(*) AS n FROM logs WHERE source_id = ANY(%s)",
                                (list(source_ids),))[0]["n"] >= n_total, timeout,
             what=f"{n_total} rows")


def count_rows(w, source_ids):
    return w.db.query("SELECT count(*) AS n FROM logs WHERE source_id = ANY(%s)",
                      (list(source_ids),))[0]["n"]


# ---------------------------------------------------------------- live lines


def test_live_matching_lines(world):
    w = world
    s = open_stream(w.server, w.tok_all, params={"q": "tailword -skipme"})
    try:
        before = count_rows(w, [w.a.id, w.b.id])
        msgs = ["tailword one", "other line", "tailword two skipme", "TAILWORD: three",
                "tailwords are not tailword-less", "nothing", "tailword four"]
        t_posted = post(w, w.a, msgs)
        s.wait(lambda c: len(c.data_events()) >= 4, MAX_LATENCY, "4 matching lines")
        latency = time.monotonic() - t_posted
        wait_stored(w, [w.a.id, w.b.id], before + len(msgs))
        s.pump(1.0)  # nothing else may come
        want = db_matching(w, "tailword -skipme", [w.a.id])
        assert len(want) == 4
        assert s.ids() == want, "tail: exactly the matching lines, in id order"
        assert latency < MAX_LATENCY, latency
        got_msgs = [e["data"]["message"] for e in s.data_events()]
        assert got_msgs == ["tailword one", "TAILWORD: three", "tailwords are not tailword-less",
                            "tailword four"]
        # data is the search API's EVENT for that id, exactly
        r = api_get(w.server, "/api/v1/search", {"q": "tailword", "since": "15m", "limit": 10000},
                    token=w.tok_all)
        assert r.status == 200, r
        by_id = {x["id"]: x for x in r.json()["events"]}
        for e in s.data_events():
            assert e["data"]["id"] == e["id"]
            assert e["data"] == by_id[e["id"]], "tail EVENT differs from the search EVENT"
            assert e["data"]["source"] == w.a.name and e["data"]["procid"] == "web.1"
    finally:
        s.close()


def test_lines_before_connect_not_sent(world):
    w = world
    before = count_rows(w, [w.a.id])
    post(w, w.a, ["earlyword before the stream"])
    wait_stored(w, [w.a.id], before + 1)
    s = open_stream(w.server, w.tok_all, params={"q": "earlyword"})
    try:
        post(w, w.a, ["earlyword after the stream"])
        s.wait(lambda c: len(c.data_events()) >= 1, MAX_LATENCY, "the line after connect")
        s.pump(0.5)
        assert [e["data"]["message"] for e in s.data_events()] == ["earlyword after the stream"]
    finally:
        s.close()


# ---------------------------------------------------------------- resume


@pytest.mark.parametrize("how", ["header", "param"])
def test_resume_after_disconnect(world, how):
    w = world
    word = f"resume{how}"
    s = open_stream(w.server, w.tok_all, params={"q": word})
    post(w, w.a, [f"{word} 1", f"{word} 2", "unrelated"])
    s.wait(lambda c: len(c.data_events()) >= 2, MAX_LATENCY, "two lines")
    s.pump(0.3)
    first = s.ids()
    assert len(first) == 2
    last = first[-1]
    s.close()

    # missed while disconnected: matching and non-matching, in two sources
    before = count_rows(w, [w.a.id, w.b.id])
    post(w, w.a, [f"{word} 3", "unrelated again", f"{word} 4"])
    post(w, w.b, [f"{word} 5 from b", "still unrelated"])
    post(w, w.a, [f"{word} 6"])
    wait_stored(w, [w.a.id, w.b.id], before + 6)
    missed = db_matching(w, word, [w.a.id, w.b.id], after_id=last)
    assert len(missed) == 4

    kw = {"last_event_id": last} if how == "header" else {}
    params = {"q": word} if how == "header" else {"q": word, "last_id": str(last)}
    s = open_stream(w.server, w.tok_all, params=params, **kw)
    try:
        s.wait(lambda c: len(c.data_events()) >= 4, 5, "the 4 missed lines")
        s.pump(0.5)
        assert s.ids() == missed, "resume: exactly the missed matching lines, in id order"
        # then live, without duplicates
        post(w, w.b, [f"{word} 7 live"])
        s.wait(lambda c: len(c.data_events()) >= 5, MAX_LATENCY, "the live line after resume")
        s.pump(0.5)
        ids = s.ids()
        assert len(ids) == len(set(ids)) == 5 and ids == sorted(ids), ids
        assert s.data_events()[-1]["data"]["message"] == f"{word} 7 live"
        assert ids[:4] == missed and ids[4] > missed[-1]
    finally:
        s.close()


# ---------------------------------------------------------------- scope


def test_scoped_token_tail(world):
    w = world
    word = "scopeword"
    watcher = open_stream(w.server, w.tok_all, params={"q": word})
    scoped = open_stream(w.server, w.tok_a, params={"q": word})
    asks_b = open_stream(w.server, w.tok_a, params={"q": word, "source": w.b.name})
    asks_b_q = open_stream(w.server, w.tok_a, params={"q": f"{word} source:{w.b.name}"})
    streams = [watcher, scoped, asks_b, asks_b_q]
    try:
        post(w, w.b, [f"{word} b1"])
        post(w, w.a, [f"{word} a1"])
        post(w, w.b, [f"{word} b2"])
        watcher.wait(lambda c: len(c.data_events()) >= 3, MAX_LATENCY, "all 3 lines (watcher)")
        scoped.wait(lambda c: len(c.data_events()) >= 1, MAX_LATENCY, "the a line (scoped)")
        for st in streams:
            st.pump(0.7)
        assert [e["data"]["source"] for e in watcher.data_events()] == [w.b.name, w.a.name,
                                                                        w.b.name]
        assert [e["data"]["message"] for e in scoped.data_events()] == [f"{word} a1"]
        assert asks_b.data_events() == [], "source=B outside the token's scope showed lines"
        assert asks_b_q.data_events() == [], "source:B outside the token's scope showed lines"
        # resuming from before all three with the scoped token: only the a line again
        first = int(watcher.data_events()[0]["id"]) - 1
        r = open_stream(w.server, w.tok_a, params={"q": word}, last_event_id=first)
        streams.append(r)
        r.wait(lambda c: len(c.data_events()) >= 1, 5, "resumed scoped line")
        r.pump(0.7)
        assert [e["data"]["message"] for e in r.data_events()] == [f"{word} a1"]
    finally:
        for st in streams:
            st.close()


def test_tail_refusals(world):
    w = world
    for headers, status in (({}, 401), ({"Authorization": "Bearer slr_" + "0" * 40}, 401),
                            ({"Authorization": "Bearer " + w.a.token}, 401)):
        s = SSE(w.server, params={"q": "x"}, headers=headers)
        try:
            assert s.status == status, (headers, s.status)
            assert "error" in json.loads(s.body)
        finally:
            s.close()
    s = SSE(w.server, params={"q": "(unbalanced"}, token=w.tok_all)
    try:
        assert s.status == 400
        doc = json.loads(s.body)
        assert doc["error"].startswith("bad query") and doc["position"] == 0, doc
    finally:
        s.close()
    s = SSE(w.server, params={"q": "x"}, token=w.tok_all, last_event_id="not-an-id")
    try:
        assert s.status == 400, s.status
    finally:
        s.close()


# ---------------------------------------------------------------- slow client


def test_slow_client_gets_missed(world):
    """A client that never reads: sluice stops buffering for it past SLUICE_TAIL_BUFFER and,
    once it reads again, says how many matching lines it skipped and where the stream goes on.
    The skipped lines are after_id < id <= resume_id: the database and a search agree."""
    w = world
    word = "floodword"
    pad = "x" * 1000
    n_bodies, per_body = 16, 500
    s = open_stream(w.server, w.tok_all, params={"q": word}, rcvbuf=4096)
    try:
        before = count_rows(w, [w.a.id, w.b.id])

        def flood(ks):
            for k in ks:
                msgs = [f"{word} {k}-{i} {pad}" if i % 10 else f"other {k}-{i} {pad}"
                        for i in range(per_body)]
                post(w, w.a, msgs)
        flood(range(n_bodies))
        wait_stored(w, [w.a.id, w.b.id], before + n_bodies * per_body, timeout=60)
        # The stream is paused now (its unsent output passed SLUICE_TAIL_BUFFER). Past the
        # 1 s grace (3 s here, for a loaded machine), what the tail thread reads for it next
        # is skipped and counted: more lines arrive while it still does not read.
        time.sleep(3)
        flood(range(n_bodies, n_bodies + 2))
        wait_stored(w, [w.a.id, w.b.id], before + (n_bodies + 2) * per_body, timeout=60)
        want = db_matching(w, word, [w.a.id])
        assert len(want) == (n_bodies + 2) * per_body * 9 // 10
        time.sleep(0.5)
        # now read everything: data events, one or more `missed`, then the last line
        s.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)

        def at_end(c):
            if not c.events:
                return False
            e = c.events[-1]
            if e["event"] == "missed":
                return int(e["data"]["resume_id"]) >= want[-1]
            return int(e["id"]) == want[-1]
        s.wait(at_end, 40, "the last flood line")
        s.pump(0.3)
        missed = [e for e in s.events if e["event"] == "missed"]
        assert missed, "no `event: missed` although the client fell far behind"
        seen, last_id, skipped = [], None, []
        for e in s.events:
            if e["event"] == "message":
                i = int(e["id"])
                assert last_id is None or i > last_id, "ids not increasing"
                seen.append(i)
                last_id = i
                continue
            assert e["event"] == "missed", e
            d = e["data"]
            after, resume = int(d["after_id"]), int(d["resume_id"])
            assert isinstance(d["after_id"], str) and isinstance(d["resume_id"], str)
            if last_id is not None:
                assert after == last_id, f"after_id {after} is not the last id sent ({last_id})"
            assert resume > after
            in_range = [i for i in want if after < i <= resume]
            assert d["missed"] == len(in_range), (d, len(in_range))
            # a search over the same range agrees (Papertrail min_id: newer than after_id)
            r = api_get(w.server, "/api/v1/events/search.json",
                        {"q": word, "min_id": d["after_id"], "limit": 10000},
                        headers={"X-Papertrail-Token": w.tok_all})
            assert r.status == 200, r
            found = [int(x["id"]) for x in r.json()["events"] if int(x["id"]) <= resume]
            assert len(found) == d["missed"], (len(found), d)
            skipped += in_range
            last_id = resume
        # nothing skipped silently: every matching line was sent or counted, once
        assert sorted(seen + skipped) == want
        assert len(set(seen) & set(skipped)) == 0
    finally:
        s.close()

    # a reconnect from after_id gets the skipped lines (then the rest), in id order
    d = missed[0]["data"]
    r = open_stream(w.server, w.tok_all, params={"q": word}, last_event_id=d["after_id"])
    try:
        rest = [i for i in want if i > int(d["after_id"])]
        r.wait(lambda c: len(c.data_events()) >= len(rest), 40, f"{len(rest)} resumed lines")
        got = r.ids()
        assert got[:d["missed"]] == [i for i in want
                                     if int(d["after_id"]) < i <= int(d["resume_id"])]
    finally:
        r.close()


def test_resume_while_lines_keep_coming(world):
    """The hand-over from catch-up (Last-Event-ID) to live while lines are being committed:
    every matching line after the id exactly once, in id order, no gap."""
    w = world
    word = "raceword"
    before = count_rows(w, [w.a.id, w.b.id])
    post(w, w.a, [f"{word} seed {i}" for i in range(200)])
    wait_stored(w, [w.a.id, w.b.id], before + 200)
    start = db_matching(w, word, [w.a.id])[0]  # resume after the first seed line
    errors = []

    def writer():
        try:
            for k in range(15):
                src = w.a if k % 2 else w.b
                post(w, src, [f"{word} live {k}-{i}" if i % 3 else f"noise {k}-{i}"
                              for i in range(60)])
        except BaseException as e:  # reported below
            errors.append(e)

    import threading
    t = threading.Thread(target=writer)
    t.start()
    time.sleep(0.05)
    s = open_stream(w.server, w.tok_all, params={"q": word}, last_event_id=start)
    try:
        t.join(60)
        assert not t.is_alive() and not errors, errors
        wait_stored(w, [w.a.id, w.b.id], before + 200 + 15 * 60)
        want = db_matching(w, word, [w.a.id, w.b.id], after_id=start)
        assert len(want) == 199 + 15 * 40
        s.wait(lambda c: len(c.data_events()) >= len(want), 20, f"{len(want)} lines")
        s.pump(0.5)
        got = s.ids()
        assert [e for e in s.events if e["event"] != "message"] == []
        assert len(got) == len(set(got)), "duplicates at the catch-up/live hand-over"
        assert got == want, f"gap or disorder: missing {sorted(set(want) - set(got))[:5]}"
    finally:
        s.close()


def test_stream_ends_on_shutdown(world, sluice):
    """SIGTERM ends open streams (clients reconnect) instead of holding the shutdown."""
    w = world
    srv = sluice()
    s = open_stream(srv, w.tok_all, params={"q": "x"})
    try:
        t0 = time.monotonic()
        assert srv.stop(timeout=20) == 0
        assert time.monotonic() - t0 < 10, "an open tail stream held the shutdown"
        s.pump(2)
        assert s.closed, "the stream did not end when the server stopped"
    finally:
        s.close()


def test_all_token_sees_future_sources(world):
    """--all covers sources added after the token (and after the stream opened); a scoped
    token does not."""
    w = world
    word = "futureword"
    everything = open_stream(w.server, w.tok_all, params={"q": word})
    scoped = open_stream(w.server, w.tok_a, params={"q": word})
    try:
        new = w.server.add_source("tail-future")
        post(w, new, [f"{word} from the new source"])
        # one at a time: two sources' lines in one writer batch take ids grouped by source
        everything.wait(lambda c: len(c.data_events()) >= 1, MAX_LATENCY,
                        "the new source's line on an --all stream opened before it existed")
        post(w, w.a, [f"{word} from a"])
        everything.wait(lambda c: len(c.data_events()) >= 2, MAX_LATENCY,
                        "the new source's line and the a line on an --all stream opened before "
                        "the source existed")
        scoped.wait(lambda c: len(c.data_events()) >= 1, MAX_LATENCY, "the a line")
        scoped.pump(0.5)
        assert [e["data"]["source"] for e in everything.data_events()] == ["tail-future", w.a.name]
        assert [e["data"]["source"] for e in scoped.data_events()] == [w.a.name]
        r = api_get(w.server, "/api/v1/search", {"q": word, "since": "15m"}, token=w.tok_all)
        assert {e["source"] for e in r.json()["events"]} == {"tail-future", w.a.name}
    finally:
        everything.close()
        scoped.close()


def test_max_tail_clients(world, sluice):
    w = world
    srv = sluice(SLUICE_MAX_TAIL_CLIENTS=2)
    streams = [open_stream(srv, w.tok_all, params={"q": "x"}) for _ in range(2)]
    try:
        s = SSE(srv, params={"q": "x"}, token=w.tok_all)
        streams.append(s)
        assert s.status == 503 and "retry-after" in s.headers, (s.status, s.headers)
        streams[0].close()
        # a slot frees up when a client goes away
        def reopened():
            c = SSE(srv, params={"q": "x"}, token=w.tok_all)
            streams.append(c)
            return c.status == 200
        wait_for(reopened, 5, interval=0.2, what="a tail slot after a client left")
    finally:
        for st in streams:
            st.close()


def test_catch_up_never_skips(world, sluice):
    """Resuming with Last-Event-ID sends every matching line after that id "without limit":
    a client that reads as fast as it can must not get `event: missed` during the catch-up,
    even when the lines to catch up on are many times SLUICE_TAIL_BUFFER (here the default,
    1 MiB; ~7.5 MB of events)."""
    w = world
    srv = sluice()
    src = srv.add_source("tail-catchup")
    word = "catchupword"
    pad = "z" * 1200
    for k in range(5):
        r = srv.post(src, frame_body([line(f"{word} {k}-{i} {pad}") for i in range(1000)]))
        assert r.status == 204, r
    wait_stored(w, [src.id], 5000)
    want = db_matching(w, word, [src.id])
    for attempt in range(3):  # the skip depends on thread timing: give it a few chances
        s = open_stream(srv, w.tok_all, params={"q": word}, last_event_id=want[0] - 1)
        try:
            s.wait(lambda c: len(c.events) >= 5000 or any(e["event"] == "missed"
                                                          for e in c.events), 30, "5000 lines")
            s.pump(0.3)
            missed = [e["data"] for e in s.events if e["event"] == "missed"]
            assert missed == [], (f"catch-up (attempt {attempt}) skipped lines for a client "
                                  f"reading at full speed: {missed} after "
                                  f"{len(s.data_events())} lines")
            assert s.ids() == want
        finally:
            s.close()


# ---------------------------------------------------------------- keep-alive (last: waits)


def test_zz_keepalive_comment(world):
    """The idle stream opened with the module gets `: keep-alive` every 15 s, as a comment:
    no event is dispatched for it."""
    w = world
    s = w.idle
    left = w.idle_opened + 17 - time.monotonic()
    s.wait(lambda c: "keep-alive" in c.comments, max(left, 1), "a keep-alive comment")
    assert s.events == [], s.events
    assert not s.closed

