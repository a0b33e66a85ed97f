//! Tests of the FDO and PDO machines with test doubles of their services.

use super::fdo::*;
use super::pdo::*;
use super::power::PowerIrp;
use super::PnpState;
use crate::interface::query::XenbusInterface;
use crate::pdo::RemovalPolicy;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use common::pnp::*;
use core::cell::{Cell, RefCell};
use xen_include::interfaces::store::GUID_XENBUS_STORE_INTERFACE;
use xen_include::status::*;

#[derive(Default)]
struct Bus {
    active: bool,
    log: RefCell<Vec<String>>,
    inflated: Cell<bool>,
    children: RefCell<Vec<String>>,
    fail_power_up: Cell<bool>,
}

impl Bus {
    fn active() -> Self {
        Self {
            active: true,
            children: RefCell::new(vec!["VIF".into(), "VBD".into()]),
            ..Self::default()
        }
    }
    fn note(&self, s: &str) {
        self.log.borrow_mut().push(s.into());
    }
    fn take(&self) -> Vec<String> {
        core::mem::take(&mut *self.log.borrow_mut())
    }
}

impl BusServices for &Bus {
    fn is_active(&self) -> bool {
        self.active
    }
    fn processors(&self) -> Vec<(u16, u8)> {
        vec![(0, 0), (0, 1), (0, 2)]
    }
    fn connect_interrupts(&self, interrupts: &[InterruptConnection]) -> Result<(), NtStatus> {
        self.note(&format!("connect {}", interrupts.len()));
        Ok(())
    }
    fn disconnect_interrupts(&self) {
        self.note("disconnect");
    }
    fn start_threads(&self) -> Result<(), NtStatus> {
        self.note("threads");
        Ok(())
    }
    fn stop_threads(&self) {
        self.note("join");
    }
    fn power_up(&self, resources: &BusResources) -> Result<(), NtStatus> {
        self.note(&format!(
            "D0 gsi={:?} cpu1={:?}",
            resources.line_gsi(),
            resources.upcall_vector(1)
        ));
        if self.fail_power_up.get() {
            return Err(STATUS_UNSUCCESSFUL);
        }
        Ok(())
    }
    fn power_down(&self) {
        self.note("D3");
    }
    fn hibernate_enter(&self) {
        self.note("S3->S4");
    }
    fn hibernate_exit(&self) {
        self.note("S4->S3");
    }
    fn after_start(&self) {
        self.note("balloon wait, scan wake");
    }
    fn balloon_inflated(&self) -> bool {
        self.inflated.get()
    }
    fn wait_scan(&self) {
        self.note("wait scan");
    }
    fn report_children(&self) -> Vec<String> {
        self.children.borrow().clone()
    }
    fn reap_children(&self) {
        self.note("reap");
    }
    fn surprise_removed(&self) {
        self.note("children missing");
    }
    fn remove_children(&self) {
        self.note("children removed");
    }
    fn invalidate_device_state(&self) {
        self.note("invalidate state");
    }
    fn destroy(&self) {
        self.note("destroy");
    }
}

fn line(vector: u32, gsi: u32) -> (Assigned, Assigned) {
    let i = |v| Assigned {
        share: Share::Shared,
        flags: 0,
        resource: AssignedResource::Interrupt(AssignedInterrupt {
            flags: flags::INTERRUPT_LEVEL_SENSITIVE,
            vector: v,
            level: 9,
            group: 0,
            affinity: 1,
            message_count: 0,
        }),
    };
    (i(gsi), i(vector))
}

fn message(vector: u32, cpu: u32) -> Assigned {
    Assigned {
        share: Share::DeviceExclusive,
        flags: 0,
        resource: AssignedResource::Interrupt(AssignedInterrupt {
            flags: flags::INTERRUPT_LATCHED | flags::INTERRUPT_MESSAGE,
            vector,
            level: 10,
            group: 0,
            affinity: 1 << cpu,
            message_count: 1,
        }),
    }
}

fn resources() -> StartResources {
    let bar = Assigned {
        share: Share::DeviceExclusive,
        flags: 0,
        resource: AssignedResource::Memory {
            start: 0xF000_0000,
            length: 0x100_0000,
        },
    };
    let (raw_line, translated_line) = line(0x51, 28);
    StartResources {
        raw: vec![bar, raw_line, message(0x4000, 0), message(0x4001, 1)],
        translated: vec![bar, translated_line, message(0xA0, 0), message(0xA1, 1)],
    }
}

fn drive(m: &mut FdoMachine<&Bus>, request: PnpRequest, lower: PnpAnswer) -> PnpAnswer {
    match m.pnp(&request) {
        PnpAction::Complete(answer) => answer,
        PnpAction::CompleteUnchanged => lower,
        PnpAction::PassDown { set } => set.unwrap_or(lower),
        PnpAction::ForwardAndWait { forward, set } => {
            let _ = forward;
            let lower = match (set, &lower.reply) {
                (Some(set), PnpReply::Nothing) => set,
                _ => lower,
            };
            m.pnp_finish(&request, lower)
        }
    }
}

#[test]
fn filter_adds_one_message_interrupt_per_cpu_and_pins_the_line() {
    let bus = Bus::active();
    let mut m = FdoMachine::new(&bus);
    let pci = ResourceRequirements {
        interface_type: INTERFACE_TYPE_PCI_BUS,
        bus_number: 0,
        slot_number: 0x10,
        alternatives: vec![vec![RequirementDescriptor {
            option: 0,
            share: Share::Shared,
            flags: 0,
            requirement: Requirement::Interrupt {
                flags: flags::INTERRUPT_LEVEL_SENSITIVE,
                minimum_vector: 28,
                maximum_vector: 28,
                policy: IrqPolicy::MachineDefault,
                targeted: 0,
                group: ALL_PROCESSOR_GROUPS,
            },
        }]],
    };
    let request = PnpRequest::FilterResourceRequirements(Some(pci.clone()));
    assert!(matches!(m.pnp(&request), PnpAction::ForwardAndWait { .. }));
    let answer = m.pnp_finish(
        &request,
        PnpAnswer::success(PnpReply::Requirements(pci.clone())),
    );
    let PnpReply::Requirements(list) = answer.reply else {
        panic!("{answer:?}")
    };
    let first = &list.alternatives[0];
    assert_eq!(first.len(), 4);
    match first[0].requirement {
        Requirement::Interrupt {
            flags: f,
            policy,
            targeted,
            group,
            ..
        } => {
            assert_eq!(f, flags::INTERRUPT_POLICY_INCLUDED);
            assert_eq!(policy, IrqPolicy::SpecifiedProcessors);
            assert_eq!((group, targeted), (0, 1));
        }
        other => panic!("{other:?}"),
    }
    for (cpu, d) in first[1..].iter().enumerate() {
        assert_eq!(d.share, Share::DeviceExclusive);
        assert_eq!(
            d.requirement,
            Requirement::Interrupt {
                flags: flags::INTERRUPT_LATCHED
                    | flags::INTERRUPT_MESSAGE
                    | flags::INTERRUPT_POLICY_INCLUDED,
                minimum_vector: INTERRUPT_MESSAGE_TOKEN,
                maximum_vector: INTERRUPT_MESSAGE_TOKEN,
                policy: IrqPolicy::SpecifiedProcessors,
                targeted: 1 << cpu,
                group: 0,
            }
        );
    }
    // An inactive FDO leaves the lower list alone; a failing lower driver is passed on.
    let idle = Bus::default();
    let mut inactive = FdoMachine::new(&idle);
    let request = PnpRequest::FilterResourceRequirements(None);
    inactive.pnp(&request);
    let answer = inactive.pnp_finish(
        &request,
        PnpAnswer::success(PnpReply::Requirements(pci.clone())),
    );
    assert_eq!(answer.reply, PnpReply::Requirements(pci));
    assert_eq!(
        m.pnp_finish(&request, PnpAnswer::status(STATUS_NO_MEMORY)),
        PnpAnswer::status(STATUS_NO_MEMORY)
    );
}

#[test]
fn start_hides_messages_from_pci_then_connects_everything() {
    let bus = Bus::active();
    let mut m = FdoMachine::new(&bus);
    let request = PnpRequest::Start(resources());
    let PnpAction::ForwardAndWait {
        forward: PnpRequest::Start(hidden),
        ..
    } = m.pnp(&request)
    else {
        panic!("START is forwarded first")
    };
    // PCI sees the line and the BAR as assigned, the messages as DevicePrivate.
    assert_eq!(hidden.translated[0], resources().translated[0]);
    assert_eq!(hidden.translated[1], resources().translated[1]);
    for list in [&hidden.raw, &hidden.translated] {
        assert!(matches!(
            list[2].resource,
            AssignedResource::DevicePrivate(_)
        ));
        assert!(matches!(
            list[3].resource,
            AssignedResource::DevicePrivate(_)
        ));
    }
    assert!(
        bus.take().is_empty(),
        "nothing happens before the lower start"
    );
    // A failed lower start fails the IRP without touching the runtime.
    assert_eq!(
        m.pnp_finish(&request, PnpAnswer::status(STATUS_UNSUCCESSFUL))
            .status,
        STATUS_UNSUCCESSFUL
    );
    assert!(bus.take().is_empty());
    let answer = m.pnp_finish(&request, PnpAnswer::status(STATUS_SUCCESS));
    assert_eq!(answer.status, STATUS_SUCCESS);
    assert_eq!(
        bus.take(),
        [
            "connect 3",
            "threads",
            "D0 gsi=Some(28) cpu1=Some(161)",
            "balloon wait, scan wake"
        ]
    );
    assert_eq!(m.pnp_state(), PnpState::Started);
    assert_eq!(m.device_power(), DevicePower::D0);
    let parsed = m.resources().unwrap();
    assert_eq!(parsed.memory, Some((0xF000_0000, 0x100_0000)));
    assert_eq!(parsed.upcall_vector(0), Some(0xA0));
    assert!(parsed.interrupts[1].message && parsed.interrupts[1].latched);
    assert!(parsed.interrupts[0].shared && !parsed.interrupts[0].latched);

    // D3→D0 failing at START unwinds threads and interrupts.
    let bus = Bus::active();
    bus.fail_power_up.set(true);
    let mut m = FdoMachine::new(&bus);
    m.pnp(&request);
    let answer = m.pnp_finish(&request, PnpAnswer::status(STATUS_SUCCESS));
    assert_eq!(answer.status, STATUS_UNSUCCESSFUL);
    assert_eq!(
        bus.take()[3..],
        ["join".to_string(), "disconnect".to_string()]
    );
    assert_eq!(m.pnp_state(), PnpState::Present);
}

#[test]
fn query_stop_and_remove_are_vetoed_while_the_balloon_is_inflated() {
    let bus = Bus::active();
    let mut m = FdoMachine::new(&bus);
    drive(&mut m, PnpRequest::Start(resources()), PnpAnswer::status(0));
    bus.take();
    bus.inflated.set(true);
    for q in [PnpRequest::QueryStop, PnpRequest::QueryRemove] {
        assert_eq!(
            m.pnp(&q),
            PnpAction::Complete(PnpAnswer::status(STATUS_UNSUCCESSFUL))
        );
        assert_eq!(m.pnp_state(), PnpState::Started);
    }
    bus.inflated.set(false);
    assert_eq!(
        m.pnp(&PnpRequest::QueryStop),
        PnpAction::PassDown {
            set: Some(PnpAnswer::status(STATUS_SUCCESS))
        }
    );
    assert_eq!(m.pnp_state(), PnpState::StopPending);
    m.pnp(&PnpRequest::CancelStop);
    assert_eq!(m.pnp_state(), PnpState::Started);
    m.pnp(&PnpRequest::QueryStop);
    m.pnp(&PnpRequest::Stop);
    assert_eq!(m.pnp_state(), PnpState::Stopped);
    assert_eq!(bus.take(), ["D3", "join", "disconnect"]);
    assert_eq!(m.device_power(), DevicePower::D3);
    // Restart after STOP, then query-remove/cancel and REMOVE.
    drive(&mut m, PnpRequest::Start(resources()), PnpAnswer::status(0));
    m.pnp(&PnpRequest::QueryRemove);
    assert_eq!(m.pnp_state(), PnpState::RemovePending);
    m.pnp(&PnpRequest::CancelRemove);
    assert_eq!(m.pnp_state(), PnpState::Started);
    bus.take();
    m.pnp(&PnpRequest::QueryRemove);
    let answer = drive(&mut m, PnpRequest::Remove, PnpAnswer::status(0));
    assert_eq!(answer.status, STATUS_SUCCESS);
    assert_eq!(
        bus.take(),
        ["children removed", "D3", "join", "disconnect", "destroy"]
    );
    assert_eq!(m.pnp_state(), PnpState::Deleted);
}

#[test]
fn surprise_removal_marks_children_missing() {
    let bus = Bus::active();
    let mut m = FdoMachine::new(&bus);
    drive(&mut m, PnpRequest::Start(resources()), PnpAnswer::status(0));
    bus.take();
    drive(&mut m, PnpRequest::SurpriseRemoval, PnpAnswer::status(0));
    assert_eq!(m.pnp_state(), PnpState::SurpriseRemovePending);
    drive(&mut m, PnpRequest::Remove, PnpAnswer::status(0));
    assert_eq!(
        bus.take(),
        [
            "children missing",
            "children removed",
            "D3",
            "join",
            "disconnect",
            "destroy"
        ]
    );
}

#[test]
fn bus_relations_wait_for_the_scan_and_report_children() {
    let bus = Bus::active();
    let mut m = FdoMachine::new(&bus);
    let request = PnpRequest::QueryDeviceRelations(RelationKind::Bus);
    let PnpAction::ForwardAndWait { set, .. } = m.pnp(&request) else {
        panic!()
    };
    assert_eq!(
        set,
        Some(PnpAnswer::success(PnpReply::Relations(vec![
            "VIF".into(),
            "VBD".into()
        ])))
    );
    m.pnp_finish(&request, set.unwrap());
    assert_eq!(bus.take(), ["wait scan", "reap"]);
    // Other relation types go down untouched; an inactive FDO has no children.
    assert_eq!(
        m.pnp(&PnpRequest::QueryDeviceRelations(RelationKind::Removal)),
        PnpAction::PassDown { set: None }
    );
    let idle = Bus::default();
    let mut inactive = FdoMachine::new(&idle);
    let answer = drive(
        &mut inactive,
        request,
        PnpAnswer::status(STATUS_NOT_SUPPORTED),
    );
    assert_eq!(answer, PnpAnswer::success(PnpReply::Relations(vec![])));
    assert!(idle.take() == ["reap"]);
}

#[test]
fn capabilities_usage_and_device_state() {
    let bus = Bus::active();
    let mut m = FdoMachine::new(&bus);
    let mut lower = DeviceCapabilities::blank();
    lower.removable = true;
    lower.device_state = [
        DevicePower::Unspecified,
        DevicePower::D0,
        DevicePower::D1,
        DevicePower::D2,
        DevicePower::D3,
        DevicePower::D3,
        DevicePower::D3,
    ];
    let request = PnpRequest::QueryCapabilities(DeviceCapabilities::blank());
    let answer = drive(
        &mut m,
        request,
        PnpAnswer::success(PnpReply::Capabilities(lower)),
    );
    let PnpReply::Capabilities(caps) = answer.reply else {
        panic!()
    };
    assert!(!caps.removable, "the FDO is never removable");
    assert_eq!(caps.device_state, lower.device_state);
    assert_eq!(m.lower_capabilities(), Some(&lower));

    let state = |m: &mut FdoMachine<&Bus>, incoming, bits| {
        m.pnp(&PnpRequest::QueryPnpDeviceState(incoming, bits))
    };
    assert_eq!(
        state(&mut m, STATUS_NOT_SUPPORTED, 0),
        PnpAction::PassDown {
            set: Some(PnpAnswer::success(PnpReply::DeviceState(0)))
        }
    );
    for kind in [UsageKind::Paging, UsageKind::Hibernation] {
        drive(
            &mut m,
            PnpRequest::DeviceUsageNotification(kind, true),
            PnpAnswer::status(0),
        );
    }
    assert!(m.not_disableable());
    assert_eq!(bus.take(), ["invalidate state"], "invalidated once");
    assert_eq!(
        state(&mut m, STATUS_SUCCESS, device_state::DONT_DISPLAY_IN_UI),
        PnpAction::PassDown {
            set: Some(PnpAnswer::success(PnpReply::DeviceState(
                device_state::DONT_DISPLAY_IN_UI | device_state::NOT_DISABLEABLE
            )))
        }
    );
    // A failure status from above is left alone.
    assert_eq!(
        state(&mut m, STATUS_UNSUCCESSFUL, 0),
        PnpAction::PassDown { set: None }
    );
    drive(
        &mut m,
        PnpRequest::DeviceUsageNotification(UsageKind::Paging, false),
        PnpAnswer::status(0),
    );
    assert!(m.not_disableable());
    drive(
        &mut m,
        PnpRequest::DeviceUsageNotification(UsageKind::Hibernation, false),
        PnpAnswer::status(0),
    );
    assert!(!m.not_disableable());
    assert_eq!(bus.take(), ["invalidate state"]);
}

/// What the tests' power IRPs saw: each kernel call the executor made, and how the IRP
/// left.
#[derive(Default)]
struct IrpLog {
    trace: Vec<String>,
    /// The last IRP sent down or waiting for a D-IRP (its request, whether a D-IRP).
    waiting: Option<(PowerRequest, Option<PowerRequest>)>,
    /// How the last IRP that left was finished.
    done: Option<NtStatus>,
    /// `PoRequestPowerIrp` fails with this.
    refuse: Option<NtStatus>,
}

/// A power IRP of the tests, carried by [`super::power`].
struct FakeIrp<'a> {
    request: PowerRequest,
    log: &'a RefCell<IrpLog>,
}

impl PowerIrp for FakeIrp<'_> {
    fn complete(self, status: NtStatus) -> NtStatus {
        let mut log = self.log.borrow_mut();
        log.trace
            .push(format!("{:?} complete {status:#x}", self.request));
        log.done = Some(status);
        status
    }
    fn complete_unchanged(self) -> NtStatus {
        self.complete(STATUS_NOT_SUPPORTED)
    }
    fn pass_down(self) -> NtStatus {
        let mut log = self.log.borrow_mut();
        log.trace.push(format!("{:?} passed down", self.request));
        log.done = Some(STATUS_SUCCESS);
        STATUS_SUCCESS
    }
    fn forward(self) {
        let mut log = self.log.borrow_mut();
        log.trace.push(format!("{:?} lower", self.request));
        log.waiting = Some((self.request, None));
    }
    fn request_device_power(self, query: bool, state: DevicePower) -> Result<(), (Self, NtStatus)> {
        let refused = self.log.borrow().refuse;
        if let Some(status) = refused {
            self.log
                .borrow_mut()
                .trace
                .push(format!("{:?} D-IRP refused", self.request));
            return Err((self, status));
        }
        let inner = if query {
            PowerRequest::Query(PowerState::Device(state), PowerAction::None)
        } else {
            PowerRequest::Set(PowerState::Device(state), PowerAction::None)
        };
        self.log.borrow_mut().waiting = Some((self.request, Some(inner)));
        Ok(())
    }
}

/// Run a power request through the FDO machine with the edge's executor
/// ([`super::power`]); the lower drivers succeed at once and D-IRPs the machine requests
/// are sent to the same machine (as `PoRequestPowerIrp` sends them to the own stack).
fn power_with(
    m: &RefCell<FdoMachine<&Bus>>,
    request: PowerRequest,
    log: &RefCell<IrpLog>,
) -> NtStatus {
    let finish =
        &mut |r: &PowerRequest, stage, status| m.borrow_mut().power_finish(r, stage, status);
    let step = m.borrow_mut().power(&request);
    let irp = FakeIrp { request, log };
    let mut outcome = super::power::advance(&request, step, irp, finish);
    loop {
        if let super::power::Outcome::Done(status) = outcome {
            return status;
        }
        let Some((request, d_irp)) = log.borrow_mut().waiting.take() else {
            panic!("waiting without a step");
        };
        let irp = FakeIrp { request, log };
        outcome = match d_irp {
            None => super::power::resume(&request, PowerStage::Lower, STATUS_SUCCESS, irp, finish),
            Some(inner) => {
                let status = power_with(m, inner, log);
                super::power::resume(&request, PowerStage::DeviceIrp, status, irp, finish)
            }
        };
    }
}

/// [`power_with`] keeping only the lines of IRPs that went down.
fn power(m: &mut FdoMachine<&Bus>, request: PowerRequest, trace: &mut Vec<String>) -> NtStatus {
    let cell = RefCell::new(core::mem::replace(m, FdoMachine::new(*m.services())));
    let log = RefCell::new(IrpLog::default());
    let status = power_with(&cell, request, &log);
    *m = cell.into_inner();
    trace.extend(
        log.into_inner()
            .trace
            .into_iter()
            .filter(|line| !line.contains(" complete ")),
    );
    status
}

#[test]
fn system_power_maps_to_device_power_and_hibernate() {
    let bus = Bus::active();
    let mut m = FdoMachine::new(&bus);
    drive(&mut m, PnpRequest::Start(resources()), PnpAnswer::status(0));
    bus.take();
    let mut trace = Vec::new();
    // Down to S4: the D-IRP (D3) first, then S3→S4, then the S-IRP goes down.
    let s4 = PowerRequest::Set(
        PowerState::System(SystemPower::Hibernate),
        PowerAction::Hibernate,
    );
    assert_eq!(power(&mut m, s4, &mut trace), STATUS_SUCCESS);
    assert_eq!(bus.take(), ["D3", "S3->S4"]);
    assert_eq!(trace.len(), 2);
    assert!(trace[0].contains("D3") && trace[1].contains("Hibernate"));
    assert_eq!(m.system_power(), SystemPower::Hibernate);
    assert_eq!(m.device_power(), DevicePower::D3);
    // Back to S0: the S-IRP goes down first, S4→S3, then the D-IRP (D0) runs D3→D0 after
    // the lower drivers.
    trace.clear();
    let s0 = PowerRequest::Set(PowerState::System(SystemPower::Working), PowerAction::None);
    assert_eq!(power(&mut m, s0, &mut trace), STATUS_SUCCESS);
    assert_eq!(bus.take(), ["S4->S3", "D0 gsi=Some(28) cpu1=Some(161)"]);
    assert!(trace[0].contains("Working") && trace[1].contains("D0"));
    assert_eq!(m.system_power(), SystemPower::Working);
    assert_eq!(m.device_power(), DevicePower::D0);
    // S3 and back: no hibernate steps.
    let s3 = PowerRequest::Set(
        PowerState::System(SystemPower::Sleeping3),
        PowerAction::Sleep,
    );
    power(&mut m, s3, &mut trace);
    power(&mut m, s0, &mut trace);
    assert_eq!(bus.take()[..1], ["D3".to_string()]);
    // Query power: D query requested, nothing changes.
    trace.clear();
    let q = PowerRequest::Query(
        PowerState::System(SystemPower::Sleeping3),
        PowerAction::Sleep,
    );
    assert_eq!(power(&mut m, q, &mut trace), STATUS_SUCCESS);
    assert!(bus.take().is_empty());
    assert_eq!(m.system_power(), SystemPower::Working);
    assert!(trace[0].contains("Query(Device(D3)"));
    // Shutdown: no D-IRP, the S-IRP just goes down, the device stays in D0.
    trace.clear();
    let off = PowerRequest::Set(
        PowerState::System(SystemPower::Shutdown),
        PowerAction::ShutdownOff,
    );
    assert_eq!(power(&mut m, off, &mut trace), STATUS_SUCCESS);
    assert_eq!(trace.len(), 1);
    assert!(trace[0].contains("passed down"));
    assert!(bus.take().is_empty());
    assert_eq!(m.device_power(), DevicePower::D0);
}

#[test]
fn power_executor_orders_device_transitions_around_the_lower_drivers() {
    use super::power::{advance, resume, Outcome};
    let bus = Bus::active();
    let mut m = FdoMachine::new(&bus);
    drive(&mut m, PnpRequest::Start(resources()), PnpAnswer::status(0));
    bus.take();
    let log = RefCell::new(IrpLog::default());
    let m = RefCell::new(m);
    let finish =
        &mut |r: &PowerRequest, stage, status| m.borrow_mut().power_finish(r, stage, status);
    let irp = |request| FakeIrp { request, log: &log };
    // The machine looks at `request`, the executor carries the step out; what the bus did
    // before the lower drivers were called, and the outcome once they answered `lower`.
    let mut round = |request: PowerRequest, lower: NtStatus| {
        let step = m.borrow_mut().power(&request);
        let before = bus.take();
        let outcome = match advance(&request, step, irp(request), finish) {
            Outcome::Waiting => {
                assert!(log.borrow().trace.last().unwrap().ends_with("lower"));
                assert!(log.borrow_mut().waiting.take().is_some());
                resume(&request, PowerStage::Lower, lower, irp(request), finish)
            }
            done => done,
        };
        (before, outcome, bus.take())
    };
    // D0→D3: done before the IRP goes down; completed with the lower status after.
    let d3 = PowerRequest::Set(PowerState::Device(DevicePower::D3), PowerAction::Sleep);
    let (before, outcome, after) = round(d3, STATUS_SUCCESS);
    assert_eq!((before, after), (vec!["D3".to_string()], vec![]));
    assert_eq!(outcome, Outcome::Done(STATUS_SUCCESS));
    // D3→D0: the lower drivers first; a lower failure completes the IRP and leaves D3.
    let d0 = PowerRequest::Set(PowerState::Device(DevicePower::D0), PowerAction::None);
    let (before, outcome, after) = round(d0, STATUS_UNSUCCESSFUL);
    assert!(before.is_empty() && after.is_empty());
    assert_eq!(outcome, Outcome::Done(STATUS_UNSUCCESSFUL));
    // Again, with the lower drivers succeeding: D3→D0 runs after them.
    let (before, outcome, after) = round(d0, STATUS_SUCCESS);
    assert!(before.is_empty());
    assert_eq!(after, ["D0 gsi=Some(28) cpu1=Some(161)"]);
    assert_eq!(outcome, Outcome::Done(STATUS_SUCCESS));
    // A power-up failure of the runtime fails the IRP.
    bus.fail_power_up.set(true);
    round(d3, STATUS_SUCCESS);
    let (_, outcome, _) = round(d0, STATUS_SUCCESS);
    assert_eq!(outcome, Outcome::Done(STATUS_UNSUCCESSFUL));
    // WAIT_WAKE and other minors go straight down.
    let (_, outcome, _) = round(PowerRequest::Other(minor::WAIT_WAKE), STATUS_SUCCESS);
    assert_eq!(outcome, Outcome::Done(STATUS_SUCCESS));
    assert!(log.borrow().trace.last().unwrap().ends_with("passed down"));
    assert_eq!(m.borrow().device_power(), DevicePower::D3);
}

#[test]
fn a_device_irp_that_cannot_be_requested_does_not_stop_the_system_irp() {
    let bus = Bus::active();
    let mut m = FdoMachine::new(&bus);
    drive(&mut m, PnpRequest::Start(resources()), PnpAnswer::status(0));
    bus.take();
    let m = RefCell::new(m);
    let log = RefCell::new(IrpLog {
        refuse: Some(STATUS_INSUFFICIENT_RESOURCES),
        ..IrpLog::default()
    });
    let s3 = PowerRequest::Set(
        PowerState::System(SystemPower::Sleeping3),
        PowerAction::Sleep,
    );
    // The S-IRP still goes down (the system sleeps either way); no D0→D3 ran.
    assert_eq!(power_with(&m, s3, &log), STATUS_SUCCESS);
    let trace = log.borrow().trace.clone();
    assert_eq!(trace.len(), 3, "{trace:?}");
    assert!(trace[0].ends_with("D-IRP refused"));
    assert!(trace[1].ends_with("lower"));
    assert!(trace[2].ends_with("complete 0x0"));
    assert!(bus.take().is_empty());
    assert_eq!(m.borrow().system_power(), SystemPower::Sleeping3);
    assert_eq!(m.borrow().device_power(), DevicePower::D0);
    // Back up: the lower drivers first, then the refused D-IRP; the S-IRP succeeds.
    let s0 = PowerRequest::Set(PowerState::System(SystemPower::Working), PowerAction::None);
    assert_eq!(power_with(&m, s0, &log), STATUS_SUCCESS);
    assert_eq!(m.borrow().system_power(), SystemPower::Working);
}

#[derive(Default)]
struct Child {
    missing: Cell<bool>,
    log: RefCell<Vec<String>>,
    policy: Cell<Option<RemovalPolicy>>,
}

impl ChildServices for Child {
    fn vendor_prefix(&self) -> &str {
        "XP"
    }
    fn pci_device_id(&self) -> u16 {
        0x0002
    }
    fn removal_policy(&self, _class: &str) -> RemovalPolicy {
        self.policy.get().unwrap_or_default()
    }
    fn query_interface(&self, which: XenbusInterface, query: &InterfaceQuery) -> NtStatus {
        self.log
            .borrow_mut()
            .push(format!("{which:?} v{} size {}", query.version, query.size));
        STATUS_SUCCESS
    }
    fn query_bus_interface(&self, class: &str, _query: &InterfaceQuery) -> NtStatus {
        self.log.borrow_mut().push(format!("bus {class}"));
        STATUS_SUCCESS
    }
    fn delegate(&self, request: &PnpRequest) -> PnpAnswer {
        self.log
            .borrow_mut()
            .push(format!("delegate {:#x}", request.minor()));
        PnpAnswer::status(STATUS_SUCCESS)
    }
    fn power_up(&self, class: &str) -> Result<(), NtStatus> {
        self.log.borrow_mut().push(format!("{class} D0"));
        Ok(())
    }
    fn power_down(&self, class: &str) {
        self.log.borrow_mut().push(format!("{class} D3"));
    }
    fn is_missing(&self, _class: &str) -> bool {
        self.missing.get()
    }
    fn eject(&self, class: &str) {
        self.missing.set(true);
        self.log.borrow_mut().push(format!("{class} ejected"));
    }
    fn removed(&self, class: &str, destroy: bool) {
        self.log
            .borrow_mut()
            .push(format!("{class} removed destroy={destroy}"));
    }
}

fn complete(action: PnpAction) -> PnpAnswer {
    match action {
        PnpAction::Complete(answer) => answer,
        other => panic!("a PDO completes: {other:?}"),
    }
}

#[test]
fn pdo_identity_text_bus_information_and_requirements() {
    let c = Child::default();
    let mut p = PdoMachine::new("VIF");
    let id = |p: &mut PdoMachine, kind| complete(p.pnp(&c, &PnpRequest::QueryId(kind)));
    assert_eq!(
        id(&mut p, IdKind::DeviceId).reply,
        PnpReply::Text("XENBUS\\VEN_XP&DEV_VIF".into())
    );
    assert_eq!(
        id(&mut p, IdKind::InstanceId).reply,
        PnpReply::Text("_".into())
    );
    let PnpReply::TextList(hardware) = id(&mut p, IdKind::HardwareIds).reply else {
        panic!()
    };
    assert_eq!(hardware[0], "XENBUS\\VEN_XP0002&DEV_VIF&REV_0900000C");
    assert_eq!(hardware[4], "XENBUS\\VEN_XP0002&DEV_VIF&REV_09000008");
    assert_eq!(hardware.last().unwrap(), "XENCLASS");
    assert_eq!(hardware.len(), xen_include::revision::REVISIONS.len() + 1);
    assert_eq!(
        id(&mut p, IdKind::CompatibleIds).reply,
        PnpReply::TextList(hardware)
    );
    assert_eq!(id(&mut p, IdKind::ContainerId).status, STATUS_NOT_SUPPORTED);
    let text =
        |p: &mut PdoMachine, kind| complete(p.pnp(&c, &PnpRequest::QueryDeviceText(kind, 0x409)));
    assert_eq!(
        text(&mut p, TextKind::Description).reply,
        PnpReply::Text("XP0002 XENBUS VIF".into())
    );
    assert_eq!(
        text(&mut p, TextKind::LocationInformation).reply,
        PnpReply::Text("VIF".into())
    );
    assert_eq!(
        text(&mut p, TextKind::Other(2)).status,
        STATUS_NOT_SUPPORTED
    );
    let bus = complete(p.pnp(&c, &PnpRequest::QueryBusInformation));
    assert_eq!(
        bus.reply,
        PnpReply::BusInformation(BusInformation {
            bus_type: GUID_BUS_TYPE_INTERNAL,
            legacy_bus_type: 0,
            bus_number: 0
        })
    );
    let PnpReply::Requirements(req) =
        complete(p.pnp(&c, &PnpRequest::QueryResourceRequirements)).reply
    else {
        panic!()
    };
    assert_eq!(req.interface_type, INTERFACE_TYPE_INTERNAL);
    assert_eq!(req.alternatives.len(), 1);
    assert!(matches!(
        req.alternatives[0][0].requirement,
        Requirement::Memory {
            length: 4096,
            alignment: 4096,
            minimum: 0,
            maximum: u64::MAX
        }
    ));
    assert_eq!(
        req.alternatives[0][0].flags,
        flags::MEMORY_PREFETCHABLE | flags::MEMORY_CACHEABLE
    );
    assert!(matches!(
        req.alternatives[0][1].requirement,
        Requirement::Interrupt {
            policy: IrqPolicy::OneCloseProcessor,
            group: ALL_PROCESSOR_GROUPS,
            ..
        }
    ));
    assert_eq!(
        complete(p.pnp(
            &c,
            &PnpRequest::QueryDeviceRelations(RelationKind::TargetDevice)
        ))
        .reply,
        PnpReply::TargetSelf
    );
    assert_eq!(
        p.pnp(&c, &PnpRequest::QueryDeviceRelations(RelationKind::Bus)),
        PnpAction::CompleteUnchanged
    );
    assert_eq!(
        complete(p.pnp(&c, &PnpRequest::Other(minor::READ_CONFIG))).status,
        STATUS_NOT_SUPPORTED
    );
    assert_eq!(
        p.pnp(&c, &PnpRequest::QueryResources),
        PnpAction::CompleteUnchanged
    );
}

#[test]
fn pdo_capabilities_follow_allow_pdo_remove_and_eject() {
    let c = Child::default();
    let mut p = PdoMachine::new("VBD");
    let mut caps = DeviceCapabilities::blank();
    caps.device_state[2] = DevicePower::D1;
    let PnpReply::Capabilities(filled) =
        complete(p.pnp(&c, &PnpRequest::QueryCapabilities(caps))).reply
    else {
        panic!()
    };
    assert!(filled.removable && filled.surprise_removal_ok && filled.eject_supported);
    assert!(filled.unique_id && filled.silent_install && !filled.raw_device_ok);
    assert_eq!(filled.device_state[1], DevicePower::D0);
    assert_eq!(filled.device_state[2], DevicePower::D1, "S1 untouched");
    assert_eq!(filled.device_state[4..], [DevicePower::D3; 3]);
    c.policy
        .set(Some(RemovalPolicy::from_registry(Some(0), Some(0))));
    let PnpReply::Capabilities(locked) =
        complete(p.pnp(&c, &PnpRequest::QueryCapabilities(caps))).reply
    else {
        panic!()
    };
    assert!(!locked.removable && !locked.surprise_removal_ok && !locked.eject_supported);
    caps.version = 2;
    assert_eq!(
        complete(p.pnp(&c, &PnpRequest::QueryCapabilities(caps))).status,
        STATUS_INVALID_PARAMETER
    );
}

#[test]
fn pdo_lifecycle_eject_remove_and_power() {
    let c = Child::default();
    let mut p = PdoMachine::new("VIF");
    p.enumerated();
    assert_eq!(p.pnp_state(), PnpState::Enumerated);
    complete(p.pnp(&c, &PnpRequest::Start(StartResources::default())));
    assert_eq!(p.pnp_state(), PnpState::Started);
    assert_eq!(p.device_power(), DevicePower::D0);
    // Usage notifications go to the FDO's stack.
    complete(p.pnp(
        &c,
        &PnpRequest::DeviceUsageNotification(UsageKind::Paging, true),
    ));
    // Power: D3 then D0, system states recorded, queries succeed, others unchanged.
    let set = |d| PowerRequest::Set(PowerState::Device(d), PowerAction::None);
    assert_eq!(p.power(&c, &set(DevicePower::D3)), PowerStep::Complete(0));
    assert_eq!(p.power(&c, &set(DevicePower::D0)), PowerStep::Complete(0));
    p.power(
        &c,
        &PowerRequest::Set(
            PowerState::System(SystemPower::Sleeping3),
            PowerAction::Sleep,
        ),
    );
    assert_eq!(p.system_power(), SystemPower::Sleeping3);
    assert_eq!(
        p.power(
            &c,
            &PowerRequest::Query(PowerState::Device(DevicePower::D3), PowerAction::None)
        ),
        PowerStep::Complete(0)
    );
    assert_eq!(
        p.power(&c, &PowerRequest::Other(minor::WAIT_WAKE)),
        PowerStep::CompleteUnchanged
    );
    // What changes nothing is answered without the machine (at any IRQL); set-power of
    // a running system is not.
    let q = PowerRequest::Query(PowerState::Device(DevicePower::D3), PowerAction::None);
    assert_eq!(PdoMachine::power_at_once(&q), Some(PowerStep::Complete(0)));
    assert_eq!(
        PdoMachine::power_at_once(&PowerRequest::Other(minor::WAIT_WAKE)),
        Some(PowerStep::CompleteUnchanged)
    );
    assert_eq!(PdoMachine::power_at_once(&set(DevicePower::D3)), None);
    // At shutdown a set-power only succeeds: the child stays in D0.
    let off = PowerRequest::Set(
        PowerState::Device(DevicePower::D3),
        PowerAction::ShutdownOff,
    );
    assert_eq!(p.power(&c, &off), PowerStep::Complete(0));
    assert_eq!(p.device_power(), DevicePower::D0);
    // REMOVE of a present child: back to Enumerated.
    complete(p.pnp(&c, &PnpRequest::QueryRemove));
    complete(p.pnp(&c, &PnpRequest::Remove));
    assert_eq!(p.pnp_state(), PnpState::Enumerated);
    // Eject, then REMOVE of the missing child: deleted, relations invalidated.
    complete(p.pnp(&c, &PnpRequest::Start(StartResources::default())));
    complete(p.pnp(&c, &PnpRequest::Eject));
    complete(p.pnp(&c, &PnpRequest::Remove));
    assert_eq!(p.pnp_state(), PnpState::Deleted);
    // A surprise-removed missing child is destroyed at REMOVE.
    let mut q = PdoMachine::new("VBD");
    complete(q.pnp(&c, &PnpRequest::Start(StartResources::default())));
    complete(q.pnp(&c, &PnpRequest::SurpriseRemoval));
    complete(q.pnp(&c, &PnpRequest::Remove));
    assert_eq!(
        *c.log.borrow(),
        [
            "VIF D0",
            "delegate 0x16",
            "VIF D3",
            "VIF D0",
            "VIF D3",
            "VIF D0",
            "VIF ejected",
            "VIF D3",
            "VIF removed destroy=false",
            "VBD D0",
            "VBD D3",
            "VBD removed destroy=true",
        ]
    );
}

#[test]
fn pdo_query_interface_answers_only_while_not_supported() {
    let c = Child::default();
    let mut p = PdoMachine::new("VIF");
    let mut q = InterfaceQuery {
        guid: GUID_XENBUS_STORE_INTERFACE,
        size: 200,
        version: 2,
        buffer: 0x1000,
        specific: 0,
        incoming: STATUS_NOT_SUPPORTED,
    };
    assert_eq!(
        p.pnp(&c, &PnpRequest::QueryInterface(q)),
        PnpAction::Complete(PnpAnswer::status(STATUS_SUCCESS))
    );
    // Already answered above: untouched, the provider not asked.
    q.incoming = STATUS_SUCCESS;
    assert_eq!(
        p.pnp(&c, &PnpRequest::QueryInterface(q)),
        PnpAction::CompleteUnchanged
    );
    q.incoming = STATUS_BUFFER_OVERFLOW;
    assert_eq!(
        p.pnp(&c, &PnpRequest::QueryInterface(q)),
        PnpAction::CompleteUnchanged
    );
    // Unknown GUID: untouched.
    q.incoming = STATUS_NOT_SUPPORTED;
    q.guid = xen_include::guid::Guid::from_u128(0x1234);
    assert_eq!(
        p.pnp(&c, &PnpRequest::QueryInterface(q)),
        PnpAction::CompleteUnchanged
    );
    // EMULATED goes to the FDO's stack; the bus interface checks version and size first.
    q.guid = xen_include::interfaces::emulated::GUID_XENFILT_EMULATED_INTERFACE;
    complete(p.pnp(&c, &PnpRequest::QueryInterface(q)));
    q.guid = GUID_BUS_INTERFACE_STANDARD;
    q.version = 1;
    q.size = 32;
    assert_eq!(
        complete(p.pnp(&c, &PnpRequest::QueryInterface(q))).status,
        STATUS_BUFFER_TOO_SMALL
    );
    q.size = 64;
    assert_eq!(
        complete(p.pnp(&c, &PnpRequest::QueryInterface(q))).status,
        0
    );
    assert_eq!(
        *c.log.borrow(),
        ["Store v2 size 200", "delegate 0x8", "bus VIF"]
    );
}
