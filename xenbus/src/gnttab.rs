//! GNTTAB (spec §5.11): grant table v1 — frames mapped into hole pages on demand up to
//! `query_size`'s maximum, a RANGE_SET of free references (0–31 never handed out),
//! publish ordering, revoke that refuses while the grantee has the page mapped, caches
//! with reservation and cap, QueryReference, MapForeignPages/UnmapForeignPages.
//!
//! Decisions:
//! * A cache holds its `Reservation` references popped from the table at creation and
//!   hands them out first; `Cap` (0 = unlimited) bounds its outstanding entries. The
//!   subsystem locks its own state, so the caller's lock callbacks are not needed.
//! * `MapForeignPages` needs consecutive hole frames: pages are allocated one by one and a
//!   non-contiguous run is refused (`STATUS_INSUFFICIENT_RESOURCES`) after unwinding.
//! * A revoke that fails after 100 attempts leaves the entry granted and its reference out
//!   of the free set (upstream quirk, kept: recycling it would be a use-after-grant).
#![forbid(unsafe_code)]

use alloc::boxed::Box;
use alloc::vec::Vec;

use common::os::{Os, Page};

use crate::hole::{Hole, HoleRun};
use common::sync::SpinLock;
use xen_include::api::XenApi;
use xen_include::status::{
    NtStatus, STATUS_INSUFFICIENT_RESOURCES, STATUS_INVALID_PARAMETER, STATUS_NO_MEMORY,
    STATUS_UNSUCCESSFUL,
};
use xen_include::xen::grant_table::GrantEntryFlags;
use xen_include::xen::memory::MapSpace;

use crate::range_set::RangeSet;
use crate::shared::{mb, wmb, SharedMemory, PAGE_SIZE};

/// Bytes of a v1 grant entry.
pub const ENTRY_SIZE: usize = 8;
/// v1 entries per frame.
pub const ENTRIES_PER_FRAME: u32 = (PAGE_SIZE / ENTRY_SIZE) as u32;
/// References below this are never handed out (Xen's reserved entries, console = 0,
/// store = 1, and room for a crash kernel).
pub const RESERVED_ENTRIES: u32 = 32;
/// Bytes of a cache's name kept for the debug dump.
pub const CACHE_NAME_MAX: usize = 32;
/// Attempts of a revoke before giving up.
pub const REVOKE_ATTEMPTS: u32 = 100;

struct Frame {
    pfn: u64,
    run: HoleRun,
    view: SharedMemory,
}

struct Mapping {
    address: u64,
    pages: Vec<(Page, u32)>,
}

/// A cache of references with its reservation and cap.
struct CacheRecord {
    /// The name its creator gave (for the debug dump; truncated, not NUL-terminated).
    name: [u8; CACHE_NAME_MAX],
    name_len: usize,
    reserved: Vec<u32>,
    outstanding: u32,
    cap: u32,
}

/// A granted entry.
struct EntryRecord {
    reference: u32,
    cache: usize,
}

/// Handle of a cache.
pub type CacheHandle = usize;
/// Handle of a granted entry.
pub type EntryHandle = usize;

struct State {
    frames: Vec<Frame>,
    max_frames: u32,
    free: RangeSet,
    // Boxed: the address of a record is its handle.
    #[allow(clippy::vec_box)]
    caches: Vec<Box<CacheRecord>>,
    #[allow(clippy::vec_box)]
    entries: Vec<Box<EntryRecord>>,
    mappings: Vec<Mapping>,
}

/// The GNTTAB subsystem.
pub struct Gnttab {
    api: &'static dyn XenApi,
    os: &'static dyn Os,
    hole: SpinLock<Option<alloc::sync::Arc<Hole<'static>>>>,
    /// Threads and DPCs (grants, maps, caches); the resume's HIGH_LEVEL phase only tries
    /// it (`suspend_early`).
    state: SpinLock<Option<State>>,
}

fn flags_offset(reference: u32) -> (usize, usize) {
    (
        (reference / ENTRIES_PER_FRAME) as usize,
        (reference % ENTRIES_PER_FRAME) as usize * ENTRY_SIZE,
    )
}

impl Gnttab {
    /// Not acquired.
    pub const fn new(api: &'static dyn XenApi, os: &'static dyn Os) -> Self {
        Self {
            api,
            os,
            hole: SpinLock::new(None),
            state: SpinLock::new(None),
        }
    }

    /// Map grant frames into pages of `hole` (the FDO's, in the mode `UseMemoryHole`
    /// chose) instead of fresh `decrease_reservation` holes. Set before Acquire.
    pub fn set_hole(&self, hole: Option<alloc::sync::Arc<Hole<'static>>>) {
        *self.hole.lock() = hole;
    }

    /// The XenApi edge (for the interface shims' logging).
    pub fn api(&self) -> &'static dyn XenApi {
        self.api
    }

    fn map_frame(&self, index: u32, pfn: u64) -> Result<SharedMemory, NtStatus> {
        self.api
            .memory_add_to_physmap(pfn as usize, MapSpace::GRANT_TABLE.0, index as usize)?;
        crate::shared::map_pfn(self.os, pfn).ok_or(STATUS_UNSUCCESSFUL)
    }

    fn expand(&self, s: &mut State) -> Result<(), NtStatus> {
        let index = s.frames.len() as u32;
        if index >= s.max_frames {
            return Err(STATUS_INSUFFICIENT_RESOURCES);
        }
        s.frames.try_reserve(1).map_err(|_| STATUS_NO_MEMORY)?;
        let hole = self.hole.lock().clone();
        let run = crate::hole::allocate_run(self.api, self.os, hole.as_deref(), 1)?;
        let Some(&pfn) = run.pfns.first() else {
            return Err(STATUS_UNSUCCESSFUL);
        };
        let view = match self.map_frame(index, pfn) {
            Ok(v) => v,
            Err(e) => {
                let _ = crate::hole::free_run(self.api, self.os, hole.as_deref(), run);
                return Err(e);
            }
        };
        let first = (index * ENTRIES_PER_FRAME).max(RESERVED_ENTRIES);
        let end = (index + 1) * ENTRIES_PER_FRAME;
        s.frames.push(Frame { pfn, run, view });
        if end > first {
            s.free.put(i64::from(first), u64::from(end - first))?;
        }
        info!(
            self.api,
            "GNTTAB: frame {index} mapped, references {first}-{}",
            end - 1
        );
        Ok(())
    }

    /// First Acquire: learn the maximum table size, map the first frame.
    pub fn acquire(&self) -> Result<(), NtStatus> {
        let (_, max_frames) = self.api.grant_table_query_size()?;
        let mut s = State {
            frames: Vec::new(),
            max_frames,
            free: RangeSet::new(),
            caches: Vec::new(),
            entries: Vec::new(),
            mappings: Vec::new(),
        };
        self.expand(&mut s)?;
        *self.state.lock() = Some(s);
        Ok(())
    }

    /// Last Release: give every frame's hole page back.
    pub fn release(&self) {
        if let Some(s) = self.state.lock().take() {
            if !s.entries.is_empty() || !s.mappings.is_empty() {
                error!(
                    self.api,
                    "GNTTAB: released with entries or mappings outstanding"
                );
            }
            let hole = self.hole.lock().clone();
            for f in s.frames {
                drop(f.view);
                let _ = crate::hole::free_run(self.api, self.os, hole.as_deref(), f.run);
            }
        }
    }

    /// EARLY suspend callback: re-map every frame (the new host's table is fresh). Runs at
    /// HIGH_LEVEL with every other processor captured at DISPATCH_LEVEL: the state lock (a
    /// DISPATCH_LEVEL lock) is only tried — no captured processor can hold it, so it is
    /// free; were it not, spinning would never end, so the re-map is skipped with an ERROR.
    pub fn suspend_early(&self) {
        let Some(guard) = self.state.try_lock() else {
            error!(self.api, "GNTTAB: busy at resume: frames not re-mapped");
            return;
        };
        let Some(s) = guard.as_ref() else { return };
        for (index, f) in s.frames.iter().enumerate() {
            // HIGH_LEVEL: only the physmap entry is redone; the frame, and so the existing
            // kernel mapping of it (`f.view`), does not move.
            if let Err(e) =
                self.api
                    .memory_add_to_physmap(f.pfn as usize, MapSpace::GRANT_TABLE.0, index)
            {
                error!(self.api, "GNTTAB: frame {index} not re-mapped ({e:08X})");
            }
        }
    }

    /// Frames mapped.
    pub fn frames(&self) -> usize {
        self.state.lock().as_ref().map_or(0, |s| s.frames.len())
    }

    /// The GNTTAB debug dump (upstream's `GnttabDebugCallback` prints the table's first
    /// frame and how many frames are mapped; its caches each dump their own state): frames
    /// mapped of the maximum, references granted, free and foreign mappings, then each cache
    /// with its name, reserved references, outstanding entries and cap. Never spins on the
    /// lock and does not allocate.
    pub fn debug_dump(&self, out: &mut dyn FnMut(&str)) {
        use crate::log::{Dumped, Line};
        crate::log::dump_lines(out, "GNTTAB: busy", |i| {
            let Some(state) = self.state.try_lock() else {
                return Dumped::Busy;
            };
            let Some(s) = state.as_ref() else {
                return match i {
                    0 => Dumped::Line(Line::from_fmt(format_args!("GNTTAB: not acquired"))),
                    _ => Dumped::Done,
                };
            };
            let line = match i {
                0 => format_args!(
                    "GNTTAB: frames {} of {} (first pfn {:#x})",
                    s.frames.len(),
                    s.max_frames,
                    s.frames.first().map_or(0, |f| f.pfn)
                )
                .into(),
                1 => format_args!(
                    "GNTTAB: references granted {} free {} caches {} foreign mappings {} ({} pages)",
                    s.entries.len(),
                    s.free.items(),
                    s.caches.len(),
                    s.mappings.len(),
                    s.mappings.iter().map(|m| m.pages.len()).sum::<usize>()
                )
                .into(),
                i => {
                    let Some(c) = s.caches.get(i - 2) else {
                        return Dumped::Done;
                    };
                    let name = c.name.get(..c.name_len).unwrap_or(&[]);
                    format_args!(
                        "GNTTAB: cache \"{}\" reserved {} outstanding {} cap {}",
                        name.escape_ascii(),
                        c.reserved.len(),
                        c.outstanding,
                        c.cap
                    )
                    .into()
                }
            };
            Dumped::Line(line)
        });
    }

    /// `CreateCache`: `reservation` references kept ready, at most `cap` (0 = unlimited)
    /// entries outstanding; `reservation > cap` is invalid.
    pub fn create_cache(&self, reservation: u32, cap: u32) -> Result<CacheHandle, NtStatus> {
        self.create_named_cache(b"", reservation, cap)
    }

    /// [`Gnttab::create_cache`] with the name the debug dump shows (the first
    /// [`CACHE_NAME_MAX`] bytes).
    pub fn create_named_cache(
        &self,
        name: &[u8],
        reservation: u32,
        cap: u32,
    ) -> Result<CacheHandle, NtStatus> {
        if cap != 0 && reservation > cap {
            return Err(STATUS_INVALID_PARAMETER);
        }
        let mut guard = self.state.lock();
        let s = guard.as_mut().ok_or(STATUS_UNSUCCESSFUL)?;
        let mut reserved = Vec::new();
        reserved
            .try_reserve(reservation as usize)
            .map_err(|_| STATUS_NO_MEMORY)?;
        s.caches.try_reserve(1).map_err(|_| STATUS_NO_MEMORY)?;
        for _ in 0..reservation {
            match self.pop(s) {
                Ok(r) => reserved.push(r),
                Err(e) => {
                    for r in reserved {
                        let _ = s.free.put(i64::from(r), 1);
                    }
                    return Err(e);
                }
            }
        }
        let mut kept = [0u8; CACHE_NAME_MAX];
        let name_len = name.len().min(CACHE_NAME_MAX);
        for (dst, src) in kept.iter_mut().zip(name) {
            *dst = *src;
        }
        let record = Box::new(CacheRecord {
            name: kept,
            name_len,
            reserved,
            outstanding: 0,
            cap,
        });
        let handle = &*record as *const CacheRecord as usize;
        s.caches.push(record);
        Ok(handle)
    }

    /// `DestroyCache`: return its reserved references (its entries must be revoked).
    pub fn destroy_cache(&self, cache: CacheHandle) -> Result<(), NtStatus> {
        let mut guard = self.state.lock();
        let s = guard.as_mut().ok_or(STATUS_UNSUCCESSFUL)?;
        let i = s
            .caches
            .iter()
            .position(|c| &**c as *const CacheRecord as usize == cache)
            .ok_or(STATUS_INVALID_PARAMETER)?;
        if s.caches.get(i).is_some_and(|c| c.outstanding != 0) {
            return Err(STATUS_UNSUCCESSFUL);
        }
        let c = s.caches.swap_remove(i);
        for r in &c.reserved {
            let _ = s.free.put(i64::from(*r), 1);
        }
        Ok(())
    }

    fn pop(&self, s: &mut State) -> Result<u32, NtStatus> {
        if s.free.is_empty() {
            self.expand(s)?;
        }
        let r = s.free.pop(1)?;
        u32::try_from(r).map_err(|_| STATUS_UNSUCCESSFUL)
    }

    /// `PermitForeignAccess`: grant `domain` access to frame `pfn`; domid and frame are
    /// published before `GTF_permit_access`, with barriers.
    pub fn permit(
        &self,
        cache: CacheHandle,
        domain: u16,
        pfn: u64,
        read_only: bool,
    ) -> Result<EntryHandle, NtStatus> {
        let frame = u32::try_from(pfn).map_err(|_| STATUS_INVALID_PARAMETER)?;
        let mut guard = self.state.lock();
        let s = guard.as_mut().ok_or(STATUS_UNSUCCESSFUL)?;
        let ci = s
            .caches
            .iter()
            .position(|c| &**c as *const CacheRecord as usize == cache)
            .ok_or(STATUS_INVALID_PARAMETER)?;
        let (cap, outstanding) = s
            .caches
            .get(ci)
            .map(|c| (c.cap, c.outstanding))
            .ok_or(STATUS_INVALID_PARAMETER)?;
        if cap != 0 && outstanding >= cap {
            return Err(STATUS_INSUFFICIENT_RESOURCES);
        }
        s.entries.try_reserve(1).map_err(|_| STATUS_NO_MEMORY)?;
        let reference = match s.caches.get_mut(ci).and_then(|c| c.reserved.pop()) {
            Some(r) => r,
            None => self.pop(s)?,
        };
        let (f, off) = flags_offset(reference);
        let view = &s.frames.get(f).ok_or(STATUS_UNSUCCESSFUL)?.view;
        let mut flags = GrantEntryFlags::PERMIT_ACCESS;
        if read_only {
            flags |= GrantEntryFlags::READONLY;
        }
        let publish = (|| {
            view.store_u16(off + 2, domain)?;
            view.store_u32(off + 4, frame)?;
            wmb();
            view.store_u16(off, flags.bits())?;
            mb();
            Ok::<(), crate::shared::OutOfBounds>(())
        })();
        if publish.is_err() {
            let _ = s.free.put(i64::from(reference), 1);
            return Err(STATUS_UNSUCCESSFUL);
        }
        if let Some(c) = s.caches.get_mut(ci) {
            c.outstanding += 1;
        }
        let record = Box::new(EntryRecord { reference, cache });
        let handle = &*record as *const EntryRecord as usize;
        s.entries.push(record);
        Ok(handle)
    }

    /// `GetReference`.
    pub fn reference(&self, entry: EntryHandle) -> Option<u32> {
        let guard = self.state.lock();
        guard
            .as_ref()?
            .entries
            .iter()
            .find_map(|e| (&**e as *const EntryRecord as usize == entry).then_some(e.reference))
    }

    /// `RevokeForeignAccess`: clear `GTF_permit_access` unless the grantee has the page
    /// mapped (`GTF_reading`/`GTF_writing`), retrying with a yield up to 100 times; on
    /// success the entry is zeroed and its reference recycled.
    pub fn revoke(&self, entry: EntryHandle) -> Result<(), NtStatus> {
        let (reference, view) = {
            let guard = self.state.lock();
            let s = guard.as_ref().ok_or(STATUS_UNSUCCESSFUL)?;
            let e = s
                .entries
                .iter()
                .find(|e| &***e as *const EntryRecord as usize == entry)
                .ok_or(STATUS_INVALID_PARAMETER)?;
            let (f, _) = flags_offset(e.reference);
            let view = s.frames.get(f).ok_or(STATUS_UNSUCCESSFUL)?.view.clone();
            (e.reference, view)
        };
        let (_, off) = flags_offset(reference);
        let busy = GrantEntryFlags::READING | GrantEntryFlags::WRITING;
        let mut revoked = false;
        for _ in 0..REVOKE_ATTEMPTS {
            let current = view.load_u16(off).map_err(|_| STATUS_UNSUCCESSFUL)?;
            if current & busy.bits() == 0 {
                let new = current & !GrantEntryFlags::PERMIT_ACCESS.bits();
                if view
                    .cas_u16(off, current, new)
                    .map_err(|_| STATUS_UNSUCCESSFUL)?
                    .is_ok()
                {
                    revoked = true;
                    break;
                }
                continue;
            }
            self.api.sched_yield();
        }
        if !revoked {
            error!(
                self.api,
                "GNTTAB: reference {reference} still mapped by the grantee"
            );
            return Err(STATUS_UNSUCCESSFUL);
        }
        let _ = view.zero(off, ENTRY_SIZE);
        mb();
        let mut guard = self.state.lock();
        let s = guard.as_mut().ok_or(STATUS_UNSUCCESSFUL)?;
        if let Some(i) = s
            .entries
            .iter()
            .position(|e| &**e as *const EntryRecord as usize == entry)
        {
            let e = s.entries.swap_remove(i);
            if let Some(c) = s
                .caches
                .iter_mut()
                .find(|c| &***c as *const CacheRecord as usize == e.cache)
            {
                c.outstanding = c.outstanding.saturating_sub(1);
            }
            s.free.put(i64::from(e.reference), 1)?;
        }
        Ok(())
    }

    /// `QueryReference`: the frame and read-only flag of entry `reference` (console = 0,
    /// store = 1); beyond the mapped frames → `STATUS_INVALID_PARAMETER`.
    pub fn query_reference(&self, reference: u32) -> Result<(u64, bool), NtStatus> {
        let guard = self.state.lock();
        let s = guard.as_ref().ok_or(STATUS_UNSUCCESSFUL)?;
        let (f, off) = flags_offset(reference);
        let view = &s.frames.get(f).ok_or(STATUS_INVALID_PARAMETER)?.view;
        let flags = view.load_u16(off).map_err(|_| STATUS_INVALID_PARAMETER)?;
        let frame = view
            .load_u32(off + 4)
            .map_err(|_| STATUS_INVALID_PARAMETER)?;
        Ok((
            u64::from(frame),
            flags & GrantEntryFlags::READONLY.bits() != 0,
        ))
    }

    /// `MapForeignPages`: map `references` of `domain` at consecutive hole frames; returns
    /// the physical address of the first. A partial failure unwinds every mapping.
    pub fn map_foreign_pages(
        &self,
        domain: u16,
        references: &[u32],
        read_only: bool,
    ) -> Result<u64, NtStatus> {
        if references.is_empty() {
            return Err(STATUS_INVALID_PARAMETER);
        }
        let mut pages: Vec<(Page, u32)> = Vec::new();
        pages
            .try_reserve(references.len())
            .map_err(|_| STATUS_NO_MEMORY)?;
        let unwind = |pages: &mut Vec<(Page, u32)>, mapped: bool| {
            for (page, handle) in pages.drain(..) {
                if mapped && handle != u32::MAX {
                    let _ = self
                        .api
                        .grant_table_unmap_foreign_page(handle, page.pfn << 12);
                }
                let _ = crate::hole::free(self.api, self.os, page);
            }
        };
        for _ in references {
            match crate::hole::allocate(self.api, self.os) {
                Ok(p) => pages.push((p, u32::MAX)),
                Err(e) => {
                    unwind(&mut pages, false);
                    return Err(e);
                }
            }
        }
        // The allocator may hand frames back in any order: sort before checking the run.
        pages.sort_unstable_by_key(|(p, _)| p.pfn);
        let contiguous = pages
            .windows(2)
            .all(|w| matches!(w, [(a, _), (b, _)] if b.pfn == a.pfn + 1));
        if !contiguous {
            unwind(&mut pages, false);
            return Err(STATUS_INSUFFICIENT_RESOURCES);
        }
        for (i, reference) in references.iter().enumerate() {
            let Some((page, handle)) = pages.get_mut(i) else {
                break;
            };
            match self.api.grant_table_map_foreign_page(
                domain,
                *reference,
                page.pfn << 12,
                read_only,
            ) {
                Ok(h) => *handle = h,
                Err(e) => {
                    warning!(
                        self.api,
                        "GNTTAB: map of {domain}:{reference} failed ({e:08X})"
                    );
                    unwind(&mut pages, true);
                    return Err(e);
                }
            }
        }
        let address = pages.first().map_or(0, |(p, _)| p.pfn << 12);
        let mut guard = self.state.lock();
        let stored = match guard.as_mut() {
            Some(s) => {
                let room = s.mappings.try_reserve(1).is_ok();
                if room {
                    s.mappings.push(Mapping {
                        address,
                        pages: core::mem::take(&mut pages),
                    });
                }
                room
            }
            None => false,
        };
        drop(guard);
        if stored {
            Ok(address)
        } else {
            unwind(&mut pages, true);
            Err(STATUS_NO_MEMORY)
        }
    }

    /// `UnmapForeignPages`: unmap what [`Gnttab::map_foreign_pages`] returned at `address`.
    pub fn unmap_foreign_pages(&self, address: u64) -> Result<(), NtStatus> {
        let mapping = {
            let mut guard = self.state.lock();
            let s = guard.as_mut().ok_or(STATUS_UNSUCCESSFUL)?;
            let i = s
                .mappings
                .iter()
                .position(|m| m.address == address)
                .ok_or(STATUS_INVALID_PARAMETER)?;
            s.mappings.swap_remove(i)
        };
        let mut result = Ok(());
        for (page, handle) in mapping.pages {
            if let Err(e) = self
                .api
                .grant_table_unmap_foreign_page(handle, page.pfn << 12)
            {
                error!(
                    self.api,
                    "GNTTAB: unmap of handle {handle} failed ({e:08X})"
                );
                result = Err(e);
                continue;
            }
            let _ = crate::hole::free(self.api, self.os, page);
        }
        result
    }
}

#[cfg(test)]
#[path = "gnttab_tests.rs"]
mod tests;
