//! The 64 exports of xen.sys (`#[no_mangle]`, C ABI = Win64), each a thin shim from raw C
//! arguments onto the [`Xen`] core, plus the entry points the WDM shell calls from
//! `DllInitialize`/`DllUnload` and the kernel-callback sink.
//!
//! Compiled for Windows, and for this crate's host tests (which call every export through
//! its C ABI against a core on the simulator). Every signature is checked at compile time against
//! `xen_include::api::c`.

use alloc::boxed::Box;
use core::alloc::Layout;
use core::ffi::{c_char, c_void, CStr};
use core::ptr;
use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

use common::os::{CallbackSink, KeyHandle, Os};
use xen_include::api::{
    self, AnsiString, LogDispositionFn, LogDispositionOpaque, LogLevel, UnplugType, XenApi,
};
use xen_include::status::{
    NtStatus, STATUS_INVALID_PARAMETER, STATUS_NO_MEMORY, STATUS_SUCCESS, STATUS_UNSUCCESSFUL,
};
use xen_include::xen::grant_table::GnttabCopy;

use crate::driver::Xen;
use crate::ffi::VaArgs;
use crate::hypercall::Instruction;
use crate::hypercall_thunk::NativeHypercall;
use crate::log;
use crate::rundown::Rundown;

/// The hardware hypercall edge.
pub static NATIVE: NativeHypercall = NativeHypercall::new();

static CORE: AtomicPtr<Xen<'static>> = AtomicPtr::new(ptr::null_mut());

/// Kernel callbacks (which may still be running on other processors when `DllUnload`
/// deregisters them) hold this while they use the core; the core is freed only after
/// the rundown completes.
static RUNDOWN: Rundown = Rundown::new();

fn select(instruction: Option<Instruction>) {
    NATIVE.select(instruction);
}

fn core() -> Option<&'static Xen<'static>> {
    let p = CORE.load(Ordering::Acquire);
    // SAFETY: CORE is null or points at the leaked core created by `dll_initialize`, which
    // is only freed by `dll_unload` after the loader guarantees no importer remains.
    unsafe { p.as_ref() }
}

/// `DllInitialize`: build the core over `os` and the native hypercall edge and run the
/// initialisation stages.
pub fn dll_initialize(os: &'static dyn Os) -> NtStatus {
    let core: &'static mut Xen<'static> = Box::leak(Box::new(Xen::new(
        &NATIVE,
        os,
        Some(&select),
        xenbus_rs::VENDOR_DEVICE_ID,
    )));
    // Published before the stages run so DbgPrint capture already reaches the log ring.
    CORE.store(core, Ordering::Release);
    RUNDOWN.reinitialize();
    match core.initialize() {
        Ok(()) => STATUS_SUCCESS,
        Err(status) => {
            free_core();
            status
        }
    }
}

/// Free the core once no kernel callback can be using it: its callbacks are deregistered
/// already (unload or the unwind of a failed initialisation); close the rundown, wait for
/// callbacks still running on other processors, then unpublish and free.
fn free_core() {
    RUNDOWN.wait_for_rundown(&|| {});
    let p = CORE.swap(ptr::null_mut(), Ordering::AcqRel);
    if !p.is_null() {
        // SAFETY: `p` came from Box::leak in `dll_initialize`, was just unpublished, and
        // the rundown guarantees no callback still holds a reference (exports are not
        // called after DllUnload: the loader unloads xen.sys after its last importer).
        drop(unsafe { Box::from_raw(p) });
    }
}

/// Publish an already initialised core (host tests: a core over the simulator; one that
/// `dll_unload` will free must come from `Box::leak`).
#[cfg(test)]
pub fn install(core: Option<&'static Xen<'static>>) {
    let p = core.map_or(ptr::null_mut(), |c| ptr::from_ref(c).cast_mut());
    CORE.store(p, Ordering::Release);
    RUNDOWN.reinitialize();
}

/// `DllUnload`.
pub fn dll_unload() {
    if let Some(c) = core() {
        c.unload();
    }
    free_core();
}

/// The sink kernel notifications reach: every call enters the rundown, then forwards to
/// the core if one is published; after `DllUnload` began, calls return at once.
struct GuardedSink;

impl GuardedSink {
    fn with(&self, f: impl FnOnce(&Xen<'static>)) {
        let Some(_inside) = RUNDOWN.acquire() else {
            return;
        };
        if let Some(c) = core() {
            f(c);
        }
    }
}

impl CallbackSink for GuardedSink {
    fn bug_check(&self, code: u32, parameters: [usize; 4]) {
        self.with(|c| c.bug_check(code, parameters))
    }
    fn process_exit(&self, cr3: u64) {
        self.with(|c| c.process_exit(cr3))
    }
    fn image_loaded(&self, module: &common::os::ModuleInfo) {
        self.with(|c| c.image_loaded(module))
    }
    fn debug_print(&self, level: u32, text: &[u8]) {
        self.with(|c| CallbackSink::debug_print(c, level, text))
    }
    fn processor_added(&self, cpu: u32) {
        self.with(|c| c.processor_added(cpu))
    }
    fn system_state(&self, entering_s0: bool) {
        self.with(|c| CallbackSink::system_state(c, entering_s0))
    }
}

static GUARDED_SINK: GuardedSink = GuardedSink;

/// Where the WDM edge delivers kernel notifications (through the unload rundown).
pub fn sink() -> Option<&'static dyn CallbackSink> {
    Some(&GUARDED_SINK)
}

fn status(r: Result<(), NtStatus>) -> NtStatus {
    r.err().unwrap_or(STATUS_SUCCESS)
}

fn with(f: impl FnOnce(&'static Xen<'static>) -> NtStatus) -> NtStatus {
    core().map_or(STATUS_UNSUCCESSFUL, f)
}

/// # Safety
/// `p` is null or a NUL-terminated string valid for the call.
unsafe fn cstr<'a>(p: *const c_char) -> Option<&'a CStr> {
    // SAFETY: by the function's contract.
    (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) })
}

/// Store `v` through an out-pointer, refusing null.
///
/// # Safety
/// `out` is null or valid for a write of `T`.
unsafe fn put<T>(out: *mut T, v: T) -> NtStatus {
    if out.is_null() {
        return STATUS_INVALID_PARAMETER;
    }
    // SAFETY: non-null and valid by the function's contract.
    unsafe { out.write(v) };
    STATUS_SUCCESS
}

// ---- allocations handed to callers (ConfigGetActive, ConfigQuerySystemStartOption) ----

const HEADER: usize = 16;

fn allocate(size: usize) -> *mut u8 {
    let Ok(layout) = Layout::from_size_align(size + HEADER, HEADER) else {
        return ptr::null_mut();
    };
    // SAFETY: the layout has a non-zero size.
    let base = unsafe { alloc::alloc::alloc_zeroed(layout) };
    if base.is_null() {
        return base;
    }
    // SAFETY: the block holds HEADER bytes before the caller's part.
    unsafe {
        base.cast::<usize>().write(size);
        base.add(HEADER)
    }
}

/// # Safety
/// `p` is null or came from [`allocate`] and was not freed yet.
unsafe fn free(p: *mut u8) {
    if p.is_null() {
        return;
    }
    // SAFETY: by contract `p` is HEADER bytes into a block from `allocate`.
    unsafe {
        let base = p.sub(HEADER);
        let size = base.cast::<usize>().read();
        if let Ok(layout) = Layout::from_size_align(size + HEADER, HEADER) {
            alloc::alloc::dealloc(base, layout);
        }
    }
}

/// # Safety
/// `format` is NUL-terminated; `va` holds the slots the format consumes.
unsafe fn vprintf(level: LogLevel, count: u32, format: *const c_char, va: *const u64) {
    // SAFETY: the caller's contract: `format` is NULL or NUL-terminated.
    let (Some(c), Some(format)) = (core(), unsafe { cstr(format) }) else {
        return;
    };
    let bytes = format.to_bytes();
    // SAFETY: the caller passed the slots its format consumes.
    let mut args = unsafe { VaArgs::new(va, log::slot_count(count, bytes)) };
    c.log_printf(level, count, bytes, &mut args);
}

/// `LogCchPrintf` / `LogPrintf` implementation behind the variadic shims.
unsafe extern "C" fn log_cch_printf_impl(
    level: LogLevel,
    count: u32,
    format: *const c_char,
    va: *const u64,
) {
    // SAFETY: the shim passes the caller's arguments.
    unsafe { vprintf(level, count, format, va) }
}

unsafe extern "C" fn log_printf_impl(level: LogLevel, format: *const c_char, va: *const u64) {
    // SAFETY: the shim passes the caller's arguments.
    unsafe { vprintf(level, log::LOG_BUFFER_SIZE as u32, format, va) }
}

#[allow(non_snake_case)]
mod log_cch_printf_shim {
    use super::*;
    xen_include::variadic_shim! {
    C fn LogCchPrintf(level: LogLevel, count: u32, format: *const c_char, ...) => log_cch_printf_impl;
    }
}
pub use log_cch_printf_shim::LogCchPrintf;
#[allow(non_snake_case)]
mod log_printf_shim {
    use super::*;
    xen_include::variadic_shim! {
    C fn LogPrintf(level: LogLevel, format: *const c_char, ...) => log_printf_impl;
    }
}
pub use log_printf_shim::LogPrintf;

/// `LogCchVPrintf` (a Win64 `va_list` is a pointer to the argument slots).
///
/// # Safety
/// C caller contract of `LogCchVPrintf`.
#[no_mangle]
pub unsafe extern "C" fn LogCchVPrintf(
    level: LogLevel,
    count: u32,
    format: *const c_char,
    va: *mut c_void,
) {
    // SAFETY: caller contract.
    unsafe { vprintf(level, count, format, va as *const u64) }
}

/// `LogVPrintf`.
///
/// # Safety
/// C caller contract of `LogVPrintf`.
#[no_mangle]
pub unsafe extern "C" fn LogVPrintf(level: LogLevel, format: *const c_char, va: *mut c_void) {
    // SAFETY: caller contract.
    unsafe { vprintf(level, log::LOG_BUFFER_SIZE as u32, format, va as *const u64) }
}

macro_rules! export {
    ($( $(#[$m:meta])* fn $name:ident($($p:ident: $t:ty),*) $(-> $r:ty)? $body:block )*) => {
        $(
            $(#[$m])*
            #[doc = concat!("The `", stringify!($name), "` export.")]
            ///
            /// # Safety
            /// The C caller contract of the export (valid pointers, NUL-terminated strings).
            #[no_mangle]
            pub unsafe extern "C" fn $name($($p: $t),*) $(-> $r)? $body
            const _: api::c::$name = $name;
        )*
    };
}

static NEXT_NAME: AtomicUsize = AtomicUsize::new(0);
const NAME_SLOTS: usize = 16;
static mut NAMES: [[u8; api::ModuleName::CAPACITY + 1]; NAME_SLOTS] =
    [[0; api::ModuleName::CAPACITY + 1]; NAME_SLOTS];

export! {
    fn XenTouch(name: *const c_char, major: u32, minor: u32, micro: u32, build: u32) -> NtStatus {
        // SAFETY: caller contract.
        let name = unsafe { cstr(name) }.unwrap_or(c"(null)");
        with(|c| status(c.xen_touch(name, major, minor, micro, build)))
    }
    fn HvmSetParam(index: u32, value: u64) -> NtStatus {
        with(|c| status(c.hvm_set_param(index, value)))
    }
    fn HvmGetParam(index: u32, value: *mut u64) -> NtStatus {
        // SAFETY: caller contract.
        with(|c| c.hvm_get_param(index).map_or_else(|e| e, |v| unsafe { put(value, v) }))
    }
    fn HvmPagetableDying(address: i64) -> NtStatus {
        with(|c| status(c.hvm_pagetable_dying(address as u64)))
    }
    fn HvmSetEvtchnUpcallVector(vcpu_id: u32, vector: u8) -> NtStatus {
        with(|c| status(c.hvm_set_evtchn_upcall_vector(vcpu_id, vector)))
    }
    fn MemoryAddToPhysmap(pfn: usize, space: u32, offset: usize) -> NtStatus {
        with(|c| status(c.memory_add_to_physmap(pfn, space, offset)))
    }
    fn MemoryRemoveFromPhysmap(pfn: usize) -> NtStatus {
        with(|c| status(c.memory_remove_from_physmap(pfn)))
    }
    fn MemoryDecreaseReservation(order: u32, count: u32, pfns: *mut usize, result: *mut u32) -> NtStatus {
        if pfns.is_null() || result.is_null() {
            return STATUS_INVALID_PARAMETER;
        }
        // SAFETY: caller contract: `count` PFNs at `pfns`.
        let pfns = unsafe { core::slice::from_raw_parts_mut(pfns, count as usize) };
        // SAFETY: checked non-null above.
        with(|c| c.memory_decrease_reservation(order, pfns).map_or_else(|e| e, |n| unsafe { put(result, n) }))
    }
    fn MemoryPopulatePhysmap(order: u32, count: u32, pfns: *mut usize, result: *mut u32) -> NtStatus {
        if pfns.is_null() || result.is_null() {
            return STATUS_INVALID_PARAMETER;
        }
        // SAFETY: caller contract: `count` PFNs at `pfns`.
        let pfns = unsafe { core::slice::from_raw_parts_mut(pfns, count as usize) };
        // SAFETY: checked non-null above.
        with(|c| c.memory_populate_physmap(order, pfns).map_or_else(|e| e, |n| unsafe { put(result, n) }))
    }
    fn EventChannelSend(port: u32) -> NtStatus {
        with(|c| status(c.event_channel_send(port)))
    }
    fn EventChannelAllocateUnbound(domain: u16, port: *mut u32) -> NtStatus {
        // SAFETY: caller contract.
        with(|c| c.event_channel_allocate_unbound(domain).map_or_else(|e| e, |p| unsafe { put(port, p) }))
    }
    fn EventChannelBindInterDomain(domain: u16, remote_port: u32, local_port: *mut u32) -> NtStatus {
        // SAFETY: caller contract.
        with(|c| c.event_channel_bind_inter_domain(domain, remote_port).map_or_else(|e| e, |p| unsafe { put(local_port, p) }))
    }
    fn EventChannelBindVirq(virq: u32, vcpu_id: u32, local_port: *mut u32) -> NtStatus {
        // SAFETY: caller contract.
        with(|c| c.event_channel_bind_virq(virq, vcpu_id).map_or_else(|e| e, |p| unsafe { put(local_port, p) }))
    }
    fn EventChannelQueryInterDomain(local_port: u32, domain: *mut u16, remote_port: *mut u32) -> NtStatus {
        if domain.is_null() || remote_port.is_null() {
            return STATUS_INVALID_PARAMETER;
        }
        with(|c| match c.event_channel_query_inter_domain(local_port) {
            Err(e) => e,
            // SAFETY: both checked non-null above.
            Ok((d, p)) => unsafe {
                domain.write(d);
                remote_port.write(p);
                STATUS_SUCCESS
            },
        })
    }
    fn EventChannelClose(local_port: u32) -> NtStatus {
        with(|c| status(c.event_channel_close(local_port)))
    }
    fn EventChannelExpandArray(pfn: usize) -> NtStatus {
        with(|c| status(c.event_channel_expand_array(pfn)))
    }
    fn EventChannelInitControl(pfn: usize, vcpu_id: u32) -> NtStatus {
        with(|c| status(c.event_channel_init_control(pfn, vcpu_id)))
    }
    fn EventChannelReset() -> NtStatus {
        with(|c| status(c.event_channel_reset()))
    }
    fn EventChannelBindVirtualCpu(local_port: u32, vcpu_id: u32) -> NtStatus {
        with(|c| status(c.event_channel_bind_virtual_cpu(local_port, vcpu_id)))
    }
    fn EventChannelUnmask(local_port: u32) -> NtStatus {
        with(|c| status(c.event_channel_unmask(local_port)))
    }
    fn GrantTableSetVersion(version: u32) -> NtStatus {
        with(|c| status(c.grant_table_set_version(version)))
    }
    fn GrantTableGetVersion(version: *mut u32) -> NtStatus {
        // SAFETY: caller contract.
        with(|c| c.grant_table_get_version().map_or_else(|e| e, |v| unsafe { put(version, v) }))
    }
    fn GrantTableCopy(ops: *mut c_void, count: u32) -> NtStatus {
        if ops.is_null() {
            return STATUS_INVALID_PARAMETER;
        }
        // SAFETY: caller contract: `count` gnttab_copy at `ops`.
        let ops = unsafe { core::slice::from_raw_parts_mut(ops.cast::<GnttabCopy>(), count as usize) };
        with(|c| status(c.grant_table_copy(ops)))
    }
    fn GrantTableMapForeignPage(domain: u16, gref: u32, address: i64, read_only: u8, handle: *mut u32) -> NtStatus {
        // SAFETY: caller contract.
        with(|c| c.grant_table_map_foreign_page(domain, gref, address as u64, read_only != 0).map_or_else(|e| e, |h| unsafe { put(handle, h) }))
    }
    fn GrantTableUnmapForeignPage(handle: u32, address: i64) -> NtStatus {
        with(|c| status(c.grant_table_unmap_foreign_page(handle, address as u64)))
    }
    fn GrantTableQuerySize(current: *mut u32, maximum: *mut u32) -> NtStatus {
        with(|c| match c.grant_table_query_size() {
            Err(e) => e,
            Ok((cur, max)) => {
                // SAFETY: both are optional out-pointers (caller contract).
                unsafe {
                    if !current.is_null() {
                        current.write(cur);
                    }
                    if !maximum.is_null() {
                        maximum.write(max);
                    }
                }
                STATUS_SUCCESS
            }
        })
    }
    fn SchedShutdownCode(reason: u32) -> NtStatus {
        with(|c| status(c.sched_shutdown_code(reason)))
    }
    fn SchedShutdown(reason: u32) -> NtStatus {
        with(|c| status(c.sched_shutdown(reason)))
    }
    fn SchedYield() {
        if let Some(c) = core() {
            c.sched_yield();
        }
    }
    fn SchedWatchdog(id: *mut u32, seconds: u32) -> NtStatus {
        if id.is_null() {
            return STATUS_INVALID_PARAMETER;
        }
        // SAFETY: non-null in/out pointer (caller contract).
        let id = unsafe { &mut *id };
        with(|c| status(c.sched_watchdog(id, seconds)))
    }
    fn XenVersion(major: *mut u32, minor: *mut u32) -> NtStatus {
        if major.is_null() || minor.is_null() {
            return STATUS_INVALID_PARAMETER;
        }
        with(|c| match c.xen_version() {
            Err(e) => e,
            // SAFETY: both checked non-null above.
            Ok((a, b)) => unsafe {
                major.write(a);
                minor.write(b);
                STATUS_SUCCESS
            },
        })
    }
    fn XenVersionExtra(extra: *mut c_char) -> NtStatus {
        if extra.is_null() {
            return STATUS_INVALID_PARAMETER;
        }
        with(|c| match c.xen_version_extra() {
            Err(e) => e,
            Ok(v) => {
                // SAFETY: the caller passes a XEN_EXTRAVERSION_LEN buffer.
                unsafe { ptr::copy_nonoverlapping(v.as_ptr(), extra.cast::<u8>(), v.len()) };
                STATUS_SUCCESS
            }
        })
    }
    fn ModuleLookup(address: usize, name: *mut *mut c_char, offset: *mut usize) {
        if name.is_null() || offset.is_null() {
            return;
        }
        let found = core().and_then(|c| c.module_lookup(address));
        // SAFETY: out-pointers checked non-null; NAMES slots are only written here, one
        // slot per lookup in rotation, so a returned name stays intact for the next
        // NAME_SLOTS - 1 lookups.
        unsafe {
            match found {
                None => {
                    name.write(ptr::null_mut());
                    offset.write(0);
                }
                Some((m, off)) => {
                    let i = NEXT_NAME.fetch_add(1, Ordering::Relaxed) % NAME_SLOTS;
                    let slot = ptr::addr_of_mut!(NAMES).cast::<u8>().add(i * (api::ModuleName::CAPACITY + 1));
                    let bytes = m.as_bytes();
                    ptr::copy_nonoverlapping(bytes.as_ptr(), slot, bytes.len());
                    slot.add(bytes.len()).write(0);
                    name.write(slot.cast());
                    offset.write(off);
                }
            }
        }
    }
    fn UnplugDevices() {
        if let Some(c) = core() {
            c.unplug_devices();
        }
    }
    fn UnplugIncrementValue(t: UnplugType) -> NtStatus {
        with(|c| status(c.unplug_increment_value(t)))
    }
    fn UnplugDecrementValue(t: UnplugType) -> NtStatus {
        with(|c| status(c.unplug_decrement_value(t)))
    }
    fn UnplugGetRequest(t: UnplugType) -> u8 {
        u8::from(core().is_some_and(|c| c.unplug_get_request(t)))
    }
    fn LogResume() {
        if let Some(c) = core() {
            c.log_resume();
        }
    }
    fn LogReadLogLevel(key: usize, name: *const c_char, level: *mut LogLevel) -> NtStatus {
        // SAFETY: caller contract.
        let Some(name) = (unsafe { cstr(name) }) else {
            return STATUS_INVALID_PARAMETER;
        };
        with(|c| match c.log_read_log_level(KeyHandle(key), name) {
            // SAFETY: caller contract.
            Ok(l) => unsafe { put(level, l) },
            Err(e) => {
                if e != xen_include::status::STATUS_OBJECT_NAME_NOT_FOUND && !level.is_null() {
                    // SAFETY: non-null out-pointer.
                    unsafe { level.write(api::LOG_LEVEL_NONE) };
                }
                e
            }
        })
    }
    fn LogAddDisposition(mask: LogLevel, function: LogDispositionFn, argument: *mut c_void, disposition: *mut *mut LogDispositionOpaque) -> NtStatus {
        if disposition.is_null() {
            return STATUS_INVALID_PARAMETER;
        }
        with(|c| {
            let r = c.log_add_disposition(mask, function, argument);
            // SAFETY: checked non-null above; the handle is an opaque small integer.
            unsafe { disposition.write(r.map_or(ptr::null_mut(), |h| h as *mut LogDispositionOpaque)) };
            status(r.map(|_| ()))
        })
    }
    fn LogRemoveDisposition(disposition: *mut LogDispositionOpaque) {
        if let Some(c) = core() {
            if !disposition.is_null() {
                c.log_remove_disposition(disposition as usize);
            }
        }
    }
    fn SystemProcessorVcpuId(cpu: u32, vcpu_id: *mut u32) -> NtStatus {
        // SAFETY: caller contract.
        with(|c| c.system_processor_vcpu_id(cpu).map_or_else(|e| e, |v| unsafe { put(vcpu_id, v) }))
    }
    fn SystemProcessorVcpuInfo(cpu: u32, vcpu: *mut *mut c_void) -> NtStatus {
        // SAFETY: caller contract.
        with(|c| c.system_processor_vcpu_info(cpu).map_or_else(|e| e, |v| unsafe { put(vcpu, v as *mut c_void) }))
    }
    fn SystemProcessorRegisterVcpuInfo(cpu: u32, force: u8) -> NtStatus {
        with(|c| status(c.system_processor_register_vcpu_info(cpu, force != 0)))
    }
    fn SystemMaximumPhysicalAddress() -> i64 {
        core().map_or(0, |c| c.system_maximum_physical_address() as i64)
    }
    fn SystemRealTimeIsUniversal() -> u8 {
        u8::from(core().is_some_and(|c| c.system_real_time_is_universal()))
    }
    fn SystemSetWatchdog(seconds: u32) -> NtStatus {
        with(|c| status(c.system_set_watchdog(seconds)))
    }
    fn SystemStopWatchdog() {
        if let Some(c) = core() {
            c.system_stop_watchdog();
        }
    }
    fn VcpuSetPeriodicTimer(vcpu_id: u32, period: *const i64) -> NtStatus {
        // SAFETY: optional in-pointer (caller contract).
        let period = unsafe { period.as_ref() }.copied();
        with(|c| status(c.vcpu_set_periodic_timer(vcpu_id, period)))
    }
    fn VcpuRegisterVcpuInfo(vcpu_id: u32, pfn: usize, offset: u32) -> NtStatus {
        with(|c| status(c.vcpu_register_vcpu_info(vcpu_id, pfn, offset)))
    }
    fn FiltersInstall() {
        if let Some(c) = core() {
            c.filters_install();
        }
    }
    fn FiltersUninstall() {
        if let Some(c) = core() {
            c.filters_uninstall();
        }
    }
    fn ConfigGetActive(key: *const c_char, value: *mut *mut c_char) -> NtStatus {
        // SAFETY: caller contract.
        let Some(key) = (unsafe { cstr(key) }) else {
            return STATUS_INVALID_PARAMETER;
        };
        if value.is_null() {
            return STATUS_INVALID_PARAMETER;
        }
        with(|c| {
            let mut buf = [0u8; 512];
            match c.config_get_active(key, &mut buf) {
                Err(e) => e,
                Ok(n) => {
                    let p = allocate(n + 1);
                    if p.is_null() {
                        return STATUS_NO_MEMORY;
                    }
                    // SAFETY: `p` holds n + 1 zeroed bytes; `value` is non-null.
                    unsafe {
                        ptr::copy_nonoverlapping(buf.as_ptr(), p, n);
                        value.write(p.cast());
                    }
                    STATUS_SUCCESS
                }
            }
        })
    }
    fn ConfigSetActive(device_id: *const c_char, instance_id: *const c_char, location: *const c_char) -> NtStatus {
        // SAFETY: caller contract.
        let (Some(d), Some(i), Some(l)) = (unsafe { cstr(device_id) }, unsafe { cstr(instance_id) }, unsafe { cstr(location) }) else {
            return STATUS_INVALID_PARAMETER;
        };
        with(|c| status(c.config_set_active(d, i, l)))
    }
    fn ConfigUpdateActive(device_id: *const c_char, instance_id: *const c_char, location: *const c_char) -> NtStatus {
        // SAFETY: caller contract.
        let (Some(d), Some(i), Some(l)) = (unsafe { cstr(device_id) }, unsafe { cstr(instance_id) }, unsafe { cstr(location) }) else {
            return STATUS_INVALID_PARAMETER;
        };
        with(|c| status(c.config_update_active(d, i, l)))
    }
    fn ConfigClearActive() -> NtStatus {
        with(|c| status(c.config_clear_active()))
    }
    fn ConfigFreeActive(value: *mut c_char) {
        // SAFETY: `value` came from ConfigGetActive (caller contract).
        unsafe { free(value.cast()) }
    }
    fn ConfigRequestReboot(parameters_key: usize, module: *const c_char) -> NtStatus {
        // SAFETY: caller contract.
        let Some(module) = (unsafe { cstr(module) }) else {
            return STATUS_INVALID_PARAMETER;
        };
        with(|c| status(c.config_request_reboot(KeyHandle(parameters_key), module)))
    }
    fn ConfigQuerySystemStartOption(key: *const c_char, option: *mut *mut AnsiString) -> NtStatus {
        // SAFETY: caller contract.
        let Some(key) = (unsafe { cstr(key) }) else {
            return STATUS_INVALID_PARAMETER;
        };
        if option.is_null() {
            return STATUS_INVALID_PARAMETER;
        }
        with(|c| {
            let mut buf = [0u8; 512];
            match c.config_query_system_start_option(key, &mut buf) {
                Err(e) => e,
                Ok(n) => {
                    let strings = 2 * core::mem::size_of::<AnsiString>();
                    let p = allocate(strings + n + 1);
                    if p.is_null() {
                        return STATUS_NO_MEMORY;
                    }
                    // SAFETY: `p` holds two zeroed ANSI_STRINGs (the second terminates the
                    // array) followed by n + 1 bytes of text; `option` is non-null.
                    unsafe {
                        let text = p.add(strings);
                        ptr::copy_nonoverlapping(buf.as_ptr(), text, n);
                        let array = p.cast::<AnsiString>();
                        array.write(AnsiString {
                            length: n as u16,
                            maximum_length: (n + 1) as u16,
                            buffer: text.cast(),
                        });
                        option.write(array);
                    }
                    STATUS_SUCCESS
                }
            }
        })
    }
    fn ConfigFreeSzValue(array: *mut AnsiString) {
        // SAFETY: `array` came from ConfigQuerySystemStartOption (caller contract).
        unsafe { free(array.cast()) }
    }
}

const _: api::c::LogCchVPrintf = LogCchVPrintf;
const _: api::c::LogVPrintf = LogVPrintf;
const _: api::c::LogCchPrintf = LogCchPrintf;
const _: api::c::LogPrintf = LogPrintf;
