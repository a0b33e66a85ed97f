//! `xen_version`, `console_io` and the CPUID leaves a Xen HVM guest sees.

use common::hypercall::CpuidResult;

use super::abi::*;
use super::{copy_from_guest, copy_to_guest, CpuVendor, Errno, State};

fn fixed<const N: usize>(s: &str) -> [u8; N] {
    let mut out = [0u8; N];
    let n = s.len().min(N - 1);
    out[..n].copy_from_slice(&s.as_bytes()[..n]);
    out
}

fn regs(s: &[u8; 12]) -> [u32; 3] {
    let w = |i: usize| u32::from_le_bytes([s[i], s[i + 1], s[i + 2], s[i + 3]]);
    [w(0), w(4), w(8)]
}

impl State {
    pub(super) fn xen_version(&mut self, args: [usize; 5]) -> Result<isize, Errno> {
        let (major, minor, ref extra) = self.cfg.xen_version;
        let arg = args[1];
        match XenVersionOp(args[0] as u32) {
            XenVersionOp::VERSION => Ok(((major as isize) << 16) | minor as isize),
            XenVersionOp::EXTRAVERSION => {
                let v: [u8; XEN_EXTRAVERSION_LEN] = fixed(extra);
                // SAFETY: the caller passes a xen_extraversion_t buffer.
                unsafe { copy_to_guest(arg, &v)? };
                Ok(0)
            }
            XenVersionOp::COMPILE_INFO => {
                let v = XenCompileInfo {
                    compiler: fixed("rustc (xen-sim)"),
                    compile_by: fixed("xen-sim"),
                    compile_domain: fixed("localdomain"),
                    compile_date: fixed("Thu Jan  1 00:00:00 UTC 2026"),
                };
                // SAFETY: the caller passes a xen_compile_info_t.
                unsafe { copy_to_guest(arg, &v)? };
                Ok(0)
            }
            XenVersionOp::CAPABILITIES => {
                let v: [u8; XEN_CAPABILITIES_INFO_LEN] =
                    fixed("hvm-3.0-x86_32 hvm-3.0-x86_32p hvm-3.0-x86_64");
                // SAFETY: the caller passes a xen_capabilities_info_t buffer.
                unsafe { copy_to_guest(arg, &v)? };
                Ok(0)
            }
            XenVersionOp::CHANGESET => {
                let v: [u8; XEN_CHANGESET_INFO_LEN] = fixed("xen-sim");
                // SAFETY: the caller passes a xen_changeset_info_t buffer.
                unsafe { copy_to_guest(arg, &v)? };
                Ok(0)
            }
            XenVersionOp::GET_FEATURES => {
                // SAFETY: the caller passes its xen_feature_info.
                let mut f: XenFeatureInfo = unsafe { copy_from_guest(arg)? };
                f.submap = if f.submap_idx == 0 {
                    (1 << XenFeature::AUTO_TRANSLATED_PHYSMAP.0)
                        | (1 << XenFeature::HVM_CALLBACK_VECTOR.0)
                        | (1 << XenFeature::HVM_SAFE_PVCLOCK.0)
                        | (1 << XenFeature::HVM_PIRQS.0)
                } else {
                    0
                };
                // SAFETY: as above.
                unsafe { copy_to_guest(arg, &f)? };
                Ok(0)
            }
            XenVersionOp::PAGESIZE => Ok(4096),
            XenVersionOp::GUEST_HANDLE => {
                let mut h = [0u8; 16];
                h[15] = self.cfg.domid as u8;
                h[14] = (self.cfg.domid >> 8) as u8;
                // SAFETY: the caller passes a xen_domain_handle_t buffer.
                unsafe { copy_to_guest(arg, &h)? };
                Ok(0)
            }
            XenVersionOp::PLATFORM_PARAMETERS => {
                // x86_64's HYPERVISOR_VIRT_START (meaningful to PV guests only).
                let v = XenPlatformParameters {
                    virt_start: 0xFFFF_8000_0000_0000,
                };
                // SAFETY: the caller passes a xen_platform_parameters_t.
                unsafe { copy_to_guest(arg, &v)? };
                Ok(0)
            }
            // Privileged information (XSM_PRIV): refused to an unprivileged domain.
            XenVersionOp::COMMANDLINE | XenVersionOp::BUILD_ID => Err(Errno::EPERM),
            _ => Err(Errno::ENOSYS),
        }
    }

    pub(super) fn console_io(&mut self, args: [usize; 5]) -> Result<isize, Errno> {
        if !self.cfg.console_io_allowed {
            return Err(Errno::EPERM);
        }
        match ConsoleIoOp(args[0] as u32) {
            ConsoleIoOp::WRITE => {
                let count = args[1];
                if count > 0 && args[2] == 0 {
                    return Err(Errno::EFAULT);
                }
                for i in 0..count {
                    // SAFETY: the caller passes a buffer of `count` bytes.
                    let b: u8 = unsafe { copy_from_guest(args[2] + i)? };
                    self.console_out.push(b);
                }
                Ok(0)
            }
            ConsoleIoOp::READ => Ok(0),
            _ => Err(Errno::ENOSYS),
        }
    }

    /// CPUID as seen by the guest on `vcpu`.
    pub fn cpuid(&self, leaf: u32, _subleaf: u32, vcpu: u32) -> CpuidResult {
        let vendor: [u8; 12] = match &self.cfg.vendor {
            CpuVendor::Intel => *b"GenuineIntel",
            CpuVendor::Amd => *b"AuthenticAMD",
            CpuVendor::Other(s) => fixed::<13>(s)[..12].try_into().unwrap_or([b' '; 12]),
        };
        let base = if self.cfg.viridian {
            0x4000_0100
        } else {
            0x4000_0000
        };
        let (major, minor, _) = self.cfg.xen_version;
        match leaf {
            0 => {
                let [b, d, c] = regs(&vendor);
                CpuidResult {
                    eax: 0xD,
                    ebx: b,
                    ecx: c,
                    edx: d,
                }
            }
            1 => CpuidResult {
                eax: 0x000A_0655,
                ebx: (vcpu << 24) | 0x0800,
                ecx: 1 << 31, // hypervisor present
                edx: 0x178B_FBFF,
            },
            0x4000_0000 if self.cfg.viridian => {
                let [b, c, d] = regs(b"Microsoft Hv");
                CpuidResult {
                    eax: 0x4000_0006,
                    ebx: b,
                    ecx: c,
                    edx: d,
                }
            }
            l if l == base => {
                let [b, c, d] = regs(b"XenVMMXenVMM");
                CpuidResult {
                    eax: base + 5,
                    ebx: b,
                    ecx: c,
                    edx: d,
                }
            }
            l if l == base + 1 => CpuidResult {
                eax: ((major as u32) << 16) | minor as u32,
                ..Default::default()
            },
            l if l == base + 2 => CpuidResult {
                eax: 1,
                ebx: 0x4000_0000,
                ..Default::default()
            },
            l if l == base + 4 => CpuidResult {
                // vCPU id and domain id present; upcall vector supported when configured.
                eax: (1 << 3)
                    | (1 << 4)
                    | if self.cfg.upcall_vector_supported {
                        1 << 6
                    } else {
                        0
                    },
                ebx: vcpu,
                ecx: self.cfg.domid as u32,
                edx: 0,
            },
            _ => CpuidResult::default(),
        }
    }
}
