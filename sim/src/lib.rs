//! A deterministic in-process model of what surrounds a Windows HVM guest on Xen:
//! hypervisor, xenstored, toolstack and backends, and the Windows guest itself.

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
