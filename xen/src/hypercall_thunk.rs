//! `amd64/hypercall_thunk.asm`: the real [`Hypercall`] edge — `VMCALL`/`VMMCALL` with the
//! ordinal in RAX and arguments in RDI, RSI, RDX, R10, R8; `CPUID`; port I/O.
//!
//! Compiled for x86_64 on every OS; only ever executed inside a Xen guest kernel.

use core::arch::asm;
use core::sync::atomic::{AtomicU8, Ordering};

use common::hypercall::{CpuidResult, Hypercall, PortWidth};

use crate::hypercall::Instruction;

const NONE: u8 = 0;
const VMCALL: u8 = 1;
const VMMCALL: u8 = 2;
/// `-ENOSYS`: returned for hypercalls issued before an instruction was chosen.
const NEG_ENOSYS: isize = -38;

/// The hardware implementation of [`Hypercall`].
pub struct NativeHypercall {
    instruction: AtomicU8,
}

impl Default for NativeHypercall {
    fn default() -> Self {
        Self::new()
    }
}

impl NativeHypercall {
    /// No instruction chosen yet: every hypercall returns `-ENOSYS` until [`Self::select`].
    pub const fn new() -> Self {
        Self {
            instruction: AtomicU8::new(NONE),
        }
    }

    /// Use `instruction` from now on (`None` disables hypercalls again).
    pub fn select(&self, instruction: Option<Instruction>) {
        let v = match instruction {
            None => NONE,
            Some(Instruction::Vmcall) => VMCALL,
            Some(Instruction::Vmmcall) => VMMCALL,
        };
        self.instruction.store(v, Ordering::Release);
    }
}

impl Hypercall for NativeHypercall {
    fn hypercall(&self, op: u32, args: [usize; 5]) -> isize {
        let [a0, a1, a2, a3, a4] = args;
        let mut rax = op as usize;
        match self.instruction.load(Ordering::Acquire) {
            // SAFETY: executed only in a Xen HVM guest kernel (the instruction is selected
            // after the Xen CPUID signature was found). Xen reads the ordinal from RAX and
            // the arguments from RDI, RSI, RDX, R10, R8, returns in RAX and may clobber the
            // argument registers; pointer arguments are the caller's responsibility.
            VMCALL => unsafe {
                asm!("vmcall",
                    inout("rax") rax,
                    inout("rdi") a0 => _, inout("rsi") a1 => _, inout("rdx") a2 => _,
                    inout("r10") a3 => _, inout("r8") a4 => _,
                    options(nostack));
            },
            // SAFETY: as above, for AMD-V.
            VMMCALL => unsafe {
                asm!("vmmcall",
                    inout("rax") rax,
                    inout("rdi") a0 => _, inout("rsi") a1 => _, inout("rdx") a2 => _,
                    inout("r10") a3 => _, inout("r8") a4 => _,
                    options(nostack));
            },
            _ => return NEG_ENOSYS,
        }
        rax as isize
    }

    fn cpuid(&self, leaf: u32, subleaf: u32) -> CpuidResult {
        // CPUID is available on every x86_64 CPU (a safe intrinsic since Rust 1.87).
        let r = core::arch::x86_64::__cpuid_count(leaf, subleaf);
        CpuidResult {
            eax: r.eax,
            ebx: r.ebx,
            ecx: r.ecx,
            edx: r.edx,
        }
    }

    fn port_read(&self, port: u16, width: PortWidth) -> u32 {
        let value: u32;
        // SAFETY: port I/O is only performed by the kernel driver on the Xen platform
        // device's ports (0x10, 0x12) and the debug ports; it touches no memory.
        unsafe {
            match width {
                PortWidth::Byte => {
                    let v: u8;
                    asm!("in al, dx", out("al") v, in("dx") port, options(nomem, nostack, preserves_flags));
                    value = u32::from(v);
                }
                PortWidth::Word => {
                    let v: u16;
                    asm!("in ax, dx", out("ax") v, in("dx") port, options(nomem, nostack, preserves_flags));
                    value = u32::from(v);
                }
                PortWidth::Dword => {
                    asm!("in eax, dx", out("eax") value, in("dx") port, options(nomem, nostack, preserves_flags));
                }
            }
        }
        value
    }

    fn port_write(&self, port: u16, width: PortWidth, value: u32) {
        // SAFETY: as for `port_read`.
        unsafe {
            match width {
                PortWidth::Byte => {
                    asm!("out dx, al", in("dx") port, in("al") value as u8, options(nomem, nostack, preserves_flags))
                }
                PortWidth::Word => {
                    asm!("out dx, ax", in("dx") port, in("ax") value as u16, options(nomem, nostack, preserves_flags))
                }
                PortWidth::Dword => {
                    asm!("out dx, eax", in("dx") port, in("eax") value, options(nomem, nostack, preserves_flags))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpuid_runs_on_the_host() {
        let hv = NativeHypercall::new();
        // Leaf 0 returns a printable vendor string on every x86_64 host.
        let v = crate::hypercall::vendor(&hv);
        assert!(
            v.iter().all(|b| b.is_ascii_graphic() || *b == b' '),
            "{v:?}"
        );
    }

    #[test]
    fn hypercalls_before_selection_fail_without_trapping() {
        let hv = NativeHypercall::new();
        assert_eq!(hv.hypercall(17, [0; 5]), NEG_ENOSYS);
        hv.select(Some(Instruction::Vmcall));
        hv.select(None);
        assert_eq!(hv.hypercall(17, [0; 5]), NEG_ENOSYS);
    }
}
