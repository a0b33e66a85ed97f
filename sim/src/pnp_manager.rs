//! The Windows PnP manager of the guest model: it sends typed PnP and power requests
//! ([`common::pnp`]) to device stacks, builds the device tree from BusRelations (identity,
//! text, capabilities, resources, start), removes children that vanish, powers devices and
//! the system, and queries interfaces into buffers it owns — the way a C child driver's
//! `IRP_MN_QUERY_INTERFACE` does — so tests can call through the returned C vtables.
//!
//! Drivers are reached through [`DeviceStack`]; the simulator knows no driver crate. The
//! PCI bus driver's answers for an emulated device are [`PciPdo`], which a driver's stack
//! adapter uses as its lower device.

use std::collections::BTreeMap;

use common::pnp::*;
use xen_include::guid::Guid;
use xen_include::status::{NtStatus, STATUS_NOT_SUPPORTED, STATUS_SUCCESS};

use crate::platform::{Bar, Device};

/// A device stack as the PnP manager sees it: requests go to its top.
pub trait DeviceStack {
    /// Send a PnP request whose IRP starts with `IoStatus = (incoming, Nothing)`; the
    /// answer the IRP completed with.
    fn pnp(&mut self, request: &PnpRequest, incoming: PnpAnswer) -> PnpAnswer;
    /// Send a power request; the status it completed with.
    fn power(&mut self, request: &PowerRequest) -> NtStatus;
    /// The stack PnP builds on a child this device reported in BusRelations under `name`
    /// (its PDO plus, once a driver is bound, that driver).
    fn child(&mut self, name: &str) -> Option<Box<dyn DeviceStack>>;
}

/// A device below a function driver in its stack — the bus driver's PDO, or a filter
/// over it: it answers what the driver passes down.
pub trait LowerDevice: Send {
    /// Answer `request`, which arrives with `incoming` in the IRP.
    fn answer(&mut self, request: &PnpRequest, incoming: PnpAnswer) -> PnpAnswer;
}

/// Where a node is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeState {
    /// Reported, identity read, not started (or START failed with this status).
    Initialized(NtStatus),
    /// START_DEVICE succeeded.
    Started,
    /// Stopped for rebalance (QUERY_STOP + STOP).
    Stopped,
    /// REMOVE_DEVICE sent.
    Removed,
}

/// One device node.
pub struct DeviceNode {
    /// The name its parent reported it under.
    pub name: String,
    /// `BusQueryDeviceID`.
    pub device_id: String,
    /// `BusQueryInstanceID`.
    pub instance_id: String,
    /// `BusQueryHardwareIDs`.
    pub hardware_ids: Vec<String>,
    /// `BusQueryCompatibleIDs`.
    pub compatible_ids: Vec<String>,
    /// `DeviceTextDescription`.
    pub description: Option<String>,
    /// `DeviceTextLocationInformation`.
    pub location: Option<String>,
    /// `IRP_MN_QUERY_CAPABILITIES`.
    pub capabilities: Option<DeviceCapabilities>,
    /// `IRP_MN_QUERY_BUS_INFORMATION`.
    pub bus_information: Option<BusInformation>,
    /// Requirements after FILTER_RESOURCE_REQUIREMENTS.
    pub requirements: Option<ResourceRequirements>,
    /// What START gave it.
    pub resources: StartResources,
    /// State.
    pub state: NodeState,
    /// Device power state as last set.
    pub device_power: DevicePower,
    /// The stack.
    pub stack: Box<dyn DeviceStack>,
    /// Its children, by name.
    pub children: BTreeMap<String, DeviceNode>,
}

impl DeviceNode {
    /// `<DeviceID>\<InstanceID>`.
    pub fn instance_path(&self) -> String {
        format!("{}\\{}", self.device_id, self.instance_id)
    }
}

/// An interface obtained with QUERY_INTERFACE: the caller-owned, pointer-aligned buffer.
pub struct QueriedInterface {
    /// The status the IRP completed with.
    pub status: NtStatus,
    /// `IoStatus.Information`.
    pub reply: PnpReply,
    buffer: Box<[u64]>,
}

impl QueriedInterface {
    /// The buffer's address (what a C driver passes as the `PINTERFACE`).
    pub fn as_ptr(&mut self) -> *mut u8 {
        self.buffer.as_mut_ptr().cast()
    }

    /// The buffer's bytes.
    pub fn bytes(&self) -> Vec<u8> {
        self.buffer.iter().flat_map(|w| w.to_le_bytes()).collect()
    }
}

/// Gives out interrupt vectors and addresses the way the HAL and the PCI arbiter would.
#[derive(Debug)]
struct Assigner {
    next_message: u32,
    next_memory: u64,
    line_vector: u32,
}

impl Assigner {
    fn assign(&mut self, requirements: &ResourceRequirements, gsi: u32) -> StartResources {
        let mut resources = StartResources::default();
        let Some(first) = requirements.alternatives.first() else {
            return resources;
        };
        for d in first {
            let (raw, translated) = match d.requirement {
                Requirement::Memory {
                    length,
                    alignment,
                    minimum,
                    ..
                } => {
                    let start = if minimum != 0 {
                        minimum
                    } else {
                        let align = u64::from(alignment.max(1));
                        let start = self.next_memory.div_ceil(align) * align;
                        self.next_memory = start + u64::from(length);
                        start
                    };
                    let m = AssignedResource::Memory { start, length };
                    (m, m)
                }
                Requirement::Port {
                    length, minimum, ..
                } => {
                    let p = AssignedResource::Port {
                        start: minimum,
                        length,
                    };
                    (p, p)
                }
                Requirement::Interrupt {
                    flags: f,
                    policy,
                    targeted,
                    group,
                    minimum_vector,
                    ..
                } => {
                    let affinity = if policy == IrqPolicy::SpecifiedProcessors && targeted != 0 {
                        targeted
                    } else {
                        1
                    };
                    let group = if group == ALL_PROCESSOR_GROUPS {
                        0
                    } else {
                        group
                    };
                    if f & flags::INTERRUPT_MESSAGE != 0 {
                        let vector = self.next_message;
                        self.next_message += 1;
                        let raw = AssignedInterrupt {
                            flags: f,
                            vector: 0x4000 + vector,
                            level: 0,
                            group,
                            affinity,
                            message_count: 1,
                        };
                        let translated = AssignedInterrupt {
                            vector,
                            level: vector >> 4,
                            message_count: 0,
                            ..raw
                        };
                        (
                            AssignedResource::Interrupt(raw),
                            AssignedResource::Interrupt(translated),
                        )
                    } else {
                        let line = if minimum_vector != 0 && minimum_vector < 256 {
                            minimum_vector
                        } else {
                            gsi
                        };
                        let raw = AssignedInterrupt {
                            flags: f,
                            vector: line,
                            level: line,
                            group,
                            affinity,
                            message_count: 0,
                        };
                        let translated = AssignedInterrupt {
                            vector: self.line_vector,
                            level: self.line_vector >> 4,
                            ..raw
                        };
                        (
                            AssignedResource::Interrupt(raw),
                            AssignedResource::Interrupt(translated),
                        )
                    }
                }
                Requirement::DevicePrivate(data) => (
                    AssignedResource::DevicePrivate(data),
                    AssignedResource::DevicePrivate(data),
                ),
                Requirement::Other { .. } => continue,
            };
            let entry = |resource| Assigned {
                share: d.share,
                flags: d.flags,
                resource,
            };
            resources.raw.push(entry(raw));
            resources.translated.push(entry(translated));
        }
        resources
    }
}

/// The PnP manager.
pub struct PnpManager {
    /// Root devices (children of the PCI root bus that have a driver), by name.
    pub roots: BTreeMap<String, DeviceNode>,
    log: Vec<String>,
    assigner: Assigner,
    gsi: u32,
    system_power: SystemPower,
}

impl Default for PnpManager {
    fn default() -> Self {
        Self::new(28)
    }
}

/// What a step of a node's life did, for the log.
fn status_text(status: NtStatus) -> String {
    if status == STATUS_SUCCESS {
        "ok".into()
    } else {
        format!("{:08X}", status as u32)
    }
}

impl PnpManager {
    /// A PnP manager whose PCI line interrupts are routed to `gsi`.
    pub fn new(gsi: u32) -> Self {
        Self {
            roots: BTreeMap::new(),
            log: Vec::new(),
            assigner: Assigner {
                next_message: 0xA0,
                next_memory: 0xE000_0000,
                line_vector: 0x51,
            },
            gsi,
            system_power: SystemPower::Working,
        }
    }

    /// What happened so far, one line per step (drained).
    pub fn take_log(&mut self) -> Vec<String> {
        std::mem::take(&mut self.log)
    }

    /// The system power state.
    pub fn system_power(&self) -> SystemPower {
        self.system_power
    }

    /// A node by its path of names from a root.
    pub fn node(&self, path: &[&str]) -> Option<&DeviceNode> {
        let (first, rest) = path.split_first()?;
        let mut node = self.roots.get(*first)?;
        for name in rest {
            node = node.children.get(*name)?;
        }
        Some(node)
    }

    fn node_mut(&mut self, path: &[&str]) -> Option<&mut DeviceNode> {
        let (first, rest) = path.split_first()?;
        let mut node = self.roots.get_mut(*first)?;
        for name in rest {
            node = node.children.get_mut(*name)?;
        }
        Some(node)
    }

    fn send(node: &mut DeviceNode, request: &PnpRequest) -> PnpAnswer {
        node.stack
            .pnp(request, PnpAnswer::status(STATUS_NOT_SUPPORTED))
    }

    /// Build a node on `stack`: identity, text, capabilities, bus information.
    fn build(&mut self, name: &str, stack: Box<dyn DeviceStack>) -> DeviceNode {
        let mut node = DeviceNode {
            name: name.into(),
            device_id: String::new(),
            instance_id: String::new(),
            hardware_ids: Vec::new(),
            compatible_ids: Vec::new(),
            description: None,
            location: None,
            capabilities: None,
            bus_information: None,
            requirements: None,
            resources: StartResources::default(),
            state: NodeState::Initialized(STATUS_SUCCESS),
            device_power: DevicePower::D3,
            stack,
            children: BTreeMap::new(),
        };
        let text = |answer: PnpAnswer| match answer.reply {
            PnpReply::Text(text) if answer.status == STATUS_SUCCESS => Some(text),
            _ => None,
        };
        let list = |answer: PnpAnswer| match answer.reply {
            PnpReply::TextList(list) if answer.status == STATUS_SUCCESS => list,
            _ => Vec::new(),
        };
        node.device_id = text(Self::send(
            &mut node,
            &PnpRequest::QueryId(IdKind::DeviceId),
        ))
        .unwrap_or_default();
        node.instance_id = text(Self::send(
            &mut node,
            &PnpRequest::QueryId(IdKind::InstanceId),
        ))
        .unwrap_or_default();
        node.hardware_ids = list(Self::send(
            &mut node,
            &PnpRequest::QueryId(IdKind::HardwareIds),
        ));
        node.compatible_ids = list(Self::send(
            &mut node,
            &PnpRequest::QueryId(IdKind::CompatibleIds),
        ));
        let caps = Self::send(
            &mut node,
            &PnpRequest::QueryCapabilities(DeviceCapabilities::blank()),
        );
        if let (STATUS_SUCCESS, PnpReply::Capabilities(caps)) = (caps.status, caps.reply) {
            node.capabilities = Some(caps);
        }
        node.description = text(Self::send(
            &mut node,
            &PnpRequest::QueryDeviceText(TextKind::Description, 0x409),
        ));
        node.location = text(Self::send(
            &mut node,
            &PnpRequest::QueryDeviceText(TextKind::LocationInformation, 0x409),
        ));
        let bus = Self::send(&mut node, &PnpRequest::QueryBusInformation);
        if let (STATUS_SUCCESS, PnpReply::BusInformation(bus)) = (bus.status, bus.reply) {
            node.bus_information = Some(bus);
        }
        self.log.push(format!(
            "found {} ({})",
            node.instance_path(),
            node.description.as_deref().unwrap_or("-")
        ));
        node
    }

    /// Requirements (QUERY then FILTER), assignment, START.
    fn start(&mut self, node: &mut DeviceNode) {
        let requirements = match Self::send(node, &PnpRequest::QueryResourceRequirements) {
            PnpAnswer {
                status: STATUS_SUCCESS,
                reply: PnpReply::Requirements(list),
            } => Some(list),
            _ => None,
        };
        let filter = PnpRequest::FilterResourceRequirements(requirements.clone());
        let incoming = match &requirements {
            Some(list) => PnpAnswer::success(PnpReply::Requirements(list.clone())),
            None => PnpAnswer::status(STATUS_NOT_SUPPORTED),
        };
        let filtered = match node.stack.pnp(&filter, incoming) {
            PnpAnswer {
                status: STATUS_SUCCESS,
                reply: PnpReply::Requirements(list),
            } => Some(list),
            _ => requirements,
        };
        node.resources = filtered
            .as_ref()
            .map(|list| self.assigner.assign(list, self.gsi))
            .unwrap_or_default();
        node.requirements = filtered;
        let answer = Self::send(node, &PnpRequest::Start(node.resources.clone()));
        node.state = if answer.status >= 0 {
            node.device_power = DevicePower::D0;
            NodeState::Started
        } else {
            NodeState::Initialized(answer.status)
        };
        self.log.push(format!(
            "start {}: {} ({} resources)",
            node.instance_path(),
            status_text(answer.status),
            node.resources.translated.len()
        ));
    }

    /// A root device (a PCI device with a driver): build, start, enumerate its children.
    pub fn add_root(&mut self, name: &str, stack: Box<dyn DeviceStack>) -> NodeState {
        let mut node = self.build(name, stack);
        self.start(&mut node);
        let state = node.state;
        self.roots.insert(name.into(), node);
        if state == NodeState::Started {
            self.enumerate(&[name]);
        }
        state
    }

    /// BusRelations of the node at `path` and, recursively, of its started children: new
    /// children are built and started, vanished ones surprise-removed and removed.
    pub fn enumerate(&mut self, path: &[&str]) {
        let Some(mut node) = self.take_node(path) else {
            return;
        };
        self.enumerate_node(&mut node);
        self.put_node(path, node);
    }

    /// Every root, recursively (what `IoInvalidateDeviceRelations` leads to).
    pub fn enumerate_all(&mut self) {
        let names: Vec<String> = self.roots.keys().cloned().collect();
        for name in names {
            self.enumerate(&[&name]);
        }
    }

    fn take_node(&mut self, path: &[&str]) -> Option<DeviceNode> {
        let (last, parent) = path.split_last()?;
        if parent.is_empty() {
            self.roots.remove(*last)
        } else {
            self.node_mut(parent)?.children.remove(*last)
        }
    }

    fn put_node(&mut self, path: &[&str], node: DeviceNode) {
        let Some((_, parent)) = path.split_last() else {
            return;
        };
        if parent.is_empty() {
            self.roots.insert(node.name.clone(), node);
        } else if let Some(p) = self.node_mut(parent) {
            p.children.insert(node.name.clone(), node);
        }
    }

    fn enumerate_node(&mut self, node: &mut DeviceNode) {
        if node.state != NodeState::Started {
            return;
        }
        let answer = Self::send(node, &PnpRequest::QueryDeviceRelations(RelationKind::Bus));
        let reported = match answer {
            PnpAnswer {
                status: STATUS_SUCCESS,
                reply: PnpReply::Relations(names),
            } => names,
            _ => return,
        };
        let gone: Vec<String> = node
            .children
            .keys()
            .filter(|name| !reported.contains(name))
            .cloned()
            .collect();
        for name in gone {
            if let Some(mut child) = node.children.remove(&name) {
                self.vanish(&mut child);
            }
        }
        for name in reported {
            if node.children.contains_key(&name) {
                continue;
            }
            let Some(stack) = node.stack.child(&name) else {
                self.log.push(format!("no stack for {name}"));
                continue;
            };
            let mut child = self.build(&name, stack);
            self.start(&mut child);
            node.children.insert(name, child);
        }
        for child in node.children.values_mut() {
            self.enumerate_node(child);
        }
    }

    /// A child no longer reported: SURPRISE_REMOVAL to its started subtree, then REMOVE,
    /// children first.
    fn vanish(&mut self, node: &mut DeviceNode) {
        self.surprise_tree(node);
        self.remove_tree(node);
    }

    /// The device at `path` is gone without warning (hot-unplugged): SURPRISE_REMOVAL to
    /// every started node of its subtree, children first, then REMOVE the same way.
    pub fn surprise_remove(&mut self, path: &[&str]) -> Result<(), NtStatus> {
        let mut node = self.take_node(path).ok_or(STATUS_NOT_SUPPORTED)?;
        self.surprise_tree(&mut node);
        self.remove_tree(&mut node);
        Ok(())
    }

    fn surprise_tree(&mut self, node: &mut DeviceNode) {
        for child in node.children.values_mut() {
            self.surprise_tree(child);
        }
        if node.state == NodeState::Started {
            let answer = Self::send(node, &PnpRequest::SurpriseRemoval);
            self.log.push(format!(
                "surprise-remove {}: {}",
                node.instance_path(),
                status_text(answer.status)
            ));
        }
    }

    /// An orderly removal (disable/uninstall): QUERY_REMOVE on the subtree, then REMOVE,
    /// children first. A veto sends CANCEL_REMOVE to the nodes that agreed and returns the
    /// vetoing status.
    pub fn remove(&mut self, path: &[&str]) -> Result<(), NtStatus> {
        let mut node = self.take_node(path).ok_or(STATUS_NOT_SUPPORTED)?;
        let result = self.query_remove_tree(&mut node);
        if let Err(status) = result {
            self.log.push(format!(
                "query-remove {}: vetoed {}",
                node.instance_path(),
                status_text(status)
            ));
            self.put_node(path, node);
            return Err(status);
        }
        self.remove_tree(&mut node);
        Ok(())
    }

    fn query_remove_tree(&mut self, node: &mut DeviceNode) -> Result<(), NtStatus> {
        let mut agreed: Vec<String> = Vec::new();
        for (name, child) in node.children.iter_mut() {
            if let Err(status) = self.query_remove_tree(child) {
                for name in &agreed {
                    if let Some(c) = node.children.get_mut(name) {
                        Self::cancel_remove_tree(c);
                    }
                }
                return Err(status);
            }
            agreed.push(name.clone());
        }
        let answer = Self::send(node, &PnpRequest::QueryRemove);
        if answer.status < 0 {
            for child in node.children.values_mut() {
                Self::cancel_remove_tree(child);
            }
            Self::send(node, &PnpRequest::CancelRemove);
            return Err(answer.status);
        }
        Ok(())
    }

    fn cancel_remove_tree(node: &mut DeviceNode) {
        for child in node.children.values_mut() {
            Self::cancel_remove_tree(child);
        }
        Self::send(node, &PnpRequest::CancelRemove);
    }

    fn remove_tree(&mut self, node: &mut DeviceNode) {
        for (_, mut child) in std::mem::take(&mut node.children) {
            self.remove_tree(&mut child);
        }
        let answer = Self::send(node, &PnpRequest::Remove);
        node.state = NodeState::Removed;
        self.log.push(format!(
            "remove {}: {}",
            node.instance_path(),
            status_text(answer.status)
        ));
    }

    /// Rebalance: QUERY_STOP, STOP, then START again with the same resources.
    pub fn stop_and_restart(&mut self, path: &[&str]) -> Result<(), NtStatus> {
        let node = self.node_mut(path).ok_or(STATUS_NOT_SUPPORTED)?;
        let answer = Self::send(node, &PnpRequest::QueryStop);
        if answer.status < 0 {
            Self::send(node, &PnpRequest::CancelStop);
            return Err(answer.status);
        }
        Self::send(node, &PnpRequest::Stop);
        node.state = NodeState::Stopped;
        node.device_power = DevicePower::D3;
        let answer = Self::send(node, &PnpRequest::Start(node.resources.clone()));
        if answer.status < 0 {
            node.state = NodeState::Initialized(answer.status);
            return Err(answer.status);
        }
        node.state = NodeState::Started;
        node.device_power = DevicePower::D0;
        Ok(())
    }

    /// Eject (a user's "safely remove"): QUERY_REMOVE, REMOVE, then EJECT to the PDO.
    pub fn eject(&mut self, path: &[&str]) -> Result<(), NtStatus> {
        let mut node = self.take_node(path).ok_or(STATUS_NOT_SUPPORTED)?;
        if let Err(status) = self.query_remove_tree(&mut node) {
            self.put_node(path, node);
            return Err(status);
        }
        self.remove_tree(&mut node);
        let answer = Self::send(&mut node, &PnpRequest::Eject);
        self.log.push(format!(
            "eject {}: {}",
            node.instance_path(),
            status_text(answer.status)
        ));
        if answer.status < 0 {
            return Err(answer.status);
        }
        Ok(())
    }

    /// Send any PnP request to the node at `path` (IoStatus starts NOT_SUPPORTED).
    pub fn request(&mut self, path: &[&str], request: &PnpRequest) -> Option<PnpAnswer> {
        let node = self.node_mut(path)?;
        Some(Self::send(node, request))
    }

    /// IRP_MN_QUERY_INTERFACE as a C driver sends it: a zeroed, pointer-aligned buffer of
    /// `size` bytes, `IoStatus.Status = incoming` (normally NOT_SUPPORTED).
    pub fn query_interface(
        &mut self,
        path: &[&str],
        guid: Guid,
        version: u16,
        size: u16,
        incoming: NtStatus,
    ) -> Option<QueriedInterface> {
        let node = self.node_mut(path)?;
        let mut buffer = vec![0u64; usize::from(size).div_ceil(8).max(1)].into_boxed_slice();
        let query = InterfaceQuery {
            guid,
            size,
            version,
            buffer: buffer.as_mut_ptr() as usize,
            specific: 0,
            incoming,
        };
        let answer = node.stack.pnp(
            &PnpRequest::QueryInterface(query),
            PnpAnswer::status(incoming),
        );
        Some(QueriedInterface {
            status: answer.status,
            reply: answer.reply,
            buffer,
        })
    }

    /// A device power IRP to the node at `path`.
    pub fn set_device_power(&mut self, path: &[&str], state: DevicePower) -> Option<NtStatus> {
        let node = self.node_mut(path)?;
        let status = node.stack.power(&PowerRequest::Set(
            PowerState::Device(state),
            PowerAction::None,
        ));
        if status >= 0 {
            node.device_power = state;
        }
        Some(status)
    }

    /// A system transition: QUERY_POWER to every started node (a veto stops it), then
    /// SET_POWER — children before parents going down, parents before children going up.
    pub fn set_system_power(
        &mut self,
        state: SystemPower,
        action: PowerAction,
    ) -> Result<(), NtStatus> {
        let down = state > self.system_power;
        let mut roots = std::mem::take(&mut self.roots);
        let mut result = Ok(());
        for node in roots.values_mut() {
            if let Err(status) = Self::power_tree(
                node,
                PowerRequest::Query(PowerState::System(state), action),
                down,
            ) {
                result = Err(status);
                break;
            }
        }
        if result.is_ok() {
            for node in roots.values_mut() {
                let _ = Self::power_tree(
                    node,
                    PowerRequest::Set(PowerState::System(state), action),
                    down,
                );
            }
            self.system_power = state;
            self.log
                .push(format!("system power {state:?} ({action:?})"));
        }
        self.roots = roots;
        result
    }

    /// One node's S-IRP. For SET (below shutdown) the manager also plays the device's
    /// power policy owner: it requests the D-IRP the capabilities map the state to —
    /// before the S-IRP going down, after it going up. A stack whose driver requests its
    /// own D-IRP sees the second one as a no-op (same state).
    fn power_node(node: &mut DeviceNode, request: PowerRequest, down: bool) -> NtStatus {
        let device_irp = match request {
            PowerRequest::Set(PowerState::System(state), action)
                if !matches!(
                    action,
                    PowerAction::Shutdown | PowerAction::ShutdownReset | PowerAction::ShutdownOff
                ) =>
            {
                node.capabilities
                    .map(|caps| caps.device_state_for(state))
                    .filter(|d| *d != DevicePower::Unspecified)
            }
            _ => None,
        };
        let set_device = |node: &mut DeviceNode, d: DevicePower| {
            let status = node
                .stack
                .power(&PowerRequest::Set(PowerState::Device(d), PowerAction::None));
            if status >= 0 {
                node.device_power = d;
            }
        };
        if let (Some(d), true) = (device_irp, down) {
            set_device(node, d);
        }
        let status = node.stack.power(&request);
        if let (Some(d), false) = (device_irp, down) {
            set_device(node, d);
        }
        status
    }

    fn power_tree(
        node: &mut DeviceNode,
        request: PowerRequest,
        children_first: bool,
    ) -> Result<(), NtStatus> {
        if node.state != NodeState::Started {
            return Ok(());
        }
        if !children_first {
            let status = Self::power_node(node, request, children_first);
            if status < 0 {
                return Err(status);
            }
        }
        for child in node.children.values_mut() {
            Self::power_tree(child, request, children_first)?;
        }
        if children_first {
            let status = Self::power_node(node, request, children_first);
            if status < 0 {
                return Err(status);
            }
        }
        Ok(())
    }
}

impl LowerDevice for PciPdo {
    fn answer(&mut self, request: &PnpRequest, incoming: PnpAnswer) -> PnpAnswer {
        PciPdo::answer(self, request, incoming)
    }
}

/// The PCI bus driver's PDO for an emulated device: what it answers as the lower device of
/// a function driver's stack.
pub struct PciPdo {
    device: Device,
    gsi: u32,
}

impl PciPdo {
    /// The PDO of `device`, its INTx routed to `gsi`.
    pub fn new(device: Device, gsi: u32) -> Self {
        Self { device, gsi }
    }

    /// The device.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Its IDs and location as PnP sees them.
    fn identity(&self) -> crate::pnp::PnpChild {
        crate::pnp::pci_children(std::slice::from_ref(&self.device))
            .pop()
            .unwrap_or_else(|| unreachable!("a PCI device is its own child"))
    }

    /// Answer `request` arriving with `incoming` in the IRP (the bottom of the stack).
    pub fn answer(&mut self, request: &PnpRequest, incoming: PnpAnswer) -> PnpAnswer {
        let identity = self.identity();
        match request {
            PnpRequest::QueryId(IdKind::DeviceId) => {
                PnpAnswer::success(PnpReply::Text(identity.device_id))
            }
            PnpRequest::QueryId(IdKind::InstanceId) => {
                PnpAnswer::success(PnpReply::Text(identity.instance_id))
            }
            PnpRequest::QueryId(IdKind::HardwareIds) => {
                PnpAnswer::success(PnpReply::TextList(vec![identity.device_id]))
            }
            PnpRequest::QueryId(IdKind::CompatibleIds) => {
                PnpAnswer::success(PnpReply::TextList(identity.compatible))
            }
            PnpRequest::QueryDeviceText(TextKind::LocationInformation, _) => {
                PnpAnswer::success(PnpReply::Text(identity.location))
            }
            PnpRequest::QueryCapabilities(caps) => {
                let mut caps = *caps;
                caps.removable = true;
                caps.surprise_removal_ok = false;
                caps.unique_id = false;
                caps.address = u32::from(self.device.slot) << 16;
                caps.ui_number = u32::from(self.device.slot);
                caps.device_state = [
                    DevicePower::Unspecified,
                    DevicePower::D0,
                    DevicePower::D3,
                    DevicePower::D3,
                    DevicePower::D3,
                    DevicePower::D3,
                    DevicePower::D3,
                ];
                caps.system_wake = SystemPower::Unspecified;
                caps.device_wake = DevicePower::Unspecified;
                PnpAnswer::success(PnpReply::Capabilities(caps))
            }
            PnpRequest::QueryResourceRequirements => {
                let mut list = Vec::new();
                for bar in &self.device.bars {
                    let requirement = match *bar {
                        Bar::Memory { base, len } => Requirement::Memory {
                            length: len as u32,
                            alignment: len as u32,
                            minimum: base,
                            maximum: base + len - 1,
                        },
                        Bar::Io { base, len } => Requirement::Port {
                            length: u32::from(len),
                            alignment: 1,
                            minimum: u64::from(base),
                            maximum: u64::from(base) + u64::from(len) - 1,
                        },
                    };
                    list.push(RequirementDescriptor {
                        option: 0,
                        share: Share::DeviceExclusive,
                        flags: 0,
                        requirement,
                    });
                }
                list.push(RequirementDescriptor {
                    option: 0,
                    share: Share::Shared,
                    flags: 0,
                    requirement: Requirement::Interrupt {
                        flags: flags::INTERRUPT_LEVEL_SENSITIVE,
                        minimum_vector: self.gsi,
                        maximum_vector: self.gsi,
                        policy: IrqPolicy::MachineDefault,
                        targeted: 0,
                        group: ALL_PROCESSOR_GROUPS,
                    },
                });
                PnpAnswer::success(PnpReply::Requirements(ResourceRequirements {
                    interface_type: INTERFACE_TYPE_PCI_BUS,
                    bus_number: 0,
                    slot_number: u32::from(self.device.slot),
                    alternatives: vec![list],
                }))
            }
            PnpRequest::Start(resources) => {
                // PCI.sys programs what it knows; it must never see xenbus's messages.
                let foreign = resources.raw.iter().any(
                    |d| matches!(d.resource, AssignedResource::Interrupt(i) if i.is_message()),
                );
                if foreign {
                    PnpAnswer::status(xen_include::status::STATUS_INVALID_PARAMETER)
                } else {
                    PnpAnswer::status(STATUS_SUCCESS)
                }
            }
            PnpRequest::QueryStop
            | PnpRequest::QueryRemove
            | PnpRequest::CancelStop
            | PnpRequest::CancelRemove
            | PnpRequest::Stop
            | PnpRequest::Remove
            | PnpRequest::SurpriseRemoval
            | PnpRequest::DeviceUsageNotification(..) => PnpAnswer {
                status: STATUS_SUCCESS,
                reply: incoming.reply,
            },
            // Requests a bus driver does not handle keep what the stack put in the IRP.
            _ => incoming,
        }
    }
}
