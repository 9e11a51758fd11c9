#!/usr/bin/env bash
# Installs what is missing, builds LCPFS (optimised) and starts lcpfsd on the embedded default:
# pool 'tank' on a 16 GiB sparse file in ./lcpfs-data (created on the first run, imported after),
# volume tank/vol0 (4 GiB) exported over NBD on 127.0.0.1:10809 and a unix socket, and the admin
# socket for `build/bin/lcpfs`. Extra arguments go to lcpfsd (e.g. -c FILE, -o key=value).
# Stop it with Ctrl-C (or SIGTERM): it finishes requests in flight and exports the pool.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/deps.sh

BUILD=build
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=OFF >/dev/null
cmake --build "$BUILD" -j "$(nproc)"

exec "$BUILD/bin/lcpfsd" "$@"
