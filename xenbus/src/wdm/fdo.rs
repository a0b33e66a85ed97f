//! The bus FDO's IRP handling (upstream `fdo.c`'s `FdoDispatchPnp`/`FdoDispatchPower`, the
//! WDM half): PnP IRPs decoded and handed to [`FdoMachine`] (xenbus::pnp::fdo), whose
//! actions are carried out here — complete, pass down, or forward, wait and finish
//! (START's resource lists rewritten in place first, REMOVE draining the remove lock
//! before the lower drivers see it and deleting the FDO after); child PDOs made the first
//! time BusRelations names their class and reaped after PnP removed them. Power: device
//! D3→D0 finished in a work item after the lower drivers powered up and D0→D3 done in a
//! work item before passing down; system power translated into a device power IRP with
//! the lower capabilities' `DeviceState[]` (none at shutdown and beyond), hibernate
//! entry/exit in a work item.

use alloc::vec::Vec;
use core::ffi::c_void;
use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use common::pnp::{PnpAction, PnpAnswer, PnpReply, PnpRequest};
use common::sync::SpinLock;
use common::wdm::kernel::WorkItem;
use common::wdm::log::{log, Level};
use common::wdm::{irp, pnp_irp};
use windows_sys::Wdk::Foundation::{DEVICE_OBJECT, IRP};
use windows_sys::Wdk::System::SystemServices::{
    BusRelations, DevicePowerState, ExFreePool, IoInvalidateDeviceRelations, PoCallDriver,
    PoRequestPowerIrp, PoSetPowerState, PoStartNextPowerIrp, SystemPowerState, IRP_MJ_PNP,
    IRP_MJ_POWER, IRP_MN_SET_POWER, POWER_STATE,
};
use windows_sys::Win32::Foundation::{NTSTATUS, STATUS_PENDING, STATUS_SUCCESS};
use windows_sys::Win32::System::Power::{
    PowerDeviceD0, PowerDeviceD3, PowerSystemHibernate, PowerSystemShutdown, PowerSystemWorking,
};

use super::bus::BusEdge;
use super::device::{complete, destroy_fdo, Dx, PnpState};
use super::runtime::FdoRuntime;
use crate::pnp::fdo::FdoMachine;

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
    /// The PnP/power decisions (xenbus::pnp::fdo).
    machine: SpinLock<FdoMachine<BusEdge>>,
    /// REMOVE_DEVICE finished in the machine: the FDO goes once the IRP is complete.
    destroyed: AtomicBool,
    /// The child PDOs (device objects referenced by the PnP manager once reported).
    children: SpinLock<Vec<usize>>,
    /// The FDO runtime (subsystems, threads) of this platform device.
    runtime: FdoRuntime,
    /// The platform device's bus interface and the children's over it (None: the stack
    /// below did not give one).
    bus: Option<alloc::boxed::Box<super::lower_bus::LowerBus>>,
}

// SAFETY: the raw device pointers are kernel objects valid for the FDO's life; the mutable
// parts are atomics or behind locks.
unsafe impl Send for Fdo {}
// SAFETY: as above.
unsafe impl Sync for Fdo {}

impl Fdo {
    /// Point the machine's services at this FDO at its final (boxed) address.
    pub fn bind(&self) {
        self.machine.lock().services().bind(self);
    }

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
        // SAFETY: as above.
        let bus = unsafe { super::lower_bus::acquire(lower, pdo) };
        Ok(Fdo {
            runtime,
            bus,
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
            machine: SpinLock::new(FdoMachine::new(BusEdge::new())),
            destroyed: AtomicBool::new(false),
            children: SpinLock::new(Vec::new()),
        })
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

/// Dispatch one IRP on the FDO.
///
/// # Safety
/// Called from the driver's dispatch routine with the IRP owned and one remove-lock
/// reference held for it.
pub unsafe fn dispatch(dx: &Dx, fdo: &Fdo, irp: *mut IRP, major: u32, minor: u32) -> NTSTATUS {
    // SAFETY: forwarded caller contract.
    unsafe {
        match major {
            IRP_MJ_PNP => pnp(dx, fdo, irp),
            IRP_MJ_POWER => power(dx, fdo, irp, minor),
            _ => pass_down(dx, fdo, irp),
        }
    }
}

/// The PnP half of the FDO: decode the IRP, let [`FdoMachine`] decide, carry its action
/// out (complete here, pass down, or forward-wait-finish) and write its answer back.
///
/// # Safety
/// As for [`dispatch`].
unsafe fn pnp(dx: &Dx, fdo: &Fdo, irp: *mut IRP) -> NTSTATUS {
    let device = fdo.device;
    let child = |class: &str| fdo.child_for(class);
    // SAFETY: forwarded caller contract; each arm owns the IRP until it completes or
    // passes it down.
    unsafe {
        let request = pnp_irp::decode_pnp(irp);
        let action = fdo.machine.lock().pnp(&request);
        match action {
            PnpAction::Complete(answer) => {
                let status = pnp_irp::apply(irp, &answer, device, &child);
                let status = complete(irp, status);
                dx.release();
                status
            }
            PnpAction::CompleteUnchanged => {
                let status = complete(irp, irp::status(irp));
                dx.release();
                status
            }
            PnpAction::PassDown { set } => {
                if let Some(answer) = set {
                    pnp_irp::apply(irp, &answer, device, &child);
                }
                pass_down(dx, fdo, irp)
            }
            PnpAction::ForwardAndWait { forward, set } => {
                if let Some(answer) = set {
                    pnp_irp::apply(irp, &answer, device, &child);
                }
                if let PnpRequest::Start(resources) = &forward {
                    if !pnp_irp::write_start_resources(irp, resources) {
                        log(
                            Level::Error,
                            format_args!("START: resource lists not rewritten"),
                        );
                    }
                }
                let remove = matches!(request, PnpRequest::Remove);
                if remove {
                    // Refuse new IRPs and wait for those in flight before the lower
                    // drivers see REMOVE.
                    dx.set_state(PnpState::Deleted);
                    dx.release();
                    dx.release_and_wait();
                }
                irp::forward_and_wait(fdo.lower, irp);
                let lower = pnp_irp::lower_answer(irp, &request);
                let old = (*irp).IoStatus.Information;
                let mut answer = fdo.machine.lock().pnp_finish(&request, lower.clone());
                if matches!(request, PnpRequest::FilterResourceRequirements(_)) && answer == lower {
                    // Unchanged (an inactive FDO): the lower driver's list stays as it is.
                    answer.reply = PnpReply::Nothing;
                }
                finished(fdo, &request, &lower, &answer, old);
                let status = pnp_irp::apply(irp, &answer, device, &child);
                let status = complete(irp, status);
                if remove {
                    if fdo.destroyed.load(Ordering::Acquire) {
                        destroy_fdo(device, fdo.lower);
                        log(Level::Info, format_args!("FDO removed"));
                    }
                } else {
                    dx.release();
                }
                status
            }
        }
    }
}

/// After the machine finished a forwarded request: keep the lower S→D map for the power
/// path, free a requirements list the answer replaces, log START.
///
/// # Safety
/// `old` is the IRP's `Information` as the lower driver left it.
unsafe fn finished(
    fdo: &Fdo,
    request: &PnpRequest,
    lower: &PnpAnswer,
    answer: &PnpAnswer,
    old: usize,
) {
    match (request, &lower.reply, &answer.reply) {
        (PnpRequest::QueryCapabilities(_), PnpReply::Capabilities(caps), _)
            if lower.status >= 0 =>
        {
            let mut states = fdo.device_state.lock();
            for (slot, state) in states.iter_mut().zip(caps.device_state) {
                *slot = state.raw() as i32;
            }
        }
        (PnpRequest::FilterResourceRequirements(_), _, PnpReply::Requirements(_)) if old != 0 => {
            // SAFETY: the lower driver's pool list, replaced by the answer's new one.
            unsafe { ExFreePool(old as *mut c_void) };
        }
        (PnpRequest::Start(_), _, _) => log(
            Level::Info,
            format_args!("START_DEVICE: {:#010x}", answer.status),
        ),
        _ => {}
    }
}

impl Fdo {
    /// The PDO of `class` for a BusRelations answer, created the first time the class is
    /// reported (it is Enumerated from then on).
    fn child_for(&self, class: &str) -> Option<*mut DEVICE_OBJECT> {
        let mut children = self.children.lock();
        // SAFETY: every listed child is a live PDO of this FDO.
        let existing = children.iter().copied().find(|&child| {
            unsafe { pdo_of(child) }.is_some_and(|pdo| super::pdo::class_of(pdo) == class)
        });
        let device = match existing {
            Some(device) => device as *mut DEVICE_OBJECT,
            // SAFETY: our own FDO, PASSIVE_LEVEL (BusRelations).
            None => match unsafe { super::pdo::create(self.device, self, class) } {
                Ok(device) => {
                    children.push(device as usize);
                    device
                }
                Err(status) => {
                    log(
                        Level::Error,
                        format_args!("PDO {class} not created ({status:#010x})"),
                    );
                    return None;
                }
            },
        };
        // SAFETY: as above.
        if let Some(pdo) = unsafe { pdo_of(device as usize) } {
            super::pdo::enumerated(pdo);
        }
        Some(device)
    }

    /// After BusRelations: destroy the PDOs PnP removed while missing (their class is no
    /// longer in the runtime's list).
    pub fn reap_children(&self) {
        let listed = self.runtime.runtime.children();
        let mut reaped = Vec::new();
        self.children.lock().retain(|&child| {
            // SAFETY: every listed child is a live PDO of this FDO.
            let gone = unsafe { pdo_of(child) }.is_some_and(|pdo| {
                super::pdo::is_deleted(pdo) && {
                    let class = super::pdo::class_of(pdo);
                    !listed.iter().any(|c| c.class == class)
                }
            });
            if gone {
                reaped.push(child);
            }
            !gone
        });
        for child in reaped {
            // SAFETY: removed by PnP and no longer reported.
            unsafe { super::pdo::destroy(child as *mut DEVICE_OBJECT) };
        }
    }
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

    /// The children's bus interface (None: the stack below gave none).
    pub fn bus_interface(&self) -> Option<&crate::interface::query::PdoBusInterface> {
        self.bus.as_deref().map(|bus| bus.child())
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

    /// The platform PCI PDO.
    pub fn pdo(&self) -> *mut DEVICE_OBJECT {
        self.pdo
    }

    /// REMOVE_DEVICE finished: the FDO is deleted once the IRP is complete.
    pub fn mark_destroyed(&self) {
        self.destroyed.store(true, Ordering::Release);
    }

    /// A child PDO is being destroyed: out of the list.
    pub fn forget_child(&self, device: *mut DEVICE_OBJECT) {
        self.children
            .lock()
            .retain(|&child| child != device as usize);
    }

    /// Destroy every remaining child PDO (the FDO's REMOVE_DEVICE; PnP removed them).
    pub fn destroy_children(&self) {
        let children: Vec<usize> = core::mem::take(&mut *self.children.lock());
        for child in children {
            // SAFETY: the PnP manager removes children before their parent.
            unsafe { super::pdo::destroy(child as *mut DEVICE_OBJECT) };
        }
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
                if let Err(status) = fdo.runtime.resume() {
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
pub fn set_device_power(fdo: &Fdo, state: i32) {
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
pub fn fdo_hibernate(runtime: &crate::fdo::Fdo) {
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
