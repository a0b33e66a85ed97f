//! The FIFO event-channel ABI (spec §5.8): a control block per vCPU
//! (`EVTCHNOP_init_control`), event-array pages added on demand with every new word MASKED
//! (`EVTCHNOP_expand_array`), the priority walk with CAS unlink, and the reset that leaves
//! the ABI while keeping the store and console channels bound.
#![forbid(unsafe_code)]

use alloc::vec::Vec;
use core::mem::offset_of;

use common::os::{Os, Page};
use common::sync::HighLock;
use xen_include::api::XenApi;
use xen_include::status::{
    NtStatus, STATUS_INVALID_PARAMETER, STATUS_NO_MEMORY, STATUS_UNSUCCESSFUL,
};
use xen_include::xen::event_channel::{
    EvtchnFifoControlBlock, EVTCHN_FIFO_BUSY, EVTCHN_FIFO_EVENT_WORDS_PER_PAGE, EVTCHN_FIFO_LINKED,
    EVTCHN_FIFO_LINK_MASK, EVTCHN_FIFO_MASKED, EVTCHN_FIFO_MAX_QUEUES, EVTCHN_FIFO_NR_CHANNELS,
    EVTCHN_FIFO_PENDING,
};
use xen_include::xen::hvm::params::HvmParam;

use crate::shared::{rmb, SharedMemory};
use crate::shared_info::SharedInfo;

const READY: usize = offset_of!(EvtchnFifoControlBlock, ready);
const HEAD: usize = offset_of!(EvtchnFifoControlBlock, head);
const PENDING: u32 = 1 << EVTCHN_FIFO_PENDING;
const MASKED: u32 = 1 << EVTCHN_FIFO_MASKED;
const LINKED: u32 = 1 << EVTCHN_FIFO_LINKED;
const BUSY: u32 = 1 << EVTCHN_FIFO_BUSY;

struct Control {
    page: Page,
    block: SharedMemory,
    /// Saved queue heads (the walk resumes where it stopped).
    heads: [u32; EVTCHN_FIFO_MAX_QUEUES],
}

struct State {
    control: Vec<Option<Control>>,
    array: Vec<(Page, SharedMemory)>,
}

/// The FIFO ABI of one driver instance.
pub struct Fifo {
    api: &'static dyn XenApi,
    os: &'static dyn Os,
    state: HighLock<State>,
}

impl Fifo {
    /// Switch to the FIFO ABI: a zeroed control block per processor with a vCPU id. Any
    /// failure undoes what was done (reset) and reports it, so the caller falls back to the
    /// 2-level ABI.
    pub fn acquire(
        api: &'static dyn XenApi,
        os: &'static dyn Os,
        shared_info: &SharedInfo,
    ) -> Result<Self, NtStatus> {
        let cpus = os.processor_count();
        // Room for every control block and every event page there can be, so the HIGH_LEVEL
        // lock never has to allocate.
        let mut control = Vec::new();
        let mut array = Vec::new();
        control
            .try_reserve_exact(cpus as usize)
            .and_then(|()| {
                array.try_reserve_exact(
                    EVTCHN_FIFO_NR_CHANNELS.div_ceil(EVTCHN_FIFO_EVENT_WORDS_PER_PAGE) as usize,
                )
            })
            .map_err(|_| STATUS_NO_MEMORY)?;
        let fifo = Self {
            api,
            os,
            state: HighLock::new(State { control, array }),
        };
        for cpu in 0..cpus {
            let result = (|| {
                let Some(vcpu) = shared_info.vcpu_id(cpu) else {
                    return Ok(None);
                };
                let page = os.alloc_page().ok_or(STATUS_NO_MEMORY)?;
                let block = match crate::shared::map_pfn(os, page.pfn) {
                    Some(b) => b,
                    None => {
                        os.free_page(page);
                        return Err(STATUS_UNSUCCESSFUL);
                    }
                };
                if let Err(e) = api.event_channel_init_control(page.pfn as usize, vcpu) {
                    os.free_page(page);
                    return Err(e);
                }
                Ok(Some(Control {
                    page,
                    block,
                    heads: [0; EVTCHN_FIFO_MAX_QUEUES],
                }))
            })();
            match result {
                Ok(c) => fifo.state.lock().control.push(c),
                Err(e) => {
                    warning!(api, "EVTCHN_FIFO: CPU {cpu}: init_control failed ({e:08X})");
                    fifo.release();
                    return Err(e);
                }
            }
        }
        info!(api, "EVTCHN_FIFO: enabled on {cpus} processor(s)");
        Ok(fifo)
    }

    /// Leave the ABI (`EvtchnReset`): remember the store and console inter-domain
    /// bindings, `EVTCHNOP_reset`, bind them again and publish the new ports in their HVM
    /// parameters; then free the control blocks and event pages.
    pub fn release(&self) {
        let mut rebind = Vec::new();
        for param in [HvmParam::STORE_EVTCHN, HvmParam::CONSOLE_EVTCHN] {
            let Ok(port) = self.api.hvm_get_param(param.0) else {
                continue;
            };
            if let Ok(remote) = self.api.event_channel_query_inter_domain(port as u32) {
                if rebind.try_reserve(1).is_ok() {
                    rebind.push((param, remote));
                }
            }
        }
        if let Err(e) = self.api.event_channel_reset() {
            error!(self.api, "EVTCHN_FIFO: reset failed ({e:08X})");
        }
        for (param, (domain, remote_port)) in rebind {
            match self
                .api
                .event_channel_bind_inter_domain(domain, remote_port)
            {
                Ok(port) => {
                    let _ = self.api.hvm_set_param(param.0, u64::from(port));
                }
                Err(e) => error!(
                    self.api,
                    "EVTCHN_FIFO: re-bind of {} failed ({e:08X})", param.0
                ),
            }
        }
        self.free_pages();
    }

    /// Drop the pages without hypercalls (the domain was restored on a new host, which
    /// starts in the 2-level ABI).
    pub fn forget(&self) {
        self.free_pages();
    }

    /// Free the control blocks and event pages, after taking them out from under the
    /// HIGH_LEVEL lock (freeing needs DISPATCH_LEVEL or less).
    fn free_pages(&self) {
        let (control, array) = {
            let mut s = self.state.lock();
            (
                core::mem::take(&mut s.control),
                core::mem::take(&mut s.array),
            )
        };
        for c in control.into_iter().flatten() {
            drop(c.block);
            self.os.free_page(c.page);
        }
        for (page, view) in array {
            drop(view);
            self.os.free_page(page);
        }
    }

    fn word(&self, port: u32) -> Option<(SharedMemory, usize)> {
        let s = self.state.lock();
        let (page, offset) = (
            (port / EVTCHN_FIFO_EVENT_WORDS_PER_PAGE) as usize,
            (port % EVTCHN_FIFO_EVENT_WORDS_PER_PAGE) as usize * 4,
        );
        s.array.get(page).map(|(_, v)| (v.clone(), offset))
    }

    /// Make sure the event array covers `port` (new words start MASKED). The page is
    /// allocated and prepared before the HIGH_LEVEL lock is taken (allocation needs
    /// DISPATCH_LEVEL or less) and the array has room for every page since `acquire`, so
    /// nothing is allocated or freed under the lock.
    pub fn port_enable(&self, port: u32) -> Result<(), NtStatus> {
        if port >= EVTCHN_FIFO_NR_CHANNELS {
            return Err(STATUS_INVALID_PARAMETER);
        }
        loop {
            let have = self.state.lock().array.len();
            if (have as u32) * EVTCHN_FIFO_EVENT_WORDS_PER_PAGE > port {
                return Ok(());
            }
            let page = self.os.alloc_page().ok_or(STATUS_NO_MEMORY)?;
            let Some(view) = crate::shared::map_pfn(self.os, page.pfn) else {
                self.os.free_page(page);
                return Err(STATUS_UNSUCCESSFUL);
            };
            for w in 0..EVTCHN_FIFO_EVENT_WORDS_PER_PAGE as usize {
                let _ = view.store_u32(w * 4, MASKED);
            }
            let mut s = self.state.lock();
            let full = s.array.len() == s.array.capacity();
            if s.array.len() != have || full {
                // Another caller grew the array meanwhile (or it is at its maximum).
                drop(s);
                drop(view);
                self.os.free_page(page);
                if full {
                    return Err(STATUS_NO_MEMORY);
                }
                continue;
            }
            if let Err(e) = self.api.event_channel_expand_array(page.pfn as usize) {
                drop(s);
                drop(view);
                self.os.free_page(page);
                return Err(e);
            }
            s.array.push((page, view));
        }
    }

    /// Clear PENDING.
    pub fn ack(&self, port: u32) {
        if let Some((v, o)) = self.word(port) {
            let _ = v.and_u32(o, !PENDING);
        }
    }

    /// Set MASKED.
    pub fn mask(&self, port: u32) {
        if let Some((v, o)) = self.word(port) {
            let _ = v.or_u32(o, MASKED);
        }
    }

    /// Clear MASKED (waiting while Xen holds the word BUSY); true when PENDING.
    pub fn unmask(&self, port: u32) -> bool {
        let Some((v, o)) = self.word(port) else {
            return false;
        };
        for _ in 0..1_000_000 {
            let Ok(w) = v.load_u32(o) else { return false };
            if w & BUSY != 0 {
                core::hint::spin_loop();
                continue;
            }
            if let Ok(Ok(_)) = v.cas_u32(o, w, w & !MASKED) {
                return w & PENDING != 0;
            }
        }
        false
    }

    /// True when MASKED.
    pub fn is_masked(&self, port: u32) -> bool {
        self.word(port)
            .and_then(|(v, o)| v.load_u32(o).ok())
            .is_some_and(|w| w & MASKED != 0)
    }

    /// True when PENDING.
    pub fn is_pending(&self, port: u32) -> bool {
        self.word(port)
            .and_then(|(v, o)| v.load_u32(o).ok())
            .is_some_and(|w| w & PENDING != 0)
    }

    /// Walk `cpu`'s queues, highest priority first, unlinking each event and calling
    /// `event(port)` for those PENDING and not MASKED; true when any call returned true.
    ///
    /// Up to [`POLL_BATCH`] ports at a time are gathered under the HIGH_LEVEL lock (no
    /// allocation there) and delivered outside it (the callback re-enters Ack/Mask); the
    /// saved queue heads and the ready bits carry the walk on to the next batch.
    pub fn poll(&self, cpu: u32, event: &mut dyn FnMut(u32) -> bool) -> bool {
        let mut ready: Option<u32> = None;
        let mut guard = 0u32;
        let mut done = false;
        loop {
            let mut batch = [0u32; POLL_BATCH];
            let mut gathered = 0usize;
            let more = {
                let mut s = self.state.lock();
                let State { control, array } = &mut *s;
                let Some(Some(c)) = control.get_mut(cpu as usize) else {
                    return done;
                };
                let ready = ready.get_or_insert_with(|| c.block.swap_u32(READY, 0).unwrap_or(0));
                while *ready != 0 && guard < EVTCHN_FIFO_NR_CHANNELS && gathered < POLL_BATCH {
                    guard += 1;
                    let q = ready.trailing_zeros() as usize;
                    let Some(saved) = c.heads.get(q).copied() else {
                        break;
                    };
                    let mut head = saved;
                    if head == 0 {
                        rmb();
                        head = c.block.load_u32(HEAD + q * 4).unwrap_or(0);
                    }
                    let port = head;
                    match unlink(array, port) {
                        Some((old, link)) => {
                            if link == 0 {
                                *ready &= !(1 << q);
                            }
                            if old & PENDING != 0 && old & MASKED == 0 {
                                if let Some(slot) = batch.get_mut(gathered) {
                                    *slot = port;
                                    gathered += 1;
                                }
                            }
                            if let Some(h) = c.heads.get_mut(q) {
                                *h = link;
                            }
                        }
                        None => {
                            // A head outside the event array: the queue is unusable.
                            *ready &= !(1 << q);
                            if let Some(h) = c.heads.get_mut(q) {
                                *h = 0;
                            }
                        }
                    }
                    *ready |= c.block.swap_u32(READY, 0).unwrap_or(0);
                }
                *ready != 0 && guard < EVTCHN_FIFO_NR_CHANNELS
            };
            for &port in batch.iter().take(gathered) {
                done |= event(port);
            }
            if !more {
                return done;
            }
        }
    }
}

/// Ports [`Fifo::poll`] gathers under its lock before delivering them.
pub const POLL_BATCH: usize = 64;

/// CAS-clear LINKED and the link of `port`'s word; returns (old word, link).
fn unlink(array: &[(Page, SharedMemory)], port: u32) -> Option<(u32, u32)> {
    if port == 0 || port >= EVTCHN_FIFO_NR_CHANNELS {
        return None;
    }
    let (_, v) = array.get((port / EVTCHN_FIFO_EVENT_WORDS_PER_PAGE) as usize)?;
    let o = (port % EVTCHN_FIFO_EVENT_WORDS_PER_PAGE) as usize * 4;
    loop {
        let w = v.load_u32(o).ok()?;
        let new = w & !(LINKED | EVTCHN_FIFO_LINK_MASK);
        if let Ok(Ok(_)) = v.cas_u32(o, w, new) {
            return Some((w, w & EVTCHN_FIFO_LINK_MASK));
        }
    }
}
