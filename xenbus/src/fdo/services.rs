//! The PnP machines' services over the FDO runtime: [`BusServices`] for the bus FDO's
//! machine and [`ChildServices`] for a child PDO's, with what only the WDM edge can do
//! (interrupt objects, system threads, PDO device objects, IRPs to the stack, the
//! caller's interface buffer) behind the small traits [`BusEdge`] and [`ChildEdge`].
#![forbid(unsafe_code)]

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use common::os::RegValue;
use common::pnp::{InterfaceQuery, PnpAnswer, PnpRequest};
use xen_include::status::NtStatus;

use super::runtime::{Fdo, FdoResources, FdoThread};
use crate::balloon::StartupWait;
use crate::interface::query::XenbusInterface;
use crate::pdo::RemovalPolicy;
use crate::pnp::fdo::{BusResources, BusServices, InterruptConnection};
use crate::pnp::pdo::ChildServices;
use crate::suspend::{CallbackHandle, Phase, SuspendCallback};

/// Seconds of one wait for a thread's pass (upstream's 10 s timeouts).
pub const PASS_WAIT_SECONDS: u32 = 10;

/// What the bus FDO's machine needs from the WDM edge beyond the runtime.
pub trait BusEdge: Sync {
    /// The active processors as (group, number), in index order.
    fn processors(&self) -> Vec<(u16, u8)>;
    /// `IoConnectInterruptEx` for each; the ISR calls [`Fdo::interrupt`].
    fn connect_interrupts(&self, interrupts: &[InterruptConnection]) -> Result<(), NtStatus>;
    /// Disconnect them.
    fn disconnect_interrupts(&self);
    /// Create the scan, suspend and balloon system threads (each loops: wait for its
    /// event, run its step).
    fn start_threads(&self, balloon: bool) -> Result<(), NtStatus>;
    /// Alert and join them.
    fn stop_threads(&self);
    /// Wait up to `seconds` for `thread` to finish a pass; false on timeout.
    fn wait_for_pass(&self, thread: FdoThread, seconds: u32) -> bool;
    /// Destroy the PDO objects of children that are Deleted and Missing.
    fn reap_children(&self);
    /// FDO REMOVE: every child PDO is Deleted and destroyed unless surprise-removed.
    fn remove_children(&self);
    /// `IoInvalidateDeviceState`.
    fn invalidate_device_state(&self);
    /// Delete the FDO device object (last reference).
    fn destroy_device(&self);
}

/// The bus FDO's services: the runtime plus the edge.
pub struct FdoServices<E: BusEdge> {
    fdo: &'static Fdo,
    edge: E,
}

impl<E: BusEdge> FdoServices<E> {
    /// Services of `fdo` through `edge`.
    pub fn new(fdo: &'static Fdo, edge: E) -> Self {
        Self { fdo, edge }
    }

    /// The runtime.
    pub fn fdo(&self) -> &'static Fdo {
        self.fdo
    }

    /// The edge.
    pub fn edge(&self) -> &E {
        &self.edge
    }
}

impl FdoResources {
    /// The runtime's view of START's resources: CPU 0's message interrupt as the upcall
    /// vector, the line interrupt's GSI as the callback via, the first memory BAR in frames.
    pub fn from_bus(resources: &BusResources) -> Self {
        Self {
            upcall_vector: resources.upcall_vector(0),
            callback_via: u64::from(resources.line_gsi().unwrap_or(0)),
            memory_bar: resources
                .memory
                .map(|(start, length)| (start >> 12, u64::from(length) >> 12)),
        }
    }
}

impl<E: BusEdge> BusServices for FdoServices<E> {
    fn is_active(&self) -> bool {
        self.fdo.is_active()
    }
    fn processors(&self) -> Vec<(u16, u8)> {
        self.edge.processors()
    }
    fn connect_interrupts(&self, interrupts: &[InterruptConnection]) -> Result<(), NtStatus> {
        self.edge.connect_interrupts(interrupts)
    }
    fn disconnect_interrupts(&self) {
        self.edge.disconnect_interrupts()
    }
    fn start_threads(&self) -> Result<(), NtStatus> {
        let balloon = self.fdo.subsystems().is_some_and(|s| s.balloon.is_some());
        self.edge.start_threads(balloon)
    }
    fn stop_threads(&self) {
        self.edge.stop_threads()
    }
    fn power_up(&self, resources: &BusResources) -> Result<(), NtStatus> {
        let cpus = self.edge.processors().len() as u32;
        self.fdo
            .set_upcall_vectors((0..cpus).map(|cpu| resources.upcall_vector(cpu)).collect());
        self.fdo.d3_to_d0(FdoResources::from_bus(resources))
    }
    fn power_down(&self) {
        self.fdo.d0_to_d3()
    }
    fn hibernate_enter(&self) {
        // The runtime asks the kernel for the bug check itself.
        let _ = self.fdo.s3_to_s4();
    }
    fn hibernate_exit(&self) {
        self.fdo.s4_to_s3()
    }
    fn after_start(&self) {
        self.fdo.wake_thread(FdoThread::Balloon);
        let mut elapsed: u64 = 0;
        loop {
            match self.fdo.balloon_startup_wait(elapsed) {
                StartupWait::Done | StartupWait::BugCheck => break,
                StartupWait::Wait | StartupWait::Warn => {
                    if !self
                        .edge
                        .wait_for_pass(FdoThread::Balloon, PASS_WAIT_SECONDS)
                    {
                        elapsed += u64::from(PASS_WAIT_SECONDS);
                    }
                }
            }
        }
        self.fdo.wake_thread(FdoThread::Scan);
    }
    fn balloon_inflated(&self) -> bool {
        self.fdo.veto_stop()
    }
    fn wait_scan(&self) {
        let mut warned = false;
        while !self.edge.wait_for_pass(FdoThread::Scan, PASS_WAIT_SECONDS) {
            if !warned {
                warning!(self.fdo.api(), "FDO: still waiting for the scan thread");
                warned = true;
            }
        }
    }
    fn report_children(&self) -> Vec<String> {
        self.fdo.bus_relations()
    }
    fn reap_children(&self) {
        self.edge.reap_children()
    }
    fn surprise_removed(&self) {
        self.fdo.children_missing()
    }
    fn remove_children(&self) {
        self.fdo.children_missing();
        self.edge.remove_children()
    }
    fn invalidate_device_state(&self) {
        self.edge.invalidate_device_state()
    }
    fn destroy(&self) {
        self.fdo.destroy();
        self.edge.destroy_device()
    }
}

/// What a child PDO's machine needs from the WDM edge beyond the runtime.
pub trait ChildEdge: Sync {
    /// Fill the caller's buffer with a XENBUS interface of this FDO's subsystems
    /// (`xenbus::interface::query::query` over `Providers::from_subsystems`).
    fn query_interface(&self, which: XenbusInterface, query: &InterfaceQuery) -> NtStatus;
    /// The PDO's `BUS_INTERFACE_STANDARD` (forwarding to the FDO's lower bus interface).
    fn query_bus_interface(&self, class: &str, query: &InterfaceQuery) -> NtStatus;
    /// Send `request` to the top of the FDO's stack and wait.
    fn delegate(&self, request: &PnpRequest) -> PnpAnswer;
    /// The PDO of `class` is Deleted; `destroy` → delete its device object now.
    fn pdo_deleted(&self, class: &str, destroy: bool);
}

/// The child's LATE suspend callback: bounces the PDO's power bookkeeping (nothing to
/// redo for a class PDO; counted so a resume is visible).
struct ChildLate(Arc<core::sync::atomic::AtomicU32>);

impl SuspendCallback for ChildLate {
    fn call(&self) {
        self.0.fetch_add(1, core::sync::atomic::Ordering::AcqRel);
    }
}

/// A child PDO's services: the runtime plus the edge.
pub struct PdoServices<E: ChildEdge> {
    fdo: &'static Fdo,
    edge: E,
    pci_device_id: u16,
    late: common::sync::SpinLock<Option<CallbackHandle>>,
    resumes: Arc<core::sync::atomic::AtomicU32>,
}

impl<E: ChildEdge> PdoServices<E> {
    /// Services of a child of `fdo` on the platform device `pci_device_id`.
    pub fn new(fdo: &'static Fdo, edge: E, pci_device_id: u16) -> Self {
        Self {
            fdo,
            edge,
            pci_device_id,
            late: common::sync::SpinLock::new(None),
            resumes: Arc::new(core::sync::atomic::AtomicU32::new(0)),
        }
    }

    /// Resumes seen while the PDO was in D0.
    pub fn resumes(&self) -> u32 {
        self.resumes.load(core::sync::atomic::Ordering::Acquire)
    }

    /// Whether the PDO holds its SUSPEND reference (D0).
    pub fn powered(&self) -> bool {
        self.late.lock().is_some()
    }
}

impl<E: ChildEdge> ChildServices for PdoServices<E> {
    fn vendor_prefix(&self) -> &str {
        xenbus_rs::VENDOR_PREFIX
    }
    fn pci_device_id(&self) -> u16 {
        self.pci_device_id
    }
    fn removal_policy(&self, class: &str) -> RemovalPolicy {
        self.fdo.removal_policy(class)
    }
    fn query_interface(&self, which: XenbusInterface, query: &InterfaceQuery) -> NtStatus {
        self.edge.query_interface(which, query)
    }
    fn query_bus_interface(&self, class: &str, query: &InterfaceQuery) -> NtStatus {
        self.edge.query_bus_interface(class, query)
    }
    fn delegate(&self, request: &PnpRequest) -> PnpAnswer {
        self.edge.delegate(request)
    }
    fn power_up(&self, _class: &str) -> Result<(), NtStatus> {
        let Some(s) = self.fdo.subsystems() else {
            return Ok(());
        };
        let mut late = self.late.lock();
        if late.is_none() {
            *late = Some(
                s.suspend
                    .register(Phase::Late, Arc::new(ChildLate(self.resumes.clone())))?,
            );
        }
        Ok(())
    }
    fn power_down(&self, _class: &str) {
        let handle = self.late.lock().take();
        if let (Some(handle), Some(s)) = (handle, self.fdo.subsystems()) {
            s.suspend.deregister(handle);
        }
    }
    fn is_missing(&self, class: &str) -> bool {
        self.fdo.child_is_missing(class)
    }
    fn eject(&self, class: &str) {
        self.fdo.child_ejected(class);
    }
    fn removed(&self, class: &str, destroy: bool) {
        self.fdo.child_removed(class);
        if !destroy {
            self.fdo.kernel().invalidate_bus_relations();
        }
        self.edge.pdo_deleted(class, destroy);
    }
}

impl Fdo {
    /// `Parameters\<CLASS>\AllowPdoRemove` / `AllowPdoEject` (default 1).
    pub fn removal_policy(&self, class: &str) -> RemovalPolicy {
        let read = |name: &str| -> Option<u32> {
            let parameters = self.parameters()?;
            let os = self.os();
            let key = os.registry_open(Some(parameters), class).ok()?;
            let value = os.registry_query(key, name);
            os.registry_close(key);
            match value {
                Ok(RegValue::Dword(v)) => Some(v),
                _ => None,
            }
        };
        RemovalPolicy::from_registry(read("AllowPdoRemove"), read("AllowPdoEject"))
    }
}
