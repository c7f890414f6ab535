"""docs/architecture.md stays true: its layer tables and its third-party table are checked
against the #include lines of drain/ and rules/ (issue 10: no arrow from a lower layer up
to a higher one; no module other than the ones the map names uses libpq, libevent,
OpenSSL or libcurl).

- Every drain/*.c, rules/*.c and private drain/*.h has a row in exactly one layer table,
  and every row names a file that exists.
- A file includes only headers of its own layer or a lower one. include/sluice/X.h is the
  header of the module X (drain/X.c or rules/X.c), or has a row of its own when no such
  module exists (header-only); buf.h, err.h and log.h belong to util.c.
- Each third-party library is included by exactly the files its row names, and no public
  header includes one (they keep libpq's and libevent's types opaque).
"""

import glob
import os
import re

import pytest

from conftest import ROOT

DOC = os.path.join(ROOT, "docs", "architecture.md")
UTIL_HEADERS = {"buf", "err", "log"}
LIBS = {
    "libevent": re.compile(r'#include\s*<event2/'),
    "libpq": re.compile(r'#include\s*<libpq-fe\.h>'),
    "OpenSSL": re.compile(r'#include\s*<openssl/'),
    "libcurl": re.compile(r'#include\s*<curl/'),
    "PCRE2": re.compile(r'#include\s*<pcre2\.h>'),
    "cJSON": re.compile(r'#include\s*<cjson/cJSON\.h>'),
    "zlib": re.compile(r'#include\s*<zlib\.h>'),
}


def _doc():
    with open(DOC, encoding="utf-8") as f:
        return f.read()


def _layers():
    """{path: layer number} from the '### N · name' tables."""
    layers, cur = {}, None
    for line in _doc().splitlines():
        m = re.match(r"^### (\d) · ", line)
        if m:
            cur = int(m.group(1))
            continue
        if line.startswith("## ") or line.startswith("### "):
            cur = None
            continue
        if cur is not None and line.startswith("| `"):
            path = line.split("`")[1]
            assert path not in layers, f"{path} has two rows in docs/architecture.md"
            layers[path] = cur
    return layers


def _sources():
    files = sorted(glob.glob(os.path.join(ROOT, "drain", "*.c")) +
                   glob.glob(os.path.join(ROOT, "rules", "*.c")) +
                   glob.glob(os.path.join(ROOT, "drain", "*.h")))
    return [os.path.relpath(f, ROOT) for f in files]


def _target(inc, layers):
    """The table path an include line points at."""
    if inc.startswith("sluice/"):
        name = inc[len("sluice/"):-2]
        if name in UTIL_HEADERS:
            return "drain/util.c"
        for d in ("drain", "rules"):
            if os.path.exists(os.path.join(ROOT, d, name + ".c")):
                return f"{d}/{name}.c"
        return "include/" + inc
    return "drain/" + inc  # a private header next to the .c files


def test_every_module_has_one_row_and_every_row_a_file():
    layers = _layers()
    assert layers, "no layer tables found in docs/architecture.md"
    missing = [f for f in _sources() if f not in layers]
    assert not missing, f"files without a row in docs/architecture.md: {missing}"
    gone = [p for p in layers if not os.path.exists(os.path.join(ROOT, p))]
    assert not gone, f"rows in docs/architecture.md for files that do not exist: {gone}"


def test_no_include_runs_up_a_layer():
    layers = _layers()
    bad = []
    for f in _sources():
        if f not in layers:  # reported by the test above
            continue
        with open(os.path.join(ROOT, f), encoding="utf-8") as fh:
            text = fh.read()
        for inc in re.findall(r'^#include\s+"([^"]+)"', text, re.M):
            t = _target(inc, layers)
            if t == f or t not in layers:
                if t not in layers:
                    bad.append(f"{f}: includes {inc}, which has no row ({t})")
                continue
            if layers[t] > layers[f]:
                bad.append(f"{f} (layer {layers[f]}) includes {inc} ({t}, layer {layers[t]})")
    assert not bad, "includes that run up a layer or name no module:\n" + "\n".join(bad)


def _lib_rows():
    rows = {}
    in_table = False
    for line in _doc().splitlines():
        if line.startswith("### Third-party libraries"):
            in_table = True
            continue
        if in_table and line.startswith("#"):
            break
        if in_table and line.startswith("| ") and not line.startswith("| library") \
                and not line.startswith("|---"):
            cells = line.split("|")
            rows[cells[1].strip()] = set(re.findall(r"`([^`]+)`", cells[2]))
    return rows


@pytest.mark.parametrize("lib", sorted(LIBS))
def test_third_party_library_owners(lib):
    rows = _lib_rows()
    assert lib in rows, f"no row for {lib} in docs/architecture.md"
    using = set()
    for f in _sources():
        with open(os.path.join(ROOT, f), encoding="utf-8") as fh:
            if LIBS[lib].search(fh.read()):
                using.add(f)
    assert using == rows[lib], (f"{lib}: included by {sorted(using)}, "
                                f"docs/architecture.md names {sorted(rows[lib])}")


def test_public_headers_include_no_third_party_library():
    bad = []
    for h in sorted(glob.glob(os.path.join(ROOT, "include", "sluice", "*.h"))):
        with open(h, encoding="utf-8") as fh:
            text = fh.read()
        for lib, pat in LIBS.items():
            if pat.search(text):
                bad.append(f"{os.path.relpath(h, ROOT)} includes {lib}")
    assert not bad, bad
