//! The package on the simulator, for tests and `cargo xtask demo` (feature `harness`; never
//! part of xenbus.sys): a simulated machine with xen.sys's core as the `XenApi`, the
//! simulator's xenstored and toolstack as dom0 ([`World`]), the FDO's kernel actions
//! recorded ([`SimKernel`]), and xenbus's FDO and PDO device stacks for the simulator's PnP
//! manager over the production services [`crate::fdo::FdoServices`] /
//! [`crate::fdo::PdoServices`] ([`stack`]).
//!
//! Set-up failures are bugs of the caller, so they panic with what failed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod stack;

use std::format;
use std::prelude::rust_2021::*;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use common::os::{Os, RegValue};
use xen::driver::Xen;
use xen_sim::guest::HKLM;
use xen_sim::hv::HvConfig;
use xen_sim::machine::{Machine, MachineConfig};
use xen_sim::platform::{Device, DeviceKind};
use xen_sim::toolstack::machine::{HvGrants, StoreService};
use xen_sim::toolstack::{BackendMode, DeviceClass, Toolstack};
use xen_sim::xenstored::Xenstored;

use crate::fdo::{vendor_name, Fdo, FdoBugCheck, FdoKernel, FdoSetup, FdoThread, OsBalloonMemory};

/// xenbus's `Parameters` key, relative to HKLM.
pub const PARAMETERS: &str = r"SYSTEM\CurrentControlSet\Services\xenbus\Parameters";
/// The legacy platform device's DeviceID.
pub const PLATFORM_DEVICE_ID: &str = r"PCI\VEN_5853&DEV_0001&SUBSYS_00015853&REV_01";

/// Leak a value for the `'static` lifetimes the driver objects need.
pub fn leak<T>(t: T) -> &'static T {
    Box::leak(Box::new(t))
}

/// The kernel actions of one FDO, recorded: its threads' KEVENT addresses are
/// `base + 0x100 * (thread + 1)`.
pub struct SimKernel {
    base: usize,
    /// `IoInvalidateDeviceRelations(BusRelations)` calls.
    pub invalidations: AtomicU32,
    /// Bug checks requested.
    pub bug_checks: Mutex<Vec<FdoBugCheck>>,
}

impl SimKernel {
    /// A kernel whose thread events start above `base`.
    pub fn new(base: usize) -> Self {
        Self {
            base,
            invalidations: AtomicU32::new(0),
            bug_checks: Mutex::new(Vec::new()),
        }
    }

    /// `IoInvalidateDeviceRelations` calls so far.
    pub fn invalidations(&self) -> u32 {
        self.invalidations.load(Ordering::SeqCst)
    }

    /// The bug checks requested so far.
    pub fn bug_checks(&self) -> Vec<FdoBugCheck> {
        self.bug_checks.lock().unwrap().clone()
    }
}

impl Default for SimKernel {
    /// Scan 0x7100, suspend 0x7200, balloon 0x7300.
    fn default() -> Self {
        Self::new(0x7000)
    }
}

impl FdoKernel for SimKernel {
    fn thread_event(&self, thread: FdoThread) -> usize {
        let index = match thread {
            FdoThread::Scan => 1,
            FdoThread::Suspend => 2,
            FdoThread::Balloon => 3,
        };
        self.base + 0x100 * index
    }
    fn invalidate_bus_relations(&self) {
        self.invalidations.fetch_add(1, Ordering::SeqCst);
    }
    fn bug_check(&self, reason: FdoBugCheck) {
        self.bug_checks.lock().unwrap().push(reason);
    }
}

/// How to build the machine.
#[derive(Clone)]
pub struct Setup {
    /// vCPUs.
    pub vcpus: u32,
    /// xen.sys registers a `vcpu_info` per CPU (`RegisterVcpuInfo=1`; per-CPU upcalls).
    pub register_vcpu_info: bool,
    /// Values under xenbus's `Parameters` key.
    pub parameters: Vec<(&'static str, RegValue)>,
    /// Values under other keys: (key relative to HKLM, name, value).
    pub registry: Vec<(String, &'static str, RegValue)>,
    /// Keys to create (relative to HKLM), e.g. PnP's `Enum` entries of an earlier boot.
    pub keys: Vec<String>,
    /// `Control\SystemStartOptions`.
    pub start_options: &'static str,
    /// A vendor platform device (e.g. `"C000"`): added to the PCI bus, enumerated by PnP on
    /// an earlier boot, and xen.sys built with it as `VENDOR_DEVICE_ID`.
    pub vendor_device: Option<&'static str>,
    /// The guest-writable balloon nodes a XenServer toolstack creates.
    pub balloon_nodes: bool,
    /// dom0 gives the guest a vbd (xvda, 51712).
    pub vbd: bool,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            vcpus: 2,
            register_vcpu_info: true,
            parameters: Vec::new(),
            registry: Vec::new(),
            keys: Vec::new(),
            start_options: "",
            vendor_device: None,
            balloon_nodes: false,
            vbd: true,
        }
    }
}

/// A booted simulated machine: hypervisor, guest, xen.sys's core and dom0's toolstack.
pub struct World {
    /// The machine.
    pub m: &'static Machine,
    /// xen.sys.
    pub xen: &'static Xen<'static>,
    /// dom0's toolstack.
    pub ts: Mutex<Toolstack>,
    /// The simulator's xenstored.
    pub xs: Arc<Mutex<Xenstored>>,
    /// The guest's domain id.
    pub domid: u32,
    /// vCPUs.
    pub vcpus: u32,
}

impl World {
    /// Build the machine, initialise xen.sys and create the domain in dom0's toolstack.
    pub fn boot(setup: Setup) -> World {
        let m: &'static Machine = leak(Machine::with_config(MachineConfig {
            hv: HvConfig {
                vcpus: setup.vcpus,
                ..HvConfig::default()
            },
            ..MachineConfig::default()
        }));
        {
            let mut r = m.guest.registry();
            let mut set = |key: &str, name: &str, value: RegValue| {
                let key = format!(r"{HKLM}\{key}");
                r.create_key(&key, false).unwrap();
                r.set_value(&key, name, value).unwrap();
            };
            let xen_parameters = format!(r"{}\Parameters", xen::registry::SERVICE_PATH);
            if setup.register_vcpu_info {
                set(&xen_parameters, "RegisterVcpuInfo", RegValue::Dword(1));
            }
            for (name, value) in &setup.parameters {
                set(PARAMETERS, name, value.clone());
            }
            for (key, name, value) in &setup.registry {
                set(key, name, value.clone());
            }
            set(
                r"SYSTEM\CurrentControlSet\Control",
                "SystemStartOptions",
                RegValue::Sz(setup.start_options.into()),
            );
            for key in [
                xen_parameters.as_str(),
                PARAMETERS,
                r"SYSTEM\CurrentControlSet\Services\XENFILT\Parameters",
            ]
            .into_iter()
            .chain(setup.keys.iter().map(String::as_str))
            {
                r.create_key(&format!(r"{HKLM}\{key}"), false).unwrap();
            }
            if let Some(v) = setup.vendor_device {
                let key = format!(
                    r"{HKLM}\SYSTEM\CurrentControlSet\Enum\PCI\VEN_5853&DEV_{v}&SUBSYS_{v}5853&REV_01"
                );
                r.create_key(&key, false).unwrap();
            }
        }
        if let Some(v) = setup.vendor_device {
            let id = u16::from_str_radix(v, 16).expect("a hexadecimal vendor device id");
            m.hv.platform().add_vendor_device(id);
        }
        let xen: &'static Xen<'static> =
            leak(Xen::new(&*m.hv, &*m.guest, None, setup.vendor_device));
        xen.initialize().expect("xen.sys initialises");
        let xs = Arc::new(Mutex::new(Xenstored::default()));
        let svc = StoreService::attach(m, &xs);
        m.hv.set_suspend_hook(Some(svc.suspend_hook()));
        let mut ts = Toolstack::new(&xs, Box::new(HvGrants::new(m.hv.clone())));
        let cfg = StoreService::domain_config(m);
        ts.create_domain(&cfg)
            .expect("the toolstack creates the domain");
        if setup.balloon_nodes {
            for key in ["control/feature-balloon", "control/balloon-active"] {
                let path = format!("/local/domain/{}/{key}", cfg.domid);
                ts.client().mkdir(0, &path).unwrap();
                ts.client()
                    .set_perms(0, &path, &[&format!("n{}", cfg.domid)])
                    .unwrap();
            }
        }
        if setup.vbd {
            ts.add_device(
                cfg.domid,
                DeviceClass::Vbd {
                    vdev: 51712,
                    params: "/srv/disk0.img".into(),
                    sectors: 1024,
                },
                51712,
                BackendMode::Normal,
            )
            .expect("the toolstack adds the vbd");
        }
        World {
            m,
            xen,
            ts: Mutex::new(ts),
            xs,
            domid: cfg.domid,
            vcpus: setup.vcpus,
        }
    }

    /// The Xen platform devices on the PCI bus, in slot order.
    pub fn platform_devices(&self) -> Vec<Device> {
        self.m
            .hv
            .platform()
            .devices()
            .iter()
            .filter(|d| d.kind == DeviceKind::XenPlatform)
            .cloned()
            .collect()
    }

    /// dom0: `xenstore-mkdir /local/domain/<domid>/<node>`.
    pub fn mkdir(&self, node: &str) {
        let path = format!("/local/domain/{}/{node}", self.domid);
        self.ts.lock().unwrap().client().mkdir(0, &path).unwrap();
    }

    /// dom0: `xenstore-rm /local/domain/<domid>/<node>`.
    pub fn rm(&self, node: &str) {
        let path = format!("/local/domain/{}/{node}", self.domid);
        self.ts.lock().unwrap().client().rm(0, &path).unwrap();
    }

    /// Create an FDO on this machine directly (no PnP): `active` records the legacy
    /// platform device as the active one first; the FDO's interrupt is the machine's
    /// upcall handler, active or not.
    pub fn create_fdo(&self, active: bool, kernel: &'static SimKernel) -> &'static Fdo {
        if active {
            use crate::fdo::ActiveConfig;
            assert!(
                crate::active::XenApiActive::new(self.xen).set_active(
                    PLATFORM_DEVICE_ID,
                    "3&1",
                    "slot 2"
                ),
                "the active device is recorded"
            );
        }
        let fdo = self.new_fdo(kernel, vendor_name("XS", 1), active);
        self.route_upcalls(fdo);
        fdo
    }

    /// `Fdo::create` on this machine (xenbus's `Parameters` key, the guest's balloon
    /// memory).
    pub fn new_fdo(
        &self,
        kernel: &'static SimKernel,
        vendor_name: String,
        active: bool,
    ) -> &'static Fdo {
        Fdo::create(FdoSetup {
            api: self.xen,
            os: &*self.m.guest,
            kernel,
            balloon_memory: leak(OsBalloonMemory::new(&*self.m.guest)),
            parameters: self.m.guest.registry_open(None, PARAMETERS).ok(),
            vendor_name,
            active,
        })
    }

    /// The machine's upcalls go to `fdo`'s interrupt handler.
    pub fn route_upcalls(&self, fdo: &'static Fdo) {
        route_upcalls(self.m, fdo);
    }
}

/// The machine's upcalls go to `fdo`'s interrupt handler (None: nowhere).
pub fn route_upcalls(m: &'static Machine, fdo: impl Into<Option<&'static Fdo>>) {
    let Some(fdo) = fdo.into() else {
        m.hv.set_upcall_handler(None);
        return;
    };
    let slot: &'static OnceLock<&'static Fdo> = leak(OnceLock::new());
    slot.set(fdo).ok();
    m.hv.set_upcall_handler(Some(Arc::new(move |vcpu| {
        if let Some(f) = slot.get() {
            f.interrupt(vcpu);
        }
    })));
}

/// A `REG_MULTI_SZ` of `names`.
pub fn multi_sz(names: &[&str]) -> RegValue {
    RegValue::MultiSz(names.iter().map(|s| String::from(*s)).collect())
}
