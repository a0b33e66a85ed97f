//! Scenario tests: the FIFO event channel ABI — control blocks, event array pages, the 16
//! priority queues, LINKED/MASKED/PENDING semantics, queue heads and stale tails.

/// Heap use above DISPATCH_LEVEL panics, as pool use there bug-checks a real kernel.
#[global_allocator]
static ALLOCATOR: common::irql::model::CheckingAllocator =
    common::irql::model::CheckingAllocator::SYSTEM;

mod hvsupport;

use std::sync::atomic::Ordering;

use common::os::Os;
use hvsupport::*;
use xen_sim::hv::abi::*;
use xen_sim::machine::Machine;

const PENDING: u32 = 1 << EVTCHN_FIFO_PENDING;
const MASKED: u32 = 1 << EVTCHN_FIFO_MASKED;
const LINKED: u32 = 1 << EVTCHN_FIFO_LINKED;

/// A guest-side FIFO setup for vCPU 0: control block page and one event array page.
struct Fifo {
    cb: GuestPage,
    array: GuestPage,
}

impl Fifo {
    fn init(m: &Machine) -> Self {
        let cbp = m.guest.alloc_page().unwrap();
        let mut ic = EvtchnInitControl {
            control_gfn: cbp.pfn,
            offset: 0,
            vcpu: 0,
            ..Default::default()
        };
        assert_eq!(evtchn(m, EvtchnOp::INIT_CONTROL, &mut ic), 0);
        assert_eq!(ic.link_bits as u32, EVTCHN_FIFO_LINK_BITS);
        let arr = m.guest.alloc_page().unwrap();
        let array = GuestPage { va: arr.va };
        // The guest initialises new event words MASKED before handing the page over.
        for i in 0..1024 {
            array.u32(i * 4).store(MASKED, Ordering::SeqCst);
        }
        let mut ea = EvtchnExpandArray { array_gfn: arr.pfn };
        assert_eq!(evtchn(m, EvtchnOp::EXPAND_ARRAY, &mut ea), 0);
        Fifo {
            cb: GuestPage { va: cbp.va },
            array,
        }
    }
    fn word(&self, port: u32) -> u32 {
        self.array.u32(port as usize * 4).load(Ordering::SeqCst)
    }
    fn set_word(&self, port: u32, v: u32) {
        self.array.u32(port as usize * 4).store(v, Ordering::SeqCst)
    }
    fn ready(&self) -> u32 {
        self.cb
            .u32(EVTCHN_FIFO_CONTROL_READY)
            .load(Ordering::SeqCst)
    }
    fn head(&self, prio: u32) -> u32 {
        self.cb
            .u32(EVTCHN_FIFO_CONTROL_HEAD + prio as usize * 4)
            .load(Ordering::SeqCst)
    }
    /// Consume the head event of a queue as a guest does: returns the port.
    fn pop(&self, prio: u32) -> Option<u32> {
        let port = self.head(prio);
        if port == 0 {
            return None;
        }
        let w = self.word(port);
        let next = w & EVTCHN_FIFO_LINK_MASK;
        self.cb
            .u32(EVTCHN_FIFO_CONTROL_HEAD + prio as usize * 4)
            .store(next, Ordering::SeqCst);
        // Unlink and acknowledge.
        self.set_word(port, w & !(LINKED | EVTCHN_FIFO_LINK_MASK | PENDING));
        if next == 0 {
            self.cb
                .u32(EVTCHN_FIFO_CONTROL_READY)
                .fetch_and(!(1 << prio), Ordering::SeqCst);
        }
        Some(port)
    }
}

fn set_priority(m: &Machine, port: u32, priority: u32) -> isize {
    let mut a = EvtchnSetPriority { port, priority };
    evtchn(m, EvtchnOp::SET_PRIORITY, &mut a)
}

#[test]
fn events_queue_in_order_and_ready_bits_follow_priorities() {
    let m = Machine::new();
    let si = GuestSharedInfo::map(&m);
    let fifo = Fifo::init(&m);
    assert!(m.hv.evtchn_fifo_active());
    let (a, ba) = dom0_channel(&m);
    let (b, bb) = dom0_channel(&m);
    let (c, bc) = dom0_channel(&m);
    for p in [a, b, c] {
        fifo.set_word(p, fifo.word(p) & !MASKED);
    }
    si.take_upcall(0);
    m.hv.backend_send(0, ba).unwrap();
    assert_eq!(fifo.word(a), PENDING | LINKED);
    assert_eq!(fifo.head(EVTCHN_FIFO_PRIORITY_DEFAULT), a);
    assert_eq!(fifo.ready(), 1 << EVTCHN_FIFO_PRIORITY_DEFAULT);
    assert!(si.take_upcall(0));
    // Same queue: linked behind a through a's link field; no new upcall.
    m.hv.backend_send(0, bb).unwrap();
    assert_eq!(fifo.word(a) & EVTCHN_FIFO_LINK_MASK, b);
    assert!(!si.take_upcall(0));
    // Already pending and linked: nothing changes.
    m.hv.backend_send(0, bb).unwrap();
    assert_eq!(fifo.word(b), PENDING | LINKED);
    // A higher-priority queue gets its own head and ready bit.
    assert_eq!(set_priority(&m, c, 2), 0);
    m.hv.backend_send(0, bc).unwrap();
    assert_eq!(fifo.head(2), c);
    assert_eq!(fifo.ready(), (1 << 2) | (1 << EVTCHN_FIFO_PRIORITY_DEFAULT));
    assert_eq!(fifo.pop(2), Some(c));
    assert_eq!(fifo.pop(EVTCHN_FIFO_PRIORITY_DEFAULT), Some(a));
    assert_eq!(fifo.pop(EVTCHN_FIFO_PRIORITY_DEFAULT), Some(b));
    assert_eq!(fifo.ready(), 0);
    // The queue's tail (b) was consumed: a new event starts a fresh queue at the head
    // instead of linking behind the stale tail.
    m.hv.backend_send(0, ba).unwrap();
    assert_eq!(fifo.head(EVTCHN_FIFO_PRIORITY_DEFAULT), a);
    assert_eq!(fifo.word(b) & EVTCHN_FIFO_LINK_MASK, 0);
    assert_eq!(fifo.ready(), 1 << EVTCHN_FIFO_PRIORITY_DEFAULT);
    assert!(si.take_upcall(0));
}

#[test]
fn masked_events_stay_pending_until_unmask_links_them() {
    let m = Machine::new();
    let si = GuestSharedInfo::map(&m);
    let fifo = Fifo::init(&m);
    let (a, ba) = dom0_channel(&m);
    m.hv.backend_send(0, ba).unwrap();
    assert_eq!(
        fifo.word(a),
        MASKED | PENDING,
        "pending but not linked while masked"
    );
    assert_eq!(fifo.ready(), 0);
    si.take_upcall(0);
    // Guest unmask: clear MASKED, see PENDING, ask Xen to re-deliver.
    fifo.set_word(a, fifo.word(a) & !MASKED);
    assert_eq!(unmask(&m, a), 0);
    assert_eq!(fifo.word(a), PENDING | LINKED);
    assert_eq!(fifo.head(EVTCHN_FIFO_PRIORITY_DEFAULT), a);
    assert!(si.take_upcall(0));
    // Closing clears PENDING in the word.
    let mut c = EvtchnClose { port: a };
    assert_eq!(evtchn(&m, EvtchnOp::CLOSE, &mut c), 0);
    assert_eq!(fifo.word(a) & PENDING, 0);
}

#[test]
fn ports_beyond_the_array_wait_for_expand_array() {
    let mut cfg = xen_sim::machine::MachineConfig::default();
    cfg.hv.max_evtchn_port = 4095;
    let m = Machine::with_config(cfg);
    let _si = GuestSharedInfo::map(&m);
    let fifo = Fifo::init(&m);
    // Fill ports up to 1024 so the next one lies in the second array page.
    let mut last = 0;
    while last < 1024 {
        last = alloc_unbound(&m, DomId::DOM0);
    }
    let bport =
        m.hv.backend_bind_interdomain(0, m.hv.domid(), last)
            .unwrap();
    m.hv.backend_send(0, bport).unwrap();
    assert_eq!(fifo.ready(), 0);
    let page = m.guest.alloc_page().unwrap();
    let second = GuestPage { va: page.va };
    let mut ea = EvtchnExpandArray {
        array_gfn: page.pfn,
    };
    assert_eq!(evtchn(&m, EvtchnOp::EXPAND_ARRAY, &mut ea), 0);
    // Words of the new page start at zero (unmasked): the carried event links at once.
    let w = second
        .u32((last as usize % 1024) * 4)
        .load(Ordering::SeqCst);
    assert_eq!(w, PENDING | LINKED);
    assert_eq!(fifo.head(EVTCHN_FIFO_PRIORITY_DEFAULT), last);
}

#[test]
fn fifo_op_errors_and_reset_back_to_two_level() {
    let m = Machine::new();
    let _si = GuestSharedInfo::map(&m);
    let page = m.guest.alloc_page().unwrap();
    let mut ea = EvtchnExpandArray {
        array_gfn: page.pfn,
    };
    assert_eq!(
        evtchn(&m, EvtchnOp::EXPAND_ARRAY, &mut ea),
        err(Errno::EOPNOTSUPP)
    );
    assert_eq!(
        set_priority(&m, 1, 3),
        err(Errno::ENOSYS),
        "2-level has no priorities"
    );
    let mut ic = EvtchnInitControl {
        control_gfn: page.pfn,
        offset: 4,
        vcpu: 0,
        ..Default::default()
    };
    assert_eq!(
        evtchn(&m, EvtchnOp::INIT_CONTROL, &mut ic),
        err(Errno::EINVAL)
    );
    ic.offset = 4096 - 8;
    assert_eq!(
        evtchn(&m, EvtchnOp::INIT_CONTROL, &mut ic),
        err(Errno::EINVAL)
    );
    ic.offset = 0;
    ic.vcpu = 9;
    assert_eq!(
        evtchn(&m, EvtchnOp::INIT_CONTROL, &mut ic),
        err(Errno::ENOENT)
    );
    ic.vcpu = 0;
    ic.control_gfn = m.layout().hole.end - 1;
    assert_eq!(
        evtchn(&m, EvtchnOp::INIT_CONTROL, &mut ic),
        err(Errno::EINVAL)
    );
    ic.control_gfn = page.pfn;
    assert_eq!(evtchn(&m, EvtchnOp::INIT_CONTROL, &mut ic), 0);
    assert_eq!(
        evtchn(&m, EvtchnOp::INIT_CONTROL, &mut ic),
        err(Errno::EINVAL)
    );
    assert_eq!(
        set_priority(&m, 1, EVTCHN_FIFO_MAX_QUEUES as u32),
        err(Errno::EINVAL)
    );
    assert_eq!(set_priority(&m, 1, 0), 0);
    let mut r = EvtchnReset { dom: DomId::SELF };
    assert_eq!(evtchn(&m, EvtchnOp::RESET, &mut r), 0);
    assert!(!m.hv.evtchn_fifo_active());
    // Control blocks are gone too: init_control works again.
    assert_eq!(evtchn(&m, EvtchnOp::INIT_CONTROL, &mut ic), 0);
}

#[test]
fn two_level_pending_state_carries_over_to_fifo() {
    let m = Machine::new();
    let si = GuestSharedInfo::map(&m);
    let (a, ba) = dom0_channel(&m);
    si.set_mask(a, true);
    m.hv.backend_send(0, ba).unwrap();
    assert!(si.pending(a));
    let fifo = Fifo::init(&m);
    // The word did not exist when the event was raised; it is linked on expand (the
    // guest initialised it MASKED, so it stays pending and unlinked until unmasked).
    assert_eq!(fifo.word(a), MASKED | PENDING);
    fifo.set_word(a, PENDING);
    assert_eq!(unmask(&m, a), 0);
    assert_eq!(fifo.head(EVTCHN_FIFO_PRIORITY_DEFAULT), a);
}
