//! The bus FDO's IRP handling (upstream `fdo.c`'s `FdoDispatchPnp`/`FdoDispatchPower`, the
//! WDM half): PnP IRPs decoded and handed to [`FdoMachine`] (xenbus::pnp::fdo), whose
//! actions are carried out here — complete, pass down, or forward, wait and finish
//! (START's resource lists rewritten in place first, REMOVE draining the remove lock
//! before the lower drivers see it and deleting the FDO after); child PDOs made the first
//! time BusRelations names their class and reaped after PnP removed them. Power IRPs go
//! through the same machine ([`FdoMachine::power`]/`power_finish`): device D3→D0 after
//! the lower drivers and D0→D3 before them, system IRPs turned into device IRPs with the
//! lower capabilities' `DeviceState[]` (none at shutdown), hibernate entry/exit — the
//! machine decides, [`crate::pnp::power`] carries the steps out over [`FdoPowerIrp`]
//! (work items, a completion routine, `PoRequestPowerIrp`).

use alloc::vec::Vec;
use core::ffi::c_void;
use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use common::pnp::{
    DevicePower, PnpAction, PnpAnswer, PnpReply, PnpRequest, PowerRequest, PowerStage, PowerState,
};
use common::sync::PassiveLock;
use common::wdm::kernel::WorkItem;
use common::wdm::log::{log, Level};
use common::wdm::{irp, pnp_irp};
use windows_sys::Wdk::Foundation::{DEVICE_OBJECT, IRP};
use windows_sys::Wdk::System::SystemServices::{
    BusRelations, DevicePowerState, ExFreePool, IoInvalidateDeviceRelations, PoCallDriver,
    PoRequestPowerIrp, PoSetPowerState, PoStartNextPowerIrp, IRP_MJ_PNP, IRP_MJ_POWER,
    IRP_MN_QUERY_POWER, IRP_MN_SET_POWER, POWER_STATE,
};
use windows_sys::Win32::Foundation::{NTSTATUS, STATUS_PENDING, STATUS_SUCCESS};
use windows_sys::Win32::System::Power::PowerDeviceD3;

use super::bus::BusEdge;
use super::device::{complete, complete_power, destroy_fdo, Dx, PnpState};
use super::runtime::FdoRuntime;
use crate::pnp::fdo::FdoMachine;
use crate::pnp::power::{self, Outcome, PowerIrp};

/// The bus FDO's WDM state.
pub struct Fdo {
    /// This FDO.
    device: *mut DEVICE_OBJECT,
    /// The platform PCI PDO at the bottom of the stack.
    pdo: *mut DEVICE_OBJECT,
    /// The device below (`IoAttachDeviceToDeviceStack`).
    lower: *mut DEVICE_OBJECT,
    /// Device power IRPs are looked at here (upstream's `DevicePowerThread`).
    device_power: WorkItem,
    /// The device power state last told to the power manager (`PowerDeviceD0`…).
    power: AtomicI32,
    /// System power IRPs are looked at here (upstream's `SystemPowerThread`).
    system_power_work: WorkItem,
    /// The PnP/power decisions (xenbus::pnp::fdo).
    /// PASSIVE_LEVEL: START/REMOVE run the FDO runtime (interrupts, threads, registry,
    /// store) under it.
    machine: PassiveLock<FdoMachine<BusEdge>>,
    /// REMOVE_DEVICE finished in the machine: the FDO goes once the IRP is complete.
    destroyed: AtomicBool,
    /// The child PDOs (device objects referenced by the PnP manager once reported).
    /// PASSIVE_LEVEL: PDOs are created under it.
    children: PassiveLock<Vec<usize>>,
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
            power: AtomicI32::new(PowerDeviceD3),
            // SAFETY: as above.
            system_power_work: unsafe { WorkItem::new(device)? },
            machine: PassiveLock::new(FdoMachine::new(BusEdge::new())),
            destroyed: AtomicBool::new(false),
            children: PassiveLock::new(Vec::new()),
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
pub unsafe fn dispatch(dx: &Dx, fdo: &Fdo, irp: *mut IRP, major: u32) -> NTSTATUS {
    // SAFETY: forwarded caller contract.
    unsafe {
        match major {
            IRP_MJ_PNP => pnp(dx, fdo, irp),
            IRP_MJ_POWER => power(dx, fdo, irp),
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
                finished(&request, &answer, old);
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

/// After the machine finished a forwarded request: free a requirements list the answer
/// replaces, log START.
///
/// # Safety
/// `old` is the IRP's `Information` as the lower driver left it.
unsafe fn finished(request: &PnpRequest, answer: &PnpAnswer, old: usize) {
    match (request, &answer.reply) {
        (PnpRequest::FilterResourceRequirements(_), PnpReply::Requirements(_)) if old != 0 => {
            // SAFETY: the lower driver's pool list, replaced by the answer's new one.
            unsafe { ExFreePool(old as *mut c_void) };
        }
        (PnpRequest::Start(_), _) => log(
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
/// The power half of the FDO: every power IRP goes through [`FdoMachine::power`] and the
/// steps it returns are carried out by [`crate::pnp::power`] over [`FdoPowerIrp`].
/// SET_POWER and QUERY_POWER are pended and looked at in a work item (PASSIVE_LEVEL: the
/// machine's D0→D3 and D3→D0 block on the store), device IRPs in one, system IRPs in
/// another, so that a system IRP waiting for the device IRP it requested never waits
/// behind it; what comes back from the lower drivers or from a requested device IRP
/// (completion routines, at up to DISPATCH_LEVEL) goes on in the same work item. Other
/// minor functions pass straight through the machine.
///
/// # Safety
/// As for [`dispatch`].
unsafe fn power(dx: &Dx, fdo: &Fdo, irp: *mut IRP) -> NTSTATUS {
    // SAFETY: forwarded caller contract.
    let request = unsafe { pnp_irp::decode_power(irp) };
    let work = FdoPowerIrp {
        dx: dx as *const Dx,
        fdo: fdo as *const Fdo,
        irp,
        request,
    };
    if let PowerRequest::Other(_) = request {
        let step = fdo.machine.lock().power(&request);
        return match power::advance(&request, step, work, &mut |r, stage, status| {
            fdo.machine.lock().power_finish(r, stage, status)
        }) {
            Outcome::Done(status) => status,
            Outcome::Waiting => STATUS_PENDING,
        };
    }
    // SAFETY: the IRP is ours until the work item hands it on.
    unsafe { irp::mark_pending(irp) };
    fdo.power_work(&request)
        .queue_or_run(alloc::boxed::Box::new(move || {
            let work = work;
            // SAFETY: see FdoPowerIrp.
            let fdo = unsafe { &*work.fdo };
            let request = work.request;
            let step = fdo.machine.lock().power(&request);
            power::advance(&request, step, work, &mut |r, stage, status| {
                fdo.machine.lock().power_finish(r, stage, status)
            });
        }));
    STATUS_PENDING
}

impl Fdo {
    /// The work item of a power request's kind (device or system IRPs).
    fn power_work(&self, request: &PowerRequest) -> &WorkItem {
        match request {
            PowerRequest::Set(PowerState::System(_), _)
            | PowerRequest::Query(PowerState::System(_), _) => &self.system_power_work,
            _ => &self.device_power,
        }
    }

    /// Go on with `work` after the step it waited for ended with `status`: in the power
    /// work item of its kind (the machine's services run at PASSIVE_LEVEL).
    fn resume_power(&self, work: FdoPowerIrp, stage: PowerStage, status: NTSTATUS) {
        let request = work.request;
        let fdo = self as *const Fdo as usize;
        self.power_work(&request)
            .queue_or_run(alloc::boxed::Box::new(move || {
                // SAFETY: the FDO outlives the IRP, which holds a remove-lock reference.
                let fdo = unsafe { &*(fdo as *const Fdo) };
                power::resume(&request, stage, status, work, &mut |r, stage, status| {
                    fdo.machine.lock().power_finish(r, stage, status)
                });
            }));
    }
}

/// One power IRP of the FDO between dispatch and completion: the context its work items,
/// completion routine and device IRP callback carry.
struct FdoPowerIrp {
    dx: *const Dx,
    fdo: *const Fdo,
    irp: *mut IRP,
    request: PowerRequest,
}

// SAFETY: the pointers stay valid while the IRP holds its remove-lock reference, which is
// released only when the IRP is completed or passed down (which consumes the value).
unsafe impl Send for FdoPowerIrp {}

impl PowerIrp for FdoPowerIrp {
    fn complete(self, status: NTSTATUS) -> NTSTATUS {
        // SAFETY: see FdoPowerIrp; the IRP is ours until completed here.
        unsafe { complete_power(&*self.dx, self.irp, status) }
    }

    fn complete_unchanged(self) -> NTSTATUS {
        // SAFETY: the IRP is ours.
        let status = unsafe { irp::status(self.irp) };
        self.complete(status)
    }

    fn pass_down(self) -> NTSTATUS {
        // SAFETY: see FdoPowerIrp; the IRP is handed to the lower driver.
        unsafe {
            let lower = (*self.fdo).lower;
            PoStartNextPowerIrp(self.irp);
            irp::skip_current_stack_location(self.irp);
            let status = PoCallDriver(lower, self.irp);
            (*self.dx).release();
            status
        }
    }

    fn forward(self) {
        // SAFETY: see FdoPowerIrp; the context box comes back in `power_lower_done`
        // exactly once.
        unsafe {
            let (irp, lower) = (self.irp, (*self.fdo).lower);
            irp::mark_pending(irp);
            irp::copy_current_stack_location_to_next(irp);
            let context = alloc::boxed::Box::into_raw(alloc::boxed::Box::new(self));
            irp::set_completion_routine(
                irp,
                power_lower_done,
                context.cast(),
                irp::InvokeOn::ALWAYS,
            );
            PoCallDriver(lower, irp);
        }
    }

    fn request_device_power(self, query: bool, state: DevicePower) -> Result<(), (Self, NTSTATUS)> {
        // SAFETY: see FdoPowerIrp; the context box goes to `device_irp_done` exactly once,
        // or is reclaimed here when the request fails.
        unsafe {
            irp::mark_pending(self.irp);
            let pdo = (*self.fdo).pdo;
            let minor = if query {
                IRP_MN_QUERY_POWER
            } else {
                IRP_MN_SET_POWER
            };
            let context = alloc::boxed::Box::into_raw(alloc::boxed::Box::new(self));
            let status = PoRequestPowerIrp(
                pdo,
                minor as u8,
                POWER_STATE {
                    DeviceState: state.raw() as i32,
                },
                Some(core::mem::transmute::<
                    PowerCompletion,
                    unsafe extern "system" fn(),
                >(device_irp_done)),
                context.cast(),
                ptr::null_mut(),
            );
            if status < 0 {
                let work = *alloc::boxed::Box::from_raw(context);
                log(
                    Level::Error,
                    format_args!(
                        "PoRequestPowerIrp(D{}) failed ({status:#010x})",
                        state.raw() - 1
                    ),
                );
                return Err((work, status));
            }
            Ok(())
        }
    }
}

/// The lower drivers completed a power IRP [`FdoPowerIrp::forward`] sent down: keep it
/// and go on in the power work item.
unsafe extern "system" fn power_lower_done(
    _device: *const DEVICE_OBJECT,
    irp: *mut IRP,
    context: *mut c_void,
) -> NTSTATUS {
    // SAFETY: `context` is the FdoPowerIrp boxed by `forward`, handed over once; the FDO
    // outlives the IRP (remove lock).
    unsafe {
        let work = *alloc::boxed::Box::from_raw(context.cast::<FdoPowerIrp>());
        let status = irp::status(irp);
        let fdo = &*work.fdo;
        fdo.resume_power(work, PowerStage::Lower, status);
    }
    irp::STATUS_MORE_PROCESSING_REQUIRED
}

/// `REQUEST_POWER_COMPLETE` with its real signature.
type PowerCompletion = unsafe extern "system" fn(
    device: *const DEVICE_OBJECT,
    minor: u8,
    state: POWER_STATE,
    context: *const c_void,
    status: *const windows_sys::Win32::System::IO::IO_STATUS_BLOCK,
);

/// The device IRP [`FdoPowerIrp::request_device_power`] asked for completed: go on with
/// the system IRP in the power work item.
unsafe extern "system" fn device_irp_done(
    _device: *const DEVICE_OBJECT,
    _minor: u8,
    _state: POWER_STATE,
    context: *const c_void,
    status: *const windows_sys::Win32::System::IO::IO_STATUS_BLOCK,
) {
    // SAFETY: `context` is the FdoPowerIrp boxed by `request_device_power`, handed over
    // once; `status` is NULL or the device IRP's IO_STATUS_BLOCK.
    unsafe {
        let work = *alloc::boxed::Box::from_raw(context.cast_mut().cast::<FdoPowerIrp>());
        let status = if status.is_null() {
            STATUS_SUCCESS
        } else {
            (*status).Anonymous.Status
        };
        let fdo = &*work.fdo;
        fdo.resume_power(work, PowerStage::DeviceIrp, status);
    }
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
