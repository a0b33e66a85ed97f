//! The C-ABI edge: the per-version vtables each subsystem serves to child drivers, and
//! the shims in them that recover the provider from `Interface->Context` and call the
//! safe core.
//!
//! Every shim dereferences pointers handed over by C code; the contract is the one of the
//! original headers (the interface struct the caller obtained from us, live handles it
//! got from us, NUL-terminated strings). Handles are additionally checked against the
//! provider's list of live objects before use, so a stale or foreign handle is logged and
//! refused instead of dereferenced.

pub mod range_set;

pub use common::interface::{c_str, context, copy_interface};
