//! Synchronous PnP requests sent down to a device (`IRP_MN_QUERY_ID`,
//! `IRP_MN_QUERY_DEVICE_TEXT`) and `IoGetDeviceProperty` string lists, read into owned
//! UTF-16 text at PASSIVE_LEVEL.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::ffi::c_void;
use core::ptr;

use super::irp;
use windows_sys::Wdk::Foundation::{DEVICE_OBJECT, IO_STACK_LOCATION, IRP, KEVENT};
use windows_sys::Wdk::System::SystemServices::{
    DeviceTextLocationInformation, ExFreePoolWithTag, Executive, IoAllocateIrp, IoFreeIrp,
    IoGetDeviceProperty, KeInitializeEvent, KeSetEvent, KeWaitForSingleObject, KernelMode,
    DEVICE_REGISTRY_PROPERTY, IRP_MJ_PNP, IRP_MN_QUERY_DEVICE_TEXT, IRP_MN_QUERY_ID,
};
use windows_sys::Win32::Foundation::{NTSTATUS, STATUS_NOT_SUPPORTED, STATUS_PENDING};
use windows_sys::Win32::System::Kernel::NotificationEvent;

use super::codec;

/// Longest ID string or list read from a bus driver's reply, in UTF-16 units.
const MAX_UNITS: usize = 8192;
/// `STATUS_BUFFER_TOO_SMALL`.
const STATUS_BUFFER_TOO_SMALL: NTSTATUS = 0xC000_0023_u32 as i32;
/// `STATUS_INSUFFICIENT_RESOURCES`.
const STATUS_INSUFFICIENT_RESOURCES: NTSTATUS = 0xC000_009A_u32 as i32;

/// Completion routine of a synchronous request: wake the sender, keep the IRP.
unsafe extern "system" fn signal(
    _device: *const DEVICE_OBJECT,
    _irp: *mut IRP,
    context: *mut c_void,
) -> NTSTATUS {
    // SAFETY: `context` is the KEVENT on the stack of `send`, which
    // waits for this routine before the event goes out of scope.
    unsafe { KeSetEvent(context.cast::<KEVENT>(), 0, false) };
    irp::STATUS_MORE_PROCESSING_REQUIRED
}

/// Wait without timeout for `event` (PASSIVE_LEVEL).
pub fn wait(event: &mut KEVENT) {
    // SAFETY: `event` is an initialised KEVENT borrowed for the duration of the wait.
    unsafe {
        KeWaitForSingleObject(
            (event as *const KEVENT).cast(),
            Executive,
            KernelMode as i8,
            false,
            ptr::null(),
        );
    }
}

pub use super::irp::forward_and_wait;

/// Send a new PnP IRP with minor code `minor` to `device`, parameters set by `fill`, and
/// wait for it; the reply's `IoStatus.Information` on success.
///
/// # Safety
/// `device` is a valid device object; PASSIVE_LEVEL.
pub unsafe fn send(
    device: *mut DEVICE_OBJECT,
    minor: u32,
    fill: impl FnOnce(&mut IO_STACK_LOCATION),
) -> Result<usize, NTSTATUS> {
    // SAFETY: the IRP is allocated with the device's stack size, its top location set up
    // before the call, and freed only after it came back (MORE_PROCESSING_REQUIRED).
    unsafe {
        let irp = IoAllocateIrp((*device).StackSize, false);
        if irp.is_null() {
            return Err(STATUS_INSUFFICIENT_RESOURCES);
        }
        irp::set_status(irp, STATUS_NOT_SUPPORTED, 0);
        let location = irp::next_stack_location(irp);
        (*location).MajorFunction = IRP_MJ_PNP as u8;
        (*location).MinorFunction = minor as u8;
        fill(&mut *location);
        let mut event: KEVENT = core::mem::zeroed();
        KeInitializeEvent(&mut event, NotificationEvent, false);
        irp::set_completion_routine(
            irp,
            signal,
            (&mut event as *mut KEVENT).cast(),
            irp::InvokeOn::ALWAYS,
        );
        let mut status = irp::call_driver(device, irp);
        if status == STATUS_PENDING {
            wait(&mut event);
            status = irp::status(irp);
        }
        let information = (*irp).IoStatus.Information;
        IoFreeIrp(irp);
        if status < 0 {
            Err(status)
        } else {
            Ok(information)
        }
    }
}

/// The UTF-16 units of a pool string handed back by a bus driver, freed afterwards:
/// up to the first NUL (`multi == false`) or the empty string ending a MULTI_SZ list.
///
/// # Safety
/// `buffer` is NULL or a pool block holding a terminated string (list).
unsafe fn take_pool_string(buffer: usize, multi: bool) -> Vec<u16> {
    let mut units = Vec::new();
    if buffer == 0 {
        return units;
    }
    let start = buffer as *const u16;
    let mut previous = 0xFFFFu16;
    for index in 0..MAX_UNITS {
        // SAFETY: the bus driver terminated the string (list) inside its block; reading
        // stops at the terminator (or at MAX_UNITS).
        let unit = unsafe { start.add(index).read_unaligned() };
        if unit == 0 && (!multi || previous == 0 || index == 0) {
            break;
        }
        units.push(unit);
        previous = unit;
    }
    // SAFETY: the PnP protocol hands the buffer over to the requester, who frees it.
    unsafe { ExFreePoolWithTag(buffer as *mut c_void, 0) };
    units
}

/// `IRP_MN_QUERY_ID(id_type)` sent to `device`: the single string (DeviceID/InstanceID).
///
/// # Safety
/// As for [`send`].
pub unsafe fn query_id(device: *mut DEVICE_OBJECT, id_type: i32) -> Result<String, NTSTATUS> {
    // SAFETY: forwarded caller contract; the reply is a pool string.
    unsafe {
        let reply = send(device, IRP_MN_QUERY_ID, |location| {
            location.Parameters.QueryId.IdType = id_type;
        })?;
        Ok(codec::parse_sz(&take_pool_string(reply, false)))
    }
}

/// `IRP_MN_QUERY_ID(id_type)` for a MULTI_SZ list (HardwareIDs/CompatibleIDs).
///
/// # Safety
/// As for [`send`].
pub unsafe fn query_id_list(
    device: *mut DEVICE_OBJECT,
    id_type: i32,
) -> Result<Vec<String>, NTSTATUS> {
    // SAFETY: forwarded caller contract; the reply is a pool MULTI_SZ list.
    unsafe {
        let reply = send(device, IRP_MN_QUERY_ID, |location| {
            location.Parameters.QueryId.IdType = id_type;
        })?;
        let mut units = take_pool_string(reply, true);
        units.extend([0, 0]);
        Ok(codec::parse_multi_sz(&units))
    }
}

/// `IRP_MN_QUERY_DEVICE_TEXT(DeviceTextLocationInformation)` sent to `device`.
///
/// # Safety
/// As for [`send`].
pub unsafe fn query_location(device: *mut DEVICE_OBJECT) -> Result<String, NTSTATUS> {
    // SAFETY: forwarded caller contract; the reply is a pool string.
    unsafe {
        let reply = send(device, IRP_MN_QUERY_DEVICE_TEXT, |location| {
            location.Parameters.QueryDeviceText.DeviceTextType = DeviceTextLocationInformation;
            location.Parameters.QueryDeviceText.LocaleId = 0x409;
        })?;
        Ok(codec::parse_sz(&take_pool_string(reply, false)))
    }
}

/// A MULTI_SZ device property of a PDO (`DevicePropertyHardwareID`/`CompatibleIDs`);
/// empty when the PDO has none.
///
/// # Safety
/// `pdo` is a valid, initialised PDO; PASSIVE_LEVEL.
pub unsafe fn property_list(
    pdo: *mut DEVICE_OBJECT,
    property: DEVICE_REGISTRY_PROPERTY,
) -> Vec<String> {
    let mut needed = 0u32;
    // SAFETY: a zero-length query only writes the needed length.
    let status = unsafe { IoGetDeviceProperty(pdo, property, 0, ptr::null_mut(), &mut needed) };
    if status != STATUS_BUFFER_TOO_SMALL || needed == 0 || needed as usize > MAX_UNITS * 2 {
        return Vec::new();
    }
    let mut units = vec![0u16; (needed as usize).div_ceil(2) + 2];
    // SAFETY: `units` has at least `needed` bytes.
    let status = unsafe {
        IoGetDeviceProperty(
            pdo,
            property,
            needed,
            units.as_mut_ptr().cast(),
            &mut needed,
        )
    };
    if status < 0 {
        return Vec::new();
    }
    codec::parse_multi_sz(&units)
}
