//! The rig scenarios: each one exercises the real hypervisor (or, in the twin tests, the
//! simulator) through the `Hypercall` edge and reports `RIG: SCENARIO <name> PASS|FAIL …`.
#![no_std]
#![forbid(unsafe_code)]

use core::fmt::Write;

use common::hypercall::Hypercall;

mod scenarios;

pub use scenarios::SCENARIOS;

/// A scenario's verdict and its one-line detail.
#[derive(Clone, Copy)]
pub struct Verdict {
    /// The scenario passed.
    pub passed: bool,
    /// What it measured, or why it failed.
    pub detail: Detail,
}

/// A scenario: runs against the hypervisor behind the `Hypercall` edge.
pub type Scenario = fn(&dyn Hypercall) -> Verdict;

/// A short fixed-capacity text for result lines (no allocator in the guest).
#[derive(Clone, Copy)]
pub struct Detail {
    bytes: [u8; 160],
    len: usize,
}

impl Detail {
    /// An empty text.
    pub const fn new() -> Self {
        Self {
            bytes: [0; 160],
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
                *slot = b;
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

/// Run every scenario in order, printing one result line each. Returns (passed, failed).
pub fn run_all(hv: &dyn Hypercall, out: &mut dyn Write) -> (u32, u32) {
    let mut passed = 0;
    let mut failed = 0;
    for (name, scenario) in SCENARIOS {
        let verdict = scenario(hv);
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
