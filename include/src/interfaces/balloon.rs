//! XENBUS_BALLOON (`balloon_interface.h`): memory balloon (internal to xenbus.sys).

use super::cmeta::{CHeader, CItem};
use super::{Guid, NtStatus, PInterface};

/// `GUID_XENBUS_BALLOON_INTERFACE` `{D92AA810-BECB-4BD5-A3DA-BD03C135A297}`.
pub const GUID_XENBUS_BALLOON_INTERFACE: Guid =
    Guid::from_u128(0xD92AA810_BECB_4BD5_A3DA_BD03C135A297);
/// Oldest version served.
pub const XENBUS_BALLOON_INTERFACE_VERSION_MIN: u16 = 1;
/// Newest version served.
pub const XENBUS_BALLOON_INTERFACE_VERSION_MAX: u16 = 1;

c_fn_types! {
    /// Takes a reference.
    pub type BalloonAcquireFn = XENBUS_BALLOON_ACQUIRE
        fn(interface: PInterface => "_In_ PINTERFACE Interface") -> NtStatus => "NTSTATUS";
    /// Drops a reference.
    pub type BalloonReleaseFn = XENBUS_BALLOON_RELEASE
        fn(interface: PInterface => "_In_ PINTERFACE Interface") => "VOID";
    /// Moves the balloon towards `size` pages.
    pub type BalloonAdjustFn = XENBUS_BALLOON_ADJUST
        fn(
            interface: PInterface => "_In_ PINTERFACE Interface",
            size: u64 => "_In_ ULONGLONG  Size"
        ) -> NtStatus => "NTSTATUS";
    /// The current balloon size in pages.
    pub type BalloonGetSizeFn = XENBUS_BALLOON_GET_SIZE
        fn(interface: PInterface => "_In_ PINTERFACE Interface") -> u64 => "ULONGLONG";
}

vtable! {
    /// XENBUS_BALLOON version 1.
    pub struct BalloonInterfaceV1 = XENBUS_BALLOON_INTERFACE_V1,
        guid GUID_XENBUS_BALLOON_INTERFACE, version 1, size 64 {
        balloon_acquire: BalloonAcquireFn => XENBUS_BALLOON_ACQUIRE BalloonAcquire,
        balloon_release: BalloonReleaseFn => XENBUS_BALLOON_RELEASE BalloonRelease,
        balloon_adjust: BalloonAdjustFn => XENBUS_BALLOON_ADJUST BalloonAdjust,
        balloon_get_size: BalloonGetSizeFn => XENBUS_BALLOON_GET_SIZE BalloonGetSize,
    }
}

/// The latest version.
pub type BalloonInterface = BalloonInterfaceV1;

/// C description of `balloon_interface.h`.
pub const C_HEADER: CHeader = CHeader {
    file: "balloon_interface.h",
    guard: "_XENBUS_BALLOON_INTERFACE_H",
    description: "XENBUS_BALLOON interface (memory balloon; internal)",
    includes: &[],
    items: &[
        CItem::FnTypedef(&XENBUS_BALLOON_ACQUIRE),
        CItem::FnTypedef(&XENBUS_BALLOON_RELEASE),
        CItem::FnTypedef(&XENBUS_BALLOON_ADJUST),
        CItem::FnTypedef(&XENBUS_BALLOON_GET_SIZE),
        CItem::Guid(
            "GUID_XENBUS_BALLOON_INTERFACE",
            GUID_XENBUS_BALLOON_INTERFACE,
        ),
        CItem::Vtable(&BalloonInterfaceV1::C),
    ],
    latest: "XENBUS_BALLOON_INTERFACE_V1",
    alias: "XENBUS_BALLOON_INTERFACE",
    method_macro: ("XENBUS_BALLOON", "Balloon"),
    version_prefix: "XENBUS_BALLOON_INTERFACE_VERSION",
    versions: (
        XENBUS_BALLOON_INTERFACE_VERSION_MIN,
        XENBUS_BALLOON_INTERFACE_VERSION_MAX,
    ),
};
