/* balloon_interface.h: XENBUS_BALLOON interface (memory balloon; internal)
 * GENERATED from the Rust definitions in crate xen-include by `cargo xtask cheaders`;
 * do not edit. Include <ntddk.h> (or <wdm.h>) first, as with the original headers. */

#ifndef _XENBUS_BALLOON_INTERFACE_H
#define _XENBUS_BALLOON_INTERFACE_H

#ifndef _WINDLL

typedef NTSTATUS
(*XENBUS_BALLOON_ACQUIRE)(
    _In_ PINTERFACE Interface
    );

typedef VOID
(*XENBUS_BALLOON_RELEASE)(
    _In_ PINTERFACE Interface
    );

typedef NTSTATUS
(*XENBUS_BALLOON_ADJUST)(
    _In_ PINTERFACE Interface,
    _In_ ULONGLONG  Size
    );

typedef ULONGLONG
(*XENBUS_BALLOON_GET_SIZE)(
    _In_ PINTERFACE Interface
    );

// {D92AA810-BECB-4BD5-A3DA-BD03C135A297}
DEFINE_GUID(GUID_XENBUS_BALLOON_INTERFACE,
            0xd92aa810, 0xbecb, 0x4bd5, 0xa3, 0xda, 0xbd, 0x3, 0xc1, 0x35, 0xa2, 0x97);

struct _XENBUS_BALLOON_INTERFACE_V1 {
    INTERFACE               Interface;
    XENBUS_BALLOON_ACQUIRE  BalloonAcquire;
    XENBUS_BALLOON_RELEASE  BalloonRelease;
    XENBUS_BALLOON_ADJUST   BalloonAdjust;
    XENBUS_BALLOON_GET_SIZE BalloonGetSize;
};

typedef struct _XENBUS_BALLOON_INTERFACE_V1 XENBUS_BALLOON_INTERFACE, *PXENBUS_BALLOON_INTERFACE;

#define XENBUS_BALLOON(_Method, _Interface, ...) \
    (_Interface)->Balloon ## _Method((PINTERFACE)(_Interface), ##__VA_ARGS__)

#endif  // _WINDLL

#define XENBUS_BALLOON_INTERFACE_VERSION_MIN 1
#define XENBUS_BALLOON_INTERFACE_VERSION_MAX 1

#endif  // _XENBUS_BALLOON_INTERFACE_H
