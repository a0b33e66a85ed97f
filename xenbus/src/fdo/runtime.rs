//! The FDO runtime (`fdo.c`): the object that owns the active FDO's subsystems, brings
//! them up in the order of spec §5.2 step 7 and down in reverse, and runs the D3→D0 and
//! D0→D3 sequences (§5.4), the LATE resume callback and the hibernate paths.
//!
//! Lifetime: an [`Fdo`] and its subsystems are allocated once at FDO creation and live
//! as long as the driver image ([`Fdo::create`] returns `&'static Fdo`): C children keep
//! pointers into the interface providers, and the event-channel, suspend and watch
//! callbacks point back at the FDO. Destroy tears everything down logically (frames,
//! channels, watches, pages go back) without freeing the objects.
#![forbid(unsafe_code)]

use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use common::os::{KeyHandle, Os, Page, RegValue};
use common::sync::{HighLock, SpinLock};
use xen_include::api::XenApi;
use xen_include::status::{NtStatus, STATUS_UNSUCCESSFUL};
use xen_include::xen::xen::Virq;

use super::{default_supported_classes, distribution_record, free_distribution_slot, Children};
use crate::balloon::{Balloon, BalloonMemory, BalloonThread, BalloonXen};
use crate::console::{Console, WakeupSink};
use crate::debug::DebugEdge;
use crate::evtchn::Evtchn;
use crate::gnttab::Gnttab;
use crate::hole::{Hole, HoleMode};
use crate::interface::balloon::BalloonProvider;
use crate::interface::cache::CacheProvider;
use crate::interface::console::{ConsoleEvents, ConsoleProvider, XenConsoleSetup};
use crate::interface::debug::{DebugProvider, DriverCallback};
use crate::interface::evtchn::EvtchnProvider;
use crate::interface::gnttab::GnttabProvider;
use crate::interface::range_set::RangeSetProvider;
use crate::interface::shared_info::SharedInfoProvider;
use crate::interface::store::StoreProvider;
use crate::interface::suspend::SuspendProvider;
use crate::interface::unplug::UnplugProvider;
use crate::shared_info::SharedInfo;
use crate::store::{EvtchnStoreChannel, Store, WatchHandle};
use crate::suspend::{CallbackHandle, Phase, Suspend, SuspendCallback};
use crate::unplug::Unplug;
use crate::virq::{EvtchnVirqBinder, VirqAction, VirqHandler, Virqs};
use xen_include::api::LogLevel;
use xen_include::api::ModuleName;

/// Steps the FDO trace keeps.
const TRACE_STEPS: usize = 1024;

/// The FDO's system threads (spec §5.19).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FdoThread {
    /// Child enumeration, woken by the watch on `device`.
    Scan,
    /// Suspend, woken by the watch on `control/shutdown`.
    Suspend,
    /// Balloon, woken by the watch on `memory/target`.
    Balloon,
}

/// Why the runtime asks for a bug check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FdoBugCheck {
    /// The balloon did not reach its first target within 1200 s of start
    /// ("BALLOON INFLATION TIMEOUT").
    BalloonInflationTimeout,
    /// Entering hibernate while a child still holds the named interface.
    ReferencesAtHibernate(&'static str),
}

/// What the runtime needs the kernel to do (the WDM edge implements it).
pub trait FdoKernel: Sync {
    /// Address of the `KEVENT` that wakes `thread`; watches and the runtime set it through
    /// [`Os::set_event`].
    fn thread_event(&self, thread: FdoThread) -> usize;
    /// `IoInvalidateDeviceRelations(Pdo, BusRelations)`.
    fn invalidate_bus_relations(&self);
    /// `KeBugCheckEx`; a real kernel does not return.
    fn bug_check(&self, reason: FdoBugCheck);
}

/// The `Parameters` values and start options the FDO obeys (spec §5.2, §5.20).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FdoConfig {
    /// `UseMemoryHole` (default 1): hole pages by `decrease_reservation`; 0 = the PCI BAR.
    pub use_memory_hole: bool,
    /// `UseEvtchnFifoAbi` (default 1).
    pub use_evtchn_fifo_abi: bool,
    /// `UseEvtchnUpcall` (default 1): per-CPU upcall vectors, else the callback via only.
    pub use_evtchn_upcall: bool,
    /// `Enumerate` (default 1).
    pub enumerate: bool,
    /// `SupportedClasses`.
    pub supported_classes: Vec<String>,
    /// `SyntheticClasses`.
    pub synthetic_classes: Vec<String>,
    /// `XEN:WATCHDOG=<s>` (≥ 10 when set).
    pub watchdog: Option<u32>,
    /// Ballooning (off with `XEN:BALLOON=OFF`).
    pub balloon: bool,
}

impl Default for FdoConfig {
    fn default() -> Self {
        Self {
            use_memory_hole: true,
            use_evtchn_fifo_abi: true,
            use_evtchn_upcall: true,
            enumerate: true,
            supported_classes: default_supported_classes(),
            synthetic_classes: Vec::new(),
            watchdog: None,
            balloon: true,
        }
    }
}

fn dword(os: &dyn Os, key: Option<KeyHandle>, name: &str, default: bool) -> bool {
    match key.map(|k| os.registry_query(k, name)) {
        Some(Ok(RegValue::Dword(v))) => v != 0,
        _ => default,
    }
}

fn multi_sz(os: &dyn Os, key: Option<KeyHandle>, name: &str) -> Option<Vec<String>> {
    match key.map(|k| os.registry_query(k, name)) {
        Some(Ok(RegValue::MultiSz(v))) => Some(v),
        Some(Ok(RegValue::Sz(v))) => Some(alloc::vec![v]),
        _ => None,
    }
}

fn start_option(api: &dyn XenApi, prefix: &core::ffi::CStr) -> String {
    let mut buffer = [0u8; 128];
    match api.config_query_system_start_option(prefix, &mut buffer) {
        Ok(n) => String::from_utf8_lossy(buffer.get(..n).unwrap_or(&[])).into_owned(),
        Err(_) => String::new(),
    }
}

impl FdoConfig {
    /// Read xenbus's `Parameters` key (`None` = all defaults) and the start options.
    pub fn read(api: &dyn XenApi, os: &dyn Os, parameters: Option<KeyHandle>) -> Self {
        let mut config = Self {
            use_memory_hole: dword(os, parameters, crate::hole::USE_MEMORY_HOLE, true),
            use_evtchn_fifo_abi: dword(os, parameters, "UseEvtchnFifoAbi", true),
            use_evtchn_upcall: dword(os, parameters, "UseEvtchnUpcall", true),
            enumerate: dword(os, parameters, "Enumerate", true),
            ..Self::default()
        };
        if let Some(classes) = multi_sz(os, parameters, "SupportedClasses") {
            config.supported_classes = classes;
        }
        if let Some(classes) = multi_sz(os, parameters, "SyntheticClasses") {
            config.synthetic_classes = classes;
        }
        config.watchdog = super::watchdog_seconds(&start_option(api, c"XEN:WATCHDOG="));
        config.balloon = crate::balloon::enabled(&start_option(api, c"XEN:BALLOON="));
        config
    }
}

/// What START_DEVICE gave the FDO (spec §5.3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FdoResources {
    /// The message-interrupt vector programmed as every CPU's upcall vector (None = no
    /// per-CPU upcalls were granted).
    pub upcall_vector: Option<u8>,
    /// `HVM_PARAM_CALLBACK_IRQ`: the line interrupt's GSI (callback via for CPU 0).
    pub callback_via: u64,
    /// The platform device's first memory BAR as (first frame, frames), for
    /// `UseMemoryHole=0`.
    pub memory_bar: Option<(u64, u64)>,
}

/// Delegates the XenApi edge to the traits of the cores that log through it.
struct ApiEdge(&'static dyn XenApi);

impl DebugEdge for ApiEdge {
    fn info(&self, text: &str) {
        DebugEdge::info(self.0, text)
    }
    fn warning(&self, text: &str) {
        DebugEdge::warning(self.0, text)
    }
    fn module_of(&self, address: usize) -> Option<(ModuleName, usize)> {
        DebugEdge::module_of(self.0, address)
    }
}

impl BalloonXen for ApiEdge {
    fn decrease_reservation(&self, pfns: &mut [usize]) -> Result<u32, NtStatus> {
        BalloonXen::decrease_reservation(self.0, pfns)
    }
    fn populate_physmap(&self, pfns: &mut [usize]) -> Result<u32, NtStatus> {
        BalloonXen::populate_physmap(self.0, pfns)
    }
    fn log(&self, level: LogLevel, text: &str) {
        BalloonXen::log(self.0, level, text)
    }
}

/// Console wakeups set through the Os edge (`KeSetEvent`).
struct OsWakeups(&'static dyn Os);

impl WakeupSink for OsWakeups {
    fn set_event(&self, event: usize) {
        self.0.set_event(event)
    }
}

/// Console channel events reach the console core once it exists.
/// HIGH_LEVEL: read by the console channel's event callback in the ISR.
struct ConsoleRelay(HighLock<Option<&'static ConsoleProvider<'static>>>);

impl ConsoleEvents for ConsoleRelay {
    fn event(&self) {
        let provider = *self.0.lock();
        if let Some(p) = provider {
            p.console().event();
        }
    }
}

/// The balloon's page allocator over the Os edge: one `Os::alloc_page` per frame (the
/// pages are remembered so they can be handed back after `populate_physmap`). The WDM
/// edge may supply the kernel's MDL allocator instead.
pub struct OsBalloonMemory {
    os: &'static dyn Os,
    pages: SpinLock<alloc::collections::BTreeMap<u64, Page>>,
}

impl OsBalloonMemory {
    /// An allocator over `os`.
    pub fn new(os: &'static dyn Os) -> Self {
        Self {
            os,
            pages: SpinLock::new(alloc::collections::BTreeMap::new()),
        }
    }
}

impl BalloonMemory for OsBalloonMemory {
    fn low_memory(&self) -> bool {
        false
    }
    fn allocate(&self, count: usize, pfns: &mut Vec<u64>) {
        for _ in 0..count {
            let Some(page) = self.os.alloc_page() else {
                break;
            };
            if pfns.try_reserve(1).is_err() {
                self.os.free_page(page);
                break;
            }
            pfns.push(page.pfn);
            self.pages.lock().insert(page.pfn, page);
        }
    }
    fn give_back(&self, pfns: &[u64]) {
        for pfn in pfns {
            let page = self.pages.lock().remove(pfn);
            if let Some(page) = page {
                self.os.free_page(page);
            }
        }
    }
    fn now_100ns(&self) -> u64 {
        u64::try_from(self.os.system_time()).unwrap_or(0)
    }
}

/// The balloon of the active FDO.
pub struct BalloonParts {
    /// The core.
    pub balloon: &'static Balloon<'static>,
    /// The thread's state.
    pub thread: &'static BalloonThread<'static>,
    /// The internal BALLOON interface.
    pub provider: &'static BalloonProvider<'static>,
}

/// The active FDO's subsystems and their interface providers (spec §5.2 step 7).
pub struct Subsystems {
    /// DEBUG.
    pub debug: &'static DebugProvider<'static>,
    /// SUSPEND core.
    pub suspend: &'static Suspend,
    /// SUSPEND interface.
    pub suspend_provider: &'static SuspendProvider,
    /// SHARED_INFO core.
    pub shared_info: &'static SharedInfo,
    /// SHARED_INFO interface.
    pub shared_info_provider: &'static SharedInfoProvider,
    /// EVTCHN core.
    pub evtchn: &'static Evtchn,
    /// EVTCHN interface.
    pub evtchn_provider: &'static EvtchnProvider,
    /// RANGE_SET interface.
    pub range_set: &'static RangeSetProvider,
    /// CACHE interface.
    pub cache: &'static CacheProvider<'static>,
    /// GNTTAB core.
    pub gnttab: &'static Gnttab,
    /// GNTTAB interface.
    pub gnttab_provider: &'static GnttabProvider,
    /// STORE core.
    pub store: &'static Store,
    /// STORE interface.
    pub store_provider: &'static StoreProvider,
    /// CONSOLE interface (and core).
    pub console: &'static ConsoleProvider<'static>,
    /// UNPLUG interface (and core).
    pub unplug: &'static UnplugProvider<'static>,
    /// BALLOON, unless `XEN:BALLOON=OFF`.
    pub balloon: Option<BalloonParts>,
}

fn leak<T>(value: T) -> &'static T {
    Box::leak(Box::new(value))
}

/// What the `__FdoD3ToD0` half set up (undone by `__FdoD0ToD3`).
#[derive(Default)]
struct Work {
    driver_slot: Option<u32>,
    virqs: Option<Arc<Virqs<'static>>>,
    disposition: Option<usize>,
    watches: Vec<WatchHandle>,
    features: Vec<&'static [u8]>,
}

/// What the acquire half of D3→D0 set up.
struct Up {
    resources: FdoResources,
    hole: Arc<Hole<'static>>,
    callbacks: Vec<CallbackHandle>,
    shared_info: bool,
    gnttab: bool,
    console: bool,
    fdo_late: Option<CallbackHandle>,
    fdo_debug: Option<usize>,
}

#[derive(Default)]
struct Power {
    d0: bool,
    up: Option<Up>,
    work: Option<Work>,
}

/// The FDO: identity, configuration and (when active) the subsystems.
pub struct Fdo {
    api: &'static dyn XenApi,
    os: &'static dyn Os,
    kernel: &'static dyn FdoKernel,
    vendor_name: String,
    active: bool,
    config: FdoConfig,
    parameters: Option<KeyHandle>,
    subsystems: Option<Subsystems>,
    power: SpinLock<Power>,
    /// HIGH_LEVEL: the D0 work's VIRQs (a copy of `power.work.virqs`), read by the VIRQ
    /// handler in the ISR.
    virqs: HighLock<Option<Arc<Virqs<'static>>>>,
    store_channel: SpinLock<Option<Arc<EvtchnStoreChannel>>>,
    vectors: SpinLock<Option<Vec<Option<u8>>>>,
    debug_callback: SpinLock<Option<&'static DriverCallback>>,
    /// `ConsoleLogLevel` as last read at D0 entry (reused by a resume).
    console_log_level: SpinLock<Option<xen_include::api::LogLevel>>,
    virq_binder: SpinLock<Option<&'static EvtchnVirqBinder>>,
    pub(super) children: SpinLock<Children>,
    pub(super) exclusion: AtomicBool,
    pub(super) balloon_settled: AtomicBool,
    pub(super) balloon_warned: AtomicBool,
    destroyed: AtomicBool,
    /// HIGH_LEVEL (the resume's early steps record here); capacity reserved at creation.
    trace: HighLock<Vec<&'static str>>,
    debug_virqs: AtomicU64,
    timer_virqs: AtomicU64,
    debug_dumps: AtomicU64,
}

/// Everything [`Fdo::create`] needs.
pub struct FdoSetup {
    /// xen.sys.
    pub api: &'static dyn XenApi,
    /// The kernel.
    pub os: &'static dyn Os,
    /// The kernel actions of this FDO.
    pub kernel: &'static dyn FdoKernel,
    /// The balloon's page allocator.
    pub balloon_memory: &'static dyn BalloonMemory,
    /// xenbus's open `Parameters` key (None: defaults).
    pub parameters: Option<KeyHandle>,
    /// `<VENDOR_PREFIX><device id>` of the platform device.
    pub vendor_name: String,
    /// The decision of `decide_active`.
    pub active: bool,
}

/// A resume step registered with SUSPEND.
struct Step {
    fdo: &'static Fdo,
    step: ResumeStep,
}

#[derive(Clone, Copy, Debug)]
enum ResumeStep {
    EvtchnEarly,
    SharedInfoEarly,
    GnttabEarly,
    StoreEarly,
    EvtchnLate,
    StoreLate,
    ConsoleLate,
    FdoLate,
}

impl SuspendCallback for Step {
    fn call(&self) {
        self.fdo.resume_step(self.step);
    }
    fn describe(&self, _api: &dyn XenApi, out: &mut dyn core::fmt::Write) -> core::fmt::Result {
        write!(out, "xenbus FDO {:?}", self.step)
    }
}

impl Fdo {
    /// FDO creation (spec §5.2): read the configuration, record the EMULATED subscription
    /// and, for the active FDO, initialise the subsystems in the order Debug, Suspend,
    /// SharedInfo, Evtchn, RangeSet, Cache, Gnttab, Store, Console, Unplug, Balloon.
    pub fn create(setup: FdoSetup) -> &'static Fdo {
        let FdoSetup {
            api,
            os,
            kernel,
            balloon_memory,
            parameters,
            vendor_name,
            active,
        } = setup;
        let config = FdoConfig::read(api, os, parameters);
        if let Err(e) = crate::subscription::record(os) {
            warning!(api, "FDO: subscription not recorded ({e:08X})");
        }
        let mut trace = Vec::new();
        let _ = trace.try_reserve_exact(TRACE_STEPS);
        let subsystems = active
            .then(|| Self::initialise(api, os, balloon_memory, parameters, &config, &mut trace));
        info!(
            api,
            "FDO: {vendor_name} created ({})",
            if active { "active" } else { "inactive" }
        );
        leak(Fdo {
            api,
            os,
            kernel,
            vendor_name,
            active,
            config,
            parameters,
            subsystems,
            power: SpinLock::new(Power::default()),
            virqs: HighLock::new(None),
            store_channel: SpinLock::new(None),
            vectors: SpinLock::new(None),
            debug_callback: SpinLock::new(None),
            console_log_level: SpinLock::new(None),
            virq_binder: SpinLock::new(None),
            children: SpinLock::new(Children::new()),
            exclusion: AtomicBool::new(false),
            balloon_settled: AtomicBool::new(false),
            balloon_warned: AtomicBool::new(false),
            destroyed: AtomicBool::new(false),
            trace: HighLock::new(trace),
            debug_virqs: AtomicU64::new(0),
            timer_virqs: AtomicU64::new(0),
            debug_dumps: AtomicU64::new(0),
        })
    }

    fn initialise(
        api: &'static dyn XenApi,
        os: &'static dyn Os,
        balloon_memory: &'static dyn BalloonMemory,
        parameters: Option<KeyHandle>,
        config: &FdoConfig,
        trace: &mut Vec<&'static str>,
    ) -> Subsystems {
        let edge: &'static ApiEdge = leak(ApiEdge(api));
        let debug = leak(DebugProvider::new(edge));
        trace.push("initialise debug");
        let suspend = leak(Suspend::new(api, os));
        let suspend_provider = leak(SuspendProvider::new(suspend));
        trace.push("initialise suspend");
        let shared_info = leak(SharedInfo::new(api, os));
        let shared_info_provider = leak(SharedInfoProvider::new(shared_info));
        trace.push("initialise shared_info");
        let evtchn = leak(Evtchn::new(api, os, shared_info));
        let evtchn_provider = leak(EvtchnProvider::new(evtchn));
        trace.push("initialise evtchn");
        let range_set = leak(RangeSetProvider::new());
        trace.push("initialise range_set");
        let cache = leak(CacheProvider::with_os(os, Some(api)));
        trace.push("initialise cache");
        let gnttab = leak(Gnttab::new(api, os));
        let gnttab_provider = leak(GnttabProvider::new(gnttab));
        trace.push("initialise gnttab");
        let seed = (os.system_time() as u32) ^ 0x5eed_0001;
        let store = leak(Store::new(api, os, seed));
        let store_provider = leak(StoreProvider::new(store));
        trace.push("initialise store");
        let relay: &'static ConsoleRelay = leak(ConsoleRelay(HighLock::new(None)));
        let setup = leak(XenConsoleSetup::new(api, os, gnttab, evtchn, relay));
        let wakeups: &'static OsWakeups = leak(OsWakeups(os));
        let console = leak(ConsoleProvider::new(Console::new(api, wakeups), setup));
        *relay.0.lock() = Some(console);
        trace.push("initialise console");
        let unplug = leak(UnplugProvider::new(Unplug::new(api, parameters)));
        trace.push("initialise unplug");
        let balloon = config.balloon.then(|| {
            let balloon = leak(Balloon::new(edge, balloon_memory));
            trace.push("initialise balloon");
            BalloonParts {
                balloon,
                thread: leak(BalloonThread::new(balloon)),
                provider: leak(BalloonProvider::new(balloon)),
            }
        });
        Subsystems {
            debug,
            suspend,
            suspend_provider,
            shared_info,
            shared_info_provider,
            evtchn,
            evtchn_provider,
            range_set,
            cache,
            gnttab,
            gnttab_provider,
            store,
            store_provider,
            console,
            unplug,
            balloon,
        }
    }

    /// The event-channel ISR (per-CPU upcall vector or the callback via on CPU 0): take
    /// `cpu`'s upcall-pending flag and queue its delivery DPC (no lock, no allocation).
    /// True when the upcall was pending.
    pub fn interrupt(&self, cpu: u32) -> bool {
        self.subsystems
            .as_ref()
            .is_some_and(|s| s.evtchn.interrupt(cpu))
    }

    /// Whether this is the active FDO.
    pub fn is_active(&self) -> bool {
        self.active
    }

    /// The configuration read at creation.
    pub fn config(&self) -> &FdoConfig {
        &self.config
    }

    /// The vendor name (`<VENDOR_PREFIX><device id>`).
    pub fn vendor_name(&self) -> &str {
        &self.vendor_name
    }

    /// The subsystems (active FDO only).
    pub fn subsystems(&self) -> Option<&Subsystems> {
        self.subsystems.as_ref()
    }

    /// Whether the FDO is in D0.
    pub fn is_d0(&self) -> bool {
        self.power.lock().d0
    }

    /// Steps taken so far (initialise / acquire / release, resume callbacks), in order.
    pub fn trace(&self) -> Vec<&'static str> {
        // Copied into room made before taking the HIGH_LEVEL lock.
        let mut steps = Vec::with_capacity(TRACE_STEPS);
        steps.extend_from_slice(&self.trace.lock());
        steps
    }

    /// `VIRQ_DEBUG` and `VIRQ_TIMER` events handled.
    pub fn virq_counts(&self) -> (u64, u64) {
        (
            self.debug_virqs.load(Ordering::Acquire),
            self.timer_virqs.load(Ordering::Acquire),
        )
    }

    /// Times the `xenbus|FDO` debug callback ran.
    pub fn debug_dumps(&self) -> u64 {
        self.debug_dumps.load(Ordering::Acquire)
    }

    /// The watchdog timeout in force (D0, `XEN:WATCHDOG` set and armed).
    pub fn watchdog_seconds(&self) -> Option<u32> {
        self.virqs
            .lock()
            .as_ref()
            .and_then(|v| v.watchdog_seconds())
    }

    /// The `drivers/<n>` slot this FDO wrote (D0).
    pub fn driver_slot(&self) -> Option<u32> {
        self.power.lock().work.as_ref().and_then(|w| w.driver_slot)
    }

    pub(super) fn api(&self) -> &'static dyn XenApi {
        self.api
    }

    pub(super) fn kernel(&self) -> &'static dyn FdoKernel {
        self.kernel
    }

    pub(super) fn os(&self) -> &'static dyn Os {
        self.os
    }

    pub(super) fn parameters(&self) -> Option<KeyHandle> {
        self.parameters
    }

    /// Make `virqs` the ones the VIRQ handler sees; the old ones are let go after the
    /// HIGH_LEVEL lock.
    fn publish_virqs(&self, virqs: Option<Arc<Virqs<'static>>>) {
        let old = core::mem::replace(&mut *self.virqs.lock(), virqs);
        drop(old);
    }

    fn note(&self, step: &'static str) {
        self.record(step);
        info!(self.api, "FDO: {step}");
    }

    /// Add `step` to the trace without allocating (the resume's early steps run at
    /// HIGH_LEVEL): the trace keeps its last [`TRACE_STEPS`] steps.
    fn record(&self, step: &'static str) {
        let mut trace = self.trace.lock();
        if trace.capacity() == 0 {
            return;
        }
        if trace.len() == trace.capacity() {
            trace.remove(0);
        }
        trace.push(step);
    }

    /// Set `thread`'s event (START's kicks, the balloon/suspend mutex hand-over).
    pub fn wake_thread(&self, thread: FdoThread) {
        self.wake(thread)
    }

    pub(super) fn wake(&self, thread: FdoThread) {
        self.os.set_event(self.kernel.thread_event(thread));
    }

    /// Device power D3→D0 (`FdoD3ToD0`, spec §5.4): acquire DEBUG, SUSPEND, RANGE_SET,
    /// the hole, SHARED_INFO and EVTCHN (ABI and upcalls as configured), GNTTAB, STORE,
    /// CONSOLE (optional), BALLOON; register the subsystems' resume callbacks; then the
    /// D0 work (`__FdoD3ToD0`) and the FDO's LATE callback. Inactive FDOs only change
    /// state.
    pub fn d3_to_d0(&'static self, resources: FdoResources) -> Result<(), NtStatus> {
        if self.power.lock().d0 {
            return Ok(());
        }
        let Some(s) = self.subsystems.as_ref() else {
            self.power.lock().d0 = true;
            return Ok(());
        };
        let up = self.acquire(s, resources)?;
        {
            let mut power = self.power.lock();
            power.up = Some(up);
            power.d0 = true;
        }
        let work = self.d0_work_up(s, true);
        let late = s.suspend.register(
            Phase::Late,
            Arc::new(Step {
                fdo: self,
                step: ResumeStep::FdoLate,
            }),
        );
        let debug = self.register_debug_callback(s);
        self.publish_virqs(work.virqs.clone());
        let mut power = self.power.lock();
        power.work = Some(work);
        if let Some(up) = power.up.as_mut() {
            up.fdo_late = late.ok();
            up.fdo_debug = debug;
        }
        Ok(())
    }

    /// Register the `xenbus|FDO` debug callback (VIRQ counts, watchdog, D0 work).
    fn register_debug_callback(&'static self, s: &Subsystems) -> Option<usize> {
        let callback = *self
            .debug_callback
            .lock()
            .get_or_insert_with(|| leak(leak(move |crashing: bool| self.debug_dump(crashing))));
        match s.debug.register_driver_callback(b"xenbus|FDO", callback) {
            Ok(id) => Some(id),
            Err(e) => {
                warning!(self.api, "FDO: debug callback not registered ({e:08X})");
                None
            }
        }
    }

    fn debug_dump(&self, crashing: bool) {
        let Some(s) = self.subsystems.as_ref() else {
            return;
        };
        self.debug_dumps.fetch_add(1, Ordering::AcqRel);
        let (debug, timer) = self.virq_counts();
        let mut line = crate::log::Line::new();
        let _ = core::fmt::Write::write_fmt(
            &mut line,
            format_args!(
                "VIRQ_DEBUG {debug} VIRQ_TIMER {timer} watchdog {:?} drivers/{:?} crashing {crashing}",
                self.watchdog_seconds(),
                // HIGH_LEVEL (a debug callback): never wait for the power lock.
                self.power
                    .try_lock()
                    .and_then(|p| p.work.as_ref().and_then(|w| w.driver_slot))
            ),
        );
        let _ = s.debug.printf(line.as_str());
        // The store's and the event channels' state (upstream registers each as its own
        // debug callback).
        s.store.debug_dump(crashing, &mut |l| {
            let _ = s.debug.printf(l);
        });
        s.evtchn.debug_dump(&mut |l| {
            let _ = s.debug.printf(l);
        });
        // And those of SUSPEND, SHARED_INFO and GNTTAB.
        let mut print = |l: &str| {
            let _ = s.debug.printf(l);
        };
        s.suspend.debug_dump(&mut print);
        s.shared_info.debug_dump(crashing, &mut print);
        s.gnttab.debug_dump(&mut print);
    }

    fn acquire(&'static self, s: &Subsystems, resources: FdoResources) -> Result<Up, NtStatus> {
        self.note("acquire debug");
        self.note("acquire suspend");
        self.note("acquire range_set");
        let mode = match (self.config.use_memory_hole, resources.memory_bar) {
            (true, _) => HoleMode::Reservation,
            (false, Some((first_pfn, pages))) => HoleMode::PciBar { first_pfn, pages },
            (false, None) => {
                warning!(
                    self.api,
                    "FDO: UseMemoryHole=0 without a memory BAR: using decrease_reservation"
                );
                HoleMode::Reservation
            }
        };
        let hole = Arc::new(Hole::new(self.api, self.os, mode)?);
        s.shared_info.set_hole(Some(hole.clone()));
        s.gnttab.set_hole(Some(hole.clone()));
        self.note("acquire hole");
        let mut up = Up {
            resources,
            hole,
            callbacks: Vec::new(),
            shared_info: false,
            gnttab: false,
            console: false,
            fdo_late: None,
            fdo_debug: None,
        };
        if let Err(e) = self.acquire_rest(s, &mut up) {
            self.release(s, up);
            return Err(e);
        }
        Ok(up)
    }

    fn register(&'static self, s: &Subsystems, up: &mut Up, phase: Phase, step: ResumeStep) {
        match s
            .suspend
            .register(phase, Arc::new(Step { fdo: self, step }))
        {
            Ok(handle) => up.callbacks.push(handle),
            Err(e) => error!(self.api, "FDO: resume callback not registered ({e:08X})"),
        }
    }

    /// Each processor's own upcall vector (the message interrupt START targeted at it),
    /// replacing [`FdoResources::upcall_vector`] for every CPU from the next D3→D0 or
    /// resume on. `None` entries leave that CPU on the callback via.
    pub fn set_upcall_vectors(&self, vectors: Vec<Option<u8>>) {
        *self.vectors.lock() = Some(vectors);
    }

    fn enable_interrupts(&self, evtchn: &'static Evtchn, resources: &FdoResources) {
        let vectors = self.vectors.lock().clone();
        let use_upcall = self.config.use_evtchn_upcall;
        evtchn.enable_interrupts_with(
            &|cpu| {
                if !use_upcall {
                    return None;
                }
                match vectors.as_ref() {
                    Some(v) => v.get(cpu as usize).copied().flatten(),
                    None => resources.upcall_vector,
                }
            },
            resources.callback_via,
        );
    }

    fn acquire_rest(&'static self, s: &Subsystems, up: &mut Up) -> Result<(), NtStatus> {
        let status = s.shared_info_provider.acquire();
        if status != xen_include::status::STATUS_SUCCESS {
            return Err(status);
        }
        up.shared_info = true;
        self.note("acquire shared_info");
        s.evtchn.use_fifo(self.config.use_evtchn_fifo_abi);
        self.enable_interrupts(s.evtchn, &up.resources);
        self.note("acquire evtchn");
        self.register(s, up, Phase::Early, ResumeStep::EvtchnEarly);
        self.register(s, up, Phase::Early, ResumeStep::SharedInfoEarly);
        s.gnttab_provider.acquire()?;
        up.gnttab = true;
        self.note("acquire gnttab");
        self.register(s, up, Phase::Early, ResumeStep::GnttabEarly);
        let channel = s.store.acquire(s.gnttab, s.evtchn)?;
        *self.store_channel.lock() = Some(channel);
        self.note("acquire store");
        self.register(s, up, Phase::Early, ResumeStep::StoreEarly);
        self.register(s, up, Phase::Late, ResumeStep::EvtchnLate);
        self.register(s, up, Phase::Late, ResumeStep::StoreLate);
        match s.console.acquire() {
            Ok(()) => {
                up.console = true;
                self.note("acquire console");
                self.register(s, up, Phase::Late, ResumeStep::ConsoleLate);
            }
            Err(e) => warning!(self.api, "FDO: no console ({e:08X})"),
        }
        if s.balloon.is_some() {
            self.note("acquire balloon");
        }
        Ok(())
    }

    /// Release in the reverse order of [`Fdo::acquire`].
    fn release(&self, s: &Subsystems, up: Up) {
        for handle in up.callbacks.iter().rev() {
            s.suspend.deregister(*handle);
        }
        if let Some(b) = s.balloon.as_ref() {
            if b.balloon.check_release().is_err() {
                error!(self.api, "FDO: BALLOON released while inflated");
            }
            self.note("release balloon");
        }
        if up.console {
            s.console.release();
            self.note("release console");
        }
        if let Some(channel) = self.store_channel.lock().take() {
            s.store.disconnect();
            channel.close();
            self.note("release store");
        }
        if up.gnttab {
            s.gnttab_provider.release();
            self.note("release gnttab");
        }
        if up.shared_info {
            s.evtchn.disable_interrupts();
            s.evtchn.destroy_dpcs();
            s.evtchn.use_fifo(false);
            if s.evtchn.open_channels() != 0 {
                error!(
                    self.api,
                    "FDO: {} event channels still open at EVTCHN release",
                    s.evtchn.open_channels()
                );
            }
            self.note("release evtchn");
            s.shared_info_provider.release();
            self.note("release shared_info");
        }
        s.shared_info.set_hole(None);
        s.gnttab.set_hole(None);
        drop(up.hole);
        self.note("release hole");
        self.note("release range_set");
        self.note("release suspend");
        self.note("release debug");
    }

    /// `__FdoD3ToD0`: the `drivers/<n>` record, VIRQs, the console log disposition, the
    /// watches (`device`, `control/shutdown`, `memory/target`) and the feature keys.
    /// `passive`: called at PASSIVE_LEVEL (D0 entry), else from the resume's
    /// DISPATCH_LEVEL phase.
    fn d0_work_up(&'static self, s: &Subsystems, passive: bool) -> Work {
        let mut work = Work::default();
        let store = s.store;
        let names = directory(store, b"drivers");
        work.driver_slot = free_distribution_slot(names.iter().map(String::as_str));
        if let Some(slot) = work.driver_slot {
            let record = distribution_record(&self.vendor_name, xenbus_rs::version());
            let key = alloc::format!("drivers/{slot}");
            if let Err(e) = store.write(None, None, key.as_bytes(), record.as_bytes()) {
                warning!(self.api, "FDO: {key} not written ({e:08X})");
                work.driver_slot = None;
            }
        }
        let binder = {
            let mut slot = self.virq_binder.lock();
            *slot.get_or_insert_with(|| leak(EvtchnVirqBinder::new(s.evtchn, self)))
        };
        work.virqs = Some(Arc::new(Virqs::start(
            self.api,
            binder,
            self.os.processor_count(),
            self.config.watchdog,
        )));
        // `ConsoleLogLevel` is read at PASSIVE_LEVEL (D0 entry); a resume runs this at
        // DISPATCH_LEVEL, where the registry is out of bounds, and reuses the last value.
        let level = match (self.parameters, passive) {
            (Some(key), true) => {
                let level = self.api.log_read_log_level(key, c"ConsoleLogLevel").ok();
                *self.console_log_level.lock() = level;
                level
            }
            (Some(_), false) => *self.console_log_level.lock(),
            (None, _) => None,
        };
        if let (Some(mask), true) = (level, s.console.references() != 0) {
            match crate::interface::console::add_static_log_disposition(self.api, mask, s.console) {
                Ok(d) => work.disposition = d,
                Err(e) => warning!(self.api, "FDO: no console log ({e:08X})"),
            }
        }
        let mut watch = |path: &[u8], thread: FdoThread| match store.watch_add(
            None,
            path,
            self.kernel.thread_event(thread),
        ) {
            Ok(w) => work.watches.push(w),
            Err(e) => warning!(self.api, "FDO: watch not added ({e:08X})"),
        };
        watch(b"device", FdoThread::Scan);
        watch(b"control/shutdown", FdoThread::Suspend);
        if s.balloon.is_some() {
            watch(b"memory/target", FdoThread::Balloon);
        }
        let mut feature = |path: &'static [u8]| match store.write(None, None, path, b"1") {
            Ok(()) => work.features.push(path),
            Err(e) => warning!(self.api, "FDO: feature key not written ({e:08X})"),
        };
        feature(b"control/feature-suspend");
        if s.balloon.is_some() {
            feature(b"control/feature-balloon");
        }
        work
    }

    /// `__FdoD0ToD3`: undo [`Fdo::d0_work_up`] in reverse.
    fn d0_work_down(&self, s: &Subsystems, work: Work) {
        for path in work.features.iter().rev() {
            let _ = s.store.remove(None, None, path);
        }
        for w in work.watches.iter().rev() {
            let _ = s.store.watch_remove(*w);
        }
        if let Some(d) = work.disposition {
            self.api.log_remove_disposition(d);
        }
        if let Some(v) = work.virqs {
            v.stop();
        }
        if let Some(slot) = work.driver_slot {
            let key = alloc::format!("drivers/{slot}");
            let _ = s.store.remove(None, None, key.as_bytes());
        }
    }

    /// Device power D0→D3 (`FdoD0ToD3`): deregister the FDO's LATE callback, undo the D0
    /// work, then release the subsystems in reverse.
    pub fn d0_to_d3(&self) {
        let (up, work) = {
            let mut power = self.power.lock();
            if !power.d0 {
                return;
            }
            power.d0 = false;
            (power.up.take(), power.work.take())
        };
        self.publish_virqs(None);
        let Some(s) = self.subsystems.as_ref() else {
            return;
        };
        if let Some(handle) = up.as_ref().and_then(|u| u.fdo_late) {
            s.suspend.deregister(handle);
        }
        if let Some(id) = up.as_ref().and_then(|u| u.fdo_debug) {
            let _ = s.debug.debug().deregister(id);
        }
        if let Some(work) = work {
            self.d0_work_down(s, work);
        }
        if let Some(up) = up {
            self.release(s, up);
        }
    }

    fn resume_step(&'static self, step: ResumeStep) {
        let Some(s) = self.subsystems.as_ref() else {
            return;
        };
        match step {
            ResumeStep::EvtchnEarly => {
                self.record("early evtchn");
                s.evtchn.suspend_early();
            }
            ResumeStep::SharedInfoEarly => {
                self.record("early shared_info");
                s.shared_info.suspend_early();
            }
            ResumeStep::GnttabEarly => {
                self.record("early gnttab");
                s.gnttab.suspend_early();
            }
            ResumeStep::StoreEarly => {
                self.record("early store");
                s.store.suspend_early();
            }
            ResumeStep::EvtchnLate => {
                self.note("late evtchn");
                let resources = self.power.lock().up.as_ref().map(|u| u.resources);
                let resources = resources.unwrap_or_default();
                s.evtchn.disable_interrupts();
                s.evtchn.resume_abi(self.config.use_evtchn_fifo_abi);
                self.enable_interrupts(s.evtchn, &resources);
            }
            ResumeStep::StoreLate => {
                self.note("late store");
                if let Some(old) = self.store_channel.lock().take() {
                    old.close();
                }
                let ring = s
                    .gnttab
                    .query_reference(xen_include::xen::grant_table::GNTTAB_RESERVED_XENSTORE)
                    .ok()
                    .and_then(|(frame, _)| crate::shared::map_pfn(self.os, frame));
                let mut opened = EvtchnStoreChannel::open(self.api, s.evtchn, s.store);
                if let Err(e) = &opened {
                    if s.evtchn.fifo_active() {
                        // The new host's FIFO ABI could not give the store's port an event
                        // word (EVTCHNOP_expand_array refused): without it the store would
                        // never hear from xenstored again. Leave FIFO (the reset re-binds
                        // the store's port and rewrites its HVM parameter) and retry in the
                        // 2-level ABI, which needs no pages.
                        warning!(
                            self.api,
                            "FDO: store channel refused in the FIFO ABI ({e:08X}), using 2-level"
                        );
                        s.evtchn.use_fifo(false);
                        opened = EvtchnStoreChannel::open(self.api, s.evtchn, s.store);
                    }
                }
                match (opened, ring) {
                    (Ok(channel), Some(ring)) => {
                        let channel = Arc::new(channel);
                        *self.store_channel.lock() = Some(channel.clone());
                        s.store.resume_late(ring, channel);
                    }
                    _ => error!(self.api, "FDO: store not reconnected after resume"),
                }
            }
            ResumeStep::ConsoleLate => {
                self.note("late console");
                if let Err(e) = s.console.resume_late() {
                    warning!(self.api, "FDO: console not re-opened ({e:08X})");
                }
            }
            ResumeStep::FdoLate => {
                self.note("late fdo");
                let work = self.power.lock().work.take();
                self.publish_virqs(None);
                if let Some(work) = work {
                    self.d0_work_down(s, work);
                }
                let work = self.d0_work_up(s, false);
                self.publish_virqs(work.virqs.clone());
                self.power.lock().work = Some(work);
            }
        }
    }

    /// Entering hibernate (`FdoS3ToS4`): every child must have released SUSPEND,
    /// SHARED_INFO, EVTCHN, STORE, CONSOLE, GNTTAB and BALLOON, else bug check.
    pub fn s3_to_s4(&self) -> Result<(), FdoBugCheck> {
        let Some(s) = self.subsystems.as_ref() else {
            return Ok(());
        };
        let held = [
            ("SUSPEND", s.suspend_provider.references()),
            ("SHARED_INFO", s.shared_info_provider.references()),
            ("EVTCHN", s.evtchn_provider.references()),
            ("STORE", s.store_provider.references()),
            ("CONSOLE", s.console.references()),
            ("GNTTAB", s.gnttab_provider.references()),
            (
                "BALLOON",
                s.balloon.as_ref().map_or(0, |b| b.provider.references()),
            ),
        ];
        self.note("hibernate entry");
        if let Some((name, _)) = held.iter().find(|(_, r)| *r != 0) {
            error!(self.api, "FDO: {name} still referenced at hibernate");
            let reason = FdoBugCheck::ReferencesAtHibernate(name);
            self.kernel.bug_check(reason);
            return Err(reason);
        }
        Ok(())
    }

    /// Leaving hibernate (`FdoS4ToS3`): `LogResume` and the unplug again.
    pub fn s4_to_s3(&self) {
        let Some(s) = self.subsystems.as_ref() else {
            return;
        };
        self.note("hibernate exit");
        self.api.log_resume();
        s.unplug.unplug().resume_from_hibernate();
    }

    /// FDO destroy (spec §5.2 step 9): leave D0 if needed and, for the active FDO, clear
    /// the active-device record.
    pub fn destroy(&self) {
        if self.destroyed.swap(true, Ordering::AcqRel) {
            return;
        }
        self.d0_to_d3();
        self.children.lock().mark_all_missing();
        if self.active {
            if let Err(e) = self.api.config_clear_active() {
                warning!(self.api, "FDO: active record not cleared ({e:08X})");
            }
            self.note("destroy");
        }
    }

    /// PnP QUERY_STOP / QUERY_REMOVE: vetoed while the balloon holds frames.
    pub fn veto_stop(&self) -> bool {
        self.subsystems
            .as_ref()
            .and_then(|s| s.balloon.as_ref())
            .is_some_and(|b| b.balloon.veto_removal())
    }

    /// `STATUS_UNSUCCESSFUL` when [`Fdo::veto_stop`].
    pub fn query_stop(&self) -> Result<(), NtStatus> {
        if self.veto_stop() {
            Err(STATUS_UNSUCCESSFUL)
        } else {
            Ok(())
        }
    }
}

impl VirqHandler for Fdo {
    fn fired(&self, virq: Virq, cpu: u32) {
        let virqs = self.virqs.lock().clone();
        let Some(virqs) = virqs else { return };
        match virqs.fired(virq, cpu) {
            VirqAction::DumpDebug => {
                self.debug_virqs.fetch_add(1, Ordering::AcqRel);
                if let Some(s) = self.subsystems.as_ref() {
                    s.debug.virq_debug();
                }
            }
            VirqAction::Tick(_) => {
                self.timer_virqs.fetch_add(1, Ordering::AcqRel);
            }
            VirqAction::Ignored => {}
        }
    }
}

/// The names under `node` (none when absent).
pub(super) fn directory(store: &Store, node: &[u8]) -> Vec<String> {
    match store.directory(None, None, node) {
        Ok(bytes) => bytes
            .split(|&b| b == 0)
            .filter(|s| !s.is_empty())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}
