//! `process.c`: on process exit, tell Xen the process's page tables are dying
//! (`HVMOP_pagetable_dying` with its CR3) so shadow paging can drop them early.
#![forbid(unsafe_code)]

use common::hypercall::Hypercall;

use crate::Logger;

/// The process-exit notification: `cr3` is read by the edge (at DISPATCH_LEVEL upstream).
pub fn exit(hv: &dyn Hypercall, cr3: u64, log: &dyn Logger) {
    if let Err(status) = crate::hvm::pagetable_dying(hv, cr3) {
        // Xen without shadow paging answers -ENOSYS: not worth more than a trace.
        log.dbg(
            crate::dpfltr::TRACE,
            format_args!("pagetable_dying({cr3:x}): {:08x}", status as u32),
        );
    }
}
