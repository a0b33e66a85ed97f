//! The reboot-request monitor `xenbus_monitor` (spec §7.2): a sans-IO policy tested on any
//! host, and the Windows service glue that feeds it.
#![deny(unsafe_code)]

pub mod policy;
#[cfg(windows)]
pub mod service;
