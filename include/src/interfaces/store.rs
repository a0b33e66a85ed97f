//! XENBUS_STORE (`store_interface.h`): XenStore access for child drivers.
//!
//! `StorePrintf` is C-variadic (printf-style `Format` then its arguments, one 8-byte
//! slot each on Win64); a provider reads them with [`crate::variadic::VaList`].

use super::cmeta::{CHeader, CItem, CMember, CStruct};
use super::{Boolean, Guid, KEvent, NtStatus, PInterface};
use core::ffi::c_char;
use core::mem::{offset_of, size_of};

/// `GUID_XENBUS_STORE_INTERFACE` `{86824C3B-D34E-4753-B281-2F1E3AD214D7}`.
pub const GUID_XENBUS_STORE_INTERFACE: Guid =
    Guid::from_u128(0x86824C3B_D34E_4753_B281_2F1E3AD214D7);
/// Oldest version served.
pub const XENBUS_STORE_INTERFACE_VERSION_MIN: u16 = 2;
/// Newest version served.
pub const XENBUS_STORE_INTERFACE_VERSION_MAX: u16 = 2;

opaque! {
    /// An open XenStore transaction.
    pub struct StoreTransaction = XENBUS_STORE_TRANSACTION;
    /// A registered XenStore watch.
    pub struct StoreWatch = XENBUS_STORE_WATCH;
}

c_open_enum! {
    /// Access granted to a domain by a permission entry.
    pub struct StorePermissionMask = XENBUS_STORE_PERMISSION_MASK {
        /// No access.
        NONE = 0 => XENBUS_STORE_PERM_NONE,
        /// Read access.
        READ = 1 => XENBUS_STORE_PERM_READ,
        /// Write access.
        WRITE = 2 => XENBUS_STORE_PERM_WRITE,
    }
}

/// `XENBUS_STORE_PERMISSION`: one entry of a node's permission list.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StorePermission {
    /// `Domain`.
    pub domain: u16,
    /// `Mask`.
    pub mask: StorePermissionMask,
}

#[cfg(target_arch = "x86_64")]
const _: () = {
    assert!(size_of::<StorePermission>() == 8);
    assert!(offset_of!(StorePermission, mask) == 4);
};

/// C metadata of [`StorePermission`].
pub const STORE_PERMISSION_C: CStruct = CStruct {
    name: "XENBUS_STORE_PERMISSION",
    typedef: true,
    size: size_of::<StorePermission>(),
    members: &[
        CMember {
            c_type: "USHORT",
            name: "Domain",
            offset: offset_of!(StorePermission, domain),
        },
        CMember {
            c_type: "XENBUS_STORE_PERMISSION_MASK",
            name: "Mask",
            offset: offset_of!(StorePermission, mask),
        },
    ],
};

c_fn_types! {
    /// Takes a reference.
    pub type StoreAcquireFn = XENBUS_STORE_ACQUIRE
        fn(interface: PInterface => "_In_ PINTERFACE Interface") -> NtStatus => "NTSTATUS";
    /// Drops a reference.
    pub type StoreReleaseFn = XENBUS_STORE_RELEASE
        fn(interface: PInterface => "_In_ PINTERFACE Interface") => "VOID";
    /// Frees a buffer returned by `StoreRead`/`StoreDirectory`.
    pub type StoreFreeFn = XENBUS_STORE_FREE
        fn(
            interface: PInterface => "_In_ PINTERFACE Interface",
            buffer: *mut c_char => "_In_ PSTR       Buffer"
        ) => "VOID";
    /// Reads `Prefix/Node` into a new NUL-terminated buffer.
    pub type StoreReadFn = XENBUS_STORE_READ
        fn(
            interface: PInterface => "_In_ PINTERFACE                 Interface",
            transaction: *mut StoreTransaction => "_In_opt_ PXENBUS_STORE_TRANSACTION Transaction",
            prefix: *mut c_char => "_In_opt_ PSTR                   Prefix",
            node: *mut c_char => "_In_ PSTR                       Node",
            buffer: *mut *mut c_char => "_Outptr_result_z_ PSTR          *Buffer"
        ) -> NtStatus => "NTSTATUS";
    /// Writes a formatted value to `Prefix/Node` (C-variadic).
    pub type StorePrintfFn = XENBUS_STORE_PRINTF
        fn(
            interface: PInterface => "_In_ PINTERFACE                 Interface",
            transaction: *mut StoreTransaction => "_In_opt_ PXENBUS_STORE_TRANSACTION Transaction",
            prefix: *mut c_char => "_In_opt_ PSTR                   Prefix",
            node: *mut c_char => "_In_ PSTR                       Node",
            format: *const c_char => "_In_ PCSTR                      Format";
            ...
        ) -> NtStatus => "NTSTATUS";
    /// Removes `Prefix/Node`.
    pub type StoreRemoveFn = XENBUS_STORE_REMOVE
        fn(
            interface: PInterface => "_In_ PINTERFACE                 Interface",
            transaction: *mut StoreTransaction => "_In_opt_ PXENBUS_STORE_TRANSACTION Transaction",
            prefix: *mut c_char => "_In_opt_ PSTR                   Prefix",
            node: *mut c_char => "_In_ PSTR                       Node"
        ) -> NtStatus => "NTSTATUS";
    /// Lists children: NUL-separated names, double-NUL terminated.
    pub type StoreDirectoryFn = XENBUS_STORE_DIRECTORY
        fn(
            interface: PInterface => "_In_ PINTERFACE                 Interface",
            transaction: *mut StoreTransaction => "_In_opt_ PXENBUS_STORE_TRANSACTION Transaction",
            prefix: *mut c_char => "_In_opt_ PSTR                   Prefix",
            node: *mut c_char => "_In_ PSTR                       Node",
            buffer: *mut *mut c_char => "_Outptr_result_z_ PSTR          *Buffer"
        ) -> NtStatus => "NTSTATUS";
    /// Starts a transaction.
    pub type StoreTransactionStartFn = XENBUS_STORE_TRANSACTION_START
        fn(
            interface: PInterface => "_In_ PINTERFACE                 Interface",
            transaction: *mut *mut StoreTransaction => "_Outptr_ PXENBUS_STORE_TRANSACTION *Transaction"
        ) -> NtStatus => "NTSTATUS";
    /// Ends a transaction (`STATUS_RETRY` on a commit clash).
    pub type StoreTransactionEndFn = XENBUS_STORE_TRANSACTION_END
        fn(
            interface: PInterface => "_In_ PINTERFACE                 Interface",
            transaction: *mut StoreTransaction => "_In_ PXENBUS_STORE_TRANSACTION Transaction",
            commit: Boolean => "_In_ BOOLEAN                    Commit"
        ) -> NtStatus => "NTSTATUS";
    /// Adds a watch on `Prefix/Node` that signals `event`.
    pub type StoreWatchAddFn = XENBUS_STORE_WATCH_ADD
        fn(
            interface: PInterface => "_In_ PINTERFACE             Interface",
            prefix: *mut c_char => "_In_opt_ PSTR               Prefix",
            node: *mut c_char => "_In_ PSTR                   Node",
            event: *mut KEvent => "_In_ PKEVENT                Event",
            watch: *mut *mut StoreWatch => "_Outptr_ PXENBUS_STORE_WATCH *Watch"
        ) -> NtStatus => "NTSTATUS";
    /// Removes a watch.
    pub type StoreWatchRemoveFn = XENBUS_STORE_WATCH_REMOVE
        fn(
            interface: PInterface => "_In_ PINTERFACE             Interface",
            watch: *mut StoreWatch => "_In_ PXENBUS_STORE_WATCH    Watch"
        ) -> NtStatus => "NTSTATUS";
    /// Polls the ring (for callers spinning at DISPATCH_LEVEL).
    pub type StorePollFn = XENBUS_STORE_POLL
        fn(interface: PInterface => "_In_ PINTERFACE Interface") => "VOID";
    /// Sets the permission list of `Prefix/Node`.
    pub type StorePermissionsSetFn = XENBUS_STORE_PERMISSIONS_SET
        fn(
            interface: PInterface => "_In_ PINTERFACE                 Interface",
            transaction: *mut StoreTransaction => "_In_opt_ PXENBUS_STORE_TRANSACTION Transaction",
            prefix: *mut c_char => "_In_opt_ PSTR                   Prefix",
            node: *mut c_char => "_In_ PSTR                       Node",
            permissions: *mut StorePermission => "_In_ PXENBUS_STORE_PERMISSION   Permissions",
            number_permissions: u32 => "_In_ ULONG                      NumberPermissions"
        ) -> NtStatus => "NTSTATUS";
}

vtable! {
    /// XENBUS_STORE version 2.
    pub struct StoreInterfaceV2 = XENBUS_STORE_INTERFACE_V2,
        guid GUID_XENBUS_STORE_INTERFACE, version 2, size 136 {
        store_acquire: StoreAcquireFn => XENBUS_STORE_ACQUIRE StoreAcquire,
        store_release: StoreReleaseFn => XENBUS_STORE_RELEASE StoreRelease,
        store_free: StoreFreeFn => XENBUS_STORE_FREE StoreFree,
        store_read: StoreReadFn => XENBUS_STORE_READ StoreRead,
        store_printf: StorePrintfFn => XENBUS_STORE_PRINTF StorePrintf,
        store_permissions_set: StorePermissionsSetFn
            => XENBUS_STORE_PERMISSIONS_SET StorePermissionsSet,
        store_remove: StoreRemoveFn => XENBUS_STORE_REMOVE StoreRemove,
        store_directory: StoreDirectoryFn => XENBUS_STORE_DIRECTORY StoreDirectory,
        store_transaction_start: StoreTransactionStartFn
            => XENBUS_STORE_TRANSACTION_START StoreTransactionStart,
        store_transaction_end: StoreTransactionEndFn
            => XENBUS_STORE_TRANSACTION_END StoreTransactionEnd,
        store_watch_add: StoreWatchAddFn => XENBUS_STORE_WATCH_ADD StoreWatchAdd,
        store_watch_remove: StoreWatchRemoveFn => XENBUS_STORE_WATCH_REMOVE StoreWatchRemove,
        store_poll: StorePollFn => XENBUS_STORE_POLL StorePoll,
    }
}

/// The latest version.
pub type StoreInterface = StoreInterfaceV2;

/// C description of `store_interface.h`.
pub const C_HEADER: CHeader = CHeader {
    file: "store_interface.h",
    guard: "_XENBUS_STORE_INTERFACE_H",
    description: "XENBUS_STORE interface (XenStore access)",
    includes: &[],
    items: &[
        CItem::Opaque(StoreTransaction::C_NAME),
        CItem::Opaque(StoreWatch::C_NAME),
        CItem::Enum(&StorePermissionMask::C),
        CItem::Struct(&STORE_PERMISSION_C),
        CItem::FnTypedef(&XENBUS_STORE_ACQUIRE),
        CItem::FnTypedef(&XENBUS_STORE_RELEASE),
        CItem::FnTypedef(&XENBUS_STORE_FREE),
        CItem::FnTypedef(&XENBUS_STORE_READ),
        CItem::FnTypedef(&XENBUS_STORE_PRINTF),
        CItem::FnTypedef(&XENBUS_STORE_REMOVE),
        CItem::FnTypedef(&XENBUS_STORE_DIRECTORY),
        CItem::FnTypedef(&XENBUS_STORE_TRANSACTION_START),
        CItem::FnTypedef(&XENBUS_STORE_TRANSACTION_END),
        CItem::FnTypedef(&XENBUS_STORE_WATCH_ADD),
        CItem::FnTypedef(&XENBUS_STORE_WATCH_REMOVE),
        CItem::FnTypedef(&XENBUS_STORE_POLL),
        CItem::FnTypedef(&XENBUS_STORE_PERMISSIONS_SET),
        CItem::Guid("GUID_XENBUS_STORE_INTERFACE", GUID_XENBUS_STORE_INTERFACE),
        CItem::Vtable(&StoreInterfaceV2::C),
    ],
    latest: "XENBUS_STORE_INTERFACE_V2",
    alias: "XENBUS_STORE_INTERFACE",
    method_macro: ("XENBUS_STORE", "Store"),
    version_prefix: "XENBUS_STORE_INTERFACE_VERSION",
    versions: (
        XENBUS_STORE_INTERFACE_VERSION_MIN,
        XENBUS_STORE_INTERFACE_VERSION_MAX,
    ),
};
