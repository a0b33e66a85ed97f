//! The FIFO event channel ABI: per-vCPU control blocks with 16 priority queues, event words
//! in guest-provided array pages, and Xen's linking rules (PENDING, MASKED, LINKED, BUSY).

use std::sync::atomic::{AtomicU32, Ordering};

use super::abi::*;
use super::{Errno, State};

const PENDING: u32 = 1 << EVTCHN_FIFO_PENDING;
const MASKED: u32 = 1 << EVTCHN_FIFO_MASKED;
const LINKED: u32 = 1 << EVTCHN_FIFO_LINKED;
const BUSY: u32 = 1 << EVTCHN_FIFO_BUSY;
const WORDS_PER_PAGE: u32 = (super::memory::PAGE_SIZE / 4) as u32;

impl State {
    fn fifo_word(&self, port: u32) -> Option<&AtomicU32> {
        let page = *self
            .evtchn
            .fifo_array
            .get((port / WORDS_PER_PAGE) as usize)?;
        Some(
            self.mem
                .atomic_u32(page, (port % WORDS_PER_PAGE) as usize * 4),
        )
    }

    /// EVTCHNOP_init_control.
    pub(super) fn fifo_init_control(
        &mut self,
        gfn: u64,
        offset: u32,
        vcpu: u32,
    ) -> Result<(), Errno> {
        if !self.cfg.fifo_supported {
            return Err(Errno::ENOSYS);
        }
        let offset = offset as usize;
        if !offset.is_multiple_of(8)
            || offset + EVTCHN_FIFO_CONTROL_BLOCK_SIZE > super::memory::PAGE_SIZE
        {
            return Err(Errno::EINVAL);
        }
        if vcpu as usize >= self.vcpus.len() {
            return Err(Errno::ENOENT);
        }
        let mfn = self.ram_mfn(gfn).ok_or(Errno::EINVAL)?;
        if self.vcpus[vcpu as usize].fifo_cb.is_some() {
            return Err(Errno::EINVAL);
        }
        if !self.evtchn.fifo {
            // Switch the domain to FIFO: pending state carries over from the 2-level bitmap.
            let guest = self.cfg.domid;
            let si = self.shared_info_mfn;
            let pending: Vec<bool> = {
                let d = self.evtchn.dom(guest)?;
                (0..d.ports.len())
                    .map(|p| {
                        self.mem
                            .atomic_u64(si, SHARED_INFO_EVTCHN_PENDING + (p / 64) * 8)
                            .load(Ordering::SeqCst)
                            & (1u64 << (p % 64))
                            != 0
                    })
                    .collect()
            };
            let d = self.evtchn.dom_mut(guest)?;
            for (port, p) in d.ports.iter_mut().enumerate().skip(1) {
                p.pending = pending[port];
                p.priority = EVTCHN_FIFO_PRIORITY_DEFAULT;
                p.last_queue = None;
            }
            self.evtchn.fifo = true;
            self.evtchn.fifo_array.clear();
            for v in self.vcpus.iter_mut() {
                v.fifo_tail = [0; 16];
            }
        }
        self.vcpus[vcpu as usize].fifo_cb = Some((mfn, offset));
        Ok(())
    }

    /// EVTCHNOP_expand_array.
    pub(super) fn fifo_expand_array(&mut self, gfn: u64) -> Result<(), Errno> {
        if !self.evtchn.fifo {
            return Err(Errno::EOPNOTSUPP);
        }
        let mfn = self.ram_mfn(gfn).ok_or(Errno::EINVAL)?;
        let slot = self.evtchn.fifo_array.len() as u32;
        if slot >= EVTCHN_FIFO_NR_CHANNELS / WORDS_PER_PAGE {
            return Err(Errno::ENOSPC);
        }
        self.evtchn.fifo_array.push(mfn);
        // Events that became pending while their word had no page are linked now.
        let guest = self.cfg.domid;
        let first = slot * WORDS_PER_PAGE;
        let carried: Vec<(u32, u32)> = self
            .evtchn
            .dom(guest)?
            .ports
            .iter()
            .enumerate()
            .skip(first as usize)
            .take(WORDS_PER_PAGE as usize)
            .filter(|(_, p)| p.pending)
            .map(|(i, p)| (i as u32, p.vcpu))
            .collect();
        for (port, vcpu) in carried {
            if let Ok(d) = self.evtchn.dom_mut(guest) {
                d.ports[port as usize].pending = false;
            }
            self.fifo_set_pending(port, vcpu);
        }
        Ok(())
    }

    /// Back to the 2-level ABI (EVTCHNOP_reset, restore).
    pub(super) fn fifo_destroy(&mut self) {
        self.evtchn.fifo = false;
        self.evtchn.fifo_array.clear();
        for v in self.vcpus.iter_mut() {
            v.fifo_cb = None;
            v.fifo_tail = [0; 16];
        }
    }

    pub(super) fn fifo_clear_pending(&mut self, port: u32) {
        if let Some(w) = self.fifo_word(port) {
            w.fetch_and(!PENDING, Ordering::SeqCst);
        }
        let guest = self.cfg.domid;
        if let Ok(d) = self.evtchn.dom_mut(guest) {
            if let Some(p) = d.ports.get_mut(port as usize) {
                p.pending = false;
            }
        }
    }

    /// EVTCHNOP_unmask under FIFO: clear MASKED and re-link if pending.
    pub(super) fn fifo_unmask(&mut self, port: u32, vcpu: u32) {
        let Some(w) = self.fifo_word(port) else {
            return;
        };
        let old = w.fetch_and(!MASKED, Ordering::SeqCst);
        if old & PENDING != 0 {
            self.fifo_set_pending(port, vcpu);
        }
    }

    /// Xen's `evtchn_fifo_set_link`: point a LINKED tail word at `link`, taking the BUSY
    /// bit when the guest races. Returns false when the tail was no longer linked.
    fn fifo_set_link(word: &AtomicU32, link: u32) -> bool {
        let try_set = |w: u32| -> Result<bool, ()> {
            if w & LINKED == 0 {
                return Ok(false);
            }
            let new = (w & !(BUSY | EVTCHN_FIFO_LINK_MASK)) | link;
            match word.compare_exchange(w, new, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => Ok(true),
                Err(_) => Err(()),
            }
        };
        if let Ok(r) = try_set(word.load(Ordering::SeqCst)) {
            return r;
        }
        for _ in 0..4 {
            word.fetch_or(BUSY, Ordering::SeqCst);
            match try_set(word.load(Ordering::SeqCst)) {
                Ok(true) => return true,
                Ok(false) => {
                    word.fetch_and(!BUSY, Ordering::SeqCst);
                    return false;
                }
                Err(()) => {}
            }
        }
        word.fetch_and(!BUSY, Ordering::SeqCst);
        true
    }

    /// Xen's `evtchn_fifo_set_pending`.
    pub(super) fn fifo_set_pending(&mut self, port: u32, vcpu: u32) {
        let guest = self.cfg.domid;
        let Some(word) = self.fifo_word(port) else {
            if let Ok(d) = self.evtchn.dom_mut(guest) {
                if let Some(p) = d.ports.get_mut(port as usize) {
                    p.pending = true;
                }
            }
            return;
        };
        word.fetch_or(PENDING, Ordering::SeqCst);
        let w = word.load(Ordering::SeqCst);
        if w & (MASKED | LINKED) != 0 {
            return;
        }
        let Some(cb) = self.vcpus.get(vcpu as usize).and_then(|v| v.fifo_cb) else {
            return;
        };
        let Some(p) = self
            .evtchn
            .dom(guest)
            .ok()
            .and_then(|d| d.ports.get(port as usize).copied())
        else {
            return;
        };
        let prio = p.priority.min(EVTCHN_FIFO_MAX_QUEUES as u32 - 1);
        // If this event was the tail of its old queue, that queue is now empty.
        if let Some((ov, op)) = p.last_queue {
            if let Some(v) = self.vcpus.get_mut(ov as usize) {
                if v.fifo_tail[op as usize] == port {
                    v.fifo_tail[op as usize] = 0;
                }
            }
        }
        if self.evtchn.dom_mut(guest).is_ok_and(|d| {
            d.ports[port as usize].last_queue = Some((vcpu, prio));
            true
        }) && self
            .fifo_word(port)
            .is_some_and(|w| w.fetch_or(LINKED, Ordering::SeqCst) & LINKED != 0)
        {
            return;
        }
        let tail = self.vcpus[vcpu as usize].fifo_tail[prio as usize];
        let linked = tail != 0
            && self
                .fifo_word(tail)
                .is_some_and(|tw| Self::fifo_set_link(tw, port));
        let (mfn, off) = cb;
        if !linked {
            self.mem
                .atomic_u32(mfn, off + EVTCHN_FIFO_CONTROL_HEAD + prio as usize * 4)
                .store(port, Ordering::SeqCst);
        }
        self.vcpus[vcpu as usize].fifo_tail[prio as usize] = port;
        if !linked {
            let ready = self.mem.atomic_u32(mfn, off + EVTCHN_FIFO_CONTROL_READY);
            if ready.fetch_or(1 << prio, Ordering::SeqCst) & (1 << prio) == 0 {
                self.mark_events_pending(vcpu);
            }
        }
    }
}
