//! Unit tests of the xenstored model (the conformance suite compares it with the real daemon).

use super::abi as xs;
use super::ring::RingMemory;
use super::*;

fn req(t: u32, payload: &[u8]) -> Message {
    Message::new(t, 7, 0, payload.to_vec())
}

fn one(xsd: &mut Xenstored, conn: ConnId, t: u32, payload: &[u8]) -> Message {
    let mut out = xsd.request(conn, &req(t, payload));
    assert!(!out.is_empty(), "no reply");
    out.remove(0)
}

#[test]
fn write_read_directory_round_trip() {
    let mut x = Xenstored::default();
    let c = x.connect_socket();
    assert_eq!(
        one(&mut x, c, xs::XS_WRITE, b"/a/b\0hello").payload,
        b"OK\0"
    );
    assert_eq!(one(&mut x, c, xs::XS_READ, b"/a/b\0").payload, b"hello");
    assert_eq!(one(&mut x, c, xs::XS_DIRECTORY, b"/a\0").payload, b"b\0");
    let e = one(&mut x, c, xs::XS_READ, b"/a/c\0");
    assert_eq!(
        (e.msg_type, e.payload.as_slice()),
        (xs::XS_ERROR, &b"ENOENT\0"[..])
    );
    assert_eq!(one(&mut x, c, xs::XS_GET_PERMS, b"/a\0").payload, b"n0\0");
}

#[test]
fn guest_ring_read_write_and_permissions() {
    let mut x = Xenstored::default();
    x.set_domain_exists(1, true);
    let c = x.connect_socket();
    one(&mut x, c, xs::XS_WRITE, b"/local/domain/1/name\0guest");
    one(&mut x, c, xs::XS_SET_PERMS, b"/local/domain/1\0n1\0");
    one(&mut x, c, xs::XS_SET_PERMS, b"/local/domain/1/name\0n1\0");
    one(&mut x, c, xs::XS_WRITE, b"/local/domain/0/name\0dom0");
    assert_eq!(
        one(&mut x, c, xs::XS_INTRODUCE, b"1\x00123\x003\x00").payload,
        b"OK\0"
    );
    let mut page = vec![0u8; 4096];
    let send = |page: &mut Vec<u8>, m: &Message| {
        let bytes = m.to_bytes();
        let prod = page.as_slice().load_u32(xs::OFF_REQ_PROD);
        for (i, b) in bytes.iter().enumerate() {
            page[(prod as usize + i) & 1023] = *b;
        }
        page.as_mut_slice()
            .store_u32(xs::OFF_REQ_PROD, prod + bytes.len() as u32);
    };
    let recv = |page: &mut Vec<u8>| -> Vec<Message> {
        let mut dec = wire::Decoder::default();
        let cons = page.as_slice().load_u32(xs::OFF_RSP_CONS);
        let prod = page.as_slice().load_u32(xs::OFF_RSP_PROD);
        for i in cons..prod {
            dec.push(&[page[1024 + (i as usize & 1023)]]);
        }
        page.as_mut_slice().store_u32(xs::OFF_RSP_CONS, prod);
        let mut out = Vec::new();
        while let Ok(Some(m)) = dec.next_message() {
            out.push(m);
        }
        out
    };
    let mut kicks = 0;
    send(&mut page, &req(xs::XS_READ, b"name\0"));
    send(&mut page, &req(xs::XS_READ, b"/local/domain/0/name\0"));
    let pass = x.process_ring(1, page.as_mut_slice(), &mut || kicks += 1);
    assert!(pass.notifications > 0 && kicks > 0);
    let got = recv(&mut page);
    assert_eq!(got[0].payload, b"guest");
    assert_eq!(got[1].payload, b"EACCES\0");
    send(&mut page, &req(xs::XS_WRITE, b"data/x\0v"));
    send(&mut page, &req(xs::XS_GET_PERMS, b"data/x\0"));
    x.process_ring(1, page.as_mut_slice(), &mut || {});
    let got = recv(&mut page);
    assert_eq!(got[0].payload, b"OK\0");
    assert_eq!(got[1].payload, b"n1\0");
}

#[test]
fn transaction_conflict_gives_eagain() {
    let mut x = Xenstored::default();
    let a = x.connect_socket();
    let b = x.connect_socket();
    one(&mut x, a, xs::XS_WRITE, b"/t/x\x001");
    let id = one(&mut x, a, xs::XS_TRANSACTION_START, b"\0").payload;
    assert_eq!(id, b"1\0");
    let mut m = req(xs::XS_READ, b"/t/x\0");
    m.tx_id = 1;
    assert_eq!(x.request(a, &m)[0].payload, b"1");
    one(&mut x, b, xs::XS_WRITE, b"/t/x\x002");
    let mut end = req(xs::XS_TRANSACTION_END, b"T\0");
    end.tx_id = 1;
    assert_eq!(x.request(a, &end)[0].payload, b"EAGAIN\0");
}

#[test]
fn watch_fires_initially_and_on_child_change() {
    let mut x = Xenstored::default();
    let a = x.connect_socket();
    let w = x.connect_socket();
    let out = x.request(w, &req(xs::XS_WATCH, b"/w\0tok\0"));
    assert_eq!(out.len(), 2);
    assert_eq!(out[1].msg_type, xs::XS_WATCH_EVENT);
    assert_eq!(out[1].payload, b"/w\0tok\0");
    one(&mut x, a, xs::XS_WRITE, b"/w/child\0v");
    let ev = x.drain(w);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].payload, b"/w/child\0tok\0");
}

/// Tiny deterministic generator for the robustness tests.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n.max(1)
    }
}

#[test]
fn hostile_input_never_panics_and_the_daemon_keeps_serving() {
    let mut rng = Lcg(7);
    let mut x = Xenstored::default();
    for d in 1..=3 {
        x.set_domain_exists(d, true);
        x.introduce(d, 0, d + 10).unwrap();
    }
    let alphabet: &[u8] = b"/ab@0\0-_xyz.";
    let mut pages = vec![vec![0u8; 4096]; 3];
    for round in 0..3000 {
        // Random but well-framed messages with random types, ids and payloads.
        let t = rng.next(26) as u32;
        let len = rng.next(40) as usize;
        let payload: Vec<u8> = (0..len)
            .map(|_| alphabet[rng.next(alphabet.len() as u64) as usize])
            .collect();
        let tx = if rng.next(4) == 0 {
            rng.next(4) as u32
        } else {
            0
        };
        let msg = Message::new(t, round, tx, payload);
        if rng.next(2) == 0 {
            let c = x.connect_socket();
            let _ = x.feed(c, &msg.to_bytes());
            x.drain(c);
            x.disconnect(c);
        } else {
            let d = 1 + rng.next(3) as usize;
            let page = &mut pages[d - 1];
            if rng.next(50) == 0 {
                // Garbage indices or bytes in the shared page.
                let off = 2048 + 4 * rng.next(7) as usize;
                page.as_mut_slice()
                    .store_u32(off, rng.next(u64::from(u32::MAX)) as u32);
            } else {
                let bytes = msg.to_bytes();
                let prod = page.as_slice().load_u32(2052);
                for (i, b) in bytes.iter().enumerate() {
                    page[(prod as usize + i) & 1023] = *b;
                }
                page.as_mut_slice()
                    .store_u32(2052, prod.wrapping_add(bytes.len() as u32));
            }
            x.process_ring(d as u32, page.as_mut_slice(), &mut || {});
            let prod = page.as_slice().load_u32(2060);
            page.as_mut_slice().store_u32(2056, prod);
            if page.as_slice().load_u32(2072) != 0 {
                // Cut off: the toolstack releases and re-introduces the domain.
                page.iter_mut().for_each(|b| *b = 0);
                x.release(d as u32).unwrap();
                x.introduce(d as u32, 0, d as u32 + 10).unwrap();
                x.reset_ring_if_introduced(d as u32, page.as_mut_slice());
            }
        }
    }
    // Still a working daemon.
    let c = x.connect_socket();
    assert_eq!(one(&mut x, c, xs::XS_WRITE, b"/after\0ok").payload, b"OK\0");
    assert_eq!(one(&mut x, c, xs::XS_READ, b"/after\0").payload, b"ok");
}

#[test]
fn reconnect_after_migration_gives_a_fresh_connection_even_when_cut_off() {
    let mut x = Xenstored::default();
    x.set_domain_exists(4, true);
    let c = x.connect_socket();
    one(&mut x, c, xs::XS_WRITE, b"/local/domain/4/k\0v");
    let old = x.introduce(4, 0, 9).unwrap();
    let mut page = vec![0u8; 4096];
    page.as_mut_slice().store_u32(2052, 5000);
    x.process_ring(4, page.as_mut_slice(), &mut || {});
    assert_eq!(x.connection_error(old), Some(2));
    // Re-introducing keeps it cut off, as the C daemon does.
    assert_eq!(x.introduce(4, 0, 9).unwrap(), old);
    assert_eq!(x.connection_error(old), Some(2));
    // Arriving on a new host does not.
    let new = x.reconnect_domain(4, 0, 9).unwrap();
    assert_ne!(new, old);
    assert_eq!(x.connection_error(new), None);
    x.reset_ring_if_introduced(4, page.as_mut_slice());
    assert_eq!(page.as_slice().load_u32(2052), 0);
    assert_eq!(x.read("/local/domain/4/k").as_deref(), Some(&b"v"[..]));
}
