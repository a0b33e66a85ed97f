//! Interrupt request levels for the locks of [`crate::sync`]: the kernel edge installs
//! hooks over `KeGetCurrentIrql`/`KfRaiseIrql`/`KeLowerIrql` at DriverEntry/DllInitialize;
//! host tests use a checking model of one processor per thread ([`model`]).
//!
//! Why a lock raises: Windows runs a DPC or an interrupt service routine on top of
//! whatever thread the processor was running. A thread at PASSIVE_LEVEL holding a lock
//! that a DPC (or ISR) on the same processor then tries spins that processor forever.
//! Raising to the level of the most privileged code that takes the lock, before taking
//! it, keeps such code off the processor until the lock is free again.

use core::panic::Location;
use core::sync::atomic::{AtomicPtr, Ordering};

/// A `KIRQL`.
pub type Irql = u8;

/// `PASSIVE_LEVEL`: threads.
pub const PASSIVE_LEVEL: Irql = 0;
/// `APC_LEVEL`.
pub const APC_LEVEL: Irql = 1;
/// `DISPATCH_LEVEL`: DPCs, timers, the scheduler; no waiting, no pageable memory.
pub const DISPATCH_LEVEL: Irql = 2;
/// `HIGH_LEVEL`: every interrupt masked (upstream's `HIGH_LOCK`, the suspend's early
/// phase, bug-check callbacks). No pool allocation at this level or at any DIRQL.
pub const HIGH_LEVEL: Irql = 15;

/// How the locks reach the processor's IRQL.
///
/// `acquire` runs before a lock of level `level` at address `lock` is taken and returns
/// the IRQL to restore; `release` runs after the lock was let go, with that value.
pub struct Hooks {
    /// The current IRQL (`KeGetCurrentIrql`).
    pub current: fn() -> Irql,
    /// Before taking lock `lock` of level `level` (at source location `site`): raise to
    /// `level` if below it, and return the IRQL to restore.
    pub acquire: fn(lock: usize, level: Irql, site: &'static Location<'static>) -> Irql,
    /// After letting go lock `lock` of level `level`: go back to `previous`.
    pub release: fn(lock: usize, level: Irql, previous: Irql),
    /// A call named `what` that is only allowed at IRQL ≤ `max` is about to be made
    /// (PASSIVE_LEVEL for the registry, APC_LEVEL for waits, DISPATCH_LEVEL for pool).
    pub check_at_most: fn(max: Irql, what: &str),
}

/// Hooks that do nothing (a bare-metal build without IRQLs, e.g. the rig's guest).
static NONE: Hooks = Hooks {
    current: || PASSIVE_LEVEL,
    acquire: |_, _, _| PASSIVE_LEVEL,
    release: |_, _, _| {},
    check_at_most: |_, _| {},
};

/// The installed hooks; null = the default ([`model::HOOKS`] in host test builds, else
/// hooks that do nothing).
static INSTALLED: AtomicPtr<Hooks> = AtomicPtr::new(core::ptr::null_mut());

/// Install `hooks` for every lock of the image (the kernel edge, at its entry point,
/// before any lock is taken).
pub fn install(hooks: &'static Hooks) {
    INSTALLED.store((hooks as *const Hooks).cast_mut(), Ordering::Release);
}

fn hooks() -> &'static Hooks {
    let installed = INSTALLED.load(Ordering::Acquire);
    if installed.is_null() {
        #[cfg(any(test, feature = "irql-model"))]
        return &model::HOOKS;
        #[cfg(not(any(test, feature = "irql-model")))]
        return &NONE;
    }
    // SAFETY: `install` is the only writer and stores the address of a `&'static Hooks`,
    // which is never freed nor mutated.
    unsafe { &*installed }
}

/// The hooks that do nothing (for bare-metal images with no IRQL to raise).
pub fn no_hooks() -> &'static Hooks {
    &NONE
}

/// The current IRQL.
pub fn current() -> Irql {
    (hooks().current)()
}

/// Before taking a lock of `level` at address `lock`: the IRQL to restore.
pub(crate) fn acquire(lock: usize, level: Irql, site: &'static Location<'static>) -> Irql {
    (hooks().acquire)(lock, level, site)
}

/// After letting go a lock taken with [`acquire`].
pub(crate) fn release(lock: usize, level: Irql, previous: Irql) {
    (hooks().release)(lock, level, previous)
}

/// Declare that a call only allowed at IRQL ≤ `max` (`what`: a wait, the registry,
/// pageable memory, pool) is made here; below DISPATCH_LEVEL that also means no spin lock
/// held. The kernel hooks do not check it; the host model panics when it is violated.
pub fn check_at_most(max: Irql, what: &str) {
    (hooks().check_at_most)(max, what)
}

/// The checking model used by host tests: every host thread is one processor with its
/// own IRQL and list of held locks, and the model panics where the real kernel would
/// deadlock or bug-check.
///
/// * taking a lock raises to its level; taking it above its level (a DISPATCH_LEVEL lock
///   at DIRQL or HIGH_LEVEL) is refused (`IRQL_NOT_GREATER_OR_EQUAL` in the kernel);
/// * taking a lock this processor already holds is a self-deadlock;
/// * guards go away in reverse order, each restoring the IRQL it found;
/// * [`model::dpc`] and [`model::interrupt`] preempt the processor only when its IRQL is
///   below theirs, as the hardware does;
/// * [`check_at_most`] refuses blocking calls above their level or under a spin lock;
/// * whenever the IRQL drops below DISPATCH_LEVEL (a lock released, an interrupt or a
///   raise ending, a routine on another processor returning), the drains registered with
///   [`model::when_below_dispatch`] run, as `KeLowerIrql` and the interrupt exit dispatch
///   the DPCs queued meanwhile.
/// * [`model::CheckingAllocator`], installed as a test binary's global allocator, refuses
///   heap allocation and freeing above DISPATCH_LEVEL (pool is only available up to
///   DISPATCH_LEVEL: the kernel bug-checks BAD_POOL_CALLER or IRQL_NOT_LESS_OR_EQUAL).
#[cfg(any(test, feature = "irql-model"))]
#[allow(clippy::panic)]
pub mod model {
    extern crate std;

    use super::{Hooks, Irql, Location, DISPATCH_LEVEL};
    use alloc::format;
    use alloc::sync::Arc;
    use alloc::vec::Vec;
    use core::alloc::{GlobalAlloc, Layout};
    use core::cell::{Cell, RefCell};
    use core::sync::atomic::{AtomicBool, Ordering};

    /// One modelled processor.
    #[derive(Default)]
    struct Cpu {
        irql: Irql,
        /// Held locks, innermost last: (address, level, IRQL found, where taken).
        held: Vec<(usize, Irql, Irql, &'static Location<'static>)>,
    }

    /// Something to run once the IRQL is below DISPATCH_LEVEL again (a DPC queue drain).
    pub type Drain = Arc<dyn Fn() + Send + Sync>;

    std::thread_local! {
        static CPU: RefCell<Cpu> = RefCell::new(Cpu::default());
        /// Drains waiting for this thread's IRQL to drop below DISPATCH_LEVEL.
        static DRAINS: RefCell<Vec<Drain>> = const { RefCell::new(Vec::new()) };
        /// Set while [`lowered`] runs drains (they lower the IRQL themselves; the outer
        /// loop picks up what they register).
        static DRAINING: Cell<bool> = const { Cell::new(false) };
    }

    /// Run `drain` on this thread as soon as its IRQL drops below DISPATCH_LEVEL (the
    /// software interrupt a DPC queued at DISPATCH_LEVEL or above requests). Registering
    /// the same `Arc` twice before it ran runs it once. Already below DISPATCH_LEVEL: it
    /// waits for the next drop (callers dispatch directly there).
    pub fn when_below_dispatch(drain: Drain) {
        // The kernel's DPC queue (KeInsertQueueDpc does not allocate): not the drivers'.
        let _host = HostSide::enter();
        DRAINS.with(|d| {
            let mut d = d.borrow_mut();
            if !d.iter().any(|x| Arc::ptr_eq(x, &drain)) {
                d.push(drain);
            }
        })
    }

    /// Drains registered on this thread and not yet run.
    pub fn pending_drains() -> usize {
        DRAINS.with(|d| d.borrow().len())
    }

    /// The IRQL may have dropped: below DISPATCH_LEVEL, run the registered drains (and
    /// what they register in turn) unless an outer call is already doing so.
    fn lowered() {
        if current() >= DISPATCH_LEVEL || DRAINING.with(|d| d.replace(true)) {
            return;
        }
        struct Done;
        impl Drop for Done {
            fn drop(&mut self) {
                DRAINING.with(|d| d.set(false));
            }
        }
        let _done = Done;
        loop {
            let drains = DRAINS.with(|d| core::mem::take(&mut *d.borrow_mut()));
            if drains.is_empty() {
                break;
            }
            for drain in drains {
                // A DPC routine: driver code, its heap use checked again.
                let _guest = GuestSide::enter();
                drain();
            }
        }
    }

    /// What [`CheckingAllocator`] sees of this processor: a copy of its IRQL and innermost
    /// lock, kept in a thread-local that is constant-initialised and has no destructor, so
    /// reading it from the allocator never allocates, never initialises anything lazily and
    /// works on any thread at any time (a thread the model never touched is a processor at
    /// PASSIVE_LEVEL).
    #[derive(Clone, Copy)]
    struct Seen {
        irql: Irql,
        /// The innermost held lock: (level, where taken).
        lock: Option<(Irql, &'static Location<'static>)>,
        /// Nesting depth of code whose heap use is not the drivers' pool use: the model's
        /// own bookkeeping, and the simulated kernel and hypervisor ([`host_side`]).
        host: u32,
    }

    /// A heap operation the checking allocator caught above DISPATCH_LEVEL, reported (as
    /// a panic) by the next model call on this processor: the allocator itself may
    /// neither allocate nor unwind.
    #[derive(Clone, Copy)]
    struct Violation {
        what: &'static str,
        size: usize,
        irql: Irql,
        lock: Option<(Irql, &'static Location<'static>)>,
    }

    std::thread_local! {
        static SEEN: Cell<Seen> = const {
            Cell::new(Seen {
                irql: super::PASSIVE_LEVEL,
                lock: None,
                host: 0,
            })
        };
        static VIOLATION: Cell<Option<Violation>> = const { Cell::new(None) };
    }

    /// Whether a [`CheckingAllocator`] is this binary's global allocator (it has served a
    /// call).
    static CHECKING: AtomicBool = AtomicBool::new(false);

    /// A global allocator for host test binaries that forwards to `A` (the system
    /// allocator by default) and records any allocation, reallocation or freeing made on a
    /// modelled processor above DISPATCH_LEVEL — in an interrupt ([`interrupt`]), under a
    /// [`crate::sync::HighLock`], in the suspend's HIGH_LEVEL phase ([`raised`]) — outside
    /// [`host_side`] code. The next model call on that processor (taking or letting go a
    /// lock, [`check_at_most`], [`current`], the end of the interrupt or raise) panics
    /// with the IRQL and the lock held at the time, like the model's other checks. Install
    /// it with
    /// `#[global_allocator] static A: CheckingAllocator = CheckingAllocator::SYSTEM;`.
    pub struct CheckingAllocator<A = std::alloc::System>(pub A);

    impl CheckingAllocator {
        /// Over the system allocator.
        pub const SYSTEM: Self = Self(std::alloc::System);
    }

    /// The allocator's check: reads two constant thread-locals and the panic count, never
    /// allocates, never panics.
    fn check_heap(what: &'static str, size: usize) {
        if !CHECKING.load(Ordering::Relaxed) {
            CHECKING.store(true, Ordering::Relaxed);
        }
        let Ok(seen) = SEEN.try_with(Cell::get) else {
            return;
        };
        if seen.irql <= DISPATCH_LEVEL || seen.host > 0 || std::thread::panicking() {
            return;
        }
        let _ = VIOLATION.try_with(|v| {
            if v.get().is_none() {
                v.set(Some(Violation {
                    what,
                    size,
                    irql: seen.irql,
                    lock: seen.lock,
                }));
            }
        });
    }

    // SAFETY: every method forwards to `A` with the caller's arguments unchanged, after a
    // check that neither allocates nor unwinds (`check_heap`).
    unsafe impl<A: GlobalAlloc> GlobalAlloc for CheckingAllocator<A> {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            check_heap("allocated", layout.size());
            // SAFETY: the caller's contract, forwarded.
            unsafe { self.0.alloc(layout) }
        }
        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            check_heap("allocated", layout.size());
            // SAFETY: the caller's contract, forwarded.
            unsafe { self.0.alloc_zeroed(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            check_heap("freed", layout.size());
            // SAFETY: the caller's contract, forwarded.
            unsafe { self.0.dealloc(ptr, layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            check_heap("reallocated", new_size);
            // SAFETY: the caller's contract, forwarded.
            unsafe { self.0.realloc(ptr, layout, new_size) }
        }
    }

    /// Whether this test binary's global allocator is a [`CheckingAllocator`] (true once
    /// anything was allocated through it).
    pub fn checking_allocator_installed() -> bool {
        drop(core::hint::black_box(alloc::boxed::Box::new(0u8)));
        CHECKING.load(Ordering::Relaxed)
    }

    /// Run `f` as code that is not the drivers': the simulated kernel's or hypervisor's
    /// internals (a hypercall's handling, the kernel's own bookkeeping behind an `Os`
    /// call), whose heap use is not pool use by the drivers and is not checked.
    pub fn host_side<R>(f: impl FnOnce() -> R) -> R {
        let _host = HostSide::enter();
        f()
    }

    /// While alive, heap use on this thread is not checked ([`host_side`] as a guard,
    /// for a whole simulated `Os` or `Hypercall` method; also the model's own
    /// bookkeeping, which allocates).
    #[must_use]
    pub struct HostSide;
    impl HostSide {
        /// Until the guard drops, this thread runs the simulated kernel's or hypervisor's
        /// own code.
        pub fn enter() -> Self {
            let _ = SEEN.try_with(|s| {
                let mut seen = s.get();
                seen.host += 1;
                s.set(seen);
            });
            HostSide
        }
    }
    impl Drop for HostSide {
        fn drop(&mut self) {
            let _ = SEEN.try_with(|s| {
                let mut seen = s.get();
                seen.host = seen.host.saturating_sub(1);
                s.set(seen);
            });
        }
    }

    /// While alive, heap use on this thread is checked again even inside [`host_side`]
    /// code: the simulated kernel or hypervisor runs driver code (an interrupt, a DPC, a
    /// routine on another processor, the suspend's phases).
    struct GuestSide(u32);
    impl GuestSide {
        fn enter() -> Self {
            GuestSide(
                SEEN.try_with(|s| {
                    let mut seen = s.get();
                    let host = core::mem::replace(&mut seen.host, 0);
                    s.set(seen);
                    host
                })
                .unwrap_or(0),
            )
        }
    }
    impl Drop for GuestSide {
        fn drop(&mut self) {
            let _ = SEEN.try_with(|s| {
                let mut seen = s.get();
                seen.host = self.0;
                s.set(seen);
            });
        }
    }

    /// Copy this processor's IRQL and innermost lock where the allocator reads them.
    fn publish(cpu: &Cpu) {
        let _ = SEEN.try_with(|s| {
            let mut seen = s.get();
            seen.irql = cpu.irql;
            seen.lock = cpu.held.last().map(|h| (h.1, h.3));
            s.set(seen);
        });
    }

    /// Panic with the heap operation the allocator caught on this processor, if any
    /// (`at`: the model call that noticed it).
    fn report_heap(at: core::fmt::Arguments<'_>) {
        if std::thread::panicking() {
            return;
        }
        let Some(v) = VIOLATION.try_with(Cell::take).ok().flatten() else {
            return;
        };
        let holding = v
            .lock
            .map(|(level, site)| format!(" holding the level-{level} lock taken at {site}"))
            .unwrap_or_default();
        panic!(
            "IRQL model: heap memory {} ({} bytes) at IRQL {}{holding} (pool only up to \
             DISPATCH_LEVEL: the kernel bug-checks BAD_POOL_CALLER / IRQL_NOT_LESS_OR_EQUAL); \
             noticed {at}",
            v.what, v.size, v.irql
        );
    }

    /// The model's hooks (the default in host test builds).
    pub static HOOKS: Hooks = Hooks {
        current,
        acquire,
        release,
        check_at_most,
    };

    /// This processor's IRQL.
    pub fn current() -> Irql {
        let _host = HostSide::enter();
        report_heap(format_args!("by a KeGetCurrentIrql"));
        CPU.with(|c| c.borrow().irql)
    }

    /// Spin locks this processor holds.
    pub fn held() -> usize {
        CPU.with(|c| c.borrow().held.len())
    }

    fn acquire(lock: usize, level: Irql, site: &'static Location<'static>) -> Irql {
        let _host = HostSide::enter();
        report_heap(format_args!("taking the lock at {site}"));
        CPU.with(|c| {
            let mut cpu = c.borrow_mut();
            if cpu.irql > level {
                let under = cpu
                    .held
                    .last()
                    .map(|h| format!(" (under the level-{} lock taken at {})", h.1, h.3))
                    .unwrap_or_default();
                panic!(
                    "IRQL model: lock of level {level} taken at {site} at IRQL {}{under} \
                     (the kernel bug-checks IRQL_NOT_GREATER_OR_EQUAL)",
                    cpu.irql
                );
            }
            if let Some(h) = cpu.held.iter().find(|h| h.0 == lock) {
                panic!(
                    "IRQL model: lock taken at {site} is already held on this processor \
                     (taken at {}): it would spin forever",
                    h.3
                );
            }
            let previous = cpu.irql;
            cpu.irql = level;
            cpu.held.push((lock, level, previous, site));
            publish(&cpu);
            previous
        })
    }

    fn release(lock: usize, level: Irql, previous: Irql) {
        let _host = HostSide::enter();
        let site = CPU.with(|c| {
            let mut cpu = c.borrow_mut();
            let site = match cpu.held.pop() {
                Some((l, lv, p, site)) if l == lock && lv == level && p == previous => site,
                Some((_, _, _, site)) => panic!(
                    "IRQL model: lock {lock:#x} released while the lock taken after it at \
                     {site} is still held (guards must go in reverse order)"
                ),
                None => panic!("IRQL model: lock {lock:#x} released but not held here"),
            };
            if cpu.irql != level {
                panic!(
                    "IRQL model: lock {lock:#x} of level {level} released at IRQL {}",
                    cpu.irql
                );
            }
            cpu.irql = previous;
            publish(&cpu);
            site
        });
        report_heap(format_args!("letting go the lock taken at {site}"));
        lowered();
    }

    fn check_at_most(max: Irql, what: &str) {
        let _host = HostSide::enter();
        report_heap(format_args!("before {what}"));
        CPU.with(|c| {
            let cpu = c.borrow();
            if cpu.irql > max {
                // Holding a spin lock implies DISPATCH_LEVEL or more: name the innermost.
                let holding = cpu
                    .held
                    .last()
                    .map(|(_, level, _, site)| {
                        format!(" holding the level-{level} lock taken at {site}")
                    })
                    .unwrap_or_default();
                panic!(
                    "IRQL model: {what} called at IRQL {}{holding} (allowed at most {max})",
                    cpu.irql
                );
            }
        })
    }

    /// Run `f` as an interrupt (or DPC) of level `level` arriving on this processor now:
    /// delivered (`Some`) only when the processor's IRQL is below `level`, else held off
    /// by the hardware (`None`). `f` must leave the IRQL and the held locks as it found
    /// them.
    pub fn interrupt<R>(level: Irql, f: impl FnOnce() -> R) -> Option<R> {
        let (before, held) = CPU.with(|c| {
            let cpu = c.borrow();
            (cpu.irql, cpu.held.len())
        });
        if before >= level {
            return None;
        }
        set_irql(level);
        let r = unwinding(f, || set_irql(before));
        let _host = HostSide::enter();
        CPU.with(|c| {
            let mut cpu = c.borrow_mut();
            if cpu.irql != level || cpu.held.len() != held {
                panic!(
                    "IRQL model: a level-{level} routine returned at IRQL {} holding {} more \
                     lock(s)",
                    cpu.irql,
                    cpu.held.len().saturating_sub(held)
                );
            }
            cpu.irql = before;
            publish(&cpu);
        });
        report_heap(format_args!("when the level-{level} routine returned"));
        lowered();
        Some(r)
    }

    /// Set this processor's IRQL (and what the allocator sees of it).
    fn set_irql(irql: Irql) {
        let _host = HostSide::enter();
        CPU.with(|c| {
            let mut cpu = c.borrow_mut();
            cpu.irql = irql;
            publish(&cpu);
        })
    }

    /// Run `f` (driver code: its heap use is checked, see [`GuestSide`]); if it panics,
    /// run `restore` (put the processor back as the caller found it, so a test that
    /// catches the panic sees a consistent model) and go on unwinding.
    fn unwinding<R>(f: impl FnOnce() -> R, restore: impl FnOnce()) -> R {
        let guest = || {
            let _guest = GuestSide::enter();
            f()
        };
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(guest)) {
            Ok(r) => r,
            Err(e) => {
                restore();
                std::panic::resume_unwind(e)
            }
        }
    }

    /// [`interrupt`] at DISPATCH_LEVEL: a DPC queued to this processor.
    pub fn dpc<R>(f: impl FnOnce() -> R) -> Option<R> {
        interrupt(DISPATCH_LEVEL, f)
    }

    /// Run `f` at `level` on another processor, modelled on this thread: a fresh
    /// processor state for the duration (nothing held), this one's restored afterwards.
    pub fn on_other_processor<R>(level: Irql, f: impl FnOnce() -> R) -> R {
        let saved = swap_cpu(Cpu {
            irql: level,
            held: Vec::new(),
        });
        let mut saved = Some(saved);
        let r = unwinding(f, || {
            if let Some(saved) = saved.take() {
                let _host = HostSide::enter();
                drop(swap_cpu(saved));
            }
        });
        let _host = HostSide::enter();
        let Some(saved) = saved else {
            panic!("IRQL model: processor state lost");
        };
        let left = swap_cpu(saved);
        if left.irql != level || !left.held.is_empty() {
            panic!(
                "IRQL model: a routine run at level {level} on another processor returned at \
                 IRQL {} holding {} lock(s)",
                left.irql,
                left.held.len()
            );
        }
        report_heap(format_args!(
            "when the routine run on another processor returned"
        ));
        lowered();
        r
    }

    /// Make `cpu` this thread's processor state; the previous one is returned.
    fn swap_cpu(cpu: Cpu) -> Cpu {
        let _host = HostSide::enter();
        CPU.with(|c| {
            let old = core::mem::replace(&mut *c.borrow_mut(), cpu);
            publish(&c.borrow());
            old
        })
    }

    /// Run `f` with this processor raised to `level` (`KeRaiseIrql` … `KeLowerIrql`).
    pub fn raised<R>(level: Irql, f: impl FnOnce() -> R) -> R {
        let before = {
            let _host = HostSide::enter();
            CPU.with(|c| {
                let mut cpu = c.borrow_mut();
                if cpu.irql > level {
                    panic!(
                        "IRQL model: raise to {level} from the higher IRQL {}",
                        cpu.irql
                    );
                }
                let before = core::mem::replace(&mut cpu.irql, level);
                publish(&cpu);
                before
            })
        };
        let r = unwinding(f, || set_irql(before));
        let _host = HostSide::enter();
        CPU.with(|c| {
            let mut cpu = c.borrow_mut();
            if cpu.irql != level {
                panic!(
                    "IRQL model: a routine raised to {level} returned at IRQL {}",
                    cpu.irql
                );
            }
            cpu.irql = before;
            publish(&cpu);
        });
        report_heap(format_args!("when the routine raised to {level} returned"));
        lowered();
        r
    }
}

#[cfg(test)]
mod tests {
    use super::model;
    use super::HIGH_LEVEL;
    use crate::sync::{HighLock, SpinLock};
    use std::boxed::Box;
    use std::string::String;
    use std::vec::Vec;

    /// A device interrupt's level.
    const DIRQL: super::Irql = 9;

    /// The panic message of `f`, or "" when it did not panic.
    fn panic_of(f: impl FnOnce()) -> String {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
            .err()
            .and_then(|e| e.downcast::<String>().ok())
            .map(|s| *s)
            .unwrap_or_default()
    }

    #[test]
    fn the_checking_allocator_is_this_binarys_allocator() {
        assert!(model::checking_allocator_installed());
    }

    #[test]
    fn allocating_in_an_interrupt_is_refused_with_its_irql() {
        let message = panic_of(|| {
            model::interrupt(DIRQL, || std::hint::black_box(Box::new(7u64)));
        });
        assert!(
            message.contains("heap memory allocated (8 bytes) at IRQL 9"),
            "{message}"
        );
        assert!(message.contains("BAD_POOL_CALLER"), "{message}");
        // The processor is back where it was, and checks nothing at PASSIVE_LEVEL.
        assert_eq!(model::current(), super::PASSIVE_LEVEL);
        drop(std::hint::black_box(Box::new(1u8)));
        assert_eq!(model::current(), super::PASSIVE_LEVEL);
    }

    #[test]
    fn allocating_under_a_high_lock_is_refused_naming_the_lock() {
        let lock: HighLock<Vec<u32>> = HighLock::new(Vec::new());
        let message = panic_of(|| lock.lock().push(1));
        assert!(message.contains("heap memory allocated"), "{message}");
        assert!(
            message.contains("at IRQL 15 holding the level-15 lock taken at"),
            "{message}"
        );
        assert!(message.contains("irql.rs"), "{message}");
        assert_eq!(model::current(), super::PASSIVE_LEVEL);
        assert_eq!(model::held(), 0);
    }

    #[test]
    fn freeing_at_high_level_is_refused() {
        let boxed = Box::new([0u8; 32]);
        let message = panic_of(|| model::raised(HIGH_LEVEL, || drop(boxed)));
        assert!(
            message.contains("heap memory freed (32 bytes) at IRQL 15"),
            "{message}"
        );
        assert_eq!(model::current(), super::PASSIVE_LEVEL);
    }

    #[test]
    fn allocating_at_dispatch_level_is_allowed() {
        let lock: SpinLock<Vec<u32>> = SpinLock::new(Vec::new());
        for i in 0..100 {
            lock.lock().push(i);
        }
        let r = model::dpc(|| std::hint::black_box(Box::new(3u32)));
        assert_eq!(r.map(|b| *b), Some(3));
        assert_eq!(lock.lock().len(), 100);
    }

    #[test]
    fn the_simulated_kernels_own_heap_use_is_not_checked() {
        let r = model::raised(HIGH_LEVEL, || {
            model::host_side(|| std::hint::black_box(Box::new(5u16)))
        });
        assert_eq!(*r, 5);
        // A thread the model never saw is a processor at PASSIVE_LEVEL.
        let v =
            std::thread::spawn(|| std::hint::black_box(Vec::<u8>::with_capacity(64)).capacity())
                .join()
                .unwrap();
        assert!(v >= 64);
    }
}
