#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Redundancy benchmark: sequential write and read throughput of the object layer on mirrors and
# RAID-Z1/2/3 of file vdevs, beside a single file vdev and plain pwrite/pread of the same bytes,
# all in one invocation so the ratios compare like with like on a noisy machine. Every layout
# puts its device files in the same folder (one file system): the numbers show what parity,
# extra copies and column I/O cost in CPU and I/O calls, not what more spindles would give.
# Results and reading: docs/BENCHMARKS.md.
#
# Usage: bench/raidz.sh
# Environment:
#   SIZE     MiB written and read back per run (default 512)
#   BLOCK    block size in KiB (default 128)
#   DATA     random (default: parity work on every byte), mixed or text
#   LAYOUTS  space-separated KEYWORD:COUNT list (default
#            "stripe:1 mirror:2 mirror:3 raidz1:5 raidz2:6 raidz3:7")
#   DIR      directory on the file system under test (default: a new mktemp -d under /var/tmp)
#   BUILD    build directory (default build-release; built if missing)
#   REPS     rounds (default 3); medians and min-max ranges over the rounds
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SIZE=${SIZE:-512}
BLOCK=${BLOCK:-128}
DATA=${DATA:-random}
BUILD=${BUILD:-$ROOT/build-release}
REPS=${REPS:-3}
LAYOUTS=${LAYOUTS:-stripe:1 mirror:2 mirror:3 raidz1:5 raidz2:6 raidz3:7}

source "$ROOT/bench/lib.sh"
build_engine_driver

scratch_dir "baseline.dat" "engine*.vdev"
echo "# SIZE=${SIZE} MiB BLOCK=${BLOCK} KiB DATA=${DATA} xxh3+lz4; MB/s = 10^6 logical bytes/s;" \
    "write = until durable (fdatasync / pool_sync), read = cold cache"

common=(--dir "$DIR" --size "$SIZE" --block "$BLOCK" --data "$DATA")

configs=(baseline $LAYOUTS)
declare -A W R A
for ((round = 1; round <= REPS; round++)); do
    for cfg in "${configs[@]}"; do
        if [[ $cfg == baseline ]]; then
            line=$("$BIN" "${common[@]}" --baseline)
            A[$cfg]=$SIZE
        else
            line=$("$BIN" "${common[@]}" --layout "${cfg%:*}" "${cfg#*:}")
            A[$cfg]=$(value alloc_MiB "$line")
        fi
        echo "round=$round $line"
        W[$cfg]+=" $(value write_MBps "$line")"
        R[$cfg]+=" $(value read_MBps "$line")"
    done
done

one_w=$(median "${W[stripe:1]:-${W[baseline]}}")
one_r=$(median "${R[stripe:1]:-${R[baseline]}}")
base_w=$(median "${W[baseline]}")
base_r=$(median "${R[baseline]}")
echo
echo "Medians of $REPS round(s). /single = layout / one file vdev; /pwrite = layout / plain"
echo "pwrite+fdatasync or pread of the same bytes, in the same run. alloc = bytes allocated on"
echo "the top-level vdev (RAID-Z: data + parity + padding; mirror: one side)."
printf '| %-12s | %10s | %9s | %12s | %11s | %12s | %11s | %9s | %11s | %11s |\n' layout \
    "write MB/s" "read MB/s" "write/single" "read/single" "write/pwrite" "read/pread" \
    "alloc MiB" "write range" "read range"
printf '|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|\n' -------------- -----------: ----------: -------------: \
    ------------: -------------: ------------: ----------: ------------: ------------:
for cfg in "${configs[@]}"; do
    w=$(median "${W[$cfg]}")
    r=$(median "${R[$cfg]}")
    name=${cfg/:/ x}
    [[ $cfg == baseline ]] && name="pwrite/pread"
    printf '| %-12s | %10.1f | %9.1f | %12s | %11s | %12s | %11s | %9.1f | %11s | %11s |\n' \
        "$name" "$w" "$r" "$(ratio "$w" "$one_w")" "$(ratio "$r" "$one_r")" \
        "$(ratio "$w" "$base_w")" "$(ratio "$r" "$base_r")" "${A[$cfg]}" \
        "$(spread "${W[$cfg]}")" "$(spread "${R[$cfg]}")"
done
