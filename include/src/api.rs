//! The xen.sys exported API: the 64 C-ABI signatures, their export names, and the
//! [`XenApi`] trait (the same API, Rust-typed) that xenbus.sys and xenfilt.sys call.
//!
//! Real implementation of [`XenApi`]: raw-dylib imports from `xen.sys`
//! (`common::wdm::xen_imports`). Host implementation: the `xen` crate over the simulator.

use core::ffi::{c_char, c_void, CStr};

use crate::status::NtStatus;

/// `LOG_LEVEL`: a bit mask of message levels (`1 << DPFLTR_*_LEVEL`, plus CRITICAL).
pub type LogLevel = u32;
/// No level.
pub const LOG_LEVEL_NONE: LogLevel = 0;
/// `1 << DPFLTR_ERROR_LEVEL` (0).
pub const LOG_LEVEL_ERROR: LogLevel = 1 << 0;
/// `1 << DPFLTR_WARNING_LEVEL` (1).
pub const LOG_LEVEL_WARNING: LogLevel = 1 << 1;
/// `1 << DPFLTR_TRACE_LEVEL` (2).
pub const LOG_LEVEL_TRACE: LogLevel = 1 << 2;
/// `1 << DPFLTR_INFO_LEVEL` (3).
pub const LOG_LEVEL_INFO: LogLevel = 1 << 3;
/// Critical messages (bug check reports, version banners).
pub const LOG_LEVEL_CRITICAL: LogLevel = 0x8000_0000;

/// `UNPLUG_TYPE`: which class of emulated device an unplug request concerns.
pub type UnplugType = u32;
/// Emulated IDE/NVMe disks (registry value `DISKS`, enum name `VBD`).
pub const UNPLUG_DISKS: UnplugType = 0;
/// Emulated NICs (registry value `NICS`, enum name `VIF`).
pub const UNPLUG_NICS: UnplugType = 1;
/// Number of unplug types.
pub const UNPLUG_TYPE_COUNT: UnplugType = 2;

/// `PAGE_ORDER_4K`: extent order of a 4 KiB page.
pub const PAGE_ORDER_4K: u32 = 0;
/// `PAGE_ORDER_2M`: extent order of a 2 MiB page.
pub const PAGE_ORDER_2M: u32 = 9;
/// `XEN_EXTRAVERSION_LEN`: size of the buffer `XenVersionExtra` fills.
pub const XEN_EXTRAVERSION_LEN: usize = 16;

/// Windows `ANSI_STRING` (`Length`, `MaximumLength` in bytes, `Buffer`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct AnsiString {
    /// Length in bytes, excluding any terminator.
    pub length: u16,
    /// Size of `buffer` in bytes.
    pub maximum_length: u16,
    /// The characters (not necessarily NUL-terminated).
    pub buffer: *mut c_char,
}

/// An opaque `LOG_DISPOSITION` handle returned by `LogAddDisposition`.
#[repr(C)]
pub struct LogDispositionOpaque {
    _private: [u8; 0],
}

/// The callback of a log disposition: `VOID (*)(PVOID Argument, PSTR Buffer, ULONG Length)`.
pub type LogDispositionFn =
    unsafe extern "C" fn(argument: *mut c_void, buffer: *mut c_char, length: u32);

/// A registry key handle as passed across the xen.sys API (`HANDLE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct KeyHandle(pub usize);

/// The C signatures of the 64 exports, in the order of `include/xen.h`.
///
/// `PFN_NUMBER` and `ULONG_PTR` are `usize`; `PHYSICAL_ADDRESS` is passed as `i64`;
/// `BOOLEAN` is `u8`; `va_list` is a `char *` on Win64; `struct gnttab_copy *` and
/// `vcpu_info_t **` are untyped here (the layouts live in `crate::xen`).
pub mod c {
    use super::{AnsiString, LogDispositionFn, LogDispositionOpaque, LogLevel, UnplugType};
    use crate::status::NtStatus;
    use core::ffi::{c_char, c_void};

    /// The C signature of `XenTouch`.
    pub type XenTouch = unsafe extern "C" fn(*const c_char, u32, u32, u32, u32) -> NtStatus;
    /// The C signature of `HvmSetParam`.
    pub type HvmSetParam = unsafe extern "C" fn(u32, u64) -> NtStatus;
    /// The C signature of `HvmGetParam`.
    pub type HvmGetParam = unsafe extern "C" fn(u32, *mut u64) -> NtStatus;
    /// The C signature of `HvmPagetableDying`.
    pub type HvmPagetableDying = unsafe extern "C" fn(i64) -> NtStatus;
    /// The C signature of `HvmSetEvtchnUpcallVector`.
    pub type HvmSetEvtchnUpcallVector = unsafe extern "C" fn(u32, u8) -> NtStatus;
    /// The C signature of `MemoryAddToPhysmap`.
    pub type MemoryAddToPhysmap = unsafe extern "C" fn(usize, u32, usize) -> NtStatus;
    /// The C signature of `MemoryRemoveFromPhysmap`.
    pub type MemoryRemoveFromPhysmap = unsafe extern "C" fn(usize) -> NtStatus;
    /// The C signature of `MemoryDecreaseReservation`.
    pub type MemoryDecreaseReservation =
        unsafe extern "C" fn(u32, u32, *mut usize, *mut u32) -> NtStatus;
    /// The C signature of `MemoryPopulatePhysmap`.
    pub type MemoryPopulatePhysmap =
        unsafe extern "C" fn(u32, u32, *mut usize, *mut u32) -> NtStatus;
    /// The C signature of `EventChannelSend`.
    pub type EventChannelSend = unsafe extern "C" fn(u32) -> NtStatus;
    /// The C signature of `EventChannelAllocateUnbound`.
    pub type EventChannelAllocateUnbound = unsafe extern "C" fn(u16, *mut u32) -> NtStatus;
    /// The C signature of `EventChannelBindInterDomain`.
    pub type EventChannelBindInterDomain = unsafe extern "C" fn(u16, u32, *mut u32) -> NtStatus;
    /// The C signature of `EventChannelBindVirq`.
    pub type EventChannelBindVirq = unsafe extern "C" fn(u32, u32, *mut u32) -> NtStatus;
    /// The C signature of `EventChannelQueryInterDomain`.
    pub type EventChannelQueryInterDomain =
        unsafe extern "C" fn(u32, *mut u16, *mut u32) -> NtStatus;
    /// The C signature of `EventChannelClose`.
    pub type EventChannelClose = unsafe extern "C" fn(u32) -> NtStatus;
    /// The C signature of `EventChannelExpandArray`.
    pub type EventChannelExpandArray = unsafe extern "C" fn(usize) -> NtStatus;
    /// The C signature of `EventChannelInitControl`.
    pub type EventChannelInitControl = unsafe extern "C" fn(usize, u32) -> NtStatus;
    /// The C signature of `EventChannelReset`.
    pub type EventChannelReset = unsafe extern "C" fn() -> NtStatus;
    /// The C signature of `EventChannelBindVirtualCpu`.
    pub type EventChannelBindVirtualCpu = unsafe extern "C" fn(u32, u32) -> NtStatus;
    /// The C signature of `EventChannelUnmask`.
    pub type EventChannelUnmask = unsafe extern "C" fn(u32) -> NtStatus;
    /// The C signature of `GrantTableSetVersion`.
    pub type GrantTableSetVersion = unsafe extern "C" fn(u32) -> NtStatus;
    /// The C signature of `GrantTableGetVersion`.
    pub type GrantTableGetVersion = unsafe extern "C" fn(*mut u32) -> NtStatus;
    /// The C signature of `GrantTableCopy`.
    pub type GrantTableCopy = unsafe extern "C" fn(*mut c_void, u32) -> NtStatus;
    /// The C signature of `GrantTableMapForeignPage`.
    pub type GrantTableMapForeignPage =
        unsafe extern "C" fn(u16, u32, i64, u8, *mut u32) -> NtStatus;
    /// The C signature of `GrantTableUnmapForeignPage`.
    pub type GrantTableUnmapForeignPage = unsafe extern "C" fn(u32, i64) -> NtStatus;
    /// The C signature of `GrantTableQuerySize`.
    pub type GrantTableQuerySize = unsafe extern "C" fn(*mut u32, *mut u32) -> NtStatus;
    /// The C signature of `SchedShutdownCode`.
    pub type SchedShutdownCode = unsafe extern "C" fn(u32) -> NtStatus;
    /// The C signature of `SchedShutdown`.
    pub type SchedShutdown = unsafe extern "C" fn(u32) -> NtStatus;
    /// The C signature of `SchedYield`.
    pub type SchedYield = unsafe extern "C" fn();
    /// The C signature of `SchedWatchdog`.
    pub type SchedWatchdog = unsafe extern "C" fn(*mut u32, u32) -> NtStatus;
    /// The C signature of `XenVersion`.
    pub type XenVersion = unsafe extern "C" fn(*mut u32, *mut u32) -> NtStatus;
    /// The C signature of `XenVersionExtra`.
    pub type XenVersionExtra = unsafe extern "C" fn(*mut c_char) -> NtStatus;
    /// The C signature of `ModuleLookup`.
    pub type ModuleLookup = unsafe extern "C" fn(usize, *mut *mut c_char, *mut usize);
    /// The C signature of `UnplugDevices`.
    pub type UnplugDevices = unsafe extern "C" fn();
    /// The C signature of `UnplugIncrementValue`.
    pub type UnplugIncrementValue = unsafe extern "C" fn(UnplugType) -> NtStatus;
    /// The C signature of `UnplugDecrementValue`.
    pub type UnplugDecrementValue = unsafe extern "C" fn(UnplugType) -> NtStatus;
    /// The C signature of `UnplugGetRequest`.
    pub type UnplugGetRequest = unsafe extern "C" fn(UnplugType) -> u8;
    /// The C signature of `LogCchVPrintf`.
    pub type LogCchVPrintf = unsafe extern "C" fn(LogLevel, u32, *const c_char, *mut c_void);
    /// The C signature of `LogVPrintf`.
    pub type LogVPrintf = unsafe extern "C" fn(LogLevel, *const c_char, *mut c_void);
    /// The C signature of `LogCchPrintf`.
    pub type LogCchPrintf = unsafe extern "C" fn(LogLevel, u32, *const c_char, ...);
    /// The C signature of `LogPrintf`.
    pub type LogPrintf = unsafe extern "C" fn(LogLevel, *const c_char, ...);
    /// The C signature of `LogResume`.
    pub type LogResume = unsafe extern "C" fn();
    /// The C signature of `LogReadLogLevel`.
    pub type LogReadLogLevel =
        unsafe extern "C" fn(usize, *const c_char, *mut LogLevel) -> NtStatus;
    /// The C signature of `LogAddDisposition`.
    pub type LogAddDisposition = unsafe extern "C" fn(
        LogLevel,
        LogDispositionFn,
        *mut c_void,
        *mut *mut LogDispositionOpaque,
    ) -> NtStatus;
    /// The C signature of `LogRemoveDisposition`.
    pub type LogRemoveDisposition = unsafe extern "C" fn(*mut LogDispositionOpaque);
    /// The C signature of `SystemProcessorVcpuId`.
    pub type SystemProcessorVcpuId = unsafe extern "C" fn(u32, *mut u32) -> NtStatus;
    /// The C signature of `SystemProcessorVcpuInfo`.
    pub type SystemProcessorVcpuInfo = unsafe extern "C" fn(u32, *mut *mut c_void) -> NtStatus;
    /// The C signature of `SystemProcessorRegisterVcpuInfo`.
    pub type SystemProcessorRegisterVcpuInfo = unsafe extern "C" fn(u32, u8) -> NtStatus;
    /// The C signature of `SystemMaximumPhysicalAddress`.
    pub type SystemMaximumPhysicalAddress = unsafe extern "C" fn() -> i64;
    /// The C signature of `SystemRealTimeIsUniversal`.
    pub type SystemRealTimeIsUniversal = unsafe extern "C" fn() -> u8;
    /// The C signature of `SystemSetWatchdog`.
    pub type SystemSetWatchdog = unsafe extern "C" fn(u32) -> NtStatus;
    /// The C signature of `SystemStopWatchdog`.
    pub type SystemStopWatchdog = unsafe extern "C" fn();
    /// The C signature of `VcpuSetPeriodicTimer`.
    pub type VcpuSetPeriodicTimer = unsafe extern "C" fn(u32, *const i64) -> NtStatus;
    /// The C signature of `VcpuRegisterVcpuInfo`.
    pub type VcpuRegisterVcpuInfo = unsafe extern "C" fn(u32, usize, u32) -> NtStatus;
    /// The C signature of `FiltersInstall`.
    pub type FiltersInstall = unsafe extern "C" fn();
    /// The C signature of `FiltersUninstall`.
    pub type FiltersUninstall = unsafe extern "C" fn();
    /// The C signature of `ConfigGetActive`.
    pub type ConfigGetActive = unsafe extern "C" fn(*const c_char, *mut *mut c_char) -> NtStatus;
    /// The C signature of `ConfigSetActive`.
    pub type ConfigSetActive =
        unsafe extern "C" fn(*const c_char, *const c_char, *const c_char) -> NtStatus;
    /// The C signature of `ConfigUpdateActive`.
    pub type ConfigUpdateActive =
        unsafe extern "C" fn(*const c_char, *const c_char, *const c_char) -> NtStatus;
    /// The C signature of `ConfigClearActive`.
    pub type ConfigClearActive = unsafe extern "C" fn() -> NtStatus;
    /// The C signature of `ConfigFreeActive`.
    pub type ConfigFreeActive = unsafe extern "C" fn(*mut c_char);
    /// The C signature of `ConfigRequestReboot`.
    pub type ConfigRequestReboot = unsafe extern "C" fn(usize, *const c_char) -> NtStatus;
    /// The C signature of `ConfigQuerySystemStartOption`.
    pub type ConfigQuerySystemStartOption =
        unsafe extern "C" fn(*const c_char, *mut *mut AnsiString) -> NtStatus;
    /// The C signature of `ConfigFreeSzValue`.
    pub type ConfigFreeSzValue = unsafe extern "C" fn(*mut AnsiString);
}

/// The names xen.sys exports besides `DllInitialize` and `DllUnload` (which are PRIVATE),
/// in the order of `include/xen.h`.
pub const EXPORT_NAMES: &[&str] = &[
    "XenTouch",
    "HvmSetParam",
    "HvmGetParam",
    "HvmPagetableDying",
    "HvmSetEvtchnUpcallVector",
    "MemoryAddToPhysmap",
    "MemoryRemoveFromPhysmap",
    "MemoryDecreaseReservation",
    "MemoryPopulatePhysmap",
    "EventChannelSend",
    "EventChannelAllocateUnbound",
    "EventChannelBindInterDomain",
    "EventChannelBindVirq",
    "EventChannelQueryInterDomain",
    "EventChannelClose",
    "EventChannelExpandArray",
    "EventChannelInitControl",
    "EventChannelReset",
    "EventChannelBindVirtualCpu",
    "EventChannelUnmask",
    "GrantTableSetVersion",
    "GrantTableGetVersion",
    "GrantTableCopy",
    "GrantTableMapForeignPage",
    "GrantTableUnmapForeignPage",
    "GrantTableQuerySize",
    "SchedShutdownCode",
    "SchedShutdown",
    "SchedYield",
    "SchedWatchdog",
    "XenVersion",
    "XenVersionExtra",
    "ModuleLookup",
    "UnplugDevices",
    "UnplugIncrementValue",
    "UnplugDecrementValue",
    "UnplugGetRequest",
    "LogCchVPrintf",
    "LogVPrintf",
    "LogCchPrintf",
    "LogPrintf",
    "LogResume",
    "LogReadLogLevel",
    "LogAddDisposition",
    "LogRemoveDisposition",
    "SystemProcessorVcpuId",
    "SystemProcessorVcpuInfo",
    "SystemProcessorRegisterVcpuInfo",
    "SystemMaximumPhysicalAddress",
    "SystemRealTimeIsUniversal",
    "SystemSetWatchdog",
    "SystemStopWatchdog",
    "VcpuSetPeriodicTimer",
    "VcpuRegisterVcpuInfo",
    "FiltersInstall",
    "FiltersUninstall",
    "ConfigGetActive",
    "ConfigSetActive",
    "ConfigUpdateActive",
    "ConfigClearActive",
    "ConfigFreeActive",
    "ConfigRequestReboot",
    "ConfigQuerySystemStartOption",
    "ConfigFreeSzValue",
];

/// The PRIVATE entry points xen.sys exports in addition to [`EXPORT_NAMES`].
pub const PRIVATE_EXPORT_NAMES: &[&str] = &["DllInitialize", "DllUnload"];

/// A copy of a loaded module's name as returned by `ModuleLookup` (lower-case base name).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ModuleName {
    bytes: [u8; Self::CAPACITY],
    len: u8,
}

impl ModuleName {
    /// Longest name kept; longer names are truncated.
    pub const CAPACITY: usize = 64;

    /// Copy `name`, truncating it to [`Self::CAPACITY`] bytes.
    pub fn new(name: &[u8]) -> Self {
        let mut bytes = [0u8; Self::CAPACITY];
        let len = name.len().min(Self::CAPACITY);
        for (dst, src) in bytes.iter_mut().zip(name.iter().take(len)) {
            *dst = *src;
        }
        Self {
            bytes,
            len: len as u8,
        }
    }

    /// The name's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or(&[])
    }
}

impl core::fmt::Debug for ModuleName {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for b in self.as_bytes() {
            write!(f, "{}", char::from(*b))?;
        }
        Ok(())
    }
}

/// The xen.sys API, Rust-typed. Every method corresponds to one export of
/// [`EXPORT_NAMES`] (the four printf exports are served by [`XenApi::log`], which passes
/// already formatted text); failures carry the `NTSTATUS` the export returns.
pub trait XenApi: Sync {
    /// `XenTouch`: version handshake; `STATUS_INCOMPATIBLE_DRIVER_BLOCKED` on mismatch.
    fn xen_touch(
        &self,
        name: &CStr,
        major: u32,
        minor: u32,
        micro: u32,
        build: u32,
    ) -> Result<(), NtStatus>;

    /// `HvmSetParam` (DOMID_SELF).
    fn hvm_set_param(&self, index: u32, value: u64) -> Result<(), NtStatus>;
    /// `HvmGetParam` (DOMID_SELF).
    fn hvm_get_param(&self, index: u32) -> Result<u64, NtStatus>;
    /// `HvmPagetableDying`: the page table rooted at `gpa` is being torn down.
    fn hvm_pagetable_dying(&self, gpa: u64) -> Result<(), NtStatus>;
    /// `HvmSetEvtchnUpcallVector`: per-vCPU upcall vector.
    fn hvm_set_evtchn_upcall_vector(&self, vcpu_id: u32, vector: u8) -> Result<(), NtStatus>;

    /// `MemoryAddToPhysmap`: map `offset` of `space` at frame `pfn`.
    fn memory_add_to_physmap(&self, pfn: usize, space: u32, offset: usize) -> Result<(), NtStatus>;
    /// `MemoryRemoveFromPhysmap`.
    fn memory_remove_from_physmap(&self, pfn: usize) -> Result<(), NtStatus>;
    /// `MemoryDecreaseReservation`: returns the number of extents released.
    fn memory_decrease_reservation(&self, order: u32, pfns: &mut [usize]) -> Result<u32, NtStatus>;
    /// `MemoryPopulatePhysmap`: returns the number of extents populated.
    fn memory_populate_physmap(&self, order: u32, pfns: &mut [usize]) -> Result<u32, NtStatus>;

    /// `EventChannelSend`.
    fn event_channel_send(&self, port: u32) -> Result<(), NtStatus>;
    /// `EventChannelAllocateUnbound`: returns the local port.
    fn event_channel_allocate_unbound(&self, remote_domain: u16) -> Result<u32, NtStatus>;
    /// `EventChannelBindInterDomain`: returns the local port.
    fn event_channel_bind_inter_domain(
        &self,
        remote_domain: u16,
        remote_port: u32,
    ) -> Result<u32, NtStatus>;
    /// `EventChannelBindVirq`: returns the local port.
    fn event_channel_bind_virq(&self, virq: u32, vcpu_id: u32) -> Result<u32, NtStatus>;
    /// `EventChannelQueryInterDomain`: returns (remote domain, remote port).
    fn event_channel_query_inter_domain(&self, local_port: u32) -> Result<(u16, u32), NtStatus>;
    /// `EventChannelClose`.
    fn event_channel_close(&self, local_port: u32) -> Result<(), NtStatus>;
    /// `EventChannelExpandArray` (FIFO ABI).
    fn event_channel_expand_array(&self, pfn: usize) -> Result<(), NtStatus>;
    /// `EventChannelInitControl` (FIFO ABI, control block at offset 0 of `pfn`).
    fn event_channel_init_control(&self, pfn: usize, vcpu_id: u32) -> Result<(), NtStatus>;
    /// `EventChannelReset` (DOMID_SELF).
    fn event_channel_reset(&self) -> Result<(), NtStatus>;
    /// `EventChannelBindVirtualCpu`.
    fn event_channel_bind_virtual_cpu(&self, local_port: u32, vcpu_id: u32)
        -> Result<(), NtStatus>;
    /// `EventChannelUnmask`.
    fn event_channel_unmask(&self, local_port: u32) -> Result<(), NtStatus>;

    /// `GrantTableSetVersion`.
    fn grant_table_set_version(&self, version: u32) -> Result<(), NtStatus>;
    /// `GrantTableGetVersion`.
    fn grant_table_get_version(&self) -> Result<u32, NtStatus>;
    /// `GrantTableCopy`: each op's `status` is written back by Xen.
    fn grant_table_copy(
        &self,
        ops: &mut [crate::xen::grant_table::GnttabCopy],
    ) -> Result<(), NtStatus>;
    /// `GrantTableMapForeignPage`: returns the grant handle.
    fn grant_table_map_foreign_page(
        &self,
        domain: u16,
        gref: u32,
        address: u64,
        read_only: bool,
    ) -> Result<u32, NtStatus>;
    /// `GrantTableUnmapForeignPage`.
    fn grant_table_unmap_foreign_page(&self, handle: u32, address: u64) -> Result<(), NtStatus>;
    /// `GrantTableQuerySize`: returns (current frames, maximum frames).
    fn grant_table_query_size(&self) -> Result<(u32, u32), NtStatus>;

    /// `SchedShutdownCode`.
    fn sched_shutdown_code(&self, reason: u32) -> Result<(), NtStatus>;
    /// `SchedShutdown` (`STATUS_CANCELLED` for a cancelled suspend).
    fn sched_shutdown(&self, reason: u32) -> Result<(), NtStatus>;
    /// `SchedYield`.
    fn sched_yield(&self);
    /// `SchedWatchdog`: `id` 0 allocates (the new id is stored), `seconds` 0 destroys.
    fn sched_watchdog(&self, id: &mut u32, seconds: u32) -> Result<(), NtStatus>;

    /// `XenVersion`: (major, minor).
    fn xen_version(&self) -> Result<(u32, u32), NtStatus>;
    /// `XenVersionExtra`: the NUL-terminated extra version string.
    fn xen_version_extra(&self) -> Result<[u8; XEN_EXTRAVERSION_LEN], NtStatus>;

    /// `ModuleLookup`: module name and offset of `address`, if any module contains it.
    fn module_lookup(&self, address: usize) -> Option<(ModuleName, usize)>;

    /// `UnplugDevices`: run the port preamble and write the requested unplug bits.
    fn unplug_devices(&self);
    /// `UnplugIncrementValue`.
    fn unplug_increment_value(&self, unplug_type: UnplugType) -> Result<(), NtStatus>;
    /// `UnplugDecrementValue`.
    fn unplug_decrement_value(&self, unplug_type: UnplugType) -> Result<(), NtStatus>;
    /// `UnplugGetRequest`: whether this boot requested unplugging `unplug_type`.
    fn unplug_get_request(&self, unplug_type: UnplugType) -> bool;

    /// `LogPrintf(level, "%s", text)`: log already formatted text (truncated to a slot).
    fn log(&self, level: LogLevel, text: &str);
    /// `LogResume`.
    fn log_resume(&self);
    /// `LogReadLogLevel`: parse the MULTI_SZ value `name` of `key` into a level mask.
    fn log_read_log_level(&self, key: KeyHandle, name: &CStr) -> Result<LogLevel, NtStatus>;
    /// `LogAddDisposition`: returns an opaque disposition handle.
    fn log_add_disposition(
        &self,
        mask: LogLevel,
        function: LogDispositionFn,
        argument: *mut c_void,
    ) -> Result<usize, NtStatus>;
    /// `LogRemoveDisposition`.
    fn log_remove_disposition(&self, disposition: usize);

    /// `SystemProcessorVcpuId`.
    fn system_processor_vcpu_id(&self, cpu: u32) -> Result<u32, NtStatus>;
    /// `SystemProcessorVcpuInfo`: kernel address of the CPU's registered `vcpu_info_t`.
    fn system_processor_vcpu_info(&self, cpu: u32) -> Result<usize, NtStatus>;
    /// `SystemProcessorRegisterVcpuInfo`.
    fn system_processor_register_vcpu_info(&self, cpu: u32, force: bool) -> Result<(), NtStatus>;
    /// `SystemMaximumPhysicalAddress`.
    fn system_maximum_physical_address(&self) -> u64;
    /// `SystemRealTimeIsUniversal`.
    fn system_real_time_is_universal(&self) -> bool;
    /// `SystemSetWatchdog` (0 seconds → `STATUS_INVALID_PARAMETER`).
    fn system_set_watchdog(&self, seconds: u32) -> Result<(), NtStatus>;
    /// `SystemStopWatchdog`.
    fn system_stop_watchdog(&self);

    /// `VcpuSetPeriodicTimer`: period in 100 ns units, `None` stops the timer.
    fn vcpu_set_periodic_timer(
        &self,
        vcpu_id: u32,
        period_100ns: Option<i64>,
    ) -> Result<(), NtStatus>;
    /// `VcpuRegisterVcpuInfo`.
    fn vcpu_register_vcpu_info(
        &self,
        vcpu_id: u32,
        pfn: usize,
        offset: u32,
    ) -> Result<(), NtStatus>;

    /// `FiltersInstall`.
    fn filters_install(&self);
    /// `FiltersUninstall`.
    fn filters_uninstall(&self);

    /// `ConfigGetActive` + `ConfigFreeActive`: copy `Active<key>` into `out`, returning its
    /// length (`STATUS_BUFFER_OVERFLOW` when it does not fit).
    fn config_get_active(&self, key: &CStr, out: &mut [u8]) -> Result<usize, NtStatus>;
    /// `ConfigSetActive`.
    fn config_set_active(
        &self,
        device_id: &CStr,
        instance_id: &CStr,
        location: &CStr,
    ) -> Result<(), NtStatus>;
    /// `ConfigUpdateActive`.
    fn config_update_active(
        &self,
        device_id: &CStr,
        instance_id: &CStr,
        location: &CStr,
    ) -> Result<(), NtStatus>;
    /// `ConfigClearActive`.
    fn config_clear_active(&self) -> Result<(), NtStatus>;
    /// `ConfigRequestReboot`.
    fn config_request_reboot(
        &self,
        parameters_key: KeyHandle,
        module: &CStr,
    ) -> Result<(), NtStatus>;
    /// `ConfigQuerySystemStartOption` + `ConfigFreeSzValue`: copy the whole option that
    /// starts with `prefix` into `out`, returning its length (`STATUS_BUFFER_OVERFLOW` when
    /// it does not fit).
    fn config_query_system_start_option(
        &self,
        prefix: &CStr,
        out: &mut [u8],
    ) -> Result<usize, NtStatus>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixty_four_unique_exports() {
        assert_eq!(EXPORT_NAMES.len(), 64);
        let mut names: Vec<&str> = EXPORT_NAMES.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 64);
        for p in PRIVATE_EXPORT_NAMES {
            assert!(!EXPORT_NAMES.contains(p));
        }
    }

    #[test]
    fn module_name_truncates() {
        let long = [b'a'; 100];
        assert_eq!(
            ModuleName::new(&long).as_bytes().len(),
            ModuleName::CAPACITY
        );
        assert_eq!(ModuleName::new(b"xen.sys").as_bytes(), b"xen.sys");
    }

    #[test]
    fn log_levels_match_dpfltr() {
        assert_eq!(
            LOG_LEVEL_ERROR | LOG_LEVEL_WARNING | LOG_LEVEL_TRACE | LOG_LEVEL_INFO,
            0xF
        );
    }
}
