#!/usr/bin/env python3
"""Crash latency probe for tests/bench/run.sh (section 8): the last line of a trace received
-> its Sentry envelope received.

    crashlat.py --url https://NAME:TOKEN@127.0.0.1:PORT/logs --sentry-port PORT
                [--probes N] [--pause SECONDS] [--wait SECONDS] [--tag TAG]

Listens on 127.0.0.1:SENTRY_PORT (only there) as a Sentry envelope endpoint (answers 200)
and records the arrival time of each envelope. Then posts N Python traces over HTTPS, one
trace per request (8 lines, Heroku frames, the lines' own times now), one request at a time
on one keep-alive connection, --pause seconds apart; trace i is on dyno web.<i % 50 + 1>
and ends `ValueError: sluice-crash-probe TAG-i`. An envelope is matched to its probe by
that value.

Times (time.monotonic(), one process):
  sent      just before the request bytes are written
  acked     the 204 was read (the lines are durable: the last line is received)
  envelope  the envelope request was read completely
Latency = envelope - acked: from the last line received (acknowledged) to the envelope,
which holds the gap (SLUICE_CRASH_GAP_MS), the settle delay (SLUICE_CRASH_SETTLE_MS), the
crash thread's poll and the notifier. Prints one line for scripts:

  RESULT probes=N acked=N delivered=N dup=N p50_ms=.. p99_ms=.. max_ms=..

No certificate verification (the bench's certificate is self-signed). Bounded: every wait
has a deadline. Exit 0 when every probe was acked and delivered exactly once.
"""

import argparse
import datetime
import http.client
import http.server
import json
import socketserver
import ssl
import sys
import threading
import time
import urllib.parse

arrivals = {}  # value -> [monotonic times]
cond = threading.Condition()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        t = time.monotonic()
        value = None
        for line in body.split(b"\n"):
            if b"sluice-crash-probe" in line:
                try:
                    ev = json.loads(line)
                    value = ev["exception"]["values"][-1]["value"]
                except (ValueError, KeyError, IndexError, TypeError):
                    pass
        with cond:
            arrivals.setdefault(value, []).append(t)
            cond.notify_all()
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def frame(msgs):
    out = b""
    for m in msgs:
        b = m.encode()
        out += b"%d %s" % (len(b), b)
    return out


def trace(tag, i):
    proc = f"web.{i % 50 + 1}"
    base = datetime.datetime.now(datetime.timezone.utc)
    lines = ["Traceback (most recent call last):",
             '  File "/app/app/main.py", line 42, in handle',
             "    return process(order)",
             '  File "/app/app/orders.py", line 17, in process',
             "    total = compute(order.items)",
             '  File "/app/app/pricing.py", line 88, in compute',
             "    raise ValueError(item)",
             f"ValueError: sluice-crash-probe {tag}-{i}"]
    out = []
    for k, m in enumerate(lines):
        ts = (base + datetime.timedelta(microseconds=k)).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")
        out.append(f"<190>1 {ts} host app {proc} - {m}\n")
    return frame(out)


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))] if v else float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--sentry-port", type=int, required=True)
    ap.add_argument("--probes", type=int, default=50)
    ap.add_argument("--pause", type=float, default=0.2)
    ap.add_argument("--wait", type=float, default=20)
    ap.add_argument("--tag", default="p")
    a = ap.parse_args()

    srv = Server(("127.0.0.1", a.sentry_port), Handler)
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    u = urllib.parse.urlsplit(a.url)
    auth = "Basic " + __import__("base64").b64encode(
        f"{urllib.parse.unquote(u.username)}:{urllib.parse.unquote(u.password)}".encode()).decode()
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    conn = http.client.HTTPSConnection(u.hostname, u.port, context=ctx, timeout=10)
    acked = {}
    for i in range(a.probes):
        body = trace(a.tag, i)
        try:
            conn.request("POST", u.path, body, {"Authorization": auth,
                                               "Content-Type": "application/logplex-1"})
            r = conn.getresponse()
            r.read()
            if r.status == 204:
                acked[f"sluice-crash-probe {a.tag}-{i}"] = time.monotonic()
        except (OSError, http.client.HTTPException) as e:
            print(f"crashlat: probe {i}: {e}", file=sys.stderr)
            conn.close()
        time.sleep(a.pause)
    deadline = time.monotonic() + a.wait
    with cond:
        while any(k not in arrivals for k in acked) and time.monotonic() < deadline:
            cond.wait(max(0.01, deadline - time.monotonic()))
    time.sleep(1.0)  # a duplicate would come now
    srv.shutdown()
    lat = [(arrivals[k][0] - t) * 1000 for k, t in acked.items() if k in arrivals]
    dup = sum(len(arrivals[k]) - 1 for k in acked if k in arrivals)
    print(f"crashlat: {len(lat)} of {a.probes} envelopes, p50 {pct(lat, 50):.0f} ms, "
          f"p99 {pct(lat, 99):.0f} ms, duplicates {dup}", file=sys.stderr)
    print(f"RESULT probes={a.probes} acked={len(acked)} delivered={len(lat)} dup={dup} "
          f"p50_ms={pct(lat, 50):.0f} p99_ms={pct(lat, 99):.0f} max_ms={max(lat) if lat else 0:.0f}")
    return 0 if len(lat) == a.probes == len(acked) and dup == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
