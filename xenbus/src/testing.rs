//! Test doubles of the `XenApi` and `Os` edges for unit tests: a XenApi that logs to memory
//! and answers the calls a test scripts (everything else is `STATUS_NOT_IMPLEMENTED`), and
//! an Os with a few processors and events modelled as flags.
#![cfg(test)]
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::{c_void, CStr};
use std::sync::Mutex;

use common::os::{
    CallbackHandle, DpcHandle, DpcRoutine, KernelCallback, KeyHandle, MemoryRange, ModuleInfo, Os,
    Page, RegValue,
};
use xen_include::api::XEN_EXTRAVERSION_LEN;
use xen_include::api::{LogDispositionFn, LogLevel, ModuleName, UnplugType, XenApi};
use xen_include::status::*;

/// Every call a test double saw, for ordering assertions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    Send(u32),
    Other(&'static str),
}

/// A XenApi that records logs and calls.
#[derive(Default)]
pub struct TestApi {
    pub logs: Mutex<Vec<(LogLevel, String)>>,
    pub calls: Mutex<Vec<Call>>,
    pub params: Mutex<BTreeMap<u32, u64>>,
    /// What `sched_shutdown` returns (`None` = success).
    pub shutdown_error: Mutex<Option<NtStatus>>,
}

impl TestApi {
    pub fn leak() -> &'static TestApi {
        Box::leak(Box::default())
    }
    pub fn logged(&self, needle: &str) -> bool {
        self.logs
            .lock()
            .unwrap()
            .iter()
            .any(|(_, l)| l.contains(needle))
    }
    fn other(&self, name: &'static str) -> NtStatus {
        self.calls.lock().unwrap().push(Call::Other(name));
        STATUS_NOT_IMPLEMENTED
    }
}

macro_rules! ni {
    ($self:ident, $name:literal) => {
        Err($self.other($name))
    };
}

impl XenApi for TestApi {
    fn xen_touch(&self, _: &CStr, _: u32, _: u32, _: u32, _: u32) -> Result<(), NtStatus> {
        ni!(self, "xen_touch")
    }
    fn hvm_set_param(&self, index: u32, value: u64) -> Result<(), NtStatus> {
        self.params.lock().unwrap().insert(index, value);
        Ok(())
    }
    fn hvm_get_param(&self, index: u32) -> Result<u64, NtStatus> {
        self.params
            .lock()
            .unwrap()
            .get(&index)
            .copied()
            .ok_or(STATUS_INVALID_PARAMETER)
    }
    fn hvm_pagetable_dying(&self, _: u64) -> Result<(), NtStatus> {
        ni!(self, "hvm_pagetable_dying")
    }
    fn hvm_set_evtchn_upcall_vector(&self, _: u32, _: u8) -> Result<(), NtStatus> {
        ni!(self, "hvm_set_evtchn_upcall_vector")
    }
    fn memory_add_to_physmap(&self, _: usize, _: u32, _: usize) -> Result<(), NtStatus> {
        ni!(self, "memory_add_to_physmap")
    }
    fn memory_remove_from_physmap(&self, _: usize) -> Result<(), NtStatus> {
        ni!(self, "memory_remove_from_physmap")
    }
    fn memory_decrease_reservation(&self, _: u32, _: &mut [usize]) -> Result<u32, NtStatus> {
        ni!(self, "memory_decrease_reservation")
    }
    fn memory_populate_physmap(&self, _: u32, _: &mut [usize]) -> Result<u32, NtStatus> {
        ni!(self, "memory_populate_physmap")
    }
    fn event_channel_send(&self, port: u32) -> Result<(), NtStatus> {
        self.calls.lock().unwrap().push(Call::Send(port));
        Ok(())
    }
    fn event_channel_allocate_unbound(&self, _: u16) -> Result<u32, NtStatus> {
        ni!(self, "event_channel_allocate_unbound")
    }
    fn event_channel_bind_inter_domain(&self, _: u16, _: u32) -> Result<u32, NtStatus> {
        ni!(self, "event_channel_bind_inter_domain")
    }
    fn event_channel_bind_virq(&self, _: u32, _: u32) -> Result<u32, NtStatus> {
        ni!(self, "event_channel_bind_virq")
    }
    fn event_channel_query_inter_domain(&self, _: u32) -> Result<(u16, u32), NtStatus> {
        ni!(self, "event_channel_query_inter_domain")
    }
    fn event_channel_close(&self, _: u32) -> Result<(), NtStatus> {
        ni!(self, "event_channel_close")
    }
    fn event_channel_expand_array(&self, _: usize) -> Result<(), NtStatus> {
        ni!(self, "event_channel_expand_array")
    }
    fn event_channel_init_control(&self, _: usize, _: u32) -> Result<(), NtStatus> {
        ni!(self, "event_channel_init_control")
    }
    fn event_channel_reset(&self) -> Result<(), NtStatus> {
        ni!(self, "event_channel_reset")
    }
    fn event_channel_bind_virtual_cpu(&self, _: u32, _: u32) -> Result<(), NtStatus> {
        ni!(self, "event_channel_bind_virtual_cpu")
    }
    fn event_channel_unmask(&self, _: u32) -> Result<(), NtStatus> {
        ni!(self, "event_channel_unmask")
    }
    fn grant_table_set_version(&self, _: u32) -> Result<(), NtStatus> {
        ni!(self, "grant_table_set_version")
    }
    fn grant_table_get_version(&self) -> Result<u32, NtStatus> {
        ni!(self, "grant_table_get_version")
    }
    fn grant_table_copy(
        &self,
        _: &mut [xen_include::xen::grant_table::GnttabCopy],
    ) -> Result<(), NtStatus> {
        ni!(self, "grant_table_copy")
    }
    fn grant_table_map_foreign_page(
        &self,
        _: u16,
        _: u32,
        _: u64,
        _: bool,
    ) -> Result<u32, NtStatus> {
        ni!(self, "grant_table_map_foreign_page")
    }
    fn grant_table_unmap_foreign_page(&self, _: u32, _: u64) -> Result<(), NtStatus> {
        ni!(self, "grant_table_unmap_foreign_page")
    }
    fn grant_table_query_size(&self) -> Result<(u32, u32), NtStatus> {
        ni!(self, "grant_table_query_size")
    }
    fn sched_shutdown_code(&self, _: u32) -> Result<(), NtStatus> {
        ni!(self, "sched_shutdown_code")
    }
    fn sched_shutdown(&self, _: u32) -> Result<(), NtStatus> {
        // The test double stands for xen.sys or the kernel: its heap use is not checked.
        let _host = common::irql::model::HostSide::enter();
        self.calls
            .lock()
            .unwrap()
            .push(Call::Other("sched_shutdown"));
        match *self.shutdown_error.lock().unwrap() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
    fn sched_yield(&self) {
        self.calls.lock().unwrap().push(Call::Other("sched_yield"));
    }
    fn sched_watchdog(&self, _: &mut u32, _: u32) -> Result<(), NtStatus> {
        ni!(self, "sched_watchdog")
    }
    fn xen_version(&self) -> Result<(u32, u32), NtStatus> {
        Ok((4, 19))
    }
    fn xen_version_extra(&self) -> Result<[u8; XEN_EXTRAVERSION_LEN], NtStatus> {
        ni!(self, "xen_version_extra")
    }
    fn module_lookup(&self, _: usize) -> Option<(ModuleName, usize)> {
        None
    }
    fn unplug_devices(&self) {
        self.calls
            .lock()
            .unwrap()
            .push(Call::Other("unplug_devices"));
    }
    fn unplug_increment_value(&self, _: UnplugType) -> Result<(), NtStatus> {
        ni!(self, "unplug_increment_value")
    }
    fn unplug_decrement_value(&self, _: UnplugType) -> Result<(), NtStatus> {
        ni!(self, "unplug_decrement_value")
    }
    fn unplug_get_request(&self, _: UnplugType) -> bool {
        false
    }
    fn log(&self, level: LogLevel, text: &str) {
        // The test double stands for xen.sys or the kernel: its heap use is not checked.
        let _host = common::irql::model::HostSide::enter();
        self.logs.lock().unwrap().push((level, text.to_string()));
    }
    fn log_resume(&self) {}
    fn log_read_log_level(&self, _: KeyHandle, _: &CStr) -> Result<LogLevel, NtStatus> {
        ni!(self, "log_read_log_level")
    }
    fn log_add_disposition(
        &self,
        _: LogLevel,
        _: LogDispositionFn,
        _: *mut c_void,
    ) -> Result<usize, NtStatus> {
        ni!(self, "log_add_disposition")
    }
    fn log_remove_disposition(&self, _: usize) {}
    fn system_processor_vcpu_id(&self, cpu: u32) -> Result<u32, NtStatus> {
        Ok(cpu)
    }
    fn system_processor_vcpu_info(&self, _: u32) -> Result<usize, NtStatus> {
        ni!(self, "system_processor_vcpu_info")
    }
    fn system_processor_register_vcpu_info(&self, _: u32, _: bool) -> Result<(), NtStatus> {
        self.calls
            .lock()
            .unwrap()
            .push(Call::Other("register_vcpu_info"));
        Ok(())
    }
    fn system_maximum_physical_address(&self) -> u64 {
        1 << 36
    }
    fn system_real_time_is_universal(&self) -> bool {
        true
    }
    fn system_set_watchdog(&self, _: u32) -> Result<(), NtStatus> {
        ni!(self, "system_set_watchdog")
    }
    fn system_stop_watchdog(&self) {}
    fn vcpu_set_periodic_timer(&self, _: u32, _: Option<i64>) -> Result<(), NtStatus> {
        ni!(self, "vcpu_set_periodic_timer")
    }
    fn vcpu_register_vcpu_info(&self, _: u32, _: usize, _: u32) -> Result<(), NtStatus> {
        ni!(self, "vcpu_register_vcpu_info")
    }
    fn filters_install(&self) {}
    fn filters_uninstall(&self) {}
    fn config_get_active(&self, _: &CStr, _: &mut [u8]) -> Result<usize, NtStatus> {
        ni!(self, "config_get_active")
    }
    fn config_set_active(&self, _: &CStr, _: &CStr, _: &CStr) -> Result<(), NtStatus> {
        ni!(self, "config_set_active")
    }
    fn config_update_active(&self, _: &CStr, _: &CStr, _: &CStr) -> Result<(), NtStatus> {
        ni!(self, "config_update_active")
    }
    fn config_clear_active(&self) -> Result<(), NtStatus> {
        ni!(self, "config_clear_active")
    }
    fn config_request_reboot(&self, _: KeyHandle, _: &CStr) -> Result<(), NtStatus> {
        ni!(self, "config_request_reboot")
    }
    fn config_query_system_start_option(&self, _: &CStr, _: &mut [u8]) -> Result<usize, NtStatus> {
        ni!(self, "config_query_system_start_option")
    }
}

/// An Os with `cpus` processors; events are flags in a map.
pub struct TestOs {
    pub cpus: u32,
    pub events: Mutex<BTreeMap<usize, u32>>,
    pub log: Mutex<Vec<String>>,
    /// `system_time`: each read returns `clock` and then adds `clock_step` to it (both 0
    /// unless a test sets them, e.g. to model the wall clock being stepped).
    pub clock: std::sync::atomic::AtomicI64,
    pub clock_step: std::sync::atomic::AtomicI64,
    /// The DPCs (every processor is the calling thread).
    pub dpcs: std::sync::Arc<common::os::model::DpcQueue>,
}

impl TestOs {
    pub fn leak(cpus: u32) -> &'static TestOs {
        Box::leak(Box::new(TestOs {
            cpus,
            events: Mutex::default(),
            log: Mutex::default(),
            clock: Default::default(),
            clock_step: Default::default(),
            dpcs: common::os::model::DpcQueue::new(common::os::model::Processors::this_thread(
                cpus,
            )),
        }))
    }
    /// How often `event` was set.
    pub fn sets(&self, event: usize) -> u32 {
        self.events
            .lock()
            .unwrap()
            .get(&event)
            .copied()
            .unwrap_or(0)
    }
}

impl Os for TestOs {
    fn alloc_page(&self) -> Option<Page> {
        None
    }
    fn free_page(&self, _: Page) {}
    fn map_pfn(&self, _: u64) -> Option<usize> {
        None
    }
    fn processor_count(&self) -> u32 {
        self.cpus
    }
    fn maximum_processor_count(&self) -> u32 {
        self.cpus
    }
    fn current_processor(&self) -> u32 {
        0
    }
    fn run_on_processor(&self, _: u32, f: &mut dyn FnMut()) -> Result<(), NtStatus> {
        common::irql::check_at_most(common::irql::APC_LEVEL, "run_on_processor");
        common::irql::model::on_other_processor(common::irql::DISPATCH_LEVEL, f);
        Ok(())
    }
    fn dpc_create(
        &self,
        cpu: u32,
        routine: &'static dyn DpcRoutine,
    ) -> Result<DpcHandle, NtStatus> {
        self.dpcs.create(cpu, routine, &|l| self.debug_print(l))
    }
    fn dpc_queue(&self, dpc: DpcHandle) -> bool {
        self.dpcs.queue(dpc, &|l| self.debug_print(l))
    }
    fn dpc_destroy(&self, dpc: DpcHandle) {
        self.dpcs.destroy(dpc, &|l| self.debug_print(l))
    }
    fn system_time(&self) -> i64 {
        use std::sync::atomic::Ordering::SeqCst;
        self.clock.fetch_add(self.clock_step.load(SeqCst), SeqCst)
    }
    fn debug_print(&self, line: &str) {
        self.log.lock().unwrap().push(line.to_string());
    }
    fn safe_boot_mode(&self) -> u32 {
        0
    }
    fn registry_open(&self, _: Option<KeyHandle>, _: &str) -> Result<KeyHandle, NtStatus> {
        Err(STATUS_OBJECT_NAME_NOT_FOUND)
    }
    fn registry_create(
        &self,
        _: Option<KeyHandle>,
        _: &str,
        _: bool,
    ) -> Result<KeyHandle, NtStatus> {
        Err(STATUS_NOT_IMPLEMENTED)
    }
    fn registry_close(&self, _: KeyHandle) {}
    fn registry_query(&self, _: KeyHandle, _: &str) -> Result<RegValue, NtStatus> {
        Err(STATUS_OBJECT_NAME_NOT_FOUND)
    }
    fn registry_set(&self, _: KeyHandle, _: &str, _: &RegValue) -> Result<(), NtStatus> {
        Err(STATUS_NOT_IMPLEMENTED)
    }
    fn registry_delete_value(&self, _: KeyHandle, _: &str) -> Result<(), NtStatus> {
        Err(STATUS_OBJECT_NAME_NOT_FOUND)
    }
    fn registry_subkeys(&self, _: KeyHandle) -> Result<Vec<String>, NtStatus> {
        Ok(Vec::new())
    }
    fn registry_delete_key(&self, _: KeyHandle) -> Result<(), NtStatus> {
        Err(STATUS_OBJECT_NAME_NOT_FOUND)
    }
    fn read_physical(&self, _: u64, _: &mut [u8]) -> Result<(), NtStatus> {
        Err(STATUS_NOT_IMPLEMENTED)
    }
    fn physical_memory_ranges(&self) -> Vec<MemoryRange> {
        Vec::new()
    }
    fn loaded_modules(&self) -> Result<Vec<ModuleInfo>, NtStatus> {
        Ok(Vec::new())
    }
    fn register_callback(&self, _: KernelCallback) -> Result<CallbackHandle, NtStatus> {
        Err(STATUS_NOT_IMPLEMENTED)
    }
    fn deregister_callback(&self, _: CallbackHandle) {}
    fn set_event(&self, event: usize) {
        common::irql::check_at_most(common::irql::DISPATCH_LEVEL, "set_event (KeSetEvent)");
        // The test double's record is not the drivers' pool use.
        let _host = common::irql::model::HostSide::enter();
        *self.events.lock().unwrap().entry(event).or_default() += 1;
    }
    fn capture_processors(
        &self,
        at_high_level: &mut dyn FnMut(),
        at_dispatch_level: &mut dyn FnMut(),
    ) -> Result<(), NtStatus> {
        use common::irql::{model, DISPATCH_LEVEL, HIGH_LEVEL};
        self.log.lock().unwrap().push("capture".into());
        model::raised(DISPATCH_LEVEL, || {
            model::raised(HIGH_LEVEL, &mut *at_high_level);
            self.log.lock().unwrap().push("interrupts on".into());
            at_dispatch_level();
        });
        self.log.lock().unwrap().push("release".into());
        Ok(())
    }
    fn read_tsc(&self) -> u64 {
        0
    }
}

#[cfg(test)]
mod dpc_tests {
    use super::*;
    use common::irql::{model, DISPATCH_LEVEL};
    use common::sync::SpinLock;

    struct Count(Mutex<Vec<(u32, u8)>>);
    impl DpcRoutine for Count {
        fn run(&self, cpu: u32) {
            self.0.lock().unwrap().push((cpu, model::current()));
        }
    }

    #[test]
    fn test_os_dpcs_run_below_dispatch_once_per_queueing() {
        let os = TestOs::leak(2);
        let r: &'static Count = Box::leak(Box::new(Count(Default::default())));
        assert_eq!(os.dpc_create(2, r), Err(STATUS_INVALID_PARAMETER));
        let d = os.dpc_create(0, r).unwrap();
        let lock = SpinLock::new(());
        {
            let _g = lock.lock();
            assert!(os.dpc_queue(d));
            assert!(!os.dpc_queue(d));
            assert!(r.0.lock().unwrap().is_empty());
        }
        assert_eq!(*r.0.lock().unwrap(), [(0, DISPATCH_LEVEL)]);
        os.dpc_destroy(d);
        assert!(!os.dpc_queue(d));
        let log = os.log.lock().unwrap().clone();
        assert!(log.iter().any(|l| l.contains("out of range")), "{log:?}");
        assert!(
            log.iter().any(|l| l.contains("unknown DPC handle")),
            "{log:?}"
        );
        assert_eq!(r.0.lock().unwrap().len(), 1);
    }
}
