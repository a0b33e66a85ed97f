//! `grant_table.c`: `GNTTABOP_*` operations with per-op `GNTST_*` → NTSTATUS mapping.
#![forbid(unsafe_code)]

use common::hypercall::Hypercall;
use xen_include::status::{
    NtStatus, STATUS_ACCESS_DENIED, STATUS_INVALID_HANDLE, STATUS_RETRY, STATUS_UNSUCCESSFUL,
};
use xen_include::xen::grant_table::*;
use xen_include::xen::xen::{DomId, HypercallCode};

use crate::op::{arg, call3};

fn gnttab_op<T>(
    hv: &dyn Hypercall,
    op: GnttabOp,
    argument: &mut T,
    count: usize,
) -> Result<isize, NtStatus> {
    call3(
        hv,
        HypercallCode::GRANT_TABLE_OP,
        op.0 as usize,
        arg(argument),
        count,
    )
}

/// xen.sys's `GNTST_TO_STATUS`: only four codes have an NTSTATUS of their own (the richer
/// `xen_include::status::gntst_to_ntstatus` is xenbus's table, not this export's).
pub fn gntst_to_status(status: GrantStatus) -> Result<(), NtStatus> {
    match status {
        GrantStatus::OKAY => Ok(()),
        GrantStatus::BAD_HANDLE => Err(STATUS_INVALID_HANDLE),
        GrantStatus::PERMISSION_DENIED => Err(STATUS_ACCESS_DENIED),
        GrantStatus::EAGAIN => Err(STATUS_RETRY),
        _ => Err(STATUS_UNSUCCESSFUL),
    }
}

fn check(status: GrantStatus) -> Result<(), NtStatus> {
    gntst_to_status(status)
}

/// `GrantTableSetVersion`.
pub fn set_version(hv: &dyn Hypercall, version: u32) -> Result<(), NtStatus> {
    gnttab_op(
        hv,
        GnttabOp::SET_VERSION,
        &mut GnttabSetVersion { version },
        1,
    )
    .map(|_| ())
}

/// `GrantTableGetVersion`.
pub fn get_version(hv: &dyn Hypercall) -> Result<u32, NtStatus> {
    let mut a = GnttabGetVersion {
        dom: DomId::SELF,
        pad: 0,
        version: 0,
    };
    gnttab_op(hv, GnttabOp::GET_VERSION, &mut a, 1)?;
    Ok(a.version)
}

/// `GrantTableCopy`: the per-op status stays in each `gnttab_copy` for the caller.
pub fn copy(hv: &dyn Hypercall, ops: &mut [GnttabCopy]) -> Result<(), NtStatus> {
    let count = ops.len();
    let address = ops.as_mut_ptr() as usize;
    crate::op::call3(
        hv,
        HypercallCode::GRANT_TABLE_OP,
        GnttabOp::COPY.0 as usize,
        address,
        count,
    )
    .map(|_| ())
}

/// `GrantTableMapForeignPage`: map `domain`'s grant `gref` at guest physical `address`.
pub fn map_foreign_page(
    hv: &dyn Hypercall,
    domain: u16,
    gref: u32,
    address: u64,
    read_only: bool,
) -> Result<u32, NtStatus> {
    let mut flags = GntMapFlags::HOST_MAP;
    if read_only {
        flags |= GntMapFlags::READONLY;
    }
    let mut a = GnttabMapGrantRef {
        host_addr: address,
        flags: flags.bits(),
        reference: gref,
        dom: DomId(domain),
        status: GrantStatus::OKAY,
        handle: 0,
        dev_bus_addr: 0,
    };
    gnttab_op(hv, GnttabOp::MAP_GRANT_REF, &mut a, 1)?;
    check(a.status)?;
    Ok(a.handle)
}

/// `GrantTableUnmapForeignPage`.
pub fn unmap_foreign_page(hv: &dyn Hypercall, handle: u32, address: u64) -> Result<(), NtStatus> {
    let mut a = GnttabUnmapGrantRef {
        host_addr: address,
        dev_bus_addr: 0,
        handle,
        status: GrantStatus::OKAY,
    };
    gnttab_op(hv, GnttabOp::UNMAP_GRANT_REF, &mut a, 1)?;
    check(a.status)
}

/// `GrantTableQuerySize`: (current frames, maximum frames).
pub fn query_size(hv: &dyn Hypercall) -> Result<(u32, u32), NtStatus> {
    let mut a = GnttabQuerySize {
        dom: DomId::SELF,
        nr_frames: 0,
        max_nr_frames: 0,
        status: GrantStatus::OKAY,
    };
    gnttab_op(hv, GnttabOp::QUERY_SIZE, &mut a, 1)?;
    check(a.status)?;
    Ok((a.nr_frames, a.max_nr_frames))
}
