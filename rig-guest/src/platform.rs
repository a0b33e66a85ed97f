//! The bare-metal platform of the rig guest: port I/O, the hypercall instruction, the
//! 0xE9 console and the scenario runner.

use core::fmt::Write;

use common::hypercall::{CpuidResult, Hypercall, PortWidth};

/// The real hypercall edge of this guest: the instruction chosen from the CPU vendor.
pub struct Native {
    amd: bool,
}

impl Native {
    /// Pick VMMCALL for AMD-style vendors, VMCALL otherwise.
    pub fn new() -> Self {
        let leaf0 = cpuid(0, 0);
        let mut vendor = [0u8; 12];
        vendor[0..4].copy_from_slice(&leaf0.ebx.to_le_bytes());
        vendor[4..8].copy_from_slice(&leaf0.edx.to_le_bytes());
        vendor[8..12].copy_from_slice(&leaf0.ecx.to_le_bytes());
        Self {
            amd: &vendor == b"AuthenticAMD" || &vendor == b"HygonGenuine",
        }
    }
}

fn cpuid(leaf: u32, subleaf: u32) -> CpuidResult {
    let r = core::arch::x86_64::__cpuid_count(leaf, subleaf);
    CpuidResult {
        eax: r.eax,
        ebx: r.ebx,
        ecx: r.ecx,
        edx: r.edx,
    }
}

impl Hypercall for Native {
    fn hypercall(&self, op: u32, args: [usize; 5]) -> isize {
        let result: isize;
        if self.amd {
            // SAFETY: a Xen hypercall from ring 0 of an HVM guest; pointer arguments are
            // identity-mapped guest addresses owned by the caller for the call's duration.
            unsafe {
                core::arch::asm!("vmmcall", inlateout("rax") op as usize => result, in("rdi") args[0], in("rsi") args[1],
                    in("rdx") args[2], in("r10") args[3], in("r8") args[4], options(nostack));
            }
        } else {
            // SAFETY: as above, with VMCALL for Intel-style vendors.
            unsafe {
                core::arch::asm!("vmcall", inlateout("rax") op as usize => result, in("rdi") args[0], in("rsi") args[1],
                    in("rdx") args[2], in("r10") args[3], in("r8") args[4], options(nostack));
            }
        }
        result
    }

    fn cpuid(&self, leaf: u32, subleaf: u32) -> CpuidResult {
        cpuid(leaf, subleaf)
    }

    fn port_read(&self, port: u16, width: PortWidth) -> u32 {
        // SAFETY: port I/O in ring 0; the rig guest owns the whole machine.
        unsafe {
            match width {
                PortWidth::Byte => {
                    let v: u8;
                    core::arch::asm!("in al, dx", out("al") v, in("dx") port, options(nostack));
                    u32::from(v)
                }
                PortWidth::Word => {
                    let v: u16;
                    core::arch::asm!("in ax, dx", out("ax") v, in("dx") port, options(nostack));
                    u32::from(v)
                }
                PortWidth::Dword => {
                    let v: u32;
                    core::arch::asm!("in eax, dx", out("eax") v, in("dx") port, options(nostack));
                    v
                }
            }
        }
    }

    fn port_write(&self, port: u16, width: PortWidth, value: u32) {
        // SAFETY: port I/O in ring 0; the rig guest owns the whole machine.
        unsafe {
            match width {
                PortWidth::Byte => {
                    core::arch::asm!("out dx, al", in("dx") port, in("al") value as u8, options(nostack))
                }
                PortWidth::Word => {
                    core::arch::asm!("out dx, ax", in("dx") port, in("ax") value as u16, options(nostack))
                }
                PortWidth::Dword => {
                    core::arch::asm!("out dx, eax", in("dx") port, in("eax") value, options(nostack))
                }
            }
        }
    }
}

/// Line output on port 0xE9.
pub struct Console<'a>(pub &'a dyn Hypercall);

impl Write for Console<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for b in s.bytes() {
            self.0.port_write(0xE9, PortWidth::Byte, u32::from(b));
        }
        Ok(())
    }
}

const SCHED_OP: u32 = 29;
const SCHEDOP_SHUTDOWN: usize = 2;

fn power_off(hv: &dyn Hypercall) -> ! {
    let reason: u32 = 0;
    hv.hypercall(
        SCHED_OP,
        [SCHEDOP_SHUTDOWN, &reason as *const u32 as usize, 0, 0, 0],
    );
    loop {
        // SAFETY: halting with interrupts off ends the domain on the last vCPU.
        unsafe { core::arch::asm!("cli; hlt", options(nomem, nostack)) };
    }
}

/// Run the scenario list and power off.
pub fn main() -> ! {
    let hv = Native::new();
    let mut out = Console(&hv);
    let _ = writeln!(out, "RIG: BEGIN");
    let (passed, failed) = rig_guest::run_all(&hv, &mut out);
    let _ = writeln!(out, "RIG: END passed={passed} failed={failed}");
    power_off(&hv)
}

/// Report a panic as a failure line and power off.
pub fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let hv = Native::new();
    let mut out = Console(&hv);
    let _ = writeln!(out, "RIG: PANIC {info}");
    power_off(&hv)
}

/// A bump allocator over a static arena: the guest runs one scenario list and powers off,
/// so memory is never returned.
struct BumpAllocator;

const ARENA_SIZE: usize = 4 << 20;

#[repr(C, align(4096))]
struct Arena(core::cell::UnsafeCell<[u8; ARENA_SIZE]>);

// SAFETY: the guest runs on one vCPU with interrupts off; `NEXT` hands out each byte once.
unsafe impl Sync for Arena {}

static ARENA: Arena = Arena(core::cell::UnsafeCell::new([0; ARENA_SIZE]));
static NEXT: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);

// SAFETY: every allocation is a distinct, suitably aligned range inside ARENA.
unsafe impl core::alloc::GlobalAlloc for BumpAllocator {
    unsafe fn alloc(&self, layout: core::alloc::Layout) -> *mut u8 {
        let base = ARENA.0.get() as usize;
        let mut result = core::ptr::null_mut();
        let _ = NEXT.fetch_update(
            core::sync::atomic::Ordering::SeqCst,
            core::sync::atomic::Ordering::SeqCst,
            |next| {
                let start = (base + next).next_multiple_of(layout.align()) - base;
                let end = start.checked_add(layout.size())?;
                if end > ARENA_SIZE {
                    return None;
                }
                result = (base + start) as *mut u8;
                Some(end)
            },
        );
        result
    }

    unsafe fn dealloc(&self, _ptr: *mut u8, _layout: core::alloc::Layout) {}
}

#[global_allocator]
static ALLOCATOR: BumpAllocator = BumpAllocator;
