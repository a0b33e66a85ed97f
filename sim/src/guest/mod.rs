//! The Windows guest model: the host implementation of `common::os::Os`.
//!
//! Pages come from the guest's physmap (so their frame numbers are real to the hypervisor
//! model), processors are a thread-local "current processor", time is the machine's virtual
//! clock, the registry is [`registry::Registry`] and debug output is captured for tests.
//! New `Os` methods get their model here; keep each one a thin call into a field.

pub mod acpi;

pub mod registry;

use std::cell::Cell;
use std::sync::{Arc, Mutex, MutexGuard};

use common::os::{
    CallbackHandle, DpcHandle, DpcRoutine, KernelCallback, KeyHandle, MemoryRange, ModuleInfo, Os,
    OsVersion, Page, RegValue, RegisterContext,
};
use xen_include::status::{
    NtStatus, STATUS_INVALID_ADDRESS, STATUS_INVALID_HANDLE, STATUS_INVALID_PARAMETER,
    STATUS_OBJECT_NAME_NOT_FOUND,
};

use crate::clock::Clock;
use crate::hv::Hypervisor;
use registry::{RegError, Registry};

/// Root of the registry paths the `Os` edge is relative to (`HKLM`).
pub const HKLM: &str = r"\Registry\Machine";

thread_local! {
    static CURRENT_PROCESSOR: Cell<u32> = const { Cell::new(0) };
}

/// Index of the processor the calling host thread is currently "running on".
pub fn current_processor() -> u32 {
    CURRENT_PROCESSOR.with(|c| c.get())
}

/// Run `f` as if on processor `cpu`, restoring the previous processor afterwards.
pub fn run_on<R>(cpu: u32, f: impl FnOnce() -> R) -> R {
    struct Restore(u32);
    impl Drop for Restore {
        fn drop(&mut self) {
            CURRENT_PROCESSOR.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(CURRENT_PROCESSOR.with(|c| c.replace(cpu)));
    f()
}

/// Something the guest model saw the driver do wrong (tests assert this list is empty).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GuestViolation {
    /// `free_page` of a page that was not allocated by `alloc_page`.
    FreeOfUnallocatedPage(Page),
    /// `free_page` of a page whose frame is no longer populated RAM (ballooned out or
    /// overlaid by a hypervisor mapping and not given back).
    FreeOfUnpopulatedPage(Page),
}

struct PageAllocator {
    /// Free RAM frames, lowest last (popped first).
    free: Vec<u64>,
    allocated: std::collections::BTreeSet<u64>,
}

/// The Windows guest.
pub struct WindowsGuest {
    hv: Arc<Hypervisor>,
    clock: Arc<Clock>,
    processors: u32,
    pages: Mutex<PageAllocator>,
    registry: Mutex<Registry>,
    log: Mutex<Vec<String>>,
    violations: Mutex<Vec<GuestViolation>>,
    echo: bool,
    keys: Mutex<KeyTable>,
    callbacks: Mutex<CallbackTable>,
    modules: Mutex<Vec<ModuleInfo>>,
    firmware: Mutex<std::collections::BTreeMap<u64, Vec<u8>>>,
    safe_boot_mode: std::sync::atomic::AtomicU32,
    ram_pages: u64,
    /// How often each KEVENT address was signalled (`Os::set_event`).
    events: Mutex<std::collections::BTreeMap<usize, u64>>,
    /// Active processors (at most `processors`, the maximum): processors can be hot-added.
    active: std::sync::atomic::AtomicU32,
    /// Kernel virtual memory, a captured context and unwind data for stack walks.
    kernel: Mutex<KernelImage>,
    /// What `RtlGetVersion` reports.
    os_version: Mutex<Option<OsVersion>>,
    /// The vCPUs' DPC queues (`common::os::model`: per vCPU, on the IRQL model and this
    /// module's per-thread current processor).
    dpcs: Arc<common::os::model::DpcQueue>,
}

/// The parts of kernel state a bug-check report reads: resident kernel virtual memory
/// (regions a test writes), the context `RtlCaptureContext` returns and the functions
/// with unwind data.
#[derive(Default)]
struct KernelImage {
    memory: std::collections::BTreeMap<usize, Vec<u8>>,
    context: Option<RegisterContext>,
    /// `start → (end, frame size)`: a function whose frame takes `frame size` bytes below
    /// its return address.
    functions: std::collections::BTreeMap<u64, (u64, u64)>,
}

impl KernelImage {
    fn read(&self, address: usize, buffer: &mut [u8]) -> Result<(), NtStatus> {
        let end = address
            .checked_add(buffer.len())
            .ok_or(STATUS_INVALID_ADDRESS)?;
        let (base, bytes) = self
            .memory
            .range(..=address)
            .next_back()
            .ok_or(STATUS_INVALID_ADDRESS)?;
        if end > base + bytes.len() {
            return Err(STATUS_INVALID_ADDRESS);
        }
        buffer.copy_from_slice(&bytes[address - base..end - base]);
        Ok(())
    }
}

#[derive(Default)]
struct KeyTable {
    next: usize,
    open: std::collections::BTreeMap<usize, String>,
}

#[derive(Default)]
struct CallbackTable {
    next: usize,
    registered: std::collections::BTreeMap<usize, KernelCallback>,
}

fn reg_status(e: RegError) -> NtStatus {
    match e {
        RegError::NotFound => STATUS_OBJECT_NAME_NOT_FOUND,
        RegError::HasSubkeys | RegError::ChildMustBeVolatile | RegError::InvalidName => {
            STATUS_INVALID_PARAMETER
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl WindowsGuest {
    /// A guest with `processors` CPUs owning RAM frames `ram_gfns` of `hv`'s physmap.
    pub fn new(
        hv: Arc<Hypervisor>,
        clock: Arc<Clock>,
        processors: u32,
        ram_gfns: std::ops::Range<u64>,
    ) -> Self {
        let dpcs = common::os::model::DpcQueue::new(common::os::model::Processors {
            count: processors,
            current: current_processor,
            run_on: |cpu, f| run_on(cpu, f),
        });
        // The hypervisor runs pending DPCs at its drain points (after an upcall, at
        // hypercall completion, when interrupts come back on).
        hv.set_dpc_drain(Some(dpcs.drain()));
        WindowsGuest {
            dpcs,
            hv,
            clock,
            processors,
            pages: Mutex::new(PageAllocator {
                free: ram_gfns.clone().rev().collect(),
                allocated: Default::default(),
            }),
            registry: Mutex::new(Registry::new()),
            log: Mutex::new(Vec::new()),
            violations: Mutex::new(Vec::new()),
            events: Mutex::new(std::collections::BTreeMap::new()),
            echo: std::env::var_os("XEN_SIM_ECHO").is_some(),
            keys: Mutex::new(KeyTable::default()),
            callbacks: Mutex::new(CallbackTable::default()),
            modules: Mutex::new(vec![ModuleInfo {
                base: 0xFFFF_F800_0000_0000,
                size: 0x00A0_0000,
                name: r"\SystemRoot\system32\ntoskrnl.exe".to_string(),
            }]),
            firmware: Mutex::new(Default::default()),
            safe_boot_mode: std::sync::atomic::AtomicU32::new(0),
            ram_pages: ram_gfns.end,
            active: std::sync::atomic::AtomicU32::new(processors),
            kernel: Mutex::new(KernelImage::default()),
            os_version: Mutex::new(Some(OsVersion {
                major: 10,
                minor: 0,
                build: 20348,
                platform_id: 2,
                service_pack: String::new(),
                service_pack_major: 0,
                service_pack_minor: 0,
                suite_mask: 0x0110,
                product_type: 3,
            })),
        }
    }

    /// The hypervisor this guest runs on.
    pub fn hypervisor(&self) -> &Arc<Hypervisor> {
        &self.hv
    }

    /// Exclusive access to the registry.
    pub fn registry(&self) -> MutexGuard<'_, Registry> {
        lock(&self.registry)
    }

    /// Lines written through [`Os::debug_print`] so far (drained).
    pub fn take_log(&self) -> Vec<String> {
        std::mem::take(&mut *lock(&self.log))
    }

    /// Lines written through [`Os::debug_print`] so far (kept).
    pub fn log(&self) -> Vec<String> {
        lock(&self.log).clone()
    }

    /// Misuse of guest services recorded so far.
    pub fn violations(&self) -> Vec<GuestViolation> {
        lock(&self.violations).clone()
    }

    /// How often the KEVENT at `event` was signalled through [`Os::set_event`].
    pub fn event_sets(&self, event: usize) -> u64 {
        lock(&self.events).get(&event).copied().unwrap_or(0)
    }

    /// Number of pages currently allocated through [`Os::alloc_page`].
    pub fn allocated_pages(&self) -> usize {
        lock(&self.pages).allocated.len()
    }

    /// Number of RAM pages still free in the guest allocator.
    pub fn free_pages(&self) -> usize {
        lock(&self.pages).free.len()
    }

    /// Full registry path (under `HKLM`) of a path relative to `parent`.
    fn key_path(&self, parent: Option<KeyHandle>, path: &str) -> Result<String, NtStatus> {
        let base = match parent {
            None => HKLM.to_string(),
            Some(h) => lock(&self.keys)
                .open
                .get(&h.0)
                .cloned()
                .ok_or(STATUS_INVALID_HANDLE)?,
        };
        let rel = path.trim_matches('\\');
        Ok(if rel.is_empty() {
            base
        } else {
            format!("{base}\\{rel}")
        })
    }

    fn open_handle(&self, path: String) -> KeyHandle {
        let mut k = lock(&self.keys);
        k.next += 1;
        let h = k.next;
        k.open.insert(h, path);
        KeyHandle(h)
    }

    fn handle_path(&self, key: KeyHandle) -> Result<String, NtStatus> {
        lock(&self.keys)
            .open
            .get(&key.0)
            .cloned()
            .ok_or(STATUS_INVALID_HANDLE)
    }

    /// Number of registry handles currently open (tests check for leaks).
    pub fn open_key_handles(&self) -> usize {
        lock(&self.keys).open.len()
    }

    /// Kernel callbacks currently registered.
    pub fn registered_callbacks(&self) -> Vec<KernelCallback> {
        lock(&self.callbacks).registered.values().copied().collect()
    }

    /// Replace the list of loaded kernel modules.
    pub fn set_loaded_modules(&self, modules: Vec<ModuleInfo>) {
        *lock(&self.modules) = modules;
    }

    /// Place bytes at a physical address outside RAM (firmware tables, BIOS area).
    pub fn set_firmware_bytes(&self, address: u64, bytes: Vec<u8>) {
        lock(&self.firmware).insert(address, bytes);
    }

    /// Set `InitSafeBootMode`.
    pub fn set_safe_boot_mode(&self, mode: u32) {
        self.safe_boot_mode
            .store(mode, std::sync::atomic::Ordering::SeqCst);
    }

    /// A reboot of the guest OS: volatile registry keys vanish and the log is kept.
    pub fn reboot_registry(&self) {
        lock(&self.registry).reboot();
    }
}

impl WindowsGuest {
    /// Start with only `active` of the machine's processors running (the others can be
    /// hot-added with [`WindowsGuest::add_processor`]).
    pub fn set_active_processors(&self, active: u32) {
        self.active.store(
            active.clamp(1, self.processors),
            std::sync::atomic::Ordering::SeqCst,
        );
    }

    /// Hot-add the next processor (as `KeProcessorAddCompleteNotify` reports it): returns
    /// its index, or `None` when every processor of the machine is active already. The
    /// test then delivers the notification to the driver's sink.
    pub fn add_processor(&self) -> Option<u32> {
        use std::sync::atomic::Ordering;
        let cpu = self.active.load(Ordering::SeqCst);
        (cpu < self.processors).then(|| {
            self.active.store(cpu + 1, Ordering::SeqCst);
            cpu
        })
    }

    /// Make `bytes` resident kernel memory at `address` (replacing any region there).
    pub fn set_kernel_memory(&self, address: usize, bytes: Vec<u8>) {
        lock(&self.kernel).memory.insert(address, bytes);
    }

    /// Write the 64-bit words `words` as resident kernel memory at `address`.
    pub fn set_kernel_words(&self, address: usize, words: &[u64]) {
        self.set_kernel_memory(
            address,
            words.iter().flat_map(|w| w.to_le_bytes()).collect(),
        );
    }

    /// What `RtlCaptureContext` returns (`None`: capture unavailable).
    pub fn set_captured_context(&self, context: Option<RegisterContext>) {
        lock(&self.kernel).context = context;
    }

    /// Give `[start, end)` unwind data: its frame takes `frame_size` bytes, so unwinding
    /// from inside it reads the return address at `Rsp + frame_size` and leaves `Rsp`
    /// just above it. Addresses without unwind data are leaves.
    pub fn add_function(&self, start: u64, end: u64, frame_size: u64) {
        lock(&self.kernel)
            .functions
            .insert(start, (end, frame_size));
    }

    /// DPCs queued on vCPU `cpu` and not yet run.
    pub fn queued_dpcs(&self, cpu: u32) -> usize {
        self.dpcs.queued(cpu)
    }

    /// DPCs created with [`Os::dpc_create`] and not destroyed (tests check for leaks).
    pub fn live_dpcs(&self) -> usize {
        self.dpcs.live()
    }

    /// How often a DPC's routine was started (0 once it is destroyed).
    pub fn dpc_runs(&self, dpc: DpcHandle) -> u64 {
        self.dpcs.runs(dpc)
    }

    /// Run the DPCs that are pending (as the hypervisor's drain points do); nothing when the
    /// calling thread is at DISPATCH_LEVEL or above.
    pub fn run_pending_dpcs(&self) {
        self.dpcs.run_pending();
    }

    fn log_line(&self) -> impl Fn(&str) + '_ {
        |line| self.debug_print(line)
    }

    /// What `RtlGetVersion` reports (`None`: it fails).
    pub fn set_os_version(&self, version: Option<OsVersion>) {
        *lock(&self.os_version) = version;
    }
}

impl Os for WindowsGuest {
    fn alloc_page(&self) -> Option<Page> {
        common::irql::check_at_most(common::irql::DISPATCH_LEVEL, "alloc_page");
        let mut pages = lock(&self.pages);
        // Skip frames the hypervisor no longer backs with RAM (e.g. overlaid at boot).
        while let Some(gfn) = pages.free.pop() {
            if !self.hv.gfn_is_ram(gfn) {
                continue;
            }
            pages.allocated.insert(gfn);
            let va = self.hv.gfn_va(gfn);
            // SAFETY: `gfn` is populated RAM in the physmap, so `va` is a writable page.
            unsafe { std::ptr::write_bytes(va as *mut u8, 0, crate::hv::memory::PAGE_SIZE) };
            return Some(Page { va, pfn: gfn });
        }
        None
    }

    fn free_page(&self, page: Page) {
        common::irql::check_at_most(common::irql::DISPATCH_LEVEL, "free_page");
        let mut pages = lock(&self.pages);
        if self.hv.gfn_va_checked(page.pfn) != Some(page.va) || !pages.allocated.remove(&page.pfn) {
            lock(&self.violations).push(GuestViolation::FreeOfUnallocatedPage(page));
            return;
        }
        if !self.hv.gfn_is_ram(page.pfn) {
            // Windows would hand this frame to someone else and they would fault on it.
            lock(&self.violations).push(GuestViolation::FreeOfUnpopulatedPage(page));
            return;
        }
        pages.free.push(page.pfn);
    }

    fn map_pfn(&self, pfn: u64) -> Option<usize> {
        common::irql::check_at_most(common::irql::DISPATCH_LEVEL, "map_pfn (MmMapIoSpaceEx)");
        (self.hv.p2m(pfn) != crate::hv::P2m::Invalid).then(|| self.hv.gfn_va(pfn))
    }

    fn processor_count(&self) -> u32 {
        self.active.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn maximum_processor_count(&self) -> u32 {
        self.processors
    }

    fn run_on_processor(&self, cpu: u32, f: &mut dyn FnMut()) -> Result<(), NtStatus> {
        // A targeted DPC the caller waits for: the wait needs IRQL < DISPATCH_LEVEL and no
        // spin lock held; the DPC runs at DISPATCH_LEVEL on its processor.
        common::irql::check_at_most(common::irql::APC_LEVEL, "run_on_processor");
        if cpu >= self.processor_count() {
            return Err(STATUS_INVALID_PARAMETER);
        }
        run_on(cpu, || {
            common::irql::model::on_other_processor(common::irql::DISPATCH_LEVEL, f)
        });
        Ok(())
    }

    fn dpc_create(
        &self,
        cpu: u32,
        routine: &'static dyn DpcRoutine,
    ) -> Result<DpcHandle, NtStatus> {
        self.dpcs.create(cpu, routine, &self.log_line())
    }

    fn dpc_queue(&self, dpc: DpcHandle) -> bool {
        self.dpcs.queue(dpc, &self.log_line())
    }

    fn dpc_destroy(&self, dpc: DpcHandle) {
        self.dpcs.destroy(dpc, &self.log_line())
    }

    fn safe_boot_mode(&self) -> u32 {
        self.safe_boot_mode
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    fn registry_open(&self, parent: Option<KeyHandle>, path: &str) -> Result<KeyHandle, NtStatus> {
        common::irql::check_at_most(common::irql::PASSIVE_LEVEL, "registry_open");
        let full = self.key_path(parent, path)?;
        if !self.registry().key_exists(&full) {
            return Err(STATUS_OBJECT_NAME_NOT_FOUND);
        }
        Ok(self.open_handle(full))
    }

    fn registry_create(
        &self,
        parent: Option<KeyHandle>,
        path: &str,
        volatile: bool,
    ) -> Result<KeyHandle, NtStatus> {
        common::irql::check_at_most(common::irql::PASSIVE_LEVEL, "registry_create");
        let full = self.key_path(parent, path)?;
        self.registry()
            .create_key(&full, volatile)
            .map_err(reg_status)?;
        Ok(self.open_handle(full))
    }

    fn registry_close(&self, key: KeyHandle) {
        common::irql::check_at_most(common::irql::PASSIVE_LEVEL, "registry_close");
        lock(&self.keys).open.remove(&key.0);
    }

    fn registry_query(&self, key: KeyHandle, name: &str) -> Result<RegValue, NtStatus> {
        common::irql::check_at_most(common::irql::PASSIVE_LEVEL, "registry_query");
        let path = self.handle_path(key)?;
        self.registry().query_value(&path, name).map_err(reg_status)
    }

    fn registry_set(&self, key: KeyHandle, name: &str, value: &RegValue) -> Result<(), NtStatus> {
        common::irql::check_at_most(common::irql::PASSIVE_LEVEL, "registry_set");
        let path = self.handle_path(key)?;
        self.registry()
            .set_value(&path, name, value.clone())
            .map_err(reg_status)
    }

    fn registry_delete_value(&self, key: KeyHandle, name: &str) -> Result<(), NtStatus> {
        common::irql::check_at_most(common::irql::PASSIVE_LEVEL, "registry_delete_value");
        let path = self.handle_path(key)?;
        self.registry()
            .delete_value(&path, name)
            .map_err(reg_status)
    }

    fn registry_delete_key(&self, key: KeyHandle) -> Result<(), NtStatus> {
        common::irql::check_at_most(common::irql::PASSIVE_LEVEL, "registry_delete_key");
        let path = self.handle_path(key)?;
        self.registry().delete_key(&path).map_err(reg_status)
    }

    fn registry_subkeys(&self, key: KeyHandle) -> Result<Vec<String>, NtStatus> {
        common::irql::check_at_most(common::irql::PASSIVE_LEVEL, "registry_subkeys");
        let path = self.handle_path(key)?;
        self.registry().subkeys(&path).map_err(reg_status)
    }

    fn read_physical(&self, address: u64, buffer: &mut [u8]) -> Result<(), NtStatus> {
        common::irql::check_at_most(common::irql::APC_LEVEL, "read_physical (MmCopyMemory)");
        // Firmware regions first (they lie outside RAM in a real machine too).
        for (base, bytes) in lock(&self.firmware).iter() {
            let end = base + bytes.len() as u64;
            if address >= *base && address + buffer.len() as u64 <= end {
                let off = (address - base) as usize;
                buffer.copy_from_slice(&bytes[off..off + buffer.len()]);
                return Ok(());
            }
        }
        let page = crate::hv::memory::PAGE_SIZE as u64;
        let mut done = 0usize;
        while done < buffer.len() {
            let a = address + done as u64;
            let (gfn, off) = (a / page, (a % page) as usize);
            let n = (buffer.len() - done).min(page as usize - off);
            self.hv
                .read_guest(gfn, off, &mut buffer[done..done + n])
                .map_err(|_| STATUS_INVALID_PARAMETER)?;
            done += n;
        }
        Ok(())
    }

    fn physical_memory_ranges(&self) -> Vec<MemoryRange> {
        common::irql::check_at_most(
            common::irql::PASSIVE_LEVEL,
            "physical_memory_ranges (MmGetPhysicalMemoryRanges)",
        );
        vec![MemoryRange {
            start: 0,
            length: self.ram_pages * crate::hv::memory::PAGE_SIZE as u64,
        }]
    }

    fn loaded_modules(&self) -> Result<Vec<ModuleInfo>, NtStatus> {
        common::irql::check_at_most(
            common::irql::PASSIVE_LEVEL,
            "loaded_modules (ZwQuerySystemInformation)",
        );
        Ok(lock(&self.modules).clone())
    }

    fn register_callback(&self, kind: KernelCallback) -> Result<CallbackHandle, NtStatus> {
        common::irql::check_at_most(common::irql::PASSIVE_LEVEL, "register_callback");
        let mut c = lock(&self.callbacks);
        c.next += 1;
        let h = c.next;
        c.registered.insert(h, kind);
        Ok(CallbackHandle(h))
    }

    fn deregister_callback(&self, handle: CallbackHandle) {
        common::irql::check_at_most(common::irql::PASSIVE_LEVEL, "deregister_callback");
        lock(&self.callbacks).registered.remove(&handle.0);
    }

    fn set_event(&self, event: usize) {
        common::irql::check_at_most(common::irql::DISPATCH_LEVEL, "set_event (KeSetEvent)");
        // The simulated kernel's own bookkeeping is not the drivers' pool use.
        let _host = common::irql::model::HostSide::enter();
        *lock(&self.events).entry(event).or_default() += 1;
    }

    fn capture_processors(
        &self,
        at_high_level: &mut dyn FnMut(),
        at_dispatch_level: &mut dyn FnMut(),
    ) -> Result<(), NtStatus> {
        // One host thread stands for the captured machine: nothing else runs guest code
        // while a test drives the suspend. Interrupts are off on every vCPU during the
        // HIGH_LEVEL phase (as SyncDisableInterrupts leaves them) and back on before the
        // DISPATCH_LEVEL phase; anything that became pending meanwhile is delivered then,
        // if it still has a route.
        use common::irql::{model, DISPATCH_LEVEL, HIGH_LEVEL};
        let vcpus = self.hv.vcpu_count();
        model::raised(DISPATCH_LEVEL, || {
            for v in 0..vcpus {
                self.hv.set_interrupts_enabled(v, false);
            }
            model::raised(HIGH_LEVEL, &mut *at_high_level);
            for v in 0..vcpus {
                self.hv.set_interrupts_enabled(v, true);
            }
            at_dispatch_level();
        });
        Ok(())
    }

    fn read_tsc(&self) -> u64 {
        self.hv.tsc()
    }

    fn current_processor(&self) -> u32 {
        current_processor()
    }

    fn system_time(&self) -> i64 {
        self.clock.windows_system_time()
    }

    fn debug_print(&self, line: &str) {
        // The simulated kernel's own bookkeeping is not the drivers' pool use.
        let _host = common::irql::model::HostSide::enter();
        if self.echo {
            eprintln!("{line}");
        }
        lock(&self.log).push(line.to_string());
    }

    fn os_version(&self) -> Option<OsVersion> {
        lock(&self.os_version).clone()
    }

    fn capture_context(&self) -> Option<RegisterContext> {
        lock(&self.kernel).context
    }

    fn virtual_unwind(&self, context: &mut RegisterContext) -> bool {
        let k = lock(&self.kernel);
        let Some((_, &(end, frame))) = k.functions.range(..=context.rip).next_back() else {
            return false;
        };
        if context.rip >= end {
            return false;
        }
        let slot = context.rsp().wrapping_add(frame);
        let mut b = [0u8; 8];
        // An unreadable return address ends the walk (the real unwinder would fault).
        context.rip = match usize::try_from(slot).map(|a| k.read(a, &mut b)) {
            Ok(Ok(())) => u64::from_le_bytes(b),
            _ => 0,
        };
        context.set_rsp(slot.wrapping_add(8));
        true
    }

    fn read_memory(&self, address: usize, buffer: &mut [u8]) -> Result<(), NtStatus> {
        lock(&self.kernel).read(address, buffer)
    }
}
