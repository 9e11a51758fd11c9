#!/usr/bin/env bash
# lcpfsd's configuration as a user meets it: errors reported as file:line with a non-zero exit,
# --print-config showing the effective settings, a config file with its own pool and exports,
# and SIGHUP applying changed export sections to new connections.
source "$(dirname "$0")/lib.sh"

cat >"$DIR/bad.conf" <<'X'
[server]
data-dir = data
bogus-key = 1

[nbd]
tls = maybe
X
set +e
"$BIN/lcpfsd" -c "$DIR/bad.conf" >"$DIR/out" 2>&1
rc=$?
set -e
check "a bad config exits 2" test $rc -eq 2
check "unknown key named with file:line" grep -q "bad.conf:3: .*bogus-key" "$DIR/out"
check "bad value named with file:line" grep -q "bad.conf:6: .*tls" "$DIR/out"
set +e
"$BIN/lcpfsd" -o nbd.listen=127.0.0.1:99999 >"$DIR/out2" 2>&1
rc=$?
set -e
check "a bad -o exits 2" test $rc -eq 2
check "a bad -o is named" grep -q -- "-o nbd.listen=127.0.0.1:99999: " "$DIR/out2"
check "--print-config shows the embedded default" bash -c \
    "$BIN/lcpfsd --print-config | grep -q 'volume = tank/vol0'"

PORT=$(free_port)
cat >"$DIR/good.conf" <<X
[server]
data-dir = $DIR/data

[nbd]
listen = 127.0.0.1:$PORT

[pool big]
vdevs = big.vdev
create-size = 512M
default-volume = disk
default-volume-size = 64M

[nbd-export first]
volume = big/disk
description = the first export
X
start_daemon -c "$DIR/good.conf"
check "the configured export is listed" bash -c "nbdinfo --list $(URI '') | grep -q 'export=\"first\"'"
check "the description is served" bash -c "nbdinfo --list $(URI '') | grep -q 'the first export'"
check "the embedded tank pool is not created with a config of its own" bash -c "! $BIN/lcpfs list tank 2>/dev/null"

cat >>"$DIR/good.conf" <<X

[nbd-export second]
volume = big/disk
readonly = yes
X
kill -HUP "$PID"
for _ in $(seq 1 100); do grep -q "configuration reloaded" "$DIR/lcpfsd.log" && break; sleep 0.05; done
check "SIGHUP logged" grep -q "configuration reloaded" "$DIR/lcpfsd.log"
check "the new export is served after SIGHUP" nbdinfo --is read-only "$(URI second)"
echo "[broken" >>"$DIR/good.conf"
kill -HUP "$PID"
for _ in $(seq 1 100); do grep -q "keeping the current one" "$DIR/lcpfsd.log" && break; sleep 0.05; done
check "a broken reload keeps the running config" grep -q "keeping the current one" "$DIR/lcpfsd.log"
check "still serving after a broken reload" nbdinfo --size "$(URI first)"
stop_daemon_pool() {
    kill -TERM "$PID"
    local rc=0
    wait "$PID" || rc=$?
    PID=
    [ $rc -eq 0 ] || fail "lcpfsd exited with status $rc after SIGTERM"
    grep -q "exported pool 'big'" "$DIR/lcpfsd.log" || fail "pool was not exported at shutdown"
}
stop_daemon_pool
finish
