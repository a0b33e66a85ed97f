//! The counting half of a remove lock (`IoAcquireRemoveLock` semantics), shared by the
//! drivers: I/O in flight holds a reference; REMOVE_DEVICE refuses new acquisitions and
//! waits until the count drains. The wait itself (a `KEVENT`) is in the Windows edge.
#![forbid(unsafe_code)]

use core::sync::atomic::{AtomicBool, AtomicI32, Ordering};

/// Outstanding-I/O count of one device; starts with the device's own reference.
#[derive(Debug)]
pub struct RemoveCount {
    count: AtomicI32,
    removed: AtomicBool,
}

impl Default for RemoveCount {
    fn default() -> Self {
        Self::new()
    }
}

impl RemoveCount {
    /// A live device: one reference (its own), not removed.
    pub const fn new() -> Self {
        Self {
            count: AtomicI32::new(1),
            removed: AtomicBool::new(false),
        }
    }

    /// Take a reference for one IRP; `false` once removal has begun (the caller completes
    /// the IRP with `STATUS_DELETE_PENDING`).
    pub fn acquire(&self) -> bool {
        self.count.fetch_add(1, Ordering::AcqRel);
        if self.removed.load(Ordering::Acquire) {
            self.release();
            return false;
        }
        true
    }

    /// Drop a reference; `true` when it was the last one (the remover may go on).
    pub fn release(&self) -> bool {
        self.count.fetch_sub(1, Ordering::AcqRel) == 1
    }

    /// Begin removal: refuse new references and drop the device's own; `true` when nothing
    /// is outstanding (no need to wait).
    pub fn begin_remove(&self) -> bool {
        self.removed.store(true, Ordering::Release);
        self.release()
    }

    /// Removal was abandoned (the child filter stays over a PDO the bus still reports):
    /// take the device's own reference back and accept I/O again.
    pub fn reset(&self) {
        self.count.store(1, Ordering::Release);
        self.removed.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removal_waits_for_outstanding_io_and_refuses_new() {
        let lock = RemoveCount::new();
        assert!(lock.acquire()); // an IRP in flight
        assert!(lock.acquire()); // the REMOVE_DEVICE IRP itself
        assert!(!lock.release()); // REMOVE releases its own reference first
        assert!(!lock.begin_remove()); // one IRP still outstanding: must wait
        assert!(!lock.acquire()); // new I/O refused
        assert!(lock.release()); // the in-flight IRP completes: the waiter wakes
    }

    #[test]
    fn idle_removal_does_not_wait_and_reset_revives() {
        let lock = RemoveCount::new();
        assert!(lock.begin_remove());
        assert!(!lock.acquire());
        lock.reset();
        assert!(lock.acquire());
        assert!(!lock.release());
    }
}
