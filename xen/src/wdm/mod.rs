//! xen.sys entry points: `DriverEntry` (a stub: an export driver is loaded as a DLL),
//! `DllInitialize` and `DllUnload` (called by the loader when the first importer loads and
//! the last one unloads). They build the [`crate::driver::Xen`] core over the real kernel
//! ([`KernelOs`]) and hypervisor edges; the exported API lives in [`crate::exports`].

use common::wdm::callbacks;
use common::wdm::log::{log, set_component, Component, Level};
use common::wdm::os::KernelOs;
use common::wdm::{DRIVER_OBJECT, NTSTATUS, UNICODE_STRING};
use xen_include::status::STATUS_SUCCESS;

use crate::exports;

/// The kernel edge of this image.
static KERNEL_OS: KernelOs = KernelOs;

/// `DriverEntry` of an export driver: only called when someone starts xen.sys as a service.
///
/// # Safety
/// Called by the I/O manager.
#[no_mangle]
pub unsafe extern "system" fn DriverEntry(
    _driver: *mut DRIVER_OBJECT,
    _registry_path: *const UNICODE_STRING,
) -> NTSTATUS {
    common::wdm::irql::install();
    STATUS_SUCCESS
}

/// `DllInitialize`: runs the core's initialisation stages (registry keys, log dispositions,
/// hypercall discovery, ACPI, system, bug-check, modules, process, unplug). On a CPU that is
/// not a Xen HVM guest discovery fails with `STATUS_NOT_SUPPORTED`, which makes every
/// importer (xenbus.sys, xenfilt.sys) fail to load.
///
/// # Safety
/// Called by the kernel's loader with the service key path.
#[no_mangle]
pub unsafe extern "system" fn DllInitialize(_registry_path: *const UNICODE_STRING) -> NTSTATUS {
    // Before any lock is taken: the locks raise IRQL through these.
    common::wdm::irql::install();
    set_component(Component::Xen);
    let (major, minor, micro, build) = xenbus_rs::version();
    log(
        Level::Info,
        format_args!("====> {major}.{minor}.{micro}.{build}"),
    );
    callbacks::set_sink(exports::sink);
    let status = exports::dll_initialize(&KERNEL_OS);
    log(Level::Info, format_args!("<==== ({status:#010x})"));
    status
}

/// `DllUnload`: called when the last importer has unloaded.
#[no_mangle]
pub extern "system" fn DllUnload() -> NTSTATUS {
    exports::dll_unload();
    let (major, minor, micro, build) = xenbus_rs::version();
    log(
        Level::Info,
        format_args!("<===> {major}.{minor}.{micro}.{build}"),
    );
    STATUS_SUCCESS
}
