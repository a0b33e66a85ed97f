//! The FDO's thread bodies as steps (spec §3.4, §5.3, §5.6, §5.16): the WDM edge runs
//! each in a system thread — wait for the thread's event (or a timeout), call the step,
//! repeat — so the decisions stay testable here.
#![forbid(unsafe_code)]

use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use xen_include::status::NtStatus;

use super::runtime::{directory, Fdo, FdoBugCheck, FdoThread};
use super::{child_classes, Reconciled};
use crate::balloon::{startup_wait, BalloonStore, Pass, StartupWait, SuspendExclusion};
use crate::store::Store;
use crate::suspend::TriggerOutcome;

/// What one pass of the suspend thread did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SuspendStep {
    /// Not in D0, not the active FDO, or `control/shutdown` is not `suspend`.
    Idle,
    /// The balloon holds the mutex: try again when it wakes us.
    Busy,
    /// `control/shutdown` was cleared and SUSPEND `Trigger` ran.
    Triggered(TriggerOutcome),
}

/// xenstore as the balloon thread sees it.
struct StoreAdapter<'a>(&'a Store);

impl BalloonStore for StoreAdapter<'_> {
    fn read(&self, path: &str, out: &mut [u8]) -> Option<usize> {
        let value = self.0.read(None, None, path.as_bytes()).ok()?;
        let n = value.len().min(out.len());
        out.get_mut(..n)?.copy_from_slice(value.get(..n)?);
        Some(n)
    }
    fn write(&self, path: &str, value: &str) -> Result<(), NtStatus> {
        self.0.write(None, None, path.as_bytes(), value.as_bytes())
    }
}

/// The balloon/suspend mutex as one side holds it: leaving wakes the other thread.
struct Exclusion<'a> {
    fdo: &'a Fdo,
    other: FdoThread,
}

impl SuspendExclusion for Exclusion<'_> {
    fn try_enter(&self) -> bool {
        self.fdo
            .exclusion
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
    fn leave(&self) {
        self.fdo.exclusion.store(false, Ordering::Release);
        self.fdo.wake(self.other);
    }
}

impl Fdo {
    /// One pass of the scan thread (`FdoScan`): classes from `device/*` ∪
    /// SyntheticClasses ∩ SupportedClasses reconciled into the child list
    /// (`Enumerate=0` changes nothing); a change invalidates the bus relations.
    pub fn scan_step(&self) -> Reconciled {
        let Some(s) = self.subsystems() else {
            return Reconciled::default();
        };
        if !self.is_d0() {
            return Reconciled::default();
        }
        let dir = directory(s.store, b"device");
        let config = self.config();
        let supported: Vec<&str> = config
            .supported_classes
            .iter()
            .map(String::as_str)
            .collect();
        let classes = child_classes(
            dir.iter().map(String::as_str),
            config.synthetic_classes.iter().map(String::as_str),
            &supported,
        );
        let outcome = self.children.lock().reconcile(&classes, config.enumerate);
        if outcome.changed() {
            self.kernel().invalidate_bus_relations();
        }
        outcome
    }

    /// QUERY_DEVICE_RELATIONS(BusRelations): the classes of every child PDO to report
    /// (Present → Enumerated).
    pub fn bus_relations(&self) -> Vec<String> {
        self.children.lock().report()
    }

    /// REMOVE_DEVICE on a child: true when its PDO is destroyed (it was missing).
    pub fn child_removed(&self, class: &str) -> bool {
        self.children.lock().removed(class)
    }

    /// EJECT on a child: it becomes missing.
    pub fn child_ejected(&self, class: &str) -> bool {
        let ejected = self.children.lock().eject(class);
        if ejected {
            self.kernel().invalidate_bus_relations();
        }
        ejected
    }

    /// SURPRISE_REMOVAL or REMOVE of the FDO: every child is missing.
    pub fn children_missing(&self) {
        self.children.lock().mark_all_missing();
    }

    /// Whether the child of `class` is missing (its class vanished, or it was ejected).
    pub fn child_is_missing(&self, class: &str) -> bool {
        self.children
            .lock()
            .all()
            .iter()
            .any(|c| c.class == class && c.state == super::ChildState::Missing)
    }

    /// The child list.
    pub fn children(&self) -> Vec<super::Child> {
        self.children.lock().all().to_vec()
    }

    /// One pass of the suspend thread (spec §5.6): in D0 and with `control/shutdown` =
    /// `suspend` exactly, take the balloon/suspend mutex (skip while the balloon holds
    /// it), clear the request, `Trigger`, release the mutex (waking the balloon thread).
    pub fn suspend_step(&self) -> SuspendStep {
        let Some(s) = self.subsystems() else {
            return SuspendStep::Idle;
        };
        if !self.is_d0() {
            return SuspendStep::Idle;
        }
        match s.store.read(None, None, b"control/shutdown") {
            Ok(v) if v.as_slice() == b"suspend" => {}
            _ => return SuspendStep::Idle,
        }
        let exclusion = Exclusion {
            fdo: self,
            other: FdoThread::Balloon,
        };
        if !exclusion.try_enter() {
            return SuspendStep::Busy;
        }
        if let Err(e) = s.store.write(None, None, b"control/shutdown", b"") {
            warning!(self.api(), "FDO: control/shutdown not cleared ({e:08X})");
        }
        let outcome = s.suspend.trigger_outcome();
        exclusion.leave();
        SuspendStep::Triggered(outcome)
    }

    /// One pass of the balloon thread (spec §5.16), woken by the `memory/target` watch
    /// or its 1 s retry; `None` without a balloon or outside D0.
    pub fn balloon_step(&self) -> Option<Pass> {
        let s = self.subsystems()?;
        let b = s.balloon.as_ref()?;
        if !self.is_d0() {
            return None;
        }
        let exclusion = Exclusion {
            fdo: self,
            other: FdoThread::Suspend,
        };
        let pass = b.thread.pass(&StoreAdapter(s.store), &exclusion);
        if matches!(pass, Pass::NotReady | Pass::Idle | Pass::Adjusted) {
            self.balloon_settled.store(true, Ordering::Release);
        }
        Some(pass)
    }

    /// START's wait for the balloon's first pass, `elapsed_seconds` after kicking it:
    /// a warning after 10 s, the "BALLOON INFLATION TIMEOUT" bug check after 1200 s.
    pub fn balloon_startup_wait(&self, elapsed_seconds: u64) -> StartupWait {
        let no_balloon = self.subsystems().is_none_or(|s| s.balloon.is_none());
        let reached = no_balloon || self.balloon_settled.load(Ordering::Acquire);
        let wait = startup_wait(reached, elapsed_seconds);
        match wait {
            StartupWait::Warn => {
                if !self.balloon_warned.swap(true, Ordering::AcqRel) {
                    warning!(
                        self.api(),
                        "FDO: balloon not at its target after {elapsed_seconds} s"
                    );
                }
            }
            StartupWait::BugCheck => {
                error!(self.api(), "FDO: BALLOON INFLATION TIMEOUT");
                self.kernel()
                    .bug_check(FdoBugCheck::BalloonInflationTimeout);
            }
            StartupWait::Done | StartupWait::Wait => {}
        }
        wait
    }

    /// START's kick of the balloon thread (its first pass), then of the scan thread.
    pub fn kick_threads(&self) {
        self.wake(FdoThread::Balloon);
        self.wake(FdoThread::Scan);
    }

    /// One period (15 s) of the store watchdog thread; true when it kicked a stalled ring.
    pub fn store_watchdog_step(&self) -> bool {
        self.subsystems()
            .is_some_and(|s| self.is_d0() && s.store.watchdog_tick())
    }

    /// One period (5 s) of the cache monitor thread.
    pub fn cache_monitor_step(&self) {
        if let Some(s) = self.subsystems() {
            s.cache.monitor();
        }
    }
}
