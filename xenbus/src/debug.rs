//! DEBUG (spec §5.13): registered debug callbacks, run on demand (`Trigger`), on
//! `VIRQ_DEBUG` and at bug-check time, each framed in the log and allowed to `Printf`
//! with its prefix while it runs.
//!
//! Decisions: `Printf` outside a callback is dropped with a warning (the original
//! asserts); callbacks whose code is not inside a loaded module are skipped with a log
//! line (their driver has been unloaded); the crash path never spins on a lock (a
//! bug-check may interrupt a holder) and skips the dump if the list is busy.
#![forbid(unsafe_code)]

use alloc::vec::Vec;
use core::fmt::Write;
use core::sync::atomic::{AtomicUsize, Ordering};

use common::sync::HighLock;
use xen_include::api::{ModuleName, XenApi, LOG_LEVEL_INFO, LOG_LEVEL_WARNING};
use xen_include::status::{NtStatus, STATUS_INVALID_PARAMETER, STATUS_NO_MEMORY};

use crate::log::Line;

/// Longest prefix kept (longer prefixes are truncated).
pub const PREFIX_MAX: usize = 31;

/// What DEBUG needs from xen.sys: the log and module lookup.
pub trait DebugEdge {
    /// Write one line at INFO level.
    fn info(&self, text: &str);
    /// Write one line at WARNING level.
    fn warning(&self, text: &str);
    /// The loaded module containing `address` and the offset in it.
    fn module_of(&self, address: usize) -> Option<(ModuleName, usize)>;
}

impl<T: XenApi + ?Sized> DebugEdge for T {
    fn info(&self, text: &str) {
        self.log(LOG_LEVEL_INFO, text);
    }
    fn warning(&self, text: &str) {
        self.log(LOG_LEVEL_WARNING, text);
    }
    fn module_of(&self, address: usize) -> Option<(ModuleName, usize)> {
        self.module_lookup(address)
    }
}

/// A registered callback (a C function and its argument, or a Rust closure in tests).
pub trait DebugFunction: Copy + Send {
    /// Code address, checked against the loaded modules before each call.
    fn address(&self) -> usize;
    /// Run the callback.
    fn call(&self, crashing: bool);
}

/// A callback's prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prefix {
    bytes: [u8; PREFIX_MAX],
    len: usize,
}

impl Prefix {
    /// Copy `text`, truncated to [`PREFIX_MAX`] bytes.
    pub fn new(text: &[u8]) -> Self {
        let mut bytes = [0u8; PREFIX_MAX];
        let len = text.len().min(PREFIX_MAX);
        for (d, s) in bytes.iter_mut().zip(text.iter()) {
            *d = *s;
        }
        Self { bytes, len }
    }
    /// The prefix as text (invalid UTF-8 shown up to the first bad byte).
    pub fn as_str(&self) -> &str {
        let b = self.bytes.get(..self.len).unwrap_or(&[]);
        match core::str::from_utf8(b) {
            Ok(s) => s,
            Err(e) => core::str::from_utf8(b.get(..e.valid_up_to()).unwrap_or(&[])).unwrap_or(""),
        }
    }
}

#[derive(Clone, Copy)]
struct Entry<F> {
    id: usize,
    prefix: Prefix,
    function: F,
}

/// The DEBUG subsystem.
///
/// # Invariants
/// Entry ids are unique and non-zero; `current` is `Some` exactly while a callback runs
/// under the `trigger` lock.
pub struct Debug<F: DebugFunction> {
    /// HIGH_LEVEL: read under `trigger` (also from the VIRQ_DEBUG ISR); `Register` grows
    /// it outside the lock.
    entries: HighLock<Vec<Entry<F>>>,
    /// HIGH_LEVEL (upstream's `HIGH_LOCK`): callbacks run at HIGH_LEVEL, one trigger at a
    /// time.
    trigger: HighLock<()>,
    current: HighLock<Option<Prefix>>,
    next_id: AtomicUsize,
}

impl<F: DebugFunction> Default for Debug<F> {
    fn default() -> Self {
        Self::new()
    }
}

impl<F: DebugFunction> Debug<F> {
    /// No callbacks.
    pub const fn new() -> Self {
        Self {
            entries: HighLock::new(Vec::new()),
            trigger: HighLock::new(()),
            current: HighLock::new(None),
            next_id: AtomicUsize::new(1),
        }
    }

    /// Number of registered callbacks.
    pub fn registered(&self) -> usize {
        self.entries.lock().len()
    }

    /// `DebugRegister`: a handle (non-zero) for `function` printing with `prefix`.
    pub fn register(&self, prefix: &[u8], function: F) -> Result<usize, NtStatus> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.entries
            .push_growing_outside(Entry {
                id,
                prefix: Prefix::new(prefix),
                function,
            })
            .map_err(|_| STATUS_NO_MEMORY)?;
        Ok(id)
    }

    /// `DebugDeregister`; waits for a running Trigger so the callback's module may unload
    /// right after. Unknown handle → `STATUS_INVALID_PARAMETER`.
    pub fn deregister(&self, id: usize) -> Result<(), NtStatus> {
        let _running = self.trigger.lock();
        let mut entries = self.entries.lock();
        let i = entries
            .iter()
            .position(|e| e.id == id)
            .ok_or(STATUS_INVALID_PARAMETER)?;
        entries.remove(i);
        Ok(())
    }

    /// `DebugPrintf` from inside a callback: `"<prefix>: <text>"` at INFO. Outside a
    /// callback the text is dropped (warning) and `STATUS_INVALID_PARAMETER` returned.
    pub fn printf(&self, edge: &dyn DebugEdge, text: &str) -> Result<(), NtStatus> {
        let prefix = *self.current.lock();
        let mut line = Line::new();
        match prefix {
            Some(p) => {
                let _ = write!(line, "{}: {}", p.as_str(), text);
                edge.info(line.as_str());
                Ok(())
            }
            None => {
                let _ = write!(
                    line,
                    "XENBUS|DEBUG: Printf outside a debug callback dropped"
                );
                edge.warning(line.as_str());
                Err(STATUS_INVALID_PARAMETER)
            }
        }
    }

    fn run(&self, edge: &dyn DebugEdge, entry: Entry<F>, crashing: bool) -> bool {
        let address = entry.function.address();
        let mut line = Line::new();
        let Some((module, offset)) = edge.module_of(address) else {
            let _ = write!(
                line,
                "XEN|DEBUG: SKIPPING {} ({:#x}): not in a loaded module",
                entry.prefix.as_str(),
                address
            );
            edge.warning(line.as_str());
            return false;
        };
        let name = core::str::from_utf8(module.as_bytes()).unwrap_or("?");
        let _ = write!(line, "XEN|DEBUG: ====> ({} + {:#x})", name, offset);
        edge.info(line.as_str());
        *self.current.lock() = Some(entry.prefix);
        entry.function.call(crashing);
        *self.current.lock() = None;
        let mut line = Line::new();
        let _ = write!(line, "XEN|DEBUG: <==== ({} + {:#x})", name, offset);
        edge.info(line.as_str());
        true
    }

    /// `DebugTrigger`: run one callback (`Some(handle)`) or all (`None`, also what
    /// `VIRQ_DEBUG` does). Returns how many ran.
    pub fn trigger(&self, edge: &dyn DebugEdge, which: Option<usize>) -> Result<usize, NtStatus> {
        let _running = self.trigger.lock();
        self.trigger_locked(edge, which, false)
    }

    /// The bug-check path: every callback with `Crashing = TRUE`, never waiting for a
    /// lock. Returns how many ran (0 when the list was busy).
    pub fn crash_dump(&self, edge: &dyn DebugEdge) -> usize {
        match self.trigger.try_lock() {
            Some(_running) => self.trigger_locked(edge, None, true).unwrap_or(0),
            None => 0,
        }
    }

    fn trigger_locked(
        &self,
        edge: &dyn DebugEdge,
        which: Option<usize>,
        crashing: bool,
    ) -> Result<usize, NtStatus> {
        if let Some(id) = which {
            let entry = {
                let entries = self.entries.lock();
                entries
                    .iter()
                    .find(|e| e.id == id)
                    .copied()
                    .ok_or(STATUS_INVALID_PARAMETER)?
            };
            return Ok(self.run(edge, entry, crashing) as usize);
        }
        let mut ran = 0;
        let mut index = 0;
        loop {
            // Copy one entry at a time: the callback runs without the list lock (it may
            // Printf, or register further callbacks).
            let entry = {
                let entries = if crashing {
                    match self.entries.try_lock() {
                        Some(e) => e,
                        None => return Ok(ran),
                    }
                } else {
                    self.entries.lock()
                };
                entries.get(index).copied()
            };
            let Some(entry) = entry else {
                break;
            };
            if self.run(edge, entry, crashing) {
                ran += 1;
            }
            index += 1;
        }
        Ok(ran)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A log and a module table.
    #[derive(Default)]
    pub struct Edge {
        pub lines: Mutex<Vec<String>>,
        pub modules: Mutex<Vec<(usize, usize, &'static str)>>,
    }
    impl DebugEdge for Edge {
        fn info(&self, text: &str) {
            // Stands for xen.sys's log (allocation-free): the test's record is not checked.
            let _host = common::irql::model::HostSide::enter();
            self.lines.lock().unwrap().push(format!("I {text}"));
        }
        fn warning(&self, text: &str) {
            // Stands for xen.sys's log (allocation-free): the test's record is not checked.
            let _host = common::irql::model::HostSide::enter();
            self.lines.lock().unwrap().push(format!("W {text}"));
        }
        fn module_of(&self, address: usize) -> Option<(ModuleName, usize)> {
            self.modules
                .lock()
                .unwrap()
                .iter()
                .find(|(b, s, _)| address >= *b && address < b + s)
                .map(|(b, _, n)| (ModuleName::new(n.as_bytes()), address - b))
        }
    }

    type Log = Arc<Mutex<Vec<(usize, bool)>>>;

    #[derive(Clone, Copy)]
    struct Fake {
        address: usize,
        log: &'static Mutex<Vec<(usize, bool)>>,
    }
    impl DebugFunction for Fake {
        fn address(&self) -> usize {
            self.address
        }
        fn call(&self, crashing: bool) {
            // A child's callback (HIGH_LEVEL under the list's lock): the test's record is not checked.
            let _host = common::irql::model::HostSide::enter();
            self.log.lock().unwrap().push((self.address, crashing));
        }
    }

    fn leak_log() -> &'static Mutex<Vec<(usize, bool)>> {
        let l: Log = Arc::default();
        Box::leak(Box::new(Arc::try_unwrap(l).unwrap()))
    }

    #[test]
    fn trigger_one_or_all_frames_and_skips_unloaded_modules() {
        let d: Debug<Fake> = Debug::new();
        let edge = Edge::default();
        edge.modules.lock().unwrap().extend([
            (0x1000, 0x1000, "xenvif.sys"),
            (0x4000, 0x1000, "xenvbd.sys"),
        ]);
        let log = leak_log();
        let a = d
            .register(
                b"VIF",
                Fake {
                    address: 0x1230,
                    log,
                },
            )
            .unwrap();
        let b = d
            .register(
                b"VBD",
                Fake {
                    address: 0x4010,
                    log,
                },
            )
            .unwrap();
        let _gone = d
            .register(
                b"GONE",
                Fake {
                    address: 0x9000,
                    log,
                },
            )
            .unwrap();
        assert_ne!(a, b);
        assert_eq!(d.trigger(&edge, None), Ok(2));
        assert_eq!(*log.lock().unwrap(), vec![(0x1230, false), (0x4010, false)]);
        let lines = edge.lines.lock().unwrap().clone();
        assert_eq!(lines[0], "I XEN|DEBUG: ====> (xenvif.sys + 0x230)");
        assert_eq!(lines[1], "I XEN|DEBUG: <==== (xenvif.sys + 0x230)");
        assert!(lines[4].starts_with("W XEN|DEBUG: SKIPPING GONE (0x9000)"));
        log.lock().unwrap().clear();
        assert_eq!(d.trigger(&edge, Some(b)), Ok(1));
        assert_eq!(*log.lock().unwrap(), vec![(0x4010, false)]);
        assert_eq!(d.trigger(&edge, Some(12345)), Err(STATUS_INVALID_PARAMETER));
        // Deregistered callbacks are never called again.
        d.deregister(a).unwrap();
        assert_eq!(d.deregister(a), Err(STATUS_INVALID_PARAMETER));
        log.lock().unwrap().clear();
        assert_eq!(d.crash_dump(&edge), 1);
        assert_eq!(*log.lock().unwrap(), vec![(0x4010, true)]);
    }

    #[test]
    fn printf_only_inside_a_callback_with_its_prefix() {
        let edge = Edge::default();
        edge.modules.lock().unwrap().push((0, usize::MAX, "t.sys"));
        let d: &'static Debug<Printer> = Box::leak(Box::new(Debug::new()));
        let e: &'static Edge = Box::leak(Box::new(edge));
        #[derive(Clone, Copy)]
        struct Printer(&'static Debug<Printer>, &'static Edge);
        impl DebugFunction for Printer {
            fn address(&self) -> usize {
                0x10
            }
            fn call(&self, crashing: bool) {
                // The test's formatting is not the driver's (runs at HIGH_LEVEL).
                let _host = common::irql::model::HostSide::enter();
                self.0
                    .printf(self.1, &format!("state ok crashing={crashing}"))
                    .unwrap();
            }
        }
        assert_eq!(d.printf(e, "early"), Err(STATUS_INVALID_PARAMETER));
        d.register(b"a_prefix_that_is_far_too_long_to_keep", Printer(d, e))
            .unwrap();
        d.trigger(e, None).unwrap();
        let lines = e.lines.lock().unwrap().clone();
        assert!(lines[0].starts_with("W "));
        assert_eq!(
            lines[2],
            "I a_prefix_that_is_far_too_long_t: state ok crashing=false"
        );
        assert_eq!(d.printf(e, "late"), Err(STATUS_INVALID_PARAMETER));
    }

    #[test]
    fn crash_dump_does_not_wait_for_a_busy_list() {
        let d: Debug<Fake> = Debug::new();
        let edge = Edge::default();
        edge.modules.lock().unwrap().push((0, usize::MAX, "t.sys"));
        let log = leak_log();
        d.register(b"X", Fake { address: 1, log }).unwrap();
        let held = d.trigger.lock();
        assert_eq!(d.crash_dump(&edge), 0);
        drop(held);
        assert_eq!(d.crash_dump(&edge), 1);
    }
}
