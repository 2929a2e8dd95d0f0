#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# setup-vm.sh -- prepare the qemu harness that gives a machine without
# /dev/kvm a real one: install qemu, and fetch (never install) a Debian
# kernel and a static busybox for the guest. Opt-in: CI does not run it,
# and the `vm` tests skip (exit 77) until it has run. Root, Debian 12.
#
# What lands where (docs/VM.md):
#   host packages       qemu-system-x86 cpio kmod xz-utils   (apt-get install)
#   $CACHE/debs/        the kernel and busybox-static .debs   (apt-get download)
#   $CACHE/kroot/       the kernel image package, extracted with dpkg-deb -x,
#                       depmod run on it; nothing touches the host's /boot
#                       or /lib/modules
#   $CACHE/busybox/     busybox-static, extracted the same way
#   $CACHE/kernel-release   the kernel release tests/vm/kvm-guest.sh boots
#
# CACHE is VP_VM_CACHE, default build-vm/ in the source tree (ignored by git
# as /build*/). The kernel is the one the linux-image-amd64 metapackage
# depends on, resolved with apt-cache; VP_VM_KERNEL_PKG=linux-image-...
# picks another (e.g. linux-image-6.12.117+deb12-amd64 for a newer KVM).
# Idempotent: a second run only refreshes the package index.
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
cache=${VP_VM_CACHE:-$src/build-vm}
host_pkgs=(qemu-system-x86 cpio kmod xz-utils)

die() { echo "setup-vm.sh: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (it uses apt-get)"
command -v apt-get >/dev/null || die "needs apt-get (Debian 12)"

export DEBIAN_FRONTEND=noninteractive
echo "setup-vm.sh: apt-get update"
apt-get update -qq

missing=()
for p in "${host_pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "setup-vm.sh: installing ${missing[*]}"
	apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# kernel_pkg -- the versioned image package linux-image-amd64 points to now
# (its candidate version), so the ABI number is never written down here.
kernel_pkg() {
	apt-cache depends linux-image-amd64 2>/dev/null |
		awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }'
}
kpkg=${VP_VM_KERNEL_PKG:-$(kernel_pkg)}
[ -n "$kpkg" ] || die "apt-cache found no kernel behind linux-image-amd64; set VP_VM_KERNEL_PKG=linux-image-<release>"
kver=${kpkg#linux-image-}

mkdir -p "$cache/debs" "$cache/kroot" "$cache/busybox"

# fetch PKG DEST -- download PKG's .deb into debs/ (once) and extract it
# into DEST without installing it.
fetch() {
	local pkg=$1 dest=$2 debs
	debs=("$cache/debs/${pkg}_"*.deb)
	if [ ! -f "${debs[0]}" ]; then
		echo "setup-vm.sh: downloading $pkg"
		# as root into a dir _apt may not reach: no sandbox user
		(cd "$cache/debs" && apt-get download -qq -o APT::Sandbox::User=root "$pkg") ||
			die "apt-get download $pkg failed"
		debs=("$cache/debs/${pkg}_"*.deb)
		[ -f "${debs[0]}" ] || die "apt-get download $pkg left no .deb in $cache/debs"
	fi
	echo "setup-vm.sh: extracting $(basename "${debs[0]}") into $dest"
	dpkg-deb -x "${debs[0]}" "$dest"
}

if [ ! -f "$cache/kroot/boot/vmlinuz-$kver" ]; then
	fetch "$kpkg" "$cache/kroot"
fi
[ -f "$cache/kroot/boot/vmlinuz-$kver" ] || die "$kpkg has no boot/vmlinuz-$kver"
if [ ! -f "$cache/kroot/lib/modules/$kver/modules.dep" ]; then
	echo "setup-vm.sh: depmod $kver"
	depmod -b "$cache/kroot" "$kver"
fi
for m in kvm kvm_amd; do
	modprobe -d "$cache/kroot" -S "$kver" --show-depends "$m" >/dev/null ||
		die "$kpkg has no module $m"
done

if [ ! -x "$cache/busybox/bin/busybox" ]; then
	fetch busybox-static "$cache/busybox"
fi
[ -x "$cache/busybox/bin/busybox" ] || die "busybox-static has no bin/busybox"

echo "$kver" > "$cache/kernel-release"
echo "setup-vm.sh: ready: kernel $kver in $cache (run tests/vm/kvm-guest.sh -- CMD, or ctest -L '^vm$')"
