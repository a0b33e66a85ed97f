/* store_interface.h: XENBUS_STORE interface (XenStore access)
 * GENERATED from the Rust definitions in crate xen-include by `cargo xtask cheaders`;
 * do not edit. Include <ntddk.h> (or <wdm.h>) first, as with the original headers. */

#ifndef _XENBUS_STORE_INTERFACE_H
#define _XENBUS_STORE_INTERFACE_H

#ifndef _WINDLL

typedef struct _XENBUS_STORE_TRANSACTION XENBUS_STORE_TRANSACTION, *PXENBUS_STORE_TRANSACTION;

typedef struct _XENBUS_STORE_WATCH XENBUS_STORE_WATCH, *PXENBUS_STORE_WATCH;

typedef enum _XENBUS_STORE_PERMISSION_MASK {
    XENBUS_STORE_PERM_NONE = 0,
    XENBUS_STORE_PERM_READ = 1,
    XENBUS_STORE_PERM_WRITE = 2
} XENBUS_STORE_PERMISSION_MASK;

typedef struct _XENBUS_STORE_PERMISSION {
    USHORT                       Domain;
    XENBUS_STORE_PERMISSION_MASK Mask;
} XENBUS_STORE_PERMISSION, *PXENBUS_STORE_PERMISSION;

typedef NTSTATUS
(*XENBUS_STORE_ACQUIRE)(
    _In_ PINTERFACE Interface
    );

typedef VOID
(*XENBUS_STORE_RELEASE)(
    _In_ PINTERFACE Interface
    );

typedef VOID
(*XENBUS_STORE_FREE)(
    _In_ PINTERFACE Interface,
    _In_ PSTR       Buffer
    );

typedef NTSTATUS
(*XENBUS_STORE_READ)(
    _In_ PINTERFACE                 Interface,
    _In_opt_ PXENBUS_STORE_TRANSACTION Transaction,
    _In_opt_ PSTR                   Prefix,
    _In_ PSTR                       Node,
    _Outptr_result_z_ PSTR          *Buffer
    );

typedef NTSTATUS
(*XENBUS_STORE_PRINTF)(
    _In_ PINTERFACE                 Interface,
    _In_opt_ PXENBUS_STORE_TRANSACTION Transaction,
    _In_opt_ PSTR                   Prefix,
    _In_ PSTR                       Node,
    _In_ PCSTR                      Format,
    ...
    );

typedef NTSTATUS
(*XENBUS_STORE_REMOVE)(
    _In_ PINTERFACE                 Interface,
    _In_opt_ PXENBUS_STORE_TRANSACTION Transaction,
    _In_opt_ PSTR                   Prefix,
    _In_ PSTR                       Node
    );

typedef NTSTATUS
(*XENBUS_STORE_DIRECTORY)(
    _In_ PINTERFACE                 Interface,
    _In_opt_ PXENBUS_STORE_TRANSACTION Transaction,
    _In_opt_ PSTR                   Prefix,
    _In_ PSTR                       Node,
    _Outptr_result_z_ PSTR          *Buffer
    );

typedef NTSTATUS
(*XENBUS_STORE_TRANSACTION_START)(
    _In_ PINTERFACE                 Interface,
    _Outptr_ PXENBUS_STORE_TRANSACTION *Transaction
    );

typedef NTSTATUS
(*XENBUS_STORE_TRANSACTION_END)(
    _In_ PINTERFACE                 Interface,
    _In_ PXENBUS_STORE_TRANSACTION Transaction,
    _In_ BOOLEAN                    Commit
    );

typedef NTSTATUS
(*XENBUS_STORE_WATCH_ADD)(
    _In_ PINTERFACE             Interface,
    _In_opt_ PSTR               Prefix,
    _In_ PSTR                   Node,
    _In_ PKEVENT                Event,
    _Outptr_ PXENBUS_STORE_WATCH *Watch
    );

typedef NTSTATUS
(*XENBUS_STORE_WATCH_REMOVE)(
    _In_ PINTERFACE             Interface,
    _In_ PXENBUS_STORE_WATCH    Watch
    );

typedef VOID
(*XENBUS_STORE_POLL)(
    _In_ PINTERFACE Interface
    );

typedef NTSTATUS
(*XENBUS_STORE_PERMISSIONS_SET)(
    _In_ PINTERFACE                 Interface,
    _In_opt_ PXENBUS_STORE_TRANSACTION Transaction,
    _In_opt_ PSTR                   Prefix,
    _In_ PSTR                       Node,
    _In_ PXENBUS_STORE_PERMISSION   Permissions,
    _In_ ULONG                      NumberPermissions
    );

// {86824C3B-D34E-4753-B281-2F1E3AD214D7}
DEFINE_GUID(GUID_XENBUS_STORE_INTERFACE,
            0x86824c3b, 0xd34e, 0x4753, 0xb2, 0x81, 0x2f, 0x1e, 0x3a, 0xd2, 0x14, 0xd7);

struct _XENBUS_STORE_INTERFACE_V2 {
    INTERFACE                      Interface;
    XENBUS_STORE_ACQUIRE           StoreAcquire;
    XENBUS_STORE_RELEASE           StoreRelease;
    XENBUS_STORE_FREE              StoreFree;
    XENBUS_STORE_READ              StoreRead;
    XENBUS_STORE_PRINTF            StorePrintf;
    XENBUS_STORE_PERMISSIONS_SET   StorePermissionsSet;
    XENBUS_STORE_REMOVE            StoreRemove;
    XENBUS_STORE_DIRECTORY         StoreDirectory;
    XENBUS_STORE_TRANSACTION_START StoreTransactionStart;
    XENBUS_STORE_TRANSACTION_END   StoreTransactionEnd;
    XENBUS_STORE_WATCH_ADD         StoreWatchAdd;
    XENBUS_STORE_WATCH_REMOVE      StoreWatchRemove;
    XENBUS_STORE_POLL              StorePoll;
};

typedef struct _XENBUS_STORE_INTERFACE_V2 XENBUS_STORE_INTERFACE, *PXENBUS_STORE_INTERFACE;

#define XENBUS_STORE(_Method, _Interface, ...) \
    (_Interface)->Store ## _Method((PINTERFACE)(_Interface), ##__VA_ARGS__)

#endif  // _WINDLL

#define XENBUS_STORE_INTERFACE_VERSION_MIN 2
#define XENBUS_STORE_INTERFACE_VERSION_MAX 2

#endif  // _XENBUS_STORE_INTERFACE_H
