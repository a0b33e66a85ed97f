//! The xen.sys API functions exported to xenbus.sys, xenfilt.sys and the PV child drivers.

use core::ffi::{c_char, CStr};

use common::wdm::log::{log, Level};
use common::wdm::NTSTATUS;
use xen_include::status::{STATUS_INCOMPATIBLE_DRIVER_BLOCKED, STATUS_SUCCESS};

/// `XenTouch`: the version handshake. Every driver of the package calls it first; a driver
/// built for another version than this xen.sys is refused so a half-updated package never
/// runs (a reboot completes the update).
///
/// # Safety
/// `name` must be null or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "system" fn XenTouch(
    name: *const c_char,
    major: u32,
    minor: u32,
    micro: u32,
    build: u32,
) -> NTSTATUS {
    let name = if name.is_null() {
        "(null)"
    } else {
        // SAFETY: the caller passes a NUL-terminated string.
        unsafe { CStr::from_ptr(name) }
            .to_str()
            .unwrap_or("(invalid)")
    };
    if (major, minor, micro, build) != xenbus_rs::version() {
        log(
            Level::Error,
            format_args!("MODULE '{name}' NOT COMPATIBLE (REBOOT REQUIRED)"),
        );
        return STATUS_INCOMPATIBLE_DRIVER_BLOCKED;
    }
    STATUS_SUCCESS
}
