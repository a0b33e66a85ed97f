//! Kernel building blocks shared by the three drivers and the two lower edges of the
//! design: [`hypercall::Hypercall`] (the hypervisor) and [`os::Os`] (the Windows kernel).
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
#![cfg_attr(not(any(test, feature = "irql-model")), no_std)]

extern crate alloc;

pub mod hypercall;
pub mod interface;
pub mod irql;
pub mod os;
pub mod pnp;
pub mod sync;
pub mod wdm;

/// Host tests run on the IRQL model's checking allocator: heap use above DISPATCH_LEVEL
/// panics, as pool use there bug-checks a real kernel.
#[cfg(test)]
#[global_allocator]
static ALLOCATOR: irql::model::CheckingAllocator = irql::model::CheckingAllocator::SYSTEM;
