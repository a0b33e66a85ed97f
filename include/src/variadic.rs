//! Receiving the three C-variadic interface methods (`EvtchnOpen`, `StorePrintf`,
//! `DebugPrintf`) in Rust.
//!
//! # The problem
//! A C child driver calls these slots as variadic functions. Stable Rust can *call* a
//! C-variadic function pointer but cannot *define* one (`c_variadic` is unstable).
//!
//! # The solution: a tiny assembly entry point
//! [`variadic_shim!`](crate::variadic_shim) emits a `global_asm!` entry symbol with the
//! variadic signature the vtable slot needs, and a Rust implementation that takes the
//! fixed arguments plus one extra `va: *const u64`:
//!
//! ```text
//! C caller ──► shim (asm, variadic ABI) ──► impl(fixed.., va: *const u64)  (plain Rust)
//! ```
//!
//! * **Win64** (the Windows target, and `extern "win64"` on any x86_64 host): every
//!   argument has an 8-byte home slot at `[rsp+8+8*i]` on entry; the caller leaves the
//!   first four in `rcx, rdx, r8, r9` and reserves their home slots. The shim spills the
//!   four registers to their home slots (so all arguments become one contiguous array;
//!   floats are duplicated into the integer registers for variadic calls, so this is exact),
//!   allocates a new frame (40 bytes, or 56 when the implementation takes 6 arguments,
//!   keeping `rsp` 16-byte aligned at the call), copies a fifth fixed argument, passes the
//!   address of the first variadic slot as the extra argument, calls the implementation
//!   and returns its `rax`. On Windows targets it also carries `.seh_*` unwind directives.
//! * **SysV** (`extern "C"` on x86_64 Linux hosts, for the simulator): the shim pops the
//!   return address, pushes the registers that hold variadic integer arguments so they
//!   sit directly below the caller's stack arguments (again one contiguous array of 8-byte
//!   slots), calls the implementation with the array address, then restores the stack.
//!   Floating-point variadic arguments are passed in XMM registers on SysV and are **not**
//!   visible to this flavour (none of the three methods takes them).
//!
//! The implementation then walks the slots with [`VaList`], whose constructor is the one
//! `unsafe` promise ("this many slots are readable"), after which reading is safe and
//! bounded. Narrow arguments are promoted by C (`BOOLEAN`/`USHORT` travel as `int`); the
//! upper bits of a slot are undefined, so [`VaArg`] truncates to the requested width.
//!
//! For the two printf-style methods, [`vformat`] renders a C format string with its
//! variadic arguments (the subset of `RtlStringCbVPrintfA` that drivers use: flags
//! `-0+ #`, width/precision incl. `*`, lengths `hh h l ll I64 I32 I z j t`, conversions
//! `d i u x X o c s p %`). The number of slots is derived from the format, so only as
//! many slots as the caller's format promises are read; `%n` and floating point are refused.

use core::ffi::c_char;
use core::marker::PhantomData;

/// A value that can be read from one 8-byte variadic slot.
pub trait VaArg: Sized {
    /// Converts the raw slot (upper bits beyond the C type's width are undefined).
    fn from_slot(slot: u64) -> Self;
}

macro_rules! va_arg_int {
    ($($t:ty),*) => {$(
        impl VaArg for $t {
            fn from_slot(slot: u64) -> Self {
                // Truncation is the point: C promoted the value and left garbage above it.
                slot as $t
            }
        }
    )*};
}
va_arg_int!(u8, i8, u16, i16, u32, i32, u64, i64, usize, isize);

impl<T> VaArg for *const T {
    fn from_slot(slot: u64) -> Self {
        slot as usize as *const T
    }
}

impl<T> VaArg for *mut T {
    fn from_slot(slot: u64) -> Self {
        slot as usize as *mut T
    }
}

impl VaArg for f64 {
    fn from_slot(slot: u64) -> Self {
        f64::from_bits(slot)
    }
}

/// A bounded walker over the variadic slots handed over by a shim.
///
/// # Invariants
/// `next` points at `remaining` readable, 8-byte aligned `u64` slots that stay valid for `'a`.
pub struct VaList<'a> {
    next: *const u64,
    remaining: usize,
    _slots: PhantomData<&'a [u64]>,
}

impl<'a> VaList<'a> {
    /// Wraps the `va` pointer a shim passed to the implementation.
    ///
    /// # Safety
    /// `va` must point at least `count` readable 8-byte slots (the variadic arguments the
    /// caller actually passed, e.g. as implied by the EVTCHN type or a format string),
    /// valid for `'a`.
    pub unsafe fn new(va: *const u64, count: usize) -> Self {
        VaList {
            next: va,
            remaining: count,
            _slots: PhantomData,
        }
    }

    /// Builds a list over a Rust slice (tests, and re-dispatch from Rust callers).
    pub fn from_slice(slots: &'a [u64]) -> Self {
        VaList {
            next: slots.as_ptr(),
            remaining: slots.len(),
            _slots: PhantomData,
        }
    }

    /// Slots not yet read.
    pub fn remaining(&self) -> usize {
        self.remaining
    }

    /// Reads the next argument as `T`, or `None` when the promised slots are used up.
    pub fn arg<T: VaArg>(&mut self) -> Option<T> {
        if self.remaining == 0 {
            return None;
        }
        // SAFETY: by the type invariant `next` points at `remaining` (> 0) readable slots.
        let slot = unsafe { self.next.read_unaligned() };
        // SAFETY: one slot further stays within (or one past) the promised slots.
        self.next = unsafe { self.next.add(1) };
        self.remaining -= 1;
        Some(T::from_slot(slot))
    }
}

/// Emits an assembly entry point for a C-variadic vtable slot that forwards to a Rust
/// implementation taking the fixed arguments plus `va: *const u64`.
///
/// ```ignore
/// xen_include::variadic_shim! {
///     // Entry symbol `store_printf_entry`, usable as `StorePrintfFn`:
///     C fn store_printf_entry(
///         interface: PInterface, transaction: *mut StoreTransaction,
///         prefix: *mut c_char, node: *mut c_char, format: *const c_char, ...
///     ) -> NtStatus => store_printf_impl;
/// }
/// // extern "C" fn store_printf_impl(interface, transaction, prefix, node, format,
/// //                                 va: *const u64) -> NtStatus { ... }
/// table.store_printf = Some(store_printf_entry);
/// ```
///
/// The ABI word is `C` (the vtable ABI: Win64 on Windows targets, SysV on x86_64 Linux
/// hosts) or `win64` (the Windows convention on any x86_64 target, for host tests of the
/// real ABI). 1 to 5 fixed arguments are supported. The symbol name must be unique in the
/// final image. The implementation's signature is type-checked by the macro. The macro
/// also creates a private module named like the entry (the assembly lives there), so the
/// target path must resolve from a child module of the invoking one: a plain name or a
/// `crate::…` path, not `self::…`/`super::…`, and not an item local to a function body.
#[macro_export]
macro_rules! variadic_shim {
    (win64 fn $shim:ident($($p:ident: $t:ty),+ , ...) $(-> $ret:ty)? => $target:path;) => {
        extern "win64" {
            #[doc = concat!("Variadic Win64 entry forwarding to `", stringify!($target), "`.")]
            pub fn $shim($($p: $t),+ , ...) $(-> $ret)?;
        }
        const _: unsafe extern "win64" fn($($t),+ , *const u64) $(-> $ret)? = $target;
        $crate::__variadic_shim_win64!($shim, $target, [$($p)+]);
    };
    (C fn $shim:ident($($p:ident: $t:ty),+ , ...) $(-> $ret:ty)? => $target:path;) => {
        extern "C" {
            #[doc = concat!("Variadic C entry forwarding to `", stringify!($target), "`.")]
            pub fn $shim($($p: $t),+ , ...) $(-> $ret)?;
        }
        const _: unsafe extern "C" fn($($t),+ , *const u64) $(-> $ret)? = $target;
        #[cfg(all(target_arch = "x86_64", windows))]
        $crate::__variadic_shim_win64!($shim, $target, [$($p)+]);
        #[cfg(all(target_arch = "x86_64", not(windows)))]
        $crate::__variadic_shim_sysv!($shim, $target, [$($p)+]);
    };
}

/// Implementation detail of [`variadic_shim!`]: the Win64 entry.
#[doc(hidden)]
#[macro_export]
macro_rules! __variadic_shim_win64 {
    ($shim:ident, $target:path, [$($p:ident)+]) => {
        // A module named like the entry symbol (type namespace, so no clash with the fn)
        // holds the constants: `global_asm!` must be at item level.
        #[doc(hidden)]
        mod $shim {
            #[allow(unused_imports)]
            use super::*;
            const FIXED: usize = <[&str]>::len(&[$(stringify!($p)),+]);
            const _: () = assert!(FIXED >= 1 && FIXED <= 5, "1 to 5 fixed arguments");
            // Shadow space (+ stack argument slots) so that rsp is 16-aligned at the call.
            const FRAME: usize = if FIXED == 5 { 56 } else { 40 };
            #[cfg(windows)]
            ::core::arch::global_asm!(
                concat!(".text\n.balign 16\n.globl ", stringify!($shim), "\n",
                        ".def ", stringify!($shim), "; .scl 2; .type 32; .endef\n",
                        ".seh_proc ", stringify!($shim), "\n", stringify!($shim), ":"),
                "mov [rsp+8], rcx",
                "mov [rsp+16], rdx",
                "mov [rsp+24], r8",
                "mov [rsp+32], r9",
                "sub rsp, {frame}",
                ".seh_stackalloc {frame}",
                ".seh_endprologue",
                $crate::__variadic_win64_body!(),
                ".seh_endproc",
                frame = const FRAME,
                n = const FIXED,
                target = sym $target,
            );
            #[cfg(not(windows))]
            ::core::arch::global_asm!(
                concat!(".text\n.balign 16\n.globl ", stringify!($shim), "\n",
                        stringify!($shim), ":"),
                "mov [rsp+8], rcx",
                "mov [rsp+16], rdx",
                "mov [rsp+24], r8",
                "mov [rsp+32], r9",
                "sub rsp, {frame}",
                $crate::__variadic_win64_body!(),
                frame = const FRAME,
                n = const FIXED,
                target = sym $target,
            );
        }
    };
}

/// Implementation detail of [`variadic_shim!`]: the Win64 body after the prologue.
#[doc(hidden)]
#[macro_export]
macro_rules! __variadic_win64_body {
    () => {
        concat!(
            // va = entry rsp + 8 + 8 * FIXED = rsp + FRAME + 8 + 8 * FIXED.
            ".if {n} == 5\n",
            "mov rax, [rsp+{frame}+40]\n", // fifth fixed argument -> fifth slot
            "mov [rsp+32], rax\n",
            "lea rax, [rsp+{frame}+48]\n",
            "mov [rsp+40], rax\n",
            ".elseif {n} == 4\n",
            "lea rax, [rsp+{frame}+40]\n",
            "mov [rsp+32], rax\n",
            ".elseif {n} == 3\n",
            "lea r9, [rsp+{frame}+32]\n",
            ".elseif {n} == 2\n",
            "lea r8, [rsp+{frame}+24]\n",
            ".else\n",
            "lea rdx, [rsp+{frame}+16]\n",
            ".endif\n",
            "call {target}\n",
            "add rsp, {frame}\n",
            "ret"
        )
    };
}

/// Implementation detail of [`variadic_shim!`]: the SysV entry (x86_64 Linux hosts).
#[doc(hidden)]
#[macro_export]
macro_rules! __variadic_shim_sysv {
    ($shim:ident, $target:path, [$($p:ident)+]) => {
        // A module named like the entry symbol (type namespace, so no clash with the fn)
        // holds the constants: `global_asm!` must be at item level.
        #[doc(hidden)]
        mod $shim {
            #[allow(unused_imports)]
            use super::*;
            const FIXED: usize = <[&str]>::len(&[$(stringify!($p)),+]);
            const _: () = assert!(FIXED >= 1 && FIXED <= 5, "1 to 5 fixed arguments");
            // Pushed registers: the variadic ones among rdi..r9 (registers FIXED..5).
            const PUSHED: usize = 6 - FIXED;
            // After popping the return address rsp is 16-aligned; PUSHED + 1 (saved return
            // address) slots follow, plus one pad slot when that count is odd.
            const PAD: usize = if (PUSHED + 1) % 2 == 1 { 8 } else { 0 };
            ::core::arch::global_asm!(
                concat!(".text\n.balign 16\n.globl ", stringify!($shim), "\n",
                        stringify!($shim), ":"),
                "pop r11",
                ".if {n} <= 5\npush r9\n.endif",
                ".if {n} <= 4\npush r8\n.endif",
                ".if {n} <= 3\npush rcx\n.endif",
                ".if {n} <= 2\npush rdx\n.endif",
                ".if {n} <= 1\npush rsi\n.endif",
                // The va pointer goes in the register of argument FIXED (already saved).
                ".if {n} == 5\nmov r9, rsp\n.elseif {n} == 4\nmov r8, rsp\n.elseif {n} == 3\nmov rcx, rsp\n.elseif {n} == 2\nmov rdx, rsp\n.else\nmov rsi, rsp\n.endif",
                "push r11",
                "sub rsp, {pad}",
                "call {target}",
                "add rsp, {pad}",
                "pop r11",
                "add rsp, {pushed}",
                "push r11",
                "ret",
                n = const FIXED,
                pad = const PAD,
                pushed = const PUSHED * 8,
                target = sym $target,
            );
        }
    };
}

/// Why a C format could not be rendered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormatError {
    /// A conversion this renderer refuses (`%n`, floating point, wide strings, ...).
    Unsupported,
    /// The format ends inside a conversion specification.
    Truncated,
    /// Fewer variadic slots than the format needs.
    MissingArgument,
    /// The output sink is full.
    Overflow,
}

/// Byte output for [`vformat`].
pub trait ByteSink {
    /// Appends `bytes`.
    fn put(&mut self, bytes: &[u8]) -> Result<(), FormatError>;
}

/// A [`ByteSink`] filling a caller buffer.
pub struct SliceSink<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> SliceSink<'a> {
    /// A sink writing `buf` from the start.
    pub fn new(buf: &'a mut [u8]) -> Self {
        SliceSink { buf, len: 0 }
    }

    /// The bytes written so far.
    pub fn written(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }
}

impl ByteSink for SliceSink<'_> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), FormatError> {
        let end = self
            .len
            .checked_add(bytes.len())
            .ok_or(FormatError::Overflow)?;
        let dst = self
            .buf
            .get_mut(self.len..end)
            .ok_or(FormatError::Overflow)?;
        dst.copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }
}

/// Longest `%s` argument read (bytes); longer strings are cut (XenStore values are far shorter).
pub const MAX_STRING_ARG: usize = 65536;

#[derive(Clone, Copy, Default)]
struct Spec {
    left: bool,
    zero: bool,
    plus: bool,
    space: bool,
    alt: bool,
    width: Option<usize>,
    width_arg: bool,
    precision: Option<usize>,
    precision_arg: bool,
    bits: u32,
    conv: u8,
}

/// Parses the specification after a `%`; returns it and the bytes consumed.
fn parse_spec(f: &[u8]) -> Result<(Spec, usize), FormatError> {
    let mut s = Spec {
        bits: 32,
        ..Spec::default()
    };
    let mut i = 0;
    let at = |i: usize| f.get(i).copied().ok_or(FormatError::Truncated);
    loop {
        match at(i)? {
            b'-' => s.left = true,
            b'0' => s.zero = true,
            b'+' => s.plus = true,
            b' ' => s.space = true,
            b'#' => s.alt = true,
            _ => break,
        }
        i += 1;
    }
    if at(i)? == b'*' {
        s.width_arg = true;
        i += 1;
    } else {
        let mut w = 0usize;
        let mut any = false;
        while at(i)?.is_ascii_digit() {
            w = w
                .saturating_mul(10)
                .saturating_add(usize::from(at(i)? - b'0'));
            any = true;
            i += 1;
        }
        s.width = any.then_some(w.min(4096));
    }
    if at(i)? == b'.' {
        i += 1;
        if at(i)? == b'*' {
            s.precision_arg = true;
            i += 1;
        } else {
            let mut p = 0usize;
            while at(i)?.is_ascii_digit() {
                p = p
                    .saturating_mul(10)
                    .saturating_add(usize::from(at(i)? - b'0'));
                i += 1;
            }
            s.precision = Some(p.min(4096));
        }
    }
    // Length modifiers (Windows LLP64: `l` is 32-bit).
    let rest = f.get(i..).unwrap_or(&[]);
    let (bits, skip) = if rest.starts_with(b"I64") {
        (64, 3)
    } else if rest.starts_with(b"I32") {
        (32, 3)
    } else if rest.starts_with(b"hh") {
        (8, 2)
    } else if rest.starts_with(b"ll") {
        (64, 2)
    } else {
        match rest.first() {
            Some(b'h') => (16, 1),
            Some(b'l') => (32, 1),
            Some(b'I' | b'z' | b'j' | b't') => (64, 1),
            Some(_) => (32, 0),
            None => return Err(FormatError::Truncated),
        }
    };
    s.bits = bits;
    i += skip;
    s.conv = at(i)?;
    Ok((s, i + 1))
}

/// Number of variadic slots `format` consumes (what a caller of a printf-style method
/// promised to pass).
pub fn count_slots(format: &[u8]) -> Result<usize, FormatError> {
    let mut n = 0;
    let mut i = 0;
    while let Some(&b) = format.get(i) {
        i += 1;
        if b != b'%' {
            continue;
        }
        let (spec, used) = parse_spec(format.get(i..).unwrap_or(&[]))?;
        i += used;
        if spec.conv == b'%' {
            continue;
        }
        n += 1 + usize::from(spec.width_arg) + usize::from(spec.precision_arg);
    }
    Ok(n)
}

fn pad(out: &mut impl ByteSink, byte: u8, count: usize) -> Result<(), FormatError> {
    for _ in 0..count {
        out.put(&[byte])?;
    }
    Ok(())
}

fn emit_padded(
    out: &mut impl ByteSink,
    spec: &Spec,
    prefix: &[u8],
    zeros: usize,
    body: &[u8],
) -> Result<(), FormatError> {
    let len = prefix.len() + zeros + body.len();
    let fill = spec.width.unwrap_or(0).saturating_sub(len);
    let zero_fill = spec.zero && !spec.left && spec.precision.is_none();
    if !spec.left && !zero_fill {
        pad(out, b' ', fill)?;
    }
    out.put(prefix)?;
    if zero_fill {
        pad(out, b'0', fill)?;
    }
    pad(out, b'0', zeros)?;
    out.put(body)?;
    if spec.left {
        pad(out, b' ', fill)?;
    }
    Ok(())
}

fn digits(mut v: u64, base: u64, upper: bool, buf: &mut [u8; 24]) -> usize {
    let table: &[u8; 16] = if upper {
        b"0123456789ABCDEF"
    } else {
        b"0123456789abcdef"
    };
    let mut n = 0;
    loop {
        let d = table.get((v % base) as usize).copied().unwrap_or(b'?');
        if let Some(slot) = buf.get_mut(23 - n) {
            *slot = d;
        }
        n += 1;
        v /= base;
        if v == 0 || n == 24 {
            break;
        }
    }
    n
}

fn format_int(
    out: &mut impl ByteSink,
    spec: &Spec,
    slot: u64,
    upper_p: bool,
) -> Result<(), FormatError> {
    let signed = matches!(spec.conv, b'd' | b'i');
    let (neg, magnitude) = if signed {
        let v: i64 = match spec.bits {
            8 => i64::from(slot as i8),
            16 => i64::from(slot as i16),
            32 => i64::from(slot as i32),
            _ => slot as i64,
        };
        (v < 0, v.unsigned_abs())
    } else {
        let v: u64 = match spec.bits {
            8 => u64::from(slot as u8),
            16 => u64::from(slot as u16),
            32 => u64::from(slot as u32),
            _ => slot,
        };
        (false, v)
    };
    let (base, upper) = match spec.conv {
        b'x' => (16, false),
        b'X' => (16, true),
        b'o' => (8, false),
        b'p' => (16, upper_p),
        _ => (10, false),
    };
    let mut buf = [0u8; 24];
    let n = digits(magnitude, base, upper, &mut buf);
    let body = buf.get(24 - n..).unwrap_or(&[]);
    let mut prefix: &[u8] = if neg {
        b"-"
    } else if signed && spec.plus {
        b"+"
    } else if signed && spec.space {
        b" "
    } else {
        b""
    };
    if spec.alt && magnitude != 0 {
        prefix = match spec.conv {
            b'x' => b"0x",
            b'X' => b"0X",
            b'o' => b"0",
            _ => prefix,
        };
    }
    let min_digits = match spec.conv {
        // Windows prints pointers as 16 upper-case hex digits.
        b'p' => 16,
        _ => spec.precision.unwrap_or(1),
    };
    if spec.precision == Some(0) && magnitude == 0 && spec.conv != b'p' {
        return emit_padded(out, spec, prefix, 0, b"");
    }
    emit_padded(out, spec, prefix, min_digits.saturating_sub(n), body)
}

/// Renders a C format string with variadic arguments into `out` (no NUL appended).
///
/// # Safety
/// `va` must point at the variadic slots of a call whose arguments match `format` (at
/// least [`count_slots`]`(format)` readable slots), and every `%s` argument must be NULL
/// or point at a NUL-terminated byte string.
pub unsafe fn vformat(
    format: &[u8],
    va: *const u64,
    out: &mut impl ByteSink,
) -> Result<(), FormatError> {
    let count = count_slots(format)?;
    // SAFETY: the caller promises `count_slots(format)` readable slots at `va`.
    let mut args = unsafe { VaList::new(va, count) };
    // SAFETY: the caller promises every `%s` argument is NULL or NUL-terminated.
    unsafe { vformat_list(format, &mut args, out) }
}

/// Like [`vformat`], over a [`VaList`] (whose slot count bounds what is read).
///
/// # Safety
/// Every `%s` argument must be NULL or point at a NUL-terminated byte string.
pub unsafe fn vformat_list(
    format: &[u8],
    args: &mut VaList<'_>,
    out: &mut impl ByteSink,
) -> Result<(), FormatError> {
    let mut i = 0;
    while let Some(&b) = format.get(i) {
        i += 1;
        if b != b'%' {
            // Copy the literal run in one go.
            let start = i - 1;
            while format.get(i).is_some_and(|&c| c != b'%') {
                i += 1;
            }
            out.put(format.get(start..i).unwrap_or(&[]))?;
            continue;
        }
        let (mut spec, used) = parse_spec(format.get(i..).unwrap_or(&[]))?;
        i += used;
        if spec.conv == b'%' {
            out.put(b"%")?;
            continue;
        }
        if spec.width_arg {
            let w: i32 = args.arg().ok_or(FormatError::MissingArgument)?;
            spec.left |= w < 0;
            spec.width = Some((w.unsigned_abs() as usize).min(4096));
        }
        if spec.precision_arg {
            let p: i32 = args.arg().ok_or(FormatError::MissingArgument)?;
            spec.precision = usize::try_from(p).ok().map(|p| p.min(4096));
        }
        match spec.conv {
            b'd' | b'i' | b'u' | b'x' | b'X' | b'o' => {
                let slot: u64 = args.arg().ok_or(FormatError::MissingArgument)?;
                format_int(out, &spec, slot, false)?;
            }
            b'p' => {
                let slot: u64 = args.arg().ok_or(FormatError::MissingArgument)?;
                spec.bits = 64;
                format_int(out, &spec, slot, true)?;
            }
            b'c' => {
                let c: u8 = args.arg().ok_or(FormatError::MissingArgument)?;
                emit_padded(out, &spec, b"", 0, &[c])?;
            }
            b's' => {
                let p: *const c_char = args.arg().ok_or(FormatError::MissingArgument)?;
                let limit = spec.precision.unwrap_or(MAX_STRING_ARG).min(MAX_STRING_ARG);
                if p.is_null() {
                    emit_padded(out, &spec, b"", 0, b"(null)")?;
                } else {
                    // SAFETY: the caller promises a NUL-terminated string; we stop at
                    // the NUL or at `limit`, whichever comes first.
                    let len = unsafe { bounded_strlen(p.cast::<u8>(), limit) };
                    // SAFETY: `len` bytes from `p` were just read as part of the string.
                    let s = unsafe { core::slice::from_raw_parts(p.cast::<u8>(), len) };
                    emit_padded(out, &spec, b"", 0, s)?;
                }
            }
            _ => return Err(FormatError::Unsupported),
        }
    }
    Ok(())
}

/// Length of a NUL-terminated string, reading at most `limit` bytes.
///
/// # Safety
/// `p` must point at a NUL-terminated string or at least `limit` readable bytes.
unsafe fn bounded_strlen(p: *const u8, limit: usize) -> usize {
    let mut n = 0;
    // SAFETY: bytes before the NUL (or before `limit`) are readable by the contract.
    while n < limit && unsafe { p.add(n).read() } != 0 {
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(format: &str, slots: &[u64]) -> Result<String, FormatError> {
        let mut buf = [0u8; 256];
        let mut sink = SliceSink::new(&mut buf);
        let mut args = VaList::from_slice(slots);
        // SAFETY: test formats pass only pointers to NUL-terminated literals for %s.
        unsafe { vformat_list(format.as_bytes(), &mut args, &mut sink) }?;
        Ok(String::from_utf8_lossy(sink.written()).into_owned())
    }

    #[test]
    fn valist_is_bounded_and_truncates_promoted_values() {
        let slots = [0xFFFF_FFFF_0000_0001u64, 0xDEAD_BEEF_0000_0101];
        let mut va = VaList::from_slice(&slots);
        assert_eq!(va.arg::<u32>(), Some(1));
        assert_eq!(va.arg::<u8>(), Some(1));
        assert_eq!(va.arg::<u64>(), None);
        assert_eq!(va.remaining(), 0);
    }

    #[test]
    fn integers_flags_width_precision() {
        assert_eq!(
            render(
                "%d|%i|%u",
                &[
                    (-5i32) as u32 as u64 | 0xAB00_0000_0000_0000,
                    7,
                    0xFFFF_FFFF
                ]
            )
            .unwrap(),
            "-5|7|4294967295"
        );
        assert_eq!(
            render("%5d|%-5d|%05d|%+d|% d", &[42, 42, 42, 42, 42]).unwrap(),
            "   42|42   |00042|+42| 42"
        );
        assert_eq!(
            render("%x|%X|%#x|%08X|%o|%#o", &[255, 255, 255, 0xBEEF, 8, 8]).unwrap(),
            "ff|FF|0xff|0000BEEF|10|010"
        );
        assert_eq!(
            render(
                "%.3d|%.0d|%llu|%I64x|%lu",
                &[5, 0, u64::MAX, 0x1_0000_0000, 0x1_0000_0001]
            )
            .unwrap(),
            "005||18446744073709551615|100000000|1"
        );
        assert_eq!(render("%hhd|%hu", &[0x1FF, 0x12345]).unwrap(), "-1|9029");
        assert_eq!(
            render("%*d|%-*d|%.*d", &[4, 1, 4, 2, 3, 7]).unwrap(),
            "   1|2   |007"
        );
    }

    #[test]
    fn strings_chars_pointers_percent() {
        let hello = c"hello".as_ptr() as u64;
        assert_eq!(
            render("%s %c%c %%", &[hello, b'o' as u64, b'k' as u64]).unwrap(),
            "hello ok %"
        );
        assert_eq!(
            render("[%7s][%-7s][%.2s]", &[hello, hello, hello]).unwrap(),
            "[  hello][hello  ][he]"
        );
        assert_eq!(render("%s", &[0]).unwrap(), "(null)");
        assert_eq!(render("%p", &[0xABC]).unwrap(), "0000000000000ABC");
    }

    #[test]
    fn slot_counting_and_refusals() {
        assert_eq!(count_slots(b"%s/%u %% %*.*d").unwrap(), 5);
        assert_eq!(render("%d %d", &[1]), Err(FormatError::MissingArgument));
        assert_eq!(render("%n", &[0]), Err(FormatError::Unsupported));
        assert_eq!(render("%f", &[0]), Err(FormatError::Unsupported));
        assert_eq!(render("abc %", &[]), Err(FormatError::Truncated));
        assert_eq!(render("%ll", &[]), Err(FormatError::Truncated));
    }

    #[test]
    fn output_overflow_is_reported() {
        let mut buf = [0u8; 4];
        let mut sink = SliceSink::new(&mut buf);
        let mut args = VaList::from_slice(&[123456]);
        // SAFETY: no %s in the format.
        let r = unsafe { vformat_list(b"%d", &mut args, &mut sink) };
        assert_eq!(r, Err(FormatError::Overflow));
    }
}
