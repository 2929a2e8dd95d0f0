// SPDX-License-Identifier: MIT
//! error -- VolipMem's 0/-code results as a Rust error type.

use std::ffi::CStr;
use std::fmt;

use crate::ffi;

/// What went wrong: a libvolipmem code (`-errno` or a `VP_E_*` value) with
/// the library's message, or a misuse the binding detected itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A libvolipmem call returned `code`; `message` is `vp_strerror` plus
    /// the thread's `vp_errormsg`.
    Code { code: i32, message: String },
    /// The root exists but was saved with another type.
    TypeMismatch { name: String },
    /// The root is already borrowed through another `Root` handle.
    Busy { name: String },
    /// No pool is mapped.
    NotMapped,
    /// A root name with a NUL byte or longer than 63 bytes.
    BadName,
}

impl Error {
    /// from_code -- an Error for a negative code of the C API.
    pub(crate) fn from_code(code: i32) -> Error {
        // SAFETY: both return pointers to NUL-terminated strings owned by
        // the library (static or thread-local), read before any other call.
        let (s, m) = unsafe {
            (
                CStr::from_ptr(ffi::vp_strerror(code)).to_string_lossy().into_owned(),
                CStr::from_ptr(ffi::vp_errormsg()).to_string_lossy().into_owned(),
            )
        };
        let message = if m.is_empty() { s } else { format!("{s} ({m})") };
        Error::Code { code, message }
    }

    /// code -- the C API's code for this error.
    pub fn code(&self) -> i32 {
        match self {
            Error::Code { code, .. } => *code,
            Error::TypeMismatch { .. } => ffi::VP_E_INVAL,
            Error::Busy { .. } => -libc_ebusy(),
            Error::NotMapped => ffi::VP_E_NOTMAPPED,
            Error::BadName => ffi::VP_E_INVAL,
        }
    }
}

const fn libc_ebusy() -> i32 {
    16 // EBUSY on Linux
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Code { message, .. } => f.write_str(message),
            Error::TypeMismatch { name } => write!(f, "root '{name}' holds another type"),
            Error::Busy { name } => write!(f, "root '{name}' is already borrowed"),
            Error::NotMapped => f.write_str("no pool is mapped"),
            Error::BadName => f.write_str("root names are 1..63 bytes without NUL"),
        }
    }
}

impl std::error::Error for Error {}

/// check -- turn a 0/-code result into a Result.
pub(crate) fn check(rc: i32) -> Result<(), Error> {
    if rc == 0 {
        Ok(())
    } else {
        Err(Error::from_code(rc))
    }
}
