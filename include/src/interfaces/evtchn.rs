//! XENBUS_EVTCHN (`evtchn_interface.h`): event channels for child drivers.
//!
//! `EvtchnOpen` is C-variadic; its tail depends on the type:
//! FIXED `(ULONG LocalPort, BOOLEAN Mask)`, UNBOUND `(USHORT RemoteDomain, BOOLEAN Mask)`,
//! INTER_DOMAIN `(USHORT RemoteDomain, ULONG RemotePort, BOOLEAN Mask)`, VIRQ
//! `(ULONG Index)` before version 9 and `(ULONG Index, USHORT Group, UCHAR Number)` from 9.
//! Each variadic argument occupies one 8-byte slot (Win64); a provider reads them with
//! [`crate::variadic::VaList`].

use super::cmeta::{CHeader, CItem};
use super::{Boolean, Guid, KServiceRoutine, LargeInteger, NtStatus, PInterface};
use crate::variadic::VaList;
use core::ffi::c_void;

/// `GUID_XENBUS_EVTCHN_INTERFACE` `{BE2440AC-1098-4150-AF4D-452FADCEF923}`.
pub const GUID_XENBUS_EVTCHN_INTERFACE: Guid =
    Guid::from_u128(0xBE2440AC_1098_4150_AF4D_452FADCEF923);
/// Oldest version served.
pub const XENBUS_EVTCHN_INTERFACE_VERSION_MIN: u16 = 5;
/// Newest version served.
pub const XENBUS_EVTCHN_INTERFACE_VERSION_MAX: u16 = 9;
/// First version whose VIRQ `Open` tail carries `(Index, Group, Number)`.
pub const XENBUS_EVTCHN_VIRQ_GROUP_NUMBER_VERSION: u16 = 9;

c_open_enum! {
    /// The kind of channel `EvtchnOpen` creates.
    pub struct EvtchnType = XENBUS_EVTCHN_TYPE, ptr {
        /// Not a valid type.
        INVALID = 0 => XENBUS_EVTCHN_TYPE_INVALID,
        /// An already-bound local port.
        FIXED = 1 => XENBUS_EVTCHN_TYPE_FIXED,
        /// A new unbound port for a remote domain.
        UNBOUND = 2 => XENBUS_EVTCHN_TYPE_UNBOUND,
        /// A port bound to a remote domain's port.
        INTER_DOMAIN = 3 => XENBUS_EVTCHN_TYPE_INTER_DOMAIN,
        /// A virtual IRQ.
        VIRQ = 4 => XENBUS_EVTCHN_TYPE_VIRQ,
    }
}

opaque! {
    /// An open event channel.
    pub struct EvtchnChannel = XENBUS_EVTCHN_CHANNEL;
}

c_fn_types! {
    /// Takes a reference.
    pub type EvtchnAcquireFn = XENBUS_EVTCHN_ACQUIRE
        fn(interface: PInterface => "_In_ PINTERFACE Interface") -> NtStatus => "NTSTATUS";
    /// Drops a reference.
    pub type EvtchnReleaseFn = XENBUS_EVTCHN_RELEASE
        fn(interface: PInterface => "_In_ PINTERFACE Interface") => "VOID";
    /// Opens a channel (C-variadic; see the module docs). NULL on failure.
    pub type EvtchnOpenFn = XENBUS_EVTCHN_OPEN
        fn(
            interface: PInterface => "_In_ PINTERFACE         Interface",
            type_: EvtchnType => "_In_ XENBUS_EVTCHN_TYPE Type",
            function: KServiceRoutine => "_In_ PKSERVICE_ROUTINE  Function",
            argument: *mut c_void => "_In_opt_ PVOID          Argument";
            ...
        ) -> *mut EvtchnChannel => "PXENBUS_EVTCHN_CHANNEL";
    /// Moves delivery of `channel` to processor (`group`, `number`).
    pub type EvtchnBindFn = XENBUS_EVTCHN_BIND
        fn(
            interface: PInterface => "_In_ PINTERFACE             Interface",
            channel: *mut EvtchnChannel => "_In_ PXENBUS_EVTCHN_CHANNEL Channel",
            group: u16 => "_In_ USHORT                 Group",
            number: u8 => "_In_ UCHAR                  Number"
        ) -> NtStatus => "NTSTATUS";
    /// Unmasks (V5–V7; behaves as `Force` = TRUE).
    pub type EvtchnUnmaskV4Fn = XENBUS_EVTCHN_UNMASK_V4
        fn(
            interface: PInterface => "_In_ PINTERFACE             Interface",
            channel: *mut EvtchnChannel => "_In_ PXENBUS_EVTCHN_CHANNEL Channel",
            in_callback: Boolean => "_In_ BOOLEAN                InCallback"
        ) => "VOID";
    /// Unmasks (V8+); TRUE when an event is pending that the caller must handle.
    pub type EvtchnUnmaskFn = XENBUS_EVTCHN_UNMASK
        fn(
            interface: PInterface => "_In_ PINTERFACE             Interface",
            channel: *mut EvtchnChannel => "_In_ PXENBUS_EVTCHN_CHANNEL Channel",
            in_callback: Boolean => "_In_ BOOLEAN                InCallback",
            force: Boolean => "_In_ BOOLEAN                Force"
        ) -> Boolean => "BOOLEAN";
    /// Notifies the remote end (V5; raises to DISPATCH_LEVEL itself).
    pub type EvtchnSendV1Fn = XENBUS_EVTCHN_SEND_V1
        fn(
            interface: PInterface => "_In_ PINTERFACE             Interface",
            channel: *mut EvtchnChannel => "_In_ PXENBUS_EVTCHN_CHANNEL Channel"
        ) => "VOID";
    /// Notifies the remote end (V6+; caller at DISPATCH_LEVEL or above).
    pub type EvtchnSendFn = XENBUS_EVTCHN_SEND
        fn(
            interface: PInterface => "_In_ PINTERFACE             Interface",
            channel: *mut EvtchnChannel => "_In_ PXENBUS_EVTCHN_CHANNEL Channel"
        ) => "VOID";
    /// Injects a local event (no hypercall).
    pub type EvtchnTriggerFn = XENBUS_EVTCHN_TRIGGER
        fn(
            interface: PInterface => "_In_ PINTERFACE             Interface",
            channel: *mut EvtchnChannel => "_In_ PXENBUS_EVTCHN_CHANNEL Channel"
        ) => "VOID";
    /// Events received since open (V7+).
    pub type EvtchnGetCountFn = XENBUS_EVTCHN_GET_COUNT
        fn(
            interface: PInterface => "_In_ PINTERFACE             Interface",
            channel: *mut EvtchnChannel => "_In_ PXENBUS_EVTCHN_CHANNEL Channel"
        ) -> u32 => "ULONG";
    /// Waits for the count to reach count+1 (V5/V6).
    pub type EvtchnWaitV5Fn = XENBUS_EVTCHN_WAIT_V5
        fn(
            interface: PInterface => "_In_ PINTERFACE             Interface",
            channel: *mut EvtchnChannel => "_In_ PXENBUS_EVTCHN_CHANNEL Channel",
            timeout: *mut LargeInteger => "_In_opt_ PLARGE_INTEGER     Timeout"
        ) -> NtStatus => "NTSTATUS";
    /// Waits for the count to reach `count` (V7+).
    pub type EvtchnWaitFn = XENBUS_EVTCHN_WAIT
        fn(
            interface: PInterface => "_In_ PINTERFACE             Interface",
            channel: *mut EvtchnChannel => "_In_ PXENBUS_EVTCHN_CHANNEL Channel",
            count: u32 => "_In_ ULONG                  Count",
            timeout: *mut LargeInteger => "_In_opt_ PLARGE_INTEGER     Timeout"
        ) -> NtStatus => "NTSTATUS";
    /// The local port number.
    pub type EvtchnGetPortFn = XENBUS_EVTCHN_GET_PORT
        fn(
            interface: PInterface => "_In_ PINTERFACE             Interface",
            channel: *mut EvtchnChannel => "_In_ PXENBUS_EVTCHN_CHANNEL Channel"
        ) -> u32 => "ULONG";
    /// Closes the channel.
    pub type EvtchnCloseFn = XENBUS_EVTCHN_CLOSE
        fn(
            interface: PInterface => "_In_ PINTERFACE             Interface",
            channel: *mut EvtchnChannel => "_In_ PXENBUS_EVTCHN_CHANNEL Channel"
        ) => "VOID";
}

vtable! {
    /// XENBUS_EVTCHN version 5.
    pub struct EvtchnInterfaceV5 = XENBUS_EVTCHN_INTERFACE_V5,
        guid GUID_XENBUS_EVTCHN_INTERFACE, version 5, size 112 {
        evtchn_acquire: EvtchnAcquireFn => XENBUS_EVTCHN_ACQUIRE EvtchnAcquire,
        evtchn_release: EvtchnReleaseFn => XENBUS_EVTCHN_RELEASE EvtchnRelease,
        evtchn_open: EvtchnOpenFn => XENBUS_EVTCHN_OPEN EvtchnOpen,
        evtchn_bind: EvtchnBindFn => XENBUS_EVTCHN_BIND EvtchnBind,
        evtchn_unmask_version4: EvtchnUnmaskV4Fn => XENBUS_EVTCHN_UNMASK_V4 EvtchnUnmaskVersion4,
        evtchn_send_version1: EvtchnSendV1Fn => XENBUS_EVTCHN_SEND_V1 EvtchnSendVersion1,
        evtchn_trigger: EvtchnTriggerFn => XENBUS_EVTCHN_TRIGGER EvtchnTrigger,
        evtchn_wait_version5: EvtchnWaitV5Fn => XENBUS_EVTCHN_WAIT_V5 EvtchnWaitVersion5,
        evtchn_get_port: EvtchnGetPortFn => XENBUS_EVTCHN_GET_PORT EvtchnGetPort,
        evtchn_close: EvtchnCloseFn => XENBUS_EVTCHN_CLOSE EvtchnClose,
    }
}

vtable! {
    /// XENBUS_EVTCHN version 6: `Send` no longer raises IRQL.
    pub struct EvtchnInterfaceV6 = XENBUS_EVTCHN_INTERFACE_V6,
        guid GUID_XENBUS_EVTCHN_INTERFACE, version 6, size 112 {
        evtchn_acquire: EvtchnAcquireFn => XENBUS_EVTCHN_ACQUIRE EvtchnAcquire,
        evtchn_release: EvtchnReleaseFn => XENBUS_EVTCHN_RELEASE EvtchnRelease,
        evtchn_open: EvtchnOpenFn => XENBUS_EVTCHN_OPEN EvtchnOpen,
        evtchn_bind: EvtchnBindFn => XENBUS_EVTCHN_BIND EvtchnBind,
        evtchn_unmask_version4: EvtchnUnmaskV4Fn => XENBUS_EVTCHN_UNMASK_V4 EvtchnUnmaskVersion4,
        evtchn_send: EvtchnSendFn => XENBUS_EVTCHN_SEND EvtchnSend,
        evtchn_trigger: EvtchnTriggerFn => XENBUS_EVTCHN_TRIGGER EvtchnTrigger,
        evtchn_wait_version5: EvtchnWaitV5Fn => XENBUS_EVTCHN_WAIT_V5 EvtchnWaitVersion5,
        evtchn_get_port: EvtchnGetPortFn => XENBUS_EVTCHN_GET_PORT EvtchnGetPort,
        evtchn_close: EvtchnCloseFn => XENBUS_EVTCHN_CLOSE EvtchnClose,
    }
}

vtable! {
    /// XENBUS_EVTCHN version 7: `GetCount` and `Wait(Count)`.
    pub struct EvtchnInterfaceV7 = XENBUS_EVTCHN_INTERFACE_V7,
        guid GUID_XENBUS_EVTCHN_INTERFACE, version 7, size 120 {
        evtchn_acquire: EvtchnAcquireFn => XENBUS_EVTCHN_ACQUIRE EvtchnAcquire,
        evtchn_release: EvtchnReleaseFn => XENBUS_EVTCHN_RELEASE EvtchnRelease,
        evtchn_open: EvtchnOpenFn => XENBUS_EVTCHN_OPEN EvtchnOpen,
        evtchn_bind: EvtchnBindFn => XENBUS_EVTCHN_BIND EvtchnBind,
        evtchn_unmask_version4: EvtchnUnmaskV4Fn => XENBUS_EVTCHN_UNMASK_V4 EvtchnUnmaskVersion4,
        evtchn_send: EvtchnSendFn => XENBUS_EVTCHN_SEND EvtchnSend,
        evtchn_trigger: EvtchnTriggerFn => XENBUS_EVTCHN_TRIGGER EvtchnTrigger,
        evtchn_get_count: EvtchnGetCountFn => XENBUS_EVTCHN_GET_COUNT EvtchnGetCount,
        evtchn_wait: EvtchnWaitFn => XENBUS_EVTCHN_WAIT EvtchnWait,
        evtchn_get_port: EvtchnGetPortFn => XENBUS_EVTCHN_GET_PORT EvtchnGetPort,
        evtchn_close: EvtchnCloseFn => XENBUS_EVTCHN_CLOSE EvtchnClose,
    }
}

vtable! {
    /// XENBUS_EVTCHN version 8: `Unmask(InCallback, Force) -> BOOLEAN`.
    pub struct EvtchnInterfaceV8 = XENBUS_EVTCHN_INTERFACE_V8,
        guid GUID_XENBUS_EVTCHN_INTERFACE, version 8, size 120 {
        evtchn_acquire: EvtchnAcquireFn => XENBUS_EVTCHN_ACQUIRE EvtchnAcquire,
        evtchn_release: EvtchnReleaseFn => XENBUS_EVTCHN_RELEASE EvtchnRelease,
        evtchn_open: EvtchnOpenFn => XENBUS_EVTCHN_OPEN EvtchnOpen,
        evtchn_bind: EvtchnBindFn => XENBUS_EVTCHN_BIND EvtchnBind,
        evtchn_unmask: EvtchnUnmaskFn => XENBUS_EVTCHN_UNMASK EvtchnUnmask,
        evtchn_send: EvtchnSendFn => XENBUS_EVTCHN_SEND EvtchnSend,
        evtchn_trigger: EvtchnTriggerFn => XENBUS_EVTCHN_TRIGGER EvtchnTrigger,
        evtchn_get_count: EvtchnGetCountFn => XENBUS_EVTCHN_GET_COUNT EvtchnGetCount,
        evtchn_wait: EvtchnWaitFn => XENBUS_EVTCHN_WAIT EvtchnWait,
        evtchn_get_port: EvtchnGetPortFn => XENBUS_EVTCHN_GET_PORT EvtchnGetPort,
        evtchn_close: EvtchnCloseFn => XENBUS_EVTCHN_CLOSE EvtchnClose,
    }
}

vtable! {
    /// XENBUS_EVTCHN version 9: layout of V8; VIRQ `Open` takes `(Index, Group, Number)`.
    pub struct EvtchnInterfaceV9 = XENBUS_EVTCHN_INTERFACE_V9,
        guid GUID_XENBUS_EVTCHN_INTERFACE, version 9, size 120 {
        evtchn_acquire: EvtchnAcquireFn => XENBUS_EVTCHN_ACQUIRE EvtchnAcquire,
        evtchn_release: EvtchnReleaseFn => XENBUS_EVTCHN_RELEASE EvtchnRelease,
        evtchn_open: EvtchnOpenFn => XENBUS_EVTCHN_OPEN EvtchnOpen,
        evtchn_bind: EvtchnBindFn => XENBUS_EVTCHN_BIND EvtchnBind,
        evtchn_unmask: EvtchnUnmaskFn => XENBUS_EVTCHN_UNMASK EvtchnUnmask,
        evtchn_send: EvtchnSendFn => XENBUS_EVTCHN_SEND EvtchnSend,
        evtchn_trigger: EvtchnTriggerFn => XENBUS_EVTCHN_TRIGGER EvtchnTrigger,
        evtchn_get_count: EvtchnGetCountFn => XENBUS_EVTCHN_GET_COUNT EvtchnGetCount,
        evtchn_wait: EvtchnWaitFn => XENBUS_EVTCHN_WAIT EvtchnWait,
        evtchn_get_port: EvtchnGetPortFn => XENBUS_EVTCHN_GET_PORT EvtchnGetPort,
        evtchn_close: EvtchnCloseFn => XENBUS_EVTCHN_CLOSE EvtchnClose,
    }
}

/// The decoded variadic tail of `EvtchnOpen`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EvtchnOpenArgs {
    /// FIXED `(ULONG LocalPort, BOOLEAN Mask)`.
    Fixed {
        /// The already-bound local port.
        local_port: u32,
        /// Auto-mask before invoking the callback.
        mask: bool,
    },
    /// UNBOUND `(USHORT RemoteDomain, BOOLEAN Mask)`.
    Unbound {
        /// The domain allowed to bind.
        remote_domain: u16,
        /// Auto-mask before invoking the callback.
        mask: bool,
    },
    /// INTER_DOMAIN `(USHORT RemoteDomain, ULONG RemotePort, BOOLEAN Mask)`.
    InterDomain {
        /// The remote domain.
        remote_domain: u16,
        /// The remote domain's port.
        remote_port: u32,
        /// Auto-mask before invoking the callback.
        mask: bool,
    },
    /// VIRQ `(ULONG Index)` before version 9, `(ULONG Index, USHORT Group, UCHAR Number)` from 9.
    Virq {
        /// The VIRQ number.
        index: u32,
        /// Target processor (group, number); `None` for versions before 9.
        processor: Option<(u16, u8)>,
    },
}

impl EvtchnOpenArgs {
    /// How many variadic slots a caller of interface `version` passes for `type_`, or
    /// `None` for an invalid type (the caller's promise cannot be known then, so nothing
    /// may be read).
    pub const fn slot_count(type_: EvtchnType, version: u16) -> Option<usize> {
        match type_ {
            EvtchnType::FIXED | EvtchnType::UNBOUND => Some(2),
            EvtchnType::INTER_DOMAIN => Some(3),
            EvtchnType::VIRQ if version >= XENBUS_EVTCHN_VIRQ_GROUP_NUMBER_VERSION => Some(3),
            EvtchnType::VIRQ => Some(1),
            _ => None,
        }
    }

    /// Decodes the tail for `type_` as passed by a caller of interface `version`. `None` for
    /// an invalid type or when `va` holds fewer slots than the type needs.
    pub fn read(type_: EvtchnType, version: u16, va: &mut VaList<'_>) -> Option<Self> {
        let needed = Self::slot_count(type_, version)?;
        if va.remaining() < needed {
            return None;
        }
        let mask = |va: &mut VaList<'_>| va.arg::<u8>().map(|b| b != 0);
        Some(match type_ {
            EvtchnType::FIXED => EvtchnOpenArgs::Fixed {
                local_port: va.arg()?,
                mask: mask(va)?,
            },
            EvtchnType::UNBOUND => EvtchnOpenArgs::Unbound {
                remote_domain: va.arg()?,
                mask: mask(va)?,
            },
            EvtchnType::INTER_DOMAIN => EvtchnOpenArgs::InterDomain {
                remote_domain: va.arg()?,
                remote_port: va.arg()?,
                mask: mask(va)?,
            },
            _ => {
                let index = va.arg()?;
                let processor = if needed == 3 {
                    Some((va.arg()?, va.arg()?))
                } else {
                    None
                };
                EvtchnOpenArgs::Virq { index, processor }
            }
        })
    }
}

/// The latest version.
pub type EvtchnInterface = EvtchnInterfaceV9;

/// C description of `evtchn_interface.h`.
pub const C_HEADER: CHeader = CHeader {
    file: "evtchn_interface.h",
    guard: "_XENBUS_EVTCHN_INTERFACE_H",
    description: "XENBUS_EVTCHN interface (event channels)",
    includes: &[],
    items: &[
        CItem::Enum(&EvtchnType::C),
        CItem::Opaque(EvtchnChannel::C_NAME),
        CItem::FnTypedef(&XENBUS_EVTCHN_ACQUIRE),
        CItem::FnTypedef(&XENBUS_EVTCHN_RELEASE),
        CItem::FnTypedef(&XENBUS_EVTCHN_OPEN),
        CItem::FnTypedef(&XENBUS_EVTCHN_BIND),
        CItem::FnTypedef(&XENBUS_EVTCHN_UNMASK_V4),
        CItem::FnTypedef(&XENBUS_EVTCHN_UNMASK),
        CItem::FnTypedef(&XENBUS_EVTCHN_SEND_V1),
        CItem::FnTypedef(&XENBUS_EVTCHN_SEND),
        CItem::FnTypedef(&XENBUS_EVTCHN_TRIGGER),
        CItem::FnTypedef(&XENBUS_EVTCHN_GET_COUNT),
        CItem::FnTypedef(&XENBUS_EVTCHN_WAIT_V5),
        CItem::FnTypedef(&XENBUS_EVTCHN_WAIT),
        CItem::FnTypedef(&XENBUS_EVTCHN_GET_PORT),
        CItem::FnTypedef(&XENBUS_EVTCHN_CLOSE),
        CItem::Guid("GUID_XENBUS_EVTCHN_INTERFACE", GUID_XENBUS_EVTCHN_INTERFACE),
        CItem::Vtable(&EvtchnInterfaceV5::C),
        CItem::Vtable(&EvtchnInterfaceV6::C),
        CItem::Vtable(&EvtchnInterfaceV7::C),
        CItem::Vtable(&EvtchnInterfaceV8::C),
        CItem::Vtable(&EvtchnInterfaceV9::C),
    ],
    latest: "XENBUS_EVTCHN_INTERFACE_V9",
    alias: "XENBUS_EVTCHN_INTERFACE",
    method_macro: ("XENBUS_EVTCHN", "Evtchn"),
    version_prefix: "XENBUS_EVTCHN_INTERFACE_VERSION",
    versions: (
        XENBUS_EVTCHN_INTERFACE_VERSION_MIN,
        XENBUS_EVTCHN_INTERFACE_VERSION_MAX,
    ),
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_tails_decode_per_type_and_version() {
        // Upper bits of promoted arguments are garbage on Win64; they must be ignored.
        let g = 0xDEAD_0000_0000_0000u64;
        let slots = [g | 7, g | 1];
        let mut va = VaList::from_slice(&slots);
        assert_eq!(
            EvtchnOpenArgs::read(EvtchnType::FIXED, 9, &mut va),
            Some(EvtchnOpenArgs::Fixed {
                local_port: 7,
                mask: true
            })
        );
        let slots = [g | 0x1_0003, g | 99, g | 0x100];
        let mut va = VaList::from_slice(&slots);
        assert_eq!(
            EvtchnOpenArgs::read(EvtchnType::INTER_DOMAIN, 5, &mut va),
            Some(EvtchnOpenArgs::InterDomain {
                remote_domain: 3,
                remote_port: 99,
                mask: false
            })
        );
        let slots = [2, 1, 5];
        let mut va = VaList::from_slice(&slots);
        assert_eq!(
            EvtchnOpenArgs::read(EvtchnType::VIRQ, 9, &mut va),
            Some(EvtchnOpenArgs::Virq {
                index: 2,
                processor: Some((1, 5))
            })
        );
        let mut va = VaList::from_slice(&slots);
        assert_eq!(
            EvtchnOpenArgs::read(EvtchnType::VIRQ, 8, &mut va),
            Some(EvtchnOpenArgs::Virq {
                index: 2,
                processor: None
            })
        );
        assert_eq!(va.remaining(), 2, "a v8 VIRQ caller passed one slot only");
    }

    #[test]
    fn invalid_types_and_short_tails_are_refused() {
        let slots = [1u64];
        let mut va = VaList::from_slice(&slots);
        assert_eq!(EvtchnOpenArgs::read(EvtchnType::INVALID, 9, &mut va), None);
        assert_eq!(EvtchnOpenArgs::read(EvtchnType(42), 9, &mut va), None);
        assert_eq!(EvtchnOpenArgs::read(EvtchnType::UNBOUND, 9, &mut va), None);
        assert_eq!(va.remaining(), 1, "nothing read from a short tail");
        assert_eq!(EvtchnOpenArgs::slot_count(EvtchnType::UNBOUND, 5), Some(2));
    }
}
