//! EVTCHN (spec §5.8): event channels over the 2-level ABI of SHARED_INFO — Open for
//! FIXED/UNBOUND/INTER_DOMAIN/VIRQ, the port table, delivery (auto-mask → ack → barrier →
//! count → callback, only on the bound CPU), Bind, Unmask (V8 rules), Send, Trigger,
//! GetCount, Wait, Close, and channels left inactive by a resume.
//!
//! Decisions:
//! * **Callbacks run at DISPATCH_LEVEL in a per-CPU DPC, not in the interrupt service
//!   routine at DIRQL** (a deliberate difference from upstream, whose `EvtchnInterrupt`
//!   polls and calls back in the ISR). The ISR ([`Evtchn::interrupt`]) only takes the
//!   vCPU's `evtchn_upcall_pending` (clearing it is what lets Xen deassert the
//!   level-triggered callback-via GSI) and queues that CPU's DPC (targeted, high
//!   importance): no lock, no allocation. The DPC polls the ABI while the upcall stays
//!   pending, puts the channels bound to its CPU on that CPU's pending list and delivers
//!   the list. Why: the ISR path is allocation-free (pool is illegal above DISPATCH_LEVEL),
//!   callbacks may use pool and `KeSetEvent` (the store and console do), and no ISR spins
//!   on a DISPATCH_LEVEL lock that the code it preempted holds, so the state lock is a
//!   plain [`SpinLock`]. Every child callback that is legal at DIRQL (`KeInsertQueueDpc`,
//!   EVTCHN Unmask/Send) is legal at DISPATCH_LEVEL too.
//! * `Trigger` puts the channel on its CPU's pending list and queues that CPU's DPC, then
//!   returns — it never waits (upstream calls back under the interrupt lock).
//! * `Wait` at DISPATCH_LEVEL on the channel's own CPU keeps the channel's deliveries going
//!   by running that CPU's delivery pass itself while it spins (upstream's ISR preempts
//!   such a waiter; here the DPC cannot).
//! * `Close` is synchronous instead of deferred to the bound CPU's DPC (spec §5.8, §10
//!   item 16). Upstream defers the reap and `EVTCHNOP_close` so that (a) a channel still
//!   on a CPU's pending list stays in memory until that CPU polled it and (b) the port is
//!   not given back to Xen (and reused by another Open) while an event for it is queued.
//!   Here channels are reference counted (`Arc`, callback included): a queued channel
//!   stays valid and is skipped because it is marked closed (a). `Close` marks it closed,
//!   takes it out of the port table, masks the port, then **waits for a callback already
//!   running on another CPU to return** before `EVTCHNOP_close` (b), so when `Close`
//!   returns the callback is neither running nor ever called again — stronger than
//!   upstream, where the callback may still be running on its CPU (children guard their
//!   own context). The wait is bounded (1 s by the `Os` clock, then a warning: a callback
//!   blocked on something the closer holds cannot deadlock it) and skipped for a callback
//!   closing its own channel.
//! * A suspend's early phase (HIGH_LEVEL, every other CPU captured at DISPATCH_LEVEL) only
//!   counts the suspend and marks the channels inactive (`try_lock`, no allocation, no
//!   freeing); inactive channels are never delivered and their port-table entries are
//!   dropped by the next [`Evtchn::enable_interrupts`] (the resume's late phase) or
//!   replaced by an Open of the same port.
//! * The ABI is the 2-level one of SHARED_INFO until [`Evtchn::use_fifo`] switches to the
//!   FIFO ABI (`UseEvtchnFifoAbi`); a failed FIFO acquire falls back to 2-level.
#![forbid(unsafe_code)]

use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{
    fence, AtomicBool, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering,
};

use common::os::{DpcHandle, DpcRoutine, Os};
use common::sync::{HighLock, SpinLock};
use xen_include::api::XenApi;
use xen_include::status::{
    NtStatus, STATUS_INVALID_PARAMETER, STATUS_NOT_SUPPORTED, STATUS_NO_MEMORY, STATUS_SUCCESS,
    STATUS_TIMEOUT,
};
use xen_include::xen::hvm::params::HvmParam;

use crate::evtchn_fifo::Fifo;
use crate::shared_info::SharedInfo;

/// What a channel is bound to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// An existing local port (never closed by us).
    Fixed {
        /// The port.
        port: u32,
    },
    /// A new port another domain may bind to.
    Unbound {
        /// The domain allowed to bind.
        remote_domain: u16,
    },
    /// A port bound to another domain's port.
    InterDomain {
        /// The other domain.
        remote_domain: u16,
        /// Its port.
        remote_port: u32,
    },
    /// A virtual IRQ delivered on processor `cpu`.
    Virq {
        /// `VIRQ_*`.
        index: u32,
        /// Processor index.
        cpu: u32,
    },
}

/// A channel's callback (`PKSERVICE_ROUTINE(NULL, Argument)` for a C child).
pub trait EvtchnCallback: Send + Sync {
    /// Handle the event; true when something was done.
    fn call(&self) -> bool;
}

/// An open channel.
pub struct Channel {
    kind: Kind,
    port: AtomicU32,
    cpu: AtomicU32,
    auto_mask: bool,
    active: AtomicBool,
    closed: AtomicBool,
    queued: AtomicBool,
    count: AtomicU32,
    /// Deliveries past the closed check (callbacks running or about to run).
    in_callback: AtomicU32,
    /// The suspend count when it was opened: a channel from before a suspend is inactive.
    epoch: AtomicU64,
    callback: Arc<dyn EvtchnCallback>,
}

impl Channel {
    /// The local port.
    pub fn port(&self) -> u32 {
        self.port.load(Ordering::Acquire)
    }
    /// The processor events are delivered on.
    pub fn cpu(&self) -> u32 {
        self.cpu.load(Ordering::Acquire)
    }
    /// Events delivered since Open (`GetCount`).
    pub fn count(&self) -> u32 {
        self.count.load(Ordering::Acquire)
    }
    /// False after a resume or Close.
    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Acquire)
    }
    /// What it is bound to.
    pub fn kind(&self) -> Kind {
        self.kind
    }
}

/// Handle of a channel (the address of its `Channel`).
pub type ChannelHandle = usize;

struct State {
    /// Port table: active channels by port.
    ports: BTreeMap<u32, Arc<Channel>>,
    /// Every open channel by handle.
    open: BTreeMap<ChannelHandle, Arc<Channel>>,
    /// Per-CPU pending lists (delivered by that CPU's DPC).
    queues: Vec<Vec<Arc<Channel>>>,
    /// Per-CPU: an upcall vector is programmed (events may be bound there).
    upcall: Vec<bool>,
}

/// A `Wait` timeout (spec §5.8): forever, absolute system time, relative, or immediate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timeout {
    /// `NULL`.
    Forever,
    /// A `LARGE_INTEGER` (> 0 absolute 100 ns since 1601, < 0 relative, 0 immediate).
    Value(i64),
}

/// The EVTCHN subsystem.
pub struct Evtchn {
    api: &'static dyn XenApi,
    os: &'static dyn Os,
    shared_info: &'static SharedInfo,
    /// Never taken by the ISR; the suspend's HIGH_LEVEL phase only `try_lock`s it.
    state: SpinLock<State>,
    /// HIGH_LEVEL (the suspend's early phase reads it); only Arcs move under it (created and
    /// released outside).
    fifo: HighLock<Option<Arc<Fifo>>>,
    /// Per CPU: its DPC and delivery bookkeeping.
    cpus: Vec<PerCpu>,
    /// The open channels again, for Send and Unmask at any IRQL (a child may call them
    /// from its ISR or under a HIGH_LEVEL lock): grown outside the lock, Arcs released
    /// outside it.
    handles: HighLock<Vec<Arc<Channel>>>,
    /// Suspends seen (`suspend_early`): a `Close` that a resume overtook while it waited
    /// leaves the port alone, as its number may already belong to a channel opened since.
    suspends: AtomicU64,
    /// Held (raising to DISPATCH_LEVEL) from `Close`'s check of `suspends` to its
    /// EVTCHNOP_close, so no suspend comes between them.
    close_fence: SpinLock<()>,
    /// Test hook: run by `Close` right after it let go of the state lock (where a suspend
    /// and resume can overtake it).
    #[cfg(test)]
    close_unlocked_hook: std::sync::Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

/// `PerCpu::dpc_state`: no DPC.
const DPC_NONE: u8 = 0;
/// `PerCpu::dpc_state`: being created or destroyed.
const DPC_BUSY: u8 = 1;
/// `PerCpu::dpc_state`: created, `PerCpu::dpc` may be queued.
const DPC_ARMED: u8 = 2;

/// One processor's delivery machinery.
#[derive(Default)]
struct PerCpu {
    /// `DPC_NONE`, `DPC_BUSY` or `DPC_ARMED`.
    dpc_state: AtomicU8,
    /// The DPC's handle (meaningful while armed).
    dpc: AtomicUsize,
    /// Queueings of `dpc` in progress (its destruction waits for them).
    queueing: AtomicU32,
    /// A delivery pass (the DPC's, or a spinning Wait's) runs for this CPU.
    running: AtomicBool,
    /// A pass was asked for: the running one goes round again.
    again: AtomicBool,
    /// The channels whose callbacks this CPU is running (nested deliveries).
    delivering: Delivering,
}

/// Deliveries one CPU records nested (an ISR's over a DPC's, with room to spare); deeper
/// ones are not recorded (Close then waits its bound for them).
const NESTED_DELIVERIES: usize = 4;

/// One CPU's deliveries in progress, outermost first. Only that CPU changes it, and a
/// nested delivery (interrupt) always finishes before the one it preempted.
#[derive(Default)]
struct Delivering {
    depth: AtomicUsize,
    frames: [AtomicUsize; NESTED_DELIVERIES],
}

impl Delivering {
    /// Record a delivery of the channel at `address`; returns its frame.
    fn push(&self, address: usize) -> usize {
        let frame = self.depth.fetch_add(1, Ordering::SeqCst);
        if let Some(f) = self.frames.get(frame) {
            f.store(address, Ordering::SeqCst);
        }
        frame
    }

    /// The delivery recorded as `frame` is over.
    fn pop(&self, frame: usize) {
        if let Some(f) = self.frames.get(frame) {
            f.store(0, Ordering::SeqCst);
        }
        self.depth.fetch_sub(1, Ordering::SeqCst);
    }

    /// Deliveries of the channel at `address` in progress on this CPU.
    fn count(&self, address: usize) -> u32 {
        let depth = self.depth.load(Ordering::SeqCst).min(NESTED_DELIVERIES);
        self.frames
            .iter()
            .take(depth)
            .filter(|f| f.load(Ordering::SeqCst) == address)
            .count() as u32
    }
}

/// Longest `Close` waits for a callback running on another CPU (1 s in 100 ns).
pub const CLOSE_WAIT_100NS: i64 = 10_000_000;

impl Evtchn {
    /// No channels; per-CPU state for every processor.
    pub fn new(
        api: &'static dyn XenApi,
        os: &'static dyn Os,
        shared_info: &'static SharedInfo,
    ) -> Self {
        let cpus = os.processor_count() as usize;
        Self {
            api,
            os,
            shared_info,
            state: SpinLock::new(State {
                ports: BTreeMap::new(),
                open: BTreeMap::new(),
                queues: (0..cpus).map(|_| Vec::new()).collect(),
                upcall: (0..cpus).map(|_| false).collect(),
            }),
            fifo: HighLock::new(None),
            cpus: (0..cpus).map(|_| PerCpu::default()).collect(),
            handles: HighLock::new(Vec::new()),
            suspends: AtomicU64::new(0),
            close_fence: SpinLock::new(()),
            #[cfg(test)]
            close_unlocked_hook: std::sync::Mutex::new(None),
        }
    }

    /// Select the ABI (Acquire, and again after every resume): FIFO when `enable` and its
    /// acquire succeeds, else 2-level. Returns true when FIFO is in use.
    pub fn use_fifo(&self, enable: bool) -> bool {
        // Released after the HIGH_LEVEL lock is let go (hypercalls, pages freed).
        let old = self.fifo.lock().take();
        if let Some(old) = old {
            old.release();
        }
        if !enable {
            return false;
        }
        match Fifo::acquire(self.api, self.os, self.shared_info) {
            Ok(f) => {
                let new = Some(Arc::new(f));
                *self.fifo.lock() = new;
                true
            }
            Err(e) => {
                warning!(
                    self.api,
                    "EVTCHN: FIFO ABI unavailable ({e:08X}), using 2-level"
                );
                false
            }
        }
    }

    /// After a resume the new host starts in the 2-level ABI: forget the FIFO pages
    /// (no reset: Xen already dropped them) and select again.
    pub fn resume_abi(&self, enable_fifo: bool) -> bool {
        let old = self.fifo.lock().take();
        if let Some(old) = old {
            old.forget();
        }
        self.use_fifo(enable_fifo)
    }

    /// True while the FIFO ABI is in use.
    pub fn fifo_active(&self) -> bool {
        self.fifo.lock().is_some()
    }

    fn abi(&self) -> Option<Arc<Fifo>> {
        self.fifo.lock().clone()
    }

    /// Mask a port in the current ABI.
    pub fn abi_mask(&self, port: u32) {
        match self.abi() {
            Some(f) => f.mask(port),
            None => self.shared_info.evtchn_mask(port),
        }
    }

    /// Ack a port in the current ABI.
    pub fn abi_ack(&self, port: u32) {
        match self.abi() {
            Some(f) => f.ack(port),
            None => self.shared_info.evtchn_ack(port),
        }
    }

    /// Unmask a port in the current ABI; true when it is pending.
    pub fn abi_unmask(&self, port: u32) -> bool {
        match self.abi() {
            Some(f) => f.unmask(port),
            None => self.shared_info.evtchn_unmask(port),
        }
    }

    /// True when a port is masked in the current ABI.
    pub fn abi_is_masked(&self, port: u32) -> bool {
        match self.abi() {
            Some(f) => f.is_masked(port),
            None => self.shared_info.evtchn_is_masked(port),
        }
    }

    /// True when a port is pending in the current ABI.
    pub fn abi_is_pending(&self, port: u32) -> bool {
        match self.abi() {
            Some(f) => f.is_pending(port),
            None => self.shared_info.evtchn_is_pending(port),
        }
    }

    fn abi_poll(&self, cpu: u32, event: &mut dyn FnMut(u32) -> bool) -> bool {
        match self.abi() {
            Some(f) => f.poll(cpu, event),
            None => self.shared_info.evtchn_poll(cpu, event),
        }
    }

    /// The XenApi edge (for the interface shims' logging).
    pub fn api(&self) -> &'static dyn XenApi {
        self.api
    }

    /// Program the upcall routes (spec §5.8 `EvtchnInterruptEnable`): a per-CPU vector on
    /// every processor that supports it (stopping at NOT_IMPLEMENTED), and always the
    /// callback via (`HVM_PARAM_CALLBACK_IRQ` = `callback_via`, e.g. the GSI) for CPU 0.
    /// IRQL ≤ DISPATCH_LEVEL (the resume's late phase). Creates the per-CPU delivery DPCs
    /// on first use, drops what a resume left behind (inactive channels), then has every
    /// CPU poll once.
    pub fn enable_interrupts(&'static self, vector: Option<u8>, callback_via: u64) {
        self.enable_interrupts_with(&|_| vector, callback_via)
    }

    /// [`Evtchn::enable_interrupts`] with each processor's own vector (the message
    /// interrupt START gave that CPU; `None` = no per-CPU upcall for it).
    pub fn enable_interrupts_with(
        &'static self,
        vector_of: &dyn Fn(u32) -> Option<u8>,
        callback_via: u64,
    ) {
        self.reap_inactive();
        self.create_dpcs();
        let cpus = self.os.processor_count();
        let mut enabled = Vec::new();
        for cpu in 0..cpus {
            let Some(vector) = vector_of(cpu) else {
                continue;
            };
            let Some(vcpu) = self.shared_info.vcpu_id(cpu) else {
                continue;
            };
            if !self.shared_info.upcall_supported(cpu) {
                continue;
            }
            match self.api.hvm_set_evtchn_upcall_vector(vcpu, vector) {
                Ok(()) => enabled.push(cpu),
                Err(e) if e == xen_include::status::STATUS_NOT_IMPLEMENTED => break,
                Err(e) => warning!(self.api, "EVTCHN: CPU {cpu}: no upcall vector ({e:08X})"),
            }
        }
        if let Err(e) = self
            .api
            .hvm_set_param(HvmParam::CALLBACK_IRQ.0, callback_via)
        {
            error!(self.api, "EVTCHN: callback via not set ({e:08X})");
        }
        {
            let mut s = self.state.lock();
            for (cpu, flag) in s.upcall.iter_mut().enumerate() {
                *flag = enabled.contains(&(cpu as u32));
            }
        }
        // Whatever became pending while no upcall was routed.
        for cpu in 0..self.cpus.len() as u32 {
            self.kick(cpu);
        }
    }

    /// Undo [`Evtchn::enable_interrupts`] (the DPCs stay: [`Evtchn::destroy_dpcs`]).
    pub fn disable_interrupts(&self) {
        let _ = self.api.hvm_set_param(HvmParam::CALLBACK_IRQ.0, 0);
        let cpus: Vec<u32> = {
            let mut s = self.state.lock();
            s.upcall
                .iter_mut()
                .enumerate()
                .filter_map(|(cpu, flag)| core::mem::take(flag).then_some(cpu as u32))
                .collect()
        };
        for cpu in cpus {
            if let Some(vcpu) = self.shared_info.vcpu_id(cpu) {
                let _ = self.api.hvm_set_evtchn_upcall_vector(vcpu, 0);
            }
        }
    }

    /// Create the per-CPU delivery DPCs that do not exist yet (IRQL ≤ DISPATCH_LEVEL). A CPU
    /// whose DPC cannot be created keeps its events pending (logged) until a later call.
    fn create_dpcs(&'static self) {
        for (cpu, p) in self.cpus.iter().enumerate() {
            if p.dpc_state
                .compare_exchange(DPC_NONE, DPC_BUSY, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                continue;
            }
            match self.os.dpc_create(cpu as u32, self) {
                Ok(dpc) => {
                    p.dpc.store(dpc.0, Ordering::Release);
                    p.dpc_state.store(DPC_ARMED, Ordering::SeqCst);
                }
                Err(e) => {
                    p.dpc_state.store(DPC_NONE, Ordering::SeqCst);
                    error!(self.api, "EVTCHN: CPU {cpu}: no delivery DPC ({e:08X})");
                }
            }
        }
    }

    /// Destroy the per-CPU delivery DPCs (PASSIVE_LEVEL, after
    /// [`Evtchn::disable_interrupts`]): when this returns no delivery DPC runs or will run.
    /// Events still pending wait for the next [`Evtchn::enable_interrupts`].
    pub fn destroy_dpcs(&self) {
        for p in &self.cpus {
            if p.dpc_state
                .compare_exchange(DPC_ARMED, DPC_BUSY, Ordering::SeqCst, Ordering::Acquire)
                .is_err()
            {
                continue;
            }
            // A queueing that saw the DPC armed may still be using its handle.
            while p.queueing.load(Ordering::SeqCst) != 0 {
                core::hint::spin_loop();
            }
            self.os
                .dpc_destroy(DpcHandle(p.dpc.load(Ordering::Acquire)));
            p.dpc_state.store(DPC_NONE, Ordering::SeqCst);
        }
    }

    /// Queue `cpu`'s delivery DPC (any IRQL: no lock, no allocation, no wait). Without a
    /// DPC the work stays pending until [`Evtchn::enable_interrupts`] creates one.
    fn kick(&self, cpu: u32) {
        let Some(p) = self.cpus.get(cpu as usize) else {
            return;
        };
        // Announced before the check; `destroy_dpcs` un-arms before reading `queueing`
        // (both SeqCst): either this sees it un-armed or the destruction waits for this.
        p.queueing.fetch_add(1, Ordering::SeqCst);
        if p.dpc_state.load(Ordering::SeqCst) == DPC_ARMED {
            self.os.dpc_queue(DpcHandle(p.dpc.load(Ordering::Acquire)));
        }
        p.queueing.fetch_sub(1, Ordering::SeqCst);
    }

    fn cpu_allowed(&self, cpu: u32) -> bool {
        cpu == 0
            || self
                .state
                .lock()
                .upcall
                .get(cpu as usize)
                .copied()
                .unwrap_or(false)
    }

    /// `Open`: bind a port and register it; `auto_mask` masks before each callback (never
    /// for VIRQs).
    pub fn open(
        &self,
        kind: Kind,
        auto_mask: bool,
        callback: Arc<dyn EvtchnCallback>,
    ) -> Result<ChannelHandle, NtStatus> {
        let (port, cpu) = match kind {
            Kind::Fixed { port } => (port, 0),
            Kind::Unbound { remote_domain } => {
                (self.api.event_channel_allocate_unbound(remote_domain)?, 0)
            }
            Kind::InterDomain {
                remote_domain,
                remote_port,
            } => (
                self.api
                    .event_channel_bind_inter_domain(remote_domain, remote_port)?,
                0,
            ),
            Kind::Virq { index, cpu } => {
                if !self.cpu_allowed(cpu) {
                    return Err(STATUS_NOT_SUPPORTED);
                }
                let vcpu = self
                    .shared_info
                    .vcpu_id(cpu)
                    .ok_or(STATUS_INVALID_PARAMETER)?;
                (self.api.event_channel_bind_virq(index, vcpu)?, cpu)
            }
        };
        if let Some(f) = self.abi() {
            if let Err(e) = f.port_enable(port) {
                self.close_port(kind, port);
                return Err(e);
            }
        }
        let auto_mask = auto_mask && !matches!(kind, Kind::Virq { .. });
        let channel = Arc::new(Channel {
            kind,
            port: AtomicU32::new(port),
            cpu: AtomicU32::new(cpu),
            auto_mask,
            active: AtomicBool::new(true),
            closed: AtomicBool::new(false),
            queued: AtomicBool::new(false),
            count: AtomicU32::new(0),
            in_callback: AtomicU32::new(0),
            epoch: AtomicU64::new(0),
            callback,
        });
        let handle = Arc::as_ptr(&channel) as usize;
        if self.handles.push_growing_outside(channel.clone()).is_err() {
            self.close_port(kind, port);
            return Err(STATUS_NO_MEMORY);
        }
        // Freed after the lock is let go: an inactive channel's entry for this port.
        let replaced = {
            let mut s = self.state.lock();
            if s.ports.get(&port).is_some_and(|c| self.is_active(c)) {
                drop(s);
                error!(self.api, "EVTCHN: port {port} is already open");
                drop(self.forget_handle(handle));
                self.close_port(kind, port);
                return Err(STATUS_INVALID_PARAMETER);
            }
            channel
                .epoch
                .store(self.suspends.load(Ordering::SeqCst), Ordering::SeqCst);
            let replaced = s.ports.insert(port, channel.clone());
            s.open.insert(handle, channel);
            replaced
        };
        drop(replaced);
        Ok(handle)
    }

    /// Take `handle` out of the HIGH_LEVEL handle table (the Arc is returned, to be let go
    /// at DISPATCH_LEVEL or below).
    fn forget_handle(&self, handle: ChannelHandle) -> Option<Arc<Channel>> {
        let mut handles = self.handles.lock();
        let i = handles
            .iter()
            .position(|c| Arc::as_ptr(c) as usize == handle)?;
        Some(handles.swap_remove(i))
    }

    /// Run `f` on the open channel behind `handle` under the HIGH_LEVEL handle table lock
    /// (any IRQL; `f` must not allocate, free or take a lower lock).
    fn with_handle<R>(&self, handle: ChannelHandle, f: impl FnOnce(&Channel) -> R) -> Option<R> {
        let handles = self.handles.lock();
        handles
            .iter()
            .find(|c| Arc::as_ptr(c) as usize == handle)
            .map(|c| f(c))
    }

    fn close_port(&self, kind: Kind, port: u32) {
        if !matches!(kind, Kind::Fixed { .. }) {
            if let Err(e) = self.api.event_channel_close(port) {
                warning!(self.api, "EVTCHN: close of port {port} failed ({e:08X})");
            }
        }
    }

    /// The channel behind a handle.
    pub fn channel(&self, handle: ChannelHandle) -> Option<Arc<Channel>> {
        self.state.lock().open.get(&handle).cloned()
    }

    /// Open channels.
    pub fn open_channels(&self) -> usize {
        self.state.lock().open.len()
    }

    /// `Bind`: deliver on processor `cpu` from now on.
    pub fn bind(&self, handle: ChannelHandle, cpu: u32) -> Result<(), NtStatus> {
        let c = self.channel(handle).ok_or(STATUS_INVALID_PARAMETER)?;
        if !self.cpu_allowed(cpu) {
            return Err(STATUS_NOT_SUPPORTED);
        }
        if !self.is_active(&c) || c.cpu() == cpu {
            return Ok(());
        }
        let vcpu = self
            .shared_info
            .vcpu_id(cpu)
            .ok_or(STATUS_INVALID_PARAMETER)?;
        self.api.event_channel_bind_virtual_cpu(c.port(), vcpu)?;
        c.cpu.store(cpu, Ordering::Release);
        Ok(())
    }

    /// `Unmask` (V8+): true only when an event is pending, not forced, not in the callback
    /// and we are on the bound CPU (then auto-mask and ack: the caller handles it);
    /// otherwise a pending event is handed back to Xen (`EVTCHNOP_unmask`) and false.
    /// Any IRQL (no DISPATCH_LEVEL lock, no allocation), like upstream's.
    pub fn unmask(&self, handle: ChannelHandle, in_callback: bool, force: bool) -> bool {
        let Some((port, cpu, auto_mask, active)) = self.with_handle(handle, |c| {
            (c.port(), c.cpu(), c.auto_mask, self.is_active(c))
        }) else {
            return false;
        };
        if !active {
            return false;
        }
        if !self.abi_unmask(port) {
            return false;
        }
        if in_callback || force || self.os.current_processor() != cpu {
            self.abi_mask(port);
            if let Err(e) = self.api.event_channel_unmask(port) {
                warning!(self.api, "EVTCHN: EVTCHNOP_unmask({port}) failed ({e:08X})");
            }
            return false;
        }
        if auto_mask {
            self.abi_mask(port);
        }
        self.abi_ack(port);
        true
    }

    /// `Send`: notify the other end (active channels only). Any IRQL (no DISPATCH_LEVEL
    /// lock, no allocation), like upstream's: the console sends under its HIGH_LEVEL lock.
    pub fn send(&self, handle: ChannelHandle) {
        let Some((port, active)) = self.with_handle(handle, |c| (c.port(), self.is_active(c)))
        else {
            return;
        };
        if active {
            if let Err(e) = self.api.event_channel_send(port) {
                warning!(self.api, "EVTCHN: send on port {port} failed ({e:08X})");
            }
        }
    }

    fn queue(&self, s: &mut State, c: &Arc<Channel>, cpu: u32) {
        if c.queued.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Some(q) = s.queues.get_mut(cpu as usize) {
            if q.try_reserve(1).is_ok() {
                q.push(c.clone());
                return;
            }
        }
        c.queued.store(false, Ordering::Release);
    }

    /// True while `c` is usable: neither closed nor left behind by a suspend (its port
    /// number may since belong to another channel).
    fn is_active(&self, c: &Channel) -> bool {
        c.active.load(Ordering::Acquire)
            && c.epoch.load(Ordering::SeqCst) == self.suspends.load(Ordering::SeqCst)
    }

    /// Deliver `cpu`'s pending list (DISPATCH_LEVEL, on `cpu`): for each channel still
    /// open and active, auto-mask → ack → barrier → count → callback.
    fn deliver(&self, cpu: u32) -> bool {
        let queued = {
            let mut s = self.state.lock();
            s.queues
                .get_mut(cpu as usize)
                .map(core::mem::take)
                .unwrap_or_default()
        };
        let mut done = false;
        let slot = self.cpus.get(cpu as usize).map(|p| &p.delivering);
        for c in queued {
            c.queued.store(false, Ordering::Release);
            // Announce the delivery before checking `closed`; `Close` sets `closed` before
            // reading `in_callback` (both SeqCst): one of the two sees the other.
            c.in_callback.fetch_add(1, Ordering::SeqCst);
            // An inactive channel's port number may be another channel's since a resume:
            // neither masked, acked nor called back.
            if c.closed.load(Ordering::SeqCst) || !self.is_active(&c) {
                c.in_callback.fetch_sub(1, Ordering::SeqCst);
                continue;
            }
            let port = c.port();
            if c.auto_mask {
                self.abi_mask(port);
            }
            self.abi_ack(port);
            fence(Ordering::SeqCst);
            c.count.fetch_add(1, Ordering::AcqRel);
            let frame = slot.map(|d| d.push(Arc::as_ptr(&c) as usize));
            done |= c.callback.call();
            if let (Some(d), Some(frame)) = (slot, frame) {
                d.pop(frame);
            }
            c.in_callback.fetch_sub(1, Ordering::SeqCst);
        }
        done
    }

    /// Poll the ABI for `cpu` and put the active channels bound to it on its pending list.
    fn poll(&self, cpu: u32) {
        self.abi_poll(cpu, &mut |port| {
            let mut s = self.state.lock();
            let Some(c) = s.ports.get(&port).cloned() else {
                return false;
            };
            if c.cpu() != cpu || !self.is_active(&c) {
                return false;
            }
            self.queue(&mut s, &c, cpu);
            true
        });
    }

    /// The upcall on processor `cpu` (the interrupt service routine, at DIRQL): take the
    /// vCPU's upcall-pending flag (which lets Xen deassert a level-triggered callback via)
    /// and queue the CPU's delivery DPC. No lock, no allocation. True when the upcall was
    /// pending (the interrupt was ours).
    pub fn interrupt(&self, cpu: u32) -> bool {
        let pending = self.shared_info.upcall_pending(cpu);
        if pending {
            self.kick(cpu);
        }
        pending
    }

    /// One delivery pass for `cpu` (its DPC, or a Wait spinning at DISPATCH_LEVEL on it):
    /// poll the ABI while the upcall stays pending, deliver the pending list. Never runs
    /// twice at once for a CPU (nor re-entrantly from a callback): a pass asked for while
    /// one runs is made by that one, which goes round again. True when a callback did
    /// something.
    fn run_pending(&self, cpu: u32) -> bool {
        let Some(p) = self.cpus.get(cpu as usize) else {
            return false;
        };
        // Asked for before trying to run: a runner that lets go after this sees it.
        p.again.store(true, Ordering::SeqCst);
        let mut done = false;
        loop {
            if p.running.swap(true, Ordering::SeqCst) {
                return done;
            }
            while p.again.swap(false, Ordering::SeqCst) {
                loop {
                    // The ISR took the flag that brought us here: poll at least once.
                    self.poll(cpu);
                    done |= self.deliver(cpu);
                    if !self.shared_info.upcall_pending(cpu) {
                        break;
                    }
                }
            }
            p.running.store(false, Ordering::SeqCst);
            if !p.again.load(Ordering::SeqCst) {
                return done;
            }
        }
    }

    /// `Trigger`: deliver the channel's callback on its CPU without a hypercall — put it
    /// on that CPU's pending list and queue the CPU's DPC; never waits. An inactive channel
    /// (closed, or from before a resume) is not delivered.
    pub fn trigger(&self, handle: ChannelHandle) {
        let Some(c) = self.channel(handle) else {
            return;
        };
        if !self.is_active(&c) {
            warning!(
                self.api,
                "EVTCHN: port {}: Trigger of an inactive channel",
                c.port()
            );
            return;
        }
        let cpu = c.cpu();
        {
            let mut s = self.state.lock();
            self.queue(&mut s, &c, cpu);
        }
        self.kick(cpu);
    }

    /// `Wait`: spin until the channel's count reaches `count` (signed wrap-around);
    /// `STATUS_INVALID_PARAMETER` when the channel is (or gets) closed.
    pub fn wait(&self, handle: ChannelHandle, count: u32, timeout: Timeout) -> NtStatus {
        let Some(c) = self.channel(handle) else {
            return STATUS_INVALID_PARAMETER;
        };
        let reached = |c: &Channel| (count.wrapping_sub(c.count()) as i32) <= 0;
        let deadline = match timeout {
            Timeout::Forever => None,
            Timeout::Value(0) => {
                return if reached(&c) {
                    STATUS_SUCCESS
                } else {
                    STATUS_TIMEOUT
                }
            }
            Timeout::Value(t) if t > 0 => Some(t),
            Timeout::Value(t) => Some(self.os.system_time().saturating_sub(t)),
        };
        loop {
            if reached(&c) {
                return STATUS_SUCCESS;
            }
            // A Close racing the wait ends it (upstream frees the channel under the
            // waiter; here it would spin on for ever with no timeout).
            if c.closed.load(Ordering::Acquire) {
                return STATUS_INVALID_PARAMETER;
            }
            if deadline.is_some_and(|d| self.os.system_time() >= d) {
                return STATUS_TIMEOUT;
            }
            // At DISPATCH_LEVEL on the channel's CPU its DPC cannot run while this spins
            // (upstream's ISR would preempt the waiter): deliver here.
            if common::irql::current() == common::irql::DISPATCH_LEVEL
                && self.os.current_processor() == c.cpu()
            {
                self.run_pending(c.cpu());
            }
            core::hint::spin_loop();
        }
    }

    /// `Close`: mask and unbind an active channel (no hypercall for FIXED or for a
    /// channel a resume left inactive); the handle is dead afterwards. Returns once no
    /// callback of the channel runs on another CPU (bounded wait, see the module notes).
    /// A resume during that wait leaves the port to Xen's reset (its number may already
    /// be another channel's).
    pub fn close(&self, handle: ChannelHandle) {
        let channel = {
            let mut s = self.state.lock();
            let Some(c) = s.open.remove(&handle) else {
                return;
            };
            // Not the last reference (`c` holds one), so nothing is freed here.
            let _ = self.forget_handle(handle);
            c.closed.store(true, Ordering::SeqCst);
            let was_active = self.is_active(&c);
            c.active.store(false, Ordering::Release);
            if was_active {
                let port = c.port();
                if s.ports.get(&port).is_some_and(|p| Arc::ptr_eq(p, &c)) {
                    s.ports.remove(&port);
                }
                // Masked under the lock, which a suspend's early phase takes too: once it
                // is let go, a resume may hand the port number to another channel (the
                // store/console re-bind, a new Open) that a later mask would silence.
                self.abi_mask(port);
            }
            (c, was_active, self.suspends.load(Ordering::SeqCst))
        };
        #[cfg(test)]
        if let Some(hook) = self
            .close_unlocked_hook
            .lock()
            .ok()
            .and_then(|mut h| h.take())
        {
            hook();
        }
        let (c, was_active, suspends) = channel;
        self.wait_for_callbacks(&c);
        if was_active && !matches!(c.kind, Kind::Fixed { .. }) {
            // At DISPATCH_LEVEL (or above, from a callback) no suspend can come between
            // the check and EVTCHNOP_close: it first captures every processor with a DPC.
            // Not under `state`, which the ISR takes (a hypercall is long to hold it).
            let closed = {
                let _raised = (common::irql::current() < common::irql::DISPATCH_LEVEL)
                    .then(|| self.close_fence.lock());
                (self.suspends.load(Ordering::SeqCst) == suspends)
                    .then(|| self.api.event_channel_close(c.port()))
            };
            match closed {
                Some(Ok(())) => {}
                Some(Err(e)) => {
                    warning!(
                        self.api,
                        "EVTCHN: close of port {} failed ({e:08X})",
                        c.port()
                    )
                }
                None => info!(
                    self.api,
                    "EVTCHN: port {} not closed: a resume came while its Close waited",
                    c.port()
                ),
            }
        }
    }

    /// Wait (bounded) until no callback of the closed channel `c` runs, apart from those
    /// this CPU is running: a callback closing its own channel, or closing one whose
    /// delivery it interrupted — waiting for those would only spin. Only a closer at
    /// DISPATCH_LEVEL or above can be inside a delivery of its CPU: one below it was
    /// preempted by any delivery on its CPU until that delivery finished.
    fn wait_for_callbacks(&self, c: &Arc<Channel>) {
        let allowed = if common::irql::current() >= common::irql::DISPATCH_LEVEL {
            self.cpus
                .get(self.os.current_processor() as usize)
                .map_or(0, |p| p.delivering.count(Arc::as_ptr(c) as usize))
        } else {
            0
        };
        if c.in_callback.load(Ordering::SeqCst) <= allowed {
            return;
        }
        // The Os clock is the wall clock, which a time sync or a resume on another host may
        // step either way: only small forward moves between two reads count as waiting,
        // so a step back cannot stretch the bound and a step forward cannot end it early.
        let mut last = self.os.system_time();
        let mut waited = 0i64;
        while c.in_callback.load(Ordering::SeqCst) > allowed {
            let now = self.os.system_time();
            let moved = now.saturating_sub(last);
            last = now;
            if (0..CLOSE_WAIT_100NS).contains(&moved) {
                waited += moved;
            }
            if waited >= CLOSE_WAIT_100NS {
                warning!(
                    self.api,
                    "EVTCHN: port {}: closed while its callback still runs on another CPU",
                    c.port()
                );
                return;
            }
            core::hint::spin_loop();
        }
    }

    /// EARLY suspend callback (HIGH_LEVEL, every other CPU captured at DISPATCH_LEVEL):
    /// count the suspend — every channel opened before it is inactive from now on — and mark
    /// the channels so. No allocation, no freeing and no spinning: the lock is only tried
    /// (no other CPU can hold it here); the port table and pending lists are cleaned up by
    /// the late phase's [`Evtchn::enable_interrupts`].
    pub fn suspend_early(&self) {
        self.suspends.fetch_add(1, Ordering::SeqCst);
        match self.state.try_lock() {
            Some(s) => {
                for c in s.open.values() {
                    c.active.store(false, Ordering::Release);
                }
            }
            None => error!(
                self.api,
                "EVTCHN: state busy at suspend: channels are marked inactive in the late phase"
            ),
        }
    }

    /// Drop what a resume left (IRQL ≤ DISPATCH_LEVEL): mark inactive every channel opened
    /// before the last suspend (in case the early phase could not), take the inactive ones
    /// out of the port table and the pending lists.
    fn reap_inactive(&self) {
        let mut s = self.state.lock();
        for c in s.open.values() {
            if !self.is_active(c) {
                c.active.store(false, Ordering::Release);
            }
        }
        s.ports.retain(|_, c| self.is_active(c));
        for q in s.queues.iter_mut() {
            q.retain(|c| {
                let keep = self.is_active(c);
                if !keep {
                    c.queued.store(false, Ordering::Release);
                }
                keep
            });
        }
    }

    /// Upstream's `EvtchnDebugCallback`: the ABI, then every open channel (port, kind,
    /// CPU, count, active) one line at a time. Never spins on a lock (it may run at bug
    /// check with one held) and does not allocate.
    pub fn debug_dump(&self, out: &mut dyn FnMut(&str)) {
        match self.fifo.try_lock() {
            Some(f) if f.is_some() => out("EVTCHN: ABI FIFO"),
            Some(_) => out("EVTCHN: ABI 2-level"),
            None => out("EVTCHN: ABI busy"),
        }
        // One channel at a time, the lock released before printing: `out` may notify a
        // channel (the console) and so take this lock itself.
        for i in 0.. {
            let c = match self.state.try_lock() {
                Some(s) => s.open.values().nth(i).cloned(),
                None => {
                    out("EVTCHN: busy");
                    return;
                }
            };
            let Some(c) = c else {
                return;
            };
            let mut line = crate::log::Line::new();
            let _ = core::fmt::Write::write_fmt(
                &mut line,
                format_args!(
                    "EVTCHN: port {} {:?} cpu {} count {} active {}",
                    c.port(),
                    c.kind,
                    c.cpu(),
                    c.count(),
                    c.is_active()
                ),
            );
            out(line.as_str());
        }
    }

    /// Reserve room for `n` more channels (callers that must not fail later).
    pub fn reserve(&self, n: usize) -> Result<(), NtStatus> {
        let mut s = self.state.lock();
        s.queues
            .iter_mut()
            .try_for_each(|q| q.try_reserve(n))
            .map_err(|_| STATUS_NO_MEMORY)
    }
}

impl DpcRoutine for Evtchn {
    /// The per-CPU delivery DPC (DISPATCH_LEVEL, on `cpu`).
    fn run(&self, cpu: u32) {
        self.run_pending(cpu);
    }
}

#[cfg(test)]
#[path = "evtchn_tests.rs"]
mod tests;
