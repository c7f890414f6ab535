"""The search answer's budget (SLUICE_SEARCH_ANSWER_BYTES, at least the largest event this
server's SLUICE_MAX_MESSAGE_BYTES and SLUICE_MAX_HEADER_BYTES allow, sl_search_answer_max).

Rows stored while the server took longer messages can pass it after the settings are
lowered; a search whose first event does not fit fails with one JSON error (never a part
of the answer), and the CLI says what the server said. Its own database, so no other
module sees its rows. Answers truncated at the budget: tests/e2e/test_search_limits.py.
"""

import json
import os
import subprocess

from conftest import SLUICE, add_read_token, api_get, frame_body, heroku_line

SEARCH = "/api/v1/search"
PT = "/api/v1/events/search.json"


def test_answer_over_its_cap_is_one_json_error(sluice, db):
    s = sluice(SLUICE_MAX_MESSAGE_BYTES=2 << 20)
    src = s.add_source()
    tok = add_read_token(db, "caps-all", "--all")
    # a 1.2 MB event: more than one event may take at the default 64 KiB messages
    # (sl_search_event_max: about 974 KB with the JSON fields object)
    r = s.post(src, frame_body([heroku_line("capsmall one"),
                                heroku_line("capbig " + "z" * 1_200_000)]))
    assert r.status == 204, r
    db.wait_rows(src.id, 2)
    s.restart(SLUICE_MAX_MESSAGE_BYTES=65536, SLUICE_SEARCH_ANSWER_BYTES=600_000)
    window = {"since": "2000-01-01T00:00:00Z", "limit": 1}

    for path in (SEARCH, PT):
        p = dict(window, q="capbig")
        if path == PT:
            p = {"q": "capbig", "limit": 1, "min_time": "946684800"}
        r = api_get(s, path, p, token=tok)
        assert r.status == 500, (path, r.status, r.body[:200])
        assert r.headers["content-type"].startswith("application/json")
        doc = json.loads(r.body)  # the whole body is one document: no partial answer
        assert list(doc) == ["error"], doc
        assert "SLUICE_SEARCH_ANSWER_BYTES" in doc["error"], doc

    # searches without it answer
    r = api_get(s, SEARCH, dict(window, q="capsmall"), token=tok)
    assert r.status == 200 and r.json()["count"] == 1, r.body[:200]

    # the CLI passes the server's message on
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env.update(HOME=s.dir, XDG_CONFIG_HOME=os.path.join(s.dir, "cfg"),
               SLUICE_URL=f"http://127.0.0.1:{s.http_port}", SLUICE_TOKEN=tok)
    c = subprocess.run([SLUICE, "search", "capbig", "--limit", "1", "--since",
                        "2000-01-01T00:00:00Z"], env=env, capture_output=True, text=True,
                       timeout=60)
    assert c.returncode == 1, (c.returncode, c.stdout[:200], c.stderr)
    assert c.stdout == ""
    assert "answered 500" in c.stderr and "SLUICE_SEARCH_ANSWER_BYTES" in c.stderr, c.stderr

    # a budget that leaves room for it answers
    s.restart(SLUICE_MAX_MESSAGE_BYTES=65536, SLUICE_SEARCH_ANSWER_BYTES=16 << 20)
    r = api_get(s, SEARCH, dict(window, q="capbig"), token=tok)
    assert r.status == 200, r.body[:200]
    assert [e["message"][:6] for e in r.json()["events"]] == ["capbig"]
