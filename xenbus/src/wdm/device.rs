//! The device objects of xenbus.sys (upstream `driver.c`'s `XENBUS_DX`, `AddDevice` and
//! `Dispatch`): every device carries a [`Dx`] header saying whether it is the bus FDO or a
//! child PDO, its PnP state and its remove lock; `AddDevice` creates the FDO over the
//! platform PCI PDO and puts it in [`crate::driver::Driver`]'s FDO list (the first one
//! installs the filters); the dispatch routine refuses IRPs on a deleted device and routes
//! the rest to [`super::fdo`].

use alloc::boxed::Box;
use core::mem::size_of;
use core::ptr;
use core::sync::atomic::{AtomicU8, Ordering};

use common::wdm::device::{FILE_DEVICE_BUS_EXTENDER, FILE_DEVICE_SECURE_OPEN};
use common::wdm::irp;
use common::wdm::kernel::Event;
use common::wdm::log::{log, Level};
use common::wdm::remove_lock::RemoveCount;
use windows_sys::Wdk::Foundation::{DEVICE_OBJECT, DRIVER_OBJECT, IRP};
use windows_sys::Wdk::Storage::FileSystem::{DO_DEVICE_INITIALIZING, DO_POWER_PAGABLE};
use windows_sys::Wdk::System::SystemServices::{
    IoAttachDeviceToDeviceStack, IoCreateDevice, IoDeleteDevice, IoDetachDevice, IRP_MJ_PNP,
    IRP_MN_REMOVE_DEVICE, IRP_MN_SURPRISE_REMOVAL,
};
use windows_sys::Win32::Foundation::{
    NTSTATUS, STATUS_DELETE_PENDING, STATUS_INVALID_DEVICE_REQUEST, STATUS_NO_SUCH_DEVICE,
    STATUS_SUCCESS,
};

use super::entry::{DRIVER, XEN};
use super::fdo::Fdo;

/// Marks a device extension of this driver (`XBUS`).
const MAGIC: u32 = u32::from_le_bytes(*b"XBUS");

/// Upstream `DEVICE_PNP_STATE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum PnpState {
    /// A PDO created, not yet reported.
    Present = 0,
    /// A PDO reported in BusRelations.
    Enumerated,
    /// An FDO after AddDevice.
    Added,
    /// START_DEVICE succeeded.
    Started,
    /// QUERY_STOP_DEVICE accepted.
    StopPending,
    /// STOP_DEVICE.
    Stopped,
    /// QUERY_REMOVE_DEVICE accepted.
    RemovePending,
    /// SURPRISE_REMOVAL received.
    SurpriseRemovePending,
    /// REMOVE_DEVICE: the device is going away.
    Deleted,
}

impl PnpState {
    fn from_u8(value: u8) -> PnpState {
        match value {
            0 => PnpState::Present,
            1 => PnpState::Enumerated,
            2 => PnpState::Added,
            3 => PnpState::Started,
            4 => PnpState::StopPending,
            5 => PnpState::Stopped,
            6 => PnpState::RemovePending,
            7 => PnpState::SurpriseRemovePending,
            _ => PnpState::Deleted,
        }
    }
}

/// Which object a device is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The bus FDO over the platform PCI device.
    Fdo,
    /// A child PDO.
    Pdo,
}

/// The header of every device extension of this driver (upstream `XENBUS_DX`).
#[repr(C)]
pub struct Dx {
    magic: u32,
    /// FDO or PDO.
    pub kind: Kind,
    /// The device object this extension belongs to.
    pub device: *mut DEVICE_OBJECT,
    state: AtomicU8,
    previous: AtomicU8,
    /// IRPs in flight (REMOVE_DEVICE waits for them).
    pub lock: RemoveCount,
    /// Signalled when `lock` drains during removal.
    pub drained: Box<Event>,
    /// The FDO's state (`Kind::Fdo` only).
    pub fdo: *mut Fdo,
    /// The PDO's state (`Kind::Pdo` only).
    pub pdo: *mut super::pdo::Pdo,
}

impl Dx {
    /// The current PnP state.
    pub fn state(&self) -> PnpState {
        PnpState::from_u8(self.state.load(Ordering::Acquire))
    }

    /// Move to `state`, remembering the previous one (upstream `__FdoSetDevicePnpState`).
    pub fn set_state(&self, state: PnpState) {
        let old = self.state.swap(state as u8, Ordering::AcqRel);
        // A second pending state does not overwrite the state to go back to.
        if old != state as u8 {
            self.previous.store(old, Ordering::Release);
        }
    }

    /// Drop one remove-lock reference, waking a remover waiting for the last one.
    pub fn release(&self) {
        if self.lock.release() {
            self.drained.set();
        }
    }

    /// REMOVE_DEVICE: refuse new IRPs and wait for those in flight (the caller released
    /// its own reference first).
    pub fn release_and_wait(&self) {
        if !self.lock.begin_remove() {
            self.drained.wait(None);
        }
    }
}

/// The extension of `device` when it is one of this driver's.
///
/// # Safety
/// `device` is a valid device object.
pub unsafe fn dx_of<'a>(device: *const DEVICE_OBJECT) -> Option<&'a Dx> {
    // SAFETY: devices of this driver carry a Dx (create_device) whose first field is the
    // magic; the extension lives as long as the device.
    unsafe {
        let dx = (*device).DeviceExtension.cast::<Dx>();
        if dx.is_null() || (*dx).magic != MAGIC {
            return None;
        }
        Some(&*dx)
    }
}

/// Create a device object of `kind` with a [`Dx`] header (not yet attached anywhere).
///
/// # Safety
/// `driver` is this driver's object; PASSIVE_LEVEL.
pub unsafe fn create_device(
    driver: *const DRIVER_OBJECT,
    kind: Kind,
    characteristics: u32,
) -> Result<*mut DEVICE_OBJECT, NTSTATUS> {
    let mut device: *mut DEVICE_OBJECT = ptr::null_mut();
    // SAFETY: valid driver object; the extension is a Dx.
    let status = unsafe {
        IoCreateDevice(
            driver,
            size_of::<Dx>() as u32,
            ptr::null(),
            FILE_DEVICE_BUS_EXTENDER,
            FILE_DEVICE_SECURE_OPEN | characteristics,
            false,
            &mut device,
        )
    };
    if status < 0 || device.is_null() {
        return Err(if status < 0 {
            status
        } else {
            STATUS_NO_SUCH_DEVICE
        });
    }
    // SAFETY: the extension has room for a Dx and is written before the device is visible
    // to anyone (it is attached or reported only after this returns).
    unsafe {
        (*device).DeviceExtension.cast::<Dx>().write(Dx {
            magic: MAGIC,
            kind,
            device,
            state: AtomicU8::new(match kind {
                Kind::Fdo => PnpState::Added as u8,
                Kind::Pdo => PnpState::Present as u8,
            }),
            previous: AtomicU8::new(PnpState::Present as u8),
            lock: RemoveCount::new(),
            drained: Event::notification(),
            fdo: ptr::null_mut(),
            pdo: ptr::null_mut(),
        });
    }
    Ok(device)
}

/// Delete a device of this driver: drop its header's owned parts, then the object.
///
/// # Safety
/// `device` was made by [`create_device`], is detached and receives no further IRPs.
pub unsafe fn delete_device(device: *mut DEVICE_OBJECT) {
    // SAFETY: forwarded caller contract; the Dx is dropped exactly once, here.
    unsafe {
        let dx = (*device).DeviceExtension.cast::<Dx>();
        (*dx).magic = 0;
        ptr::drop_in_place(dx);
        IoDeleteDevice(device);
    }
}

/// `AddDevice`: the bus FDO over the platform PCI PDO, added to the driver's FDO list.
///
/// # Safety
/// Called by the PnP manager with valid objects at PASSIVE_LEVEL.
pub unsafe extern "system" fn add_device(
    driver: *const DRIVER_OBJECT,
    pdo: *const DEVICE_OBJECT,
) -> NTSTATUS {
    // SAFETY: forwarded caller contract.
    let device = match unsafe { create_device(driver, Kind::Fdo, 0) } {
        Ok(device) => device,
        Err(status) => {
            log(
                Level::Error,
                format_args!("AddDevice: IoCreateDevice failed ({status:#010x})"),
            );
            return status;
        }
    };
    // SAFETY: `device` is ours and not yet attached; `pdo` is the PnP manager's.
    unsafe {
        let lower = IoAttachDeviceToDeviceStack(device, pdo);
        if lower.is_null() {
            log(Level::Error, format_args!("AddDevice: cannot attach"));
            delete_device(device);
            return STATUS_NO_SUCH_DEVICE;
        }
        let fdo = match Fdo::new(device, pdo.cast_mut(), lower) {
            Ok(fdo) => Box::into_raw(Box::new(fdo)),
            Err(status) => {
                IoDetachDevice(lower);
                delete_device(device);
                return status;
            }
        };
        let dx = (*device).DeviceExtension.cast::<Dx>();
        (*dx).fdo = fdo;
        (*fdo).bind();
        (*device).Flags |= DO_POWER_PAGABLE;
        (*device).Flags &= !DO_DEVICE_INITIALIZING;
    }
    if let Some(state) = DRIVER.lock().as_mut() {
        state.add_fdo(&XEN, device as usize);
    }
    log(
        Level::Info,
        format_args!("AddDevice: FDO {device:p} attached"),
    );
    STATUS_SUCCESS
}

/// Take the FDO out of the driver's list (the last one removes the filters), detach it
/// from the stack and delete it.
///
/// # Safety
/// `device` is an FDO of this driver after its REMOVE_DEVICE went down.
pub unsafe fn destroy_fdo(device: *mut DEVICE_OBJECT, lower: *mut DEVICE_OBJECT) {
    if let Some(state) = DRIVER.lock().as_mut() {
        state.remove_fdo(&XEN, device as usize);
    }
    // SAFETY: forwarded caller contract; the Fdo box was made in add_device and nothing
    // reaches it after REMOVE_DEVICE.
    unsafe {
        let dx = (*device).DeviceExtension.cast::<Dx>();
        let fdo = (*dx).fdo;
        (*dx).fdo = ptr::null_mut();
        if !fdo.is_null() {
            drop(Box::from_raw(fdo));
        }
        IoDetachDevice(lower);
        delete_device(device);
    }
}

/// Complete `irp` with `status`.
///
/// # Safety
/// `irp` is owned by the caller.
pub unsafe fn complete(irp: *mut IRP, status: NTSTATUS) -> NTSTATUS {
    // SAFETY: forwarded caller contract.
    unsafe {
        irp::set_status(irp, status, (*irp).IoStatus.Information);
        irp::complete_request(irp, irp::IO_NO_INCREMENT);
    }
    status
}

/// Complete a power IRP with `status` (`PoStartNextPowerIrp` first, for the systems that
/// still need it) and drop its remove-lock reference on `dx`.
///
/// # Safety
/// `irp` is a power IRP owned by the caller, holding one reference on `dx`'s lock.
pub unsafe fn complete_power(dx: &Dx, irp: *mut IRP, status: NTSTATUS) -> NTSTATUS {
    // SAFETY: forwarded caller contract.
    unsafe {
        irp::set_status(irp, status, 0);
        windows_sys::Wdk::System::SystemServices::PoStartNextPowerIrp(irp);
        irp::complete_request(irp, irp::IO_NO_INCREMENT);
    }
    dx.release();
    status
}

/// The dispatch routine for every `IRP_MJ_*` (upstream `DriverDispatch`).
///
/// # Safety
/// Called by the I/O manager with a device object of this driver and an IRP it owns.
pub unsafe extern "system" fn dispatch(device: *const DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    // SAFETY: forwarded caller contract.
    unsafe {
        let Some(dx) = dx_of(device) else {
            irp::set_status(irp, STATUS_INVALID_DEVICE_REQUEST, 0);
            irp::complete_request(irp, irp::IO_NO_INCREMENT);
            return STATUS_INVALID_DEVICE_REQUEST;
        };
        let location = irp::current_stack_location(irp);
        let (major, minor) = (
            u32::from((*location).MajorFunction),
            u32::from((*location).MinorFunction),
        );
        if dx.state() == PnpState::Deleted {
            // Deletion can block after the state is set but before IoDeleteDevice: a late
            // SURPRISE_REMOVAL or REMOVE_DEVICE succeeds, everything else finds no device.
            let late_removal = major == IRP_MJ_PNP
                && (minor == IRP_MN_SURPRISE_REMOVAL || minor == IRP_MN_REMOVE_DEVICE);
            let status = if late_removal {
                STATUS_SUCCESS
            } else {
                STATUS_NO_SUCH_DEVICE
            };
            irp::set_status(irp, status, 0);
            irp::complete_request(irp, irp::IO_NO_INCREMENT);
            return status;
        }
        if !dx.lock.acquire() {
            irp::set_status(irp, STATUS_DELETE_PENDING, 0);
            irp::complete_request(irp, irp::IO_NO_INCREMENT);
            return STATUS_DELETE_PENDING;
        }
        match dx.kind {
            Kind::Fdo if !dx.fdo.is_null() => super::fdo::dispatch(dx, &*dx.fdo, irp, major),
            Kind::Pdo if !dx.pdo.is_null() => {
                super::pdo::dispatch(dx, device.cast_mut(), &*dx.pdo, irp, major)
            }
            Kind::Fdo | Kind::Pdo => {
                // Half-made device: nothing to answer with.
                let status = irp::status(irp);
                irp::complete_request(irp, irp::IO_NO_INCREMENT);
                dx.release();
                status
            }
        }
    }
}
