//! Spin locks for state shared between code running at raised IRQL (interface methods,
//! DPCs, upcalls, the suspend's early phase). Each lock raises the processor to its
//! level *before* taking it and restores the previous IRQL *after* letting it go, through
//! the hooks of [`crate::irql`]; the level is part of the type, so every use site takes
//! the lock the same way:
//!
//! * [`SpinLock`] — DISPATCH_LEVEL, like `KeAcquireSpinLock`: for state touched by threads
//!   and DPCs. Never taken above DISPATCH_LEVEL (an ISR, the suspend's HIGH_LEVEL phase);
//!   pool allocation is allowed under it, waiting is not.
//! * [`PassiveLock`] — PASSIVE_LEVEL, no raise (upstream uses a mutex): for state only
//!   threads touch, whose holder may wait or call the registry.
//! * [`HighLock`] — HIGH_LEVEL, like upstream's `HIGH_LOCK`: for state an interrupt
//!   service routine or HIGH_LEVEL code touches. No allocation, freeing or waiting under it.
//!
//! Above a lock's level only [`Lock::try_lock`] may be used (it never spins, so it cannot
//! wait for a holder it preempted): the event-channel ISR only queues a DPC, and the
//! suspend's HIGH_LEVEL phase, where every other processor is captured at DISPATCH_LEVEL,
//! finds every [`SpinLock`] free. Host tests check all of this, heap use above
//! DISPATCH_LEVEL included, with the model of [`crate::irql`].
//!
//! Interior mutability behind an atomic flag is the only `unsafe` here.

use core::cell::UnsafeCell;
use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};
use core::panic::Location;
use core::sync::atomic::{AtomicBool, Ordering};

use crate::irql::{self, Irql, DISPATCH_LEVEL, HIGH_LEVEL, PASSIVE_LEVEL};

/// The IRQL a kind of lock raises to.
pub trait Level {
    /// The level.
    const IRQL: Irql;
}

/// PASSIVE_LEVEL locks.
pub struct Passive;
impl Level for Passive {
    const IRQL: Irql = PASSIVE_LEVEL;
}

/// DISPATCH_LEVEL locks.
pub struct Dispatch;
impl Level for Dispatch {
    const IRQL: Irql = DISPATCH_LEVEL;
}

/// HIGH_LEVEL locks.
pub struct High;
impl Level for High {
    const IRQL: Irql = HIGH_LEVEL;
}

/// A lock protecting a `T`, taken at IRQL `L`; waiters spin at that IRQL.
///
/// # Invariants
/// `value` is only accessed through a [`Guard`], and at most one guard exists at a
/// time (`locked` is true exactly while a guard is alive). While a guard is alive the
/// processor that took it runs at IRQL ≥ `L::IRQL` (given installed kernel hooks).
pub struct Lock<T, L: Level> {
    locked: AtomicBool,
    value: UnsafeCell<T>,
    level: PhantomData<L>,
}

/// A lock for state only threads touch, at PASSIVE_LEVEL (upstream uses a mutex there):
/// it does not raise, so the holder may wait or use the registry; never taken from a DPC,
/// an ISR or under another lock that raised.
pub type PassiveLock<T> = Lock<T, Passive>;
/// A DISPATCH_LEVEL spin lock (`KSPIN_LOCK`).
pub type SpinLock<T> = Lock<T, Dispatch>;
/// A HIGH_LEVEL spin lock (upstream `HIGH_LOCK`).
pub type HighLock<T> = Lock<T, High>;
/// Exclusive access to the value of a [`PassiveLock`].
pub type PassiveGuard<'a, T> = Guard<'a, T, Passive>;
/// Exclusive access to the value of a [`SpinLock`].
pub type SpinGuard<'a, T> = Guard<'a, T, Dispatch>;
/// Exclusive access to the value of a [`HighLock`].
pub type HighGuard<'a, T> = Guard<'a, T, High>;

// SAFETY: the lock serialises every access to `value`, so sharing the lock between threads
// only ever hands `&mut T` to one thread at a time; `T: Send` lets that thread use it.
unsafe impl<T: Send, L: Level> Sync for Lock<T, L> {}
// SAFETY: moving the lock moves the `T` it owns; `T: Send` allows that.
unsafe impl<T: Send, L: Level> Send for Lock<T, L> {}

impl<T, L: Level> Lock<T, L> {
    /// A new, unlocked lock around `value`.
    pub const fn new(value: T) -> Self {
        Self {
            locked: AtomicBool::new(false),
            value: UnsafeCell::new(value),
            level: PhantomData,
        }
    }

    fn address(&self) -> usize {
        self as *const Self as usize
    }

    /// Raise to the lock's IRQL, spin until the lock is free, then hold it until the
    /// guard drops (which lets it go, then restores the IRQL).
    #[track_caller]
    pub fn lock(&self) -> Guard<'_, T, L> {
        let level = L::IRQL;
        let previous = irql::acquire(self.address(), level, Location::caller());
        loop {
            if self.take() {
                return Guard {
                    lock: self,
                    level,
                    previous,
                };
            }
            while self.locked.load(Ordering::Relaxed) {
                core::hint::spin_loop();
            }
        }
    }

    /// Take the lock if it is free right now (raising to its IRQL only while held).
    ///
    /// Unlike [`Lock::lock`] this may be called above the lock's IRQL (e.g. from an ISR):
    /// it never spins, so no code it preempted can be kept waiting on this processor.
    /// The guard then holds the lock at the caller's IRQL.
    #[track_caller]
    pub fn try_lock(&self) -> Option<Guard<'_, T, L>> {
        if self.locked.load(Ordering::Relaxed) {
            return None;
        }
        let level = irql::current().max(L::IRQL);
        let previous = irql::acquire(self.address(), level, Location::caller());
        if self.take() {
            Some(Guard {
                lock: self,
                level,
                previous,
            })
        } else {
            irql::release(self.address(), level, previous);
            None
        }
    }

    fn take(&self) -> bool {
        self.locked
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// The value, through exclusive access to the lock (no locking needed).
    pub fn get_mut(&mut self) -> &mut T {
        self.value.get_mut()
    }
}

impl<T, L: Level> Lock<alloc::vec::Vec<T>, L> {
    /// Push `value` without allocating while the lock is held: when the vector is full,
    /// a bigger one is allocated with the lock let go, the elements are moved into it
    /// under the lock (no allocation: it has room) and the old storage is freed with the
    /// lock let go again. For [`HighLock`]s, whose holders must not allocate; the caller
    /// itself must be at DISPATCH_LEVEL or below.
    #[track_caller]
    pub fn push_growing_outside(
        &self,
        value: T,
    ) -> Result<(), alloc::collections::TryReserveError> {
        loop {
            let capacity = {
                let mut v = self.lock();
                if v.len() < v.capacity() {
                    v.push(value);
                    return Ok(());
                }
                v.capacity()
            };
            let mut bigger = alloc::vec::Vec::new();
            bigger.try_reserve_exact(capacity.saturating_mul(2).max(4))?;
            let old = {
                let mut v = self.lock();
                if v.len() < bigger.capacity() {
                    bigger.extend(v.drain(..));
                    core::mem::replace(&mut *v, bigger)
                } else {
                    // Grown further by someone else meanwhile: try again.
                    bigger
                }
            };
            drop(old);
        }
    }
}

impl<T: Default, L: Level> Default for Lock<T, L> {
    fn default() -> Self {
        Self::new(T::default())
    }
}

/// Exclusive access to the value of a [`Lock`]; holds the processor at the lock's IRQL.
pub struct Guard<'a, T, L: Level> {
    lock: &'a Lock<T, L>,
    /// The IRQL the lock is held at (`L::IRQL`, or more for [`Lock::try_lock`]).
    level: Irql,
    /// The IRQL to restore once the lock is let go.
    previous: Irql,
}

impl<T, L: Level> Deref for Guard<'_, T, L> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: this guard is the only one alive (type invariant), so no `&mut T` exists.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T, L: Level> DerefMut for Guard<'_, T, L> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: this guard is the only one alive (type invariant) and is borrowed mutably.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T, L: Level> Drop for Guard<'_, T, L> {
    fn drop(&mut self) {
        // Let go first, then lower: lowering first would let a DPC or interrupt on this
        // processor spin on a lock its own processor still holds.
        self.lock.locked.store(false, Ordering::Release);
        irql::release(self.lock.address(), self.level, self.previous);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_threads_never_lose_an_increment() {
        let lock = std::sync::Arc::new(SpinLock::new(0u64));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let lock = lock.clone();
                std::thread::spawn(move || {
                    for _ in 0..50_000 {
                        *lock.lock() += 1;
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(*lock.lock(), 100_000);
    }

    use crate::irql::{model, APC_LEVEL, PASSIVE_LEVEL};

    /// The deadlock this module exists to prevent: a thread holds a lock at PASSIVE_LEVEL,
    /// a DPC on the same processor wants it. With a lock that does not raise, the DPC
    /// preempts the holder and spins forever (the model reports the self-deadlock instead
    /// of hanging); with the raise, the processor is at DISPATCH_LEVEL while the lock is
    /// held, so the DPC waits until the guard is gone and then finds the lock free.
    #[test]
    fn a_dpc_cannot_preempt_a_holder_on_its_processor() {
        let lock = SpinLock::new(0u32);
        let guard = lock.lock();
        assert_eq!(model::current(), DISPATCH_LEVEL);
        let ran = model::dpc(|| *lock.lock() += 1);
        assert_eq!(ran, None, "the DPC must be held off while the lock is held");
        drop(guard);
        assert_eq!(model::current(), PASSIVE_LEVEL);
        assert_eq!(model::dpc(|| *lock.lock() += 1), Some(()));
        assert_eq!(*lock.lock(), 1);
    }

    /// The same for an interrupt service routine and a HIGH_LEVEL lock: a DISPATCH_LEVEL
    /// lock would not hold the ISR off, the HIGH_LEVEL one does.
    #[test]
    fn an_isr_cannot_preempt_a_high_lock_holder() {
        const DIRQL: Irql = 9;
        let lock = HighLock::new(0u32);
        let spin = SpinLock::new(());
        {
            let _g = lock.lock();
            assert_eq!(model::current(), HIGH_LEVEL);
            assert_eq!(model::interrupt(DIRQL, || *lock.lock() += 1), None);
        }
        {
            let _s = spin.lock();
            // DISPATCH_LEVEL does not mask device interrupts: the ISR runs, and takes the
            // HIGH_LEVEL lock (free) from DIRQL.
            assert_eq!(model::interrupt(DIRQL, || *lock.lock() += 1), Some(()));
        }
        assert_eq!(*lock.lock(), 1);
    }

    /// The old lock semantics (never raise), as a level of its own.
    struct NoRaise;
    impl Level for NoRaise {
        const IRQL: Irql = PASSIVE_LEVEL;
    }

    /// Without the raise the DPC really does preempt the holder and spins on the lock it
    /// holds: the model turns the endless spin into a panic (a lock of a level below the
    /// DPC's, taken from it).
    #[test]
    fn without_the_raise_a_dpc_spins_on_its_own_processors_lock() {
        let lock: Lock<u32, NoRaise> = Lock::new(0);
        let _held = lock.lock();
        assert_eq!(model::current(), PASSIVE_LEVEL);
        let spun = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            model::dpc(|| *lock.lock() += 1)
        }));
        let message = spun
            .err()
            .and_then(|e| e.downcast::<String>().ok())
            .map(|s| *s)
            .unwrap_or_default();
        assert!(
            message.contains("lock of level 0 taken at") && message.contains("at IRQL 2"),
            "{message}"
        );
    }

    #[test]
    fn guards_restore_the_irql_they_found_innermost_first() {
        let a = SpinLock::new(());
        let b = HighLock::new(());
        let ga = a.lock();
        assert_eq!(model::current(), DISPATCH_LEVEL);
        let gb = b.lock();
        assert_eq!(model::current(), HIGH_LEVEL);
        assert_eq!(model::held(), 2);
        drop(gb);
        assert_eq!(model::current(), DISPATCH_LEVEL);
        drop(ga);
        assert_eq!(model::current(), PASSIVE_LEVEL);
        assert_eq!(model::held(), 0);
    }

    #[test]
    fn dropping_guards_out_of_order_is_refused() {
        let a = SpinLock::new(());
        let b = HighLock::new(());
        let ga = a.lock();
        let gb = b.lock();
        let out_of_order = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(ga)));
        assert!(out_of_order.is_err());
        // The model's bookkeeping is now off for this thread; leave both locks behind.
        core::mem::forget(gb);
    }

    #[test]
    fn a_dispatch_lock_is_refused_above_dispatch_level() {
        let lock = SpinLock::new(());
        let high = HighLock::new(());
        let h = high.lock();
        let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(lock.lock())));
        // Free the panic's message at PASSIVE_LEVEL (heap use at HIGH_LEVEL is refused).
        drop(h);
        assert!(refused.is_err());
    }

    #[test]
    fn try_lock_works_above_the_lock_level_and_restores() {
        let lock = SpinLock::new(5);
        let high = HighLock::new(());
        let h = high.lock();
        {
            let g = lock.try_lock().expect("free");
            assert_eq!(*g, 5);
            assert_eq!(model::current(), HIGH_LEVEL);
        }
        assert_eq!(model::current(), HIGH_LEVEL);
        drop(h);
        assert_eq!(model::current(), PASSIVE_LEVEL);
    }

    #[test]
    fn a_passive_lock_refuses_raised_callers_and_allows_blocking_calls() {
        let lock = PassiveLock::new(());
        {
            let _g = lock.lock();
            crate::irql::check_at_most(PASSIVE_LEVEL, "ZwQueryValueKey");
        }
        let spin = SpinLock::new(());
        let _s = spin.lock();
        let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(lock.lock())));
        assert!(refused.is_err());
    }

    #[test]
    fn blocking_calls_are_refused_under_a_spin_lock() {
        let lock = SpinLock::new(());
        crate::irql::check_at_most(APC_LEVEL, "KeWaitForSingleObject");
        let _g = lock.lock();
        crate::irql::check_at_most(DISPATCH_LEVEL, "ExAllocatePoolWithTag");
        let refused = std::panic::catch_unwind(|| {
            crate::irql::check_at_most(APC_LEVEL, "KeWaitForSingleObject")
        });
        let message = refused
            .err()
            .and_then(|e| e.downcast::<String>().ok())
            .map(|s| *s)
            .unwrap_or_default();
        assert!(message.contains("KeWaitForSingleObject"), "{message}");
        assert!(message.contains("holding the level-2 lock"), "{message}");
    }

    #[test]
    fn another_processor_starts_fresh_and_leaves_this_one_alone() {
        let lock = SpinLock::new(());
        let _g = lock.lock();
        let inner = model::on_other_processor(DISPATCH_LEVEL, || {
            let other = SpinLock::new(());
            let _o = other.lock();
            (model::current(), model::held())
        });
        assert_eq!(inner, (DISPATCH_LEVEL, 1));
        assert_eq!((model::current(), model::held()), (DISPATCH_LEVEL, 1));
    }

    #[test]
    fn push_growing_outside_keeps_order_and_never_grows_under_the_lock() {
        let lock: HighLock<Vec<u32>> = HighLock::new(Vec::new());
        for i in 0..100 {
            lock.push_growing_outside(i).unwrap();
            let v = lock.lock();
            assert!(v.len() <= v.capacity());
        }
        let expected = (0..100).collect::<Vec<_>>();
        assert_eq!(*lock.lock(), expected);
        assert_eq!(model::current(), PASSIVE_LEVEL);
    }

    #[test]
    fn try_lock_fails_while_held() {
        let lock = SpinLock::new(1);
        let g = lock.lock();
        assert!(lock.try_lock().is_none());
        drop(g);
        assert_eq!(*lock.try_lock().unwrap(), 1);
    }
}
