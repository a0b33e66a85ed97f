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
