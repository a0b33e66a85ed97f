//! `io/xs_wire.h`: the xenstore wire protocol — message header and types, error strings, the
//! shared ring page, and path / payload limits.

use super::super::abi::{AbiConstant, AbiValue};
use super::super::errno::Errno;
use crate::{abi_constants, abi_structs, open_enum};

open_enum! {
    /// `xsd_sockmsg.type` (`enum xsd_sockmsg_type`).
    pub struct XsdSockmsgType(u32) {
        /// Control / debug command.
        CONTROL = 0 => "XS_CONTROL",
        /// List a node's children.
        DIRECTORY = 1 => "XS_DIRECTORY",
        /// Read a node.
        READ = 2 => "XS_READ",
        /// Read a node's permissions.
        GET_PERMS = 3 => "XS_GET_PERMS",
        /// Add a watch.
        WATCH = 4 => "XS_WATCH",
        /// Remove a watch.
        UNWATCH = 5 => "XS_UNWATCH",
        /// Start a transaction.
        TRANSACTION_START = 6 => "XS_TRANSACTION_START",
        /// Commit (`T`) or abort (`F`) a transaction.
        TRANSACTION_END = 7 => "XS_TRANSACTION_END",
        /// Introduce a domain (dom0).
        INTRODUCE = 8 => "XS_INTRODUCE",
        /// Release a domain (dom0).
        RELEASE = 9 => "XS_RELEASE",
        /// A domain's home path.
        GET_DOMAIN_PATH = 10 => "XS_GET_DOMAIN_PATH",
        /// Write a node.
        WRITE = 11 => "XS_WRITE",
        /// Create a node.
        MKDIR = 12 => "XS_MKDIR",
        /// Remove a node and its children.
        RM = 13 => "XS_RM",
        /// Set a node's permissions.
        SET_PERMS = 14 => "XS_SET_PERMS",
        /// A watch fired (server → client, `req_id` 0).
        WATCH_EVENT = 15 => "XS_WATCH_EVENT",
        /// Error reply: the payload is an errno name from [`XSD_ERRORS`].
        ERROR = 16 => "XS_ERROR",
        /// Is a domain introduced?
        IS_DOMAIN_INTRODUCED = 17 => "XS_IS_DOMAIN_INTRODUCED",
        /// Resume a domain.
        RESUME = 18 => "XS_RESUME",
        /// Set a domain's target.
        SET_TARGET = 19 => "XS_SET_TARGET",
        /// Drop all watches and transactions of the connection.
        RESET_WATCHES = 21 => "XS_RESET_WATCHES",
        /// A part of a large directory listing.
        DIRECTORY_PART = 22 => "XS_DIRECTORY_PART",
        /// Number of types (`XS_TYPE_COUNT`).
        TYPE_COUNT = 23 => "XS_TYPE_COUNT",
        /// Guaranteed invalid type.
        INVALID = 0xFFFF => "XS_INVALID",
    }
}

impl XsdSockmsgType {
    /// `XS_DEBUG`, an alias of `XS_CONTROL`.
    pub const DEBUG: Self = Self::CONTROL;
    /// `XS_RESTRICT` (value 20) of Xen 4.8 era headers, removed in later ones; the value is
    /// reserved and upstream XenBus ignores replies of this type.
    pub const RESTRICT: Self = Self(20);
}

open_enum! {
    /// Index of a field in an `XS_WATCH_EVENT` payload (`enum xs_watch_type`).
    pub struct XsWatchType(u32) {
        /// The path that changed.
        PATH = 0 => "XS_WATCH_PATH",
        /// The watch's token.
        TOKEN = 1 => "XS_WATCH_TOKEN",
    }
}

/// `XS_WRITE_NONE`: historical write flag.
pub const XS_WRITE_NONE: &str = "NONE";
/// `XS_WRITE_CREATE`: historical write flag.
pub const XS_WRITE_CREATE: &str = "CREATE";
/// `XS_WRITE_CREATE_EXCL`: historical write flag.
pub const XS_WRITE_CREATE_EXCL: &str = "CREATE|EXCL";

/// One entry of `xsd_errors[]`: an errno and the name xenstored sends in `XS_ERROR`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XsdError {
    /// The error number.
    pub errnum: Errno,
    /// Its name on the wire (without the NUL).
    pub errstring: &'static str,
}

/// `xsd_errors[]`, in the header's order (the first entry is the fallback xenstored uses).
pub const XSD_ERRORS: [XsdError; 16] = [
    XsdError {
        errnum: Errno::EINVAL,
        errstring: "EINVAL",
    },
    XsdError {
        errnum: Errno::EACCES,
        errstring: "EACCES",
    },
    XsdError {
        errnum: Errno::EEXIST,
        errstring: "EEXIST",
    },
    XsdError {
        errnum: Errno::EISDIR,
        errstring: "EISDIR",
    },
    XsdError {
        errnum: Errno::ENOENT,
        errstring: "ENOENT",
    },
    XsdError {
        errnum: Errno::ENOMEM,
        errstring: "ENOMEM",
    },
    XsdError {
        errnum: Errno::ENOSPC,
        errstring: "ENOSPC",
    },
    XsdError {
        errnum: Errno::EIO,
        errstring: "EIO",
    },
    XsdError {
        errnum: Errno::ENOTEMPTY,
        errstring: "ENOTEMPTY",
    },
    XsdError {
        errnum: Errno::ENOSYS,
        errstring: "ENOSYS",
    },
    XsdError {
        errnum: Errno::EROFS,
        errstring: "EROFS",
    },
    XsdError {
        errnum: Errno::EBUSY,
        errstring: "EBUSY",
    },
    XsdError {
        errnum: Errno::EAGAIN,
        errstring: "EAGAIN",
    },
    XsdError {
        errnum: Errno::EISCONN,
        errstring: "EISCONN",
    },
    XsdError {
        errnum: Errno::E2BIG,
        errstring: "E2BIG",
    },
    XsdError {
        errnum: Errno::EPERM,
        errstring: "EPERM",
    },
];

/// The errno xenstored means by an `XS_ERROR` payload (NUL already stripped), if it is one of
/// [`XSD_ERRORS`].
pub fn xsd_error_errno(name: &[u8]) -> Option<Errno> {
    XSD_ERRORS
        .iter()
        .find(|entry| entry.errstring.as_bytes() == name)
        .map(|entry| entry.errnum)
}

/// The wire name of `errnum`, if it is one of [`XSD_ERRORS`].
pub fn xsd_error_name(errnum: Errno) -> Option<&'static str> {
    XSD_ERRORS
        .iter()
        .find(|entry| entry.errnum == errnum)
        .map(|entry| entry.errstring)
}

/// Size of each ring of the shared page (`XENSTORE_RING_SIZE`).
pub const XENSTORE_RING_SIZE: usize = 1024;
/// A free-running ring index (`XENSTORE_RING_IDX`).
pub type XenstoreRingIdx = u32;
/// Largest payload of one message (`XENSTORE_PAYLOAD_MAX`).
pub const XENSTORE_PAYLOAD_MAX: usize = 4096;
/// Longest absolute path (`XENSTORE_ABS_PATH_MAX`).
pub const XENSTORE_ABS_PATH_MAX: usize = 3072;
/// Longest relative path (`XENSTORE_REL_PATH_MAX`).
pub const XENSTORE_REL_PATH_MAX: usize = 2048;

/// `MASK_XENSTORE_IDX`: the byte offset of a free-running index in a ring.
pub const fn mask_xenstore_idx(index: XenstoreRingIdx) -> usize {
    index as usize & (XENSTORE_RING_SIZE - 1)
}

bitflags::bitflags! {
    /// `xenstore_domain_interface.server_features` (`XENSTORE_SERVER_FEATURE_*`).
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    pub struct XenstoreServerFeatures: u32 {
        /// The server supports the `connection` reconnect handshake.
        const RECONNECTION = 1;
        /// The server reports errors in the `error` field.
        const ERROR = 2;
        const _ = !0;
    }
}

open_enum! {
    /// `xenstore_domain_interface.connection` (`XENSTORE_CONNECTED` / `XENSTORE_RECONNECT`).
    pub struct XenstoreConnection(u32) {
        /// Connected.
        CONNECTED = 0 => "XENSTORE_CONNECTED",
        /// The guest asks the server to reset the connection.
        RECONNECT = 1 => "XENSTORE_RECONNECT",
    }
}

open_enum! {
    /// `xenstore_domain_interface.error` (`XENSTORE_ERROR_*`).
    pub struct XenstoreError(u32) {
        /// No error.
        NONE = 0 => "XENSTORE_ERROR_NONE",
        /// Communication problem.
        COMM = 1 => "XENSTORE_ERROR_COMM",
        /// Invalid ring index.
        RINGIDX = 2 => "XENSTORE_ERROR_RINGIDX",
        /// Protocol violation.
        PROTO = 3 => "XENSTORE_ERROR_PROTO",
    }
}

abi_structs! {
    /// Header of every xenstore message; `len` bytes of payload follow.
    #[c("struct xsd_sockmsg", size = 16, align = 4)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct XsdSockmsg {
        /// Message type.
        @0 as "type" pub kind: XsdSockmsgType,
        /// Request id, echoed in the reply.
        @4 pub req_id: u32,
        /// Transaction id (0 = none).
        @8 pub tx_id: u32,
        /// Payload length (at most [`XENSTORE_PAYLOAD_MAX`]).
        @12 pub len: u32,
    }

    /// The xenstore ring page shared with xenstored: a request ring written by the guest and a
    /// response ring written by the server, with free-running indices.
    #[c("struct xenstore_domain_interface", size = 2076, align = 4)]
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct XenstoreDomainInterface {
        /// Requests (guest → server).
        @0 pub req: [u8; XENSTORE_RING_SIZE],
        /// Responses (server → guest).
        @1024 pub rsp: [u8; XENSTORE_RING_SIZE],
        /// Request consumer index (server).
        @2048 pub req_cons: XenstoreRingIdx,
        /// Request producer index (guest).
        @2052 pub req_prod: XenstoreRingIdx,
        /// Response consumer index (guest).
        @2056 pub rsp_cons: XenstoreRingIdx,
        /// Response producer index (server).
        @2060 pub rsp_prod: XenstoreRingIdx,
        /// [`XenstoreServerFeatures`].
        @2064 pub server_features: u32,
        /// [`XenstoreConnection`].
        @2068 pub connection: XenstoreConnection,
        /// [`XenstoreError`].
        @2072 pub error: XenstoreError,
    }
}

impl Default for XenstoreDomainInterface {
    fn default() -> Self {
        Self {
            req: [0; XENSTORE_RING_SIZE],
            rsp: [0; XENSTORE_RING_SIZE],
            req_cons: 0,
            req_prod: 0,
            rsp_cons: 0,
            rsp_prod: 0,
            server_features: 0,
            connection: XenstoreConnection::CONNECTED,
            error: XenstoreError::NONE,
        }
    }
}

/// Every constant of `io/xs_wire.h`, for the C conformance probe (the `xsd_errors[]` table is
/// compared separately, entry by entry).
pub const CONSTANTS: &[&[AbiConstant]] = &[
    XsdSockmsgType::C_CONSTANTS,
    XsWatchType::C_CONSTANTS,
    XenstoreConnection::C_CONSTANTS,
    XenstoreError::C_CONSTANTS,
    abi_constants![
        "XS_DEBUG" => XsdSockmsgType::DEBUG.0,
        "XENSTORE_RING_SIZE" => XENSTORE_RING_SIZE,
        "XENSTORE_PAYLOAD_MAX" => XENSTORE_PAYLOAD_MAX,
        "XENSTORE_ABS_PATH_MAX" => XENSTORE_ABS_PATH_MAX,
        "XENSTORE_REL_PATH_MAX" => XENSTORE_REL_PATH_MAX,
        "XENSTORE_SERVER_FEATURE_RECONNECTION" => XenstoreServerFeatures::RECONNECTION.bits(),
        "XENSTORE_SERVER_FEATURE_ERROR" => XenstoreServerFeatures::ERROR.bits(),
        "MASK_XENSTORE_IDX(1030)" => mask_xenstore_idx(1030),
        "sizeof(XENSTORE_RING_IDX)" => core::mem::size_of::<XenstoreRingIdx>(),
        "sizeof(xsd_errors) / sizeof(xsd_errors[0])" => XSD_ERRORS.len(),
    ],
    &[
        AbiConstant {
            c_expr: "XS_WRITE_NONE",
            value: AbiValue::Str(XS_WRITE_NONE),
        },
        AbiConstant {
            c_expr: "XS_WRITE_CREATE",
            value: AbiValue::Str(XS_WRITE_CREATE),
        },
        AbiConstant {
            c_expr: "XS_WRITE_CREATE_EXCL",
            value: AbiValue::Str(XS_WRITE_CREATE_EXCL),
        },
    ],
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_table_lookups() {
        assert_eq!(xsd_error_errno(b"ENOENT"), Some(Errno::ENOENT));
        assert_eq!(xsd_error_errno(b"EQUOTA"), None);
        assert_eq!(xsd_error_errno(b"enoent"), None);
        assert_eq!(xsd_error_name(Errno::EAGAIN), Some("EAGAIN"));
        assert_eq!(xsd_error_name(Errno::ETIMEDOUT), None);
        for entry in XSD_ERRORS {
            assert_eq!(
                xsd_error_errno(entry.errstring.as_bytes()),
                Some(entry.errnum)
            );
            assert_eq!(
                entry.errnum.c_name().map(|n| &n[4..]),
                Some(entry.errstring)
            );
        }
    }

    #[test]
    fn ring_index_masks() {
        assert_eq!(mask_xenstore_idx(0), 0);
        assert_eq!(mask_xenstore_idx(1023), 1023);
        assert_eq!(mask_xenstore_idx(1024), 0);
        assert_eq!(mask_xenstore_idx(u32::MAX), 1023);
    }

    #[test]
    fn restrict_is_reserved_but_unnamed() {
        assert_eq!(XsdSockmsgType::RESTRICT.c_name(), None);
        assert_eq!(XsdSockmsgType::DEBUG.c_name(), Some("XS_CONTROL"));
    }
}
