//! The `XenApi` the xenbus cores run on inside the rig guest: xen.sys's own core
//! (`xen::driver::Xen`, the same code as xen.sys, over the guest's hypercall edge) for every
//! export, except the processor queries that xen.sys answers from its ACPI/MADT
//! initialisation (one processor, vCPU 0, `vcpu_info` in the legacy shared-info slot) and
//! the log, which goes to the guest console.
//!
//! The forwarding methods mirror `xen_include::api::XenApi` one for one.
#![allow(clippy::too_many_arguments)]

use core::ffi::{c_void, CStr};

use common::hypercall::Hypercall;
use common::os::{KeyHandle, Os};
use xen_include::api::{
    LogDispositionFn, LogLevel, ModuleName, UnplugType, XenApi, XEN_EXTRAVERSION_LEN,
};
use xen_include::status::{NtStatus, STATUS_NOT_SUPPORTED, STATUS_UNSUCCESSFUL};
use xen_include::xen::grant_table::GnttabCopy;

/// xen.sys's core as the rig guest's `XenApi`.
pub struct RigApi {
    xen: xen::driver::Xen<'static>,
    os: &'static dyn Os,
}

impl RigApi {
    /// xen.sys's core over `hv` and `os` (not initialised: the rig guest has no registry or
    /// ACPI tables for it; the hypercall wrappers need neither).
    pub fn new(hv: &'static dyn Hypercall, os: &'static dyn Os) -> Self {
        Self {
            xen: xen::driver::Xen::new(hv, os, None, None),
            os,
        }
    }
}

impl XenApi for RigApi {
    fn xen_touch(
        &self,
        name: &CStr,
        major: u32,
        minor: u32,
        micro: u32,
        build: u32,
    ) -> Result<(), NtStatus> {
        self.xen.xen_touch(name, major, minor, micro, build)
    }
    fn hvm_set_param(&self, index: u32, value: u64) -> Result<(), NtStatus> {
        self.xen.hvm_set_param(index, value)
    }
    fn hvm_get_param(&self, index: u32) -> Result<u64, NtStatus> {
        self.xen.hvm_get_param(index)
    }
    fn hvm_pagetable_dying(&self, gpa: u64) -> Result<(), NtStatus> {
        self.xen.hvm_pagetable_dying(gpa)
    }
    fn hvm_set_evtchn_upcall_vector(&self, vcpu_id: u32, vector: u8) -> Result<(), NtStatus> {
        self.xen.hvm_set_evtchn_upcall_vector(vcpu_id, vector)
    }
    fn memory_add_to_physmap(&self, pfn: usize, space: u32, offset: usize) -> Result<(), NtStatus> {
        self.xen.memory_add_to_physmap(pfn, space, offset)
    }
    fn memory_remove_from_physmap(&self, pfn: usize) -> Result<(), NtStatus> {
        self.xen.memory_remove_from_physmap(pfn)
    }
    fn memory_decrease_reservation(&self, order: u32, pfns: &mut [usize]) -> Result<u32, NtStatus> {
        self.xen.memory_decrease_reservation(order, pfns)
    }
    fn memory_populate_physmap(&self, order: u32, pfns: &mut [usize]) -> Result<u32, NtStatus> {
        self.xen.memory_populate_physmap(order, pfns)
    }
    fn event_channel_send(&self, port: u32) -> Result<(), NtStatus> {
        self.xen.event_channel_send(port)
    }
    fn event_channel_allocate_unbound(&self, remote_domain: u16) -> Result<u32, NtStatus> {
        self.xen.event_channel_allocate_unbound(remote_domain)
    }
    fn event_channel_bind_inter_domain(
        &self,
        remote_domain: u16,
        remote_port: u32,
    ) -> Result<u32, NtStatus> {
        self.xen
            .event_channel_bind_inter_domain(remote_domain, remote_port)
    }
    fn event_channel_bind_virq(&self, virq: u32, vcpu_id: u32) -> Result<u32, NtStatus> {
        self.xen.event_channel_bind_virq(virq, vcpu_id)
    }
    fn event_channel_query_inter_domain(&self, local_port: u32) -> Result<(u16, u32), NtStatus> {
        self.xen.event_channel_query_inter_domain(local_port)
    }
    fn event_channel_close(&self, local_port: u32) -> Result<(), NtStatus> {
        self.xen.event_channel_close(local_port)
    }
    fn event_channel_expand_array(&self, pfn: usize) -> Result<(), NtStatus> {
        self.xen.event_channel_expand_array(pfn)
    }
    fn event_channel_init_control(&self, pfn: usize, vcpu_id: u32) -> Result<(), NtStatus> {
        self.xen.event_channel_init_control(pfn, vcpu_id)
    }
    fn event_channel_reset(&self) -> Result<(), NtStatus> {
        self.xen.event_channel_reset()
    }
    fn event_channel_bind_virtual_cpu(
        &self,
        local_port: u32,
        vcpu_id: u32,
    ) -> Result<(), NtStatus> {
        self.xen.event_channel_bind_virtual_cpu(local_port, vcpu_id)
    }
    fn event_channel_unmask(&self, local_port: u32) -> Result<(), NtStatus> {
        self.xen.event_channel_unmask(local_port)
    }
    fn grant_table_set_version(&self, version: u32) -> Result<(), NtStatus> {
        self.xen.grant_table_set_version(version)
    }
    fn grant_table_get_version(&self) -> Result<u32, NtStatus> {
        self.xen.grant_table_get_version()
    }
    fn grant_table_copy(&self, ops: &mut [GnttabCopy]) -> Result<(), NtStatus> {
        self.xen.grant_table_copy(ops)
    }
    fn grant_table_map_foreign_page(
        &self,
        domain: u16,
        gref: u32,
        address: u64,
        read_only: bool,
    ) -> Result<u32, NtStatus> {
        self.xen
            .grant_table_map_foreign_page(domain, gref, address, read_only)
    }
    fn grant_table_unmap_foreign_page(&self, handle: u32, address: u64) -> Result<(), NtStatus> {
        self.xen.grant_table_unmap_foreign_page(handle, address)
    }
    fn grant_table_query_size(&self) -> Result<(u32, u32), NtStatus> {
        self.xen.grant_table_query_size()
    }
    fn sched_shutdown_code(&self, reason: u32) -> Result<(), NtStatus> {
        self.xen.sched_shutdown_code(reason)
    }
    fn sched_shutdown(&self, reason: u32) -> Result<(), NtStatus> {
        self.xen.sched_shutdown(reason)
    }
    fn sched_yield(&self) {
        self.xen.sched_yield()
    }
    fn sched_watchdog(&self, id: &mut u32, seconds: u32) -> Result<(), NtStatus> {
        self.xen.sched_watchdog(id, seconds)
    }
    fn xen_version(&self) -> Result<(u32, u32), NtStatus> {
        self.xen.xen_version()
    }
    fn xen_version_extra(&self) -> Result<[u8; XEN_EXTRAVERSION_LEN], NtStatus> {
        self.xen.xen_version_extra()
    }
    fn module_lookup(&self, address: usize) -> Option<(ModuleName, usize)> {
        self.xen.module_lookup(address)
    }
    fn unplug_devices(&self) {
        self.xen.unplug_devices()
    }
    fn unplug_increment_value(&self, unplug_type: UnplugType) -> Result<(), NtStatus> {
        self.xen.unplug_increment_value(unplug_type)
    }
    fn unplug_decrement_value(&self, unplug_type: UnplugType) -> Result<(), NtStatus> {
        self.xen.unplug_decrement_value(unplug_type)
    }
    fn unplug_get_request(&self, unplug_type: UnplugType) -> bool {
        self.xen.unplug_get_request(unplug_type)
    }
    fn log(&self, level: LogLevel, text: &str) {
        let _ = level;
        self.os.debug_print(text);
    }
    fn log_resume(&self) {
        self.xen.log_resume()
    }
    fn log_read_log_level(&self, key: KeyHandle, name: &CStr) -> Result<LogLevel, NtStatus> {
        self.xen.log_read_log_level(key, name)
    }
    fn log_add_disposition(
        &self,
        mask: LogLevel,
        function: LogDispositionFn,
        argument: *mut c_void,
    ) -> Result<usize, NtStatus> {
        self.xen.log_add_disposition(mask, function, argument)
    }
    fn log_remove_disposition(&self, disposition: usize) {
        self.xen.log_remove_disposition(disposition)
    }
    fn system_processor_vcpu_id(&self, cpu: u32) -> Result<u32, NtStatus> {
        // One processor, vCPU 0: what xen.sys's SystemInitialize learns from the MADT.
        if cpu == 0 {
            Ok(0)
        } else {
            Err(STATUS_UNSUCCESSFUL)
        }
    }
    fn system_processor_vcpu_info(&self, cpu: u32) -> Result<usize, NtStatus> {
        // No registered vcpu_info: SHARED_INFO uses the legacy slot in shared info.
        let _ = cpu;
        Err(STATUS_NOT_SUPPORTED)
    }
    fn system_processor_register_vcpu_info(&self, cpu: u32, force: bool) -> Result<(), NtStatus> {
        // Registration is off (as xen.sys leaves it for up to 32 processors).
        let _ = (cpu, force);
        Ok(())
    }
    fn system_maximum_physical_address(&self) -> u64 {
        self.xen.system_maximum_physical_address()
    }
    fn system_real_time_is_universal(&self) -> bool {
        self.xen.system_real_time_is_universal()
    }
    fn system_set_watchdog(&self, seconds: u32) -> Result<(), NtStatus> {
        self.xen.system_set_watchdog(seconds)
    }
    fn system_stop_watchdog(&self) {
        self.xen.system_stop_watchdog()
    }
    fn vcpu_set_periodic_timer(
        &self,
        vcpu_id: u32,
        period_100ns: Option<i64>,
    ) -> Result<(), NtStatus> {
        self.xen.vcpu_set_periodic_timer(vcpu_id, period_100ns)
    }
    fn vcpu_register_vcpu_info(
        &self,
        vcpu_id: u32,
        pfn: usize,
        offset: u32,
    ) -> Result<(), NtStatus> {
        self.xen.vcpu_register_vcpu_info(vcpu_id, pfn, offset)
    }
    fn filters_install(&self) {
        self.xen.filters_install()
    }
    fn filters_uninstall(&self) {
        self.xen.filters_uninstall()
    }
    fn config_get_active(&self, key: &CStr, out: &mut [u8]) -> Result<usize, NtStatus> {
        self.xen.config_get_active(key, out)
    }
    fn config_set_active(
        &self,
        device_id: &CStr,
        instance_id: &CStr,
        location: &CStr,
    ) -> Result<(), NtStatus> {
        self.xen.config_set_active(device_id, instance_id, location)
    }
    fn config_update_active(
        &self,
        device_id: &CStr,
        instance_id: &CStr,
        location: &CStr,
    ) -> Result<(), NtStatus> {
        self.xen
            .config_update_active(device_id, instance_id, location)
    }
    fn config_clear_active(&self) -> Result<(), NtStatus> {
        self.xen.config_clear_active()
    }
    fn config_request_reboot(
        &self,
        parameters_key: KeyHandle,
        module: &CStr,
    ) -> Result<(), NtStatus> {
        self.xen.config_request_reboot(parameters_key, module)
    }
    fn config_query_system_start_option(
        &self,
        prefix: &CStr,
        out: &mut [u8],
    ) -> Result<usize, NtStatus> {
        self.xen.config_query_system_start_option(prefix, out)
    }
}
