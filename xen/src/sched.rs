//! `sched.c`: `SCHEDOP_shutdown_code`, `shutdown` (a cancelled suspend returns 1),
//! `yield` and `watchdog`.
#![forbid(unsafe_code)]

use common::hypercall::Hypercall;
use xen_include::status::{NtStatus, STATUS_CANCELLED};
use xen_include::xen::sched::{SchedOp, SchedShutdown, SchedWatchdog, ShutdownReason};
use xen_include::xen::xen::HypercallCode;

use crate::op::{arg, call2};

/// `SchedShutdownCode`: record the reason the domain will shut down with.
pub fn shutdown_code(hv: &dyn Hypercall, reason: u32) -> Result<(), NtStatus> {
    let mut a = SchedShutdown {
        reason: ShutdownReason(reason),
    };
    call2(
        hv,
        HypercallCode::SCHED_OP,
        SchedOp::SHUTDOWN_CODE.0 as usize,
        arg(&mut a),
    )
    .map(|_| ())
}

/// `SchedShutdown`: for `SHUTDOWN_suspend`, a return of 1 means the suspend was cancelled.
pub fn shutdown(hv: &dyn Hypercall, reason: u32) -> Result<(), NtStatus> {
    let mut a = SchedShutdown {
        reason: ShutdownReason(reason),
    };
    let rc = call2(
        hv,
        HypercallCode::SCHED_OP,
        SchedOp::SHUTDOWN.0 as usize,
        arg(&mut a),
    )?;
    if ShutdownReason(reason) == ShutdownReason::SUSPEND && rc == 1 {
        return Err(STATUS_CANCELLED);
    }
    Ok(())
}

/// `SchedYield`.
pub fn yield_now(hv: &dyn Hypercall) {
    let _ = call2(hv, HypercallCode::SCHED_OP, SchedOp::YIELD.0 as usize, 0);
}

/// `SchedWatchdog`: `*id == 0` allocates a watchdog (its id is stored back), `seconds == 0`
/// destroys it.
pub fn watchdog(hv: &dyn Hypercall, id: &mut u32, seconds: u32) -> Result<(), NtStatus> {
    let mut a = SchedWatchdog {
        id: *id,
        timeout: seconds,
    };
    let rc = call2(
        hv,
        HypercallCode::SCHED_OP,
        SchedOp::WATCHDOG.0 as usize,
        arg(&mut a),
    )?;
    if *id == 0 {
        *id = u32::try_from(rc).unwrap_or(0);
    }
    Ok(())
}
