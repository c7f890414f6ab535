"""End-to-end fixtures: the real sluice binary, a private PostgreSQL, real TLS, real clients.

Session: one PostgreSQL cluster (deploy/pg.sh, in a temporary directory, removed at the
end) and one self-signed certificate (deploy/cert.sh). Module: a database of its own
(migrated by `sluice migrate`). Test: `sluice` servers from the `sluice` factory, each on
free 127.0.0.1 ports with its own spool directory, stderr kept in a file (shown when a
test fails), stopped with SIGTERM (SIGKILL after 30 s) at teardown.

Runs under Debian's /usr/bin/python3 (python3-pytest, python3-psycopg2); see
tests/run_e2e.sh. BUILD names the build directory (build, or build-asan for `make asan`).
"""

import base64
import dataclasses
import datetime
import gzip as gzip_mod
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.parse

import psycopg2
import psycopg2.extras
import pytest

ROOT = os.path.realpath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("BUILD", "build")
SLUICE = os.path.join(ROOT, BUILD, "sluice")
CORPUS = os.path.realpath(
    os.environ.get("SLUICE_CORPUS", os.path.join(ROOT, "tests", "fixtures", "corpus")))
LOGPLEX_CT = "application/logplex-1"

_live_servers = []  # every server started in the current test, for failure reports


def corpus_path(*parts):
    path = os.path.join(CORPUS, *parts)
    if not os.path.exists(path):
        pytest.fail(f"corpus file missing: {path} (set SLUICE_CORPUS)")
    return path


def frames(body):
    """Splits an octet-counted body (RFC 6587) into its messages (bytes), as a sender meant them."""
    out, i = [], 0
    while i < len(body):
        sp = body.index(b" ", i)
        n = int(body[i:sp])
        out.append(body[sp + 1:sp + 1 + n])
        i = sp + 1 + n
    return out


def frame_body(messages):
    """Builds an octet-counted body from messages (str or bytes)."""
    parts = []
    for m in messages:
        if isinstance(m, str):
            m = m.encode()
        parts.append(b"%d %s" % (len(m), m))
    return b"".join(parts)


def heroku_line(msg, app="app", proc="web.1", pri=190, ts="2026-11-21T10:00:00.000000+00:00"):
    return f"<{pri}>1 {ts} host {app} {proc} - {msg}\n"


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "serial: the file measures latency or memory; tests/run_e2e.sh runs it "
        "alone after the parallel phase")


NPM_PREFIX = os.path.join(ROOT, BUILD, "npm")


def npm_require(*packages, timeout=300):
    """Installs npm packages ("name" or "name@range") from the npm registry into
    $BUILD/npm (kept as a cache across runs) unless each one's package.json is there, and
    returns that prefix's node_modules path (for NODE_PATH). Holds a file lock while it
    installs, so pytest-xdist workers never run two `npm install`s into one prefix. A
    missing npm or a failed install fails the test with the reason; never a skip."""
    import fcntl
    mods = os.path.join(NPM_PREFIX, "node_modules")
    def name(p):
        return p.rsplit("@", 1)[0] if p.rfind("@") > 0 else p
    def have():
        return all(os.path.exists(os.path.join(mods, name(p), "package.json")) for p in packages)
    if have():
        return mods
    os.makedirs(NPM_PREFIX, exist_ok=True)
    with open(os.path.join(NPM_PREFIX, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if have():
            return mods
        try:
            r = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", NPM_PREFIX,
                                *packages], capture_output=True, text=True, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as e:
            pytest.fail(f"npm install {' '.join(packages)} failed to run ({e}); node and npm are "
                        f"needed (Debian: nodejs npm)")
        if r.returncode != 0 or not have():
            pytest.fail(f"npm install --prefix {NPM_PREFIX} {' '.join(packages)} failed "
                        f"({r.returncode}):\n{r.stdout[-2000:]}{r.stderr[-2000:]}")
    return mods


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, timeout, interval=0.1, what="condition"):
    """Polls pred() until it returns a true value; returns it, or fails after timeout s."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


# ---------------------------------------------------------------- PostgreSQL


class Postgres:
    def __init__(self, workdir):
        self.dir = os.path.join(workdir, "pg")
        self.url = None

    def _pg(self, cmd):
        r = subprocess.run([os.path.join(ROOT, "deploy", "pg.sh"), cmd, self.dir],
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0 and cmd != "status":
            raise RuntimeError(f"deploy/pg.sh {cmd} failed: {r.stderr}")
        return r

    def start(self):
        self.url = self._pg("start").stdout.strip().splitlines()[-1]
        return self.url

    def stop(self):
        self._pg("stop")

    def destroy(self):
        self._pg("destroy")

    def running(self):
        return self._pg("status").returncode == 0

    def db_url(self, dbname):
        return re.sub(r"^postgresql:///[^?]*", f"postgresql:///{dbname}", self.url)

    def connect(self, dbname="postgres"):
        conn = psycopg2.connect(self.db_url(dbname))
        conn.autocommit = True
        return conn


@pytest.fixture(scope="session")
def workdir():
    d = tempfile.mkdtemp(prefix="sluice-e2e.")
    os.chmod(d, 0o755)  # the postgres user must reach the cluster inside it
    yield d
    if os.environ.get("SLUICE_E2E_KEEP"):
        print(f"kept {d}")
    else:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def pg(workdir):
    if not os.access(SLUICE, os.X_OK):
        pytest.exit(f"{SLUICE} is not built", returncode=1)
    p = Postgres(workdir)
    p.start()
    yield p
    p.destroy()


@pytest.fixture(scope="session")
def tls(workdir):
    subprocess.run([os.path.join(ROOT, "deploy", "cert.sh"), workdir], check=True, timeout=60)
    return dataclasses.make_dataclass("TLS", ["cert", "key"])(
        os.path.join(workdir, "tls", "cert.pem"), os.path.join(workdir, "tls", "key.pem"))


class Database:
    """One database of the private cluster, migrated, with query helpers."""

    def __init__(self, pg, name):
        self.pg, self.name = pg, name
        self.url = pg.db_url(name)
        self._conn = None

    def conn(self):
        if self._conn is None or self._conn.closed:
            self._conn = psycopg2.connect(self.url)
            self._conn.autocommit = True
        return self._conn

    def query(self, sql, args=()):
        for attempt in range(2):
            try:
                with self.conn().cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
                    cur.execute(sql, args)
                    return cur.fetchall() if cur.description else []
            except (psycopg2.OperationalError, psycopg2.InterfaceError):
                # The cluster was restarted by a test: reconnect once.
                self.close()
                if attempt:
                    raise
        return []

    def close(self):
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:
                pass
            self._conn = None

    def count(self, source_id):
        return self.query("SELECT count(*) AS n FROM logs WHERE source_id = %s", (source_id,))[0]["n"]

    def rows(self, source_id):
        return self.query("SELECT * FROM logs WHERE source_id = %s ORDER BY id", (source_id,))

    def wait_rows(self, source_id, n, timeout=20, settle=0.5):
        """Waits until source_id has n rows, then checks that no more arrive; returns them."""
        wait_for(lambda: self.count(source_id) >= n, timeout,
                 what=f"{n} rows of source {source_id} (have {self.count(source_id)})")
        time.sleep(settle)
        got = self.count(source_id)
        assert got == n, f"source {source_id}: expected {n} rows, found {got}"
        return self.rows(source_id)


def empty_database(pg, name):
    """A new, empty database of the private cluster (dropped first if it exists): no
    schema, not migrated."""
    conn = pg.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
            cur.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    finally:
        conn.close()


@pytest.fixture(scope="module")
def db(pg, request):
    name = "e2e_" + re.sub(r"\W", "_", request.module.__name__.split(".")[-1]).lower()
    empty_database(pg, name)
    d = Database(pg, name)
    r = subprocess.run([SLUICE, "migrate"], env=dict(os.environ, DATABASE_URL=d.url),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"sluice migrate failed: {r.stdout}{r.stderr}"
    # packs are compressed by the server module (`make pg-module` installs it; the suite
    # tests the real thing, docs/search.md "Compressed packs")
    assert "packs: compressed" in r.stdout, r.stdout
    r = subprocess.run([SLUICE, "migrate"], env=dict(os.environ, DATABASE_URL=d.url),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"second sluice migrate failed: {r.stdout}{r.stderr}"
    yield d
    d.close()


def store_rows_directly(db, source_id, n, message_sql, per_block, with_raw=False, params=()):
    """n rows of source_id straight into PostgreSQL, stored as the writer would: ids in a
    fresh id block, received a minute ago (row i at that time + i µs), log_blocks of
    per_block rows each with a filter that says yes to every token, one commit per block
    in the commit log (stamp_commits), then ANALYZE. message_sql is an SQL expression of
    i (0..n-1) for the message (and message_raw when with_raw), with its own %s
    parameters (params). A server started before should restart after it, so its
    writer takes a newer id block. Returns the ids."""
    r = db.query("SELECT nextval('logs_id_block_seq') AS b, now() - interval '1 minute' AS t")
    first, t = r[0]["b"] << 20, r[0]["t"]
    raw_col, raw_val = (", message_raw", ", convert_to(m, 'UTF8')") if with_raw else ("", "")
    db.query("INSERT INTO logs (id, received_at, source_id, facility, severity, hostname, "
             f"app_name, procid, message{raw_col}) SELECT %s + i, "
             "%s::timestamptz + i * interval '1 microsecond', %s, 23, 6, 'host', "
             f"'app', 'web.1', m{raw_val} FROM (SELECT i, {message_sql} AS m "
             "FROM generate_series(0, %s) i) x", (first, t, source_id, *params, n - 1))
    db.query("INSERT INTO log_blocks SELECT %s, %s::timestamptz + lo * interval '1 microsecond', "
             "%s::timestamptz + hi * interval '1 microsecond', %s + lo, %s + hi, hi - lo + 1, 8, "
             "'\\xff'::bytea FROM (SELECT b * %s AS lo, least(b * %s + %s, %s) - 1 AS hi "
             "FROM generate_series(0, %s) b) x",
             (source_id, t, t, first, first, per_block, per_block, per_block, n,
              (n - 1) // per_block))
    stamp_commits(db, source_id, [(first + b, first + min(b + per_block, n) - 1)
                                  for b in range(0, n, per_block)], t, first)
    db.query("ANALYZE logs")
    db.query("ANALYZE log_blocks")
    db.query("ANALYZE log_commits")
    return [first + i for i in range(n)]


def stamp_commits(db, source_id, ranges, t, first=None):
    """Number rows stored directly in the commit log as a writer would (sl_commit_stamp,
    the function the writer calls): one commit per (lo, hi) id range of source_id, in list
    order. The rows were received at t, or (first given) row id at t + (id - first) µs.
    Live tail and resumes read through it."""
    db.query("SELECT sl_commit_stamp('test', ARRAY[%s::bigint], ARRAY[lo], ARRAY[hi], "
             "ARRAY[u + lo - f], ARRAY[u + hi - f], ARRAY[(hi - lo + 1)::int]) FROM (SELECT lo, "
             "hi, (extract(epoch FROM %s::timestamptz) * 1000000)::bigint AS u, "
             "coalesce(%s::bigint, lo) AS f FROM unnest(%s::bigint[], %s::bigint[]) "
             "WITH ORDINALITY AS r(lo, hi, o) ORDER BY o) x",
             (source_id, t, first, [lo for lo, _ in ranges], [hi for _, hi in ranges]))


def day_partition(db, day):
    """Creates the logs partition of a UTC day (a datetime.date), named as the server names
    them; returns its name."""
    name = "logs_" + day.strftime("%Y%m%d")
    nxt = day + datetime.timedelta(days=1)
    db.query(f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF logs FOR VALUES "
             f"FROM ('{day.isoformat()} 00:00:00+00') TO ('{nxt.isoformat()} 00:00:00+00')")
    return name


# ---------------------------------------------------------------- sources


@dataclasses.dataclass
class Source:
    name: str
    token: str
    url: str
    id: int

    @property
    def hostname(self):
        """The syslog HOSTNAME that names this source on syslog+TLS: d.<ingest token>."""
        return "d." + self.token


def sluice_cli(db, *args, check=True):
    r = subprocess.run([SLUICE, *args], env=dict(os.environ, DATABASE_URL=db.url),
                       capture_output=True, text=True, timeout=60)
    if check:
        assert r.returncode == 0, f"sluice {' '.join(args)}: {r.returncode} {r.stdout}{r.stderr}"
    return r


def parse_drain_url(url):
    u = urllib.parse.urlsplit(url)
    assert u.scheme == "https" and u.path == "/logs", f"not a drain URL: {url!r}"
    return urllib.parse.unquote(u.username), urllib.parse.unquote(u.password)


_source_seq = [0]


def add_source(db, name=None, *args):
    if name is None:
        _source_seq[0] += 1
        name = f"src{_source_seq[0]}-{os.getpid()}"
    r = sluice_cli(db, "source", "add", name, *args)
    url = r.stdout.strip().splitlines()[-1].strip()
    user, token = parse_drain_url(url)
    assert user == name
    sid = db.query("SELECT id FROM sources WHERE name = %s", (name,))[0]["id"]
    return Source(name, token, url, sid)


# ---------------------------------------------------------------- HTTP clients


@dataclasses.dataclass
class Reply:
    status: int
    headers: dict
    body: bytes


def curl_post(server, source=None, body=b"", *, path="/logs", query="", scheme="https",
              gzip=False, chunked=False, headers=None, user=None, password=None, timeout=30):
    """POSTs body (bytes or a file path) with the real curl; returns a Reply."""
    tmp = tempfile.mkdtemp(prefix="curl.", dir=server.dir)
    try:
        if isinstance(body, str):
            data_file = body
        else:
            data_file = os.path.join(tmp, "body")
            with open(data_file, "wb") as f:
                f.write(gzip_mod.compress(body) if gzip else body)
        hdr_file, out_file = os.path.join(tmp, "headers"), os.path.join(tmp, "out")
        port = server.https_port if scheme == "https" else server.http_port
        if source is not None:
            user = source.name if user is None else user
            password = source.token if password is None else password
        cred = ""
        if user is not None:
            cred = urllib.parse.quote(user, safe="") + ":" + urllib.parse.quote(password or "", safe="") + "@"
        url = f"{scheme}://{cred}127.0.0.1:{port}{path}" + (f"?{query}" if query else "")
        cmd = ["curl", "-sS", "--max-time", str(timeout), "-o", out_file, "-D", hdr_file,
               "-w", "%{http_code}", "--data-binary", "@" + data_file,
               "-H", "Content-Type: " + LOGPLEX_CT]
        if scheme == "https":
            cmd += ["--cacert", server.tls.cert]
        if gzip:
            cmd += ["-H", "Content-Encoding: gzip"]
        if chunked:
            cmd += ["-H", "Transfer-Encoding: chunked"]
        for k, v in (headers or {}).items():
            cmd += ["-H", f"{k}: {v}"]
        r = subprocess.run(cmd + [url], capture_output=True, text=True, timeout=timeout + 10)
        code = int(r.stdout.strip() or 0)
        hdrs = {}
        if os.path.exists(hdr_file):
            with open(hdr_file, "rb") as f:
                for line in f.read().decode("latin-1").splitlines():
                    if ":" in line:
                        k, v = line.split(":", 1)
                        hdrs[k.strip().lower()] = v.strip()
        out = b""
        if os.path.exists(out_file):
            with open(out_file, "rb") as f:
                out = f.read()
        return Reply(code, hdrs, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def basic_auth(source):
    return "Basic " + base64.b64encode(f"{source.name}:{source.token}".encode()).decode()


# ---------------------------------------------------------------- read API (docs/api.md)

READ_TOKEN_RE = re.compile(r"\bslr_[0-9a-f]{40}\b")


def add_read_token(db, name, *args):
    """`sluice token add NAME --all | --source X ...`; returns the printed token."""
    r = sluice_cli(db, "token", "add", name, *args)
    m = READ_TOKEN_RE.findall(r.stdout)
    assert len(m) == 1, f"sluice token add {name}: expected one slr_ token in {r.stdout!r}"
    return m[0]


@dataclasses.dataclass
class ApiReply(Reply):
    def json(self):
        return json.loads(self.body)


def api_get(server, path, params=None, token=None, headers=None, timeout=30):
    """GET path?params (dict or list of pairs) on the plain HTTP port with
    `Authorization: Bearer token` (when token is set); returns an ApiReply."""
    url = path + ("?" + urllib.parse.urlencode(params, doseq=True) if params else "")
    h = dict(headers or {})
    if token is not None:
        h.setdefault("Authorization", "Bearer " + token)
    c = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=timeout)
    try:
        c.request("GET", url, headers=h)
        r = c.getresponse()
        return ApiReply(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    finally:
        c.close()


class _PortTaken(Exception):
    pass


class Server:
    def __init__(self, db, tls, workdir, env, spool_dir=None):
        self.db, self.tls = db, tls
        self.dir = tempfile.mkdtemp(prefix="sluice.", dir=workdir)
        self.spool_dir = spool_dir or os.path.join(self.dir, "spool")
        self.extra_env = dict(env)
        self.proc = None
        self.log_path = None
        self.starts = 0

    def start(self, **env):
        """Starts sluice on free ports. A port that free_port() saw free may be taken by
        another process before sluice binds it (other suites on the same machine): such a
        start is retried on new ports, at most three times."""
        for attempt in range(3):
            try:
                return self._start_once(attempt == 2, **env)
            except _PortTaken:
                continue

    def _start_once(self, last, **env):
        self.extra_env.update(env)
        self.http_port, self.https_port = free_port(), free_port()
        self.syslog_tls_port, self.syslog_port = free_port(), free_port()
        e = dict(os.environ)
        e.update({
            "DATABASE_URL": self.db.url,
            "SLUICE_BIND": "127.0.0.1",
            "PORT": str(self.http_port),
            "SLUICE_HTTPS_PORT": str(self.https_port),
            "SLUICE_SYSLOG_TLS_PORT": str(self.syslog_tls_port),
            "SLUICE_SYSLOG_PORT": str(self.syslog_port),
            "SLUICE_SPOOL_DIR": self.spool_dir,
            "SLUICE_TLS_CERT": self.tls.cert,
            "SLUICE_TLS_KEY": self.tls.key,
            "SLUICE_PUBLIC_URL": f"https://localhost:{self.https_port}",
            "SLUICE_LOG_LEVEL": "info",
            # Background work that moves or deletes rows stays off unless a test asks for
            # it: compaction (test_compact.py) and the disk guard's filesystem figure (a
            # full disk on the test machine would refuse every test's ingest;
            # test_disk_guard.py sets what it measures).
            "SLUICE_COMPACT_AFTER_HOURS": "0",
            "SLUICE_DISK_FILESYSTEM": "off",
        })
        e.update({k: str(v) for k, v in self.extra_env.items()})
        self.starts += 1
        self.log_path = os.path.join(self.dir, f"stderr.{self.starts}.log")
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([SLUICE, "serve"], env=e, stdin=subprocess.DEVNULL,
                                     stdout=log, stderr=subprocess.STDOUT, cwd=self.dir)
        log.close()
        _live_servers.append(self)
        deadline = time.monotonic() + 20
        while True:
            if self.proc.poll() is not None:
                if not last and "Address already in use" in self.log_tail():
                    _live_servers.remove(self)
                    raise _PortTaken()
                pytest.fail(f"sluice serve exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if self.get("/healthz").status == 200:
                    return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"sluice serve: no 200 from /healthz in 20 s:\n{self.log_tail()}")
            time.sleep(0.05)

    def log_tail(self, n=80):
        if not self.log_path or not os.path.exists(self.log_path):
            return ""
        with open(self.log_path, "rb") as f:
            lines = f.read().decode("utf-8", "replace").splitlines()
        return "\n".join(lines[-n:])

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Stops the server; returns its exit status (negative: killed by that signal)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
                pytest.fail(f"sluice did not exit within {timeout}s of signal {sig}:\n{self.log_tail()}")
        return self.proc.returncode

    def kill(self):
        return self.stop(signal.SIGKILL, timeout=10)

    def restart(self, **env):
        self.stop()
        return self.start(**env)

    # plain-HTTP helpers for the operational endpoints
    def get(self, path, timeout=5):
        c = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=timeout)
        try:
            c.request("GET", path)
            r = c.getresponse()
            return Reply(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
        finally:
            c.close()

    def metrics(self):
        r = self.get("/metrics")
        assert r.status == 200, r
        return parse_metrics(r.body.decode())

    def metric(self, name, labels=None):
        return metric_value(self.metrics(), name, labels)

    def https_connection(self, timeout=10):
        ctx = ssl.create_default_context(cafile=self.tls.cert)
        return http.client.HTTPSConnection("127.0.0.1", self.https_port, context=ctx, timeout=timeout)

    def add_source(self, name=None, *args):
        """Adds a source and waits until this server accepts its credentials (LISTEN/NOTIFY)."""
        src = add_source(self.db, name, *args)
        self.wait_source(src)
        return src

    def wait_source(self, src, timeout=10):
        def accepted():
            r = curl_post(self, src, b"", timeout=5)
            return r.status != 401 and r
        r = wait_for(accepted, timeout, interval=0.2, what=f"server to accept source {src.name}")
        assert r.status == 204, f"empty POST for {src.name}: {r}"

    def post(self, source, body=b"", **kw):
        return curl_post(self, source, body, **kw)


def parse_metrics(text):
    """Prometheus text -> {(name, frozenset(labels)): value}."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)', line)
        if not m:
            continue
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def metric_value(metrics, name, labels=None):
    """Value of one series (0 when absent: counters start at zero); labels must match exactly."""
    want = frozenset((labels or {}).items())
    return metrics.get((name, want), 0.0)


def metric_names(metrics):
    return {name for name, _ in metrics}


@pytest.fixture
def sluice(db, tls, workdir):
    """Factory: sluice(**env) starts a server on free ports; all are stopped at teardown."""
    servers = []

    def start(spool_dir=None, **env):
        s = Server(db, tls, workdir, env, spool_dir=spool_dir)
        servers.append(s)
        return s.start()

    yield start
    for s in servers:
        try:
            s.stop()
        except BaseException:  # teardown of the others must still happen
            if s.proc and s.proc.poll() is None:
                s.proc.kill()
    for s in servers:
        if s.proc and s.proc.poll() is None:
            s.proc.kill()
            s.proc.wait()


@pytest.fixture(scope="module")
def server(db, tls, workdir):
    """One default server shared by the tests of a module."""
    s = Server(db, tls, workdir, {})
    s.start()
    yield s
    s.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for s in list(_live_servers):
            rep.sections.append((f"sluice stderr ({s.log_path})", s.log_tail(60)))
    if rep.when == "teardown":
        _live_servers[:] = [s for s in _live_servers if s.proc and s.proc.poll() is None]


def pytest_runtest_setup(item):
    # Servers shared by a module stay listed; ones that died are dropped.
    _live_servers[:] = [s for s in _live_servers if s.proc and s.proc.poll() is None]
