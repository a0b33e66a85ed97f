//! xen.sys: the export driver (hypercalls, grant/event/memory ops, logging, unplug).
#![cfg_attr(not(test), no_std)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::todo,
        clippy::unimplemented
    )
)]
#![deny(unsafe_code)]

extern crate alloc;

/// Host tests run on the IRQL model's checking allocator: heap use above DISPATCH_LEVEL
/// panics, as pool use there bug-checks a real kernel.
#[cfg(test)]
#[global_allocator]
static ALLOCATOR: common::irql::model::CheckingAllocator =
    common::irql::model::CheckingAllocator::SYSTEM;

pub mod acpi;
pub mod bug_check;
pub mod config;
pub mod driver;
pub mod event_channel;
#[cfg(all(any(windows, test), target_arch = "x86_64"))]
#[allow(unsafe_code)]
pub mod exports;
#[cfg(all(test, target_arch = "x86_64"))]
#[allow(unsafe_code)]
mod exports_tests;
#[allow(unsafe_code)]
pub mod ffi;
pub mod filters;
pub mod grant_table;
pub mod hvm;
pub mod hypercall;
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
pub mod hypercall_thunk;
pub mod log;
pub mod memory;
pub mod module;
pub mod op;
#[cfg(test)]
mod ops_tests;
pub mod process;
#[cfg(test)]
mod prop_tests;
pub mod registry;
pub mod rundown;
pub mod sched;
#[cfg(test)]
mod sim_tests;
pub mod system;
#[cfg(test)]
#[allow(unsafe_code)]
mod testing;
pub mod unplug;
pub mod vcpu;
pub mod xen_version;

use core::fmt;

use xen_include::api::LogLevel;

/// DPFLTR levels of the DbgPrint path.
pub mod dpfltr {
    /// `DPFLTR_ERROR_LEVEL`.
    pub const ERROR: u32 = 0;
    /// `DPFLTR_WARNING_LEVEL`.
    pub const WARNING: u32 = 1;
    /// `DPFLTR_TRACE_LEVEL`.
    pub const TRACE: u32 = 2;
    /// `DPFLTR_INFO_LEVEL`.
    pub const INFO: u32 = 3;
}

/// The two ways xen.sys logs: `LogPrintf` straight into the log ring (what the C code
/// does for banners and unplug messages) and DbgPrint lines prefixed `xen|` (its
/// `Info`/`Warning`/`Error` macros), which the capture brings back into the ring.
pub trait Logger {
    /// `LogPrintf(level, ...)`.
    fn printf(&self, level: LogLevel, args: fmt::Arguments<'_>);
    /// A DbgPrint line at DPFLTR `level`, prefixed `xen|`.
    fn dbg(&self, level: u32, args: fmt::Arguments<'_>);
    /// `Info(...)`.
    fn info(&self, args: fmt::Arguments<'_>) {
        self.dbg(dpfltr::INFO, args)
    }
    /// `Warning(...)`.
    fn warning(&self, args: fmt::Arguments<'_>) {
        self.dbg(dpfltr::WARNING, args)
    }
    /// `Error(...)`.
    fn error(&self, args: fmt::Arguments<'_>) {
        self.dbg(dpfltr::ERROR, args)
    }
}

/// A [`Logger`] that records lines, for tests.
#[cfg(test)]
#[derive(Default)]
pub struct TestLogger(std::sync::Mutex<Vec<String>>);

#[cfg(test)]
impl TestLogger {
    /// Every line so far.
    pub fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

#[cfg(test)]
impl Logger for TestLogger {
    fn printf(&self, level: LogLevel, args: fmt::Arguments<'_>) {
        // A test double (the kernel's debugger sink): its record is not checked.
        let _host = common::irql::model::HostSide::enter();
        self.0.lock().unwrap().push(format!("[{level:#x}] {args}"));
    }
    fn dbg(&self, level: u32, args: fmt::Arguments<'_>) {
        // A test double (the kernel's debugger sink): its record is not checked.
        let _host = common::irql::model::HostSide::enter();
        self.0.lock().unwrap().push(format!("xen|{level}: {args}"));
    }
}

#[cfg(windows)]
#[allow(unsafe_code)]
mod wdm;

/// How long code that may run at DISPATCH or HIGH level (resume, bug check) waits for a
/// core lock before giving up: a lock it takes above the lock's own level (a bug check
/// interrupting a holder on the same CPU) would otherwise never be let go.
pub const RAISED_IRQL_SPINS: usize = 1 << 22;

/// Take `lock` within [`RAISED_IRQL_SPINS`] attempts, or `None`.
pub fn lock_bounded<T, L: common::sync::Level>(
    lock: &common::sync::Lock<T, L>,
) -> Option<common::sync::Guard<'_, T, L>> {
    (0..RAISED_IRQL_SPINS).find_map(|_| {
        let g = lock.try_lock();
        if g.is_none() {
            core::hint::spin_loop();
        }
        g
    })
}
