//! `xen/errno.h`: the error numbers hypercalls return (negated) and xenstored names in
//! `XS_ERROR` replies. The values are Linux's, whatever the guest OS.

use crate::open_enum;

open_enum! {
    /// A Xen error number (`enum xen_errno`). Hypercalls return `-errno` on failure.
    pub struct Errno(i32) {
        /// Operation not permitted.
        EPERM = 1 => "XEN_EPERM",
        /// No such file or directory.
        ENOENT = 2 => "XEN_ENOENT",
        /// No such process.
        ESRCH = 3 => "XEN_ESRCH",
        /// I/O error.
        EIO = 5 => "XEN_EIO",
        /// No such device or address.
        ENXIO = 6 => "XEN_ENXIO",
        /// Argument list too long.
        E2BIG = 7 => "XEN_E2BIG",
        /// Exec format error.
        ENOEXEC = 8 => "XEN_ENOEXEC",
        /// Bad file number.
        EBADF = 9 => "XEN_EBADF",
        /// No child processes.
        ECHILD = 10 => "XEN_ECHILD",
        /// Try again.
        EAGAIN = 11 => "XEN_EAGAIN",
        /// Operation would block (same value as `EAGAIN`).
        EWOULDBLOCK = 11 => "XEN_EWOULDBLOCK",
        /// Out of memory.
        ENOMEM = 12 => "XEN_ENOMEM",
        /// Permission denied.
        EACCES = 13 => "XEN_EACCES",
        /// Bad address.
        EFAULT = 14 => "XEN_EFAULT",
        /// Device or resource busy.
        EBUSY = 16 => "XEN_EBUSY",
        /// File exists.
        EEXIST = 17 => "XEN_EEXIST",
        /// Cross-device link.
        EXDEV = 18 => "XEN_EXDEV",
        /// No such device.
        ENODEV = 19 => "XEN_ENODEV",
        /// Not a directory.
        ENOTDIR = 20 => "XEN_ENOTDIR",
        /// Is a directory.
        EISDIR = 21 => "XEN_EISDIR",
        /// Invalid argument.
        EINVAL = 22 => "XEN_EINVAL",
        /// File table overflow.
        ENFILE = 23 => "XEN_ENFILE",
        /// Too many open files.
        EMFILE = 24 => "XEN_EMFILE",
        /// No space left on device.
        ENOSPC = 28 => "XEN_ENOSPC",
        /// Read-only file system.
        EROFS = 30 => "XEN_EROFS",
        /// Too many links.
        EMLINK = 31 => "XEN_EMLINK",
        /// Math argument out of domain.
        EDOM = 33 => "XEN_EDOM",
        /// Math result not representable.
        ERANGE = 34 => "XEN_ERANGE",
        /// Resource deadlock would occur.
        EDEADLK = 35 => "XEN_EDEADLK",
        /// Resource deadlock would occur (same value as `EDEADLK`).
        EDEADLOCK = 35 => "XEN_EDEADLOCK",
        /// File name too long.
        ENAMETOOLONG = 36 => "XEN_ENAMETOOLONG",
        /// No record locks available.
        ENOLCK = 37 => "XEN_ENOLCK",
        /// Function not implemented.
        ENOSYS = 38 => "XEN_ENOSYS",
        /// Directory not empty.
        ENOTEMPTY = 39 => "XEN_ENOTEMPTY",
        /// No data available.
        ENODATA = 61 => "XEN_ENODATA",
        /// Timer expired.
        ETIME = 62 => "XEN_ETIME",
        /// Not a data message.
        EBADMSG = 74 => "XEN_EBADMSG",
        /// Value too large for defined data type.
        EOVERFLOW = 75 => "XEN_EOVERFLOW",
        /// Illegal byte sequence.
        EILSEQ = 84 => "XEN_EILSEQ",
        /// Socket operation on non-socket.
        ENOTSOCK = 88 => "XEN_ENOTSOCK",
        /// Message too long.
        EMSGSIZE = 90 => "XEN_EMSGSIZE",
        /// Operation not supported.
        EOPNOTSUPP = 95 => "XEN_EOPNOTSUPP",
        /// Address already in use.
        EADDRINUSE = 98 => "XEN_EADDRINUSE",
        /// Cannot assign requested address.
        EADDRNOTAVAIL = 99 => "XEN_EADDRNOTAVAIL",
        /// No buffer space available.
        ENOBUFS = 105 => "XEN_ENOBUFS",
        /// Transport endpoint is already connected.
        EISCONN = 106 => "XEN_EISCONN",
        /// Transport endpoint is not connected.
        ENOTCONN = 107 => "XEN_ENOTCONN",
        /// Connection timed out.
        ETIMEDOUT = 110 => "XEN_ETIMEDOUT",
        /// Connection refused.
        ECONNREFUSED = 111 => "XEN_ECONNREFUSED",
    }
}

impl Errno {
    /// Hypervisor-internal "restart the hypercall" code (`__XEN__` only, never returned to a
    /// guest that does not ask for continuations; listed so the simulator can name it).
    pub const ERESTART: Self = Self(85);
    /// Hypervisor-internal "interrupted" code (`__XEN__` only).
    pub const EINTR: Self = Self(4);

    /// Splits a raw hypercall return value: negative values are `-errno`, the rest succeed.
    pub const fn from_hypercall_return(rc: i64) -> Result<u64, Errno> {
        if rc < 0 {
            // Below -i32::MAX the value is no errno at all: saturate to an unknown code
            // rather than wrap into a plausible one.
            let negated = rc.saturating_neg();
            if negated > i32::MAX as i64 {
                Err(Errno(i32::MAX))
            } else {
                Err(Errno(negated as i32))
            }
        } else {
            Ok(rc as u64)
        }
    }

    /// The raw hypercall return value for this error (`-errno`).
    pub const fn to_hypercall_return(self) -> i64 {
        -(self.0 as i64)
    }
}

/// Every constant of `xen/errno.h`, for the C conformance probe.
pub const CONSTANTS: &[&[super::abi::AbiConstant]] = &[Errno::C_CONSTANTS];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hypercall_return_splits_errors() {
        assert_eq!(Errno::from_hypercall_return(0), Ok(0));
        assert_eq!(Errno::from_hypercall_return(7), Ok(7));
        assert_eq!(Errno::from_hypercall_return(-22), Err(Errno::EINVAL));
        assert_eq!(Errno::from_hypercall_return(i64::MIN), Err(Errno(i32::MAX)));
        assert_eq!(Errno::EAGAIN.to_hypercall_return(), -11);
    }

    #[test]
    fn unknown_values_are_representable_and_named_when_known() {
        assert_eq!(Errno(22).c_name(), Some("XEN_EINVAL"));
        assert_eq!(Errno(1000).c_name(), None);
        assert!(!Errno(1000).is_known());
        assert_eq!(format!("{:?}", Errno(1000)), "Errno(1000)");
        assert_eq!(format!("{:?}", Errno::ENOENT), "Errno(XEN_ENOENT)");
        assert_eq!(Errno::EWOULDBLOCK, Errno::EAGAIN);
    }
}
