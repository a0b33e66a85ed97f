//! NTSTATUS values used by the package.

/// A Windows `NTSTATUS` (negative values are errors).
pub type NtStatus = i32;

/// True when `status` is a success or informational status (`NT_SUCCESS`).
pub const fn nt_success(status: NtStatus) -> bool {
    status >= 0
}

pub const STATUS_SUCCESS: NtStatus = 0;
pub const STATUS_UNSUCCESSFUL: NtStatus = 0xC000_0001_u32 as i32;
pub const STATUS_NOT_IMPLEMENTED: NtStatus = 0xC000_0002_u32 as i32;
pub const STATUS_INVALID_PARAMETER: NtStatus = 0xC000_000D_u32 as i32;
pub const STATUS_NOT_SUPPORTED: NtStatus = 0xC000_00BB_u32 as i32;
pub const STATUS_INSUFFICIENT_RESOURCES: NtStatus = 0xC000_009A_u32 as i32;
pub const STATUS_NO_MEMORY: NtStatus = 0xC000_0017_u32 as i32;
pub const STATUS_BUFFER_OVERFLOW: NtStatus = 0x8000_0005_u32 as i32;
pub const STATUS_OBJECT_NAME_NOT_FOUND: NtStatus = 0xC000_0034_u32 as i32;
pub const STATUS_INCOMPATIBLE_DRIVER_BLOCKED: NtStatus = 0xC000_036B_u32 as i32;
pub const STATUS_CANCELLED: NtStatus = 0xC000_0120_u32 as i32;
pub const STATUS_RETRY: NtStatus = 0xC000_022D_u32 as i32;
pub const STATUS_TIMEOUT: NtStatus = 0x0000_0102;
pub const STATUS_PENDING: NtStatus = 0x0000_0103;
pub const STATUS_INVALID_HANDLE: NtStatus = 0xC000_0008_u32 as i32;
pub const STATUS_ACCESS_DENIED: NtStatus = 0xC000_0022_u32 as i32;
pub const STATUS_DEVICE_NOT_READY: NtStatus = 0xC000_00A3_u32 as i32;
