//! `DriverEntry` and `DriverUnload`: [`crate::driver::driver_entry`] decides, with xen.sys
//! through its imports and the kernel through [`KernelOs`], whether the bus driver registers
//! `AddDevice` and its dispatch routines or stays loaded but inert until the reboot that
//! brings a matching xen.sys.

use common::sync::PassiveLock;
use common::wdm::log::{log, set_component, Component, Level};
use common::wdm::os::KernelOs;
use common::wdm::xen_imports::ImportedXen;
use common::wdm::{DRIVER_OBJECT, NTSTATUS, UNICODE_STRING};
use xen_include::status::STATUS_SUCCESS;

use super::device;
use crate::driver::{self, Driver, Registration};

/// The xen.sys API through the imports.
pub static XEN: ImportedXen = ImportedXen;
/// The driver-wide state from `DriverEntry` to `DriverUnload`.
/// PASSIVE_LEVEL: held across xen.sys calls that use the registry (AddDevice, REMOVE).
pub static DRIVER: PassiveLock<Option<Driver>> = PassiveLock::new(None);

/// `DriverEntry`.
///
/// # Safety
/// Called by the I/O manager with this driver's object.
#[no_mangle]
pub unsafe extern "system" fn DriverEntry(
    driver: *mut DRIVER_OBJECT,
    _registry_path: *const UNICODE_STRING,
) -> NTSTATUS {
    // Before any lock is taken: the locks raise IRQL through these.
    common::wdm::irql::install();
    set_component(Component::XenBus);
    let version = xenbus_rs::version();
    let (major, minor, micro, build) = version;
    log(
        Level::Info,
        format_args!("====> {major}.{minor}.{micro}.{build}"),
    );
    let state = match driver::driver_entry(&XEN, &KernelOs, version) {
        Ok(state) => state,
        Err(status) => {
            log(
                Level::Error,
                format_args!("<==== Parameters key not opened ({status:#010x})"),
            );
            return status;
        }
    };
    let registration = state.registration();
    *DRIVER.lock() = Some(state);
    // SAFETY: `driver` is the object the I/O manager passed to DriverEntry; DriverExtension
    // is set by the I/O manager before DriverEntry.
    unsafe {
        (*driver).DriverUnload = Some(unload);
        if registration == Registration::Full {
            for slot in (*driver).MajorFunction.iter_mut() {
                *slot = Some(device::dispatch);
            }
            if let Some(extension) = (*driver).DriverExtension.as_mut() {
                extension.AddDevice = Some(device::add_device);
            }
        }
    }
    match registration {
        Registration::Full => log(Level::Info, format_args!("<====")),
        Registration::Inert { reboot_requested } => log(
            Level::Warning,
            format_args!("<==== inert until reboot (reboot requested: {reboot_requested})"),
        ),
    }
    STATUS_SUCCESS
}

/// `DriverUnload`: every device is gone (PnP removed them); close `Parameters`.
///
/// # Safety
/// Called by the I/O manager.
pub unsafe extern "system" fn unload(_driver: *const DRIVER_OBJECT) {
    let state = DRIVER.lock().take();
    if let Some(state) = state {
        state.unload(&XEN, &KernelOs);
    }
    log(Level::Info, format_args!("DriverUnload"));
}
