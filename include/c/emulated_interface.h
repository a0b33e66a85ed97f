/* emulated_interface.h: XENFILT_EMULATED interface (emulated device presence; xenfilt.sys)
 * GENERATED from the Rust definitions in crate xen-include by `cargo xtask cheaders`;
 * do not edit. Include <ntddk.h> (or <wdm.h>) first, as with the original headers. */

#ifndef _XENFILT_EMULATED_INTERFACE_H
#define _XENFILT_EMULATED_INTERFACE_H

#ifndef _WINDLL

typedef enum _XENBUS_EMULATED_ACTIVATION_STATUS {
    XENBUS_EMULATED_ACTIVATE_NEUTRAL = 0,
    XENBUS_EMULATED_FORCE_ACTIVATED = 1,
    XENBUS_EMULATED_FORCE_DEACTIVATED = 2
} XENBUS_EMULATED_ACTIVATION_STATUS, *PXENBUS_EMULATED_ACTIVATION_STATUS;

typedef NTSTATUS
(*XENFILT_EMULATED_ACQUIRE)(
    _In_ PINTERFACE Interface
    );

typedef VOID
(*XENFILT_EMULATED_RELEASE)(
    _In_ PINTERFACE Interface
    );

typedef BOOLEAN
(*XENFILT_EMULATED_IS_DEVICE_PRESENT_V1)(
    _In_ PVOID            Context,
    _In_ PSTR             DeviceID,
    _In_opt_ PSTR         InstanceID
    );

typedef BOOLEAN
(*XENFILT_EMULATED_IS_DEVICE_PRESENT)(
    _In_ PVOID                                   Context,
    _In_opt_ PSTR                                DeviceID,
    _In_opt_ PSTR                                InstanceID,
    _Out_opt_ PXENBUS_EMULATED_ACTIVATION_STATUS IsForceActivated
    );

typedef BOOLEAN
(*XENFILT_EMULATED_IS_DISK_PRESENT_V1)(
    _In_ PVOID    Context,
    _In_ ULONG    Controller,
    _In_ ULONG    Target,
    _In_ ULONG    Lun
    );

typedef BOOLEAN
(*XENFILT_EMULATED_IS_DISK_PRESENT)(
    _In_ PVOID    Context,
    _In_ ULONG    Index
    );

// {959027A1-FCCE-4E78-BCF4-637384F499C5}
DEFINE_GUID(GUID_XENFILT_EMULATED_INTERFACE,
            0x959027a1, 0xfcce, 0x4e78, 0xbc, 0xf4, 0x63, 0x73, 0x84, 0xf4, 0x99, 0xc5);

struct _XENFILT_EMULATED_INTERFACE_V1 {
    INTERFACE                             Interface;
    XENFILT_EMULATED_ACQUIRE              EmulatedAcquire;
    XENFILT_EMULATED_RELEASE              EmulatedRelease;
    XENFILT_EMULATED_IS_DEVICE_PRESENT_V1 EmulatedIsDevicePresentVersion1;
    XENFILT_EMULATED_IS_DISK_PRESENT_V1   EmulatedIsDiskPresentVersion1;
};

struct _XENFILT_EMULATED_INTERFACE_V2 {
    INTERFACE                             Interface;
    XENFILT_EMULATED_ACQUIRE              EmulatedAcquire;
    XENFILT_EMULATED_RELEASE              EmulatedRelease;
    XENFILT_EMULATED_IS_DEVICE_PRESENT_V1 EmulatedIsDevicePresentVersion1;
    XENFILT_EMULATED_IS_DISK_PRESENT      EmulatedIsDiskPresent;
};

struct _XENFILT_EMULATED_INTERFACE_V3 {
    INTERFACE                          Interface;
    XENFILT_EMULATED_ACQUIRE           EmulatedAcquire;
    XENFILT_EMULATED_RELEASE           EmulatedRelease;
    XENFILT_EMULATED_IS_DEVICE_PRESENT EmulatedIsDevicePresent;
    XENFILT_EMULATED_IS_DISK_PRESENT   EmulatedIsDiskPresent;
};

typedef struct _XENFILT_EMULATED_INTERFACE_V3 XENFILT_EMULATED_INTERFACE, *PXENFILT_EMULATED_INTERFACE;

#define XENFILT_EMULATED(_Method, _Interface, ...) \
    (_Interface)->Emulated ## _Method((PINTERFACE)(_Interface), ##__VA_ARGS__)

#endif  // _WINDLL

#define XENFILT_EMULATED_INTERFACE_VERSION_MIN 1
#define XENFILT_EMULATED_INTERFACE_VERSION_MAX 3

#endif  // _XENFILT_EMULATED_INTERFACE_H
