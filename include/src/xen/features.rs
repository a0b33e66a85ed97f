//! `features.h`: `XENFEAT_*` bit numbers reported by `XENVER_get_features`.

use super::abi::AbiConstant;
use crate::open_enum;

open_enum! {
    /// A feature bit number (`XENFEAT_*`) in the `XENVER_get_features` bitmap.
    pub struct XenFeature(u32) {
        /// Writable page tables (PV).
        WRITABLE_PAGE_TABLES = 0 => "XENFEAT_writable_page_tables",
        /// Writable descriptor tables (PV).
        WRITABLE_DESCRIPTOR_TABLES = 1 => "XENFEAT_writable_descriptor_tables",
        /// Auto-translated physmap (HVM and PVH guests).
        AUTO_TRANSLATED_PHYSMAP = 2 => "XENFEAT_auto_translated_physmap",
        /// Kernel runs in ring 0.
        SUPERVISOR_MODE_KERNEL = 3 => "XENFEAT_supervisor_mode_kernel",
        /// PAE page directories above 4 GiB.
        PAE_PGDIR_ABOVE_4GB = 4 => "XENFEAT_pae_pgdir_above_4gb",
        /// `mmu_update` preserves A/D bits.
        MMU_PT_UPDATE_PRESERVE_AD = 5 => "XENFEAT_mmu_pt_update_preserve_ad",
        /// Highmem assist.
        HIGHMEM_ASSIST = 6 => "XENFEAT_highmem_assist",
        /// Grant map available bits.
        GNTTAB_MAP_AVAIL_BITS = 7 => "XENFEAT_gnttab_map_avail_bits",
        /// `HVM_PARAM_CALLBACK_IRQ` accepts a vector.
        HVM_CALLBACK_VECTOR = 8 => "XENFEAT_hvm_callback_vector",
        /// Safe PV clock for HVM.
        HVM_SAFE_PVCLOCK = 9 => "XENFEAT_hvm_safe_pvclock",
        /// PIRQs for HVM.
        HVM_PIRQS = 10 => "XENFEAT_hvm_pirqs",
        /// The domain is dom0.
        DOM0 = 11 => "XENFEAT_dom0",
        /// vNUMA-aware memory ops.
        MEMORY_OP_VNODE_SUPPORTED = 13 => "XENFEAT_memory_op_vnode_supported",
        /// Arm SMCCC.
        ARM_SMCCC_SUPPORTED = 14 => "XENFEAT_ARM_SMCCC_supported",
        /// Linux RSDP unrestricted.
        LINUX_RSDP_UNRESTRICTED = 15 => "XENFEAT_linux_rsdp_unrestricted",
        /// Not direct mapped.
        NOT_DIRECT_MAPPED = 16 => "XENFEAT_not_direct_mapped",
        /// Direct mapped.
        DIRECT_MAPPED = 17 => "XENFEAT_direct_mapped",
    }
}

/// Number of 32-bit feature words (`XENFEAT_NR_SUBMAPS`).
pub const XENFEAT_NR_SUBMAPS: u32 = 1;

impl XenFeature {
    /// The `submap_idx` and bit mask of this feature in `XENVER_get_features`.
    pub const fn submap_position(self) -> (u32, u32) {
        (self.0 / 32, 1 << (self.0 % 32))
    }
}

/// Every constant of `features.h`, for the C conformance probe.
pub const CONSTANTS: &[&[AbiConstant]] = &[
    XenFeature::C_CONSTANTS,
    crate::abi_constants!["XENFEAT_NR_SUBMAPS" => XENFEAT_NR_SUBMAPS],
];
