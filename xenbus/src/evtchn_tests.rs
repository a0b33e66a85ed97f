//! EVTCHN on the simulated machine (spec §10 items 14–17).

use super::*;
use crate::sim::Sim;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use xen_include::xen::event_channel::EvtchnOp;
use xen_include::xen::sched::ShutdownReason;
use xen_include::xen::xen::{HypercallCode, Virq};
use xen_sim::hv::{PortState, SuspendOutcome};

struct Counter(AtomicUsize);

impl EvtchnCallback for Counter {
    fn call(&self) -> bool {
        self.0.fetch_add(1, Ordering::SeqCst);
        true
    }
}

fn counter() -> Arc<Counter> {
    Arc::new(Counter(AtomicUsize::new(0)))
}

struct Rig {
    s: Sim,
    e: &'static Evtchn,
}

fn rig() -> Rig {
    rig_on(Sim::new(2), None)
}

/// EVTCHN over SHARED_INFO on `s`, upcalls routed (per-CPU `vector` when given).
fn rig_on(s: Sim, vector: Option<u8>) -> Rig {
    let si: &'static SharedInfo = Box::leak(Box::new(SharedInfo::new(s.xen, &*s.m.guest)));
    si.acquire().unwrap();
    let e: &'static Evtchn = Box::leak(Box::new(Evtchn::new(s.xen, &*s.m.guest, si)));
    s.m.hv.set_upcall_handler(Some(Arc::new(move |vcpu| {
        e.interrupt(vcpu);
    })));
    e.enable_interrupts(vector, 28);
    Rig { s, e }
}

impl Rig {
    /// An UNBOUND channel for dom0, bound by dom0; returns (handle, dom0 port).
    fn unbound(&self, auto_mask: bool, cb: Arc<Counter>) -> (ChannelHandle, u32) {
        self.unbound_on(None, auto_mask, cb)
    }
    /// [`Rig::unbound`], first bound to `cpu` when given.
    fn unbound_on(
        &self,
        cpu: Option<u32>,
        auto_mask: bool,
        cb: Arc<dyn EvtchnCallback>,
    ) -> (ChannelHandle, u32) {
        let h = self
            .e
            .open(Kind::Unbound { remote_domain: 0 }, auto_mask, cb)
            .unwrap();
        if let Some(cpu) = cpu {
            self.e.bind(h, cpu).unwrap();
        }
        let port = self.e.channel(h).unwrap().port();
        let dom0 = self
            .s
            .m
            .hv
            .backend_bind_interdomain(0, self.s.m.hv.domid(), port)
            .unwrap();
        // Opening leaves the port masked (SHARED_INFO masked everything): unmask it.
        let _ = self.e.abi_unmask(port);
        (h, dom0)
    }
    /// True when a line xen.sys logged contains `needle`.
    fn logged(&self, needle: &str) -> bool {
        let platform = self.s.m.hv.platform();
        platform.log_lines().iter().any(|l| l.contains(needle))
    }
    fn closes(&self) -> u64 {
        self.s
            .m
            .hv
            .call_count(HypercallCode::EVENT_CHANNEL_OP.0, EvtchnOp::CLOSE.0)
    }
}

#[test]
fn delivery_auto_masks_acks_counts_then_calls_back() {
    let r = rig();
    let cb = counter();
    let (h, dom0) = r.unbound(true, cb.clone());
    let c = r.e.channel(h).unwrap();
    let before = cb.0.load(Ordering::SeqCst);
    r.s.m.hv.backend_send(0, dom0).unwrap();
    assert_eq!(cb.0.load(Ordering::SeqCst), before + 1);
    assert_eq!(c.count() as usize, before + 1);
    assert!(r.e.shared_info.evtchn_is_masked(c.port()), "auto-masked");
    assert!(!r.e.shared_info.evtchn_is_pending(c.port()), "acked");
    // While masked a send stays pending; V8 Unmask on the bound CPU hands it to us.
    r.s.m.hv.backend_send(0, dom0).unwrap();
    assert_eq!(cb.0.load(Ordering::SeqCst), before + 1);
    assert!(r.e.unmask(h, false, false));
    assert!(
        !r.e.shared_info.evtchn_is_pending(c.port()),
        "acked by Unmask"
    );
    assert!(
        r.e.shared_info.evtchn_is_masked(c.port()),
        "re-masked (auto)"
    );
    // Forced: pending goes back to Xen, which re-delivers through the upcall.
    r.s.m.hv.backend_send(0, dom0).unwrap();
    assert!(!r.e.unmask(h, false, true));
    assert_eq!(cb.0.load(Ordering::SeqCst), before + 2);
    // In the callback: same, FALSE.
    r.s.m.hv.backend_send(0, dom0).unwrap();
    assert!(!r.e.unmask(h, true, false));
    assert_eq!(cb.0.load(Ordering::SeqCst), before + 3);
    // Nothing pending: FALSE, port left unmasked.
    assert!(!r.e.unmask(h, false, false));
    r.e.close(h);
}

#[test]
fn send_reaches_the_other_end_and_unknown_ports_are_ignored() {
    let r = rig();
    let me = r.s.m.hv.domid();
    let dom0 = r.s.m.hv.evtchn_alloc_unbound(0, me).unwrap();
    let h =
        r.e.open(
            Kind::InterDomain {
                remote_domain: 0,
                remote_port: dom0,
            },
            false,
            counter(),
        )
        .unwrap();
    r.s.m.hv.backend_take_pending(0);
    r.e.send(h);
    assert!(r.s.m.hv.backend_take_pending(0).contains(&dom0));
    // A pending port nobody opened is polled and ignored.
    let stray = r.s.xen.event_channel_allocate_unbound(0).unwrap();
    let stray0 = r.s.m.hv.backend_bind_interdomain(0, me, stray).unwrap();
    r.e.shared_info.evtchn_unmask(stray);
    r.s.m.hv.backend_send(0, stray0).unwrap();
    r.e.close(h);
    assert_eq!(r.e.open_channels(), 0);
}

#[test]
fn virqs_and_cpu_restrictions() {
    let r = rig();
    let cb = counter();
    // No per-CPU upcall on this machine: CPU 1 is refused.
    assert_eq!(
        r.e.open(
            Kind::Virq {
                index: Virq::DEBUG.0,
                cpu: 1
            },
            false,
            cb.clone()
        ),
        Err(STATUS_NOT_SUPPORTED)
    );
    let h =
        r.e.open(
            Kind::Virq {
                index: Virq::DEBUG.0,
                cpu: 0,
            },
            true,
            cb.clone(),
        )
        .unwrap();
    let c = r.e.channel(h).unwrap();
    r.e.shared_info.evtchn_unmask(c.port());
    assert!(r.s.m.hv.raise_virq(0, Virq::DEBUG));
    assert_eq!(cb.0.load(Ordering::SeqCst), 1);
    assert!(
        !r.e.shared_info.evtchn_is_masked(c.port()),
        "VIRQs are never auto-masked"
    );
    assert_eq!(r.e.bind(h, 1), Err(STATUS_NOT_SUPPORTED));
    assert_eq!(r.e.bind(h, 0), Ok(()));
    r.e.close(h);
}

/// A Trigger from a thread on the channel's own CPU runs the callback at DISPATCH_LEVEL,
/// as upstream's DPC does (callbacks use DPC-level locks and must not be preempted or moved
/// to another CPU mid-call). Before, it ran at the caller's PASSIVE_LEVEL.
#[test]
fn a_trigger_on_the_bound_cpu_calls_back_at_dispatch_level() {
    struct AtIrql(std::sync::Mutex<Vec<common::irql::Irql>>);
    impl EvtchnCallback for AtIrql {
        fn call(&self) -> bool {
            self.0.lock().unwrap().push(common::irql::current());
            true
        }
    }
    let r = rig();
    let cb = Arc::new(AtIrql(std::sync::Mutex::default()));
    let (h, _dom0) = r.unbound_on(None, false, cb.clone());
    assert_eq!(
        r.e.channel(h).unwrap().cpu(),
        r.s.m.guest.current_processor()
    );
    assert_eq!(common::irql::current(), common::irql::PASSIVE_LEVEL);
    r.e.trigger(h);
    assert_eq!(*cb.0.lock().unwrap(), [common::irql::DISPATCH_LEVEL]);
}

#[test]
fn trigger_delivers_without_a_hypercall_and_wait_sees_the_count() {
    let r = rig();
    let cb = counter();
    let (h, _dom0) = r.unbound(false, cb.clone());
    let c = r.e.channel(h).unwrap();
    let n = c.count();
    assert_eq!(r.e.wait(h, n + 1, Timeout::Value(0)), STATUS_TIMEOUT);
    assert_eq!(r.e.wait(h, n + 1, Timeout::Value(-10_000)), STATUS_TIMEOUT);
    let absolute = r.s.m.guest.system_time() + 10_000;
    assert_eq!(r.e.wait(h, n + 1, Timeout::Value(absolute)), STATUS_TIMEOUT);
    r.e.trigger(h);
    assert_eq!(c.count(), n + 1);
    assert_eq!(r.e.wait(h, n + 1, Timeout::Forever), STATUS_SUCCESS);
    // Signed wrap-around: a count "behind" the channel is already reached.
    assert_eq!(
        r.e.wait(h, n.wrapping_sub(5), Timeout::Value(0)),
        STATUS_SUCCESS
    );
    let m = c.count();
    assert_eq!(
        r.e.wait(h, m.wrapping_add(0x8000_0000), Timeout::Value(0)),
        STATUS_SUCCESS
    );
    assert_eq!(
        r.e.wait(h, m.wrapping_add(0x7FFF_FFFF), Timeout::Value(0)),
        STATUS_TIMEOUT
    );
    r.e.close(h);
}

#[test]
fn close_unbinds_except_fixed_and_inactive_channels() {
    let r = rig();
    let me = r.s.m.hv.domid();
    let (h, _) = r.unbound(false, counter());
    let port = r.e.channel(h).unwrap().port();
    let closes = r.closes();
    r.e.close(h);
    assert_eq!(r.closes(), closes + 1);
    assert_eq!(
        r.s.m.hv.port_status(me, port).unwrap().state,
        PortState::Free
    );
    assert!(r.e.channel(h).is_none());
    // FIXED: never closed by us.
    let store = r.s.m.store().guest_port;
    let h =
        r.e.open(Kind::Fixed { port: store }, false, counter())
            .unwrap();
    r.e.close(h);
    assert_eq!(r.closes(), closes + 1);
    assert_ne!(
        r.s.m.hv.port_status(me, store).unwrap().state,
        PortState::Free
    );
    // After a resume channels are inactive: Send/Unmask are no-ops, Close issues nothing.
    let cb = counter();
    let (h, _) = r.unbound(true, cb.clone());
    r.s.m.hv.set_suspend_outcome(SuspendOutcome::Resume);
    r.s.xen.sched_shutdown(ShutdownReason::SUSPEND.0).unwrap();
    r.e.shared_info.suspend_early();
    r.e.suspend_early();
    let c = r.e.channel(h).unwrap();
    assert!(!c.is_active());
    r.e.send(h);
    assert!(!r.e.unmask(h, false, false));
    r.e.close(h);
    assert_eq!(
        r.closes(),
        closes + 1,
        "no EVTCHNOP_close for an inactive channel"
    );
    assert_eq!(r.e.open_channels(), 0);
}

/// Per-CPU upcalls on a 2-vCPU machine (channels can be bound to CPU 1).
/// Virtual time stands still (Close's bounded wait then never expires: a loaded host may
/// deschedule the delivering thread for longer than 10^7 clock reads of the closer).
fn smp_rig() -> Rig {
    let r = rig_on(Sim::with_registered_vcpu_info(2), Some(0xF3));
    r.s.m.clock.set_step(0);
    r
}

/// A callback that checks where and when it runs: on its bound CPU only, never once its
/// channel's `Close` returned; it spins a little to widen the race windows.
struct Watched {
    cpu: u32,
    calls: AtomicUsize,
    running: AtomicBool,
    closed: AtomicBool,
    late: AtomicUsize,
    wrong_cpu: AtomicUsize,
    spin: u32,
}

impl Watched {
    fn new(cpu: u32, spin: u32) -> Arc<Self> {
        Arc::new(Self {
            cpu,
            calls: AtomicUsize::new(0),
            running: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            late: AtomicUsize::new(0),
            wrong_cpu: AtomicUsize::new(0),
            spin,
        })
    }
}

impl EvtchnCallback for Watched {
    fn call(&self) -> bool {
        self.running.store(true, Ordering::SeqCst);
        if self.closed.load(Ordering::SeqCst) {
            self.late.fetch_add(1, Ordering::SeqCst);
        }
        if xen_sim::guest::current_processor() != self.cpu {
            self.wrong_cpu.fetch_add(1, Ordering::SeqCst);
        }
        for _ in 0..self.spin {
            std::hint::spin_loop();
        }
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.running.store(false, Ordering::SeqCst);
        true
    }
}

impl Rig {
    /// An UNBOUND channel bound to `cpu`, bound by dom0 and unmasked; (handle, dom0 port).
    fn on_cpu(&self, cpu: u32, cb: Arc<dyn EvtchnCallback>) -> (ChannelHandle, u32) {
        self.unbound_on(Some(cpu), false, cb)
    }
}

/// Spec §10 item 16 / issue 7: two CPUs (host threads, each delivering as its vCPU) take
/// events on long-lived channels while a third thread opens channels on both CPUs,
/// signals them and closes them. Every callback runs on its bound CPU, none runs once its
/// Close returned, and nothing is left open.
#[test]
fn two_cpus_deliver_while_channels_open_and_close() {
    let r = smp_rig();
    let long: Vec<(Arc<Watched>, ChannelHandle, u32)> = (0..2)
        .map(|cpu| {
            let cb = Watched::new(cpu, 0);
            let (h, dom0) = r.on_cpu(cpu, cb.clone());
            (cb, h, dom0)
        })
        .collect();
    let senders: Vec<_> = long
        .iter()
        .map(|(_, _, dom0)| {
            let (hv, dom0) = (r.s.m.hv.clone(), *dom0);
            std::thread::spawn(move || {
                for _ in 0..300 {
                    let _ = hv.backend_send(0, dom0);
                }
            })
        })
        .collect();
    let mut short = Vec::new();
    for i in 0..100u32 {
        let cpu = i % 2;
        let cb = Watched::new(cpu, 200);
        let (h, dom0) = r.on_cpu(cpu, cb.clone());
        let count = r.e.channel(h).unwrap().count();
        let _ = r.s.m.hv.backend_send(0, dom0);
        r.e.trigger(h);
        if i % 4 < 2 {
            // Trigger does not wait for the delivery (another thread may be running the
            // CPU's DPC): half the channels see one before they are closed.
            assert_eq!(r.e.wait(h, count + 1, Timeout::Forever), STATUS_SUCCESS);
        }
        r.e.close(h);
        cb.closed.store(true, Ordering::SeqCst);
        assert!(
            !cb.running.load(Ordering::SeqCst),
            "callback running after Close"
        );
        short.push(cb);
    }
    for t in senders {
        t.join().unwrap();
    }
    for (cb, h, _) in &long {
        assert!(cb.calls.load(Ordering::SeqCst) >= 1);
        r.e.close(*h);
    }
    for cb in long.iter().map(|(cb, _, _)| cb).chain(short.iter()) {
        assert_eq!(cb.late.load(Ordering::SeqCst), 0, "called after Close");
        assert_eq!(
            cb.wrong_cpu.load(Ordering::SeqCst),
            0,
            "called on another CPU"
        );
    }
    // A delivery another CPU's thread took off the queue just before Close is skipped, and
    // a Trigger's may come after Close, so only the channels that waited are sure to have
    // been called.
    for (i, cb) in short.iter().enumerate() {
        if i % 4 < 2 {
            assert!(cb.calls.load(Ordering::SeqCst) >= 1, "channel {i} waited");
        }
    }
    assert_eq!(r.e.open_channels(), 0);
    assert!(r.s.m.guest.violations().is_empty());
}

/// Spec §10 item 15: V8 Unmask of a pending event returns TRUE only on the bound CPU; from
/// another CPU it hands the event back to Xen (FALSE), which delivers it on the bound CPU.
#[test]
fn unmask_on_another_cpu_hands_the_event_back_to_xen() {
    let r = smp_rig();
    let cb = Watched::new(1, 0);
    let (h, dom0) = r.unbound_on(Some(1), true, cb.clone());
    let port = r.e.channel(h).unwrap().port();
    r.s.m.hv.backend_send(0, dom0).unwrap();
    assert_eq!(cb.calls.load(Ordering::SeqCst), 1);
    assert!(r.e.abi_is_masked(port), "auto-masked");
    r.s.m.hv.backend_send(0, dom0).unwrap();
    assert_eq!(cb.calls.load(Ordering::SeqCst), 1, "pending while masked");
    let unmasks =
        r.s.m
            .hv
            .call_count(HypercallCode::EVENT_CHANNEL_OP.0, EvtchnOp::UNMASK.0);
    assert!(!r.e.unmask(h, false, false), "CPU 0 is not the bound CPU");
    assert_eq!(
        r.s.m
            .hv
            .call_count(HypercallCode::EVENT_CHANNEL_OP.0, EvtchnOp::UNMASK.0),
        unmasks + 1
    );
    assert_eq!(cb.calls.load(Ordering::SeqCst), 2, "re-delivered by Xen");
    assert_eq!(cb.wrong_cpu.load(Ordering::SeqCst), 0, "on CPU 1");
    // On CPU 1 itself the caller gets it.
    r.s.m.hv.backend_send(0, dom0).unwrap();
    assert!(xen_sim::guest::run_on(1, || r.e.unmask(h, false, false)));
    assert_eq!(cb.calls.load(Ordering::SeqCst), 2, "handled by the caller");
    r.e.close(h);
}

/// Close racing a delivery on another CPU (spec §10 item 16, "Close deferred to the CPU's
/// DPC" — see the module notes for why a synchronous Close is equivalent): CPU 1 keeps
/// delivering a slow callback while CPU 0 closes its channel; when Close returns the
/// callback is not running and it is never called again; the close hypercall comes after.
#[test]
fn close_racing_a_delivery_on_another_cpu_is_safe() {
    let r = smp_rig();
    for _ in 0..20 {
        let cb = Watched::new(1, 20_000);
        let (h, dom0) = r.on_cpu(1, cb.clone());
        let stop = Arc::new(AtomicBool::new(false));
        let sender = {
            let (hv, stop) = (r.s.m.hv.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let _ = hv.backend_send(0, dom0);
                }
            })
        };
        while cb.calls.load(Ordering::SeqCst) == 0 {
            std::thread::yield_now();
        }
        // Close while the callback is (very likely) running on CPU 1.
        while !cb.running.load(Ordering::SeqCst) {
            std::hint::spin_loop();
        }
        r.e.close(h);
        cb.closed.store(true, Ordering::SeqCst);
        assert!(
            !cb.running.load(Ordering::SeqCst),
            "callback running after Close"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
        stop.store(true, Ordering::SeqCst);
        sender.join().unwrap();
        assert_eq!(cb.late.load(Ordering::SeqCst), 0, "called after Close");
    }
    assert_eq!(r.e.open_channels(), 0);
    assert!(!r.logged("still runs on another CPU"));
}

/// A callback that blocks (on another CPU) until released.
struct Blocked {
    entered: AtomicBool,
    release: AtomicBool,
}

impl EvtchnCallback for Blocked {
    fn call(&self) -> bool {
        self.entered.store(true, Ordering::SeqCst);
        while !self.release.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        true
    }
}

/// A callback blocked on something the closer holds cannot deadlock Close: it gives up
/// after 1 s (Os clock) with a warning, and the port is still closed.
#[test]
fn close_gives_up_waiting_for_a_blocked_callback_after_a_second() {
    let r = rig_on(Sim::with_registered_vcpu_info(2), Some(0xF3));
    r.s.m.clock.set_step(100_000); // 1 s of Os clock = 10^4 reads
    let cb = Arc::new(Blocked {
        entered: AtomicBool::new(false),
        release: AtomicBool::new(false),
    });
    let (h, dom0) = r.on_cpu(1, cb.clone());
    let hv = r.s.m.hv.clone();
    let sender = std::thread::spawn(move || {
        let _ = hv.backend_send(0, dom0);
    });
    while !cb.entered.load(Ordering::SeqCst) {
        std::thread::yield_now();
    }
    let closes = r.closes();
    let t0 = r.s.m.clock.peek_ns();
    r.e.close(h);
    assert!(r.s.m.clock.peek_ns() - t0 >= 1_000_000_000, "waited 1 s");
    assert!(r.logged("still runs on another CPU"));
    assert_eq!(r.closes(), closes + 1);
    cb.release.store(true, Ordering::SeqCst);
    sender.join().unwrap();
    assert_eq!(r.e.open_channels(), 0);
}

/// A Wait without timeout on a channel another thread closes ends with a defined status.
#[test]
fn a_wait_for_ever_ends_when_its_channel_is_closed() {
    let r = rig();
    let (h, _) = r.unbound(false, counter());
    let n = r.e.channel(h).unwrap().count();
    let e = r.e;
    let waiter = std::thread::spawn(move || e.wait(h, n + 1, Timeout::Forever));
    std::thread::sleep(std::time::Duration::from_millis(20));
    r.e.close(h);
    assert_eq!(waiter.join().unwrap(), STATUS_INVALID_PARAMETER);
    assert_eq!(
        r.e.wait(h, n + 1, Timeout::Forever),
        STATUS_INVALID_PARAMETER
    );
}

/// The bound on Close's wait is measured on the Os clock, which is the wall clock: a step
/// back (time sync) must not stretch it to the size of the step, a step forward (resume on
/// a host whose clock differs) must not end it at once. Before, the first waited until the
/// clock caught up again (10 s more here), the second gave up without waiting.
#[test]
fn close_waits_its_second_across_wall_clock_steps() {
    const STEP_NS: u64 = 10 * 1_000_000_000;
    for back in [true, false] {
        let r = rig_on(Sim::with_registered_vcpu_info(2), Some(0xF3));
        // 1 s of Os clock = 10^7 reads: time for the stepping thread to run meanwhile.
        r.s.m.clock.set_step(100);
        let wall0 = r.s.m.clock.boot_wall_ns();
        let cb = Arc::new(Blocked {
            entered: AtomicBool::new(false),
            release: AtomicBool::new(false),
        });
        let (h, dom0) = r.on_cpu(1, cb.clone());
        let hv = r.s.m.hv.clone();
        let sender = std::thread::spawn(move || {
            let _ = hv.backend_send(0, dom0);
        });
        while !cb.entered.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        let t0 = r.s.m.clock.peek_ns();
        let clock = r.s.m.clock.clone();
        let stepper = std::thread::spawn(move || {
            // Once Close has waited half its second, step the wall clock.
            while clock.peek_ns() - t0 < 500_000_000 {
                std::thread::yield_now();
            }
            let wall = clock.boot_wall_ns();
            clock.set_boot_wall_ns(if back { wall - STEP_NS } else { wall + STEP_NS });
        });
        r.e.close(h);
        let waited = r.s.m.clock.peek_ns() - t0;
        assert_ne!(r.s.m.clock.boot_wall_ns(), wall0, "stepped during the wait");
        stepper.join().unwrap();
        assert!(
            (1_000_000_000..2_000_000_000).contains(&waited),
            "step back {back}: waited {waited} ns"
        );
        assert!(r.logged("still runs on another CPU"));
        cb.release.store(true, Ordering::SeqCst);
        sender.join().unwrap();
        assert_eq!(r.e.open_channels(), 0);
    }
}

/// A Close waiting for a callback can be overtaken by a suspend and resume (it holds no
/// lock while it waits). By then its port number may belong to a channel opened since (a
/// restore on a new host frees every port): Close must not EVTCHNOP_close it. Before, it
/// closed the new channel's port.
#[test]
fn a_close_overtaken_by_a_resume_leaves_the_reused_port_alone() {
    let r = rig_on(Sim::with_registered_vcpu_info(2), Some(0xF3));
    // Virtual time stands still: Close waits until the callback returns.
    r.s.m.clock.set_step(0);
    let cb = Arc::new(Blocked {
        entered: AtomicBool::new(false),
        release: AtomicBool::new(false),
    });
    let (h, dom0) = r.on_cpu(1, cb.clone());
    let old_port = r.e.channel(h).unwrap().port();
    let hv = r.s.m.hv.clone();
    let sender = std::thread::spawn(move || {
        let _ = hv.backend_send(0, dom0);
    });
    while !cb.entered.load(Ordering::SeqCst) {
        std::thread::yield_now();
    }
    let reopened = std::thread::scope(|scope| {
        let resumer = scope.spawn(|| {
            // Close took the channel out of the table: it now waits for the callback.
            while r.e.open_channels() != 0 {
                std::thread::yield_now();
            }
            r.s.m.hv.set_suspend_outcome(SuspendOutcome::Resume);
            r.s.xen.sched_shutdown(ShutdownReason::SUSPEND.0).unwrap();
            r.e.shared_info.suspend_early();
            r.e.suspend_early();
            let h =
                r.e.open(Kind::Unbound { remote_domain: 0 }, false, counter())
                    .unwrap();
            let port = r.e.channel(h).unwrap().port();
            cb.release.store(true, Ordering::SeqCst);
            (h, port)
        });
        r.e.close(h);
        resumer.join().unwrap()
    });
    let (new, new_port) = reopened;
    assert_eq!(
        new_port, old_port,
        "the restored domain reuses the port number"
    );
    let me = r.s.m.hv.domid();
    assert_ne!(
        r.s.m.hv.port_status(me, new_port).unwrap().state,
        PortState::Free,
        "the new channel's port is still bound"
    );
    assert!(r.logged("not closed: a resume came while its Close waited"));
    sender.join().unwrap();
    r.e.close(new);
    assert_eq!(r.e.open_channels(), 0);
}

/// A suspend and resume can come right after Close let go of the state lock (no lock
/// held, no IRQL raised); the restored domain may then hand the port number to a channel
/// opened since. Close must not mask that channel's port: it masks under the lock, which
/// the suspend's early phase takes too. Before, it masked after letting go and silenced
/// the new channel.
#[test]
fn a_resume_right_after_close_let_go_leaves_the_reused_port_unmasked() {
    let r = rig();
    let (h, _) = r.unbound(false, counter());
    let old_port = r.e.channel(h).unwrap().port();
    let cb = counter();
    let reopened = Arc::new(std::sync::Mutex::new(None));
    {
        let (e, hv, xen, cb, reopened) =
            (r.e, r.s.m.hv.clone(), r.s.xen, cb.clone(), reopened.clone());
        *r.e.close_unlocked_hook.lock().unwrap() = Some(Box::new(move || {
            hv.set_suspend_outcome(SuspendOutcome::Resume);
            xen.sched_shutdown(ShutdownReason::SUSPEND.0).unwrap();
            e.shared_info.suspend_early();
            e.suspend_early();
            e.disable_interrupts();
            e.resume_abi(false);
            e.enable_interrupts(None, 28);
            let h = e
                .open(Kind::Unbound { remote_domain: 0 }, false, cb)
                .unwrap();
            let port = e.channel(h).unwrap().port();
            let dom0 = hv.backend_bind_interdomain(0, hv.domid(), port).unwrap();
            let _ = e.abi_unmask(port);
            *reopened.lock().unwrap() = Some((h, port, dom0));
        }));
    }
    let closes = r.closes();
    r.e.close(h);
    let (new, new_port, dom0) = reopened.lock().unwrap().take().expect("the hook ran");
    assert_eq!(
        new_port, old_port,
        "the restored domain reuses the port number"
    );
    assert_eq!(r.closes(), closes, "a resume came: the port is left alone");
    assert!(
        !r.e.abi_is_masked(new_port),
        "the new channel's port was masked by the old channel's Close"
    );
    r.s.m.hv.backend_send(0, dom0).unwrap();
    assert_eq!(
        cb.0.load(Ordering::SeqCst),
        1,
        "the new channel is delivered"
    );
    r.e.close(new);
    assert_eq!(r.e.open_channels(), 0);
}

/// A callback whose event raises the next event of its channel, which the second call
/// closes: Close must not wait for the CPU's own deliveries. (With delivery in the ISR the
/// second call nested in the first, under a Trigger's DISPATCH_LEVEL delivery; now the
/// ISR only queues the DPC, so the second call follows the first in the CPU's DPC —
/// nesting cannot happen, but the closer is still inside its own CPU's delivery.) Before
/// the per-CPU record of deliveries, Close spun its whole second and warned.
#[test]
fn closing_a_channel_whose_delivery_this_cpu_preempted_does_not_wait() {
    struct Nested {
        e: &'static Evtchn,
        hv: Arc<xen_sim::hv::Hypervisor>,
        handle: std::sync::OnceLock<(ChannelHandle, u32)>,
        calls: AtomicUsize,
    }
    impl EvtchnCallback for Nested {
        fn call(&self) -> bool {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            if let Some((h, dom0)) = self.handle.get() {
                if n == 0 {
                    // The event raises an upcall whose DPC delivers it next.
                    let _ = self.hv.backend_send(0, *dom0);
                } else {
                    self.e.close(*h);
                }
            }
            true
        }
    }
    let r = rig();
    let cb = Arc::new(Nested {
        e: r.e,
        hv: r.s.m.hv.clone(),
        handle: std::sync::OnceLock::new(),
        calls: AtomicUsize::new(0),
    });
    let (h, dom0) = r.unbound_on(None, false, cb.clone());
    cb.handle.set((h, dom0)).unwrap();
    let closes = r.closes();
    r.e.trigger(h);
    assert_eq!(
        cb.calls.load(Ordering::SeqCst),
        2,
        "the Trigger's call, then the event's"
    );
    assert_eq!(r.e.open_channels(), 0);
    assert_eq!(r.closes(), closes + 1);
    assert!(
        !r.logged("still runs on another CPU"),
        "Close waited for a delivery its own CPU preempted"
    );
}

/// A callback that closes its own channel: Close does not wait for itself.
#[test]
fn a_callback_may_close_its_own_channel() {
    struct SelfClose {
        e: &'static Evtchn,
        handle: std::sync::OnceLock<ChannelHandle>,
        calls: AtomicUsize,
    }
    impl EvtchnCallback for SelfClose {
        fn call(&self) -> bool {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if let Some(h) = self.handle.get() {
                self.e.close(*h);
            }
            true
        }
    }
    let r = smp_rig();
    let cb = Arc::new(SelfClose {
        e: r.e,
        handle: std::sync::OnceLock::new(),
        calls: AtomicUsize::new(0),
    });
    let (h, dom0) = r.on_cpu(1, cb.clone());
    cb.handle.set(h).unwrap();
    let closes = r.closes();
    r.s.m.hv.backend_send(0, dom0).unwrap();
    assert_eq!(cb.calls.load(Ordering::SeqCst), 1);
    assert_eq!(r.e.open_channels(), 0);
    assert_eq!(r.closes(), closes + 1);
    let _ = r.s.m.hv.backend_send(0, dom0);
    assert_eq!(cb.calls.load(Ordering::SeqCst), 1, "never again");
    assert!(
        !r.logged("still runs on another CPU"),
        "Close waited for its own caller"
    );
}

mod fifo {
    use super::*;
    use xen_include::xen::errno::Errno;
    use xen_include::xen::hvm::params::HvmParam;
    use xen_sim::hv::HypercallFault;

    fn fifo_rig() -> Rig {
        let r = rig();
        assert!(r.e.use_fifo(true));
        assert!(r.s.m.hv.evtchn_fifo_active());
        r
    }

    #[test]
    fn delivery_unmask_and_close_work_in_the_fifo_abi() {
        let r = fifo_rig();
        let cb = counter();
        let h =
            r.e.open(Kind::Unbound { remote_domain: 0 }, true, cb.clone())
                .unwrap();
        let port = r.e.channel(h).unwrap().port();
        assert!(r.e.abi_is_masked(port), "new event words start MASKED");
        let dom0 =
            r.s.m
                .hv
                .backend_bind_interdomain(0, r.s.m.hv.domid(), port)
                .unwrap();
        r.e.abi_ack(port);
        assert!(!r.e.abi_unmask(port));
        r.s.m.hv.backend_send(0, dom0).unwrap();
        assert_eq!(cb.0.load(Ordering::SeqCst), 1);
        assert!(r.e.abi_is_masked(port), "auto-masked");
        assert!(!r.e.abi_is_pending(port), "acked");
        r.s.m.hv.backend_send(0, dom0).unwrap();
        assert!(r.e.unmask(h, false, false), "pending, on the bound CPU");
        r.s.m.hv.backend_send(0, dom0).unwrap();
        assert!(!r.e.unmask(h, false, true));
        assert_eq!(cb.0.load(Ordering::SeqCst), 2, "forced: Xen re-delivered");
        r.e.close(h);
        assert_eq!(r.e.open_channels(), 0);
    }

    #[test]
    fn a_queue_of_several_events_is_walked_and_unlinked() {
        let r = fifo_rig();
        let cbs: Vec<_> = (0..3).map(|_| counter()).collect();
        let mut handles = Vec::new();
        let mut dom0s = Vec::new();
        for cb in &cbs {
            let h =
                r.e.open(Kind::Unbound { remote_domain: 0 }, false, cb.clone())
                    .unwrap();
            let port = r.e.channel(h).unwrap().port();
            let d =
                r.s.m
                    .hv
                    .backend_bind_interdomain(0, r.s.m.hv.domid(), port)
                    .unwrap();
            r.e.abi_ack(port);
            r.e.abi_unmask(port);
            handles.push(h);
            dom0s.push(d);
        }
        r.s.m.hv.set_upcall_mode(xen_sim::hv::UpcallMode::Deferred);
        for d in &dom0s {
            r.s.m.hv.backend_send(0, *d).unwrap();
        }
        r.s.m.hv.deliver_upcalls();
        for cb in &cbs {
            assert_eq!(cb.0.load(Ordering::SeqCst), 1);
        }
        r.s.m.hv.set_upcall_mode(xen_sim::hv::UpcallMode::Immediate);
        // Linked again after the walk: a second round is delivered too.
        r.s.m.hv.backend_send(0, dom0s[1]).unwrap();
        assert_eq!(cbs[1].0.load(Ordering::SeqCst), 2);
        for h in handles {
            r.e.close(h);
        }
    }

    #[test]
    fn the_event_array_grows_on_demand() {
        let r = fifo_rig();
        let f = r.e.abi().unwrap();
        assert!(!f.is_masked(3000), "beyond the array");
        f.port_enable(3000).unwrap();
        assert!(f.is_masked(3000));
        assert!(f.is_masked(2048), "every new word MASKED");
        assert_eq!(
            f.port_enable(EVTCHN_FIFO_LIMIT),
            Err(STATUS_INVALID_PARAMETER)
        );
    }

    const EVTCHN_FIFO_LIMIT: u32 = xen_include::xen::event_channel::EVTCHN_FIFO_NR_CHANNELS;

    #[test]
    fn leaving_fifo_resets_and_rebinds_store_and_console() {
        let r = fifo_rig();
        let me = r.s.m.hv.domid();
        assert!(!r.e.use_fifo(false));
        assert!(!r.s.m.hv.evtchn_fifo_active());
        for param in [HvmParam::STORE_EVTCHN, HvmParam::CONSOLE_EVTCHN] {
            let port = r.s.xen.hvm_get_param(param.0).unwrap() as u32;
            let st = r.s.m.hv.port_status(me, port).unwrap().state;
            assert!(
                matches!(st, PortState::Interdomain { remote: 0, .. }),
                "{param:?} re-bound: {st:?}"
            );
        }
    }

    #[test]
    fn a_failed_init_control_falls_back_to_two_level() {
        let r = rig();
        r.s.m.hv.inject_hypercall_fault(HypercallFault {
            op: HypercallCode::EVENT_CHANNEL_OP.0,
            sub: Some(EvtchnOp::INIT_CONTROL.0),
            nth: 2,
            count: 1,
            errno: Errno::ENOMEM,
        });
        assert!(!r.e.use_fifo(true));
        assert!(!r.e.fifo_active());
        let cb = counter();
        let (h, dom0) = r.unbound(false, cb.clone());
        r.s.m.hv.backend_send(0, dom0).unwrap();
        assert!(cb.0.load(Ordering::SeqCst) >= 1);
        r.e.close(h);
    }
}

/// More pending events than one batch of the poll gathers under its HIGH_LEVEL lock (one
/// selector word of the 2-level ABI, `POLL_BATCH` ports of the FIFO ABI) are all delivered
/// by one upcall, each once.
#[test]
fn an_upcall_delivers_more_events_than_one_poll_batch() {
    for fifo in [false, true] {
        let r = rig();
        assert_eq!(r.e.use_fifo(fifo), fifo);
        let n = crate::evtchn_fifo::POLL_BATCH + 6;
        let cbs: Vec<_> = (0..n).map(|_| counter()).collect();
        let opened: Vec<_> = cbs.iter().map(|cb| r.unbound(false, cb.clone())).collect();
        let ports: Vec<u32> = opened
            .iter()
            .map(|(h, _)| r.e.channel(*h).unwrap().port())
            .collect();
        assert!(
            ports.iter().any(|p| p / 64 != ports[0] / 64),
            "the ports span more than one 2-level selector word"
        );
        r.s.m.hv.set_upcall_mode(xen_sim::hv::UpcallMode::Deferred);
        for (_, dom0) in &opened {
            r.s.m.hv.backend_send(0, *dom0).unwrap();
        }
        let upcalls = r.s.m.hv.upcall_count(0);
        r.s.m.hv.deliver_upcalls();
        assert_eq!(
            r.s.m.hv.upcall_count(0),
            upcalls + 1,
            "fifo {fifo}: one upcall"
        );
        for (i, cb) in cbs.iter().enumerate() {
            assert_eq!(cb.0.load(Ordering::SeqCst), 1, "fifo {fifo}: channel {i}");
        }
        r.s.m.hv.set_upcall_mode(xen_sim::hv::UpcallMode::Immediate);
        for (h, _) in opened {
            r.e.close(h);
        }
        assert_eq!(r.e.open_channels(), 0);
    }
}

#[test]
fn fifo_is_selected_again_after_a_resume() {
    let r = rig();
    assert!(r.e.use_fifo(true));
    let (h, _) = r.unbound(false, counter());
    r.s.m.hv.set_suspend_outcome(SuspendOutcome::Resume);
    r.s.xen.sched_shutdown(ShutdownReason::SUSPEND.0).unwrap();
    assert!(
        !r.s.m.hv.evtchn_fifo_active(),
        "the new host starts in 2-level"
    );
    r.e.shared_info.suspend_early();
    r.e.suspend_early();
    assert!(r.e.resume_abi(true));
    assert!(r.s.m.hv.evtchn_fifo_active());
    // LATE: the new host needs the callback via again.
    r.e.enable_interrupts(None, 28);
    r.e.close(h);
    // Channels opened after the resume work in the re-acquired FIFO ABI.
    let cb = counter();
    let (h, dom0) = r.unbound(false, cb.clone());
    r.e.abi_ack(r.e.channel(h).unwrap().port());
    r.e.abi_unmask(r.e.channel(h).unwrap().port());
    r.s.m.hv.backend_send(0, dom0).unwrap();
    assert_eq!(cb.0.load(Ordering::SeqCst), 1);
    r.e.close(h);
    assert!(r.s.m.guest.violations().is_empty());
}

#[test]
fn per_cpu_upcalls_allow_cpu1_and_deliver_only_on_the_bound_cpu() {
    let s = Sim::with_registered_vcpu_info(2);
    let si: &'static SharedInfo = Box::leak(Box::new(SharedInfo::new(s.xen, &*s.m.guest)));
    si.acquire().unwrap();
    assert!(si.upcall_supported(1), "registered vcpu_info");
    let e: &'static Evtchn = Box::leak(Box::new(Evtchn::new(s.xen, &*s.m.guest, si)));
    let per_cpu: &'static std::sync::Mutex<Vec<u32>> = Box::leak(Box::default());
    s.m.hv.set_upcall_handler(Some(Arc::new(move |vcpu| {
        {
            // The test's record, not the driver's ISR: not checked.
            let _host = common::irql::model::HostSide::enter();
            per_cpu.lock().unwrap().push(vcpu);
        }
        e.interrupt(vcpu);
    })));
    e.enable_interrupts(Some(0xF3), 28);
    assert_eq!(s.m.hv.upcall_vector(1), 0xF3);
    // VIRQ_DEBUG bound on CPU 1 is delivered there.
    let cb = counter();
    let h = e
        .open(
            Kind::Virq {
                index: Virq::DEBUG.0,
                cpu: 1,
            },
            false,
            cb.clone(),
        )
        .unwrap();
    e.abi_unmask(e.channel(h).unwrap().port());
    per_cpu.lock().unwrap().clear();
    assert!(s.m.hv.raise_virq(1, Virq::DEBUG));
    assert_eq!(cb.0.load(Ordering::SeqCst), 1);
    assert!(per_cpu.lock().unwrap().contains(&1));
    e.close(h);
    // An inter-domain channel bound to CPU 0, then moved to CPU 1 with Bind.
    let cb = counter();
    let hc = e
        .open(Kind::Unbound { remote_domain: 0 }, false, cb.clone())
        .unwrap();
    let port = e.channel(hc).unwrap().port();
    let dom0 =
        s.m.hv
            .backend_bind_interdomain(0, s.m.hv.domid(), port)
            .unwrap();
    e.abi_ack(port);
    e.abi_unmask(port);
    // An ISR on the wrong CPU does not deliver it.
    e.abi_ack(port);
    assert!(!e.interrupt(1) || cb.0.load(Ordering::SeqCst) == 0);
    assert_eq!(cb.0.load(Ordering::SeqCst), 0);
    e.bind(hc, 1).unwrap();
    assert_eq!(e.channel(hc).unwrap().cpu(), 1);
    assert_eq!(s.m.hv.port_status(s.m.hv.domid(), port).unwrap().vcpu, 1);
    per_cpu.lock().unwrap().clear();
    s.m.hv.backend_send(0, dom0).unwrap();
    assert_eq!(cb.0.load(Ordering::SeqCst), 1);
    assert_eq!(*per_cpu.lock().unwrap(), [1], "delivered by CPU 1's upcall");
    e.close(hc);
    e.disable_interrupts();
    // Xen refuses vector 0 (< 0x10), as the real hypervisor does; what matters is that
    // CPU 1 is no longer offered.
    assert_eq!(
        e.open(
            Kind::Virq {
                index: Virq::DEBUG.0,
                cpu: 1
            },
            false,
            counter()
        )
        .err(),
        Some(STATUS_NOT_SUPPORTED)
    );
}

/// Where and at which IRQL a callback ran, call by call.
#[derive(Default)]
struct Where(std::sync::Mutex<Vec<(u32, common::irql::Irql)>>);

impl Where {
    fn calls(&self) -> Vec<(u32, common::irql::Irql)> {
        self.0.lock().unwrap().clone()
    }
}

impl EvtchnCallback for Where {
    fn call(&self) -> bool {
        self.0
            .lock()
            .unwrap()
            .push((xen_sim::guest::current_processor(), common::irql::current()));
        true
    }
}

/// Issue 7: the upcall's ISR (DIRQL) takes no DISPATCH_LEVEL lock: one preempting code that
/// holds the state lock on the same CPU only takes the upcall flag and queues the CPU's
/// DPC; the callback runs at DISPATCH_LEVEL once the holder lets go. Before, the ISR polled
/// and queued under that lock (the model refuses a DISPATCH_LEVEL lock at DIRQL; a real
/// CPU would spin on it for ever).
#[test]
fn an_upcall_preempting_the_state_lock_holder_only_queues_the_dpc() {
    use common::irql::DISPATCH_LEVEL;
    let r = rig();
    let cb = Arc::new(Where::default());
    let (h, dom0) = r.unbound_on(None, false, cb.clone());
    let upcalls = r.s.m.hv.upcall_count(0);
    {
        let _holder = r.e.state.lock();
        r.s.m.hv.backend_send(0, dom0).unwrap();
        assert_eq!(r.s.m.hv.upcall_count(0), upcalls + 1, "the ISR ran");
        assert_eq!(r.s.m.guest.queued_dpcs(0), 1, "CPU 0's DPC is queued");
        assert!(cb.calls().is_empty(), "no callback under the holder");
    }
    assert_eq!(cb.calls(), [(0, DISPATCH_LEVEL)], "called back by the DPC");
    r.e.close(h);
}

/// Issue 7: a Trigger at DISPATCH_LEVEL for a channel bound to another CPU queues that
/// CPU's DPC and returns at once; the callback runs later on that CPU at DISPATCH_LEVEL.
/// Before, it waited in `run_on_processor` (illegal at DISPATCH_LEVEL).
#[test]
fn a_trigger_at_dispatch_level_for_another_cpu_returns_at_once() {
    use common::irql::{model, DISPATCH_LEVEL};
    let r = smp_rig();
    let cb = Arc::new(Where::default());
    let (h, _) = r.unbound_on(Some(1), false, cb.clone());
    model::raised(DISPATCH_LEVEL, || {
        r.e.trigger(h);
        assert!(cb.calls().is_empty(), "Trigger did not wait for CPU 1");
        assert_eq!(r.s.m.guest.queued_dpcs(1), 1, "CPU 1's DPC is queued");
    });
    assert_eq!(
        cb.calls(),
        [(1, DISPATCH_LEVEL)],
        "on CPU 1, at DISPATCH_LEVEL"
    );
    r.e.close(h);
}

/// A Wait at DISPATCH_LEVEL on the channel's own CPU: the DPC that would deliver the
/// event cannot run under it (upstream's ISR would preempt the waiter), so the Wait runs
/// the CPU's delivery itself — for an event from the other end and for a Trigger.
#[test]
fn a_wait_at_dispatch_level_on_the_bound_cpu_delivers_itself() {
    use common::irql::{model, DISPATCH_LEVEL};
    let r = rig();
    let cb = Arc::new(Where::default());
    let (h, dom0) = r.unbound_on(None, false, cb.clone());
    let n = r.e.channel(h).unwrap().count();
    let second = 10_000_000;
    let status = model::raised(DISPATCH_LEVEL, || {
        r.s.m.hv.backend_send(0, dom0).unwrap();
        assert!(cb.calls().is_empty(), "the DPC cannot run under the waiter");
        r.e.wait(h, n + 1, Timeout::Value(-second))
    });
    assert_eq!(status, STATUS_SUCCESS);
    let status = model::raised(DISPATCH_LEVEL, || {
        r.e.trigger(h);
        r.e.wait(h, n + 2, Timeout::Value(-second))
    });
    assert_eq!(status, STATUS_SUCCESS);
    assert_eq!(cb.calls(), [(0, DISPATCH_LEVEL); 2]);
    r.e.close(h);
}

/// A callback that Waits at DISPATCH_LEVEL for its own channel's next event does not get
/// its delivery run re-entrantly by the Wait (a callback never nests in itself): the
/// Wait times out and the event is delivered after the callback returned.
#[test]
fn a_wait_in_a_callback_does_not_deliver_re_entrantly() {
    struct WaitsForNext {
        e: &'static Evtchn,
        handle: std::sync::OnceLock<ChannelHandle>,
        depth: AtomicUsize,
        nested: AtomicBool,
        calls: AtomicUsize,
        status: std::sync::Mutex<Option<NtStatus>>,
    }
    impl EvtchnCallback for WaitsForNext {
        fn call(&self) -> bool {
            if self.depth.fetch_add(1, Ordering::SeqCst) != 0 {
                self.nested.store(true, Ordering::SeqCst);
            }
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            if let (0, Some(h)) = (n, self.handle.get()) {
                let count = self.e.channel(*h).unwrap().count();
                self.e.trigger(*h);
                *self.status.lock().unwrap() =
                    Some(self.e.wait(*h, count + 1, Timeout::Value(-1000)));
            }
            self.depth.fetch_sub(1, Ordering::SeqCst);
            true
        }
    }
    let r = rig();
    let cb = Arc::new(WaitsForNext {
        e: r.e,
        handle: std::sync::OnceLock::new(),
        depth: AtomicUsize::new(0),
        nested: AtomicBool::new(false),
        calls: AtomicUsize::new(0),
        status: std::sync::Mutex::new(None),
    });
    let (h, _) = r.unbound_on(None, false, cb.clone());
    cb.handle.set(h).unwrap();
    r.e.trigger(h);
    assert_eq!(*cb.status.lock().unwrap(), Some(STATUS_TIMEOUT));
    assert!(!cb.nested.load(Ordering::SeqCst), "delivered re-entrantly");
    assert_eq!(
        cb.calls.load(Ordering::SeqCst),
        2,
        "the second after the first"
    );
    r.e.close(h);
}

/// Suspend/resume with deliveries pending: a Trigger on CPU 0's pending list and an event
/// in the ABI when the early phase (HIGH_LEVEL) comes. The early phase only marks the
/// channels inactive; the pending deliveries of the old channel are dropped (never called,
/// its port — now another channel's — neither masked nor acked); the late phase cleans the
/// table and a channel opened on the reused port works.
#[test]
fn a_suspend_with_deliveries_pending_never_calls_the_old_channel() {
    use common::irql::{model, DISPATCH_LEVEL, HIGH_LEVEL};
    let r = rig();
    let old = counter();
    let (h, dom0) = r.unbound(false, old.clone());
    let port = r.e.channel(h).unwrap().port();
    model::raised(DISPATCH_LEVEL, || {
        r.e.trigger(h);
        r.s.m.hv.set_upcall_mode(xen_sim::hv::UpcallMode::Deferred);
        r.s.m.hv.backend_send(0, dom0).unwrap();
        model::raised(HIGH_LEVEL, || {
            r.s.m.hv.set_suspend_outcome(SuspendOutcome::Resume);
            r.s.xen.sched_shutdown(ShutdownReason::SUSPEND.0).unwrap();
            r.e.shared_info.suspend_early();
            r.e.suspend_early();
        });
        assert_eq!(r.s.m.guest.queued_dpcs(0), 1);
    });
    r.s.m.hv.set_upcall_mode(xen_sim::hv::UpcallMode::Immediate);
    assert_eq!(
        old.0.load(Ordering::SeqCst),
        0,
        "the old channel is not called"
    );
    assert!(!r.e.channel(h).unwrap().is_active());
    // LATE.
    r.e.disable_interrupts();
    r.e.resume_abi(false);
    r.e.enable_interrupts(None, 28);
    let new = counter();
    let (h2, dom0) = r.unbound(false, new.clone());
    assert_eq!(r.e.channel(h2).unwrap().port(), port, "the port is reused");
    r.s.m.hv.backend_send(0, dom0).unwrap();
    assert_eq!(new.0.load(Ordering::SeqCst), 1);
    r.e.trigger(h);
    assert_eq!(
        old.0.load(Ordering::SeqCst),
        0,
        "an inactive channel is never called"
    );
    assert!(r.logged("Trigger of an inactive channel"));
    assert_eq!(new.0.load(Ordering::SeqCst), 1);
    r.e.close(h);
    r.e.close(h2);
    assert_eq!(r.e.open_channels(), 0);
}

/// The per-CPU DPCs are created by the first enable_interrupts and destroyed at PASSIVE;
/// without them events stay pending until interrupts are enabled again.
#[test]
fn destroyed_dpcs_leave_events_pending_until_interrupts_come_back() {
    let r = smp_rig();
    assert_eq!(r.s.m.guest.live_dpcs(), 2, "one per CPU");
    let cb = counter();
    let (h, dom0) = r.unbound(false, cb.clone());
    r.e.disable_interrupts();
    r.e.destroy_dpcs();
    assert_eq!(r.s.m.guest.live_dpcs(), 0);
    r.e.trigger(h);
    let _ = r.s.m.hv.backend_send(0, dom0);
    assert_eq!(cb.0.load(Ordering::SeqCst), 0, "no DPC, no delivery");
    r.e.enable_interrupts(Some(0xF3), 28);
    assert_eq!(r.s.m.guest.live_dpcs(), 2);
    assert_eq!(
        cb.0.load(Ordering::SeqCst),
        1,
        "the Trigger and the event, once"
    );
    r.e.close(h);
}

/// Send and Unmask are legal at any IRQL, as upstream's (a child calls them from its ISR,
/// the console under its HIGH_LEVEL lock): no DISPATCH_LEVEL lock on their path. Before,
/// they looked the handle up under the state lock (the model refuses it above DISPATCH).
#[test]
fn send_and_unmask_work_at_high_level() {
    use common::irql::{model, HIGH_LEVEL};
    let r = rig();
    let cb = counter();
    let (h, dom0) = r.unbound(true, cb.clone());
    r.s.m.hv.backend_send(0, dom0).unwrap();
    assert_eq!(cb.0.load(Ordering::SeqCst), 1);
    r.s.m.hv.backend_take_pending(0);
    model::raised(HIGH_LEVEL, || {
        r.e.send(h);
        assert!(!r.e.unmask(h, false, false), "nothing pending");
    });
    assert!(r.s.m.hv.backend_take_pending(0).contains(&dom0));
    let port = r.e.channel(h).unwrap().port();
    assert!(!r.e.abi_is_masked(port), "unmasked at HIGH_LEVEL");
    r.e.close(h);
}
