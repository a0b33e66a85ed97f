//! XenStore from the rig guest: xenbus.sys's own STORE core ([`xenbus::store::Store`]) over
//! the real ring page and store event channel — its request path with the bounded wait
//! (quiet periods, a re-notify after each, `STATUS_IO_TIMEOUT` after 30 s without the rings
//! moving, the request abandoned so its late reply is dropped and its `req_id` not reused),
//! its transactions and watches — plus the request/reply convention with the dom0 helper
//! (`data/rig/request` → `data/rig/reply`).
//!
//! The guest keeps one connection for its whole life ([`GuestEnv::store`]): one `req_id`
//! sequence on the ring, so a reply to a request abandoned by one scenario can never meet a
//! newer request of another.
//!
//! The bare-metal guest runs with interrupts off, so no store event is ever delivered: the
//! store channel ([`PolledChannel`]) counts an "event" each time it sees xenstored move the
//! ring (its request consumer or response producer — what xenstored notifies after), and its
//! wait polls for that, yielding the vCPU between looks, until the timeout on the `Os` clock.
//! That is the whole difference from xenbus.sys, where EVTCHN counts real upcalls.

use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::mem::offset_of;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use common::os::Os;
use xen_include::api::XenApi;
use xen_include::status::{NtStatus, STATUS_SUCCESS, STATUS_TIMEOUT};
use xen_include::xen::hvm::params::HvmParam;
use xen_include::xen::io::xs_wire::XenstoreDomainInterface;
use xenbus::shared::SharedMemory;
use xenbus::store::{Store, StoreChannel, TransactionHandle};

use crate::{Deadline, GuestEnv, CLOCK_EVERY, DOM0_TIMEOUT_MS};

const REQ_CONS: usize = offset_of!(XenstoreDomainInterface, req_cons);
const RSP_PROD: usize = offset_of!(XenstoreDomainInterface, rsp_prod);

/// The store channel of a guest that takes no interrupts (see the module notes).
pub struct PolledChannel {
    api: &'static dyn XenApi,
    os: &'static dyn Os,
    ring: SharedMemory,
    /// `HVM_PARAM_STORE_EVTCHN` (a restore may change it).
    port: AtomicU32,
    /// Ring moves seen so far: the channel's event count.
    events: AtomicU32,
    /// xenstored's positions (request consumer, response producer) when last looked at.
    seen: AtomicU64,
}

impl PolledChannel {
    fn new(api: &'static dyn XenApi, os: &'static dyn Os, ring: SharedMemory, port: u32) -> Self {
        let channel = Self {
            api,
            os,
            ring,
            port: AtomicU32::new(port),
            events: AtomicU32::new(0),
            seen: AtomicU64::new(0),
        };
        channel.observe();
        channel
    }

    /// Count an event if xenstored moved the ring since the last look.
    fn observe(&self) {
        let word = |offset| u64::from(self.ring.load_u32(offset).unwrap_or(0));
        let now = word(REQ_CONS) << 32 | word(RSP_PROD);
        if self.seen.swap(now, Ordering::AcqRel) != now {
            self.events.fetch_add(1, Ordering::AcqRel);
        }
    }
}

impl StoreChannel for PolledChannel {
    fn notify(&self) {
        let _ = self
            .api
            .event_channel_send(self.port.load(Ordering::Acquire));
    }

    fn count(&self) -> u32 {
        self.observe();
        self.events.load(Ordering::Acquire)
    }

    fn wait(&self, count: u32, timeout_100ns: u64) -> NtStatus {
        let deadline = self
            .os
            .system_time()
            .saturating_add(i64::try_from(timeout_100ns).unwrap_or(i64::MAX));
        let mut polls = 0u32;
        loop {
            self.observe();
            if count.wrapping_sub(self.events.load(Ordering::Acquire)) as i32 <= 0 {
                return STATUS_SUCCESS;
            }
            polls = polls.wrapping_add(1);
            // On real Xen each clock read is one more exit: read it every few polls.
            if polls.is_multiple_of(CLOCK_EVERY) && self.os.system_time() >= deadline {
                return STATUS_TIMEOUT;
            }
            self.api.sched_yield();
        }
    }
}

/// The guest's store connection: xenbus's STORE core on the ring, with its channel.
pub struct Connection {
    store: &'static Store,
    channel: Arc<PolledChannel>,
    ring: SharedMemory,
}

impl Connection {
    /// Attach xenbus's STORE core to the ring named by `HVM_PARAM_STORE_PFN`/`STORE_EVTCHN`.
    fn open(env: &dyn GuestEnv) -> Result<Self, String> {
        let hv = env.hv();
        let pfn = xen::hvm::get_param(hv, HvmParam::STORE_PFN.0)
            .map_err(|s| format!("STORE_PFN: {s:#x}"))?;
        let port = xen::hvm::get_param(hv, HvmParam::STORE_EVTCHN.0)
            .map_err(|s| format!("STORE_EVTCHN: {s:#x}"))?;
        let ring = env
            .frame(pfn)
            .ok_or_else(|| format!("store ring pfn {pfn:#x} not reachable"))?;
        let (api, os) = (env.api(), env.os());
        let store: &'static Store =
            alloc::boxed::Box::leak(alloc::boxed::Box::new(Store::new(api, os, 0x5200)));
        let channel = Arc::new(PolledChannel::new(api, os, ring.clone(), port as u32));
        store.connect(ring.clone(), channel.clone());
        Ok(Self {
            store,
            channel,
            ring,
        })
    }

    /// The STORE core.
    pub fn store(&self) -> &'static Store {
        self.store
    }
}

/// A scenario's handle on the guest's store connection.
pub struct Xs<'a> {
    env: &'a dyn GuestEnv,
    connection: &'a Connection,
    /// Watch events added through this handle, with the `Os::set_event` count already
    /// handed out.
    watches: Vec<(usize, u64)>,
    sequence: u32,
}

/// The store's EARLY suspend callback (xenbus.sys's `StoreSuspendCallbackEarly`): every
/// transaction and watch becomes inactive.
struct StoreEarly(&'static Store);

impl xenbus::suspend::SuspendCallback for StoreEarly {
    fn call(&self) {
        self.0.suspend_early();
    }
}

/// The store's LATE suspend callback (`StoreSuspendCallbackLate`): pick up the store
/// channel the restoring toolstack made, then the core resets the stream, fails what was
/// outstanding and signals every watch's event so its owner re-adds it.
struct StoreLate {
    store: &'static Store,
    channel: Arc<PolledChannel>,
    ring: SharedMemory,
    api: &'static dyn XenApi,
}

impl xenbus::suspend::SuspendCallback for StoreLate {
    fn call(&self) {
        if let Ok(port) = self.api.hvm_get_param(HvmParam::STORE_EVTCHN.0) {
            self.channel.port.store(port as u32, Ordering::Release);
        }
        self.store
            .resume_late(self.ring.clone(), self.channel.clone());
    }
}

impl<'a> Xs<'a> {
    /// The guest's store connection, attached on first use.
    pub fn connect(env: &'a dyn GuestEnv) -> Result<Self, String> {
        let connection = match env.store().get() {
            Some(c) => c,
            None => {
                let _ = env.store().set(Connection::open(env)?);
                env.store().get().ok_or("store connection not kept")?
            }
        };
        Ok(Self {
            env,
            connection,
            watches: Vec::new(),
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
        let c = self.connection;
        (
            Arc::new(StoreEarly(c.store)),
            Arc::new(StoreLate {
                store: c.store,
                channel: c.channel.clone(),
                ring: c.ring.clone(),
                api,
            }),
        )
    }

    /// Poll once and return the watch events fired since the last call, once per fire
    /// (including those that came while a request was waiting for its reply).
    pub fn poll_events(&mut self) -> Vec<usize> {
        self.connection.store.poll();
        let mut fired = Vec::new();
        for (event, seen) in &mut self.watches {
            let now = self.env.event_sets(*event);
            for _ in *seen..now {
                fired.push(*event);
            }
            *seen = now;
        }
        fired
    }

    /// XS_READ as text.
    pub fn read(&mut self, path: &str) -> Result<String, String> {
        let value = self
            .connection
            .store
            .read(None, None, path.as_bytes())
            .map_err(|s| format!("read {path}: {s:#x}"))?;
        Ok(String::from_utf8_lossy(&value)
            .trim_end_matches('\0')
            .into())
    }

    /// XS_WRITE of text (in `transaction`, if any).
    pub fn write(
        &mut self,
        transaction: Option<TransactionHandle>,
        path: &str,
        value: &str,
    ) -> Result<(), String> {
        self.connection
            .store
            .write(transaction, None, path.as_bytes(), value.as_bytes())
            .map_err(|s| format!("write {path}: {s:#x}"))
    }

    /// XS_DIRECTORY: the child names.
    pub fn directory(&mut self, path: &str) -> Result<Vec<String>, String> {
        let names = self
            .connection
            .store
            .directory(None, None, path.as_bytes())
            .map_err(|s| format!("directory {path}: {s:#x}"))?;
        Ok(names
            .split(|b| *b == 0)
            .filter(|n| !n.is_empty())
            .map(|n| String::from_utf8_lossy(n).into())
            .collect())
    }

    /// XS_TRANSACTION_START.
    pub fn transaction_start(&mut self) -> Result<TransactionHandle, String> {
        self.connection
            .store
            .transaction_start()
            .map_err(|s| format!("transaction start: {s:#x}"))
    }

    /// XS_TRANSACTION_END (commit or abort); the handle is gone either way.
    pub fn transaction_end(
        &mut self,
        transaction: TransactionHandle,
        commit: bool,
    ) -> Result<(), String> {
        self.connection
            .store
            .transaction_end(transaction, commit)
            .map_err(|s| format!("transaction end: {s:#x}"))
    }

    /// Register a watch on `path`; its fires come out of [`Xs::poll_events`] as `event`.
    pub fn watch(&mut self, path: &str, event: usize) -> Result<(), String> {
        let seen = self.env.event_sets(event);
        self.connection
            .store
            .watch_add(None, path.as_bytes(), event)
            .map_err(|s| format!("watch {path}: {s:#x}"))?;
        self.watches.push((event, seen));
        Ok(())
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
        self.write(None, "data/rig/request", &format!("{sequence} {command}"))?;
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
