#!/usr/bin/env bash
# lcpfs-check as a user runs it: a pool made by lcpfs-demo verifies clean (exit 0); after a
# byte of an object's data is damaged it reports the damage by object and block (exit 1); a file
# that is no pool is refused (exit 2).
set -euo pipefail
BIN=$1
dir=$(mktemp -d /tmp/lcpfs-check-test.XXXXXX)
trap 'rm -rf "$dir"' EXIT

"$BIN/lcpfs-demo" --data-dir "$dir" >/dev/null 2>&1
out=$("$BIN/lcpfs-check" -q "$dir/tank.vdev")
echo "$out"
case "$out" in OK:*" 0 errors"*) ;; *) echo "expected a clean pool"; exit 1 ;; esac

# Damage a spread of 4 KiB blocks inside the demo object's data
# (the demo's data blocks follow the metadata at the start of the allocatable area).
base=$((4 << 20))
for blk in $(seq 64 37 400); do   # a spread of blocks inside the written data
  printf '\x5a\xa5\x5a\xa5' | dd of="$dir/tank.vdev" bs=1 seek=$((base + blk * 4096 + 100)) \
    conv=notrunc status=none
done
set +e
out=$("$BIN/lcpfs-check" "$dir/tank.vdev")
rc=$?
set -e
echo "$out" | tail -n 3
[ $rc -eq 1 ] || { echo "expected exit 1 after damage, got $rc"; exit 1; }
echo "$out" | grep -q "object 1 level 0 block" || { echo "damage not named by object and block"; exit 1; }

head -c 100000000 /dev/zero > "$dir/notapool"
set +e
"$BIN/lcpfs-check" "$dir/notapool" >/dev/null 2>&1
rc=$?
set -e
[ $rc -eq 2 ] || { echo "expected exit 2 for a file that is no pool, got $rc"; exit 1; }
echo "1 passed, 0 failed"
