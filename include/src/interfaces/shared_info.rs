//! XENBUS_SHARED_INFO (`shared_info_interface.h`): upcall and event-word access, wallclock.

use super::cmeta::{CHeader, CItem};
use super::{Boolean, Guid, LargeInteger, NtStatus, PInterface};
use core::ffi::c_void;

/// `GUID_XENBUS_SHARED_INFO_INTERFACE` `{7E73C34F-1640-4649-A8F3-263BC930A004}`.
pub const GUID_XENBUS_SHARED_INFO_INTERFACE: Guid =
    Guid::from_u128(0x7E73C34F_1640_4649_A8F3_263BC930A004);
/// Oldest version served.
pub const XENBUS_SHARED_INFO_INTERFACE_VERSION_MIN: u16 = 2;
/// Newest version served.
pub const XENBUS_SHARED_INFO_INTERFACE_VERSION_MAX: u16 = 4;

c_fn_types! {
    /// Takes a reference.
    pub type SharedInfoAcquireFn = XENBUS_SHARED_INFO_ACQUIRE
        fn(interface: PInterface => "_In_ PINTERFACE Interface") -> NtStatus => "NTSTATUS";
    /// Drops a reference.
    pub type SharedInfoReleaseFn = XENBUS_SHARED_INFO_RELEASE
        fn(interface: PInterface => "_In_ PINTERFACE Interface") => "VOID";
    /// Whether per-vCPU upcalls are possible for processor `index` (V4+).
    pub type SharedInfoUpcallSupportedFn = XENBUS_SHARED_INFO_UPCALL_SUPPORTED
        fn(
            interface: PInterface => "_In_ PINTERFACE Interface",
            index: u32 => "_In_ ULONG      Index"
        ) -> Boolean => "BOOLEAN";
    /// Whether vCPU `index` has an upcall pending (private to EVTCHN).
    pub type SharedInfoUpcallPendingFn = XENBUS_SHARED_INFO_UPCALL_PENDING
        fn(
            interface: PInterface => "_In_ PINTERFACE Interface",
            index: u32 => "_In_ ULONG      Index"
        ) -> Boolean => "BOOLEAN";
    /// Called for each pending port by `EvtchnPoll`; TRUE stops the scan.
    pub type SharedInfoEvent = XENBUS_SHARED_INFO_EVENT
        fn(
            argument: *mut c_void => "_In_ PVOID  Argument",
            port: u32 => "_In_ ULONG  Port"
        ) -> Boolean => "BOOLEAN";
    /// Scans pending 2-level event words of vCPU `index` (private to EVTCHN).
    pub type SharedInfoEvtchnPollFn = XENBUS_SHARED_INFO_EVTCHN_POLL
        fn(
            interface: PInterface => "_In_ PINTERFACE                 Interface",
            index: u32 => "_In_ ULONG                      Index",
            event: SharedInfoEvent => "_In_ XENBUS_SHARED_INFO_EVENT   Event",
            argument: *mut c_void => "_In_ PVOID                      Argument"
        ) -> Boolean => "BOOLEAN";
    /// Clears the pending bit of `port` (private to EVTCHN).
    pub type SharedInfoEvtchnAckFn = XENBUS_SHARED_INFO_EVTCHN_ACK
        fn(
            interface: PInterface => "_In_ PINTERFACE Interface",
            port: u32 => "_In_ ULONG      Port"
        ) => "VOID";
    /// Sets the mask bit of `port` (private to EVTCHN).
    pub type SharedInfoEvtchnMaskFn = XENBUS_SHARED_INFO_EVTCHN_MASK
        fn(
            interface: PInterface => "_In_ PINTERFACE Interface",
            port: u32 => "_In_ ULONG      Port"
        ) => "VOID";
    /// Clears the mask bit of `port`; TRUE when an event is pending (private to EVTCHN).
    pub type SharedInfoEvtchnUnmaskFn = XENBUS_SHARED_INFO_EVTCHN_UNMASK
        fn(
            interface: PInterface => "_In_ PINTERFACE Interface",
            port: u32 => "_In_ ULONG      Port"
        ) -> Boolean => "BOOLEAN";
    /// The wallclock time (V2).
    pub type SharedInfoGetTimeV2Fn = XENBUS_SHARED_INFO_GET_TIME_V2
        fn(interface: PInterface => "_In_ PINTERFACE Interface") -> LargeInteger => "LARGE_INTEGER";
    /// The wallclock time and whether it is local time (V3+).
    pub type SharedInfoGetTimeFn = XENBUS_SHARED_INFO_GET_TIME
        fn(
            interface: PInterface => "_In_ PINTERFACE         Interface",
            time: *mut LargeInteger => "_Out_ PLARGE_INTEGER    Time",
            local: *mut Boolean => "_Out_ PBOOLEAN          Local"
        ) => "VOID";
}

vtable! {
    /// XENBUS_SHARED_INFO version 2.
    pub struct SharedInfoInterfaceV2 = XENBUS_SHARED_INFO_INTERFACE_V2,
        guid GUID_XENBUS_SHARED_INFO_INTERFACE, version 2, size 96 {
        shared_info_acquire: SharedInfoAcquireFn => XENBUS_SHARED_INFO_ACQUIRE SharedInfoAcquire,
        shared_info_release: SharedInfoReleaseFn => XENBUS_SHARED_INFO_RELEASE SharedInfoRelease,
        shared_info_upcall_pending: SharedInfoUpcallPendingFn
            => XENBUS_SHARED_INFO_UPCALL_PENDING SharedInfoUpcallPending,
        shared_info_evtchn_poll: SharedInfoEvtchnPollFn
            => XENBUS_SHARED_INFO_EVTCHN_POLL SharedInfoEvtchnPoll,
        shared_info_evtchn_ack: SharedInfoEvtchnAckFn
            => XENBUS_SHARED_INFO_EVTCHN_ACK SharedInfoEvtchnAck,
        shared_info_evtchn_mask: SharedInfoEvtchnMaskFn
            => XENBUS_SHARED_INFO_EVTCHN_MASK SharedInfoEvtchnMask,
        shared_info_evtchn_unmask: SharedInfoEvtchnUnmaskFn
            => XENBUS_SHARED_INFO_EVTCHN_UNMASK SharedInfoEvtchnUnmask,
        shared_info_get_time_version2: SharedInfoGetTimeV2Fn
            => XENBUS_SHARED_INFO_GET_TIME_V2 SharedInfoGetTimeVersion2,
    }
}

vtable! {
    /// XENBUS_SHARED_INFO version 3: `GetTime` also reports local-vs-UTC.
    pub struct SharedInfoInterfaceV3 = XENBUS_SHARED_INFO_INTERFACE_V3,
        guid GUID_XENBUS_SHARED_INFO_INTERFACE, version 3, size 96 {
        shared_info_acquire: SharedInfoAcquireFn => XENBUS_SHARED_INFO_ACQUIRE SharedInfoAcquire,
        shared_info_release: SharedInfoReleaseFn => XENBUS_SHARED_INFO_RELEASE SharedInfoRelease,
        shared_info_upcall_pending: SharedInfoUpcallPendingFn
            => XENBUS_SHARED_INFO_UPCALL_PENDING SharedInfoUpcallPending,
        shared_info_evtchn_poll: SharedInfoEvtchnPollFn
            => XENBUS_SHARED_INFO_EVTCHN_POLL SharedInfoEvtchnPoll,
        shared_info_evtchn_ack: SharedInfoEvtchnAckFn
            => XENBUS_SHARED_INFO_EVTCHN_ACK SharedInfoEvtchnAck,
        shared_info_evtchn_mask: SharedInfoEvtchnMaskFn
            => XENBUS_SHARED_INFO_EVTCHN_MASK SharedInfoEvtchnMask,
        shared_info_evtchn_unmask: SharedInfoEvtchnUnmaskFn
            => XENBUS_SHARED_INFO_EVTCHN_UNMASK SharedInfoEvtchnUnmask,
        shared_info_get_time: SharedInfoGetTimeFn => XENBUS_SHARED_INFO_GET_TIME SharedInfoGetTime,
    }
}

vtable! {
    /// XENBUS_SHARED_INFO version 4: adds `UpcallSupported` before `UpcallPending`.
    pub struct SharedInfoInterfaceV4 = XENBUS_SHARED_INFO_INTERFACE_V4,
        guid GUID_XENBUS_SHARED_INFO_INTERFACE, version 4, size 104 {
        shared_info_acquire: SharedInfoAcquireFn => XENBUS_SHARED_INFO_ACQUIRE SharedInfoAcquire,
        shared_info_release: SharedInfoReleaseFn => XENBUS_SHARED_INFO_RELEASE SharedInfoRelease,
        shared_info_upcall_supported: SharedInfoUpcallSupportedFn
            => XENBUS_SHARED_INFO_UPCALL_SUPPORTED SharedInfoUpcallSupported,
        shared_info_upcall_pending: SharedInfoUpcallPendingFn
            => XENBUS_SHARED_INFO_UPCALL_PENDING SharedInfoUpcallPending,
        shared_info_evtchn_poll: SharedInfoEvtchnPollFn
            => XENBUS_SHARED_INFO_EVTCHN_POLL SharedInfoEvtchnPoll,
        shared_info_evtchn_ack: SharedInfoEvtchnAckFn
            => XENBUS_SHARED_INFO_EVTCHN_ACK SharedInfoEvtchnAck,
        shared_info_evtchn_mask: SharedInfoEvtchnMaskFn
            => XENBUS_SHARED_INFO_EVTCHN_MASK SharedInfoEvtchnMask,
        shared_info_evtchn_unmask: SharedInfoEvtchnUnmaskFn
            => XENBUS_SHARED_INFO_EVTCHN_UNMASK SharedInfoEvtchnUnmask,
        shared_info_get_time: SharedInfoGetTimeFn => XENBUS_SHARED_INFO_GET_TIME SharedInfoGetTime,
    }
}

/// The latest version.
pub type SharedInfoInterface = SharedInfoInterfaceV4;

/// C description of `shared_info_interface.h`.
pub const C_HEADER: CHeader = CHeader {
    file: "shared_info_interface.h",
    guard: "_XENBUS_SHARED_INFO_INTERFACE_H",
    description: "XENBUS_SHARED_INFO interface (upcalls, 2-level event words, wallclock)",
    includes: &[],
    items: &[
        CItem::FnTypedef(&XENBUS_SHARED_INFO_ACQUIRE),
        CItem::FnTypedef(&XENBUS_SHARED_INFO_RELEASE),
        CItem::FnTypedef(&XENBUS_SHARED_INFO_UPCALL_SUPPORTED),
        CItem::FnTypedef(&XENBUS_SHARED_INFO_UPCALL_PENDING),
        CItem::FnTypedef(&XENBUS_SHARED_INFO_EVENT),
        CItem::FnTypedef(&XENBUS_SHARED_INFO_EVTCHN_POLL),
        CItem::FnTypedef(&XENBUS_SHARED_INFO_EVTCHN_ACK),
        CItem::FnTypedef(&XENBUS_SHARED_INFO_EVTCHN_MASK),
        CItem::FnTypedef(&XENBUS_SHARED_INFO_EVTCHN_UNMASK),
        CItem::FnTypedef(&XENBUS_SHARED_INFO_GET_TIME_V2),
        CItem::FnTypedef(&XENBUS_SHARED_INFO_GET_TIME),
        CItem::Guid(
            "GUID_XENBUS_SHARED_INFO_INTERFACE",
            GUID_XENBUS_SHARED_INFO_INTERFACE,
        ),
        CItem::Vtable(&SharedInfoInterfaceV2::C),
        CItem::Vtable(&SharedInfoInterfaceV3::C),
        CItem::Vtable(&SharedInfoInterfaceV4::C),
    ],
    latest: "XENBUS_SHARED_INFO_INTERFACE_V4",
    alias: "XENBUS_SHARED_INFO_INTERFACE",
    method_macro: ("XENBUS_SHARED_INFO", "SharedInfo"),
    version_prefix: "XENBUS_SHARED_INFO_INTERFACE_VERSION",
    versions: (
        XENBUS_SHARED_INFO_INTERFACE_VERSION_MIN,
        XENBUS_SHARED_INFO_INTERFACE_VERSION_MAX,
    ),
};
