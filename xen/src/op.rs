//! The shared shape of every hypercall wrapper: pass pointers to argument structs and map
//! negative returns (`-errno`) to NTSTATUS (`xen-errno.h`).
#![forbid(unsafe_code)]

use common::hypercall::Hypercall;
use xen_include::status::{errno_to_ntstatus, NtStatus};
use xen_include::xen::errno::Errno;
use xen_include::xen::xen::HypercallCode;

/// The address of an argument struct, as the hypervisor reads and writes it.
pub fn arg<T>(argument: &mut T) -> usize {
    core::ptr::from_mut(argument) as usize
}

/// Issue `code` with up to five raw arguments; `Err` for a negative return.
pub fn call(hv: &dyn Hypercall, code: HypercallCode, args: [usize; 5]) -> Result<isize, NtStatus> {
    let rc = hv.hypercall(code.0, args);
    if rc < 0 {
        let errno = i32::try_from(rc.unsigned_abs()).unwrap_or(i32::MAX);
        Err(errno_to_ntstatus(Errno(errno)))
    } else {
        Ok(rc)
    }
}

/// A two-argument hypercall (command, argument pointer).
pub fn call2(
    hv: &dyn Hypercall,
    code: HypercallCode,
    a0: usize,
    a1: usize,
) -> Result<isize, NtStatus> {
    call(hv, code, [a0, a1, 0, 0, 0])
}

/// A three-argument hypercall (command, argument pointer, count).
pub fn call3(
    hv: &dyn Hypercall,
    code: HypercallCode,
    a0: usize,
    a1: usize,
    a2: usize,
) -> Result<isize, NtStatus> {
    call(hv, code, [a0, a1, a2, 0, 0])
}
