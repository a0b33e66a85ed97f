//! XenStore from the rig guest: the xenbus crate's sans-IO STORE client driven over the
//! real ring page and store event channel, plus the request/reply convention with the dom0
//! helper (`data/rig/request` → `data/rig/reply`).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use xen_include::xen::hvm::params::HvmParam;
use xen_include::xen::io::xs_wire::XsdSockmsgType;
use xenbus::shared::SharedMemory;
use xenbus::store::{Response, StoreClient};

use crate::GuestEnv;

/// How many polls a request may take before it counts as lost.
const POLLS: u32 = 200_000;

/// A connected store client.
pub struct Xs<'a> {
    env: &'a dyn GuestEnv,
    client: StoreClient,
    ring: SharedMemory,
    port: u32,
    sequence: u32,
    /// Watch events seen while waiting for replies, not yet handed out.
    events: Vec<usize>,
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
            client: StoreClient::new(0x5200),
            ring,
            port: port as u32,
            sequence: 0,
            events: Vec::new(),
        })
    }

    /// Send one request and wait for its reply.
    pub fn request(
        &mut self,
        kind: XsdSockmsgType,
        tx_id: u32,
        segments: &[&[u8]],
    ) -> Result<Response, String> {
        let id = self
            .client
            .submit(kind, tx_id, segments)
            .map_err(|s| format!("submit: {s:#x}"))?;
        for _ in 0..POLLS {
            let hv = self.env.hv();
            let port = self.port;
            let outcome = self.client.poll(&self.ring, &mut || {
                let _ = xen::event_channel::send(hv, port);
            });
            self.events.extend(outcome.events);
            if let Some(reply) = self.client.take(id) {
                return reply.map_err(|s| format!("request failed: {s:#x}"));
            }
            self.env.pause();
        }
        Err(format!("no reply to {kind:?} after {POLLS} polls"))
    }

    /// Poll once and return the watch events seen since the last call (including those
    /// that arrived while a request was waiting for its reply).
    pub fn poll_events(&mut self) -> Vec<usize> {
        let hv = self.env.hv();
        let port = self.port;
        let outcome = self.client.poll(&self.ring, &mut || {
            let _ = xen::event_channel::send(hv, port);
        });
        self.events.extend(outcome.events);
        core::mem::take(&mut self.events)
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
            .client
            .add_watch(path.as_bytes().into(), event)
            .map_err(|s| format!("add_watch: {s:#x}"))?;
        let reply = self.request(
            XsdSockmsgType::WATCH,
            0,
            &[path.as_bytes(), b"\0", &token, b"\0"],
        )?;
        reply.check().map_err(|s| format!("watch {path}: {s:#x}"))
    }

    /// Ask the dom0 helper to run `command` and wait for its answer.
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

    /// Wait for the dom0 helper's answer to request `sequence`.
    pub fn dom0_wait(&mut self, sequence: u32) -> Result<String, String> {
        let prefix = format!("{sequence} ");
        for _ in 0..2_000 {
            if let Ok(reply) = self.read("data/rig/reply") {
                if let Some(answer) = reply.strip_prefix(&prefix) {
                    return Ok(answer.into());
                }
            }
            for _ in 0..50 {
                self.env.pause();
            }
        }
        Err(format!("dom0 helper did not answer request {sequence}"))
    }

    /// Run one dom0 helper command synchronously.
    pub fn dom0(&mut self, command: &str) -> Result<String, String> {
        let sequence = self.dom0_start(command)?;
        self.dom0_wait(sequence)
    }
}
