//! A model of the toolstack (libxl) and the dom0 backends: the domain's XenStore home with
//! its standard keys, devices of classes vif, vbd and vkbd whose backends perform the
//! `XenbusState` handshake, control/shutdown requests, balloon targets, and fault
//! injection for the store side (EAGAIN commits, corrupt ring indices, a backend that never
//! connects, a slow xenstored).
#![forbid(unsafe_code)]

pub mod backend;
pub mod client;
pub mod machine;

use std::collections::BTreeMap;

use xen_include::xen::io::xenbus::XenbusState;

pub use backend::{Backend, BackendMode, DeviceClass, GrantMapper, NoGrants};
pub use client::{lock, SharedStore, StoreClient, StoreError, WatchEvent};

use crate::xenstored::ring::RingMemory;

/// What the toolstack knows when it builds a domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainConfig {
    /// Domain id.
    pub domid: u32,
    /// `name`.
    pub name: String,
    /// The VM's UUID (`vm` is `/vm/<uuid>`).
    pub uuid: String,
    /// `memory/static-max` in KiB.
    pub static_max_kib: u64,
    /// Initial `memory/target` in KiB.
    pub target_kib: u64,
    /// `memory/videoram` in KiB.
    pub videoram_kib: u64,
    /// Guest frame of the xenstore ring (`store/ring-ref`).
    pub store_gfn: u64,
    /// The guest's store event channel (`store/port`).
    pub store_port: u32,
    /// Guest frame of the console ring.
    pub console_gfn: u64,
    /// The guest's console event channel.
    pub console_port: u32,
}

impl DomainConfig {
    /// A typical Windows HVM guest: 2 GiB, 8 MiB video RAM, rings at the frames hvmloader
    /// uses.
    pub fn new(domid: u32) -> Self {
        Self {
            domid,
            name: format!("win-guest-{domid}"),
            uuid: format!("00000000-0000-4000-8000-{domid:012x}"),
            static_max_kib: 2 * 1024 * 1024,
            target_kib: 2 * 1024 * 1024,
            videoram_kib: 8 * 1024,
            store_gfn: 0xfeffc,
            store_port: 1,
            console_gfn: 0xfefff,
            console_port: 2,
        }
    }

    /// The domain's home, `/local/domain/<domid>`.
    pub fn home(&self) -> String {
        format!("/local/domain/{}", self.domid)
    }
}

/// A shutdown request written to `control/shutdown`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShutdownRequest {
    /// Suspend (save or migrate).
    Suspend,
    /// Power off.
    Poweroff,
    /// Reboot.
    Reboot,
}

impl ShutdownRequest {
    /// The value the toolstack writes.
    pub fn as_str(self) -> &'static str {
        match self {
            ShutdownRequest::Suspend => "suspend",
            ShutdownRequest::Poweroff => "poweroff",
            ShutdownRequest::Reboot => "reboot",
        }
    }
}

/// Writes the domain home as libxl does (in one transaction, retried on `EAGAIN`): the
/// guest may read its home, owns `control/shutdown`, `data`, `drivers`, `feature`,
/// `attr`, `error` and the `control/feature-*` keys, and cannot touch the rest.
pub fn write_domain_home(client: &mut StoreClient, cfg: &DomainConfig) -> Result<u32, StoreError> {
    let home = cfg.home();
    let d = cfg.domid;
    let ro = ["n0".to_string(), format!("r{d}")];
    let ro: Vec<&str> = ro.iter().map(String::as_str).collect();
    let rw = format!("n{d}");
    let vm = format!("/vm/{}", cfg.uuid);
    client.transaction(10, |c, tx| {
        c.rm_if_exists(tx, &home)?;
        c.mkdir(tx, &home)?;
        c.set_perms(tx, &home, &ro)?;
        c.mkdir(tx, &vm)?;
        c.set_perms(tx, &vm, &ro)?;
        c.write(tx, &format!("{vm}/name"), cfg.name.as_bytes())?;
        c.write(tx, &format!("{vm}/uuid"), cfg.uuid.as_bytes())?;
        for (key, value) in [
            ("name", cfg.name.clone()),
            ("domid", d.to_string()),
            ("vm", vm.clone()),
            ("memory/static-max", cfg.static_max_kib.to_string()),
            ("memory/target", cfg.target_kib.to_string()),
            ("memory/videoram", cfg.videoram_kib.to_string()),
            ("store/port", cfg.store_port.to_string()),
            ("store/ring-ref", cfg.store_gfn.to_string()),
            ("console/port", cfg.console_port.to_string()),
            ("console/ring-ref", cfg.console_gfn.to_string()),
            (
                "control/platform-feature-multiprocessor-suspend",
                "1".into(),
            ),
            ("control/platform-feature-xs_reset_watches", "1".into()),
        ] {
            c.write(tx, &format!("{home}/{key}"), value.as_bytes())?;
        }
        for dir in ["device", "control", "memory"] {
            c.mkdir(tx, &format!("{home}/{dir}"))?;
            c.set_perms(tx, &format!("{home}/{dir}"), &ro)?;
        }
        for key in [
            "control/shutdown",
            "control/feature-poweroff",
            "control/feature-reboot",
            "control/feature-suspend",
            "control/sysrq",
            "data",
            "drivers",
            "feature",
            "attr",
            "error",
        ] {
            c.mkdir(tx, &format!("{home}/{key}"))?;
            c.set_perms(tx, &format!("{home}/{key}"), &[rw.as_str()])?;
        }
        Ok(())
    })
}

/// A device the toolstack added.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceRef {
    /// Frontend domain.
    pub domid: u32,
    /// Device class.
    pub class: DeviceClass,
    /// Device id within the class.
    pub devid: u32,
}

/// The toolstack: builds domains in the store, adds and removes devices (driving their
/// backends), and sends control requests.
pub struct Toolstack {
    client: StoreClient,
    backends: BTreeMap<(u32, String, u32), Backend>,
    mapper: Box<dyn GrantMapper>,
}

impl std::fmt::Debug for Toolstack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Toolstack")
            .field("client", &self.client)
            .field("backends", &self.backends.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Toolstack {
    /// A toolstack on `store`; backends map guest grants through `mapper`.
    pub fn new(store: &SharedStore, mapper: Box<dyn GrantMapper>) -> Self {
        Self {
            client: StoreClient::connect(store),
            backends: BTreeMap::new(),
            mapper,
        }
    }

    /// The toolstack's own store connection.
    pub fn client(&mut self) -> &mut StoreClient {
        &mut self.client
    }

    /// Creates a domain: marks it existing in xenstored, writes its home and introduces it
    /// (ring at `store_gfn`, event channel `store_port`).
    pub fn create_domain(&mut self, cfg: &DomainConfig) -> Result<(), StoreError> {
        lock(self.client.store()).set_domain_exists(cfg.domid, true);
        write_domain_home(&mut self.client, cfg)?;
        self.client
            .introduce(cfg.domid, cfg.store_gfn, cfg.store_port)
    }

    /// Destroys a domain: its backends go, xenstored releases it (deleting what it owned)
    /// and the toolstack removes the rest of its home and VM entry.
    pub fn destroy_domain(&mut self, domid: u32) -> Result<(), StoreError> {
        let keys: Vec<_> = self
            .backends
            .keys()
            .filter(|k| k.0 == domid)
            .cloned()
            .collect();
        for k in keys {
            if let Some(mut b) = self.backends.remove(&k) {
                b.unmap_all(self.mapper.as_mut());
                let _ = self.client.rm(0, &b.backend_path);
            }
        }
        if let Ok(classes) = self.client.directory(0, "/local/domain/0/backend") {
            for class in classes {
                self.client
                    .rm_if_exists(0, &format!("/local/domain/0/backend/{class}/{domid}"))?;
            }
        }
        let vm = self
            .client
            .read_string(0, &format!("/local/domain/{domid}/vm"))
            .ok();
        self.client.release(domid)?;
        self.client.rm(0, &format!("/local/domain/{domid}"))?;
        if let Some(vm) = vm {
            self.client.rm(0, &vm)?;
        }
        lock(self.client.store()).set_domain_exists(domid, false);
        Ok(())
    }

    /// Adds a device: frontend and backend directories (libxl's permissions) and a
    /// backend waiting in `InitWait` for the frontend.
    pub fn add_device(
        &mut self,
        domid: u32,
        class: DeviceClass,
        devid: u32,
        mode: BackendMode,
    ) -> Result<DeviceRef, StoreError> {
        let mut backend = Backend::new(domid, class.clone(), devid, mode);
        backend.create(&mut self.client)?;
        self.backends
            .insert((domid, class.name().to_string(), devid), backend);
        self.run()?;
        Ok(DeviceRef {
            domid,
            class,
            devid,
        })
    }

    /// Asks for a device's removal: the backend goes to `Closing`; once the frontend
    /// answers `Closed` the backend closes and both directories are removed.
    pub fn remove_device(&mut self, dev: &DeviceRef) -> Result<(), StoreError> {
        let key = (dev.domid, dev.class.name().to_string(), dev.devid);
        let now = match self.backends.get_mut(&key) {
            Some(b) => b.request_removal(&mut self.client)?,
            None => false,
        };
        if now {
            if let Some(mut b) = self.backends.remove(&key) {
                b.unmap_all(self.mapper.as_mut());
                b.destroy(&mut self.client)?;
            }
        }
        self.run().map(|_| ())
    }

    /// The backend of a device, if it still exists.
    pub fn backend(&self, dev: &DeviceRef) -> Option<&Backend> {
        self.backends
            .get(&(dev.domid, dev.class.name().to_string(), dev.devid))
    }

    /// Processes pending watch events (each backend reacts to its frontend), then lets slow
    /// backends' time pass by one run. Returns how many events were handled.
    pub fn run(&mut self) -> Result<usize, StoreError> {
        let mut handled = 0;
        loop {
            let events = self.client.take_events();
            if events.is_empty() {
                break;
            }
            for ev in events {
                handled += 1;
                let key = self
                    .backends
                    .iter()
                    .find(|(_, b)| b.token() == ev.token)
                    .map(|(k, _)| k.clone());
                let Some(key) = key else { continue };
                let gone = match self.backends.get_mut(&key) {
                    Some(b) => b.on_frontend_change(&mut self.client, self.mapper.as_mut())?,
                    None => false,
                };
                if gone {
                    if let Some(mut b) = self.backends.remove(&key) {
                        b.unmap_all(self.mapper.as_mut());
                        b.destroy(&mut self.client)?;
                    }
                }
            }
        }
        for b in self.backends.values_mut() {
            b.tick(&mut self.client, self.mapper.as_mut())?;
        }
        Ok(handled)
    }

    /// Writes a shutdown request for the guest to act on.
    pub fn request_shutdown(&mut self, domid: u32, req: ShutdownRequest) -> Result<(), StoreError> {
        self.client.write(
            0,
            &format!("/local/domain/{domid}/control/shutdown"),
            req.as_str().as_bytes(),
        )
    }

    /// Sets the balloon target (`memory/target`, KiB).
    pub fn set_balloon_target(&mut self, domid: u32, kib: u64) -> Result<(), StoreError> {
        self.client.write(
            0,
            &format!("/local/domain/{domid}/memory/target"),
            kib.to_string().as_bytes(),
        )
    }

    /// The XenbusState of a path (`state` key), if readable and well-formed.
    pub fn state(&mut self, path: &str) -> Option<XenbusState> {
        let raw = self.client.read(0, &format!("{path}/state")).ok()?;
        XenbusState::parse(&raw)
    }
}

/// Fault injection on a ring page: corrupt the request producer index so that it runs more
/// than a ring's worth ahead of the consumer (xenstored then cuts the guest off with
/// `XENSTORE_ERROR_RINGIDX`).
pub fn corrupt_ring_indices<M: RingMemory + ?Sized>(page: &mut M) {
    let off = core::mem::offset_of!(
        xen_include::xen::io::xs_wire::XenstoreDomainInterface,
        req_prod
    );
    let cons_off = core::mem::offset_of!(
        xen_include::xen::io::xs_wire::XenstoreDomainInterface,
        req_cons
    );
    let cons = page.load_u32(cons_off);
    page.store_u32(off, cons.wrapping_add(4096));
}

#[cfg(test)]
mod tests;
