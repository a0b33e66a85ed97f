//! `memory.c`: `XENMEM_add_to_physmap`, `remove_from_physmap`, `decrease_reservation`
//! and `populate_physmap` for `DOMID_SELF`.
#![forbid(unsafe_code)]

use common::hypercall::Hypercall;
use xen_include::status::NtStatus;
use xen_include::xen::abi::GuestHandle;
use xen_include::xen::memory::{
    MapSpace, MemoryOp, XenAddToPhysmap, XenMemoryReservation, XenRemoveFromPhysmap,
};
use xen_include::xen::xen::{DomId, HypercallCode};

use crate::op::{arg, call2};

fn memory_op<T>(hv: &dyn Hypercall, op: MemoryOp, argument: &mut T) -> Result<isize, NtStatus> {
    call2(hv, HypercallCode::MEMORY_OP, op.0 as usize, arg(argument))
}

/// `MemoryAddToPhysmap`: map `offset` of `space` at guest frame `pfn`.
pub fn add_to_physmap(
    hv: &dyn Hypercall,
    pfn: usize,
    space: u32,
    offset: usize,
) -> Result<(), NtStatus> {
    let mut a = XenAddToPhysmap {
        domid: DomId::SELF,
        size: 0,
        space: MapSpace(space),
        idx: offset as u64,
        gpfn: pfn as u64,
    };
    memory_op(hv, MemoryOp::ADD_TO_PHYSMAP, &mut a).map(|_| ())
}

/// `MemoryRemoveFromPhysmap`.
pub fn remove_from_physmap(hv: &dyn Hypercall, pfn: usize) -> Result<(), NtStatus> {
    let mut a = XenRemoveFromPhysmap {
        domid: DomId::SELF,
        gpfn: pfn as u64,
    };
    memory_op(hv, MemoryOp::REMOVE_FROM_PHYSMAP, &mut a).map(|_| ())
}

fn reservation(
    hv: &dyn Hypercall,
    op: MemoryOp,
    order: u32,
    pfns: &mut [usize],
) -> Result<u32, NtStatus> {
    let mut a = XenMemoryReservation {
        extent_start: GuestHandle::new(pfns.as_mut_ptr() as usize as u64),
        nr_extents: pfns.len() as u64,
        extent_order: order,
        mem_flags: 0,
        domid: DomId::SELF,
    };
    let done = memory_op(hv, op, &mut a)?;
    Ok(u32::try_from(done).unwrap_or(u32::MAX))
}

/// `MemoryDecreaseReservation`: release the extents in `pfns`; returns how many were.
pub fn decrease_reservation(
    hv: &dyn Hypercall,
    order: u32,
    pfns: &mut [usize],
) -> Result<u32, NtStatus> {
    reservation(hv, MemoryOp::DECREASE_RESERVATION, order, pfns)
}

/// `MemoryPopulatePhysmap`: populate the extents in `pfns`; returns how many were.
pub fn populate_physmap(
    hv: &dyn Hypercall,
    order: u32,
    pfns: &mut [usize],
) -> Result<u32, NtStatus> {
    reservation(hv, MemoryOp::POPULATE_PHYSMAP, order, pfns)
}
