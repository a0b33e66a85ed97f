//! Scenario tests: grant_table_op v1 — the guest's table, backends mapping and copying the
//! guest's grants (GTF_reading/GTF_writing), and the guest mapping and copying backend pages.

/// Heap use above DISPATCH_LEVEL panics, as pool use there bug-checks a real kernel.
#[global_allocator]
static ALLOCATOR: common::irql::model::CheckingAllocator =
    common::irql::model::CheckingAllocator::SYSTEM;

mod hvsupport;

use std::sync::atomic::Ordering;

use common::os::Os;
use hvsupport::*;
use xen_sim::hv::abi::*;
use xen_sim::hv::P2m;
use xen_sim::machine::Machine;

const PERMIT: u16 = GrantEntryFlags::PERMIT_ACCESS.bits();
const READONLY: u16 = GrantEntryFlags::READONLY.bits();
const READING: u16 = GrantEntryFlags::READING.bits();
const WRITING: u16 = GrantEntryFlags::WRITING.bits();

/// The guest's grant frame 0 mapped at the first hole frame.
fn map_table(m: &Machine) -> GuestPage {
    let gfn = m.layout().hole.start;
    assert_eq!(add_to_physmap(m, MapSpace::GRANT_TABLE, 0, gfn), 0);
    GuestPage::at(m, gfn)
}

/// Grant `gfn` to `dom` in entry `gref` as a frontend does (flags last).
fn grant(t: &GuestPage, gref: u32, dom: u16, gfn: u64, readonly: bool) {
    let off = gref as usize * GRANT_ENTRY_V1_SIZE;
    t.u32(off + GRANT_ENTRY_FRAME)
        .store(gfn as u32, Ordering::SeqCst);
    let flags = PERMIT | if readonly { READONLY } else { 0 };
    t.u32(off)
        .store(((dom as u32) << 16) | flags as u32, Ordering::SeqCst);
}

fn flags(t: &GuestPage, gref: u32) -> u16 {
    t.u32(gref as usize * GRANT_ENTRY_V1_SIZE)
        .load(Ordering::SeqCst) as u16
}

#[test]
fn backend_mapping_sets_and_clears_reading_writing() {
    let m = Machine::new();
    let t = map_table(&m);
    let page = m.guest.alloc_page().unwrap();
    grant(&t, 40, 0, page.pfn, false);
    let (h1, ptr) = m.hv.backend_map_grant(0, 40, false).unwrap();
    assert_eq!(flags(&t, 40), PERMIT | READING | WRITING);
    // Both sides see the same memory.
    // SAFETY: `ptr` is the backend's view of the granted page.
    unsafe { ptr.add(8).write_volatile(0x77) };
    // SAFETY: our page.
    assert_eq!(
        unsafe { ((page.va + 8) as *const u8).read_volatile() },
        0x77
    );
    let (h2, _) = m.hv.backend_map_grant(0, 40, true).unwrap();
    m.hv.backend_unmap_grant(0, h1).unwrap();
    assert_eq!(
        flags(&t, 40),
        PERMIT | READING,
        "writing cleared with the last writable map"
    );
    assert_eq!(
        m.hv.backend_unmap_grant(0, h1),
        Err(GrantStatus::BAD_HANDLE)
    );
    m.hv.backend_unmap_grant(0, h2).unwrap();
    assert_eq!(flags(&t, 40), PERMIT);
    // Copies leave no trace in the flags.
    m.hv.backend_copy_to_grant(0, 40, 100, b"xyz").unwrap();
    let mut out = [0u8; 3];
    m.hv.backend_copy_from_grant(0, 40, 100, &mut out).unwrap();
    assert_eq!(&out, b"xyz");
    assert_eq!(flags(&t, 40), PERMIT);
    assert_eq!(
        m.hv.backend_copy_from_grant(0, 40, 4095, &mut out),
        Err(GrantStatus::BAD_COPY_ARG)
    );
}

#[test]
fn backend_mapping_honours_the_grant_entry() {
    let m = Machine::new();
    let t = map_table(&m);
    let page = m.guest.alloc_page().unwrap();
    // Read-only grant: a writable mapping is refused, a read-only one is fine.
    grant(&t, 41, 0, page.pfn, true);
    assert_eq!(
        m.hv.backend_map_grant(0, 41, false).err(),
        Some(GrantStatus::GENERAL_ERROR)
    );
    let (h, _) = m.hv.backend_map_grant(0, 41, true).unwrap();
    assert_eq!(flags(&t, 41), PERMIT | READONLY | READING);
    m.hv.backend_unmap_grant(0, h).unwrap();
    // Granted to another domain, or not granted at all.
    m.hv.add_backend_domain(5);
    assert_eq!(
        m.hv.backend_map_grant(5, 41, true).err(),
        Some(GrantStatus::GENERAL_ERROR)
    );
    assert_eq!(
        m.hv.backend_map_grant(0, 42, true).err(),
        Some(GrantStatus::GENERAL_ERROR)
    );
    // Beyond the table.
    assert_eq!(
        m.hv.backend_map_grant(0, 512, true).err(),
        Some(GrantStatus::BAD_GNTREF)
    );
    // Frame not backed by RAM.
    grant(&t, 43, 0, m.layout().hole.end - 1, false);
    assert_eq!(
        m.hv.backend_map_grant(0, 43, false).err(),
        Some(GrantStatus::BAD_PAGE)
    );
    assert_eq!(flags(&t, 43), PERMIT, "failed map leaves no flags behind");
    // The toolstack's reserved entries point at the rings, granted to dom0.
    assert_eq!(
        m.hv.grant_entry(1),
        Some((PERMIT, 0, m.layout().store_gfn as u32))
    );
    assert_eq!(
        m.hv.grant_entry(0),
        Some((PERMIT, 0, m.layout().console_gfn as u32))
    );
}

#[test]
fn ballooning_a_mapped_page_keeps_it_alive_for_the_backend() {
    let m = Machine::new();
    let t = map_table(&m);
    let page = m.guest.alloc_page().unwrap();
    grant(&t, 50, 0, page.pfn, false);
    let (h, ptr) = m.hv.backend_map_grant(0, 50, false).unwrap();
    let mut gfns = [page.pfn];
    let mut r = XenMemoryReservation {
        extent_start: xen_include::xen::abi::GuestHandle::from_ptr(gfns.as_mut_ptr()),
        nr_extents: 1,
        extent_order: 0,
        mem_flags: 0,
        domid: DomId::SELF,
    };
    assert_eq!(memory(&m, MemoryOp::DECREASE_RESERVATION, &mut r), 1);
    // The backend still writes into the (now guest-less) frame without harm, and the frame
    // is not handed out again while mapped.
    // SAFETY: the backend mapping keeps the frame alive.
    unsafe { ptr.write_volatile(1) };
    assert_eq!(memory(&m, MemoryOp::POPULATE_PHYSMAP, &mut r), 1);
    // SAFETY: the guest frame is populated again (with a fresh, zeroed frame).
    assert_eq!(unsafe { (page.va as *const u8).read_volatile() }, 0);
    m.hv.backend_unmap_grant(0, h).unwrap();
}

#[test]
fn guest_maps_and_copies_backend_grants() {
    let m = Machine::new();
    let (gref, bptr) = m.hv.backend_grant_page(0, false).unwrap();
    let (ro_ref, _) = m.hv.backend_grant_page(0, true).unwrap();
    // SAFETY: the backend's own page.
    unsafe { bptr.write_volatile(0x42) };
    let hole = m.layout().hole.start + 3;
    let mut map = [GnttabMapGrantRef {
        host_addr: hole << 12,
        flags: GntMapFlags::HOST_MAP.bits(),
        reference: gref,
        dom: DomId::DOM0,
        ..Default::default()
    }];
    assert_eq!(gnttab(&m, GnttabOp::MAP_GRANT_REF, &mut map), 0);
    assert_eq!(map[0].status, GrantStatus::OKAY);
    assert!(matches!(m.hv.p2m(hole), P2m::Foreign { .. }));
    assert_eq!(m.hv.guest_foreign_mappings(), vec![(hole, 0, gref)]);
    // SAFETY: the hole frame now shows the backend page.
    assert_eq!(
        unsafe { (m.hv.gfn_va(hole) as *const u8).read_volatile() },
        0x42
    );
    // Writable map of a read-only grant, unknown ref, unknown domain, unaligned address.
    let mut bad = [
        GnttabMapGrantRef {
            host_addr: (hole + 1) << 12,
            flags: GntMapFlags::HOST_MAP.bits(),
            reference: ro_ref,
            dom: DomId::DOM0,
            ..Default::default()
        },
        GnttabMapGrantRef {
            host_addr: (hole + 1) << 12,
            flags: GntMapFlags::HOST_MAP.bits(),
            reference: 999,
            dom: DomId::DOM0,
            ..Default::default()
        },
        GnttabMapGrantRef {
            host_addr: (hole + 1) << 12,
            flags: GntMapFlags::HOST_MAP.bits(),
            reference: gref,
            dom: DomId(9),
            ..Default::default()
        },
        GnttabMapGrantRef {
            host_addr: (hole << 12) + 8,
            flags: GntMapFlags::HOST_MAP.bits() | GntMapFlags::READONLY.bits(),
            reference: ro_ref,
            dom: DomId::DOM0,
            ..Default::default()
        },
    ];
    assert_eq!(gnttab(&m, GnttabOp::MAP_GRANT_REF, &mut bad), 0);
    let st: Vec<GrantStatus> = bad.iter().map(|b| b.status).collect();
    assert_eq!(
        st,
        vec![
            GrantStatus::GENERAL_ERROR,
            GrantStatus::BAD_GNTREF,
            GrantStatus::BAD_DOMAIN,
            GrantStatus::BAD_VIRT_ADDR
        ]
    );
    // Copy from the backend page into guest RAM and back.
    let page = m.guest.alloc_page().unwrap();
    let mut copy = [GnttabCopy {
        source: GnttabCopyPtr {
            u: gref as u64,
            domid: DomId::DOM0,
            offset: 0,
        },
        dest: GnttabCopyPtr {
            u: page.pfn,
            domid: DomId::SELF,
            offset: 16,
        },
        len: 1,
        flags: GntCopyFlags::SOURCE_GREF.bits(),
        ..Default::default()
    }];
    assert_eq!(gnttab(&m, GnttabOp::COPY, &mut copy), 0);
    assert_eq!(copy[0].status, GrantStatus::OKAY);
    // SAFETY: our page.
    assert_eq!(
        unsafe { ((page.va + 16) as *const u8).read_volatile() },
        0x42
    );
    copy[0].len = 4090;
    assert_eq!(gnttab(&m, GnttabOp::COPY, &mut copy), 0);
    assert_eq!(copy[0].status, GrantStatus::BAD_COPY_ARG);
    // Unmap with the wrong address, then properly.
    let mut un = [GnttabUnmapGrantRef {
        host_addr: (hole + 1) << 12,
        handle: map[0].handle,
        ..Default::default()
    }];
    assert_eq!(gnttab(&m, GnttabOp::UNMAP_GRANT_REF, &mut un), 0);
    assert_eq!(un[0].status, GrantStatus::GENERAL_ERROR);
    un[0].host_addr = hole << 12;
    assert_eq!(gnttab(&m, GnttabOp::UNMAP_GRANT_REF, &mut un), 0);
    assert_eq!(un[0].status, GrantStatus::OKAY);
    assert_eq!(m.hv.p2m(hole), P2m::Invalid);
    assert_eq!(gnttab(&m, GnttabOp::UNMAP_GRANT_REF, &mut un), 0);
    assert_eq!(un[0].status, GrantStatus::BAD_HANDLE);
}

#[test]
fn query_size_and_versions() {
    let m = Machine::new();
    let mut q = [GnttabQuerySize {
        dom: DomId::SELF,
        ..Default::default()
    }];
    assert_eq!(gnttab(&m, GnttabOp::QUERY_SIZE, &mut q), 0);
    assert_eq!(
        (q[0].nr_frames, q[0].max_nr_frames, q[0].status),
        (1, 64, GrantStatus::OKAY)
    );
    map_table(&m);
    assert_eq!(
        add_to_physmap(&m, MapSpace::GRANT_TABLE, 3, m.layout().hole.start + 1),
        0
    );
    assert_eq!(gnttab(&m, GnttabOp::QUERY_SIZE, &mut q), 0);
    assert_eq!(q[0].nr_frames, 4);
    q[0].dom = DomId::DOM0;
    assert_eq!(gnttab(&m, GnttabOp::QUERY_SIZE, &mut q), 0);
    assert_eq!(q[0].status, GrantStatus::PERMISSION_DENIED);
    q[0].dom = DomId(3);
    assert_eq!(gnttab(&m, GnttabOp::QUERY_SIZE, &mut q), 0);
    assert_eq!(q[0].status, GrantStatus::BAD_DOMAIN);
    let mut sv = [GnttabSetVersion { version: 1 }];
    assert_eq!(gnttab(&m, GnttabOp::SET_VERSION, &mut sv), 0);
    sv[0].version = 2;
    assert_eq!(
        gnttab(&m, GnttabOp::SET_VERSION, &mut sv),
        err(Errno::ENOSYS)
    );
    assert_eq!(sv[0].version, 1, "the current version is written back");
    sv[0].version = 3;
    assert_eq!(
        gnttab(&m, GnttabOp::SET_VERSION, &mut sv),
        err(Errno::EINVAL)
    );
    let mut gv = [GnttabGetVersion {
        dom: DomId::SELF,
        ..Default::default()
    }];
    assert_eq!(gnttab(&m, GnttabOp::GET_VERSION, &mut gv), 0);
    assert_eq!(gv[0].version, 1);
}
