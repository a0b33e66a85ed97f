//! A child PDO's PnP and power state machine (spec §3.2–3.3, §5.4, §2.1): IDs from the
//! revision table, device text, bus information, capabilities per class policy,
//! resource requirements, eject, usage notifications delegated to the FDO, power, and
//! IRP_MN_QUERY_INTERFACE through the interface table.
#![forbid(unsafe_code)]

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use common::pnp::{
    flags, BusInformation, DeviceCapabilities, DevicePower, IdKind, InterfaceQuery, IrqPolicy,
    PnpAction, PnpAnswer, PnpReply, PnpRequest, PowerRequest, PowerState, PowerStep, RelationKind,
    Requirement, RequirementDescriptor, ResourceRequirements, Share, SystemPower, TextKind,
    ALL_PROCESSOR_GROUPS, GUID_BUS_TYPE_INTERNAL, INTERFACE_TYPE_INTERNAL,
};
use xen_include::revision::{write_id, BusQueryId, IdNames};
use xen_include::status::{
    NtStatus, STATUS_INVALID_PARAMETER, STATUS_NOT_SUPPORTED, STATUS_SUCCESS,
};

use super::{PnpState, PnpStates};
use crate::interface::query::{classify, Served, XenbusInterface};
use crate::pdo::{self, DeviceText, RemovalPolicy};

/// `PAGE_SIZE`.
const PAGE_SIZE: u32 = 4096;

/// The FDO and runtime as a child PDO sees them.
pub trait ChildServices {
    /// `VENDOR_PREFIX` (`XP`).
    fn vendor_prefix(&self) -> &str;
    /// The platform PCI device ID the FDO is bound to.
    fn pci_device_id(&self) -> u16;
    /// `Parameters\<CLASS>\AllowPdoRemove`/`AllowPdoEject`.
    fn removal_policy(&self, class: &str) -> RemovalPolicy;
    /// Fill the caller's buffer with a XENBUS interface (see
    /// [`crate::interface::query::query`]); the status of `*GetInterface`.
    fn query_interface(&self, which: XenbusInterface, query: &InterfaceQuery) -> NtStatus;
    /// Copy the PDO's `BUS_INTERFACE_STANDARD` into the caller's buffer (already checked
    /// by [`crate::interface::query::bus_interface_check`]) and reference it.
    fn query_bus_interface(&self, class: &str, query: &InterfaceQuery) -> NtStatus;
    /// Send `request` to the top of the FDO's stack and wait (usage notifications, the
    /// EMULATED interface served by xenfilt below the FDO).
    fn delegate(&self, request: &PnpRequest) -> PnpAnswer;
    /// PDO D3→D0: acquire SUSPEND and register the LATE callback.
    fn power_up(&self, class: &str) -> Result<(), NtStatus>;
    /// PDO D0→D3: deregister and release.
    fn power_down(&self, class: &str);
    /// Whether the FDO's list has this child Missing.
    fn is_missing(&self, class: &str) -> bool;
    /// EJECT: the child is Missing ("device ejected") and BusRelations are invalidated.
    fn eject(&self, class: &str);
    /// REMOVE of a Missing child: it is Deleted; `destroy` (it was surprise-removed) →
    /// destroyed at once, else BusRelations are invalidated (destroyed after the next
    /// enumeration).
    fn removed(&self, class: &str, destroy: bool);
}

/// One child PDO (one per class).
pub struct PdoMachine {
    class: String,
    pnp: PnpStates,
    device_power: DevicePower,
    system_power: SystemPower,
}

impl PdoMachine {
    /// A new PDO for `class` (Present, D3).
    pub fn new(class: &str) -> Self {
        Self {
            class: String::from(class),
            pnp: PnpStates::new(PnpState::Present),
            device_power: DevicePower::D3,
            system_power: SystemPower::Working,
        }
    }

    /// The class.
    pub fn class(&self) -> &str {
        &self.class
    }

    /// PnP state.
    pub fn pnp_state(&self) -> PnpState {
        self.pnp.current()
    }

    /// Reported in a BusRelations answer.
    pub fn enumerated(&mut self) {
        if self.pnp.current() == PnpState::Present {
            self.pnp.set(PnpState::Enumerated);
        }
    }

    /// Device power state.
    pub fn device_power(&self) -> DevicePower {
        self.device_power
    }

    /// System power state as last seen.
    pub fn system_power(&self) -> SystemPower {
        self.system_power
    }

    /// Look at an `IRP_MJ_PNP` request (a PDO completes every request itself).
    pub fn pnp(&mut self, services: &dyn ChildServices, request: &PnpRequest) -> PnpAction {
        let done = |answer| PnpAction::Complete(answer);
        let ok = || PnpAction::Complete(PnpAnswer::status(STATUS_SUCCESS));
        match request {
            PnpRequest::Start(_) => {
                self.d3_to_d0(services);
                self.pnp.set(PnpState::Started);
                ok()
            }
            PnpRequest::QueryStop => {
                self.pnp.set(PnpState::StopPending);
                ok()
            }
            PnpRequest::CancelStop => {
                self.pnp.restore(PnpState::StopPending);
                ok()
            }
            PnpRequest::Stop => {
                self.d0_to_d3(services);
                self.pnp.set(PnpState::Stopped);
                ok()
            }
            PnpRequest::QueryRemove => {
                self.pnp.set(PnpState::RemovePending);
                ok()
            }
            PnpRequest::CancelRemove => {
                self.pnp.restore(PnpState::RemovePending);
                ok()
            }
            PnpRequest::SurpriseRemoval => {
                self.pnp.set(PnpState::SurpriseRemovePending);
                ok()
            }
            PnpRequest::Remove => {
                self.d0_to_d3(services);
                if services.is_missing(&self.class) {
                    let surprise = self.pnp.current() == PnpState::SurpriseRemovePending;
                    self.pnp.set(PnpState::Deleted);
                    services.removed(&self.class, surprise);
                } else {
                    self.pnp.set(PnpState::Enumerated);
                }
                ok()
            }
            PnpRequest::Eject => {
                self.pnp.set(PnpState::Deleted);
                services.eject(&self.class);
                ok()
            }
            PnpRequest::QueryDeviceRelations(RelationKind::TargetDevice) => {
                done(PnpAnswer::success(PnpReply::TargetSelf))
            }
            PnpRequest::QueryDeviceRelations(_) => PnpAction::CompleteUnchanged,
            PnpRequest::QueryInterface(query) => self.query_interface(services, request, query),
            PnpRequest::QueryCapabilities(caps) => done(self.capabilities(services, caps)),
            PnpRequest::QueryResourceRequirements => done(PnpAnswer::success(
                PnpReply::Requirements(resource_requirements()),
            )),
            PnpRequest::QueryDeviceText(kind, _locale) => done(self.text(services, *kind)),
            PnpRequest::QueryId(kind) => done(self.id(services, *kind)),
            PnpRequest::QueryBusInformation => done(PnpAnswer::success(PnpReply::BusInformation(
                BusInformation {
                    bus_type: GUID_BUS_TYPE_INTERNAL,
                    legacy_bus_type: INTERFACE_TYPE_INTERNAL,
                    bus_number: 0,
                },
            ))),
            PnpRequest::DeviceUsageNotification(..) => done(services.delegate(request)),
            PnpRequest::Other(minor)
                if *minor == common::pnp::minor::READ_CONFIG
                    || *minor == common::pnp::minor::WRITE_CONFIG =>
            {
                done(PnpAnswer::status(STATUS_NOT_SUPPORTED))
            }
            _ => PnpAction::CompleteUnchanged,
        }
    }

    fn d3_to_d0(&mut self, services: &dyn ChildServices) {
        if self.device_power != DevicePower::D0 {
            // Upstream cannot fail a start on this: the failure is only logged.
            let _ = services.power_up(&self.class);
            self.device_power = DevicePower::D0;
        }
    }

    fn d0_to_d3(&mut self, services: &dyn ChildServices) {
        if self.device_power == DevicePower::D0 {
            services.power_down(&self.class);
            self.device_power = DevicePower::D3;
        }
    }

    fn query_interface(
        &self,
        services: &dyn ChildServices,
        request: &PnpRequest,
        query: &InterfaceQuery,
    ) -> PnpAction {
        if query.incoming != STATUS_NOT_SUPPORTED {
            // Somebody above already answered.
            return PnpAction::CompleteUnchanged;
        }
        let status = match classify(&query.guid) {
            None => return PnpAction::CompleteUnchanged,
            Some((_, Served::Delegated)) => return PnpAction::Complete(services.delegate(request)),
            Some((_, Served::BusInterfaceStandard)) => {
                match crate::interface::query::bus_interface_check(query) {
                    Ok(()) => services.query_bus_interface(&self.class, query),
                    Err(status) => status,
                }
            }
            Some((_, Served::Xenbus(which))) => services.query_interface(which, query),
        };
        PnpAction::Complete(PnpAnswer::status(status))
    }

    fn capabilities(&self, services: &dyn ChildServices, caps: &DeviceCapabilities) -> PnpAnswer {
        let policy = services.removal_policy(&self.class);
        let decided = match pdo::capabilities(caps.version, policy) {
            Ok(decided) => decided,
            Err(_) => return PnpAnswer::status(STATUS_INVALID_PARAMETER),
        };
        let mut filled = *caps;
        filled.device_d1 = decided.device_d1;
        filled.device_d2 = decided.device_d2;
        filled.lock_supported = decided.lock_supported;
        filled.eject_supported = decided.eject_supported;
        filled.removable = decided.removable;
        filled.dock_device = decided.dock_device;
        filled.unique_id = decided.unique_id;
        filled.silent_install = decided.silent_install;
        filled.raw_device_ok = decided.raw_device_ok;
        filled.surprise_removal_ok = decided.surprise_removal_ok;
        filled.address = decided.address;
        filled.ui_number = decided.ui_number;
        for (slot, power) in filled.device_state.iter_mut().zip(decided.device_state) {
            match power {
                pdo::DevicePower::Untouched => {}
                pdo::DevicePower::D0 => *slot = DevicePower::D0,
                pdo::DevicePower::D3 => *slot = DevicePower::D3,
            }
        }
        filled.system_wake = SystemPower::Unspecified;
        filled.device_wake = DevicePower::Unspecified;
        filled.latencies = [0; 3];
        PnpAnswer::success(PnpReply::Capabilities(filled))
    }

    fn text(&self, services: &dyn ChildServices, kind: TextKind) -> PnpAnswer {
        let kind = match kind {
            TextKind::Description => DeviceText::Description,
            TextKind::LocationInformation => DeviceText::LocationInformation,
            TextKind::Other(_) => return PnpAnswer::status(STATUS_NOT_SUPPORTED),
        };
        let vendor_name =
            crate::fdo::vendor_name(services.vendor_prefix(), services.pci_device_id());
        PnpAnswer::success(PnpReply::Text(pdo::device_text(
            &vendor_name,
            &self.class,
            kind,
        )))
    }

    fn id(&self, services: &dyn ChildServices, kind: IdKind) -> PnpAnswer {
        let query = match kind {
            IdKind::DeviceId => BusQueryId::DeviceId,
            IdKind::HardwareIds => BusQueryId::HardwareIds,
            IdKind::CompatibleIds => BusQueryId::CompatibleIds,
            IdKind::InstanceId => BusQueryId::InstanceId,
            _ => return PnpAnswer::status(STATUS_NOT_SUPPORTED),
        };
        let names = IdNames {
            vendor_prefix: services.vendor_prefix(),
            pci_device_id: services.pci_device_id(),
            class: &self.class,
        };
        let mut text = String::new();
        if write_id(query, &names, &mut text).is_err() {
            return PnpAnswer::status(STATUS_INVALID_PARAMETER);
        }
        let mut items: Vec<String> = text
            .split('\0')
            .filter(|item| !item.is_empty())
            .map(String::from)
            .collect();
        if kind.is_list() {
            PnpAnswer::success(PnpReply::TextList(items))
        } else {
            PnpAnswer::success(PnpReply::Text(items.pop().unwrap_or_default()))
        }
    }

    /// Look at an `IRP_MJ_POWER` request: set-power is always completed with success (the
    /// PDO's D3↔D0 work runs first, except at shutdown, where nothing changes);
    /// query-power succeeds; others keep their status.
    pub fn power(&mut self, services: &dyn ChildServices, request: &PowerRequest) -> PowerStep {
        if let Some(step) = Self::power_at_once(request) {
            return step;
        }
        match *request {
            PowerRequest::Set(PowerState::Device(target), _) => {
                if target < self.device_power {
                    self.d3_to_d0(services);
                } else if target > self.device_power {
                    self.d0_to_d3(services);
                    self.device_power = target;
                }
                PowerStep::Complete(STATUS_SUCCESS)
            }
            PowerRequest::Set(PowerState::System(target), _) => {
                self.system_power = target;
                PowerStep::Complete(STATUS_SUCCESS)
            }
            // Answered by `power_at_once` above.
            PowerRequest::Query(..) | PowerRequest::Other(_) => PowerStep::CompleteUnchanged,
        }
    }

    /// The answer to a power request that changes nothing (query-power, a set-power at
    /// shutdown, other minors), given without the machine: the edge answers these in its
    /// dispatch routine, at whatever IRQL a child's power IRP arrives (upstream
    /// `PdoQueryPower`, `PdoSetPower`'s shutdown case); None when [`power`](Self::power)
    /// must look (at PASSIVE_LEVEL).
    pub fn power_at_once(request: &PowerRequest) -> Option<PowerStep> {
        match *request {
            PowerRequest::Set(_, action) if action.is_shutdown() => {
                Some(PowerStep::Complete(STATUS_SUCCESS))
            }
            PowerRequest::Set(..) => None,
            PowerRequest::Query(..) => Some(PowerStep::Complete(STATUS_SUCCESS)),
            PowerRequest::Other(_) => Some(PowerStep::CompleteUnchanged),
        }
    }
}

/// `IRP_MN_QUERY_RESOURCE_REQUIREMENTS` on a child (spec §3.3): one `Internal` list with a
/// page of memory and a level-sensitive interrupt (for storport-based children).
pub fn resource_requirements() -> ResourceRequirements {
    ResourceRequirements {
        interface_type: INTERFACE_TYPE_INTERNAL,
        bus_number: 0,
        slot_number: 0,
        alternatives: vec![vec![
            RequirementDescriptor {
                option: 0,
                share: Share::DeviceExclusive,
                flags: flags::MEMORY_READ_WRITE
                    | flags::MEMORY_PREFETCHABLE
                    | flags::MEMORY_CACHEABLE,
                requirement: Requirement::Memory {
                    length: PAGE_SIZE,
                    alignment: PAGE_SIZE,
                    minimum: 0,
                    maximum: u64::MAX,
                },
            },
            RequirementDescriptor {
                option: 0,
                share: Share::DeviceExclusive,
                flags: 0,
                requirement: Requirement::Interrupt {
                    flags: flags::INTERRUPT_LEVEL_SENSITIVE,
                    minimum_vector: 0,
                    maximum_vector: u32::MAX,
                    policy: IrqPolicy::OneCloseProcessor,
                    targeted: 0,
                    group: ALL_PROCESSOR_GROUPS,
                },
            },
        ]],
    }
}
