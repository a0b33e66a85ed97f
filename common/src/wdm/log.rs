//! Kernel logging through `DbgPrintEx` (component `DPFLTR_IHVDRIVER_ID`), one line per call,
//! prefixed with the driver's name: `xen|`, `xenbus|` or `xenfilt|`.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU8, Ordering};

/// Which driver of the package is logging.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Component {
    /// xen.sys
    Xen = 0,
    /// xenbus.sys
    XenBus = 1,
    /// xenfilt.sys
    XenFilt = 2,
}

impl Component {
    /// The prefix that starts each of this driver's log lines.
    pub const fn prefix(self) -> &'static str {
        match self {
            Component::Xen => "xen|",
            Component::XenBus => "xenbus|",
            Component::XenFilt => "xenfilt|",
        }
    }
}

/// `DbgPrintEx` severity levels (`DPFLTR_*_LEVEL`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Level {
    /// `DPFLTR_ERROR_LEVEL`: always shown.
    Error = 0,
    /// `DPFLTR_WARNING_LEVEL`.
    Warning = 1,
    /// `DPFLTR_TRACE_LEVEL`.
    Trace = 2,
    /// `DPFLTR_INFO_LEVEL`.
    Info = 3,
}

/// `DPFLTR_IHVDRIVER_ID`: the component id for third-party drivers.
pub const DPFLTR_IHVDRIVER_ID: u32 = 77;

/// Longest line handed to the debugger, NUL included; longer lines are cut.
pub const LINE_CAPACITY: usize = 256;

static COMPONENT: AtomicU8 = AtomicU8::new(Component::Xen as u8);

/// Record which driver this image is; called first thing in `DriverEntry`/`DllInitialize`.
pub fn set_component(component: Component) {
    COMPONENT.store(component as u8, Ordering::Relaxed);
}

/// The driver recorded by [`set_component`].
pub fn component() -> Component {
    match COMPONENT.load(Ordering::Relaxed) {
        1 => Component::XenBus,
        2 => Component::XenFilt,
        _ => Component::Xen,
    }
}

/// A fixed-size, NUL-terminated line that silently truncates what does not fit.
pub struct Line {
    bytes: [u8; LINE_CAPACITY],
    len: usize,
    truncated: bool,
}

impl Default for Line {
    fn default() -> Self {
        Line {
            bytes: [0; LINE_CAPACITY],
            len: 0,
            truncated: false,
        }
    }
}

impl Line {
    /// Format `prefix`, `args` and a newline into a new line.
    pub fn format(prefix: &str, args: fmt::Arguments<'_>) -> Line {
        let mut line = Line::default();
        // Writing into a Line never fails: overflow truncates.
        let _ = line.write_str(prefix);
        let _ = line.write_fmt(args);
        let _ = line.write_str("\n");
        if line.truncated {
            // Keep the newline so the next line still starts on its own.
            if let Some(last) = line.len.checked_sub(1).and_then(|i| line.bytes.get_mut(i)) {
                *last = b'\n';
            }
        }
        line
    }

    /// The text without the terminating NUL.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or(&[])
    }

    /// True when the text did not fit.
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// Pointer to the NUL-terminated text.
    pub fn as_ptr(&self) -> *const u8 {
        self.bytes.as_ptr()
    }
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &byte in s.as_bytes() {
            // Keep one byte for the NUL; an interior NUL would end the line early.
            if self.len + 1 >= LINE_CAPACITY {
                self.truncated = true;
                break;
            }
            if let Some(slot) = self.bytes.get_mut(self.len) {
                *slot = if byte == 0 { b'?' } else { byte };
                self.len += 1;
            }
        }
        Ok(())
    }
}

/// Log one line at `level` with this driver's prefix.
#[cfg(windows)]
pub fn log(level: Level, args: fmt::Arguments<'_>) {
    emit(level, &Line::format(component().prefix(), args));
}

/// Print `text` as one line at `level` without a prefix (for text already formatted with
/// one, such as the xen.sys log core's lines).
#[cfg(windows)]
pub fn print(level: Level, text: &str) {
    emit(level, &Line::format("", format_args!("{text}")));
}

#[cfg(windows)]
fn emit(level: Level, line: &Line) {
    // SAFETY: "%s" with a NUL-terminated buffer that outlives the call; DbgPrintEx is
    // callable at any IRQL for text of this size.
    unsafe {
        super::ntoskrnl::DbgPrintEx(
            DPFLTR_IHVDRIVER_ID,
            level as u32,
            c"%s".as_ptr().cast(),
            line.as_ptr(),
        );
    }
}

/// Log a formatted line at a [`Level`]: `kernel_log!(Level::Info, "x = {}", x)`.
#[cfg(windows)]
#[macro_export]
macro_rules! kernel_log {
    ($level:expr, $($arg:tt)*) => {
        $crate::wdm::log::log($level, format_args!($($arg)*))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        let line = Line::format(
            Component::XenBus.prefix(),
            format_args!("{}: {:#x}", "FdoCreate", 0x5853),
        );
        assert_eq!(line.as_bytes(), b"xenbus|FdoCreate: 0x5853\n");
        assert!(!line.truncated());
        assert_eq!(
            Line::format(Component::Xen.prefix(), format_args!("a")).as_bytes(),
            b"xen|a\n"
        );
        assert_eq!(
            Line::format(Component::XenFilt.prefix(), format_args!("b")).as_bytes(),
            b"xenfilt|b\n"
        );
    }

    #[test]
    fn long_lines_are_cut_with_newline_and_nul() {
        let long = "x".repeat(1000);
        let line = Line::format("xen|", format_args!("{long}\0"));
        assert!(line.truncated());
        assert_eq!(line.as_bytes().len(), LINE_CAPACITY - 1);
        assert_eq!(line.as_bytes().last(), Some(&b'\n'));
        // SAFETY: the buffer has LINE_CAPACITY bytes.
        assert_eq!(unsafe { *line.as_ptr().add(LINE_CAPACITY - 1) }, 0);
    }

    #[test]
    fn interior_nul_is_replaced() {
        assert_eq!(
            Line::format("xen|", format_args!("a\0b")).as_bytes(),
            b"xen|a?b\n"
        );
    }

    #[test]
    fn component_round_trips() {
        set_component(Component::XenFilt);
        assert_eq!(component(), Component::XenFilt);
        set_component(Component::Xen);
        assert_eq!(component(), Component::Xen);
    }
}
