#!/usr/bin/env bash
# A real filesystem on an LCPFS volume without kernel NBD: nbdfuse exposes vol0 as a file,
# losetup makes it a block device, mkfs.ext4 formats it (discarding through FUSE to NBD trim),
# mount, write a tree of files (one large random file, many small ones, a hard link, a symlink,
# a sparse file), umount, e2fsck -f must be clean; mount again and verify every checksum. Then the
# same bytes are read back without FUSE (nbdcopy to an image file) after a daemon restart:
# e2fsck is clean there too and debugfs extracts the large file intact.
#
# Skips (exit 0) only when a prerequisite is missing: root, /dev/fuse, loop devices, or one of
# the tools. Mounts, loop devices and nbdfuse are cleaned up on every path.
source "$(dirname "$0")/lib.sh"

skip() {
    echo "SKIP: $*"
    exit 0
}
[ "$(id -u)" -eq 0 ] || skip "needs root (losetup, mount)"
[ -c /dev/fuse ] || skip "no /dev/fuse"
[ -c /dev/loop-control ] || skip "no /dev/loop-control (no loop devices)"
for t in nbdfuse losetup mkfs.ext4 e2fsck debugfs mount umount mountpoint nbdcopy sha256sum; do
    command -v "$t" >/dev/null || skip "$t is not installed"
done
grep -qw fuse /proc/filesystems || skip "the kernel has no FUSE filesystem"
grep -qw ext4 /proc/filesystems || skip "the kernel has no ext4"

FUSE_DIR=$DIR/fuse
FS=$DIR/fs
DISK=$FUSE_DIR/disk.raw
LOOP=
FUSE_PID=

# Undo in reverse order; every step tolerates "not done yet". umount -l is the last resort so
# that lib.sh's rm -rf never walks into a mounted filesystem.
fuse_cleanup() {
    if mountpoint -q "$FS" 2>/dev/null; then
        umount "$FS" 2>/dev/null || umount -l "$FS" 2>/dev/null || true
    fi
    if [ -n "$LOOP" ]; then
        losetup -d "$LOOP" 2>/dev/null || true
        LOOP=
    fi
    if [ -d "$FUSE_DIR" ] && grep -q " $FUSE_DIR fuse" /proc/mounts; then
        umount "$FUSE_DIR" 2>/dev/null || umount -l "$FUSE_DIR" 2>/dev/null || true
    fi
    if [ -n "$FUSE_PID" ]; then
        for _ in $(seq 1 50); do
            kill -0 "$FUSE_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$FUSE_PID" 2>/dev/null || true
        wait "$FUSE_PID" 2>/dev/null || true
        FUSE_PID=
    fi
}
trap 'rc=$?; set +e; fuse_cleanup; (exit $rc); cleanup' EXIT

start_daemon
mkdir -p "$FUSE_DIR" "$FS"

# ---- nbdfuse: vol0 as a file -----------------------------------------------------------------
nbdfuse -P "$DIR/nbdfuse.pid" "$DISK" "$(URI vol0)" 2>"$DIR/nbdfuse.err" &
FUSE_PID=$!
for _ in $(seq 1 100); do
    [ -s "$DIR/nbdfuse.pid" ] && break
    kill -0 $FUSE_PID 2>/dev/null || { cat "$DIR/nbdfuse.err"; fail "nbdfuse exited"; }
    sleep 0.1
done
check "nbdfuse is ready" test -s "$DIR/nbdfuse.pid"
check "the FUSE mount is listed" grep -q " $FUSE_DIR fuse" /proc/mounts
check "the volume appears as a 256 MiB file" test "$(stat -c %s "$DISK")" -eq 268435456

# ---- loop device, mkfs, mount ------------------------------------------------------------------
LOOP=$(losetup --find --show "$DISK") || fail "losetup could not attach $DISK"
echo "loop device: $LOOP"
check "the loop device is 256 MiB" test "$(blockdev --getsize64 "$LOOP")" -eq 268435456
check "mkfs.ext4 on the loop device" mkfs.ext4 -q -F -L lcpfs-test "$LOOP"
check "mount" mount -t ext4 "$LOOP" "$FS"

# ---- write a tree of files ---------------------------------------------------------------------
seed=$RANDOM
echo "seed: $seed (small-file sizes)"
head -c 48M /dev/urandom >"$DIR/big.src"
check "write a 48 MiB file" cp "$DIR/big.src" "$FS/big.bin"
mkdir -p "$FS/tree/a/b/c" "$FS/tree/d"
/usr/bin/python3 - "$FS/tree" "$seed" <<'PY'
import os, random, sys
root, seed = sys.argv[1], int(sys.argv[2])
rng = random.Random(seed)
dirs = ["", "a", "a/b", "a/b/c", "d"]
for i in range(400):
    d = dirs[i % len(dirs)]
    with open(os.path.join(root, d, f"f{i:03d}"), "wb") as f:
        f.write(rng.randbytes(rng.randrange(0, 70000)))
PY
ln "$FS/tree/f000" "$FS/tree/hardlink"
ln -s a/b/c/f003 "$FS/tree/symlink"
truncate -s 300M "$FS/sparse.bin" # larger than the filesystem: only the tail is allocated
printf 'tail' | dd of="$FS/sparse.bin" bs=1 seek=$(((300 << 20) - 4)) conv=notrunc status=none
(cd "$FS" && find . -type f ! -name manifest -print0 | sort -z | xargs -0 sha256sum) >"$DIR/manifest"
check "manifest has 403 files" test "$(wc -l <"$DIR/manifest")" -eq 403
check "sync" sync -f "$FS/big.bin"
df -h "$FS" | tail -1
check "umount" umount "$FS"
check "e2fsck -f is clean after umount" e2fsck -f -n "$LOOP"

# ---- mount again and verify ----------------------------------------------------------------------
check "mount again read-only" mount -t ext4 -o ro "$LOOP" "$FS"
check "every checksum matches" bash -c "cd $FS && sha256sum --quiet -c $DIR/manifest"
check "the large file is the source" cmp "$FS/big.bin" "$DIR/big.src"
check "hard link shares the inode" test "$(stat -c %i "$FS/tree/f000")" = "$(stat -c %i "$FS/tree/hardlink")"
check "symlink target" test "$(readlink "$FS/tree/symlink")" = a/b/c/f003
check "sparse file keeps its tail" test "$(tail -c 4 "$FS/sparse.bin")" = tail
check "sparse file is sparse" test "$(stat -c %b "$FS/sparse.bin")" -le 64
check "umount again" umount "$FS"
check "detach the loop device" losetup -d "$LOOP"
LOOP=
check "unmount nbdfuse" umount "$FUSE_DIR"
for _ in $(seq 1 100); do
    kill -0 $FUSE_PID 2>/dev/null || break
    sleep 0.1
done
rc=0
wait $FUSE_PID || rc=$?
FUSE_PID=
check "nbdfuse exited cleanly after the unmount" test $rc -eq 0

# ---- the same bytes without FUSE, after a restart ------------------------------------------------
stop_daemon
n=$(grep -c 'ready: connect' "$DIR/lcpfsd.log")
start_daemon
for _ in $(seq 1 200); do # lib.sh's start_daemon sees the first run's "ready:" line
    [ "$(grep -c 'ready: connect' "$DIR/lcpfsd.log")" -gt "$n" ] && break
    sleep 0.05
done
check "nbdcopy the volume out after a restart" nbdcopy "$(URI vol0)" "$DIR/image.raw"
check "e2fsck -f is clean on the copied image" e2fsck -f -n "$DIR/image.raw"
check "debugfs extracts the large file intact" bash -c \
    "debugfs -R 'dump /big.bin $DIR/big.dump' $DIR/image.raw 2>/dev/null && cmp $DIR/big.dump $DIR/big.src"
check "filesystem label" bash -c "dumpe2fs -h $DIR/image.raw 2>/dev/null | grep -q 'volume name:.*lcpfs-test'"
map=$(nbdinfo --map "$(URI vol0)")
check "the unwritten part of the volume is still holes (> 100 MiB)" bash -c \
    "awk '\$4 ~ /hole/ {h += \$2} END {exit !(h > 100 * 1048576)}' <<<'$map'"
stop_daemon
check "no sanitizer report in the daemon log" bash -c "! grep -Eq 'Sanitizer|runtime error' $DIR/lcpfsd.log"
finish
