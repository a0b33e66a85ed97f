//! xen.sys entry points: `DriverEntry` (a stub: an export driver is loaded as a DLL),
//! `DllInitialize` and `DllUnload` (called by the loader when the first importer loads and
//! the last one unloads). The exported API lives in [`crate::exports`].

use common::wdm::log::{log, set_component, Component, Level};
use common::wdm::{DRIVER_OBJECT, NTSTATUS, UNICODE_STRING};
use xen_include::status::STATUS_SUCCESS;

use crate::exports::NATIVE as HYPERCALL;
use crate::hypercall::{discover, DiscoveryError};

/// `DriverEntry` of an export driver: only called when someone starts xen.sys as a service.
///
/// # Safety
/// Called by the I/O manager.
#[no_mangle]
pub unsafe extern "system" fn DriverEntry(
    _driver: *mut DRIVER_OBJECT,
    _registry_path: *const UNICODE_STRING,
) -> NTSTATUS {
    STATUS_SUCCESS
}

/// `DllInitialize`: fails with `STATUS_NOT_SUPPORTED` when the CPU is not a Xen HVM guest
/// (or its hypercall instruction is unknown), which makes every importer (xenbus.sys,
/// xenfilt.sys) fail to load.
///
/// # Safety
/// Called by the kernel's loader with the service key path.
#[no_mangle]
pub unsafe extern "system" fn DllInitialize(_registry_path: *const UNICODE_STRING) -> NTSTATUS {
    set_component(Component::Xen);
    let (major, minor, micro, build) = xenbus_rs::version();
    log(
        Level::Info,
        format_args!("====> {major}.{minor}.{micro}.{build}"),
    );
    let discovery = match discover(&HYPERCALL) {
        Ok(discovery) => discovery,
        Err(error) => {
            match error {
                DiscoveryError::NotXen => {
                    log(Level::Error, format_args!("BASE CPUID LEAF NOT FOUND"))
                }
                DiscoveryError::UnknownVendor(vendor) => log(
                    Level::Error,
                    format_args!(
                        "UNKNOWN CPU VENDOR {:?}",
                        core::str::from_utf8(&vendor).unwrap_or("?")
                    ),
                ),
            }
            log(
                Level::Info,
                format_args!("<==== ({:#010x})", error.status()),
            );
            return error.status();
        }
    };
    HYPERCALL.select(Some(discovery.instruction));
    log(
        Level::Info,
        format_args!(
            "XenVMMXenVMM signature at CPUID leaf {:#x}, {:?}",
            discovery.base, discovery.instruction
        ),
    );
    log(Level::Info, format_args!("<===="));
    STATUS_SUCCESS
}

/// `DllUnload`: called when the last importer has unloaded.
#[no_mangle]
pub extern "system" fn DllUnload() -> NTSTATUS {
    let (major, minor, micro, build) = xenbus_rs::version();
    log(
        Level::Info,
        format_args!("<===> {major}.{minor}.{micro}.{build}"),
    );
    STATUS_SUCCESS
}
