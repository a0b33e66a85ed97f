//! Memory "hole" pages (spec §5.5, `UseMemoryHole=1`): a RAM page given back to Xen with
//! `XENMEM_decrease_reservation`, so Xen can map shared info, grant frames or foreign
//! grants at its frame; freeing repopulates the frame before returning the page.
#![forbid(unsafe_code)]

use common::os::{Os, Page};
use xen_include::api::{XenApi, PAGE_ORDER_4K};
use xen_include::status::{NtStatus, STATUS_INSUFFICIENT_RESOURCES, STATUS_NO_MEMORY};

/// Allocate one hole page.
pub fn allocate(api: &dyn XenApi, os: &dyn Os) -> Result<Page, NtStatus> {
    let page = os.alloc_page().ok_or(STATUS_NO_MEMORY)?;
    let mut pfns = [page.pfn as usize];
    match api.memory_decrease_reservation(PAGE_ORDER_4K, &mut pfns) {
        Ok(1) => Ok(page),
        Ok(_) => {
            os.free_page(page);
            Err(STATUS_INSUFFICIENT_RESOURCES)
        }
        Err(e) => {
            os.free_page(page);
            Err(e)
        }
    }
}

/// Give back a hole page: unmap whatever Xen put there, repopulate, free.
pub fn free(api: &dyn XenApi, os: &dyn Os, page: Page) -> Result<(), NtStatus> {
    let _ = api.memory_remove_from_physmap(page.pfn as usize);
    let mut pfns = [page.pfn as usize];
    match api.memory_populate_physmap(PAGE_ORDER_4K, &mut pfns) {
        Ok(1) => {
            os.free_page(page);
            Ok(())
        }
        // The frame stays a hole: leaking the page is the only safe choice.
        Ok(_) => Err(STATUS_INSUFFICIENT_RESOURCES),
        Err(e) => Err(e),
    }
}

/// `count` hole frames from `hole` when the FDO made one, else fresh
/// `decrease_reservation` holes (the default mode).
pub fn allocate_run(
    api: &dyn XenApi,
    os: &dyn Os,
    hole: Option<&Hole<'_>>,
    count: usize,
) -> Result<HoleRun, NtStatus> {
    match hole {
        Some(h) => h.allocate_pages(count),
        None => Hole::new(api, os, HoleMode::Reservation)?.allocate_pages(count),
    }
}

/// Give back a run from [`allocate_run`] (same `hole`).
pub fn free_run(
    api: &dyn XenApi,
    os: &dyn Os,
    hole: Option<&Hole<'_>>,
    run: HoleRun,
) -> Result<(), NtStatus> {
    match hole {
        Some(h) => h.free_pages(run),
        None => Hole::new(api, os, HoleMode::Reservation)?.free_pages(run),
    }
}

/// Registry value choosing the mode (DWORD under xenbus's `Parameters`; default 1).
pub const USE_MEMORY_HOLE: &str = "UseMemoryHole";

/// `UseMemoryHole`: 1 (default, also when absent or not a DWORD) = decrease_reservation
/// holes, 0 = the platform device's memory BAR.
pub fn use_memory_hole(value: Option<&common::os::RegValue>) -> bool {
    !matches!(value, Some(common::os::RegValue::Dword(0)))
}

/// Where hole pages come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HoleMode {
    /// `UseMemoryHole=1`: RAM pages given back to Xen.
    Reservation,
    /// `UseMemoryHole=0`: frames `first_pfn..first_pfn + pages` of the platform device's
    /// first memory BAR, handed out as contiguous runs (the range set `PCI`).
    PciBar {
        /// First frame of the BAR.
        first_pfn: u64,
        /// Frames in the BAR.
        pages: u64,
    },
}

/// A run of hole frames handed out by [`Hole::allocate_pages`].
#[derive(Debug, PartialEq, Eq)]
pub struct HoleRun {
    /// The frames, in order (contiguous in the BAR mode).
    pub pfns: alloc::vec::Vec<u64>,
    pages: alloc::vec::Vec<Page>,
}

/// The FDO's hole allocator in either mode (spec §5.5).
pub struct Hole<'a> {
    api: &'a dyn XenApi,
    os: &'a dyn Os,
    mode: HoleMode,
    bar: common::sync::SpinLock<crate::range_set::RangeSet>,
}

impl<'a> Hole<'a> {
    /// A hole allocator in `mode`.
    pub fn new(api: &'a dyn XenApi, os: &'a dyn Os, mode: HoleMode) -> Result<Self, NtStatus> {
        let mut bar = crate::range_set::RangeSet::new();
        if let HoleMode::PciBar { first_pfn, pages } = mode {
            let start = i64::try_from(first_pfn).map_err(|_| STATUS_INSUFFICIENT_RESOURCES)?;
            bar.put(start, pages)?;
        }
        Ok(Self {
            api,
            os,
            mode,
            bar: common::sync::SpinLock::new(bar),
        })
    }

    /// The mode.
    pub fn mode(&self) -> HoleMode {
        self.mode
    }

    /// Frames still free in the BAR mode (0 in the reservation mode).
    pub fn bar_free(&self) -> u64 {
        self.bar.lock().items()
    }

    /// `count` hole frames. Reservation mode: every page must be given back (else all
    /// are returned and `STATUS_INSUFFICIENT_RESOURCES`); BAR mode: the lowest contiguous
    /// run that fits (exhaustion → `STATUS_INSUFFICIENT_RESOURCES`).
    pub fn allocate_pages(&self, count: usize) -> Result<HoleRun, NtStatus> {
        let mut run = HoleRun {
            pfns: alloc::vec::Vec::new(),
            pages: alloc::vec::Vec::new(),
        };
        run.pfns
            .try_reserve_exact(count)
            .map_err(|_| STATUS_NO_MEMORY)?;
        match self.mode {
            HoleMode::PciBar { .. } => {
                let start = self.bar.lock().pop(count as u64)?;
                run.pfns
                    .extend((start as u64)..(start as u64 + count as u64));
            }
            HoleMode::Reservation => {
                run.pages
                    .try_reserve_exact(count)
                    .map_err(|_| STATUS_NO_MEMORY)?;
                for _ in 0..count {
                    match allocate(self.api, self.os) {
                        Ok(page) => {
                            run.pfns.push(page.pfn);
                            run.pages.push(page);
                        }
                        Err(e) => {
                            let _ = self.free_pages(run);
                            return Err(e);
                        }
                    }
                }
            }
        }
        Ok(run)
    }

    /// Give a run back. BAR mode: the run must still be contiguous (else refused, logged).
    pub fn free_pages(&self, run: HoleRun) -> Result<(), NtStatus> {
        match self.mode {
            HoleMode::PciBar { .. } => {
                let Some(&first) = run.pfns.first() else {
                    return Ok(());
                };
                let contiguous = run
                    .pfns
                    .iter()
                    .enumerate()
                    .all(|(i, p)| *p == first + i as u64);
                if !contiguous {
                    crate::error!(self.api, "HOLE: free of a non-contiguous run refused");
                    return Err(xen_include::status::STATUS_INVALID_PARAMETER);
                }
                let start = i64::try_from(first).map_err(|_| STATUS_INSUFFICIENT_RESOURCES)?;
                self.bar.lock().put(start, run.pfns.len() as u64)
            }
            HoleMode::Reservation => {
                let mut result = Ok(());
                for page in run.pages {
                    if let Err(e) = free(self.api, self.os, page) {
                        crate::error!(self.api, "HOLE: frame {:#x} not repopulated", page.pfn);
                        result = Err(e);
                    }
                }
                result
            }
        }
    }
}

#[cfg(test)]
mod hole_mode_tests {
    use super::*;
    use crate::sim::Sim;
    use common::os::RegValue;
    use xen_include::status::STATUS_INVALID_PARAMETER;

    #[test]
    fn use_memory_hole_value() {
        assert!(use_memory_hole(None));
        assert!(use_memory_hole(Some(&RegValue::Dword(1))));
        assert!(use_memory_hole(Some(&RegValue::Sz("0".into()))));
        assert!(!use_memory_hole(Some(&RegValue::Dword(0))));
    }

    #[test]
    fn reservation_mode_makes_and_fills_holes() {
        let s = Sim::new(1);
        let h = Hole::new(s.xen, &*s.m.guest, HoleMode::Reservation).unwrap();
        let (pages, _) = s.m.hv.domain_pages();
        let run = h.allocate_pages(3).unwrap();
        assert_eq!(run.pfns.len(), 3);
        assert!(run.pfns.iter().all(|p| !s.m.hv.gfn_is_ram(*p)));
        assert_eq!(s.m.hv.domain_pages().0, pages - 3);
        let pfns = run.pfns.clone();
        h.free_pages(run).unwrap();
        assert!(pfns.iter().all(|p| s.m.hv.gfn_is_ram(*p)));
        assert_eq!(s.m.hv.domain_pages().0, pages);
    }

    #[test]
    fn bar_mode_hands_out_contiguous_runs_from_the_range_set() {
        let s = Sim::new(1);
        let bar = s.m.layout().hole.clone();
        let total = bar.end - bar.start;
        let h = Hole::new(
            s.xen,
            &*s.m.guest,
            HoleMode::PciBar {
                first_pfn: bar.start,
                pages: total,
            },
        )
        .unwrap();
        let a = h.allocate_pages(2).unwrap();
        let b = h.allocate_pages(4).unwrap();
        assert_eq!(a.pfns, vec![bar.start, bar.start + 1]);
        assert_eq!(b.pfns, (bar.start + 2..bar.start + 6).collect::<Vec<_>>());
        assert_eq!(h.bar_free(), total - 6);
        assert_eq!(
            h.allocate_pages(total as usize),
            Err(STATUS_INSUFFICIENT_RESOURCES)
        );
        // A tampered run is refused; the genuine one goes back and merges.
        let bogus = HoleRun {
            pfns: vec![bar.start + 2, bar.start + 4],
            pages: Vec::new(),
        };
        assert_eq!(h.free_pages(bogus), Err(STATUS_INVALID_PARAMETER));
        h.free_pages(a).unwrap();
        h.free_pages(b).unwrap();
        assert_eq!(h.bar_free(), total);
        // The lowest fit is reused first.
        assert_eq!(h.allocate_pages(1).unwrap().pfns, vec![bar.start]);
    }
}
