//! Rundown protection (the `EX_RUNDOWN_REF` pattern): kernel callbacks enter and leave a
//! counter around every use of the core; `DllUnload` deregisters the callbacks, closes the
//! counter and waits until no callback is inside before the core is freed. A callback that
//! arrives after the close (another CPU was already on its way in) finds it closed and
//! returns without touching the core.
#![forbid(unsafe_code)]

use core::sync::atomic::{AtomicUsize, Ordering};

/// Bit 0: closed. Bits 1..: callbacks inside.
const CLOSED: usize = 1;
/// One callback inside.
const ONE: usize = 2;

/// A rundown counter.
#[derive(Debug, Default)]
pub struct Rundown {
    state: AtomicUsize,
}

/// Proof of being inside a [`Rundown`]; leaving happens on drop.
#[derive(Debug)]
pub struct RundownGuard<'a>(&'a Rundown);

impl Drop for RundownGuard<'_> {
    fn drop(&mut self) {
        self.0.state.fetch_sub(ONE, Ordering::Release);
    }
}

impl Rundown {
    /// An open counter with nobody inside.
    pub const fn new() -> Self {
        Self {
            state: AtomicUsize::new(0),
        }
    }

    /// Enter (`ExAcquireRundownProtection`): `None` once closed.
    pub fn acquire(&self) -> Option<RundownGuard<'_>> {
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            if s & CLOSED != 0 {
                return None;
            }
            let next = s.checked_add(ONE)?;
            match self
                .state
                .compare_exchange_weak(s, next, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => return Some(RundownGuard(self)),
                Err(now) => s = now,
            }
        }
    }

    /// Close the counter and wait until every holder has left
    /// (`ExWaitForRundownProtectionRelease`). Holders are kernel callbacks that never block,
    /// so the wait spins; `pause` runs between polls (a yield or nothing).
    pub fn wait_for_rundown(&self, pause: &dyn Fn()) {
        self.state.fetch_or(CLOSED, Ordering::AcqRel);
        while self.state.load(Ordering::Acquire) != CLOSED {
            core::hint::spin_loop();
            pause();
        }
    }

    /// Open the counter again (`ExReInitializeRundownProtection`) for a new core; only
    /// valid when nobody is inside (after [`Rundown::wait_for_rundown`] or at start).
    pub fn reinitialize(&self) {
        self.state.store(0, Ordering::Release);
    }

    /// Whether the counter is closed.
    pub fn is_closed(&self) -> bool {
        self.state.load(Ordering::Acquire) & CLOSED != 0
    }

    /// How many holders are inside now.
    pub fn holders(&self) -> usize {
        self.state.load(Ordering::Acquire) / ONE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicU64};
    use std::sync::Arc;

    const LIVE: u64 = 0x600D;
    const FREED: u64 = 0xDEAD;

    #[test]
    fn acquire_release_close() {
        let r = Rundown::new();
        let a = r.acquire().unwrap();
        let b = r.acquire().unwrap();
        assert_eq!(r.holders(), 2);
        drop(a);
        assert_eq!(r.holders(), 1);
        drop(b);
        r.wait_for_rundown(&|| {});
        assert!(r.is_closed());
        assert!(r.acquire().is_none());
        r.reinitialize();
        assert!(r.acquire().is_some());
    }

    /// Callback threads on "other CPUs" keep entering and using a resource while the
    /// unloading thread closes, waits and then frees (poisons) it: no holder may ever see
    /// the poisoned value, and the wait must not return while one is inside.
    #[test]
    fn unload_waits_for_callbacks_running_on_other_threads() {
        let wait_until = |what: &str, f: &dyn Fn() -> bool| {
            let t0 = std::time::Instant::now();
            while !f() {
                assert!(t0.elapsed().as_secs() < 30, "timed out waiting for {what}");
                std::thread::yield_now();
            }
        };
        for _round in 0..20 {
            let r = Arc::new(Rundown::new());
            let resource = Arc::new(AtomicU64::new(LIVE));
            let stop = Arc::new(AtomicBool::new(false));
            let entered = Arc::new(AtomicU64::new(0));
            let refused = Arc::new(AtomicU64::new(0));
            let threads: Vec<_> = (0..4)
                .map(|_| {
                    let (r, resource, stop) = (r.clone(), resource.clone(), stop.clone());
                    let (entered, refused) = (entered.clone(), refused.clone());
                    std::thread::spawn(move || {
                        while !stop.load(Ordering::Relaxed) {
                            match r.acquire() {
                                Some(_g) => {
                                    // A callback using the core: reads it twice with a
                                    // yield between, as a preempted callback would.
                                    assert_eq!(resource.load(Ordering::SeqCst), LIVE);
                                    std::thread::yield_now();
                                    assert_eq!(resource.load(Ordering::SeqCst), LIVE);
                                    entered.fetch_add(1, Ordering::Relaxed);
                                }
                                None => {
                                    refused.fetch_add(1, Ordering::Relaxed);
                                    std::thread::yield_now();
                                }
                            }
                        }
                    })
                })
                .collect();
            wait_until("callbacks", &|| entered.load(Ordering::Relaxed) >= 16);
            // DllUnload: (callbacks deregistered), wait for rundown, free the core.
            r.wait_for_rundown(&std::thread::yield_now);
            assert_eq!(r.holders(), 0);
            resource.store(FREED, Ordering::SeqCst);
            // Callbacks arriving late are refused.
            wait_until("a late callback", &|| refused.load(Ordering::Relaxed) >= 4);
            stop.store(true, Ordering::Relaxed);
            for t in threads {
                t.join().expect("a callback saw the freed core");
            }
        }
    }
}
