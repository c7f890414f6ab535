"""The repository tests itself alone: a clone with nothing beside it (no ../shared) finds
every fixture under tests/fixtures, and the fixtures are what tests/fixtures/gen_corpus.py
writes.

Regression for issue 12 ("a fresh clone cannot pass make test"): the corpus-reading unit
binaries and the e2e collection used to read ../shared/corpus, which exists only beside
the developers' checkout.
"""

import filecmp
import os
import shutil
import subprocess
import sys

import pytest

from conftest import BUILD, ROOT

FIXTURES = os.path.join(ROOT, "tests", "fixtures")
CORPUS_USERS = ["test_frame", "test_rfc5424", "test_match"]


def _tracked_copy(dst):
    """Copies the files git tracks (as they are in the work tree) to dst: what a clone holds."""
    names = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True,
                           capture_output=True).stdout.split(b"\0")
    for raw in names:
        if not raw:
            continue
        rel = raw.decode()
        src = os.path.join(ROOT, rel)
        if not os.path.exists(src):  # deleted in the work tree, not yet committed
            continue
        os.makedirs(os.path.dirname(os.path.join(dst, rel)), exist_ok=True)
        shutil.copy2(src, os.path.join(dst, rel))


@pytest.fixture(scope="module")
def lone_clone(tmp_path_factory):
    base = tmp_path_factory.mktemp("lone")
    clone = base / "sluice"
    _tracked_copy(str(clone))
    assert not (base / "shared").exists()
    return str(clone)


def _env_without_corpus():
    env = dict(os.environ)
    env.pop("SLUICE_CORPUS", None)
    return env


def test_generator_writes_the_fixtures(tmp_path):
    out = tmp_path / "corpus"
    subprocess.run([sys.executable, os.path.join(FIXTURES, "gen_corpus.py"), str(out)],
                   check=True, capture_output=True)
    want = os.path.join(FIXTURES, "corpus")
    for dirpath, _, files in os.walk(out):
        for name in files:
            rel = os.path.relpath(os.path.join(dirpath, name), out)
            assert filecmp.cmp(os.path.join(out, rel), os.path.join(want, rel), shallow=False), rel
    written = {os.path.relpath(os.path.join(d, f), out) for d, _, fs in os.walk(out) for f in fs}
    kept = {os.path.relpath(os.path.join(d, f), want) for d, _, fs in os.walk(want) for f in fs}
    assert kept - written == {"README.md"}


@pytest.mark.parametrize("name", CORPUS_USERS)
def test_corpus_unit_tests_pass_in_a_lone_clone(lone_clone, name):
    binary = os.path.join(ROOT, BUILD, "tests", name)
    if not os.access(binary, os.X_OK):
        pytest.fail(f"{binary} is not built (make test builds it)")
    r = subprocess.run([binary], cwd=lone_clone, env=_env_without_corpus(),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "[  PASSED  ]" in r.stdout + r.stderr


def test_e2e_suite_collects_in_a_lone_clone(lone_clone):
    r = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                        "--collect-only", "-q", "tests/e2e"],
                       cwd=lone_clone, env=_env_without_corpus(), capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "error" not in r.stdout.lower().split("\n")[-2], r.stdout[-2000:]
    # The fixtures really are read from the clone: its conftest names its own folder.
    r = subprocess.run([sys.executable, "-c",
                        "import sys; sys.path.insert(0, 'tests/e2e'); import conftest; "
                        "print(conftest.CORPUS)"],
                       cwd=lone_clone, env=_env_without_corpus(), capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == os.path.join(os.path.realpath(lone_clone), "tests", "fixtures",
                                            "corpus")
