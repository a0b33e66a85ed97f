//! The scenario list.

use common::hypercall::Hypercall;

use crate::{fail, pass, Scenario, Verdict};

/// Every scenario, in the order the rig runs them.
pub const SCENARIOS: &[(&str, Scenario)] = &[("discovery", discovery)];

const XEN_CPUID_BASES: [u32; 2] = [0x4000_0000, 0x4000_0100];
const HYPERVISOR_XEN_VERSION: u32 = 17;
const XENVER_VERSION: usize = 0;

/// Find the Xen CPUID leaves and ask the hypervisor its version.
fn discovery(hv: &dyn Hypercall) -> Verdict {
    let mut found = None;
    for base in XEN_CPUID_BASES {
        let leaf = hv.cpuid(base, 0);
        let mut signature = [0u8; 12];
        signature[0..4].copy_from_slice(&leaf.ebx.to_le_bytes());
        signature[4..8].copy_from_slice(&leaf.ecx.to_le_bytes());
        signature[8..12].copy_from_slice(&leaf.edx.to_le_bytes());
        if &signature == b"XenVMMXenVMM" && leaf.eax >= base + 2 {
            found = Some(base);
            break;
        }
    }
    let Some(base) = found else {
        return fail!("no XenVMMXenVMM leaf");
    };
    let version = hv.hypercall(HYPERVISOR_XEN_VERSION, [XENVER_VERSION, 0, 0, 0, 0]);
    if version <= 0 {
        return fail!("xen_version failed: {version}");
    }
    let cpuid_version = hv.cpuid(base + 1, 0).eax;
    if cpuid_version as isize != version {
        return fail!("cpuid leaf says {cpuid_version:#x}, hypercall says {version:#x}");
    }
    pass!(
        "base={base:#x} version={}.{}",
        version >> 16,
        version & 0xffff
    )
}
