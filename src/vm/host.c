/* SPDX-License-Identifier: MIT */
/*
 * host.c -- which KVM this machine offers, and whether libvolimem can run
 * on it: the one place that opens /dev/kvm (vm_probe and vm_enter).
 *
 * libvolimem needs a hardware-assisted KVM (VT-x/AMD-V, or the nested SVM
 * of the qemu harness). On kvm-pvm (the paravirtualised KVM of some cloud
 * VMs, /sys/module/kvm_pvm) a SYSCALL made at guest CPL3 reaches LSTAR
 * still at CPL3, so the CPL0 syscall stub's first store to the per-vCPU
 * block faults and the process would die of SIGSEGV on its first system
 * call in the guest; ring 0 is emulated (~300 ns per instruction) and every
 * exit costs 20-75 us besides. So kvm-pvm is refused here, before anything
 * is created, with one line that says why (docs/VM.md, "kvm-pvm").
 *
 * VOLIMEM_HOST_ROOT=DIR makes the checks look at DIR/dev/kvm and
 * DIR/sys/module/... instead of /dev/kvm and /sys/module/..., so tests can
 * run every branch on any machine with a fake tree. Ignored in a setuid
 * or setgid process (secure_getenv).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include "vm_internal.h"

#define GUEST_HINT "libvolimem needs a standard KVM (VT-x/AMD-V), e.g. tests/vm/kvm-guest.sh (docs/VM.md)"

/* host_path -- p (absolute) under VOLIMEM_HOST_ROOT, if set. */
static const char *host_path(char *b, size_t n, const char *p)
{
	const char *root = secure_getenv("VOLIMEM_HOST_ROOT");
	snprintf(b, n, "%s%s", root ? root : "", p);
	return b;
}

static bool host_has(const char *p)
{
	char b[512];
	return access(host_path(b, sizeof b, p), F_OK) == 0;
}

/* vm__open_kvm -- a file descriptor on a KVM device libvolimem can use
 * (API version checked), or a negative errno with vm_errmsg() naming why
 * not in one line: -ENODEV kvm-pvm or not a KVM device, -ENOENT no device,
 * -EACCES/-EPERM not allowed to open it, -EINVAL another API version. */
int vm__open_kvm(void)
{
	char dev[512], pvm[512];
	host_path(dev, sizeof dev, "/dev/kvm");
	host_path(pvm, sizeof pvm, "/sys/module/kvm_pvm");
	if (host_has("/sys/module/kvm_pvm")) {
		/* kvm_intel or kvm_amd beside it cannot be told apart from
		 * kvm-pvm behind one /dev/kvm: refuse rather than crash. */
		if (access(dev, F_OK) == 0)
			return vm__err(-ENODEV, "volimem: %s is kvm-pvm (%s is loaded), which libvolimem "
				       "refuses: SYSCALL at guest CPL3 reaches LSTAR still at CPL3 and ring 0 "
				       "is emulated; %s", dev, pvm, GUEST_HINT);
		return vm__err(-ENOENT, "volimem: no %s: this is a kvm-pvm host (%s is loaded) without "
			       "a KVM device; %s", dev, pvm, GUEST_HINT);
	}
	int fd = open(dev, O_RDWR | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		return vm__err(-ENOENT, "volimem: no %s on this machine (no KVM module loaded); %s", dev,
			       GUEST_HINT);
	if (fd < 0) {
		int e = errno;
		return vm__err(-e, "volimem: cannot open %s: %s", dev, strerror(e));
	}
	int v = ioctl(fd, KVM_GET_API_VERSION, NULL);
	int e = errno;
	if (v < 0) {
		close(fd);
		return vm__err(-ENODEV, "volimem: %s is not a KVM device (KVM_GET_API_VERSION: %s)", dev,
			       strerror(e));
	}
	if (v != KVM_API_VERSION) {
		close(fd);
		return vm__err(-EINVAL, "volimem: %s: KVM API version %d, need %d", dev, v, KVM_API_VERSION);
	}
	return fd;
}

int vm_probe(void)
{
	if (vm__s.vm >= 0)
		return 0;
	int fd = vm__open_kvm();
	if (fd < 0)
		return fd;
	close(fd);
	return 0;
}
