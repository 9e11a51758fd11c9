#!/usr/bin/env bash
# Redundancy through the daemon and the CLI: a raidz2 pool over five file vdevs serves a volume
# over NBD while two devices are offline (no client error, data verifies); one is replaced by a
# new file and the other brought online, and the resilver rebuilds both. A scrub finds and
# repairs damage dd'd into one device (which NBD reads never see), `pool clear` resets the
# counters, `pool replace` rebuilds onto a new file, and refusals
# (a third offline device, a second scrub, unknown devices) fail with exit 1 and a clear message.
# Scrubs stopped by `pool export` and by SIGTERM end cleanly (and resume at the next start). A
# mirror pool is made with `lcpfs pool create` (layout keywords pass through), imported back,
# grown to three sides with `pool attach` and shrunk to a plain device with `pool detach`.
source "$(dirname "$0")/lib.sh"
/usr/bin/python3 -c 'import nbd' 2>/dev/null || {
    echo "SKIP: python3 nbd module (libnbd) missing"
    exit 77
}
L="$BIN/lcpfs"
SEED=${SEED:-20240611}
echo "seed: $SEED (SEED=... to change)"

PORT=$(free_port)
D="$DIR/data"
mkdir -p "$D"
cat >"$DIR/lcpfsd.conf" <<EOF
[server]
data-dir = $D
[nbd]
listen = 127.0.0.1:$PORT
default-export =
[pool tank]
vdevs = raidz2 a.vdev b.vdev c.vdev d.vdev e.vdev
create-size = 128M
EOF
start_daemon -c "$DIR/lcpfsd.conf"
# volblocksize 64K: a 16K block would take more parity and padding than data on raidz2.
check "create a volume on raidz2" "$L" create -V 64M -b 64K -o nbd:export=on tank/vm
U=$(URI tank/vm)

# nbdio write|verify FILE [OFFSET LENGTH]: writes FILE's bytes [OFFSET, +LENGTH) at OFFSET, or
# reads the whole volume in 1 MiB requests and compares it with FILE.
cat >"$DIR/nbdio.py" <<'EOF'
import sys, nbd
uri, op, path = sys.argv[1:4]
h = nbd.NBD()
h.connect_uri(uri)
data = open(path, "rb").read()
if op == "write":
    off, ln = int(sys.argv[4]), int(sys.argv[5])
    for o in range(off, off + ln, 1 << 20):
        h.pwrite(data[o:o + (1 << 20)], o)
    h.flush()
else:
    assert h.get_size() == len(data), (h.get_size(), len(data))
    for o in range(0, len(data), 1 << 20):
        got = h.pread(1 << 20, o)
        if got != data[o:o + (1 << 20)]:
            sys.exit("mismatch in the MiB at offset %d" % o)
h.shutdown()
EOF
nbdio() { /usr/bin/python3 "$DIR/nbdio.py" "$U" "$@"; }
# pattern FILE SEED: 64 MiB of seeded random bytes.
pattern() { /usr/bin/python3 -c "import random,sys; sys.stdout.buffer.write(random.Random($2).randbytes(64 << 20))" >"$1"; }
# pj POOL EXPR: evaluates a python expression over d = the pool's `pool status -j` object.
pj() { "$L" pool status -j "$1" | /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin)['pools']['$1']; print($2)"; }
leaf() { echo "d['vdevs'][0]['children'][$1]"; }
# wait_scan POOL: until its scan is no longer running (at most 60 s).
wait_scan() {
    for _ in $(seq 1 600); do
        [ "$(pj "$1" "d['scan']['state']")" != scanning ] && return 0
        sleep 0.1
    done
    fail "the scan of '$1' did not finish"
}

pattern "$DIR/pat" "$SEED"
check "write 64 MiB over NBD" nbdio write "$DIR/pat" 0 $((64 << 20))
check "read back over NBD" nbdio verify "$DIR/pat"
check "raidz2 tree in pool status -j" test "$(pj tank "d['vdevs'][0]['type'], d['vdevs'][0]['nparity'], len(d['vdevs'][0]['children']), d['vdevs'][0]['name']")" = "raidz 2 5 raidz2-0"
check "text tree: raidz2-0 indented under the pool, leaves under it" bash -c "$L pool status tank | grep -qE \$'^\t  raidz2-0 +ONLINE +0 +0 +0\$' && $L pool status tank | grep -qE \$'^\t    $D/a.vdev +ONLINE'"
check "scan: none requested" bash -c "$L pool status tank | grep -q '  scan: none requested'"

# ---- two devices offline: degraded, still serving -----------------------------------------------
(cd "$D" && "$L" pool offline tank a.vdev) || fail "offline a (relative path)"
guid_b=$(pj tank "$(leaf 1)['guid']")
check "offline b by guid" "$L" pool offline tank "$guid_b"
check "a third device cannot go offline (exit 1)" bash -c "$L pool offline tank $D/c.vdev 2>$DIR/err; test \$? -eq 1"
check "... with a clear message" grep -q "no valid replicas" "$DIR/err"
check "pool DEGRADED" test "$(pj tank "d['state'], d['vdevs'][0]['state'], $(leaf 0)['state'], $(leaf 1)['state'], $(leaf 2)['state']")" = "DEGRADED DEGRADED OFFLINE OFFLINE ONLINE"
"$L" pool status tank >"$DIR/st"
check "status text: DEGRADED and two OFFLINE" bash -c "grep -q ' state: DEGRADED' $DIR/st && test \$(grep -c OFFLINE $DIR/st) -eq 2"
check "status: taken offline / action: online" bash -c "grep -q '^status: One or more devices has been taken offline' $DIR/st && grep -q \"^action: Online the device using 'lcpfs pool online'\" $DIR/st"
check "status -x lists the degraded pool" bash -c "$L pool status -x | grep -q 'pool: tank'"
pattern "$DIR/pat2" $((SEED + 1))
/usr/bin/python3 - "$DIR/pat" "$DIR/pat2" <<'EOF'
import sys
a = bytearray(open(sys.argv[1], "rb").read())
b = open(sys.argv[2], "rb").read()
a[8 << 20:24 << 20] = b[:16 << 20]
open(sys.argv[1], "wb").write(a)
EOF
check "write 16 MiB while degraded" nbdio write "$DIR/pat" $((8 << 20)) $((16 << 20))
check "read everything while degraded" nbdio verify "$DIR/pat"

# ---- online: resilver --------------------------------------------------------------------------
# a is replaced by a new file (as if it had died), b comes back online.
truncate -s 128M "$D/h.vdev"
check "replace the offline a with h" "$L" pool replace tank "$D/a.vdev" "$D/h.vdev"
check "online b" "$L" pool online tank "$D/b.vdev"
wait_scan tank
check "resilver finished with 0 errors" test "$(pj tank "d['scan']['function'], d['scan']['state'], d['scan']['errors']")" = "resilver finished 0"
check "resilver repaired something" test "$(pj tank "d['scan']['repaired'] > 0")" = True
check "ONLINE again, h in a's place" test "$(pj tank "d['state'], $(leaf 0)['name'], $(leaf 0)['state'], $(leaf 1)['state']")" = "ONLINE $D/h.vdev ONLINE ONLINE"
check "scan: resilvered line" bash -c "$L pool status tank | grep -qE '^  scan: resilvered [0-9.]+[KMG]? in [0-9]{2}:[0-9]{2}:[0-9]{2} with 0 errors on '"
check "status -x: healthy" bash -c "$L pool status -x | grep -q 'all pools are healthy'"
check "scrub after the resilver" "$L" pool scrub tank
wait_scan tank
check "the resilver left nothing to repair" test "$(pj tank "d['scan']['function'], d['scan']['state'], d['scan']['repaired'], d['scan']['errors']")" = "scrub finished 0 0"
check "data after the resilver" nbdio verify "$DIR/pat"

# ---- damage on c: NBD reads stay correct, scrub repairs it ------------------------------------
# 64 blocks of 4 KiB of noise between the front labels (4 MiB) and the end (1 MiB), in the
# first ~30 MiB where the allocator put the data.
/usr/bin/python3 - "$D/c.vdev" "$SEED" <<'EOF'
import os, random, sys
r = random.Random(int(sys.argv[2]))
size = os.path.getsize(sys.argv[1])
with open(sys.argv[1], "r+b") as f:
    for k in range(64):
        off = (4 << 20) + k * (400 << 10)
        assert off + 4096 <= size - (1 << 20)
        f.seek(off)
        f.write(r.randbytes(4096))
EOF
check "read everything after the damage" nbdio verify "$DIR/pat"
check "scrub" "$L" pool scrub tank
wait_scan tank
check "scrub repaired > 0 with 0 errors" test "$(pj tank "d['scan']['state'], d['scan']['repaired'] > 0, d['scan']['errors']")" = "finished True 0"
check "checksum errors counted on c only" test "$(pj tank "$(leaf 2)['checksum_errors'] > 0, $(leaf 3)['checksum_errors'], d['data_errors']")" = "True 0 0"
"$L" pool status tank >"$DIR/st"
check "scan: scrub repaired line" grep -qE '^  scan: scrub repaired [0-9.]+[KMG] in [0-9:]{8} with 0 errors on ' "$DIR/st"
check "status: an error was corrected" grep -q '^status: One or more devices has experienced an unrecoverable error' "$DIR/st"
check "CKSUM column of c is nonzero" bash -c "grep -E \$'^\t    $D/c.vdev ' $DIR/st | awk '{exit !(\$5 > 0)}'"
check "status -x lists a pool with errors" bash -c "$L pool status -x | grep -q 'pool: tank'"
check "clear" "$L" pool clear tank
check "counters cleared" test "$(pj tank "$(leaf 2)['checksum_errors'], d['checksum_errors']")" = "0 0"
check "second scrub" "$L" pool scrub tank
wait_scan tank
check "second scrub repaired nothing" test "$(pj tank "d['scan']['state'], d['scan']['repaired'], d['scan']['errors']")" = "finished 0 0"
check "clear one device" "$L" pool clear tank "$D/c.vdev"

# ---- scrub twice, cancel ------------------------------------------------------------------------
"$L" pool scrub tank || fail "scrub"
rc=0
"$L" pool scrub tank 2>"$DIR/err" || rc=$?
check "second scrub: refused as already running, or fine after the first ended" \
    bash -c "[ $rc -eq 0 ] || { [ $rc -eq 1 ] && grep -q 'already being scrubbed' $DIR/err; }"
wait_scan tank
check "scrub -s with no scrub running fails" bash -c "! $L pool scrub -s tank 2>$DIR/err && grep -q 'no active scrub' $DIR/err"

# ---- replace d with a new file ------------------------------------------------------------------
truncate -s 128M "$D/f.vdev"
check "replace d with f" "$L" pool replace tank "$D/d.vdev" "$D/f.vdev"
wait_scan tank
check "resilvered onto f" test "$(pj tank "d['state'], $(leaf 3)['name'], $(leaf 3)['state'], d['scan']['function'], d['scan']['errors']")" = "ONLINE $D/f.vdev ONLINE resilver 0"
check "d is gone from the tree" bash -c "! $L pool status tank | grep -q d.vdev"
check "data after the replace" nbdio verify "$DIR/pat"
check "scrub after the replace" "$L" pool scrub tank
wait_scan tank
check "the new device lacked nothing" test "$(pj tank "d['scan']['state'], d['scan']['repaired'], d['scan']['errors']")" = "finished 0 0"

# ---- damage beyond the parity budget: an error, never wrong data -----------------------------------
check "a raidz1 pool" "$L" pool create -s 64M third raidz1 "$D/t1.vdev" "$D/t2.vdev" "$D/t3.vdev"
check "a volume on it" "$L" create -V 16M -o nbd:export=on third/v
U3=$(URI third/v)
pattern "$DIR/pat3" $((SEED + 3))
head -c $((16 << 20)) "$DIR/pat3" >"$DIR/pat3s"
check "write 16 MiB" /usr/bin/python3 "$DIR/nbdio.py" "$U3" write "$DIR/pat3s" 0 $((16 << 20))
check "export third" "$L" pool export third
# The same 4 MiB of two of the three devices, where the data is: two columns of every stripe there.
for t in t1 t2; do
    dd if=/dev/urandom of="$D/$t.vdev" bs=1M seek=6 count=4 conv=notrunc status=none
done
check "import third" "$L" pool import "$D/t1.vdev" "$D/t2.vdev" "$D/t3.vdev"
rc=0
/usr/bin/python3 "$DIR/nbdio.py" "$U3" verify "$DIR/pat3s" 2>"$DIR/err" || rc=$?
check "the NBD read fails with an I/O error, not wrong data" bash -c "[ $rc -ne 0 ] && grep -qi 'input/output error' $DIR/err"
"$L" pool status -v third >"$DIR/st"
check "status -v names the damaged volume" grep -qE '^ +third/v: object 1, level 0, block [0-9]+' "$DIR/st"
check "errors: line" grep -q '^errors: Permanent errors have been detected' "$DIR/st"
check "export third" "$L" pool export -f third

# ---- refusals -----------------------------------------------------------------------------------
check "offline an unknown device: exit 1" bash -c "$L pool offline tank $D/nosuch.vdev 2>$DIR/err; test \$? -eq 1 && grep -q \"no device '$D/nosuch.vdev' in pool 'tank'\" $DIR/err"
check "online an unknown guid: exit 1" bash -c "! $L pool online tank 12345 2>$DIR/err && grep -q \"no device '12345'\" $DIR/err"
check "replace with a device of the pool: exit 1" bash -c "! $L pool replace tank $D/c.vdev $D/e.vdev 2>$DIR/err && grep -q 'part of pool' $DIR/err"
check "scrub of an unknown pool: exit 1" bash -c "! $L pool scrub nosuch 2>$DIR/err && grep -q \"no pool named 'nosuch'\" $DIR/err"
check "replace usage: exit 2" bash -c "$L pool replace tank x >/dev/null 2>&1; test \$? -eq 2"
check "unknown pool verb: exit 2" bash -c "$L pool frob >/dev/null 2>&1; test \$? -eq 2"

# ---- a mirror made by the CLI; export during a scrub --------------------------------------------
(cd "$D" && "$L" pool create -s 64M second mirror m1.vdev m2.vdev) || fail "pool create with 'mirror'"
check "mirror tree" test "$(pj second "d['vdevs'][0]['name'], d['vdevs'][0]['type'], [c['name'] for c in d['vdevs'][0]['children']]")" = "mirror-0 mirror ['$D/m1.vdev', '$D/m2.vdev']"
check "scrub the mirror" "$L" pool scrub second
check "export while a scrub may run" timeout 30 "$L" pool export second
check "import with the layout words" "$L" pool import mirror "$D/m1.vdev" "$D/m2.vdev"
check "imported mirror is ONLINE" test "$(pj second "d['state'], len(d['vdevs'][0]['children'])")" = "ONLINE 2"
truncate -s 64M "$D/m3.vdev"
check "attach a third side" "$L" pool attach second "$D/m1.vdev" "$D/m3.vdev"
wait_scan second
check "three-way mirror resilvered" test "$(pj second "len(d['vdevs'][0]['children']), d['scan']['function'], d['scan']['state'], d['scan']['errors']")" = "3 resilver finished 0"
check "detach the first side" "$L" pool detach second "$D/m1.vdev"
check "detach down to a plain device" "$L" pool detach second "$D/m2.vdev"
check "a plain device is left" test "$(pj second "d['vdevs'][0]['type'], d['vdevs'][0]['name']")" = "disk $D/m3.vdev"
check "detach from a plain device: exit 1" bash -c "! $L pool detach second $D/m3.vdev 2>$DIR/err && grep -q 'only devices of a mirror' $DIR/err"
check "export the mirror" "$L" pool export second

# ---- SIGTERM during a scrub; the data after a restart (cold cache) ---------------------------------
check "scrub before SIGTERM" "$L" pool scrub tank
stop_daemon
# The scrub may also finish between the stop request and the walk's next check: then nothing resumes.
paused=no
if grep -q "pool 'tank': scrub paused" "$DIR/lcpfsd.log"; then
    paused=yes
    echo "(the scrub was paused by SIGTERM)"
fi
# The configuration still lists d: f, which took its place, is found at the path in the labels.
start_daemon -c "$DIR/lcpfsd.conf"
check "ONLINE after the restart, with f found by its label path" test "$(pj tank "d['state'], $(leaf 3)['name']")" = "ONLINE $D/f.vdev"
if [ $paused = yes ]; then
    check "the scrub SIGTERM interrupted resumes at the start" grep -q "pool 'tank': scrub resumed" "$DIR/lcpfsd.log"
    wait_scan tank
    check "the interrupted scrub resumed and finished" test "$(pj tank "d['scan']['function'], d['scan']['state']")" = "scrub finished"
fi
check "data after the restart" nbdio verify "$DIR/pat"
stop_daemon
finish
