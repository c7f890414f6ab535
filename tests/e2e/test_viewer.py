"""The web viewer (issue 14, docs/viewer.md) against a real `sluice serve` and PostgreSQL.

API level (Python, no browser): the page's security headers (a strict CSP, nosniff, no
framing, ETag revalidation), no inline script or style and nothing from another origin;
sign-in by POST with the token in a header, the session cookie's flags (HttpOnly,
SameSite=Strict, Secure over TLS), CSRF refusals, sign-out revoking the session on the
server, a session working on a second node of the same database and dying with its token;
the new endpoints' scoping (sources, aggregate, context) and the aggregate's totals
against count(*).

Browser (one headless Chromium for the file, driven by playwright-core from npm through
tests/e2e/viewer_browser.js): sign-in required; the search shows exactly the lines the
API returns, newest at the bottom; scrolling up loads older lines; a query's marks and the
graph's totals; permalink round trip; the query error at its position; XSS lines inert and
shown literally; context; the alert snippet; live tail shows a line posted after the page
opened within 1 s; keyboard `/`, `f`, Esc; the scoped token sees only its source in every
view. Screenshots go to $BUILD/artifacts/.
"""

import hashlib
import http.client
import json
import os
import re
import subprocess
import tempfile
import time

import pytest

from conftest import (BUILD, NPM_PREFIX as NPM, ROOT, add_read_token, api_get, frame_body,
                      heroku_line, npm_require, sluice_cli, wait_for)

QUERY = "checkout"
CRASH_TRACE = [
    "Traceback (most recent call last):",
    '  File "/app/shop/views.py", line 31, in checkout',
    "    return charge(cart)",
    '  File "/app/.heroku/python/lib/python3.11/site-packages/stripe/api.py", line 208, in charge',
    "    raise ValueError(msg)",
    "ValueError: card declined for cart 7",
]
SECRET = "secretbword"
ARTIFACTS = os.path.join(ROOT, BUILD, "artifacts")


def request(server, method, path, headers=None, tls=False, body=None):
    if tls:
        c = server.https_connection()
    else:
        c = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=15)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read(), r
    finally:
        c.close()


def sign_in(server, token, tls=False, extra=None):
    h = {"Authorization": "Bearer " + token, "X-Sluice-Request": "1"}
    h.update(extra or {})
    st, hdr, body, _ = request(server, "POST", "/api/v1/session", h, tls=tls)
    return st, hdr, body


def cookie_of(hdr):
    m = re.match(r"sluice_session=([^;]*)", hdr.get("set-cookie", ""))
    return m.group(1) if m else None


@pytest.fixture(scope="module")
def world(db, server):
    """Two sources with lines of several dynos (A: some matching QUERY, XSS lines, a parse
    error, raw bytes; B: a secret word), an --all token and a token for A only."""
    a = server.add_source("shop-a")
    b = server.add_source("vault-b")
    msgs = []
    for i in range(450):
        proc = ["web.1", "web.2", "worker.1", "router"][i % 4]
        app = "heroku" if proc == "router" else "app"
        word = QUERY if i % 5 == 0 else "browse"
        msgs.append(heroku_line(f"at=info n={i} {word} path=/items/{i} long={'x' * (i % 7) * 30}",
                                app=app, proc=proc))
    for i in range(0, 450, 150):
        assert server.post(a, frame_body(msgs[i:i + 150])).status == 204
    xss = [heroku_line('xsstest <script>window.__xss=1;alert(1)</script>'),
           heroku_line('xsstest <img src=x onerror="window.__xss=2;alert(2)">'),
           heroku_line('xsstest <a href="javascript:window.__xss=3">click me</a> javascript:alert(3)'),
           "<190>1 not-a-timestamp host app web.1 - xsstest broken header\n",
           heroku_line('xsstest json {"level":"error","html":"<script>window.__xss=4</script>",'
                       '"user":{"id":42}}')]
    assert server.post(a, frame_body(xss)).status == 204
    raw = b"<190>1 2026-11-21T10:00:00.000000+00:00 host app web.1 - xsstest bytes \xff\xfe end\n"
    assert server.post(a, frame_body([raw])).status == 204
    assert server.post(b, frame_body([heroku_line(f"{SECRET} n={i}") for i in range(20)])).status == 204
    # a Python trace on a dyno of its own, joined into a crash by the crash thread
    trace = [heroku_line(m, proc="web.9") for m in CRASH_TRACE]
    assert server.post(a, frame_body(trace)).status == 204
    all_tok = add_read_token(db, "viewer-all", "--all")
    a_tok = add_read_token(db, "viewer-a", "--source", "shop-a")

    def loaded():
        return api_get(server, "/api/v1/sources", token=a_tok).status == 200
    for _ in range(100):
        if loaded():
            break
        time.sleep(0.1)
    secret_id = db.query("SELECT id FROM logs WHERE source_id = %s LIMIT 1", (b.id,))[0]["id"]
    wait_for(lambda: db.query("SELECT count(*) n FROM crashes WHERE source_id = %s", (a.id,))[0]["n"],
             20, what="the crash of shop-a's web.9 assembled")
    return dict(a=a, b=b, all=all_tok, scoped=a_tok, secret_id=str(secret_id))


# ---------------------------------------------------------------- API level


def test_page_headers_csp_etag_and_no_foreign_assets(server):
    r = server.get("/")
    assert r.status == 200 and r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    for d in ("default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'",
              "frame-ancestors 'none'", "base-uri 'none'"):
        assert d in csp, csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp and "http" not in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    etag = r.headers["etag"]
    assert re.fullmatch(r'"[0-9a-f]{20}"', etag)
    html = r.body.decode()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline script"
    assert " style=" not in html and "<style" not in html, "inline style"
    for path in ("/", "/viewer.js", "/viewer.css", "/favicon.svg"):
        f = server.get(path)
        assert f.status == 200, path
        assert "content-security-policy" in f.headers and f.headers["x-content-type-options"] == "nosniff"
        text = f.body.decode()
        # no third-party origin anywhere in what the page loads
        assert not re.search(r"(src|href)=\"(https?:)?//", text), path
        assert not re.search(r"url\(\s*['\"]?(https?:)?//", text), path
        assert "innerHTML" not in text and "outerHTML" not in text and "insertAdjacentHTML" not in text, path
        st, hdr, body, _ = request(server, "GET", path, {"If-None-Match": f.headers["etag"]})
        assert st == 304 and body == b"" and hdr["etag"] == f.headers["etag"], path
    js = server.get("/viewer.js")
    assert js.headers["content-type"].startswith("text/javascript")
    assert server.get("/nothing.js").status == 404


def test_sign_in_cookie_flags_csrf_and_sign_out(server, world):
    tok = world["all"]
    # the token in a header of a POST only: a cookie-less GET, a token in the URL, no CSRF header
    assert api_get(server, "/api/v1/sources").status == 401
    st, _, _ = sign_in(server, tok, extra={"X-Sluice-Request": ""})
    assert st == 403
    st, _, _ = sign_in(server, tok, extra={"Origin": "https://evil.example"})
    assert st == 403
    st, _, _ = sign_in(server, tok, extra={"Sec-Fetch-Site": "cross-site"})
    assert st == 403
    st, _, _ = sign_in(server, "slr_" + "1" * 40)
    assert st == 401
    st, hdr, _ = sign_in(server, tok, extra={"Origin": f"http://127.0.0.1:{server.http_port}",
                                             "Host": f"127.0.0.1:{server.http_port}"})
    assert st == 204, hdr
    sc = hdr["set-cookie"]
    assert "HttpOnly" in sc and "SameSite=Strict" in sc and "Path=/" in sc and "Secure" not in sc, sc
    assert tok not in sc
    cookie = cookie_of(hdr)
    assert re.fullmatch(r"s1\.\d{10}\.[0-9a-f]{64}", cookie)
    # stored hashed only
    assert db_has_session(server, cookie)
    # the cookie reads (GET), and is refused for a POST sign-in in place of a token
    r = api_get(server, "/api/v1/sources", headers={"Cookie": "a=b; sluice_session=" + cookie})
    assert r.status == 200 and r.headers["cache-control"] == "no-store"
    st, _, _, _ = request(server, "POST", "/api/v1/session",
                          {"Cookie": "sluice_session=" + cookie, "X-Sluice-Request": "1"})
    assert st == 401
    # a forged expiry is another secret: unknown
    forged = "s1.9999999999." + cookie[-64:]
    assert api_get(server, "/api/v1/sources", headers={"Cookie": "sluice_session=" + forged}).status == 401
    # over TLS the cookie is Secure
    st, hdr, _ = sign_in(server, tok, tls=True)
    assert st == 204 and "; Secure" in hdr["set-cookie"]
    # sign-out: CSRF-checked, then the session is gone on the server (not only in the browser)
    st, _, _, _ = request(server, "POST", "/api/v1/session/signout", {"Cookie": "sluice_session=" + cookie})
    assert st == 403
    assert api_get(server, "/api/v1/sources", headers={"Cookie": "sluice_session=" + cookie}).status == 200
    st, hdr, _, _ = request(server, "POST", "/api/v1/session/signout",
                            {"Cookie": "sluice_session=" + cookie, "X-Sluice-Request": "1"})
    assert st == 204 and "Max-Age=0" in hdr["set-cookie"]
    assert api_get(server, "/api/v1/sources", headers={"Cookie": "sluice_session=" + cookie}).status == 401
    assert not db_has_session(server, cookie)


def db_has_session(server, cookie):
    h = hashlib.sha256(cookie.encode()).hexdigest()
    return server.db.query("SELECT count(*) AS n FROM web_sessions WHERE session_hash = decode(%s, 'hex')",
                           (h,))[0]["n"] == 1


def test_session_works_on_a_second_node_and_dies_with_its_token(db, server, world, sluice):
    tok = add_read_token(db, "viewer-short", "--source", "shop-a")
    for _ in range(100):
        if api_get(server, "/api/v1/sources", token=tok).status == 200:
            break
        time.sleep(0.1)
    st, hdr, _ = sign_in(server, tok)
    assert st == 204
    cookie = {"Cookie": "sluice_session=" + cookie_of(hdr)}
    other = sluice()  # a second node on the same database
    r = api_get(other, "/api/v1/sources", headers=cookie)
    assert r.status == 200 and [s["name"] for s in r.json()["sources"]] == ["shop-a"]
    sluice_cli(db, "token", "rm", "viewer-short")
    for node in (server, other):
        for _ in range(100):
            if api_get(node, "/api/v1/sources", headers=cookie).status == 401:
                break
            time.sleep(0.1)
        assert api_get(node, "/api/v1/sources", headers=cookie).status == 401


def test_new_endpoints_scoping_and_aggregate_equals_count(db, server, world):
    a, b, scoped, every = world["a"], world["b"], world["scoped"], world["all"]
    r = api_get(server, "/api/v1/sources", token=scoped)
    assert r.status == 200 and r.json() == {"all": False, "sources": [{"id": a.id, "name": "shop-a"}]}
    names = {s["name"] for s in api_get(server, "/api/v1/sources", token=every).json()["sources"]}
    assert {"shop-a", "vault-b"} <= names

    def count(where, params=()):
        return db.query(f"SELECT count(*) AS n FROM logs WHERE received_at > now() - interval '24 hours' AND {where}",
                        params)[0]["n"]
    ag = api_get(server, "/api/v1/aggregate", {"q": QUERY, "since": "24h", "buckets": 48}, token=every)
    assert ag.status == 200, ag.body
    j = ag.json()
    assert 1 <= len(j["buckets"]) <= 48
    assert j["lines"] == count("source_id IN (%s, %s)", (a.id, b.id)) \
        + count("source_id NOT IN (%s, %s)", (a.id, b.id))
    assert j["matches"] == count("source_id = %s AND message ~* %s", (a.id, r"\m" + QUERY + r"\M"))
    assert sum(x["lines"] for x in j["buckets"]) == j["lines"]
    assert sum(x["matches"] for x in j["buckets"]) == j["matches"]
    # the scoped token: the other source's lines are neither counted nor matched
    s = api_get(server, "/api/v1/aggregate", {"q": SECRET, "since": "24h"}, token=scoped).json()
    assert s["matches"] == 0 and s["lines"] == count("source_id = %s", (a.id,))
    s = api_get(server, "/api/v1/aggregate", {"source": "vault-b"}, token=scoped).json()
    assert s["lines"] == 0
    s = api_get(server, "/api/v1/aggregate", {"q": f"source:vault-b"}, token=scoped).json()
    assert s["matches"] == 0
    # a bad query: 400 with its position, as for search
    e = api_get(server, "/api/v1/aggregate", {"q": "severity:bogus"}, token=every)
    assert e.status == 400 and e.json()["position"] == 9
    assert api_get(server, "/api/v1/aggregate", {"buckets": 501}, token=every).status == 400
    # context: of the line's dyno and of the whole source, in time order
    ev = api_get(server, "/api/v1/search", {"q": f"{QUERY} proc:web.1", "limit": 5}, token=every).json()["events"][2]
    c = api_get(server, "/api/v1/context", {"id": ev["id"], "n": 10}, token=scoped)
    assert c.status == 200, c.body
    c = c.json()
    assert c["event"]["id"] == ev["id"]
    assert all(e["procid"] == "web.1" for e in c["dyno_before"] + c["dyno_after"])
    assert len(c["dyno_before"]) == 10 and len(c["all_before"]) == 10
    assert {e["procid"] for e in c["all_before"] + c["all_after"]} >= {"web.2", "worker.1", "router"}
    ids = [int(e["id"]) for e in c["all_before"]] + [int(ev["id"])] + [int(e["id"]) for e in c["all_after"]]
    assert ids == sorted(ids)
    # the other source's line: 404 for the scoped token, as for a line never stored
    assert api_get(server, "/api/v1/context", {"id": world["secret_id"]}, token=scoped).status == 404
    assert api_get(server, "/api/v1/context", {"id": world["secret_id"]}, token=every).status == 200
    assert api_get(server, "/api/v1/context", {"id": "999999999999"}, token=every).status == 404
    assert api_get(server, "/api/v1/context", {"id": "x"}, token=every).status == 400


# ---------------------------------------------------------------- the browser


@pytest.fixture(scope="module")
def playwright():
    """playwright-core from the npm registry, in $BUILD/npm (kept as a cache)."""
    npm_require("playwright-core")
    if not os.path.exists("/usr/bin/chromium"):
        pytest.fail("/usr/bin/chromium is missing: deploy/deps.sh installs Debian's chromium")
    return NPM


@pytest.fixture(scope="module")
def browser_run(db, server, world, playwright, tmp_path_factory):
    os.makedirs(ARTIFACTS, exist_ok=True)
    tmp = str(tmp_path_factory.mktemp("chromium"))
    cfg = {
        "base": f"http://127.0.0.1:{server.http_port}", "allToken": world["all"],
        "scopedToken": world["scoped"], "query": QUERY, "badQuery": "status:>=500 severity:bogus",
        "contextQuery": "browse", "secretWord": SECRET, "secretId": world["secret_id"],
        "sourceA": {"name": world["a"].name, "token": world["a"].token},
        "sourceB": {"name": world["b"].name, "token": world["b"].token},
        "artifacts": ARTIFACTS, "tmp": tmp,
    }
    r = subprocess.run(["node", os.path.join(ROOT, "tests", "e2e", "viewer_browser.js")],
                       input=json.dumps(cfg), capture_output=True, text=True, timeout=180,
                       env=dict(os.environ, NODE_PATH=os.path.join(playwright, "node_modules")))
    assert r.returncode == 0, f"node viewer_browser.js: {r.returncode}\n{r.stdout}\n{r.stderr}"
    out = json.loads(r.stdout)
    if "error" in out:
        pytest.fail(f"browser run failed after {out['steps']}: {out['error']}")
    with open(os.path.join(ARTIFACTS, "viewer-run.json"), "w") as f:
        json.dump(out, f, indent=1)
    return out


def test_browser_sign_in_and_session_cookie(browser_run):
    o = browser_run
    assert o["signinShown"] and o["viewHiddenBeforeSignin"] and o["badTokenRefused"]
    c = [c for c in o["cookies"] if c["name"] == "sluice_session"]
    assert len(c) == 1 and c[0]["httpOnly"] and c[0]["sameSite"] == "Strict" and c[0]["path"] == "/"
    assert "sluice_session" not in o["documentCookie"]
    assert not o["tokenInPage"] and o["tokenFieldEmpty"]
    assert o["signedOut"]


def test_browser_search_is_what_the_api_returns_and_scrolls_to_older(browser_run):
    o = browser_run
    assert len(o["firstPageIds"]) == 200 and o["firstPageIds"] == o["firstPageApiIds"]
    assert o["atBottom"], "newest lines at the bottom"
    assert o["twoPageIds"] == o["twoPageApiIds"] and len(o["twoPageIds"]) == 400
    assert re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z \(UTC\)", o["timeTitle"])
    assert o["queryIds"] and o["queryIds"] == o["queryApiIds"]
    assert o["marks"] and all(m.lower() == QUERY for m in o["marks"])
    assert {"p-router", "p-web", "p-worker"} <= set(o["progClasses"])


def test_browser_graph_totals_equal_count(db, browser_run, world):
    o = browser_run
    n = db.query("SELECT count(*) AS n FROM logs WHERE source_id = %s AND message ~* %s",
                 (world["a"].id, r"\m" + QUERY + r"\M"))[0]["n"]
    assert o["graph"]["matches"] == n
    assert o["barSums"]["matches"] == n and o["barSums"]["lines"] == o["graph"]["lines"]
    # zoomed to the newest bar holding lines: the same query, an absolute range, its matches
    z = o["zoom"]
    assert z["q"] == QUERY and z["since"] < z["until"] and 0 < z["matches"] <= n, z
    assert o["graph"]["lines"] >= 450 + 20


def test_browser_permalink_and_query_error(browser_run):
    o = browser_run
    p = o["permalink"]
    assert "q=" + QUERY in p["url"] and p["q"] == QUERY and p["ids"] == o["queryIds"]
    assert "unknown severity" in o["queryError"]["msg"]
    src, caret = o["queryError"]["at"].split("\n")
    assert src == "status:>=500 severity:bogus" and caret.index("^") == src.index("bogus")


def test_browser_xss_lines_are_inert_text(browser_run):
    o = browser_run
    x = o["xss"]
    assert o["dialogs"] == [] and x["ran"] is None, (o["dialogs"], x)
    assert x["imgs"] == 0 and x["links"] == 0 and x["scripts"] == 1  # viewer.js only
    texts = "\n".join(x["texts"])
    assert "<script>window.__xss=1;alert(1)</script>" in texts
    assert '<img src=x onerror="window.__xss=2;alert(2)">' in texts
    assert 'href="javascript:window.__xss=3"' in texts
    # a JSON line: its prefix, then its fields as key=value (issue 16), still text
    assert 'xsstest json level=error html="<script>window.__xss=4</script>" user.id=42' in texts, texts
    assert o["pageErrors"] == [] and x["csp"] == [], (o["pageErrors"], x["csp"])
    # the marks: a line that was not UTF-8 (its bytes escaped in the title), a parse error
    assert any("\\xff\\xfe" in t for t in x["rawMarks"]), x["rawMarks"]
    assert x["perrMarks"] >= 1


def test_browser_context_keyboard_alert_and_tail(browser_run):
    o = browser_run
    c = o["context"]
    assert c["visible"] and c["selected"] == c["targetId"]
    me = [p for p in c["dynoProgs"]]
    assert len(set(me)) == 1 and c["dynoN"] > 1
    assert len(set(c["allProgs"])) >= 3
    assert o["contextClosedByEsc"]
    assert o["slashFocus"] == "q"
    assert o["fStartsTail"] and o["fStopsTail"]
    assert not o["pausedShowedLine"] and o["resumedGotLine"]
    assert o["tail"]["seen"], f"the posted line did not show within 1 s ({o['tail']})"
    # 4 000 lines at once: all through, the DOM bounded to the list's window, still following
    assert o["burst"]["rows"] <= 3000 and o["burst"]["atBottom"], o["burst"]
    rules = json.loads(o["alertSnippet"])
    r = rules["rules"][0]
    assert r["condition"] == "match" and r["pattern"] == r"\b" + QUERY + r"\b" and r["flags"] == "i"
    assert r["notify"] == ["oncall"] and "oncall" in rules["destinations"]
    t = json.loads(o["alertThreshold"])["rules"][0]
    assert t["condition"] == "threshold" and t["count"] > 0 and t["window"] > 0
    # the snippet is a rules file sluice takes, and its rule matches what the search matched
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "rules.json")
        with open(path, "w") as f:
            f.write(o["alertSnippet"])
        sample = heroku_line(f"at=info {QUERY.upper()} ok") + heroku_line("at=info browse") + \
            heroku_line(f"at=info {QUERY}s plural")
        r = subprocess.run([os.path.join(ROOT, BUILD, "sluice"), "rules", "test", path, "--source", "shop-a"],
                           input=sample, capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stdout + r.stderr
        row = [ln.split() for ln in r.stdout.splitlines() if ln.startswith(QUERY + " ")]
        assert row and row[0][1] == "1", r.stdout


def test_browser_crash_line_shows_its_joined_trace(browser_run):
    """Clicking a line of a crash (issue 14: "a crash line links to its joined trace"): the
    context shows the crash's type and value and its frames, app frames marked."""
    c = browser_run["crash"]
    assert c["head"].startswith("crash: ValueError: card declined for cart 7"), c
    assert "6 lines joined" in c["head"], c
    # Sentry's filenames, as the Python SDK gives them (relative to the app, site-packages)
    assert c["frames"] == [["shop/views.py:31 in checkout", "app"],
                           ["stripe/api.py:208 in charge", ""]], c


def test_browser_scoped_token_sees_only_its_source(browser_run, world):
    s = browser_run["scoped"]
    assert s["sourceOptions"] == ["", world["a"].name]
    assert s["defaultSources"] == [world["a"].name]
    assert s["secretRows"] == 0 and s["graph"]["matches"] == 0
    assert s["contextOfB"] == 404 and s["searchB"] == 0
    assert s["tailSawA"] and not s["tailSawB"]
