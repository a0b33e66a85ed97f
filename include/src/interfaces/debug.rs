//! XENBUS_DEBUG (`debug_interface.h`): debug callbacks that dump state on request or crash.

use super::cmeta::{CHeader, CItem};
use super::{Boolean, Guid, NtStatus, PInterface};
use core::ffi::{c_char, c_void};

/// `GUID_XENBUS_DEBUG_INTERFACE` `{0DF600AE-6B20-4227-BF94-03DA9A26A114}`.
pub const GUID_XENBUS_DEBUG_INTERFACE: Guid =
    Guid::from_u128(0x0DF600AE_6B20_4227_BF94_03DA9A26A114);
/// Oldest version served.
pub const XENBUS_DEBUG_INTERFACE_VERSION_MIN: u16 = 1;
/// Newest version served.
pub const XENBUS_DEBUG_INTERFACE_VERSION_MAX: u16 = 1;

opaque! {
    /// A registered debug callback.
    pub struct DebugCallback = XENBUS_DEBUG_CALLBACK;
}

c_fn_types! {
    /// Takes a reference.
    pub type DebugAcquireFn = XENBUS_DEBUG_ACQUIRE
        fn(interface: PInterface => "_In_ PINTERFACE Interface") -> NtStatus => "NTSTATUS";
    /// Drops a reference.
    pub type DebugReleaseFn = XENBUS_DEBUG_RELEASE
        fn(interface: PInterface => "_In_ PINTERFACE Interface") => "VOID";
    /// A debug callback (always at HIGH_LEVEL).
    pub type DebugFunction = XENBUS_DEBUG_FUNCTION
        fn(
            argument: *mut c_void => "_In_ PVOID      Argument",
            crashing: Boolean => "_In_ BOOLEAN    Crashing"
        ) => "VOID";
    /// Registers `function(argument)` under `prefix`.
    pub type DebugRegisterFn = XENBUS_DEBUG_REGISTER
        fn(
            interface: PInterface => "_In_ PINTERFACE                 Interface",
            prefix: *mut c_char => "_In_ PSTR                       Prefix",
            function: DebugFunction => "_In_ XENBUS_DEBUG_FUNCTION      Function",
            argument: *mut c_void => "_In_opt_ PVOID                  Argument",
            callback: *mut *mut DebugCallback => "_Outptr_ PXENBUS_DEBUG_CALLBACK *Callback"
        ) -> NtStatus => "NTSTATUS";
    /// Prints a line (C-variadic; valid only inside a debug callback).
    pub type DebugPrintfFn = XENBUS_DEBUG_PRINTF
        fn(
            interface: PInterface => "_In_ PINTERFACE             Interface",
            format: *const c_char => "_In_ PCSTR                  Format";
            ...
        ) => "VOID";
    /// Runs one callback, or all when `callback` is NULL.
    pub type DebugTriggerFn = XENBUS_DEBUG_TRIGGER
        fn(
            interface: PInterface => "_In_ PINTERFACE                 Interface",
            callback: *mut DebugCallback => "_In_opt_ PXENBUS_DEBUG_CALLBACK Callback"
        ) => "VOID";
    /// Removes a registered callback.
    pub type DebugDeregisterFn = XENBUS_DEBUG_DEREGISTER
        fn(
            interface: PInterface => "_In_ PINTERFACE             Interface",
            callback: *mut DebugCallback => "_In_ PXENBUS_DEBUG_CALLBACK Callback"
        ) => "VOID";
}

vtable! {
    /// XENBUS_DEBUG version 1 (note: `Trigger` precedes `Deregister`).
    pub struct DebugInterfaceV1 = XENBUS_DEBUG_INTERFACE_V1,
        guid GUID_XENBUS_DEBUG_INTERFACE, version 1, size 80 {
        debug_acquire: DebugAcquireFn => XENBUS_DEBUG_ACQUIRE DebugAcquire,
        debug_release: DebugReleaseFn => XENBUS_DEBUG_RELEASE DebugRelease,
        debug_register: DebugRegisterFn => XENBUS_DEBUG_REGISTER DebugRegister,
        debug_printf: DebugPrintfFn => XENBUS_DEBUG_PRINTF DebugPrintf,
        debug_trigger: DebugTriggerFn => XENBUS_DEBUG_TRIGGER DebugTrigger,
        debug_deregister: DebugDeregisterFn => XENBUS_DEBUG_DEREGISTER DebugDeregister,
    }
}

/// The latest version.
pub type DebugInterface = DebugInterfaceV1;

/// C description of `debug_interface.h`.
pub const C_HEADER: CHeader = CHeader {
    file: "debug_interface.h",
    guard: "_XENBUS_DEBUG_INTERFACE_H",
    description: "XENBUS_DEBUG interface (debug callbacks)",
    includes: &[],
    items: &[
        CItem::Opaque(DebugCallback::C_NAME),
        CItem::FnTypedef(&XENBUS_DEBUG_ACQUIRE),
        CItem::FnTypedef(&XENBUS_DEBUG_RELEASE),
        CItem::FnTypedef(&XENBUS_DEBUG_FUNCTION),
        CItem::FnTypedef(&XENBUS_DEBUG_REGISTER),
        CItem::FnTypedef(&XENBUS_DEBUG_PRINTF),
        CItem::FnTypedef(&XENBUS_DEBUG_DEREGISTER),
        CItem::FnTypedef(&XENBUS_DEBUG_TRIGGER),
        CItem::Guid("GUID_XENBUS_DEBUG_INTERFACE", GUID_XENBUS_DEBUG_INTERFACE),
        CItem::Vtable(&DebugInterfaceV1::C),
    ],
    latest: "XENBUS_DEBUG_INTERFACE_V1",
    alias: "XENBUS_DEBUG_INTERFACE",
    method_macro: ("XENBUS_DEBUG", "Debug"),
    version_prefix: "XENBUS_DEBUG_INTERFACE_VERSION",
    versions: (
        XENBUS_DEBUG_INTERFACE_VERSION_MIN,
        XENBUS_DEBUG_INTERFACE_VERSION_MAX,
    ),
};
