//! XENBUS_CONSOLE (`console_interface.h`): the PV console ring.

use super::cmeta::{CHeader, CItem};
use super::{Boolean, Guid, KEvent, NtStatus, PInterface};
use core::ffi::c_char;

/// `GUID_XENBUS_CONSOLE_INTERFACE` `{04C4F738-034A-4268-BD20-A92AC90D4F82}`.
pub const GUID_XENBUS_CONSOLE_INTERFACE: Guid =
    Guid::from_u128(0x04C4F738_034A_4268_BD20_A92AC90D4F82);
/// Oldest version served.
pub const XENBUS_CONSOLE_INTERFACE_VERSION_MIN: u16 = 1;
/// Newest version served.
pub const XENBUS_CONSOLE_INTERFACE_VERSION_MAX: u16 = 1;

opaque! {
    /// A registered wakeup event.
    pub struct ConsoleWakeup = XENBUS_CONSOLE_WAKEUP;
}

c_fn_types! {
    /// Takes a reference.
    pub type ConsoleAcquireFn = XENBUS_CONSOLE_ACQUIRE
        fn(interface: PInterface => "_In_ PINTERFACE Interface") -> NtStatus => "NTSTATUS";
    /// Drops a reference.
    pub type ConsoleReleaseFn = XENBUS_CONSOLE_RELEASE
        fn(interface: PInterface => "_In_ PINTERFACE Interface") => "VOID";
    /// Whether input is waiting.
    pub type ConsoleCanReadFn = XENBUS_CONSOLE_CAN_READ
        fn(interface: PInterface => "_In_ PINTERFACE Interface") -> Boolean => "BOOLEAN";
    /// Reads up to `length` bytes; returns the count read.
    pub type ConsoleReadFn = XENBUS_CONSOLE_READ
        fn(
            interface: PInterface => "_In_ PINTERFACE Interface",
            data: *mut c_char => "_In_ PSTR       Data",
            length: u32 => "_In_ ULONG      Length"
        ) -> u32 => "ULONG";
    /// Whether output space is free.
    pub type ConsoleCanWriteFn = XENBUS_CONSOLE_CAN_WRITE
        fn(interface: PInterface => "_In_ PINTERFACE Interface") -> Boolean => "BOOLEAN";
    /// Writes up to `length` bytes; returns the count written.
    pub type ConsoleWriteFn = XENBUS_CONSOLE_WRITE
        fn(
            interface: PInterface => "_In_ PINTERFACE Interface",
            data: *mut c_char => "_In_ PSTR       Data",
            length: u32 => "_In_ ULONG      Length"
        ) -> u32 => "ULONG";
    /// Registers `event` to be signalled on console activity.
    pub type ConsoleWakeupAddFn = XENBUS_CONSOLE_WAKEUP_ADD
        fn(
            interface: PInterface => "_In_ PINTERFACE                 Interface",
            event: *mut KEvent => "_In_ PKEVENT                    Event",
            wakeup: *mut *mut ConsoleWakeup => "_Outptr_ PXENBUS_CONSOLE_WAKEUP *Wakeup"
        ) -> NtStatus => "NTSTATUS";
    /// Removes a wakeup.
    pub type ConsoleWakeupRemoveFn = XENBUS_CONSOLE_WAKEUP_REMOVE
        fn(
            interface: PInterface => "_In_ PINTERFACE             Interface",
            wakeup: *mut ConsoleWakeup => "_In_ PXENBUS_CONSOLE_WAKEUP Wakeup"
        ) => "VOID";
}

vtable! {
    /// XENBUS_CONSOLE version 1.
    pub struct ConsoleInterfaceV1 = XENBUS_CONSOLE_INTERFACE_V1,
        guid GUID_XENBUS_CONSOLE_INTERFACE, version 1, size 96 {
        console_acquire: ConsoleAcquireFn => XENBUS_CONSOLE_ACQUIRE ConsoleAcquire,
        console_release: ConsoleReleaseFn => XENBUS_CONSOLE_RELEASE ConsoleRelease,
        console_can_read: ConsoleCanReadFn => XENBUS_CONSOLE_CAN_READ ConsoleCanRead,
        console_read: ConsoleReadFn => XENBUS_CONSOLE_READ ConsoleRead,
        console_can_write: ConsoleCanWriteFn => XENBUS_CONSOLE_CAN_WRITE ConsoleCanWrite,
        console_write: ConsoleWriteFn => XENBUS_CONSOLE_WRITE ConsoleWrite,
        console_wakeup_add: ConsoleWakeupAddFn => XENBUS_CONSOLE_WAKEUP_ADD ConsoleWakeupAdd,
        console_wakeup_remove: ConsoleWakeupRemoveFn
            => XENBUS_CONSOLE_WAKEUP_REMOVE ConsoleWakeupRemove,
    }
}

/// The latest version.
pub type ConsoleInterface = ConsoleInterfaceV1;

/// C description of `console_interface.h`.
pub const C_HEADER: CHeader = CHeader {
    file: "console_interface.h",
    guard: "_XENBUS_CONSOLE_INTERFACE_H",
    description: "XENBUS_CONSOLE interface (PV console)",
    includes: &[],
    items: &[
        CItem::Opaque(ConsoleWakeup::C_NAME),
        CItem::FnTypedef(&XENBUS_CONSOLE_ACQUIRE),
        CItem::FnTypedef(&XENBUS_CONSOLE_RELEASE),
        CItem::FnTypedef(&XENBUS_CONSOLE_CAN_READ),
        CItem::FnTypedef(&XENBUS_CONSOLE_READ),
        CItem::FnTypedef(&XENBUS_CONSOLE_CAN_WRITE),
        CItem::FnTypedef(&XENBUS_CONSOLE_WRITE),
        CItem::FnTypedef(&XENBUS_CONSOLE_WAKEUP_ADD),
        CItem::FnTypedef(&XENBUS_CONSOLE_WAKEUP_REMOVE),
        CItem::Guid(
            "GUID_XENBUS_CONSOLE_INTERFACE",
            GUID_XENBUS_CONSOLE_INTERFACE,
        ),
        CItem::Vtable(&ConsoleInterfaceV1::C),
    ],
    latest: "XENBUS_CONSOLE_INTERFACE_V1",
    alias: "XENBUS_CONSOLE_INTERFACE",
    method_macro: ("XENBUS_CONSOLE", "Console"),
    version_prefix: "XENBUS_CONSOLE_INTERFACE_VERSION",
    versions: (
        XENBUS_CONSOLE_INTERFACE_VERSION_MIN,
        XENBUS_CONSOLE_INTERFACE_VERSION_MAX,
    ),
};
