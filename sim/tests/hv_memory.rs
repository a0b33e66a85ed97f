//! Scenario tests: memory_op and the physmap (shared info and grant frames in the hole,
//! overlaying RAM, ballooning with the domain limit).

/// Heap use above DISPATCH_LEVEL panics, as pool use there bug-checks a real kernel.
#[global_allocator]
static ALLOCATOR: common::irql::model::CheckingAllocator =
    common::irql::model::CheckingAllocator::SYSTEM;

mod hvsupport;

use hvsupport::*;
use xen_include::xen::abi::GuestHandle;
use xen_sim::hv::abi::*;
use xen_sim::hv::P2m;
use xen_sim::machine::Machine;

fn reservation(m: &Machine, cmd: MemoryOp, gfns: &mut [u64]) -> isize {
    let mut r = XenMemoryReservation {
        extent_start: GuestHandle::from_ptr(gfns.as_ptr()),
        nr_extents: gfns.len() as u64,
        extent_order: 0,
        mem_flags: 0,
        domid: DomId::SELF,
    };
    memory(m, cmd, &mut r)
}

#[test]
fn shared_info_appears_at_the_hole_frame_and_moves() {
    let m = Machine::new();
    let hole = m.layout().hole.start;
    assert_eq!(add_to_physmap(&m, MapSpace::SHARED_INFO, 0, hole), 0);
    assert_eq!(m.hv.p2m(hole), P2m::SharedInfo);
    // The guest sees the hypervisor's wall clock through its mapping.
    let va = m.hv.gfn_va(hole);
    // SAFETY: the frame is mapped (shared info).
    let wc_sec = unsafe { std::ptr::read_volatile((va + SHARED_INFO_WC_SEC) as *const u32) };
    assert_eq!(wc_sec, 1_767_225_600);
    // Guest writes (mask bits) are visible to the hypervisor.
    // SAFETY: as above.
    unsafe { std::ptr::write_volatile((va + SHARED_INFO_EVTCHN_MASK) as *mut u64, !0) };
    assert_eq!(m.hv.shared_info_bytes()[SHARED_INFO_EVTCHN_MASK], 0xff);
    // Mapping again elsewhere moves it: the old frame becomes unpopulated.
    assert_eq!(add_to_physmap(&m, MapSpace::SHARED_INFO, 0, hole + 1), 0);
    assert_eq!(m.hv.p2m(hole), P2m::Invalid);
    assert_eq!(m.hv.p2m(hole + 1), P2m::SharedInfo);
    // Bad index and foreign domain are refused.
    assert_eq!(
        add_to_physmap(&m, MapSpace::SHARED_INFO, 1, hole),
        err(Errno::EINVAL)
    );
    let mut a = XenAddToPhysmap {
        domid: DomId(5),
        size: 0,
        space: MapSpace::SHARED_INFO,
        idx: 0,
        gpfn: hole,
    };
    assert_eq!(
        memory(&m, MemoryOp::ADD_TO_PHYSMAP, &mut a),
        err(Errno::EPERM)
    );
}

#[test]
fn overlaying_ram_frees_the_page_and_remove_leaves_a_hole() {
    let m = Machine::new();
    let (tot, _) = m.hv.domain_pages();
    assert_eq!(add_to_physmap(&m, MapSpace::SHARED_INFO, 0, 100), 0);
    assert_eq!(
        m.hv.domain_pages().0,
        tot - 1,
        "the RAM page under shared info was freed"
    );
    let mut r = XenRemoveFromPhysmap {
        domid: DomId::SELF,
        gpfn: 100,
    };
    assert_eq!(memory(&m, MemoryOp::REMOVE_FROM_PHYSMAP, &mut r), 0);
    assert_eq!(m.hv.p2m(100), P2m::Invalid);
    assert_eq!(
        memory(&m, MemoryOp::REMOVE_FROM_PHYSMAP, &mut r),
        err(Errno::ENOENT)
    );
}

#[test]
fn grant_frames_map_up_to_the_limit() {
    let m = Machine::new();
    let hole = m.layout().hole.start;
    assert_eq!(add_to_physmap(&m, MapSpace::GRANT_TABLE, 0, hole), 0);
    // Frame 0 carries the toolstack's reserved entries: 0 = console, 1 = xenstore.
    let va = m.hv.gfn_va(hole);
    // SAFETY: the frame is mapped (grant frame 0); v1 entries are 8 bytes.
    let (flags1, dom1, frame1) = unsafe {
        (
            std::ptr::read_volatile((va + 8) as *const u16),
            std::ptr::read_volatile((va + 10) as *const u16),
            std::ptr::read_volatile((va + 12) as *const u32),
        )
    };
    assert_eq!(flags1, GrantEntryFlags::PERMIT_ACCESS.bits());
    assert_eq!(dom1, 0);
    assert_eq!(frame1 as u64, m.layout().store_gfn);
    assert_eq!(add_to_physmap(&m, MapSpace::GRANT_TABLE, 63, hole + 1), 0);
    assert_eq!(m.hv.p2m(hole + 1), P2m::GrantFrame(63));
    assert_eq!(
        add_to_physmap(&m, MapSpace::GRANT_TABLE, 64, hole + 2),
        err(Errno::EINVAL)
    );
    assert_eq!(
        add_to_physmap(
            &m,
            MapSpace::GRANT_TABLE,
            XENMAPIDX_GRANT_TABLE_STATUS,
            hole + 2
        ),
        err(Errno::EINVAL)
    );
}

#[test]
fn balloon_down_and_up_within_the_domain_limit() {
    let m = Machine::new();
    let (tot, max) = m.hv.domain_pages();
    assert_eq!(tot, max);
    let mut gfns = [10u64, 11, 12];
    assert_eq!(
        reservation(&m, MemoryOp::DECREASE_RESERVATION, &mut gfns),
        3
    );
    assert_eq!(m.hv.domain_pages().0, tot - 3);
    assert_eq!(m.hv.p2m(11), P2m::Invalid);
    // A frame already gone stops the batch at that extent.
    let mut again = [13u64, 11];
    assert_eq!(
        reservation(&m, MemoryOp::DECREASE_RESERVATION, &mut again),
        1
    );
    // Populate back: only 4 pages fit under max_pages.
    let mut back = [10u64, 11, 12, 13, 2_000_000];
    assert_eq!(reservation(&m, MemoryOp::POPULATE_PHYSMAP, &mut back), 4);
    assert_eq!(m.hv.domain_pages().0, tot);
    assert!(m.hv.gfn_is_ram(13));
    // At the limit nothing more can be populated, even into the hole.
    let hole = m.layout().hole.start;
    let mut over = [hole];
    assert_eq!(reservation(&m, MemoryOp::POPULATE_PHYSMAP, &mut over), 0);
    m.hv.set_max_pages(tot + 1);
    assert_eq!(reservation(&m, MemoryOp::POPULATE_PHYSMAP, &mut over), 1);
    // The new page is real, zeroed memory.
    // SAFETY: gfn `hole` is populated RAM now.
    assert_eq!(
        unsafe { std::ptr::read_volatile(m.hv.gfn_va(hole) as *const u64) },
        0
    );
    let mut cur: DomId = DomId::SELF;
    assert_eq!(
        memory(&m, MemoryOp::CURRENT_RESERVATION, &mut cur),
        (tot + 1) as isize
    );
}
