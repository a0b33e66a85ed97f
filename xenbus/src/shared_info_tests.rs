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
