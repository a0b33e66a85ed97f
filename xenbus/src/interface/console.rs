//! XENBUS_CONSOLE V1 served as a C vtable over [`crate::console::Console`]. The first
//! Acquire attaches the ring and channel ([`ConsoleSetup`]), the last Release detaches
//! them; the FDO calls [`ConsoleProvider::resume_late`] after a resume.

use alloc::sync::Arc;
use core::ffi::{c_char, c_void};

use xen_include::interfaces::console::{ConsoleInterfaceV1, ConsoleWakeup};
use xen_include::interfaces::{Boolean, Interface, KEvent, PInterface, VersionedInterface};
use xen_include::status::{
    NtStatus, STATUS_INVALID_PARAMETER, STATUS_NOT_SUPPORTED, STATUS_SUCCESS,
};

use super::references::acquire_release;
use super::References;
use crate::console::{Console, ConsoleChannel};
use crate::shared::SharedMemory;

/// How the ring and channel are found: the ring page from grant entry 0 (GNTTAB
/// `QueryReference(XENBUS_GNTTAB_CONSOLE_REFERENCE)`), the channel opened on
/// `HVM_PARAM_CONSOLE_EVTCHN` (absent → the console is unavailable).
pub trait ConsoleSetup: Sync {
    /// Map the ring and open the channel.
    fn open(&self) -> Result<(SharedMemory, Arc<dyn ConsoleChannel>), NtStatus>;
}

/// The CONSOLE provider.
pub struct ConsoleProvider<'a> {
    references: References,
    console: Console<'a>,
    setup: &'a dyn ConsoleSetup,
}

impl<'a> ConsoleProvider<'a> {
    /// A provider over `console`, attached through `setup` on first Acquire.
    pub fn new(console: Console<'a>, setup: &'a dyn ConsoleSetup) -> Self {
        Self {
            references: References::new(),
            console,
            setup,
        }
    }
    /// References taken with Acquire.
    pub fn references(&self) -> u32 {
        self.references.get()
    }
    /// The core (the console event callback calls `event`, the log disposition `log`).
    pub fn console(&self) -> &Console<'a> {
        &self.console
    }
    fn attach(&self) -> Result<(), NtStatus> {
        let (ring, channel) = self.setup.open()?;
        self.console.connect(ring, channel)
    }
    /// The FDO's own Acquire (what the C `ConsoleAcquire` does): the first reference
    /// attaches the ring and channel; failure means there is no console.
    pub fn acquire(&self) -> Result<(), NtStatus> {
        if self.references.acquire() == 1 {
            if let Err(e) = self.attach() {
                let _ = self.references.release();
                return Err(e);
            }
        }
        Ok(())
    }
    /// The FDO's own Release: the last reference detaches.
    pub fn release(&self) {
        if self.references.release() == Some(0) {
            self.console.disconnect();
        }
    }
    /// The LATE resume callback: close the stale channel, re-open it and re-attach while
    /// in use.
    pub fn resume_late(&self) -> Result<(), NtStatus> {
        if self.references.get() == 0 {
            return Ok(());
        }
        self.console.disconnect();
        self.attach()
    }
}

/// Fill `dst` with version `version`'s vtable for `provider` (spec §2.1).
///
/// # Safety
/// `dst` must be valid for `size` bytes of writes; `provider` must outlive every use of
/// the filled interface.
pub unsafe fn get_interface(
    provider: &ConsoleProvider<'_>,
    version: u16,
    dst: *mut c_void,
    size: usize,
) -> NtStatus {
    let context = provider as *const ConsoleProvider<'_> as *const c_void;
    match version {
        // SAFETY: forwarded caller contract.
        1 => unsafe { super::copy_interface(V1, |t| &mut t.interface, context, dst, size) },
        _ => STATUS_NOT_SUPPORTED,
    }
}

const V1: ConsoleInterfaceV1 = ConsoleInterfaceV1 {
    interface: Interface::new(ConsoleInterfaceV1::SIZE as u16, 1, core::ptr::null_mut()),
    console_acquire: Some(acquire),
    console_release: Some(release),
    console_can_read: Some(can_read),
    console_read: Some(read),
    console_can_write: Some(can_write),
    console_write: Some(write),
    console_wakeup_add: Some(wakeup_add),
    console_wakeup_remove: Some(wakeup_remove),
};

acquire_release!(ConsoleProvider<'_>, first: |p| p.attach(), last: |p| p.console.disconnect());

/// # Safety
/// `interface` is one we filled (C caller contract).
unsafe fn provider<'a>(interface: PInterface) -> Option<&'a ConsoleProvider<'a>> {
    // SAFETY: forwarded caller contract.
    unsafe { super::context::<ConsoleProvider<'a>>(interface) }
}

unsafe extern "C" fn can_read(interface: PInterface) -> Boolean {
    // SAFETY: C caller passes the interface it obtained from us.
    unsafe { provider(interface) }.is_some_and(|p| p.console.can_read()) as Boolean
}

unsafe extern "C" fn can_write(interface: PInterface) -> Boolean {
    // SAFETY: C caller passes the interface it obtained from us.
    unsafe { provider(interface) }.is_some_and(|p| p.console.can_write()) as Boolean
}

unsafe extern "C" fn read(interface: PInterface, data: *mut c_char, length: u32) -> u32 {
    // SAFETY: C caller passes the interface it obtained from us.
    let Some(p) = (unsafe { provider(interface) }) else {
        return 0;
    };
    if data.is_null() || length == 0 {
        return 0;
    }
    // SAFETY: Data is a writable buffer of Length bytes (header contract).
    let buf = unsafe { core::slice::from_raw_parts_mut(data.cast::<u8>(), length as usize) };
    p.console.read(buf) as u32
}

unsafe extern "C" fn write(interface: PInterface, data: *mut c_char, length: u32) -> u32 {
    // SAFETY: C caller passes the interface it obtained from us.
    let Some(p) = (unsafe { provider(interface) }) else {
        return 0;
    };
    if data.is_null() || length == 0 {
        return 0;
    }
    // SAFETY: Data is a readable buffer of Length bytes (header contract).
    let buf = unsafe { core::slice::from_raw_parts(data.cast::<u8>(), length as usize) };
    p.console.write(buf) as u32
}

unsafe extern "C" fn wakeup_add(
    interface: PInterface,
    event: *mut KEvent,
    wakeup: *mut *mut ConsoleWakeup,
) -> NtStatus {
    // SAFETY: C caller passes the interface it obtained from us.
    let Some(p) = (unsafe { provider(interface) }) else {
        return STATUS_INVALID_PARAMETER;
    };
    if wakeup.is_null() {
        return STATUS_INVALID_PARAMETER;
    }
    match p.console.wakeup_add(event as usize) {
        Ok(id) => {
            // SAFETY: non-NULL out pointer (header contract).
            unsafe { *wakeup = id as *mut ConsoleWakeup };
            STATUS_SUCCESS
        }
        Err(e) => e,
    }
}

unsafe extern "C" fn wakeup_remove(interface: PInterface, wakeup: *mut ConsoleWakeup) {
    // SAFETY: C caller passes the interface it obtained from us.
    if let Some(p) = unsafe { provider(interface) } {
        let _ = p.console.wakeup_remove(wakeup as usize);
    }
}

/// Console events delivered by EVTCHN: the FDO's console callback sets the wakeups.
pub trait ConsoleEvents: Send + Sync {
    /// An event arrived on the console channel.
    fn event(&self);
}

struct ConsoleEvent(&'static dyn ConsoleEvents);

impl crate::evtchn::EvtchnCallback for ConsoleEvent {
    fn call(&self) -> bool {
        self.0.event();
        true
    }
}

/// The console channel as EVTCHN provides it: FIXED on `HVM_PARAM_CONSOLE_EVTCHN`.
pub struct EvtchnConsoleChannel {
    evtchn: &'static crate::evtchn::Evtchn,
    handle: crate::evtchn::ChannelHandle,
}

impl ConsoleChannel for EvtchnConsoleChannel {
    fn notify(&self) {
        self.evtchn.send(self.handle);
    }
}

impl Drop for EvtchnConsoleChannel {
    fn drop(&mut self) {
        // FIXED: no hypercall, the port stays with the toolstack.
        self.evtchn.close(self.handle);
    }
}

/// The FDO's console wiring: the ring frame from grant entry 0 (GNTTAB
/// `QueryReference(XENBUS_GNTTAB_CONSOLE_REFERENCE)`), mapped through the Os edge, and a
/// FIXED channel on `HVM_PARAM_CONSOLE_EVTCHN` whose events go to `events`.
pub struct XenConsoleSetup {
    api: &'static dyn xen_include::api::XenApi,
    os: &'static dyn common::os::Os,
    gnttab: &'static crate::gnttab::Gnttab,
    evtchn: &'static crate::evtchn::Evtchn,
    events: &'static dyn ConsoleEvents,
}

impl XenConsoleSetup {
    /// Wiring over this driver's GNTTAB and EVTCHN.
    pub fn new(
        api: &'static dyn xen_include::api::XenApi,
        os: &'static dyn common::os::Os,
        gnttab: &'static crate::gnttab::Gnttab,
        evtchn: &'static crate::evtchn::Evtchn,
        events: &'static dyn ConsoleEvents,
    ) -> Self {
        Self {
            api,
            os,
            gnttab,
            evtchn,
            events,
        }
    }
}

impl ConsoleSetup for XenConsoleSetup {
    fn open(&self) -> Result<(SharedMemory, Arc<dyn ConsoleChannel>), NtStatus> {
        use xen_include::status::STATUS_UNSUCCESSFUL;
        use xen_include::xen::grant_table::GNTTAB_RESERVED_CONSOLE;
        use xen_include::xen::hvm::params::HvmParam;
        let (pfn, _) = self.gnttab.query_reference(GNTTAB_RESERVED_CONSOLE)?;
        let ring = crate::shared::map_pfn(self.os, pfn).ok_or(STATUS_UNSUCCESSFUL)?;
        let port = self.api.hvm_get_param(HvmParam::CONSOLE_EVTCHN.0)?;
        let port = u32::try_from(port)
            .ok()
            .filter(|p| *p != 0)
            .ok_or(STATUS_UNSUCCESSFUL)?;
        let handle = self.evtchn.open(
            crate::evtchn::Kind::Fixed { port },
            false,
            Arc::new(ConsoleEvent(self.events)),
        )?;
        let _ = self.evtchn.unmask(handle, false, true);
        Ok((
            ring,
            Arc::new(EvtchnConsoleChannel {
                evtchn: self.evtchn,
                handle,
            }),
        ))
    }
}

/// The FDO's console log disposition: read the `ConsoleLogLevel` MULTI_SZ of
/// xenbus's `Parameters` key and, when it names any level, mirror those log lines to the
/// console. `None` when no level is configured.
///
/// # Safety
/// `provider` must stay alive until the returned disposition is removed with
/// `LogRemoveDisposition`.
pub unsafe fn add_log_disposition(
    api: &dyn xen_include::api::XenApi,
    parameters: xen_include::api::KeyHandle,
    provider: &ConsoleProvider<'_>,
) -> Result<Option<usize>, NtStatus> {
    let mask = match api.log_read_log_level(parameters, c"ConsoleLogLevel") {
        Ok(mask) => mask,
        Err(_) => return Ok(None),
    };
    // SAFETY: forwarded contract.
    unsafe { add_log_disposition_for(api, mask, provider) }
}

/// [`add_log_disposition`] with the `ConsoleLogLevel` mask already read (the registry
/// needs PASSIVE_LEVEL; a resume re-adds the disposition at DISPATCH_LEVEL).
///
/// # Safety
/// As [`add_log_disposition`].
pub unsafe fn add_log_disposition_for(
    api: &dyn xen_include::api::XenApi,
    mask: xen_include::api::LogLevel,
    provider: &ConsoleProvider<'_>,
) -> Result<Option<usize>, NtStatus> {
    if mask == 0 {
        return Ok(None);
    }
    let argument = provider as *const ConsoleProvider<'_> as *mut c_void;
    api.log_add_disposition(mask, log_disposition, argument)
        .map(Some)
}

/// [`add_log_disposition_for`] for a provider that lives as long as the driver.
pub fn add_static_log_disposition(
    api: &dyn xen_include::api::XenApi,
    mask: xen_include::api::LogLevel,
    provider: &'static ConsoleProvider<'static>,
) -> Result<Option<usize>, NtStatus> {
    // SAFETY: the provider is 'static, so it outlives the disposition.
    unsafe { add_log_disposition_for(api, mask, provider) }
}

unsafe extern "C" fn log_disposition(argument: *mut c_void, buffer: *mut c_char, length: u32) {
    if argument.is_null() || buffer.is_null() {
        return;
    }
    // SAFETY: the argument registered in `add_log_disposition` is a live provider
    // (its contract), and xen.sys passes a readable buffer of `length` bytes.
    let (provider, text) = unsafe {
        (
            &*(argument as *const ConsoleProvider<'_>),
            core::slice::from_raw_parts(buffer.cast::<u8>(), length as usize),
        )
    };
    provider.console.log(text);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::tests::{Backend, Events};
    use crate::sim::Sim;
    use std::sync::Mutex;
    use xen_include::api::XenApi;
    use xen_include::status::{STATUS_BUFFER_OVERFLOW, STATUS_NOT_FOUND};
    use xen_include::xen::grant_table::GNTTAB_RESERVED_CONSOLE;
    use xen_include::xen::hvm::params::HvmParam;

    /// The FDO's wiring on the simulator: grant entry 0 names the ring frame, the channel
    /// is the port in HVM_PARAM_CONSOLE_EVTCHN and notifies with EVTCHNOP_send.
    struct SimSetup {
        sim: &'static Sim,
        opened: Mutex<u32>,
    }
    struct PortChannel {
        api: &'static dyn XenApi,
        port: u32,
    }
    impl ConsoleChannel for PortChannel {
        fn notify(&self) {
            let _ = self.api.event_channel_send(self.port);
        }
    }
    impl ConsoleSetup for SimSetup {
        fn open(&self) -> Result<(SharedMemory, Arc<dyn ConsoleChannel>), NtStatus> {
            let (_, _, frame) = self
                .sim
                .m
                .hv
                .grant_entry(GNTTAB_RESERVED_CONSOLE)
                .ok_or(STATUS_NOT_FOUND)?;
            let ring = crate::shared::map_pfn(&*self.sim.m.guest, u64::from(frame))
                .ok_or(STATUS_NOT_FOUND)?;
            let port = self.sim.xen.hvm_get_param(HvmParam::CONSOLE_EVTCHN.0)? as u32;
            if port == 0 {
                return Err(STATUS_NOT_FOUND);
            }
            *self.opened.lock().unwrap() += 1;
            Ok((
                ring,
                Arc::new(PortChannel {
                    api: self.sim.xen,
                    port,
                }),
            ))
        }
    }

    #[test]
    fn a_c_driver_talks_to_xenconsoled_through_the_vtable() {
        let sim: &'static Sim = Box::leak(Box::new(Sim::new(1)));
        let m = sim.m;
        let setup: &'static SimSetup = Box::leak(Box::new(SimSetup {
            sim,
            opened: Mutex::new(0),
        }));
        let events: &'static Events = Box::leak(Box::default());
        let p = ConsoleProvider::new(Console::new(sim.xen, events), setup);
        let mut t = ConsoleInterfaceV1::EMPTY;
        unsafe {
            let d = &mut t as *mut _ as *mut c_void;
            assert_eq!(get_interface(&p, 2, d, 96), STATUS_NOT_SUPPORTED);
            assert_eq!(get_interface(&p, 1, d, 95), STATUS_BUFFER_OVERFLOW);
            assert_eq!(get_interface(&p, 1, d, 96), STATUS_SUCCESS);
        }
        let i = &mut t as *mut _ as PInterface;
        // xenconsoled's view of the ring page.
        let ch = m.console();
        let backend = Backend(crate::shared::map_pfn(&*m.guest, ch.gfn).unwrap());
        m.hv.backend_take_pending(0);
        unsafe {
            // Before Acquire nothing moves.
            assert_eq!(
                (t.console_write.unwrap())(i, c"x".as_ptr() as *mut c_char, 1),
                0
            );
            assert_eq!((t.console_acquire.unwrap())(i), STATUS_SUCCESS);
            assert_eq!((t.console_acquire.unwrap())(i), STATUS_SUCCESS);
            assert_eq!(*setup.opened.lock().unwrap(), 1, "set up once");
            assert_eq!((t.console_can_write.unwrap())(i), 1);
            let msg = b"login: ";
            assert_eq!(
                (t.console_write.unwrap())(i, msg.as_ptr() as *mut c_char, msg.len() as u32),
                7
            );
            assert!(m.hv.backend_take_pending(0).contains(&ch.backend_port));
            assert_eq!(backend.drain_out(), msg);
            assert_eq!((t.console_can_read.unwrap())(i), 0);
            backend.feed_in(b"root\r");
            assert_eq!((t.console_can_read.unwrap())(i), 1);
            let mut buf = [0u8; 16];
            assert_eq!((t.console_read.unwrap())(i, buf.as_mut_ptr().cast(), 16), 5);
            assert_eq!(&buf[..5], b"root\r");
            // Wakeups are set on console events.
            let mut w: *mut ConsoleWakeup = core::ptr::null_mut();
            assert_eq!(
                (t.console_wakeup_add.unwrap())(i, 0x5000 as *mut KEvent, &mut w),
                STATUS_SUCCESS
            );
            p.console().event();
            assert_eq!(*events.0.lock().unwrap(), vec![0x5000]);
            (t.console_wakeup_remove.unwrap())(i, w);
            // Resume: the channel is re-opened while in use.
            p.resume_late().unwrap();
            assert_eq!(*setup.opened.lock().unwrap(), 2);
            (t.console_release.unwrap())(i);
            assert!(p.console().connected());
            (t.console_release.unwrap())(i);
            assert!(!p.console().connected());
            assert_eq!(p.references(), 0);
            assert_eq!((t.console_can_write.unwrap())(i), 0);
        }
    }

    #[test]
    fn console_log_level_mirrors_the_log_to_the_console() {
        use common::os::{Os, RegValue};
        use xen_include::api::{LOG_LEVEL_ERROR, LOG_LEVEL_TRACE};
        let sim: &'static Sim = Box::leak(Box::new(Sim::new(1)));
        let m = sim.m;
        let params = r"SYSTEM\CurrentControlSet\Services\xenbus\Parameters";
        let key = m.guest.registry_create(None, params, false).unwrap();
        let setup: &'static SimSetup = Box::leak(Box::new(SimSetup {
            sim,
            opened: Mutex::new(0),
        }));
        let events: &'static Events = Box::leak(Box::default());
        let p = ConsoleProvider::new(Console::new(sim.xen, events), setup);
        // No ConsoleLogLevel: no disposition.
        assert_eq!(unsafe { add_log_disposition(sim.xen, key, &p) }, Ok(None));
        m.guest
            .registry_set(
                key,
                "ConsoleLogLevel",
                &RegValue::MultiSz(vec!["error".into()]),
            )
            .unwrap();
        p.attach().unwrap();
        let d = unsafe { add_log_disposition(sim.xen, key, &p) }
            .unwrap()
            .unwrap();
        let ch = m.console();
        let backend = Backend(crate::shared::map_pfn(&*m.guest, ch.gfn).unwrap());
        backend.drain_out();
        sim.xen.log(LOG_LEVEL_TRACE, "not mirrored\n");
        sim.xen.log(LOG_LEVEL_ERROR, "XENBUS|oops\n");
        let out = String::from_utf8(backend.drain_out()).unwrap();
        assert!(out.contains("XENBUS|oops\r\n"), "{out:?}");
        assert!(!out.contains("not mirrored"));
        sim.xen.log_remove_disposition(d);
    }

    #[test]
    fn acquire_fails_without_a_console_channel() {
        let sim: &'static Sim = Box::leak(Box::new(Sim::new(1)));
        sim.m.hv.set_param(HvmParam::CONSOLE_EVTCHN, 0);
        let setup: &'static SimSetup = Box::leak(Box::new(SimSetup {
            sim,
            opened: Mutex::new(0),
        }));
        let events: &'static Events = Box::leak(Box::default());
        let p = ConsoleProvider::new(Console::new(sim.xen, events), setup);
        let mut t = ConsoleInterfaceV1::EMPTY;
        unsafe {
            assert_eq!(
                get_interface(&p, 1, &mut t as *mut _ as *mut c_void, 96),
                STATUS_SUCCESS
            );
            let i = &mut t as *mut _ as PInterface;
            assert_eq!((t.console_acquire.unwrap())(i), STATUS_NOT_FOUND);
            assert_eq!(p.references(), 0);
        }
    }

    /// The FDO's console callback: wakeups of the (late-bound) provider.
    #[derive(Default)]
    struct Fdo {
        provider: Mutex<Option<&'static ConsoleProvider<'static>>>,
    }
    impl ConsoleEvents for Fdo {
        fn event(&self) {
            let p = *self.provider.lock().unwrap();
            if let Some(p) = p {
                p.console().event();
            }
        }
    }

    #[test]
    fn console_over_gnttab_and_evtchn_wakes_on_backend_events_and_survives_resume() {
        use crate::evtchn::Evtchn;
        use crate::gnttab::Gnttab;
        use crate::shared_info::SharedInfo;
        let sim: &'static Sim = Box::leak(Box::new(Sim::new(1)));
        let m = sim.m;
        let si: &'static SharedInfo = Box::leak(Box::new(SharedInfo::new(sim.xen, &*m.guest)));
        si.acquire().unwrap();
        let e: &'static Evtchn = Box::leak(Box::new(Evtchn::new(sim.xen, &*m.guest, si)));
        m.hv.set_upcall_handler(Some(Arc::new(move |vcpu| {
            e.interrupt(vcpu);
        })));
        e.enable_interrupts(None, 28);
        let g: &'static Gnttab = Box::leak(Box::new(Gnttab::new(sim.xen, &*m.guest)));
        g.acquire().unwrap();
        let fdo: &'static Fdo = Box::leak(Box::default());
        let setup: &'static XenConsoleSetup = Box::leak(Box::new(XenConsoleSetup::new(
            sim.xen, &*m.guest, g, e, fdo,
        )));
        let events: &'static Events = Box::leak(Box::default());
        let p: &'static ConsoleProvider<'static> = Box::leak(Box::new(ConsoleProvider::new(
            Console::new(sim.xen, events),
            setup,
        )));
        *fdo.provider.lock().unwrap() = Some(p);
        let mut t = ConsoleInterfaceV1::EMPTY;
        let ch = m.console();
        let backend = Backend(crate::shared::map_pfn(&*m.guest, ch.gfn).unwrap());
        unsafe {
            assert_eq!(
                get_interface(p, 1, &mut t as *mut _ as *mut c_void, 96),
                STATUS_SUCCESS
            );
            let i = &mut t as *mut _ as PInterface;
            assert_eq!((t.console_acquire.unwrap())(i), STATUS_SUCCESS);
            let mut w: *mut ConsoleWakeup = core::ptr::null_mut();
            assert_eq!(
                (t.console_wakeup_add.unwrap())(i, 0x7000 as *mut KEvent, &mut w),
                STATUS_SUCCESS
            );
            // xenconsoled types and kicks the channel: the wakeup is set, the data readable.
            backend.feed_in(b"ls\r");
            m.hv.backend_send(0, ch.backend_port).unwrap();
            m.hv.deliver_upcalls();
            assert_eq!(*events.0.lock().unwrap(), vec![0x7000]);
            let mut buf = [0u8; 8];
            assert_eq!((t.console_read.unwrap())(i, buf.as_mut_ptr().cast(), 8), 3);
            assert_eq!(&buf[..3], b"ls\r");
            m.hv.backend_take_pending(0);
            let msg = b"ok";
            assert_eq!(
                (t.console_write.unwrap())(i, msg.as_ptr() as *mut c_char, 2),
                2
            );
            assert!(m.hv.backend_take_pending(0).contains(&ch.backend_port));
            assert_eq!(backend.drain_out(), b"ok");
            // Re-attach (the LATE resume path): the old FIXED channel is closed, a new one
            // opened on the same port, and everything still works.
            assert_eq!(e.open_channels(), 1);
            p.resume_late().unwrap();
            assert_eq!(e.open_channels(), 1);
            assert_eq!(
                (t.console_write.unwrap())(i, msg.as_ptr() as *mut c_char, 2),
                2
            );
            assert_eq!(backend.drain_out(), b"ok");
            (t.console_wakeup_remove.unwrap())(i, w);
            (t.console_release.unwrap())(i);
            assert_eq!(e.open_channels(), 0);
        }
    }
}
