#!/usr/bin/env bash
# Shared helpers for the daemon's integration tests: start a real lcpfsd on loopback (a free
# TCP port and a unix socket in a private data folder), talk to it with real clients, stop it
# with SIGTERM (exit status checked), and clean up every process and file on exit.
#
#   source lib.sh BIN_DIR
#   start_daemon [extra lcpfsd args...]     # sets DIR, PORT, SOCK (NBD unix), ADMIN, PID
#   stop_daemon                              # SIGTERM, waits, fails unless exit 0
#   check CONDITION-COMMAND... / fail MSG
set -euo pipefail

BIN=${1:?usage: test.sh BIN_DIR}
# Debian's python3 has the nbd module (nbdsh); a pyenv shim on PATH may not.
export PATH=/usr/bin:/usr/sbin:/bin:$PATH
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
TEST_NAME=$(basename "$0" .sh)
DIR=$(mktemp -d "/tmp/lcpfs-$TEST_NAME.XXXXXX")
PID=
PASSED=0

cleanup() {
    local rc=$?
    if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
        kill -KILL "$PID" 2>/dev/null || true
        wait "$PID" 2>/dev/null || true
    fi
    # Any helper processes this test started (clients, fuse mounts) are in our process group.
    jobs -p | xargs -r kill 2>/dev/null || true
    if [ $rc -ne 0 ] && [ -f "$DIR/lcpfsd.log" ]; then
        echo "---- lcpfsd log (last 40 lines) ----"
        tail -n 40 "$DIR/lcpfsd.log"
    fi
    rm -rf "$DIR"
    exit $rc
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# check DESCRIPTION COMMAND...: runs the command, fails the test with DESCRIPTION if it fails.
check() {
    local what=$1
    shift
    if ! "$@"; then
        fail "$what"
    fi
    PASSED=$((PASSED + 1))
}

free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start_daemon() {
    PORT=${PORT:-$(free_port)}
    SOCK="$DIR/data/nbd.sock"
    ADMIN="$DIR/data/lcpfsd.sock"
    export LCPFS_SOCKET=$ADMIN
    # The log is shared by restarts: wait for a "ready:" line of this start.
    local before
    before=$(grep -c "ready:" "$DIR/lcpfsd.log" 2>/dev/null || true)
    # The embedded default, smaller; a test that brings its own config (-c) sets everything.
    local small=(-o "server.data-dir=$DIR/data" -o "nbd.listen=127.0.0.1:$PORT"
        -o "pool.tank.create-size=1G" -o "pool.tank.default-volume-size=256M")
    [[ " $* " == *" -c "* ]] && small=()
    "$BIN/lcpfsd" "${small[@]}" "$@" >>"$DIR/lcpfsd.log" 2>&1 &
    PID=$!
    for _ in $(seq 1 200); do
        if [ "$(grep -c "ready:" "$DIR/lcpfsd.log" 2>/dev/null || true)" -gt "${before:-0}" ]; then
            return 0
        fi
        kill -0 "$PID" 2>/dev/null || { cat "$DIR/lcpfsd.log"; fail "lcpfsd exited at start"; }
        sleep 0.05
    done
    cat "$DIR/lcpfsd.log"
    fail "lcpfsd did not become ready"
}

stop_daemon() {
    kill -TERM "$PID"
    local rc=0
    wait "$PID" || rc=$?
    PID=
    [ $rc -eq 0 ] || fail "lcpfsd exited with status $rc after SIGTERM"
    grep -q "exported pool 'tank'" "$DIR/lcpfsd.log" || fail "pool was not exported at shutdown"
}

URI() { # URI EXPORT -> nbd://127.0.0.1:PORT/EXPORT
    echo "nbd://127.0.0.1:$PORT/$1"
}

finish() {
    echo "$PASSED passed, 0 failed"
}
