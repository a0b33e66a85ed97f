//! Issue 7 "every fault the simulator injects ends in a defined status, never a panic", as a
//! sweep: a reference run of the whole active-FDO life (D3→D0 with every subsystem, store
//! reads/writes/transactions, event channels, grants and foreign mappings, a suspend/resume
//! through `control/shutdown`, the balloon under a new target, the store watchdog and the
//! cache monitor, D0→D3) records every hypercall `(op, sub-op)` it issues; then, for each of
//! them, the same life is run again with that hypercall failing (its 1st issue, its 2nd,
//! and every issue), plus guest event-notification drops and delays, xenstored commit EAGAIN
//! and a cancelled suspend. Each run must end without a panic, with no guest memory violation,
//! every failed step reporting an NTSTATUS of the error class, and D0→D3 completing.

/// Heap use above DISPATCH_LEVEL panics, as pool use there bug-checks a real kernel.
#[global_allocator]
static ALLOCATOR: common::irql::model::CheckingAllocator =
    common::irql::model::CheckingAllocator::SYSTEM;

mod support;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use support::{boot, World};
use xen_include::status::{NtStatus, STATUS_IO_TIMEOUT};
use xen_include::xen::errno::Errno;
use xen_sim::hv::{EventFault, EventFaultKind, HypercallFault, SuspendOutcome};
use xen_sim::toolstack::ShutdownRequest;
use xenbus::evtchn::{EvtchnCallback, Kind};

struct Count(AtomicU32);
impl EvtchnCallback for Count {
    fn call(&self) -> bool {
        self.0.fetch_add(1, Ordering::SeqCst);
        true
    }
}

/// Virtual nanoseconds per clock read in the faulted runs: a store request's bounded wait
/// (30 s of virtual time) then costs 6*10^4 reads instead of 3*10^7 at the default 1 us.
const FAULT_CLOCK_STEP_NS: u64 = 500_000;

/// Runs that did not end (their threads are left spinning; the test fails at the end).
static HANGS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Outcome of one step: Ok, or the status it failed with.
type Step = (&'static str, Result<(), NtStatus>);

fn unit<T>(r: Result<T, NtStatus>) -> Result<(), NtStatus> {
    r.map(|_| ())
}

/// The store, event channels and grants, used the way children use them.
fn traffic(w: &World, out: &mut Vec<Step>, tag: &'static str) {
    let s = w.s();
    out.push((tag, unit(s.store.write(None, None, b"data/probe", b"1"))));
    out.push((tag, unit(s.store.read(None, None, b"data/probe"))));
    out.push((tag, unit(s.store.directory(None, None, b"data"))));
    match s.store.transaction_start() {
        Ok(t) => {
            out.push((tag, unit(s.store.write(Some(t), None, b"data/tx", b"2"))));
            out.push((tag, s.store.transaction_end(t, true)));
        }
        Err(e) => out.push((tag, Err(e))),
    }
    out.push((tag, unit(s.store.remove(None, None, b"data/tx"))));
    let count = Arc::new(Count(AtomicU32::new(0)));
    match s
        .evtchn
        .open(Kind::Unbound { remote_domain: 0 }, true, count)
    {
        Ok(ch) => {
            s.evtchn.unmask(ch, false, false);
            if let Some(c) = s.evtchn.channel(ch) {
                if let Ok(d) = w.m.hv.backend_bind_interdomain(0, w.m.hv.domid(), c.port()) {
                    let _ = w.m.hv.backend_send(0, d);
                    w.m.hv.deliver_upcalls();
                }
            }
            s.evtchn.send(ch);
            s.evtchn.close(ch);
        }
        Err(e) => out.push((tag, Err(e))),
    }
    if let Some(page) = common::os::Os::alloc_page(&*w.m.guest) {
        match s.gnttab.create_cache(0, 0) {
            Ok(cache) => {
                match s.gnttab.permit(cache, 0, page.pfn, false) {
                    Ok(entry) => out.push((tag, s.gnttab.revoke(entry))),
                    Err(e) => out.push((tag, Err(e))),
                }
                out.push((tag, s.gnttab.destroy_cache(cache)));
            }
            Err(e) => out.push((tag, Err(e))),
        }
        common::os::Os::free_page(&*w.m.guest, page);
    }
    if let Ok((a, _)) = w.m.hv.backend_grant_page(0, false) {
        match s.gnttab.map_foreign_pages(0, &[a], false) {
            Ok(addr) => out.push((tag, s.gnttab.unmap_foreign_pages(addr))),
            Err(e) => out.push((tag, Err(e))),
        }
    }
}

/// The whole life of the active FDO; returns every step's outcome.
fn life(w: &World, outcome: SuspendOutcome) -> Vec<Step> {
    let mut out = Vec::new();
    let up = w.fdo.d3_to_d0(w.resources());
    out.push(("d3_to_d0", up));
    if up.is_err() {
        return out;
    }
    traffic(w, &mut out, "before suspend");
    let _ =
        w.ts.lock()
            .unwrap()
            .request_shutdown(w.domid, ShutdownRequest::Suspend);
    w.m.hv.set_suspend_outcome(outcome);
    let _ = w.fdo.suspend_step();
    traffic(w, &mut out, "after suspend");
    let static_max_kib = 2 * 1024 * 1024 - 8 * 1024;
    let _ =
        w.ts.lock()
            .unwrap()
            .set_balloon_target(w.domid, static_max_kib - 32 * 4);
    let _ = w.fdo.balloon_step();
    let _ =
        w.ts.lock()
            .unwrap()
            .set_balloon_target(w.domid, static_max_kib);
    let _ = w.fdo.balloon_step();
    let _ = w.fdo.store_watchdog_step();
    w.fdo.cache_monitor_step();
    w.fdo.d0_to_d3();
    out
}

/// Run one faulted life on a fresh machine; `inject` installs the fault after boot.
fn run(
    label: &str,
    outcome: SuspendOutcome,
    inject: impl Fn(&World) + Send + 'static,
) -> Vec<Step> {
    // On its own thread, so a hang is reported (with the fault) instead of stalling CI.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let r = catch_unwind(AssertUnwindSafe(|| {
            let w = boot(&[]);
            w.m.clock.set_step(FAULT_CLOCK_STEP_NS);
            inject(&w);
            let steps = life(&w, outcome);
            (steps, w.m.guest.violations(), w.fdo.is_d0())
        }));
        let _ = tx.send(r);
    });
    let r = match rx.recv_timeout(std::time::Duration::from_secs(20)) {
        Ok(r) => r,
        Err(_) => {
            eprintln!("HANG {label}");
            HANGS.lock().unwrap().push(label.to_string());
            return Vec::new();
        }
    };
    let (steps, violations, d0) = match r {
        Ok(v) => v,
        Err(e) => {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("{label}: panicked: {msg}");
        }
    };
    assert!(
        violations.is_empty(),
        "{label}: guest violations {violations:?}"
    );
    assert!(!d0, "{label}: D0->D3 did not complete");
    for (tag, r) in &steps {
        if let Err(status) = r {
            assert_eq!(
                *status as u32 >> 30,
                3,
                "{label}: {tag} failed with a non-error status {status:08X}"
            );
        }
    }
    steps
}

/// A booted machine (fast virtual clock) with the FDO in D0.
fn up() -> World {
    let w = boot(&[]);
    w.m.clock.set_step(FAULT_CLOCK_STEP_NS);
    w.fdo.d3_to_d0(w.resources()).unwrap();
    w
}

/// Hypercalls the FDO's life issues after boot, by (op, sub-op).
fn reference_kinds() -> Vec<(u32, u32)> {
    let w = boot(&[]);
    let before: Vec<((u32, u32), u64)> =
        w.m.hv
            .call_kinds()
            .into_iter()
            .map(|k| (k, w.m.hv.call_count(k.0, k.1)))
            .collect();
    let steps = life(&w, SuspendOutcome::Resume);
    assert!(
        steps.iter().all(|(_, r)| r.is_ok()),
        "the reference life succeeds: {steps:?}"
    );
    w.m.hv
        .call_kinds()
        .into_iter()
        .filter(|k| {
            let earlier = before.iter().find(|(b, _)| b == k).map_or(0, |(_, n)| *n);
            w.m.hv.call_count(k.0, k.1) > earlier
        })
        .collect()
}

#[test]
fn every_hypercall_the_fdo_issues_can_fail_without_a_panic() {
    let kinds = reference_kinds();
    assert!(
        kinds.len() >= 15,
        "the life exercises the hypercalls: {kinds:?}"
    );
    let mut failures_seen = 0;
    for &(op, sub) in &kinds {
        for (nth, count) in [(1, 1), (2, 1), (1, u64::MAX / 2)] {
            let label = format!("hypercall {op}/{sub} failing from issue {nth} x{count}");
            let steps = run(&label, SuspendOutcome::Resume, move |w: &World| {
                w.m.hv.inject_hypercall_fault(HypercallFault {
                    op,
                    sub: Some(sub),
                    nth,
                    count,
                    errno: Errno::EINVAL,
                });
            });
            failures_seen += steps.iter().filter(|(_, r)| r.is_err()).count();
        }
    }
    assert!(failures_seen > 0, "some faults surface as statuses");
    let hangs = HANGS.lock().unwrap().clone();
    assert!(hangs.is_empty(), "runs that never ended: {hangs:#?}");
    eprintln!(
        "{} hypercall kinds x 3 fault shapes; {failures_seen} failed steps, all error statuses",
        kinds.len()
    );
}

#[test]
fn other_errnos_on_the_persistent_failures() {
    let kinds = reference_kinds();
    for &(op, sub) in &kinds {
        for errno in [Errno::ENOMEM, Errno::ENOSYS, Errno::EAGAIN, Errno::EPERM] {
            let label = format!("hypercall {op}/{sub} always failing with {errno:?}");
            run(&label, SuspendOutcome::Resume, move |w: &World| {
                w.m.hv.inject_hypercall_fault(HypercallFault {
                    op,
                    sub: Some(sub),
                    nth: 1,
                    count: u64::MAX / 2,
                    errno,
                });
            });
        }
    }
    let hangs = HANGS.lock().unwrap().clone();
    assert!(hangs.is_empty(), "runs that never ended: {hangs:#?}");
}

#[test]
fn dropped_and_delayed_events_a_cancelled_suspend_and_commit_eagain() {
    for kind in [EventFaultKind::Drop, EventFaultKind::Delay] {
        for count in [1, 5, 1000] {
            let label = format!("events {kind:?} x{count}");
            run(&label, SuspendOutcome::Resume, move |w: &World| {
                w.m.hv.inject_event_fault(EventFault {
                    dom: Some(w.m.hv.domid()),
                    port: None,
                    kind,
                    count,
                });
            });
        }
    }
    // Every notification to dom0 lost: xenstored never runs; each store request ends in
    // STATUS_IO_TIMEOUT (formerly a hang).
    let steps = run(
        "every event to dom0 dropped",
        SuspendOutcome::Resume,
        |w: &World| {
            w.m.hv.inject_event_fault(EventFault {
                dom: Some(0),
                port: None,
                kind: EventFaultKind::Drop,
                count: u32::MAX,
            });
        },
    );
    assert!(
        steps.iter().any(|(_, r)| *r == Err(STATUS_IO_TIMEOUT)),
        "{steps:?}"
    );
    // A xenstored that writes replies only on every 4th ring pass: the re-notification
    // after each poll period gives it the passes, and every request succeeds (formerly a
    // hang).
    let steps = run(
        "xenstored answering every 4th pass",
        SuspendOutcome::Resume,
        |w: &World| {
            w.xs.lock().unwrap().set_ring_delay(3);
        },
    );
    assert!(steps.iter().all(|(_, r)| r.is_ok()), "{steps:?}");
    let steps = run("suspend cancelled", SuspendOutcome::Cancel, |_: &World| {});
    assert!(steps.iter().all(|(_, r)| r.is_ok()), "{steps:?}");
    let steps = run("commit EAGAIN", SuspendOutcome::Resume, move |w: &World| {
        w.xs.lock().unwrap().inject_commit_eagain(3, None);
    });
    let retries = steps
        .iter()
        .filter(|(_, r)| *r == Err(xen_include::status::STATUS_RETRY))
        .count();
    assert!(retries >= 1, "EAGAIN on commit is STATUS_RETRY: {steps:?}");
    let hangs = HANGS.lock().unwrap().clone();
    assert!(hangs.is_empty(), "runs that never ended: {hangs:#?}");
}

/// A store notification lost once (EVTCHNOP_send failing for the first store request) ends
/// once the FDO's store-watchdog thread runs beside the caller (here every 10 ms instead of
/// 15 s): its first tick compares against zeros as upstream's does, sees the request
/// producer moved and the consumer not, notifies again and polls.
#[test]
fn a_lost_store_notification_is_recovered_by_the_store_watchdog_thread() {
    watchdog_run(32, 4, 1);
    let hangs = HANGS.lock().unwrap().clone();
    assert!(hangs.is_empty(), "runs that never ended: {hangs:#?}");
}

/// The 2nd EVTCHNOP_expand_array is the one that gives the store's re-opened port its event
/// word after a resume; when it fails the FDO leaves the FIFO ABI and reconnects the store in
/// the 2-level ABI (before that fallback, the store never heard from xenstored again).
#[test]
fn a_failed_event_array_expansion_is_recovered() {
    watchdog_run(32, 12, 2);
    let hangs = HANGS.lock().unwrap().clone();
    assert!(hangs.is_empty(), "runs that never ended: {hangs:#?}");
}

fn watchdog_run(op: u32, sub: u32, nth: u64) {
    let label = format!("hypercall {op}/{sub} failing once at issue {nth}, watchdog on");
    run(&label, SuspendOutcome::Resume, move |w: &World| {
        w.m.hv.inject_hypercall_fault(HypercallFault {
            op,
            sub: Some(sub),
            nth,
            count: 1,
            errno: Errno::EINVAL,
        });
        let fdo = w.fdo;
        std::thread::spawn(move || loop {
            std::thread::sleep(std::time::Duration::from_millis(10));
            fdo.store_watchdog_step();
        });
    });
}

/// VCPUOP_register_vcpu_info failing at resume (formerly a hang: EVTCHN's interrupt disable
/// held its lock across the upcall-vector hypercall while the upcall it let in took the
/// same lock): the resume reports the status and logs it, and the store, event channels
/// and D0->D3 work on.
#[test]
fn a_failed_vcpu_info_reregistration_is_reported_and_the_resume_goes_on() {
    let w = up();
    let s = w.s();
    assert_eq!(s.suspend.resume_status(), 0);
    w.m.hv.inject_hypercall_fault(HypercallFault {
        op: 24,
        sub: Some(10),
        nth: 1,
        count: u64::MAX / 2,
        errno: Errno::EINVAL,
    });
    let _ =
        w.ts.lock()
            .unwrap()
            .request_shutdown(w.domid, ShutdownRequest::Suspend);
    let step = w.fdo.suspend_step();
    assert_eq!(
        step,
        xenbus::fdo::SuspendStep::Triggered(xenbus::suspend::TriggerOutcome::Resumed)
    );
    assert_eq!(
        s.suspend.resume_status(),
        xen_include::status::STATUS_INVALID_PARAMETER,
        "EINVAL from Xen"
    );
    let log = w.m.hv.platform().log_lines().join("\n");
    assert!(
        log.contains("SUSPEND: vcpu_info of CPU 0 not re-registered (C000000D)"),
        "{log}"
    );
    let mut steps = Vec::new();
    traffic(&w, &mut steps, "after resume");
    assert!(steps.iter().all(|(_, r)| r.is_ok()), "{steps:?}");
    w.fdo.d0_to_d3();
    assert!(!w.fdo.is_d0());
    assert!(w.m.guest.violations().is_empty());
}

/// EVTCHNOP_send of the store's notification failing for good (formerly a hang): each
/// request ends in STATUS_IO_TIMEOUT — 30 s of virtual time for the first, one 5 s period
/// once the store is unresponsive — with an ERROR line. When the fault clears, the next
/// request gets its own reply (the late ones are dropped), the transaction a late
/// TRANSACTION_START opened is aborted and the watch a late WATCH added is removed.
#[test]
fn a_store_notification_failing_for_good_times_requests_out_and_the_store_recovers() {
    let w = up();
    let s = w.s();
    let fdo_own = s.store.outstanding();
    s.store.write(None, None, b"data/old", b"old").unwrap();
    s.store.write(None, None, b"data/new", b"new").unwrap();
    w.m.hv.inject_hypercall_fault(HypercallFault {
        op: 32,
        sub: Some(4),
        nth: 1,
        count: u64::MAX / 2,
        errno: Errno::EINVAL,
    });
    let before = w.m.hv.platform().log_lines().len();
    let t0 = w.m.clock.peek_ns();
    assert_eq!(
        s.store.read(None, None, b"data/old"),
        Err(STATUS_IO_TIMEOUT)
    );
    let first = w.m.clock.peek_ns() - t0;
    assert!(
        (30_000_000_000..31_000_000_000).contains(&first),
        "30 s of virtual time: {first} ns"
    );
    assert!(s.store.unresponsive());
    let t1 = w.m.clock.peek_ns();
    assert_eq!(s.store.transaction_start(), Err(STATUS_IO_TIMEOUT));
    let second = w.m.clock.peek_ns() - t1;
    assert!(
        (5_000_000_000..6_000_000_000).contains(&second),
        "one 5 s period: {second} ns"
    );
    assert_eq!(
        s.store.watch_add(None, b"data/late-watch", 0x7777),
        Err(STATUS_IO_TIMEOUT)
    );
    assert_eq!(s.store.abandoned(), 3);
    let log = w.m.hv.platform().log_lines()[before..].join("\n");
    assert!(
        log.contains("got no reply in 30 s; abandoned (OnRing)"),
        "{log}"
    );
    assert!(log.contains("got no reply in 5 s"), "{log}");
    w.m.hv.clear_faults();
    assert_eq!(s.store.read(None, None, b"data/new").unwrap(), b"new");
    for _ in 0..4 {
        s.store.poll();
    }
    assert_eq!(s.store.abandoned(), 0);
    assert!(!s.store.unresponsive());
    let log = w.m.hv.platform().log_lines()[before..].join("\n");
    assert!(log.contains("late reply (type 0x2)"), "{log}");
    assert!(log.contains("aborting its transaction"), "{log}");
    assert!(log.contains("removing the watch it added"), "{log}");
    {
        let xs = w.xs.lock().unwrap();
        let conn = xs.domain_connection(w.domid).unwrap();
        let state = xs.connection_state(conn).unwrap();
        let (watches, transactions) = (state.watches, state.transactions);
        assert!(transactions.is_empty(), "{transactions:?}");
        assert!(
            !watches.iter().any(|(p, _)| p.ends_with("data/late-watch")),
            "{watches:?}"
        );
    }
    // Transactions and watches work again.
    let t = s.store.transaction_start().unwrap();
    s.store.write(Some(t), None, b"data/tx", b"1").unwrap();
    s.store.transaction_end(t, true).unwrap();
    let wh = s.store.watch_add(None, b"data/tx", 0x7778).unwrap();
    s.store.watch_remove(wh).unwrap();
    assert_eq!(s.store.outstanding(), fdo_own);
    w.fdo.d0_to_d3();
    assert!(w.m.guest.violations().is_empty());
}

/// The store's notification lost once (EVTCHNOP_send failing once), no watchdog thread:
/// the request's own re-notification after its first poll period recovers it.
#[test]
fn a_lost_store_notification_is_recovered_by_the_request_itself() {
    let w = up();
    let s = w.s();
    s.store.write(None, None, b"data/k", b"v").unwrap();
    w.m.hv.inject_hypercall_fault(HypercallFault {
        op: 32,
        sub: Some(4),
        nth: 1,
        count: 1,
        errno: Errno::EINVAL,
    });
    let before = w.m.hv.platform().log_lines().len();
    assert_eq!(s.store.read(None, None, b"data/k").unwrap(), b"v");
    let log = w.m.hv.platform().log_lines()[before..].join("\n");
    assert!(log.contains("period 1/6); notifying again"), "{log}");
    assert!(!s.store.unresponsive());
    w.fdo.d0_to_d3();
}

/// The dom0-side faults of the sweep, one by one with exact statuses (formerly hangs):
/// every notification to dom0 lost → STATUS_IO_TIMEOUT, then the store works once they
/// arrive again; a xenstored writing replies only every 4th pass → the request succeeds
/// (its re-notifications give xenstored the passes); one that never writes → timeout,
/// then works again once it does.
#[test]
fn dom0_side_faults_end_in_a_defined_status_and_the_store_recovers() {
    let w = up();
    let s = w.s();
    s.store.write(None, None, b"data/k", b"v").unwrap();
    w.m.hv.inject_event_fault(EventFault {
        dom: Some(0),
        port: None,
        kind: EventFaultKind::Drop,
        count: u32::MAX,
    });
    assert_eq!(s.store.read(None, None, b"data/k"), Err(STATUS_IO_TIMEOUT));
    w.m.hv.clear_faults();
    assert_eq!(s.store.read(None, None, b"data/k").unwrap(), b"v");
    assert!(!s.store.unresponsive());

    let before = w.m.hv.platform().log_lines().len();
    w.xs.lock().unwrap().set_ring_delay(3);
    s.store.write(None, None, b"data/slow", b"1").unwrap();
    assert_eq!(s.store.read(None, None, b"data/slow").unwrap(), b"1");
    let log = w.m.hv.platform().log_lines()[before..].join("\n");
    assert!(log.contains("notifying again"), "{log}");
    assert!(!log.contains("abandoned"), "{log}");

    w.xs.lock().unwrap().set_ring_delay(u32::MAX);
    assert_eq!(
        s.store.write(None, None, b"data/slow", b"2"),
        Err(STATUS_IO_TIMEOUT)
    );
    w.xs.lock().unwrap().set_ring_delay(0);
    // The abandoned write went through late (its outcome was unknown to the caller).
    assert_eq!(s.store.read(None, None, b"data/slow").unwrap(), b"2");
    assert_eq!(s.store.abandoned(), 0);
    w.fdo.d0_to_d3();
    assert!(w.m.guest.violations().is_empty());
}

/// Corrupt the store ring's request producer (the simulator's `corrupt_ring_indices`):
/// xenstored cuts the guest off and the client sees impossible indices.
fn corrupt_store_ring(w: &World) {
    let mut page = xen_sim::toolstack::machine::GuestPage::new(&w.m.hv, w.m.layout().store_gfn);
    xen_sim::toolstack::corrupt_ring_indices(&mut page);
}

/// The ring-index corruption the simulator injects: every store request fails with
/// STATUS_UNEXPECTED_IO_ERROR and a log line (no hang, no panic), in the whole FDO life and
/// one by one; a resume (new xenstored connection, ring reset) brings the store back.
#[test]
fn corrupted_store_ring_indices_fail_requests_until_a_resume() {
    let steps = run(
        "store ring indices corrupted",
        SuspendOutcome::Resume,
        |w: &World| {
            corrupt_store_ring(w);
        },
    );
    assert!(
        steps
            .iter()
            .any(|(_, r)| *r == Err(xen_include::status::STATUS_UNEXPECTED_IO_ERROR)),
        "{steps:?}"
    );
    let w = up();
    let s = w.s();
    s.store.write(None, None, b"data/k", b"v").unwrap();
    corrupt_store_ring(&w);
    assert_eq!(
        s.store.read(None, None, b"data/k"),
        Err(xen_include::status::STATUS_UNEXPECTED_IO_ERROR)
    );
    let log = w.m.hv.platform().log_lines().join("\n");
    assert!(log.contains("STORE: request ring indices corrupt"), "{log}");
    assert_eq!(
        s.store.write(None, None, b"data/k", b"w"),
        Err(xen_include::status::STATUS_UNEXPECTED_IO_ERROR)
    );
    assert_eq!(
        s.suspend.trigger_outcome(),
        xenbus::suspend::TriggerOutcome::Resumed
    );
    assert_eq!(s.store.read(None, None, b"data/k").unwrap(), b"v");
    w.fdo.d0_to_d3();
    assert!(w.m.guest.violations().is_empty());
}
