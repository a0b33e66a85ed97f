//! xenfilt.sys: the upper filter on the PCI root bus and IDE channels that tracks
//! emulated devices, hides them until the unplug decision, and serves XENFILT_EMULATED.
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

pub mod driver;
pub mod emulated;
pub mod fdo;
pub mod filter;
#[cfg(feature = "harness")]
pub mod harness;
pub mod interface;
pub mod pdo;

pub mod wdm;
