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
    }
}
