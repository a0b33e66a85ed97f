//! `hypercall.c`: find Xen's CPUID leaves, choose the hypercall instruction from the CPU
//! vendor, and translate Xen errno values into NTSTATUS.
#![forbid(unsafe_code)]

use common::hypercall::Hypercall;
use xen_include::status::{NtStatus, STATUS_NOT_SUPPORTED};

/// CPUID leaves where Xen may place its signature (0x40000100 when Viridian leaves come first).
pub const XEN_CPUID_BASES: [u32; 2] = [0x4000_0000, 0x4000_0100];
/// The Xen signature in EBX, ECX, EDX of the base leaf.
pub const XEN_SIGNATURE: &[u8; 12] = b"XenVMMXenVMM";

/// The instruction that enters the hypervisor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Instruction {
    /// Intel VT-x `VMCALL`.
    Vmcall,
    /// AMD-V `VMMCALL`.
    Vmmcall,
}

/// What hypercall initialisation found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Discovery {
    /// The Xen CPUID base leaf.
    pub base: u32,
    /// The instruction chosen from the vendor.
    pub instruction: Instruction,
    /// The CPU vendor string (CPUID leaf 0, EBX EDX ECX).
    pub vendor: [u8; 12],
}

fn bytes3(a: u32, b: u32, c: u32) -> [u8; 12] {
    let mut out = [0u8; 12];
    for (dst, src) in out.iter_mut().zip(
        a.to_le_bytes()
            .into_iter()
            .chain(b.to_le_bytes())
            .chain(c.to_le_bytes()),
    ) {
        *dst = src;
    }
    out
}

/// The Xen CPUID base leaf: the first of [`XEN_CPUID_BASES`] with the signature and
/// `EAX >= base + 2`.
pub fn find_base(hv: &dyn Hypercall) -> Option<u32> {
    XEN_CPUID_BASES.into_iter().find(|base| {
        let r = hv.cpuid(*base, 0);
        &bytes3(r.ebx, r.ecx, r.edx) == XEN_SIGNATURE && r.eax >= base + 2
    })
}

/// The CPU vendor string of CPUID leaf 0.
pub fn vendor(hv: &dyn Hypercall) -> [u8; 12] {
    let r = hv.cpuid(0, 0);
    bytes3(r.ebx, r.edx, r.ecx)
}

/// The hypercall instruction for a CPU vendor, as upstream chooses it since XSA-466.
pub fn instruction_for(vendor: &[u8; 12]) -> Option<Instruction> {
    match vendor {
        b"GenuineIntel" | b"CentaurHauls" | b"  Shanghai  " => Some(Instruction::Vmcall),
        b"AuthenticAMD" | b"HygonGenuine" => Some(Instruction::Vmmcall),
        _ => None,
    }
}

/// Why hypercall initialisation failed (both give `STATUS_NOT_SUPPORTED`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiscoveryError {
    /// No Xen signature: not running on Xen.
    NotXen,
    /// A vendor whose hypercall instruction is unknown.
    UnknownVendor([u8; 12]),
}

impl DiscoveryError {
    /// The status `DllInitialize` fails with.
    pub fn status(self) -> NtStatus {
        STATUS_NOT_SUPPORTED
    }
}

/// `HypercallInitialize`.
pub fn discover(hv: &dyn Hypercall) -> Result<Discovery, DiscoveryError> {
    let base = find_base(hv).ok_or(DiscoveryError::NotXen)?;
    let vendor = vendor(hv);
    let instruction = instruction_for(&vendor).ok_or(DiscoveryError::UnknownVendor(vendor))?;
    Ok(Discovery {
        base,
        instruction,
        vendor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakeHv;

    #[test]
    fn vendors() {
        let cases: [(&[u8; 12], Option<Instruction>); 7] = [
            (b"GenuineIntel", Some(Instruction::Vmcall)),
            (b"CentaurHauls", Some(Instruction::Vmcall)),
            (b"  Shanghai  ", Some(Instruction::Vmcall)),
            (b"AuthenticAMD", Some(Instruction::Vmmcall)),
            (b"HygonGenuine", Some(Instruction::Vmmcall)),
            (b"GenuineIotel", None),
            (b"VIA VIA VIA ", None),
        ];
        for (v, want) in cases {
            assert_eq!(instruction_for(v), want, "{}", String::from_utf8_lossy(v));
            let hv = FakeHv::new(v, Some(0x4000_0000));
            assert_eq!(vendor(&hv), *v);
            match want {
                Some(i) => assert_eq!(discover(&hv).unwrap().instruction, i),
                None => assert_eq!(discover(&hv), Err(DiscoveryError::UnknownVendor(*v))),
            }
        }
    }

    #[test]
    fn base_leaf() {
        assert_eq!(
            find_base(&FakeHv::new(b"GenuineIntel", Some(0x4000_0000))),
            Some(0x4000_0000)
        );
        // Viridian first: Xen's leaves move up by 0x100.
        let mut hv = FakeHv::new(b"GenuineIntel", Some(0x4000_0100));
        hv.cpuid.insert(
            0x4000_0000,
            common::hypercall::CpuidResult {
                eax: 0x4000_0006,
                ebx: 0x7263_694D,
                ecx: 0x666F_736F,
                edx: 0x7648_2074,
            },
        );
        assert_eq!(find_base(&hv), Some(0x4000_0100));
        assert_eq!(discover(&hv).unwrap().base, 0x4000_0100);
        // No signature anywhere: not Xen.
        let hv = FakeHv::new(b"GenuineIntel", None);
        assert_eq!(discover(&hv), Err(DiscoveryError::NotXen));
        assert_eq!(DiscoveryError::NotXen.status(), STATUS_NOT_SUPPORTED);
        // Signature but too few leaves.
        let mut hv = FakeHv::new(b"AuthenticAMD", Some(0x4000_0000));
        hv.cpuid.get_mut(&0x4000_0000).unwrap().eax = 0x4000_0001;
        assert_eq!(find_base(&hv), None);
    }
}
