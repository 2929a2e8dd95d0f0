/* SPDX-License-Identifier: MIT */
/*
 * test_pool.c -- pool files: create, reopen, and every bad input pmap must
 * refuse with a precise error and without writing a byte: corrupt or
 * truncated superblocks, wrong version, address taken, pool locked,
 * damaged log. Also an I/O error injected before and after the commit
 * point.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "../common.h"
#include "persist/persist.h"
#include "pool/format.h"
#include "util/util.h"

#define MiB (1u << 20)

struct blob { long a, b; char pad[8192]; long c; };

static void make_pool(const char *path, long v)
{
	assert_int_equal(pmap(path, 8 * MiB, 0), 0);
	bool created;
	struct blob *b = proot("blob", sizeof *b, &created);
	assert_non_null(b);
	pstart();
	b->a = v;
	b->b = -v;
	b->c = v * 2;
	assert_int_equal(pend(), 0);
	assert_int_equal(punmap(), 0);
}

static long read_pool(const char *path)
{
	assert_int_equal(pmap(path, 8 * MiB, 0), 0);
	bool created;
	struct blob *b = proot("blob", sizeof *b, &created);
	assert_non_null(b);
	assert_false(created);
	assert_int_equal(b->a, -b->b);
	assert_int_equal(b->c, 2 * b->a);
	long v = b->a;
	assert_int_equal(punmap(), 0);
	return v;
}

static char *slurp(const char *path, size_t *n)
{
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	struct stat st;
	fstat(fd, &st);
	char *buf = malloc((size_t)st.st_size);
	assert_int_equal(pread(fd, buf, (size_t)st.st_size, 0), st.st_size);
	close(fd);
	*n = (size_t)st.st_size;
	return buf;
}

static void poke(const char *path, off_t off, const void *bytes, size_t n)
{
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, bytes, n, off), (ssize_t)n);
	close(fd);
}

static void flip(const char *path, off_t off)
{
	unsigned char c;
	int fd = open(path, O_RDWR);
	assert_int_equal(pread(fd, &c, 1, off), 1);
	c ^= 0x10;
	assert_int_equal(pwrite(fd, &c, 1, off), 1);
	close(fd);
}

/* expect_refused -- pmap fails with want, names the problem, and leaves
 * the file byte for byte as it was. */
static void expect_refused(const char *path, int want, const char *word)
{
	size_t n0, n1;
	char *before = slurp(path, &n0);
	int rc = pmap(path, 8 * MiB, 0);
	assert_int_equal(rc, want);
	assert_non_null(strstr(vp_errormsg(), word));
	assert_non_null(vp_strerror(rc));
	char *after = slurp(path, &n1);
	assert_int_equal(n0, n1);
	assert_memory_equal(before, after, n0);
	free(before);
	free(after);
	assert_null(vp_heap_base());
}

static void test_create_reopen(void **state)
{
	(void)state;
	const char *p = vpt_pool_path("reopen");
	make_pool(p, 42);
	assert_int_equal(read_pool(p), 42);
	struct stat st;
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	/* pmap after punmap in one process, many times */
	for (int i = 0; i < 5; i++)
		make_pool(p, i);
	assert_int_equal(read_pool(p), 4);
}

static void test_misuse(void **state)
{
	(void)state;
	const char *p = vpt_pool_path("misuse");
	assert_int_equal(pmap(NULL, MiB, 0), VP_E_INVAL);
	assert_int_equal(pmap(p, 1000, 0), VP_E_TOOSMALL);
	assert_int_equal(access(p, F_OK), -1); /* nothing left behind */
	assert_int_equal(pmap(p, 8 * MiB, VP_OPEN_ONLY), -ENOENT);
	assert_int_equal(pmap(p, 8 * MiB, VP_OPEN_ONLY | VP_CREATE_ONLY), VP_E_INVAL);
	assert_int_equal(pmap(p, 8 * MiB, 0), 0);
	assert_int_equal(pmap(p, 8 * MiB, 0), VP_E_MAPPED);
	assert_int_equal(punmap(), 0);
	assert_int_equal(punmap(), VP_E_NOTMAPPED);
	assert_int_equal(pmap(p, 8 * MiB, VP_CREATE_ONLY), -EEXIST);
}

static void test_superblock_damage(void **state)
{
	(void)state;
	const char *p = vpt_pool_path("sb");
	make_pool(p, 7);
	/* One copy damaged: the other is used. */
	flip(p, VP_SB_OFF_A + 40);
	assert_int_equal(read_pool(p), 7);
	flip(p, VP_SB_OFF_A + 40);
	flip(p, VP_SB_OFF_B + 100);
	assert_int_equal(read_pool(p), 7);
	/* Both damaged: refused, naming the checksum. */
	flip(p, VP_SB_OFF_A + 40);
	expect_refused(p, VP_E_CHECKSUM, "checksum");
	/* Bad magic. */
	poke(p, VP_SB_OFF_A, "NOTAPOOL", 8);
	poke(p, VP_SB_OFF_B, "NOTAPOOL", 8);
	expect_refused(p, VP_E_BADMAGIC, "magic");
}

static void test_wrong_version(void **state)
{
	(void)state;
	const char *p = vpt_pool_path("ver");
	make_pool(p, 1);
	for (off_t off = VP_SB_OFF_A; off <= VP_SB_OFF_B; off += VP_SB_OFF_B) {
		struct vp_superblock sb;
		int fd = open(p, O_RDWR);
		assert_int_equal(pread(fd, &sb, sizeof sb, off), (ssize_t)sizeof sb);
		sb.version = 99;
		sb.checksum = vp__csum(&sb, offsetof(struct vp_superblock, checksum));
		assert_int_equal(pwrite(fd, &sb, sizeof sb, off), (ssize_t)sizeof sb);
		close(fd);
	}
	expect_refused(p, VP_E_VERSION, "version 99");
}

static void test_truncated(void **state)
{
	(void)state;
	const char *p = vpt_pool_path("trunc");
	make_pool(p, 3);
	struct stat st;
	stat(p, &st);
	assert_int_equal(truncate(p, st.st_size - 4096), 0);
	expect_refused(p, VP_E_TRUNCATED, "needs");
	assert_int_equal(truncate(p, 100), 0);
	expect_refused(p, VP_E_TRUNCATED, "short");
	assert_int_equal(truncate(p, 0), 0);
	expect_refused(p, VP_E_TRUNCATED, "short");
}

static void test_layout_hostile(void **state)
{
	(void)state;
	const char *p = vpt_pool_path("hostile");
	make_pool(p, 3);
	/* A heap address in the middle of our own text, resealed so only the
	 * range check can catch it. */
	for (off_t off = VP_SB_OFF_A; off <= VP_SB_OFF_B; off += VP_SB_OFF_B) {
		struct vp_superblock sb;
		int fd = open(p, O_RDWR);
		assert_int_equal(pread(fd, &sb, sizeof sb, off), (ssize_t)sizeof sb);
		sb.heap_base = 0x7ffffff00000ull;
		sb.checksum = vp__csum(&sb, offsetof(struct vp_superblock, checksum));
		assert_int_equal(pwrite(fd, &sb, sizeof sb, off), (ssize_t)sizeof sb);
		close(fd);
	}
	expect_refused(p, VP_E_LAYOUT, "valid user range");
}

static void test_address_taken(void **state)
{
	(void)state;
	const char *p = vpt_pool_path("addr");
	make_pool(p, 5);
	/* Somebody else's mapping inside the heap's reserved range. */
	char *q = mmap((void *)(0x566000000000ull + (256ull << 20)), 4096, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	assert_ptr_equal(q, (void *)(0x566000000000ull + (256ull << 20)));
	strcpy(q, "precious");
	expect_refused(p, VP_E_ADDRINUSE, "already mapped");
	assert_string_equal(q, "precious"); /* never clobbered */
	munmap(q, 4096);
	assert_int_equal(read_pool(p), 5);
}

static void lock_child(void *arg)
{
	/* The forked child inherits a detached heap; release it first. */
	if (punmap() != 0)
		_exit(2);
	int rc = pmap(arg, 8 * MiB, 0);
	_exit(rc == VP_E_LOCKED && strstr(vp_errormsg(), "another process") ? 0 : 1);
}

static void test_locked(void **state)
{
	(void)state;
	const char *p = vpt_pool_path("lock");
	make_pool(p, 9);
	assert_int_equal(pmap(p, 8 * MiB, 0), 0);
	int st = vpt_in_child(lock_child, (void *)p);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_int_equal(punmap(), 0);
}

/* ---- injected I/O errors around the commit point ---- */

static const char *fail_at;
static int fail_code;
static void h_store(void *c, const void *d, size_t n) { (void)c, (void)d, (void)n; }
static void h_flush(void *c, const void *d, size_t n) { (void)c, (void)d, (void)n; }
static int h_fence(void *c, const char *point)
{
	(void)c;
	return fail_at && strstr(point, fail_at) ? fail_code : 0;
}
static struct vp_persist_hooks hooks = {h_store, h_flush, h_fence, NULL};

static void test_commit_fails_before_commit_point(void **state)
{
	(void)state;
	const char *p = vpt_pool_path("eio1");
	make_pool(p, 10);
	assert_int_equal(pmap(p, 8 * MiB, 0), 0);
	struct blob *b = proot("blob", sizeof *b, NULL);
	vp__persist_hooks = &hooks;
	fail_at = "log:slots-and-record-A-committed";
	fail_code = -EIO;
	pstart();
	b->a = 11;
	b->b = -11;
	b->c = 22;
	assert_int_equal(pend(), -EIO);
	/* The working copy keeps the writes; the next commit retries them. */
	assert_int_equal(b->a, 11);
	fail_at = NULL;
	assert_int_equal(pcommit(), 0);
	vp__persist_hooks = NULL;
	assert_int_equal(punmap(), 0);
	assert_int_equal(read_pool(p), 11);
}

static void test_commit_fails_after_commit_point(void **state)
{
	(void)state;
	const char *p = vpt_pool_path("eio2");
	make_pool(p, 20);
	assert_int_equal(pmap(p, 8 * MiB, 0), 0);
	struct blob *b = proot("blob", sizeof *b, NULL);
	vp__persist_hooks = &hooks;
	fail_at = "home:record-B-and-pages-updated";
	fail_code = -EIO;
	pstart();
	b->a = 21;
	b->b = -21;
	b->c = 42;
	/* Record B is not known durable: not acknowledged, though record A
	 * and the slots are durable and recovery replays the group. */
	assert_int_equal(pend(), -EIO);
	pstart();
	b->a = 99;
	assert_int_equal(pend(), VP_E_BROKEN);
	fail_at = NULL;
	vp__persist_hooks = NULL;
	assert_int_equal(punmap(), VP_E_BROKEN);

	/* The log holds a committed group. A flipped bit in a slot: refused,
	 * nothing written. */
	struct vp_superblock sb;
	int fd = open(p, O_RDONLY);
	assert_int_equal(pread(fd, &sb, sizeof sb, 0), (ssize_t)sizeof sb);
	close(fd);
	/* The first slot in use (a page that did not change has none); byte
	 * 100 is in its first logged line, or in the page. */
	struct vp_logdesc d;
	off_t used = -1;
	fd = open(p, O_RDONLY);
	for (uint64_t i = 0; used < 0 && i < sb.log_capacity; i++) {
		assert_int_equal(pread(fd, &d, sizeof d, (off_t)(sb.logdesc_off + i * sizeof d)), (ssize_t)sizeof d);
		if (VP_DESC_KIND(d.pgno) != VP_DESC_NONE)
			used = (off_t)(sb.logdata_off + i * 4096 + 100);
	}
	close(fd);
	assert_true(used > 0);
	flip(p, used);
	expect_refused(p, VP_E_LOGCORRUPT, "checksum");
	flip(p, used);
	/* One damaged commit record copy is survivable... */
	flip(p, VP_LOGREC_OFF + 20);
	assert_int_equal(read_pool(p), 21); /* replayed */
	/* ...and once replayed the log is retired: damage there is harmless. */
	flip(p, used);
	assert_int_equal(read_pool(p), 21);
}

/* ---- the torn group: record A durable over a torn slot, B older ---- */

static int kill_fence(void *c, const char *point)
{
	(void)c;
	if (strstr(point, "slots-and-record-A-committed"))
		raise(SIGKILL); /* after D1: slots and record A written, B not */
	return 0;
}
static struct vp_persist_hooks kill_hooks = {h_store, h_flush, kill_fence, NULL};

/* torn_child -- commit the value 77 and die right after the drain that
 * makes slots, descriptors and record A durable: before record B. */
static void torn_child(void *arg)
{
	if (pmap(arg, 8 * MiB, 0) != 0)
		_exit(2);
	struct blob *b = proot("blob", sizeof *b, NULL);
	if (!b)
		_exit(3);
	pstart();
	b->a = 77;
	b->b = -77;
	b->c = 154;
	vp__persist_hooks = &kill_hooks;
	pend();
	_exit(4); /* the hook did not fire */
}

/* torn_state -- a pool holding 40, then group 77 stopped after its first
 * drain; returns the file offset of byte 100 of the group's first slot in
 * use. The records: A = COMMITTED(77's seq), B = APPLIED(seq - 1). */
static off_t torn_state(const char *p)
{
	make_pool(p, 40);
	int st = vpt_in_child(torn_child, (void *)p);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	struct vp_superblock sb;
	struct vp_logrec a, b;
	int fd = open(p, O_RDONLY);
	assert_int_equal(pread(fd, &sb, sizeof sb, 0), (ssize_t)sizeof sb);
	assert_int_equal(pread(fd, &a, sizeof a, VP_LOGREC_OFF), (ssize_t)sizeof a);
	assert_int_equal(pread(fd, &b, sizeof b, VP_LOGREC_OFF + VP_LOGREC_B), (ssize_t)sizeof b);
	assert_int_equal(a.state, VP_LOG_COMMITTED);
	assert_int_equal(b.state, VP_LOG_APPLIED);
	assert_int_equal(a.seq, b.seq + 1);
	off_t used = -1;
	for (uint64_t i = 0; used < 0 && i < a.npages; i++) {
		struct vp_logdesc d;
		off_t o = (off_t)(sb.logdesc_off + (a.base + i) * sizeof d);
		assert_int_equal(pread(fd, &d, sizeof d, o), (ssize_t)sizeof d);
		if (VP_DESC_KIND(d.pgno) != VP_DESC_NONE)
			used = (off_t)(sb.logdata_off + (a.base + i) * 4096 + 100);
	}
	close(fd);
	assert_true(used > 0);
	return used;
}

static void test_torn_group(void **state)
{
	(void)state;
	const char *p = vpt_pool_path("torn");
	/* Intact: A alone names a complete group, which is replayed. */
	torn_state(p);
	assert_int_equal(read_pool(p), 77);
	/* One slot byte torn, B older: never acknowledged, discarded. */
	off_t used = torn_state(p);
	flip(p, used);
	assert_int_equal(read_pool(p), 40);
	/* The records agree again (the torn copy was retired), so the next
	 * open reads the same. */
	struct vp_logrec a, b;
	int fd = open(p, O_RDONLY);
	assert_int_equal(pread(fd, &a, sizeof a, VP_LOGREC_OFF), (ssize_t)sizeof a);
	assert_int_equal(pread(fd, &b, sizeof b, VP_LOGREC_OFF + VP_LOGREC_B), (ssize_t)sizeof b);
	close(fd);
	assert_int_equal(a.state, VP_LOG_APPLIED);
	assert_int_equal(b.state, VP_LOG_APPLIED);
	assert_int_equal(read_pool(p), 40);
	/* The same tear with B also naming the group: it was acknowledged,
	 * so that is damage: refused, naming the page, nothing written. */
	used = torn_state(p);
	flip(p, used);
	fd = open(p, O_RDONLY);
	assert_int_equal(pread(fd, &a, sizeof a, VP_LOGREC_OFF), (ssize_t)sizeof a);
	close(fd);
	poke(p, VP_LOGREC_OFF + VP_LOGREC_B, &a, sizeof a);
	expect_refused(p, VP_E_LOGCORRUPT, "heap page");
	expect_refused(p, VP_E_LOGCORRUPT, "acknowledged");
	/* With B invalid nothing says the group is the one after B's: a
	 * torn slot is damage there too. */
	unlink(p);
	used = torn_state(p);
	flip(p, used);
	flip(p, VP_LOGREC_OFF + VP_LOGREC_B + 8);
	expect_refused(p, VP_E_LOGCORRUPT, "is invalid");
}

static void test_both_records_damaged(void **state)
{
	(void)state;
	const char *p = vpt_pool_path("recs");
	make_pool(p, 30);
	flip(p, VP_LOGREC_OFF + 8);
	flip(p, VP_LOGREC_OFF + VP_LOGREC_B + 8);
	expect_refused(p, VP_E_LOGCORRUPT, "commit records");
}

/* ---- a full medium: reported at create, or by the commit that needs the
 * space; never SIGBUS, never a damaged pool ---- */

static char small_dir[64];

static void umount_small(void);

static bool mount_small(void)
{
	atexit(umount_small); /* also after a failed assertion */
	snprintf(small_dir, sizeof small_dir, "/tmp/vpt-small-%d", (int)getpid());
	mkdir(small_dir, 0700);
	char cmd[200];
	snprintf(cmd, sizeof cmd, "mount -t tmpfs -o size=12m tmpfs %s 2>/dev/null", small_dir);
	if (system(cmd) != 0) {
		rmdir(small_dir);
		return false;
	}
	return true;
}

static void umount_small(void)
{
	char cmd[200];
	if (!small_dir[0])
		return;
	snprintf(cmd, sizeof cmd, "umount %s 2>/dev/null", small_dir);
	if (system(cmd) == 0)
		rmdir(small_dir);
	small_dir[0] = 0;
}

static void test_medium_full(void **state)
{
	(void)state;
	if (!mount_small()) {
		printf("SKIP test_medium_full: cannot mount a small tmpfs here (not root?)\n");
		skip();
	}
	char p[128];
	snprintf(p, sizeof p, "%s/full.pool", small_dir);
	/* 16 MiB of heap needs ~32 MiB: refused at create, nothing left behind. */
	assert_int_equal(pmap(p, 16 * MiB, 0), -ENOSPC);
	assert_non_null(strstr(vp_errormsg(), "reserve"));
	assert_int_equal(access(p, F_OK), -1);
	const char *trk = getenv("VOLIPMEM_TRACKER");
	if (trk && strcmp(trk, "full") == 0) {
		/* full logs the whole heap at every commit: no small commit fits
		 * here; the create check above is what applies. */
		umount_small();
		return;
	}
	/* Sparse (log reserved on demand): a commit whose log slots do not
	 * fit fails cleanly. */
	assert_int_equal(pmap(p, 8 * MiB, VP_SPARSE), 0);
	long *x = proot("x", sizeof(long), NULL);
	pstart();
	*x = 1;
	assert_int_equal(pend(), 0);
	uint8_t *big = pmalloc(6 * MiB);
	assert_non_null(big);
	assert_int_equal(pcommit(), 0);
	pstart();
	memset(big, 7, 6 * MiB);
	*x = 2;
	assert_int_equal(pend(), -ENOSPC);
	assert_int_equal(*x, 2); /* the working copy keeps the writes */
	assert_int_equal(punmap(), -ENOSPC);
	assert_int_equal(pmap(p, 8 * MiB, 0), 0);
	x = proot("x", sizeof(long), NULL);
	assert_int_equal(*x, 1); /* the last durable state */
	assert_int_equal(punmap(), 0);
	unlink(p);
	umount_small();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_reopen),
		cmocka_unit_test(test_misuse),
		cmocka_unit_test(test_superblock_damage),
		cmocka_unit_test(test_wrong_version),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_layout_hostile),
		cmocka_unit_test(test_address_taken),
		cmocka_unit_test(test_locked),
		cmocka_unit_test(test_commit_fails_before_commit_point),
		cmocka_unit_test(test_commit_fails_after_commit_point),
		cmocka_unit_test(test_both_records_damaged),
		cmocka_unit_test(test_torn_group),
		cmocka_unit_test(test_medium_full),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
