//! XENBUS_SHARED_INFO V2–V4 served as C vtables over [`crate::shared_info::SharedInfo`].

use core::ffi::c_void;

use xen_include::interfaces::shared_info::{
    SharedInfoEvent, SharedInfoInterfaceV2, SharedInfoInterfaceV3, SharedInfoInterfaceV4,
};
use xen_include::interfaces::{
    Boolean, Interface, LargeInteger, PInterface, VersionedInterface, FALSE, TRUE,
};
use xen_include::status::{
    NtStatus, STATUS_INVALID_PARAMETER, STATUS_NOT_SUPPORTED, STATUS_SUCCESS,
};

use crate::shared_info::SharedInfo;

/// The SHARED_INFO provider: the first Acquire maps, the last Release unmaps.
pub struct SharedInfoProvider {
    shared_info: &'static SharedInfo,
    references: super::References,
}

impl SharedInfoProvider {
    /// A provider serving `shared_info`.
    pub fn new(shared_info: &'static SharedInfo) -> Self {
        Self {
            shared_info,
            references: super::References::new(),
        }
    }

    /// References taken with Acquire (child drivers and the FDO).
    pub fn references(&self) -> u32 {
        self.references.get()
    }

    /// Take a reference (mapping on the first).
    pub fn acquire(&self) -> NtStatus {
        if self.references.acquire() == 1 {
            if let Err(e) = self.shared_info.acquire() {
                let _ = self.references.release();
                return e;
            }
        }
        STATUS_SUCCESS
    }

    /// Drop a reference (unmapping on the last).
    pub fn release(&self) {
        if self.references.release() == Some(0) {
            self.shared_info.release();
        }
    }
}

/// Fill `dst` with version `version`'s vtable for `provider` (spec §2.1).
///
/// # Safety
/// `dst` must be valid for `size` bytes of writes; `provider` must outlive every use of
/// the filled interface.
pub unsafe fn get_interface(
    provider: &SharedInfoProvider,
    version: u16,
    dst: *mut c_void,
    size: usize,
) -> NtStatus {
    let context = provider as *const SharedInfoProvider as *const c_void;
    // SAFETY (all arms): forwarded caller contract.
    match version {
        2 => unsafe { super::copy_interface(V2, |t| &mut t.interface, context, dst, size) },
        3 => unsafe { super::copy_interface(V3, |t| &mut t.interface, context, dst, size) },
        4 => unsafe { super::copy_interface(V4, |t| &mut t.interface, context, dst, size) },
        _ => STATUS_NOT_SUPPORTED,
    }
}

const V2: SharedInfoInterfaceV2 = SharedInfoInterfaceV2 {
    interface: Interface::new(SharedInfoInterfaceV2::SIZE as u16, 2, core::ptr::null_mut()),
    shared_info_acquire: Some(acquire),
    shared_info_release: Some(release),
    shared_info_upcall_pending: Some(upcall_pending),
    shared_info_evtchn_poll: Some(evtchn_poll),
    shared_info_evtchn_ack: Some(evtchn_ack),
    shared_info_evtchn_mask: Some(evtchn_mask),
    shared_info_evtchn_unmask: Some(evtchn_unmask),
    shared_info_get_time_version2: Some(get_time_version2),
};

const V3: SharedInfoInterfaceV3 = SharedInfoInterfaceV3 {
    interface: Interface::new(SharedInfoInterfaceV3::SIZE as u16, 3, core::ptr::null_mut()),
    shared_info_acquire: Some(acquire),
    shared_info_release: Some(release),
    shared_info_upcall_pending: Some(upcall_pending),
    shared_info_evtchn_poll: Some(evtchn_poll),
    shared_info_evtchn_ack: Some(evtchn_ack),
    shared_info_evtchn_mask: Some(evtchn_mask),
    shared_info_evtchn_unmask: Some(evtchn_unmask),
    shared_info_get_time: Some(get_time),
};

const V4: SharedInfoInterfaceV4 = SharedInfoInterfaceV4 {
    interface: Interface::new(SharedInfoInterfaceV4::SIZE as u16, 4, core::ptr::null_mut()),
    shared_info_acquire: Some(acquire),
    shared_info_release: Some(release),
    shared_info_upcall_supported: Some(upcall_supported),
    shared_info_upcall_pending: Some(upcall_pending),
    shared_info_evtchn_poll: Some(evtchn_poll),
    shared_info_evtchn_ack: Some(evtchn_ack),
    shared_info_evtchn_mask: Some(evtchn_mask),
    shared_info_evtchn_unmask: Some(evtchn_unmask),
    shared_info_get_time: Some(get_time),
};

/// # Safety
/// `interface` is one we filled (C caller contract).
unsafe fn provider<'a>(interface: PInterface) -> Option<&'a SharedInfoProvider> {
    // SAFETY: forwarded caller contract.
    unsafe { super::context::<SharedInfoProvider>(interface) }
}

fn boolean(b: bool) -> Boolean {
    if b {
        TRUE
    } else {
        FALSE
    }
}

unsafe extern "C" fn acquire(interface: PInterface) -> NtStatus {
    // SAFETY: C caller passes the interface it obtained from us.
    unsafe { provider(interface) }.map_or(STATUS_INVALID_PARAMETER, |p| p.acquire())
}

unsafe extern "C" fn release(interface: PInterface) {
    // SAFETY: C caller passes the interface it obtained from us.
    if let Some(p) = unsafe { provider(interface) } {
        p.release();
    }
}

unsafe extern "C" fn upcall_supported(interface: PInterface, index: u32) -> Boolean {
    // SAFETY: C caller passes the interface it obtained from us.
    boolean(unsafe { provider(interface) }.is_some_and(|p| p.shared_info.upcall_supported(index)))
}

unsafe extern "C" fn upcall_pending(interface: PInterface, index: u32) -> Boolean {
    // SAFETY: C caller passes the interface it obtained from us.
    boolean(unsafe { provider(interface) }.is_some_and(|p| p.shared_info.upcall_pending(index)))
}

unsafe extern "C" fn evtchn_poll(
    interface: PInterface,
    index: u32,
    event: SharedInfoEvent,
    argument: *mut c_void,
) -> Boolean {
    // SAFETY: C caller passes the interface it obtained from us.
    let (Some(p), Some(event)) = (unsafe { provider(interface) }, event) else {
        return FALSE;
    };
    boolean(p.shared_info.evtchn_poll(index, &mut |port| {
        // SAFETY: the caller's event function with its own argument (interface contract).
        unsafe { event(argument, port) != 0 }
    }))
}

unsafe extern "C" fn evtchn_ack(interface: PInterface, port: u32) {
    // SAFETY: C caller passes the interface it obtained from us.
    if let Some(p) = unsafe { provider(interface) } {
        p.shared_info.evtchn_ack(port);
    }
}

unsafe extern "C" fn evtchn_mask(interface: PInterface, port: u32) {
    // SAFETY: C caller passes the interface it obtained from us.
    if let Some(p) = unsafe { provider(interface) } {
        p.shared_info.evtchn_mask(port);
    }
}

unsafe extern "C" fn evtchn_unmask(interface: PInterface, port: u32) -> Boolean {
    // SAFETY: C caller passes the interface it obtained from us.
    boolean(unsafe { provider(interface) }.is_some_and(|p| p.shared_info.evtchn_unmask(port)))
}

unsafe extern "C" fn get_time_version2(interface: PInterface) -> LargeInteger {
    // SAFETY: C caller passes the interface it obtained from us.
    let time = unsafe { provider(interface) }
        .and_then(|p| p.shared_info.get_time())
        .map_or(0, |(t, _)| t);
    LargeInteger { quad_part: time }
}

unsafe extern "C" fn get_time(interface: PInterface, time: *mut LargeInteger, local: *mut Boolean) {
    // SAFETY: C caller passes the interface it obtained from us.
    let (t, l) = unsafe { provider(interface) }
        .and_then(|p| p.shared_info.get_time())
        .unwrap_or((0, false));
    if !time.is_null() {
        // SAFETY: non-NULL out pointer (header contract).
        unsafe { *time = LargeInteger { quad_part: t } };
    }
    if !local.is_null() {
        // SAFETY: non-NULL out pointer (header contract).
        unsafe { *local = boolean(l) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::Sim;
    use xen_include::api::XenApi;
    use xen_include::status::STATUS_BUFFER_OVERFLOW;

    unsafe extern "C" fn collect(argument: *mut c_void, port: u32) -> Boolean {
        unsafe { (*(argument as *mut Vec<u32>)).push(port) };
        TRUE
    }

    #[test]
    fn every_version_through_its_vtable() {
        let s = Sim::new(1);
        let si: &'static SharedInfo = Box::leak(Box::new(SharedInfo::new(s.xen, &*s.m.guest)));
        let p: &'static SharedInfoProvider = Box::leak(Box::new(SharedInfoProvider::new(si)));
        let mut v2 = SharedInfoInterfaceV2::EMPTY;
        let mut v3 = SharedInfoInterfaceV3::EMPTY;
        let mut v4 = SharedInfoInterfaceV4::EMPTY;
        unsafe {
            assert_eq!(
                get_interface(p, 1, &mut v2 as *mut _ as _, 200),
                STATUS_NOT_SUPPORTED
            );
            assert_eq!(
                get_interface(p, 5, &mut v2 as *mut _ as _, 200),
                STATUS_NOT_SUPPORTED
            );
            assert_eq!(
                get_interface(p, 4, &mut v4 as *mut _ as _, 96),
                STATUS_BUFFER_OVERFLOW
            );
            assert_eq!(
                get_interface(p, 2, &mut v2 as *mut _ as _, 96),
                STATUS_SUCCESS
            );
            assert_eq!(
                get_interface(p, 3, &mut v3 as *mut _ as _, 96),
                STATUS_SUCCESS
            );
            assert_eq!(
                get_interface(p, 4, &mut v4 as *mut _ as _, 104),
                STATUS_SUCCESS
            );
            let i2 = &mut v2 as *mut _ as PInterface;
            let i3 = &mut v3 as *mut _ as PInterface;
            let i4 = &mut v4 as *mut _ as PInterface;
            assert_eq!((v2.shared_info_acquire.unwrap())(i2), STATUS_SUCCESS);
            assert_eq!((v4.shared_info_acquire.unwrap())(i4), STATUS_SUCCESS);
            assert!(si.is_mapped());
            // An event through V4's poll, acked and masked through V2/V3.
            let port = s.xen.event_channel_allocate_unbound(0).unwrap();
            let dom0 =
                s.m.hv
                    .backend_bind_interdomain(0, s.m.hv.domid(), port)
                    .unwrap();
            (v3.shared_info_evtchn_ack.unwrap())(i3, port);
            assert_eq!((v4.shared_info_evtchn_unmask.unwrap())(i4, port), FALSE);
            s.m.hv.backend_send(0, dom0).unwrap();
            assert_eq!((v4.shared_info_upcall_pending.unwrap())(i4, 0), TRUE);
            let mut seen: Vec<u32> = Vec::new();
            let done = (v4.shared_info_evtchn_poll.unwrap())(
                i4,
                0,
                Some(collect),
                &mut seen as *mut Vec<u32> as *mut c_void,
            );
            assert_eq!((done, seen.as_slice()), (TRUE, &[port][..]));
            (v2.shared_info_evtchn_ack.unwrap())(i2, port);
            (v2.shared_info_evtchn_mask.unwrap())(i2, port);
            assert!(si.evtchn_is_masked(port));
            assert!(!si.evtchn_is_pending(port));
            // Time: V2 returns it, V3/V4 fill Time and Local.
            let t2 = (v2.shared_info_get_time_version2.unwrap())(i2).quad_part;
            let mut t = LargeInteger::default();
            let mut local: Boolean = 7;
            (v3.shared_info_get_time.unwrap())(i3, &mut t, &mut local);
            assert!(t.quad_part >= t2 && t2 > 0);
            assert_eq!(local, boolean(!s.xen.system_real_time_is_universal()));
            // Legacy vcpu_info only (no registration on this machine): no per-CPU upcall.
            assert_eq!((v4.shared_info_upcall_supported.unwrap())(i4, 0), FALSE);
            (v2.shared_info_release.unwrap())(i2);
            assert!(si.is_mapped(), "one reference left");
            (v4.shared_info_release.unwrap())(i4);
            assert!(!si.is_mapped());
        }
    }
}
