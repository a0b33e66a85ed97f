//! The kernel side of the FDO runtime ([`crate::fdo::runtime`]): at `AddDevice` the
//! platform device's identity is asked from the stack below (DeviceID, InstanceID,
//! LocationInformation), the vendor checked and the active device decided through xen.sys's
//! `Config*` record; the runtime is created with [`KernelFdo`] as its kernel (thread wake
//! events, `IoInvalidateDeviceRelations`, bug checks) and, for the active FDO, its system
//! threads start: scan, suspend, balloon (1 s retry), store watchdog (15 s) and cache
//! monitor (5 s), each a loop around the runtime's step.
//!
//! Bug checks the runtime asks for: `KeBugCheckEx(0x58454E42 ("XENB"), reason, 0, 0, 0)`
//! with reason 1 = balloon inflation timeout, 2 = an interface still referenced when
//! entering hibernate.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

use common::sync::{PassiveLock, SpinLock};
use common::wdm::interrupt::{processor_index, ConnectedInterrupt, Interrupt};
use common::wdm::kernel::{Event, SystemThread};
use common::wdm::log::{log, Level};
use common::wdm::os::KernelOs;
use common::wdm::request;
use windows_sys::Wdk::Foundation::DEVICE_OBJECT;
use windows_sys::Wdk::System::SystemServices::{
    BusQueryDeviceID, BusQueryInstanceID, BusRelations, IoInvalidateDeviceRelations, KeBugCheckEx,
};
use windows_sys::Win32::Foundation::{
    NTSTATUS, STATUS_INSUFFICIENT_RESOURCES, STATUS_NO_SUCH_DEVICE,
};

use super::balloon::KernelBalloonMemory;
use super::entry::{DRIVER, XEN};
use super::ids::pci_ids;
use crate::active::XenApiActive;
use crate::balloon::{Pass, StartupWait};
use crate::fdo::{check_platform_vendor, decide_active, vendor_name};
use crate::fdo::{Fdo as Runtime, FdoBugCheck, FdoKernel, FdoResources, FdoSetup, FdoThread};
use crate::pnp::fdo::{BusResources, InterruptConnection};

/// `KeBugCheckEx` code of the FDO runtime's bug checks (`"XENB"`).
pub const BUGCHECK_XENBUS_FDO: u32 = 0x5845_4E42;
/// 100 ns units per second.
const SECOND: u64 = 10_000_000;

/// What the runtime asks of the kernel, for one FDO.
pub struct KernelFdo {
    /// The platform PCI PDO (for `IoInvalidateDeviceRelations`).
    pdo: *mut DEVICE_OBJECT,
    /// Wake events of the scan, suspend and balloon threads; they exist before the threads
    /// (watches may fire first) and are never freed (the runtime lives as long as the image).
    events: [&'static Event; 3],
}

// SAFETY: the PDO pointer is only passed to IoInvalidateDeviceRelations, which any thread
// may call while the FDO is attached; the events are kernel objects.
unsafe impl Sync for KernelFdo {}
// SAFETY: as above.
unsafe impl Send for KernelFdo {}

fn index(thread: FdoThread) -> usize {
    match thread {
        FdoThread::Scan => 0,
        FdoThread::Suspend => 1,
        FdoThread::Balloon => 2,
    }
}

impl FdoKernel for KernelFdo {
    fn thread_event(&self, thread: FdoThread) -> usize {
        self.events
            .get(index(thread))
            .map_or(0, |event| event.as_ptr() as usize)
    }

    fn invalidate_bus_relations(&self) {
        // SAFETY: the PDO stays valid while the FDO is attached above it.
        unsafe { IoInvalidateDeviceRelations(self.pdo, BusRelations) };
    }

    fn bug_check(&self, reason: FdoBugCheck) {
        let code = match reason {
            FdoBugCheck::BalloonInflationTimeout => 1,
            FdoBugCheck::ReferencesAtHibernate(_) => 2,
        };
        log(Level::Error, format_args!("bug check: {reason:?}"));
        // SAFETY: KeBugCheckEx takes plain numbers and does not return.
        unsafe { KeBugCheckEx(BUGCHECK_XENBUS_FDO, code, 0, 0, 0) };
    }
}

/// The runtime of one FDO with its threads.
pub struct FdoRuntime {
    /// The runtime (lives as long as the image).
    pub runtime: &'static Runtime,
    /// The platform device's PCI device ID (children's IDs and text name it).
    pub pci_device: u16,
    /// The threads of the active FDO (joined at REMOVE_DEVICE).
    /// PASSIVE_LEVEL: threads are created and joined under it.
    threads: PassiveLock<Vec<SystemThread>>,
    /// What START_DEVICE gave the FDO, for every later D3→D0.
    resources: SpinLock<FdoResources>,
    /// The connected interrupts (active FDO, between START and STOP/REMOVE).
    /// PASSIVE_LEVEL: interrupts are disconnected when dropped.
    interrupts: PassiveLock<Vec<ConnectedInterrupt>>,
    /// Wake events of the scan, suspend and balloon threads.
    events: [&'static Event; 3],
}

/// The balloon's page allocator, shared by every FDO (only the active one balloons).
/// PASSIVE_LEVEL: created under it.
static BALLOON_MEMORY: PassiveLock<Option<&'static KernelBalloonMemory>> = PassiveLock::new(None);

fn balloon_memory() -> &'static KernelBalloonMemory {
    let mut slot = BALLOON_MEMORY.lock();
    if let Some(memory) = *slot {
        return memory;
    }
    let memory: &'static KernelBalloonMemory = Box::leak(Box::new(KernelBalloonMemory::new()));
    *slot = Some(memory);
    memory
}

/// Ask the stack below for the platform device's identity and create its runtime.
///
/// # Safety
/// `pdo` is the platform PCI PDO and `lower` the device below the new FDO; PASSIVE_LEVEL.
pub unsafe fn create(
    pdo: *mut DEVICE_OBJECT,
    lower: *mut DEVICE_OBJECT,
) -> Result<FdoRuntime, NTSTATUS> {
    // SAFETY: forwarded caller contract.
    let (device_id, instance_id, location) = unsafe {
        (
            request::query_id(lower, BusQueryDeviceID)?,
            request::query_id(lower, BusQueryInstanceID).unwrap_or_default(),
            request::query_location(lower).unwrap_or_default(),
        )
    };
    let Some((vendor, device)) = pci_ids(&device_id) else {
        log(
            Level::Error,
            format_args!("AddDevice: {device_id:?} is not a PCI device"),
        );
        return Err(STATUS_NO_SUCH_DEVICE);
    };
    if check_platform_vendor(vendor).is_err() {
        log(
            Level::Error,
            format_args!("AddDevice: vendor {vendor:04X} is not the Xen platform device"),
        );
        return Err(STATUS_NO_SUCH_DEVICE);
    }
    // SAFETY: forwarded caller contract.
    let filter = unsafe { super::emulated::activation(lower, &device_id) };
    let active = decide_active(
        filter,
        &device_id,
        &instance_id,
        &location,
        &mut XenApiActive::new(&XEN),
    );
    let events: [&'static Event; 3] = [
        Box::leak(Event::notification()),
        Box::leak(Event::notification()),
        Box::leak(Event::notification()),
    ];
    let kernel: &'static KernelFdo = Box::leak(Box::new(KernelFdo { pdo, events }));
    let parameters = DRIVER.lock().as_ref().map(|d| d.parameters());
    let runtime = Runtime::create(FdoSetup {
        api: &XEN,
        os: &KernelOs,
        kernel,
        balloon_memory: balloon_memory(),
        parameters,
        vendor_name: vendor_name(xenbus_rs::VENDOR_PREFIX, device),
        active,
    });
    log(
        Level::Info,
        format_args!(
            "AddDevice: {device_id} ({}) {}",
            runtime.vendor_name(),
            if active { "ACTIVE" } else { "inactive" }
        ),
    );
    let fdo = FdoRuntime {
        runtime,
        pci_device: device,
        threads: PassiveLock::new(Vec::new()),
        resources: SpinLock::new(FdoResources::default()),
        interrupts: PassiveLock::new(Vec::new()),
        events,
    };
    Ok(fdo)
}

impl FdoRuntime {
    fn spawn_threads(&self, events: [&'static Event; 3]) {
        let fdo = self.runtime;
        let [scan, suspend, balloon] = events;
        let mut threads = self.threads.lock();
        let mut spawn = |name: &str, result: Result<SystemThread, NTSTATUS>| match result {
            Ok(thread) => threads.push(thread),
            Err(status) => log(
                Level::Error,
                format_args!("{name} thread not created ({status:#010x})"),
            ),
        };
        spawn(
            "scan",
            SystemThread::spawn_on(
                scan,
                Box::new(move |c| {
                    while c.wait(None) {
                        fdo.scan_step();
                    }
                }),
            ),
        );
        spawn(
            "suspend",
            SystemThread::spawn_on(
                suspend,
                Box::new(move |c| {
                    while c.wait(None) {
                        fdo.suspend_step();
                    }
                }),
            ),
        );
        spawn(
            "balloon",
            SystemThread::spawn_on(
                balloon,
                Box::new(move |c| {
                    let mut retry = false;
                    while c.wait(retry.then_some(SECOND)) {
                        retry = matches!(fdo.balloon_step(), Some(Pass::Retry(_) | Pass::Busy));
                    }
                }),
            ),
        );
        spawn(
            "store watchdog",
            SystemThread::spawn(Box::new(move |c| {
                while c.wait(Some(15 * SECOND)) {
                    fdo.store_watchdog_step();
                }
            })),
        );
        spawn(
            "cache monitor",
            SystemThread::spawn(Box::new(move |c| {
                while c.wait(Some(5 * SECOND)) {
                    fdo.cache_monitor_step();
                }
            })),
        );
    }

    /// Start the scan, suspend, balloon, store watchdog and cache monitor threads
    /// (START_DEVICE of the active FDO); a no-op while they run.
    pub fn start_threads(&self) -> Result<(), NTSTATUS> {
        if self.threads.lock().is_empty() {
            self.spawn_threads(self.events);
        }
        if self.threads.lock().is_empty() {
            return Err(STATUS_INSUFFICIENT_RESOURCES);
        }
        Ok(())
    }

    /// Alert and join the threads (STOP/REMOVE).
    pub fn stop_threads(&self) {
        let threads: Vec<SystemThread> = core::mem::take(&mut *self.threads.lock());
        for thread in threads {
            thread.join();
        }
    }

    /// After D3→D0 at START: kick the threads and wait for the balloon's first pass (a
    /// warning after 10 s, the runtime's bug check after 1200 s).
    pub fn after_start(&self) {
        self.runtime.kick_threads();
        // Nobody signals `tick`: each wait is one second of the startup clock.
        let tick = Event::notification();
        let mut elapsed = 0;
        loop {
            match self.runtime.balloon_startup_wait(elapsed) {
                StartupWait::Done | StartupWait::BugCheck => break,
                StartupWait::Wait | StartupWait::Warn => {
                    tick.wait(Some(SECOND));
                    elapsed += 1;
                }
            }
        }
    }

    /// Connect every interrupt START gave the active FDO (the line one delivers CPU 0's
    /// events through the callback via, each message one its CPU's).
    ///
    /// # Safety
    /// `pdo` is the platform PCI PDO; PASSIVE_LEVEL; the interrupts are START_DEVICE's.
    pub unsafe fn connect_interrupts(
        &self,
        pdo: *mut DEVICE_OBJECT,
        interrupts: &[InterruptConnection],
    ) -> Result<(), NTSTATUS> {
        let runtime = self.runtime;
        let mut connected = Vec::new();
        for interrupt in interrupts {
            let cpu = if interrupt.message {
                interrupt
                    .processor()
                    .and_then(|number| u8::try_from(number).ok())
                    .map_or(0, |number| processor_index(interrupt.group, number))
            } else {
                0
            };
            let translated = Interrupt {
                message: interrupt.message,
                latched: interrupt.latched,
                shared: interrupt.shared,
                level: interrupt.irql as u16,
                group: interrupt.group,
                vector: interrupt.vector,
                affinity: interrupt.affinity,
            };
            // SAFETY: forwarded caller contract.
            let done = unsafe {
                ConnectedInterrupt::connect(
                    pdo,
                    &translated,
                    Box::new(move || runtime.interrupt(cpu)),
                )
            };
            match done {
                Ok(done) => {
                    log(
                        Level::Info,
                        format_args!(
                            "{} interrupt: CPU {cpu} vector {:#04x}",
                            if interrupt.message { "message" } else { "line" },
                            done.vector
                        ),
                    );
                    connected.push(done);
                }
                Err(status) => {
                    log(
                        Level::Error,
                        format_args!("IoConnectInterruptEx failed ({status:#010x})"),
                    );
                    drop(connected);
                    return Err(status);
                }
            }
        }
        *self.interrupts.lock() = connected;
        Ok(())
    }

    /// Disconnect the interrupts.
    pub fn disconnect_interrupts(&self) {
        let interrupts: Vec<ConnectedInterrupt> = core::mem::take(&mut *self.interrupts.lock());
        drop(interrupts);
    }

    /// D3→D0 with what START gave the FDO.
    pub fn power_up(&self, bus: &BusResources) -> Result<(), NTSTATUS> {
        let resources = super::resources::fdo_resources(bus);
        *self.resources.lock() = resources;
        self.runtime.d3_to_d0(resources)
    }

    /// The classes to report in BusRelations.
    pub fn bus_relations(&self) -> Vec<String> {
        self.runtime.bus_relations()
    }
}
