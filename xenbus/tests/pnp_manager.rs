//! xenbus's FDO and PDO machines, over the production services (`fdo::FdoServices`,
//! `fdo::PdoServices`) and the FDO runtime on the simulated machine, driven by the
//! simulator's PnP manager (`xenbus::harness`): boot and enumeration, the active platform
//! device among two, children following xenstore, every interface version obtained through
//! a child PDO and called through its C vtable, QUERY_INTERFACE edge cases, stop/remove/
//! eject and system power.

/// Heap use above DISPATCH_LEVEL panics, as pool use there bug-checks a real kernel.
#[global_allocator]
static ALLOCATOR: common::irql::model::CheckingAllocator =
    common::irql::model::CheckingAllocator::SYSTEM;

use std::ffi::{c_char, c_void, CStr};
use std::sync::atomic::{AtomicU32, Ordering};

use common::os::RegValue;
use common::pnp::*;
use xen_include::guid::Guid;
use xen_include::interfaces::{
    cache::*, console::*, debug::*, emulated::GUID_XENFILT_EMULATED_INTERFACE, evtchn::*,
    gnttab::*, range_set::*, shared_info::*, store::*, suspend::*, unplug::*, Interface,
    VersionedInterface,
};
use xen_include::status::*;
use xen_sim::pnp_manager::{NodeState, PciPdo, PnpManager};
use xenbus::fdo::{ChildState, FdoBugCheck};
use xenbus::harness::stack::{add_device, FdoStack};
use xenbus::harness::{leak, multi_sz, Setup, SimKernel, World};
use xenbus::interface::query::BusInterfaceStandard;
use xenbus::pnp::PnpState;

/// A machine whose xenbus supports VIF, VBD, VKBD and IFACE (synthetic), with
/// `AllowPdoRemove=0` for VKBD.
fn world(vcpus: u32, vendor: Option<&'static str>) -> World {
    World::boot(Setup {
        vcpus,
        parameters: vec![
            (
                "SupportedClasses",
                multi_sz(&["VIF", "VBD", "VKBD", "IFACE"]),
            ),
            ("SyntheticClasses", multi_sz(&["IFACE"])),
        ],
        registry: vec![(
            format!(r"{}\VKBD", xenbus::harness::PARAMETERS),
            "AllowPdoRemove",
            RegValue::Dword(0),
        )],
        vendor_device: vendor,
        ..Setup::default()
    })
}

/// AddDevice on `device`, its stack so far the PCI bus driver's PDO.
fn add(world: &World, device: &xen_sim::platform::Device) -> FdoStack {
    add_device(
        world,
        device,
        Box::new(PciPdo::new(device.clone(), 28)),
        leak(SimKernel::default()),
    )
    .unwrap()
}

fn boot_one(vcpus: u32) -> (World, FdoStack, PnpManager) {
    let world = world(vcpus, None);
    let device = world.platform_devices().remove(0);
    let stack = add(&world, &device);
    let mut pnp = PnpManager::new(28);
    assert_eq!(
        pnp.add_root("XEN", Box::new(stack.clone())),
        NodeState::Started
    );
    (world, stack, pnp)
}

fn header(buffer: &[u8]) -> (u16, u16, u64, u64, u64) {
    let word = |o: usize| u64::from_le_bytes(buffer[o..o + 8].try_into().unwrap());
    (
        u16::from_le_bytes([buffer[0], buffer[1]]),
        u16::from_le_bytes([buffer[2], buffer[3]]),
        word(8),
        word(16),
        word(24),
    )
}

#[test]
fn boot_starts_the_fdo_with_per_cpu_interrupts_and_enumerates_children() {
    let (_world, stack, mut pnp) = boot_one(2);
    let fdo = pnp.node(&["XEN"]).unwrap();
    assert_eq!(
        fdo.device_id,
        r"PCI\VEN_5853&DEV_0001&SUBSYS_00015853&REV_01"
    );
    // FILTER added one message interrupt per CPU; START gave them with the line and BAR.
    let requirements = fdo.requirements.as_ref().unwrap();
    let messages = requirements.alternatives[0]
        .iter()
        .filter(|d| matches!(d.requirement, Requirement::Interrupt { flags: f, .. } if f & flags::INTERRUPT_MESSAGE != 0))
        .count();
    assert_eq!(messages, 2);
    assert_eq!(
        fdo.resources.translated.len(),
        5,
        "2 BARs, line, 2 messages"
    );
    let log = stack.log();
    assert_eq!(
        log[..3],
        ["connect 3 interrupts (2 messages)", "threads", "D3->D0"]
    );
    {
        let resources = stack.resources().unwrap();
        assert_eq!(resources.line_gsi(), Some(28));
        assert_eq!(resources.upcall_vector(0), Some(0xA0));
        assert_eq!(resources.upcall_vector(1), Some(0xA1));
        assert_eq!(stack.pnp_state(), PnpState::Started);
    }
    assert!(stack.fdo.is_d0());
    // Children: VBD from device/vbd, IFACE synthetic — one PDO per class.
    let children: Vec<&String> = fdo.children.keys().collect();
    assert_eq!(children, ["IFACE", "VBD"]);
    let vbd = pnp.node(&["XEN", "VBD"]).unwrap();
    assert_eq!(vbd.state, NodeState::Started);
    assert_eq!(vbd.instance_path(), r"XENBUS\VEN_XP&DEV_VBD\_");
    assert_eq!(
        vbd.hardware_ids[0],
        r"XENBUS\VEN_XP0001&DEV_VBD&REV_0900000C"
    );
    assert_eq!(vbd.hardware_ids.last().unwrap(), "XENCLASS");
    assert_eq!(vbd.compatible_ids, vbd.hardware_ids);
    assert_eq!(vbd.description.as_deref(), Some("XP0001 XENBUS VBD"));
    assert_eq!(vbd.location.as_deref(), Some("VBD"));
    let caps = vbd.capabilities.unwrap();
    assert!(caps.unique_id && caps.removable && caps.eject_supported && caps.silent_install);
    assert_eq!(
        vbd.bus_information.unwrap().bus_type,
        GUID_BUS_TYPE_INTERNAL
    );
    // The child's own requirements: a page and an interrupt, assigned by the manager.
    assert_eq!(vbd.resources.translated.len(), 2);
    assert_eq!(vbd.device_power, DevicePower::D0);
    let fdo_caps = pnp.node(&["XEN"]).unwrap().capabilities.unwrap();
    assert!(!fdo_caps.removable, "the bus FDO is never removable");
    let found: Vec<String> = pnp.take_log();
    assert!(found
        .iter()
        .any(|l| l.starts_with(r"start XENBUS\VEN_XP&DEV_IFACE\_: ok")));
}

#[test]
fn two_platform_devices_make_the_vendor_device_active() {
    let world = world(1, Some("C000"));
    let devices = world.platform_devices();
    assert_eq!(
        devices.iter().map(|d| d.device).collect::<Vec<_>>(),
        [1, 0xC000]
    );
    let mut pnp = PnpManager::new(28);
    let legacy = add(&world, &devices[0]);
    let vendor = add(&world, &devices[1]);
    pnp.add_root("LEGACY", Box::new(legacy.clone()));
    pnp.add_root("VENDOR", Box::new(vendor.clone()));
    assert!(!legacy.fdo.is_active());
    assert!(vendor.fdo.is_active());
    // Only the active FDO adds interrupts and has children.
    let l = pnp.node(&["LEGACY"]).unwrap();
    assert_eq!(l.state, NodeState::Started);
    assert!(l.children.is_empty());
    assert!(!legacy.log().iter().any(|s| s.starts_with("connect")));
    let v = pnp.node(&["VENDOR"]).unwrap();
    assert_eq!(v.children.keys().collect::<Vec<_>>(), ["IFACE", "VBD"]);
    let vbd = pnp.node(&["VENDOR", "VBD"]).unwrap();
    assert_eq!(
        vbd.hardware_ids[0],
        r"XENBUS\VEN_XPC000&DEV_VBD&REV_0900000C"
    );
    assert_eq!(vbd.description.as_deref(), Some("XPC000 XENBUS VBD"));
    // DeviceID has no vendor name: the instance path does not change with the device.
    assert_eq!(vbd.instance_path(), r"XENBUS\VEN_XP&DEV_VBD\_");
}

#[test]
fn children_appear_and_vanish_with_xenstore() {
    let (world, stack, mut pnp) = boot_one(1);
    pnp.take_log();
    let invalidations = || stack.kernel.invalidations();
    let before = invalidations();
    world.mkdir("device/vif/0");
    world.mkdir("device/vkbd/0");
    world.mkdir("device/unknown/0");
    stack.fdo.scan_step();
    assert!(
        invalidations() > before,
        "the scan invalidates BusRelations"
    );
    pnp.enumerate_all();
    pnp.take_log();
    let names: Vec<String> = pnp
        .node(&["XEN"])
        .unwrap()
        .children
        .keys()
        .cloned()
        .collect();
    assert_eq!(
        names,
        ["IFACE", "VBD", "VIF", "VKBD"],
        "UNKNOWN is not supported"
    );
    // AllowPdoRemove = 0 for VKBD.
    let vkbd = pnp.node(&["XEN", "VKBD"]).unwrap().capabilities.unwrap();
    assert!(!vkbd.removable && !vkbd.surprise_removal_ok && vkbd.eject_supported);
    // The VIF class vanishes: PnP surprise-removes and removes the missing PDO, which is
    // destroyed.
    world.rm("device/vif");
    pnp.enumerate_all();
    assert!(pnp.node(&["XEN", "VIF"]).is_none());
    let log = pnp.take_log();
    assert_eq!(
        log,
        [
            r"surprise-remove XENBUS\VEN_XP&DEV_VIF\_: ok",
            r"remove XENBUS\VEN_XP&DEV_VIF\_: ok"
        ]
    );
    assert!(!stack.fdo.children().iter().any(|c| c.class == "VIF"));
    assert!(stack
        .log()
        .contains(&"VIF removed (destroy true)".to_string()));
    // It comes back: a fresh PDO.
    world.mkdir("device/vif/1");
    pnp.enumerate_all();
    assert_eq!(pnp.node(&["XEN", "VIF"]).unwrap().state, NodeState::Started);
    // Eject VKBD: query-remove, remove, eject; the PDO is missing, relations invalidated,
    // and the next enumeration leaves it out.
    let before = invalidations();
    pnp.eject(&["XEN", "VKBD"]).unwrap();
    assert!(invalidations() > before);
    assert!(stack
        .fdo
        .children()
        .iter()
        .any(|c| c.class == "VKBD" && c.state == ChildState::Missing));
    // An orderly removal of a present child puts it back to Enumerated (still reported).
    pnp.remove(&["XEN", "IFACE"]).unwrap();
    assert!(stack
        .fdo
        .children()
        .iter()
        .any(|c| c.class == "IFACE" && c.state == ChildState::Enumerated));
}

#[test]
fn enumerate_zero_suppresses_children_changes() {
    let world = world(1, None);
    {
        let mut r = world.m.guest.registry();
        r.set_value(
            &format!(r"{}\{}", xen_sim::guest::HKLM, xenbus::harness::PARAMETERS),
            "Enumerate",
            RegValue::Dword(0),
        )
        .unwrap();
    }
    let device = world.platform_devices().remove(0);
    let stack = add(&world, &device);
    let mut pnp = PnpManager::new(28);
    pnp.add_root("XEN", Box::new(stack.clone()));
    assert!(pnp.node(&["XEN"]).unwrap().children.is_empty());
}

/// The first two methods of every XENBUS interface: Acquire, Release.
type AcquireFn = unsafe extern "C" fn(*mut Interface) -> NtStatus;
type ReleaseFn = unsafe extern "C" fn(*mut Interface);

macro_rules! versions {
    ($($t:ty),* $(,)?) => {
        [$((<$t>::GUID, <$t>::VERSION, <$t>::SIZE as u16, stringify!($t))),*]
    };
}

#[test]
fn every_interface_version_through_a_child_pdo_and_its_vtable() {
    let (_world, _stack, mut pnp) = boot_one(2);
    let all = versions!(
        SuspendInterfaceV1,
        SharedInfoInterfaceV2,
        SharedInfoInterfaceV3,
        SharedInfoInterfaceV4,
        EvtchnInterfaceV5,
        EvtchnInterfaceV6,
        EvtchnInterfaceV7,
        EvtchnInterfaceV8,
        EvtchnInterfaceV9,
        DebugInterfaceV1,
        StoreInterfaceV2,
        RangeSetInterfaceV1,
        CacheInterfaceV1,
        CacheInterfaceV2,
        GnttabInterfaceV2,
        GnttabInterfaceV3,
        GnttabInterfaceV4,
        UnplugInterfaceV1,
        UnplugInterfaceV2,
        UnplugInterfaceV3,
        ConsoleInterfaceV1,
    );
    let vbd = ["XEN", "VBD"];
    for (guid, version, size, name) in all {
        let mut got = pnp
            .query_interface(&vbd, guid, version, size, STATUS_NOT_SUPPORTED)
            .unwrap();
        assert_eq!(got.status, STATUS_SUCCESS, "{name}");
        assert_eq!(got.reply, PnpReply::Nothing, "{name}: Information = 0");
        let (s, v, context, reference, dereference) = header(&got.bytes());
        assert_eq!((s, v), (size, version), "{name}");
        assert!(context != 0, "{name}");
        assert_eq!((reference, dereference), (0, 0), "{name}");
        // Every function pointer is filled.
        let bytes = got.bytes();
        for offset in (32..usize::from(size)).step_by(8) {
            let f = u64::from_le_bytes(bytes[offset..offset + 8].try_into().unwrap());
            assert!(f != 0, "{name}: slot at {offset} empty");
        }
        // Used as a C driver would: Acquire then Release through the table.
        let interface = got.as_ptr().cast::<Interface>();
        // SAFETY: the buffer holds the interface just filled; slots 32 and 40 are Acquire
        // and Release of every XENBUS interface.
        unsafe {
            let acquire: AcquireFn = std::mem::transmute(bytes_fn(&bytes, 32));
            let release: ReleaseFn = std::mem::transmute(bytes_fn(&bytes, 40));
            assert_eq!(acquire(interface), STATUS_SUCCESS, "{name} Acquire");
            release(interface);
        }
    }

    // STORE v2 used for real: Read("domid") through the vtable, then Free.
    let mut store = pnp
        .query_interface(
            &vbd,
            GUID_XENBUS_STORE_INTERFACE,
            2,
            136,
            STATUS_NOT_SUPPORTED,
        )
        .unwrap();
    let interface = store.as_ptr().cast::<StoreInterfaceV2>();
    // SAFETY: filled by the PDO above; C-ABI calls with valid arguments.
    unsafe {
        let table = *interface;
        let pi = interface.cast::<Interface>();
        assert_eq!((table.store_acquire.unwrap())(pi), STATUS_SUCCESS);
        let mut value: *mut c_char = std::ptr::null_mut();
        let status = (table.store_read.unwrap())(
            pi,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            c"name".as_ptr() as *mut c_char,
            &mut value,
        );
        assert_eq!(status, STATUS_SUCCESS);
        assert!(!CStr::from_ptr(value).to_bytes().is_empty());
        (table.store_free.unwrap())(pi, value);
        (table.store_release.unwrap())(pi);
    }
    // SUSPEND v1: GetCount through the vtable.
    let mut suspend = pnp
        .query_interface(
            &vbd,
            GUID_XENBUS_SUSPEND_INTERFACE,
            1,
            80,
            STATUS_NOT_SUPPORTED,
        )
        .unwrap();
    let interface = suspend.as_ptr().cast::<SuspendInterfaceV1>();
    // SAFETY: as above.
    unsafe {
        let table = *interface;
        let pi = interface.cast::<Interface>();
        assert_eq!((table.acquire.unwrap())(pi), STATUS_SUCCESS);
        assert_eq!((table.get_count.unwrap())(pi), 0);
        (table.release.unwrap())(pi);
    }
}

fn bytes_fn(bytes: &[u8], offset: usize) -> *const c_void {
    u64::from_le_bytes(bytes[offset..offset + 8].try_into().unwrap()) as usize as *const c_void
}

#[test]
fn query_interface_edge_cases() {
    let (_world, stack, mut pnp) = boot_one(1);
    let vbd = ["XEN", "VBD"];
    // (what, GUID, version, size, incoming status) -> (status, buffer untouched).
    let cases = [
        // Version above MAX and below MIN: NOT_SUPPORTED, buffer untouched.
        (
            "EVTCHN above MAX",
            GUID_XENBUS_EVTCHN_INTERFACE,
            XENBUS_EVTCHN_INTERFACE_VERSION_MAX + 1,
            200,
            STATUS_NOT_SUPPORTED,
            (STATUS_NOT_SUPPORTED, true),
        ),
        (
            "EVTCHN below MIN",
            GUID_XENBUS_EVTCHN_INTERFACE,
            XENBUS_EVTCHN_INTERFACE_VERSION_MIN - 1,
            200,
            STATUS_NOT_SUPPORTED,
            (STATUS_NOT_SUPPORTED, true),
        ),
        // One byte short: BUFFER_OVERFLOW, untouched; bigger than needed: fine.
        (
            "STORE short",
            GUID_XENBUS_STORE_INTERFACE,
            2,
            135,
            STATUS_NOT_SUPPORTED,
            (STATUS_BUFFER_OVERFLOW, true),
        ),
        (
            "STORE big",
            GUID_XENBUS_STORE_INTERFACE,
            2,
            256,
            STATUS_NOT_SUPPORTED,
            (STATUS_SUCCESS, false),
        ),
        // Status already set by a driver above: passed through untouched.
        (
            "STORE answered",
            GUID_XENBUS_STORE_INTERFACE,
            2,
            136,
            STATUS_SUCCESS,
            (STATUS_SUCCESS, true),
        ),
        (
            "STORE failed above",
            GUID_XENBUS_STORE_INTERFACE,
            2,
            136,
            STATUS_UNSUCCESSFUL,
            (STATUS_UNSUCCESSFUL, true),
        ),
        // Unknown GUID and the internal BALLOON: not served.
        (
            "unknown",
            Guid::from_u128(0xDEADBEEF),
            1,
            64,
            STATUS_NOT_SUPPORTED,
            (STATUS_NOT_SUPPORTED, true),
        ),
        (
            "BALLOON",
            xen_include::interfaces::balloon::GUID_XENBUS_BALLOON_INTERFACE,
            1,
            64,
            STATUS_NOT_SUPPORTED,
            (STATUS_NOT_SUPPORTED, true),
        ),
        // EMULATED is delegated down the FDO's stack (no xenfilt here: still NOT_SUPPORTED).
        (
            "EMULATED",
            GUID_XENFILT_EMULATED_INTERFACE,
            3,
            64,
            STATUS_NOT_SUPPORTED,
            (STATUS_NOT_SUPPORTED, true),
        ),
        // The bus interface: wrong size is BUFFER_TOO_SMALL, wrong version NOT_SUPPORTED.
        (
            "bus short",
            GUID_BUS_INTERFACE_STANDARD,
            1,
            32,
            STATUS_NOT_SUPPORTED,
            (STATUS_BUFFER_TOO_SMALL, true),
        ),
        (
            "bus v2",
            GUID_BUS_INTERFACE_STANDARD,
            2,
            64,
            STATUS_NOT_SUPPORTED,
            (STATUS_NOT_SUPPORTED, true),
        ),
    ];
    for (what, guid, version, size, incoming, expected) in cases {
        let got = pnp
            .query_interface(&vbd, guid, version, size, incoming)
            .unwrap();
        let untouched = got.bytes().iter().all(|&b| b == 0);
        assert_eq!((got.status, untouched), expected, "{what}");
    }
    // The bus interface: forwarded to the PCI bus driver's; GetBusData reads the platform
    // device's config space through it.
    let mut got = pnp
        .query_interface(
            &vbd,
            GUID_BUS_INTERFACE_STANDARD,
            1,
            64,
            STATUS_NOT_SUPPORTED,
        )
        .unwrap();
    assert_eq!(got.status, STATUS_SUCCESS);
    // SAFETY: filled by the PDO; C-ABI calls with valid arguments.
    unsafe {
        let table = *got.as_ptr().cast::<BusInterfaceStandard>();
        let mut id = [0u8; 4];
        let n =
            (table.get_bus_data.unwrap())(table.interface.context, 0, id.as_mut_ptr().cast(), 0, 4);
        assert_eq!((n, u32::from_le_bytes(id)), (4, 0x0001_5853));
        assert_eq!(
            stack.bus_interface().references(),
            1,
            "the query took a reference"
        );
        (table.interface.interface_dereference.unwrap())(table.interface.context);
    }
    assert_eq!(stack.bus_interface().references(), 0);
}

#[test]
fn stop_usage_power_and_remove_of_the_bus() {
    let (_world, stack, mut pnp) = boot_one(1);
    stack.take_log();
    // Rebalance: QUERY_STOP, STOP (D0->D3, threads, interrupts), START again.
    pnp.stop_and_restart(&["XEN"]).unwrap();
    assert_eq!(
        stack.log(),
        [
            "D0->D3",
            "join threads",
            "disconnect",
            "connect 2 interrupts (1 messages)",
            "threads",
            "D3->D0"
        ]
    );
    assert!(stack.fdo.is_d0());
    // A paging file on a child: delegated to the FDO, which becomes not disableable.
    let answer = pnp
        .request(
            &["XEN", "VBD"],
            &PnpRequest::DeviceUsageNotification(UsageKind::Paging, true),
        )
        .unwrap();
    assert_eq!(answer.status, STATUS_SUCCESS);
    let state = pnp
        .request(
            &["XEN"],
            &PnpRequest::QueryPnpDeviceState(STATUS_NOT_SUPPORTED, 0),
        )
        .unwrap();
    assert_eq!(
        state.reply,
        PnpReply::DeviceState(device_state::NOT_DISABLEABLE)
    );
    // Hibernate and back: the D-IRPs power the bus down and up around S3->S4 / S4->S3.
    stack.take_log();
    pnp.set_system_power(SystemPower::Hibernate, PowerAction::Hibernate)
        .unwrap();
    assert!(!stack.fdo.is_d0());
    assert!(stack.kernel.bug_checks().is_empty());
    pnp.set_system_power(SystemPower::Working, PowerAction::None)
        .unwrap();
    assert!(stack.fdo.is_d0());
    let log = stack.log();
    let pos = |s: &str| {
        log.iter()
            .position(|l| l == s)
            .unwrap_or_else(|| panic!("{s}: {log:?}"))
    };
    assert!(
        pos("VBD D0->D3") < pos("D0->D3"),
        "children first going down"
    );
    assert!(pos("D0->D3") < pos("S3->S4"));
    assert!(pos("S3->S4") < pos("S4->S3"));
    assert!(pos("S4->S3") < pos("D3->D0"));
    // Shutdown: the S-IRP goes down without a D-IRP; the bus stays in D0.
    stack.take_log();
    pnp.set_system_power(SystemPower::Shutdown, PowerAction::ShutdownOff)
        .unwrap();
    assert!(stack.fdo.is_d0());
    assert!(!stack.log().iter().any(|l| l == "D0->D3"));
    // Orderly removal of the whole bus: children first, then the FDO is destroyed.
    stack.take_log();
    pnp.remove(&["XEN"]).unwrap();
    let log = stack.log();
    assert!(log.iter().any(|l| l == "children removed"));
    assert_eq!(log.last().unwrap(), "destroy");
    assert!(!stack.fdo.is_d0());
    assert_eq!(stack.pnp_state(), PnpState::Deleted);
}

static LATE_CALLS: AtomicU32 = AtomicU32::new(0);

unsafe extern "C" fn child_late(argument: *mut c_void) {
    assert_eq!(argument as usize, 0xC41D);
    LATE_CALLS.fetch_add(1, Ordering::SeqCst);
}

#[test]
fn a_suspend_keeps_a_childs_interfaces_working() {
    use xen_sim::hv::SuspendOutcome;
    use xen_sim::toolstack::ShutdownRequest;
    use xenbus::fdo::SuspendStep;
    use xenbus::suspend::TriggerOutcome;

    let (world, stack, mut pnp) = boot_one(2);
    let vbd = ["XEN", "VBD"];
    let mut suspend = pnp
        .query_interface(
            &vbd,
            GUID_XENBUS_SUSPEND_INTERFACE,
            1,
            80,
            STATUS_NOT_SUPPORTED,
        )
        .unwrap();
    let mut store = pnp
        .query_interface(
            &vbd,
            GUID_XENBUS_STORE_INTERFACE,
            2,
            136,
            STATUS_NOT_SUPPORTED,
        )
        .unwrap();
    let si = suspend.as_ptr().cast::<SuspendInterfaceV1>();
    let st = store.as_ptr().cast::<StoreInterfaceV2>();
    let read_name = || {
        // SAFETY: the STORE interface filled by the PDO, acquired below.
        unsafe {
            let table = *st;
            let mut value: *mut c_char = std::ptr::null_mut();
            let status = (table.store_read.unwrap())(
                st.cast(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                c"name".as_ptr() as *mut c_char,
                &mut value,
            );
            assert_eq!(status, STATUS_SUCCESS);
            let name = CStr::from_ptr(value).to_owned();
            (table.store_free.unwrap())(st.cast(), value);
            name
        }
    };
    let mut callback: *mut SuspendCallback = std::ptr::null_mut();
    // SAFETY: the SUSPEND interface filled by the PDO; C-ABI calls with valid arguments.
    let get_count = unsafe {
        let table = *si;
        assert_eq!((table.acquire.unwrap())(si.cast()), STATUS_SUCCESS);
        assert_eq!((*st).store_acquire.unwrap()(st.cast()), STATUS_SUCCESS);
        assert_eq!(
            (table.register.unwrap())(
                si.cast(),
                SuspendCallbackType::LATE,
                Some(child_late),
                0xC41D as *mut c_void,
                &mut callback,
            ),
            STATUS_SUCCESS
        );
        move || (table.get_count.unwrap())(si.cast())
    };
    assert_eq!(get_count(), 0);
    let name = read_name();
    // A cancelled suspend: no callback, no count.
    let suspend_through_control_shutdown = |outcome| {
        world
            .ts
            .lock()
            .unwrap()
            .request_shutdown(world.domid, ShutdownRequest::Suspend)
            .unwrap();
        world.m.hv.set_suspend_outcome(outcome);
        stack.fdo.suspend_step()
    };
    assert!(matches!(
        suspend_through_control_shutdown(SuspendOutcome::Cancel),
        SuspendStep::Triggered(TriggerOutcome::NotSuspended(_))
    ));
    assert_eq!((get_count(), LATE_CALLS.load(Ordering::SeqCst)), (0, 0));
    // A real suspend and resume: the child's LATE callback runs once, the count moves,
    // and the store it holds works on the new ring.
    assert_eq!(
        suspend_through_control_shutdown(SuspendOutcome::Resume),
        SuspendStep::Triggered(TriggerOutcome::Resumed)
    );
    assert_eq!((get_count(), LATE_CALLS.load(Ordering::SeqCst)), (1, 1));
    assert_eq!(read_name(), name);
    // Children and PnP state are unchanged by a suspend.
    pnp.enumerate_all();
    assert_eq!(pnp.node(&vbd).unwrap().state, NodeState::Started);
    // SAFETY: as above.
    unsafe {
        let table = *si;
        (table.deregister.unwrap())(si.cast(), callback);
        (table.release.unwrap())(si.cast());
        ((*st).store_release.unwrap())(st.cast());
    }
    // With every reference dropped, hibernation does not bug-check.
    pnp.set_system_power(SystemPower::Hibernate, PowerAction::Hibernate)
        .unwrap();
    assert!(stack.kernel.bug_checks().is_empty());
    pnp.set_system_power(SystemPower::Working, PowerAction::None)
        .unwrap();
    // A child still holding STORE when the system hibernates is a bug check (S3->S4).
    // SAFETY: as above.
    unsafe { assert_eq!((*st).store_acquire.unwrap()(st.cast()), STATUS_SUCCESS) };
    pnp.set_system_power(SystemPower::Hibernate, PowerAction::Hibernate)
        .unwrap();
    assert_eq!(
        stack.kernel.bug_checks(),
        [FdoBugCheck::ReferencesAtHibernate("STORE")]
    );
}

#[test]
fn an_inflated_balloon_vetoes_removal_and_stop_of_the_bus() {
    let (world, stack, mut pnp) = boot_one(1);
    let static_max_kib = 2 * 1024 * 1024 - 8 * 1024;
    world
        .ts
        .lock()
        .unwrap()
        .set_balloon_target(world.domid, static_max_kib - 16 * 4)
        .unwrap();
    stack.fdo.balloon_step();
    assert!(stack.fdo.veto_stop(), "the balloon holds pages");
    // The veto comes back from QUERY_REMOVE; children that agreed get CANCEL_REMOVE and the
    // tree is left as it was.
    assert_eq!(pnp.remove(&["XEN"]), Err(STATUS_UNSUCCESSFUL));
    let log = pnp.take_log();
    assert!(log.iter().any(|l| l.contains("vetoed")), "{log:?}");
    assert_eq!(pnp.node(&["XEN"]).unwrap().state, NodeState::Started);
    assert_eq!(
        stack.pnp_state(),
        PnpState::Started,
        "not left RemovePending"
    );
    assert_eq!(pnp.stop_and_restart(&["XEN"]), Err(STATUS_UNSUCCESSFUL));
    assert!(stack.fdo.is_d0(), "a vetoed stop leaves the bus running");
    // Deflated again: the removal goes through.
    world
        .ts
        .lock()
        .unwrap()
        .set_balloon_target(world.domid, static_max_kib)
        .unwrap();
    stack.fdo.balloon_step();
    assert!(!stack.fdo.veto_stop());
    pnp.remove(&["XEN"]).unwrap();
    assert_eq!(stack.pnp_state(), PnpState::Deleted);
}

#[test]
fn a_surprise_removed_bus_takes_its_children_with_it() {
    let (_world, stack, mut pnp) = boot_one(1);
    pnp.take_log();
    stack.take_log();
    // The platform device is hot-unplugged: SURPRISE_REMOVAL to the subtree, children first,
    // then REMOVE the same way.
    pnp.surprise_remove(&["XEN"]).unwrap();
    let log = pnp.take_log();
    let order: Vec<&str> = log.iter().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(
        order,
        [
            "surprise-remove",
            "surprise-remove",
            "surprise-remove",
            "remove",
            "remove",
            "remove"
        ],
        "{log:?}"
    );
    assert!(
        log[2].starts_with(r"surprise-remove PCI\VEN_5853"),
        "{log:?}"
    );
    assert!(log[5].starts_with(r"remove PCI\VEN_5853"), "{log:?}");
    // The FDO marks every child missing at SURPRISE_REMOVAL, so each child's REMOVE
    // destroys its PDO; the FDO's REMOVE takes the bus down.
    let services = stack.log();
    let pos = |s: &str| {
        services
            .iter()
            .position(|l| l == s)
            .unwrap_or_else(|| panic!("{s}: {services:?}"))
    };
    assert!(pos("children missing") < pos("VBD removed (destroy true)"));
    assert!(pos("IFACE removed (destroy true)") < pos("destroy"));
    assert!(
        stack.fdo.children().is_empty(),
        "{:?}",
        stack.fdo.children()
    );
    assert_eq!(stack.pnp_state(), PnpState::Deleted);
    assert!(!stack.fdo.is_d0());
    assert!(pnp.node(&["XEN"]).is_none());
}
