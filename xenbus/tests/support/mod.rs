//! Shared set-up of the spec §10 integration tests: an active bus FDO on the simulated
//! machine (`xenbus::harness`: xen.sys's core as the XenApi, the simulator's xenstored and
//! toolstack as dom0), exactly as xenbus.sys wires it.
#![allow(dead_code)]

use common::os::RegValue;
use xenbus::fdo::{Fdo, FdoResources, Subsystems};
use xenbus::harness::{self, SimKernel};

pub use xenbus::harness::leak;

/// Event addresses the test kernel gives the FDO's threads.
pub const SCAN_EVENT: usize = 0x7100;
/// The suspend thread's event.
pub const SUSPEND_EVENT: usize = 0x7200;
/// The balloon thread's event.
pub const BALLOON_EVENT: usize = 0x7300;

/// A simulated machine (`harness::World`, dereferenced) with an active bus FDO (not yet
/// in D0).
pub struct World {
    machine: harness::World,
    /// The FDO's kernel.
    pub kernel: &'static SimKernel,
    /// The FDO.
    pub fdo: &'static Fdo,
}

impl std::ops::Deref for World {
    type Target = harness::World;
    fn deref(&self) -> &harness::World {
        &self.machine
    }
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

/// Boot a 2-vCPU machine (registered vcpu_info, per-CPU upcalls, the balloon nodes, no
/// vbd) and create the active FDO over it; `params` go to xenbus's Parameters key.
pub fn boot(params: &[(&'static str, RegValue)]) -> World {
    let machine = harness::World::boot(harness::Setup {
        parameters: params.to_vec(),
        balloon_nodes: true,
        vbd: false,
        ..harness::Setup::default()
    });
    let kernel = leak(SimKernel::default());
    let fdo = machine.create_fdo(true, kernel);
    World {
        machine,
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
