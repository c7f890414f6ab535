"""Search end to end (issue 3, docs/api.md): GET /api/v1/search and the Papertrail-compatible
GET /api/v1/events/search.json against the real server and PostgreSQL.

One server and one ingest per module: the two stream-corpus apps (Heroku logplex bodies)
as sources `stream-validibot` and `stream-packfinderz`, and `crafted`, a body of lines
written to exercise every operator of the query language (include/sluice/query.h), then
a `late` batch posted after a whole-second boundary (for the time-window tests). The
expected result of every query comes from tests/e2e/query_oracle.py, an independent
Python model of the documented semantics, run over the rows read back from PostgreSQL;
the server's answer must hold exactly those ids.
"""

import base64
import datetime
import json
import math
import re
import time
import urllib.parse

import pytest

import query_oracle
from conftest import (CORPUS, Server, add_read_token, api_get, basic_auth, frame_body,
                      sluice_cli, wait_for)

UTC = datetime.timezone.utc
READ_TOKEN = re.compile(r"slr_[0-9a-f]{40}")
SEARCH = "/api/v1/search"
PT = "/api/v1/events/search.json"
TAIL = "/api/v1/tail"
APPS = ("validibot", "packfinderz")
BODIES = 5  # 000..004.logplex per app (manifest.json)


def now_ts():
    return datetime.datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def line(msg, pri=134, host="web-01", app="myapp", proc="web.1"):
    """A Heroku-form syslog frame (no STRUCTURED-DATA), as logplex sends it."""
    m = msg.encode() if isinstance(msg, str) else msg
    return f"<{pri}>1 {now_ts()} {host} {app} {proc} - ".encode() + m + b"\n"


# local0 = 16 (128 + sev), local3 = 19 (152), local4 = 20 (160), user = 1 (8), daemon = 3 (24),
# local7 = 23 (184)
CRAFTED = [
    line("Error: connection refused to db"),
    line("errors were reported by the checker", pri=131, proc="web.2"),
    line("KeyError: 'user_id'", pri=131, host="worker-host", proc="worker.1"),
    line("an error occurred, connection refused", pri=132, host="web-02", proc="web.10"),
    line("connection  refused twice spaced", proc="webhook.1"),
    line('at=error code=H12 desc="Request timeout" method=GET path="/slow" host=crafted.example '
         "dyno=web.1 connect=1ms service=30000ms status=503 bytes=0",
         pri=158, host="host", app="heroku", proc="router"),
    line('at=info method=GET path="/" host=crafted.example dyno=web.2 connect=0ms service=12ms '
         "status=200 bytes=1536", pri=158, host="host", app="heroku", proc="router"),
    line('at=info method=POST path="/upload" dyno=web.10 connect=2ms service=1.5s status=500 '
         "bytes=2kb", pri=158, host="host", app="heroku", proc="router"),
    line('at=info method=GET path="/big" dyno=web.1 service=900 status="404" bytes=1048576',
         pri=158, host="host", app="heroku", proc="router"),
    line('at=error code=H10 desc="App crashed" method=GET path="/" dyno= connect=5000ms '
         "service=2000ms status=503 bytes=0", pri=158, host="host", app="heroku", proc="router"),
    line("timeout after 30s waiting for lock", pri=12, host="db-02", app="postgres", proc="1234"),
    line("TIMEOUT exceeded", pri=11, host="db-02", app="postgres", proc="1234"),
    line("kernel panic imminent", pri=8, host="db-02", app="kernel", proc="-"),
    line("debug trace id=abc-123 took 15us", pri=15, host="worker-host", proc="worker.1"),
    line('user said "hi" to bob', pri=13, host="worker-host", proc="worker.1"),
    line("it's the cron job's turn", pri=29, host="worker-host", app="cron-app", proc="cron.1"),
    line("Überweisung fehlgeschlagen für Kunde Müller", pri=164, host="web-02", app="otherapp"),
    line("データベース 接続 エラー", pri=164, host="web-02", app="otherapp", proc="web.2"),
    line("GET /health/ready returned 200 in 5ms"),
    line("sample#db_size=5480696352bytes sample#active-connections=28"),
    line('level=warn msg="disk almost full" used=92 service=3s'),
    b"plain line without header: error here\n",
    b"another headerless line status=500\n",
    line(b"bad bytes \xff\xfe here error"),
    line("local7 line h12 lowercase code", pri=184),
    line("request_id=4d2ce947-6234-4225-898b-161634382259 retried"),
    line("trunchead " + "y" * 70000 + " truncend"),  # past SLUICE_MAX_MESSAGE_BYTES (64 KiB)
]
LATE = [
    line("late line one error"),
    line("late line two"),
    line("late line three status=502", pri=131),
]
CRAFTED_TAGS = "env=test&team=core"
# enough lines for Papertrail's default limit (1000) to cut
FILLER = [line(f"filler {i} at=info status={200 + i % 5} service={i}ms", proc=f"web.{i % 3}")
          for i in range(250)]

# Every operator of query.h; the expected ids of each come from the oracle.
QUERIES = [
    "", "error", "Error", "ERROR", "errors", "KeyError", "KeyError:", "error connection",
    "error AND refused", '"connection refused"', "'connection refused'", '"said \\"hi\\""',
    "'cron job'", "error OR timeout", "timeout error OR H12", "(timeout OR H12) severity:err",
    "error -refused", "NOT error", '-"connection refused"', "-(error OR timeout)",
    "source:crafted", "source:stream-*", "source:crafted OR source:nonexistent",
    "-source:crafted", "source:stream-validibot error", "app:myapp", "app:my*", "-app:myapp",
    "program:web.*", "proc:web.?", "program:router", "proc:worker.1", "host:web-01",
    "sender:web-0*", "-host:web-01", "-host:*", "severity:err", "severity:error", "severity:3",
    "severity:<=warning", "severity:>info", "severity:warn", "severity:emerg", "-severity:info",
    "severity:debug", "facility:local0", "facility:16", "facility:user", "facility:>=16",
    "facility:daemon", "message:error", 'message:"connection refused"', "/H1[0-9]/",
    "/time ?out/i", "/time ?out/", "/^at=error/", "/\\/health\\/ready/", "/refused$/",
    "/status=5[0-9]{2}\\b/", "/rror/i", "status:>=500", "status:503", "status:!=200",
    "-status:>=500", "status:<300", "status:=404", "code:H12", "code:h12", "-code:H12",
    "code:H1*", "service:>1000ms", "service:>1s", "service:<=900", "service:>=2000ms",
    "service:<100ms", "connect:>=1ms", "bytes:>1kb", "bytes:>=1mb", "bytes:0", "bytes:>=2048b",
    "sample#db_size:>1gb", "sample#db_size:<500mb", "dyno:web.1", "dyno:web.*", "dyno:!=web.1",
    'desc:"Request timeout"', "desc:*crashed", "path:/", "h12", "für", "f", "Müller", "müller",
    "MÜLLER", "エラー", "接続エラー", "at=info", 'level:warn msg:"disk almost full"', "used:>90",
    "(error OR timeout) (host:web-01 OR host:db-02) -severity:emerg", "celery",
    "heartbeat OR celery", "request_id:4d2ce947-6234-4225-898b-161634382259",
    "4d2ce947-6234-4225-898b-161634382259", "here", "late", "bad bytes",
    "KeyError traceback OR Traceback", "method:POST status:>=500",
    # edges
    '"error"', "NOT (error OR timeout)", "error AND NOT refused", "-(-error)",
    "-(severity:err OR app:myapp)", "severity:!=info", "facility:!=local0", "host:!=web-01",
    "app:!=my*", "/KeyError/", "/keyerror/i", "app:'cron-app'", 'program:"web.1"',
    "dyno:web.?", "used:>-1", "service:>1.4s", "service:<1.6s", "service:>1S", "bytes:>1KB",
    "/health", '"/health/ready"', "/api/v1/validations", "/api/index", "/Müller/", "/エラー/",
    '"connection  refused"', "error\tOR\ntimeout", "error AND connection AND refused",
    "error or timeout", "not error", "sample#active-connections:>20", "-KeyError:",
    "source:stream-?alidibot", "-source:stream-*", "(source:crafted OR source:filler) -status:200",
    "filler status:202", "proc:web.0 service:<10ms", "service:<=10ms service:>=5ms",
    "trunchead", "truncend", "trunchead OR truncend",
]

# Bad queries: (q, position or None when the contract does not fix it, reason words).
BAD_QUERIES = [
    ("(a b", 0, "parenthes"),
    ("a b)", 3, "parenthes"),
    ("severity:bogus", 9, "severity"),
    ("x severity:bogus", 11, "severity"),
    ("facility:nope", 9, "facility"),
    ("//", 0, "regex"),
    ("/[a/", None, None),
    ("/(a/", None, None),
    ("a OR", None, "OR"),
    ("OR a", None, "OR"),
    ("-", 0, "negate"),
    ("()", 0, "parenthes"),
    ("status:>abc", None, "number"),
    ("status:>5zz", None, "unit"),
    ('"unterminated', None, None),
    ('""', None, "phrase"),
    ("app:", None, "value"),
    ("a " * 65, None, None),
    ("(" * 20 + "a" + ")" * 20, None, None),
    ("severity:8", 9, "severity"),
    ("severity:07", 9, "severity"),
    ("facility:24", 9, "facility"),
    ("source:bad/name", 7, "source"),
    ("status:>", None, "value"),
    ("host:>a", None, "operator"),
    ("message:>x", None, "operator"),
    ("/(?P<x>a)/", None, None),
    ("/\\p{L}/", None, None),
    ("a\x01b", None, None),
    ("x" * 4097, None, None),
]


# ---------------------------------------------------------------- helpers


def rfc3339(dt):
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_us(s):
    """'2026-11-22T04:16:01.123456Z' -> aware datetime; the format is part of the contract."""
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", s), s
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


class World:
    pass


@pytest.fixture(scope="module")
def world(db, tls, workdir):
    w = World()
    w.db = db
    w.server = Server(db, tls, workdir, {})
    w.server.start()
    try:
        w.src = {app: w.server.add_source(f"stream-{app}") for app in APPS}
        w.crafted = w.server.add_source("crafted")
        w.filler = w.server.add_source("filler")
        w.names = {s.name: s.id for s in [*w.src.values(), w.crafted, w.filler]}
        a, b = w.src["validibot"], w.src["packfinderz"]
        w.a, w.b = a, b
        w.tok_all = add_read_token(db, "search-all", "--all")
        w.tok_a = add_read_token(db, "search-a", "--source", a.name)
        w.tok_ac = add_read_token(db, "search-ac", "--source", a.name, "--source", w.crafted.name)

        expected = 0
        for app in APPS:
            for i in range(BODIES):
                path = f"{CORPUS}/streams/{app}/{i:03d}.logplex"
                r = w.server.post(w.src[app], path)
                assert r.status == 204, f"{path}: {r}"
        expected += 410 + 412
        r = w.server.post(w.crafted, frame_body(CRAFTED), query=CRAFTED_TAGS)
        assert r.status == 204, r
        expected += len(CRAFTED)
        r = w.server.post(w.filler, frame_body(FILLER), query="rep=1&rep=2&solo=x")
        assert r.status == 204, r
        expected += len(FILLER)
        wait_for(lambda: db.query("SELECT count(*) AS n FROM logs")[0]["n"] >= expected, 30,
                 what=f"{expected} rows")
        # the late batch: strictly after a whole second that follows every earlier row
        last = db.query("SELECT max(received_at) AS t FROM logs")[0]["t"]
        w.cut = math.floor(last.timestamp()) + 1  # unix seconds
        while time.time() < w.cut + 0.05:
            time.sleep(0.02)
        r = w.server.post(w.crafted, frame_body(LATE), query=CRAFTED_TAGS)
        assert r.status == 204, r
        expected += len(LATE)
        wait_for(lambda: db.query("SELECT count(*) AS n FROM logs")[0]["n"] >= expected, 30,
                 what=f"{expected} rows")
        time.sleep(0.3)
        w.rows = db.query("SELECT l.*, s.name AS source FROM logs l "
                          "JOIN sources s ON s.id = l.source_id")
        assert len(w.rows) == expected
        w.by_id = {r["id"]: r for r in w.rows}
        t0 = min(r["received_at"] for r in w.rows)
        t1 = max(r["received_at"] for r in w.rows)
        w.window = {"since": rfc3339(t0 - datetime.timedelta(seconds=1)),
                    "until": rfc3339(t1 + datetime.timedelta(seconds=1))}
        w.all_ids = set(w.by_id)
        yield w
    finally:
        w.server.stop()


def ordered(w, ids, order="desc"):
    key = lambda i: (w.by_id[i]["received_at"], i)  # noqa: E731
    return sorted(ids, key=key, reverse=(order == "desc"))


def search(w, token, **params):
    p = dict(w.window)
    p.setdefault("limit", 10000)
    p.update(params)
    p = {k: v for k, v in p.items() if v is not None}
    r = api_get(w.server, SEARCH, p, token=token)
    return r


def search_ok(w, token, **params):
    r = search(w, token, **params)
    assert r.status == 200, f"{params}: {r.status} {r.body[:300]!r}"
    assert r.headers.get("content-type", "").startswith("application/json"), r.headers
    return r.json()


def oracle(w, q, scope):
    return query_oracle.matching_ids(q, w.rows, scope, w.names)


def ids_of(doc):
    ids = [int(e["id"]) for e in doc["events"]]
    assert len(ids) == len(set(ids)), f"duplicate ids in one answer: {ids}"
    return ids


def describe(w, ids):
    return [(i, w.by_id[i]["source"], w.by_id[i]["message"][:90]) for i in sorted(ids)][:8]


def check_query(w, token, scope, q):
    want = oracle(w, q, scope)
    doc = search_ok(w, token, q=q)
    got = ids_of(doc)
    assert doc["count"] == len(got)
    missing, extra = want - set(got), set(got) - want
    assert not missing and not extra, (
        f"q={q!r}: expected {len(want)} lines, got {len(got)}; "
        f"missing {describe(w, missing)}; unexpected {describe(w, extra)}")
    assert got == ordered(w, want), f"q={q!r}: not newest first by (received_at, id)"


# ---------------------------------------------------------------- the query table


@pytest.mark.parametrize("q", QUERIES)
def test_query(world, q):
    check_query(world, world.tok_all, set(world.names.values()), q)


SCOPED = ["", "error", "source:stream-*", "source:stream-packfinderz", "source:crafted",
          "-source:crafted", "source:stream-packfinderz OR source:crafted", "celery OR KeyError",
          "-source:stream-validibot"]


@pytest.mark.parametrize("q", SCOPED)
def test_query_scoped(world, q):
    """A token for validibot + crafted sees neither a packfinderz line nor its name."""
    w = world
    check_query(w, w.tok_ac, {w.a.id, w.crafted.id}, q)
    check_query(w, w.tok_a, {w.a.id}, q)


def test_oracle_sanity(world):
    """Guards the oracle itself: word boundaries and a few results written out by hand."""
    w = world
    scope = {w.crafted.id}

    def msgs(q):
        return {w.by_id[i]["message"] for i in oracle(w, q, scope)}

    got = msgs("error")
    assert "Error: connection refused to db" in got
    assert "an error occurred, connection refused" in got
    assert "errors were reported by the checker" not in got
    assert "KeyError: 'user_id'" not in got
    assert msgs('"connection refused"') == {"Error: connection refused to db",
                                            "an error occurred, connection refused"}
    assert msgs("code:H12") == {m for m in msgs("") if "code=H12" in m}
    # 503, 500, 503, 502 (late) and the headerless "status=500"; not status="404"
    assert len(msgs("status:>=500")) == 5
    assert msgs("für") == {"Überweisung fehlgeschlagen für Kunde Müller"}
    assert msgs("MÜLLER") == set() and msgs("f") == set()
    assert len(oracle(w, "-host:*", scope)) == 2  # the two lines without a syslog header
    for r in w.rows:
        if r["source_id"] == w.crafted.id and r["message"].startswith(("plain line", "another")):
            assert r["parse_error"] is not None and r["hostname"] is None


# ---------------------------------------------------------------- events field by field

SEV_NAMES = ["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"]
FAC_NAMES = ["kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
             "authpriv", "ftp", "ntp", "security", "console", "solaris-cron",
             *[f"local{i}" for i in range(8)]]


def check_event(ev, row):
    keys = {"id", "received_at", "source", "source_id", "emitted_at", "emitted_precision",
            "emitted_offset", "facility", "facility_name", "severity", "severity_name",
            "hostname", "app_name", "procid", "msgid", "sd", "message", "message_raw",
            "parse_error", "truncated_from", "tags", "frame_id", "fields"}
    assert set(ev) == keys, f"event keys: {sorted(set(ev) ^ keys)}"
    assert ev["id"] == str(row["id"]) and isinstance(ev["id"], str)
    assert parse_us(ev["received_at"]) == row["received_at"]
    assert ev["source"] == row["source"]
    assert ev["source_id"] == row["source_id"] and isinstance(ev["source_id"], int)
    if row["emitted_at"] is None:
        assert ev["emitted_at"] is None
    else:
        assert parse_us(ev["emitted_at"]) == row["emitted_at"]
    for k in ("emitted_precision", "emitted_offset", "facility", "severity", "hostname",
              "app_name", "procid", "msgid", "sd", "message", "parse_error", "truncated_from",
              "frame_id"):
        assert ev[k] == row[k], f"{k}: event {ev[k]!r} != row {row[k]!r}"
    assert ev["severity_name"] == (None if row["severity"] is None else SEV_NAMES[row["severity"]])
    assert ev["facility_name"] == (None if row["facility"] is None else FAC_NAMES[row["facility"]])
    assert ev["tags"] == row["tags"]
    raw = row["message_raw"]
    assert ev["message_raw"] == (None if raw is None else base64.b64encode(bytes(raw)).decode())


def test_event_fields(world):
    w = world
    doc = search_ok(w, w.tok_all, q="")
    assert doc["count"] == len(w.rows) == len(doc["events"])
    for ev in doc["events"]:
        check_event(ev, w.by_id[int(ev["id"])])
    kinds = {"raw": 0, "parse_error": 0, "tags": 0, "truncated": 0, "rep": 0}
    for ev in doc["events"]:
        kinds["raw"] += ev["message_raw"] is not None
        kinds["parse_error"] += ev["parse_error"] is not None
        kinds["tags"] += ev["tags"] == {"env": "test", "team": "core"}
        kinds["truncated"] += ev["truncated_from"] is not None
        kinds["rep"] += ev["tags"] == {"rep": ["1", "2"], "solo": "x"}
    assert kinds["raw"] >= 1 and kinds["parse_error"] >= 2, kinds
    assert kinds["tags"] == len(CRAFTED) + len(LATE), kinds
    assert kinds["truncated"] == 1 and kinds["rep"] == len(FILLER), kinds


def test_answer_shape(world):
    w = world
    doc = search_ok(w, w.tok_all, q="error", limit=3)
    assert set(doc) >= {"events", "count", "since", "until", "default_window", "order",
                        "next_cursor", "prev_cursor", "reached_end"}, sorted(doc)
    assert doc["order"] == "desc" and doc["default_window"] is False
    assert parse_us(doc["since"]) == parse_us(w.window["since"])
    assert parse_us(doc["until"]) == parse_us(w.window["until"])
    assert doc["count"] == 3 and doc["reached_end"] is False
    assert isinstance(doc["next_cursor"], str) and isinstance(doc["prev_cursor"], str)
    # default limit 100
    doc = search_ok(w, w.tok_all, q="", limit=None)
    assert doc["count"] == 100 and ids_of(doc) == ordered(w, w.all_ids)[:100]


# ---------------------------------------------------------------- paging, order, windows


def pages(w, token, q, order, limit=7, max_pages=200):
    out, docs = [], []
    params = {"q": q, "order": order, "limit": limit}
    for _ in range(max_pages):
        doc = search_ok(w, token, **params)
        docs.append(doc)
        out.extend(ids_of(doc))
        if doc["reached_end"]:
            assert doc["next_cursor"] is None
            return out, docs
        assert doc["next_cursor"], doc
        params["cursor"] = doc["next_cursor"]
    pytest.fail(f"no reached_end after {max_pages} pages")


@pytest.mark.parametrize("order", ["desc", "asc"])
def test_cursor_paging(world, order):
    w = world
    q = "source:crafted OR celery"
    want = ordered(w, oracle(w, q, set(w.names.values())), order)
    assert len(want) > 30
    got, docs = pages(w, w.tok_all, q, order)
    assert len(got) == len(set(got)), "a line came twice across pages"
    assert got == want, f"pages of 7 ({order}) differ from the whole ordered set"
    assert all(len(d["events"]) == 7 for d in docs[:-1])
    # prev_cursor of page k goes back to exactly page k-1
    for k in range(len(docs) - 1, 0, -1):
        if not docs[k]["events"]:
            continue
        back = search_ok(w, w.tok_all, q=q, order=order, limit=7, cursor=docs[k]["prev_cursor"])
        assert ids_of(back) == ids_of(docs[k - 1]), f"prev_cursor of page {k} ({order})"
    # before the first page there is nothing
    first_prev = docs[0]["prev_cursor"]
    back = search_ok(w, w.tok_all, q=q, order=order, limit=7, cursor=first_prev)
    assert back["events"] == [] and back["prev_cursor"] is None


def test_order_asc(world):
    w = world
    doc = search_ok(w, w.tok_all, q="error", order="asc")
    assert doc["order"] == "asc"
    assert ids_of(doc) == ordered(w, oracle(w, "error", set(w.names.values())), "asc")


def test_time_windows(world):
    w = world
    late = {r["id"] for r in w.rows if r["received_at"].timestamp() >= w.cut}
    early = w.all_ids - late
    assert len(late) == len(LATE) and early
    cut_dt = datetime.datetime.fromtimestamp(w.cut, UTC)
    cases = [
        ({"since": str(w.cut)}, late),
        ({"until": str(w.cut)}, early),
        ({"since": f"{w.cut}.0", "until": w.window["until"]}, late),
        ({"since": rfc3339(cut_dt)}, late),
        ({"until": rfc3339(cut_dt)}, early),
        ({"until": cut_dt.strftime("%Y-%m-%dT%H:%M:%S+00:00")}, early),
        ({"since": (cut_dt + datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S+01:00")},
         late),
        ({"since": "15m", "until": None}, w.all_ids),
        ({"since": "1w", "until": None}, w.all_ids),
        ({"since": datetime.datetime.now(UTC).strftime("%Y-%m-%d"), "until": None}, w.all_ids),
    ]
    # since is inclusive and until exclusive, to the microsecond
    first_late = min(late, key=lambda i: (w.by_id[i]["received_at"], i))
    t = w.by_id[first_late]["received_at"]
    at_t = {i for i in w.all_ids if w.by_id[i]["received_at"] >= t}
    cases += [({"since": rfc3339(t)}, at_t), ({"until": rfc3339(t)}, w.all_ids - at_t)]
    for params, want in cases:
        p = {k: v for k, v in params.items()}
        doc = search_ok(w, w.tok_all, **p)
        got = set(ids_of(doc))
        assert got == want, f"{params}: expected {len(want)} lines, got {len(got)}"
    # the default window: the 24 hours before now
    r = api_get(w.server, SEARCH, {"q": "late"}, token=w.tok_all)
    assert r.status == 200, r
    doc = r.json()
    assert doc["default_window"] is True
    since, until = parse_us(doc["since"]), parse_us(doc["until"])
    assert until - since == datetime.timedelta(hours=24)
    assert abs((until - datetime.datetime.now(UTC)).total_seconds()) < 60
    assert {e["message"] for e in doc["events"]} == {"late line one error", "late line two",
                                                     "late line three status=502"}


@pytest.mark.parametrize("params", [
    {"limit": "0"}, {"limit": "10001"}, {"limit": "abc"}, {"limit": "-1"},
    {"order": "sideways"}, {"since": "yesterday"}, {"until": "2026-13-45T00:00:00Z"},
    {"cursor": "garbage"}, {"since": "15x"},
])
def test_bad_parameters(world, params):
    w = world
    r = search(w, w.tok_all, q="error", **params)
    assert r.status == 400, f"{params}: {r.status} {r.body[:200]!r}"
    doc = r.json()
    assert isinstance(doc.get("error"), str) and doc["error"], doc


@pytest.mark.parametrize("q,pos,reason", BAD_QUERIES)
def test_bad_query(world, q, pos, reason):
    w = world
    r = search(w, w.tok_all, q=q)
    assert r.status == 400, f"q={q!r}: {r.status} {r.body[:200]!r}"
    assert r.headers.get("content-type", "").startswith("application/json")
    doc = r.json()
    assert doc["error"].startswith("bad query"), doc
    assert isinstance(doc.get("position"), int) and 0 <= doc["position"] <= len(q.encode()), doc
    if pos is not None:
        assert doc["position"] == pos, f"q={q!r}: {doc}"
    if reason is not None:
        assert reason.lower() in doc["error"].lower(), f"q={q!r}: {doc}"
    # the Papertrail endpoint refuses it the same way
    r = api_get(w.server, PT, {"q": q}, token=w.tok_all)
    assert r.status == 400 and "error" in r.json(), f"{PT} q={q!r}: {r.status} {r.body[:200]!r}"


# ---------------------------------------------------------------- Papertrail compatibility

PT_KEYS = {"id", "received_at", "generated_at", "display_received_at", "source_ip",
           "source_name", "source_id", "hostname", "program", "severity", "facility", "message"}


def pt_time(s):
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", s), s
    return datetime.datetime.fromisoformat(s)


def check_pt_event(ev, row):
    assert set(ev) == PT_KEYS, sorted(set(ev) ^ PT_KEYS)
    assert ev["id"] == str(row["id"])
    rec = row["received_at"].astimezone(UTC)
    assert pt_time(ev["received_at"]) == rec.replace(microsecond=0)
    gen = (row["emitted_at"] or row["received_at"]).astimezone(UTC)
    assert pt_time(ev["generated_at"]) == gen.replace(microsecond=0)
    assert ev["display_received_at"] == rec.strftime("%b %d %H:%M:%S"), ev
    assert ev["source_ip"] is None
    assert ev["source_name"] == row["source"] and ev["source_id"] == row["source_id"]
    assert isinstance(ev["source_id"], int)
    assert ev["hostname"] == row["hostname"]
    app, proc = row["app_name"], row["procid"]
    assert ev["program"] == ("/".join(x for x in (app, proc) if x) or None), (ev, app, proc)
    if row["severity"] is None:
        assert ev["severity"] is None
    else:
        s = ev["severity"]
        assert s[0].isupper() and s.lower() in {k for k, v in query_oracle.SEVERITIES.items()
                                                if v == row["severity"]}, (s, row["severity"])
    if row["facility"] is None:
        assert ev["facility"] is None
    else:
        f = ev["facility"]
        assert f[0].isupper() and f.lower() == FAC_NAMES[row["facility"]], (f, row["facility"])
    assert ev["message"] == row["message"]


def pt_get(w, params, token=None, header="X-Papertrail-Token"):
    tok = w.tok_all if token is None else token
    r = api_get(w.server, PT, params, headers={header: tok})
    assert r.status == 200, f"{params}: {r.status} {r.body[:300]!r}"
    return r.json()


def test_papertrail_fields(world):
    w = world
    doc = pt_get(w, {"q": "source:crafted"})
    want = ordered(w, oracle(w, "source:crafted", set(w.names.values())), "asc")
    got = ids_of(doc)
    assert got == want, "papertrail: every crafted line, oldest first"
    for ev in doc["events"]:
        check_pt_event(ev, w.by_id[int(ev["id"])])
    info = [e for e in doc["events"] if e["message"] == "Error: connection refused to db"][0]
    assert info["severity"] == "Info" and info["facility"] == "Local0"
    assert info["program"] == "myapp/web.1" and info["hostname"] == "web-01"
    assert set(doc) >= {"events", "min_id", "max_id", "reached_beginning", "reached_time_limit",
                        "reached_record_limit", "min_time_at"}, sorted(doc)
    assert doc["min_id"] == str(want[0]) and doc["max_id"] == str(want[-1])
    assert isinstance(doc["min_id"], str)
    assert doc["reached_record_limit"] is False and doc["reached_beginning"] is True
    assert doc["reached_time_limit"] is True
    # without min_time the window is the 7 days before now
    start = pt_time(doc["min_time_at"])
    week = datetime.datetime.now(UTC) - datetime.timedelta(days=7)
    assert abs((start - week).total_seconds()) < 60, doc["min_time_at"]
    router = pt_get(w, {"q": "program:router code:H12 source:crafted"})["events"]
    assert [e["program"] for e in router] == ["heroku/router"]
    # a line whose PROCID is '-' (kernel) shows the app name alone
    kern = pt_get(w, {"q": "kernel panic"})["events"]
    assert [e["program"] for e in kern] == ["kernel"]
    # every event of the corpus sources too
    doc = pt_get(w, {"q": "", "limit": 10000})
    assert ids_of(doc) == ordered(w, w.all_ids, "asc")
    for ev in doc["events"]:
        check_pt_event(ev, w.by_id[int(ev["id"])])


def test_papertrail_limits_and_paging(world):
    w = world
    everything = ordered(w, w.all_ids, "asc")
    assert len(everything) > 1000
    doc = pt_get(w, {})
    assert ids_of(doc) == everything[-1000:], "default limit 1000: the newest, oldest first"
    assert doc["reached_record_limit"] is True and doc["reached_beginning"] is False
    assert doc["reached_time_limit"] is False
    # max_id pages back (older than that event), min_id forward (newer than that event)
    q = "source:crafted OR KeyError"
    want = ordered(w, oracle(w, q, set(w.names.values())), "asc")
    got, max_id = [], None
    for _ in range(50):
        p = {"q": q, "limit": 7}
        if max_id:
            p["max_id"] = max_id
        doc = pt_get(w, p)
        ids = ids_of(doc)
        got = ids + got
        if len(ids) < 7 or doc["reached_beginning"]:
            break
        max_id = doc["min_id"]
    assert got == want, "max_id paging (backwards) differs from the whole set"
    got, min_id = [want[0]], str(want[0])
    for _ in range(50):
        doc = pt_get(w, {"q": q, "limit": 7, "min_id": min_id})
        ids = ids_of(doc)
        got += ids
        if not ids:
            break
        min_id = doc["max_id"]
    assert got == want, "min_id paging (forwards) differs from the whole set"
    assert doc["min_id"] is None and doc["max_id"] is None  # empty answer
    # min_time / max_time (Unix seconds)
    late = {r["id"] for r in w.rows if r["received_at"].timestamp() >= w.cut}
    doc = pt_get(w, {"min_time": str(w.cut)})
    assert set(ids_of(doc)) == late
    # max_time includes its whole second (Papertrail's times are whole seconds)
    doc = pt_get(w, {"max_time": str(w.cut - 1), "limit": 10000})
    assert set(ids_of(doc)) == w.all_ids - late
    # group_id / system_id: a source by name or id
    doc = pt_get(w, {"system_id": str(w.crafted.id), "limit": 10000})
    assert {w.by_id[int(e["id"])]["source_id"] for e in doc["events"]} == {w.crafted.id}
    doc = pt_get(w, {"group_id": "crafted", "q": "error", "limit": 10000})
    assert set(ids_of(doc)) == oracle(w, "error", {w.crafted.id})


# ---------------------------------------------------------------- tokens and scope


def test_scope_every_endpoint(world):
    """A token for stream-validibot never sees another source's line, whatever it asks."""
    w = world
    a_only = {r["id"] for r in w.rows if r["source_id"] == w.a.id}
    for params, want in (({}, a_only), ({"source": w.b.name}, set()),
                         ({"q": f"source:{w.b.name}"}, set()),
                         ({"source": f"{w.a.name},{w.b.name}"}, a_only),
                         ({"source": [w.a.name, w.b.name]}, a_only),
                         ({"q": "source:*"}, a_only), ({"q": f"-source:{w.a.name}"}, set()),
                         ({"q": f"source:{w.b.name} OR source:crafted"}, set()),
                         ({"source": w.b.name, "q": f"source:{w.b.name}"}, set())):
        doc = search_ok(w, w.tok_a, **params)
        got = set(ids_of(doc))
        assert got <= a_only, f"token for {w.a.name} saw other lines with {params}"
        assert got == want, f"token for {w.a.name}, {params}: {len(got)} lines, want {len(want)}"
    for params, want in (({}, a_only), ({"system_id": str(w.b.id)}, set()),
                         ({"group_id": w.b.name}, set()), ({"q": f"source:{w.b.name}"}, set()),
                         ({"system_id": str(w.a.id)}, a_only)):
        doc = pt_get(w, dict(params, limit=10000), token=w.tok_a)
        got = set(ids_of(doc))
        assert got <= a_only, f"papertrail: token for {w.a.name} saw other lines with {params}"
        assert got == want, f"papertrail, token for {w.a.name}, {params}"
    # Bearer works on the Papertrail endpoint as well
    doc = pt_get(w, {"limit": 10000}, token="Bearer " + w.tok_a, header="Authorization")
    assert set(ids_of(doc)) == a_only


def test_source_param(world):
    w = world
    doc = search_ok(w, w.tok_all, source=f"{w.b.name},crafted", q="")
    want = {r["id"] for r in w.rows if r["source_id"] in (w.b.id, w.crafted.id)}
    assert set(ids_of(doc)) == want
    doc = search_ok(w, w.tok_all, source=[w.b.name, "crafted"], q="error")
    assert set(ids_of(doc)) == oracle(w, "error", {w.b.id, w.crafted.id})
    doc = search_ok(w, w.tok_all, source="no-such-source")
    assert doc["events"] == []


@pytest.mark.parametrize("path", [SEARCH, PT, TAIL])
def test_unauthorized(world, path):
    w = world
    bad = [
        ({}, "no token"),
        ({"Authorization": "Bearer slr_" + "0" * 40}, "unknown token"),
        ({"X-Papertrail-Token": "slr_" + "1" * 40}, "unknown papertrail token"),
        ({"Authorization": "Bearer " + w.a.token}, "ingest token as bearer"),
        ({"Authorization": basic_auth(w.a)}, "ingest basic auth"),
        ({"X-Papertrail-Token": w.a.token}, "ingest token as papertrail token"),
        ({"Authorization": "Bearer"}, "empty bearer"),
    ]
    for headers, what in bad:
        r = api_get(w.server, path, {"q": "error"}, headers=headers, timeout=10)
        assert r.status == 401, f"{path} {what}: {r.status} {r.body[:200]!r}"
        assert "error" in json.loads(r.body), f"{path} {what}: {r.body[:200]!r}"
    # the X-Papertrail-Token header works on the native endpoint too
    if path == SEARCH:
        r = api_get(w.server, path, dict(w.window, q="late"),
                    headers={"X-Papertrail-Token": w.tok_a})
        assert r.status == 200 and r.json()["events"] == [], r


def test_unknown_path_and_method(world):
    w = world
    r = api_get(w.server, "/api/v1/nope", {}, token=w.tok_all)
    assert r.status == 404 and "error" in r.json()
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", w.server.http_port, timeout=10)
    try:
        c.request("POST", SEARCH + "?q=x", body=b"", headers={"Authorization": "Bearer " + w.tok_all})
        r = c.getresponse()
        body = r.read()
        assert r.status == 405, (r.status, body[:200])
    finally:
        c.close()


def test_https_listener(world):
    w = world
    c = w.server.https_connection()
    try:
        c.request("GET", SEARCH + "?" + urllib.parse.urlencode(dict(w.window, q="code:H12")),
                  headers={"Authorization": "Bearer " + w.tok_all})
        r = c.getresponse()
        doc = json.loads(r.read())
        assert r.status == 200
        assert set(int(e["id"]) for e in doc["events"]) == oracle(w, "code:H12",
                                                                set(w.names.values()))
    finally:
        c.close()



def test_token_added_and_removed_while_running(world):
    """A read token works at once after `token add` and stops at once after `token rm`."""
    w = world
    tok = add_read_token(w.db, "search-short-lived", "--source", "crafted")
    r = wait_for(lambda: (lambda x: x.status == 200 and x)(
        api_get(w.server, SEARCH, dict(w.window, q="late"), token=tok)), 5, what="new token")
    assert len(r.json()["events"]) == len(LATE)
    listed = sluice_cli(w.db, "token", "list").stdout
    assert "search-short-lived" in listed and tok not in listed
    sluice_cli(w.db, "token", "rm", "search-short-lived")
    wait_for(lambda: api_get(w.server, SEARCH, dict(w.window, q="late"), token=tok).status == 401,
             5, what="401 after token rm")
    r = sluice_cli(w.db, "token", "add", "search-bad", "--source", "no-such-source", check=False)
    assert r.returncode != 0 and not READ_TOKEN.search(r.stdout)


LIMIT_QUERIES = ["", "at=info", "error OR celery", "status:>=200", "-source:filler", "/H1[0-9]/",
                 "program:web.* OR program:router", "filler OR heartbeat"]


@pytest.mark.parametrize("q", LIMIT_QUERIES)
def test_limit_and_pages_across_sources(world, q):
    """The newest (oldest) `limit` matches are exact, whatever the prefilter, with many lines
    sharing one received_at (one request's lines do)."""
    w = world
    scope = set(w.names.values())
    want_desc = ordered(w, oracle(w, q, scope), "desc")
    for order in ("desc", "asc"):
        want = want_desc if order == "desc" else want_desc[::-1]
        for limit in (1, 5, 37, 150):
            doc = search_ok(w, w.tok_all, q=q, order=order, limit=limit)
            assert ids_of(doc) == want[:limit], f"q={q!r} order={order} limit={limit}"
            assert doc["reached_end"] == (len(want) <= limit), (q, order, limit)
        got, _ = pages(w, w.tok_all, q, order, limit=50, max_pages=100)
        assert got == want, f"q={q!r} order={order}: pages of 50 differ from the ordered set"


def test_head_and_papertrail_tail_param(world):
    import http.client
    w = world
    c = http.client.HTTPConnection("127.0.0.1", w.server.http_port, timeout=10)
    try:
        c.request("HEAD", SEARCH + "?" + urllib.parse.urlencode(dict(w.window, q="late")),
                  headers={"Authorization": "Bearer " + w.tok_all})
        r = c.getresponse()
        assert r.status == 200 and r.read() == b""
    finally:
        c.close()
    doc = pt_get(w, {"q": "late", "tail": "true"})
    assert len(doc["events"]) == len(LATE)
    r = api_get(w.server, PT, {"q": "late", "min_id": "abc"}, headers={"X-Papertrail-Token":
                                                                       w.tok_all})
    assert r.status == 400 and "error" in r.json(), r


def test_read_token_cannot_ingest(world):
    w = world
    r = w.server.post(w.crafted, frame_body([line("should not be stored")]), password=w.tok_all)
    assert r.status == 401, r
