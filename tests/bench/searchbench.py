#!/usr/bin/python3
"""Search and tail latency against a running `sluice serve` (tests/bench/run.sh, issue 3).

The database is one `searchgen load --writer-blocks` filled (N lines over the 7 days up to
now, 50 sources app01..app50). Every request goes over one keep-alive HTTPS connection
(http.client); each is timed on the client, from just before the request is sent to the
last byte of the answer read. Per query kind: WARMUP untimed runs, then RUNS timed runs
with varied values, over all sources and over one source:

  word      a rare word, last 24 h, newest 100 (error class names seen ~70 times a day at
            10M lines, and rare numbers sampled from the last day's lines)
  phrase    a quoted phrase, last 24 h
  reqid     a request id that exists (sampled from the 7 days), last 7 days; "one source"
            is the id's own source
  status    status:>=500, last hour
  field     a JSON field, user_id:N with an id sampled from the last day's JSON lines
            (issue 16: selective like a rare word), last 24 h
  jsonnum   a JSON number compared, dur_ms:>=299 (the top third of a percent of the JSON
            lines), last hour

With --month (tests/bench/scale_bench.sh, issue 17: 30 days, 200 sources) the windows are
the month's targets: reqid over 30 days (ids sampled from the 30 days), phrase over 7 days
with phrases sampled from the 7 days' error lines ("raised in job N", "connecting to Redis
on 10.0.0.N": each run a different one, most found once or twice), status:>=500 over the
hour ending I minutes before the end (run I), words never repeated within a scope. With
--end EPOCH every window is absolute (since/until as Unix seconds) and ends at EPOCH (the
data set's end) instead of now, so a data set built earlier is searched as if it were now.

With --http-url the searches run again over plain HTTP (results via=http), which separates
the server's search time from its TLS write path. Every answer is checked: 200, and for reqid at least one event holding the id; for word
and phrase every event must hold the word (case-insensitively); for status every event a
status of 500 or more. A failed check ends the run (exit 1).

Tail: GET /api/v1/tail?q=MARKER (a token unique to this run) stays open; SAMPLES lines,
each with the marker and its sequence number, are POSTed one per request (logplex body,
the source's drain credentials, HTTPS keep-alive); each sample is timed from the 2xx
read to its SSE event read. The next line goes when the event came (or after 5 s).

Prints one `RESULT kind=... scope=... p50_ms=... p99_ms=... max_ms=... n=... rows=...`
line per measurement (p99: nearest rank, so with fewer than 100 runs it is the maximum),
progress on stderr. Usage:

  searchbench.py --url https://127.0.0.1:PORT --cacert CERT --token READ_TOKEN \
      --dsn DATABASE_URL --drain-user NAME --drain-password TOKEN [--runs 30] [--samples 200]
"""

import argparse
import base64
import http.client
import json
import math
import os
import random
import re
import ssl
import sys
import threading
import time
import urllib.parse

import psycopg2

USER_IDS = []  # sampled by samples()
ONLY_KINDS = []  # --kinds
MONTH = False  # --month
END = None  # --end: windows end there (Unix seconds) instead of now
MONTH_PHRASES = []  # sampled by samples() with --month
WINDOW_S = {"1h": 3600, "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400}
RARE_WORDS = ["KeyError", "ZeroDivisionError", "NoMethodError", "CannotConnectError",
              "UniqueViolation", "RecordNotFound", "OperationalError", "Sidekiq", "Traceback",
              "energyplus", "ECONNREFUSED", "NilClass"]
PHRASES = ["duplicate key value violates unique constraint", "division by zero",
           "server closed the connection unexpectedly", "execution expired",
           "most recent call last", "undefined method", "Connection closed without response",
           "Couldn't find Order"]


def log(msg):
    print(f"searchbench: {msg}", file=sys.stderr, flush=True)


def pct(values, p):
    v = sorted(values)
    return v[max(0, math.ceil(p / 100 * len(v)) - 1)]


class Client:
    """One keep-alive HTTPS connection; reconnects if the server closed it."""

    def __init__(self, url, ctx, timeout=60):
        u = urllib.parse.urlsplit(url)
        self.host, self.port, self.ctx, self.timeout = u.hostname, u.port, ctx, timeout
        self.tls = u.scheme == "https"
        self.conn = None

    def request(self, method, path, body=None, headers=None):
        for attempt in (0, 1):
            if self.conn is None and self.tls:
                self.conn = http.client.HTTPSConnection(self.host, self.port, context=self.ctx,
                                                        timeout=self.timeout)
            elif self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                t0 = time.perf_counter()
                self.conn.request(method, path, body=body, headers=headers or {})
                r = self.conn.getresponse()
                data = r.read()
                t1 = time.perf_counter()
                if r.getheader("connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                return r.status, data, t1, (t1 - t0) * 1000
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")


def samples(dsn):
    """Values for the queries, sampled (untimed) from the loaded rows."""
    with psycopg2.connect(dsn) as db, db.cursor() as cur:
        if END is None:
            cur.execute("SELECT max(received_at), now() FROM logs")
        else:
            cur.execute("SELECT to_timestamp(%s), to_timestamp(%s)", (END, END))
        end, ref = cur.fetchone()
        # Not from the window's first hour: by the time they are searched for, `since=7d`
        # (relative to that moment) would have passed them.
        days = 30 if MONTH else 7
        cur.execute("""SELECT substring(l.message from 'request_id=([0-9a-f-]{36})'), s.name
                       FROM logs l TABLESAMPLE SYSTEM (%s) JOIN sources s ON s.id = l.source_id
                       WHERE l.message LIKE 'at=info%%' AND l.received_at <= %s
                         AND l.received_at > %s - make_interval(days => %s) + interval '1 hour'
                       LIMIT 400""", (0.05 if MONTH else 0.2, ref, ref, days))
        reqids = [(r[0], r[1]) for r in cur.fetchall() if r[0]]
        if MONTH:
            # Phrases holding a rare number, from the 7 days' error lines (a 10 % sample).
            cur.execute("""SELECT coalesce(substring(message from '(raised in job [0-9]+)'),
                                           substring(message from
                                             '(connecting to Redis on 10[.]0[.]0[.][0-9]+)'))
                           FROM logs TABLESAMPLE SYSTEM (10)
                           WHERE received_at > %s - interval '6 days 23 hours'
                             AND received_at <= %s
                             AND (message LIKE 'Sidekiq::Shutdown%%'
                                  OR message LIKE 'Redis::CannotConnectError%%') LIMIT 400""",
                        (ref, ref))
            MONTH_PHRASES[:] = sorted({r[0] for r in cur.fetchall() if r[0]})
            random.shuffle(MONTH_PHRASES)
        # Rare numbers of the last day: order ids and job numbers of the error lines.
        cur.execute("""SELECT substring(message from '(?:''id''=|job )([0-9]{4,})')
                       FROM logs WHERE received_at > %s - interval '23 hours'
                         AND (message LIKE 'ActiveRecord::RecordNotFound%%'
                              OR message LIKE 'Sidekiq::Shutdown%%') LIMIT 200""", (end,))
        numbers = [r[0] for r in cur.fetchall() if r[0]]
        cur.execute("""SELECT substring(message from '"user_id":([0-9]+)')
                       FROM logs TABLESAMPLE SYSTEM (0.5)
                       WHERE received_at > %s - interval '23 hours' AND json_at IS NOT NULL
                         AND message LIKE '{"level"%%' LIMIT 200""", (end,))
        global USER_IDS
        USER_IDS = [r[0] for r in cur.fetchall() if r[0]]
        random.shuffle(USER_IDS)
        cur.execute("SELECT name FROM sources WHERE name LIKE 'app%%' ORDER BY name LIMIT 1")
        (big,) = cur.fetchone()
    random.shuffle(reqids)
    random.shuffle(numbers)
    if not reqids:
        raise SystemExit("searchbench: no request ids sampled")
    return reqids, numbers, big


def check_events(kind, value, events):
    for e in events:
        msg = e["message"]
        if kind in ("word", "phrase"):
            if value.lower() not in msg.lower():
                raise SystemExit(f"searchbench: {kind} {value!r}: event without it: {msg[:200]!r}")
        elif kind == "status":
            m = re.search(r"(?:^|\s)status=(\d+)(?:\s|$)", msg)
            if not m or int(m.group(1)) < 500:
                raise SystemExit(f"searchbench: status:>=500 returned {msg[:200]!r}")
    if kind == "field":
        for e in events:
            if (e.get("fields") or {}).get("user_id") != int(value):
                raise SystemExit(f"searchbench: user_id:{value} returned {e['message'][:200]!r}")
    if kind == "jsonnum":
        for e in events:
            if (e.get("fields") or {}).get("dur_ms", -1) < 299:
                raise SystemExit(f"searchbench: dur_ms:>=299 returned {e['message'][:200]!r}")
    if kind == "reqid" and not any(value in e["message"] for e in events):
        raise SystemExit(f"searchbench: request id {value} not found")


def window(kind, since, i):
    """The since/until parameters of run i: relative to now, or absolute up to --end."""
    if END is None:
        return {"since": since}
    until = END + 1 - (60 * (i % 7919) if MONTH and kind == "status" else 0)
    return {"since": str(until - WINDOW_S[since]), "until": str(until)}


def run_searches(cl, token, runs, warmup, reqids, numbers, big, via):
    hdr = {"Authorization": f"Bearer {token}"}
    words = RARE_WORDS + numbers[:max(0, (2 * (runs + warmup) if MONTH else runs)
                                      - len(RARE_WORDS))]
    kinds = {
        "word": lambda i: (words[i % len(words)], "24h"),
        "phrase": lambda i: (PHRASES[i % len(PHRASES)], "24h"),
        "reqid": lambda i: (reqids[i % len(reqids)][0], "7d"),
        "status": lambda i: (None, "1h"),
    }
    if MONTH:
        if len(MONTH_PHRASES) < 2 * (runs + warmup):
            log(f"only {len(MONTH_PHRASES)} phrases sampled: some runs repeat one")
        kinds["phrase"] = lambda i: (MONTH_PHRASES[i % len(MONTH_PHRASES)], "7d")
        kinds["reqid"] = lambda i: (reqids[i % len(reqids)][0], "30d")
    if USER_IDS:
        kinds["field"] = lambda i: (USER_IDS[i % len(USER_IDS)], "24h")
        kinds["jsonnum"] = lambda i: (None, "1h")
    if ONLY_KINDS:
        kinds = {k: v for k, v in kinds.items() if k in ONLY_KINDS}
    out = []
    for kind, pick in kinds.items():
        for scope in ("all", "one"):
            times, rows = [], 0
            for i in range(warmup + runs):
                value, since = pick(i + 7919 * (scope == "one"))
                if kind == "status":
                    q = "status:>=500"
                elif kind == "field":
                    q = "user_id:" + value
                elif kind == "jsonnum":
                    q = "dur_ms:>=299"
                elif kind == "word":
                    q = value
                else:
                    q = '"' + value + '"'
                params = {"q": q, "limit": "100", **window(kind, since, i + 7919 * (scope == "one"))}
                if scope == "one":
                    params["source"] = reqids[(i + 7919) % len(reqids)][1] if kind == "reqid" else big
                path = "/api/v1/search?" + urllib.parse.urlencode(params)
                status, data, _, ms = cl.request("GET", path, headers=hdr)
                if status != 200:
                    raise SystemExit(f"searchbench: {path}: {status} {data[:300]!r}")
                events = json.loads(data)["events"]
                check_events(kind, value, events)
                if i >= warmup:
                    times.append(ms)
                    rows += len(events)
            line = (f"RESULT kind={kind} scope={scope} via={via} p50_ms={pct(times, 50):.1f} "
                    f"p99_ms={pct(times, 99):.1f} max_ms={max(times):.1f} n={len(times)} "
                    f"rows={rows}")
            print(line, flush=True)
            out.append(line)
    return out


class SSE(threading.Thread):
    """Reads the tail stream; records when each marked line's event arrived."""

    def __init__(self, url, ctx, token, marker):
        super().__init__(daemon=True)
        u = urllib.parse.urlsplit(url)
        self.conn = http.client.HTTPSConnection(u.hostname, u.port, context=ctx, timeout=60)
        self.conn.request("GET", "/api/v1/tail?" + urllib.parse.urlencode({"q": marker}),
                          headers={"Authorization": f"Bearer {token}",
                                   "Accept": "text/event-stream"})
        self.resp = self.conn.getresponse()
        if self.resp.status != 200:
            raise SystemExit(f"searchbench: tail: {self.resp.status} {self.resp.read(300)!r}")
        self.seen = {}
        self.cond = threading.Condition()
        self.events = 0
        self.foreign = 0

    def run(self):
        fp = self.resp.fp
        while True:
            line = fp.readline()
            if not line:
                return
            if line.startswith(b"data:"):
                t = time.perf_counter()
                ev = json.loads(line[5:])
                m = re.search(r"\bseq=(\d+)\b", ev.get("message", ""))
                with self.cond:
                    self.events += 1
                    if m:
                        self.seen.setdefault(int(m.group(1)), t)
                    else:
                        self.foreign += 1
                    self.cond.notify_all()

    def wait(self, seq, timeout):
        end = time.monotonic() + timeout
        with self.cond:
            while seq not in self.seen:
                left = end - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)
            return self.seen[seq]


def run_tail(url, ctx, token, user, password, n):
    marker = "sbtail" + os.urandom(6).hex()
    sse = SSE(url, ctx, token, marker)
    sse.start()
    time.sleep(0.3)  # the stream is live once its headers came; a little margin
    cl = Client(url, ctx)
    auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    lat, lost, post_ms = [], 0, []
    for seq in range(n):
        ts = time.strftime("%Y-%m-%dT%H:%M:%S.000000+00:00", time.gmtime())
        msg = f"<190>1 {ts} host app web.1 - - bench {marker} seq={seq} status=200".encode()
        body = str(len(msg)).encode() + b" " + msg
        status, data, t_ack, ms = cl.request(
            "POST", "/logs", body=body,
            headers={"Authorization": auth, "Content-Type": "application/logplex-1",
                     "Logplex-Msg-Count": "1"})
        if status // 100 != 2:
            raise SystemExit(f"searchbench: POST /logs: {status} {data[:200]!r}")
        post_ms.append(ms)
        t_ev = sse.wait(seq, 5.0)
        if t_ev is None:
            lost += 1
            continue
        lat.append(max(0.0, (t_ev - t_ack) * 1000))
    if sse.foreign:
        raise SystemExit(f"searchbench: tail sent {sse.foreign} events without the marker")
    if not lat:
        raise SystemExit("searchbench: no tail event arrived")
    line = (f"RESULT kind=tail scope=one p50_ms={pct(lat, 50):.1f} p99_ms={pct(lat, 99):.1f} "
            f"max_ms={max(lat):.1f} n={len(lat)} lost={lost} post_p50_ms={pct(post_ms, 50):.1f} "
            f"post_p99_ms={pct(post_ms, 99):.1f}")
    print(line, flush=True)
    return lost


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True, help="https://127.0.0.1:PORT")
    ap.add_argument("--cacert", required=True)
    ap.add_argument("--http-url", help="http://127.0.0.1:PORT: the searches again over plain HTTP")
    ap.add_argument("--token", required=True, help="read token (all sources)")
    ap.add_argument("--dsn", required=True)
    ap.add_argument("--drain-user", required=True)
    ap.add_argument("--drain-password", required=True)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--only", default="search,tail")
    ap.add_argument("--kinds", default="", help="comma-separated search kinds (default: all)")
    ap.add_argument("--month", action="store_true",
                    help="issue 17's windows: reqid 30 days, sampled phrases 7 days")
    ap.add_argument("--end", type=int, help="windows end at this Unix second instead of now")
    a = ap.parse_args()
    global ONLY_KINDS, MONTH, END
    ONLY_KINDS = [k for k in a.kinds.split(",") if k]
    MONTH, END = a.month, a.end
    ctx = ssl.create_default_context(cafile=a.cacert)
    random.seed(1)
    if "search" in a.only:
        reqids, numbers, big = samples(a.dsn)
        log(f"{len(reqids)} request ids, {len(numbers)} rare numbers sampled; one source: {big}")
        run_searches(Client(a.url, ctx), a.token, a.runs, a.warmup, reqids, numbers, big, "https")
        if a.http_url:
            run_searches(Client(a.http_url, ctx), a.token, a.runs, a.warmup, reqids, numbers, big,
                         "http")
    if "tail" in a.only:
        lost = run_tail(a.url, ctx, a.token, a.drain_user, a.drain_password, a.samples)
        if lost:
            log(f"{lost} tail events did not arrive within 5 s")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
