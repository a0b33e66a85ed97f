//! The xen.sys API as imported by xenbus.sys and xenfilt.sys: functions bound by name to
//! `xen.sys` with `raw-dylib`, so no import library is needed.

use windows_sys::Win32::Foundation::NTSTATUS;

#[link(name = "xen.sys", kind = "raw-dylib", modifiers = "+verbatim")]
unsafe extern "system" {
    /// `NTSTATUS XenTouch(const CHAR *Name, ULONG Major, ULONG Minor, ULONG Micro,
    /// ULONG Build)`: the version handshake; `STATUS_INCOMPATIBLE_DRIVER_BLOCKED` unless the
    /// four numbers equal xen.sys's own.
    pub fn XenTouch(name: *const u8, major: u32, minor: u32, micro: u32, build: u32) -> NTSTATUS;
}

/// Call `XenTouch` for the driver `name` built at `version` (major, minor, micro, build).
pub fn touch(name: &core::ffi::CStr, version: (u32, u32, u32, u32)) -> NTSTATUS {
    // SAFETY: `name` is NUL-terminated and outlives the call; xen.sys only reads it.
    unsafe {
        XenTouch(
            name.as_ptr().cast(),
            version.0,
            version.1,
            version.2,
            version.3,
        )
    }
}
