//! IRP ↔ [`crate::pnp`]: a `IRP_MJ_PNP`/`IRP_MJ_POWER` IRP's current stack location
//! decoded into a typed request, and a state machine's answer written back into
//! `IoStatus` (pool buffers for strings, lists, relations, bus information, resources and
//! requirements; the caller's `DEVICE_CAPABILITIES` filled in place).

use alloc::vec::Vec;
use core::ffi::c_void;
use core::mem::size_of;
use core::ptr;

use windows_sys::Wdk::Foundation::{DEVICE_OBJECT, IRP};
use windows_sys::Wdk::System::SystemServices::{
    ExAllocatePoolWithTag, ObfReferenceObject, DEVICE_RELATIONS,
};
use windows_sys::Win32::Foundation::{NTSTATUS, STATUS_INSUFFICIENT_RESOURCES};
use xen_include::guid::Guid;

use super::codec::utf16z;
use super::irp;
use super::pnp_codec::{
    decode_capabilities, decode_requirements, decode_resource_list, encode_bus_information,
    encode_capabilities, encode_requirements, encode_resource_list, resource_list_size,
    CAPABILITIES_SIZE,
};
use crate::pnp::{
    minor, DevicePower, IdKind, InterfaceQuery, PnpAnswer, PnpReply, PnpRequest, PowerAction,
    PowerRequest, PowerState, RelationKind, StartResources, SystemPower, TextKind, UsageKind,
    INTERFACE_TYPE_PCI_BUS,
};

/// Pool tag of answers handed to the PnP manager (`XPnp`).
const TAG: u32 = u32::from_le_bytes(*b"XPnp");
/// `NonPagedPoolNx`.
const NON_PAGED_POOL_NX: i32 = 512;
/// Largest list read from a caller (descriptors).
const MAX_DESCRIPTORS: usize = 256;
/// Largest requirements list read (bytes).
const MAX_REQUIREMENTS: usize = 64 * 1024;

/// Copy a `CM_RESOURCE_LIST` the PnP manager passed (NULL = none) into bytes.
///
/// # Safety
/// `list` is NULL or a valid CM_RESOURCE_LIST.
unsafe fn resource_list_bytes(list: *const u8) -> Vec<u8> {
    if list.is_null() {
        return Vec::new();
    }
    // SAFETY: the header is inside any CM_RESOURCE_LIST; `count` partials follow.
    unsafe {
        let full = list.cast::<u32>().read_unaligned();
        let count = list.add(16).cast::<u32>().read_unaligned() as usize;
        if full != 1 || count > MAX_DESCRIPTORS {
            return Vec::new();
        }
        core::slice::from_raw_parts(list, resource_list_size(count)).to_vec()
    }
}

/// Decode the current location of a PnP IRP.
///
/// # Safety
/// `irp` is an `IRP_MJ_PNP` IRP owned by the caller.
pub unsafe fn decode_pnp(irp: *mut IRP) -> PnpRequest {
    // SAFETY: the parameter union member read matches the minor code.
    unsafe {
        let location = irp::current_stack_location(irp);
        let parameters = &(*location).Parameters;
        match (*location).MinorFunction {
            minor::START_DEVICE => {
                let start = parameters.StartDevice;
                let raw = resource_list_bytes(start.AllocatedResources.cast());
                let translated = resource_list_bytes(start.AllocatedResourcesTranslated.cast());
                PnpRequest::Start(StartResources {
                    raw: decode_resource_list(&raw, false).unwrap_or_default(),
                    translated: decode_resource_list(&translated, true).unwrap_or_default(),
                })
            }
            minor::QUERY_STOP_DEVICE => PnpRequest::QueryStop,
            minor::STOP_DEVICE => PnpRequest::Stop,
            minor::CANCEL_STOP_DEVICE => PnpRequest::CancelStop,
            minor::QUERY_REMOVE_DEVICE => PnpRequest::QueryRemove,
            minor::REMOVE_DEVICE => PnpRequest::Remove,
            minor::CANCEL_REMOVE_DEVICE => PnpRequest::CancelRemove,
            minor::SURPRISE_REMOVAL => PnpRequest::SurpriseRemoval,
            minor::QUERY_DEVICE_RELATIONS => PnpRequest::QueryDeviceRelations(
                RelationKind::from_raw(parameters.QueryDeviceRelations.Type as u32),
            ),
            minor::QUERY_INTERFACE => {
                let q = parameters.QueryInterface;
                let guid = if q.InterfaceType.is_null() {
                    Guid::from_u128(0)
                } else {
                    q.InterfaceType.cast::<Guid>().read_unaligned()
                };
                PnpRequest::QueryInterface(InterfaceQuery {
                    guid,
                    size: q.Size,
                    version: q.Version,
                    buffer: q.Interface as usize,
                    specific: q.InterfaceSpecificData as usize,
                    incoming: irp::status(irp),
                })
            }
            minor::QUERY_CAPABILITIES => {
                let caps = parameters.DeviceCapabilities.Capabilities.cast::<u8>();
                let bytes = if caps.is_null() {
                    Vec::new()
                } else {
                    core::slice::from_raw_parts(caps, CAPABILITIES_SIZE).to_vec()
                };
                PnpRequest::QueryCapabilities(
                    decode_capabilities(&bytes).unwrap_or(crate::pnp::DeviceCapabilities::blank()),
                )
            }
            minor::QUERY_RESOURCES => PnpRequest::QueryResources,
            minor::QUERY_RESOURCE_REQUIREMENTS => PnpRequest::QueryResourceRequirements,
            minor::FILTER_RESOURCE_REQUIREMENTS => {
                let list = (*irp).IoStatus.Information as *const u8;
                let decoded = if list.is_null() {
                    None
                } else {
                    let size = list.cast::<u32>().read_unaligned() as usize;
                    if size > MAX_REQUIREMENTS {
                        None
                    } else {
                        decode_requirements(core::slice::from_raw_parts(list, size)).ok()
                    }
                };
                PnpRequest::FilterResourceRequirements(decoded)
            }
            minor::QUERY_DEVICE_TEXT => {
                let t = parameters.QueryDeviceText;
                PnpRequest::QueryDeviceText(TextKind::from_raw(t.DeviceTextType as u32), t.LocaleId)
            }
            minor::QUERY_ID => {
                PnpRequest::QueryId(IdKind::from_raw(parameters.QueryId.IdType as u32))
            }
            minor::QUERY_BUS_INFORMATION => PnpRequest::QueryBusInformation,
            minor::DEVICE_USAGE_NOTIFICATION => {
                let u = parameters.UsageNotification;
                PnpRequest::DeviceUsageNotification(UsageKind::from_raw(u.Type as u32), u.InPath)
            }
            minor::QUERY_PNP_DEVICE_STATE => PnpRequest::QueryPnpDeviceState(
                (*irp).IoStatus.Anonymous.Status,
                (*irp).IoStatus.Information as u32,
            ),
            minor::EJECT => PnpRequest::Eject,
            other => PnpRequest::Other(other),
        }
    }
}

/// Decode the current location of a power IRP.
///
/// # Safety
/// `irp` is an `IRP_MJ_POWER` IRP owned by the caller.
pub unsafe fn decode_power(irp: *mut IRP) -> PowerRequest {
    // SAFETY: the Power parameters of a SET_POWER/QUERY_POWER IRP.
    unsafe {
        let location = irp::current_stack_location(irp);
        let code = (*location).MinorFunction;
        if code != minor::SET_POWER && code != minor::QUERY_POWER {
            return PowerRequest::Other(code);
        }
        let p = (*location).Parameters.Power;
        let state = if p.Type == 0 {
            PowerState::System(
                SystemPower::from_raw(p.State.SystemState as u32)
                    .unwrap_or(SystemPower::Unspecified),
            )
        } else {
            PowerState::Device(
                DevicePower::from_raw(p.State.DeviceState as u32)
                    .unwrap_or(DevicePower::Unspecified),
            )
        };
        let action = PowerAction::from_raw(p.ShutdownType as u32);
        if code == minor::SET_POWER {
            PowerRequest::Set(state, action)
        } else {
            PowerRequest::Query(state, action)
        }
    }
}

/// A pool copy of `bytes` for the PnP manager (which frees it).
fn pool_copy(bytes: &[u8]) -> Result<usize, NTSTATUS> {
    // SAFETY: plain allocation, fully written before it is handed out.
    unsafe {
        let block = ExAllocatePoolWithTag(NON_PAGED_POOL_NX, bytes.len().max(1), TAG).cast::<u8>();
        if block.is_null() {
            return Err(STATUS_INSUFFICIENT_RESOURCES);
        }
        ptr::copy_nonoverlapping(bytes.as_ptr(), block, bytes.len());
        Ok(block as usize)
    }
}

fn units_bytes(units: &[u16]) -> Vec<u8> {
    units.iter().flat_map(|u| u.to_le_bytes()).collect()
}

/// A pool `DEVICE_RELATIONS` of `objects`, each referenced for the PnP manager.
pub fn relations(objects: &[*mut DEVICE_OBJECT]) -> Result<usize, NTSTATUS> {
    let bytes = size_of::<DEVICE_RELATIONS>() + core::mem::size_of_val(objects);
    // SAFETY: plain allocation, fully written; each object is a live device object the
    // caller names.
    unsafe {
        let block = ExAllocatePoolWithTag(NON_PAGED_POOL_NX, bytes, TAG).cast::<DEVICE_RELATIONS>();
        if block.is_null() {
            return Err(STATUS_INSUFFICIENT_RESOURCES);
        }
        (*block).Count = objects.len() as u32;
        let slots = ptr::addr_of_mut!((*block).Objects).cast::<*mut DEVICE_OBJECT>();
        for (index, &object) in objects.iter().enumerate() {
            ObfReferenceObject(object as *const c_void);
            *slots.add(index) = object;
        }
        Ok(block as usize)
    }
}

/// Write `answer` into the IRP's `IoStatus` (the IRP is completed by the caller).
/// `device` is the device the IRP was sent to (for `TargetDeviceRelation`); `child` maps a
/// child name of a relations reply to its device object.
///
/// # Safety
/// `irp` is a PnP IRP owned by the caller, whose current location is the one decoded.
pub unsafe fn apply(
    irp: *mut IRP,
    answer: &PnpAnswer,
    device: *mut DEVICE_OBJECT,
    child: &dyn Fn(&str) -> Option<*mut DEVICE_OBJECT>,
) -> NTSTATUS {
    let information = match &answer.reply {
        PnpReply::Nothing => Ok(None),
        PnpReply::Relations(names) => {
            let objects: Vec<*mut DEVICE_OBJECT> = names.iter().filter_map(|n| child(n)).collect();
            relations(&objects).map(Some)
        }
        PnpReply::TargetSelf => relations(&[device]).map(Some),
        PnpReply::Text(text) => pool_copy(&units_bytes(&utf16z(text))).map(Some),
        PnpReply::TextList(list) => {
            let mut units: Vec<u16> = Vec::new();
            for item in list {
                units.extend(utf16z(item));
            }
            units.push(0);
            pool_copy(&units_bytes(&units)).map(Some)
        }
        PnpReply::Capabilities(caps) => {
            // SAFETY: the caller's DEVICE_CAPABILITIES of this QUERY_CAPABILITIES IRP.
            unsafe {
                let location = irp::current_stack_location(irp);
                let target = (*location)
                    .Parameters
                    .DeviceCapabilities
                    .Capabilities
                    .cast::<u8>();
                if !target.is_null() {
                    let bytes = core::slice::from_raw_parts_mut(target, CAPABILITIES_SIZE);
                    let _ = encode_capabilities(caps, bytes);
                }
            }
            Ok(None)
        }
        PnpReply::BusInformation(info) => pool_copy(&encode_bus_information(info)).map(Some),
        PnpReply::Resources(list) => {
            pool_copy(&encode_resource_list(list, INTERFACE_TYPE_PCI_BUS, 0)).map(Some)
        }
        PnpReply::Requirements(requirements) => {
            pool_copy(&encode_requirements(requirements)).map(Some)
        }
        PnpReply::DeviceState(bits) => Ok(Some(*bits as usize)),
    };
    // SAFETY: the caller owns the IRP.
    unsafe {
        match information {
            Ok(Some(value)) => irp::set_status(irp, answer.status, value),
            Ok(None) => irp::set_status(irp, answer.status, (*irp).IoStatus.Information),
            Err(status) => {
                irp::set_status(irp, status, 0);
                return status;
            }
        }
    }
    answer.status
}

/// Overwrite the descriptors of the `CM_RESOURCE_LIST` at `list` with `resources` when
/// they have the same count (a rewrite such as hiding interrupts as DevicePrivate).
///
/// # Safety
/// `list` is NULL or a valid CM_RESOURCE_LIST owned by the caller's IRP.
unsafe fn rewrite_list(list: *mut u8, resources: &[crate::pnp::Assigned]) -> bool {
    // SAFETY: forwarded caller contract; the copy stays inside the original list (same
    // descriptor count, so the same size).
    unsafe {
        let old = resource_list_bytes(list);
        if old.len() != resource_list_size(resources.len()) {
            return false;
        }
        let interface_type = list.add(4).cast::<u32>().read_unaligned();
        let bus = list.add(8).cast::<u32>().read_unaligned();
        let new = encode_resource_list(resources, interface_type, bus);
        ptr::copy_nonoverlapping(new.as_ptr(), list, new.len());
        true
    }
}

/// START_DEVICE before forwarding: write `resources` (the machine's rewrite) over the
/// IRP's raw and translated lists; false when a list could not be rewritten in place.
///
/// # Safety
/// `irp` is a START_DEVICE IRP owned by the caller.
pub unsafe fn write_start_resources(irp: *mut IRP, resources: &StartResources) -> bool {
    // SAFETY: the StartDevice parameters of a START_DEVICE IRP.
    unsafe {
        let start = (*irp::current_stack_location(irp)).Parameters.StartDevice;
        let raw = start.AllocatedResources.cast::<u8>();
        let translated = start.AllocatedResourcesTranslated.cast::<u8>();
        (raw.is_null() || rewrite_list(raw, &resources.raw))
            && (translated.is_null() || rewrite_list(translated, &resources.translated))
    }
}

/// The lower driver's answer to a request forwarded and waited for: its status, with the
/// capabilities it filled or the requirements list it returned.
///
/// # Safety
/// `irp` came back from the lower driver with `request` as its current location.
pub unsafe fn lower_answer(irp: *mut IRP, request: &PnpRequest) -> PnpAnswer {
    // SAFETY: the IRP is ours again; its parameters are those of `request`.
    unsafe {
        let status = irp::status(irp);
        let reply = match (request, decode_pnp(irp)) {
            (PnpRequest::QueryCapabilities(_), PnpRequest::QueryCapabilities(caps)) => {
                PnpReply::Capabilities(caps)
            }
            (
                PnpRequest::FilterResourceRequirements(_),
                PnpRequest::FilterResourceRequirements(Some(list)),
            ) => PnpReply::Requirements(list),
            _ => PnpReply::Nothing,
        };
        PnpAnswer { status, reply }
    }
}
