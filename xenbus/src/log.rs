//! Log lines to xen.sys's logger (`LogPrintf`) through the `XenApi` edge, formatted into a
//! bounded stack buffer (no allocation; long lines are truncated like upstream's 256-byte
//! slots).
#![forbid(unsafe_code)]

use core::fmt::{self, Write};
use xen_include::api::{LogLevel, XenApi};

/// Longest line kept.
pub const LINE_MAX: usize = 256;

/// A fixed-size line buffer that silently truncates.
pub struct Line {
    buf: [u8; LINE_MAX],
    len: usize,
}

impl Line {
    /// An empty line.
    pub const fn new() -> Self {
        Self {
            buf: [0; LINE_MAX],
            len: 0,
        }
    }

    /// The text written so far (cut at a character boundary).
    pub fn as_str(&self) -> &str {
        let bytes = self.buf.get(..self.len).unwrap_or(&[]);
        match core::str::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => {
                core::str::from_utf8(bytes.get(..e.valid_up_to()).unwrap_or(&[])).unwrap_or("")
            }
        }
    }
}

impl core::fmt::Debug for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        core::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl Default for Line {
    fn default() -> Self {
        Self::new()
    }
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            if let Some(slot) = self.buf.get_mut(self.len) {
                *slot = b;
                self.len += 1;
            }
        }
        Ok(())
    }
}

impl Line {
    /// `args` formatted (truncated at [`LINE_MAX`]).
    pub fn from_fmt(args: fmt::Arguments<'_>) -> Self {
        let mut line = Self::new();
        let _ = line.write_fmt(args);
        line
    }
}

impl From<fmt::Arguments<'_>> for Line {
    fn from(args: fmt::Arguments<'_>) -> Self {
        Self::from_fmt(args)
    }
}

/// One step of a debug dump (see [`dump_lines`]).
// The line stays inline: boxing it would allocate, which a dump must not.
#[allow(clippy::large_enum_variant)]
pub enum Dumped {
    /// Print this line.
    Line(Line),
    /// Nothing to print for this step; go on.
    Skip,
    /// The dump is complete.
    Done,
    /// The state's lock is held: print the busy line and stop.
    Busy,
}

/// Run a debug dump one line at a time: `step(0)`, `step(1)`, … until it says
/// [`Dumped::Done`] or [`Dumped::Busy`]. Each step tries the subsystem's lock itself (never
/// spins: a dump may run at bug check with the lock held, or at HIGH_LEVEL) and formats its
/// line on the stack (no allocation), so the lock is released before `out` runs — `out`
/// may log to the console, whose notification takes other locks.
pub fn dump_lines(out: &mut dyn FnMut(&str), busy: &str, mut step: impl FnMut(usize) -> Dumped) {
    for i in 0.. {
        match step(i) {
            Dumped::Line(line) => out(line.as_str()),
            Dumped::Skip => {}
            Dumped::Done => return,
            Dumped::Busy => {
                out(busy);
                return;
            }
        }
    }
}

/// Format `args` and hand the line to xen.sys at `level`.
pub fn log(api: &dyn XenApi, level: LogLevel, args: fmt::Arguments<'_>) {
    let mut line = Line::new();
    let _ = line.write_fmt(args);
    let _ = line.write_str("\n");
    api.log(level, line.as_str());
}

/// `error!(api, "fmt", ..)`: an ERROR line prefixed `XENBUS|`.
#[macro_export]
macro_rules! error {
    ($api:expr, $($arg:tt)*) => {
        $crate::log::log($api, xen_include::api::LOG_LEVEL_ERROR,
            format_args!("XENBUS|{}", format_args!($($arg)*)))
    };
}

/// `warning!(api, "fmt", ..)`: a WARNING line prefixed `XENBUS|`.
#[macro_export]
macro_rules! warning {
    ($api:expr, $($arg:tt)*) => {
        $crate::log::log($api, xen_include::api::LOG_LEVEL_WARNING,
            format_args!("XENBUS|{}", format_args!($($arg)*)))
    };
}

/// `info!(api, "fmt", ..)`: an INFO line prefixed `XENBUS|`.
#[macro_export]
macro_rules! info {
    ($api:expr, $($arg:tt)*) => {
        $crate::log::log($api, xen_include::api::LOG_LEVEL_INFO,
            format_args!("XENBUS|{}", format_args!($($arg)*)))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_are_truncated() {
        let mut l = Line::new();
        for _ in 0..100 {
            write!(l, "abcd").unwrap();
        }
        assert_eq!(l.as_str().len(), LINE_MAX);
        let mut l = Line::new();
        write!(l, "{}", "é".repeat(200)).unwrap();
        assert!(l.as_str().len() <= LINE_MAX);
        assert!(l.as_str().chars().all(|c| c == 'é'));
    }
}
