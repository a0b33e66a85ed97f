//! xenbus's device stacks for the simulator's PnP manager: AddDevice on a platform device
//! ([`add_device`]), the bus FDO's stack ([`FdoStack`]: the PnP machine over
//! [`FdoServices`], above whatever device is below it) and a child's PDO stack
//! ([`PdoStack`]: the PDO machine over [`PdoServices`]).
//!
//! The kernel-only parts are simulated in [`SimBusEdge`] and [`SimChildEdge`]: interrupts
//! are the machine's upcall handler, the FDO's system threads run their step when their
//! KEVENT was set ([`FdoStack::run_threads`], or at once when the machine waits for a
//! pass), and the PCI bus interface reads the platform device's configuration space.
//! Every call the machines make into their services is logged ([`Logged`]), so a test or
//! the demo can show what a request did.

use std::collections::BTreeMap;
use std::ffi::{c_void, CString};
use std::prelude::rust_2021::*;
use std::sync::{Arc, Mutex};
use std::{format, vec};

use common::pnp::*;
use xen_include::interfaces::emulated::{
    EmulatedActivationStatus, EmulatedInterfaceV3, GUID_XENFILT_EMULATED_INTERFACE,
};
use xen_include::interfaces::{Interface, VersionedInterface, TRUE};
use xen_include::status::*;
use xen_sim::machine::Machine;
use xen_sim::platform::Device;
use xen_sim::pnp_manager::{DeviceStack, LowerDevice};

use super::{leak, SimKernel, World};
use crate::active::XenApiActive;
use crate::fdo::{
    check_platform_vendor, decide_active, vendor_name, BusEdge, ChildEdge, Fdo, FdoServices,
    FdoThread, FilterActivation, PdoServices,
};
use crate::interface::query::XenbusInterface;
use crate::interface::query::{query, BusInterfaceStandard, PdoBusInterface, Providers};
use crate::pdo::RemovalPolicy;
use crate::pnp::fdo::{BusResources, BusServices, FdoMachine, InterruptConnection};
use crate::pnp::pdo::{ChildServices, PdoMachine};
use crate::pnp::PnpState;

/// What the services of a stack were asked to do, one line a call.
pub type Log = Arc<Mutex<Vec<String>>>;

fn note(log: &Log, line: String) {
    log.lock().unwrap().push(line);
}

/// The PCI bus driver's `BUS_INTERFACE_STANDARD` context: a device's configuration space.
pub struct PciConfig {
    m: &'static Machine,
    slot: u8,
}

/// `GetBusData(PCI_WHICHSPACE_CONFIG, …)` of the PCI bus driver.
unsafe extern "C" fn pci_get_bus_data(
    context: *mut c_void,
    data_type: u32,
    buffer: *mut c_void,
    offset: u32,
    length: u32,
) -> u32 {
    // SAFETY: the context is a leaked PciConfig (PciConfig::bus_interface); the caller's
    // buffer holds `length` bytes.
    unsafe {
        let pci = &*(context as *const PciConfig);
        if data_type != 0 {
            return 0;
        }
        let platform = pci.m.hv.platform();
        for i in 0..length {
            let byte_offset = offset + i;
            let dword = platform.pci_config_read(pci.slot, 0, (byte_offset & !3) as u8);
            let byte = (dword >> ((byte_offset & 3) * 8)) as u8;
            buffer.cast::<u8>().add(i as usize).write(byte);
        }
        length
    }
}

impl PciConfig {
    /// The PCI bus driver's interface for the device in `slot` (what the FDO gets from
    /// the PCI PDO with `GUID_BUS_INTERFACE_STANDARD`).
    pub fn bus_interface(&'static self) -> BusInterfaceStandard {
        BusInterfaceStandard {
            interface: Interface::new(64, 1, self as *const PciConfig as *mut c_void),
            translate_bus_address: None,
            get_dma_adapter: None,
            set_bus_data: None,
            get_bus_data: Some(pci_get_bus_data),
        }
    }
}

/// Where the FDO's system threads are.
#[derive(Default)]
struct Threads {
    running: bool,
    balloon: bool,
    /// Sets of each thread's event already consumed (scan, suspend, balloon).
    seen: [u64; 3],
}

const THREADS: [FdoThread; 3] = [FdoThread::Scan, FdoThread::Suspend, FdoThread::Balloon];

fn thread_index(thread: FdoThread) -> usize {
    match thread {
        FdoThread::Scan => 0,
        FdoThread::Suspend => 1,
        FdoThread::Balloon => 2,
    }
}

/// What the bus edge shares with its stack.
struct EdgeState {
    m: &'static Machine,
    fdo: &'static Fdo,
    kernel: &'static SimKernel,
    vcpus: u32,
    log: Log,
    threads: Mutex<Threads>,
}

impl EdgeState {
    fn event_sets(&self, thread: FdoThread) -> u64 {
        use crate::fdo::FdoKernel;
        self.m.guest.event_sets(self.kernel.thread_event(thread))
    }

    /// One pass of `thread`'s loop: its event is consumed and its step runs.
    fn pass(&self, thread: FdoThread) -> String {
        let sets = self.event_sets(thread);
        self.threads.lock().unwrap().seen[thread_index(thread)] = sets;
        match thread {
            FdoThread::Scan => format!("scan thread: {:?}", self.fdo.scan_step()),
            FdoThread::Suspend => format!("suspend thread: {:?}", self.fdo.suspend_step()),
            FdoThread::Balloon => format!("balloon thread: {:?}", self.fdo.balloon_step()),
        }
    }

    /// The threads whose event was set since their last pass, until none is.
    fn run_threads(&self) -> Vec<String> {
        let mut ran = Vec::new();
        for _ in 0..64 {
            let ready: Vec<FdoThread> = {
                let threads = self.threads.lock().unwrap();
                THREADS
                    .into_iter()
                    .filter(|t| threads.running && (*t != FdoThread::Balloon || threads.balloon))
                    .filter(|t| self.event_sets(*t) > threads.seen[thread_index(*t)])
                    .collect()
            };
            if ready.is_empty() {
                break;
            }
            for thread in ready {
                ran.push(self.pass(thread));
            }
        }
        ran
    }
}

/// The kernel side of the bus FDO on the simulator.
pub struct SimBusEdge(Arc<EdgeState>);

impl BusEdge for SimBusEdge {
    fn processors(&self) -> Vec<(u16, u8)> {
        (0..self.0.vcpus).map(|i| (0, i as u8)).collect()
    }
    fn connect_interrupts(&self, _interrupts: &[InterruptConnection]) -> Result<(), NtStatus> {
        // Every upcall vector of the machine reaches this FDO's ISR from now on.
        super::route_upcalls(self.0.m, self.0.fdo);
        Ok(())
    }
    fn disconnect_interrupts(&self) {
        super::route_upcalls(self.0.m, None);
    }
    fn start_threads(&self, balloon: bool) -> Result<(), NtStatus> {
        let mut threads = self.0.threads.lock().unwrap();
        threads.running = true;
        threads.balloon = balloon;
        Ok(())
    }
    fn stop_threads(&self) {
        self.0.threads.lock().unwrap().running = false;
    }
    fn wait_for_pass(&self, thread: FdoThread, _seconds: u32) -> bool {
        let line = self.0.pass(thread);
        note(&self.0.log, line);
        true
    }
    fn reap_children(&self) {}
    fn remove_children(&self) {}
    fn invalidate_device_state(&self) {}
    fn destroy_device(&self) {}
}

/// Services that log each call the PnP machine makes, then do it.
pub struct Logged<S> {
    inner: S,
    log: Log,
}

impl<S> Logged<S> {
    /// `inner`, logging to `log`.
    pub fn new(inner: S, log: Log) -> Self {
        Self { inner, log }
    }

    /// The services.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    fn note(&self, line: impl Into<String>) {
        note(&self.log, line.into());
    }
}

impl<S: BusServices> BusServices for Logged<S> {
    fn is_active(&self) -> bool {
        self.inner.is_active()
    }
    fn processors(&self) -> Vec<(u16, u8)> {
        self.inner.processors()
    }
    fn connect_interrupts(&self, interrupts: &[InterruptConnection]) -> Result<(), NtStatus> {
        let messages = interrupts.iter().filter(|i| i.message).count();
        self.note(format!(
            "connect {} interrupts ({messages} messages)",
            interrupts.len()
        ));
        self.inner.connect_interrupts(interrupts)
    }
    fn disconnect_interrupts(&self) {
        self.note("disconnect");
        self.inner.disconnect_interrupts()
    }
    fn start_threads(&self) -> Result<(), NtStatus> {
        self.note("threads");
        self.inner.start_threads()
    }
    fn stop_threads(&self) {
        self.note("join threads");
        self.inner.stop_threads()
    }
    fn power_up(&self, resources: &BusResources) -> Result<(), NtStatus> {
        self.note("D3->D0");
        self.inner.power_up(resources)
    }
    fn power_down(&self) {
        self.note("D0->D3");
        self.inner.power_down()
    }
    fn hibernate_enter(&self) {
        self.note("S3->S4");
        self.inner.hibernate_enter()
    }
    fn hibernate_exit(&self) {
        self.note("S4->S3");
        self.inner.hibernate_exit()
    }
    fn after_start(&self) {
        self.inner.after_start()
    }
    fn balloon_inflated(&self) -> bool {
        self.inner.balloon_inflated()
    }
    fn wait_scan(&self) {
        self.inner.wait_scan()
    }
    fn report_children(&self) -> Vec<String> {
        self.inner.report_children()
    }
    fn reap_children(&self) {
        self.inner.reap_children()
    }
    fn surprise_removed(&self) {
        self.note("children missing");
        self.inner.surprise_removed()
    }
    fn remove_children(&self) {
        self.note("children removed");
        self.inner.remove_children()
    }
    fn invalidate_device_state(&self) {
        self.note("device state invalidated");
        self.inner.invalidate_device_state()
    }
    fn destroy(&self) {
        self.note("destroy");
        self.inner.destroy()
    }
}

impl<S: ChildServices> ChildServices for Logged<S> {
    fn vendor_prefix(&self) -> &str {
        self.inner.vendor_prefix()
    }
    fn pci_device_id(&self) -> u16 {
        self.inner.pci_device_id()
    }
    fn removal_policy(&self, class: &str) -> RemovalPolicy {
        self.inner.removal_policy(class)
    }
    fn query_interface(&self, which: XenbusInterface, q: &InterfaceQuery) -> NtStatus {
        self.inner.query_interface(which, q)
    }
    fn query_bus_interface(&self, class: &str, q: &InterfaceQuery) -> NtStatus {
        self.inner.query_bus_interface(class, q)
    }
    fn delegate(&self, request: &PnpRequest) -> PnpAnswer {
        self.inner.delegate(request)
    }
    fn power_up(&self, class: &str) -> Result<(), NtStatus> {
        self.note(format!("{class} D3->D0"));
        self.inner.power_up(class)
    }
    fn power_down(&self, class: &str) {
        self.note(format!("{class} D0->D3"));
        self.inner.power_down(class)
    }
    fn is_missing(&self, class: &str) -> bool {
        self.inner.is_missing(class)
    }
    fn eject(&self, class: &str) {
        self.note(format!("{class} ejected"));
        self.inner.eject(class)
    }
    fn removed(&self, class: &str, destroy: bool) {
        self.note(format!("{class} removed (destroy {destroy})"));
        self.inner.removed(class, destroy)
    }
}

type BusMachine = FdoMachine<Logged<FdoServices<SimBusEdge>>>;

/// The services of one child PDO.
pub type ChildSvc = Logged<PdoServices<SimChildEdge>>;

struct FdoInner {
    machine: BusMachine,
    lower: Box<dyn LowerDevice>,
}

/// The bus FDO's device stack: its PnP machine over the device below it.
#[derive(Clone)]
pub struct FdoStack {
    inner: Arc<Mutex<FdoInner>>,
    edge: Arc<EdgeState>,
    children: Arc<Mutex<BTreeMap<String, Arc<ChildSvc>>>>,
    /// The address of the FDO's leaked [`PdoBusInterface`] for its children (kept as an
    /// address: the interface holds the PCI driver's context pointer, so it is not `Sync`).
    bus: usize,
    /// The FDO runtime.
    pub fdo: &'static Fdo,
    /// Its kernel actions.
    pub kernel: &'static SimKernel,
    /// What the services of this FDO and its children were asked to do.
    pub log: Log,
    /// The platform device.
    pub device: Device,
    /// Its DeviceID as the device below answered.
    pub device_id: String,
    /// What xenfilt's `XENFILT_EMULATED` v3 said about it at AddDevice (None: no xenfilt).
    pub activation: Option<FilterActivation>,
}

impl FdoStack {
    /// Send a PnP request to the top of this stack (`IoStatus` starting as `incoming`).
    pub fn send(&self, request: &PnpRequest, incoming: PnpAnswer) -> PnpAnswer {
        let action = self.inner.lock().unwrap().machine.pnp(request);
        match action {
            PnpAction::Complete(answer) => answer,
            PnpAction::CompleteUnchanged => incoming,
            PnpAction::PassDown { set } => {
                let mut inner = self.inner.lock().unwrap();
                inner.lower.answer(request, set.unwrap_or(incoming))
            }
            PnpAction::ForwardAndWait { forward, set } => {
                let lower = self
                    .inner
                    .lock()
                    .unwrap()
                    .lower
                    .answer(&forward, set.unwrap_or(incoming));
                self.inner
                    .lock()
                    .unwrap()
                    .machine
                    .pnp_finish(request, lower)
            }
        }
    }

    /// Send a power request to the top of this stack.
    pub fn send_power(&self, request: &PowerRequest) -> NtStatus {
        let mut step = self.inner.lock().unwrap().machine.power(request);
        loop {
            step = match step {
                PowerStep::Complete(status) => return status,
                PowerStep::CompleteUnchanged => return STATUS_NOT_SUPPORTED,
                PowerStep::PassDown => {
                    note(&self.log, format!("{request:?} passed down"));
                    return STATUS_SUCCESS;
                }
                PowerStep::ForwardAndWait => self.inner.lock().unwrap().machine.power_finish(
                    request,
                    PowerStage::Lower,
                    STATUS_SUCCESS,
                ),
                PowerStep::RequestDevicePower(d) => {
                    let device = match request {
                        PowerRequest::Query(..) => {
                            PowerRequest::Query(PowerState::Device(d), PowerAction::None)
                        }
                        _ => PowerRequest::Set(PowerState::Device(d), PowerAction::None),
                    };
                    let status = self.send_power(&device);
                    self.inner.lock().unwrap().machine.power_finish(
                        request,
                        PowerStage::DeviceIrp,
                        status,
                    )
                }
            };
        }
    }

    /// The FDO machine's PnP state.
    pub fn pnp_state(&self) -> PnpState {
        self.inner.lock().unwrap().machine.pnp_state()
    }

    /// The resources START gave the bus.
    pub fn resources(&self) -> Option<BusResources> {
        self.inner.lock().unwrap().machine.resources().cloned()
    }

    /// Run the FDO's system threads whose event was set (a watch fired, a thread woke
    /// another) until none is ready; what each pass did.
    pub fn run_threads(&self) -> Vec<String> {
        self.edge.run_threads()
    }

    /// The log so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// The log so far, emptied.
    pub fn take_log(&self) -> Vec<String> {
        std::mem::take(&mut *self.log.lock().unwrap())
    }

    /// The bus interface the FDO's children hand out (over the PCI bus driver's, as
    /// `wdm::lower_bus` keeps one for the FDO's life).
    pub fn bus_interface(&self) -> &'static PdoBusInterface {
        // SAFETY: `bus` is the address of the PdoBusInterface leaked in add_device, never
        // freed or moved; its only mutable state is an atomic count, and its lower context is
        // a leaked PciConfig.
        unsafe { &*(self.bus as *const PdoBusInterface) }
    }

    /// The services of the child PDO built for `class` (the latest one).
    pub fn child(&self, class: &str) -> Option<Arc<ChildSvc>> {
        self.children.lock().unwrap().get(class).cloned()
    }
}

impl DeviceStack for FdoStack {
    fn pnp(&mut self, request: &PnpRequest, incoming: PnpAnswer) -> PnpAnswer {
        self.send(request, incoming)
    }
    fn power(&mut self, request: &PowerRequest) -> NtStatus {
        self.send_power(request)
    }
    fn child(&mut self, name: &str) -> Option<Box<dyn DeviceStack>> {
        let mut machine = PdoMachine::new(name);
        machine.enumerated();
        let edge = SimChildEdge {
            stack: self.clone(),
        };
        let services = Arc::new(Logged::new(
            PdoServices::new(self.fdo, edge, self.device.device),
            self.log.clone(),
        ));
        self.children
            .lock()
            .unwrap()
            .insert(name.into(), services.clone());
        Some(Box::new(PdoStack { machine, services }))
    }
}

/// The kernel side of a child PDO on the simulator.
pub struct SimChildEdge {
    stack: FdoStack,
}

impl ChildEdge for SimChildEdge {
    fn query_interface(&self, which: XenbusInterface, q: &InterfaceQuery) -> NtStatus {
        let Some(subsystems) = self.stack.fdo.subsystems() else {
            return STATUS_NOT_SUPPORTED;
        };
        let providers = Providers::from_subsystems(subsystems);
        // SAFETY: the buffer is the PnP manager's, `q.size` bytes and pointer-aligned; the
        // providers are leaked with the FDO.
        unsafe { query(&providers, which, q) }
    }
    fn query_bus_interface(&self, _class: &str, q: &InterfaceQuery) -> NtStatus {
        // SAFETY: the PnP manager's buffer, `q.size` bytes, pointer-aligned; the FDO's bus
        // interface is leaked.
        unsafe { self.stack.bus_interface().query(q) }
    }
    fn delegate(&self, request: &PnpRequest) -> PnpAnswer {
        self.stack
            .send(request, PnpAnswer::status(STATUS_NOT_SUPPORTED))
    }
    fn pdo_deleted(&self, _class: &str, _destroy: bool) {}
}

/// A child's PDO stack (no function driver above it in the simulator).
pub struct PdoStack {
    machine: PdoMachine,
    services: Arc<ChildSvc>,
}

impl DeviceStack for PdoStack {
    fn pnp(&mut self, request: &PnpRequest, incoming: PnpAnswer) -> PnpAnswer {
        match self.machine.pnp(&*self.services, request) {
            PnpAction::Complete(answer) => answer,
            _ => incoming,
        }
    }
    fn power(&mut self, request: &PowerRequest) -> NtStatus {
        match self.machine.power(&*self.services, request) {
            PowerStep::Complete(status) => status,
            _ => STATUS_NOT_SUPPORTED,
        }
    }
    fn child(&mut self, _name: &str) -> Option<Box<dyn DeviceStack>> {
        None
    }
}

fn text(lower: &mut dyn LowerDevice, request: PnpRequest) -> Result<String, NtStatus> {
    match lower.answer(&request, PnpAnswer::status(STATUS_NOT_SUPPORTED)) {
        PnpAnswer {
            status: STATUS_SUCCESS,
            reply: PnpReply::Text(text),
        } => Ok(text),
        PnpAnswer { status, .. } => Err(if status == STATUS_SUCCESS {
            STATUS_UNSUCCESSFUL
        } else {
            status
        }),
    }
}

/// AddDevice's optional `XENFILT_EMULATED` v3 query to the device below: how xenfilt forces
/// `device_id` (None: no such interface below).
pub fn emulated_activation(
    lower: &mut dyn LowerDevice,
    device_id: &str,
) -> Option<FilterActivation> {
    let mut table = vec![EmulatedInterfaceV3::EMPTY];
    let q = InterfaceQuery {
        guid: GUID_XENFILT_EMULATED_INTERFACE,
        size: EmulatedInterfaceV3::SIZE as u16,
        version: 3,
        buffer: table.as_mut_ptr() as usize,
        specific: 0,
        incoming: STATUS_NOT_SUPPORTED,
    };
    let answer = lower.answer(
        &PnpRequest::QueryInterface(q),
        PnpAnswer::status(STATUS_NOT_SUPPORTED),
    );
    let t = table[0];
    let (STATUS_SUCCESS, 3, Some(acquire), Some(release), Some(present)) = (
        answer.status,
        t.interface.version,
        t.emulated_acquire,
        t.emulated_release,
        t.emulated_is_device_present,
    ) else {
        return None;
    };
    let id = CString::new(device_id).ok()?;
    let this = table.as_mut_ptr().cast::<Interface>();
    let mut status = EmulatedActivationStatus::ACTIVATE_NEUTRAL;
    // SAFETY: the table the device below filled in, called with its own interface, a
    // NUL-terminated ID and a writable status; Acquire/Release bracket the call.
    let present = unsafe {
        if acquire(this) != STATUS_SUCCESS {
            return None;
        }
        let present = present(
            this.cast(),
            id.as_ptr().cast_mut(),
            std::ptr::null_mut(),
            &mut status,
        );
        release(this);
        present == TRUE
    };
    if !present {
        return None;
    }
    Some(if status == EmulatedActivationStatus::FORCE_ACTIVATED {
        FilterActivation::ForceActivated
    } else if status == EmulatedActivationStatus::FORCE_DEACTIVATED {
        FilterActivation::ForceDeactivated
    } else {
        FilterActivation::Neutral
    })
}

/// xenbus's AddDevice on the platform device `device`, whose stack so far is `lower`:
/// the vendor check, the EMULATED query, the active decision through xen.sys's Config*
/// record, the FDO runtime and the FDO's stack (its interrupts connected at START).
pub fn add_device(
    world: &World,
    device: &Device,
    mut lower: Box<dyn LowerDevice>,
    kernel: &'static SimKernel,
) -> Result<FdoStack, NtStatus> {
    check_platform_vendor(device.vendor).map_err(|_| STATUS_NOT_SUPPORTED)?;
    let device_id = text(&mut *lower, PnpRequest::QueryId(IdKind::DeviceId))?;
    let instance_id = text(&mut *lower, PnpRequest::QueryId(IdKind::InstanceId))?;
    let location = text(
        &mut *lower,
        PnpRequest::QueryDeviceText(TextKind::LocationInformation, 0x409),
    )?;
    let activation = emulated_activation(&mut *lower, &device_id);
    let mut config = XenApiActive::new(world.xen);
    let active = decide_active(activation, &device_id, &instance_id, &location, &mut config);
    let fdo = world.new_fdo(
        kernel,
        vendor_name(xenbus_rs::VENDOR_PREFIX, device.device),
        active,
    );
    let log: Log = Arc::default();
    let edge = Arc::new(EdgeState {
        m: world.m,
        fdo,
        kernel,
        vcpus: world.vcpus,
        log: log.clone(),
        threads: Mutex::default(),
    });
    let services = Logged::new(FdoServices::new(fdo, SimBusEdge(edge.clone())), log.clone());
    let pci: &'static PciConfig = leak(PciConfig {
        m: world.m,
        slot: device.slot,
    });
    Ok(FdoStack {
        inner: Arc::new(Mutex::new(FdoInner {
            machine: FdoMachine::new(services),
            lower,
        })),
        edge,
        children: Arc::default(),
        bus: leak(PdoBusInterface::new(pci.bus_interface())) as *const PdoBusInterface as usize,
        fdo,
        kernel,
        log,
        device: device.clone(),
        device_id,
        activation,
    })
}
