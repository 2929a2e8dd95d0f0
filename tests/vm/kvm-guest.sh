#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# kvm-guest.sh -- run one host command where a standard /dev/kvm exists:
# inside a Debian kernel booted under qemu with TCG and `-cpu max` (AMD SVM
# with nested paging), with kvm_amd loaded. The command runs chrooted into
# the host's own / (read-only 9p), so host binaries and libraries work
# unchanged; --share DIR mounts DIR read-write at the same path.
#
#   tests/vm/kvm-guest.sh [options] -- CMD ARGS...
#     --share DIR        read-write 9p share of DIR at DIR (repeatable)
#     --timeout SECONDS  kill qemu after this long (default 600), all boots
#     --retry-stall N    boot again up to N times when the guest stalls (no
#                        heartbeat for VP_VM_STALL_S, default 120 s): only
#                        for a command that can start over (default 0)
#     --cpu MODEL        qemu CPU model (default max; EPYC, qemu64,+svm,+npt)
#     --kvm-amd ARGS     kvm_amd parameters, e.g. npt=0 for shadow paging
#     --log FILE         console log (default build-vm/logs/console-*.log)
#
# Exit code: the command's; 77 when the harness is not set up (no qemu, no
# kernel cache: run `bash scripts/setup-vm.sh` as root); 124 on timeout or
# a stall;
# 125 when the harness failed (guest did not boot, KVM did not load, the
# command never ran). The command's stdout and stderr arrive merged, after
# the guest powers off. Environment: VP_VM_CACHE (default build-vm/ in the
# source tree), VP_VM_MEM (1G), VP_VM_SMP (1: with 2 the guest stalls in
# about 1 run in 7, docs/VM.md), VP_VM_APPEND (more kernel
# parameters, e.g. loglevel=7 to see soft-lockup traces); VOLIPMEM_* and VP_* variables
# are passed to the command, nothing else is. The cwd is kept when the guest
# can see it. Typical cost: ~10 s of boot, then 10-20x slower CPU-bound code
# and 30-100x slower VM exits than native (docs/VM.md).
set -euo pipefail

src=$(cd "$(dirname "$0")/../.." && pwd)
cache=${VP_VM_CACHE:-$src/build-vm}
mem=${VP_VM_MEM:-1G}
smp=${VP_VM_SMP:-1}
timeout_s=600
stall_s=${VP_VM_STALL_S:-120}
retry_stall=0
cpu=max
kvm_amd_args=
log=
shares=()

usage() {
	echo "usage:" >&2
	sed -n '/^#   tests/,/^#     --log/s/^# \{0,1\}//p' "$0" >&2
	exit 2
}
# skip -- the harness is not there: exit 77, which CTest reports as Skipped.
skip() {
	echo "kvm-guest.sh: SKIP: $*; set it up as root with: bash scripts/setup-vm.sh" >&2
	exit 77
}
fail() {
	echo "kvm-guest.sh: FAIL: $*" >&2
	exit 125
}

while [ $# -gt 0 ]; do
	case $1 in
	--share)
		[ $# -ge 2 ] || usage
		d=$(cd "$2" 2>/dev/null && pwd) || fail "--share $2: no such directory"
		shares+=("$d")
		shift 2
		;;
	--timeout) [ $# -ge 2 ] || usage; timeout_s=$2; shift 2 ;;
	--retry-stall) [ $# -ge 2 ] || usage; retry_stall=$2; shift 2 ;;
	--cpu) [ $# -ge 2 ] || usage; cpu=$2; shift 2 ;;
	--kvm-amd) [ $# -ge 2 ] || usage; kvm_amd_args=$2; shift 2 ;;
	--log) [ $# -ge 2 ] || usage; log=$2; shift 2 ;;
	--) shift; break ;;
	*) usage ;;
	esac
done
[ $# -gt 0 ] || usage

command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 is not installed"
[ -f "$cache/kernel-release" ] || skip "no guest kernel in $cache"
kver=$(cat "$cache/kernel-release")
kroot=$cache/kroot
busybox=$cache/busybox/bin/busybox
[ -f "$kroot/boot/vmlinuz-$kver" ] || skip "$kroot/boot/vmlinuz-$kver is missing"
[ -f "$kroot/lib/modules/$kver/modules.dep" ] || skip "no modules.dep for $kver in $kroot"
[ -x "$busybox" ] || skip "$busybox is missing"
modprobe=$(PATH=$PATH:/usr/sbin:/sbin command -v modprobe) || skip "modprobe (kmod) is not installed"
for t in cpio gzip; do
	command -v $t >/dev/null || skip "$t is not installed"
done

run=$(mktemp -d "${TMPDIR:-/tmp}/kvm-guest.XXXXXX")
trap 'rm -rf "$run"' EXIT
if [ -z "$log" ]; then
	if ! mkdir -p "$cache/logs" 2>/dev/null || [ ! -w "$cache/logs" ]; then
		fail "$cache/logs is not writable; pass --log FILE"
	fi
	log=$cache/logs/console-$(date +%Y%m%d-%H%M%S)-$$.log
fi

# add_modules NAME... -- append NAME and its dependencies, in load order
# and decompressed (busybox insmod reads plain .ko only), to the initramfs.
add_modules() {
	local m f b
	for m in "$@"; do
		"$modprobe" -d "$kroot" -S "$kver" --show-depends "$m" |
			awk '$1 == "insmod" { print $2 }' > "$run/deps" ||
			fail "modprobe --show-depends $m failed for $kver"
		while read -r f; do
			b=$(basename "$f")
			b=${b%.xz}
			b=${b%.zst}
			grep -qx "$b" "$run/initrd/mods/order" && continue
			case $f in
			*.xz) xz -dc "$f" > "$run/initrd/mods/$b" ;;
			*.zst) zstd -qdc "$f" > "$run/initrd/mods/$b" ;;
			*) cp "$f" "$run/initrd/mods/$b" ;;
			esac || fail "cannot decompress $f"
			echo "$b" >> "$run/initrd/mods/order"
		done < "$run/deps"
	done
}

# The initramfs: busybox, /init, and the modules for KVM and 9p.
mkdir -p "$run"/initrd/{bin,dev,proc,sys,mods} "$run/ctl"
: > "$run/initrd/mods/order"
cp "$busybox" "$run/initrd/bin/busybox"
cp "$src/tests/vm/guest-init.sh" "$run/initrd/init"
chmod 755 "$run/initrd/init"
add_modules kvm_amd virtio_pci 9pnet_virtio 9p
[ -z "$kvm_amd_args" ] || echo "$kvm_amd_args" > "$run/initrd/mods/kvm_amd.args"
(cd "$run/initrd" && find . | cpio -o -H newc --quiet | gzip -1) > "$run/initrd.cpio.gz"

# The command as a bash script for the guest: cwd, VOLIPMEM_*/VP_*, argv.
{
	printf 'cd %q 2>/dev/null || cd /\n' "$PWD"
	for v in $(compgen -e); do
		case $v in VOLIPMEM_* | VP_*) printf 'export %s=%q\n' "$v" "${!v}" ;; esac
	done
	printf 'exec'
	printf ' %q' "$@"
	printf '\n'
} > "$run/ctl/cmd.sh"

# multidevs=remap: / spans several host filesystems, whose inode numbers
# would otherwise collide in the guest.
virtfs=(-virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap,id=hostroot"
	-virtfs "local,path=$run/ctl,mount_tag=vpctl,security_model=none,id=vpctl")
: > "$run/ctl/shares"
for i in "${!shares[@]}"; do
	virtfs+=(-virtfs "local,path=${shares[$i]},mount_tag=share$i,security_model=none,id=share$i")
	printf 'share%d %s\n' "$i" "${shares[$i]}" >> "$run/ctl/shares"
done

# boot -- one boot of the guest, until it powers off, the time left runs
# out (qrc 124) or the guest stalls (qrc 200): its heartbeat (guest-init.sh,
# every 10 s while the command runs) older than $stall_s s by the host's
# clock. A stalled guest kernel stops its own timers and shell, so the
# command inside cannot have caused the stop (a process under KVM cannot
# keep the kernel from its interrupts): that is the hypervisor below it.
boot() {
	local left=$1 qpid now beat_t
	rm -f "$run/ctl/status" "$run/ctl/out" "$run/ctl/rc" "$run/ctl/beat"
	# stdin from /dev/null: -serial stdio would otherwise eat the caller's.
	timeout --kill-after=10 "$left" qemu-system-x86_64 \
		-accel tcg,thread=multi -cpu "$cpu" -m "$mem" -smp "$smp" \
		-kernel "$kroot/boot/vmlinuz-$kver" -initrd "$run/initrd.cpio.gz" \
		-append "console=ttyS0 quiet loglevel=4 panic=-1${VP_VM_APPEND:+ $VP_VM_APPEND}" \
		"${virtfs[@]}" -nic none -nographic -no-reboot -monitor none -serial stdio \
		< /dev/null >> "$log" 2>&1 &
	qpid=$!
	while kill -0 "$qpid" 2>/dev/null; do
		sleep 2
		[ -f "$run/ctl/beat" ] && [ ! -f "$run/ctl/rc" ] || continue
		now=$(date +%s)
		beat_t=$(stat -c %Y "$run/ctl/beat" 2>/dev/null || echo "$now")
		if [ $((now - beat_t)) -gt "$stall_s" ]; then
			echo "kvm-guest.sh: the guest stalled: no heartbeat for $((now - beat_t)) s" \
				"(last at guest uptime $(cat "$run/ctl/beat") s)" >&2
			pkill -KILL -P "$qpid" 2>/dev/null
			kill -KILL "$qpid" 2>/dev/null
			wait "$qpid" 2>/dev/null
			qrc=200
			return
		fi
	done
	wait "$qpid"
	qrc=$?
}

# console_tail -- the console log's last 30 lines on stderr, printable
# characters only (a stalled guest can leave escape sequences half written).
console_tail() { tail -n 30 "$log" | tr -cd '\11\12\40-\176' | sed 's/^/  console: /' >&2; }

echo "kvm-guest.sh: booting $kver under qemu TCG -cpu $cpu; console log: $log" >&2
: > "$log"
t0=$(date +%s.%N)
start=$(date +%s)
set +e
for attempt in $(seq 0 "$retry_stall"); do
	boot $((timeout_s - ($(date +%s) - start)))
	[ "$qrc" = 200 ] || break
	console_tail
	if [ "$attempt" -lt "$retry_stall" ] && [ $((timeout_s - ($(date +%s) - start))) -gt 60 ]; then
		echo "kvm-guest.sh: booting again from the start (--retry-stall $retry_stall; the stall" \
			"is the qemu guest's, docs/VM.md)" >&2
		echo "=== kvm-guest.sh: the guest stalled; booting again" >> "$log"
	fi
done
set -e
t1=$(date +%s.%N)
wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')

[ -f "$run/ctl/out" ] && cat "$run/ctl/out"
# at NAME -- a guest-uptime timestamp the guest wrote to status.
at() { awk -v k="$1" '$1 == k { print $2 }' "$run/ctl/status" 2>/dev/null; }
if [ "$qrc" = 200 ]; then
	echo "kvm-guest.sh: FAIL: the guest stalled (no heartbeat for over $stall_s s) in each of" \
		"$((retry_stall + 1)) boot(s) (console log: $log)" >&2
	exit 124
fi
if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
	# Was the guest alive to the end (a slow or stuck command) or did
	# it stop (the guest kernel stalled: its last heartbeat is early)?
	beat=$(cat "$run/ctl/beat" 2>/dev/null || echo none)
	echo "kvm-guest.sh: FAIL: timed out after $timeout_s s; guest uptime" \
		"at its last heartbeat (every 10 s): $beat s, command started at $(at cmd_start_s) s;" \
		"the console log's last lines ($log):" >&2
	console_tail
	exit 124
fi
[ -f "$run/ctl/status" ] || fail "the guest never reported (qemu exit $qrc; console log: $log)"
grep -q '^kvm ready' "$run/ctl/status" || fail "$(head -n 1 "$run/ctl/status") (console log: $log)"
[ -f "$run/ctl/rc" ] || fail "the command never finished (qemu exit $qrc; console log: $log)"
rc=$(cat "$run/ctl/rc")
echo "kvm-guest.sh: exit $rc; host wall ${wall} s; guest uptime: /dev/kvm at $(at kvm_s) s," \
	"command $(at cmd_start_s) -> $(at cmd_end_s) s; console log: $log" >&2
exit "$rc"
