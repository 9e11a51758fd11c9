#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Before/after of two (or more) lcpfsd binaries on one NBD workload, runs interleaved so that
# the machine's drift hits every binary alike; prints each run and the median per binary.
#
#   bench/nbd-ab.sh WORKLOAD ROUNDS LABEL=/path/to/lcpfsd [LABEL=/path/to/lcpfsd ...]
#
# Each run starts the binary on a fresh data folder (embedded default: pool on an 8 GiB sparse
# file, 4 GiB volume, xxh3 + lz4) and measures, over the unix socket:
#   in      nbdcopy --connections=4 of 2 GiB of random data into the volume (MiB/s)
#   in2     the same copy twice; the second, over the first (the cache full, old blocks freed)
#   out     the same copy in, then nbdcopy --connections=4 of the volume to null: (MiB/s)
#   seqw    fio ioengine=nbd sequential write 1M QD16 of 2 GiB into the empty volume (MiB/s)
#   rewrite the same fio write twice; the second, over the first, is measured (MiB/s)
#   randw   fio sequential 2 GiB, then fio random write 4k QD32 for 15 s (IOPS)
# BENCH_DIR (default /tmp/lcpfs-ab) holds the data folder and the 2 GiB source file.
set -euo pipefail

[ $# -ge 3 ] || {
    sed -n '3,18p' "$0"
    exit 2
}
WORK=$1
ROUNDS=$2
shift 2
DIR=${BENCH_DIR:-/tmp/lcpfs-ab}
mkdir -p "$DIR"
SRC=$DIR/src.raw
[ -f "$SRC" ] || head -c 2048M /dev/urandom >"$SRC"

PID=
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    rm -rf "$DIR/data"
}
trap cleanup EXIT

fio_nbd() { # uri rw bs depth extra... -> fio JSON's first job
    local uri=$1 rw=$2 bs=$3 qd=$4
    shift 4
    fio --name=ab --ioengine=nbd --uri="$uri" --rw="$rw" --bs="$bs" --iodepth="$qd" "$@" \
        --output-format=json 2>/dev/null | python3 -c '
import json, sys
t = sys.stdin.read()
print(json.dumps(json.loads(t[t.index("{"):])["jobs"][0]))'
}

one_run() { # binary -> number
    local bin=$1 d=$DIR/data
    rm -rf "$d"
    mkdir -p "$d"
    "$bin" -o "server.data-dir=$d" -o nbd.listen= -o "nbd.unix=$d/nbd.sock" \
        -o pool.tank.create-size=8G -o pool.tank.default-volume-size=4G >"$d/log" 2>&1 &
    PID=$!
    local u="nbd+unix:///vol0?socket=$d/nbd.sock"
    local up=
    for _ in $(seq 1 200); do
        nbdinfo --size "$u" >/dev/null 2>&1 && up=1 && break
        sleep 0.05
    done
    if [ -z "$up" ]; then
        echo "nbd-ab: $bin did not come up (log: $d/log)" >&2
        exit 1
    fi
    local t0 t1 out
    case $WORK in
    in | in2 | out)
        [ "$WORK" = in2 ] && nbdcopy --connections=4 "$SRC" "$u"
        cat "$SRC" >/dev/null # every copy starts with its source in the page cache
        t0=$(date +%s.%N)
        nbdcopy --connections=4 "$SRC" "$u"
        if [ "$WORK" = out ]; then
            t0=$(date +%s.%N)
            nbdcopy --connections=4 "$u" null:
        fi
        t1=$(date +%s.%N)
        out=$(python3 -c "print('%.0f' % (2048 / ($t1 - $t0)))")
        ;;
    seqw | rewrite)
        [ "$WORK" = rewrite ] && fio_nbd "$u" write 1M 16 --size=2G >/dev/null
        out=$(fio_nbd "$u" write 1M 16 --size=2G |
            python3 -c 'import json,sys; print("%.0f" % (json.load(sys.stdin)["write"]["bw"] / 1024))')
        ;;
    randw)
        fio_nbd "$u" write 1M 16 --size=2G >/dev/null
        out=$(fio_nbd "$u" randwrite 4k 32 --size=2G --time_based --runtime=15 |
            python3 -c 'import json,sys; print("%.0f" % json.load(sys.stdin)["write"]["iops"])')
        ;;
    *)
        echo "unknown workload '$WORK'" >&2
        exit 2
        ;;
    esac
    kill "$PID"
    wait "$PID" || true
    PID=
    echo "$out"
}

for spec in "$@"; do
    [ -x "${spec#*=}" ] || {
        echo "nbd-ab: ${spec#*=} is not an executable" >&2
        exit 2
    }
done
declare -A RES
for _ in $(seq 1 "$ROUNDS"); do
    for spec in "$@"; do
        v=$(one_run "${spec#*=}")
        RES[${spec%%=*}]="${RES[${spec%%=*}]:-} $v"
        echo "${spec%%=*}: $v"
    done
done
for spec in "$@"; do
    label=${spec%%=*}
    # shellcheck disable=SC2086
    med=$(printf '%s\n' ${RES[$label]} | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    echo "$label:${RES[$label]}  median $med"
done
