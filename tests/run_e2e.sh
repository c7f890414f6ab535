#!/usr/bin/env bash
# Runs the end-to-end suite (tests/e2e, pytest) against $BUILD/sluice (BUILD: build).
#   tests/run_e2e.sh [PYTEST ARGS...]
# Uses Debian's python3 (/usr/bin/python3, with python3-pytest and python3-psycopg2), not
# whatever python3 comes first on PATH. Last line: `e2e: N passed, N failed` (errors count
# as failed, skipped ones are listed). Exit status 1 when a test failed or none ran.
set -uo pipefail

cd "$(dirname -- "$0")/.."
export BUILD=${BUILD:-build}
export PYTHONDONTWRITEBYTECODE=1
if [ ! -x "$BUILD/sluice" ]; then
    echo "e2e: $BUILD/sluice is not built" >&2
    echo "e2e: 0 passed, 1 failed"
    exit 1
fi
out=$(mktemp)
trap 'rm -f -- "$out"' EXIT

# The whole suite unless an argument names test files or directories.
targets=(tests/e2e)
for a in "$@"; do
    [ -e "${a%%::*}" ] && targets=()
done
# Two phases. Files whose tests measure latency or memory carry `pytestmark =
# pytest.mark.serial` and run alone afterwards; everything else runs on SLUICE_E2E_WORKERS
# pytest-xdist workers (default 2; a file's tests stay on one worker, which has its own
# PostgreSQL and ports). SLUICE_E2E_WORKERS=0 runs the whole suite in one process.
workers=${SLUICE_E2E_WORKERS:-2}
if ! /usr/bin/python3 -c 'import xdist' 2>/dev/null; then
    echo "e2e: pytest-xdist is missing (Debian: python3-pytest-xdist); running in one process" >&2
    workers=0
fi
if [ "$workers" -gt 0 ]; then
    phases=("-m;not serial;-n;$workers;--dist;loadfile" "-m;serial")
else
    phases=("")
fi
passed=0 failed=0 skipped=0 ran=0
for phase in "${phases[@]}"; do
    IFS=';' read -r -a extra <<<"$phase"
    /usr/bin/python3 -m pytest -p no:cacheprovider -rfEs -v --durations=15 "${extra[@]}" \
        "${targets[@]}" "$@" 2>&1 | tee "$out"
    rc=${PIPESTATUS[0]}
    # pytest's closing line: "=== 3 failed, 40 passed, 2 skipped, 1 error in 12.3s ===".
    summary=$(grep -E '^=+ .* in [0-9.]+s' "$out" | tail -n 1)
    count() { sed -nE "s/.*[ =]([0-9]+) $1[ ,].*/\1/p" <<<"$summary " | head -n 1; }
    p=$(count passed) f=$(count failed) e=$(count 'errors?') s=$(count skipped)
    passed=$((passed + ${p:-0}))
    failed=$((failed + ${f:-0} + ${e:-0}))
    skipped=$((skipped + ${s:-0}))
    ran=$((ran + ${p:-0} + ${f:-0} + ${e:-0}))
    # 5: no test collected in this phase (e.g. a file list with no serial file).
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 5 ] && [ $((${f:-0} + ${e:-0})) -eq 0 ]; then
        # Interrupted or an internal error: no per-test verdict to trust.
        echo "e2e: pytest exited with status $rc" >&2
        failed=$((failed + 1))
    fi
done
[ "$skipped" -gt 0 ] || skipped=
echo "e2e: $passed passed, $failed failed${skipped:+, $skipped skipped}"
[ "$failed" -eq 0 ] && [ "$ran" -gt 0 ]
