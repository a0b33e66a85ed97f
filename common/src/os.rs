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
}
