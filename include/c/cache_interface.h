/* cache_interface.h: XENBUS_CACHE interface (object caches)
 * GENERATED from the Rust definitions in crate xen-include by `cargo xtask cheaders`;
 * do not edit. Include <ntddk.h> (or <wdm.h>) first, as with the original headers. */

#ifndef _XENBUS_CACHE_INTERFACE_H
#define _XENBUS_CACHE_INTERFACE_H

#ifndef _WINDLL

typedef struct _XENBUS_CACHE XENBUS_CACHE, *PXENBUS_CACHE;

typedef NTSTATUS
(*XENBUS_CACHE_ACQUIRE)(
    _In_ PINTERFACE Interface
    );

typedef VOID
(*XENBUS_CACHE_RELEASE)(
    _In_ PINTERFACE Interface
    );

typedef NTSTATUS
(*XENBUS_CACHE_CTOR)(
    _In_ PVOID    Argument,
    _In_ PVOID    Object
    );

typedef VOID
(*XENBUS_CACHE_DTOR)(
    _In_ PVOID    Argument,
    _In_ PVOID    Object
    );

typedef VOID
(*XENBUS_CACHE_ACQUIRE_LOCK)(
    _In_ PVOID    Argument
    );

typedef VOID
(*XENBUS_CACHE_RELEASE_LOCK)(
    _In_ PVOID    Argument
    );

typedef NTSTATUS
(*XENBUS_CACHE_CREATE_V1)(
    _In_ PINTERFACE                 Interface,
    _In_ PCSTR                      Name,
    _In_ ULONG                      Size,
    _In_ ULONG                      Reservation,
    _In_ XENBUS_CACHE_CTOR          Ctor,
    _In_ XENBUS_CACHE_DTOR          Dtor,
    _In_ XENBUS_CACHE_ACQUIRE_LOCK  AcquireLock,
    _In_ XENBUS_CACHE_RELEASE_LOCK  ReleaseLock,
    _In_opt_ PVOID                  Argument,
    _Outptr_ PXENBUS_CACHE         *Cache
    );

typedef NTSTATUS
(*XENBUS_CACHE_CREATE)(
    _In_ PINTERFACE                 Interface,
    _In_ PCSTR                      Name,
    _In_ ULONG                      Size,
    _In_ ULONG                      Reservation,
    _In_ ULONG                      Cap,
    _In_ XENBUS_CACHE_CTOR          Ctor,
    _In_ XENBUS_CACHE_DTOR          Dtor,
    _In_ XENBUS_CACHE_ACQUIRE_LOCK  AcquireLock,
    _In_ XENBUS_CACHE_RELEASE_LOCK  ReleaseLock,
    _In_opt_ PVOID                  Argument,
    _Outptr_ PXENBUS_CACHE         *Cache
    );

typedef PVOID
(*XENBUS_CACHE_GET)(
    _In_ PINTERFACE     Interface,
    _In_ PXENBUS_CACHE  Cache,
    _In_ BOOLEAN        Locked
    );

typedef VOID
(*XENBUS_CACHE_PUT)(
    _In_ PINTERFACE     Interface,
    _In_ PXENBUS_CACHE  Cache,
    _In_ PVOID          Object,
    _In_ BOOLEAN        Locked
    );

typedef VOID
(*XENBUS_CACHE_DESTROY)(
    _In_ PINTERFACE     Interface,
    _In_ PXENBUS_CACHE  Cache
    );

// {A98DFD78-416A-4949-92A5-E084F2F4B44E}
DEFINE_GUID(GUID_XENBUS_CACHE_INTERFACE,
            0xa98dfd78, 0x416a, 0x4949, 0x92, 0xa5, 0xe0, 0x84, 0xf2, 0xf4, 0xb4, 0x4e);

struct _XENBUS_CACHE_INTERFACE_V1 {
    INTERFACE              Interface;
    XENBUS_CACHE_ACQUIRE   CacheAcquire;
    XENBUS_CACHE_RELEASE   CacheRelease;
    XENBUS_CACHE_CREATE_V1 CacheCreateVersion1;
    XENBUS_CACHE_GET       CacheGet;
    XENBUS_CACHE_PUT       CachePut;
    XENBUS_CACHE_DESTROY   CacheDestroy;
};

struct _XENBUS_CACHE_INTERFACE_V2 {
    INTERFACE            Interface;
    XENBUS_CACHE_ACQUIRE CacheAcquire;
    XENBUS_CACHE_RELEASE CacheRelease;
    XENBUS_CACHE_CREATE  CacheCreate;
    XENBUS_CACHE_GET     CacheGet;
    XENBUS_CACHE_PUT     CachePut;
    XENBUS_CACHE_DESTROY CacheDestroy;
};

typedef struct _XENBUS_CACHE_INTERFACE_V2 XENBUS_CACHE_INTERFACE, *PXENBUS_CACHE_INTERFACE;

#define XENBUS_CACHE(_Method, _Interface, ...) \
    (_Interface)->Cache ## _Method((PINTERFACE)(_Interface), ##__VA_ARGS__)

#endif  // _WINDLL

#define XENBUS_CACHE_INTERFACE_VERSION_MIN 1
#define XENBUS_CACHE_INTERFACE_VERSION_MAX 2

#endif  // _XENBUS_CACHE_INTERFACE_H
