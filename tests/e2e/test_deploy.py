"""Deployment (issue 15): the files in deploy/ and the process behaviour they rely on.

Static: the systemd units pass `systemd-analyze verify` (and a broken copy does not),
deploy/haproxy.cfg passes `haproxy -c`, the Dockerfile, compose file, heroku.yml and
app.json have the structure docs/operations.md promises (hadolint is not packaged in
Debian; the image itself is built and run by `make container-check` with podman, which
takes minutes and so is not part of this file).

Process: readiness over a real NOTIFY_SOCKET datagram socket standing in for systemd
(READY=1 only once the listeners are bound and PostgreSQL answers, STOPPING=1 on
SIGTERM); a binary upgrade (SIGUSR2) and a restart on sockets held by a manager (systemd
socket activation) under a logplex-like load: no refused connection, no dropped frame,
every acknowledged frame in PostgreSQL exactly once; SIGTERM under load exits 0 with the
spool flushed; an upgrade re-reads the TLS certificate, and one whose new process cannot
start leaves the old process serving.
"""

import ctypes
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

import pytest
import yaml

from conftest import ROOT, SLUICE, wait_for

# the logplex-like sender of the restart bench (one copy for the bench and the tests)
sys.path.insert(0, os.path.join(ROOT, "tests", "bench"))
from restart import LogplexSender  # noqa: E402

DEPLOY = os.path.join(ROOT, "deploy")


def read(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


# ---------------------------------------------------------------- systemd units


def unit_copies(tmp, edit=lambda text: text):
    """The units as installed, with ExecStart on the built binary (verify checks it exists)."""
    out = []
    for name in ("sluice.service", "sluice.socket"):
        text = read(f"deploy/{name}").replace("/usr/local/bin/sluice", SLUICE)
        path = os.path.join(tmp, name)
        with open(path, "w") as f:
            f.write(edit(text))
        out.append(path)
    return out


def systemd_verify(paths):
    r = subprocess.run(["systemd-analyze", "verify", *paths], capture_output=True, text=True,
                       timeout=60)
    return r.returncode, (r.stdout + r.stderr).strip()


def test_systemd_units_verify_clean(tmp_path):
    rc, out = systemd_verify(unit_copies(str(tmp_path)))
    assert rc == 0 and out == "", f"systemd-analyze verify: rc={rc}\n{out}"


def test_systemd_verify_would_catch_a_broken_unit(tmp_path):
    """The check above can fail: verify only warns on a bad value, so the test reads its output."""
    rc, out = systemd_verify(unit_copies(
        str(tmp_path), lambda t: t.replace("ProtectSystem=strict", "ProtectSystem=bogus")))
    assert "sluice.service:" in out and "bogus" in out, out


def test_service_unit_exposure_is_low(tmp_path):
    """systemd's own review of the sandbox (offline: no running manager here)."""
    path = unit_copies(str(tmp_path))[0]
    r = subprocess.run(["systemd-analyze", "security", "--offline=true", path],
                       capture_output=True, text=True, timeout=60)
    m = re.search(r"Overall exposure level for sluice.service: ([0-9.]+) (\w+)", r.stdout)
    assert m, r.stdout[-2000:] + r.stderr
    assert float(m.group(1)) <= 2.0 and m.group(2) == "OK", m.group(0)


def unit_settings(text):
    kv = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "[")) and "=" in line:
            k, v = line.split("=", 1)
            kv.setdefault(k, []).append(v)
    return kv


def test_service_unit_is_sandboxed_notify_with_state_directory():
    kv = unit_settings(read("deploy/sluice.service"))
    want = {"Type": "notify", "NotifyAccess": "main", "WatchdogSec": "30", "NoNewPrivileges": "true",
            "ProtectSystem": "strict", "PrivateTmp": "true", "ProtectHome": "true",
            "StateDirectory": "sluice", "ExecReload": "/bin/kill -USR2 $MAINPID",
            "KillSignal": "SIGTERM"}
    for k, v in want.items():
        assert kv.get(k) == [v], f"{k}: {kv.get(k)}"
    spool = [e for e in kv["Environment"] if e.startswith("SLUICE_SPOOL_DIR=")]
    assert spool == ["SLUICE_SPOOL_DIR=/var/lib/sluice/spool"]
    # the state directory is the only writable path, and the spool is inside it
    assert kv["ReadWritePaths"] == ["/var/lib/sluice"]
    # SIGTERM gets more time than the drain's default grace (25 s) before SIGKILL
    assert int(kv["TimeoutStopSec"][0]) > 25


# ---------------------------------------------------------------- haproxy


def test_haproxy_config_is_valid():
    r = subprocess.run(["haproxy", "-c", "-f", os.path.join(DEPLOY, "haproxy.cfg")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Configuration file is valid" in r.stdout + r.stderr


def test_haproxy_config_checks_readyz_on_every_backend():
    text = read("deploy/haproxy.cfg")
    backends = re.findall(r"^backend (\S+)\n(.*?)(?=^\S|\Z)", text, re.M | re.S)
    names = {b for b, _ in backends}
    assert {"sluice_https", "sluice_syslog_tls", "sluice_syslog"} <= names, names
    for name, body in backends:
        assert "uri /readyz" in body and "expect status 200" in body, name
        assert len(re.findall(r"^\s+server \S+ \S+:\d+", body, re.M)) == 3, name
    binds = set(re.findall(r"^\s+bind :(\d+)", text, re.M))
    assert {"443", "6514", "601"} <= binds, binds


# ---------------------------------------------------------------- containers, Heroku


def dockerfile_stages(text):
    text = re.sub(r"\\\n\s*", " ", text)  # continuation lines
    stages = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        op, _, arg = line.partition(" ")
        if op.upper() == "FROM":
            stages.append({"FROM": arg, "ops": []})
        else:
            stages[-1]["ops"].append((op.upper(), arg.strip()))
    return stages


def test_dockerfile_structure():
    """hadolint is not in Debian 12 and no container engine runs here: check the
    structure the docs promise, and that every Debian package named exists."""
    stages = dockerfile_stages(read("deploy/Dockerfile"))
    assert len(stages) == 2, "multi-stage: build, then runtime"
    assert all(s["FROM"].startswith("debian:12") for s in stages), [s["FROM"] for s in stages]
    final = dict()
    for op, arg in stages[1]["ops"]:
        final.setdefault(op, []).append(arg)
    user = final["USER"][-1].split(":")[0]
    assert user not in ("root", "0"), user
    assert any("--from=build" in a and "/usr/local/bin/sluice" in a for a in final["COPY"])
    assert "/healthz" in final["HEALTHCHECK"][0]
    spool = re.search(r"SLUICE_SPOOL_DIR=(\S+)", " ".join(final["ENV"])).group(1)
    assert json.loads(final["VOLUME"][0]) == [spool]
    assert final["STOPSIGNAL"] == ["SIGTERM"]
    assert "ENTRYPOINT" not in final  # heroku.yml and compose run commands through a shell
    assert json.loads(final["CMD"][0]) == ["/usr/local/bin/sluice", "serve"]
    # the packages: build ones are the -dev packages deploy/deps.sh installs here too
    deps = read("deploy/deps.sh")
    for i, stage in enumerate(stages):
        runs = " ".join(a for op, a in stage["ops"] if op == "RUN")
        pkgs = re.search(r"--no-install-recommends (.*?)&&", runs).group(1).split()
        for p in pkgs:
            if i == 0:
                assert re.search(rf"\b{re.escape(p)}\b", deps), f"{p} not in deploy/deps.sh"
        # one apt-cache for the stage: it answers for each package it knows
        r = subprocess.run(["apt-cache", "show", "--no-all-versions", *pkgs],
                           capture_output=True, text=True, timeout=120)
        known = set(re.findall(r"^Package: (\S+)$", r.stdout, re.M))
        assert set(pkgs) <= known, f"no Debian package {sorted(set(pkgs) - known)}"


def test_compose_runs_migrate_then_sluice_with_a_spool_volume():
    c = yaml.safe_load(read("deploy/compose.yaml"))
    svc = c["services"]
    assert svc["postgres"]["image"].startswith("postgres:15")
    assert svc["migrate"]["command"] == ["sluice", "migrate"]
    assert svc["migrate"]["build"]["dockerfile"] == "deploy/Dockerfile"
    s = svc["sluice"]
    assert s["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert svc["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "spool:/var/lib/sluice/spool" in s["volumes"]
    assert "spool" in c["volumes"]
    assert int(s["stop_grace_period"].rstrip("s")) >= 30
    assert "postgres:5432/sluice" in s["environment"]["DATABASE_URL"]
    assert s["environment"]["SLUICE_TLS_CERT"].startswith("/run/secrets/")


def test_heroku_manifest_and_app_json():
    h = yaml.safe_load(read("heroku.yml"))
    assert h["build"]["docker"]["web"] == "deploy/Dockerfile"
    assert os.path.exists(os.path.join(ROOT, h["build"]["docker"]["web"]))
    assert h["release"]["image"] == "web" and h["release"]["command"] == ["sluice migrate"]
    assert h["run"]["web"] == "sluice serve"
    a = json.loads(read("app.json"))
    assert a["stack"] == "container"
    assert any(x["plan"].startswith("heroku-postgresql") and x.get("as") == "DATABASE"
               for x in a["addons"])
    # Heroku sends SIGKILL 30 s after SIGTERM
    assert int(a["env"]["SLUICE_SHUTDOWN_GRACE"]["value"]) < 30
    assert a["env"]["SLUICE_SPOOL_DIR"]["value"].startswith("/tmp/")
    procfile = read("deploy/Procfile")
    assert "release: bin/sluice migrate" in procfile and "web: bin/sluice serve" in procfile


# ---------------------------------------------------------------- sd_notify


class NotifySocket:
    """A datagram socket standing in for systemd's notification socket."""

    def __init__(self, directory):
        self.path = os.path.join(directory, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages = []

    def wait(self, pred, timeout, what):
        deadline = time.monotonic() + timeout
        while True:
            for m in self.messages:
                if pred(m):
                    return m
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"no {what} on NOTIFY_SOCKET in {timeout}s; got {self.messages}")
            self.sock.settimeout(left)
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except socket.timeout:
                pass

    def close(self):
        self.sock.close()


def pg_admin(pg, sql):
    """One statement on the cluster's postgres database (CREATE/DROP DATABASE)."""
    conn = pg.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


def late_database(pg, name):
    pg_admin(pg, f'DROP DATABASE IF EXISTS "{name}"')
    return pg.db_url(name)


def create_and_migrate(pg, name):
    pg_admin(pg, f'CREATE DATABASE "{name}" TEMPLATE template0')
    r = subprocess.run([SLUICE, "migrate"], env=dict(os.environ, DATABASE_URL=pg.db_url(name)),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_sd_notify_ready_after_listeners_and_database_stopping_on_sigterm(sluice, pg):
    d = tempfile.mkdtemp(prefix="notify.")
    ns = NotifySocket(d)
    try:
        name = "e2e_deploy_late_db"
        url = late_database(pg, name)
        # The database does not exist yet: sluice starts, binds and serves (/healthz
        # answered before start() returns) but must not say READY=1.
        s = sluice(DATABASE_URL=url, NOTIFY_SOCKET=ns.path, WATCHDOG_USEC="200000")
        ns.wait(lambda m: "STATUS=waiting for PostgreSQL" in m, 20, "waiting status")
        assert not any("READY=1" in m for m in ns.messages), ns.messages
        assert s.get("/readyz").status == 503
        create_and_migrate(pg, name)
        ready = ns.wait(lambda m: "READY=1" in m, 30, "READY=1")
        assert f"MAINPID={s.proc.pid}" in ready.split("\n"), ready
        # ready means every listener accepts
        for port in (s.http_port, s.https_port, s.syslog_tls_port, s.syslog_port):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        assert not any("STOPPING=1" in m for m in ns.messages)
        # WatchdogSec: the loop says it is alive at half the interval
        seen = len([m for m in ns.messages if m == "WATCHDOG=1"])
        ns.wait(lambda m: len([x for x in ns.messages if x == "WATCHDOG=1"]) >= seen + 2, 20,
                "two more WATCHDOG=1")
        s.proc.send_signal(signal.SIGTERM)
        ns.wait(lambda m: m == "STOPPING=1", 20, "STOPPING=1")
        assert s.proc.wait(timeout=30) == 0
    finally:
        ns.close()
        shutil.rmtree(d, ignore_errors=True)


# ---------------------------------------------------------------- load


def start_load(server, src, n=2):
    senders = [LogplexSender(f"s{i}", server.https_port, src.name, src.token, server.tls.cert)
               for i in range(n)]
    for t in senders:
        t.start()
    return senders


def acked_total(senders):
    return sum(len(t.acked) for t in senders)


def wait_more_acked(senders, more, timeout=30):
    target = acked_total(senders) + more
    wait_for(lambda: acked_total(senders) >= target, timeout, interval=0.05,
             what=f"{more} more acknowledged frames")


def stop_load(senders):
    for t in senders:
        t.stop.set()
    for t in senders:
        t.join(timeout=60)
        assert not t.is_alive()


def assert_exactly_once(db, src, senders, timeout=30):
    """No refused connection, no dropped frame, each acknowledged frame stored once."""
    for t in senders:
        assert t.refused == 0, f"{t.name}: {t.refused} refused connections: {t.errors[:20]}"
        assert t.dropped == [], f"{t.name}: dropped frames {t.dropped[:20]}: {t.errors[:20]}"
    want = set().union(*(t.messages() for t in senders))

    def stored():
        rows = db.query("SELECT message, count(*) AS n FROM logs WHERE source_id = %s "
                        "GROUP BY message", (src.id,))
        got = {r["message"].strip(): r["n"] for r in rows}
        return got if want <= set(got) else None

    got = wait_for(stored, timeout, what=f"{len(want)} acknowledged frames in PostgreSQL")
    dups = {m: n for m, n in got.items() if n != 1}
    assert dups == {}, f"stored more than once: {list(dups.items())[:10]}"
    return got


# ---------------------------------------------------------------- upgrade and restart


def set_subreaper():
    """Processes an upgraded sluice leaves behind are re-parented to this test process
    (not to PID 1), so it can wait for them and read their exit status."""
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER


def wait_exit(pid, timeout=40):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.02)
    pytest.fail(f"process {pid} did not exit within {timeout}s")


def upgraded_pids(server):
    return [int(p) for p in re.findall(r'msg="upgrade: new process started" pid=(\d+)',
                                       server.log_tail(100000))]


def test_binary_upgrade_under_load_refuses_nothing_and_stores_each_frame_once(sluice, db):
    s = sluice(SLUICE_SHUTDOWN_GRACE="10")
    src = s.add_source()
    set_subreaper()
    pids = [s.proc.pid]
    senders = start_load(s, src)
    try:
        wait_more_acked(senders, 30)
        for n in range(2):  # the first process, then the one it started
            os.kill(pids[-1], signal.SIGUSR2)
            wait_for(lambda: len(upgraded_pids(s)) == n + 1, 30, interval=0.02,
                     what="the new process")
            new = upgraded_pids(s)[-1]
            if n == 0:
                assert s.proc.wait(timeout=40) == 0, s.log_tail()
            else:
                assert wait_exit(pids[-1]) == 0, s.log_tail()
            pids.append(new)
            wait_more_acked(senders, 30)  # the new process serves
        stop_load(senders)
        assert "handing over" in s.log_tail(100000)
        assert_exactly_once(db, src, senders)
        os.kill(pids[-1], signal.SIGTERM)
        assert wait_exit(pids[-1]) == 0
    finally:
        stop_load(senders) if any(t.is_alive() for t in senders) else None
        for pid in pids[1:]:
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass


def test_sigterm_under_load_exits_zero_with_the_spool_flushed(sluice, db):
    s = sluice()
    src = s.add_source()
    senders = start_load(s, src, n=3)
    try:
        wait_more_acked(senders, 60)
        s.proc.send_signal(signal.SIGTERM)
        assert s.proc.wait(timeout=40) == 0, s.log_tail()
    finally:
        for t in senders:
            t.stop.set()
        for t in senders:
            t.join(timeout=60)
    # frames cut by the shutdown were never acknowledged: they are the sender's to retry
    # elsewhere (logplex would); every acknowledged one is already in PostgreSQL.
    assert re.search(r'msg="stopped" unwritten_bytes=0\b', s.log_tail()), s.log_tail()
    want = set().union(*(t.messages() for t in senders))
    rows = db.query("SELECT message, count(*) AS n FROM logs WHERE source_id = %s GROUP BY message",
                    (src.id,))
    got = {r["message"].strip(): r["n"] for r in rows}
    assert want <= set(got), f"{len(want - set(got))} acknowledged frames missing"
    assert all(n == 1 for n in got.values())


def test_restart_on_sockets_held_by_a_manager_refuses_nothing(db, tls, workdir):
    """systemd socket activation (deploy/sluice.socket): the manager holds the listening
    sockets and passes them (LISTEN_FDS) to each start, so a stop-then-start queues
    connections instead of refusing them. The test is the manager here."""
    from conftest import add_source
    d = tempfile.mkdtemp(prefix="sockact.", dir=workdir)
    socks = []
    for _ in range(2):  # http, https
        sk = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sk.bind(("127.0.0.1", 0))
        sk.listen(1024)
        socks.append(sk)
    http_port, https_port = (sk.getsockname()[1] for sk in socks)
    held = [os.dup2(sk.fileno(), 50 + i) or 50 + i for i, sk in enumerate(socks)]
    env = dict(os.environ, DATABASE_URL=db.url, SLUICE_BIND="127.0.0.1", PORT=str(http_port),
               SLUICE_HTTPS_PORT=str(https_port), SLUICE_SPOOL_DIR=os.path.join(d, "spool"),
               SLUICE_TLS_CERT=tls.cert, SLUICE_TLS_KEY=tls.key, SLUICE_SHUTDOWN_GRACE="10",
               LISTEN_FDS="2", LISTEN_FDNAMES="http:https")
    log_path = os.path.join(d, "stderr.log")
    # LISTEN_PID must be the server's own pid: bash sets it, then becomes sluice
    script = 'export LISTEN_PID=$$; exec "$0" serve 3<&50 4<&51 50<&- 51<&-'

    def start():
        with open(log_path, "ab") as log:
            return subprocess.Popen(["/bin/bash", "-c", script, SLUICE], env=env, pass_fds=held,
                                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)

    def log():
        with open(log_path, encoding="utf-8", errors="replace") as f:
            return f.read()[-6000:]

    class Target:  # what start_load needs of a server
        pass
    t = Target()
    t.https_port, t.tls = https_port, tls
    src = add_source(db)  # before the first start: loaded at start
    procs = [start()]
    senders = []
    try:
        senders = start_load(t, src)
        wait_more_acked(senders, 30)
        for _ in range(2):
            procs[-1].send_signal(signal.SIGTERM)
            assert procs[-1].wait(timeout=40) == 0, log()
            procs.append(start())
            wait_more_acked(senders, 30)
        stop_load(senders)
        assert log().count('msg="listening on a passed socket" listener=https') >= 3, log()
        assert_exactly_once(db, src, senders)
    finally:
        for s in senders:
            s.stop.set()
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        for fd in held:
            os.close(fd)
        for sk in socks:
            sk.close()


def served_cert(port):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw) as t:
            return t.getpeercert(binary_form=True)


def test_upgrade_reloads_the_certificate_and_a_failed_one_keeps_the_old_process(sluice, tmp_path):
    """A reload (SIGUSR2) is how a renewed certificate is taken: the new process reads the
    files again. A new process that cannot start (here: a broken key) leaves the old one
    serving, its listeners open."""
    cert, key = str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")
    subprocess.run([os.path.join(DEPLOY, "cert.sh"), str(tmp_path / "a")], check=True, timeout=60)
    shutil.copy(str(tmp_path / "a" / "tls" / "cert.pem"), cert)
    shutil.copy(str(tmp_path / "a" / "tls" / "key.pem"), key)
    s = sluice(SLUICE_TLS_CERT=cert, SLUICE_TLS_KEY=key)
    set_subreaper()
    pids = [s.proc.pid]
    try:
        before = served_cert(s.https_port)
        with open(key, "w") as f:
            f.write("not a key\n")
        os.kill(s.proc.pid, signal.SIGUSR2)
        wait_for(lambda: "upgrade failed" in s.log_tail(), 30, what="the failed upgrade")
        assert s.proc.poll() is None
        assert served_cert(s.https_port) == before
        assert s.get("/readyz").status == 200
        # a renewed certificate (a new key pair), then a reload
        subprocess.run([os.path.join(DEPLOY, "cert.sh"), str(tmp_path / "b")], check=True,
                       timeout=60)
        shutil.copy(str(tmp_path / "b" / "tls" / "key.pem"), key)
        shutil.copy(str(tmp_path / "b" / "tls" / "cert.pem"), cert)
        os.kill(s.proc.pid, signal.SIGUSR2)
        wait_for(lambda: len(upgraded_pids(s)) == 2, 30, what="the second new process")
        pids.append(upgraded_pids(s)[-1])
        assert s.proc.wait(timeout=40) == 0, s.log_tail()
        after = served_cert(s.https_port)
        assert after != before
        with open(cert) as f:
            assert ssl.DER_cert_to_PEM_cert(after).strip() == f.read().strip()
        os.kill(pids[-1], signal.SIGTERM)
        assert wait_exit(pids[-1]) == 0
    finally:
        for pid in pids[1:]:
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
