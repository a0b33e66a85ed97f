//! xen.sys: the export driver (hypercalls, grant/event/memory ops, logging, unplug).
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

pub mod acpi;
pub mod log;
pub mod sync;
