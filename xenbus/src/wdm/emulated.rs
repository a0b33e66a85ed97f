//! The optional `XENFILT_EMULATED` v3 query at `AddDevice` (spec §5.2 steps 2 and 4):
//! xenfilt's filter on the PCI PDO answers it; `IsDevicePresent(DeviceID, NULL, &status)`
//! says whether precedence forced this platform device active or inactive. No xenfilt
//! (or another version) means no forcing: the legacy rules decide.

use alloc::vec::Vec;
use core::ptr;

use common::wdm::log::{log, Level};
use windows_sys::Wdk::Foundation::DEVICE_OBJECT;
use xen_include::interfaces::emulated::{
    EmulatedActivationStatus, EmulatedInterfaceV3, GUID_XENFILT_EMULATED_INTERFACE,
};
use xen_include::interfaces::Interface;

use crate::fdo::FilterActivation;

/// Ask the device below the FDO (`lower`) for `XENFILT_EMULATED` v3 and, when it answers,
/// how `device_id` is forced. None (logged) when there is no such interface.
///
/// # Safety
/// `lower` is the valid device below the FDO; PASSIVE_LEVEL.
pub unsafe fn activation(lower: *mut DEVICE_OBJECT, device_id: &str) -> Option<FilterActivation> {
    let mut table = EmulatedInterfaceV3 {
        interface: Interface::new(0, 0, ptr::null_mut()),
        emulated_acquire: None,
        emulated_release: None,
        emulated_is_device_present: None,
        emulated_is_disk_present: None,
    };
    let size = core::mem::size_of::<EmulatedInterfaceV3>() as u16;
    // SAFETY: forwarded caller contract; the table outlives the synchronous request.
    let result = unsafe {
        super::lower_bus::query_interface(
            lower,
            &GUID_XENFILT_EMULATED_INTERFACE,
            size,
            3,
            (&mut table as *mut EmulatedInterfaceV3).cast(),
            ptr::null_mut(),
        )
    };
    let header = table.interface;
    let methods = (
        table.emulated_acquire,
        table.emulated_release,
        table.emulated_is_device_present,
    );
    let (Ok(_), 3, false, (Some(acquire), Some(release), Some(present))) =
        (result, header.version, header.context.is_null(), methods)
    else {
        log(
            Level::Info,
            format_args!("AddDevice: no XENFILT_EMULATED v3 below ({result:?})"),
        );
        return None;
    };
    let interface = &mut table.interface as *mut Interface;
    // SAFETY: an interface xenfilt filled in; Acquire/Release bracket the one call.
    unsafe {
        let status = acquire(interface);
        if status < 0 {
            log(
                Level::Warning,
                format_args!("AddDevice: XENFILT_EMULATED Acquire failed ({status:#010x})"),
            );
            return None;
        }
        let mut id: Vec<u8> = device_id.bytes().collect();
        id.push(0);
        let mut forced = EmulatedActivationStatus::ACTIVATE_NEUTRAL;
        // The interface itself, as upstream's XENFILT_EMULATED(IsDevicePresent, ...) passes
        // it (xenfilt finds its provider through the header's Context).
        let found = present(
            interface.cast(),
            id.as_mut_ptr().cast(),
            ptr::null_mut(),
            &mut forced,
        );
        release(interface);
        if found == 0 {
            log(
                Level::Error,
                format_args!("AddDevice: xenfilt does not know {device_id}"),
            );
            return None;
        }
        Some(match forced {
            EmulatedActivationStatus::FORCE_ACTIVATED => FilterActivation::ForceActivated,
            EmulatedActivationStatus::FORCE_DEACTIVATED => FilterActivation::ForceDeactivated,
            _ => FilterActivation::Neutral,
        })
    }
}
