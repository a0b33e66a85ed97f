//! Randomised scenario tests (deterministic seeds): interleavings of backend sends, guest
//! consumption, masking and priority changes must deliver every notification exactly once
//! per "owed" period, in priority order, under both event-channel ABIs.

/// Heap use above DISPATCH_LEVEL panics, as pool use there bug-checks a real kernel.
#[global_allocator]
static ALLOCATOR: common::irql::model::CheckingAllocator =
    common::irql::model::CheckingAllocator::SYSTEM;

mod hvsupport;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;

use common::os::Os;
use hvsupport::*;
use xen_sim::hv::abi::*;
use xen_sim::machine::Machine;

const PENDING: u32 = 1 << EVTCHN_FIFO_PENDING;
const MASKED: u32 = 1 << EVTCHN_FIFO_MASKED;
const LINKED: u32 = 1 << EVTCHN_FIFO_LINKED;

/// xorshift64*: a tiny deterministic generator.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

struct FifoGuest {
    cb: GuestPage,
    array: GuestPage,
}

impl FifoGuest {
    fn word(&self, p: u32) -> &std::sync::atomic::AtomicU32 {
        self.array.u32(p as usize * 4)
    }
    /// Consume one event as Linux's FIFO consumer does: highest priority ready queue, pop
    /// its head, clear the ready bit when the queue empties. Returns (priority, port).
    fn consume_one(&self) -> Option<(u32, u32)> {
        let ready = self
            .cb
            .u32(EVTCHN_FIFO_CONTROL_READY)
            .load(Ordering::SeqCst);
        if ready == 0 {
            return None;
        }
        let prio = ready.trailing_zeros();
        let head = self.cb.u32(EVTCHN_FIFO_CONTROL_HEAD + prio as usize * 4);
        let port = head.load(Ordering::SeqCst);
        assert_ne!(port, 0, "ready bit {prio} set with an empty queue");
        let w = self.word(port);
        let mut cur = w.load(Ordering::SeqCst);
        loop {
            let new = cur & !(LINKED | EVTCHN_FIFO_LINK_MASK);
            match w.compare_exchange(cur, new, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => break,
                Err(x) => cur = x,
            }
        }
        let next = cur & EVTCHN_FIFO_LINK_MASK;
        head.store(next, Ordering::SeqCst);
        if next == 0 {
            self.cb
                .u32(EVTCHN_FIFO_CONTROL_READY)
                .fetch_and(!(1 << prio), Ordering::SeqCst);
        }
        // Deliver only pending, unmasked events (then acknowledge).
        let v = w.load(Ordering::SeqCst);
        if v & PENDING != 0 && v & MASKED == 0 {
            w.fetch_and(!PENDING, Ordering::SeqCst);
            Some((prio, port))
        } else {
            self.consume_one()
        }
    }
}

fn run_fifo(seed: u64) {
    let m = Machine::new();
    let _si = GuestSharedInfo::map(&m);
    let cbp = m.guest.alloc_page().unwrap();
    let mut ic = EvtchnInitControl {
        control_gfn: cbp.pfn,
        vcpu: 0,
        ..Default::default()
    };
    assert_eq!(evtchn(&m, EvtchnOp::INIT_CONTROL, &mut ic), 0);
    let arr = m.guest.alloc_page().unwrap();
    let g = FifoGuest {
        cb: GuestPage { va: cbp.va },
        array: GuestPage { va: arr.va },
    };
    for i in 0..1024 {
        g.word(i).store(MASKED, Ordering::SeqCst);
    }
    let mut ea = EvtchnExpandArray { array_gfn: arr.pfn };
    assert_eq!(evtchn(&m, EvtchnOp::EXPAND_ARRAY, &mut ea), 0);
    let chans: Vec<(u32, u32)> = (0..8).map(|_| dom0_channel(&m)).collect();
    for (p, _) in &chans {
        g.word(*p).fetch_and(!MASKED, Ordering::SeqCst);
        g.word(*p).fetch_and(!PENDING, Ordering::SeqCst); // drop the bind-time fix-up
    }
    // The binds queued events; drain them first.
    while g.consume_one().is_some() {}
    let mut rng = Rng(seed);
    // Owed events with the priority of the queue they were linked on.
    let mut owed: BTreeMap<u32, u32> = BTreeMap::new();
    let mut masked_owed: BTreeSet<u32> = BTreeSet::new();
    let mut masked: BTreeSet<u32> = BTreeSet::new();
    let mut prio: BTreeMap<u32, u32> = BTreeMap::new();
    let cur = |prio: &BTreeMap<u32, u32>, p: u32| {
        prio.get(&p)
            .copied()
            .unwrap_or(EVTCHN_FIFO_PRIORITY_DEFAULT)
    };
    let mut delivered = 0;
    for _ in 0..4000 {
        let (port, bport) = chans[rng.below(chans.len() as u64) as usize];
        match rng.below(10) {
            0..=3 => {
                m.hv.backend_send(0, bport).unwrap();
                if masked.contains(&port) {
                    masked_owed.insert(port);
                } else {
                    let p = cur(&prio, port);
                    owed.entry(port).or_insert(p);
                }
            }
            4..=6 => {
                if let Some((pr, p)) = g.consume_one() {
                    let linked = owed.remove(&p);
                    assert_eq!(
                        linked,
                        Some(pr),
                        "seed {seed}: event on {p} from queue {pr}"
                    );
                    // Nothing of higher priority may still be owed.
                    for (q, qp) in &owed {
                        assert!(
                            *qp >= pr,
                            "seed {seed}: port {q} (prio {qp}) skipped for {p} ({pr})"
                        );
                    }
                    delivered += 1;
                }
            }
            7 => {
                // Mask (guest sets MASKED). An event already linked stays in its queue and is
                // skipped (not acknowledged) by the consumer.
                g.word(port).fetch_or(MASKED, Ordering::SeqCst);
                masked.insert(port);
                if owed.remove(&port).is_some() {
                    masked_owed.insert(port);
                }
            }
            8 => {
                // Unmask as the guest does: clear MASKED, ask Xen to re-link when pending.
                if masked.remove(&port) {
                    let w = g.word(port).fetch_and(!MASKED, Ordering::SeqCst);
                    if masked_owed.remove(&port) {
                        // Still linked from before the mask: it stays in its old queue.
                        let q = if w & LINKED != 0 {
                            linked_queue(&g, port)
                        } else {
                            cur(&prio, port)
                        };
                        owed.insert(port, q);
                    }
                    if w & PENDING != 0 {
                        assert_eq!(unmask(&m, port), 0);
                    }
                }
            }
            _ => {
                let p = rng.below(EVTCHN_FIFO_MAX_QUEUES as u64) as u32;
                let mut sp = EvtchnSetPriority { port, priority: p };
                assert_eq!(evtchn(&m, EvtchnOp::SET_PRIORITY, &mut sp), 0);
                prio.insert(port, p);
            }
        }
    }
    // Unmask everything and drain: nothing owed may be left behind.
    for (port, _) in &chans {
        if masked.remove(port) {
            let w = g.word(*port).fetch_and(!MASKED, Ordering::SeqCst);
            if masked_owed.remove(port) {
                let q = if w & LINKED != 0 {
                    linked_queue(&g, *port)
                } else {
                    cur(&prio, *port)
                };
                owed.insert(*port, q);
            }
            if w & PENDING != 0 {
                assert_eq!(unmask(&m, *port), 0);
            }
        }
    }
    while let Some((pr, p)) = g.consume_one() {
        assert_eq!(
            owed.remove(&p),
            Some(pr),
            "seed {seed}: event on {p} while draining"
        );
        delivered += 1;
    }
    assert!(owed.is_empty(), "seed {seed}: lost events {owed:?}");
    assert!(delivered > 100, "seed {seed}: only {delivered} deliveries");
}

/// The queue a linked port sits in (walk every queue from its head).
fn linked_queue(g: &FifoGuest, port: u32) -> u32 {
    for prio in 0..EVTCHN_FIFO_MAX_QUEUES as u32 {
        let mut p =
            g.cb.u32(EVTCHN_FIFO_CONTROL_HEAD + prio as usize * 4)
                .load(Ordering::SeqCst);
        let mut hops = 0;
        while p != 0 && hops < 64 {
            if p == port {
                return prio;
            }
            p = g.word(p).load(Ordering::SeqCst) & EVTCHN_FIFO_LINK_MASK;
            hops += 1;
        }
    }
    panic!("port {port} is LINKED but in no queue");
}

fn run_2l(seed: u64) {
    let m = Machine::new();
    let si = GuestSharedInfo::map(&m);
    let chans: Vec<(u32, u32)> = (0..8).map(|_| dom0_channel(&m)).collect();
    for (p, _) in &chans {
        si.clear_pending(*p);
    }
    si.take_upcall(0);
    si.take_sel(0);
    let mut rng = Rng(seed);
    let mut owed: BTreeSet<u32> = BTreeSet::new();
    let mut masked: BTreeSet<u32> = BTreeSet::new();
    let consume = |si: &GuestSharedInfo, owed: &mut BTreeSet<u32>, masked: &BTreeSet<u32>| {
        // Linux-style scan: upcall flag, selector, pending & ~mask; ack by clearing pending.
        if !si.take_upcall(0) {
            return 0;
        }
        let sel = si.take_sel(0);
        let mut n = 0;
        for word in 0..64u32 {
            if sel & (1 << word) == 0 {
                continue;
            }
            for bit in 0..64u32 {
                let p = word * 64 + bit;
                if si.pending(p) && !masked.contains(&p) {
                    si.clear_pending(p);
                    assert!(owed.remove(&p), "seed {seed}: spurious event on {p}");
                    n += 1;
                }
            }
        }
        n
    };
    let mut delivered = 0;
    for _ in 0..4000 {
        let (port, bport) = chans[rng.below(chans.len() as u64) as usize];
        match rng.below(8) {
            0..=3 => {
                m.hv.backend_send(0, bport).unwrap();
                owed.insert(port);
            }
            4 | 5 => delivered += consume(&si, &mut owed, &masked),
            6 => {
                si.set_mask(port, true);
                masked.insert(port);
            }
            _ => {
                if masked.remove(&port) {
                    // Guest unmask: clear the bit, and let Xen re-raise the selector.
                    assert_eq!(unmask(&m, port), 0);
                }
            }
        }
    }
    for (port, _) in &chans {
        if masked.remove(port) {
            assert_eq!(unmask(&m, *port), 0);
        }
    }
    delivered += consume(&si, &mut owed, &masked);
    assert!(owed.is_empty(), "seed {seed}: lost events {owed:?}");
    assert!(delivered > 100, "seed {seed}: only {delivered} deliveries");
}

#[test]
fn fifo_delivers_every_event_once_in_priority_order() {
    for seed in [1, 2, 3, 0xDEAD_BEEF, 0x1234_5678_9ABC] {
        run_fifo(seed);
    }
}

#[test]
fn two_level_delivers_every_event_once() {
    for seed in [1, 7, 42, 0xFEED_F00D] {
        run_2l(seed);
    }
}
