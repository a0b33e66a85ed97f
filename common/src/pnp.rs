//! Typed PnP and power requests and their answers (sans-IO): what the WDM edge decodes an
//! `IRP_MJ_PNP`/`IRP_MJ_POWER` IRP into before calling a driver's state machine, and what
//! the machine hands back to be turned into IRP fields. Shared by xenbus and xenfilt and
//! spoken by the simulator's PnP manager.
//!
//! A state machine answers a request with an action: complete it here ([`PnpAction::
//! Complete`]), leave the IRP's status as it came and complete it (a PDO's answer to a
//! request it does not handle), or hand it to the lower driver — skipping it, or waiting
//! for the lower answer and giving it back to the machine (`finish`).
#![forbid(unsafe_code)]

use alloc::string::String;
use alloc::vec::Vec;
use xen_include::guid::Guid;
use xen_include::status::NtStatus;

/// `IRP_MN_*` minor function codes of `IRP_MJ_PNP`.
pub mod minor {
    /// `IRP_MN_START_DEVICE`.
    pub const START_DEVICE: u8 = 0x00;
    /// `IRP_MN_QUERY_REMOVE_DEVICE`.
    pub const QUERY_REMOVE_DEVICE: u8 = 0x01;
    /// `IRP_MN_REMOVE_DEVICE`.
    pub const REMOVE_DEVICE: u8 = 0x02;
    /// `IRP_MN_CANCEL_REMOVE_DEVICE`.
    pub const CANCEL_REMOVE_DEVICE: u8 = 0x03;
    /// `IRP_MN_STOP_DEVICE`.
    pub const STOP_DEVICE: u8 = 0x04;
    /// `IRP_MN_QUERY_STOP_DEVICE`.
    pub const QUERY_STOP_DEVICE: u8 = 0x05;
    /// `IRP_MN_CANCEL_STOP_DEVICE`.
    pub const CANCEL_STOP_DEVICE: u8 = 0x06;
    /// `IRP_MN_QUERY_DEVICE_RELATIONS`.
    pub const QUERY_DEVICE_RELATIONS: u8 = 0x07;
    /// `IRP_MN_QUERY_INTERFACE`.
    pub const QUERY_INTERFACE: u8 = 0x08;
    /// `IRP_MN_QUERY_CAPABILITIES`.
    pub const QUERY_CAPABILITIES: u8 = 0x09;
    /// `IRP_MN_QUERY_RESOURCES`.
    pub const QUERY_RESOURCES: u8 = 0x0A;
    /// `IRP_MN_QUERY_RESOURCE_REQUIREMENTS`.
    pub const QUERY_RESOURCE_REQUIREMENTS: u8 = 0x0B;
    /// `IRP_MN_QUERY_DEVICE_TEXT`.
    pub const QUERY_DEVICE_TEXT: u8 = 0x0C;
    /// `IRP_MN_FILTER_RESOURCE_REQUIREMENTS`.
    pub const FILTER_RESOURCE_REQUIREMENTS: u8 = 0x0D;
    /// `IRP_MN_READ_CONFIG`.
    pub const READ_CONFIG: u8 = 0x0F;
    /// `IRP_MN_WRITE_CONFIG`.
    pub const WRITE_CONFIG: u8 = 0x10;
    /// `IRP_MN_EJECT`.
    pub const EJECT: u8 = 0x11;
    /// `IRP_MN_SET_LOCK`.
    pub const SET_LOCK: u8 = 0x12;
    /// `IRP_MN_QUERY_ID`.
    pub const QUERY_ID: u8 = 0x13;
    /// `IRP_MN_QUERY_PNP_DEVICE_STATE`.
    pub const QUERY_PNP_DEVICE_STATE: u8 = 0x14;
    /// `IRP_MN_QUERY_BUS_INFORMATION`.
    pub const QUERY_BUS_INFORMATION: u8 = 0x15;
    /// `IRP_MN_DEVICE_USAGE_NOTIFICATION`.
    pub const DEVICE_USAGE_NOTIFICATION: u8 = 0x16;
    /// `IRP_MN_SURPRISE_REMOVAL`.
    pub const SURPRISE_REMOVAL: u8 = 0x17;
    /// `IRP_MN_WAIT_WAKE` (power).
    pub const WAIT_WAKE: u8 = 0x00;
    /// `IRP_MN_POWER_SEQUENCE` (power).
    pub const POWER_SEQUENCE: u8 = 0x01;
    /// `IRP_MN_SET_POWER` (power).
    pub const SET_POWER: u8 = 0x02;
    /// `IRP_MN_QUERY_POWER` (power).
    pub const QUERY_POWER: u8 = 0x03;
}

/// `CM_SHARE_DISPOSITION`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Share {
    /// `CmResourceShareUndetermined` (0).
    Undetermined,
    /// `CmResourceShareDeviceExclusive` (1).
    DeviceExclusive,
    /// `CmResourceShareDriverExclusive` (2).
    DriverExclusive,
    /// `CmResourceShareShared` (3).
    Shared,
}

impl Share {
    /// From the `ShareDisposition` byte (unknown values read as undetermined).
    pub const fn from_raw(raw: u8) -> Self {
        match raw {
            1 => Share::DeviceExclusive,
            2 => Share::DriverExclusive,
            3 => Share::Shared,
            _ => Share::Undetermined,
        }
    }

    /// The `ShareDisposition` byte.
    pub const fn raw(self) -> u8 {
        match self {
            Share::Undetermined => 0,
            Share::DeviceExclusive => 1,
            Share::DriverExclusive => 2,
            Share::Shared => 3,
        }
    }
}

/// `CmResourceType*` numbers used by the typed lists.
pub mod resource_type {
    /// `CmResourceTypePort`.
    pub const PORT: u8 = 1;
    /// `CmResourceTypeInterrupt`.
    pub const INTERRUPT: u8 = 2;
    /// `CmResourceTypeMemory`.
    pub const MEMORY: u8 = 3;
    /// `CmResourceTypeDevicePrivate`.
    pub const DEVICE_PRIVATE: u8 = 129;
}

/// `CM_RESOURCE_INTERRUPT_*` and `CM_RESOURCE_MEMORY_*` flags.
pub mod flags {
    /// `CM_RESOURCE_INTERRUPT_LEVEL_SENSITIVE`.
    pub const INTERRUPT_LEVEL_SENSITIVE: u16 = 0x0000;
    /// `CM_RESOURCE_INTERRUPT_LATCHED`.
    pub const INTERRUPT_LATCHED: u16 = 0x0001;
    /// `CM_RESOURCE_INTERRUPT_MESSAGE`.
    pub const INTERRUPT_MESSAGE: u16 = 0x0002;
    /// `CM_RESOURCE_INTERRUPT_POLICY_INCLUDED`.
    pub const INTERRUPT_POLICY_INCLUDED: u16 = 0x0004;
    /// `CM_RESOURCE_MEMORY_READ_WRITE`.
    pub const MEMORY_READ_WRITE: u16 = 0x0000;
    /// `CM_RESOURCE_MEMORY_PREFETCHABLE`.
    pub const MEMORY_PREFETCHABLE: u16 = 0x0004;
    /// `CM_RESOURCE_MEMORY_CACHEABLE`.
    pub const MEMORY_CACHEABLE: u16 = 0x0020;
}

/// `CM_RESOURCE_INTERRUPT_MESSAGE_TOKEN`: the vector range of a message interrupt
/// requirement ("any message").
pub const INTERRUPT_MESSAGE_TOKEN: u32 = 0xFFFF_FFFE;
/// `ALL_PROCESSOR_GROUPS`.
pub const ALL_PROCESSOR_GROUPS: u16 = 0xFFFF;

/// `IRQ_DEVICE_POLICY`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IrqPolicy {
    /// `IrqPolicyMachineDefault` (0).
    MachineDefault,
    /// `IrqPolicyAllCloseProcessors` (1).
    AllCloseProcessors,
    /// `IrqPolicyOneCloseProcessor` (2).
    OneCloseProcessor,
    /// `IrqPolicyAllProcessorsInMachine` (3).
    AllProcessorsInMachine,
    /// `IrqPolicySpecifiedProcessors` (4).
    SpecifiedProcessors,
    /// `IrqPolicySpreadMessagesAcrossAllProcessors` (5).
    SpreadMessagesAcrossAllProcessors,
    /// Another value.
    Other(u32),
}

impl IrqPolicy {
    /// From the raw `IRQ_DEVICE_POLICY`.
    pub const fn from_raw(raw: u32) -> Self {
        match raw {
            0 => IrqPolicy::MachineDefault,
            1 => IrqPolicy::AllCloseProcessors,
            2 => IrqPolicy::OneCloseProcessor,
            3 => IrqPolicy::AllProcessorsInMachine,
            4 => IrqPolicy::SpecifiedProcessors,
            5 => IrqPolicy::SpreadMessagesAcrossAllProcessors,
            other => IrqPolicy::Other(other),
        }
    }

    /// The raw `IRQ_DEVICE_POLICY`.
    pub const fn raw(self) -> u32 {
        match self {
            IrqPolicy::MachineDefault => 0,
            IrqPolicy::AllCloseProcessors => 1,
            IrqPolicy::OneCloseProcessor => 2,
            IrqPolicy::AllProcessorsInMachine => 3,
            IrqPolicy::SpecifiedProcessors => 4,
            IrqPolicy::SpreadMessagesAcrossAllProcessors => 5,
            IrqPolicy::Other(other) => other,
        }
    }
}

/// One assigned interrupt (`CM_PARTIAL_RESOURCE_DESCRIPTOR.u.Interrupt` or
/// `.u.MessageInterrupt`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AssignedInterrupt {
    /// `Flags` (`CM_RESOURCE_INTERRUPT_*`).
    pub flags: u16,
    /// Translated: the IDT vector; raw: the GSI (line) or message data.
    pub vector: u32,
    /// IRQL (translated) or level.
    pub level: u32,
    /// Processor group.
    pub group: u16,
    /// Target processors within `group`.
    pub affinity: u64,
    /// Messages granted (message-signalled interrupts only, else 0).
    pub message_count: u16,
}

impl AssignedInterrupt {
    /// Message-signalled (`CM_RESOURCE_INTERRUPT_MESSAGE`).
    pub const fn is_message(&self) -> bool {
        self.flags & flags::INTERRUPT_MESSAGE != 0
    }
}

/// One assigned resource (`CM_PARTIAL_RESOURCE_DESCRIPTOR`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AssignedResource {
    /// `CmResourceTypePort`.
    Port {
        /// Start address.
        start: u64,
        /// Length in bytes.
        length: u32,
    },
    /// `CmResourceTypeMemory`.
    Memory {
        /// Physical start address.
        start: u64,
        /// Length in bytes.
        length: u32,
    },
    /// `CmResourceTypeInterrupt` (line or message-signalled).
    Interrupt(AssignedInterrupt),
    /// `CmResourceTypeDevicePrivate`: three opaque words the bus driver ignores.
    DevicePrivate([u32; 3]),
    /// Another type, kept opaque.
    Other {
        /// `Type`.
        kind: u8,
        /// The union's first three words.
        data: [u32; 3],
    },
}

/// A partial descriptor with its share disposition and flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Assigned {
    /// `ShareDisposition`.
    pub share: Share,
    /// The resource (interrupt flags live in the interrupt itself).
    pub resource: AssignedResource,
    /// `Flags` for ports and memory (`CM_RESOURCE_MEMORY_*`).
    pub flags: u16,
}

/// A `CM_PARTIAL_RESOURCE_LIST` (one bus, as PnP hands it to START_DEVICE).
pub type ResourceList = Vec<Assigned>;

/// What START_DEVICE carries: the raw and translated lists, in the same order (the n-th
/// raw descriptor and the n-th translated one describe the same resource).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StartResources {
    /// `AllocatedResources`.
    pub raw: ResourceList,
    /// `AllocatedResourcesTranslated`.
    pub translated: ResourceList,
}

/// What an `IO_RESOURCE_DESCRIPTOR` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requirement {
    /// A port range.
    Port {
        /// Length in bytes.
        length: u32,
        /// Alignment.
        alignment: u32,
        /// Lowest acceptable address.
        minimum: u64,
        /// Highest acceptable address.
        maximum: u64,
    },
    /// A memory range.
    Memory {
        /// Length in bytes.
        length: u32,
        /// Alignment.
        alignment: u32,
        /// Lowest acceptable address.
        minimum: u64,
        /// Highest acceptable address.
        maximum: u64,
    },
    /// An interrupt.
    Interrupt {
        /// `Flags` (`CM_RESOURCE_INTERRUPT_*`).
        flags: u16,
        /// Lowest vector ([`INTERRUPT_MESSAGE_TOKEN`] for "any message").
        minimum_vector: u32,
        /// Highest vector.
        maximum_vector: u32,
        /// `AffinityPolicy`.
        policy: IrqPolicy,
        /// `TargetedProcessors` (for `SpecifiedProcessors`).
        targeted: u64,
        /// `Group` ([`ALL_PROCESSOR_GROUPS`] for any).
        group: u16,
    },
    /// `CmResourceTypeDevicePrivate`.
    DevicePrivate([u32; 3]),
    /// Another type, kept opaque.
    Other {
        /// `Type`.
        kind: u8,
        /// The union's first six words.
        data: [u32; 6],
    },
}

/// One `IO_RESOURCE_DESCRIPTOR`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequirementDescriptor {
    /// `Option` (`IO_RESOURCE_PREFERRED` …).
    pub option: u8,
    /// `ShareDisposition`.
    pub share: Share,
    /// `Flags` of ports and memory (interrupt flags live in the requirement).
    pub flags: u16,
    /// The requirement.
    pub requirement: Requirement,
}

/// `IO_RESOURCE_REQUIREMENTS_LIST`: alternative lists, any one of which satisfies the
/// device.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResourceRequirements {
    /// `InterfaceType` (`Internal` = 0, `PCIBus` = 5).
    pub interface_type: u32,
    /// `BusNumber`.
    pub bus_number: u32,
    /// `SlotNumber`.
    pub slot_number: u32,
    /// `List[]`, each an `IO_RESOURCE_LIST`.
    pub alternatives: Vec<Vec<RequirementDescriptor>>,
}

/// `INTERFACE_TYPE` `Internal`.
pub const INTERFACE_TYPE_INTERNAL: u32 = 0;
/// `INTERFACE_TYPE` `PCIBus`.
pub const INTERFACE_TYPE_PCI_BUS: u32 = 5;

/// `DEVICE_RELATION_TYPE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RelationKind {
    /// `BusRelations` (0).
    Bus,
    /// `EjectionRelations` (1).
    Ejection,
    /// `PowerRelations` (2).
    Power,
    /// `RemovalRelations` (3).
    Removal,
    /// `TargetDeviceRelation` (4).
    TargetDevice,
    /// `SingleBusRelations` (5).
    SingleBus,
    /// `TransportRelations` (6).
    Transport,
    /// Another value.
    Other(u32),
}

impl RelationKind {
    /// From the raw `DEVICE_RELATION_TYPE`.
    pub const fn from_raw(raw: u32) -> Self {
        match raw {
            0 => RelationKind::Bus,
            1 => RelationKind::Ejection,
            2 => RelationKind::Power,
            3 => RelationKind::Removal,
            4 => RelationKind::TargetDevice,
            5 => RelationKind::SingleBus,
            6 => RelationKind::Transport,
            other => RelationKind::Other(other),
        }
    }
}

/// `BUS_QUERY_ID_TYPE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdKind {
    /// `BusQueryDeviceID` (0): one string.
    DeviceId,
    /// `BusQueryHardwareIDs` (1): a MULTI_SZ list.
    HardwareIds,
    /// `BusQueryCompatibleIDs` (2): a MULTI_SZ list.
    CompatibleIds,
    /// `BusQueryInstanceID` (3): one string.
    InstanceId,
    /// `BusQueryDeviceSerialNumber` (4).
    DeviceSerialNumber,
    /// `BusQueryContainerID` (5).
    ContainerId,
    /// Another value.
    Other(u32),
}

impl IdKind {
    /// From the raw `BUS_QUERY_ID_TYPE`.
    pub const fn from_raw(raw: u32) -> Self {
        match raw {
            0 => IdKind::DeviceId,
            1 => IdKind::HardwareIds,
            2 => IdKind::CompatibleIds,
            3 => IdKind::InstanceId,
            4 => IdKind::DeviceSerialNumber,
            5 => IdKind::ContainerId,
            other => IdKind::Other(other),
        }
    }

    /// The raw `BUS_QUERY_ID_TYPE`.
    pub const fn raw(self) -> u32 {
        match self {
            IdKind::DeviceId => 0,
            IdKind::HardwareIds => 1,
            IdKind::CompatibleIds => 2,
            IdKind::InstanceId => 3,
            IdKind::DeviceSerialNumber => 4,
            IdKind::ContainerId => 5,
            IdKind::Other(other) => other,
        }
    }

    /// Whether the answer is a MULTI_SZ list.
    pub const fn is_list(self) -> bool {
        matches!(self, IdKind::HardwareIds | IdKind::CompatibleIds)
    }
}

/// `DEVICE_TEXT_TYPE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextKind {
    /// `DeviceTextDescription` (0).
    Description,
    /// `DeviceTextLocationInformation` (1).
    LocationInformation,
    /// Another value.
    Other(u32),
}

impl TextKind {
    /// From the raw `DEVICE_TEXT_TYPE`.
    pub const fn from_raw(raw: u32) -> Self {
        match raw {
            0 => TextKind::Description,
            1 => TextKind::LocationInformation,
            other => TextKind::Other(other),
        }
    }
}

/// `DEVICE_USAGE_NOTIFICATION_TYPE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UsageKind {
    /// `DeviceUsageTypePaging` (1).
    Paging,
    /// `DeviceUsageTypeHibernation` (2).
    Hibernation,
    /// `DeviceUsageTypeDumpFile` (3).
    DumpFile,
    /// Another value (`Undefined`, `Boot`, `PostDisplay`, …).
    Other(u32),
}

impl UsageKind {
    /// From the raw `DEVICE_USAGE_NOTIFICATION_TYPE`.
    pub const fn from_raw(raw: u32) -> Self {
        match raw {
            1 => UsageKind::Paging,
            2 => UsageKind::Hibernation,
            3 => UsageKind::DumpFile,
            other => UsageKind::Other(other),
        }
    }

    /// The raw `DEVICE_USAGE_NOTIFICATION_TYPE`.
    pub const fn raw(self) -> u32 {
        match self {
            UsageKind::Paging => 1,
            UsageKind::Hibernation => 2,
            UsageKind::DumpFile => 3,
            UsageKind::Other(other) => other,
        }
    }
}

/// `PNP_DEVICE_STATE` bits.
pub mod device_state {
    /// `PNP_DEVICE_DISABLED`.
    pub const DISABLED: u32 = 0x0000_0001;
    /// `PNP_DEVICE_DONT_DISPLAY_IN_UI`.
    pub const DONT_DISPLAY_IN_UI: u32 = 0x0000_0002;
    /// `PNP_DEVICE_FAILED`.
    pub const FAILED: u32 = 0x0000_0004;
    /// `PNP_DEVICE_REMOVED`.
    pub const REMOVED: u32 = 0x0000_0008;
    /// `PNP_DEVICE_RESOURCE_REQUIREMENTS_CHANGED`.
    pub const RESOURCE_REQUIREMENTS_CHANGED: u32 = 0x0000_0010;
    /// `PNP_DEVICE_NOT_DISABLEABLE`.
    pub const NOT_DISABLEABLE: u32 = 0x0000_0020;
}

/// `SYSTEM_POWER_STATE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SystemPower {
    /// `PowerSystemUnspecified` (0).
    Unspecified,
    /// `PowerSystemWorking` (1, S0).
    Working,
    /// `PowerSystemSleeping1` (2, S1).
    Sleeping1,
    /// `PowerSystemSleeping2` (3, S2).
    Sleeping2,
    /// `PowerSystemSleeping3` (4, S3).
    Sleeping3,
    /// `PowerSystemHibernate` (5, S4).
    Hibernate,
    /// `PowerSystemShutdown` (6, S5).
    Shutdown,
}

impl SystemPower {
    /// From the raw `SYSTEM_POWER_STATE` (`None` beyond `PowerSystemShutdown`).
    pub const fn from_raw(raw: u32) -> Option<Self> {
        Some(match raw {
            0 => SystemPower::Unspecified,
            1 => SystemPower::Working,
            2 => SystemPower::Sleeping1,
            3 => SystemPower::Sleeping2,
            4 => SystemPower::Sleeping3,
            5 => SystemPower::Hibernate,
            6 => SystemPower::Shutdown,
            _ => return None,
        })
    }

    /// The raw `SYSTEM_POWER_STATE`, also the index into `DeviceState[]`.
    pub const fn raw(self) -> u32 {
        self as u32
    }
}

/// `DEVICE_POWER_STATE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum DevicePower {
    /// `PowerDeviceUnspecified` (0): "leave what is there".
    Unspecified,
    /// `PowerDeviceD0` (1).
    D0,
    /// `PowerDeviceD1` (2).
    D1,
    /// `PowerDeviceD2` (3).
    D2,
    /// `PowerDeviceD3` (4).
    D3,
}

impl DevicePower {
    /// From the raw `DEVICE_POWER_STATE` (`None` beyond D3).
    pub const fn from_raw(raw: u32) -> Option<Self> {
        Some(match raw {
            0 => DevicePower::Unspecified,
            1 => DevicePower::D0,
            2 => DevicePower::D1,
            3 => DevicePower::D2,
            4 => DevicePower::D3,
            _ => return None,
        })
    }

    /// The raw `DEVICE_POWER_STATE`.
    pub const fn raw(self) -> u32 {
        self as u32
    }
}

/// `DEVICE_CAPABILITIES` (version 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceCapabilities {
    /// `Size` as the requester filled it.
    pub size: u16,
    /// `Version` as the requester filled it (must be 1).
    pub version: u16,
    /// `DeviceD1`.
    pub device_d1: bool,
    /// `DeviceD2`.
    pub device_d2: bool,
    /// `LockSupported`.
    pub lock_supported: bool,
    /// `EjectSupported`.
    pub eject_supported: bool,
    /// `Removable`.
    pub removable: bool,
    /// `DockDevice`.
    pub dock_device: bool,
    /// `UniqueID`.
    pub unique_id: bool,
    /// `SilentInstall`.
    pub silent_install: bool,
    /// `RawDeviceOK`.
    pub raw_device_ok: bool,
    /// `SurpriseRemovalOK`.
    pub surprise_removal_ok: bool,
    /// `Address` (0xFFFFFFFF = unknown).
    pub address: u32,
    /// `UINumber` (0xFFFFFFFF = unknown).
    pub ui_number: u32,
    /// `DeviceState[PowerSystemMaximum]`, indexed by [`SystemPower::raw`].
    pub device_state: [DevicePower; 7],
    /// `SystemWake`.
    pub system_wake: SystemPower,
    /// `DeviceWake`.
    pub device_wake: DevicePower,
    /// `D1Latency`, `D2Latency`, `D3Latency`.
    pub latencies: [u32; 3],
}

impl DeviceCapabilities {
    /// A blank structure as the PnP manager sends it (`Size`, `Version` = 1, `Address` and
    /// `UINumber` unknown, everything else zero).
    pub const fn blank() -> Self {
        Self {
            size: 64,
            version: 1,
            device_d1: false,
            device_d2: false,
            lock_supported: false,
            eject_supported: false,
            removable: false,
            dock_device: false,
            unique_id: false,
            silent_install: false,
            raw_device_ok: false,
            surprise_removal_ok: false,
            address: u32::MAX,
            ui_number: u32::MAX,
            device_state: [DevicePower::Unspecified; 7],
            system_wake: SystemPower::Unspecified,
            device_wake: DevicePower::Unspecified,
            latencies: [0; 3],
        }
    }

    /// The device state a system state maps to.
    pub fn device_state_for(&self, system: SystemPower) -> DevicePower {
        self.device_state
            .get(system.raw() as usize)
            .copied()
            .unwrap_or(DevicePower::Unspecified)
    }
}

/// `PNP_BUS_INFORMATION`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BusInformation {
    /// `BusTypeGuid`.
    pub bus_type: Guid,
    /// `LegacyBusType` (`INTERFACE_TYPE`).
    pub legacy_bus_type: u32,
    /// `BusNumber`.
    pub bus_number: u32,
}

/// `GUID_BUS_TYPE_INTERNAL` {1530EA73-086B-11D1-A09F-00C04FC340B1}.
pub const GUID_BUS_TYPE_INTERNAL: Guid = Guid::from_u128(0x1530EA73_086B_11D1_A09F_00C04FC340B1);
/// `GUID_BUS_INTERFACE_STANDARD` {496B8280-6F25-11D0-BEAF-08002BE2092F}.
pub const GUID_BUS_INTERFACE_STANDARD: Guid =
    Guid::from_u128(0x496B8280_6F25_11D0_BEAF_08002BE2092F);

/// `IRP_MN_QUERY_INTERFACE`'s parameters.
///
/// The requester owns a buffer of `size` bytes at `buffer`; the provider that answers
/// writes the interface (`INTERFACE` header + the version's function table) into it,
/// never more than `size` bytes, and completes with `Information = 0`. A provider answers
/// only while `incoming` is still `STATUS_NOT_SUPPORTED` (spec §2.1): a different status
/// means a driver above already answered and the IRP passes through untouched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InterfaceQuery {
    /// `InterfaceType`.
    pub guid: Guid,
    /// `Size` of the caller's buffer, in bytes.
    pub size: u16,
    /// `Version` asked for (exact; no negotiation).
    pub version: u16,
    /// `Interface`: the caller's buffer (an address; written only by the C-ABI edge).
    pub buffer: usize,
    /// `InterfaceSpecificData`.
    pub specific: usize,
    /// `IoStatus.Status` of the IRP as it arrived.
    pub incoming: NtStatus,
}

/// A typed `IRP_MJ_PNP` request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PnpRequest {
    /// `IRP_MN_START_DEVICE` with its resources.
    Start(StartResources),
    /// `IRP_MN_QUERY_STOP_DEVICE`.
    QueryStop,
    /// `IRP_MN_STOP_DEVICE`.
    Stop,
    /// `IRP_MN_CANCEL_STOP_DEVICE`.
    CancelStop,
    /// `IRP_MN_QUERY_REMOVE_DEVICE`.
    QueryRemove,
    /// `IRP_MN_REMOVE_DEVICE`.
    Remove,
    /// `IRP_MN_CANCEL_REMOVE_DEVICE`.
    CancelRemove,
    /// `IRP_MN_SURPRISE_REMOVAL`.
    SurpriseRemoval,
    /// `IRP_MN_QUERY_DEVICE_RELATIONS`.
    QueryDeviceRelations(RelationKind),
    /// `IRP_MN_QUERY_INTERFACE`.
    QueryInterface(InterfaceQuery),
    /// `IRP_MN_QUERY_CAPABILITIES` with the structure as the requester filled it.
    QueryCapabilities(DeviceCapabilities),
    /// `IRP_MN_QUERY_RESOURCES`.
    QueryResources,
    /// `IRP_MN_QUERY_RESOURCE_REQUIREMENTS`.
    QueryResourceRequirements,
    /// `IRP_MN_FILTER_RESOURCE_REQUIREMENTS` with the list so far (None: no list yet).
    FilterResourceRequirements(Option<ResourceRequirements>),
    /// `IRP_MN_QUERY_DEVICE_TEXT` (type, locale).
    QueryDeviceText(TextKind, u32),
    /// `IRP_MN_QUERY_ID`.
    QueryId(IdKind),
    /// `IRP_MN_QUERY_BUS_INFORMATION`.
    QueryBusInformation,
    /// `IRP_MN_DEVICE_USAGE_NOTIFICATION` (type, `InPath`).
    DeviceUsageNotification(UsageKind, bool),
    /// `IRP_MN_QUERY_PNP_DEVICE_STATE` with `IoStatus.Status` as it arrived and the bits
    /// in `Information` so far (meaningful when that status is success).
    QueryPnpDeviceState(NtStatus, u32),
    /// `IRP_MN_EJECT`.
    Eject,
    /// Any other minor function (`READ_CONFIG`, `SET_LOCK`, …).
    Other(u8),
}

impl PnpRequest {
    /// The `IRP_MN_*` minor code.
    pub fn minor(&self) -> u8 {
        match self {
            PnpRequest::Start(_) => minor::START_DEVICE,
            PnpRequest::QueryStop => minor::QUERY_STOP_DEVICE,
            PnpRequest::Stop => minor::STOP_DEVICE,
            PnpRequest::CancelStop => minor::CANCEL_STOP_DEVICE,
            PnpRequest::QueryRemove => minor::QUERY_REMOVE_DEVICE,
            PnpRequest::Remove => minor::REMOVE_DEVICE,
            PnpRequest::CancelRemove => minor::CANCEL_REMOVE_DEVICE,
            PnpRequest::SurpriseRemoval => minor::SURPRISE_REMOVAL,
            PnpRequest::QueryDeviceRelations(_) => minor::QUERY_DEVICE_RELATIONS,
            PnpRequest::QueryInterface(_) => minor::QUERY_INTERFACE,
            PnpRequest::QueryCapabilities(_) => minor::QUERY_CAPABILITIES,
            PnpRequest::QueryResources => minor::QUERY_RESOURCES,
            PnpRequest::QueryResourceRequirements => minor::QUERY_RESOURCE_REQUIREMENTS,
            PnpRequest::FilterResourceRequirements(_) => minor::FILTER_RESOURCE_REQUIREMENTS,
            PnpRequest::QueryDeviceText(..) => minor::QUERY_DEVICE_TEXT,
            PnpRequest::QueryId(_) => minor::QUERY_ID,
            PnpRequest::QueryBusInformation => minor::QUERY_BUS_INFORMATION,
            PnpRequest::DeviceUsageNotification(..) => minor::DEVICE_USAGE_NOTIFICATION,
            PnpRequest::QueryPnpDeviceState(..) => minor::QUERY_PNP_DEVICE_STATE,
            PnpRequest::Eject => minor::EJECT,
            PnpRequest::Other(minor) => *minor,
        }
    }
}

/// What goes back in `IoStatus.Information` (as a typed value the edge lays out).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PnpReply {
    /// `Information` = 0 (or, for QUERY_INTERFACE, the caller's buffer was filled).
    Nothing,
    /// `DEVICE_RELATIONS`: the named child devices (the edge maps names to PDOs).
    Relations(Vec<String>),
    /// `DEVICE_RELATIONS` holding the device the request was sent to
    /// (`TargetDeviceRelation`).
    TargetSelf,
    /// One string (DeviceID, InstanceID, device text).
    Text(String),
    /// A MULTI_SZ list (HardwareIDs, CompatibleIDs).
    TextList(Vec<String>),
    /// The filled `DEVICE_CAPABILITIES` (QUERY_CAPABILITIES fills the caller's structure).
    Capabilities(DeviceCapabilities),
    /// `PNP_BUS_INFORMATION`.
    BusInformation(BusInformation),
    /// `CM_RESOURCE_LIST` (QUERY_RESOURCES).
    Resources(ResourceList),
    /// `IO_RESOURCE_REQUIREMENTS_LIST`.
    Requirements(ResourceRequirements),
    /// `PNP_DEVICE_STATE` bits.
    DeviceState(u32),
}

/// A status and the reply that goes with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PnpAnswer {
    /// `IoStatus.Status`.
    pub status: NtStatus,
    /// `IoStatus.Information`.
    pub reply: PnpReply,
}

impl PnpAnswer {
    /// `status` with nothing in `Information`.
    pub const fn status(status: NtStatus) -> Self {
        Self {
            status,
            reply: PnpReply::Nothing,
        }
    }

    /// `STATUS_SUCCESS` with `reply`.
    pub const fn success(reply: PnpReply) -> Self {
        Self { status: 0, reply }
    }
}

/// What the edge does with a request after the machine looked at it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PnpAction {
    /// Complete the IRP here with this answer.
    Complete(PnpAnswer),
    /// Complete the IRP leaving `IoStatus` as it arrived (a PDO's answer to requests it
    /// does not handle, or a QUERY_INTERFACE somebody else already answered).
    CompleteUnchanged,
    /// Set `IoStatus` to `set` (if any) and pass the IRP down without waiting; the lower
    /// driver completes it.
    PassDown {
        /// The answer put in the IRP before passing it down.
        set: Option<PnpAnswer>,
    },
    /// Pass `forward` (the request, possibly rewritten — e.g. START's resources) down, wait
    /// for the lower driver, and give its answer to the machine's `finish`, whose answer
    /// completes the IRP.
    ForwardAndWait {
        /// The request as the lower driver sees it.
        forward: PnpRequest,
        /// The answer put in the IRP before passing it down (e.g. BusRelations).
        set: Option<PnpAnswer>,
    },
}

/// A power state carried by `IRP_MN_SET_POWER`/`IRP_MN_QUERY_POWER`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PowerState {
    /// A system power state (S-IRP).
    System(SystemPower),
    /// A device power state (D-IRP).
    Device(DevicePower),
}

/// `POWER_ACTION` of an S-IRP (`ShutdownType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PowerAction {
    /// `PowerActionNone` (0).
    None,
    /// `PowerActionSleep` (2).
    Sleep,
    /// `PowerActionHibernate` (3).
    Hibernate,
    /// `PowerActionShutdown` (4).
    Shutdown,
    /// `PowerActionShutdownReset` (5).
    ShutdownReset,
    /// `PowerActionShutdownOff` (6).
    ShutdownOff,
    /// Another value.
    Other(u32),
}

impl PowerAction {
    /// From the raw `POWER_ACTION`.
    pub const fn from_raw(raw: u32) -> Self {
        match raw {
            0 => PowerAction::None,
            2 => PowerAction::Sleep,
            3 => PowerAction::Hibernate,
            4 => PowerAction::Shutdown,
            5 => PowerAction::ShutdownReset,
            6 => PowerAction::ShutdownOff,
            other => PowerAction::Other(other),
        }
    }

    /// `PowerActionShutdown` and beyond: no device power IRP, nothing to tear down.
    pub const fn is_shutdown(self) -> bool {
        matches!(
            self,
            PowerAction::Shutdown | PowerAction::ShutdownReset | PowerAction::ShutdownOff
        )
    }
}

/// A typed `IRP_MJ_POWER` request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PowerRequest {
    /// `IRP_MN_SET_POWER`.
    Set(PowerState, PowerAction),
    /// `IRP_MN_QUERY_POWER`.
    Query(PowerState, PowerAction),
    /// Another minor function (`WAIT_WAKE`, `POWER_SEQUENCE`).
    Other(u8),
}

/// What the edge does with a power request (or after a step the machine asked for).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PowerStep {
    /// Complete the IRP with this status (after `PoStartNextPowerIrp` where needed).
    Complete(NtStatus),
    /// Complete the IRP leaving its status as it arrived (a PDO's other power minors).
    CompleteUnchanged,
    /// Pass the IRP down without waiting (`PoCallDriver`).
    PassDown,
    /// Pass the IRP down, wait, and call the machine's `power_finish` with
    /// [`PowerStage::Lower`] and the lower status.
    ForwardAndWait,
    /// Request a D-IRP (`PoRequestPowerIrp`, with the S-IRP's minor function: SET or QUERY)
    /// to this state on the own stack, wait for it and call `power_finish` with
    /// [`PowerStage::DeviceIrp`] and its status.
    RequestDevicePower(DevicePower),
}

/// Which step of a power request finished (see [`PowerStep`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PowerStage {
    /// The lower driver completed the IRP.
    Lower,
    /// The D-IRP requested for an S-IRP completed.
    DeviceIrp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_codes_round_trip() {
        for raw in 0..8 {
            assert_eq!(IdKind::from_raw(raw).raw(), raw);
            assert_eq!(IrqPolicy::from_raw(raw).raw(), raw);
        }
        assert!(IdKind::HardwareIds.is_list() && !IdKind::DeviceId.is_list());
        assert_eq!(RelationKind::from_raw(0), RelationKind::Bus);
        assert_eq!(RelationKind::from_raw(4), RelationKind::TargetDevice);
        assert_eq!(RelationKind::from_raw(9), RelationKind::Other(9));
        assert_eq!(TextKind::from_raw(1), TextKind::LocationInformation);
        assert_eq!(UsageKind::from_raw(2), UsageKind::Hibernation);
        assert_eq!(UsageKind::Other(4).raw(), 4);
        assert_eq!(SystemPower::from_raw(5), Some(SystemPower::Hibernate));
        assert_eq!(SystemPower::from_raw(7), None);
        assert_eq!(DevicePower::from_raw(4), Some(DevicePower::D3));
        assert_eq!(DevicePower::D0.raw(), 1);
        assert_eq!(PowerAction::from_raw(3), PowerAction::Hibernate);
        assert!(PowerAction::from_raw(4).is_shutdown() && PowerAction::from_raw(6).is_shutdown());
        assert!(!PowerAction::Hibernate.is_shutdown() && !PowerAction::Other(7).is_shutdown());
        for share in 0..4u8 {
            assert_eq!(Share::from_raw(share).raw(), share);
        }
        assert!(SystemPower::Shutdown > SystemPower::Hibernate);
    }

    #[test]
    fn minors_match_wdm() {
        assert_eq!(PnpRequest::Start(StartResources::default()).minor(), 0x00);
        assert_eq!(PnpRequest::QueryId(IdKind::DeviceId).minor(), 0x13);
        assert_eq!(PnpRequest::SurpriseRemoval.minor(), 0x17);
        assert_eq!(PnpRequest::FilterResourceRequirements(None).minor(), 0x0D);
        assert_eq!(
            PnpRequest::DeviceUsageNotification(UsageKind::Paging, true).minor(),
            0x16
        );
        assert_eq!(PnpRequest::Other(0x0F).minor(), minor::READ_CONFIG);
    }

    #[test]
    fn capabilities_map_system_to_device_states() {
        let mut caps = DeviceCapabilities::blank();
        caps.device_state[SystemPower::Working.raw() as usize] = DevicePower::D0;
        caps.device_state[SystemPower::Hibernate.raw() as usize] = DevicePower::D3;
        assert_eq!(caps.device_state_for(SystemPower::Working), DevicePower::D0);
        assert_eq!(
            caps.device_state_for(SystemPower::Hibernate),
            DevicePower::D3
        );
        assert_eq!(
            caps.device_state_for(SystemPower::Sleeping1),
            DevicePower::Unspecified
        );
        assert_eq!(caps.version, 1);
    }

    #[test]
    fn guids_match_wdm() {
        assert_eq!(GUID_BUS_TYPE_INTERNAL.data1, 0x1530EA73);
        assert_eq!(
            GUID_BUS_INTERFACE_STANDARD.data4,
            [0xBE, 0xAF, 8, 0, 0x2B, 0xE2, 9, 0x2F]
        );
    }
}
