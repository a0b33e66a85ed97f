//! Shared-memory accessors: bounds-checked atomic access to pages the other side (Xen,
//! xenstored, a backend) writes concurrently.
//!
//! Every access is an atomic operation on the mapped memory, so concurrent writes by the
//! other side are never a data race on the Rust side; every offset is checked against the
//! mapping's length and the access's alignment. This module is one of the few places
//! allowed to use `unsafe` (a raw mapping becomes a [`SharedMemory`] only through
//! [`SharedMemory::from_raw`], whose contract the caller upholds).

use alloc::sync::Arc;
use core::ptr::NonNull;
use core::sync::atomic::{fence, AtomicU16, AtomicU32, AtomicU64, AtomicU8, Ordering};

/// Size of a page.
pub const PAGE_SIZE: usize = 4096;

/// An access fell outside the mapping or was misaligned (a bug in the caller's offset
/// arithmetic, reported instead of touching memory).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfBounds {
    /// The offending offset.
    pub offset: usize,
    /// The access width in bytes.
    pub width: usize,
}

/// `xen_mb()`: a full memory barrier.
pub fn mb() {
    fence(Ordering::SeqCst);
}

/// `xen_rmb()`: reads before the barrier complete before reads after it.
pub fn rmb() {
    fence(Ordering::Acquire);
}

/// `xen_wmb()`: writes before the barrier are visible before writes after it.
pub fn wmb() {
    fence(Ordering::Release);
}

/// A view of `len` bytes of memory shared with another agent.
///
/// # Invariants
/// `base` points to `len` bytes that stay mapped, readable and writable for the lifetime
/// of this value, aligned to 8 bytes, and only ever accessed atomically on this side
/// (`keep` holds the memory alive when it is an [`OwnedPage`]).
#[derive(Clone, Debug)]
pub struct SharedMemory {
    base: NonNull<u8>,
    len: usize,
    _keep: Option<Arc<PageWords>>,
}

type PageWords = [AtomicU64; PAGE_SIZE / 8];

// SAFETY: every access goes through atomic operations on memory that stays mapped
// (type invariant), so the view may be moved to and used from any thread.
unsafe impl Send for SharedMemory {}
// SAFETY: as above: `&SharedMemory` only offers atomic accesses.
unsafe impl Sync for SharedMemory {}

macro_rules! atomic_accessors {
    ($atomic:ty, $int:ty, $load:ident, $store:ident, $swap:ident, $cas:ident, $or:ident, $and:ident) => {
        /// Atomic load (acquire).
        pub fn $load(&self, offset: usize) -> Result<$int, OutOfBounds> {
            Ok(self.atomic::<$atomic>(offset)?.load(Ordering::Acquire))
        }

        /// Atomic store (release).
        pub fn $store(&self, offset: usize, value: $int) -> Result<(), OutOfBounds> {
            self.atomic::<$atomic>(offset)?
                .store(value, Ordering::Release);
            Ok(())
        }

        /// Atomic exchange (full barrier), returning the old value.
        pub fn $swap(&self, offset: usize, value: $int) -> Result<$int, OutOfBounds> {
            Ok(self
                .atomic::<$atomic>(offset)?
                .swap(value, Ordering::SeqCst))
        }

        /// Compare-and-swap (full barrier): `Ok(Ok(old))` on success, `Ok(Err(seen))` when
        /// the current value was not `current`.
        pub fn $cas(
            &self,
            offset: usize,
            current: $int,
            new: $int,
        ) -> Result<Result<$int, $int>, OutOfBounds> {
            Ok(self.atomic::<$atomic>(offset)?.compare_exchange(
                current,
                new,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ))
        }

        /// Atomic OR (full barrier), returning the old value.
        pub fn $or(&self, offset: usize, bits: $int) -> Result<$int, OutOfBounds> {
            Ok(self
                .atomic::<$atomic>(offset)?
                .fetch_or(bits, Ordering::SeqCst))
        }

        /// Atomic AND (full barrier), returning the old value.
        pub fn $and(&self, offset: usize, bits: $int) -> Result<$int, OutOfBounds> {
            Ok(self
                .atomic::<$atomic>(offset)?
                .fetch_and(bits, Ordering::SeqCst))
        }
    };
}

/// An atomic type of this module with its width.
trait Width {
    const WIDTH: usize;
}
impl Width for AtomicU8 {
    const WIDTH: usize = 1;
}
impl Width for AtomicU16 {
    const WIDTH: usize = 2;
}
impl Width for AtomicU32 {
    const WIDTH: usize = 4;
}
impl Width for AtomicU64 {
    const WIDTH: usize = 8;
}

impl SharedMemory {
    /// View `len` bytes at virtual address `va`.
    ///
    /// Returns `None` for a NULL or misaligned address.
    ///
    /// # Safety
    /// `va` must point to `len` bytes that stay mapped, readable and writable for as long
    /// as the returned value (and anything derived from it) lives, and that this side only
    /// ever accesses through [`SharedMemory`] (atomically).
    pub unsafe fn from_raw(va: usize, len: usize) -> Option<Self> {
        if !va.is_multiple_of(8) {
            return None;
        }
        NonNull::new(va as *mut u8).map(|base| Self {
            base,
            len,
            _keep: None,
        })
    }

    /// Length of the view in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for a zero-length view.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Virtual address of the first byte.
    pub fn va(&self) -> usize {
        self.base.as_ptr() as usize
    }

    fn check(&self, offset: usize, width: usize) -> Result<(), OutOfBounds> {
        let end = offset.checked_add(width);
        if end.is_some_and(|end| end <= self.len) && offset.is_multiple_of(width) {
            Ok(())
        } else {
            Err(OutOfBounds { offset, width })
        }
    }

    fn atomic<A: Width>(&self, offset: usize) -> Result<&A, OutOfBounds> {
        self.check(offset, A::WIDTH)?;
        // SAFETY: `offset + WIDTH <= len` and `offset` is a multiple of WIDTH (checked),
        // `base` is 8-byte aligned and mapped for `len` bytes for the lifetime of `self`
        // (type invariant), and this side only accesses the memory atomically, so a
        // shared reference to an atomic of that width at that address is valid.
        Ok(unsafe { &*(self.base.as_ptr().add(offset) as *const A) })
    }

    atomic_accessors!(AtomicU8, u8, load_u8, store_u8, swap_u8, cas_u8, or_u8, and_u8);
    atomic_accessors!(AtomicU16, u16, load_u16, store_u16, swap_u16, cas_u16, or_u16, and_u16);
    atomic_accessors!(AtomicU32, u32, load_u32, store_u32, swap_u32, cas_u32, or_u32, and_u32);
    atomic_accessors!(AtomicU64, u64, load_u64, store_u64, swap_u64, cas_u64, or_u64, and_u64);

    /// Copy `out.len()` bytes starting at `offset` into `out` (byte-wise relaxed loads;
    /// order them against index reads with [`rmb`]).
    pub fn read_bytes(&self, offset: usize, out: &mut [u8]) -> Result<(), OutOfBounds> {
        self.check_range(offset, out.len())?;
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = self.atomic::<AtomicU8>(offset + i)?.load(Ordering::Relaxed);
        }
        Ok(())
    }

    /// Copy `data` to `offset` (byte-wise relaxed stores; publish them with [`wmb`]).
    pub fn write_bytes(&self, offset: usize, data: &[u8]) -> Result<(), OutOfBounds> {
        self.check_range(offset, data.len())?;
        for (i, byte) in data.iter().enumerate() {
            self.atomic::<AtomicU8>(offset + i)?
                .store(*byte, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Zero `len` bytes at `offset`.
    pub fn zero(&self, offset: usize, len: usize) -> Result<(), OutOfBounds> {
        self.check_range(offset, len)?;
        for i in 0..len {
            self.atomic::<AtomicU8>(offset + i)?
                .store(0, Ordering::Relaxed);
        }
        Ok(())
    }

    fn check_range(&self, offset: usize, len: usize) -> Result<(), OutOfBounds> {
        match offset.checked_add(len) {
            Some(end) if end <= self.len => Ok(()),
            _ => Err(OutOfBounds { offset, width: len }),
        }
    }
}

/// A zeroed page owned by this side, for memory that is shared by reference (tests, and
/// in-process peers in the simulator). Views keep it alive.
#[derive(Clone)]
pub struct OwnedPage {
    words: Arc<PageWords>,
}

impl OwnedPage {
    /// A new zeroed page.
    pub fn new() -> Self {
        Self {
            words: Arc::new([const { AtomicU64::new(0) }; PAGE_SIZE / 8]),
        }
    }

    /// A view of the whole page (it keeps the page alive).
    pub fn view(&self) -> SharedMemory {
        SharedMemory {
            base: NonNull::from(&*self.words).cast::<u8>(),
            len: PAGE_SIZE,
            _keep: Some(self.words.clone()),
        }
    }

    /// Virtual address of the page.
    pub fn va(&self) -> usize {
        self.words.as_ptr() as usize
    }
}

impl Default for OwnedPage {
    fn default() -> Self {
        Self::new()
    }
}

/// Map guest frame `pfn` through the Os edge and view the whole page.
///
/// Relies on the `Os::map_pfn` contract: the returned address maps the frame's 4 KiB for
/// as long as the driver runs (mappings of device/hole frames are never torn down while
/// a subsystem holds its view).
pub fn map_pfn(os: &dyn common::os::Os, pfn: u64) -> Option<SharedMemory> {
    let va = os.map_pfn(pfn)?;
    // SAFETY: by the Os::map_pfn contract `va` maps the whole page and stays mapped while
    // the owning subsystem keeps this view; this side only accesses it atomically.
    unsafe { SharedMemory::from_raw(va, PAGE_SIZE) }
}

/// View processor `cpu`'s registered `vcpu_info` (`len` bytes) at the address xen.sys
/// reports, relying on the `SystemProcessorVcpuInfo` contract (registered areas stay
/// mapped for the life of the system).
pub fn vcpu_info(api: &dyn xen_include::api::XenApi, cpu: u32, len: usize) -> Option<SharedMemory> {
    let va = api.system_processor_vcpu_info(cpu).ok()?;
    // SAFETY: xen.sys keeps registered vcpu_info areas mapped for the lifetime of the
    // system (their pages are never freed once registered); only atomics touch them here.
    unsafe { SharedMemory::from_raw(va, len) }
}

/// A sub-view `[offset, offset + len)` of `memory` (e.g. the legacy `vcpu_info[n]` inside
/// shared info), or `None` when it does not fit.
pub fn sub_view(memory: &SharedMemory, offset: usize, len: usize) -> Option<SharedMemory> {
    let end = offset.checked_add(len)?;
    if end > memory.len() || !offset.is_multiple_of(8) {
        return None;
    }
    Some(SharedMemory {
        base: NonNull::new(memory.va().wrapping_add(offset) as *mut u8)?,
        len,
        _keep: memory._keep.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accesses_are_bounds_and_alignment_checked() {
        let page = OwnedPage::new();
        let m = page.view();
        assert_eq!(m.len(), PAGE_SIZE);
        m.store_u32(4092, 7).unwrap();
        assert_eq!(m.load_u32(4092).unwrap(), 7);
        assert_eq!(
            m.load_u32(4094),
            Err(OutOfBounds {
                offset: 4094,
                width: 4
            })
        );
        assert!(m.load_u32(4096).is_err());
        assert!(m.load_u64(usize::MAX - 3).is_err());
        assert!(m.read_bytes(4090, &mut [0u8; 7]).is_err());
        assert!(m.write_bytes(usize::MAX, &[1]).is_err());
        m.write_bytes(4090, b"abcdef").unwrap();
        let mut out = [0u8; 6];
        m.read_bytes(4090, &mut out).unwrap();
        assert_eq!(&out, b"abcdef");
    }

    #[test]
    fn read_modify_write_operations() {
        let page = OwnedPage::new();
        let m = page.view();
        assert_eq!(m.or_u64(8, 0b101).unwrap(), 0);
        assert_eq!(m.and_u64(8, !0b1).unwrap(), 0b101);
        assert_eq!(m.load_u64(8).unwrap(), 0b100);
        assert_eq!(m.swap_u64(8, 9).unwrap(), 0b100);
        assert_eq!(m.cas_u16(16, 0, 5).unwrap(), Ok(0));
        assert_eq!(m.cas_u16(16, 0, 6).unwrap(), Err(5));
        assert_eq!(m.load_u8(16).unwrap(), 5);
        m.zero(8, 16).unwrap();
        assert_eq!(m.load_u64(8).unwrap(), 0);
    }

    #[test]
    fn from_raw_refuses_null_and_misaligned() {
        // SAFETY: both calls are refused before any access.
        unsafe {
            assert!(SharedMemory::from_raw(0, 16).is_none());
            assert!(SharedMemory::from_raw(0x1001, 16).is_none());
        }
    }
}
