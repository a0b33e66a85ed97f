//! XENBUS_UNPLUG (`unplug_interface.h`): requests to unplug emulated NICs and disks.

use super::cmeta::{CHeader, CItem};
use super::{Boolean, Guid, NtStatus, PInterface};
use core::ffi::c_char;

/// `GUID_XENBUS_UNPLUG_INTERFACE` `{73DB6517-3D06-4937-989F-199B7501E229}`.
pub const GUID_XENBUS_UNPLUG_INTERFACE: Guid =
    Guid::from_u128(0x73DB6517_3D06_4937_989F_199B7501E229);
/// Oldest version served.
pub const XENBUS_UNPLUG_INTERFACE_VERSION_MIN: u16 = 1;
/// Newest version served.
pub const XENBUS_UNPLUG_INTERFACE_VERSION_MAX: u16 = 3;

c_open_enum! {
    /// Which class of emulated device an unplug request concerns.
    pub struct UnplugDeviceType = XENBUS_UNPLUG_DEVICE_TYPE, ptr {
        /// Not a valid type.
        INVALID = 0 => XENBUS_UNPLUG_DEVICE_TYPE_INVALID,
        /// Emulated network cards.
        NICS = 1 => XENBUS_UNPLUG_DEVICE_TYPE_NICS,
        /// Emulated disks.
        DISKS = 2 => XENBUS_UNPLUG_DEVICE_TYPE_DISKS,
    }
}

c_fn_types! {
    /// Takes a reference.
    pub type UnplugAcquireFn = XENBUS_UNPLUG_ACQUIRE
        fn(interface: PInterface => "_In_ PINTERFACE Interface") -> NtStatus => "NTSTATUS";
    /// Drops a reference.
    pub type UnplugReleaseFn = XENBUS_UNPLUG_RELEASE
        fn(interface: PInterface => "_In_ PINTERFACE Interface") => "VOID";
    /// Makes (`make` = TRUE) or revokes an unplug request for the next boot.
    pub type UnplugRequestFn = XENBUS_UNPLUG_REQUEST
        fn(
            interface: PInterface => "_In_ PINTERFACE                 Interface",
            type_: UnplugDeviceType => "_In_ XENBUS_UNPLUG_DEVICE_TYPE  Type",
            make: Boolean => "_In_ BOOLEAN                    Make"
        ) => "VOID";
    /// Whether `type_` was unplugged this boot (V2+).
    pub type UnplugIsRequestedFn = XENBUS_UNPLUG_IS_REQUESTED
        fn(
            interface: PInterface => "_In_ PINTERFACE                 Interface",
            type_: UnplugDeviceType => "_In_ XENBUS_UNPLUG_DEVICE_TYPE  Type"
        ) -> Boolean => "BOOLEAN";
    /// Whether the system booted from an emulated device (V3+).
    pub type UnplugBootEmulatedFn = XENBUS_UNPLUG_BOOT_EMULATED
        fn(interface: PInterface => "_In_ PINTERFACE Interface") -> Boolean => "BOOLEAN";
    /// Requests a reboot on behalf of `module` (V3+).
    pub type UnplugRebootFn = XENBUS_UNPLUG_REBOOT
        fn(
            interface: PInterface => "_In_ PINTERFACE Interface",
            module: *mut c_char => "_In_ PSTR       Module"
        ) => "VOID";
}

vtable! {
    /// XENBUS_UNPLUG version 1.
    pub struct UnplugInterfaceV1 = XENBUS_UNPLUG_INTERFACE_V1,
        guid GUID_XENBUS_UNPLUG_INTERFACE, version 1, size 56 {
        unplug_acquire: UnplugAcquireFn => XENBUS_UNPLUG_ACQUIRE UnplugAcquire,
        unplug_release: UnplugReleaseFn => XENBUS_UNPLUG_RELEASE UnplugRelease,
        unplug_request: UnplugRequestFn => XENBUS_UNPLUG_REQUEST UnplugRequest,
    }
}

vtable! {
    /// XENBUS_UNPLUG version 2: adds `IsRequested`.
    pub struct UnplugInterfaceV2 = XENBUS_UNPLUG_INTERFACE_V2,
        guid GUID_XENBUS_UNPLUG_INTERFACE, version 2, size 64 {
        unplug_acquire: UnplugAcquireFn => XENBUS_UNPLUG_ACQUIRE UnplugAcquire,
        unplug_release: UnplugReleaseFn => XENBUS_UNPLUG_RELEASE UnplugRelease,
        unplug_request: UnplugRequestFn => XENBUS_UNPLUG_REQUEST UnplugRequest,
        unplug_is_requested: UnplugIsRequestedFn => XENBUS_UNPLUG_IS_REQUESTED UnplugIsRequested,
    }
}

vtable! {
    /// XENBUS_UNPLUG version 3: adds `BootEmulated` and `Reboot`.
    pub struct UnplugInterfaceV3 = XENBUS_UNPLUG_INTERFACE_V3,
        guid GUID_XENBUS_UNPLUG_INTERFACE, version 3, size 80 {
        unplug_acquire: UnplugAcquireFn => XENBUS_UNPLUG_ACQUIRE UnplugAcquire,
        unplug_release: UnplugReleaseFn => XENBUS_UNPLUG_RELEASE UnplugRelease,
        unplug_request: UnplugRequestFn => XENBUS_UNPLUG_REQUEST UnplugRequest,
        unplug_is_requested: UnplugIsRequestedFn => XENBUS_UNPLUG_IS_REQUESTED UnplugIsRequested,
        unplug_boot_emulated: UnplugBootEmulatedFn
            => XENBUS_UNPLUG_BOOT_EMULATED UnplugBootEmulated,
        unplug_reboot: UnplugRebootFn => XENBUS_UNPLUG_REBOOT UnplugReboot,
    }
}

/// The latest version.
pub type UnplugInterface = UnplugInterfaceV3;

/// C description of `unplug_interface.h`.
pub const C_HEADER: CHeader = CHeader {
    file: "unplug_interface.h",
    guard: "_XENBUS_UNPLUG_INTERFACE_H",
    description: "XENBUS_UNPLUG interface (emulated device unplug requests)",
    includes: &[],
    items: &[
        CItem::Enum(&UnplugDeviceType::C),
        CItem::FnTypedef(&XENBUS_UNPLUG_ACQUIRE),
        CItem::FnTypedef(&XENBUS_UNPLUG_RELEASE),
        CItem::FnTypedef(&XENBUS_UNPLUG_REQUEST),
        CItem::FnTypedef(&XENBUS_UNPLUG_IS_REQUESTED),
        CItem::FnTypedef(&XENBUS_UNPLUG_BOOT_EMULATED),
        CItem::FnTypedef(&XENBUS_UNPLUG_REBOOT),
        CItem::Guid("GUID_XENBUS_UNPLUG_INTERFACE", GUID_XENBUS_UNPLUG_INTERFACE),
        CItem::Vtable(&UnplugInterfaceV1::C),
        CItem::Vtable(&UnplugInterfaceV2::C),
        CItem::Vtable(&UnplugInterfaceV3::C),
    ],
    latest: "XENBUS_UNPLUG_INTERFACE_V3",
    alias: "XENBUS_UNPLUG_INTERFACE",
    method_macro: ("XENBUS_UNPLUG", "Unplug"),
    version_prefix: "XENBUS_UNPLUG_INTERFACE_VERSION",
    versions: (
        XENBUS_UNPLUG_INTERFACE_VERSION_MIN,
        XENBUS_UNPLUG_INTERFACE_VERSION_MAX,
    ),
};
