//! The FDO runtime on the simulated machine: bring-up and teardown order, both memory-hole
//! modes, the event-channel ABI and upcall choices, suspend and migration through
//! `control/shutdown`, the balloon under a moving target, hibernate, the watchdog and
//! child reconciliation.

use super::*;
use crate::harness;
use crate::harness::leak;
use alloc::sync::Arc;
use common::os::{Os, RegValue};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use xen_include::api::XenApi;
use xen_include::status::STATUS_UNSUCCESSFUL;
use xen_include::xen::hvm::params::HvmParam;
use xen_include::xen::xen::Virq;
use xen_sim::guest::HKLM;
use xen_sim::hv::SuspendOutcome;
use xen_sim::toolstack::{BackendMode, DeviceClass, ShutdownRequest};

use crate::balloon::{Pass, StartupWait};
use crate::evtchn::{EvtchnCallback, Kind};
use crate::suspend::{Phase, SuspendCallback, TriggerOutcome};

pub(super) const SCAN_EVENT: usize = 0x7100;
const SUSPEND_EVENT: usize = 0x7200;
const BALLOON_EVENT: usize = 0x7300;

pub(super) struct Options {
    pub(super) vcpus: u32,
    pub(super) register_vcpu_info: bool,
    pub(super) params: Vec<(&'static str, RegValue)>,
    pub(super) start_options: &'static str,
    pub(super) active: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            vcpus: 2,
            register_vcpu_info: true,
            params: Vec::new(),
            start_options: "",
            active: true,
        }
    }
}

/// The simulated machine (`harness::World`, dereferenced) with one FDO created on it.
pub(super) struct World {
    machine: harness::World,
    pub(super) kernel: &'static harness::SimKernel,
    pub(super) fdo: &'static Fdo,
}

impl core::ops::Deref for World {
    type Target = harness::World;
    fn deref(&self) -> &harness::World {
        &self.machine
    }
}

impl World {
    fn resources(&self) -> FdoResources {
        let hole = self.m.layout().hole.clone();
        FdoResources {
            upcall_vector: Some(0xF3),
            callback_via: 28,
            memory_bar: Some((hole.start, hole.end - hole.start)),
        }
    }

    fn up(&self) {
        self.fdo.d3_to_d0(self.resources()).unwrap();
    }

    pub(super) fn s(&self) -> &'static Subsystems {
        self.fdo.subsystems().unwrap()
    }

    fn read(&self, path: &str) -> Option<String> {
        self.s()
            .store
            .read(None, None, path.as_bytes())
            .ok()
            .map(|v| String::from_utf8(v).unwrap())
    }
}

/// A machine with the balloon nodes, a vbd and `ForceUnplug\DISKS=1`, and an FDO on it.
pub(super) fn boot(o: Options) -> World {
    let machine = harness::World::boot(harness::Setup {
        vcpus: o.vcpus,
        register_vcpu_info: o.register_vcpu_info,
        parameters: o.params,
        registry: vec![(
            format!(r"{}\ForceUnplug", xen::registry::SERVICE_PATH),
            "DISKS",
            RegValue::Dword(1),
        )],
        start_options: o.start_options,
        balloon_nodes: true,
        ..harness::Setup::default()
    });
    let kernel = leak(harness::SimKernel::default());
    let fdo = machine.create_fdo(o.active, kernel);
    World {
        machine,
        kernel,
        fdo,
    }
}

const INITIALISE: [&str; 11] = [
    "initialise debug",
    "initialise suspend",
    "initialise shared_info",
    "initialise evtchn",
    "initialise range_set",
    "initialise cache",
    "initialise gnttab",
    "initialise store",
    "initialise console",
    "initialise unplug",
    "initialise balloon",
];

const ACQUIRE: [&str; 10] = [
    "acquire debug",
    "acquire suspend",
    "acquire range_set",
    "acquire hole",
    "acquire shared_info",
    "acquire evtchn",
    "acquire gnttab",
    "acquire store",
    "acquire console",
    "acquire balloon",
];

const RELEASE: [&str; 10] = [
    "release balloon",
    "release console",
    "release store",
    "release gnttab",
    "release evtchn",
    "release shared_info",
    "release hole",
    "release range_set",
    "release suspend",
    "release debug",
];

#[test]
fn the_active_fdo_brings_everything_up_in_order_and_down_in_reverse() {
    let w = boot(Options::default());
    let pages_before = w.m.hv.domain_pages().0;
    assert_eq!(w.fdo.trace(), INITIALISE);
    // Creation recorded the EMULATED subscription.
    let subscription =
        format!(r"{HKLM}\SYSTEM\CurrentControlSet\Services\XENFILT\Interfaces\XENBUS");
    assert_eq!(
        w.m.guest.registry().query_value(&subscription, "EMULATED"),
        Ok(RegValue::Dword(3))
    );
    // Nothing touched before D0.
    assert!(!w.s().shared_info.is_mapped());
    w.up();
    assert!(w.fdo.is_d0());
    let mut expected: Vec<&str> = INITIALISE.to_vec();
    expected.extend(ACQUIRE);
    assert_eq!(w.fdo.trace(), expected);
    assert!(w.s().shared_info.is_mapped());
    assert_eq!(w.s().gnttab.frames(), 1);
    assert!(w.s().store.connected());
    assert!(w.s().console.console().connected());
    // The D0 work: drivers/<n>, feature keys, watches (each fires once at registration).
    let record = w.read("drivers/0").unwrap();
    let (ma, mi, mc, bn) = xenbus_rs::version();
    assert_eq!(record, format!("XS0001 XENBUS {ma}.{mi}.{mc}.{bn}"));
    assert_eq!(w.fdo.driver_slot(), Some(0));
    assert_eq!(w.read("control/feature-suspend").as_deref(), Some("1"));
    assert_eq!(w.read("control/feature-balloon").as_deref(), Some("1"));
    for event in [SCAN_EVENT, SUSPEND_EVENT, BALLOON_EVENT] {
        assert_eq!(w.m.guest.event_sets(event), 1, "watch event {event:#x}");
    }
    // Hole pages (shared info + grant frame 0) came out of the domain's reservation.
    assert_eq!(w.m.hv.domain_pages().0, pages_before - 2);
    // Subsystem resume callbacks plus the FDO's LATE one.
    assert_eq!(w.s().suspend.registered(), 8);
    // EVTCHN's delivery DPCs, one per processor, destroyed at D3.
    let dpcs = w.m.guest.live_dpcs();
    assert!(dpcs >= 1, "EVTCHN's delivery DPCs");

    w.fdo.d0_to_d3();
    assert!(!w.fdo.is_d0());
    expected.extend(RELEASE);
    assert_eq!(w.fdo.trace(), expected);
    assert_eq!(w.read_after_teardown("drivers/0"), None);
    assert!(!w.s().shared_info.is_mapped());
    assert_eq!(w.s().gnttab.frames(), 0);
    assert!(!w.s().store.connected());
    assert_eq!(w.s().evtchn.open_channels(), 0);
    assert_eq!(w.m.guest.live_dpcs(), 0, "EVTCHN's DPCs destroyed");
    assert_eq!(w.s().suspend.registered(), 0);
    assert_eq!(w.m.hv.domain_pages().0, pages_before, "holes repopulated");
    assert!(w.m.guest.violations().is_empty());

    // Back up again works, then destroy leaves D0 and clears the active record.
    w.up();
    assert_eq!(
        w.read("drivers/0").as_deref().map(|r| r.contains("XENBUS")),
        Some(true)
    );
    w.fdo.destroy();
    assert!(!w.fdo.is_d0());
    assert_eq!(w.fdo.trace().last(), Some(&"destroy"));
    assert_eq!(
        crate::active::XenApiActive::new(w.xen).active_device_id(),
        None
    );
}

impl World {
    /// Read through a fresh toolstack client (the FDO's store is disconnected).
    fn read_after_teardown(&self, path: &str) -> Option<String> {
        let home = format!("/local/domain/{}/{path}", self.domid);
        self.ts
            .lock()
            .unwrap()
            .client()
            .read(0, &home)
            .ok()
            .map(|v| String::from_utf8(v).unwrap())
    }
}

#[test]
fn an_inactive_fdo_brings_up_nothing() {
    let w = boot(Options {
        active: false,
        ..Options::default()
    });
    let pages = w.m.hv.domain_pages().0;
    assert!(w.fdo.subsystems().is_none());
    w.fdo.d3_to_d0(w.resources()).unwrap();
    assert!(w.fdo.is_d0());
    assert!(w.fdo.trace().is_empty());
    assert_eq!(w.m.hv.domain_pages().0, pages);
    assert_eq!(w.m.hv.param(HvmParam::CALLBACK_IRQ), 0);
    assert_ne!(
        w.read_after_teardown("control/feature-suspend").as_deref(),
        Some("1")
    );
    assert_eq!(w.fdo.scan_step(), Reconciled::default());
    assert_eq!(w.fdo.suspend_step(), SuspendStep::Idle);
    assert_eq!(w.fdo.balloon_step(), None);
    w.fdo.d0_to_d3();
    w.fdo.destroy();
}

#[test]
fn use_memory_hole_1_takes_frames_from_the_reservation_and_0_from_the_pci_bar() {
    for hole in [1u32, 0] {
        let w = boot(Options {
            params: vec![("UseMemoryHole", RegValue::Dword(hole))],
            ..Options::default()
        });
        assert_eq!(w.fdo.config().use_memory_hole, hole == 1);
        let bar = w.m.layout().hole.clone();
        let pages = w.m.hv.domain_pages().0;
        w.up();
        let bar_used = (bar.start..bar.end)
            .filter(|g| w.m.hv.p2m(*g) != xen_sim::hv::P2m::Invalid)
            .count();
        if hole == 1 {
            assert_eq!(w.m.hv.domain_pages().0, pages - 2);
            assert_eq!(bar_used, 0);
        } else {
            assert_eq!(w.m.hv.domain_pages().0, pages, "no RAM given back");
            assert_eq!(bar_used, 2, "shared info and grant frame 0 in the BAR");
            assert_ne!(w.m.hv.p2m(bar.start), xen_sim::hv::P2m::Invalid);
        }
        // Both modes carry real traffic: store, an event and a grant.
        exercise(&w);
        w.fdo.d0_to_d3();
        assert_eq!(w.m.hv.domain_pages().0, pages);
    }
}

#[test]
fn use_evtchn_fifo_abi_selects_fifo_or_two_level_and_upcall_selects_vectors() {
    let fifo = boot(Options::default());
    fifo.up();
    assert!(fifo.s().evtchn.fifo_active());
    assert!(fifo.m.hv.evtchn_fifo_active());
    assert_eq!(fifo.m.hv.upcall_vector(0), 0xF3);
    assert_eq!(fifo.m.hv.upcall_vector(1), 0xF3);
    assert_eq!(fifo.m.hv.param(HvmParam::CALLBACK_IRQ), 28);
    assert!(fifo.read("name").is_some());

    let two_level = boot(Options {
        params: vec![
            ("UseEvtchnFifoAbi", RegValue::Dword(0)),
            ("UseEvtchnUpcall", RegValue::Dword(0)),
        ],
        ..Options::default()
    });
    two_level.up();
    assert!(!two_level.s().evtchn.fifo_active());
    assert!(!two_level.m.hv.evtchn_fifo_active());
    assert_eq!(two_level.m.hv.upcall_vector(0), 0, "callback via only");
    assert_eq!(two_level.m.hv.upcall_vector(1), 0);
    assert_eq!(two_level.m.hv.param(HvmParam::CALLBACK_IRQ), 28);
    assert!(two_level.read("name").is_some());
    two_level.fdo.d0_to_d3();
    assert_eq!(two_level.m.hv.param(HvmParam::CALLBACK_IRQ), 0);
    fifo.fdo.d0_to_d3();
    assert!(!fifo.m.hv.evtchn_fifo_active());
}

#[test]
fn the_watchdog_is_at_least_10_seconds_and_debug_virq_dumps() {
    let w = boot(Options {
        start_options: "NOEXECUTE=OPTIN XEN:WATCHDOG=3",
        ..Options::default()
    });
    assert_eq!(w.fdo.config().watchdog, Some(10));
    w.up();
    assert_eq!(w.fdo.watchdog_seconds(), Some(10));
    assert!(w.m.hv.raise_virq(0, Virq::TIMER));
    assert!(w.m.hv.raise_virq(1, Virq::TIMER));
    assert!(w.m.hv.raise_virq(0, Virq::DEBUG));
    w.m.hv.deliver_upcalls();
    let (debug, timer) = w.fdo.virq_counts();
    assert_eq!((debug, timer), (1, 2));
    w.fdo.d0_to_d3();
    assert_eq!(w.fdo.watchdog_seconds(), None);

    let hex = boot(Options {
        start_options: "XEN:WATCHDOG=0x14",
        ..Options::default()
    });
    assert_eq!(hex.fdo.config().watchdog, Some(20));
    let off = boot(Options::default());
    off.up();
    assert_eq!(off.fdo.watchdog_seconds(), None);
}

/// A child driver's suspend callback, recording into the FDO's trace order.
struct ChildCallback(&'static Mutex<Vec<String>>, &'static Fdo, &'static str);

impl SuspendCallback for ChildCallback {
    fn call(&self) {
        // The test's record, not the driver's: runs at HIGH_LEVEL in the early phase.
        let _host = common::irql::model::HostSide::enter();
        let len = self.1.trace().len();
        self.0
            .lock()
            .unwrap()
            .push(format!("{} after {len}", self.2));
    }
}

struct Count(AtomicU32);
impl EvtchnCallback for Count {
    fn call(&self) -> bool {
        self.0.fetch_add(1, Ordering::SeqCst);
        true
    }
}

/// Store, event channels and grants all work (after a resume too).
fn exercise(w: &World) {
    assert!(w.read("name").is_some());
    w.s()
        .store
        .write(None, None, b"data/probe", b"alive")
        .unwrap();
    assert_eq!(w.read("data/probe").as_deref(), Some("alive"));
    let count: Arc<Count> = Arc::new(Count(AtomicU32::new(0)));
    let ch = w
        .s()
        .evtchn
        .open(Kind::Unbound { remote_domain: 0 }, false, count.clone())
        .unwrap();
    w.s().evtchn.unmask(ch, false, false);
    let port = w.s().evtchn.channel(ch).unwrap().port();
    let me = w.m.hv.domid();
    let dom0 = w.m.hv.backend_bind_interdomain(0, me, port).unwrap();
    w.m.hv.backend_send(0, dom0).unwrap();
    w.m.hv.deliver_upcalls();
    assert_eq!(count.0.load(Ordering::SeqCst), 1, "event delivered");
    w.s().evtchn.close(ch);
    let page = w.m.guest.alloc_page().unwrap();
    let cache = w.s().gnttab.create_cache(0, 0).unwrap();
    let entry = w.s().gnttab.permit(cache, 0, page.pfn, false).unwrap();
    let gref = w.s().gnttab.reference(entry).unwrap();
    let (handle, _) = w.m.hv.backend_map_grant(0, gref, false).unwrap();
    w.m.hv.backend_unmap_grant(0, handle).unwrap();
    w.s().gnttab.revoke(entry).unwrap();
    w.s().gnttab.destroy_cache(cache).unwrap();
    w.m.guest.free_page(page);
}

pub(super) fn suspend_through_control_shutdown(w: &World, outcome: SuspendOutcome) -> SuspendStep {
    let sets = w.m.guest.event_sets(SUSPEND_EVENT);
    w.ts.lock()
        .unwrap()
        .request_shutdown(w.domid, ShutdownRequest::Suspend)
        .unwrap();
    assert_eq!(
        w.m.guest.event_sets(SUSPEND_EVENT),
        sets + 1,
        "the watch woke the suspend thread"
    );
    w.m.hv.set_suspend_outcome(outcome);
    w.fdo.suspend_step()
}

const RESUME: [&str; 8] = [
    "early evtchn",
    "early shared_info",
    "early gnttab",
    "early store",
    "late evtchn",
    "late store",
    "late console",
    "late fdo",
];

#[test]
fn a_suspend_through_control_shutdown_runs_early_then_late_callbacks_and_everything_works_after() {
    let w = boot(Options::default());
    w.up();
    exercise(&w);
    // A child taking and dropping GNTTAB and SHARED_INFO leaves the FDO's in place.
    w.s().gnttab_provider.acquire().unwrap();
    w.s().gnttab_provider.release();
    assert_eq!(w.s().shared_info_provider.acquire(), 0);
    w.s().shared_info_provider.release();
    assert_eq!(w.s().gnttab.frames(), 1);
    assert!(w.s().shared_info.is_mapped());
    let log: &'static Mutex<Vec<String>> = leak(Mutex::new(Vec::new()));
    for (phase, name) in [(Phase::Early, "child early"), (Phase::Late, "child late")] {
        w.s()
            .suspend
            .register(phase, Arc::new(ChildCallback(log, w.fdo, name)))
            .unwrap();
    }
    // Other requests are ignored.
    w.ts.lock()
        .unwrap()
        .request_shutdown(w.domid, ShutdownRequest::Reboot)
        .unwrap();
    assert_eq!(w.fdo.suspend_step(), SuspendStep::Idle);
    let start = w.fdo.trace().len();
    let old_port = w.xen.hvm_get_param(HvmParam::STORE_EVTCHN.0).unwrap();
    let balloon_wakeups = w.m.guest.event_sets(BALLOON_EVENT);
    let step = suspend_through_control_shutdown(&w, SuspendOutcome::Resume);
    assert_eq!(step, SuspendStep::Triggered(TriggerOutcome::Resumed));
    assert_eq!(&w.fdo.trace()[start..], RESUME);
    // Children's callbacks ran after the subsystems' of the same phase.
    assert_eq!(
        *log.lock().unwrap(),
        vec![
            format!("child early after {}", start + 4),
            format!("child late after {}", start + 8)
        ]
    );
    assert_eq!(w.read("control/shutdown").as_deref(), Some(""));
    assert!(
        w.m.guest.event_sets(BALLOON_EVENT) > balloon_wakeups,
        "leaving the mutex wakes the balloon thread"
    );
    let new_port = w.xen.hvm_get_param(HvmParam::STORE_EVTCHN.0).unwrap();
    assert!(
        w.s().evtchn.open_channels() >= 1 && new_port == old_port,
        "the store channel was re-opened on the new host's port"
    );
    exercise(&w);
    // The LATE FDO callback re-did the D0 work: the record and the watches are back. (As
    // upstream, `control/feature-suspend` is removed and written again; a toolstack that
    // keeps `control` read-only for the guest refuses the re-creation.)
    assert!(w.read("drivers/0").is_some());
    let sets = w.m.guest.event_sets(SCAN_EVENT);
    w.ts.lock()
        .unwrap()
        .add_device(
            w.domid,
            DeviceClass::Vif {
                mac: "00:16:3e:00:00:01".into(),
            },
            0,
            BackendMode::Normal,
        )
        .unwrap();
    assert!(
        w.m.guest.event_sets(SCAN_EVENT) > sets,
        "device watch re-added"
    );
    // A cancelled suspend runs no callback.
    let len = w.fdo.trace().len();
    let step = suspend_through_control_shutdown(&w, SuspendOutcome::Cancel);
    assert!(matches!(
        step,
        SuspendStep::Triggered(TriggerOutcome::NotSuspended(_))
    ));
    assert_eq!(w.fdo.trace().len(), len);
    exercise(&w);
    w.fdo.d0_to_d3();
    assert!(w.m.guest.violations().is_empty());
}

#[test]
fn a_migration_keeps_store_evtchn_gnttab_and_the_console_working() {
    let w = boot(Options {
        params: vec![("UseEvtchnFifoAbi", RegValue::Dword(1))],
        ..Options::default()
    });
    w.up();
    let wakeup = 0x7400;
    w.s().console.console().wakeup_add(wakeup).unwrap();
    let count = w.s().suspend.count();
    let unplugs = w.m.hv.platform().unplug_writes().len();
    for _ in 0..2 {
        let step = suspend_through_control_shutdown(&w, SuspendOutcome::Resume);
        assert_eq!(step, SuspendStep::Triggered(TriggerOutcome::Resumed));
        assert!(
            w.s().evtchn.fifo_active(),
            "FIFO chosen again on the new host"
        );
        exercise(&w);
    }
    assert!(w.s().suspend.count() > count);
    assert!(
        w.m.hv.platform().unplug_writes().len() > unplugs,
        "the unplug re-issued early on CPU 0"
    );
    // The console channel was re-opened: a console event sets the wakeup.
    let sets = w.m.guest.event_sets(wakeup);
    let console = w.m.console();
    w.m.hv.backend_send(0, console.backend_port).unwrap();
    w.m.hv.deliver_upcalls();
    assert!(w.m.guest.event_sets(wakeup) > sets, "console wakeup");
    w.fdo.d0_to_d3();
}

#[test]
fn the_balloon_follows_a_moving_target_across_a_suspend() {
    let w = boot(Options::default());
    w.up();
    // Before its first pass START would wait: warn after 10 s, bug check after 1200 s.
    assert_eq!(w.fdo.balloon_startup_wait(9), StartupWait::Wait);
    assert_eq!(w.fdo.balloon_startup_wait(10), StartupWait::Warn);
    assert_eq!(w.fdo.balloon_startup_wait(1200), StartupWait::BugCheck);
    assert_eq!(
        *w.kernel.bug_checks.lock().unwrap(),
        vec![FdoBugCheck::BalloonInflationTimeout]
    );
    assert_eq!(
        w.fdo.balloon_step(),
        Some(Pass::Idle),
        "target = static-max"
    );
    assert_eq!(w.fdo.balloon_startup_wait(11), StartupWait::Done);
    let balloon = w.s().balloon.as_ref().unwrap().balloon;
    let static_max_kib = 2 * 1024 * 1024 - 8 * 1024;
    let pages = w.m.hv.domain_pages().0;
    let sets = w.m.guest.event_sets(BALLOON_EVENT);
    w.ts.lock()
        .unwrap()
        .set_balloon_target(w.domid, static_max_kib - 64 * 4)
        .unwrap();
    assert!(
        w.m.guest.event_sets(BALLOON_EVENT) > sets,
        "memory/target watch"
    );
    assert_eq!(w.fdo.balloon_step(), Some(Pass::Adjusted));
    assert_eq!(balloon.size(), 64);
    assert_eq!(w.m.hv.domain_pages().0, pages - 64);
    assert_eq!(w.read("control/balloon-active").as_deref(), Some("0"));
    assert_eq!(
        w.fdo.query_stop(),
        Err(STATUS_UNSUCCESSFUL),
        "veto while inflated"
    );
    // Suspend in the middle: while the balloon holds the mutex the suspend waits, and
    // the other way round.
    w.fdo.exclusion.store(true, Ordering::SeqCst);
    assert_eq!(
        suspend_through_control_shutdown(&w, SuspendOutcome::Resume),
        SuspendStep::Busy
    );
    w.fdo.exclusion.store(false, Ordering::SeqCst);
    assert_eq!(
        w.fdo.suspend_step(),
        SuspendStep::Triggered(TriggerOutcome::Resumed)
    );
    w.ts.lock()
        .unwrap()
        .set_balloon_target(w.domid, static_max_kib - 16 * 4)
        .unwrap();
    w.fdo.exclusion.store(true, Ordering::SeqCst);
    assert_eq!(w.fdo.balloon_step(), Some(Pass::Busy));
    w.fdo.exclusion.store(false, Ordering::SeqCst);
    assert_eq!(w.fdo.balloon_step(), Some(Pass::Adjusted));
    assert_eq!(balloon.size(), 16);
    w.ts.lock()
        .unwrap()
        .set_balloon_target(w.domid, static_max_kib)
        .unwrap();
    assert_eq!(w.fdo.balloon_step(), Some(Pass::Adjusted));
    assert_eq!(balloon.size(), 0);
    assert_eq!(w.m.hv.domain_pages().0, pages);
    assert_eq!(w.fdo.query_stop(), Ok(()));
    w.fdo.d0_to_d3();
    assert!(w.m.guest.violations().is_empty());
}

#[test]
fn balloon_off_start_option_means_no_balloon_watch_or_feature() {
    let w = boot(Options {
        start_options: "XEN:BALLOON=OFF",
        ..Options::default()
    });
    assert!(!w.fdo.config().balloon);
    assert!(!w.fdo.trace().contains(&"initialise balloon"));
    w.up();
    assert!(w.s().balloon.is_none());
    assert_ne!(w.read("control/feature-balloon").as_deref(), Some("1"));
    assert_eq!(w.m.guest.event_sets(BALLOON_EVENT), 0);
    assert_eq!(w.fdo.balloon_step(), None);
    assert_eq!(w.fdo.balloon_startup_wait(5000), StartupWait::Done);
}

#[test]
fn hibernate_exit_reissues_the_unplug_and_entry_checks_references() {
    let w = boot(Options::default());
    w.up();
    w.fdo.d0_to_d3();
    assert_eq!(w.fdo.s3_to_s4(), Ok(()));
    let writes = w.m.hv.platform().unplug_writes().len();
    w.fdo.s4_to_s3();
    assert!(w.m.hv.platform().unplug_writes().len() > writes);
    let n = w.fdo.trace().len();
    assert_eq!(
        &w.fdo.trace()[n - 2..],
        ["hibernate entry", "hibernate exit"]
    );
    w.up();
    assert!(w.read("name").is_some());
    // A child still holding CONSOLE at hibernate is a bug check.
    w.s().console.acquire().unwrap();
    w.fdo.d0_to_d3();
    assert_eq!(
        w.fdo.s3_to_s4(),
        Err(FdoBugCheck::ReferencesAtHibernate("CONSOLE"))
    );
    assert_eq!(
        *w.kernel.bug_checks.lock().unwrap(),
        vec![FdoBugCheck::ReferencesAtHibernate("CONSOLE")]
    );
    w.s().console.release();
}

#[test]
fn children_follow_device_and_synthetic_classes() {
    let w = boot(Options {
        params: vec![("SyntheticClasses", RegValue::MultiSz(vec!["IFACE".into()]))],
        ..Options::default()
    });
    w.up();
    let r = w.fdo.scan_step();
    assert_eq!(r.created, ["VBD", "IFACE"]);
    assert_eq!(w.kernel.invalidations.load(Ordering::SeqCst), 1);
    assert_eq!(w.fdo.bus_relations(), ["VBD", "IFACE"]);
    assert_eq!(w.fdo.scan_step(), Reconciled::default(), "nothing changed");
    assert_eq!(w.kernel.invalidations.load(Ordering::SeqCst), 1);
    let sets = w.m.guest.event_sets(SCAN_EVENT);
    w.ts.lock()
        .unwrap()
        .add_device(
            w.domid,
            DeviceClass::Vif {
                mac: "00:16:3e:00:00:02".into(),
            },
            0,
            BackendMode::Normal,
        )
        .unwrap();
    assert!(w.m.guest.event_sets(SCAN_EVENT) > sets);
    assert_eq!(w.fdo.scan_step().created, ["VIF"]);
    assert_eq!(w.fdo.bus_relations(), ["VBD", "IFACE", "VIF"]);
    let class_dir = format!("/local/domain/{}/device/vif", w.domid);
    w.ts.lock().unwrap().client().rm(0, &class_dir).unwrap();
    let r = w.fdo.scan_step();
    assert_eq!(r.missing, ["VIF"]);
    assert_eq!(w.kernel.invalidations.load(Ordering::SeqCst), 3);
    assert_eq!(w.fdo.bus_relations(), ["VBD", "IFACE"]);
    assert!(w.fdo.child_removed("VIF"));
    assert_eq!(w.fdo.children().len(), 2);

    let off = boot(Options {
        params: vec![("Enumerate", RegValue::Dword(0))],
        ..Options::default()
    });
    off.up();
    assert_eq!(off.fdo.scan_step(), Reconciled::default());
    assert!(off.fdo.bus_relations().is_empty());
}

#[test]
fn a_suspend_without_registered_vcpu_info_or_vectors() {
    let w = boot(Options {
        vcpus: 2,
        register_vcpu_info: false,
        ..Options::default()
    });
    w.fdo
        .d3_to_d0(FdoResources {
            upcall_vector: None,
            callback_via: 28,
            memory_bar: None,
        })
        .unwrap();
    exercise(&w);
    let step = suspend_through_control_shutdown(&w, SuspendOutcome::Resume);
    assert_eq!(step, SuspendStep::Triggered(TriggerOutcome::Resumed));
    exercise(&w);
    w.fdo.d0_to_d3();
}

#[test]
fn a_failed_bring_up_releases_what_was_acquired() {
    use xen_include::xen::grant_table::GnttabOp;
    use xen_include::xen::xen::HypercallCode;
    use xen_sim::hv::{Errno, HypercallFault};
    let w = boot(Options::default());
    let pages = w.m.hv.domain_pages().0;
    w.m.hv.inject_hypercall_fault(HypercallFault {
        op: HypercallCode::GRANT_TABLE_OP.0,
        sub: Some(GnttabOp::QUERY_SIZE.0),
        nth: 1,
        count: 1,
        errno: Errno::ENOSYS,
    });
    assert!(w.fdo.d3_to_d0(w.resources()).is_err());
    assert!(!w.fdo.is_d0());
    let trace = w.fdo.trace();
    assert!(trace.ends_with(&[
        "release evtchn",
        "release shared_info",
        "release hole",
        "release range_set",
        "release suspend",
        "release debug",
    ]));
    assert!(!trace.contains(&"acquire gnttab"));
    assert!(!w.s().shared_info.is_mapped());
    assert_eq!(w.s().suspend.registered(), 0);
    assert_eq!(w.m.hv.domain_pages().0, pages);
    assert_eq!(w.m.hv.param(HvmParam::CALLBACK_IRQ), 0);
    // The next START succeeds.
    w.up();
    assert!(w.read("name").is_some());
}

#[test]
fn console_log_level_mirrors_log_lines_to_the_pv_console() {
    use xen_include::api::LOG_LEVEL_WARNING;
    let w = boot(Options {
        params: vec![(
            "ConsoleLogLevel",
            RegValue::MultiSz(vec!["WARNING".into(), "ERROR".into()]),
        )],
        ..Options::default()
    });
    let ring = crate::shared::map_pfn(&*w.m.guest, w.m.console().gfn).unwrap();
    let produced = |ring: &crate::shared::SharedMemory| ring.load_u32(OUT_PROD).unwrap();
    w.up();
    let before = produced(&ring);
    w.xen.log(LOG_LEVEL_WARNING, "XENBUS|FDO: to the console\n");
    let after = produced(&ring);
    assert!(after > before, "the warning reached the console ring");
    let text = console_output(&ring, before, after);
    assert!(text.contains("to the console\r\n"), "{text:?}");
    // After D0->D3 the disposition is gone.
    w.fdo.d0_to_d3();
    let now = produced(&ring);
    w.xen.log(LOG_LEVEL_WARNING, "XENBUS|FDO: not any more\n");
    assert_eq!(produced(&ring), now);
}

/// A machine in D0 whose INFO lines go to the console ring and whose xenbus.sys image is
/// known (DEBUG only runs callbacks inside a loaded module).
fn up_with_info_on_the_console() -> World {
    let w = boot(Options {
        params: vec![("ConsoleLogLevel", RegValue::MultiSz(vec!["INFO".into()]))],
        ..Options::default()
    });
    let address = crate::interface::debug::driver_callback_address();
    w.xen.image_loaded(&common::os::ModuleInfo {
        base: address & !0xFFF,
        size: 0x1_0000,
        name: "xenbus.sys".into(),
    });
    w.up();
    w
}

#[test]
fn virq_debug_runs_the_fdo_debug_callback() {
    let w = up_with_info_on_the_console();
    assert_eq!(w.s().debug.debug().registered(), 1);
    let ring = crate::shared::map_pfn(&*w.m.guest, w.m.console().gfn).unwrap();
    let before = ring.load_u32(OUT_PROD).unwrap();
    assert!(w.m.hv.raise_virq(0, Virq::DEBUG));
    w.m.hv.deliver_upcalls();
    assert_eq!(w.fdo.virq_counts().0, 1);
    assert_eq!(w.fdo.debug_dumps(), 1);
    let after = ring.load_u32(OUT_PROD).unwrap();
    let text = console_output(&ring, before, after);
    assert!(
        text.contains("xenbus|FDO: VIRQ_DEBUG 1 VIRQ_TIMER 0"),
        "{text:?}"
    );
    // The store's state follows (upstream's STORE debug callback).
    assert!(text.contains("xenbus|FDO: STORE: req_cons = "), "{text:?}");
    assert!(
        text.contains("STORE: submitted 0 pending 0 abandoned 0 unresponsive false"),
        "{text:?}"
    );
    assert!(text.contains("STORE: watch ") && text.contains(" device active true"));
    // And the event channels: the ABI, the store's FIXED channel, VIRQ_DEBUG on CPU 0.
    assert!(text.contains("xenbus|FDO: EVTCHN: ABI "), "{text:?}");
    let store_port = w.m.hv.param(xen_sim::hv::abi::HvmParam::STORE_EVTCHN);
    assert!(
        text.contains(&format!(
            "EVTCHN: port {store_port} Fixed {{ port: {store_port} }} cpu 0"
        )),
        "{text:?}"
    );
    assert!(
        text.contains("Virq { index: 1, cpu: 0 } cpu 0 count 1 active true"),
        "{text:?}"
    );
    w.fdo.d0_to_d3();
    assert_eq!(w.s().debug.debug().registered(), 0);
}

/// `out_prod` of the console ring.
const OUT_PROD: usize = 3084;

/// The console output ring's bytes from index `from` to `to` (wrapping at 2048).
fn console_output(ring: &crate::shared::SharedMemory, from: u32, to: u32) -> String {
    const OUT: usize = 1024;
    let bytes: Vec<u8> = (from..to)
        .map(|i| {
            let mut b = [0u8];
            ring.read_bytes(OUT + (i as usize % 2048), &mut b).unwrap();
            b[0]
        })
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// `VIRQ_DEBUG` through the real path (hypervisor → upcall → EVTCHN → DEBUG → the FDO's
/// callback) dumps all five subsystems upstream gives a debug callback: STORE, EVTCHN,
/// SUSPEND, SHARED_INFO and GNTTAB, each line under the FDO's prefix.
#[test]
fn virq_debug_dumps_store_evtchn_suspend_shared_info_and_gnttab() {
    let w = up_with_info_on_the_console();
    // Something for GNTTAB to show: a named cache with an entry (SUSPEND shows the FDO's
    // own resume callbacks, registered at D0).
    let g = w.s().gnttab;
    let cache = g.create_named_cache(b"xenvbd", 0, 0).unwrap();
    let entry = g.permit(cache, 0, 0x1234, true).unwrap();
    let ring = crate::shared::map_pfn(&*w.m.guest, w.m.console().gfn).unwrap();
    let before = ring.load_u32(OUT_PROD).unwrap();
    assert!(w.m.hv.raise_virq(0, Virq::DEBUG));
    w.m.hv.deliver_upcalls();
    assert_eq!(w.fdo.debug_dumps(), 1);
    let after = ring.load_u32(OUT_PROD).unwrap();
    assert!(after - before < 2048, "the dump fits the console ring");
    let text = console_output(&ring, before, after);
    let lines: Vec<&str> = text.lines().collect();
    let has = |prefix: &str| {
        lines
            .iter()
            .any(|l| l.contains(&format!("xenbus|FDO: {prefix}")))
    };
    for expected in [
        "VIRQ_DEBUG 1 VIRQ_TIMER 0",
        "STORE: req_cons = ",
        "EVTCHN: ABI ",
        "SUSPEND: count 0 resume status 00000000",
        "SUSPEND: EARLY xenbus FDO EvtchnEarly",
        "SUSPEND: EARLY xenbus FDO SharedInfoEarly",
        "SUSPEND: LATE xenbus FDO StoreLate",
        "SHARED_INFO: pfn 0x",
        "SHARED_INFO: cpu 0 vcpu Some(0) vcpu_info registered upcall pending ",
        "SHARED_INFO: cpu 1 vcpu Some(1) vcpu_info registered upcall pending ",
        "SHARED_INFO: ports pending ",
        "GNTTAB: frames 1 of ",
        "GNTTAB: references granted 1 free ",
        "GNTTAB: cache \"xenvbd\" reserved 0 outstanding 1 cap 0",
    ] {
        assert!(has(expected), "{expected:?} missing from {lines:#?}");
    }
    g.revoke(entry).unwrap();
    g.destroy_cache(cache).unwrap();
    w.fdo.d0_to_d3();
}
