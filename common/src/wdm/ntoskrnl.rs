//! Kernel routines declared against `ntoskrnl.exe` here: those the `windows-sys` metadata
//! binds to user-mode DLLs (`DbgPrint*`, `Zw*` and `RtlGetVersion` to ntdll.dll,
//! `RtlCompareMemory` to kernel32.dll), and those whose metadata signatures lost their
//! parameters (callback types) or use types awkward at this edge.

use core::ffi::c_void;

use windows_sys::Win32::Foundation::{NTSTATUS, UNICODE_STRING};

#[link(name = "ntoskrnl.exe", kind = "raw-dylib", modifiers = "+verbatim")]
unsafe extern "C" {
    /// `ULONG DbgPrintEx(ULONG ComponentId, ULONG Level, PCSTR Format, ...)`.
    pub fn DbgPrintEx(component_id: u32, level: u32, format: *const u8, ...) -> u32;
    /// `ULONG DbgPrint(PCSTR Format, ...)`.
    pub fn DbgPrint(format: *const u8, ...) -> u32;
}

#[link(name = "ntoskrnl.exe", kind = "raw-dylib", modifiers = "+verbatim")]
unsafe extern "system" {
    /// `SIZE_T RtlCompareMemory(const VOID *Source1, const VOID *Source2, SIZE_T Length)`:
    /// the number of leading bytes that match.
    pub fn RtlCompareMemory(source1: *const u8, source2: *const u8, length: usize) -> usize;
    /// `NTSTATUS RtlGetVersion(PRTL_OSVERSIONINFOW)`.
    pub fn RtlGetVersion(info: *mut core::ffi::c_void) -> NTSTATUS;
}

/// `OBJECT_ATTRIBUTES` (x64 layout).
#[repr(C)]
pub struct ObjectAttributes {
    /// `sizeof(OBJECT_ATTRIBUTES)`.
    pub length: u32,
    /// Handle of the directory (key) `object_name` is relative to, or null.
    pub root_directory: *mut c_void,
    /// The object's name.
    pub object_name: *const UNICODE_STRING,
    /// `OBJ_*` flags.
    pub attributes: u32,
    /// Security descriptor (null: default).
    pub security_descriptor: *mut c_void,
    /// Security quality of service (null).
    pub security_quality_of_service: *mut c_void,
}

/// `OBJ_CASE_INSENSITIVE`.
pub const OBJ_CASE_INSENSITIVE: u32 = 0x40;
/// `OBJ_KERNEL_HANDLE`.
pub const OBJ_KERNEL_HANDLE: u32 = 0x200;
/// `KEY_ALL_ACCESS`.
pub const KEY_ALL_ACCESS: u32 = 0xF003F;
/// `REG_OPTION_NON_VOLATILE`.
pub const REG_OPTION_NON_VOLATILE: u32 = 0;
/// `REG_OPTION_VOLATILE`.
pub const REG_OPTION_VOLATILE: u32 = 1;
/// `KeyBasicInformation`.
pub const KEY_BASIC_INFORMATION: i32 = 0;
/// `KeyValuePartialInformation`.
pub const KEY_VALUE_PARTIAL_INFORMATION: i32 = 2;
/// `MM_COPY_MEMORY_PHYSICAL`.
pub const MM_COPY_MEMORY_PHYSICAL: u32 = 1;
/// `PAGE_READWRITE`.
pub const PAGE_READWRITE: u32 = 4;

/// `KDEFERRED_ROUTINE`.
pub type DeferredRoutine = unsafe extern "system" fn(
    dpc: *mut c_void,
    context: *mut c_void,
    argument1: *mut c_void,
    argument2: *mut c_void,
);
/// `KBUGCHECK_CALLBACK_ROUTINE`.
pub type BugCheckRoutine = unsafe extern "system" fn(buffer: *mut c_void, length: u32);
/// `PCREATE_PROCESS_NOTIFY_ROUTINE`.
pub type ProcessNotifyRoutine =
    unsafe extern "system" fn(parent: *mut c_void, process: *mut c_void, create: u8);
/// `PLOAD_IMAGE_NOTIFY_ROUTINE`.
pub type ImageNotifyRoutine = unsafe extern "system" fn(
    full_image_name: *const UNICODE_STRING,
    process: *mut c_void,
    info: *const ImageInfo,
);
/// `PDEBUG_PRINT_CALLBACK`.
pub type DebugPrintRoutine =
    unsafe extern "system" fn(output: *const AnsiString, component: u32, level: u32);

/// `STRING` / `ANSI_STRING`.
#[repr(C)]
pub struct AnsiString {
    /// Length in bytes.
    pub length: u16,
    /// Buffer size in bytes.
    pub maximum_length: u16,
    /// The bytes (not necessarily NUL-terminated).
    pub buffer: *const u8,
}

/// `IMAGE_INFO` (x64 layout).
#[repr(C)]
pub struct ImageInfo {
    /// Bit field; bit 8 = `SystemModeImage`.
    pub properties: u32,
    /// Where the image is mapped.
    pub image_base: *mut c_void,
    /// Unused on x64.
    pub image_selector: u32,
    /// Size of the mapping.
    pub image_size: usize,
    /// Unused.
    pub image_section_number: u32,
}

/// `PHYSICAL_MEMORY_RANGE`.
#[repr(C)]
pub struct PhysicalMemoryRange {
    /// First byte.
    pub base_address: i64,
    /// Length in bytes (zero ends the array).
    pub number_of_bytes: i64,
}

#[link(name = "ntoskrnl.exe", kind = "raw-dylib", modifiers = "+verbatim")]
unsafe extern "system" {
    /// `ZwOpenKey`.
    pub fn ZwOpenKey(
        key: *mut *mut c_void,
        access: u32,
        attributes: *const ObjectAttributes,
    ) -> NTSTATUS;
    /// `ZwCreateKey`.
    pub fn ZwCreateKey(
        key: *mut *mut c_void,
        access: u32,
        attributes: *const ObjectAttributes,
        title_index: u32,
        class: *const UNICODE_STRING,
        options: u32,
        disposition: *mut u32,
    ) -> NTSTATUS;
    /// `ZwClose`.
    pub fn ZwClose(handle: *mut c_void) -> NTSTATUS;
    /// `ZwQueryValueKey`.
    pub fn ZwQueryValueKey(
        key: *mut c_void,
        name: *const UNICODE_STRING,
        class: i32,
        information: *mut c_void,
        length: u32,
        result_length: *mut u32,
    ) -> NTSTATUS;
    /// `ZwSetValueKey`.
    pub fn ZwSetValueKey(
        key: *mut c_void,
        name: *const UNICODE_STRING,
        title_index: u32,
        kind: u32,
        data: *const c_void,
        size: u32,
    ) -> NTSTATUS;
    /// `ZwDeleteKey`.
    pub fn ZwDeleteKey(key: *mut c_void) -> NTSTATUS;
    /// `ZwDeleteValueKey`.
    pub fn ZwDeleteValueKey(key: *mut c_void, name: *const UNICODE_STRING) -> NTSTATUS;
    /// `ZwEnumerateKey`.
    pub fn ZwEnumerateKey(
        key: *mut c_void,
        index: u32,
        class: i32,
        information: *mut c_void,
        length: u32,
        result_length: *mut u32,
    ) -> NTSTATUS;
    /// `ZwQuerySystemInformation`.
    pub fn ZwQuerySystemInformation(
        class: u32,
        information: *mut c_void,
        length: u32,
        result_length: *mut u32,
    ) -> NTSTATUS;
    /// `MmCopyMemory` (the source is an `MM_COPY_ADDRESS`, 8 bytes passed by value).
    pub fn MmCopyMemory(
        target: *mut c_void,
        source: u64,
        length: usize,
        flags: u32,
        copied: *mut usize,
    ) -> NTSTATUS;
    /// `MmMapIoSpaceEx`.
    pub fn MmMapIoSpaceEx(physical: i64, length: usize, protect: u32) -> *mut c_void;
    /// `MmGetPhysicalMemoryRanges`: pool array ended by a zero entry; free with ExFreePool.
    pub fn MmGetPhysicalMemoryRanges() -> *mut PhysicalMemoryRange;
    /// `ExFreePool`.
    pub fn ExFreePool(block: *mut c_void);
    /// `MmGetSystemRoutineAddress` (functions and data exported by the kernel and HAL).
    pub fn MmGetSystemRoutineAddress(name: *const UNICODE_STRING) -> *mut c_void;
    /// `KeInitializeDpc`.
    pub fn KeInitializeDpc(dpc: *mut c_void, routine: DeferredRoutine, context: *mut c_void);
    /// `KeSetImportanceDpc`.
    pub fn KeSetImportanceDpc(dpc: *mut c_void, importance: i32);
    /// `KeSetTargetProcessorDpcEx`.
    pub fn KeSetTargetProcessorDpcEx(dpc: *mut c_void, number: *const ProcessorNumber) -> NTSTATUS;
    /// `KeGetProcessorNumberFromIndex`.
    pub fn KeGetProcessorNumberFromIndex(index: u32, number: *mut ProcessorNumber) -> NTSTATUS;
    /// `KeInsertQueueDpc`.
    pub fn KeInsertQueueDpc(dpc: *mut c_void, argument1: *mut c_void, argument2: *mut c_void)
        -> u8;
    /// `KeInitializeEvent`.
    pub fn KeInitializeEvent(event: *mut c_void, kind: i32, state: u8);
    /// `KeSetEvent`.
    pub fn KeSetEvent(event: *mut c_void, increment: i32, wait: u8) -> i32;
    /// `KeWaitForSingleObject`.
    pub fn KeWaitForSingleObject(
        object: *mut c_void,
        reason: i32,
        mode: i8,
        alertable: u8,
        timeout: *const i64,
    ) -> NTSTATUS;
    /// `KeRegisterBugCheckCallback`.
    pub fn KeRegisterBugCheckCallback(
        record: *mut c_void,
        routine: BugCheckRoutine,
        buffer: *mut c_void,
        length: u32,
        component: *const u8,
    ) -> u8;
    /// `KeDeregisterBugCheckCallback`.
    pub fn KeDeregisterBugCheckCallback(record: *mut c_void) -> u8;
    /// `PsSetCreateProcessNotifyRoutine`.
    pub fn PsSetCreateProcessNotifyRoutine(routine: ProcessNotifyRoutine, remove: u8) -> NTSTATUS;
    /// `PsSetLoadImageNotifyRoutine`.
    pub fn PsSetLoadImageNotifyRoutine(routine: ImageNotifyRoutine) -> NTSTATUS;
    /// `PsRemoveLoadImageNotifyRoutine`.
    pub fn PsRemoveLoadImageNotifyRoutine(routine: ImageNotifyRoutine) -> NTSTATUS;
    /// `DbgSetDebugPrintCallback`.
    pub fn DbgSetDebugPrintCallback(routine: DebugPrintRoutine, enable: u8) -> NTSTATUS;
}

/// `PROCESSOR_NUMBER`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct ProcessorNumber {
    /// Processor group.
    pub group: u16,
    /// Number within the group.
    pub number: u8,
    /// Reserved.
    pub reserved: u8,
}
