//! XENBUS_CACHE (`cache_interface.h`): slab caches of fixed-size objects.

use super::cmeta::{CHeader, CItem};
use super::{Boolean, Guid, NtStatus, PInterface};
use core::ffi::{c_char, c_void};

/// `GUID_XENBUS_CACHE_INTERFACE` `{A98DFD78-416A-4949-92A5-E084F2F4B44E}`.
pub const GUID_XENBUS_CACHE_INTERFACE: Guid =
    Guid::from_u128(0xA98DFD78_416A_4949_92A5_E084F2F4B44E);
/// Oldest version served.
pub const XENBUS_CACHE_INTERFACE_VERSION_MIN: u16 = 1;
/// Newest version served.
pub const XENBUS_CACHE_INTERFACE_VERSION_MAX: u16 = 2;

opaque! {
    /// A cache.
    pub struct Cache = XENBUS_CACHE;
}

c_fn_types! {
    /// Takes a reference.
    pub type CacheAcquireFn = XENBUS_CACHE_ACQUIRE
        fn(interface: PInterface => "_In_ PINTERFACE Interface") -> NtStatus => "NTSTATUS";
    /// Drops a reference.
    pub type CacheReleaseFn = XENBUS_CACHE_RELEASE
        fn(interface: PInterface => "_In_ PINTERFACE Interface") => "VOID";
    /// Object constructor.
    pub type CacheCtor = XENBUS_CACHE_CTOR
        fn(
            argument: *mut c_void => "_In_ PVOID    Argument",
            object: *mut c_void => "_In_ PVOID    Object"
        ) -> NtStatus => "NTSTATUS";
    /// Object destructor.
    pub type CacheDtor = XENBUS_CACHE_DTOR
        fn(
            argument: *mut c_void => "_In_ PVOID    Argument",
            object: *mut c_void => "_In_ PVOID    Object"
        ) => "VOID";
    /// Caller's lock acquire (used when `Locked` is FALSE).
    pub type CacheAcquireLock = XENBUS_CACHE_ACQUIRE_LOCK
        fn(argument: *mut c_void => "_In_ PVOID    Argument") => "VOID";
    /// Caller's lock release.
    pub type CacheReleaseLock = XENBUS_CACHE_RELEASE_LOCK
        fn(argument: *mut c_void => "_In_ PVOID    Argument") => "VOID";
    /// Creates a cache (V1, no cap).
    pub type CacheCreateV1Fn = XENBUS_CACHE_CREATE_V1
        fn(
            interface: PInterface => "_In_ PINTERFACE                 Interface",
            name: *const c_char => "_In_ PCSTR                      Name",
            size: u32 => "_In_ ULONG                      Size",
            reservation: u32 => "_In_ ULONG                      Reservation",
            ctor: CacheCtor => "_In_ XENBUS_CACHE_CTOR          Ctor",
            dtor: CacheDtor => "_In_ XENBUS_CACHE_DTOR          Dtor",
            acquire_lock: CacheAcquireLock => "_In_ XENBUS_CACHE_ACQUIRE_LOCK  AcquireLock",
            release_lock: CacheReleaseLock => "_In_ XENBUS_CACHE_RELEASE_LOCK  ReleaseLock",
            argument: *mut c_void => "_In_opt_ PVOID                  Argument",
            cache: *mut *mut Cache => "_Outptr_ PXENBUS_CACHE         *Cache"
        ) -> NtStatus => "NTSTATUS";
    /// Creates a cache (V2: with `cap`).
    pub type CacheCreateFn = XENBUS_CACHE_CREATE
        fn(
            interface: PInterface => "_In_ PINTERFACE                 Interface",
            name: *const c_char => "_In_ PCSTR                      Name",
            size: u32 => "_In_ ULONG                      Size",
            reservation: u32 => "_In_ ULONG                      Reservation",
            cap: u32 => "_In_ ULONG                      Cap",
            ctor: CacheCtor => "_In_ XENBUS_CACHE_CTOR          Ctor",
            dtor: CacheDtor => "_In_ XENBUS_CACHE_DTOR          Dtor",
            acquire_lock: CacheAcquireLock => "_In_ XENBUS_CACHE_ACQUIRE_LOCK  AcquireLock",
            release_lock: CacheReleaseLock => "_In_ XENBUS_CACHE_RELEASE_LOCK  ReleaseLock",
            argument: *mut c_void => "_In_opt_ PVOID                  Argument",
            cache: *mut *mut Cache => "_Outptr_ PXENBUS_CACHE         *Cache"
        ) -> NtStatus => "NTSTATUS";
    /// Takes an object (NULL when none can be made).
    pub type CacheGetFn = XENBUS_CACHE_GET
        fn(
            interface: PInterface => "_In_ PINTERFACE     Interface",
            cache: *mut Cache => "_In_ PXENBUS_CACHE  Cache",
            locked: Boolean => "_In_ BOOLEAN        Locked"
        ) -> *mut c_void => "PVOID";
    /// Returns an object.
    pub type CachePutFn = XENBUS_CACHE_PUT
        fn(
            interface: PInterface => "_In_ PINTERFACE     Interface",
            cache: *mut Cache => "_In_ PXENBUS_CACHE  Cache",
            object: *mut c_void => "_In_ PVOID          Object",
            locked: Boolean => "_In_ BOOLEAN        Locked"
        ) => "VOID";
    /// Destroys a cache.
    pub type CacheDestroyFn = XENBUS_CACHE_DESTROY
        fn(
            interface: PInterface => "_In_ PINTERFACE     Interface",
            cache: *mut Cache => "_In_ PXENBUS_CACHE  Cache"
        ) => "VOID";
}

vtable! {
    /// XENBUS_CACHE version 1.
    pub struct CacheInterfaceV1 = XENBUS_CACHE_INTERFACE_V1,
        guid GUID_XENBUS_CACHE_INTERFACE, version 1, size 80 {
        cache_acquire: CacheAcquireFn => XENBUS_CACHE_ACQUIRE CacheAcquire,
        cache_release: CacheReleaseFn => XENBUS_CACHE_RELEASE CacheRelease,
        cache_create_version1: CacheCreateV1Fn => XENBUS_CACHE_CREATE_V1 CacheCreateVersion1,
        cache_get: CacheGetFn => XENBUS_CACHE_GET CacheGet,
        cache_put: CachePutFn => XENBUS_CACHE_PUT CachePut,
        cache_destroy: CacheDestroyFn => XENBUS_CACHE_DESTROY CacheDestroy,
    }
}

vtable! {
    /// XENBUS_CACHE version 2: `Create` takes a `Cap`.
    pub struct CacheInterfaceV2 = XENBUS_CACHE_INTERFACE_V2,
        guid GUID_XENBUS_CACHE_INTERFACE, version 2, size 80 {
        cache_acquire: CacheAcquireFn => XENBUS_CACHE_ACQUIRE CacheAcquire,
        cache_release: CacheReleaseFn => XENBUS_CACHE_RELEASE CacheRelease,
        cache_create: CacheCreateFn => XENBUS_CACHE_CREATE CacheCreate,
        cache_get: CacheGetFn => XENBUS_CACHE_GET CacheGet,
        cache_put: CachePutFn => XENBUS_CACHE_PUT CachePut,
        cache_destroy: CacheDestroyFn => XENBUS_CACHE_DESTROY CacheDestroy,
    }
}

/// The latest version.
pub type CacheInterface = CacheInterfaceV2;

/// C description of `cache_interface.h`.
pub const C_HEADER: CHeader = CHeader {
    file: "cache_interface.h",
    guard: "_XENBUS_CACHE_INTERFACE_H",
    description: "XENBUS_CACHE interface (object caches)",
    includes: &[],
    items: &[
        CItem::Opaque(Cache::C_NAME),
        CItem::FnTypedef(&XENBUS_CACHE_ACQUIRE),
        CItem::FnTypedef(&XENBUS_CACHE_RELEASE),
        CItem::FnTypedef(&XENBUS_CACHE_CTOR),
        CItem::FnTypedef(&XENBUS_CACHE_DTOR),
        CItem::FnTypedef(&XENBUS_CACHE_ACQUIRE_LOCK),
        CItem::FnTypedef(&XENBUS_CACHE_RELEASE_LOCK),
        CItem::FnTypedef(&XENBUS_CACHE_CREATE_V1),
        CItem::FnTypedef(&XENBUS_CACHE_CREATE),
        CItem::FnTypedef(&XENBUS_CACHE_GET),
        CItem::FnTypedef(&XENBUS_CACHE_PUT),
        CItem::FnTypedef(&XENBUS_CACHE_DESTROY),
        CItem::Guid("GUID_XENBUS_CACHE_INTERFACE", GUID_XENBUS_CACHE_INTERFACE),
        CItem::Vtable(&CacheInterfaceV1::C),
        CItem::Vtable(&CacheInterfaceV2::C),
    ],
    latest: "XENBUS_CACHE_INTERFACE_V2",
    alias: "XENBUS_CACHE_INTERFACE",
    method_macro: ("XENBUS_CACHE", "Cache"),
    version_prefix: "XENBUS_CACHE_INTERFACE_VERSION",
    versions: (
        XENBUS_CACHE_INTERFACE_VERSION_MIN,
        XENBUS_CACHE_INTERFACE_VERSION_MAX,
    ),
};
