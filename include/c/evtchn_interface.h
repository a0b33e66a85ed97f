/* evtchn_interface.h: XENBUS_EVTCHN interface (event channels)
 * GENERATED from the Rust definitions in crate xen-include by `cargo xtask cheaders`;
 * do not edit. Include <ntddk.h> (or <wdm.h>) first, as with the original headers. */

#ifndef _XENBUS_EVTCHN_INTERFACE_H
#define _XENBUS_EVTCHN_INTERFACE_H

#ifndef _WINDLL

typedef enum _XENBUS_EVTCHN_TYPE {
    XENBUS_EVTCHN_TYPE_INVALID = 0,
    XENBUS_EVTCHN_TYPE_FIXED = 1,
    XENBUS_EVTCHN_TYPE_UNBOUND = 2,
    XENBUS_EVTCHN_TYPE_INTER_DOMAIN = 3,
    XENBUS_EVTCHN_TYPE_VIRQ = 4
} XENBUS_EVTCHN_TYPE, *PXENBUS_EVTCHN_TYPE;

typedef struct _XENBUS_EVTCHN_CHANNEL XENBUS_EVTCHN_CHANNEL, *PXENBUS_EVTCHN_CHANNEL;

typedef NTSTATUS
(*XENBUS_EVTCHN_ACQUIRE)(
    _In_ PINTERFACE Interface
    );

typedef VOID
(*XENBUS_EVTCHN_RELEASE)(
    _In_ PINTERFACE Interface
    );

typedef PXENBUS_EVTCHN_CHANNEL
(*XENBUS_EVTCHN_OPEN)(
    _In_ PINTERFACE         Interface,
    _In_ XENBUS_EVTCHN_TYPE Type,
    _In_ PKSERVICE_ROUTINE  Function,
    _In_opt_ PVOID          Argument,
    ...
    );

typedef NTSTATUS
(*XENBUS_EVTCHN_BIND)(
    _In_ PINTERFACE             Interface,
    _In_ PXENBUS_EVTCHN_CHANNEL Channel,
    _In_ USHORT                 Group,
    _In_ UCHAR                  Number
    );

typedef VOID
(*XENBUS_EVTCHN_UNMASK_V4)(
    _In_ PINTERFACE             Interface,
    _In_ PXENBUS_EVTCHN_CHANNEL Channel,
    _In_ BOOLEAN                InCallback
    );

typedef BOOLEAN
(*XENBUS_EVTCHN_UNMASK)(
    _In_ PINTERFACE             Interface,
    _In_ PXENBUS_EVTCHN_CHANNEL Channel,
    _In_ BOOLEAN                InCallback,
    _In_ BOOLEAN                Force
    );

typedef VOID
(*XENBUS_EVTCHN_SEND_V1)(
    _In_ PINTERFACE             Interface,
    _In_ PXENBUS_EVTCHN_CHANNEL Channel
    );

typedef VOID
(*XENBUS_EVTCHN_SEND)(
    _In_ PINTERFACE             Interface,
    _In_ PXENBUS_EVTCHN_CHANNEL Channel
    );

typedef VOID
(*XENBUS_EVTCHN_TRIGGER)(
    _In_ PINTERFACE             Interface,
    _In_ PXENBUS_EVTCHN_CHANNEL Channel
    );

typedef ULONG
(*XENBUS_EVTCHN_GET_COUNT)(
    _In_ PINTERFACE             Interface,
    _In_ PXENBUS_EVTCHN_CHANNEL Channel
    );

typedef NTSTATUS
(*XENBUS_EVTCHN_WAIT_V5)(
    _In_ PINTERFACE             Interface,
    _In_ PXENBUS_EVTCHN_CHANNEL Channel,
    _In_opt_ PLARGE_INTEGER     Timeout
    );

typedef NTSTATUS
(*XENBUS_EVTCHN_WAIT)(
    _In_ PINTERFACE             Interface,
    _In_ PXENBUS_EVTCHN_CHANNEL Channel,
    _In_ ULONG                  Count,
    _In_opt_ PLARGE_INTEGER     Timeout
    );

typedef ULONG
(*XENBUS_EVTCHN_GET_PORT)(
    _In_ PINTERFACE             Interface,
    _In_ PXENBUS_EVTCHN_CHANNEL Channel
    );

typedef VOID
(*XENBUS_EVTCHN_CLOSE)(
    _In_ PINTERFACE             Interface,
    _In_ PXENBUS_EVTCHN_CHANNEL Channel
    );

// {BE2440AC-1098-4150-AF4D-452FADCEF923}
DEFINE_GUID(GUID_XENBUS_EVTCHN_INTERFACE,
            0xbe2440ac, 0x1098, 0x4150, 0xaf, 0x4d, 0x45, 0x2f, 0xad, 0xce, 0xf9, 0x23);

struct _XENBUS_EVTCHN_INTERFACE_V5 {
    INTERFACE               Interface;
    XENBUS_EVTCHN_ACQUIRE   EvtchnAcquire;
    XENBUS_EVTCHN_RELEASE   EvtchnRelease;
    XENBUS_EVTCHN_OPEN      EvtchnOpen;
    XENBUS_EVTCHN_BIND      EvtchnBind;
    XENBUS_EVTCHN_UNMASK_V4 EvtchnUnmaskVersion4;
    XENBUS_EVTCHN_SEND_V1   EvtchnSendVersion1;
    XENBUS_EVTCHN_TRIGGER   EvtchnTrigger;
    XENBUS_EVTCHN_WAIT_V5   EvtchnWaitVersion5;
    XENBUS_EVTCHN_GET_PORT  EvtchnGetPort;
    XENBUS_EVTCHN_CLOSE     EvtchnClose;
};

struct _XENBUS_EVTCHN_INTERFACE_V6 {
    INTERFACE               Interface;
    XENBUS_EVTCHN_ACQUIRE   EvtchnAcquire;
    XENBUS_EVTCHN_RELEASE   EvtchnRelease;
    XENBUS_EVTCHN_OPEN      EvtchnOpen;
    XENBUS_EVTCHN_BIND      EvtchnBind;
    XENBUS_EVTCHN_UNMASK_V4 EvtchnUnmaskVersion4;
    XENBUS_EVTCHN_SEND      EvtchnSend;
    XENBUS_EVTCHN_TRIGGER   EvtchnTrigger;
    XENBUS_EVTCHN_WAIT_V5   EvtchnWaitVersion5;
    XENBUS_EVTCHN_GET_PORT  EvtchnGetPort;
    XENBUS_EVTCHN_CLOSE     EvtchnClose;
};

struct _XENBUS_EVTCHN_INTERFACE_V7 {
    INTERFACE               Interface;
    XENBUS_EVTCHN_ACQUIRE   EvtchnAcquire;
    XENBUS_EVTCHN_RELEASE   EvtchnRelease;
    XENBUS_EVTCHN_OPEN      EvtchnOpen;
    XENBUS_EVTCHN_BIND      EvtchnBind;
    XENBUS_EVTCHN_UNMASK_V4 EvtchnUnmaskVersion4;
    XENBUS_EVTCHN_SEND      EvtchnSend;
    XENBUS_EVTCHN_TRIGGER   EvtchnTrigger;
    XENBUS_EVTCHN_GET_COUNT EvtchnGetCount;
    XENBUS_EVTCHN_WAIT      EvtchnWait;
    XENBUS_EVTCHN_GET_PORT  EvtchnGetPort;
    XENBUS_EVTCHN_CLOSE     EvtchnClose;
};

struct _XENBUS_EVTCHN_INTERFACE_V8 {
    INTERFACE               Interface;
    XENBUS_EVTCHN_ACQUIRE   EvtchnAcquire;
    XENBUS_EVTCHN_RELEASE   EvtchnRelease;
    XENBUS_EVTCHN_OPEN      EvtchnOpen;
    XENBUS_EVTCHN_BIND      EvtchnBind;
    XENBUS_EVTCHN_UNMASK    EvtchnUnmask;
    XENBUS_EVTCHN_SEND      EvtchnSend;
    XENBUS_EVTCHN_TRIGGER   EvtchnTrigger;
    XENBUS_EVTCHN_GET_COUNT EvtchnGetCount;
    XENBUS_EVTCHN_WAIT      EvtchnWait;
    XENBUS_EVTCHN_GET_PORT  EvtchnGetPort;
    XENBUS_EVTCHN_CLOSE     EvtchnClose;
};

struct _XENBUS_EVTCHN_INTERFACE_V9 {
    INTERFACE               Interface;
    XENBUS_EVTCHN_ACQUIRE   EvtchnAcquire;
    XENBUS_EVTCHN_RELEASE   EvtchnRelease;
    XENBUS_EVTCHN_OPEN      EvtchnOpen;
    XENBUS_EVTCHN_BIND      EvtchnBind;
    XENBUS_EVTCHN_UNMASK    EvtchnUnmask;
    XENBUS_EVTCHN_SEND      EvtchnSend;
    XENBUS_EVTCHN_TRIGGER   EvtchnTrigger;
    XENBUS_EVTCHN_GET_COUNT EvtchnGetCount;
    XENBUS_EVTCHN_WAIT      EvtchnWait;
    XENBUS_EVTCHN_GET_PORT  EvtchnGetPort;
    XENBUS_EVTCHN_CLOSE     EvtchnClose;
};

typedef struct _XENBUS_EVTCHN_INTERFACE_V9 XENBUS_EVTCHN_INTERFACE, *PXENBUS_EVTCHN_INTERFACE;

#define XENBUS_EVTCHN(_Method, _Interface, ...) \
    (_Interface)->Evtchn ## _Method((PINTERFACE)(_Interface), ##__VA_ARGS__)

#endif  // _WINDLL

#define XENBUS_EVTCHN_INTERFACE_VERSION_MIN 5
#define XENBUS_EVTCHN_INTERFACE_VERSION_MAX 9

#endif  // _XENBUS_EVTCHN_INTERFACE_H
