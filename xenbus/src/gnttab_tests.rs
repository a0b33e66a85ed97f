//! GNTTAB on the simulated machine (spec §10 items 20–21).

use super::*;
use crate::sim::Sim;
use xen_include::xen::sched::ShutdownReason;
use xen_sim::hv::SuspendOutcome;

fn setup() -> (Sim, &'static Gnttab) {
    let s = Sim::new(1);
    let g: &'static Gnttab = Box::leak(Box::new(Gnttab::new(s.xen, &*s.m.guest)));
    g.acquire().unwrap();
    (s, g)
}

#[test]
fn references_below_32_are_never_handed_out_and_the_table_grows() {
    let (s, g) = setup();
    assert_eq!(g.frames(), 1);
    let cache = g.create_cache(0, 0).unwrap();
    let mut refs = Vec::new();
    let mut entries = Vec::new();
    for i in 0..600u64 {
        let e = g.permit(cache, 0, 0x1000 + i, i % 2 == 0).unwrap();
        refs.push(g.reference(e).unwrap());
        entries.push(e);
    }
    assert!(refs.iter().all(|r| *r >= RESERVED_ENTRIES));
    let mut sorted = refs.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 600);
    assert_eq!(g.frames(), 2, "grew by one frame");
    // Published exactly: flags, domid, frame.
    let (flags, domid, frame) = s.m.hv.grant_entry(refs[0]).unwrap();
    assert_eq!((domid, frame), (0, 0x1000));
    assert_eq!(
        flags,
        (GrantEntryFlags::PERMIT_ACCESS | GrantEntryFlags::READONLY).bits()
    );
    let (flags, _, frame) = s.m.hv.grant_entry(refs[599]).unwrap();
    assert_eq!(
        (flags, frame),
        (GrantEntryFlags::PERMIT_ACCESS.bits(), 0x1000 + 599)
    );
    for e in entries {
        g.revoke(e).unwrap();
    }
    assert_eq!(s.m.hv.grant_entry(refs[0]).unwrap(), (0, 0, 0), "zeroed");
    g.destroy_cache(cache).unwrap();
}

#[test]
fn revoke_refuses_while_the_backend_has_it_mapped_and_never_recycles_it() {
    let (s, g) = setup();
    let cache = g.create_cache(0, 0).unwrap();
    let page = s.m.guest.alloc_page().unwrap();
    let e = g.permit(cache, 0, page.pfn, false).unwrap();
    let r = g.reference(e).unwrap();
    let (handle, _) = s.m.hv.backend_map_grant(0, r, false).unwrap();
    let yields = s.m.hv.shutdown_state().yields;
    assert_eq!(g.revoke(e), Err(STATUS_UNSUCCESSFUL));
    assert!(s.m.hv.shutdown_state().yields >= yields + u64::from(REVOKE_ATTEMPTS) - 1);
    let (flags, _, _) = s.m.hv.grant_entry(r).unwrap();
    assert_ne!(
        flags & GrantEntryFlags::PERMIT_ACCESS.bits(),
        0,
        "still granted"
    );
    let other = g.permit(cache, 0, 0x2001, false).unwrap();
    assert_ne!(g.reference(other), Some(r), "busy reference not recycled");
    s.m.hv.backend_unmap_grant(0, handle).unwrap();
    g.revoke(e).unwrap();
    g.revoke(other).unwrap();
    assert_eq!(g.revoke(e), Err(STATUS_INVALID_PARAMETER), "stale handle");
}

#[test]
fn caches_honour_reservation_and_cap() {
    let (_s, g) = setup();
    assert_eq!(g.create_cache(4, 3), Err(STATUS_INVALID_PARAMETER));
    let c = g.create_cache(2, 3).unwrap();
    let e: Vec<_> = (0..3).map(|i| g.permit(c, 0, i, false).unwrap()).collect();
    assert_eq!(g.permit(c, 0, 9, false), Err(STATUS_INSUFFICIENT_RESOURCES));
    assert_eq!(
        g.destroy_cache(c),
        Err(STATUS_UNSUCCESSFUL),
        "entries outstanding"
    );
    for x in e {
        g.revoke(x).unwrap();
    }
    g.permit(c, 0, 9, false)
        .map(|x| g.revoke(x))
        .unwrap()
        .unwrap();
    g.destroy_cache(c).unwrap();
}

#[test]
fn query_reference_finds_the_console_and_store_rings() {
    let (s, g) = setup();
    let layout = s.m.layout();
    assert_eq!(g.query_reference(1).unwrap(), (layout.store_gfn, false));
    assert_eq!(g.query_reference(0).unwrap(), (layout.console_gfn, false));
    assert_eq!(
        g.query_reference(ENTRIES_PER_FRAME * 8),
        Err(STATUS_INVALID_PARAMETER)
    );
}

#[test]
fn foreign_pages_map_consecutively_unwind_and_unmap() {
    let (s, g) = setup();
    let (a, _) = s.m.hv.backend_grant_page(0, false).unwrap();
    let (b, _) = s.m.hv.backend_grant_page(0, true).unwrap();
    let address = g.map_foreign_pages(0, &[a, b], true);
    // The simulated guest hands out consecutive frames, as a contiguous allocation would.
    let address = address.unwrap();
    let maps = s.m.hv.guest_foreign_mappings();
    assert_eq!(maps.len(), 2);
    assert!(maps.contains(&(address >> 12, 0, a)));
    assert!(maps.contains(&((address >> 12) + 1, 0, b)));
    g.unmap_foreign_pages(address).unwrap();
    assert!(s.m.hv.guest_foreign_mappings().is_empty());
    assert_eq!(
        g.unmap_foreign_pages(address),
        Err(STATUS_INVALID_PARAMETER)
    );
    // A bad reference in the middle: nothing stays mapped.
    assert!(g.map_foreign_pages(0, &[a, 0xFFFF_0000], false).is_err());
    assert!(s.m.hv.guest_foreign_mappings().is_empty());
    assert!(s.m.guest.violations().is_empty());
}

#[test]
fn grant_frames_are_remapped_after_resume() {
    let (s, g) = setup();
    let cache = g.create_cache(0, 0).unwrap();
    s.m.hv.set_suspend_outcome(SuspendOutcome::Resume);
    s.xen.sched_shutdown(ShutdownReason::SUSPEND.0).unwrap();
    g.suspend_early();
    let e = g.permit(cache, 0, 0x3000, false).unwrap();
    let r = g.reference(e).unwrap();
    assert_eq!(
        s.m.hv.grant_entry(r).unwrap().2,
        0x3000,
        "Xen sees the new entry"
    );
    g.revoke(e).unwrap();
}

/// The HIGH_LEVEL early phase never spins on the state lock (a DISPATCH_LEVEL lock, whose
/// holder would be captured below it): found held, the re-map is skipped with an ERROR.
#[test]
fn suspend_early_never_spins_on_a_held_state_lock() {
    let (s, g) = setup();
    {
        let _held = g.state.lock();
        common::irql::model::raised(common::irql::HIGH_LEVEL, || g.suspend_early());
    }
    let platform = s.m.hv.platform();
    let log = platform.log_lines();
    assert!(
        log.iter().any(|l| l.contains("GNTTAB: busy at resume")),
        "{log:?}"
    );
}

#[test]
fn the_table_stops_growing_at_query_size_maximum() {
    let s = Sim::with_grant_frames(2);
    let g: &'static Gnttab = Box::leak(Box::new(Gnttab::new(s.xen, &*s.m.guest)));
    g.acquire().unwrap();
    let cache = g.create_cache(0, 0).unwrap();
    // Frame 0 gives 512 - 32 references, frame 1 gives 512.
    let total = 2 * ENTRIES_PER_FRAME - RESERVED_ENTRIES;
    let entries: Vec<_> = (0..total)
        .map(|i| g.permit(cache, 0, u64::from(i), true).unwrap())
        .collect();
    assert_eq!(g.frames(), 2);
    assert_eq!(
        g.permit(cache, 0, 1, true),
        Err(STATUS_INSUFFICIENT_RESOURCES)
    );
    g.revoke(entries[7]).unwrap();
    assert!(
        g.permit(cache, 0, 1, true).is_ok(),
        "a revoked reference is reused"
    );
    assert!(s.m.guest.violations().is_empty());
}

fn dump(g: &Gnttab) -> Vec<String> {
    let mut lines = Vec::new();
    g.debug_dump(&mut |l| lines.push(l.to_string()));
    lines
}

/// The GNTTAB debug dump: frames mapped of the maximum, references granted and free,
/// foreign mappings, each cache by name; "busy" instead of spinning on a held lock.
#[test]
fn the_debug_dump_shows_frames_references_and_caches() {
    let (s, g) = setup();
    let (_, max) = s.xen.grant_table_query_size().unwrap();
    let first_pfn = g.state.lock().as_ref().unwrap().frames[0].pfn;
    let cache = g.create_named_cache(b"xenvif|tx", 2, 4).unwrap();
    let other = g.create_cache(0, 0).unwrap();
    let entries: Vec<_> = (0..3)
        .map(|i| g.permit(cache, 0, 0x1000 + i, false).unwrap())
        .collect();
    let backend = g.permit(other, 0, 0x2000, false).unwrap();
    let (foreign, _) = s.m.hv.backend_grant_page(0, false).unwrap();
    let address = g.map_foreign_pages(0, &[foreign], true).unwrap();
    let lines = dump(g);
    let free = ENTRIES_PER_FRAME - RESERVED_ENTRIES - 4;
    assert_eq!(
        lines,
        [
            format!("GNTTAB: frames 1 of {max} (first pfn {first_pfn:#x})"),
            format!(
                "GNTTAB: references granted 4 free {free} caches 2 foreign mappings 1 (1 pages)"
            ),
            "GNTTAB: cache \"xenvif|tx\" reserved 0 outstanding 3 cap 4".to_string(),
            "GNTTAB: cache \"\" reserved 0 outstanding 1 cap 0".to_string(),
        ]
    );
    let held = g.state.try_lock().unwrap();
    assert_eq!(dump(g), ["GNTTAB: busy"]);
    drop(held);
    g.unmap_foreign_pages(address).unwrap();
    for e in entries.into_iter().chain([backend]) {
        g.revoke(e).unwrap();
    }
    g.destroy_cache(cache).unwrap();
    g.destroy_cache(other).unwrap();
    g.release();
    assert_eq!(dump(g), ["GNTTAB: not acquired"]);
}
