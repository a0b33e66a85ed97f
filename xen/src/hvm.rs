//! `hvm.c`: `HVMOP_set_param`, `HVMOP_get_param`, `HVMOP_pagetable_dying` and
//! `HVMOP_set_evtchn_upcall_vector`, all for `DOMID_SELF`.
#![forbid(unsafe_code)]

use common::hypercall::Hypercall;
use xen_include::status::NtStatus;
use xen_include::xen::hvm::hvm_op::{
    HvmOp, XenHvmEvtchnUpcallVector, XenHvmPagetableDying, XenHvmParam,
};
use xen_include::xen::hvm::params::HvmParam;
use xen_include::xen::xen::{DomId, HypercallCode};

use crate::op::{arg, call2};

fn hvm_op<T>(hv: &dyn Hypercall, op: HvmOp, argument: &mut T) -> Result<isize, NtStatus> {
    call2(hv, HypercallCode::HVM_OP, op.0 as usize, arg(argument))
}

/// `HvmSetParam`.
pub fn set_param(hv: &dyn Hypercall, index: u32, value: u64) -> Result<(), NtStatus> {
    let mut a = XenHvmParam {
        domid: DomId::SELF,
        pad: 0,
        index: HvmParam(index),
        value,
    };
    hvm_op(hv, HvmOp::SET_PARAM, &mut a).map(|_| ())
}

/// `HvmGetParam`.
pub fn get_param(hv: &dyn Hypercall, index: u32) -> Result<u64, NtStatus> {
    let mut a = XenHvmParam {
        domid: DomId::SELF,
        pad: 0,
        index: HvmParam(index),
        value: 0,
    };
    hvm_op(hv, HvmOp::GET_PARAM, &mut a)?;
    Ok(a.value)
}

/// `HvmPagetableDying`: the page table rooted at `gpa` is being torn down.
pub fn pagetable_dying(hv: &dyn Hypercall, gpa: u64) -> Result<(), NtStatus> {
    let mut a = XenHvmPagetableDying {
        domid: DomId::SELF,
        pad: [0; 3],
        gpa,
    };
    hvm_op(hv, HvmOp::PAGETABLE_DYING, &mut a).map(|_| ())
}

/// `HvmSetEvtchnUpcallVector`.
pub fn set_evtchn_upcall_vector(
    hv: &dyn Hypercall,
    vcpu_id: u32,
    vector: u8,
) -> Result<(), NtStatus> {
    let mut a = XenHvmEvtchnUpcallVector {
        vcpu: vcpu_id,
        vector,
    };
    hvm_op(hv, HvmOp::SET_EVTCHN_UPCALL_VECTOR, &mut a).map(|_| ())
}
