"""Issue 13, items 1, 4 and three of 7: no client without a token can lock the drains out.

1. Idle connections from one address took the whole connection cap; a TLS handshake sent
   a byte at a time held a slot for minutes; /healthz was refused with the rest.
   Now: SLUICE_HEAD_TIMEOUT from accept (handshake included), at most
   SLUICE_MAX_CONNECTIONS_PER_ADDRESS unauthenticated connections an address, idle ones
   reclaimed near the cap, a reserve of connections for /healthz and /readyz.
4. Out of file descriptors, accept() failed in a busy loop (100 % CPU, millions of log
   lines). Now: the limit is checked at start and accepting pauses on EMFILE.
7. SIGTERM left idle keep-alive drains open and hung new requests; a second
   Authorization header was accepted; /metrics answered anyone on the public ports.

Hostile clients connect from 127.0.0.2 (all of 127/8 is loopback on Linux) so the
per-address cap tells them from the legitimate drain on 127.0.0.1.
"""

import http.client
import os
import resource
import signal
import socket
import ssl
import subprocess
import time

import pytest

from conftest import SLUICE, basic_auth, frame_body, free_port, heroku_line, wait_for

HOSTILE = "127.0.0.2"


def hostile_conn(port, partial=b""):
    c = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(HOSTILE, 0))
    if partial:
        c.sendall(partial)
    return c


def closed_by_server(sock, within):
    """True when the server closes sock (EOF or reset) within `within` seconds."""
    sock.settimeout(within)
    try:
        while True:
            if sock.recv(4096) == b"":
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def post_status(s, src, timeout=10):
    r = s.post(src, frame_body([heroku_line("legit")]), timeout=timeout)
    return r.status


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def log_lines(s):
    with open(s.log_path, "rb") as f:
        return f.read().count(b"\n")


# ---------------------------------------------------------------- item 1


@pytest.mark.parametrize("per_address", [16, 0])
def test_idle_connections_from_one_address_do_not_lock_out_drains(sluice, per_address):
    """200 idle connections from one address against a cap of 64: a drain still gets 204.
    With a per-address cap they are refused at accept; without one (0) the oldest idle
    ones are reclaimed as new connections come."""
    s = sluice(SLUICE_MAX_CONNECTIONS=64, SLUICE_MAX_CONNECTIONS_PER_ADDRESS=per_address)
    src = s.add_source()
    held = []
    try:
        for _ in range(200):
            try:
                held.append(hostile_conn(s.http_port))
            except OSError:
                pass
        time.sleep(0.5)
        t0 = time.monotonic()
        statuses = [post_status(s, src) for _ in range(5)]
        took = time.monotonic() - t0
        assert statuses == [204] * 5, statuses
        assert took < 10, took
        assert s.get("/healthz").status == 200
        m = s.metrics()
        rejected = sum(v for (name, _), v in m.items()
                       if name == "sluice_connections_rejected_address_total")
        reclaimed = sum(v for (name, _), v in m.items()
                        if name == "sluice_connections_reclaimed_total")
        if per_address:
            assert rejected >= 200 - per_address - 1
        else:
            assert reclaimed >= 1
    finally:
        for h in held:
            h.close()


def client_hello():
    """The first flight of a real TLS client, as bytes."""
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


def test_tls_handshake_a_byte_at_a_time_is_cut_at_head_deadline(sluice):
    s = sluice(SLUICE_HEAD_TIMEOUT=2)
    hello = client_hello()
    c = hostile_conn(s.https_port)
    t0 = time.monotonic()
    cut = False
    try:
        c.settimeout(0.3)
        for b in hello:  # a byte every 0.3 s: each resets the idle timeout
            try:
                c.sendall(bytes([b]))
                if c.recv(100) == b"":
                    cut = True
                    break
            except socket.timeout:
                pass
            except OSError:
                cut = True
                break
            if time.monotonic() - t0 > 8:
                break
    finally:
        c.close()
    took = time.monotonic() - t0
    assert cut, f"a trickled TLS handshake still open after {took:.1f}s"
    assert 1.5 < took < 5, took
    assert s.metric("sluice_head_timeouts_total") >= 1


def test_silent_and_partial_heads_cut_at_head_deadline(sluice):
    s = sluice(SLUICE_HEAD_TIMEOUT=1)
    silent = hostile_conn(s.http_port)
    partial = hostile_conn(s.http_port, b"POST /logs HTTP/1.1\r\nHost: x\r\n")
    try:
        assert closed_by_server(silent, 4)
        partial.settimeout(4)
        out = partial.recv(200)
        assert out.startswith(b"HTTP/1.1 408 "), out
    finally:
        silent.close()
        partial.close()


def test_syslog_stream_must_authenticate_within_head_deadline(sluice):
    """A syslog stream that sends nothing, or only lines of no known source, is closed at
    SLUICE_HEAD_TIMEOUT; one that sent a line of its source keeps SLUICE_IDLE_TIMEOUT."""
    s = sluice(SLUICE_HEAD_TIMEOUT=1)
    src = s.add_source()
    stranger = "<190>1 2026-11-21T10:00:00+00:00 d.nobody app web.1 - - stranger\n"
    good = f"<134>1 2026-11-21T10:00:00.000Z {src.hostname} app worker.2 - - mine\n"
    silent = hostile_conn(s.syslog_port)
    unknown = hostile_conn(s.syslog_port, stranger.encode())
    known = socket.create_connection(("127.0.0.1", s.syslog_port), timeout=5)
    try:
        known.sendall(good.encode())
        assert closed_by_server(silent, 4)
        assert closed_by_server(unknown, 4)
        assert not closed_by_server(known, 2.5)  # past the head deadline, still open
        known.sendall(good.encode())
    finally:
        for c in (silent, unknown, known):
            c.close()
    assert len(s.db.wait_rows(src.id, 2)) == 2


def test_healthz_answers_while_cap_full(sluice):
    """Every slot holds a request in progress (not idle, so not reclaimable): /healthz and
    /readyz still answer, from the reserve; anything else there is 503 and closes."""
    s = sluice(SLUICE_MAX_CONNECTIONS=16, SLUICE_MAX_CONNECTIONS_PER_ADDRESS=0)
    src = s.add_source()
    held = []
    try:
        for _ in range(16):
            held.append(hostile_conn(s.http_port, b"POST /logs HTTP/1.1\r\n"))
            time.sleep(0.05)  # read before the next comes: busy, not idle (reclaimable)
        time.sleep(0.3)
        assert s.metric("sluice_connections_reclaimed_total") == 0
        for _ in range(5):
            assert s.get("/healthz").status == 200
        assert s.get("/readyz").status == 200
        r = s.post(src, frame_body([heroku_line("over the cap")]), scheme="http", timeout=5)
        assert r.status == 503, r
        assert r.headers.get("connection") == "close"
    finally:
        for h in held:
            h.close()


# ---------------------------------------------------------------- item 4


def test_nofile_limit_too_low_refused_at_start(db, workdir):
    env = dict(os.environ, DATABASE_URL=db.url, SLUICE_BIND="127.0.0.1", PORT=str(free_port()),
               SLUICE_SPOOL_DIR=os.path.join(workdir, "spool-nofile"))

    def low():
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))

    try:
        r = subprocess.run([SLUICE, "serve"], env=env, preexec_fn=low, capture_output=True,
                           text=True, timeout=10)
    except subprocess.TimeoutExpired:
        pytest.fail("sluice started under ulimit -n 256 with SLUICE_MAX_CONNECTIONS=1024")
    assert r.returncode == 2, r
    assert "open file limit too low" in r.stderr, r.stderr
    assert "SLUICE_MAX_CONNECTIONS" in r.stderr


def test_out_of_descriptors_does_not_spin(sluice):
    """The limit lowered under a running server (as an accident would): 300 idle
    connections run it out of descriptors; accepting pauses instead of spinning."""
    s = sluice(SLUICE_MAX_CONNECTIONS_PER_ADDRESS=0)
    subprocess.run(["prlimit", "--pid", str(s.proc.pid), "--nofile=128:128"], check=True)
    held = []
    try:
        lines0 = log_lines(s)
        for _ in range(300):
            try:
                held.append(hostile_conn(s.http_port))
            except OSError:
                break
        cpu0 = cpu_seconds(s.proc.pid)
        time.sleep(5)
        cpu = cpu_seconds(s.proc.pid) - cpu0
        assert cpu < 1.0, f"{cpu:.2f}s of CPU in 5 s while out of descriptors"
        assert log_lines(s) - lines0 < 20, "a log line per failed accept"
    finally:
        for h in held:
            h.close()
    wait_for(lambda: s.get("/healthz").status == 200, 10, what="accepting again")
    assert s.metric("sluice_accept_paused_total") >= 1


# ---------------------------------------------------------------- item 7


def keepalive_post(port, src, body):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("POST", "/logs", body=body,
              headers={"Authorization": basic_auth(src), "Content-Type": "application/logplex-1"})
    r = c.getresponse()
    r.read()
    return c, r.status


def test_sigterm_closes_idle_keepalive_and_refuses_new_requests(sluice, pg):
    """SIGTERM with PostgreSQL down and a backlog (the writer then takes the grace period
    at exit): an idle keep-alive drain is closed at once, not left open until exit, and
    a request completed after TERM gets 503 + Connection: close, not a hang and a reset."""
    s = sluice(SLUICE_SHUTDOWN_GRACE=16)
    src = s.add_source()
    body = frame_body([heroku_line("before TERM")])
    idle = busy = None
    pg.stop()
    try:
        idle, st = keepalive_post(s.http_port, src, body)  # spooled, not written
        assert st == 204
        head = (f"POST /logs HTTP/1.1\r\nHost: x\r\nAuthorization: {basic_auth(src)}\r\n"
                f"Content-Length: {len(body)}\r\n")
        busy = socket.create_connection(("127.0.0.1", s.http_port), timeout=5)
        busy.sendall(head.encode())  # a request begun: keeps the drain phase going
        time.sleep(0.3)
        s.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        t0 = time.monotonic()
        assert closed_by_server(idle.sock, 2), "idle keep-alive still open after SIGTERM"
        busy.sendall(b"\r\n" + body)
        busy.settimeout(3)
        try:
            out = busy.recv(300)
        except (socket.timeout, ConnectionResetError):
            out = b"(no answer)"
        took = time.monotonic() - t0
        assert out.startswith(b"HTTP/1.1 503 "), out
        assert b"Connection: close" in out
        assert took < 3, took
        s.proc.wait(timeout=30)
    finally:
        for c in (idle, busy):
            if c is not None:
                c.close()
        pg.start()


def test_sigterm_closes_idle_keepalive_with_nothing_in_flight(sluice, pg):
    """Nothing busy at TERM: the loop stops at once and the writer takes the grace period;
    the idle drain's socket must be closed then, not at exit (a request sent on it hung
    until exit and was reset)."""
    s = sluice(SLUICE_SHUTDOWN_GRACE=16)
    src = s.add_source()
    body = frame_body([heroku_line("before TERM")])
    idle = None
    pg.stop()
    try:
        idle, st = keepalive_post(s.http_port, src, body)
        assert st == 204
        s.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        assert s.proc.poll() is None  # still flushing: the case at hand
        assert closed_by_server(idle.sock, 2), "idle keep-alive still open after SIGTERM"
        s.proc.wait(timeout=30)
    finally:
        if idle is not None:
            idle.close()
        pg.start()


def test_duplicate_authorization_is_400(sluice):
    s = sluice()
    src = s.add_source()
    other = s.add_source()
    body = frame_body([heroku_line("dup")])
    head = (f"POST /logs HTTP/1.1\r\nHost: x\r\nAuthorization: {basic_auth(src)}\r\n"
            f"Authorization: {basic_auth(other)}\r\nContent-Length: {len(body)}\r\n\r\n")
    c = socket.create_connection(("127.0.0.1", s.http_port), timeout=5)
    try:
        c.sendall(head.encode() + body)
        out = c.recv(200)
    finally:
        c.close()
    assert out.startswith(b"HTTP/1.1 400 "), out
    time.sleep(0.5)
    assert s.db.count(src.id) == 0 and s.db.count(other.id) == 0


def test_metrics_token(sluice):
    s = sluice(SLUICE_METRICS_TOKEN="m3tr1cs")
    assert s.get("/metrics").status == 401
    c = http.client.HTTPConnection("127.0.0.1", s.http_port, timeout=5)
    c.request("GET", "/metrics", headers={"Authorization": "Bearer wrong"})
    assert c.getresponse().status == 401
    c.close()
    c = http.client.HTTPConnection("127.0.0.1", s.http_port, timeout=5)
    c.request("GET", "/metrics", headers={"Authorization": "Bearer m3tr1cs"})
    r = c.getresponse()
    assert r.status == 200 and b"sluice_connections" in r.read()
    c.close()
    assert s.get("/healthz").status == 200  # health endpoints stay open


def non_loopback_address():
    try:
        out = subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout.split()
    except OSError:
        return None
    return next((a for a in out if "." in a and not a.startswith("127.")), None)


def test_metrics_loopback_only_without_token(sluice):
    addr = non_loopback_address()
    if addr is None:
        pytest.skip("no non-loopback IPv4 address on this host")
    for attempt in range(3):  # 0.0.0.0 may collide with a port another test holds
        try:
            s = sluice(SLUICE_BIND="0.0.0.0")
            break
        except pytest.fail.Exception:
            if attempt == 2:
                raise
    assert s.get("/metrics").status == 200  # from 127.0.0.1
    c = http.client.HTTPConnection(addr, s.http_port, timeout=5)
    c.request("GET", "/metrics")
    assert c.getresponse().status == 403
    c.close()
    c = http.client.HTTPConnection(addr, s.http_port, timeout=5)
    c.request("GET", "/healthz")
    assert c.getresponse().status == 200
    c.close()
