//! The ABI crate: every constant, layout and signature that crosses a binary boundary
//! (Xen ↔ guest, xen.sys ↔ importers, xenbus.sys ↔ C child drivers) is defined here once.
// Indexing is left to rustc here: this crate indexes only in `const` evaluation (layout
// checks), where an out-of-range index is a compile error, not a runtime panic.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::todo,
        clippy::unimplemented
    )
)]
#![cfg_attr(not(test), no_std)]
// `deny`, not `forbid`: only `variadic` (raw variadic slots) opts out; every other module
// is denied unsafe code (interfaces, revision and guid forbid it outright).
#![deny(unsafe_code)]

pub mod api;
pub mod dma;
pub mod guid;
pub mod interfaces;
pub mod platform;
pub mod revision;
pub mod status;
pub mod subscription;
#[allow(unsafe_code)]
pub mod variadic;
pub mod xen;
