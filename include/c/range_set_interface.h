/* range_set_interface.h: XENBUS_RANGE_SET interface (integer range sets)
 * GENERATED from the Rust definitions in crate xen-include by `cargo xtask cheaders`;
 * do not edit. Include <ntddk.h> (or <wdm.h>) first, as with the original headers. */

#ifndef _XENBUS_RANGE_SET_INTERFACE_H
#define _XENBUS_RANGE_SET_INTERFACE_H

#ifndef _WINDLL

typedef struct _XENBUS_RANGE_SET XENBUS_RANGE_SET, *PXENBUS_RANGE_SET;

typedef NTSTATUS
(*XENBUS_RANGE_SET_ACQUIRE)(
    _In_ PINTERFACE Interface
    );

typedef VOID
(*XENBUS_RANGE_SET_RELEASE)(
    _In_ PINTERFACE Interface
    );

typedef NTSTATUS
(*XENBUS_RANGE_SET_CREATE)(
    _In_ PINTERFACE         Interface,
    _In_ PCSTR              Name,
    _Outptr_ PXENBUS_RANGE_SET *RangeSet
    );

typedef NTSTATUS
(*XENBUS_RANGE_SET_PUT)(
    _In_ PINTERFACE         Interface,
    _In_ PXENBUS_RANGE_SET  RangeSet,
    _In_ LONGLONG           Start,
    _In_ ULONGLONG          Count
    );

typedef NTSTATUS
(*XENBUS_RANGE_SET_POP)(
    _In_ PINTERFACE         Interface,
    _In_ PXENBUS_RANGE_SET  RangeSet,
    _In_ ULONGLONG          Count,
    _Out_ PLONGLONG         Start
    );

typedef NTSTATUS
(*XENBUS_RANGE_SET_GET)(
    _In_ PINTERFACE         Interface,
    _In_ PXENBUS_RANGE_SET  RangeSet,
    _In_ LONGLONG           Start,
    _In_ ULONGLONG          Count
    );

typedef VOID
(*XENBUS_RANGE_SET_DESTROY)(
    _In_ PINTERFACE         Interface,
    _In_ PXENBUS_RANGE_SET  RangeSet
    );

// {EE7E78A2-6847-48C5-B123-BB012F0EABF4}
DEFINE_GUID(GUID_XENBUS_RANGE_SET_INTERFACE,
            0xee7e78a2, 0x6847, 0x48c5, 0xb1, 0x23, 0xbb, 0x1, 0x2f, 0xe, 0xab, 0xf4);

struct _XENBUS_RANGE_SET_INTERFACE_V1 {
    INTERFACE                Interface;
    XENBUS_RANGE_SET_ACQUIRE RangeSetAcquire;
    XENBUS_RANGE_SET_RELEASE RangeSetRelease;
    XENBUS_RANGE_SET_CREATE  RangeSetCreate;
    XENBUS_RANGE_SET_PUT     RangeSetPut;
    XENBUS_RANGE_SET_POP     RangeSetPop;
    XENBUS_RANGE_SET_GET     RangeSetGet;
    XENBUS_RANGE_SET_DESTROY RangeSetDestroy;
};

typedef struct _XENBUS_RANGE_SET_INTERFACE_V1 XENBUS_RANGE_SET_INTERFACE, *PXENBUS_RANGE_SET_INTERFACE;

#define XENBUS_RANGE_SET(_Method, _Interface, ...) \
    (_Interface)->RangeSet ## _Method((PINTERFACE)(_Interface), ##__VA_ARGS__)

#endif  // _WINDLL

#define XENBUS_RANGE_SET_INTERFACE_VERSION_MIN 1
#define XENBUS_RANGE_SET_INTERFACE_VERSION_MAX 1

#endif  // _XENBUS_RANGE_SET_INTERFACE_H
