//! SUSPEND (spec §5.6): EARLY and LATE callbacks in registration order around a VM
//! suspend, cancellation, and the resume count.
//!
//! `Trigger` captures every processor through the `Os` edge, issues
//! `SCHEDOP_shutdown(SHUTDOWN_suspend)` and, **only when the domain really was suspended
//! and resumed** (not cancelled): re-registers every processor's `vcpu_info` (Force),
//! re-issues the emulated-device unplug, runs the EARLY callbacks at HIGH_LEVEL, then,
//! with interrupts back on, the LATE callbacks at DISPATCH_LEVEL. It always returns
//! `STATUS_SUCCESS`, as upstream does.
//!
//! Decision on the `GetCount` quirk: upstream increments the count in its per-CPU early
//! work, so the count grows by the number of vCPUs per suspend. Clients only compare the
//! value for change, so both are compatible; this implementation counts **resumes** (one
//! per completed suspend, none for a cancelled one), which is what the name promises and
//! does not depend on the processor count.
//!
//! A processor whose `vcpu_info` cannot be re-registered at resume is logged (ERROR, with
//! the status) and the first such status is kept as [`Suspend::resume_status`]; the resume
//! itself goes on (upstream ignores the failure): event delivery to that processor may be
//! lost, and everything waiting on events is bounded (the store re-polls and times out).
#![forbid(unsafe_code)]

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};

use common::os::Os;
use common::sync::SpinLock;
use xen_include::api::XenApi;
use xen_include::status::{NtStatus, STATUS_NO_MEMORY, STATUS_SUCCESS};
use xen_include::xen::sched::ShutdownReason;

/// When a callback runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// HIGH_LEVEL, interrupts off, other processors captured.
    Early,
    /// DISPATCH_LEVEL, other processors captured.
    Late,
}

/// A suspend callback (a subsystem of this driver, or a C child's function + argument).
pub trait SuspendCallback: Send + Sync {
    /// Run the callback.
    fn call(&self);
    /// What the debug dump shows for it (upstream: the function's module and offset, and
    /// the argument); by default the Rust type. Runs at any IRQL: no allocation, no wait.
    fn describe(&self, api: &dyn XenApi, out: &mut dyn core::fmt::Write) -> core::fmt::Result {
        let _ = api;
        out.write_str(core::any::type_name::<Self>())
    }
}

/// Handle of a registered callback.
pub type CallbackHandle = usize;

struct Entry {
    phase: Phase,
    callback: Arc<dyn SuspendCallback>,
}

/// What one `Trigger` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TriggerOutcome {
    /// Suspended and resumed; callbacks ran.
    Resumed,
    /// The toolstack cancelled the suspend (or the hypercall failed); no callback ran.
    NotSuspended(NtStatus),
}

/// The SUSPEND subsystem.
pub struct Suspend {
    api: &'static dyn XenApi,
    os: &'static dyn Os,
    entries: SpinLock<Vec<Arc<Entry>>>,
    count: AtomicU32,
    resume_status: AtomicU32,
}

impl Suspend {
    /// No callbacks, count 0.
    pub fn new(api: &'static dyn XenApi, os: &'static dyn Os) -> Self {
        Self {
            api,
            os,
            entries: SpinLock::new(Vec::new()),
            count: AtomicU32::new(0),
            resume_status: AtomicU32::new(STATUS_SUCCESS as u32),
        }
    }

    /// Register `callback` for `phase` (runs after every callback registered before it).
    pub fn register(
        &self,
        phase: Phase,
        callback: Arc<dyn SuspendCallback>,
    ) -> Result<CallbackHandle, NtStatus> {
        let entry = Arc::new(Entry { phase, callback });
        let handle = Arc::as_ptr(&entry) as *const () as usize;
        let mut entries = self.entries.lock();
        entries.try_reserve(1).map_err(|_| STATUS_NO_MEMORY)?;
        entries.push(entry);
        Ok(handle)
    }

    /// Remove a callback; false when the handle is unknown.
    pub fn deregister(&self, handle: CallbackHandle) -> bool {
        let mut entries = self.entries.lock();
        let before = entries.len();
        entries.retain(|e| Arc::as_ptr(e) as *const () as usize != handle);
        entries.len() != before
    }

    /// Registered callbacks (must be zero at the last Release).
    pub fn registered(&self) -> usize {
        self.entries.lock().len()
    }

    /// `GetCount`: completed suspends since boot.
    pub fn count(&self) -> u32 {
        self.count.load(Ordering::Acquire)
    }

    /// The first failure of the last resume's `vcpu_info` re-registration
    /// (`STATUS_SUCCESS` when every processor re-registered, or before any resume).
    pub fn resume_status(&self) -> NtStatus {
        self.resume_status.load(Ordering::Acquire) as NtStatus
    }

    /// Upstream's `SuspendDebugCallback`: the count (and the last resume's `vcpu_info`
    /// status), then every EARLY and every LATE callback in the order they run. Never spins
    /// on the lock and does not allocate (nor frees: no entry is cloned out of the list).
    pub fn debug_dump(&self, out: &mut dyn FnMut(&str)) {
        use crate::log::{Dumped, Line};
        crate::log::dump_lines(out, "SUSPEND: busy", |i| {
            if i == 0 {
                return Dumped::Line(Line::from_fmt(format_args!(
                    "SUSPEND: count {} resume status {:08X}",
                    self.count(),
                    self.resume_status()
                )));
            }
            let Some(entries) = self.entries.try_lock() else {
                return Dumped::Busy;
            };
            let mut ordered = entries
                .iter()
                .filter(|e| e.phase == Phase::Early)
                .chain(entries.iter().filter(|e| e.phase == Phase::Late));
            let Some(e) = ordered.nth(i - 1) else {
                return Dumped::Done;
            };
            let mut line = Line::from_fmt(format_args!(
                "SUSPEND: {} ",
                match e.phase {
                    Phase::Early => "EARLY",
                    Phase::Late => "LATE",
                }
            ));
            let _ = e.callback.describe(self.api, &mut line);
            Dumped::Line(line)
        });
    }

    fn snapshot(&self, phase: Phase) -> Vec<Arc<Entry>> {
        self.entries
            .lock()
            .iter()
            .filter(|e| e.phase == phase)
            .cloned()
            .collect()
    }

    /// `Trigger`: suspend the VM now (PASSIVE_LEVEL).
    pub fn trigger(&self) -> NtStatus {
        let _ = self.trigger_outcome();
        STATUS_SUCCESS
    }

    /// `Trigger`, reporting what happened.
    pub fn trigger_outcome(&self) -> TriggerOutcome {
        // Taken before capture: no allocation and no lock contention at HIGH_LEVEL.
        let early = self.snapshot(Phase::Early);
        let late = self.snapshot(Phase::Late);
        let outcome = core::cell::Cell::new(TriggerOutcome::NotSuspended(STATUS_SUCCESS));
        let api = self.api;
        let processors = self.os.processor_count();
        let captured = self.os.capture_processors(
            &mut || {
                info!(api, "SUSPEND: ====> (time {})", self.os.system_time());
                match api.sched_shutdown(ShutdownReason::SUSPEND.0) {
                    Ok(()) => {
                        outcome.set(TriggerOutcome::Resumed);
                        self.count.fetch_add(1, Ordering::AcqRel);
                        let mut status = STATUS_SUCCESS;
                        for cpu in 0..processors {
                            if let Err(e) = api.system_processor_register_vcpu_info(cpu, true) {
                                error!(
                                    api,
                                    "SUSPEND: vcpu_info of CPU {cpu} not re-registered ({e:08X})"
                                );
                                if status == STATUS_SUCCESS {
                                    status = e;
                                }
                            }
                        }
                        self.resume_status.store(status as u32, Ordering::Release);
                        api.unplug_devices();
                        for e in &early {
                            e.callback.call();
                        }
                    }
                    Err(status) => outcome.set(TriggerOutcome::NotSuspended(status)),
                }
                info!(api, "SUSPEND: <==== (time {})", self.os.system_time());
            },
            &mut || {
                if outcome.get() == TriggerOutcome::Resumed {
                    for e in &late {
                        e.callback.call();
                    }
                }
            },
        );
        if let Err(e) = captured {
            error!(api, "SUSPEND: cannot capture processors ({e:08X})");
            return TriggerOutcome::NotSuspended(e);
        }
        if let TriggerOutcome::NotSuspended(status) = outcome.get() {
            info!(api, "SUSPEND: not suspended ({status:08X})");
        }
        outcome.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Call, TestApi, TestOs};
    use std::sync::Mutex;
    use xen_include::status::STATUS_CANCELLED;

    struct Recorder {
        name: &'static str,
        log: &'static Mutex<Vec<String>>,
        os: &'static TestOs,
    }

    impl SuspendCallback for Recorder {
        fn call(&self) {
            // The test's record, not the driver's: runs at HIGH_LEVEL in the early phase.
            let _host = common::irql::model::HostSide::enter();
            let phase = self
                .os
                .log
                .lock()
                .unwrap()
                .last()
                .cloned()
                .unwrap_or_default();
            self.log
                .lock()
                .unwrap()
                .push(format!("{} after {phase}", self.name));
        }
    }

    fn setup() -> (
        &'static TestApi,
        &'static TestOs,
        Suspend,
        &'static Mutex<Vec<String>>,
    ) {
        let api = TestApi::leak();
        let os = TestOs::leak(2);
        let log: &'static Mutex<Vec<String>> = Box::leak(Box::default());
        let s = Suspend::new(api, os);
        for (phase, name) in [
            (Phase::Early, "evtchn-early"),
            (Phase::Late, "evtchn-late"),
            (Phase::Early, "store-early"),
            (Phase::Late, "store-late"),
            (Phase::Early, "child-early"),
        ] {
            s.register(phase, Arc::new(Recorder { name, log, os }))
                .unwrap();
        }
        (api, os, s, log)
    }

    #[test]
    fn early_then_late_in_registration_order_after_a_resume() {
        let (api, _os, s, log) = setup();
        assert_eq!(s.trigger(), STATUS_SUCCESS);
        assert_eq!(
            *log.lock().unwrap(),
            [
                "evtchn-early after capture",
                "store-early after capture",
                "child-early after capture",
                "evtchn-late after interrupts on",
                "store-late after interrupts on",
            ]
        );
        // Hypercall, then vcpu_info re-registered on both CPUs, then the unplug, all
        // before the early callbacks.
        let calls = api.calls.lock().unwrap().clone();
        assert_eq!(
            calls,
            [
                Call::Other("sched_shutdown"),
                Call::Other("register_vcpu_info"),
                Call::Other("register_vcpu_info"),
                Call::Other("unplug_devices"),
            ]
        );
        assert_eq!(s.count(), 1, "one per resume, not per vCPU");
        s.trigger();
        assert_eq!(s.count(), 2);
    }

    #[test]
    fn a_cancelled_suspend_runs_no_callback_and_keeps_the_count() {
        let (api, _os, s, log) = setup();
        *api.shutdown_error.lock().unwrap() = Some(STATUS_CANCELLED);
        assert_eq!(s.trigger(), STATUS_SUCCESS);
        assert_eq!(
            s.trigger_outcome(),
            TriggerOutcome::NotSuspended(STATUS_CANCELLED)
        );
        assert!(log.lock().unwrap().is_empty());
        assert_eq!(s.count(), 0);
        assert!(!api
            .calls
            .lock()
            .unwrap()
            .contains(&Call::Other("unplug_devices")));
    }

    fn dump(s: &Suspend) -> Vec<String> {
        let mut lines = Vec::new();
        s.debug_dump(&mut |l| lines.push(l.to_string()));
        lines
    }

    /// The SUSPEND debug dump (upstream's `SuspendDebugCallback`): the count, then the
    /// EARLY callbacks and the LATE ones, each in the order they run; "busy" instead of
    /// spinning on a held list.
    #[test]
    fn the_debug_dump_shows_the_count_and_the_callbacks_in_running_order() {
        let (_api, _os, s, _log) = setup();
        let recorder = core::any::type_name::<Recorder>();
        let expected = |count: u32, status: &str| {
            let mut lines = vec![format!("SUSPEND: count {count} resume status {status}")];
            lines.extend((0..3).map(|_| format!("SUSPEND: EARLY {recorder}")));
            lines.extend((0..2).map(|_| format!("SUSPEND: LATE {recorder}")));
            lines
        };
        assert_eq!(dump(&s), expected(0, "00000000"));
        s.trigger();
        assert_eq!(dump(&s), expected(1, "00000000"));
        let held = s.entries.try_lock().unwrap();
        assert_eq!(
            dump(&s),
            ["SUSPEND: count 1 resume status 00000000", "SUSPEND: busy"]
        );
        drop(held);
    }

    #[test]
    fn deregistered_callbacks_do_not_run() {
        let (_api, os, s, log) = setup();
        let h = s
            .register(
                Phase::Late,
                Arc::new(Recorder {
                    name: "gone",
                    log,
                    os,
                }),
            )
            .unwrap();
        assert_eq!(s.registered(), 6);
        assert!(s.deregister(h));
        assert!(!s.deregister(h));
        s.trigger();
        assert!(!log.lock().unwrap().iter().any(|l| l.starts_with("gone")));
        assert_eq!(s.registered(), 5);
    }
}
