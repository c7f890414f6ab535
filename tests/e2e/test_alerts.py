"""Alert rules end to end (issue 4): real sluice servers, real PostgreSQL, real local HTTP
receivers (tests/e2e/receiver.py) for every destination type.

Each test applies its own rules file with `sluice rules apply` (the stored set is the whole
file, so rules of earlier tests are gone), uses sources of its own, and starts servers with
SLUICE_ALERT_ALLOW_PRIVATE=127.0.0.1 so loopback receivers are allowed. Evaluation happens
in the writer's transaction, so once a test sees its lines in `logs`, the alerts those lines
fire are in `alerts` too; the receiver then waits for the notifier's delivery.

Signatures are checked twice: by a Python HMAC (Standard Webhooks) here and by the
`standardwebhooks` package from the npm registry (installed into $BUILD/npm with npm; a
failed install fails the test that needs it).
"""

import base64
import datetime
import hashlib
import hmac
import json
import os
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import SLUICE, add_source, frame_body, heroku_line, npm_install, sluice_cli, wait_for
from receiver import Receiver

ALLOW = {"SLUICE_ALERT_ALLOW_PRIVATE": "127.0.0.1"}
SECRET = "whsec_" + base64.b64encode(b"sluice-e2e-webhook-secret-0123456789").decode()
SEVERITIES = {"critical", "error", "warning", "info"}

# ---------------------------------------------------------------- helpers


@pytest.fixture
def tmp(workdir):
    d = tempfile.mkdtemp(prefix="alerts.", dir=workdir)
    return d


def write_rules(tmp, doc, name="rules.json"):
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)
    return path


def apply_rules(db, tmp, doc, env=None):
    path = write_rules(tmp, doc)
    r = subprocess.run([SLUICE, "rules", "apply", path],
                       env=dict(os.environ, DATABASE_URL=db.url, **(env or {})),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"sluice rules apply: {r.returncode}\n{r.stdout}{r.stderr}"
    return r.stdout


def hook(url, secret=SECRET):
    return {"type": "webhook", "url": url, "secret": secret}


def start(sluice, **env):
    e = dict(ALLOW)
    e.update(env)
    return sluice(**e)


def post(server, src, lines):
    r = server.post(src, frame_body(lines))
    assert r.status == 204, f"POST to {server.https_port}: {r}"
    return time.monotonic()


def wait_stored(db, src, n, timeout=15):
    wait_for(lambda: db.count(src.id) >= n, timeout,
             what=f"{n} rows of source {src.name} (have {db.count(src.id)})")


def alerts(db, rule):
    return db.query("SELECT * FROM alerts WHERE rule_name = %s ORDER BY fired_at, id", (rule,))


def outbox(db, rule=None, destination=None):
    sql = ("SELECT o.* FROM alert_outbox o JOIN alerts a ON a.id = o.alert_id WHERE true")
    args = []
    if rule is not None:
        sql += " AND a.rule_name = %s"
        args.append(rule)
    if destination is not None:
        sql += " AND o.destination = %s"
        args.append(destination)
    return db.query(sql + " ORDER BY o.id", tuple(args))


def events(receiver, kind=None):
    """Webhook requests received, as (request, json); kind filters on the type field."""
    out = []
    for r in receiver.snapshot():
        j = r.json()
        if kind is None or j.get("type") == kind:
            out.append((r, j))
    return out


def py_verify(secret, headers, body):
    """Standard Webhooks v1 verification, written from the spec (outbound.md)."""
    key = base64.b64decode(secret[len("whsec_"):] if secret.startswith("whsec_") else secret)
    msg_id, ts = headers["webhook-id"], headers["webhook-timestamp"]
    assert ts.isdigit(), f"webhook-timestamp not integer seconds: {ts!r}"
    assert abs(int(ts) - time.time()) < 300, f"webhook-timestamp {ts} far from now"
    want = base64.b64encode(hmac.new(key, f"{msg_id}.{ts}.".encode() + body,
                                     hashlib.sha256).digest()).decode()
    sigs = headers["webhook-signature"].split(" ")
    assert any(s.split(",", 1) == ["v1", want] for s in sigs), \
        f"no v1 signature matches: got {headers['webhook-signature']!r}, want v1,{want}"


def check_webhook_request(req, secret=SECRET, dest="hook"):
    assert req.method == "POST"
    assert req.headers.get("content-type", "").startswith("application/json"), req.headers
    for h in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        assert h in req.headers, f"missing {h}: {req.headers}"
    py_verify(secret, req.headers, req.body)
    j = req.json()
    assert j["type"] in ("alert.firing", "alert.resolved"), j
    assert isinstance(j.get("timestamp"), str) and j["timestamp"], j
    data = j["data"]
    event = j["type"].split(".")[1]
    assert req.headers["webhook-id"] == f"{data['id']}.{event}.{dest}", (req.headers, data["id"])
    return j


def line(msg, proc="web.1", app="app"):
    return heroku_line(msg, app=app, proc=proc)


def h12(i=0):
    return heroku_line(
        f'at=error code=H12 desc="Request timeout" method=GET path="/slow/{i}" '
        f'host=shop.herokuapp.com request_id=req-{i} fwd="10.0.0.1" dyno=web.1 '
        f'connect=0ms service=30000ms status=503 bytes=0 protocol=https',
        app="heroku", proc="router", pri=158)


def quiet_for(receiver, n, seconds, what):
    """Asserts the receiver still has exactly n requests after `seconds`."""
    time.sleep(seconds)
    got = receiver.snapshot()
    assert len(got) == n, f"{what}: expected {n} request(s), got {len(got)}: " \
                          f"{[(r.path, r.body[:300]) for r in got]}"


# ---------------------------------------------------------------- the npm verifier


@pytest.fixture(scope="module")
def standardwebhooks():
    """Installs `standardwebhooks` from the npm registry into $BUILD/npm (kept as a cache);
    returns a function verify(secret, [(headers, body)]) -> [None | error message]."""
    prefix = npm_install("standardwebhooks")
    script = os.path.join(prefix, "verify.js")
    with open(script, "w") as f:
        f.write("""
const { Webhook } = require('standardwebhooks');
let input = '';
process.stdin.on('data', (c) => { input += c; });
process.stdin.on('end', () => {
  const { secret, items } = JSON.parse(input);
  const wh = new Webhook(secret);
  const out = items.map(({ headers, body }) => {
    try { wh.verify(Buffer.from(body, 'base64').toString('utf8'), headers); return null; }
    catch (e) { return String(e && e.message || e); }
  });
  process.stdout.write(JSON.stringify(out));
});
""")

    def verify(secret, items):
        payload = json.dumps({"secret": secret, "items": [
            {"headers": h, "body": base64.b64encode(b).decode()} for h, b in items]})
        r = subprocess.run(["node", script], input=payload, capture_output=True, text=True,
                           timeout=60, env=dict(os.environ, NODE_PATH=os.path.join(prefix, "node_modules")))
        assert r.returncode == 0, f"node verify.js: {r.returncode} {r.stdout}{r.stderr}"
        return json.loads(r.stdout)

    return verify


# ---------------------------------------------------------------- conditions


def test_threshold_fires_once_at_count_and_resolves_after_quiet(db, sluice, tmp):
    rcv = Receiver()
    try:
        rule = "thr-5xx"
        apply_rules(db, tmp, {
            "destinations": {"hook": hook(rcv.url)},
            "rules": [{"name": rule, "pattern": r"status=5\d\d", "condition": "threshold",
                       "count": 3, "window": 20, "group_by": "source", "resolve_after": 2,
                       "severity": "error", "notify": ["hook"]}]})
        s = start(sluice)
        src = s.add_source()
        # N-1 matches (and a line that does not match): nothing fires.
        post(s, src, [line("status=500 a"), line("status=200 ok"), line("status=502 b")])
        wait_stored(db, src, 3)
        assert alerts(db, rule) == [], "fired below the threshold"
        # The Nth match fires, once.
        post(s, src, [line("status=503 c")])
        wait_stored(db, src, 4)
        got = alerts(db, rule)
        assert len(got) == 1 and got[0]["state"] == "firing", got
        assert got[0]["group_key"] == src.name and got[0]["count"] == 3, got
        req = rcv.wait(1, 5, "firing")[0]
        j = check_webhook_request(req)
        assert j["type"] == "alert.firing"
        d = j["data"]
        assert d["rule"]["name"] == rule and d["rule"]["condition"] == "threshold", d
        assert d["rule"]["count"] == 3 and d["rule"]["window"] == 20, d
        assert d["rule"]["severity"] == "error", d
        assert d["group"] == src.name and d["count"] == 3, d
        assert d["event"] == "firing" and d["resolved_at"] is None, d
        assert all(ln["source_name"] == src.name for ln in d["lines"]), d["lines"]
        assert "status=200" not in json.dumps(d["lines"]), "a non-matching line in the alert"
        assert isinstance(d.get("search_url"), str) and "/search" in d["search_url"], d
        # More matches while firing: no second alert; they keep it firing.
        last = post(s, src, [line("status=500 d"), line("status=500 e")])
        wait_stored(db, src, 6)
        assert len(alerts(db, rule)) == 1, alerts(db, rule)
        # resolve_after=2 s of silence: resolved, same alert id, not before 2 s.
        res = rcv.wait_match(lambda r: r.json().get("type") == "alert.resolved", 8, "resolved")
        waited = res.at - last
        assert 1.8 <= waited <= 5.5, f"resolved {waited:.1f}s after the last match (resolve_after=2)"
        rj = check_webhook_request(res)
        assert rj["data"]["id"] == d["id"] and rj["data"]["event"] == "resolved", rj
        assert rj["data"]["resolved_at"], rj
        assert len(events(rcv, "alert.firing")) == 1, "fired more than once"
        a = alerts(db, rule)
        assert len(a) == 1 and a[0]["state"] == "resolved", a
        # (the notifier records a result just after the receiver answered)
        wait_for(lambda: s.metric("sluice_alert_deliveries_total") >= 2, 3,
                 what="sluice_alert_deliveries_total >= 2")
        assert s.metric("sluice_alerts_fired_total") >= 1, "fired metric"
        assert s.metric("sluice_alerts_resolved_total") >= 1, "resolved metric"
        wait_for(lambda: len([o for o in outbox(db, rule) if o["status"] == "delivered"]) == 2, 3,
                 what=f"both outbox rows delivered: {outbox(db, rule)}")
        out = sluice_cli(db, "alerts", "--limit", "5").stdout
        assert rule in out and "hook:firing=delivered" in out and "hook:resolved=delivered" in out, out
        # The document carries the first and the last matching lines of the window (the
        # first two came in an earlier batch than the one that fired), and first_at is the
        # window's first match.
        problems = []
        msgs = [ln["message"] for ln in d["lines"]]
        if not (any("status=500 a" in m for m in msgs) and any("status=503 c" in m for m in msgs)):
            problems.append(f"alert lines should include the window's first match "
                            f"'status=500 a' and the last 'status=503 c': got {msgs}")
        first = db.query("SELECT received_at FROM logs WHERE source_id = %s AND message LIKE %s",
                         (src.id, "status=500 a%"))[0]["received_at"]
        first_at = datetime.datetime.fromisoformat(d["first_at"].replace("Z", "+00:00"))
        if first_at > first:
            problems.append(f"first_at {d['first_at']} is after the window's first match "
                            f"(received_at {first.isoformat()})")
        assert not problems, "; ".join(problems)
    finally:
        rcv.stop()


def test_match_groups_by_named_capture_and_resolves(db, sluice, tmp):
    rcv = Receiver()
    try:
        rule = "worker-db-errors"
        apply_rules(db, tmp, {
            "destinations": {"hook": hook(rcv.url)},
            "rules": [{"name": rule, "pattern": "(?<error>OperationalError|InterfaceError)",
                       "procid": "worker.*", "condition": "match", "group_by": "error",
                       "cooldown": 60, "resolve_after": 2, "severity": "error",
                       "notify": ["hook"]}]})
        s = start(sluice)
        src = s.add_source()
        last = post(s, src, [
            line("psycopg2.OperationalError: server closed the connection", proc="worker.1"),
            line("psycopg2.OperationalError: could not connect", proc="worker.2"),
            line("psycopg2.InterfaceError: connection already closed", proc="worker.1"),
            line("psycopg2.OperationalError: in a web dyno, out of scope", proc="web.1"),
            line("job done", proc="worker.1"),
        ])
        wait_stored(db, src, 5)
        got = {a["group_key"]: a for a in alerts(db, rule)}
        assert set(got) == {"OperationalError", "InterfaceError"}, got
        assert got["OperationalError"]["count"] == 2 and got["InterfaceError"]["count"] == 1, got
        reqs = rcv.wait(2, 5, "two firing alerts")
        fired = {}
        for r in reqs:
            j = check_webhook_request(r)
            assert j["type"] == "alert.firing", j
            fired[j["data"]["group"]] = j["data"]
        assert set(fired) == {"OperationalError", "InterfaceError"}, fired
        assert "web dyno" not in json.dumps(fired), "a line outside procid scope counted"
        # Both resolve after resolve_after=2 s without a match of their group.
        rcv.wait(4, 8, "two resolved alerts")
        resolved = {j["data"]["group"]: (r, j) for r, j in events(rcv, "alert.resolved")}
        assert set(resolved) == {"OperationalError", "InterfaceError"}, resolved
        for g, (r, j) in resolved.items():
            assert j["data"]["id"] == fired[g]["id"], (g, j)
            assert 1.8 <= r.at - last <= 5.5, f"{g} resolved {r.at - last:.1f}s after its last match"
        # Inside the cooldown (60 s) the group stays quiet even though it resolved.
        post(s, src, [line("OperationalError again", proc="worker.3")])
        wait_stored(db, src, 6)
        assert len(alerts(db, rule)) == 2, alerts(db, rule)
        quiet_for(rcv, 4, 1.0, "a match inside the cooldown")
    finally:
        rcv.stop()


def test_absence_fires_after_window_of_silence_and_resolves_on_next_line(db, sluice, tmp):
    rcv = Receiver()
    try:
        rule = "billing-quiet"
        src = add_source(db)
        apply_rules(db, tmp, {
            "destinations": {"hook": hook(rcv.url)},
            "rules": [{"name": rule, "pattern": "at=info", "sources": [src.name],
                       "condition": "absence", "window": 3, "severity": "warning",
                       "notify": ["hook"]}]})
        s = start(sluice)
        s.wait_source(src)
        t0 = post(s, src, [line("at=info heartbeat 1", proc="clock.1")])
        wait_stored(db, src, 1)
        assert alerts(db, rule) == [], "absence fired on a matching line"
        req = rcv.wait(1, 9, "absence firing")[0]
        silence = req.at - t0
        assert 2.8 <= silence <= 6.5, f"absence (window=3) fired after {silence:.1f}s of silence"
        j = check_webhook_request(req)
        assert j["type"] == "alert.firing" and j["data"]["group"] == src.name, j
        assert j["data"]["rule"]["condition"] == "absence", j
        quiet_for(rcv, 1, 1.5, "absence fires once per silence")
        # The next matching line resolves it (promptly, not after another window).
        t1 = post(s, src, [line("at=info heartbeat 2", proc="clock.1")])
        res = rcv.wait(2, 5, "absence resolved")[1]
        assert res.at - t1 < 3, f"resolved {res.at - t1:.1f}s after the line"
        rj = check_webhook_request(res)
        assert rj["type"] == "alert.resolved" and rj["data"]["id"] == j["data"]["id"], rj
        a = alerts(db, rule)
        assert len(a) == 1 and a[0]["state"] == "resolved", a
    finally:
        rcv.stop()


def test_group_by_procid_fires_per_dyno(db, sluice, tmp):
    rcv = Receiver()
    try:
        rule = "r14-per-dyno"
        apply_rules(db, tmp, {
            "destinations": {"hook": hook(rcv.url)},
            "rules": [{"name": rule, "pattern": r"Error R14 \(Memory quota exceeded\)",
                       "condition": "threshold", "count": 2, "window": 30, "group_by": "procid",
                       "resolve_after": 60, "severity": "warning", "notify": ["hook"]}]})
        s = start(sluice)
        src = s.add_source()
        msg = "Error R14 (Memory quota exceeded)"
        post(s, src, [heroku_line(msg, app="heroku", proc="web.1"),
                      heroku_line(msg, app="heroku", proc="web.2"),
                      heroku_line(msg, app="heroku", proc="worker.1"),
                      heroku_line(msg, app="heroku", proc="web.1"),
                      heroku_line(msg, app="heroku", proc="web.2")])
        wait_stored(db, src, 5)
        got = sorted((a["group_key"], a["count"]) for a in alerts(db, rule))
        assert got == [("web.1", 2), ("web.2", 2)], got
        reqs = rcv.wait(2, 5, "one alert per dyno")
        groups = sorted(check_webhook_request(r)["data"]["group"] for r in reqs)
        assert groups == ["web.1", "web.2"], groups
        quiet_for(rcv, 2, 1.0, "worker.1 (1 match) must not fire")
    finally:
        rcv.stop()


# ---------------------------------------------------------------- payloads


def test_webhook_signatures_verify_in_python_and_standardwebhooks(db, sluice, tmp, standardwebhooks):
    rcv = Receiver()
    rcv_env = Receiver()
    env_secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    try:
        rule = "signed"
        apply_rules(db, tmp, {
            "destinations": {"hook": hook(rcv.url),
                             "hook_env": {"type": "webhook", "url": rcv_env.url,
                                          "secret_env": "E2E_HOOK_SECRET"}},
            "rules": [{"name": rule, "pattern": "(?<kind>payment failed)", "flags": "i",
                       "condition": "match", "group_by": "source", "resolve_after": 2,
                       "severity": "critical", "notify": ["hook", "hook_env"]}]})
        s = start(sluice, E2E_HOOK_SECRET=env_secret)
        src = s.add_source()
        # Characters that JSON and signatures must carry byte for byte.
        post(s, src, [line('Payment FAILED for "Zoë" <a&b> \\ 💳 card=4242')])
        reqs = rcv.wait(2, 10, "firing and resolved")
        reqs_env = rcv_env.wait(2, 10, "firing and resolved (secret from env)")
        for r in reqs:
            check_webhook_request(r, SECRET, "hook")
        for r in reqs_env:
            check_webhook_request(r, env_secret, "hook_env")
        assert {r.json()["type"] for r in reqs} == {"alert.firing", "alert.resolved"}
        assert "Zoë" in reqs[0].json()["data"]["lines"][0]["message"], reqs[0].body
        # The independent check: the standardwebhooks package from npm.
        res = standardwebhooks(SECRET, [(r.headers, r.body) for r in reqs])
        assert res == [None] * len(reqs), f"standardwebhooks refused sluice's signatures: {res}"
        res = standardwebhooks(env_secret, [(r.headers, r.body) for r in reqs_env])
        assert res == [None] * len(reqs_env), f"standardwebhooks (env secret): {res}"
        # ... and it does refuse what it should: a changed body, the wrong secret.
        bad = standardwebhooks(SECRET, [(reqs[0].headers, reqs[0].body.replace(b"FAILED", b"failed")),
                                        (reqs_env[0].headers, reqs_env[0].body)])
        assert all(bad), f"standardwebhooks accepted a forged delivery: {bad}"
        # Secrets are not stored in PostgreSQL (env references are).
        specs = json.dumps([d["spec"] for d in db.query("SELECT spec FROM destinations")])
        assert env_secret not in specs and "E2E_HOOK_SECRET" in specs, specs
    finally:
        rcv.stop()
        rcv_env.stop()


def test_slack_and_pagerduty_bodies(db, sluice, tmp):
    slack = Receiver(path="/services/T000/B000/XXXX")
    pd = Receiver(default=(202, {"Content-Type": "application/json"},
                           b'{"status":"success","message":"Event processed"}'), path="")
    try:
        rule = "pd-and-slack"
        apply_rules(db, tmp, {
            "destinations": {
                "chat": {"type": "slack", "url": slack.url},
                "pager": {"type": "pagerduty", "url": pd.base_url, "routing_key_env": "E2E_PD_KEY"},
            },
            "rules": [{"name": rule, "pattern": r"code=(?<code>H1[0-9])", "app": "heroku",
                       "procid": "router", "condition": "threshold", "count": 2, "window": 10,
                       "group_by": "source", "resolve_after": 2, "severity": "critical",
                       "notify": ["chat", "pager"]}]})
        s = start(sluice, E2E_PD_KEY="R0UT1NGKEY0000000000000000000000")
        src = s.add_source()
        post(s, src, [h12(1), h12(2) + "<b>&amp;" * 400])
        # Slack: firing then resolved, each {"text", "blocks": [section mrkdwn]} ≤ 3000 chars.
        sreqs = slack.wait(2, 10, "slack firing + resolved")
        for r in sreqs:
            assert r.method == "POST" and r.path == "/services/T000/B000/XXXX", r
            assert r.headers.get("content-type", "").startswith("application/json"), r.headers
            j = r.json()
            assert isinstance(j.get("text"), str) and j["text"], j
            assert isinstance(j.get("blocks"), list) and j["blocks"], j
            for b in j["blocks"]:
                assert b["type"] == "section", b
                assert b["text"]["type"] == "mrkdwn" and isinstance(b["text"]["text"], str), b
                assert 0 < len(b["text"]["text"]) <= 3000, len(b["text"]["text"])
                assert "<b>" not in b["text"]["text"], "mrkdwn text not escaped (< > &)"
            assert rule in r.body.decode(), j
        # PagerDuty Events v2: trigger then resolve, same routing_key and dedup_key.
        preqs = pd.wait(2, 10, "pagerduty trigger + resolve")
        a = alerts(db, rule)
        assert len(a) == 1, a
        bodies = []
        for r in preqs:
            assert r.method == "POST" and r.path == "/v2/enqueue", (r.method, r.path)
            assert r.headers.get("content-type", "").startswith("application/json"), r.headers
            bodies.append(r.json())
        trig, reso = bodies
        assert trig["event_action"] == "trigger" and reso["event_action"] == "resolve", bodies
        for b in bodies:
            assert b["routing_key"] == "R0UT1NGKEY0000000000000000000000", b
            assert b["dedup_key"] == a[0]["id"], (b, a[0]["id"])
        p = trig["payload"]
        assert isinstance(p["summary"], str) and 0 < len(p["summary"]) <= 1024, p
        assert rule in p["summary"], p
        assert isinstance(p["source"], str) and p["source"], p
        assert p["severity"] == "critical", p
        assert set(p) <= {"summary", "source", "severity", "timestamp", "component", "group",
                          "class", "custom_details"}, f"unknown payload fields: {sorted(p)}"
        if "timestamp" in p:
            assert "T" in p["timestamp"], p
        assert "custom_details" not in p or isinstance(p["custom_details"], dict), p
        wait_for(lambda: all(o["status"] != "pending" for o in outbox(db, rule)), 3,
                 what="the outbox rows settled")
        ob = outbox(db, rule)
        assert sorted((o["destination"], o["event"], o["status"]) for o in ob) == [
            ("chat", "firing", "delivered"), ("chat", "resolved", "delivered"),
            ("pager", "firing", "delivered"), ("pager", "resolved", "delivered")], ob
    finally:
        slack.stop()
        pd.stop()


def test_papertrail_payload(db, sluice, tmp):
    rcv = Receiver(path="/papertrail-hook")
    try:
        rule = "pt-compat"
        apply_rules(db, tmp, {
            "destinations": {"legacy": {"type": "papertrail", "url": rcv.url}},
            "rules": [{"name": rule, "pattern": "Timeout::Error", "condition": "match",
                       "group_by": "source", "severity": "error", "notify": ["legacy"]}]})
        s = start(sluice)
        src = s.add_source()
        post(s, src, [line("Timeout::Error reading from upstream")])
        r = rcv.wait(1, 5, "papertrail webhook")[0]
        assert r.method == "POST", r
        assert r.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"), r.headers
        form = r.form()
        assert list(form) == ["payload"], form
        p = json.loads(form["payload"][0])
        assert isinstance(p["events"], list) and p["events"], p
        ev = p["events"][0]
        for k in ("id", "received_at", "source_name", "hostname", "program", "severity", "message"):
            assert k in ev, (k, ev)
        assert "Timeout::Error" in ev["message"] and ev["source_name"] == src.name, ev
        assert isinstance(ev["id"], str), ev
        assert p["saved_search"]["name"] == rule or rule in json.dumps(p["saved_search"]), p
        assert {"min_id", "max_id"} <= set(p), p
    finally:
        rcv.stop()


# ---------------------------------------------------------------- delivery


def test_receiver_down_then_up_delivers_once_with_same_webhook_id(db, sluice, tmp):
    down = Receiver(up=False)         # connection refused until started
    flaky = Receiver(script=[503])    # 503 without Retry-After, then 200
    try:
        rule = "down-up"
        apply_rules(db, tmp, {
            "destinations": {"down": hook(down.url), "flaky": hook(flaky.url)},
            "rules": [{"name": rule, "pattern": "deploy failed", "condition": "match",
                       "group_by": "source", "severity": "error", "notify": ["down", "flaky"]}]})
        s = start(sluice)
        src = s.add_source()
        retries0 = s.metric("sluice_alert_retries_total")
        t0 = post(s, src, [line("deploy failed: exit 1")])
        wait_for(lambda: (o := outbox(db, rule, "down")) and o[0]["attempts"] >= 1
                 and o[0]["last_error"], 5, what="a failed first attempt to the down receiver")
        o = outbox(db, rule, "down")[0]
        assert o["status"] == "pending", o
        first = flaky.wait(1, 5, "first (503) attempt")[0]
        down.start()
        got = down.wait(1, 10, "the retry after ~5 s")
        retry = flaky.wait(2, 10, "the retry after the 503")
        assert 3.5 <= got[0].at - t0 <= 9, f"retry after {got[0].at - t0:.1f}s (schedule: ~5 s)"
        assert 4 <= retry[1].at - first.at <= 7, f"retry after {retry[1].at - first.at:.1f}s"
        quiet_for(down, 1, 1.5, "delivered exactly once")
        assert len(flaky.snapshot()) == 2
        j = check_webhook_request(got[0], dest="down")
        assert got[0].headers["webhook-id"] == o["delivery_id"], (got[0].headers, o)
        assert retry[0].headers["webhook-id"] == retry[1].headers["webhook-id"], \
            "webhook-id changed between attempts"
        check_webhook_request(retry[0], dest="flaky")
        check_webhook_request(retry[1], dest="flaky")
        assert retry[1].json()["data"]["id"] == j["data"]["id"]
        ob = {x["destination"]: x for x in outbox(db, rule)}
        assert ob["down"]["status"] == "delivered" and ob["down"]["attempts"] == 2, ob["down"]
        assert ob["flaky"]["status"] == "delivered" and ob["flaky"]["attempts"] == 2, ob["flaky"]
        assert s.metric("sluice_alert_retries_total") - retries0 >= 2
        out = sluice_cli(db, "alerts").stdout
        assert "down:firing=delivered" in out and "flaky:firing=delivered" in out, out
    finally:
        down.stop()
        flaky.stop()


def test_429_retry_after_is_honoured(db, sluice, tmp):
    rcv = Receiver(script=[(429, {"Retry-After": "1"})])
    try:
        rule = "rate-limited"
        apply_rules(db, tmp, {
            "destinations": {"hook": hook(rcv.url)},
            "rules": [{"name": rule, "pattern": "disk full", "condition": "match",
                       "group_by": "source", "severity": "critical", "notify": ["hook"]}]})
        s = start(sluice)
        src = s.add_source()
        post(s, src, [line("disk full on /data")])
        reqs = rcv.wait(2, 6, "the retry after Retry-After: 1")
        gap = reqs[1].at - reqs[0].at
        assert 0.8 <= gap <= 3.5, f"retried {gap:.1f}s after a 429 with Retry-After: 1"
        assert reqs[0].headers["webhook-id"] == reqs[1].headers["webhook-id"]
        for r in reqs:
            check_webhook_request(r)
        quiet_for(rcv, 2, 1.0, "delivered once after the 429")
        o = outbox(db, rule)
        assert len(o) == 1 and o[0]["status"] == "delivered" and o[0]["attempts"] == 2, o
    finally:
        rcv.stop()


def test_410_disables_the_destination(db, sluice, tmp):
    gone = Receiver(script=[410])
    ok = Receiver()
    try:
        rule = "gone-dest"
        apply_rules(db, tmp, {
            "destinations": {"gone": hook(gone.url), "ok": hook(ok.url)},
            "rules": [{"name": rule, "pattern": "OOM killed", "condition": "match",
                       "group_by": "procid", "severity": "error", "notify": ["gone", "ok"]}]})
        s = start(sluice)
        src = s.add_source()
        dead0 = s.metric("sluice_alert_dead_total")
        post(s, src, [line("OOM killed", proc="web.1")])
        gone.wait(1, 5, "the 410")
        ok.wait(1, 5, "first alert")
        wait_for(lambda: (o := outbox(db, rule, "gone")) and o[0]["status"] != "pending", 5,
                 what="the 410 recorded")
        o = outbox(db, rule, "gone")[0]
        assert o["status"] == "disabled" and o["last_status"] == 410, o
        d = db.query("SELECT * FROM destinations WHERE name = 'gone'")[0]
        assert d["disabled_at"] is not None, d
        # A later alert: delivered to ok, never sent to gone.
        post(s, src, [line("OOM killed", proc="web.2")])
        ok.wait(2, 5, "second alert")
        wait_for(lambda: len(outbox(db, rule, "gone")) == 2 and
                 outbox(db, rule, "gone")[1]["status"] != "pending", 5,
                 what="the second outbox row for gone settled")
        rows = outbox(db, rule, "gone")
        assert [r["status"] for r in rows] == ["disabled", "disabled"], rows
        quiet_for(gone, 1, 1.0, "a disabled destination must get nothing")
        assert s.metric("sluice_alert_dead_total") - dead0 >= 1
        out = sluice_cli(db, "alerts").stdout
        assert "gone:firing=disabled" in out and "ok:firing=delivered" in out, out
    finally:
        gone.stop()
        ok.stop()


def test_loopback_destination_refused_without_allow_private(db, sluice, tmp):
    rcv = Receiver()
    try:
        rule = "refused"
        apply_rules(db, tmp, {
            "destinations": {"hook": hook(rcv.url)},
            "rules": [{"name": rule, "pattern": "panic:", "condition": "match",
                       "group_by": "source", "severity": "critical", "notify": ["hook"]}]})
        s = sluice(SLUICE_ALERT_ALLOW_PRIVATE="")
        src = s.add_source()
        post(s, src, [line("panic: runtime error")])
        wait_for(lambda: (o := outbox(db, rule)) and o[0]["status"] != "pending", 6,
                 what=f"the outbox row settled (now {outbox(db, rule)})")
        o = outbox(db, rule)[0]
        assert o["status"] == "dead", o
        assert "private" in (o["last_error"] or ""), o
        quiet_for(rcv, 0, 0.5, "a loopback receiver must not be contacted")
        assert "hook:firing=dead" in sluice_cli(db, "alerts").stdout
    finally:
        rcv.stop()


# ---------------------------------------------------------------- windows in PostgreSQL


def test_threshold_window_survives_restart(db, sluice, tmp):
    rcv = Receiver()
    try:
        rule = "restart-window"
        apply_rules(db, tmp, {
            "destinations": {"hook": hook(rcv.url)},
            "rules": [{"name": rule, "pattern": "payment declined", "condition": "threshold",
                       "count": 3, "window": 60, "group_by": "source", "resolve_after": 60,
                       "severity": "warning", "notify": ["hook"]}]})
        s = start(sluice)
        src = s.add_source()
        post(s, src, [line("payment declined 1"), line("payment declined 2")])
        wait_stored(db, src, 2)
        s.restart()
        assert alerts(db, rule) == []
        post(s, src, [line("payment declined 3")])
        wait_stored(db, src, 3)
        a = alerts(db, rule)
        assert len(a) == 1 and a[0]["count"] == 3, f"the window did not survive the restart: {a}"
        req = rcv.wait(1, 5, "firing after the restart")[0]
        assert check_webhook_request(req)["data"]["count"] == 3
        quiet_for(rcv, 1, 1.0, "one alert")
    finally:
        rcv.stop()


def test_two_nodes_one_database_fire_once(db, sluice, tmp):
    rcv = Receiver()
    try:
        rule = "two-nodes"
        apply_rules(db, tmp, {
            "destinations": {"hook": hook(rcv.url)},
            "rules": [{"name": rule, "pattern": r"code=H12\b", "app": "heroku",
                       "procid": "router", "condition": "threshold", "count": 10,
                       "window": 60, "group_by": "source", "resolve_after": 60,
                       "severity": "critical", "notify": ["hook"]}]})
        a = start(sluice)
        b = start(sluice)
        assert a.spool_dir != b.spool_dir
        src = a.add_source()
        b.wait_source(src)
        # 24 matching lines, 12 per node, posted concurrently in small requests: each node
        # alone sees more than `count`; together they must fire once.
        errs = []

        def feed(node, k):
            try:
                for i in range(6):
                    post(node, src, [h12(k * 100 + i * 2), h12(k * 100 + i * 2 + 1)])
            except BaseException as e:  # reported below
                errs.append(e)

        ts = [threading.Thread(target=feed, args=(n, k)) for k, n in enumerate((a, b))]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        assert not errs, errs
        wait_stored(db, src, 24)
        got = alerts(db, rule)
        assert len(got) == 1, f"expected one alert for the burst, got {len(got)}: {got}"
        rcv.wait(1, 5, "the alert")
        quiet_for(rcv, 1, 2.0, "both notifiers must deliver it once")
        check_webhook_request(rcv.snapshot()[0])
        o = outbox(db, rule)
        assert len(o) == 1 and o[0]["status"] == "delivered" and o[0]["attempts"] == 1, o
    finally:
        rcv.stop()


# ---------------------------------------------------------------- the CLI


def test_rules_apply_twice_is_unchanged(db, tmp):
    doc = {"destinations": {"hook": hook("https://hooks.example.com/sluice"),
                            "pager": {"type": "pagerduty", "routing_key_env": "PD_KEY"}},
           "rules": [{"name": "idem-a", "pattern": "foo", "condition": "match", "notify": ["hook"]},
                     {"name": "idem-b", "pattern": "bar", "condition": "threshold", "count": 5,
                      "window": 60, "notify": ["pager"]}]}
    apply_rules(db, tmp, doc)
    out = apply_rules(db, tmp, doc)
    assert "rules: 0 added, 0 changed, 0 removed, 2 unchanged" in out, out
    assert "destinations: 0 added, 0 changed, 0 removed, 2 unchanged" in out, out
    doc["rules"][1]["count"] = 6
    out = apply_rules(db, tmp, doc)
    assert "rules: 0 added, 1 changed, 0 removed, 1 unchanged" in out, out
    listing = sluice_cli(db, "rules", "list").stdout
    assert "idem-a" in listing and "idem-b" in listing, listing


def test_rules_apply_while_running_takes_effect_without_restart(db, sluice, tmp):
    rcv = Receiver()
    try:
        doc = {"destinations": {"hook": hook(rcv.url)},
               "rules": [{"name": "live-change", "pattern": "alpha-event", "condition": "match",
                          "group_by": "procid", "severity": "info", "notify": ["hook"]}]}
        apply_rules(db, tmp, doc)
        s = start(sluice)
        src = s.add_source()
        pid = s.proc.pid
        post(s, src, [line("beta-event 0", proc="web.0")])
        wait_stored(db, src, 1)
        assert alerts(db, "live-change") == []
        doc["rules"][0]["pattern"] = "beta-event"
        out = apply_rules(db, tmp, doc)
        assert "1 changed" in out, out
        # Keep posting (new dyno each time, so cooldown does not matter) until the new
        # pattern fires; the server must pick it up within a few seconds.
        n, deadline = 1, time.monotonic() + 10
        while not alerts(db, "live-change"):
            assert time.monotonic() < deadline, "the changed rule never took effect (10 s)"
            post(s, src, [line(f"beta-event {n}", proc=f"web.{n}")])
            n += 1
            wait_stored(db, src, n)
            time.sleep(0.3)
        req = rcv.wait(1, 5, "the alert of the changed rule")[0]
        assert "beta-event" in check_webhook_request(req)["data"]["lines"][0]["message"]
        post(s, src, [line("alpha-event", proc="worker.9")])
        wait_stored(db, src, n + 1)
        assert not [a for a in alerts(db, "live-change") if a["group_key"] == "worker.9"], \
            "the old pattern still fires"
        assert s.proc.pid == pid and s.proc.poll() is None and s.starts == 1
    finally:
        rcv.stop()


def test_rules_check_bad_regex_names_rule_and_offset(db, tmp):
    bad = write_rules(tmp, {"destinations": {"hook": hook("https://hooks.example.com/x")},
                            "rules": [{"name": "good-one", "pattern": "ok", "notify": ["hook"]},
                                      {"name": "broken-regex", "pattern": "code=(H12|H13",
                                       "notify": ["hook"]}]}, "bad.json")
    r = sluice_cli(db, "rules", "check", bad, check=False)
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    err = [ln for ln in out.splitlines() if "broken-regex" in ln]
    assert err and "offset" in err[0], f"want the rule name and the PCRE2 offset on one line: {out}"
    assert "good-one" not in out, out
    # apply refuses it too, and changes nothing
    before = db.query("SELECT name, spec FROM rules ORDER BY name")
    r = sluice_cli(db, "rules", "apply", bad, check=False)
    assert r.returncode != 0 and "broken-regex" in r.stdout + r.stderr, r
    assert db.query("SELECT name, spec FROM rules ORDER BY name") == before
    good = write_rules(tmp, {"destinations": {"hook": hook("https://hooks.example.com/x")},
                             "rules": [{"name": "good-one", "pattern": "ok", "notify": ["hook"]}]},
                       "good.json")
    r = sluice_cli(db, "rules", "check", good)
    assert r.stdout.startswith("ok:"), r.stdout


def test_rules_test_shows_which_rule_fires(db, tmp):
    path = write_rules(tmp, {
        "destinations": {"hook": hook("https://hooks.example.com/x")},
        "rules": [{"name": "h12-burst", "pattern": r"\bcode=H12\b", "app": "heroku",
                   "procid": "router", "condition": "threshold", "count": 3, "window": 60,
                   "group_by": "source", "notify": ["hook"]},
                  {"name": "db-errors", "pattern": "(?<error>OperationalError)",
                   "condition": "match", "group_by": "error", "notify": ["hook"]},
                  {"name": "never", "pattern": "this does not occur", "notify": ["hook"]}]})
    lines = "".join([h12(1), h12(2), line("OperationalError: boom", proc="worker.1"),
                     h12(3), line("GET / 200")])
    r = subprocess.run([SLUICE, "rules", "test", path, "--source", "shop"], input=lines,
                       capture_output=True, text=True, timeout=30,
                       env=dict(os.environ, DATABASE_URL=db.url))
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    fires = [ln for ln in out.splitlines() if "FIRES" in ln]
    assert any(ln.startswith("line 4:") and "h12-burst" in ln for ln in fires), out
    assert any(ln.startswith("line 3:") and "db-errors" in ln for ln in fires), out
    assert not any("h12-burst" in ln and ln.startswith(("line 1:", "line 2:")) for ln in fires), out
    assert not any("never" in ln for ln in fires), out
    summary = {ln.split()[0]: ln.split()[1:3] for ln in out.splitlines()
               if ln.split() and ln.split()[0] in ("h12-burst", "db-errors", "never")}
    assert summary == {"h12-burst": ["3", "1"], "db-errors": ["1", "1"], "never": ["0", "0"]}, out


# ---------------------------------------------------------------- safety, packs


def test_catastrophic_pattern_does_not_stall_ingestion(db, sluice, tmp):
    rcv = Receiver()
    try:
        apply_rules(db, tmp, {
            "destinations": {"hook": hook(rcv.url)},
            "rules": [{"name": "catastrophic", "pattern": "(a+)+$", "condition": "match",
                       "group_by": "source", "notify": ["hook"]},
                      {"name": "canary", "pattern": "canary-after-the-storm", "condition": "match",
                       "group_by": "source", "notify": ["hook"]}]})
        s = start(sluice)
        src = s.add_source()
        limit0 = s.metric("sluice_rule_limit_hits_total")
        evil = ["a" * n + "b" for n in (40, 400, 4000, 20000)] * 25  # 100 lines
        t0 = time.monotonic()
        post(s, src, evil)
        wait_stored(db, src, 100, timeout=20)
        took = time.monotonic() - t0
        assert took < 10, f"100 catastrophic lines took {took:.1f}s to be stored"
        assert alerts(db, "catastrophic") == [], "a backtracking-limit miss counted as a match"
        post(s, src, [line("canary-after-the-storm")])
        wait_stored(db, src, 101, timeout=10)
        assert len(alerts(db, "canary")) == 1, "rules stopped working after the catastrophic lines"
        r = rcv.wait(1, 5, "the canary alert")[0]
        assert check_webhook_request(r)["data"]["rule"]["name"] == "canary"
        assert s.get("/healthz").status == 200 and s.proc.poll() is None
        assert s.metric("sluice_rule_limit_hits_total") > limit0, \
            "the pathological rule hitting its PCRE2 limit is not reported in /metrics"
    finally:
        rcv.stop()


def test_heroku_pack_fires_on_h12_burst(db, sluice, tmp):
    rcv = Receiver()
    try:
        src = add_source(db)
        apply_rules(db, tmp, {"destinations": {"hook": hook(rcv.url)}, "rules": [],
                              "packs": {"heroku": {"sources": [src.name], "notify": ["hook"]}}})
        listing = sluice_cli(db, "rules", "list").stdout
        assert "heroku/h12-request-timeout" in listing, listing
        s = start(sluice)
        s.wait_source(src)
        post(s, src, [h12(i) for i in range(9)])
        wait_stored(db, src, 9)
        assert alerts(db, "heroku/h12-request-timeout") == [], "fired below the pack's threshold"
        post(s, src, [h12(9), h12(10)])
        wait_stored(db, src, 11)
        a = alerts(db, "heroku/h12-request-timeout")
        assert len(a) == 1 and a[0]["group_key"] == src.name, a
        req = rcv.wait(1, 5, "the H12 alert")[0]
        d = check_webhook_request(req)["data"]
        assert d["rule"]["name"] == "heroku/h12-request-timeout" and d["count"] >= 10, d
        assert "code=H12" in d["lines"][0]["message"], d
        quiet_for(rcv, 1, 1.0, "one alert for the burst")
    finally:
        rcv.stop()
