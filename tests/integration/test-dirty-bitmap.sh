#!/usr/bin/env bash
# Incremental backup without bitmaps: qemu:dirty-bitmap:<snapshot> reports exactly the blocks
# written (or trimmed/zeroed) after the snapshot, including writes not yet committed, through
# nbdinfo --map and qemu-img map with x-dirty-bitmap. Bookmarks work as bitmaps too.
source "$(dirname "$0")/lib.sh"
start_daemon
L="$BIN/lcpfs"
U=$(URI vol0)

qemu-io -f raw -c 'write -P 1 0 8M' "$U" >/dev/null
check "snapshot" "$L" snapshot tank/vol0@base
# After the snapshot: two writes (one unaligned), a trim and a zero; nothing flushed yet.
qemu-io -f raw -c 'write -P 2 1M 64k' -c 'write -P 3 3000000 10' -c 'discard 4M 1M' \
    -c 'write -z 6M 32k' "$U" >/dev/null

map=$(nbdinfo --map=qemu:dirty-bitmap:base "$U")
echo "$map"
# volblocksize 16K: 3000000 falls in block 183 = [2998272, 3014656)
expect=$(cat <<'X'
         0     1048576    0  clean
   1048576       65536    1  dirty
   1114112     1884160    0  clean
   2998272       16384    1  dirty
   3014656     1179648    0  clean
   4194304     1048576    1  dirty
   5242880     1048576    0  clean
   6291456       32768    1  dirty
   6324224   262111232    0  clean
X
)
check "dirty map before commit" test "$(awk '{print $1, $2, $3}' <<<"$map")" = "$(awk '{print $1, $2, $3}' <<<"$expect")"
check "lcpfs snapshot commits: same map after" "$L" snapshot tank/vol0@later
map2=$(nbdinfo --map=qemu:dirty-bitmap:base "$U")
check "dirty map after commit" test "$(awk '{print $1, $2, $3}' <<<"$map2")" = "$(awk '{print $1, $2, $3}' <<<"$expect")"
check "nothing dirty since the newer snapshot" bash -c \
    "nbdinfo --map=qemu:dirty-bitmap:later $U | grep -Eq '^ +0 +268435456 +0'"

# qemu-img map with x-dirty-bitmap (qemu's own client): dirty ranges show as data=false.
json=$(qemu-img map --output=json --image-opts \
    "driver=nbd,server.type=inet,server.host=127.0.0.1,server.port=$PORT,export=vol0,x-dirty-bitmap=qemu:dirty-bitmap:base")
echo "$json" | head -5
check "qemu-img x-dirty-bitmap sees the first dirty range" \
    grep -q '"start": 1048576, "length": 65536, .*"data": false' <<<"$json"
check "qemu-img x-dirty-bitmap sees clean as data" \
    grep -q '"start": 0, "length": 1048576, .*"data": true' <<<"$json"

# A bookmark answers the same after the snapshot is gone.
check "bookmark" "$L" bookmark tank/vol0@base tank/vol0#base
check "destroy the snapshot" "$L" destroy tank/vol0@base
map3=$(nbdinfo --map=qemu:dirty-bitmap:base "$U")
check "bookmark as bitmap" test "$(awk '{print $1, $2, $3}' <<<"$map3")" = "$(awk '{print $1, $2, $3}' <<<"$expect")"
check "unknown bitmap is not offered" bash -c "! nbdinfo --map=qemu:dirty-bitmap:nosuch $U >/dev/null 2>&1"
check "list contexts shows snapshots as bitmaps" bash -c \
    "nbdinfo --list --content $(URI '') >/dev/null; nbdinfo $U | grep -q 'qemu:dirty-bitmap:later'"
stop_daemon
finish
