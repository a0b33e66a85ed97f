//! Boot scenarios of xenfilt on the simulated platform: the PnP view of the simulator's
//! PCI and IDE devices drives the filter exactly as Windows' PnP manager would, the real
//! `xen` core issues the unplug through the platform ports, and EMULATED is asked through
//! its C vtable before and after.

/// Heap use above DISPATCH_LEVEL panics, as pool use there bug-checks a real kernel.
#[global_allocator]
static ALLOCATOR: common::irql::model::CheckingAllocator =
    common::irql::model::CheckingAllocator::SYSTEM;

use common::os::RegValue;
use xen::driver::Xen;
use xen_include::api::XenApi;
use xen_include::interfaces::emulated::EmulatedActivationStatus;
use xen_sim::machine::Machine;
use xen_sim::platform::{Device, DeviceKind};
use xen_sim::pnp::{ide_children, pci_children};
use xenfilt::driver::FilterState;
use xenfilt::filter::{BusHandle, Filter};
use xenfilt::harness::{is_device_present, is_disk_present, relations};
use xenfilt::interface::EmulatedProvider;
use xenfilt::pdo::IdentityQuery;

/// Registry paths as the guest model stores them (under `\Registry\Machine`).
const PARAMETERS: &str = r"\Registry\Machine\SYSTEM\CurrentControlSet\Services\xenfilt\Parameters";
const XEN: &str = r"\Registry\Machine\SYSTEM\CurrentControlSet\Services\XEN";
const ENUM_XENBUS: &str = r"\Registry\Machine\SYSTEM\CurrentControlSet\Enum\XENBUS";

struct Boot {
    machine: Machine,
}

impl Boot {
    fn new() -> Self {
        let machine = Machine::new();
        {
            let mut registry = machine.guest.registry();
            registry.create_key(PARAMETERS, false).expect("key");
            registry
                .set_value(PARAMETERS, "*PNP0A03", RegValue::Sz("PCI".into()))
                .expect("value");
            registry
                .set_value(
                    PARAMETERS,
                    "Internal_IDE_Channel",
                    RegValue::Sz("IDE".into()),
                )
                .expect("value");
        }
        Self { machine }
    }

    /// PV drivers asked for disk and NIC unplug in the previous boot.
    fn request_unplug(&self) {
        let mut registry = self.machine.guest.registry();
        registry
            .create_key(&format!("{XEN}\\Unplug"), false)
            .expect("key");
        registry
            .set_value(&format!("{XEN}\\Unplug"), "DISKS", RegValue::Dword(1))
            .expect("value");
        registry
            .set_value(&format!("{XEN}\\Unplug"), "NICS", RegValue::Dword(1))
            .expect("value");
        for class in ["VBD", "VIF"] {
            registry
                .create_key(&format!("{ENUM_XENBUS}\\VEN_XP&DEV_{class}\\_"), false)
                .expect("key");
        }
    }

    fn record_active(&self, device_id: &str, instance_id: &str, location: &str) {
        let mut registry = self.machine.guest.registry();
        registry
            .set_value(PARAMETERS, "ActiveDeviceID", RegValue::Sz(device_id.into()))
            .expect("value");
        registry
            .set_value(
                PARAMETERS,
                "ActiveInstanceID",
                RegValue::Sz(instance_id.into()),
            )
            .expect("value");
        registry
            .set_value(
                PARAMETERS,
                "ActiveLocationInformation",
                RegValue::Sz(location.into()),
            )
            .expect("value");
    }

    fn parameter(&self) -> impl FnMut(&str) -> Option<String> + '_ {
        move |name| match self.machine.guest.registry().query_value(PARAMETERS, name) {
            Ok(RegValue::Sz(data)) => Some(data),
            _ => None,
        }
    }

    fn devices(&self) -> Vec<Device> {
        self.machine.hv.platform().devices().to_vec()
    }

    fn unplug_writes(&self) -> Vec<u16> {
        self.machine.hv.platform().unplug_writes().to_vec()
    }
}

const PLATFORM_ID: &str = "PCI\\VEN_5853&DEV_0001&SUBSYS_00015853&REV_01";

/// The buses a default HVM guest filters: the PCI root bus and two IDE channels.
fn attach(filter: &mut Filter<'_>, boot: &Boot) -> (BusHandle, BusHandle, BusHandle) {
    let pci = filter
        .add_device(["ACPI\\PNP0A03"], ["*PNP0A03"], boot.parameter())
        .expect("PCI root bus filtered");
    let ide0 = filter
        .add_device(["Internal_IDE_Channel"], [], boot.parameter())
        .expect("IDE channel filtered");
    let ide1 = filter
        .add_device(["Internal_IDE_Channel"], [], boot.parameter())
        .expect("IDE channel filtered");
    assert!(filter
        .add_device(
            ["PCI\\VEN_8086&DEV_7010"],
            ["PCI\\CC_0101"],
            boot.parameter()
        )
        .is_none());
    (pci, ide0, ide1)
}

fn enumerate(
    filter: &mut Filter<'_>,
    boot: &Boot,
    buses: (BusHandle, BusHandle, BusHandle),
) -> Vec<Vec<usize>> {
    let devices = boot.devices();
    let mut reported = Vec::new();
    for (bus, children) in [
        (buses.0, pci_children(&devices)),
        (buses.1, ide_children(&devices, 0)),
        (buses.2, ide_children(&devices, 1)),
    ] {
        let answer = relations(&children, |infos| {
            filter.bus_relations(bus, infos, |_| None)
        })
        .expect("known bus");
        reported.push(answer.report);
    }
    reported
}

fn disk_present(filter: &Filter<'_>, index: u32) -> bool {
    is_disk_present(filter.emulated, index).expect("EMULATED v3")
}

fn device_present(filter: &Filter<'_>, device_id: &str) -> Option<EmulatedActivationStatus> {
    is_device_present(filter.emulated, device_id).expect("EMULATED v3")
}

fn xen_for(boot: &Boot) -> Xen<'_> {
    let xen = Xen::new(&*boot.machine.hv, &*boot.machine.guest, None, None);
    xen.initialize()
        .expect("xen.sys initialises on the simulated platform");
    xen
}

#[test]
fn emulated_children_stay_hidden_until_unplugged_then_survivors_are_reported() {
    let boot = Boot::new();
    boot.request_unplug();
    boot.record_active(
        PLATFORM_ID,
        "3&267a616a&0&10",
        "PCI bus 0, device 2, function 0",
    );
    let xen = xen_for(&boot);
    let emulated = EmulatedProvider::new();
    let mut filter = Filter::new(&xen, &emulated, false);
    let buses = attach(&mut filter, &boot);

    // First pass: every bus enumerates, nothing is reported, and the last bus triggers the
    // unplug through the platform ports.
    let devices = boot.devices();
    let pci = relations(&pci_children(&devices), |infos| {
        filter.bus_relations(buses.0, infos, |_| None)
    })
    .expect("bus");
    assert!(pci.report.is_empty() && pci.invalidate && !pci.unplugged);
    assert_eq!(filter.state(), FilterState::Enabled);
    // EMULATED already knows the devices while they are hidden.
    assert_eq!(
        device_present(&filter, "PCI\\VEN_10EC&DEV_8139&SUBSYS_00000000&REV_20"),
        Some(EmulatedActivationStatus::ACTIVATE_NEUTRAL)
    );
    assert!(
        disk_present(&filter, 0),
        "the NVMe controller aliases every PV disk"
    );
    let ide0 = relations(&ide_children(&devices, 0), |infos| {
        filter.bus_relations(buses.1, infos, |_| None)
    })
    .expect("bus");
    assert!(ide0.report.is_empty() && !ide0.unplugged);
    assert!(
        boot.unplug_writes().is_empty(),
        "no unplug before every bus enumerated"
    );
    let ide1 = relations(&ide_children(&devices, 1), |infos| {
        filter.bus_relations(buses.2, infos, |_| None)
    })
    .expect("bus");
    assert!(ide1.report.is_empty() && ide1.unplugged && ide1.invalidate);
    assert_eq!(filter.state(), FilterState::Pending);
    assert_eq!(
        boot.unplug_writes(),
        [0x0009, 0x0002],
        "disks (IDE+NVMe) then NICs"
    );

    // The platform removed the emulated disks, the NVMe controller and the NIC.
    let after = boot.devices();
    assert!(after.iter().all(|d| !matches!(
        d.kind,
        DeviceKind::IdeDisk { .. } | DeviceKind::Nic | DeviceKind::Nvme
    )));

    // Second pass: the filter is disabled and reports the survivors only.
    let reported = enumerate(&mut filter, &boot, buses);
    assert_eq!(filter.state(), FilterState::Disabled);
    let expected_pci: Vec<usize> = pci_children(&after).iter().map(|c| c.pdo).collect();
    assert_eq!(reported[0], expected_pci);
    assert!(reported[1].is_empty(), "primary channel disks are gone");
    assert_eq!(reported[2], [0x2010], "the CD-ROM survives");

    // EMULATED after the unplug.
    assert_eq!(
        device_present(&filter, "PCI\\VEN_10EC&DEV_8139&SUBSYS_00000000&REV_20"),
        None
    );
    assert!(!disk_present(&filter, 0) && !disk_present(&filter, 1));
    assert_eq!(
        device_present(&filter, PLATFORM_ID),
        Some(EmulatedActivationStatus::ACTIVATE_NEUTRAL)
    );
}

#[test]
fn safe_mode_reports_everything_without_unplugging() {
    let boot = Boot::new();
    boot.request_unplug();
    boot.record_active(PLATFORM_ID, "x", "y");
    boot.machine.guest.set_safe_boot_mode(1);
    let xen = xen_for(&boot);
    let emulated = EmulatedProvider::new();
    let mut filter = Filter::new(&xen, &emulated, true);
    let buses = attach(&mut filter, &boot);
    let first = enumerate(&mut filter, &boot, buses);
    assert!(first.iter().all(Vec::is_empty));
    assert_eq!(filter.state(), FilterState::Pending);
    assert!(boot.unplug_writes().is_empty());
    let second = enumerate(&mut filter, &boot, buses);
    assert_eq!(
        second[1].len(),
        2,
        "both emulated disks are reported in safe mode"
    );
    assert!(disk_present(&filter, 0));
}

#[test]
fn no_active_device_means_no_unplug() {
    let boot = Boot::new();
    boot.request_unplug();
    let xen = xen_for(&boot);
    let emulated = EmulatedProvider::new();
    let mut filter = Filter::new(&xen, &emulated, false);
    let buses = attach(&mut filter, &boot);
    enumerate(&mut filter, &boot, buses);
    assert!(boot.unplug_writes().is_empty());
    let second = enumerate(&mut filter, &boot, buses);
    assert_eq!(filter.state(), FilterState::Disabled);
    assert!(second[0].len() >= 4, "every PCI child is reported");
}

#[test]
fn without_a_pv_request_the_unplug_writes_nothing() {
    let boot = Boot::new();
    boot.record_active(PLATFORM_ID, "x", "y");
    let xen = xen_for(&boot);
    let emulated = EmulatedProvider::new();
    let mut filter = Filter::new(&xen, &emulated, false);
    let buses = attach(&mut filter, &boot);
    enumerate(&mut filter, &boot, buses);
    assert_eq!(filter.state(), FilterState::Pending);
    assert!(
        boot.unplug_writes().is_empty(),
        "UnplugDevices ran but nothing was requested"
    );
    assert!(boot.devices().iter().any(|d| d.kind == DeviceKind::Nic));
}

#[test]
fn platform_device_moved_to_another_slot_keeps_its_instance_path() {
    let boot = Boot::new();
    // Recorded when the platform device sat in slot 2; it now sits in slot 5.
    boot.record_active(
        PLATFORM_ID,
        "3&267a616a&0&10",
        "PCI bus 0, device 2, function 0",
    );
    {
        let mut platform = boot.machine.hv.platform();
        let mut devices = platform.devices().to_vec();
        for device in &mut devices {
            if device.kind == DeviceKind::XenPlatform {
                device.slot = 5;
            }
        }
        platform.set_devices(devices);
    }
    let xen = xen_for(&boot);
    let emulated = EmulatedProvider::new();
    let mut filter = Filter::new(&xen, &emulated, false);
    let buses = attach(&mut filter, &boot);
    enumerate(&mut filter, &boot, buses);
    let pdo = 0x1000 + 5;
    assert_eq!(
        filter
            .identity(buses.0, pdo, IdentityQuery::InstanceId)
            .as_deref(),
        Some("3&267a616a&0&10")
    );
    assert_eq!(
        filter
            .identity(buses.0, pdo, IdentityQuery::LocationInformation)
            .as_deref(),
        Some("PCI bus 0, device 2, function 0")
    );
    assert_eq!(
        filter
            .identity(buses.0, pdo, IdentityQuery::DeviceId)
            .as_deref(),
        Some(PLATFORM_ID)
    );
    // Other devices answer with their own values.
    assert_eq!(
        filter
            .identity(buses.0, 0x1003, IdentityQuery::InstanceId)
            .as_deref(),
        Some("3&267a616a&0&18")
    );
}

#[test]
fn precedence_force_activates_the_vendor_device() {
    let boot = Boot::new();
    boot.request_unplug();
    {
        let mut platform = boot.machine.hv.platform();
        let mut devices = platform.devices().to_vec();
        devices.push(Device {
            kind: DeviceKind::XenPlatform,
            vendor: 0x5853,
            device: 0xC000,
            revision: 1,
            slot: 6,
            subsystem: (0x5853, 0xC000),
            class: (0xFF, 0x80, 0x00),
            bars: Vec::new(),
        });
        platform.set_devices(devices);
    }
    let xen = xen_for(&boot);
    let emulated = EmulatedProvider::new();
    let mut filter = Filter::new(&xen, &emulated, false);
    let buses = attach(&mut filter, &boot);
    let precedence = |id: &str| match id {
        "PCI\\VEN_5853&DEV_0001" => Some(1),
        "PCI\\VEN_5853&DEV_0002" => Some(2),
        "PCI\\VEN_5853&DEV_C000" => Some(0xC000),
        _ => None,
    };
    let devices = boot.devices();
    relations(&pci_children(&devices), |infos| {
        filter.bus_relations(buses.0, infos, precedence)
    })
    .expect("bus");
    let vendor = "PCI\\VEN_5853&DEV_C000&SUBSYS_C0005853&REV_01";
    assert_eq!(
        device_present(&filter, vendor),
        Some(EmulatedActivationStatus::FORCE_ACTIVATED)
    );
    assert_eq!(
        device_present(&filter, PLATFORM_ID),
        Some(EmulatedActivationStatus::FORCE_DEACTIVATED)
    );
    // The force-activated device counts as the active one: the unplug happens.
    relations(&ide_children(&devices, 0), |infos| {
        filter.bus_relations(buses.1, infos, precedence)
    })
    .expect("bus");
    let last = relations(&ide_children(&devices, 1), |infos| {
        filter.bus_relations(buses.2, infos, precedence)
    })
    .expect("bus");
    assert!(last.unplugged);
    assert_eq!(boot.unplug_writes(), [0x0009, 0x0002]);
    // xenbus is told through XenApi's view of the same registry (nothing recorded yet).
    let mut buffer = [0u8; 8];
    assert!(xen.config_get_active(c"DeviceID", &mut buffer).is_err());
}
