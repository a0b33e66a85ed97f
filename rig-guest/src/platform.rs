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
struct BareMetal {
    api: &'static rig_guest::api::RigApi,
    cores: core::cell::OnceCell<rig_guest::cores::Cores>,
    store: core::cell::OnceCell<rig_guest::xs::Connection>,
}

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
        interrupts_off_check();
    }

    fn now_ms(&self) -> u64 {
        now_ms()
    }

    fn api(&self) -> &'static dyn xen_include::api::XenApi {
        self.api
    }

    fn os(&self) -> &'static dyn common::os::Os {
        &BARE_OS
    }

    fn cores(&self) -> &core::cell::OnceCell<rig_guest::cores::Cores> {
        &self.cores
    }

    fn store(&self) -> &core::cell::OnceCell<rig_guest::xs::Connection> {
        &self.store
    }

    fn event_sets(&self, event: usize) -> u64 {
        EVENTS
            .iter()
            .find_map(|(e, n)| {
                (e.load(core::sync::atomic::Ordering::Acquire) == event)
                    .then(|| n.load(core::sync::atomic::Ordering::Acquire))
            })
            .unwrap_or(0)
    }
}

/// Milliseconds of the hypervisor's system time (`HVMOP_get_time`). Should the call fail,
/// the clock advances a millisecond per call instead, so every bounded wait still ends.
pub fn now_ms() -> u64 {
    use core::sync::atomic::{AtomicU64, Ordering};
    use xen_include::xen::hvm::hvm_op::{HvmOp, XenHvmGetTime};
    use xen_include::xen::xen::HypercallCode;
    static LAST: AtomicU64 = AtomicU64::new(0);
    let mut time = XenHvmGetTime::default();
    let now = match xen::op::call2(
        &HYPERCALL,
        HypercallCode::HVM_OP,
        HvmOp::GET_TIME.0 as usize,
        xen::op::arg(&mut time),
    ) {
        Ok(_) => time.now / 1_000_000,
        Err(_) => LAST.load(Ordering::Relaxed) + 1,
    };
    let now = now.max(LAST.load(Ordering::Relaxed));
    LAST.store(now, Ordering::Relaxed);
    now
}

/// The guest runs with interrupts off from its first instruction and never enables them.
/// Some runs on a loaded host nevertheless found RFLAGS.IF set (Xen's dump of a dead guest
/// showed it, and the callback vector was then taken through the 32-entry IDT), so each
/// poll checks it, reports the first occurrence and clears it again.
fn interrupts_off_check() {
    use core::sync::atomic::{AtomicBool, Ordering};
    static REPORTED: AtomicBool = AtomicBool::new(false);
    let flags = rflags();
    if flags & 0x200 != 0 {
        // SAFETY: masking interrupts is the guest's intended state.
        unsafe { core::arch::asm!("cli", options(nomem, nostack)) };
        if !REPORTED.swap(true, Ordering::Relaxed) {
            let mut out = Console(&HYPERCALL);
            let _ = writeln!(
                out,
                "RIG: NOTE RFLAGS.IF was found set ({flags:#x}); cleared"
            );
        }
    }
}

fn rflags() -> u64 {
    let flags: u64;
    // SAFETY: reads RFLAGS through the stack; no other effect.
    unsafe { core::arch::asm!("pushfq", "pop {}", out(reg) flags, options(preserves_flags)) };
    flags
}

/// Interrupts the boot code's `rig_irq_ignore` gate dismissed.
fn irq_count() -> u64 {
    unsafe extern "C" {
        static rig_irq_count: core::sync::atomic::AtomicU64;
    }
    // SAFETY: `rig_irq_count` is an 8-byte, 8-aligned counter in the boot code's .bss,
    // only ever updated atomically (`lock incq`).
    unsafe { rig_irq_count.load(core::sync::atomic::Ordering::Relaxed) }
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
    let _ = writeln!(out, "RIG: BEGIN (rflags {:#x})", rflags());
    let env = BareMetal {
        api: alloc::boxed::Box::leak(alloc::boxed::Box::new(rig_guest::api::RigApi::new(
            &HYPERCALL, &BARE_OS,
        ))),
        cores: core::cell::OnceCell::new(),
        store: core::cell::OnceCell::new(),
    };
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
    let _ = writeln!(
        out,
        "RIG: NOTE {} interrupt(s) taken and dismissed",
        irq_count()
    );
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

/// The kernel services the xenbus cores need, on bare metal: pages from the heap
/// (identity-mapped), one processor, the hypervisor's clock, the console for log lines. The
/// guest has no registry, firmware tables or loaded modules; those calls fail cleanly.
pub struct BareOs;

/// The rig guest's `Os`.
pub static BARE_OS: BareOs = BareOs;

/// The DPCs of [`BARE_OS`].
static DPCS: rig_guest::dpc::BareDpcs = rig_guest::dpc::BareDpcs::new();

/// How often each event was passed to `Os::set_event` (the store's watch events): up to
/// [`EVENT_SLOTS`] distinct events, each slot claimed by its first signal (0 = free).
#[allow(clippy::declare_interior_mutable_const)]
const EVENT_SLOT: (
    core::sync::atomic::AtomicUsize,
    core::sync::atomic::AtomicU64,
) = (
    core::sync::atomic::AtomicUsize::new(0),
    core::sync::atomic::AtomicU64::new(0),
);
const EVENT_SLOTS: usize = 16;
static EVENTS: [(
    core::sync::atomic::AtomicUsize,
    core::sync::atomic::AtomicU64,
); EVENT_SLOTS] = [EVENT_SLOT; EVENT_SLOTS];

impl common::os::Os for BareOs {
    fn alloc_page(&self) -> Option<common::os::Page> {
        let layout = core::alloc::Layout::from_size_align(4096, 4096).ok()?;
        // SAFETY: the layout has a non-zero size; the page is never returned to the heap
        // (the bump allocator does not reuse memory), so it stays valid for the guest's life.
        let va = unsafe { alloc::alloc::alloc_zeroed(layout) } as usize;
        (va != 0).then_some(common::os::Page {
            va,
            pfn: va as u64 >> 12,
        })
    }
    fn free_page(&self, _page: common::os::Page) {}
    fn map_pfn(&self, pfn: u64) -> Option<usize> {
        (pfn < 0x10_0000).then_some((pfn << 12) as usize)
    }
    fn processor_count(&self) -> u32 {
        1
    }
    fn maximum_processor_count(&self) -> u32 {
        1
    }
    fn current_processor(&self) -> u32 {
        0
    }
    fn run_on_processor(
        &self,
        cpu: u32,
        f: &mut dyn FnMut(),
    ) -> Result<(), xen_include::status::NtStatus> {
        if cpu != 0 {
            return Err(xen_include::status::STATUS_INVALID_PARAMETER);
        }
        f();
        Ok(())
    }
    fn dpc_create(
        &self,
        cpu: u32,
        routine: &'static dyn common::os::DpcRoutine,
    ) -> Result<common::os::DpcHandle, xen_include::status::NtStatus> {
        DPCS.create(cpu, self.maximum_processor_count(), routine)
            .inspect_err(|_| self.debug_print("dpc_create: processor out of range"))
    }
    fn dpc_queue(&self, dpc: common::os::DpcHandle) -> bool {
        DPCS.queue(dpc).unwrap_or_else(|| {
            self.debug_print("dpc_queue: unknown DPC handle");
            false
        })
    }
    fn dpc_destroy(&self, dpc: common::os::DpcHandle) {
        if !DPCS.destroy(dpc) {
            self.debug_print("dpc_destroy: unknown DPC handle");
        }
    }
    fn system_time(&self) -> i64 {
        (now_ms() as i64).saturating_mul(10_000)
    }
    fn debug_print(&self, line: &str) {
        let mut out = Console(&HYPERCALL);
        let _ = writeln!(out, "LOG: {}", line.trim_end());
    }
    fn safe_boot_mode(&self) -> u32 {
        0
    }
    fn registry_open(
        &self,
        _parent: Option<common::os::KeyHandle>,
        _path: &str,
    ) -> Result<common::os::KeyHandle, xen_include::status::NtStatus> {
        Err(xen_include::status::STATUS_OBJECT_NAME_NOT_FOUND)
    }
    fn registry_create(
        &self,
        _parent: Option<common::os::KeyHandle>,
        _path: &str,
        _volatile: bool,
    ) -> Result<common::os::KeyHandle, xen_include::status::NtStatus> {
        Err(xen_include::status::STATUS_NOT_SUPPORTED)
    }
    fn registry_close(&self, _key: common::os::KeyHandle) {}
    fn registry_query(
        &self,
        _key: common::os::KeyHandle,
        _name: &str,
    ) -> Result<common::os::RegValue, xen_include::status::NtStatus> {
        Err(xen_include::status::STATUS_OBJECT_NAME_NOT_FOUND)
    }
    fn registry_set(
        &self,
        _key: common::os::KeyHandle,
        _name: &str,
        _value: &common::os::RegValue,
    ) -> Result<(), xen_include::status::NtStatus> {
        Err(xen_include::status::STATUS_NOT_SUPPORTED)
    }
    fn registry_delete_value(
        &self,
        _key: common::os::KeyHandle,
        _name: &str,
    ) -> Result<(), xen_include::status::NtStatus> {
        Err(xen_include::status::STATUS_OBJECT_NAME_NOT_FOUND)
    }
    fn registry_subkeys(
        &self,
        _key: common::os::KeyHandle,
    ) -> Result<alloc::vec::Vec<alloc::string::String>, xen_include::status::NtStatus> {
        Err(xen_include::status::STATUS_OBJECT_NAME_NOT_FOUND)
    }
    fn registry_delete_key(
        &self,
        _key: common::os::KeyHandle,
    ) -> Result<(), xen_include::status::NtStatus> {
        Err(xen_include::status::STATUS_NOT_SUPPORTED)
    }
    fn read_physical(
        &self,
        _address: u64,
        _buffer: &mut [u8],
    ) -> Result<(), xen_include::status::NtStatus> {
        Err(xen_include::status::STATUS_NOT_SUPPORTED)
    }
    fn physical_memory_ranges(&self) -> alloc::vec::Vec<common::os::MemoryRange> {
        alloc::vec::Vec::new()
    }
    fn loaded_modules(
        &self,
    ) -> Result<alloc::vec::Vec<common::os::ModuleInfo>, xen_include::status::NtStatus> {
        Ok(alloc::vec::Vec::new())
    }
    fn register_callback(
        &self,
        _kind: common::os::KernelCallback,
    ) -> Result<common::os::CallbackHandle, xen_include::status::NtStatus> {
        Err(xen_include::status::STATUS_NOT_SUPPORTED)
    }
    fn deregister_callback(&self, _handle: common::os::CallbackHandle) {}
    fn set_event(&self, event: usize) {
        // The events are the scenarios' watch numbers: count each (no allocation). A 17th
        // distinct event is not counted.
        use core::sync::atomic::Ordering;
        for (e, n) in &EVENTS {
            let claimed = e.load(Ordering::Acquire) == event
                || (event != 0
                    && e.compare_exchange(0, event, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok());
            if claimed {
                n.fetch_add(1, Ordering::AcqRel);
                return;
            }
        }
    }
    fn capture_processors(
        &self,
        at_high_level: &mut dyn FnMut(),
        at_dispatch_level: &mut dyn FnMut(),
    ) -> Result<(), xen_include::status::NtStatus> {
        // One processor, interrupts always off: both phases run here, in order.
        at_high_level();
        at_dispatch_level();
        Ok(())
    }
    fn read_tsc(&self) -> u64 {
        let (low, high): (u32, u32);
        // SAFETY: RDTSC only reads the time-stamp counter.
        unsafe {
            core::arch::asm!("rdtsc", out("eax") low, out("edx") high, options(nomem, nostack))
        };
        (u64::from(high) << 32) | u64::from(low)
    }
}
