//! VIRQs of the FDO and the domain watchdog (spec §5.9): `VIRQ_DEBUG` on CPU 0 dumps the
//! debug callbacks; with `XEN:WATCHDOG=<s>` every CPU gets `VIRQ_TIMER` and a periodic
//! timer of s/2 seconds, and the domain watchdog (`SCHEDOP_watchdog`, s seconds) is
//! patted only while every CPU's timer keeps ticking.
//!
//! Rule for a pat (decision where the original is terse): a tick on CPU c with previous
//! count p pats only if every other CPU has ticked at least p times. A CPU whose timer
//! events stop (stalled CPU or lost event delivery) thus stops all pats within one period
//! and the watchdog fires.
#![forbid(unsafe_code)]

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use xen_include::api::XenApi;
use xen_include::status::{NtStatus, STATUS_NO_MEMORY};
use xen_include::xen::xen::Virq;

/// Lowest accepted watchdog timeout (seconds); `fdo::watchdog_seconds` rounds up to it.
pub const WATCHDOG_MINIMUM_SECONDS: u32 = 10;

/// How VIRQ channels are opened (EVTCHN `Open(EVTCHN_VIRQ, .., Cpu)` and `Close`).
pub trait VirqBinder: Sync {
    /// Bind `virq` delivered on processor `cpu`; an opaque channel handle. Binding to a
    /// CPU other than 0 fails when per-CPU upcalls are unavailable.
    fn bind(&self, virq: Virq, cpu: u32) -> Result<usize, NtStatus>;
    /// Close a channel from [`VirqBinder::bind`].
    fn close(&self, channel: usize);
}

/// The watchdog state: per-CPU tick counts.
struct Watchdog {
    seconds: u32,
    counts: Vec<AtomicU64>,
    channels: Vec<usize>,
}

/// The FDO's VIRQs.
pub struct Virqs<'a> {
    api: &'a dyn XenApi,
    binder: &'a dyn VirqBinder,
    debug: Option<usize>,
    watchdog: Option<Watchdog>,
    stopped: core::sync::atomic::AtomicBool,
}

/// What a VIRQ event asks the FDO to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VirqAction {
    /// Run every debug callback (DEBUG `Trigger(NULL)`).
    DumpDebug,
    /// A timer tick; `true` when the watchdog was patted.
    Tick(bool),
    /// Not one of ours.
    Ignored,
}

impl<'a> Virqs<'a> {
    /// Bind `VIRQ_DEBUG` on CPU 0, and with a watchdog of `seconds` (from
    /// `fdo::watchdog_seconds`), `VIRQ_TIMER` and a periodic timer of `seconds / 2` on each
    /// of `processors`, then arm the watchdog. A failure to set up the watchdog is logged
    /// and leaves it off (the rest of the FDO carries on).
    pub fn start(
        api: &'a dyn XenApi,
        binder: &'a dyn VirqBinder,
        processors: u32,
        seconds: Option<u32>,
    ) -> Self {
        let debug = match binder.bind(Virq::DEBUG, 0) {
            Ok(c) => Some(c),
            Err(e) => {
                warning!(api, "VIRQ: cannot bind VIRQ_DEBUG ({:#010x})", e as u32);
                None
            }
        };
        let mut virqs = Self {
            api,
            binder,
            debug,
            watchdog: None,
            stopped: core::sync::atomic::AtomicBool::new(false),
        };
        if let Some(seconds) = seconds {
            let seconds = seconds.max(WATCHDOG_MINIMUM_SECONDS);
            match virqs.start_watchdog(processors, seconds) {
                Ok(w) => {
                    info!(api, "VIRQ: watchdog {} s on {} CPUs", seconds, processors);
                    virqs.watchdog = Some(w);
                }
                Err(e) => warning!(api, "VIRQ: watchdog disabled ({:#010x})", e as u32),
            }
        }
        virqs
    }

    fn start_watchdog(&self, processors: u32, seconds: u32) -> Result<Watchdog, NtStatus> {
        let mut w = Watchdog {
            seconds,
            counts: Vec::new(),
            channels: Vec::new(),
        };
        let n = processors.max(1) as usize;
        w.counts
            .try_reserve_exact(n)
            .map_err(|_| STATUS_NO_MEMORY)?;
        w.channels
            .try_reserve_exact(n)
            .map_err(|_| STATUS_NO_MEMORY)?;
        // Half the timeout, in 100 ns units.
        let period = i64::from(seconds) * 10_000_000 / 2;
        let result = (|| {
            for cpu in 0..processors.max(1) {
                w.counts.push(AtomicU64::new(0));
                w.channels.push(self.binder.bind(Virq::TIMER, cpu)?);
                let vcpu = self.api.system_processor_vcpu_id(cpu)?;
                self.api.vcpu_set_periodic_timer(vcpu, Some(period))?;
            }
            self.api.system_set_watchdog(seconds)
        })();
        if let Err(e) = result {
            self.stop_timers(&w);
            return Err(e);
        }
        Ok(w)
    }

    fn stop_timers(&self, w: &Watchdog) {
        for (cpu, channel) in w.channels.iter().enumerate() {
            if let Ok(vcpu) = self.api.system_processor_vcpu_id(cpu as u32) {
                let _ = self.api.vcpu_set_periodic_timer(vcpu, None);
            }
            self.binder.close(*channel);
        }
    }

    /// Whether the watchdog is running, and its timeout.
    pub fn watchdog_seconds(&self) -> Option<u32> {
        self.watchdog.as_ref().map(|w| w.seconds)
    }

    /// The channel `channel` fired on processor `cpu`.
    pub fn event(&self, channel: usize, cpu: u32) -> VirqAction {
        if self.stopped.load(Ordering::Acquire) {
            return VirqAction::Ignored;
        }
        if self.debug == Some(channel) {
            return VirqAction::DumpDebug;
        }
        match &self.watchdog {
            Some(w) if w.channels.get(cpu as usize) == Some(&channel) => {
                VirqAction::Tick(self.tick(w, cpu))
            }
            _ => VirqAction::Ignored,
        }
    }

    /// A VIRQ fired on processor `cpu` (what the EVTCHN callbacks of
    /// [`EvtchnVirqBinder`] report).
    pub fn fired(&self, virq: Virq, cpu: u32) -> VirqAction {
        if self.stopped.load(Ordering::Acquire) {
            return VirqAction::Ignored;
        }
        match (virq, &self.watchdog) {
            (Virq::DEBUG, _) if cpu == 0 && self.debug.is_some() => VirqAction::DumpDebug,
            (Virq::TIMER, Some(w)) => VirqAction::Tick(self.tick(w, cpu)),
            _ => VirqAction::Ignored,
        }
    }

    fn tick(&self, w: &Watchdog, cpu: u32) -> bool {
        let Some(mine) = w.counts.get(cpu as usize) else {
            return false;
        };
        let previous = mine.fetch_add(1, Ordering::AcqRel);
        let all_progressing = w
            .counts
            .iter()
            .enumerate()
            .filter(|(other, _)| *other != cpu as usize)
            .all(|(_, c)| c.load(Ordering::Acquire) >= previous);
        if all_progressing {
            if let Err(e) = self.api.system_set_watchdog(w.seconds) {
                warning!(self.api, "VIRQ: watchdog pat failed ({:#010x})", e as u32);
                return false;
            }
        }
        all_progressing
    }

    /// Teardown: stop the periodic timers and the watchdog, close every channel; events
    /// arriving afterwards are ignored. Runs once.
    pub fn stop(&self) {
        if self.stopped.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Some(w) = &self.watchdog {
            self.stop_timers(w);
            self.api.system_stop_watchdog();
        }
        if let Some(c) = self.debug {
            self.binder.close(c);
        }
    }
}

/// Where VIRQ events go once EVTCHN delivers them.
pub trait VirqHandler: Send + Sync {
    /// `virq` fired on processor `cpu`.
    fn fired(&self, virq: Virq, cpu: u32);
}

struct VirqEvent {
    handler: &'static dyn VirqHandler,
    virq: Virq,
    cpu: u32,
}

impl crate::evtchn::EvtchnCallback for VirqEvent {
    fn call(&self) -> bool {
        self.handler.fired(self.virq, self.cpu);
        true
    }
}

/// VIRQ channels opened with this driver's EVTCHN (`Open(EVTCHN_VIRQ, .., Cpu)`), each
/// reporting to `handler`. EVTCHN refuses CPUs other than 0 without per-CPU upcalls.
pub struct EvtchnVirqBinder {
    evtchn: &'static crate::evtchn::Evtchn,
    handler: &'static dyn VirqHandler,
}

impl EvtchnVirqBinder {
    /// A binder over `evtchn` reporting to `handler`.
    pub fn new(evtchn: &'static crate::evtchn::Evtchn, handler: &'static dyn VirqHandler) -> Self {
        Self { evtchn, handler }
    }
}

impl VirqBinder for EvtchnVirqBinder {
    fn bind(&self, virq: Virq, cpu: u32) -> Result<usize, NtStatus> {
        let handle = self.evtchn.open(
            crate::evtchn::Kind::Virq { index: virq.0, cpu },
            false,
            alloc::sync::Arc::new(VirqEvent {
                handler: self.handler,
                virq,
                cpu,
            }),
        )?;
        let _ = self.evtchn.unmask(handle, false, true);
        Ok(handle)
    }
    fn close(&self, channel: usize) {
        self.evtchn.close(channel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::unplug::tests::{machine, xen};
    use std::sync::Mutex;
    use xen_include::status::STATUS_NOT_SUPPORTED;
    use xen_include::xen::sched::{SchedOp, ShutdownReason};
    use xen_include::xen::vcpu::VcpuOp;
    use xen_include::xen::xen::HypercallCode;

    /// EVTCHN as far as VIRQs go: channel ids, and CPU ≠ 0 refused without upcalls.
    struct Binder {
        per_cpu_upcalls: bool,
        open: Mutex<Vec<(usize, u32, u32)>>,
        next: Mutex<usize>,
    }
    impl Binder {
        fn new(per_cpu_upcalls: bool) -> Self {
            Self {
                per_cpu_upcalls,
                open: Mutex::default(),
                next: Mutex::new(100),
            }
        }
        fn channel(&self, virq: Virq, cpu: u32) -> usize {
            self.open
                .lock()
                .unwrap()
                .iter()
                .find(|(_, v, c)| *v == virq.0 && *c == cpu)
                .unwrap()
                .0
        }
    }
    impl VirqBinder for Binder {
        fn bind(&self, virq: Virq, cpu: u32) -> Result<usize, NtStatus> {
            if cpu != 0 && !self.per_cpu_upcalls {
                return Err(STATUS_NOT_SUPPORTED);
            }
            let mut n = self.next.lock().unwrap();
            *n += 1;
            self.open.lock().unwrap().push((*n, virq.0, cpu));
            Ok(*n)
        }
        fn close(&self, channel: usize) {
            let mut o = self.open.lock().unwrap();
            let i = o.iter().position(|(c, _, _)| *c == channel).unwrap();
            o.remove(i);
        }
    }

    fn watchdog_calls(m: &xen_sim::machine::Machine) -> u64 {
        m.hv.call_count(HypercallCode::SCHED_OP.0, SchedOp::WATCHDOG.0)
    }

    #[test]
    fn debug_virq_and_watchdog_pats_only_while_all_cpus_tick() {
        let m = machine();
        let x = xen(&m);
        let b = Binder::new(true);
        let v = Virqs::start(&x, &b, 2, Some(3));
        assert_eq!(v.watchdog_seconds(), Some(WATCHDOG_MINIMUM_SECONDS));
        assert_eq!(
            m.hv.call_count(HypercallCode::VCPU_OP.0, VcpuOp::SET_PERIODIC_TIMER.0),
            2
        );
        let debug = b.channel(Virq::DEBUG, 0);
        let t0 = b.channel(Virq::TIMER, 0);
        let t1 = b.channel(Virq::TIMER, 1);
        assert_eq!(v.event(debug, 0), VirqAction::DumpDebug);
        assert_eq!(v.event(12345, 0), VirqAction::Ignored);
        // A timer channel on the wrong CPU is not a tick.
        assert_eq!(v.event(t1, 0), VirqAction::Ignored);
        let armed = watchdog_calls(&m);
        // Both CPUs tick in turn: every tick pats.
        for _ in 0..5 {
            assert_eq!(v.event(t0, 0), VirqAction::Tick(true));
            assert_eq!(v.event(t1, 1), VirqAction::Tick(true));
            m.hv.advance_time(5_000_000_000);
        }
        assert_eq!(watchdog_calls(&m), armed + 10);
        assert_eq!(m.hv.shutdown_state().reason, None);
        // CPU 1 stalls: CPU 0 pats once more (CPU 1 had kept up), then never again,
        // and the domain watchdog fires.
        assert_eq!(v.event(t0, 0), VirqAction::Tick(true));
        for _ in 0..3 {
            m.hv.advance_time(5_000_000_000);
            assert_eq!(v.event(t0, 0), VirqAction::Tick(false));
        }
        assert_eq!(m.hv.shutdown_state().reason, Some(ShutdownReason::WATCHDOG));
        v.stop();
        assert!(b.open.lock().unwrap().is_empty());
        x.unload();
    }

    #[test]
    fn no_watchdog_without_the_option_or_without_per_cpu_upcalls() {
        let m = machine();
        let x = xen(&m);
        let b = Binder::new(true);
        let v = Virqs::start(&x, &b, 2, None);
        assert_eq!(v.watchdog_seconds(), None);
        assert_eq!(b.open.lock().unwrap().len(), 1);
        v.stop();
        assert!(b.open.lock().unwrap().is_empty());

        // VIRQ_TIMER on CPU 1 is refused: the watchdog stays off, CPU 0's timer undone.
        let b = Binder::new(false);
        let v = Virqs::start(&x, &b, 2, Some(30));
        assert_eq!(v.watchdog_seconds(), None);
        assert_eq!(b.open.lock().unwrap().len(), 1, "only VIRQ_DEBUG left");
        assert_eq!(watchdog_calls(&m), 0);
        v.stop();
        // One CPU alone always pats.
        let b = Binder::new(false);
        let v = Virqs::start(&x, &b, 1, Some(30));
        let t0 = b.channel(Virq::TIMER, 0);
        assert_eq!(v.event(t0, 0), VirqAction::Tick(true));
        assert_eq!(v.event(t0, 0), VirqAction::Tick(true));
        v.stop();
        x.unload();
    }

    /// The FDO's VIRQ handler: the Virqs (once started) and what they asked for.
    #[derive(Default)]
    struct Handler {
        virqs: Mutex<Option<&'static Virqs<'static>>>,
        actions: Mutex<Vec<(u32, VirqAction)>>,
    }
    impl VirqHandler for Handler {
        fn fired(&self, virq: Virq, cpu: u32) {
            let v = *self.virqs.lock().unwrap();
            if let Some(v) = v {
                let a = v.fired(virq, cpu);
                self.actions.lock().unwrap().push((cpu, a));
            }
        }
    }

    fn evtchn_rig(upcall_vector: Option<u8>) -> (crate::sim::Sim, &'static crate::evtchn::Evtchn) {
        use crate::evtchn::Evtchn;
        use crate::shared_info::SharedInfo;
        // Per-CPU upcalls need registered vcpu_info areas (default only above 32 CPUs).
        let m: &'static xen_sim::machine::Machine =
            Box::leak(Box::new(crate::unplug::tests::machine()));
        if upcall_vector.is_some() {
            crate::unplug::tests::set(
                m,
                r"SYSTEM\CurrentControlSet\Services\XEN\Parameters",
                "RegisterVcpuInfo",
                common::os::RegValue::Dword(1),
            );
        }
        let xen: &'static xen::driver::Xen<'static> =
            Box::leak(Box::new(crate::unplug::tests::xen(m)));
        let s = crate::sim::Sim { m, xen };
        let si: &'static SharedInfo = Box::leak(Box::new(SharedInfo::new(s.xen, &*s.m.guest)));
        si.acquire().unwrap();
        let e: &'static Evtchn = Box::leak(Box::new(Evtchn::new(s.xen, &*s.m.guest, si)));
        s.m.hv
            .set_upcall_handler(Some(std::sync::Arc::new(move |vcpu| {
                e.interrupt(vcpu);
            })));
        e.enable_interrupts(upcall_vector, 28);
        (s, e)
    }

    #[test]
    fn watchdog_over_evtchn_fed_by_the_simulated_periodic_timers() {
        let (s, e) = evtchn_rig(Some(0xF3));
        let handler: &'static Handler = Box::leak(Box::default());
        let binder: &'static EvtchnVirqBinder =
            Box::leak(Box::new(EvtchnVirqBinder::new(e, handler)));
        let v: &'static Virqs<'static> =
            Box::leak(Box::new(Virqs::start(s.xen, binder, 2, Some(10))));
        *handler.virqs.lock().unwrap() = Some(v);
        assert_eq!(v.watchdog_seconds(), Some(10));
        assert_eq!(e.open_channels(), 3);
        // 5 s periods: both CPUs' VIRQ_TIMERs arrive through EVTCHN and pat the watchdog.
        for _ in 0..6 {
            s.m.hv.advance_time(5_000_000_000);
            s.m.hv.deliver_upcalls();
        }
        let ticks: Vec<(u32, VirqAction)> = handler.actions.lock().unwrap().clone();
        assert!(
            ticks.iter().any(|(c, _)| *c == 0) && ticks.iter().any(|(c, _)| *c == 1),
            "{ticks:?}"
        );
        assert!(ticks.iter().any(|(_, a)| *a == VirqAction::Tick(true)));
        assert_eq!(s.m.hv.shutdown_state().reason, None, "30 s without firing");
        // VIRQ_DEBUG raised by the toolstack on CPU 0 asks for the debug dump.
        s.m.hv.raise_virq(0, Virq::DEBUG);
        s.m.hv.deliver_upcalls();
        assert!(handler
            .actions
            .lock()
            .unwrap()
            .contains(&(0, VirqAction::DumpDebug)));
        // CPU 1 stops taking interrupts: its ticks stop, the pats stop, the watchdog fires.
        s.m.hv.set_interrupts_enabled(1, false);
        for _ in 0..5 {
            s.m.hv.advance_time(5_000_000_000);
            s.m.hv.deliver_upcalls();
        }
        assert_eq!(
            s.m.hv.shutdown_state().reason,
            Some(ShutdownReason::WATCHDOG)
        );
        v.stop();
        v.stop();
        assert_eq!(e.open_channels(), 0);
        assert_eq!(v.fired(Virq::TIMER, 0), VirqAction::Ignored);
    }

    #[test]
    fn without_per_cpu_upcalls_evtchn_refuses_cpu1_and_the_watchdog_stays_off() {
        let (s, e) = evtchn_rig(None);
        let handler: &'static Handler = Box::leak(Box::default());
        let binder: &'static EvtchnVirqBinder =
            Box::leak(Box::new(EvtchnVirqBinder::new(e, handler)));
        let v = Virqs::start(s.xen, binder, 2, Some(10));
        assert_eq!(v.watchdog_seconds(), None);
        assert_eq!(
            e.open_channels(),
            1,
            "VIRQ_DEBUG only; CPU 0's timer channel closed again"
        );
        v.stop();
        assert_eq!(e.open_channels(), 0);
    }
}
