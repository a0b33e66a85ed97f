//! A machine: the clock, the hypervisor model, the Windows guest model and the platform,
//! wired together the way a Xen toolstack builds an HVM domain (store and console rings,
//! their event channels to dom0, the reserved grant entries).
//!
//! The xenstored and console models attach through [`Machine::store`] / [`Machine::console`]:
//! dom0's end of each channel is a backend port whose notifications can be handled with
//! [`crate::hv::Hypervisor::set_backend_handler`], and the ring is reachable at a stable
//! host address in the hypervisor's direct map.

use std::sync::Arc;

use crate::clock::Clock;
use crate::guest::WindowsGuest;
use crate::hv::abi::*;
use crate::hv::{HvConfig, Hypervisor, Layout};

/// Machine configuration.
#[derive(Clone, Debug)]
pub struct MachineConfig {
    /// Hypervisor and domain configuration.
    pub hv: HvConfig,
    /// Wall-clock time at boot, seconds since the Unix epoch.
    pub boot_unix_secs: u64,
    /// Virtual nanoseconds added per clock read (0 = manual time).
    pub clock_step_ns: u64,
}

impl Default for MachineConfig {
    fn default() -> Self {
        MachineConfig {
            hv: HvConfig::default(),
            boot_unix_secs: 1_767_225_600, // 2026-01-01T00:00:00Z
            clock_step_ns: 1_000,
        }
    }
}

/// One end of a toolstack-created ring channel (xenstore or console).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingChannel {
    /// Guest frame of the ring page.
    pub gfn: u64,
    /// The backend domain (0).
    pub backend_dom: u16,
    /// The backend's port.
    pub backend_port: u32,
    /// The guest's port (as in the HVM parameter).
    pub guest_port: u32,
}

/// A simulated Xen host with one Windows HVM guest.
pub struct Machine {
    /// The virtual clock.
    pub clock: Arc<Clock>,
    /// The hypervisor.
    pub hv: Arc<Hypervisor>,
    /// The guest OS model.
    pub guest: Arc<WindowsGuest>,
    layout: Layout,
}

impl Machine {
    /// Build a machine with the default configuration.
    pub fn new() -> Self {
        Self::with_config(MachineConfig::default())
    }

    /// Build a machine.
    pub fn with_config(cfg: MachineConfig) -> Self {
        let clock = Arc::new(Clock::new(cfg.boot_unix_secs, cfg.clock_step_ns));
        let processors = cfg.hv.vcpus;
        let hv =
            Arc::new(Hypervisor::new(cfg.hv, clock.clone()).expect("host memory for the machine"));
        let layout = hv.layout();
        let guest = Arc::new(WindowsGuest::new(
            hv.clone(),
            clock.clone(),
            processors,
            layout.ram.clone(),
        ));
        let m = Machine {
            clock,
            hv,
            guest,
            layout,
        };
        for (address, table) in crate::guest::acpi::hvm_tables(processors) {
            m.guest.set_firmware_bytes(address, table);
        }
        let hole = &m.layout.hole;
        let page = crate::hv::memory::PAGE_SIZE as u64;
        m.hv.platform()
            .set_memory_bar(hole.start * page, (hole.end - hole.start) * page);
        m.build_domain();
        m
    }

    /// What the toolstack does when it builds the domain: ring pages and their parameters,
    /// the channels to dom0 (bound by dom0 as xenstored and xenconsoled do), and the
    /// reserved grant entries 0 (console) and 1 (xenstore).
    fn build_domain(&self) {
        let me = self.hv.domid();
        self.hv
            .set_param(HvmParam::STORE_PFN, self.layout.store_gfn);
        self.hv
            .set_param(HvmParam::CONSOLE_PFN, self.layout.console_gfn);
        self.hv
            .toolstack_seed_grant(GNTTAB_RESERVED_CONSOLE, 0, self.layout.console_gfn);
        self.hv
            .toolstack_seed_grant(GNTTAB_RESERVED_XENSTORE, 0, self.layout.store_gfn);
        for (param, ring) in [
            (HvmParam::STORE_EVTCHN, RingKind::Store),
            (HvmParam::CONSOLE_EVTCHN, RingKind::Console),
        ] {
            let guest_port = self
                .hv
                .evtchn_alloc_unbound(me, 0)
                .expect("store/console port");
            let backend_port = self
                .hv
                .backend_bind_interdomain(0, me, guest_port)
                .expect("dom0 binds store/console");
            self.hv.set_param(param, guest_port as u64);
            self.hv
                .set_ring_backend(ring == RingKind::Store, backend_port);
        }
        // dom0 has not looked at its ports yet.
        self.hv.backend_take_pending(0);
    }

    /// The guest memory layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The xenstore ring channel as it stands now (ports change across resume).
    pub fn store(&self) -> RingChannel {
        self.ring(true)
    }

    /// The console ring channel as it stands now.
    pub fn console(&self) -> RingChannel {
        self.ring(false)
    }

    fn ring(&self, store: bool) -> RingChannel {
        let (gfn, param) = if store {
            (self.layout.store_gfn, HvmParam::STORE_EVTCHN)
        } else {
            (self.layout.console_gfn, HvmParam::CONSOLE_EVTCHN)
        };
        RingChannel {
            gfn,
            backend_dom: 0,
            backend_port: self.hv.ring_backend(store),
            guest_port: self.hv.param(param) as u32,
        }
    }

    /// Host address of a ring page as dom0 maps it (stable for the machine's lifetime).
    pub fn ring_ptr(&self, gfn: u64) -> *mut u8 {
        self.hv
            .frame_ptr_of_gfn(gfn)
            .expect("ring page is populated")
    }
}

impl Default for Machine {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum RingKind {
    Store,
    Console,
}
