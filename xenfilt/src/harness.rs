//! xenfilt on the simulator, for tests and `cargo xtask demo` (feature `harness`; never part
//! of xenfilt.sys): the simulator's PnP view of a bus handed to the filter, the
//! `XENFILT_EMULATED` v3 calls a PV driver makes through the C vtable, and the child filter
//! as the device below a function driver in a simulated stack ([`ChildFilterDevice`]).

use std::ffi::{c_void, CString};
use std::prelude::rust_2021::*;
use std::sync::{Arc, Mutex};

use common::pnp::{IdKind, PnpAnswer, PnpReply, PnpRequest, TextKind};
use xen_include::interfaces::emulated::{
    EmulatedActivationStatus, EmulatedInterfaceV3, GUID_XENFILT_EMULATED_INTERFACE,
};
use xen_include::interfaces::{VersionedInterface, TRUE};
use xen_include::status::{NtStatus, STATUS_NOT_SUPPORTED, STATUS_SUCCESS};
use xen_sim::pnp::PnpChild;
use xen_sim::pnp_manager::LowerDevice;

use crate::fdo::{ChildInfo, PdoHandle};
use crate::filter::{BusHandle, Filter};
use crate::interface::{get_interface, EmulatedProvider};
use crate::pdo::IdentityQuery;

/// Call `f` with `children` (the simulator's PnP view of a bus) as the filter sees a
/// BusRelations answer.
pub fn relations<R>(children: &[PnpChild], f: impl FnOnce(&[ChildInfo<'_>]) -> R) -> R {
    let compatible: Vec<Vec<&str>> = children
        .iter()
        .map(|c| c.compatible.iter().map(String::as_str).collect())
        .collect();
    let infos: Vec<ChildInfo<'_>> = children
        .iter()
        .zip(&compatible)
        .map(|(c, ids)| ChildInfo {
            pdo: c.pdo,
            device_id: &c.device_id,
            instance_id: &c.instance_id,
            compatible_ids: ids,
            location: Some(&c.location),
        })
        .collect();
    f(&infos)
}

/// `XENFILT_EMULATED` v3 of `provider`, as a caller's buffer receives it.
pub fn emulated_v3(provider: &EmulatedProvider) -> Result<EmulatedInterfaceV3, NtStatus> {
    let mut table = EmulatedInterfaceV3::EMPTY;
    // SAFETY: the buffer is a whole EmulatedInterfaceV3; the interface is used only while
    // `provider` is borrowed.
    let status = unsafe {
        get_interface(
            provider,
            3,
            (&mut table as *mut EmulatedInterfaceV3).cast(),
            EmulatedInterfaceV3::SIZE,
        )
    };
    if status == STATUS_SUCCESS {
        Ok(table)
    } else {
        Err(status)
    }
}

/// `EmulatedIsDiskPresent(index)` through the C vtable.
pub fn is_disk_present(provider: &EmulatedProvider, index: u32) -> Result<bool, NtStatus> {
    let mut v3 = emulated_v3(provider)?;
    let f = v3.emulated_is_disk_present.ok_or(STATUS_NOT_SUPPORTED)?;
    let this = (&mut v3 as *mut EmulatedInterfaceV3).cast();
    // SAFETY: the vtable's own function called with its own interface.
    Ok(unsafe { f(this, index) } == TRUE)
}

/// `EmulatedIsDevicePresent(device_id, NULL, &status)` through the C vtable: None when the
/// device is not recorded as emulated, else how it is forced.
pub fn is_device_present(
    provider: &EmulatedProvider,
    device_id: &str,
) -> Result<Option<EmulatedActivationStatus>, NtStatus> {
    let mut v3 = emulated_v3(provider)?;
    let f = v3.emulated_is_device_present.ok_or(STATUS_NOT_SUPPORTED)?;
    let this = (&mut v3 as *mut EmulatedInterfaceV3).cast();
    let id = CString::new(device_id).map_err(|_| STATUS_NOT_SUPPORTED)?;
    let mut status = EmulatedActivationStatus::ACTIVATE_NEUTRAL;
    // SAFETY: the vtable's own function, a NUL-terminated string and a writable status.
    let present = unsafe {
        f(
            this,
            id.as_ptr().cast_mut(),
            core::ptr::null_mut(),
            &mut status,
        )
    };
    Ok((present == TRUE).then_some(status))
}

/// xenfilt's child filter over a bus driver's PDO (created by the bus filter when the bus
/// reported the device), as the WDM edge runs it: the identity queries it stored are
/// answered from the filter, `XENFILT_EMULATED` is filled while nobody above answered, REMOVE
/// tells the filter; every request but an answered identity query then goes down.
pub struct ChildFilterDevice {
    filter: Arc<Mutex<Filter<'static>>>,
    bus: BusHandle,
    pdo: PdoHandle,
    lower: Box<dyn LowerDevice>,
}

impl ChildFilterDevice {
    /// The filter of the child `pdo` of `bus`, over `lower`.
    pub fn new(
        filter: Arc<Mutex<Filter<'static>>>,
        bus: BusHandle,
        pdo: PdoHandle,
        lower: Box<dyn LowerDevice>,
    ) -> Self {
        Self {
            filter,
            bus,
            pdo,
            lower,
        }
    }

    fn filter(&self) -> std::sync::MutexGuard<'_, Filter<'static>> {
        self.filter.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl LowerDevice for ChildFilterDevice {
    fn answer(&mut self, request: &PnpRequest, incoming: PnpAnswer) -> PnpAnswer {
        let identity = match request {
            PnpRequest::QueryId(IdKind::DeviceId) => Some(IdentityQuery::DeviceId),
            PnpRequest::QueryId(IdKind::InstanceId) => Some(IdentityQuery::InstanceId),
            PnpRequest::QueryDeviceText(TextKind::LocationInformation, _) => {
                Some(IdentityQuery::LocationInformation)
            }
            _ => None,
        };
        if let Some(text) = identity.and_then(|q| self.filter().identity(self.bus, self.pdo, q)) {
            return PnpAnswer::success(PnpReply::Text(text));
        }
        match request {
            PnpRequest::QueryInterface(q)
                if q.guid == GUID_XENFILT_EMULATED_INTERFACE
                    && incoming.status == STATUS_NOT_SUPPORTED =>
            {
                let provider = self.filter().emulated;
                // SAFETY: the requester's buffer of `q.size` bytes, pointer-aligned; the
                // provider lives as long as the filter ('static).
                let status = unsafe {
                    get_interface(
                        provider,
                        q.version,
                        q.buffer as *mut c_void,
                        usize::from(q.size),
                    )
                };
                // Answered, then passed down as the IRP is.
                let answered = PnpAnswer {
                    status,
                    reply: incoming.reply,
                };
                self.lower.answer(request, answered)
            }
            PnpRequest::Remove => {
                self.filter().child_removed(self.bus, self.pdo);
                self.lower.answer(request, incoming)
            }
            _ => self.lower.answer(request, incoming),
        }
    }
}
