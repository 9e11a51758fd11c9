#!/usr/bin/env bash
# Installs what is missing, builds LCPFS with ASan+UBSan and runs every test through ctest:
# Criterion unit suites, fuzz-corpus replays and the crash-consistency stress run.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/deps.sh test

BUILD=build/asan
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Asan >/dev/null
cmake --build "$BUILD" -j "$(nproc)"

# ASan: report leaks, abort on the first error; UBSan: print stacks.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:${ASAN_OPTIONS:-}
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}
cd "$BUILD"
ctest --output-on-failure -j "$(nproc)" "$@"
