//! Every export called through its C ABI (the `api::c` function-pointer types) against a
//! core on the simulator, as a C importer would call it.

use core::ffi::{c_char, c_void};
use core::ptr;
use std::sync::Mutex;

use common::os::{Os, RegValue};
use xen_include::api::{self, c, AnsiString, LogDispositionOpaque};
use xen_include::status::*;
use xen_sim::machine::Machine;

use crate::acpi::build;
use crate::driver::Xen;
use crate::exports::*;

fn boot() -> (&'static Machine, &'static Xen<'static>) {
    let m: &'static Machine = Box::leak(Box::new(Machine::new()));
    for (a, b) in build::firmware(2) {
        m.guest.set_firmware_bytes(a, b);
    }
    m.hv.platform().set_protocol_version(1);
    let x: &'static Xen<'static> = Box::leak(Box::new(Xen::new(&*m.hv, &*m.guest, None, None)));
    x.initialize().unwrap();
    (m, x)
}

/// The exports share one published core: tests that publish one run one at a time.
static CORE_LOCK: Mutex<()> = Mutex::new(());

#[test]
fn every_export_through_the_c_abi() {
    let _serial = CORE_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    // Before DllInitialize published a core every export refuses or does nothing.
    install(None);
    let touch: c::XenTouch = XenTouch;
    // SAFETY (whole test): every pointer handed to an export is valid for its C contract.
    unsafe {
        assert_eq!(touch(c"XENBUS".as_ptr(), 0, 0, 0, 0), STATUS_UNSUCCESSFUL);
        SchedYield();
        assert_eq!(UnplugGetRequest(api::UNPLUG_DISKS), 0);
    }

    let (m, x) = boot();
    install(Some(x));
    let (a, b, cc, d) = xenbus_rs::version();
    unsafe {
        assert_eq!(touch(c"XENBUS".as_ptr(), a, b, cc, d), STATUS_SUCCESS);
        assert_eq!(
            touch(ptr::null(), a, b, cc, d + 1),
            STATUS_INCOMPATIBLE_DRIVER_BLOCKED
        );

        // HVM.
        let get: c::HvmGetParam = HvmGetParam;
        let mut v = 0u64;
        assert_eq!(get(1, &mut v), STATUS_SUCCESS);
        assert_eq!(v, m.store().gfn);
        assert_eq!(get(1, ptr::null_mut()), STATUS_INVALID_PARAMETER);
        assert_eq!(HvmSetParam(9999, 1), STATUS_INVALID_PARAMETER);
        assert_eq!(HvmSetEvtchnUpcallVector(0, 0xED), STATUS_SUCCESS);

        // Event channels.
        let mut port = 0u32;
        assert_eq!(EventChannelAllocateUnbound(0, &mut port), STATUS_SUCCESS);
        let (mut dom, mut rport) = (0u16, 0u32);
        assert_eq!(
            EventChannelQueryInterDomain(port, &mut dom, &mut rport),
            STATUS_INVALID_PARAMETER
        );
        let store = m.store();
        assert_eq!(
            EventChannelQueryInterDomain(store.guest_port, &mut dom, &mut rport),
            STATUS_SUCCESS
        );
        assert_eq!((dom, rport), (0, store.backend_port));
        assert_eq!(
            EventChannelQueryInterDomain(store.guest_port, ptr::null_mut(), &mut rport),
            STATUS_INVALID_PARAMETER
        );
        assert_eq!(EventChannelClose(port), STATUS_SUCCESS);
        let mut virq = 0u32;
        assert_eq!(EventChannelBindVirq(0, 0, &mut virq), STATUS_SUCCESS);
        assert_eq!(EventChannelUnmask(virq), STATUS_SUCCESS);
        assert_eq!(
            EventChannelSend(virq),
            STATUS_INVALID_PARAMETER,
            "no sending on a VIRQ"
        );
        assert_eq!(EventChannelSend(store.guest_port), STATUS_SUCCESS);

        // Grant table.
        let mut ver = 0u32;
        assert_eq!(GrantTableGetVersion(&mut ver), STATUS_SUCCESS);
        assert_eq!(ver, 1);
        let mut max = 0u32;
        assert_eq!(
            GrantTableQuerySize(ptr::null_mut(), &mut max),
            STATUS_SUCCESS
        );
        assert!(max > 0);
        assert_eq!(GrantTableCopy(ptr::null_mut(), 1), STATUS_INVALID_PARAMETER);

        // Memory.
        let page = m.guest.alloc_page().unwrap();
        let mut pfns = [page.pfn as usize];
        let mut done = 0u32;
        assert_eq!(
            MemoryDecreaseReservation(0, 1, pfns.as_mut_ptr(), &mut done),
            STATUS_SUCCESS
        );
        assert_eq!(done, 1);
        assert_eq!(
            MemoryPopulatePhysmap(0, 1, pfns.as_mut_ptr(), &mut done),
            STATUS_SUCCESS
        );
        assert_eq!(
            MemoryPopulatePhysmap(0, 1, ptr::null_mut(), &mut done),
            STATUS_INVALID_PARAMETER
        );
        m.guest.free_page(page);

        // Sched, version, vcpu.
        let mut id = 0u32;
        assert_eq!(SchedWatchdog(&mut id, 60), STATUS_SUCCESS);
        assert_ne!(id, 0);
        assert_eq!(SchedWatchdog(&mut id, 0), STATUS_SUCCESS);
        assert_eq!(SchedShutdownCode(3), STATUS_SUCCESS);
        let (mut major, mut minor) = (0u32, 0u32);
        assert_eq!(XenVersion(&mut major, &mut minor), STATUS_SUCCESS);
        assert!(major >= 4);
        let mut extra = [0x55 as c_char; 16];
        assert_eq!(XenVersionExtra(extra.as_mut_ptr()), STATUS_SUCCESS);
        assert_eq!(extra[15], 0);
        let period = 100_000i64;
        assert_eq!(VcpuSetPeriodicTimer(0, &period), STATUS_SUCCESS);
        assert_eq!(VcpuSetPeriodicTimer(0, ptr::null()), STATUS_SUCCESS);

        // System.
        let mut vcpu = 99u32;
        assert_eq!(SystemProcessorVcpuId(1, &mut vcpu), STATUS_SUCCESS);
        assert_eq!(vcpu, 1);
        let mut info: *mut c_void = ptr::null_mut();
        assert_eq!(SystemProcessorVcpuInfo(0, &mut info), STATUS_NOT_SUPPORTED);
        assert_eq!(
            SystemProcessorRegisterVcpuInfo(0, 0),
            STATUS_SUCCESS,
            "disabled: a no-op"
        );
        assert_eq!(SystemMaximumPhysicalAddress(), 4096 * 4096);
        assert_eq!(SystemRealTimeIsUniversal(), 0);
        assert_eq!(SystemSetWatchdog(0), STATUS_INVALID_PARAMETER);
        assert_eq!(SystemSetWatchdog(10), STATUS_SUCCESS);
        SystemStopWatchdog();

        // Module lookup: ntoskrnl is in the guest model's module list.
        let (mut name, mut offset): (*mut c_char, usize) = (ptr::null_mut(), 0);
        ModuleLookup(0xFFFF_F800_0000_1234, &mut name, &mut offset);
        assert_eq!(core::ffi::CStr::from_ptr(name).to_bytes(), b"ntoskrnl.exe");
        assert_eq!(offset, 0x1234);
        ModuleLookup(0x10, &mut name, &mut offset);
        assert!(name.is_null());

        // Unplug.
        assert_eq!(UnplugIncrementValue(api::UNPLUG_DISKS), STATUS_SUCCESS);
        assert_eq!(UnplugDecrementValue(api::UNPLUG_DISKS), STATUS_SUCCESS);
        assert_eq!(
            UnplugDecrementValue(api::UNPLUG_DISKS),
            STATUS_INVALID_PARAMETER
        );
        assert_eq!(UnplugIncrementValue(7), STATUS_INVALID_PARAMETER);
        UnplugDevices();
        assert_eq!(m.hv.platform().driver_identity().0, Some(0xFFFF));

        // Log: printf through the variadic entry, dispositions, levels.
        static SINK: Mutex<Vec<String>> = Mutex::new(Vec::new());
        let mut disposition: *mut LogDispositionOpaque = ptr::null_mut();
        assert_eq!(
            LogAddDisposition(
                api::LOG_LEVEL_WARNING,
                crate::testing::collect_disposition,
                ptr::from_ref(&SINK).cast_mut().cast(),
                &mut disposition
            ),
            STATUS_SUCCESS
        );
        assert!(!disposition.is_null());
        let printf: c::LogPrintf = LogPrintf;
        printf(
            api::LOG_LEVEL_WARNING,
            c"%s=%d %-4s|%08X %ws".as_ptr(),
            c"vif".as_ptr(),
            -3i32,
            c"ab".as_ptr(),
            0xBEEFu32,
            [0x4Fu16, 0x4B, 0].as_ptr(),
        );
        let cch: c::LogCchPrintf = LogCchPrintf;
        cch(api::LOG_LEVEL_WARNING, 3, c"abcdef".as_ptr());
        let slots = [c"va".as_ptr() as u64, 42u64];
        LogVPrintf(
            api::LOG_LEVEL_WARNING,
            c"%s %u".as_ptr(),
            slots.as_ptr() as *mut c_void,
        );
        LogCchVPrintf(
            api::LOG_LEVEL_INFO,
            10,
            c"not for the sink".as_ptr(),
            ptr::null_mut(),
        );
        LogRemoveDisposition(disposition);
        printf(api::LOG_LEVEL_WARNING, c"after removal".as_ptr());
        assert_eq!(
            *SINK.lock().unwrap(),
            vec!["vif=-3   ab|0000BEEF OK", "abc", "va 42"]
        );
        let mut none: *mut LogDispositionOpaque = ptr::dangling_mut();
        assert_eq!(
            LogAddDisposition(
                0,
                crate::testing::collect_disposition,
                ptr::null_mut(),
                &mut none
            ),
            STATUS_SUCCESS
        );
        assert!(none.is_null());
        LogResume();

        let params = m
            .guest
            .registry_create(
                None,
                r"SYSTEM\CurrentControlSet\Services\XEN\Parameters",
                false,
            )
            .unwrap();
        m.guest
            .registry_set(
                params,
                "QemuLogLevel",
                &RegValue::MultiSz(vec!["error".into(), "TRACE".into()]),
            )
            .unwrap();
        let mut level = 0x55u32;
        assert_eq!(
            LogReadLogLevel(params.0, c"QemuLogLevel".as_ptr(), &mut level),
            STATUS_SUCCESS
        );
        assert_eq!(level, api::LOG_LEVEL_ERROR | api::LOG_LEVEL_TRACE);
        level = 0x55;
        assert_eq!(
            LogReadLogLevel(params.0, c"Absent".as_ptr(), &mut level),
            STATUS_OBJECT_NAME_NOT_FOUND
        );
        assert_eq!(level, 0x55, "left alone when absent");
        m.guest
            .registry_set(params, "Bad", &RegValue::Dword(1))
            .unwrap();
        assert_eq!(
            LogReadLogLevel(params.0, c"Bad".as_ptr(), &mut level),
            STATUS_INVALID_PARAMETER
        );
        assert_eq!(level, 0);

        // Config.
        m.guest
            .registry_create(None, crate::config::ACTIVE_PATH, false)
            .map(|k| m.guest.registry_close(k))
            .unwrap();
        assert_eq!(
            ConfigSetActive(
                c"PCI\\VEN_5853&DEV_0001".as_ptr(),
                c"3&1".as_ptr(),
                c"slot 3".as_ptr()
            ),
            STATUS_SUCCESS
        );
        let mut value: *mut c_char = ptr::null_mut();
        assert_eq!(
            ConfigGetActive(c"LocationInformation".as_ptr(), &mut value),
            STATUS_SUCCESS
        );
        assert_eq!(core::ffi::CStr::from_ptr(value).to_bytes(), b"slot 3");
        ConfigFreeActive(value);
        assert_eq!(
            ConfigUpdateActive(
                c"PCI\\VEN_5853&DEV_0001".as_ptr(),
                c"x".as_ptr(),
                c"y".as_ptr()
            ),
            STATUS_SUCCESS
        );
        assert_eq!(ConfigClearActive(), STATUS_SUCCESS);
        assert_eq!(
            ConfigGetActive(c"DeviceID".as_ptr(), &mut value),
            STATUS_OBJECT_NAME_NOT_FOUND
        );
        assert_eq!(
            ConfigSetActive(ptr::null(), c"a".as_ptr(), c"b".as_ptr()),
            STATUS_INVALID_PARAMETER
        );
        m.guest
            .registry_set(
                params,
                "RequestKey",
                &RegValue::Sz(r"SYSTEM\CurrentControlSet\Services\xenbus_monitor\Request".into()),
            )
            .unwrap();
        assert_eq!(
            ConfigRequestReboot(params.0, c"XEN".as_ptr()),
            STATUS_SUCCESS
        );
        m.guest.registry_close(params);
        let control = m
            .guest
            .registry_create(None, r"SYSTEM\CurrentControlSet\Control", false)
            .unwrap();
        m.guest
            .registry_set(
                control,
                "SystemStartOptions",
                &RegValue::Sz(" XEN:DBG_PRINT=ON XEN:BOOT_EMULATED=TRUE".into()),
            )
            .unwrap();
        m.guest.registry_close(control);
        let mut option: *mut AnsiString = ptr::null_mut();
        assert_eq!(
            ConfigQuerySystemStartOption(c"XEN:BOOT".as_ptr(), &mut option),
            STATUS_SUCCESS
        );
        let first = option.read();
        assert_eq!(
            core::slice::from_raw_parts(first.buffer.cast::<u8>(), usize::from(first.length)),
            b"XEN:BOOT_EMULATED=TRUE"
        );
        assert!(
            option.add(1).read().buffer.is_null(),
            "terminated by an empty entry"
        );
        ConfigFreeSzValue(option);
        assert_eq!(
            ConfigQuerySystemStartOption(c"SAFEBOOT".as_ptr(), &mut option),
            STATUS_OBJECT_NAME_NOT_FOUND
        );

        // Filters.
        FiltersInstall();
        FiltersUninstall();
    }
    dll_unload();
    assert!(m.guest.registered_callbacks().is_empty());
    // After DllUnload the exports refuse again.
    unsafe {
        assert_eq!(touch(c"XENBUS".as_ptr(), a, b, cc, d), STATUS_UNSUCCESSFUL);
    }
}

/// DllUnload while kernel callbacks keep arriving on other processors (threads): the
/// core is freed only after the callbacks inside it left, and later ones return at once.
#[test]
fn dll_unload_waits_for_callbacks_on_other_processors() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let _serial = CORE_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let (m, x) = boot();
    install(Some(x));
    let stop = AtomicBool::new(false);
    let delivered = AtomicU64::new(0);
    std::thread::scope(|s| {
        for cpu in 0..2 {
            let (stop, delivered) = (&stop, &delivered);
            s.spawn(move || {
                let sink = sink().unwrap();
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    sink.debug_print(3, format!("xen|cpu{cpu} line {n}\n").as_bytes());
                    sink.image_loaded(&common::os::ModuleInfo {
                        base: 0x1_0000_0000 + (n as usize % 64) * 0x1000,
                        size: 0x1000,
                        name: format!("drv{n}.sys"),
                    });
                    n += 1;
                    delivered.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        let t0 = std::time::Instant::now();
        while delivered.load(Ordering::Relaxed) < 50 {
            assert!(t0.elapsed().as_secs() < 30, "callbacks never ran");
            std::thread::yield_now();
        }
        // The core `boot` leaked is the one DllUnload frees.
        dll_unload();
        let after = delivered.load(Ordering::Relaxed);
        while delivered.load(Ordering::Relaxed) < after + 50 {
            assert!(t0.elapsed().as_secs() < 60, "callbacks stopped");
            std::thread::yield_now();
        }
        stop.store(true, Ordering::Relaxed);
    });
    // Unloaded: the callbacks were deregistered, and the sink no longer reaches a core.
    assert!(m.guest.registered_callbacks().is_empty());
    assert_eq!(m.guest.open_key_handles(), 0);
    // SAFETY: no pointers involved; XenTouch with no core refuses.
    assert_eq!(
        unsafe { XenTouch(c"XENBUS".as_ptr(), 0, 0, 0, 0) },
        STATUS_UNSUCCESSFUL
    );
}
