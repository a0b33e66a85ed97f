//! A deterministic in-process model of what surrounds a Windows HVM guest on Xen:
//! hypervisor, xenstored, toolstack and backends, and the Windows guest itself.

/// Host tests run on the IRQL model's checking allocator: heap use above DISPATCH_LEVEL
/// panics, as pool use there bug-checks a real kernel.
#[cfg(test)]
#[global_allocator]
static ALLOCATOR: common::irql::model::CheckingAllocator =
    common::irql::model::CheckingAllocator::SYSTEM;

pub mod clock;
pub mod demo;
pub mod guest;
pub mod hv;
pub mod machine;
pub mod platform;
pub mod pnp;
pub mod pnp_manager;
pub mod toolstack;
pub mod xenconsoled;
pub mod xenstored;
