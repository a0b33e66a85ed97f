//! `arch-x86/cpuid.h`: the hypervisor CPUID leaves (`0x40000000 + 0x100 * n`) through which a
//! guest finds Xen, its version and its HVM features; plus the CPU vendor strings that pick
//! the hypercall instruction.

use super::abi::AbiConstant;
use crate::abi_constants;

/// The first leaf Xen may sit at (`XEN_CPUID_FIRST_LEAF`).
pub const XEN_CPUID_FIRST_LEAF: u32 = 0x4000_0000;
/// Distance between candidate bases (Xen moves to `0x40000100` when it also offers Viridian).
pub const XEN_CPUID_LEAF_STRIDE: u32 = 0x100;
/// Candidate base leaves, in the order upstream searches them.
pub const XEN_CPUID_BASE_CANDIDATES: [u32; 2] = [
    XEN_CPUID_FIRST_LEAF,
    XEN_CPUID_FIRST_LEAF + XEN_CPUID_LEAF_STRIDE,
];
/// `"XenV"` in EBX of the base leaf (`XEN_CPUID_SIGNATURE_EBX`).
pub const XEN_CPUID_SIGNATURE_EBX: u32 = 0x566e_6558;
/// `"MMXe"` in ECX (`XEN_CPUID_SIGNATURE_ECX`).
pub const XEN_CPUID_SIGNATURE_ECX: u32 = 0x6558_4d4d;
/// `"nVMM"` in EDX (`XEN_CPUID_SIGNATURE_EDX`).
pub const XEN_CPUID_SIGNATURE_EDX: u32 = 0x4d4d_566e;
/// The signature as text (EBX, ECX, EDX).
pub const XEN_CPUID_SIGNATURE: &[u8; 12] = b"XenVMMXenVMM";
/// Number of leaves Xen defines (`XEN_CPUID_MAX_NUM_LEAVES`); the base leaf's EAX is the last
/// leaf and must be at least `base + 2`.
pub const XEN_CPUID_MAX_NUM_LEAVES: u32 = 5;

/// Offset of the version leaf: EAX = `(major << 16) | minor`.
pub const XEN_CPUID_LEAF_VERSION: u32 = 1;
/// Offset of the hypercall leaf: EAX = hypercall pages, EBX = MSR to write their address.
pub const XEN_CPUID_LEAF_HYPERCALL: u32 = 2;
/// Offset of the time leaf.
pub const XEN_CPUID_LEAF_TIME: u32 = 3;
/// Offset of the HVM features leaf: EAX = `XEN_HVM_CPUID_*`, EBX = vCPU id, ECX = domain id.
pub const XEN_CPUID_LEAF_HVM: u32 = 4;

/// `XEN_CPUID_LEAF(i)` relative to the default base.
pub const fn xen_cpuid_leaf(index: u32) -> u32 {
    XEN_CPUID_FIRST_LEAF + index
}

/// True when EBX, ECX, EDX of a base leaf carry the Xen signature.
pub const fn is_xen_signature(ebx: u32, ecx: u32, edx: u32) -> bool {
    ebx == XEN_CPUID_SIGNATURE_EBX
        && ecx == XEN_CPUID_SIGNATURE_ECX
        && edx == XEN_CPUID_SIGNATURE_EDX
}

bitflags::bitflags! {
    /// EAX of the HVM features leaf (`XEN_HVM_CPUID_*`).
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    pub struct XenHvmCpuidFeatures: u32 {
        /// APIC access virtualised.
        const APIC_ACCESS_VIRT = 1 << 0;
        /// x2APIC virtualised.
        const X2APIC_VIRT = 1 << 1;
        /// IOMMU mappings for the guest.
        const IOMMU_MAPPINGS = 1 << 2;
        /// EBX holds the vCPU id.
        const VCPU_ID_PRESENT = 1 << 3;
        /// ECX holds the domain id.
        const DOMID_PRESENT = 1 << 4;
        /// Extended destination id for MSI.
        const EXT_DEST_ID = 1 << 5;
        /// `HVMOP_set_evtchn_upcall_vector` is supported.
        const UPCALL_VECTOR = 1 << 6;
        const _ = !0;
    }
}

/// CPU vendor (CPUID leaf 0 EBX, EDX, ECX) of Intel: hypercalls use `VMCALL`.
pub const CPU_VENDOR_INTEL: &[u8; 12] = b"GenuineIntel";
/// Centaur / Zhaoxin: `VMCALL`.
pub const CPU_VENDOR_CENTAUR: &[u8; 12] = b"CentaurHauls";
/// Shanghai (Zhaoxin): `VMCALL`.
pub const CPU_VENDOR_SHANGHAI: &[u8; 12] = b"  Shanghai  ";
/// AMD: hypercalls use `VMMCALL`.
pub const CPU_VENDOR_AMD: &[u8; 12] = b"AuthenticAMD";
/// Hygon: `VMMCALL`.
pub const CPU_VENDOR_HYGON: &[u8; 12] = b"HygonGenuine";

/// The instruction a direct hypercall must use on a given CPU vendor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HypercallInstruction {
    /// Intel VT-x `VMCALL` (`0F 01 C1`).
    Vmcall,
    /// AMD-V `VMMCALL` (`0F 01 D9`).
    Vmmcall,
}

impl HypercallInstruction {
    /// The instruction for the 12-byte vendor string of CPUID leaf 0 (EBX, EDX, ECX order),
    /// `None` for an unknown vendor (upstream then fails with `STATUS_NOT_SUPPORTED`).
    pub fn for_vendor(vendor: &[u8; 12]) -> Option<Self> {
        if vendor == CPU_VENDOR_INTEL
            || vendor == CPU_VENDOR_CENTAUR
            || vendor == CPU_VENDOR_SHANGHAI
        {
            Some(Self::Vmcall)
        } else if vendor == CPU_VENDOR_AMD || vendor == CPU_VENDOR_HYGON {
            Some(Self::Vmmcall)
        } else {
            None
        }
    }

    /// The instruction bytes.
    pub const fn opcode(self) -> [u8; 3] {
        match self {
            Self::Vmcall => [0x0F, 0x01, 0xC1],
            Self::Vmmcall => [0x0F, 0x01, 0xD9],
        }
    }
}

/// Every constant of `arch-x86/cpuid.h`, for the C conformance probe.
pub const CONSTANTS: &[&[AbiConstant]] = &[abi_constants![
    "XEN_CPUID_FIRST_LEAF" => XEN_CPUID_FIRST_LEAF,
    "XEN_CPUID_LEAF(4)" => xen_cpuid_leaf(XEN_CPUID_LEAF_HVM),
    "XEN_CPUID_SIGNATURE_EBX" => XEN_CPUID_SIGNATURE_EBX,
    "XEN_CPUID_SIGNATURE_ECX" => XEN_CPUID_SIGNATURE_ECX,
    "XEN_CPUID_SIGNATURE_EDX" => XEN_CPUID_SIGNATURE_EDX,
    "XEN_CPUID_MAX_NUM_LEAVES" => XEN_CPUID_MAX_NUM_LEAVES,
    "XEN_HVM_CPUID_APIC_ACCESS_VIRT" => XenHvmCpuidFeatures::APIC_ACCESS_VIRT.bits(),
    "XEN_HVM_CPUID_X2APIC_VIRT" => XenHvmCpuidFeatures::X2APIC_VIRT.bits(),
    "XEN_HVM_CPUID_IOMMU_MAPPINGS" => XenHvmCpuidFeatures::IOMMU_MAPPINGS.bits(),
    "XEN_HVM_CPUID_VCPU_ID_PRESENT" => XenHvmCpuidFeatures::VCPU_ID_PRESENT.bits(),
    "XEN_HVM_CPUID_DOMID_PRESENT" => XenHvmCpuidFeatures::DOMID_PRESENT.bits(),
    "XEN_HVM_CPUID_EXT_DEST_ID" => XenHvmCpuidFeatures::EXT_DEST_ID.bits(),
    "XEN_HVM_CPUID_UPCALL_VECTOR" => XenHvmCpuidFeatures::UPCALL_VECTOR.bits(),
]];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_words_spell_the_text() {
        let mut text = [0u8; 12];
        text[0..4].copy_from_slice(&XEN_CPUID_SIGNATURE_EBX.to_le_bytes());
        text[4..8].copy_from_slice(&XEN_CPUID_SIGNATURE_ECX.to_le_bytes());
        text[8..12].copy_from_slice(&XEN_CPUID_SIGNATURE_EDX.to_le_bytes());
        assert_eq!(&text, XEN_CPUID_SIGNATURE);
        assert!(is_xen_signature(
            XEN_CPUID_SIGNATURE_EBX,
            XEN_CPUID_SIGNATURE_ECX,
            XEN_CPUID_SIGNATURE_EDX
        ));
        assert!(!is_xen_signature(
            0,
            XEN_CPUID_SIGNATURE_ECX,
            XEN_CPUID_SIGNATURE_EDX
        ));
    }

    #[test]
    fn vendor_selects_instruction() {
        assert_eq!(
            HypercallInstruction::for_vendor(CPU_VENDOR_INTEL),
            Some(HypercallInstruction::Vmcall)
        );
        assert_eq!(
            HypercallInstruction::for_vendor(CPU_VENDOR_SHANGHAI),
            Some(HypercallInstruction::Vmcall)
        );
        assert_eq!(
            HypercallInstruction::for_vendor(CPU_VENDOR_HYGON),
            Some(HypercallInstruction::Vmmcall)
        );
        assert_eq!(HypercallInstruction::for_vendor(b"VIA VIA VIA "), None);
        assert_eq!(HypercallInstruction::Vmmcall.opcode(), [0x0F, 0x01, 0xD9]);
    }
}
