/* SPDX-License-Identifier: MIT */
/*
 * vm_refuse.c -- libvolimem refuses the hosts it cannot run on, cleanly,
 * on every machine: with VOLIMEM_HOST_ROOT pointing at fake trees it checks
 *
 *   kvm-pvm with a device   DIR/sys/module/kvm_pvm + DIR/dev/kvm: vm_probe
 *                           and vm_enter -> -ENODEV and the kvm-pvm line
 *   kvm-pvm, no device      -ENOENT, "a kvm-pvm host ... without a KVM device"
 *   no KVM at all           -ENOENT, "no DIR/dev/kvm on this machine"
 *   not a KVM device        DIR/dev/kvm a plain file: -ENODEV
 *
 * and, with only the public API, that pmap with VOLIPMEM_TRACKER=vm-wp or
 * vm-dirty under the refusing trees fails with VP_E_TRACKER and that line
 * in vp_errormsg(), in a child that exits normally (no SIGSEGV), creating
 * no pool and leaving an existing pool's bytes unchanged. Last, this
 * machine as it is: where /sys/module/kvm_pvm exists, the same refusal.
 *
 * Exit code: 0 passed, 1 a check failed (the message says which).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "../common.h"
#include "volimem.h"

#define MiB (1024ul * 1024)

static int failed;

#define CHECK(cond, ...) do { if (!(cond)) { printf("vm_refuse: FAIL: " __VA_ARGS__); \
	printf(" (%s:%d)\n", __FILE__, __LINE__); failed = 1; } } while (0)

static char top[256];

/* fake_root -- a directory under top with the given entries: "sys" makes
 * sys/module/kvm_pvm/, "dev" a plain file dev/kvm. */
static const char *fake_root(const char *name, bool pvm, bool dev)
{
	static char roots[8][320];
	static int n;
	char *r = roots[n++ % 8];
	char p[400];
	snprintf(r, sizeof roots[0], "%s/%s", top, name);
	mkdir(r, 0755);
	if (pvm) {
		snprintf(p, sizeof p, "%s/sys", r), mkdir(p, 0755);
		snprintf(p, sizeof p, "%s/sys/module", r), mkdir(p, 0755);
		snprintf(p, sizeof p, "%s/sys/module/kvm_pvm", r), mkdir(p, 0755);
	}
	if (dev) {
		snprintf(p, sizeof p, "%s/dev", r), mkdir(p, 0755);
		snprintf(p, sizeof p, "%s/dev/kvm", r);
		int fd = open(p, O_CREAT | O_WRONLY, 0600);
		if (fd >= 0)
			close(fd);
	}
	return r;
}

/* expect_refusal -- vm_probe and vm_enter under root fail with code and a
 * message holding want (and the fake root's path), never entering. */
static void expect_refusal(const char *what, const char *root, int code, const char *want)
{
	setenv("VOLIMEM_HOST_ROOT", root, 1);
	int r = vm_probe();
	const char *m = vm_errmsg();
	CHECK(r == code, "%s: vm_probe -> %d, expected %d (%s)", what, r, code, m);
	CHECK(strstr(m, want) != NULL, "%s: vm_errmsg \"%s\" lacks \"%s\"", what, m, want);
	CHECK(strstr(m, root) != NULL, "%s: vm_errmsg \"%s\" does not name the path under %s", what, m, root);
	CHECK(strchr(m, '\n') == NULL, "%s: vm_errmsg is more than one line", what);
	r = vm_enter();
	CHECK(r == code, "%s: vm_enter -> %d, expected %d (%s)", what, r, code, vm_errmsg());
	CHECK(!vm_in_guest(), "%s: vm_in_guest() after a refused vm_enter", what);
	CHECK(strstr(vm_errmsg(), want) != NULL, "%s: vm_enter's message \"%s\" lacks \"%s\"", what,
	      vm_errmsg(), want);
	printf("ok   %s: vm_probe/vm_enter -> %d: %s\n", what, code, m);
	unsetenv("VOLIMEM_HOST_ROOT");
}

struct pmap_case {
	const char *tracker, *want, *pool;
};

/* pmap_child -- in a child: pmap must fail with VP_E_TRACKER and the
 * libvolimem line; exit 0 if it did, 1 otherwise. */
static void pmap_child(void *arg)
{
	const struct pmap_case *c = arg;
	setenv("VOLIPMEM_TRACKER", c->tracker, 1);
	int r = pmap(c->pool, 8 * MiB, 0);
	const char *m = vp_errormsg();
	char name[64];
	snprintf(name, sizeof name, "tracker \"%s\" cannot run here", c->tracker);
	if (r != VP_E_TRACKER || !strstr(m, name) || !strstr(m, c->want)) {
		printf("vm_refuse: FAIL: pmap with %s -> %d (%s), expected VP_E_TRACKER with \"%s\": %s\n",
		       c->tracker, r, vp_strerror(r), c->want, m);
		if (r == 0)
			punmap();
		_exit(1);
	}
	_exit(0);
}

/* file_digest -- FNV-1a over the whole file and its length (length 0:
 * absent or empty); a refused pmap must leave both unchanged. */
static uint64_t file_digest(const char *path, size_t *len)
{
	uint64_t h = 0xcbf29ce484222325ull;
	uint8_t buf[1 << 16];
	*len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0; *len += (size_t)n)
		for (ssize_t i = 0; i < n; i++)
			h = (h ^ buf[i]) * 0x100000001b3ull;
	close(fd);
	return h;
}

/* expect_pmap_refusal -- under root (NULL: the machine itself), pmap with
 * each VM tracker refuses in a child that exits normally; a new pool is
 * not created and an existing one's bytes do not change. */
static void expect_pmap_refusal(const char *what, const char *root, const char *want)
{
	static const char *const trackers[] = { "vm-wp", "vm-dirty" };
	const char *fresh = vpt_pool_path("refuse-new");
	const char *old = vpt_pool_path("refuse-old");
	unsetenv("VOLIMEM_HOST_ROOT");
	unsetenv("VOLIPMEM_TRACKER");
	int r = pmap(old, 8 * MiB, 0);
	CHECK(r == 0, "%s: creating the existing pool with the default tracker: %d %s", what, r,
	      vp_errormsg());
	if (r == 0) {
		void *p = pmalloc(4096);
		pstart();
		memset(p, 0x5a, 4096);
		pend();
		CHECK(punmap() == 0, "%s: punmap: %s", what, vp_errormsg());
	}
	size_t n0, n1;
	struct stat st0, st1;
	uint64_t h0 = file_digest(old, &n0);
	CHECK(stat(old, &st0) == 0 && n0 > 0, "%s: the existing pool %s is missing or empty", what, old);
	if (root)
		setenv("VOLIMEM_HOST_ROOT", root, 1);
	for (size_t i = 0; i < 2; i++) {
		const char *pools[2] = { fresh, old };
		for (size_t k = 0; k < 2; k++) {
			struct pmap_case c = { trackers[i], want, pools[k] };
			int st = vpt_in_child(pmap_child, &c);
			CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: pmap(%s pool) with %s: the child %s %d",
			      what, k ? "existing" : "new", trackers[i],
			      WIFSIGNALED(st) ? "died of signal" : "exited", WIFSIGNALED(st) ? WTERMSIG(st) :
			      WEXITSTATUS(st));
		}
	}
	unsetenv("VOLIMEM_HOST_ROOT");
	CHECK(access(fresh, F_OK) != 0, "%s: a refused pmap created the pool %s", what, fresh);
	uint64_t h1 = file_digest(old, &n1);
	CHECK(stat(old, &st1) == 0 && h0 == h1 && n0 == n1 && st0.st_mtim.tv_sec == st1.st_mtim.tv_sec &&
	      st0.st_mtim.tv_nsec == st1.st_mtim.tv_nsec,
	      "%s: the existing pool %s changed under a refused pmap (%zu -> %zu bytes, digest %016llx -> "
	      "%016llx)", what, old, n0, n1, (unsigned long long)h0, (unsigned long long)h1);
	printf("ok   %s: pmap with vm-wp and vm-dirty -> VP_E_TRACKER (\"%s\"), no crash, "
	       "no pool created, the existing pool unchanged\n", what, want);
}

/* rmtree -- remove the fake trees (only what fake_root made). */
static void rmtree(void)
{
	static const char *const names[] = { "pvm", "pvm-nodev", "none", "notkvm" };
	char p[400];
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		snprintf(p, sizeof p, "%s/%s/dev/kvm", top, names[i]), unlink(p);
		snprintf(p, sizeof p, "%s/%s/dev", top, names[i]), rmdir(p);
		snprintf(p, sizeof p, "%s/%s/sys/module/kvm_pvm", top, names[i]), rmdir(p);
		snprintf(p, sizeof p, "%s/%s/sys/module", top, names[i]), rmdir(p);
		snprintf(p, sizeof p, "%s/%s/sys", top, names[i]), rmdir(p);
		snprintf(p, sizeof p, "%s/%s", top, names[i]), rmdir(p);
	}
	rmdir(top);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	snprintf(top, sizeof top, "%s/vm_refuse.XXXXXX", tmp);
	if (!mkdtemp(top)) {
		printf("vm_refuse: FAIL: mkdtemp %s: %s\n", top, strerror(errno));
		return 1;
	}
	atexit(rmtree);

	const char *pvm = fake_root("pvm", true, true);
	const char *pvm_nodev = fake_root("pvm-nodev", true, false);
	const char *none = fake_root("none", false, false);
	const char *notkvm = fake_root("notkvm", false, true);
	expect_refusal("kvm-pvm with /dev/kvm", pvm, -ENODEV, "is kvm-pvm");
	expect_refusal("kvm-pvm without /dev/kvm", pvm_nodev, -ENOENT,
		       "this is a kvm-pvm host");
	expect_refusal("no /dev/kvm", none, -ENOENT, "on this machine (no KVM module loaded)");
	expect_refusal("/dev/kvm not a KVM device", notkvm, -ENODEV, "is not a KVM device");
	expect_pmap_refusal("kvm-pvm with /dev/kvm", pvm, "is kvm-pvm");
	expect_pmap_refusal("no /dev/kvm", none, "on this machine (no KVM module loaded)");

	/* This machine, unfaked: a kvm-pvm host must be refused the same way. */
	if (access("/sys/module/kvm_pvm", F_OK) == 0) {
		int r = vm_probe();
		CHECK(r < 0 && strstr(vm_errmsg(), "kvm-pvm"), "this host has /sys/module/kvm_pvm but "
		      "vm_probe -> %d (%s)", r, vm_errmsg());
		printf("ok   this host (kvm-pvm): vm_probe -> %d: %s\n", r, vm_errmsg());
		expect_pmap_refusal("this host (kvm-pvm)", NULL, "kvm-pvm");
	} else {
		int r = vm_probe();
		printf("info this host is not kvm-pvm: vm_probe -> %d%s%s\n", r, r ? ": " : "",
		       r ? vm_errmsg() : " (a usable KVM)");
	}
	printf("vm_refuse: %s\n", failed ? "FAIL" : "PASS");
	return failed;
}
