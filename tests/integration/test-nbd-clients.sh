#!/usr/bin/env bash
# The NBD server with the clients people use: nbdinfo (list, map, can/is), qemu-io (pattern
# write/read, zero, discard, flush, FUA), qemu-img (info, convert both ways, compare, map),
# nbdcopy with multi-conn, an nbdsh (libnbd Python) script, and fio with ioengine=nbd verifying
# crc32c. Then a restart: flushed data survives SIGTERM + start.
source "$(dirname "$0")/lib.sh"
# Debug logging: each session's "closed" line counts WRITEs done on the loop thread and on workers.
start_daemon -o server.log-level=debug

check "nbdinfo --list shows vol0" bash -c "nbdinfo --list $(URI '') | grep -q 'export=\"vol0\"'"
out=$(nbdinfo "$(URI vol0)")
for cap in can_flush can_fua can_trim can_zero can_fast_zero can_multi_conn can_cache can_df; do
    check "vol0 $cap" grep -q "$cap: true" <<<"$out"
done
check "vol0 size 256M" grep -q "export-size: 268435456" <<<"$out"
check "nbdinfo --can flush" nbdinfo --can flush "$(URI vol0)"
check "nbdinfo --can multi-conn" nbdinfo --can multi-conn "$(URI vol0)"
check "vol0 is not read-only" bash -c "! nbdinfo --is read-only $(URI vol0)"
check "empty volume maps as one hole" bash -c \
    "nbdinfo --map $(URI vol0) | grep -Eq '^ +0 +268435456 +3 +hole,zero'"

# qemu-io: patterns, zero, discard, flush, FUA writes.
qio() { qemu-io -f raw "$@" "$(URI vol0)"; }
check "qemu-io write/read patterns" bash -c "$(declare -f qio URI); PORT=$PORT qio \
    -c 'write -P 0x5a 0 4M' -c 'write -P 0xa5 1000 3000' -c 'write -f -P 0x11 8M 64k' \
    -c 'read -P 0x5a 0 1000' -c 'read -P 0xa5 1000 3000' -c 'read -P 0x5a 4000 1M' \
    -c 'read -P 0x11 8M 64k' -c flush >/dev/null"
check "qemu-io zero and discard" bash -c "$(declare -f qio URI); PORT=$PORT qio \
    -c 'write -z 1M 1M' -c 'discard 2M 1M' -c 'read -P 0 1M 2M' -c 'read -P 0x5a 3M 1M' \
    >/dev/null"
map=$(nbdinfo --map "$(URI vol0)")
check "map: zeroed and discarded ranges are holes" grep -Eq '^ +1048576 +2097152 +3 +hole,zero' <<<"$map"
check "map: data at 0" grep -Eq '^ +0 +1048576 +0 +data' <<<"$map"

# qemu-img: info, convert out and in, compare, map.
check "qemu-img info" bash -c "qemu-img info -f raw $(URI vol0) | grep -q 'virtual size: 256 MiB'"
check "qemu-img convert out" qemu-img convert -f raw -O raw "$(URI vol0)" "$DIR/out.raw"
check "qemu-img compare" qemu-img compare -f raw -F raw "$(URI vol0)" "$DIR/out.raw"
head -c 64M /dev/urandom >"$DIR/in.raw"
truncate -s 256M "$DIR/in.raw"
check "qemu-img convert in" qemu-img convert -n -f raw -O raw "$DIR/in.raw" "$(URI vol0)"
check "qemu-img compare after convert in" qemu-img compare -f raw -F raw "$DIR/in.raw" "$(URI vol0)"
check "qemu-img map sees the sparse tail" bash -c \
    "qemu-img map -f raw --output=json $(URI vol0) | grep -q '\"start\": 67108864, \"length\": 201326592, .*\"zero\": true, \"data\": false'"

# nbdcopy both directions with 4 connections.
head -c 96M /dev/urandom >"$DIR/copy.raw"
truncate -s 256M "$DIR/copy.raw"
check "nbdcopy in (multi-conn)" nbdcopy --connections=4 "$DIR/copy.raw" "$(URI vol0)"
check "nbdcopy out (multi-conn)" nbdcopy --connections=4 "$(URI vol0)" "$DIR/copy.back"
check "nbdcopy round trip is exact" cmp "$DIR/copy.raw" "$DIR/copy.back"
# Its whole-block WRITEs were taken straight from the socket and done on the loop threads
# (zero-copy, ZVOL_NOWAIT), most of them at least: the throttle sends some to workers.
check "nbdcopy's WRITEs done on the loop threads" \
    grep -Eq 'closed \(reads: [0-9]+ on the loop thread, [0-9]+ on workers; writes: [1-9][0-9]*,' \
    "$DIR/lcpfsd.log"

# nbdsh: structured reads, block status and flush from the libnbd API.
cat >"$DIR/t.py" <<PY
import nbd
h = nbd.NBD()
h.add_meta_context("base:allocation")
h.connect_uri("$(URI vol0)")
assert h.can_meta_context("base:allocation")
h.pwrite(b"\x42" * 65536, 100 * 1024 * 1024, nbd.CMD_FLAG_FUA)
assert h.pread(65536, 100 * 1024 * 1024) == b"\x42" * 65536
h.trim(1024 * 1024, 200 * 1024 * 1024)
seen = []
def cb(ctx, off, entries, err):
    seen.extend(entries)
h.block_status(1024 * 1024, 200 * 1024 * 1024, cb)
assert seen[1] & 3 == 3, seen  # trimmed -> hole|zero
h.flush()
try:
    h.pread(4096, 256 * 1024 * 1024)  # past the end
    raise SystemExit("read past the end succeeded")
except nbd.Error as e:
    assert e.errnum in (22, 75), e
h.shutdown()
PY
check "nbdsh script" nbdsh -c "exec(open('$DIR/t.py').read())"

# fio with its NBD engine, verifying what it wrote.
check "fio ioengine=nbd verify=crc32c" fio --name=v --ioengine=nbd --uri="$(URI vol0)" \
    --rw=randwrite --bs=4k --size=32M --iodepth=16 --verify=crc32c --do_verify=1 \
    --verify_fatal=1 --verify_state_save=0 --output="$DIR/fio.out"

# Flushed data survives a clean restart.
sum_before=$(nbdcopy "$(URI vol0)" - | md5sum)
stop_daemon
start_daemon
sum_after=$(nbdcopy "$(URI vol0)" - | md5sum)
check "data intact after SIGTERM and restart" test "$sum_before" = "$sum_after"
stop_daemon
finish
