"""Field defects of issue 12, end to end: real sluice servers, a real PostgreSQL, the real
local receiver (tests/e2e/receiver.py). One test (or two) per defect, named after it:

1. log-shuttle's own loss notices ("Error L12: N messages dropped since ...") count in
   sluice_sender_lost_total, not only logplex's "Error L12 (...)" form.
2. A resolve never overtakes its firing: deliveries of one alert to one destination go in
   order; a resolve whose firing died is not sent either (docs/alerts.md).
3. A rule naming a source added after the servers started matches it on every node, and
   its absence rule does not page while its lines arrive.
4. The alert's search_url opens a search the API answers with the alert's lines.
5. A delivery in flight when sluice is killed is retried after a lease derived from
   SLUICE_ALERT_TIMEOUT, not after two minutes.
"""

import os
import time
import urllib.parse

from conftest import add_read_token, add_source, api_get, frame_body, heroku_line, wait_for
from receiver import Receiver
from test_alerts import (alerts, apply_rules, check_webhook_request, hook, line, outbox,
                         post, quiet_for, start, tmp, wait_stored)  # noqa: F401 (tmp: fixture)


# ---------------------------------------------------------------- 1. loss notices


def test_log_shuttle_loss_notices_are_counted(db, sluice):
    s = sluice()
    src = s.add_source()
    before = s.metrics()
    since = "2026-11-21T09:59:00+00:00."
    r = s.post(src, frame_body([
        heroku_line("Error L12: 5 messages dropped since " + since, app="app", proc="log-shuttle"),
        heroku_line("Error L13: 7 messages lost since " + since, app="app", proc="log-shuttle"),
        heroku_line("Error L12 (Local buffer overflow): 30 messages dropped since " + since,
                    app="heroku", proc="logplex", pri=172),
        # near misses: not notices
        heroku_line("Error L12 5 messages dropped since " + since, proc="log-shuttle"),
        heroku_line("Error L11: 5 messages dropped since " + since, proc="log-shuttle"),
    ]))
    assert r.status == 204, r
    wait_stored(db, src, 5)

    def delta(code):
        lbl = {"code": code}
        return s.metric("sluice_sender_lost_total", lbl) - \
            before.get(("sluice_sender_lost_total", frozenset(lbl.items())), 0.0)

    wait_for(lambda: delta("L12") >= 35 and delta("L13") >= 7, 5,
             what=f"L12 +35 and L13 +7 (have L12 +{delta('L12')}, L13 +{delta('L13')})")
    assert (delta("L12"), delta("L13"), delta("L10")) == (35, 7, 0)


# ---------------------------------------------------------------- 2. order of deliveries


def test_resolve_waits_for_its_firing_delivery(db, sluice, tmp):
    rcv = Receiver(script=[503])  # the firing's first attempt: 503, retried after ~5 s
    try:
        rule = "order-503"
        apply_rules(db, tmp, {
            "destinations": {"hook": hook(rcv.url)},
            "rules": [{"name": rule, "pattern": "payment gateway down", "condition": "match",
                       "group_by": "source", "resolve_after": 1, "severity": "critical",
                       "notify": ["hook"]}]})
        s = start(sluice)
        src = s.add_source()
        post(s, src, [line("payment gateway down")])
        # The resolve is due after ~1 s, while the firing waits ~5 s for its retry.
        wait_for(lambda: len(outbox(db, rule)) == 2, 8, what="the resolve's outbox row")
        reqs = rcv.wait(3, 15, "firing (503), firing again, then resolved")
        kinds = [r.json()["type"] for r in reqs]
        assert kinds == ["alert.firing", "alert.firing", "alert.resolved"], \
            f"deliveries out of order: {kinds}"
        for r in reqs:
            check_webhook_request(r)
        assert reqs[2].json()["data"]["id"] == reqs[0].json()["data"]["id"]
        quiet_for(rcv, 3, 1.0, "each delivered once")
        wait_for(lambda: [o["status"] for o in outbox(db, rule)] == ["delivered", "delivered"], 3,
                 what=f"both rows delivered: {outbox(db, rule)}")
    finally:
        rcv.stop()


def test_resolve_of_a_dead_firing_is_not_sent(db, sluice, tmp):
    # PagerDuty refuses the trigger (400: dead at once); its resolve must not go alone.
    pd = Receiver(script=[400], default=(202, {"Content-Type": "application/json"},
                                         b'{"status":"success"}'), path="")
    try:
        rule = "order-dead"
        apply_rules(db, tmp, {
            "destinations": {"pager": {"type": "pagerduty", "url": pd.base_url,
                                       "routing_key_env": "E2E_PD_KEY"}},
            "rules": [{"name": rule, "pattern": "queue stalled", "condition": "match",
                       "group_by": "source", "resolve_after": 1, "severity": "critical",
                       "notify": ["pager"]}]})
        s = start(sluice, E2E_PD_KEY="R0UT1NGKEY0000000000000000000000")
        src = s.add_source()
        post(s, src, [line("queue stalled")])
        pd.wait(1, 5, "the refused trigger")
        wait_for(lambda: (o := outbox(db, rule)) and len(o) == 2 and o[1]["status"] != "pending",
                 8, what=f"the resolve's row settled: {outbox(db, rule)}")
        o = outbox(db, rule)
        assert [x["status"] for x in o] == ["dead", "dead"], o
        assert "never delivered" in (o[1]["last_error"] or ""), o[1]
        assert (o[0]["attempts"], o[1]["attempts"]) == (1, 0), o
        quiet_for(pd, 1, 1.5, "no resolve without its trigger")
        assert pd.snapshot()[0].json()["event_action"] == "trigger"
    finally:
        pd.stop()


# ---------------------------------------------------------------- 3. sources added later


def test_rule_for_source_added_later_matches_on_every_node(db, sluice, tmp):
    rcv = Receiver()
    try:
        name = f"late-{os.getpid()}-{int(time.time() * 1000) % 100000}"
        apply_rules(db, tmp, {
            "destinations": {"hook": hook(rcv.url)},
            "rules": [
                {"name": "late-match", "pattern": "late line", "sources": [name],
                 "condition": "match", "group_by": "procid", "cooldown": 60,
                 "severity": "error", "notify": ["hook"]},
                {"name": "late-quiet", "pattern": "late line", "sources": [name],
                 "condition": "absence", "window": 3, "severity": "warning", "notify": ["hook"]},
            ]})
        a = start(sluice)
        b = start(sluice)
        # Both nodes' writers compile the rules (at their first batch) before the source exists.
        early = a.add_source()
        b.wait_source(early)
        post(a, early, [line("early line")])
        post(b, early, [line("early line")])
        wait_stored(db, early, 2)
        src = add_source(db, name)
        a.wait_source(src)
        b.wait_source(src)
        # Lines every 0.4 s for 6 s (twice the absence window), to both nodes.
        end = time.monotonic() + 6
        i = 0
        while time.monotonic() < end:
            post(a, src, [line(f"late line {i}", proc="a.1")])
            post(b, src, [line(f"late line {i}", proc="b.1")])
            i += 1
            time.sleep(0.4)
        wait_stored(db, src, 2 * i)
        groups = sorted(x["group_key"] for x in alerts(db, "late-match"))
        assert groups == ["a.1", "b.1"], \
            f"the rule should match the new source's lines on both nodes: groups {groups}"
        assert alerts(db, "late-quiet") == [], \
            f"absence fired while lines arrived: {alerts(db, 'late-quiet')}"
    finally:
        rcv.stop()


# ---------------------------------------------------------------- 4. search_url


def test_search_url_shows_the_alert_lines(db, sluice, tmp):
    rcv = Receiver()
    try:
        apply_rules(db, tmp, {
            "destinations": {"hook": hook(rcv.url)},
            "rules": [
                # a named group: not in the query language; rewritten as a plain group
                {"name": "url-capture", "pattern": "(?<error>OperationalError|InterfaceError)",
                 "procid": "worker.*", "condition": "match", "group_by": "error",
                 "cooldown": 60, "severity": "error", "notify": ["hook"]},
                # inline flags: not expressible at all; the link is the source and window
                {"name": "url-flags", "pattern": "(?i)deploy/FAILED", "condition": "match",
                 "group_by": "source", "cooldown": 60, "severity": "error", "notify": ["hook"]},
            ]})
        s = start(sluice)
        src = s.add_source()
        post(s, src, [
            line("psycopg2.OperationalError: server closed the connection", proc="worker.1"),
            line("psycopg2.InterfaceError: connection already closed", proc="worker.2"),
            line("job done", proc="worker.1"),
            line("Deploy/failed: exit 1", proc="release.1"),
        ])
        wait_stored(db, src, 4)
        token = add_read_token(db, f"issue12-{os.getpid()}", "--all")
        wait_for(lambda: api_get(s, "/api/v1/search", {"limit": "1"}, token=token).status == 200,
                 10, what="the server to accept the read token")
        reqs = rcv.wait(3, 10, "three firing alerts")
        seen = set()
        for r in reqs:
            d = check_webhook_request(r)["data"]
            url = d["search_url"]
            u = urllib.parse.urlsplit(url)
            assert f"{u.scheme}://{u.netloc}" == f"https://localhost:{s.https_port}", url
            assert u.path == "/api/v1/search", url
            params = urllib.parse.parse_qs(u.query)
            if d["rule"]["name"] == "url-capture":
                assert params.get("q") == ["/(OperationalError|InterfaceError)/"], params
            else:
                assert "q" not in params, params
            ans = api_get(s, u.path + "?" + u.query, token=token)
            assert ans.status == 200, (url, ans.status, ans.body[:300])
            got = [(e["source"], e["message"]) for e in ans.json()["events"]]
            for ln in d["lines"]:
                assert (ln["source_name"], ln["message"]) in got, \
                    f"{d['rule']['name']}/{d['group']}: line {ln['message']!r} not in {url}: {got}"
            seen.add((d["rule"]["name"], d["group"]))
        assert seen == {("url-capture", "OperationalError"), ("url-capture", "InterfaceError"),
                        ("url-flags", src.name)}, seen
    finally:
        rcv.stop()


# ---------------------------------------------------------------- 5. lease after kill -9


def test_delivery_in_flight_at_kill_is_retried_after_short_lease(db, sluice, tmp):
    # The first attempt gets no answer (held open); sluice is killed while it waits.
    rcv = Receiver(script=[("hang", 60)])
    try:
        rule = "kill-lease"
        apply_rules(db, tmp, {
            "destinations": {"hook": hook(rcv.url)},
            "rules": [{"name": rule, "pattern": "cache cluster failover", "condition": "match",
                       "group_by": "source", "severity": "critical", "notify": ["hook"]}]})
        s = start(sluice, SLUICE_ALERT_TIMEOUT=3)  # lease: 3 s + 10 s
        src = s.add_source()
        post(s, src, [line("cache cluster failover")])
        first = rcv.wait(1, 10, "the first attempt")[0]
        s.kill()
        o = outbox(db, rule)
        assert len(o) == 1 and o[0]["status"] == "pending" and o[0]["lease_until"], o
        s.start()
        second = rcv.wait(2, 22, "the retry once the dead node's lease expired")[1]
        gap = second.at - first.at
        assert gap <= 16, f"retried {gap:.1f}s after the kill (lease: timeout 3 s + 10 s)"
        assert second.headers["webhook-id"] == first.headers["webhook-id"]
        check_webhook_request(second)
        wait_for(lambda: outbox(db, rule)[0]["status"] == "delivered", 5,
                 what=f"delivered: {outbox(db, rule)}")
    finally:
        rcv.stop()
