//! The rig's scenario list on the simulator: every scenario the real-Xen rig runs has this
//! twin, with the simulator's hypervisor, xenstored, platform device and a dom0 helper
//! that answers the guest's `data/rig/request` the way `dom0-helper.py` does on real Xen.
//! A behaviour the two disagree on is fixed in the simulator and pinned here.

/// Heap use above DISPATCH_LEVEL panics, as pool use there bug-checks a real kernel.
#[global_allocator]
static ALLOCATOR: common::irql::model::CheckingAllocator =
    common::irql::model::CheckingAllocator::SYSTEM;

use std::cell::{Cell, OnceCell, RefCell};
use std::sync::{Arc, Mutex};

use common::hypercall::Hypercall;
use common::os::Os;
use rig_guest::api::RigApi;
use rig_guest::cores::Cores;
use rig_guest::{run_all, GuestEnv, SCENARIOS};
use xen_include::api::XenApi;
use xen_sim::hv::SuspendOutcome;
use xen_sim::machine::Machine;
use xen_sim::platform::DeviceKind;
use xen_sim::toolstack::machine::{HvGrants, StoreService};
use xen_sim::toolstack::Toolstack;
use xen_sim::xenstored::Xenstored;
use xenbus::shared::SharedMemory;

/// dom0's side of a pending `evtchn-echo`.
struct Echo {
    sequence: String,
    local: u32,
    /// The simulated clock when dom0 notified the guest.
    notified: u64,
}

struct Dom0 {
    toolstack: Toolstack,
    home: String,
    last: String,
    echo: Option<Echo>,
    /// A pending `save-restore`: its sequence and the suspend count when it was asked.
    saving: Option<(String, u32)>,
}

struct SimEnv {
    machine: &'static Machine,
    api: &'static RigApi,
    cores: OnceCell<Cores>,
    store: OnceCell<rig_guest::xs::Connection>,
    xenstored: Arc<Mutex<Xenstored>>,
    _service: StoreService,
    scratch: Vec<u64>,
    dom0: RefCell<Dom0>,
    /// Simulated milliseconds: every pause lets one pass.
    clock: Cell<u64>,
}

impl SimEnv {
    fn new() -> Self {
        let machine: &'static Machine = Box::leak(Box::new(Machine::new()));
        let store = Arc::new(Mutex::new(Xenstored::default()));
        let service = StoreService::attach(machine, &store);
        // The toolstack's side of a save/restore: the new host's xenstored serves the ring.
        machine.hv.set_suspend_hook(Some(service.suspend_hook()));
        machine.hv.set_suspend_outcome(SuspendOutcome::Resume);
        let mut toolstack = Toolstack::new(&store, Box::new(HvGrants::new(machine.hv.clone())));
        let cfg = StoreService::domain_config(machine);
        toolstack.create_domain(&cfg).expect("domain home");
        let home = cfg.home();
        toolstack
            .client()
            .write(0, &format!("{home}/data/rig/scenarios"), b"all")
            .expect("write");
        let scratch = (0..8)
            .map(|_| machine.guest.alloc_page().expect("guest page").pfn)
            .collect();
        let api: &'static RigApi = Box::leak(Box::new(RigApi::new(&*machine.hv, &*machine.guest)));
        Self {
            machine,
            api,
            cores: OnceCell::new(),
            store: OnceCell::new(),
            xenstored: store,
            _service: service,
            scratch,
            dom0: RefCell::new(Dom0 {
                toolstack,
                home,
                last: String::new(),
                echo: None,
                saving: None,
            }),
            clock: Cell::new(0),
        }
    }

    fn answer(&self, dom0: &mut Dom0, sequence: &str, answer: &str) {
        let path = format!("{}/data/rig/reply", dom0.home);
        let _ = dom0
            .toolstack
            .client()
            .write(0, &path, format!("{sequence} {answer}").as_bytes());
    }

    /// One step of the dom0 helper: serve a new request, or finish a pending echo.
    fn dom0_step(&self) {
        let mut dom0 = self.dom0.borrow_mut();
        let hv = &self.machine.hv;
        if let Some((sequence, before)) = dom0.saving.take() {
            // `xl save` + `xl restore` end when the guest has suspended and been restored
            // (the simulator restores inside the guest's SCHEDOP_shutdown).
            if hv.shutdown_state().suspends > before {
                self.answer(
                    &mut dom0,
                    &sequence,
                    &format!("ok restored as dom{}", hv.domid()),
                );
            } else {
                dom0.saving = Some((sequence, before));
            }
            return;
        }
        if let Some(echo) = dom0.echo.take() {
            if hv.backend_take_pending(0).contains(&echo.local) {
                let _ = hv.backend_close(0, echo.local);
                let seconds = (self.clock.get() - echo.notified) as f64 / 1000.0;
                self.answer(
                    &mut dom0,
                    &echo.sequence,
                    &format!("ok {} after {seconds:.1}s", echo.local),
                );
            } else {
                dom0.echo = Some(echo);
            }
            return;
        }
        let path = format!("{}/data/rig/request", dom0.home);
        let Ok(request) = dom0.toolstack.client().read(0, &path) else {
            return;
        };
        let request = String::from_utf8_lossy(&request).into_owned();
        if request == dom0.last {
            return;
        }
        dom0.last = request.clone();
        let mut words = request.split_whitespace();
        let sequence = words.next().unwrap_or_default().to_string();
        let command = words.next().unwrap_or_default();
        let args: Vec<&str> = words.collect();
        let answer = match (command, args.as_slice()) {
            ("write", [path, value @ ..]) => {
                let value = value.join(" ");
                match dom0.toolstack.client().write(0, path, value.as_bytes()) {
                    Ok(()) => "ok".to_string(),
                    Err(e) => format!("error {e:?}"),
                }
            }
            ("grant-read", [gref, length]) => {
                let gref: u32 = gref.parse().unwrap_or(u32::MAX);
                let length: usize = length.parse().unwrap_or(0);
                match hv.backend_map_grant(0, gref, false) {
                    Ok((handle, page)) => {
                        // SAFETY: the mapping is a whole guest page, alive until unmapped.
                        let bytes = unsafe { std::slice::from_raw_parts_mut(page, 4096) };
                        let text = String::from_utf8_lossy(&bytes[..length]).into_owned();
                        bytes[length..length + 5].copy_from_slice(b"dom0!");
                        let _ = hv.backend_unmap_grant(0, handle);
                        text
                    }
                    Err(status) => format!("error {status:?}"),
                }
            }
            ("evtchn-echo", [port]) => {
                let port: u32 = port.parse().unwrap_or(u32::MAX);
                match hv.backend_bind_interdomain(0, hv.domid(), port) {
                    Ok(local) => {
                        let _ = hv.backend_take_pending(0);
                        let _ = hv.backend_send(0, local);
                        dom0.echo = Some(Echo {
                            sequence,
                            local,
                            notified: self.clock.get(),
                        });
                        return;
                    }
                    Err(e) => format!("error {e:?}"),
                }
            }
            ("save-restore", []) => {
                // libxl's request to an HVM guest with PV drivers.
                let path = format!("{}/control/shutdown", dom0.home);
                match dom0.toolstack.client().write(0, &path, b"suspend") {
                    Ok(()) => {
                        dom0.saving = Some((sequence, hv.shutdown_state().suspends));
                        return;
                    }
                    Err(e) => format!("error {e:?}"),
                }
            }
            ("qemu", ["info", "pci"]) => {
                let platform = hv.platform();
                let lines: Vec<String> = platform
                    .devices()
                    .iter()
                    .filter(|d| {
                        !matches!(
                            d.kind,
                            DeviceKind::IdeDisk { .. } | DeviceKind::IdeCdrom { .. }
                        )
                    })
                    .map(|d| {
                        let class = if d.class.0 == 0x02 {
                            "Ethernet controller"
                        } else {
                            "Device"
                        };
                        format!(
                            "Bus 0, device {}: {class} {:04x}:{:04x}",
                            d.slot, d.vendor, d.device
                        )
                    })
                    .collect();
                lines.join(" | ")
            }
            _ => format!("unknown command {command}"),
        };
        self.answer(&mut dom0, &sequence, &answer);
    }
}

impl GuestEnv for SimEnv {
    fn hv(&self) -> &dyn Hypercall {
        &*self.machine.hv
    }

    fn scratch_pfn(&self, index: usize) -> Option<u64> {
        self.scratch.get(index).copied()
    }

    fn frame(&self, pfn: u64) -> Option<SharedMemory> {
        let page = self.machine.hv.frame_ptr_of_gfn(pfn)?;
        // SAFETY: the simulator keeps every populated frame mapped for the machine's life;
        // the scenarios only touch it through SharedMemory's atomics.
        unsafe { SharedMemory::from_raw(page as usize, 4096) }
    }

    fn pause(&self) {
        self.clock.set(self.clock.get() + 1);
        self.dom0_step();
    }

    fn now_ms(&self) -> u64 {
        self.clock.get()
    }

    fn api(&self) -> &'static dyn XenApi {
        self.api
    }

    fn os(&self) -> &'static dyn Os {
        &*self.machine.guest
    }

    fn cores(&self) -> &OnceCell<Cores> {
        &self.cores
    }

    fn store(&self) -> &OnceCell<rig_guest::xs::Connection> {
        &self.store
    }

    fn event_sets(&self, event: usize) -> u64 {
        self.machine.guest.event_sets(event)
    }
}

fn run(filter: &str) -> (u32, u32, String) {
    let env = SimEnv::new();
    let mut out = String::new();
    let (passed, failed) = run_all(&env, filter, &mut out);
    (passed, failed, out)
}

#[test]
fn every_rig_scenario_passes_on_the_simulator() {
    let (passed, failed, out) = run("all");
    println!("{out}");
    assert_eq!(failed, 0, "{out}");
    assert_eq!(passed as usize, SCENARIOS.len(), "{out}");
    for (name, _) in SCENARIOS {
        assert!(
            out.contains(&format!("RIG: SCENARIO {name} PASS")),
            "{name} missing:\n{out}"
        );
    }
}

#[test]
fn one_scenario_can_be_selected() {
    let (passed, failed, out) = run("store");
    assert_eq!((passed, failed), (1, 0), "{out}");
    assert!(out.starts_with("RIG: SCENARIO store PASS"), "{out}");
}

#[test]
fn the_unplug_twin_sees_the_devices_go() {
    let env = SimEnv::new();
    let mut out = String::new();
    run_all(&env, "unplug", &mut out);
    assert!(out.contains("NICs 1->0"), "{out}");
    let platform = env.machine.hv.platform();
    assert!(platform.devices().iter().all(|d| d.kind != DeviceKind::Nic));
}

/// Xen raises an event on the binder's new port at `EVTCHNOP_bind_interdomain` (the
/// cause of the rig's one-in-four `evtchn` failure: the dom0 helper took that event for the
/// guest's answer and closed the channel too early). The simulator does the same, and the
/// helpers on both sides consume it before waiting for the guest.
#[test]
fn binding_raises_an_event_on_the_binders_port() {
    let env = SimEnv::new();
    let hv = &env.machine.hv;
    let port = xen::event_channel::allocate_unbound(&**hv, 0).expect("alloc_unbound");
    let local = hv
        .backend_bind_interdomain(0, hv.domid(), port)
        .expect("bind");
    assert!(hv.backend_take_pending(0).contains(&local));
    assert!(!hv.backend_take_pending(0).contains(&local));
}

#[test]
fn the_core_scenarios_pass_alone() {
    for name in ["evtchn-core", "gnttab-core", "suspend"] {
        let (passed, failed, out) = run(name);
        assert_eq!((passed, failed), (1, 0), "{out}");
    }
}

/// The rig guest's store requests take xenbus's STORE path: a xenstored that takes the
/// request but never answers fails it with `STATUS_IO_TIMEOUT` after the core's quiet
/// periods (re-notifying after each), the request is abandoned, and its reply — written
/// once xenstored recovers — is dropped instead of completing a newer request, also one
/// of another scenario's handle (before, each handle had its own client whose `req_id`s
/// started again from the same seed: its first request matched the late reply).
#[test]
fn a_store_request_xenstored_never_answers_times_out_and_its_late_reply_is_dropped() {
    let env = SimEnv::new();
    {
        let mut dom0 = env.dom0.borrow_mut();
        let home = dom0.home.clone();
        for (node, value) in [("first", "first"), ("second", "second")] {
            dom0.toolstack
                .client()
                .write(0, &format!("{home}/data/rig/{node}"), value.as_bytes())
                .expect("dom0 write");
        }
    }
    let mut xs = rig_guest::xs::Xs::connect(&env).expect("connect");
    // A millisecond per clock read: the 30 s of quiet periods pass in 30 000 reads.
    env.machine.clock.set_step(1_000_000);
    env.xenstored.lock().unwrap().set_ring_delay(u32::MAX);
    assert_eq!(
        xs.read("data/rig/first"),
        Err(format!(
            "read data/rig/first: {:#x}",
            xen_include::status::STATUS_IO_TIMEOUT
        ))
    );
    let store = env.store.get().expect("kept").store();
    assert_eq!(store.abandoned(), 1);
    let log = env.machine.guest.log().join("\n");
    assert_eq!(
        log.matches("; notifying again").count(),
        5,
        "a re-notify after each quiet period but the last: {log}"
    );
    assert!(log.contains("got no reply in 30 s; abandoned"), "{log}");
    // xenstored recovers; the next scenario's first request gets its own reply, the late
    // one is dropped.
    env.xenstored.lock().unwrap().set_ring_delay(0);
    env.machine.clock.set_step(1_000);
    let mut other = rig_guest::xs::Xs::connect(&env).expect("connect");
    assert_eq!(other.read("data/rig/second").as_deref(), Ok("second"));
    assert_eq!(store.abandoned(), 0);
    let log = env.machine.guest.log().join("\n");
    assert!(log.contains("late reply"), "{log}");
}
