//! The platform device's `BUS_INTERFACE_STANDARD` (upstream `FdoAcquireLowerBusInterface`):
//! asked from the stack below the FDO at `AddDevice` with a synchronous
//! `IRP_MN_QUERY_INTERFACE` (version 1, 64 bytes), kept with the children's
//! [`PdoBusInterface`] over it for the FDO's life, and dereferenced when the FDO goes.

use alloc::boxed::Box;
use core::ffi::c_void;
use core::ptr;

use common::pnp::{minor, GUID_BUS_INTERFACE_STANDARD};
use common::wdm::log::{log, Level};
use common::wdm::os::KernelOs;
use common::wdm::request;
use windows_sys::Wdk::Foundation::DEVICE_OBJECT;
use windows_sys::Win32::Foundation::NTSTATUS;
use xen_include::guid::Guid;
use xen_include::interfaces::Interface;

use super::entry::{DRIVER, XEN};
use crate::interface::query::{
    BusInterfaceStandard, DmaInterception, PdoBusInterface, BUS_INTERFACE_STANDARD_SIZE,
};

/// The lower bus interface and the children's interface forwarding to it.
pub struct LowerBus {
    /// What the PCI PDO filled in (holding one reference on its context).
    lower: BusInterfaceStandard,
    /// The interface every child PDO hands out (its address is their context).
    child: PdoBusInterface,
}

impl LowerBus {
    /// The children's bus interface.
    pub fn child(&self) -> &PdoBusInterface {
        &self.child
    }
}

impl Drop for LowerBus {
    fn drop(&mut self) {
        let references = self.child.references();
        if references != 0 {
            log(
                Level::Warning,
                format_args!("FDO: child bus interface still referenced ({references})"),
            );
        }
        if let Some(dereference) = self.lower.interface.interface_dereference {
            // SAFETY: the reference the lower driver took when it answered the query,
            // dropped once, with the context it gave.
            unsafe { dereference(self.lower.interface.context) };
        }
    }
}

/// Ask the device below the FDO (`lower`) for `BUS_INTERFACE_STANDARD`; `pdo` is the
/// platform PCI PDO (the DMA interception's device). None (logged) when the stack does
/// not answer or answers another version: children then have no bus interface.
///
/// # Safety
/// `lower` is the valid device below the FDO and `pdo` the PDO at its bottom;
/// PASSIVE_LEVEL.
pub unsafe fn acquire(lower: *mut DEVICE_OBJECT, pdo: *mut DEVICE_OBJECT) -> Option<Box<LowerBus>> {
    let mut table = BusInterfaceStandard {
        interface: Interface {
            size: 0,
            version: 0,
            context: ptr::null_mut(),
            interface_reference: None,
            interface_dereference: None,
        },
        translate_bus_address: None,
        get_dma_adapter: None,
        set_bus_data: None,
        get_bus_data: None,
    };
    // SAFETY: forwarded caller contract; the table outlives the synchronous request.
    let result = unsafe {
        query_interface(
            lower,
            &GUID_BUS_INTERFACE_STANDARD,
            BUS_INTERFACE_STANDARD_SIZE,
            1,
            (&mut table as *mut BusInterfaceStandard).cast(),
            ptr::null_mut(),
        )
    };
    if let Err(status) = result {
        log(
            Level::Warning,
            format_args!("AddDevice: no lower BUS_INTERFACE_STANDARD ({status:#010x})"),
        );
        return None;
    }
    let bus = Box::new(LowerBus {
        lower: table,
        child: PdoBusInterface::with_dma(
            table,
            DmaInterception::read(
                &KernelOs,
                DRIVER.lock().as_ref().map(|d| d.parameters()),
                pdo as usize,
                Some(&XEN),
            ),
        ),
    });
    if table.interface.version != 1 {
        log(
            Level::Warning,
            format_args!(
                "AddDevice: lower BUS_INTERFACE_STANDARD version {} refused",
                table.interface.version
            ),
        );
        // Dropping it gives the lower reference back.
        return None;
    }
    log(
        Level::Info,
        format_args!("AddDevice: lower BUS_INTERFACE_STANDARD acquired"),
    );
    Some(bus)
}

/// Send `IRP_MN_QUERY_INTERFACE(guid, size, version)` to `device` and wait; the provider
/// fills `buffer`.
///
/// # Safety
/// `device` is a valid device object, `buffer` is valid for `size` bytes and outlives the
/// call; PASSIVE_LEVEL.
pub unsafe fn query_interface(
    device: *mut DEVICE_OBJECT,
    guid: &Guid,
    size: u16,
    version: u16,
    buffer: *mut c_void,
    specific: *mut c_void,
) -> Result<usize, NTSTATUS> {
    let guid = guid as *const Guid;
    // SAFETY: forwarded caller contract; the GUID is borrowed for the whole call.
    unsafe {
        request::send(device, u32::from(minor::QUERY_INTERFACE), |l| {
            l.Parameters.QueryInterface.InterfaceType = guid.cast();
            l.Parameters.QueryInterface.Size = size;
            l.Parameters.QueryInterface.Version = version;
            l.Parameters.QueryInterface.Interface = buffer.cast();
            l.Parameters.QueryInterface.InterfaceSpecificData = specific;
        })
    }
}
