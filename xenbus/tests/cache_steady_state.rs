//! CACHE in steady state allocates nothing: a counting global allocator watches Get/Put
//! cycles through the C vtable after warm-up (magazine hits and slab hits alike).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::ffi::c_void;

use xen_include::interfaces::cache::{Cache as CCache, CacheInterfaceV2};
use xen_include::interfaces::{PInterface, VersionedInterface};
use xen_include::status::{NtStatus, STATUS_SUCCESS};
use xenbus::interface::cache::{get_interface, CacheProvider};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; only counts calls on the current thread.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded contract.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded contract.
        unsafe { System.realloc(ptr, layout, new) }
    }
}

/// Counting, under the IRQL model's check (heap use above DISPATCH_LEVEL panics).
#[global_allocator]
static GLOBAL: common::irql::model::CheckingAllocator<Counting> =
    common::irql::model::CheckingAllocator(Counting);

fn allocations() -> u64 {
    ALLOCATIONS.with(|c| c.get())
}

unsafe extern "C" fn ctor(_arg: *mut c_void, _object: *mut c_void) -> NtStatus {
    STATUS_SUCCESS
}
unsafe extern "C" fn nop(_arg: *mut c_void) {}

fn cpu0() -> u32 {
    0
}

#[test]
fn get_put_cycles_allocate_nothing_after_warm_up() {
    let p = CacheProvider::new(4, cpu0, None);
    let mut t = CacheInterfaceV2::EMPTY;
    // SAFETY: `t` is a live, writable V2 table.
    let st = unsafe {
        get_interface(
            &p,
            2,
            &mut t as *mut _ as *mut c_void,
            CacheInterfaceV2::SIZE,
        )
    };
    assert_eq!(st, STATUS_SUCCESS);
    let i = &mut t as *mut CacheInterfaceV2 as PInterface;
    let mut c: *mut CCache = std::ptr::null_mut();
    // SAFETY: calls through the vtable as a C driver would.
    unsafe {
        assert_eq!(
            (t.cache_create.unwrap())(
                i,
                c"steady".as_ptr(),
                96,
                64,
                0,
                Some(ctor),
                None,
                Some(nop),
                Some(nop),
                std::ptr::null_mut(),
                &mut c
            ),
            STATUS_SUCCESS
        );
    }
    let get = t.cache_get.unwrap();
    let put = t.cache_put.unwrap();
    let mut held = [std::ptr::null_mut::<c_void>(); 40];
    // Warm-up: construct the working set once.
    // SAFETY: as above.
    unsafe {
        for h in held.iter_mut() {
            *h = get(i, c, 0);
            assert!(!h.is_null());
        }
        for h in held.iter() {
            put(i, c, *h, 0);
        }
    }
    let before = allocations();
    // SAFETY: as above.
    unsafe {
        for round in 0..1000 {
            // Small bursts stay in the magazine, large ones reach the slabs.
            let n = if round % 2 == 0 { 4 } else { 40 };
            for h in held.iter_mut().take(n) {
                *h = get(i, c, (round % 3 == 0) as u8);
                assert!(!h.is_null());
            }
            for h in held.iter().take(n) {
                put(i, c, *h, (round % 3 == 0) as u8);
            }
        }
    }
    let during = allocations() - before;
    assert_eq!(during, 0, "steady-state Get/Put allocated {during} times");
    // Sanity: the counter does see allocations.
    let v: Vec<u8> = Vec::with_capacity(10);
    drop(v);
    assert!(allocations() > before);
    // SAFETY: as above.
    unsafe { (t.cache_destroy.unwrap())(i, c) };
    assert_eq!(p.live_caches(), 0);
}
