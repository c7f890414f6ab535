"""Read tokens (docs/api.md "Read tokens"): `sluice token add/list/rm` through the real
binary against a private PostgreSQL, and a running server picking a change up at once.

The read API that takes these tokens is tested in its own suite; here a running server's
pick-up is seen through its source snapshot (SLUICE_SPOOL_DIR/sources.snapshot), which
the maintenance thread writes after every reload with the read tokens' hashes in it.
"""

import hashlib
import os
import re
import subprocess
import time

from conftest import SLUICE, add_source, sluice_cli

TOKEN_RE = re.compile(r"^slr_[0-9a-f]{40}$")


def token_add(db, name, *args, check=True):
    r = sluice_cli(db, "token", "add", name, *args, check=check)
    if r.returncode != 0:
        return r, None
    out = r.stdout.splitlines()
    assert len(out) == 2, r.stdout
    assert TOKEN_RE.match(out[0]), f"not a read token: {out[0]!r}"
    return r, out[0]


def token_row(db, name):
    rows = db.query("SELECT * FROM read_tokens WHERE name = %s", (name,))
    return rows[0] if rows else None


def listing(db):
    """`sluice token list` as {name: (created, scope)}, header checked."""
    out = sluice_cli(db, "token", "list").stdout.splitlines()
    assert out[0].split() == ["NAME", "CREATED", "SCOPE"], out
    rows = {}
    for line in out[1:]:
        name, created, scope = line.split(None, 2)
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", created), line
        rows[name] = (created, scope)
    return rows


def test_add_all_prints_token_once_and_stores_only_its_hash(db):
    r, token = token_add(db, "grafana", "--all")
    hint = r.stdout.splitlines()[1]
    assert "Authorization: Bearer" in hint and "SLUICE_TOKEN=" in hint
    assert r.stdout.count(token) == 1 and token not in r.stderr
    row = token_row(db, "grafana")
    assert row["all_sources"] is True and row["source_ids"] == []
    assert bytes(row["token_hash"]) == hashlib.sha256(token.encode()).digest()
    # The token is nowhere in the row, in any form but its hash.
    text = db.query("SELECT row_to_json(t)::text AS j FROM read_tokens t WHERE name = %s",
                    ("grafana",))[0]["j"]
    assert token not in text and token[4:] not in text
    assert listing(db)["grafana"][1] == "all sources"


def test_tokens_are_random(db):
    _, a = token_add(db, "rand-a", "--all")
    _, b = token_add(db, "rand-b", "--all")
    assert a != b and a[4:14] != b[4:14]


def test_add_scoped_to_sources(db):
    s1, s2, s3 = add_source(db), add_source(db), add_source(db)
    _, token = token_add(db, "billing-team", "--source", s2.name, f"--source={s1.name}")
    row = token_row(db, "billing-team")
    assert row["all_sources"] is False
    assert row["source_ids"] == sorted([s1.id, s2.id])
    scope = listing(db)["billing-team"][1]
    assert scope == ",".join(sorted([s1.name, s2.name]))
    assert s3.name not in scope
    # Repeating a source is not an error and stores it once.
    token_add(db, "dup-source", "--source", s3.name, "--source", s3.name)
    assert token_row(db, "dup-source")["source_ids"] == [s3.id]


def test_unknown_source_named_nothing_stored(db):
    s = add_source(db)
    r, _ = token_add(db, "typo", "--source", s.name, "--source", "no-such-app", check=False)
    assert r.returncode == 1
    assert "no-such-app" in r.stderr
    assert r.stdout == ""
    assert token_row(db, "typo") is None
    # A name no source could have is reported the same way, not as a database error.
    r, _ = token_add(db, "typo", "--source", "bad'name", check=False)
    assert r.returncode == 1 and "bad'name" in r.stderr
    assert token_row(db, "typo") is None


def test_usage_errors_exit_2_before_the_database(db):
    s = add_source(db)
    # An unreachable database: a usage error must still be exit 2, not a connect failure.
    env = dict(os.environ, DATABASE_URL="postgresql://127.0.0.1:1/nope?connect_timeout=2")
    cases = [
        ["add", "both", "--all", "--source", s.name],
        ["add", "neither"],
        ["add", "x", "--source"],
        ["add", "x", "--all", "--bogus"],
        ["add", "--all"],
        ["add"],
        ["rm"],
        ["rm", "a", "b"],
        ["list", "extra"],
        ["frobnicate"],
        [],
    ]
    for args in cases:
        r = subprocess.run([SLUICE, "token", *args], env=env, capture_output=True, text=True,
                           timeout=30)
        assert r.returncode == 2, f"token {args}: {r.returncode} {r.stderr}"
        assert r.stdout == "", args
    assert token_row(db, "both") is None and token_row(db, "neither") is None
    r = sluice_cli(db, "token", "add", "both", "--all", "--source", s.name, check=False)
    assert r.returncode == 2 and "--all" in r.stderr
    assert token_row(db, "both") is None


def test_name_rules_and_duplicates(db):
    for bad in ["bad name", "x" * 64, ".dot", "é", "a/b", "a'b"]:
        r, _ = token_add(db, bad, "--all", check=False)
        assert r.returncode == 1, bad
        assert r.stdout == ""
        assert token_row(db, bad) is None
    token_add(db, "ok." + "y" * 60, "--all")  # 63 characters: the longest name
    _, first = token_add(db, "ok-dup", "--all")
    r, _ = token_add(db, "ok-dup", "--all", check=False)
    assert r.returncode == 1 and "exists" in r.stderr
    # The first token is untouched by the failed second add.
    assert bytes(token_row(db, "ok-dup")["token_hash"]) == hashlib.sha256(first.encode()).digest()


def test_rm(db):
    token_add(db, "short-lived", "--all")
    r = sluice_cli(db, "token", "rm", "short-lived")
    assert "removed" in r.stdout
    assert token_row(db, "short-lived") is None
    assert "short-lived" not in listing(db)
    r = sluice_cli(db, "token", "rm", "short-lived", check=False)
    assert r.returncode == 1 and "no such read token" in r.stderr


def test_list_shows_removed_sources_never_tokens(db):
    s1, s2 = add_source(db), add_source(db)
    _, token = token_add(db, "partly-gone", "--source", s1.name, "--source", s2.name)
    sluice_cli(db, "source", "rm", s2.name)
    _, token2 = token_add(db, "all-gone", "--source", s1.name)
    sluice_cli(db, "source", "rm", s1.name)
    out = sluice_cli(db, "token", "list").stdout
    rows = listing(db)
    assert rows["partly-gone"][1] == "(2 removed sources)"
    assert rows["all-gone"][1] == "(1 removed source)"
    h = hashlib.sha256(token.encode()).hexdigest()
    for secret in (token, token[4:], token2, h):
        assert secret not in out


def wait_snapshot(server, pred, timeout, what):
    path = os.path.join(server.spool_dir, "sources.snapshot")
    deadline = time.monotonic() + timeout
    while True:
        text = open(path).read() if os.path.exists(path) else ""
        if pred(text):
            return text
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not in {path} after {timeout}s:\n{text}\n"
                                 f"{server.log_tail()}")
        time.sleep(0.02)


def snapshot_tokens(text):
    """The read-token lines of a snapshot: {name: (all, hash hex, [source ids])}."""
    lines = text.splitlines()
    i = next(k for k, line in enumerate(lines) if line.startswith("read-tokens "))
    n = int(lines[i].split()[1])
    out = {}
    for line in lines[i + 1:i + 1 + n]:
        f = line.split()
        out[f[2]] = (f[1] == "1", f[3], [int(x) for x in f[5:5 + int(f[4])]])
    return out


def test_running_server_picks_up_changes_at_once(sluice, db):
    """NOTIFY sluice_sources: a running server reloads the read tokens within a second
    (its reload writes the snapshot; the read API itself is tested with the API)."""
    server = sluice()
    s = add_source(db)
    t0 = time.monotonic()
    _, token = token_add(db, "live", "--source", s.name)
    h = hashlib.sha256(token.encode()).hexdigest()
    text = wait_snapshot(server, lambda t: h in t, 1.0, "new read token")
    assert time.monotonic() - t0 < 1.5
    assert snapshot_tokens(text)["live"] == (False, h, [s.id])
    assert token not in text
    # Removing its only source empties its scope at the next reload (ids are dropped).
    sluice_cli(db, "source", "rm", s.name)
    wait_snapshot(server, lambda t: snapshot_tokens(t).get("live", (0, 0, [1]))[2] == [], 1.0,
                  "scope without the removed source")
    sluice_cli(db, "token", "rm", "live")
    wait_snapshot(server, lambda t: h not in t, 1.0, "removal of the read token")
    # A token added while the server is down is there from its start.
    server.stop()
    token_add(db, "after-restart", "--all")
    server.start()
    text = wait_snapshot(server, lambda t: "after-restart" in t, 5.0, "token after restart")
    assert snapshot_tokens(text)["after-restart"][0] is True
