#!/usr/bin/env bash
# Installs the Debian 12 packages LCPFS needs. Idempotent and quick when everything is present:
# it asks dpkg first and calls apt-get only for what is missing.
#   scripts/deps.sh          what building and running lcpfsd needs
#   scripts/deps.sh test     that, plus the third-party clients the tests drive
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config clang
  liblz4-dev libzstd-dev libxxhash-dev libssl-dev libisal-dev
  libevent-dev libjansson-dev libinih-dev
)
if [ "${1:-}" = "test" ]; then
  PACKAGES+=(
    libcriterion-dev
    libnbd-bin python3-libnbd nbdfuse nbdkit qemu-utils fio gnutls-bin e2fsprogs
  )
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "deps: need root to install packages (run as root or with sudo)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
