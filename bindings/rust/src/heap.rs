// SPDX-License-Identifier: MIT
//! heap -- typed block allocation over pmalloc/prealloc/pfree.

use std::mem::{align_of, size_of};
use std::ptr::NonNull;

use crate::{ffi, Error};

/// HEAP_ALIGN -- pmalloc()'s block alignment.
pub(crate) const HEAP_ALIGN: usize = 16;

/// bytes_for -- the size of n Ts, at least 1 byte (pmalloc(0) may be NULL).
fn bytes_for<T>(n: usize) -> Result<usize, Error> {
    const { assert!(align_of::<T>() <= HEAP_ALIGN, "the persistent heap aligns to 16 bytes") };
    n.checked_mul(size_of::<T>())
        .map(|b| b.max(1))
        .ok_or(Error::Code { code: -12, message: "allocation size overflows".into() })
}

/// mapped -- whether a pool is mapped.
pub(crate) fn mapped() -> bool {
    // SAFETY: a plain query.
    !unsafe { ffi::vp_heap_base() }.is_null()
}

/// alloc_array -- an uninitialised block for n Ts.
pub(crate) fn alloc_array<T>(n: usize) -> Result<NonNull<T>, Error> {
    let bytes = bytes_for::<T>(n)?;
    if !mapped() {
        return Err(Error::NotMapped);
    }
    // SAFETY: pmalloc returns NULL or a fresh block of `bytes` bytes.
    let p = unsafe { ffi::pmalloc(bytes) } as *mut T;
    NonNull::new(p).ok_or_else(|| Error::Code { code: -12, message: "persistent heap exhausted".into() })
}

/// realloc_array -- grow or shrink a block from alloc_array to n Ts.
///
/// # Safety
/// `p` must come from alloc_array/realloc_array and not be used after
/// this call unless it fails.
pub(crate) unsafe fn realloc_array<T>(p: NonNull<T>, n: usize) -> Result<NonNull<T>, Error> {
    let bytes = bytes_for::<T>(n)?;
    let q = ffi::prealloc(p.as_ptr().cast(), bytes) as *mut T;
    NonNull::new(q).ok_or_else(|| Error::Code { code: -12, message: "persistent heap exhausted".into() })
}

/// free -- give a block back.
///
/// # Safety
/// `p` must come from alloc_array/realloc_array and not be used again.
pub(crate) unsafe fn free<T>(p: *mut T) {
    ffi::pfree(p.cast());
}
