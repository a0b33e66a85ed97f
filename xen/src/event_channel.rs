//! `event_channel.c`: the `EVTCHNOP_*` operations xen.sys exports.
#![forbid(unsafe_code)]

use common::hypercall::Hypercall;
use xen_include::status::{NtStatus, STATUS_INVALID_PARAMETER};
use xen_include::xen::event_channel::*;
use xen_include::xen::xen::{DomId, HypercallCode, Virq};

use crate::op::{arg, call2};

fn evtchn_op<T>(hv: &dyn Hypercall, op: EvtchnOp, argument: &mut T) -> Result<isize, NtStatus> {
    call2(
        hv,
        HypercallCode::EVENT_CHANNEL_OP,
        op.0 as usize,
        arg(argument),
    )
}

/// `EventChannelSend`.
pub fn send(hv: &dyn Hypercall, port: u32) -> Result<(), NtStatus> {
    evtchn_op(hv, EvtchnOp::SEND, &mut EvtchnSend { port }).map(|_| ())
}

/// `EventChannelAllocateUnbound`: a local port `remote_domain` may bind to.
pub fn allocate_unbound(hv: &dyn Hypercall, remote_domain: u16) -> Result<u32, NtStatus> {
    let mut a = EvtchnAllocUnbound {
        dom: DomId::SELF,
        remote_dom: DomId(remote_domain),
        port: 0,
    };
    evtchn_op(hv, EvtchnOp::ALLOC_UNBOUND, &mut a)?;
    Ok(a.port)
}

/// `EventChannelBindInterDomain`.
pub fn bind_inter_domain(
    hv: &dyn Hypercall,
    remote_domain: u16,
    remote_port: u32,
) -> Result<u32, NtStatus> {
    let mut a = EvtchnBindInterdomain {
        remote_dom: DomId(remote_domain),
        remote_port,
        local_port: 0,
    };
    evtchn_op(hv, EvtchnOp::BIND_INTERDOMAIN, &mut a)?;
    Ok(a.local_port)
}

/// `EventChannelBindVirq`.
pub fn bind_virq(hv: &dyn Hypercall, virq: u32, vcpu_id: u32) -> Result<u32, NtStatus> {
    let mut a = EvtchnBindVirq {
        virq: Virq(virq),
        vcpu: vcpu_id,
        port: 0,
    };
    evtchn_op(hv, EvtchnOp::BIND_VIRQ, &mut a)?;
    Ok(a.port)
}

/// `EventChannelQueryInterDomain` (`EVTCHNOP_status`): the remote end of an
/// interdomain port; any other state is `STATUS_INVALID_PARAMETER`.
pub fn query_inter_domain(hv: &dyn Hypercall, local_port: u32) -> Result<(u16, u32), NtStatus> {
    let mut a = EvtchnStatus {
        dom: DomId::SELF,
        port: local_port,
        status: EvtchnStatusKind::CLOSED,
        vcpu: 0,
        u: [0; 2],
    };
    evtchn_op(hv, EvtchnOp::STATUS, &mut a)?;
    if a.status != EvtchnStatusKind::INTERDOMAIN {
        return Err(STATUS_INVALID_PARAMETER);
    }
    let (dom, port) = a.interdomain();
    Ok((dom.0, port))
}

/// `EventChannelClose`.
pub fn close(hv: &dyn Hypercall, local_port: u32) -> Result<(), NtStatus> {
    evtchn_op(hv, EvtchnOp::CLOSE, &mut EvtchnClose { port: local_port }).map(|_| ())
}

/// `EventChannelExpandArray` (FIFO ABI).
pub fn expand_array(hv: &dyn Hypercall, pfn: usize) -> Result<(), NtStatus> {
    evtchn_op(
        hv,
        EvtchnOp::EXPAND_ARRAY,
        &mut EvtchnExpandArray {
            array_gfn: pfn as u64,
        },
    )
    .map(|_| ())
}

/// `EventChannelInitControl` (FIFO ABI; the control block sits at offset 0 of `pfn`).
pub fn init_control(hv: &dyn Hypercall, pfn: usize, vcpu_id: u32) -> Result<(), NtStatus> {
    let mut a = EvtchnInitControl {
        control_gfn: pfn as u64,
        offset: 0,
        vcpu: vcpu_id,
        link_bits: 0,
        _pad: [0; 7],
    };
    evtchn_op(hv, EvtchnOp::INIT_CONTROL, &mut a).map(|_| ())
}

/// `EventChannelReset` (`DOMID_SELF`).
pub fn reset(hv: &dyn Hypercall) -> Result<(), NtStatus> {
    evtchn_op(hv, EvtchnOp::RESET, &mut EvtchnReset { dom: DomId::SELF }).map(|_| ())
}

/// `EventChannelBindVirtualCpu`.
pub fn bind_virtual_cpu(hv: &dyn Hypercall, local_port: u32, vcpu_id: u32) -> Result<(), NtStatus> {
    let mut a = EvtchnBindVcpu {
        port: local_port,
        vcpu: vcpu_id,
    };
    evtchn_op(hv, EvtchnOp::BIND_VCPU, &mut a).map(|_| ())
}

/// `EventChannelUnmask`.
pub fn unmask(hv: &dyn Hypercall, local_port: u32) -> Result<(), NtStatus> {
    evtchn_op(hv, EvtchnOp::UNMASK, &mut EvtchnUnmask { port: local_port }).map(|_| ())
}
