//! The hypervisor model: the host implementation of `common::hypercall::Hypercall`.
//!
//! One [`Hypervisor`] is one Xen host running one HVM guest domain (plus dom0 and any backend
//! domains, which test code drives through the `backend_*` methods). All state sits behind one
//! lock; guest memory is real host memory (see [`memory`]), so the guest's ring, bitmap and
//! event-word code runs on real atomics. Hypercalls return Xen's raw results (negated errno).
//! Work that calls back out — backend notification handlers and the guest's interrupt
//! (upcall) handler — runs after the lock is dropped.

pub mod abi;
mod evtchn;
mod evtchn_fifo;
mod gnttab;
mod hvm;
pub mod memory;
mod memory_op;
mod sched;
mod vcpu;
mod version;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use common::hypercall::{CpuidResult, Hypercall, PortWidth};

use crate::clock::Clock;
use abi::*;
use memory::{MachineMemory, MemoryError, Physmap, PAGE_SIZE};

pub use abi::GrantStatus;
pub use evtchn::{PortState, PortStatus};
pub use sched::{ShutdownState, SuspendEvent, SuspendOutcome, NR_DOMAIN_WATCHDOG_TIMERS};

pub use abi::Errno;

/// What a guest frame currently holds (the p2m entry).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum P2m {
    /// Nothing: accesses fault.
    Invalid,
    /// Guest RAM backed by this machine frame (counted in the domain's pages).
    Ram(u64),
    /// The shared info page (`XENMAPSPACE_shared_info`).
    SharedInfo,
    /// Grant table frame `n` (`XENMAPSPACE_grant_table`).
    GrantFrame(u32),
    /// A page of another domain mapped through a grant (`GNTTABOP_map_grant_ref`).
    Foreign {
        /// The mapped machine frame.
        mfn: u64,
        /// The grant handle of the mapping.
        handle: u32,
    },
}

/// Vendor string returned by CPUID leaf 0 (selects VMCALL or VMMCALL in the driver).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CpuVendor {
    /// `GenuineIntel`.
    Intel,
    /// `AuthenticAMD`.
    Amd,
    /// Any other 12-character vendor string.
    Other(String),
}

/// How the guest's interrupt (upcall) handler is run when an event becomes pending.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpcallMode {
    /// Synchronously, on the thread that made the event pending, as soon as the hypervisor
    /// lock is released (like an interrupt arriving right after the instruction).
    Immediate,
    /// Only when the test calls [`Hypervisor::deliver_upcalls`].
    Deferred,
}

/// Build-time configuration of the host and domain.
#[derive(Clone, Debug)]
pub struct HvConfig {
    /// The guest's domain id.
    pub domid: u16,
    /// Number of vCPUs.
    pub vcpus: u32,
    /// Guest RAM pages populated at boot (gfns `0..ram_pages`).
    pub ram_pages: u64,
    /// Extra guest frames above RAM and the special pages that are unpopulated at boot
    /// (the platform device's MMIO BAR, used by drivers as a "hole" for foreign mappings).
    pub hole_pages: u64,
    /// Domain memory limit in pages (`max_pages`); `None` = pages populated at boot.
    pub max_pages: Option<u64>,
    /// Machine frames available to the host beyond what the domain starts with.
    pub spare_machine_frames: u64,
    /// `max_grant_frames`.
    pub max_grant_frames: u32,
    /// `max_evtchn_port` of the guest.
    pub max_evtchn_port: u32,
    /// Xen version (major, minor) and extraversion.
    pub xen_version: (u16, u16, String),
    /// CPU vendor string for CPUID leaf 0.
    pub vendor: CpuVendor,
    /// Viridian enabled: Hyper-V leaves at 0x40000000 and Xen's at 0x40000100.
    pub viridian: bool,
    /// `console_io` allowed for this domain (a debug hypervisor); release Xen says -EPERM.
    pub console_io_allowed: bool,
    /// Whether `HVMOP_set_evtchn_upcall_vector` exists (Xen ≥ 4.6); else -ENOSYS.
    pub upcall_vector_supported: bool,
    /// Whether the FIFO ABI is available; else `init_control` fails with -ENOSYS.
    pub fifo_supported: bool,
    /// Shadow paging instead of HAP: only then does `HVMOP_pagetable_dying` succeed.
    pub shadow_paging: bool,
}

impl Default for HvConfig {
    fn default() -> Self {
        HvConfig {
            domid: 1,
            vcpus: 2,
            ram_pages: 4096,
            hole_pages: 256,
            max_pages: None,
            spare_machine_frames: 1024,
            max_grant_frames: 64,
            max_evtchn_port: 1023,
            xen_version: (4, 17, ".0".to_string()),
            vendor: CpuVendor::Intel,
            viridian: false,
            console_io_allowed: false,
            upcall_vector_supported: true,
            fifo_supported: true,
            shadow_paging: false,
        }
    }
}

/// A scripted hypercall failure: the `nth` (1-based) matching call after installation, and
/// the `count - 1` calls after it, fail with `-errno` and have no effect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HypercallFault {
    /// Hypercall number.
    pub op: u32,
    /// Sub-op (the `cmd` argument), or any.
    pub sub: Option<u32>,
    /// First failing matching call (1-based).
    pub nth: u64,
    /// How many consecutive matching calls fail.
    pub count: u64,
    /// The errno returned (positive).
    pub errno: Errno,
}

/// What happens to event notifications matching an [`EventFault`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventFaultKind {
    /// The notification is lost.
    Drop,
    /// The notification is held until [`Hypervisor::release_late_events`].
    Delay,
}

/// A scripted fault on event notifications (sends, VIRQs, timer ticks) to a domain/port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventFault {
    /// Destination domain, or any.
    pub dom: Option<u16>,
    /// Destination port, or any.
    pub port: Option<u32>,
    /// Drop or delay.
    pub kind: EventFaultKind,
    /// Number of notifications affected.
    pub count: u32,
}

/// The guest's interrupt handler: called with the vCPU whose upcall is pending.
pub type UpcallHandler = Arc<dyn Fn(u32) + Send + Sync>;
/// A backend's notification handler: called with the backend port that was notified.
pub type BackendHandler = Arc<dyn Fn(u32) + Send + Sync>;

/// Per-vCPU hypervisor state.
#[derive(Clone, Debug, Default)]
pub(crate) struct Vcpu {
    /// Registered `vcpu_info` (machine frame, offset), if any.
    pub vcpu_info: Option<(u64, usize)>,
    /// `HVMOP_set_evtchn_upcall_vector` vector (0 = none).
    pub upcall_vector: u8,
    /// Periodic timer period and next deadline (ns).
    pub periodic: Option<(u64, u64)>,
    /// FIFO control block (machine frame, offset).
    pub fifo_cb: Option<(u64, usize)>,
    /// FIFO queue tails per priority (0 = empty).
    pub fifo_tail: [u32; 16],
}

/// Everything behind the hypervisor lock.
pub(crate) struct State {
    pub cfg: HvConfig,
    pub mem: MachineMemory,
    pub p2m: Vec<P2m>,
    pub tot_pages: u64,
    pub max_pages: u64,
    pub shared_info_mfn: u64,
    pub vcpus: Vec<Vcpu>,
    pub evtchn: evtchn::Evtchn,
    pub gnttab: gnttab::GrantTable,
    pub params: Vec<u64>,
    pub hcall_faults: Vec<(HypercallFault, u64)>,
    pub event_faults: Vec<EventFault>,
    pub late_events: Vec<(u16, u32)>,
    pub calls: HashMap<(u32, u32), u64>,
    pub notified_backends: Vec<(u16, u32)>,
    pub pagetable_dying: Vec<u64>,
    /// Frames whose release is deferred because a backend still maps them.
    pub pinned: HashMap<u64, u32>,
    pub zombies: Vec<u64>,
    /// dom0's ports of the store and console channels.
    pub ring_backends: [u32; 2],
    pub watchdogs: [Option<u64>; NR_DOMAIN_WATCHDOG_TIMERS],
    pub shutdown: ShutdownState,
    pub suspend_outcome: SuspendOutcome,
    pub suspend_event: Option<SuspendEvent>,
    pub console_out: Vec<u8>,
}

/// The hypervisor.
pub struct Hypervisor {
    physmap: Physmap,
    clock: Arc<Clock>,
    state: Mutex<State>,
    upcall: RwLock<Option<UpcallHandler>>,
    upcall_mode: Mutex<UpcallMode>,
    in_upcall: Vec<AtomicBool>,
    interrupts_enabled: Vec<AtomicBool>,
    upcall_count: Vec<AtomicU32>,
    backend_handlers: Mutex<BTreeMap<(u16, u32), BackendHandler>>,
    platform: Mutex<crate::platform::Platform>,
    suspend_hooks: RwLock<Vec<SuspendHook>>,
    /// Runs the guest's pending DPCs (installed by the guest model).
    dpc_drain: RwLock<Option<common::irql::model::Drain>>,
}

/// Called (without the hypervisor lock) when a suspend completes, before the guest's
/// `SCHEDOP_shutdown` returns: the toolstack/xenstored side reacts to the "new host" here.
pub type SuspendHook = Arc<dyn Fn(SuspendEvent) + Send + Sync>;

/// The DIRQL the guest's upcall interrupt service routine runs at (between DISPATCH_LEVEL
/// and HIGH_LEVEL, like a device interrupt's).
pub const UPCALL_IRQL: common::irql::Irql = 9;

thread_local! {
    /// Set while this host thread runs the guest's interrupt handler.
    static IN_HANDLER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Copy a hypercall argument structure in from the caller.
///
/// # Safety
/// `addr` must be null or point to readable memory of at least `size_of::<T>()` bytes.
unsafe fn copy_from_guest<T: Copy>(addr: usize) -> Result<T, Errno> {
    if addr == 0 {
        return Err(Errno::EFAULT);
    }
    // SAFETY: guaranteed by the caller; unaligned reads are fine for any `T: Copy`.
    Ok(unsafe { std::ptr::read_unaligned(addr as *const T) })
}

/// Copy a hypercall argument structure back out to the caller.
///
/// # Safety
/// `addr` must be null or point to writable memory of at least `size_of::<T>()` bytes.
unsafe fn copy_to_guest<T: Copy>(addr: usize, value: &T) -> Result<(), Errno> {
    if addr == 0 {
        return Err(Errno::EFAULT);
    }
    // SAFETY: guaranteed by the caller.
    unsafe { std::ptr::write_unaligned(addr as *mut T, *value) };
    Ok(())
}

impl State {
    /// Publish the wall clock in shared info under the version protocol.
    pub fn write_wallclock(&self, wall: u64) {
        let si = self.shared_info_mfn;
        let ver = self.mem.atomic_u32(si, SHARED_INFO_WC_VERSION);
        let v = ver.load(Ordering::SeqCst) | 1;
        ver.store(v.wrapping_add(2), Ordering::SeqCst); // odd: update in progress
        let secs = wall / 1_000_000_000;
        self.mem
            .atomic_u32(si, SHARED_INFO_WC_SEC)
            .store(secs as u32, Ordering::SeqCst);
        self.mem
            .atomic_u32(si, SHARED_INFO_WC_NSEC)
            .store((wall % 1_000_000_000) as u32, Ordering::SeqCst);
        self.mem
            .atomic_u32(si, SHARED_INFO_WC_SEC_HI)
            .store((secs >> 32) as u32, Ordering::SeqCst);
        ver.store(v.wrapping_add(3), Ordering::SeqCst); // even again
    }

    /// Xen's `rcu_lock_domain_by_any_id` + XSM check for an unprivileged caller: ESRCH for
    /// an unknown domain, EPERM for another domain.
    pub fn check_domain(&self, domid: DomId) -> Result<(), Errno> {
        if self.is_self(domid) {
            Ok(())
        } else if self.evtchn.domains.contains_key(&domid.0) {
            Err(Errno::EPERM)
        } else {
            Err(Errno::ESRCH)
        }
    }

    /// The guest's own domain id, accepting `DOMID_SELF`.
    pub fn is_self(&self, domid: DomId) -> bool {
        domid == DomId::SELF || domid.0 == self.cfg.domid
    }

    /// Location of a vCPU's `vcpu_info`: registered, else the legacy slot in shared info.
    pub fn vcpu_info_loc(&self, vcpu: u32) -> Option<(u64, usize)> {
        let v = self.vcpus.get(vcpu as usize)?;
        if let Some(loc) = v.vcpu_info {
            return Some(loc);
        }
        if (vcpu as usize) < XEN_LEGACY_MAX_VCPUS {
            return Some((
                self.shared_info_mfn,
                SHARED_INFO_VCPU_INFO + vcpu as usize * VCPU_INFO_SIZE,
            ));
        }
        None
    }

    /// `vcpu_mark_events_pending`: set `evtchn_upcall_pending`; the interrupt is raised by
    /// the dispatcher, which sees the flag.
    pub fn mark_events_pending(&self, vcpu: u32) {
        if let Some((mfn, off)) = self.vcpu_info_loc(vcpu) {
            self.mem
                .atomic_u8(mfn, off + VCPU_INFO_UPCALL_PENDING)
                .store(1, Ordering::SeqCst);
        }
    }

    /// Whether `evtchn_upcall_pending` is set for a vCPU.
    pub fn upcall_pending(&self, vcpu: u32) -> bool {
        self.vcpu_info_loc(vcpu)
            .map(|(mfn, off)| {
                self.mem
                    .atomic_u8(mfn, off + VCPU_INFO_UPCALL_PENDING)
                    .load(Ordering::SeqCst)
                    != 0
            })
            .unwrap_or(false)
    }

    /// Whether a vCPU has a route for its upcall (a per-vCPU vector, or the callback IRQ on
    /// vCPU 0).
    pub fn upcall_routed(&self, vcpu: u32) -> bool {
        let vector = self
            .vcpus
            .get(vcpu as usize)
            .map(|v| v.upcall_vector)
            .unwrap_or(0);
        vector != 0 || (vcpu == 0 && self.params[HvmParam::CALLBACK_IRQ.0 as usize] != 0)
    }

    /// Machine frame of a guest frame that holds RAM.
    pub fn ram_mfn(&self, gfn: u64) -> Option<u64> {
        match self.p2m.get(gfn as usize) {
            Some(P2m::Ram(mfn)) => Some(*mfn),
            _ => None,
        }
    }

    /// Release a machine frame, unless a backend mapping still pins it.
    pub fn release_frame(&mut self, mfn: u64) {
        if self.pinned.get(&mfn).copied().unwrap_or(0) > 0 {
            self.zombies.push(mfn);
        } else {
            self.mem.free(mfn);
        }
    }
}

impl Hypervisor {
    /// Build a host with one guest domain: RAM populated, shared info and grant frame 0
    /// allocated, dom0 present. Returns the layout in [`Hypervisor::layout`].
    pub fn new(cfg: HvConfig, clock: Arc<Clock>) -> Result<Self, MemoryError> {
        let gfns = cfg.ram_pages + SPECIAL_PAGES + cfg.hole_pages;
        let frames = cfg.ram_pages
            + SPECIAL_PAGES
            + 1
            + cfg.max_grant_frames as u64
            + cfg.spare_machine_frames;
        let mut mem = MachineMemory::new(frames)?;
        let physmap = Physmap::new(gfns)?;
        let ram = cfg.ram_pages + SPECIAL_PAGES;
        let first = mem
            .alloc_contiguous(ram)
            .ok_or_else(|| MemoryError("machine too small for guest RAM".into()))?;
        physmap.map(&mem, 0, first, ram)?;
        let mut p2m = vec![P2m::Invalid; gfns as usize];
        for (i, e) in p2m.iter_mut().enumerate().take(ram as usize) {
            *e = P2m::Ram(first + i as u64);
        }
        let shared_info_mfn = mem
            .alloc()
            .ok_or_else(|| MemoryError("no frame for shared info".into()))?;
        let vcpus = vec![Vcpu::default(); cfg.vcpus as usize];
        let n = cfg.vcpus as usize;
        let max_pages = cfg.max_pages.unwrap_or(ram);
        let state = State {
            evtchn: evtchn::Evtchn::new(cfg.domid, cfg.max_evtchn_port),
            gnttab: gnttab::GrantTable::new(cfg.max_grant_frames),
            params: vec![0; HVM_NR_PARAMS as usize],
            cfg,
            mem,
            p2m,
            tot_pages: ram,
            max_pages,
            shared_info_mfn,
            vcpus,
            hcall_faults: Vec::new(),
            event_faults: Vec::new(),
            late_events: Vec::new(),
            calls: HashMap::new(),
            notified_backends: Vec::new(),
            pagetable_dying: Vec::new(),
            pinned: HashMap::new(),
            zombies: Vec::new(),
            ring_backends: [0; 2],
            watchdogs: [None; NR_DOMAIN_WATCHDOG_TIMERS],
            shutdown: ShutdownState::default(),
            suspend_outcome: SuspendOutcome::Resume,
            suspend_event: None,
            console_out: Vec::new(),
        };
        let hv = Hypervisor {
            physmap,
            clock,
            state: Mutex::new(state),
            upcall: RwLock::new(None),
            upcall_mode: Mutex::new(UpcallMode::Immediate),
            in_upcall: (0..n).map(|_| AtomicBool::new(false)).collect(),
            interrupts_enabled: (0..n).map(|_| AtomicBool::new(true)).collect(),
            upcall_count: (0..n).map(|_| AtomicU32::new(0)).collect(),
            backend_handlers: Mutex::new(BTreeMap::new()),
            platform: Mutex::new(crate::platform::Platform::new()),
            suspend_hooks: RwLock::new(Vec::new()),
            dpc_drain: RwLock::new(None),
        };
        hv.write_wallclock();
        Ok(hv)
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// The guest memory layout.
    pub fn layout(&self) -> Layout {
        let st = self.lock();
        let ram = st.cfg.ram_pages;
        Layout {
            ram: 0..ram,
            store_gfn: ram + STORE_PAGE,
            console_gfn: ram + CONSOLE_PAGE,
            hole: ram + SPECIAL_PAGES..ram + SPECIAL_PAGES + st.cfg.hole_pages,
        }
    }

    /// The guest's domain id.
    pub fn domid(&self) -> u16 {
        self.lock().cfg.domid
    }

    /// Number of vCPUs.
    pub fn vcpu_count(&self) -> u32 {
        self.in_upcall.len() as u32
    }

    /// The machine's clock.
    pub fn clock(&self) -> &Arc<Clock> {
        &self.clock
    }

    /// Host address at which the guest sees frame `gfn`.
    pub fn gfn_va(&self, gfn: u64) -> usize {
        self.physmap.va(gfn)
    }

    /// Like [`Hypervisor::gfn_va`], `None` when out of range.
    pub fn gfn_va_checked(&self, gfn: u64) -> Option<usize> {
        (gfn < self.physmap.gfns()).then(|| self.physmap.va(gfn))
    }

    /// The guest frame and offset of a host address inside the guest's physmap.
    pub fn va_to_gfn(&self, va: usize) -> Option<(u64, usize)> {
        self.physmap.gfn_of(va)
    }

    /// Whether a guest frame currently holds RAM.
    pub fn gfn_is_ram(&self, gfn: u64) -> bool {
        self.lock().ram_mfn(gfn).is_some()
    }

    /// What a guest frame currently holds.
    pub fn p2m(&self, gfn: u64) -> P2m {
        self.lock()
            .p2m
            .get(gfn as usize)
            .copied()
            .unwrap_or(P2m::Invalid)
    }

    /// Pages the domain owns now (`tot_pages`) and its limit (`max_pages`).
    pub fn domain_pages(&self) -> (u64, u64) {
        let st = self.lock();
        (st.tot_pages, st.max_pages)
    }

    /// Change the domain's memory limit (what the toolstack's `xl mem-max` does).
    pub fn set_max_pages(&self, pages: u64) {
        self.lock().max_pages = pages;
    }

    /// Read bytes of the guest's physical memory as the hypervisor sees it.
    pub fn read_guest(&self, gfn: u64, offset: usize, out: &mut [u8]) -> Result<(), Errno> {
        let st = self.lock();
        let mfn = st.frame_of(gfn).ok_or(Errno::EFAULT)?;
        st.mem.read(mfn, offset, out);
        Ok(())
    }

    /// Write bytes of the guest's physical memory as the hypervisor sees it.
    pub fn write_guest(&self, gfn: u64, offset: usize, data: &[u8]) -> Result<(), Errno> {
        let st = self.lock();
        let mfn = st.frame_of(gfn).ok_or(Errno::EFAULT)?;
        st.mem.write(mfn, offset, data);
        Ok(())
    }

    /// Run `f` with the contents of the shared info page (hypervisor view).
    pub fn shared_info_bytes(&self) -> Vec<u8> {
        let st = self.lock();
        let mut out = vec![0u8; PAGE_SIZE];
        st.mem.read(st.shared_info_mfn, 0, &mut out);
        out
    }

    /// Host address of the shared info page in the hypervisor's direct map.
    pub fn shared_info_ptr(&self) -> *mut u8 {
        let st = self.lock();
        st.mem.frame_ptr(st.shared_info_mfn)
    }

    fn write_wallclock(&self) {
        let st = self.lock();
        st.write_wallclock(self.clock.boot_wall_ns());
    }

    /// Change the host wall clock (e.g. resume on a new host) and publish it in shared info.
    pub fn set_wallclock(&self, boot_wall_ns: u64) {
        self.clock.set_boot_wall_ns(boot_wall_ns);
        self.write_wallclock();
    }

    /// Exclusive access to the emulated platform (devices, ports 0x10–0x12, 0xE9).
    pub fn platform(&self) -> MutexGuard<'_, crate::platform::Platform> {
        lock(&self.platform)
    }

    /// Choose what the next suspends do.
    pub fn set_suspend_outcome(&self, outcome: SuspendOutcome) {
        self.lock().suspend_outcome = outcome;
    }

    /// Install the hook run when a suspend completes.
    /// Replaces every hook installed so far (`None` removes them all).
    pub fn set_suspend_hook(&self, hook: Option<SuspendHook>) {
        *self
            .suspend_hooks
            .write()
            .unwrap_or_else(|p| p.into_inner()) = hook.into_iter().collect();
    }

    /// Add a hook run after those already installed (toolstack, xenstored and a test can
    /// each watch suspends).
    pub fn add_suspend_hook(&self, hook: SuspendHook) {
        self.suspend_hooks
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(hook);
    }

    /// Shutdown, suspend, yield and watchdog bookkeeping.
    pub fn shutdown_state(&self) -> ShutdownState {
        self.lock().shutdown
    }

    /// Bytes the guest wrote with `console_io`.
    pub fn console_output(&self) -> String {
        String::from_utf8_lossy(&self.lock().console_out).into_owned()
    }

    /// The simulated time-stamp counter: 1 GHz, i.e. nanoseconds of virtual time since boot
    /// (what `vcpu_time_info.tsc_timestamp` is expressed in).
    pub fn tsc(&self) -> u64 {
        self.clock.now_ns()
    }

    /// Move virtual time forward and fire due timers and watchdogs.
    pub fn advance_time(&self, ns: u64) {
        self.clock.advance(ns);
        let mut st = self.lock();
        st.run_timers(self.clock.peek_ns());
        self.finish(st);
    }

    /// Pages granted by a backend domain: allocate a machine frame for `dom` and grant it
    /// to the guest. Returns (grant reference, host address of the page).
    pub fn backend_grant_page(&self, dom: u16, readonly: bool) -> Result<(u32, *mut u8), Errno> {
        let mut st = self.lock();
        st.evtchn.dom(dom)?;
        let mfn = st.mem.alloc().ok_or(Errno::ENOMEM)?;
        let gref = st.backend_grant(dom, mfn, readonly);
        Ok((gref, st.mem.frame_ptr(mfn)))
    }

    /// A backend maps guest grant `gref` (GNTTABOP_map_grant_ref issued by the backend):
    /// sets GTF_reading (and GTF_writing) in the guest's entry. Returns the handle and the
    /// host address of the granted page.
    pub fn backend_map_grant(
        &self,
        dom: u16,
        gref: u32,
        readonly: bool,
    ) -> Result<(u32, *mut u8), GrantStatus> {
        let mut st = self.lock();
        let (handle, mfn) = st.backend_map(dom, gref, readonly)?;
        Ok((handle, st.mem.frame_ptr(mfn)))
    }

    /// A backend unmaps a grant it mapped.
    pub fn backend_unmap_grant(&self, dom: u16, handle: u32) -> Result<(), GrantStatus> {
        self.lock().backend_unmap(dom, handle)
    }

    /// A backend copies out of a guest grant.
    pub fn backend_copy_from_grant(
        &self,
        dom: u16,
        gref: u32,
        offset: usize,
        out: &mut [u8],
    ) -> Result<(), GrantStatus> {
        self.lock().backend_copy(dom, gref, offset, out, false)
    }

    /// A backend copies into a guest grant (which must be writable).
    pub fn backend_copy_to_grant(
        &self,
        dom: u16,
        gref: u32,
        offset: usize,
        data: &[u8],
    ) -> Result<(), GrantStatus> {
        let mut buf = data.to_vec();
        self.lock().backend_copy(dom, gref, offset, &mut buf, true)
    }

    /// The guest's current mappings of backend grants: (gfn, backend domain, gref).
    pub fn guest_foreign_mappings(&self) -> Vec<(u64, u16, u32)> {
        self.lock()
            .gnttab
            .guest_maps
            .values()
            .map(|m| (m.gfn, m.backend, m.gref))
            .collect()
    }

    /// The guest's grant entry `gref` as (flags, domid, frame).
    pub fn grant_entry(&self, gref: u32) -> Option<(u16, u16, u32)> {
        self.lock().gnttab_read_entry(gref)
    }

    /// Write a grant entry as the toolstack does when seeding the reserved entries.
    pub fn toolstack_seed_grant(&self, gref: u32, backend: u16, gfn: u64) {
        let mut st = self.lock();
        st.gnttab_grow(1).expect("grant frame 0");
        st.gnttab_write_entry(
            gref,
            GrantEntryFlags::PERMIT_ACCESS.bits(),
            backend,
            gfn as u32,
        );
    }

    /// Record dom0's port of the store (`true`) or console channel.
    pub fn set_ring_backend(&self, store: bool, port: u32) {
        self.lock().ring_backends[usize::from(!store)] = port;
    }

    /// dom0's port of the store (`true`) or console channel.
    pub fn ring_backend(&self, store: bool) -> u32 {
        self.lock().ring_backends[usize::from(!store)]
    }

    /// Host address of the machine frame behind a guest frame (the hypervisor's direct
    /// map: stays valid while the guest remaps the frame).
    pub fn frame_ptr_of_gfn(&self, gfn: u64) -> Option<*mut u8> {
        let st = self.lock();
        st.frame_of(gfn).map(|mfn| st.mem.frame_ptr(mfn))
    }

    // ----- toolstack and backend side -----

    /// Set an HVM parameter as the toolstack does (no guest permission checks).
    pub fn set_param(&self, index: HvmParam, value: u64) {
        let mut st = self.lock();
        if let Some(p) = st.params.get_mut(index.0 as usize) {
            *p = value;
        }
        self.finish(st);
    }

    /// Read an HVM parameter as the toolstack does.
    pub fn param(&self, index: HvmParam) -> u64 {
        self.lock()
            .params
            .get(index.0 as usize)
            .copied()
            .unwrap_or(0)
    }

    /// Create a backend domain (dom0 exists from the start).
    pub fn add_backend_domain(&self, domid: u16) {
        let mut st = self.lock();
        st.evtchn
            .domains
            .entry(domid)
            .or_insert_with(evtchn::Domain::new_backend);
    }

    /// Allocate an unbound port in `dom` for `remote` to bind (`EVTCHNOP_alloc_unbound` on
    /// behalf of `dom`, as the toolstack does for the guest's store and console channels).
    pub fn evtchn_alloc_unbound(&self, dom: u16, remote: u16) -> Result<u32, Errno> {
        let mut st = self.lock();
        let r = st.evtchn_alloc_unbound(dom, remote);
        self.finish(st);
        r
    }

    /// Bind a new port of backend domain `dom` to `remote_port` of `remote`.
    pub fn backend_bind_interdomain(
        &self,
        dom: u16,
        remote: u16,
        remote_port: u32,
    ) -> Result<u32, Errno> {
        let mut st = self.lock();
        let r = st.evtchn_bind_interdomain(dom, remote, remote_port);
        self.finish(st);
        r
    }

    /// Notify through a backend domain's port (`EVTCHNOP_send` issued by the backend).
    pub fn backend_send(&self, dom: u16, port: u32) -> Result<(), Errno> {
        let mut st = self.lock();
        let r = st.evtchn_send(dom, port);
        self.finish(st);
        r
    }

    /// Close a backend domain's port.
    pub fn backend_close(&self, dom: u16, port: u32) -> Result<(), Errno> {
        let mut st = self.lock();
        let r = st.evtchn_close(dom, port);
        self.finish(st);
        r
    }

    /// Ports of backend domain `dom` notified since the last call (cleared).
    pub fn backend_take_pending(&self, dom: u16) -> Vec<u32> {
        let mut st = self.lock();
        match st.evtchn.dom_mut(dom) {
            Ok(d) => std::mem::take(&mut d.backend_pending).into_iter().collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Call `handler` (after the hypervisor lock is dropped) whenever `dom`'s `port` is
    /// notified. The pending flag is still recorded for [`Hypervisor::backend_take_pending`].
    pub fn set_backend_handler(&self, dom: u16, port: u32, handler: Option<BackendHandler>) {
        let mut h = lock(&self.backend_handlers);
        match handler {
            Some(f) => {
                h.insert((dom, port), f);
            }
            None => {
                h.remove(&(dom, port));
            }
        }
    }

    /// Status of a port of any domain.
    pub fn port_status(&self, dom: u16, port: u32) -> Result<PortStatus, Errno> {
        self.lock().evtchn.status(dom, port)
    }

    /// Raise a virtual IRQ on a vCPU. Returns whether the guest had it bound.
    pub fn raise_virq(&self, vcpu: u32, virq: Virq) -> bool {
        let mut st = self.lock();
        let r = st.raise_virq(vcpu, virq);
        self.finish(st);
        r
    }

    /// Whether the guest uses the FIFO event channel ABI.
    pub fn evtchn_fifo_active(&self) -> bool {
        self.lock().evtchn.fifo
    }

    /// A vCPU's upcall vector (0 = none).
    pub fn upcall_vector(&self, vcpu: u32) -> u8 {
        self.lock()
            .vcpus
            .get(vcpu as usize)
            .map(|v| v.upcall_vector)
            .unwrap_or(0)
    }

    /// Guest physical addresses passed to `HVMOP_pagetable_dying`.
    pub fn pagetables_dying(&self) -> Vec<u64> {
        self.lock().pagetable_dying.clone()
    }

    // ----- fault injection -----

    /// Install a hypercall fault.
    pub fn inject_hypercall_fault(&self, fault: HypercallFault) {
        self.lock().hcall_faults.push((fault, 0));
    }

    /// Install an event-notification fault.
    pub fn inject_event_fault(&self, fault: EventFault) {
        self.lock().event_faults.push(fault);
    }

    /// Remove every installed hypercall and event-notification fault (held notifications
    /// stay held until [`Hypervisor::release_late_events`]).
    pub fn clear_faults(&self) {
        let mut st = self.lock();
        st.hcall_faults.clear();
        st.event_faults.clear();
    }

    /// Deliver the notifications held by [`EventFaultKind::Delay`] faults.
    pub fn release_late_events(&self) {
        let mut st = self.lock();
        let late = std::mem::take(&mut st.late_events);
        for (dom, port) in late {
            st.set_pending(dom, port);
        }
        self.finish(st);
    }

    /// Every `(op, sub-op)` pair issued so far, sorted (for fault sweeps over what a
    /// scenario actually calls).
    pub fn call_kinds(&self) -> Vec<(u32, u32)> {
        let mut kinds: Vec<(u32, u32)> = self.lock().calls.keys().copied().collect();
        kinds.sort_unstable();
        kinds
    }

    /// How many times hypercall `op` with sub-op `sub` has been issued.
    pub fn call_count(&self, op: u32, sub: u32) -> u64 {
        self.lock().calls.get(&(op, sub)).copied().unwrap_or(0)
    }

    // ----- upcalls -----

    /// Register the guest's interrupt handler (its event-channel ISR).
    pub fn set_upcall_handler(&self, handler: Option<UpcallHandler>) {
        *self.upcall.write().unwrap_or_else(|p| p.into_inner()) = handler;
    }

    /// Choose when upcalls are delivered.
    pub fn set_upcall_mode(&self, mode: UpcallMode) {
        *lock(&self.upcall_mode) = mode;
    }

    /// Mask or unmask interrupts on a vCPU (the guest's `cli`/`sti`, or raising to HIGH_LEVEL).
    /// Unmasking delivers anything pending in immediate mode.
    pub fn set_interrupts_enabled(&self, vcpu: u32, enabled: bool) {
        if let Some(f) = self.interrupts_enabled.get(vcpu as usize) {
            f.store(enabled, Ordering::SeqCst);
        }
        if enabled && *lock(&self.upcall_mode) == UpcallMode::Immediate {
            self.deliver_upcalls();
        }
        if enabled {
            self.run_dpcs();
        }
    }

    /// Install what runs the guest's pending DPCs at the drain points (after upcall
    /// delivery, at hypercall completion, when a vCPU's interrupts come back on).
    pub fn set_dpc_drain(&self, drain: Option<common::irql::model::Drain>) {
        *self.dpc_drain.write().unwrap_or_else(|p| p.into_inner()) = drain;
    }

    /// A drain point: run the guest's pending DPCs when this thread is below
    /// DISPATCH_LEVEL and not inside the interrupt handler (the interrupt exit runs them).
    fn run_dpcs(&self) {
        if IN_HANDLER.with(|f| f.get())
            || common::irql::model::current() >= common::irql::DISPATCH_LEVEL
        {
            return;
        }
        let drain = self
            .dpc_drain
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(drain) = drain {
            drain();
        }
    }

    /// Number of times the upcall handler ran on a vCPU.
    pub fn upcall_count(&self, vcpu: u32) -> u32 {
        self.upcall_count
            .get(vcpu as usize)
            .map(|c| c.load(Ordering::SeqCst))
            .unwrap_or(0)
    }

    /// Whether a vCPU has an interrupt pending (upcall flag set and routed).
    pub fn interrupt_pending(&self, vcpu: u32) -> bool {
        let st = self.lock();
        st.upcall_routed(vcpu) && st.upcall_pending(vcpu)
    }

    /// Run the guest's interrupt handler on every vCPU that has an upcall pending, routed
    /// and not masked, repeating while the flag stays set (level semantics), at most 64
    /// times per vCPU. Returns how many handler calls were made.
    pub fn deliver_upcalls(&self) -> u32 {
        // An interrupt handler running on this host thread is not interrupted by another
        // vCPU's upcall: the outer delivery loop reaches that vCPU once the handler returns
        // (so a handler's locks are never re-entered on the same thread).
        if IN_HANDLER.with(|f| f.get()) {
            return 0;
        }
        // Nor while this thread's processor runs at or above the upcall's DIRQL (a HIGH_LEVEL
        // lock held, the suspend's HIGH_LEVEL phase): the local APIC holds the interrupt
        // off; it is delivered by a later delivery once the IRQL is back down.
        if common::irql::model::current() >= UPCALL_IRQL {
            return 0;
        }
        let handler = self
            .upcall
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let Some(handler) = handler else {
            self.run_dpcs();
            return 0;
        };
        let mut calls = 0;
        for vcpu in 0..self.vcpu_count() {
            let v = vcpu as usize;
            let mut budget = 64;
            // Another thread may be running this vCPU's handler; it re-checks the level after
            // releasing the vCPU, so an upcall raised meanwhile is never left behind.
            while budget > 0
                && self.interrupts_enabled[v].load(Ordering::SeqCst)
                && self.interrupt_pending(vcpu)
                && !self.in_upcall[v].swap(true, Ordering::SeqCst)
            {
                while budget > 0
                    && self.interrupts_enabled[v].load(Ordering::SeqCst)
                    && self.interrupt_pending(vcpu)
                {
                    budget -= 1;
                    self.upcall_count[v].fetch_add(1, Ordering::SeqCst);
                    calls += 1;
                    IN_HANDLER.with(|f| f.set(true));
                    // The ISR preempts this thread's processor at DIRQL (the IRQL model
                    // checks every lock it takes is allowed there).
                    crate::guest::run_on(vcpu, || {
                        common::irql::model::interrupt(UPCALL_IRQL, || handler(vcpu))
                    });
                    IN_HANDLER.with(|f| f.set(false));
                }
                self.in_upcall[v].store(false, Ordering::SeqCst);
            }
        }
        // The DPCs the handlers queued ran when each handler returned below
        // DISPATCH_LEVEL; any other thread's still pending run here.
        self.run_dpcs();
        calls
    }

    /// Drop the lock, run backend handlers for notified ports, then deliver upcalls.
    pub(crate) fn finish(&self, mut st: MutexGuard<'_, State>) {
        let notified = std::mem::take(&mut st.notified_backends);
        let suspended = st.suspend_event.take();
        drop(st);
        if let Some(ev) = suspended {
            let hooks = self
                .suspend_hooks
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            for hook in hooks {
                hook(ev);
            }
        }
        if !notified.is_empty() {
            let handlers: Vec<(u32, BackendHandler)> = {
                let h = lock(&self.backend_handlers);
                notified
                    .iter()
                    .filter_map(|k| h.get(k).map(|f| (k.1, f.clone())))
                    .collect()
            };
            for (port, f) in handlers {
                f(port);
            }
        }
        if *lock(&self.upcall_mode) == UpcallMode::Immediate {
            self.deliver_upcalls();
        } else {
            self.run_dpcs();
        }
    }

    fn dispatch(&self, st: &mut State, op: u32, args: [usize; 5]) -> Result<isize, Errno> {
        match HypercallCode(op) {
            HypercallCode::MEMORY_OP => st.memory_op(&self.physmap, args),
            HypercallCode::EVENT_CHANNEL_OP => st.event_channel_op(args),
            HypercallCode::HVM_OP => st.hvm_op(args),
            HypercallCode::GRANT_TABLE_OP => st.grant_table_op(&self.physmap, args),
            HypercallCode::VCPU_OP => st.vcpu_op(args, self.clock.peek_ns()),
            HypercallCode::XEN_VERSION => st.xen_version(args),
            HypercallCode::CONSOLE_IO => st.console_io(args),
            HypercallCode::SCHED_OP => {
                let r = st.sched_op(&self.physmap, args, self.clock.peek_ns());
                if st
                    .suspend_event
                    .is_some_and(|e| e.outcome == SuspendOutcome::Resume)
                {
                    st.write_wallclock(self.clock.boot_wall_ns());
                }
                r
            }
            _ => Err(Errno::ENOSYS),
        }
    }
}

/// Pages between RAM and the hole that the "toolstack" reserves (store ring, console ring).
pub const SPECIAL_PAGES: u64 = 2;
const STORE_PAGE: u64 = 0;
const CONSOLE_PAGE: u64 = 1;

/// The guest physical layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// RAM frames the guest OS manages.
    pub ram: std::ops::Range<u64>,
    /// The xenstore ring page.
    pub store_gfn: u64,
    /// The console ring page.
    pub console_gfn: u64,
    /// Unpopulated frames (platform device BAR) usable as a hole.
    pub hole: std::ops::Range<u64>,
}

fn sub_op(op: u32, args: &[usize; 5]) -> u32 {
    match HypercallCode(op) {
        HypercallCode::MEMORY_OP => (args[0] & 0x3f) as u32,
        _ => args[0] as u32,
    }
}

// The hypervisor's own work is not the guest's: its heap use is not pool use
// (`model::host_side`); an upcall it delivers runs guest code again (`model::interrupt`).
impl Hypercall for Hypervisor {
    fn hypercall(&self, op: u32, args: [usize; 5]) -> isize {
        common::irql::model::host_side(|| self.hypercall_inner(op, args))
    }

    fn cpuid(&self, leaf: u32, subleaf: u32) -> CpuidResult {
        common::irql::model::host_side(|| {
            self.lock()
                .cpuid(leaf, subleaf, crate::guest::current_processor())
        })
    }

    fn port_read(&self, port: u16, width: PortWidth) -> u32 {
        common::irql::model::host_side(|| self.platform().port_read(port, width))
    }

    fn port_write(&self, port: u16, width: PortWidth, value: u32) {
        common::irql::model::host_side(|| self.platform().port_write(port, width, value))
    }
}

impl Hypervisor {
    fn hypercall_inner(&self, op: u32, args: [usize; 5]) -> isize {
        let sub = sub_op(op, &args);
        let now = self.clock.now_ns();
        let mut st = self.lock();
        st.run_timers(now);
        *st.calls.entry((op, sub)).or_insert(0) += 1;
        let mut injected = None;
        for (f, seen) in st.hcall_faults.iter_mut() {
            if f.op == op && f.sub.is_none_or(|s| s == sub) {
                *seen += 1;
                if *seen >= f.nth && *seen < f.nth + f.count {
                    injected = Some(f.errno);
                }
            }
        }
        let result = match injected {
            Some(errno) => -(errno.0 as isize),
            None => match self.dispatch(&mut st, op, args) {
                Ok(v) => v,
                Err(e) => -(e.0 as isize),
            },
        };
        self.finish(st);
        result
    }
}
