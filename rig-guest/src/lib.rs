//! The rig scenarios: each one exercises the real hypervisor (or, in the twin tests, the
//! simulator) through the project's own cores — the `xen` crate's hypercall wrappers and
//! the xenbus STORE client — and reports `RIG: SCENARIO <name> PASS|FAIL …`.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use core::fmt::Write;

use common::hypercall::Hypercall;
use common::os::Os;
use xen_include::api::XenApi;
use xenbus::shared::SharedMemory;

pub mod api;
mod balloon;
pub mod cores;
pub mod dpc;
mod scenarios;
pub mod xs;

pub use scenarios::SCENARIOS;

/// What a scenario needs from the machine it runs on.
pub trait GuestEnv {
    /// The hypercall edge.
    fn hv(&self) -> &dyn Hypercall;
    /// The frame number of scratch page `index` (zeroed, owned by the scenarios; at least
    /// 8 exist). The page's contents are reached through [`GuestEnv::frame`].
    fn scratch_pfn(&self, index: usize) -> Option<u64>;
    /// A view of guest frame `pfn` (RAM, a ring page or a page mapped by add_to_physmap).
    fn frame(&self, pfn: u64) -> Option<SharedMemory>;
    /// Let time pass while polling (a few microseconds to a millisecond).
    fn pause(&self);
    /// Milliseconds on a monotonic clock: the hypervisor's system time on real Xen
    /// (`HVMOP_get_time`); on the simulator, a clock that every [`GuestEnv::pause`]
    /// advances. Every wait of the scenarios is bounded by this clock, not by a count of
    /// polls, so a slow (loaded, emulated) machine only makes them wait longer.
    fn now_ms(&self) -> u64;
    /// xen.sys's core as the xenbus cores see it ([`api::RigApi`] over this machine).
    fn api(&self) -> &'static dyn XenApi;
    /// The kernel services the xenbus cores use.
    fn os(&self) -> &'static dyn Os;
    /// Where the guest keeps its xenbus cores once brought up ([`cores::Cores::get`]).
    fn cores(&self) -> &core::cell::OnceCell<cores::Cores>;
    /// Where the guest keeps its one store connection once attached ([`xs::Xs::connect`]).
    fn store(&self) -> &core::cell::OnceCell<xs::Connection>;
    /// How many times [`GuestEnv::os`]'s `set_event(event)` has been called (the STORE
    /// core signals a fired watch that way).
    fn event_sets(&self, event: usize) -> u64;
}

/// How long the guest waits for xenstored's reply to one request.
pub const REPLY_TIMEOUT_MS: u64 = 120_000;
/// How long the guest waits for the dom0 helper's answer (or for an event it sends).
pub const DOM0_TIMEOUT_MS: u64 = 300_000;

/// A point in time after which a wait gives up.
#[derive(Clone, Copy)]
pub struct Deadline {
    end: u64,
}

impl Deadline {
    /// `timeout_ms` from now.
    pub fn after(env: &dyn GuestEnv, timeout_ms: u64) -> Self {
        Self {
            end: env.now_ms().saturating_add(timeout_ms),
        }
    }

    /// True once the deadline has passed.
    pub fn expired(&self, env: &dyn GuestEnv) -> bool {
        env.now_ms() >= self.end
    }
}

/// Poll `ready` (pausing between polls) until it yields a value or `timeout_ms` passes.
pub fn wait_for<T>(
    env: &dyn GuestEnv,
    timeout_ms: u64,
    mut ready: impl FnMut() -> Result<Option<T>, alloc::string::String>,
) -> Result<Option<T>, alloc::string::String> {
    let deadline = Deadline::after(env, timeout_ms);
    let mut polls = 0u32;
    loop {
        if let Some(value) = ready()? {
            return Ok(Some(value));
        }
        polls = polls.wrapping_add(1);
        if polls.is_multiple_of(CLOCK_EVERY) && deadline.expired(env) {
            return Ok(None);
        }
        env.pause();
    }
}

/// Polling loops read the clock every this many polls: on real Xen each read is one more
/// exit to the hypervisor, which under TCG would double a poll's cost.
pub const CLOCK_EVERY: u32 = 8;

/// A scenario's verdict and its one-line detail.
#[derive(Clone, Copy)]
pub struct Verdict {
    /// The scenario passed.
    pub passed: bool,
    /// What it measured, or why it failed.
    pub detail: Detail,
}

/// A scenario.
pub type Scenario = fn(&dyn GuestEnv) -> Verdict;

/// A short fixed-capacity text for result lines.
#[derive(Clone, Copy)]
pub struct Detail {
    bytes: [u8; 480],
    len: usize,
}

impl Detail {
    /// An empty text.
    pub const fn new() -> Self {
        Self {
            bytes: [0; 480],
            len: 0,
        }
    }

    /// The text written so far.
    pub fn as_str(&self) -> &str {
        let bytes = self.bytes.get(..self.len).unwrap_or_default();
        core::str::from_utf8(bytes).unwrap_or("<non-utf8>")
    }
}

impl Default for Detail {
    fn default() -> Self {
        Self::new()
    }
}

impl Write for Detail {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for &b in s.as_bytes() {
            if let Some(slot) = self.bytes.get_mut(self.len) {
                *slot = if b == b'\n' { b' ' } else { b };
                self.len += 1;
            }
        }
        Ok(())
    }
}

/// Format a [`Detail`].
#[macro_export]
macro_rules! detail {
    ($($arg:tt)*) => {{
        let mut d = $crate::Detail::new();
        let _ = core::fmt::Write::write_fmt(&mut d, format_args!($($arg)*));
        d
    }};
}

/// A passing [`Verdict`] with a formatted detail.
#[macro_export]
macro_rules! pass {
    ($($arg:tt)*) => { $crate::Verdict { passed: true, detail: $crate::detail!($($arg)*) } };
}

/// A failing [`Verdict`] with a formatted reason.
#[macro_export]
macro_rules! fail {
    ($($arg:tt)*) => { $crate::Verdict { passed: false, detail: $crate::detail!($($arg)*) } };
}

/// Whether `name` is selected by `filter` (`all`, or a comma-separated list).
pub fn selected(filter: &str, name: &str) -> bool {
    let filter = filter.trim();
    filter.is_empty() || filter == "all" || filter.split(',').any(|f| f.trim() == name)
}

/// Run the selected scenarios in order, printing one result line each. Returns (passed,
/// failed).
pub fn run_all(env: &dyn GuestEnv, filter: &str, out: &mut dyn Write) -> (u32, u32) {
    let mut passed = 0;
    let mut failed = 0;
    for (name, scenario) in SCENARIOS {
        if !selected(filter, name) {
            continue;
        }
        let verdict = scenario(env);
        if verdict.passed {
            passed += 1;
        } else {
            failed += 1;
        }
        let word = if verdict.passed { "PASS" } else { "FAIL" };
        let _ = writeln!(
            out,
            "RIG: SCENARIO {name} {word} {}",
            verdict.detail.as_str()
        );
    }
    (passed, failed)
}
