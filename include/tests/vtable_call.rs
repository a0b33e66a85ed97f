//! Calls through filled interface vtables, as a C child driver would.

use core::ffi::c_void;
use xen_include::interfaces::{store, suspend, Interface, PInterface, VersionedInterface};

unsafe extern "C" fn get_count(interface: PInterface) -> u32 {
    // SAFETY: the test passes a pointer to a live SuspendInterfaceV1.
    unsafe { (*interface).version as u32 * 100 + (*interface).size as u32 }
}

unsafe extern "C" fn acquire(interface: PInterface) -> i32 {
    // SAFETY: the test passes a pointer to a live interface whose context is a u32 counter.
    unsafe { *((*interface).context as *mut u32) += 1 };
    0
}

#[test]
fn a_filled_vtable_is_callable_through_the_interface_pointer() {
    let mut table = suspend::SuspendInterfaceV1 {
        interface: Interface::new(80, 1, core::ptr::null_mut()),
        get_count: Some(get_count),
        ..suspend::SuspendInterfaceV1::EMPTY
    };
    let p = &mut table as *mut suspend::SuspendInterfaceV1 as PInterface;
    // SAFETY: `p` points to `table`, whose header is its first field.
    let n = unsafe { (table.get_count.unwrap())(p) };
    assert_eq!(n, 180);
    assert!(table.acquire.is_none());
}

#[test]
fn the_provider_context_reaches_the_method() {
    let mut counter = 0u32;
    let size = store::StoreInterfaceV2::SIZE as u16;
    let mut table = store::StoreInterfaceV2 {
        interface: Interface::new(size, 2, &mut counter as *mut u32 as *mut c_void),
        store_acquire: Some(acquire),
        ..Default::default()
    };
    let p = &mut table as *mut store::StoreInterfaceV2 as PInterface;
    for _ in 0..3 {
        // SAFETY: `p` points to `table`; its context points to `counter`.
        assert_eq!(unsafe { (table.store_acquire.unwrap())(p) }, 0);
    }
    assert_eq!(counter, 3);
}
