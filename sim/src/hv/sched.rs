//! `sched_op`: yield, shutdown (with suspend → resume on a "new host" or cancelled),
//! shutdown_code and the domain watchdog; plus the timers that drive Virq::TIMER.

use std::sync::atomic::Ordering;

use super::abi::*;
use super::evtchn::PortState;
use super::memory::Physmap;
use super::{copy_from_guest, Errno, P2m, State};

/// Watchdog timers per domain (a hypervisor limit, `NR_DOMAIN_WATCHDOG_TIMERS`).
pub const NR_DOMAIN_WATCHDOG_TIMERS: usize = 2;

/// What happens to the next `SHUTDOWN_suspend`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SuspendOutcome {
    /// The toolstack saves the domain and restores it (on a new host): the hypercall returns
    /// 0 and everything a restore resets is reset.
    Resume,
    /// The toolstack cancels the suspend: the hypercall returns 1 and nothing changes.
    Cancel,
}

/// A completed suspend, as reported to the suspend hook.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SuspendEvent {
    /// How it ended.
    pub outcome: SuspendOutcome,
    /// Number of suspends so far, this one included.
    pub count: u32,
}

/// Shutdown state of the domain.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShutdownState {
    /// Reason of a (non-suspend) `SCHEDOP_shutdown`, or SHUTDOWN_watchdog on expiry.
    pub reason: Option<ShutdownReason>,
    /// Reason recorded with `SCHEDOP_shutdown_code`.
    pub code: Option<ShutdownReason>,
    /// Number of `SCHEDOP_yield` calls.
    pub yields: u64,
    /// Number of suspends.
    pub suspends: u32,
}

impl State {
    /// Fire due periodic timers (one Virq::TIMER per check, as Xen coalesces missed ticks)
    /// and expired watchdogs.
    pub fn run_timers(&mut self, now: u64) {
        self.update_time(now);
        for v in 0..self.vcpus.len() {
            if let Some((period, next)) = self.vcpus[v].periodic {
                if now >= next {
                    self.vcpus[v].periodic = Some((period, now + period));
                    self.raise_virq(v as u32, Virq::TIMER);
                }
            }
        }
        for w in self.watchdogs.iter_mut() {
            if let Some(deadline) = *w {
                if now >= deadline {
                    *w = None;
                    self.shutdown.reason.get_or_insert(ShutdownReason::WATCHDOG);
                }
            }
        }
    }

    /// Publish system time in every vCPU's `vcpu_time_info` under the version protocol.
    /// The simulated TSC runs at 1 GHz (`Hypervisor::tsc`), so the scale is the identity:
    /// `((tsc - tsc_timestamp) << 1) * 2^31 >> 32`.
    pub fn update_time(&mut self, now: u64) {
        for v in 0..self.vcpus.len() as u32 {
            let Some((mfn, off)) = self.vcpu_info_loc(v) else {
                continue;
            };
            let t = off + VCPU_INFO_TIME;
            let ver = self
                .mem
                .atomic_u32(mfn, t + core::mem::offset_of!(VcpuTimeInfo, version));
            let odd = ver.load(Ordering::SeqCst) | 1;
            ver.store(odd, Ordering::SeqCst);
            self.mem
                .atomic_u64(mfn, t + core::mem::offset_of!(VcpuTimeInfo, tsc_timestamp))
                .store(now, Ordering::SeqCst);
            self.mem
                .atomic_u64(mfn, t + core::mem::offset_of!(VcpuTimeInfo, system_time))
                .store(now, Ordering::SeqCst);
            self.mem
                .atomic_u32(
                    mfn,
                    t + core::mem::offset_of!(VcpuTimeInfo, tsc_to_system_mul),
                )
                .store(1 << 31, Ordering::SeqCst);
            self.mem
                .atomic_u8(mfn, t + core::mem::offset_of!(VcpuTimeInfo, tsc_shift))
                .store(1, Ordering::SeqCst);
            ver.store(odd.wrapping_add(1), Ordering::SeqCst);
        }
    }

    pub(super) fn sched_op(
        &mut self,
        physmap: &Physmap,
        args: [usize; 5],
        now: u64,
    ) -> Result<isize, Errno> {
        let cmd = SchedOp(args[0] as u32);
        match cmd {
            SchedOp::YIELD | SchedOp::BLOCK => {
                self.shutdown.yields += 1;
                Ok(0)
            }
            SchedOp::SHUTDOWN => {
                // SAFETY: the caller passes its sched_shutdown.
                let a: SchedShutdown = unsafe { copy_from_guest(args[1])? };
                if a.reason == ShutdownReason::SUSPEND {
                    self.shutdown.suspends += 1;
                    let outcome = self.suspend_outcome;
                    if outcome == SuspendOutcome::Resume {
                        self.restore_on_new_host(physmap);
                    }
                    self.suspend_event = Some(SuspendEvent {
                        outcome,
                        count: self.shutdown.suspends,
                    });
                    return Ok(if outcome == SuspendOutcome::Cancel {
                        1
                    } else {
                        0
                    });
                }
                self.shutdown.reason = Some(a.reason);
                Ok(0)
            }
            SchedOp::SHUTDOWN_CODE => {
                // SAFETY: the caller passes its sched_shutdown.
                let a: SchedShutdown = unsafe { copy_from_guest(args[1])? };
                self.shutdown.code = Some(a.reason);
                Ok(0)
            }
            SchedOp::WATCHDOG => {
                // SAFETY: the caller passes its sched_watchdog.
                let a: SchedWatchdog = unsafe { copy_from_guest(args[1])? };
                let deadline = now + a.timeout as u64 * 1_000_000_000;
                if a.id == 0 {
                    return match self.watchdogs.iter().position(|w| w.is_none()) {
                        Some(i) => {
                            self.watchdogs[i] = Some(deadline);
                            Ok(i as isize + 1)
                        }
                        None => Err(Errno::ENOSPC),
                    };
                }
                let slot = self
                    .watchdogs
                    .get_mut(a.id as usize - 1)
                    .filter(|w| w.is_some())
                    .ok_or(Errno::EINVAL)?;
                *slot = if a.timeout == 0 { None } else { Some(deadline) };
                Ok(0)
            }
            SchedOp::REMOTE_SHUTDOWN => Err(Errno::EPERM),
            _ => Err(Errno::ENOSYS),
        }
    }

    /// What a save on this host and a restore on a new one leave behind: shared info and
    /// grant frames unmapped (and fresh), every event channel closed except the store and
    /// console channels, which the toolstack re-creates (new guest ports, new HVM params),
    /// FIFO ABI gone, vcpu_info registrations, upcall vectors, timers and watchdogs dropped.
    pub(super) fn restore_on_new_host(&mut self, physmap: &Physmap) {
        let me = self.cfg.domid;
        // Event channels.
        let _ = self.evtchn_reset(me);
        if let Ok(d) = self.evtchn.dom_mut(me) {
            d.virqs.clear();
        }
        // Shared info: unmapped, fresh contents.
        for (i, e) in self.p2m.clone().iter().enumerate() {
            if *e == P2m::SharedInfo {
                self.clear_gfn(physmap, i as u64);
            }
        }
        self.mem.zero(self.shared_info_mfn);
        // Grant table: unmapped, fresh frame 0 with the reserved entries re-seeded.
        self.gnttab_reset(physmap);
        // vCPUs.
        for v in self.vcpus.iter_mut() {
            *v = super::Vcpu::default();
        }
        self.watchdogs = [None; NR_DOMAIN_WATCHDOG_TIMERS];
        // Only the parameters the toolstack saves travel with the domain (libxc's
        // write_hvm_params list); the callback IRQ is not among them, so a resumed guest
        // must set it again, as it must its upcall vectors.
        let saved = [
            HvmParam::STORE_PFN,
            HvmParam::IOREQ_PFN,
            HvmParam::BUFIOREQ_PFN,
            HvmParam::PAGING_RING_PFN,
            HvmParam::MONITOR_RING_PFN,
            HvmParam::SHARING_RING_PFN,
            HvmParam::VM86_TSS_SIZED,
            HvmParam::CONSOLE_PFN,
            HvmParam::ACPI_IOPORTS_LOCATION,
            HvmParam::VIRIDIAN,
            HvmParam::IDENT_PT,
            HvmParam::VM_GENERATION_ID_ADDR,
            HvmParam::IOREQ_SERVER_PFN,
            HvmParam::NR_IOREQ_SERVER_PAGES,
            HvmParam::X87_FIP_WIDTH,
            HvmParam::MCA_CAP,
        ];
        for (i, p) in self.params.iter_mut().enumerate() {
            if !saved.iter().any(|s| s.0 as usize == i) {
                *p = 0;
            }
        }
        // The toolstack on the new host: grant seeds, then store and console channels.
        let (store_gfn, console_gfn) = (
            self.params[HvmParam::STORE_PFN.0 as usize],
            self.params[HvmParam::CONSOLE_PFN.0 as usize],
        );
        if self.gnttab_grow(1).is_ok() {
            self.gnttab_write_entry(
                GNTTAB_RESERVED_CONSOLE,
                GrantEntryFlags::PERMIT_ACCESS.bits(),
                0,
                console_gfn as u32,
            );
            self.gnttab_write_entry(
                GNTTAB_RESERVED_XENSTORE,
                GrantEntryFlags::PERMIT_ACCESS.bits(),
                0,
                store_gfn as u32,
            );
        }
        for (i, param) in [HvmParam::STORE_EVTCHN.0, HvmParam::CONSOLE_EVTCHN.0]
            .into_iter()
            .enumerate()
        {
            let backend_port = self.ring_backends[i];
            if backend_port == 0 {
                continue;
            }
            let Ok(port) = self.evtchn_alloc_unbound(me, 0) else {
                continue;
            };
            if let Ok(d) = self.evtchn.dom_mut(0) {
                if let Some(p) = d.ports.get_mut(backend_port as usize) {
                    p.state = PortState::Unbound { remote: me };
                }
            }
            // dom0 binds the new port; its own end keeps its number.
            let bound = self
                .evtchn
                .dom_mut(me)
                .map(|d| {
                    d.ports[port as usize].state = PortState::Interdomain {
                        remote: 0,
                        remote_port: backend_port,
                    }
                })
                .is_ok();
            if bound {
                if let Ok(d) = self.evtchn.dom_mut(0) {
                    d.ports[backend_port as usize].state = PortState::Interdomain {
                        remote: me,
                        remote_port: port,
                    };
                }
                self.params[param as usize] = port as u64;
            }
        }
    }
}
