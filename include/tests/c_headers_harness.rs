//! A C "child driver" compiled by the host gcc against the generated headers calls Rust
//! vtables through the header's method macros, including the three C-variadic slots.
//!
//! Built twice: with `-mabi=ms` (every call, variadic ones included, uses the Windows x64
//! convention — the real ABI; the Rust side then uses `extern "win64"` functions and
//! `win64` shims), and with the host default (SysV; `extern "C"` and `C` shims, as the
//! simulator does). The DDK types come from a minimal stand-in header, since the headers
//! only need base types and `INTERFACE`.
#![cfg(all(target_arch = "x86_64", target_os = "linux"))]

use core::ffi::{c_char, c_int, c_void, CStr};
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::process::Command;

use xen_include::interfaces::debug::DebugInterfaceV1;
use xen_include::interfaces::evtchn::{EvtchnChannel, EvtchnInterfaceV9, EvtchnType};
use xen_include::interfaces::store::{StoreInterfaceV2, StoreTransaction};
use xen_include::interfaces::suspend::SuspendInterfaceV1;
use xen_include::interfaces::{
    Interface, KServiceRoutine, NtStatus, PInterface, VersionedInterface,
};
use xen_include::variadic::{vformat, SliceSink, VaList};

const STANDIN: &str = r#"
typedef void VOID;
typedef void *PVOID;
typedef char CHAR, *PSTR;
typedef const char *PCSTR;
typedef unsigned char UCHAR, BOOLEAN, *PBOOLEAN;
typedef unsigned short USHORT;
typedef int LONG, NTSTATUS;
typedef unsigned int ULONG, *PULONG;
typedef long long LONGLONG, *PLONGLONG;
typedef unsigned long long ULONGLONG, ULONG_PTR, PFN_NUMBER, *PPFN_NUMBER;
typedef union _LARGE_INTEGER { LONGLONG QuadPart; } LARGE_INTEGER, *PLARGE_INTEGER;
typedef LARGE_INTEGER PHYSICAL_ADDRESS;
typedef struct _KEVENT KEVENT, *PKEVENT;
typedef struct _KINTERRUPT KINTERRUPT, *PKINTERRUPT;
typedef BOOLEAN (*PKSERVICE_ROUTINE)(PKINTERRUPT, PVOID);
typedef VOID (*PINTERFACE_REFERENCE)(PVOID);
typedef VOID (*PINTERFACE_DEREFERENCE)(PVOID);
typedef struct _INTERFACE {
    USHORT Size; USHORT Version; PVOID Context;
    PINTERFACE_REFERENCE InterfaceReference; PINTERFACE_DEREFERENCE InterfaceDereference;
} INTERFACE, *PINTERFACE;
typedef struct _GUID { ULONG Data1; USHORT Data2; USHORT Data3; UCHAR Data4[8]; } GUID;
#define DEFINE_GUID(n, l, w1, w2, b1, b2, b3, b4, b5, b6, b7, b8) \
    const GUID n = { l, w1, w2, { b1, b2, b3, b4, b5, b6, b7, b8 } }
#define NULL ((void *)0)
#define TRUE 1
#define _In_
#define _In_opt_
#define _Out_
#define _Out_opt_
#define _Outptr_
#define _Outptr_result_z_
"#;

const HARNESS: &str = r#"
#include "standin.h"
#include <suspend_interface.h>
#include <evtchn_interface.h>
#include <debug_interface.h>
#include <store_interface.h>

static BOOLEAN Callback(PKINTERRUPT Interrupt, PVOID Argument) { (void)Interrupt; (void)Argument; return TRUE; }

NTSTATUS HarnessStore(PXENBUS_STORE_INTERFACE Store)
{
    return XENBUS_STORE(Printf, Store, (PXENBUS_STORE_TRANSACTION)0x77, "device/vif/0", "state",
                        "%u %s %d %llx", 4, "connected", -2, 0x123456789aULL);
}

PXENBUS_EVTCHN_CHANNEL HarnessEvtchn(PXENBUS_EVTCHN_INTERFACE Evtchn)
{
    return XENBUS_EVTCHN(Open, Evtchn, XENBUS_EVTCHN_TYPE_INTER_DOMAIN, Callback, (PVOID)0x55,
                         (USHORT)7, (ULONG)42, (BOOLEAN)TRUE);
}

VOID HarnessDebug(PXENBUS_DEBUG_INTERFACE Debug)
{
    XENBUS_DEBUG(Printf, Debug, "%s=%d,%d,%d,%d,%d,%d,%d", "x", 1, 2, 3, 4, 5, 6, 7);
}

ULONG HarnessSuspend(PXENBUS_SUSPEND_INTERFACE Suspend)
{
    return XENBUS_SUSPEND(GetCount, Suspend);
}
"#;

extern "C" {
    fn dlopen(filename: *const c_char, flags: c_int) -> *mut c_void;
    fn dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void;
    fn dlerror() -> *const c_char;
}

fn build_harness(flavour: &str, extra: &[&str]) -> *mut c_void {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("c_harness_{flavour}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("standin.h"), STANDIN).unwrap();
    std::fs::write(dir.join("harness.c"), HARNESS).unwrap();
    let so = dir.join("libharness.so");
    let out = Command::new("gcc")
        .args(["-shared", "-fPIC", "-O1", "-Wall", "-Werror"])
        .args(extra)
        .arg("-I")
        .arg(&dir)
        .arg("-I")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("c"))
        .arg(dir.join("harness.c"))
        .arg("-o")
        .arg(&so)
        .output()
        .expect("run host gcc");
    assert!(
        out.status.success(),
        "harness build failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = std::ffi::CString::new(so.to_str().unwrap()).unwrap();
    // SAFETY: dlopen of a library we just built; RTLD_NOW = 2.
    let handle = unsafe { dlopen(path.as_ptr(), 2) };
    // SAFETY: dlerror returns a valid C string after a failure.
    assert!(!handle.is_null(), "dlopen: {:?}", unsafe {
        CStr::from_ptr(dlerror())
    });
    handle
}

fn symbol(handle: *mut c_void, name: &CStr) -> *mut c_void {
    // SAFETY: `handle` is a live dlopen handle.
    let p = unsafe { dlsym(handle, name.as_ptr()) };
    assert!(!p.is_null(), "missing {name:?}");
    p
}

thread_local! {
    static OUT: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

fn record(s: String) {
    OUT.with(|o| o.borrow_mut().push(s));
}

fn take() -> Vec<String> {
    OUT.with(|o| std::mem::take(&mut *o.borrow_mut()))
}

fn format(format: *const c_char, va: *const u64) -> String {
    let mut buf = [0u8; 256];
    let mut sink = SliceSink::new(&mut buf);
    // SAFETY: the harness passes NUL-terminated formats with matching arguments.
    let fmt = unsafe { CStr::from_ptr(format) }.to_bytes();
    // SAFETY: as above.
    unsafe { vformat(fmt, va, &mut sink) }.expect("format");
    String::from_utf8_lossy(sink.written()).into_owned()
}

fn store_printf(
    interface: PInterface,
    transaction: *mut StoreTransaction,
    prefix: *mut c_char,
    node: *mut c_char,
    fmt: *const c_char,
    va: *const u64,
) -> NtStatus {
    // SAFETY: the harness passes our table and literal strings.
    let (version, prefix, node) = unsafe {
        (
            (*interface).version,
            CStr::from_ptr(prefix),
            CStr::from_ptr(node),
        )
    };
    record(format!(
        "v{version} t{:#x} {}/{}={}",
        transaction as usize,
        prefix.to_str().unwrap(),
        node.to_str().unwrap(),
        format(fmt, va)
    ));
    0x1234
}

fn evtchn_open(
    interface: PInterface,
    type_: EvtchnType,
    function: KServiceRoutine,
    argument: *mut c_void,
    va: *const u64,
) -> *mut EvtchnChannel {
    assert_eq!(type_, EvtchnType::INTER_DOMAIN);
    assert!(function.is_some());
    // SAFETY: INTER_DOMAIN passes (RemoteDomain, RemotePort, Mask).
    let mut args = unsafe { VaList::new(va, 3) };
    let (domain, port, mask) = (args.arg::<u16>(), args.arg::<u32>(), args.arg::<u8>());
    // SAFETY: the harness passes our table.
    let version = unsafe { (*interface).version };
    record(format!(
        "v{version} arg{:#x} {domain:?} {port:?} {mask:?}",
        argument as usize
    ));
    0xC0DE as *mut EvtchnChannel
}

fn debug_printf(_interface: PInterface, fmt: *const c_char, va: *const u64) {
    record(format(fmt, va));
}

fn suspend_get_count(interface: PInterface) -> u32 {
    // SAFETY: the harness passes our table; its context points at a u32.
    unsafe { *((*interface).context as *const u32) }
}

// ---- Windows x64 convention (gcc -mabi=ms) ---------------------------------------------

mod ms {
    use super::*;

    pub extern "win64" fn store_printf(
        i: PInterface,
        t: *mut StoreTransaction,
        p: *mut c_char,
        n: *mut c_char,
        f: *const c_char,
        va: *const u64,
    ) -> NtStatus {
        super::store_printf(i, t, p, n, f, va)
    }
    pub extern "win64" fn evtchn_open(
        i: PInterface,
        t: EvtchnType,
        f: KServiceRoutine,
        a: *mut c_void,
        va: *const u64,
    ) -> *mut EvtchnChannel {
        super::evtchn_open(i, t, f, a, va)
    }
    pub extern "win64" fn debug_printf(i: PInterface, f: *const c_char, va: *const u64) {
        super::debug_printf(i, f, va)
    }
    pub extern "win64" fn suspend_get_count(i: PInterface) -> u32 {
        super::suspend_get_count(i)
    }

    xen_include::variadic_shim! {
        win64 fn harness_ms_store_printf(
            i: PInterface, t: *mut StoreTransaction, p: *mut c_char, n: *mut c_char,
            f: *const c_char, ...
        ) -> NtStatus => store_printf;
    }
    xen_include::variadic_shim! {
        win64 fn harness_ms_evtchn_open(
            i: PInterface, t: EvtchnType, f: KServiceRoutine, a: *mut c_void, ...
        ) -> *mut EvtchnChannel => evtchn_open;
    }
    xen_include::variadic_shim! {
        win64 fn harness_ms_debug_printf(i: PInterface, f: *const c_char, ...) => debug_printf;
    }
}

// ---- host convention (SysV) -------------------------------------------------------------

mod sysv {
    use super::*;

    pub extern "C" fn store_printf(
        i: PInterface,
        t: *mut StoreTransaction,
        p: *mut c_char,
        n: *mut c_char,
        f: *const c_char,
        va: *const u64,
    ) -> NtStatus {
        super::store_printf(i, t, p, n, f, va)
    }
    pub extern "C" fn evtchn_open(
        i: PInterface,
        t: EvtchnType,
        f: KServiceRoutine,
        a: *mut c_void,
        va: *const u64,
    ) -> *mut EvtchnChannel {
        super::evtchn_open(i, t, f, a, va)
    }
    pub extern "C" fn debug_printf(i: PInterface, f: *const c_char, va: *const u64) {
        super::debug_printf(i, f, va)
    }
    pub extern "C" fn suspend_get_count(i: PInterface) -> u32 {
        super::suspend_get_count(i)
    }

    xen_include::variadic_shim! {
        C fn harness_sysv_store_printf(
            i: PInterface, t: *mut StoreTransaction, p: *mut c_char, n: *mut c_char,
            f: *const c_char, ...
        ) -> NtStatus => store_printf;
    }
    xen_include::variadic_shim! {
        C fn harness_sysv_evtchn_open(
            i: PInterface, t: EvtchnType, f: KServiceRoutine, a: *mut c_void, ...
        ) -> *mut EvtchnChannel => evtchn_open;
    }
    xen_include::variadic_shim! {
        C fn harness_sysv_debug_printf(i: PInterface, f: *const c_char, ...) => debug_printf;
    }
}

/// The slots, as raw code addresses (the vtable field types are `extern "C"`, which is
/// the Win64 convention only on Windows; on this host the ms flavour stores win64 code).
struct Slots {
    store_printf: usize,
    evtchn_open: usize,
    debug_printf: usize,
    suspend_get_count: usize,
}

fn header<T: VersionedInterface>(context: *mut c_void) -> Interface {
    Interface::new(T::SIZE as u16, T::VERSION, context)
}

fn run(handle: *mut c_void, slots: &Slots, ms_abi: bool) {
    let mut count = 9u32;
    let ctx = &mut count as *mut u32 as *mut c_void;
    // SAFETY (all transmutes below): a code address of a function with exactly the slot's
    // parameter list, in the calling convention the harness was compiled for.
    let mut store = StoreInterfaceV2 {
        interface: header::<StoreInterfaceV2>(ctx),
        store_printf: unsafe {
            core::mem::transmute::<usize, xen_include::interfaces::store::StorePrintfFn>(
                slots.store_printf,
            )
        },
        ..StoreInterfaceV2::EMPTY
    };
    let mut evtchn = EvtchnInterfaceV9 {
        interface: header::<EvtchnInterfaceV9>(ctx),
        evtchn_open: unsafe {
            core::mem::transmute::<usize, xen_include::interfaces::evtchn::EvtchnOpenFn>(
                slots.evtchn_open,
            )
        },
        ..EvtchnInterfaceV9::EMPTY
    };
    let mut debug = DebugInterfaceV1 {
        interface: header::<DebugInterfaceV1>(ctx),
        debug_printf: unsafe {
            core::mem::transmute::<usize, xen_include::interfaces::debug::DebugPrintfFn>(
                slots.debug_printf,
            )
        },
        ..DebugInterfaceV1::EMPTY
    };
    let mut suspend = SuspendInterfaceV1 {
        interface: header::<SuspendInterfaceV1>(ctx),
        get_count: unsafe {
            core::mem::transmute::<usize, xen_include::interfaces::suspend::SuspendGetCountFn>(
                slots.suspend_get_count,
            )
        },
        ..SuspendInterfaceV1::EMPTY
    };
    let f_store = symbol(handle, c"HarnessStore");
    let f_evtchn = symbol(handle, c"HarnessEvtchn");
    let f_debug = symbol(handle, c"HarnessDebug");
    let f_suspend = symbol(handle, c"HarnessSuspend");
    let (status, channel, suspends);
    // SAFETY: the harness functions have these signatures in the convention it was built for.
    unsafe {
        if ms_abi {
            status = core::mem::transmute::<
                *mut c_void,
                extern "win64" fn(*mut StoreInterfaceV2) -> i32,
            >(f_store)(&mut store);
            channel = core::mem::transmute::<
                *mut c_void,
                extern "win64" fn(*mut EvtchnInterfaceV9) -> usize,
            >(f_evtchn)(&mut evtchn);
            core::mem::transmute::<*mut c_void, extern "win64" fn(*mut DebugInterfaceV1)>(f_debug)(
                &mut debug,
            );
            suspends = core::mem::transmute::<
                *mut c_void,
                extern "win64" fn(*mut SuspendInterfaceV1) -> u32,
            >(f_suspend)(&mut suspend);
        } else {
            status = core::mem::transmute::<*mut c_void, extern "C" fn(*mut StoreInterfaceV2) -> i32>(
                f_store,
            )(&mut store);
            channel = core::mem::transmute::<
                *mut c_void,
                extern "C" fn(*mut EvtchnInterfaceV9) -> usize,
            >(f_evtchn)(&mut evtchn);
            core::mem::transmute::<*mut c_void, extern "C" fn(*mut DebugInterfaceV1)>(f_debug)(
                &mut debug,
            );
            suspends = core::mem::transmute::<
                *mut c_void,
                extern "C" fn(*mut SuspendInterfaceV1) -> u32,
            >(f_suspend)(&mut suspend);
        }
    }
    assert_eq!(status, 0x1234);
    assert_eq!(channel, 0xC0DE);
    assert_eq!(suspends, 9);
    assert_eq!(
        take(),
        [
            "v2 t0x77 device/vif/0/state=4 connected -2 123456789a",
            "v9 arg0x55 Some(7) Some(42) Some(1)",
            "x=1,2,3,4,5,6,7",
        ]
    );
}

#[test]
fn c_driver_built_with_ms_abi_calls_rust_vtables() {
    let handle = build_harness("ms", &["-mabi=ms"]);
    let slots = Slots {
        store_printf: ms::harness_ms_store_printf as *const () as usize,
        evtchn_open: ms::harness_ms_evtchn_open as *const () as usize,
        debug_printf: ms::harness_ms_debug_printf as *const () as usize,
        suspend_get_count: ms::suspend_get_count as *const () as usize,
    };
    run(handle, &slots, true);
}

#[test]
fn c_driver_built_with_host_abi_calls_rust_vtables() {
    let handle = build_harness("sysv", &[]);
    let slots = Slots {
        store_printf: sysv::harness_sysv_store_printf as *const () as usize,
        evtchn_open: sysv::harness_sysv_evtchn_open as *const () as usize,
        debug_printf: sysv::harness_sysv_debug_printf as *const () as usize,
        suspend_get_count: sysv::suspend_get_count as *const () as usize,
    };
    run(handle, &slots, false);
}
