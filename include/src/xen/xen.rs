//! `xen.h` with its x86 / x86_64 parts (`arch-x86/xen.h`, `arch-x86/xen-x86_64.h`): hypercall
//! numbers, domain ids, VIRQs, `shared_info`, `vcpu_info`, `vcpu_time_info`.
//!
//! Layouts are the x86_64 hypervisor ABI (LP64: `unsigned long` and `xen_ulong_t` are 64-bit),
//! which is what the hypervisor reads whatever the guest's own C data model.

use super::abi::AbiConstant;
use crate::{abi_constants, abi_structs, open_enum};

/// Guest page frame number (`xen_pfn_t`, 64-bit on x86_64).
pub type XenPfn = u64;
/// Native-width unsigned integer of the hypercall ABI (`xen_ulong_t`, 64-bit on x86_64).
pub type XenUlong = u64;

/// The Xen interface version this ABI follows (`__XEN_INTERFACE_VERSION__`): Xen 4.8, as
/// upstream XenBus builds with. The conformance probe compiles the C headers with it.
pub const XEN_INTERFACE_VERSION: u32 = 0x0004_0800;

/// Size of a Xen page in bytes (x86: 4 KiB).
pub const XEN_PAGE_SIZE: usize = 4096;
/// log2 of [`XEN_PAGE_SIZE`].
pub const XEN_PAGE_SHIFT: u32 = 12;

/// Number of `vcpu_info` slots in the shared info page; vCPUs beyond it must register their
/// own `vcpu_info` with `VCPUOP_register_vcpu_info`.
pub const XEN_LEGACY_MAX_VCPUS: usize = 32;

/// Bits in `xen_ulong_t`; the 2-level event channel selector and bitmap word width.
pub const XEN_ULONG_BITS: usize = 64;

open_enum! {
    /// A hypercall number (`__HYPERVISOR_*`), loaded into `EAX` (x86) / `RAX` (x86_64).
    pub struct HypercallCode(u32) {
        /// `set_trap_table` (PV only).
        SET_TRAP_TABLE = 0 => "__HYPERVISOR_set_trap_table",
        /// `mmu_update` (PV only).
        MMU_UPDATE = 1 => "__HYPERVISOR_mmu_update",
        /// `set_gdt` (PV only).
        SET_GDT = 2 => "__HYPERVISOR_set_gdt",
        /// `stack_switch` (PV only).
        STACK_SWITCH = 3 => "__HYPERVISOR_stack_switch",
        /// `set_callbacks` (PV only).
        SET_CALLBACKS = 4 => "__HYPERVISOR_set_callbacks",
        /// `fpu_taskswitch` (PV only).
        FPU_TASKSWITCH = 5 => "__HYPERVISOR_fpu_taskswitch",
        /// Old `sched_op` ABI.
        SCHED_OP_COMPAT = 6 => "__HYPERVISOR_sched_op_compat",
        /// `platform_op` (dom0).
        PLATFORM_OP = 7 => "__HYPERVISOR_platform_op",
        /// `set_debugreg`.
        SET_DEBUGREG = 8 => "__HYPERVISOR_set_debugreg",
        /// `get_debugreg`.
        GET_DEBUGREG = 9 => "__HYPERVISOR_get_debugreg",
        /// `update_descriptor`.
        UPDATE_DESCRIPTOR = 10 => "__HYPERVISOR_update_descriptor",
        /// `memory_op` (`XENMEM_*`).
        MEMORY_OP = 12 => "__HYPERVISOR_memory_op",
        /// `multicall`.
        MULTICALL = 13 => "__HYPERVISOR_multicall",
        /// `update_va_mapping`.
        UPDATE_VA_MAPPING = 14 => "__HYPERVISOR_update_va_mapping",
        /// `set_timer_op`.
        SET_TIMER_OP = 15 => "__HYPERVISOR_set_timer_op",
        /// Old `event_channel_op` ABI.
        EVENT_CHANNEL_OP_COMPAT = 16 => "__HYPERVISOR_event_channel_op_compat",
        /// `xen_version` (`XENVER_*`).
        XEN_VERSION = 17 => "__HYPERVISOR_xen_version",
        /// `console_io` (`CONSOLEIO_*`).
        CONSOLE_IO = 18 => "__HYPERVISOR_console_io",
        /// Old `physdev_op` ABI.
        PHYSDEV_OP_COMPAT = 19 => "__HYPERVISOR_physdev_op_compat",
        /// `grant_table_op` (`GNTTABOP_*`).
        GRANT_TABLE_OP = 20 => "__HYPERVISOR_grant_table_op",
        /// `vm_assist`.
        VM_ASSIST = 21 => "__HYPERVISOR_vm_assist",
        /// `update_va_mapping_otherdomain`.
        UPDATE_VA_MAPPING_OTHERDOMAIN = 22 => "__HYPERVISOR_update_va_mapping_otherdomain",
        /// `iret` (x86 PV only).
        IRET = 23 => "__HYPERVISOR_iret",
        /// `vcpu_op` (`VCPUOP_*`).
        VCPU_OP = 24 => "__HYPERVISOR_vcpu_op",
        /// `set_segment_base` (x86_64 PV only).
        SET_SEGMENT_BASE = 25 => "__HYPERVISOR_set_segment_base",
        /// `mmuext_op`.
        MMUEXT_OP = 26 => "__HYPERVISOR_mmuext_op",
        /// `xsm_op`.
        XSM_OP = 27 => "__HYPERVISOR_xsm_op",
        /// `nmi_op`.
        NMI_OP = 28 => "__HYPERVISOR_nmi_op",
        /// `sched_op` (`SCHEDOP_*`).
        SCHED_OP = 29 => "__HYPERVISOR_sched_op",
        /// `callback_op`.
        CALLBACK_OP = 30 => "__HYPERVISOR_callback_op",
        /// `xenoprof_op`.
        XENOPROF_OP = 31 => "__HYPERVISOR_xenoprof_op",
        /// `event_channel_op` (`EVTCHNOP_*`).
        EVENT_CHANNEL_OP = 32 => "__HYPERVISOR_event_channel_op",
        /// `physdev_op`.
        PHYSDEV_OP = 33 => "__HYPERVISOR_physdev_op",
        /// `hvm_op` (`HVMOP_*`).
        HVM_OP = 34 => "__HYPERVISOR_hvm_op",
        /// `sysctl` (dom0).
        SYSCTL = 35 => "__HYPERVISOR_sysctl",
        /// `domctl` (dom0).
        DOMCTL = 36 => "__HYPERVISOR_domctl",
        /// `kexec_op`.
        KEXEC_OP = 37 => "__HYPERVISOR_kexec_op",
        /// `tmem_op`.
        TMEM_OP = 38 => "__HYPERVISOR_tmem_op",
        /// `argo_op`.
        ARGO_OP = 39 => "__HYPERVISOR_argo_op",
        /// `xenpmu_op`.
        XENPMU_OP = 40 => "__HYPERVISOR_xenpmu_op",
        /// `dm_op`.
        DM_OP = 41 => "__HYPERVISOR_dm_op",
        /// `hypfs_op`.
        HYPFS_OP = 42 => "__HYPERVISOR_hypfs_op",
        /// First architecture-specific hypercall.
        ARCH_0 = 48 => "__HYPERVISOR_arch_0",
        /// x86: `mca`.
        ARCH_1 = 49 => "__HYPERVISOR_arch_1",
    }
}

open_enum! {
    /// A domain id (`domid_t`). Values from [`DomId::FIRST_RESERVED`] up are special.
    pub struct DomId(u16) {
        /// The control domain.
        DOM0 = 0 => "0",
        /// The calling domain.
        SELF = 0x7FF0 => "DOMID_SELF",
        /// First reserved id (same value as `SELF`).
        FIRST_RESERVED = 0x7FF0 => "DOMID_FIRST_RESERVED",
        /// I/O memory owner.
        IO = 0x7FF1 => "DOMID_IO",
        /// The hypervisor itself.
        XEN = 0x7FF2 => "DOMID_XEN",
        /// Copy-on-write shared pages.
        COW = 0x7FF3 => "DOMID_COW",
        /// No domain.
        INVALID = 0x7FF4 => "DOMID_INVALID",
        /// The idle domain.
        IDLE = 0x7FFF => "DOMID_IDLE",
        /// Mask of valid domain id bits.
        MASK = 0x7FFF => "DOMID_MASK",
    }
}

open_enum! {
    /// A virtual IRQ (`VIRQ_*`) bindable with `EVTCHNOP_bind_virq`.
    pub struct Virq(u32) {
        /// Per-vCPU timer.
        TIMER = 0 => "VIRQ_TIMER",
        /// Request to dump debug information.
        DEBUG = 1 => "VIRQ_DEBUG",
        /// Emergency console input (dom0).
        CONSOLE = 2 => "VIRQ_CONSOLE",
        /// Exceptional domain event (dom0).
        DOM_EXC = 3 => "VIRQ_DOM_EXC",
        /// Trace buffer records available (dom0).
        TBUF = 4 => "VIRQ_TBUF",
        /// A domain paused for debugging (dom0).
        DEBUGGER = 6 => "VIRQ_DEBUGGER",
        /// XenOprofile sample.
        XENOPROF = 7 => "VIRQ_XENOPROF",
        /// Console ring bytes (dom0).
        CON_RING = 8 => "VIRQ_CON_RING",
        /// Physical CPU state change (dom0).
        PCPU_STATE = 9 => "VIRQ_PCPU_STATE",
        /// Memory event (dom0).
        MEM_EVENT = 10 => "VIRQ_MEM_EVENT",
        /// Argo notification.
        ARGO = 11 => "VIRQ_ARGO",
        /// Low on heap memory (dom0).
        ENOMEM = 12 => "VIRQ_ENOMEM",
        /// PMU interrupt.
        XENPMU = 13 => "VIRQ_XENPMU",
    }
}

impl Virq {
    /// Number of VIRQs (`NR_VIRQS`).
    pub const COUNT: u32 = 24;
}

open_enum! {
    /// `console_io` sub-operation (`CONSOLEIO_*`).
    pub struct ConsoleIoOp(u32) {
        /// Write bytes to the hypervisor console.
        WRITE = 0 => "CONSOLEIO_write",
        /// Read bytes from the hypervisor console (dom0).
        READ = 1 => "CONSOLEIO_read",
    }
}

bitflags::bitflags! {
    /// `vcpu_time_info.flags`.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    pub struct PvclockFlags: u8 {
        /// The TSC is stable across vCPUs (`XEN_PVCLOCK_TSC_STABLE_BIT`).
        const TSC_STABLE = 1 << 0;
        /// The guest was stopped (`XEN_PVCLOCK_GUEST_STOPPED`).
        const GUEST_STOPPED = 1 << 1;
    }
}

abi_structs! {
    /// Per-vCPU system time: `system_time + ((tsc - tsc_timestamp) << tsc_shift) *
    /// tsc_to_system_mul >> 32` nanoseconds since boot. `version` is odd while Xen updates.
    #[c("struct vcpu_time_info", size = 32, align = 8)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct VcpuTimeInfo {
        /// Update counter: odd while an update is in progress.
        @0 pub version: u32,
        /// Padding.
        @4 pub pad0: u32,
        /// TSC at the last update.
        @8 pub tsc_timestamp: u64,
        /// Nanoseconds since boot at `tsc_timestamp`.
        @16 pub system_time: u64,
        /// TSC → ns multiplier (32.32 fixed point).
        @24 pub tsc_to_system_mul: u32,
        /// Shift applied to the TSC delta before multiplying (may be negative).
        @28 pub tsc_shift: i8,
        /// [`PvclockFlags`] bits.
        @29 pub flags: u8,
        /// Padding.
        @30 pub pad1: [u8; 2],
    }

    /// `struct arch_vcpu_info` (x86_64).
    #[c("struct arch_vcpu_info", size = 16, align = 8)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct ArchVcpuInfo {
        /// Faulting address (PV only).
        @0 pub cr2: u64,
        /// Padding to 64-byte `vcpu_info`.
        @8 pub pad: u64,
    }

    /// Per-vCPU event and time state, in the shared info page or registered elsewhere.
    #[c("struct vcpu_info", size = 64, align = 8)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct VcpuInfo {
        /// Set by Xen when an event is pending for this vCPU; cleared by the guest.
        @0 pub evtchn_upcall_pending: u8,
        /// Upcall mask (PV; unused by HVM guests).
        @1 pub evtchn_upcall_mask: u8,
        /// 2-level ABI: one bit per word of `shared_info.evtchn_pending` with events.
        @8 pub evtchn_pending_sel: XenUlong,
        /// Architecture part.
        @16 pub arch: ArchVcpuInfo,
        /// System time.
        @32 pub time: VcpuTimeInfo,
    }

    /// `struct arch_shared_info` (x86_64; PV p2m information, unused by HVM guests).
    #[c("struct arch_shared_info", size = 48, align = 8)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct ArchSharedInfo {
        /// Number of valid p2m entries.
        @0 pub max_pfn: u64,
        /// Frame of the p2m frame list list.
        @8 pub pfn_to_mfn_frame_list_list: XenPfn,
        /// NMI reason bits.
        @16 pub nmi_reason: u64,
        /// Root of the p2m address space.
        @24 pub p2m_cr3: u64,
        /// Virtual address of the linear p2m list.
        @32 pub p2m_vaddr: u64,
        /// p2m generation count.
        @40 pub p2m_generation: u64,
    }

    /// The shared info page (`XENMAPSPACE_shared_info`): legacy `vcpu_info` slots, the 2-level
    /// event channel bitmaps and the wallclock.
    #[c("struct shared_info", size = 3136, align = 8)]
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct SharedInfo {
        /// `vcpu_info` of vCPUs 0..32.
        @0 pub vcpu_info: [VcpuInfo; XEN_LEGACY_MAX_VCPUS],
        /// 2-level ABI pending bitmap (4096 ports).
        @2048 pub evtchn_pending: [XenUlong; XEN_ULONG_BITS],
        /// 2-level ABI mask bitmap.
        @2560 pub evtchn_mask: [XenUlong; XEN_ULONG_BITS],
        /// Wallclock update counter: odd while an update is in progress.
        @3072 pub wc_version: u32,
        /// Wallclock seconds since 1970 at system time 0 (low 32 bits).
        @3076 pub wc_sec: u32,
        /// Wallclock nanoseconds.
        @3080 pub wc_nsec: u32,
        /// Wallclock seconds, high 32 bits.
        @3084 pub wc_sec_hi: u32,
        /// Architecture part.
        @3088 pub arch: ArchSharedInfo,
    }
}

impl Default for SharedInfo {
    fn default() -> Self {
        Self {
            vcpu_info: [VcpuInfo::default(); XEN_LEGACY_MAX_VCPUS],
            evtchn_pending: [0; XEN_ULONG_BITS],
            evtchn_mask: [0; XEN_ULONG_BITS],
            wc_version: 0,
            wc_sec: 0,
            wc_nsec: 0,
            wc_sec_hi: 0,
            arch: ArchSharedInfo::default(),
        }
    }
}

impl VcpuTimeInfo {
    /// Converts a TSC reading to nanoseconds since boot with this snapshot's scale
    /// (the pvclock formula; wrapping like the hypervisor's own arithmetic).
    pub const fn tsc_to_system_time(&self, tsc: u64) -> u64 {
        let mut delta = tsc.wrapping_sub(self.tsc_timestamp);
        if self.tsc_shift < 0 {
            delta >>= self.tsc_shift.unsigned_abs() as u32;
        } else {
            delta <<= self.tsc_shift as u32;
        }
        let scaled = ((delta as u128 * self.tsc_to_system_mul as u128) >> 32) as u64;
        self.system_time.wrapping_add(scaled)
    }

    /// True while the hypervisor is updating this record (odd `version`).
    pub const fn update_in_progress(&self) -> bool {
        self.version & 1 != 0
    }
}

/// Every constant of `xen.h` used by the package, for the C conformance probe.
pub const CONSTANTS: &[&[AbiConstant]] = &[
    HypercallCode::C_CONSTANTS,
    DomId::C_CONSTANTS,
    Virq::C_CONSTANTS,
    ConsoleIoOp::C_CONSTANTS,
    abi_constants![
        "__XEN_INTERFACE_VERSION__" => XEN_INTERFACE_VERSION,
        "XEN_LEGACY_MAX_VCPUS" => XEN_LEGACY_MAX_VCPUS,
        "sizeof(xen_ulong_t) * 8" => XEN_ULONG_BITS,
        "sizeof(xen_pfn_t)" => core::mem::size_of::<XenPfn>(),
        "sizeof(domid_t)" => core::mem::size_of::<DomId>(),
        "NR_VIRQS" => Virq::COUNT,
        "XEN_PVCLOCK_TSC_STABLE_BIT" => PvclockFlags::TSC_STABLE.bits(),
        "XEN_PVCLOCK_GUEST_STOPPED" => PvclockFlags::GUEST_STOPPED.bits(),
        "sizeof(((struct shared_info *)0)->vcpu_info) / sizeof(struct vcpu_info)" => XEN_LEGACY_MAX_VCPUS,
    ],
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pvclock_scales_tsc() {
        let time = VcpuTimeInfo {
            tsc_timestamp: 1_000,
            system_time: 5_000,
            // 0.5 ns per tick after a left shift of 1 = 1 ns per tick.
            tsc_to_system_mul: 1 << 31,
            tsc_shift: 1,
            ..Default::default()
        };
        assert_eq!(time.tsc_to_system_time(1_000), 5_000);
        assert_eq!(time.tsc_to_system_time(3_000), 7_000);
        let right = VcpuTimeInfo {
            tsc_shift: -1,
            tsc_to_system_mul: 1 << 31,
            ..time
        };
        assert_eq!(right.tsc_to_system_time(5_000), 5_000 + 1_000);
    }

    #[test]
    fn domid_reserved_values() {
        assert_eq!(DomId::SELF, DomId::FIRST_RESERVED);
        assert_eq!(DomId::SELF.c_name(), Some("DOMID_SELF"));
        assert_eq!(DomId(5).c_name(), None);
        assert_eq!(DomId::default(), DomId::DOM0);
    }

    #[test]
    fn shared_info_default_is_zeroed() {
        let shared = SharedInfo::default();
        assert!(shared.evtchn_pending.iter().all(|&word| word == 0));
        assert_eq!(shared.vcpu_info[31], VcpuInfo::default());
    }
}
