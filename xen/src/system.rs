//! `system.c`: per-processor APIC ID → ACPI Processor ID (Xen `vcpu_id`) through the MADT,
//! `vcpu_info` placement and registration (pages reused across reloads through the
//! volatile `Services\XEN\Memory` key), maximum physical address, RealTimeIsUniversal
//! and the domain watchdog.
#![forbid(unsafe_code)]

use alloc::format;
use alloc::vec;
use alloc::vec::Vec;

use common::hypercall::Hypercall;
use common::os::{KeyHandle, Os, RegValue};
use xen_include::api::LOG_LEVEL_INFO;
use xen_include::status::{
    NtStatus, STATUS_INVALID_PARAMETER, STATUS_NOT_SUPPORTED, STATUS_NO_MEMORY, STATUS_UNSUCCESSFUL,
};
use xen_include::xen::hvm::hvm_info_table::HVM_MAX_VCPUS;
use xen_include::xen::xen::{VcpuInfo, XEN_LEGACY_MAX_VCPUS, XEN_PAGE_SIZE};

use crate::acpi::{Acpi, Madt};
use crate::registry;
use crate::Logger;
use common::sync::HighLock;

/// `sizeof (vcpu_info_t)`.
pub const VCPU_INFO_SIZE: usize = core::mem::size_of::<VcpuInfo>();
/// Pages holding `HVM_MAX_VCPUS` `vcpu_info_t`.
pub const VCPU_INFO_PAGES: usize = (HVM_MAX_VCPUS * VCPU_INFO_SIZE).div_ceil(XEN_PAGE_SIZE);
/// Name of the named page block (values `VCPU_INFO_<n>` in the Memory key).
pub const VCPU_INFO_NAME: &str = "VCPU_INFO";
/// Memory-key value remembering which vCPUs have registered their `vcpu_info` this boot
/// (upstream keeps these flags in the pages themselves; a volatile value has the same
/// lifetime and keeps the core free of raw memory access).
pub const VCPU_INFO_REGISTERED: &str = "VCPU_INFO_REGISTERED";
/// `HKLM\...\Control\TimeZoneInformation`.
pub const TIME_ZONE_PATH: &str = "SYSTEM\\CurrentControlSet\\Control\\TimeZoneInformation";

/// Where one CPU's `vcpu_info` lives in the named pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VcpuInfoSlot {
    /// Kernel virtual address.
    pub va: usize,
    /// Frame number.
    pub pfn: u64,
    /// Offset in the frame.
    pub offset: u32,
}

/// One processor as xen.sys sees it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Processor {
    /// Set once its APIC ID was mapped.
    pub initialized: bool,
    /// Local APIC ID (CPUID(1).EBX[31:24]).
    pub apic_id: u8,
    /// ACPI Processor ID = Xen `vcpu_id`.
    pub vcpu_id: u32,
    /// Registered `vcpu_info`, if any.
    pub vcpu_info: Option<VcpuInfoSlot>,
}

#[derive(Default)]
struct State {
    processors: Vec<Processor>,
    registered: Vec<bool>,
    register_vcpu_info: bool,
    pages: Vec<(usize, u64)>,
    maximum_physical_address: u64,
    real_time_is_universal: bool,
    watchdog_id: u32,
    watchdog_seconds: u32,
    /// The MADT, kept to map processors added later.
    madt: Option<Madt>,
}

/// The system context.
#[derive(Default)]
pub struct System {
    /// HIGH_LEVEL: read by `SystemProcessorVcpuId`/`VcpuInfo` at any IRQL and written by
    /// `register_vcpu_info` in the resume's HIGH_LEVEL phase.
    state: HighLock<State>,
}

/// `DriverGetNamedPages`: the frames recorded under `<name>_<i>` in the volatile Memory
/// key, or fresh pages recorded there. Returns (virtual address, frame) per page.
pub fn named_pages(
    os: &dyn Os,
    memory_key: KeyHandle,
    name: &str,
    count: usize,
) -> Result<Vec<(usize, u64)>, NtStatus> {
    let mut recorded = Vec::with_capacity(count);
    for i in 0..count {
        match os.registry_query(memory_key, &format!("{name}_{i}")) {
            Ok(RegValue::Binary(b)) if b.len() == 8 => {
                let mut a = [0u8; 8];
                a.copy_from_slice(&b);
                recorded.push(u64::from_le_bytes(a));
            }
            _ => break,
        }
    }
    if recorded.len() == count {
        return recorded
            .into_iter()
            .map(|pfn| {
                os.map_pfn(pfn)
                    .map(|va| (va, pfn))
                    .ok_or(STATUS_UNSUCCESSFUL)
            })
            .collect();
    }
    let mut pages = Vec::with_capacity(count);
    for _ in 0..count {
        match os.alloc_page() {
            Some(p) => pages.push(p),
            None => {
                for p in pages {
                    os.free_page(p);
                }
                return Err(STATUS_NO_MEMORY);
            }
        }
    }
    for (i, p) in pages.iter().enumerate() {
        os.registry_set(
            memory_key,
            &format!("{name}_{i}"),
            &RegValue::Binary(p.pfn.to_le_bytes().to_vec()),
        )?;
    }
    Ok(pages.into_iter().map(|p| (p.va, p.pfn)).collect())
}

/// The slot of CPU `cpu` in the named pages.
pub fn vcpu_info_slot(pages: &[(usize, u64)], cpu: u32) -> Option<VcpuInfoSlot> {
    let byte = usize::try_from(cpu).ok()?.checked_mul(VCPU_INFO_SIZE)?;
    let (va, pfn) = *pages.get(byte / XEN_PAGE_SIZE)?;
    let offset = byte % XEN_PAGE_SIZE;
    Some(VcpuInfoSlot {
        va: va + offset,
        pfn,
        offset: offset as u32,
    })
}

/// The end (exclusive) of the highest physical memory range.
pub fn maximum_physical_address(ranges: &[common::os::MemoryRange]) -> u64 {
    ranges
        .iter()
        .map(|r| r.start.saturating_add(r.length))
        .max()
        .unwrap_or(0)
}

/// `RealTimeIsUniversal` as REG_DWORD or REG_QWORD (non-zero ⇒ true; anything else false).
pub fn real_time_is_universal(value: Result<RegValue, NtStatus>) -> bool {
    matches!(value, Ok(RegValue::Dword(v)) if v != 0)
        || matches!(value, Ok(RegValue::Qword(v)) if v != 0)
}

fn registered_flags(os: &dyn Os, memory_key: KeyHandle) -> Vec<bool> {
    match os.registry_query(memory_key, VCPU_INFO_REGISTERED) {
        Ok(RegValue::Binary(b)) if b.len() == HVM_MAX_VCPUS => b.iter().map(|f| *f != 0).collect(),
        _ => vec![false; HVM_MAX_VCPUS],
    }
}

/// On Viridian (Hyper-V enlightenments offered to the guest, Xen's leaves moved to
/// 0x40000100), log the Hyper-V feature and recommendation leaves 0x40000001–0x40000006.
pub fn viridian_information(hv: &dyn Hypercall, log: &dyn Logger) {
    let r = hv.cpuid(0x4000_0000, 0);
    let mut sig = [0u8; 12];
    for (d, s) in sig.iter_mut().zip(
        r.ebx
            .to_le_bytes()
            .into_iter()
            .chain(r.ecx.to_le_bytes())
            .chain(r.edx.to_le_bytes()),
    ) {
        *d = s;
    }
    if &sig != b"Microsoft Hv" {
        return;
    }
    log.info(format_args!("VIRIDIAN: max leaf {:08X}", r.eax));
    for leaf in 0x4000_0001..=r.eax.min(0x4000_0006) {
        let l = hv.cpuid(leaf, 0);
        log.info(format_args!(
            "VIRIDIAN: {leaf:08X}: {:08X} {:08X} {:08X} {:08X}",
            l.eax, l.ebx, l.ecx, l.edx
        ));
    }
}

/// Map processor `cpu` (on that processor): CPUID(1).EBX[31:24] is its APIC ID, the MADT
/// gives its ACPI Processor ID = Xen vcpu_id. An APIC ID missing from the MADT is an error
/// (upstream BUGs).
pub fn map_processor(
    os: &dyn Os,
    hv: &dyn Hypercall,
    madt: &Madt,
    cpu: u32,
    log: &dyn Logger,
) -> Result<Processor, NtStatus> {
    let mut result = Err(STATUS_UNSUCCESSFUL);
    os.run_on_processor(cpu, &mut || {
        let apic_id = (hv.cpuid(1, 0).ebx >> 24) as u8;
        result = match madt.processor_id(apic_id) {
            Some(id) => {
                log.info(format_args!(
                    "CPU {cpu}: APIC ID: {apic_id:02X} PROCESSOR ID: {id:02X}"
                ));
                Ok(Processor {
                    initialized: true,
                    apic_id,
                    vcpu_id: u32::from(id),
                    vcpu_info: None,
                })
            }
            None => {
                log.error(format_args!("CPU {cpu}: APIC ID {apic_id:02X} NOT IN MADT"));
                Err(STATUS_UNSUCCESSFUL)
            }
        };
    })?;
    result
}

/// `VER_SUITE_*` names by bit (`__SuiteName`).
pub const SUITE_NAMES: [&str; 15] = [
    "SMALLBUSINESS",
    "ENTERPRISE",
    "BACKOFFICE",
    "COMMUNICATIONS",
    "TERMINAL",
    "SMALLBUSINESS_RESTRICTED",
    "EMBEDDEDNT",
    "DATACENTER",
    "SINGLEUSERTS",
    "PERSONAL",
    "BLADE",
    "EMBEDDED_RESTRICTED",
    "SECURITY_APPLIANCE",
    "STORAGE_SERVER",
    "COMPUTE_SERVER",
];

/// Log the kernel version as `__SystemGetVersionInformation` does: version, build and
/// platform, the service pack when there is one, each suite bit, the product type.
pub fn log_os_version(v: &common::os::OsVersion, log: &dyn Logger) {
    let platform = match v.platform_id {
        0 => "WIN32s",
        1 => "WIN32_WINDOWS",
        2 => "WIN32_NT",
        _ => "UNKNOWN",
    };
    log.info(format_args!(
        "KERNEL: {}.{} (BUILD {}) PLATFORM {platform} (x64)",
        v.major, v.minor, v.build
    ));
    if v.service_pack_major != 0 || v.service_pack_minor != 0 {
        log.info(format_args!(
            "SP: {}.{} ({})",
            v.service_pack_major, v.service_pack_minor, v.service_pack
        ));
    }
    log.info(format_args!("SUITES:"));
    for bit in 0..16 {
        if v.suite_mask & (1 << bit) != 0 {
            log.info(format_args!(
                "- {}",
                SUITE_NAMES.get(bit).copied().unwrap_or("UNKNOWN")
            ));
        }
    }
    log.info(format_args!(
        "TYPE: {}",
        match v.product_type {
            1 => "WORKSTATION",
            2 => "DOMAIN_CONTROLLER",
            3 => "SERVER",
            _ => "UNKNOWN",
        }
    ));
}

/// What `SystemInitialize` needs from the rest of the driver.
pub struct SystemEnv<'a> {
    /// The kernel.
    pub os: &'a dyn Os,
    /// The hypervisor.
    pub hv: &'a dyn Hypercall,
    /// The ACPI tables.
    pub acpi: &'a Acpi,
    /// `Services\XEN\Parameters`.
    pub parameters_key: KeyHandle,
    /// `Services\XEN\Memory` (volatile).
    pub memory_key: KeyHandle,
    /// Logging.
    pub log: &'a dyn Logger,
}

impl System {
    /// An uninitialised context.
    pub const fn new() -> Self {
        Self {
            state: HighLock::new(State {
                processors: Vec::new(),
                registered: Vec::new(),
                register_vcpu_info: false,
                pages: Vec::new(),
                maximum_physical_address: 0,
                real_time_is_universal: false,
                watchdog_id: 0,
                watchdog_seconds: 0,
                madt: None,
            }),
        }
    }

    /// `SystemInitialize`.
    pub fn initialize(&self, env: &SystemEnv<'_>) -> Result<(), NtStatus> {
        let os = env.os;
        let log = env.log;
        match os.os_version() {
            Some(v) => log_os_version(&v, log),
            None => log.warning(format_args!("KERNEL: VERSION UNKNOWN")),
        }
        let active = os.processor_count();
        let maximum = os.maximum_processor_count().max(active);
        log.info(format_args!("CPUs {active} / {maximum}"));
        let register_vcpu_info =
            match registry::query_dword(os, env.parameters_key, "RegisterVcpuInfo") {
                Ok(v) => v != 0,
                Err(_) => maximum as usize > XEN_LEGACY_MAX_VCPUS,
            };
        if let Ok(options) = registry::with_key(os, registry::CONTROL_PATH, |k| {
            registry::query_sz(os, k, "SystemStartOptions")
        }) {
            log.info(format_args!("SystemStartOptions: {options}"));
        }
        let ranges = os.physical_memory_ranges();
        for r in &ranges {
            log.info(format_args!(
                "RANGE: {:016X} - {:016X}",
                r.start,
                r.start.saturating_add(r.length)
            ));
        }
        let maximum_physical_address = maximum_physical_address(&ranges);
        let read = |a: u64, b: &mut [u8]| os.read_physical(a, b);
        let madt = env
            .acpi
            .table(&read, b"APIC")
            .map_err(|e| {
                log.error(format_args!("MADT: {e:?}"));
                e.status()
            })
            .and_then(|t| Madt::parse(&t).map_err(|e| e.status()))?;
        let pages = if register_vcpu_info {
            named_pages(os, env.memory_key, VCPU_INFO_NAME, VCPU_INFO_PAGES)?
        } else {
            Vec::new()
        };
        let mut processors = vec![Processor::default(); maximum as usize];
        for (cpu, p) in processors.iter_mut().enumerate().take(active as usize) {
            *p = map_processor(os, env.hv, &madt, cpu as u32, log)?;
        }
        viridian_information(env.hv, log);
        let real_time_is_universal = registry::with_key(os, TIME_ZONE_PATH, |k| {
            Ok(real_time_is_universal(
                os.registry_query(k, "RealTimeIsUniversal"),
            ))
        })
        .unwrap_or(false);
        log.info(format_args!(
            "RealTimeIsUniversal: {}",
            if real_time_is_universal {
                "TRUE"
            } else {
                "FALSE"
            }
        ));
        {
            // The registry needs PASSIVE_LEVEL: read it before taking the HIGH_LEVEL lock.
            let registered = if register_vcpu_info {
                registered_flags(os, env.memory_key)
            } else {
                Vec::new()
            };
            let mut s = self.state.lock();
            s.processors = processors;
            s.registered = registered;
            s.register_vcpu_info = register_vcpu_info;
            s.pages = pages;
            s.maximum_physical_address = maximum_physical_address;
            s.real_time_is_universal = real_time_is_universal;
            s.madt = Some(madt);
        }
        if register_vcpu_info {
            for cpu in 0..active {
                let mut result = Ok(());
                os.run_on_processor(cpu, &mut || {
                    result = self.register_vcpu_info(env.hv, cpu, false, log);
                })?;
                if let Err(e) = result {
                    self.persist_registered(os, env.memory_key);
                    self.teardown();
                    return Err(e);
                }
            }
            self.persist_registered(os, env.memory_key);
        }
        Ok(())
    }

    /// Record which vCPUs registered their `vcpu_info` in the volatile Memory key, so a
    /// reload of xen.sys in this boot does not register them again (Xen refuses that).
    /// Registry access needs PASSIVE_LEVEL: called from initialisation and unload only,
    /// never from `register_vcpu_info` (which runs at DISPATCH or HIGH level).
    pub fn persist_registered(&self, os: &dyn Os, memory_key: KeyHandle) {
        // The state is a HIGH_LEVEL lock: size the copy under it, allocate with it let go,
        // fill it under it again (no pool use at HIGH_LEVEL).
        let count = {
            let s = self.state.lock();
            if !s.register_vcpu_info {
                return;
            }
            s.registered.len()
        };
        let mut flags: Vec<u8> = Vec::new();
        if flags.try_reserve_exact(count).is_err() {
            return;
        }
        {
            let s = self.state.lock();
            flags.extend(s.registered.iter().take(count).map(|f| u8::from(*f)));
        }
        let _ = os.registry_set(memory_key, VCPU_INFO_REGISTERED, &RegValue::Binary(flags));
    }

    /// `SystemTeardown`.
    pub fn teardown(&self) {
        // Freed after the HIGH_LEVEL lock is let go.
        let old = core::mem::take(&mut *self.state.lock());
        drop(old);
    }

    /// `SystemProcessorVcpuId`.
    pub fn vcpu_id(&self, cpu: u32) -> Result<u32, NtStatus> {
        let s = self.state.lock();
        let p = s.processors.get(cpu as usize).ok_or(STATUS_UNSUCCESSFUL)?;
        if !p.initialized {
            return Err(STATUS_NOT_SUPPORTED);
        }
        Ok(p.vcpu_id)
    }

    /// `SystemProcessorVcpuInfo`: the address of the CPU's registered `vcpu_info`.
    pub fn vcpu_info(&self, cpu: u32) -> Result<usize, NtStatus> {
        let s = self.state.lock();
        let p = s.processors.get(cpu as usize).ok_or(STATUS_UNSUCCESSFUL)?;
        if !p.initialized {
            return Err(STATUS_NOT_SUPPORTED);
        }
        p.vcpu_info.map(|v| v.va).ok_or(STATUS_NOT_SUPPORTED)
    }

    /// `SystemProcessorRegisterVcpuInfo`: register (or with `force` re-register, after
    /// resume) the CPU's `vcpu_info`; a no-op when registration is disabled. Must run on
    /// that CPU; runs at any IRQL (no allocation, no registry access).
    pub fn register_vcpu_info(
        &self,
        hv: &dyn Hypercall,
        cpu: u32,
        force: bool,
        log: &dyn Logger,
    ) -> Result<(), NtStatus> {
        let (slot, vcpu_id) = {
            let s = crate::lock_bounded(&self.state).ok_or(STATUS_UNSUCCESSFUL)?;
            if !s.register_vcpu_info {
                return Ok(());
            }
            let p = s.processors.get(cpu as usize).ok_or(STATUS_UNSUCCESSFUL)?;
            if !p.initialized {
                return Err(STATUS_UNSUCCESSFUL);
            }
            (
                vcpu_info_slot(&s.pages, cpu).ok_or(STATUS_UNSUCCESSFUL)?,
                p.vcpu_id,
            )
        };
        let registered = crate::lock_bounded(&self.state)
            .ok_or(STATUS_UNSUCCESSFUL)?
            .registered
            .get(cpu as usize)
            .copied()
            .unwrap_or(false);
        if !registered || force {
            crate::vcpu::register_vcpu_info(hv, vcpu_id, slot.pfn as usize, slot.offset)?;
            log.printf(
                LOG_LEVEL_INFO,
                format_args!("XEN: REGISTER vcpu_info[{cpu}]\n"),
            );
            if let Some(f) = crate::lock_bounded(&self.state)
                .as_mut()
                .and_then(|s| s.registered.get_mut(cpu as usize))
            {
                *f = true;
            }
        }
        let address = (slot.pfn << 12) + u64::from(slot.offset);
        log.printf(
            LOG_LEVEL_INFO,
            format_args!(
                "XEN: vcpu_info[{cpu}] @ {:08x}.{:08x}\n",
                (address >> 32) as u32,
                address as u32
            ),
        );
        if let Some(p) = crate::lock_bounded(&self.state)
            .as_mut()
            .and_then(|s| s.processors.get_mut(cpu as usize))
        {
            p.vcpu_info = Some(slot);
        }
        Ok(())
    }

    /// A processor was hot-added (`KeProcessorAddCompleteNotify`, PASSIVE_LEVEL): map its
    /// APIC ID to its vcpu_id and register its `vcpu_info` as for the boot processors,
    /// then persist the registered flags. Failures are returned for the caller to log;
    /// the processor stays unusable for Xen (`SystemProcessorVcpuId` → NOT_SUPPORTED).
    pub fn processor_added(
        &self,
        os: &dyn Os,
        hv: &dyn Hypercall,
        memory_key: Option<KeyHandle>,
        cpu: u32,
        log: &dyn Logger,
    ) -> Result<(), NtStatus> {
        // The state is a HIGH_LEVEL lock: the MADT's copy is made in room allocated with
        // the lock let go (no pool use at HIGH_LEVEL); the table never changes once read.
        let count = self
            .state
            .lock()
            .madt
            .as_ref()
            .map(|m| m.local_apics.len())
            .ok_or(STATUS_UNSUCCESSFUL)?;
        let mut local_apics = Vec::new();
        local_apics
            .try_reserve_exact(count)
            .map_err(|_| STATUS_NO_MEMORY)?;
        let (known, initialized) = {
            let s = self.state.lock();
            let p = s.processors.get(cpu as usize).copied();
            let apics = s.madt.as_ref().ok_or(STATUS_UNSUCCESSFUL)?;
            local_apics.extend(apics.local_apics.iter().take(count).copied());
            (s.processors.len(), p.map(|p| p.initialized))
        };
        let madt = crate::acpi::Madt { local_apics };
        match initialized {
            None => {
                log.error(format_args!(
                    "CPU {cpu}: ADDED BEYOND THE MAXIMUM ({known})"
                ));
                return Err(STATUS_INVALID_PARAMETER);
            }
            Some(true) => return Ok(()),
            Some(false) => {}
        }
        let processor = map_processor(os, hv, &madt, cpu, log)?;
        if let Some(p) = self.state.lock().processors.get_mut(cpu as usize) {
            *p = processor;
        }
        let mut result = Ok(());
        os.run_on_processor(cpu, &mut || {
            result = self.register_vcpu_info(hv, cpu, false, log);
        })?;
        if let Some(k) = memory_key {
            self.persist_registered(os, k);
        }
        if result.is_err() {
            // Not usable by Xen callers until a later successful registration.
            if let Some(p) = self.state.lock().processors.get_mut(cpu as usize) {
                p.initialized = false;
            }
        }
        result
    }

    /// `SystemMaximumPhysicalAddress`.
    pub fn maximum_physical_address(&self) -> u64 {
        self.state.lock().maximum_physical_address
    }

    /// `SystemRealTimeIsUniversal`.
    pub fn real_time_is_universal(&self) -> bool {
        self.state.lock().real_time_is_universal
    }

    /// `SystemSetWatchdog`: arm (or re-arm) the domain watchdog.
    pub fn set_watchdog(
        &self,
        hv: &dyn Hypercall,
        seconds: u32,
        log: &dyn Logger,
    ) -> Result<(), NtStatus> {
        if seconds == 0 {
            return Err(STATUS_INVALID_PARAMETER);
        }
        let mut s = self.state.lock();
        let mut id = s.watchdog_id;
        crate::sched::watchdog(hv, &mut id, seconds)?;
        if s.watchdog_id == 0 || s.watchdog_seconds != seconds {
            log.info(format_args!("WATCHDOG {id}: {seconds}s"));
        }
        s.watchdog_id = id;
        s.watchdog_seconds = seconds;
        Ok(())
    }

    /// `SystemStopWatchdog`.
    pub fn stop_watchdog(&self, hv: &dyn Hypercall, log: &dyn Logger) {
        let mut s = self.state.lock();
        if s.watchdog_id == 0 {
            return;
        }
        let mut id = s.watchdog_id;
        if let Err(e) = crate::sched::watchdog(hv, &mut id, 0) {
            log.error(format_args!(
                "WATCHDOG {id}: stop failed ({:08x})",
                e as u32
            ));
        }
        log.info(format_args!("WATCHDOG {id}: stopped"));
        s.watchdog_id = 0;
        s.watchdog_seconds = 0;
    }

    /// The processors (for tests and the debug dump).
    pub fn processors(&self) -> Vec<Processor> {
        self.state.lock().processors.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::os::MemoryRange;

    #[test]
    fn pure_helpers() {
        assert_eq!(VCPU_INFO_SIZE, 64);
        assert_eq!(VCPU_INFO_PAGES, 2);
        let pages = [(0x10_000, 7), (0x20_000, 9)];
        assert_eq!(
            vcpu_info_slot(&pages, 0),
            Some(VcpuInfoSlot {
                va: 0x10_000,
                pfn: 7,
                offset: 0
            })
        );
        assert_eq!(
            vcpu_info_slot(&pages, 63),
            Some(VcpuInfoSlot {
                va: 0x10_000 + 63 * 64,
                pfn: 7,
                offset: 63 * 64
            })
        );
        assert_eq!(
            vcpu_info_slot(&pages, 64),
            Some(VcpuInfoSlot {
                va: 0x20_000,
                pfn: 9,
                offset: 0
            })
        );
        assert_eq!(vcpu_info_slot(&pages, 128), None);
        assert_eq!(
            maximum_physical_address(&[
                MemoryRange {
                    start: 0x1000,
                    length: 0x1000
                },
                MemoryRange {
                    start: 0x1_0000_0000,
                    length: 0x1000
                }
            ]),
            0x1_0000_1000
        );
        assert_eq!(maximum_physical_address(&[]), 0);
        let nf = xen_include::status::STATUS_OBJECT_NAME_NOT_FOUND;
        let cases = [
            (Ok(RegValue::Dword(1)), true),
            (Ok(RegValue::Dword(0)), false),
            (Ok(RegValue::Qword(1 << 40)), true),
            (Ok(RegValue::Qword(0)), false),
            (Ok(RegValue::Sz("1".into())), false),
            (Err(nf), false),
        ];
        for (v, want) in cases {
            assert_eq!(real_time_is_universal(v.clone()), want, "{v:?}");
        }
    }
}
