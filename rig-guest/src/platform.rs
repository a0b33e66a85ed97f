//! The bare-metal platform of the rig guest: port I/O, the hypercall instruction, the
//! 0xE9 console and the scenario runner.

use core::fmt::Write;

use common::hypercall::{Hypercall, PortWidth};
use rig_guest::GuestEnv;
use xen::hypercall_thunk::NativeHypercall;
use xenbus::shared::SharedMemory;

/// The hypercall edge: the `xen` crate's real `asm!` thunk, the same code xen.sys runs.
static HYPERCALL: NativeHypercall = NativeHypercall::new();

/// Scratch pages handed to the scenarios (identity-mapped, so VA = physical address).
const SCRATCH_PAGES: usize = 8;

#[repr(C, align(4096))]
struct Scratch([[u8; 4096]; SCRATCH_PAGES]);

static SCRATCH: Scratch = Scratch([[0; 4096]; SCRATCH_PAGES]);

/// The bare-metal environment: identity paging of the first 4 GiB.
struct BareMetal;

impl GuestEnv for BareMetal {
    fn hv(&self) -> &dyn Hypercall {
        &HYPERCALL
    }

    fn scratch_pfn(&self, index: usize) -> Option<u64> {
        let page = SCRATCH.0.get(index)?;
        Some(page.as_ptr() as u64 >> 12)
    }

    fn frame(&self, pfn: u64) -> Option<SharedMemory> {
        if pfn >= 0x10_0000 {
            return None;
        }
        // SAFETY: the boot code identity-maps the first 4 GiB, so frame `pfn` is mapped at
        // its physical address for the guest's whole life; scenario pages are only touched
        // through SharedMemory's atomic accessors.
        unsafe { SharedMemory::from_raw((pfn << 12) as usize, 4096) }
    }

    fn pause(&self) {
        xen::sched::yield_now(&HYPERCALL);
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

fn power_off(hv: &dyn Hypercall) -> ! {
    let _ = xen::sched::shutdown(hv, 0);
    loop {
        // SAFETY: halting with interrupts off ends the domain on the last vCPU.
        unsafe { core::arch::asm!("cli; hlt", options(nomem, nostack)) };
    }
}

/// Select the hypercall instruction, read the scenario list from XenStore, run it and
/// power off.
pub fn main() -> ! {
    let mut out = Console(&HYPERCALL);
    let _ = writeln!(out, "RIG: BEGIN");
    let env = BareMetal;
    match xen::hypercall::discover(&HYPERCALL) {
        Ok(found) => HYPERCALL.select(Some(found.instruction)),
        Err(error) => {
            let _ = writeln!(out, "RIG: SCENARIO discovery FAIL {error:?}");
            let _ = writeln!(out, "RIG: END passed=0 failed=1");
            power_off(&HYPERCALL)
        }
    }
    let filter = rig_guest::xs::Xs::connect(&env)
        .and_then(|mut xs| xs.read("data/rig/scenarios"))
        .unwrap_or_else(|_| "all".into());
    let _ = writeln!(out, "RIG: SCENARIOS {filter}");
    let (passed, failed) = rig_guest::run_all(&env, &filter, &mut out);
    let _ = writeln!(out, "RIG: END passed={passed} failed={failed}");
    power_off(&HYPERCALL)
}

/// Report a panic as a failure line and power off.
pub fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let mut out = Console(&HYPERCALL);
    let _ = writeln!(out, "RIG: PANIC {info}");
    power_off(&HYPERCALL)
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
