//! CACHE (spec §5.14): a slab allocator of fixed-size objects with lazy construction,
//! per-CPU magazines, a reservation kept filled and an optional cap.
//!
//! The core only deals in object *addresses*: slab memory comes from a [`SlabMemory`]
//! edge and the caller's constructor, destructor and lock come through [`CacheClient`],
//! so this module needs no `unsafe`.
//!
//! Decisions: the last slab created under a cap is cut short so that the cap is exact
//! (Get succeeds `Cap` times, then returns `None`); Put of an address that is not an
//! allocated object of this cache is refused with a log-worthy error instead of
//! corrupting the slabs; Destroy with objects still handed out is refused (the original
//! BUGs) and leaves the cache usable. "Count" in the monitor rules is the number of
//! *free* object slots: Fill grows until at least `Reservation` are free, Spill frees empty
//! slabs down to `max(Reservation, Free / 2)` free slots, so idle spare capacity decays by
//! half every monitor period but never below the reservation.
#![forbid(unsafe_code)]

use alloc::vec::Vec;
use common::sync::SpinLock;
use xen_include::status::{NtStatus, STATUS_INVALID_PARAMETER, STATUS_NO_MEMORY};

/// Page size used to size slabs.
pub const PAGE_SIZE: usize = 4096;
/// Objects held by each per-CPU magazine.
pub const MAGAZINE_SLOTS: usize = 6;
/// Interval of the monitor thread, in seconds.
pub const MONITOR_PERIOD_SECONDS: u32 = 5;

/// The caller's side of a cache: constructor, destructor and lock (interface callbacks).
pub trait CacheClient: Send + Sync {
    /// Construct the object at `object` (called the first time it is handed out).
    fn construct(&self, object: usize) -> Result<(), NtStatus>;
    /// Destruct the object at `object` (called when its slab is freed).
    fn destruct(&self, object: usize);
    /// Take the caller's lock protecting the cache.
    fn acquire_lock(&self);
    /// Drop the caller's lock.
    fn release_lock(&self);
}

/// Where slab memory comes from (non-paged pool in the kernel).
pub trait SlabMemory: Send + Sync {
    /// Allocate `bytes` (a multiple of [`PAGE_SIZE`]) of writable memory; its address.
    fn allocate(&self, bytes: usize) -> Option<usize>;
    /// Free memory obtained from [`SlabMemory::allocate`] with the same size.
    fn free(&self, address: usize, bytes: usize);
}

/// Why a cache operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheError {
    /// Size 0, or `Reservation > Cap` with a cap.
    InvalidParameter,
    /// Slab memory or bookkeeping could not be allocated.
    NoMemory,
    /// Put of an address that is not an allocated object of this cache.
    NotAnObject(usize),
    /// Destroy with this many objects still handed out.
    StillAllocated(u32),
}

impl CacheError {
    /// The NTSTATUS reported to C callers.
    pub fn status(self) -> NtStatus {
        match self {
            CacheError::InvalidParameter | CacheError::NotAnObject(_) => STATUS_INVALID_PARAMETER,
            CacheError::NoMemory => STATUS_NO_MEMORY,
            CacheError::StillAllocated(_) => STATUS_INVALID_PARAMETER,
        }
    }
}

/// Creation parameters (`CacheCreate`; V1 has no cap).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheParams {
    /// Requested object size in bytes (rounded up to pointer size).
    pub size: u32,
    /// Objects kept available (pre-filled at creation, refilled by the monitor).
    pub reservation: u32,
    /// Maximum number of objects (0 = unlimited).
    pub cap: u32,
}

/// One slab: a block of objects with "constructed" and "allocated" bitmaps.
struct Slab {
    base: usize,
    bytes: usize,
    objects: u32,
    constructed: Vec<u64>,
    allocated: Vec<u64>,
    in_use: u32,
}

fn bit(map: &[u64], i: u32) -> bool {
    map.get((i / 64) as usize)
        .is_some_and(|w| w & (1u64 << (i % 64)) != 0)
}

fn set_bit(map: &mut [u64], i: u32, value: bool) {
    if let Some(w) = map.get_mut((i / 64) as usize) {
        if value {
            *w |= 1u64 << (i % 64);
        } else {
            *w &= !(1u64 << (i % 64));
        }
    }
}

impl Slab {
    fn first_free(&self) -> Option<u32> {
        for (wi, w) in self.allocated.iter().enumerate() {
            if *w != u64::MAX {
                let i = wi as u32 * 64 + (!*w).trailing_zeros();
                return (i < self.objects).then_some(i);
            }
        }
        None
    }
}

#[derive(Default)]
struct Slabs {
    list: Vec<Slab>,
    /// Object slots over all slabs.
    capacity: u32,
    /// Objects allocated from slabs (handed out or sitting in a magazine).
    allocated: u32,
}

#[derive(Default, Clone, Copy)]
struct Magazine {
    slots: [usize; MAGAZINE_SLOTS],
    count: usize,
}

/// A cache of objects.
///
/// # Invariants
/// Every slab's `in_use` equals the number of set bits of its `allocated` map; the sum of
/// `in_use` is `Slabs::allocated`; the sum of `objects` is `Slabs::capacity`, which never
/// exceeds a non-zero cap; every address in a magazine is an allocated object.
pub struct Cache<C: CacheClient, M: SlabMemory> {
    object_size: usize,
    objects_per_slab: u32,
    reservation: u32,
    cap: u32,
    client: C,
    memory: M,
    slabs: SpinLock<Slabs>,
    magazines: Vec<SpinLock<Magazine>>,
}

impl<C: CacheClient, M: SlabMemory> Cache<C, M> {
    /// Create a cache with one magazine per processor and pre-fill the reservation.
    pub fn new(
        params: CacheParams,
        processors: u32,
        client: C,
        memory: M,
    ) -> Result<Self, CacheError> {
        if params.size == 0 || (params.cap != 0 && params.reservation > params.cap) {
            return Err(CacheError::InvalidParameter);
        }
        let object_size = (params.size as usize)
            .checked_next_multiple_of(core::mem::size_of::<usize>())
            .ok_or(CacheError::InvalidParameter)?;
        let slab_bytes = object_size
            .checked_next_multiple_of(PAGE_SIZE)
            .ok_or(CacheError::InvalidParameter)?;
        let objects_per_slab =
            u32::try_from(slab_bytes / object_size).map_err(|_| CacheError::InvalidParameter)?;
        let mut magazines = Vec::new();
        magazines
            .try_reserve_exact(processors.max(1) as usize)
            .map_err(|_| CacheError::NoMemory)?;
        for _ in 0..processors.max(1) {
            magazines.push(SpinLock::new(Magazine::default()));
        }
        let cache = Self {
            object_size,
            objects_per_slab,
            reservation: params.reservation,
            cap: params.cap,
            client,
            memory,
            slabs: SpinLock::new(Slabs::default()),
            magazines,
        };
        cache.fill()?;
        Ok(cache)
    }

    /// Object size after rounding.
    pub fn object_size(&self) -> usize {
        self.object_size
    }

    /// Object slots per full slab.
    pub fn objects_per_slab(&self) -> u32 {
        self.objects_per_slab
    }

    /// `(slabs, capacity, allocated)` right now.
    pub fn stats(&self) -> (usize, u32, u32) {
        let s = self.slabs.lock();
        (s.list.len(), s.capacity, s.allocated)
    }

    /// Objects currently parked in magazines.
    pub fn magazine_objects(&self) -> usize {
        self.magazines.iter().map(|m| m.lock().count).sum()
    }

    /// The caller's client.
    pub fn client(&self) -> &C {
        &self.client
    }

    fn magazine(&self, cpu: u32) -> Option<&SpinLock<Magazine>> {
        self.magazines.get(cpu as usize)
    }

    /// Add one slab (bounded by the cap). `Ok(false)` when the cap is reached.
    fn grow(&self, slabs: &mut Slabs) -> Result<bool, CacheError> {
        let mut objects = self.objects_per_slab;
        if self.cap != 0 {
            objects = objects.min(self.cap.saturating_sub(slabs.capacity));
            if objects == 0 {
                return Ok(false);
            }
        }
        let bytes = (objects as usize * self.object_size).next_multiple_of(PAGE_SIZE);
        let words = (objects as usize).div_ceil(64);
        let mut constructed = Vec::new();
        let mut allocated = Vec::new();
        constructed
            .try_reserve_exact(words)
            .map_err(|_| CacheError::NoMemory)?;
        allocated
            .try_reserve_exact(words)
            .map_err(|_| CacheError::NoMemory)?;
        slabs
            .list
            .try_reserve(1)
            .map_err(|_| CacheError::NoMemory)?;
        constructed.resize(words, 0);
        allocated.resize(words, 0);
        let base = self.memory.allocate(bytes).ok_or(CacheError::NoMemory)?;
        slabs.list.push(Slab {
            base,
            bytes,
            objects,
            constructed,
            allocated,
            in_use: 0,
        });
        slabs.capacity += objects;
        Ok(true)
    }

    fn free_slab(&self, slabs: &mut Slabs, index: usize) {
        if index >= slabs.list.len() {
            return;
        }
        let slab = slabs.list.swap_remove(index);
        for i in 0..slab.objects {
            if bit(&slab.constructed, i) {
                self.client
                    .destruct(slab.base + i as usize * self.object_size);
            }
        }
        slabs.capacity -= slab.objects;
        self.memory.free(slab.base, slab.bytes);
    }

    /// Take an object from the most occupied slab that has room, growing if needed.
    fn slab_get(&self, slabs: &mut Slabs) -> Option<usize> {
        let mut best: Option<usize> = None;
        for (i, s) in slabs.list.iter().enumerate() {
            if s.in_use < s.objects
                && best
                    .and_then(|b| slabs.list.get(b))
                    .is_none_or(|b| s.in_use > b.in_use)
            {
                best = Some(i);
            }
        }
        let index = match best {
            Some(i) => i,
            None => {
                if !self.grow(slabs).ok()? {
                    return None;
                }
                slabs.list.len().checked_sub(1)?
            }
        };
        let slab = slabs.list.get_mut(index)?;
        let i = slab.first_free()?;
        let object = slab.base + i as usize * self.object_size;
        if !bit(&slab.constructed, i) {
            self.client.construct(object).ok()?;
            set_bit(&mut slab.constructed, i, true);
        }
        set_bit(&mut slab.allocated, i, true);
        slab.in_use += 1;
        slabs.allocated += 1;
        Some(object)
    }

    fn slab_put(&self, slabs: &mut Slabs, object: usize) -> Result<(), CacheError> {
        let size = self.object_size;
        let slab = slabs
            .list
            .iter_mut()
            .find(|s| object >= s.base && object < s.base + s.objects as usize * size)
            .ok_or(CacheError::NotAnObject(object))?;
        let offset = object - slab.base;
        let i = (offset / size) as u32;
        if !offset.is_multiple_of(size) || !bit(&slab.allocated, i) {
            return Err(CacheError::NotAnObject(object));
        }
        set_bit(&mut slab.allocated, i, false);
        slab.in_use -= 1;
        slabs.allocated -= 1;
        Ok(())
    }

    fn with_caller_lock<R>(&self, locked: bool, f: impl FnOnce() -> R) -> R {
        if !locked {
            self.client.acquire_lock();
        }
        let r = f();
        if !locked {
            self.client.release_lock();
        }
        r
    }

    /// `CacheGet` on processor `cpu`; `locked` = the caller already holds its lock.
    /// `None` when the cap is reached, memory runs out or the constructor fails.
    pub fn get(&self, cpu: u32, locked: bool) -> Option<usize> {
        if let Some(m) = self.magazine(cpu) {
            let mut m = m.lock();
            if m.count > 0 {
                m.count -= 1;
                return m.slots.get(m.count).copied();
            }
        }
        self.with_caller_lock(locked, || self.slab_get(&mut self.slabs.lock()))
    }

    /// `CachePut` on processor `cpu`.
    pub fn put(&self, cpu: u32, object: usize, locked: bool) -> Result<(), CacheError> {
        // Validate before parking it in a magazine: a foreign address must never be
        // handed out again.
        {
            let slabs = self.slabs.lock();
            let size = self.object_size;
            let ok = slabs.list.iter().any(|s| {
                object >= s.base
                    && object < s.base + s.objects as usize * size
                    && (object - s.base).is_multiple_of(size)
                    && bit(&s.allocated, ((object - s.base) / size) as u32)
            });
            if !ok {
                return Err(CacheError::NotAnObject(object));
            }
        }
        if let Some(m) = self.magazine(cpu) {
            let mut m = m.lock();
            if m.slots.get(..m.count).is_some_and(|s| s.contains(&object)) {
                return Err(CacheError::NotAnObject(object));
            }
            if m.count < MAGAZINE_SLOTS {
                let c = m.count;
                if let Some(slot) = m.slots.get_mut(c) {
                    *slot = object;
                    m.count += 1;
                    return Ok(());
                }
            }
        }
        self.with_caller_lock(locked, || self.slab_put(&mut self.slabs.lock(), object))
    }

    /// Grow until at least `Reservation` object slots are free (bounded by the cap).
    pub fn fill(&self) -> Result<(), CacheError> {
        let mut slabs = self.slabs.lock();
        while slabs.capacity - slabs.allocated < self.reservation {
            if !self.grow(&mut slabs)? {
                break;
            }
        }
        Ok(())
    }

    /// Free empty slabs while at least `max(Reservation, Free / 2)` slots stay free.
    /// Returns the number of slabs freed.
    pub fn spill(&self) -> usize {
        let mut slabs = self.slabs.lock();
        let free = slabs.capacity - slabs.allocated;
        let floor = self.reservation.max(free / 2);
        let mut freed = 0;
        while let Some(i) = slabs
            .list
            .iter()
            .position(|s| s.in_use == 0 && slabs.capacity - slabs.allocated - s.objects >= floor)
        {
            self.free_slab(&mut slabs, i);
            freed += 1;
        }
        freed
    }

    /// One pass of the monitor thread: fill below the reservation, else spill.
    pub fn monitor(&self) -> Result<(), CacheError> {
        let below = {
            let s = self.slabs.lock();
            s.capacity - s.allocated < self.reservation
        };
        if below {
            self.fill()
        } else {
            self.spill();
            Ok(())
        }
    }

    /// Return every magazine's objects to their slabs.
    pub fn flush_magazines(&self) {
        for m in &self.magazines {
            let mut m = m.lock();
            let mut slabs = self.slabs.lock();
            while m.count > 0 {
                m.count -= 1;
                if let Some(&object) = m.slots.get(m.count) {
                    let _ = self.slab_put(&mut slabs, object);
                }
            }
        }
    }

    /// `CacheDestroy`: flush the magazines and free every slab (destructing constructed
    /// objects). Refused while objects are still handed out.
    pub fn destroy(&self) -> Result<(), CacheError> {
        self.flush_magazines();
        let mut slabs = self.slabs.lock();
        if slabs.allocated != 0 {
            return Err(CacheError::StillAllocated(slabs.allocated));
        }
        while !slabs.list.is_empty() {
            let last = slabs.list.len() - 1;
            self.free_slab(&mut slabs, last);
        }
        Ok(())
    }
}

impl<C: CacheClient, M: SlabMemory> Drop for Cache<C, M> {
    fn drop(&mut self) {
        // Whatever is left (only after a refused destroy) goes back to the memory edge;
        // destructors run for constructed objects as in a normal slab free.
        let slabs = self.slabs.get_mut();
        let list = core::mem::take(&mut slabs.list);
        for slab in list {
            for i in 0..slab.objects {
                if bit(&slab.constructed, i) {
                    self.client
                        .destruct(slab.base + i as usize * self.object_size);
                }
            }
            self.memory.free(slab.base, slab.bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
    use std::sync::Mutex;

    #[derive(Default)]
    struct Client {
        ctors: AtomicU32,
        dtors: AtomicU32,
        locks: AtomicU32,
        unlocks: AtomicU32,
        fail_ctor_at: AtomicU32,
        constructed: Mutex<HashSet<usize>>,
    }
    impl CacheClient for Client {
        fn construct(&self, o: usize) -> Result<(), NtStatus> {
            let n = self.ctors.fetch_add(1, Ordering::SeqCst) + 1;
            if n == self.fail_ctor_at.load(Ordering::SeqCst) {
                return Err(STATUS_NO_MEMORY);
            }
            assert!(self.constructed.lock().unwrap().insert(o), "double ctor");
            Ok(())
        }
        fn destruct(&self, o: usize) {
            self.dtors.fetch_add(1, Ordering::SeqCst);
            assert!(
                self.constructed.lock().unwrap().remove(&o),
                "dtor of unconstructed"
            );
        }
        fn acquire_lock(&self) {
            self.locks.fetch_add(1, Ordering::SeqCst);
        }
        fn release_lock(&self) {
            self.unlocks.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[derive(Default)]
    struct Mem {
        live: AtomicUsize,
        fail: std::sync::atomic::AtomicBool,
        blocks: Mutex<Vec<(usize, usize)>>,
    }
    impl SlabMemory for Mem {
        fn allocate(&self, bytes: usize) -> Option<usize> {
            if self.fail.load(Ordering::SeqCst) {
                return None;
            }
            assert_eq!(bytes % PAGE_SIZE, 0);
            let v = vec![0u8; bytes].leak();
            let a = v.as_mut_ptr() as usize;
            self.blocks.lock().unwrap().push((a, bytes));
            self.live.fetch_add(1, Ordering::SeqCst);
            Some(a)
        }
        fn free(&self, a: usize, bytes: usize) {
            let mut b = self.blocks.lock().unwrap();
            let i = b
                .iter()
                .position(|x| *x == (a, bytes))
                .expect("known block");
            b.swap_remove(i);
            self.live.fetch_sub(1, Ordering::SeqCst);
        }
    }

    fn cache(size: u32, reservation: u32, cap: u32) -> Cache<Client, Mem> {
        Cache::new(
            CacheParams {
                size,
                reservation,
                cap,
            },
            2,
            Client::default(),
            Mem::default(),
        )
        .unwrap()
    }

    #[test]
    fn parameters_are_checked() {
        let p = |size, reservation, cap| CacheParams {
            size,
            reservation,
            cap,
        };
        let mk = |params| Cache::new(params, 1, Client::default(), Mem::default()).err();
        assert_eq!(mk(p(0, 0, 0)), Some(CacheError::InvalidParameter));
        assert_eq!(mk(p(8, 11, 10)), Some(CacheError::InvalidParameter));
        assert_eq!(mk(p(8, 10, 10)), None);
        assert_eq!(mk(p(8, 1000, 0)), None);
        let c = cache(13, 0, 0);
        assert_eq!(c.object_size(), 16);
        assert_eq!(c.objects_per_slab(), 256);
        assert_eq!(c.stats(), (0, 0, 0));
        let c = cache(5000, 0, 0);
        assert_eq!(c.object_size(), 5000);
        assert_eq!(c.objects_per_slab(), 1);
    }

    #[test]
    fn reservation_prefills_slabs_without_constructing() {
        let c = cache(64, 100, 0);
        // 64 objects per page → 2 slabs cover 100.
        assert_eq!(c.stats(), (2, 128, 0));
        assert_eq!(c.client().ctors.load(Ordering::SeqCst), 0);
        let failing = Mem::default();
        failing.fail.store(true, Ordering::SeqCst);
        let r = Cache::new(
            CacheParams {
                size: 64,
                reservation: 1,
                cap: 0,
            },
            1,
            Client::default(),
            failing,
        );
        assert_eq!(r.err(), Some(CacheError::NoMemory));
    }

    #[test]
    fn get_returns_null_at_the_cap_and_objects_are_distinct() {
        let c = cache(100, 0, 50);
        let mut seen = HashSet::new();
        for _ in 0..50 {
            let o = c.get(0, false).expect("below cap");
            assert_eq!(o % 8, 0);
            assert!(seen.insert(o));
        }
        assert_eq!(c.get(0, false), None);
        assert_eq!(c.get(1, true), None);
        assert_eq!(c.stats().1, 50);
        // Put one back: Get works again (through the magazine).
        let o = *seen.iter().next().unwrap();
        c.put(0, o, false).unwrap();
        assert_eq!(c.get(0, false), Some(o));
    }

    #[test]
    fn lazy_ctor_once_and_dtor_on_slab_free() {
        let c = cache(512, 0, 0);
        let a = c.get(0, false).unwrap();
        let b = c.get(0, false).unwrap();
        assert_eq!(c.client().ctors.load(Ordering::SeqCst), 2);
        c.put(0, a, false).unwrap();
        c.put(0, b, false).unwrap();
        // Reused objects are not reconstructed.
        for _ in 0..10 {
            let x = c.get(0, false).unwrap();
            c.put(0, x, false).unwrap();
        }
        assert_eq!(c.client().ctors.load(Ordering::SeqCst), 2);
        assert_eq!(c.client().dtors.load(Ordering::SeqCst), 0);
        c.destroy().unwrap();
        assert_eq!(c.client().dtors.load(Ordering::SeqCst), 2);
        assert_eq!(c.memory.live.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn failing_ctor_gives_null_and_nothing_leaks() {
        let c = cache(64, 0, 0);
        c.client().fail_ctor_at.store(1, Ordering::SeqCst);
        assert_eq!(c.get(0, false), None);
        assert_eq!(c.stats().2, 0);
        let o = c.get(0, false).unwrap();
        c.put(0, o, false).unwrap();
        c.destroy().unwrap();
        assert_eq!(c.client().dtors.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn magazines_are_per_cpu_and_bypass_the_caller_lock() {
        let c = cache(64, 0, 0);
        let objs: Vec<usize> = (0..8).map(|_| c.get(0, false).unwrap()).collect();
        let locks = c.client().locks.load(Ordering::SeqCst);
        assert_eq!(locks, 8);
        for o in &objs {
            c.put(0, *o, false).unwrap();
        }
        // 6 parked in CPU 0's magazine without the lock, 2 went to the slab under it.
        assert_eq!(c.magazine_objects(), MAGAZINE_SLOTS);
        assert_eq!(c.client().locks.load(Ordering::SeqCst), locks + 2);
        assert_eq!(c.stats().2, MAGAZINE_SLOTS as u32);
        // CPU 1's magazine is empty: its Get takes the slab path.
        let before = c.client().locks.load(Ordering::SeqCst);
        let x = c.get(1, false).unwrap();
        assert_eq!(c.client().locks.load(Ordering::SeqCst), before + 1);
        // CPU 0 gets from its magazine in LIFO order, no lock.
        let y = c.get(0, false).unwrap();
        assert_eq!(y, objs[5]);
        assert_eq!(c.client().locks.load(Ordering::SeqCst), before + 1);
        c.put(1, x, false).unwrap();
        c.put(0, y, false).unwrap();
        c.destroy().unwrap();
        assert_eq!(c.stats(), (0, 0, 0));
    }

    #[test]
    fn locked_true_never_takes_the_callers_lock() {
        let c = cache(64, 0, 0);
        let objs: Vec<usize> = (0..20).map(|_| c.get(0, true).unwrap()).collect();
        for o in objs {
            c.put(0, o, true).unwrap();
        }
        assert_eq!(c.client().locks.load(Ordering::SeqCst), 0);
        assert_eq!(c.client().unlocks.load(Ordering::SeqCst), 0);
        let o = c.get(1, false).unwrap();
        c.put(1, o, false).unwrap();
        assert_eq!(c.client().locks.load(Ordering::SeqCst), 1);
        assert_eq!(c.client().unlocks.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn foreign_or_double_put_is_refused() {
        let c = cache(64, 0, 0);
        let o = c.get(0, false).unwrap();
        assert_eq!(c.put(0, o + 8, false), Err(CacheError::NotAnObject(o + 8)));
        assert_eq!(
            c.put(0, 0x1000, false),
            Err(CacheError::NotAnObject(0x1000))
        );
        c.put(0, o, false).unwrap();
        assert_eq!(c.put(0, o, false), Err(CacheError::NotAnObject(o)));
        c.flush_magazines();
        assert_eq!(c.put(0, o, false), Err(CacheError::NotAnObject(o)));
    }

    #[test]
    fn destroy_with_outstanding_objects_is_refused() {
        let c = cache(64, 0, 0);
        let o = c.get(0, false).unwrap();
        assert_eq!(c.destroy(), Err(CacheError::StillAllocated(1)));
        c.put(0, o, false).unwrap();
        c.destroy().unwrap();
    }

    #[test]
    fn monitor_fills_to_the_reservation_and_spills_empty_slabs_by_halves() {
        let c = cache(1024, 8, 0); // 4 per slab → 2 slabs
        assert_eq!(c.stats(), (2, 8, 0));
        let objs: Vec<usize> = (0..40).map(|_| c.get(0, true).unwrap()).collect();
        assert_eq!(c.stats(), (10, 40, 40));
        for o in &objs {
            c.put(0, *o, true).unwrap();
        }
        c.flush_magazines();
        assert_eq!(c.stats().2, 0);
        // 40 free → 20 → 12 (first count under max(8, 10)) → 8, never below the reservation.
        c.monitor().unwrap();
        assert_eq!(c.stats(), (5, 20, 0));
        c.monitor().unwrap();
        assert_eq!(c.stats(), (3, 12, 0));
        c.monitor().unwrap();
        assert_eq!(c.stats(), (2, 8, 0));
        c.monitor().unwrap();
        assert_eq!(c.stats(), (2, 8, 0));
        // Occupied slabs are never spilled.
        let held: Vec<usize> = (0..8).map(|_| c.get(0, true).unwrap()).collect();
        assert_eq!(c.stats(), (2, 8, 8));
        // Nothing free: below the reservation, the monitor fills it again.
        c.monitor().unwrap();
        assert_eq!(c.stats(), (4, 16, 8));
        for o in held {
            c.put(0, o, true).unwrap();
        }
        // Under a cap, fill stops at the cap.
        let d = cache(1024, 8, 10);
        let held: Vec<usize> = (0..8).map(|_| d.get(0, true).unwrap()).collect();
        d.monitor().unwrap();
        assert_eq!(d.stats(), (3, 10, 8));
        for o in held {
            d.put(0, o, true).unwrap();
        }
    }

    #[test]
    fn threads_hammering_two_cpus_keep_the_books_straight() {
        let c = std::sync::Arc::new(cache(48, 10, 500));
        let t: Vec<_> = (0..2u32)
            .map(|cpu| {
                let c = c.clone();
                std::thread::spawn(move || {
                    let mut held = Vec::new();
                    for i in 0..20_000 {
                        if i % 3 == 2 {
                            if let Some(o) = held.pop() {
                                c.put(cpu, o, false).unwrap();
                            }
                        } else if let Some(o) = c.get(cpu, false) {
                            held.push(o);
                        }
                    }
                    for o in held {
                        c.put(cpu, o, false).unwrap();
                    }
                })
            })
            .collect();
        for t in t {
            t.join().unwrap();
        }
        c.flush_magazines();
        let (_, capacity, allocated) = c.stats();
        assert_eq!(allocated, 0);
        assert!(capacity <= 500);
        c.destroy().unwrap();
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        #[derive(Clone, Debug)]
        enum Op {
            Get(u32),
            Put(u32, usize),
            Monitor,
            Flush,
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                4 => (0u32..3).prop_map(Op::Get),
                4 => (0u32..3, any::<usize>()).prop_map(|(c, i)| Op::Put(c, i)),
                1 => Just(Op::Monitor),
                1 => Just(Op::Flush),
            ]
        }

        proptest! {
            /// Against a model: handed-out objects are distinct and never exceed the cap,
            /// books balance after every step, and everything is destructed at the end.
            #[test]
            fn random_get_put_monitor_sequences(
                size in 1u32..3000, reservation in 0u32..40, extra in 0u32..60,
                ops in proptest::collection::vec(op(), 1..300),
            ) {
                let cap = reservation + extra;
                let c = Cache::new(
                    CacheParams { size, reservation, cap },
                    3,
                    Client::default(),
                    Mem::default(),
                ).unwrap();
                let mut out: Vec<usize> = Vec::new();
                for o in ops {
                    match o {
                        Op::Get(cpu) => {
                            if let Some(x) = c.get(cpu, cpu == 1) {
                                prop_assert!(!out.contains(&x));
                                out.push(x);
                            } else {
                                prop_assert!(cap != 0 && out.len() as u32 >= cap - c.magazine_objects() as u32);
                            }
                        }
                        Op::Put(cpu, i) if !out.is_empty() => {
                            let x = out.swap_remove(i % out.len());
                            prop_assert_eq!(c.put(cpu, x, false), Ok(()));
                        }
                        Op::Put(..) => {}
                        Op::Monitor => c.monitor().unwrap(),
                        Op::Flush => c.flush_magazines(),
                    }
                    let (_, capacity, allocated) = c.stats();
                    prop_assert!(cap == 0 || capacity <= cap);
                    prop_assert_eq!(allocated as usize, out.len() + c.magazine_objects());
                }
                for x in out.drain(..) {
                    c.put(0, x, false).unwrap();
                }
                c.destroy().unwrap();
                prop_assert_eq!(
                    c.client().ctors.load(Ordering::SeqCst),
                    c.client().dtors.load(Ordering::SeqCst)
                );
                prop_assert_eq!(c.memory.live.load(Ordering::SeqCst), 0);
            }
        }
    }
}
