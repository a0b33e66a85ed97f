//! The machine's virtual clock: deterministic time shared by the hypervisor and the guest.
//!
//! Time only moves when a test advances it, or — in auto-advance mode, the default — by a
//! fixed step on every read, so busy-wait loops with timeouts in driver code terminate while
//! runs stay reproducible.

use std::sync::atomic::{AtomicU64, Ordering};

/// Seconds between 1601-01-01 (Windows epoch) and 1970-01-01 (Unix epoch).
pub const WINDOWS_TO_UNIX_EPOCH_SECS: u64 = 11_644_473_600;

/// Virtual time since machine boot, in nanoseconds.
#[derive(Debug)]
pub struct Clock {
    now_ns: AtomicU64,
    step_ns: AtomicU64,
    /// Wall-clock time (Unix epoch, ns) at boot; changes on migration to a "new host".
    boot_wall_ns: AtomicU64,
}

impl Clock {
    /// A clock at boot time `boot_unix_secs` that advances `step_ns` per read (0 = manual).
    pub fn new(boot_unix_secs: u64, step_ns: u64) -> Self {
        Clock {
            now_ns: AtomicU64::new(0),
            step_ns: AtomicU64::new(step_ns),
            boot_wall_ns: AtomicU64::new(boot_unix_secs * 1_000_000_000),
        }
    }

    /// Nanoseconds since boot (advances by the auto step).
    pub fn now_ns(&self) -> u64 {
        let step = self.step_ns.load(Ordering::Relaxed);
        self.now_ns.fetch_add(step, Ordering::SeqCst) + step
    }

    /// Nanoseconds since boot without advancing.
    pub fn peek_ns(&self) -> u64 {
        self.now_ns.load(Ordering::SeqCst)
    }

    /// Move time forward.
    pub fn advance(&self, ns: u64) {
        self.now_ns.fetch_add(ns, Ordering::SeqCst);
    }

    /// Set the per-read auto step (0 makes time manual).
    pub fn set_step(&self, ns: u64) {
        self.step_ns.store(ns, Ordering::Relaxed);
    }

    /// Wall-clock time at boot (Unix epoch, ns).
    pub fn boot_wall_ns(&self) -> u64 {
        self.boot_wall_ns.load(Ordering::SeqCst)
    }

    /// Change the wall clock (e.g. resume on a host whose clock differs).
    pub fn set_boot_wall_ns(&self, ns: u64) {
        self.boot_wall_ns.store(ns, Ordering::SeqCst);
    }

    /// Current wall-clock time in Windows units (100 ns since 1601-01-01).
    pub fn windows_system_time(&self) -> i64 {
        let unix_ns = self.boot_wall_ns() + self.now_ns();
        ((unix_ns / 100) + WINDOWS_TO_UNIX_EPOCH_SECS * 10_000_000) as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_step_and_manual_advance() {
        let c = Clock::new(1_700_000_000, 1000);
        assert_eq!(c.now_ns(), 1000);
        assert_eq!(c.now_ns(), 2000);
        c.set_step(0);
        c.advance(5);
        assert_eq!(c.now_ns(), 2005);
        let t = c.windows_system_time();
        assert_eq!(
            t,
            ((1_700_000_000u64 * 1_000_000_000 + 2005) / 100
                + WINDOWS_TO_UNIX_EPOCH_SECS * 10_000_000) as i64
        );
    }
}
