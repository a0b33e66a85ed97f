//! Helpers for serving C interfaces (spec §2.1) shared by xenbus and xenfilt: copying a
//! version's vtable into the caller's buffer, recovering the provider from
//! `Interface->Context`, reading C strings handed over by child drivers.

use core::ffi::c_void;
use xen_include::interfaces::{Interface, VersionedInterface};
use xen_include::status::{
    NtStatus, STATUS_BUFFER_OVERFLOW, STATUS_INVALID_PARAMETER, STATUS_SUCCESS,
};

/// Copy `table` (one version's vtable) into the caller's `size`-byte buffer at `dst`,
/// with `Size`, `Version` and `Context` filled in (spec §2.1 `*GetInterface`).
///
/// # Safety
/// `dst` must be valid for writes of `size` bytes and suitably aligned for an interface
/// struct (pointer alignment).
pub unsafe fn copy_interface<T: VersionedInterface + Copy>(
    mut table: T,
    header: fn(&mut T) -> &mut Interface,
    context: *const c_void,
    dst: *mut c_void,
    size: usize,
) -> NtStatus {
    if dst.is_null() {
        return STATUS_INVALID_PARAMETER;
    }
    if size < T::SIZE {
        return STATUS_BUFFER_OVERFLOW;
    }
    *header(&mut table) = Interface::new(T::SIZE as u16, T::VERSION, context as *mut c_void);
    // SAFETY: `dst` is valid and aligned for `size >= size_of::<T>()` bytes (caller
    // contract, size checked above) and `T` is a plain `repr(C)` table of pointers.
    unsafe { core::ptr::write(dst.cast::<T>(), table) };
    STATUS_SUCCESS
}

/// Recover a provider from `Interface->Context`.
///
/// # Safety
/// `interface` must be NULL or point to an interface header filled by this module whose
/// context is a live `T`.
pub unsafe fn context<'a, T>(interface: *mut Interface) -> Option<&'a T> {
    if interface.is_null() {
        return None;
    }
    // SAFETY: `interface` points to a header we filled (caller contract).
    let context = unsafe { (*interface).context } as *const T;
    // SAFETY: the context of a header we filled is a live `T` (caller contract).
    unsafe { context.as_ref() }
}

/// Read a NUL-terminated C string (`None` for NULL or non-UTF-8 text).
///
/// # Safety
/// `s` must be NULL or point to a NUL-terminated string that stays alive for `'a`.
pub unsafe fn c_str<'a>(s: *const core::ffi::c_char) -> Option<&'a str> {
    if s.is_null() {
        return None;
    }
    // SAFETY: non-NULL and NUL-terminated (caller contract).
    unsafe { core::ffi::CStr::from_ptr(s) }.to_str().ok()
}
