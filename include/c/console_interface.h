/* console_interface.h: XENBUS_CONSOLE interface (PV console)
 * GENERATED from the Rust definitions in crate xen-include by `cargo xtask cheaders`;
 * do not edit. Include <ntddk.h> (or <wdm.h>) first, as with the original headers. */

#ifndef _XENBUS_CONSOLE_INTERFACE_H
#define _XENBUS_CONSOLE_INTERFACE_H

#ifndef _WINDLL

typedef struct _XENBUS_CONSOLE_WAKEUP XENBUS_CONSOLE_WAKEUP, *PXENBUS_CONSOLE_WAKEUP;

typedef NTSTATUS
(*XENBUS_CONSOLE_ACQUIRE)(
    _In_ PINTERFACE Interface
    );

typedef VOID
(*XENBUS_CONSOLE_RELEASE)(
    _In_ PINTERFACE Interface
    );

typedef BOOLEAN
(*XENBUS_CONSOLE_CAN_READ)(
    _In_ PINTERFACE Interface
    );

typedef ULONG
(*XENBUS_CONSOLE_READ)(
    _In_ PINTERFACE Interface,
    _In_ PSTR       Data,
    _In_ ULONG      Length
    );

typedef BOOLEAN
(*XENBUS_CONSOLE_CAN_WRITE)(
    _In_ PINTERFACE Interface
    );

typedef ULONG
(*XENBUS_CONSOLE_WRITE)(
    _In_ PINTERFACE Interface,
    _In_ PSTR       Data,
    _In_ ULONG      Length
    );

typedef NTSTATUS
(*XENBUS_CONSOLE_WAKEUP_ADD)(
    _In_ PINTERFACE                 Interface,
    _In_ PKEVENT                    Event,
    _Outptr_ PXENBUS_CONSOLE_WAKEUP *Wakeup
    );

typedef VOID
(*XENBUS_CONSOLE_WAKEUP_REMOVE)(
    _In_ PINTERFACE             Interface,
    _In_ PXENBUS_CONSOLE_WAKEUP Wakeup
    );

// {04C4F738-034A-4268-BD20-A92AC90D4F82}
DEFINE_GUID(GUID_XENBUS_CONSOLE_INTERFACE,
            0x4c4f738, 0x34a, 0x4268, 0xbd, 0x20, 0xa9, 0x2a, 0xc9, 0xd, 0x4f, 0x82);

struct _XENBUS_CONSOLE_INTERFACE_V1 {
    INTERFACE                    Interface;
    XENBUS_CONSOLE_ACQUIRE       ConsoleAcquire;
    XENBUS_CONSOLE_RELEASE       ConsoleRelease;
    XENBUS_CONSOLE_CAN_READ      ConsoleCanRead;
    XENBUS_CONSOLE_READ          ConsoleRead;
    XENBUS_CONSOLE_CAN_WRITE     ConsoleCanWrite;
    XENBUS_CONSOLE_WRITE         ConsoleWrite;
    XENBUS_CONSOLE_WAKEUP_ADD    ConsoleWakeupAdd;
    XENBUS_CONSOLE_WAKEUP_REMOVE ConsoleWakeupRemove;
};

typedef struct _XENBUS_CONSOLE_INTERFACE_V1 XENBUS_CONSOLE_INTERFACE, *PXENBUS_CONSOLE_INTERFACE;

#define XENBUS_CONSOLE(_Method, _Interface, ...) \
    (_Interface)->Console ## _Method((PINTERFACE)(_Interface), ##__VA_ARGS__)

#endif  // _WINDLL

#define XENBUS_CONSOLE_INTERFACE_VERSION_MIN 1
#define XENBUS_CONSOLE_INTERFACE_VERSION_MAX 1

#endif  // _XENBUS_CONSOLE_INTERFACE_H
