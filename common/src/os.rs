//! The `Os` edge: what the drivers need from the Windows kernel, as a trait.
//!
//! Real implementation: windows-sys kernel calls in `common::wdm`. Host implementation:
//! the simulator's model of a Windows guest. Methods are added here as subsystems need
//! them; each takes plain Rust values so the cores stay testable.
#![forbid(unsafe_code)]

use alloc::string::String;
use alloc::vec::Vec;

pub use xen_include::api::KeyHandle;
use xen_include::status::NtStatus;

/// A page of guest memory owned by the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    /// Kernel virtual address (host address in the simulator).
    pub va: usize,
    /// Guest physical frame number.
    pub pfn: u64,
}

/// A registry value, typed as the registry stores it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegValue {
    /// `REG_DWORD`.
    Dword(u32),
    /// `REG_QWORD`.
    Qword(u64),
    /// `REG_SZ` (ANSI view of the UTF-16 string).
    Sz(String),
    /// `REG_MULTI_SZ`: the strings, without the empty terminator.
    MultiSz(Vec<String>),
    /// `REG_BINARY`.
    Binary(Vec<u8>),
}

/// A range of guest physical memory usable by the OS (`MmGetPhysicalMemoryRanges`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryRange {
    /// First byte.
    pub start: u64,
    /// Length in bytes.
    pub length: u64,
}

/// A loaded kernel image (`AuxKlibQueryModuleInformation`, image-load notifications).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleInfo {
    /// Image base address.
    pub base: usize,
    /// Image size in bytes.
    pub size: usize,
    /// Full path or file name of the image, as the kernel reports it.
    pub name: String,
}

/// A kernel notification a driver can subscribe to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KernelCallback {
    /// A bug-check callback (`KeRegisterBugCheckCallback`, component `xen`).
    BugCheck,
    /// Process creation/exit (`PsSetCreateProcessNotifyRoutine`).
    ProcessNotify,
    /// Image loads (`PsSetLoadImageNotifyRoutine`).
    ImageLoad,
    /// DbgPrint capture (`DbgSetDebugPrintCallback`).
    DebugPrint,
    /// Processors added at run time (`KeRegisterProcessorChangeCallback`, without
    /// `KE_PROCESSOR_CHANGE_ADD_EXISTING`): delivered as [`CallbackSink::processor_added`].
    ProcessorChange,
    /// `\Callback\PowerState` (`ExCreateCallback` + `ExRegisterCallback`): delivered as
    /// [`CallbackSink::system_state`] for `PO_CB_SYSTEM_STATE_LOCK`.
    PowerState,
}

/// Handle of a registered [`KernelCallback`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CallbackHandle(pub usize);

/// Where kernel notifications go once registered: the real edge calls the sink installed
/// by the driver's entry point; the simulator lets tests raise them.
pub trait CallbackSink: Sync {
    /// The system is bug-checking with `code` and its four parameters.
    fn bug_check(&self, code: u32, parameters: [usize; 4]);
    /// A process is exiting; `cr3` is its page-table root (read by the edge).
    fn process_exit(&self, cr3: u64);
    /// A system image was loaded.
    fn image_loaded(&self, module: &ModuleInfo);
    /// A DbgPrint line was printed at DPFLTR `level`.
    fn debug_print(&self, level: u32, text: &[u8]);
    /// Processor `cpu` (its NT index) finished being added (`KeProcessorAddCompleteNotify`);
    /// called at PASSIVE_LEVEL, the processor is active.
    fn processor_added(&self, cpu: u32) {
        let _ = cpu;
    }
    /// The system enters (`true`) or leaves (`false`) the working state S0
    /// (`PO_CB_SYSTEM_STATE_LOCK` of `\Callback\PowerState`).
    fn system_state(&self, entering_s0: bool) {
        let _ = entering_s0;
    }
}

/// The integer registers of an x64 `CONTEXT` (what a bug-check report dumps and a stack
/// walk unwinds).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RegisterContext {
    /// `SegGs`.
    pub seg_gs: u16,
    /// `SegFs`.
    pub seg_fs: u16,
    /// `SegEs`.
    pub seg_es: u16,
    /// `SegDs`.
    pub seg_ds: u16,
    /// `SegSs`.
    pub seg_ss: u16,
    /// `SegCs`.
    pub seg_cs: u16,
    /// `EFlags`.
    pub eflags: u32,
    /// `Rax`, `Rcx`, `Rdx`, `Rbx`, `Rsp`, `Rbp`, `Rsi`, `Rdi`, `R8`–`R15`, in the order of
    /// [`context_layout::GPR`].
    pub gpr: [u64; 16],
    /// `Rip`.
    pub rip: u64,
}

impl RegisterContext {
    /// `Rsp`.
    pub fn rsp(&self) -> u64 {
        self.gpr[context_layout::RSP]
    }
    /// Set `Rsp`.
    pub fn set_rsp(&mut self, rsp: u64) {
        self.gpr[context_layout::RSP] = rsp;
    }
}

/// Byte layout of the x64 `CONTEXT` (winnt.h) for the fields of [`RegisterContext`]; the
/// Windows edge checks these against its own definition at compile time.
pub mod context_layout {
    /// `sizeof (CONTEXT)`.
    pub const SIZE: usize = 0x4D0;
    /// `ContextFlags`.
    pub const CONTEXT_FLAGS: usize = 0x30;
    /// `SegCs`, `SegDs`, `SegEs`, `SegFs`, `SegGs`, `SegSs` (each a `USHORT`).
    pub const SEG_CS: usize = 0x38;
    /// `SegDs`.
    pub const SEG_DS: usize = 0x3A;
    /// `SegEs`.
    pub const SEG_ES: usize = 0x3C;
    /// `SegFs`.
    pub const SEG_FS: usize = 0x3E;
    /// `SegGs`.
    pub const SEG_GS: usize = 0x40;
    /// `SegSs`.
    pub const SEG_SS: usize = 0x42;
    /// `EFlags`.
    pub const EFLAGS: usize = 0x44;
    /// `Rax`; the 16 general registers follow as `ULONG64`s in [`GPR`] order.
    pub const RAX: usize = 0x78;
    /// `Rip`.
    pub const RIP: usize = 0xF8;
    /// Names of the general registers in `CONTEXT` order.
    pub const GPR: [&str; 16] = [
        "RAX", "RCX", "RDX", "RBX", "RSP", "RBP", "RSI", "RDI", "R8", "R9", "R10", "R11", "R12",
        "R13", "R14", "R15",
    ];
    /// Index of `Rsp` in [`super::RegisterContext::gpr`].
    pub const RSP: usize = 4;
    /// Index of `Rbp`.
    pub const RBP: usize = 5;
    /// `CONTEXT_AMD64 | CONTROL | INTEGER | SEGMENTS`.
    pub const CONTEXT_INTEGER_CONTROL_SEGMENTS: u32 = 0x0010_0007;

    /// The little-endian `u16` at `o` of `b` (zero when out of range).
    pub fn u16_at(b: &[u8], o: usize) -> u16 {
        let mut a = [0u8; 2];
        if let Some(s) = b.get(o..o + 2) {
            a.copy_from_slice(s);
        }
        u16::from_le_bytes(a)
    }
    /// The little-endian `u32` at `o` of `b` (zero when out of range).
    pub fn u32_at(b: &[u8], o: usize) -> u32 {
        let mut a = [0u8; 4];
        if let Some(s) = b.get(o..o + 4) {
            a.copy_from_slice(s);
        }
        u32::from_le_bytes(a)
    }
    /// The little-endian `u64` at `o` of `b` (zero when out of range).
    pub fn u64_at(b: &[u8], o: usize) -> u64 {
        let mut a = [0u8; 8];
        if let Some(s) = b.get(o..o + 8) {
            a.copy_from_slice(s);
        }
        u64::from_le_bytes(a)
    }
    fn put(b: &mut [u8], o: usize, v: &[u8]) {
        if let Some(d) = b.get_mut(o..o + v.len()) {
            d.copy_from_slice(v);
        }
    }

    /// Decode the registers of the `CONTEXT` in `bytes` (missing bytes read as zero).
    pub fn decode(bytes: &[u8]) -> super::RegisterContext {
        let mut gpr = [0u64; 16];
        for (i, r) in gpr.iter_mut().enumerate() {
            *r = u64_at(bytes, RAX + 8 * i);
        }
        super::RegisterContext {
            seg_gs: u16_at(bytes, SEG_GS),
            seg_fs: u16_at(bytes, SEG_FS),
            seg_es: u16_at(bytes, SEG_ES),
            seg_ds: u16_at(bytes, SEG_DS),
            seg_ss: u16_at(bytes, SEG_SS),
            seg_cs: u16_at(bytes, SEG_CS),
            eflags: u32_at(bytes, EFLAGS),
            gpr,
            rip: u64_at(bytes, RIP),
        }
    }

    /// Write the registers of `c` into the `CONTEXT` in `bytes` (other fields untouched).
    pub fn encode(c: &super::RegisterContext, bytes: &mut [u8]) {
        put(bytes, SEG_GS, &c.seg_gs.to_le_bytes());
        put(bytes, SEG_FS, &c.seg_fs.to_le_bytes());
        put(bytes, SEG_ES, &c.seg_es.to_le_bytes());
        put(bytes, SEG_DS, &c.seg_ds.to_le_bytes());
        put(bytes, SEG_SS, &c.seg_ss.to_le_bytes());
        put(bytes, SEG_CS, &c.seg_cs.to_le_bytes());
        put(bytes, EFLAGS, &c.eflags.to_le_bytes());
        for (i, r) in c.gpr.iter().enumerate() {
            put(bytes, RAX + 8 * i, &r.to_le_bytes());
        }
        put(bytes, RIP, &c.rip.to_le_bytes());
    }
}

/// What `RtlGetVersion` reports (`RTL_OSVERSIONINFOEXW`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OsVersion {
    /// `dwMajorVersion`.
    pub major: u32,
    /// `dwMinorVersion`.
    pub minor: u32,
    /// `dwBuildNumber`.
    pub build: u32,
    /// `dwPlatformId` (2 = `VER_PLATFORM_WIN32_NT`).
    pub platform_id: u32,
    /// `szCSDVersion`.
    pub service_pack: String,
    /// `wServicePackMajor`.
    pub service_pack_major: u16,
    /// `wServicePackMinor`.
    pub service_pack_minor: u16,
    /// `wSuiteMask` (`VER_SUITE_*` bits).
    pub suite_mask: u16,
    /// `wProductType` (1 workstation, 2 domain controller, 3 server).
    pub product_type: u8,
}

/// The body of a DPC (a `PKDEFERRED_ROUTINE`); runs at DISPATCH_LEVEL on the DPC's processor.
pub trait DpcRoutine: Sync {
    /// Run once per queueing (two queueings before it ran make one run), with the
    /// processor index the DPC was created for.
    fn run(&self, cpu: u32);
}

/// A DPC created by [`Os::dpc_create`] (opaque to the drivers).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DpcHandle(pub usize);

/// What the drivers need from the Windows kernel.
pub trait Os: Sync {
    /// Allocate one zeroed, non-paged page with a known frame number.
    fn alloc_page(&self) -> Option<Page>;
    /// Return a page obtained from [`Os::alloc_page`].
    fn free_page(&self, page: Page);
    /// Map an existing guest frame (one obtained earlier in this boot, e.g. by a previous
    /// load of the driver) and return its kernel virtual address.
    fn map_pfn(&self, pfn: u64) -> Option<usize>;
    /// Number of active processors.
    fn processor_count(&self) -> u32;
    /// Maximum number of processors the system may ever have (`KeQueryMaximumProcessorCountEx`).
    fn maximum_processor_count(&self) -> u32;
    /// Index of the processor the caller runs on.
    fn current_processor(&self) -> u32;
    /// Run `f` on processor `cpu` (a targeted high-importance DPC) and wait for it.
    fn run_on_processor(&self, cpu: u32, f: &mut dyn FnMut()) -> Result<(), NtStatus>;
    /// A DPC that runs `routine.run(cpu)` at DISPATCH_LEVEL on processor `cpu` (targeted,
    /// high importance) each time it is queued. IRQL <= DISPATCH_LEVEL (it allocates).
    /// A `cpu` beyond [`Os::maximum_processor_count`] → `STATUS_INVALID_PARAMETER`.
    fn dpc_create(&self, cpu: u32, routine: &'static dyn DpcRoutine)
        -> Result<DpcHandle, NtStatus>;
    /// `KeInsertQueueDpc`: any IRQL (ISRs included), never allocates or waits. False when it
    /// was already queued (it then runs once for both), and for a handle that is not a live
    /// DPC of this `Os`.
    fn dpc_queue(&self, dpc: DpcHandle) -> bool;
    /// `KeRemoveQueueDpc` + `KeFlushQueuedDpcs`, then free it: PASSIVE_LEVEL; when it returns
    /// the routine is not running and never runs again. An unknown handle is logged and
    /// ignored.
    fn dpc_destroy(&self, dpc: DpcHandle);
    /// System time in 100 ns units since 1601-01-01 (`KeQuerySystemTime`).
    fn system_time(&self) -> i64;
    /// Write a formatted log line to the kernel debugger sink.
    fn debug_print(&self, line: &str);
    /// Write a formatted log line at DPFLTR `level` (0 error, 1 warning, 2 trace, 3 info),
    /// so a DbgPrint capture sees its severity. Models without levels print it plainly.
    fn debug_print_at(&self, level: u32, line: &str) {
        let _ = level;
        self.debug_print(line)
    }
    /// `InitSafeBootMode`: 0 in a normal boot.
    fn safe_boot_mode(&self) -> u32;

    /// Open the key `path` (relative to `parent`, or to `HKLM` when `None`, e.g.
    /// `SYSTEM\CurrentControlSet\Services\XEN`). Absent → `STATUS_OBJECT_NAME_NOT_FOUND`.
    fn registry_open(&self, parent: Option<KeyHandle>, path: &str) -> Result<KeyHandle, NtStatus>;
    /// Open or create the key `path`; a created key is volatile (gone at reboot) when asked.
    fn registry_create(
        &self,
        parent: Option<KeyHandle>,
        path: &str,
        volatile: bool,
    ) -> Result<KeyHandle, NtStatus>;
    /// Close a key handle.
    fn registry_close(&self, key: KeyHandle);
    /// Read the value `name` of `key`. Absent → `STATUS_OBJECT_NAME_NOT_FOUND`.
    fn registry_query(&self, key: KeyHandle, name: &str) -> Result<RegValue, NtStatus>;
    /// Write the value `name` of `key`.
    fn registry_set(&self, key: KeyHandle, name: &str, value: &RegValue) -> Result<(), NtStatus>;
    /// Delete the value `name` of `key`. Absent → `STATUS_OBJECT_NAME_NOT_FOUND`.
    fn registry_delete_value(&self, key: KeyHandle, name: &str) -> Result<(), NtStatus>;
    /// Names of the subkeys of `key`.
    fn registry_subkeys(&self, key: KeyHandle) -> Result<Vec<String>, NtStatus>;
    /// Delete the key open as `key` (`ZwDeleteKey`): it must have no subkeys. The handle
    /// still has to be closed.
    fn registry_delete_key(&self, key: KeyHandle) -> Result<(), NtStatus>;

    /// Copy guest physical memory at `address` into `buffer` (firmware tables, BIOS area).
    fn read_physical(&self, address: u64, buffer: &mut [u8]) -> Result<(), NtStatus>;
    /// The physical memory ranges the OS uses.
    fn physical_memory_ranges(&self) -> Vec<MemoryRange>;
    /// The kernel images loaded now.
    fn loaded_modules(&self) -> Result<Vec<ModuleInfo>, NtStatus>;

    /// Subscribe to a kernel notification; the edge delivers it to the driver's sink.
    fn register_callback(&self, kind: KernelCallback) -> Result<CallbackHandle, NtStatus>;
    /// Undo [`Os::register_callback`].
    fn deregister_callback(&self, handle: CallbackHandle);

    /// Signal the kernel event at address `event` (a `KEVENT` a caller handed over, e.g.
    /// a XenStore watch's or a console wakeup's). Real: `KeSetEvent(event, IO_NO_INCREMENT,
    /// FALSE)`. Host models mark the event signalled by storing 1 into the
    /// `Header.SignalState` field (a `LONG` at offset 4), as the kernel does.
    fn set_event(&self, event: usize);

    /// Run a VM suspend's two phases with every other processor captured (spec §5.6
    /// `SyncCapture`): raise to DISPATCH_LEVEL, capture every other active processor in a
    /// spinning DPC, disable interrupts on all of them and run `at_high_level` on the
    /// calling processor at HIGH_LEVEL; then re-enable interrupts everywhere, run
    /// `at_dispatch_level` at DISPATCH_LEVEL and release the others. Host models run the
    /// two closures in order on the calling thread.
    fn capture_processors(
        &self,
        at_high_level: &mut dyn FnMut(),
        at_dispatch_level: &mut dyn FnMut(),
    ) -> Result<(), NtStatus>;

    /// The processor's time-stamp counter (`RDTSC`), scaled by Xen's `vcpu_time_info`.
    /// Host models return their virtual TSC.
    fn read_tsc(&self) -> u64;

    /// The running kernel's version (`RtlGetVersion`); `None` when unknown.
    fn os_version(&self) -> Option<OsVersion> {
        None
    }

    /// The caller's register context (`RtlCaptureContext`, then unwound out of this
    /// method's own frame): RIP at the return into the caller, RSP at the caller's frame.
    /// It describes live stack only while the caller has not returned, so the caller walks
    /// it itself (or in its callees). `None` when the edge cannot capture one.
    fn capture_context(&self) -> Option<RegisterContext> {
        None
    }

    /// Unwind `context` by one frame with the unwind data of the image holding
    /// `context.rip` (`RtlLookupFunctionEntry` + `RtlVirtualUnwind`). Returns `false`
    /// (context untouched) when that address has no function entry — a leaf function,
    /// whose return address the caller pops from `Rsp` itself.
    fn virtual_unwind(&self, context: &mut RegisterContext) -> bool {
        let _ = context;
        false
    }

    /// Copy resident kernel virtual memory at `address` into `buffer` without faulting
    /// (usable at any IRQL, including from a bug-check callback). Memory that is not
    /// resident → `STATUS_INVALID_ADDRESS`.
    fn read_memory(&self, address: usize, buffer: &mut [u8]) -> Result<(), NtStatus> {
        let _ = (address, buffer);
        Err(xen_include::status::STATUS_NOT_SUPPORTED)
    }
}

/// The host model of DPCs shared by the simulator's guest and the `Os` test doubles of the
/// driver crates, on the IRQL model of [`crate::irql::model`].
///
/// Each processor has a DPC queue. A DPC is queued at most once (queueing it again before
/// it ran returns `false`; it runs once for both). A queued DPC runs at DISPATCH_LEVEL on
/// its processor as soon as that processor's IRQL is below DISPATCH_LEVEL:
///
/// * queued from a thread below DISPATCH_LEVEL: right away, inside [`DpcQueue::queue`] —
///   preempting the caller when the DPC targets the caller's processor (`model::dpc`), else
///   on the other processor ([`Processors::run_on`] + `model::on_other_processor`);
/// * queued at DISPATCH_LEVEL or above (an ISR at DIRQL, a spin lock held, another DPC):
///   when the queueing thread's IRQL drops below DISPATCH_LEVEL again (the IRQL model runs
///   the drain registered with `model::when_below_dispatch` at the lock release, interrupt
///   exit or end of a raise that lowers it, as `KeLowerIrql` and the interrupt exit do),
///   or at an explicit drain point ([`DpcQueue::run_pending`], e.g. the simulator's
///   hypervisor after upcall delivery and at hypercall completion).
///
/// One DPC runs on a processor at a time: the processor's running slot is taken before a
/// DPC leaves the queue and cleared after it returns, and the loop that ran it looks at the
/// queue again, so a DPC queued meanwhile (by the routine itself, or by a thread that found
/// the processor busy) runs next, never recursively. [`DpcQueue::destroy`] takes a DPC off
/// its queue and waits until it is not running.
#[cfg(any(test, feature = "irql-model"))]
#[allow(clippy::panic)]
pub mod model {
    extern crate std;

    use super::{DpcHandle, DpcRoutine};
    use crate::irql::{model, DISPATCH_LEVEL, PASSIVE_LEVEL};
    use alloc::collections::{BTreeMap, VecDeque};
    use alloc::format;
    use alloc::sync::{Arc, Weak};
    use alloc::vec::Vec;
    use std::sync::{Condvar, Mutex, MutexGuard};
    use xen_include::status::{NtStatus, STATUS_INVALID_PARAMETER};

    /// Where the calling thread runs and how to run something on another processor.
    #[derive(Clone, Copy)]
    pub struct Processors {
        /// Number of processors (DPCs target `0..count`).
        pub count: u32,
        /// The processor the calling thread runs on.
        pub current: fn() -> u32,
        /// Run `f` on this thread as processor `cpu`.
        pub run_on: fn(cpu: u32, f: &mut dyn FnMut()),
    }

    impl Processors {
        /// `count` processors that are all the calling thread (single-threaded doubles):
        /// the caller is processor 0, the others run on it at DISPATCH_LEVEL in turn.
        pub fn this_thread(count: u32) -> Self {
            Processors {
                count,
                current: || 0,
                run_on: |_, f| f(),
            }
        }
    }

    struct Entry {
        cpu: u32,
        routine: &'static dyn DpcRoutine,
        queued: bool,
        runs: u64,
    }

    #[derive(Default)]
    struct State {
        next: usize,
        dpcs: BTreeMap<usize, Entry>,
        /// Per processor: queued DPCs in the order they run (the newest first: every DPC of
        /// [`super::Os::dpc_create`] is HighImportance, which `KeInsertQueueDpc` puts at
        /// the head of the processor's DPC queue).
        queues: Vec<VecDeque<usize>>,
        /// Per processor: the DPC running there now.
        running: Vec<Option<usize>>,
    }

    /// The DPC queues of a modelled machine.
    pub struct DpcQueue {
        processors: Processors,
        state: Mutex<State>,
        /// Signalled whenever a DPC finishes running.
        finished: Condvar,
        /// Runs the pending DPCs once a thread is below DISPATCH_LEVEL again.
        drain: model::Drain,
    }

    impl DpcQueue {
        /// Queues for `processors`.
        pub fn new(processors: Processors) -> Arc<DpcQueue> {
            Arc::new_cyclic(|me: &Weak<DpcQueue>| {
                let me = me.clone();
                DpcQueue {
                    processors,
                    state: Mutex::new(State {
                        next: 0,
                        dpcs: BTreeMap::new(),
                        queues: (0..processors.count).map(|_| VecDeque::new()).collect(),
                        running: (0..processors.count).map(|_| None).collect(),
                    }),
                    finished: Condvar::new(),
                    drain: Arc::new(move || {
                        if let Some(q) = me.upgrade() {
                            q.run_pending();
                        }
                    }),
                }
            })
        }

        fn state(&self) -> MutexGuard<'_, State> {
            self.state.lock().unwrap_or_else(|p| p.into_inner())
        }

        /// What runs the pending DPCs (for a model's own drain points).
        pub fn drain(&self) -> model::Drain {
            self.drain.clone()
        }

        /// [`super::Os::dpc_create`]; a processor out of range is refused and logged
        /// through `log`.
        pub fn create(
            &self,
            cpu: u32,
            routine: &'static dyn DpcRoutine,
            log: &dyn Fn(&str),
        ) -> Result<DpcHandle, NtStatus> {
            crate::irql::check_at_most(DISPATCH_LEVEL, "dpc_create (ExAllocatePoolWithTag)");
            if cpu >= self.processors.count {
                log(&format!(
                    "dpc_create: processor {cpu} out of range (maximum {})",
                    self.processors.count
                ));
                return Err(STATUS_INVALID_PARAMETER);
            }
            let mut st = self.state();
            st.next += 1;
            let h = st.next;
            st.dpcs.insert(
                h,
                Entry {
                    cpu,
                    routine,
                    queued: false,
                    runs: 0,
                },
            );
            Ok(DpcHandle(h))
        }

        /// [`super::Os::dpc_queue`]; an unknown handle is `false` and logged.
        pub fn queue(&self, dpc: DpcHandle, log: &dyn Fn(&str)) -> bool {
            // The kernel's own bookkeeping (KeInsertQueueDpc never allocates, any IRQL):
            // not the drivers' heap use; the routines themselves run checked.
            let _host = model::HostSide::enter();
            {
                let mut st = self.state();
                let Some(e) = st.dpcs.get_mut(&dpc.0) else {
                    drop(st);
                    log(&format!("dpc_queue: unknown DPC handle {:#x}", dpc.0));
                    return false;
                };
                if e.queued {
                    return false;
                }
                e.queued = true;
                let cpu = e.cpu as usize;
                if let Some(q) = st.queues.get_mut(cpu) {
                    q.push_front(dpc.0);
                }
            }
            self.run_pending();
            true
        }

        /// [`super::Os::dpc_destroy`] (PASSIVE_LEVEL, else the IRQL model panics); an
        /// unknown handle is logged. When it returns the routine is not running and never
        /// runs again.
        pub fn destroy(&self, dpc: DpcHandle, log: &dyn Fn(&str)) {
            crate::irql::check_at_most(PASSIVE_LEVEL, "dpc_destroy (KeFlushQueuedDpcs)");
            let mut st = self.state();
            let Some(e) = st.dpcs.remove(&dpc.0) else {
                drop(st);
                log(&format!("dpc_destroy: unknown DPC handle {:#x}", dpc.0));
                return;
            };
            let cpu = e.cpu as usize;
            if let Some(q) = st.queues.get_mut(cpu) {
                q.retain(|&h| h != dpc.0);
            }
            while st.running.get(cpu) == Some(&Some(dpc.0)) {
                st = self.finished.wait(st).unwrap_or_else(|p| p.into_inner());
            }
        }

        /// A drain point: run every queued DPC whose processor is free, each at
        /// DISPATCH_LEVEL on its processor. At DISPATCH_LEVEL or above nothing runs; the
        /// drain waits for this thread's IRQL to drop.
        pub fn run_pending(&self) {
            if model::current() >= DISPATCH_LEVEL {
                model::when_below_dispatch(self.drain.clone());
                return;
            }
            for cpu in 0..self.processors.count {
                if !self.runnable(cpu) {
                    continue;
                }
                if (self.processors.current)() == cpu {
                    // Preempts this thread on its own processor (below DISPATCH_LEVEL).
                    if model::dpc(|| self.run_queue(cpu)).is_none() {
                        panic!("DPC model: below DISPATCH_LEVEL but the DPC was held off");
                    }
                } else {
                    (self.processors.run_on)(cpu, &mut || {
                        model::on_other_processor(DISPATCH_LEVEL, || self.run_queue(cpu))
                    });
                }
            }
        }

        fn runnable(&self, cpu: u32) -> bool {
            let st = self.state();
            let c = cpu as usize;
            st.running.get(c) == Some(&None) && st.queues.get(c).is_some_and(|q| !q.is_empty())
        }

        /// On processor `cpu` at DISPATCH_LEVEL: run its queued DPCs one at a time until the
        /// queue is empty, unless one runs there already (that loop takes them).
        fn run_queue(&self, cpu: u32) {
            let c = cpu as usize;
            loop {
                let (h, routine) = {
                    let mut st = self.state();
                    if st.running.get(c) != Some(&None) {
                        return;
                    }
                    let Some(h) = st.queues.get_mut(c).and_then(VecDeque::pop_front) else {
                        return;
                    };
                    let Some(e) = st.dpcs.get_mut(&h) else {
                        continue;
                    };
                    e.queued = false;
                    e.runs += 1;
                    let routine = e.routine;
                    if let Some(r) = st.running.get_mut(c) {
                        *r = Some(h);
                    }
                    (h, routine)
                };
                struct Finish<'a>(&'a DpcQueue, usize, usize);
                impl Drop for Finish<'_> {
                    fn drop(&mut self) {
                        let mut st = self.0.state();
                        if let Some(r) = st.running.get_mut(self.1) {
                            if *r == Some(self.2) {
                                *r = None;
                            }
                        }
                        drop(st);
                        self.0.finished.notify_all();
                    }
                }
                let _finish = Finish(self, c, h);
                routine.run(cpu);
            }
        }

        /// DPCs queued on processor `cpu` and not yet run.
        pub fn queued(&self, cpu: u32) -> usize {
            self.state()
                .queues
                .get(cpu as usize)
                .map_or(0, VecDeque::len)
        }

        /// DPCs created and not destroyed.
        pub fn live(&self) -> usize {
            self.state().dpcs.len()
        }

        /// How often the DPC's routine was started (0 for an unknown handle).
        pub fn runs(&self, dpc: DpcHandle) -> u64 {
            self.state().dpcs.get(&dpc.0).map_or(0, |e| e.runs)
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use crate::sync::SpinLock;
        use core::sync::atomic::{AtomicU32, Ordering};
        use std::sync::OnceLock;

        #[derive(Default)]
        struct Rec {
            runs: Mutex<Vec<(u32, u8)>>,
            again: AtomicU32,
            depth: AtomicU32,
            max_depth: AtomicU32,
            me: OnceLock<(Arc<DpcQueue>, DpcHandle)>,
        }

        impl DpcRoutine for Rec {
            fn run(&self, cpu: u32) {
                let d = self.depth.fetch_add(1, Ordering::SeqCst) + 1;
                self.max_depth.fetch_max(d, Ordering::SeqCst);
                self.runs.lock().unwrap().push((cpu, model::current()));
                if self
                    .again
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok()
                {
                    let (q, h) = self.me.get().unwrap();
                    assert!(q.queue(*h, &|_| {}));
                    assert!(!q.queue(*h, &|_| {}), "queued already");
                }
                self.depth.fetch_sub(1, Ordering::SeqCst);
            }
        }

        fn rec() -> &'static Rec {
            alloc::boxed::Box::leak(alloc::boxed::Box::default())
        }

        fn runs(r: &Rec) -> usize {
            r.runs.lock().unwrap().len()
        }

        #[test]
        fn runs_at_dispatch_once_per_queueing_and_never_recursively() {
            let q = DpcQueue::new(Processors::this_thread(2));
            let r = rec();
            let log = Mutex::new(Vec::new());
            let log_to = |l: &str| log.lock().unwrap().push(l.to_string());
            assert_eq!(q.create(2, r, &log_to), Err(STATUS_INVALID_PARAMETER));
            let d = q.create(1, r, &log_to).unwrap();
            r.me.set((q.clone(), d)).ok().unwrap();
            assert!(q.queue(d, &log_to));
            assert_eq!(*r.runs.lock().unwrap(), [(1, DISPATCH_LEVEL)]);
            // In an ISR: held off, queued once for two queueings, run at the ISR's exit.
            model::interrupt(9, || {
                assert!(q.queue(d, &log_to));
                assert!(!q.queue(d, &log_to));
                assert_eq!(q.queued(1), 1);
                assert_eq!(runs(r), 1);
            })
            .unwrap();
            assert_eq!(runs(r), 2);
            // Under a spin lock: run when it is released.
            let lock = SpinLock::new(());
            {
                let _g = lock.lock();
                assert!(q.queue(d, &log_to));
                assert_eq!(runs(r), 2);
            }
            assert_eq!(runs(r), 3);
            // Re-queued from inside: runs again after it returned, never nested.
            r.again.store(2, Ordering::SeqCst);
            assert!(q.queue(d, &log_to));
            assert_eq!(runs(r), 6);
            assert_eq!(r.max_depth.load(Ordering::SeqCst), 1);
            assert_eq!((q.runs(d), q.queued(1), q.live()), (6, 0, 1));
            q.destroy(d, &log_to);
            assert!(!q.queue(d, &log_to));
            q.destroy(d, &log_to);
            assert_eq!((runs(r), q.live()), (6, 0));
            let log = log.into_inner().unwrap();
            assert_eq!(log.len(), 3, "{log:?}");
            assert!(log[0].contains("processor 2 out of range"), "{log:?}");
            assert!(
                log[1].starts_with("dpc_queue: unknown DPC handle"),
                "{log:?}"
            );
            assert!(
                log[2].starts_with("dpc_destroy: unknown DPC handle"),
                "{log:?}"
            );
        }

        #[test]
        fn destroyed_while_queued_never_runs() {
            let q = DpcQueue::new(Processors::this_thread(1));
            let r = rec();
            let d = q.create(0, r, &|_| {}).unwrap();
            let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                model::raised(DISPATCH_LEVEL, || q.destroy(d, &|_| {}))
            }));
            assert!(refused.is_err(), "destroy above PASSIVE_LEVEL is refused");
            assert_eq!(q.live(), 1);
            // Queued by a thread holding a spin lock; destroyed here before it lets go.
            let (queued_tx, queued_rx) = std::sync::mpsc::channel();
            let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
            let t = {
                let q = q.clone();
                std::thread::spawn(move || {
                    let lock = SpinLock::new(());
                    {
                        let _g = lock.lock();
                        assert!(q.queue(d, &|_| {}));
                        queued_tx.send(()).unwrap();
                        go_rx.recv().unwrap();
                    }
                    model::current()
                })
            };
            queued_rx.recv().unwrap();
            assert_eq!(q.queued(0), 1);
            q.destroy(d, &|_| {});
            assert_eq!((q.queued(0), q.live()), (0, 0));
            go_tx.send(()).unwrap();
            assert_eq!(t.join().unwrap(), PASSIVE_LEVEL);
            assert_eq!(runs(r), 0);
        }
    }
}
