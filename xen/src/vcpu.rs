//! `vcpu.c`: `VCPUOP_set_periodic_timer` / `stop_periodic_timer` and
//! `VCPUOP_register_vcpu_info`.
#![forbid(unsafe_code)]

use common::hypercall::Hypercall;
use xen_include::status::NtStatus;
use xen_include::xen::vcpu::{VcpuOp, VcpuRegisterVcpuInfo, VcpuSetPeriodicTimer};
use xen_include::xen::xen::HypercallCode;

use crate::op::{arg, call};

/// `VcpuSetPeriodicTimer`: `period_100ns` in 100 ns units (converted to ns); `None` stops.
pub fn set_periodic_timer(
    hv: &dyn Hypercall,
    vcpu_id: u32,
    period_100ns: Option<i64>,
) -> Result<(), NtStatus> {
    match period_100ns {
        Some(p) => {
            let mut a = VcpuSetPeriodicTimer {
                period_ns: (p as u64).wrapping_mul(100),
            };
            call(
                hv,
                HypercallCode::VCPU_OP,
                [
                    VcpuOp::SET_PERIODIC_TIMER.0 as usize,
                    vcpu_id as usize,
                    arg(&mut a),
                    0,
                    0,
                ],
            )
            .map(|_| ())
        }
        None => call(
            hv,
            HypercallCode::VCPU_OP,
            [
                VcpuOp::STOP_PERIODIC_TIMER.0 as usize,
                vcpu_id as usize,
                0,
                0,
                0,
            ],
        )
        .map(|_| ()),
    }
}

/// `VcpuRegisterVcpuInfo`: place `vcpu_id`'s `vcpu_info` at `offset` in frame `pfn`
/// (must run on that vCPU).
pub fn register_vcpu_info(
    hv: &dyn Hypercall,
    vcpu_id: u32,
    pfn: usize,
    offset: u32,
) -> Result<(), NtStatus> {
    let mut a = VcpuRegisterVcpuInfo {
        mfn: pfn as u64,
        offset,
        rsvd: 0,
    };
    call(
        hv,
        HypercallCode::VCPU_OP,
        [
            VcpuOp::REGISTER_VCPU_INFO.0 as usize,
            vcpu_id as usize,
            arg(&mut a),
            0,
            0,
        ],
    )
    .map(|_| ())
}
