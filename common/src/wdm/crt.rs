//! The C runtime symbols that rustc and `core` expect on `x86_64-pc-windows-msvc`, provided
//! here because a driver links no CRT: `memcpy`, `memmove`, `memset`, `memcmp`, `bcmp`, `strlen`, `__chkstk`,
//! `_fltused` and `__CxxFrameHandler3` (referenced by the unwind tables of the prebuilt
//! `core`; with `panic = "abort"` no Rust frame ever handles an exception).

use core::arch::{asm, global_asm};

/// `memcpy` with `rep movsb` (fast on every CPU with ERMSB).
///
/// # Safety
/// Standard `memcpy` contract: valid, non-overlapping ranges of `n` bytes.
#[no_mangle]
pub unsafe extern "C" fn memcpy(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the caller guarantees both ranges; the direction flag is clear (ABI).
    unsafe {
        asm!("rep movsb", inout("rcx") n => _, inout("rdi") dest => _, inout("rsi") src => _,
             options(nostack, preserves_flags));
    }
    dest
}

/// `memmove`: forward copy unless the destination starts inside the source.
///
/// # Safety
/// Standard `memmove` contract: valid ranges of `n` bytes, possibly overlapping.
#[no_mangle]
pub unsafe extern "C" fn memmove(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if (dest as usize).wrapping_sub(src as usize) >= n {
        // SAFETY: dest is below src or the ranges do not overlap: forward is safe.
        unsafe { memcpy(dest, src, n) }
    } else {
        // SAFETY: copy backwards from the last byte with the direction flag set, then
        // restore it (the ABI requires it clear).
        unsafe {
            asm!("std", "rep movsb", "cld",
                 inout("rcx") n => _, inout("rdi") dest.add(n - 1) => _,
                 inout("rsi") src.add(n - 1) => _, options(nostack));
        }
        dest
    }
}

/// `memset` with `rep stosb`.
///
/// # Safety
/// Standard `memset` contract: `n` writable bytes at `dest`.
#[no_mangle]
pub unsafe extern "C" fn memset(dest: *mut u8, c: i32, n: usize) -> *mut u8 {
    // SAFETY: the caller guarantees the range.
    unsafe {
        asm!("rep stosb", inout("rcx") n => _, inout("rdi") dest => _, in("al") c as u8,
             options(nostack, preserves_flags));
    }
    dest
}

/// `memcmp`: volatile byte reads keep LLVM from turning the loop back into a `memcmp` call.
///
/// # Safety
/// Standard `memcmp` contract: `n` readable bytes at each pointer.
#[no_mangle]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    let mut i = 0;
    while i < n {
        // SAFETY: i < n, inside both ranges.
        let (x, y) = unsafe { (a.add(i).read_volatile(), b.add(i).read_volatile()) };
        if x != y {
            return i32::from(x) - i32::from(y);
        }
        i += 1;
    }
    0
}

/// `bcmp`: zero when equal (LLVM emits it for equality-only comparisons).
///
/// # Safety
/// As for [`memcmp`].
#[no_mangle]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: forwarded contract.
    unsafe { memcmp(a, b, n) }
}

/// `strlen` (used by `CStr::from_ptr`).
///
/// # Safety
/// `s` must point to a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn strlen(s: *const u8) -> usize {
    let mut n = 0;
    // SAFETY: the caller guarantees a NUL before the end of the readable range.
    while unsafe { s.add(n).read_volatile() } != 0 {
        n += 1;
    }
    n
}

/// Tells the linker floating point is used; no CRT initialisation is needed in the kernel.
#[no_mangle]
#[used]
pub static _fltused: i32 = 0;

/// `EXCEPTION_DISPOSITION __CxxFrameHandler3(...)`: no Rust frame handles SEH or C++
/// exceptions (panics abort), so every frame answers `ExceptionContinueSearch` (1).
#[no_mangle]
pub extern "C" fn __CxxFrameHandler3(
    _record: *mut core::ffi::c_void,
    _frame: *mut core::ffi::c_void,
    _context: *mut core::ffi::c_void,
    _dispatcher: *mut core::ffi::c_void,
) -> i32 {
    1
}

// `__chkstk`: called with the frame size in RAX by functions whose frame exceeds a page;
// touches each page of the new frame from the top down, preserving every register but
// R10/R11 and the flags (the MSVC x64 contract). Kernel stacks are resident, so the probes
// never fault on a healthy stack and fault on the guard page of an overflowing one, which
// is the point: an overflow is reported where it happens.
global_asm!(
    ".globl __chkstk",
    "__chkstk:",
    "    push rcx",
    "    push rax",
    "    lea rcx, [rsp + 24]",
    "2:",
    "    cmp rax, 0x1000",
    "    jb 3f",
    "    sub rcx, 0x1000",
    "    test [rcx], rcx",
    "    sub rax, 0x1000",
    "    jmp 2b",
    "3:",
    "    sub rcx, rax",
    "    test [rcx], rcx",
    "    pop rax",
    "    pop rcx",
    "    ret",
);
