//! The balloon scenario: xenbus's BALLOON core gives scratch frames back to the hypervisor
//! (`XENMEM_decrease_reservation` in batches) and takes them back (`populate_physmap`),
//! checked against the domain's reservation as Xen reports it.

use alloc::vec::Vec;

use common::hypercall::Hypercall;
use common::sync::SpinLock;
use xen_include::api::{LogLevel, PAGE_ORDER_4K};
use xen_include::status::NtStatus;
use xen_include::xen::memory::MemoryOp;
use xen_include::xen::xen::{DomId, HypercallCode};
use xenbus::balloon::{Balloon, BalloonMemory, BalloonXen};

use crate::{fail, pass, GuestEnv, Verdict};

/// Scratch pages the scenario balloons (0–2 belong to other scenarios).
const FIRST_SCRATCH: usize = 4;
const PAGES: usize = 4;

/// xen.sys's part over raw hypercalls.
struct RigXen<'a>(&'a dyn Hypercall);

impl BalloonXen for RigXen<'_> {
    fn decrease_reservation(&self, pfns: &mut [usize]) -> Result<u32, NtStatus> {
        xen::memory::decrease_reservation(self.0, PAGE_ORDER_4K, pfns)
    }
    fn populate_physmap(&self, pfns: &mut [usize]) -> Result<u32, NtStatus> {
        xen::memory::populate_physmap(self.0, PAGE_ORDER_4K, pfns)
    }
    fn log(&self, _level: LogLevel, _text: &str) {}
}

/// The page allocator: hands out the scratch frames.
struct Scratch {
    free: SpinLock<Vec<u64>>,
}

impl BalloonMemory for Scratch {
    fn low_memory(&self) -> bool {
        false
    }
    fn allocate(&self, count: usize, pfns: &mut Vec<u64>) {
        let mut free = self.free.lock();
        for _ in 0..count {
            match free.pop() {
                Some(p) => pfns.push(p),
                None => break,
            }
        }
    }
    fn give_back(&self, pfns: &[u64]) {
        self.free.lock().extend_from_slice(pfns);
    }
    fn now_100ns(&self) -> u64 {
        0
    }
}

/// `XENMEM_current_reservation` of this domain (pages), or the negated errno.
fn current_reservation(hv: &dyn Hypercall) -> isize {
    let domid: u16 = DomId::SELF.0;
    hv.hypercall(
        HypercallCode::MEMORY_OP.0,
        [
            MemoryOp::CURRENT_RESERVATION.0 as usize,
            &domid as *const u16 as usize,
            0,
            0,
            0,
        ],
    )
}

/// Inflate by [`PAGES`] scratch frames in batches of 3, then deflate.
pub fn balloon(env: &dyn GuestEnv) -> Verdict {
    let hv = env.hv();
    let mut frames = Vec::new();
    for i in FIRST_SCRATCH..FIRST_SCRATCH + PAGES {
        match env.scratch_pfn(i) {
            Some(p) => frames.push(p),
            None => return fail!("no scratch page {i}"),
        }
    }
    let xen = RigXen(hv);
    let memory = Scratch {
        free: SpinLock::new(frames.clone()),
    };
    let balloon = Balloon::with_batch(&xen, &memory, 3);
    let before = current_reservation(hv);
    if before <= 0 {
        return fail!("current_reservation = {before}");
    }
    if let Err(e) = balloon.adjust(PAGES as u64) {
        return fail!("inflate: {e:#010x}");
    }
    let inflated = current_reservation(hv);
    if balloon.size() != PAGES as u64 || inflated != before - PAGES as isize {
        return fail!(
            "inflated {} pages; reservation {before} -> {inflated}",
            balloon.size()
        );
    }
    if let Err(e) = balloon.adjust(0) {
        return fail!("deflate: {e:#010x}");
    }
    let after = current_reservation(hv);
    if after != before || balloon.size() != 0 || balloon.veto_removal() {
        return fail!(
            "deflated: reservation {before} -> {after}, size {}",
            balloon.size()
        );
    }
    // The frames are RAM again: a pattern written sticks.
    for (i, pfn) in frames.iter().enumerate() {
        let Some(page) = env.frame(*pfn) else {
            return fail!("frame {pfn:#x} not mappable");
        };
        let pattern = 0xB0A1_1000_u32 + i as u32;
        if page.store_u32(0, pattern).is_err() || page.load_u32(0) != Ok(pattern) {
            return fail!("frame {pfn:#x} is not RAM after deflate");
        }
    }
    pass!("reservation {before} -> {inflated} -> {after} pages (4 frames, batches of 3)")
}
