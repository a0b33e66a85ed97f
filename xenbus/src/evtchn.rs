//! EVTCHN (spec §5.8): event channels over the 2-level ABI of SHARED_INFO — Open for
//! FIXED/UNBOUND/INTER_DOMAIN/VIRQ, the port table, delivery in the upcall (auto-mask →
//! ack → barrier → count → callback, only on the bound CPU), Bind, Unmask (V8 rules),
//! Send, Trigger, GetCount, Wait, Close, and channels left inactive by a resume.
//!
//! Decisions:
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
//! * `Trigger` queues the channel on its CPU and delivers there (`Os::run_on_processor`,
//!   or directly when already on that CPU) instead of queueing an asynchronous DPC.
//! * The ABI is the 2-level one of SHARED_INFO until [`Evtchn::use_fifo`] switches to the
//!   FIFO ABI (`UseEvtchnFifoAbi`); a failed FIFO acquire falls back to 2-level.
#![forbid(unsafe_code)]

use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use common::os::Os;
use common::sync::{HighLock, IsrSpinLock, SpinLock};
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
    /// Per-CPU delivery queues.
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
    /// Taken by the ISR and the suspend's HIGH_LEVEL phase too, but open/close/queue still
    /// allocate under it (BTreeMaps, queues): interim, see [`IsrSpinLock`].
    state: IsrSpinLock<State>,
    /// HIGH_LEVEL: read by the ISR; only Arcs move under it (created and released outside).
    fifo: HighLock<Option<Arc<Fifo>>>,
    /// Per CPU: the channels whose callbacks that CPU is running (nested deliveries).
    delivering: Vec<Delivering>,
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
            state: IsrSpinLock::new(State {
                ports: BTreeMap::new(),
                open: BTreeMap::new(),
                queues: (0..cpus).map(|_| Vec::new()).collect(),
                upcall: (0..cpus).map(|_| false).collect(),
            }),
            fifo: HighLock::new(None),
            delivering: (0..cpus).map(|_| Delivering::default()).collect(),
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
    pub fn enable_interrupts(&self, vector: Option<u8>, callback_via: u64) {
        self.enable_interrupts_with(&|_| vector, callback_via)
    }

    /// [`Evtchn::enable_interrupts`] with each processor's own vector (the message
    /// interrupt START gave that CPU; `None` = no per-CPU upcall for it).
    pub fn enable_interrupts_with(&self, vector_of: &dyn Fn(u32) -> Option<u8>, callback_via: u64) {
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
        for cpu in 0..cpus {
            self.interrupt(cpu);
        }
    }

    /// Undo [`Evtchn::enable_interrupts`].
    ///
    /// The state lock is not held across the hypercalls: an upcall arriving on this CPU
    /// while one is in progress runs [`Evtchn::interrupt`], which takes that lock (holding
    /// it here deadlocked the simulator's synchronous delivery after a resume whose
    /// `vcpu_info` re-registration failed, and would on real hardware).
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
            callback,
        });
        let handle = Arc::as_ptr(&channel) as usize;
        {
            let mut s = self.state.lock();
            if s.ports.contains_key(&port) {
                drop(s);
                error!(self.api, "EVTCHN: port {port} is already open");
                self.close_port(kind, port);
                return Err(STATUS_INVALID_PARAMETER);
            }
            s.ports.insert(port, channel.clone());
            s.open.insert(handle, channel);
        }
        Ok(handle)
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
        if !c.is_active() || c.cpu() == cpu {
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
    pub fn unmask(&self, handle: ChannelHandle, in_callback: bool, force: bool) -> bool {
        let Some(c) = self.channel(handle) else {
            return false;
        };
        if !c.is_active() {
            return false;
        }
        let port = c.port();
        if !self.abi_unmask(port) {
            return false;
        }
        if in_callback || force || self.os.current_processor() != c.cpu() {
            self.abi_mask(port);
            if let Err(e) = self.api.event_channel_unmask(port) {
                warning!(self.api, "EVTCHN: EVTCHNOP_unmask({port}) failed ({e:08X})");
            }
            return false;
        }
        if c.auto_mask {
            self.abi_mask(port);
        }
        self.abi_ack(port);
        true
    }

    /// `Send`: notify the other end (active channels only).
    pub fn send(&self, handle: ChannelHandle) {
        if let Some(c) = self.channel(handle) {
            if c.is_active() {
                if let Err(e) = self.api.event_channel_send(c.port()) {
                    warning!(
                        self.api,
                        "EVTCHN: send on port {} failed ({e:08X})",
                        c.port()
                    );
                }
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

    fn deliver(&self, cpu: u32) -> bool {
        let queued = {
            let mut s = self.state.lock();
            s.queues
                .get_mut(cpu as usize)
                .map(core::mem::take)
                .unwrap_or_default()
        };
        let mut done = false;
        let slot = self.delivering.get(cpu as usize);
        for c in queued {
            c.queued.store(false, Ordering::Release);
            // Announce the delivery before checking `closed`; `Close` sets `closed` before
            // reading `in_callback` (both SeqCst): one of the two sees the other.
            c.in_callback.fetch_add(1, Ordering::SeqCst);
            if c.closed.load(Ordering::SeqCst) {
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

    /// The upcall on processor `cpu` (the interrupt service routine): poll while the
    /// upcall is pending, queue the channels bound to `cpu`, deliver them.
    pub fn interrupt(&self, cpu: u32) -> bool {
        let mut done = false;
        while self.shared_info.upcall_pending(cpu) {
            self.abi_poll(cpu, &mut |port| {
                let mut s = self.state.lock();
                let Some(c) = s.ports.get(&port).cloned() else {
                    return false;
                };
                if c.cpu() != cpu {
                    return false;
                }
                self.queue(&mut s, &c, cpu);
                true
            });
            done |= self.deliver(cpu);
        }
        done |= self.deliver(cpu);
        done
    }

    /// `Trigger`: deliver the channel's callback on its CPU without a hypercall.
    pub fn trigger(&self, handle: ChannelHandle) {
        let Some(c) = self.channel(handle) else {
            return;
        };
        let cpu = c.cpu();
        {
            let mut s = self.state.lock();
            self.queue(&mut s, &c, cpu);
        }
        // Callbacks run at DISPATCH_LEVEL or above (upstream: the DPC, the ISR); a thread
        // below it on the right CPU could be preempted or moved mid-callback.
        if self.os.current_processor() == cpu
            && common::irql::current() >= common::irql::DISPATCH_LEVEL
        {
            self.deliver(cpu);
        } else {
            let _ = self.os.run_on_processor(cpu, &mut || {
                self.deliver(cpu);
            });
        }
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
            c.closed.store(true, Ordering::SeqCst);
            let was_active = c.active.swap(false, Ordering::AcqRel);
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
    /// delivery it preempted (an ISR's over a DPC's) — waiting for those would only spin.
    fn wait_for_callbacks(&self, c: &Arc<Channel>) {
        let allowed = self
            .delivering
            .get(self.os.current_processor() as usize)
            .map_or(0, |d| d.count(Arc::as_ptr(c) as usize));
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

    /// EARLY suspend callback: every channel becomes inactive and leaves the port table.
    pub fn suspend_early(&self) {
        let mut s = self.state.lock();
        self.suspends.fetch_add(1, Ordering::SeqCst);
        for c in s.open.values() {
            c.active.store(false, Ordering::Release);
        }
        s.ports.clear();
        for q in s.queues.iter_mut() {
            for c in q.drain(..) {
                c.queued.store(false, Ordering::Release);
            }
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

#[cfg(test)]
#[path = "evtchn_tests.rs"]
mod tests;
