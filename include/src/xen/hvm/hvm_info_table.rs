//! `hvm/hvm_info_table.h`: the table hvmloader leaves at `HVM_INFO_PADDR` (vCPU count and
//! online map, memory layout).

use super::super::abi::AbiConstant;
use crate::{abi_constants, abi_structs};

/// Frame of the table (`HVM_INFO_PFN`).
pub const HVM_INFO_PFN: u64 = 0x09F;
/// Byte offset in that frame (`HVM_INFO_OFFSET`).
pub const HVM_INFO_OFFSET: u64 = 0x800;
/// Guest physical address of the table (`HVM_INFO_PADDR`).
pub const HVM_INFO_PADDR: u64 = (HVM_INFO_PFN << 12) + HVM_INFO_OFFSET;
/// Maximum vCPUs of an HVM guest (`HVM_MAX_VCPUS`).
pub const HVM_MAX_VCPUS: usize = 128;
/// The table's signature.
pub const HVM_INFO_SIGNATURE: [u8; 8] = *b"HVM INFO";

abi_structs! {
    /// `struct hvm_info_table`.
    #[c("struct hvm_info_table", size = 48, align = 4)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct HvmInfoTable {
        /// [`HVM_INFO_SIGNATURE`].
        @0 pub signature: [u8; 8],
        /// Table length in bytes.
        @8 pub length: u32,
        /// Bytes sum to zero.
        @12 pub checksum: u8,
        /// APIC mode.
        @13 pub apic_mode: u8,
        /// Number of vCPUs.
        @16 pub nr_vcpus: u32,
        /// End of low memory, in pages.
        @20 pub low_mem_pgend: u32,
        /// Start of reserved memory, in pages.
        @24 pub reserved_mem_pgstart: u32,
        /// End of high memory, in pages.
        @28 pub high_mem_pgend: u32,
        /// Bitmap of online vCPUs.
        @32 pub vcpu_online: [u8; HVM_MAX_VCPUS.div_ceil(8)],
    }
}

/// Every constant of `hvm/hvm_info_table.h`, for the C conformance probe.
pub const CONSTANTS: &[&[AbiConstant]] = &[abi_constants![
    "HVM_INFO_PFN" => HVM_INFO_PFN,
    "HVM_INFO_OFFSET" => HVM_INFO_OFFSET,
    "HVM_INFO_PADDR" => HVM_INFO_PADDR,
    "HVM_MAX_VCPUS" => HVM_MAX_VCPUS,
]];
