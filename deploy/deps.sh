#!/usr/bin/env bash
# Installs the Debian 12 packages sluice needs to build, run and test, and nothing else.
#
# Called by `make deps` (and so by `make run` / `make test`). Checks each package with
# dpkg-query first and does not touch apt at all when everything is present; otherwise
# runs `apt-get update` once and `apt-get install -y` of only the missing packages.
# Non-interactive and quiet: apt's output goes to a log that is printed only on failure.
#
# Service starts: a Debian container has no init system (and usually a policy-rc.d that
# denies starts), so installing postgresql-15 or rsyslog starts no daemon. sluice never
# uses the system PostgreSQL cluster (deploy/pg.sh runs a private one) nor the system
# logger (the e2e tests run a private rsyslogd with their own config); this script does
# not touch either configuration.
set -euo pipefail

PACKAGES=(
    build-essential pkg-config
    libevent-dev libpq-dev libpcre2-dev libcurl4-openssl-dev libcjson-dev zlib1g-dev libssl-dev
    libcmocka-dev
    postgresql-15 postgresql-contrib postgresql-server-dev-15
    openssl curl ca-certificates socat
    rsyslog rsyslog-gnutls rsyslog-pgsql
    python3 python3-pytest python3-pytest-xdist python3-psycopg2 python3-yaml
    clang libclang-rt-dev
    haproxy
    chromium
    python3-sentry-sdk ruby ruby-sentry-ruby golang golang-github-getsentry-sentry-go-dev
    default-jdk-headless
)
# clang and its runtime (libclang_rt.fuzzer, asan, ubsan) build the libFuzzer targets
# of `make fuzz` (tests/fuzz/), which CI runs after `make test` and `make asan`.
# haproxy: tests/e2e/test_deploy.py checks deploy/haproxy.cfg with `haproxy -c`, and
# tests/e2e/test_multinode.py puts three nodes behind it.
# The official Sentry SDKs (Python, Ruby, Go) and the runtimes of the small crashing
# programs in tests/crash/ are the crash assembler's oracle (tests/e2e/test_crash_oracle.py,
# docs/internals/crash-oracle.md); @sentry/node comes from npm like standardwebhooks.

# The e2e tests verify webhook signatures with the `standardwebhooks` npm package as an
# independent check: they need node and npm (a machine may already have them from
# another source, e.g. NodeSource's nodejs, which bundles npm).
if ! command -v npm >/dev/null 2>&1; then
    PACKAGES+=(nodejs npm)
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || missing+=("$pkg")
done

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "deps: missing packages: ${missing[*]}" >&2
    echo "deps: run as root (or: sudo apt-get install -y ${missing[*]})" >&2
    exit 1
fi

echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp /tmp/sluice-deps.XXXXXX.log)
apt_opts=(-q -o Dpkg::Use-Pty=0 -o DPkg::Lock::Timeout=300)
if ! apt-get "${apt_opts[@]}" update >"$log" 2>&1 ||
    ! apt-get "${apt_opts[@]}" install -y --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        "${missing[@]}" >>"$log" 2>&1; then
    cat "$log" >&2
    echo "deps: apt-get failed (log above, kept in $log)" >&2
    exit 1
fi
rm -f "$log"

# Check again: a package apt could not configure must not pass silently.
for pkg in "${missing[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    if [ "$status" != "install ok installed" ]; then
        echo "deps: $pkg is still not installed ($status)" >&2
        exit 1
    fi
done
echo "deps: done" >&2
