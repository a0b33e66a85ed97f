//! Helpers shared by the scenario tests: hypercalls with typed arguments, and the guest's
//! view of shared info.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};

use common::hypercall::Hypercall;
use xen_sim::hv::abi::*;
use xen_sim::machine::Machine;

/// `-errno` as a hypercall returns it.
pub fn err(e: Errno) -> isize {
    -(e.0 as isize)
}

/// Issue hypercall `op` with sub-op `cmd` and a pointer to `arg`.
pub fn op<T>(m: &Machine, op: HypercallCode, cmd: u32, arg: &mut T) -> isize {
    m.hv.hypercall(op.0, [cmd as usize, arg as *mut T as usize, 0, 0, 0])
}

/// `event_channel_op`.
pub fn evtchn<T>(m: &Machine, cmd: EvtchnOp, arg: &mut T) -> isize {
    op(m, HypercallCode::EVENT_CHANNEL_OP, cmd.0, arg)
}

/// `hvm_op`.
pub fn hvm<T>(m: &Machine, cmd: HvmOp, arg: &mut T) -> isize {
    op(m, HypercallCode::HVM_OP, cmd.0, arg)
}

/// `memory_op`.
pub fn memory<T>(m: &Machine, cmd: MemoryOp, arg: &mut T) -> isize {
    op(m, HypercallCode::MEMORY_OP, cmd.0, arg)
}

/// `sched_op`.
pub fn sched<T>(m: &Machine, cmd: SchedOp, arg: &mut T) -> isize {
    op(m, HypercallCode::SCHED_OP, cmd.0, arg)
}

/// `grant_table_op` on `count` structures.
pub fn gnttab<T>(m: &Machine, cmd: GnttabOp, arg: &mut [T]) -> isize {
    m.hv.hypercall(
        HypercallCode::GRANT_TABLE_OP.0,
        [cmd.0 as usize, arg.as_mut_ptr() as usize, arg.len(), 0, 0],
    )
}

/// `vcpu_op`.
pub fn vcpu<T>(m: &Machine, cmd: VcpuOp, vcpu: u32, arg: &mut T) -> isize {
    m.hv.hypercall(
        HypercallCode::VCPU_OP.0,
        [cmd.0 as usize, vcpu as usize, arg as *mut T as usize, 0, 0],
    )
}

/// `XENMEM_add_to_physmap` for the guest itself.
pub fn add_to_physmap(m: &Machine, space: MapSpace, idx: u64, gpfn: u64) -> isize {
    let mut a = XenAddToPhysmap {
        domid: DomId::SELF,
        size: 0,
        space,
        idx,
        gpfn,
    };
    memory(m, MemoryOp::ADD_TO_PHYSMAP, &mut a)
}

/// Allocate an unbound port for `remote`.
pub fn alloc_unbound(m: &Machine, remote: DomId) -> u32 {
    let mut a = EvtchnAllocUnbound {
        dom: DomId::SELF,
        remote_dom: remote,
        port: 0,
    };
    assert_eq!(evtchn(m, EvtchnOp::ALLOC_UNBOUND, &mut a), 0);
    a.port
}

/// A guest port bound to a new dom0 port: (guest port, dom0 port).
pub fn dom0_channel(m: &Machine) -> (u32, u32) {
    let port = alloc_unbound(m, DomId::DOM0);
    let bport =
        m.hv.backend_bind_interdomain(0, m.hv.domid(), port)
            .unwrap();
    m.hv.backend_take_pending(0);
    (port, bport)
}

/// `EVTCHNOP_send`.
pub fn send(m: &Machine, port: u32) -> isize {
    let mut a = EvtchnSend { port };
    evtchn(m, EvtchnOp::SEND, &mut a)
}

/// `EVTCHNOP_unmask`.
pub fn unmask(m: &Machine, port: u32) -> isize {
    let mut a = EvtchnUnmask { port };
    evtchn(m, EvtchnOp::UNMASK, &mut a)
}

/// Set `HVM_PARAM_CALLBACK_IRQ`.
pub fn set_callback_irq(m: &Machine, value: u64) {
    let mut p = XenHvmParam {
        domid: DomId::SELF,
        index: HvmParam::CALLBACK_IRQ,
        value,
        ..Default::default()
    };
    assert_eq!(hvm(m, HvmOp::SET_PARAM, &mut p), 0);
}

/// Read an HVM parameter as the guest.
pub fn get_param(m: &Machine, index: HvmParam) -> Result<u64, isize> {
    let mut p = XenHvmParam {
        domid: DomId::SELF,
        index,
        ..Default::default()
    };
    match hvm(m, HvmOp::GET_PARAM, &mut p) {
        0 => Ok(p.value),
        e => Err(e),
    }
}

/// A page of guest memory viewed through its guest virtual address.
#[derive(Clone, Copy)]
pub struct GuestPage {
    /// Host address.
    pub va: usize,
}

impl GuestPage {
    /// The page at guest frame `gfn`.
    pub fn at(m: &Machine, gfn: u64) -> Self {
        GuestPage {
            va: m.hv.gfn_va(gfn),
        }
    }
    /// A 64-bit word.
    pub fn u64(&self, off: usize) -> &AtomicU64 {
        // SAFETY: tests only touch pages they mapped; offsets are aligned.
        unsafe { &*((self.va + off) as *const AtomicU64) }
    }
    /// A 32-bit word.
    pub fn u32(&self, off: usize) -> &AtomicU32 {
        // SAFETY: as above.
        unsafe { &*((self.va + off) as *const AtomicU32) }
    }
    /// A byte.
    pub fn u8(&self, off: usize) -> &AtomicU8 {
        // SAFETY: as above.
        unsafe { &*((self.va + off) as *const AtomicU8) }
    }
}

/// The guest's view of shared info, mapped at the first hole frame.
pub struct GuestSharedInfo {
    pub page: GuestPage,
}

impl GuestSharedInfo {
    /// Map shared info at the first hole frame.
    pub fn map(m: &Machine) -> Self {
        let gpfn = m.layout().hole.start;
        assert_eq!(add_to_physmap(m, MapSpace::SHARED_INFO, 0, gpfn), 0);
        GuestSharedInfo {
            page: GuestPage::at(m, gpfn),
        }
    }
    pub fn pending(&self, port: u32) -> bool {
        self.page
            .u64(SHARED_INFO_EVTCHN_PENDING + (port as usize / 64) * 8)
            .load(Ordering::SeqCst)
            & (1 << (port % 64))
            != 0
    }
    pub fn set_mask(&self, port: u32, masked: bool) {
        let w = self
            .page
            .u64(SHARED_INFO_EVTCHN_MASK + (port as usize / 64) * 8);
        if masked {
            w.fetch_or(1 << (port % 64), Ordering::SeqCst);
        } else {
            w.fetch_and(!(1 << (port % 64)), Ordering::SeqCst);
        }
    }
    pub fn clear_pending(&self, port: u32) {
        self.page
            .u64(SHARED_INFO_EVTCHN_PENDING + (port as usize / 64) * 8)
            .fetch_and(!(1 << (port % 64)), Ordering::SeqCst);
    }
    pub fn vcpu_byte(&self, vcpu: u32, off: usize) -> u8 {
        self.page
            .u8(vcpu as usize * VCPU_INFO_SIZE + off)
            .load(Ordering::SeqCst)
    }
    pub fn take_upcall(&self, vcpu: u32) -> bool {
        self.page
            .u8(vcpu as usize * VCPU_INFO_SIZE + VCPU_INFO_UPCALL_PENDING)
            .swap(0, Ordering::SeqCst)
            != 0
    }
    pub fn take_sel(&self, vcpu: u32) -> u64 {
        self.page
            .u64(vcpu as usize * VCPU_INFO_SIZE + VCPU_INFO_PENDING_SEL)
            .swap(0, Ordering::SeqCst)
    }
}
