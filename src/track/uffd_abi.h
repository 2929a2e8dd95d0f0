/* SPDX-License-Identifier: MIT */
/*
 * uffd_abi.h -- kernel ABI constants that Debian 12's linux-libc-dev (6.1)
 * lacks: userfaultfd's WP_ASYNC / WP_UNPOPULATED features (Linux 6.4/6.7)
 * and the PAGEMAP_SCAN ioctl on /proc/PID/pagemap (Linux 6.7). Values are
 * from the kernel's include/uapi/linux/userfaultfd.h and include/uapi/
 * linux/fs.h; they are part of the stable user ABI.
 */
#ifndef VP_UFFD_ABI_H
#define VP_UFFD_ABI_H

#include <linux/types.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>

#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
#ifndef UFFD_FEATURE_WP_HUGETLBFS_SHMEM
#define UFFD_FEATURE_WP_HUGETLBFS_SHMEM (1 << 12)
#endif
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif

#ifndef PAGEMAP_SCAN
struct page_region {
	__u64 start;
	__u64 end;
	__u64 categories;
};

struct pm_scan_arg {
	__u64 size;               /* sizeof(struct pm_scan_arg) */
	__u64 flags;
	__u64 start;
	__u64 end;
	__u64 walk_end;           /* out: where the walk stopped */
	__u64 vec;                /* struct page_region array */
	__u64 vec_len;
	__u64 max_pages;
	__u64 category_inverted;
	__u64 category_mask;
	__u64 category_anyof_mask;
	__u64 return_mask;
};

#define PAGEMAP_SCAN _IOWR('f', 16, struct pm_scan_arg)
#define PM_SCAN_WP_MATCHING   (1 << 0)
#define PM_SCAN_CHECK_WPASYNC (1 << 1)
#define PAGE_IS_WPALLOWED     (1 << 0)
#define PAGE_IS_WRITTEN       (1 << 1)   /* not PRESENT (bit 3): see research */
#define PAGE_IS_FILE          (1 << 2)
#define PAGE_IS_PRESENT       (1 << 3)
#define PAGE_IS_SWAPPED       (1 << 4)
#endif

#endif
