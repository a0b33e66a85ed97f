//! `IRP_MN_QUERY_INTERFACE` on a child PDO (spec §2.1, §5.18): the table GUID → the
//! interface module's `get_interface`, the bus-standard interface rules, and the DMA
//! adapter choice. The PDO machine classifies the GUID; the runtime's services call
//! [`query`] with the FDO's providers to fill the caller's buffer.

use core::ffi::c_void;

use common::pnp::{InterfaceQuery, GUID_BUS_INTERFACE_STANDARD};
use xen_include::guid::Guid;
use xen_include::interfaces::{
    cache::GUID_XENBUS_CACHE_INTERFACE, console::GUID_XENBUS_CONSOLE_INTERFACE,
    debug::GUID_XENBUS_DEBUG_INTERFACE, emulated::GUID_XENFILT_EMULATED_INTERFACE,
    evtchn::GUID_XENBUS_EVTCHN_INTERFACE, gnttab::GUID_XENBUS_GNTTAB_INTERFACE,
    range_set::GUID_XENBUS_RANGE_SET_INTERFACE, shared_info::GUID_XENBUS_SHARED_INFO_INTERFACE,
    store::GUID_XENBUS_STORE_INTERFACE, suspend::GUID_XENBUS_SUSPEND_INTERFACE,
    unplug::GUID_XENBUS_UNPLUG_INTERFACE,
};
use xen_include::status::{NtStatus, STATUS_BUFFER_TOO_SMALL, STATUS_NOT_SUPPORTED};

use super::{
    cache::CacheProvider, console::ConsoleProvider, debug::DebugProvider, evtchn::EvtchnProvider,
    gnttab::GnttabProvider, range_set::RangeSetProvider, shared_info::SharedInfoProvider,
    store::StoreProvider, suspend::SuspendProvider, unplug::UnplugProvider,
};

/// The XENBUS interfaces a child PDO serves (BALLOON is internal and not among them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XenbusInterface {
    /// XENBUS_DEBUG.
    Debug,
    /// XENBUS_SUSPEND.
    Suspend,
    /// XENBUS_SHARED_INFO.
    SharedInfo,
    /// XENBUS_EVTCHN.
    Evtchn,
    /// XENBUS_STORE.
    Store,
    /// XENBUS_RANGE_SET.
    RangeSet,
    /// XENBUS_CACHE.
    Cache,
    /// XENBUS_GNTTAB.
    Gnttab,
    /// XENBUS_UNPLUG.
    Unplug,
    /// XENBUS_CONSOLE.
    Console,
}

/// Who answers a QUERY_INTERFACE for a GUID.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Served {
    /// `GUID_BUS_INTERFACE_STANDARD`: the PDO's bus interface over the FDO's lower one.
    BusInterfaceStandard,
    /// A XENBUS interface from the FDO's providers.
    Xenbus(XenbusInterface),
    /// XENFILT_EMULATED: delegated to the FDO's stack (xenfilt sits below it).
    Delegated,
}

/// The PDO's interface table, in upstream's order.
pub const TABLE: [(Guid, &str, Served); 12] = [
    (
        GUID_BUS_INTERFACE_STANDARD,
        "BUS_INTERFACE",
        Served::BusInterfaceStandard,
    ),
    (
        GUID_XENBUS_DEBUG_INTERFACE,
        "DEBUG_INTERFACE",
        Served::Xenbus(XenbusInterface::Debug),
    ),
    (
        GUID_XENBUS_SUSPEND_INTERFACE,
        "SUSPEND_INTERFACE",
        Served::Xenbus(XenbusInterface::Suspend),
    ),
    (
        GUID_XENBUS_SHARED_INFO_INTERFACE,
        "SHARED_INFO_INTERFACE",
        Served::Xenbus(XenbusInterface::SharedInfo),
    ),
    (
        GUID_XENBUS_EVTCHN_INTERFACE,
        "EVTCHN_INTERFACE",
        Served::Xenbus(XenbusInterface::Evtchn),
    ),
    (
        GUID_XENBUS_STORE_INTERFACE,
        "STORE_INTERFACE",
        Served::Xenbus(XenbusInterface::Store),
    ),
    (
        GUID_XENBUS_RANGE_SET_INTERFACE,
        "RANGE_SET_INTERFACE",
        Served::Xenbus(XenbusInterface::RangeSet),
    ),
    (
        GUID_XENBUS_CACHE_INTERFACE,
        "CACHE_INTERFACE",
        Served::Xenbus(XenbusInterface::Cache),
    ),
    (
        GUID_XENBUS_GNTTAB_INTERFACE,
        "GNTTAB_INTERFACE",
        Served::Xenbus(XenbusInterface::Gnttab),
    ),
    (
        GUID_XENBUS_UNPLUG_INTERFACE,
        "UNPLUG_INTERFACE",
        Served::Xenbus(XenbusInterface::Unplug),
    ),
    (
        GUID_XENBUS_CONSOLE_INTERFACE,
        "CONSOLE_INTERFACE",
        Served::Xenbus(XenbusInterface::Console),
    ),
    (
        GUID_XENFILT_EMULATED_INTERFACE,
        "EMULATED_INTERFACE",
        Served::Delegated,
    ),
];

/// Who serves `guid` (None: not in the table; the IRP passes through untouched).
pub fn classify(guid: &Guid) -> Option<(&'static str, Served)> {
    TABLE
        .iter()
        .find(|(g, _, _)| g == guid)
        .map(|&(_, name, served)| (name, served))
}

/// The FDO's interface providers a PDO hands out (None: not available, e.g. an
/// inactive FDO or no console).
#[derive(Clone, Copy, Default)]
pub struct Providers<'a> {
    /// DEBUG.
    pub debug: Option<&'a DebugProvider<'a>>,
    /// SUSPEND.
    pub suspend: Option<&'a SuspendProvider>,
    /// SHARED_INFO.
    pub shared_info: Option<&'a SharedInfoProvider>,
    /// EVTCHN.
    pub evtchn: Option<&'a EvtchnProvider>,
    /// STORE.
    pub store: Option<&'a StoreProvider>,
    /// RANGE_SET.
    pub range_set: Option<&'a RangeSetProvider>,
    /// CACHE.
    pub cache: Option<&'a CacheProvider<'a>>,
    /// GNTTAB.
    pub gnttab: Option<&'a GnttabProvider>,
    /// UNPLUG.
    pub unplug: Option<&'a UnplugProvider<'a>>,
    /// CONSOLE.
    pub console: Option<&'a ConsoleProvider<'a>>,
}

impl Providers<'static> {
    /// Every provider of the active FDO's subsystems.
    pub fn from_subsystems(subsystems: &crate::fdo::Subsystems) -> Self {
        Self {
            debug: Some(subsystems.debug),
            suspend: Some(subsystems.suspend_provider),
            shared_info: Some(subsystems.shared_info_provider),
            evtchn: Some(subsystems.evtchn_provider),
            store: Some(subsystems.store_provider),
            range_set: Some(subsystems.range_set),
            cache: Some(subsystems.cache),
            gnttab: Some(subsystems.gnttab_provider),
            unplug: Some(subsystems.unplug),
            console: Some(subsystems.console),
        }
    }
}

/// Fill the caller's buffer with `which`'s version `query.version` (spec §2.1): unknown
/// version → `STATUS_NOT_SUPPORTED`, `Size` too small → `STATUS_BUFFER_OVERFLOW`, else
/// `STATUS_SUCCESS` (with `Information = 0`). A missing provider is NOT_SUPPORTED.
///
/// # Safety
/// `query.buffer` is the requester's buffer, valid for `query.size` bytes of writes and
/// pointer-aligned; the providers outlive every use of the filled interface.
pub unsafe fn query(
    providers: &Providers<'_>,
    which: XenbusInterface,
    query: &InterfaceQuery,
) -> NtStatus {
    let dst = query.buffer as *mut c_void;
    let size = usize::from(query.size);
    let version = query.version;
    // SAFETY (every arm): forwarded caller contract on `dst`/`size` and the provider.
    unsafe {
        match which {
            XenbusInterface::Debug => providers
                .debug
                .map(|p| super::debug::get_interface(p, version, dst, size)),
            XenbusInterface::Suspend => providers
                .suspend
                .map(|p| super::suspend::get_interface(p, version, dst, size)),
            XenbusInterface::SharedInfo => providers
                .shared_info
                .map(|p| super::shared_info::get_interface(p, version, dst, size)),
            XenbusInterface::Evtchn => providers
                .evtchn
                .map(|p| super::evtchn::get_interface(p, version, dst, size)),
            XenbusInterface::Store => providers
                .store
                .map(|p| super::store::get_interface(p, version, dst, size)),
            XenbusInterface::RangeSet => providers
                .range_set
                .map(|p| super::range_set::get_interface(p, version, dst, size)),
            XenbusInterface::Cache => providers
                .cache
                .map(|p| super::cache::get_interface(p, version, dst, size)),
            XenbusInterface::Gnttab => providers
                .gnttab
                .map(|p| super::gnttab::get_interface(p, version, dst, size)),
            XenbusInterface::Unplug => providers
                .unplug
                .map(|p| super::unplug::get_interface(p, version, dst, size)),
            XenbusInterface::Console => providers
                .console
                .map(|p| super::console::get_interface(p, version, dst, size)),
        }
    }
    .unwrap_or(STATUS_NOT_SUPPORTED)
}

/// `sizeof (BUS_INTERFACE_STANDARD)` on x64: the `INTERFACE` header and four pointers.
pub const BUS_INTERFACE_STANDARD_SIZE: u16 = 64;

/// The bus-standard interface rules (`PdoQueryBusInterface`): only version 1 is served
/// (another version leaves the status NOT_SUPPORTED); a buffer smaller than the structure
/// is `STATUS_BUFFER_TOO_SMALL` (not BUFFER_OVERFLOW, unlike the XENBUS interfaces).
pub fn bus_interface_check(query: &InterfaceQuery) -> Result<(), NtStatus> {
    if query.version != 1 {
        return Err(STATUS_NOT_SUPPORTED);
    }
    if query.size < BUS_INTERFACE_STANDARD_SIZE {
        return Err(STATUS_BUFFER_TOO_SMALL);
    }
    Ok(())
}

/// `PTRANSLATE_BUS_ADDRESS`.
pub type TranslateBusAddressFn = Option<
    unsafe extern "C" fn(
        context: *mut c_void,
        bus_address: i64,
        length: u32,
        address_space: *mut u32,
        translated: *mut i64,
    ) -> u8,
>;
/// `PGET_DMA_ADAPTER`.
pub type GetDmaAdapterFn = Option<
    unsafe extern "C" fn(
        context: *mut c_void,
        description: *mut c_void,
        map_registers: *mut u32,
    ) -> *mut c_void,
>;
/// `PGET_SET_DEVICE_DATA`.
pub type BusDataFn = Option<
    unsafe extern "C" fn(
        context: *mut c_void,
        data_type: u32,
        buffer: *mut c_void,
        offset: u32,
        length: u32,
    ) -> u32,
>;

/// `BUS_INTERFACE_STANDARD` (version 1). Unlike the XENBUS interfaces its
/// `InterfaceReference`/`InterfaceDereference` are set and take the context.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct BusInterfaceStandard {
    /// `INTERFACE` header.
    pub interface: xen_include::interfaces::Interface,
    /// `TranslateBusAddress`.
    pub translate_bus_address: TranslateBusAddressFn,
    /// `GetDmaAdapter`.
    pub get_dma_adapter: GetDmaAdapterFn,
    /// `SetBusData`.
    pub set_bus_data: BusDataFn,
    /// `GetBusData`.
    pub get_bus_data: BusDataFn,
}

const _: () =
    assert!(core::mem::size_of::<BusInterfaceStandard>() == BUS_INTERFACE_STANDARD_SIZE as usize);

/// Offset of `InterfaceType` in `DEVICE_DESCRIPTION` (Version, eight BOOLEANs, BusNumber,
/// DmaChannel, InterfaceType).
pub const DEVICE_DESCRIPTION_INTERFACE_TYPE: usize = 20;

/// A child PDO's bus interface (`XENBUS_BUS_CONTEXT`): reference counted, every call
/// forwarded to the FDO's lower (PCI) bus interface; `GetDmaAdapter` forces
/// `InterfaceType = PCIBus` first, and the adapter is wrapped as `dma` says
/// ([`crate::dma`]).
pub struct PdoBusInterface {
    references: core::sync::atomic::AtomicI32,
    lower: BusInterfaceStandard,
    dma: DmaInterception,
}

/// How a child's adapters are intercepted: the adapter type (from
/// `Parameters\InterceptDmaAdapter` and the OS version, [`dma_adapter_type`]), the PCI
/// device object under the FDO, and where a refused wrap is logged.
#[derive(Clone, Copy)]
pub struct DmaInterception {
    /// SUBSTITUTE, PASSTHRU or none.
    pub kind: DmaAdapterType,
    /// The FDO's PhysicalDeviceObject (the PCI PDO), as an address.
    pub pci_device: usize,
    /// Where a refused wrap is logged (None: not logged).
    pub api: Option<&'static dyn xen_include::api::XenApi>,
}

impl DmaInterception {
    /// No interception (`InterceptDmaAdapter` = 0).
    pub const NONE: Self = Self {
        kind: DmaAdapterType::NoIntercept,
        pci_device: 0,
        api: None,
    };

    /// `BusInitialize`'s choice: DWORD `InterceptDmaAdapter` of xenbus's `Parameters` key
    /// (absent, unreadable or not a DWORD → 0) and the running kernel's version (unknown →
    /// not Vista/2008, so PASSTHRU when intercepting). `pci_device` is the FDO's
    /// PhysicalDeviceObject.
    pub fn read(
        os: &dyn common::os::Os,
        parameters: Option<common::os::KeyHandle>,
        pci_device: usize,
        api: Option<&'static dyn xen_include::api::XenApi>,
    ) -> Self {
        let intercept = match parameters.map(|k| os.registry_query(k, "InterceptDmaAdapter")) {
            Some(Ok(common::os::RegValue::Dword(v))) => v,
            _ => 0,
        };
        let (major, minor) = os.os_version().map_or((0, 0), |v| (v.major, v.minor));
        Self {
            kind: dma_adapter_type(intercept, major, minor),
            pci_device,
            api,
        }
    }
}

impl PdoBusInterface {
    /// A bus interface over `lower`, the FDO's `BUS_INTERFACE_STANDARD` from the PCI PDO.
    pub fn new(lower: BusInterfaceStandard) -> Self {
        Self::with_dma(lower, DmaInterception::NONE)
    }

    /// A bus interface over `lower` whose `GetDmaAdapter` intercepts as `dma` says.
    pub fn with_dma(lower: BusInterfaceStandard, dma: DmaInterception) -> Self {
        Self {
            references: core::sync::atomic::AtomicI32::new(0),
            lower,
            dma,
        }
    }

    /// `InterfaceReference` calls minus `InterfaceDereference` calls.
    pub fn references(&self) -> i32 {
        self.references.load(core::sync::atomic::Ordering::Acquire)
    }

    /// Copy the interface into the caller's buffer and take a reference
    /// (`PdoQueryBusInterface`), after [`bus_interface_check`].
    ///
    /// # Safety
    /// `query.buffer` is valid for `query.size` bytes and pointer-aligned; `self` outlives
    /// every use of the copied interface.
    pub unsafe fn query(&self, query: &InterfaceQuery) -> NtStatus {
        if let Err(status) = bus_interface_check(query) {
            return status;
        }
        let dst = query.buffer as *mut BusInterfaceStandard;
        if dst.is_null() {
            return xen_include::status::STATUS_INVALID_PARAMETER;
        }
        let context = self as *const Self as *mut c_void;
        let table = BusInterfaceStandard {
            interface: xen_include::interfaces::Interface {
                size: BUS_INTERFACE_STANDARD_SIZE,
                version: 1,
                context,
                interface_reference: Some(bus_reference),
                interface_dereference: Some(bus_dereference),
            },
            translate_bus_address: Some(bus_translate),
            get_dma_adapter: Some(bus_get_dma_adapter),
            set_bus_data: Some(bus_set_data),
            get_bus_data: Some(bus_get_data),
        };
        // SAFETY: caller contract on the buffer (size checked above).
        unsafe { core::ptr::write(dst, table) };
        self.references
            .fetch_add(1, core::sync::atomic::Ordering::AcqRel);
        xen_include::status::STATUS_SUCCESS
    }
}

/// # Safety
/// `context` is NULL or a live [`PdoBusInterface`] (the context we handed out).
unsafe fn bus_context<'a>(context: *mut c_void) -> Option<&'a PdoBusInterface> {
    // SAFETY: caller contract.
    unsafe { (context as *const PdoBusInterface).as_ref() }
}

unsafe extern "C" fn bus_reference(context: *mut c_void) {
    // SAFETY: the context of an interface we filled.
    if let Some(bus) = unsafe { bus_context(context) } {
        bus.references
            .fetch_add(1, core::sync::atomic::Ordering::AcqRel);
    }
}

unsafe extern "C" fn bus_dereference(context: *mut c_void) {
    // SAFETY: the context of an interface we filled.
    if let Some(bus) = unsafe { bus_context(context) } {
        let _ = bus.references.fetch_update(
            core::sync::atomic::Ordering::AcqRel,
            core::sync::atomic::Ordering::Acquire,
            |r| (r > 0).then(|| r - 1),
        );
    }
}

unsafe extern "C" fn bus_translate(
    context: *mut c_void,
    bus_address: i64,
    length: u32,
    address_space: *mut u32,
    translated: *mut i64,
) -> u8 {
    // SAFETY: the context of an interface we filled; the lower interface's contract is the
    // caller's, forwarded unchanged.
    unsafe {
        match bus_context(context).and_then(|b| b.lower.translate_bus_address.map(|f| (b, f))) {
            Some((bus, f)) => f(
                bus.lower.interface.context,
                bus_address,
                length,
                address_space,
                translated,
            ),
            None => 0,
        }
    }
}

unsafe extern "C" fn bus_get_dma_adapter(
    context: *mut c_void,
    description: *mut c_void,
    map_registers: *mut u32,
) -> *mut c_void {
    if description.is_null() {
        return core::ptr::null_mut();
    }
    // SAFETY: `description` is the caller's DEVICE_DESCRIPTION (at least up to
    // InterfaceType); PCIBus-style adapters are forced as upstream does.
    unsafe {
        description
            .cast::<u8>()
            .add(DEVICE_DESCRIPTION_INTERFACE_TYPE)
            .cast::<u32>()
            .write_unaligned(DMA_INTERFACE_TYPE);
    }
    // SAFETY: as for `bus_translate`.
    let Some((bus, f)) =
        (unsafe { bus_context(context) }).and_then(|b| b.lower.get_dma_adapter.map(|f| (b, f)))
    else {
        return core::ptr::null_mut();
    };
    // SAFETY: the lower interface's contract is the caller's, forwarded unchanged.
    let lower = unsafe { f(bus.lower.interface.context, description, map_registers) };
    let dma = bus.dma;
    // SAFETY: `lower` is NULL or the adapter the lower (PCI) bus interface just made.
    let (adapter, refusal) =
        unsafe { crate::dma::wrap(dma.kind, lower.cast(), dma.pci_device as *mut c_void) };
    match (refusal, dma.api) {
        (Some(refusal), Some(api)) => crate::error!(
            api,
            "DMA: adapter {:p} not intercepted ({:?}): handed out as it is",
            lower,
            refusal
        ),
        (None, Some(api)) if dma.kind != DmaAdapterType::NoIntercept && !lower.is_null() => {
            crate::info!(
                api,
                "DMA: adapter {:p} intercepted ({:?}) as {:p}",
                lower,
                dma.kind,
                adapter
            )
        }
        _ => {}
    }
    adapter.cast()
}

unsafe extern "C" fn bus_set_data(
    context: *mut c_void,
    data_type: u32,
    buffer: *mut c_void,
    offset: u32,
    length: u32,
) -> u32 {
    // SAFETY: as for `bus_translate`.
    unsafe {
        match bus_context(context).and_then(|b| b.lower.set_bus_data.map(|f| (b, f))) {
            Some((bus, f)) => f(
                bus.lower.interface.context,
                data_type,
                buffer,
                offset,
                length,
            ),
            None => 0,
        }
    }
}

unsafe extern "C" fn bus_get_data(
    context: *mut c_void,
    data_type: u32,
    buffer: *mut c_void,
    offset: u32,
    length: u32,
) -> u32 {
    // SAFETY: as for `bus_translate`.
    unsafe {
        match bus_context(context).and_then(|b| b.lower.get_bus_data.map(|f| (b, f))) {
            Some((bus, f)) => f(
                bus.lower.interface.context,
                data_type,
                buffer,
                offset,
                length,
            ),
            None => 0,
        }
    }
}

/// How `GetDmaAdapter` on a child's bus interface wraps the lower adapter (spec §5.18).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DmaAdapterType {
    /// `InterceptDmaAdapter` = 0: the lower adapter as it is.
    NoIntercept,
    /// Windows Vista/Server 2008 (6.0): a substitute adapter with a private operations
    /// table.
    Substitute,
    /// Later Windows: the lower adapter's operations pointer patched to a private copy.
    Passthru,
}

/// The adapter type from `Parameters\InterceptDmaAdapter` and the OS version.
pub fn dma_adapter_type(intercept: u32, os_major: u32, os_minor: u32) -> DmaAdapterType {
    if intercept == 0 {
        DmaAdapterType::NoIntercept
    } else if os_major == 6 && os_minor == 0 {
        DmaAdapterType::Substitute
    } else {
        DmaAdapterType::Passthru
    }
}

pub use xen_include::dma::{
    dma_operations_version, DMA_OPERATIONS_SIZE1, DMA_OPERATIONS_SIZE2, DMA_OPERATIONS_SIZE3,
};

/// `INTERFACE_TYPE` forced into the child's `DEVICE_DESCRIPTION` before asking the lower
/// bus interface for an adapter (`PCIBus`).
pub const DMA_INTERFACE_TYPE: u32 = common::pnp::INTERFACE_TYPE_PCI_BUS;

/// In an intercepted adapter's callbacks the child's device object is replaced by the PCI
/// device object underneath the FDO (the lower adapter belongs to it).
pub fn dma_callback_device(device: usize, child: usize, pci: usize) -> usize {
    if device == child {
        pci
    } else {
        device
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_covers_every_served_guid_once() {
        for (i, (guid, _, _)) in TABLE.iter().enumerate() {
            assert_eq!(TABLE.iter().filter(|(g, _, _)| g == guid).count(), 1, "{i}");
        }
        assert_eq!(
            classify(&GUID_XENBUS_STORE_INTERFACE),
            Some(("STORE_INTERFACE", Served::Xenbus(XenbusInterface::Store)))
        );
        assert_eq!(
            classify(&GUID_XENFILT_EMULATED_INTERFACE).map(|c| c.1),
            Some(Served::Delegated)
        );
        // BALLOON is internal: never served to a child.
        assert_eq!(
            classify(&xen_include::interfaces::balloon::GUID_XENBUS_BALLOON_INTERFACE),
            None
        );
    }

    #[test]
    fn bus_interface_and_dma_rules() {
        let mut q = InterfaceQuery {
            guid: GUID_BUS_INTERFACE_STANDARD,
            size: 64,
            version: 1,
            buffer: 0,
            specific: 0,
            incoming: STATUS_NOT_SUPPORTED,
        };
        assert_eq!(bus_interface_check(&q), Ok(()));
        q.size = 63;
        assert_eq!(bus_interface_check(&q), Err(STATUS_BUFFER_TOO_SMALL));
        q.version = 2;
        assert_eq!(bus_interface_check(&q), Err(STATUS_NOT_SUPPORTED));
        assert_eq!(dma_adapter_type(0, 6, 0), DmaAdapterType::NoIntercept);
        assert_eq!(dma_adapter_type(1, 6, 0), DmaAdapterType::Substitute);
        assert_eq!(dma_adapter_type(1, 10, 0), DmaAdapterType::Passthru);
        assert_eq!(dma_callback_device(7, 7, 3), 3);
        assert_eq!(dma_callback_device(9, 7, 3), 9);
        assert_eq!(
            (
                DMA_OPERATIONS_SIZE1,
                DMA_OPERATIONS_SIZE2,
                DMA_OPERATIONS_SIZE3
            ),
            (104, 128, 232)
        );
        assert_eq!(dma_operations_version(104), Some(1));
        assert_eq!(dma_operations_version(128), Some(2));
        assert_eq!(dma_operations_version(232), Some(3));
        assert_eq!(dma_operations_version(320), Some(3));
        assert_eq!(dma_operations_version(112), None);
        assert_eq!(dma_operations_version(0), None);
    }

    static LOWER_CALLS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

    unsafe extern "C" fn lower_translate(
        context: *mut c_void,
        address: i64,
        length: u32,
        space: *mut u32,
        out: *mut i64,
    ) -> u8 {
        LOWER_CALLS
            .lock()
            .unwrap()
            .push(format!("translate {context:p} {address:#x} {length}"));
        unsafe {
            *space = 0;
            *out = address + 0x1000;
        }
        1
    }

    unsafe extern "C" fn lower_adapter(
        context: *mut c_void,
        description: *mut c_void,
        registers: *mut u32,
    ) -> *mut c_void {
        let kind = unsafe { description.cast::<u32>().add(5).read() };
        LOWER_CALLS
            .lock()
            .unwrap()
            .push(format!("adapter {context:p} type {kind}"));
        unsafe { *registers = 16 };
        0xADA0 as *mut c_void
    }

    unsafe extern "C" fn lower_data(
        context: *mut c_void,
        data_type: u32,
        _buffer: *mut c_void,
        offset: u32,
        length: u32,
    ) -> u32 {
        LOWER_CALLS
            .lock()
            .unwrap()
            .push(format!("data {context:p} {data_type} {offset} {length}"));
        length
    }

    #[test]
    fn bus_interface_forwards_to_the_lower_pci_interface() {
        let lower = BusInterfaceStandard {
            interface: xen_include::interfaces::Interface::new(64, 1, 0x5C1 as *mut c_void),
            translate_bus_address: Some(lower_translate),
            get_dma_adapter: Some(lower_adapter),
            set_bus_data: Some(lower_data),
            get_bus_data: Some(lower_data),
        };
        let bus = PdoBusInterface::new(lower);
        let mut buffer = [0u64; 8];
        let mut q = InterfaceQuery {
            guid: GUID_BUS_INTERFACE_STANDARD,
            size: 64,
            version: 1,
            buffer: buffer.as_mut_ptr() as usize,
            specific: 0,
            incoming: STATUS_NOT_SUPPORTED,
        };
        q.size = 48;
        assert_eq!(unsafe { bus.query(&q) }, STATUS_BUFFER_TOO_SMALL);
        assert_eq!(buffer, [0; 8]);
        q.size = 64;
        assert_eq!(unsafe { bus.query(&q) }, 0);
        assert_eq!(bus.references(), 1, "the query references the interface");
        let table = unsafe { *(buffer.as_ptr() as *const BusInterfaceStandard) };
        assert_eq!((table.interface.size, table.interface.version), (64, 1));
        let context = table.interface.context;
        unsafe {
            (table.interface.interface_reference.unwrap())(context);
            (table.interface.interface_dereference.unwrap())(context);
            (table.interface.interface_dereference.unwrap())(context);
        }
        assert_eq!(bus.references(), 0);
        let mut space = 7u32;
        let mut out = 0i64;
        let ok = unsafe {
            (table.translate_bus_address.unwrap())(context, 0xF000_0000, 4096, &mut space, &mut out)
        };
        assert_eq!((ok, space, out), (1, 0, 0xF000_1000));
        // DEVICE_DESCRIPTION with InterfaceType = Internal (0) comes down as PCIBus (5).
        let mut description = [0u32; 16];
        description[5] = 0;
        let mut registers = 0u32;
        let adapter = unsafe {
            (table.get_dma_adapter.unwrap())(
                context,
                description.as_mut_ptr().cast(),
                &mut registers,
            )
        };
        assert_eq!(
            (adapter as usize, registers, description[5]),
            (0xADA0, 16, 5)
        );
        let mut data = [0u8; 4];
        let n =
            unsafe { (table.get_bus_data.unwrap())(context, 4, data.as_mut_ptr().cast(), 0x40, 4) };
        assert_eq!(n, 4);
        assert_eq!(
            *LOWER_CALLS.lock().unwrap(),
            [
                "translate 0x5c1 0xf0000000 4096",
                "adapter 0x5c1 type 5",
                "data 0x5c1 4 64 4"
            ]
        );
    }

    static PUTS: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);

    unsafe extern "C" fn lower_put(_adapter: *mut xen_include::dma::DmaAdapter) {
        PUTS.fetch_add(1, core::sync::atomic::Ordering::SeqCst);
    }

    unsafe extern "C" fn lower_dma_adapter(
        context: *mut c_void,
        _description: *mut c_void,
        registers: *mut u32,
    ) -> *mut c_void {
        unsafe { *registers = 8 };
        context
    }

    #[test]
    fn get_dma_adapter_wraps_as_intercept_dma_adapter_says() {
        use xen_include::dma::{DmaAdapter, DmaOperations, DMA_ADAPTER_SIZE};
        let api = crate::testing::TestApi::leak();
        for (intercept, os, size) in [
            (0u32, (10, 0), DMA_OPERATIONS_SIZE3),
            (1, (6, 0), DMA_OPERATIONS_SIZE2),
            (1, (10, 0), DMA_OPERATIONS_SIZE1),
            (1, (10, 0), 112),
        ] {
            let table = Box::leak(Box::new(DmaOperations {
                size,
                put_dma_adapter: Some(lower_put),
                ..DmaOperations::EMPTY
            }));
            let table_ptr: *mut DmaOperations = table;
            let lower_adapter = Box::leak(Box::new(DmaAdapter {
                version: 1,
                size: DMA_ADAPTER_SIZE,
                dma_operations: table_ptr,
            }));
            let lower_ptr: *mut DmaAdapter = lower_adapter;
            let kind = dma_adapter_type(intercept, os.0, os.1);
            let bus = PdoBusInterface::with_dma(
                BusInterfaceStandard {
                    interface: xen_include::interfaces::Interface::new(64, 1, lower_ptr.cast()),
                    translate_bus_address: None,
                    get_dma_adapter: Some(lower_dma_adapter),
                    set_bus_data: None,
                    get_bus_data: None,
                },
                DmaInterception {
                    kind,
                    pci_device: 0x9C1,
                    api: Some(api),
                },
            );
            let mut buffer = [0u64; 8];
            let q = InterfaceQuery {
                guid: GUID_BUS_INTERFACE_STANDARD,
                size: 64,
                version: 1,
                buffer: buffer.as_mut_ptr() as usize,
                specific: 0,
                incoming: STATUS_NOT_SUPPORTED,
            };
            assert_eq!(unsafe { bus.query(&q) }, 0);
            let t = unsafe { *(buffer.as_ptr() as *const BusInterfaceStandard) };
            let mut description = [0u32; 16];
            let mut registers = 0u32;
            let adapter: *mut DmaAdapter = unsafe {
                (t.get_dma_adapter.unwrap())(
                    t.interface.context,
                    description.as_mut_ptr().cast(),
                    &mut registers,
                )
            }
            .cast();
            assert_eq!((registers, description[5]), (8, 5));
            let ops = unsafe { (*adapter).dma_operations };
            match (kind, size) {
                (_, 112) => {
                    assert_eq!((adapter, ops), (lower_ptr, table_ptr));
                    assert!(api.logged("not intercepted (UnknownSize(112))"));
                    continue;
                }
                (DmaAdapterType::NoIntercept, _) => {
                    assert_eq!((adapter, ops), (lower_ptr, table_ptr));
                    continue;
                }
                (DmaAdapterType::Substitute, _) => assert_ne!(adapter, lower_ptr),
                (DmaAdapterType::Passthru, _) => assert_eq!(adapter, lower_ptr),
            }
            assert_ne!(ops, table_ptr, "{kind:?}: the private table");
            assert!(api.logged(&format!("intercepted ({kind:?}) as {adapter:p}")));
            assert_eq!(unsafe { (*ops).size }, size);
            unsafe { ((*ops).put_dma_adapter.unwrap())(adapter) };
            assert_eq!(lower_adapter.dma_operations, table_ptr);
        }
        assert_eq!(PUTS.load(core::sync::atomic::Ordering::SeqCst), 2);
    }

    #[test]
    fn interception_is_read_from_the_parameters_key_and_the_os_version() {
        use common::os::{Os, OsVersion, RegValue};
        let sim = crate::sim::Sim::new(1);
        let os: &dyn Os = &*sim.m.guest;
        let key = os
            .registry_create(
                None,
                "\\Registry\\Machine\\SYSTEM\\DmaTest\\Parameters",
                false,
            )
            .unwrap();
        let kind = |os: &dyn Os, key| DmaInterception::read(os, key, 0x9C1, None).kind;
        assert_eq!(kind(os, None), DmaAdapterType::NoIntercept);
        assert_eq!(
            kind(os, Some(key)),
            DmaAdapterType::NoIntercept,
            "absent = 0"
        );
        os.registry_set(key, "InterceptDmaAdapter", &RegValue::Sz("1".into()))
            .unwrap();
        assert_eq!(
            kind(os, Some(key)),
            DmaAdapterType::NoIntercept,
            "not a DWORD"
        );
        os.registry_set(key, "InterceptDmaAdapter", &RegValue::Dword(1))
            .unwrap();
        let version = |major, minor| OsVersion {
            major,
            minor,
            ..OsVersion::default()
        };
        sim.m.guest.set_os_version(Some(version(6, 0)));
        assert_eq!(kind(os, Some(key)), DmaAdapterType::Substitute);
        sim.m.guest.set_os_version(Some(version(6, 1)));
        assert_eq!(kind(os, Some(key)), DmaAdapterType::Passthru);
        sim.m.guest.set_os_version(None);
        assert_eq!(kind(os, Some(key)), DmaAdapterType::Passthru);
        os.registry_set(key, "InterceptDmaAdapter", &RegValue::Dword(0))
            .unwrap();
        assert_eq!(kind(os, Some(key)), DmaAdapterType::NoIntercept);
        assert_eq!(
            DmaInterception::read(os, Some(key), 0x9C1, None).pci_device,
            0x9C1
        );
    }
}
