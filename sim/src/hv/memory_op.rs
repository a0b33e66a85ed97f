//! `memory_op`: add_to_physmap (shared info, grant table), remove_from_physmap, the
//! reservation operations and the domain's memory limit.

use super::abi::*;
use super::memory::Physmap;
use super::{copy_from_guest, copy_to_guest, Errno, P2m, State};

impl State {
    /// The machine frame behind a guest frame, whatever it holds.
    pub fn frame_of(&self, gfn: u64) -> Option<u64> {
        match self.p2m.get(gfn as usize)? {
            P2m::Invalid => None,
            P2m::Ram(mfn) => Some(*mfn),
            P2m::SharedInfo => Some(self.shared_info_mfn),
            P2m::GrantFrame(n) => self.gnttab.frames.get(*n as usize).copied(),
            P2m::Foreign { mfn, .. } => Some(*mfn),
        }
    }

    /// Clear a guest frame, freeing RAM it held (the guest_remove_page path).
    pub fn clear_gfn(&mut self, physmap: &Physmap, gfn: u64) {
        if let Some(P2m::Ram(mfn)) = self.p2m.get(gfn as usize).copied() {
            self.release_frame(mfn);
            self.tot_pages -= 1;
        }
        if let Some(e) = self.p2m.get_mut(gfn as usize) {
            *e = P2m::Invalid;
        }
        // The reservation is ours; failure here means the host is out of mappings.
        physmap.unmap(gfn).expect("physmap unmap");
    }

    /// Point a guest frame at `entry` (which must not be `Ram` or `Invalid`), replacing what
    /// it held, and remove `entry` from any other frame that held it.
    pub fn map_special(&mut self, physmap: &Physmap, gfn: u64, entry: P2m) -> Result<(), Errno> {
        if gfn as usize >= self.p2m.len() {
            return Err(Errno::EINVAL);
        }
        if let Some(old) = self.p2m.iter().position(|e| *e == entry) {
            if old as u64 != gfn {
                self.clear_gfn(physmap, old as u64);
            }
        }
        if self.p2m[gfn as usize] != entry {
            self.clear_gfn(physmap, gfn);
        }
        self.p2m[gfn as usize] = entry;
        let mfn = self.frame_of(gfn).ok_or(Errno::EINVAL)?;
        physmap.map(&self.mem, gfn, mfn, 1).expect("physmap map");
        Ok(())
    }

    pub(super) fn memory_op(
        &mut self,
        physmap: &Physmap,
        args: [usize; 5],
    ) -> Result<isize, Errno> {
        let cmd = MemoryOp((args[0] & 0x3f) as u32);
        match cmd {
            MemoryOp::ADD_TO_PHYSMAP => {
                // SAFETY: the caller passes a pointer to its xen_add_to_physmap.
                let a: XenAddToPhysmap = unsafe { copy_from_guest(args[1])? };
                if !self.is_self(a.domid) {
                    return Err(Errno::EPERM);
                }
                match a.space {
                    MapSpace::SHARED_INFO => {
                        if a.idx != 0 {
                            return Err(Errno::EINVAL);
                        }
                        self.map_special(physmap, a.gpfn, P2m::SharedInfo)?;
                    }
                    MapSpace::GRANT_TABLE => {
                        if a.idx & XENMAPIDX_GRANT_TABLE_STATUS != 0 {
                            return Err(Errno::EINVAL); // status frames exist only in v2
                        }
                        let idx = a.idx as u32;
                        self.gnttab_grow(idx + 1)?;
                        self.map_special(physmap, a.gpfn, P2m::GrantFrame(idx))?;
                    }
                    _ => return Err(Errno::EINVAL),
                }
                Ok(0)
            }
            MemoryOp::REMOVE_FROM_PHYSMAP => {
                // SAFETY: the caller passes a pointer to its xen_remove_from_physmap.
                let a: XenRemoveFromPhysmap = unsafe { copy_from_guest(args[1])? };
                if !self.is_self(a.domid) {
                    return Err(Errno::EPERM);
                }
                match self.p2m.get(a.gpfn as usize) {
                    None | Some(P2m::Invalid) => Err(Errno::ENOENT),
                    Some(P2m::Foreign { .. }) => Err(Errno::EINVAL),
                    Some(_) => {
                        self.clear_gfn(physmap, a.gpfn);
                        Ok(0)
                    }
                }
            }
            MemoryOp::DECREASE_RESERVATION
            | MemoryOp::POPULATE_PHYSMAP
            | MemoryOp::INCREASE_RESERVATION => {
                // SAFETY: the caller passes a pointer to its xen_memory_reservation.
                let r: XenMemoryReservation = unsafe { copy_from_guest(args[1])? };
                if !self.is_self(r.domid) {
                    return Err(Errno::EPERM);
                }
                if r.extent_order > 9 {
                    return Err(Errno::EINVAL);
                }
                if cmd == MemoryOp::INCREASE_RESERVATION {
                    // Only meaningful for PV guests (returns machine frames).
                    return Err(Errno::ENOSYS);
                }
                let pages = 1u64 << r.extent_order;
                let mut done = 0u64;
                for i in 0..r.nr_extents {
                    let addr = (r.extent_start.address() as usize).wrapping_add(i as usize * 8);
                    // SAFETY: the caller passes an array of nr_extents xen_pfn_t.
                    let gfn: u64 = unsafe { copy_from_guest(addr)? };
                    if !gfn.is_multiple_of(pages) || gfn + pages > self.p2m.len() as u64 {
                        break;
                    }
                    let range = gfn..gfn + pages;
                    if cmd == MemoryOp::DECREASE_RESERVATION {
                        if !range.clone().all(|g| self.ram_mfn(g).is_some()) {
                            break;
                        }
                        for g in range {
                            self.clear_gfn(physmap, g);
                        }
                    } else {
                        if !range.clone().all(|g| self.p2m[g as usize] == P2m::Invalid) {
                            break;
                        }
                        if self.tot_pages + pages > self.max_pages
                            || self.mem.free_frames() < pages as usize
                        {
                            break;
                        }
                        for g in range {
                            let mfn = self.mem.alloc().ok_or(Errno::ENOMEM)?;
                            self.p2m[g as usize] = P2m::Ram(mfn);
                            self.tot_pages += 1;
                            physmap.map(&self.mem, g, mfn, 1).expect("physmap map");
                        }
                        // SAFETY: as above; populate writes the frame back (unchanged on HVM).
                        unsafe { copy_to_guest(addr, &gfn)? };
                    }
                    done += 1;
                }
                Ok(done as isize)
            }
            MemoryOp::CURRENT_RESERVATION | MemoryOp::MAXIMUM_RESERVATION => {
                // SAFETY: the argument is a domid_t.
                let dom: DomId = unsafe { copy_from_guest(args[1])? };
                if !self.is_self(dom) {
                    return Err(Errno::EPERM);
                }
                Ok(if cmd == MemoryOp::CURRENT_RESERVATION {
                    self.tot_pages
                } else {
                    self.max_pages
                } as isize)
            }
            _ => Err(Errno::ENOSYS),
        }
    }
}
