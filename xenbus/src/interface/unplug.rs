//! XENBUS_UNPLUG V1–V3 served as C vtables over [`crate::unplug::Unplug`].

use core::ffi::{c_char, c_void};

use xen_include::interfaces::unplug::{
    UnplugDeviceType, UnplugInterfaceV1, UnplugInterfaceV2, UnplugInterfaceV3,
};
use xen_include::interfaces::{Boolean, Interface, PInterface, VersionedInterface};
use xen_include::status::{NtStatus, STATUS_NOT_SUPPORTED};

use super::references::acquire_release;
use super::References;
use crate::unplug::Unplug;

/// The UNPLUG provider.
pub struct UnplugProvider<'a> {
    references: References,
    unplug: Unplug<'a>,
}

impl<'a> UnplugProvider<'a> {
    /// A provider over `unplug`.
    pub fn new(unplug: Unplug<'a>) -> Self {
        Self {
            references: References::new(),
            unplug,
        }
    }
    /// References taken with Acquire.
    pub fn references(&self) -> u32 {
        self.references.get()
    }
    /// The core (the FDO's suspend/power paths call `resume_early`/`resume_from_hibernate`).
    pub fn unplug(&self) -> &Unplug<'a> {
        &self.unplug
    }
}

/// Fill `dst` with version `version`'s vtable for `provider` (spec §2.1).
///
/// # Safety
/// `dst` must be valid for `size` bytes of writes; `provider` must outlive every use of
/// the filled interface.
pub unsafe fn get_interface(
    provider: &UnplugProvider<'_>,
    version: u16,
    dst: *mut c_void,
    size: usize,
) -> NtStatus {
    let context = provider as *const UnplugProvider<'_> as *const c_void;
    // SAFETY: forwarded caller contract.
    unsafe {
        match version {
            1 => super::copy_interface(V1, |t| &mut t.interface, context, dst, size),
            2 => super::copy_interface(V2, |t| &mut t.interface, context, dst, size),
            3 => super::copy_interface(V3, |t| &mut t.interface, context, dst, size),
            _ => STATUS_NOT_SUPPORTED,
        }
    }
}

const V1: UnplugInterfaceV1 = UnplugInterfaceV1 {
    interface: Interface::new(UnplugInterfaceV1::SIZE as u16, 1, core::ptr::null_mut()),
    unplug_acquire: Some(acquire),
    unplug_release: Some(release),
    unplug_request: Some(request),
};

const V2: UnplugInterfaceV2 = UnplugInterfaceV2 {
    interface: Interface::new(UnplugInterfaceV2::SIZE as u16, 2, core::ptr::null_mut()),
    unplug_acquire: Some(acquire),
    unplug_release: Some(release),
    unplug_request: Some(request),
    unplug_is_requested: Some(is_requested),
};

const V3: UnplugInterfaceV3 = UnplugInterfaceV3 {
    interface: Interface::new(UnplugInterfaceV3::SIZE as u16, 3, core::ptr::null_mut()),
    unplug_acquire: Some(acquire),
    unplug_release: Some(release),
    unplug_request: Some(request),
    unplug_is_requested: Some(is_requested),
    unplug_boot_emulated: Some(boot_emulated),
    unplug_reboot: Some(reboot),
};

acquire_release!(UnplugProvider<'_>);

/// # Safety
/// `interface` is one we filled (C caller contract).
unsafe fn provider<'a>(interface: PInterface) -> Option<&'a UnplugProvider<'a>> {
    // SAFETY: forwarded caller contract.
    unsafe { super::context::<UnplugProvider<'a>>(interface) }
}

unsafe extern "C" fn request(interface: PInterface, device: UnplugDeviceType, make: Boolean) {
    // SAFETY: C caller passes the interface it obtained from us.
    if let Some(p) = unsafe { provider(interface) } {
        // Failures are logged by the core; the C method returns nothing.
        let _ = p.unplug.request(device, make != 0);
    }
}

unsafe extern "C" fn is_requested(interface: PInterface, device: UnplugDeviceType) -> Boolean {
    // SAFETY: C caller passes the interface it obtained from us.
    unsafe { provider(interface) }.is_some_and(|p| p.unplug.is_requested(device)) as Boolean
}

unsafe extern "C" fn boot_emulated(interface: PInterface) -> Boolean {
    // SAFETY: C caller passes the interface it obtained from us.
    unsafe { provider(interface) }.is_some_and(|p| p.unplug.boot_emulated()) as Boolean
}

unsafe extern "C" fn reboot(interface: PInterface, module: *mut c_char) {
    // SAFETY: C caller passes the interface it obtained from us.
    let Some(p) = (unsafe { provider(interface) }) else {
        return;
    };
    if module.is_null() {
        return;
    }
    // SAFETY: Module is a NUL-terminated string (header contract).
    let module = unsafe { core::ffi::CStr::from_ptr(module) };
    let _ = p.unplug.reboot(module);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::unplug::tests::{get, machine, set, xen, XEN_SERVICE};
    use common::os::RegValue;
    use xen_include::status::{STATUS_BUFFER_OVERFLOW, STATUS_SUCCESS};

    #[test]
    fn every_version_through_its_vtable_over_xen_sys() {
        let m = machine();
        m.hv.platform().set_protocol_version(1);
        set(
            &m,
            &format!("{XEN_SERVICE}\\ForceUnplug"),
            "DISKS",
            RegValue::Dword(1),
        );
        let x = xen(&m);
        let p = UnplugProvider::new(Unplug::new(&x, None));
        let mut t1 = UnplugInterfaceV1::EMPTY;
        let mut t2 = UnplugInterfaceV2::EMPTY;
        let mut t3 = UnplugInterfaceV3::EMPTY;
        unsafe {
            let d = &mut t3 as *mut _ as *mut c_void;
            assert_eq!(get_interface(&p, 4, d, 80), STATUS_NOT_SUPPORTED);
            assert_eq!(get_interface(&p, 3, d, 79), STATUS_BUFFER_OVERFLOW);
            assert_eq!(get_interface(&p, 3, d, 80), STATUS_SUCCESS);
            assert_eq!(
                get_interface(&p, 2, &mut t2 as *mut _ as *mut c_void, 64),
                STATUS_SUCCESS
            );
            assert_eq!(
                get_interface(&p, 1, &mut t1 as *mut _ as *mut c_void, 56),
                STATUS_SUCCESS
            );
        }
        assert_eq!(
            (t1.interface.size, t2.interface.size, t3.interface.size),
            (56, 64, 80)
        );
        let i1 = &mut t1 as *mut _ as PInterface;
        let i2 = &mut t2 as *mut _ as PInterface;
        let i3 = &mut t3 as *mut _ as PInterface;
        unsafe {
            assert_eq!((t1.unplug_acquire.unwrap())(i1), STATUS_SUCCESS);
            assert_eq!((t3.unplug_acquire.unwrap())(i3), STATUS_SUCCESS);
            assert_eq!(p.references(), 2);
            (t1.unplug_request.unwrap())(i1, UnplugDeviceType::NICS, 1);
            assert_eq!(
                get(&m, &format!("{XEN_SERVICE}\\Unplug"), "NICS"),
                Some(RegValue::Dword(1))
            );
            (t3.unplug_request.unwrap())(i3, UnplugDeviceType::NICS, 0);
            assert_eq!(
                get(&m, &format!("{XEN_SERVICE}\\Unplug"), "NICS"),
                Some(RegValue::Dword(0))
            );
            // Revoking below zero is refused (and logged); the value stays 0.
            (t3.unplug_request.unwrap())(i3, UnplugDeviceType::NICS, 0);
            assert_eq!(
                get(&m, &format!("{XEN_SERVICE}\\Unplug"), "NICS"),
                Some(RegValue::Dword(0))
            );
            assert_eq!(
                (t2.unplug_is_requested.unwrap())(i2, UnplugDeviceType::DISKS),
                1
            );
            assert_eq!(
                (t3.unplug_is_requested.unwrap())(i3, UnplugDeviceType::NICS),
                0
            );
            assert_eq!((t3.unplug_boot_emulated.unwrap())(i3), 0);
            (t3.unplug_reboot.unwrap())(i3, c"xenvbd".as_ptr() as *mut c_char);
            (t1.unplug_release.unwrap())(i1);
            (t3.unplug_release.unwrap())(i3);
            (t3.unplug_release.unwrap())(i3);
            assert_eq!(p.references(), 0);
        }
        x.unload();
    }
}
