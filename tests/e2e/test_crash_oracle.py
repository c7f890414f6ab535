"""The crash assembler against the official SDKs (issue 11; docs/internals/crash-oracle.md).

Small real programs (tests/crash/<runtime>/) crash in several ways; each prints its trace
as its runtime prints it and captures the same exception with the official Sentry SDK
(crash_oracle.py runs them and reduces both events to what must agree).

1. Fast level: each program's printed lines, as one process's log lines, through
   $BUILD/crash_parse (drain/crash.c's assembler and event writer): exactly one event,
   equal to the SDK's on exception types and values, chain order and every frame's
   (path, function, lineno, in_app).
2. The stream corpus (tests/fixtures/corpus/streams): the lines of each crashing dyno, with
   everything else that dyno printed around the crash, give exactly one event with the
   right type, value and frame count.
3. End to end through a real drain into sluice and a local fake Sentry: see the module's
   end (it needs the crash thread and its sending).

A difference that is a real assembler bug is written to the findings file the assembler's
author reads (docs/internals/crash-oracle.md); the comparison is never loosened for it.
"""

import concurrent.futures
import json
import os
import re
import subprocess

import pytest

import crash_oracle as oracle
from conftest import BUILD, ROOT, corpus_path, frames, npm_install

CRASH_PARSE = os.path.join(ROOT, BUILD, "crash_parse")


@pytest.fixture(scope="session")
def runs():
    """Every scenario run once per session (in parallel; the Go and JVM programs are built
    once into $BUILD/crash-oracle): {(runtime, scenario): (printed text, SDK event)}."""
    prefix = npm_install("@sentry/node")
    try:
        progs = oracle.Programs(os.path.join(ROOT, BUILD), prefix)
    except (OSError, RuntimeError) as e:
        pytest.fail(f"building the crash programs failed (deploy/deps.sh installs golang, "
                    f"golang-github-getsentry-sentry-go-dev, default-jdk-headless): {e}")
    with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
        futs = {k: pool.submit(progs.run, *k) for k in oracle.SCENARIOS}
        out = {}
        for k, f in futs.items():
            try:
                out[k] = f.result()
            except (OSError, RuntimeError, subprocess.TimeoutExpired) as e:
                out[k] = e
    return progs, out


def run_of(runs, runtime, scenario):
    progs, out = runs
    r = out[(runtime, scenario)]
    if isinstance(r, Exception):
        pytest.fail(f"{runtime} {scenario}: the program did not run as expected: {r}")
    printed, sdk = r
    return printed, oracle.comparable(sdk, runtime, scenario, progs.root(runtime))


def crash_parse(lines):
    """One process's log lines through $BUILD/crash_parse; its events (one per crash)."""
    if not os.path.exists(CRASH_PARSE):
        pytest.fail(f"{CRASH_PARSE} is not built (make)")
    r = subprocess.run([CRASH_PARSE], input="".join(line + "\n" for line in lines),
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, f"crash_parse: exit {r.returncode}: {r.stderr}"
    return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]


def printed_lines(printed):
    """The log lines a dyno's output becomes: one message per line."""
    return printed.rstrip("\n").split("\n")


# ---------------------------------------------------------------- the oracle itself


@pytest.mark.parametrize("runtime,scenario", oracle.SCENARIOS,
                         ids=[f"{r}-{s}" for r, s in oracle.SCENARIOS])
def test_the_sdk_captured_what_the_runtime_printed(runs, runtime, scenario):
    """Guards the oracle: the SDK's event and the printed trace describe the same crash
    (every exception value's first line and every app frame's line number is printed)."""
    printed, sdk = run_of(runs, runtime, scenario)
    assert sdk["exceptions"], f"the SDK's event has no exception: {sdk}"
    for exc in sdk["exceptions"]:
        if runtime != "go":  # Go prints the panic's value, never its type
            assert exc["type"].rsplit(".", 1)[-1] in printed, (exc["type"], printed)
        assert exc["value"].split("\n")[0] in printed, (exc["value"], printed)
        assert exc["frames"], f"{exc['type']}: no frames"
        for f in exc["frames"]:
            if f["in_app"] and f["lineno"]:
                assert re.search(rf"\b{f['lineno']}\b", printed), (f, printed)


# ---------------------------------------------------------------- 1. fast level


@pytest.mark.parametrize("runtime,scenario", oracle.SCENARIOS,
                         ids=[f"{r}-{s}" for r, s in oracle.SCENARIOS])
def test_crash_parse_matches_the_sdk(runs, runtime, scenario):
    printed, sdk = run_of(runs, runtime, scenario)
    events = crash_parse(printed_lines(printed))
    assert len(events) == 1, (f"{len(events)} events from one crash:\n{printed}\n"
                              f"{json.dumps(events, indent=1)[:3000]}")
    ev = events[0]
    assert ev.get("platform") == oracle.PLATFORM[runtime], ev.get("platform")
    got = oracle.comparable(ev, runtime, scenario)
    diffs = oracle.differences(sdk, got)
    assert not diffs, "sluice's event differs from the SDK's:\n  " + "\n  ".join(diffs) + \
        f"\nprinted:\n{printed}"


# ---------------------------------------------------------------- 2. the stream corpus

# What each crash of the corpus is, as the SDK of its runtime would report it (the Go SDK
# types a nil dereference "runtime.errorString": see the go-nilptr scenario).
CORPUS_CRASHES = {
    "validibot": ("KeyError", "'energyplus'", 3),
    "packfinderz": ("runtime.errorString",
                    "runtime error: invalid memory address or nil pointer dereference", 3),
}


def corpus_apps():
    with open(corpus_path("streams", "manifest.json")) as f:
        return json.load(f)


def dyno_lines(app, proc):
    """Every message the dyno `proc` of the corpus app printed (app_name "app"), in order."""
    out = []
    for body in app["bodies"]:
        with open(corpus_path(body["file"]), "rb") as f:
            for m in frames(f.read()):
                # <pri>1 ts host app proc - msg
                parts = m.decode().split(" ", 6)
                if parts[3] == "app" and parts[4] == proc:
                    out.append(parts[6].rstrip("\n"))
    return out


@pytest.mark.parametrize("name", sorted(CORPUS_CRASHES))
def test_corpus_crash_is_one_event(name):
    apps = corpus_apps()
    assert set(apps) == set(CORPUS_CRASHES), "a corpus crash without an expectation here"
    app = apps[name]
    etype, value, nframes = CORPUS_CRASHES[name]
    crash = app["crash"]
    assert crash["exception_type_contains"] in f"{etype}: {value}"
    assert nframes >= crash["frames_at_least"]
    lines = dyno_lines(app, crash["proc"])
    assert crash["first_line"] in lines
    events = crash_parse(lines)
    assert len(events) == 1, json.dumps(events, indent=1)[:3000]
    excs = oracle.comparable(events[0], crash["platform"], "corpus")["exceptions"]
    assert [(e["type"], e["value"]) for e in excs] == [(etype, value)]
    assert len(excs[0]["frames"]) == nframes, excs[0]["frames"]
