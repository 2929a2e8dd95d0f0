#!/bin/busybox sh
# SPDX-License-Identifier: MIT
# guest-init.sh -- /init of the initramfs that tests/vm/kvm-guest.sh boots
# under qemu. It loads KVM (AMD SVM: the only kind TCG emulates), mounts the
# host's / read-only over 9p, runs the host command chrooted into it, hands
# the exit code back and powers off. Everything after this runs in busybox.
#
# The host talks to us through the 9p share "vpctl" (the host's per-run
# directory), mounted at /ctl:
#   in:  cmd.sh   the command, as a bash script for the host's /bin/bash
#        shares   one "TAG PATH" line per read-write share (PATH = host path)
#   out: status   "kvm ready" or why not; then the guest-uptime timestamps
#        out      the command's stdout and stderr (also on the console)
#        rc       the command's exit code; absent if it never ran
#        beat     the guest uptime, rewritten every 10 s while the command
#                 runs: on a timeout the host tells a stalled guest (beat
#                 stopped early) from a slow command (beat went on)
# /mods/order lists the kernel modules in load order; /mods/NAME.args holds
# the parameters of one (e.g. npt=0 for kvm_amd).

/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev

say() { echo "vm-init: $*"; }
uptime_s() { cut -d' ' -f1 /proc/uptime; }
# finish -- flush what the host will read, then power off (qemu exits).
finish() {
	sync
	umount -a -r 2>/dev/null
	poweroff -f
}

say "up at $(uptime_s) s"
while read -r m; do
	name=$(echo "${m%.ko}" | tr - _)
	grep -q "^$name " /proc/modules && continue
	# shellcheck disable=SC2046 # the parameters are words, split on purpose
	out=$(insmod "/mods/$m" $(cat "/mods/$name.args" 2>/dev/null) 2>&1) ||
		say "insmod $m failed: $out"
done < /mods/order

mkdir -p /ctl
if ! mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 vpctl /ctl; then
	say "cannot mount the control share vpctl"
	finish
fi
stamp() { echo "$1 $(uptime_s)" >> /ctl/status; }

if [ -c /dev/kvm ]; then
	echo "kvm ready" > /ctl/status
	npt=$(cat /sys/module/kvm_amd/parameters/npt 2>/dev/null)
	say "/dev/kvm ready (kvm_amd npt=$npt) at $(uptime_s) s"
elif ! grep -qw svm /proc/cpuinfo; then
	echo "kvm missing: the guest CPU has no svm flag (use -cpu max or EPYC; TCG has no VMX)" > /ctl/status
else
	echo "kvm missing: kvm_amd did not load (see the console log)" > /ctl/status
	dmesg | grep -i -E 'kvm|svm' | sed 's/^/vm-init: dmesg: /'
fi
stamp kvm_s

# The host's root, read-only; cache=loose because 9p without a cache makes
# every exec and library load a round of host requests (python3 -c pass:
# 8.9 s vs 3.9 s).
H=/host
mkdir -p $H
if ! mount -t 9p -o ro,trans=virtio,version=9p2000.L,msize=512000,cache=loose hostroot $H; then
	say "cannot mount the host root (9p tag hostroot)"
	finish
fi
mount -t proc proc $H/proc
mount -t sysfs sys $H/sys
mount -t devtmpfs dev $H/dev
mkdir -p $H/dev/shm $H/dev/pts
mount -t tmpfs shm $H/dev/shm
mount -t tmpfs run $H/run
mkdir -p $H/run/tmp $H/run/vpctl
mount --bind /ctl $H/run/vpctl
while read -r tag path; do
	[ -n "$tag" ] || continue
	# Under a guest tmpfs (/dev/shm, /run) the mount point is ours to make.
	if [ ! -d "$H$path" ] && ! mkdir -p "$H$path" 2>/dev/null; then
		say "share $path: no such directory in the read-only host root"
		finish
	fi
	mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 "$tag" "$H$path" ||
		{ say "cannot mount share $path"; finish; }
done < /ctl/shares

if grep -q '^kvm ready' /ctl/status; then
	stamp cmd_start_s
	(while :; do uptime_s > /ctl/beat; sleep 10; done) &
	beat=$!
	# shellcheck disable=SC3040 # busybox ash has pipefail
	set -o pipefail
	chroot $H /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin \
		HOME=/run/tmp TMPDIR=/run/tmp TERM=dumb LANG=C.UTF-8 \
		/bin/bash /run/vpctl/cmd.sh </dev/null 2>&1 | tee /ctl/out
	echo $? > /ctl/rc
	kill $beat 2>/dev/null
	stamp cmd_end_s
fi
finish
