//! XENFILT_EMULATED v1–v3 served as C vtables over [`crate::emulated::Emulated`]
//! (spec §2.13, §6.3). xenbus queries v3 from the filter under the platform device; the PV
//! storage and network drivers query it to learn which emulated devices are still there.
//!
//! The presence methods take `PVOID Context`, which callers fill with the `PINTERFACE`
//! they obtained (an upstream quirk kept for binary compatibility).

use core::ffi::{c_char, c_void};
use core::sync::atomic::{AtomicU32, Ordering};

use common::interface::{c_str, context, copy_interface};
use common::sync::SpinLock;
use xen_include::interfaces::emulated::{
    EmulatedActivationStatus, EmulatedInterfaceV1, EmulatedInterfaceV2, EmulatedInterfaceV3,
};
use xen_include::interfaces::{Boolean, Interface, PInterface, VersionedInterface, FALSE, TRUE};
use xen_include::status::{NtStatus, STATUS_NOT_SUPPORTED, STATUS_SUCCESS};

use crate::emulated::{Activation, Emulated};

/// The EMULATED provider: the record every child filter registers into, and the
/// reference count taken by Acquire.
pub struct EmulatedProvider {
    references: AtomicU32,
    /// The emulated objects.
    pub record: SpinLock<Emulated>,
}

impl Default for EmulatedProvider {
    fn default() -> Self {
        Self::new()
    }
}

impl EmulatedProvider {
    /// An empty provider.
    pub const fn new() -> Self {
        Self {
            references: AtomicU32::new(0),
            record: SpinLock::new(Emulated::new()),
        }
    }

    /// References currently held through the interface.
    pub fn references(&self) -> u32 {
        self.references.load(Ordering::Acquire)
    }
}

/// The C value of an activation status.
pub fn activation_status(activation: Activation) -> EmulatedActivationStatus {
    match activation {
        Activation::Neutral => EmulatedActivationStatus::ACTIVATE_NEUTRAL,
        Activation::ForceActivated => EmulatedActivationStatus::FORCE_ACTIVATED,
        Activation::ForceDeactivated => EmulatedActivationStatus::FORCE_DEACTIVATED,
    }
}

/// Fill `dst` with version `version`'s vtable for `provider` (spec §2.1): unknown version
/// → `STATUS_NOT_SUPPORTED`, short buffer → `STATUS_BUFFER_OVERFLOW`.
///
/// # Safety
/// `dst` must be valid for `size` bytes of writes and pointer-aligned; `provider` must
/// outlive every use of the filled interface.
pub unsafe fn get_interface(
    provider: &EmulatedProvider,
    version: u16,
    dst: *mut c_void,
    size: usize,
) -> NtStatus {
    let context = provider as *const EmulatedProvider as *const c_void;
    // SAFETY (all arms): forwarded caller contract.
    match version {
        1 => unsafe { copy_interface(V1, |t| &mut t.interface, context, dst, size) },
        2 => unsafe { copy_interface(V2, |t| &mut t.interface, context, dst, size) },
        3 => unsafe { copy_interface(V3, |t| &mut t.interface, context, dst, size) },
        _ => STATUS_NOT_SUPPORTED,
    }
}

const V1: EmulatedInterfaceV1 = EmulatedInterfaceV1 {
    interface: Interface::new(EmulatedInterfaceV1::SIZE as u16, 1, core::ptr::null_mut()),
    emulated_acquire: Some(acquire),
    emulated_release: Some(release),
    emulated_is_device_present_version1: Some(is_device_present_v1),
    emulated_is_disk_present_version1: Some(is_disk_present_v1),
};

const V2: EmulatedInterfaceV2 = EmulatedInterfaceV2 {
    interface: Interface::new(EmulatedInterfaceV2::SIZE as u16, 2, core::ptr::null_mut()),
    emulated_acquire: Some(acquire),
    emulated_release: Some(release),
    emulated_is_device_present_version1: Some(is_device_present_v1),
    emulated_is_disk_present: Some(is_disk_present),
};

const V3: EmulatedInterfaceV3 = EmulatedInterfaceV3 {
    interface: Interface::new(EmulatedInterfaceV3::SIZE as u16, 3, core::ptr::null_mut()),
    emulated_acquire: Some(acquire),
    emulated_release: Some(release),
    emulated_is_device_present: Some(is_device_present),
    emulated_is_disk_present: Some(is_disk_present),
};

/// # Safety
/// `interface` must be NULL or an interface filled by [`get_interface`].
unsafe fn provider<'a>(interface: *mut c_void) -> Option<&'a EmulatedProvider> {
    // SAFETY: forwarded caller contract; the context of a filled header is a provider.
    unsafe { context::<EmulatedProvider>(interface.cast::<Interface>()) }
}

unsafe extern "C" fn acquire(interface: PInterface) -> NtStatus {
    // SAFETY: C callers pass the interface they obtained from us.
    match unsafe { provider(interface.cast()) } {
        Some(provider) => {
            provider.references.fetch_add(1, Ordering::AcqRel);
            STATUS_SUCCESS
        }
        None => STATUS_NOT_SUPPORTED,
    }
}

unsafe extern "C" fn release(interface: PInterface) {
    // SAFETY: C callers pass the interface they obtained from us.
    if let Some(provider) = unsafe { provider(interface.cast()) } {
        // A Release without Acquire is a caller bug; never wrap the count.
        let _ = provider
            .references
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }
}

/// Presence query shared by every version. A DeviceID or InstanceID that is not valid
/// text matches nothing.
///
/// # Safety
/// `context` is an interface from [`get_interface`]; the strings are NULL or
/// NUL-terminated.
unsafe fn device_present(
    context: *mut c_void,
    device_id: *mut c_char,
    instance_id: *mut c_char,
) -> Option<Activation> {
    // SAFETY: forwarded caller contract.
    let provider = unsafe { provider(context) }?;
    // SAFETY: forwarded caller contract (NULL or NUL-terminated).
    let device = unsafe { c_str(device_id) };
    // SAFETY: as above.
    let instance = unsafe { c_str(instance_id) };
    if (!device_id.is_null() && device.is_none()) || (!instance_id.is_null() && instance.is_none())
    {
        return None;
    }
    provider.record.lock().is_device_present(device, instance)
}

unsafe extern "C" fn is_device_present_v1(
    context: *mut c_void,
    device_id: *mut c_char,
    instance_id: *mut c_char,
) -> Boolean {
    // SAFETY: C callers honour the header's contract.
    if unsafe { device_present(context, device_id, instance_id) }.is_some() {
        TRUE
    } else {
        FALSE
    }
}

unsafe extern "C" fn is_device_present(
    context: *mut c_void,
    device_id: *mut c_char,
    instance_id: *mut c_char,
    status: *mut EmulatedActivationStatus,
) -> Boolean {
    // SAFETY: C callers honour the header's contract.
    match unsafe { device_present(context, device_id, instance_id) } {
        Some(activation) => {
            if !status.is_null() {
                // SAFETY: a non-NULL out pointer from the caller is writable.
                unsafe { status.write(activation_status(activation)) };
            }
            TRUE
        }
        None => FALSE,
    }
}

unsafe extern "C" fn is_disk_present_v1(
    context: *mut c_void,
    controller: u32,
    target: u32,
    lun: u32,
) -> Boolean {
    // SAFETY: C callers pass the interface they obtained from us.
    match unsafe { provider(context) } {
        Some(provider)
            if provider
                .record
                .lock()
                .is_disk_present_v1(controller, target, lun) =>
        {
            TRUE
        }
        _ => FALSE,
    }
}

unsafe extern "C" fn is_disk_present(context: *mut c_void, index: u32) -> Boolean {
    // SAFETY: C callers pass the interface they obtained from us.
    match unsafe { provider(context) } {
        Some(provider) if provider.record.lock().is_disk_present(index) => TRUE,
        _ => FALSE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CString;
    use xen_include::status::STATUS_BUFFER_OVERFLOW;

    const PLATFORM: &str = "PCI\\VEN_5853&DEV_0001&SUBSYS_00015853&REV_01";

    fn provider_with_devices() -> EmulatedProvider {
        let provider = EmulatedProvider::new();
        {
            let mut record = provider.record.lock();
            record.add_pci(
                PLATFORM,
                "3&1&0&18",
                &["PCI\\VEN_5853&DEV_0001"],
                Activation::ForceActivated,
            );
            record.add_ide("0.1.0").expect("valid");
        }
        provider
    }

    fn obtain<T: VersionedInterface + Copy>(provider: &EmulatedProvider, version: u16) -> T {
        let mut table = core::mem::MaybeUninit::<T>::zeroed();
        // SAFETY: the buffer is a T, so valid and aligned for T::SIZE bytes.
        let status =
            unsafe { get_interface(provider, version, table.as_mut_ptr().cast(), T::SIZE) };
        assert_eq!(status, STATUS_SUCCESS);
        // SAFETY: get_interface wrote a whole T.
        unsafe { table.assume_init() }
    }

    #[test]
    fn every_version_answers_through_its_c_vtable() {
        let provider = provider_with_devices();
        let device = CString::new(PLATFORM.to_ascii_lowercase()).expect("no NUL");
        let other = CString::new("PCI\\VEN_8086&DEV_100E").expect("no NUL");
        let mut v3: EmulatedInterfaceV3 = obtain(&provider, 3);
        assert_eq!(v3.interface.version, 3);
        assert!(v3.interface.interface_reference.is_none());
        let this = (&mut v3 as *mut EmulatedInterfaceV3).cast::<c_void>();
        // SAFETY: calling our own vtable with the interface it belongs to.
        unsafe {
            assert_eq!(
                (v3.emulated_acquire.expect("slot"))(this.cast()),
                STATUS_SUCCESS
            );
            let mut status = EmulatedActivationStatus::ACTIVATE_NEUTRAL;
            let present = v3.emulated_is_device_present.expect("slot");
            assert_eq!(
                present(
                    this,
                    device.as_ptr().cast_mut(),
                    core::ptr::null_mut(),
                    &mut status
                ),
                TRUE
            );
            assert_eq!(status, EmulatedActivationStatus::FORCE_ACTIVATED);
            assert_eq!(
                present(
                    this,
                    core::ptr::null_mut(),
                    core::ptr::null_mut(),
                    core::ptr::null_mut()
                ),
                TRUE
            );
            assert_eq!(
                present(
                    this,
                    other.as_ptr().cast_mut(),
                    core::ptr::null_mut(),
                    core::ptr::null_mut()
                ),
                FALSE
            );
            assert_eq!((v3.emulated_is_disk_present.expect("slot"))(this, 1), TRUE);
            assert_eq!((v3.emulated_is_disk_present.expect("slot"))(this, 0), FALSE);
            (v3.emulated_release.expect("slot"))(this.cast());
        }
        assert_eq!(provider.references(), 0);

        let mut v2: EmulatedInterfaceV2 = obtain(&provider, 2);
        let this = (&mut v2 as *mut EmulatedInterfaceV2).cast::<c_void>();
        // SAFETY: as above.
        unsafe {
            let present = v2.emulated_is_device_present_version1.expect("slot");
            assert_eq!(
                present(this, device.as_ptr().cast_mut(), core::ptr::null_mut()),
                TRUE
            );
            assert_eq!((v2.emulated_is_disk_present.expect("slot"))(this, 1), TRUE);
        }

        let mut v1: EmulatedInterfaceV1 = obtain(&provider, 1);
        let this = (&mut v1 as *mut EmulatedInterfaceV1).cast::<c_void>();
        // SAFETY: as above.
        unsafe {
            let disk = v1.emulated_is_disk_present_version1.expect("slot");
            assert_eq!(
                disk(this, 9, 1, 9),
                TRUE,
                "v1 treats Target as the PV disk index"
            );
            assert_eq!(disk(this, 0, 2, 0), FALSE);
            (v1.emulated_release.expect("slot"))(this.cast());
        }
        assert_eq!(
            provider.references(),
            0,
            "release without acquire does not wrap"
        );
    }

    #[test]
    fn wrong_version_or_short_buffer_is_refused() {
        let provider = EmulatedProvider::new();
        let mut buffer = [0u64; 16];
        // SAFETY: 128 bytes, pointer-aligned.
        unsafe {
            assert_eq!(
                get_interface(&provider, 4, buffer.as_mut_ptr().cast(), 128),
                STATUS_NOT_SUPPORTED
            );
            assert_eq!(
                get_interface(&provider, 0, buffer.as_mut_ptr().cast(), 128),
                STATUS_NOT_SUPPORTED
            );
            assert_eq!(
                get_interface(&provider, 3, buffer.as_mut_ptr().cast(), 8),
                STATUS_BUFFER_OVERFLOW
            );
        }
    }

    #[test]
    fn invalid_text_matches_nothing() {
        let provider = provider_with_devices();
        let mut v3: EmulatedInterfaceV3 = obtain(&provider, 3);
        let this = (&mut v3 as *mut EmulatedInterfaceV3).cast::<c_void>();
        let bad = [0xFFu8, 0xFE, 0];
        // SAFETY: NUL-terminated buffer, our own interface.
        let present = unsafe {
            (v3.emulated_is_device_present.expect("slot"))(
                this,
                bad.as_ptr().cast::<c_char>().cast_mut(),
                core::ptr::null_mut(),
                core::ptr::null_mut(),
            )
        };
        assert_eq!(present, FALSE);
    }
}
