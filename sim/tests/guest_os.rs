//! Scenario tests: the Windows guest model behind `common::os::Os`.

/// Heap use above DISPATCH_LEVEL panics, as pool use there bug-checks a real kernel.
#[global_allocator]
static ALLOCATOR: common::irql::model::CheckingAllocator =
    common::irql::model::CheckingAllocator::SYSTEM;

use common::os::{KernelCallback, Os, RegValue};
use xen_include::status::{
    STATUS_INVALID_HANDLE, STATUS_INVALID_PARAMETER, STATUS_OBJECT_NAME_NOT_FOUND,
};
use xen_sim::guest::GuestViolation;
use xen_sim::hv::P2m;
use xen_sim::machine::Machine;

#[test]
fn pages_come_from_the_physmap_and_are_zeroed() {
    let m = Machine::new();
    let g = &*m.guest;
    let p = g.alloc_page().unwrap();
    assert_eq!(m.hv.gfn_va(p.pfn), p.va);
    assert!(matches!(m.hv.p2m(p.pfn), P2m::Ram(_)));
    // SAFETY: the page is ours and mapped.
    unsafe { std::ptr::write_volatile(p.va as *mut u32, 0xdead_beef) };
    let mut out = [0u8; 4];
    m.hv.read_guest(p.pfn, 0, &mut out).unwrap();
    assert_eq!(
        u32::from_le_bytes(out),
        0xdead_beef,
        "the hypervisor sees guest writes"
    );
    g.free_page(p);
    let again = g.alloc_page().unwrap();
    assert_eq!(again, p, "lowest free frame first");
    // SAFETY: as above.
    assert_eq!(
        unsafe { std::ptr::read_volatile(again.va as *const u32) },
        0
    );
    assert_eq!(g.map_pfn(again.pfn), Some(again.va));
    assert_eq!(g.map_pfn(m.layout().hole.start), None);
    // Double free and freeing a ballooned-out page are recorded as driver bugs.
    g.free_page(again);
    g.free_page(again);
    assert_eq!(
        g.violations(),
        vec![GuestViolation::FreeOfUnallocatedPage(again)]
    );
    assert_eq!(g.allocated_pages(), 0);
}

#[test]
fn processors_time_and_debug_capture() {
    let m = Machine::new();
    let g = &*m.guest;
    assert_eq!(g.processor_count(), 2);
    assert_eq!(g.current_processor(), 0);
    let mut seen = None;
    g.run_on_processor(1, &mut || seen = Some(xen_sim::guest::current_processor()))
        .unwrap();
    assert_eq!(seen, Some(1));
    assert_eq!(g.current_processor(), 0);
    assert_eq!(
        g.run_on_processor(2, &mut || {}),
        Err(STATUS_INVALID_PARAMETER)
    );
    let t1 = g.system_time();
    let t2 = g.system_time();
    assert!(t2 >= t1);
    // 2026-01-01 in 100 ns units since 1601.
    assert!(t1 >= 13_408_099_200 * 10_000_000);
    g.debug_print("XEN|hello");
    assert_eq!(g.take_log(), vec!["XEN|hello".to_string()]);
    let h = g.register_callback(KernelCallback::BugCheck).unwrap();
    assert_eq!(g.registered_callbacks(), vec![KernelCallback::BugCheck]);
    g.deregister_callback(h);
    assert!(g.registered_callbacks().is_empty());
}

#[test]
fn registry_handles_values_and_volatile_keys() {
    let m = Machine::new();
    let g = &*m.guest;
    assert_eq!(
        g.registry_open(None, r"SYSTEM\CurrentControlSet\Services\XEN"),
        Err(STATUS_OBJECT_NAME_NOT_FOUND)
    );
    let xen = g
        .registry_create(None, r"SYSTEM\CurrentControlSet\Services\XEN", false)
        .unwrap();
    let unplug = g.registry_create(Some(xen), "Unplug", false).unwrap();
    g.registry_set(unplug, "DISKS", &RegValue::Dword(1))
        .unwrap();
    g.registry_set(
        unplug,
        "List",
        &RegValue::MultiSz(vec!["a".into(), "b".into()]),
    )
    .unwrap();
    let again = g
        .registry_open(None, r"system\currentcontrolset\services\xen\UNPLUG")
        .unwrap();
    assert_eq!(g.registry_query(again, "disks"), Ok(RegValue::Dword(1)));
    g.registry_delete_value(again, "DISKS").unwrap();
    assert_eq!(
        g.registry_query(unplug, "DISKS"),
        Err(STATUS_OBJECT_NAME_NOT_FOUND)
    );
    assert_eq!(g.registry_subkeys(xen), Ok(vec!["Unplug".to_string()]));
    let vol = g.registry_create(Some(xen), "Volatile", true).unwrap();
    g.registry_set(vol, "X", &RegValue::Qword(5)).unwrap();
    for h in [xen, unplug, again, vol] {
        g.registry_close(h);
    }
    assert_eq!(g.open_key_handles(), 0);
    assert_eq!(g.registry_query(xen, "X"), Err(STATUS_INVALID_HANDLE));
    g.reboot_registry();
    let xen = g
        .registry_open(None, r"SYSTEM\CurrentControlSet\Services\XEN")
        .unwrap();
    assert_eq!(g.registry_subkeys(xen), Ok(vec!["Unplug".to_string()]));
}

#[test]
fn physical_reads_cover_ram_and_firmware() {
    let m = Machine::new();
    let g = &*m.guest;
    let p = g.alloc_page().unwrap();
    // SAFETY: our page.
    unsafe { std::ptr::write_volatile((p.va + 4094) as *mut u16, 0x1234) };
    let mut buf = [0u8; 4];
    g.read_physical(p.pfn * 4096 + 4094, &mut buf).unwrap();
    assert_eq!(&buf[..2], &0x1234u16.to_le_bytes());
    g.set_firmware_bytes(0xE0000, b"RSD PTR ".to_vec());
    let mut sig = [0u8; 8];
    g.read_physical(0xE0000, &mut sig).unwrap();
    assert_eq!(&sig, b"RSD PTR ");
    let hole = m.layout().hole.start * 4096;
    assert_eq!(
        g.read_physical(hole, &mut sig),
        Err(STATUS_INVALID_PARAMETER)
    );
    assert_eq!(g.physical_memory_ranges()[0].length, 4096 * 4096);
}

#[test]
fn captured_processors_take_no_interrupts_until_released() {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;
    use xen_include::xen::hvm::hvm_op::XenHvmParam;
    use xen_include::xen::hvm::params::HvmParam;
    use xen_include::xen::xen::{DomId, HypercallCode};
    let m = Machine::new();
    let irqs = Arc::new(AtomicU32::new(0));
    {
        let (irqs, hv) = (irqs.clone(), m.hv.clone());
        m.hv.set_upcall_handler(Some(Arc::new(move |v| {
            // The test's stand-in ISR is no driver: its record is not checked.
            let _host = common::irql::model::HostSide::enter();
            irqs.fetch_add(1, Ordering::SeqCst);
            // Acknowledge by clearing the legacy upcall flag in shared info.
            let si = hv.shared_info_ptr();
            // SAFETY: shared info is a live machine frame; byte 0 of vcpu_info[v] is the flag.
            unsafe { si.add(v as usize * 64).write_volatile(0) };
        })));
    }
    let mut p = XenHvmParam {
        domid: DomId::SELF,
        index: HvmParam::CALLBACK_IRQ,
        value: 28,
        ..Default::default()
    };
    let r = common::hypercall::Hypercall::hypercall(
        &*m.hv,
        HypercallCode::HVM_OP.0,
        [0, &mut p as *mut _ as usize, 0, 0, 0],
    );
    assert_eq!(r, 0);
    let store = m.store();
    let mut seen_inside = None;
    m.guest
        .capture_processors(
            &mut || {
                m.hv.backend_send(0, store.backend_port).unwrap();
                seen_inside = Some(irqs.load(Ordering::SeqCst));
            },
            &mut || {},
        )
        .unwrap();
    assert_eq!(seen_inside, Some(0), "no interrupt while captured");
    assert_eq!(irqs.load(Ordering::SeqCst), 1, "delivered on release");
}
