//! A pass-through WDM device: the minimal, correct `AddDevice`/dispatch/unload a driver
//! registers before its PnP and power state machines take over. `AddDevice` creates a
//! device object, attaches it to the stack above the PDO and copies the lower device's I/O
//! flags; every IRP goes down the stack unchanged; `IRP_MN_REMOVE_DEVICE` detaches and
//! deletes the device after the lower driver has seen it.

use core::mem::size_of;
use core::ptr;

use windows_sys::Wdk::Foundation::{DEVICE_OBJECT, DRIVER_OBJECT, IRP};
use windows_sys::Wdk::Storage::FileSystem::{
    DO_BUFFERED_IO, DO_DEVICE_INITIALIZING, DO_DIRECT_IO, DO_POWER_PAGABLE,
};
use windows_sys::Wdk::System::SystemServices::{
    IoAttachDeviceToDeviceStack, IoCreateDevice, IoDeleteDevice, IoDetachDevice, IRP_MJ_PNP,
    IRP_MN_REMOVE_DEVICE,
};
use windows_sys::Win32::Foundation::{
    NTSTATUS, STATUS_INVALID_DEVICE_REQUEST, STATUS_NO_SUCH_DEVICE, STATUS_SUCCESS,
};

use super::irp;
use super::log::{log, Level};

/// `FILE_DEVICE_BUS_EXTENDER`: device type of a bus driver's FDO.
pub const FILE_DEVICE_BUS_EXTENDER: u32 = 0x2A;
/// `FILE_DEVICE_UNKNOWN`: device type of a filter before it copies the lower one's.
pub const FILE_DEVICE_UNKNOWN: u32 = 0x22;
/// `FILE_DEVICE_SECURE_OPEN`.
pub const FILE_DEVICE_SECURE_OPEN: u32 = 0x100;
/// Number of `IRP_MJ_*` dispatch slots in a `DRIVER_OBJECT`.
pub const MAJOR_FUNCTION_COUNT: usize = IRP_MJ_PNP as usize + 1;

/// The device extension of a pass-through device.
#[repr(C)]
struct Extension {
    /// The device below this one (returned by `IoAttachDeviceToDeviceStack`).
    lower: *mut DEVICE_OBJECT,
}

/// The `DriverEntry` of a driver that imports from xen.sys: record the log prefix, check
/// the package version with `XenTouch` (refusing to load on a mismatch, as the status says)
/// and register the pass-through routines.
///
/// # Safety
/// `driver` must be the driver object passed to `DriverEntry`.
#[cfg(feature = "xen-imports")]
pub unsafe fn driver_entry(
    driver: *mut DRIVER_OBJECT,
    component: super::log::Component,
    name: &core::ffi::CStr,
    version: (u32, u32, u32, u32),
) -> NTSTATUS {
    super::log::set_component(component);
    let (major, minor, micro, build) = version;
    log(
        Level::Info,
        format_args!("====> {major}.{minor}.{micro}.{build}"),
    );
    let status = super::xen_imports::touch(name, version);
    if status < 0 {
        log(
            Level::Error,
            format_args!("<==== XenTouch failed ({status:#010x})"),
        );
        return status;
    }
    // SAFETY: forwarded caller contract.
    unsafe { register(driver) };
    log(Level::Info, format_args!("<===="));
    STATUS_SUCCESS
}

/// Register the pass-through routines in `driver`'s dispatch table, `AddDevice` and
/// `DriverUnload`.
///
/// # Safety
/// `driver` must be the driver object passed to `DriverEntry`.
pub unsafe fn register(driver: *mut DRIVER_OBJECT) {
    // SAFETY: the caller passes its own driver object; DriverExtension is always set by
    // the I/O manager before DriverEntry.
    unsafe {
        (*driver).DriverUnload = Some(unload);
        for slot in (*driver).MajorFunction.iter_mut() {
            *slot = Some(dispatch);
        }
        if let Some(extension) = (*driver).DriverExtension.as_mut() {
            extension.AddDevice = Some(add_device);
        }
    }
}

/// `AddDevice`: create and attach a pass-through device above `pdo`.
///
/// # Safety
/// Called by the PnP manager with valid objects.
pub unsafe extern "system" fn add_device(
    driver: *const DRIVER_OBJECT,
    pdo: *const DEVICE_OBJECT,
) -> NTSTATUS {
    let mut device: *mut DEVICE_OBJECT = ptr::null_mut();
    // SAFETY: valid driver object; the extension size is a small constant.
    let status = unsafe {
        IoCreateDevice(
            driver,
            size_of::<Extension>() as u32,
            ptr::null(),
            FILE_DEVICE_UNKNOWN,
            FILE_DEVICE_SECURE_OPEN,
            false,
            &mut device,
        )
    };
    if status < 0 || device.is_null() {
        log(
            Level::Error,
            format_args!("AddDevice: IoCreateDevice failed ({status:#010x})"),
        );
        return if status < 0 {
            status
        } else {
            STATUS_NO_SUCH_DEVICE
        };
    }
    // SAFETY: `device` was just created with an Extension-sized extension; `pdo` is valid.
    unsafe {
        let lower = IoAttachDeviceToDeviceStack(device, pdo);
        if lower.is_null() {
            log(
                Level::Error,
                format_args!("AddDevice: IoAttachDeviceToDeviceStack failed"),
            );
            IoDeleteDevice(device);
            return STATUS_NO_SUCH_DEVICE;
        }
        (*device)
            .DeviceExtension
            .cast::<Extension>()
            .write(Extension { lower });
        (*device).DeviceType = (*lower).DeviceType;
        (*device).Characteristics = (*lower).Characteristics;
        (*device).Flags |= (*lower).Flags & (DO_BUFFERED_IO | DO_DIRECT_IO | DO_POWER_PAGABLE);
        (*device).Flags &= !DO_DEVICE_INITIALIZING;
    }
    log(Level::Info, format_args!("AddDevice: attached"));
    STATUS_SUCCESS
}

/// Dispatch routine for every `IRP_MJ_*`: pass the IRP down the stack.
///
/// # Safety
/// Called by the I/O manager with a device object of this driver and an IRP it owns.
pub unsafe extern "system" fn dispatch(device: *const DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    // SAFETY: device objects of this driver carry an Extension (add_device); a device object
    // without one (not created by add_device) gets the IRP completed with an error.
    unsafe {
        let extension = (*device).DeviceExtension.cast::<Extension>();
        let lower = if extension.is_null() {
            ptr::null_mut()
        } else {
            (*extension).lower
        };
        if lower.is_null() {
            irp::set_status(irp, STATUS_INVALID_DEVICE_REQUEST, 0);
            irp::complete_request(irp, irp::IO_NO_INCREMENT);
            return STATUS_INVALID_DEVICE_REQUEST;
        }
        let location = irp::current_stack_location(irp);
        let remove = u32::from((*location).MajorFunction) == IRP_MJ_PNP
            && u32::from((*location).MinorFunction) == IRP_MN_REMOVE_DEVICE;
        if remove {
            irp::set_status(irp, STATUS_SUCCESS, 0);
        }
        irp::skip_current_stack_location(irp);
        let status = irp::call_driver(lower, irp);
        if remove {
            log(Level::Info, format_args!("RemoveDevice: detached"));
            (*extension).lower = ptr::null_mut();
            IoDetachDevice(lower);
            IoDeleteDevice(device);
        }
        status
    }
}

/// `DriverUnload`: every device is gone by now (removed through PnP).
///
/// # Safety
/// Called by the I/O manager.
pub unsafe extern "system" fn unload(_driver: *const DRIVER_OBJECT) {
    log(Level::Info, format_args!("DriverUnload"));
}
