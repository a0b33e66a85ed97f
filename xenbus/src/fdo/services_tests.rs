//! The bus FDO's PnP machine driving the FDO runtime through [`FdoServices`] on the
//! simulated machine: START (interrupts, threads, D3→D0 with the message vector, line GSI
//! and BAR, the balloon's first pass, the scan), the QUERY_REMOVE veto while inflated,
//! BusRelations from the scan, REMOVE (D0→D3, threads joined, destroy).

use super::runtime_tests::{boot, Options};
use super::*;
use crate::pnp::fdo::{BusServices, FdoMachine, InterruptConnection};
use alloc::vec;
use common::pnp::*;
use std::sync::{Mutex, OnceLock};
use xen_include::status::{NtStatus, STATUS_SUCCESS, STATUS_UNSUCCESSFUL};
use xen_include::xen::hvm::params::HvmParam;

#[derive(Default)]
struct Edge {
    fdo: OnceLock<&'static Fdo>,
    log: Mutex<Vec<String>>,
}

impl Edge {
    fn note(&self, what: String) {
        self.log.lock().unwrap().push(what);
    }
}

impl BusEdge for &'static Edge {
    fn processors(&self) -> Vec<(u16, u8)> {
        vec![(0, 0), (0, 1)]
    }
    fn connect_interrupts(&self, interrupts: &[InterruptConnection]) -> Result<(), NtStatus> {
        self.note(format!("connect {}", interrupts.len()));
        Ok(())
    }
    fn disconnect_interrupts(&self) {
        self.note("disconnect".into());
    }
    fn start_threads(&self, balloon: bool) -> Result<(), NtStatus> {
        self.note(format!("threads (balloon {balloon})"));
        Ok(())
    }
    fn stop_threads(&self) {
        self.note("join".into());
    }
    /// The thread runs its step once, as a woken system thread would.
    fn wait_for_pass(&self, thread: FdoThread, _seconds: u32) -> bool {
        let fdo = self.fdo.get().unwrap();
        match thread {
            FdoThread::Balloon => {
                self.note(format!("balloon pass {:?}", fdo.balloon_step()));
            }
            FdoThread::Scan => {
                self.note(format!("scan pass {:?}", fdo.scan_step().created));
            }
            FdoThread::Suspend => {}
        }
        true
    }
    fn reap_children(&self) {}
    fn remove_children(&self) {
        self.note("children removed".into());
    }
    fn invalidate_device_state(&self) {}
    fn destroy_device(&self) {
        self.note("device deleted".into());
    }
}

fn interrupt(vector: u32, message: bool, affinity: u64) -> Assigned {
    Assigned {
        share: if message {
            Share::DeviceExclusive
        } else {
            Share::Shared
        },
        flags: 0,
        resource: AssignedResource::Interrupt(AssignedInterrupt {
            flags: if message {
                flags::INTERRUPT_LATCHED | flags::INTERRUPT_MESSAGE
            } else {
                flags::INTERRUPT_LEVEL_SENSITIVE
            },
            vector,
            level: 9,
            group: 0,
            affinity,
            message_count: u16::from(message),
        }),
    }
}

fn drive<S: BusServices>(m: &mut FdoMachine<S>, request: PnpRequest) -> PnpAnswer {
    let lower = PnpAnswer::status(STATUS_SUCCESS);
    match m.pnp(&request) {
        PnpAction::Complete(answer) => answer,
        PnpAction::CompleteUnchanged => lower,
        PnpAction::PassDown { set } => set.unwrap_or(lower),
        PnpAction::ForwardAndWait { set, .. } => {
            let lower = match (set, &lower.reply) {
                (Some(set), PnpReply::Nothing) => set,
                _ => lower,
            };
            m.pnp_finish(&request, lower)
        }
    }
}

#[test]
fn the_pnp_machine_starts_queries_and_removes_the_runtime() {
    let w = boot(Options {
        params: vec![("UseMemoryHole", common::os::RegValue::Dword(0))],
        ..Options::default()
    });
    let edge: &'static Edge = Box::leak(Box::default());
    edge.fdo.set(w.fdo).ok();
    let mut m = FdoMachine::new(FdoServices::new(w.fdo, edge));
    let hole = w.m.layout().hole.clone();
    let bar = Assigned {
        share: Share::DeviceExclusive,
        flags: 0,
        resource: AssignedResource::Memory {
            start: hole.start << 12,
            length: ((hole.end - hole.start) << 12) as u32,
        },
    };
    let start = StartResources {
        raw: vec![
            bar,
            interrupt(28, false, 1),
            interrupt(0x4000, true, 1),
            interrupt(0x4001, true, 2),
        ],
        translated: vec![
            bar,
            interrupt(0x51, false, 1),
            interrupt(0xF3, true, 1),
            interrupt(0xF4, true, 2),
        ],
    };
    let answer = drive(&mut m, PnpRequest::Start(start));
    assert_eq!(answer.status, STATUS_SUCCESS);
    assert!(w.fdo.is_d0());
    assert_eq!(w.m.hv.param(HvmParam::CALLBACK_IRQ), 28, "line GSI");
    assert_eq!(w.m.hv.upcall_vector(0), 0xF3, "CPU 0's message vector");
    assert_eq!(w.m.hv.upcall_vector(1), 0xF4, "CPU 1's own message vector");
    assert!(
        (hole.start..hole.end).any(|g| w.m.hv.p2m(g) != xen_sim::hv::P2m::Invalid),
        "UseMemoryHole=0 maps into the BAR START gave"
    );
    assert_eq!(
        *edge.log.lock().unwrap(),
        [
            "connect 3",
            "threads (balloon true)",
            "balloon pass Some(Idle)",
        ]
    );
    // The scan thread was woken after the balloon's first pass.
    assert!(w.m.guest.event_sets(super::runtime_tests::SCAN_EVENT) >= 2);

    // After a migration the LATE EVTCHN callback programs each CPU's own vector again.
    let step = super::runtime_tests::suspend_through_control_shutdown(
        &w,
        xen_sim::hv::SuspendOutcome::Resume,
    );
    assert_eq!(
        step,
        SuspendStep::Triggered(crate::suspend::TriggerOutcome::Resumed)
    );
    assert_eq!(w.m.hv.upcall_vector(0), 0xF3);
    assert_eq!(w.m.hv.upcall_vector(1), 0xF4);

    let relations = drive(&mut m, PnpRequest::QueryDeviceRelations(RelationKind::Bus));
    assert_eq!(relations.reply, PnpReply::Relations(vec!["VBD".into()]));

    // Inflate the balloon: QUERY_REMOVE is vetoed.
    let static_max_kib = 2 * 1024 * 1024 - 8 * 1024;
    w.ts.lock()
        .unwrap()
        .set_balloon_target(w.domid, static_max_kib - 32 * 4)
        .unwrap();
    assert!(w.fdo.balloon_step().is_some());
    let veto = drive(&mut m, PnpRequest::QueryRemove);
    assert_eq!(veto.status, STATUS_UNSUCCESSFUL);
    drive(&mut m, PnpRequest::CancelRemove);
    w.ts.lock()
        .unwrap()
        .set_balloon_target(w.domid, static_max_kib)
        .unwrap();
    w.fdo.balloon_step();
    assert_eq!(
        drive(&mut m, PnpRequest::QueryRemove).status,
        STATUS_SUCCESS
    );
    drive(&mut m, PnpRequest::Remove);
    assert!(!w.fdo.is_d0());
    let log = edge.log.lock().unwrap().clone();
    assert_eq!(
        &log[3..],
        [
            "scan pass [\"VBD\"]",
            "children removed",
            "join",
            "disconnect",
            "device deleted"
        ]
    );
    assert_eq!(w.fdo.trace().last(), Some(&"destroy"));
    assert_eq!(w.s().evtchn.open_channels(), 0);
}
