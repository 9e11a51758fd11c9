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
#   REPS   rounds (default 3); each round runs the baseline and every configuration once, and the
#          table shows the median and the min-max range over the rounds
#   CKSUMS / COMPS  space-separated lists to override the matrix (default "xxh3 sha256" and
#          "off lz4 zstd")
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SIZE=${SIZE:-1024}
BLOCK=${BLOCK:-128}
DATA=${DATA:-mixed}
BUILD=${BUILD:-$ROOT/build-release}
CKSUMS=${CKSUMS:-xxh3 sha256}
REPS=${REPS:-3}
COMPS=${COMPS:-off lz4 zstd}

source "$ROOT/bench/lib.sh"
build_engine_driver

scratch_dir "baseline.dat" "engine.vdev"
echo "# SIZE=${SIZE} MiB BLOCK=${BLOCK} KiB DATA=${DATA}; MB/s = 10^6 logical bytes/s;" \
    "write = until durable (fdatasync / pool_sync), read = cold cache"

common=(--dir "$DIR" --size "$SIZE" --block "$BLOCK" --data "$DATA")

configs=(baseline)
for ck in $CKSUMS; do
    for comp in $COMPS; do
        configs+=("$ck+$comp")
    done
done

# Every round runs the baseline and then each configuration once, so slow drifts of the shared
# machine hit all of them alike; the table reports medians over the rounds.
declare -A W R A
for ((round = 1; round <= REPS; round++)); do
    for cfg in "${configs[@]}"; do
        if [[ $cfg == baseline ]]; then
            line=$("$BIN" "${common[@]}" --baseline)
            A[$cfg]=$SIZE
        else
            line=$("$BIN" "${common[@]}" --checksum "${cfg%+*}" --compress "${cfg#*+}")
            A[$cfg]=$(value alloc_MiB "$line")
        fi
        echo "round=$round $line"
        W[$cfg]+=" $(value write_MBps "$line")"
        R[$cfg]+=" $(value read_MBps "$line")"
    done
done

base_w=$(median "${W[baseline]}")
base_r=$(median "${R[baseline]}")
echo
echo "Medians of $REPS round(s); ratios are engine / (pwrite or pread) in the same run."
printf '| %-13s | %10s | %10s | %11s | %10s | %9s | %13s | %13s |\n' config "write MB/s" \
    "read MB/s" "write ratio" "read ratio" "alloc MiB" "write range" "read range"
printf '|%s|%s|%s|%s|%s|%s|%s|%s|\n' --------------- -----------: -----------: ------------: \
    -----------: ----------: --------------: --------------:
for cfg in "${configs[@]}"; do
    w=$(median "${W[$cfg]}")
    r=$(median "${R[$cfg]}")
    name=$cfg
    [[ $cfg == baseline ]] && name="pwrite/pread"
    printf '| %-13s | %10.1f | %10.1f | %11s | %10s | %9.1f | %13s | %13s |\n' "$name" "$w" "$r" \
        "$(ratio "$w" "$base_w")" "$(ratio "$r" "$base_r")" "${A[$cfg]}" \
        "$(spread "${W[$cfg]}")" "$(spread "${R[$cfg]}")"
done
