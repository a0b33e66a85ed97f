//! [`KernelOs`]: the Windows implementation of the [`Os`] edge, on kernel exports.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::ffi::c_void;
use core::ptr;

use windows_sys::Wdk::Foundation::NonPagedPoolNx;
use windows_sys::Wdk::System::SystemServices::{
    ExAllocatePoolWithTag, ExFreePoolWithTag, KeGetCurrentProcessorNumberEx,
    KeQueryActiveProcessorCountEx, KeQueryMaximumProcessorCountEx, MmGetPhysicalAddress,
};
use windows_sys::Win32::Foundation::UNICODE_STRING;
use xen_include::status::{
    NtStatus, STATUS_BUFFER_OVERFLOW, STATUS_INSUFFICIENT_RESOURCES, STATUS_INVALID_PARAMETER,
    STATUS_UNSUCCESSFUL,
};

use super::log::{log, Level};
use super::ntoskrnl as nt;
use super::{callbacks, kernel, modules, registry};
use crate::os::{
    context_layout, CallbackHandle, DpcHandle, DpcRoutine, KernelCallback, KeyHandle, MemoryRange,
    ModuleInfo, Os, OsVersion, Page, RegValue, RegisterContext,
};
use windows_sys::Win32::System::Diagnostics::Debug::CONTEXT;

// Kernel routines of the bug-check stack walk and the OS version, declared here against
// ntoskrnl.exe (the `windows-sys` metadata binds the `Rtl*` ones to kernel32.dll).
#[link(name = "ntoskrnl.exe", kind = "raw-dylib", modifiers = "+verbatim")]
unsafe extern "system" {
    /// `VOID RtlCaptureContext(PCONTEXT)`.
    fn RtlCaptureContext(context: *mut CONTEXT);
    /// `PRUNTIME_FUNCTION RtlLookupFunctionEntry(ULONG64 ControlPc, PULONG64 ImageBase,
    /// PUNWIND_HISTORY_TABLE)`.
    fn RtlLookupFunctionEntry(
        control_pc: u64,
        image_base: *mut u64,
        history: *mut c_void,
    ) -> *mut c_void;
    /// `PEXCEPTION_ROUTINE RtlVirtualUnwind(ULONG HandlerType, ULONG64 ImageBase, ULONG64
    /// ControlPc, PRUNTIME_FUNCTION, PCONTEXT, PVOID *HandlerData, PULONG64
    /// EstablisherFrame, PKNONVOLATILE_CONTEXT_POINTERS)`.
    fn RtlVirtualUnwind(
        handler_type: u32,
        image_base: u64,
        control_pc: u64,
        function_entry: *mut c_void,
        context: *mut CONTEXT,
        handler_data: *mut *mut c_void,
        establisher_frame: *mut u64,
        context_pointers: *mut c_void,
    ) -> *mut c_void;
    /// `BOOLEAN MmIsAddressValid(PVOID)`: whether a read of the address would not fault.
    fn MmIsAddressValid(address: *const c_void) -> u8;
}

// The x64 CONTEXT layout the cores decode (`common::os::context_layout`) is the kernel's.
const _: () = {
    use core::mem::offset_of;
    assert!(core::mem::size_of::<CONTEXT>() == context_layout::SIZE);
    assert!(offset_of!(CONTEXT, ContextFlags) == context_layout::CONTEXT_FLAGS);
    assert!(offset_of!(CONTEXT, SegCs) == context_layout::SEG_CS);
    assert!(offset_of!(CONTEXT, SegDs) == context_layout::SEG_DS);
    assert!(offset_of!(CONTEXT, SegEs) == context_layout::SEG_ES);
    assert!(offset_of!(CONTEXT, SegFs) == context_layout::SEG_FS);
    assert!(offset_of!(CONTEXT, SegGs) == context_layout::SEG_GS);
    assert!(offset_of!(CONTEXT, SegSs) == context_layout::SEG_SS);
    assert!(offset_of!(CONTEXT, EFlags) == context_layout::EFLAGS);
    assert!(offset_of!(CONTEXT, Rax) == context_layout::RAX);
    assert!(offset_of!(CONTEXT, Rsp) == context_layout::RAX + 8 * context_layout::RSP);
    assert!(offset_of!(CONTEXT, Rbp) == context_layout::RAX + 8 * context_layout::RBP);
    assert!(offset_of!(CONTEXT, R15) == context_layout::RAX + 8 * 15);
    assert!(offset_of!(CONTEXT, Rip) == context_layout::RIP);
};

/// `UNW_FLAG_UHANDLER`, as upstream's walk passes.
const UNW_FLAG_UHANDLER: u32 = 2;
/// `sizeof (RTL_OSVERSIONINFOEXW)`.
const OSVERSIONINFOEXW_SIZE: usize = 0x11C;

fn context_bytes(context: &CONTEXT) -> &[u8] {
    // SAFETY: CONTEXT is plain data of `size_of::<CONTEXT>()` bytes.
    unsafe {
        core::slice::from_raw_parts(
            (context as *const CONTEXT).cast::<u8>(),
            core::mem::size_of::<CONTEXT>(),
        )
    }
}

fn context_bytes_mut(context: &mut CONTEXT) -> &mut [u8] {
    // SAFETY: as above; every byte pattern is a valid CONTEXT.
    unsafe {
        core::slice::from_raw_parts_mut(
            (context as *mut CONTEXT).cast::<u8>(),
            core::mem::size_of::<CONTEXT>(),
        )
    }
}

/// Size of a page on x64.
pub const PAGE_SIZE: usize = 4096;
/// Pool tag of pages handed out by [`KernelOs::alloc_page`] (`XenP`).
pub const PAGE_TAG: u32 = u32::from_le_bytes(*b"XenP");
/// `ALL_PROCESSOR_GROUPS`.
const ALL_PROCESSOR_GROUPS: u16 = 0xFFFF;
/// `KUSER_SHARED_DATA.SystemTime`, mapped read-only into every address space on x64.
const KUSER_SHARED_DATA_SYSTEM_TIME: usize = 0xFFFF_F780_0000_0014;
/// Largest registry value or system-information reply read (bigger ones are refused).
const MAX_REPLY: usize = 1 << 20;
/// `STATUS_BUFFER_TOO_SMALL`.
const STATUS_BUFFER_TOO_SMALL: NtStatus = 0xC000_0023_u32 as i32;
/// `STATUS_INFO_LENGTH_MISMATCH`.
const STATUS_INFO_LENGTH_MISMATCH: NtStatus = 0xC000_0004_u32 as i32;
/// `STATUS_NO_MORE_ENTRIES`.
const STATUS_NO_MORE_ENTRIES: NtStatus = 0x8000_001A_u32 as i32;

/// The kernel services of a real Windows guest.
#[derive(Clone, Copy, Debug, Default)]
pub struct KernelOs;

/// A counted UTF-16 string for the kernel, owning its buffer.
pub struct UnicodeName {
    units: Vec<u16>,
}

impl UnicodeName {
    /// Wrap UTF-16 units (at most 32767, checked by [`registry::utf16`]).
    pub fn new(units: Vec<u16>) -> Self {
        UnicodeName { units }
    }

    /// The `UNICODE_STRING` view; valid while `self` lives.
    pub fn as_unicode_string(&mut self) -> UNICODE_STRING {
        let bytes = (self.units.len() * 2) as u16;
        UNICODE_STRING {
            Length: bytes,
            MaximumLength: bytes,
            Buffer: self.units.as_mut_ptr(),
        }
    }
}

fn check(status: NtStatus) -> Result<(), NtStatus> {
    if status < 0 {
        Err(status)
    } else {
        Ok(())
    }
}

fn handle(key: KeyHandle) -> *mut c_void {
    key.0 as *mut c_void
}

/// Open (`create == None`) or create a key; `create` says whether it is volatile.
fn open_key(
    parent: Option<KeyHandle>,
    path: &str,
    create: Option<bool>,
) -> Result<KeyHandle, NtStatus> {
    let mut name = UnicodeName::new(registry::key_object_name(parent.is_some(), path)?);
    let name = name.as_unicode_string();
    let attributes = nt::ObjectAttributes {
        length: core::mem::size_of::<nt::ObjectAttributes>() as u32,
        root_directory: parent.map_or(ptr::null_mut(), handle),
        object_name: &name,
        attributes: nt::OBJ_CASE_INSENSITIVE | nt::OBJ_KERNEL_HANDLE,
        security_descriptor: ptr::null_mut(),
        security_quality_of_service: ptr::null_mut(),
    };
    let mut key: *mut c_void = ptr::null_mut();
    // SAFETY: every pointer refers to a local that outlives the call; the kernel writes the
    // handle only.
    let status = unsafe {
        match create {
            None => nt::ZwOpenKey(&mut key, nt::KEY_ALL_ACCESS, &attributes),
            Some(volatile) => {
                let options = if volatile {
                    nt::REG_OPTION_VOLATILE
                } else {
                    nt::REG_OPTION_NON_VOLATILE
                };
                nt::ZwCreateKey(
                    &mut key,
                    nt::KEY_ALL_ACCESS,
                    &attributes,
                    0,
                    ptr::null(),
                    options,
                    ptr::null_mut(),
                )
            }
        }
    };
    check(status)?;
    Ok(KeyHandle(key as usize))
}

/// Call `query(buffer, length, &mut needed)` with a growing buffer until it fits.
fn query_growing(
    mut query: impl FnMut(*mut c_void, u32, &mut u32) -> NtStatus,
) -> Result<(Vec<u8>, usize), NtStatus> {
    let mut size = 256usize;
    loop {
        let mut buffer = vec![0u8; size];
        let mut needed = 0u32;
        let status = query(buffer.as_mut_ptr().cast(), size as u32, &mut needed);
        match status {
            STATUS_BUFFER_OVERFLOW | STATUS_BUFFER_TOO_SMALL | STATUS_INFO_LENGTH_MISMATCH => {
                let next = (needed as usize).max(size * 2);
                if next > MAX_REPLY {
                    return Err(STATUS_INSUFFICIENT_RESOURCES);
                }
                size = next;
            }
            status if status < 0 => return Err(status),
            _ => {
                let length = (needed as usize).min(size);
                return Ok((buffer, length));
            }
        }
    }
}

impl Os for KernelOs {
    fn alloc_page(&self) -> Option<Page> {
        // SAFETY: pool allocations of a page are page-aligned and resident.
        let va = unsafe { ExAllocatePoolWithTag(NonPagedPoolNx, PAGE_SIZE, PAGE_TAG) };
        if va.is_null() {
            log(Level::Error, format_args!("alloc_page: pool exhausted"));
            return None;
        }
        // SAFETY: `va` is a fresh block of PAGE_SIZE bytes.
        unsafe { ptr::write_bytes(va.cast::<u8>(), 0, PAGE_SIZE) };
        // SAFETY: `va` is a valid non-paged address.
        let pa = unsafe { MmGetPhysicalAddress(va) };
        Some(Page {
            va: va as usize,
            pfn: (pa as u64) >> 12,
        })
    }

    fn free_page(&self, page: Page) {
        // SAFETY: pages come from alloc_page with PAGE_TAG.
        unsafe { ExFreePoolWithTag(page.va as *mut _, PAGE_TAG) }
    }

    fn map_pfn(&self, pfn: u64) -> Option<usize> {
        let physical = i64::try_from(pfn.checked_mul(PAGE_SIZE as u64)?).ok()?;
        // SAFETY: a new cached read-write system mapping of one guest frame; the frame was
        // obtained earlier in this boot (the caller's contract), so it is RAM, and the cached
        // attribute matches the kernel's own mapping of it.
        let va = unsafe { nt::MmMapIoSpaceEx(physical, PAGE_SIZE, nt::PAGE_READWRITE) };
        if va.is_null() {
            log(
                Level::Error,
                format_args!("map_pfn: cannot map pfn {pfn:#x}"),
            );
            None
        } else {
            Some(va as usize)
        }
    }

    fn processor_count(&self) -> u32 {
        // SAFETY: no preconditions.
        unsafe { KeQueryActiveProcessorCountEx(ALL_PROCESSOR_GROUPS) }
    }

    fn maximum_processor_count(&self) -> u32 {
        // SAFETY: no preconditions.
        unsafe { KeQueryMaximumProcessorCountEx(ALL_PROCESSOR_GROUPS) }
    }

    fn current_processor(&self) -> u32 {
        // SAFETY: a null PROCESSOR_NUMBER pointer is allowed; the return is the system-wide
        // index.
        unsafe { KeGetCurrentProcessorNumberEx(ptr::null_mut()) }
    }

    fn run_on_processor(&self, cpu: u32, f: &mut dyn FnMut()) -> Result<(), NtStatus> {
        callbacks::run_on_processor(cpu, f)
    }

    fn dpc_create(
        &self,
        cpu: u32,
        routine: &'static dyn DpcRoutine,
    ) -> Result<DpcHandle, NtStatus> {
        if cpu >= self.maximum_processor_count() {
            log(
                Level::Error,
                format_args!("dpc_create: processor {cpu} out of range"),
            );
            return Err(STATUS_INVALID_PARAMETER);
        }
        kernel::os_dpc_create(cpu, routine)
    }

    fn dpc_queue(&self, dpc: DpcHandle) -> bool {
        kernel::os_dpc_queue(dpc)
    }

    fn dpc_destroy(&self, dpc: DpcHandle) {
        kernel::os_dpc_destroy(dpc)
    }

    fn system_time(&self) -> i64 {
        // KeQuerySystemTime is a macro on x64 reading KUSER_SHARED_DATA: retry until both
        // high parts agree (the kernel writes High2, Low, High1 in that order).
        let time = KUSER_SHARED_DATA_SYSTEM_TIME as *const i32;
        loop {
            // SAFETY: KUSER_SHARED_DATA is mapped at this fixed address on every x64 kernel;
            // volatile reads because the kernel updates it concurrently.
            let (high1, low, high2) = unsafe {
                (
                    ptr::read_volatile(time.add(1)),
                    ptr::read_volatile(time.cast::<u32>()),
                    ptr::read_volatile(time.add(2)),
                )
            };
            if high1 == high2 {
                return (i64::from(high1) << 32) | i64::from(low);
            }
            core::hint::spin_loop();
        }
    }

    fn debug_print(&self, line: &str) {
        // The callers' lines carry their own prefix.
        super::log::print(Level::Info, line);
    }

    fn debug_print_at(&self, level: u32, line: &str) {
        let level = match level {
            0 => Level::Error,
            1 => Level::Warning,
            2 => Level::Trace,
            _ => Level::Info,
        };
        super::log::print(level, line);
    }

    fn safe_boot_mode(&self) -> u32 {
        let mut name = UnicodeName::new("InitSafeBootMode".encode_utf16().collect());
        let name = name.as_unicode_string();
        // SAFETY: `name` is a valid counted string; the kernel exports InitSafeBootMode as
        // a ULONG variable, so a non-null address points at a readable u32.
        unsafe {
            let address = nt::MmGetSystemRoutineAddress(&name).cast::<u32>();
            if address.is_null() {
                0
            } else {
                ptr::read_volatile(address)
            }
        }
    }

    fn registry_open(&self, parent: Option<KeyHandle>, path: &str) -> Result<KeyHandle, NtStatus> {
        open_key(parent, path, None)
    }

    fn registry_create(
        &self,
        parent: Option<KeyHandle>,
        path: &str,
        volatile: bool,
    ) -> Result<KeyHandle, NtStatus> {
        open_key(parent, path, Some(volatile))
    }

    fn registry_close(&self, key: KeyHandle) {
        // SAFETY: `key` came from registry_open/registry_create and is closed once.
        let _ = unsafe { nt::ZwClose(handle(key)) };
    }

    fn registry_query(&self, key: KeyHandle, name: &str) -> Result<RegValue, NtStatus> {
        let mut value_name = UnicodeName::new(registry::utf16(name)?);
        let value_name = value_name.as_unicode_string();
        let (buffer, length) = query_growing(|buffer, size, needed| {
            // SAFETY: `buffer` has `size` writable bytes; the name outlives the call.
            unsafe {
                nt::ZwQueryValueKey(
                    handle(key),
                    &value_name,
                    nt::KEY_VALUE_PARTIAL_INFORMATION,
                    buffer,
                    size,
                    needed,
                )
            }
        })?;
        let (kind, data) = registry::parse_partial_information(&buffer, length)?;
        registry::decode(kind, data)
    }

    fn registry_set(&self, key: KeyHandle, name: &str, value: &RegValue) -> Result<(), NtStatus> {
        let mut value_name = UnicodeName::new(registry::utf16(name)?);
        let value_name = value_name.as_unicode_string();
        let (kind, data) = registry::encode(value);
        let size = u32::try_from(data.len()).map_err(|_| STATUS_INVALID_PARAMETER)?;
        // SAFETY: the name and data outlive the call; the kernel copies them.
        check(unsafe {
            nt::ZwSetValueKey(
                handle(key),
                &value_name,
                0,
                kind,
                data.as_ptr().cast(),
                size,
            )
        })
    }

    fn registry_delete_value(&self, key: KeyHandle, name: &str) -> Result<(), NtStatus> {
        let mut value_name = UnicodeName::new(registry::utf16(name)?);
        let value_name = value_name.as_unicode_string();
        // SAFETY: the name outlives the call.
        check(unsafe { nt::ZwDeleteValueKey(handle(key), &value_name) })
    }

    fn registry_delete_key(&self, key: KeyHandle) -> Result<(), NtStatus> {
        // SAFETY: `key` is a handle this edge opened; ZwDeleteKey marks the key for deletion
        // and leaves the handle to be closed by the caller.
        check(unsafe { nt::ZwDeleteKey(handle(key)) })
    }

    fn registry_subkeys(&self, key: KeyHandle) -> Result<Vec<String>, NtStatus> {
        let mut names = Vec::new();
        for index in 0u32.. {
            let reply = query_growing(|buffer, size, needed| {
                // SAFETY: `buffer` has `size` writable bytes.
                unsafe {
                    nt::ZwEnumerateKey(
                        handle(key),
                        index,
                        nt::KEY_BASIC_INFORMATION,
                        buffer,
                        size,
                        needed,
                    )
                }
            });
            match reply {
                Ok((buffer, length)) => {
                    names.push(registry::parse_basic_information(&buffer, length)?)
                }
                Err(STATUS_NO_MORE_ENTRIES) => break,
                Err(status) => return Err(status),
            }
        }
        Ok(names)
    }

    fn read_physical(&self, address: u64, buffer: &mut [u8]) -> Result<(), NtStatus> {
        let mut copied = 0usize;
        // SAFETY: `buffer` is writable for its length; MmCopyMemory validates the physical
        // range and copies at most `buffer.len()` bytes.
        check(unsafe {
            nt::MmCopyMemory(
                buffer.as_mut_ptr().cast(),
                address,
                buffer.len(),
                nt::MM_COPY_MEMORY_PHYSICAL,
                &mut copied,
            )
        })?;
        if copied == buffer.len() {
            Ok(())
        } else {
            Err(STATUS_UNSUCCESSFUL)
        }
    }

    fn physical_memory_ranges(&self) -> Vec<MemoryRange> {
        let mut ranges = Vec::new();
        // SAFETY: the kernel returns null or a pool array ended by a zero-length entry,
        // which we free with ExFreePool.
        unsafe {
            let array = nt::MmGetPhysicalMemoryRanges();
            if array.is_null() {
                return ranges;
            }
            let mut entry = array;
            while (*entry).number_of_bytes != 0 || (*entry).base_address != 0 {
                ranges.push(MemoryRange {
                    start: (*entry).base_address as u64,
                    length: (*entry).number_of_bytes as u64,
                });
                entry = entry.add(1);
            }
            nt::ExFreePool(array.cast());
        }
        ranges
    }

    fn loaded_modules(&self) -> Result<Vec<ModuleInfo>, NtStatus> {
        let (buffer, length) = query_growing(|buffer, size, needed| {
            // SAFETY: `buffer` has `size` writable bytes.
            unsafe {
                nt::ZwQuerySystemInformation(
                    modules::SYSTEM_MODULE_INFORMATION,
                    buffer,
                    size,
                    needed,
                )
            }
        })?;
        modules::parse(&buffer, length)
    }

    fn register_callback(&self, kind: KernelCallback) -> Result<CallbackHandle, NtStatus> {
        callbacks::register(kind)
    }

    fn deregister_callback(&self, handle: CallbackHandle) {
        callbacks::deregister(handle)
    }

    fn read_tsc(&self) -> u64 {
        // SAFETY: RDTSC is available on every x86_64 CPU and has no side effects.
        #[allow(unused_unsafe)]
        unsafe {
            core::arch::x86_64::_rdtsc()
        }
    }

    fn set_event(&self, event: usize) {
        // SAFETY: the caller hands over the address of a live KEVENT (the trait contract).
        unsafe { nt::KeSetEvent(event as *mut c_void, 0, 0) };
    }

    fn capture_processors(
        &self,
        at_high_level: &mut dyn FnMut(),
        at_dispatch_level: &mut dyn FnMut(),
    ) -> Result<(), NtStatus> {
        callbacks::capture_processors(at_high_level, at_dispatch_level)
    }

    fn os_version(&self) -> Option<OsVersion> {
        #[repr(C, align(8))]
        struct Info([u8; OSVERSIONINFOEXW_SIZE]);
        let mut info = Info([0; OSVERSIONINFOEXW_SIZE]);
        info.0[..4].copy_from_slice(&(OSVERSIONINFOEXW_SIZE as u32).to_le_bytes());
        // SAFETY: `info` is a writable RTL_OSVERSIONINFOEXW with its size filled in.
        let status = unsafe { nt::RtlGetVersion((&mut info as *mut Info).cast()) };
        if status < 0 {
            return None;
        }
        let b = &info.0;
        let u32_at = |o: usize| {
            let mut a = [0u8; 4];
            if let Some(s) = b.get(o..o + 4) {
                a.copy_from_slice(s);
            }
            u32::from_le_bytes(a)
        };
        let u16_at = |o: usize| u32_at(o) as u16;
        let csd: Vec<u16> = b
            .get(0x14..0x114)
            .unwrap_or(&[])
            .chunks_exact(2)
            .map(|c| {
                u16::from_le_bytes([
                    c.first().copied().unwrap_or(0),
                    c.get(1).copied().unwrap_or(0),
                ])
            })
            .take_while(|u| *u != 0)
            .collect();
        Some(OsVersion {
            major: u32_at(4),
            minor: u32_at(8),
            build: u32_at(0xC),
            platform_id: u32_at(0x10),
            service_pack: registry::from_utf16(&csd),
            service_pack_major: u16_at(0x114),
            service_pack_minor: u16_at(0x116),
            suite_mask: u16_at(0x118),
            product_type: b.get(0x11A).copied().unwrap_or(0),
        })
    }

    #[inline(never)]
    fn capture_context(&self) -> Option<RegisterContext> {
        // SAFETY: CONTEXT is plain data; all-zero is valid.
        let mut context: CONTEXT = unsafe { core::mem::zeroed() };
        // SAFETY: `context` is a writable, 16-byte aligned CONTEXT.
        unsafe { RtlCaptureContext(&mut context) };
        let mut captured = context_layout::decode(context_bytes(&context));
        // This frame is gone once we return: hand back the caller's context instead (its
        // frame stays live while the caller walks it).
        self.virtual_unwind(&mut captured);
        Some(captured)
    }

    fn virtual_unwind(&self, context: &mut RegisterContext) -> bool {
        let mut image_base = 0u64;
        // SAFETY: looks up the loaded image's .pdata; no history table.
        let entry =
            unsafe { RtlLookupFunctionEntry(context.rip, &mut image_base, ptr::null_mut()) };
        if entry.is_null() {
            return false;
        }
        // SAFETY: CONTEXT is plain data; all-zero is valid.
        let mut full: CONTEXT = unsafe { core::mem::zeroed() };
        context_layout::encode(context, context_bytes_mut(&mut full));
        full.ContextFlags = context_layout::CONTEXT_INTEGER_CONTROL_SEGMENTS;
        let mut handler_data: *mut c_void = ptr::null_mut();
        let mut establisher = 0u64;
        // SAFETY: `entry` belongs to the image at `image_base`; the outputs are locals.
        // RtlVirtualUnwind reads the stack the context describes, which the caller is
        // walking on this processor (resident: kernel stacks of running threads are).
        unsafe {
            RtlVirtualUnwind(
                UNW_FLAG_UHANDLER,
                image_base,
                context.rip,
                entry,
                &mut full,
                &mut handler_data,
                &mut establisher,
                ptr::null_mut(),
            )
        };
        *context = context_layout::decode(context_bytes(&full));
        true
    }

    fn read_memory(&self, address: usize, buffer: &mut [u8]) -> Result<(), NtStatus> {
        let end = address
            .checked_add(buffer.len())
            .ok_or(xen_include::status::STATUS_INVALID_ADDRESS)?;
        // Every page the range touches must be resident; then the copy cannot fault.
        // MmIsAddressValid is documented for IRQL <= DISPATCH_LEVEL; the bug-check report
        // calls this at HIGH_LEVEL with the other processors frozen, where the probe (a
        // read of the page tables, taking no lock) is what crash-time code relies on —
        // upstream guards the same reads with SEH, which Rust code cannot use.
        let mut page = address & !(PAGE_SIZE - 1);
        while page < end {
            // SAFETY: MmIsAddressValid only probes the page tables.
            if unsafe { MmIsAddressValid(page as *const c_void) } == 0 {
                return Err(xen_include::status::STATUS_INVALID_ADDRESS);
            }
            page = match page.checked_add(PAGE_SIZE) {
                Some(p) => p,
                None => break,
            };
        }
        // SAFETY: every page of [address, end) is mapped and resident (checked above);
        // `buffer` is writable for its length.
        unsafe {
            ptr::copy_nonoverlapping(address as *const u8, buffer.as_mut_ptr(), buffer.len())
        };
        Ok(())
    }
}
