"""A local HTTP receiver for alert deliveries (tests/e2e/test_alerts.py).

Receiver(script=[...]) listens on 127.0.0.1 (a free port, or the one given) in a thread and
records every request: method, path, headers (lower-cased names), raw body, arrival time.
The answer to request number i (0-based) is script[i], and `default` after the script:

    200                                  status only (body b"ok")
    (429, {"Retry-After": "1"})          status and headers
    (202, {...}, b'{"status":"success"}') status, headers, body
    "close"                              drop the connection without an answer
    ("hang", 30)                         record the request, answer nothing for 30 s, then
                                         drop the connection (a delivery left in flight)

Receiver(up=False) only reserves its port: nothing listens there (connections are refused)
until start(); stop() closes the port again. Everything stays on 127.0.0.1.
"""

import dataclasses
import http.server
import json
import socket
import socketserver
import threading
import time
import urllib.parse


@dataclasses.dataclass
class Request:
    n: int
    method: str
    path: str
    headers: dict
    body: bytes
    at: float  # time.monotonic()
    wall: float  # time.time()

    def json(self):
        return json.loads(self.body)

    def form(self):
        return urllib.parse.parse_qs(self.body.decode(), keep_blank_values=True, strict_parsing=True)


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    request_queue_size = 256  # a burst of deliveries must not wait on SYN retransmits
    daemon_threads = True
    allow_reuse_address = True


def _reserve_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Receiver:
    def __init__(self, script=(), default=200, up=True, port=0, path="/hook"):
        self.script = list(script)
        self.default = default
        self.port = port or _reserve_port()
        self.path = path
        self.requests = []
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._srv = None
        self._thread = None
        if up:
            self.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}{self.path}"

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.port}"

    def _answer(self, n):
        return self.script[n] if n < len(self.script) else self.default

    def start(self):
        if self._srv is not None:
            return self
        rcv = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _read_body(self):
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    out = b""
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return out
                        out += self.rfile.read(size)
                        self.rfile.readline()
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n) if n else b""

            def _handle(self):
                body = self._read_body()
                with rcv._cond:
                    n = len(rcv.requests)
                    rcv.requests.append(Request(
                        n, self.command, self.path,
                        {k.lower(): v for k, v in self.headers.items()}, body,
                        time.monotonic(), time.time()))
                    rcv._cond.notify_all()
                ans = rcv._answer(n)
                if isinstance(ans, tuple) and ans and ans[0] == "hang":
                    end = time.monotonic() + ans[1]
                    while time.monotonic() < end and rcv._srv is not None:
                        time.sleep(0.05)
                    ans = "close"
                if ans == "close":
                    self.close_connection = True
                    try:
                        self.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    return
                if isinstance(ans, int):
                    ans = (ans,)
                status = ans[0]
                headers = ans[1] if len(ans) > 1 else {}
                out = ans[2] if len(ans) > 2 else b"ok"
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_POST = do_PUT = do_GET = _handle

        self._srv = _Server(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._srv.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._srv is None:
            return
        self._srv.shutdown()
        self._srv.server_close()
        self._thread.join(5)
        self._srv = self._thread = None

    def snapshot(self):
        with self._lock:
            return list(self.requests)

    def wait(self, n, timeout, what=None):
        """Waits until at least n requests arrived; returns them all. AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.requests) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"receiver {self.url}: expected {n} request(s){' (' + what + ')' if what else ''} "
                        f"within {timeout}s, got {len(self.requests)}: "
                        f"{[(r.method, r.path, r.body[:200]) for r in self.requests]}")
                self._cond.wait(left)
            return list(self.requests)

    def wait_match(self, pred, timeout, what="a matching request"):
        """Waits until some request satisfies pred; returns it."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for r in self.requests:
                    if pred(r):
                        return r
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"receiver {self.url}: no {what} within {timeout}s; got "
                        f"{[(r.method, r.path, r.body[:300]) for r in self.requests]}")
                self._cond.wait(left)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
