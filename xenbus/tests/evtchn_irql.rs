//! EVTCHN above DISPATCH_LEVEL under the IRQL model's checking allocator (this binary's
//! global allocator): the upcall's interrupt service routine (DIRQL), the suspend's early
//! phase (HIGH_LEVEL) and Send/Unmask at HIGH_LEVEL neither allocate nor free, and take no
//! DISPATCH_LEVEL lock (the model refuses one above its level). Issue 7: the ISR used to
//! poll and queue (a `Vec` push) under an interim lock taken at DIRQL, and the early phase
//! cleared the port table (freeing).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use common::irql::model::{self, CheckingAllocator};
use common::irql::{DISPATCH_LEVEL, HIGH_LEVEL};
use xen_include::api::XenApi;
use xen_include::xen::sched::ShutdownReason;
use xen_sim::hv::{SuspendOutcome, UpcallMode};
use xen_sim::machine::Machine;
use xenbus::evtchn::{Evtchn, EvtchnCallback, Kind};
use xenbus::shared_info::SharedInfo;

#[global_allocator]
static ALLOCATOR: CheckingAllocator = CheckingAllocator::SYSTEM;

fn leak<T>(t: T) -> &'static T {
    Box::leak(Box::new(t))
}

/// Counts its calls and the IRQL of the last one.
#[derive(Default)]
struct Counter {
    calls: AtomicUsize,
    irql: AtomicUsize,
}

impl EvtchnCallback for Counter {
    fn call(&self) -> bool {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.irql
            .store(usize::from(common::irql::current()), Ordering::SeqCst);
        true
    }
}

struct Rig {
    m: &'static Machine,
    xen: &'static xen::driver::Xen<'static>,
    si: &'static SharedInfo,
    e: &'static Evtchn,
    isr_calls: &'static AtomicUsize,
}

fn rig() -> Rig {
    assert!(
        model::checking_allocator_installed(),
        "this binary checks heap use"
    );
    let m: &'static Machine = leak(Machine::new());
    let xen = leak(xen::driver::Xen::new(&*m.hv, &*m.guest, None, None));
    xen.initialize().unwrap();
    let si = leak(SharedInfo::new(xen, &*m.guest));
    si.acquire().unwrap();
    let e = leak(Evtchn::new(xen, &*m.guest, si));
    let slot: &'static OnceLock<&'static Evtchn> = leak(OnceLock::new());
    slot.set(e).ok();
    let isr_calls = leak(AtomicUsize::new(0));
    m.hv.set_upcall_handler(Some(Arc::new(move |vcpu| {
        if let Some(e) = slot.get() {
            if e.interrupt(vcpu) {
                isr_calls.fetch_add(1, Ordering::SeqCst);
            }
        }
    })));
    e.enable_interrupts(None, 28);
    Rig {
        m,
        xen,
        si,
        e,
        isr_calls,
    }
}

impl Rig {
    /// An UNBOUND channel for dom0, bound by dom0 and unmasked; (handle, dom0 port).
    fn channel(&self, cb: Arc<Counter>) -> (usize, u32) {
        let h = self
            .e
            .open(Kind::Unbound { remote_domain: 0 }, false, cb)
            .unwrap();
        let port = self.e.channel(h).unwrap().port();
        let dom0 = self
            .m
            .hv
            .backend_bind_interdomain(0, self.m.hv.domid(), port)
            .unwrap();
        let _ = self.e.abi_unmask(port);
        (h, dom0)
    }
}

#[test]
fn the_isr_neither_allocates_nor_takes_a_dispatch_level_lock() {
    for fifo in [false, true] {
        let r = rig();
        assert_eq!(r.e.use_fifo(fifo), fifo);
        let cbs: Vec<Arc<Counter>> = (0..80).map(|_| Arc::default()).collect();
        let opened: Vec<_> = cbs.iter().map(|cb| r.channel(cb.clone())).collect();
        // Many events at once: the DPC's pending list grows (allocation at DISPATCH_LEVEL,
        // legal), the ISR only takes the flag.
        r.m.hv.set_upcall_mode(UpcallMode::Deferred);
        for (_, dom0) in &opened {
            r.m.hv.backend_send(0, *dom0).unwrap();
        }
        let isr = r.isr_calls.load(Ordering::SeqCst);
        r.m.hv.deliver_upcalls();
        r.m.hv.set_upcall_mode(UpcallMode::Immediate);
        assert_eq!(r.isr_calls.load(Ordering::SeqCst), isr + 1, "fifo {fifo}");
        for cb in &cbs {
            assert_eq!(cb.calls.load(Ordering::SeqCst), 1, "fifo {fifo}");
            assert_eq!(cb.irql.load(Ordering::SeqCst), usize::from(DISPATCH_LEVEL));
        }
        // Send and Unmask at HIGH_LEVEL (a child's ISR, the console's HIGH_LEVEL lock).
        let (h, _) = opened[0];
        model::raised(HIGH_LEVEL, || {
            r.e.send(h);
            r.e.unmask(h, false, false);
        });
        for (h, _) in opened {
            r.e.close(h);
        }
        assert_eq!(r.e.open_channels(), 0);
    }
}

#[test]
fn the_suspend_early_phase_neither_allocates_nor_frees() {
    let r = rig();
    let cb = Arc::new(Counter::default());
    let (h, dom0) = r.channel(cb.clone());
    // Deliveries pending (a Trigger on the list, an event in the ABI) and a closed channel
    // still on the list: nothing of them may be freed at HIGH_LEVEL.
    let closed = Arc::new(Counter::default());
    let (hc, _) = r.channel(closed.clone());
    model::raised(DISPATCH_LEVEL, || {
        r.e.trigger(hc);
        r.e.close(hc);
        drop(closed);
        r.e.trigger(h);
        r.m.hv.set_upcall_mode(UpcallMode::Deferred);
        r.m.hv.backend_send(0, dom0).unwrap();
        model::raised(HIGH_LEVEL, || {
            r.m.hv.set_suspend_outcome(SuspendOutcome::Resume);
            r.xen.sched_shutdown(ShutdownReason::SUSPEND.0).unwrap();
            r.e.suspend_early();
            r.si.suspend_early();
        });
    });
    r.m.hv.set_upcall_mode(UpcallMode::Immediate);
    assert_eq!(cb.calls.load(Ordering::SeqCst), 0, "inactive: never called");
    // LATE (DISPATCH_LEVEL): the clean-up frees there.
    model::raised(DISPATCH_LEVEL, || {
        r.e.disable_interrupts();
        r.e.resume_abi(false);
        r.e.enable_interrupts(None, 28);
    });
    let again = Arc::new(Counter::default());
    let (h2, dom0) = r.channel(again.clone());
    r.m.hv.backend_send(0, dom0).unwrap();
    assert_eq!(again.calls.load(Ordering::SeqCst), 1);
    r.e.close(h);
    r.e.close(h2);
    assert_eq!(r.e.open_channels(), 0);
}
