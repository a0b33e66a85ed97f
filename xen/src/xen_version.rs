//! `xen_version.c`: `XENVER_version` (major << 16 | minor) and `XENVER_extraversion`.
#![forbid(unsafe_code)]

use common::hypercall::Hypercall;
use xen_include::status::NtStatus;
use xen_include::xen::version::{version_major, version_minor, XenVersionOp, XEN_EXTRAVERSION_LEN};
use xen_include::xen::xen::HypercallCode;

use crate::op::{arg, call2};

/// `XenVersion`: (major, minor).
pub fn version(hv: &dyn Hypercall) -> Result<(u32, u32), NtStatus> {
    let rc = call2(
        hv,
        HypercallCode::XEN_VERSION,
        XenVersionOp::VERSION.0 as usize,
        0,
    )?;
    let v = rc as u32;
    Ok((u32::from(version_major(v)), u32::from(version_minor(v))))
}

/// `XenVersionExtra`: the extra version string, NUL-terminated within 16 bytes.
pub fn extra(hv: &dyn Hypercall) -> Result<[u8; XEN_EXTRAVERSION_LEN], NtStatus> {
    let mut buf = [0u8; XEN_EXTRAVERSION_LEN];
    call2(
        hv,
        HypercallCode::XEN_VERSION,
        XenVersionOp::EXTRAVERSION.0 as usize,
        arg(&mut buf),
    )?;
    if let Some(last) = buf.last_mut() {
        *last = 0;
    }
    Ok(buf)
}
