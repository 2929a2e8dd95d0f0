// SPDX-License-Identifier: MIT
//! root -- named persistent roots: `PmemAllocator::retrieve_root` and
//! `save_root`, and the `Root<T>` handle they return.
//!
//! A root is a heap object found by name after a restart. The binding
//! stores a type tag in front of the value, so that asking for a root with
//! another type fails instead of reinterpreting its bytes, and keeps a
//! volatile list of the roots currently borrowed through a `Root`, so that
//! two handles can never give out aliasing `&mut T`.

use std::ffi::{CStr, CString};
use std::marker::PhantomData;
use std::mem::{align_of, size_of};
use std::ops::{Deref, DerefMut};
use std::os::raw::{c_char, c_int, c_void};
use std::ptr::NonNull;
use std::sync::Mutex;

use crate::error::{self, Error};
use crate::heap::{self, HEAP_ALIGN};
use crate::psafe::PSafe;
use crate::{fas, ffi, Result};

/// The bytes of a root: its type tag, padding to 16, the value.
#[repr(C)]
struct RootCell<T> {
    tag: u64,
    _pad: u64,
    value: T,
}

static BORROWED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// type_tag -- a fingerprint of T: FNV-1a over its name, size, alignment.
fn type_tag<T>() -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    let name = std::any::type_name::<T>();
    for b in name.bytes().chain((size_of::<T>() as u64).to_le_bytes()).chain((align_of::<T>() as u64).to_le_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    h | 1 // never 0, the value of a freshly created (zeroed) root
}

/// c_name -- the root name as a C string (1..=63 bytes, no NUL).
fn c_name(name: &str) -> Result<CString> {
    if name.is_empty() || name.len() > 63 {
        return Err(Error::BadName);
    }
    CString::new(name).map_err(|_| Error::BadName)
}

/// find -- the object and size of root `name`, without creating it.
fn find(name: &CStr) -> Option<(NonNull<c_void>, usize)> {
    struct Want<'a> {
        name: &'a CStr,
        found: Option<(NonNull<c_void>, usize)>,
    }
    extern "C" fn visit(n: *const c_char, obj: *mut c_void, size: usize, arg: *mut c_void) -> c_int {
        // SAFETY: arg is the &mut Want passed below; n is a C string.
        let want = unsafe { &mut *(arg as *mut Want) };
        if unsafe { CStr::from_ptr(n) } == want.name {
            want.found = NonNull::new(obj).map(|o| (o, size));
            return 1;
        }
        0
    }
    let mut want = Want { name, found: None };
    // SAFETY: visit only runs during this call, with arg = &mut want.
    unsafe { ffi::vp_root_list(visit, &mut want as *mut Want as *mut c_void) };
    want.found
}

/// borrow -- mark `name` as borrowed; Busy if it already is.
fn borrow(name: &str) -> Result<()> {
    let mut b = BORROWED.lock().unwrap_or_else(|e| e.into_inner());
    if b.iter().any(|n| n == name) {
        return Err(Error::Busy { name: name.to_string() });
    }
    b.push(name.to_string());
    Ok(())
}

fn release(name: &str) {
    let mut b = BORROWED.lock().unwrap_or_else(|e| e.into_inner());
    b.retain(|n| n != name);
}

fn is_borrowed(name: &str) -> bool {
    BORROWED.lock().unwrap_or_else(|e| e.into_inner()).iter().any(|n| n == name)
}

/// typed_cell -- root `name` as a RootCell<T>, checking size and tag.
fn typed_cell<T: PSafe>(name: &str, c: &CStr) -> Result<Option<NonNull<RootCell<T>>>> {
    match find(c) {
        None => Ok(None),
        Some((obj, size)) => {
            let cell = obj.cast::<RootCell<T>>();
            // SAFETY: a root of at least 8 bytes starts with our tag.
            if size != size_of::<RootCell<T>>() || unsafe { cell.as_ref().tag } != type_tag::<T>() {
                return Err(Error::TypeMismatch { name: name.to_string() });
            }
            Ok(Some(cell))
        }
    }
}

/// The handle to the process's persistent heap through which roots are
/// found and saved (the talk's `PmemAllocator`). It holds no state; every
/// copy is the same allocator.
#[derive(Debug, Clone, Copy, Default)]
pub struct PmemAllocator {
    _private: (),
}

impl PmemAllocator {
    pub fn new() -> PmemAllocator {
        PmemAllocator { _private: () }
    }

    /// retrieve_root -- the root called `name` as a T: Ok(None) if there is
    /// no such root, TypeMismatch if it holds another type, Busy if another
    /// live `Root` handle has it.
    pub fn retrieve_root<T: PSafe>(&self, name: &str) -> Result<Option<Root<T>>> {
        const { assert!(align_of::<T>() <= HEAP_ALIGN) };
        if !heap::mapped() {
            return Err(Error::NotMapped);
        }
        let c = c_name(name)?;
        borrow(name)?;
        match typed_cell::<T>(name, &c) {
            Ok(Some(cell)) => Ok(Some(Root { cell, name: name.to_string(), _t: PhantomData })),
            other => {
                release(name);
                other.map(|_| None)
            }
        }
    }

    /// save_root -- store `value` as root `name`, in one FAS: a new root is
    /// created; an existing one of the same type has its old value dropped
    /// and replaced; one of another type is refused (remove it first).
    pub fn save_root<T: PSafe>(&self, name: &str, value: T) -> Result<Root<T>> {
        const { assert!(align_of::<T>() <= HEAP_ALIGN) };
        if !heap::mapped() {
            return Err(Error::NotMapped);
        }
        let c = c_name(name)?;
        borrow(name)?;
        let r = fas(|| -> Result<NonNull<RootCell<T>>> {
            if let Some(cell) = typed_cell::<T>(name, &c)? {
                // SAFETY: the cell holds a T (tag checked) that no handle
                // borrows; it is dropped and overwritten in this FAS.
                unsafe {
                    std::ptr::drop_in_place(&mut (*cell.as_ptr()).value);
                    std::ptr::addr_of_mut!((*cell.as_ptr()).value).write(value);
                }
                return Ok(cell);
            }
            let mut created = false;
            // SAFETY: c is a valid name; proot returns NULL or a zeroed
            // block of the size asked for, 16-byte aligned.
            let obj = unsafe { ffi::proot(c.as_ptr(), size_of::<RootCell<T>>(), &mut created) };
            let cell = NonNull::new(obj as *mut RootCell<T>).ok_or_else(|| Error::from_code(ffi::VP_E_INVAL))?;
            // SAFETY: a fresh root of our size: write tag and value.
            unsafe {
                std::ptr::addr_of_mut!((*cell.as_ptr()).tag).write(type_tag::<T>());
                std::ptr::addr_of_mut!((*cell.as_ptr()).value).write(value);
            }
            Ok(cell)
        });
        match r {
            Ok(Ok(cell)) => Ok(Root { cell, name: name.to_string(), _t: PhantomData }),
            Ok(Err(e)) | Err(e) => {
                release(name);
                Err(e)
            }
        }
    }

    /// remove_root -- drop the T held by root `name` and delete the root,
    /// in one FAS. Busy while a `Root` handle has it.
    pub fn remove_root<T: PSafe>(&self, name: &str) -> Result<()> {
        if !heap::mapped() {
            return Err(Error::NotMapped);
        }
        let c = c_name(name)?;
        if is_borrowed(name) {
            return Err(Error::Busy { name: name.to_string() });
        }
        let cell = typed_cell::<T>(name, &c)?.ok_or_else(|| Error::from_code(ffi::VP_E_NOROOT))?;
        fas(|| {
            // SAFETY: the T is not borrowed; dropped, then its root removed.
            unsafe { std::ptr::drop_in_place(&mut (*cell.as_ptr()).value) };
            // SAFETY: c is a valid name.
            error::check(unsafe { ffi::vp_root_remove(c.as_ptr()) })
        })?
    }
}

/// A borrowed root: derefs to the T in the heap. While it lives no other
/// handle to the same root can be made.
pub struct Root<T: PSafe> {
    cell: NonNull<RootCell<T>>,
    name: String,
    _t: PhantomData<T>,
}

// SAFETY: a Root is a unique handle to its T.
unsafe impl<T: PSafe + Send> Send for Root<T> {}
// SAFETY: shared access only hands out &T.
unsafe impl<T: PSafe + Sync> Sync for Root<T> {}

impl<T: PSafe> Root<T> {
    /// name -- the root's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl<T: PSafe> Deref for Root<T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the cell holds a T (tag checked) and this handle is the
        // only one (borrow list); the heap stays mapped (Pool::unmap is
        // unsafe).
        unsafe { &(*self.cell.as_ptr()).value }
    }
}

impl<T: PSafe> DerefMut for Root<T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as above, and &mut self makes the access unique.
        unsafe { &mut (*self.cell.as_ptr()).value }
    }
}

impl<T: PSafe> Drop for Root<T> {
    fn drop(&mut self) {
        release(&self.name);
    }
}

impl<T: PSafe + std::fmt::Debug> std::fmt::Debug for Root<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Root").field("name", &self.name).field("value", &**self).finish()
    }
}
