// SPDX-License-Identifier: MIT
//! pvec -- `PVec<T>` and `PString`, growable storage in the persistent heap.

use std::fmt;
use std::marker::PhantomData;
use std::mem::size_of;
use std::ops::{Deref, DerefMut};
use std::ptr::{self, NonNull};

use crate::heap;
use crate::psafe::{sealed, PSafe};
use crate::Error;

/// A vector whose elements live in a block of the persistent heap: `Vec`
/// for the pool. The `PVec` itself is three words (pointer, length,
/// capacity) that may live anywhere, and must live in the heap (a root, a
/// `PBox`, another `PVec`) for the vector to be found after a restart.
///
/// Growth uses `prealloc`; like every allocation it belongs to the
/// enclosing FAS, or is an implicit FAS of its own outside one.
#[repr(C)]
pub struct PVec<T: PSafe> {
    ptr: *mut T, // null while cap == 0
    len: usize,
    cap: usize,
    _owns: PhantomData<T>,
}

// SAFETY: a PVec owns its elements like a Vec does.
unsafe impl<T: PSafe + Send> Send for PVec<T> {}
// SAFETY: shared access only hands out &T.
unsafe impl<T: PSafe + Sync> Sync for PVec<T> {}

impl<T: PSafe> sealed::Sealed for PVec<T> {}
// SAFETY: the buffer is in the persistent heap and holds PSafe values.
unsafe impl<T: PSafe> PSafe for PVec<T> {}

impl<T: PSafe> Default for PVec<T> {
    fn default() -> Self {
        PVec::new()
    }
}

impl<T: PSafe> PVec<T> {
    /// new -- an empty vector; allocates nothing.
    pub const fn new() -> PVec<T> {
        PVec { ptr: ptr::null_mut(), len: 0, cap: 0, _owns: PhantomData }
    }

    /// with_capacity -- an empty vector with room for cap elements.
    pub fn with_capacity(cap: usize) -> PVec<T> {
        let mut v = PVec::new();
        v.reserve(cap);
        v
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn capacity(&self) -> usize {
        if size_of::<T>() == 0 {
            usize::MAX
        } else {
            self.cap
        }
    }

    /// try_reserve -- room for `extra` more elements, or an error.
    pub fn try_reserve(&mut self, extra: usize) -> Result<(), Error> {
        let need = self.len.checked_add(extra).ok_or(Error::Code {
            code: -12,
            message: "capacity overflow".into(),
        })?;
        if size_of::<T>() == 0 || need <= self.cap {
            return Ok(());
        }
        let new_cap = need.max(self.cap.saturating_mul(2)).max(4);
        let p = match NonNull::new(self.ptr) {
            None => heap::alloc_array::<T>(new_cap)?,
            // SAFETY: ptr came from alloc_array/realloc_array; it is
            // replaced below and only used again on failure.
            Some(old) => unsafe { heap::realloc_array(old, new_cap)? },
        };
        self.ptr = p.as_ptr();
        self.cap = new_cap;
        Ok(())
    }

    /// reserve -- as try_reserve; panics when the heap is full.
    pub fn reserve(&mut self, extra: usize) {
        if let Err(e) = self.try_reserve(extra) {
            panic!("PVec: {e}");
        }
    }

    /// try_push -- append, or give the value back with the reason.
    pub fn try_push(&mut self, value: T) -> Result<(), (T, Error)> {
        if let Err(e) = self.try_reserve(1) {
            return Err((value, e));
        }
        // SAFETY: reserve made room at index len.
        unsafe { self.base().add(self.len).write(value) };
        self.len += 1;
        Ok(())
    }

    /// push -- append; panics when the heap is full.
    pub fn push(&mut self, value: T) {
        self.reserve(1);
        // SAFETY: reserve made room at index len.
        unsafe { self.base().add(self.len).write(value) };
        self.len += 1;
    }

    pub fn pop(&mut self) -> Option<T> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        // SAFETY: the element at the old last index is initialised and, with
        // len lowered, no longer owned by the vector.
        Some(unsafe { self.base().add(self.len).read() })
    }

    /// insert -- put value at index, shifting the rest right.
    pub fn insert(&mut self, index: usize, value: T) {
        assert!(index <= self.len, "PVec::insert: index {index} > len {}", self.len);
        self.reserve(1);
        // SAFETY: room for len + 1 elements; the tail moves up by one.
        unsafe {
            let p = self.base().add(index);
            ptr::copy(p, p.add(1), self.len - index);
            p.write(value);
        }
        self.len += 1;
    }

    /// remove -- take the element at index, shifting the rest left.
    pub fn remove(&mut self, index: usize) -> T {
        assert!(index < self.len, "PVec::remove: index {index} >= len {}", self.len);
        // SAFETY: index is in bounds; the tail moves down over the hole.
        unsafe {
            let p = self.base().add(index);
            let v = p.read();
            ptr::copy(p.add(1), p, self.len - index - 1);
            self.len -= 1;
            v
        }
    }

    /// swap_remove -- take the element at index, moving the last one there.
    pub fn swap_remove(&mut self, index: usize) -> T {
        assert!(index < self.len, "PVec::swap_remove: index {index} >= len {}", self.len);
        let last = self.len - 1;
        self.as_mut_slice().swap(index, last);
        self.pop().expect("not empty")
    }

    /// truncate -- drop the elements from index n on.
    pub fn truncate(&mut self, n: usize) {
        while self.len > n {
            drop(self.pop());
        }
    }

    pub fn clear(&mut self) {
        self.truncate(0);
    }

    pub fn as_slice(&self) -> &[T] {
        // SAFETY: the first len elements are initialised.
        unsafe { std::slice::from_raw_parts(self.base(), self.len) }
    }

    pub fn as_mut_slice(&mut self) -> &mut [T] {
        // SAFETY: as above, and &mut self makes the access unique.
        unsafe { std::slice::from_raw_parts_mut(self.base(), self.len) }
    }

    /// as_ptr -- the buffer's address (dangling while nothing is allocated).
    pub fn as_ptr(&self) -> *const T {
        self.base()
    }

    fn base(&self) -> *mut T {
        if self.ptr.is_null() {
            NonNull::dangling().as_ptr()
        } else {
            self.ptr
        }
    }
}

impl<T: PSafe + Clone> PVec<T> {
    /// extend_from_slice -- append clones of every element of s.
    pub fn extend_from_slice(&mut self, s: &[T]) {
        self.reserve(s.len());
        for v in s {
            self.push(v.clone());
        }
    }

    /// from_slice -- a new vector holding clones of s.
    pub fn from_slice(s: &[T]) -> PVec<T> {
        let mut v = PVec::with_capacity(s.len());
        v.extend_from_slice(s);
        v
    }
}

impl<T: PSafe> Drop for PVec<T> {
    fn drop(&mut self) {
        // SAFETY: drop the live elements, then free the block we own.
        unsafe {
            ptr::drop_in_place(self.as_mut_slice() as *mut [T]);
            if !self.ptr.is_null() {
                heap::free(self.ptr);
            }
        }
    }
}

impl<T: PSafe> Deref for PVec<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        self.as_slice()
    }
}

impl<T: PSafe> DerefMut for PVec<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        self.as_mut_slice()
    }
}

impl<T: PSafe> Extend<T> for PVec<T> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, iter: I) {
        for v in iter {
            self.push(v);
        }
    }
}

impl<T: PSafe> FromIterator<T> for PVec<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> PVec<T> {
        let mut v = PVec::new();
        v.extend(iter);
        v
    }
}

impl<T: PSafe + Clone> Clone for PVec<T> {
    fn clone(&self) -> PVec<T> {
        PVec::from_slice(self)
    }
}

impl<T: PSafe + fmt::Debug> fmt::Debug for PVec<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<T: PSafe + PartialEq> PartialEq for PVec<T> {
    fn eq(&self, other: &PVec<T>) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl<T: PSafe + PartialEq> PartialEq<[T]> for PVec<T> {
    fn eq(&self, other: &[T]) -> bool {
        self.as_slice() == other
    }
}

impl<'a, T: PSafe> IntoIterator for &'a PVec<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// A UTF-8 string in the persistent heap (a `PVec<u8>` that stays UTF-8).
#[repr(C)]
#[derive(Default, Clone, PartialEq)]
pub struct PString {
    bytes: PVec<u8>,
}

impl sealed::Sealed for PString {}
// SAFETY: a PVec<u8> and nothing else.
unsafe impl PSafe for PString {}

impl PString {
    pub const fn new() -> PString {
        PString { bytes: PVec::new() }
    }

    pub fn push_str(&mut self, s: &str) {
        self.bytes.extend_from_slice(s.as_bytes());
    }

    pub fn push(&mut self, c: char) {
        let mut buf = [0u8; 4];
        self.push_str(c.encode_utf8(&mut buf));
    }

    pub fn clear(&mut self) {
        self.bytes.clear();
    }

    pub fn as_str(&self) -> &str {
        // SAFETY: only whole &str and chars are ever appended.
        unsafe { std::str::from_utf8_unchecked(&self.bytes) }
    }
}

impl From<&str> for PString {
    fn from(s: &str) -> PString {
        let mut p = PString::new();
        p.push_str(s);
        p
    }
}

impl Deref for PString {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for PString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for PString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
