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

import base64
import datetime
import json
import os
import re
import subprocess
import tempfile
import time

import pytest

from conftest import (SLUICE, Server, add_read_token, add_source, api_get, frame_body, heroku_line,
                      sluice_cli, wait_for)
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
    release = heroku_line("Release v42 created by user dev@example.com", proc="api", ts=now_ts(-5000))
    r = node.post(src, frame_body([release]), query="env=production&team=shop")
    assert r.status == 204
    lines = interleave(trace_lines(PY_TRACE, proc="web.1"), noise(20, proc="web.2"))
    exits = [heroku_line("State changed from up to crashed", app="heroku", proc="web.1", ts=now_ts(30)),
             heroku_line("Process exited with status 1", app="heroku", proc="web.1", ts=now_ts(31))]
    for part in (lines[:15], lines[15:] + exits):
        r = node.post(src, frame_body(part), query="env=production&team=shop")
        assert r.status == 204, r
    req = sentry.wait(1, 20, "the Python crash")[0]
    check_auth(req)
    ev = event_of(req)
    exc = ev["exception"]["values"][-1]
    assert exc["type"] == "ValueError"
    assert exc["value"] == "bad price for sku-17"
    frames = exc["stacktrace"]["frames"]
    assert [f["lineno"] for f in frames] == [42, 17, 88]
    assert [f["in_app"] for f in frames] == [True, True, False]
    assert ev["server_name"] == "web.1"
    assert ev["release"] == "v42"
    assert ev["environment"] == "production"
    assert "team" in json.dumps(ev.get("tags")), ev.get("tags")
    text = json.dumps(ev)
    assert "Process exited with status 1" in text and "to crashed" in text  # breadcrumbs
    assert "/api/v1/search?" in text  # the link back to the stored lines
    rows = wait_crashes(db, src, 1)
    assert len(rows) == 1 and rows[0]["type"] == "ValueError" and rows[0]["procid"] == "web.1"
    assert rows[0]["nlines"] == len(PY_TRACE) and not rows[0]["truncated"]
    wait_for(lambda: crashes(db, src)[0]["delivery"] == "sent", 10, what="delivery sent")
    quiet(sentry, 1)
    assert node.metric("sluice_crashes_sent_total") >= 1
    assert node.metric("sluice_crashes_assembled_total") >= 1


def test_java_trace_is_one_envelope(db, node, sentry):
    src = add_source(db)
    set_dsn(db, src, dsn(sentry))
    node.wait_source(src)
    post(node, src, interleave(trace_lines(JAVA_TRACE, proc="worker.2"), noise(9)))
    ev = event_of(sentry.wait(1, 20, "the Java crash")[0])
    exc = ev["exception"]["values"][-1]
    assert exc["type"].endswith("IllegalStateException"), exc
    assert exc["value"] == "order 17 has no lines"
    frames = exc["stacktrace"]["frames"]
    assert len(frames) == 3
    assert frames[-1]["function"].endswith("total") and frames[-1]["lineno"] == 51  # raised last
    quiet(sentry, 1)
    assert [c["lang"] for c in crashes(db, src)] == ["java"]


def test_context_of_a_trace_line_carries_its_crash(db, node, sentry):
    """The viewer's context view (/api/v1/context, docs/viewer.md): a line joined into a
    crash comes with the crash (type, value, the event's exception with its frames); a line
    of another dyno comes with none."""
    src = add_source(db)
    set_dsn(db, src, dsn(sentry))
    node.wait_source(src)
    post(node, src, interleave(trace_lines(JAVA_TRACE, proc="worker.3"), noise(6)))
    row = wait_crashes(db, src, 1)[0]
    tok = add_read_token(db, f"ctx-{src.name}", "--source", src.name)
    ids = db.query("SELECT id, procid FROM logs WHERE source_id = %s ORDER BY id", (src.id,))
    mid = [r["id"] for r in ids if r["procid"] == "worker.3"][2]
    other = [r["id"] for r in ids if r["procid"] != "worker.3"][0]
    # the node learns the new token by NOTIFY: until then the API answers 401
    wait_for(lambda: api_get(node, "/api/v1/context", {"id": mid, "n": 3}, token=tok).status == 200,
             10, what="the read token on the node")
    c = api_get(node, "/api/v1/context", {"id": mid, "n": 3}, token=tok).json()
    crash = c["crash"]
    assert crash is not None and crash["id"] == str(row["id"]), c
    assert crash["type"].endswith("IllegalStateException") and crash["value"] == "order 17 has no lines"
    assert crash["lines"] == len(JAVA_TRACE) and crash["lang"] == "java"
    assert crash["delivery"] in ("pending", "sent") and crash["delivery_detail"] is None, crash
    frames = crash["exception"]["values"][-1]["stacktrace"]["frames"]
    assert [f["lineno"] for f in frames] == [9, 23, 51]
    c = api_get(node, "/api/v1/context", {"id": other, "n": 3}, token=tok).json()
    assert c["crash"] is None and c["event"]["id"] == str(other), c


def test_long_trace_cut_and_marked_truncated(db, node, sentry):
    src = add_source(db)
    set_dsn(db, src, dsn(sentry))
    node.wait_source(src)
    body = ["Traceback (most recent call last):"]
    for i in range(4999):
        body += [f'  File "/app/app/deep.py", line {i + 1}, in step{i}', "    return step(n - 1)"]
    body.append("RecursionError: maximum recursion depth exceeded")
    assert len(body) == 10000
    lines = trace_lines(body, proc="web.9")
    post(node, src, lines[:5000])
    post(node, src, lines[5000:])
    ev = event_of(sentry.wait(1, 30, "the 10 000-line crash")[0])
    assert "truncated" in json.dumps(ev)
    quiet(sentry, 1, 3.0)
    rows = crashes(db, src)
    assert len(rows) == 1 and rows[0]["truncated"], rows
    assert rows[0]["nlines"] <= 2000 < 10000


def test_platform_crash_is_a_message_event(db, node, sentry):
    src = add_source(db)
    set_dsn(db, src, dsn(sentry))
    node.wait_source(src)
    storm = []
    for i in range(4):
        storm.append(heroku_line("Process running mem=612M(119.6%)", app="heroku", proc="web.5",
                                 ts=now_ts(i * 100)))
        storm.append(heroku_line("Error R14 (Memory quota exceeded)", app="heroku", proc="web.5",
                                 ts=now_ts(i * 100 + 1)))
    h10 = heroku_line('at=error code=H10 desc="App crashed" method=GET path="/" host=shop.example.com '
                      'request_id=8601b555 fwd="17.17.17.17" dyno= connect= service= status=503 bytes= '
                      'protocol=https', app="heroku", proc="router", ts=now_ts(2000))
    post(node, src, interleave(storm, noise(6)) + [h10])
    reqs = sentry.wait(2, 20, "the R14 storm and the H10")
    events = [event_of(r) for r in reqs]
    for ev in events:
        assert "exception" not in ev and ev["level"] == "error", ev
    msgs = sorted(ev["message"] if isinstance(ev["message"], str) else ev["message"].get("formatted", "")
                  for ev in events)
    assert any("R14" in m for m in msgs) and any("H10" in m for m in msgs), msgs
    quiet(sentry, 2, 2.0)
    assert sorted(c["type"] for c in crashes(db, src)) == ["H10", "R14"]


def test_sluice_crashes_lists_by_fingerprint(db, node, sentry):
    src = add_source(db)
    set_dsn(db, src, dsn(sentry))
    node.wait_source(src)
    post(node, src, interleave(trace_lines(PY_TRACE, proc="web.1"), noise(6)))
    post(node, src, trace_lines(PY_TRACE, proc="web.3", start_ms=5))
    sentry.wait(2, 20, "two crashes of one bug")
    wait_for(lambda: all(c["delivery"] == "sent" for c in crashes(db, src)), 10, what="both sent")
    out = sluice_cli(db, "crashes", "--source", src.name, "--since", "1h").stdout
    rows = [l for l in out.splitlines() if "ValueError" in l]
    assert len(rows) == 1, out  # one bug, one line
    assert re.search(r"\s2\s+" + re.escape(src.name), rows[0]), out
    assert "web.1,web.3" in rows[0] and "sent=2" in rows[0], out
    other = sluice_cli(db, "crashes", "--source", "no-such-source").stdout
    assert "no crashes" in other
    bad = sluice_cli(db, "crashes", "--bogus", check=False)
    assert bad.returncode == 2 and "usage" in bad.stderr


def test_bad_dsn_refused_by_cli(db):
    src = add_source(db)
    for value, why in [("not a dsn", ""), ("https://sentry.io/42", "key"),
                       ("https://abc@sentry.io/", "project"), ("ftp://abc@sentry.io/42", "")]:
        r = sluice_cli(db, "source", "set", src.name, "--sentry-dsn", value, check=False)
        assert r.returncode == 2, (value, r.stdout, r.stderr)
        assert "bad Sentry DSN:" in r.stderr and len(r.stderr.split("bad Sentry DSN:")[1].strip()) > 3, \
            (value, r.stderr)
        assert why.lower() in r.stderr.lower(), (value, r.stderr)
    assert db.query("SELECT sentry_dsn FROM sources WHERE id = %s", (src.id,))[0]["sentry_dsn"] is None
    ok = set_dsn(db, src, "https://0123abcd@o1.ingest.sentry.io/4505")
    assert "4505" in ok.stdout
    listing = [l for l in sluice_cli(db, "source", "list").stdout.splitlines() if l.startswith(src.name)]
    assert listing and listing[0].endswith("https://o1.ingest.sentry.io/4505"), listing
    assert "0123abcd" not in listing[0]
    assert db.query("SELECT sentry_dsn FROM sources WHERE id = %s",
                    (src.id,))[0]["sentry_dsn"] == "https://0123abcd@o1.ingest.sentry.io/4505"
    set_dsn(db, src, "")
    assert db.query("SELECT sentry_dsn FROM sources WHERE id = %s", (src.id,))[0]["sentry_dsn"] is None
    r = sluice_cli(db, "source", "set", "no-such-source", "--sentry-dsn",
                   "https://0123abcd@o1.ingest.sentry.io/4505", check=False)
    assert r.returncode == 1 and "no-such-source" in r.stderr


def test_two_nodes_one_event(db, sluice, sentry):
    a, b = sluice(**ALLOW), sluice(**ALLOW)
    src = add_source(db)
    set_dsn(db, src, dsn(sentry))
    a.wait_source(src)
    b.wait_source(src)
    lines = trace_lines(PY_TRACE, proc="worker.1")
    # the second half reaches node b first; the first half comes to node a a little later
    post(b, src, interleave(lines[4:], noise(5, start_ms=10)))
    time.sleep(0.3)
    post(a, src, interleave(lines[:4], noise(5)))
    req = sentry.wait(1, 20, "the crash split over two nodes")[0]
    ev = event_of(req)
    exc = ev["exception"]["values"][-1]
    assert exc["type"] == "ValueError" and exc["value"] == "bad price for sku-17"
    assert [f["lineno"] for f in exc["stacktrace"]["frames"]] == [42, 17, 88]  # the lines' own order
    quiet(sentry, 1, 3.0)
    rows = crashes(db, src)
    assert len(rows) == 1 and rows[0]["nlines"] == len(PY_TRACE), rows


def test_restart_mid_trace_one_event(db, node, sentry):
    # The shared node, with a settle delay longer than a restart (the second half is still
    # "on its way"); no other node with a shorter one may judge the first half alone.
    node.restart(SLUICE_CRASH_SETTLE_MS="6000")
    try:
        src = add_source(db)
        set_dsn(db, src, dsn(sentry))
        node.wait_source(src)
        lines = trace_lines(PY_TRACE, proc="web.7")
        post(node, src, lines[:3])
        wait_for(lambda: db.query("SELECT count(*) AS n FROM crash_anchors WHERE source_id = %s",
                                  (src.id,))[0]["n"] >= 1, 10, what="anchors of the first half stored")
        node.kill()
        node.start()
        post(node, src, lines[3:])
        req = sentry.wait(1, 30, "the crash across the restart")[0]
        assert event_of(req)["exception"]["values"][-1]["type"] == "ValueError"
        quiet(sentry, 1, 3.0)
        rows = crashes(db, src)
        assert len(rows) == 1 and rows[0]["nlines"] == len(PY_TRACE), rows
    finally:
        node.restart(SLUICE_CRASH_SETTLE_MS="1000")


def test_rate_limits_no_storm(db, node, sentry):
    src = add_source(db)
    set_dsn(db, src, dsn(sentry, project="42"))
    node.wait_source(src)
    sentry.script = [(429, {"Retry-After": "120", "X-Sentry-Rate-Limits": "120:error;default:key"})]
    post(node, src, trace_lines(PY_TRACE, proc="web.1"))
    sentry.wait(1, 20, "the first crash, answered 429")
    wait_for(lambda: crashes(db, src) and crashes(db, src)[0]["delivery"] == "dropped", 10,
             what="the 429'd crash marked dropped")
    assert "rate limited" in crashes(db, src)[0]["delivery_detail"]
    for i in range(3):
        post(node, src, trace_lines(PY_TRACE, proc=f"web.{i + 2}"))
    wait_for(lambda: len(crashes(db, src)) == 4 and all(c["delivery"] == "dropped"
                                                       for c in crashes(db, src)), 20,
             what="three more crashes dropped while limited")
    quiet(sentry, 1, 2.0)  # none of them was sent: no storm
    assert node.metric("sluice_crashes_dropped_total", {"reason": "rate_limited"}) >= 4
    assert db.query("SELECT count(*) AS n FROM alert_outbox o JOIN crashes c ON c.id = o.crash_id "
                    "WHERE c.source_id = %s AND o.status = 'pending'", (src.id,))[0]["n"] == 0

    # a limit announced on a 200 (X-Sentry-Rate-Limits) holds the next crashes back too
    other = Receiver(path="/api/42/envelope/", script=[(200, {"X-Sentry-Rate-Limits": "120:error:key"})])
    try:
        src2 = add_source(db)
        set_dsn(db, src2, dsn(other))
        node.wait_source(src2)
        post(node, src2, trace_lines(PY_TRACE, proc="web.1"))
        other.wait(1, 20, "the first crash of the second DSN")
        wait_for(lambda: crashes(db, src2) and crashes(db, src2)[0]["delivery"] == "sent", 10,
                 what="sent despite the header")
        post(node, src2, trace_lines(PY_TRACE, proc="web.2"))
        wait_for(lambda: len(crashes(db, src2)) == 2 and crashes(db, src2)[1]["delivery"] == "dropped",
                 20, what="the second crash dropped")
        quiet(other, 1, 1.0)
    finally:
        other.stop()


def apply_rules(db, workdir, doc, cmd="apply"):
    path = os.path.join(tempfile.mkdtemp(dir=workdir), "rules.json")
    with open(path, "w") as f:
        json.dump(doc, f)
    return subprocess.run([SLUICE, "rules", cmd, path], env=dict(os.environ, DATABASE_URL=db.url),
                          capture_output=True, text=True, timeout=60)


def test_rule_matching_a_crash_sends_the_trace(db, node, sentry, workdir):
    hook = Receiver(path="/hook")
    try:
        src = add_source(db)
        set_dsn(db, src, dsn(sentry))
        node.wait_source(src)
        secret = "whsec_" + base64.b64encode(b"sluice-e2e-crash-rule-secret-0123").decode()
        rules = {
            "destinations": {"hook": {"type": "webhook", "url": hook.url, "secret": secret}},
            "rules": [
                {"name": "web-valueerror", "on": "crashes", "pattern": "^ValueError:",
                 "sources": [src.name], "procid": "web.*", "notify": ["hook"]},
                # a rule on lines with the same pattern never sees the crash itself
                {"name": "lines-valueerror", "pattern": "^NeverInALine:", "sources": [src.name],
                 "notify": ["hook"]},
            ],
        }
        r = apply_rules(db, workdir, rules)
        assert r.returncode == 0, r.stdout + r.stderr
        r = apply_rules(db, workdir, dict(rules, rules=[dict(rules["rules"][0], on="nope")]), "check")
        assert r.returncode == 1 and "lines" in r.stdout and "crashes" in r.stdout, r.stdout
        time.sleep(1.0)  # NOTIFY sluice_rules reaches the crash thread
        # a crash of a worker dyno is out of the rule's scope; the web one fires
        post(node, src, trace_lines(PY_TRACE, proc="worker.1"))
        wait_crashes(db, src, 1)
        post(node, src, interleave(trace_lines(PY_TRACE, proc="web.4"), noise(8)))
        req = hook.wait(1, 20, "the crash rule's webhook")[0]
        assert req.json()["type"] == "alert.firing"
        doc = req.json()["data"]
        assert doc["rule"]["name"] == "web-valueerror"
        text = "\n".join(l["message"] for l in doc["lines"])
        assert text.startswith("ValueError: bad price for sku-17"), text
        assert "Traceback (most recent call last):" in text and "/app/app/orders.py" in text, text
        assert doc["lines"][0]["program"].endswith("web.4"), doc["lines"][0]
        quiet(hook, 1, 2.0)
        assert len(crashes(db, src)) == 2
    finally:
        hook.stop()
        assert apply_rules(db, workdir, {"rules": []}).returncode == 0


def test_crashes_off_stores_no_anchors(db, sluice, sentry):
    s = sluice(SLUICE_CRASHES="off", **ALLOW)
    src = add_source(db)
    set_dsn(db, src, dsn(sentry))
    s.wait_source(src)
    post(s, src, trace_lines(PY_TRACE, proc="web.1"))
    db.wait_rows(src.id, len(PY_TRACE))
    assert db.query("SELECT count(*) AS n FROM crash_anchors WHERE source_id = %s", (src.id,))[0]["n"] == 0
    quiet(sentry, 0, 2.5)  # the gap and the settle delay have passed: nothing assembled
    assert crashes(db, src) == []


def test_private_sentry_refused(db, node):
    # 127.0.0.2 is loopback and not in the allow list (127.0.0.1, matched exactly): refused
    # at connect time, dead at once, never retried
    src = add_source(db)
    set_dsn(db, src, "http://0123456789abcdef0123456789abcdef@127.0.0.2:9/42")
    node.wait_source(src)
    post(node, src, trace_lines(PY_TRACE, proc="web.1"))
    wait_for(lambda: crashes(db, src) and crashes(db, src)[0]["delivery"] == "dead", 20,
             what="the crash dead-lettered by the private-address guard")
    assert "private address" in crashes(db, src)[0]["delivery_detail"]
    assert db.query("SELECT o.status, o.attempts FROM alert_outbox o JOIN crashes c ON c.id = o.crash_id "
                    "WHERE c.source_id = %s", (src.id,)) == [{"status": "dead", "attempts": 1}]
    assert node.metric("sluice_crashes_dropped_total", {"reason": "dead"}) >= 1
