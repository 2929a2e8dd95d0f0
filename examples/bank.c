/* SPDX-License-Identifier: MIT */
/*
 * bank.c -- the seed's example: move money between two accounts inside a
 * failure-atomic section. Run it repeatedly (and kill it whenever you like):
 * the total stays 2000.
 *
 *   ./bank /dev/shm/bank.pool [transfers]
 */
#include <stdio.h>
#include <stdlib.h>

#include <volipmem.h>

#include "../tests/num.h" /* strict numbers: a bad count is an error */

struct bank {
	long balance[2];
	long transfers;
};

int main(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : "bank.pool";
	long n = argc > 2 ? (long)vpt_uint("bank", "transfers", argv[2], 0, LONG_MAX) : 10;
	int rc = pmap(path, 16 << 20, 0);
	if (rc) {
		fprintf(stderr, "bank: pmap(%s): %s: %s\n", path, vp_strerror(rc), vp_errormsg());
		return 1;
	}
	bool created;
	struct bank *b = proot("bank", sizeof *b, &created);
	if (!b) {
		fprintf(stderr, "bank: proot: %s\n", vp_errormsg());
		return 1;
	}
	if (created) {
		pstart();
		b->balance[0] = b->balance[1] = 1000;
		pend();
		printf("new bank: two accounts with 1000 each\n");
	}
	printf("before: a=%ld b=%ld total=%ld (%ld transfers so far)\n", b->balance[0], b->balance[1],
	       b->balance[0] + b->balance[1], b->transfers);
	for (long i = 0; i < n; i++) {
		int from = (int)(b->transfers & 1);
		pstart();
		b->balance[from] -= 100;
		b->balance[!from] += 100;
		b->transfers++;
		if ((rc = pend()) != 0) {
			fprintf(stderr, "bank: pend: %s\n", vp_strerror(rc));
			return 1;
		}
	}
	printf("after:  a=%ld b=%ld total=%ld (%ld transfers so far)\n", b->balance[0], b->balance[1],
	       b->balance[0] + b->balance[1], b->transfers);
	struct vp_stats st;
	vp_stats(&st);
	printf("tracker %s, medium %s: %llu commits, %llu pages logged\n", st.tracker, st.medium,
	       (unsigned long long)st.commits, (unsigned long long)st.pages_logged);
	return punmap() ? 1 : 0;
}
