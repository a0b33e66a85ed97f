//! XENBUS_EVTCHN V5–V9 served as C vtables over [`crate::evtchn::Evtchn`].
//!
//! `EvtchnOpen` is C-variadic: two assembly entries ([`xen_include::variadic_shim!`]) read
//! the tail as versions 5–8 (`VIRQ: Index`) or 9 (`VIRQ: Index, Group, Number`) define it.

use alloc::sync::Arc;
use core::ffi::c_void;

use xen_include::interfaces::evtchn::{
    EvtchnChannel, EvtchnInterfaceV5, EvtchnInterfaceV6, EvtchnInterfaceV7, EvtchnInterfaceV8,
    EvtchnInterfaceV9, EvtchnOpenArgs, EvtchnType,
};
use xen_include::interfaces::{
    Boolean, Interface, KServiceRoutine, LargeInteger, PInterface, VersionedInterface, FALSE, TRUE,
};
use xen_include::status::{
    NtStatus, STATUS_INVALID_PARAMETER, STATUS_NOT_SUPPORTED, STATUS_SUCCESS,
};
use xen_include::variadic::VaList;

use crate::evtchn::{ChannelHandle, Evtchn, EvtchnCallback, Kind, Timeout};

/// A C child's `PKSERVICE_ROUTINE` and its argument.
struct CCallback {
    function:
        unsafe extern "C" fn(*mut xen_include::interfaces::KInterrupt, *mut c_void) -> Boolean,
    argument: usize,
}

impl EvtchnCallback for CCallback {
    fn call(&self) -> bool {
        // SAFETY: the child opened the channel with this routine and argument and keeps
        // both valid until Close (XENBUS_EVTCHN contract); Close returns only once no call
        // is running and none can start (Evtchn::close, bounded wait with a warning); the
        // interrupt is always NULL.
        unsafe { (self.function)(core::ptr::null_mut(), self.argument as *mut c_void) != 0 }
    }
}

/// The EVTCHN provider.
pub struct EvtchnProvider {
    evtchn: &'static Evtchn,
    references: super::References,
}

impl EvtchnProvider {
    /// A provider serving `evtchn`.
    pub fn new(evtchn: &'static Evtchn) -> Self {
        Self {
            evtchn,
            references: super::References::new(),
        }
    }

    /// References taken with Acquire (child drivers and the FDO).
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
    provider: &EvtchnProvider,
    version: u16,
    dst: *mut c_void,
    size: usize,
) -> NtStatus {
    let context = provider as *const EvtchnProvider as *const c_void;
    // SAFETY (all arms): forwarded caller contract.
    match version {
        5 => unsafe { super::copy_interface(V5, |t| &mut t.interface, context, dst, size) },
        6 => unsafe { super::copy_interface(V6, |t| &mut t.interface, context, dst, size) },
        7 => unsafe { super::copy_interface(V7, |t| &mut t.interface, context, dst, size) },
        8 => unsafe { super::copy_interface(V8, |t| &mut t.interface, context, dst, size) },
        9 => unsafe { super::copy_interface(V9, |t| &mut t.interface, context, dst, size) },
        _ => STATUS_NOT_SUPPORTED,
    }
}

const V5: EvtchnInterfaceV5 = EvtchnInterfaceV5 {
    interface: Interface::new(EvtchnInterfaceV5::SIZE as u16, 5, core::ptr::null_mut()),
    evtchn_acquire: Some(acquire),
    evtchn_release: Some(release),
    evtchn_open: Some(evtchn_open_v8_entry),
    evtchn_bind: Some(bind),
    evtchn_unmask_version4: Some(unmask_version4),
    evtchn_send_version1: Some(send),
    evtchn_trigger: Some(trigger),
    evtchn_wait_version5: Some(wait_version5),
    evtchn_get_port: Some(get_port),
    evtchn_close: Some(close),
};

const V6: EvtchnInterfaceV6 = EvtchnInterfaceV6 {
    interface: Interface::new(EvtchnInterfaceV6::SIZE as u16, 6, core::ptr::null_mut()),
    evtchn_acquire: Some(acquire),
    evtchn_release: Some(release),
    evtchn_open: Some(evtchn_open_v8_entry),
    evtchn_bind: Some(bind),
    evtchn_unmask_version4: Some(unmask_version4),
    evtchn_send: Some(send),
    evtchn_trigger: Some(trigger),
    evtchn_wait_version5: Some(wait_version5),
    evtchn_get_port: Some(get_port),
    evtchn_close: Some(close),
};

const V7: EvtchnInterfaceV7 = EvtchnInterfaceV7 {
    interface: Interface::new(EvtchnInterfaceV7::SIZE as u16, 7, core::ptr::null_mut()),
    evtchn_acquire: Some(acquire),
    evtchn_release: Some(release),
    evtchn_open: Some(evtchn_open_v8_entry),
    evtchn_bind: Some(bind),
    evtchn_unmask_version4: Some(unmask_version4),
    evtchn_send: Some(send),
    evtchn_trigger: Some(trigger),
    evtchn_get_count: Some(get_count),
    evtchn_wait: Some(wait),
    evtchn_get_port: Some(get_port),
    evtchn_close: Some(close),
};

const V8: EvtchnInterfaceV8 = EvtchnInterfaceV8 {
    interface: Interface::new(EvtchnInterfaceV8::SIZE as u16, 8, core::ptr::null_mut()),
    evtchn_acquire: Some(acquire),
    evtchn_release: Some(release),
    evtchn_open: Some(evtchn_open_v8_entry),
    evtchn_bind: Some(bind),
    evtchn_unmask: Some(unmask),
    evtchn_send: Some(send),
    evtchn_trigger: Some(trigger),
    evtchn_get_count: Some(get_count),
    evtchn_wait: Some(wait),
    evtchn_get_port: Some(get_port),
    evtchn_close: Some(close),
};

const V9: EvtchnInterfaceV9 = EvtchnInterfaceV9 {
    interface: Interface::new(EvtchnInterfaceV9::SIZE as u16, 9, core::ptr::null_mut()),
    evtchn_acquire: Some(acquire),
    evtchn_release: Some(release),
    evtchn_open: Some(evtchn_open_v9_entry),
    evtchn_bind: Some(bind),
    evtchn_unmask: Some(unmask),
    evtchn_send: Some(send),
    evtchn_trigger: Some(trigger),
    evtchn_get_count: Some(get_count),
    evtchn_wait: Some(wait),
    evtchn_get_port: Some(get_port),
    evtchn_close: Some(close),
};

/// # Safety
/// `interface` is one we filled (C caller contract).
unsafe fn provider<'a>(interface: PInterface) -> Option<&'a EvtchnProvider> {
    // SAFETY: forwarded caller contract.
    unsafe { super::context::<EvtchnProvider>(interface) }
}

fn handle(channel: *mut EvtchnChannel) -> ChannelHandle {
    channel as usize
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
        if p.references.release() == Some(0) && p.evtchn.open_channels() != 0 {
            error!(
                p.evtchn.api(),
                "EVTCHN: OUTSTANDING EVENT CHANNELS at last Release"
            );
        }
    }
}

xen_include::variadic_shim! {
    C fn evtchn_open_v8_entry(
        interface: PInterface,
        type_: EvtchnType,
        function: KServiceRoutine,
        argument: *mut c_void,
        ...
    ) -> *mut EvtchnChannel => open_v8;
}

xen_include::variadic_shim! {
    C fn evtchn_open_v9_entry(
        interface: PInterface,
        type_: EvtchnType,
        function: KServiceRoutine,
        argument: *mut c_void,
        ...
    ) -> *mut EvtchnChannel => open_v9;
}

unsafe extern "C" fn open_v8(
    interface: PInterface,
    type_: EvtchnType,
    function: KServiceRoutine,
    argument: *mut c_void,
    va: *const u64,
) -> *mut EvtchnChannel {
    // SAFETY: forwarded C caller contract.
    unsafe { open(interface, type_, function, argument, va, 8) }
}

unsafe extern "C" fn open_v9(
    interface: PInterface,
    type_: EvtchnType,
    function: KServiceRoutine,
    argument: *mut c_void,
    va: *const u64,
) -> *mut EvtchnChannel {
    // SAFETY: forwarded C caller contract.
    unsafe { open(interface, type_, function, argument, va, 9) }
}

/// `EvtchnOpen` after the variadic shim.
///
/// # Safety
/// C caller contract: our interface, and the variadic tail `type_` promises for `version`.
unsafe fn open(
    interface: PInterface,
    type_: EvtchnType,
    function: KServiceRoutine,
    argument: *mut c_void,
    va: *const u64,
    version: u16,
) -> *mut EvtchnChannel {
    // SAFETY: C caller passes the interface it obtained from us.
    let (Some(p), Some(function)) = (unsafe { provider(interface) }, function) else {
        return core::ptr::null_mut();
    };
    let Some(slots) = EvtchnOpenArgs::slot_count(type_, version) else {
        error!(p.evtchn.api(), "EVTCHN: Open of unknown type {}", type_.0);
        return core::ptr::null_mut();
    };
    // SAFETY: the caller passed the tail its type promises (that many slots at `va`).
    let mut list = unsafe { VaList::new(va, slots) };
    let Some(args) = EvtchnOpenArgs::read(type_, version, &mut list) else {
        return core::ptr::null_mut();
    };
    let (kind, mask) = match args {
        EvtchnOpenArgs::Fixed { local_port, mask } => (Kind::Fixed { port: local_port }, mask),
        EvtchnOpenArgs::Unbound {
            remote_domain,
            mask,
        } => (Kind::Unbound { remote_domain }, mask),
        EvtchnOpenArgs::InterDomain {
            remote_domain,
            remote_port,
            mask,
        } => (
            Kind::InterDomain {
                remote_domain,
                remote_port,
            },
            mask,
        ),
        EvtchnOpenArgs::Virq { index, processor } => {
            let cpu = match processor {
                None | Some((0, _)) => u32::from(processor.map_or(0, |(_, n)| n)),
                Some((group, _)) => {
                    error!(
                        p.evtchn.api(),
                        "EVTCHN: processor group {group} not supported"
                    );
                    return core::ptr::null_mut();
                }
            };
            (Kind::Virq { index, cpu }, false)
        }
    };
    let callback = Arc::new(CCallback {
        function,
        argument: argument as usize,
    });
    match p.evtchn.open(kind, mask, callback) {
        Ok(h) => h as *mut EvtchnChannel,
        Err(e) => {
            error!(p.evtchn.api(), "EVTCHN: Open failed ({e:08X})");
            core::ptr::null_mut()
        }
    }
}

unsafe extern "C" fn bind(
    interface: PInterface,
    channel: *mut EvtchnChannel,
    group: u16,
    number: u8,
) -> NtStatus {
    // SAFETY: C caller passes the interface it obtained from us.
    let Some(p) = (unsafe { provider(interface) }) else {
        return STATUS_INVALID_PARAMETER;
    };
    if group != 0 {
        return STATUS_NOT_SUPPORTED;
    }
    match p.evtchn.bind(handle(channel), u32::from(number)) {
        Ok(()) => STATUS_SUCCESS,
        Err(e) => e,
    }
}

unsafe extern "C" fn unmask_version4(
    interface: PInterface,
    channel: *mut EvtchnChannel,
    in_callback: Boolean,
) {
    // SAFETY: C caller passes the interface it obtained from us.
    if let Some(p) = unsafe { provider(interface) } {
        let _ = p.evtchn.unmask(handle(channel), in_callback != 0, true);
    }
}

unsafe extern "C" fn unmask(
    interface: PInterface,
    channel: *mut EvtchnChannel,
    in_callback: Boolean,
    force: Boolean,
) -> Boolean {
    // SAFETY: C caller passes the interface it obtained from us.
    let pending = unsafe { provider(interface) }.is_some_and(|p| {
        p.evtchn
            .unmask(handle(channel), in_callback != 0, force != 0)
    });
    if pending {
        TRUE
    } else {
        FALSE
    }
}

unsafe extern "C" fn send(interface: PInterface, channel: *mut EvtchnChannel) {
    // SAFETY: C caller passes the interface it obtained from us.
    if let Some(p) = unsafe { provider(interface) } {
        p.evtchn.send(handle(channel));
    }
}

unsafe extern "C" fn trigger(interface: PInterface, channel: *mut EvtchnChannel) {
    // SAFETY: C caller passes the interface it obtained from us.
    if let Some(p) = unsafe { provider(interface) } {
        p.evtchn.trigger(handle(channel));
    }
}

unsafe extern "C" fn get_count(interface: PInterface, channel: *mut EvtchnChannel) -> u32 {
    // SAFETY: C caller passes the interface it obtained from us.
    unsafe { provider(interface) }
        .and_then(|p| p.evtchn.channel(handle(channel)))
        .map_or(0, |c| c.count())
}

/// # Safety
/// `timeout` is NULL or points at a readable LARGE_INTEGER (header contract).
unsafe fn timeout(timeout: *mut LargeInteger) -> Timeout {
    if timeout.is_null() {
        Timeout::Forever
    } else {
        // SAFETY: non-NULL, readable (caller contract).
        Timeout::Value(unsafe { (*timeout).quad_part })
    }
}

unsafe extern "C" fn wait(
    interface: PInterface,
    channel: *mut EvtchnChannel,
    count: u32,
    time: *mut LargeInteger,
) -> NtStatus {
    // SAFETY: C caller passes the interface it obtained from us.
    let Some(p) = (unsafe { provider(interface) }) else {
        return STATUS_INVALID_PARAMETER;
    };
    // SAFETY: forwarded caller contract.
    p.evtchn
        .wait(handle(channel), count, unsafe { timeout(time) })
}

unsafe extern "C" fn wait_version5(
    interface: PInterface,
    channel: *mut EvtchnChannel,
    time: *mut LargeInteger,
) -> NtStatus {
    // SAFETY: C caller passes the interface it obtained from us.
    let Some(p) = (unsafe { provider(interface) }) else {
        return STATUS_INVALID_PARAMETER;
    };
    let Some(c) = p.evtchn.channel(handle(channel)) else {
        return STATUS_INVALID_PARAMETER;
    };
    // SAFETY: forwarded caller contract.
    p.evtchn
        .wait(handle(channel), c.count().wrapping_add(1), unsafe {
            timeout(time)
        })
}

unsafe extern "C" fn get_port(interface: PInterface, channel: *mut EvtchnChannel) -> u32 {
    // SAFETY: C caller passes the interface it obtained from us.
    unsafe { provider(interface) }
        .and_then(|p| p.evtchn.channel(handle(channel)))
        .map_or(0, |c| c.port())
}

unsafe extern "C" fn close(interface: PInterface, channel: *mut EvtchnChannel) {
    // SAFETY: C caller passes the interface it obtained from us.
    if let Some(p) = unsafe { provider(interface) } {
        p.evtchn.close(handle(channel));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared_info::SharedInfo;
    use crate::sim::Sim;
    use std::sync::atomic::{AtomicU32, Ordering};
    use xen_include::api::XenApi;
    use xen_include::status::{STATUS_BUFFER_OVERFLOW, STATUS_TIMEOUT};
    use xen_include::xen::xen::Virq;

    unsafe extern "C" fn isr(
        _: *mut xen_include::interfaces::KInterrupt,
        arg: *mut c_void,
    ) -> Boolean {
        unsafe { (*(arg as *const AtomicU32)).fetch_add(1, Ordering::SeqCst) };
        TRUE
    }

    fn provider() -> (Sim, &'static EvtchnProvider) {
        let s = Sim::new(1);
        let si: &'static SharedInfo = Box::leak(Box::new(SharedInfo::new(s.xen, &*s.m.guest)));
        si.acquire().unwrap();
        let e: &'static Evtchn = Box::leak(Box::new(Evtchn::new(s.xen, &*s.m.guest, si)));
        s.m.hv.set_upcall_handler(Some(Arc::new(move |vcpu| {
            e.interrupt(vcpu);
        })));
        e.enable_interrupts(None, 28);
        (s, Box::leak(Box::new(EvtchnProvider::new(e))))
    }

    #[test]
    fn versions_5_to_9_open_through_the_variadic_slot() {
        let (s, p) = provider();
        let me = s.m.hv.domid();
        let hits: &'static AtomicU32 = Box::leak(Box::new(AtomicU32::new(0)));
        let arg = hits as *const AtomicU32 as *mut c_void;
        unsafe {
            let mut t = EvtchnInterfaceV9::EMPTY;
            assert_eq!(
                get_interface(p, 4, &mut t as *mut _ as _, 200),
                STATUS_NOT_SUPPORTED
            );
            assert_eq!(
                get_interface(p, 10, &mut t as *mut _ as _, 200),
                STATUS_NOT_SUPPORTED
            );
            assert_eq!(
                get_interface(p, 9, &mut t as *mut _ as _, 119),
                STATUS_BUFFER_OVERFLOW
            );
            // V5: UNBOUND (RemoteDomain, Mask) and WaitVersion5.
            let mut v5 = EvtchnInterfaceV5::EMPTY;
            assert_eq!(
                get_interface(p, 5, &mut v5 as *mut _ as _, 112),
                STATUS_SUCCESS
            );
            let i5 = &mut v5 as *mut _ as PInterface;
            assert_eq!((v5.evtchn_acquire.unwrap())(i5), STATUS_SUCCESS);
            let ch = (v5.evtchn_open.unwrap())(i5, EvtchnType::UNBOUND, Some(isr), arg, 0u32, 1u32);
            assert!(!ch.is_null());
            let port = (v5.evtchn_get_port.unwrap())(i5, ch);
            let dom0 = s.m.hv.backend_bind_interdomain(0, me, port).unwrap();
            (v5.evtchn_unmask_version4.unwrap())(i5, ch, FALSE);
            let before = hits.load(Ordering::SeqCst);
            s.m.hv.backend_send(0, dom0).unwrap();
            assert_eq!(hits.load(Ordering::SeqCst), before + 1);
            // Auto-masked (Mask = 1): the next event stays pending; the V4-style Unmask
            // (no result, no Force argument) always behaves as forced — Xen re-delivers
            // it through the upcall instead of the caller handling it (spec §10 item 15).
            s.m.hv.backend_send(0, dom0).unwrap();
            assert_eq!(hits.load(Ordering::SeqCst), before + 1, "masked");
            (v5.evtchn_unmask_version4.unwrap())(i5, ch, FALSE);
            assert_eq!(hits.load(Ordering::SeqCst), before + 2, "re-delivered");
            let before = before + 1;
            let mut zero = LargeInteger { quad_part: 0 };
            assert_eq!(
                (v5.evtchn_wait_version5.unwrap())(i5, ch, &mut zero),
                STATUS_TIMEOUT
            );
            (v5.evtchn_trigger.unwrap())(i5, ch);
            assert_eq!(hits.load(Ordering::SeqCst), before + 2);
            s.m.hv.backend_take_pending(0);
            (v5.evtchn_send_version1.unwrap())(i5, ch);
            assert!(s.m.hv.backend_take_pending(0).contains(&dom0));
            (v5.evtchn_close.unwrap())(i5, ch);
            // V7: INTER_DOMAIN (RemoteDomain, RemotePort, Mask), GetCount and Wait.
            let mut v7 = EvtchnInterfaceV7::EMPTY;
            assert_eq!(
                get_interface(p, 7, &mut v7 as *mut _ as _, 120),
                STATUS_SUCCESS
            );
            let i7 = &mut v7 as *mut _ as PInterface;
            let remote = s.m.hv.evtchn_alloc_unbound(0, me).unwrap();
            let ch = (v7.evtchn_open.unwrap())(
                i7,
                EvtchnType::INTER_DOMAIN,
                Some(isr),
                arg,
                0u32,
                remote,
                0u32,
            );
            assert!(!ch.is_null());
            (v7.evtchn_unmask_version4.unwrap())(i7, ch, FALSE);
            let n = (v7.evtchn_get_count.unwrap())(i7, ch);
            s.m.hv.backend_send(0, remote).unwrap();
            assert_eq!((v7.evtchn_get_count.unwrap())(i7, ch), n + 1);
            assert_eq!(
                (v7.evtchn_wait.unwrap())(i7, ch, n + 1, core::ptr::null_mut()),
                STATUS_SUCCESS
            );
            (v7.evtchn_close.unwrap())(i7, ch);
            // V8: VIRQ (Index) and Unmask with its BOOLEAN result.
            let mut v8 = EvtchnInterfaceV8::EMPTY;
            assert_eq!(
                get_interface(p, 8, &mut v8 as *mut _ as _, 120),
                STATUS_SUCCESS
            );
            let i8_ = &mut v8 as *mut _ as PInterface;
            let ch =
                (v8.evtchn_open.unwrap())(i8_, EvtchnType::VIRQ, Some(isr), arg, Virq::DEBUG.0);
            assert!(!ch.is_null());
            assert_eq!((v8.evtchn_unmask.unwrap())(i8_, ch, FALSE, FALSE), FALSE);
            let before = hits.load(Ordering::SeqCst);
            s.m.hv.raise_virq(0, Virq::DEBUG);
            assert_eq!(hits.load(Ordering::SeqCst), before + 1);
            assert_eq!((v8.evtchn_bind.unwrap())(i8_, ch, 0, 0), STATUS_SUCCESS);
            assert_eq!(
                (v8.evtchn_bind.unwrap())(i8_, ch, 1, 0),
                STATUS_NOT_SUPPORTED
            );
            (v8.evtchn_close.unwrap())(i8_, ch);
            // V9: VIRQ (Index, Group, Number); a bad type gives NULL.
            assert_eq!(
                get_interface(p, 9, &mut t as *mut _ as _, 120),
                STATUS_SUCCESS
            );
            let i9 = &mut t as *mut _ as PInterface;
            let ch = (t.evtchn_open.unwrap())(
                i9,
                EvtchnType::VIRQ,
                Some(isr),
                arg,
                Virq::DEBUG.0,
                0u32,
                0u32,
            );
            assert!(!ch.is_null());
            (t.evtchn_close.unwrap())(i9, ch);
            let ch = (t.evtchn_open.unwrap())(i9, EvtchnType(42), Some(isr), arg, 0u32);
            assert!(ch.is_null());
            let ch = (t.evtchn_open.unwrap())(
                i9,
                EvtchnType::VIRQ,
                Some(isr),
                arg,
                Virq::DEBUG.0,
                0u32,
                1u32,
            );
            assert!(ch.is_null(), "CPU 1 without a per-CPU upcall");
            (v5.evtchn_release.unwrap())(i5);
        }
        assert!(s.xen.xen_version().is_ok());
    }
}
