//! Scenario tests of the toolstack, the backends and the store faults.

use std::sync::{Arc, Mutex};

use xen_include::xen::io::xenbus::XenbusState;

use super::*;
use crate::xenstored::abi as xs;
use crate::xenstored::ring::RingMemory;
use crate::xenstored::wire::{Decoder, Message};
use crate::xenstored::{Errno, Xenstored};

fn store() -> SharedStore {
    Arc::new(Mutex::new(Xenstored::default()))
}

/// A minimal guest-side ring client over a plain page, for driving the store as domain N.
struct Guest {
    domid: u32,
    page: Vec<u8>,
    next_req: u32,
    decoder: Decoder,
    kicks: usize,
}

impl Guest {
    fn new(domid: u32) -> Self {
        Self {
            domid,
            page: vec![0u8; 4096],
            next_req: 1,
            decoder: Decoder::default(),
            kicks: 0,
        }
    }

    fn send(&mut self, st: &SharedStore, t: u32, tx: u32, payload: Vec<u8>) -> u32 {
        let id = self.next_req;
        self.next_req += 1;
        let bytes = Message::new(t, id, tx, payload).to_bytes();
        let prod = self.page.as_slice().load_u32(2052);
        for (i, b) in bytes.iter().enumerate() {
            self.page[(prod as usize + i) & 1023] = *b;
        }
        self.page
            .as_mut_slice()
            .store_u32(2052, prod + bytes.len() as u32);
        self.kick(st);
        id
    }

    fn kick(&mut self, st: &SharedStore) {
        let mut k = 0;
        lock(st).process_ring(self.domid, self.page.as_mut_slice(), &mut || k += 1);
        self.kicks += k;
    }

    fn take(&mut self) -> Vec<Message> {
        let cons = self.page.as_slice().load_u32(2056);
        let prod = self.page.as_slice().load_u32(2060);
        for i in cons..prod {
            self.decoder.push(&[self.page[1024 + (i as usize & 1023)]]);
        }
        self.page.as_mut_slice().store_u32(2056, prod);
        let mut out = Vec::new();
        while let Ok(Some(m)) = self.decoder.next_message() {
            out.push(m);
        }
        out
    }

    fn call(&mut self, st: &SharedStore, t: u32, tx: u32, payload: Vec<u8>) -> Message {
        let id = self.send(st, t, tx, payload);
        for _ in 0..50 {
            if let Some(m) = self.take().into_iter().find(|m| m.req_id == id) {
                return m;
            }
            self.kick(st);
        }
        panic!("no reply to request {id}");
    }

    fn read(&mut self, st: &SharedStore, path: &str) -> Result<String, String> {
        let m = self.call(st, xs::XS_READ, 0, Message::strings(&[path]));
        let text = String::from_utf8_lossy(&m.payload).into_owned();
        if m.msg_type == xs::XS_ERROR {
            Err(text.trim_end_matches('\0').to_string())
        } else {
            Ok(text)
        }
    }

    fn write(&mut self, st: &SharedStore, path: &str, value: &str) -> Message {
        let mut p = Message::strings(&[path]);
        p.extend_from_slice(value.as_bytes());
        self.call(st, xs::XS_WRITE, 0, p)
    }
}

fn domain(st: &SharedStore, domid: u32) -> (Toolstack, Guest) {
    let mut ts = Toolstack::new(st, Box::new(NoGrants::default()));
    ts.create_domain(&DomainConfig::new(domid))
        .expect("create domain");
    (ts, Guest::new(domid))
}

#[test]
fn domain_home_has_the_standard_keys_and_permissions() {
    let st = store();
    let (mut ts, mut g) = domain(&st, 5);
    assert_eq!(g.read(&st, "name").unwrap(), "win-guest-5");
    assert_eq!(g.read(&st, "domid").unwrap(), "5");
    let vm = g.read(&st, "vm").unwrap();
    assert_eq!(vm, "/vm/00000000-0000-4000-8000-000000000005");
    assert_eq!(g.read(&st, &format!("{vm}/name")).unwrap(), "win-guest-5");
    assert_eq!(g.read(&st, "memory/static-max").unwrap(), "2097152");
    assert_eq!(g.read(&st, "memory/target").unwrap(), "2097152");
    assert_eq!(g.read(&st, "memory/videoram").unwrap(), "8192");
    assert_eq!(g.read(&st, "store/ring-ref").unwrap(), "1044476");
    // Guest-writable areas, and read-only ones.
    assert_eq!(g.write(&st, "data/updated", "1").payload, b"OK\0");
    assert_eq!(g.write(&st, "control/shutdown", "").payload, b"OK\0");
    assert_eq!(g.write(&st, "memory/target", "1").payload, b"EACCES\0");
    assert_eq!(g.write(&st, "name", "evil").payload, b"EACCES\0");
    assert_eq!(g.read(&st, "/local/domain/0").unwrap_err(), "EACCES");
    assert!(ts
        .client()
        .directory(0, "/local/domain/5/device")
        .unwrap()
        .is_empty());
}

#[test]
fn vif_vbd_vkbd_backends_do_the_xenbus_handshake() {
    let st = store();
    let (mut ts, mut g) = domain(&st, 3);
    let vif = ts
        .add_device(
            3,
            DeviceClass::Vif {
                mac: "00:16:3e:00:00:01".into(),
            },
            0,
            BackendMode::Normal,
        )
        .unwrap();
    let vbd = ts
        .add_device(
            3,
            DeviceClass::Vbd {
                vdev: 768,
                params: "/images/disk.img".into(),
                sectors: 2048,
            },
            0,
            BackendMode::Normal,
        )
        .unwrap();
    let vkbd = ts
        .add_device(3, DeviceClass::Vkbd, 0, BackendMode::Normal)
        .unwrap();
    let be_vif = "/local/domain/0/backend/vif/3/0";
    assert_eq!(ts.state(be_vif), Some(XenbusState::INIT_WAIT));
    // What a frontend sees and does.
    assert_eq!(g.read(&st, "device/vif/0/backend").unwrap(), be_vif);
    assert_eq!(
        g.read(&st, "device/vif/0/mac").unwrap(),
        "00:16:3e:00:00:01"
    );
    assert_eq!(g.read(&st, &format!("{be_vif}/state")).unwrap(), "2");
    for (dir, keys) in [
        (
            "device/vif/0",
            &[("tx-ring-ref", "8"), ("rx-ring-ref", "9")][..],
        ),
        ("device/vbd/768", &[("ring-ref", "10")][..]),
        ("device/vkbd/0", &[("page-ref", "11")][..]),
    ] {
        let dir = if dir == "device/vbd/768" {
            "device/vbd/0"
        } else {
            dir
        };
        for (k, v) in keys {
            assert_eq!(g.write(&st, &format!("{dir}/{k}"), v).payload, b"OK\0");
        }
        assert_eq!(
            g.write(&st, &format!("{dir}/event-channel"), "7").payload,
            b"OK\0"
        );
        assert_eq!(g.write(&st, &format!("{dir}/state"), "3").payload, b"OK\0");
    }
    ts.run().unwrap();
    for d in [&vif, &vbd, &vkbd] {
        let b = ts.backend(d).unwrap();
        assert_eq!(b.state, XenbusState::CONNECTED, "{:?}", d.class);
        assert_eq!(b.event_channel, Some(7));
    }
    assert_eq!(ts.backend(&vif).unwrap().mapped.len(), 2);
    assert_eq!(
        g.read(&st, "/local/domain/0/backend/vbd/3/0/sectors")
            .unwrap(),
        "2048"
    );
    // Removal: backend closes, frontend follows, both trees vanish.
    ts.remove_device(&vif).unwrap();
    assert_eq!(g.read(&st, &format!("{be_vif}/state")).unwrap(), "5");
    assert_eq!(g.read(&st, &format!("{be_vif}/online")).unwrap(), "0");
    g.write(&st, "device/vif/0/state", "5");
    ts.run().unwrap();
    g.write(&st, "device/vif/0/state", "6");
    ts.run().unwrap();
    assert!(ts.backend(&vif).is_none());
    assert_eq!(g.read(&st, "device/vif/0/state").unwrap_err(), "ENOENT");
    assert!(lock(&st).read(be_vif).is_none());
    assert_eq!(
        ts.client().directory(0, "/local/domain/3/device").unwrap(),
        ["vif", "vbd", "vkbd"]
    );
}

#[test]
fn backend_that_never_connects_stays_in_initwait() {
    let st = store();
    let (mut ts, mut g) = domain(&st, 4);
    let dev = ts
        .add_device(
            4,
            DeviceClass::Vbd {
                vdev: 51712,
                params: "x".into(),
                sectors: 8,
            },
            0,
            BackendMode::NeverConnect,
        )
        .unwrap();
    g.write(&st, "device/vbd/0/ring-ref", "9");
    g.write(&st, "device/vbd/0/event-channel", "3");
    g.write(&st, "device/vbd/0/state", "3");
    ts.run().unwrap();
    assert_eq!(ts.backend(&dev).unwrap().state, XenbusState::INIT_WAIT);
    assert_eq!(
        g.read(&st, "/local/domain/0/backend/vbd/4/0/state")
            .unwrap(),
        "2"
    );
    // Removing it works without a frontend answer once the frontend closes.
    ts.remove_device(&dev).unwrap();
    g.write(&st, "device/vbd/0/state", "6");
    ts.run().unwrap();
    assert!(ts.backend(&dev).is_none());
}

#[test]
fn backend_reports_missing_frontend_keys() {
    let st = store();
    let (mut ts, mut g) = domain(&st, 6);
    let dev = ts
        .add_device(6, DeviceClass::Vkbd, 0, BackendMode::Normal)
        .unwrap();
    g.write(&st, "device/vkbd/0/state", "4");
    ts.run().unwrap();
    assert_eq!(ts.backend(&dev).unwrap().state, XenbusState::CLOSING);
    assert!(g
        .read(&st, "/local/domain/0/backend/vkbd/6/0/error")
        .unwrap()
        .contains("page-ref"));
}

#[test]
fn shutdown_requests_and_balloon_target_reach_guest_watches() {
    let st = store();
    let (mut ts, mut g) = domain(&st, 2);
    let w = g.call(
        &st,
        xs::XS_WATCH,
        0,
        Message::strings(&["control/shutdown", "sd"]),
    );
    assert_eq!(w.payload, b"OK\0");
    g.call(
        &st,
        xs::XS_WATCH,
        0,
        Message::strings(&["memory/target", "mt"]),
    );
    g.take();
    for req in [
        ShutdownRequest::Suspend,
        ShutdownRequest::Poweroff,
        ShutdownRequest::Reboot,
    ] {
        ts.request_shutdown(2, req).unwrap();
        g.kick(&st);
        let ev = g.take();
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].payload, b"control/shutdown\0sd\0");
        assert_eq!(g.read(&st, "control/shutdown").unwrap(), req.as_str());
        // The guest acknowledges by clearing the request.
        g.write(&st, "control/shutdown", "");
    }
    ts.set_balloon_target(2, 1_048_576).unwrap();
    g.kick(&st);
    assert_eq!(g.take()[0].payload, b"memory/target\0mt\0");
    assert_eq!(g.read(&st, "memory/target").unwrap(), "1048576");
}

#[test]
fn eagain_fault_on_commit_is_retried_by_the_toolstack_and_seen_by_the_guest() {
    let st = store();
    let (mut ts, mut g) = domain(&st, 7);
    lock(&st).inject_commit_eagain(2, None);
    let attempts = ts
        .client()
        .transaction(5, |c, tx| c.write(tx, "/local/domain/7/data/x", b"1"))
        .unwrap();
    assert_eq!(attempts, 3);
    // Limited to the guest: dom0 commits pass, the guest's first commit fails.
    lock(&st).inject_commit_eagain(1, Some(7));
    assert_eq!(ts.client().transaction(1, |_, _| Ok(())).unwrap(), 1);
    let id = g.call(&st, xs::XS_TRANSACTION_START, 0, b"\0".to_vec());
    let tx: u32 = String::from_utf8_lossy(&id.payload)
        .trim_end_matches('\0')
        .parse()
        .unwrap();
    let end = g.call(&st, xs::XS_TRANSACTION_END, tx, b"T\0".to_vec());
    assert_eq!(end.payload, b"EAGAIN\0");
    let id = g.call(&st, xs::XS_TRANSACTION_START, 0, b"\0".to_vec());
    let tx: u32 = String::from_utf8_lossy(&id.payload)
        .trim_end_matches('\0')
        .parse()
        .unwrap();
    assert_eq!(
        g.call(&st, xs::XS_TRANSACTION_END, tx, b"T\0".to_vec())
            .payload,
        b"OK\0"
    );
}

#[test]
fn corrupted_ring_indices_cut_the_guest_off() {
    let st = store();
    let (_ts, mut g) = domain(&st, 8);
    assert_eq!(g.read(&st, "name").unwrap(), "win-guest-8");
    corrupt_ring_indices(g.page.as_mut_slice());
    g.kick(&st);
    assert_eq!(
        g.page.as_slice().load_u32(2072),
        2,
        "XENSTORE_ERROR_RINGIDX"
    );
    let conn = lock(&st).domain_connection(8).unwrap();
    assert_eq!(lock(&st).connection_error(conn), Some(2));
}

#[test]
fn slow_xenstored_answers_only_after_more_kicks() {
    let st = store();
    let (_ts, mut g) = domain(&st, 9);
    lock(&st).set_ring_delay(3);
    let id = g.send(&st, xs::XS_READ, 0, Message::strings(&["name"]));
    assert!(g.take().is_empty(), "no reply on the first pass");
    g.kick(&st);
    g.kick(&st);
    assert!(g.take().is_empty(), "nor on the next two");
    g.kick(&st);
    let got = g.take();
    assert_eq!(got.len(), 1);
    assert_eq!(
        (got[0].req_id, got[0].payload.as_slice()),
        (id, &b"win-guest-9"[..])
    );
    lock(&st).set_ring_delay(0);
    assert_eq!(g.read(&st, "domid").unwrap(), "9");
}

#[test]
fn destroying_a_domain_removes_its_store_state() {
    let st = store();
    let (mut ts, mut g) = domain(&st, 11);
    ts.add_device(11, DeviceClass::Vkbd, 0, BackendMode::Normal)
        .unwrap();
    g.write(&st, "data/x", "1");
    let w = ts.client().watch("@releaseDomain", "rel");
    assert!(w.is_ok());
    ts.client().take_events();
    ts.destroy_domain(11).unwrap();
    assert!(lock(&st).read("/local/domain/11").is_none());
    assert!(lock(&st)
        .read("/vm/00000000-0000-4000-8000-00000000000b")
        .is_none());
    assert!(lock(&st).read("/local/domain/0/backend/vkbd/11").is_none());
    let ev = ts.client().take_events();
    assert!(ev.iter().any(|e| e.path == "@releaseDomain"));
    assert_eq!(lock(&st).domain_connection(11), None);
    let err = ts.client().introduce(11, 1, 1).unwrap_err();
    assert_eq!(err, StoreError::Errno(Errno::ENOENT));
}

#[test]
fn slow_backend_connects_only_after_some_toolstack_runs() {
    let st = store();
    let (mut ts, mut g) = domain(&st, 12);
    let dev = ts
        .add_device(12, DeviceClass::Vkbd, 0, BackendMode::Slow(2))
        .unwrap();
    g.write(&st, "device/vkbd/0/page-ref", "9");
    g.write(&st, "device/vkbd/0/event-channel", "4");
    g.write(&st, "device/vkbd/0/state", "3");
    ts.run().unwrap();
    assert_eq!(ts.backend(&dev).unwrap().state, XenbusState::INIT_WAIT);
    ts.run().unwrap();
    assert_eq!(ts.backend(&dev).unwrap().state, XenbusState::INIT_WAIT);
    ts.run().unwrap();
    assert_eq!(ts.backend(&dev).unwrap().state, XenbusState::CONNECTED);
    assert_eq!(
        g.read(&st, "/local/domain/0/backend/vkbd/12/0/state")
            .unwrap(),
        "4"
    );
}
