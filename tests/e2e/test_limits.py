"""Limits a client cannot push past: connections, head size, slow and idle clients.

Each answer is explicit (a status, or a close counted in /metrics) and the server keeps
serving others afterwards.
"""

import socket
import time

from conftest import basic_auth, frame_body, heroku_line, wait_for


def raw(server, data, timeout=5):
    """Sends bytes on a plain HTTP connection; returns what the server answered until close."""
    s = socket.create_connection(("127.0.0.1", server.http_port), timeout=timeout)
    try:
        s.sendall(data)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            out += chunk
        return out
    finally:
        s.close()


def test_connection_limit(sluice):
    """Over the cap and its health reserve (3 / 64 + 2 = 2 more), with no idle connection
    to reclaim (each holds a request begun), a new connection is closed at accept."""
    s = sluice(SLUICE_MAX_CONNECTIONS=3)
    held = []
    for _ in range(5):
        held.append(socket.create_connection(("127.0.0.1", s.http_port), timeout=5))
        held[-1].sendall(b"POST /logs HTTP/1.1\r\n")
        time.sleep(0.1)  # read before the next comes: busy, not idle (idle would be reclaimed)
    try:
        time.sleep(0.3)
        extra = socket.create_connection(("127.0.0.1", s.http_port), timeout=5)
        extra.settimeout(5)
        try:
            # closed at accept: EOF (or a reset) without any answer
            try:
                got = extra.recv(100)
            except ConnectionResetError:
                got = b""
            assert got == b""
        finally:
            extra.close()
    finally:
        for h in held:
            h.close()
    # once the others are gone (the server sees their EOF), connections are served again
    def served():
        try:
            return s.get("/healthz").status == 200
        except OSError:
            return False
    wait_for(served, 5, what="service after the limit")
    assert s.metric("sluice_connections_rejected_total") >= 1


def test_request_head_too_large(sluice):
    s = sluice(SLUICE_MAX_HEADER_BYTES=2048)
    head = b"POST /logs HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 4000 + b"\r\n\r\n"
    out = raw(s, head)
    assert out.startswith(b"HTTP/1.1 431 "), out[:80]
    assert s.get("/healthz").status == 200


def test_malformed_request_400(sluice):
    s = sluice()
    out = raw(s, b"POST /logs HTTP/1.1\r\nHost x\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400 "), out[:80]
    out = raw(s, b"POST /logs HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd")
    assert out.startswith(b"HTTP/1.1 400 "), out[:80]


def test_slow_client_gets_408(sluice):
    """A request that trickles in slower than SLUICE_REQUEST_TIMEOUT is cut off with 408."""
    s = sluice(SLUICE_REQUEST_TIMEOUT=1)
    src = s.add_source()
    body = frame_body([heroku_line("slow")])
    head = (f"POST /logs HTTP/1.1\r\nHost: x\r\nAuthorization: {basic_auth(src)}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    c = socket.create_connection(("127.0.0.1", s.http_port), timeout=5)
    try:
        c.sendall(head + body[:5])
        t0 = time.monotonic()
        out = b""
        while True:
            chunk = c.recv(4096)
            if not chunk:
                break
            out += chunk
        took = time.monotonic() - t0
    finally:
        c.close()
    assert out.startswith(b"HTTP/1.1 408 "), out[:80]
    assert 0.5 < took < 4, took
    # nothing of the unfinished request was stored
    assert s.db.count(src.id) == 0


def test_idle_keepalive_closed(sluice):
    s = sluice(SLUICE_IDLE_TIMEOUT=1)
    c = socket.create_connection(("127.0.0.1", s.http_port), timeout=5)
    try:
        t0 = time.monotonic()
        assert c.recv(10) == b""  # closed quietly, no answer to a request never sent
        assert time.monotonic() - t0 < 4
    finally:
        c.close()
