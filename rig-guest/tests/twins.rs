//! The rig's scenario list on the simulator: every scenario the real-Xen rig runs has this
//! twin, with the simulator's hypervisor, xenstored, platform device and a dom0 helper
//! that answers the guest's `data/rig/request` the way `dom0-helper.py` does on real Xen.
//! A behaviour the two disagree on is fixed in the simulator and pinned here.

use std::cell::RefCell;
use std::sync::{Arc, Mutex};

use common::hypercall::Hypercall;
use common::os::Os;
use rig_guest::{run_all, GuestEnv, SCENARIOS};
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
}

struct Dom0 {
    toolstack: Toolstack,
    home: String,
    last: String,
    echo: Option<Echo>,
}

struct SimEnv {
    machine: Machine,
    _service: StoreService,
    scratch: Vec<u64>,
    dom0: RefCell<Dom0>,
}

impl SimEnv {
    fn new() -> Self {
        let machine = Machine::new();
        let store = Arc::new(Mutex::new(Xenstored::default()));
        let service = StoreService::attach(&machine, &store);
        let mut toolstack = Toolstack::new(&store, Box::new(HvGrants::new(machine.hv.clone())));
        let cfg = StoreService::domain_config(&machine);
        toolstack.create_domain(&cfg).expect("domain home");
        let home = cfg.home();
        toolstack
            .client()
            .write(0, &format!("{home}/data/rig/scenarios"), b"all")
            .expect("write");
        let scratch = (0..8)
            .map(|_| machine.guest.alloc_page().expect("guest page").pfn)
            .collect();
        Self {
            machine,
            _service: service,
            scratch,
            dom0: RefCell::new(Dom0 {
                toolstack,
                home,
                last: String::new(),
                echo: None,
            }),
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
        if let Some(echo) = dom0.echo.take() {
            if hv.backend_take_pending(0).contains(&echo.local) {
                let _ = hv.backend_close(0, echo.local);
                self.answer(&mut dom0, &echo.sequence, &format!("ok {}", echo.local));
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
                        dom0.echo = Some(Echo { sequence, local });
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
        self.dom0_step();
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
