//! Scenario tests: fault injection — a hypercall failing with a chosen errno on its Nth call
//! (and storms of consecutive failures), and dropped or late event notifications.

/// Heap use above DISPATCH_LEVEL panics, as pool use there bug-checks a real kernel.
#[global_allocator]
static ALLOCATOR: common::irql::model::CheckingAllocator =
    common::irql::model::CheckingAllocator::SYSTEM;

mod hvsupport;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use hvsupport::*;
use xen_sim::hv::abi::*;
use xen_sim::hv::{EventFault, EventFaultKind, HypercallFault};
use xen_sim::machine::Machine;

#[test]
fn nth_call_of_a_sub_op_fails_without_effect() {
    let m = Machine::new();
    m.hv.inject_hypercall_fault(HypercallFault {
        op: HypercallCode::EVENT_CHANNEL_OP.0,
        sub: Some(EvtchnOp::ALLOC_UNBOUND.0),
        nth: 2,
        count: 1,
        errno: Errno::ENOMEM,
    });
    // Other sub-ops do not count.
    assert_eq!(send(&m, m.store().guest_port), 0);
    let first = alloc_unbound(&m, DomId::DOM0);
    let mut a = EvtchnAllocUnbound {
        dom: DomId::SELF,
        remote_dom: DomId::DOM0,
        port: 0,
    };
    assert_eq!(
        evtchn(&m, EvtchnOp::ALLOC_UNBOUND, &mut a),
        err(Errno::ENOMEM)
    );
    assert_eq!(a.port, 0, "a failed call writes nothing back");
    let third = alloc_unbound(&m, DomId::DOM0);
    assert_eq!(third, first + 1, "the failed call allocated nothing");
    assert_eq!(
        m.hv.call_count(HypercallCode::EVENT_CHANNEL_OP.0, EvtchnOp::ALLOC_UNBOUND.0),
        3
    );
}

#[test]
fn eagain_storm_then_success() {
    let m = Machine::new();
    m.hv.inject_hypercall_fault(HypercallFault {
        op: HypercallCode::MEMORY_OP.0,
        sub: None,
        nth: 1,
        count: 3,
        errno: Errno::EAGAIN,
    });
    let gpfn = m.layout().hole.start;
    for _ in 0..3 {
        assert_eq!(
            add_to_physmap(&m, MapSpace::SHARED_INFO, 0, gpfn),
            err(Errno::EAGAIN)
        );
    }
    assert_eq!(m.hv.p2m(gpfn), xen_sim::hv::P2m::Invalid);
    assert_eq!(add_to_physmap(&m, MapSpace::SHARED_INFO, 0, gpfn), 0);
}

#[test]
fn suspend_can_be_made_to_fail() {
    let m = Machine::new();
    m.hv.inject_hypercall_fault(HypercallFault {
        op: HypercallCode::SCHED_OP.0,
        sub: Some(SchedOp::SHUTDOWN.0),
        nth: 1,
        count: 1,
        errno: Errno::EINVAL,
    });
    let store = m.store();
    let mut s = SchedShutdown {
        reason: ShutdownReason::SUSPEND,
    };
    assert_eq!(sched(&m, SchedOp::SHUTDOWN, &mut s), err(Errno::EINVAL));
    assert_eq!(m.hv.shutdown_state().suspends, 0);
    assert_eq!(m.store(), store);
}

#[test]
fn dropped_and_late_notifications() {
    let m = Machine::new();
    let si = GuestSharedInfo::map(&m);
    let (port, bport) = dom0_channel(&m);
    m.hv.inject_event_fault(EventFault {
        dom: Some(m.hv.domid()),
        port: Some(port),
        kind: EventFaultKind::Drop,
        count: 1,
    });
    m.hv.backend_send(0, bport).unwrap();
    assert!(!si.pending(port), "the first notification is lost");
    m.hv.backend_send(0, bport).unwrap();
    assert!(si.pending(port), "the fault only hit once");
    si.clear_pending(port);
    // Late: held until released; the guest's interrupt fires only then.
    let isr = Arc::new(AtomicU32::new(0));
    {
        let isr = isr.clone();
        let si = GuestSharedInfo { page: si.page };
        m.hv.set_upcall_handler(Some(Arc::new(move |v| {
            // The test's stand-in ISR is no driver: its record is not checked.
            let _host = common::irql::model::HostSide::enter();
            si.take_upcall(v);
            si.take_sel(v);
            isr.fetch_add(1, Ordering::SeqCst);
        })));
    }
    set_callback_irq(&m, 28);
    isr.store(0, Ordering::SeqCst);
    m.hv.inject_event_fault(EventFault {
        dom: None,
        port: None,
        kind: EventFaultKind::Delay,
        count: 2,
    });
    m.hv.backend_send(0, bport).unwrap();
    assert_eq!(send(&m, port), 0); // guest → dom0, also delayed
    assert!(!si.pending(port));
    assert!(m.hv.backend_take_pending(0).is_empty());
    assert_eq!(isr.load(Ordering::SeqCst), 0);
    m.hv.release_late_events();
    assert!(si.pending(port));
    assert_eq!(m.hv.backend_take_pending(0), vec![bport]);
    assert_eq!(isr.load(Ordering::SeqCst), 1);
}
