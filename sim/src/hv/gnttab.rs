//! `grant_table_op` (v1): the guest's grant table frames; grants seen from the backend side
//! (mapping and copying the guest's granted pages, with Xen's GTF_reading/GTF_writing
//! updates) and from the guest side (mapping and copying pages a backend domain granted).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use super::abi::*;
use super::memory::{Physmap, PAGE_SIZE};
use super::{copy_from_guest, copy_to_guest, Errno, P2m, State};

/// Bytes per v1 grant entry.
const ENTRY_SIZE: usize = 8;
/// v1 entries per frame.
pub const ENTRIES_PER_FRAME: u32 = (PAGE_SIZE / ENTRY_SIZE) as u32;

/// A page a backend domain granted to the guest.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BackendGrant {
    pub mfn: u64,
    pub readonly: bool,
    pub to: u16,
}

/// A backend's mapping of one of the guest's grants.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BackendMapping {
    pub backend: u16,
    pub gref: u32,
    pub mfn: u64,
    pub readonly: bool,
}

/// The guest's mapping of a backend's grant.
#[derive(Clone, Copy, Debug)]
pub(crate) struct GuestMapping {
    pub gfn: u64,
    pub backend: u16,
    pub gref: u32,
}

/// Grant table state.
#[derive(Default)]
pub(crate) struct GrantTable {
    /// Machine frames of the guest's table (v1 entries, 512 per frame).
    pub frames: Vec<u64>,
    /// `max_grant_frames`.
    pub max_frames: u32,
    /// Pages granted by backend domains: (domain, gref) → grant.
    pub backend_grants: BTreeMap<(u16, u32), BackendGrant>,
    /// Next gref per backend domain.
    pub backend_next_ref: BTreeMap<u16, u32>,
    /// Backend mappings of guest grants by handle.
    pub backend_maps: BTreeMap<u32, BackendMapping>,
    /// Guest mappings of backend grants by handle.
    pub guest_maps: BTreeMap<u32, GuestMapping>,
    pub next_handle: u32,
}

impl GrantTable {
    pub fn new(max_frames: u32) -> Self {
        GrantTable {
            max_frames,
            ..Default::default()
        }
    }
}

impl State {
    /// Grow the table to at least `frames` frames (gnttab_grow_table).
    pub fn gnttab_grow(&mut self, frames: u32) -> Result<(), Errno> {
        if frames > self.gnttab.max_frames {
            return Err(Errno::EINVAL);
        }
        while (self.gnttab.frames.len() as u32) < frames {
            let mfn = self.mem.alloc().ok_or(Errno::ENOMEM)?;
            self.gnttab.frames.push(mfn);
        }
        Ok(())
    }

    /// Location (machine frame, offset) of a v1 grant entry, if the table has it.
    pub fn gnttab_entry_loc(&self, gref: u32) -> Option<(u64, usize)> {
        let frame = *self
            .gnttab
            .frames
            .get((gref / ENTRIES_PER_FRAME) as usize)?;
        Some((frame, (gref % ENTRIES_PER_FRAME) as usize * ENTRY_SIZE))
    }

    /// Write a whole v1 entry (flags last, as a granting domain does).
    pub fn gnttab_write_entry(&mut self, gref: u32, flags: u16, domid: u16, frame: u32) {
        if let Some((mfn, off)) = self.gnttab_entry_loc(gref) {
            self.mem
                .atomic_u16(mfn, off + 2)
                .store(domid, Ordering::SeqCst);
            self.mem
                .atomic_u32(mfn, off + 4)
                .store(frame, Ordering::SeqCst);
            self.mem.atomic_u16(mfn, off).store(flags, Ordering::SeqCst);
        }
    }

    /// Read a v1 entry: (flags, domid, frame).
    pub fn gnttab_read_entry(&self, gref: u32) -> Option<(u16, u16, u32)> {
        let (mfn, off) = self.gnttab_entry_loc(gref)?;
        Some((
            self.mem.atomic_u16(mfn, off).load(Ordering::SeqCst),
            self.mem.atomic_u16(mfn, off + 2).load(Ordering::SeqCst),
            self.mem.atomic_u32(mfn, off + 4).load(Ordering::SeqCst),
        ))
    }

    fn pin(&mut self, mfn: u64) {
        *self.pinned.entry(mfn).or_insert(0) += 1;
    }

    fn unpin(&mut self, mfn: u64) {
        if let Some(c) = self.pinned.get_mut(&mfn) {
            *c -= 1;
            if *c == 0 {
                self.pinned.remove(&mfn);
                if let Some(i) = self.zombies.iter().position(|z| *z == mfn) {
                    self.zombies.swap_remove(i);
                    self.mem.free(mfn);
                }
            }
        }
    }

    /// Xen's `_set_status_v1` for a backend pinning guest grant `gref`: validate the entry
    /// and set GTF_reading (and GTF_writing unless read-only). Returns the machine frame.
    fn acquire_guest_grant(
        &mut self,
        backend: u16,
        gref: u32,
        readonly: bool,
    ) -> Result<u64, GrantStatus> {
        let (mfn_e, off) = self.gnttab_entry_loc(gref).ok_or(GrantStatus::BAD_GNTREF)?;
        let word = self.mem.atomic_u32(mfn_e, off); // flags (low 16) | domid (high 16)
        for _ in 0..4 {
            let cur = word.load(Ordering::SeqCst);
            let (flags, domid) = (cur as u16, (cur >> 16) as u16);
            if flags & GrantEntryFlags::TYPE_MASK.bits() != GrantEntryFlags::PERMIT_ACCESS.bits()
                || domid != backend
            {
                return Err(GrantStatus::GENERAL_ERROR);
            }
            if !readonly && flags & GrantEntryFlags::READONLY.bits() != 0 {
                return Err(GrantStatus::GENERAL_ERROR);
            }
            let mut new = flags | GrantEntryFlags::READING.bits();
            if !readonly {
                new |= GrantEntryFlags::WRITING.bits();
            }
            let next = (cur & 0xFFFF_0000) | new as u32;
            if word
                .compare_exchange(cur, next, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
            {
                let frame = self.mem.atomic_u32(mfn_e, off + 4).load(Ordering::SeqCst) as u64;
                return match self.ram_mfn(frame) {
                    Some(mfn) => Ok(mfn),
                    None => {
                        self.release_guest_grant_flags(gref);
                        Err(GrantStatus::BAD_PAGE)
                    }
                };
            }
        }
        Err(GrantStatus::GENERAL_ERROR) // the entry kept changing under us
    }

    /// Recompute GTF_reading/GTF_writing of a guest entry from the mappings that remain.
    fn release_guest_grant_flags(&mut self, gref: u32) {
        let (readers, writers) = self
            .gnttab
            .backend_maps
            .values()
            .filter(|m| m.gref == gref)
            .fold((0, 0), |(r, w), m| (r + 1, w + usize::from(!m.readonly)));
        if let Some((mfn, off)) = self.gnttab_entry_loc(gref) {
            let flags = self.mem.atomic_u16(mfn, off);
            if writers == 0 {
                flags.fetch_and(!GrantEntryFlags::WRITING.bits(), Ordering::SeqCst);
            }
            if readers == 0 {
                flags.fetch_and(!GrantEntryFlags::READING.bits(), Ordering::SeqCst);
            }
        }
    }

    /// A backend maps a guest grant. Returns (handle, machine frame).
    pub fn backend_map(
        &mut self,
        backend: u16,
        gref: u32,
        readonly: bool,
    ) -> Result<(u32, u64), GrantStatus> {
        let mfn = self.acquire_guest_grant(backend, gref, readonly)?;
        self.pin(mfn);
        self.gnttab.next_handle += 1;
        let handle = self.gnttab.next_handle;
        self.gnttab.backend_maps.insert(
            handle,
            BackendMapping {
                backend,
                gref,
                mfn,
                readonly,
            },
        );
        Ok((handle, mfn))
    }

    /// A backend unmaps a guest grant.
    pub fn backend_unmap(&mut self, backend: u16, handle: u32) -> Result<(), GrantStatus> {
        match self.gnttab.backend_maps.get(&handle) {
            Some(m) if m.backend == backend => {}
            _ => return Err(GrantStatus::BAD_HANDLE),
        }
        let m = self
            .gnttab
            .backend_maps
            .remove(&handle)
            .ok_or(GrantStatus::BAD_HANDLE)?;
        self.release_guest_grant_flags(m.gref);
        self.unpin(m.mfn);
        Ok(())
    }

    /// A backend copies to/from a guest grant (GNTTABOP_copy issued by the backend).
    pub fn backend_copy(
        &mut self,
        backend: u16,
        gref: u32,
        offset: usize,
        data: &mut [u8],
        to_guest: bool,
    ) -> Result<(), GrantStatus> {
        if offset + data.len() > PAGE_SIZE {
            return Err(GrantStatus::BAD_COPY_ARG);
        }
        let mfn = self.acquire_guest_grant(backend, gref, !to_guest)?;
        if to_guest {
            self.mem.write(mfn, offset, data);
        } else {
            self.mem.read(mfn, offset, data);
        }
        self.release_guest_grant_flags(gref);
        Ok(())
    }

    /// A backend grants one of its pages to the guest. Returns the grant reference.
    pub fn backend_grant(&mut self, backend: u16, mfn: u64, readonly: bool) -> u32 {
        let next = self.gnttab.backend_next_ref.entry(backend).or_insert(8);
        let gref = *next;
        *next += 1;
        let to = self.cfg.domid;
        self.gnttab
            .backend_grants
            .insert((backend, gref), BackendGrant { mfn, readonly, to });
        gref
    }

    fn backend_grant_for_guest(
        &self,
        dom: u16,
        gref: u32,
        write: bool,
    ) -> Result<u64, GrantStatus> {
        if !self.evtchn.domains.contains_key(&dom) || dom == self.cfg.domid {
            return Err(GrantStatus::BAD_DOMAIN);
        }
        let g = self
            .gnttab
            .backend_grants
            .get(&(dom, gref))
            .ok_or(GrantStatus::BAD_GNTREF)?;
        if g.to != self.cfg.domid {
            return Err(GrantStatus::PERMISSION_DENIED);
        }
        if write && g.readonly {
            return Err(GrantStatus::GENERAL_ERROR);
        }
        Ok(g.mfn)
    }

    /// Drop every grant mapping of either direction and the table itself (restore on a
    /// new host: the old backends and the old grant frames are gone).
    pub fn gnttab_reset(&mut self, physmap: &Physmap) {
        let guest_maps: Vec<u64> = self.gnttab.guest_maps.values().map(|m| m.gfn).collect();
        for gfn in guest_maps {
            self.clear_gfn(physmap, gfn);
        }
        self.gnttab.guest_maps.clear();
        let mapped: Vec<u64> = self.gnttab.backend_maps.values().map(|m| m.mfn).collect();
        self.gnttab.backend_maps.clear();
        for mfn in mapped {
            self.unpin(mfn);
        }
        for (i, e) in self.p2m.clone().iter().enumerate() {
            if matches!(e, P2m::GrantFrame(_)) {
                self.clear_gfn(physmap, i as u64);
            }
        }
        for mfn in std::mem::take(&mut self.gnttab.frames) {
            self.mem.free(mfn);
        }
    }

    pub(super) fn grant_table_op(
        &mut self,
        physmap: &Physmap,
        args: [usize; 5],
    ) -> Result<isize, Errno> {
        let cmd = GnttabOp(args[0] as u32);
        let uop = args[1];
        let count = args[2];
        if count > 512 {
            return Err(Errno::EINVAL);
        }
        match cmd {
            GnttabOp::MAP_GRANT_REF => {
                for i in 0..count {
                    let addr = uop + i * std::mem::size_of::<GnttabMapGrantRef>();
                    // SAFETY: the caller passes `count` gnttab_map_grant_ref structures.
                    let mut op: GnttabMapGrantRef = unsafe { copy_from_guest(addr)? };
                    match self.guest_map(physmap, &op) {
                        Ok((handle, mfn)) => {
                            op.status = GrantStatus::OKAY;
                            op.handle = handle;
                            op.dev_bus_addr = mfn << 12;
                        }
                        Err(st) => op.status = st,
                    }
                    // SAFETY: as above.
                    unsafe { copy_to_guest(addr, &op)? };
                }
                Ok(0)
            }
            GnttabOp::UNMAP_GRANT_REF => {
                for i in 0..count {
                    let addr = uop + i * std::mem::size_of::<GnttabUnmapGrantRef>();
                    // SAFETY: the caller passes `count` gnttab_unmap_grant_ref structures.
                    let mut op: GnttabUnmapGrantRef = unsafe { copy_from_guest(addr)? };
                    op.status = match self.gnttab.guest_maps.get(&op.handle).copied() {
                        None => GrantStatus::BAD_HANDLE,
                        Some(m) if m.gfn != op.host_addr >> 12 => GrantStatus::GENERAL_ERROR,
                        Some(m) => {
                            self.gnttab.guest_maps.remove(&op.handle);
                            self.p2m[m.gfn as usize] = P2m::Invalid;
                            physmap.unmap(m.gfn).expect("physmap unmap");
                            GrantStatus::OKAY
                        }
                    };
                    // SAFETY: as above.
                    unsafe { copy_to_guest(addr, &op)? };
                }
                Ok(0)
            }
            GnttabOp::COPY => {
                for i in 0..count {
                    let addr = uop + i * std::mem::size_of::<GnttabCopy>();
                    // SAFETY: the caller passes `count` gnttab_copy structures.
                    let mut op: GnttabCopy = unsafe { copy_from_guest(addr)? };
                    op.status = match self.guest_copy(&op) {
                        Ok(()) => GrantStatus::OKAY,
                        Err(st) => st,
                    };
                    // SAFETY: as above.
                    unsafe { copy_to_guest(addr, &op)? };
                }
                Ok(0)
            }
            GnttabOp::QUERY_SIZE => {
                // SAFETY: the caller passes its gnttab_query_size.
                let mut op: GnttabQuerySize = unsafe { copy_from_guest(uop)? };
                if self.is_self(op.dom) {
                    op.nr_frames = self.gnttab.frames.len() as u32;
                    op.max_nr_frames = self.gnttab.max_frames;
                    op.status = GrantStatus::OKAY;
                } else if self.evtchn.domains.contains_key(&op.dom.0) {
                    op.status = GrantStatus::PERMISSION_DENIED;
                } else {
                    op.status = GrantStatus::BAD_DOMAIN;
                }
                // SAFETY: as above.
                unsafe { copy_to_guest(uop, &op)? };
                Ok(0)
            }
            GnttabOp::SET_VERSION => {
                // SAFETY: the caller passes its gnttab_set_version.
                let mut op: GnttabSetVersion = unsafe { copy_from_guest(uop)? };
                let r = match op.version {
                    1 => Ok(0),
                    2 => Err(Errno::ENOSYS), // v2 is not modelled; upstream XenBus uses v1 only
                    _ => Err(Errno::EINVAL),
                };
                op.version = 1;
                // SAFETY: as above.
                unsafe { copy_to_guest(uop, &op)? };
                r
            }
            GnttabOp::GET_VERSION => {
                // SAFETY: the caller passes its gnttab_get_version.
                let mut op: GnttabGetVersion = unsafe { copy_from_guest(uop)? };
                if !self.is_self(op.dom) {
                    return Err(Errno::EPERM);
                }
                op.version = 1;
                // SAFETY: as above.
                unsafe { copy_to_guest(uop, &op)? };
                Ok(0)
            }
            _ => Err(Errno::ENOSYS),
        }
    }

    fn guest_map(
        &mut self,
        physmap: &Physmap,
        op: &GnttabMapGrantRef,
    ) -> Result<(u32, u64), GrantStatus> {
        if op.flags & GntMapFlags::HOST_MAP.bits() == 0 {
            return Err(GrantStatus::GENERAL_ERROR);
        }
        let write = op.flags & GntMapFlags::READONLY.bits() == 0;
        let mfn = self.backend_grant_for_guest(op.dom.0, op.reference, write)?;
        let gfn = op.host_addr >> 12;
        if !op.host_addr.is_multiple_of(PAGE_SIZE as u64) || gfn >= self.p2m.len() as u64 {
            return Err(GrantStatus::BAD_VIRT_ADDR);
        }
        if matches!(self.p2m[gfn as usize], P2m::Foreign { .. }) {
            return Err(GrantStatus::GENERAL_ERROR);
        }
        self.clear_gfn(physmap, gfn);
        self.gnttab.next_handle += 1;
        let handle = self.gnttab.next_handle;
        self.p2m[gfn as usize] = P2m::Foreign { mfn, handle };
        physmap.map(&self.mem, gfn, mfn, 1).expect("physmap map");
        self.gnttab.guest_maps.insert(
            handle,
            GuestMapping {
                gfn,
                backend: op.dom.0,
                gref: op.reference,
            },
        );
        Ok((handle, mfn))
    }

    fn copy_side(&self, p: &GnttabCopyPtr, is_gref: bool, write: bool) -> Result<u64, GrantStatus> {
        if is_gref {
            self.backend_grant_for_guest(p.domid.0, p.u as u32, write)
        } else {
            if !self.is_self(p.domid) {
                return Err(GrantStatus::PERMISSION_DENIED);
            }
            self.ram_mfn(p.u).ok_or(GrantStatus::BAD_PAGE)
        }
    }

    fn guest_copy(&mut self, op: &GnttabCopy) -> Result<(), GrantStatus> {
        let len = op.len as usize;
        if op.source.offset as usize + len > PAGE_SIZE || op.dest.offset as usize + len > PAGE_SIZE
        {
            return Err(GrantStatus::BAD_COPY_ARG);
        }
        let src = self.copy_side(
            &op.source,
            op.flags & GntCopyFlags::SOURCE_GREF.bits() != 0,
            false,
        )?;
        let dst = self.copy_side(
            &op.dest,
            op.flags & GntCopyFlags::DEST_GREF.bits() != 0,
            true,
        )?;
        let mut buf = vec![0u8; len];
        self.mem.read(src, op.source.offset as usize, &mut buf);
        self.mem.write(dst, op.dest.offset as usize, &buf);
        Ok(())
    }
}
