"""`sluice search` and `sluice tail [-f]` (drain/client.c) against the real server.

The client is run as a subprocess the way a user runs it: SLUICE_URL pointing at the
server's HTTPS port, SLUICE_TOKEN a read token from `sluice token add`, SLUICE_CA_FILE the
session's self-signed certificate, HOME/XDG_CONFIG_HOME in a temporary directory (so a
developer's own cli.conf is never read). What the CLI prints is checked against the API's
own answers and the rows in PostgreSQL: order, the papertrail-style layout, colour only on
a terminal, NDJSON exactly the API's events, paging past 10000 lines, exit statuses, and
`tail -f` surviving a server restart with no line lost and none printed twice.
"""

import datetime
import json
import os
import pty
import queue
import re
import select
import signal
import subprocess
import tempfile
import threading
import time

import pytest

import conftest
from conftest import SLUICE, add_read_token, api_get, frame_body, free_port, heroku_line, wait_for

ANSI = re.compile(rb"\x1b\[")
PLAIN = re.compile(r"^([A-Z][a-z]{2} \d\d \d\d:\d\d:\d\d) (\S+) (\S+): (.*)$")
MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()


def display_time(received_at, offset_hours=0):
    t = datetime.datetime.strptime(received_at, "%Y-%m-%dT%H:%M:%S.%fZ")
    t += datetime.timedelta(hours=offset_hours)
    return f"{MONTHS[t.month - 1]} {t.day:02d} {t:%H:%M:%S}"


@pytest.fixture(scope="module")
def home():
    d = tempfile.mkdtemp(prefix="sluice-cli-home.")
    yield d
    subprocess.run(["rm", "-rf", "--", d], check=False)


@pytest.fixture(scope="module")
def api(server, db):
    """The module's server, one source, an --all read token, and 30 posted lines."""
    src = server.add_source()
    token = add_read_token(db, f"cli-{os.getpid()}", "--all")
    msgs = [f"clisearch line {i:02d} status={200 + i}" for i in range(30)]
    for chunk in (msgs[:10], msgs[10:20], msgs[20:]):
        # Three requests, so received_at differs between some lines.
        r = server.post(src, frame_body([heroku_line(m, proc=f"web.{i % 3}")
                                         for i, m in enumerate(chunk)]))
        assert r.status == 204, r
        time.sleep(0.05)
    db.wait_rows(src.id, 30)
    return dict(server=server, db=db, source=src, token=token, msgs=msgs)


def cli_env(api, home, **extra):
    s = api["server"]
    e = {k: v for k, v in os.environ.items()
         if k not in ("TZ", "NO_COLOR", "SLUICE_URL", "SLUICE_TOKEN", "SLUICE_CA_FILE")}
    e.update(HOME=home, XDG_CONFIG_HOME=os.path.join(home, "cfg"),
             SLUICE_URL=f"https://127.0.0.1:{s.https_port}", SLUICE_TOKEN=api["token"],
             SLUICE_CA_FILE=s.tls.cert)
    for k, v in extra.items():
        if v is None:
            e.pop(k, None)
        else:
            e[k] = v
    return e


def run_cli(api, home, *args, env=None, timeout=60):
    return subprocess.run([SLUICE, *args], env=env or cli_env(api, home), capture_output=True,
                          timeout=timeout)


def api_events(api, **params):
    r = api_get(api["server"], "/api/v1/search", params=params, token=api["token"])
    assert r.status == 200, r
    return r.json()["events"]


def test_search_plain_oldest_first(api, home):
    r = run_cli(api, home, "search", "clisearch", "--limit", "12")
    assert r.returncode == 0, r.stderr
    assert not ANSI.search(r.stdout), "colour escapes in piped output"
    lines = r.stdout.decode().splitlines()
    assert len(lines) == 12
    # The newest 12, oldest first: the API's newest-first answer reversed.
    want = list(reversed(api_events(api, q="clisearch", limit=12, order="desc")))
    for got, ev in zip(lines, want):
        m = PLAIN.match(got)
        assert m, got
        assert m.group(1) == display_time(ev["received_at"])
        assert m.group(2) == "host"
        assert m.group(3) == f"app/{ev['procid']}"
        assert m.group(4) == ev["message"]
    assert [PLAIN.match(x).group(4) for x in lines] == api["msgs"][-12:]


def test_search_default_limit_and_all(api, home):
    r = run_cli(api, home, "search", "--source", api["source"].name)
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.decode().splitlines()) == 30  # fewer than the default 100 exist
    r = run_cli(api, home, "search", "clisearch", "--source", api["source"].name,
                "--since", "1h", "--limit", "1000")
    assert r.returncode == 0, r.stderr
    assert [PLAIN.match(x).group(4) for x in r.stdout.decode().splitlines()] == api["msgs"]
    r = run_cli(api, home, "search", "clisearch", "--source", "no-such-source")
    assert r.returncode == 0 and r.stdout == b""
    # papertrail-cli's spellings: -s / --system and -j
    r = run_cli(api, home, "search", "clisearch", "-s", api["source"].name, "--since", "1h",
                "--limit", "1000")
    assert r.returncode == 0, r.stderr
    assert [PLAIN.match(x).group(4) for x in r.stdout.decode().splitlines()] == api["msgs"]
    r = run_cli(api, home, "search", "clisearch", "--system", "no-such-source", "-j")
    assert r.returncode == 0 and r.stdout == b""
    r = run_cli(api, home, "search", "clisearch", "status:>=220", "-j",
                "--system=" + api["source"].name)
    assert r.returncode == 0, r.stderr
    assert len([json.loads(x) for x in r.stdout.decode().splitlines()]) == 10


def test_search_json_is_the_api_event(api, home):
    r = run_cli(api, home, "search", "clisearch", "status:>=220", "--json")
    assert r.returncode == 0, r.stderr
    got = [json.loads(x) for x in r.stdout.decode().splitlines()]
    want = list(reversed(api_events(api, q="clisearch status:>=220", order="desc")))
    assert len(got) == 10
    assert got == want  # every field, as the API returned it, oldest first
    # Byte for byte the server's text of each event (NDJSON: one per line).
    raw = api_get(api["server"], "/api/v1/search", params={"q": "clisearch status:>=220"},
                  token=api["token"]).body
    for x in r.stdout.splitlines():
        assert x in raw
    rows = {str(x["id"]) for x in api["db"].rows(api["source"].id)}
    assert {e["id"] for e in got} <= rows


def test_search_time_zone(api, home):
    ev = api_events(api, q="clisearch", limit=1)[0]
    r = run_cli(api, home, "search", "clisearch", "--limit", "1",
                env=cli_env(api, home, TZ="EST5"))
    assert r.returncode == 0, r.stderr
    assert PLAIN.match(r.stdout.decode()).group(1) == display_time(ev["received_at"], -5)


def run_on_tty(args, env, timeout=30):
    """Runs the CLI with stdout on a pseudo-terminal; returns (status, bytes written)."""
    master, slave = pty.openpty()
    p = subprocess.Popen([SLUICE, *args], env=env, stdout=slave, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL)
    os.close(slave)
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rl, _, _ = select.select([master], [], [], 0.2)
        if rl:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
        elif p.poll() is not None:
            break
    os.close(master)
    return p.wait(timeout=10), out


def test_color_on_terminal_only(api, home):
    env = cli_env(api, home, TERM="xterm")
    rc, out = run_on_tty(["search", "clisearch", "--limit", "3"], env)
    assert rc == 0
    # Host and program coloured (SGR 31..36) and reset; the message is not.
    assert re.search(rb"\x1b\[3[1-6]mhost\x1b\[0m \x1b\[3[1-6]mapp/web\.\d\x1b\[0m: clisearch",
                     out), out
    # The same host gets the same colour on every line.
    assert len(set(re.findall(rb"\x1b\[(3[1-6])mhost", out))) == 1
    rc, out = run_on_tty(["search", "clisearch", "--limit", "3"],
                         cli_env(api, home, TERM="xterm", NO_COLOR="1"))
    assert rc == 0 and b"clisearch" in out and not ANSI.search(out)
    rc, out = run_on_tty(["search", "clisearch", "--limit", "3", "--no-color"], env)
    assert rc == 0 and b"clisearch" in out and not ANSI.search(out)
    rc, out = run_on_tty(["search", "clisearch", "--limit", "3", "--json"], env)
    assert rc == 0 and b'"clisearch' in out and not ANSI.search(out)
    # --color forces it into a pipe.
    r = run_cli(api, home, "search", "clisearch", "--limit", "3", "--color")
    assert r.returncode == 0 and len(ANSI.findall(r.stdout)) == 12


def test_bad_query_exit_2_with_position(api, home):
    q = "clisearch severity:bogus"
    r = run_cli(api, home, "search", q)
    assert r.returncode == 2
    a = api_get(api["server"], "/api/v1/search", params={"q": q}, token=api["token"])
    assert a.status == 400 and a.json()["position"] > 0
    # The server's message, with its position, is what the user sees.
    assert r.stderr.decode() == "sluice: " + a.json()["error"] + "\n"
    assert "bogus" in a.json()["error"] and re.search(r"\bat \d+", a.json()["error"])
    assert r.stdout == b""
    r = run_cli(api, home, "tail", "(unclosed")
    assert r.returncode == 2 and re.search(r"\bat \d+", r.stderr.decode()), r.stderr
    r = run_cli(api, home, "search", "--since", "not-a-time")
    assert r.returncode == 2 and r.stderr.startswith(b"sluice: "), r.stderr


def test_usage_errors_exit_2(api, home):
    for args in (["search", "--limit", "0"], ["search", "--bogus"], ["tail", "-n", "x"],
                 ["search", "-f"]):
        r = run_cli(api, home, *args)
        assert r.returncode == 2, (args, r)
        assert b"usage: sluice" in r.stderr
    r = run_cli(api, home, "search", env=cli_env(api, home, SLUICE_URL=None))
    assert r.returncode == 2 and b"SLUICE_URL" in r.stderr


def test_refused_token_exit_1(api, home):
    bad = "slr_" + "0" * 40
    r = run_cli(api, home, "search", env=cli_env(api, home, SLUICE_TOKEN=bad))
    assert r.returncode == 1
    assert r.stderr.decode().strip() == "sluice: the token was refused (SLUICE_TOKEN)"
    # An ingest token is not a read token.
    r = run_cli(api, home, "search", env=cli_env(api, home, SLUICE_TOKEN=api["source"].token))
    assert r.returncode == 1 and b"refused" in r.stderr
    # --token overrides the environment.
    r = run_cli(api, home, "search", "--token", bad)
    assert r.returncode == 1 and b"refused" in r.stderr
    assert bad.encode() not in r.stderr  # never echoed


def test_unreachable_and_tls_exit_1(api, home):
    port = free_port()
    r = run_cli(api, home, "search", env=cli_env(api, home, SLUICE_URL=f"https://127.0.0.1:{port}"))
    assert r.returncode == 1 and b"cannot reach https://127.0.0.1:" in r.stderr, r.stderr
    # The self-signed certificate is refused without the CA file, with a hint.
    r = run_cli(api, home, "search", env=cli_env(api, home, SLUICE_CA_FILE=None))
    assert r.returncode == 1 and b"SLUICE_CA_FILE" in r.stderr, r.stderr
    assert r.stdout == b""
    # --insecure is explicit and says so.
    r = run_cli(api, home, "search", "clisearch", "--limit", "2", "--insecure",
                env=cli_env(api, home, SLUICE_CA_FILE=None))
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 2
    assert b"--insecure" in r.stderr
    # Plain HTTP works too.
    s = api["server"]
    r = run_cli(api, home, "search", "clisearch", "--limit", "2", "--url",
                f"http://127.0.0.1:{s.http_port}/")
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 2


def test_config_file(api, home):
    s = api["server"]
    cfg = os.path.join(home, "cfg2")
    os.makedirs(os.path.join(cfg, "sluice"), exist_ok=True)
    path = os.path.join(cfg, "sluice", "cli.conf")
    with open(path, "w") as f:
        f.write(f"# my sluice\nurl = https://127.0.0.1:{s.https_port}\n"
                f"token = {api['token']}\ncacert = \"{s.tls.cert}\"\n")
    os.chmod(path, 0o600)
    env = cli_env(api, home, XDG_CONFIG_HOME=cfg, SLUICE_URL=None, SLUICE_TOKEN=None,
                  SLUICE_CA_FILE=None)
    r = run_cli(api, home, "search", "clisearch", "--limit", "4", env=env)
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.splitlines()) == 4 and r.stderr == b""
    # The environment wins over the file.
    r = run_cli(api, home, "search", env=dict(env, SLUICE_TOKEN="slr_" + "1" * 40))
    assert r.returncode == 1 and b"refused" in r.stderr
    # A group-readable file still works, with a warning.
    os.chmod(path, 0o644)
    r = run_cli(api, home, "search", "--limit", "1", env=env)
    assert r.returncode == 0 and b"chmod 600" in r.stderr
    with open(path, "a") as f:
        f.write("tokn = x\n")
    r = run_cli(api, home, "search", env=env)
    assert r.returncode == 2 and b"line 5" in r.stderr, r.stderr


def test_tail_newest_lines(api, home):
    r = run_cli(api, home, "tail", "clisearch", "-n", "4")
    assert r.returncode == 0, r.stderr
    assert [PLAIN.match(x).group(4) for x in r.stdout.decode().splitlines()] == api["msgs"][-4:]
    r = run_cli(api, home, "tail", "clisearch")
    assert len(r.stdout.splitlines()) == 20  # the default -n


def test_search_pages_past_10000(api, home):
    s, db = api["server"], api["db"]
    src = s.add_source()
    n = 10050
    body = frame_body([heroku_line(f"pagetest {i:05d}", proc="p.1") for i in range(n)])
    r = s.post(src, body, timeout=60)
    assert r.status == 204, r
    db.wait_rows(src.id, n, timeout=60)
    r = run_cli(api, home, "search", "pagetest", "--limit", "10020", "--source", src.name,
                timeout=120)
    assert r.returncode == 0, r.stderr
    got = [PLAIN.match(x).group(4) for x in r.stdout.decode().splitlines()]
    assert got == [f"pagetest {i:05d}" for i in range(30, n)]
    r = run_cli(api, home, "search", "pagetest", "--limit", "50000", "--json",
                "--source", src.name, timeout=120)
    assert r.returncode == 0, r.stderr
    ids = [json.loads(x)["id"] for x in r.stdout.decode().splitlines()]
    assert len(ids) == n and len(set(ids)) == n


# ------------------------------------------------------------------ tail -f


class Follower:
    """`sluice tail -f` as a subprocess; its stdout lines arrive on a queue."""

    def __init__(self, args, env):
        self.proc = subprocess.Popen([SLUICE, "tail", "-f", *args], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL)
        self.q = queue.Queue()
        self.err = []
        threading.Thread(target=self._pump, args=(self.proc.stdout, self.q.put),
                         daemon=True).start()
        threading.Thread(target=self._pump, args=(self.proc.stderr, self.err.append),
                         daemon=True).start()

    @staticmethod
    def _pump(f, put):
        for line in iter(f.readline, b""):
            put(line.decode().rstrip("\n"))

    def take(self, n, timeout=30):
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"tail -f printed {len(out)} of {n} lines in {timeout}s: {out}\n"
                            f"stderr: {self.err}")
            try:
                out.append(self.q.get(timeout=left))
            except queue.Empty:
                pass
        return out

    def quiet(self, seconds):
        """Nothing more is printed for `seconds`."""
        try:
            extra = self.q.get(timeout=seconds)
        except queue.Empty:
            return
        pytest.fail(f"unexpected line from tail -f: {extra}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                return self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                pytest.fail("tail -f did not exit on SIGINT")
        return self.proc.returncode


def post_lines(server, src, msgs):
    r = server.post(src, frame_body([heroku_line(m) for m in msgs]))
    assert r.status == 204, r


def test_tail_follow_survives_restart(sluice, db, home, monkeypatch):
    s = sluice()
    src = s.add_source()
    token = add_read_token(db, f"tailf-{os.getpid()}", "--all")
    api = dict(server=s, token=token)
    post_lines(s, src, ["tailf old 1", "tailf old 2", "tailf old 3"])
    db.wait_rows(src.id, 3)

    f = Follower(["tailf", "-n", "2", "--json"], cli_env(api, home))
    try:
        first = [json.loads(x) for x in f.take(2)]
        assert [e["message"] for e in first] == ["tailf old 2", "tailf old 3"]

        post_lines(s, src, ["tailf live 1", "other words", "tailf live 2"])
        live_raw = f.take(2)
        live = [json.loads(x) for x in live_raw]
        assert [e["message"] for e in live] == ["tailf live 1", "tailf live 2"]
        # The stream's EVENT is the search API's EVENT, and both commands print the same
        # bytes for it.
        assert live[0] == api_events(api, q='"tailf live 1"')[0]
        r = run_cli(api, home, "search", '"tailf live 1"', "--json")
        assert r.returncode == 0 and r.stdout.decode() == live_raw[0] + "\n"

        # The server dies; lines posted right after its restart (before the client's
        # backoff ends) must still arrive, once.
        ports = [s.http_port, s.https_port, s.syslog_tls_port, s.syslog_port]
        s.kill()
        time.sleep(1.0)
        monkeypatch.setattr(conftest, "free_port", lambda it=iter(ports): next(it))
        s.start()
        monkeypatch.undo()
        post_lines(s, src, ["tailf after 1", "tailf after 2"])
        after = [json.loads(x) for x in f.take(2, timeout=60)]
        assert [e["message"] for e in after] == ["tailf after 1", "tailf after 2"]
        post_lines(s, src, ["tailf after 3"])
        assert json.loads(f.take(1)[0])["message"] == "tailf after 3"
        f.quiet(2.0)

        ids = [e["id"] for e in first + live + after]
        assert len(set(ids)) == len(ids)
        assert sorted(ids, key=int) == ids
        assert any("reconnecting" in e for e in f.err), f.err
    finally:
        rc = f.stop()
    assert rc == 0, f.err  # Ctrl-C is a normal end


def test_tail_follow_plain_and_bad_token(sluice, db, home):
    s = sluice()
    src = s.add_source()
    token = add_read_token(db, f"tailp-{os.getpid()}", "--all")
    api = dict(server=s, token=token)
    f = Follower(["tailplain", "-n", "0", "--source", src.name], cli_env(api, home))
    try:
        # -n 0: nothing printed until a new line arrives; then papertrail's layout.
        time.sleep(1.0)  # the stream is open before the post
        post_lines(s, src, ["tailplain one", "tailplain two\nwith a newline"])
        got = f.take(2)
        assert PLAIN.match(got[0]).group(2, 3, 4) == ("host", "app/web.1", "tailplain one")
        assert got[1].endswith(": tailplain two\\nwith a newline")
        assert not any("\x1b" in x for x in got)
    finally:
        assert f.stop() == 0
    r = subprocess.run([SLUICE, "tail", "-f"], env=cli_env(api, home, SLUICE_TOKEN="slr_" + "2" * 40),
                       capture_output=True, timeout=30)
    assert r.returncode == 1 and b"token was refused" in r.stderr


def test_tail_follow_missed_notice(sluice, db, home):
    """A stopped reader makes the server skip lines: the client says so on stderr (count
    and ids), keeps following, and never prints a skipped line."""
    s = sluice(SLUICE_TAIL_BUFFER="65536")
    src = s.add_source()
    token = add_read_token(db, f"tailm-{os.getpid()}", "--all")
    api = dict(server=s, token=token)
    f = Follower(["missedtest", "-n", "0", "--json"], cli_env(api, home))
    try:
        time.sleep(1.0)
        f.proc.send_signal(signal.SIGSTOP)
        n = 8000
        pad = "x" * 200
        try:
            post_lines(s, src, [f"missedtest {i:05d} {pad}" for i in range(n)])
            db.wait_rows(src.id, n, timeout=60)
            time.sleep(2.0)  # the server fills the socket, then its buffer, then skips
        finally:
            f.proc.send_signal(signal.SIGCONT)
        got = []
        while True:
            try:
                got.append(json.loads(f.q.get(timeout=3.0)))
            except queue.Empty:
                break
        notices = [e for e in f.err if "missed" in e]
        assert notices, f"no missed notice; printed {len(got)} of {n}; stderr {f.err}"
        skipped, ranges = 0, []
        for e in notices:
            m = re.search(r"missed (\d+) lines after id (\d+) \(up to id (\d+)\)", e)
            assert m, e
            skipped += int(m.group(1))
            ranges.append((int(m.group(2)), int(m.group(3))))
        ids = [int(e["id"]) for e in got]
        assert ids == sorted(set(ids))
        assert len(ids) + skipped == n
        for lo, hi in ranges:
            assert not any(lo < i <= hi for i in ids)
        # Still following.
        post_lines(s, src, ["missedtest after"])
        assert json.loads(f.take(1)[0])["message"] == "missedtest after"
    finally:
        assert f.stop() == 0
