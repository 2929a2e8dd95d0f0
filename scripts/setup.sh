#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# setup.sh -- install every Debian package the build, tests, benchmarks and
# bindings need. Run as root on Debian 12. Idempotent.
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config git
  clang libclang-rt-14-dev llvm           # sanitizers, libFuzzer
  llvm-14-dev                             # the cc tracker's pass plugin (tools/cc)
  libcmocka-dev                           # unit-test assertions
  libxxhash-dev                           # checksums (XXH3)
  valgrind
  libpmemobj-dev                          # PMDK peer for benchmarks
  memcached libmemcached-tools            # memcached peer + protocol tools
  nutcracker                              # twemproxy: the scale-out test
  python3 python3-dev python3-pytest python3-tinydb python3-pymemcache
  python3-venv python3-setuptools python3-wheel  # pip install ./bindings/python
  gnuplot-nox                             # plots of benchmark results
  util-linux procps                       # flock, setpriv, pgrep
)

if [ "$(id -u)" != 0 ]; then
  echo "setup.sh: must run as root (it uses apt-get)" >&2
  exit 1
fi

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Rust: the crate in bindings/rust builds offline with the standard library
# only. Use the toolchain on PATH if there is one, else Debian's.
if ! command -v cargo >/dev/null 2>&1 && [ ! -x "${HOME:-/root}/.cargo/bin/cargo" ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends cargo rustc
fi
echo "setup.sh: all packages present"

# The KVM tests (docs/VM.md): qemu and a guest kernel with a standard KVM,
# in which libvolimem and the vm-dirty/vm-wp trackers are tested on a
# machine without /dev/kvm. ~15 s and ~500 MB in build-vm/; VP_SKIP_VM=1
# skips it (the .qemu tests are then reported Skipped).
if [ "${VP_SKIP_VM:-0}" != 1 ]; then
  bash "$(dirname "$0")/setup-vm.sh"
fi
