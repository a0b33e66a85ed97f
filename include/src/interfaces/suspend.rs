//! XENBUS_SUSPEND (`suspend_interface.h`): suspend callbacks, triggering a VM suspend.

use super::cmeta::{CHeader, CItem};
use super::{Guid, NtStatus, PInterface};
use core::ffi::c_void;

/// `GUID_XENBUS_SUSPEND_INTERFACE` `{0554F2AF-B510-4C71-AC03-1C503E394238}`.
pub const GUID_XENBUS_SUSPEND_INTERFACE: Guid =
    Guid::from_u128(0x0554F2AF_B510_4C71_AC03_1C503E394238);
/// Oldest version served.
pub const XENBUS_SUSPEND_INTERFACE_VERSION_MIN: u16 = 1;
/// Newest version served.
pub const XENBUS_SUSPEND_INTERFACE_VERSION_MAX: u16 = 1;

c_open_enum! {
    /// When a suspend callback runs.
    pub struct SuspendCallbackType = XENBUS_SUSPEND_CALLBACK_TYPE, ptr {
        /// Not a valid type.
        INVALID = 0 => SUSPEND_CALLBACK_TYPE_INVALID,
        /// On one vCPU at HIGH_LEVEL, interrupts off, other vCPUs corralled.
        EARLY = 1 => SUSPEND_CALLBACK_EARLY,
        /// At DISPATCH_LEVEL, other vCPUs corralled.
        LATE = 2 => SUSPEND_CALLBACK_LATE,
    }
}

opaque! {
    /// A registered suspend callback.
    pub struct SuspendCallback = XENBUS_SUSPEND_CALLBACK;
}

c_fn_types! {
    /// Takes a reference (the first one sets the subsystem up).
    pub type SuspendAcquireFn = XENBUS_SUSPEND_ACQUIRE
        fn(interface: PInterface => "_In_ PINTERFACE Interface") -> NtStatus => "NTSTATUS";
    /// Drops a reference.
    pub type SuspendReleaseFn = XENBUS_SUSPEND_RELEASE
        fn(interface: PInterface => "_In_ PINTERFACE Interface") => "VOID";
    /// A suspend callback.
    pub type SuspendFunction = XENBUS_SUSPEND_FUNCTION
        fn(argument: *mut c_void => "_In_ PVOID  Argument") => "VOID";
    /// Registers `function(argument)` to run at `type_`.
    pub type SuspendRegisterFn = XENBUS_SUSPEND_REGISTER
        fn(
            interface: PInterface => "_In_ PINTERFACE                     Interface",
            type_: SuspendCallbackType => "_In_ XENBUS_SUSPEND_CALLBACK_TYPE   Type",
            function: SuspendFunction => "_In_ XENBUS_SUSPEND_FUNCTION        Function",
            argument: *mut c_void => "_In_opt_ PVOID                      Argument",
            callback: *mut *mut SuspendCallback => "_Outptr_ PXENBUS_SUSPEND_CALLBACK   *Callback"
        ) -> NtStatus => "NTSTATUS";
    /// Removes a registered callback.
    pub type SuspendDeregisterFn = XENBUS_SUSPEND_DEREGISTER
        fn(
            interface: PInterface => "_In_ PINTERFACE                 Interface",
            callback: *mut SuspendCallback => "_In_ PXENBUS_SUSPEND_CALLBACK   Callback"
        ) => "VOID";
    /// Suspends the VM now (PASSIVE_LEVEL).
    pub type SuspendTriggerFn = XENBUS_SUSPEND_TRIGGER
        fn(interface: PInterface => "_In_ PINTERFACE Interface") -> NtStatus => "NTSTATUS";
    /// Number of suspends since boot.
    pub type SuspendGetCountFn = XENBUS_SUSPEND_GET_COUNT
        fn(interface: PInterface => "_In_ PINTERFACE Interface") -> u32 => "ULONG";
}

vtable! {
    /// XENBUS_SUSPEND version 1.
    pub struct SuspendInterfaceV1 = XENBUS_SUSPEND_INTERFACE_V1,
        guid GUID_XENBUS_SUSPEND_INTERFACE, version 1, size 80 {
        acquire: SuspendAcquireFn => XENBUS_SUSPEND_ACQUIRE Acquire,
        release: SuspendReleaseFn => XENBUS_SUSPEND_RELEASE Release,
        register: SuspendRegisterFn => XENBUS_SUSPEND_REGISTER Register,
        deregister: SuspendDeregisterFn => XENBUS_SUSPEND_DEREGISTER Deregister,
        trigger: SuspendTriggerFn => XENBUS_SUSPEND_TRIGGER Trigger,
        get_count: SuspendGetCountFn => XENBUS_SUSPEND_GET_COUNT GetCount,
    }
}

/// The latest version.
pub type SuspendInterface = SuspendInterfaceV1;

/// C description of `suspend_interface.h`.
pub const C_HEADER: CHeader = CHeader {
    file: "suspend_interface.h",
    guard: "_XENBUS_SUSPEND_INTERFACE_H",
    description: "XENBUS_SUSPEND interface (suspend callbacks, VM suspend)",
    includes: &[],
    items: &[
        CItem::Enum(&SuspendCallbackType::C),
        CItem::Opaque(SuspendCallback::C_NAME),
        CItem::FnTypedef(&XENBUS_SUSPEND_ACQUIRE),
        CItem::FnTypedef(&XENBUS_SUSPEND_RELEASE),
        CItem::FnTypedef(&XENBUS_SUSPEND_FUNCTION),
        CItem::FnTypedef(&XENBUS_SUSPEND_REGISTER),
        CItem::FnTypedef(&XENBUS_SUSPEND_DEREGISTER),
        CItem::FnTypedef(&XENBUS_SUSPEND_TRIGGER),
        CItem::FnTypedef(&XENBUS_SUSPEND_GET_COUNT),
        CItem::Guid(
            "GUID_XENBUS_SUSPEND_INTERFACE",
            GUID_XENBUS_SUSPEND_INTERFACE,
        ),
        CItem::Vtable(&SuspendInterfaceV1::C),
    ],
    latest: "XENBUS_SUSPEND_INTERFACE_V1",
    alias: "XENBUS_SUSPEND_INTERFACE",
    method_macro: ("XENBUS_SUSPEND", ""),
    version_prefix: "XENBUS_SUSPEND_INTERFACE_VERSION",
    versions: (
        XENBUS_SUSPEND_INTERFACE_VERSION_MIN,
        XENBUS_SUSPEND_INTERFACE_VERSION_MAX,
    ),
};
