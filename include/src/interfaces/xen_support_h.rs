//! The small support headers `xen.h` includes before the Xen public headers, generated for C
//! consumers: `xen-types.h` (fixed-width types and barriers the public headers need),
//! `xen-warnings.h` (MSVC warnings the public headers trigger) and `xen-errno.h`
//! (`ERRNO_TO_STATUS`, rendered from `crate::status::ERRNO_TO_NTSTATUS`).
//! `xen-version.h` is stamped at build time (vendor and version) and is not generated here.
#![forbid(unsafe_code)]

use core::fmt::{self, Write};

use crate::status::{self, NtStatus};

fn banner<W: Write + ?Sized>(out: &mut W, file: &str, what: &str) -> fmt::Result {
    writeln!(out, "/* {file}: {what}")?;
    writeln!(
        out,
        " * GENERATED from the Rust definitions in crate xen-include by `cargo xtask cheaders`;"
    )?;
    writeln!(out, " * do not edit. */\n")
}

/// Renders `xen-types.h`.
pub fn render_xen_types_h<W: Write + ?Sized>(out: &mut W) -> fmt::Result {
    banner(
        out,
        "xen-types.h",
        "types needed to include the Xen public headers",
    )?;
    out.write_str(
        r#"#ifndef _XEN_TYPES_H
#define _XEN_TYPES_H

#include <ntddk.h>

typedef CHAR    int8_t;
typedef SHORT   int16_t;
typedef LONG    int32_t;
typedef LONG64  int64_t;
typedef UCHAR   uint8_t;
typedef USHORT  uint16_t;
typedef ULONG   uint32_t;
typedef ULONG64 uint64_t;

#define xen_mb()    KeMemoryBarrier()
#if defined(_M_IX86) || defined(_M_X64) || defined(__x86_64__) || defined(__i386__)
#define xen_wmb()   KeMemoryBarrierWithoutFence()
#define xen_rmb()   KeMemoryBarrierWithoutFence()
#else
#define xen_wmb()   KeMemoryBarrier()
#define xen_rmb()   KeMemoryBarrier()
#endif

#endif  // _XEN_TYPES_H
"#,
    )
}

/// Renders `xen-warnings.h`.
pub fn render_xen_warnings_h<W: Write + ?Sized>(out: &mut W) -> fmt::Result {
    banner(
        out,
        "xen-warnings.h",
        "warnings disabled to include the Xen public headers",
    )?;
    out.write_str(
        r#"#ifndef _XEN_WARNINGS_H
#define _XEN_WARNINGS_H

#include <ntddk.h>

#ifdef _MSC_VER
#pragma warning(disable:4214) // nonstandard extension used : bit field types other than int
#pragma warning(disable:4200) // nonstandard extension used : zero-sized array in struct/union
#pragma warning(disable:4820) // padding added after data member
#endif

#endif  // _XEN_WARNINGS_H
"#,
    )
}

/// C names of the NTSTATUS values `ERRNO_TO_STATUS` produces.
const STATUS_NAMES: &[(NtStatus, &str)] = &[
    (status::STATUS_INVALID_PARAMETER, "STATUS_INVALID_PARAMETER"),
    (status::STATUS_ACCESS_DENIED, "STATUS_ACCESS_DENIED"),
    (status::STATUS_OBJECTID_EXISTS, "STATUS_OBJECTID_EXISTS"),
    (
        status::STATUS_FILE_IS_A_DIRECTORY,
        "STATUS_FILE_IS_A_DIRECTORY",
    ),
    (
        status::STATUS_OBJECT_NAME_NOT_FOUND,
        "STATUS_OBJECT_NAME_NOT_FOUND",
    ),
    (status::STATUS_NO_MEMORY, "STATUS_NO_MEMORY"),
    (
        status::STATUS_INSUFFICIENT_RESOURCES,
        "STATUS_INSUFFICIENT_RESOURCES",
    ),
    (
        status::STATUS_UNEXPECTED_IO_ERROR,
        "STATUS_UNEXPECTED_IO_ERROR",
    ),
    (
        status::STATUS_DIRECTORY_NOT_EMPTY,
        "STATUS_DIRECTORY_NOT_EMPTY",
    ),
    (status::STATUS_NOT_IMPLEMENTED, "STATUS_NOT_IMPLEMENTED"),
    (
        status::STATUS_MEDIA_WRITE_PROTECTED,
        "STATUS_MEDIA_WRITE_PROTECTED",
    ),
    (status::STATUS_PIPE_BUSY, "STATUS_PIPE_BUSY"),
    (status::STATUS_RETRY, "STATUS_RETRY"),
    (status::STATUS_PIPE_CONNECTED, "STATUS_PIPE_CONNECTED"),
    (status::STATUS_UNSUCCESSFUL, "STATUS_UNSUCCESSFUL"),
];

fn status_name(value: NtStatus) -> Result<&'static str, fmt::Error> {
    STATUS_NAMES
        .iter()
        .find(|(v, _)| *v == value)
        .map(|(_, n)| *n)
        .ok_or(fmt::Error)
}

/// Renders `xen-errno.h`: `ERRNO_TO_STATUS(_errno, _status)` over Xen errno values (cases are
/// numeric so the header does not depend on which errno names are in scope), and the three
/// errno names upstream defines for the public `errno.h`'s gaps.
pub fn render_xen_errno_h<W: Write + ?Sized>(out: &mut W) -> fmt::Result {
    banner(out, "xen-errno.h", "Xen errno to NTSTATUS")?;
    writeln!(out, "#ifndef _XEN_ERRNO_H\n#define _XEN_ERRNO_H\n")?;
    writeln!(out, "#include <ntddk.h>\n")?;
    for (name, value) in [("EISDIR", 21), ("EROFS", 30), ("ENOTEMPTY", 39)] {
        writeln!(out, "#ifndef {name}\n#define {name} {value}\n#endif")?;
    }
    writeln!(out, "\n#define ERRNO_TO_STATUS(_errno, _status) \\")?;
    writeln!(out, "        do {{ \\")?;
    writeln!(out, "            switch (_errno) {{ \\")?;
    for (errno, value) in status::ERRNO_TO_NTSTATUS {
        let name = errno.c_name().ok_or(fmt::Error)?;
        let name = name.strip_prefix("XEN_").unwrap_or(name);
        writeln!(
            out,
            "            case {}: /* {name} */ \\",
            i32::from(errno)
        )?;
        writeln!(out, "                _status = {}; \\", status_name(value)?)?;
        writeln!(out, "                break; \\")?;
    }
    writeln!(out, "            default: \\")?;
    writeln!(
        out,
        "                _status = {}; \\",
        status_name(status::STATUS_UNSUCCESSFUL)?
    )?;
    writeln!(out, "                break; \\")?;
    writeln!(out, "            }} \\")?;
    writeln!(out, "        }} while (FALSE)\n")?;
    writeln!(out, "#endif  // _XEN_ERRNO_H")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_header_maps_every_table_entry() {
        let mut h = String::new();
        render_xen_errno_h(&mut h).unwrap();
        assert_eq!(h.matches("case ").count(), status::ERRNO_TO_NTSTATUS.len());
        assert!(h.contains(
            "case 22: /* EINVAL */ \\\n                _status = STATUS_INVALID_PARAMETER;"
        ));
        assert!(h.contains("case 11: /* EAGAIN */ \\\n                _status = STATUS_RETRY;"));
        assert!(h.contains("default: \\\n                _status = STATUS_UNSUCCESSFUL;"));
    }
}
