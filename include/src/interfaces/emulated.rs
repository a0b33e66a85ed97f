//! XENFILT_EMULATED (`emulated_interface.h`, served by xenfilt.sys): emulated-device presence.
//!
//! Note the original quirk kept here: the `IsDevicePresent`/`IsDiskPresent` methods take
//! `PVOID Context` (the `PINTERFACE` is passed in practice) rather than `PINTERFACE`.

use super::cmeta::{CHeader, CItem};
use super::{Boolean, Guid, NtStatus, PInterface};
use core::ffi::{c_char, c_void};

/// `GUID_XENFILT_EMULATED_INTERFACE` `{959027A1-FCCE-4E78-BCF4-637384F499C5}`.
pub const GUID_XENFILT_EMULATED_INTERFACE: Guid =
    Guid::from_u128(0x959027A1_FCCE_4E78_BCF4_637384F499C5);
/// Oldest version served.
pub const XENFILT_EMULATED_INTERFACE_VERSION_MIN: u16 = 1;
/// Newest version served.
pub const XENFILT_EMULATED_INTERFACE_VERSION_MAX: u16 = 3;

c_open_enum! {
    /// Whether a platform device was forced active or inactive.
    pub struct EmulatedActivationStatus = XENBUS_EMULATED_ACTIVATION_STATUS, ptr {
        /// No forcing.
        ACTIVATE_NEUTRAL = 0 => XENBUS_EMULATED_ACTIVATE_NEUTRAL,
        /// Forced active.
        FORCE_ACTIVATED = 1 => XENBUS_EMULATED_FORCE_ACTIVATED,
        /// Forced inactive.
        FORCE_DEACTIVATED = 2 => XENBUS_EMULATED_FORCE_DEACTIVATED,
    }
}

c_fn_types! {
    /// Takes a reference.
    pub type EmulatedAcquireFn = XENFILT_EMULATED_ACQUIRE
        fn(interface: PInterface => "_In_ PINTERFACE Interface") -> NtStatus => "NTSTATUS";
    /// Drops a reference.
    pub type EmulatedReleaseFn = XENFILT_EMULATED_RELEASE
        fn(interface: PInterface => "_In_ PINTERFACE Interface") => "VOID";
    /// Whether an emulated device with `device_id` (and `instance_id`) is present (V1/V2).
    pub type EmulatedIsDevicePresentV1Fn = XENFILT_EMULATED_IS_DEVICE_PRESENT_V1
        fn(
            context: *mut c_void => "_In_ PVOID            Context",
            device_id: *mut c_char => "_In_ PSTR             DeviceID",
            instance_id: *mut c_char => "_In_opt_ PSTR         InstanceID"
        ) -> Boolean => "BOOLEAN";
    /// Device presence; NULL `device_id` = the force-activated device (V3).
    pub type EmulatedIsDevicePresentFn = XENFILT_EMULATED_IS_DEVICE_PRESENT
        fn(
            context: *mut c_void => "_In_ PVOID                                   Context",
            device_id: *mut c_char => "_In_opt_ PSTR                                DeviceID",
            instance_id: *mut c_char => "_In_opt_ PSTR                                InstanceID",
            is_force_activated: *mut EmulatedActivationStatus
                => "_Out_opt_ PXENBUS_EMULATED_ACTIVATION_STATUS IsForceActivated"
        ) -> Boolean => "BOOLEAN";
    /// Whether an emulated disk at (`controller`, `target`, `lun`) is present (V1).
    pub type EmulatedIsDiskPresentV1Fn = XENFILT_EMULATED_IS_DISK_PRESENT_V1
        fn(
            context: *mut c_void => "_In_ PVOID    Context",
            controller: u32 => "_In_ ULONG    Controller",
            target: u32 => "_In_ ULONG    Target",
            lun: u32 => "_In_ ULONG    Lun"
        ) -> Boolean => "BOOLEAN";
    /// Whether the emulated disk aliased by PV disk `index` is present (V2+).
    pub type EmulatedIsDiskPresentFn = XENFILT_EMULATED_IS_DISK_PRESENT
        fn(
            context: *mut c_void => "_In_ PVOID    Context",
            index: u32 => "_In_ ULONG    Index"
        ) -> Boolean => "BOOLEAN";
}

vtable! {
    /// XENFILT_EMULATED version 1.
    pub struct EmulatedInterfaceV1 = XENFILT_EMULATED_INTERFACE_V1,
        guid GUID_XENFILT_EMULATED_INTERFACE, version 1, size 64 {
        emulated_acquire: EmulatedAcquireFn => XENFILT_EMULATED_ACQUIRE EmulatedAcquire,
        emulated_release: EmulatedReleaseFn => XENFILT_EMULATED_RELEASE EmulatedRelease,
        emulated_is_device_present_version1: EmulatedIsDevicePresentV1Fn
            => XENFILT_EMULATED_IS_DEVICE_PRESENT_V1 EmulatedIsDevicePresentVersion1,
        emulated_is_disk_present_version1: EmulatedIsDiskPresentV1Fn
            => XENFILT_EMULATED_IS_DISK_PRESENT_V1 EmulatedIsDiskPresentVersion1,
    }
}

vtable! {
    /// XENFILT_EMULATED version 2: `IsDiskPresent(Index)`.
    pub struct EmulatedInterfaceV2 = XENFILT_EMULATED_INTERFACE_V2,
        guid GUID_XENFILT_EMULATED_INTERFACE, version 2, size 64 {
        emulated_acquire: EmulatedAcquireFn => XENFILT_EMULATED_ACQUIRE EmulatedAcquire,
        emulated_release: EmulatedReleaseFn => XENFILT_EMULATED_RELEASE EmulatedRelease,
        emulated_is_device_present_version1: EmulatedIsDevicePresentV1Fn
            => XENFILT_EMULATED_IS_DEVICE_PRESENT_V1 EmulatedIsDevicePresentVersion1,
        emulated_is_disk_present: EmulatedIsDiskPresentFn
            => XENFILT_EMULATED_IS_DISK_PRESENT EmulatedIsDiskPresent,
    }
}

vtable! {
    /// XENFILT_EMULATED version 3: `IsDevicePresent` reports forced activation.
    pub struct EmulatedInterfaceV3 = XENFILT_EMULATED_INTERFACE_V3,
        guid GUID_XENFILT_EMULATED_INTERFACE, version 3, size 64 {
        emulated_acquire: EmulatedAcquireFn => XENFILT_EMULATED_ACQUIRE EmulatedAcquire,
        emulated_release: EmulatedReleaseFn => XENFILT_EMULATED_RELEASE EmulatedRelease,
        emulated_is_device_present: EmulatedIsDevicePresentFn
            => XENFILT_EMULATED_IS_DEVICE_PRESENT EmulatedIsDevicePresent,
        emulated_is_disk_present: EmulatedIsDiskPresentFn
            => XENFILT_EMULATED_IS_DISK_PRESENT EmulatedIsDiskPresent,
    }
}

/// The latest version.
pub type EmulatedInterface = EmulatedInterfaceV3;

/// C description of `emulated_interface.h`.
pub const C_HEADER: CHeader = CHeader {
    file: "emulated_interface.h",
    guard: "_XENFILT_EMULATED_INTERFACE_H",
    description: "XENFILT_EMULATED interface (emulated device presence; xenfilt.sys)",
    includes: &[],
    items: &[
        CItem::Enum(&EmulatedActivationStatus::C),
        CItem::FnTypedef(&XENFILT_EMULATED_ACQUIRE),
        CItem::FnTypedef(&XENFILT_EMULATED_RELEASE),
        CItem::FnTypedef(&XENFILT_EMULATED_IS_DEVICE_PRESENT_V1),
        CItem::FnTypedef(&XENFILT_EMULATED_IS_DEVICE_PRESENT),
        CItem::FnTypedef(&XENFILT_EMULATED_IS_DISK_PRESENT_V1),
        CItem::FnTypedef(&XENFILT_EMULATED_IS_DISK_PRESENT),
        CItem::Guid(
            "GUID_XENFILT_EMULATED_INTERFACE",
            GUID_XENFILT_EMULATED_INTERFACE,
        ),
        CItem::Vtable(&EmulatedInterfaceV1::C),
        CItem::Vtable(&EmulatedInterfaceV2::C),
        CItem::Vtable(&EmulatedInterfaceV3::C),
    ],
    latest: "XENFILT_EMULATED_INTERFACE_V3",
    alias: "XENFILT_EMULATED_INTERFACE",
    method_macro: ("XENFILT_EMULATED", "Emulated"),
    version_prefix: "XENFILT_EMULATED_INTERFACE_VERSION",
    versions: (
        XENFILT_EMULATED_INTERFACE_VERSION_MIN,
        XENFILT_EMULATED_INTERFACE_VERSION_MAX,
    ),
};
