//! Spec §10 item 28 / issue 7 item 1, the part the unit tests leave out: GetTime's
//! consistency loop. While the wall-clock version is odd (Xen updating), GetTime keeps
//! re-reading and returns the values written once the version is even again — never the
//! half-written ones; a version that stays odd gives no time rather than a torn one.

/// Heap use above DISPATCH_LEVEL panics, as pool use there bug-checks a real kernel.
#[global_allocator]
static ALLOCATOR: common::irql::model::CheckingAllocator =
    common::irql::model::CheckingAllocator::SYSTEM;

mod support;

use core::mem::offset_of;
use std::sync::atomic::{AtomicU32, Ordering};

use xen_include::xen::xen::SharedInfo as SharedInfoPage;

/// 100 ns units from 1601 to 1970.
const EPOCH: i64 = 11_644_473_600 * 10_000_000;

fn word(base: *mut u8, offset: usize) -> &'static AtomicU32 {
    // SAFETY: `base` is the simulated shared-info frame (4 KiB, page aligned, alive for the
    // leaked machine); `offset` is a 4-aligned field inside it.
    unsafe { AtomicU32::from_ptr(base.add(offset) as *mut u32) }
}

#[test]
fn get_time_retries_while_the_wallclock_version_is_odd() {
    let w = support::boot_d0();
    let si = w.s().shared_info;
    let page = w.m.hv.shared_info_ptr();
    let version = word(page, offset_of!(SharedInfoPage, wc_version));
    let sec = word(page, offset_of!(SharedInfoPage, wc_sec));
    let sec_hi = word(page, offset_of!(SharedInfoPage, wc_sec_hi));
    let nsec = word(page, offset_of!(SharedInfoPage, wc_nsec));
    let (t0, _) = si.get_time().unwrap();
    let v = version.load(Ordering::SeqCst);
    assert_eq!(v % 2, 0);
    let since_boot = t0 - EPOCH - i64::from(sec.load(Ordering::SeqCst)) * 10_000_000;
    // Xen starts an update: odd version, a half-written (torn) boot time.
    version.store(v + 1, Ordering::SeqCst);
    sec.store(1, Ordering::SeqCst);
    sec_hi.store(0, Ordering::SeqCst);
    nsec.store(0, Ordering::SeqCst);
    // ... and finishes it a little later on another CPU.
    let writer = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(5));
        sec.store(2_000_000_000, Ordering::SeqCst);
        version.store(v + 2, Ordering::SeqCst);
    });
    let (t, _) = si.get_time().unwrap();
    writer.join().unwrap();
    let boot = t - EPOCH - since_boot;
    assert!(
        (boot - 2_000_000_000 * 10_000_000).abs() < 10 * 10_000_000,
        "the finished update, not the torn one: boot at {boot}"
    );
    // An update that never finishes: no time at all rather than a torn one.
    version.store(v + 3, Ordering::SeqCst);
    assert_eq!(si.get_time(), None);
    version.store(v + 4, Ordering::SeqCst);
    assert!(si.get_time().is_some());
    w.fdo.d0_to_d3();
}
