//! XENBUS_RANGE_SET (`range_set_interface.h`): sets of 64-bit integer ranges.

use super::cmeta::{CHeader, CItem};
use super::{Guid, NtStatus, PInterface};
use core::ffi::c_char;

/// `GUID_XENBUS_RANGE_SET_INTERFACE` `{EE7E78A2-6847-48C5-B123-BB012F0EABF4}`.
pub const GUID_XENBUS_RANGE_SET_INTERFACE: Guid =
    Guid::from_u128(0xEE7E78A2_6847_48C5_B123_BB012F0EABF4);
/// Oldest version served.
pub const XENBUS_RANGE_SET_INTERFACE_VERSION_MIN: u16 = 1;
/// Newest version served.
pub const XENBUS_RANGE_SET_INTERFACE_VERSION_MAX: u16 = 1;

opaque! {
    /// A range set.
    pub struct RangeSet = XENBUS_RANGE_SET;
}

c_fn_types! {
    /// Takes a reference.
    pub type RangeSetAcquireFn = XENBUS_RANGE_SET_ACQUIRE
        fn(interface: PInterface => "_In_ PINTERFACE Interface") -> NtStatus => "NTSTATUS";
    /// Drops a reference.
    pub type RangeSetReleaseFn = XENBUS_RANGE_SET_RELEASE
        fn(interface: PInterface => "_In_ PINTERFACE Interface") => "VOID";
    /// Creates an empty set named `name`.
    pub type RangeSetCreateFn = XENBUS_RANGE_SET_CREATE
        fn(
            interface: PInterface => "_In_ PINTERFACE         Interface",
            name: *const c_char => "_In_ PCSTR              Name",
            range_set: *mut *mut RangeSet => "_Outptr_ PXENBUS_RANGE_SET *RangeSet"
        ) -> NtStatus => "NTSTATUS";
    /// Adds [`start`, `start + count`).
    pub type RangeSetPutFn = XENBUS_RANGE_SET_PUT
        fn(
            interface: PInterface => "_In_ PINTERFACE         Interface",
            range_set: *mut RangeSet => "_In_ PXENBUS_RANGE_SET  RangeSet",
            start: i64 => "_In_ LONGLONG           Start",
            count: u64 => "_In_ ULONGLONG          Count"
        ) -> NtStatus => "NTSTATUS";
    /// Removes `count` consecutive items from the set, returning the first.
    pub type RangeSetPopFn = XENBUS_RANGE_SET_POP
        fn(
            interface: PInterface => "_In_ PINTERFACE         Interface",
            range_set: *mut RangeSet => "_In_ PXENBUS_RANGE_SET  RangeSet",
            count: u64 => "_In_ ULONGLONG          Count",
            start: *mut i64 => "_Out_ PLONGLONG         Start"
        ) -> NtStatus => "NTSTATUS";
    /// Removes the given range, which must be wholly present.
    pub type RangeSetGetFn = XENBUS_RANGE_SET_GET
        fn(
            interface: PInterface => "_In_ PINTERFACE         Interface",
            range_set: *mut RangeSet => "_In_ PXENBUS_RANGE_SET  RangeSet",
            start: i64 => "_In_ LONGLONG           Start",
            count: u64 => "_In_ ULONGLONG          Count"
        ) -> NtStatus => "NTSTATUS";
    /// Destroys an empty set.
    pub type RangeSetDestroyFn = XENBUS_RANGE_SET_DESTROY
        fn(
            interface: PInterface => "_In_ PINTERFACE         Interface",
            range_set: *mut RangeSet => "_In_ PXENBUS_RANGE_SET  RangeSet"
        ) => "VOID";
}

vtable! {
    /// XENBUS_RANGE_SET version 1.
    pub struct RangeSetInterfaceV1 = XENBUS_RANGE_SET_INTERFACE_V1,
        guid GUID_XENBUS_RANGE_SET_INTERFACE, version 1, size 88 {
        range_set_acquire: RangeSetAcquireFn => XENBUS_RANGE_SET_ACQUIRE RangeSetAcquire,
        range_set_release: RangeSetReleaseFn => XENBUS_RANGE_SET_RELEASE RangeSetRelease,
        range_set_create: RangeSetCreateFn => XENBUS_RANGE_SET_CREATE RangeSetCreate,
        range_set_put: RangeSetPutFn => XENBUS_RANGE_SET_PUT RangeSetPut,
        range_set_pop: RangeSetPopFn => XENBUS_RANGE_SET_POP RangeSetPop,
        range_set_get: RangeSetGetFn => XENBUS_RANGE_SET_GET RangeSetGet,
        range_set_destroy: RangeSetDestroyFn => XENBUS_RANGE_SET_DESTROY RangeSetDestroy,
    }
}

/// The latest version.
pub type RangeSetInterface = RangeSetInterfaceV1;

/// C description of `range_set_interface.h`.
pub const C_HEADER: CHeader = CHeader {
    file: "range_set_interface.h",
    guard: "_XENBUS_RANGE_SET_INTERFACE_H",
    description: "XENBUS_RANGE_SET interface (integer range sets)",
    includes: &[],
    items: &[
        CItem::Opaque(RangeSet::C_NAME),
        CItem::FnTypedef(&XENBUS_RANGE_SET_ACQUIRE),
        CItem::FnTypedef(&XENBUS_RANGE_SET_RELEASE),
        CItem::FnTypedef(&XENBUS_RANGE_SET_CREATE),
        CItem::FnTypedef(&XENBUS_RANGE_SET_PUT),
        CItem::FnTypedef(&XENBUS_RANGE_SET_POP),
        CItem::FnTypedef(&XENBUS_RANGE_SET_GET),
        CItem::FnTypedef(&XENBUS_RANGE_SET_DESTROY),
        CItem::Guid(
            "GUID_XENBUS_RANGE_SET_INTERFACE",
            GUID_XENBUS_RANGE_SET_INTERFACE,
        ),
        CItem::Vtable(&RangeSetInterfaceV1::C),
    ],
    latest: "XENBUS_RANGE_SET_INTERFACE_V1",
    alias: "XENBUS_RANGE_SET_INTERFACE",
    method_macro: ("XENBUS_RANGE_SET", "RangeSet"),
    version_prefix: "XENBUS_RANGE_SET_INTERFACE_VERSION",
    versions: (
        XENBUS_RANGE_SET_INTERFACE_VERSION_MIN,
        XENBUS_RANGE_SET_INTERFACE_VERSION_MAX,
    ),
};
