//! Carrying out a power machine's [`PowerStep`]s on one power IRP (spec §5.4): what the
//! WDM edge does with the answers of [`super::fdo::FdoMachine::power`] and
//! [`super::pdo::PdoMachine::power`], written once over [`PowerIrp`] so that the order of
//! the kernel calls is tested on the host. Nothing here blocks: a step that waits (the
//! lower drivers, a requested D-IRP) hands the IRP to the kernel and the edge calls
//! [`resume`] when it comes back (from a work item, at PASSIVE_LEVEL, since the machine's
//! services block).
#![forbid(unsafe_code)]

use common::pnp::{DevicePower, PowerRequest, PowerStage, PowerStep};
use xen_include::status::NtStatus;

/// One power IRP owned by a dispatch routine, as the executor drives it. Every method but
/// [`request_device_power`](Self::request_device_power)'s failure gives the IRP away.
pub trait PowerIrp: Sized {
    /// `PoStartNextPowerIrp`, then complete with `status` (and drop the IRP's remove-lock
    /// reference); the status.
    fn complete(self, status: NtStatus) -> NtStatus;
    /// As [`complete`](Self::complete), leaving `IoStatus` as it arrived.
    fn complete_unchanged(self) -> NtStatus;
    /// `PoStartNextPowerIrp`, skip the location, `PoCallDriver` (no completion routine);
    /// what the lower driver returned.
    fn pass_down(self) -> NtStatus;
    /// Mark it pending, copy the location, send it down with a completion routine; the edge calls
    /// [`resume`] with [`PowerStage::Lower`] and the lower status when it comes back.
    fn forward(self);
    /// Mark it pending, `PoRequestPowerIrp` for `state` (a QUERY_POWER when `query`) on the own stack; the
    /// edge calls [`resume`] with [`PowerStage::DeviceIrp`] when it completes. When it
    /// cannot even be requested the IRP comes back with the status.
    fn request_device_power(self, query: bool, state: DevicePower) -> Result<(), (Self, NtStatus)>;
}

/// The machine of the device the IRP was sent to: `power_finish` of the FDO machine (a
/// PDO's machine never asks for a second step).
pub type Finish<'a> = &'a mut dyn FnMut(&PowerRequest, PowerStage, NtStatus) -> PowerStep;

/// What became of the IRP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Completed (the status) or passed down (what the lower driver returned): the IRP
    /// is gone.
    Done(NtStatus),
    /// Sent down or waiting for a D-IRP (marked pending): [`resume`] follows.
    Waiting,
}

/// Carry out `step` (the machine's answer to `request`) on `irp`, asking `finish` for the
/// next step while a request for a D-IRP fails at once.
pub fn advance<I: PowerIrp>(
    request: &PowerRequest,
    mut step: PowerStep,
    mut irp: I,
    finish: Finish<'_>,
) -> Outcome {
    loop {
        match step {
            PowerStep::Complete(status) => return Outcome::Done(irp.complete(status)),
            PowerStep::CompleteUnchanged => return Outcome::Done(irp.complete_unchanged()),
            PowerStep::PassDown => return Outcome::Done(irp.pass_down()),
            PowerStep::ForwardAndWait => {
                irp.forward();
                return Outcome::Waiting;
            }
            PowerStep::RequestDevicePower(state) => {
                let query = matches!(request, PowerRequest::Query(..));
                match irp.request_device_power(query, state) {
                    Ok(()) => return Outcome::Waiting,
                    Err((back, status)) => {
                        irp = back;
                        step = finish(request, PowerStage::DeviceIrp, status);
                    }
                }
            }
        }
    }
}

/// A step [`advance`] waited for is over (`status` of the lower drivers or of the D-IRP):
/// ask the machine for the next step and carry it out.
pub fn resume<I: PowerIrp>(
    request: &PowerRequest,
    stage: PowerStage,
    status: NtStatus,
    irp: I,
    finish: Finish<'_>,
) -> Outcome {
    let step = finish(request, stage, status);
    advance(request, step, irp, finish)
}
