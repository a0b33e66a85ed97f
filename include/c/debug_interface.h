/* debug_interface.h: XENBUS_DEBUG interface (debug callbacks)
 * GENERATED from the Rust definitions in crate xen-include by `cargo xtask cheaders`;
 * do not edit. Include <ntddk.h> (or <wdm.h>) first, as with the original headers. */

#ifndef _XENBUS_DEBUG_INTERFACE_H
#define _XENBUS_DEBUG_INTERFACE_H

#ifndef _WINDLL

typedef struct _XENBUS_DEBUG_CALLBACK XENBUS_DEBUG_CALLBACK, *PXENBUS_DEBUG_CALLBACK;

typedef NTSTATUS
(*XENBUS_DEBUG_ACQUIRE)(
    _In_ PINTERFACE Interface
    );

typedef VOID
(*XENBUS_DEBUG_RELEASE)(
    _In_ PINTERFACE Interface
    );

typedef VOID
(*XENBUS_DEBUG_FUNCTION)(
    _In_ PVOID      Argument,
    _In_ BOOLEAN    Crashing
    );

typedef NTSTATUS
(*XENBUS_DEBUG_REGISTER)(
    _In_ PINTERFACE                 Interface,
    _In_ PSTR                       Prefix,
    _In_ XENBUS_DEBUG_FUNCTION      Function,
    _In_opt_ PVOID                  Argument,
    _Outptr_ PXENBUS_DEBUG_CALLBACK *Callback
    );

typedef VOID
(*XENBUS_DEBUG_PRINTF)(
    _In_ PINTERFACE             Interface,
    _In_ PCSTR                  Format,
    ...
    );

typedef VOID
(*XENBUS_DEBUG_DEREGISTER)(
    _In_ PINTERFACE             Interface,
    _In_ PXENBUS_DEBUG_CALLBACK Callback
    );

typedef VOID
(*XENBUS_DEBUG_TRIGGER)(
    _In_ PINTERFACE                 Interface,
    _In_opt_ PXENBUS_DEBUG_CALLBACK Callback
    );

// {0DF600AE-6B20-4227-BF94-03DA9A26A114}
DEFINE_GUID(GUID_XENBUS_DEBUG_INTERFACE,
            0xdf600ae, 0x6b20, 0x4227, 0xbf, 0x94, 0x3, 0xda, 0x9a, 0x26, 0xa1, 0x14);

struct _XENBUS_DEBUG_INTERFACE_V1 {
    INTERFACE               Interface;
    XENBUS_DEBUG_ACQUIRE    DebugAcquire;
    XENBUS_DEBUG_RELEASE    DebugRelease;
    XENBUS_DEBUG_REGISTER   DebugRegister;
    XENBUS_DEBUG_PRINTF     DebugPrintf;
    XENBUS_DEBUG_TRIGGER    DebugTrigger;
    XENBUS_DEBUG_DEREGISTER DebugDeregister;
};

typedef struct _XENBUS_DEBUG_INTERFACE_V1 XENBUS_DEBUG_INTERFACE, *PXENBUS_DEBUG_INTERFACE;

#define XENBUS_DEBUG(_Method, _Interface, ...) \
    (_Interface)->Debug ## _Method((PINTERFACE)(_Interface), ##__VA_ARGS__)

#endif  // _WINDLL

#define XENBUS_DEBUG_INTERFACE_VERSION_MIN 1
#define XENBUS_DEBUG_INTERFACE_VERSION_MAX 1

#endif  // _XENBUS_DEBUG_INTERFACE_H
