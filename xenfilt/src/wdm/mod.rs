//! xenfilt.sys's WDM edge: `DriverEntry` checks the package version with xen.sys
//! (`XenTouch`) and registers `AddDevice`, the dispatch routines and `DriverUnload`; on a
//! version mismatch the driver stays loaded but inert (spec §6.1).

pub use common::wdm::codec;
pub use common::wdm::remove_lock;

#[cfg(windows)]
mod driver;
#[cfg(windows)]
use common::wdm::request;

#[cfg(windows)]
mod entry {
    use common::wdm::log::{log, set_component, Component, Level};
    use common::wdm::{device, xen_imports, DRIVER_OBJECT, NTSTATUS, UNICODE_STRING};

    use super::driver;
    use xen_include::status::STATUS_SUCCESS;

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
        set_component(Component::XenFilt);
        let version = xenbus_rs::version();
        let (major, minor, micro, build) = version;
        log(
            Level::Info,
            format_args!("====> {major}.{minor}.{micro}.{build}"),
        );
        let status = xen_imports::touch(c"XENFILT", version);
        if status < 0 {
            // Upstream behaviour: a xen.sys of another build leaves the filter loaded but
            // inert until the reboot that installs the matching package — no AddDevice, so
            // nothing is ever filtered or hidden.
            log(
                Level::Warning,
                format_args!("<==== XenTouch refused ({status:#010x}): inert until reboot"),
            );
            return STATUS_SUCCESS;
        }
        driver::init();
        // SAFETY: `driver` is the object the I/O manager passed to DriverEntry;
        // DriverExtension is set by the I/O manager before DriverEntry.
        unsafe {
            (*driver).DriverUnload = Some(device::unload);
            for slot in (*driver).MajorFunction.iter_mut() {
                *slot = Some(driver::dispatch);
            }
            if let Some(extension) = (*driver).DriverExtension.as_mut() {
                extension.AddDevice = Some(driver::add_device);
            }
        }
        log(Level::Info, format_args!("<===="));
        STATUS_SUCCESS
    }
}
