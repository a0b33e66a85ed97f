//! XENBUS_GNTTAB (`gnttab_interface.h`): grant-table entries and foreign mappings.

use super::cache::{CacheAcquireLock, CacheReleaseLock};
use super::cmeta::{CHeader, CItem};
use super::{Boolean, Guid, NtStatus, PInterface, PfnNumber, PhysicalAddress};
use core::ffi::{c_char, c_void};

/// `GUID_XENBUS_GNTTAB_INTERFACE` `{763679C5-E5C2-4A6D-8B88-6BB02EC42D8E}`.
pub const GUID_XENBUS_GNTTAB_INTERFACE: Guid =
    Guid::from_u128(0x763679C5_E5C2_4A6D_8B88_6BB02EC42D8E);
/// Oldest version served.
pub const XENBUS_GNTTAB_INTERFACE_VERSION_MIN: u16 = 2;
/// Newest version served.
pub const XENBUS_GNTTAB_INTERFACE_VERSION_MAX: u16 = 4;
/// The reserved grant reference of the console ring.
pub const XENBUS_GNTTAB_CONSOLE_REFERENCE: u32 = 0;
/// The reserved grant reference of the XenStore ring.
pub const XENBUS_GNTTAB_STORE_REFERENCE: u32 = 1;

opaque! {
    /// A granted entry.
    pub struct GnttabEntry = XENBUS_GNTTAB_ENTRY;
    /// A cache of grant references.
    pub struct GnttabCache = XENBUS_GNTTAB_CACHE;
}

c_fn_types! {
    /// Takes a reference.
    pub type GnttabAcquireFn = XENBUS_GNTTAB_ACQUIRE
        fn(interface: PInterface => "_In_ PINTERFACE Interface") -> NtStatus => "NTSTATUS";
    /// Drops a reference.
    pub type GnttabReleaseFn = XENBUS_GNTTAB_RELEASE
        fn(interface: PInterface => "_In_ PINTERFACE Interface") => "VOID";
    /// Creates a reference cache (V2/V3, no cap).
    pub type GnttabCreateCacheV1Fn = XENBUS_GNTTAB_CREATE_CACHE_V1
        fn(
            interface: PInterface => "_In_ PINTERFACE                 Interface",
            name: *const c_char => "_In_ PCSTR                      Name",
            reservation: u32 => "_In_ ULONG                      Reservation",
            acquire_lock: CacheAcquireLock => "_In_ XENBUS_CACHE_ACQUIRE_LOCK  AcquireLock",
            release_lock: CacheReleaseLock => "_In_ XENBUS_CACHE_RELEASE_LOCK  ReleaseLock",
            argument: *mut c_void => "_In_opt_ PVOID                  Argument",
            cache: *mut *mut GnttabCache => "_Outptr_ PXENBUS_GNTTAB_CACHE  *Cache"
        ) -> NtStatus => "NTSTATUS";
    /// Creates a reference cache (V4: with `cap`).
    pub type GnttabCreateCacheFn = XENBUS_GNTTAB_CREATE_CACHE
        fn(
            interface: PInterface => "_In_ PINTERFACE                 Interface",
            name: *const c_char => "_In_ PCSTR                      Name",
            reservation: u32 => "_In_ ULONG                      Reservation",
            cap: u32 => "_In_ ULONG                      Cap",
            acquire_lock: CacheAcquireLock => "_In_ XENBUS_CACHE_ACQUIRE_LOCK  AcquireLock",
            release_lock: CacheReleaseLock => "_In_ XENBUS_CACHE_RELEASE_LOCK  ReleaseLock",
            argument: *mut c_void => "_In_opt_ PVOID                  Argument",
            cache: *mut *mut GnttabCache => "_Outptr_ PXENBUS_GNTTAB_CACHE  *Cache"
        ) -> NtStatus => "NTSTATUS";
    /// Grants `domain` access to frame `pfn`.
    pub type GnttabPermitForeignAccessFn = XENBUS_GNTTAB_PERMIT_FOREIGN_ACCESS
        fn(
            interface: PInterface => "_In_ PINTERFACE             Interface",
            cache: *mut GnttabCache => "_In_ PXENBUS_GNTTAB_CACHE   Cache",
            locked: Boolean => "_In_ BOOLEAN                Locked",
            domain: u16 => "_In_ USHORT                 Domain",
            pfn: PfnNumber => "_In_ PFN_NUMBER             Pfn",
            read_only: Boolean => "_In_ BOOLEAN                ReadOnly",
            entry: *mut *mut GnttabEntry => "_Outptr_ PXENBUS_GNTTAB_ENTRY *Entry"
        ) -> NtStatus => "NTSTATUS";
    /// Revokes a grant.
    pub type GnttabRevokeForeignAccessFn = XENBUS_GNTTAB_REVOKE_FOREIGN_ACCESS
        fn(
            interface: PInterface => "_In_ PINTERFACE             Interface",
            cache: *mut GnttabCache => "_In_ PXENBUS_GNTTAB_CACHE   Cache",
            locked: Boolean => "_In_ BOOLEAN                Locked",
            entry: *mut GnttabEntry => "_In_ PXENBUS_GNTTAB_ENTRY   Entry"
        ) -> NtStatus => "NTSTATUS";
    /// The grant reference of an entry.
    pub type GnttabGetReferenceFn = XENBUS_GNTTAB_GET_REFERENCE
        fn(
            interface: PInterface => "_In_ PINTERFACE             Interface",
            entry: *mut GnttabEntry => "_In_ PXENBUS_GNTTAB_ENTRY   Entry"
        ) -> u32 => "ULONG";
    /// Reads back the frame and access of a reference (V3+).
    pub type GnttabQueryReferenceFn = XENBUS_GNTTAB_QUERY_REFERENCE
        fn(
            interface: PInterface => "_In_ PINTERFACE         Interface",
            reference: u32 => "_In_ ULONG              Reference",
            pfn: *mut PfnNumber => "_Out_opt_ PPFN_NUMBER   Pfn",
            read_only: *mut Boolean => "_Out_opt_ PBOOLEAN      ReadOnly"
        ) -> NtStatus => "NTSTATUS";
    /// Destroys a reference cache.
    pub type GnttabDestroyCacheFn = XENBUS_GNTTAB_DESTROY_CACHE
        fn(
            interface: PInterface => "_In_ PINTERFACE             Interface",
            cache: *mut GnttabCache => "_In_ PXENBUS_GNTTAB_CACHE   Cache"
        ) => "VOID";
    /// Maps another domain's granted pages.
    pub type GnttabMapForeignPagesFn = XENBUS_GNTTAB_MAP_FOREIGN_PAGES
        fn(
            interface: PInterface => "_In_ PINTERFACE             Interface",
            domain: u16 => "_In_ USHORT                 Domain",
            number_pages: u32 => "_In_ ULONG                  NumberPages",
            references: *mut u32 => "_In_ PULONG                 References",
            read_only: Boolean => "_In_ BOOLEAN                ReadOnly",
            address: *mut PhysicalAddress => "_Out_ PHYSICAL_ADDRESS      *Address"
        ) -> NtStatus => "NTSTATUS";
    /// Unmaps pages mapped by `MapForeignPages`.
    pub type GnttabUnmapForeignPagesFn = XENBUS_GNTTAB_UNMAP_FOREIGN_PAGES
        fn(
            interface: PInterface => "_In_ PINTERFACE             Interface",
            address: PhysicalAddress => "_In_ PHYSICAL_ADDRESS       Address"
        ) -> NtStatus => "NTSTATUS";
}

vtable! {
    /// XENBUS_GNTTAB version 2.
    pub struct GnttabInterfaceV2 = XENBUS_GNTTAB_INTERFACE_V2,
        guid GUID_XENBUS_GNTTAB_INTERFACE, version 2, size 104 {
        gnttab_acquire: GnttabAcquireFn => XENBUS_GNTTAB_ACQUIRE GnttabAcquire,
        gnttab_release: GnttabReleaseFn => XENBUS_GNTTAB_RELEASE GnttabRelease,
        gnttab_create_cache_version1: GnttabCreateCacheV1Fn
            => XENBUS_GNTTAB_CREATE_CACHE_V1 GnttabCreateCacheVersion1,
        gnttab_permit_foreign_access: GnttabPermitForeignAccessFn
            => XENBUS_GNTTAB_PERMIT_FOREIGN_ACCESS GnttabPermitForeignAccess,
        gnttab_revoke_foreign_access: GnttabRevokeForeignAccessFn
            => XENBUS_GNTTAB_REVOKE_FOREIGN_ACCESS GnttabRevokeForeignAccess,
        gnttab_get_reference: GnttabGetReferenceFn
            => XENBUS_GNTTAB_GET_REFERENCE GnttabGetReference,
        gnttab_destroy_cache: GnttabDestroyCacheFn
            => XENBUS_GNTTAB_DESTROY_CACHE GnttabDestroyCache,
        gnttab_map_foreign_pages: GnttabMapForeignPagesFn
            => XENBUS_GNTTAB_MAP_FOREIGN_PAGES GnttabMapForeignPages,
        gnttab_unmap_foreign_pages: GnttabUnmapForeignPagesFn
            => XENBUS_GNTTAB_UNMAP_FOREIGN_PAGES GnttabUnmapForeignPages,
    }
}

vtable! {
    /// XENBUS_GNTTAB version 3: adds `QueryReference` after `GetReference`.
    pub struct GnttabInterfaceV3 = XENBUS_GNTTAB_INTERFACE_V3,
        guid GUID_XENBUS_GNTTAB_INTERFACE, version 3, size 112 {
        gnttab_acquire: GnttabAcquireFn => XENBUS_GNTTAB_ACQUIRE GnttabAcquire,
        gnttab_release: GnttabReleaseFn => XENBUS_GNTTAB_RELEASE GnttabRelease,
        gnttab_create_cache_version1: GnttabCreateCacheV1Fn
            => XENBUS_GNTTAB_CREATE_CACHE_V1 GnttabCreateCacheVersion1,
        gnttab_permit_foreign_access: GnttabPermitForeignAccessFn
            => XENBUS_GNTTAB_PERMIT_FOREIGN_ACCESS GnttabPermitForeignAccess,
        gnttab_revoke_foreign_access: GnttabRevokeForeignAccessFn
            => XENBUS_GNTTAB_REVOKE_FOREIGN_ACCESS GnttabRevokeForeignAccess,
        gnttab_get_reference: GnttabGetReferenceFn
            => XENBUS_GNTTAB_GET_REFERENCE GnttabGetReference,
        gnttab_query_reference: GnttabQueryReferenceFn
            => XENBUS_GNTTAB_QUERY_REFERENCE GnttabQueryReference,
        gnttab_destroy_cache: GnttabDestroyCacheFn
            => XENBUS_GNTTAB_DESTROY_CACHE GnttabDestroyCache,
        gnttab_map_foreign_pages: GnttabMapForeignPagesFn
            => XENBUS_GNTTAB_MAP_FOREIGN_PAGES GnttabMapForeignPages,
        gnttab_unmap_foreign_pages: GnttabUnmapForeignPagesFn
            => XENBUS_GNTTAB_UNMAP_FOREIGN_PAGES GnttabUnmapForeignPages,
    }
}

vtable! {
    /// XENBUS_GNTTAB version 4: `CreateCache` takes a `Cap`.
    pub struct GnttabInterfaceV4 = XENBUS_GNTTAB_INTERFACE_V4,
        guid GUID_XENBUS_GNTTAB_INTERFACE, version 4, size 112 {
        gnttab_acquire: GnttabAcquireFn => XENBUS_GNTTAB_ACQUIRE GnttabAcquire,
        gnttab_release: GnttabReleaseFn => XENBUS_GNTTAB_RELEASE GnttabRelease,
        gnttab_create_cache: GnttabCreateCacheFn => XENBUS_GNTTAB_CREATE_CACHE GnttabCreateCache,
        gnttab_permit_foreign_access: GnttabPermitForeignAccessFn
            => XENBUS_GNTTAB_PERMIT_FOREIGN_ACCESS GnttabPermitForeignAccess,
        gnttab_revoke_foreign_access: GnttabRevokeForeignAccessFn
            => XENBUS_GNTTAB_REVOKE_FOREIGN_ACCESS GnttabRevokeForeignAccess,
        gnttab_get_reference: GnttabGetReferenceFn
            => XENBUS_GNTTAB_GET_REFERENCE GnttabGetReference,
        gnttab_query_reference: GnttabQueryReferenceFn
            => XENBUS_GNTTAB_QUERY_REFERENCE GnttabQueryReference,
        gnttab_destroy_cache: GnttabDestroyCacheFn
            => XENBUS_GNTTAB_DESTROY_CACHE GnttabDestroyCache,
        gnttab_map_foreign_pages: GnttabMapForeignPagesFn
            => XENBUS_GNTTAB_MAP_FOREIGN_PAGES GnttabMapForeignPages,
        gnttab_unmap_foreign_pages: GnttabUnmapForeignPagesFn
            => XENBUS_GNTTAB_UNMAP_FOREIGN_PAGES GnttabUnmapForeignPages,
    }
}

/// The latest version.
pub type GnttabInterface = GnttabInterfaceV4;

/// C description of `gnttab_interface.h`.
pub const C_HEADER: CHeader = CHeader {
    file: "gnttab_interface.h",
    guard: "_XENBUS_GNTTAB_INTERFACE_H",
    description: "XENBUS_GNTTAB interface (grant tables)",
    includes: &["cache_interface.h"],
    items: &[
        CItem::Define("XENBUS_GNTTAB_CONSOLE_REFERENCE", "0"),
        CItem::Define("XENBUS_GNTTAB_STORE_REFERENCE", "1"),
        CItem::Opaque(GnttabEntry::C_NAME),
        CItem::Opaque(GnttabCache::C_NAME),
        CItem::FnTypedef(&XENBUS_GNTTAB_ACQUIRE),
        CItem::FnTypedef(&XENBUS_GNTTAB_RELEASE),
        CItem::FnTypedef(&XENBUS_GNTTAB_CREATE_CACHE_V1),
        CItem::FnTypedef(&XENBUS_GNTTAB_CREATE_CACHE),
        CItem::FnTypedef(&XENBUS_GNTTAB_PERMIT_FOREIGN_ACCESS),
        CItem::FnTypedef(&XENBUS_GNTTAB_REVOKE_FOREIGN_ACCESS),
        CItem::FnTypedef(&XENBUS_GNTTAB_GET_REFERENCE),
        CItem::FnTypedef(&XENBUS_GNTTAB_QUERY_REFERENCE),
        CItem::FnTypedef(&XENBUS_GNTTAB_DESTROY_CACHE),
        CItem::FnTypedef(&XENBUS_GNTTAB_MAP_FOREIGN_PAGES),
        CItem::FnTypedef(&XENBUS_GNTTAB_UNMAP_FOREIGN_PAGES),
        CItem::Guid("GUID_XENBUS_GNTTAB_INTERFACE", GUID_XENBUS_GNTTAB_INTERFACE),
        CItem::Vtable(&GnttabInterfaceV2::C),
        CItem::Vtable(&GnttabInterfaceV3::C),
        CItem::Vtable(&GnttabInterfaceV4::C),
    ],
    latest: "XENBUS_GNTTAB_INTERFACE_V4",
    alias: "XENBUS_GNTTAB_INTERFACE",
    method_macro: ("XENBUS_GNTTAB", "Gnttab"),
    version_prefix: "XENBUS_GNTTAB_INTERFACE_VERSION",
    versions: (
        XENBUS_GNTTAB_INTERFACE_VERSION_MIN,
        XENBUS_GNTTAB_INTERFACE_VERSION_MAX,
    ),
};
