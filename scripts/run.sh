#!/usr/bin/env bash
# Installs what is missing, builds LCPFS (optimised) and runs it on the embedded default: a pool
# 'tank' on a 16 GiB sparse file under ./lcpfs-data (created on first run, imported after).
# Until the lcpfsd daemon lands, this runs the engine demo: it writes, commits, reads back,
# exports, and verifies the pool with lcpfs-check.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/deps.sh

BUILD=build
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=OFF >/dev/null
cmake --build "$BUILD" -j "$(nproc)"

DATA=${LCPFS_DATA_DIR:-./lcpfs-data}
"$BUILD/bin/lcpfs-demo" --data-dir "$DATA" "$@"
"$BUILD/bin/lcpfs-check" "$DATA/tank.vdev"
