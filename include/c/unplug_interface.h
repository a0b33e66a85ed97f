/* unplug_interface.h: XENBUS_UNPLUG interface (emulated device unplug requests)
 * GENERATED from the Rust definitions in crate xen-include by `cargo xtask cheaders`;
 * do not edit. Include <ntddk.h> (or <wdm.h>) first, as with the original headers. */

#ifndef _XENBUS_UNPLUG_INTERFACE_H
#define _XENBUS_UNPLUG_INTERFACE_H

#ifndef _WINDLL

typedef enum _XENBUS_UNPLUG_DEVICE_TYPE {
    XENBUS_UNPLUG_DEVICE_TYPE_INVALID = 0,
    XENBUS_UNPLUG_DEVICE_TYPE_NICS = 1,
    XENBUS_UNPLUG_DEVICE_TYPE_DISKS = 2
} XENBUS_UNPLUG_DEVICE_TYPE, *PXENBUS_UNPLUG_DEVICE_TYPE;

typedef NTSTATUS
(*XENBUS_UNPLUG_ACQUIRE)(
    _In_ PINTERFACE Interface
    );

typedef VOID
(*XENBUS_UNPLUG_RELEASE)(
    _In_ PINTERFACE Interface
    );

typedef VOID
(*XENBUS_UNPLUG_REQUEST)(
    _In_ PINTERFACE                 Interface,
    _In_ XENBUS_UNPLUG_DEVICE_TYPE  Type,
    _In_ BOOLEAN                    Make
    );

typedef BOOLEAN
(*XENBUS_UNPLUG_IS_REQUESTED)(
    _In_ PINTERFACE                 Interface,
    _In_ XENBUS_UNPLUG_DEVICE_TYPE  Type
    );

typedef BOOLEAN
(*XENBUS_UNPLUG_BOOT_EMULATED)(
    _In_ PINTERFACE Interface
    );

typedef VOID
(*XENBUS_UNPLUG_REBOOT)(
    _In_ PINTERFACE Interface,
    _In_ PSTR       Module
    );

// {73DB6517-3D06-4937-989F-199B7501E229}
DEFINE_GUID(GUID_XENBUS_UNPLUG_INTERFACE,
            0x73db6517, 0x3d06, 0x4937, 0x98, 0x9f, 0x19, 0x9b, 0x75, 0x1, 0xe2, 0x29);

struct _XENBUS_UNPLUG_INTERFACE_V1 {
    INTERFACE             Interface;
    XENBUS_UNPLUG_ACQUIRE UnplugAcquire;
    XENBUS_UNPLUG_RELEASE UnplugRelease;
    XENBUS_UNPLUG_REQUEST UnplugRequest;
};

struct _XENBUS_UNPLUG_INTERFACE_V2 {
    INTERFACE                  Interface;
    XENBUS_UNPLUG_ACQUIRE      UnplugAcquire;
    XENBUS_UNPLUG_RELEASE      UnplugRelease;
    XENBUS_UNPLUG_REQUEST      UnplugRequest;
    XENBUS_UNPLUG_IS_REQUESTED UnplugIsRequested;
};

struct _XENBUS_UNPLUG_INTERFACE_V3 {
    INTERFACE                   Interface;
    XENBUS_UNPLUG_ACQUIRE       UnplugAcquire;
    XENBUS_UNPLUG_RELEASE       UnplugRelease;
    XENBUS_UNPLUG_REQUEST       UnplugRequest;
    XENBUS_UNPLUG_IS_REQUESTED  UnplugIsRequested;
    XENBUS_UNPLUG_BOOT_EMULATED UnplugBootEmulated;
    XENBUS_UNPLUG_REBOOT        UnplugReboot;
};

typedef struct _XENBUS_UNPLUG_INTERFACE_V3 XENBUS_UNPLUG_INTERFACE, *PXENBUS_UNPLUG_INTERFACE;

#define XENBUS_UNPLUG(_Method, _Interface, ...) \
    (_Interface)->Unplug ## _Method((PINTERFACE)(_Interface), ##__VA_ARGS__)

#endif  // _WINDLL

#define XENBUS_UNPLUG_INTERFACE_VERSION_MIN 1
#define XENBUS_UNPLUG_INTERFACE_VERSION_MAX 3

#endif  // _XENBUS_UNPLUG_INTERFACE_H
