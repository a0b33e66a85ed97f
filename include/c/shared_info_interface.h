/* shared_info_interface.h: XENBUS_SHARED_INFO interface (upcalls, 2-level event words, wallclock)
 * GENERATED from the Rust definitions in crate xen-include by `cargo xtask cheaders`;
 * do not edit. Include <ntddk.h> (or <wdm.h>) first, as with the original headers. */

#ifndef _XENBUS_SHARED_INFO_INTERFACE_H
#define _XENBUS_SHARED_INFO_INTERFACE_H

#ifndef _WINDLL

typedef NTSTATUS
(*XENBUS_SHARED_INFO_ACQUIRE)(
    _In_ PINTERFACE Interface
    );

typedef VOID
(*XENBUS_SHARED_INFO_RELEASE)(
    _In_ PINTERFACE Interface
    );

typedef BOOLEAN
(*XENBUS_SHARED_INFO_UPCALL_SUPPORTED)(
    _In_ PINTERFACE Interface,
    _In_ ULONG      Index
    );

typedef BOOLEAN
(*XENBUS_SHARED_INFO_UPCALL_PENDING)(
    _In_ PINTERFACE Interface,
    _In_ ULONG      Index
    );

typedef BOOLEAN
(*XENBUS_SHARED_INFO_EVENT)(
    _In_ PVOID  Argument,
    _In_ ULONG  Port
    );

typedef BOOLEAN
(*XENBUS_SHARED_INFO_EVTCHN_POLL)(
    _In_ PINTERFACE                 Interface,
    _In_ ULONG                      Index,
    _In_ XENBUS_SHARED_INFO_EVENT   Event,
    _In_ PVOID                      Argument
    );

typedef VOID
(*XENBUS_SHARED_INFO_EVTCHN_ACK)(
    _In_ PINTERFACE Interface,
    _In_ ULONG      Port
    );

typedef VOID
(*XENBUS_SHARED_INFO_EVTCHN_MASK)(
    _In_ PINTERFACE Interface,
    _In_ ULONG      Port
    );

typedef BOOLEAN
(*XENBUS_SHARED_INFO_EVTCHN_UNMASK)(
    _In_ PINTERFACE Interface,
    _In_ ULONG      Port
    );

typedef LARGE_INTEGER
(*XENBUS_SHARED_INFO_GET_TIME_V2)(
    _In_ PINTERFACE Interface
    );

typedef VOID
(*XENBUS_SHARED_INFO_GET_TIME)(
    _In_ PINTERFACE         Interface,
    _Out_ PLARGE_INTEGER    Time,
    _Out_ PBOOLEAN          Local
    );

// {7E73C34F-1640-4649-A8F3-263BC930A004}
DEFINE_GUID(GUID_XENBUS_SHARED_INFO_INTERFACE,
            0x7e73c34f, 0x1640, 0x4649, 0xa8, 0xf3, 0x26, 0x3b, 0xc9, 0x30, 0xa0, 0x4);

struct _XENBUS_SHARED_INFO_INTERFACE_V2 {
    INTERFACE                         Interface;
    XENBUS_SHARED_INFO_ACQUIRE        SharedInfoAcquire;
    XENBUS_SHARED_INFO_RELEASE        SharedInfoRelease;
    XENBUS_SHARED_INFO_UPCALL_PENDING SharedInfoUpcallPending;
    XENBUS_SHARED_INFO_EVTCHN_POLL    SharedInfoEvtchnPoll;
    XENBUS_SHARED_INFO_EVTCHN_ACK     SharedInfoEvtchnAck;
    XENBUS_SHARED_INFO_EVTCHN_MASK    SharedInfoEvtchnMask;
    XENBUS_SHARED_INFO_EVTCHN_UNMASK  SharedInfoEvtchnUnmask;
    XENBUS_SHARED_INFO_GET_TIME_V2    SharedInfoGetTimeVersion2;
};

struct _XENBUS_SHARED_INFO_INTERFACE_V3 {
    INTERFACE                         Interface;
    XENBUS_SHARED_INFO_ACQUIRE        SharedInfoAcquire;
    XENBUS_SHARED_INFO_RELEASE        SharedInfoRelease;
    XENBUS_SHARED_INFO_UPCALL_PENDING SharedInfoUpcallPending;
    XENBUS_SHARED_INFO_EVTCHN_POLL    SharedInfoEvtchnPoll;
    XENBUS_SHARED_INFO_EVTCHN_ACK     SharedInfoEvtchnAck;
    XENBUS_SHARED_INFO_EVTCHN_MASK    SharedInfoEvtchnMask;
    XENBUS_SHARED_INFO_EVTCHN_UNMASK  SharedInfoEvtchnUnmask;
    XENBUS_SHARED_INFO_GET_TIME       SharedInfoGetTime;
};

struct _XENBUS_SHARED_INFO_INTERFACE_V4 {
    INTERFACE                           Interface;
    XENBUS_SHARED_INFO_ACQUIRE          SharedInfoAcquire;
    XENBUS_SHARED_INFO_RELEASE          SharedInfoRelease;
    XENBUS_SHARED_INFO_UPCALL_SUPPORTED SharedInfoUpcallSupported;
    XENBUS_SHARED_INFO_UPCALL_PENDING   SharedInfoUpcallPending;
    XENBUS_SHARED_INFO_EVTCHN_POLL      SharedInfoEvtchnPoll;
    XENBUS_SHARED_INFO_EVTCHN_ACK       SharedInfoEvtchnAck;
    XENBUS_SHARED_INFO_EVTCHN_MASK      SharedInfoEvtchnMask;
    XENBUS_SHARED_INFO_EVTCHN_UNMASK    SharedInfoEvtchnUnmask;
    XENBUS_SHARED_INFO_GET_TIME         SharedInfoGetTime;
};

typedef struct _XENBUS_SHARED_INFO_INTERFACE_V4 XENBUS_SHARED_INFO_INTERFACE, *PXENBUS_SHARED_INFO_INTERFACE;

#define XENBUS_SHARED_INFO(_Method, _Interface, ...) \
    (_Interface)->SharedInfo ## _Method((PINTERFACE)(_Interface), ##__VA_ARGS__)

#endif  // _WINDLL

#define XENBUS_SHARED_INFO_INTERFACE_VERSION_MIN 2
#define XENBUS_SHARED_INFO_INTERFACE_VERSION_MAX 4

#endif  // _XENBUS_SHARED_INFO_INTERFACE_H
