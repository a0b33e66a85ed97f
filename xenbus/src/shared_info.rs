//! SHARED_INFO (spec §5.7): the shared info page in a hole page, the per-CPU `vcpu_info`
//! (registered, else the legacy slot), the 2-level event bitmaps (poll with a per-CPU
//! round-robin resume point, ack, mask, unmask) and the wall clock.
#![forbid(unsafe_code)]

use alloc::vec::Vec;
use core::mem::{offset_of, size_of};

use alloc::sync::Arc;

use common::os::Os;
use common::sync::{HighLock, SpinLock};
use xen_include::api::XenApi;
use xen_include::status::{NtStatus, STATUS_NO_MEMORY, STATUS_UNSUCCESSFUL};
use xen_include::xen::memory::MapSpace;
use xen_include::xen::xen::{SharedInfo as SharedInfoPage, VcpuInfo, VcpuTimeInfo};

use crate::hole::{Hole, HoleRun};
use crate::shared::{self, rmb, SharedMemory};

/// Ports per selector word.
pub const PORTS_PER_SELECTOR: u32 = 64;
/// Selector words.
pub const SELECTORS: u32 = 64;
/// Ports the 2-level ABI can address.
pub const MAX_PORTS: u32 = PORTS_PER_SELECTOR * SELECTORS;
/// Legacy `shared_info->vcpu_info[]` slots.
pub const LEGACY_VCPUS: u32 = 32;
/// Seconds from 1601-01-01 to 1970-01-01.
pub const EPOCH_1601_TO_1970_SECS: u64 = 11_644_473_600;

const PENDING: usize = offset_of!(SharedInfoPage, evtchn_pending);
const MASK: usize = offset_of!(SharedInfoPage, evtchn_mask);
const WC_VERSION: usize = offset_of!(SharedInfoPage, wc_version);
const WC_SEC: usize = offset_of!(SharedInfoPage, wc_sec);
const WC_NSEC: usize = offset_of!(SharedInfoPage, wc_nsec);
const WC_SEC_HI: usize = offset_of!(SharedInfoPage, wc_sec_hi);
const UPCALL_PENDING: usize = offset_of!(VcpuInfo, evtchn_upcall_pending);
const UPCALL_MASK: usize = offset_of!(VcpuInfo, evtchn_upcall_mask);
const PENDING_SEL: usize = offset_of!(VcpuInfo, evtchn_pending_sel);
const TIME: usize = offset_of!(VcpuInfo, time);
const T_VERSION: usize = TIME + offset_of!(VcpuTimeInfo, version);
const T_TSC: usize = TIME + offset_of!(VcpuTimeInfo, tsc_timestamp);
const T_SYSTEM: usize = TIME + offset_of!(VcpuTimeInfo, system_time);
const T_MUL: usize = TIME + offset_of!(VcpuTimeInfo, tsc_to_system_mul);
const T_SHIFT: usize = TIME + offset_of!(VcpuTimeInfo, tsc_shift);

/// A processor's view.
struct Cpu {
    vcpu_id: Option<u32>,
    vcpu_info: Option<SharedMemory>,
    registered: bool,
    /// Round-robin resume point of the 2-level poll (a port number).
    port: u32,
}

struct Mapped {
    pfn: u64,
    run: HoleRun,
    shared: SharedMemory,
    cpus: Vec<Cpu>,
}

/// The SHARED_INFO subsystem.
pub struct SharedInfo {
    api: &'static dyn XenApi,
    os: &'static dyn Os,
    hole: SpinLock<Option<Arc<Hole<'static>>>>,
    state: HighLock<Option<Mapped>>,
}

fn word(port: u32) -> (usize, u64) {
    (
        (port / PORTS_PER_SELECTOR) as usize * 8,
        1u64 << (port % PORTS_PER_SELECTOR),
    )
}

impl SharedInfo {
    /// An unmapped subsystem.
    pub const fn new(api: &'static dyn XenApi, os: &'static dyn Os) -> Self {
        Self {
            api,
            os,
            hole: SpinLock::new(None),
            state: HighLock::new(None),
        }
    }

    /// Take hole pages from `hole` (the FDO's, in the mode `UseMemoryHole` chose) instead
    /// of a fresh `decrease_reservation` hole. Set before Acquire.
    pub fn set_hole(&self, hole: Option<Arc<Hole<'static>>>) {
        *self.hole.lock() = hole;
    }

    fn map(&self, pfn: u64) -> Result<SharedMemory, NtStatus> {
        self.add_to_physmap(pfn)?;
        shared::map_pfn(self.os, pfn).ok_or(STATUS_UNSUCCESSFUL)
    }

    /// Put the shared info page at `pfn` in the guest's physmap (no kernel mapping: the
    /// resume runs this at HIGH_LEVEL, where mapping I/O space is not allowed; the frame,
    /// and so the existing mapping of it, does not move).
    fn add_to_physmap(&self, pfn: u64) -> Result<(), NtStatus> {
        self.api
            .memory_add_to_physmap(pfn as usize, MapSpace::SHARED_INFO.0, 0)?;
        info!(
            self.api,
            "SHARED_INFO: MAP XENMAPSPACE_shared_info @ {:#x}",
            pfn << 12
        );
        Ok(())
    }

    fn mask_all(shared: &SharedMemory) {
        for selector in 0..SELECTORS as usize {
            let _ = shared.store_u64(MASK + selector * 8, u64::MAX);
        }
    }

    fn cpus(&self, shared: &SharedMemory) -> Result<Vec<Cpu>, NtStatus> {
        let count = self.os.processor_count();
        let mut cpus = Vec::new();
        cpus.try_reserve(count as usize)
            .map_err(|_| STATUS_NO_MEMORY)?;
        for cpu in 0..count {
            let vcpu_id = self.api.system_processor_vcpu_id(cpu).ok();
            let registered = shared::vcpu_info(self.api, cpu, size_of::<VcpuInfo>());
            let (vcpu_info, is_registered) = match (registered, vcpu_id) {
                (Some(v), _) => (Some(v), true),
                (None, Some(id)) if id < LEGACY_VCPUS => (
                    shared::sub_view(
                        shared,
                        id as usize * size_of::<VcpuInfo>(),
                        size_of::<VcpuInfo>(),
                    ),
                    false,
                ),
                _ => (None, false),
            };
            if vcpu_info.is_none() {
                warning!(
                    self.api,
                    "SHARED_INFO: CPU {cpu}: no vcpu_info (unsupported)"
                );
            }
            cpus.push(Cpu {
                vcpu_id,
                vcpu_info,
                registered: is_registered,
                port: 0,
            });
        }
        Ok(cpus)
    }

    /// First Acquire: map shared info into a hole page, mask every port, record every
    /// processor's `vcpu_info`.
    pub fn acquire(&self) -> Result<(), NtStatus> {
        let hole = self.hole.lock().clone();
        let run = crate::hole::allocate_run(self.api, self.os, hole.as_deref(), 1)?;
        let Some(&pfn) = run.pfns.first() else {
            return Err(STATUS_UNSUCCESSFUL);
        };
        let mapped = self.map(pfn).and_then(|shared| {
            Self::mask_all(&shared);
            let cpus = self.cpus(&shared)?;
            Ok((shared, cpus))
        });
        match mapped {
            Ok((shared, cpus)) => {
                *self.state.lock() = Some(Mapped {
                    pfn,
                    run,
                    shared,
                    cpus,
                });
                Ok(())
            }
            Err(e) => {
                error!(self.api, "SHARED_INFO: acquire failed ({e:08X})");
                let _ = crate::hole::free_run(self.api, self.os, hole.as_deref(), run);
                Err(e)
            }
        }
    }

    /// Last Release: unmap and give the hole page back.
    pub fn release(&self) {
        let mapped = self.state.lock().take();
        if let Some(m) = mapped {
            drop(m.shared);
            let hole = self.hole.lock().clone();
            if let Err(e) = crate::hole::free_run(self.api, self.os, hole.as_deref(), m.run) {
                error!(self.api, "SHARED_INFO: hole page not returned ({e:08X})");
            }
        }
    }

    /// True while mapped.
    pub fn is_mapped(&self) -> bool {
        self.state.lock().is_some()
    }

    /// EARLY suspend callback: re-map (the new host gave us a fresh page) and mask all.
    pub fn suspend_early(&self) {
        let mut state = self.state.lock();
        if let Some(m) = state.as_mut() {
            match self.add_to_physmap(m.pfn) {
                Ok(()) => Self::mask_all(&m.shared),
                Err(e) => error!(self.api, "SHARED_INFO: re-map failed ({e:08X})"),
            }
            for c in &mut m.cpus {
                c.port = 0;
            }
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut Mapped) -> R) -> Option<R> {
        self.state.lock().as_mut().map(f)
    }

    /// `UpcallSupported` (V4): whether `cpu` has a registered `vcpu_info` (per-CPU upcall
    /// vectors need one; the legacy slot only serves the callback via on CPU 0).
    pub fn upcall_supported(&self, cpu: u32) -> bool {
        self.with(|m| m.cpus.get(cpu as usize).is_some_and(|c| c.registered))
            .unwrap_or(false)
    }

    /// The vCPU id of `cpu`, if known.
    pub fn vcpu_id(&self, cpu: u32) -> Option<u32> {
        self.with(|m| m.cpus.get(cpu as usize).and_then(|c| c.vcpu_id))
            .flatten()
    }

    /// `UpcallPending`: atomically take `evtchn_upcall_pending` of `cpu`'s vcpu_info.
    pub fn upcall_pending(&self, cpu: u32) -> bool {
        self.with(|m| {
            m.cpus
                .get(cpu as usize)
                .and_then(|c| c.vcpu_info.as_ref())
                .and_then(|v| v.swap_u8(UPCALL_PENDING, 0).ok())
                .is_some_and(|p| p != 0)
        })
        .unwrap_or(false)
    }

    /// `EvtchnPoll`: take `cpu`'s pending selectors and call `event(port)` for every
    /// pending, unmasked port, starting from the CPU's saved position; returns whether any
    /// call returned true. Pending bits are left for `Ack`.
    ///
    /// The ports of one selector word at a time are gathered under the HIGH_LEVEL lock into
    /// a fixed batch (no allocation there) and delivered outside it (the callback re-enters
    /// Ack/Mask); the saved position moves on with each word, so the walk resumes where
    /// the previous batch stopped.
    pub fn evtchn_poll(&self, cpu: u32, event: &mut dyn FnMut(u32) -> bool) -> bool {
        let mut selectors: Option<u64> = None;
        let mut done = false;
        loop {
            let mut batch = [0u32; PORTS_PER_SELECTOR as usize];
            let mut gathered = 0usize;
            let more = self
                .with(|m| {
                    let Some(c) = m.cpus.get_mut(cpu as usize) else {
                        return false;
                    };
                    let Some(v) = c.vcpu_info.as_ref() else {
                        return false;
                    };
                    let selectors = selectors.get_or_insert_with(|| {
                        let taken = v.swap_u64(PENDING_SEL, 0).unwrap_or(0);
                        rmb();
                        taken
                    });
                    let mut port = c.port % MAX_PORTS;
                    while *selectors != 0 && gathered == 0 {
                        let selector = port / PORTS_PER_SELECTOR;
                        let mut bit = port % PORTS_PER_SELECTOR;
                        if *selectors & (1u64 << selector) != 0 {
                            let offset = selector as usize * 8;
                            let pending = m.shared.load_u64(PENDING + offset).unwrap_or(0);
                            let masked = m.shared.load_u64(MASK + offset).unwrap_or(u64::MAX);
                            let mut live = pending & !masked;
                            while live != 0 && bit < PORTS_PER_SELECTOR {
                                if live & (1u64 << bit) != 0 {
                                    if let Some(slot) = batch.get_mut(gathered) {
                                        *slot = selector * PORTS_PER_SELECTOR + bit;
                                        gathered += 1;
                                    }
                                    live &= !(1u64 << bit);
                                }
                                bit += 1;
                            }
                            if live == 0 {
                                *selectors &= !(1u64 << selector);
                            }
                        }
                        port = (selector + 1) * PORTS_PER_SELECTOR % MAX_PORTS;
                    }
                    c.port = port;
                    *selectors != 0
                })
                .unwrap_or(false);
            for &port in batch.iter().take(gathered) {
                done |= event(port);
            }
            if !more {
                return done;
            }
        }
    }

    fn bit_op(
        &self,
        port: u32,
        op: impl FnOnce(&SharedMemory, usize, u64) -> Option<bool>,
    ) -> bool {
        if port >= MAX_PORTS {
            return false;
        }
        let (offset, bit) = word(port);
        self.with(|m| op(&m.shared, offset, bit))
            .flatten()
            .unwrap_or(false)
    }

    /// `EvtchnAck`: clear the pending bit.
    pub fn evtchn_ack(&self, port: u32) {
        self.bit_op(port, |s, o, b| {
            s.and_u64(PENDING + o, !b).ok().map(|_| true)
        });
    }

    /// `EvtchnMask`: set the mask bit.
    pub fn evtchn_mask(&self, port: u32) {
        self.bit_op(port, |s, o, b| s.or_u64(MASK + o, b).ok().map(|_| true));
    }

    /// True when `port` is masked.
    pub fn evtchn_is_masked(&self, port: u32) -> bool {
        self.bit_op(port, |s, o, b| {
            s.load_u64(MASK + o).ok().map(|w| w & b != 0)
        })
    }

    /// True when `port` is pending.
    pub fn evtchn_is_pending(&self, port: u32) -> bool {
        self.bit_op(port, |s, o, b| {
            s.load_u64(PENDING + o).ok().map(|w| w & b != 0)
        })
    }

    /// `EvtchnUnmask`: clear the mask bit; true when this cleared it and the port is
    /// pending (the caller must handle that event).
    pub fn evtchn_unmask(&self, port: u32) -> bool {
        self.bit_op(port, |s, o, b| {
            let old = s.and_u64(MASK + o, !b).ok()?;
            if old & b == 0 {
                return Some(false);
            }
            Some(s.load_u64(PENDING + o).ok()? & b != 0)
        })
    }

    /// Upstream's `SharedInfoDebugCallback`: the page's frame, each processor's vCPU and
    /// `vcpu_info` (registered, legacy slot or none) and — unless `crashing` (the page is the
    /// hypervisor's memory) — its upcall pending flag, upcall mask and pending selector
    /// word, a count of pending and masked ports, and every 64-port word that has a pending
    /// or an unmasked port (upstream prints all 64 pairs; the all-masked, idle ones are left
    /// out). Never spins on the lock and does not allocate.
    pub fn debug_dump(&self, crashing: bool, out: &mut dyn FnMut(&str)) {
        use crate::log::{Dumped, Line};
        crate::log::dump_lines(out, "SHARED_INFO: busy", |i| {
            let Some(state) = self.state.try_lock() else {
                return Dumped::Busy;
            };
            let Some(m) = state.as_ref() else {
                return match i {
                    0 => Dumped::Line(Line::from_fmt(format_args!("SHARED_INFO: not mapped"))),
                    _ => Dumped::Done,
                };
            };
            let cpus = m.cpus.len();
            let words = |selector: usize| {
                let offset = selector * 8;
                (
                    m.shared.load_u64(PENDING + offset).unwrap_or(0),
                    m.shared.load_u64(MASK + offset).unwrap_or(u64::MAX),
                )
            };
            let line = match i {
                0 => format_args!("SHARED_INFO: pfn {:#x} cpus {cpus}", m.pfn).into(),
                i if i <= cpus => {
                    let Some(c) = m.cpus.get(i - 1) else {
                        return Dumped::Skip;
                    };
                    let kind = match (&c.vcpu_info, c.registered) {
                        (None, _) => "none",
                        (Some(_), true) => "registered",
                        (Some(_), false) => "legacy",
                    };
                    let mut line = Line::from_fmt(format_args!(
                        "SHARED_INFO: cpu {} vcpu {:?} vcpu_info {kind}",
                        i - 1,
                        c.vcpu_id
                    ));
                    if let (false, Some(v)) = (crashing, c.vcpu_info.as_ref()) {
                        let _ = core::fmt::Write::write_fmt(
                            &mut line,
                            format_args!(
                                " upcall pending {} mask {} selectors {:016x}",
                                v.load_u8(UPCALL_PENDING).unwrap_or(0),
                                v.load_u8(UPCALL_MASK).unwrap_or(0),
                                v.load_u64(PENDING_SEL).unwrap_or(0)
                            ),
                        );
                    }
                    return Dumped::Line(line);
                }
                _ if crashing => return Dumped::Done,
                i if i == cpus + 1 => {
                    let (mut pending, mut masked, mut live) = (0, 0, 0);
                    for selector in 0..SELECTORS as usize {
                        let (p, k) = words(selector);
                        pending += p.count_ones();
                        masked += k.count_ones();
                        live += (p & !k).count_ones();
                    }
                    format_args!(
                        "SHARED_INFO: ports pending {pending} masked {masked} pending and unmasked {live} (of {MAX_PORTS})"
                    )
                    .into()
                }
                i => {
                    let selector = i - cpus - 2;
                    if selector >= SELECTORS as usize {
                        return Dumped::Done;
                    }
                    let (pending, mask) = words(selector);
                    if pending == 0 && mask == u64::MAX {
                        return Dumped::Skip;
                    }
                    let first = selector as u32 * PORTS_PER_SELECTOR;
                    format_args!(
                        "SHARED_INFO: ports {first:04x}-{:04x} pending {pending:016x} masked {mask:016x}",
                        first + PORTS_PER_SELECTOR - 1
                    )
                    .into()
                }
            };
            Dumped::Line(line)
        });
    }

    /// `GetTime`: wall-clock time in 100 ns units since 1601 and whether it is local time
    /// (`!RealTimeIsUniversal`). Reads are retried until the wall-clock and time-info
    /// versions are even and unchanged.
    pub fn get_time(&self) -> Option<(i64, bool)> {
        let cpu = 0usize;
        let ns = self.with(|m| {
            let v = m.cpus.get(cpu).and_then(|c| c.vcpu_info.as_ref())?;
            for _ in 0..1_000_000 {
                let wc = m.shared.load_u32(WC_VERSION).ok()?;
                let tv = v.load_u32(T_VERSION).ok()?;
                rmb();
                let sec = u64::from(m.shared.load_u32(WC_SEC).ok()?)
                    | u64::from(m.shared.load_u32(WC_SEC_HI).ok()?) << 32;
                let nsec = u64::from(m.shared.load_u32(WC_NSEC).ok()?);
                let info = VcpuTimeInfo {
                    version: tv,
                    pad0: 0,
                    tsc_timestamp: v.load_u64(T_TSC).ok()?,
                    system_time: v.load_u64(T_SYSTEM).ok()?,
                    tsc_to_system_mul: v.load_u32(T_MUL).ok()?,
                    tsc_shift: v.load_u8(T_SHIFT).ok()? as i8,
                    flags: 0,
                    pad1: [0; 2],
                };
                rmb();
                let stable = wc % 2 == 0
                    && tv % 2 == 0
                    && m.shared.load_u32(WC_VERSION).ok()? == wc
                    && v.load_u32(T_VERSION).ok()? == tv;
                if stable {
                    let system = info.tsc_to_system_time(self.os.read_tsc());
                    return Some((sec, nsec, system));
                }
                core::hint::spin_loop();
            }
            None
        })??;
        let (sec, nsec, system) = ns;
        let total_ns = u128::from(sec) * 1_000_000_000 + u128::from(nsec) + u128::from(system);
        let t = total_ns / 100 + u128::from(EPOCH_1601_TO_1970_SECS) * 10_000_000;
        let local = !self.api.system_real_time_is_universal();
        Some((i64::try_from(t).ok()?, local))
    }
}

#[cfg(test)]
#[path = "shared_info_tests.rs"]
mod tests;
