//! Kernel routines that the `windows-sys` metadata binds to user-mode DLLs (`DbgPrint*` and
//! `RtlGetVersion` to ntdll.dll, `RtlCompareMemory` to kernel32.dll), declared here against
//! `ntoskrnl.exe`, which exports them to drivers.

use windows_sys::Win32::Foundation::NTSTATUS;

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
