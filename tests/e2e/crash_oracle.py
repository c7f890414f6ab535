"""The crash assembler's oracle: real programs, the official SDKs, and a comparison.

The programs under tests/crash/<runtime>/ crash in several ways. Each one prints its trace
exactly as its runtime (or its framework's logger) prints it, and captures the same
exception in-process with the official SDK (Python: python3-sentry-sdk; Ruby:
ruby-sentry-ruby; Go: Debian's sentry-go; Node: @sentry/node from npm), whose event JSON
it writes to a file. The JVM has no SDK in Debian: its program writes what a Sentry SDK
reads from the exception (getCause chain, getStackTrace, getSuppressed).

`run(runtime, scenario)` gives both: the printed lines (what a dyno's log would carry) and
the SDK's event. `comparable(event, ...)` reduces a Sentry event (the SDK's or sluice's) to
the part that must agree: exception types and values, chain order, and per frame
(path, function, lineno, in_app; and colno for Node, whose SDK has it). `differences(expected, got)` lists what differs.

What is normalised, and why (docs/internals/crash-oracle.md says the same):
- The program's directory is shown as /app, Heroku's app root, in the printed lines and in
  the SDK's paths alike (the same rewrite on both sides: where the program ran is not part
  of the trace).
- A frame's path is its abs_path, else its filename; a relative one (Rails' application
  trace prints paths relative to the root) is read against /app. The SDKs all give
  abs_path; which of the two fields sluice fills is representation.
- A type is qualified by its module when the event carries one apart (Python SDK:
  type "CheckoutError", module "shop.orders"; the printed trace says
  "shop.orders.CheckoutError"); builtins are unqualified.
- A function is qualified by its module for Go ("main" + "(*Cart).Item" is the printed
  "main.(*Cart).Item") and for the JVM (class + method), where the SDKs split it.
- Node: "<anonymous>" is "?" (the Node SDK's spelling of the same thing).
- An absent value (a Java exception without a message) is "".
- A stack longer than Sentry keeps: when sluice's stacktrace says which frames it left out
  (the protocol's `frames_omitted`, [start, end)), the SDK's frames are compared with the
  same range left out, and the numbers must add up.
Nothing else: values are compared byte for byte, frames one by one, in_app as a bool.

Only the Rails scenario compares fewer frames than the SDK has: Rails' log prints only the
application trace (in_app frames under app/, config/, lib/); the framework's frames are
not in the log at all, so no reader of the log can know them.
"""

import json
import os
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.realpath(os.path.join(HERE, "..", ".."))
CRASH = os.path.join(ROOT, "tests", "crash")
APP_ROOT = "/app"

# (runtime, scenario): every crash the programs make.
SCENARIOS = [
    ("python", "nested"), ("python", "raise_from"), ("python", "implicit"),
    ("python", "stdlib"), ("python", "site_packages"), ("python", "multiline"),
    ("python", "group"), ("python", "logged"), ("python", "gunicorn"), ("python", "burst"),
    ("python", "syntax"), ("python", "recursion"),
    ("go", "nested"), ("go", "goroutine"), ("go", "nilptr"), ("go", "divzero"),
    ("go", "nilmap"), ("go", "assert"),
    ("ruby", "nested"), ("ruby", "chained"), ("ruby", "multiline"), ("ruby", "thread"),
    ("ruby", "rails"),
    ("node", "typeerror"), ("node", "async"), ("node", "cause"), ("node", "node_modules"),
    ("node", "custom"), ("node", "timer"), ("node", "esm"), ("node", "logged"),
    ("node", "multiline"),
    ("java", "nested"), ("java", "caused_by"), ("java", "suppressed"), ("java", "thread"),
    ("java", "logged"), ("java", "burst"), ("java", "multiline"), ("java", "overflow"),
]

PLATFORM = {"python": "python", "go": "go", "ruby": "ruby", "node": "node", "java": "java"}


class Programs:
    """Builds what needs building once (into build_dir) and runs the programs."""

    def __init__(self, build_dir, npm_prefix):
        self.dir = os.path.join(build_dir, "crash-oracle")
        self.npm = npm_prefix
        os.makedirs(self.dir, exist_ok=True)
        self.go_bin = os.path.join(self.dir, "crash-go")
        self.java_classes = os.path.join(self.dir, "java")
        self._build()

    def _build(self):
        env = dict(os.environ, GOPATH="/usr/share/gocode", GO111MODULE="off",
                   GOCACHE=os.path.join(self.dir, "gocache"), GOFLAGS="")
        r = subprocess.run(["go", "build", "-o", self.go_bin, "."], cwd=self.root("go"),
                           env=env, capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            raise RuntimeError(f"go build (GOPATH=/usr/share/gocode, Debian's sentry-go) "
                               f"failed:\n{r.stdout}{r.stderr}")
        r = subprocess.run(["javac", "-d", self.java_classes,
                            os.path.join("com", "example", "shop", "Crash.java")],
                           cwd=self.root("java"), capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            raise RuntimeError(f"javac failed:\n{r.stdout}{r.stderr}")

    @staticmethod
    def root(runtime):
        return os.path.join(CRASH, runtime)

    def command(self, runtime, scenario, out):
        root = self.root(runtime)
        if runtime == "python":
            return ["/usr/bin/python3", os.path.join(root, "crash.py"), scenario]
        if runtime == "go":
            return [self.go_bin, scenario]
        if runtime == "ruby":
            return ["ruby", os.path.join(root, "bin", "crash.rb"), scenario]
        if runtime == "node":
            return ["node", os.path.join(root, "crash.js"), scenario]
        return ["java", "-cp", self.java_classes, "com.example.shop.Crash", scenario, out]

    def run(self, runtime, scenario):
        """Runs one scenario; returns (printed text with the root shown as /app, the SDK's
        events in the order it captured them: one per crash).
        stdout and stderr are merged, as a dyno's log merges them."""
        out = os.path.join(self.dir, f"{runtime}-{scenario}.json")
        if os.path.exists(out):
            os.unlink(out)
        root = self.root(runtime)
        env = dict(os.environ, SENTRY_OUT=out, PYTHONDONTWRITEBYTECODE="1",
                   NODE_PATH=os.path.join(self.npm, "node_modules"))
        r = subprocess.run(self.command(runtime, scenario, out), cwd=root, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
        printed = r.stdout.decode()
        # Every scenario crashes the process except the ones that log a handled error.
        # (A JVM whose worker thread died exits 0 once main returns.)
        handled = (runtime, scenario) in (
            ("python", "logged"), ("python", "gunicorn"), ("python", "burst"), ("ruby", "rails"),
            ("node", "logged"), ("java", "thread"), ("java", "logged"), ("java", "burst"))
        if (r.returncode == 0) != handled:
            raise RuntimeError(f"{runtime} {scenario}: exit status {r.returncode}:\n{printed}")
        if not os.path.exists(out):
            raise RuntimeError(f"{runtime} {scenario}: the SDK wrote no event:\n{printed}")
        with open(out, encoding="utf-8") as f:
            events = [json.loads(line) for line in f if line.strip()]
        if not events:
            raise RuntimeError(f"{runtime} {scenario}: the SDK captured nothing")
        return rebase(printed, root), events


def rebase(text, root):
    """Shows the program's directory as Heroku's app root, /app."""
    return text.replace(root.rstrip("/") + "/", APP_ROOT + "/")


def _path(frame, root):
    p = frame.get("abs_path") or frame.get("filename")
    if p is None:
        return None
    if root and p.startswith(root.rstrip("/") + "/"):
        p = APP_ROOT + p[len(root.rstrip("/")):]
    if not p.startswith("/") and ":" not in p.split("/")[0] and not p.startswith("<"):
        p = APP_ROOT + "/" + p
    return p


_BUILTIN_MODULES = {None, "", "builtins", "__builtin__", "exceptions"}


def _type(exc):
    t, m = exc.get("type") or "", exc.get("module")
    # (a Go pointer type names its package after the star: "*runtime.TypeAssertionError")
    if m in _BUILTIN_MODULES or t.lstrip("*").startswith(m + "."):
        return t
    return f"{m}.{t}"


def _function(frame, runtime):
    fn = frame.get("function")
    mod = frame.get("module")
    if runtime in ("go", "java") and mod and fn and not fn.startswith(mod + "."):
        fn = f"{mod}.{fn}"
    if runtime == "node" and fn:
        fn = fn.replace("<anonymous>", "?")
    return fn


def _frames(exc):
    st = exc.get("stacktrace") or {}
    if "frames" in exc:  # the JVM program's own JSON
        return exc["frames"]
    return st.get("frames") or []


def comparable(event, runtime, scenario, root=None):
    """The part of a Sentry event that the SDK and sluice must agree on. root: the
    program's real directory (the SDK's paths carry it; sluice's already show /app)."""
    excs = event.get("exception") or {}
    if isinstance(excs, dict):
        excs = excs.get("values") or []
    # else sentry-go's form: "exception" is the list of values itself (Sentry takes both)
    out = []
    for e in excs:
        frames = []
        for f in _frames(e):
            frames.append({"path": _path(f, root) if runtime != "java" else f.get("filename"),
                           "function": _function(f, runtime),
                           "lineno": f.get("lineno"),
                           # Only the Node SDK has columns (V8 prints them)
                           "colno": f.get("colno") if runtime == "node" else None,
                           "in_app": f.get("in_app")})
        if runtime == "ruby" and scenario == "rails" and root is not None:
            # The SDK's side only: Rails logs the application trace alone.
            frames = [f for f in frames if f["in_app"] and f["path"].startswith(
                tuple(f"{APP_ROOT}/{d}/" for d in ("app", "config", "lib")))]
        # An exception without a message: absent (sentry-java, a null getMessage()) and
        # "" are the same to Sentry.
        omitted = (e.get("stacktrace") or {}).get("frames_omitted")
        out.append({"type": _type(e), "value": e.get("value") or "", "frames": frames,
                    "frames_omitted": omitted})
    return {"exceptions": out}


def event_differences(expected, got):
    """The differences between two lists of comparable() results (one per crash, in
    order); a single pair's are not prefixed."""
    if len(expected) != len(got):
        return [f"{len(expected)} SDK events vs {len(got)} sluice events"]
    if len(expected) == 1:
        return differences(expected[0], got[0])
    return [f"event[{i}] {d}" for i, (e, g) in enumerate(zip(expected, got))
            for d in differences(e, g)]


def differences(expected, got):
    """Human-readable list of the differences between two comparable() results."""
    diffs = []
    ee, ge = expected["exceptions"], got["exceptions"]
    if [e["type"] for e in ee] != [g["type"] for g in ge]:
        diffs.append(f"chain: SDK {[e['type'] for e in ee]} vs sluice {[g['type'] for g in ge]}")
    for i, (e, g) in enumerate(zip(ee, ge)):
        where = f"exception[{i}] {e['type']}"
        if e["type"] != g["type"]:
            diffs.append(f"{where}: type {e['type']!r} vs {g['type']!r}")
        if e["value"] != g["value"]:
            diffs.append(f"{where}: value {e['value']!r} vs {g['value']!r}")
        eframes = e["frames"]
        om = g.get("frames_omitted")
        if om and not e.get("frames_omitted"):
            # sluice trimmed a long stack the way Sentry does and said which frames it
            # left out (the protocol's frames_omitted, [start, end)): the SDK's frames
            # compare with the same range left out, and the counts must add up.
            start, end = om
            if not (0 <= start <= end <= len(eframes)) or \
                    len(eframes) - (end - start) != len(g["frames"]):
                diffs.append(f"{where}: frames_omitted {om} does not fit {len(eframes)} SDK "
                             f"frames and {len(g['frames'])} sent")
            else:
                eframes = eframes[:start] + eframes[end:]
        if len(eframes) != len(g["frames"]):
            diffs.append(f"{where}: {len(eframes)} frames vs {len(g['frames'])}")
        for j, (ef, gf) in enumerate(zip(eframes, g["frames"])):
            for k in ("path", "function", "lineno", "colno", "in_app"):
                if ef[k] != gf[k]:
                    diffs.append(f"{where} frame[{j}] {k}: {ef[k]!r} vs {gf[k]!r}")
        for j in range(len(g["frames"]), len(eframes)):
            diffs.append(f"{where} frame[{j}] missing in sluice: {eframes[j]}")
        for j in range(len(eframes), len(g["frames"])):
            diffs.append(f"{where} frame[{j}] extra in sluice: {g['frames'][j]}")
    return diffs
