//! The Windows driver objects of xenfilt.sys: the global [`Filter`] over xen.sys's
//! imports, `AddDevice` (attach a bus filter only where the IDs name a filtered bus), the
//! bus filter FDO (BusRelations rewriting, child filter creation) and the child filters
//! (identity answers, the EMULATED interface, remove locks).

use alloc::string::String;
use alloc::vec::Vec;
use core::mem::size_of;
use core::ptr;

use common::os::{KeyHandle, Os, RegValue};
use common::sync::{PassiveLock, SpinLock};
use common::wdm::device::{FILE_DEVICE_SECURE_OPEN, FILE_DEVICE_UNKNOWN};
use common::wdm::irp;
use common::wdm::log::{log, Level};
use common::wdm::os::KernelOs;
use common::wdm::xen_imports::ImportedXen;
use windows_sys::Wdk::Foundation::{DEVICE_OBJECT, DRIVER_OBJECT, IRP, KEVENT};
use windows_sys::Wdk::Storage::FileSystem::{
    DO_BUFFERED_IO, DO_DEVICE_INITIALIZING, DO_DIRECT_IO, DO_POWER_PAGABLE,
};
use windows_sys::Wdk::System::SystemServices::{
    BusQueryCompatibleIDs, BusQueryDeviceID, BusQueryInstanceID, BusRelations,
    DevicePropertyCompatibleIDs, DevicePropertyHardwareID, DeviceTextLocationInformation,
    ExAllocatePoolWithTag, IoAttachDeviceToDeviceStack, IoCreateDevice, IoDeleteDevice,
    IoDetachDevice, IoInvalidateDeviceRelations, KeInitializeEvent, KeSetEvent,
    ObfDereferenceObject, DEVICE_RELATIONS, IRP_MJ_PNP, IRP_MN_QUERY_DEVICE_RELATIONS,
    IRP_MN_QUERY_DEVICE_TEXT, IRP_MN_QUERY_ID, IRP_MN_QUERY_INTERFACE, IRP_MN_REMOVE_DEVICE,
};
use windows_sys::Win32::Foundation::{
    NTSTATUS, STATUS_DELETE_PENDING, STATUS_INVALID_DEVICE_REQUEST, STATUS_NOT_SUPPORTED,
    STATUS_NO_SUCH_DEVICE, STATUS_SUCCESS,
};
use windows_sys::Win32::System::Kernel::NotificationEvent;
use xen_include::guid::Guid;
use xen_include::interfaces::emulated::GUID_XENFILT_EMULATED_INTERFACE;

use super::remove_lock::RemoveCount;
use super::{codec, request};
use crate::fdo::ChildInfo;
use crate::filter::{BusHandle, Filter};
use crate::interface::get_interface;
use crate::pdo::IdentityQuery;

/// The xen.sys API the filter calls (unplug, active-device values).
static XEN: ImportedXen = ImportedXen;
/// The driver-global filter, created by `DriverEntry`. Every use is at PASSIVE_LEVEL and
/// short; no IRP is sent while it is held.
static FILTER: PassiveLock<Option<Filter<'static>>> = PassiveLock::new(None);
/// The EMULATED provider: outside the filter's lock, because child drivers call into it
/// through the interface at any time.
static EMULATED: crate::interface::EmulatedProvider = crate::interface::EmulatedProvider::new();

/// Every child filter device with the bus filter FDO that created it, so that the bus
/// filter can take the remaining ones down with it at its REMOVE_DEVICE.
static CHILDREN: SpinLock<Vec<(usize, usize)>> = SpinLock::new(Vec::new());

/// `Services\xenfilt\Parameters`.
const PARAMETERS: &str = "SYSTEM\\CurrentControlSet\\Services\\xenfilt\\Parameters";
/// Pool tag of identity answers (`XFlt`).
const TAG: u32 = u32::from_le_bytes(*b"XFlt");
/// `NonPagedPoolNx`.
const NON_PAGED_POOL_NX: i32 = 512;
/// Marks a device extension of this driver.
const MAGIC: u32 = u32::from_le_bytes(*b"XFLT");

/// Which of the driver's objects a device is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The filter FDO over a PCI root bus or IDE channel.
    Bus,
    /// The filter over one child PDO of a filtered bus.
    Child,
}

/// The device extension of every device of this driver (`magic` first).
#[repr(C)]
struct Extension {
    magic: u32,
    kind: Kind,
    /// The device below (`IoAttachDeviceToDeviceStack`).
    lower: *mut DEVICE_OBJECT,
    /// The PDO at the bottom of the stack (the bus PDO, or the child PDO).
    pdo: *mut DEVICE_OBJECT,
    /// The bus filter this device belongs to.
    bus: BusHandle,
    /// Child filters: outstanding IRPs.
    lock: RemoveCount,
    /// Signalled when `lock` drains during removal.
    drained: KEVENT,
}

/// Create the global filter (DriverEntry, after XenTouch succeeded).
pub fn init() {
    let safe_mode = KernelOs.safe_boot_mode() != 0;
    *FILTER.lock() = Some(Filter::new(&XEN, &EMULATED, safe_mode));
    log(
        Level::Info,
        format_args!("filter ready (safe mode: {safe_mode})"),
    );
}

/// The registry key `path`, closed when dropped.
struct Key(Option<KeyHandle>);

impl Key {
    fn open(path: &str) -> Self {
        Key(KernelOs.registry_open(None, path).ok())
    }
    fn sz(&self, name: &str) -> Option<String> {
        match KernelOs.registry_query(self.0?, name) {
            Ok(RegValue::Sz(data)) => Some(data),
            _ => None,
        }
    }
    fn dword(&self, name: &str) -> Option<u32> {
        match KernelOs.registry_query(self.0?, name) {
            Ok(RegValue::Dword(value)) => Some(value),
            _ => None,
        }
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        if let Some(key) = self.0 {
            KernelOs.registry_close(key);
        }
    }
}

/// The extension of `device` when it is one of this driver's.
///
/// # Safety
/// `device` is a valid device object.
unsafe fn extension_of<'a>(device: *const DEVICE_OBJECT) -> Option<&'a mut Extension> {
    // SAFETY: devices of this driver carry an Extension (create_device) whose first field
    // is the magic; the extension lives as long as the device.
    unsafe {
        let extension = (*device).DeviceExtension.cast::<Extension>();
        if extension.is_null() || (*extension).magic != MAGIC {
            return None;
        }
        Some(&mut *extension)
    }
}

/// Create a device of `kind` and attach it above `pdo`.
///
/// # Safety
/// `driver` is this driver's object; `pdo` a valid PDO; PASSIVE_LEVEL.
unsafe fn create_device(
    driver: *const DRIVER_OBJECT,
    pdo: *mut DEVICE_OBJECT,
    kind: Kind,
    bus: BusHandle,
) -> Result<*mut DEVICE_OBJECT, NTSTATUS> {
    let mut device: *mut DEVICE_OBJECT = ptr::null_mut();
    // SAFETY: valid driver object; the extension size is that of Extension.
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
        return Err(if status < 0 {
            status
        } else {
            STATUS_NO_SUCH_DEVICE
        });
    }
    // SAFETY: `device` was just created with room for an Extension; `pdo` is valid. The
    // extension is fully written before the device can receive an IRP (it is attached only
    // after, and DO_DEVICE_INITIALIZING is cleared last).
    unsafe {
        let extension = (*device).DeviceExtension.cast::<Extension>();
        extension.write(Extension {
            magic: MAGIC,
            kind,
            lower: ptr::null_mut(),
            pdo,
            bus,
            lock: RemoveCount::new(),
            drained: core::mem::zeroed(),
        });
        KeInitializeEvent(&mut (*extension).drained, NotificationEvent, false);
        let lower = IoAttachDeviceToDeviceStack(device, pdo);
        if lower.is_null() {
            IoDeleteDevice(device);
            return Err(STATUS_NO_SUCH_DEVICE);
        }
        (*extension).lower = lower;
        (*device).DeviceType = (*lower).DeviceType;
        (*device).Characteristics = (*lower).Characteristics;
        (*device).Flags |= (*lower).Flags & (DO_BUFFERED_IO | DO_DIRECT_IO | DO_POWER_PAGABLE);
        (*device).Flags &= !DO_DEVICE_INITIALIZING;
    }
    Ok(device)
}

/// Detach and delete one of this driver's devices.
///
/// # Safety
/// `device` is a device of this driver that receives no further IRPs.
unsafe fn destroy_device(device: *mut DEVICE_OBJECT, lower: *mut DEVICE_OBJECT) {
    CHILDREN
        .lock()
        .retain(|&(_, child)| child != device as usize);
    // SAFETY: forwarded caller contract.
    unsafe {
        IoDetachDevice(lower);
        IoDeleteDevice(device);
    }
}

/// `AddDevice`: attach a bus filter when the PDO's hardware or compatible IDs name a
/// filtered bus under `Services\xenfilt\Parameters`; otherwise succeed without attaching.
///
/// # Safety
/// Called by the PnP manager with valid objects.
pub unsafe extern "system" fn add_device(
    driver: *const DRIVER_OBJECT,
    pdo: *const DEVICE_OBJECT,
) -> NTSTATUS {
    let pdo = pdo.cast_mut();
    // SAFETY: the PnP manager passes an initialised PDO at PASSIVE_LEVEL.
    let (hardware, compatible) = unsafe {
        (
            request::property_list(pdo, DevicePropertyHardwareID),
            request::property_list(pdo, DevicePropertyCompatibleIDs),
        )
    };
    let parameters = Key::open(PARAMETERS);
    let bus = FILTER.lock().as_mut().and_then(|filter| {
        filter.add_device(
            hardware.iter().map(String::as_str),
            compatible.iter().map(String::as_str),
            |name| parameters.sz(name),
        )
    });
    drop(parameters);
    let Some(bus) = bus else {
        log(
            Level::Trace,
            format_args!(
                "AddDevice: {} not a filtered bus",
                hardware.first().map_or("(no hardware ID)", String::as_str)
            ),
        );
        return STATUS_SUCCESS;
    };
    // SAFETY: forwarded caller contract.
    match unsafe { create_device(driver, pdo, Kind::Bus, bus) } {
        Ok(_) => {
            log(
                Level::Info,
                format_args!(
                    "AddDevice: filtering {}",
                    hardware.first().map_or("?", String::as_str)
                ),
            );
            STATUS_SUCCESS
        }
        Err(status) => {
            if let Some(filter) = FILTER.lock().as_mut() {
                filter.remove_bus(bus);
            }
            log(
                Level::Error,
                format_args!("AddDevice: cannot attach ({status:#010x})"),
            );
            status
        }
    }
}

/// Dispatch routine for every `IRP_MJ_*`.
///
/// # Safety
/// Called by the I/O manager with a device object of this driver and an IRP it owns.
pub unsafe extern "system" fn dispatch(device: *const DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    // SAFETY: forwarded caller contract; a device without our extension gets the IRP
    // completed with an error.
    unsafe {
        let Some(extension) = extension_of(device).filter(|e| !e.lower.is_null()) else {
            irp::set_status(irp, STATUS_INVALID_DEVICE_REQUEST, 0);
            irp::complete_request(irp, irp::IO_NO_INCREMENT);
            return STATUS_INVALID_DEVICE_REQUEST;
        };
        match extension.kind {
            Kind::Bus => bus_dispatch(device.cast_mut(), extension, irp),
            Kind::Child => child_dispatch(device.cast_mut(), extension, irp),
        }
    }
}

/// `(major, minor)` of the IRP's current location.
///
/// # Safety
/// `irp` is a valid IRP owned by the caller.
unsafe fn codes(irp: *mut IRP) -> (u32, u32) {
    // SAFETY: forwarded caller contract.
    unsafe {
        let location = irp::current_stack_location(irp);
        (
            u32::from((*location).MajorFunction),
            u32::from((*location).MinorFunction),
        )
    }
}

/// Pass the IRP down unchanged.
///
/// # Safety
/// As for [`irp::call_driver`].
unsafe fn pass_down(lower: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    // SAFETY: forwarded caller contract.
    unsafe {
        irp::skip_current_stack_location(irp);
        irp::call_driver(lower, irp)
    }
}

/// The bus filter FDO.
///
/// # Safety
/// As for [`dispatch`]; `extension` is `device`'s.
unsafe fn bus_dispatch(
    device: *mut DEVICE_OBJECT,
    extension: &mut Extension,
    irp: *mut IRP,
) -> NTSTATUS {
    // SAFETY: forwarded caller contract.
    unsafe {
        let (major, minor) = codes(irp);
        if major == IRP_MJ_PNP && minor == IRP_MN_QUERY_DEVICE_RELATIONS {
            let location = irp::current_stack_location(irp);
            if (*location).Parameters.QueryDeviceRelations.Type == BusRelations {
                return bus_relations(device, extension, irp);
            }
        }
        if major == IRP_MJ_PNP && minor == IRP_MN_REMOVE_DEVICE {
            if let Some(filter) = FILTER.lock().as_mut() {
                filter.remove_bus(extension.bus);
            }
            // Child filters still attached (children PnP removed while the bus kept
            // reporting them) go before the bus driver deletes their PDOs.
            let remaining: Vec<usize> = {
                let mut children = CHILDREN.lock();
                let mine = children
                    .iter()
                    .filter(|&&(bus, _)| bus == device as usize)
                    .map(|&(_, child)| child)
                    .collect();
                children.retain(|&(bus, _)| bus != device as usize);
                mine
            };
            for child in remaining {
                let child = child as *mut DEVICE_OBJECT;
                if let Some(child_extension) = extension_of(child) {
                    let lower = child_extension.lower;
                    if !lower.is_null() {
                        child_extension.lower = ptr::null_mut();
                        destroy_device(child, lower);
                    }
                }
            }
            irp::set_status(irp, STATUS_SUCCESS, 0);
            let lower = extension.lower;
            let status = pass_down(lower, irp);
            extension.lower = ptr::null_mut();
            destroy_device(device, lower);
            log(Level::Info, format_args!("bus filter removed"));
            return status;
        }
        pass_down(extension.lower, irp)
    }
}

/// What the bus reported about one child, owned.
struct Child {
    pdo: usize,
    device_id: String,
    instance_id: String,
    compatible_ids: Vec<String>,
    location: Option<String>,
}

/// Query the identity of a child PDO from its bus driver.
///
/// # Safety
/// `pdo` is a child PDO referenced by the relations being processed; PASSIVE_LEVEL.
unsafe fn query_child(pdo: *mut DEVICE_OBJECT) -> Option<Child> {
    // SAFETY: forwarded caller contract.
    unsafe {
        Some(Child {
            pdo: pdo as usize,
            device_id: request::query_id(pdo, BusQueryDeviceID).ok()?,
            instance_id: request::query_id(pdo, BusQueryInstanceID).ok()?,
            compatible_ids: request::query_id_list(pdo, BusQueryCompatibleIDs).unwrap_or_default(),
            location: request::query_location(pdo).ok(),
        })
    }
}

/// BusRelations: let the bus answer, then reconcile the child filters, rewrite the list to
/// the PDOs the filter state lets through, and invalidate when asked.
///
/// # Safety
/// As for [`bus_dispatch`]; PASSIVE_LEVEL (QUERY_DEVICE_RELATIONS is sent there).
unsafe fn bus_relations(
    device: *mut DEVICE_OBJECT,
    extension: &mut Extension,
    irp: *mut IRP,
) -> NTSTATUS {
    // SAFETY: forwarded caller contract; the IRP is ours again after forward_and_wait.
    unsafe {
        let mut status = request::forward_and_wait(extension.lower, irp);
        if status >= 0 {
            filter_relations(device, extension, irp);
            status = irp::status(irp);
        }
        irp::complete_request(irp, irp::IO_NO_INCREMENT);
        status
    }
}

/// # Safety
/// As for [`bus_relations`], with the IRP completed successfully by the bus.
unsafe fn filter_relations(device: *mut DEVICE_OBJECT, extension: &mut Extension, irp: *mut IRP) {
    // SAFETY: a successful BusRelations reply is NULL or a pool DEVICE_RELATIONS with
    // `Count` referenced objects, which this driver may rewrite (it owns the IRP now).
    unsafe {
        let relations = (*irp).IoStatus.Information as *mut DEVICE_RELATIONS;
        let (count, objects) = if relations.is_null() {
            (0, ptr::null_mut())
        } else {
            (
                (*relations).Count as usize,
                ptr::addr_of_mut!((*relations).Objects).cast::<*mut DEVICE_OBJECT>(),
            )
        };
        let current: Vec<usize> = (0..count).map(|i| *objects.add(i) as usize).collect();
        let mut children = Vec::with_capacity(current.len());
        let mut unknown = Vec::new();
        for &pdo in &current {
            match query_child(pdo as *mut DEVICE_OBJECT) {
                Some(child) => children.push(child),
                None => unknown.push(pdo),
            }
        }
        let compatible: Vec<Vec<&str>> = children
            .iter()
            .map(|c| c.compatible_ids.iter().map(String::as_str).collect())
            .collect();
        let infos: Vec<ChildInfo<'_>> = children
            .iter()
            .zip(&compatible)
            .map(|(c, ids)| ChildInfo {
                pdo: c.pdo,
                device_id: &c.device_id,
                instance_id: &c.instance_id,
                compatible_ids: ids,
                location: c.location.as_deref(),
            })
            .collect();
        let precedence_key = Key::open(&alloc::format!("{PARAMETERS}\\Precedence"));
        let precedence: Vec<(&str, u32)> = compatible
            .iter()
            .flatten()
            .filter_map(|id| precedence_key.dword(id).map(|rank| (*id, rank)))
            .collect();
        drop(precedence_key);
        let outcome = FILTER.lock().as_mut().and_then(|filter| {
            filter.bus_relations(extension.bus, &infos, |id| {
                precedence
                    .iter()
                    .find(|(name, _)| name.eq_ignore_ascii_case(id))
                    .map(|(_, rank)| *rank)
            })
        });
        let Some(outcome) = outcome else {
            return;
        };
        let driver = (*device).DriverObject;
        for &pdo in &outcome.scan.created {
            match create_device(
                driver,
                pdo as *mut DEVICE_OBJECT,
                Kind::Child,
                extension.bus,
            ) {
                Ok(child) => CHILDREN.lock().push((device as usize, child as usize)),
                Err(status) => log(
                    Level::Error,
                    format_args!("child filter over {pdo:#x} not created ({status:#010x})"),
                ),
            }
        }
        for &pdo in &outcome.scan.destroyed {
            destroy_child(driver, pdo as *mut DEVICE_OBJECT);
        }
        let mut report = outcome.report.clone();
        report.extend(unknown);
        let rewrite = codec::rewrite_relations(&current, &report);
        if !relations.is_null() {
            for (index, &object) in rewrite.keep.iter().enumerate() {
                *objects.add(index) = object as *mut DEVICE_OBJECT;
            }
            (*relations).Count = rewrite.keep.len() as u32;
        }
        for &object in &rewrite.drop {
            ObfDereferenceObject(object as *const core::ffi::c_void);
        }
        log(
            Level::Trace,
            format_args!(
                "BusRelations: {} from the bus, {} reported, {} new filters{}",
                current.len(),
                rewrite.keep.len(),
                outcome.scan.created.len(),
                if outcome.unplugged {
                    ", unplugged emulated devices"
                } else {
                    ""
                }
            ),
        );
        if outcome.invalidate {
            IoInvalidateDeviceRelations(extension.pdo, BusRelations);
        }
    }
}

/// Remove the child filter attached directly over `pdo` (a child that vanished before it
/// was ever reported: PnP never sends it REMOVE_DEVICE).
///
/// # Safety
/// `pdo` is a child PDO still valid (the bus just dropped it from its list).
unsafe fn destroy_child(driver: *mut DRIVER_OBJECT, pdo: *mut DEVICE_OBJECT) {
    // SAFETY: the device attached over the PDO is read once; it is ours only if it carries
    // our extension as a child filter over this PDO.
    unsafe {
        let attached = (*pdo).AttachedDevice;
        if attached.is_null() || (*attached).DriverObject != driver {
            return;
        }
        if let Some(extension) = extension_of(attached) {
            if extension.kind == Kind::Child && extension.pdo == pdo && !extension.lower.is_null() {
                let lower = extension.lower;
                extension.lower = ptr::null_mut();
                destroy_device(attached, lower);
            }
        }
    }
}

/// Copy `text` into a non-paged pool UTF-16 string the PnP manager will free.
fn pool_string(text: &str) -> Option<usize> {
    let units = codec::utf16z(text);
    let bytes = units.len() * 2;
    // SAFETY: plain allocation; the block is fully written before it is handed out.
    unsafe {
        let block = ExAllocatePoolWithTag(NON_PAGED_POOL_NX, bytes, TAG).cast::<u16>();
        if block.is_null() {
            return None;
        }
        ptr::copy_nonoverlapping(units.as_ptr(), block, units.len());
        Some(block as usize)
    }
}

/// The identity query an IRP asks for, when the child filter overrides it.
///
/// # Safety
/// `irp` is a valid PnP IRP owned by the caller.
unsafe fn identity_query(irp: *mut IRP, minor: u32) -> Option<IdentityQuery> {
    // SAFETY: forwarded caller contract; the parameter union member matches the minor code.
    unsafe {
        let location = irp::current_stack_location(irp);
        match minor {
            IRP_MN_QUERY_ID => {
                let id_type = (*location).Parameters.QueryId.IdType;
                if id_type == BusQueryDeviceID {
                    Some(IdentityQuery::DeviceId)
                } else if id_type == BusQueryInstanceID {
                    Some(IdentityQuery::InstanceId)
                } else {
                    None
                }
            }
            IRP_MN_QUERY_DEVICE_TEXT => ((*location).Parameters.QueryDeviceText.DeviceTextType
                == DeviceTextLocationInformation)
                .then_some(IdentityQuery::LocationInformation),
            _ => None,
        }
    }
}

/// A child filter.
///
/// # Safety
/// As for [`dispatch`]; `extension` is `device`'s.
unsafe fn child_dispatch(
    device: *mut DEVICE_OBJECT,
    extension: &mut Extension,
    irp: *mut IRP,
) -> NTSTATUS {
    // SAFETY: forwarded caller contract.
    unsafe {
        if !extension.lock.acquire() {
            irp::set_status(irp, STATUS_DELETE_PENDING, 0);
            irp::complete_request(irp, irp::IO_NO_INCREMENT);
            return STATUS_DELETE_PENDING;
        }
        let (major, minor) = codes(irp);
        let lower = extension.lower;
        if major == IRP_MJ_PNP {
            if let Some(query) = identity_query(irp, minor) {
                let pdo = extension.pdo as usize;
                let answer = FILTER
                    .lock()
                    .as_ref()
                    .and_then(|filter| filter.identity(extension.bus, pdo, query));
                if let Some(buffer) = answer.as_deref().and_then(pool_string) {
                    irp::set_status(irp, STATUS_SUCCESS, buffer);
                    irp::complete_request(irp, irp::IO_NO_INCREMENT);
                    release(extension);
                    return STATUS_SUCCESS;
                }
            } else if minor == IRP_MN_QUERY_INTERFACE {
                answer_interface(irp);
            } else if minor == IRP_MN_REMOVE_DEVICE {
                return child_remove(device, extension, irp);
            }
        }
        let status = pass_down(lower, irp);
        release(extension);
        status
    }
}

fn release(extension: &Extension) {
    if extension.lock.release() {
        // SAFETY: the event was initialised at creation and lives in the extension.
        unsafe { KeSetEvent(ptr::addr_of!(extension.drained).cast_mut(), 0, false) };
    }
}

/// QUERY_INTERFACE for XENFILT_EMULATED, answered only while nobody above did.
///
/// # Safety
/// `irp` is a QUERY_INTERFACE IRP owned by the caller.
unsafe fn answer_interface(irp: *mut IRP) {
    // SAFETY: forwarded caller contract: the parameters describe the caller's buffer of
    // `Size` bytes. The provider lives in the static filter, which is never dropped or
    // moved after DriverEntry, so the context pointer stays valid.
    unsafe {
        if irp::status(irp) != STATUS_NOT_SUPPORTED {
            return;
        }
        let parameters = (*irp::current_stack_location(irp))
            .Parameters
            .QueryInterface;
        if parameters.InterfaceType.is_null() || parameters.Interface.is_null() {
            return;
        }
        let guid = parameters.InterfaceType.cast::<Guid>().read_unaligned();
        if guid != GUID_XENFILT_EMULATED_INTERFACE {
            return;
        }
        let status = get_interface(
            &EMULATED,
            parameters.Version,
            parameters.Interface.cast(),
            usize::from(parameters.Size),
        );
        irp::set_status(irp, status, (*irp).IoStatus.Information);
    }
}

/// REMOVE_DEVICE on a child filter: drain I/O, pass it down, and delete the filter when the
/// child has gone from the bus (a child still reported keeps its filter).
///
/// # Safety
/// As for [`child_dispatch`], holding one lock reference.
unsafe fn child_remove(
    device: *mut DEVICE_OBJECT,
    extension: &mut Extension,
    irp: *mut IRP,
) -> NTSTATUS {
    // SAFETY: forwarded caller contract.
    unsafe {
        let gone = FILTER
            .lock()
            .as_mut()
            .is_some_and(|filter| filter.child_removed(extension.bus, extension.pdo as usize));
        let lower = extension.lower;
        irp::set_status(irp, STATUS_SUCCESS, 0);
        if !gone {
            let status = pass_down(lower, irp);
            release(extension);
            return status;
        }
        release(extension);
        if !extension.lock.begin_remove() {
            request::wait(&mut extension.drained);
        }
        let status = pass_down(lower, irp);
        extension.lower = ptr::null_mut();
        destroy_device(device, lower);
        status
    }
}
