//! xenbus.sys entry point: `DriverEntry` checks the package version with xen.sys
//! (`XenTouch`) and registers `AddDevice`, the dispatch routines and `DriverUnload`.

use common::wdm::log::Component;
use common::wdm::{device, DRIVER_OBJECT, NTSTATUS, UNICODE_STRING};

/// `DriverEntry`.
///
/// # Safety
/// Called by the I/O manager with this driver's object.
#[no_mangle]
pub unsafe extern "system" fn DriverEntry(
    driver: *mut DRIVER_OBJECT,
    _registry_path: *const UNICODE_STRING,
) -> NTSTATUS {
    // SAFETY: `driver` is the object the I/O manager passed to DriverEntry.
    unsafe { device::driver_entry(driver, Component::XenBus, c"XENBUS", xenbus_rs::version()) }
}
