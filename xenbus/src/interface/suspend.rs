//! XENBUS_SUSPEND V1 served as a C vtable over [`crate::suspend::Suspend`].

use alloc::sync::Arc;
use core::ffi::c_void;

use xen_include::interfaces::suspend::{
    SuspendCallback as CSuspendCallback, SuspendCallbackType, SuspendFunction, SuspendInterfaceV1,
};
use xen_include::interfaces::{Interface, PInterface, VersionedInterface};
use xen_include::status::{
    NtStatus, STATUS_INVALID_PARAMETER, STATUS_NOT_SUPPORTED, STATUS_SUCCESS,
};

use crate::suspend::{Phase, Suspend, SuspendCallback};

/// A C child's callback: `function(argument)`.
struct CCallback {
    function: unsafe extern "C" fn(*mut c_void),
    argument: usize,
}

impl SuspendCallback for CCallback {
    fn call(&self) {
        // SAFETY: the child registered this function with this argument and keeps both
        // valid until it deregisters (XENBUS_SUSPEND contract).
        unsafe { (self.function)(self.argument as *mut c_void) }
    }

    /// Upstream's form: `module + offset (argument)`, or the bare address when no loaded
    /// module contains the function.
    fn describe(
        &self,
        api: &dyn xen_include::api::XenApi,
        out: &mut dyn core::fmt::Write,
    ) -> core::fmt::Result {
        let function = self.function as usize;
        match api.module_lookup(function) {
            Some((module, offset)) => write!(
                out,
                "{} + {offset:#x} ({:#x})",
                module.as_bytes().escape_ascii(),
                self.argument
            ),
            None => write!(out, "{function:#x} ({:#x})", self.argument),
        }
    }
}

/// The SUSPEND provider.
pub struct SuspendProvider {
    suspend: &'static Suspend,
    references: super::References,
}

impl SuspendProvider {
    /// A provider serving `suspend`.
    pub fn new(suspend: &'static Suspend) -> Self {
        Self {
            suspend,
            references: super::References::new(),
        }
    }

    /// References taken with `Acquire`.
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
    provider: &SuspendProvider,
    version: u16,
    dst: *mut c_void,
    size: usize,
) -> NtStatus {
    let context = provider as *const SuspendProvider as *const c_void;
    match version {
        // SAFETY: forwarded caller contract.
        1 => unsafe { super::copy_interface(V1, |t| &mut t.interface, context, dst, size) },
        _ => STATUS_NOT_SUPPORTED,
    }
}

const V1: SuspendInterfaceV1 = SuspendInterfaceV1 {
    interface: Interface::new(SuspendInterfaceV1::SIZE as u16, 1, core::ptr::null_mut()),
    acquire: Some(acquire),
    release: Some(release),
    register: Some(register),
    deregister: Some(deregister),
    trigger: Some(trigger),
    get_count: Some(get_count),
};

/// # Safety
/// `interface` is one we filled (C caller contract).
unsafe fn provider<'a>(interface: PInterface) -> Option<&'a SuspendProvider> {
    // SAFETY: forwarded caller contract.
    unsafe { super::context::<SuspendProvider>(interface) }
}

unsafe extern "C" fn acquire(interface: PInterface) -> NtStatus {
    // SAFETY: C caller passes the interface it obtained from us.
    match unsafe { provider(interface) } {
        Some(p) => {
            p.references.acquire();
            STATUS_SUCCESS
        }
        None => STATUS_INVALID_PARAMETER,
    }
}

unsafe extern "C" fn release(interface: PInterface) {
    // SAFETY: C caller passes the interface it obtained from us.
    if let Some(p) = unsafe { provider(interface) } {
        let _ = p.references.release();
    }
}

unsafe extern "C" fn register(
    interface: PInterface,
    type_: SuspendCallbackType,
    function: SuspendFunction,
    argument: *mut c_void,
    callback: *mut *mut CSuspendCallback,
) -> NtStatus {
    // SAFETY: C caller passes the interface it obtained from us.
    let Some(p) = (unsafe { provider(interface) }) else {
        return STATUS_INVALID_PARAMETER;
    };
    let phase = match type_ {
        SuspendCallbackType::EARLY => Phase::Early,
        SuspendCallbackType::LATE => Phase::Late,
        _ => return STATUS_INVALID_PARAMETER,
    };
    let (Some(function), false) = (function, callback.is_null()) else {
        return STATUS_INVALID_PARAMETER;
    };
    let c = Arc::new(CCallback {
        function,
        argument: argument as usize,
    });
    match p.suspend.register(phase, c) {
        Ok(handle) => {
            // SAFETY: non-NULL out pointer (header contract).
            unsafe { *callback = handle as *mut CSuspendCallback };
            STATUS_SUCCESS
        }
        Err(e) => e,
    }
}

unsafe extern "C" fn deregister(interface: PInterface, callback: *mut CSuspendCallback) {
    // SAFETY: C caller passes the interface it obtained from us.
    if let Some(p) = unsafe { provider(interface) } {
        let _ = p.suspend.deregister(callback as usize);
    }
}

unsafe extern "C" fn trigger(interface: PInterface) -> NtStatus {
    // SAFETY: C caller passes the interface it obtained from us.
    match unsafe { provider(interface) } {
        Some(p) => p.suspend.trigger(),
        None => STATUS_INVALID_PARAMETER,
    }
}

unsafe extern "C" fn get_count(interface: PInterface) -> u32 {
    // SAFETY: C caller passes the interface it obtained from us.
    unsafe { provider(interface) }.map_or(0, |p| p.suspend.count())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{TestApi, TestOs};
    use std::sync::Mutex;
    use xen_include::status::{STATUS_BUFFER_OVERFLOW, STATUS_CANCELLED};

    static ORDER: Mutex<Vec<(u8, usize)>> = Mutex::new(Vec::new());

    unsafe extern "C" fn child_callback(argument: *mut c_void) {
        // The test's record, not the driver's (the EARLY call runs at HIGH_LEVEL).
        let _host = common::irql::model::HostSide::enter();
        ORDER.lock().unwrap().push((0, argument as usize));
    }

    #[test]
    fn a_c_child_registers_triggers_and_counts() {
        let api = TestApi::leak();
        let os = TestOs::leak(1);
        let suspend: &'static Suspend = Box::leak(Box::new(Suspend::new(api, os)));
        let p = SuspendProvider::new(suspend);
        let mut t = SuspendInterfaceV1::EMPTY;
        let dst = &mut t as *mut _ as *mut c_void;
        // SAFETY: `dst` is the live, writable vtable `t` of the size passed; the calls go
        // through the function pointers get_interface filled in, as a C child's would.
        unsafe {
            assert_eq!(get_interface(&p, 2, dst, 80), STATUS_NOT_SUPPORTED);
            assert_eq!(get_interface(&p, 1, dst, 79), STATUS_BUFFER_OVERFLOW);
            assert_eq!(get_interface(&p, 1, dst, 80), STATUS_SUCCESS);
            let i = &mut t as *mut SuspendInterfaceV1 as PInterface;
            assert_eq!((t.acquire.unwrap())(i), STATUS_SUCCESS);
            let mut early = core::ptr::null_mut();
            let mut late = core::ptr::null_mut();
            let reg = t.register.unwrap();
            assert_eq!(
                reg(
                    i,
                    SuspendCallbackType::LATE,
                    Some(child_callback),
                    2 as _,
                    &mut late
                ),
                STATUS_SUCCESS
            );
            assert_eq!(
                reg(
                    i,
                    SuspendCallbackType::EARLY,
                    Some(child_callback),
                    1 as _,
                    &mut early
                ),
                STATUS_SUCCESS
            );
            let mut bad = core::ptr::null_mut();
            assert_eq!(
                reg(
                    i,
                    SuspendCallbackType::INVALID,
                    Some(child_callback),
                    0 as _,
                    &mut bad
                ),
                STATUS_INVALID_PARAMETER
            );
            assert_eq!(
                reg(
                    i,
                    SuspendCallbackType(9),
                    Some(child_callback),
                    0 as _,
                    &mut bad
                ),
                STATUS_INVALID_PARAMETER
            );
            assert_eq!(
                reg(i, SuspendCallbackType::EARLY, None, 0 as _, &mut bad),
                STATUS_INVALID_PARAMETER
            );
            // The debug dump shows each C callback as function (argument), upstream's
            // form when no loaded module contains the function.
            let mut lines = Vec::new();
            suspend.debug_dump(&mut |l| lines.push(l.to_string()));
            let function = child_callback as unsafe extern "C" fn(*mut c_void) as usize;
            assert_eq!(
                lines[1..],
                [
                    format!("SUSPEND: EARLY {function:#x} (0x1)"),
                    format!("SUSPEND: LATE {function:#x} (0x2)")
                ]
            );
            assert_eq!((t.get_count.unwrap())(i), 0);
            assert_eq!((t.trigger.unwrap())(i), STATUS_SUCCESS);
            assert_eq!((t.get_count.unwrap())(i), 1);
            assert_eq!(
                *ORDER.lock().unwrap(),
                [(0, 1), (0, 2)],
                "early before late"
            );
            *api.shutdown_error.lock().unwrap() = Some(STATUS_CANCELLED);
            assert_eq!((t.trigger.unwrap())(i), STATUS_SUCCESS);
            assert_eq!((t.get_count.unwrap())(i), 1, "cancelled: unchanged");
            (t.deregister.unwrap())(i, early);
            (t.deregister.unwrap())(i, late);
            assert_eq!(suspend.registered(), 0);
            (t.release.unwrap())(i);
            assert_eq!(p.references(), 0);
        }
    }
}
