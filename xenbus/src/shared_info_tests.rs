//! SHARED_INFO on the simulated machine (spec §10 items 13, 28).

use super::*;
use crate::sim::Sim;
use xen_include::xen::sched::ShutdownReason;
use xen_sim::hv::SuspendOutcome;

fn setup(vcpus: u32) -> (Sim, &'static SharedInfo) {
    let s = Sim::new(vcpus);
    let si: &'static SharedInfo = Box::leak(Box::new(SharedInfo::new(s.xen, &*s.m.guest)));
    si.acquire().unwrap();
    (s, si)
}

/// A guest port bound to a fresh dom0 port; returns (guest port, dom0 port).
fn channel(s: &Sim) -> (u32, u32) {
    let guest = s.xen.event_channel_allocate_unbound(0).unwrap();
    let dom0 =
        s.m.hv
            .backend_bind_interdomain(0, s.m.hv.domid(), guest)
            .unwrap();
    // Xen marks a freshly bound inter-domain port pending; start clean.
    (guest, dom0)
}

fn masks(s: &Sim) -> Vec<u64> {
    let b = s.m.hv.shared_info_bytes();
    (0..64)
        .map(|i| u64::from_le_bytes(b[MASK + i * 8..MASK + i * 8 + 8].try_into().unwrap()))
        .collect()
}

#[test]
fn acquire_maps_shared_info_and_masks_every_port() {
    let (s, si) = setup(2);
    assert!(si.is_mapped());
    assert!(masks(&s).iter().all(|w| *w == u64::MAX));
    assert_eq!(si.vcpu_id(1), Some(1));
    si.release();
    assert!(!si.is_mapped());
    assert!(s.m.guest.violations().is_empty());
}

#[test]
fn a_pending_unmasked_port_is_polled_acked_and_masked() {
    let (s, si) = setup(1);
    let (port, dom0) = channel(&s);
    si.evtchn_ack(port);
    assert!(!si.evtchn_unmask(port), "nothing pending");
    s.m.hv.backend_send(0, dom0).unwrap();
    assert!(si.evtchn_is_pending(port));
    assert!(si.upcall_pending(0));
    assert!(!si.upcall_pending(0), "exchanged with 0");
    let mut seen = Vec::new();
    assert!(si.evtchn_poll(0, &mut |p| {
        seen.push(p);
        true
    }));
    assert_eq!(seen, [port]);
    assert!(si.evtchn_is_pending(port), "poll leaves pending bits");
    si.evtchn_ack(port);
    assert!(!si.evtchn_is_pending(port));
    // Masked: delivered bit stays pending but poll skips it; unmask reports it.
    si.evtchn_mask(port);
    s.m.hv.backend_send(0, dom0).unwrap();
    let mut n = 0;
    si.evtchn_poll(0, &mut |_| {
        n += 1;
        true
    });
    assert_eq!(n, 0);
    assert!(si.evtchn_unmask(port), "unmask finds it pending");
    assert!(!si.evtchn_unmask(port), "already unmasked");
    // Out-of-range ports are ignored.
    assert!(!si.evtchn_unmask(MAX_PORTS));
    si.evtchn_ack(MAX_PORTS + 5);
}

#[test]
fn poll_resumes_round_robin_after_the_last_selector() {
    let (s, si) = setup(1);
    let ports: Vec<(u32, u32)> = (0..3).map(|_| channel(&s)).collect();
    for (p, _) in &ports {
        si.evtchn_ack(*p);
        si.evtchn_unmask(*p);
    }
    for (_, d) in &ports {
        s.m.hv.backend_send(0, *d).unwrap();
    }
    let mut seen = Vec::new();
    si.evtchn_poll(0, &mut |p| {
        seen.push(p);
        false
    });
    let mut expected: Vec<u32> = ports.iter().map(|(p, _)| *p).collect();
    expected.sort();
    assert_eq!(seen, expected, "all ports of the selector, lowest first");
    // The saved position moved past the selector: with a pending selector set again the
    // scan starts after it and wraps round to it.
    let cpu_port = si.with(|m| m.cpus[0].port).unwrap();
    assert_eq!(cpu_port, PORTS_PER_SELECTOR);
}

#[test]
fn get_time_matches_the_host_wall_clock() {
    let (s, si) = setup(1);
    s.m.clock.advance(5_000_000_000);
    let (t, local) = si.get_time().unwrap();
    let expected = s.m.guest.system_time();
    assert!((t - expected).abs() < 10_000_000, "{t} vs {expected}");
    assert_eq!(local, !s.xen.system_real_time_is_universal());
}

#[test]
fn early_resume_callback_remaps_and_masks_again() {
    let (s, si) = setup(1);
    let (port, _) = channel(&s);
    si.evtchn_unmask(port);
    s.m.hv.set_suspend_outcome(SuspendOutcome::Resume);
    s.xen.sched_shutdown(ShutdownReason::SUSPEND.0).unwrap();
    si.suspend_early();
    assert!(masks(&s).iter().all(|w| *w == u64::MAX));
    // Events flow again on the fresh page.
    let (port, dom0) = channel(&s);
    si.evtchn_ack(port);
    si.evtchn_unmask(port);
    s.m.hv.backend_send(0, dom0).unwrap();
    let mut seen = Vec::new();
    si.evtchn_poll(0, &mut |p| {
        seen.push(p);
        true
    });
    assert_eq!(seen, [port]);
}

fn dump(si: &SharedInfo, crashing: bool) -> Vec<String> {
    let mut lines = Vec::new();
    si.debug_dump(crashing, &mut |l| {
        // The test's record (the dump may run at HIGH_LEVEL): not checked.
        let _host = common::irql::model::HostSide::enter();
        lines.push(l.to_string())
    });
    lines
}

/// The SHARED_INFO debug dump (upstream's `SharedInfoDebugCallback`): the page, each
/// processor's `vcpu_info` and upcall state, the pending/masked summary and only the
/// 64-port words with something pending or unmasked; nothing of the page when crashing;
/// "busy" instead of spinning on a held lock.
#[test]
fn the_debug_dump_shows_cpus_and_the_pending_and_unmasked_ports() {
    let (s, si) = setup(2);
    let (port, dom0) = channel(&s);
    si.evtchn_ack(port);
    si.evtchn_unmask(port);
    s.m.hv.backend_send(0, dom0).unwrap();
    let pfn = si.with(|m| m.pfn).unwrap();
    let lines = dump(si, false);
    assert_eq!(
        lines[0],
        format!("SHARED_INFO: pfn {pfn:#x} cpus 2"),
        "{lines:?}"
    );
    let kind = |cpu| {
        if si.upcall_supported(cpu) {
            "registered"
        } else {
            "legacy"
        }
    };
    let selector = port / PORTS_PER_SELECTOR;
    assert_eq!(
        lines[1],
        format!(
            "SHARED_INFO: cpu 0 vcpu Some(0) vcpu_info {} upcall pending 1 mask 0 selectors {:016x}",
            kind(0),
            1u64 << selector
        )
    );
    assert!(
        lines[2].starts_with(&format!(
            "SHARED_INFO: cpu 1 vcpu Some(1) vcpu_info {} upcall pending 0",
            kind(1)
        )),
        "{lines:?}"
    );
    assert_eq!(
        lines[3],
        format!(
            "SHARED_INFO: ports pending 1 masked {} pending and unmasked 1 (of {MAX_PORTS})",
            MAX_PORTS - 1
        )
    );
    // Exactly one word is not idle: the port's, pending and unmasked.
    let first = selector * PORTS_PER_SELECTOR;
    let bit = 1u64 << (port % PORTS_PER_SELECTOR);
    assert_eq!(
        lines[4..],
        [format!(
            "SHARED_INFO: ports {first:04x}-{:04x} pending {bit:016x} masked {:016x}",
            first + 63,
            !bit
        )]
    );
    // Crashing: only what is not the hypervisor's memory.
    let lines = dump(si, true);
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(
        lines[1].ends_with(&format!("vcpu_info {}", kind(0))),
        "{lines:?}"
    );
    // A held lock: "busy", not a hang.
    let held = si.state.try_lock().unwrap();
    let busy = dump(si, false);
    // Free the record at PASSIVE_LEVEL (the held HIGH_LEVEL lock allows no heap use).
    drop(held);
    assert_eq!(busy, ["SHARED_INFO: busy"]);
    si.release();
    assert_eq!(dump(si, false), ["SHARED_INFO: not mapped"]);
}
