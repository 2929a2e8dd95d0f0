// SPDX-License-Identifier: MIT
//! pbox -- `PBox<T>`, a single value in the persistent heap.

use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

use crate::heap;
use crate::psafe::{sealed, PSafe};

/// An owned `T` whose storage is a block of the persistent heap: `Box`
/// for the pool. Its own bytes are one pointer, so a `PBox` may itself
/// live in the heap (in a root, a `PVec`, another `PBox`).
#[repr(transparent)]
pub struct PBox<T: PSafe> {
    ptr: NonNull<T>,
    _owns: PhantomData<T>,
}

// SAFETY: a PBox owns its T like a Box does.
unsafe impl<T: PSafe + Send> Send for PBox<T> {}
// SAFETY: shared access only hands out &T.
unsafe impl<T: PSafe + Sync> Sync for PBox<T> {}

impl<T: PSafe> sealed::Sealed for PBox<T> {}
// SAFETY: the pointer targets the persistent heap, and T is PSafe.
unsafe impl<T: PSafe> PSafe for PBox<T> {}

impl<T: PSafe> PBox<T> {
    /// new -- move `value` into the heap. Panics when no pool is mapped or
    /// the heap is full (like `Box::new` on out of memory); see `try_new`.
    pub fn new(value: T) -> PBox<T> {
        match PBox::try_new(value) {
            Ok(b) => b,
            Err(e) => panic!("PBox::new: {e}"),
        }
    }

    /// try_new -- move `value` into the heap, or say why it cannot.
    pub fn try_new(value: T) -> Result<PBox<T>, crate::Error> {
        let ptr = heap::alloc_array::<T>(1)?;
        // SAFETY: ptr is a fresh block large and aligned enough for a T.
        unsafe { ptr.as_ptr().write(value) };
        Ok(PBox { ptr, _owns: PhantomData })
    }

    /// into_inner -- move the value out and free the block.
    pub fn into_inner(b: PBox<T>) -> T {
        let b = std::mem::ManuallyDrop::new(b);
        // SAFETY: the value is read once, then its block freed without
        // dropping it again.
        unsafe {
            let v = b.ptr.as_ptr().read();
            heap::free(b.ptr.as_ptr());
            v
        }
    }

    /// as_ptr -- the address of the value in the heap.
    pub fn as_ptr(b: &PBox<T>) -> *const T {
        b.ptr.as_ptr()
    }
}

impl<T: PSafe> Deref for PBox<T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the block holds an initialised T owned by self.
        unsafe { self.ptr.as_ref() }
    }
}

impl<T: PSafe> DerefMut for PBox<T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as above, and &mut self makes the access unique.
        unsafe { self.ptr.as_mut() }
    }
}

impl<T: PSafe> Drop for PBox<T> {
    fn drop(&mut self) {
        // SAFETY: we own the value and its block; neither is used again.
        unsafe {
            std::ptr::drop_in_place(self.ptr.as_ptr());
            heap::free(self.ptr.as_ptr());
        }
    }
}

impl<T: PSafe + Clone> Clone for PBox<T> {
    fn clone(&self) -> PBox<T> {
        PBox::new((**self).clone())
    }
}

impl<T: PSafe + fmt::Debug> fmt::Debug for PBox<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}

impl<T: PSafe + PartialEq> PartialEq for PBox<T> {
    fn eq(&self, other: &PBox<T>) -> bool {
        **self == **other
    }
}
