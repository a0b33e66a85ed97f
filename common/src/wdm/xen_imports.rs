//! The xen.sys API as imported by xenbus.sys and xenfilt.sys: the 64 functions bound by
//! name to `xen.sys` with `raw-dylib` (no import library), and [`ImportedXen`], the
//! [`XenApi`] implementation over them.
//!
//! Every import is checked at compile time against the C signature in
//! `xen_include::api::c`.

use core::ffi::{c_char, c_void, CStr};
use core::ptr;

use xen_include::api::{
    self, AnsiString, KeyHandle, LogDispositionFn, LogDispositionOpaque, LogLevel, ModuleName,
    UnplugType, XenApi, XEN_EXTRAVERSION_LEN,
};
use xen_include::status::NtStatus;
use xen_include::xen::grant_table::GnttabCopy;

#[link(name = "xen.sys", kind = "raw-dylib", modifiers = "+verbatim")]
unsafe extern "C" {
    pub fn XenTouch(
        name: *const c_char,
        major: u32,
        minor: u32,
        micro: u32,
        build: u32,
    ) -> NtStatus;
    pub fn HvmSetParam(index: u32, value: u64) -> NtStatus;
    pub fn HvmGetParam(index: u32, value: *mut u64) -> NtStatus;
    pub fn HvmPagetableDying(address: i64) -> NtStatus;
    pub fn HvmSetEvtchnUpcallVector(vcpu_id: u32, vector: u8) -> NtStatus;
    pub fn MemoryAddToPhysmap(pfn: usize, space: u32, offset: usize) -> NtStatus;
    pub fn MemoryRemoveFromPhysmap(pfn: usize) -> NtStatus;
    pub fn MemoryDecreaseReservation(
        order: u32,
        count: u32,
        pfns: *mut usize,
        result: *mut u32,
    ) -> NtStatus;
    pub fn MemoryPopulatePhysmap(
        order: u32,
        count: u32,
        pfns: *mut usize,
        result: *mut u32,
    ) -> NtStatus;
    pub fn EventChannelSend(port: u32) -> NtStatus;
    pub fn EventChannelAllocateUnbound(domain: u16, port: *mut u32) -> NtStatus;
    pub fn EventChannelBindInterDomain(
        domain: u16,
        remote_port: u32,
        local_port: *mut u32,
    ) -> NtStatus;
    pub fn EventChannelBindVirq(virq: u32, vcpu_id: u32, local_port: *mut u32) -> NtStatus;
    pub fn EventChannelQueryInterDomain(
        local_port: u32,
        domain: *mut u16,
        remote_port: *mut u32,
    ) -> NtStatus;
    pub fn EventChannelClose(local_port: u32) -> NtStatus;
    pub fn EventChannelExpandArray(pfn: usize) -> NtStatus;
    pub fn EventChannelInitControl(pfn: usize, vcpu_id: u32) -> NtStatus;
    pub fn EventChannelReset() -> NtStatus;
    pub fn EventChannelBindVirtualCpu(local_port: u32, vcpu_id: u32) -> NtStatus;
    pub fn EventChannelUnmask(local_port: u32) -> NtStatus;
    pub fn GrantTableSetVersion(version: u32) -> NtStatus;
    pub fn GrantTableGetVersion(version: *mut u32) -> NtStatus;
    pub fn GrantTableCopy(ops: *mut c_void, count: u32) -> NtStatus;
    pub fn GrantTableMapForeignPage(
        domain: u16,
        gref: u32,
        address: i64,
        read_only: u8,
        handle: *mut u32,
    ) -> NtStatus;
    pub fn GrantTableUnmapForeignPage(handle: u32, address: i64) -> NtStatus;
    pub fn GrantTableQuerySize(current: *mut u32, maximum: *mut u32) -> NtStatus;
    pub fn SchedShutdownCode(reason: u32) -> NtStatus;
    pub fn SchedShutdown(reason: u32) -> NtStatus;
    pub fn SchedYield();
    pub fn SchedWatchdog(id: *mut u32, seconds: u32) -> NtStatus;
    pub fn XenVersion(major: *mut u32, minor: *mut u32) -> NtStatus;
    pub fn XenVersionExtra(extra: *mut c_char) -> NtStatus;
    pub fn ModuleLookup(address: usize, name: *mut *mut c_char, offset: *mut usize);
    pub fn UnplugDevices();
    pub fn UnplugIncrementValue(t: UnplugType) -> NtStatus;
    pub fn UnplugDecrementValue(t: UnplugType) -> NtStatus;
    pub fn UnplugGetRequest(t: UnplugType) -> u8;
    pub fn LogCchVPrintf(level: LogLevel, count: u32, format: *const c_char, va: *mut c_void);
    pub fn LogVPrintf(level: LogLevel, format: *const c_char, va: *mut c_void);
    pub fn LogCchPrintf(level: LogLevel, count: u32, format: *const c_char, ...);
    pub fn LogPrintf(level: LogLevel, format: *const c_char, ...);
    pub fn LogResume();
    pub fn LogReadLogLevel(key: usize, name: *const c_char, level: *mut LogLevel) -> NtStatus;
    pub fn LogAddDisposition(
        mask: LogLevel,
        function: LogDispositionFn,
        argument: *mut c_void,
        disposition: *mut *mut LogDispositionOpaque,
    ) -> NtStatus;
    pub fn LogRemoveDisposition(disposition: *mut LogDispositionOpaque);
    pub fn SystemProcessorVcpuId(cpu: u32, vcpu_id: *mut u32) -> NtStatus;
    pub fn SystemProcessorVcpuInfo(cpu: u32, vcpu: *mut *mut c_void) -> NtStatus;
    pub fn SystemProcessorRegisterVcpuInfo(cpu: u32, force: u8) -> NtStatus;
    pub fn SystemMaximumPhysicalAddress() -> i64;
    pub fn SystemRealTimeIsUniversal() -> u8;
    pub fn SystemSetWatchdog(seconds: u32) -> NtStatus;
    pub fn SystemStopWatchdog();
    pub fn VcpuSetPeriodicTimer(vcpu_id: u32, period: *const i64) -> NtStatus;
    pub fn VcpuRegisterVcpuInfo(vcpu_id: u32, pfn: usize, offset: u32) -> NtStatus;
    pub fn FiltersInstall();
    pub fn FiltersUninstall();
    pub fn ConfigGetActive(key: *const c_char, value: *mut *mut c_char) -> NtStatus;
    pub fn ConfigSetActive(
        device_id: *const c_char,
        instance_id: *const c_char,
        location: *const c_char,
    ) -> NtStatus;
    pub fn ConfigUpdateActive(
        device_id: *const c_char,
        instance_id: *const c_char,
        location: *const c_char,
    ) -> NtStatus;
    pub fn ConfigClearActive() -> NtStatus;
    pub fn ConfigFreeActive(value: *mut c_char);
    pub fn ConfigRequestReboot(parameters_key: usize, module: *const c_char) -> NtStatus;
    pub fn ConfigQuerySystemStartOption(
        key: *const c_char,
        option: *mut *mut AnsiString,
    ) -> NtStatus;
    pub fn ConfigFreeSzValue(array: *mut AnsiString);
}

macro_rules! check_signatures {
    ($($name:ident),* $(,)?) => {
        $(const _: api::c::$name = $name;)*
    };
}

check_signatures!(
    XenTouch,
    HvmSetParam,
    HvmGetParam,
    HvmPagetableDying,
    HvmSetEvtchnUpcallVector,
    MemoryAddToPhysmap,
    MemoryRemoveFromPhysmap,
    MemoryDecreaseReservation,
    MemoryPopulatePhysmap,
    EventChannelSend,
    EventChannelAllocateUnbound,
    EventChannelBindInterDomain,
    EventChannelBindVirq,
    EventChannelQueryInterDomain,
    EventChannelClose,
    EventChannelExpandArray,
    EventChannelInitControl,
    EventChannelReset,
    EventChannelBindVirtualCpu,
    EventChannelUnmask,
    GrantTableSetVersion,
    GrantTableGetVersion,
    GrantTableCopy,
    GrantTableMapForeignPage,
    GrantTableUnmapForeignPage,
    GrantTableQuerySize,
    SchedShutdownCode,
    SchedShutdown,
    SchedYield,
    SchedWatchdog,
    XenVersion,
    XenVersionExtra,
    ModuleLookup,
    UnplugDevices,
    UnplugIncrementValue,
    UnplugDecrementValue,
    UnplugGetRequest,
    LogCchVPrintf,
    LogVPrintf,
    LogCchPrintf,
    LogPrintf,
    LogResume,
    LogReadLogLevel,
    LogAddDisposition,
    LogRemoveDisposition,
    SystemProcessorVcpuId,
    SystemProcessorVcpuInfo,
    SystemProcessorRegisterVcpuInfo,
    SystemMaximumPhysicalAddress,
    SystemRealTimeIsUniversal,
    SystemSetWatchdog,
    SystemStopWatchdog,
    VcpuSetPeriodicTimer,
    VcpuRegisterVcpuInfo,
    FiltersInstall,
    FiltersUninstall,
    ConfigGetActive,
    ConfigSetActive,
    ConfigUpdateActive,
    ConfigClearActive,
    ConfigFreeActive,
    ConfigRequestReboot,
    ConfigQuerySystemStartOption,
    ConfigFreeSzValue,
);

/// Call `XenTouch` for the driver `name` built at `version` (major, minor, micro, build).
pub fn touch(name: &CStr, version: (u32, u32, u32, u32)) -> NtStatus {
    // SAFETY: `name` is NUL-terminated and outlives the call; xen.sys only reads it.
    unsafe { XenTouch(name.as_ptr(), version.0, version.1, version.2, version.3) }
}

fn result(status: NtStatus) -> Result<(), NtStatus> {
    if status >= 0 {
        Ok(())
    } else {
        Err(status)
    }
}

/// The xen.sys API through the imports.
#[derive(Clone, Copy, Debug, Default)]
pub struct ImportedXen;

impl XenApi for ImportedXen {
    fn xen_touch(
        &self,
        name: &CStr,
        major: u32,
        minor: u32,
        micro: u32,
        build: u32,
    ) -> Result<(), NtStatus> {
        result(touch(name, (major, minor, micro, build)))
    }
    fn hvm_set_param(&self, index: u32, value: u64) -> Result<(), NtStatus> {
        // SAFETY: plain values.
        result(unsafe { HvmSetParam(index, value) })
    }
    fn hvm_get_param(&self, index: u32) -> Result<u64, NtStatus> {
        let mut v = 0;
        // SAFETY: `v` is a valid out-pointer for the call.
        result(unsafe { HvmGetParam(index, &mut v) }).map(|_| v)
    }
    fn hvm_pagetable_dying(&self, gpa: u64) -> Result<(), NtStatus> {
        // SAFETY: plain values.
        result(unsafe { HvmPagetableDying(gpa as i64) })
    }
    fn hvm_set_evtchn_upcall_vector(&self, vcpu_id: u32, vector: u8) -> Result<(), NtStatus> {
        // SAFETY: plain values.
        result(unsafe { HvmSetEvtchnUpcallVector(vcpu_id, vector) })
    }
    fn memory_add_to_physmap(&self, pfn: usize, space: u32, offset: usize) -> Result<(), NtStatus> {
        // SAFETY: plain values.
        result(unsafe { MemoryAddToPhysmap(pfn, space, offset) })
    }
    fn memory_remove_from_physmap(&self, pfn: usize) -> Result<(), NtStatus> {
        // SAFETY: plain values.
        result(unsafe { MemoryRemoveFromPhysmap(pfn) })
    }
    fn memory_decrease_reservation(&self, order: u32, pfns: &mut [usize]) -> Result<u32, NtStatus> {
        let mut done = 0;
        let count = u32::try_from(pfns.len()).unwrap_or(u32::MAX);
        // SAFETY: `count` PFNs at `pfns`, `done` a valid out-pointer.
        result(unsafe { MemoryDecreaseReservation(order, count, pfns.as_mut_ptr(), &mut done) })
            .map(|_| done)
    }
    fn memory_populate_physmap(&self, order: u32, pfns: &mut [usize]) -> Result<u32, NtStatus> {
        let mut done = 0;
        let count = u32::try_from(pfns.len()).unwrap_or(u32::MAX);
        // SAFETY: `count` PFNs at `pfns`, `done` a valid out-pointer.
        result(unsafe { MemoryPopulatePhysmap(order, count, pfns.as_mut_ptr(), &mut done) })
            .map(|_| done)
    }
    fn event_channel_send(&self, port: u32) -> Result<(), NtStatus> {
        // SAFETY: plain values.
        result(unsafe { EventChannelSend(port) })
    }
    fn event_channel_allocate_unbound(&self, remote_domain: u16) -> Result<u32, NtStatus> {
        let mut port = 0;
        // SAFETY: valid out-pointer.
        result(unsafe { EventChannelAllocateUnbound(remote_domain, &mut port) }).map(|_| port)
    }
    fn event_channel_bind_inter_domain(
        &self,
        remote_domain: u16,
        remote_port: u32,
    ) -> Result<u32, NtStatus> {
        let mut port = 0;
        // SAFETY: valid out-pointer.
        result(unsafe { EventChannelBindInterDomain(remote_domain, remote_port, &mut port) })
            .map(|_| port)
    }
    fn event_channel_bind_virq(&self, virq: u32, vcpu_id: u32) -> Result<u32, NtStatus> {
        let mut port = 0;
        // SAFETY: valid out-pointer.
        result(unsafe { EventChannelBindVirq(virq, vcpu_id, &mut port) }).map(|_| port)
    }
    fn event_channel_query_inter_domain(&self, local_port: u32) -> Result<(u16, u32), NtStatus> {
        let (mut dom, mut port) = (0, 0);
        // SAFETY: valid out-pointers.
        result(unsafe { EventChannelQueryInterDomain(local_port, &mut dom, &mut port) })
            .map(|_| (dom, port))
    }
    fn event_channel_close(&self, local_port: u32) -> Result<(), NtStatus> {
        // SAFETY: plain values.
        result(unsafe { EventChannelClose(local_port) })
    }
    fn event_channel_expand_array(&self, pfn: usize) -> Result<(), NtStatus> {
        // SAFETY: plain values.
        result(unsafe { EventChannelExpandArray(pfn) })
    }
    fn event_channel_init_control(&self, pfn: usize, vcpu_id: u32) -> Result<(), NtStatus> {
        // SAFETY: plain values.
        result(unsafe { EventChannelInitControl(pfn, vcpu_id) })
    }
    fn event_channel_reset(&self) -> Result<(), NtStatus> {
        // SAFETY: no arguments.
        result(unsafe { EventChannelReset() })
    }
    fn event_channel_bind_virtual_cpu(
        &self,
        local_port: u32,
        vcpu_id: u32,
    ) -> Result<(), NtStatus> {
        // SAFETY: plain values.
        result(unsafe { EventChannelBindVirtualCpu(local_port, vcpu_id) })
    }
    fn event_channel_unmask(&self, local_port: u32) -> Result<(), NtStatus> {
        // SAFETY: plain values.
        result(unsafe { EventChannelUnmask(local_port) })
    }
    fn grant_table_set_version(&self, version: u32) -> Result<(), NtStatus> {
        // SAFETY: plain values.
        result(unsafe { GrantTableSetVersion(version) })
    }
    fn grant_table_get_version(&self) -> Result<u32, NtStatus> {
        let mut v = 0;
        // SAFETY: valid out-pointer.
        result(unsafe { GrantTableGetVersion(&mut v) }).map(|_| v)
    }
    fn grant_table_copy(&self, ops: &mut [GnttabCopy]) -> Result<(), NtStatus> {
        let count = u32::try_from(ops.len()).unwrap_or(u32::MAX);
        // SAFETY: `count` writable gnttab_copy at `ops`.
        result(unsafe { GrantTableCopy(ops.as_mut_ptr().cast(), count) })
    }
    fn grant_table_map_foreign_page(
        &self,
        domain: u16,
        gref: u32,
        address: u64,
        read_only: bool,
    ) -> Result<u32, NtStatus> {
        let mut handle = 0;
        // SAFETY: valid out-pointer.
        result(unsafe {
            GrantTableMapForeignPage(
                domain,
                gref,
                address as i64,
                u8::from(read_only),
                &mut handle,
            )
        })
        .map(|_| handle)
    }
    fn grant_table_unmap_foreign_page(&self, handle: u32, address: u64) -> Result<(), NtStatus> {
        // SAFETY: plain values.
        result(unsafe { GrantTableUnmapForeignPage(handle, address as i64) })
    }
    fn grant_table_query_size(&self) -> Result<(u32, u32), NtStatus> {
        let (mut cur, mut max) = (0, 0);
        // SAFETY: valid out-pointers.
        result(unsafe { GrantTableQuerySize(&mut cur, &mut max) }).map(|_| (cur, max))
    }
    fn sched_shutdown_code(&self, reason: u32) -> Result<(), NtStatus> {
        // SAFETY: plain values.
        result(unsafe { SchedShutdownCode(reason) })
    }
    fn sched_shutdown(&self, reason: u32) -> Result<(), NtStatus> {
        // SAFETY: plain values.
        result(unsafe { SchedShutdown(reason) })
    }
    fn sched_yield(&self) {
        // SAFETY: no arguments.
        unsafe { SchedYield() }
    }
    fn sched_watchdog(&self, id: &mut u32, seconds: u32) -> Result<(), NtStatus> {
        // SAFETY: `id` is a valid in/out pointer.
        result(unsafe { SchedWatchdog(id, seconds) })
    }
    fn xen_version(&self) -> Result<(u32, u32), NtStatus> {
        let (mut major, mut minor) = (0, 0);
        // SAFETY: valid out-pointers.
        result(unsafe { XenVersion(&mut major, &mut minor) }).map(|_| (major, minor))
    }
    fn xen_version_extra(&self) -> Result<[u8; XEN_EXTRAVERSION_LEN], NtStatus> {
        let mut extra = [0u8; XEN_EXTRAVERSION_LEN];
        // SAFETY: a XEN_EXTRAVERSION_LEN buffer.
        result(unsafe { XenVersionExtra(extra.as_mut_ptr().cast()) }).map(|_| extra)
    }
    fn module_lookup(&self, address: usize) -> Option<(ModuleName, usize)> {
        let (mut name, mut offset) = (ptr::null_mut(), 0);
        // SAFETY: valid out-pointers; xen.sys returns null or a NUL-terminated name that
        // stays valid until a later lookup reuses its buffer, and we copy it at once.
        unsafe {
            ModuleLookup(address, &mut name, &mut offset);
            (!name.is_null()).then(|| (ModuleName::new(CStr::from_ptr(name).to_bytes()), offset))
        }
    }
    fn unplug_devices(&self) {
        // SAFETY: no arguments.
        unsafe { UnplugDevices() }
    }
    fn unplug_increment_value(&self, unplug_type: UnplugType) -> Result<(), NtStatus> {
        // SAFETY: plain values.
        result(unsafe { UnplugIncrementValue(unplug_type) })
    }
    fn unplug_decrement_value(&self, unplug_type: UnplugType) -> Result<(), NtStatus> {
        // SAFETY: plain values.
        result(unsafe { UnplugDecrementValue(unplug_type) })
    }
    fn unplug_get_request(&self, unplug_type: UnplugType) -> bool {
        // SAFETY: plain values.
        unsafe { UnplugGetRequest(unplug_type) != 0 }
    }
    fn log(&self, level: LogLevel, text: &str) {
        let mut line = [0u8; 257];
        for (d, s) in line.iter_mut().zip(text.bytes().take(256)) {
            *d = s;
        }
        // SAFETY: "%s" consumes one NUL-terminated string argument, which `line` is.
        unsafe { LogPrintf(level, c"%s".as_ptr(), line.as_ptr()) }
    }
    fn log_resume(&self) {
        // SAFETY: no arguments.
        unsafe { LogResume() }
    }
    fn log_read_log_level(&self, key: KeyHandle, name: &CStr) -> Result<LogLevel, NtStatus> {
        let mut level = 0;
        // SAFETY: NUL-terminated name, valid out-pointer; `key` is an open registry handle.
        result(unsafe { LogReadLogLevel(key.0, name.as_ptr(), &mut level) }).map(|_| level)
    }
    // xen.sys never dereferences `argument`: it only hands it back to `function`.
    #[allow(clippy::not_unsafe_ptr_arg_deref)]
    fn log_add_disposition(
        &self,
        mask: LogLevel,
        function: LogDispositionFn,
        argument: *mut c_void,
    ) -> Result<usize, NtStatus> {
        let mut d = ptr::null_mut();
        // SAFETY: valid out-pointer; the caller keeps `function`/`argument` valid until
        // it removes the disposition.
        result(unsafe { LogAddDisposition(mask, function, argument, &mut d) }).map(|_| d as usize)
    }
    fn log_remove_disposition(&self, disposition: usize) {
        // SAFETY: a handle from LogAddDisposition (or null, which is ignored).
        unsafe { LogRemoveDisposition(disposition as *mut LogDispositionOpaque) }
    }
    fn system_processor_vcpu_id(&self, cpu: u32) -> Result<u32, NtStatus> {
        let mut v = 0;
        // SAFETY: valid out-pointer.
        result(unsafe { SystemProcessorVcpuId(cpu, &mut v) }).map(|_| v)
    }
    fn system_processor_vcpu_info(&self, cpu: u32) -> Result<usize, NtStatus> {
        let mut v = ptr::null_mut();
        // SAFETY: valid out-pointer.
        result(unsafe { SystemProcessorVcpuInfo(cpu, &mut v) }).map(|_| v as usize)
    }
    fn system_processor_register_vcpu_info(&self, cpu: u32, force: bool) -> Result<(), NtStatus> {
        // SAFETY: plain values.
        result(unsafe { SystemProcessorRegisterVcpuInfo(cpu, u8::from(force)) })
    }
    fn system_maximum_physical_address(&self) -> u64 {
        // SAFETY: no arguments.
        unsafe { SystemMaximumPhysicalAddress() as u64 }
    }
    fn system_real_time_is_universal(&self) -> bool {
        // SAFETY: no arguments.
        unsafe { SystemRealTimeIsUniversal() != 0 }
    }
    fn system_set_watchdog(&self, seconds: u32) -> Result<(), NtStatus> {
        // SAFETY: plain values.
        result(unsafe { SystemSetWatchdog(seconds) })
    }
    fn system_stop_watchdog(&self) {
        // SAFETY: no arguments.
        unsafe { SystemStopWatchdog() }
    }
    fn vcpu_set_periodic_timer(
        &self,
        vcpu_id: u32,
        period_100ns: Option<i64>,
    ) -> Result<(), NtStatus> {
        let p = period_100ns
            .as_ref()
            .map_or(ptr::null(), |p| p as *const i64);
        // SAFETY: null or a pointer to a live i64.
        result(unsafe { VcpuSetPeriodicTimer(vcpu_id, p) })
    }
    fn vcpu_register_vcpu_info(
        &self,
        vcpu_id: u32,
        pfn: usize,
        offset: u32,
    ) -> Result<(), NtStatus> {
        // SAFETY: plain values.
        result(unsafe { VcpuRegisterVcpuInfo(vcpu_id, pfn, offset) })
    }
    fn filters_install(&self) {
        // SAFETY: no arguments.
        unsafe { FiltersInstall() }
    }
    fn filters_uninstall(&self) {
        // SAFETY: no arguments.
        unsafe { FiltersUninstall() }
    }
    fn config_get_active(&self, key: &CStr, out: &mut [u8]) -> Result<usize, NtStatus> {
        let mut value = ptr::null_mut();
        // SAFETY: NUL-terminated key, valid out-pointer.
        result(unsafe { ConfigGetActive(key.as_ptr(), &mut value) })?;
        if value.is_null() {
            return Ok(0);
        }
        // SAFETY: xen.sys returned a NUL-terminated string it allocated; copied, then freed
        // with ConfigFreeActive.
        unsafe {
            let n = copy_out(CStr::from_ptr(value).to_bytes(), out);
            ConfigFreeActive(value);
            n
        }
    }
    fn config_set_active(
        &self,
        device_id: &CStr,
        instance_id: &CStr,
        location: &CStr,
    ) -> Result<(), NtStatus> {
        // SAFETY: NUL-terminated strings that outlive the call.
        result(unsafe {
            ConfigSetActive(device_id.as_ptr(), instance_id.as_ptr(), location.as_ptr())
        })
    }
    fn config_update_active(
        &self,
        device_id: &CStr,
        instance_id: &CStr,
        location: &CStr,
    ) -> Result<(), NtStatus> {
        // SAFETY: NUL-terminated strings that outlive the call.
        result(unsafe {
            ConfigUpdateActive(device_id.as_ptr(), instance_id.as_ptr(), location.as_ptr())
        })
    }
    fn config_clear_active(&self) -> Result<(), NtStatus> {
        // SAFETY: no arguments.
        result(unsafe { ConfigClearActive() })
    }
    fn config_request_reboot(
        &self,
        parameters_key: KeyHandle,
        module: &CStr,
    ) -> Result<(), NtStatus> {
        // SAFETY: an open key handle and a NUL-terminated module name.
        result(unsafe { ConfigRequestReboot(parameters_key.0, module.as_ptr()) })
    }
    fn config_query_system_start_option(
        &self,
        prefix: &CStr,
        out: &mut [u8],
    ) -> Result<usize, NtStatus> {
        let mut array = ptr::null_mut();
        // SAFETY: NUL-terminated prefix, valid out-pointer.
        result(unsafe { ConfigQuerySystemStartOption(prefix.as_ptr(), &mut array) })?;
        if array.is_null() {
            return Ok(0);
        }
        // SAFETY: xen.sys returned an ANSI_STRING array whose first entry holds the option;
        // copied, then freed with ConfigFreeSzValue.
        unsafe {
            let a = array.read();
            let n = if a.buffer.is_null() {
                Ok(0)
            } else {
                copy_out(
                    core::slice::from_raw_parts(a.buffer.cast::<u8>(), usize::from(a.length)),
                    out,
                )
            };
            ConfigFreeSzValue(array);
            n
        }
    }
}

/// Copy `bytes` into `out`; a value that does not fit is `STATUS_BUFFER_OVERFLOW`.
fn copy_out(bytes: &[u8], out: &mut [u8]) -> Result<usize, NtStatus> {
    let dst = out
        .get_mut(..bytes.len())
        .ok_or(xen_include::status::STATUS_BUFFER_OVERFLOW)?;
    dst.copy_from_slice(bytes);
    Ok(bytes.len())
}
