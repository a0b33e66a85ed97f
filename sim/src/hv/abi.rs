//! The Xen ABI as the hypervisor model uses it: re-exports from `xen_include` (the single
//! source of truth) plus byte offsets derived from its layouts, for atomic access to
//! shared pages.

#![allow(ambiguous_glob_reexports)] // CONSTANTS/LAYOUTS tables of each header; unused here

use core::mem::offset_of;

pub use xen_include::platform::*;
pub use xen_include::xen::cpuid::*;
pub use xen_include::xen::errno::Errno;
pub use xen_include::xen::event_channel::*;
pub use xen_include::xen::features::XenFeature;
pub use xen_include::xen::grant_table::*;
pub use xen_include::xen::hvm::hvm_op::*;
pub use xen_include::xen::hvm::params::*;
pub use xen_include::xen::memory::*;
pub use xen_include::xen::sched::*;
pub use xen_include::xen::vcpu::*;
pub use xen_include::xen::version::*;
pub use xen_include::xen::xen::*;

/// Offset of `vcpu_info[0]` in `shared_info`.
pub const SHARED_INFO_VCPU_INFO: usize = offset_of!(SharedInfo, vcpu_info);
/// Size of one `vcpu_info`.
pub const VCPU_INFO_SIZE: usize = core::mem::size_of::<VcpuInfo>();
/// Offset of `evtchn_pending[]` in `shared_info`.
pub const SHARED_INFO_EVTCHN_PENDING: usize = offset_of!(SharedInfo, evtchn_pending);
/// Offset of `evtchn_mask[]` in `shared_info`.
pub const SHARED_INFO_EVTCHN_MASK: usize = offset_of!(SharedInfo, evtchn_mask);
/// Offset of `wc_version`.
pub const SHARED_INFO_WC_VERSION: usize = offset_of!(SharedInfo, wc_version);
/// Offset of `wc_sec`.
pub const SHARED_INFO_WC_SEC: usize = offset_of!(SharedInfo, wc_sec);
/// Offset of `wc_nsec`.
pub const SHARED_INFO_WC_NSEC: usize = offset_of!(SharedInfo, wc_nsec);
/// Offset of `wc_sec_hi`.
pub const SHARED_INFO_WC_SEC_HI: usize = offset_of!(SharedInfo, wc_sec_hi);
/// Offset of `evtchn_upcall_pending` in `vcpu_info`.
pub const VCPU_INFO_UPCALL_PENDING: usize = offset_of!(VcpuInfo, evtchn_upcall_pending);
/// Offset of `evtchn_pending_sel` in `vcpu_info`.
pub const VCPU_INFO_PENDING_SEL: usize = offset_of!(VcpuInfo, evtchn_pending_sel);
/// Offset of `time` in `vcpu_info`.
pub const VCPU_INFO_TIME: usize = offset_of!(VcpuInfo, time);
/// Offset of `ready` in the FIFO control block.
pub const EVTCHN_FIFO_CONTROL_READY: usize = offset_of!(EvtchnFifoControlBlock, ready);
/// Offset of `head[]` in the FIFO control block.
pub const EVTCHN_FIFO_CONTROL_HEAD: usize = offset_of!(EvtchnFifoControlBlock, head);
/// Size of the FIFO control block.
pub const EVTCHN_FIFO_CONTROL_BLOCK_SIZE: usize = core::mem::size_of::<EvtchnFifoControlBlock>();
/// Size of a v1 grant entry.
pub const GRANT_ENTRY_V1_SIZE: usize = core::mem::size_of::<GrantEntryV1>();
/// Offset of `domid` in a v1 grant entry.
pub const GRANT_ENTRY_DOMID: usize = offset_of!(GrantEntryV1, domid);
/// Offset of `frame` in a v1 grant entry.
pub const GRANT_ENTRY_FRAME: usize = offset_of!(GrantEntryV1, frame);
