// SPDX-License-Identifier: MIT
//! psafe -- which types may live in the persistent heap.
//!
//! The heap is mapped at the same address in every run, so a pointer from
//! one heap object to another stays valid after a restart; anything that
//! points out of the heap does not. [`PSafe`] marks the types whose values
//! hold no such pointer: plain numbers, `bool`, `char`, arrays and tuples
//! of `PSafe` values, `Option` of one, and the crate's own [`PBox`],
//! [`PVec`] and [`PString`], whose storage is in the heap. It is sealed:
//! the crate implements it, and user structs get it from [`persistent!`],
//! which checks every field. So these do not compile as heap contents:
//! `Vec`, `Box`, `String` (their storage is in the volatile heap),
//! references and raw pointers (they may point anywhere), `dyn Trait`
//! (vtable pointers move with ASLR), `fn` pointers, `Rc`/`Arc`.
//!
//! [`PBox`]: crate::PBox
//! [`PVec`]: crate::PVec
//! [`PString`]: crate::PString
//! [`persistent!`]: crate::persistent

#[doc(hidden)]
pub mod sealed {
    /// Implemented only by this crate and by the `persistent!` macro.
    pub trait Sealed {}
}

/// A type whose values may be stored in the persistent heap.
///
/// # Safety
/// An implementation promises that a value holds no pointer out of the
/// persistent heap (and no pointer at all except through `PBox`/`PVec`/
/// `PString`), that its bit pattern stays meaningful in another run of the
/// program, and that its alignment is at most 16 bytes (the heap's block
/// alignment). Implement it through [`persistent!`](crate::persistent),
/// which proves the first two for structs field by field.
pub unsafe trait PSafe: sealed::Sealed + Sized {}

macro_rules! psafe_plain {
    ($($t:ty),*) => {$(
        impl sealed::Sealed for $t {}
        // SAFETY: plain values, no pointers.
        unsafe impl PSafe for $t {}
    )*};
}

psafe_plain!(u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize);
psafe_plain!(f32, f64, bool, char, ());

impl<T: PSafe, const N: usize> sealed::Sealed for [T; N] {}
// SAFETY: an array of PSafe values holds nothing but those values.
unsafe impl<T: PSafe, const N: usize> PSafe for [T; N] {}

impl<T: PSafe> sealed::Sealed for Option<T> {}
// SAFETY: None holds nothing; Some holds a PSafe value.
unsafe impl<T: PSafe> PSafe for Option<T> {}

macro_rules! psafe_tuple {
    ($($n:ident),+) => {
        impl<$($n: PSafe),+> sealed::Sealed for ($($n,)+) {}
        // SAFETY: a tuple of PSafe values holds nothing but those values.
        unsafe impl<$($n: PSafe),+> PSafe for ($($n,)+) {}
    };
}
psafe_tuple!(A);
psafe_tuple!(A, B);
psafe_tuple!(A, B, C);
psafe_tuple!(A, B, C, D);
psafe_tuple!(A, B, C, D, E);
psafe_tuple!(A, B, C, D, E, F);

/// Declare structs that may live in the persistent heap.
///
/// Each field's type must be [`PSafe`](crate::PSafe); the struct gets
/// `#[repr(C)]` (a layout that does not change between compilations) and
/// a `PSafe` implementation. Generic structs and enums are not supported.
///
/// ```no_run
/// use volipmem::{persistent, PVec, PString};
/// persistent! {
///     #[derive(Debug, Default)]
///     pub struct Account {
///         pub id: u64,
///         pub owner: PString,
///         pub history: PVec<i64>,
///     }
/// }
/// ```
///
/// A field whose storage is volatile is refused:
///
/// ```compile_fail,E0277
/// use volipmem::persistent;
/// persistent! {
///     pub struct Bad { pub history: Vec<i64> }
/// }
/// ```
#[macro_export]
macro_rules! persistent {
    ($(
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $( $(#[$fmeta:meta])* $fvis:vis $field:ident : $fty:ty ),* $(,)?
        }
    )*) => {$(
        $(#[$meta])*
        #[repr(C)]
        $vis struct $name {
            $( $(#[$fmeta])* $fvis $field : $fty ),*
        }
        impl $crate::__private::Sealed for $name {}
        // SAFETY: every field is PSafe (checked below) and the layout is
        // repr(C); alignment is checked where values enter the heap.
        unsafe impl $crate::PSafe for $name {}
        const _: () = {
            const fn field_is_psafe<T: $crate::PSafe>() {}
            $( field_is_psafe::<$fty>(); )*
        };
    )*};
}
