"""Every body of tests/fixtures/corpus/logplex, POSTed with curl over HTTPS, and what PostgreSQL holds.

The expected rows follow DESIGN.md's invariants: every good frame stored with its fields, a
frame that cannot be parsed stored raw with parse_error set, nothing dropped, 204 always.
"""

import datetime
import glob
import gzip
import os

import pytest

from conftest import CORPUS, basic_auth, corpus_path, frames, metric_value

UTC = datetime.timezone.utc
T0 = datetime.datetime(2026, 11, 21, 10, 0, 0, tzinfo=UTC)


def post_file(server, name, **kw):
    src = server.add_source()
    r = server.post(src, corpus_path("logplex", name), **kw)
    assert r.status == 204, f"{name}: {r}"
    assert r.body == b"", f"{name}: 204 with a body: {r.body!r}"
    return src


def test_heroku_basic(server, db):
    before = server.metrics()
    src = post_file(server, "heroku-basic.logplex")
    rows = db.wait_rows(src.id, 3)
    router, state, l10 = rows

    assert router["parse_error"] is None
    assert (router["facility"], router["severity"]) == (19, 6)  # <158>
    assert router["emitted_at"] == T0
    assert router["emitted_precision"] == 6
    assert router["emitted_offset"] == 0
    assert (router["hostname"], router["app_name"], router["procid"]) == ("host", "heroku", "router")
    assert router["msgid"] is None
    assert router["sd"] is None
    assert router["message"] == (
        'at=info method=GET path="/" host=shop.herokuapp.com '
        "request_id=815545d9-6c70-4969-a75c-053a06290785 fwd=\"171.218.76.240\" dyno=web.2 "
        "connect=1ms service=345ms status=200 bytes=40924 protocol=https")
    assert router["message_raw"] is None
    assert router["truncated_from"] is None
    assert router["received_at"] is not None

    assert (state["facility"], state["severity"]) == (5, 5)  # <45>
    assert (state["app_name"], state["procid"]) == ("heroku", "web.1")
    assert state["message"] == "State changed from starting to up"

    # The L10 notice has no trailing newline: it must not be glued to anything.
    assert (l10["facility"], l10["severity"]) == (21, 4)  # <172>
    assert (l10["app_name"], l10["procid"]) == ("heroku", "logplex")
    assert l10["message"] == (
        "Error L10 (output buffer overflow): 1 messages dropped since 2026-11-21T09:59:00+00:00.")

    after = server.metrics()
    lost = {"code": "L10"}
    assert metric_value(after, "sluice_sender_lost_total", lost) - \
        metric_value(before, "sluice_sender_lost_total", lost) == 1


def test_strict_nil_sd(server, db):
    src = post_file(server, "strict-nil-sd.logplex")
    (row,) = db.wait_rows(src.id, 1)
    assert row["parse_error"] is None
    assert row["message"] == "hello with nil SD"
    assert row["sd"] is None and row["msgid"] is None
    assert (row["app_name"], row["procid"]) == ("app", "web.1")
    assert (row["facility"], row["severity"]) == (23, 6)


def test_with_sd(server, db):
    src = post_file(server, "with-sd.logplex")
    (row,) = db.wait_rows(src.id, 1)
    assert row["parse_error"] is None
    assert row["sd"] == '[exampleSDID@32473 iut="3" eventSource="Application"]'
    assert row["message"] == "hello with SD"


def test_no_fraction_ts(server, db):
    src = post_file(server, "no-fraction-ts.logplex")
    (row,) = db.wait_rows(src.id, 1)
    assert row["parse_error"] is None
    assert row["emitted_at"] == T0
    assert row["emitted_precision"] == 0
    assert row["emitted_offset"] == 0
    assert row["message"] == "no fractional seconds"


def test_max_size_message(server, db):
    (frame,) = frames(open(corpus_path("logplex", "max-size-message.logplex"), "rb").read())
    expected = frame.split(b" - ", 1)[1].rstrip(b"\n").decode()
    assert len(expected) == 10000
    src = post_file(server, "max-size-message.logplex")
    (row,) = db.wait_rows(src.id, 1)
    assert row["parse_error"] is None
    assert row["truncated_from"] is None
    assert len(row["message"]) == 10000
    assert row["message"] == expected


def test_invalid_utf8_and_nul(server, db):
    (frame,) = frames(open(corpus_path("logplex", "invalid-utf8-and-nul.logplex"), "rb").read())
    raw = frame.split(b" - ", 1)[1]
    assert b"\x00" in raw
    src = post_file(server, "invalid-utf8-and-nul.logplex")
    (row,) = db.wait_rows(src.id, 1)
    assert row["parse_error"] is None
    assert (row["app_name"], row["procid"]) == ("app", "web.1")
    stored_raw = bytes(row["message_raw"]) if row["message_raw"] is not None else None
    # The exact bytes of the message (the one trailing newline of the frame is not message).
    assert stored_raw in (raw.rstrip(b"\n"), raw), f"message_raw = {stored_raw!r}"
    text = raw.rstrip(b"\n").decode("utf-8", "replace").replace("\x00", "\u2400")
    assert row["message"] == text
    assert "\ufffd" in row["message"] and "\u2400" in row["message"]


def test_bad_length_prefix(server, db):
    src = post_file(server, "bad-length-prefix.logplex")
    rows = db.wait_rows(src.id, 3)
    good = [r for r in rows if r["parse_error"] is None]
    bad = [r for r in rows if r["parse_error"] is not None]
    assert [r["message"] for r in good] == ["good before", "after garbage"]
    assert len(bad) == 1
    held = bad[0]["message"] or ""
    if bad[0]["message_raw"] is not None:
        held += bytes(bad[0]["message_raw"]).decode("latin-1")
    assert "12x <190>1 garbage" in held, f"garbage row holds {held!r}"
    assert [r["message"] for r in rows][0] == "good before"  # stored in body order
    assert rows[1]["parse_error"] is not None and rows[2]["message"] == "after garbage"


def test_length_beyond_body(server, db):
    src = post_file(server, "length-beyond-body.logplex")
    (row,) = db.wait_rows(src.id, 1)
    assert row["parse_error"] is not None
    assert '<158>1 2026-11-21T10:00:00.000000+00:00 host heroku router - at=info method=GET ' \
        'path="/" status=200' in row["message"]


def test_not_syslog(server, db):
    src = post_file(server, "not-syslog.logplex")
    (row,) = db.wait_rows(src.id, 1)
    assert row["parse_error"] is not None
    assert row["message"].rstrip("\n") == "just some text that is not syslog at all"
    assert row["emitted_at"] is None


def test_gzip_50_lines(server, db):
    path = corpus_path("logplex", "gzip-50-lines.logplex")
    msgs = frames(gzip.decompress(open(path, "rb").read()))
    assert len(msgs) == 50
    src = post_file(server, "gzip-50-lines.logplex", gzip=True)
    rows = db.wait_rows(src.id, 50)
    assert all(r["parse_error"] is None for r in rows)
    want = sorted(m.split(b" - ", 1)[1].rstrip(b"\n").decode() for m in msgs)
    assert sorted(r["message"] for r in rows) == want
    assert {r["app_name"] for r in rows} <= {"heroku", "app"}


def test_every_corpus_body_answers_204(server, db):
    """All of them on one keep-alive connection, as logplex sends them: 204 each."""
    src = server.add_source()
    conn = server.https_connection()
    for path in sorted(glob.glob(os.path.join(CORPUS, "logplex", "*.logplex"))):
        name = os.path.basename(path)
        headers = {"Content-Type": "application/logplex-1", "Authorization": basic_auth(src)}
        if name.startswith("gzip"):
            headers["Content-Encoding"] = "gzip"
        with open(path, "rb") as f:
            conn.request("POST", "/logs", body=f.read(), headers=headers)
        r = conn.getresponse()
        assert (name, r.status, r.read()) == (name, 204, b"")
    conn.close()
