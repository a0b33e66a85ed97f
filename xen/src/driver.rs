//! `driver.c`: the xen.sys core object — `DllInitialize` in the order of upstream with a
//! full unwind on failure, `DllUnload`, `XenTouch`, and the [`XenApi`] implementation that
//! the exports (and host tests) call.
#![forbid(unsafe_code)]

use core::ffi::{c_void, CStr};
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, Ordering};

use common::hypercall::{Hypercall, PortWidth};
use common::os::{CallbackHandle, CallbackSink, KernelCallback, KeyHandle, ModuleInfo, Os};
use xen_include::api::{
    LogDispositionFn, LogLevel, ModuleName, UnplugType, XenApi, LOG_LEVEL_INFO,
    XEN_EXTRAVERSION_LEN,
};
use xen_include::platform::{XEN_DEBUG_CONSOLE_IOPORT, XEN_PLATFORM_IOPORT_LOG};
use xen_include::status::{
    NtStatus, STATUS_INCOMPATIBLE_DRIVER_BLOCKED, STATUS_NOT_IMPLEMENTED, STATUS_OBJECTID_EXISTS,
    STATUS_UNSUCCESSFUL,
};
use xen_include::xen::grant_table::GnttabCopy;

use crate::acpi::Acpi;
use crate::config::{self, Config};
use crate::hypercall::{self, Discovery, Instruction};
use crate::log::{self, Deliver, DispositionTarget, FormatArgs, Log, LOG_BUFFER_SIZE};
use crate::module::Modules;
use crate::registry;
use crate::system::{System, SystemEnv};
use crate::unplug::{self, Unplug};
use crate::Logger;
use common::sync::{HighLock, PassiveLock, SpinLock};

/// `__XEN_INTERFACE_VERSION__` of the headers upstream builds against (Xen 4.8).
pub const XEN_INTERFACE_VERSION: u32 = 0x0004_0800;

/// The steps of `DllInitialize`, in order; a failure unwinds every earlier step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// `LogInitialize`: DbgPrint capture (its failure is not fatal).
    Log = 0,
    /// `Services\XEN` (closed again at the end of initialisation).
    ServiceKey,
    /// `Services\XEN\Parameters` (non-volatile).
    ParametersKey,
    /// The port 0xE9 and 0x12 dispositions.
    Dispositions,
    /// `Services\XEN\Unplug` (non-volatile).
    UnplugKey,
    /// `Services\XEN\ForceUnplug` (non-volatile).
    ForceUnplugKey,
    /// `Services\XEN\Memory` (volatile).
    MemoryKey,
    /// `HypercallInitialize`.
    Hypercall,
    /// `AcpiInitialize`.
    Acpi,
    /// `SystemInitialize`.
    System,
    /// `BugCheckInitialize`.
    BugCheck,
    /// `ModuleInitialize`.
    Module,
    /// `ProcessInitialize`.
    Process,
    /// `UnplugInitialize`.
    Unplug,
}

const STAGES: [Stage; 14] = [
    Stage::Log,
    Stage::ServiceKey,
    Stage::ParametersKey,
    Stage::Dispositions,
    Stage::UnplugKey,
    Stage::ForceUnplugKey,
    Stage::MemoryKey,
    Stage::Hypercall,
    Stage::Acpi,
    Stage::System,
    Stage::BugCheck,
    Stage::Module,
    Stage::Process,
    Stage::Unplug,
];

#[derive(Default)]
struct Keys {
    service: Option<KeyHandle>,
    parameters: Option<KeyHandle>,
    unplug: Option<KeyHandle>,
    force_unplug: Option<KeyHandle>,
    memory: Option<KeyHandle>,
}

#[derive(Default)]
struct Handles {
    debug_print: Option<CallbackHandle>,
    bug_check: Option<CallbackHandle>,
    image_load: Option<CallbackHandle>,
    process: Option<CallbackHandle>,
    processor_change: Option<CallbackHandle>,
    power_state: Option<CallbackHandle>,
    xen_disposition: Option<usize>,
    qemu_disposition: Option<usize>,
}

/// Selects the hypercall instruction on the real edge once discovery chose it.
pub type SelectInstruction<'a> = &'a (dyn Fn(Option<Instruction>) + Sync);

/// The xen.sys core over its two edges.
pub struct Xen<'a> {
    hv: &'a dyn Hypercall,
    os: &'a dyn Os,
    select: Option<SelectInstruction<'a>>,
    vendor_device_id: Option<&'a str>,
    log: Log,
    /// PASSIVE_LEVEL: registry keys, used with the registry (initialise, unload, the
    /// unplug and config exports).
    keys: PassiveLock<Keys>,
    /// PASSIVE_LEVEL: kernel callback registrations.
    handles: PassiveLock<Handles>,
    /// HIGH_LEVEL: read by hypercall users at any IRQL.
    discovery: HighLock<Option<Discovery>>,
    acpi: SpinLock<Option<Acpi>>,
    system: System,
    modules: Modules,
    unplug: Unplug,
    initialized: AtomicBool,
    touched: AtomicBool,
    keep_all_debug_print: bool,
}

struct PortDeliver<'a>(&'a dyn Hypercall);

impl Deliver for PortDeliver<'_> {
    fn deliver(&self, target: &DispositionTarget, line: &[u8]) {
        match *target {
            DispositionTarget::Port(port) => {
                for b in line {
                    self.0.port_write(port, PortWidth::Byte, u32::from(*b));
                }
            }
            DispositionTarget::Foreign { function, argument } => {
                crate::ffi::call_disposition(function, argument, line)
            }
        }
    }
}

/// A `fmt::Write` into a fixed buffer that silently truncates.
struct Truncating {
    buf: [u8; LOG_BUFFER_SIZE],
    len: usize,
}

impl Write for Truncating {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            if let Some(slot) = self.buf.get_mut(self.len) {
                *slot = b;
                self.len += 1;
            }
        }
        Ok(())
    }
}

impl Logger for Xen<'_> {
    fn printf(&self, level: LogLevel, args: fmt::Arguments<'_>) {
        let mut t = Truncating {
            buf: [0; LOG_BUFFER_SIZE],
            len: 0,
        };
        let _ = t.write_fmt(args);
        self.log.write(
            level,
            t.buf.get(..t.len).unwrap_or(&[]),
            &PortDeliver(self.hv),
        );
    }

    fn dbg(&self, level: u32, args: fmt::Arguments<'_>) {
        // No allocation: this runs at any IRQL (bug check, resume at HIGH_LEVEL).
        let mut t = Truncating {
            buf: [0; LOG_BUFFER_SIZE],
            len: 0,
        };
        let _ = t.write_str("xen|");
        let _ = t.write_fmt(args);
        let bytes = t.buf.get(..t.len).unwrap_or(&[]);
        let line = match core::str::from_utf8(bytes) {
            Ok(l) => l,
            // Truncation may split a UTF-8 sequence: keep the valid prefix.
            Err(e) => {
                core::str::from_utf8(bytes.get(..e.valid_up_to()).unwrap_or(&[])).unwrap_or("")
            }
        };
        self.os.debug_print_at(level, line);
    }
}

fn not_ready() -> NtStatus {
    STATUS_UNSUCCESSFUL
}

impl<'a> Xen<'a> {
    /// A core over `hv` and `os`. `select` (the real edge only) receives the hypercall
    /// instruction chosen at initialisation; `vendor_device_id` is the build's
    /// `VENDOR_DEVICE_ID`.
    pub fn new(
        hv: &'a dyn Hypercall,
        os: &'a dyn Os,
        select: Option<SelectInstruction<'a>>,
        vendor_device_id: Option<&'a str>,
    ) -> Self {
        Self {
            hv,
            os,
            select,
            vendor_device_id,
            log: Log::new(),
            keys: PassiveLock::new(Keys::default()),
            handles: PassiveLock::new(Handles::default()),
            discovery: HighLock::new(None),
            acpi: SpinLock::new(None),
            system: System::new(),
            modules: Modules::new(),
            unplug: Unplug::new(),
            initialized: AtomicBool::new(false),
            touched: AtomicBool::new(false),
            keep_all_debug_print: cfg!(debug_assertions),
        }
    }

    /// The log ring (for the DbgPrint capture and flush DPC of the edge).
    pub fn log_ring(&self) -> &Log {
        &self.log
    }

    /// What hypercall discovery found, once initialised.
    pub fn discovery(&self) -> Option<Discovery> {
        *self.discovery.lock()
    }

    /// The system context.
    pub fn system(&self) -> &System {
        &self.system
    }

    /// Whether `DllInitialize` completed and `DllUnload` has not run.
    pub fn is_initialized(&self) -> bool {
        self.initialized.load(Ordering::Acquire)
    }

    fn deliver(&self) -> PortDeliver<'a> {
        PortDeliver(self.hv)
    }

    fn create_key(
        &self,
        path: &str,
        parent: Option<KeyHandle>,
        volatile: bool,
    ) -> Result<KeyHandle, NtStatus> {
        self.os
            .registry_create(parent, path, volatile)
            .inspect_err(|s| {
                self.error(format_args!("cannot create {path} ({:08x})", *s as u32));
            })
    }

    fn step(&self, stage: Stage) -> Result<(), NtStatus> {
        let os = self.os;
        match stage {
            Stage::Log => {
                let option = registry::query_system_start_option(os, "XEN:DBG_PRINT=").ok();
                if log::dbg_print_enabled(option.as_deref()) {
                    // A failure only loses DbgPrint capture, as upstream.
                    self.handles.lock().debug_print =
                        os.register_callback(KernelCallback::DebugPrint).ok();
                }
            }
            Stage::ServiceKey => {
                let k = self.create_key(registry::SERVICE_PATH, None, false)?;
                self.keys.lock().service = Some(k);
            }
            Stage::ParametersKey => {
                let service = self.keys.lock().service;
                let k = self.create_key("Parameters", service, false)?;
                self.keys.lock().parameters = Some(k);
            }
            Stage::Dispositions => {
                let parameters = self.keys.lock().parameters.ok_or_else(not_ready)?;
                let level = |name: &str, default: LogLevel| {
                    log::parse_log_level(os.registry_query(parameters, name)).unwrap_or(default)
                };
                let xen = level("XenLogLevel", log::DEFAULT_XEN_LOG_LEVEL);
                let qemu = level("QemuLogLevel", log::DEFAULT_QEMU_LOG_LEVEL);
                let xen = self
                    .log
                    .add_disposition(xen, DispositionTarget::Port(XEN_DEBUG_CONSOLE_IOPORT))?;
                let qemu = self
                    .log
                    .add_disposition(qemu, DispositionTarget::Port(XEN_PLATFORM_IOPORT_LOG));
                let qemu = match qemu {
                    Ok(q) => q,
                    Err(e) => {
                        if let Some(x) = xen {
                            self.log.remove_disposition(x);
                        }
                        return Err(e);
                    }
                };
                let mut h = self.handles.lock();
                h.xen_disposition = xen;
                h.qemu_disposition = qemu;
                drop(h);
                let (major, minor, micro, build) = xenbus_rs::version();
                self.info(format_args!("{major}.{minor}.{micro} ({build})"));
                if os.safe_boot_mode() > 0 {
                    self.info(format_args!("SAFE MODE"));
                }
            }
            Stage::UnplugKey | Stage::ForceUnplugKey | Stage::MemoryKey => {
                let service = self.keys.lock().service;
                let (name, volatile) = match stage {
                    Stage::UnplugKey => ("Unplug", false),
                    Stage::ForceUnplugKey => ("ForceUnplug", false),
                    _ => ("Memory", true),
                };
                let k = self.create_key(name, service, volatile)?;
                let mut keys = self.keys.lock();
                match stage {
                    Stage::UnplugKey => keys.unplug = Some(k),
                    Stage::ForceUnplugKey => keys.force_unplug = Some(k),
                    _ => keys.memory = Some(k),
                }
            }
            Stage::Hypercall => {
                let d = hypercall::discover(self.hv).map_err(|e| {
                    match e {
                        hypercall::DiscoveryError::NotXen => {
                            self.error(format_args!("XEN: BASE CPUID LEAF NOT FOUND"))
                        }
                        hypercall::DiscoveryError::UnknownVendor(v) => self.error(format_args!(
                            "XEN: UNKNOWN CPU VENDOR '{}'",
                            core::str::from_utf8(&v).unwrap_or("?")
                        )),
                    }
                    e.status()
                })?;
                self.info(format_args!(
                    "XEN: CPUID BASE {:08X} ({})",
                    d.base,
                    if d.instruction == Instruction::Vmcall {
                        "VMCALL"
                    } else {
                        "VMMCALL"
                    }
                ));
                if let Some(select) = self.select {
                    select(Some(d.instruction));
                }
                *self.discovery.lock() = Some(d);
            }
            Stage::Acpi => {
                let read = |a: u64, b: &mut [u8]| os.read_physical(a, b);
                let acpi = Acpi::initialize(&read).map_err(|e| {
                    self.error(format_args!("ACPI: {e:?}"));
                    e.status()
                })?;
                self.info(format_args!("ACPI: RSDP @ {:08X}", acpi.rsdp.address));
                *self.acpi.lock() = Some(acpi);
            }
            Stage::System => {
                let acpi = self.acpi.lock().clone().ok_or_else(not_ready)?;
                let (parameters_key, memory_key) = {
                    let k = self.keys.lock();
                    (
                        k.parameters.ok_or_else(not_ready)?,
                        k.memory.ok_or_else(not_ready)?,
                    )
                };
                self.system.initialize(&SystemEnv {
                    os,
                    hv: self.hv,
                    acpi: &acpi,
                    parameters_key,
                    memory_key,
                    log: self,
                })?;
                // Processors added later, and S0 entry/exit, as upstream's SystemInitialize.
                let registered = os
                    .register_callback(KernelCallback::ProcessorChange)
                    .and_then(|pc| {
                        os.register_callback(KernelCallback::PowerState)
                            .map(|ps| (pc, ps))
                            .inspect_err(|_| os.deregister_callback(pc))
                    });
                match registered {
                    Ok((pc, ps)) => {
                        let mut h = self.handles.lock();
                        h.processor_change = Some(pc);
                        h.power_state = Some(ps);
                    }
                    Err(e) => {
                        self.system.persist_registered(os, memory_key);
                        self.system.teardown();
                        return Err(e);
                    }
                }
            }
            Stage::BugCheck => {
                let h = os.register_callback(KernelCallback::BugCheck)?;
                self.handles.lock().bug_check = Some(h);
            }
            Stage::Module => {
                let snapshot = os.loaded_modules()?;
                self.modules.reset(&snapshot);
                let h = os
                    .register_callback(KernelCallback::ImageLoad)
                    .inspect_err(|_| self.modules.clear())?;
                self.handles.lock().image_load = Some(h);
            }
            Stage::Process => {
                let h = os.register_callback(KernelCallback::ProcessNotify)?;
                self.handles.lock().process = Some(h);
            }
            Stage::Unplug => {
                let (u, f) = {
                    let k = self.keys.lock();
                    (
                        k.unplug.ok_or_else(not_ready)?,
                        k.force_unplug.ok_or_else(not_ready)?,
                    )
                };
                self.unplug.initialize(os, u, f, self);
            }
        }
        Ok(())
    }

    fn undo(&self, stage: Stage) {
        let os = self.os;
        let close = |k: Option<KeyHandle>| {
            if let Some(k) = k {
                os.registry_close(k);
            }
        };
        let deregister = |h: Option<CallbackHandle>| {
            if let Some(h) = h {
                os.deregister_callback(h);
            }
        };
        match stage {
            Stage::Log => {
                let h = self.handles.lock().debug_print.take();
                deregister(h);
                self.log.flush(&self.deliver());
            }
            Stage::ServiceKey => close(self.keys.lock().service.take()),
            Stage::ParametersKey => close(self.keys.lock().parameters.take()),
            Stage::Dispositions => {
                let (x, q) = {
                    let mut h = self.handles.lock();
                    (h.xen_disposition.take(), h.qemu_disposition.take())
                };
                for d in [q, x].into_iter().flatten() {
                    self.log.remove_disposition(d);
                }
            }
            Stage::UnplugKey => close(self.keys.lock().unplug.take()),
            Stage::ForceUnplugKey => close(self.keys.lock().force_unplug.take()),
            Stage::MemoryKey => close(self.keys.lock().memory.take()),
            Stage::Hypercall => {
                if let Some(select) = self.select {
                    select(None);
                }
                *self.discovery.lock() = None;
            }
            Stage::Acpi => *self.acpi.lock() = None,
            Stage::System => {
                let (pc, ps) = {
                    let mut h = self.handles.lock();
                    (h.processor_change.take(), h.power_state.take())
                };
                deregister(ps);
                deregister(pc);
                if let Some(memory_key) = self.keys.lock().memory {
                    self.system.persist_registered(os, memory_key);
                }
                self.system.teardown();
            }
            Stage::BugCheck => deregister(self.handles.lock().bug_check.take()),
            Stage::Module => {
                deregister(self.handles.lock().image_load.take());
                self.modules.clear();
            }
            Stage::Process => deregister(self.handles.lock().process.take()),
            Stage::Unplug => self.unplug.teardown(),
        }
    }

    /// `DllInitialize`: every stage in order; on failure the completed stages are undone in
    /// reverse and the failing status returned. Initialising twice is `STATUS_OBJECTID_EXISTS`.
    pub fn initialize(&self) -> Result<(), NtStatus> {
        if self.initialized.swap(true, Ordering::AcqRel) {
            return Err(STATUS_OBJECTID_EXISTS);
        }
        for (done, stage) in STAGES.iter().enumerate() {
            if let Err(status) = self.step(*stage) {
                self.error(format_args!("{stage:?} failed ({:08x})", status as u32));
                for s in STAGES.iter().take(done).rev() {
                    self.undo(*s);
                }
                self.initialized.store(false, Ordering::Release);
                return Err(status);
            }
        }
        close_service_key(self);
        Ok(())
    }

    /// `DllUnload`: undo every stage in reverse.
    pub fn unload(&self) {
        if !self.initialized.load(Ordering::Acquire) {
            return;
        }
        let (major, minor, micro, build) = xenbus_rs::version();
        self.info(format_args!("{major}.{minor}.{micro} ({build}) UNLOAD"));
        for s in STAGES.iter().rev() {
            self.undo(*s);
        }
        self.touched.store(false, Ordering::Release);
        self.initialized.store(false, Ordering::Release);
    }

    /// Bug-check notification from the edge.
    pub fn bug_check(&self, code: u32, parameters: [usize; 4]) {
        crate::bug_check::callback(self.hv, self.os, &self.modules, code, parameters, self);
    }

    /// Process-exit notification from the edge.
    pub fn process_exit(&self, cr3: u64) {
        crate::process::exit(self.hv, cr3, self);
    }

    /// A processor was hot-added: map it and register its `vcpu_info` like the boot
    /// processors; a failure is logged and leaves the processor unused by Xen callers.
    pub fn processor_added(&self, cpu: u32) {
        if !self.is_initialized() {
            return;
        }
        let memory_key = self.keys.lock().memory;
        self.info(format_args!("CPU {cpu}: ADDED"));
        if let Err(e) = self
            .system
            .processor_added(self.os, self.hv, memory_key, cpu, self)
        {
            self.error(format_args!("CPU {cpu}: ADD failed ({:08x})", e as u32));
        }
    }

    /// Image-load notification from the edge.
    pub fn image_loaded(&self, module: &ModuleInfo) {
        self.modules.add(module);
    }

    /// A DbgPrint line captured by the edge; returns whether the flush DPC must run.
    pub fn debug_print_captured(&self, level: u32, text: &[u8]) -> bool {
        self.log
            .capture(level, text, self.keep_all_debug_print, &self.deliver())
    }

    /// The flush DPC.
    pub fn flush_log(&self) {
        self.log.flush(&self.deliver());
    }

    /// `LogCchVPrintf` with C-style arguments.
    pub fn log_printf(
        &self,
        level: LogLevel,
        count: u32,
        format: &[u8],
        args: &mut dyn FormatArgs,
    ) {
        self.log.printf(level, count, format, args, &self.deliver());
    }

    fn key(&self, pick: impl FnOnce(&Keys) -> Option<KeyHandle>) -> Result<KeyHandle, NtStatus> {
        pick(&self.keys.lock()).ok_or_else(not_ready)
    }

    fn config(&self) -> Config<'_> {
        Config {
            os: self.os,
            vendor_device_id: self.vendor_device_id,
        }
    }
}

fn close_service_key(xen: &Xen<'_>) {
    if let Some(k) = xen.keys.lock().service.take() {
        xen.os.registry_close(k);
    }
}

fn cstr(s: &CStr) -> &str {
    s.to_str().unwrap_or("")
}

/// Copy `text` into `out`; a value that does not fit is `STATUS_BUFFER_OVERFLOW`.
fn copy_out(text: &str, out: &mut [u8]) -> Result<usize, NtStatus> {
    let dst = out
        .get_mut(..text.len())
        .ok_or(xen_include::status::STATUS_BUFFER_OVERFLOW)?;
    dst.copy_from_slice(text.as_bytes());
    Ok(text.len())
}

impl XenApi for Xen<'_> {
    fn xen_touch(
        &self,
        name: &CStr,
        major: u32,
        minor: u32,
        micro: u32,
        build: u32,
    ) -> Result<(), NtStatus> {
        if (major, minor, micro, build) != xenbus_rs::version() {
            self.info(format_args!(
                "MODULE '{}' NOT COMPATIBLE (REBOOT REQUIRED)",
                cstr(name)
            ));
            return Err(STATUS_INCOMPATIBLE_DRIVER_BLOCKED);
        }
        if self.touched.load(Ordering::Acquire) {
            return Ok(());
        }
        let (xmajor, xminor) =
            crate::xen_version::version(self.hv).map_err(|_| STATUS_NOT_IMPLEMENTED)?;
        let extra = crate::xen_version::extra(self.hv).unwrap_or([0; XEN_EXTRAVERSION_LEN]);
        let extra = CStr::from_bytes_until_nul(&extra).map(cstr).unwrap_or("");
        self.printf(
            LOG_LEVEL_INFO,
            format_args!("XEN: {xmajor}.{xminor}{extra} (__XEN_INTERFACE_VERSION__ = {XEN_INTERFACE_VERSION:08x})\n"),
        );
        self.touched.store(true, Ordering::Release);
        Ok(())
    }

    fn hvm_set_param(&self, index: u32, value: u64) -> Result<(), NtStatus> {
        crate::hvm::set_param(self.hv, index, value)
    }
    fn hvm_get_param(&self, index: u32) -> Result<u64, NtStatus> {
        crate::hvm::get_param(self.hv, index)
    }
    fn hvm_pagetable_dying(&self, gpa: u64) -> Result<(), NtStatus> {
        crate::hvm::pagetable_dying(self.hv, gpa)
    }
    fn hvm_set_evtchn_upcall_vector(&self, vcpu_id: u32, vector: u8) -> Result<(), NtStatus> {
        crate::hvm::set_evtchn_upcall_vector(self.hv, vcpu_id, vector)
    }

    fn memory_add_to_physmap(&self, pfn: usize, space: u32, offset: usize) -> Result<(), NtStatus> {
        crate::memory::add_to_physmap(self.hv, pfn, space, offset)
    }
    fn memory_remove_from_physmap(&self, pfn: usize) -> Result<(), NtStatus> {
        crate::memory::remove_from_physmap(self.hv, pfn)
    }
    fn memory_decrease_reservation(&self, order: u32, pfns: &mut [usize]) -> Result<u32, NtStatus> {
        crate::memory::decrease_reservation(self.hv, order, pfns)
    }
    fn memory_populate_physmap(&self, order: u32, pfns: &mut [usize]) -> Result<u32, NtStatus> {
        crate::memory::populate_physmap(self.hv, order, pfns)
    }

    fn event_channel_send(&self, port: u32) -> Result<(), NtStatus> {
        crate::event_channel::send(self.hv, port)
    }
    fn event_channel_allocate_unbound(&self, remote_domain: u16) -> Result<u32, NtStatus> {
        crate::event_channel::allocate_unbound(self.hv, remote_domain)
    }
    fn event_channel_bind_inter_domain(
        &self,
        remote_domain: u16,
        remote_port: u32,
    ) -> Result<u32, NtStatus> {
        crate::event_channel::bind_inter_domain(self.hv, remote_domain, remote_port)
    }
    fn event_channel_bind_virq(&self, virq: u32, vcpu_id: u32) -> Result<u32, NtStatus> {
        crate::event_channel::bind_virq(self.hv, virq, vcpu_id)
    }
    fn event_channel_query_inter_domain(&self, local_port: u32) -> Result<(u16, u32), NtStatus> {
        crate::event_channel::query_inter_domain(self.hv, local_port)
    }
    fn event_channel_close(&self, local_port: u32) -> Result<(), NtStatus> {
        crate::event_channel::close(self.hv, local_port)
    }
    fn event_channel_expand_array(&self, pfn: usize) -> Result<(), NtStatus> {
        crate::event_channel::expand_array(self.hv, pfn)
    }
    fn event_channel_init_control(&self, pfn: usize, vcpu_id: u32) -> Result<(), NtStatus> {
        crate::event_channel::init_control(self.hv, pfn, vcpu_id)
    }
    fn event_channel_reset(&self) -> Result<(), NtStatus> {
        crate::event_channel::reset(self.hv)
    }
    fn event_channel_bind_virtual_cpu(
        &self,
        local_port: u32,
        vcpu_id: u32,
    ) -> Result<(), NtStatus> {
        crate::event_channel::bind_virtual_cpu(self.hv, local_port, vcpu_id)
    }
    fn event_channel_unmask(&self, local_port: u32) -> Result<(), NtStatus> {
        crate::event_channel::unmask(self.hv, local_port)
    }

    fn grant_table_set_version(&self, version: u32) -> Result<(), NtStatus> {
        crate::grant_table::set_version(self.hv, version)
    }
    fn grant_table_get_version(&self) -> Result<u32, NtStatus> {
        crate::grant_table::get_version(self.hv)
    }
    fn grant_table_copy(&self, ops: &mut [GnttabCopy]) -> Result<(), NtStatus> {
        crate::grant_table::copy(self.hv, ops)
    }
    fn grant_table_map_foreign_page(
        &self,
        domain: u16,
        gref: u32,
        address: u64,
        read_only: bool,
    ) -> Result<u32, NtStatus> {
        crate::grant_table::map_foreign_page(self.hv, domain, gref, address, read_only)
    }
    fn grant_table_unmap_foreign_page(&self, handle: u32, address: u64) -> Result<(), NtStatus> {
        crate::grant_table::unmap_foreign_page(self.hv, handle, address)
    }
    fn grant_table_query_size(&self) -> Result<(u32, u32), NtStatus> {
        crate::grant_table::query_size(self.hv)
    }

    fn sched_shutdown_code(&self, reason: u32) -> Result<(), NtStatus> {
        crate::sched::shutdown_code(self.hv, reason)
    }
    fn sched_shutdown(&self, reason: u32) -> Result<(), NtStatus> {
        crate::sched::shutdown(self.hv, reason)
    }
    fn sched_yield(&self) {
        crate::sched::yield_now(self.hv)
    }
    fn sched_watchdog(&self, id: &mut u32, seconds: u32) -> Result<(), NtStatus> {
        crate::sched::watchdog(self.hv, id, seconds)
    }

    fn xen_version(&self) -> Result<(u32, u32), NtStatus> {
        crate::xen_version::version(self.hv)
    }
    fn xen_version_extra(&self) -> Result<[u8; XEN_EXTRAVERSION_LEN], NtStatus> {
        crate::xen_version::extra(self.hv)
    }

    fn module_lookup(&self, address: usize) -> Option<(ModuleName, usize)> {
        self.modules.lookup(address)
    }

    fn unplug_devices(&self) {
        self.unplug.devices(self.hv, self);
    }
    fn unplug_increment_value(&self, unplug_type: UnplugType) -> Result<(), NtStatus> {
        let key = self.key(|k| k.unplug)?;
        unplug::increment(self.os, key, unplug_type, self)
    }
    fn unplug_decrement_value(&self, unplug_type: UnplugType) -> Result<(), NtStatus> {
        let key = self.key(|k| k.unplug)?;
        unplug::decrement(self.os, key, unplug_type, self)
    }
    fn unplug_get_request(&self, unplug_type: UnplugType) -> bool {
        self.unplug.get_request(unplug_type)
    }

    fn log(&self, level: LogLevel, text: &str) {
        self.log.write(level, text.as_bytes(), &self.deliver());
    }
    fn log_resume(&self) {
        let mut h = self.handles.lock();
        if let Some(old) = h.debug_print.take() {
            self.os.deregister_callback(old);
            h.debug_print = self.os.register_callback(KernelCallback::DebugPrint).ok();
        }
    }
    fn log_read_log_level(&self, key: KeyHandle, name: &CStr) -> Result<LogLevel, NtStatus> {
        log::parse_log_level(self.os.registry_query(key, cstr(name)))
    }
    fn log_add_disposition(
        &self,
        mask: LogLevel,
        function: LogDispositionFn,
        argument: *mut c_void,
    ) -> Result<usize, NtStatus> {
        let target = DispositionTarget::Foreign {
            function,
            argument: argument as usize,
        };
        Ok(self.log.add_disposition(mask, target)?.unwrap_or(0))
    }
    fn log_remove_disposition(&self, disposition: usize) {
        self.log.remove_disposition(disposition)
    }

    fn system_processor_vcpu_id(&self, cpu: u32) -> Result<u32, NtStatus> {
        self.system.vcpu_id(cpu)
    }
    fn system_processor_vcpu_info(&self, cpu: u32) -> Result<usize, NtStatus> {
        self.system.vcpu_info(cpu)
    }
    fn system_processor_register_vcpu_info(&self, cpu: u32, force: bool) -> Result<(), NtStatus> {
        self.system.register_vcpu_info(self.hv, cpu, force, self)
    }
    fn system_maximum_physical_address(&self) -> u64 {
        self.system.maximum_physical_address()
    }
    fn system_real_time_is_universal(&self) -> bool {
        self.system.real_time_is_universal()
    }
    fn system_set_watchdog(&self, seconds: u32) -> Result<(), NtStatus> {
        self.system.set_watchdog(self.hv, seconds, self)
    }
    fn system_stop_watchdog(&self) {
        self.system.stop_watchdog(self.hv, self)
    }

    fn vcpu_set_periodic_timer(
        &self,
        vcpu_id: u32,
        period_100ns: Option<i64>,
    ) -> Result<(), NtStatus> {
        crate::vcpu::set_periodic_timer(self.hv, vcpu_id, period_100ns)
    }
    fn vcpu_register_vcpu_info(
        &self,
        vcpu_id: u32,
        pfn: usize,
        offset: u32,
    ) -> Result<(), NtStatus> {
        crate::vcpu::register_vcpu_info(self.hv, vcpu_id, pfn, offset)
    }

    fn filters_install(&self) {
        crate::filters::install(self.os, self)
    }
    fn filters_uninstall(&self) {
        crate::filters::uninstall(self.os, self)
    }

    fn config_get_active(&self, key: &CStr, out: &mut [u8]) -> Result<usize, NtStatus> {
        self.config()
            .get_active(cstr(key))
            .and_then(|v| copy_out(&v, out))
    }
    fn config_set_active(
        &self,
        device_id: &CStr,
        instance_id: &CStr,
        location: &CStr,
    ) -> Result<(), NtStatus> {
        self.config()
            .set_active(cstr(device_id), cstr(instance_id), cstr(location), self)
    }
    fn config_update_active(
        &self,
        device_id: &CStr,
        instance_id: &CStr,
        location: &CStr,
    ) -> Result<(), NtStatus> {
        self.config()
            .update_active(cstr(device_id), cstr(instance_id), cstr(location), self)
    }
    fn config_clear_active(&self) -> Result<(), NtStatus> {
        self.config().clear_active(self)
    }
    fn config_request_reboot(
        &self,
        parameters_key: KeyHandle,
        module: &CStr,
    ) -> Result<(), NtStatus> {
        config::request_reboot(self.os, parameters_key, cstr(module))
    }
    fn config_query_system_start_option(
        &self,
        prefix: &CStr,
        out: &mut [u8],
    ) -> Result<usize, NtStatus> {
        registry::query_system_start_option(self.os, cstr(prefix)).and_then(|v| copy_out(&v, out))
    }
}

/// Kernel notifications delivered by the edge.
impl CallbackSink for Xen<'_> {
    fn bug_check(&self, code: u32, parameters: [usize; 4]) {
        Xen::bug_check(self, code, parameters)
    }
    fn process_exit(&self, cr3: u64) {
        Xen::process_exit(self, cr3)
    }
    fn image_loaded(&self, module: &ModuleInfo) {
        Xen::image_loaded(self, module)
    }
    fn processor_added(&self, cpu: u32) {
        Xen::processor_added(self, cpu)
    }
    fn system_state(&self, entering_s0: bool) {
        self.info(format_args!(
            "{}",
            if entering_s0 { "-> S0" } else { "<- S0" }
        ));
    }
    fn debug_print(&self, level: u32, text: &[u8]) {
        // DbgPrint callbacks run at any IRQL: flush at once only when every disposition is
        // a port; otherwise the lines wait for the next LogPrintf (or the edge's flush DPC),
        // as upstream defers them to a DPC.
        if self.debug_print_captured(level, text) && !self.log.has_foreign_disposition() {
            self.flush_log();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acpi::build;
    use crate::testing::{FakeHv, FakeOs, Fault};
    use common::os::RegValue;
    use xen_include::status::*;

    /// A guest with ACPI tables for 2 CPUs (APIC IDs 0 and 2 → vcpu 0 and 1).
    pub fn guest() -> FakeOs {
        let os = FakeOs::new();
        os.state().phys = build::machine(&[(0, 0), (1, 2)]);
        os.state().modules = vec![ModuleInfo {
            base: 0x1000,
            size: 0x1000,
            name: "\\SystemRoot\\ntoskrnl.exe".into(),
        }];
        os
    }

    pub fn xen_cpu() -> FakeHv {
        let mut hv = FakeHv::new(b"GenuineIntel", Some(0x4000_0000));
        // CPUID(1).EBX[31:24]: the FakeOs runs everything on "cpu 0", so both CPUs report
        // APIC ID 0 here; the simulator scenarios cover distinct APIC IDs.
        hv.cpuid
            .insert(1, common::hypercall::CpuidResult::default());
        hv
    }

    fn assert_clean(os: &FakeOs, xen: &Xen<'_>) {
        assert_eq!(os.open_handles(), 0, "registry handles leaked");
        assert!(
            os.state().callbacks.is_empty(),
            "callbacks left: {:?}",
            os.state().callbacks
        );
        assert_eq!(xen.log.disposition_count(), 0);
        assert!(xen.discovery().is_none());
        assert!(!xen.is_initialized());
    }

    #[test]
    fn initialize_then_unload() {
        let os = guest();
        let hv = xen_cpu();
        let xen = Xen::new(&hv, &os, None, None);
        xen.initialize().unwrap();
        assert_eq!(xen.initialize(), Err(STATUS_OBJECTID_EXISTS));
        assert_eq!(xen.discovery().unwrap().instruction, Instruction::Vmcall);
        // Parameters, Unplug, ForceUnplug non-volatile; Memory volatile.
        for (k, volatile) in [
            ("Parameters", false),
            ("Unplug", false),
            ("ForceUnplug", false),
            ("Memory", true),
        ] {
            let key = os.key(&format!("{}\\{k}", registry::SERVICE_PATH)).unwrap();
            assert_eq!(key.volatile, volatile, "{k}");
        }
        // Four keys stay open (service key closed), six callbacks registered (DbgPrint,
        // processor change, power state, bug check, image load, process).
        assert_eq!(os.open_handles(), 4);
        assert_eq!(os.state().callbacks.len(), 6);
        assert_eq!(xen.log.disposition_count(), 2);
        assert_eq!(
            xen.module_lookup(0x1800).unwrap().0.as_bytes(),
            b"ntoskrnl.exe"
        );
        xen.unload();
        assert_clean(&os, &xen);
        // And again after unload.
        xen.initialize().unwrap();
        xen.unload();
        assert_clean(&os, &xen);
    }

    #[test]
    fn each_stage_failing_unwinds_everything() {
        type Break = fn(&FakeOs, &mut FakeHv);
        let cases: Vec<(Stage, Break)> = vec![
            (Stage::ServiceKey, |os, _| {
                os.fail(Fault::Create("services\\xen".into()))
            }),
            (Stage::ParametersKey, |os, _| {
                os.fail(Fault::Create("\\parameters".into()))
            }),
            (Stage::UnplugKey, |os, _| {
                os.fail(Fault::Create("xen\\unplug".into()))
            }),
            (Stage::ForceUnplugKey, |os, _| {
                os.fail(Fault::Create("\\forceunplug".into()))
            }),
            (Stage::MemoryKey, |os, _| {
                os.fail(Fault::Create("\\memory".into()))
            }),
            (Stage::Hypercall, |_, hv| {
                *hv = FakeHv::new(b"GenuineIntel", None)
            }),
            (Stage::Hypercall, |_, hv| {
                *hv = FakeHv::new(b"VIA VIA VIA ", Some(0x4000_0000))
            }),
            (Stage::Acpi, |os, _| {
                os.state().phys = build::PhysMem::default()
            }),
            (Stage::System, |os, _| {
                os.state()
                    .phys
                    .put(0xFC00_0000, build::xsdt(&[0xFC00_2000]));
            }),
            (Stage::System, |os, _| os.fail(Fault::RunOn)),
            (Stage::System, |os, _| {
                os.fail(Fault::Callback("ProcessorChange".into()))
            }),
            (Stage::System, |os, _| {
                os.fail(Fault::Callback("PowerState".into()))
            }),
            (Stage::BugCheck, |os, _| {
                os.fail(Fault::Callback("BugCheck".into()))
            }),
            (Stage::Module, |os, _| os.fail(Fault::Modules)),
            (Stage::Module, |os, _| {
                os.fail(Fault::Callback("ImageLoad".into()))
            }),
            (Stage::Process, |os, _| {
                os.fail(Fault::Callback("ProcessNotify".into()))
            }),
        ];
        for (stage, breaker) in cases {
            let os = guest();
            let mut hv = xen_cpu();
            breaker(&os, &mut hv);
            let xen = Xen::new(&hv, &os, None, None);
            let status = xen.initialize().unwrap_err();
            assert!(!nt_success(status), "{stage:?}");
            if stage == Stage::Hypercall {
                assert_eq!(status, STATUS_NOT_SUPPORTED);
            }
            assert_clean(&os, &xen);
            let log = os.state().log.join("\n");
            assert!(
                log.contains(&format!("{stage:?} failed")),
                "{stage:?}: {log}"
            );
        }
    }

    #[test]
    fn not_on_xen_declines_with_log_line() {
        let os = guest();
        let hv = FakeHv::new(b"AuthenticAMD", None);
        let xen = Xen::new(&hv, &os, None, None);
        assert_eq!(xen.initialize(), Err(STATUS_NOT_SUPPORTED));
        assert!(os
            .state()
            .log
            .iter()
            .any(|l| l == "xen|XEN: BASE CPUID LEAF NOT FOUND"));
    }

    #[test]
    fn debug_print_capture_is_optional() {
        let os = guest();
        os.set(
            registry::CONTROL_PATH,
            "SystemStartOptions",
            RegValue::Sz("XEN:DBG_PRINT=OFF".into()),
        );
        let hv = xen_cpu();
        let xen = Xen::new(&hv, &os, None, None);
        xen.initialize().unwrap();
        assert_eq!(os.state().callbacks.len(), 5);
        xen.unload();
        // Its registration failing is not fatal either.
        let os = guest();
        os.fail(Fault::Callback("DebugPrint".into()));
        let xen = Xen::new(&hv, &os, None, None);
        xen.initialize().unwrap();
        assert_eq!(os.state().callbacks.len(), 5);
        xen.unload();
        assert_clean(&os, &xen);
    }

    #[test]
    fn log_levels_pick_port_dispositions() {
        let os = guest();
        os.set(
            &format!("{}\\Parameters", registry::SERVICE_PATH),
            "XenLogLevel",
            RegValue::MultiSz(vec!["INFO".into(), "ERROR".into()]),
        );
        let hv = xen_cpu();
        let xen = Xen::new(&hv, &os, None, None);
        xen.initialize().unwrap();
        hv.writes.lock().unwrap().clear();
        xen.log(xen_include::api::LOG_LEVEL_INFO, "hi\n");
        let writes = hv.writes.lock().unwrap().clone();
        let e9: Vec<u8> = writes
            .iter()
            .filter(|w| w.0 == 0xE9)
            .map(|w| w.2 as u8)
            .collect();
        let q12: Vec<u8> = writes
            .iter()
            .filter(|w| w.0 == 0x12)
            .map(|w| w.2 as u8)
            .collect();
        assert_eq!(e9, b"hi\n");
        assert_eq!(q12, b"hi\n");
        hv.writes.lock().unwrap().clear();
        xen.log(xen_include::api::LOG_LEVEL_TRACE, "trace");
        assert!(
            hv.writes.lock().unwrap().is_empty(),
            "TRACE is in neither mask"
        );
        xen.log(xen_include::api::LOG_LEVEL_WARNING, "w");
        assert_eq!(
            hv.writes.lock().unwrap().len(),
            1,
            "WARNING only goes to QEMU by default"
        );
        xen.unload();
    }

    #[test]
    fn touch_handshake() {
        let os = guest();
        let hv = xen_cpu();
        let xen = Xen::new(&hv, &os, None, None);
        let (a, b, c, d) = xenbus_rs::version();
        assert_eq!(
            xen.xen_touch(c"XENBUS", a, b, c, d + 1),
            Err(STATUS_INCOMPATIBLE_DRIVER_BLOCKED)
        );
        assert!(os
            .state()
            .log
            .iter()
            .any(|l| l.contains("MODULE 'XENBUS' NOT COMPATIBLE (REBOOT REQUIRED)")));
        // XENVER_version answered by the fake with 0 → "0.0".
        xen.xen_touch(c"XENBUS", a, b, c, d).unwrap();
        xen.xen_touch(c"XENFILT", a, b, c, d).unwrap();
        let versions = hv
            .calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.0 == 17 && c.1[0] == 0)
            .count();
        assert_eq!(versions, 1, "banner only on the first successful touch");
    }

    #[test]
    fn foreign_disposition_receives_formatted_lines() {
        let os = guest();
        let hv = xen_cpu();
        let xen = Xen::new(&hv, &os, None, None);
        let sink = std::sync::Mutex::new(Vec::<String>::new());
        let d = xen
            .log_add_disposition(
                LOG_LEVEL_INFO,
                crate::testing::collect_disposition,
                &sink as *const _ as *mut c_void,
            )
            .unwrap();
        assert_ne!(d, 0);
        xen.log(LOG_LEVEL_INFO, "one");
        xen.log(xen_include::api::LOG_LEVEL_ERROR, "not mine");
        xen.log_remove_disposition(d);
        xen.log(LOG_LEVEL_INFO, "gone");
        assert_eq!(*sink.lock().unwrap(), vec!["one".to_string()]);
        assert_eq!(
            xen.log_add_disposition(
                0,
                crate::testing::collect_disposition,
                core::ptr::null_mut()
            ),
            Ok(0)
        );
    }

    #[test]
    fn kernel_notifications_through_the_sink() {
        let os = guest();
        let hv = xen_cpu();
        let xen = Xen::new(&hv, &os, None, None);
        xen.initialize().unwrap();
        let sink: &dyn CallbackSink = &xen;
        hv.writes.lock().unwrap().clear();
        sink.debug_print(crate::dpfltr::ERROR, b"xenvif|Frontend: oops\n");
        let q12: Vec<u8> = hv
            .writes
            .lock()
            .unwrap()
            .iter()
            .filter(|w| w.0 == 0x12)
            .map(|w| w.2 as u8)
            .collect();
        assert_eq!(q12, b"xenvif|Frontend: oops\n");
        sink.image_loaded(&ModuleInfo {
            base: 0x8000,
            size: 0x100,
            name: "XENVBD.SYS".into(),
        });
        assert_eq!(xen.module_lookup(0x8010).unwrap().1, 0x10);
        hv.calls.lock().unwrap().clear();
        sink.process_exit(0x1AB000);
        sink.bug_check(0xEF, [1, 2, 3, 4]);
        let calls = hv.calls.lock().unwrap().clone();
        assert_eq!(calls[0].0, 34, "hvm_op pagetable_dying");
        assert_eq!(calls[1].0, 29, "sched_op shutdown_code(crash)");
        // With a caller's C disposition registered, captured lines wait for the next
        // LogPrintf instead of calling it from the DbgPrint callback.
        let sink_lines = std::sync::Mutex::new(Vec::<String>::new());
        let d = xen
            .log_add_disposition(
                !0,
                crate::testing::collect_disposition,
                &sink_lines as *const _ as *mut c_void,
            )
            .unwrap();
        let sink: &dyn CallbackSink = &xen;
        sink.debug_print(crate::dpfltr::INFO, b"xenbus|queued");
        assert!(sink_lines.lock().unwrap().is_empty());
        xen.log(LOG_LEVEL_INFO, "now");
        assert_eq!(
            *sink_lines.lock().unwrap(),
            vec!["xenbus|queued".to_string(), "now".to_string()]
        );
        xen.log_remove_disposition(d);
        xen.unload();
    }
}
