//! The bus FDO's PnP and power state machine (spec §5.3, §5.4): the per-CPU message
//! interrupts added to the resource requirements and hidden from PCI at START, the veto
//! of QUERY_STOP/QUERY_REMOVE while the balloon is inflated, BusRelations with the scan
//! thread, capabilities, usage counts, device state and the S/D power transitions.
#![forbid(unsafe_code)]

use alloc::string::String;
use alloc::vec::Vec;
use common::pnp::{
    device_state, flags, Assigned, AssignedInterrupt, AssignedResource, DeviceCapabilities,
    DevicePower, IrqPolicy, PnpAction, PnpAnswer, PnpReply, PnpRequest, PowerRequest, PowerStage,
    PowerState, PowerStep, RelationKind, Requirement, RequirementDescriptor, ResourceRequirements,
    Share, StartResources, SystemPower, UsageKind, INTERRUPT_MESSAGE_TOKEN,
};
use xen_include::status::{NtStatus, STATUS_NOT_SUPPORTED, STATUS_SUCCESS, STATUS_UNSUCCESSFUL};

use super::{PnpState, PnpStates};

/// One interrupt to connect after START (`IoConnectInterruptEx(CONNECT_FULLY_SPECIFIED)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InterruptConnection {
    /// Message-signalled (one per CPU) rather than the PCI line interrupt.
    pub message: bool,
    /// `Latched` (else `LevelSensitive`).
    pub latched: bool,
    /// `ShareVector` (share disposition `Shared`).
    pub shared: bool,
    /// The translated vector.
    pub vector: u32,
    /// The translated IRQL.
    pub irql: u32,
    /// Processor group.
    pub group: u16,
    /// `ProcessorEnableMask`.
    pub affinity: u64,
    /// The line interrupt's raw vector (its GSI, the callback via); None for messages.
    pub line: Option<u32>,
}

impl InterruptConnection {
    /// The processor the interrupt targets: the highest bit of its affinity (as upstream).
    pub fn processor(&self) -> Option<u32> {
        if self.affinity == 0 {
            None
        } else {
            Some(63 - self.affinity.leading_zeros())
        }
    }
}

/// What START_DEVICE gave the bus, in the form the runtime needs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BusResources {
    /// Every interrupt, in the order of the resource list.
    pub interrupts: Vec<InterruptConnection>,
    /// The first memory BAR as (physical start, length in bytes).
    pub memory: Option<(u64, u32)>,
}

impl BusResources {
    /// Pair the raw and translated lists (same order) into interrupts and the BAR.
    pub fn parse(resources: &StartResources) -> Self {
        let mut parsed = Self::default();
        for (index, translated) in resources.translated.iter().enumerate() {
            let raw = resources.raw.get(index);
            match translated.resource {
                AssignedResource::Memory { start, length } if parsed.memory.is_none() => {
                    parsed.memory = Some((start, length));
                }
                AssignedResource::Interrupt(interrupt) => {
                    let line = match raw.map(|r| r.resource) {
                        Some(AssignedResource::Interrupt(raw)) if !interrupt.is_message() => {
                            Some(raw.vector)
                        }
                        _ => None,
                    };
                    parsed.interrupts.push(InterruptConnection {
                        message: interrupt.is_message(),
                        latched: interrupt.flags & flags::INTERRUPT_LATCHED != 0,
                        shared: translated.share == Share::Shared,
                        vector: interrupt.vector,
                        irql: interrupt.level,
                        group: interrupt.group,
                        affinity: interrupt.affinity,
                        line,
                    });
                }
                _ => {}
            }
        }
        parsed
    }

    /// The line interrupt's GSI (`HVM_PARAM_CALLBACK_IRQ` for CPU 0).
    pub fn line_gsi(&self) -> Option<u32> {
        self.interrupts.iter().find_map(|i| i.line)
    }

    /// The per-CPU upcall vector: the message interrupt targeting `cpu` (group 0).
    pub fn upcall_vector(&self, cpu: u32) -> Option<u8> {
        self.interrupts
            .iter()
            .find(|i| i.message && i.group == 0 && i.processor() == Some(cpu))
            .and_then(|i| u8::try_from(i.vector).ok())
    }
}

/// `IRP_MN_FILTER_RESOURCE_REQUIREMENTS` on the active FDO (spec §5.3): the existing
/// interrupts are pinned to group 0/CPU 0 and one message interrupt per active CPU is
/// appended to the first alternative list. `processors` are (group, number) pairs.
pub fn add_message_interrupts(
    mut list: ResourceRequirements,
    processors: &[(u16, u8)],
) -> ResourceRequirements {
    if list.alternatives.is_empty() {
        list.alternatives.push(Vec::new());
    }
    if let Some(first) = list.alternatives.first_mut() {
        for descriptor in first.iter_mut() {
            if let Requirement::Interrupt {
                flags: interrupt_flags,
                policy,
                targeted,
                group,
                ..
            } = &mut descriptor.requirement
            {
                *interrupt_flags |= flags::INTERRUPT_POLICY_INCLUDED;
                *policy = IrqPolicy::SpecifiedProcessors;
                *group = 0;
                *targeted = 1;
            }
        }
        for &(group, number) in processors {
            first.push(RequirementDescriptor {
                option: 0,
                share: Share::DeviceExclusive,
                flags: 0,
                requirement: Requirement::Interrupt {
                    flags: flags::INTERRUPT_LATCHED
                        | flags::INTERRUPT_MESSAGE
                        | flags::INTERRUPT_POLICY_INCLUDED,
                    minimum_vector: INTERRUPT_MESSAGE_TOKEN,
                    maximum_vector: INTERRUPT_MESSAGE_TOKEN,
                    policy: IrqPolicy::SpecifiedProcessors,
                    targeted: 1u64 << (number % 64),
                    group,
                },
            });
        }
    }
    list
}

/// START_DEVICE before forwarding: the message interrupts xenbus added are turned into
/// `CmResourceTypeDevicePrivate` so PCI.sys ignores them (spec §5.3).
pub fn hide_message_interrupts(resources: &StartResources) -> StartResources {
    fn hide(list: &[Assigned]) -> Vec<Assigned> {
        list.iter()
            .map(|descriptor| match descriptor.resource {
                AssignedResource::Interrupt(AssignedInterrupt {
                    flags: f,
                    vector,
                    level,
                    affinity,
                    ..
                }) if f & flags::INTERRUPT_MESSAGE != 0 => Assigned {
                    resource: AssignedResource::DevicePrivate([vector, level, affinity as u32]),
                    flags: f,
                    ..*descriptor
                },
                _ => *descriptor,
            })
            .collect()
    }
    StartResources {
        raw: hide(&resources.raw),
        translated: hide(&resources.translated),
    }
}

/// The runtime as the FDO machine sees it. Implemented by the FDO runtime (through the WDM
/// edge for the kernel parts) and by test doubles. Every method is called at
/// PASSIVE_LEVEL from the PnP or power dispatch path.
pub trait BusServices {
    /// Whether this FDO is the active one (only it adds interrupts, runs threads and
    /// has children).
    fn is_active(&self) -> bool;
    /// The active processors as (group, number), in index order.
    fn processors(&self) -> Vec<(u16, u8)>;
    /// Connect every interrupt (`IoConnectInterruptEx`); the ISR is the runtime's.
    fn connect_interrupts(&self, interrupts: &[InterruptConnection]) -> Result<(), NtStatus>;
    /// Disconnect what [`connect_interrupts`](Self::connect_interrupts) connected.
    fn disconnect_interrupts(&self);
    /// Create the scan, suspend and (balloon enabled) balloon threads.
    fn start_threads(&self) -> Result<(), NtStatus>;
    /// Alert and join those threads (balloon, suspend, scan).
    fn stop_threads(&self);
    /// `FdoD3ToD0` with the resources of the last START.
    fn power_up(&self, resources: &BusResources) -> Result<(), NtStatus>;
    /// `FdoD0ToD3`.
    fn power_down(&self);
    /// `FdoS3ToS4` (entering hibernate; bug-checks if a child still holds an interface).
    fn hibernate_enter(&self);
    /// `FdoS4ToS3` (leaving hibernate: LogResume + unplug).
    fn hibernate_exit(&self);
    /// After D3→D0 at START: wake the balloon thread and wait for its first pass (warning
    /// after 10 s, bug check after 1200 s), then wake the scan thread.
    fn after_start(&self);
    /// The balloon holds pages (QUERY_STOP/QUERY_REMOVE are vetoed).
    fn balloon_inflated(&self) -> bool;
    /// Wait until the scan thread finished a pass (10 s timeouts, one warning).
    fn wait_scan(&self);
    /// The children to report in BusRelations (Present ones become Enumerated).
    fn report_children(&self) -> Vec<String>;
    /// After BusRelations went down: destroy children that are Deleted and Missing.
    fn reap_children(&self);
    /// SURPRISE_REMOVAL: every child is Missing ("FDO surprise removed").
    fn surprise_removed(&self);
    /// REMOVE_DEVICE of a started FDO: wait for the scan thread to go idle, then every
    /// child is Missing, Deleted and destroyed unless surprise-removed.
    fn remove_children(&self);
    /// The device's PnP state changed (`IoInvalidateDeviceState`).
    fn invalidate_device_state(&self);
    /// REMOVE_DEVICE finished: drop the FDO (last reference).
    fn destroy(&self);
}

/// The bus FDO's PnP and power state.
pub struct FdoMachine<S: BusServices> {
    services: S,
    pnp: PnpStates,
    device_power: DevicePower,
    system_power: SystemPower,
    resources: Option<BusResources>,
    connected: bool,
    threads: bool,
    lower_capabilities: Option<DeviceCapabilities>,
    usage: [u32; 4],
    not_disableable: bool,
}

impl<S: BusServices> FdoMachine<S> {
    /// A freshly attached FDO (D3, S0, not started).
    pub fn new(services: S) -> Self {
        Self {
            services,
            pnp: PnpStates::new(PnpState::Present),
            device_power: DevicePower::D3,
            system_power: SystemPower::Working,
            resources: None,
            connected: false,
            threads: false,
            lower_capabilities: None,
            usage: [0; 4],
            not_disableable: false,
        }
    }

    /// The services.
    pub fn services(&self) -> &S {
        &self.services
    }

    /// PnP state.
    pub fn pnp_state(&self) -> PnpState {
        self.pnp.current()
    }

    /// Device power state.
    pub fn device_power(&self) -> DevicePower {
        self.device_power
    }

    /// System power state as last seen.
    pub fn system_power(&self) -> SystemPower {
        self.system_power
    }

    /// The resources of the last START.
    pub fn resources(&self) -> Option<&BusResources> {
        self.resources.as_ref()
    }

    /// Whether a paging, hibernation or dump file is on the bus.
    pub fn not_disableable(&self) -> bool {
        self.not_disableable
    }

    /// The lower driver's capabilities (the S→D map).
    pub fn lower_capabilities(&self) -> Option<&DeviceCapabilities> {
        self.lower_capabilities.as_ref()
    }

    /// Look at an `IRP_MJ_PNP` request.
    pub fn pnp(&mut self, request: &PnpRequest) -> PnpAction {
        let success = || Some(PnpAnswer::status(STATUS_SUCCESS));
        match request {
            PnpRequest::Start(resources) => PnpAction::ForwardAndWait {
                forward: PnpRequest::Start(hide_message_interrupts(resources)),
                set: None,
            },
            PnpRequest::FilterResourceRequirements(_)
            | PnpRequest::QueryCapabilities(_)
            | PnpRequest::DeviceUsageNotification(..) => {
                if let PnpRequest::DeviceUsageNotification(kind, in_path) = request {
                    self.count_usage(*kind, *in_path);
                }
                PnpAction::ForwardAndWait {
                    forward: request.clone(),
                    set: None,
                }
            }
            PnpRequest::QueryStop | PnpRequest::QueryRemove => {
                if self.services.balloon_inflated() {
                    return PnpAction::Complete(PnpAnswer::status(STATUS_UNSUCCESSFUL));
                }
                self.pnp.set(if *request == PnpRequest::QueryStop {
                    PnpState::StopPending
                } else {
                    PnpState::RemovePending
                });
                PnpAction::PassDown { set: success() }
            }
            PnpRequest::CancelStop => {
                self.pnp.restore(PnpState::StopPending);
                PnpAction::PassDown { set: success() }
            }
            PnpRequest::CancelRemove => {
                self.pnp.restore(PnpState::RemovePending);
                PnpAction::PassDown { set: success() }
            }
            PnpRequest::Stop => {
                self.shut_down();
                self.pnp.set(PnpState::Stopped);
                PnpAction::PassDown { set: success() }
            }
            PnpRequest::SurpriseRemoval => {
                self.pnp.set(PnpState::SurpriseRemovePending);
                self.services.surprise_removed();
                PnpAction::PassDown { set: success() }
            }
            PnpRequest::Remove => {
                if self.pnp.previous() == PnpState::Started
                    || self.pnp.current() == PnpState::Started
                {
                    if self.services.is_active() {
                        self.services.remove_children();
                    }
                    self.shut_down();
                }
                self.pnp.set(PnpState::Deleted);
                PnpAction::ForwardAndWait {
                    forward: PnpRequest::Remove,
                    set: Some(PnpAnswer::status(STATUS_SUCCESS)),
                }
            }
            PnpRequest::QueryDeviceRelations(RelationKind::Bus) => {
                if self.services.is_active() {
                    self.services.wait_scan();
                }
                let children = if self.services.is_active() {
                    self.services.report_children()
                } else {
                    Vec::new()
                };
                PnpAction::ForwardAndWait {
                    forward: request.clone(),
                    set: Some(PnpAnswer::success(PnpReply::Relations(children))),
                }
            }
            PnpRequest::QueryPnpDeviceState(incoming, bits) => {
                let state = if *incoming == STATUS_SUCCESS {
                    *bits
                } else if *incoming == STATUS_NOT_SUPPORTED {
                    0
                } else {
                    return PnpAction::PassDown { set: None };
                };
                let state = if self.not_disableable {
                    state | device_state::NOT_DISABLEABLE
                } else {
                    state
                };
                PnpAction::PassDown {
                    set: Some(PnpAnswer::success(PnpReply::DeviceState(state))),
                }
            }
            _ => PnpAction::PassDown { set: None },
        }
    }

    /// The lower driver answered a request [`pnp`](Self::pnp) forwarded and waited for;
    /// the answer completes the IRP.
    pub fn pnp_finish(&mut self, request: &PnpRequest, lower: PnpAnswer) -> PnpAnswer {
        match request {
            PnpRequest::Start(resources) => {
                if lower.status < 0 {
                    return lower;
                }
                match self.start(resources) {
                    Ok(()) => lower,
                    Err(status) => PnpAnswer::status(status),
                }
            }
            PnpRequest::FilterResourceRequirements(_) => {
                if lower.status < 0 || !self.services.is_active() {
                    return lower;
                }
                let list = match lower.reply {
                    PnpReply::Requirements(list) => list,
                    _ => ResourceRequirements::default(),
                };
                let processors = self.services.processors();
                PnpAnswer::success(PnpReply::Requirements(add_message_interrupts(
                    list,
                    &processors,
                )))
            }
            PnpRequest::QueryCapabilities(_) => {
                if lower.status < 0 {
                    return lower;
                }
                match lower.reply {
                    PnpReply::Capabilities(mut capabilities) => {
                        self.lower_capabilities = Some(capabilities);
                        capabilities.removable = false;
                        PnpAnswer::success(PnpReply::Capabilities(capabilities))
                    }
                    other => PnpAnswer {
                        status: lower.status,
                        reply: other,
                    },
                }
            }
            PnpRequest::DeviceUsageNotification(..) => {
                let not_disableable = self.usage.iter().any(|&count| count != 0);
                if lower.status >= 0 && not_disableable != self.not_disableable {
                    self.not_disableable = not_disableable;
                    self.services.invalidate_device_state();
                }
                lower
            }
            PnpRequest::QueryDeviceRelations(RelationKind::Bus) => {
                if lower.status >= 0 {
                    self.services.reap_children();
                }
                lower
            }
            PnpRequest::Remove => {
                self.services.destroy();
                lower
            }
            _ => lower,
        }
    }

    fn count_usage(&mut self, kind: UsageKind, in_path: bool) {
        let Some(count) = self.usage.get_mut(kind.raw() as usize) else {
            return;
        };
        if in_path {
            *count = count.saturating_add(1);
        } else {
            *count = count.saturating_sub(1);
        }
    }

    fn start(&mut self, resources: &StartResources) -> Result<(), NtStatus> {
        let parsed = BusResources::parse(resources);
        if self.services.is_active() {
            self.services.connect_interrupts(&parsed.interrupts)?;
            self.connected = true;
            if let Err(status) = self.services.start_threads() {
                self.services.disconnect_interrupts();
                self.connected = false;
                return Err(status);
            }
            self.threads = true;
        }
        if let Err(status) = self.services.power_up(&parsed) {
            self.release_runtime();
            return Err(status);
        }
        self.device_power = DevicePower::D0;
        self.resources = Some(parsed);
        self.services.after_start();
        self.pnp.set(PnpState::Started);
        Ok(())
    }

    fn release_runtime(&mut self) {
        if self.threads {
            self.services.stop_threads();
            self.threads = false;
        }
        if self.connected {
            self.services.disconnect_interrupts();
            self.connected = false;
        }
    }

    /// STOP/REMOVE: D0→D3, threads joined, interrupts disconnected, resources dropped.
    fn shut_down(&mut self) {
        if self.device_power == DevicePower::D0 {
            self.services.power_down();
            self.device_power = DevicePower::D3;
        }
        self.release_runtime();
        self.resources = None;
    }

    /// The D-state the lower capabilities map `system` to (D3 when unknown).
    fn device_state_for(&self, system: SystemPower) -> DevicePower {
        match self
            .lower_capabilities
            .map(|caps| caps.device_state_for(system))
        {
            Some(DevicePower::Unspecified) | None => {
                if system == SystemPower::Working {
                    DevicePower::D0
                } else {
                    DevicePower::D3
                }
            }
            Some(state) => state,
        }
    }

    /// Look at an `IRP_MJ_POWER` request.
    pub fn power(&mut self, request: &PowerRequest) -> PowerStep {
        let (state, action, set) = match *request {
            PowerRequest::Set(state, action) => (state, action, true),
            PowerRequest::Query(state, action) => (state, action, false),
            PowerRequest::Other(_) => return PowerStep::PassDown,
        };
        if action.is_shutdown() {
            // No D-IRP at shutdown: the S-IRP just goes down.
            return PowerStep::PassDown;
        }
        match state {
            PowerState::Device(target) => {
                if set && target > self.device_power && self.device_power == DevicePower::D0 {
                    // D0→D3 before the lower drivers.
                    self.services.power_down();
                    self.device_power = target;
                }
                PowerStep::ForwardAndWait
            }
            PowerState::System(target) => {
                if target == self.system_power {
                    PowerStep::ForwardAndWait
                } else if target < self.system_power {
                    // Up: the lower drivers first.
                    PowerStep::ForwardAndWait
                } else {
                    // Down: our D-IRP first.
                    PowerStep::RequestDevicePower(self.device_state_for(target))
                }
            }
        }
    }

    /// A step asked for by [`power`](Self::power) (or an earlier `power_finish`) is done.
    pub fn power_finish(
        &mut self,
        request: &PowerRequest,
        stage: PowerStage,
        status: NtStatus,
    ) -> PowerStep {
        let (state, set) = match *request {
            PowerRequest::Set(state, _) => (state, true),
            PowerRequest::Query(state, _) => (state, false),
            PowerRequest::Other(_) => return PowerStep::Complete(status),
        };
        match (state, stage) {
            (PowerState::Device(target), PowerStage::Lower) => {
                if set && status >= 0 && target < self.device_power {
                    // D3→D0 after the lower drivers.
                    if let Err(failure) = self.resume_device() {
                        return PowerStep::Complete(failure);
                    }
                }
                PowerStep::Complete(status)
            }
            (PowerState::Device(_), PowerStage::DeviceIrp) => PowerStep::Complete(status),
            (PowerState::System(target), PowerStage::Lower) => {
                if status < 0 || target >= self.system_power {
                    // Same state, or the lower half of a transition down: done.
                    if set && status >= 0 {
                        self.system_power = target;
                    }
                    return PowerStep::Complete(status);
                }
                if set
                    && target < SystemPower::Hibernate
                    && self.system_power >= SystemPower::Hibernate
                {
                    self.services.hibernate_exit();
                }
                PowerStep::RequestDevicePower(self.device_state_for(target))
            }
            (PowerState::System(target), PowerStage::DeviceIrp) => {
                if target < self.system_power {
                    // The D-IRP after the lower half of a transition up ends it.
                    if set {
                        self.system_power = target;
                    }
                    return PowerStep::Complete(STATUS_SUCCESS);
                }
                if set {
                    if target >= SystemPower::Hibernate
                        && self.system_power < SystemPower::Hibernate
                    {
                        self.services.hibernate_enter();
                    }
                    self.system_power = target;
                }
                PowerStep::ForwardAndWait
            }
        }
    }

    fn resume_device(&mut self) -> Result<(), NtStatus> {
        let resources = self.resources.clone().unwrap_or_default();
        self.services.power_up(&resources)?;
        self.device_power = DevicePower::D0;
        Ok(())
    }
}
