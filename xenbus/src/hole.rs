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
