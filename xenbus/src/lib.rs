//! xenbus.sys: the WDM bus driver on the Xen platform PCI device.
#![cfg_attr(not(test), no_std)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::todo,
        clippy::unimplemented
    )
)]

extern crate alloc;

/// Host tests run on the IRQL model's checking allocator: heap use above DISPATCH_LEVEL
/// panics, as pool use there bug-checks a real kernel.
#[cfg(test)]
#[global_allocator]
static ALLOCATOR: common::irql::model::CheckingAllocator =
    common::irql::model::CheckingAllocator::SYSTEM;
#[cfg(all(feature = "harness", not(test)))]
extern crate std;

pub mod active;
pub mod cache;
pub mod hole;
#[macro_use]
pub mod log;
pub mod balloon;
pub mod console;
pub mod debug;
pub mod dma;
pub mod driver;
pub mod evtchn;
pub mod evtchn_fifo;
pub mod fdo;
pub mod gnttab;
#[cfg(any(test, feature = "harness"))]
pub mod harness;
pub mod interface;
pub mod pdo;
pub mod pnp;
pub mod range_set;
pub mod shared;
pub mod shared_info;
#[cfg(test)]
mod sim;
pub mod store;
pub mod subscription;
pub mod suspend;
#[cfg(test)]
mod testing;
pub mod unplug;
pub mod virq;

pub mod wdm;
