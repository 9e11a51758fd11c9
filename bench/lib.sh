# SPDX-License-Identifier: MIT
# Shared by the engine-level benchmark scripts (engine.sh, raidz.sh): building the Release driver,
# the scratch folder, and the statistics over rounds. Source it after setting ROOT and BUILD.

# build_engine_driver: builds $BUILD (Release, no tests) if missing, then lcpfs-bench-engine; sets
# BIN to the driver.
build_engine_driver() {
    BIN=$BUILD/bin/lcpfs-bench-engine
    if [[ ! -d $BUILD ]]; then
        local gen=()
        command -v ninja >/dev/null && gen=(-G Ninja)
        # Warnings stay errors in the test builds; an -O2-only false positive must not stop a
        # benchmark.
        cmake -S "$ROOT" -B "$BUILD" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
            -DLCPFS_WERROR=OFF >&2
    fi
    cmake --build "$BUILD" --target lcpfs-bench-engine >&2
}

# scratch_dir PATTERN...: uses $DIR if set (removing only the files matching PATTERN at exit),
# else a new mktemp -d under /var/tmp removed whole at exit. Prints the header line about it.
scratch_dir() {
    if [[ -n ${DIR:-} ]]; then
        mkdir -p "$DIR"
        SCRATCH_PATTERNS=("$@")
        cleanup() { local p; for p in "${SCRATCH_PATTERNS[@]}"; do rm -f "$DIR"/$p; done; }
    else
        DIR=$(mktemp -d /var/tmp/lcpfs-bench.XXXXXX)
        cleanup() { rm -rf "$DIR"; }
    fi
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    local fs
    fs=$(df -PT "$DIR" | awk 'NR == 2 { print $2 " on " $1 }')
    echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(uname -srm), $(nproc) cores, DIR=$DIR ($fs)"
}

# value KEY LINE: the value of KEY=... in a result line.
value() { tr ' ' '\n' <<<"$2" | sed -n "s/^$1=//p"; }
# median / spread of the space-separated numbers in $1.
median() {
    tr ' ' '\n' <<<"$1" | sed '/^$/d' | sort -g |
        awk '{ a[NR] = $1 } END { print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) }'
}
spread() { tr ' ' '\n' <<<"$1" | sed '/^$/d' | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.0f-%.0f", lo, hi }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
