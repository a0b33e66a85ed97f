//! BALLOON (spec §5.16): give guest frames back to Xen (inflate, `decrease_reservation`)
//! and take them back (deflate, `populate_physmap`) to follow the toolstack's
//! `memory/target`, plus the FDO's balloon thread pass, start-up wait and PnP veto.
//!
//! Edges: xen.sys (`XenApi`) for the memory ops and the log, [`BalloonMemory`] for the
//! kernel's page allocator (`MmAllocatePagesForMdlEx` / `MmAddPhysicalMemory` and the
//! low-memory condition), [`BalloonStore`] for xenstore and [`SuspendExclusion`] for the
//! balloon/suspend mutex.
//!
//! Decisions: releasing BALLOON while inflated is refused and logged (the original BUGs);
//! values read from xenstore are parsed strictly (decimal KiB; FIST keys base 2) and a
//! malformed value counts as absent.
#![forbid(unsafe_code)]

use alloc::vec::Vec;

use core::fmt::Write;

use common::sync::SpinLock;
use xen_include::api::{
    LogLevel, XenApi, LOG_LEVEL_ERROR, LOG_LEVEL_INFO, LOG_LEVEL_WARNING, PAGE_ORDER_4K,
};
use xen_include::status::{NtStatus, STATUS_NO_MEMORY, STATUS_RETRY, STATUS_UNSUCCESSFUL};

use crate::fdo::start_option;
use crate::range_set::RangeSet;

/// Largest number of frames handed to one memory op.
pub const BATCH_PAGES: usize = 8192;
/// Allocation rate below which inflation backs off (pages per second).
pub const MINIMUM_RATE_PAGES_PER_SECOND: u64 = 1000;
/// The balloon thread's retry period while the target is not reached (seconds).
pub const RETRY_SECONDS: u32 = 1;
/// Start-up wait: warn after this many seconds without reaching the target.
pub const STARTUP_WARN_SECONDS: u64 = 10;
/// Start-up wait: bug-check after this many seconds.
pub const STARTUP_BUGCHECK_SECONDS: u64 = 1200;

/// xen.sys as the balloon needs it: the two reservation ops (4 KiB extents) and the log.
/// Every `XenApi` is one; the real-Xen rig guest implements it over raw hypercalls.
pub trait BalloonXen: Sync {
    /// `XENMEM_decrease_reservation`; how many frames Xen took (in order).
    fn decrease_reservation(&self, pfns: &mut [usize]) -> Result<u32, NtStatus>;
    /// `XENMEM_populate_physmap`; how many frames were populated (in order).
    fn populate_physmap(&self, pfns: &mut [usize]) -> Result<u32, NtStatus>;
    /// Log a line.
    fn log(&self, level: LogLevel, text: &str);
}

impl<T: XenApi + ?Sized> BalloonXen for T {
    fn decrease_reservation(&self, pfns: &mut [usize]) -> Result<u32, NtStatus> {
        self.memory_decrease_reservation(PAGE_ORDER_4K, pfns)
    }
    fn populate_physmap(&self, pfns: &mut [usize]) -> Result<u32, NtStatus> {
        self.memory_populate_physmap(PAGE_ORDER_4K, pfns)
    }
    fn log(&self, level: LogLevel, text: &str) {
        XenApi::log(self, level, text)
    }
}

fn log(api: &dyn BalloonXen, level: LogLevel, args: core::fmt::Arguments<'_>) {
    let mut line = crate::log::Line::new();
    let _ = line.write_str("XENBUS|BALLOON: ");
    let _ = line.write_fmt(args);
    let _ = line.write_str("\n");
    api.log(level, line.as_str());
}

/// The kernel's page allocator as the balloon needs it.
pub trait BalloonMemory: Sync {
    /// `\KernelObjects\LowMemoryCondition` is signalled.
    fn low_memory(&self) -> bool;
    /// Allocate up to `count` pages (don't-zero, prefer-contiguous, hot-removed) and push
    /// their frame numbers to `pfns`; a short allocation is allowed.
    fn allocate(&self, count: usize, pfns: &mut Vec<u64>);
    /// Give frames back to the OS (`MmAddPhysicalMemory`).
    fn give_back(&self, pfns: &[u64]);
    /// Monotonic time in 100 ns units (for the allocation rate).
    fn now_100ns(&self) -> u64;
}

/// xenstore as the balloon thread needs it (paths relative to the domain home).
pub trait BalloonStore {
    /// Read a node; `None` when absent.
    fn read(&self, path: &str, out: &mut [u8]) -> Option<usize>;
    /// Write a node.
    fn write(&self, path: &str, value: &str) -> Result<(), NtStatus>;
}

/// The balloon/suspend mutex.
pub trait SuspendExclusion {
    /// Take it unless a suspend holds it.
    fn try_enter(&self) -> bool;
    /// Release it and wake the suspend thread.
    fn leave(&self);
}

/// `XEN:BALLOON=OFF` among the start options disables ballooning.
pub fn enabled(start_options: &str) -> bool {
    !start_option(start_options, "XEN:BALLOON=").is_some_and(|v| v.eq_ignore_ascii_case("OFF"))
}

/// `memory/static-max` − `memory/videoram` (KiB) in pages; `None` (not ready) when
/// static-max is absent or zero or videoram exceeds it.
pub fn static_max_pages(static_max_kib: u64, videoram_kib: u64) -> Option<u64> {
    if static_max_kib == 0 || videoram_kib > static_max_kib {
        return None;
    }
    Some((static_max_kib - videoram_kib) / 4)
}

/// Desired balloon size in pages for `memory/target` (KiB), the target capped at
/// `static_max` pages.
pub fn desired_size(static_max: u64, target_kib: u64) -> u64 {
    static_max - (target_kib / 4).min(static_max)
}

/// What the start-up wait should do after `elapsed` seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartupWait {
    /// Target reached (or ballooning off).
    Done,
    /// Keep waiting quietly.
    Wait,
    /// Keep waiting, with a warning.
    Warn,
    /// Give up: bug-check (the guest cannot run with more memory than it was given).
    BugCheck,
}

/// The start-up wait rule.
pub fn startup_wait(reached: bool, elapsed_seconds: u64) -> StartupWait {
    if reached {
        StartupWait::Done
    } else if elapsed_seconds >= STARTUP_BUGCHECK_SECONDS {
        StartupWait::BugCheck
    } else if elapsed_seconds >= STARTUP_WARN_SECONDS {
        StartupWait::Warn
    } else {
        StartupWait::Wait
    }
}

fn parse_decimal(text: &[u8]) -> Option<u64> {
    let s = core::str::from_utf8(text)
        .ok()?
        .trim_end_matches('\0')
        .trim();
    s.parse().ok()
}

fn parse_base2(text: &[u8]) -> Option<u64> {
    let s = core::str::from_utf8(text)
        .ok()?
        .trim_end_matches('\0')
        .trim();
    u64::from_str_radix(s, 2).ok()
}

struct State {
    frames: RangeSet,
    size: u64,
    inflation_allowed: bool,
    deflation_allowed: bool,
}

/// The balloon.
pub struct Balloon<'a> {
    api: &'a dyn BalloonXen,
    memory: &'a dyn BalloonMemory,
    batch: usize,
    state: SpinLock<State>,
}

impl<'a> Balloon<'a> {
    /// An empty balloon with the standard batch size.
    pub fn new(api: &'a dyn BalloonXen, memory: &'a dyn BalloonMemory) -> Self {
        Self::with_batch(api, memory, BATCH_PAGES)
    }

    /// An empty balloon with batches of `batch` frames (tests use small batches).
    pub fn with_batch(
        api: &'a dyn BalloonXen,
        memory: &'a dyn BalloonMemory,
        batch: usize,
    ) -> Self {
        Self {
            api,
            memory,
            batch: batch.clamp(1, BATCH_PAGES),
            state: SpinLock::new(State {
                frames: RangeSet::new(),
                size: 0,
                inflation_allowed: true,
                deflation_allowed: true,
            }),
        }
    }

    /// `BalloonGetSize`: frames currently given to Xen.
    pub fn size(&self) -> u64 {
        self.state.lock().size
    }

    /// Whether `pfn` is in the balloon.
    pub fn contains(&self, pfn: u64) -> bool {
        self.state.lock().frames.contains(pfn)
    }

    /// The FIST fault keys (`FIST/balloon/inflation`, `FIST/balloon/deflation`, base 2,
    /// non-zero = disallow that direction).
    pub fn set_faults(&self, store: &dyn BalloonStore) {
        let mut buf = [0u8; 32];
        let mut read = |path| {
            store
                .read(path, &mut buf)
                .and_then(|n| parse_base2(buf.get(..n).unwrap_or(&[])))
                .unwrap_or(0)
        };
        let inflation = read("FIST/balloon/inflation");
        let deflation = read("FIST/balloon/deflation");
        let mut s = self.state.lock();
        s.inflation_allowed = inflation == 0;
        s.deflation_allowed = deflation == 0;
    }

    /// PnP query-stop/query-remove: vetoed while frames are out.
    pub fn veto_removal(&self) -> bool {
        self.size() != 0
    }

    /// BALLOON Release: refused while inflated (logged).
    pub fn check_release(&self) -> Result<(), NtStatus> {
        let size = self.size();
        if size != 0 {
            log(
                self.api,
                LOG_LEVEL_ERROR,
                format_args!("released while still inflated ({} pages)", size),
            );
            return Err(STATUS_UNSUCCESSFUL);
        }
        Ok(())
    }

    /// `BalloonAdjust(size)`: inflate or deflate towards `size` frames. `STATUS_RETRY`
    /// when progress stalled (slow or short allocation, frames Xen kept): call again later.
    pub fn adjust(&self, size: u64) -> Result<(), NtStatus> {
        let current = self.size();
        log(
            self.api,
            LOG_LEVEL_INFO,
            format_args!("{current} -> {size} pages"),
        );
        if size > current {
            self.inflate(size - current)
        } else if size < current {
            self.deflate(current - size)
        } else {
            Ok(())
        }
    }

    fn inflate(&self, mut requested: u64) -> Result<(), NtStatus> {
        if !self.state.lock().inflation_allowed {
            return Err(STATUS_UNSUCCESSFUL);
        }
        let mut pfns: Vec<u64> = Vec::new();
        let mut frames: Vec<usize> = Vec::new();
        pfns.try_reserve(self.batch).map_err(|_| STATUS_NO_MEMORY)?;
        frames
            .try_reserve(self.batch)
            .map_err(|_| STATUS_NO_MEMORY)?;
        while requested > 0 {
            if self.memory.low_memory() {
                log(
                    self.api,
                    LOG_LEVEL_WARNING,
                    format_args!("low memory, inflation refused"),
                );
                return Err(STATUS_NO_MEMORY);
            }
            let want = (requested as usize).min(self.batch);
            pfns.clear();
            let start = self.memory.now_100ns();
            self.memory.allocate(want, &mut pfns);
            let elapsed = self.memory.now_100ns().saturating_sub(start);
            pfns.truncate(want);
            let got = pfns.len();
            // pages/s = got / (elapsed / 1e7)
            let slow = elapsed > 0
                && (got as u64).saturating_mul(10_000_000)
                    < MINIMUM_RATE_PAGES_PER_SECOND.saturating_mul(elapsed);
            pfns.sort_unstable();
            frames.clear();
            frames.extend(pfns.iter().map(|p| *p as usize));
            let done = if frames.is_empty() {
                0
            } else {
                match self.api.decrease_reservation(&mut frames) {
                    Ok(n) => (n as usize).min(got),
                    Err(e) => {
                        log(
                            self.api,
                            LOG_LEVEL_WARNING,
                            format_args!("decrease_reservation failed ({:#010x})", e as u32),
                        );
                        0
                    }
                }
            };
            // Frames Xen did not take go back to the OS.
            if let Some(refused) = pfns.get(done..) {
                if !refused.is_empty() {
                    self.memory.give_back(refused);
                }
            }
            {
                let mut s = self.state.lock();
                for p in pfns.get(..done).unwrap_or(&[]) {
                    if s.frames.put(*p as i64, 1).is_ok() {
                        s.size += 1;
                    }
                }
            }
            requested -= done as u64;
            if got < want || done < got || slow {
                log(
                    self.api,
                    LOG_LEVEL_INFO,
                    format_args!(
                        "inflation stalled (allocated {}/{}, given {}, {} x100ns)",
                        got, want, done, elapsed
                    ),
                );
                return Err(STATUS_RETRY);
            }
        }
        Ok(())
    }

    fn deflate(&self, mut requested: u64) -> Result<(), NtStatus> {
        if !self.state.lock().deflation_allowed {
            return Err(STATUS_UNSUCCESSFUL);
        }
        let mut pfns: Vec<u64> = Vec::new();
        let mut frames: Vec<usize> = Vec::new();
        pfns.try_reserve(self.batch).map_err(|_| STATUS_NO_MEMORY)?;
        frames
            .try_reserve(self.batch)
            .map_err(|_| STATUS_NO_MEMORY)?;
        while requested > 0 {
            let want = (requested as usize).min(self.batch);
            pfns.clear();
            {
                let mut s = self.state.lock();
                while pfns.len() < want {
                    let Some(r) = s.frames.ranges().first().copied() else {
                        break;
                    };
                    let n = (r.end - r.start + 1).min((want - pfns.len()) as u64);
                    if s.frames.get(r.start as i64, n).is_err() {
                        break;
                    }
                    pfns.extend(r.start..r.start + n);
                }
            }
            if pfns.is_empty() {
                break;
            }
            frames.clear();
            frames.extend(pfns.iter().map(|p| *p as usize));
            let done = match self.api.populate_physmap(&mut frames) {
                Ok(n) => (n as usize).min(pfns.len()),
                Err(e) => {
                    log(
                        self.api,
                        LOG_LEVEL_WARNING,
                        format_args!("populate_physmap failed ({:#010x})", e as u32),
                    );
                    0
                }
            };
            self.memory.give_back(pfns.get(..done).unwrap_or(&[]));
            let mut s = self.state.lock();
            s.size -= done as u64;
            for p in pfns.get(done..).unwrap_or(&[]) {
                let _ = s.frames.put(*p as i64, 1);
            }
            drop(s);
            requested -= done as u64;
            if done < pfns.len() {
                return Err(STATUS_RETRY);
            }
        }
        Ok(())
    }
}

/// What one pass of the balloon thread did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pass {
    /// `memory/static-max` not usable yet.
    NotReady,
    /// The balloon already has the desired size.
    Idle,
    /// A suspend holds the mutex; try again later.
    Busy,
    /// Adjusted to the desired size.
    Adjusted,
    /// Adjust stopped short (or was refused); retry in [`RETRY_SECONDS`].
    Retry(NtStatus),
}

/// The FDO's balloon thread state.
pub struct BalloonThread<'a> {
    balloon: &'a Balloon<'a>,
    static_max: SpinLock<Option<u64>>,
}

impl<'a> BalloonThread<'a> {
    /// A thread driving `balloon`.
    pub fn new(balloon: &'a Balloon<'a>) -> Self {
        Self {
            balloon,
            static_max: SpinLock::new(None),
        }
    }

    /// One pass (woken by the `memory/target` watch, or the retry timer).
    pub fn pass(&self, store: &dyn BalloonStore, exclusion: &dyn SuspendExclusion) -> Pass {
        let mut buf = [0u8; 32];
        let mut read = |path| {
            store
                .read(path, &mut buf)
                .and_then(|n| parse_decimal(buf.get(..n).unwrap_or(&[])))
        };
        let static_max = {
            let known = *self.static_max.lock();
            match known {
                Some(s) => s,
                None => {
                    let Some(s) = read("memory/static-max")
                        .and_then(|sm| static_max_pages(sm, read("memory/videoram").unwrap_or(0)))
                    else {
                        return Pass::NotReady;
                    };
                    *self.static_max.lock() = Some(s);
                    s
                }
            }
        };
        let Some(target) = read("memory/target") else {
            return Pass::NotReady;
        };
        let desired = desired_size(static_max, target);
        if desired == self.balloon.size() {
            return Pass::Idle;
        }
        if !exclusion.try_enter() {
            return Pass::Busy;
        }
        self.balloon.set_faults(store);
        let _ = store.write("control/balloon-active", "1");
        let r = self.balloon.adjust(desired);
        let _ = store.write("control/balloon-active", "0");
        exclusion.leave();
        match r {
            Ok(()) => Pass::Adjusted,
            Err(e) => Pass::Retry(e),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::sim::Sim;
    use common::os::{Os, Page};
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
    use std::sync::Mutex;

    #[test]
    fn target_math_in_pages_from_kib() {
        assert_eq!(static_max_pages(4 * 1024 * 1024, 8 * 1024), Some(1_046_528));
        assert_eq!(static_max_pages(0, 0), None);
        assert_eq!(static_max_pages(1024, 2048), None);
        assert_eq!(desired_size(1000, 3000), 250);
        assert_eq!(desired_size(1000, 4000), 0);
        assert_eq!(
            desired_size(1000, 1_000_000),
            0,
            "target capped at static-max"
        );
        assert_eq!(desired_size(1000, 0), 1000);
        assert!(enabled("NOEXECUTE=OPTIN"));
        assert!(!enabled("XEN:BALLOON=OFF"));
        assert!(!enabled("/xen:balloon=off DEBUG"));
        assert!(enabled("XEN:BALLOON=ON"));
        assert_eq!(startup_wait(true, 5000), StartupWait::Done);
        assert_eq!(startup_wait(false, 9), StartupWait::Wait);
        assert_eq!(startup_wait(false, 10), StartupWait::Warn);
        assert_eq!(startup_wait(false, 1199), StartupWait::Warn);
        assert_eq!(startup_wait(false, 1200), StartupWait::BugCheck);
        assert_eq!(parse_base2(b"101"), Some(5));
        assert_eq!(parse_base2(b"2"), None);
        assert_eq!(parse_decimal(b"2048\0"), Some(2048));
        assert_eq!(parse_decimal(b"-1"), None);
    }

    /// The guest's page allocator on the simulator's Windows model.
    pub struct SimMemory {
        pub sim: &'static Sim,
        pub pages: Mutex<BTreeMap<u64, Page>>,
        pub low: AtomicBool,
        /// Pages the allocator can hand out before running short.
        pub budget: AtomicUsize,
        /// Virtual time and its cost per allocated page.
        pub now: AtomicU64,
        pub cost_per_page_100ns: AtomicU64,
        pub given_back: AtomicUsize,
    }
    impl SimMemory {
        pub fn new(sim: &'static Sim) -> &'static Self {
            Box::leak(Box::new(Self {
                sim,
                pages: Mutex::default(),
                low: AtomicBool::new(false),
                budget: AtomicUsize::new(usize::MAX),
                now: AtomicU64::new(0),
                cost_per_page_100ns: AtomicU64::new(0),
                given_back: AtomicUsize::new(0),
            }))
        }
    }
    impl BalloonMemory for SimMemory {
        fn low_memory(&self) -> bool {
            self.low.load(Ordering::SeqCst)
        }
        fn allocate(&self, count: usize, pfns: &mut Vec<u64>) {
            for _ in 0..count {
                if self.budget.load(Ordering::SeqCst) == 0 {
                    break;
                }
                let Some(page) = self.sim.m.guest.alloc_page() else {
                    break;
                };
                self.budget.fetch_sub(1, Ordering::SeqCst);
                self.now.fetch_add(
                    self.cost_per_page_100ns.load(Ordering::SeqCst),
                    Ordering::SeqCst,
                );
                self.pages.lock().unwrap().insert(page.pfn, page);
                pfns.push(page.pfn);
            }
        }
        fn give_back(&self, pfns: &[u64]) {
            for p in pfns {
                let page = self.pages.lock().unwrap().remove(p).expect("our page");
                self.sim.m.guest.free_page(page);
                self.given_back.fetch_add(1, Ordering::SeqCst);
            }
        }
        fn now_100ns(&self) -> u64 {
            self.now.load(Ordering::SeqCst)
        }
    }

    fn populated(sim: &Sim, pfn: u64) -> bool {
        sim.m.hv.gfn_is_ram(pfn)
    }

    #[test]
    fn inflate_in_batches_then_deflate_on_the_simulator() {
        let sim: &'static Sim = Box::leak(Box::new(Sim::new(1)));
        let mem = SimMemory::new(sim);
        let b = Balloon::with_batch(sim.xen, mem, 64);
        let (before, _) = sim.m.hv.domain_pages();
        b.adjust(200).unwrap();
        assert_eq!(b.size(), 200);
        let (after, _) = sim.m.hv.domain_pages();
        assert_eq!(before - after, 200, "Xen got 200 frames back");
        let ballooned: Vec<u64> = mem.pages.lock().unwrap().keys().copied().collect();
        assert_eq!(ballooned.len(), 200);
        assert!(ballooned
            .iter()
            .all(|p| b.contains(*p) && !populated(sim, *p)));
        assert!(b.veto_removal());
        assert!(b.check_release().is_err());
        // Deflate part way, then fully.
        b.adjust(50).unwrap();
        assert_eq!(b.size(), 50);
        assert_eq!(sim.m.hv.domain_pages().0, before - 50);
        b.adjust(0).unwrap();
        assert_eq!(sim.m.hv.domain_pages().0, before);
        assert!(ballooned.iter().all(|p| populated(sim, *p)));
        assert!(!b.veto_removal());
        b.check_release().unwrap();
        assert_eq!(mem.given_back.load(Ordering::SeqCst), 200);
    }

    #[test]
    fn low_memory_short_and_slow_allocations_and_fist_keys() {
        let sim: &'static Sim = Box::leak(Box::new(Sim::new(1)));
        let mem = SimMemory::new(sim);
        let b = Balloon::with_batch(sim.xen, mem, 64);
        mem.low.store(true, Ordering::SeqCst);
        assert_eq!(b.adjust(10), Err(STATUS_NO_MEMORY));
        assert_eq!(b.size(), 0);
        mem.low.store(false, Ordering::SeqCst);
        // Short allocation: what was allocated goes in, then RETRY.
        mem.budget.store(30, Ordering::SeqCst);
        assert_eq!(b.adjust(100), Err(STATUS_RETRY));
        assert_eq!(b.size(), 30);
        // Slow allocation (1 ms per page = 1000 pages/s is the floor; 2 ms is too slow).
        mem.budget.store(usize::MAX, Ordering::SeqCst);
        mem.cost_per_page_100ns.store(20_000, Ordering::SeqCst);
        assert_eq!(b.adjust(200), Err(STATUS_RETRY));
        assert_eq!(b.size(), 94, "one batch of 64 went in");
        mem.cost_per_page_100ns.store(10_000, Ordering::SeqCst);
        assert_eq!(b.adjust(200), Ok(()));
        mem.cost_per_page_100ns.store(0, Ordering::SeqCst);
        // FIST keys.
        struct Keys(&'static str, &'static str);
        impl BalloonStore for Keys {
            fn read(&self, path: &str, out: &mut [u8]) -> Option<usize> {
                let v = match path {
                    "FIST/balloon/inflation" => self.0,
                    "FIST/balloon/deflation" => self.1,
                    _ => return None,
                };
                out[..v.len()].copy_from_slice(v.as_bytes());
                Some(v.len())
            }
            fn write(&self, _: &str, _: &str) -> Result<(), NtStatus> {
                Ok(())
            }
        }
        b.set_faults(&Keys("1", "0"));
        assert_eq!(b.adjust(300), Err(STATUS_UNSUCCESSFUL));
        assert_eq!(b.adjust(100), Ok(()));
        b.set_faults(&Keys("0", "10"));
        assert_eq!(b.adjust(0), Err(STATUS_UNSUCCESSFUL));
        b.set_faults(&Keys("0", "0"));
        assert_eq!(b.adjust(0), Ok(()));
        assert_eq!(b.size(), 0);
    }

    /// xenstore as the toolstack shapes it: a map, with a write log.
    #[derive(Default)]
    pub struct MapStore {
        pub nodes: Mutex<BTreeMap<String, String>>,
        pub writes: Mutex<Vec<(String, String)>>,
    }
    impl MapStore {
        pub fn set(&self, path: &str, value: &str) {
            self.nodes.lock().unwrap().insert(path.into(), value.into());
        }
    }
    impl BalloonStore for MapStore {
        fn read(&self, path: &str, out: &mut [u8]) -> Option<usize> {
            let nodes = self.nodes.lock().unwrap();
            let v = nodes.get(path)?;
            let n = v.len().min(out.len());
            out[..n].copy_from_slice(&v.as_bytes()[..n]);
            Some(n)
        }
        fn write(&self, path: &str, value: &str) -> Result<(), NtStatus> {
            self.writes
                .lock()
                .unwrap()
                .push((path.into(), value.into()));
            self.set(path, value);
            Ok(())
        }
    }

    /// The balloon/suspend mutex; `suspending` = a suspend holds it.
    #[derive(Default)]
    pub struct Mutex2 {
        pub suspending: AtomicBool,
        pub held: AtomicBool,
        pub wakes: AtomicUsize,
    }
    impl SuspendExclusion for Mutex2 {
        fn try_enter(&self) -> bool {
            if self.suspending.load(Ordering::SeqCst) {
                return false;
            }
            !self.held.swap(true, Ordering::SeqCst)
        }
        fn leave(&self) {
            self.held.store(false, Ordering::SeqCst);
            self.wakes.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn thread_follows_a_moving_target_with_a_suspend_in_the_middle() {
        let sim: &'static Sim = Box::leak(Box::new(Sim::new(2)));
        let mem = SimMemory::new(sim);
        let b: &'static Balloon<'static> =
            Box::leak(Box::new(Balloon::with_batch(sim.xen, mem, 128)));
        let t = BalloonThread::new(b);
        let store = MapStore::default();
        let mutex = Mutex2::default();
        // Not ready until static-max is there (and sane).
        assert_eq!(t.pass(&store, &mutex), Pass::NotReady);
        store.set("memory/static-max", "4096"); // KiB → 1024 pages
        store.set("memory/videoram", "8192");
        assert_eq!(
            t.pass(&store, &mutex),
            Pass::NotReady,
            "videoram > static-max"
        );
        store.set("memory/videoram", "1024"); // → 768 pages usable
        assert_eq!(t.pass(&store, &mutex), Pass::NotReady, "no target yet");
        store.set("memory/target", "3072"); // 768 pages: nothing to do
        assert_eq!(t.pass(&store, &mutex), Pass::Idle);
        let (pages0, _) = sim.m.hv.domain_pages();
        store.set("memory/target", "2048"); // 512 pages → balloon 256
        assert_eq!(t.pass(&store, &mutex), Pass::Adjusted);
        assert_eq!(b.size(), 256);
        assert_eq!(sim.m.hv.domain_pages().0, pages0 - 256);
        assert_eq!(
            *store.writes.lock().unwrap(),
            vec![
                ("control/balloon-active".to_string(), "1".to_string()),
                ("control/balloon-active".to_string(), "0".to_string())
            ]
        );
        assert_eq!(mutex.wakes.load(Ordering::SeqCst), 1);
        // The target moves while a suspend holds the mutex: nothing happens.
        store.set("memory/target", "1000"); // 250 pages → balloon 518
        mutex.suspending.store(true, Ordering::SeqCst);
        assert_eq!(t.pass(&store, &mutex), Pass::Busy);
        assert_eq!(b.size(), 256);
        // The suspend runs on the simulated hypervisor and resumes.
        use xen_include::api::XenApi;
        use xen_include::xen::sched::ShutdownReason;
        let _ = sim.xen.sched_shutdown(ShutdownReason::SUSPEND.0);
        mutex.suspending.store(false, Ordering::SeqCst);
        // Next pass reaches the new target; frames ballooned before the suspend stay out.
        assert_eq!(t.pass(&store, &mutex), Pass::Adjusted);
        assert_eq!(b.size(), 518);
        assert_eq!(sim.m.hv.domain_pages().0, pages0 - 518);
        // Slow allocation: retry later, then done; target raised above static-max deflates all.
        mem.cost_per_page_100ns.store(100_000, Ordering::SeqCst);
        store.set("memory/target", "200"); // 50 pages → balloon 718: 200 more, 2 batches
        assert_eq!(t.pass(&store, &mutex), Pass::Retry(STATUS_RETRY));
        assert_eq!(b.size(), 518 + 128, "one batch went in before backing off");
        mem.cost_per_page_100ns.store(0, Ordering::SeqCst);
        assert_eq!(t.pass(&store, &mutex), Pass::Adjusted);
        assert_eq!(b.size(), 718);
        store.set("memory/target", "999999");
        assert_eq!(t.pass(&store, &mutex), Pass::Adjusted);
        assert_eq!(b.size(), 0);
        assert_eq!(sim.m.hv.domain_pages().0, pages0);
        assert!(!mutex.held.load(Ordering::SeqCst));
    }
}
