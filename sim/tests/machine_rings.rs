//! Scenario test: the toolstack wiring of a `Machine` as a guest driver finds it — the store
//! ring through grant entry 1 and HVM_PARAM_STORE_EVTCHN, a dom0 service answering through
//! the ring page, and the guest's interrupt firing for the answer, across a resume.

/// Heap use above DISPATCH_LEVEL panics, as pool use there bug-checks a real kernel.
#[global_allocator]
static ALLOCATOR: common::irql::model::CheckingAllocator =
    common::irql::model::CheckingAllocator::SYSTEM;

mod hvsupport;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use hvsupport::*;
use xen_sim::hv::abi::*;
use xen_sim::machine::Machine;

/// A dom0 "service" that copies byte 0 of the ring page to byte 1 (plus one) and notifies.
fn attach_echo(m: &Machine) {
    let hv = m.hv.clone();
    let gfn = m.store().gfn;
    let port = m.store().backend_port;
    m.hv.set_backend_handler(
        0,
        port,
        Some(Arc::new(move |p| {
            let mut b = [0u8; 1];
            hv.read_guest(gfn, 0, &mut b).unwrap();
            hv.write_guest(gfn, 1, &[b[0] + 1]).unwrap();
            hv.backend_send(0, p).unwrap();
        })),
    );
}

#[test]
fn store_ring_round_trip_through_grant_entry_and_param() {
    let m = Machine::new();
    attach_echo(&m);
    // Guest side: grant table frame 0 → entry 1 gives the ring frame.
    let gt_gfn = m.layout().hole.start + 1;
    assert_eq!(add_to_physmap(&m, MapSpace::GRANT_TABLE, 0, gt_gfn), 0);
    let gt = GuestPage::at(&m, gt_gfn);
    let frame = gt
        .u32(GNTTAB_RESERVED_XENSTORE as usize * GRANT_ENTRY_V1_SIZE + GRANT_ENTRY_FRAME)
        .load(Ordering::SeqCst) as u64;
    assert_eq!(frame, m.layout().store_gfn);
    let ring = GuestPage::at(&m, frame);
    let si = Arc::new(GuestSharedInfo::map(&m));
    let port = get_param(&m, HvmParam::STORE_EVTCHN).unwrap() as u32;
    let irqs = Arc::new(AtomicU32::new(0));
    {
        let (si, irqs) = (si.clone(), irqs.clone());
        m.hv.set_upcall_handler(Some(Arc::new(move |v| {
            // The test's stand-in ISR is no driver: its record is not checked.
            let _host = common::irql::model::HostSide::enter();
            si.take_upcall(v);
            si.take_sel(v);
            irqs.fetch_add(1, Ordering::SeqCst);
        })));
    }
    set_callback_irq(&m, 28);
    let ping = |value: u8| {
        ring.u8(0).store(value, Ordering::SeqCst);
        si.clear_pending(port);
        assert_eq!(send(&m, port), 0);
        assert!(si.pending(port), "dom0 answered on the store channel");
        ring.u8(1).load(Ordering::SeqCst)
    };
    assert_eq!(ping(41), 42);
    assert!(irqs.load(Ordering::SeqCst) >= 1);
    // After a resume the guest finds a new port in the parameter, re-maps shared info and
    // re-sets its callback; dom0's end (and the echo handler) carry on.
    let mut s = SchedShutdown {
        reason: ShutdownReason::SUSPEND,
    };
    assert_eq!(sched(&m, SchedOp::SHUTDOWN, &mut s), 0);
    let si2 = GuestSharedInfo::map(&m);
    set_callback_irq(&m, 28);
    let port2 = get_param(&m, HvmParam::STORE_EVTCHN).unwrap() as u32;
    assert_eq!(port2, m.store().guest_port);
    ring.u8(0).store(7, Ordering::SeqCst);
    assert_eq!(send(&m, port2), 0);
    assert!(si2.pending(port2));
    assert_eq!(ring.u8(1).load(Ordering::SeqCst), 8);
}
