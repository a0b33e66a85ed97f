//! Test support: a simulated machine with xen.sys's core (`xen::Xen`) as the `XenApi`,
//! the way xenbus.sys runs on a real host.
#![cfg(test)]
#![allow(dead_code)]

use xen_sim::hv::HvConfig;
use xen_sim::machine::{Machine, MachineConfig};

/// A booted machine: hypervisor, Windows guest and an initialised xen.sys core.
pub struct Sim {
    pub m: &'static Machine,
    pub xen: &'static xen::driver::Xen<'static>,
}

impl Sim {
    pub fn new(vcpus: u32) -> Sim {
        Self::build(vcpus, false)
    }

    /// A machine whose xen.sys registers a `vcpu_info` for every CPU (registry
    /// `RegisterVcpuInfo=1`), which per-CPU upcall vectors need.
    pub fn with_registered_vcpu_info(vcpus: u32) -> Sim {
        Self::build(vcpus, true)
    }

    /// A one-CPU machine whose grant table holds at most `frames` frames.
    pub fn with_grant_frames(frames: u32) -> Sim {
        Self::build_with(
            HvConfig {
                vcpus: 1,
                max_grant_frames: frames,
                ..HvConfig::default()
            },
            false,
        )
    }

    fn build(vcpus: u32, register: bool) -> Sim {
        Self::build_with(
            HvConfig {
                vcpus,
                ..HvConfig::default()
            },
            register,
        )
    }

    fn build_with(hv: HvConfig, register: bool) -> Sim {
        let m: &'static Machine = Box::leak(Box::new(Machine::with_config(MachineConfig {
            hv,
            ..MachineConfig::default()
        })));
        if register {
            let key = format!(
                "{}\\{}\\Parameters",
                xen_sim::guest::HKLM,
                xen::registry::SERVICE_PATH
            );
            let mut r = m.guest.registry();
            r.create_key(&key, false).unwrap();
            r.set_value(&key, "RegisterVcpuInfo", common::os::RegValue::Dword(1))
                .unwrap();
        }
        let xen: &'static xen::driver::Xen<'static> = Box::leak(Box::new(xen::driver::Xen::new(
            &*m.hv, &*m.guest, None, None,
        )));
        xen.initialize()
            .expect("xen.sys initialises on the simulator");
        Sim { m, xen }
    }
}

#[test]
fn the_simulated_xen_answers() {
    use xen_include::api::XenApi;
    let s = Sim::new(2);
    assert!(s.xen.xen_version().is_ok());
    assert_eq!(s.xen.system_processor_vcpu_id(1), Ok(1));
}
