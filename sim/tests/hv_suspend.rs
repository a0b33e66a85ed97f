//! Scenario tests: SHUTDOWN_suspend resumed on a "new host" (what a restore resets) and
//! cancelled (nothing changes, the hypercall returns 1).

/// Heap use above DISPATCH_LEVEL panics, as pool use there bug-checks a real kernel.
#[global_allocator]
static ALLOCATOR: common::irql::model::CheckingAllocator =
    common::irql::model::CheckingAllocator::SYSTEM;

mod hvsupport;

use std::sync::{Arc, Mutex};

use common::os::Os;
use hvsupport::*;
use xen_sim::hv::abi::*;
use xen_sim::hv::{P2m, PortState, SuspendEvent, SuspendOutcome};
use xen_sim::machine::Machine;

fn suspend(m: &Machine) -> isize {
    let mut s = SchedShutdown {
        reason: ShutdownReason::SUSPEND,
    };
    sched(m, SchedOp::SHUTDOWN, &mut s)
}

/// Bring the domain into a "running drivers" state: shared info, a grant frame, FIFO,
/// a registered vcpu_info, an upcall vector, a VIRQ and an extra channel.
struct Running {
    si_gfn: u64,
    gt_gfn: u64,
    extra: u32,
    virq: u32,
}

fn bring_up(m: &Machine) -> Running {
    let si_gfn = m.layout().hole.start;
    let gt_gfn = si_gfn + 1;
    assert_eq!(add_to_physmap(m, MapSpace::SHARED_INFO, 0, si_gfn), 0);
    assert_eq!(add_to_physmap(m, MapSpace::GRANT_TABLE, 0, gt_gfn), 0);
    let cb = m.guest.alloc_page().unwrap();
    let mut ic = EvtchnInitControl {
        control_gfn: cb.pfn,
        vcpu: 0,
        ..Default::default()
    };
    assert_eq!(evtchn(m, EvtchnOp::INIT_CONTROL, &mut ic), 0);
    let vi = m.guest.alloc_page().unwrap();
    let mut r = VcpuRegisterVcpuInfo {
        mfn: vi.pfn,
        offset: 64,
        rsvd: 0,
    };
    // Xen 4.17 only lets a vCPU register its own vcpu_info.
    assert_eq!(
        vcpu(m, VcpuOp::REGISTER_VCPU_INFO, 1, &mut r),
        err(Errno::EINVAL)
    );
    assert_eq!(
        xen_sim::guest::run_on(1, || vcpu(m, VcpuOp::REGISTER_VCPU_INFO, 1, &mut r)),
        0
    );
    let mut uv = XenHvmEvtchnUpcallVector {
        vcpu: 0,
        vector: 0xF3,
    };
    assert_eq!(hvm(m, HvmOp::SET_EVTCHN_UPCALL_VECTOR, &mut uv), 0);
    set_callback_irq(m, 28);
    let mut v = EvtchnBindVirq {
        virq: Virq::DEBUG,
        vcpu: 0,
        port: 0,
    };
    assert_eq!(evtchn(m, EvtchnOp::BIND_VIRQ, &mut v), 0);
    let (extra, _) = dom0_channel(m);
    Running {
        si_gfn,
        gt_gfn,
        extra,
        virq: v.port,
    }
}

#[test]
fn resume_on_a_new_host_resets_what_a_restore_resets() {
    let m = Machine::new();
    let me = m.hv.domid();
    let r = bring_up(&m);
    let store_before = m.store();
    let console_before = m.console();
    let events: Arc<Mutex<Vec<SuspendEvent>>> = Arc::default();
    {
        let events = events.clone();
        let hv = m.hv.clone();
        m.hv.set_suspend_hook(Some(Arc::new(move |ev| {
            // The new host's clock differs.
            hv.set_wallclock(2_000_000_000 * 1_000_000_000);
            events.lock().unwrap().push(ev);
        })));
    }
    assert_eq!(suspend(&m), 0);
    assert_eq!(
        events.lock().unwrap().as_slice(),
        &[SuspendEvent {
            outcome: SuspendOutcome::Resume,
            count: 1
        }]
    );
    // Shared info and grant frames must be re-mapped.
    assert_eq!(m.hv.p2m(r.si_gfn), P2m::Invalid);
    assert_eq!(m.hv.p2m(r.gt_gfn), P2m::Invalid);
    // Back on the 2-level ABI; every channel closed except store and console, re-created by
    // the toolstack with new guest ports (HVM params updated) and dom0 keeping its ports.
    assert!(!m.hv.evtchn_fifo_active());
    let store = m.store();
    let console = m.console();
    assert_eq!(store.backend_port, store_before.backend_port);
    assert_eq!(console.backend_port, console_before.backend_port);
    assert_eq!(
        get_param(&m, HvmParam::STORE_EVTCHN),
        Ok(store.guest_port as u64)
    );
    assert_eq!(
        m.hv.port_status(me, store.guest_port).unwrap().state,
        PortState::Interdomain {
            remote: 0,
            remote_port: store.backend_port
        }
    );
    assert_eq!(
        m.hv.port_status(0, console.backend_port).unwrap().state,
        PortState::Interdomain {
            remote: me,
            remote_port: console.guest_port
        }
    );
    for p in [r.extra, r.virq] {
        if p != store.guest_port && p != console.guest_port {
            assert_eq!(m.hv.port_status(me, p).unwrap().state, PortState::Free);
        }
    }
    // vcpu_info registrations, upcall vectors and the callback IRQ are gone.
    assert_eq!(m.hv.upcall_vector(0), 0);
    let mut again = VcpuRegisterVcpuInfo {
        mfn: m.guest.alloc_page().unwrap().pfn,
        offset: 0,
        rsvd: 0,
    };
    assert_eq!(
        xen_sim::guest::run_on(1, || vcpu(&m, VcpuOp::REGISTER_VCPU_INFO, 1, &mut again)),
        0
    );
    assert_eq!(
        get_param(&m, HvmParam::CALLBACK_IRQ),
        Ok(0),
        "not saved by the toolstack"
    );
    assert_eq!(get_param(&m, HvmParam::STORE_PFN), Ok(m.layout().store_gfn));
    // The store still works: the guest notifies dom0 through the new port.
    assert_eq!(send(&m, store.guest_port), 0);
    assert!(m.hv.backend_take_pending(0).contains(&store.backend_port));
    // Re-mapped shared info shows the new host's wall clock; grant entry 1 is re-seeded.
    let si = GuestSharedInfo::map(&m);
    let sec = si
        .page
        .u32(SHARED_INFO_WC_SEC)
        .load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(sec, 2_000_000_000);
    assert_eq!(
        m.hv.grant_entry(1),
        Some((
            GrantEntryFlags::PERMIT_ACCESS.bits(),
            0,
            m.layout().store_gfn as u32
        ))
    );
    assert_eq!(m.hv.shutdown_state().suspends, 1);
    assert_eq!(m.hv.shutdown_state().reason, None);
    // A second hook runs after the first; both see the second suspend.
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    m.hv.add_suspend_hook(Arc::new(move |ev| s2.lock().unwrap().push(ev.count)));
    assert_eq!(suspend(&m), 0);
    assert_eq!(events.lock().unwrap().len(), 2);
    assert_eq!(seen.lock().unwrap().as_slice(), &[2]);
}

#[test]
fn cancelled_suspend_returns_one_and_changes_nothing() {
    let m = Machine::new();
    let me = m.hv.domid();
    let r = bring_up(&m);
    m.hv.set_suspend_outcome(SuspendOutcome::Cancel);
    let store = m.store();
    assert_eq!(suspend(&m), 1);
    assert_eq!(m.hv.p2m(r.si_gfn), P2m::SharedInfo);
    assert_eq!(m.hv.p2m(r.gt_gfn), P2m::GrantFrame(0));
    assert!(m.hv.evtchn_fifo_active());
    assert_eq!(m.store(), store);
    assert_ne!(
        m.hv.port_status(me, r.extra).unwrap().state,
        PortState::Free
    );
    assert_eq!(m.hv.upcall_vector(0), 0xF3);
    assert_eq!(m.hv.shutdown_state().suspends, 1);
}

#[test]
fn other_shutdowns_and_the_crash_code_are_recorded() {
    let m = Machine::new();
    let mut c = SchedShutdown {
        reason: ShutdownReason::CRASH,
    };
    assert_eq!(sched(&m, SchedOp::SHUTDOWN_CODE, &mut c), 0);
    assert_eq!(m.hv.shutdown_state().code, Some(ShutdownReason::CRASH));
    assert_eq!(m.hv.shutdown_state().reason, None);
    let mut p = SchedShutdown {
        reason: ShutdownReason::POWEROFF,
    };
    assert_eq!(sched(&m, SchedOp::SHUTDOWN, &mut p), 0);
    assert_eq!(m.hv.shutdown_state().reason, Some(ShutdownReason::POWEROFF));
}
