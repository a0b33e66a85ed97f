//! The global allocator of the drivers: non-paged, no-execute pool that honours
//! `Layout::align()`.
//!
//! `ExAllocatePoolWithTag` returns 16-byte aligned blocks (page-aligned from one page up).
//! Larger alignments over-allocate by `align` bytes and keep the pool block's address in the
//! word just below the aligned block, so `dealloc` can hand the original back.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr;

/// Alignment the pool guarantees for every block on x64.
pub const POOL_ALIGNMENT: usize = 16;

/// Pool tag of the Rust heap (`XenR` in pool-tag tools).
pub const POOL_TAG: u32 = u32::from_le_bytes(*b"XenR");

/// A source of raw blocks aligned to [`POOL_ALIGNMENT`].
///
/// # Safety
/// `allocate` must return null or a block of at least `size` bytes aligned to
/// [`POOL_ALIGNMENT`] that stays valid until passed to `free`.
pub unsafe trait RawPool {
    /// Allocate `size` bytes, or return null.
    fn allocate(&self, size: usize) -> *mut u8;
    /// Free a block returned by `allocate`.
    ///
    /// # Safety
    /// `block` must come from `allocate` on the same pool and not be freed twice.
    unsafe fn free(&self, block: *mut u8);
}

/// A [`GlobalAlloc`] over a [`RawPool`] that supports any power-of-two alignment.
pub struct PoolAllocator<P> {
    pool: P,
}

impl<P> PoolAllocator<P> {
    /// An allocator drawing from `pool`.
    pub const fn new(pool: P) -> Self {
        PoolAllocator { pool }
    }
}

/// Size of the pool block needed for `layout`, or `None` on overflow.
pub const fn block_size(layout: Layout) -> Option<usize> {
    let size = if layout.size() == 0 { 1 } else { layout.size() };
    if layout.align() <= POOL_ALIGNMENT {
        Some(size)
    } else {
        size.checked_add(layout.align())
    }
}

// SAFETY: blocks come from a RawPool (valid until freed); over-aligned blocks stay inside
// the over-allocated pool block (see `alloc`), and `dealloc` returns exactly the pool block.
unsafe impl<P: RawPool> GlobalAlloc for PoolAllocator<P> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some(size) = block_size(layout) else {
            return ptr::null_mut();
        };
        let block = self.pool.allocate(size);
        if block.is_null() || layout.align() <= POOL_ALIGNMENT {
            return block;
        }
        // `block` is 16-aligned and `align` a larger power of two, so the next aligned
        // address is between 16 and `align` bytes above it: room for the back-pointer below
        // it, and `align - offset + size <= size + align` bytes inside the block.
        let offset = layout.align() - (block as usize & (layout.align() - 1));
        // SAFETY: offset <= align, inside the block of size + align bytes.
        let aligned = unsafe { block.add(offset) };
        // SAFETY: offset >= 16, so the word below `aligned` is inside the block and
        // 8-byte aligned (aligned is a multiple of align >= 32).
        unsafe { aligned.cast::<*mut u8>().sub(1).write(block) };
        aligned
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        if layout.align() <= POOL_ALIGNMENT {
            // SAFETY: the caller returns a block from `alloc` with the same layout, which
            // for this alignment is the pool block itself.
            unsafe { self.pool.free(block) };
        } else {
            // SAFETY: `alloc` stored the pool block's address just below the aligned block.
            unsafe { self.pool.free(block.cast::<*mut u8>().sub(1).read()) };
        }
    }
}

/// Non-paged, no-execute kernel pool (`ExAllocatePoolWithTag(NonPagedPoolNx, …)`).
#[cfg(windows)]
pub struct NonPagedPoolNx;

// SAFETY: ExAllocatePoolWithTag returns null or a block of the requested size, 16-byte
// aligned on x64, valid until ExFreePoolWithTag.
#[cfg(windows)]
unsafe impl RawPool for NonPagedPoolNx {
    fn allocate(&self, size: usize) -> *mut u8 {
        use windows_sys::Wdk::Foundation::NonPagedPoolNx;
        // SAFETY: a plain pool allocation; callable at IRQL <= DISPATCH_LEVEL.
        unsafe {
            windows_sys::Wdk::System::SystemServices::ExAllocatePoolWithTag(
                NonPagedPoolNx,
                size,
                POOL_TAG,
            )
            .cast()
        }
    }

    unsafe fn free(&self, block: *mut u8) {
        // SAFETY: the caller returns a block from `allocate`, allocated with POOL_TAG.
        unsafe {
            windows_sys::Wdk::System::SystemServices::ExFreePoolWithTag(block.cast(), POOL_TAG)
        }
    }
}

#[cfg(all(windows, feature = "kernel-runtime"))]
#[global_allocator]
static ALLOCATOR: PoolAllocator<NonPagedPoolNx> = PoolAllocator::new(NonPagedPoolNx);

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    /// A pool over the host heap that records live blocks and checks every free.
    #[derive(Default)]
    struct CheckedPool {
        live: RefCell<BTreeMap<usize, usize>>,
    }

    // SAFETY: std's allocator honours the 16-byte layout we ask for.
    unsafe impl RawPool for CheckedPool {
        fn allocate(&self, size: usize) -> *mut u8 {
            if size > 1 << 40 {
                return ptr::null_mut();
            }
            let layout = Layout::from_size_align(size, POOL_ALIGNMENT).expect("layout");
            // SAFETY: size > 0 (block_size never returns 0).
            let block = unsafe { std::alloc::alloc(layout) };
            self.live.borrow_mut().insert(block as usize, size);
            block
        }
        unsafe fn free(&self, block: *mut u8) {
            let size = self
                .live
                .borrow_mut()
                .remove(&(block as usize))
                .expect("free of a live block");
            let layout = Layout::from_size_align(size, POOL_ALIGNMENT).expect("layout");
            // SAFETY: the block came from `allocate` with this layout.
            unsafe { std::alloc::dealloc(block, layout) };
        }
    }

    #[test]
    fn every_alignment_is_honoured_and_freed() {
        let allocator = PoolAllocator::new(CheckedPool::default());
        let mut blocks = Vec::new();
        for shift in 0..=13 {
            for size in [0usize, 1, 7, 16, 100, 4096, 5000] {
                let layout = Layout::from_size_align(size, 1 << shift).expect("layout");
                // SAFETY: the test allocator; blocks are freed below with the same layout.
                let p = unsafe { allocator.alloc(layout) };
                assert!(!p.is_null());
                assert_eq!(p as usize % layout.align(), 0, "{layout:?}");
                // The whole block is writable without touching the back-pointer.
                // SAFETY: p has at least `size` bytes.
                unsafe { ptr::write_bytes(p, 0xA5, size) };
                blocks.push((p, layout));
            }
        }
        for (p, layout) in blocks {
            // SAFETY: p came from alloc with this layout.
            unsafe { allocator.dealloc(p, layout) };
        }
        assert!(allocator.pool.live.borrow().is_empty());
    }

    #[test]
    fn exhausted_pool_gives_null() {
        let layout = Layout::from_size_align(isize::MAX as usize - 63, 64).expect("layout");
        assert_eq!(block_size(layout), Some(isize::MAX as usize + 1));
        let allocator = PoolAllocator::new(CheckedPool::default());
        // SAFETY: a null return is the documented failure.
        assert!(unsafe { allocator.alloc(layout) }.is_null());
    }
}
