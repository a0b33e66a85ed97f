//! `hvm/hvm_op.h`: `HVMOP_*` operations — parameters, pagetable-dying hint, per-vCPU upcall
//! vector.

use super::super::abi::AbiConstant;
use super::super::xen::DomId;
use super::params::HvmParam;
use crate::{abi_structs, open_enum};

open_enum! {
    /// `hvm_op` sub-operation (`HVMOP_*`).
    pub struct HvmOp(u32) {
        /// Set an HVM parameter; argument [`XenHvmParam`].
        SET_PARAM = 0 => "HVMOP_set_param",
        /// Get an HVM parameter; argument [`XenHvmParam`].
        GET_PARAM = 1 => "HVMOP_get_param",
        /// Flush all TLBs.
        FLUSH_TLBS = 5 => "HVMOP_flush_tlbs",
        /// A page table is being torn down; argument [`XenHvmPagetableDying`].
        PAGETABLE_DYING = 9 => "HVMOP_pagetable_dying",
        /// Current system time; argument [`XenHvmGetTime`].
        GET_TIME = 10 => "HVMOP_get_time",
        /// Emit a trace record.
        XENTRACE = 11 => "HVMOP_xentrace",
        /// Memory type of a frame; argument [`XenHvmGetMemType`].
        GET_MEM_TYPE = 15 => "HVMOP_get_mem_type",
        /// Per-vCPU event upcall vector; argument [`XenHvmEvtchnUpcallVector`].
        SET_EVTCHN_UPCALL_VECTOR = 23 => "HVMOP_set_evtchn_upcall_vector",
        /// vm_event guest request.
        GUEST_REQUEST_VM_EVENT = 24 => "HVMOP_guest_request_vm_event",
        /// altp2m operations.
        ALTP2M = 25 => "HVMOP_altp2m",
    }
}

open_enum! {
    /// `xen_hvm_get_mem_type.mem_type` (`hvmmem_type_t`).
    pub struct HvmMemType(u16) {
        /// Normal read/write RAM.
        RAM_RW = 0 => "HVMMEM_ram_rw",
        /// Read-only RAM.
        RAM_RO = 1 => "HVMMEM_ram_ro",
        /// MMIO emulated by the device model.
        MMIO_DM = 2 => "HVMMEM_mmio_dm",
        /// Formerly `HVMMEM_mmio_write_dm`.
        UNUSED = 3 => "HVMMEM_unused",
        /// Claimed by an ioreq server.
        IOREQ_SERVER = 4 => "HVMMEM_ioreq_server",
    }
}

abi_structs! {
    /// `HVMOP_set_param` / `HVMOP_get_param`.
    #[c("struct xen_hvm_param", size = 16, align = 8)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct XenHvmParam {
        /// IN: the domain ([`DomId::SELF`]).
        @0 pub domid: DomId,
        /// Padding.
        @2 pub pad: u16,
        /// IN: the parameter.
        @4 pub index: HvmParam,
        /// IN (set) / OUT (get).
        @8 pub value: u64,
    }

    /// `HVMOP_pagetable_dying`.
    #[c("struct xen_hvm_pagetable_dying", size = 16, align = 8)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct XenHvmPagetableDying {
        /// IN: the domain.
        @0 pub domid: DomId,
        /// Padding.
        @2 pub pad: [u16; 3],
        /// IN: guest physical address of the top-level page table.
        @8 pub gpa: u64,
    }

    /// `HVMOP_get_time`.
    #[c("struct xen_hvm_get_time", size = 8, align = 8)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct XenHvmGetTime {
        /// OUT: system time in ns.
        @0 pub now: u64,
    }

    /// `HVMOP_get_mem_type`.
    #[c("struct xen_hvm_get_mem_type", size = 16, align = 8)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct XenHvmGetMemType {
        /// IN: the domain.
        @0 pub domid: DomId,
        /// OUT: [`HvmMemType`].
        @2 pub mem_type: HvmMemType,
        /// Padding.
        @4 pub pad: [u16; 2],
        /// IN: the frame.
        @8 pub pfn: u64,
    }

    /// `HVMOP_set_evtchn_upcall_vector`.
    #[c("struct xen_hvm_evtchn_upcall_vector", size = 8, align = 4)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct XenHvmEvtchnUpcallVector {
        /// IN: the vCPU.
        @0 pub vcpu: u32,
        /// IN: the IDT vector.
        @4 pub vector: u8,
    }
}

/// Every constant of `hvm/hvm_op.h`, for the C conformance probe.
pub const CONSTANTS: &[&[AbiConstant]] = &[HvmOp::C_CONSTANTS, HvmMemType::C_CONSTANTS];
