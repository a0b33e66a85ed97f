//! The ABI names the xenstored model uses, every one taken from `xen_include` (`io/xs_wire.h`,
//! `xen.h`, `xen/errno.h`) and flattened to the integer forms the engine matches on.
#![forbid(unsafe_code)]

use core::mem::offset_of;

use xen_include::xen::io::xs_wire::{
    self, XenstoreDomainInterface, XenstoreError, XsdSockmsg, XsdSockmsgType as T,
};
use xen_include::xen::xen::DomId;

pub use xen_include::xen::errno::Errno;

/// `XS_CONTROL` (also `XS_DEBUG`).
pub const XS_CONTROL: u32 = T::CONTROL.0;
/// `XS_DIRECTORY`.
pub const XS_DIRECTORY: u32 = T::DIRECTORY.0;
/// `XS_READ`.
pub const XS_READ: u32 = T::READ.0;
/// `XS_GET_PERMS`.
pub const XS_GET_PERMS: u32 = T::GET_PERMS.0;
/// `XS_WATCH`.
pub const XS_WATCH: u32 = T::WATCH.0;
/// `XS_UNWATCH`.
pub const XS_UNWATCH: u32 = T::UNWATCH.0;
/// `XS_TRANSACTION_START`.
pub const XS_TRANSACTION_START: u32 = T::TRANSACTION_START.0;
/// `XS_TRANSACTION_END`.
pub const XS_TRANSACTION_END: u32 = T::TRANSACTION_END.0;
/// `XS_INTRODUCE`.
pub const XS_INTRODUCE: u32 = T::INTRODUCE.0;
/// `XS_RELEASE`.
pub const XS_RELEASE: u32 = T::RELEASE.0;
/// `XS_GET_DOMAIN_PATH`.
pub const XS_GET_DOMAIN_PATH: u32 = T::GET_DOMAIN_PATH.0;
/// `XS_WRITE`.
pub const XS_WRITE: u32 = T::WRITE.0;
/// `XS_MKDIR`.
pub const XS_MKDIR: u32 = T::MKDIR.0;
/// `XS_RM`.
pub const XS_RM: u32 = T::RM.0;
/// `XS_SET_PERMS`.
pub const XS_SET_PERMS: u32 = T::SET_PERMS.0;
/// `XS_WATCH_EVENT`.
pub const XS_WATCH_EVENT: u32 = T::WATCH_EVENT.0;
/// `XS_ERROR`.
pub const XS_ERROR: u32 = T::ERROR.0;
/// `XS_IS_DOMAIN_INTRODUCED`.
pub const XS_IS_DOMAIN_INTRODUCED: u32 = T::IS_DOMAIN_INTRODUCED.0;
/// `XS_RESUME`.
pub const XS_RESUME: u32 = T::RESUME.0;
/// `XS_SET_TARGET`.
pub const XS_SET_TARGET: u32 = T::SET_TARGET.0;
/// `XS_RESET_WATCHES`.
pub const XS_RESET_WATCHES: u32 = T::RESET_WATCHES.0;
/// `XS_DIRECTORY_PART`.
pub const XS_DIRECTORY_PART: u32 = T::DIRECTORY_PART.0;

/// `XENSTORE_PAYLOAD_MAX`.
pub const XENSTORE_PAYLOAD_MAX: usize = xs_wire::XENSTORE_PAYLOAD_MAX;
/// `XENSTORE_REL_PATH_MAX`.
pub const XENSTORE_REL_PATH_MAX: usize = xs_wire::XENSTORE_REL_PATH_MAX;
/// `XENSTORE_RING_SIZE`.
pub const XENSTORE_RING_SIZE: u32 = xs_wire::XENSTORE_RING_SIZE as u32;
/// `XENSTORE_ERROR_RINGIDX`.
pub const XENSTORE_ERROR_RINGIDX: u32 = XenstoreError::RINGIDX.0;
/// `XENSTORE_ERROR_PROTO`.
pub const XENSTORE_ERROR_PROTO: u32 = XenstoreError::PROTO.0;

/// `sizeof(struct xsd_sockmsg)`.
pub const XS_MSG_HEADER_LEN: usize = core::mem::size_of::<XsdSockmsg>();
/// Offset of `req[]` in `struct xenstore_domain_interface`.
pub const OFF_REQ: usize = offset_of!(XenstoreDomainInterface, req);
/// Offset of `rsp[]`.
pub const OFF_RSP: usize = offset_of!(XenstoreDomainInterface, rsp);
/// Offset of `req_cons`.
pub const OFF_REQ_CONS: usize = offset_of!(XenstoreDomainInterface, req_cons);
/// Offset of `req_prod`.
pub const OFF_REQ_PROD: usize = offset_of!(XenstoreDomainInterface, req_prod);
/// Offset of `rsp_cons`.
pub const OFF_RSP_CONS: usize = offset_of!(XenstoreDomainInterface, rsp_cons);
/// Offset of `rsp_prod`.
pub const OFF_RSP_PROD: usize = offset_of!(XenstoreDomainInterface, rsp_prod);
/// Offset of `error`.
pub const OFF_ERROR: usize = offset_of!(XenstoreDomainInterface, error);

/// `DOMID_SELF`.
pub const DOMID_SELF: u32 = DomId::SELF.0 as u32;

/// The name xenstored sends for an errno (`xsd_errors[]`); untranslatable values become the
/// table's first entry, `EINVAL`, as in the C daemon.
pub fn error_name(err: Errno) -> &'static str {
    xs_wire::xsd_error_name(err)
        .or_else(|| xs_wire::XSD_ERRORS.first().map(|e| e.errstring))
        .unwrap_or("EINVAL")
}

/// The errno an `XS_ERROR` payload names.
pub fn error_from_name(name: &str) -> Option<Errno> {
    xs_wire::xsd_error_errno(name.as_bytes())
}

// The daemon's internal permission bits (`struct xs_permissions` in tools/xenstore); they
// never cross the wire, where permissions are the letters n, r, w, b.
/// No access.
pub const XS_PERM_NONE: u32 = 0;
/// Read access.
pub const XS_PERM_READ: u32 = 1;
/// Write access.
pub const XS_PERM_WRITE: u32 = 2;
/// Owner rights.
pub const XS_PERM_OWNER: u32 = 8;
/// Entry to be ignored (its domain is younger than the node, or gone).
pub const XS_PERM_IGNORE: u32 = 16;
