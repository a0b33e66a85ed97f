//! Issue 7 "every fault the simulator injects ends in a defined status, never a panic", as a
//! sweep: a reference run of the whole active-FDO life (D3→D0 with every subsystem, store
//! reads/writes/transactions, event channels, grants and foreign mappings, a suspend/resume
//! through `control/shutdown`, the balloon under a new target, the store watchdog and the
//! cache monitor, D0→D3) records every hypercall `(op, sub-op)` it issues; then, for each of
//! them, the same life is run again with that hypercall failing (its 1st issue, its 2nd,
//! and every issue), plus guest event-notification drops and delays, xenstored commit EAGAIN
//! and a cancelled suspend. Each run must end without a panic, with no guest memory violation,
//! every failed step reporting an NTSTATUS of the error class, and D0→D3 completing.

mod support;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use support::{boot, World};
use xen_include::status::NtStatus;
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

/// OPEN FINDINGS (audit, issue 7): a failure of these hypercalls leaves a store request
/// waiting without end in this single-threaded life (no store-watchdog thread running
/// beside it): EVTCHNOP_send (32/4) of the store's notification. (VCPUOP_register_vcpu_info
/// (24/10) at resume deadlocked EVTCHN's interrupt disable, fixed; EVTCHNOP_expand_array
/// (32/12) falls back to 2-level.)
const KNOWN_HANGS: [(u32, u32); 1] = [(32, 4)];

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
    for &(op, sub) in kinds.iter().filter(|k| !KNOWN_HANGS.contains(k)) {
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
    for &(op, sub) in kinds.iter().filter(|k| !KNOWN_HANGS.contains(k)) {
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
    // OPEN FINDINGS (not run): every event to dom0 dropped, and a xenstored that answers
    // only every 4th ring pass (`set_ring_delay(3)`), leave a store request waiting without
    // end when no store-watchdog thread runs beside the caller (same class as KNOWN_HANGS).
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
    let w = boot(&[]);
    w.fdo.d3_to_d0(w.resources()).unwrap();
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
