//! xenbus.sys's WDM edge: `DriverEntry`/`DriverUnload` over [`crate::driver`]'s decisions,
//! `AddDevice` and the dispatch routine of the bus FDO.

#[cfg(windows)]
mod entry;
