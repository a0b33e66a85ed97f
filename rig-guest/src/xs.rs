//! XenStore from the rig guest: the xenbus crate's sans-IO STORE client driven over the
//! real ring page and store event channel, plus the request/reply convention with the dom0
//! helper (`data/rig/request` → `data/rig/reply`).

use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};

use common::sync::{IsrSpinLock, SpinLock};
use xen_include::api::XenApi;

use xen_include::xen::hvm::params::HvmParam;
use xen_include::xen::io::xs_wire::XsdSockmsgType;
use xenbus::shared::SharedMemory;
use xenbus::store::{Response, StoreClient};

use crate::{Deadline, GuestEnv, CLOCK_EVERY, DOM0_TIMEOUT_MS, REPLY_TIMEOUT_MS};

/// What a store connection shares with its suspend callbacks.
struct Shared {
    /// Taken by the EARLY suspend callback at HIGH_LEVEL too (as xenbus.sys's store).
    client: IsrSpinLock<StoreClient>,
    /// The store event channel (`HVM_PARAM_STORE_EVTCHN`; a restore may change it).
    port: AtomicU32,
    /// Watch events seen while waiting for replies (or re-signalled by a resume), not yet
    /// handed out.
    events: SpinLock<Vec<usize>>,
}

/// A connected store client.
pub struct Xs<'a> {
    env: &'a dyn GuestEnv,
    shared: Arc<Shared>,
    ring: SharedMemory,
    sequence: u32,
}

/// The store's EARLY suspend callback (xenbus.sys's `StoreSuspendCallbackEarly`): every
/// transaction and watch becomes inactive.
struct StoreEarly(Arc<Shared>);

impl xenbus::suspend::SuspendCallback for StoreEarly {
    fn call(&self) {
        self.0.client.lock().suspend();
    }
}

/// The store's LATE suspend callback (`StoreSuspendCallbackLate`): pick up the store
/// channel the restoring toolstack made, reset the stream, fail what was outstanding and
/// re-signal every watch's event so its owner re-adds it.
struct StoreLate(Arc<Shared>, &'static dyn XenApi);

impl xenbus::suspend::SuspendCallback for StoreLate {
    fn call(&self) {
        if let Ok(port) = self.1.hvm_get_param(HvmParam::STORE_EVTCHN.0) {
            self.0.port.store(port as u32, Ordering::Release);
        }
        let events = self.0.client.lock().resume();
        self.0.events.lock().extend(events);
    }
}

impl<'a> Xs<'a> {
    /// Connect to the ring named by `HVM_PARAM_STORE_PFN`/`STORE_EVTCHN`.
    pub fn connect(env: &'a dyn GuestEnv) -> Result<Self, String> {
        let hv = env.hv();
        let pfn = xen::hvm::get_param(hv, HvmParam::STORE_PFN.0)
            .map_err(|s| format!("STORE_PFN: {s:#x}"))?;
        let port = xen::hvm::get_param(hv, HvmParam::STORE_EVTCHN.0)
            .map_err(|s| format!("STORE_EVTCHN: {s:#x}"))?;
        let ring = env
            .frame(pfn)
            .ok_or_else(|| format!("store ring pfn {pfn:#x} not reachable"))?;
        Ok(Self {
            env,
            shared: Arc::new(Shared {
                client: IsrSpinLock::new(StoreClient::new(0x5200)),
                port: AtomicU32::new(port as u32),
                events: SpinLock::new(Vec::new()),
            }),
            ring,
            sequence: 0,
        })
    }

    /// The EARLY and LATE suspend callbacks of this connection, for xenbus's SUSPEND core.
    pub fn suspend_callbacks(
        &self,
        api: &'static dyn XenApi,
    ) -> (
        Arc<dyn xenbus::suspend::SuspendCallback>,
        Arc<dyn xenbus::suspend::SuspendCallback>,
    ) {
        (
            Arc::new(StoreEarly(self.shared.clone())),
            Arc::new(StoreLate(self.shared.clone(), api)),
        )
    }

    /// One pass over the ring (kicking xenstored when the client asks to); collects watch
    /// events.
    fn poll(&self) {
        let hv = self.env.hv();
        let port = self.shared.port.load(Ordering::Acquire);
        let outcome = self.shared.client.lock().poll(&self.ring, &mut || {
            let _ = xen::event_channel::send(hv, port);
        });
        self.shared.events.lock().extend(outcome.events);
    }

    /// Send one request and wait for its reply.
    pub fn request(
        &mut self,
        kind: XsdSockmsgType,
        tx_id: u32,
        segments: &[&[u8]],
    ) -> Result<Response, String> {
        let id = self
            .shared
            .client
            .lock()
            .submit(kind, tx_id, segments)
            .map_err(|s| format!("submit: {s:#x}"))?;
        let deadline = Deadline::after(self.env, REPLY_TIMEOUT_MS);
        let mut polls = 0u32;
        loop {
            self.poll();
            if let Some(reply) = self.shared.client.lock().take(id) {
                return reply.map_err(|s| format!("request failed: {s:#x}"));
            }
            polls = polls.wrapping_add(1);
            if polls.is_multiple_of(CLOCK_EVERY) && deadline.expired(self.env) {
                return Err(format!(
                    "no reply to {kind:?} within {} s",
                    REPLY_TIMEOUT_MS / 1000
                ));
            }
            self.env.pause();
        }
    }

    /// Poll once and return the watch events seen since the last call (including those
    /// that arrived while a request was waiting for its reply).
    pub fn poll_events(&mut self) -> Vec<usize> {
        self.poll();
        core::mem::take(&mut *self.shared.events.lock())
    }

    /// XS_READ as text.
    pub fn read(&mut self, path: &str) -> Result<String, String> {
        let reply = self.request(XsdSockmsgType::READ, 0, &[path.as_bytes(), b"\0"])?;
        reply.check().map_err(|s| format!("read {path}: {s:#x}"))?;
        Ok(String::from_utf8_lossy(&reply.payload)
            .trim_end_matches('\0')
            .into())
    }

    /// XS_WRITE of text.
    pub fn write(&mut self, tx_id: u32, path: &str, value: &str) -> Result<(), String> {
        let reply = self.request(
            XsdSockmsgType::WRITE,
            tx_id,
            &[path.as_bytes(), b"\0", value.as_bytes()],
        )?;
        reply.check().map_err(|s| format!("write {path}: {s:#x}"))
    }

    /// XS_DIRECTORY: the child names.
    pub fn directory(&mut self, path: &str) -> Result<Vec<String>, String> {
        let reply = self.request(XsdSockmsgType::DIRECTORY, 0, &[path.as_bytes(), b"\0"])?;
        reply
            .check()
            .map_err(|s| format!("directory {path}: {s:#x}"))?;
        Ok(reply
            .payload
            .split(|b| *b == 0)
            .filter(|n| !n.is_empty())
            .map(|n| String::from_utf8_lossy(n).into())
            .collect())
    }

    /// Register a watch on `path` signalling `event` in poll results.
    pub fn watch(&mut self, path: &str, event: usize) -> Result<(), String> {
        let (_, token) = self
            .shared
            .client
            .lock()
            .add_watch(path.as_bytes().into(), event)
            .map_err(|s| format!("add_watch: {s:#x}"))?;
        let reply = self.request(
            XsdSockmsgType::WATCH,
            0,
            &[path.as_bytes(), b"\0", &token, b"\0"],
        )?;
        reply.check().map_err(|s| format!("watch {path}: {s:#x}"))
    }

    /// Ask the dom0 helper to run `command`; returns the request's sequence number.
    pub fn dom0_start(&mut self, command: &str) -> Result<u32, String> {
        // Sequence numbers continue from the last reply, so an old answer never matches.
        let last = self
            .read("data/rig/reply")
            .ok()
            .and_then(|reply| reply.split(' ').next().and_then(|n| n.parse::<u32>().ok()))
            .unwrap_or(0);
        self.sequence = self.sequence.max(last) + 1;
        let sequence = self.sequence;
        self.write(0, "data/rig/request", &format!("{sequence} {command}"))?;
        Ok(sequence)
    }

    /// Wait for the dom0 helper's answer to request `sequence` (bounded by
    /// [`DOM0_TIMEOUT_MS`]).
    pub fn dom0_wait(&mut self, sequence: u32) -> Result<String, String> {
        let prefix = format!("{sequence} ");
        let deadline = Deadline::after(self.env, DOM0_TIMEOUT_MS);
        loop {
            if let Ok(reply) = self.read("data/rig/reply") {
                if let Some(answer) = reply.strip_prefix(&prefix) {
                    return Ok(answer.into());
                }
            }
            if deadline.expired(self.env) {
                return Err(format!(
                    "dom0 helper did not answer request {sequence} within {} s",
                    DOM0_TIMEOUT_MS / 1000
                ));
            }
            // Each read is a store round trip; pause a little between them so the guest
            // does not flood xenstored while dom0 works.
            let pause = Deadline::after(self.env, 20);
            while !pause.expired(self.env) {
                for _ in 0..CLOCK_EVERY {
                    self.env.pause();
                }
            }
        }
    }

    /// The helper's current answer to `sequence`, without waiting.
    pub fn dom0_answer_now(&mut self, sequence: u32) -> Option<String> {
        let reply = self.read("data/rig/reply").ok()?;
        reply
            .strip_prefix(&format!("{sequence} "))
            .map(String::from)
    }

    /// Run one dom0 helper command synchronously.
    pub fn dom0(&mut self, command: &str) -> Result<String, String> {
        let sequence = self.dom0_start(command)?;
        self.dom0_wait(sequence)
    }
}
