//! The C-ABI edge: the per-version vtables each subsystem serves to child drivers, and
//! the shims in them that recover the provider from `Interface->Context` and call the
//! safe core.
//!
//! Every shim dereferences pointers handed over by C code; the contract is the one of the
//! original headers (the interface struct the caller obtained from us, live handles it
//! got from us, NUL-terminated strings). Handles are additionally checked against the
//! provider's list of live objects before use, so a stale or foreign handle is logged and
//! refused instead of dereferenced.

pub mod balloon;
pub mod cache;
pub mod console;
pub mod debug;
pub mod evtchn;
pub mod gnttab;
pub mod query;
pub mod range_set;
pub mod references;
pub mod shared_info;
pub mod store;
pub mod suspend;
pub mod unplug;

pub use common::interface::{c_str, context, copy_interface};

use core::sync::atomic::{AtomicU32, Ordering};

/// The reference count behind an interface's `Acquire`/`Release`.
#[derive(Debug, Default)]
pub struct References(AtomicU32);

impl References {
    /// No references.
    pub const fn new() -> Self {
        Self(AtomicU32::new(0))
    }

    /// Take a reference; returns the new count (1 = first reference: do the setup).
    pub fn acquire(&self) -> u32 {
        self.0.fetch_add(1, Ordering::AcqRel).saturating_add(1)
    }

    /// Drop a reference; returns the new count (0 = last reference: tear down), or
    /// `None` for a Release without an Acquire (ignored).
    pub fn release(&self) -> Option<u32> {
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |r| r.checked_sub(1))
            .ok()
            .map(|old| old - 1)
    }

    /// The current count.
    pub fn get(&self) -> u32 {
        self.0.load(Ordering::Acquire)
    }
}
