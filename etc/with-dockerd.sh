#!/usr/bin/env bash
# Runs a command with a Docker engine: `etc/with-dockerd.sh pytest -q`.
#
# The engine is the first that answers of $DOCKER_HOST, the system's
# (unix:///var/run/docker.sock) and this project's own; when none answers, the
# project's own dockerd is started (Debian's docker.io, installed by
# etc/install-system-packages.sh) with its data root, exec root, socket and log
# under $PACH_DOCKERD_DIR. The command runs with DOCKER_HOST naming the engine
# and PACH_TEST_DOCKER=required (tests that need the engine fail instead of
# skipping). At the end the project's dockerd is stopped, unless another run
# still uses it. Its data root stays: base images, built images and build
# cache are reused by the next run on this machine.
set -euo pipefail

DIR=${PACH_DOCKERD_DIR:-/var/tmp/pachyderm-py-dockerd}
OWN="unix://$DIR/docker.sock"
mkdir -p "$DIR"

answers() {
    DOCKER_HOST="$1" timeout 20 docker version >/dev/null 2>&1
}

engine=""
for candidate in "${DOCKER_HOST:-}" unix:///var/run/docker.sock "$OWN"; do
    if [ -n "$candidate" ] && answers "$candidate"; then
        engine=$candidate
        break
    fi
done

# Every run holds a shared lock on users.lock while it runs; whoever ends last
# (the exclusive lock is free then) stops the project's dockerd.
exec 9>"$DIR/users.lock"
flock -s 9

if [ -z "$engine" ]; then
    exec 8>"$DIR/start.lock"
    flock -x 8  # one run starts it; the others wait and then find it answering
    if ! answers "$OWN"; then
        command -v dockerd >/dev/null || bash "$(dirname "$0")/install-system-packages.sh" --test
        mkdir -p "$DIR/data" "$DIR/exec"
        echo "starting dockerd (data root $DIR/data, log $DIR/dockerd.log)" >&2
        setsid dockerd --data-root "$DIR/data" --exec-root "$DIR/exec" --host "$OWN" \
            --pidfile "$DIR/dockerd.pid" >>"$DIR/dockerd.log" 2>&1 </dev/null &
        for _ in $(seq 1 240); do
            answers "$OWN" && break
            if ! kill -0 $! 2>/dev/null; then
                tail -20 "$DIR/dockerd.log" >&2
                echo "dockerd failed to start (log: $DIR/dockerd.log)" >&2
                exit 1
            fi
            sleep 0.5
        done
        answers "$OWN" || { echo "dockerd did not answer within 2 minutes" >&2; exit 1; }
    fi
    flock -u 8
    engine=$OWN
fi

stop_own() {
    flock -u 9
    exec 9>"$DIR/users.lock"
    if [ "$engine" = "$OWN" ] && flock -n -x 9 && [ -s "$DIR/dockerd.pid" ]; then
        pid=$(cat "$DIR/dockerd.pid")
        if kill "$pid" 2>/dev/null; then
            for _ in $(seq 1 120); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.5
            done
        fi
    fi
}
trap stop_own EXIT

set +e
DOCKER_HOST=$engine PACH_TEST_DOCKER=required "$@"
status=$?
set -e
exit $status
