//! Scenario tests: event channels under the 2-level ABI — every op, delivery through the
//! shared info bitmaps and vcpu_info, upcalls, backends and VIRQs.

/// Heap use above DISPATCH_LEVEL panics, as pool use there bug-checks a real kernel.
#[global_allocator]
static ALLOCATOR: common::irql::model::CheckingAllocator =
    common::irql::model::CheckingAllocator::SYSTEM;

use std::sync::{Arc, Mutex};

mod hvsupport;

use hvsupport::*;
use xen_sim::hv::abi::*;
use xen_sim::hv::{PortState, UpcallMode};
use xen_sim::machine::Machine;

#[test]
fn backend_to_guest_delivery_sets_bitmaps_selector_and_upcall() {
    let m = Machine::new();
    let si = GuestSharedInfo::map(&m);
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
    assert_eq!(evtchn(&m, EvtchnOp::UNMASK, &mut u), 0);
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
    assert_eq!(evtchn(&m, EvtchnOp::STATUS, &mut st), 0);
    assert_eq!((st.status, st.u[0]), (EvtchnStatusKind::UNBOUND, 0));
    let bport = m.hv.backend_bind_interdomain(0, me, port).unwrap();
    assert_eq!(evtchn(&m, EvtchnOp::STATUS, &mut st), 0);
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
    assert_eq!(evtchn(&m, EvtchnOp::CLOSE, &mut c), 0);
    assert_eq!(evtchn(&m, EvtchnOp::CLOSE, &mut c), err(Errno::EINVAL));
    assert_eq!(
        m.hv.port_status(0, bport).unwrap().state,
        PortState::Unbound { remote: me }
    );
    let mut b = EvtchnBindInterdomain {
        remote_dom: DomId::DOM0,
        remote_port: bport,
        local_port: 0,
    };
    assert_eq!(evtchn(&m, EvtchnOp::BIND_INTERDOMAIN, &mut b), 0);
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
    assert_eq!(evtchn(&m, EvtchnOp::STATUS, &mut bad), err(Errno::EINVAL));
    // Another domain: a bad port is EINVAL, a good one EPERM; an unknown domain ESRCH.
    bad.dom = DomId::DOM0;
    assert_eq!(evtchn(&m, EvtchnOp::STATUS, &mut bad), err(Errno::EINVAL));
    bad.port = bport;
    assert_eq!(evtchn(&m, EvtchnOp::STATUS, &mut bad), err(Errno::EPERM));
    bad.dom = DomId(77);
    assert_eq!(evtchn(&m, EvtchnOp::STATUS, &mut bad), err(Errno::ESRCH));
    assert_eq!(send(&m, 4000), err(Errno::EINVAL));
}

#[test]
fn virq_ipi_and_bind_vcpu_rules() {
    let m = Machine::new();
    let si = GuestSharedInfo::map(&m);
    let mut v = EvtchnBindVirq {
        virq: Virq::TIMER,
        vcpu: 1,
        port: 0,
    };
    assert_eq!(evtchn(&m, EvtchnOp::BIND_VIRQ, &mut v), 0);
    let timer1 = v.port;
    assert_eq!(evtchn(&m, EvtchnOp::BIND_VIRQ, &mut v), err(Errno::EEXIST));
    // Per-vCPU VIRQ cannot move; a global VIRQ must be bound on vCPU 0.
    let mut bv = EvtchnBindVcpu {
        port: timer1,
        vcpu: 0,
    };
    assert_eq!(evtchn(&m, EvtchnOp::BIND_VCPU, &mut bv), err(Errno::EINVAL));
    let mut g = EvtchnBindVirq {
        virq: Virq::CONSOLE,
        vcpu: 1,
        port: 0,
    };
    assert_eq!(evtchn(&m, EvtchnOp::BIND_VIRQ, &mut g), err(Errno::EINVAL));
    g.vcpu = 0;
    assert_eq!(evtchn(&m, EvtchnOp::BIND_VIRQ, &mut g), 0);
    let mut bad = EvtchnBindVirq {
        virq: Virq(Virq::COUNT),
        vcpu: 0,
        port: 0,
    };
    assert_eq!(
        evtchn(&m, EvtchnOp::BIND_VIRQ, &mut bad),
        err(Errno::EINVAL)
    );
    bad.virq = Virq::DEBUG;
    bad.vcpu = 7;
    assert_eq!(
        evtchn(&m, EvtchnOp::BIND_VIRQ, &mut bad),
        err(Errno::ENOENT)
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
    assert_eq!(evtchn(&m, EvtchnOp::BIND_IPI, &mut ipi0), 0);
    assert_eq!(send(&m, ipi0.port), 0);
    assert!(!si.take_upcall(1));
    assert_eq!(si.take_sel(1), 1);
    // IPI to vCPU 1, then re-bound to vCPU 0 (an interdomain port may move too).
    let mut ipi = EvtchnBindIpi { vcpu: 1, port: 0 };
    assert_eq!(evtchn(&m, EvtchnOp::BIND_IPI, &mut ipi), 0);
    assert_eq!(send(&m, ipi.port), 0);
    assert!(si.take_upcall(1));
    let port = alloc_unbound(&m, DomId::DOM0);
    let mut bv = EvtchnBindVcpu { port, vcpu: 1 };
    assert_eq!(evtchn(&m, EvtchnOp::BIND_VCPU, &mut bv), 0);
    assert_eq!(m.hv.port_status(m.hv.domid(), port).unwrap().vcpu, 1);
    bv.vcpu = 9;
    assert_eq!(evtchn(&m, EvtchnOp::BIND_VCPU, &mut bv), err(Errno::ENOENT));
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
        evtchn(&m, EvtchnOp::ALLOC_UNBOUND, &mut a),
        err(Errno::ENOSPC)
    );
    let mut r = EvtchnReset { dom: DomId::SELF };
    assert_eq!(evtchn(&m, EvtchnOp::RESET, &mut r), 0);
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
    let si = Arc::new(GuestSharedInfo::map(&m));
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
            // The test's stand-in ISR is no driver: its record is not checked.
            let _host = common::irql::model::HostSide::enter();
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
        hvm(&m, HvmOp::SET_EVTCHN_UPCALL_VECTOR, &mut uv),
        err(Errno::EINVAL)
    );
    uv.vector = 0xF3;
    assert_eq!(hvm(&m, HvmOp::SET_EVTCHN_UPCALL_VECTOR, &mut uv), 0);
    assert_eq!(m.hv.upcall_vector(1), 0xF3);
    let mut bv = EvtchnBindVcpu { port, vcpu: 1 };
    assert_eq!(evtchn(&m, EvtchnOp::BIND_VCPU, &mut bv), 0);
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
    assert_eq!(hvm(&m, HvmOp::GET_PARAM, &mut p), 0);
    assert_eq!(p.value, m.layout().store_gfn);
    p.index = HvmParam::CONSOLE_PFN;
    assert_eq!(hvm(&m, HvmOp::GET_PARAM, &mut p), 0);
    assert_eq!(p.value, m.layout().console_gfn);
    p.index = HvmParam::STORE_EVTCHN;
    assert_eq!(hvm(&m, HvmOp::GET_PARAM, &mut p), 0);
    assert_eq!(p.value, m.store().guest_port as u64);
    // The guest may re-point its store channel but not its store page.
    p.value = 7;
    assert_eq!(hvm(&m, HvmOp::SET_PARAM, &mut p), 0);
    assert_eq!(m.hv.param(HvmParam::STORE_EVTCHN), 7);
    p.index = HvmParam::STORE_PFN;
    assert_eq!(hvm(&m, HvmOp::SET_PARAM, &mut p), err(Errno::EPERM));
    p.index = HvmParam(HVM_NR_PARAMS);
    assert_eq!(hvm(&m, HvmOp::GET_PARAM, &mut p), err(Errno::EINVAL));
    p.index = HvmParam::IOREQ_PFN; // not readable by the guest
    assert_eq!(hvm(&m, HvmOp::GET_PARAM, &mut p), err(Errno::EPERM));
    let mut d = XenHvmPagetableDying {
        domid: DomId::SELF,
        gpa: 0x1234000,
        ..Default::default()
    };
    // With HAP (the default) there is nothing to do and Xen says EINVAL.
    assert_eq!(hvm(&m, HvmOp::PAGETABLE_DYING, &mut d), err(Errno::EINVAL));
    assert!(m.hv.pagetables_dying().is_empty());
    d.domid = DomId::DOM0;
    assert_eq!(
        hvm(&m, HvmOp::PAGETABLE_DYING, &mut d),
        err(Errno::EOPNOTSUPP)
    );
    let mut cfg = xen_sim::machine::MachineConfig::default();
    cfg.hv.shadow_paging = true;
    let shadow = Machine::with_config(cfg);
    d.domid = DomId::SELF;
    assert_eq!(hvm(&shadow, HvmOp::PAGETABLE_DYING, &mut d), 0);
    assert_eq!(shadow.hv.pagetables_dying(), vec![0x1234000]);
    // ALTP2M is read-only; other domains' parameters are off limits.
    p.index = HvmParam::ALTP2M;
    assert_eq!(hvm(&m, HvmOp::SET_PARAM, &mut p), err(Errno::EEXIST));
    p.index = HvmParam::CALLBACK_IRQ;
    p.domid = DomId::DOM0;
    assert_eq!(hvm(&m, HvmOp::GET_PARAM, &mut p), err(Errno::EPERM));
    p.domid = DomId(77);
    assert_eq!(hvm(&m, HvmOp::GET_PARAM, &mut p), err(Errno::ESRCH));
}

#[test]
fn a_running_handler_is_not_interrupted_by_another_vcpus_upcall() {
    let m = Machine::new();
    let si = Arc::new(GuestSharedInfo::map(&m));
    let (p0, b0) = dom0_channel(&m);
    let (p1, b1) = dom0_channel(&m);
    let mut bv = EvtchnBindVcpu { port: p1, vcpu: 1 };
    assert_eq!(evtchn(&m, EvtchnOp::BIND_VCPU, &mut bv), 0);
    let mut uv = XenHvmEvtchnUpcallVector {
        vcpu: 1,
        vector: 0xF3,
    };
    assert_eq!(hvm(&m, HvmOp::SET_EVTCHN_UPCALL_VECTOR, &mut uv), 0);
    set_callback_irq(&m, 28);
    let order: Arc<Mutex<Vec<String>>> = Arc::default();
    {
        let (si, order, hv) = (si.clone(), order.clone(), m.hv.clone());
        m.hv.set_upcall_handler(Some(Arc::new(move |vcpu| {
            // The test's handler stands for no driver: its record is not checked.
            let _host = common::irql::model::HostSide::enter();
            si.take_upcall(vcpu);
            si.take_sel(vcpu);
            order.lock().unwrap().push(format!("enter {vcpu}"));
            if vcpu == 0 {
                // The vCPU 0 handler pokes a backend that raises an event for vCPU 1.
                hv.backend_send(0, b1).unwrap();
            }
            order.lock().unwrap().push(format!("leave {vcpu}"));
        })));
    }
    m.hv.backend_send(0, b0).unwrap();
    assert!(si.pending(p0));
    assert_eq!(
        order.lock().unwrap().as_slice(),
        &["enter 0", "leave 0", "enter 1", "leave 1"]
    );
}

#[test]
fn ports_of_an_allocated_bucket_are_valid_and_closed() {
    let m = Machine::new();
    // Only ports 1 and 2 are in use, but the first bucket holds 64 ports.
    let mut st = EvtchnStatus {
        dom: DomId::SELF,
        port: 63,
        ..Default::default()
    };
    assert_eq!(evtchn(&m, EvtchnOp::STATUS, &mut st), 0);
    assert_eq!(st.status, EvtchnStatusKind::CLOSED);
    let mut c = EvtchnClose { port: 63 };
    assert_eq!(evtchn(&m, EvtchnOp::CLOSE, &mut c), err(Errno::EINVAL));
    st.port = 64;
    assert_eq!(evtchn(&m, EvtchnOp::STATUS, &mut st), err(Errno::EINVAL));
}
