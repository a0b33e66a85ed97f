//! `io/`: headers of the split-driver protocols the bus itself speaks.

pub mod console;
pub mod xenbus;
pub mod xs_wire;
