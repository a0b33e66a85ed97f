//! XENBUS_DEBUG V1 served as a C vtable over [`crate::debug::Debug`]; the variadic
//! `DebugPrintf` slot is an assembly shim (`xen_include::variadic_shim!`) forwarding to a
//! Rust implementation that renders the C format with `xen_include::variadic::vformat`.
//!
//! Callback handles are the registration ids (opaque, never dereferenced).

use core::ffi::{c_char, c_void};

use xen_include::interfaces::debug::{
    DebugCallback as CCallback, DebugFunction as CFunctionPtr, DebugInterfaceV1,
};
use xen_include::interfaces::{Interface, PInterface, VersionedInterface};
use xen_include::status::{
    NtStatus, STATUS_INVALID_PARAMETER, STATUS_NOT_SUPPORTED, STATUS_SUCCESS,
};
use xen_include::variadic::{vformat, SliceSink};

use super::references::acquire_release;
use super::References;
use crate::debug::{Debug, DebugEdge, DebugFunction};
use crate::log::LINE_MAX;

/// A C debug callback and its argument.
#[derive(Clone, Copy)]
pub struct CFunction {
    function: unsafe extern "C" fn(*mut c_void, u8),
    argument: usize,
}

impl DebugFunction for CFunction {
    fn address(&self) -> usize {
        self.function as usize
    }
    fn call(&self, crashing: bool) {
        // SAFETY: the function and argument were registered together by a driver whose
        // module is still loaded (checked by the caller, `Debug::run`).
        unsafe { (self.function)(self.argument as *mut c_void, crashing as u8) }
    }
}

/// The DEBUG provider.
pub struct DebugProvider<'a> {
    references: References,
    debug: Debug<CFunction>,
    edge: &'a (dyn DebugEdge + Sync),
}

impl<'a> DebugProvider<'a> {
    /// A provider logging through `edge`.
    pub fn new(edge: &'a (dyn DebugEdge + Sync)) -> Self {
        Self {
            references: References::new(),
            debug: Debug::new(),
            edge,
        }
    }

    /// References taken with Acquire.
    pub fn references(&self) -> u32 {
        self.references.get()
    }

    /// The core (VIRQ_DEBUG and the bug-check callback call `trigger`/`crash_dump`).
    pub fn debug(&self) -> &Debug<CFunction> {
        &self.debug
    }

    /// `VIRQ_DEBUG`: dump every registered callback.
    pub fn virq_debug(&self) -> usize {
        self.debug.trigger(self.edge, None).unwrap_or(0)
    }

    /// The bug-check callback: every callback with `Crashing = TRUE`.
    pub fn bug_check(&self) -> usize {
        self.debug.crash_dump(self.edge)
    }

    /// Register a callback of this driver itself (the FDO's `xenbus|FDO`): `callback`
    /// runs, like a C child's, through a C function of this image (so the loaded-module
    /// check applies to it too); the caller keeps the `'static` storage. The handle is
    /// the registration id, for [`Debug::deregister`].
    pub fn register_driver_callback(
        &self,
        prefix: &[u8],
        callback: &'static DriverCallback,
    ) -> Result<usize, NtStatus> {
        self.debug.register(
            prefix,
            CFunction {
                function: driver_trampoline,
                argument: callback as *const DriverCallback as usize,
            },
        )
    }

    /// `DebugPrintf` for a driver callback (only inside a callback, as for C callers).
    pub fn printf(&self, text: &str) -> Result<(), NtStatus> {
        self.debug.printf(self.edge, text)
    }
}

/// A debug callback of this driver: called with `Crashing`.
pub type DriverCallback = &'static (dyn Fn(bool) + Sync);

/// The address driver callbacks run at (inside this image).
pub fn driver_callback_address() -> usize {
    driver_trampoline as *const () as usize
}

unsafe extern "C" fn driver_trampoline(argument: *mut c_void, crashing: u8) {
    if argument.is_null() {
        return;
    }
    // SAFETY: `argument` is the `&'static DriverCallback` `register_driver_callback` put
    // there; its storage is 'static.
    let callback = unsafe { &*(argument as *const DriverCallback) };
    callback(crashing != 0);
}

/// Fill `dst` with version `version`'s vtable for `provider` (spec §2.1).
///
/// # Safety
/// `dst` must be valid for `size` bytes of writes; `provider` must outlive every use of
/// the filled interface.
pub unsafe fn get_interface(
    provider: &DebugProvider<'_>,
    version: u16,
    dst: *mut c_void,
    size: usize,
) -> NtStatus {
    let context = provider as *const DebugProvider<'_> as *const c_void;
    match version {
        // SAFETY: forwarded caller contract.
        1 => unsafe { super::copy_interface(V1, |t| &mut t.interface, context, dst, size) },
        _ => STATUS_NOT_SUPPORTED,
    }
}

const V1: DebugInterfaceV1 = DebugInterfaceV1 {
    interface: Interface::new(DebugInterfaceV1::SIZE as u16, 1, core::ptr::null_mut()),
    debug_acquire: Some(acquire),
    debug_release: Some(release),
    debug_register: Some(register),
    debug_printf: Some(printf_shim::xenbus_debug_printf),
    debug_trigger: Some(trigger),
    debug_deregister: Some(deregister),
};

/// # Safety
/// `interface` is one we filled (C caller contract).
unsafe fn provider<'a>(interface: PInterface) -> Option<&'a DebugProvider<'a>> {
    // SAFETY: forwarded caller contract.
    unsafe { super::context::<DebugProvider<'a>>(interface) }
}

acquire_release!(DebugProvider<'_>);

unsafe extern "C" fn register(
    interface: PInterface,
    prefix: *mut c_char,
    function: CFunctionPtr,
    argument: *mut c_void,
    callback: *mut *mut CCallback,
) -> NtStatus {
    // SAFETY: C caller passes the interface it obtained from us.
    let Some(p) = (unsafe { provider(interface) }) else {
        return STATUS_INVALID_PARAMETER;
    };
    let (Some(function), false) = (function, callback.is_null()) else {
        return STATUS_INVALID_PARAMETER;
    };
    let prefix: &[u8] = if prefix.is_null() {
        b""
    } else {
        // SAFETY: non-NULL Prefix is NUL-terminated (header contract).
        unsafe { core::ffi::CStr::from_ptr(prefix) }.to_bytes()
    };
    let f = CFunction {
        function,
        argument: argument as usize,
    };
    match p.debug.register(prefix, f) {
        Ok(id) => {
            // SAFETY: non-NULL out pointer (header contract).
            unsafe { *callback = id as *mut CCallback };
            STATUS_SUCCESS
        }
        Err(e) => e,
    }
}

unsafe extern "C" fn trigger(interface: PInterface, callback: *mut CCallback) {
    // SAFETY: C caller passes the interface it obtained from us.
    if let Some(p) = unsafe { provider(interface) } {
        let which = (!callback.is_null()).then_some(callback as usize);
        let _ = p.debug.trigger(p.edge, which);
    }
}

unsafe extern "C" fn deregister(interface: PInterface, callback: *mut CCallback) {
    // SAFETY: C caller passes the interface it obtained from us.
    if let Some(p) = unsafe { provider(interface) } {
        if p.debug.deregister(callback as usize).is_err() {
            p.edge
                .warning("XENBUS|DEBUG: Deregister of an unknown callback ignored");
        }
    }
}

/// The Rust side of the variadic `DebugPrintf` slot.
unsafe extern "C" fn printf_impl(interface: PInterface, format: *const c_char, va: *const u64) {
    // SAFETY: C caller passes the interface it obtained from us.
    let Some(p) = (unsafe { provider(interface) }) else {
        return;
    };
    if format.is_null() {
        return;
    }
    // SAFETY: Format is NUL-terminated (header contract).
    let format = unsafe { core::ffi::CStr::from_ptr(format) }.to_bytes();
    let mut buf = [0u8; LINE_MAX];
    let mut sink = SliceSink::new(&mut buf);
    // SAFETY: the caller passed the arguments its format names (C printf contract) and
    // the shim hands us their slots.
    let rendered = unsafe { vformat(format, va, &mut sink) };
    let text = sink.written();
    let text = core::str::from_utf8(text).unwrap_or("<non-UTF-8 text>");
    if rendered.is_err() {
        p.edge
            .warning("XENBUS|DEBUG: Printf with an unsupported format dropped");
        return;
    }
    let text = text.strip_suffix('\n').unwrap_or(text);
    let _ = p.debug.printf(p.edge, text);
}

mod printf_shim {
    use super::*;
    xen_include::variadic_shim! {
        C fn xenbus_debug_printf(interface: PInterface, format: *const c_char, ...) => printf_impl;
    }
}

#[cfg(test)]
#[allow(unsafe_op_in_unsafe_fn)]
mod tests {
    use super::*;
    use crate::debug::tests::Edge;
    use core::sync::atomic::{AtomicU32, Ordering};
    use xen_include::status::STATUS_BUFFER_OVERFLOW;

    struct Driver {
        table: DebugInterfaceV1,
        calls: AtomicU32,
        crashing_seen: AtomicU32,
    }

    unsafe extern "C" fn callback(arg: *mut c_void, crashing: u8) {
        let d = &*(arg as *const Driver);
        d.calls.fetch_add(1, Ordering::SeqCst);
        d.crashing_seen.fetch_add(crashing as u32, Ordering::SeqCst);
        let i = &d.table as *const DebugInterfaceV1 as PInterface;
        (d.table.debug_printf.unwrap())(
            i,
            c"rings: req %u rsp %04x name %s ptr %p\n".as_ptr(),
            17u32,
            0xbeefu32,
            c"vif0".as_ptr(),
            0x1234usize,
        );
    }

    #[test]
    fn a_c_driver_registers_triggers_and_prints_through_the_vtable() {
        let edge = Edge::default();
        edge.modules
            .lock()
            .unwrap()
            .push((0, usize::MAX, "xenvif.sys"));
        let p = DebugProvider::new(&edge);
        let mut driver = Driver {
            table: DebugInterfaceV1::EMPTY,
            calls: AtomicU32::new(0),
            crashing_seen: AtomicU32::new(0),
        };
        unsafe {
            let dst = &mut driver.table as *mut _ as *mut c_void;
            assert_eq!(get_interface(&p, 2, dst, 80), STATUS_NOT_SUPPORTED);
            assert_eq!(get_interface(&p, 1, dst, 79), STATUS_BUFFER_OVERFLOW);
            assert_eq!(get_interface(&p, 1, dst, 80), STATUS_SUCCESS);
        }
        assert_eq!(driver.table.interface.version, 1);
        assert!(driver.table.interface.interface_reference.is_none());
        let t = driver.table;
        let i = &mut driver.table as *mut DebugInterfaceV1 as PInterface;
        let arg = &driver as *const Driver as *mut c_void;
        unsafe {
            assert_eq!((t.debug_acquire.unwrap())(i), STATUS_SUCCESS);
            let mut cb: *mut CCallback = core::ptr::null_mut();
            assert_eq!(
                (t.debug_register.unwrap())(
                    i,
                    c"XENVIF|VIF".as_ptr() as *mut c_char,
                    Some(callback),
                    arg,
                    &mut cb
                ),
                STATUS_SUCCESS
            );
            assert!(!cb.is_null());
            assert_eq!(
                (t.debug_register.unwrap())(i, core::ptr::null_mut(), None, arg, &mut cb),
                STATUS_INVALID_PARAMETER
            );
            // Printf outside a callback: dropped.
            (t.debug_printf.unwrap())(i, c"outside %d".as_ptr(), 1i32);
            (t.debug_trigger.unwrap())(i, cb);
            (t.debug_trigger.unwrap())(i, core::ptr::null_mut());
            assert_eq!(driver.calls.load(Ordering::SeqCst), 2);
            assert_eq!(p.virq_debug(), 1);
            assert_eq!(p.bug_check(), 1);
            assert_eq!(driver.calls.load(Ordering::SeqCst), 4);
            assert_eq!(driver.crashing_seen.load(Ordering::SeqCst), 1);
            let lines = edge.lines.lock().unwrap().clone();
            assert!(lines[0].starts_with("W XENBUS|DEBUG: Printf outside"));
            assert_eq!(
                lines[2],
                "I XENVIF|VIF: rings: req 17 rsp beef name vif0 ptr 0000000000001234"
            );
            (t.debug_deregister.unwrap())(i, cb);
            (t.debug_trigger.unwrap())(i, core::ptr::null_mut());
            assert_eq!(driver.calls.load(Ordering::SeqCst), 4);
            assert_eq!(p.debug().registered(), 0);
            (t.debug_release.unwrap())(i);
            assert_eq!(p.references(), 0);
        }
    }
}
