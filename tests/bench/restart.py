#!/usr/bin/env python3
"""Restart and upgrade under load (issue 15): what a logplex-like sender sees.

    python3 tests/bench/restart.py [--senders N] [--build DIR] [--rounds N]

Sets up its own PostgreSQL (deploy/pg.sh, in a temporary directory), certificate and
sources, then for each way of replacing a running `sluice serve`:

  plain    SIGTERM, wait for the exit, start again (binds the ports itself): the old way
  socket   the same, on listening sockets this script holds and passes (LISTEN_FDS), as
           systemd's socket activation (deploy/sluice.socket) does
  upgrade  SIGUSR2: the process starts its successor with the listeners (drain/upgrade.c)

runs N logplex-like senders (HTTPS keep-alive, one frame per request, a failed attempt
retried 3 times within 0.85 s, then the frame dropped) and a prober that opens a new
connection every 5 ms and asks /healthz on the plain port. Reports per mode: refused
connections (prober and senders), dropped frames, the longest accept gap (the slowest
prober connection: connect to answer), and checks every acknowledged frame is in
PostgreSQL exactly once. Then SIGTERM under load: the time to exit.

Prints a human summary on stderr and `RESULT mode=... refused=... dropped=... gap_ms=...`
lines on stdout. Bounded: every wait has a deadline. Exit 0 when the socket and upgrade
modes refused and dropped nothing and every acknowledged frame was stored once.
"""

import argparse
import base64
import ctypes
import http.client
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.realpath(os.path.join(os.path.dirname(__file__), "..", ".."))


def frame(msg):
    line = f"<190>1 2026-11-21T10:00:00.000000+00:00 host app web.1 - {msg}\n".encode()
    return b"%d %s" % (len(line), line)


class LogplexSender(threading.Thread):
    """Posts one frame at a time over HTTPS keep-alive, as logplex does: a failed attempt
    (connection refused or reset, 5xx, timeout) is retried len(RETRY_DELAYS) times within
    about a second on a new connection, then the frame is dropped. Frame `seq` holds the
    one line `deploy-load NAME SEQ`; its Logplex-Frame-Id makes a retry of a stored frame
    a duplicate that sluice removes. Used by tests/e2e/test_deploy.py too."""

    RETRY_DELAYS = (0.1, 0.25, 0.5)  # 0.85 s in all, then the frame is dropped
    TIMEOUT = 10  # one attempt: connect, send, answer (a queued connection waits)

    def __init__(self, name, port, user, token, cafile):
        super().__init__(daemon=True)
        self.name, self.port = name, port
        self.ctx = ssl.create_default_context(cafile=cafile)
        self.auth = "Basic " + base64.b64encode(f"{user}:{token}".encode()).decode()
        self.stop = threading.Event()
        self.acked, self.dropped, self.errors = [], [], []
        self.refused = 0
        self.conn = None

    def attempt(self, seq):
        if self.conn is None:
            self.conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx,
                                                    timeout=self.TIMEOUT)
        self.conn.request("POST", "/logs", body=frame(f"deploy-load {self.name} {seq}"), headers={
            "Content-Type": "application/logplex-1", "Authorization": self.auth,
            "Logplex-Msg-Count": "1", "Logplex-Frame-Id": f"{self.name}-{seq}"})
        r = self.conn.getresponse()
        r.read()
        if (r.getheader("connection") or "").lower() == "close":
            self.conn.close()
            self.conn = None
        return r.status

    def send(self, seq):
        for delay in (0,) + self.RETRY_DELAYS:
            time.sleep(delay)
            try:
                status = self.attempt(seq)
                if status == 204:
                    return True
                self.errors.append(f"{seq}: {status}")
            except ConnectionRefusedError:
                self.refused += 1
                self.errors.append(f"{seq}: refused")
            except (OSError, http.client.HTTPException) as e:
                self.errors.append(f"{seq}: {type(e).__name__}")
            if self.conn is not None:
                self.conn.close()
                self.conn = None
        return False

    def run(self):
        seq = 0
        while not self.stop.is_set():
            seq += 1
            (self.acked if self.send(seq) else self.dropped).append(seq)
        if self.conn is not None:
            self.conn.close()

    def messages(self):
        return {f"deploy-load {self.name} {seq}" for seq in self.acked}


class Prober(threading.Thread):
    """A new connection every 5 ms: GET /healthz on the plain port. Records refusals and
    the slowest answer (how long a connection waited in the accept queue)."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.stop = threading.Event()
        self.refused = self.failed = self.n = 0
        self.max_ms = 0.0

    def run(self):
        while not self.stop.is_set():
            t0 = time.monotonic()
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                c.request("GET", "/healthz")
                c.getresponse().read()
                c.close()
                self.max_ms = max(self.max_ms, (time.monotonic() - t0) * 1000)
                self.n += 1
            except ConnectionRefusedError:
                self.refused += 1
            except (OSError, http.client.HTTPException):
                self.failed += 1
            time.sleep(0.005)


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class Bench:
    def __init__(self, args):
        self.args = args
        self.sluice = os.path.join(ROOT, args.build, "sluice")
        self.tmp = tempfile.mkdtemp(prefix="sluice-restart.")
        os.chmod(self.tmp, 0o755)
        self.pg_dir = os.path.join(self.tmp, "pg")
        self.url = subprocess.run([os.path.join(ROOT, "deploy", "pg.sh"), "start", self.pg_dir],
                                  check=True, capture_output=True, text=True,
                                  timeout=120).stdout.strip().splitlines()[-1]
        subprocess.run([self.sluice, "migrate"], env=dict(os.environ, DATABASE_URL=self.url),
                       check=True, capture_output=True, timeout=120)
        subprocess.run([os.path.join(ROOT, "deploy", "cert.sh"), self.tmp], check=True, timeout=60)
        self.cert = os.path.join(self.tmp, "tls", "cert.pem")
        self.key = os.path.join(self.tmp, "tls", "key.pem")

    def psql(self, sql):
        return subprocess.run(["psql", "-X", "-qAt", self.url, "-c", sql], check=True,
                              capture_output=True, text=True, timeout=60).stdout

    def source(self, name):
        out = subprocess.run([self.sluice, "source", "add", name],
                             env=dict(os.environ, DATABASE_URL=self.url), check=True,
                             capture_output=True, text=True, timeout=60).stdout
        token = re.search(r"://[^:]+:([0-9a-f]+)@", out.splitlines()[-1]).group(1)
        sid = int(self.psql(f"SELECT id FROM sources WHERE name = '{name}'"))
        return token, sid

    def env(self, mode, ports):
        return dict(os.environ, DATABASE_URL=self.url, SLUICE_BIND="127.0.0.1",
                    PORT=str(ports[0]), SLUICE_HTTPS_PORT=str(ports[1]),
                    SLUICE_SPOOL_DIR=os.path.join(self.tmp, f"spool-{mode}"),
                    SLUICE_TLS_CERT=self.cert, SLUICE_TLS_KEY=self.key,
                    SLUICE_MAX_CONNECTIONS_PER_ADDRESS="0")

    def start(self, mode, ports, held):
        logf = open(os.path.join(self.tmp, f"sluice-{mode}.log"), "ab")
        if held:
            env = dict(self.env(mode, ports), LISTEN_FDS="2", LISTEN_FDNAMES="http:https")
            script = 'export LISTEN_PID=$$; exec "$0" serve 3<&50 4<&51 50<&- 51<&-'
            p = subprocess.Popen(["/bin/bash", "-c", script, self.sluice], env=env,
                                 pass_fds=held, stdin=subprocess.DEVNULL, stdout=logf,
                                 stderr=subprocess.STDOUT)
        else:
            p = subprocess.Popen([self.sluice, "serve"], env=self.env(mode, ports),
                                 stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT)
        logf.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                c = http.client.HTTPConnection("127.0.0.1", ports[0], timeout=2)
                c.request("GET", "/readyz")
                if c.getresponse().status == 200:
                    return p
            except OSError:
                pass
            time.sleep(0.02)
        raise SystemExit(f"sluice ({mode}) not ready in 30 s")

    def log_text(self, mode):
        with open(os.path.join(self.tmp, f"sluice-{mode}.log"), errors="replace") as f:
            return f.read()

    def run_mode(self, mode):
        token, sid = self.source(f"bench-{mode}")
        socks, held = [], []
        if mode == "socket":
            for i in range(2):
                sk = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sk.bind(("127.0.0.1", 0))
                sk.listen(1024)
                socks.append(sk)
                os.dup2(sk.fileno(), 50 + i)
                held.append(50 + i)
            ports = [sk.getsockname()[1] for sk in socks]
        else:
            ports = []
            for _ in range(2):
                with socket.socket() as sk:
                    sk.bind(("127.0.0.1", 0))
                    ports.append(sk.getsockname()[1])
        pid = self.start(mode, ports, held).pid
        senders = [LogplexSender(f"{mode}{i}", ports[1], f"bench-{mode}", token, self.cert)
                   for i in range(self.args.senders)]
        prober = Prober(ports[0])
        for t in senders + [prober]:
            t.start()
        time.sleep(2)
        for _ in range(self.args.rounds):
            if mode == "upgrade":
                before = self.log_text(mode).count("upgrade: new process started")
                os.kill(pid, signal.SIGUSR2)
                deadline = time.monotonic() + 30
                while self.log_text(mode).count("upgrade: new process started") == before:
                    if time.monotonic() > deadline:
                        raise SystemExit("no new process")
                    time.sleep(0.01)
                new = int(re.findall(r"upgrade: new process started\" pid=(\d+)",
                                     self.log_text(mode))[-1])
                os.waitpid(pid, 0)
                pid = new
            else:
                os.kill(pid, signal.SIGTERM)
                os.waitpid(pid, 0)
                pid = self.start(mode, ports, held).pid
            time.sleep(2)
        for t in senders + [prober]:
            t.stop.set()
        for t in senders + [prober]:
            t.join(timeout=60)
        acked = sum(len(t.acked) for t in senders)
        dropped = sum(len(t.dropped) for t in senders)
        refused = prober.refused + sum(t.refused for t in senders)
        retried = sum(len(t.errors) for t in senders)
        want = set().union(*(t.messages() for t in senders))
        deadline = time.monotonic() + 60
        while True:
            stored = {}
            for line in self.psql(f"SELECT count(*), message FROM logs WHERE source_id = {sid} "
                                  f"GROUP BY message").splitlines():
                n, _, msg = line.partition("|")
                stored[msg.strip()] = int(n)
            found = len(want & set(stored))
            if found >= len(want) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        total, distinct = sum(stored.values()), len(stored)
        once = total == distinct and found == len(want)
        t0 = time.monotonic()
        os.kill(pid, signal.SIGTERM)
        os.waitpid(pid, 0)
        for fd in held:
            os.close(fd)
        for sk in socks:
            sk.close()
        res = (f"RESULT mode={mode} rounds={self.args.rounds} senders={self.args.senders} "
               f"acked={acked} refused={refused} dropped={dropped} retried_attempts={retried} "
               f"gap_ms={prober.max_ms:.0f} probes={prober.n} exactly_once={int(once)}")
        print(res, flush=True)
        log(f"{mode}: {acked} frames acknowledged, {refused} refused connections, "
            f"{dropped} dropped frames, {retried} failed attempts retried, longest accept "
            f"gap {prober.max_ms:.0f} ms, stored exactly once: {once} "
            f"(exit after SIGTERM {1000 * (time.monotonic() - t0):.0f} ms)")
        return mode == "plain" or (refused == 0 and dropped == 0 and once)

    def sigterm(self):
        token, _ = self.source("bench-sigterm")
        ports = []
        for _ in range(2):
            with socket.socket() as sk:
                sk.bind(("127.0.0.1", 0))
                ports.append(sk.getsockname()[1])
        p = self.start("sigterm", ports, [])
        senders = [LogplexSender(f"t{i}", ports[1], "bench-sigterm", token, self.cert)
                   for i in range(self.args.senders)]
        for t in senders:
            t.start()
        time.sleep(3)
        t0 = time.monotonic()
        p.send_signal(signal.SIGTERM)
        rc = p.wait(timeout=60)
        ms = 1000 * (time.monotonic() - t0)
        for t in senders:
            t.stop.set()
        for t in senders:
            t.join(timeout=60)
        unwritten = re.findall(r"unwritten_bytes=(\d+)", self.log_text("sigterm"))
        print(f"RESULT mode=sigterm senders={self.args.senders} exit_ms={ms:.0f} rc={rc} "
              f"unwritten_bytes={unwritten[-1] if unwritten else '?'}", flush=True)
        log(f"sigterm under load: exit {rc} after {ms:.0f} ms, spool left "
            f"{unwritten[-1] if unwritten else '?'} bytes")
        return rc == 0

    def close(self):
        subprocess.run([os.path.join(ROOT, "deploy", "pg.sh"), "destroy", self.pg_dir],
                       capture_output=True, timeout=120)
        shutil.rmtree(self.tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--senders", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--build", default=os.environ.get("BUILD", "build"))
    args = ap.parse_args()
    # the process an upgrade leaves behind becomes our child: wait for it, not PID 1
    ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)
    b = Bench(args)
    ok = True
    try:
        for mode in ("plain", "socket", "upgrade"):
            ok = b.run_mode(mode) and ok
        ok = b.sigterm() and ok
    finally:
        b.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
