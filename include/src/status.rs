//! NTSTATUS values used by the package, and the tables that turn Xen's error reports (hypercall
//! `-errno`, xenstore `XS_ERROR` strings, grant table `GNTST_*`) into them.

use crate::xen::errno::Errno;
use crate::xen::grant_table::GrantStatus;
use crate::xen::io::xs_wire::xsd_error_errno;

/// A Windows `NTSTATUS` (negative values are errors).
pub type NtStatus = i32;

/// True when `status` is a success or informational status (`NT_SUCCESS`).
pub const fn nt_success(status: NtStatus) -> bool {
    status >= 0
}

/// `STATUS_SUCCESS`.
pub const STATUS_SUCCESS: NtStatus = 0;
/// `STATUS_TIMEOUT` (success: a wait timed out).
pub const STATUS_TIMEOUT: NtStatus = 0x0000_0102;
/// `STATUS_PENDING`.
pub const STATUS_PENDING: NtStatus = 0x0000_0103;
/// `STATUS_OBJECT_NAME_EXISTS` (informational).
pub const STATUS_OBJECT_NAME_EXISTS: NtStatus = 0x4000_0000;
/// `STATUS_BUFFER_OVERFLOW` (warning: partial data returned).
pub const STATUS_BUFFER_OVERFLOW: NtStatus = 0x8000_0005_u32 as i32;
/// `STATUS_NO_MORE_ENTRIES` (warning).
pub const STATUS_NO_MORE_ENTRIES: NtStatus = 0x8000_001A_u32 as i32;
/// `STATUS_UNSUCCESSFUL`.
pub const STATUS_UNSUCCESSFUL: NtStatus = 0xC000_0001_u32 as i32;
/// `STATUS_NOT_IMPLEMENTED`.
pub const STATUS_NOT_IMPLEMENTED: NtStatus = 0xC000_0002_u32 as i32;
/// `STATUS_INVALID_HANDLE`.
pub const STATUS_INVALID_HANDLE: NtStatus = 0xC000_0008_u32 as i32;
/// `STATUS_INVALID_PARAMETER`.
pub const STATUS_INVALID_PARAMETER: NtStatus = 0xC000_000D_u32 as i32;
/// `STATUS_INVALID_DEVICE_REQUEST`.
pub const STATUS_INVALID_DEVICE_REQUEST: NtStatus = 0xC000_0010_u32 as i32;
/// `STATUS_NO_MEMORY`.
pub const STATUS_NO_MEMORY: NtStatus = 0xC000_0017_u32 as i32;
/// `STATUS_ACCESS_DENIED`.
pub const STATUS_ACCESS_DENIED: NtStatus = 0xC000_0022_u32 as i32;
/// `STATUS_BUFFER_TOO_SMALL`.
pub const STATUS_BUFFER_TOO_SMALL: NtStatus = 0xC000_0023_u32 as i32;
/// `STATUS_OBJECT_NAME_INVALID`.
pub const STATUS_OBJECT_NAME_INVALID: NtStatus = 0xC000_0033_u32 as i32;
/// `STATUS_OBJECT_NAME_NOT_FOUND`.
pub const STATUS_OBJECT_NAME_NOT_FOUND: NtStatus = 0xC000_0034_u32 as i32;
/// `STATUS_OBJECT_NAME_COLLISION`.
pub const STATUS_OBJECT_NAME_COLLISION: NtStatus = 0xC000_0035_u32 as i32;
/// `STATUS_OBJECT_PATH_NOT_FOUND`.
pub const STATUS_OBJECT_PATH_NOT_FOUND: NtStatus = 0xC000_003A_u32 as i32;
/// `STATUS_QUOTA_EXCEEDED`.
pub const STATUS_QUOTA_EXCEEDED: NtStatus = 0xC000_0044_u32 as i32;
/// `STATUS_INSUFFICIENT_RESOURCES`.
pub const STATUS_INSUFFICIENT_RESOURCES: NtStatus = 0xC000_009A_u32 as i32;
/// `STATUS_MEDIA_WRITE_PROTECTED`.
pub const STATUS_MEDIA_WRITE_PROTECTED: NtStatus = 0xC000_00A2_u32 as i32;
/// `STATUS_DEVICE_NOT_READY`.
pub const STATUS_DEVICE_NOT_READY: NtStatus = 0xC000_00A3_u32 as i32;
/// `STATUS_PIPE_BUSY`.
pub const STATUS_PIPE_BUSY: NtStatus = 0xC000_00AE_u32 as i32;
/// `STATUS_PIPE_CONNECTED`.
pub const STATUS_PIPE_CONNECTED: NtStatus = 0xC000_00B2_u32 as i32;
/// `STATUS_IO_TIMEOUT`.
pub const STATUS_IO_TIMEOUT: NtStatus = 0xC000_00B5_u32 as i32;
/// `STATUS_FILE_IS_A_DIRECTORY`.
pub const STATUS_FILE_IS_A_DIRECTORY: NtStatus = 0xC000_00BA_u32 as i32;
/// `STATUS_NOT_SUPPORTED`.
pub const STATUS_NOT_SUPPORTED: NtStatus = 0xC000_00BB_u32 as i32;
/// `STATUS_UNEXPECTED_IO_ERROR`.
pub const STATUS_UNEXPECTED_IO_ERROR: NtStatus = 0xC000_00E9_u32 as i32;
/// `STATUS_DIRECTORY_NOT_EMPTY`.
pub const STATUS_DIRECTORY_NOT_EMPTY: NtStatus = 0xC000_0101_u32 as i32;
/// `STATUS_NAME_TOO_LONG`.
pub const STATUS_NAME_TOO_LONG: NtStatus = 0xC000_0106_u32 as i32;
/// `STATUS_CANCELLED`.
pub const STATUS_CANCELLED: NtStatus = 0xC000_0120_u32 as i32;
/// `STATUS_INVALID_ADDRESS`.
pub const STATUS_INVALID_ADDRESS: NtStatus = 0xC000_0141_u32 as i32;
/// `STATUS_INVALID_BUFFER_SIZE`.
pub const STATUS_INVALID_BUFFER_SIZE: NtStatus = 0xC000_0206_u32 as i32;
/// `STATUS_NOT_FOUND`.
pub const STATUS_NOT_FOUND: NtStatus = 0xC000_0225_u32 as i32;
/// `STATUS_OBJECTID_EXISTS`.
pub const STATUS_OBJECTID_EXISTS: NtStatus = 0xC000_022B_u32 as i32;
/// `STATUS_RETRY`.
pub const STATUS_RETRY: NtStatus = 0xC000_022D_u32 as i32;
/// `STATUS_INCOMPATIBLE_DRIVER_BLOCKED`.
pub const STATUS_INCOMPATIBLE_DRIVER_BLOCKED: NtStatus = 0xC000_0424_u32 as i32;

/// The errno → NTSTATUS table of upstream `xen-errno.h` (spec §4.2). Every other errno maps to
/// `STATUS_UNSUCCESSFUL`.
pub const ERRNO_TO_NTSTATUS: [(Errno, NtStatus); 15] = [
    (Errno::EINVAL, STATUS_INVALID_PARAMETER),
    (Errno::EACCES, STATUS_ACCESS_DENIED),
    (Errno::EPERM, STATUS_ACCESS_DENIED),
    (Errno::EEXIST, STATUS_OBJECTID_EXISTS),
    (Errno::EISDIR, STATUS_FILE_IS_A_DIRECTORY),
    (Errno::ENOENT, STATUS_OBJECT_NAME_NOT_FOUND),
    (Errno::ENOMEM, STATUS_NO_MEMORY),
    (Errno::ENOSPC, STATUS_INSUFFICIENT_RESOURCES),
    (Errno::EIO, STATUS_UNEXPECTED_IO_ERROR),
    (Errno::ENOTEMPTY, STATUS_DIRECTORY_NOT_EMPTY),
    (Errno::ENOSYS, STATUS_NOT_IMPLEMENTED),
    (Errno::EROFS, STATUS_MEDIA_WRITE_PROTECTED),
    (Errno::EBUSY, STATUS_PIPE_BUSY),
    (Errno::EAGAIN, STATUS_RETRY),
    (Errno::EISCONN, STATUS_PIPE_CONNECTED),
];

/// `ERRNO_TO_STATUS`: the NTSTATUS for a Xen errno (spec §4.2).
pub fn errno_to_ntstatus(errno: Errno) -> NtStatus {
    ERRNO_TO_NTSTATUS
        .iter()
        .find(|(known, _)| *known == errno)
        .map_or(STATUS_UNSUCCESSFUL, |&(_, status)| status)
}

/// The NTSTATUS of a raw hypercall return value: `STATUS_SUCCESS` for `rc >= 0`, else the
/// mapping of `-rc`.
pub fn hypercall_return_to_ntstatus(rc: i64) -> NtStatus {
    match Errno::from_hypercall_return(rc) {
        Ok(_) => STATUS_SUCCESS,
        Err(errno) => errno_to_ntstatus(errno),
    }
}

/// The error string xenstored sends when a quota is exceeded. It is not in `xsd_errors[]`
/// (the daemon writes it directly); upstream maps it to `STATUS_QUOTA_EXCEEDED`.
pub const XS_ERROR_QUOTA: &[u8] = b"EQUOTA";

/// The NTSTATUS of an `XS_ERROR` reply payload (trailing NULs ignored): `EQUOTA` →
/// `STATUS_QUOTA_EXCEEDED`; a name of `xsd_errors[]` → its errno's mapping; anything else →
/// `STATUS_UNSUCCESSFUL`.
pub fn xs_error_to_ntstatus(payload: &[u8]) -> NtStatus {
    let end = payload
        .iter()
        .rposition(|&byte| byte != 0)
        .map_or(0, |last| last + 1);
    let name = payload.get(..end).unwrap_or(&[]);
    if name == XS_ERROR_QUOTA {
        return STATUS_QUOTA_EXCEEDED;
    }
    xsd_error_errno(name).map_or(STATUS_UNSUCCESSFUL, errno_to_ntstatus)
}

/// The GNTST → NTSTATUS table. Upstream treats every non-zero grant status as failure
/// without distinguishing them; this table keeps the distinction a caller can act on
/// (retry, bad argument, out of resources, access). Unknown codes map to `STATUS_UNSUCCESSFUL`.
pub const GNTST_TO_NTSTATUS: [(GrantStatus, NtStatus); 14] = [
    (GrantStatus::OKAY, STATUS_SUCCESS),
    (GrantStatus::GENERAL_ERROR, STATUS_UNSUCCESSFUL),
    (GrantStatus::BAD_DOMAIN, STATUS_INVALID_PARAMETER),
    (GrantStatus::BAD_GNTREF, STATUS_INVALID_PARAMETER),
    (GrantStatus::BAD_HANDLE, STATUS_INVALID_HANDLE),
    (GrantStatus::BAD_VIRT_ADDR, STATUS_INVALID_ADDRESS),
    (GrantStatus::BAD_DEV_ADDR, STATUS_INVALID_ADDRESS),
    (GrantStatus::NO_DEVICE_SPACE, STATUS_INSUFFICIENT_RESOURCES),
    (GrantStatus::PERMISSION_DENIED, STATUS_ACCESS_DENIED),
    (GrantStatus::BAD_PAGE, STATUS_INVALID_PARAMETER),
    (GrantStatus::BAD_COPY_ARG, STATUS_INVALID_PARAMETER),
    (GrantStatus::ADDRESS_TOO_BIG, STATUS_INVALID_ADDRESS),
    (GrantStatus::EAGAIN, STATUS_RETRY),
    (GrantStatus::NO_SPACE, STATUS_INSUFFICIENT_RESOURCES),
];

/// The NTSTATUS of a grant table operation's `status` field.
pub fn gntst_to_ntstatus(status: GrantStatus) -> NtStatus {
    GNTST_TO_NTSTATUS
        .iter()
        .find(|(known, _)| *known == status)
        .map_or(STATUS_UNSUCCESSFUL, |&(_, nt)| nt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use windows_sys::Win32::Foundation as win;

    #[test]
    fn values_match_the_windows_sdk() {
        let pairs: &[(NtStatus, NtStatus)] = &[
            (STATUS_SUCCESS, win::STATUS_SUCCESS),
            (STATUS_TIMEOUT, win::STATUS_TIMEOUT),
            (STATUS_PENDING, win::STATUS_PENDING),
            (STATUS_OBJECT_NAME_EXISTS, win::STATUS_OBJECT_NAME_EXISTS),
            (STATUS_BUFFER_OVERFLOW, win::STATUS_BUFFER_OVERFLOW),
            (STATUS_NO_MORE_ENTRIES, win::STATUS_NO_MORE_ENTRIES),
            (STATUS_UNSUCCESSFUL, win::STATUS_UNSUCCESSFUL),
            (STATUS_NOT_IMPLEMENTED, win::STATUS_NOT_IMPLEMENTED),
            (STATUS_INVALID_HANDLE, win::STATUS_INVALID_HANDLE),
            (STATUS_INVALID_PARAMETER, win::STATUS_INVALID_PARAMETER),
            (
                STATUS_INVALID_DEVICE_REQUEST,
                win::STATUS_INVALID_DEVICE_REQUEST,
            ),
            (STATUS_NO_MEMORY, win::STATUS_NO_MEMORY),
            (STATUS_ACCESS_DENIED, win::STATUS_ACCESS_DENIED),
            (STATUS_BUFFER_TOO_SMALL, win::STATUS_BUFFER_TOO_SMALL),
            (STATUS_OBJECT_NAME_INVALID, win::STATUS_OBJECT_NAME_INVALID),
            (
                STATUS_OBJECT_NAME_NOT_FOUND,
                win::STATUS_OBJECT_NAME_NOT_FOUND,
            ),
            (
                STATUS_OBJECT_NAME_COLLISION,
                win::STATUS_OBJECT_NAME_COLLISION,
            ),
            (
                STATUS_OBJECT_PATH_NOT_FOUND,
                win::STATUS_OBJECT_PATH_NOT_FOUND,
            ),
            (STATUS_QUOTA_EXCEEDED, win::STATUS_QUOTA_EXCEEDED),
            (
                STATUS_INSUFFICIENT_RESOURCES,
                win::STATUS_INSUFFICIENT_RESOURCES,
            ),
            (
                STATUS_MEDIA_WRITE_PROTECTED,
                win::STATUS_MEDIA_WRITE_PROTECTED,
            ),
            (STATUS_DEVICE_NOT_READY, win::STATUS_DEVICE_NOT_READY),
            (STATUS_PIPE_BUSY, win::STATUS_PIPE_BUSY),
            (STATUS_PIPE_CONNECTED, win::STATUS_PIPE_CONNECTED),
            (STATUS_IO_TIMEOUT, win::STATUS_IO_TIMEOUT),
            (STATUS_FILE_IS_A_DIRECTORY, win::STATUS_FILE_IS_A_DIRECTORY),
            (STATUS_NOT_SUPPORTED, win::STATUS_NOT_SUPPORTED),
            (STATUS_UNEXPECTED_IO_ERROR, win::STATUS_UNEXPECTED_IO_ERROR),
            (STATUS_DIRECTORY_NOT_EMPTY, win::STATUS_DIRECTORY_NOT_EMPTY),
            (STATUS_NAME_TOO_LONG, win::STATUS_NAME_TOO_LONG),
            (STATUS_CANCELLED, win::STATUS_CANCELLED),
            (STATUS_INVALID_ADDRESS, win::STATUS_INVALID_ADDRESS),
            (STATUS_INVALID_BUFFER_SIZE, win::STATUS_INVALID_BUFFER_SIZE),
            (STATUS_NOT_FOUND, win::STATUS_NOT_FOUND),
            (STATUS_OBJECTID_EXISTS, win::STATUS_OBJECTID_EXISTS),
            (STATUS_RETRY, win::STATUS_RETRY),
            (
                STATUS_INCOMPATIBLE_DRIVER_BLOCKED,
                win::STATUS_INCOMPATIBLE_DRIVER_BLOCKED,
            ),
        ];
        for (index, &(ours, sdk)) in pairs.iter().enumerate() {
            assert_eq!(ours, sdk, "entry {index}: {ours:#x} != {sdk:#x}");
        }
    }

    #[test]
    fn errno_table_follows_the_spec() {
        assert_eq!(errno_to_ntstatus(Errno::EINVAL), STATUS_INVALID_PARAMETER);
        assert_eq!(errno_to_ntstatus(Errno::EPERM), STATUS_ACCESS_DENIED);
        assert_eq!(errno_to_ntstatus(Errno::EEXIST), STATUS_OBJECTID_EXISTS);
        assert_eq!(errno_to_ntstatus(Errno::EAGAIN), STATUS_RETRY);
        assert_eq!(errno_to_ntstatus(Errno::EISCONN), STATUS_PIPE_CONNECTED);
        assert_eq!(errno_to_ntstatus(Errno::ENOSYS), STATUS_NOT_IMPLEMENTED);
        assert_eq!(errno_to_ntstatus(Errno::E2BIG), STATUS_UNSUCCESSFUL);
        assert_eq!(errno_to_ntstatus(Errno(-5)), STATUS_UNSUCCESSFUL);
        assert_eq!(hypercall_return_to_ntstatus(3), STATUS_SUCCESS);
        assert_eq!(
            hypercall_return_to_ntstatus(-2),
            STATUS_OBJECT_NAME_NOT_FOUND
        );
        assert_eq!(hypercall_return_to_ntstatus(i64::MIN), STATUS_UNSUCCESSFUL);
    }

    #[test]
    fn xs_error_strings() {
        assert_eq!(
            xs_error_to_ntstatus(b"ENOENT\0"),
            STATUS_OBJECT_NAME_NOT_FOUND
        );
        assert_eq!(xs_error_to_ntstatus(b"EAGAIN"), STATUS_RETRY);
        assert_eq!(xs_error_to_ntstatus(b"EACCES\0\0"), STATUS_ACCESS_DENIED);
        assert_eq!(xs_error_to_ntstatus(b"EQUOTA\0"), STATUS_QUOTA_EXCEEDED);
        assert_eq!(xs_error_to_ntstatus(b"E2BIG\0"), STATUS_UNSUCCESSFUL);
        assert_eq!(xs_error_to_ntstatus(b"EBOGUS\0"), STATUS_UNSUCCESSFUL);
        assert_eq!(xs_error_to_ntstatus(b""), STATUS_UNSUCCESSFUL);
        assert_eq!(xs_error_to_ntstatus(b"\0ENOENT"), STATUS_UNSUCCESSFUL);
    }

    #[test]
    fn grant_status_table() {
        assert_eq!(gntst_to_ntstatus(GrantStatus::OKAY), STATUS_SUCCESS);
        assert_eq!(gntst_to_ntstatus(GrantStatus::EAGAIN), STATUS_RETRY);
        assert_eq!(
            gntst_to_ntstatus(GrantStatus::BAD_HANDLE),
            STATUS_INVALID_HANDLE
        );
        assert_eq!(gntst_to_ntstatus(GrantStatus(-100)), STATUS_UNSUCCESSFUL);
        assert_eq!(gntst_to_ntstatus(GrantStatus(3)), STATUS_UNSUCCESSFUL);
        for (status, nt) in GNTST_TO_NTSTATUS {
            assert!(status.is_known());
            assert_eq!(nt_success(nt), status == GrantStatus::OKAY);
        }
    }
}
