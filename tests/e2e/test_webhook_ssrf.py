"""Webhook destinations on special-purpose addresses are refused (issue 13, item 7).

sluice runs with the suite's escape hatch SLUICE_ALERT_ALLOW_PRIVATE=127.0.0.1 (the
receivers live on 127.0.0.1). That admits exactly 127.0.0.1: the IPv4-compatible
[::127.0.0.1], 198.18.0.0/15 (benchmarking), 192.0.0.0/24 (IETF protocol assignments),
240.0.0.0/4 (reserved) and the NAT64 / 6to4 forms of loopback must still be refused at
connect time, each delivery ending dead with the private-address error, while a
destination on 127.0.0.1 itself is delivered. The classifier's every range and edge is in
tests/unit/test_deliver.c (test_special_purpose_ranges).
"""

from receiver import Receiver
from test_alerts import apply_rules, hook, line, outbox, post, quiet_for, start, tmp  # noqa: F401
from conftest import wait_for

REFUSED = {
    # name: (url template, the address in the error)
    "compat": ("https://[::127.0.0.1]:{port}/hook", "::127.0.0.1"),
    "bench": ("http://198.18.0.1:{port}/hook", "198.18.0.1"),
    "ietf": ("http://192.0.0.8:{port}/hook", "192.0.0.8"),
    "reserved": ("http://240.0.0.1:{port}/hook", "240.0.0.1"),
    "nat64": ("https://[64:ff9b::7f00:1]:{port}/hook", "64:ff9b::7f00:1"),
    "sixtofour": ("https://[2002:7f00:1::1]:{port}/hook", "2002:7f00:1::1"),
}


def test_special_purpose_destinations_refused_with_allow_list_set(db, sluice, tmp):
    target = Receiver()  # listening on 127.0.0.1: must get nothing
    live = Receiver()    # the escape hatch still admits 127.0.0.1 itself
    try:
        rule = "ssrf"
        dests = {n: hook(u.format(port=target.port)) for n, (u, _) in REFUSED.items()}
        dests["live"] = hook(live.url)
        apply_rules(db, tmp, {
            "destinations": dests,
            "rules": [{"name": rule, "pattern": "panic:", "condition": "match",
                       "group_by": "source", "severity": "critical",
                       "notify": sorted(dests)}]})
        s = start(sluice)  # SLUICE_ALERT_ALLOW_PRIVATE=127.0.0.1
        src = s.add_source()
        post(s, src, [line("panic: runtime error")])
        wait_for(lambda: len(o := outbox(db, rule)) == len(dests) and
                 all(r["status"] != "pending" for r in o), 10,
                 what=f"every outbox row settled (now {outbox(db, rule)})")
        rows = {r["destination"]: r for r in outbox(db, rule)}
        for name, (_, addr) in REFUSED.items():
            r = rows[name]
            assert r["status"] == "dead", r
            assert r["last_error"] == f"refused: private address {addr}", r
        assert rows["live"]["status"] == "delivered", rows["live"]
        assert len(live.snapshot()) == 1
        quiet_for(target, 0, 0.5, "a refused destination's receiver must not be contacted")
    finally:
        target.stop()
        live.stop()
