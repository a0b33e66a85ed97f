//! Spec §10 item 1 seen from a child driver, and issue 7 item 6 / issue 8 "every interface
//! version served as C vtables": every version of every XENBUS interface is obtained from the
//! active FDO's providers through the PDO's QUERY_INTERFACE path (`interface::query`), its
//! header is checked, and EVTCHN V5–V9, GNTTAB V2–V4 and SHARED_INFO V2–V4 are exercised
//! slot by slot through the C function pointers (EVTCHN Open through its variadic slot), the
//! way a C child driver calls them. (The other interfaces' every slot is called in their
//! `interface::*` unit tests.)

/// Heap use above DISPATCH_LEVEL panics, as pool use there bug-checks a real kernel.
#[global_allocator]
static ALLOCATOR: common::irql::model::CheckingAllocator =
    common::irql::model::CheckingAllocator::SYSTEM;

mod support;

use core::ffi::c_void;
use std::sync::atomic::{AtomicU32, Ordering};

use common::os::{Os, RegValue};
use common::pnp::InterfaceQuery;
use support::{boot, World};
use xen_include::api::XenApi;
use xen_include::guid::Guid;
use xen_include::interfaces::evtchn::*;
use xen_include::interfaces::gnttab::*;
use xen_include::interfaces::shared_info::*;
use xen_include::interfaces::{
    cache, console, debug, range_set, store, suspend, unplug, Boolean, Interface, KInterrupt,
    LargeInteger, PInterface, PfnNumber, VersionedInterface, FALSE, TRUE,
};
use xen_include::status::*;
use xen_include::xen::xen::Virq;
use xenbus::interface::query::{query, Providers, XenbusInterface};

fn providers(w: &World) -> Providers<'static> {
    Providers::from_subsystems(w.s())
}

/// QUERY_INTERFACE into `buf` exactly as the PDO does.
fn ask(
    p: &Providers<'static>,
    which: XenbusInterface,
    guid: Guid,
    version: u16,
    buf: &mut [u64],
) -> NtStatus {
    let q = InterfaceQuery {
        guid,
        size: u16::try_from(buf.len() * 8).unwrap(),
        version,
        buffer: buf.as_mut_ptr() as usize,
        specific: 0,
        incoming: STATUS_NOT_SUPPORTED,
    };
    // SAFETY: `buf` is writable for `size` bytes and 8-aligned; the providers are leaked.
    unsafe { query(p, which, &q) }
}

/// An interface, its GUID and each served version with its size.
type Served = (XenbusInterface, Guid, Vec<(u16, usize)>);

/// The served version range and each version's size, per interface.
fn served() -> Vec<Served> {
    use XenbusInterface as X;
    vec![
        (
            X::Suspend,
            suspend::SuspendInterfaceV1::GUID,
            vec![(1, suspend::SuspendInterfaceV1::SIZE)],
        ),
        (
            X::SharedInfo,
            SharedInfoInterfaceV2::GUID,
            vec![
                (2, SharedInfoInterfaceV2::SIZE),
                (3, SharedInfoInterfaceV3::SIZE),
                (4, SharedInfoInterfaceV4::SIZE),
            ],
        ),
        (
            X::Evtchn,
            EvtchnInterfaceV5::GUID,
            vec![
                (5, EvtchnInterfaceV5::SIZE),
                (6, EvtchnInterfaceV6::SIZE),
                (7, EvtchnInterfaceV7::SIZE),
                (8, EvtchnInterfaceV8::SIZE),
                (9, EvtchnInterfaceV9::SIZE),
            ],
        ),
        (
            X::Debug,
            debug::DebugInterfaceV1::GUID,
            vec![(1, debug::DebugInterfaceV1::SIZE)],
        ),
        (
            X::Store,
            store::StoreInterfaceV2::GUID,
            vec![(2, store::StoreInterfaceV2::SIZE)],
        ),
        (
            X::RangeSet,
            range_set::RangeSetInterfaceV1::GUID,
            vec![(1, range_set::RangeSetInterfaceV1::SIZE)],
        ),
        (
            X::Cache,
            cache::CacheInterfaceV1::GUID,
            vec![
                (1, cache::CacheInterfaceV1::SIZE),
                (2, cache::CacheInterfaceV2::SIZE),
            ],
        ),
        (
            X::Gnttab,
            GnttabInterfaceV2::GUID,
            vec![
                (2, GnttabInterfaceV2::SIZE),
                (3, GnttabInterfaceV3::SIZE),
                (4, GnttabInterfaceV4::SIZE),
            ],
        ),
        (
            X::Unplug,
            unplug::UnplugInterfaceV1::GUID,
            vec![
                (1, unplug::UnplugInterfaceV1::SIZE),
                (2, unplug::UnplugInterfaceV2::SIZE),
                (3, unplug::UnplugInterfaceV3::SIZE),
            ],
        ),
        (
            X::Console,
            console::ConsoleInterfaceV1::GUID,
            vec![(1, console::ConsoleInterfaceV1::SIZE)],
        ),
    ]
}

#[test]
fn every_version_of_every_interface_is_served_with_its_exact_header_and_slots() {
    let w = boot(&[]);
    w.fdo.d3_to_d0(w.resources()).unwrap();
    let p = providers(&w);
    let header = core::mem::size_of::<Interface>();
    assert_eq!(header, 32);
    for (which, guid, versions) in served() {
        let min = versions.first().unwrap().0;
        let max = versions.last().unwrap().0;
        for (version, size) in &versions {
            let words = size / 8;
            // One word more than the struct: it must stay untouched.
            let mut buf = vec![0xA5A5_A5A5_A5A5_A5A5u64; words + 1];
            assert_eq!(
                ask(&p, which, guid, *version, &mut buf),
                STATUS_SUCCESS,
                "{which:?} v{version}"
            );
            // SAFETY: the buffer now starts with an INTERFACE header.
            let h = unsafe { &*(buf.as_ptr() as *const Interface) };
            assert_eq!(usize::from(h.size), *size, "{which:?} v{version} Size");
            assert_eq!(h.version, *version, "{which:?} v{version} Version");
            assert!(!h.context.is_null(), "{which:?} v{version} Context");
            assert!(h.interface_reference.is_none() && h.interface_dereference.is_none());
            for (slot, word) in buf[header / 8..words].iter().enumerate() {
                assert_ne!(*word, 0, "{which:?} v{version} slot {slot} is NULL");
            }
            assert_eq!(
                buf[words], 0xA5A5_A5A5_A5A5_A5A5,
                "{which:?} v{version} overran"
            );
            // A buffer one word short: BUFFER_OVERFLOW and nothing written.
            let mut short = vec![0u64; words - 1];
            assert_eq!(
                ask(&p, which, guid, *version, &mut short),
                STATUS_BUFFER_OVERFLOW
            );
        }
        let mut buf = vec![0u64; 64];
        assert_eq!(
            ask(&p, which, guid, min - 1, &mut buf),
            STATUS_NOT_SUPPORTED,
            "{which:?}"
        );
        assert_eq!(
            ask(&p, which, guid, max + 1, &mut buf),
            STATUS_NOT_SUPPORTED,
            "{which:?}"
        );
    }
    w.fdo.d0_to_d3();
}

/// Obtain version `V` of an interface as a C child does.
fn get<V: VersionedInterface>(p: &Providers<'static>, which: XenbusInterface) -> Box<V> {
    let mut buf = vec![0u64; V::SIZE / 8];
    assert_eq!(ask(p, which, V::GUID, V::VERSION, &mut buf), STATUS_SUCCESS);
    let mut b: Box<std::mem::MaybeUninit<V>> = Box::new(std::mem::MaybeUninit::uninit());
    // SAFETY: the provider filled `V::SIZE` bytes laid out as `V` (header + fn pointers).
    unsafe {
        core::ptr::copy_nonoverlapping(
            buf.as_ptr() as *const u8,
            b.as_mut_ptr() as *mut u8,
            V::SIZE,
        );
        Box::from_raw(Box::into_raw(b) as *mut V)
    }
}

fn me(w: &World) -> u16 {
    w.m.hv.domid()
}

unsafe extern "C" fn isr(_: *mut KInterrupt, arg: *mut c_void) -> Boolean {
    // SAFETY: `arg` is the leaked counter given to Open.
    unsafe { (*(arg as *const AtomicU32)).fetch_add(1, Ordering::SeqCst) };
    TRUE
}

/// The slots every EVTCHN version shares, called through table `$t`: Acquire, Open
/// (UNBOUND, variadic (RemoteDomain, Mask=TRUE)), GetPort, Bind to CPU 1 and back, Trigger,
/// a backend event delivered once and auto-masked, then Close and Release. Leaves
/// `(channel, dom0 port)` open for the version-specific part.
macro_rules! evtchn_common {
    ($w:expr, $t:expr, $hits:expr) => {{
        let i = &mut *$t as *mut _ as PInterface;
        assert_eq!(($t.evtchn_acquire.unwrap())(i), STATUS_SUCCESS);
        let arg = $hits as *const AtomicU32 as *mut c_void;
        let ch = ($t.evtchn_open.unwrap())(i, EvtchnType::UNBOUND, Some(isr), arg, 0u32, 1u32);
        assert!(!ch.is_null());
        let port = ($t.evtchn_get_port.unwrap())(i, ch);
        assert!(port > 0);
        let dom0 = $w.m.hv.backend_bind_interdomain(0, me(&$w), port).unwrap();
        assert_eq!(($t.evtchn_bind.unwrap())(i, ch, 0, 1), STATUS_SUCCESS);
        assert_eq!(($t.evtchn_bind.unwrap())(i, ch, 0, 0), STATUS_SUCCESS);
        let before = $hits.load(Ordering::SeqCst);
        ($t.evtchn_trigger.unwrap())(i, ch);
        assert_eq!(
            $hits.load(Ordering::SeqCst),
            before + 1,
            "Trigger delivers locally"
        );
        (i, ch, dom0)
    }};
}

#[test]
fn evtchn_versions_5_to_9_every_slot_through_the_c_table_fifo() {
    evtchn_every_slot(1);
}

#[test]
fn evtchn_versions_5_to_9_every_slot_through_the_c_table_two_level() {
    evtchn_every_slot(0);
}

/// Every channel below re-uses the port number the previous version's channel closed:
/// delivery on a re-used port is checked on the way (in FIFO this needs Xen's rule that a
/// re-allocated port which was a queue's tail invalidates it).
fn evtchn_every_slot(fifo: u32) {
    let w = boot(&[("UseEvtchnFifoAbi", RegValue::Dword(fifo))]);
    w.fdo.d3_to_d0(w.resources()).unwrap();
    assert_eq!(w.m.hv.evtchn_fifo_active(), fifo == 1);
    let p = providers(&w);
    let hits: &'static AtomicU32 = support::leak(AtomicU32::new(0));
    let x = XenbusInterface::Evtchn;
    let sent = |dom0: u32| w.m.hv.backend_take_pending(0).contains(&dom0);
    // SAFETY (whole block): the tables come from the provider, arguments follow each slot's
    // C prototype, channels are used only until Close.
    unsafe {
        // V5: UnmaskVersion4 (force), SendVersion1, WaitVersion5.
        let mut v5 = get::<EvtchnInterfaceV5>(&p, x);
        let (i, ch, dom0) = evtchn_common!(w, v5, hits);
        let n = hits.load(Ordering::SeqCst);
        w.m.hv.backend_send(0, dom0).unwrap();
        w.m.hv.deliver_upcalls();
        assert_eq!(
            hits.load(Ordering::SeqCst),
            n,
            "masked until the first Unmask"
        );
        (v5.evtchn_unmask_version4.unwrap())(i, ch, FALSE);
        w.m.hv.deliver_upcalls();
        assert_eq!(
            hits.load(Ordering::SeqCst),
            n + 1,
            "pending at Unmask: delivered"
        );
        // Auto-masked now: another event stays pending until UnmaskVersion4 forces it.
        w.m.hv.backend_send(0, dom0).unwrap();
        w.m.hv.deliver_upcalls();
        assert_eq!(hits.load(Ordering::SeqCst), n + 1, "auto-masked");
        (v5.evtchn_unmask_version4.unwrap())(i, ch, FALSE);
        w.m.hv.deliver_upcalls();
        assert_eq!(
            hits.load(Ordering::SeqCst),
            n + 2,
            "UnmaskVersion4 behaves as Force"
        );
        let mut zero = LargeInteger { quad_part: 0 };
        assert_eq!(
            (v5.evtchn_wait_version5.unwrap())(i, ch, &mut zero),
            STATUS_TIMEOUT
        );
        w.m.hv.backend_take_pending(0);
        (v5.evtchn_send_version1.unwrap())(i, ch);
        assert!(sent(dom0), "SendVersion1 notifies the remote end");
        (v5.evtchn_close.unwrap())(i, ch);
        (v5.evtchn_release.unwrap())(i);

        // V6: Send instead of SendVersion1.
        let mut v6 = get::<EvtchnInterfaceV6>(&p, x);
        let (i, ch, dom0) = evtchn_common!(w, v6, hits);
        (v6.evtchn_unmask_version4.unwrap())(i, ch, FALSE);
        w.m.hv.backend_take_pending(0);
        (v6.evtchn_send.unwrap())(i, ch);
        assert!(sent(dom0), "Send notifies the remote end");
        let mut zero = LargeInteger { quad_part: 0 };
        assert_eq!(
            (v6.evtchn_wait_version5.unwrap())(i, ch, &mut zero),
            STATUS_TIMEOUT
        );
        let n = hits.load(Ordering::SeqCst);
        w.m.hv.backend_send(0, dom0).unwrap();
        w.m.hv.deliver_upcalls();
        assert_eq!(hits.load(Ordering::SeqCst), n + 1);
        (v6.evtchn_close.unwrap())(i, ch);
        (v6.evtchn_release.unwrap())(i);

        // V7: GetCount and Wait(Count, Timeout) with NULL (forever) and relative timeouts.
        let mut v7 = get::<EvtchnInterfaceV7>(&p, x);
        let (i, ch, dom0) = evtchn_common!(w, v7, hits);
        (v7.evtchn_unmask_version4.unwrap())(i, ch, FALSE);
        let c = (v7.evtchn_get_count.unwrap())(i, ch);
        w.m.hv.backend_send(0, dom0).unwrap();
        w.m.hv.deliver_upcalls();
        assert_eq!((v7.evtchn_get_count.unwrap())(i, ch), c + 1);
        assert_eq!(
            (v7.evtchn_wait.unwrap())(i, ch, c + 1, core::ptr::null_mut()),
            STATUS_SUCCESS
        );
        let mut rel = LargeInteger { quad_part: -10_000 };
        assert_eq!(
            (v7.evtchn_wait.unwrap())(i, ch, c + 2, &mut rel),
            STATUS_TIMEOUT
        );
        w.m.hv.backend_take_pending(0);
        (v7.evtchn_send.unwrap())(i, ch);
        assert!(sent(dom0));
        (v7.evtchn_close.unwrap())(i, ch);
        (v7.evtchn_release.unwrap())(i);

        // V8: Unmask(InCallback, Force) → BOOLEAN; VIRQ with (Index).
        let mut v8 = get::<EvtchnInterfaceV8>(&p, x);
        let (i, ch, dom0) = evtchn_common!(w, v8, hits);
        // Still masked since Open: a pending event on the bound CPU, not forced, not in a
        // callback → TRUE and the caller handles it.
        w.m.hv.backend_send(0, dom0).unwrap();
        let n = hits.load(Ordering::SeqCst);
        assert_eq!((v8.evtchn_unmask.unwrap())(i, ch, FALSE, FALSE), TRUE);
        w.m.hv.deliver_upcalls();
        assert_eq!(
            hits.load(Ordering::SeqCst),
            n,
            "handled by the caller, not re-delivered"
        );
        // Forced: FALSE, and Xen delivers it.
        w.m.hv.backend_send(0, dom0).unwrap();
        assert_eq!((v8.evtchn_unmask.unwrap())(i, ch, FALSE, TRUE), FALSE);
        w.m.hv.deliver_upcalls();
        assert_eq!(
            hits.load(Ordering::SeqCst),
            n + 1,
            "forced unmask re-delivers"
        );
        // In a callback: FALSE even with an event pending (Xen re-delivers it).
        w.m.hv.backend_send(0, dom0).unwrap();
        assert_eq!((v8.evtchn_unmask.unwrap())(i, ch, TRUE, FALSE), FALSE);
        w.m.hv.deliver_upcalls();
        assert_eq!(hits.load(Ordering::SeqCst), n + 2);
        let c = (v8.evtchn_get_count.unwrap())(i, ch);
        assert_eq!(
            (v8.evtchn_wait.unwrap())(i, ch, c, core::ptr::null_mut()),
            STATUS_SUCCESS
        );
        w.m.hv.backend_take_pending(0);
        (v8.evtchn_send.unwrap())(i, ch);
        assert!(sent(dom0));
        (v8.evtchn_close.unwrap())(i, ch);
        let arg = hits as *const AtomicU32 as *mut c_void;
        // (VIRQ_DEBUG on CPU 0 belongs to the FDO's debug dump.)
        let virq = (v8.evtchn_open.unwrap())(i, EvtchnType::VIRQ, Some(isr), arg, Virq::CONSOLE.0);
        assert!(!virq.is_null());
        assert_eq!((v8.evtchn_unmask.unwrap())(i, virq, FALSE, FALSE), FALSE);
        let n = hits.load(Ordering::SeqCst);
        w.m.hv.raise_virq(0, Virq::CONSOLE);
        w.m.hv.deliver_upcalls();
        assert_eq!(hits.load(Ordering::SeqCst), n + 1, "VIRQ_CONSOLE delivered");
        (v8.evtchn_close.unwrap())(i, virq);
        (v8.evtchn_release.unwrap())(i);

        // V9: VIRQ with (Index, Group, Number) on CPU 1 (per-CPU upcalls are on).
        let mut v9 = get::<EvtchnInterfaceV9>(&p, x);
        let (i, ch, dom0) = evtchn_common!(w, v9, hits);
        assert_eq!((v9.evtchn_unmask.unwrap())(i, ch, FALSE, TRUE), FALSE);
        w.m.hv.backend_take_pending(0);
        (v9.evtchn_send.unwrap())(i, ch);
        assert!(sent(dom0));
        let c = (v9.evtchn_get_count.unwrap())(i, ch);
        let mut zero = LargeInteger { quad_part: 0 };
        assert_eq!(
            (v9.evtchn_wait.unwrap())(i, ch, c.wrapping_add(1), &mut zero),
            STATUS_TIMEOUT
        );
        (v9.evtchn_close.unwrap())(i, ch);
        let arg = hits as *const AtomicU32 as *mut c_void;
        let virq = (v9.evtchn_open.unwrap())(
            i,
            EvtchnType::VIRQ,
            Some(isr),
            arg,
            Virq::DEBUG.0,
            0u32,
            1u32,
        );
        assert!(!virq.is_null(), "VIRQ on CPU 1 with per-CPU upcalls");
        assert_eq!((v9.evtchn_unmask.unwrap())(i, virq, FALSE, FALSE), FALSE);
        let n = hits.load(Ordering::SeqCst);
        w.m.hv.raise_virq(1, Virq::DEBUG);
        w.m.hv.deliver_upcalls();
        assert_eq!(hits.load(Ordering::SeqCst), n + 1, "delivered on CPU 1");
        (v9.evtchn_close.unwrap())(i, virq);
        let bad = (v9.evtchn_open.unwrap())(i, EvtchnType(42), Some(isr), arg, 0u32);
        assert!(bad.is_null(), "unknown type → NULL");
        (v9.evtchn_release.unwrap())(i);
    }
    w.fdo.d0_to_d3();
}

#[test]
fn gnttab_versions_2_to_4_every_slot_through_the_c_table() {
    let w = boot(&[]);
    w.fdo.d3_to_d0(w.resources()).unwrap();
    let p = providers(&w);
    let x = XenbusInterface::Gnttab;
    // SAFETY (whole block): C-prototype calls on provider tables; entries/caches are used
    // only until revoked/destroyed.
    unsafe {
        let mut v2 = get::<GnttabInterfaceV2>(&p, x);
        let mut v3 = get::<GnttabInterfaceV3>(&p, x);
        let mut v4 = get::<GnttabInterfaceV4>(&p, x);
        let (i2, i3, i4) = (
            &mut *v2 as *mut _ as PInterface,
            &mut *v3 as *mut _ as PInterface,
            &mut *v4 as *mut _ as PInterface,
        );
        assert_eq!((v2.gnttab_acquire.unwrap())(i2), STATUS_SUCCESS);
        assert_eq!((v3.gnttab_acquire.unwrap())(i3), STATUS_SUCCESS);
        assert_eq!((v4.gnttab_acquire.unwrap())(i4), STATUS_SUCCESS);
        let page = w.m.guest.alloc_page().unwrap();
        // Grant, map from dom0, revoke: through each version's own slots.
        macro_rules! grant_cycle {
            ($t:expr, $i:expr, $cache:expr) => {{
                let mut entry = core::ptr::null_mut();
                assert_eq!(
                    ($t.gnttab_permit_foreign_access.unwrap())(
                        $i,
                        $cache,
                        FALSE,
                        0,
                        page.pfn as PfnNumber,
                        FALSE,
                        &mut entry
                    ),
                    STATUS_SUCCESS
                );
                let r = ($t.gnttab_get_reference.unwrap())($i, entry);
                assert!(r >= 32, "references below 32 are reserved");
                let (handle, _) = w.m.hv.backend_map_grant(0, r, false).unwrap();
                assert_ne!(
                    ($t.gnttab_revoke_foreign_access.unwrap())($i, $cache, FALSE, entry),
                    STATUS_SUCCESS,
                    "revoke refused while dom0 has it mapped"
                );
                w.m.hv.backend_unmap_grant(0, handle).unwrap();
                // The refused entry was not recycled; a fresh grant gets another reference.
                let mut again = core::ptr::null_mut();
                assert_eq!(
                    ($t.gnttab_permit_foreign_access.unwrap())(
                        $i,
                        $cache,
                        FALSE,
                        0,
                        page.pfn as PfnNumber,
                        TRUE,
                        &mut again
                    ),
                    STATUS_SUCCESS
                );
                assert_ne!(($t.gnttab_get_reference.unwrap())($i, again), r);
                assert_eq!(
                    ($t.gnttab_revoke_foreign_access.unwrap())($i, $cache, FALSE, again),
                    STATUS_SUCCESS
                );
                r
            }};
        }
        let mut c2 = core::ptr::null_mut();
        assert_eq!(
            (v2.gnttab_create_cache_version1.unwrap())(
                i2,
                c"v2".as_ptr(),
                0,
                None,
                None,
                core::ptr::null_mut(),
                &mut c2
            ),
            STATUS_SUCCESS
        );
        grant_cycle!(v2, i2, c2);
        (v2.gnttab_destroy_cache.unwrap())(i2, c2);
        let mut c3 = core::ptr::null_mut();
        assert_eq!(
            (v3.gnttab_create_cache_version1.unwrap())(
                i3,
                c"v3".as_ptr(),
                0,
                None,
                None,
                core::ptr::null_mut(),
                &mut c3
            ),
            STATUS_SUCCESS
        );
        grant_cycle!(v3, i3, c3);
        let mut pfn: PfnNumber = 0;
        let mut ro: Boolean = 2;
        (v3.gnttab_destroy_cache.unwrap())(i3, c3);
        let mut c4 = core::ptr::null_mut();
        assert_eq!(
            (v4.gnttab_create_cache.unwrap())(
                i4,
                c"v4".as_ptr(),
                0,
                4,
                None,
                None,
                core::ptr::null_mut(),
                &mut c4
            ),
            STATUS_SUCCESS
        );
        grant_cycle!(v4, i4, c4);
        (v4.gnttab_destroy_cache.unwrap())(i4, c4);
        // QueryReference: store (1) and console (0) rings, a revoked reference is not granted.
        for (t, i) in [
            (v3.gnttab_query_reference, i3),
            (v4.gnttab_query_reference, i4),
        ] {
            assert_eq!((t.unwrap())(i, 1, &mut pfn, &mut ro), STATUS_SUCCESS);
            assert_eq!(pfn as u64, w.m.layout().store_gfn);
            assert_eq!(ro, FALSE);
            assert_eq!(
                (t.unwrap())(i, 0, &mut pfn, core::ptr::null_mut()),
                STATUS_SUCCESS
            );
            assert_eq!(pfn as u64, w.m.layout().console_gfn);
        }
        // MapForeignPages / UnmapForeignPages through each version.
        macro_rules! map_cycle {
            ($t:expr, $i:expr) => {{
                let (a, pa) = w.m.hv.backend_grant_page(0, false).unwrap();
                let (b, _) = w.m.hv.backend_grant_page(0, false).unwrap();
                *pa = 0x5A;
                let mut refs = [a, b];
                let mut addr = LargeInteger { quad_part: 0 };
                assert_eq!(
                    ($t.gnttab_map_foreign_pages.unwrap())(
                        $i,
                        0,
                        2,
                        refs.as_mut_ptr(),
                        FALSE,
                        &mut addr
                    ),
                    STATUS_SUCCESS
                );
                assert_eq!(w.m.hv.guest_foreign_mappings().len(), 2);
                let gfn = (addr.quad_part as u64) >> 12;
                let frame = w.m.hv.frame_ptr_of_gfn(gfn).unwrap();
                assert_eq!(
                    *frame, 0x5A,
                    "the foreign page is visible at the returned address"
                );
                assert_eq!(
                    ($t.gnttab_unmap_foreign_pages.unwrap())($i, addr),
                    STATUS_SUCCESS
                );
                assert!(w.m.hv.guest_foreign_mappings().is_empty());
            }};
        }
        map_cycle!(v2, i2);
        map_cycle!(v3, i3);
        map_cycle!(v4, i4);
        w.m.guest.free_page(page);
        (v4.gnttab_release.unwrap())(i4);
        (v3.gnttab_release.unwrap())(i3);
        (v2.gnttab_release.unwrap())(i2);
    }
    assert!(w.m.guest.violations().is_empty());
    w.fdo.d0_to_d3();
}

unsafe extern "C" fn collect(arg: *mut c_void, port: u32) -> Boolean {
    // SAFETY: `arg` is the test's Vec.
    unsafe { (*(arg as *mut Vec<u32>)).push(port) };
    FALSE
}

#[test]
fn shared_info_versions_2_to_4_every_slot_through_the_c_table() {
    // The 2-level ABI, so the shared-info bitmaps carry the events.
    let w = boot(&[("UseEvtchnFifoAbi", RegValue::Dword(0))]);
    w.fdo.d3_to_d0(w.resources()).unwrap();
    assert!(!w.m.hv.evtchn_fifo_active());
    let p = providers(&w);
    let x = XenbusInterface::SharedInfo;
    // A port of our own: allocated by dom0 as unbound, bound by nobody in the guest's
    // EVTCHN, so only the slots below touch it.
    let ch = w
        .s()
        .evtchn
        .open(
            xenbus::evtchn::Kind::Unbound { remote_domain: 0 },
            false,
            std::sync::Arc::new(Nothing),
        )
        .unwrap();
    let port = w.s().evtchn.channel(ch).unwrap().port();
    let dom0 = w.m.hv.backend_bind_interdomain(0, me(&w), port).unwrap();
    // The test plays the interrupt: upcalls only when it asks for them.
    w.m.hv.set_upcall_mode(xen_sim::hv::UpcallMode::Deferred);
    // SAFETY (whole block): C-prototype calls on provider tables.
    unsafe {
        let mut v2 = get::<SharedInfoInterfaceV2>(&p, x);
        let mut v3 = get::<SharedInfoInterfaceV3>(&p, x);
        let mut v4 = get::<SharedInfoInterfaceV4>(&p, x);
        let (i2, i3, i4) = (
            &mut *v2 as *mut _ as PInterface,
            &mut *v3 as *mut _ as PInterface,
            &mut *v4 as *mut _ as PInterface,
        );
        assert_eq!((v2.shared_info_acquire.unwrap())(i2), STATUS_SUCCESS);
        assert_eq!((v3.shared_info_acquire.unwrap())(i3), STATUS_SUCCESS);
        assert_eq!((v4.shared_info_acquire.unwrap())(i4), STATUS_SUCCESS);
        assert_eq!((v4.shared_info_upcall_supported.unwrap())(i4, 0), TRUE);
        assert_eq!((v4.shared_info_upcall_supported.unwrap())(i4, 1), TRUE);
        macro_rules! mask_pending_unmask_poll {
            ($t:expr, $i:expr) => {{
                ($t.shared_info_evtchn_mask.unwrap())($i, port);
                ($t.shared_info_evtchn_ack.unwrap())($i, port);
                w.m.hv.backend_send(0, dom0).unwrap();
                let mut seen: Vec<u32> = Vec::new();
                let arg = &mut seen as *mut Vec<u32> as *mut c_void;
                ($t.shared_info_evtchn_poll.unwrap())($i, 0, Some(collect), arg);
                assert!(!seen.contains(&port), "masked ports are not polled");
                assert_eq!(
                    ($t.shared_info_evtchn_unmask.unwrap())($i, port),
                    TRUE,
                    "pending"
                );
                ($t.shared_info_evtchn_ack.unwrap())($i, port);
                // Unmasked: Xen sets the selector and the vCPU's upcall flag.
                let _ = ($t.shared_info_upcall_pending.unwrap())($i, 0);
                w.m.hv.backend_send(0, dom0).unwrap();
                assert_eq!(($t.shared_info_upcall_pending.unwrap())($i, 0), TRUE);
                assert_eq!(
                    ($t.shared_info_upcall_pending.unwrap())($i, 0),
                    FALSE,
                    "read and cleared"
                );
                ($t.shared_info_evtchn_poll.unwrap())($i, 0, Some(collect), arg);
                assert!(seen.contains(&port), "pending and unmasked: polled");
                ($t.shared_info_evtchn_ack.unwrap())($i, port);
                assert_eq!(
                    ($t.shared_info_evtchn_unmask.unwrap())($i, port),
                    FALSE,
                    "acked"
                );
            }};
        }
        mask_pending_unmask_poll!(v2, i2);
        mask_pending_unmask_poll!(v3, i3);
        mask_pending_unmask_poll!(v4, i4);
        // GetTime: V2 returns the time, V3/V4 write Time and Local.
        let expected = w.m.guest.system_time();
        let t2 = (v2.shared_info_get_time_version2.unwrap())(i2).quad_part;
        assert!((t2 - expected).abs() < 10_000_000, "{t2} vs {expected}");
        for (f, i) in [(v3.shared_info_get_time, i3), (v4.shared_info_get_time, i4)] {
            let mut t = LargeInteger { quad_part: 0 };
            let mut local: Boolean = 2;
            (f.unwrap())(i, &mut t, &mut local);
            assert!((t.quad_part - expected).abs() < 10_000_000);
            assert_eq!(local == TRUE, !w.xen.system_real_time_is_universal());
        }
        (v4.shared_info_release.unwrap())(i4);
        (v3.shared_info_release.unwrap())(i3);
        (v2.shared_info_release.unwrap())(i2);
    }
    w.m.hv.set_upcall_mode(xen_sim::hv::UpcallMode::Immediate);
    w.s().evtchn.close(ch);
    assert!(w.m.guest.violations().is_empty());
    w.fdo.d0_to_d3();
}

struct Nothing;
impl xenbus::evtchn::EvtchnCallback for Nothing {
    fn call(&self) -> bool {
        true
    }
}
