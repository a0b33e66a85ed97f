//! The balloon's pages from the Windows memory manager (upstream `balloon.c`'s kernel
//! half): inflation takes pages with `MmAllocatePagesForMdlEx` (not zeroed, preferably
//! contiguous, hot-removed from the OS) and keeps only their frame numbers; deflation hands
//! frames back with `MmAddPhysicalMemory`, one call per contiguous run; low memory is the
//! `\KernelObjects\LowMemoryCondition` event.

/// Split `pfns` into contiguous runs `(first, count)` in order (one `MmAddPhysicalMemory`
/// call each).
pub fn contiguous_runs(pfns: &[u64]) -> impl Iterator<Item = (u64, u64)> + '_ {
    let mut rest = pfns;
    core::iter::from_fn(move || {
        let (&first, tail) = rest.split_first()?;
        let mut count = 1u64;
        let mut tail = tail;
        while let Some((&next, after)) = tail.split_first() {
            if Some(next) != first.checked_add(count) {
                break;
            }
            count += 1;
            tail = after;
        }
        rest = tail;
        Some((first, count))
    })
}

#[cfg(windows)]
pub use kernel::KernelBalloonMemory;

#[cfg(windows)]
mod kernel {
    use alloc::vec::Vec;
    use core::ffi::c_void;
    use core::mem::size_of;
    use core::ptr;

    use common::os::Os;
    use common::wdm::log::{log, Level};
    use common::wdm::os::KernelOs;
    use windows_sys::Wdk::Foundation::{KEVENT, MDL};
    use windows_sys::Wdk::System::SystemServices::{
        ExFreePool, Executive, IoCreateNotificationEvent, KeWaitForSingleObject, KernelMode,
        MmAddPhysicalMemory, MmAllocatePagesForMdlEx, MmCached, MM_ALLOCATE_AND_HOT_REMOVE,
        MM_ALLOCATE_PREFER_CONTIGUOUS, MM_DONT_ZERO_ALLOCATION,
    };
    use windows_sys::Win32::Foundation::{HANDLE, STATUS_SUCCESS, UNICODE_STRING};

    use super::contiguous_runs;
    use crate::balloon::BalloonMemory;

    /// `PAGE_SHIFT`.
    const PAGE_SHIFT: u32 = 12;

    /// [`BalloonMemory`] on the kernel's memory manager.
    pub struct KernelBalloonMemory {
        /// `\KernelObjects\LowMemoryCondition` (null when it could not be opened: never low).
        low_memory: *mut KEVENT,
        handle: HANDLE,
    }

    // SAFETY: the event is a named kernel object, waited on with a zero timeout from any
    // thread; the handle is only closed in Drop.
    unsafe impl Sync for KernelBalloonMemory {}
    // SAFETY: as above.
    unsafe impl Send for KernelBalloonMemory {}

    impl KernelBalloonMemory {
        /// Open the low-memory event (PASSIVE_LEVEL).
        pub fn new() -> Self {
            let mut name: Vec<u16> = "\\KernelObjects\\LowMemoryCondition"
                .encode_utf16()
                .collect();
            let bytes = (name.len() * 2) as u16;
            let unicode = UNICODE_STRING {
                Length: bytes,
                MaximumLength: bytes,
                Buffer: name.as_mut_ptr(),
            };
            let mut handle: HANDLE = ptr::null_mut();
            // SAFETY: `unicode` describes `name`, alive for the call; the kernel writes the
            // handle.
            let low_memory = unsafe { IoCreateNotificationEvent(&unicode, &mut handle) };
            if low_memory.is_null() {
                log(
                    Level::Warning,
                    format_args!("balloon: LowMemoryCondition not opened"),
                );
            }
            Self { low_memory, handle }
        }
    }

    impl Default for KernelBalloonMemory {
        fn default() -> Self {
            Self::new()
        }
    }

    impl Drop for KernelBalloonMemory {
        fn drop(&mut self) {
            if !self.handle.is_null() {
                // SAFETY: the handle from IoCreateNotificationEvent, closed once.
                unsafe { common::wdm::ntoskrnl::ZwClose(self.handle) };
            }
        }
    }

    impl BalloonMemory for KernelBalloonMemory {
        fn low_memory(&self) -> bool {
            if self.low_memory.is_null() {
                return false;
            }
            let timeout = 0i64;
            // SAFETY: a live named event; a zero timeout only polls.
            let status = unsafe {
                KeWaitForSingleObject(
                    self.low_memory.cast::<c_void>(),
                    Executive,
                    KernelMode as i8,
                    false,
                    &timeout,
                )
            };
            status == STATUS_SUCCESS
        }

        fn allocate(&self, count: usize, pfns: &mut Vec<u64>) {
            let Some(bytes) = count.checked_shl(PAGE_SHIFT) else {
                return;
            };
            // SAFETY: plain allocation request at PASSIVE_LEVEL (the balloon thread).
            let mdl = unsafe {
                MmAllocatePagesForMdlEx(
                    0,
                    -1,
                    0,
                    bytes,
                    MmCached,
                    MM_DONT_ZERO_ALLOCATION
                        | MM_ALLOCATE_PREFER_CONTIGUOUS
                        | MM_ALLOCATE_AND_HOT_REMOVE,
                )
            };
            if mdl.is_null() {
                return;
            }
            // SAFETY: a locked MDL from MmAllocatePagesForMdlEx: its PFN array follows the
            // header and has ByteCount / PAGE_SIZE entries (the allocation may be short);
            // only the MDL itself is freed, the pages stay with the balloon.
            unsafe {
                let got = ((*mdl).ByteCount >> PAGE_SHIFT) as usize;
                let array = mdl.cast::<u8>().add(size_of::<MDL>()).cast::<u64>();
                pfns.reserve(got.min(count));
                for index in 0..got.min(count) {
                    pfns.push(array.add(index).read());
                }
                ExFreePool(mdl.cast());
            }
        }

        fn give_back(&self, pfns: &[u64]) {
            for (first, count) in contiguous_runs(pfns) {
                let start = (first << PAGE_SHIFT) as i64;
                let mut bytes = (count << PAGE_SHIFT) as i64;
                // SAFETY: both arguments are locals; the frames were taken from the OS by
                // `allocate` and populated again by the balloon before coming back.
                let status = unsafe { MmAddPhysicalMemory(&start, &mut bytes) };
                if status < 0 {
                    log(
                        Level::Error,
                        format_args!(
                            "MmAddPhysicalMemory failed: {status:#010x} (PFN {first:#x} + {count:#x} pages)"
                        ),
                    );
                    break;
                }
            }
        }

        fn now_100ns(&self) -> u64 {
            KernelOs.system_time() as u64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_split_at_gaps_and_reversals() {
        let runs: Vec<_> = contiguous_runs(&[10, 11, 12, 20, 21, 5, 4]).collect();
        assert_eq!(runs, [(10, 3), (20, 2), (5, 1), (4, 1)]);
        assert_eq!(contiguous_runs(&[]).count(), 0);
        assert_eq!(
            contiguous_runs(&[u64::MAX]).collect::<Vec<_>>(),
            [(u64::MAX, 1)]
        );
    }
}
