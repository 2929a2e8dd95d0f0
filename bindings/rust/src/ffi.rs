// SPDX-License-Identifier: MIT
//! ffi -- the part of include/volipmem.h that the binding calls.

use std::os::raw::{c_char, c_int, c_uint, c_void};

extern "C" {
    pub fn pmap(path: *const c_char, heap_size: usize, flags: c_uint) -> c_int;
    pub fn punmap() -> c_int;
    pub fn pstart();
    pub fn pend() -> c_int;
    pub fn pcommit() -> c_int;
    pub fn psync() -> c_int;
    pub fn vp_set_durability(mode: c_int, interval_ms: c_uint) -> c_int;
    pub fn pmalloc(size: usize) -> *mut c_void;
    pub fn pfree(ptr: *mut c_void);
    pub fn prealloc(ptr: *mut c_void, size: usize) -> *mut c_void;
    pub fn vp_in_heap(ptr: *const c_void) -> bool;
    pub fn proot(name: *const c_char, size: usize, created: *mut bool) -> *mut c_void;
    pub fn vp_root_remove(name: *const c_char) -> c_int;
    pub fn vp_root_list(fn_: RootFn, arg: *mut c_void) -> c_int;
    pub fn vp_strerror(code: c_int) -> *const c_char;
    pub fn vp_errormsg() -> *const c_char;
    pub fn vp_heap_base() -> *mut c_void;
}

pub type RootFn =
    extern "C" fn(name: *const c_char, obj: *mut c_void, size: usize, arg: *mut c_void) -> c_int;

pub const VP_SYNC: c_int = 0;
pub const VP_RELAXED: c_int = 1;
pub const VP_E_BASE: c_int = -30000;
pub const VP_E_NOROOT: c_int = VP_E_BASE - 18;
pub const VP_E_INVAL: c_int = VP_E_BASE - 19;
pub const VP_E_NOTMAPPED: c_int = VP_E_BASE - 10;
