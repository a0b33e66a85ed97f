//! XENBUS_BALLOON V1 (internal to xenbus: not exported to child PDOs) served as a C
//! vtable over [`crate::balloon::Balloon`].

use core::ffi::c_void;

use xen_include::interfaces::balloon::BalloonInterfaceV1;
use xen_include::interfaces::{Interface, PInterface, VersionedInterface};
use xen_include::status::{
    NtStatus, STATUS_INVALID_PARAMETER, STATUS_NOT_SUPPORTED, STATUS_SUCCESS,
};

use super::references::acquire_release;
use super::References;
use crate::balloon::Balloon;

/// The BALLOON provider.
pub struct BalloonProvider<'a> {
    references: References,
    balloon: &'a Balloon<'a>,
}

impl<'a> BalloonProvider<'a> {
    /// A provider over `balloon`.
    pub fn new(balloon: &'a Balloon<'a>) -> Self {
        Self {
            references: References::new(),
            balloon,
        }
    }
    /// References taken with Acquire.
    pub fn references(&self) -> u32 {
        self.references.get()
    }
}

/// Fill `dst` with version `version`'s vtable for `provider` (spec §2.1).
///
/// # Safety
/// `dst` must be valid for `size` bytes of writes; `provider` must outlive every use of
/// the filled interface.
pub unsafe fn get_interface(
    provider: &BalloonProvider<'_>,
    version: u16,
    dst: *mut c_void,
    size: usize,
) -> NtStatus {
    let context = provider as *const BalloonProvider<'_> as *const c_void;
    match version {
        // SAFETY: forwarded caller contract.
        1 => unsafe { super::copy_interface(V1, |t| &mut t.interface, context, dst, size) },
        _ => STATUS_NOT_SUPPORTED,
    }
}

const V1: BalloonInterfaceV1 = BalloonInterfaceV1 {
    interface: Interface::new(BalloonInterfaceV1::SIZE as u16, 1, core::ptr::null_mut()),
    balloon_acquire: Some(acquire),
    balloon_release: Some(release),
    balloon_adjust: Some(adjust),
    balloon_get_size: Some(get_size),
};

acquire_release!(BalloonProvider<'_>, first: |_p| Ok(()), last: |p| {
    let _ = p.balloon.check_release();
});

/// # Safety
/// `interface` is one we filled (C caller contract).
unsafe fn provider<'a>(interface: PInterface) -> Option<&'a BalloonProvider<'a>> {
    // SAFETY: forwarded caller contract.
    unsafe { super::context::<BalloonProvider<'a>>(interface) }
}

unsafe extern "C" fn adjust(interface: PInterface, size: u64) -> NtStatus {
    // SAFETY: C caller passes the interface it obtained from us.
    match unsafe { provider(interface) } {
        Some(p) => p.balloon.adjust(size).err().unwrap_or(STATUS_SUCCESS),
        None => STATUS_INVALID_PARAMETER,
    }
}

unsafe extern "C" fn get_size(interface: PInterface) -> u64 {
    // SAFETY: C caller passes the interface it obtained from us.
    unsafe { provider(interface) }.map_or(0, |p| p.balloon.size())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balloon::tests::SimMemory;
    use crate::sim::Sim;
    use xen_include::status::{STATUS_BUFFER_OVERFLOW, STATUS_NO_MEMORY};

    #[test]
    fn adjust_and_get_size_through_the_vtable() {
        let sim: &'static Sim = Box::leak(Box::new(Sim::new(1)));
        let mem = SimMemory::new(sim);
        let b: &'static Balloon<'static> = Box::leak(Box::new(Balloon::new(sim.xen, mem)));
        let p = BalloonProvider::new(b);
        let mut t = BalloonInterfaceV1::EMPTY;
        unsafe {
            let d = &mut t as *mut _ as *mut c_void;
            assert_eq!(get_interface(&p, 2, d, 64), STATUS_NOT_SUPPORTED);
            assert_eq!(get_interface(&p, 1, d, 63), STATUS_BUFFER_OVERFLOW);
            assert_eq!(get_interface(&p, 1, d, 64), STATUS_SUCCESS);
            let i = &mut t as *mut _ as PInterface;
            let (pages, _) = sim.m.hv.domain_pages();
            assert_eq!((t.balloon_acquire.unwrap())(i), STATUS_SUCCESS);
            assert_eq!((t.balloon_adjust.unwrap())(i, 300), STATUS_SUCCESS);
            assert_eq!((t.balloon_get_size.unwrap())(i), 300);
            assert_eq!(sim.m.hv.domain_pages().0, pages - 300);
            mem.low.store(true, std::sync::atomic::Ordering::SeqCst);
            assert_eq!((t.balloon_adjust.unwrap())(i, 400), STATUS_NO_MEMORY);
            // Deflation does not need memory.
            assert_eq!((t.balloon_adjust.unwrap())(i, 0), STATUS_SUCCESS);
            assert_eq!(sim.m.hv.domain_pages().0, pages);
            (t.balloon_release.unwrap())(i);
            assert_eq!(p.references(), 0);
        }
    }
}
