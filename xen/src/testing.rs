//! Test doubles of the two lower edges for the unit tests of this crate: a registry-backed
//! [`Os`] with fault injection and a port/CPUID-level [`Hypercall`] fake.
#![cfg(test)]
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use common::hypercall::{CpuidResult, Hypercall, PortWidth};
use common::os::{
    CallbackHandle, DpcHandle, DpcRoutine, KernelCallback, KeyHandle, MemoryRange, ModuleInfo, Os,
    Page, RegValue,
};
use xen_include::status::*;

#[derive(Default, Debug, Clone)]
pub struct Key {
    pub name: String,
    pub volatile: bool,
    pub values: BTreeMap<String, (String, RegValue)>,
}

/// Something that can be made to fail.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// `registry_create` of a path ending with this (lower-case) suffix.
    Create(String),
    /// `register_callback` of this kind.
    Callback(String),
    /// `loaded_modules`.
    Modules,
    /// `run_on_processor`.
    RunOn,
}

#[derive(Default)]
pub struct OsState {
    pub keys: BTreeMap<String, Key>,
    pub handles: BTreeMap<usize, String>,
    pub next_handle: usize,
    pub callbacks: BTreeMap<usize, KernelCallback>,
    pub faults: BTreeSet<Fault>,
    pub log: Vec<String>,
    pub levels: Vec<u32>,
    pub phys: crate::acpi::build::PhysMem,
    pub modules: Vec<ModuleInfo>,
    pub pages: Vec<Page>,
    pub current_cpu: u32,
    pub cpus: u32,
}

/// A Windows guest reduced to what xen.sys touches.
pub struct FakeOs(
    pub Mutex<OsState>,
    /// The DPCs (every processor is the calling thread).
    pub std::sync::Arc<common::os::model::DpcQueue>,
);

fn norm(path: &str) -> String {
    path.trim_matches('\\').to_ascii_lowercase()
}

impl FakeOs {
    pub fn new() -> Self {
        let mut s = OsState {
            next_handle: 0x100,
            cpus: 2,
            ..Default::default()
        };
        s.keys
            .insert(norm(crate::registry::CONTROL_PATH), Key::default());
        s.keys
            .insert(norm("SYSTEM\\CurrentControlSet\\Services"), Key::default());
        let cpus = s.cpus;
        let cpus = common::os::model::Processors::this_thread(cpus);
        FakeOs(Mutex::new(s), common::os::model::DpcQueue::new(cpus))
    }
    pub fn state(&self) -> std::sync::MutexGuard<'_, OsState> {
        self.0.lock().unwrap()
    }
    pub fn mkkey(&self, path: &str) {
        let mut s = self.state();
        let mut full = String::new();
        for part in path.trim_matches('\\').split('\\') {
            if !full.is_empty() {
                full.push('\\');
            }
            full.push_str(part);
            s.keys.entry(norm(&full)).or_insert(Key {
                name: full.clone(),
                ..Default::default()
            });
        }
    }
    pub fn set(&self, path: &str, name: &str, value: RegValue) {
        let mut s = self.state();
        let k = s.keys.entry(norm(path)).or_default();
        k.values
            .insert(name.to_ascii_lowercase(), (name.to_string(), value));
    }
    pub fn get(&self, path: &str, name: &str) -> Option<RegValue> {
        let s = self.state();
        s.keys
            .get(&norm(path))?
            .values
            .get(&name.to_ascii_lowercase())
            .map(|v| v.1.clone())
    }
    pub fn key(&self, path: &str) -> Option<Key> {
        self.state().keys.get(&norm(path)).cloned()
    }
    pub fn fail(&self, f: Fault) {
        self.state().faults.insert(f);
    }
    pub fn open_handles(&self) -> usize {
        self.state().handles.len()
    }
    fn path_of(&self, parent: Option<KeyHandle>, path: &str) -> Result<String, NtStatus> {
        let s = self.state();
        Ok(match parent {
            None => norm(path),
            Some(h) => {
                let base = s.handles.get(&h.0).ok_or(STATUS_INVALID_HANDLE)?;
                if path.is_empty() {
                    base.clone()
                } else {
                    format!("{}\\{}", base, norm(path))
                }
            }
        })
    }
    fn new_handle(&self, path: String) -> KeyHandle {
        let mut s = self.state();
        s.next_handle += 4;
        let h = s.next_handle;
        s.handles.insert(h, path);
        KeyHandle(h)
    }
    fn key_path(&self, key: KeyHandle) -> Result<String, NtStatus> {
        self.state()
            .handles
            .get(&key.0)
            .cloned()
            .ok_or(STATUS_INVALID_HANDLE)
    }
}

impl Os for FakeOs {
    fn alloc_page(&self) -> Option<Page> {
        let mut s = self.state();
        let pfn = 0x1000 + s.pages.len() as u64;
        let p = Page {
            va: 0xFFFF_8000_0000_0000 + (pfn as usize) * 4096,
            pfn,
        };
        s.pages.push(p);
        Some(p)
    }
    fn free_page(&self, page: Page) {
        self.state().pages.retain(|p| *p != page);
    }
    fn map_pfn(&self, pfn: u64) -> Option<usize> {
        Some(0xFFFF_9000_0000_0000 + (pfn as usize) * 4096)
    }
    fn processor_count(&self) -> u32 {
        self.state().cpus
    }
    fn maximum_processor_count(&self) -> u32 {
        self.state().cpus
    }
    fn current_processor(&self) -> u32 {
        self.state().current_cpu
    }
    fn run_on_processor(&self, cpu: u32, f: &mut dyn FnMut()) -> Result<(), NtStatus> {
        if self.state().faults.contains(&Fault::RunOn) {
            return Err(STATUS_UNSUCCESSFUL);
        }
        common::irql::check_at_most(common::irql::APC_LEVEL, "run_on_processor");
        let old = std::mem::replace(&mut self.state().current_cpu, cpu);
        common::irql::model::on_other_processor(common::irql::DISPATCH_LEVEL, f);
        self.state().current_cpu = old;
        Ok(())
    }
    fn dpc_create(
        &self,
        cpu: u32,
        routine: &'static dyn DpcRoutine,
    ) -> Result<DpcHandle, NtStatus> {
        self.1.create(cpu, routine, &|l| self.debug_print(l))
    }
    fn dpc_queue(&self, dpc: DpcHandle) -> bool {
        self.1.queue(dpc, &|l| self.debug_print(l))
    }
    fn dpc_destroy(&self, dpc: DpcHandle) {
        self.1.destroy(dpc, &|l| self.debug_print(l))
    }
    fn system_time(&self) -> i64 {
        0
    }
    fn debug_print(&self, line: &str) {
        self.state().log.push(line.to_string());
    }
    fn debug_print_at(&self, level: u32, line: &str) {
        self.state().levels.push(level);
        self.debug_print(line)
    }
    fn safe_boot_mode(&self) -> u32 {
        0
    }
    fn registry_open(&self, parent: Option<KeyHandle>, path: &str) -> Result<KeyHandle, NtStatus> {
        let p = self.path_of(parent, path)?;
        if !self.state().keys.contains_key(&p) {
            return Err(STATUS_OBJECT_NAME_NOT_FOUND);
        }
        Ok(self.new_handle(p))
    }
    fn registry_create(
        &self,
        parent: Option<KeyHandle>,
        path: &str,
        volatile: bool,
    ) -> Result<KeyHandle, NtStatus> {
        let p = self.path_of(parent, path)?;
        {
            let mut s = self.state();
            if s.faults
                .iter()
                .any(|f| matches!(f, Fault::Create(x) if p.ends_with(x.as_str())))
            {
                return Err(STATUS_ACCESS_DENIED);
            }
            let name = match parent {
                None => path.trim_matches('\\').to_string(),
                Some(_) => p.clone(),
            };
            s.keys.entry(p.clone()).or_insert(Key {
                name,
                volatile,
                ..Default::default()
            });
        }
        Ok(self.new_handle(p))
    }
    fn registry_close(&self, key: KeyHandle) {
        assert!(
            self.state().handles.remove(&key.0).is_some(),
            "double close of {key:?}"
        );
    }
    fn registry_query(&self, key: KeyHandle, name: &str) -> Result<RegValue, NtStatus> {
        let p = self.key_path(key)?;
        let s = self.state();
        let k = s.keys.get(&p).ok_or(STATUS_OBJECT_NAME_NOT_FOUND)?;
        k.values
            .get(&name.to_ascii_lowercase())
            .map(|v| v.1.clone())
            .ok_or(STATUS_OBJECT_NAME_NOT_FOUND)
    }
    fn registry_set(&self, key: KeyHandle, name: &str, value: &RegValue) -> Result<(), NtStatus> {
        let p = self.key_path(key)?;
        let mut s = self.state();
        let k = s.keys.get_mut(&p).ok_or(STATUS_OBJECT_NAME_NOT_FOUND)?;
        k.values
            .insert(name.to_ascii_lowercase(), (name.to_string(), value.clone()));
        Ok(())
    }
    fn registry_delete_value(&self, key: KeyHandle, name: &str) -> Result<(), NtStatus> {
        let p = self.key_path(key)?;
        let mut s = self.state();
        let k = s.keys.get_mut(&p).ok_or(STATUS_OBJECT_NAME_NOT_FOUND)?;
        k.values
            .remove(&name.to_ascii_lowercase())
            .map(|_| ())
            .ok_or(STATUS_OBJECT_NAME_NOT_FOUND)
    }
    fn registry_delete_key(&self, key: KeyHandle) -> Result<(), NtStatus> {
        let p = self.key_path(key)?;
        let prefix = format!("{p}\\");
        let mut s = self.state();
        if s.keys.keys().any(|k| k.starts_with(&prefix)) {
            return Err(STATUS_INVALID_PARAMETER);
        }
        s.keys
            .remove(&p)
            .map(|_| ())
            .ok_or(STATUS_OBJECT_NAME_NOT_FOUND)
    }
    fn registry_subkeys(&self, key: KeyHandle) -> Result<Vec<String>, NtStatus> {
        let p = self.key_path(key)?;
        let prefix = format!("{p}\\");
        let s = self.state();
        Ok(s.keys
            .iter()
            .filter(|(k, _)| {
                k.strip_prefix(&prefix)
                    .is_some_and(|rest| !rest.contains('\\'))
            })
            .map(|(_, key)| key.name.rsplit('\\').next().unwrap_or("").to_string())
            .collect())
    }
    fn read_physical(&self, address: u64, buffer: &mut [u8]) -> Result<(), NtStatus> {
        self.state().phys.read(address, buffer)
    }
    fn physical_memory_ranges(&self) -> Vec<MemoryRange> {
        vec![
            MemoryRange {
                start: 0x1000,
                length: 0x9_E000,
            },
            MemoryRange {
                start: 0x10_0000,
                length: 0xEFF0_0000,
            },
            MemoryRange {
                start: 0x1_0000_0000,
                length: 0x4000_0000,
            },
        ]
    }
    fn loaded_modules(&self) -> Result<Vec<ModuleInfo>, NtStatus> {
        let s = self.state();
        if s.faults.contains(&Fault::Modules) {
            return Err(STATUS_INSUFFICIENT_RESOURCES);
        }
        Ok(s.modules.clone())
    }
    fn register_callback(&self, kind: KernelCallback) -> Result<CallbackHandle, NtStatus> {
        let mut s = self.state();
        if s.faults.contains(&Fault::Callback(format!("{kind:?}"))) {
            return Err(STATUS_INSUFFICIENT_RESOURCES);
        }
        s.next_handle += 4;
        let h = s.next_handle;
        s.callbacks.insert(h, kind);
        Ok(CallbackHandle(h))
    }
    fn deregister_callback(&self, handle: CallbackHandle) {
        assert!(
            self.state().callbacks.remove(&handle.0).is_some(),
            "double deregistration"
        );
    }
    fn set_event(&self, _event: usize) {
        // xen.sys never signals caller events.
    }
    fn capture_processors(
        &self,
        at_high_level: &mut dyn FnMut(),
        at_dispatch_level: &mut dyn FnMut(),
    ) -> Result<(), NtStatus> {
        use common::irql::{model, DISPATCH_LEVEL, HIGH_LEVEL};
        model::raised(DISPATCH_LEVEL, || {
            model::raised(HIGH_LEVEL, &mut *at_high_level);
            at_dispatch_level();
        });
        Ok(())
    }
    fn read_tsc(&self) -> u64 {
        0
    }
}

/// Port and CPUID level fake of the platform (hypercalls answered by a closure).
pub struct FakeHv {
    pub cpuid: BTreeMap<u32, CpuidResult>,
    pub ports: Mutex<BTreeMap<u16, u32>>,
    pub writes: Mutex<Vec<(u16, PortWidth, u32)>>,
    pub calls: Mutex<Vec<(u32, [usize; 5])>>,
    pub answer: Box<dyn Fn(u32, [usize; 5]) -> isize + Send + Sync>,
}

fn regs(s: &[u8; 12]) -> (u32, u32, u32) {
    let w = |i: usize| u32::from_le_bytes([s[i], s[i + 1], s[i + 2], s[i + 3]]);
    (w(0), w(4), w(8))
}

impl FakeHv {
    /// A CPU from `vendor` with the Xen leaves at `base` (if any), max leaf `base + 2`.
    pub fn new(vendor: &[u8; 12], base: Option<u32>) -> Self {
        let mut cpuid = BTreeMap::new();
        let (b, d, c) = regs(vendor);
        cpuid.insert(
            0,
            CpuidResult {
                eax: 0xD,
                ebx: b,
                ecx: c,
                edx: d,
            },
        );
        if let Some(base) = base {
            let (b, c, d) = regs(b"XenVMMXenVMM");
            cpuid.insert(
                base,
                CpuidResult {
                    eax: base + 2,
                    ebx: b,
                    ecx: c,
                    edx: d,
                },
            );
        }
        FakeHv {
            cpuid,
            ports: Mutex::new(BTreeMap::new()),
            writes: Mutex::new(vec![]),
            calls: Mutex::new(vec![]),
            answer: Box::new(|_, _| 0),
        }
    }
}

impl Hypercall for FakeHv {
    fn hypercall(&self, op: u32, args: [usize; 5]) -> isize {
        self.calls.lock().unwrap().push((op, args));
        (self.answer)(op, args)
    }
    fn cpuid(&self, leaf: u32, _subleaf: u32) -> CpuidResult {
        self.cpuid.get(&leaf).copied().unwrap_or_default()
    }
    fn port_read(&self, port: u16, _width: PortWidth) -> u32 {
        self.ports
            .lock()
            .unwrap()
            .get(&port)
            .copied()
            .unwrap_or(0xFFFF_FFFF)
    }
    fn port_write(&self, port: u16, width: PortWidth, value: u32) {
        // A test double (the platform device): its record is not checked.
        let _host = common::irql::model::HostSide::enter();
        self.writes.lock().unwrap().push((port, width, value));
    }
}

/// A C log disposition appending each line to the `Mutex<Vec<String>>` at `argument`.
pub extern "C" fn collect_disposition(
    argument: *mut core::ffi::c_void,
    buffer: *mut core::ffi::c_char,
    length: u32,
) {
    // A test double (a child's C disposition): its record is not checked.
    let _host = common::irql::model::HostSide::enter();
    let sink = argument as *const Mutex<Vec<String>>;
    // SAFETY: the tests pass a live Mutex as the argument and xen passes `length` readable
    // bytes.
    let (sink, bytes) = unsafe {
        (
            &*sink,
            std::slice::from_raw_parts(buffer as *const u8, length as usize),
        )
    };
    sink.lock()
        .unwrap()
        .push(String::from_utf8_lossy(bytes).into_owned());
}

/// Read the hypercall argument struct at `address` (what the hypervisor does).
pub fn peek<T: Copy>(address: usize) -> T {
    // SAFETY: tests only pass addresses the code under test gave to the hypervisor: live,
    // aligned argument structs of type T for the duration of the call.
    unsafe { std::ptr::read(address as *const T) }
}

/// Write the hypercall argument struct at `address` (the hypervisor's answer).
pub fn poke<T: Copy>(address: usize, value: T) {
    // SAFETY: as for `peek`; the struct is writable (the wrappers pass `&mut`).
    unsafe { std::ptr::write(address as *mut T, value) }
}

impl FakeHv {
    /// A Xen CPU whose hypercalls are answered by `answer`.
    pub fn answering(answer: impl Fn(u32, [usize; 5]) -> isize + Send + Sync + 'static) -> Self {
        let mut hv = FakeHv::new(b"GenuineIntel", Some(0x4000_0000));
        hv.answer = Box::new(answer);
        hv
    }
}

#[cfg(test)]
mod dpc_tests {
    use super::*;
    use common::irql::{model, DISPATCH_LEVEL};

    struct Count(std::sync::Mutex<Vec<(u32, u8)>>);
    impl DpcRoutine for Count {
        fn run(&self, cpu: u32) {
            self.0.lock().unwrap().push((cpu, model::current()));
        }
    }

    #[test]
    fn fake_os_dpcs_run_below_dispatch_once_per_queueing() {
        let os = FakeOs::new();
        let r: &'static Count = Box::leak(Box::new(Count(Default::default())));
        assert_eq!(os.dpc_create(2, r), Err(STATUS_INVALID_PARAMETER));
        let d = os.dpc_create(1, r).unwrap();
        model::interrupt(9, || {
            assert!(os.dpc_queue(d));
            assert!(!os.dpc_queue(d));
            assert!(r.0.lock().unwrap().is_empty());
        })
        .unwrap();
        assert_eq!(*r.0.lock().unwrap(), [(1, DISPATCH_LEVEL)]);
        os.dpc_destroy(d);
        assert!(!os.dpc_queue(d));
        os.dpc_destroy(d);
        let log = os.state().log.clone();
        assert!(log.iter().any(|l| l.contains("out of range")), "{log:?}");
        assert_eq!(
            log.iter()
                .filter(|l| l.contains("unknown DPC handle"))
                .count(),
            2,
            "{log:?}"
        );
        assert_eq!(r.0.lock().unwrap().len(), 1);
    }
}
