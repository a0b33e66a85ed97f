//! xenbus.sys's WDM edge: `DriverEntry`/`DriverUnload` over [`crate::driver`]'s decisions,
//! `AddDevice` and the dispatch routine of the bus FDO.

pub mod balloon;
#[cfg(windows)]
mod bus;
#[cfg(windows)]
mod device;
#[cfg(windows)]
mod emulated;
#[cfg(windows)]
mod entry;
#[cfg(windows)]
mod fdo;
pub mod ids;
#[cfg(windows)]
mod lower_bus;
#[cfg(windows)]
mod pdo;
pub mod resources;
#[cfg(windows)]
mod runtime;
