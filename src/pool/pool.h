/* SPDX-License-Identifier: MIT */
/*
 * pool.h -- a pool file as the format sees it: the pool object, and one
 * function for each on-media rule (superblock validation and choice, the
 * commit records, log verification and replay, the file side of growth).
 *
 * pmap(), the volipmem CLI, the pool fuzzer and the crash simulator all
 * call these same functions, so the rules exist once. A pool object is
 * either a file (opened by vp__pool_open, fd >= 0) or a byte image of the
 * whole file held in memory (vp__pool_image, fd = -1). Nothing here knows
 * the heap or the commit pipeline.
 */
#ifndef VP_POOL_H
#define VP_POOL_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "persist/persist.h"
#include "pool/format.h"

/* struct vp_pool -- one open pool. */
struct vp_pool {
	int fd;                   /* the file, or -1 for an image in memory    */
	char path[PATH_MAX];      /* the name messages use                     */
	struct vp_superblock sb;  /* the winning superblock copy               */
	int sb_rc[2];             /* validation result of copy A and B         */
	char sb_why[2][200];      /* why a copy was rejected                   */
	uint8_t *map;             /* the whole file: MAP_SHARED (pmap), a
	                             private copy (CLI) or the image           */
	size_t len;               /* bytes at map (sb.file_size)               */
	uint64_t file_size;       /* the file's size when it was opened        */
	bool in_use;              /* VP_POOL_PRIVATE: another process holds it */
	struct vp_persist ps;     /* how stores to map become durable          */
};

/* ---- superblocks (pool.c) ---- */

/* vp__pool_geometry -- fill the layout fields for a heap of heap_size. */
void vp__pool_geometry(struct vp_superblock *sb, uint64_t heap_size);
/* vp__sb_seal -- set the checksum of a superblock copy. */
void vp__sb_seal(struct vp_superblock *sb);
/* vp__sb_validate -- check one superblock copy against the file size;
 * 0 or a code with a sentence in why. */
int vp__sb_validate(const struct vp_superblock *sb, uint64_t file_size, char *why, size_t whylen);
/* vp__sb_accept_old -- when set, a version-1 to -4 superblock
 * validates too (only `volipmem upgrade` sets it, to read the pool it
 * converts). */
extern bool vp__sb_accept_old;
/* vp__sb_choose -- the superblock rule: validate both copies (a or b NULL:
 * the file is too short for it) and choose the valid one with the highest
 * seq; two valid copies of different pools are refused. Fills p->sb,
 * p->sb_rc, p->sb_why. 0, or a code with vp_errormsg() naming p->path. */
int vp__sb_choose(struct vp_pool *p, const struct vp_superblock *a, const struct vp_superblock *b,
		  uint64_t file_size);

/* vp__sb_write -- write superblock copy `copy` (0 = A, 1 = B) of the
 * pool file as sb and make it durable before returning. */
int vp__sb_write(struct vp_pool *p, int copy, const struct vp_superblock *sb);

/* ---- opening (pool.c) ---- */

enum vp_pool_mode {
	VP_POOL_RW,               /* O_RDWR, exclusive lock, MAP_SHARED (pmap) */
	VP_POOL_PRIVATE,          /* O_RDONLY, shared lock tried (in_use says
	                             whether another process has it), a private
	                             copy-on-write mapping: nothing written to
	                             the map reaches the file                   */
};

/* vp__pool_create -- build a complete pool at path (VOLIPMEM_HEAP_BASE,
 * VOLIPMEM_RESERVE from vp__opt); -EEXIST if a file is there. The heap's
 * own metadata is written by format_heap (the heap's vp__heap_format) on
 * the start of the new home image: the pool does not know the heap. */
int vp__pool_create(const char *path, size_t heap_size, unsigned flags,
		    int (*format_heap)(uint8_t *img, size_t heap_size));
/* vp__pool_open -- open, lock, choose the superblock and map the file
 * (never writes it). 0, or a code with vp_errormsg() naming the problem. */
int vp__pool_open(struct vp_pool *p, const char *path, enum vp_pool_mode mode);
/* vp__pool_image -- the same on a byte image of len bytes (fd = -1, the
 * cache-line flush medium so persist hooks see every store). */
int vp__pool_image(struct vp_pool *p, uint8_t *img, uint64_t len);
void vp__pool_close(struct vp_pool *p);
/* vp__pool_map -- map len bytes of fd shared, with MAP_SYNC when the file
 * system is DAX (*dax then true). */
int vp__pool_map(int fd, size_t len, uint8_t **map, bool *dax);

/* ---- the redo log's commit records, verification and replay (recover.c) ---- */

/* vp__log_state -- the winning commit record: the valid copy with the
 * highest seq, APPLIED beating COMMITTED at equal seq. A copy with a bad
 * checksum is torn and ignored; a sealed copy whose fields are impossible
 * (base + npages beyond the log, ...) is damage: an error naming the field. */
int vp__log_state(const struct vp_superblock *sb, const uint8_t *pool, struct vp_logrec *rec);
/* vp__log_verify -- check every descriptor and slot of a committed group. */
int vp__log_verify(const struct vp_superblock *sb, const uint8_t *pool, const struct vp_logrec *rec);
/* vp__log_check -- the log rule: the winning record and, when it says
 * COMMITTED, every descriptor and slot of its group. Read-only. */
int vp__log_check(const struct vp_pool *p, struct vp_logrec *rec);
/* vp__log_page -- copy into out (4096 bytes) what heap page pgno will
 * hold once rec is replayed: the home image with every slot of the group
 * that names pgno applied in order. pre: vp__log_check. */
void vp__log_page(const struct vp_pool *p, const struct vp_logrec *rec, uint64_t pgno, uint8_t *out);
/* vp__slot_bytes -- bytes of slot in use for descriptor d (4096, header +
 * lines, or 0). pre: d and a LINES slot's header verified or just built. */
uint64_t vp__slot_bytes(const struct vp_logdesc *d, const uint8_t *slot);
/* vp__slot_apply -- store slot (described by d) into its page of the home
 * image at home through ps: the whole page, or only its logged lines. */
void vp__slot_apply(struct vp_persist *ps, uint8_t *home, const struct vp_logdesc *d, const uint8_t *slot);
/* vp__log_replay -- bring the home image up to date: copy a committed
 * group's slots home, drain, retire it. pre: vp__log_check returned 0 with
 * rec. Idempotent; a crash anywhere leaves it to be run again. */
int vp__log_replay(struct vp_pool *p, const struct vp_logrec *rec);

/* vp__logrec_store -- write one commit record copy (off: 0 for A,
 * VP_LOGREC_B for B) naming slots base .. base + npages - 1, flush it and
 * drain at crash point `point`; point NULL: no drain (the caller's next
 * drain makes it durable with other stores). */
int vp__logrec_store(struct vp_pool *p, uint32_t off, uint32_t state, uint64_t seq, uint32_t base, uint64_t npages,
		     uint64_t desc_csum, const char *point);
/* vp__logrec_build -- the bytes of that record; vp__logrec_put stores
 * them as copy off, flushes and drains at point (NULL: none). A commit
 * builds its record once and stores it as A, then as B. */
void vp__logrec_build(const struct vp_pool *p, struct vp_logrec *r, uint32_t state, uint64_t seq, uint32_t base,
		      uint64_t npages, uint64_t desc_csum);
int vp__logrec_put(struct vp_pool *p, uint32_t off, const struct vp_logrec *r, const char *point);
/* vp__logrec_write -- write both commit records (A, drain, B, drain). */
int vp__logrec_write(struct vp_pool *p, uint32_t state, uint64_t seq, uint32_t base, uint64_t npages,
		     uint64_t desc_csum);
/* vp__logrec_retire -- mark group seq APPLIED in both records. */
int vp__logrec_retire(struct vp_pool *p, uint64_t seq);

/* ---- growth, the file side (grow.c) ---- */

/* vp__pool_grow_check -- would vp__pool_grow_file(p, new_size) be refused
 * for its size? Read-only; 0 or a code. (grow_file also needs a retired
 * log, which pmap's replay leaves.) */
int vp__pool_grow_check(const struct vp_pool *p, uint64_t new_size);
/* vp__pool_grow_file -- extend the file, zero the home image's new pages
 * (the old log area), switch superblock A then B to the new layout, remap.
 * pre: the log is empty, the heap not mapped. new_size is rounded up to a
 * page and to at least 1 MiB more (vp__pool_grow_size). */
int vp__pool_grow_file(struct vp_pool *p, uint64_t new_size);
uint64_t vp__pool_grow_size(const struct vp_pool *p, uint64_t new_size);

/* Test hook: stop vp__pool_grow_file after step n (1 file extended, 2 old
 * log zeroed, 3 superblock A written, 4 superblock B written) with an
 * error, as a crash there would; 0 = never. */
extern int vp__grow_stop_after;

#endif
