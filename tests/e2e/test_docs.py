"""The settings documentation stays true: every setting `sluice serve --help` lists is in
docs/configuration.md, and every variable the doc's table names is one the server reads."""

import os
import re
import subprocess

from conftest import ROOT, SLUICE


def test_every_setting_is_documented():
    out = subprocess.run([SLUICE, "serve", "--help"], capture_output=True, text=True,
                         check=True).stdout
    settings = set(re.findall(r"^  ([A-Z][A-Z0-9_]+) +--", out, re.M))
    assert "DATABASE_URL" in settings and "SLUICE_SPOOL_DIR" in settings, out
    with open(os.path.join(ROOT, "docs", "configuration.md")) as f:
        doc = f.read()
    table = set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", doc, re.M))
    assert settings - table == set(), f"settings missing from docs/configuration.md: {settings - table}"
    assert table - settings == set(), f"documented but not read by the server: {table - settings}"


def test_security_md_names_tests_that_exist():
    """docs/security.md names the test that holds each defence: each named test exists."""
    with open(os.path.join(ROOT, "docs", "security.md")) as f:
        text = f.read()
    refs = re.findall(r"`(test_\w+\.py)::(test_\w+)", text)
    assert len(refs) >= 10, refs
    missing = []
    for fname, test in refs:
        with open(os.path.join(ROOT, "tests", "e2e", fname)) as f:
            if not re.search(rf"^def {test}\b", f.read(), re.M):
                missing.append(f"{fname}::{test}")
    files = re.findall(r"`(test_\w+\.py)`", text)
    missing += [f for f in files if not os.path.exists(os.path.join(ROOT, "tests", "e2e", f))]
    assert not missing, f"docs/security.md names tests that do not exist: {missing}"
