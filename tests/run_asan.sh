#!/usr/bin/env bash
# `make asan`: tests/run_all.sh over the ASan + UBSan build, with every sanitizer report
# written to a file (build-asan/sanitizer/{asan,ubsan}.<pid>) so that none is lost: a
# report from a server the e2e suite stops at teardown (a leak at exit, an error during
# shutdown) changes no test's verdict and its stderr is a temporary file. Each report
# file counts as one more failure and is printed at the end.
#   BUILD=build-asan tests/run_asan.sh UNIT_BIN...
# Last line: `N passed, N failed` (run_all.sh's totals plus the reports).
set -uo pipefail

cd "$(dirname -- "$0")/.."
export BUILD=${BUILD:-build-asan}
reports=$PWD/$BUILD/sanitizer
rm -rf -- "$reports"
mkdir -p -- "$reports"
out=$(mktemp)
trap 'rm -f -- "$out"' EXIT

ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:log_path=$reports/asan \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$reports/ubsan \
    tests/run_all.sh "$@" 2>&1 | tee "$out"
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
passed=$(sed -nE 's/^([0-9]+) passed.*/\1/p' <<<"$line")
failed=$(sed -nE 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/p' <<<"$line")
: "${passed:=0}" "${failed:=1}"

n=0
for f in "$reports"/*; do
    [ -s "$f" ] || continue
    n=$((n + 1))
    echo "asan: sanitizer report $f:"
    cat -- "$f"
done
if [ "$n" -gt 0 ]; then
    echo "asan: $n sanitizer report(s) (kept in $reports)"
fi
failed=$((failed + n))
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
