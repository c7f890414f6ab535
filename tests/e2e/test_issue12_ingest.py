"""Ingest defects of issue 12, end to end: the real sluice, a real PostgreSQL, real TLS.
One test (or a few) per defect, named after what broke:

1. Retries from log-shuttle were stored twice: it sends no Logplex-Frame-Id, only the
   batch's X-Request-Id (the same on every retry). X-Request-Id is now the frame key when
   there is no Logplex-Frame-Id, in a key space of its own.
2. An HTTPS client that half-closed after its request never got its 204 and its
   connection was never closed (CLOSE-WAIT past the idle timeout, SIGTERM held).
3. A 413 said "body too large"; it now says the limit and the setting.
4. A 405 on /healthz, /readyz, /metrics and /api/ said "not found" without an Allow
   header (RFC 9110 §15.5.6).
"""

import gzip
import http.client
import json
import os
import signal
import socket
import ssl
import time
import uuid

from conftest import LOGPLEX_CT, basic_auth, frame_body, heroku_line, wait_for


# ---------------------------------------------------------------- helpers


def read_reply(sock, timeout):
    """Reads from a plain socket until the peer closes or timeout; returns the bytes."""
    sock.settimeout(timeout)
    out = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            out += chunk
    except socket.timeout:
        pass
    return out


def shuttle_request(src, body, request_id, frame_id=None):
    """A POST as log-shuttle sends it (outlet.go): application/logplex-1, Logplex-Msg-Count,
    the batch's X-Request-Id, HTTP Basic, and no Logplex-Frame-Id."""
    n = len(body.split(b" <")) if body else 0
    head = ["POST /logs HTTP/1.1", "Host: 127.0.0.1", "User-Agent: log-shuttle/0.22",
            "Content-Type: " + LOGPLEX_CT, f"Logplex-Msg-Count: {n}",
            "X-Request-Id: " + request_id, "Authorization: " + basic_auth(src),
            f"Content-Length: {len(body)}"]
    if frame_id is not None:
        head.append("Logplex-Frame-Id: " + frame_id)
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def shuttle_send(s, src, body, request_id, timeout, frame_id=None):
    """One attempt: sends the batch, waits at most timeout for the answer. Returns the
    status line (b"" when the sender gave up: log-shuttle then retries the same batch)."""
    c = socket.create_connection(("127.0.0.1", s.http_port), timeout=10)
    try:
        c.sendall(shuttle_request(src, body, request_id, frame_id))
        c.settimeout(timeout)
        try:
            out = c.recv(65536)
        except socket.timeout:
            return b""
        return out.split(b"\r\n", 1)[0]
    finally:
        c.close()


class HalfClosingTLSClient:
    """A TLS client over a raw socket (ssl.MemoryBIO), so that it can shut down the write
    side of the TCP connection after its request and still read the answer, as Go's
    CloseWrite or `openssl s_client` at the end of its input do. notify: send TLS
    close_notify before the FIN (a clean TLS half-close); without it the FIN comes alone."""

    def __init__(self, s, notify=False):
        self.notify = notify
        ctx = ssl.create_default_context(cafile=s.tls.cert)
        ctx.check_hostname = False
        self.inb, self.outb = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inb, self.outb, server_side=False)
        self.sock = socket.create_connection(("127.0.0.1", s.https_port), timeout=10)
        while True:
            try:
                self.obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
                data = self.sock.recv(65536)
                assert data, "server closed during the TLS handshake"
                self.inb.write(data)
        self._flush()
        self.eof_at = None

    def _flush(self):
        data = self.outb.read()
        if data:
            self.sock.sendall(data)

    def request(self, data):
        """A keep-alive request: sends data, returns the answer's head (up to CRLF CRLF)."""
        self.obj.write(data)
        self._flush()
        out = b""
        while b"\r\n\r\n" not in out:
            try:
                out += self.obj.read(65536)
                continue
            except ssl.SSLWantReadError:
                pass
            chunk = self.sock.recv(65536)
            assert chunk, f"closed after {out!r}"
            self.inb.write(chunk)
        return out

    def send_and_half_close(self, data):
        self.obj.write(data)
        if self.notify:
            try:
                self.obj.unwrap()
            except ssl.SSLWantReadError:
                pass  # the server's close_notify is not awaited
        self._flush()
        self.sock.shutdown(socket.SHUT_WR)

    def read_until_closed(self, timeout):
        """Decrypted bytes until the server closes the TCP connection (self.eof_at is then
        its time) or timeout passes."""
        out = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                data = b""
            if not data:
                self.eof_at = time.monotonic()
                break
            self.inb.write(data)
            while True:
                try:
                    out += self.obj.read(65536)
                except (ssl.SSLWantReadError, ssl.SSLZeroReturnError):
                    break
                except ssl.SSLError:
                    break
        return out

    def close(self):
        self.sock.close()


def post_req(src, body):
    return (b"POST /logs HTTP/1.1\r\nHost: x\r\nContent-Type: application/logplex-1\r\n"
            b"Authorization: " + basic_auth(src).encode() +
            b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)


# ---------------------------------------------------------------- 1. log-shuttle retries


def test_log_shuttle_retry_after_timeout_is_stored_once(sluice, db):
    """log-shuttle gives up on a batch after its timeout (5 s by default) and sends it
    again with the same X-Request-Id. The stall is made by the test, not hoped for: the
    server is stopped (SIGSTOP, as a long fsync or a paused VM would) while the first
    attempt is in flight, so the sender's 0.5 s timeout passes with no answer; the sender
    then retries the same batch (the retry waits in the kernel's queues) and the server is
    resumed. Both attempts are complete requests, so both are spooled and answered: only
    the frame key can keep the batch from being stored twice."""
    s = sluice()
    src = s.add_source()
    rid = str(uuid.uuid4())
    body = frame_body([heroku_line(f"shuttle line {i}", app="app", proc="log-shuttle")
                       for i in range(3)])
    dup_before = s.metric("sluice_duplicate_frames_total")

    os.kill(s.proc.pid, signal.SIGSTOP)
    try:
        assert shuttle_send(s, src, body, rid, timeout=0.5) == b"", "answered while stopped"
        # the retry: same batch, same X-Request-Id, on a new connection
        c = socket.create_connection(("127.0.0.1", s.http_port), timeout=10)
        c.sendall(shuttle_request(src, body, rid))
    finally:
        os.kill(s.proc.pid, signal.SIGCONT)
    try:
        status = read_reply(c, 10).split(b"\r\n", 1)[0]
    finally:
        c.close()
    assert status == b"HTTP/1.1 204 No Content", status
    rows = db.wait_rows(src.id, 3, settle=1.5)
    assert sorted(r["message"] for r in rows) == [f"shuttle line {i}" for i in range(3)]
    wait_for(lambda: s.metric("sluice_duplicate_frames_total") >= dup_before + 1, 5,
             what="the retry counted as a duplicate frame")

    # a later retry, after the first is committed, is skipped too
    assert shuttle_send(s, src, body, rid, timeout=10) == b"HTTP/1.1 204 No Content"
    db.wait_rows(src.id, 3, settle=1.5)


def test_request_id_and_frame_id_keys_do_not_collide(sluice, db):
    """A Logplex-Frame-Id and an X-Request-Id with the same text are different frames;
    a request with both is keyed by its Logplex-Frame-Id."""
    s = sluice()
    src = s.add_source()
    same = "2d8ad3ee0f2b4e6f8b1f0a9c7d6e5f40"
    one = frame_body([heroku_line("by request id")])
    two = frame_body([heroku_line("by frame id")])
    assert shuttle_send(s, src, one, same, 10) == b"HTTP/1.1 204 No Content"
    assert shuttle_send(s, src, two, "other", 10, frame_id=same) == b"HTTP/1.1 204 No Content"
    # both headers: the Logplex-Frame-Id decides (a new X-Request-Id does not make it new)
    assert shuttle_send(s, src, two, "another", 10, frame_id=same) == b"HTTP/1.1 204 No Content"
    rows = db.wait_rows(src.id, 2, settle=1.5)
    assert sorted(r["message"] for r in rows) == ["by frame id", "by request id"]


# ---------------------------------------------------------------- 2. TLS half-close


def test_https_half_closed_client_gets_204_and_is_closed(sluice, db):
    s = sluice(SLUICE_IDLE_TIMEOUT=3)
    src = s.add_source()
    for notify in (False, True):
        c = HalfClosingTLSClient(s, notify=notify)
        try:
            t0 = time.monotonic()
            c.send_and_half_close(post_req(src, frame_body([heroku_line(f"tls half {notify}")])))
            out = c.read_until_closed(8)
            assert out.startswith(b"HTTP/1.1 204"), (notify, out[:80])
            assert c.eof_at is not None, f"notify={notify}: not closed within 8 s"
            assert c.eof_at - t0 < 3, f"notify={notify}: closed after {c.eof_at - t0:.1f} s"
        finally:
            c.close()
    # the half-close after a second request on a kept-alive connection: the request and
    # the close_notify arrive together, and the server reads them in one go
    for notify in (False, True):
        c = HalfClosingTLSClient(s, notify=notify)
        try:
            for i in range(3):
                head = c.request(post_req(src, frame_body([heroku_line(f"ka {notify} {i}")])))
                assert head.startswith(b"HTTP/1.1 204"), head
            t0 = time.monotonic()
            c.send_and_half_close(post_req(src, frame_body([heroku_line(f"ka {notify} last")])))
            out = c.read_until_closed(8)
            assert out.startswith(b"HTTP/1.1 204"), (notify, out[:80])
            assert c.eof_at is not None and c.eof_at - t0 < 3, f"notify={notify}: not closed"
        finally:
            c.close()
    db.wait_rows(src.id, 10)
    # the only connection left is the one asking for the metrics
    wait_for(lambda: s.metric("sluice_connections") == 1, 5, what="no open connections")


def test_https_half_close_read_with_the_end_of_a_request(sluice, db):
    """The end of a request and the half-close read in one go: libevent's OpenSSL
    bufferevent reports the EOF before it hands over the bytes read with it (when its
    input buffer is partly filled: here by the first ~17-20 KB of a head sent earlier),
    so the EOF must wait until those bytes are read."""
    s = sluice(SLUICE_MAX_HEADER_BYTES=65536)
    src = s.add_source()
    for notify in (False, True):
        for pad in (17000, 20000):
            req = post_req(src, frame_body([heroku_line(f"split {notify} {pad}")]))
            i = req.index(b"\r\n") + 2
            req = req[:i] + b"X-Pad: " + b"a" * pad + b"\r\n" + req[i:]
            cut = i + pad
            c = HalfClosingTLSClient(s, notify=notify)
            try:
                c.obj.write(req[:cut])
                c._flush()
                time.sleep(0.2)  # the server reads the first part: its head is incomplete
                c.send_and_half_close(req[cut:])
                out = c.read_until_closed(8)
                assert out.startswith(b"HTTP/1.1 204"), (notify, pad, out[:80])
                assert c.eof_at is not None, (notify, pad)
            finally:
                c.close()
    db.wait_rows(src.id, 4)


def test_sigterm_is_not_held_by_half_closed_https_clients(sluice, db):
    """Five HTTPS clients half-close after their request (three after a TLS close_notify,
    two with a bare FIN); SIGTERM must not wait for them (it took 12.6 s: half the
    default SLUICE_SHUTDOWN_GRACE). Each gets its 204 before the server exits."""
    s = sluice()  # the default idle timeout (120 s) must not matter
    src = s.add_source()
    clients = [HalfClosingTLSClient(s, notify=i < 3) for i in range(5)]
    try:
        for i, c in enumerate(clients):
            c.send_and_half_close(post_req(src, frame_body([heroku_line(f"hc {i}")])))
        db.wait_rows(src.id, 5)
        t0 = time.monotonic()
        s.proc.send_signal(signal.SIGTERM)
        s.proc.wait(timeout=30)
        took = time.monotonic() - t0
        assert took < 3, f"SIGTERM took {took:.1f} s with five half-closed HTTPS clients"
        for i, c in enumerate(clients):
            out = c.read_until_closed(2)
            assert out.startswith(b"HTTP/1.1 204"), (i, out[:80])
    finally:
        for c in clients:
            c.close()


# ---------------------------------------------------------------- 3. 413 says the limit


def test_413_names_the_limit_and_its_setting(sluice):
    s = sluice(SLUICE_MAX_BODY_BYTES=65536)
    src = s.add_source()
    want = b"65536 bytes (SLUICE_MAX_BODY_BYTES)"
    # Content-Length over the limit: refused before the body is read
    c = socket.create_connection(("127.0.0.1", s.http_port), timeout=10)
    try:
        c.sendall(post_req(src, b"x" * 70000))
        out = read_reply(c, 5)
    finally:
        c.close()
    assert out.startswith(b"HTTP/1.1 413"), out[:80]
    assert out.endswith(b"\r\n\r\nbody over " + want + b"\n"), out
    # gunzipped past the limit
    big = frame_body([heroku_line("z" * 1000)] * 100)
    conn = http.client.HTTPConnection("127.0.0.1", s.http_port, timeout=10)
    try:
        conn.request("POST", "/logs", body=gzip.compress(big),
                     headers={"Authorization": basic_auth(src), "Content-Encoding": "gzip",
                              "Content-Type": LOGPLEX_CT})
        r = conn.getresponse()
        text = r.read()
    finally:
        conn.close()
    assert r.status == 413, (r.status, text)
    assert text == b"gunzipped body over " + want + b"\n", text


# ---------------------------------------------------------------- 4. 405 and Allow


def test_405_says_method_not_allowed_with_allow_header(server):
    for path, allow in [("/healthz", "GET, HEAD"), ("/readyz", "GET, HEAD"),
                        ("/metrics", "GET, HEAD"), ("/api/v1/search", "GET, HEAD"),
                        ("/logs", "POST")]:
        for method in ("POST", "PUT", "DELETE") if path != "/logs" else ("GET", "PUT"):
            c = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=10)
            try:
                c.request(method, path, body=b"")
                r = c.getresponse()
                body = r.read()
            finally:
                c.close()
            assert r.status == 405, (method, path, r.status)
            assert r.getheader("Allow") == allow, (method, path, r.getheaders())
            if path.startswith("/api/"):  # the read API's errors are JSON (docs/api.md)
                assert r.getheader("Content-Type") == "application/json", r.getheaders()
                assert json.loads(body) == {"error": "method not allowed"}, body
            elif path != "/logs":
                assert body == b"method not allowed\n", (method, path, body)
