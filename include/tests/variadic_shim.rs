//! Host tests of the variadic entry shims: C-variadic calls made through variadic
//! function pointers (as a C child driver makes them) reach plain Rust implementations.
//!
//! The `win64` flavour runs the exact Windows calling convention on the Linux host; the
//! `C` flavour is the host's own (SysV) convention used by the simulator.
#![cfg(target_arch = "x86_64")]

use core::ffi::{c_char, c_int, c_uint, c_void};
use std::cell::RefCell;
use xen_include::variadic::{vformat, SliceSink, VaList};

thread_local! {
    static OUT: RefCell<String> = const { RefCell::new(String::new()) };
}

#[repr(align(16))]
struct Aligned16(#[allow(dead_code)] u8);

/// Fails if the shim left the stack misaligned at the call.
fn assert_stack_aligned() {
    let probe = std::hint::black_box(Aligned16(0));
    assert_eq!(
        &probe as *const Aligned16 as usize % 16,
        0,
        "stack misaligned"
    );
}

fn printf_into_out(format: *const c_char, va: *const u64) -> c_int {
    assert_stack_aligned();
    let mut buf = [0u8; 256];
    let mut sink = SliceSink::new(&mut buf);
    // SAFETY: `format` is a NUL-terminated literal from the test.
    let fmt = unsafe { core::ffi::CStr::from_ptr(format) }.to_bytes();
    // SAFETY: the test passes exactly the arguments its format names.
    let r = unsafe { vformat(fmt, va, &mut sink) };
    assert_eq!(r, Ok(()));
    let s = String::from_utf8_lossy(sink.written()).into_owned();
    let n = s.len() as c_int;
    OUT.with(|o| *o.borrow_mut() = s);
    n
}

// ---- STORE Printf shape: 5 fixed arguments --------------------------------------------

extern "win64" fn store_printf_win64(
    interface: *mut c_void,
    transaction: *mut c_void,
    prefix: *const c_char,
    node: *const c_char,
    format: *const c_char,
    va: *const u64,
) -> c_int {
    assert_eq!(interface as usize, 0x1111);
    assert_eq!(transaction as usize, 0x2222);
    // SAFETY: literals from the test.
    let (p, n) = unsafe {
        (
            core::ffi::CStr::from_ptr(prefix),
            core::ffi::CStr::from_ptr(node),
        )
    };
    assert_eq!(
        (p.to_str().unwrap(), n.to_str().unwrap()),
        ("device/vif/0", "state")
    );
    printf_into_out(format, va)
}

extern "C" fn store_printf_c(
    interface: *mut c_void,
    transaction: *mut c_void,
    prefix: *const c_char,
    node: *const c_char,
    format: *const c_char,
    va: *const u64,
) -> c_int {
    store_printf_win64(interface, transaction, prefix, node, format, va)
}

xen_include::variadic_shim! {
    win64 fn store_printf_entry_win64(
        interface: *mut c_void, transaction: *mut c_void, prefix: *const c_char,
        node: *const c_char, format: *const c_char, ...
    ) -> c_int => store_printf_win64;
}

xen_include::variadic_shim! {
    C fn store_printf_entry_c(
        interface: *mut c_void, transaction: *mut c_void, prefix: *const c_char,
        node: *const c_char, format: *const c_char, ...
    ) -> c_int => store_printf_c;
}

type StorePrintfWin64 = unsafe extern "win64" fn(
    *mut c_void,
    *mut c_void,
    *const c_char,
    *const c_char,
    *const c_char,
    ...
) -> c_int;
type StorePrintfC = unsafe extern "C" fn(
    *mut c_void,
    *mut c_void,
    *const c_char,
    *const c_char,
    *const c_char,
    ...
) -> c_int;

#[test]
fn win64_store_printf_receives_mixed_arguments() {
    let f: StorePrintfWin64 = store_printf_entry_win64;
    // SAFETY: the arguments match the format.
    let n = unsafe {
        f(
            0x1111 as *mut c_void,
            0x2222 as *mut c_void,
            c"device/vif/0".as_ptr(),
            c"state".as_ptr(),
            c"%u %s %d %c %llx %p".as_ptr(),
            7 as c_uint,
            c"hello".as_ptr(),
            -3 as c_int,
            b'x' as c_int,
            0x1234_5678_9ABC_u64,
            0xFEED_usize as *const c_void,
        )
    };
    let expected = "7 hello -3 x 123456789abc 000000000000FEED";
    assert_eq!(OUT.with(|o| o.borrow().clone()), expected);
    assert_eq!(n as usize, expected.len(), "return value passes through");
}

#[test]
fn c_store_printf_receives_mixed_arguments() {
    let f: StorePrintfC = store_printf_entry_c;
    // SAFETY: the arguments match the format.
    let n = unsafe {
        f(
            0x1111 as *mut c_void,
            0x2222 as *mut c_void,
            c"device/vif/0".as_ptr(),
            c"state".as_ptr(),
            c"%u %s %d %c %llx %p".as_ptr(),
            7 as c_uint,
            c"hello".as_ptr(),
            -3 as c_int,
            b'x' as c_int,
            0x1234_5678_9ABC_u64,
            0xFEED_usize as *const c_void,
        )
    };
    let expected = "7 hello -3 x 123456789abc 000000000000FEED";
    assert_eq!(OUT.with(|o| o.borrow().clone()), expected);
    assert_eq!(n as usize, expected.len());
}

// ---- EVTCHN Open shape: 4 fixed arguments, typed tail ---------------------------------

/// Packs an INTER_DOMAIN tail `(USHORT RemoteDomain, ULONG RemotePort, BOOLEAN Mask)` and
/// a float (floats are duplicated into integer slots for Win64 variadic calls).
fn open_tail(type_: c_int, va: *const u64) -> *mut c_void {
    assert_stack_aligned();
    assert_eq!(type_, 3);
    // SAFETY: the test passes 4 variadic arguments.
    let mut args = unsafe { VaList::new(va, 4) };
    let domain: u16 = args.arg().unwrap();
    let port: u32 = args.arg().unwrap();
    let mask: u8 = args.arg().unwrap();
    let x: f64 = args.arg().unwrap();
    assert_eq!(args.arg::<u64>(), None);
    assert_eq!(x, 2.5);
    ((u64::from(domain) << 40) | (u64::from(port) << 8) | u64::from(mask)) as usize as *mut c_void
}

extern "win64" fn evtchn_open_win64(
    _interface: *mut c_void,
    type_: c_int,
    _function: *mut c_void,
    _argument: *mut c_void,
    va: *const u64,
) -> *mut c_void {
    open_tail(type_, va)
}

xen_include::variadic_shim! {
    win64 fn evtchn_open_entry_win64(
        interface: *mut c_void, type_: c_int, function: *mut c_void, argument: *mut c_void, ...
    ) -> *mut c_void => evtchn_open_win64;
}

type EvtchnOpenWin64 =
    unsafe extern "win64" fn(*mut c_void, c_int, *mut c_void, *mut c_void, ...) -> *mut c_void;

#[test]
fn win64_evtchn_open_receives_a_typed_tail_and_a_double() {
    let f: EvtchnOpenWin64 = evtchn_open_entry_win64;
    // SAFETY: the tail matches what open_tail reads.
    let r = unsafe {
        f(
            std::ptr::null_mut(),
            3,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0x7FF1 as c_int,
            0x00DE_ADBE as c_uint,
            1 as c_int,
            2.5f64,
        )
    };
    assert_eq!(r as u64, (0x7FF1 << 40) | (0x00DE_ADBE << 8) | 1);
}

extern "C" fn evtchn_open_c(
    _interface: *mut c_void,
    type_: c_int,
    _function: *mut c_void,
    _argument: *mut c_void,
    va: *const u64,
) -> *mut c_void {
    assert_stack_aligned();
    assert_eq!(type_, 4);
    // SAFETY: the test passes a VIRQ version-9 tail of 3 arguments.
    let mut args = unsafe { VaList::new(va, 3) };
    let index: u32 = args.arg().unwrap();
    let group: u16 = args.arg().unwrap();
    let number: u8 = args.arg().unwrap();
    ((u64::from(index) << 32) | (u64::from(group) << 8) | u64::from(number)) as usize as *mut c_void
}

xen_include::variadic_shim! {
    C fn evtchn_open_entry_c(
        interface: *mut c_void, type_: c_int, function: *mut c_void, argument: *mut c_void, ...
    ) -> *mut c_void => evtchn_open_c;
}

#[test]
fn c_evtchn_open_receives_a_virq_tail() {
    let f: unsafe extern "C" fn(*mut c_void, c_int, *mut c_void, *mut c_void, ...) -> *mut c_void =
        evtchn_open_entry_c;
    // SAFETY: the tail matches what evtchn_open_c reads.
    let r = unsafe {
        f(
            std::ptr::null_mut(),
            4,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            5 as c_uint,
            1 as c_int,
            63 as c_int,
        )
    };
    assert_eq!(r as u64, (5 << 32) | (1 << 8) | 63);
}

// ---- DEBUG Printf shape: 2 fixed arguments, no return, many stack slots ----------------

extern "win64" fn debug_printf_win64(
    _interface: *mut c_void,
    format: *const c_char,
    va: *const u64,
) {
    printf_into_out(format, va);
}

extern "C" fn debug_printf_c(_interface: *mut c_void, format: *const c_char, va: *const u64) {
    printf_into_out(format, va);
}

xen_include::variadic_shim! {
    win64 fn debug_printf_entry_win64(interface: *mut c_void, format: *const c_char, ...)
        => debug_printf_win64;
}

xen_include::variadic_shim! {
    C fn debug_printf_entry_c(interface: *mut c_void, format: *const c_char, ...)
        => debug_printf_c;
}

#[test]
fn win64_debug_printf_with_arguments_on_the_stack() {
    let f: unsafe extern "win64" fn(*mut c_void, *const c_char, ...) = debug_printf_entry_win64;
    // SAFETY: the arguments match the format.
    unsafe {
        f(
            std::ptr::null_mut(),
            c"%d %d %d %d %d %d %d %d %s".as_ptr(),
            1 as c_int,
            2 as c_int,
            3 as c_int,
            4 as c_int,
            5 as c_int,
            6 as c_int,
            7 as c_int,
            8 as c_int,
            c"end".as_ptr(),
        )
    };
    assert_eq!(OUT.with(|o| o.borrow().clone()), "1 2 3 4 5 6 7 8 end");
}

#[test]
fn c_debug_printf_with_arguments_on_the_stack() {
    let f: unsafe extern "C" fn(*mut c_void, *const c_char, ...) = debug_printf_entry_c;
    // SAFETY: the arguments match the format.
    unsafe {
        f(
            std::ptr::null_mut(),
            c"%d %d %d %d %d %d %d %d %s".as_ptr(),
            1 as c_int,
            2 as c_int,
            3 as c_int,
            4 as c_int,
            5 as c_int,
            6 as c_int,
            7 as c_int,
            8 as c_int,
            c"end".as_ptr(),
        )
    };
    assert_eq!(OUT.with(|o| o.borrow().clone()), "1 2 3 4 5 6 7 8 end");
}

use xen_include::interfaces::debug::DebugPrintfFn;
use xen_include::interfaces::PInterface;

extern "C" fn debug_printf_slot_impl(_i: PInterface, format: *const c_char, va: *const u64) {
    printf_into_out(format, va);
}

xen_include::variadic_shim! {
    C fn debug_printf_slot(interface: PInterface, format: *const c_char, ...)
        => debug_printf_slot_impl;
}

#[test]
fn shims_are_usable_as_vtable_slots() {
    let mut table = xen_include::interfaces::debug::DebugInterfaceV1::EMPTY;
    table.debug_printf = Some(debug_printf_slot);
    let slot: DebugPrintfFn = std::hint::black_box(table).debug_printf;
    let f = slot.expect("filled");
    // SAFETY: the arguments match the format.
    unsafe { f(std::ptr::null_mut(), c"slot %x".as_ptr(), 0xAB as c_uint) };
    assert_eq!(OUT.with(|o| o.borrow().clone()), "slot ab");
}
