/* suspend_interface.h: XENBUS_SUSPEND interface (suspend callbacks, VM suspend)
 * GENERATED from the Rust definitions in crate xen-include by `cargo xtask cheaders`;
 * do not edit. Include <ntddk.h> (or <wdm.h>) first, as with the original headers. */

#ifndef _XENBUS_SUSPEND_INTERFACE_H
#define _XENBUS_SUSPEND_INTERFACE_H

#ifndef _WINDLL

typedef enum _XENBUS_SUSPEND_CALLBACK_TYPE {
    SUSPEND_CALLBACK_TYPE_INVALID = 0,
    SUSPEND_CALLBACK_EARLY = 1,
    SUSPEND_CALLBACK_LATE = 2
} XENBUS_SUSPEND_CALLBACK_TYPE, *PXENBUS_SUSPEND_CALLBACK_TYPE;

typedef struct _XENBUS_SUSPEND_CALLBACK XENBUS_SUSPEND_CALLBACK, *PXENBUS_SUSPEND_CALLBACK;

typedef NTSTATUS
(*XENBUS_SUSPEND_ACQUIRE)(
    _In_ PINTERFACE Interface
    );

typedef VOID
(*XENBUS_SUSPEND_RELEASE)(
    _In_ PINTERFACE Interface
    );

typedef VOID
(*XENBUS_SUSPEND_FUNCTION)(
    _In_ PVOID  Argument
    );

typedef NTSTATUS
(*XENBUS_SUSPEND_REGISTER)(
    _In_ PINTERFACE                     Interface,
    _In_ XENBUS_SUSPEND_CALLBACK_TYPE   Type,
    _In_ XENBUS_SUSPEND_FUNCTION        Function,
    _In_opt_ PVOID                      Argument,
    _Outptr_ PXENBUS_SUSPEND_CALLBACK   *Callback
    );

typedef VOID
(*XENBUS_SUSPEND_DEREGISTER)(
    _In_ PINTERFACE                 Interface,
    _In_ PXENBUS_SUSPEND_CALLBACK   Callback
    );

typedef NTSTATUS
(*XENBUS_SUSPEND_TRIGGER)(
    _In_ PINTERFACE Interface
    );

typedef ULONG
(*XENBUS_SUSPEND_GET_COUNT)(
    _In_ PINTERFACE Interface
    );

// {0554F2AF-B510-4C71-AC03-1C503E394238}
DEFINE_GUID(GUID_XENBUS_SUSPEND_INTERFACE,
            0x554f2af, 0xb510, 0x4c71, 0xac, 0x3, 0x1c, 0x50, 0x3e, 0x39, 0x42, 0x38);

struct _XENBUS_SUSPEND_INTERFACE_V1 {
    INTERFACE                 Interface;
    XENBUS_SUSPEND_ACQUIRE    Acquire;
    XENBUS_SUSPEND_RELEASE    Release;
    XENBUS_SUSPEND_REGISTER   Register;
    XENBUS_SUSPEND_DEREGISTER Deregister;
    XENBUS_SUSPEND_TRIGGER    Trigger;
    XENBUS_SUSPEND_GET_COUNT  GetCount;
};

typedef struct _XENBUS_SUSPEND_INTERFACE_V1 XENBUS_SUSPEND_INTERFACE, *PXENBUS_SUSPEND_INTERFACE;

#define XENBUS_SUSPEND(_Method, _Interface, ...) \
    (_Interface)->_Method((PINTERFACE)(_Interface), ##__VA_ARGS__)

#endif  // _WINDLL

#define XENBUS_SUSPEND_INTERFACE_VERSION_MIN 1
#define XENBUS_SUSPEND_INTERFACE_VERSION_MAX 1

#endif  // _XENBUS_SUSPEND_INTERFACE_H
