//! The bus FDO's IRP handling (upstream `fdo.c`'s `FdoDispatchPnp`/`FdoDispatchPower`, the
//! WDM half): PnP state bookkeeping, START/CANCEL/capabilities/usage notifications sent
//! down and finished on the way back, REMOVE_DEVICE draining the remove lock before the
//! FDO leaves the driver's list, BusRelations built from the child PDOs; device power
//! D3→D0 finished in a work item after the lower drivers powered up and D0→D3 done in a
//! work item before passing down; system power translated into a device power IRP with
//! the lower capabilities' `DeviceState[]` (none at shutdown and beyond).

use alloc::vec::Vec;
use core::ffi::c_void;
use core::ptr;
use core::sync::atomic::{AtomicI32, AtomicU32, Ordering};

use common::sync::SpinLock;
use common::wdm::kernel::WorkItem;
use common::wdm::log::{log, Level};
use common::wdm::resources::{self, Partial};
use common::wdm::{interrupt, irp, pnp_irp};
use windows_sys::Wdk::Foundation::{DEVICE_OBJECT, IRP};
use windows_sys::Wdk::System::SystemServices::{
    BusRelations, DevicePowerState, DeviceUsageTypeDumpFile, DeviceUsageTypeHibernation,
    DeviceUsageTypePaging, ExAllocatePoolWithTag, ExFreePool, IoInvalidateDeviceRelations,
    IoInvalidateDeviceState, PoCallDriver, PoRequestPowerIrp, PoSetPowerState, PoStartNextPowerIrp,
    SystemPowerState, DEVICE_CAPABILITIES, DEVICE_RELATIONS, IRP_MJ_PNP, IRP_MJ_POWER,
    IRP_MN_CANCEL_REMOVE_DEVICE, IRP_MN_CANCEL_STOP_DEVICE, IRP_MN_DEVICE_USAGE_NOTIFICATION,
    IRP_MN_FILTER_RESOURCE_REQUIREMENTS, IRP_MN_QUERY_CAPABILITIES, IRP_MN_QUERY_DEVICE_RELATIONS,
    IRP_MN_QUERY_PNP_DEVICE_STATE, IRP_MN_QUERY_REMOVE_DEVICE, IRP_MN_QUERY_STOP_DEVICE,
    IRP_MN_REMOVE_DEVICE, IRP_MN_SET_POWER, IRP_MN_START_DEVICE, IRP_MN_STOP_DEVICE,
    IRP_MN_SURPRISE_REMOVAL, PNP_DEVICE_NOT_DISABLEABLE, POWER_STATE,
};
use windows_sys::Win32::Foundation::{NTSTATUS, STATUS_PENDING, STATUS_SUCCESS};
use windows_sys::Win32::System::Power::{
    PowerDeviceD0, PowerDeviceD3, PowerSystemHibernate, PowerSystemShutdown, PowerSystemWorking,
};

use super::device::{complete, destroy_fdo, Dx, PnpState};
use super::runtime::FdoRuntime;
use crate::fdo::FdoResources;

/// Pool tag of BusRelations answers (`FDO`, shown reversed: upstream `' ODF'`).
const TAG: u32 = u32::from_le_bytes(*b"FDO ");
/// `NonPagedPoolNx`.
const NON_PAGED_POOL_NX: i32 = 512;
/// `DEVICE_CAPABILITIES.Removable` in the bit field.
const REMOVABLE: u32 = 1 << 4;
/// Number of `DeviceState[]` entries (PowerSystemUnspecified..PowerSystemShutdown).
const SYSTEM_STATES: usize = 7;

/// The bus FDO's WDM state.
pub struct Fdo {
    /// This FDO.
    device: *mut DEVICE_OBJECT,
    /// The platform PCI PDO at the bottom of the stack.
    pdo: *mut DEVICE_OBJECT,
    /// The device below (`IoAttachDeviceToDeviceStack`).
    lower: *mut DEVICE_OBJECT,
    /// Device power transitions run here (upstream `DevicePowerWorkItem`).
    device_power: WorkItem,
    /// The lower stack's S→D mapping from QUERY_CAPABILITIES.
    device_state: SpinLock<[i32; SYSTEM_STATES]>,
    /// The current device power state (`PowerDeviceD0`…).
    power: AtomicI32,
    /// The current system power state (`PowerSystemWorking`…).
    system_power: AtomicI32,
    /// System power transitions into and out of hibernate run here.
    system_power_work: WorkItem,
    /// Paging, hibernation and dump-file usages (DEVICE_USAGE_NOTIFICATION).
    usages: [AtomicU32; 3],
    /// The child PDOs (device objects referenced by the PnP manager once reported).
    children: SpinLock<Vec<usize>>,
    /// The FDO runtime (subsystems, threads) of this platform device.
    runtime: FdoRuntime,
}

// SAFETY: the raw device pointers are kernel objects valid for the FDO's life; the mutable
// parts are atomics or behind locks.
unsafe impl Send for Fdo {}
// SAFETY: as above.
unsafe impl Sync for Fdo {}

impl Fdo {
    /// The FDO state of `device` attached above `pdo` with `lower` below it.
    ///
    /// # Safety
    /// The three device objects are valid; `device` is this driver's FDO.
    pub unsafe fn new(
        device: *mut DEVICE_OBJECT,
        pdo: *mut DEVICE_OBJECT,
        lower: *mut DEVICE_OBJECT,
    ) -> Result<Fdo, NTSTATUS> {
        // SAFETY: forwarded caller contract (AddDevice, PASSIVE_LEVEL).
        let runtime = unsafe { super::runtime::create(pdo, lower)? };
        Ok(Fdo {
            runtime,
            device,
            pdo,
            lower,
            // SAFETY: `device` outlives the Fdo (deleted after it is dropped).
            device_power: unsafe { WorkItem::new(device)? },
            device_state: SpinLock::new([PowerDeviceD3; SYSTEM_STATES]),
            power: AtomicI32::new(PowerDeviceD3),
            system_power: AtomicI32::new(PowerSystemWorking),
            // SAFETY: as above.
            system_power_work: unsafe { WorkItem::new(device)? },
            usages: [AtomicU32::new(0), AtomicU32::new(0), AtomicU32::new(0)],
            children: SpinLock::new(Vec::new()),
        })
    }

    /// True while a paging, hibernation or dump file is on the bus.
    fn in_special_use(&self) -> bool {
        self.usages.iter().any(|u| u.load(Ordering::Acquire) != 0)
    }
}

/// Pass the IRP down unchanged and drop the IRP's remove-lock reference.
///
/// # Safety
/// `irp` is owned by the caller, which holds one reference on `dx`'s lock.
unsafe fn pass_down(dx: &Dx, fdo: &Fdo, irp: *mut IRP) -> NTSTATUS {
    // SAFETY: forwarded caller contract.
    let status = unsafe {
        irp::skip_current_stack_location(irp);
        irp::call_driver(fdo.lower, irp)
    };
    dx.release();
    status
}

/// Send down, wait, and complete with the lower status unless `finish` changes it.
///
/// # Safety
/// As for [`pass_down`]; PASSIVE_LEVEL.
unsafe fn forward_then(
    dx: &Dx,
    fdo: &Fdo,
    irp: *mut IRP,
    finish: impl FnOnce(NTSTATUS) -> NTSTATUS,
) -> NTSTATUS {
    // SAFETY: forwarded caller contract; the IRP is ours again after forward_and_wait.
    let status = unsafe {
        let status = finish(irp::forward_and_wait(fdo.lower, irp));
        complete(irp, status)
    };
    dx.release();
    status
}

/// Dispatch one IRP on the FDO.
///
/// # Safety
/// Called from the driver's dispatch routine with the IRP owned and one remove-lock
/// reference held for it.
pub unsafe fn dispatch(dx: &Dx, fdo: &Fdo, irp: *mut IRP, major: u32, minor: u32) -> NTSTATUS {
    // SAFETY: forwarded caller contract.
    unsafe {
        match major {
            IRP_MJ_PNP => pnp(dx, fdo, irp, minor),
            IRP_MJ_POWER => power(dx, fdo, irp, minor),
            _ => pass_down(dx, fdo, irp),
        }
    }
}

/// # Safety
/// As for [`dispatch`].
unsafe fn pnp(dx: &Dx, fdo: &Fdo, irp: *mut IRP, minor: u32) -> NTSTATUS {
    // SAFETY: forwarded caller contract; each arm owns the IRP until it completes or
    // passes it down.
    unsafe {
        let location = irp::current_stack_location(irp);
        match minor {
            IRP_MN_FILTER_RESOURCE_REQUIREMENTS if fdo.runtime.runtime.is_active() => {
                forward_then(dx, fdo, irp, |status| {
                    if status >= 0 {
                        add_message_interrupts(irp);
                    }
                    irp::status(irp)
                })
            }
            IRP_MN_START_DEVICE => {
                let (raw, translated) = start_resources(irp);
                forward_then(dx, fdo, irp, |status| {
                    if status >= 0 {
                        let resources = if fdo.runtime.runtime.is_active() {
                            fdo.runtime.connect_interrupts(fdo.pdo, &raw, &translated)
                        } else {
                            FdoResources::default()
                        };
                        if let Err(status) = fdo.runtime.start(resources) {
                            log(Level::Error, format_args!("D3->D0 failed ({status:#010x})"));
                            return status;
                        }
                        set_device_power(fdo, PowerDeviceD0);
                        dx.set_state(PnpState::Started);
                        log(Level::Info, format_args!("FDO started"));
                    } else {
                        log(
                            Level::Error,
                            format_args!("START_DEVICE failed below ({status:#010x})"),
                        );
                    }
                    status
                })
            }
            IRP_MN_QUERY_STOP_DEVICE | IRP_MN_QUERY_REMOVE_DEVICE => {
                if let Err(status) = fdo.runtime.runtime.query_stop() {
                    // Vetoed while the balloon is inflated.
                    let status = complete(irp, status);
                    dx.release();
                    return status;
                }
                dx.set_state(if minor == IRP_MN_QUERY_STOP_DEVICE {
                    PnpState::StopPending
                } else {
                    PnpState::RemovePending
                });
                irp::set_status(irp, STATUS_SUCCESS, 0);
                pass_down(dx, fdo, irp)
            }
            IRP_MN_CANCEL_STOP_DEVICE | IRP_MN_CANCEL_REMOVE_DEVICE => {
                forward_then(dx, fdo, irp, |_| {
                    dx.restore_state();
                    STATUS_SUCCESS
                })
            }
            IRP_MN_STOP_DEVICE | IRP_MN_SURPRISE_REMOVAL => {
                if minor == IRP_MN_STOP_DEVICE {
                    fdo.runtime.runtime.d0_to_d3();
                    fdo.runtime.disconnect_interrupts();
                    set_device_power(fdo, PowerDeviceD3);
                }
                dx.set_state(if minor == IRP_MN_STOP_DEVICE {
                    PnpState::Stopped
                } else {
                    PnpState::SurpriseRemovePending
                });
                irp::set_status(irp, STATUS_SUCCESS, 0);
                pass_down(dx, fdo, irp)
            }
            IRP_MN_REMOVE_DEVICE => remove(dx, fdo, irp),
            IRP_MN_QUERY_DEVICE_RELATIONS
                if (*location).Parameters.QueryDeviceRelations.Type == BusRelations =>
            {
                match bus_relations(fdo) {
                    Ok(relations) => {
                        irp::set_status(irp, STATUS_SUCCESS, relations as usize);
                        pass_down(dx, fdo, irp)
                    }
                    Err(status) => {
                        let status = complete(irp, status);
                        dx.release();
                        status
                    }
                }
            }
            IRP_MN_QUERY_CAPABILITIES => {
                let capabilities = (*location).Parameters.DeviceCapabilities.Capabilities;
                forward_then(dx, fdo, irp, |status| {
                    if status >= 0 && !capabilities.is_null() {
                        remember_capabilities(fdo, &mut *capabilities);
                    }
                    status
                })
            }
            IRP_MN_DEVICE_USAGE_NOTIFICATION => {
                let usage = (*location).Parameters.UsageNotification;
                forward_then(dx, fdo, irp, |status| {
                    if status >= 0 {
                        count_usage(fdo, usage.Type, usage.InPath);
                        IoInvalidateDeviceState(fdo.pdo);
                    }
                    status
                })
            }
            IRP_MN_QUERY_PNP_DEVICE_STATE => {
                if fdo.in_special_use() {
                    let information =
                        (*irp).IoStatus.Information | PNP_DEVICE_NOT_DISABLEABLE as usize;
                    irp::set_status(irp, STATUS_SUCCESS, information);
                }
                pass_down(dx, fdo, irp)
            }
            _ => pass_down(dx, fdo, irp),
        }
    }
}

/// Largest resource list this driver reads (partial descriptors).
const MAX_PARTIALS: usize = 256;

/// Copy the START_DEVICE list at `list` (a `CM_RESOURCE_LIST`), decoded, then hide its
/// message interrupts from PCI.sys (they are this driver's additions).
///
/// # Safety
/// `list` is NULL or a CM_RESOURCE_LIST of the IRP the caller owns.
unsafe fn take_resource_list(list: *mut u8) -> Vec<Partial> {
    if list.is_null() {
        return Vec::new();
    }
    // SAFETY: the header (full count, then the first full descriptor's partial count) is
    // inside any CM_RESOURCE_LIST; the partials follow, `count` of them.
    unsafe {
        let full = list.cast::<u32>().read_unaligned();
        let count = list
            .add(resources::RESOURCE_LIST_COUNT_OFFSET)
            .cast::<u32>()
            .read_unaligned() as usize;
        if full != 1 || count > MAX_PARTIALS {
            log(
                Level::Error,
                format_args!("START_DEVICE: {full} lists, {count} descriptors: not used"),
            );
            return Vec::new();
        }
        let bytes = core::slice::from_raw_parts_mut(list, resources::resource_list_size(count));
        let partials = resources::partials(bytes).unwrap_or_default();
        let _ = resources::hide_message_interrupts(bytes);
        partials
    }
}

/// The raw and translated resources of a START_DEVICE IRP (message interrupts hidden in
/// the IRP's lists before it goes down).
///
/// # Safety
/// `irp` is a START_DEVICE IRP owned by the caller.
unsafe fn start_resources(irp: *mut IRP) -> (Vec<Partial>, Vec<Partial>) {
    // SAFETY: the StartDevice parameters of a START_DEVICE IRP.
    unsafe {
        let start = (*irp::current_stack_location(irp)).Parameters.StartDevice;
        (
            take_resource_list(start.AllocatedResources.cast()),
            take_resource_list(start.AllocatedResourcesTranslated.cast()),
        )
    }
}

/// FILTER_RESOURCE_REQUIREMENTS after the lower drivers: replace the list with one that
/// has a message interrupt per processor (and the line interrupt on CPU 0).
///
/// # Safety
/// `irp` is owned by the caller and completed successfully below.
unsafe fn add_message_interrupts(irp: *mut IRP) {
    // SAFETY: a successful reply is NULL or a pool IO_RESOURCE_REQUIREMENTS_LIST of
    // `ListSize` bytes the requester owns; it is replaced by a new pool block and freed.
    unsafe {
        let old = (*irp).IoStatus.Information as *mut u8;
        if old.is_null() {
            return;
        }
        let size = old.cast::<u32>().read_unaligned() as usize;
        let bytes = core::slice::from_raw_parts(old, size);
        let new = match resources::filter_requirements(bytes, &interrupt::processors()) {
            Ok(new) => new,
            Err(error) => {
                log(
                    Level::Error,
                    format_args!("FILTER_RESOURCE_REQUIREMENTS: {error:?}: left unchanged"),
                );
                return;
            }
        };
        let block = ExAllocatePoolWithTag(NON_PAGED_POOL_NX, new.len(), TAG).cast::<u8>();
        if block.is_null() {
            return;
        }
        ptr::copy_nonoverlapping(new.as_ptr(), block, new.len());
        ExFreePool(old.cast());
        irp::set_status(irp, STATUS_SUCCESS, block as usize);
    }
}

/// Save the lower stack's S→D mapping and report the bus as not removable.
fn remember_capabilities(fdo: &Fdo, capabilities: &mut DEVICE_CAPABILITIES) {
    *fdo.device_state.lock() = capabilities.DeviceState;
    capabilities._bitfield &= !REMOVABLE;
}

/// Count one usage arriving (`in_path`) or leaving.
fn count_usage(fdo: &Fdo, usage: i32, in_path: bool) {
    let index = if usage == DeviceUsageTypePaging {
        0
    } else if usage == DeviceUsageTypeHibernation {
        1
    } else if usage == DeviceUsageTypeDumpFile {
        2
    } else {
        return;
    };
    let Some(counter) = fdo.usages.get(index) else {
        return;
    };
    if in_path {
        counter.fetch_add(1, Ordering::AcqRel);
    } else {
        let _ = counter.fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| c.checked_sub(1));
    }
}

/// A pool `DEVICE_RELATIONS` listing the child PDOs of the classes the runtime reports
/// (a PDO object is created the first time a class is reported), each referenced for the
/// PnP manager; PDOs removed while missing and no longer reported are destroyed.
///
/// # Safety
/// PASSIVE_LEVEL, from the FDO's BusRelations IRP.
unsafe fn bus_relations(fdo: &Fdo) -> Result<*mut DEVICE_RELATIONS, NTSTATUS> {
    let classes = fdo.runtime.bus_relations();
    let mut reported: Vec<*mut DEVICE_OBJECT> = Vec::new();
    let mut reaped: Vec<*mut DEVICE_OBJECT> = Vec::new();
    {
        let mut children = fdo.children.lock();
        // SAFETY: every listed child is a live PDO of this FDO.
        let class_of = |child: usize| unsafe { pdo_of(child).map(super::pdo::class_of) };
        for class in &classes {
            let existing = children
                .iter()
                .copied()
                .find(|&child| class_of(child).as_deref() == Some(class.as_str()));
            let device = match existing {
                Some(device) => device as *mut DEVICE_OBJECT,
                // SAFETY: our own FDO; PASSIVE_LEVEL.
                None => match unsafe { super::pdo::create(fdo.device, fdo, class) } {
                    Ok(device) => {
                        children.push(device as usize);
                        device
                    }
                    Err(status) => {
                        log(
                            Level::Error,
                            format_args!("PDO {class} not created ({status:#010x})"),
                        );
                        continue;
                    }
                },
            };
            // SAFETY: as above.
            if let Some(pdo) = unsafe { pdo_of(device as usize) } {
                super::pdo::enumerated(pdo);
            }
            reported.push(device);
        }
        children.retain(|&child| {
            let gone = !reported.contains(&(child as *mut DEVICE_OBJECT))
                // SAFETY: as above.
                && unsafe { pdo_of(child) }.is_some_and(super::pdo::is_deleted);
            if gone {
                reaped.push(child as *mut DEVICE_OBJECT);
            }
            !gone
        });
    }
    for device in reaped {
        // SAFETY: removed by PnP while missing and now left out of the relations.
        unsafe { super::pdo::destroy(device) };
    }
    pnp_irp::relations(&reported).map(|block| block as *mut DEVICE_RELATIONS)
}

/// The PDO state of a child device object.
///
/// # Safety
/// `child` is a live device object of this driver.
unsafe fn pdo_of<'a>(child: usize) -> Option<&'a super::pdo::Pdo> {
    // SAFETY: forwarded caller contract.
    unsafe {
        let dx = super::device::dx_of(child as *const DEVICE_OBJECT)?;
        dx.pdo.as_ref()
    }
}

impl Fdo {
    /// This FDO's device object.
    pub fn device(&self) -> *mut DEVICE_OBJECT {
        self.device
    }

    /// The FDO runtime.
    pub fn runtime(&self) -> &FdoRuntime {
        &self.runtime
    }

    /// `IoInvalidateDeviceRelations(BusRelations)` on the platform PDO.
    pub fn invalidate_bus_relations(&self) {
        // SAFETY: the PDO outlives the attached FDO.
        unsafe { IoInvalidateDeviceRelations(self.pdo, BusRelations) };
    }

    /// A child PDO is being destroyed: out of the list.
    pub fn forget_child(&self, device: *mut DEVICE_OBJECT) {
        self.children
            .lock()
            .retain(|&child| child != device as usize);
    }

    /// Destroy every remaining child PDO (the FDO's REMOVE_DEVICE; PnP removed them).
    fn destroy_children(&self) {
        let children: Vec<usize> = core::mem::take(&mut *self.children.lock());
        for child in children {
            // SAFETY: the PnP manager removes children before their parent.
            unsafe { super::pdo::destroy(child as *mut DEVICE_OBJECT) };
        }
    }
}

/// REMOVE_DEVICE: refuse new IRPs, wait for those in flight, pass the IRP down, then leave
/// the driver's FDO list, detach and delete.
///
/// # Safety
/// As for [`dispatch`].
unsafe fn remove(dx: &Dx, fdo: &Fdo, irp: *mut IRP) -> NTSTATUS {
    fdo.runtime.remove();
    fdo.destroy_children();
    set_device_power(fdo, PowerDeviceD3);
    dx.set_state(PnpState::Deleted);
    dx.release();
    dx.release_and_wait();
    let (device, lower) = (fdo.device, fdo.lower);
    // SAFETY: forwarded caller contract; nothing else touches the FDO once drained and
    // Deleted, so it can be destroyed after the lower drivers saw the IRP.
    unsafe {
        irp::set_status(irp, STATUS_SUCCESS, 0);
        irp::skip_current_stack_location(irp);
        let status = irp::call_driver(lower, irp);
        destroy_fdo(device, lower);
        log(Level::Info, format_args!("FDO removed"));
        status
    }
}

/// # Safety
/// As for [`dispatch`].
unsafe fn power(dx: &Dx, fdo: &Fdo, irp: *mut IRP, minor: u32) -> NTSTATUS {
    // SAFETY: forwarded caller contract.
    unsafe {
        let location = irp::current_stack_location(irp);
        if minor != IRP_MN_SET_POWER {
            return power_down_the_stack(dx, fdo, irp);
        }
        let parameters = (*location).Parameters.Power;
        if parameters.Type == DevicePowerState {
            let target = parameters.State.DeviceState;
            if target == PowerDeviceD0 {
                // D3→D0: the lower drivers power up first; the rest runs in a work item.
                power_down_then(fdo, irp, device_powered_up)
            } else {
                device_power_down(dx, fdo, irp, target)
            }
        } else if parameters.Type == SystemPowerState
            && parameters.State.SystemState < PowerSystemShutdown
        {
            let target = parameters.State.SystemState;
            if target <= fdo.system_power.load(Ordering::Acquire) {
                // Towards S0: the lower drivers first, then (out of hibernate: S4→S3 in a
                // work item) the device IRP, which completes the system IRP.
                power_down_then(fdo, irp, system_powered_up)
            } else {
                // Away from S0: the device IRP first, then (into hibernate: S3→S4 in a
                // work item) the system IRP goes down.
                irp::mark_pending(irp);
                let work = PowerContext {
                    dx: dx as *const Dx,
                    fdo: fdo as *const Fdo,
                    irp,
                };
                if let Err(status) = request_device_power(work, target, device_irp_down_done) {
                    irp::set_status(irp, status, 0);
                    PoStartNextPowerIrp(irp);
                    irp::complete_request(irp, irp::IO_NO_INCREMENT);
                    dx.release();
                }
                STATUS_PENDING
            }
        } else {
            // Shutdown and beyond: no device IRP, the system IRP just goes down.
            power_down_the_stack(dx, fdo, irp)
        }
    }
}

/// A power IRP passed down unchanged.
///
/// # Safety
/// As for [`dispatch`].
unsafe fn power_down_the_stack(dx: &Dx, fdo: &Fdo, irp: *mut IRP) -> NTSTATUS {
    // SAFETY: forwarded caller contract.
    let status = unsafe {
        PoStartNextPowerIrp(irp);
        irp::skip_current_stack_location(irp);
        PoCallDriver(fdo.lower, irp)
    };
    dx.release();
    status
}

/// Context of a power IRP handed to a completion routine or work item.
struct PowerContext {
    dx: *const Dx,
    fdo: *const Fdo,
    irp: *mut IRP,
}

// SAFETY: the pointers stay valid while the IRP holds its remove-lock reference, which is
// released only when the context's work is done.
unsafe impl Send for PowerContext {}

/// Send a power IRP down with `routine` called (with the FDO as context) on its way back;
/// the IRP stays pending and keeps its remove-lock reference until the routine's work is
/// done.
///
/// # Safety
/// As for [`dispatch`].
unsafe fn power_down_then(fdo: &Fdo, irp: *mut IRP, routine: irp::CompletionRoutine) -> NTSTATUS {
    // SAFETY: forwarded caller contract; the FDO outlives the IRP (remove lock).
    unsafe {
        irp::mark_pending(irp);
        irp::copy_current_stack_location_to_next(irp);
        irp::set_completion_routine(
            irp,
            routine,
            (fdo as *const Fdo).cast_mut().cast(),
            irp::InvokeOn::ALWAYS,
        );
        PoCallDriver(fdo.lower, irp);
    }
    STATUS_PENDING
}

unsafe extern "system" fn device_powered_up(
    device: *const DEVICE_OBJECT,
    irp: *mut IRP,
    context: *mut c_void,
) -> NTSTATUS {
    // SAFETY: `context` is the FDO of `device`, alive while the IRP holds the remove lock.
    unsafe {
        let fdo = &*context.cast::<Fdo>();
        let Some(dx) = super::device::dx_of(device) else {
            return irp::STATUS_CONTINUE_COMPLETION;
        };
        if irp::status(irp) < 0 {
            PoStartNextPowerIrp(irp);
            dx.release();
            return irp::STATUS_CONTINUE_COMPLETION;
        }
        let work = PowerContext {
            dx: dx as *const Dx,
            fdo: fdo as *const Fdo,
            irp,
        };
        fdo.device_power
            .queue_or_run(alloc::boxed::Box::new(move || {
                let work = work;
                // SAFETY: see PowerContext.
                let (dx, fdo) = (&*work.dx, &*work.fdo);
                if let Err(status) = fdo.runtime.power_up() {
                    log(Level::Error, format_args!("D3->D0 failed ({status:#010x})"));
                    irp::set_status(work.irp, status, 0);
                } else {
                    set_device_power(fdo, PowerDeviceD0);
                }
                PoStartNextPowerIrp(work.irp);
                irp::complete_request(work.irp, irp::IO_NO_INCREMENT);
                dx.release();
            }));
        irp::STATUS_MORE_PROCESSING_REQUIRED
    }
}

/// D0→D3 (or another low state): done in a work item, then the IRP goes down.
///
/// # Safety
/// As for [`dispatch`].
unsafe fn device_power_down(dx: &Dx, fdo: &Fdo, irp: *mut IRP, target: i32) -> NTSTATUS {
    let work = PowerContext {
        dx: dx as *const Dx,
        fdo: fdo as *const Fdo,
        irp,
    };
    // SAFETY: forwarded caller contract; see PowerContext.
    unsafe {
        irp::mark_pending(irp);
        fdo.device_power
            .queue_or_run(alloc::boxed::Box::new(move || {
                let work = work;
                let (dx, fdo) = (&*work.dx, &*work.fdo);
                fdo.runtime.runtime.d0_to_d3();
                set_device_power(fdo, target);
                PoStartNextPowerIrp(work.irp);
                irp::skip_current_stack_location(work.irp);
                PoCallDriver(fdo.lower, work.irp);
                dx.release();
            }));
    }
    STATUS_PENDING
}

/// Record the device power state with the power manager.
fn set_device_power(fdo: &Fdo, state: i32) {
    let previous = fdo.power.swap(state, Ordering::AcqRel);
    if previous != state {
        // SAFETY: our own device object; POWER_STATE is a plain union of two i32s.
        unsafe {
            PoSetPowerState(
                fdo.device,
                DevicePowerState,
                POWER_STATE { DeviceState: state },
            );
        }
        log(
            Level::Info,
            format_args!("device power D{} -> D{}", previous - 1, state - 1),
        );
    }
}

/// `REQUEST_POWER_COMPLETE` with its real signature.
type PowerCompletion = unsafe extern "system" fn(
    device: *const DEVICE_OBJECT,
    minor: u8,
    state: POWER_STATE,
    context: *const c_void,
    status: *const windows_sys::Win32::System::IO::IO_STATUS_BLOCK,
);

/// The device IRP for system state `system` (its `DeviceState[]` entry), with `done`
/// receiving `work` when it completes.
///
/// # Safety
/// `work` names a pending system IRP holding a remove-lock reference.
unsafe fn request_device_power(
    work: PowerContext,
    system: i32,
    done: PowerCompletion,
) -> Result<(), NTSTATUS> {
    // SAFETY: the FDO outlives the IRP (remove lock); the context box is handed to `done`
    // exactly once, or reclaimed here when the request fails.
    unsafe {
        let fdo = &*work.fdo;
        let device_state = usize::try_from(system)
            .ok()
            .and_then(|s| fdo.device_state.lock().get(s).copied())
            .unwrap_or(PowerDeviceD3);
        let context = alloc::boxed::Box::into_raw(alloc::boxed::Box::new(work));
        let status = PoRequestPowerIrp(
            fdo.pdo,
            IRP_MN_SET_POWER as u8,
            POWER_STATE {
                DeviceState: device_state,
            },
            Some(core::mem::transmute::<
                PowerCompletion,
                unsafe extern "system" fn(),
            >(done)),
            context.cast(),
            ptr::null_mut(),
        );
        if status < 0 {
            drop(alloc::boxed::Box::from_raw(context));
            return Err(status);
        }
        Ok(())
    }
}

/// The system state a system IRP asks for.
///
/// # Safety
/// `irp` is a system SET_POWER IRP whose current location is ours.
unsafe fn system_target(irp: *mut IRP) -> i32 {
    // SAFETY: forwarded caller contract.
    unsafe {
        (*irp::current_stack_location(irp))
            .Parameters
            .Power
            .State
            .SystemState
    }
}

/// Finish a system IRP with `status` and drop its remove-lock reference.
///
/// # Safety
/// `work` names a pending system IRP the caller owns.
unsafe fn complete_system(work: &PowerContext, status: NTSTATUS) {
    // SAFETY: forwarded caller contract.
    unsafe {
        irp::set_status(work.irp, status, 0);
        PoStartNextPowerIrp(work.irp);
        irp::complete_request(work.irp, irp::IO_NO_INCREMENT);
        (*work.dx).release();
    }
}

unsafe extern "system" fn system_powered_up(
    device: *const DEVICE_OBJECT,
    irp: *mut IRP,
    context: *mut c_void,
) -> NTSTATUS {
    // SAFETY: `context` is the FDO, alive while the IRP holds the remove lock; the IRP's
    // current location is ours again (the lower drivers completed it).
    unsafe {
        let fdo = &*context.cast::<Fdo>();
        let Some(dx) = super::device::dx_of(device) else {
            return irp::STATUS_CONTINUE_COMPLETION;
        };
        if irp::status(irp) < 0 {
            PoStartNextPowerIrp(irp);
            dx.release();
            return irp::STATUS_CONTINUE_COMPLETION;
        }
        let target = system_target(irp);
        let work = PowerContext {
            dx: dx as *const Dx,
            fdo: fdo as *const Fdo,
            irp,
        };
        let from_hibernate = fdo.system_power.load(Ordering::Acquire) >= PowerSystemHibernate
            && target < PowerSystemHibernate;
        if from_hibernate {
            fdo.system_power_work
                .queue_or_run(alloc::boxed::Box::new(move || {
                    let work = work;
                    let fdo = &*work.fdo;
                    fdo.runtime.runtime.s4_to_s3();
                    fdo.system_power.store(target, Ordering::Release);
                    if let Err(status) =
                        request_device_power(PowerContext { ..work }, target, device_irp_up_done)
                    {
                        complete_system(&work, status);
                    }
                }));
            return irp::STATUS_MORE_PROCESSING_REQUIRED;
        }
        fdo.system_power.store(target, Ordering::Release);
        let work = PowerContext {
            dx: dx as *const Dx,
            fdo: fdo as *const Fdo,
            irp,
        };
        match request_device_power(work, target, device_irp_up_done) {
            Ok(()) => irp::STATUS_MORE_PROCESSING_REQUIRED,
            Err(status) => {
                irp::set_status(irp, status, 0);
                PoStartNextPowerIrp(irp);
                dx.release();
                irp::STATUS_CONTINUE_COMPLETION
            }
        }
    }
}

/// The status of a completed device IRP.
///
/// # Safety
/// `status` is NULL or the device IRP's IO_STATUS_BLOCK.
unsafe fn device_irp_status(
    status: *const windows_sys::Win32::System::IO::IO_STATUS_BLOCK,
) -> NTSTATUS {
    if status.is_null() {
        STATUS_SUCCESS
    } else {
        // SAFETY: forwarded caller contract.
        unsafe { (*status).Anonymous.Status }
    }
}

unsafe extern "system" fn device_irp_up_done(
    _device: *const DEVICE_OBJECT,
    _minor: u8,
    _state: POWER_STATE,
    context: *const c_void,
    status: *const windows_sys::Win32::System::IO::IO_STATUS_BLOCK,
) {
    // SAFETY: `context` is the PowerContext boxed by `request_device_power` for the system
    // IRP held back, handed over once.
    unsafe {
        let work = alloc::boxed::Box::from_raw(context.cast_mut().cast::<PowerContext>());
        complete_system(&work, device_irp_status(status));
    }
}

unsafe extern "system" fn device_irp_down_done(
    _device: *const DEVICE_OBJECT,
    _minor: u8,
    _state: POWER_STATE,
    context: *const c_void,
    status: *const windows_sys::Win32::System::IO::IO_STATUS_BLOCK,
) {
    // SAFETY: as in `device_irp_up_done`; the system IRP is still ours (not yet passed
    // down).
    unsafe {
        let work = *alloc::boxed::Box::from_raw(context.cast_mut().cast::<PowerContext>());
        let status = device_irp_status(status);
        if status < 0 {
            complete_system(&work, status);
            return;
        }
        let fdo = &*work.fdo;
        let target = system_target(work.irp);
        let into_hibernate = target >= PowerSystemHibernate
            && fdo.system_power.load(Ordering::Acquire) < PowerSystemHibernate;
        let pass_down = move |work: PowerContext| {
            let fdo = &*work.fdo;
            fdo.system_power.store(target, Ordering::Release);
            PoStartNextPowerIrp(work.irp);
            irp::copy_current_stack_location_to_next(work.irp);
            PoCallDriver(fdo.lower, work.irp);
            (*work.dx).release();
        };
        if into_hibernate {
            let runtime = fdo.runtime.runtime;
            fdo.system_power_work
                .queue_or_run(alloc::boxed::Box::new(move || {
                    fdo_hibernate(runtime);
                    pass_down(work);
                }));
            return;
        }
        pass_down(work);
    }
}

/// `FdoS3ToS4`: a child still holding an interface is a bug check, as upstream.
fn fdo_hibernate(runtime: &crate::fdo::Fdo) {
    if let Err(reason) = runtime.s3_to_s4() {
        log(Level::Error, format_args!("hibernate with {reason:?}"));
        // SAFETY: KeBugCheckEx takes plain numbers and does not return.
        unsafe {
            windows_sys::Wdk::System::SystemServices::KeBugCheckEx(
                super::runtime::BUGCHECK_XENBUS_FDO,
                2,
                0,
                0,
                0,
            )
        };
    }
}
