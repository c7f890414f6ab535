#!/usr/bin/env bash
# Builds deploy/Dockerfile with Debian's podman and runs the image against a private
# PostgreSQL: `make container-check` (not part of `make test`: a build takes minutes).
#
#   deploy/container-check.sh [IMAGE]      (IMAGE: localhost/sluice:check)
#
# Needs the Debian packages podman, runc and debootstrap (`apt-get install podman runc
# debootstrap`; not in deploy/deps.sh, which `make test` installs). When the registry
# cannot be reached, the base image debian:12-slim is made locally with debootstrap
# (minbase, from deb.debian.org) and imported under that name. Runs as root with runc
# and cgroupfs: in a container sandbox crun refuses cgroups in hybrid mode and podman's
# default rlimits, so the limits are given explicitly (nofile must stay above
# SLUICE_MAX_CONNECTIONS + its reserve, or sluice refuses to start).
#
# Checks, each a failure when it does not hold: the image builds (docker format, so the
# HEALTHCHECK is kept); it runs as uid 10001, not root; /healthz answers and podman's
# healthcheck passes; `sluice migrate` and `sluice source add` run in it; a drain POST
# gets 204 and its line reaches PostgreSQL; the spool is on the volume (node_id there);
# `podman stop` (SIGTERM) exits 0 with the spool flushed. Prints one line per check and
# `container-check: N passed, N failed`; exit 1 when any failed.
set -euo pipefail

cd "$(dirname -- "$0")/.."
top=$PWD
image=${1:-localhost/sluice:check}
pm=(podman --runtime runc --cgroup-manager=cgroupfs)
limits=(--ulimit nofile=20000:20000 --ulimit nproc=4096:4096)
port=18099
name=sluice-check-$$
vol=sluice-check-spool-$$
work=$(mktemp -d /tmp/sluice-container-check.XXXXXX)
chmod 0755 "$work"
passed=0
failed=0

for tool in podman runc debootstrap curl; do
    command -v "$tool" >/dev/null || {
        echo "container-check: $tool missing (apt-get install podman runc debootstrap curl)" >&2
        exit 1
    }
done

cleanup() {
    "${pm[@]}" rm -f -t 0 "$name" >/dev/null 2>&1 || true
    "${pm[@]}" volume rm -f "$vol" >/dev/null 2>&1 || true
    deploy/pg.sh destroy "$work/pg" >/dev/null 2>&1 || true
    rm -rf -- "$work"
}
trap cleanup EXIT

check() { # check NAME COMMAND...
    local what=$1
    shift
    if "$@" >"$work/check.out" 2>&1; then
        echo "ok   $what"
        passed=$((passed + 1))
    else
        echo "FAIL $what"
        sed 's/^/     /' "$work/check.out" | tail -n 20
        failed=$((failed + 1))
    fi
}

# The base image: from the registry, else made here from Debian's packages.
if ! "${pm[@]}" image exists docker.io/library/debian:12-slim; then
    if ! "${pm[@]}" pull docker.io/library/debian:12-slim >/dev/null 2>&1; then
        echo "container-check: registry unreachable; debootstrap bookworm for the base" >&2
        debootstrap --variant=minbase bookworm "$work/root" http://deb.debian.org/debian \
            >"$work/debootstrap.log" 2>&1 || {
            tail -n 20 "$work/debootstrap.log" >&2
            exit 1
        }
        rm -rf "$work/root/var/cache/apt/archives/"*.deb
        tar -C "$work/root" -c . | "${pm[@]}" import --change 'CMD ["bash"]' - \
            docker.io/library/debian:12-slim >/dev/null
        rm -rf "$work/root"
    fi
fi

check "image builds (deploy/Dockerfile, two stages)" \
    "${pm[@]}" build --format docker --network host --ulimit nofile=1024:1024 \
    --ulimit nproc=1024:1024 -f deploy/Dockerfile -t "$image" .

url=$(deploy/pg.sh start "$work/pg" 2>/dev/null)
run=$(sed -E 's/.*host=([^&]*).*/\1/' <<<"$url" | sed 's/%2F/\//g')
ctr_url="postgresql:///sluice?host=/run/pg&user=postgres"
in_image() { # a one-off container of the image with the database socket
    "${pm[@]}" run --rm --network host "${limits[@]}" -v "$run:/run/pg" \
        -e DATABASE_URL="$ctr_url" "$image" "$@"
}
check "sluice migrate in the image" in_image sluice migrate
creds=$(in_image sluice source add check 2>>"$work/run.err" | tail -n 1 | sed -E 's#^https://([^@]*)@.*#\1#')

"${pm[@]}" volume create "$vol" >/dev/null
# (podman's periodic health timers need systemd, absent in a sandbox: its complaints go to
# a file; `podman healthcheck run` below runs the check itself)
"${pm[@]}" run -d --name "$name" --network host "${limits[@]}" -v "$run:/run/pg" \
    -v "$vol:/var/lib/sluice/spool" -e DATABASE_URL="$ctr_url" -e PORT=$port \
    -e SLUICE_BIND=127.0.0.1 "$image" >/dev/null 2>"$work/run.err" || {
    cat "$work/run.err" >&2
    exit 1
}
healthy() {
    for _ in $(seq 1 100); do
        curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    "${pm[@]}" logs "$name" | tail -n 20
    return 1
}
check "serves /readyz from the container" healthy
check "runs as uid 10001, not root" bash -c "[ \"\$(${pm[*]} exec $name id -u)\" = 10001 ]"
check "podman healthcheck (HEALTHCHECK on /healthz) passes" "${pm[@]}" healthcheck run "$name"
line="<190>1 2026-11-21T10:00:00.000000+00:00 host app web.1 - container-check $$"
body="$(( ${#line} + 1 )) $line"$'\n'
post() {
    code=$(curl -sS -o /dev/null -w '%{http_code}' --data-binary "$body" \
        -H 'Content-Type: application/logplex-1' "http://$creds@127.0.0.1:$port/logs")
    [ "$code" = 204 ] || { echo "POST answered $code"; return 1; }
}
check "a drain POST gets 204" post
stored() {
    for _ in $(seq 1 100); do
        n=$(/usr/lib/postgresql/15/bin/psql -X -qAt "$url" \
            -c "select count(*) from logs where message like 'container-check $$%'")
        [ "$n" = 1 ] && return 0
        sleep 0.1
    done
    echo "rows: $n"
    return 1
}
check "the line reaches PostgreSQL" stored
check "the spool is on the volume" "${pm[@]}" exec "$name" test -s /var/lib/sluice/spool/node_id
t0=$(date +%s%N)
"${pm[@]}" stop -t 35 "$name" >/dev/null 2>>"$work/run.err"
ms=$((($(date +%s%N) - t0) / 1000000))
stopped() {
    [ "$("${pm[@]}" inspect "$name" --format '{{.State.ExitCode}}')" = 0 ] &&
        "${pm[@]}" logs "$name" 2>&1 | grep -q 'msg="stopped" unwritten_bytes=0'
}
check "SIGTERM (podman stop): exit 0, spool flushed (${ms} ms)" stopped
echo "container-check: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
