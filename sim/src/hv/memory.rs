//! Machine memory and the guest physmap: real page-aligned host memory behind every frame.
//!
//! Machine frames (MFNs) are pages of one sparse `memfd`; the hypervisor reaches them through
//! its own "direct map" of the whole file. The guest's physical address space is a reserved
//! range of host virtual memory in which each populated guest frame (GFN) is a `MAP_SHARED`
//! mapping of its machine frame, so remapping a GFN (shared_info, grant frames, foreign grant
//! mappings, ballooning) really changes what the guest sees at that address, exactly as a
//! p2m change does under Xen. Unpopulated GFNs are `PROT_NONE`: touching one faults, the host
//! analogue of a domain crash.

use std::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, AtomicU8};

/// Size of a guest and machine page.
pub const PAGE_SIZE: usize = 4096;

/// Error from the host memory layer.
#[derive(Debug)]
pub struct MemoryError(pub String);

impl std::fmt::Display for MemoryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn os_error(what: &str) -> MemoryError {
    MemoryError(format!("{what}: {}", std::io::Error::last_os_error()))
}

/// The machine's memory: a sparse memfd of `frames` pages plus the hypervisor's direct map.
///
/// # Invariants
/// `direct` maps the whole file read-write for the lifetime of the value.
pub struct MachineMemory {
    fd: libc::c_int,
    direct: *mut u8,
    frames: u64,
    free: Vec<u64>,
}

// SAFETY: the raw pointer is a process-wide shared mapping; all accesses go through atomics
// or explicit byte copies, and the free list is only touched through `&mut self`.
unsafe impl Send for MachineMemory {}
// SAFETY: as above; shared access only reads the immutable fd/base/size fields.
unsafe impl Sync for MachineMemory {}

impl MachineMemory {
    /// Create a machine with `frames` pages of (lazily backed) memory.
    pub fn new(frames: u64) -> Result<Self, MemoryError> {
        let name = c"xen-sim-machine";
        // SAFETY: `name` is a valid NUL-terminated string; the call has no other preconditions.
        let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(os_error("memfd_create"));
        }
        let len = frames as usize * PAGE_SIZE;
        // SAFETY: `fd` is the memfd just created and owned by this function.
        if unsafe { libc::ftruncate(fd, len as libc::off_t) } != 0 {
            let e = os_error("ftruncate");
            // SAFETY: closing the fd we own.
            unsafe { libc::close(fd) };
            return Err(e);
        }
        // SAFETY: a fresh shared mapping of the whole file; no existing memory is affected.
        let direct = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            )
        };
        if direct == libc::MAP_FAILED {
            let e = os_error("mmap direct map");
            // SAFETY: closing the fd we own.
            unsafe { libc::close(fd) };
            return Err(e);
        }
        // Hand out low frames first so runs are deterministic.
        let free = (0..frames).rev().collect();
        Ok(MachineMemory {
            fd,
            direct: direct.cast(),
            frames,
            free,
        })
    }

    /// Number of machine frames.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Number of free machine frames.
    pub fn free_frames(&self) -> usize {
        self.free.len()
    }

    /// Allocate one zeroed machine frame.
    pub fn alloc(&mut self) -> Option<u64> {
        let mfn = self.free.pop()?;
        self.zero(mfn);
        Some(mfn)
    }

    /// Allocate `count` machine frames that are contiguous (used at boot for guest RAM).
    pub fn alloc_contiguous(&mut self, count: u64) -> Option<u64> {
        // The free list is a descending stack; at boot it is exactly [frames-1 .. 0].
        let n = self.free.len();
        if (n as u64) < count || count == 0 {
            return None;
        }
        let first = self.free[n - 1];
        let run_ok = (0..count as usize).all(|i| self.free[n - 1 - i] == first + i as u64);
        if !run_ok {
            return None;
        }
        self.free.truncate(n - count as usize);
        Some(first)
    }

    /// Return a machine frame to the free pool.
    pub fn free(&mut self, mfn: u64) {
        debug_assert!(mfn < self.frames);
        debug_assert!(!self.free.contains(&mfn), "double free of mfn {mfn:#x}");
        self.free.push(mfn);
    }

    /// Host address of a machine frame in the hypervisor's direct map.
    pub fn frame_ptr(&self, mfn: u64) -> *mut u8 {
        assert!(mfn < self.frames, "mfn {mfn:#x} out of range");
        // SAFETY: in bounds of the direct mapping by the assertion above.
        unsafe { self.direct.add(mfn as usize * PAGE_SIZE) }
    }

    /// Zero a machine frame.
    pub fn zero(&self, mfn: u64) {
        // SAFETY: the frame lies inside the direct map (checked by frame_ptr).
        unsafe { std::ptr::write_bytes(self.frame_ptr(mfn), 0, PAGE_SIZE) };
    }

    /// Copy bytes out of a machine frame.
    pub fn read(&self, mfn: u64, offset: usize, out: &mut [u8]) {
        assert!(offset + out.len() <= PAGE_SIZE);
        // SAFETY: source range is inside one frame of the direct map; `out` is a distinct
        // host buffer.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.frame_ptr(mfn).add(offset),
                out.as_mut_ptr(),
                out.len(),
            )
        };
    }

    /// Copy bytes into a machine frame.
    pub fn write(&self, mfn: u64, offset: usize, data: &[u8]) {
        assert!(offset + data.len() <= PAGE_SIZE);
        // SAFETY: destination range is inside one frame of the direct map.
        unsafe {
            std::ptr::copy_nonoverlapping(
                data.as_ptr(),
                self.frame_ptr(mfn).add(offset),
                data.len(),
            )
        };
    }

    /// An atomic view of a naturally aligned word inside a machine frame.
    pub fn atomic_u64(&self, mfn: u64, offset: usize) -> &AtomicU64 {
        assert!(offset.is_multiple_of(8) && offset + 8 <= PAGE_SIZE);
        // SAFETY: aligned, in bounds, and the mapping lives as long as `self`; guest and
        // hypervisor only ever access shared words atomically or with plain byte copies.
        unsafe { &*(self.frame_ptr(mfn).add(offset) as *const AtomicU64) }
    }

    /// An atomic view of a naturally aligned 32-bit word inside a machine frame.
    pub fn atomic_u32(&self, mfn: u64, offset: usize) -> &AtomicU32 {
        assert!(offset.is_multiple_of(4) && offset + 4 <= PAGE_SIZE);
        // SAFETY: as for `atomic_u64`.
        unsafe { &*(self.frame_ptr(mfn).add(offset) as *const AtomicU32) }
    }

    /// An atomic view of a naturally aligned 16-bit word inside a machine frame.
    pub fn atomic_u16(&self, mfn: u64, offset: usize) -> &AtomicU16 {
        assert!(offset.is_multiple_of(2) && offset + 2 <= PAGE_SIZE);
        // SAFETY: as for `atomic_u64`.
        unsafe { &*(self.frame_ptr(mfn).add(offset) as *const AtomicU16) }
    }

    /// An atomic view of a byte inside a machine frame.
    pub fn atomic_u8(&self, mfn: u64, offset: usize) -> &AtomicU8 {
        assert!(offset < PAGE_SIZE);
        // SAFETY: as for `atomic_u64`.
        unsafe { &*(self.frame_ptr(mfn).add(offset) as *const AtomicU8) }
    }

    fn fd(&self) -> libc::c_int {
        self.fd
    }
}

impl Drop for MachineMemory {
    fn drop(&mut self) {
        // SAFETY: unmapping the direct map created in `new` and closing our fd; no
        // references into the mapping outlive `self` (they borrow it).
        unsafe {
            libc::munmap(self.direct.cast(), self.frames as usize * PAGE_SIZE);
            libc::close(self.fd);
        }
    }
}

/// The guest physical address space as host virtual memory.
///
/// # Invariants
/// `base` reserves `gfns * PAGE_SIZE` bytes for the lifetime of the value; every page of it
/// is either `PROT_NONE` or a shared mapping of one machine frame.
pub struct Physmap {
    base: *mut u8,
    gfns: u64,
}

// SAFETY: the reservation is process-wide; remapping only happens under the hypervisor lock.
unsafe impl Send for Physmap {}
// SAFETY: as above.
unsafe impl Sync for Physmap {}

impl Physmap {
    /// Reserve an address space of `gfns` guest frames, all unpopulated.
    pub fn new(gfns: u64) -> Result<Self, MemoryError> {
        // SAFETY: a fresh anonymous reservation; no existing memory is affected.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                gfns as usize * PAGE_SIZE,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(os_error("mmap physmap reservation"));
        }
        Ok(Physmap {
            base: base.cast(),
            gfns,
        })
    }

    /// Number of guest frames in the address space.
    pub fn gfns(&self) -> u64 {
        self.gfns
    }

    /// Host (guest-virtual) address of a guest frame.
    pub fn va(&self, gfn: u64) -> usize {
        assert!(gfn < self.gfns, "gfn {gfn:#x} out of range");
        self.base as usize + gfn as usize * PAGE_SIZE
    }

    /// Translate a host address inside the physmap back to (gfn, offset).
    pub fn gfn_of(&self, va: usize) -> Option<(u64, usize)> {
        let base = self.base as usize;
        if va < base || va >= base + self.gfns as usize * PAGE_SIZE {
            return None;
        }
        let off = va - base;
        Some(((off / PAGE_SIZE) as u64, off % PAGE_SIZE))
    }

    /// Make `count` guest frames starting at `gfn` show machine frames `mfn..mfn+count`.
    pub fn map(
        &self,
        mem: &MachineMemory,
        gfn: u64,
        mfn: u64,
        count: u64,
    ) -> Result<(), MemoryError> {
        assert!(gfn + count <= self.gfns && mfn + count <= mem.frames());
        // SAFETY: the target range lies inside our reservation (asserted), which we own;
        // MAP_FIXED replaces only those pages.
        let r = unsafe {
            libc::mmap(
                self.va(gfn) as *mut libc::c_void,
                count as usize * PAGE_SIZE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_FIXED,
                mem.fd(),
                (mfn as usize * PAGE_SIZE) as libc::off_t,
            )
        };
        if r == libc::MAP_FAILED {
            return Err(os_error("mmap gfn"));
        }
        Ok(())
    }

    /// Make a guest frame unpopulated (`PROT_NONE`).
    pub fn unmap(&self, gfn: u64) -> Result<(), MemoryError> {
        // SAFETY: the page lies inside our reservation; MAP_FIXED replaces only it.
        let r = unsafe {
            libc::mmap(
                self.va(gfn) as *mut libc::c_void,
                PAGE_SIZE,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if r == libc::MAP_FAILED {
            return Err(os_error("mmap unmap gfn"));
        }
        Ok(())
    }
}

impl Drop for Physmap {
    fn drop(&mut self) {
        // SAFETY: releasing the reservation created in `new`.
        unsafe { libc::munmap(self.base.cast(), self.gfns as usize * PAGE_SIZE) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remapping_a_gfn_changes_what_the_guest_sees() {
        let mut mem = MachineMemory::new(16).unwrap();
        let map = Physmap::new(8).unwrap();
        let a = mem.alloc().unwrap();
        let b = mem.alloc().unwrap();
        mem.write(a, 0, b"frame-a");
        mem.write(b, 0, b"frame-b");
        map.map(&mem, 3, a, 1).unwrap();
        let va = map.va(3) as *mut u8;
        // SAFETY: gfn 3 is mapped to frame a.
        let seen = unsafe { std::slice::from_raw_parts(va, 7) }.to_vec();
        assert_eq!(&seen, b"frame-a");
        // Guest writes land in the machine frame.
        // SAFETY: as above.
        unsafe { *va.add(100) = 0x5a };
        let mut out = [0u8; 1];
        mem.read(a, 100, &mut out);
        assert_eq!(out[0], 0x5a);
        map.map(&mem, 3, b, 1).unwrap();
        // SAFETY: gfn 3 is now mapped to frame b.
        let seen = unsafe { std::slice::from_raw_parts(va, 7) }.to_vec();
        assert_eq!(&seen, b"frame-b");
        assert_eq!(map.gfn_of(map.va(3) + 5), Some((3, 5)));
        map.unmap(3).unwrap();
    }

    #[test]
    fn contiguous_allocation_and_zeroing() {
        let mut mem = MachineMemory::new(8).unwrap();
        assert_eq!(mem.alloc_contiguous(4), Some(0));
        let m = mem.alloc().unwrap();
        assert_eq!(m, 4);
        mem.write(m, 0, &[1, 2, 3]);
        mem.free(m);
        let again = mem.alloc().unwrap();
        assert_eq!(again, m);
        let mut out = [9u8; 3];
        mem.read(again, 0, &mut out);
        assert_eq!(out, [0, 0, 0], "allocated frames are zeroed");
        assert_eq!(mem.free_frames(), 3);
    }
}
