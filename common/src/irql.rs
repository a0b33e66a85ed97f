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
#[cfg(any(test, feature = "irql-model"))]
#[allow(clippy::panic)]
pub mod model {
    extern crate std;

    use super::{Hooks, Irql, Location, DISPATCH_LEVEL};
    use alloc::format;
    use alloc::sync::Arc;
    use alloc::vec::Vec;
    use core::cell::{Cell, RefCell};

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
                drain();
            }
        }
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
        CPU.with(|c| c.borrow().irql)
    }

    /// Spin locks this processor holds.
    pub fn held() -> usize {
        CPU.with(|c| c.borrow().held.len())
    }

    fn acquire(lock: usize, level: Irql, site: &'static Location<'static>) -> Irql {
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
            previous
        })
    }

    fn release(lock: usize, level: Irql, previous: Irql) {
        CPU.with(|c| {
            let mut cpu = c.borrow_mut();
            match cpu.held.pop() {
                Some((l, lv, p, _)) if l == lock && lv == level && p == previous => {}
                Some((_, _, _, site)) => panic!(
                    "IRQL model: lock {lock:#x} released while the lock taken after it at \
                     {site} is still held (guards must go in reverse order)"
                ),
                None => panic!("IRQL model: lock {lock:#x} released but not held here"),
            }
            if cpu.irql != level {
                panic!(
                    "IRQL model: lock {lock:#x} of level {level} released at IRQL {}",
                    cpu.irql
                );
            }
            cpu.irql = previous;
        });
        lowered();
    }

    fn check_at_most(max: Irql, what: &str) {
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
        CPU.with(|c| c.borrow_mut().irql = level);
        let r = unwinding(f, || CPU.with(|c| c.borrow_mut().irql = before));
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
        });
        lowered();
        Some(r)
    }

    /// Run `f`; if it panics, run `restore` (put the processor back as the caller found
    /// it, so a test that catches the panic sees a consistent model) and go on unwinding.
    fn unwinding<R>(f: impl FnOnce() -> R, restore: impl FnOnce()) -> R {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
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
        let saved = CPU.with(|c| {
            core::mem::replace(
                &mut *c.borrow_mut(),
                Cpu {
                    irql: level,
                    held: Vec::new(),
                },
            )
        });
        let mut saved = Some(saved);
        let r = unwinding(f, || {
            if let Some(saved) = saved.take() {
                CPU.with(|c| *c.borrow_mut() = saved);
            }
        });
        let Some(saved) = saved else {
            panic!("IRQL model: processor state lost");
        };
        let left = CPU.with(|c| core::mem::replace(&mut *c.borrow_mut(), saved));
        if left.irql != level || !left.held.is_empty() {
            panic!(
                "IRQL model: a routine run at level {level} on another processor returned at \
                 IRQL {} holding {} lock(s)",
                left.irql,
                left.held.len()
            );
        }
        lowered();
        r
    }

    /// Run `f` with this processor raised to `level` (`KeRaiseIrql` … `KeLowerIrql`).
    pub fn raised<R>(level: Irql, f: impl FnOnce() -> R) -> R {
        let before = CPU.with(|c| {
            let mut cpu = c.borrow_mut();
            if cpu.irql > level {
                panic!(
                    "IRQL model: raise to {level} from the higher IRQL {}",
                    cpu.irql
                );
            }
            core::mem::replace(&mut cpu.irql, level)
        });
        let r = unwinding(f, || CPU.with(|c| c.borrow_mut().irql = before));
        CPU.with(|c| {
            let mut cpu = c.borrow_mut();
            if cpu.irql != level {
                panic!(
                    "IRQL model: a routine raised to {level} returned at IRQL {}",
                    cpu.irql
                );
            }
            cpu.irql = before;
        });
        lowered();
        r
    }
}
