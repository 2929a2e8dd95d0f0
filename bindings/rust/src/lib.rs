// SPDX-License-Identifier: MIT
//! Safe Rust binding of libvolipmem: a persistent, crash-consistent heap
//! with failure-atomic sections and no per-write instrumentation.
//!
//! ```no_run
//! use volipmem::{fas, s_pcommit, Pool, PmemAllocator, PVec};
//!
//! let _pool = Pool::open("/dev/shm/numbers.pool", 64 << 20)?;
//! let alloc = PmemAllocator::new();
//! let mut numbers = match alloc.retrieve_root::<PVec<u32>>("numbers")? {
//!     Some(root) => root,
//!     None => alloc.save_root("numbers", PVec::new())?,
//! };
//! fas(|| numbers.push(1))?; // all of the closure's writes, or none
//! s_pcommit()?;
//! # Ok::<(), volipmem::Error>(())
//! ```
//!
//! What may live in the heap is decided by the sealed `unsafe trait`
//! [`PSafe`]: numbers, arrays, tuples, `Option`, [`PBox`], [`PVec`],
//! [`PString`], and structs declared with [`persistent!`]. A volatile
//! `Vec` cannot be stored into a persistent root:
//!
//! ```compile_fail,E0277
//! use volipmem::PmemAllocator;
//! let alloc = PmemAllocator::new();
//! let volatile: Vec<u32> = Vec::new();
//! alloc.save_root("numbers", volatile); // Vec<u32> is not PSafe
//! ```
//!
//! nor inside a persistent container, nor a reference, nor a function:
//!
//! ```compile_fail,E0277
//! let v: volipmem::PVec<Vec<u32>> = volipmem::PVec::new();
//! ```
//! ```compile_fail,E0277
//! let x = 5u32;
//! let b = volipmem::PBox::new(&x);
//! ```
//! ```compile_fail,E0277
//! fn f() {}
//! let b = volipmem::PBox::new(f as fn());
//! ```
//! ```compile_fail,E0277
//! let b = volipmem::PBox::new(String::from("volatile storage"));
//! ```
//!
//! # Panics inside a FAS
//! A commit takes every thread's writes since the previous commit and
//! cannot take back one thread's half-done section. A panic that unwinds
//! out of [`fas`] therefore aborts the process: it dies inside its FAS and
//! the next `pmap` recovers the last committed state.
//!
//! # What stays unsafe
//! - [`Pool::unmap`]: every `PBox`/`PVec`/`Root` would dangle after it, so
//!   dropping a [`Pool`] only makes writes durable and keeps the heap
//!   mapped until the process exits.
//! - Implementing [`PSafe`] by hand (it is sealed; use [`persistent!`]).
//! - A root is identified by name and a type tag derived from
//!   `std::any::type_name`, its size and alignment; a program that changes
//!   a persistent struct's fields under the same name and size is not
//!   detected.
//! - Writes outside a FAS are atomic only per aligned 8-byte store: the
//!   type system does not force mutation into [`fas`].

mod error;
mod ffi;
mod heap;
mod pbox;
mod psafe;
mod pvec;
mod root;

pub use error::Error;
pub use pbox::PBox;
pub use psafe::PSafe;
pub use pvec::{PString, PVec};
pub use root::{PmemAllocator, Root};

#[doc(hidden)]
pub mod __private {
    pub use crate::psafe::sealed::Sealed;
}

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Result of this crate's calls.
pub type Result<T> = std::result::Result<T, Error>;

/// The process's pool. Only one may be open at a time.
#[derive(Debug)]
pub struct Pool {
    _private: (),
}

impl Pool {
    /// open -- create the pool at `path` with `heap_size` bytes of heap, or
    /// open and recover it, and map its heap at its recorded address.
    pub fn open<P: AsRef<Path>>(path: P, heap_size: usize) -> Result<Pool> {
        Pool::open_with_flags(path, heap_size, 0)
    }

    /// open_with_flags -- as open, with pmap()'s VP_* flags.
    pub fn open_with_flags<P: AsRef<Path>>(path: P, heap_size: usize, flags: u32) -> Result<Pool> {
        let c = CString::new(path.as_ref().as_os_str().as_bytes()).map_err(|_| Error::BadName)?;
        // SAFETY: c is a valid NUL-terminated string.
        error::check(unsafe { ffi::pmap(c.as_ptr(), heap_size, flags) })?;
        Ok(Pool { _private: () })
    }

    /// set_relaxed -- relaxed durability: pend() returns at once and a
    /// committer thread commits every interval_ms (see `psync`).
    pub fn set_relaxed(&self, interval_ms: u32) -> Result<()> {
        // SAFETY: plain call.
        error::check(unsafe { ffi::vp_set_durability(ffi::VP_RELAXED, interval_ms) })
    }

    /// set_synchronous -- pend() returns once the section is durable.
    pub fn set_synchronous(&self) -> Result<()> {
        // SAFETY: plain call.
        error::check(unsafe { ffi::vp_set_durability(ffi::VP_SYNC, 1) })
    }

    /// unmap -- commit what is pending and unmap the heap.
    ///
    /// # Safety
    /// Every `PBox`, `PVec`, `PString` and `Root` still alive points into
    /// the heap; none may be used or dropped afterwards.
    pub unsafe fn unmap(self) -> Result<()> {
        std::mem::forget(self);
        error::check(ffi::punmap())
    }
}

impl Drop for Pool {
    /// drop -- make every write durable; the heap stays mapped (see unmap).
    fn drop(&mut self) {
        let _ = psync();
    }
}

/// fas -- run `f` as a failure-atomic section: after a crash, recovery
/// shows all of its writes to the heap or none. Nesting is flat. Returns
/// `f`'s value once the section is durable (synchronous mode), or the
/// commit's error. A panic escaping `f` aborts the process (see the crate
/// documentation).
pub fn fas<R, F: FnOnce() -> R>(f: F) -> Result<R> {
    struct AbortOnUnwind;
    impl Drop for AbortOnUnwind {
        fn drop(&mut self) {
            eprintln!("volipmem: panic inside a failure-atomic section; aborting so that it is never committed");
            std::process::abort();
        }
    }
    // SAFETY: plain call; pend() below closes the section.
    unsafe { ffi::pstart() };
    let guard = AbortOnUnwind;
    let r = f();
    std::mem::forget(guard);
    // SAFETY: closes the section opened above.
    error::check(unsafe { ffi::pend() })?;
    Ok(r)
}

/// s_pcommit -- make every write made so far durable; waits until no
/// thread is inside a FAS. Fails inside a FAS.
pub fn s_pcommit() -> Result<()> {
    // SAFETY: plain call.
    error::check(unsafe { ffi::pcommit() })
}

/// psync -- like s_pcommit; in relaxed mode waits for the next commit.
pub fn psync() -> Result<()> {
    // SAFETY: plain call.
    error::check(unsafe { ffi::psync() })
}

/// in_heap -- whether `p` points into the mapped persistent heap.
pub fn in_heap<T: ?Sized>(p: *const T) -> bool {
    // SAFETY: a plain address query.
    unsafe { ffi::vp_in_heap(p as *const u8 as *const std::os::raw::c_void) }
}
