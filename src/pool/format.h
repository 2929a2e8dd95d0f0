/* SPDX-License-Identifier: MIT */
/*
 * format.h -- every on-media structure of a pool file, in one place.
 * docs/FORMAT.md describes the same layout in prose; keep them in step.
 *
 * File layout (offsets in bytes, all multiples of 4096):
 *
 *   0          superblock copy A                       (4 KiB)
 *   4096       superblock copy B                       (4 KiB)
 *   8192       log record block: commit record copy A at +0, copy B at
 *              +2048                                   (4 KiB)
 *   home_off   home image of the heap                  (heap_size)
 *   logdesc_off  log descriptor table, 16 bytes per slot (log_capacity)
 *   logdata_off  log data slots, one page per slot       (log_capacity)
 *              a slot holds a whole page, or a line header and the
 *              changed 64-byte lines of its page (format version 2);
 *              groups are appended one after the other, each starting
 *              at the slot its commit record names (version 3);
 *              record A drained with the slots it names (version 4);
 *              no count of used bytes in the heap header (version 5)
 *
 * All integers are little-endian (x86-64 native). Reserved bytes are zero
 * and are checked. Each structure ends with an XXH3-64 checksum of the
 * bytes before it. Of the two superblock copies, the valid one with the
 * highest seq wins; of the two commit records, likewise.
 */
#ifndef VP_FORMAT_H
#define VP_FORMAT_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

#define VP_SB_MAGIC      "VOLIPMEM"          /* 8 bytes, no NUL */
#define VP_FORMAT_VERSION 5u
#define VP_FORMAT_V1      1u                 /* whole-page log; `volipmem upgrade` */
#define VP_FORMAT_V2      2u                 /* every group at slot 0; `volipmem upgrade` */
#define VP_FORMAT_V3      3u                 /* slots durable before record A; `volipmem upgrade` */
#define VP_FORMAT_V4      4u                 /* the heap header counts used bytes; `volipmem upgrade` */
#define VP_SB_OFF_A      0u
#define VP_SB_OFF_B      4096u
#define VP_LOGREC_OFF    8192u
#define VP_LOGREC_B      2048u               /* offset of copy B in the block */
#define VP_HOME_OFF      65536u
#define VP_MIN_HEAP      (1u << 20)          /* 1 MiB */
#define VP_MAX_HEAP      (1ull << 46)        /* 64 TiB */

struct vp_superblock {
	char     magic[8];        /* "VOLIPMEM"                                  */
	uint32_t version;         /* VP_FORMAT_VERSION                            */
	uint32_t page_size;       /* 4096                                         */
	uint64_t seq;             /* bumped on each superblock update            */
	uint64_t heap_base;       /* virtual address the heap is mapped at       */
	uint64_t heap_size;       /* bytes of heap (multiple of page_size)       */
	uint64_t heap_reserve;    /* address space reserved from heap_base       */
	uint64_t home_off;        /* file offset of the home image               */
	uint64_t logdesc_off;     /* file offset of the descriptor table         */
	uint64_t logdata_off;     /* file offset of the log data slots           */
	uint64_t log_capacity;    /* log slots (pages); >= heap pages            */
	uint64_t file_size;       /* minimal file size                           */
	uint64_t create_time;     /* seconds since the epoch, informational      */
	uint8_t  uuid[16];        /* random pool identity                        */
	uint64_t flags;           /* reserved for feature flags, zero            */
	uint8_t  reserved[4096 - 120 - 8]; /* zero                               */
	uint64_t checksum;        /* XXH3-64 of all bytes before this field      */
};
static_assert(sizeof(struct vp_superblock) == 4096, "superblock is one page");
static_assert(offsetof(struct vp_superblock, reserved) == 120, "superblock fields");

#define VP_LOGREC_MAGIC  0x4345524c50494f56ull  /* "VOIPLREC" */
#define VP_LOG_COMMITTED 1u   /* the group is durable in the log, replay it  */
#define VP_LOG_APPLIED   2u   /* the home image holds the group, log free    */

/* struct vp_logrec -- the commit record. The commit point of group seq is
 * the moment copy A with state COMMITTED is durable. The group occupies
 * slots (and descriptors) base .. base + npages - 1; base + npages never
 * exceeds log_capacity. Group seq + 1 starts at base + npages when it
 * fits there (the writer uses only a window at the log's start,
 * commit/log.c), else the log is retired
 * (APPLIED) and it starts at slot 0: a group never overwrites the slots of
 * the group the records name. Versions 1 and 2 have the same record with
 * base (then `reserved0`) always 0. */
struct vp_logrec {
	uint64_t magic;           /* VP_LOGREC_MAGIC                             */
	uint64_t seq;             /* group number, increasing                    */
	uint32_t state;           /* VP_LOG_COMMITTED or VP_LOG_APPLIED          */
	uint32_t base;            /* first slot of the group (0 when APPLIED)    */
	uint64_t npages;          /* slots used by the group                     */
	uint64_t desc_csum;       /* XXH3-64 of the npages descriptors           */
	uint8_t  uuid[16];        /* the pool's uuid: a stale record from another
	                             pool copied over this one never matches     */
	uint64_t checksum;        /* XXH3-64 of all bytes before this field      */
};
static_assert(sizeof(struct vp_logrec) == 64, "commit record is one cache line");

/* struct vp_logdesc -- one log slot: which heap page it is for and what
 * the slot holds. Descriptor i always describes slot i. The top two bits
 * of `pgno` are the slot's kind (VP_DESC_KIND), the rest the heap page
 * index. A version-1 descriptor is a PAGE descriptor (kind 0). */
struct vp_logdesc {
	uint64_t pgno;            /* kind << 62 | heap page index                */
	uint64_t csum;            /* XXH3-64 of the slot's bytes in use (4096 for
	                             PAGE, header + lines for LINES), or 0 when
	                             page checksums are off; 0 for NONE          */
};
static_assert(sizeof(struct vp_logdesc) == 16, "descriptor size");

#define VP_DESC_KIND_SHIFT 62
#define VP_DESC_KIND(pg)   ((pg) >> VP_DESC_KIND_SHIFT)
#define VP_DESC_PGNO(pg)   ((pg) & ((1ull << VP_DESC_KIND_SHIFT) - 1))
#define VP_DESC_PAGE  0ull  /* the slot holds the whole page                 */
#define VP_DESC_LINES 1ull  /* the slot holds a vp_linehdr and its lines     */
#define VP_DESC_NONE  2ull  /* no line of the page changed: slot unused, the
                               page index is 0                               */

/* Lines. A page is 64 lines of 64 bytes (a cache line). */
#define VP_LINE        64u
#define VP_PAGE_LINES  64u
/* A LINES slot holds at most this many lines, so header + lines fit in the
 * slot; a writer logs the whole page above VP_LINES_LOG_MAX (commit/log.c). */
#define VP_LINES_SLOT_MAX 63u
#define VP_LINEHDR_MAGIC 0x454e494c50494f56ull  /* "VOIPLINE" */

/* struct vp_linehdr -- the first 64 bytes of a LINES slot. Line j of the
 * page (bytes j*64 .. j*64+63) is in the entry when bit j of mask is set;
 * the lines follow the header in increasing j, 64 bytes each. */
struct vp_linehdr {
	uint64_t magic;           /* VP_LINEHDR_MAGIC                            */
	uint64_t pgno;            /* heap page index (as in the descriptor)      */
	uint64_t mask;            /* which lines follow: 1..VP_LINES_SLOT_MAX bits */
	uint64_t reserved[4];     /* zero                                        */
	uint64_t checksum;        /* XXH3-64 of the bytes before this field      */
};
static_assert(sizeof(struct vp_linehdr) == VP_LINE, "line header is one line");
static_assert(sizeof(struct vp_linehdr) + VP_LINES_SLOT_MAX * VP_LINE <= 4096, "a LINES entry fits its slot");

/* ---- the heap's own metadata (inside the heap, at its first page) ---- */

#define VP_HEAP_MAGIC   0x5041454850494f56ull   /* "VOIPHEAP" */
#define VP_HEAP_VERSION 1u
#define VP_NCLASS       32      /* small size classes, 16 B .. 8 KiB          */
#define VP_NBINS        96      /* free-span bins                              */
#define VP_RUN_PAGES    16      /* pages in a small-object run (64 KiB)        */
#define VP_SMALL_MAX    8192    /* larger requests get whole pages             */
#define VP_ROOTS_MAGIC  0x544f4f5250494f56ull   /* "VOIPROOT" */

/* Page map entry kinds. */
enum {
	VP_PG_UNUSED = 0,   /* at or above top: never allocated                  */
	VP_PG_META   = 1,   /* heap header and page map                          */
	VP_PG_FREE   = 2,   /* head of a free span; n = pages                    */
	VP_PG_FTAIL  = 3,   /* last page of a free span of >= 2 pages; n = pages */
	VP_PG_LARGE  = 4,   /* head of a large block; n = pages                  */
	VP_PG_RUN    = 5,   /* head of a small-object run                        */
	VP_PG_CONT   = 6,   /* inside a large block or run; n = distance to head */
	VP_PG_INNER  = 7,   /* inside a free span (was a head once)              */
};

/* struct vp_pgent -- one entry per heap page. For a run: n packs the free
 * list head (block index + 1, 0 = empty) in the high 16 bits and the bump
 * index (first never-used block) in the low 16; nfree counts free blocks.
 * prev/next link free spans of a bin, or runs of a class with free blocks
 * (page indices; 0 = none, page 0 is the heap header). */
struct vp_pgent {
	uint8_t  kind;
	uint8_t  cls;
	uint16_t nfree;
	uint32_t n;
	uint32_t prev;
	uint32_t next;
};
static_assert(sizeof(struct vp_pgent) == 16, "page map entry");

/* struct vp_heaphdr -- page 0 of the heap. Offsets are relative to the heap
 * base so tools can read the image anywhere. */
struct vp_heaphdr {
	uint64_t magic;            /* VP_HEAP_MAGIC                              */
	uint32_t version;          /* VP_HEAP_VERSION                            */
	uint32_t meta_pages;       /* pages of header + page map                 */
	uint64_t npages;           /* heap pages                                 */
	uint64_t pagemap_off;      /* offset of the page map (one page in)       */
	uint64_t top;              /* first page never allocated                 */
	uint64_t used;             /* not kept since format version 5 (a version-4
	                              pool's count, left as it was): ignored   */
	uint64_t roots_head;       /* offset of the first root record, 0 = none  */
	uint64_t roots_tail;       /* offset of the last root record             */
	uint64_t nroots;
	uint32_t class_head[VP_NCLASS]; /* runs with free blocks, per class      */
	uint32_t bin_head[VP_NBINS];    /* free spans, per size bin              */
	uint64_t reserved[16];     /* zero                                       */
};

/* struct vp_root -- a named root, allocated from the small classes. */
struct vp_root {
	uint64_t magic;            /* VP_ROOTS_MAGIC                             */
	uint64_t next;             /* offset of the next root, 0 = last          */
	uint64_t obj;              /* offset of the object                       */
	uint64_t size;             /* the size asked for                         */
	char     name[64];         /* NUL-terminated                             */
};

/* A free small block carries this tag in its second word (xor its offset),
 * to catch double frees. */
#define VP_FREE_TAG 0x45455246504f4956ull       /* "VIOPFREE" */

#endif
