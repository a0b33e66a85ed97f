//! `cargo xtask demo`: boots the package on the simulator through the simulator's PnP
//! manager — xen.sys, xenfilt over the PCI and IDE buses, the xenbus FDO on the platform
//! device (AddDevice, START, BusRelations), its child PDOs, a child driver querying the
//! interfaces with IRP_MN_QUERY_INTERFACE and calling through their C vtables, a vif
//! hot-added and removed, a suspend/resume, the balloon, an orderly stop and removal, and a
//! machine with two platform devices — printing every IRP, its answer and what xenbus did.
//!
//! Every decision printed is made by the project's real cores (`xen`, `xenfilt`, `xenbus`
//! with its production `FdoServices`/`PdoServices`, `xen-include`) running on `xen-sim`; this
//! module plays the toolstack operator and a C child driver, and checks each step: the demo
//! fails (exits nonzero) as soon as one does not behave as it should.

use std::cell::RefCell;
use std::ffi::{c_char, c_void, CStr, CString};
use std::io::{self, Write};
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use common::os::RegValue;
use common::pnp::*;
use xen_include::api::XenApi;
use xen_include::guid::Guid;
use xen_include::interfaces::emulated::{
    EmulatedActivationStatus, GUID_XENFILT_EMULATED_INTERFACE,
};
use xen_include::interfaces::evtchn::{
    EvtchnInterfaceV9, EvtchnType, GUID_XENBUS_EVTCHN_INTERFACE,
};
use xen_include::interfaces::gnttab::{GnttabInterfaceV4, GUID_XENBUS_GNTTAB_INTERFACE};
use xen_include::interfaces::range_set::{RangeSetInterfaceV1, GUID_XENBUS_RANGE_SET_INTERFACE};
use xen_include::interfaces::store::{
    StoreInterfaceV2, StoreTransaction, StoreWatch, GUID_XENBUS_STORE_INTERFACE,
    XENBUS_STORE_INTERFACE_VERSION_MAX,
};
use xen_include::interfaces::suspend::{
    SuspendCallbackType, SuspendInterfaceV1, GUID_XENBUS_SUSPEND_INTERFACE,
};
use xen_include::interfaces::{Boolean, KInterrupt, PInterface, VersionedInterface, TRUE};
use xen_include::revision::{write_id, BusQueryId, IdNames};
use xen_include::status::*;
use xen_sim::hv::SuspendOutcome;
use xen_sim::platform::{Device, DeviceKind};
use xen_sim::pnp::{ide_children, pci_children, PnpChild};
use xen_sim::pnp_manager::{DeviceStack, NodeState, PciPdo, PnpManager};
use xen_sim::toolstack::{BackendMode, DeviceClass, ShutdownRequest};
use xenbus::active::XenApiActive;
use xenbus::fdo::ActiveConfig;
use xenbus::harness::stack::{add_device, FdoStack, Log};
use xenbus::harness::{leak, Setup, SimKernel, World};
use xenbus::pnp::PnpState;
use xenfilt::filter::{BusHandle, Filter};
use xenfilt::harness::{is_device_present, is_disk_present, relations, ChildFilterDevice};
use xenfilt::interface::EmulatedProvider;

const SERVICES: &str = r"SYSTEM\CurrentControlSet\Services";
const ENUM_XENBUS: &str = r"SYSTEM\CurrentControlSet\Enum\XENBUS";

fn err(e: impl std::fmt::Debug) -> io::Error {
    io::Error::other(format!("{e:?}"))
}

/// Fail the demo unless `cond` holds.
macro_rules! ensure {
    ($cond:expr, $($what:tt)+) => {
        if !$cond {
            return Err(io::Error::other(format!(
                "not as expected: {} ({})",
                format!($($what)+),
                stringify!($cond)
            )));
        }
    };
}

/// `cargo xtask demo`.
pub fn main() -> std::process::ExitCode {
    let stdout = io::stdout();
    let mut out = stdout.lock();
    match run(&mut out) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            let _ = out.flush();
            eprintln!("demo failed: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

// ------------------------------------------------------------------ the IRP trace

fn status_name(status: NtStatus) -> String {
    match status {
        STATUS_SUCCESS => "STATUS_SUCCESS".into(),
        STATUS_NOT_SUPPORTED => "STATUS_NOT_SUPPORTED".into(),
        STATUS_UNSUCCESSFUL => "STATUS_UNSUCCESSFUL".into(),
        STATUS_BUFFER_OVERFLOW => "STATUS_BUFFER_OVERFLOW".into(),
        STATUS_BUFFER_TOO_SMALL => "STATUS_BUFFER_TOO_SMALL".into(),
        STATUS_INVALID_PARAMETER => "STATUS_INVALID_PARAMETER".into(),
        other => format!("{:#010x}", other as u32),
    }
}

fn guid_name(guid: Guid) -> String {
    let known = [
        (GUID_XENBUS_STORE_INTERFACE, "XENBUS_STORE"),
        (GUID_XENBUS_EVTCHN_INTERFACE, "XENBUS_EVTCHN"),
        (GUID_XENBUS_GNTTAB_INTERFACE, "XENBUS_GNTTAB"),
        (GUID_XENBUS_RANGE_SET_INTERFACE, "XENBUS_RANGE_SET"),
        (GUID_XENBUS_SUSPEND_INTERFACE, "XENBUS_SUSPEND"),
        (GUID_XENFILT_EMULATED_INTERFACE, "XENFILT_EMULATED"),
    ];
    known
        .iter()
        .find(|(g, _)| *g == guid)
        .map_or_else(|| format!("{guid:?}"), |(_, name)| (*name).to_string())
}

/// `IRP_MN_*` and its parameters, short.
fn describe(request: &PnpRequest) -> String {
    match request {
        PnpRequest::Start(r) => format!("START_DEVICE({} resources)", r.translated.len()),
        PnpRequest::QueryDeviceRelations(kind) => format!("QUERY_DEVICE_RELATIONS({kind:?})"),
        PnpRequest::QueryInterface(q) => format!(
            "QUERY_INTERFACE({} v{}, {} bytes)",
            guid_name(q.guid),
            q.version,
            q.size
        ),
        PnpRequest::QueryCapabilities(_) => "QUERY_CAPABILITIES".into(),
        PnpRequest::FilterResourceRequirements(_) => "FILTER_RESOURCE_REQUIREMENTS".into(),
        PnpRequest::QueryResourceRequirements => "QUERY_RESOURCE_REQUIREMENTS".into(),
        PnpRequest::QueryDeviceText(kind, _) => format!("QUERY_DEVICE_TEXT({kind:?})"),
        PnpRequest::QueryId(kind) => format!("QUERY_ID({kind:?})"),
        PnpRequest::QueryBusInformation => "QUERY_BUS_INFORMATION".into(),
        PnpRequest::QueryStop => "QUERY_STOP_DEVICE".into(),
        PnpRequest::Stop => "STOP_DEVICE".into(),
        PnpRequest::CancelStop => "CANCEL_STOP_DEVICE".into(),
        PnpRequest::QueryRemove => "QUERY_REMOVE_DEVICE".into(),
        PnpRequest::Remove => "REMOVE_DEVICE".into(),
        PnpRequest::CancelRemove => "CANCEL_REMOVE_DEVICE".into(),
        PnpRequest::SurpriseRemoval => "SURPRISE_REMOVAL".into(),
        PnpRequest::Eject => "EJECT".into(),
        other => format!("{other:?}"),
    }
}

fn interrupts(list: &[RequirementDescriptor]) -> (usize, usize) {
    let all = list
        .iter()
        .filter(|d| matches!(d.requirement, Requirement::Interrupt { .. }))
        .count();
    let messages = list
        .iter()
        .filter(|d| matches!(d.requirement, Requirement::Interrupt { flags: f, .. } if f & flags::INTERRUPT_MESSAGE != 0))
        .count();
    (all, messages)
}

/// The answer, short.
fn answer_text(answer: &PnpAnswer) -> String {
    let status = status_name(answer.status);
    match &answer.reply {
        PnpReply::Nothing => status,
        PnpReply::Relations(names) => format!("{status} {names:?}"),
        PnpReply::Text(text) => format!("{status} {text:?}"),
        PnpReply::TextList(list) => match list.as_slice() {
            [] => format!("{status} []"),
            [one] => format!("{status} [{one:?}]"),
            [first, .., last] => format!("{status} [{first:?} … {last:?}] ({} IDs)", list.len()),
        },
        PnpReply::Capabilities(c) => format!(
            "{status} (Removable {}, EjectSupported {}, SurpriseRemovalOK {}, UniqueID {})",
            c.removable, c.eject_supported, c.surprise_removal_ok, c.unique_id
        ),
        PnpReply::BusInformation(b) => format!("{status} (bus type {:?})", b.bus_type),
        PnpReply::Requirements(r) => {
            let list = r.alternatives.first().map_or(&[][..], Vec::as_slice);
            let (all, messages) = interrupts(list);
            format!(
                "{status} ({} descriptors, {all} interrupts of which {messages} message-signalled)",
                list.len()
            )
        }
        PnpReply::DeviceState(bits) => format!("{status} (state {bits:#x})"),
        other => format!("{status} {other:?}"),
    }
}

/// What was sent to the stacks, in order: each IRP, its answer and the calls xenbus's
/// services made for it.
#[derive(Clone)]
struct Trace {
    lines: Rc<RefCell<Vec<String>>>,
    services: Log,
}

impl Trace {
    fn new(services: Log) -> Self {
        Self {
            lines: Rc::default(),
            services,
        }
    }

    fn record(&self, name: &str, what: String) {
        let mut lines = self.lines.borrow_mut();
        lines.push(format!("{name:<6} {what}"));
        let calls = std::mem::take(&mut *self.services.lock().unwrap_or_else(|e| e.into_inner()));
        if !calls.is_empty() {
            lines.push(format!("         xenbus: {}", calls.join("; ")));
        }
    }

    /// Print and forget what was recorded.
    fn print(&self, out: &mut dyn Write) -> io::Result<()> {
        for line in self.lines.borrow_mut().drain(..) {
            writeln!(out, "  {line}")?;
        }
        Ok(())
    }
}

/// A device stack whose IRPs are recorded in the trace.
struct Tap {
    name: String,
    inner: Box<dyn DeviceStack>,
    trace: Trace,
}

impl DeviceStack for Tap {
    fn pnp(&mut self, request: &PnpRequest, incoming: PnpAnswer) -> PnpAnswer {
        let answer = self.inner.pnp(request, incoming);
        self.trace.record(
            &self.name,
            format!("IRP_MN_{} -> {}", describe(request), answer_text(&answer)),
        );
        answer
    }
    fn power(&mut self, request: &PowerRequest) -> NtStatus {
        let status = self.inner.power(request);
        let what = match request {
            PowerRequest::Set(state, _) => format!("IRP_MN_SET_POWER({state:?})"),
            PowerRequest::Query(state, _) => format!("IRP_MN_QUERY_POWER({state:?})"),
            other => format!("{other:?}"),
        };
        self.trace
            .record(&self.name, format!("{what} -> {}", status_name(status)));
        status
    }
    fn child(&mut self, name: &str) -> Option<Box<dyn DeviceStack>> {
        let inner = self.inner.child(name)?;
        Some(Box::new(Tap {
            name: name.into(),
            inner,
            trace: self.trace.clone(),
        }))
    }
}

// ------------------------------------------------------------------ xenfilt in the stack

/// BusRelations of `bus` through the filter: which PDOs it reports, and whether this query
/// issued the unplug.
fn bus_relations(
    filter: &mut Filter<'_>,
    bus: BusHandle,
    children: &[PnpChild],
) -> io::Result<(Vec<usize>, bool)> {
    let answer = relations(children, |infos| filter.bus_relations(bus, infos, |_| None))
        .ok_or_else(|| err("unknown bus"))?;
    Ok((answer.report, answer.unplugged))
}

/// `EmulatedIsDevicePresent` through the C vtable.
fn present(
    provider: &EmulatedProvider,
    device_id: &str,
) -> io::Result<Option<EmulatedActivationStatus>> {
    is_device_present(provider, device_id).map_err(err)
}

fn activation_text(a: Option<EmulatedActivationStatus>) -> &'static str {
    match a {
        None => "not present",
        Some(s) if s == EmulatedActivationStatus::FORCE_ACTIVATED => "present, force-activated",
        Some(s) if s == EmulatedActivationStatus::FORCE_DEACTIVATED => "present, force-deactivated",
        Some(_) => "present, neutral",
    }
}

fn what(child: &PnpChild) -> String {
    match child.kind {
        DeviceKind::IdeDisk { .. } => "IDE disk".into(),
        DeviceKind::IdeCdrom { .. } => "IDE CD-ROM".into(),
        ref kind => format!("{kind:?}"),
    }
}

// ------------------------------------------------------------------ a C child driver

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

fn check(what: &str, status: NtStatus) -> io::Result<()> {
    if status == STATUS_SUCCESS {
        Ok(())
    } else {
        Err(err(format!("{what} failed with {}", status_name(status))))
    }
}

/// An interface the child obtained with IRP_MN_QUERY_INTERFACE: the buffer it owns and
/// the table in it.
struct Queried<T> {
    _buffer: xen_sim::pnp_manager::QueriedInterface,
    table: T,
    interface: PInterface,
}

/// The child driver's IRP_MN_QUERY_INTERFACE to the PDO at `path` for `T`.
fn query_interface<T: VersionedInterface + Copy>(
    pnp: &mut PnpManager,
    path: &[&str],
) -> io::Result<Queried<T>> {
    let mut buffer = pnp
        .query_interface(
            path,
            T::GUID,
            T::VERSION,
            T::SIZE as u16,
            STATUS_NOT_SUPPORTED,
        )
        .ok_or_else(|| err("no such device"))?;
    check(
        &format!("QUERY_INTERFACE({} v{})", guid_name(T::GUID), T::VERSION),
        buffer.status,
    )?;
    let interface = buffer.as_ptr();
    // SAFETY: the PDO filled the caller's buffer (T::SIZE bytes, 8-aligned) with a T.
    let table = unsafe { interface.cast::<T>().read() };
    Ok(Queried {
        _buffer: buffer,
        table,
        interface: interface.cast(),
    })
}

/// A C child's `StoreRead` then `StoreFree` through its STORE table.
///
/// # Safety
/// `q` holds a STORE table filled by the PDO, and `tx` is NULL or a live transaction of it.
unsafe fn store_read(
    q: &Queried<StoreInterfaceV2>,
    tx: *mut StoreTransaction,
    prefix: Option<&CStr>,
    node: &CStr,
) -> io::Result<String> {
    let mut buffer: *mut c_char = std::ptr::null_mut();
    let prefix = prefix.map_or(std::ptr::null_mut(), |p| p.as_ptr().cast_mut());
    let (st, i) = (&q.table, q.interface);
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

/// EVTCHN v9: an unbound channel for dom0, dom0 binds and notifies (the child's ISR runs),
/// the child notifies (dom0 sees it pending), closed. (ISR runs, dom0 saw it.)
///
/// # Safety
/// `q` holds an EVTCHN table filled by the PDO, acquired.
unsafe fn evtchn_round_trip(
    world: &World,
    q: &Queried<EvtchnInterfaceV9>,
) -> io::Result<(u32, u32, u32, bool)> {
    let (ev, ei) = (&q.table, q.interface);
    let m = world.m;
    // SAFETY (block): calls through the filled table with its own interface pointer; the
    // variadic EvtchnOpen gets the UNBOUND tail (RemoteDomain, Mask) as a C caller passes it.
    unsafe {
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
        let dom0 =
            m.hv.backend_bind_interdomain(0, m.hv.domid(), port)
                .map_err(err)?;
        let before = ISR_HITS.load(Ordering::SeqCst);
        m.hv.backend_send(0, dom0).map_err(err)?;
        let hits = ISR_HITS.load(Ordering::SeqCst) - before;
        m.hv.backend_take_pending(0);
        slot(ev.evtchn_send)?(ei, ch);
        let seen = m.hv.backend_take_pending(0).contains(&dom0);
        slot(ev.evtchn_close)?(ei, ch);
        Ok((port, dom0, hits, seen))
    }
}

/// A REG_MULTI_SZ / single ID as the revision table writes it, split at its NULs.
fn id_strings(kind: BusQueryId, names: &IdNames<'_>) -> io::Result<Vec<String>> {
    let mut text = String::new();
    write_id(kind, names, &mut text).map_err(err)?;
    Ok(text
        .split('\0')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect())
}

/// The child PDOs of `fdo` as PnP built them, checked against the revision table.
fn show_children(
    out: &mut dyn Write,
    pnp: &PnpManager,
    root: &str,
    pci_device_id: u16,
    only: Option<&str>,
) -> io::Result<Vec<String>> {
    let node = pnp.node(&[root]).ok_or_else(|| err("no bus node"))?;
    let mut classes = Vec::new();
    for (class, child) in &node.children {
        if only.is_some_and(|o| o != class) {
            continue;
        }
        let names = IdNames {
            vendor_prefix: xenbus_rs::VENDOR_PREFIX,
            pci_device_id,
            class,
        };
        let device_id = id_strings(BusQueryId::DeviceId, &names)?;
        let instance_id = id_strings(BusQueryId::InstanceId, &names)?;
        let hardware = id_strings(BusQueryId::HardwareIds, &names)?;
        let compatible = id_strings(BusQueryId::CompatibleIds, &names)?;
        ensure!(
            [child.device_id.clone()] == device_id.as_slice()
                && [child.instance_id.clone()] == instance_id.as_slice()
                && child.hardware_ids == hardware
                && child.compatible_ids == compatible,
            "the {class} PDO's IDs are the revision table's"
        );
        ensure!(
            child.state == NodeState::Started,
            "the {class} PDO started ({:?})",
            child.state
        );
        writeln!(
            out,
            "child PDO {class} (started, IDs as the revision table says):"
        )?;
        writeln!(
            out,
            "  DeviceID {}  InstanceID {}",
            child.device_id, child.instance_id
        )?;
        writeln!(out, "  HardwareIDs   {}", child.hardware_ids.join(" | "))?;
        writeln!(out, "  CompatibleIDs {}", child.compatible_ids.join(" | "))?;
        writeln!(
            out,
            "  Description {:?}, Location {:?}",
            child.description.as_deref().unwrap_or("-"),
            child.location.as_deref().unwrap_or("-")
        )?;
        classes.push(class.clone());
    }
    Ok(classes)
}

/// Runs the demo, writing its report to `out`.
pub fn run(out: &mut dyn Write) -> io::Result<()> {
    // ---------------------------------------------------------------- 1. the machine
    let xenfilt_parameters = format!(r"{SERVICES}\xenfilt\Parameters");
    let unplug = format!(r"{SERVICES}\XEN\Unplug");
    let world = World::boot(Setup {
        registry: vec![
            (
                xenfilt_parameters.clone(),
                "*PNP0A03",
                RegValue::Sz("PCI".into()),
            ),
            (
                xenfilt_parameters.clone(),
                "Internal_IDE_Channel",
                RegValue::Sz("IDE".into()),
            ),
            (unplug.clone(), "DISKS", RegValue::Dword(1)),
            (unplug, "NICS", RegValue::Dword(1)),
        ],
        // PnP enumerated the PV vbd and vif classes on an earlier boot.
        keys: ["VBD", "VIF"]
            .iter()
            .map(|class| {
                format!(
                    r"{ENUM_XENBUS}\VEN_{}&DEV_{class}\_",
                    xenbus_rs::VENDOR_PREFIX
                )
            })
            .collect(),
        balloon_nodes: true,
        ..Setup::default()
    });
    let m = world.m;
    let domid = world.domid;
    let xen = world.xen;
    writeln!(
        out,
        "== XenBus-rs package demo: the package boots on the simulator through its PnP manager =="
    )?;
    writeln!(out, "\n-- 1. The simulated machine --")?;
    let config = xen_sim::toolstack::machine::StoreService::domain_config(m);
    writeln!(
        out,
        "domain {domid} \"{}\" with {} vCPUs; store ring gfn {:#x}, event channel {}; dom0's \
         toolstack gave it a vbd (xvda)",
        config.name, world.vcpus, config.store_gfn, config.store_port
    )?;
    let devices: Vec<Device> = m.hv.platform().devices().to_vec();
    for d in &devices {
        writeln!(
            out,
            "  PCI slot {:2}: {:04x}:{:04x} {:?}",
            d.slot, d.vendor, d.device, d.kind
        )?;
    }
    writeln!(
        out,
        "registry from the previous boot: xenfilt filters *PNP0A03 (PCI) and \
         Internal_IDE_Channel (IDE); XEN\\Unplug DISKS=1 NICS=1 (PV disk and network drivers \
         installed)"
    )?;

    // ---------------------------------------------------------------- 2. xen.sys
    writeln!(out, "\n-- 2. xen.sys initialisation --")?;
    let (major, minor) = xen.xen_version().map_err(err)?;
    writeln!(
        out,
        "xen.sys: initialised on Xen {major}.{minor} (hypercall page, shared info, per-CPU \
         vcpu_info)"
    )?;
    let (ma, mi, mc, bn) = xenbus_rs::version();
    let touch = xen.xen_touch(c"XENBUS", ma, mi, mc, bn);
    ensure!(
        touch.is_ok(),
        "XenTouch with the package's own version succeeds"
    );
    writeln!(
        out,
        "XenTouch(\"XENBUS\", {ma}.{mi}.{mc}.{bn}) -> ok (versions match)"
    )?;
    let touch_old = xen.xen_touch(c"XENBUS", ma, mi, mc, bn.wrapping_add(1));
    ensure!(touch_old.is_err(), "XenTouch with another build is refused");
    writeln!(
        out,
        "XenTouch with another build number -> refused {} (a mismatched xenbus.sys would stay \
         inert and request a reboot)",
        status_name(touch_old.err().unwrap_or_default())
    )?;

    // ---------------------------------------------------------------- 3. xenfilt
    writeln!(out, "\n-- 3. xenfilt: emulated devices and the unplug --")?;
    let platform = pci_children(&devices)
        .into_iter()
        .find(|c| c.device_id.starts_with("PCI\\VEN_5853"))
        .ok_or_else(|| err("no Xen platform device"))?;
    let recorded = XenApiActive::new(xen).set_active(
        &platform.device_id,
        &platform.instance_id,
        &platform.location,
    );
    ensure!(recorded, "the active device is recorded");
    writeln!(
        out,
        "previous boot's xenbus recorded the active device {} ({})",
        platform.device_id, platform.location
    )?;
    let parameter = |name: &str| match m
        .guest
        .registry()
        .query_value(&format!(r"\Registry\Machine\{xenfilt_parameters}"), name)
    {
        Ok(RegValue::Sz(data)) => Some(data),
        _ => None,
    };
    let emulated: &'static EmulatedProvider = leak(EmulatedProvider::new());
    let filter = Arc::new(Mutex::new(Filter::new(xen, emulated, false)));
    let lock = || filter.lock().unwrap_or_else(|e| e.into_inner());
    let (pci, ide0, ide1, refused) = {
        let mut f = lock();
        let pci = f
            .add_device(["ACPI\\PNP0A03"], ["*PNP0A03"], parameter)
            .ok_or_else(|| err("PCI root bus not filtered"))?;
        let ide0 = f
            .add_device(["Internal_IDE_Channel"], [], parameter)
            .ok_or_else(|| err("IDE channel 0 not filtered"))?;
        let ide1 = f
            .add_device(["Internal_IDE_Channel"], [], parameter)
            .ok_or_else(|| err("IDE channel 1 not filtered"))?;
        let refused = f
            .add_device(["PCI\\VEN_8086&DEV_7010"], ["PCI\\CC_0101"], parameter)
            .is_none();
        (pci, ide0, ide1, refused)
    };
    ensure!(refused, "the IDE controller itself is not filtered");
    writeln!(
        out,
        "AddDevice: filters attached to the PCI root bus and both IDE channels; the IDE \
         controller itself is not filtered"
    )?;
    let nic_id = pci_children(&devices)
        .into_iter()
        .find(|c| c.kind == DeviceKind::Nic)
        .map(|c| c.device_id)
        .ok_or_else(|| err("no NIC"))?;
    let mut unplugged_any = false;
    for (i, (name, bus, children)) in [
        ("PCI", pci, pci_children(&devices)),
        ("IDE0", ide0, ide_children(&devices, 0)),
        ("IDE1", ide1, ide_children(&devices, 1)),
    ]
    .iter()
    .enumerate()
    {
        let (reported, unplugged) = bus_relations(&mut lock(), *bus, children)?;
        ensure!(
            reported.is_empty(),
            "emulated children stay hidden before the unplug"
        );
        unplugged_any |= unplugged;
        writeln!(
            out,
            "BusRelations {name}: {} children, none reported (hidden until the unplug){}",
            children.len(),
            if unplugged {
                " -> UNPLUG through the platform ports"
            } else {
                ""
            }
        )?;
        if i == 0 {
            let present = present(emulated, &nic_id)?;
            ensure!(present.is_some(), "the NIC is recorded as emulated");
            writeln!(
                out,
                "  EMULATED before the unplug: IsDevicePresent({nic_id}) = {}; \
                 IsDiskPresent(0) = {}",
                activation_text(present),
                is_disk_present(emulated, 0).map_err(err)?
            )?;
        }
    }
    ensure!(unplugged_any, "the last bus enumerated issues the unplug");
    let writes = m.hv.platform().unplug_writes().to_vec();
    ensure!(!writes.is_empty(), "the unplug wrote to the platform port");
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
        let (reported, _) = bus_relations(&mut lock(), bus, &children)?;
        let names: Vec<String> = children
            .iter()
            .filter(|c| reported.contains(&c.pdo))
            .map(what)
            .collect();
        writeln!(
            out,
            "BusRelations {name} again: survivors reported: [{}]",
            names.join(", ")
        )?;
        if name == "PCI" {
            ensure!(
                names.iter().any(|n| n == "XenPlatform") && !names.iter().any(|n| n == "Nic"),
                "the platform device survives the unplug, the NIC does not"
            );
        }
    }
    let nic_after = present(emulated, &nic_id)?;
    ensure!(nic_after.is_none(), "EMULATED forgets the unplugged NIC");
    writeln!(
        out,
        "EMULATED after the unplug: IsDevicePresent({nic_id}) = {}; IsDiskPresent(0) = {}",
        activation_text(nic_after),
        is_disk_present(emulated, 0).map_err(err)?
    )?;

    // ---------------------------------------------------------------- 4. xenbus FDO
    writeln!(
        out,
        "\n-- 4. PnP: the platform device 5853:0001 gets xenbus (stack: xenbus FDO / xenfilt \
         child filter / PCI PDO) --"
    )?;
    let platform_device = after
        .iter()
        .find(|d| d.kind == DeviceKind::XenPlatform)
        .cloned()
        .ok_or_else(|| err("platform device gone"))?;
    let lower = ChildFilterDevice::new(
        filter.clone(),
        pci,
        platform.pdo,
        Box::new(PciPdo::new(platform_device.clone(), 28)),
    );
    let kernel: &'static SimKernel = leak(SimKernel::default());
    let stack = add_device(&world, &platform_device, Box::new(lower), kernel)
        .map_err(|s| err(format!("AddDevice failed: {}", status_name(s))))?;
    let fdo = stack.fdo;
    ensure!(
        fdo.is_active(),
        "the recorded platform device is the active FDO"
    );
    writeln!(
        out,
        "AddDevice {}: vendor 0x5853, VendorName {}; XENFILT_EMULATED v3 from xenfilt below: \
         {:?}; active record {:?} -> ACTIVE FDO",
        stack.device_id,
        fdo.vendor_name(),
        stack.activation,
        XenApiActive::new(xen).active_device_id()
    )?;
    let recorded_version = m.guest.registry().query_value(
        &format!(r"\Registry\Machine\{SERVICES}\XENFILT\Interfaces\XENBUS"),
        "EMULATED",
    );
    ensure!(
        recorded_version == Ok(RegValue::Dword(3)),
        "xenbus records the EMULATED version it consumed"
    );
    writeln!(
        out,
        "FDO created: initialise {:?}; Services\\XENFILT\\Interfaces\\XENBUS\\EMULATED = 3",
        steps(&fdo.trace(), "initialise ")
    )?;
    let trace = Trace::new(stack.log.clone());
    let mut pnp = PnpManager::new(28);
    let state = pnp.add_root(
        "XEN",
        Box::new(Tap {
            name: "XEN".into(),
            inner: Box::new(stack.clone()),
            trace: trace.clone(),
        }),
    );
    pnp.take_log();
    writeln!(
        out,
        "PnP manager: identity, requirements, START, then BusRelations and each child:"
    )?;
    trace.print(out)?;
    ensure!(state == NodeState::Started, "the FDO starts");
    ensure!(fdo.is_d0(), "the FDO is in D0 after START");
    let resources = stack.resources().ok_or_else(|| err("no resources"))?;
    let vectors: Vec<Option<u8>> = (0..world.vcpus)
        .map(|c| resources.upcall_vector(c))
        .collect();
    ensure!(
        vectors.iter().all(Option::is_some) && resources.line_gsi() == Some(28),
        "START gave a message interrupt per CPU and the line interrupt"
    );
    let store = fdo.subsystems().ok_or_else(|| err("no subsystems"))?.store;
    let read = |path: &str| -> String {
        store
            .read(None, None, path.as_bytes())
            .map(|v| String::from_utf8_lossy(&v).into_owned())
            .unwrap_or_default()
    };
    let slot_no = fdo.driver_slot().unwrap_or(0);
    let record = read(&format!("drivers/{slot_no}"));
    ensure!(
        record.contains("XENBUS"),
        "the drivers/<n> record is written"
    );
    writeln!(
        out,
        "START: line GSI 28 (callback via), upcall vectors {vectors:?} (one per CPU); D3->D0 \
         acquired {:?}; STORE reads name = {:?}; drivers/{slot_no} = {record:?}",
        steps(&fdo.trace(), "acquire "),
        read("name")
    )?;
    let classes = show_children(out, &pnp, "XEN", platform_device.device, None)?;
    ensure!(
        classes.iter().any(|c| c == "VBD"),
        "a VBD PDO for device/vbd"
    );

    // ---------------------------------------------------------------- 5. a C child
    writeln!(
        out,
        "\n-- 5. A child driver on the VBD PDO: IRP_MN_QUERY_INTERFACE and the C vtables --"
    )?;
    let vbd = ["XEN", "VBD"];
    let st = query_interface::<StoreInterfaceV2>(&mut pnp, &vbd)?;
    let ev = query_interface::<EvtchnInterfaceV9>(&mut pnp, &vbd)?;
    let gt = query_interface::<GnttabInterfaceV4>(&mut pnp, &vbd)?;
    let rs = query_interface::<RangeSetInterfaceV1>(&mut pnp, &vbd)?;
    let sp = query_interface::<SuspendInterfaceV1>(&mut pnp, &vbd)?;
    let too_new = pnp
        .query_interface(
            &vbd,
            GUID_XENBUS_STORE_INTERFACE,
            XENBUS_STORE_INTERFACE_VERSION_MAX + 1,
            256,
            STATUS_NOT_SUPPORTED,
        )
        .map(|q| q.status);
    let short = pnp
        .query_interface(
            &vbd,
            GUID_XENBUS_STORE_INTERFACE,
            2,
            64,
            STATUS_NOT_SUPPORTED,
        )
        .map(|q| q.status);
    trace.print(out)?;
    ensure!(
        too_new == Some(STATUS_NOT_SUPPORTED) && short == Some(STATUS_BUFFER_OVERFLOW),
        "a version above the maximum is NOT_SUPPORTED and a short buffer BUFFER_OVERFLOW"
    );
    let name = read("name");
    // SAFETY (block): every call goes through a table the PDO filled, with its own interface
    // pointer, NUL-terminated strings and writable out pointers, as a C child does.
    unsafe {
        let (t, i) = (&st.table, st.interface);
        check("StoreAcquire", slot(t.store_acquire)?(i))?;
        let seen = store_read(&st, std::ptr::null_mut(), None, c"name")?;
        ensure!(
            seen == name,
            "StoreRead(name) through the vtable reads the domain's name"
        );
        writeln!(
            out,
            "XENBUS_STORE v2: StoreAcquire; StoreRead(\"name\") = {seen:?}; StoreFree"
        )?;
        check(
            "StorePrintf",
            slot(t.store_printf)?(
                i,
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
            slot(t.store_transaction_start)?(i, &mut tx),
        )?;
        let inside = store_read(&st, tx, Some(c"data"), c"demo")?;
        check(
            "StorePrintf in a transaction",
            slot(t.store_printf)?(
                i,
                tx,
                c"data".as_ptr().cast_mut(),
                c"copy".as_ptr().cast_mut(),
                c"%s".as_ptr(),
                CString::new(inside.clone()).map_err(err)?.as_ptr(),
            ),
        )?;
        check(
            "StoreTransactionEnd",
            slot(t.store_transaction_end)?(i, tx, 1),
        )?;
        let copy = world
            .ts
            .lock()
            .map_err(err)?
            .client()
            .read(0, &format!("/local/domain/{domid}/data/copy"))
            .map_err(err)?;
        ensure!(
            copy == b"hello-42",
            "dom0 reads what the transaction committed"
        );
        writeln!(
            out,
            "StorePrintf(data/demo, \"%s-%u\", \"hello\", 42); transaction: read {inside:?}, \
             wrote data/copy, committed -> dom0 reads data/copy = {:?}",
            String::from_utf8_lossy(&copy)
        )?;
        const WATCH_EVENT: usize = 0xD000;
        let mut watch: *mut StoreWatch = std::ptr::null_mut();
        check(
            "StoreWatchAdd",
            slot(t.store_watch_add)?(
                i,
                c"data".as_ptr().cast_mut(),
                c"watched".as_ptr().cast_mut(),
                WATCH_EVENT as *mut _,
                &mut watch,
            ),
        )?;
        let before = m.guest.event_sets(WATCH_EVENT);
        world
            .ts
            .lock()
            .map_err(err)?
            .client()
            .write(0, &format!("/local/domain/{domid}/data/watched"), b"1")
            .map_err(err)?;
        let fired = m.guest.event_sets(WATCH_EVENT) - before;
        check("StoreWatchRemove", slot(t.store_watch_remove)?(i, watch))?;
        ensure!(
            fired >= 1,
            "the child's watch fires when dom0 writes the node"
        );
        writeln!(
            out,
            "StoreWatchAdd(data/watched, KEVENT); dom0 writes data/watched -> the child's \
             KEVENT was set {fired} time(s); StoreWatchRemove"
        )?;
    }
    // SAFETY: the EVTCHN table the PDO filled; acquired before the round trip.
    let (port, dom0, hits, seen) = unsafe {
        check(
            "EvtchnAcquire",
            slot(ev.table.evtchn_acquire)?(ev.interface),
        )?;
        evtchn_round_trip(&world, &ev)?
    };
    ensure!(
        hits == 1 && seen,
        "the channel carries notifications both ways"
    );
    writeln!(
        out,
        "XENBUS_EVTCHN v9: EvtchnOpen(UNBOUND, remote dom0) -> port {port}; dom0 binds port \
         {dom0} and notifies -> the child's ISR ran {hits} time(s); EvtchnSend -> dom0 sees \
         its port pending; EvtchnClose"
    )?;
    let page = common::os::Os::alloc_page(&*m.guest).ok_or_else(|| err("no page"))?;
    let greeting = b"hello dom0, from the guest";
    // SAFETY: Os::alloc_page hands out a zeroed page mapped at `va` for 4096 bytes.
    unsafe { std::ptr::copy_nonoverlapping(greeting.as_ptr(), page.va as *mut u8, greeting.len()) };
    // SAFETY (block): calls through the filled GNTTAB table with its own interface pointer;
    // the backend's mapping pointer covers the whole granted frame while mapped.
    unsafe {
        let (t, i) = (&gt.table, gt.interface);
        check("GnttabAcquire", slot(t.gnttab_acquire)?(i))?;
        let mut cache = std::ptr::null_mut();
        check(
            "GnttabCreateCache",
            slot(t.gnttab_create_cache)?(
                i,
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
            slot(t.gnttab_permit_foreign_access)?(
                i,
                cache,
                0,
                0,
                page.pfn as usize,
                TRUE,
                &mut entry,
            ),
        )?;
        let gref = slot(t.gnttab_get_reference)?(i, entry);
        let (handle, frame) = m.hv.backend_map_grant(0, gref, true).map_err(err)?;
        let shown = std::slice::from_raw_parts(frame, greeting.len()).to_vec();
        let busy = slot(t.gnttab_revoke_foreign_access)?(i, cache, 0, entry);
        m.hv.backend_unmap_grant(0, handle).map_err(err)?;
        let revoked = slot(t.gnttab_revoke_foreign_access)?(i, cache, 0, entry);
        slot(t.gnttab_destroy_cache)?(i, cache);
        slot(t.gnttab_release)?(i);
        ensure!(
            shown == greeting && busy != STATUS_SUCCESS && revoked == STATUS_SUCCESS,
            "dom0 reads the granted page; revoking waits for its unmap"
        );
        writeln!(
            out,
            "XENBUS_GNTTAB v4: PermitForeignAccess(pfn {:#x}, read-only) -> ref {gref}; dom0 \
             maps it and reads {:?}; Revoke while mapped -> {}; after dom0 unmaps -> {}",
            page.pfn,
            String::from_utf8_lossy(&shown),
            status_name(busy),
            status_name(revoked)
        )?;
    }
    common::os::Os::free_page(&*m.guest, page);
    // SAFETY (block): calls through the filled RANGE_SET table with its own interface.
    unsafe {
        let (t, i) = (&rs.table, rs.interface);
        check("RangeSetAcquire", slot(t.range_set_acquire)?(i))?;
        let mut set = std::ptr::null_mut();
        check(
            "RangeSetCreate",
            slot(t.range_set_create)?(i, c"demo-ids".as_ptr(), &mut set),
        )?;
        check("RangeSetPut", slot(t.range_set_put)?(i, set, 100, 16))?;
        let mut start = 0i64;
        check("RangeSetPop", slot(t.range_set_pop)?(i, set, 4, &mut start))?;
        let held = slot(t.range_set_get)?(i, set, start, 4);
        slot(t.range_set_destroy)?(i, set);
        slot(t.range_set_release)?(i);
        ensure!(
            held != STATUS_SUCCESS,
            "popped IDs are no longer in the set"
        );
        writeln!(
            out,
            "XENBUS_RANGE_SET v1: put [100,116), popped 4 IDs from {start}; Get on them -> {} \
             (no longer in the set)",
            status_name(held)
        )?;
    }
    let (mut early, mut late) = (std::ptr::null_mut(), std::ptr::null_mut());
    // SAFETY (block): calls through the filled SUSPEND table with its own interface.
    unsafe {
        let (t, i) = (&sp.table, sp.interface);
        check("SuspendAcquire", slot(t.acquire)?(i))?;
        check(
            "SuspendRegister(EARLY)",
            slot(t.register)?(
                i,
                SuspendCallbackType::EARLY,
                Some(child_suspend_early),
                std::ptr::null_mut(),
                &mut early,
            ),
        )?;
        check(
            "SuspendRegister(LATE)",
            slot(t.register)?(
                i,
                SuspendCallbackType::LATE,
                Some(child_suspend_late),
                std::ptr::null_mut(),
                &mut late,
            ),
        )?;
        writeln!(
            out,
            "XENBUS_SUSPEND v1: registered EARLY and LATE callbacks; GetCount = {}",
            slot(t.get_count)?(i)
        )?;
    }

    // ---------------------------------------------------------------- 6. hot plug
    writeln!(out, "\n-- 6. A vif hot-added, then removed, in xenstore --")?;
    let invalidations = kernel.invalidations();
    let vif = world
        .ts
        .lock()
        .map_err(err)?
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
    let ran = stack.run_threads();
    writeln!(out, "  the watch on device/ woke: {}", ran.join("; "))?;
    ensure!(
        kernel.invalidations() > invalidations,
        "the scan asks for IoInvalidateDeviceRelations"
    );
    writeln!(
        out,
        "  -> IoInvalidateDeviceRelations(BusRelations); PnP asks again:"
    )?;
    pnp.enumerate_all();
    pnp.take_log();
    trace.print(out)?;
    ensure!(
        pnp.node(&["XEN", "VIF"])
            .is_some_and(|n| n.state == NodeState::Started),
        "a VIF PDO appears and starts"
    );
    show_children(out, &pnp, "XEN", platform_device.device, Some("VIF"))?;
    let backend = format!("/local/domain/0/backend/vif/{domid}/0");
    {
        let mut ts = world.ts.lock().map_err(err)?;
        ts.remove_device(&vif).map_err(err)?;
        if ts.state(&backend).is_some() {
            store
                .write(None, None, b"device/vif/0/state", b"6")
                .map_err(err)?;
            ts.run().map_err(err)?;
        }
    }
    let ran = stack.run_threads();
    let class_dir = format!("/local/domain/{domid}/device/vif");
    let instances = world
        .ts
        .lock()
        .map_err(err)?
        .client()
        .directory(0, &class_dir)
        .map_err(err)?;
    writeln!(
        out,
        "toolstack: remove vif 0 -> device/vif holds {instances:?}; {}",
        ran.join("; ")
    )?;
    writeln!(out, "  PnP asks anyway:")?;
    pnp.enumerate_all();
    trace.print(out)?;
    ensure!(
        pnp.node(&["XEN", "VIF"]).is_some(),
        "a class PDO lives while its directory under device/ exists (as upstream)"
    );
    writeln!(
        out,
        "  (as upstream, a class PDO lives while its directory under device/ exists; the class \
         driver sees its instance vanish)"
    )?;
    world.rm("device/vif");
    let invalidations = kernel.invalidations();
    let ran = stack.run_threads();
    writeln!(
        out,
        "toolstack (dom0): xenstore-rm {class_dir}; {}",
        ran.join("; ")
    )?;
    ensure!(
        kernel.invalidations() > invalidations,
        "the vanished class invalidates BusRelations"
    );
    writeln!(
        out,
        "  -> IoInvalidateDeviceRelations(BusRelations); PnP asks again and removes what \
         vanished:"
    )?;
    pnp.enumerate_all();
    let removed = pnp.take_log();
    trace.print(out)?;
    ensure!(
        pnp.node(&["XEN", "VIF"]).is_none()
            && removed.iter().any(|l| l.starts_with("surprise-remove"))
            && !fdo.children().iter().any(|c| c.class == "VIF"),
        "the VIF PDO is surprise-removed, removed and destroyed"
    );

    // ---------------------------------------------------------------- 7. suspend/resume
    writeln!(out, "\n-- 7. Suspend and resume --")?;
    world
        .ts
        .lock()
        .map_err(err)?
        .request_shutdown(domid, ShutdownRequest::Suspend)
        .map_err(err)?;
    writeln!(
        out,
        "toolstack: control/shutdown = {:?}",
        read("control/shutdown")
    )?;
    m.hv.set_suspend_outcome(SuspendOutcome::Resume);
    let before = fdo.trace().len();
    let ran = stack.run_threads();
    writeln!(
        out,
        "  the watch on control/shutdown woke: {}",
        ran.join("; ")
    )?;
    ensure!(
        ran.iter().any(|r| r.contains("Triggered(Resumed)")),
        "the suspend thread suspends and resumes"
    );
    let resumed: Vec<&str> = fdo.trace().get(before..).unwrap_or_default().to_vec();
    let pdo_resumes = stack.child("VBD").map(|c| c.inner().resumes());
    // SAFETY: the child's SUSPEND table, acquired above.
    let count = unsafe { slot(sp.table.get_count)?(sp.interface) };
    ensure!(
        count == 1
            && CHILD_EARLY.load(Ordering::SeqCst) == 1
            && CHILD_LATE.load(Ordering::SeqCst) == 1
            && pdo_resumes == Some(1)
            && read("control/shutdown").is_empty(),
        "one resume: the count moves, every callback ran once, the request is cleared"
    );
    writeln!(
        out,
        "SuspendTrigger: SCHEDOP_shutdown(suspend) -> resumed; control/shutdown cleared; \
         GetCount = {count}; xenbus's resume callbacks ran {resumed:?}; the child's EARLY and \
         LATE ran once; the VBD PDO's LATE callback saw 1 resume"
    )?;
    // SAFETY: the tables filled by the PDO, still acquired.
    let (again, (port, dom0, hits, seen)) = unsafe {
        (
            store_read(&st, std::ptr::null_mut(), None, c"name")?,
            evtchn_round_trip(&world, &ev)?,
        )
    };
    ensure!(
        again == name && hits == 1 && seen,
        "the child's STORE and EVTCHN work after the resume"
    );
    writeln!(
        out,
        "after the resume the child reads name = {again:?} and opens port {port} (dom0 port \
         {dom0}): notifications both ways"
    )?;

    // ---------------------------------------------------------------- 8. balloon
    writeln!(out, "\n-- 8. The balloon --")?;
    let static_max: u64 = read("memory/static-max").parse().map_err(err)?;
    let videoram: u64 = read("memory/videoram").parse().map_err(err)?;
    let full = static_max - videoram;
    let target = full - 1024;
    world
        .ts
        .lock()
        .map_err(err)?
        .set_balloon_target(domid, target)
        .map_err(err)?;
    let ran = stack.run_threads();
    writeln!(
        out,
        "toolstack: memory/target = {target} KiB (static-max − videoram = {full} KiB); {}",
        ran.join("; ")
    )?;
    ensure!(fdo.veto_stop(), "the balloon holds pages");
    let veto = pnp.remove(&["XEN"]);
    pnp.take_log();
    writeln!(
        out,
        "PnP: orderly removal of the bus while the balloon is inflated:"
    )?;
    trace.print(out)?;
    ensure!(
        veto == Err(STATUS_UNSUCCESSFUL) && stack.pnp_state() == PnpState::Started,
        "QUERY_REMOVE is vetoed and the bus keeps running"
    );
    world
        .ts
        .lock()
        .map_err(err)?
        .set_balloon_target(domid, full)
        .map_err(err)?;
    let ran = stack.run_threads();
    writeln!(
        out,
        "toolstack: memory/target = {full} KiB; {}",
        ran.join("; ")
    )?;
    ensure!(!fdo.veto_stop(), "the balloon gave every page back");

    // ---------------------------------------------------------------- 9. stop and remove
    writeln!(
        out,
        "\n-- 9. Rebalance, hibernate, then an orderly removal --"
    )?;
    // SAFETY (block): the child lets go of its interfaces (a reference held across
    // hibernation is a bug check).
    unsafe {
        slot(sp.table.deregister)?(sp.interface, early);
        slot(sp.table.deregister)?(sp.interface, late);
        slot(sp.table.release)?(sp.interface);
        slot(ev.table.evtchn_release)?(ev.interface);
        slot(st.table.store_release)?(st.interface);
    }
    pnp.stop_and_restart(&["XEN"]).map_err(err)?;
    writeln!(out, "PnP: rebalance")?;
    trace.print(out)?;
    ensure!(fdo.is_d0(), "the bus is back in D0 after the rebalance");
    pnp.set_system_power(SystemPower::Hibernate, PowerAction::Hibernate)
        .map_err(err)?;
    pnp.set_system_power(SystemPower::Working, PowerAction::None)
        .map_err(err)?;
    writeln!(out, "PnP: hibernate (S4) and back (S0)")?;
    trace.print(out)?;
    ensure!(
        fdo.is_d0() && kernel.bug_checks().is_empty(),
        "hibernation and back without a bug check"
    );
    let before = fdo.trace().len();
    pnp.remove(&["XEN"]).map_err(err)?;
    pnp.take_log();
    writeln!(out, "PnP: orderly removal (children first)")?;
    trace.print(out)?;
    ensure!(
        stack.pnp_state() == PnpState::Deleted && !fdo.is_d0() && pnp.node(&["XEN"]).is_none(),
        "the FDO is deleted and out of D0"
    );
    writeln!(
        out,
        "xenbus FDO D0->D3 at REMOVE: release {:?}",
        steps(fdo.trace().get(before..).unwrap_or_default(), "release ")
    )?;

    // ---------------------------------------------------------------- 10. two devices
    writeln!(
        out,
        "\n-- 10. Another machine: legacy (0001) and vendor (C000) platform devices, a \
         VENDOR_DEVICE_ID=C000 build --"
    )?;
    vendor_device_boot(out)?;
    writeln!(out, "\n== demo done: every step behaved as expected ==")?;
    Ok(())
}

/// The FDO's steps whose name starts with `prefix`, without it.
fn steps(trace: &[&'static str], prefix: &str) -> Vec<&'static str> {
    trace
        .iter()
        .filter_map(|t| t.strip_prefix(prefix))
        .collect()
}

/// Both platform devices get a xenbus FDO through PnP; the vendor device is the active
/// one and the only one with children; then it is hot-unplugged (surprise removal).
fn vendor_device_boot(out: &mut dyn Write) -> io::Result<()> {
    let world = World::boot(Setup {
        vcpus: 1,
        vendor_device: Some("C000"),
        ..Setup::default()
    });
    let mut pnp = PnpManager::new(28);
    let mut stacks: Vec<(String, FdoStack)> = Vec::new();
    for (n, device) in world.platform_devices().iter().enumerate() {
        let name = format!("{:04X}", device.device);
        let kernel: &'static SimKernel = leak(SimKernel::new(0x10000 * (n + 1)));
        let stack = add_device(
            &world,
            device,
            Box::new(PciPdo::new(device.clone(), 28)),
            kernel,
        )
        .map_err(|s| err(format!("AddDevice failed: {}", status_name(s))))?;
        let state = pnp.add_root(&name, Box::new(stack.clone()));
        ensure!(state == NodeState::Started, "both FDOs start");
        let node = pnp.node(&[&name]).ok_or_else(|| err("no node"))?;
        let children: Vec<&String> = node.children.keys().collect();
        writeln!(
            out,
            "AddDevice + START {} ({}): {}; children {children:?}",
            stack.device_id,
            node.location.as_deref().unwrap_or("-"),
            if stack.fdo.is_active() {
                "ACTIVE FDO"
            } else {
                "inactive (the legacy device gives way to the vendor device)"
            }
        )?;
        stacks.push((name, stack));
    }
    let active: Vec<&str> = stacks
        .iter()
        .filter(|(_, s)| s.fdo.is_active())
        .map(|(n, _)| n.as_str())
        .collect();
    ensure!(active == ["C000"], "only the vendor device is active");
    ensure!(
        pnp.node(&["0001"]).is_some_and(|n| n.children.is_empty()),
        "the inactive FDO has no children"
    );
    let vbd = pnp
        .node(&["C000", "VBD"])
        .ok_or_else(|| err("no VBD under the vendor device"))?;
    let prefix = xenbus_rs::VENDOR_PREFIX;
    ensure!(
        vbd.hardware_ids
            .first()
            .is_some_and(|id| id.starts_with(&format!(r"XENBUS\VEN_{prefix}C000&DEV_VBD"))),
        "the vendor device's children name it in their hardware IDs"
    );
    writeln!(
        out,
        "VBD under the vendor device: {} (HardwareIDs {} …); active record {:?}",
        vbd.instance_path(),
        vbd.hardware_ids.first().map_or("-", String::as_str),
        XenApiActive::new(world.xen).active_device_id()
    )?;
    // The vendor device is hot-unplugged.
    pnp.take_log();
    pnp.surprise_remove(&["C000"]).map_err(err)?;
    let vendor = stacks
        .iter()
        .find(|(n, _)| n == "C000")
        .map(|(_, s)| s)
        .ok_or_else(|| err("no vendor stack"))?;
    writeln!(
        out,
        "the vendor device is hot-unplugged: PnP {}",
        pnp.take_log().join("; ")
    )?;
    let services = vendor.log();
    ensure!(
        vendor.pnp_state() == PnpState::Deleted
            && vendor.fdo.children().is_empty()
            && services.iter().any(|l| l == "VBD removed (destroy true)"),
        "SURPRISE_REMOVAL marks the children missing; their REMOVE destroys them; the FDO is deleted"
    );
    writeln!(
        out,
        "  xenbus: the FDO's SURPRISE_REMOVAL marked every child missing, so the VBD PDO's \
         REMOVE destroyed it; the FDO was deleted"
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_demo_tells_the_whole_story() {
        let mut out = Vec::new();
        let result = super::run(&mut out);
        let text = String::from_utf8(out).expect("utf-8");
        println!("{text}");
        result.expect("every step of the demo behaves as expected");
        for needle in [
            "-> UNPLUG through the platform ports",
            "IRP_MN_START_DEVICE",
            "IRP_MN_QUERY_DEVICE_RELATIONS(Bus)",
            "IRP_MN_QUERY_INTERFACE(XENBUS_STORE v2, 136 bytes) -> STATUS_SUCCESS",
            "IRP_MN_SURPRISE_REMOVAL",
            "Triggered(Resumed)",
            "IRP_MN_QUERY_REMOVE_DEVICE -> STATUS_UNSUCCESSFUL",
            "ACTIVE FDO",
            "demo done",
        ] {
            assert!(text.contains(needle), "missing {needle:?}");
        }
    }
}
