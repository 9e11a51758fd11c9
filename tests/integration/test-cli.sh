#!/usr/bin/env bash
# The lcpfs CLI against a running daemon: every verb, the scriptable forms (-H, -p, -o, -j),
# error messages and exit codes; exports follow datasets (nbd:export=on), snapshots are
# readable read-only exports that never change, destroying an exported volume is refused
# unless forced.
source "$(dirname "$0")/lib.sh"
start_daemon
L="$BIN/lcpfs"

# list / create / get / set / inherit
check "list shows the default volume" bash -c "$L list -H -o name,type | grep -qx \$'tank/vol0\tvolume'"
check "create a filesystem" "$L" create tank/fs
check "create with -p" "$L" create -p tank/a/b/c
check "create a sparse volume exported by property" "$L" create -s -V 64M -b 8K \
    -o nbd:export=on -o compression=zstd tank/vm1
check "duplicate create fails with status 1" bash -c "! $L create tank/fs 2>$DIR/err; grep -q 'already exists' $DIR/err"
check "usage error exits 2" bash -c "$L create >/dev/null 2>&1; test \$? -eq 2"
check "unknown verb exits 2" bash -c "$L frobnicate >/dev/null 2>&1; test \$? -eq 2"
check "bad property value is explained" bash -c "! $L set compression=zip tank/fs 2>$DIR/err; grep -qi 'compression' $DIR/err"
check "-p prints exact bytes" bash -c "$L list -H -p -o volsize tank/vm1 | grep -qx 67108864"
check "volblocksize applied" bash -c "$L get -H -o value volblocksize tank/vm1 | grep -qx 8K"
check "get SOURCE local" bash -c "$L get -H -o source compression tank/vm1 | grep -qx local"
check "set on a parent" "$L" set compression=zstd-9 com.example:owner=ops tank/a
check "inherited from tank/a" bash -c "$L get -H -o value,source compression tank/a/b/c | grep -qx \$'zstd-9\tinherited from tank/a'"
check "user property inherited" bash -c "$L get -H -o value com.example:owner tank/a/b | grep -qx ops"
check "inherit" "$L" inherit compression tank/a
check "default after inherit" bash -c "$L get -H -o source compression tank/a/b/c | grep -qx default"
check "get -j is JSON" bash -c "$L get -j used tank/fs | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); assert d[\"properties\"][0][\"property\"]==\"used\"'"
check "list -j is JSON" bash -c "$L list -j -r tank | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); assert \"tank/a/b/c\" in d[\"datasets\"]'"

# exports follow datasets
check "nbd:export=on volume is listed" bash -c "nbdinfo --list $(URI '') | grep -q 'export=\"tank/vm1\"'"
check "exports verb" bash -c "$L exports -H | grep -q '^tank/vm1'"
qemu-io -f raw -c 'write -P 0x77 0 1M' "$(URI tank/vm1)" >/dev/null

# snapshots: read-only export that never changes
check "snapshot" "$L" snapshot tank/vm1@one tank/fs@one
check "snapshot listed" bash -c "$L list -H -t snapshot -o name -r tank | grep -qx tank/vm1@one"
check "snapshot export is read-only" nbdinfo --is read-only "$(URI tank/vm1@one)"
qemu-io -f raw -c 'write -P 0x88 0 1M' "$(URI tank/vm1)" >/dev/null
check "snapshot still holds the old data" qemu-io -f raw -r -c 'read -P 0x77 0 1M' "$(URI tank/vm1@one)"
check "head has the new data" qemu-io -f raw -c 'read -P 0x88 0 1M' "$(URI tank/vm1)"
check "write to a snapshot export is refused" bash -c "! qemu-io -f raw -c 'write 0 4k' $(URI tank/vm1@one) 2>/dev/null | grep -q wrote"

# holds, bookmarks, clone, promote, rename, rollback
check "hold" "$L" hold keep tank/vm1@one
check "holds lists it" bash -c "$L holds -H tank/vm1@one | grep -q keep"
check "held snapshot cannot be destroyed" bash -c "! $L destroy tank/vm1@one 2>$DIR/err; grep -q hold $DIR/err"
check "release" "$L" release keep tank/vm1@one
check "bookmark" "$L" bookmark tank/vm1@one tank/vm1#one
check "clone" "$L" clone -o nbd:export=on tank/vm1@one tank/vm2
check "clone reads the snapshot's data" qemu-io -f raw -c 'read -P 0x77 0 1M' "$(URI tank/vm2)"
check "origin shown" bash -c "$L list -H -o origin tank/vm2 | grep -qx tank/vm1@one"
check "snapshot with a clone cannot be destroyed" bash -c "! $L destroy tank/vm1@one 2>/dev/null"
check "promote" "$L" promote tank/vm2
check "after promote the origin moved" bash -c "$L list -H -o origin tank/vm1 | grep -qx tank/vm2@one"
check "rename" "$L" rename tank/fs tank/fs2
check "renamed snapshot follows" bash -c "$L list -H -t snapshot -o name -r tank/fs2 | grep -qx tank/fs2@one"
qemu-io -f raw -c 'write -P 0x99 0 1M' "$(URI tank/vm2)" >/dev/null
check "rollback" "$L" rollback tank/vm2@one
check "rollback restored the data" qemu-io -f raw -c 'read -P 0x77 0 1M' "$(URI tank/vm2)"

# destroy: refusals and force
check "destroy without -r refuses a dataset with children" bash -c "! $L destroy tank/a 2>$DIR/err; grep -q children $DIR/err"
check "destroy -r" "$L" destroy -r tank/a
check "destroying a configured export is refused" bash -c "! $L destroy tank/vol0 2>$DIR/err; grep -q exported $DIR/err"
sleep 30 | nbdsh -u "$(URI tank/vm1)" -c 'import time; time.sleep(30)' >/dev/null 2>&1 &
client=$!
for _ in $(seq 1 100); do
    [ "$($L exports -H | awk '$1=="tank/vm1"{print $4}')" = "1" ] && break
    sleep 0.05
done
check "a volume with a client is busy" bash -c "! $L destroy -r tank/vm1 2>$DIR/err; grep -q 'in use' $DIR/err"
check "-f disconnects the client and destroys" "$L" destroy -r -f tank/vm1
kill $client 2>/dev/null || true
wait $client 2>/dev/null || true

# pools
check "pool list" bash -c "$L pool list -H | grep -q '^tank'"
check "pool status healthy" bash -c "$L pool status tank | grep -q 'errors: No known data errors'"
check "pool status -j" bash -c "$L pool status -j | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); assert d[\"pools\"][\"tank\"][\"state\"]==\"ONLINE\"'"
check "pool create refuses an unknown pool option" bash -c "! $L pool create -o compression=on -s 128M second $DIR/second.vdev 2>$DIR/err; grep -q 'direct-io=writes|off|on' $DIR/err"
check "pool create refuses a bad direct-io" bash -c "! $L pool create -o direct-io=maybe -s 128M second $DIR/second.vdev 2>$DIR/err; grep -q 'direct-io must be writes, off or on' $DIR/err"
check "pool create" "$L" pool create -s 128M -o direct-io=off second "$DIR/second.vdev"
check "pool list shows both" bash -c "$L pool list -H | grep -q '^second'"
check "pool export" "$L" pool export second
check "pool import (direct reads and writes)" "$L" pool import -o direct-io=on "$DIR/second.vdev"
check "pool export after import" "$L" pool export second
check "exported pool is gone" bash -c "! $L pool list second >/dev/null 2>&1"
check "unknown pool is a clear error" bash -c "! $L list nosuch 2>$DIR/err; grep -q \"no pool named 'nosuch'\" $DIR/err"

stop_daemon
check "daemon unreachable exits 3" bash -c "$L list >/dev/null 2>&1; test \$? -eq 3"
finish
