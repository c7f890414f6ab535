#!/usr/bin/env python3
"""A legitimate drain's latency while hostile connections come and go (issue 13 item 1).

    connattack.py --url https://NAME:TOKEN@127.0.0.1:PORT/logs [--http-port PORT]
                  [--hostile 5000] [--concurrency 1100] [--addresses 1] [--hold 3]
                  [--requests 400] [--fresh] [--cacert FILE]

Hostile side (asyncio, one thread): --hostile connections in all, at most --concurrency
open at once, started at --rate a second, from 127.0.0.2 upwards (--addresses of them; all of 127/8 is loopback on
Linux), to the HTTPS port and the plain HTTP port when given. Each one, in turn:
  idle     connects and says nothing
  trickle  sends a TLS ClientHello one byte every 0.5 s (HTTPS only)
  partial  sends "POST /logs HTTP/1.1\\r\\n" and stops
then holds for up to --hold seconds (random) or until the server closes it, and closes.

Legitimate side (a thread): POSTs of one line over HTTPS from 127.0.0.1, one at a time,
every 20 ms: on one keep-alive connection (reconnecting when it closes), or a new
connection per request with --fresh (then the TLS handshake and the accept are timed
too). First --requests/4 requests with no attack (baseline), then --requests during it.

Prints a summary on stderr and one line:
  RESULT baseline_p50_ms=.. baseline_p99_ms=.. attack_p50_ms=.. attack_p99_ms=..
         attack_max_ms=.. attack_ok=N attack_failed=N hostile_opened=N hostile_refused=N

127.0.0.1 only; bounded: every connection and the whole run have deadlines. Exit 0 when
every legitimate request got 204.
"""

import argparse
import asyncio
import base64
import http.client
import random
import ssl
import sys
import threading
import time
import urllib.parse

BODY_LINE = b"<190>1 2026-11-21T10:00:00.000000+00:00 host app web.1 - legit line"
BODY = str(len(BODY_LINE)).encode() + b" " + BODY_LINE


def client_hello():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_side=False)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


class Hostile:
    def __init__(self, a):
        self.a = a
        self.opened = 0
        self.refused = 0
        self.cut = 0
        self.hello = client_hello()
        self.stop = False

    async def one(self, i, sem):
        a = self.a
        addr = f"127.0.0.{2 + i % a.addresses}"
        kind = ("idle", "trickle", "partial")[i % 3]
        port = a.https_port
        if kind != "trickle" and a.http_port and i % 2:
            port = a.http_port
        try:
            r, w = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", port, local_addr=(addr, 0)), 5)
        except (OSError, asyncio.TimeoutError):
            self.refused += 1
            sem.release()
            return
        self.opened += 1
        deadline = time.monotonic() + random.uniform(0.2, a.hold)
        try:
            if kind == "partial":
                w.write(b"POST /logs HTTP/1.1\r\nHost: x\r\n")
            k = 0
            while time.monotonic() < deadline and not self.stop:
                if kind == "trickle" and k < len(self.hello):
                    w.write(self.hello[k:k + 1])
                    k += 1
                try:
                    got = await asyncio.wait_for(r.read(4096), 0.5)
                    if got == b"":
                        self.cut += 1  # closed by the server
                        break
                except asyncio.TimeoutError:
                    pass
        except OSError:
            self.cut += 1
        finally:
            w.close()
            sem.release()

    async def run(self):
        sem = asyncio.Semaphore(self.a.concurrency)
        tasks = []
        t0 = time.monotonic()
        for i in range(self.a.hostile):
            delay = t0 + i / self.a.rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await sem.acquire()
            if self.stop:
                sem.release()
                break
            tasks.append(asyncio.create_task(self.one(i, sem)))
            if i % 200 == 199:
                tasks = [t for t in tasks if not t.done()]
        await asyncio.gather(*tasks, return_exceptions=True)


class Legit:
    def __init__(self, a):
        u = urllib.parse.urlsplit(a.url)
        self.host, self.port = "127.0.0.1", u.port
        cred = f"{urllib.parse.unquote(u.username)}:{urllib.parse.unquote(u.password)}"
        self.auth = "Basic " + base64.b64encode(cred.encode()).decode()
        self.ctx = ssl.create_default_context(cafile=a.cacert) if a.cacert else \
            ssl._create_unverified_context()
        self.fresh = a.fresh
        self.conn = None

    def post(self):
        t0 = time.monotonic()
        for attempt in range(2):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPSConnection(self.host, self.port,
                                                            context=self.ctx, timeout=10)
                self.conn.request("POST", "/logs", body=BODY, headers={
                    "Authorization": self.auth, "Content-Type": "application/logplex-1"})
                r = self.conn.getresponse()
                r.read()
                if self.fresh or r.getheader("Connection") == "close":
                    self.conn.close()
                    self.conn = None
                return r.status, time.monotonic() - t0
            except (OSError, http.client.HTTPException):
                if self.conn:
                    self.conn.close()
                self.conn = None
                if attempt == 1:
                    return None, time.monotonic() - t0

    def series(self, n):
        out = []
        for _ in range(n):
            out.append(self.post())
            time.sleep(0.02)
        return out


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] * 1000 if xs else float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--http-port", type=int, default=0)
    ap.add_argument("--hostile", type=int, default=5000)
    ap.add_argument("--concurrency", type=int, default=1100)
    ap.add_argument("--addresses", type=int, default=1)
    ap.add_argument("--hold", type=float, default=3.0)
    ap.add_argument("--rate", type=float, default=500, help="hostile connections a second")
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--fresh", action="store_true")
    ap.add_argument("--cacert")
    ap.add_argument("--deadline", type=float, default=300)
    a = ap.parse_args()
    a.https_port = urllib.parse.urlsplit(a.url).port

    legit = Legit(a)
    base = legit.series(max(20, a.requests // 4))
    hostile = Hostile(a)
    th = threading.Thread(target=lambda: asyncio.run(hostile.run()), daemon=True)
    t0 = time.monotonic()
    th.start()
    time.sleep(1.0)  # let the attack fill its connections
    during = legit.series(a.requests)
    while th.is_alive() and time.monotonic() - t0 < a.deadline / 2:
        during += legit.series(10)  # the attack still runs: keep measuring
    hostile.stop = True
    th.join(timeout=max(1, a.deadline - (time.monotonic() - t0)))
    hostile_s = time.monotonic() - t0

    ok = [t for st, t in during if st == 204]
    failed = [st for st, _ in during if st != 204]
    bl = [t for st, t in base if st == 204]
    res = {
        "baseline_p50_ms": f"{pct(bl, 50):.1f}", "baseline_p99_ms": f"{pct(bl, 99):.1f}",
        "attack_p50_ms": f"{pct(ok, 50):.1f}", "attack_p99_ms": f"{pct(ok, 99):.1f}",
        "attack_max_ms": f"{pct(ok, 100):.1f}", "attack_ok": len(ok),
        "attack_failed": len(failed), "hostile_opened": hostile.opened,
        "hostile_refused": hostile.refused, "hostile_cut_by_server": hostile.cut,
        "addresses": a.addresses, "hostile_seconds": f"{hostile_s:.1f}",
        "mode": "fresh" if a.fresh else "keepalive",
    }
    print(f"connattack: failed statuses {failed[:10]}", file=sys.stderr)
    print("RESULT " + " ".join(f"{k}={v}" for k, v in res.items()))
    return 0 if not failed and len(bl) == len(base) else 1


if __name__ == "__main__":
    sys.exit(main())
