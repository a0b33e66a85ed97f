//! Shared set-up of the spec §10 integration tests: an active bus FDO brought up to D0 on
//! the simulated machine (xen.sys's core as the XenApi, the simulator's xenstored and
//! toolstack as dom0), exactly as xenbus.sys wires it.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use common::os::{Os, RegValue};
use xen::driver::Xen;
use xen_include::api::XenApi;
use xen_sim::guest::HKLM;
use xen_sim::hv::HvConfig;
use xen_sim::machine::{Machine, MachineConfig};
use xen_sim::toolstack::machine::{HvGrants, StoreService};
use xen_sim::toolstack::Toolstack;
use xen_sim::xenstored::Xenstored;
use xenbus::fdo::{
    vendor_name, ActiveConfig, Fdo, FdoBugCheck, FdoKernel, FdoResources, FdoSetup, FdoThread,
    OsBalloonMemory, Subsystems,
};

/// Event addresses the test kernel gives the FDO's threads.
pub const SCAN_EVENT: usize = 0x7100;
/// The suspend thread's event.
pub const SUSPEND_EVENT: usize = 0x7200;
/// The balloon thread's event.
pub const BALLOON_EVENT: usize = 0x7300;
const PARAMETERS: &str = r"SYSTEM\CurrentControlSet\Services\xenbus\Parameters";
const DEVICE_ID: &str = r"PCI\VEN_5853&DEV_0001&SUBSYS_00015853&REV_01";

/// Leak a value for the `'static` lifetimes the driver objects need.
pub fn leak<T>(t: T) -> &'static T {
    Box::leak(Box::new(t))
}

/// The kernel actions of the FDO, recorded.
#[derive(Default)]
pub struct TestKernel {
    /// IoInvalidateDeviceRelations calls.
    pub invalidations: AtomicU32,
    /// Bug checks requested.
    pub bug_checks: Mutex<Vec<FdoBugCheck>>,
}

impl FdoKernel for TestKernel {
    fn thread_event(&self, thread: FdoThread) -> usize {
        match thread {
            FdoThread::Scan => SCAN_EVENT,
            FdoThread::Suspend => SUSPEND_EVENT,
            FdoThread::Balloon => BALLOON_EVENT,
        }
    }
    fn invalidate_bus_relations(&self) {
        self.invalidations.fetch_add(1, Ordering::SeqCst);
    }
    fn bug_check(&self, reason: FdoBugCheck) {
        self.bug_checks.lock().unwrap().push(reason);
    }
}

/// A simulated machine with an active bus FDO (not yet in D0).
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
    /// The FDO's kernel.
    pub kernel: &'static TestKernel,
    /// The FDO.
    pub fdo: &'static Fdo,
}

impl World {
    /// The resources START hands the runtime.
    pub fn resources(&self) -> FdoResources {
        let hole = self.m.layout().hole.clone();
        FdoResources {
            upcall_vector: Some(0xF3),
            callback_via: 28,
            memory_bar: Some((hole.start, hole.end - hole.start)),
        }
    }

    /// The active FDO's subsystems.
    pub fn s(&self) -> &'static Subsystems {
        self.fdo.subsystems().unwrap()
    }
}

/// Boot a 2-vCPU machine (registered vcpu_info, per-CPU upcalls) and create the active
/// FDO over it; `params` go to xenbus's Parameters key.
pub fn boot(params: &[(&str, RegValue)]) -> World {
    let m: &'static Machine = leak(Machine::with_config(MachineConfig {
        hv: HvConfig {
            vcpus: 2,
            ..HvConfig::default()
        },
        ..MachineConfig::default()
    }));
    {
        let mut r = m.guest.registry();
        let xen_parameters = format!(r"{HKLM}\{}\Parameters", xen::registry::SERVICE_PATH);
        r.create_key(&xen_parameters, false).unwrap();
        r.set_value(&xen_parameters, "RegisterVcpuInfo", RegValue::Dword(1))
            .unwrap();
        let parameters = format!(r"{HKLM}\{PARAMETERS}");
        r.create_key(&parameters, false).unwrap();
        for (name, value) in params {
            r.set_value(&parameters, name, value.clone()).unwrap();
        }
        let xenfilt = format!(r"{HKLM}\SYSTEM\CurrentControlSet\Services\XENFILT\Parameters");
        r.create_key(&xenfilt, false).unwrap();
        let control = format!(r"{HKLM}\SYSTEM\CurrentControlSet\Control");
        r.create_key(&control, false).unwrap();
        r.set_value(&control, "SystemStartOptions", RegValue::Sz(String::new()))
            .unwrap();
    }
    let xen: &'static Xen<'static> = leak(Xen::new(&*m.hv, &*m.guest, None, None));
    xen.initialize().unwrap();
    let xs = Arc::new(Mutex::new(Xenstored::default()));
    let svc = StoreService::attach(m, &xs);
    m.hv.set_suspend_hook(Some(svc.suspend_hook()));
    let mut ts = Toolstack::new(&xs, Box::new(HvGrants::new(m.hv.clone())));
    let cfg = StoreService::domain_config(m);
    ts.create_domain(&cfg).unwrap();
    for key in ["control/feature-balloon", "control/balloon-active"] {
        let path = format!("/local/domain/{}/{key}", cfg.domid);
        ts.client().mkdir(0, &path).unwrap();
        ts.client()
            .set_perms(0, &path, &[&format!("n{}", cfg.domid)])
            .unwrap();
    }
    let slot: &'static OnceLock<&'static Fdo> = leak(OnceLock::new());
    m.hv.set_upcall_handler(Some(Arc::new(move |vcpu| {
        if let Some(f) = slot.get() {
            f.interrupt(vcpu);
        }
    })));
    let parameters = m.guest.registry_open(None, PARAMETERS).ok();
    let kernel: &'static TestKernel = leak(TestKernel::default());
    assert!(xenbus::active::XenApiActive::new(xen as &dyn XenApi)
        .set_active(DEVICE_ID, "3&1", "slot 2"));
    let fdo = Fdo::create(FdoSetup {
        api: xen,
        os: &*m.guest,
        kernel,
        balloon_memory: leak(OsBalloonMemory::new(&*m.guest)),
        parameters,
        vendor_name: vendor_name("XS", 1),
        active: true,
    });
    slot.set(fdo).ok();
    World {
        m,
        xen,
        ts: Mutex::new(ts),
        xs,
        domid: cfg.domid,
        kernel,
        fdo,
    }
}

/// Boot and bring the FDO to D0.
pub fn boot_d0() -> World {
    let w = boot(&[]);
    w.fdo.d3_to_d0(w.resources()).unwrap();
    w
}
