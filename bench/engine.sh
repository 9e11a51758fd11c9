#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Engine (object layer) benchmark: write and read throughput of the object layer on one file
# vdev, for checksum {xxh3, sha256} x compression {off, lz4, zstd}, beside plain pwrite/pread of
# the same bytes on the same file system, as ratios. All runs happen in one invocation so the
# ratios compare like with like on a noisy machine. Results and reading: docs/BENCHMARKS.md.
#
# Usage: bench/engine.sh
# Environment:
#   SIZE   MiB written and read back per run (default 1024)
#   BLOCK  block and I/O size in KiB (default 128)
#   DATA   mixed (default: half text-like, half random), text or random
#   DIR    directory on the file system under test (default: a new mktemp -d under /var/tmp;
#          a DIR you give is kept, only the files the runs create are removed)
#   BUILD  build directory (default build-release in the repository root; built if missing)
#   CKSUMS / COMPS  space-separated lists to override the matrix (default "xxh3 sha256" and
#          "off lz4 zstd")
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SIZE=${SIZE:-1024}
BLOCK=${BLOCK:-128}
DATA=${DATA:-mixed}
BUILD=${BUILD:-$ROOT/build-release}
CKSUMS=${CKSUMS:-xxh3 sha256}
COMPS=${COMPS:-off lz4 zstd}

BIN=$BUILD/bin/lcpfs-bench-engine
if [[ ! -d $BUILD ]]; then
    gen=()
    command -v ninja >/dev/null && gen=(-G Ninja)
    # Warnings stay errors in the test builds; an -O2-only false positive must not stop a benchmark.
    cmake -S "$ROOT" -B "$BUILD" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
        -DLCPFS_WERROR=OFF >&2
fi
cmake --build "$BUILD" --target lcpfs-bench-engine >&2

if [[ -n ${DIR:-} ]]; then
    mkdir -p "$DIR"
    cleanup() { rm -f "$DIR/baseline.dat" "$DIR/engine.vdev"; }
else
    DIR=$(mktemp -d /var/tmp/lcpfs-bench.XXXXXX)
    cleanup() { rm -rf "$DIR"; }
fi
trap cleanup EXIT INT TERM

fs=$(df -PT "$DIR" | awk 'NR == 2 { print $2 " on " $1 }')
echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(uname -srm), $(nproc) cores, DIR=$DIR ($fs)"
echo "# SIZE=${SIZE} MiB BLOCK=${BLOCK} KiB DATA=${DATA}; MB/s = 10^6 logical bytes/s;" \
    "write = until durable (fdatasync / pool_sync), read = cold cache"

common=(--dir "$DIR" --size "$SIZE" --block "$BLOCK" --data "$DATA")
# value KEY LINE: the value of KEY=... in a result line.
value() { tr ' ' '\n' <<<"$2" | sed -n "s/^$1=//p"; }

line=$("$BIN" "${common[@]}" --baseline)
echo "$line"
base_w=$(value write_MBps "$line")
base_r=$(value read_MBps "$line")

results=()
for ck in $CKSUMS; do
    for comp in $COMPS; do
        line=$("$BIN" "${common[@]}" --checksum "$ck" --compress "$comp")
        echo "$line"
        results+=("$line")
    done
done

echo
printf '| %-16s | %9s | %9s | %11s | %11s | %9s |\n' config "write MB/s" "read MB/s" \
    "write ratio" "read ratio" "alloc MiB"
printf '|%s|%s|%s|%s|%s|%s|\n' ------------------ ----------: ----------: -------------: \
    -------------: ----------:
printf '| %-16s | %9.1f | %9.1f | %11s | %11s | %9s |\n' "pwrite/pread" "$base_w" "$base_r" \
    1.00 1.00 "$SIZE"
for line in "${results[@]}"; do
    w=$(value write_MBps "$line")
    r=$(value read_MBps "$line")
    printf '| %-16s | %9.1f | %9.1f | %11.2f | %11.2f | %9.1f |\n' \
        "$(value cksum "$line")+$(value comp "$line")" "$w" "$r" \
        "$(awk -v a="$w" -v b="$base_w" 'BEGIN { print (b > 0 ? a / b : 0) }')" \
        "$(awk -v a="$r" -v b="$base_r" 'BEGIN { print (b > 0 ? a / b : 0) }')" \
        "$(value alloc_MiB "$line")"
done
