#!/usr/bin/env bash
# NBD throughput of lcpfsd beside nbdkit's file plugin and qemu-nbd, in one run on one machine,
# all three serving 4 GiB volumes backed by files in the same folder:
#   fio (ioengine=nbd): sequential write/read 1M QD16, random read/write 4k QD32, over TCP and
#   over the unix socket; nbdcopy of 2 GiB into the volume and back out over TCP, the unix socket
#   and TLS (PSK; fio's nbd engine cannot read a PSK file, so TLS has nbdcopy rows only). Each
#   row prints MiB/s (or IOPS) per server and the ratio lcpfsd/peer. lcpfsd runs with its
#   default properties (xxh3 checksums, lz4 compression). Every measurement starts with no
#   unwritten data left by the one before it (settle).
#
#   bench/nbd.sh [--quick]        (BENCH_DIR=/tmp/lcpfs-bench by default; needs ~14 GiB there)
#
# BUILD=DIR uses (and builds) another Release build folder than build-release; LCPFSD=PATH runs
# that lcpfsd binary and builds nothing (an older build, for a before/after in one run);
# BENCH_ROWS is a regular expression selecting rows by name (e.g. 'seq read|nbdcopy');
# BENCH_TRANSPORTS and BENCH_COPY_TRANSPORTS pick the transports of the fio and nbdcopy rows;
# BENCH_ROUNDS (3; 1 with --quick) is how many times each row measures each server, interleaved:
# a row prints the medians, their ratios, and the range of the rounds' ratios to nbdkit.
#
# The machine is shared and noisy: compare the ratios within one run, not absolute numbers
# across runs (docs/BENCHMARKS.md).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export PATH=/usr/bin:/usr/sbin:/bin:$PATH

QUICK=0
[ "${1:-}" = "--quick" ] && QUICK=1
SEQ_MB=$([ $QUICK = 1 ] && echo 512 || echo 2048)
SEQ_SIZE=${SEQ_MB}M
RAND_SECS=$([ $QUICK = 1 ] && echo 8 || echo 20)
COPY_MB=$([ $QUICK = 1 ] && echo 512 || echo 2048)
DIR=${BENCH_DIR:-/tmp/lcpfs-bench}
BUILD=${BUILD:-build-release}
ROWS=${BENCH_ROWS:-.}
ROUNDS=${BENCH_ROUNDS:-$([ $QUICK = 1 ] && echo 1 || echo 3)}

./scripts/deps.sh test >/dev/null
if [ -z "${LCPFSD:-}" ]; then
    cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
    cmake --build "$BUILD" -j "$(nproc)" --target lcpfsd >/dev/null
    LCPFSD=$BUILD/bin/lcpfsd
fi

rm -rf "$DIR"
mkdir -p "$DIR"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$DIR"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_port() {
    for _ in $(seq 1 200); do
        nbdinfo --size "$1" >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    echo "bench: server at $1 did not come up" >&2
    exit 1
}

psktool -u bench -p "$DIR/keys.psk" >/dev/null 2>&1

# ---- servers --------------------------------------------------------------------------------
P_L=$(free_port)
P_K=$(free_port)
P_Q=$(free_port)
P_LT=$(free_port)
P_KT=$(free_port)
P_QT=$(free_port)

start_lcpfsd() { # port, extra args
    local port=$1
    shift
    "$LCPFSD" -o "server.data-dir=$DIR/lcpfs-$port" -o "nbd.listen=127.0.0.1:$port" \
        -o pool.tank.create-size=8G -o pool.tank.default-volume-size=4G \
        -o "nbd.unix=$DIR/lcpfs-$port.sock" "$@" >"$DIR/lcpfsd-$port.log" 2>&1 &
    PIDS+=($!)
}
start_nbdkit() { # port (or a unix socket path), image, extra args
    local where=$1 img=$2
    shift 2
    truncate -s 4G "$img"
    if [[ $where == /* ]]; then
        nbdkit -f -U "$where" "$@" file "$img" >"$where.log" 2>&1 &
    else
        nbdkit -f -i 127.0.0.1 -p "$where" "$@" file "$img" >"$DIR/nbdkit-$where.log" 2>&1 &
    fi
    PIDS+=($!)
}
start_qemu() { # port, image, extra args
    local port=$1 img=$2
    shift 2
    truncate -s 4G "$img"
    qemu-nbd -f raw -x vol0 -b 127.0.0.1 -p "$port" --persistent --shared=16 --cache=writeback \
        --aio=threads "$@" "$img" >"$DIR/qemu-$port.log" 2>&1 &
    PIDS+=($!)
}

start_lcpfsd "$P_L"
start_nbdkit "$P_K" "$DIR/nbdkit.img"
start_nbdkit "$DIR/nbdkit-unix.sock" "$DIR/nbdkit-unix.img"
start_qemu "$P_Q" "$DIR/qemu.img"
start_lcpfsd "$P_LT" -o nbd.tls=require -o "nbd.tls-psk-file=$DIR/keys.psk"
start_nbdkit "$P_KT" "$DIR/nbdkit-tls.img" --tls=require --tls-psk="$DIR/keys.psk"
start_qemu "$P_QT" "$DIR/qemu-tls.img" \
    --object "tls-creds-psk,id=tls0,endpoint=server,dir=$DIR" --tls-creds=tls0
# qemu's PSK object reads DIR/keys.psk.

wait_port "nbd://127.0.0.1:$P_L/vol0"
wait_port "nbd://127.0.0.1:$P_K/"
wait_port "nbd://127.0.0.1:$P_Q/vol0"

uri() { # server transport -> URI
    case "$1-$2" in
    lcpfsd-tcp) echo "nbd://127.0.0.1:$P_L/vol0" ;;
    nbdkit-tcp) echo "nbd://127.0.0.1:$P_K/" ;;
    qemu-nbd-tcp) echo "nbd://127.0.0.1:$P_Q/vol0" ;;
    lcpfsd-unix) echo "nbd+unix:///vol0?socket=$DIR/lcpfs-$P_L.sock" ;;
    nbdkit-unix) echo "nbd+unix:///?socket=$DIR/nbdkit-unix.sock" ;;
    qemu-nbd-unix) echo "" ;; # one qemu-nbd serves TCP or unix, and locks its image: TCP only
    lcpfsd-tls) echo "nbds://bench@127.0.0.1:$P_LT/vol0?tls-psk-file=$DIR/keys.psk" ;;
    nbdkit-tls) echo "nbds://bench@127.0.0.1:$P_KT/?tls-psk-file=$DIR/keys.psk" ;;
    qemu-nbd-tls) echo "nbds://bench@127.0.0.1:$P_QT/vol0?tls-psk-file=$DIR/keys.psk" ;;
    esac
}

# fio one job; prints MiB/s (bw) or IOPS.
fio_run() { # uri rw bs depth size|time metric
    local u=$1 rw=$2 bs=$3 qd=$4 amount=$5 metric=$6 extra
    case $amount in *s) extra="--time_based --runtime=${amount%s} --size=$SEQ_SIZE" ;;
    *) extra="--size=$amount" ;; esac
    fio --name=b --ioengine=nbd --uri="$u" --rw="$rw" --bs="$bs" --iodepth="$qd" $extra \
        --output-format=json 2>/dev/null |
        python3 -c "
import json,sys
t=sys.stdin.read()
j=json.loads(t[t.index('{'):])['jobs'][0]  # fio's nbd engine prints a line before the JSON
d=j['write'] if j['write']['io_bytes'] else j['read']
print('%.0f' % (d['bw']/1024 if '$metric'=='MiB/s' else d['iops']))"
}

copy_in() { # uri [nbdcopy options] -> MiB/s
    local u=$1 t0 t1
    shift
    # The source is read once first, so that every server's copy starts with it in the page
    # cache: the page cache here does not keep it across another server's copy (nbdkit's own
    # writes push it out), and a copy that reads half its source from the disk it writes to
    # measures the order of the rows, not the server.
    cat "$DIR/src.raw" >/dev/null
    t0=$(date +%s.%N)
    nbdcopy --connections=4 "$@" "$DIR/src.raw" "$u"
    t1=$(date +%s.%N)
    python3 -c "print('%.0f' % ($COPY_MB/($t1-$t0)))"
}
# The same copy made durable: nbdcopy ends with a FLUSH, and the time includes it.
copy_in_flush() { copy_in "$1" --flush; }
copy_out() {
    local t0 t1
    t0=$(date +%s.%N)
    nbdcopy --connections=4 "$1" null:
    t1=$(date +%s.%N)
    python3 -c "print('%.0f' % ($COPY_MB/($t1-$t0)))"
}

# Writes a server acknowledged but has not made durable are finished after its measurement and
# outside the timing: an NBD FLUSH (lcpfsd commits its txg; nbdkit and qemu-nbd fdatasync their
# files), then sync. Without it the next row's server paid for the previous one: nbdkit's and
# qemu-nbd's writes sit in the page cache, and the kernel wrote gigabytes of them back during
# the following measurement, which was lcpfsd's (each row measures lcpfsd first).
settle() { # uri
    /usr/bin/python3 - "$1" <<'PY'
import sys
import nbd
h = nbd.NBD()
h.set_uri_allow_local_file(True)  # the TLS URIs name their PSK file
h.connect_uri(sys.argv[1])
if h.can_flush():
    h.flush()
h.shutdown()
PY
    sync
}

head -c "${COPY_MB}M" /dev/urandom >"$DIR/src.raw"
sync

printf '%-42s %10s %10s %10s %9s %9s  %s\n' "row (median of $ROUNDS rounds)" "lcpfsd" "nbdkit" \
    "qemu-nbd" "/nbdkit" "/qemu" "rounds' /nbdkit"
row() { # name, transport, then a command that takes a URI and prints one number
    local name=$1 transport=$2
    shift 2
    [[ $name =~ $ROWS ]] || return 0
    local -A vals=()
    local round srv u
    # Rounds interleave the servers, so that a slow stretch of the machine lands on all three.
    for round in $(seq 1 "$ROUNDS"); do
        for srv in lcpfsd nbdkit qemu-nbd; do
            u=$(uri "$srv" "$transport")
            [ -n "$u" ] || continue
            vals[$srv]+="$("$@" "$u") "
            settle "$u"
        done
    done
    python3 - "$name" "${vals[lcpfsd]:-}" "${vals[nbdkit]:-}" "${vals[qemu-nbd]:-}" <<'PY'
import statistics, sys
name = sys.argv[1]
l, k, q = ([float(v) for v in a.split()] for a in sys.argv[2:5])
med = lambda xs: "%.0f" % statistics.median(xs) if xs else "-"
def ratio(a, b):
    return "%.2f" % (statistics.median(a) / statistics.median(b)) if a and b else "-"
# The range of the per-round ratios to nbdkit: how far one round could mislead.
spread = "%.2f-%.2f" % (min(x / y for x, y in zip(l, k)), max(x / y for x, y in zip(l, k))) \
    if len(l) > 1 and len(l) == len(k) else ""
print("%-42s %10s %10s %10s %9s %9s  %s" % (name, med(l), med(k), med(q), ratio(l, k),
                                            ratio(l, q), spread))
PY
}

seqw() { fio_run "$1" write 1M 16 "$SEQ_SIZE" MiB/s; }
# The same writes made durable: fio ends with a FLUSH (end_fsync), timed from outside fio so
# that the figure surely includes it.
seqw_fsync() {
    local t0 t1
    t0=$(date +%s.%N)
    fio --name=b --ioengine=nbd --uri="$1" --rw=write --bs=1M --iodepth=16 --size="$SEQ_SIZE" \
        --end_fsync=1 >/dev/null 2>&1
    t1=$(date +%s.%N)
    python3 -c "print('%.0f' % ($SEQ_MB/($t1-$t0)))"
}
seqr() { fio_run "$1" read 1M 16 "$SEQ_SIZE" MiB/s; }
randr() { fio_run "$1" randread 4k 32 "${RAND_SECS}s" IOPS; }
randw() { fio_run "$1" randwrite 4k 32 "${RAND_SECS}s" IOPS; }

# fio's nbd engine cannot open a PSK file (libnbd forbids local files in its URIs): TLS is
# measured with nbdcopy only.
for tr in ${BENCH_TRANSPORTS:-tcp unix}; do
    row "fio seq write 1M QD16 MiB/s ($tr)" "$tr" seqw
    row "fio seq write 1M QD16 +FLUSH MiB/s ($tr)" "$tr" seqw_fsync
    row "fio seq read 1M QD16 MiB/s ($tr)" "$tr" seqr
    row "fio rand read 4k QD32 IOPS ($tr)" "$tr" randr
    row "fio rand write 4k QD32 IOPS ($tr)" "$tr" randw
done
for tr in ${BENCH_COPY_TRANSPORTS:-tcp unix tls}; do
    row "nbdcopy ${COPY_MB} MiB in MiB/s ($tr)" "$tr" copy_in
    [ "$tr" = tls ] || row "nbdcopy ${COPY_MB} MiB in +FLUSH MiB/s ($tr)" "$tr" copy_in_flush
    row "nbdcopy ${COPY_MB} MiB out MiB/s ($tr)" "$tr" copy_out
done
