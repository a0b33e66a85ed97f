//! `cargo xtask demo`: boots the package on the simulator — xen.sys, xenfilt over the PCI
//! and IDE buses, the xenbus FDO and its children, a C child using the interfaces through
//! their vtables, a hot-added and removed vif, a suspend/resume — and prints the story.
//!
//! Every decision printed is made by the project's real cores (`xen`, `xenfilt`, `xenbus`,
//! `xen-include`) running on `xen-sim`; this module only plays the PnP manager, the
//! toolstack operator and a C child driver.

use std::ffi::{c_char, c_void, CStr, CString};
use std::io::{self, Write};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use common::os::RegValue;
use xen::driver::Xen;
use xen_include::api::XenApi;
use xen_include::interfaces::emulated::{EmulatedActivationStatus, EmulatedInterfaceV3};
use xen_include::interfaces::evtchn::{EvtchnInterfaceV9, EvtchnType};
use xen_include::interfaces::gnttab::GnttabInterfaceV4;
use xen_include::interfaces::range_set::RangeSetInterfaceV1;
use xen_include::interfaces::store::{StoreInterfaceV2, StoreTransaction};
use xen_include::interfaces::suspend::{SuspendCallbackType, SuspendInterfaceV1};
use xen_include::interfaces::{Boolean, KInterrupt, PInterface, VersionedInterface, TRUE};
use xen_include::revision::{write_id, BusQueryId, IdNames};
use xen_include::status::{NtStatus, STATUS_SUCCESS};
use xen_sim::hv::SuspendOutcome;
use xen_sim::machine::Machine;
use xen_sim::platform::{Device, DeviceKind};
use xen_sim::pnp::{ide_children, pci_children, PnpChild};
use xen_sim::toolstack::machine::{HvGrants, StoreService};
use xen_sim::toolstack::{BackendMode, DeviceClass, ShutdownRequest, Toolstack};
use xen_sim::xenstored::Xenstored;
use xenbus::active::XenApiActive;
use xenbus::fdo::{
    self, ActiveConfig, Fdo, FdoBugCheck, FdoKernel, FdoResources, FdoSetup, FdoThread,
    FilterActivation, OsBalloonMemory,
};
use xenbus::interface::{evtchn as evtchn_if, gnttab as gnttab_if, range_set as range_set_if};
use xenbus::interface::{store as store_if, suspend as suspend_if};
use xenbus::pdo::{self, DeviceText, RemovalPolicy};
use xenbus::store::Store;
use xenfilt::fdo::ChildInfo;
use xenfilt::filter::{BusHandle, Filter};
use xenfilt::interface::EmulatedProvider;

const SERVICES: &str = r"\Registry\Machine\SYSTEM\CurrentControlSet\Services";
const ENUM: &str = r"\Registry\Machine\SYSTEM\CurrentControlSet\Enum";
const ENUM_XENBUS: &str = r"\Registry\Machine\SYSTEM\CurrentControlSet\Enum\XENBUS";

fn err(e: impl std::fmt::Debug) -> io::Error {
    io::Error::other(format!("{e:?}"))
}

fn leak<T>(t: T) -> &'static T {
    Box::leak(Box::new(t))
}

/// `cargo xtask demo`.
pub fn main() -> std::process::ExitCode {
    let stdout = io::stdout();
    let mut out = stdout.lock();
    match run(&mut out) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo failed: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// What a PnP child is, for the story.
fn what(child: &PnpChild) -> String {
    match child.kind {
        DeviceKind::IdeDisk { .. } => "IDE disk".into(),
        DeviceKind::IdeCdrom { .. } => "IDE CD-ROM".into(),
        ref kind => format!("{kind:?}"),
    }
}

/// BusRelations through the filter: which PDOs are reported, and whether the unplug ran.
fn relations(
    filter: &mut Filter<'_>,
    bus: BusHandle,
    children: &[PnpChild],
) -> io::Result<(Vec<usize>, bool)> {
    let compat: Vec<Vec<&str>> = children
        .iter()
        .map(|c| c.compatible.iter().map(String::as_str).collect())
        .collect();
    let infos: Vec<ChildInfo<'_>> = children
        .iter()
        .zip(&compat)
        .map(|(c, ids)| ChildInfo {
            pdo: c.pdo,
            device_id: &c.device_id,
            instance_id: &c.instance_id,
            compatible_ids: ids,
            location: Some(&c.location),
        })
        .collect();
    let answer = filter
        .bus_relations(bus, &infos, |_| None)
        .ok_or_else(|| err("unknown bus"))?;
    Ok((answer.report, answer.unplugged))
}

/// xenbus's query of `GUID_XENFILT_EMULATED_INTERFACE` v3 below it.
fn emulated_v3(filter: &Filter<'_>) -> io::Result<EmulatedInterfaceV3> {
    let mut table = std::mem::MaybeUninit::<EmulatedInterfaceV3>::zeroed();
    // SAFETY: the buffer is a whole EmulatedInterfaceV3 and the provider outlives its use.
    let status = unsafe {
        xenfilt::interface::get_interface(
            filter.emulated,
            3,
            table.as_mut_ptr().cast(),
            EmulatedInterfaceV3::SIZE,
        )
    };
    if status != STATUS_SUCCESS {
        return Err(err(format!("EMULATED v3: {status:#x}")));
    }
    // SAFETY: filled by get_interface.
    Ok(unsafe { table.assume_init() })
}

fn disk_present(filter: &Filter<'_>, index: u32) -> io::Result<bool> {
    let mut v3 = emulated_v3(filter)?;
    let this = (&mut v3 as *mut EmulatedInterfaceV3).cast();
    let f = v3
        .emulated_is_disk_present
        .ok_or_else(|| err("empty slot"))?;
    // SAFETY: the vtable's own function called with its interface.
    Ok(unsafe { f(this, index) } == TRUE)
}

fn device_present(
    filter: &Filter<'_>,
    device_id: &str,
) -> io::Result<Option<EmulatedActivationStatus>> {
    let mut v3 = emulated_v3(filter)?;
    let this = (&mut v3 as *mut EmulatedInterfaceV3).cast();
    let id = CString::new(device_id).map_err(err)?;
    let mut status = EmulatedActivationStatus::ACTIVATE_NEUTRAL;
    let f = v3
        .emulated_is_device_present
        .ok_or_else(|| err("empty slot"))?;
    // SAFETY: the vtable's own function, a NUL-terminated string and a writable status.
    let present = unsafe {
        f(
            this,
            id.as_ptr().cast_mut(),
            std::ptr::null_mut(),
            &mut status,
        )
    } == TRUE;
    Ok(present.then_some(status))
}

fn activation_text(a: Option<EmulatedActivationStatus>) -> &'static str {
    match a {
        None => "not present",
        Some(s) if s == EmulatedActivationStatus::FORCE_ACTIVATED => "present, force-activated",
        Some(s) if s == EmulatedActivationStatus::FORCE_DEACTIVATED => "present, force-deactivated",
        Some(_) => "present, neutral",
    }
}

/// A REG_MULTI_SZ / single ID as written by `write_id`, split at its NULs.
fn id_strings(kind: BusQueryId, names: &IdNames<'_>) -> io::Result<Vec<String>> {
    let mut text = String::new();
    write_id(kind, names, &mut text).map_err(err)?;
    Ok(text
        .split('\0')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect())
}

/// The names under `device` read through xenbus's STORE core.
fn device_dir(store: &Store) -> Vec<String> {
    match store.directory(None, None, b"device") {
        Ok(bytes) => bytes
            .split(|&b| b == 0)
            .filter(|s| !s.is_empty())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// One pass of the FDO's scan thread (`FdoScan`): classes from `device` ∪
/// SyntheticClasses ∩ SupportedClasses reconciled into the child list, printed.
fn scan(out: &mut dyn Write, fdo: &Fdo, kernel: &DemoKernel) -> io::Result<fdo::Reconciled> {
    let store = fdo.subsystems().ok_or_else(|| err("inactive FDO"))?.store;
    let dir = device_dir(store);
    let before = kernel.invalidations.load(Ordering::SeqCst);
    let outcome = fdo.scan_step();
    let classes: Vec<String> = fdo
        .children()
        .into_iter()
        .filter(|c| c.state != fdo::ChildState::Missing)
        .map(|c| c.class)
        .collect();
    writeln!(
        out,
        "xenbus scan: device/ = {dir:?} -> classes {classes:?}; created {:?}, destroyed {:?}, \
         missing {:?}{}",
        outcome.created,
        outcome.destroyed,
        outcome.missing,
        if kernel.invalidations.load(Ordering::SeqCst) != before {
            " -> IoInvalidateDeviceRelations(BusRelations)"
        } else {
            ""
        }
    )?;
    Ok(outcome)
}

/// The kernel side of the demo's FDO: thread events (KEVENT addresses the watches set)
/// and the PnP/bug-check requests it makes.
#[derive(Default)]
struct DemoKernel {
    invalidations: AtomicU32,
}

const SCAN_EVENT: usize = 0x6000;
const SUSPEND_EVENT: usize = 0x5000;
const BALLOON_EVENT: usize = 0x4000;

impl FdoKernel for DemoKernel {
    fn thread_event(&self, thread: FdoThread) -> usize {
        match thread {
            FdoThread::Scan => SCAN_EVENT,
            FdoThread::Suspend => SUSPEND_EVENT,
            FdoThread::Balloon => BALLOON_EVENT,
        }
    }
    fn invalidate_bus_relations(&self) {
        self.invalidations.fetch_add(1, Ordering::SeqCst);
    }
    fn bug_check(&self, reason: FdoBugCheck) {
        eprintln!("xenbus asked for a bug check: {reason:?}");
    }
}

/// The FDO's steps whose name starts with `prefix`, without it.
fn steps(fdo: &Fdo, prefix: &str) -> Vec<&'static str> {
    fdo.trace()
        .into_iter()
        .filter_map(|t| t.strip_prefix(prefix))
        .collect()
}

static ISR_HITS: AtomicU32 = AtomicU32::new(0);
static CHILD_EARLY: AtomicU32 = AtomicU32::new(0);
static CHILD_LATE: AtomicU32 = AtomicU32::new(0);

unsafe extern "C" fn child_isr(_: *mut KInterrupt, _: *mut c_void) -> Boolean {
    ISR_HITS.fetch_add(1, Ordering::SeqCst);
    TRUE
}

unsafe extern "C" fn child_suspend_early(_: *mut c_void) {
    CHILD_EARLY.fetch_add(1, Ordering::SeqCst);
}

unsafe extern "C" fn child_suspend_late(_: *mut c_void) {
    CHILD_LATE.fetch_add(1, Ordering::SeqCst);
}

/// A vtable slot a C caller would call (NULL → error).
fn slot<T>(o: Option<T>) -> io::Result<T> {
    o.ok_or_else(|| err("empty vtable slot"))
}

/// A C child's `StoreRead` then `StoreFree` through its STORE table.
///
/// # Safety
/// `i` is the interface pointer of `st` as filled by the provider's `get_interface`, and
/// `tx` is NULL or a live transaction of it.
unsafe fn child_store_read(
    st: &StoreInterfaceV2,
    i: PInterface,
    tx: *mut StoreTransaction,
    prefix: Option<&CStr>,
    node: &CStr,
) -> io::Result<String> {
    let mut buffer: *mut c_char = std::ptr::null_mut();
    let prefix = prefix.map_or(std::ptr::null_mut(), |p| p.as_ptr().cast_mut());
    // SAFETY: forwarded caller contract; NUL-terminated strings and a writable out pointer.
    let status =
        unsafe { slot(st.store_read)?(i, tx, prefix, node.as_ptr().cast_mut(), &mut buffer) };
    check(&format!("StoreRead({node:?})"), status)?;
    // SAFETY: a successful StoreRead returns a NUL-terminated buffer we own until StoreFree.
    let text = unsafe { CStr::from_ptr(buffer) }
        .to_string_lossy()
        .into_owned();
    // SAFETY: the buffer came from this interface's StoreRead.
    unsafe { slot(st.store_free)?(i, buffer) };
    Ok(text)
}

fn check(what: &str, status: NtStatus) -> io::Result<()> {
    if status == STATUS_SUCCESS {
        Ok(())
    } else {
        Err(err(format!("{what} failed with {status:#010x}")))
    }
}

/// A second machine with both the legacy platform device (0001) and a vendor device
/// (C000), on a vendor build (`VENDOR_DEVICE_ID=C000`): the legacy device is refused as
/// the active one, the vendor device is recorded.
fn vendor_device_boot(out: &mut dyn Write) -> io::Result<()> {
    const VENDOR: &str = "C000";
    let m: &'static Machine = leak(Machine::new());
    {
        let mut platform = m.hv.platform();
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
    {
        let mut registry = m.guest.registry();
        registry
            .create_key(&format!(r"{SERVICES}\xenfilt\Parameters"), false)
            .map_err(err)?;
        // PnP has enumerated the vendor device on this system before.
        registry
            .create_key(
                &format!(r"{ENUM}\PCI\VEN_5853&DEV_{VENDOR}&SUBSYS_{VENDOR}5853&REV_01"),
                false,
            )
            .map_err(err)?;
    }
    let xen: &'static Xen<'static> = leak(Xen::new(&*m.hv, &*m.guest, None, Some(VENDOR)));
    xen.initialize().map_err(err)?;
    let devices: Vec<Device> = m.hv.platform().devices().to_vec();
    for child in pci_children(&devices)
        .into_iter()
        .filter(|c| c.device_id.starts_with(r"PCI\VEN_5853"))
    {
        let mut config = XenApiActive::new(xen);
        let active = fdo::decide_active(
            None,
            &child.device_id,
            &child.instance_id,
            &child.location,
            &mut config,
        );
        writeln!(
            out,
            "AddDevice {} ({}): {}",
            child.device_id,
            child.location,
            if active {
                "ACTIVE FDO (recorded as the active device)"
            } else {
                "inactive (legacy device vetoed while the vendor device exists)"
            }
        )?;
    }
    writeln!(
        out,
        "active record: {:?}",
        XenApiActive::new(xen).active_device_id()
    )?;
    Ok(())
}

/// Runs the demo, writing its report to `out`.
pub fn run(out: &mut dyn Write) -> io::Result<()> {
    // ---------------------------------------------------------------- 1. the machine
    let m: &'static Machine = leak(Machine::new());
    let xs = Arc::new(Mutex::new(Xenstored::default()));
    let svc = StoreService::attach(m, &xs);
    m.hv.set_suspend_hook(Some(svc.suspend_hook()));
    let mut ts = Toolstack::new(&xs, Box::new(HvGrants::new(m.hv.clone())));
    let cfg = StoreService::domain_config(m);
    ts.create_domain(&cfg).map_err(err)?;
    let domid = cfg.domid;
    ts.add_device(
        domid,
        DeviceClass::Vbd {
            vdev: 51712,
            params: "/srv/disk0.img".into(),
            sectors: 2 * 1024 * 1024,
        },
        51712,
        BackendMode::Normal,
    )
    .map_err(err)?;
    writeln!(out, "== XenBus-rs package demo (simulated machine) ==")?;
    writeln!(out, "\n-- 1. The simulated machine --")?;
    writeln!(
        out,
        "domain {domid} \"{}\", store ring gfn {:#x}, store event channel {}; toolstack \
         created it with a vbd (xvda)",
        cfg.name, cfg.store_gfn, cfg.store_port
    )?;
    let devices: Vec<Device> = m.hv.platform().devices().to_vec();
    for d in &devices {
        writeln!(
            out,
            "  PCI slot {:2}: {:04x}:{:04x} {:?}",
            d.slot, d.vendor, d.device, d.kind
        )?;
    }
    // What the previous boot left in the registry: xenfilt's INF parameters and the PV
    // drivers' unplug request (xenvbd and xenvif installed).
    {
        let parameters = format!(r"{SERVICES}\xenfilt\Parameters");
        let unplug = format!(r"{SERVICES}\XEN\Unplug");
        let mut registry = m.guest.registry();
        registry.create_key(&parameters, false).map_err(err)?;
        registry
            .set_value(&parameters, "*PNP0A03", RegValue::Sz("PCI".into()))
            .map_err(err)?;
        registry
            .set_value(
                &parameters,
                "Internal_IDE_Channel",
                RegValue::Sz("IDE".into()),
            )
            .map_err(err)?;
        registry.create_key(&unplug, false).map_err(err)?;
        for key in ["DISKS", "NICS"] {
            registry
                .set_value(&unplug, key, RegValue::Dword(1))
                .map_err(err)?;
        }
        for class in ["VBD", "VIF"] {
            registry
                .create_key(
                    &format!(
                        r"{ENUM_XENBUS}\VEN_{}&DEV_{class}\_",
                        xenbus_rs::VENDOR_PREFIX
                    ),
                    false,
                )
                .map_err(err)?;
        }
    }
    writeln!(
        out,
        "registry from the previous boot: xenfilt filters *PNP0A03 (PCI) and \
         Internal_IDE_Channel (IDE); XEN\\Unplug DISKS=1 NICS=1 (PV disk and network drivers \
         installed)"
    )?;

    // ---------------------------------------------------------------- 2. xen.sys
    writeln!(out, "\n-- 2. xen.sys initialisation --")?;
    let xen: &'static Xen<'static> = leak(Xen::new(&*m.hv, &*m.guest, None, None));
    xen.initialize().map_err(err)?;
    let (major, minor) = xen.xen_version().map_err(err)?;
    writeln!(
        out,
        "xen.sys: initialised on Xen {major}.{minor} (hypercall page, shared info, per-CPU \
         vcpu_info)"
    )?;
    let (ma, mi, mc, bn) = xenbus_rs::version();
    let touch = xen.xen_touch(c"XENBUS", ma, mi, mc, bn);
    writeln!(
        out,
        "XenTouch(\"XENBUS\", {ma}.{mi}.{mc}.{bn}) -> {}",
        match touch {
            Ok(()) => "ok (versions match)".to_string(),
            Err(e) => format!("{e:#010x}"),
        }
    )?;
    let touch_old = xen.xen_touch(c"XENBUS", ma, mi, mc, bn.wrapping_add(1));
    writeln!(
        out,
        "XenTouch with another build number -> {} (a mismatched xenbus.sys would stay inert \
         and request a reboot)",
        match touch_old {
            Ok(()) => "ok".to_string(),
            Err(e) => format!("refused {e:#010x}"),
        }
    )?;

    // ---------------------------------------------------------------- 3. xenfilt
    writeln!(out, "\n-- 3. xenfilt: emulated devices and the unplug --")?;
    let platform = pci_children(&devices)
        .into_iter()
        .find(|c| c.device_id.starts_with("PCI\\VEN_5853"))
        .ok_or_else(|| err("no Xen platform device"))?;
    // The previous boot's xenbus recorded the active platform device through xen.sys.
    let recorded = XenApiActive::new(xen).set_active(
        &platform.device_id,
        &platform.instance_id,
        &platform.location,
    );
    writeln!(
        out,
        "previous boot's xenbus recorded the active device {} ({}): {recorded}",
        platform.device_id, platform.location
    )?;
    let parameters = format!(r"{SERVICES}\xenfilt\Parameters");
    let parameter = |name: &str| match m.guest.registry().query_value(&parameters, name) {
        Ok(RegValue::Sz(data)) => Some(data),
        _ => None,
    };
    let emulated = EmulatedProvider::new();
    let mut filter = Filter::new(xen, &emulated, false);
    let pci = filter
        .add_device(["ACPI\\PNP0A03"], ["*PNP0A03"], parameter)
        .ok_or_else(|| err("PCI root bus not filtered"))?;
    let ide0 = filter
        .add_device(["Internal_IDE_Channel"], [], parameter)
        .ok_or_else(|| err("IDE channel 0 not filtered"))?;
    let ide1 = filter
        .add_device(["Internal_IDE_Channel"], [], parameter)
        .ok_or_else(|| err("IDE channel 1 not filtered"))?;
    let refused = filter
        .add_device(["PCI\\VEN_8086&DEV_7010"], ["PCI\\CC_0101"], parameter)
        .is_none();
    writeln!(
        out,
        "AddDevice: filters attached to the PCI root bus and both IDE channels; the IDE \
         controller itself {}",
        if refused {
            "is not filtered"
        } else {
            "WAS FILTERED (unexpected)"
        }
    )?;
    let nic_id = pci_children(&devices)
        .into_iter()
        .find(|c| c.kind == DeviceKind::Nic)
        .map(|c| c.device_id);
    let buses = [
        ("PCI", pci, pci_children(&devices)),
        ("IDE0", ide0, ide_children(&devices, 0)),
        ("IDE1", ide1, ide_children(&devices, 1)),
    ];
    for (i, (name, bus, children)) in buses.iter().enumerate() {
        let (reported, unplugged) = relations(&mut filter, *bus, children)?;
        writeln!(
            out,
            "BusRelations {name}: {} children, {} reported (emulated children hidden), state \
             {:?}{}",
            children.len(),
            reported.len(),
            filter.state(),
            if unplugged {
                " -> UNPLUG through the platform ports"
            } else {
                ""
            }
        )?;
        if i == 0 {
            if let Some(nic) = &nic_id {
                writeln!(
                    out,
                    "  EMULATED before the unplug: IsDevicePresent({nic}) = {}; \
                     IsDiskPresent(0) = {}",
                    activation_text(device_present(&filter, nic)?),
                    disk_present(&filter, 0)?
                )?;
            }
        }
    }
    let writes = m.hv.platform().unplug_writes().to_vec();
    writeln!(
        out,
        "unplug writes to the platform port: {}",
        writes
            .iter()
            .map(|w| format!("{w:#06x}"))
            .collect::<Vec<_>>()
            .join(", ")
    )?;
    let after: Vec<Device> = m.hv.platform().devices().to_vec();
    let gone: Vec<String> = devices
        .iter()
        .filter(|d| !after.contains(d))
        .map(|d| format!("{:?}", d.kind))
        .collect();
    writeln!(out, "the platform removed: {}", gone.join(", "))?;
    for (name, bus, children) in [
        ("PCI", pci, pci_children(&after)),
        ("IDE0", ide0, ide_children(&after, 0)),
        ("IDE1", ide1, ide_children(&after, 1)),
    ] {
        let (reported, _) = relations(&mut filter, bus, &children)?;
        let names: Vec<String> = children
            .iter()
            .filter(|c| reported.contains(&c.pdo))
            .map(what)
            .collect();
        writeln!(
            out,
            "BusRelations {name} again (state {:?}): survivors reported: [{}]",
            filter.state(),
            names.join(", ")
        )?;
    }
    if let Some(nic) = &nic_id {
        writeln!(
            out,
            "EMULATED after the unplug: IsDevicePresent({nic}) = {}; IsDiskPresent(0) = {}",
            activation_text(device_present(&filter, nic)?),
            disk_present(&filter, 0)?
        )?;
    }

    // ---------------------------------------------------------------- 4. xenbus FDO
    writeln!(
        out,
        "\n-- 4. xenbus: the FDO on the platform device and its children --"
    )?;
    let mut any_active = false;
    for child in pci_children(&after) {
        let vendor =
            u16::from_str_radix(child.device_id.get(8..12).unwrap_or("0"), 16).map_err(err)?;
        let device =
            u16::from_str_radix(child.device_id.get(17..21).unwrap_or("0"), 16).map_err(err)?;
        match fdo::check_platform_vendor(vendor) {
            Err(e) => writeln!(
                out,
                "AddDevice {}: refused, vendor {vendor:#06x} is not 0x5853 ({e:?})",
                child.device_id
            )?,
            Ok(()) => {
                let vendor_name = fdo::vendor_name(xenbus_rs::VENDOR_PREFIX, device);
                let emulated = device_present(&filter, &child.device_id)?;
                let activation = emulated.map(|s| {
                    if s == EmulatedActivationStatus::FORCE_ACTIVATED {
                        FilterActivation::ForceActivated
                    } else if s == EmulatedActivationStatus::FORCE_DEACTIVATED {
                        FilterActivation::ForceDeactivated
                    } else {
                        FilterActivation::Neutral
                    }
                });
                let mut config = XenApiActive::new(xen);
                let active = fdo::decide_active(
                    activation,
                    &child.device_id,
                    &child.instance_id,
                    &child.location,
                    &mut config,
                );
                any_active |= active;
                writeln!(
                    out,
                    "AddDevice {}: Xen platform device, VendorName {vendor_name}, \"{}\", \
                     EMULATED says {:?}, active record {:?} -> {}",
                    child.device_id,
                    pdo::fdo_description(&vendor_name),
                    activation,
                    config.active_device_id(),
                    if active {
                        "ACTIVE FDO (brings up the subsystems and children)"
                    } else {
                        "inactive"
                    }
                )?;
            }
        }
    }
    let platform_device = after
        .iter()
        .find(|d| d.kind == DeviceKind::XenPlatform)
        .map(|d| d.device)
        .ok_or_else(|| err("platform device gone"))?;
    let vendor_name = fdo::vendor_name(xenbus_rs::VENDOR_PREFIX, platform_device);
    // The active FDO: creating it records the EMULATED subscription (xenbus consumed
    // EMULATED from xenfilt: an installer can check a new xenfilt against the version it
    // uses, seed README "Interfaces") and initialises its subsystems.
    let kernel: &'static DemoKernel = leak(DemoKernel::default());
    let fdo = Fdo::create(FdoSetup {
        api: xen,
        os: &*m.guest,
        kernel,
        balloon_memory: leak(OsBalloonMemory::new(&*m.guest)),
        parameters: None,
        vendor_name: vendor_name.clone(),
        active: any_active,
    });
    let recorded_version = m.guest.registry().query_value(
        &format!(r"{SERVICES}\XENFILT\Interfaces\XENBUS"),
        "EMULATED",
    );
    writeln!(
        out,
        "subscription recorded: Services\\XENFILT\\Interfaces\\XENBUS\\EMULATED = {recorded_version:?}"
    )?;

    // START: the FDO goes to D0 and brings its subsystems up; its interrupt (the
    // callback via, no per-CPU vectors on this machine) polls EVTCHN.
    let fdo_slot: &'static OnceLock<&'static Fdo> = leak(OnceLock::new());
    let _ = fdo_slot.set(fdo);
    m.hv.set_upcall_handler(Some(Arc::new(move |vcpu| {
        if let Some(f) = fdo_slot.get() {
            f.interrupt(vcpu);
        }
    })));
    fdo.d3_to_d0(FdoResources {
        upcall_vector: None,
        callback_via: 28,
        memory_bar: None,
    })
    .map_err(err)?;
    let subsystems = fdo.subsystems().ok_or_else(|| err("inactive FDO"))?;
    let store = subsystems.store;
    let gfn = m.layout().store_gfn;
    let name = store.read(None, None, b"name").map_err(err)?;
    writeln!(
        out,
        "xenbus FDO created: initialise {:?}",
        steps(fdo, "initialise ")
    )?;
    writeln!(
        out,
        "xenbus FDO D3->D0: acquire {:?}; STORE connected on ring gfn {gfn:#x}, reads name = \
         {:?}; drivers/{} = {:?}; SUSPEND with {} resume callbacks",
        steps(fdo, "acquire "),
        String::from_utf8_lossy(&name),
        fdo.driver_slot().unwrap_or(0),
        String::from_utf8_lossy(&store.read(None, None, b"drivers/0").unwrap_or_default()),
        subsystems.suspend.registered()
    )?;

    scan(out, fdo, kernel)?;
    let reported = fdo.bus_relations();
    writeln!(out, "BusRelations of the xenbus FDO: {reported:?}")?;
    for class in &reported {
        let names = IdNames {
            vendor_prefix: xenbus_rs::VENDOR_PREFIX,
            pci_device_id: platform_device,
            class,
        };
        let device_id = id_strings(BusQueryId::DeviceId, &names)?;
        let instance = id_strings(BusQueryId::InstanceId, &names)?;
        let hardware = id_strings(BusQueryId::HardwareIds, &names)?;
        let caps = pdo::capabilities(1, RemovalPolicy::default()).map_err(err)?;
        writeln!(out, "child PDO {class}:")?;
        writeln!(
            out,
            "  DeviceID   {}  InstanceID {}",
            device_id.join(" "),
            instance.join(" ")
        )?;
        writeln!(out, "  HardwareIDs {}", hardware.join(" | "))?;
        writeln!(
            out,
            "  Description \"{}\", Location \"{}\"; Removable {}, EjectSupported {}, \
             UniqueID {}, SilentInstall {}",
            pdo::device_text(&vendor_name, class, DeviceText::Description),
            pdo::device_text(&vendor_name, class, DeviceText::LocationInformation),
            caps.removable,
            caps.eject_supported,
            caps.unique_id,
            caps.silent_install
        )?;
    }

    // ---------------------------------------------------------------- 5. a C child
    writeln!(
        out,
        "\n-- 5. A child driver using the interfaces through the C vtables --"
    )?;
    let store_provider = subsystems.store_provider;
    let mut st = StoreInterfaceV2::EMPTY;
    // SAFETY: `st` is a whole V2 table; the provider is leaked ('static).
    check("STORE get_interface(2)", unsafe {
        store_if::get_interface(
            store_provider,
            2,
            (&mut st as *mut StoreInterfaceV2).cast(),
            StoreInterfaceV2::SIZE,
        )
    })?;
    let si_ = (&mut st as *mut StoreInterfaceV2) as PInterface;
    let child_name;
    // SAFETY (block): every call goes through the table get_interface filled, with its own
    // interface pointer, NUL-terminated strings and writable out pointers, as a C child does.
    unsafe {
        check("StoreAcquire", slot(st.store_acquire)?(si_))?;
        child_name = child_store_read(&st, si_, std::ptr::null_mut(), None, c"name")?;
        writeln!(
            out,
            "XENBUS_STORE v2: StoreAcquire; StoreRead(\"name\") = {child_name:?}; StoreFree"
        )?;
        check(
            "StorePrintf",
            slot(st.store_printf)?(
                si_,
                std::ptr::null_mut(),
                c"data".as_ptr().cast_mut(),
                c"demo".as_ptr().cast_mut(),
                c"%s-%u".as_ptr(),
                c"hello".as_ptr(),
                42u32,
            ),
        )?;
        let mut tx: *mut StoreTransaction = std::ptr::null_mut();
        check(
            "StoreTransactionStart",
            slot(st.store_transaction_start)?(si_, &mut tx),
        )?;
        let seen = child_store_read(&st, si_, tx, Some(c"data"), c"demo")?;
        check(
            "StorePrintf in a transaction",
            slot(st.store_printf)?(
                si_,
                tx,
                c"data".as_ptr().cast_mut(),
                c"copy".as_ptr().cast_mut(),
                c"%s".as_ptr(),
                CString::new(seen.clone()).map_err(err)?.as_ptr(),
            ),
        )?;
        let end = slot(st.store_transaction_end)?(si_, tx, 1);
        check("StoreTransactionEnd", end)?;
        let copy = store.read(None, None, b"data/copy").map_err(err)?;
        writeln!(
            out,
            "StorePrintf(data/demo, \"%s-%u\", \"hello\", 42); transaction: read {seen:?}, \
             wrote data/copy, committed -> xenstored has data/copy = {:?}",
            String::from_utf8_lossy(&copy)
        )?;
    }

    let evtchn_provider = subsystems.evtchn_provider;
    let mut ev = EvtchnInterfaceV9::EMPTY;
    // SAFETY: `ev` is a whole V9 table; the provider is leaked ('static).
    check("EVTCHN get_interface(9)", unsafe {
        evtchn_if::get_interface(
            evtchn_provider,
            9,
            (&mut ev as *mut EvtchnInterfaceV9).cast(),
            EvtchnInterfaceV9::SIZE,
        )
    })?;
    let ei = (&mut ev as *mut EvtchnInterfaceV9) as PInterface;
    // SAFETY (block): calls through the filled table with its own interface pointer; the
    // variadic EvtchnOpen gets the UNBOUND tail (RemoteDomain, Mask) as a C caller passes it.
    unsafe {
        check("EvtchnAcquire", slot(ev.evtchn_acquire)?(ei))?;
        let ch = slot(ev.evtchn_open)?(
            ei,
            EvtchnType::UNBOUND,
            Some(child_isr),
            std::ptr::null_mut(),
            0u32,
            1u32,
        );
        if ch.is_null() {
            return Err(err("EvtchnOpen(UNBOUND) returned NULL"));
        }
        let port = slot(ev.evtchn_get_port)?(ei, ch);
        slot(ev.evtchn_unmask)?(ei, ch, 0, 0);
        let me = m.hv.domid();
        let dom0 = m.hv.backend_bind_interdomain(0, me, port).map_err(err)?;
        let before = ISR_HITS.load(Ordering::SeqCst);
        m.hv.backend_send(0, dom0).map_err(err)?;
        let after_send = ISR_HITS.load(Ordering::SeqCst);
        m.hv.backend_take_pending(0);
        slot(ev.evtchn_send)?(ei, ch);
        let backend_saw = m.hv.backend_take_pending(0).contains(&dom0);
        slot(ev.evtchn_close)?(ei, ch);
        slot(ev.evtchn_release)?(ei);
        writeln!(
            out,
            "XENBUS_EVTCHN v9: EvtchnOpen(UNBOUND, remote dom0) -> port {port}; dom0 binds \
             port {dom0} and notifies -> child ISR ran {} time(s); EvtchnSend -> dom0 sees \
             its port pending: {backend_saw}; EvtchnClose",
            after_send - before
        )?;
    }

    let gnttab_provider = subsystems.gnttab_provider;
    let mut gt = GnttabInterfaceV4::EMPTY;
    // SAFETY: `gt` is a whole V4 table; the provider is leaked ('static).
    check("GNTTAB get_interface(4)", unsafe {
        gnttab_if::get_interface(
            gnttab_provider,
            4,
            (&mut gt as *mut GnttabInterfaceV4).cast(),
            GnttabInterfaceV4::SIZE,
        )
    })?;
    let gi = (&mut gt as *mut GnttabInterfaceV4) as PInterface;
    let page = common::os::Os::alloc_page(&*m.guest).ok_or_else(|| err("no page"))?;
    let greeting = b"hello dom0, from the guest";
    // SAFETY: Os::alloc_page hands out a zeroed page mapped at `va` for 4096 bytes.
    unsafe { std::ptr::copy_nonoverlapping(greeting.as_ptr(), page.va as *mut u8, greeting.len()) };
    // SAFETY (block): calls through the filled table with its own interface pointer; the
    // backend's mapping pointer covers the whole granted frame while mapped.
    unsafe {
        check("GnttabAcquire", slot(gt.gnttab_acquire)?(gi))?;
        let mut cache = std::ptr::null_mut();
        check(
            "GnttabCreateCache",
            slot(gt.gnttab_create_cache)?(
                gi,
                c"demo".as_ptr(),
                0,
                0,
                None,
                None,
                std::ptr::null_mut(),
                &mut cache,
            ),
        )?;
        let mut entry = std::ptr::null_mut();
        check(
            "GnttabPermitForeignAccess",
            slot(gt.gnttab_permit_foreign_access)?(
                gi,
                cache,
                0,
                0,
                page.pfn as usize,
                TRUE,
                &mut entry,
            ),
        )?;
        let gref = slot(gt.gnttab_get_reference)?(gi, entry);
        let (handle, frame) = m.hv.backend_map_grant(0, gref, true).map_err(err)?;
        let seen = std::slice::from_raw_parts(frame, greeting.len()).to_vec();
        let busy = slot(gt.gnttab_revoke_foreign_access)?(gi, cache, 0, entry);
        m.hv.backend_unmap_grant(0, handle).map_err(err)?;
        let revoked = slot(gt.gnttab_revoke_foreign_access)?(gi, cache, 0, entry);
        slot(gt.gnttab_destroy_cache)?(gi, cache);
        slot(gt.gnttab_release)?(gi);
        writeln!(
            out,
            "XENBUS_GNTTAB v4: PermitForeignAccess(pfn {:#x}, read-only) -> ref {gref}; dom0 \
             maps it and reads {:?}; Revoke while mapped -> {busy:#010x}; after dom0 unmaps \
             -> {revoked:#010x}",
            page.pfn,
            String::from_utf8_lossy(&seen)
        )?;
    }
    common::os::Os::free_page(&*m.guest, page);

    let range_provider = subsystems.range_set;
    let mut rs = RangeSetInterfaceV1::EMPTY;
    // SAFETY: `rs` is a whole V1 table; the provider is leaked ('static).
    check("RANGE_SET get_interface(1)", unsafe {
        range_set_if::get_interface(
            range_provider,
            1,
            (&mut rs as *mut RangeSetInterfaceV1).cast(),
            RangeSetInterfaceV1::SIZE,
        )
    })?;
    let ri = (&mut rs as *mut RangeSetInterfaceV1) as PInterface;
    // SAFETY (block): calls through the filled table with its own interface pointer.
    unsafe {
        check("RangeSetAcquire", slot(rs.range_set_acquire)?(ri))?;
        let mut set = std::ptr::null_mut();
        check(
            "RangeSetCreate",
            slot(rs.range_set_create)?(ri, c"demo-ids".as_ptr(), &mut set),
        )?;
        check("RangeSetPut", slot(rs.range_set_put)?(ri, set, 100, 16))?;
        let mut start = 0i64;
        check(
            "RangeSetPop",
            slot(rs.range_set_pop)?(ri, set, 4, &mut start),
        )?;
        let held = slot(rs.range_set_get)?(ri, set, start, 4);
        slot(rs.range_set_destroy)?(ri, set);
        slot(rs.range_set_release)?(ri);
        writeln!(
            out,
            "XENBUS_RANGE_SET v1: put [100,116), popped 4 ids from {start}, Get on them \
             afterwards -> {held:#010x} (no longer in the set); destroyed"
        )?;
    }

    let suspend_provider = subsystems.suspend_provider;
    let mut sp = SuspendInterfaceV1::EMPTY;
    // SAFETY: `sp` is a whole V1 table; the provider is leaked ('static).
    check("SUSPEND get_interface(1)", unsafe {
        suspend_if::get_interface(
            suspend_provider,
            1,
            (&mut sp as *mut SuspendInterfaceV1).cast(),
            SuspendInterfaceV1::SIZE,
        )
    })?;
    let spi = (&mut sp as *mut SuspendInterfaceV1) as PInterface;
    // SAFETY (block): calls through the filled table with its own interface pointer.
    unsafe {
        check("SuspendAcquire", slot(sp.acquire)?(spi))?;
        let mut early = std::ptr::null_mut();
        let mut late = std::ptr::null_mut();
        check(
            "SuspendRegister(EARLY)",
            slot(sp.register)?(
                spi,
                SuspendCallbackType::EARLY,
                Some(child_suspend_early),
                std::ptr::null_mut(),
                &mut early,
            ),
        )?;
        check(
            "SuspendRegister(LATE)",
            slot(sp.register)?(
                spi,
                SuspendCallbackType::LATE,
                Some(child_suspend_late),
                std::ptr::null_mut(),
                &mut late,
            ),
        )?;
        writeln!(
            out,
            "XENBUS_SUSPEND v1: registered EARLY and LATE callbacks; GetCount = {}",
            slot(sp.get_count)?(spi)
        )?;
    }

    // ---------------------------------------------------------------- 6. hot plug
    writeln!(
        out,
        "\n-- 6. A vif hot-added and removed by the toolstack --"
    )?;
    // The FDO's scan thread is woken by its watch on `device` (added at D3->D0 on the
    // thread's KEVENT).
    let mut wakeups = m.guest.event_sets(SCAN_EVENT);
    writeln!(
        out,
        "xenbus: watch on device/ registered at D3->D0 (fired {wakeups} time at registration)"
    )?;
    let mut woken = |out: &mut dyn Write| -> io::Result<()> {
        let now = m.guest.event_sets(SCAN_EVENT);
        writeln!(
            out,
            "  the watch on device/ set the scan thread's event {} time(s)",
            now - wakeups
        )?;
        wakeups = now;
        Ok(())
    };
    let vif = ts
        .add_device(
            domid,
            DeviceClass::Vif {
                mac: "00:16:3e:5a:5a:01".into(),
            },
            0,
            BackendMode::Normal,
        )
        .map_err(err)?;
    writeln!(out, "toolstack: add vif 0 (mac 00:16:3e:5a:5a:01)")?;
    woken(out)?;
    scan(out, fdo, kernel)?;
    writeln!(
        out,
        "BusRelations of the xenbus FDO: {:?}",
        fdo.bus_relations()
    )?;
    ts.remove_device(&vif).map_err(err)?;
    let backend = format!("/local/domain/0/backend/vif/{domid}/0");
    match ts.state(&backend) {
        Some(state) => {
            writeln!(
                out,
                "toolstack: remove vif 0 (backend state {}); the frontend answers Closed",
                state.0
            )?;
            store
                .write(None, None, b"device/vif/0/state", b"6")
                .map_err(err)?;
            ts.run().map_err(err)?;
        }
        None => writeln!(
            out,
            "toolstack: remove vif 0 (no frontend had connected: backend and frontend \
             directories removed at once)"
        )?,
    }
    woken(out)?;
    let class_dir = format!("/local/domain/{domid}/device/vif");
    let instances = ts.client().directory(0, &class_dir).map_err(err)?;
    writeln!(
        out,
        "device/vif now holds {instances:?} instances; the class directory itself remains"
    )?;
    scan(out, fdo, kernel)?;
    writeln!(
        out,
        "  (as upstream, a class PDO lives while its directory under device/ exists; the \
         class driver sees its instance vanish)"
    )?;
    ts.client().rm(0, &class_dir).map_err(err)?;
    writeln!(out, "toolstack (dom0): xenstore-rm {class_dir}")?;
    woken(out)?;
    let outcome = scan(out, fdo, kernel)?;
    writeln!(
        out,
        "BusRelations of the xenbus FDO: {:?}",
        fdo.bus_relations()
    )?;
    for class in &outcome.missing {
        writeln!(
            out,
            "IRP_MN_REMOVE_DEVICE on the {class} PDO -> destroyed: {}",
            fdo.child_removed(class)
        )?;
    }

    // ---------------------------------------------------------------- 7. suspend/resume
    writeln!(out, "\n-- 7. Suspend and resume --")?;
    let sets = m.guest.event_sets(SUSPEND_EVENT);
    ts.request_shutdown(domid, ShutdownRequest::Suspend)
        .map_err(err)?;
    let request = store.read(None, None, b"control/shutdown").map_err(err)?;
    writeln!(
        out,
        "toolstack: control/shutdown = {:?}; xenbus's watch event fired {} time(s)",
        String::from_utf8_lossy(&request),
        m.guest.event_sets(SUSPEND_EVENT) - sets
    )?;
    let old_port = xen
        .hvm_get_param(xen_include::xen::hvm::params::HvmParam::STORE_EVTCHN.0)
        .map_err(err)?;
    m.hv.set_suspend_outcome(SuspendOutcome::Resume);
    let before = fdo.trace().len();
    // The suspend thread's pass: clears the request and triggers SUSPEND.
    let step = fdo.suspend_step();
    let resumed: Vec<&str> = fdo.trace().get(before..).unwrap_or_default().to_vec();
    let cleared = store.read(None, None, b"control/shutdown").map_err(err)?;
    // SAFETY (block): calls through the child's SUSPEND and STORE tables as before.
    unsafe {
        let count = slot(sp.get_count)?(spi);
        let new_port = xen
            .hvm_get_param(xen_include::xen::hvm::params::HvmParam::STORE_EVTCHN.0)
            .map_err(err)?;
        writeln!(
            out,
            "xenbus suspend thread: {step:?}, control/shutdown now {:?}",
            String::from_utf8_lossy(&cleared)
        )?;
        writeln!(
            out,
            "SuspendTrigger: SCHEDOP_shutdown(suspend) -> resumed on a new host; GetCount = \
             {count}; xenbus resume callbacks ran in order {resumed:?}; the child's EARLY ran {} \
             and LATE {} time(s); store event channel re-opened (port {old_port} before, \
             {new_port} after)",
            CHILD_EARLY.load(Ordering::SeqCst),
            CHILD_LATE.load(Ordering::SeqCst)
        )?;
        let again = child_store_read(&st, si_, std::ptr::null_mut(), None, c"name")?;
        writeln!(
            out,
            "after resume the child reads name through its STORE vtable again: {again:?}"
        )?;
        slot(st.store_release)?(si_);
        slot(sp.release)?(spi);
    }
    fdo.d0_to_d3();
    writeln!(
        out,
        "xenbus FDO D0->D3 (STOP): release {:?}",
        steps(fdo, "release ")
    )?;
    writeln!(
        out,
        "\n-- 8. Another machine: legacy and vendor platform devices (a VENDOR_DEVICE_ID=C000 \
         build, no xenfilt below) --"
    )?;
    vendor_device_boot(out)?;
    writeln!(out, "\n== demo done ==")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_demo_tells_the_whole_story() {
        let mut out = Vec::new();
        super::run(&mut out).expect("the demo runs");
        let text = String::from_utf8(out).expect("utf-8");
        println!("{text}");
        let has = |needle: &str| {
            assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
        };
        has("-> UNPLUG through the platform ports");
        has("unplug writes to the platform port: 0x0009, 0x0002");
        has("Interfaces\\XENBUS\\EMULATED = Ok(Dword(3))");
        has("IsDiskPresent(0) = true");
        has("EMULATED after the unplug: IsDevicePresent(PCI\\VEN_10EC&DEV_8139&SUBSYS_00000000&REV_20) = not present; IsDiskPresent(0) = false");
        has("survivors reported: [IDE CD-ROM]");
        has("ACTIVE FDO");
        let prefix = xenbus_rs::VENDOR_PREFIX;
        has("child PDO VBD:");
        has(&format!(
            "DeviceID   XENBUS\\VEN_{prefix}&DEV_VBD  InstanceID _"
        ));
        has(&format!(
            "HardwareIDs XENBUS\\VEN_{prefix}0001&DEV_VBD&REV_"
        ));
        has("| XENCLASS");
        // The name the child reads through the STORE vtable is the domain's name.
        let name = text
            .lines()
            .find_map(|l| l.strip_prefix("domain ")?.split('"').nth(1))
            .expect("domain line");
        assert!(!name.is_empty());
        has(&format!("StoreRead(\"name\") = {name:?}"));
        has(&format!(
            "reads name through its STORE vtable again: {name:?}"
        ));
        has("xenstored has data/copy = \"hello-42\"");
        has("child ISR ran 1 time(s)");
        has("reads \"hello dom0, from the guest\"");
        has("after dom0 unmaps -> 0x00000000");
        has("dom0 sees its port pending: true");
        has("created [\"VIF\"]");
        has("the watch on device/ set the scan thread's event");
        has("BusRelations of the xenbus FDO: [\"VBD\", \"VIF\"]");
        has("missing [\"VIF\"]");
        has("IRP_MN_REMOVE_DEVICE on the VIF PDO -> destroyed: true");
        has("xenbus's watch event fired 1 time(s)");
        has("resumed on a new host; GetCount = 1");
        has("the child's EARLY ran 1 and LATE 1 time(s)");
        has(
            r"PCI\VEN_5853&DEV_0001&SUBSYS_00015853&REV_01 (PCI bus 0, device 2, function 0): inactive",
        );
        has(
            r"PCI\VEN_5853&DEV_C000&SUBSYS_C0005853&REV_01 (PCI bus 0, device 6, function 0): ACTIVE FDO",
        );
        has("resume callbacks ran in order [\"early evtchn\", \"early shared_info\", \"early gnttab\", \"early store\", \"late evtchn\", \"late store\", \"late console\", \"late fdo\"]");
        has("initialise [\"debug\", \"suspend\", \"shared_info\", \"evtchn\", \"range_set\", \"cache\", \"gnttab\", \"store\", \"console\", \"unplug\", \"balloon\"]");
        has("release [\"balloon\", \"console\", \"store\", \"gnttab\", \"evtchn\", \"shared_info\", \"hole\", \"range_set\", \"suspend\", \"debug\"]");
        has("control/shutdown now \"\"");
    }
}
