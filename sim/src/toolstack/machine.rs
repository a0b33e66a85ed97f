//! Attaching xenstored and the backends to a simulated [`Machine`]: the guest's store ring
//! (`HVM_PARAM_STORE_PFN`) is served whenever the guest signals `HVM_PARAM_STORE_EVTCHN`,
//! and backends map the guest's grants through the hypervisor.
#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::hv::{Hypervisor, SuspendEvent, SuspendHook, SuspendOutcome};
use crate::machine::Machine;
use crate::xenstored::ring::{RingMemory, RingPass};

use super::backend::GrantMapper;
use super::client::{lock, SharedStore};
use super::DomainConfig;

/// The guest's ring page, reached through the hypervisor's view of guest memory.
#[derive(Clone, Copy)]
pub struct GuestPage<'a> {
    hv: &'a Hypervisor,
    gfn: u64,
}

impl<'a> GuestPage<'a> {
    /// The page at guest frame `gfn`.
    pub fn new(hv: &'a Hypervisor, gfn: u64) -> Self {
        Self { hv, gfn }
    }
}

impl RingMemory for GuestPage<'_> {
    fn load_u32(&self, offset: usize) -> u32 {
        let mut b = [0u8; 4];
        match self.hv.read_guest(self.gfn, offset, &mut b) {
            Ok(()) => u32::from_le_bytes(b),
            Err(_) => 0,
        }
    }

    fn store_u32(&mut self, offset: usize, value: u32) {
        let _ = self.hv.write_guest(self.gfn, offset, &value.to_le_bytes());
    }

    fn read_bytes(&self, offset: usize, out: &mut [u8]) {
        let _ = self.hv.read_guest(self.gfn, offset, out);
    }

    fn write_bytes(&mut self, offset: usize, data: &[u8]) {
        let _ = self.hv.write_guest(self.gfn, offset, data);
    }
}

/// Grants mapped by dom0 backends through the hypervisor (`GNTTABOP_map_grant_ref` with
/// GTF_reading/GTF_writing set in the guest's entry while mapped).
pub struct HvGrants {
    hv: Arc<Hypervisor>,
}

impl HvGrants {
    /// A mapper for dom0 backends of `hv`'s guest.
    pub fn new(hv: Arc<Hypervisor>) -> Self {
        Self { hv }
    }
}

impl GrantMapper for HvGrants {
    fn map(&mut self, _domid: u32, gref: u32, readonly: bool) -> Result<u32, String> {
        self.hv
            .backend_map_grant(0, gref, readonly)
            .map(|(handle, _)| handle)
            .map_err(|status| format!("{status:?}"))
    }

    fn unmap(&mut self, _domid: u32, handle: u32) {
        let _ = self.hv.backend_unmap_grant(0, handle);
    }
}

/// xenstored serving a machine's guest over its real ring page and event channel.
#[derive(Clone)]
pub struct StoreService {
    store: SharedStore,
    hv: Arc<Hypervisor>,
    domid: u32,
    gfn: u64,
    notifications: Arc<AtomicUsize>,
}

impl StoreService {
    /// Serves `machine`'s guest from `store`: every notification on dom0's end of the store
    /// channel runs a ring pass, and replies are signalled back to the guest.
    pub fn attach(machine: &Machine, store: &SharedStore) -> Self {
        let svc = Self {
            store: Arc::clone(store),
            hv: Arc::clone(&machine.hv),
            domid: u32::from(machine.hv.domid()),
            gfn: machine.layout().store_gfn,
            notifications: Arc::new(AtomicUsize::new(0)),
        };
        svc.rebind(machine);
        let me = svc.clone();
        lock(store).set_ring_kicker(
            svc.domid,
            Some(Arc::new(move || {
                me.pump();
            })),
        );
        svc
    }

    /// Registers the notification handler on dom0's current store port (ports change when
    /// the guest resumes).
    pub fn rebind(&self, _machine: &Machine) {
        self.rebind_current();
    }

    /// [`StoreService::rebind`] without the machine: for the hypervisor's suspend hook.
    pub fn rebind_current(&self) {
        let port = self.hv.ring_backend(true);
        let me = self.clone();
        self.hv.set_backend_handler(
            0,
            port,
            Some(Arc::new(move |_port| {
                me.pump();
            })),
        );
    }

    /// One ring pass (what a notification triggers); returns what it did.
    pub fn pump(&self) -> RingPass {
        let mut kicks = 0usize;
        let pass = {
            let mut xs = lock(&self.store);
            let mut page = GuestPage::new(&self.hv, self.gfn);
            xs.process_ring(self.domid, &mut page, &mut || kicks += 1)
        };
        if kicks > 0 {
            self.notifications.fetch_add(1, Ordering::Relaxed);
            let port = self.hv.ring_backend(true);
            let _ = self.hv.backend_send(0, port);
        }
        pass
    }

    /// What the toolstack and xenstored do when a suspend of the guest completes: after a
    /// cancelled suspend nothing changes; after a resume on a new host (save/restore or
    /// migration) the guest's store connection is a new one — the destination xenstored
    /// has no watches or transactions of it and starts the ring from zero — and it is
    /// served on dom0's store port.
    pub fn on_suspend(&self, ev: SuspendEvent) {
        self.rebind_current();
        if ev.outcome != SuspendOutcome::Resume {
            return;
        }
        let port = self.hv.param(crate::hv::abi::HvmParam::STORE_EVTCHN) as u32;
        let mut xs = lock(&self.store);
        if xs.reconnect_domain(self.domid, self.gfn, port).is_ok() {
            let mut page = GuestPage::new(&self.hv, self.gfn);
            xs.reset_ring_if_introduced(self.domid, &mut page);
        }
    }

    /// [`StoreService::on_suspend`] as the hypervisor's suspend hook.
    pub fn suspend_hook(&self) -> SuspendHook {
        let me = self.clone();
        Arc::new(move |ev| me.on_suspend(ev))
    }

    /// Event-channel notifications sent to the guest so far (one per ring pass that moved
    /// data).
    pub fn notifications(&self) -> usize {
        self.notifications.load(Ordering::Relaxed)
    }

    /// The domain configuration the toolstack uses for this machine's guest (its rings and
    /// channels as the machine built them).
    pub fn domain_config(machine: &Machine) -> DomainConfig {
        let mut cfg = DomainConfig::new(u32::from(machine.hv.domid()));
        let store = machine.store();
        let console = machine.console();
        cfg.store_gfn = store.gfn;
        cfg.store_port = store.guest_port;
        cfg.console_gfn = console.gfn;
        cfg.console_port = console.guest_port;
        cfg
    }
}
