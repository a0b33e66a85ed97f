//! The `Hypercall` edge: raw hypercalls, CPUID and port I/O.
//!
//! Real implementation: `asm!` in the `xen` crate (VMCALL or VMMCALL chosen from the CPU
//! vendor). Host implementation: the simulator's hypervisor model.
#![forbid(unsafe_code)]

/// The four registers returned by `CPUID`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuidResult {
    /// EAX.
    pub eax: u32,
    /// EBX.
    pub ebx: u32,
    /// ECX.
    pub ecx: u32,
    /// EDX.
    pub edx: u32,
}

/// Width of a port I/O access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortWidth {
    /// 8 bits (`in al, dx`).
    Byte,
    /// 16 bits (`in ax, dx`).
    Word,
    /// 32 bits (`in eax, dx`).
    Dword,
}

/// Access to the hypervisor and the platform: everything below the guest kernel.
///
/// Hypercall arguments that are pointers are guest virtual addresses of the caller
/// (on the host: addresses in this process, which the simulator dereferences).
pub trait Hypercall: Sync {
    /// Issue hypercall number `op` with up to five arguments. Returns Xen's raw result:
    /// zero or positive on success, a negated Xen errno on failure.
    fn hypercall(&self, op: u32, args: [usize; 5]) -> isize;
    /// Execute `CPUID` with `leaf` in EAX and `subleaf` in ECX.
    fn cpuid(&self, leaf: u32, subleaf: u32) -> CpuidResult;
    /// Read an I/O port.
    fn port_read(&self, port: u16, width: PortWidth) -> u32;
    /// Write an I/O port.
    fn port_write(&self, port: u16, width: PortWidth, value: u32);
}
