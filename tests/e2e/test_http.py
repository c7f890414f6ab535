"""The HTTPS drain as senders use it: chunked, gzip, auth, limits, tags, retries, keep-alive,
plain HTTP behind a router, and the operational endpoints."""

import gzip
import http.client
import os
import uuid

from conftest import basic_auth, frame_body, heroku_line, metric_names, metric_value

METRICS = [
    "sluice_http_requests_total", "sluice_lines_accepted_total", "sluice_lines_stored_total",
    "sluice_parse_errors_total", "sluice_duplicate_frames_total",
    "sluice_msg_count_mismatch_total", "sluice_truncated_total", "sluice_sender_lost_total",
    "sluice_logplex_drop_count_total", "sluice_spool_depth_bytes",
    "sluice_spool_oldest_age_seconds", "sluice_copy_batches_total", "sluice_copy_rows_total",
]


def lines(tag, n):
    return [heroku_line(f"{tag} line {i}") for i in range(n)]


def test_chunked(server, db):
    src = server.add_source()
    r = server.post(src, frame_body(lines("chunked", 20)), chunked=True)
    assert r.status == 204, r
    rows = db.wait_rows(src.id, 20)
    assert [x["message"] for x in rows] == [f"chunked line {i}" for i in range(20)]


def test_gzip_chunked_like_log_shuttle(server, db):
    src = server.add_source()
    body = frame_body(f"<190>1 2026-11-21T10:00:00.000000+00:00 host app web.1 - - shuttle {i}\n"
                      for i in range(30))
    r = server.post(src, body, gzip=True, chunked=True, headers={"Logplex-Msg-Count": 30})
    assert r.status == 204, r
    rows = db.wait_rows(src.id, 30)
    assert sorted(x["message"] for x in rows) == sorted(f"shuttle {i}" for i in range(30))


def test_unauthorized_same_answer(server, db):
    src = server.add_source()
    body = frame_body(lines("nope", 2))
    missing = server.post(None, body)
    wrong_token = server.post(src, body, password="0" * len(src.token))
    wrong_user = server.post(src, body, user="no-such-source")
    assert (missing.status, wrong_token.status, wrong_user.status) == (401, 401, 401)
    assert missing.body == wrong_token.body == wrong_user.body
    assert db.count(src.id) == 0


def test_basic_auth_base64_forms(server, db):
    """Authorization: Basic goes through the shared base64 decoder (sl_enc_unb64): every
    padding a real client produces is accepted, and so is the unpadded form; text after
    the padding, a lone trailing character or a non-base64 byte is a 401 like a wrong
    token."""
    tag = uuid.uuid4().hex[:8]
    srcs = [server.add_source(f"b64{'x' * k}-{tag}") for k in range(3)]
    # name:token lengths cover all three remainders mod 3: no '=', '=' and '=='
    pads = set()
    for src in srcs:
        cred = basic_auth(src)
        pads.add(len(cred) - len(cred.rstrip("=")))
        for form in (cred, cred.rstrip("="), "Basic    " + cred[6:]):
            r = server.post(None, frame_body(lines("b64", 1)), headers={"Authorization": form})
            assert r.status == 204, (form, r)
    assert pads == {0, 1, 2}
    cred = next(basic_auth(s) for s in srcs if basic_auth(s).endswith("="))
    body = cred[6:].rstrip("=")
    lone = body + "A" * ((1 - len(body)) % 4)
    assert len(lone) % 4 == 1
    missing = server.post(None, frame_body(lines("nope", 1)))
    for bad in (cred + "AAAA", cred + "x", "Basic " + lone, "Basic !" + cred[7:],
                "Basic -" + body[1:], "Basic " + "A" * 1024):
        r = server.post(None, frame_body(lines("nope", 1)), headers={"Authorization": bad})
        assert (r.status, r.body) == (401, missing.body), bad


def test_body_too_large(sluice, db):
    s = sluice(SLUICE_MAX_BODY_BYTES=4096)
    src = s.add_source()
    small = frame_body(lines("small", 10))
    assert len(small) < 4096
    big = frame_body(lines("big" + "x" * 100, 60))
    assert len(big) > 4096
    assert s.post(src, big).status == 413
    assert s.post(src, big, chunked=True).status == 413
    assert s.post(src, small).status == 204
    rows = db.wait_rows(src.id, 10)
    assert all(x["message"].startswith("small line") for x in rows)


def test_gzip_bomb_is_bounded(sluice, db):
    """A small gzip body that inflates past SLUICE_MAX_BODY_BYTES is refused, not buffered."""
    s = sluice(SLUICE_MAX_BODY_BYTES=65536)
    src = s.add_source()
    body = frame_body([heroku_line("z" * 9000)] * 200)  # ~1.8 MB inflated, ~10 KB on the wire
    r = s.post(src, body, gzip=True)
    assert r.status == 413, r
    assert s.proc.poll() is None


def test_message_truncated(sluice, db):
    s = sluice(SLUICE_MAX_MESSAGE_BYTES=100)
    src = s.add_source()
    before = s.metric("sluice_truncated_total")
    long_msg = "y" * 300
    assert s.post(src, frame_body([heroku_line(long_msg), heroku_line("short")])).status == 204
    long_row, short_row = db.wait_rows(src.id, 2)
    # "Original length": of the message text, or of the whole syslog message (the frame,
    # with or without its one trailing LF), which is what the limit applies to.
    frame = heroku_line(long_msg).encode()
    assert long_row["truncated_from"] in (len(long_msg), len(frame) - 1, len(frame))
    assert 0 < len(long_row["message"].encode()) <= 100
    assert long_msg.startswith(long_row["message"])
    assert short_row["truncated_from"] is None and short_row["message"] == "short"
    assert s.metric("sluice_truncated_total") - before == 1


def test_query_tags(server, db):
    src = server.add_source()
    r = server.post(src, frame_body(lines("tagged", 3)), query="app=billing&env=prod")
    assert r.status == 204
    rows = db.wait_rows(src.id, 3)
    assert all(x["tags"] == {"app": "billing", "env": "prod"} for x in rows), rows[0]["tags"]


def test_frame_id_retry_stored_once(server, db):
    src = server.add_source()
    before = server.metric("sluice_duplicate_frames_total")
    frame_id = uuid.uuid4().hex.upper()
    body = frame_body(lines("retried", 5))
    hdr = {"Logplex-Frame-Id": frame_id, "Logplex-Msg-Count": 5}
    assert server.post(src, body, headers=hdr).status == 204
    assert server.post(src, body, headers=hdr).status == 204
    rows = db.wait_rows(src.id, 5, settle=1.5)
    assert all(x["frame_id"] == frame_id for x in rows)
    assert server.metric("sluice_duplicate_frames_total") - before == 1
    # A new frame id with the same lines is a new request: stored again.
    assert server.post(src, body, headers={"Logplex-Frame-Id": uuid.uuid4().hex}).status == 204
    db.wait_rows(src.id, 10)


def test_msg_count_mismatch(server, db):
    src = server.add_source()
    before = server.metric("sluice_msg_count_mismatch_total")
    r = server.post(src, frame_body(lines("mismatch", 3)), headers={"Logplex-Msg-Count": 5})
    assert r.status == 204
    db.wait_rows(src.id, 3)
    assert server.metric("sluice_msg_count_mismatch_total") - before == 1


def test_logplex_drop_count_header(server, db):
    src = server.add_source()
    before = server.metric("sluice_logplex_drop_count_total")
    r = server.post(src, frame_body(lines("dropped", 2)), headers={"Logplex-Drop-Count": 7})
    assert r.status == 204
    db.wait_rows(src.id, 2)
    assert server.metric("sluice_logplex_drop_count_total") - before == 7


def test_keep_alive_https(server, db):
    src = server.add_source()
    conn = server.https_connection()
    socks = set()
    for i in range(5):
        conn.request("POST", "/logs?app=ka", body=frame_body(lines(f"ka{i}", 4)),
                     headers={"Content-Type": "application/logplex-1",
                              "Authorization": basic_auth(src)})
        r = conn.getresponse()
        assert (r.status, r.read()) == (204, b"")
        assert not r.will_close
        socks.add(id(conn.sock))
    conn.close()
    assert len(socks) == 1, "the connection was not kept alive"
    db.wait_rows(src.id, 20)


def test_plain_http_port(server, db):
    src = server.add_source()
    r = server.post(src, frame_body(lines("plain", 3)), scheme="http")
    assert r.status == 204
    rows = db.wait_rows(src.id, 3)
    assert [x["message"] for x in rows] == [f"plain line {i}" for i in range(3)]
    conn = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=10)
    for i in range(3):
        conn.request("POST", "/logs", body=frame_body(lines("plain-ka", 1)),
                     headers={"Content-Type": "application/logplex-1",
                              "Authorization": basic_auth(src)})
        r = conn.getresponse()
        assert (r.status, r.read()) == (204, b"")
    conn.close()
    db.wait_rows(src.id, 6)


def test_health_ready_metrics(server, db):
    r = server.get("/healthz")
    assert r.status == 200 and r.body.strip() == b"ok"
    assert server.get("/readyz").status == 200
    src = server.add_source()
    assert server.post(src, frame_body(lines("m", 2))).status == 204
    db.wait_rows(src.id, 2)
    m = server.metrics()
    missing = [n for n in METRICS if n not in metric_names(m)]
    assert not missing, f"/metrics lacks {missing}"
    assert metric_value(m, "sluice_http_requests_total", {"status": "204"}) >= 1
    assert metric_value(m, "sluice_lines_stored_total") >= 2
    assert metric_value(m, "sluice_copy_rows_total") >= 2


def test_source_rotate_and_rm(server, db):
    from conftest import parse_drain_url, sluice_cli
    src = server.add_source()
    r = sluice_cli(db, "source", "rotate", src.name)
    name, token = parse_drain_url(r.stdout.strip().splitlines()[-1])
    assert name == src.name and token != src.token
    body = frame_body(lines("rotated", 1))
    # The old token stops working, the new one starts, within a few seconds (LISTEN/NOTIFY).
    import time
    deadline = time.monotonic() + 10
    while server.post(src, body).status != 401:
        assert time.monotonic() < deadline, "old token still accepted after rotate"
        time.sleep(0.2)
    src.token = token
    server.wait_source(src)
    assert server.post(src, body).status == 204
    listing = sluice_cli(db, "source", "list").stdout
    assert src.name in listing and token not in listing
    sluice_cli(db, "source", "rm", src.name)
    deadline = time.monotonic() + 10
    while server.post(src, body).status != 401:
        assert time.monotonic() < deadline, "removed source still accepted"
        time.sleep(0.2)
