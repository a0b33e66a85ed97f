//! The toolstack, xenstored and the backends attached to a simulated machine: the guest's
//! requests travel over its real ring page and event channel, and a backend maps the
//! guest's grants through the hypervisor (GTF_reading/GTF_writing set while mapped).

/// Heap use above DISPATCH_LEVEL panics, as pool use there bug-checks a real kernel.
#[global_allocator]
static ALLOCATOR: common::irql::model::CheckingAllocator =
    common::irql::model::CheckingAllocator::SYSTEM;

use std::sync::{Arc, Mutex};

use common::hypercall::Hypercall;
use xen_sim::hv::abi::*;
use xen_sim::machine::Machine;
use xen_sim::toolstack::machine::{HvGrants, StoreService};
use xen_sim::toolstack::{BackendMode, DeviceClass, Toolstack};
use xen_sim::xenstored::wire::{Decoder, Message};
use xen_sim::xenstored::Xenstored;

/// The guest side of the store ring, written through the hypervisor's view of guest
/// memory and signalled with `EVTCHNOP_send` hypercalls.
struct GuestStore<'a> {
    m: &'a Machine,
    gfn: u64,
    port: u32,
    next: u32,
    decoder: Decoder,
}

impl<'a> GuestStore<'a> {
    fn new(m: &'a Machine) -> Self {
        Self {
            m,
            gfn: m.layout().store_gfn,
            port: m.store().guest_port,
            next: 1,
            decoder: Decoder::default(),
        }
    }

    fn u32_at(&self, off: usize) -> u32 {
        let mut b = [0u8; 4];
        self.m.hv.read_guest(self.gfn, off, &mut b).unwrap();
        u32::from_le_bytes(b)
    }

    fn set_u32(&self, off: usize, v: u32) {
        self.m
            .hv
            .write_guest(self.gfn, off, &v.to_le_bytes())
            .unwrap();
    }

    fn notify(&self) {
        let mut send = EvtchnSend { port: self.port };
        let r = self.m.hv.hypercall(
            HypercallCode::EVENT_CHANNEL_OP.0,
            [
                EvtchnOp::SEND.0 as usize,
                &mut send as *mut _ as usize,
                0,
                0,
                0,
            ],
        );
        assert_eq!(r, 0, "EVTCHNOP_send");
    }

    fn call(&mut self, t: u32, payload: Vec<u8>) -> Message {
        let id = self.next;
        self.next += 1;
        let bytes = Message::new(t, id, 0, payload).to_bytes();
        let prod = self.u32_at(2052);
        for (i, b) in bytes.iter().enumerate() {
            let at = (prod as usize + i) & 1023;
            self.m.hv.write_guest(self.gfn, at, &[*b]).unwrap();
        }
        self.set_u32(2052, prod + bytes.len() as u32);
        self.notify();
        // The notification ran xenstored synchronously; the reply is on the ring.
        let (cons, prod) = (self.u32_at(2056), self.u32_at(2060));
        for i in cons..prod {
            let mut b = [0u8];
            self.m
                .hv
                .read_guest(self.gfn, 1024 + (i as usize & 1023), &mut b)
                .unwrap();
            self.decoder.push(&b);
        }
        self.set_u32(2056, prod);
        let mut found = None;
        while let Ok(Some(m)) = self.decoder.next_message() {
            if m.req_id == id {
                found = Some(m);
            }
        }
        found.expect("reply on the ring")
    }

    /// Watch events waiting on the ring.
    fn poll_events(&mut self) -> Vec<Message> {
        let (cons, prod) = (self.u32_at(2056), self.u32_at(2060));
        for i in cons..prod {
            let mut b = [0u8];
            self.m
                .hv
                .read_guest(self.gfn, 1024 + (i as usize & 1023), &mut b)
                .unwrap();
            self.decoder.push(&b);
        }
        self.set_u32(2056, prod);
        let mut out = Vec::new();
        while let Ok(Some(m)) = self.decoder.next_message() {
            if m.msg_type == 15 {
                out.push(m);
            }
        }
        out
    }

    fn write(&mut self, path: &str, value: &str) {
        let mut p = Message::strings(&[path]);
        p.extend_from_slice(value.as_bytes());
        assert_eq!(self.call(11, p).payload, b"OK\0", "write {path}");
    }
}

#[test]
fn guest_talks_to_xenstored_over_its_ring_and_a_backend_maps_its_grants() {
    let m = Machine::new();
    let store = Arc::new(Mutex::new(Xenstored::default()));
    let svc = StoreService::attach(&m, &store);
    let mut ts = Toolstack::new(&store, Box::new(HvGrants::new(m.hv.clone())));
    let cfg = StoreService::domain_config(&m);
    ts.create_domain(&cfg).unwrap();
    let domid = cfg.domid;

    let mut g = GuestStore::new(&m);
    let name = g.call(2, Message::strings(&["name"]));
    assert_eq!(name.payload, cfg.name.as_bytes());
    let home = g.call(10, Message::strings(&[&domid.to_string()]));
    assert_eq!(home.payload, format!("/local/domain/{domid}\0").as_bytes());

    // A vif whose rings the guest grants to dom0.
    let dev = ts
        .add_device(
            domid,
            DeviceClass::Vif {
                mac: "00:16:3e:12:34:56".into(),
            },
            0,
            BackendMode::Normal,
        )
        .unwrap();
    let ram = m.layout().ram.clone();
    m.hv.toolstack_seed_grant(8, 0, ram.start + 16);
    m.hv.toolstack_seed_grant(9, 0, ram.start + 17);
    g.write("device/vif/0/tx-ring-ref", "8");
    g.write("device/vif/0/rx-ring-ref", "9");
    g.write("device/vif/0/event-channel", "5");
    g.write("device/vif/0/state", "4");
    ts.run().unwrap();
    let b = ts.backend(&dev).unwrap();
    assert_eq!(b.mapped.len(), 2);
    let reading = GrantEntryFlags::READING.bits();
    let writing = GrantEntryFlags::WRITING.bits();
    let (flags, _, _) = m.hv.grant_entry(8).unwrap();
    assert_eq!(
        flags & (reading | writing),
        reading | writing,
        "backend mapping in use"
    );
    let state = g.call(
        2,
        Message::strings(&["/local/domain/0/backend/vif/".to_string().as_str()]),
    );
    assert_eq!(
        state.msg_type, 16,
        "dom0's backend directory is not readable by the guest"
    );
    let state = g.call(
        2,
        Message::strings(&[&format!("/local/domain/0/backend/vif/{domid}/0/state")]),
    );
    assert_eq!(state.payload, b"4");

    // Closing unmaps the grants.
    g.write("device/vif/0/state", "6");
    ts.run().unwrap();
    let (flags, _, _) = m.hv.grant_entry(8).unwrap();
    assert_eq!(flags & (reading | writing), 0, "unmapped after close");
    assert!(svc.pump().error.is_none());
}

fn suspend(m: &Machine) -> isize {
    let mut shutdown = SchedShutdown {
        reason: ShutdownReason::SUSPEND,
    };
    m.hv.hypercall(
        HypercallCode::SCHED_OP.0,
        [
            SchedOp::SHUTDOWN.0 as usize,
            &mut shutdown as *mut _ as usize,
            0,
            0,
            0,
        ],
    )
}

#[test]
fn resume_on_a_new_host_gives_the_guest_a_fresh_store_connection() {
    use xen_sim::hv::SuspendOutcome;
    let m = Machine::new();
    let store = Arc::new(Mutex::new(Xenstored::default()));
    let svc = StoreService::attach(&m, &store);
    m.hv.set_suspend_hook(Some(svc.suspend_hook()));
    let mut ts = Toolstack::new(&store, Box::new(HvGrants::new(m.hv.clone())));
    let cfg = StoreService::domain_config(&m);
    ts.create_domain(&cfg).unwrap();
    let mut g = GuestStore::new(&m);
    let w = g.call(4, Message::strings(&["memory/target", "bal"]));
    assert_eq!(w.payload, b"OK\0");

    // A cancelled suspend changes nothing: the watch still fires.
    m.hv.set_suspend_outcome(SuspendOutcome::Cancel);
    assert_eq!(suspend(&m), 1);
    ts.set_balloon_target(cfg.domid, 1000).unwrap();
    let events = g.poll_events();
    assert!(
        events.iter().any(|e| e.payload == b"memory/target\0bal\0"),
        "{events:?}"
    );

    // A resume on a new host: watches are gone and the ring starts from zero.
    m.hv.set_suspend_outcome(SuspendOutcome::Resume);
    assert_eq!(suspend(&m), 0);
    assert_eq!(
        (
            g.u32_at(2048),
            g.u32_at(2052),
            g.u32_at(2056),
            g.u32_at(2060)
        ),
        (0, 0, 0, 0)
    );
    g.decoder = Decoder::default();
    ts.set_balloon_target(cfg.domid, 2000).unwrap();
    assert!(g.poll_events().is_empty(), "no watch survives the move");
    assert_eq!(
        g.call(2, Message::strings(&["memory/target"])).payload,
        b"2000"
    );
    // Registering again works, even for a guest whose old connection had been cut off.
    assert_eq!(
        g.call(4, Message::strings(&["memory/target", "bal"]))
            .payload,
        b"OK\0"
    );
    ts.set_balloon_target(cfg.domid, 3000).unwrap();
    assert!(g
        .poll_events()
        .iter()
        .any(|e| e.payload == b"memory/target\0bal\0"));
}
