//! The guest model's DPCs (`Os::dpc_create` / `dpc_queue` / `dpc_destroy`): where and when a
//! queued DPC runs, at which IRQL, and how often.

/// Heap use above DISPATCH_LEVEL panics, as pool use there bug-checks a real kernel.
#[global_allocator]
static ALLOCATOR: common::irql::model::CheckingAllocator =
    common::irql::model::CheckingAllocator::SYSTEM;

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use common::irql::{model, DISPATCH_LEVEL, PASSIVE_LEVEL};
use common::os::{DpcHandle, DpcRoutine, Os};
use common::sync::SpinLock;
use xen_include::status::STATUS_INVALID_PARAMETER;
use xen_sim::guest::{current_processor, WindowsGuest};
use xen_sim::hv::UPCALL_IRQL;
use xen_sim::machine::Machine;

/// One run of a routine: (cpu argument, processor it ran on, IRQL, spin locks held).
type Run = (u32, u32, u8, usize);

/// Records every run; optionally re-queues itself, blocks, or counts nesting.
#[derive(Default)]
struct Recorder {
    runs: Mutex<Vec<Run>>,
    /// Re-queue this many more times from inside the routine.
    requeue: AtomicU32,
    depth: AtomicU32,
    max_depth: AtomicU32,
    /// The guest and own handle, for re-queueing.
    me: OnceLock<(Arc<WindowsGuest>, DpcHandle)>,
    /// Sleep this long inside the routine (ms).
    sleep_ms: AtomicU32,
    finished: AtomicBool,
}

impl DpcRoutine for Recorder {
    fn run(&self, cpu: u32) {
        let d = self.depth.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_depth.fetch_max(d, Ordering::SeqCst);
        self.runs
            .lock()
            .unwrap()
            .push((cpu, current_processor(), model::current(), model::held()));
        let ms = self.sleep_ms.load(Ordering::SeqCst);
        if ms > 0 {
            std::thread::sleep(std::time::Duration::from_millis(u64::from(ms)));
        }
        if self
            .requeue
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            let (g, h) = self.me.get().unwrap();
            assert!(g.dpc_queue(*h), "not queued while it runs");
        }
        self.finished.store(true, Ordering::SeqCst);
        self.depth.fetch_sub(1, Ordering::SeqCst);
    }
}

fn recorder() -> &'static Recorder {
    Box::leak(Box::default())
}

fn runs(r: &Recorder) -> Vec<Run> {
    r.runs.lock().unwrap().clone()
}

#[test]
fn queued_at_passive_runs_at_once_at_dispatch_on_its_processor() {
    let m = Machine::new();
    let g = &m.guest;
    let (r0, r1) = (recorder(), recorder());
    let d0 = g.dpc_create(0, r0).unwrap();
    let d1 = g.dpc_create(1, r1).unwrap();
    assert_eq!(current_processor(), 0);
    assert!(g.dpc_queue(d0));
    assert_eq!(
        runs(r0),
        vec![(0, 0, DISPATCH_LEVEL, 0)],
        "preempted the caller"
    );
    assert!(g.dpc_queue(d1));
    assert_eq!(
        runs(r1),
        vec![(1, 1, DISPATCH_LEVEL, 0)],
        "ran on processor 1"
    );
    assert_eq!(current_processor(), 0);
    assert_eq!(model::current(), PASSIVE_LEVEL);
    assert_eq!((g.dpc_runs(d0), g.dpc_runs(d1)), (1, 1));
    g.dpc_destroy(d0);
    g.dpc_destroy(d1);
    assert_eq!(g.live_dpcs(), 0);
}

#[test]
fn queued_in_an_isr_runs_after_it_returns_once_for_two_queueings() {
    let m = Machine::new();
    let g = &m.guest;
    let (r0, r1) = (recorder(), recorder());
    let d0 = g.dpc_create(0, r0).unwrap();
    let d1 = g.dpc_create(1, r1).unwrap();
    model::interrupt(UPCALL_IRQL, || {
        assert!(g.dpc_queue(d0));
        assert!(!g.dpc_queue(d0), "already queued");
        assert!(g.dpc_queue(d1));
        assert!(
            runs(r0).is_empty() && runs(r1).is_empty(),
            "not inside the ISR"
        );
        assert_eq!((g.queued_dpcs(0), g.queued_dpcs(1)), (1, 1));
    })
    .unwrap();
    assert_eq!(runs(r0), vec![(0, 0, DISPATCH_LEVEL, 0)]);
    assert_eq!(runs(r1), vec![(1, 1, DISPATCH_LEVEL, 0)]);
    assert_eq!((g.queued_dpcs(0), g.queued_dpcs(1)), (0, 0));
    assert_eq!(model::pending_drains(), 0);
    // Queued again after it ran: runs again.
    model::interrupt(UPCALL_IRQL, || assert!(g.dpc_queue(d0))).unwrap();
    assert_eq!(runs(r0).len(), 2);
    g.dpc_destroy(d0);
    g.dpc_destroy(d1);
}

#[test]
fn a_dpc_queued_by_the_upcall_handler_runs_after_the_interrupt_on_its_vcpu() {
    use xen_include::xen::hvm::hvm_op::XenHvmParam;
    use xen_include::xen::hvm::params::HvmParam;
    use xen_include::xen::xen::{DomId, HypercallCode};
    let m = Machine::new();
    let r = recorder();
    let d = m.guest.dpc_create(0, r).unwrap();
    let in_isr = Arc::new(Mutex::new(Vec::new()));
    {
        let (hv, g, in_isr) = (m.hv.clone(), m.guest.clone(), in_isr.clone());
        m.hv.set_upcall_handler(Some(Arc::new(move |v| {
            let si = hv.shared_info_ptr();
            // SAFETY: shared info is a live machine frame; byte 0 of vcpu_info[v] is the flag.
            unsafe { si.add(v as usize * 64).write_volatile(0) };
            let seen = (model::current(), g.dpc_queue(d), g.dpc_runs(d));
            // The test's record, not the driver's pool use.
            model::host_side(|| in_isr.lock().unwrap().push(seen));
        })));
    }
    let mut p = XenHvmParam {
        domid: DomId::SELF,
        index: HvmParam::CALLBACK_IRQ,
        value: 28,
        ..Default::default()
    };
    let rc = common::hypercall::Hypercall::hypercall(
        &*m.hv,
        HypercallCode::HVM_OP.0,
        [0, &mut p as *mut _ as usize, 0, 0, 0],
    );
    assert_eq!(rc, 0);
    let store = m.store();
    m.hv.backend_send(0, store.backend_port).unwrap();
    assert_eq!(*in_isr.lock().unwrap(), vec![(UPCALL_IRQL, true, 0)]);
    assert_eq!(runs(r), vec![(0, 0, DISPATCH_LEVEL, 0)]);
    m.guest.dpc_destroy(d);
}

#[test]
fn queued_under_a_spin_lock_runs_when_it_is_released() {
    let m = Machine::new();
    let g = &m.guest;
    let r = recorder();
    let d = g.dpc_create(0, r).unwrap();
    let lock = SpinLock::new(0u32);
    {
        let _guard = lock.lock();
        assert!(g.dpc_queue(d));
        assert!(runs(r).is_empty(), "held off at DISPATCH_LEVEL");
        assert_eq!(g.queued_dpcs(0), 1);
    }
    // The release lowered the IRQL below DISPATCH_LEVEL: KeLowerIrql runs the DPC.
    assert_eq!(runs(r), vec![(0, 0, DISPATCH_LEVEL, 0)]);
    // Nested locks: only the outermost release lowers the IRQL.
    let inner = SpinLock::new(0u32);
    {
        let _outer = lock.lock();
        {
            let _inner = inner.lock();
            assert!(g.dpc_queue(d));
        }
        assert_eq!(
            runs(r).len(),
            1,
            "still at DISPATCH_LEVEL under the outer lock"
        );
    }
    assert_eq!(runs(r).len(), 2);
    g.dpc_destroy(d);
}

#[test]
fn a_thread_at_dispatch_leaves_its_dpcs_to_the_next_drain_point() {
    let m = Arc::new(Machine::new());
    let r = recorder();
    let d = m.guest.dpc_create(1, r).unwrap();
    let (queued_tx, queued_rx) = std::sync::mpsc::channel();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let t = {
        let m = m.clone();
        std::thread::spawn(move || {
            let lock = SpinLock::new(());
            let _g = lock.lock();
            assert!(m.guest.dpc_queue(d));
            queued_tx.send(()).unwrap();
            go_rx.recv().unwrap();
        })
    };
    queued_rx.recv().unwrap();
    assert!(runs(r).is_empty());
    // This thread is at PASSIVE_LEVEL on processor 0: the hypervisor's drain point after
    // upcall delivery runs processor 1's pending DPC.
    m.hv.deliver_upcalls();
    assert_eq!(runs(r), vec![(1, 1, DISPATCH_LEVEL, 0)]);
    go_tx.send(()).unwrap();
    t.join().unwrap();
    assert_eq!(runs(r).len(), 1, "the lock release found nothing left");
    m.guest.dpc_destroy(d);
}

#[test]
fn destroying_a_queued_dpc_means_it_never_runs() {
    let m = Arc::new(Machine::new());
    let r = recorder();
    let d = m.guest.dpc_create(0, r).unwrap();
    let (queued_tx, queued_rx) = std::sync::mpsc::channel();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let t = {
        let m = m.clone();
        std::thread::spawn(move || {
            let lock = SpinLock::new(());
            {
                let _g = lock.lock();
                assert!(m.guest.dpc_queue(d));
                queued_tx.send(()).unwrap();
                go_rx.recv().unwrap();
            }
            assert_eq!(model::current(), PASSIVE_LEVEL);
        })
    };
    queued_rx.recv().unwrap();
    assert_eq!(m.guest.queued_dpcs(0), 1);
    m.guest.dpc_destroy(d);
    assert_eq!(m.guest.queued_dpcs(0), 0);
    go_tx.send(()).unwrap();
    t.join().unwrap();
    assert!(runs(r).is_empty(), "destroyed before it ran");
    // The handle is gone: queueing or destroying it again is refused and logged.
    m.guest.take_log();
    assert!(!m.guest.dpc_queue(d));
    m.guest.dpc_destroy(d);
    let log = m.guest.take_log();
    assert_eq!(log.len(), 2, "{log:?}");
    assert!(
        log.iter().all(|l| l.contains("unknown DPC handle")),
        "{log:?}"
    );
    assert!(runs(r).is_empty());
}

#[test]
fn destroy_waits_for_a_running_dpc() {
    let m = Arc::new(Machine::new());
    let r = recorder();
    r.sleep_ms.store(200, Ordering::SeqCst);
    let d = m.guest.dpc_create(1, r).unwrap();
    let t = {
        let m = m.clone();
        std::thread::spawn(move || {
            // Runs the DPC on processor 1, on this thread, at once.
            assert!(m.guest.dpc_queue(d));
        })
    };
    while runs(r).is_empty() {
        std::thread::yield_now();
    }
    m.guest.dpc_destroy(d);
    assert!(
        r.finished.load(Ordering::SeqCst),
        "destroy returned while it ran"
    );
    t.join().unwrap();
}

#[test]
fn a_dpc_that_queues_itself_runs_again_after_it_returns() {
    let m = Machine::new();
    let g = m.guest.clone();
    let r = recorder();
    let d = g.dpc_create(1, r).unwrap();
    r.me.set((g.clone(), d)).ok().unwrap();
    r.requeue.store(3, Ordering::SeqCst);
    assert!(g.dpc_queue(d));
    assert_eq!(runs(r), vec![(1, 1, DISPATCH_LEVEL, 0); 4]);
    assert_eq!(r.max_depth.load(Ordering::SeqCst), 1, "never recursively");
    assert_eq!(g.queued_dpcs(1), 0);
    g.dpc_destroy(d);
}

#[test]
fn bad_processors_and_irqls_are_refused() {
    let m = Machine::new();
    let g = &m.guest;
    let r = recorder();
    assert_eq!(
        g.dpc_create(g.maximum_processor_count(), r),
        Err(STATUS_INVALID_PARAMETER)
    );
    assert!(g.take_log().iter().any(|l| l.contains("out of range")));
    assert_eq!(g.live_dpcs(), 0);
    let d = g.dpc_create(0, r).unwrap();
    let lock = SpinLock::new(());
    let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _g = lock.lock();
        g.dpc_destroy(d);
    }));
    assert!(refused.is_err(), "dpc_destroy at DISPATCH_LEVEL is refused");
    assert_eq!(g.live_dpcs(), 1);
    g.dpc_destroy(d);
    assert_eq!(g.live_dpcs(), 0);
}

#[test]
fn high_importance_dpcs_queued_together_run_newest_first() {
    let m = Machine::new();
    let g = &m.guest;
    let order = Arc::new(Mutex::new(Vec::new()));
    struct Named(u32, Arc<Mutex<Vec<u32>>>);
    impl DpcRoutine for Named {
        fn run(&self, _cpu: u32) {
            self.1.lock().unwrap().push(self.0);
        }
    }
    let d: Vec<DpcHandle> = (0..3)
        .map(|i| {
            let r: &'static Named = Box::leak(Box::new(Named(i, order.clone())));
            g.dpc_create(0, r).unwrap()
        })
        .collect();
    model::interrupt(UPCALL_IRQL, || {
        for h in &d {
            assert!(g.dpc_queue(*h));
        }
    })
    .unwrap();
    // KeInsertQueueDpc puts a HighImportance DPC at the head of the queue.
    assert_eq!(*order.lock().unwrap(), [2, 1, 0]);
    for h in d {
        g.dpc_destroy(h);
    }
}
