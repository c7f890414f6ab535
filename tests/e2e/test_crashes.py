"""Crashes into Sentry end to end (issue 11, docs/crashes.md): real `sluice serve` nodes on
one PostgreSQL, lines in through the real drain (curl, Heroku frames) with other dynos'
lines interleaved, and a real local HTTP receiver (tests/e2e/receiver.py) acting as
Sentry's envelope endpoint.

What is checked here is the system: anchors stored with the rows, the crash thread
joining what was stored (across two nodes and across a SIGKILL), exactly one envelope
per crash with the auth header, rate limits (429, Retry-After, X-Sentry-Rate-Limits)
without a storm, the DSN checks of `sluice source set`, `sluice crashes`, and a rule that
matches a crash. How traces are parsed is the assembler's (tests/unit/test_crash.c and
the SDK oracle tests).

Servers run with SLUICE_ALERT_ALLOW_PRIVATE=127.0.0.1 so the loopback "Sentry" is allowed.
"""

import datetime
import json
import re
import time

import pytest

from conftest import Server, add_source, frame_body, heroku_line, sluice_cli, wait_for
from receiver import Receiver

ALLOW = {"SLUICE_ALERT_ALLOW_PRIVATE": "127.0.0.1"}

PY_TRACE = [
    "Traceback (most recent call last):",
    '  File "/app/app/main.py", line 42, in handle',
    "    return process(order)",
    '  File "/app/app/orders.py", line 17, in process',
    "    total = compute(order.items)",
    '  File "/app/.heroku/python/lib/python3.11/site-packages/pricing/core.py", line 88, in compute',
    "    raise ValueError(f\"bad price for {item}\")",
    "ValueError: bad price for sku-17",
]

JAVA_TRACE = [
    'Exception in thread "main" java.lang.IllegalStateException: order 17 has no lines',
    "\tat com.shop.orders.OrderService.total(OrderService.java:51)",
    "\tat com.shop.orders.OrderController.checkout(OrderController.java:23)",
    "\tat com.shop.Main.main(Main.java:9)",
]


# ---------------------------------------------------------------- helpers


def now_ts(offset_ms=0):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(milliseconds=offset_ms)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def trace_lines(trace, proc="web.1", start_ms=0, app="app"):
    """A trace as Heroku frames it (one message per line) with the lines' own times 1 ms apart."""
    return [heroku_line(m, app=app, proc=proc, ts=now_ts(start_ms + i)) for i, m in enumerate(trace)]


def noise(n, proc="web.2", start_ms=0):
    return [heroku_line(f'at=info method=GET path="/p/{i}" status=200', app="heroku", proc="router",
                        ts=now_ts(start_ms + i)) if i % 2 else
            heroku_line(f"request {i} done in 12ms", proc=proc, ts=now_ts(start_ms + i))
            for i in range(n)]


def interleave(a, b):
    out = []
    for i in range(max(len(a), len(b))):
        if i < len(a):
            out.append(a[i])
        if i < len(b):
            out.append(b[i])
    return out


def post(server, src, lines):
    r = server.post(src, frame_body(lines))
    assert r.status == 204, f"POST to {server.https_port}: {r}"


def dsn(rcv, key="0123456789abcdef0123456789abcdef", project="42"):
    return f"http://{key}@127.0.0.1:{rcv.port}/{project}"


def set_dsn(db, src, value):
    return sluice_cli(db, "source", "set", src.name, "--sentry-dsn", value)


def envelope(req):
    """(header, [(item header, payload)]) of an envelope request body."""
    body = req.body
    nl = body.index(b"\n")
    head = json.loads(body[:nl])
    items, i = [], nl + 1
    while i < len(body):
        nl = body.find(b"\n", i)
        ih = json.loads(body[i:nl if nl >= 0 else len(body)])
        i = nl + 1
        n = ih.get("length")
        if n is None:
            nl = body.find(b"\n", i)
            payload = body[i:nl if nl >= 0 else len(body)]
            i = (nl + 1) if nl >= 0 else len(body)
        else:
            payload = body[i:i + n]
            i += n
            if i < len(body) and body[i:i + 1] == b"\n":
                i += 1
        items.append((ih, json.loads(payload)))
    return head, items


def event_of(req):
    head, items = envelope(req)
    events = [p for ih, p in items if ih.get("type") == "event"]
    assert len(events) == 1, f"expected one event item, got {items}"
    assert events[0].get("event_id", head.get("event_id")) == head.get("event_id")
    return events[0]


def crashes(db, src):
    return db.query("SELECT * FROM crashes WHERE source_id = %s ORDER BY id", (src.id,))


def wait_crashes(db, src, n, timeout=20):
    wait_for(lambda: len(crashes(db, src)) >= n, timeout,
             what=f"{n} crash(es) of {src.name} (have {len(crashes(db, src))})")
    return crashes(db, src)


def check_auth(req, key="0123456789abcdef0123456789abcdef"):
    auth = req.headers.get("x-sentry-auth", "")
    assert auth.startswith("Sentry "), auth
    parts = dict(p.strip().split("=", 1) for p in auth[len("Sentry "):].split(","))
    assert parts["sentry_version"] == "7", auth
    assert parts["sentry_key"] == key, auth
    assert re.fullmatch(r"sluice/\d+\.\d+\.\d+", parts["sentry_client"]), auth
    assert req.headers.get("content-type") == "application/x-sentry-envelope"
    assert req.path == "/api/42/envelope/", req.path


def quiet(rcv, n, seconds=2.0):
    """No more than n requests arrive over the next seconds (a bounded wait, no timing claim)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        assert len(rcv.snapshot()) <= n, [r.body[:200] for r in rcv.snapshot()]
        time.sleep(0.1)


@pytest.fixture(scope="module")
def node(db, tls, workdir):
    """One server shared by the simple cases."""
    s = Server(db, tls, workdir, ALLOW)
    s.start()
    yield s
    s.stop()


@pytest.fixture
def sentry():
    rcv = Receiver(path="/api/42/envelope/")
    yield rcv
    rcv.stop()


# ---------------------------------------------------------------- cases


def test_python_trace_is_one_envelope(db, node, sentry):
    src = add_source(db)
    set_dsn(db, src, dsn(sentry))
    node.wait_source(src)
    lines = interleave(trace_lines(PY_TRACE, proc="web.1"), noise(20, proc="web.2"))
    post(node, src, lines[:15])
    post(node, src, lines[15:])
    req = sentry.wait(1, 20, "the Python crash")[0]
    check_auth(req)
    ev = event_of(req)
    exc = ev["exception"]["values"][-1]
    assert exc["type"] == "ValueError"
    assert exc["value"] == "bad price for sku-17"
    assert len(exc["stacktrace"]["frames"]) == 3
    assert ev["server_name"] == "web.1"
    rows = wait_crashes(db, src, 1)
    assert len(rows) == 1 and rows[0]["type"] == "ValueError" and rows[0]["procid"] == "web.1"
    wait_for(lambda: crashes(db, src)[0]["delivery"] == "sent", 10, what="delivery sent")
    quiet(sentry, 1)
    assert node.metric("sluice_crashes_sent_total") >= 1
