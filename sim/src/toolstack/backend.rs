//! A dom0 backend for one device (vif, vbd or vkbd): its XenStore directories as libxl
//! creates them and the backend half of the `XenbusState` handshake, as the Linux backend
//! drivers run it (InitWait → map the frontend's rings → Connected; Closing/Closed on the
//! frontend's lead; removal through `online = 0`).
#![forbid(unsafe_code)]

use xen_include::xen::io::xenbus::XenbusState;

use super::client::{StoreClient, StoreError};

/// Device classes the simulated backends serve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceClass {
    /// A network interface.
    Vif {
        /// MAC address.
        mac: String,
    },
    /// A block device.
    Vbd {
        /// `virtual-device` number (e.g. 768 for hda, 51712 for xvda).
        vdev: u32,
        /// Backing `params` (file or device).
        params: String,
        /// Size in 512-byte sectors.
        sectors: u64,
    },
    /// A keyboard/mouse.
    Vkbd,
}

impl DeviceClass {
    /// The class name used in paths.
    pub fn name(&self) -> &'static str {
        match self {
            DeviceClass::Vif { .. } => "vif",
            DeviceClass::Vbd { .. } => "vbd",
            DeviceClass::Vkbd => "vkbd",
        }
    }

    /// Frontend keys carrying grant references the backend maps.
    fn ring_keys(&self) -> &'static [&'static str] {
        match self {
            DeviceClass::Vif { .. } => &["tx-ring-ref", "rx-ring-ref"],
            DeviceClass::Vbd { .. } => &["ring-ref"],
            DeviceClass::Vkbd => &["page-ref"],
        }
    }
}

/// How a backend behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendMode {
    /// Connects when the frontend is ready.
    Normal,
    /// Fault: stays in `InitWait` forever (a backend that never connects).
    NeverConnect,
    /// Fault: a slow backend — it connects only after the toolstack has run this many more
    /// times once the frontend is ready.
    Slow(u32),
}

/// Maps guest grants for a backend (the hypervisor in a machine, bookkeeping in tests).
pub trait GrantMapper: Send {
    /// Maps grant `gref` of domain `domid`; returns a handle.
    fn map(&mut self, domid: u32, gref: u32, readonly: bool) -> Result<u32, String>;
    /// Unmaps a handle returned by [`GrantMapper::map`].
    fn unmap(&mut self, domid: u32, handle: u32);
}

/// A [`GrantMapper`] without a hypervisor: records what is mapped.
#[derive(Debug, Default)]
pub struct NoGrants {
    /// Currently mapped (domid, gref, handle).
    pub mapped: Vec<(u32, u32, u32)>,
    next: u32,
}

impl GrantMapper for NoGrants {
    fn map(&mut self, domid: u32, gref: u32, _readonly: bool) -> Result<u32, String> {
        self.next += 1;
        self.mapped.push((domid, gref, self.next));
        Ok(self.next)
    }

    fn unmap(&mut self, _domid: u32, handle: u32) {
        self.mapped.retain(|m| m.2 != handle);
    }
}

/// One device's backend.
#[derive(Debug)]
pub struct Backend {
    /// Frontend domain.
    pub domid: u32,
    /// Device class.
    pub class: DeviceClass,
    /// Device id.
    pub devid: u32,
    /// `/local/domain/<domid>/device/<class>/<devid>`.
    pub frontend_path: String,
    /// `/local/domain/0/backend/<class>/<domid>/<devid>`.
    pub backend_path: String,
    /// Behaviour.
    pub mode: BackendMode,
    /// The backend's state as last written.
    pub state: XenbusState,
    /// Grant handles mapped from the frontend's ring references.
    pub mapped: Vec<u32>,
    /// The frontend's event channel as read at connection time.
    pub event_channel: Option<u32>,
    removing: bool,
    /// Runs still to wait before a slow backend connects (`None`: not waiting).
    delay_left: Option<u32>,
}

fn state_str(s: XenbusState) -> String {
    s.0.to_string()
}

impl Backend {
    /// A backend not yet written to the store.
    pub fn new(domid: u32, class: DeviceClass, devid: u32, mode: BackendMode) -> Self {
        let name = class.name();
        Self {
            domid,
            frontend_path: format!("/local/domain/{domid}/device/{name}/{devid}"),
            backend_path: format!("/local/domain/0/backend/{name}/{domid}/{devid}"),
            class,
            devid,
            mode,
            state: XenbusState::INITIALISING,
            mapped: Vec::new(),
            event_channel: None,
            removing: false,
            delay_left: None,
        }
    }

    /// The watch token of this backend (its path).
    pub fn token(&self) -> &str {
        &self.backend_path
    }

    /// Writes both directories (one transaction), then probes: state `InitWait`, and
    /// watches the frontend's state.
    pub fn create(&mut self, c: &mut StoreClient) -> Result<(), StoreError> {
        let (fe, be, d) = (
            self.frontend_path.clone(),
            self.backend_path.clone(),
            self.domid,
        );
        let fe_perms = [format!("n{d}"), "r0".to_string()];
        let be_perms = ["n0".to_string(), format!("r{d}")];
        let class = self.class.clone();
        let devid = self.devid;
        c.transaction(10, |c, tx| {
            c.rm_if_exists(tx, &fe)?;
            c.rm_if_exists(tx, &be)?;
            c.mkdir(tx, &fe)?;
            c.set_perms(tx, &fe, &[&fe_perms[0], &fe_perms[1]])?;
            c.mkdir(tx, &be)?;
            c.set_perms(tx, &be, &[&be_perms[0], &be_perms[1]])?;
            let mut fe_keys: Vec<(&str, String)> = vec![
                ("backend", be.clone()),
                ("backend-id", "0".into()),
                ("state", state_str(XenbusState::INITIALISING)),
            ];
            let mut be_keys: Vec<(&str, String)> = vec![
                ("frontend", fe.clone()),
                ("frontend-id", d.to_string()),
                ("online", "1".into()),
                ("state", state_str(XenbusState::INITIALISING)),
            ];
            match &class {
                DeviceClass::Vif { mac } => {
                    fe_keys.push(("mac", mac.clone()));
                    fe_keys.push(("handle", devid.to_string()));
                    be_keys.extend([
                        ("mac", mac.clone()),
                        ("handle", devid.to_string()),
                        ("type", "vif".into()),
                        ("bridge", "xenbr0".into()),
                        ("feature-sg", "1".into()),
                        ("feature-rx-copy", "1".into()),
                    ]);
                }
                DeviceClass::Vbd { vdev, params, .. } => {
                    fe_keys.push(("virtual-device", vdev.to_string()));
                    fe_keys.push(("device-type", "disk".into()));
                    be_keys.extend([
                        ("params", params.clone()),
                        ("type", "phy".into()),
                        ("mode", "w".into()),
                        (
                            "dev",
                            format!("xvd{}", char::from(b'a' + (devid % 26) as u8)),
                        ),
                        ("device-type", "disk".into()),
                        ("removable", "0".into()),
                        ("bootable", "1".into()),
                    ]);
                }
                DeviceClass::Vkbd => {
                    be_keys.push(("feature-abs-pointer", "1".into()));
                }
            }
            for (k, v) in &fe_keys {
                c.write(tx, &format!("{fe}/{k}"), v.as_bytes())?;
            }
            for (k, v) in &be_keys {
                c.write(tx, &format!("{be}/{k}"), v.as_bytes())?;
            }
            Ok(())
        })?;
        self.set_state(c, XenbusState::INIT_WAIT)?;
        c.watch(&format!("{fe}/state"), &be)
    }

    fn set_state(&mut self, c: &mut StoreClient, s: XenbusState) -> Result<(), StoreError> {
        self.state = s;
        c.write(
            0,
            &format!("{}/state", self.backend_path),
            state_str(s).as_bytes(),
        )
    }

    fn read_u32(c: &mut StoreClient, path: &str) -> Option<u32> {
        c.read_string(0, path).ok()?.trim().parse().ok()
    }

    /// Unmaps every grant this backend mapped.
    pub fn unmap_all(&mut self, mapper: &mut dyn GrantMapper) {
        for h in self.mapped.drain(..) {
            mapper.unmap(self.domid, h);
        }
        self.event_channel = None;
    }

    /// Reacts to a change of the frontend's state. Returns `true` when the device is gone
    /// (closed after a removal request) and its directories should be removed.
    pub fn on_frontend_change(
        &mut self,
        c: &mut StoreClient,
        mapper: &mut dyn GrantMapper,
    ) -> Result<bool, StoreError> {
        let fe_state = c
            .read(0, &format!("{}/state", self.frontend_path))
            .ok()
            .and_then(|raw| XenbusState::parse(&raw));
        let Some(fe_state) = fe_state else {
            return Ok(self.removing);
        };
        match fe_state {
            s if (s == XenbusState::INITIALISED || s == XenbusState::CONNECTED)
                && self.state == XenbusState::INIT_WAIT =>
            {
                match self.mode {
                    BackendMode::Normal => self.connect(c, mapper)?,
                    BackendMode::Slow(runs) if self.delay_left.is_none() => {
                        self.delay_left = Some(runs);
                    }
                    _ => {}
                }
            }
            s if s == XenbusState::CLOSING
                && self.state != XenbusState::CLOSING
                && self.state != XenbusState::CLOSED =>
            {
                self.unmap_all(mapper);
                self.set_state(c, XenbusState::CLOSING)?;
            }
            s if s == XenbusState::CLOSED => {
                self.unmap_all(mapper);
                if self.state != XenbusState::CLOSED {
                    self.set_state(c, XenbusState::CLOSED)?;
                }
                if self.removing {
                    return Ok(true);
                }
            }
            s if s == XenbusState::INITIALISING || s == XenbusState::UNKNOWN => {
                // A frontend starting over (after resume, or a driver reload).
                if self.state == XenbusState::CONNECTED || self.state == XenbusState::CLOSED {
                    self.unmap_all(mapper);
                    self.set_state(c, XenbusState::INIT_WAIT)?;
                }
                if self.removing {
                    return Ok(true);
                }
            }
            _ => {}
        }
        Ok(false)
    }

    fn connect(
        &mut self,
        c: &mut StoreClient,
        mapper: &mut dyn GrantMapper,
    ) -> Result<(), StoreError> {
        let fe = self.frontend_path.clone();
        let mut refs = Vec::new();
        for key in self.class.ring_keys() {
            match Self::read_u32(c, &format!("{fe}/{key}")) {
                Some(r) => refs.push(r),
                None => return self.fail(c, &format!("reading {fe}/{key}")),
            }
        }
        let Some(port) = Self::read_u32(c, &format!("{fe}/event-channel")) else {
            return self.fail(c, &format!("reading {fe}/event-channel"));
        };
        for gref in refs {
            match mapper.map(self.domid, gref, false) {
                Ok(h) => self.mapped.push(h),
                Err(e) => {
                    self.unmap_all(mapper);
                    return self.fail(c, &format!("mapping grant {gref}: {e}"));
                }
            }
        }
        self.event_channel = Some(port);
        let be = self.backend_path.clone();
        if let DeviceClass::Vbd { sectors, .. } = &self.class {
            for (k, v) in [
                ("sectors", sectors.to_string()),
                ("sector-size", "512".to_string()),
                ("info", "0".to_string()),
                ("feature-flush-cache", "1".to_string()),
                ("feature-barrier", "1".to_string()),
            ] {
                c.write(0, &format!("{be}/{k}"), v.as_bytes())?;
            }
        }
        self.set_state(c, XenbusState::CONNECTED)
    }

    /// `xenbus_dev_fatal()`: record the error and close.
    fn fail(&mut self, c: &mut StoreClient, what: &str) -> Result<(), StoreError> {
        c.write(0, &format!("{}/error", self.backend_path), what.as_bytes())?;
        self.set_state(c, XenbusState::CLOSING)
    }

    /// One toolstack run passed: a slow backend whose frontend is ready connects once its
    /// delay is used up.
    pub fn tick(
        &mut self,
        c: &mut StoreClient,
        mapper: &mut dyn GrantMapper,
    ) -> Result<(), StoreError> {
        match self.delay_left {
            Some(0) => {
                self.delay_left = None;
                if self.state == XenbusState::INIT_WAIT {
                    self.connect(c, mapper)?;
                }
            }
            Some(n) => self.delay_left = Some(n - 1),
            None => {}
        }
        Ok(())
    }

    /// Starts removal (`online = 0`, state `Closing`). Returns `true` when the frontend is
    /// not active (never connected, or gone) so the device can go at once.
    pub fn request_removal(&mut self, c: &mut StoreClient) -> Result<bool, StoreError> {
        self.removing = true;
        c.write(0, &format!("{}/online", self.backend_path), b"0")?;
        self.set_state(c, XenbusState::CLOSING)?;
        let fe_state = c
            .read(0, &format!("{}/state", self.frontend_path))
            .ok()
            .and_then(|raw| XenbusState::parse(&raw));
        Ok(matches!(
            fe_state,
            None | Some(XenbusState::UNKNOWN)
                | Some(XenbusState::INITIALISING)
                | Some(XenbusState::CLOSED)
        ))
    }

    /// Removes both directories and the watch.
    pub fn destroy(self, c: &mut StoreClient) -> Result<(), StoreError> {
        let _ = c.unwatch(&format!("{}/state", self.frontend_path), &self.backend_path);
        c.rm(0, &self.frontend_path)?;
        c.rm(0, &self.backend_path)
    }
}
