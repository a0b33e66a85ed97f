//! DPCs of the bare-metal guest's `Os` (one vCPU, interrupts never delivered): a queued
//! DPC runs right away on the caller, unless a DPC is running already — then the running
//! loop picks it up after the current one returns, so a routine that queues a DPC (itself
//! included) never recurses. Queueing one that is pending returns `false`; it runs once.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

use common::os::{DpcHandle, DpcRoutine};
use common::sync::SpinLock;
use xen_include::status::{NtStatus, STATUS_INVALID_PARAMETER};

struct Entry {
    cpu: u32,
    routine: &'static dyn DpcRoutine,
    pending: bool,
    live: bool,
}

/// The DPC table (handles are 1-based indices; destroyed entries stay, never reused).
pub struct BareDpcs {
    table: SpinLock<Vec<Entry>>,
    running: AtomicBool,
}

impl Default for BareDpcs {
    fn default() -> Self {
        Self::new()
    }
}

impl BareDpcs {
    /// An empty table.
    pub const fn new() -> Self {
        BareDpcs {
            table: SpinLock::new(Vec::new()),
            running: AtomicBool::new(false),
        }
    }

    /// `Os::dpc_create` on a machine of `processors` processors.
    pub fn create(
        &self,
        cpu: u32,
        processors: u32,
        routine: &'static dyn DpcRoutine,
    ) -> Result<DpcHandle, NtStatus> {
        if cpu >= processors {
            return Err(STATUS_INVALID_PARAMETER);
        }
        let mut t = self.table.lock();
        t.push(Entry {
            cpu,
            routine,
            pending: false,
            live: true,
        });
        Ok(DpcHandle(t.len()))
    }

    fn entry(t: &mut [Entry], dpc: DpcHandle) -> Option<&mut Entry> {
        t.get_mut(dpc.0.checked_sub(1)?).filter(|e| e.live)
    }

    /// `Os::dpc_queue`: `None` for an unknown or destroyed handle.
    pub fn queue(&self, dpc: DpcHandle) -> Option<bool> {
        {
            let mut t = self.table.lock();
            let e = Self::entry(&mut t, dpc)?;
            if e.pending {
                return Some(false);
            }
            e.pending = true;
        }
        self.run_pending();
        Some(true)
    }

    /// `Os::dpc_destroy`: `false` for an unknown handle. The one vCPU is the caller, so
    /// nothing else can be running it (unless the caller is the routine itself, which then
    /// finishes but never runs again).
    pub fn destroy(&self, dpc: DpcHandle) -> bool {
        let mut t = self.table.lock();
        let Some(e) = Self::entry(&mut t, dpc) else {
            return false;
        };
        e.live = false;
        e.pending = false;
        true
    }

    /// Run pending DPCs, oldest handle first, unless a loop is running them already.
    fn run_pending(&self) {
        while !self.running.swap(true, Ordering::AcqRel) {
            loop {
                let next = {
                    let mut t = self.table.lock();
                    t.iter_mut().find(|e| e.pending).map(|e| {
                        e.pending = false;
                        (e.cpu, e.routine)
                    })
                };
                let Some((cpu, routine)) = next else { break };
                routine.run(cpu);
            }
            self.running.store(false, Ordering::Release);
            // Something queued after the last look but before the flag cleared?
            if !self.table.lock().iter().any(|e| e.pending) {
                break;
            }
        }
    }

    /// DPCs queued and not yet run.
    pub fn pending(&self) -> usize {
        self.table.lock().iter().filter(|e| e.pending).count()
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use core::sync::atomic::AtomicU32;
    use std::sync::{Mutex, OnceLock};

    #[derive(Default)]
    struct Rec {
        runs: Mutex<Vec<u32>>,
        again: AtomicU32,
        depth: AtomicU32,
        max_depth: AtomicU32,
        me: OnceLock<(&'static BareDpcs, DpcHandle, DpcHandle)>,
    }

    impl DpcRoutine for Rec {
        fn run(&self, cpu: u32) {
            let d = self.depth.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_depth.fetch_max(d, Ordering::SeqCst);
            self.runs.lock().unwrap().push(cpu);
            if let Ok(n) = self
                .again
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            {
                let (dpcs, me, other) = self.me.get().unwrap();
                assert_eq!(dpcs.queue(*me), Some(true));
                assert_eq!(dpcs.queue(*me), Some(false), "pending: runs once");
                if n == 2 {
                    assert_eq!(dpcs.queue(*other), Some(true));
                }
            }
            self.depth.fetch_sub(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn queued_dpcs_run_at_once_and_never_recursively() {
        let dpcs: &'static BareDpcs = std::boxed::Box::leak(std::boxed::Box::default());
        let r: &'static Rec = std::boxed::Box::leak(std::boxed::Box::default());
        let o: &'static Rec = std::boxed::Box::leak(std::boxed::Box::default());
        assert_eq!(dpcs.create(1, 1, r), Err(STATUS_INVALID_PARAMETER));
        let d = dpcs.create(0, 1, r).unwrap();
        let other = dpcs.create(0, 1, o).unwrap();
        r.me.set((dpcs, d, other)).ok().unwrap();
        assert_eq!(dpcs.queue(d), Some(true));
        assert_eq!(*r.runs.lock().unwrap(), [0]);
        r.again.store(2, Ordering::SeqCst);
        assert_eq!(dpcs.queue(d), Some(true));
        assert_eq!(r.runs.lock().unwrap().len(), 4);
        assert_eq!(o.runs.lock().unwrap().len(), 1);
        assert_eq!(r.max_depth.load(Ordering::SeqCst), 1, "never recursively");
        assert_eq!(dpcs.pending(), 0);
        assert!(dpcs.destroy(d));
        assert!(!dpcs.destroy(d));
        assert_eq!(dpcs.queue(d), None);
        assert_eq!(dpcs.queue(DpcHandle(0)), None);
        assert_eq!(dpcs.queue(DpcHandle(99)), None);
        assert_eq!(r.runs.lock().unwrap().len(), 4);
    }
}
