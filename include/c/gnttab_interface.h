/* gnttab_interface.h: XENBUS_GNTTAB interface (grant tables)
 * GENERATED from the Rust definitions in crate xen-include by `cargo xtask cheaders`;
 * do not edit. Include <ntddk.h> (or <wdm.h>) first, as with the original headers. */

#ifndef _XENBUS_GNTTAB_INTERFACE_H
#define _XENBUS_GNTTAB_INTERFACE_H

#include <cache_interface.h>

#ifndef _WINDLL

#define XENBUS_GNTTAB_CONSOLE_REFERENCE 0

#define XENBUS_GNTTAB_STORE_REFERENCE 1

typedef struct _XENBUS_GNTTAB_ENTRY XENBUS_GNTTAB_ENTRY, *PXENBUS_GNTTAB_ENTRY;

typedef struct _XENBUS_GNTTAB_CACHE XENBUS_GNTTAB_CACHE, *PXENBUS_GNTTAB_CACHE;

typedef NTSTATUS
(*XENBUS_GNTTAB_ACQUIRE)(
    _In_ PINTERFACE Interface
    );

typedef VOID
(*XENBUS_GNTTAB_RELEASE)(
    _In_ PINTERFACE Interface
    );

typedef NTSTATUS
(*XENBUS_GNTTAB_CREATE_CACHE_V1)(
    _In_ PINTERFACE                 Interface,
    _In_ PCSTR                      Name,
    _In_ ULONG                      Reservation,
    _In_ XENBUS_CACHE_ACQUIRE_LOCK  AcquireLock,
    _In_ XENBUS_CACHE_RELEASE_LOCK  ReleaseLock,
    _In_opt_ PVOID                  Argument,
    _Outptr_ PXENBUS_GNTTAB_CACHE  *Cache
    );

typedef NTSTATUS
(*XENBUS_GNTTAB_CREATE_CACHE)(
    _In_ PINTERFACE                 Interface,
    _In_ PCSTR                      Name,
    _In_ ULONG                      Reservation,
    _In_ ULONG                      Cap,
    _In_ XENBUS_CACHE_ACQUIRE_LOCK  AcquireLock,
    _In_ XENBUS_CACHE_RELEASE_LOCK  ReleaseLock,
    _In_opt_ PVOID                  Argument,
    _Outptr_ PXENBUS_GNTTAB_CACHE  *Cache
    );

typedef NTSTATUS
(*XENBUS_GNTTAB_PERMIT_FOREIGN_ACCESS)(
    _In_ PINTERFACE             Interface,
    _In_ PXENBUS_GNTTAB_CACHE   Cache,
    _In_ BOOLEAN                Locked,
    _In_ USHORT                 Domain,
    _In_ PFN_NUMBER             Pfn,
    _In_ BOOLEAN                ReadOnly,
    _Outptr_ PXENBUS_GNTTAB_ENTRY *Entry
    );

typedef NTSTATUS
(*XENBUS_GNTTAB_REVOKE_FOREIGN_ACCESS)(
    _In_ PINTERFACE             Interface,
    _In_ PXENBUS_GNTTAB_CACHE   Cache,
    _In_ BOOLEAN                Locked,
    _In_ PXENBUS_GNTTAB_ENTRY   Entry
    );

typedef ULONG
(*XENBUS_GNTTAB_GET_REFERENCE)(
    _In_ PINTERFACE             Interface,
    _In_ PXENBUS_GNTTAB_ENTRY   Entry
    );

typedef NTSTATUS
(*XENBUS_GNTTAB_QUERY_REFERENCE)(
    _In_ PINTERFACE         Interface,
    _In_ ULONG              Reference,
    _Out_opt_ PPFN_NUMBER   Pfn,
    _Out_opt_ PBOOLEAN      ReadOnly
    );

typedef VOID
(*XENBUS_GNTTAB_DESTROY_CACHE)(
    _In_ PINTERFACE             Interface,
    _In_ PXENBUS_GNTTAB_CACHE   Cache
    );

typedef NTSTATUS
(*XENBUS_GNTTAB_MAP_FOREIGN_PAGES)(
    _In_ PINTERFACE             Interface,
    _In_ USHORT                 Domain,
    _In_ ULONG                  NumberPages,
    _In_ PULONG                 References,
    _In_ BOOLEAN                ReadOnly,
    _Out_ PHYSICAL_ADDRESS      *Address
    );

typedef NTSTATUS
(*XENBUS_GNTTAB_UNMAP_FOREIGN_PAGES)(
    _In_ PINTERFACE             Interface,
    _In_ PHYSICAL_ADDRESS       Address
    );

// {763679C5-E5C2-4A6D-8B88-6BB02EC42D8E}
DEFINE_GUID(GUID_XENBUS_GNTTAB_INTERFACE,
            0x763679c5, 0xe5c2, 0x4a6d, 0x8b, 0x88, 0x6b, 0xb0, 0x2e, 0xc4, 0x2d, 0x8e);

struct _XENBUS_GNTTAB_INTERFACE_V2 {
    INTERFACE                           Interface;
    XENBUS_GNTTAB_ACQUIRE               GnttabAcquire;
    XENBUS_GNTTAB_RELEASE               GnttabRelease;
    XENBUS_GNTTAB_CREATE_CACHE_V1       GnttabCreateCacheVersion1;
    XENBUS_GNTTAB_PERMIT_FOREIGN_ACCESS GnttabPermitForeignAccess;
    XENBUS_GNTTAB_REVOKE_FOREIGN_ACCESS GnttabRevokeForeignAccess;
    XENBUS_GNTTAB_GET_REFERENCE         GnttabGetReference;
    XENBUS_GNTTAB_DESTROY_CACHE         GnttabDestroyCache;
    XENBUS_GNTTAB_MAP_FOREIGN_PAGES     GnttabMapForeignPages;
    XENBUS_GNTTAB_UNMAP_FOREIGN_PAGES   GnttabUnmapForeignPages;
};

struct _XENBUS_GNTTAB_INTERFACE_V3 {
    INTERFACE                           Interface;
    XENBUS_GNTTAB_ACQUIRE               GnttabAcquire;
    XENBUS_GNTTAB_RELEASE               GnttabRelease;
    XENBUS_GNTTAB_CREATE_CACHE_V1       GnttabCreateCacheVersion1;
    XENBUS_GNTTAB_PERMIT_FOREIGN_ACCESS GnttabPermitForeignAccess;
    XENBUS_GNTTAB_REVOKE_FOREIGN_ACCESS GnttabRevokeForeignAccess;
    XENBUS_GNTTAB_GET_REFERENCE         GnttabGetReference;
    XENBUS_GNTTAB_QUERY_REFERENCE       GnttabQueryReference;
    XENBUS_GNTTAB_DESTROY_CACHE         GnttabDestroyCache;
    XENBUS_GNTTAB_MAP_FOREIGN_PAGES     GnttabMapForeignPages;
    XENBUS_GNTTAB_UNMAP_FOREIGN_PAGES   GnttabUnmapForeignPages;
};

struct _XENBUS_GNTTAB_INTERFACE_V4 {
    INTERFACE                           Interface;
    XENBUS_GNTTAB_ACQUIRE               GnttabAcquire;
    XENBUS_GNTTAB_RELEASE               GnttabRelease;
    XENBUS_GNTTAB_CREATE_CACHE          GnttabCreateCache;
    XENBUS_GNTTAB_PERMIT_FOREIGN_ACCESS GnttabPermitForeignAccess;
    XENBUS_GNTTAB_REVOKE_FOREIGN_ACCESS GnttabRevokeForeignAccess;
    XENBUS_GNTTAB_GET_REFERENCE         GnttabGetReference;
    XENBUS_GNTTAB_QUERY_REFERENCE       GnttabQueryReference;
    XENBUS_GNTTAB_DESTROY_CACHE         GnttabDestroyCache;
    XENBUS_GNTTAB_MAP_FOREIGN_PAGES     GnttabMapForeignPages;
    XENBUS_GNTTAB_UNMAP_FOREIGN_PAGES   GnttabUnmapForeignPages;
};

typedef struct _XENBUS_GNTTAB_INTERFACE_V4 XENBUS_GNTTAB_INTERFACE, *PXENBUS_GNTTAB_INTERFACE;

#define XENBUS_GNTTAB(_Method, _Interface, ...) \
    (_Interface)->Gnttab ## _Method((PINTERFACE)(_Interface), ##__VA_ARGS__)

#endif  // _WINDLL

#define XENBUS_GNTTAB_INTERFACE_VERSION_MIN 2
#define XENBUS_GNTTAB_INTERFACE_VERSION_MAX 4

#endif  // _XENBUS_GNTTAB_INTERFACE_H
