/* SPDX-License-Identifier: MIT */
/*
 * hm_bench.h -- the workload driver shared by the hashmap benchmark's two
 * executables (hm_bench_vp: volatile + VolipMem; hm_bench_pmdk: PMDK). A
 * backend says how to open a pool, how to run one failure-atomic batch and
 * how to reopen for verification; everything else (workloads, the oracle,
 * timing, latency sampling, the check after reopen) is common.
 */
#ifndef HM_BENCH_H
#define HM_BENCH_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "hm.h"

struct hm_opts {
	const char *config;	/* "volatile", "vp" or "pmdk" */
	const char *pool;	/* pool file path */
	const char *workload;	/* insert | mixed | read95 | delete */
	const char *tracker;	/* VolipMem tracker, NULL = library default */
	int interval_ms;	/* -1 = leave to the environment, 0 = sync */
	unsigned threads;
	unsigned batch;
	uint64_t keys;
	uint64_t preload;
	uint64_t ops;
	uint64_t buckets;
	unsigned value_size;	/* 0 = variable, 8..256 from the key */
	double max_seconds;	/* 0 = no cap on the measured phase */
	uint64_t seed;
	bool build;		/* only create + preload, then close */
	bool inject_loss;	/* delete one key unknown to the oracle: the
				   check must then fail (tests the test) */
	uint64_t pool_bytes;	/* size for a new pool (heap for VolipMem) */
};

struct hm_backend {
	const char *name;
	/* open (or create) the pool; *root is the table's head in it and
	 * *created says whether it is new (zeroed). reopen = verification. */
	int (*open)(const struct hm_opts *o, bool reopen, struct hm_root **root,
		    bool *created);
	/* run fn(arg) as one failure-atomic batch under the table lock */
	int (*batch)(int (*fn)(void *), void *arg);
	/* make every batch so far durable (relaxed modes) */
	int (*sync)(void);
	int (*close)(void);
	/* clear and print (as JSON members) the backend's counters */
	void (*stats_reset)(void);
	void (*stats_json)(FILE *out);
	bool can_reopen;
};

/* the table lock: backends take it around fn inside their batch() */
void hm_lock(void);
void hm_unlock(void);

int hm_bench_main(int argc, char **argv, const struct hm_backend *be);
uint64_t hm_bench_node_bytes(const struct hm_opts *o);

#endif /* HM_BENCH_H */
