//! Scenario tests: event channels under the 2-level ABI — every op, delivery through the
//! shared info bitmaps and vcpu_info, upcalls, backends and VIRQs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use common::hypercall::Hypercall;
use xen_sim::hv::abi::*;
use xen_sim::hv::{PortState, UpcallMode};
use xen_sim::machine::Machine;

fn evtchn_op<T>(m: &Machine, cmd: u32, arg: &mut T) -> isize {
    m.hv.hypercall(
        HypercallCode::EVENT_CHANNEL_OP.0,
        [cmd as usize, arg as *mut T as usize, 0, 0, 0],
    )
}

fn hvm_op<T>(m: &Machine, cmd: u32, arg: &mut T) -> isize {
    m.hv.hypercall(
        HypercallCode::HVM_OP.0,
        [cmd as usize, arg as *mut T as usize, 0, 0, 0],
    )
}

/// The guest's view of shared info, mapped at the first hole frame.
struct SharedInfo {
    va: usize,
}

impl SharedInfo {
    fn map(m: &Machine) -> Self {
        let gpfn = m.layout().hole.start;
        let mut a = XenAddToPhysmap {
            domid: DomId::SELF,
            size: 0,
            space: MapSpace::SHARED_INFO,
            idx: 0,
            gpfn,
        };
        let r = m.hv.hypercall(
            HypercallCode::MEMORY_OP.0,
            [
                MemoryOp::ADD_TO_PHYSMAP.0 as usize,
                &mut a as *mut _ as usize,
                0,
                0,
                0,
            ],
        );
        assert_eq!(r, 0);
        SharedInfo {
            va: m.hv.gfn_va(gpfn),
        }
    }
    fn word(&self, off: usize) -> &AtomicU64 {
        // SAFETY: shared info stays mapped for the test; offsets are 8-byte aligned.
        unsafe { &*((self.va + off) as *const AtomicU64) }
    }
    fn pending(&self, port: u32) -> bool {
        self.word(SHARED_INFO_EVTCHN_PENDING + (port as usize / 64) * 8)
            .load(Ordering::SeqCst)
            & (1 << (port % 64))
            != 0
    }
    fn set_mask(&self, port: u32, masked: bool) {
        let w = self.word(SHARED_INFO_EVTCHN_MASK + (port as usize / 64) * 8);
        if masked {
            w.fetch_or(1 << (port % 64), Ordering::SeqCst);
        } else {
            w.fetch_and(!(1 << (port % 64)), Ordering::SeqCst);
        }
    }
    fn clear_pending(&self, port: u32) {
        self.word(SHARED_INFO_EVTCHN_PENDING + (port as usize / 64) * 8)
            .fetch_and(!(1 << (port % 64)), Ordering::SeqCst);
    }
    fn vcpu_byte(&self, vcpu: u32, off: usize) -> u8 {
        // SAFETY: inside the mapped shared info page.
        unsafe {
            std::ptr::read_volatile((self.va + vcpu as usize * VCPU_INFO_SIZE + off) as *const u8)
        }
    }
    fn take_upcall(&self, vcpu: u32) -> bool {
        // SAFETY: inside the mapped shared info page; the hypervisor writes it atomically.
        let b = unsafe {
            &*((self.va + vcpu as usize * VCPU_INFO_SIZE + VCPU_INFO_UPCALL_PENDING)
                as *const std::sync::atomic::AtomicU8)
        };
        b.swap(0, Ordering::SeqCst) != 0
    }
    fn take_sel(&self, vcpu: u32) -> u64 {
        self.word(vcpu as usize * VCPU_INFO_SIZE + VCPU_INFO_PENDING_SEL)
            .swap(0, Ordering::SeqCst)
    }
}

fn alloc_unbound(m: &Machine, remote: DomId) -> u32 {
    let mut a = EvtchnAllocUnbound {
        dom: DomId::SELF,
        remote_dom: remote,
        port: 0,
    };
    assert_eq!(evtchn_op(m, EvtchnOp::ALLOC_UNBOUND.0, &mut a), 0);
    a.port
}

fn send(m: &Machine, port: u32) -> isize {
    let mut a = EvtchnSend { port };
    evtchn_op(m, EvtchnOp::SEND.0, &mut a)
}

fn set_callback_irq(m: &Machine, value: u64) {
    let mut p = XenHvmParam {
        domid: DomId::SELF,
        index: HvmParam::CALLBACK_IRQ,
        value,
        ..Default::default()
    };
    assert_eq!(hvm_op(m, HvmOp::SET_PARAM.0, &mut p), 0);
}

#[test]
fn backend_to_guest_delivery_sets_bitmaps_selector_and_upcall() {
    let m = Machine::new();
    let si = SharedInfo::map(&m);
    let port = alloc_unbound(&m, DomId::DOM0);
    let bport =
        m.hv.backend_bind_interdomain(0, m.hv.domid(), port)
            .unwrap();
    // Binding makes dom0's own port pending (lost-notification fix-up).
    assert_eq!(m.hv.backend_take_pending(0), vec![bport]);
    assert!(!si.pending(port));
    m.hv.backend_send(0, bport).unwrap();
    assert!(si.pending(port));
    assert!(si.take_upcall(0));
    assert_eq!(si.take_sel(0), 1 << (port / 64));
    // Pending already set: a second send does not re-raise the selector.
    m.hv.backend_send(0, bport).unwrap();
    assert!(!si.take_upcall(0));
    // Masked ports stay pending but do not raise the upcall; unmask re-delivers.
    si.clear_pending(port);
    si.set_mask(port, true);
    m.hv.backend_send(0, bport).unwrap();
    assert!(si.pending(port));
    assert!(!si.take_upcall(0));
    let mut u = EvtchnUnmask { port };
    assert_eq!(evtchn_op(&m, EvtchnOp::UNMASK.0, &mut u), 0);
    assert!(si.take_upcall(0));
    assert_eq!(si.take_sel(0), 1 << (port / 64));
    // Guest → backend.
    assert_eq!(send(&m, port), 0);
    assert_eq!(m.hv.backend_take_pending(0), vec![bport]);
}

#[test]
fn status_close_and_rebind_follow_xen() {
    let m = Machine::new();
    let me = m.hv.domid();
    let port = alloc_unbound(&m, DomId::DOM0);
    let mut st = EvtchnStatus {
        dom: DomId::SELF,
        port,
        ..Default::default()
    };
    assert_eq!(evtchn_op(&m, EvtchnOp::STATUS.0, &mut st), 0);
    assert_eq!((st.status, st.u[0]), (EvtchnStatusKind::UNBOUND, 0));
    let bport = m.hv.backend_bind_interdomain(0, me, port).unwrap();
    assert_eq!(evtchn_op(&m, EvtchnOp::STATUS.0, &mut st), 0);
    assert_eq!(
        (st.status, st.u[0], st.u[1]),
        (EvtchnStatusKind::INTERDOMAIN, 0, bport)
    );
    // Binding twice is refused: the remote port is no longer unbound.
    assert_eq!(
        m.hv.backend_bind_interdomain(0, me, port),
        Err(Errno::EINVAL)
    );
    // Closing the guest end leaves dom0's end unbound for the guest, so it can re-bind.
    let mut c = EvtchnClose { port };
    assert_eq!(evtchn_op(&m, EvtchnOp::CLOSE.0, &mut c), 0);
    assert_eq!(
        evtchn_op(&m, EvtchnOp::CLOSE.0, &mut c),
        -(Errno::EINVAL.0 as isize)
    );
    assert_eq!(
        m.hv.port_status(0, bport).unwrap().state,
        PortState::Unbound { remote: me }
    );
    let mut b = EvtchnBindInterdomain {
        remote_dom: DomId::DOM0,
        remote_port: bport,
        local_port: 0,
    };
    assert_eq!(evtchn_op(&m, EvtchnOp::BIND_INTERDOMAIN.0, &mut b), 0);
    assert_eq!(
        m.hv.port_status(me, b.local_port).unwrap().state,
        PortState::Interdomain {
            remote: 0,
            remote_port: bport
        }
    );
    // Invalid ports and foreign status queries.
    let mut bad = EvtchnStatus {
        dom: DomId::SELF,
        port: 5000,
        ..Default::default()
    };
    assert_eq!(
        evtchn_op(&m, EvtchnOp::STATUS.0, &mut bad),
        -(Errno::EINVAL.0 as isize)
    );
    bad.dom = DomId::DOM0;
    assert_eq!(
        evtchn_op(&m, EvtchnOp::STATUS.0, &mut bad),
        -(Errno::EPERM.0 as isize)
    );
    assert_eq!(send(&m, 4000), -(Errno::EINVAL.0 as isize));
}

#[test]
fn virq_ipi_and_bind_vcpu_rules() {
    let m = Machine::new();
    let si = SharedInfo::map(&m);
    let mut v = EvtchnBindVirq {
        virq: Virq::TIMER,
        vcpu: 1,
        port: 0,
    };
    assert_eq!(evtchn_op(&m, EvtchnOp::BIND_VIRQ.0, &mut v), 0);
    let timer1 = v.port;
    assert_eq!(
        evtchn_op(&m, EvtchnOp::BIND_VIRQ.0, &mut v),
        -(Errno::EEXIST.0 as isize)
    );
    // Per-vCPU VIRQ cannot move; a global VIRQ must be bound on vCPU 0.
    let mut bv = EvtchnBindVcpu {
        port: timer1,
        vcpu: 0,
    };
    assert_eq!(
        evtchn_op(&m, EvtchnOp::BIND_VCPU.0, &mut bv),
        -(Errno::EINVAL.0 as isize)
    );
    let mut g = EvtchnBindVirq {
        virq: Virq::CONSOLE,
        vcpu: 1,
        port: 0,
    };
    assert_eq!(
        evtchn_op(&m, EvtchnOp::BIND_VIRQ.0, &mut g),
        -(Errno::EINVAL.0 as isize)
    );
    g.vcpu = 0;
    assert_eq!(evtchn_op(&m, EvtchnOp::BIND_VIRQ.0, &mut g), 0);
    let mut bad = EvtchnBindVirq {
        virq: Virq(Virq::COUNT),
        vcpu: 0,
        port: 0,
    };
    assert_eq!(
        evtchn_op(&m, EvtchnOp::BIND_VIRQ.0, &mut bad),
        -(Errno::EINVAL.0 as isize)
    );
    bad.virq = Virq::DEBUG;
    bad.vcpu = 7;
    assert_eq!(
        evtchn_op(&m, EvtchnOp::BIND_VIRQ.0, &mut bad),
        -(Errno::ENOENT.0 as isize)
    );
    // The timer VIRQ lands on vCPU 1's vcpu_info only.
    assert!(m.hv.raise_virq(1, Virq::TIMER));
    assert!(!m.hv.raise_virq(0, Virq::TIMER));
    assert!(si.pending(timer1));
    assert!(si.take_upcall(1));
    assert!(!si.take_upcall(0));
    assert_eq!(si.vcpu_byte(1, VCPU_INFO_UPCALL_PENDING), 0);
    // While the selector bit stays set, more events in that word raise no new upcall.
    let mut ipi0 = EvtchnBindIpi { vcpu: 1, port: 0 };
    assert_eq!(evtchn_op(&m, EvtchnOp::BIND_IPI.0, &mut ipi0), 0);
    assert_eq!(send(&m, ipi0.port), 0);
    assert!(!si.take_upcall(1));
    assert_eq!(si.take_sel(1), 1);
    // IPI to vCPU 1, then re-bound to vCPU 0 (an interdomain port may move too).
    let mut ipi = EvtchnBindIpi { vcpu: 1, port: 0 };
    assert_eq!(evtchn_op(&m, EvtchnOp::BIND_IPI.0, &mut ipi), 0);
    assert_eq!(send(&m, ipi.port), 0);
    assert!(si.take_upcall(1));
    let port = alloc_unbound(&m, DomId::DOM0);
    let mut bv = EvtchnBindVcpu { port, vcpu: 1 };
    assert_eq!(evtchn_op(&m, EvtchnOp::BIND_VCPU.0, &mut bv), 0);
    assert_eq!(m.hv.port_status(m.hv.domid(), port).unwrap().vcpu, 1);
    bv.vcpu = 9;
    assert_eq!(
        evtchn_op(&m, EvtchnOp::BIND_VCPU.0, &mut bv),
        -(Errno::ENOENT.0 as isize)
    );
}

#[test]
fn reset_closes_everything_and_ports_run_out() {
    let mut cfg = xen_sim::machine::MachineConfig::default();
    cfg.hv.max_evtchn_port = 8;
    let m = Machine::with_config(cfg);
    let me = m.hv.domid();
    // Ports 1 and 2 are the store and console channels.
    assert_eq!(m.store().guest_port, 1);
    assert_eq!(m.console().guest_port, 2);
    for _ in 3..=8 {
        alloc_unbound(&m, DomId::DOM0);
    }
    let mut a = EvtchnAllocUnbound {
        dom: DomId::SELF,
        remote_dom: DomId::DOM0,
        port: 0,
    };
    assert_eq!(
        evtchn_op(&m, EvtchnOp::ALLOC_UNBOUND.0, &mut a),
        -(Errno::ENOSPC.0 as isize)
    );
    let mut r = EvtchnReset { dom: DomId::SELF };
    assert_eq!(evtchn_op(&m, EvtchnOp::RESET.0, &mut r), 0);
    for p in 1..=8 {
        assert_eq!(m.hv.port_status(me, p).unwrap().state, PortState::Free);
    }
    // dom0's store end waits for the guest to re-bind it.
    let store = m.store();
    assert_eq!(
        m.hv.port_status(0, store.backend_port).unwrap().state,
        PortState::Unbound { remote: me }
    );
}

#[test]
fn upcall_handler_runs_on_the_target_vcpu_with_level_semantics() {
    let m = Machine::new();
    let si = Arc::new(SharedInfo::map(&m));
    let port = alloc_unbound(&m, DomId::DOM0);
    let bport =
        m.hv.backend_bind_interdomain(0, m.hv.domid(), port)
            .unwrap();
    let seen: Arc<Mutex<Vec<(u32, u32, u64)>>> = Arc::default();
    {
        let si = si.clone();
        let seen = seen.clone();
        let guest = m.guest.clone();
        m.hv.set_upcall_handler(Some(Arc::new(move |vcpu| {
            use common::os::Os;
            // A minimal ISR: consume the upcall flag and the selector.
            si.take_upcall(vcpu);
            let sel = si.take_sel(vcpu);
            seen.lock()
                .unwrap()
                .push((vcpu, guest.current_processor(), sel));
        })));
    }
    // No route yet (no callback IRQ, no vector): nothing is delivered.
    m.hv.backend_send(0, bport).unwrap();
    assert!(seen.lock().unwrap().is_empty());
    assert!(!m.hv.interrupt_pending(0));
    // Setting the callback IRQ routes vCPU 0; the pending upcall fires right away.
    set_callback_irq(&m, 28);
    assert_eq!(seen.lock().unwrap().as_slice(), &[(0, 0, 1 << (port / 64))]);
    // Per-vCPU vector on vCPU 1; vectors below 0x10 are refused.
    let mut uv = XenHvmEvtchnUpcallVector {
        vcpu: 1,
        vector: 0x05,
    };
    assert_eq!(
        hvm_op(&m, HvmOp::SET_EVTCHN_UPCALL_VECTOR.0, &mut uv),
        -(Errno::EINVAL.0 as isize)
    );
    uv.vector = 0xF3;
    assert_eq!(hvm_op(&m, HvmOp::SET_EVTCHN_UPCALL_VECTOR.0, &mut uv), 0);
    assert_eq!(m.hv.upcall_vector(1), 0xF3);
    let mut bv = EvtchnBindVcpu { port, vcpu: 1 };
    assert_eq!(evtchn_op(&m, EvtchnOp::BIND_VCPU.0, &mut bv), 0);
    si.clear_pending(port);
    m.hv.backend_send(0, bport).unwrap();
    assert_eq!(seen.lock().unwrap().last(), Some(&(1, 1, 1 << (port / 64))));
    // Deferred mode: nothing until the test delivers; masked interrupts wait for sti.
    m.hv.set_upcall_mode(UpcallMode::Deferred);
    si.clear_pending(port);
    m.hv.backend_send(0, bport).unwrap();
    assert_eq!(seen.lock().unwrap().len(), 2);
    m.hv.set_interrupts_enabled(1, false);
    assert_eq!(m.hv.deliver_upcalls(), 0);
    m.hv.set_upcall_mode(UpcallMode::Immediate);
    m.hv.set_interrupts_enabled(1, true);
    assert_eq!(seen.lock().unwrap().len(), 3);
    assert_eq!(m.hv.upcall_count(1), 2);
}

#[test]
fn hvm_params_enforce_guest_permissions() {
    let m = Machine::new();
    let mut p = XenHvmParam {
        domid: DomId::SELF,
        index: HvmParam::STORE_PFN,
        value: 0,
        ..Default::default()
    };
    assert_eq!(hvm_op(&m, HvmOp::GET_PARAM.0, &mut p), 0);
    assert_eq!(p.value, m.layout().store_gfn);
    p.index = HvmParam::CONSOLE_PFN;
    assert_eq!(hvm_op(&m, HvmOp::GET_PARAM.0, &mut p), 0);
    assert_eq!(p.value, m.layout().console_gfn);
    p.index = HvmParam::STORE_EVTCHN;
    assert_eq!(hvm_op(&m, HvmOp::GET_PARAM.0, &mut p), 0);
    assert_eq!(p.value, m.store().guest_port as u64);
    // The guest may re-point its store channel but not its store page.
    p.value = 7;
    assert_eq!(hvm_op(&m, HvmOp::SET_PARAM.0, &mut p), 0);
    assert_eq!(m.hv.param(HvmParam::STORE_EVTCHN), 7);
    p.index = HvmParam::STORE_PFN;
    assert_eq!(
        hvm_op(&m, HvmOp::SET_PARAM.0, &mut p),
        -(Errno::EPERM.0 as isize)
    );
    p.index = HvmParam(HVM_NR_PARAMS);
    assert_eq!(
        hvm_op(&m, HvmOp::GET_PARAM.0, &mut p),
        -(Errno::EINVAL.0 as isize)
    );
    p.index = HvmParam::IOREQ_PFN; // not readable by the guest
    assert_eq!(
        hvm_op(&m, HvmOp::GET_PARAM.0, &mut p),
        -(Errno::EPERM.0 as isize)
    );
    let mut d = XenHvmPagetableDying {
        domid: DomId::SELF,
        gpa: 0x1234000,
        ..Default::default()
    };
    assert_eq!(hvm_op(&m, HvmOp::PAGETABLE_DYING.0, &mut d), 0);
    assert_eq!(m.hv.pagetables_dying(), vec![0x1234000]);
}
