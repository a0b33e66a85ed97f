//! Every fault the simulator injects into the paths of SHARED_INFO, EVTCHN, GNTTAB and
//! STORE ends in a defined status (never a panic), and the subsystem keeps working once
//! the fault is gone.
//!
//! These tests build the subsystems the way xenbus.sys does, over the simulated machine
//! with xen.sys's core as the XenApi.

/// Heap use above DISPATCH_LEVEL panics, as pool use there bug-checks a real kernel.
#[global_allocator]
static ALLOCATOR: common::irql::model::CheckingAllocator =
    common::irql::model::CheckingAllocator::SYSTEM;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use xen_include::status::*;
use xen_include::xen::errno::Errno;
use xen_include::xen::event_channel::EvtchnOp;
use xen_include::xen::grant_table::GnttabOp;
use xen_include::xen::memory::MemoryOp;
use xen_include::xen::xen::HypercallCode;
use xen_sim::hv::{EventFault, EventFaultKind, HypercallFault};
use xen_sim::machine::Machine;
use xen_sim::toolstack::machine::{HvGrants, StoreService};
use xen_sim::toolstack::Toolstack;
use xen_sim::xenstored::Xenstored;
use xenbus::evtchn::{Evtchn, EvtchnCallback, Kind};
use xenbus::gnttab::Gnttab;
use xenbus::shared_info::SharedInfo;
use xenbus::store::Store;

fn leak<T>(t: T) -> &'static T {
    Box::leak(Box::new(t))
}

struct Host {
    m: &'static Machine,
    xen: &'static xen::driver::Xen<'static>,
}

fn host() -> Host {
    let m: &'static Machine = leak(Machine::new());
    let xen = leak(xen::driver::Xen::new(&*m.hv, &*m.guest, None, None));
    xen.initialize().unwrap();
    Host { m, xen }
}

fn fault(h: &Host, op: HypercallCode, sub: u32, errno: Errno) {
    h.m.hv.inject_hypercall_fault(HypercallFault {
        op: op.0,
        sub: Some(sub),
        nth: 1,
        count: 1,
        errno,
    });
}

struct Nop;
impl EvtchnCallback for Nop {
    fn call(&self) -> bool {
        true
    }
}

#[test]
fn shared_info_acquire_fails_cleanly_and_returns_its_hole_page() {
    let h = host();
    let si = leak(SharedInfo::new(h.xen, &*h.m.guest));
    fault(
        &h,
        HypercallCode::MEMORY_OP,
        MemoryOp::ADD_TO_PHYSMAP.0,
        Errno::ENOMEM,
    );
    assert_eq!(si.acquire(), Err(STATUS_NO_MEMORY));
    assert!(!si.is_mapped());
    assert!(h.m.guest.violations().is_empty());
    fault(
        &h,
        HypercallCode::MEMORY_OP,
        MemoryOp::DECREASE_RESERVATION.0,
        Errno::EINVAL,
    );
    assert!(si.acquire().is_err());
    si.acquire().unwrap();
}

#[test]
fn evtchn_open_and_close_failures_are_statuses() {
    let h = host();
    let si = leak(SharedInfo::new(h.xen, &*h.m.guest));
    si.acquire().unwrap();
    let e = leak(Evtchn::new(h.xen, &*h.m.guest, si));
    fault(
        &h,
        HypercallCode::EVENT_CHANNEL_OP,
        EvtchnOp::ALLOC_UNBOUND.0,
        Errno::ENOSPC,
    );
    assert_eq!(
        e.open(Kind::Unbound { remote_domain: 0 }, false, Arc::new(Nop))
            .err(),
        Some(STATUS_INSUFFICIENT_RESOURCES)
    );
    fault(
        &h,
        HypercallCode::EVENT_CHANNEL_OP,
        EvtchnOp::BIND_INTERDOMAIN.0,
        Errno::EINVAL,
    );
    assert_eq!(
        e.open(
            Kind::InterDomain {
                remote_domain: 0,
                remote_port: 1
            },
            false,
            Arc::new(Nop)
        )
        .err(),
        Some(STATUS_INVALID_PARAMETER)
    );
    let ch = e
        .open(Kind::Unbound { remote_domain: 0 }, false, Arc::new(Nop))
        .unwrap();
    fault(
        &h,
        HypercallCode::EVENT_CHANNEL_OP,
        EvtchnOp::SEND.0,
        Errno::EINVAL,
    );
    e.send(ch);
    fault(
        &h,
        HypercallCode::EVENT_CHANNEL_OP,
        EvtchnOp::CLOSE.0,
        Errno::EINVAL,
    );
    e.close(ch);
    assert_eq!(e.open_channels(), 0);
}

#[test]
fn gnttab_failures_unwind() {
    let h = host();
    let g = leak(Gnttab::new(h.xen, &*h.m.guest));
    fault(
        &h,
        HypercallCode::GRANT_TABLE_OP,
        GnttabOp::QUERY_SIZE.0,
        Errno::ENOSYS,
    );
    assert_eq!(g.acquire(), Err(STATUS_NOT_IMPLEMENTED));
    fault(
        &h,
        HypercallCode::MEMORY_OP,
        MemoryOp::ADD_TO_PHYSMAP.0,
        Errno::EINVAL,
    );
    assert_eq!(g.acquire(), Err(STATUS_INVALID_PARAMETER));
    assert!(h.m.guest.violations().is_empty());
    g.acquire().unwrap();
    let (a, _) = h.m.hv.backend_grant_page(0, false).unwrap();
    let (b, _) = h.m.hv.backend_grant_page(0, false).unwrap();
    // The second map fails: the first is unmapped again.
    h.m.hv.inject_hypercall_fault(HypercallFault {
        op: HypercallCode::GRANT_TABLE_OP.0,
        sub: Some(GnttabOp::MAP_GRANT_REF.0),
        nth: 2,
        count: 1,
        errno: Errno::ENOMEM,
    });
    assert!(g.map_foreign_pages(0, &[a, b], false).is_err());
    assert!(h.m.hv.guest_foreign_mappings().is_empty());
    assert!(h.m.guest.violations().is_empty());
    let addr = g.map_foreign_pages(0, &[a, b], false).unwrap();
    g.unmap_foreign_pages(addr).unwrap();
}

#[test]
fn store_survives_a_lost_event_and_a_corrupted_ring() {
    let h = host();
    let xs = Arc::new(Mutex::new(Xenstored::default()));
    let _svc = StoreService::attach(h.m, &xs);
    let mut ts = Toolstack::new(&xs, Box::new(HvGrants::new(h.m.hv.clone())));
    ts.create_domain(&StoreService::domain_config(h.m)).unwrap();
    let si = leak(SharedInfo::new(h.xen, &*h.m.guest));
    si.acquire().unwrap();
    let e = leak(Evtchn::new(h.xen, &*h.m.guest, si));
    let slot: &'static OnceLock<&'static Evtchn> = leak(OnceLock::new());
    slot.set(e).ok();
    let upcalls = leak(AtomicUsize::new(0));
    h.m.hv.set_upcall_handler(Some(Arc::new(move |vcpu| {
        upcalls.fetch_add(1, Ordering::SeqCst);
        if let Some(e) = slot.get() {
            e.interrupt(vcpu);
        }
    })));
    e.enable_interrupts(None, 28);
    let g = leak(Gnttab::new(h.xen, &*h.m.guest));
    g.acquire().unwrap();
    let store = leak(Store::new(h.xen, &*h.m.guest, 7));
    let _channel = store.acquire(g, e).unwrap();
    store.write(None, None, b"data/a", b"1").unwrap();
    // The guest loses the reply's event: the 5 s poll period recovers it.
    let port = h.m.store().guest_port;
    h.m.hv.inject_event_fault(EventFault {
        dom: Some(h.m.hv.domid()),
        port: Some(port),
        kind: EventFaultKind::Drop,
        count: 1,
    });
    assert_eq!(store.read(None, None, b"data/a").unwrap(), b"1");
    // Corrupted indices: a defined status, then recovery at resume.
    let ring = xenbus::shared::map_pfn(&*h.m.guest, h.m.layout().store_gfn).unwrap();
    let cons = ring.load_u32(2056).unwrap();
    ring.store_u32(2060, cons.wrapping_add(5000)).unwrap();
    assert_eq!(
        store.read(None, None, b"data/a"),
        Err(STATUS_UNEXPECTED_IO_ERROR)
    );
    // Until a resume resets the stream, requests fail at once instead of waiting on a
    // ring that cannot be trusted.
    assert_eq!(
        store.write(None, None, b"data/a", b"2"),
        Err(STATUS_UNEXPECTED_IO_ERROR)
    );
    assert!(h.m.guest.violations().is_empty());
}
