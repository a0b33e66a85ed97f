//! xen.sys on the simulator: the Windows guest model (registry, firmware, processors,
//! callbacks) and the hypervisor model (hypercalls decoded and checked, platform ports).

use std::sync::Arc;

use common::os::{KernelCallback, Os, RegValue};
use xen_include::api::*;
use xen_include::status::*;
use xen_sim::hv::{CpuVendor, Errno, HvConfig, HypercallFault};
use xen_sim::machine::{Machine, MachineConfig};

use crate::acpi::build;
use crate::driver::Xen;
use crate::hypercall::Instruction;
use crate::registry::SERVICE_PATH;

const HKLM: &str = r"\Registry\Machine";

fn hklm(path: &str) -> String {
    format!("{HKLM}\\{path}")
}

/// A machine with firmware tables mapping APIC ID n → ACPI Processor ID n.
fn machine_with(cfg: HvConfig) -> Machine {
    let vcpus = cfg.vcpus;
    let m = Machine::with_config(MachineConfig {
        hv: cfg,
        ..MachineConfig::default()
    });
    let cpus: Vec<(u8, u8)> = (0..vcpus as u8).map(|i| (i, i)).collect();
    install_firmware(&m, &build::madt(&cpus));
    m
}

fn install_firmware(m: &Machine, madt: &[u8]) {
    for (a, b) in build::firmware(0) {
        m.guest.set_firmware_bytes(a, b);
    }
    m.guest
        .set_firmware_bytes(build::MADT_ADDRESS, madt.to_vec());
}

fn machine() -> Machine {
    machine_with(HvConfig::default())
}

fn core(m: &Machine) -> Xen<'_> {
    Xen::new(&*m.hv, &*m.guest, None, None)
}

fn set(m: &Machine, path: &str, name: &str, v: RegValue) {
    let mut r = m.guest.registry();
    r.create_key(&hklm(path), false).unwrap();
    r.set_value(&hklm(path), name, v).unwrap();
}

fn get(m: &Machine, path: &str, name: &str) -> Option<RegValue> {
    m.guest.registry().query_value(&hklm(path), name).ok()
}

#[test]
fn boots_on_the_simulator_and_unloads_cleanly() {
    let m = machine();
    let xen = core(&m);
    xen.initialize().unwrap();
    assert_eq!(xen.discovery().unwrap().instruction, Instruction::Vmcall);
    assert_eq!(xen.discovery().unwrap().base, 0x4000_0000);
    assert!(m
        .guest
        .registry()
        .is_volatile(&hklm(&format!("{SERVICE_PATH}\\Memory")))
        .unwrap());
    assert!(!m
        .guest
        .registry()
        .is_volatile(&hklm(&format!("{SERVICE_PATH}\\Unplug")))
        .unwrap());
    assert!(!m
        .guest
        .registry()
        .is_volatile(&hklm(&format!("{SERVICE_PATH}\\Parameters")))
        .unwrap());
    let callbacks = m.guest.registered_callbacks();
    for k in [
        KernelCallback::BugCheck,
        KernelCallback::ImageLoad,
        KernelCallback::ProcessNotify,
        KernelCallback::DebugPrint,
    ] {
        assert!(callbacks.contains(&k), "{k:?}");
    }
    for cpu in 0..2 {
        assert_eq!(xen.system_processor_vcpu_id(cpu), Ok(cpu));
    }
    assert_eq!(xen.system_processor_vcpu_id(2), Err(STATUS_UNSUCCESSFUL));
    // 2 vCPUs ≤ 32: vcpu_info stays in shared info by default.
    assert_eq!(xen.system_processor_vcpu_info(0), Err(STATUS_NOT_SUPPORTED));
    assert_eq!(xen.system_maximum_physical_address(), 4096 * 4096);
    assert!(xen.module_lookup(0xFFFF_F800_0000_1000).is_some());
    xen.unload();
    assert_eq!(m.guest.open_key_handles(), 0);
    assert!(m.guest.registered_callbacks().is_empty());
}

#[test]
fn viridian_amd_and_foreign_vendors() {
    let m = machine_with(HvConfig {
        viridian: true,
        vendor: CpuVendor::Amd,
        ..HvConfig::default()
    });
    let xen = core(&m);
    xen.initialize().unwrap();
    let d = xen.discovery().unwrap();
    assert_eq!((d.base, d.instruction), (0x4000_0100, Instruction::Vmmcall));
    assert!(
        m.guest
            .log()
            .iter()
            .any(|l| l.starts_with("xen|VIRIDIAN: max leaf 40000006")),
        "{:?}",
        m.guest.log()
    );
    xen.unload();

    let m = machine_with(HvConfig {
        vendor: CpuVendor::Other("VIA VIA VIA ".into()),
        ..HvConfig::default()
    });
    let xen = core(&m);
    assert_eq!(xen.initialize(), Err(STATUS_NOT_SUPPORTED));
    assert_eq!(m.guest.open_key_handles(), 0);
    assert!(m.guest.registered_callbacks().is_empty());
}

#[test]
fn missing_madt_and_failing_steps_unwind_on_the_guest_model() {
    let m = machine();
    m.guest
        .set_firmware_bytes(0xFC00_0000, build::xsdt(&[0xFC00_2000]));
    let xen = core(&m);
    assert_eq!(xen.initialize(), Err(STATUS_UNSUCCESSFUL));
    assert_eq!(m.guest.open_key_handles(), 0);
    assert!(m.guest.registered_callbacks().is_empty());
    assert!(m
        .guest
        .log()
        .iter()
        .any(|l| l.contains("MADT: TableNotFound")));
    // A MADT that lacks CPU 1's APIC ID: upstream BUGs, we fail cleanly.
    let m = machine();
    install_firmware(&m, &build::madt(&[(0, 0)]));
    let xen = core(&m);
    assert_eq!(xen.initialize(), Err(STATUS_UNSUCCESSFUL));
    assert_eq!(m.guest.open_key_handles(), 0);
}

#[test]
fn vcpu_info_registration_and_reuse_across_reload() {
    let m = machine();
    set(
        &m,
        &format!("{SERVICE_PATH}\\Parameters"),
        "RegisterVcpuInfo",
        RegValue::Dword(1),
    );
    let xen = core(&m);
    xen.initialize().unwrap();
    let reg = |m: &Machine| m.hv.call_count(24, 10);
    assert_eq!(reg(&m), 2, "one VCPUOP_register_vcpu_info per CPU");
    let mut slots = vec![];
    for cpu in 0..2u32 {
        let va = xen.system_processor_vcpu_info(cpu).unwrap();
        let (gfn, offset) = m.hv.va_to_gfn(va).unwrap();
        assert_eq!(offset, cpu as usize * 64);
        slots.push((va, gfn, offset));
    }
    let pages_before = (
        get(&m, &format!("{SERVICE_PATH}\\Memory"), "VCPU_INFO_0"),
        get(&m, &format!("{SERVICE_PATH}\\Memory"), "VCPU_INFO_1"),
    );
    assert!(matches!(pages_before.0, Some(RegValue::Binary(ref b)) if b.len() == 8));
    match get(
        &m,
        &format!("{SERVICE_PATH}\\Memory"),
        crate::system::VCPU_INFO_REGISTERED,
    ) {
        Some(RegValue::Binary(flags)) => assert_eq!(&flags[..3], &[1, 1, 0]),
        other => panic!("registered flags not persisted: {other:?}"),
    }
    xen.unload();

    // Reload in the same boot: same pages, no second registration (Xen would refuse it).
    let xen = core(&m);
    xen.initialize().unwrap();
    assert_eq!(reg(&m), 2);
    for (cpu, slot) in slots.iter().enumerate() {
        assert_eq!(xen.system_processor_vcpu_info(cpu as u32).unwrap(), slot.0);
    }
    assert_eq!(
        (
            get(&m, &format!("{SERVICE_PATH}\\Memory"), "VCPU_INFO_0"),
            get(&m, &format!("{SERVICE_PATH}\\Memory"), "VCPU_INFO_1")
        ),
        pages_before
    );
    // Force re-registers (after resume the hypervisor forgot): the sim refuses a second
    // registration of a live vcpu_info with EINVAL, which the export reports.
    assert_eq!(
        xenbus_sim_run_on(1, || xen.system_processor_register_vcpu_info(1, true)),
        Err(STATUS_INVALID_PARAMETER)
    );
    xen.unload();
}

fn xenbus_sim_run_on<R>(cpu: u32, f: impl FnOnce() -> R) -> R {
    xen_sim::guest::run_on(cpu, f)
}

#[test]
fn unplug_protocol_on_the_platform_device() {
    let m = machine();
    m.hv.platform().set_protocol_version(1);
    set(
        &m,
        &format!("{SERVICE_PATH}\\ForceUnplug"),
        "DISKS",
        RegValue::Dword(1),
    );
    set(
        &m,
        &format!("{SERVICE_PATH}\\Unplug"),
        "NICS",
        RegValue::Dword(1),
    );
    m.guest
        .registry()
        .create_key(
            &hklm(r"SYSTEM\CurrentControlSet\Enum\XENBUS\VEN_XP0001&DEV_VIF&REV_09"),
            false,
        )
        .unwrap();
    let xen = core(&m);
    xen.initialize().unwrap();
    assert!(xen.unplug_get_request(UNPLUG_DISKS));
    assert!(xen.unplug_get_request(UNPLUG_NICS));
    assert_eq!(
        get(&m, &format!("{SERVICE_PATH}\\Unplug"), "NICS"),
        None,
        "one-shot value consumed"
    );
    xen.unplug_devices();
    {
        let p = m.hv.platform();
        assert_eq!(p.unplug_writes(), &[0x0009, 0x0002]);
        assert_eq!(
            p.driver_identity(),
            (Some(0xFFFF), Some(crate::unplug::build_number()))
        );
        assert!(
            p.log_lines()
                .iter()
                .any(|l| l == "UNPLUG: PRE-AMBLE (DRIVERS NOT BLACKLISTED)"),
            "{:?}",
            p.log_lines()
        );
    }
    // PV drivers re-request for the next boot.
    xen.unplug_increment_value(UNPLUG_NICS).unwrap();
    assert_eq!(
        get(&m, &format!("{SERVICE_PATH}\\Unplug"), "NICS"),
        Some(RegValue::Dword(1))
    );
    xen.unplug_decrement_value(UNPLUG_NICS).unwrap();
    assert_eq!(
        xen.unplug_decrement_value(UNPLUG_NICS),
        Err(STATUS_INVALID_PARAMETER)
    );
    xen.unload();

    // Blacklisted by QEMU: logged, still writes the requested bits.
    let m = machine();
    m.hv.platform().set_protocol_version(1);
    m.hv.platform().set_blacklist(Some(Arc::new(|_, _| true)));
    set(
        &m,
        &format!("{SERVICE_PATH}\\ForceUnplug"),
        "NICS",
        RegValue::Dword(1),
    );
    let xen = core(&m);
    xen.initialize().unwrap();
    xen.unplug_devices();
    assert!(m
        .hv
        .platform()
        .log_lines()
        .iter()
        .any(|l| l.contains("(DRIVERS BLACKLISTED)")));
    xen.unload();
}

#[test]
fn touch_banner_and_log_ports() {
    let m = machine();
    set(
        &m,
        &format!("{SERVICE_PATH}\\Parameters"),
        "XenLogLevel",
        RegValue::MultiSz(vec!["INFO".into()]),
    );
    let xen = core(&m);
    xen.initialize().unwrap();
    let (a, b, c, d) = xenbus_rs::version();
    xen.xen_touch(c"XENBUS", a, b, c, d).unwrap();
    let lines = m.hv.platform().log_lines().to_vec();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("XEN: 4.")
                && l.ends_with("(__XEN_INTERFACE_VERSION__ = 00040800)")),
        "{lines:?}"
    );
    assert!(m
        .hv
        .platform()
        .debug_port_output()
        .contains("__XEN_INTERFACE_VERSION__"));
    assert_eq!(
        xen.xen_touch(c"XENVIF", a + 1, b, c, d),
        Err(STATUS_INCOMPATIBLE_DRIVER_BLOCKED)
    );
    xen.unload();
}

#[test]
fn hypercall_exports_against_the_hypervisor_model() {
    let m = machine();
    let xen = core(&m);
    xen.initialize().unwrap();
    // Versions.
    let (major, minor) = xen.xen_version().unwrap();
    assert_eq!(
        (major, minor),
        (
            u32::from(HvConfig::default().xen_version.0),
            u32::from(HvConfig::default().xen_version.1)
        )
    );
    assert_eq!(xen.xen_version_extra().unwrap()[15], 0);
    // HVM params: the toolstack's store ring.
    let store = m.store();
    assert_eq!(xen.hvm_get_param(1), Ok(store.gfn));
    assert_eq!(xen.hvm_get_param(2), Ok(u64::from(store.guest_port)));
    // Event channels: the store port is interdomain to dom0.
    assert_eq!(
        xen.event_channel_query_inter_domain(store.guest_port),
        Ok((0, store.backend_port))
    );
    let port = xen.event_channel_allocate_unbound(0).unwrap();
    assert_eq!(
        xen.event_channel_query_inter_domain(port),
        Err(STATUS_INVALID_PARAMETER)
    );
    xen.event_channel_send(store.guest_port).unwrap();
    xen.event_channel_close(port).unwrap();
    assert!(xen.event_channel_close(port).is_err());
    let virq = xen.event_channel_bind_virq(0, 0).unwrap();
    xen.event_channel_unmask(virq).unwrap();
    // Grant table.
    assert_eq!(xen.grant_table_get_version(), Ok(1));
    let (cur, max) = xen.grant_table_query_size().unwrap();
    assert!(cur <= max && max == HvConfig::default().max_grant_frames);
    // Errno mapping through the model's fault injection.
    m.hv.inject_hypercall_fault(HypercallFault {
        op: 32,
        sub: Some(4),
        nth: 1,
        count: 1,
        errno: Errno::EAGAIN,
    });
    assert_eq!(xen.event_channel_send(store.guest_port), Err(STATUS_RETRY));
    // Sched: crash code and the watchdog.
    xen.sched_shutdown_code(3).unwrap();
    assert_eq!(m.hv.shutdown_state().code.map(|r| r.0), Some(3));
    assert_eq!(xen.system_set_watchdog(0), Err(STATUS_INVALID_PARAMETER));
    xen.system_set_watchdog(30).unwrap();
    xen.system_set_watchdog(30).unwrap();
    xen.system_stop_watchdog();
    let yields = m.hv.shutdown_state().yields;
    xen.sched_yield();
    assert_eq!(m.hv.shutdown_state().yields, yields + 1);
    // Periodic timer: 10 ms in 100 ns units.
    xen.vcpu_set_periodic_timer(0, Some(100_000)).unwrap();
    xen.vcpu_set_periodic_timer(0, None).unwrap();
    assert_eq!(
        xen.vcpu_set_periodic_timer(0, Some(1)),
        Err(STATUS_INVALID_PARAMETER),
        "below 1 ms"
    );
    // Upcall vector.
    xen.hvm_set_evtchn_upcall_vector(0, 0xED).unwrap();
    xen.unload();
}

#[test]
fn memory_exports_against_the_hypervisor_model() {
    let m = machine();
    let xen = core(&m);
    xen.initialize().unwrap();
    let page = m.guest.alloc_page().unwrap();
    let mut pfns = [page.pfn as usize];
    assert_eq!(
        xen.memory_decrease_reservation(PAGE_ORDER_4K, &mut pfns),
        Ok(1)
    );
    assert_eq!(xen.memory_populate_physmap(PAGE_ORDER_4K, &mut pfns), Ok(1));
    let hole = m.layout().hole.start as usize;
    xen.memory_add_to_physmap(hole, 1, 0).unwrap();
    xen.memory_remove_from_physmap(hole).unwrap();
    m.guest.free_page(page);
    assert!(m.guest.violations().is_empty());
    xen.unload();
}

#[test]
fn config_and_filters_on_the_guest_registry() {
    let m = machine();
    m.guest
        .registry()
        .create_key(&hklm(crate::config::ACTIVE_PATH), false)
        .unwrap();
    for class in [
        crate::filters::DEVCLASS_SYSTEM,
        crate::filters::DEVCLASS_HDC,
    ] {
        m.guest
            .registry()
            .create_key(
                &hklm(&format!("{}\\{class}", crate::filters::CLASS_PATH)),
                false,
            )
            .unwrap();
    }
    set(
        &m,
        r"SYSTEM\CurrentControlSet\Control",
        "SystemStartOptions",
        RegValue::Sz(" NOEXECUTE=OPTIN XEN:BOOT_EMULATED=TRUE".into()),
    );
    let xen = Arc::new(core(&m));
    xen.initialize().unwrap();
    xen.config_set_active(
        c"PCI\\VEN_5853&DEV_0001&SUBSYS_00015853&REV_01",
        c"3&267a616a&0&18",
        c"PCI bus 0, device 3",
    )
    .unwrap();
    let mut buf = [0u8; 128];
    let n = xen.config_get_active(c"InstanceID", &mut buf).unwrap();
    assert_eq!(&buf[..n], b"3&267a616a&0&18");
    let n = xen
        .config_query_system_start_option(c"XEN:BOOT_EMULATED=", &mut buf)
        .unwrap();
    assert_eq!(&buf[..n], b"XEN:BOOT_EMULATED=TRUE");
    let mut small = [0u8; 4];
    assert_eq!(
        xen.config_get_active(c"InstanceID", &mut small),
        Err(STATUS_BUFFER_OVERFLOW)
    );
    xen.config_clear_active().unwrap();
    assert_eq!(
        xen.config_get_active(c"DeviceID", &mut buf),
        Err(STATUS_OBJECT_NAME_NOT_FOUND)
    );
    xen.filters_install();
    xen.filters_install();
    let path = format!(
        "{}\\{}",
        crate::filters::CLASS_PATH,
        crate::filters::DEVCLASS_HDC
    );
    assert_eq!(
        get(&m, &path, "UpperFilters"),
        Some(RegValue::MultiSz(vec!["XENFILT".into()]))
    );
    xen.filters_uninstall();
    assert_eq!(
        get(&m, &path, "UpperFilters"),
        Some(RegValue::MultiSz(vec![]))
    );
    // Reboot request through the monitor's RequestKey: the module subkey is volatile.
    set(
        &m,
        r"SYSTEM\CurrentControlSet\Services\xenbus\Parameters",
        "RequestKey",
        RegValue::Sz(r"SYSTEM\CurrentControlSet\Services\xenbus_monitor\Request".into()),
    );
    let params = m
        .guest
        .registry_open(None, r"SYSTEM\CurrentControlSet\Services\xenbus\Parameters")
        .unwrap();
    xen.config_request_reboot(params, c"XENBUS").unwrap();
    m.guest.registry_close(params);
    assert!(m
        .guest
        .registry()
        .is_volatile(&hklm(
            r"SYSTEM\CurrentControlSet\Services\xenbus_monitor\Request\XENBUS"
        ))
        .unwrap());
    m.guest.reboot_registry();
    assert!(!m.guest.registry().key_exists(&hklm(
        r"SYSTEM\CurrentControlSet\Services\xenbus_monitor\Request\XENBUS"
    )));
    xen.unload();
}

#[test]
fn processor_hot_add_maps_and_registers_like_boot_processors() {
    use common::os::CallbackSink;
    let m = machine_with(HvConfig {
        vcpus: 4,
        ..HvConfig::default()
    });
    set(
        &m,
        &format!("{SERVICE_PATH}\\Parameters"),
        "RegisterVcpuInfo",
        RegValue::Dword(1),
    );
    m.guest.set_active_processors(2);
    let xen = core(&m);
    xen.initialize().unwrap();
    let callbacks = m.guest.registered_callbacks();
    assert!(callbacks.contains(&KernelCallback::ProcessorChange));
    assert!(callbacks.contains(&KernelCallback::PowerState));
    let reg = |m: &Machine| m.hv.call_count(24, 10);
    assert_eq!(reg(&m), 2);
    // Room for 4 processors, 2 started.
    assert_eq!(xen.system_processor_vcpu_id(2), Err(STATUS_NOT_SUPPORTED));
    assert_eq!(xen.system_processor_vcpu_id(4), Err(STATUS_UNSUCCESSFUL));

    assert_eq!(m.guest.add_processor(), Some(2));
    CallbackSink::processor_added(&xen, 2);
    assert_eq!(xen.system_processor_vcpu_id(2), Ok(2));
    assert_eq!(reg(&m), 3, "the new CPU registered its vcpu_info");
    let va = xen.system_processor_vcpu_info(2).unwrap();
    assert_eq!(m.hv.va_to_gfn(va).unwrap().1, 2 * 64);
    assert!(m
        .guest
        .log()
        .iter()
        .any(|l| l == "xen|CPU 2: APIC ID: 02 PROCESSOR ID: 02"));
    match get(
        &m,
        &format!("{SERVICE_PATH}\\Memory"),
        crate::system::VCPU_INFO_REGISTERED,
    ) {
        Some(RegValue::Binary(flags)) => assert_eq!(&flags[..4], &[1, 1, 1, 0]),
        other => panic!("registered flags not persisted: {other:?}"),
    }
    // A repeated notification changes nothing.
    CallbackSink::processor_added(&xen, 2);
    assert_eq!(reg(&m), 3);

    // The next one fails to register (the hypervisor refuses): logged, not fatal, and
    // the processor stays unusable for Xen callers.
    m.hv.inject_hypercall_fault(HypercallFault {
        op: 24,
        sub: Some(10),
        nth: 1,
        count: 1,
        errno: Errno::EINVAL,
    });
    assert_eq!(m.guest.add_processor(), Some(3));
    CallbackSink::processor_added(&xen, 3);
    assert_eq!(xen.system_processor_vcpu_id(3), Err(STATUS_NOT_SUPPORTED));
    assert!(
        m.guest
            .log()
            .iter()
            .any(|l| l == "xen|CPU 3: ADD failed (c000000d)"),
        "{:?}",
        m.guest.log()
    );
    // A retry after the fault cleared succeeds.
    CallbackSink::processor_added(&xen, 3);
    assert_eq!(xen.system_processor_vcpu_id(3), Ok(3));
    // Beyond the maximum: logged, nothing else.
    CallbackSink::processor_added(&xen, 9);
    assert!(m
        .guest
        .log()
        .iter()
        .any(|l| l == "xen|CPU 9: ADDED BEYOND THE MAXIMUM (4)"));
    xen.unload();
    assert!(m.guest.registered_callbacks().is_empty());
    // 2 boot + CPU 2 + CPU 3 refused + CPU 3 retried; after unload a late notification
    // is ignored.
    assert_eq!(reg(&m), 5);
    CallbackSink::processor_added(&xen, 3);
    assert_eq!(reg(&m), 5);
}

#[test]
fn os_version_and_s0_transitions_are_logged() {
    use common::os::{CallbackSink, OsVersion};
    let m = machine();
    m.guest.set_os_version(Some(OsVersion {
        major: 6,
        minor: 1,
        build: 7601,
        platform_id: 2,
        service_pack: "Service Pack 1".into(),
        service_pack_major: 1,
        service_pack_minor: 0,
        suite_mask: 0x0112,
        product_type: 1,
    }));
    let xen = core(&m);
    xen.initialize().unwrap();
    let log = m.guest.take_log();
    let at = log
        .iter()
        .position(|l| l.starts_with("xen|KERNEL:"))
        .expect("version logged");
    assert_eq!(
        log[at..at + 7],
        [
            "xen|KERNEL: 6.1 (BUILD 7601) PLATFORM WIN32_NT (x64)",
            "xen|SP: 1.0 (Service Pack 1)",
            "xen|SUITES:",
            "xen|- ENTERPRISE",
            "xen|- TERMINAL",
            "xen|- SINGLEUSERTS",
            "xen|TYPE: WORKSTATION",
        ]
    );
    CallbackSink::system_state(&xen, false);
    CallbackSink::system_state(&xen, true);
    assert_eq!(m.guest.take_log(), ["xen|<- S0", "xen|-> S0"]);
    xen.unload();

    // Without a version (RtlGetVersion failing) initialisation still succeeds.
    let m = machine();
    m.guest.set_os_version(None);
    let xen = core(&m);
    xen.initialize().unwrap();
    assert!(m
        .guest
        .log()
        .iter()
        .any(|l| l == "xen|KERNEL: VERSION UNKNOWN"));
    xen.unload();
}
