//! `event_channel.h`: `EVTCHNOP_*` operations, channel status, and the FIFO ABI's event words
//! and per-vCPU control block.

use super::abi::AbiConstant;
use super::xen::{DomId, Virq, XEN_ULONG_BITS};
use crate::{abi_constants, abi_structs, open_enum};

/// An event channel port (`evtchn_port_t`).
pub type EvtchnPort = u32;

open_enum! {
    /// `event_channel_op` sub-operation (`EVTCHNOP_*`).
    pub struct EvtchnOp(u32) {
        /// Connect to a remote domain's unbound port.
        BIND_INTERDOMAIN = 0 => "EVTCHNOP_bind_interdomain",
        /// Bind a VIRQ on a vCPU.
        BIND_VIRQ = 1 => "EVTCHNOP_bind_virq",
        /// Bind a physical IRQ.
        BIND_PIRQ = 2 => "EVTCHNOP_bind_pirq",
        /// Close a port.
        CLOSE = 3 => "EVTCHNOP_close",
        /// Notify the remote end.
        SEND = 4 => "EVTCHNOP_send",
        /// Query a port.
        STATUS = 5 => "EVTCHNOP_status",
        /// Allocate a port a remote domain can bind to.
        ALLOC_UNBOUND = 6 => "EVTCHNOP_alloc_unbound",
        /// Bind an inter-processor channel.
        BIND_IPI = 7 => "EVTCHNOP_bind_ipi",
        /// Re-target a port's notifications to a vCPU.
        BIND_VCPU = 8 => "EVTCHNOP_bind_vcpu",
        /// Unmask a port (re-raising it if pending).
        UNMASK = 9 => "EVTCHNOP_unmask",
        /// Close every port of a domain (and leave the FIFO ABI).
        RESET = 10 => "EVTCHNOP_reset",
        /// Switch to the FIFO ABI: register a vCPU's control block.
        INIT_CONTROL = 11 => "EVTCHNOP_init_control",
        /// FIFO ABI: add an event array page.
        EXPAND_ARRAY = 12 => "EVTCHNOP_expand_array",
        /// FIFO ABI: set a port's priority.
        SET_PRIORITY = 13 => "EVTCHNOP_set_priority",
    }
}

open_enum! {
    /// `evtchn_status.status` (`EVTCHNSTAT_*`).
    pub struct EvtchnStatusKind(u32) {
        /// Not in use.
        CLOSED = 0 => "EVTCHNSTAT_closed",
        /// Allocated, waiting for a remote domain to bind.
        UNBOUND = 1 => "EVTCHNSTAT_unbound",
        /// Connected to a remote domain.
        INTERDOMAIN = 2 => "EVTCHNSTAT_interdomain",
        /// Bound to a physical IRQ.
        PIRQ = 3 => "EVTCHNSTAT_pirq",
        /// Bound to a VIRQ.
        VIRQ = 4 => "EVTCHNSTAT_virq",
        /// Bound to an IPI.
        IPI = 5 => "EVTCHNSTAT_ipi",
    }
}

/// `BIND_PIRQ__WILL_SHARE`: the physical IRQ may be shared.
pub const BIND_PIRQ_WILL_SHARE: u32 = 1;

/// Number of ports of the 2-level ABI (`EVTCHN_2L_NR_CHANNELS`).
pub const EVTCHN_2L_NR_CHANNELS: u32 = (XEN_ULONG_BITS * XEN_ULONG_BITS) as u32;

abi_structs! {
    /// `EVTCHNOP_alloc_unbound`.
    #[c("struct evtchn_alloc_unbound", size = 8, align = 4)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct EvtchnAllocUnbound {
        /// IN: the allocating domain ([`DomId::SELF`]).
        @0 pub dom: DomId,
        /// IN: the domain allowed to bind.
        @2 pub remote_dom: DomId,
        /// OUT: the new port.
        @4 pub port: EvtchnPort,
    }

    /// `EVTCHNOP_bind_interdomain`.
    #[c("struct evtchn_bind_interdomain", size = 12, align = 4)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct EvtchnBindInterdomain {
        /// IN: the remote domain.
        @0 pub remote_dom: DomId,
        /// IN: its unbound port.
        @4 pub remote_port: EvtchnPort,
        /// OUT: the local port.
        @8 pub local_port: EvtchnPort,
    }

    /// `EVTCHNOP_bind_virq`.
    #[c("struct evtchn_bind_virq", size = 12, align = 4)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct EvtchnBindVirq {
        /// IN: the VIRQ.
        @0 pub virq: Virq,
        /// IN: the vCPU.
        @4 pub vcpu: u32,
        /// OUT: the port.
        @8 pub port: EvtchnPort,
    }

    /// `EVTCHNOP_bind_pirq`.
    #[c("struct evtchn_bind_pirq", size = 12, align = 4)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct EvtchnBindPirq {
        /// IN: the physical IRQ.
        @0 pub pirq: u32,
        /// IN: [`BIND_PIRQ_WILL_SHARE`].
        @4 pub flags: u32,
        /// OUT: the port.
        @8 pub port: EvtchnPort,
    }

    /// `EVTCHNOP_bind_ipi`.
    #[c("struct evtchn_bind_ipi", size = 8, align = 4)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct EvtchnBindIpi {
        /// IN: the vCPU notified.
        @0 pub vcpu: u32,
        /// OUT: the port.
        @4 pub port: EvtchnPort,
    }

    /// `EVTCHNOP_close`.
    #[c("struct evtchn_close", size = 4, align = 4)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct EvtchnClose {
        /// IN: the port.
        @0 pub port: EvtchnPort,
    }

    /// `EVTCHNOP_send`.
    #[c("struct evtchn_send", size = 4, align = 4)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct EvtchnSend {
        /// IN: the local port to notify through.
        @0 pub port: EvtchnPort,
    }

    /// `EVTCHNOP_status`. `u` is a C union; read it with the accessors of [`EvtchnStatus`].
    #[c("struct evtchn_status", size = 24, align = 4)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct EvtchnStatus {
        /// IN: the domain ([`DomId::SELF`]).
        @0 pub dom: DomId,
        /// IN: the port.
        @4 pub port: EvtchnPort,
        /// OUT: [`EvtchnStatusKind`].
        @8 pub status: EvtchnStatusKind,
        /// OUT: the vCPU notified.
        @12 pub vcpu: u32,
        /// OUT: union `{ unbound.dom; interdomain.{dom, port}; pirq; virq }`, as two words.
        @16 pub u: [u32; 2],
    }

    /// `EVTCHNOP_bind_vcpu`.
    #[c("struct evtchn_bind_vcpu", size = 8, align = 4)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct EvtchnBindVcpu {
        /// IN: the port.
        @0 pub port: EvtchnPort,
        /// IN: the vCPU to notify.
        @4 pub vcpu: u32,
    }

    /// `EVTCHNOP_unmask`.
    #[c("struct evtchn_unmask", size = 4, align = 4)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct EvtchnUnmask {
        /// IN: the port.
        @0 pub port: EvtchnPort,
    }

    /// `EVTCHNOP_reset`.
    #[c("struct evtchn_reset", size = 2, align = 2)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct EvtchnReset {
        /// IN: the domain ([`DomId::SELF`]).
        @0 pub dom: DomId,
    }

    /// `EVTCHNOP_init_control` (FIFO ABI).
    #[c("struct evtchn_init_control", size = 24, align = 8)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct EvtchnInitControl {
        /// IN: frame holding the control block.
        @0 pub control_gfn: u64,
        /// IN: byte offset of the control block in that frame.
        @8 pub offset: u32,
        /// IN: the vCPU.
        @12 pub vcpu: u32,
        /// OUT: number of link bits ([`EVTCHN_FIFO_LINK_BITS`]).
        @16 pub link_bits: u8,
        /// Padding.
        @17 pub _pad: [u8; 7],
    }

    /// `EVTCHNOP_expand_array` (FIFO ABI).
    #[c("struct evtchn_expand_array", size = 8, align = 8)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct EvtchnExpandArray {
        /// IN: frame of the new event array page.
        @0 pub array_gfn: u64,
    }

    /// `EVTCHNOP_set_priority` (FIFO ABI).
    #[c("struct evtchn_set_priority", size = 8, align = 4)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct EvtchnSetPriority {
        /// IN: the port.
        @0 pub port: EvtchnPort,
        /// IN: 0 (highest) ..= 15.
        @4 pub priority: u32,
    }

    /// The pre-3.2 `event_channel_op_compat` argument: a command and the union of the
    /// argument structs (the largest, [`EvtchnStatus`], is 24 bytes).
    #[c("struct evtchn_op", size = 28, align = 4)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct EvtchnOpCompat {
        /// [`EvtchnOp`] value.
        @0 pub cmd: EvtchnOp,
        /// The operation's argument struct, as words.
        @4 pub u: [u32; 6],
    }

    /// Per-vCPU FIFO control block: `ready` has one bit per non-empty queue, `head[q]` the first
    /// port of queue `q` (written by Xen when it links an event into an empty queue).
    #[c("struct evtchn_fifo_control_block", size = 72, align = 4)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct EvtchnFifoControlBlock {
        /// Bit `q` set: queue `q` may hold events.
        @0 pub ready: u32,
        /// Reserved.
        @4 pub _rsvd: u32,
        /// Head port of each priority queue.
        @8 pub head: [u32; EVTCHN_FIFO_MAX_QUEUES],
    }
}

impl EvtchnStatus {
    /// `u.unbound.dom`: the domain allowed to bind (status `UNBOUND`).
    pub const fn unbound_dom(&self) -> DomId {
        DomId((self.u[0] & 0xFFFF) as u16)
    }

    /// `u.interdomain.{dom, port}` (status `INTERDOMAIN`).
    pub const fn interdomain(&self) -> (DomId, EvtchnPort) {
        (DomId((self.u[0] & 0xFFFF) as u16), self.u[1])
    }

    /// `u.pirq` (status `PIRQ`).
    pub const fn pirq(&self) -> u32 {
        self.u[0]
    }

    /// `u.virq` (status `VIRQ`).
    pub const fn virq(&self) -> Virq {
        Virq(self.u[0])
    }

    /// Fills `u.unbound` (the union is cleared first, as Xen does).
    pub fn set_unbound(&mut self, dom: DomId) {
        self.u = [u32::from(dom.0), 0];
    }

    /// Fills `u.interdomain`.
    pub fn set_interdomain(&mut self, dom: DomId, port: EvtchnPort) {
        self.u = [u32::from(dom.0), port];
    }

    /// Fills `u.pirq`.
    pub fn set_pirq(&mut self, pirq: u32) {
        self.u = [pirq, 0];
    }

    /// Fills `u.virq`.
    pub fn set_virq(&mut self, virq: Virq) {
        self.u = [virq.0, 0];
    }
}

/// Highest FIFO priority (`EVTCHN_FIFO_PRIORITY_MAX`).
pub const EVTCHN_FIFO_PRIORITY_MAX: u32 = 0;
/// Default FIFO priority (`EVTCHN_FIFO_PRIORITY_DEFAULT`).
pub const EVTCHN_FIFO_PRIORITY_DEFAULT: u32 = 7;
/// Lowest FIFO priority (`EVTCHN_FIFO_PRIORITY_MIN`).
pub const EVTCHN_FIFO_PRIORITY_MIN: u32 = 15;
/// Number of FIFO priority queues per vCPU (`EVTCHN_FIFO_MAX_QUEUES`).
pub const EVTCHN_FIFO_MAX_QUEUES: usize = EVTCHN_FIFO_PRIORITY_MIN as usize + 1;

/// A FIFO event word (`event_word_t`): flag bits 28..32 ([`EventWordFlags`]) and a 17-bit link
/// to the next port of the queue.
pub type EventWord = u32;

/// Bit number of `PENDING` in an event word (`EVTCHN_FIFO_PENDING`).
pub const EVTCHN_FIFO_PENDING: u32 = 31;
/// Bit number of `MASKED` (`EVTCHN_FIFO_MASKED`).
pub const EVTCHN_FIFO_MASKED: u32 = 30;
/// Bit number of `LINKED` (`EVTCHN_FIFO_LINKED`).
pub const EVTCHN_FIFO_LINKED: u32 = 29;
/// Bit number of `BUSY` (`EVTCHN_FIFO_BUSY`).
pub const EVTCHN_FIFO_BUSY: u32 = 28;
/// Width of the link field (`EVTCHN_FIFO_LINK_BITS`).
pub const EVTCHN_FIFO_LINK_BITS: u32 = 17;
/// Mask of the link field (`EVTCHN_FIFO_LINK_MASK`).
pub const EVTCHN_FIFO_LINK_MASK: u32 = (1 << EVTCHN_FIFO_LINK_BITS) - 1;
/// Number of ports of the FIFO ABI (`EVTCHN_FIFO_NR_CHANNELS`).
pub const EVTCHN_FIFO_NR_CHANNELS: u32 = 1 << EVTCHN_FIFO_LINK_BITS;
/// Event words per 4 KiB event array page.
pub const EVTCHN_FIFO_EVENT_WORDS_PER_PAGE: u32 = 4096 / core::mem::size_of::<EventWord>() as u32;

bitflags::bitflags! {
    /// Flag bits of a FIFO [`EventWord`]; the low 17 bits are the link (kept as unknown bits).
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    pub struct EventWordFlags: u32 {
        /// The event is pending.
        const PENDING = 1 << EVTCHN_FIFO_PENDING;
        /// The event is masked.
        const MASKED = 1 << EVTCHN_FIFO_MASKED;
        /// The event is linked into a queue.
        const LINKED = 1 << EVTCHN_FIFO_LINKED;
        /// The guest is unlinking the event (Xen must not re-link it yet).
        const BUSY = 1 << EVTCHN_FIFO_BUSY;
        // The link field.
        const _ = EVTCHN_FIFO_LINK_MASK;
    }
}

/// The link field of an event word: the next port in the queue (0 = end).
pub const fn event_word_link(word: EventWord) -> EvtchnPort {
    word & EVTCHN_FIFO_LINK_MASK
}

/// Every constant of `event_channel.h`, for the C conformance probe.
pub const CONSTANTS: &[&[AbiConstant]] = &[
    EvtchnOp::C_CONSTANTS,
    EvtchnStatusKind::C_CONSTANTS,
    abi_constants![
        "BIND_PIRQ__WILL_SHARE" => BIND_PIRQ_WILL_SHARE,
        "EVTCHN_2L_NR_CHANNELS" => EVTCHN_2L_NR_CHANNELS,
        "EVTCHN_FIFO_PRIORITY_MAX" => EVTCHN_FIFO_PRIORITY_MAX,
        "EVTCHN_FIFO_PRIORITY_DEFAULT" => EVTCHN_FIFO_PRIORITY_DEFAULT,
        "EVTCHN_FIFO_PRIORITY_MIN" => EVTCHN_FIFO_PRIORITY_MIN,
        "EVTCHN_FIFO_MAX_QUEUES" => EVTCHN_FIFO_MAX_QUEUES,
        "EVTCHN_FIFO_PENDING" => EVTCHN_FIFO_PENDING,
        "EVTCHN_FIFO_MASKED" => EVTCHN_FIFO_MASKED,
        "EVTCHN_FIFO_LINKED" => EVTCHN_FIFO_LINKED,
        "EVTCHN_FIFO_BUSY" => EVTCHN_FIFO_BUSY,
        "EVTCHN_FIFO_LINK_BITS" => EVTCHN_FIFO_LINK_BITS,
        "EVTCHN_FIFO_LINK_MASK" => EVTCHN_FIFO_LINK_MASK,
        "EVTCHN_FIFO_NR_CHANNELS" => EVTCHN_FIFO_NR_CHANNELS,
        "sizeof(evtchn_port_t)" => core::mem::size_of::<EvtchnPort>(),
        "sizeof(event_word_t)" => core::mem::size_of::<EventWord>(),
    ],
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_union_round_trips() {
        let mut status = EvtchnStatus::default();
        status.set_interdomain(DomId(7), 42);
        assert_eq!(status.interdomain(), (DomId(7), 42));
        status.set_unbound(DomId(3));
        assert_eq!(status.unbound_dom(), DomId(3));
        assert_eq!(status.u[1], 0);
        status.set_virq(Virq::DEBUG);
        assert_eq!(status.virq(), Virq::DEBUG);
        status.set_pirq(9);
        assert_eq!(status.pirq(), 9);
    }

    #[test]
    fn event_word_fields() {
        let word = EventWordFlags::PENDING.bits() | EventWordFlags::LINKED.bits() | 0x1_2345;
        let flags = EventWordFlags::from_bits_retain(word);
        assert!(flags.contains(EventWordFlags::PENDING | EventWordFlags::LINKED));
        assert!(!flags.contains(EventWordFlags::MASKED));
        assert_eq!(event_word_link(word), 0x1_2345);
        assert_eq!(EVTCHN_FIFO_LINK_MASK, 0x1_FFFF);
        assert_eq!(EVTCHN_FIFO_EVENT_WORDS_PER_PAGE, 1024);
    }
}
