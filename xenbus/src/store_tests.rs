//! Unit tests of STORE against a small in-test xenstored speaking the wire protocol over a
//! real shared page (spec §10 items 8–11).

use super::*;
use crate::shared::OwnedPage;
use crate::testing::{TestApi, TestOs};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use xen_include::status::*;

/// One message the server received.
#[derive(Clone, Debug)]
pub(crate) struct Seen {
    pub(crate) kind: XsdSockmsgType,
    pub(crate) req_id: u32,
    pub(crate) tx_id: u32,
    pub(crate) payload: Vec<u8>,
}

/// A minimal xenstored over the ring.
pub(crate) struct Server {
    ring: SharedMemory,
    inbuf: Vec<u8>,
    out: VecDeque<u8>,
    /// Most bytes moved per step in each direction (small → partial copies).
    chunk: usize,
    pub(crate) db: BTreeMap<Vec<u8>, Vec<u8>>,
    pub(crate) watches: Vec<(Vec<u8>, Vec<u8>)>,
    next_tx: u32,
    pub(crate) conflict: bool,
    pub(crate) error_next: Option<&'static [u8]>,
    before_reply: Vec<Vec<u8>>,
    pub(crate) seen: Vec<Seen>,
    stalled: bool,
}

fn message(kind: XsdSockmsgType, req_id: u32, tx_id: u32, payload: &[u8]) -> Vec<u8> {
    encode_request(kind, req_id, tx_id, &[payload]).unwrap()
}

fn split0(p: &[u8]) -> Vec<&[u8]> {
    p.split(|b| *b == 0).collect()
}

impl Server {
    fn new(ring: SharedMemory, chunk: usize) -> Self {
        Self {
            ring,
            inbuf: Vec::new(),
            out: VecDeque::new(),
            chunk,
            db: BTreeMap::new(),
            watches: Vec::new(),
            next_tx: 41,
            conflict: false,
            error_next: None,
            before_reply: Vec::new(),
            seen: Vec::new(),
            stalled: false,
        }
    }

    fn fire(&mut self, key: &[u8]) {
        let fired: Vec<Vec<u8>> = self
            .watches
            .iter()
            .filter(|(path, _)| key.starts_with(path))
            .map(|(_, token)| [key, b"\0", token, b"\0"].concat())
            .collect();
        for p in fired {
            self.out
                .extend(message(XsdSockmsgType::WATCH_EVENT, 0, 0, &p));
        }
    }

    fn handle(&mut self, m: Seen) {
        for raw in self.before_reply.drain(..) {
            self.out.extend(raw);
        }
        let parts = split0(&m.payload);
        let ok = b"OK\0".to_vec();
        let reply: Result<Vec<u8>, &[u8]> = if let Some(e) = self.error_next.take() {
            Err(e)
        } else {
            match m.kind {
                XsdSockmsgType::READ => self.db.get(parts[0]).cloned().ok_or(b"ENOENT\0"),
                XsdSockmsgType::WRITE => {
                    let key = parts[0].to_vec();
                    let value = m.payload[key.len() + 1..].to_vec();
                    self.db.insert(key.clone(), value);
                    self.fire(&key);
                    Ok(ok)
                }
                XsdSockmsgType::RM => {
                    let key = parts[0].to_vec();
                    self.db.retain(|k, _| !k.starts_with(&key));
                    Ok(ok)
                }
                XsdSockmsgType::DIRECTORY => {
                    let mut prefix = parts[0].to_vec();
                    prefix.push(b'/');
                    let mut names: Vec<Vec<u8>> = self
                        .db
                        .keys()
                        .filter(|k| k.starts_with(&prefix))
                        .map(|k| {
                            k[prefix.len()..]
                                .split(|b| *b == b'/')
                                .next()
                                .unwrap()
                                .to_vec()
                        })
                        .collect();
                    names.dedup();
                    Ok(names
                        .iter()
                        .flat_map(|n| [n.as_slice(), b"\0"].concat())
                        .collect())
                }
                XsdSockmsgType::TRANSACTION_START => {
                    self.next_tx += 1;
                    Ok(format!("{}\0", self.next_tx).into_bytes())
                }
                XsdSockmsgType::TRANSACTION_END => {
                    if std::mem::take(&mut self.conflict) && parts[0] == b"T" {
                        Err(b"EAGAIN\0")
                    } else {
                        Ok(ok)
                    }
                }
                XsdSockmsgType::WATCH => {
                    self.watches.push((parts[0].to_vec(), parts[1].to_vec()));
                    Ok(ok)
                }
                XsdSockmsgType::UNWATCH => {
                    self.watches
                        .retain(|(p, t)| !(p == parts[0] && t == parts[1]));
                    Ok(ok)
                }
                XsdSockmsgType::SET_PERMS => Ok(ok),
                _ => Err(b"EINVAL\0"),
            }
        };
        match reply {
            Ok(p) => self.out.extend(message(m.kind, m.req_id, m.tx_id, &p)),
            Err(e) => self
                .out
                .extend(message(XsdSockmsgType::ERROR, m.req_id, m.tx_id, e)),
        }
        if m.kind == XsdSockmsgType::WATCH {
            // xenstored fires every new watch once, right after the reply.
            let (path, token) = (parts[0].to_vec(), parts[1].to_vec());
            let p = [path.as_slice(), b"\0", &token, b"\0"].concat();
            self.out
                .extend(message(XsdSockmsgType::WATCH_EVENT, 0, 0, &p));
        }
        self.seen.push(m);
    }

    /// Move at most `chunk` bytes each way; true when anything moved towards the guest.
    fn step(&mut self) -> bool {
        if self.stalled {
            return false;
        }
        let r = self.ring.clone();
        // Requests.
        let mut cons = r.load_u32(REQ_CONS).unwrap();
        let prod = r.load_u32(REQ_PROD).unwrap();
        let mut moved = 0;
        while cons != prod && moved < self.chunk {
            let mut b = [0u8];
            r.read_bytes(REQ + (cons % RING) as usize, &mut b).unwrap();
            self.inbuf.push(b[0]);
            cons = cons.wrapping_add(1);
            moved += 1;
        }
        r.store_u32(REQ_CONS, cons).unwrap();
        while self.inbuf.len() >= HEADER_SIZE {
            let w = |i: usize| u32::from_le_bytes(self.inbuf[i..i + 4].try_into().unwrap());
            let len = w(12) as usize;
            if self.inbuf.len() < HEADER_SIZE + len {
                break;
            }
            let m = Seen {
                kind: XsdSockmsgType(w(0)),
                req_id: w(4),
                tx_id: w(8),
                payload: self.inbuf[HEADER_SIZE..HEADER_SIZE + len].to_vec(),
            };
            self.inbuf.drain(..HEADER_SIZE + len);
            self.handle(m);
        }
        // Responses.
        let cons = r.load_u32(RSP_CONS).unwrap();
        let mut prod = r.load_u32(RSP_PROD).unwrap();
        let mut sent = 0;
        while !self.out.is_empty() && prod.wrapping_sub(cons) < RING && sent < self.chunk {
            let b = self.out.pop_front().unwrap();
            r.write_bytes(RSP + (prod % RING) as usize, &[b]).unwrap();
            prod = prod.wrapping_add(1);
            sent += 1;
        }
        r.store_u32(RSP_PROD, prod).unwrap();
        sent != 0
    }
}

/// The store event channel, with the server answering synchronously on notify.
pub(crate) struct Channel {
    server: Mutex<Server>,
    count: AtomicU32,
    notifies: AtomicU32,
    waits: AtomicU32,
    /// Deliver no event for the next response (a lost event).
    lose: AtomicBool,
}

impl StoreChannel for Channel {
    fn notify(&self) {
        self.notifies.fetch_add(1, Ordering::SeqCst);
        if self.server.lock().unwrap().step() && !self.lose.swap(false, Ordering::SeqCst) {
            self.count.fetch_add(1, Ordering::SeqCst);
        }
    }
    fn count(&self) -> u32 {
        self.count.load(Ordering::SeqCst)
    }
    fn wait(&self, count: u32, _timeout: u64) -> NtStatus {
        self.waits.fetch_add(1, Ordering::SeqCst);
        if self.server.lock().unwrap().step() {
            self.count.fetch_add(1, Ordering::SeqCst);
        }
        if (self.count().wrapping_sub(count) as i32) >= 0 {
            STATUS_SUCCESS
        } else {
            STATUS_TIMEOUT
        }
    }
}

pub(crate) struct Rig {
    pub(crate) page: OwnedPage,
    pub(crate) api: &'static TestApi,
    pub(crate) os: &'static TestOs,
    pub(crate) channel: &'static Channel,
    pub(crate) store: Store,
}

impl Rig {
    pub(crate) fn server(&self) -> std::sync::MutexGuard<'_, Server> {
        self.channel.server.lock().unwrap()
    }
}

fn rig_at(chunk: usize, start_index: u32) -> Rig {
    let page = OwnedPage::new();
    let ring = page.view();
    for off in [REQ_CONS, REQ_PROD, RSP_CONS, RSP_PROD] {
        ring.store_u32(off, start_index).unwrap();
    }
    let channel: &'static Channel = Box::leak(Box::new(Channel {
        server: Mutex::new(Server::new(page.view(), chunk)),
        count: AtomicU32::new(0),
        notifies: AtomicU32::new(0),
        waits: AtomicU32::new(0),
        lose: AtomicBool::new(false),
    }));
    let api = TestApi::leak();
    let os = TestOs::leak(1);
    let store = Store::new(api, os, 0x1234_5678);
    store.connect(page.view(), Arc::new(channel));
    Rig {
        page,
        api,
        os,
        channel,
        store,
    }
}

pub(crate) fn rig() -> Rig {
    rig_at(4096, 0)
}

#[test]
fn write_and_read_use_the_documented_payload_shapes() {
    let r = rig();
    r.store
        .write(None, Some(b"device/vif/0"), b"state", b"4")
        .unwrap();
    assert_eq!(
        r.store.read(None, Some(b"device/vif/0"), b"state").unwrap(),
        b"4"
    );
    r.store.remove(None, None, b"device/vif/0/state").unwrap();
    let seen = r.server().seen.clone();
    assert_eq!(seen[0].kind, XsdSockmsgType::WRITE);
    assert_eq!(seen[0].payload, b"device/vif/0/state\x004");
    assert_eq!(seen[0].tx_id, 0);
    assert_eq!(seen[1].kind, XsdSockmsgType::READ);
    assert_eq!(seen[1].payload, b"device/vif/0/state\0");
    assert_eq!(seen[2].kind, XsdSockmsgType::RM);
    assert_eq!(seen[2].payload, b"device/vif/0/state\0");
    // req_id is a 16-bit counter from the seed.
    assert_eq!(seen[0].req_id, 0x5678);
    assert_eq!(seen[1].req_id, 0x5679);
    assert_eq!(
        r.store.read(None, None, b"device/vif/0/state"),
        Err(STATUS_OBJECT_NAME_NOT_FOUND)
    );
}

#[test]
fn wire_header_is_little_endian_type_id_tx_len() {
    let m = encode_request(XsdSockmsgType::WRITE, 0x0102, 7, &[b"a\0", b"xyz"]).unwrap();
    assert_eq!(
        m,
        [
            &11u32.to_le_bytes()[..],
            &0x102u32.to_le_bytes(),
            &7u32.to_le_bytes(),
            &5u32.to_le_bytes(),
            b"a\0xyz"
        ]
        .concat()
    );
    let big = vec![b'x'; XENSTORE_PAYLOAD_MAX + 1];
    assert_eq!(
        encode_request(XsdSockmsgType::WRITE, 1, 0, &[&big]),
        Err(STATUS_INVALID_BUFFER_SIZE)
    );
    assert!(encode_request(XsdSockmsgType::WRITE, 1, 0, &[&big[1..]]).is_ok());
}

#[test]
fn path_limits_count_the_separator_and_nul() {
    let rel = vec![b'a'; XENSTORE_REL_PATH_MAX - 1];
    assert!(make_key(None, &rel).is_ok());
    let rel2 = vec![b'a'; XENSTORE_REL_PATH_MAX];
    assert_eq!(make_key(None, &rel2), Err(STATUS_INVALID_BUFFER_SIZE));
    // prefix + '/' + node + NUL = 1000 + 1 + 1047 + 1 = 2049 > 2048
    assert_eq!(
        make_key(Some(&vec![b'p'; 1000]), &vec![b'n'; 1047]),
        Err(STATUS_INVALID_BUFFER_SIZE)
    );
    assert!(make_key(Some(&vec![b'p'; 1000]), &vec![b'n'; 1046]).is_ok());
    let mut abs = vec![b'/'];
    abs.extend(vec![b'a'; XENSTORE_ABS_PATH_MAX - 2]);
    assert!(make_key(None, &abs).is_ok());
    abs.push(b'a');
    assert_eq!(make_key(None, &abs), Err(STATUS_INVALID_BUFFER_SIZE));
    assert_eq!(make_key(None, b"a\0b"), Err(STATUS_INVALID_PARAMETER));
    let r = rig();
    assert_eq!(
        r.store.read(None, None, &rel2),
        Err(STATUS_INVALID_BUFFER_SIZE)
    );
    assert_eq!(
        r.store.watch_add(None, &rel2, 0x10),
        Err(STATUS_INVALID_BUFFER_SIZE)
    );
    assert!(
        r.server().seen.is_empty(),
        "nothing sent for a rejected path"
    );
}

#[test]
fn printf_values_longer_than_1023_are_rejected() {
    let r = rig();
    r.store.printf(None, None, b"k", &[b'v'; 1023]).unwrap();
    assert_eq!(
        r.store.printf(None, None, b"k", &[b'v'; 1024]),
        Err(STATUS_INVALID_BUFFER_SIZE)
    );
    assert_eq!(r.server().seen.len(), 1);
}

#[test]
fn error_strings_map_to_ntstatus() {
    let r = rig();
    for (e, st) in [
        (&b"ENOENT\0"[..], STATUS_OBJECT_NAME_NOT_FOUND),
        (b"EQUOTA\0", STATUS_QUOTA_EXCEEDED),
        (b"EAGAIN\0", STATUS_RETRY),
        (b"EACCES\0", STATUS_ACCESS_DENIED),
        (b"EWHATEVER\0", STATUS_UNSUCCESSFUL),
    ] {
        r.server().error_next = Some(e);
        assert_eq!(r.store.write(None, None, b"k", b"v"), Err(st));
    }
}

#[test]
fn directory_is_double_nul_listing_and_empty_is_path_not_found() {
    let r = rig();
    r.store
        .write(None, None, b"device/vif/0/state", b"1")
        .unwrap();
    r.store
        .write(None, None, b"device/vbd/768/state", b"1")
        .unwrap();
    assert_eq!(
        r.store.directory(None, None, b"device").unwrap(),
        b"vbd\0vif\0"
    );
    assert_eq!(
        r.store.directory(None, None, b"device/vif/0/state"),
        Err(STATUS_OBJECT_PATH_NOT_FOUND)
    );
}

#[test]
fn permissions_are_encoded_one_nul_terminated_entry_each() {
    use xen_include::interfaces::store::StorePermissionMask as M;
    let p = |domain, mask| StorePermission { domain, mask };
    assert_eq!(
        encode_permissions(&[p(5, M::NONE), p(0, M::READ), p(7, M::WRITE), p(9, M(3))]).unwrap(),
        b"n5\0r0\0w7\0b9\0"
    );
    assert_eq!(
        encode_permissions(&[p(1, M(4))]),
        Err(STATUS_INVALID_PARAMETER)
    );
    let r = rig();
    r.store
        .permissions_set(None, Some(b"data"), b"x", &[p(3, M::READ)])
        .unwrap();
    assert_eq!(r.server().seen[0].payload, b"data/x\0r3\0");
}

#[test]
fn transactions_carry_their_id_and_retry_on_eagain() {
    let r = rig();
    let t = r.store.transaction_start().unwrap();
    r.store.write(Some(t), None, b"a", b"1").unwrap();
    r.server().conflict = true;
    assert_eq!(r.store.transaction_end(t, true), Err(STATUS_RETRY));
    assert_eq!(r.store.outstanding(), (0, 0), "handle freed on RETRY");
    let seen = r.server().seen.clone();
    assert_eq!(seen[0].kind, XsdSockmsgType::TRANSACTION_START);
    assert_eq!(seen[0].payload, b"\0");
    assert_eq!(seen[1].tx_id, 42);
    assert_eq!(seen[2].kind, XsdSockmsgType::TRANSACTION_END);
    assert_eq!(
        (seen[2].tx_id, seen[2].payload.as_slice()),
        (42, &b"T\0"[..])
    );
    // Caller retries the whole transaction.
    let t = r.store.transaction_start().unwrap();
    r.store.write(Some(t), None, b"a", b"2").unwrap();
    r.store.transaction_end(t, false).unwrap();
    assert_eq!(r.server().seen.last().unwrap().payload, b"F\0");
    assert_eq!(r.store.outstanding(), (0, 0));
}

#[test]
fn a_suspend_invalidates_transactions_without_a_round_trip() {
    let r = rig();
    let t = r.store.transaction_start().unwrap();
    r.store.suspend_early();
    r.store.resume_late(r.page.view(), Arc::new(r.channel));
    let before = r.server().seen.len();
    assert_eq!(r.store.read(Some(t), None, b"a"), Err(STATUS_UNSUCCESSFUL));
    assert_eq!(
        r.store.write(Some(t), None, b"a", b"1"),
        Err(STATUS_UNSUCCESSFUL)
    );
    assert_eq!(r.store.transaction_end(t, true), Err(STATUS_RETRY));
    assert_eq!(r.server().seen.len(), before, "no request sent");
    assert_eq!(r.store.outstanding(), (0, 0));
    assert_eq!(
        r.store.transaction_end(t, true),
        Err(STATUS_INVALID_PARAMETER)
    );
}

/// The HIGH_LEVEL early phase never spins on the state lock (a DISPATCH_LEVEL lock):
/// found held, it logs and leaves the marking to the late phase, which still fails the
/// transaction with STATUS_RETRY. (Spinning there would wait for ever: the holder is
/// captured below it.)
#[test]
fn suspend_early_finding_the_lock_held_leaves_the_marking_to_resume_late() {
    let r = rig();
    let t = r.store.transaction_start().unwrap();
    {
        let _held = r.store.state.lock();
        common::irql::model::raised(common::irql::HIGH_LEVEL, || r.store.suspend_early());
    }
    assert!(r.api.logged("STORE: busy at suspend"));
    r.store.resume_late(r.page.view(), Arc::new(r.channel));
    let before = r.server().seen.len();
    assert_eq!(r.store.transaction_end(t, true), Err(STATUS_RETRY));
    assert_eq!(r.server().seen.len(), before, "no request sent");
    assert_eq!(r.store.outstanding(), (0, 0));
}

#[test]
fn watch_tokens_fire_set_events_and_resume_leaves_them_inactive() {
    let r = rig();
    let ev = 0x1000usize;
    let w = r
        .store
        .watch_add(Some(b"control"), b"shutdown", ev)
        .unwrap();
    let (path, token) = r.server().watches[0].clone();
    assert_eq!(path, b"control/shutdown");
    let token = String::from_utf8(token).unwrap();
    assert_eq!(token, format!("TOK|{:016X}|{:04X}", w, 0x1234));
    assert_eq!(r.os.sets(ev), 1, "initial fire");
    r.store
        .write(None, None, b"control/shutdown", b"suspend")
        .unwrap();
    assert_eq!(r.os.sets(ev), 2);
    // A token for no watch is logged as spurious and sets nothing.
    let p = b"control/shutdown\0TOK|0000000000000001|BEEF\0";
    r.server()
        .before_reply
        .push(message(XsdSockmsgType::WATCH_EVENT, 0, 0, p));
    r.store.write(None, None, b"other", b"x").unwrap();
    assert!(r.api.logged("SPURIOUS WATCH EVENT (control/shutdown)"));
    assert_eq!(r.os.sets(ev), 2);
    // Malformed tokens are ignored.
    for bad in [
        &b"p\0TOK|0000000000000001|BEE\0"[..],
        b"p\0TOX|0000000000000001|BEEF\0",
        b"p\0TOK|000000000000000G|BEEF\0",
        b"p\0TOK|0000000000000001|BEEF",
    ] {
        assert!(parse_watch_event(bad).is_none());
    }
    // Suspend: inactive, events set at resume, no UNWATCH for an inactive watch.
    r.store.suspend_early();
    r.server().stalled = true;
    r.server().stalled = false;
    r.store.resume_late(r.page.view(), Arc::new(r.channel));
    assert_eq!(r.os.sets(ev), 3, "every watch event set at resume");
    r.store.write(None, None, b"control/shutdown", b"").unwrap();
    assert_eq!(r.os.sets(ev), 3, "inactive watch not signalled");
    let before = r.server().seen.len();
    r.store.watch_remove(w).unwrap();
    assert_eq!(
        r.server().seen.len(),
        before,
        "no UNWATCH for an inactive watch"
    );
    // Re-add: active again, UNWATCH sent on removal.
    let w = r.store.watch_add(None, b"control/shutdown", ev).unwrap();
    assert_eq!(r.os.sets(ev), 4);
    assert_eq!(
        r.server().watches.len(),
        2,
        "the old server still has the stale one"
    );
    r.store.watch_remove(w).unwrap();
    assert_eq!(
        r.server().seen.last().unwrap().kind,
        XsdSockmsgType::UNWATCH
    );
    assert_eq!(r.server().watches.len(), 1);
    assert_eq!(r.store.outstanding(), (0, 0));
}

#[test]
fn watch_ids_skip_ids_in_use() {
    let mut c = StoreClient::new(0xFFFF_0000);
    let (_, t1) = c.add_watch(b"a".to_vec(), 1).unwrap();
    let (h2, t2) = c.add_watch(b"b".to_vec(), 2).unwrap();
    assert!(t1.ends_with(b"|FFFF"));
    assert!(t2.ends_with(b"|0000"));
    c.remove_watch(h2);
    c.next_watch_id = 0xFFFF;
    let (_, t3) = c.add_watch(b"c".to_vec(), 3).unwrap();
    assert!(t3.ends_with(b"|0000"), "0xFFFF is in use");
}

#[test]
fn partial_copies_across_the_wrap_with_a_slow_server() {
    // 7 bytes per step each way, indices starting just below the u32 wrap.
    let r = rig_at(7, u32::MAX - 100);
    let value: Vec<u8> = (0..3000).map(|i| b'a' + (i % 26) as u8).collect();
    r.store.write(None, None, b"big", &value).unwrap();
    assert_eq!(r.store.read(None, None, b"big").unwrap(), value);
    let ring = r.page.view();
    assert!(
        ring.load_u32(REQ_PROD).unwrap() < 10_000,
        "free-running index wrapped"
    );
    assert_eq!(
        ring.load_u32(RSP_CONS).unwrap(),
        ring.load_u32(RSP_PROD).unwrap()
    );
    // Every step moves at most 7 bytes, so thousands of bytes need hundreds of kicks.
    assert!(r.channel.notifies.load(Ordering::SeqCst) > 400);
}

#[test]
fn a_request_larger_than_the_ring_is_written_in_pieces() {
    let r = rig_at(4096, 0);
    let value = vec![b'z'; 1023];
    let key = vec![b'k'; 2000];
    r.store.printf(None, None, &key, &value).unwrap();
    assert_eq!(r.server().seen[0].payload.len(), 2000 + 1 + 1023);
}

#[test]
fn spurious_and_mismatched_responses() {
    let r = rig();
    r.server()
        .before_reply
        .push(message(XsdSockmsgType::READ, 0xDEAD, 0, b"junk\0"));
    r.store.write(None, None, b"k", b"v").unwrap();
    assert!(r.api.logged("SPURIOUS RESPONSE ID 0000DEAD"));
    // Ignorable types are dropped.
    r.server()
        .before_reply
        .push(message(XsdSockmsgType::GET_DOMAIN_PATH, 1, 0, b"/local\0"));
    assert_eq!(r.store.read(None, None, b"k").unwrap(), b"v");
    assert!(r.api.logged("IGNORING RESPONSE TYPE 0000000A"));
    // A reply of the wrong type fails the request.
    let mut c = StoreClient::new(0);
    let id = c.submit(XsdSockmsgType::READ, 0, &[b"k\0"]).unwrap();
    let page = OwnedPage::new();
    let ring = page.view();
    c.poll(&ring, &mut || {});
    let reply = message(XsdSockmsgType::WRITE, id, 0, b"OK\0");
    ring.write_bytes(RSP, &reply).unwrap();
    ring.store_u32(RSP_PROD, reply.len() as u32).unwrap();
    c.poll(&ring, &mut || {});
    assert_eq!(c.take(id), Some(Err(STATUS_UNSUCCESSFUL)));
}

#[test]
fn a_lost_event_is_recovered_by_the_poll_period() {
    let r = rig();
    r.channel.lose.store(true, Ordering::SeqCst);
    r.server().chunk = 8; // the reply needs more than one step
    r.store.write(None, None, b"k", b"v").unwrap();
    assert!(r.channel.waits.load(Ordering::SeqCst) >= 1);
}

#[test]
fn corrupted_indices_fail_requests_until_resume() {
    let r = rig();
    r.store.write(None, None, b"k", b"v").unwrap();
    let ring = r.page.view();
    let cons = ring.load_u32(RSP_CONS).unwrap();
    ring.store_u32(RSP_PROD, cons.wrapping_add(5000)).unwrap();
    assert_eq!(
        r.store.read(None, None, b"k"),
        Err(STATUS_UNEXPECTED_IO_ERROR)
    );
    assert!(r.api.logged("response ring indices corrupt"));
    assert_eq!(
        r.store.write(None, None, b"k", b"w"),
        Err(STATUS_UNEXPECTED_IO_ERROR)
    );
    // The toolstack repairs the ring; resume clears the fault.
    ring.store_u32(RSP_PROD, cons).unwrap();
    r.store.suspend_early();
    r.store.resume_late(r.page.view(), Arc::new(r.channel));
    assert_eq!(r.store.read(None, None, b"k").unwrap(), b"v");
    // Request ring: consumer ahead of producer.
    let prod = ring.load_u32(REQ_PROD).unwrap();
    ring.store_u32(REQ_CONS, prod.wrapping_add(1)).unwrap();
    assert_eq!(
        r.store.read(None, None, b"k"),
        Err(STATUS_UNEXPECTED_IO_ERROR)
    );
    assert!(r.api.logged("request ring indices corrupt"));
}

#[test]
fn oversized_or_unknown_response_headers_fault_the_stream() {
    for (kind, len) in [(XsdSockmsgType::READ.0, 4097u32), (0x77, 4)] {
        let mut c = StoreClient::new(0);
        let id = c.submit(XsdSockmsgType::READ, 0, &[b"k\0"]).unwrap();
        let page = OwnedPage::new();
        let ring = page.view();
        c.poll(&ring, &mut || {});
        let mut h = Vec::new();
        for w in [kind, id, 0, len] {
            h.extend_from_slice(&w.to_le_bytes());
        }
        ring.write_bytes(RSP, &h).unwrap();
        ring.store_u32(RSP_PROD, 16).unwrap();
        let out = c.poll(&ring, &mut || {});
        assert!(out.warnings[0].as_str().contains("bad response header"));
        assert_eq!(c.take(id), Some(Err(STATUS_UNEXPECTED_IO_ERROR)));
        assert!(c.faulted());
    }
}

#[test]
fn the_watchdog_kicks_a_stalled_ring() {
    let r = rig();
    r.store.write(None, None, b"k", b"v").unwrap();
    assert!(!r.store.watchdog_tick());
    // Server stops consuming; a request sits in the ring.
    r.server().stalled = true;
    {
        let mut s = r.store.state.lock();
        s.client.submit(XsdSockmsgType::READ, 0, &[b"k\0"]).unwrap();
    }
    r.store.poll();
    let notifies = r.channel.notifies.load(Ordering::SeqCst);
    r.server().stalled = false;
    assert!(r.store.watchdog_tick());
    assert!(r.channel.notifies.load(Ordering::SeqCst) > notifies);
    assert!(r.api.logged("ring stalled"));
    assert!(r.api.logged("STORE: req_cons = "));
}

#[test]
fn disconnected_store_fails_cleanly() {
    let api = TestApi::leak();
    let os = TestOs::leak(1);
    let s = Store::new(api, os, 0);
    assert_eq!(s.read(None, None, b"k"), Err(STATUS_UNSUCCESSFUL));
    assert!(!s.watchdog_tick());
}

/// Spec §5.10 submission, bounded (a deliberate difference from upstream's endless wait):
/// with xenstored not moving, a request fails with STATUS_IO_TIMEOUT after
/// REQUEST_PERIODS poll periods, notifying again after each; once unresponsive, the next
/// one after a single period; replies that come late are dropped, not matched to newer
/// requests, and the store works again.
#[test]
fn a_request_xenstored_never_answers_times_out_and_its_late_reply_is_dropped() {
    let r = rig();
    r.store.write(None, None, b"old", b"1").unwrap();
    r.store.write(None, None, b"new", b"2").unwrap();
    r.server().stalled = true;
    let (waits, notifies) = (
        r.channel.waits.load(Ordering::SeqCst),
        r.channel.notifies.load(Ordering::SeqCst),
    );
    assert_eq!(r.store.read(None, None, b"old"), Err(STATUS_IO_TIMEOUT));
    assert_eq!(
        r.channel.waits.load(Ordering::SeqCst) - waits,
        REQUEST_PERIODS
    );
    // The submission's notification, then one after every period but the last.
    assert_eq!(
        r.channel.notifies.load(Ordering::SeqCst) - notifies,
        REQUEST_PERIODS
    );
    assert!(r.api.logged("period 1/6); notifying again"));
    assert!(r.api.logged("got no reply in 30 s; abandoned (OnRing)"));
    // The store's state is logged with it (upstream's watchdog triggers its debug dump).
    assert!(r
        .api
        .logged("STORE: submitted 0 pending 1 abandoned 1 unresponsive true faulted false"));
    assert!(r.api.logged("STORE: req_cons = "));
    assert!(r.store.unresponsive());
    let waits = r.channel.waits.load(Ordering::SeqCst);
    assert_eq!(r.store.read(None, None, b"old"), Err(STATUS_IO_TIMEOUT));
    assert_eq!(
        r.channel.waits.load(Ordering::SeqCst) - waits,
        UNRESPONSIVE_PERIODS
    );
    assert!(r.api.logged("got no reply in 5 s"));
    assert_eq!(r.store.abandoned(), 2);
    // xenstored comes back: it answers the two abandoned READs of "old" first; the new
    // READ of "new" must get its own reply.
    r.server().stalled = false;
    assert_eq!(r.store.read(None, None, b"new").unwrap(), b"2");
    assert!(r.api.logged("late reply (type 0x2) to abandoned request"));
    assert_eq!(r.store.abandoned(), 0);
    assert!(!r.store.unresponsive());
    let seen = r.server().seen.clone();
    let reads: Vec<&[u8]> = seen
        .iter()
        .filter(|m| m.kind == XsdSockmsgType::READ)
        .map(|m| m.payload.as_slice())
        .collect();
    assert_eq!(reads, [&b"old\0"[..], b"old\0", b"new\0"]);
    // All request ids distinct.
    let mut ids: Vec<u32> = seen.iter().map(|m| m.req_id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), seen.len());
    assert_eq!(r.store.outstanding(), (0, 0));
}

/// A request cut off half-written (the ring filled) keeps its place: the rest goes out
/// when xenstored consumes again, so the stream stays whole; a request that never reached
/// the ring is removed and never seen by xenstored.
#[test]
fn a_half_written_request_is_finished_and_an_unsent_one_is_dropped() {
    let r = rig();
    r.server().stalled = true;
    let value: Vec<u8> = (0..2000).map(|i| b'a' + (i % 26) as u8).collect();
    assert_eq!(
        r.store.write(None, None, b"big", &value),
        Err(STATUS_IO_TIMEOUT)
    );
    assert!(r.api.logged("abandoned (OnRing)"));
    // The ring is full: this one cannot be written at all.
    assert_eq!(
        r.store.write(None, None, b"small", b"x"),
        Err(STATUS_IO_TIMEOUT)
    );
    assert!(r.api.logged("abandoned (NeverSent)"));
    assert_eq!(r.store.abandoned(), 1);
    r.server().stalled = false;
    assert_eq!(r.store.read(None, None, b"big").unwrap(), value);
    assert_eq!(r.server().db.get(&b"small"[..]), None, "never sent");
    let kinds: Vec<XsdSockmsgType> = r.server().seen.iter().map(|m| m.kind).collect();
    assert_eq!(kinds, [XsdSockmsgType::WRITE, XsdSockmsgType::READ]);
    assert_eq!(r.store.abandoned(), 0);
}

/// A TRANSACTION_START or WATCH whose submitter gave up still takes effect in xenstored
/// when it is answered late: the client undoes it (TRANSACTION_END F, UNWATCH).
#[test]
fn late_transaction_starts_and_watches_are_undone() {
    let r = rig();
    r.server().stalled = true;
    assert_eq!(r.store.transaction_start(), Err(STATUS_IO_TIMEOUT));
    assert_eq!(r.store.watch_add(None, b"w", 0x99), Err(STATUS_IO_TIMEOUT));
    assert_eq!(r.store.outstanding(), (0, 0), "no handle was handed out");
    r.server().stalled = false;
    r.store.write(None, None, b"k", b"v").unwrap();
    for _ in 0..4 {
        r.store.poll();
    }
    assert!(r.api.logged("aborting its transaction 42"));
    assert!(r.api.logged("removing the watch it added"));
    let seen = r.server().seen.clone();
    let end = seen
        .iter()
        .find(|m| m.kind == XsdSockmsgType::TRANSACTION_END)
        .expect("the late transaction is ended");
    assert_eq!((end.tx_id, end.payload.as_slice()), (42, &b"F\0"[..]));
    assert!(r.server().watches.is_empty(), "the late watch is removed");
    assert_eq!(r.store.abandoned(), 0);
    assert_eq!(
        r.os.sets(0x99),
        0,
        "the abandoned watch's event is never set"
    );
}

#[test]
fn abandoned_ids_are_not_reused_and_their_number_is_capped() {
    let mut c = StoreClient::new(0);
    let page = OwnedPage::new();
    let ring = page.view();
    let consume = |ring: &SharedMemory| {
        let prod = ring.load_u32(REQ_PROD).unwrap();
        ring.store_u32(REQ_CONS, prod).unwrap();
    };
    let first = c.submit(XsdSockmsgType::READ, 0, &[b"k\0"]).unwrap();
    c.poll(&ring, &mut || {});
    consume(&ring);
    assert_eq!(c.abandon(first), Abandoned::OnRing);
    c.next_req_id = first as u16;
    let next = c.submit(XsdSockmsgType::READ, 0, &[b"k\0"]).unwrap();
    assert_ne!(next, first, "an abandoned request's id stays reserved");
    assert_eq!(c.abandon(next), Abandoned::NeverSent);
    for _ in 1..ABANDONED_MAX {
        let id = c.submit(XsdSockmsgType::READ, 0, &[b"k\0"]).unwrap();
        c.poll(&ring, &mut || {});
        consume(&ring);
        assert_eq!(c.abandon(id), Abandoned::OnRing);
    }
    assert_eq!(c.abandoned(), ABANDONED_MAX);
    assert_eq!(
        c.submit(XsdSockmsgType::READ, 0, &[b"k\0"]),
        Err(STATUS_INSUFFICIENT_RESOURCES)
    );
    // The late reply to the first frees its slot (and is not handed to anyone).
    let reply = message(XsdSockmsgType::READ, first, 0, b"v");
    let prod = ring.load_u32(RSP_PROD).unwrap();
    for (i, b) in reply.iter().enumerate() {
        ring.write_bytes(RSP + ((prod as usize + i) % XENSTORE_RING_SIZE), &[*b])
            .unwrap();
    }
    ring.store_u32(RSP_PROD, prod + reply.len() as u32).unwrap();
    let out = c.poll(&ring, &mut || {});
    assert!(out.warnings[0].as_str().contains("late reply"));
    assert_eq!(c.take(first), None);
    assert_eq!(c.abandoned(), ABANDONED_MAX - 1);
    assert!(c.submit(XsdSockmsgType::READ, 0, &[b"k\0"]).is_ok());
    // A resume (new xenstored connection) forgets them all.
    c.resume();
    assert_eq!(c.abandoned(), 0);
    assert_eq!(c.outstanding(), 0);
}

/// A store event that finds the lock taken (its holder may be the very notification it
/// interrupts) is not lost: the holder polls when it releases the lock. Before, the event
/// waited for the next request or the 15 s watchdog.
#[test]
fn a_store_event_while_the_lock_is_held_is_polled_on_release() {
    let r = rig();
    let w = r.store.watch_add(None, b"k", 0x55).unwrap();
    assert_eq!(r.os.sets(0x55), 1, "initial fire");
    // xenstored writes a watch event into the ring while someone holds the lock.
    let held = r.store.lock();
    r.server().fire(b"k");
    assert!(r.server().step());
    r.store.poll_if_free(); // the event callback: cannot take the lock
    assert_eq!(r.os.sets(0x55), 1, "not polled while held");
    drop(held);
    assert_eq!(r.os.sets(0x55), 2, "polled on release");
    // Without a holder the callback polls itself.
    r.server().fire(b"k");
    assert!(r.server().step());
    r.store.poll_if_free();
    assert_eq!(r.os.sets(0x55), 3);
    r.store.watch_remove(w).unwrap();
}

#[test]
fn the_debug_dump_never_spins_and_skips_the_ring_when_crashing() {
    let r = rig();
    let t = r.store.transaction_start().unwrap();
    let dump = |crashing| {
        let mut lines = Vec::new();
        r.store
            .debug_dump(crashing, &mut |l| lines.push(l.to_string()));
        lines
    };
    let lines = dump(false);
    assert!(lines[0].starts_with("STORE: req_cons = "), "{lines:?}");
    assert!(lines.contains(&"STORE: transaction 42 active true".to_string()));
    let lines = dump(true);
    assert!(!lines.iter().any(|l| l.contains("req_cons")), "{lines:?}");
    let held = r.store.state.try_lock().unwrap();
    assert_eq!(dump(false), ["STORE: busy"]);
    drop(held);
    r.store.transaction_end(t, false).unwrap();
    let api = TestApi::leak();
    let s = Store::new(api, TestOs::leak(1), 0);
    let mut lines = Vec::new();
    s.debug_dump(false, &mut |l| lines.push(l.to_string()));
    assert_eq!(lines[0], "STORE: disconnected");
}

/// The bounded wait counts quiet periods (each a real relative wait) instead of measuring
/// them with the wall clock: a clock stepped back (which read as a huge unsigned wait) or
/// forward (a time sync, a resume) while xenstored is quiet must not cut the 30 s short.
/// Before, either step timed the request out after its first 5 s period.
#[test]
fn a_stepped_wall_clock_does_not_cut_the_wait_short() {
    const HOUR: i64 = 3600 * 10_000_000;
    for step in [-HOUR, HOUR] {
        let r = rig();
        r.os.clock.store(1_000 * HOUR, Ordering::SeqCst);
        r.os.clock_step.store(step, Ordering::SeqCst);
        r.server().stalled = true;
        let waits = r.channel.waits.load(Ordering::SeqCst);
        assert_eq!(r.store.read(None, None, b"k"), Err(STATUS_IO_TIMEOUT));
        assert_eq!(
            r.channel.waits.load(Ordering::SeqCst) - waits,
            REQUEST_PERIODS,
            "clock step {step}"
        );
        assert!(r.api.logged("got no reply in 30 s"), "clock step {step}");
    }
}

/// A store event recorded while the lock was held is not polled by the resume's HIGH_LEVEL
/// `suspend_early` (it only tries the lock, and that release polls nothing): the poll
/// notifies xenstored, allocates and sets events, none allowed there. The next release at
/// PASSIVE_LEVEL polls it.
#[test]
fn a_recorded_store_event_is_not_polled_at_high_level() {
    let r = rig();
    let ring = r.page.view();
    let reply = message(XsdSockmsgType::READ, 0xDEAD, 0, b"v");
    let prod = ring.load_u32(RSP_PROD).unwrap();
    for (i, b) in reply.iter().enumerate() {
        ring.write_bytes(RSP + ((prod as usize + i) % XENSTORE_RING_SIZE), &[*b])
            .unwrap();
    }
    ring.store_u32(RSP_PROD, prod + reply.len() as u32).unwrap();
    let cons = ring.load_u32(RSP_CONS).unwrap();
    r.store.repoll.store(true, Ordering::SeqCst);
    common::irql::model::raised(common::irql::HIGH_LEVEL, || r.store.suspend_early());
    assert_eq!(
        ring.load_u32(RSP_CONS).unwrap(),
        cons,
        "no poll at HIGH_LEVEL"
    );
    assert!(r.store.connected());
    assert_eq!(
        ring.load_u32(RSP_CONS).unwrap(),
        cons + reply.len() as u32,
        "polled by the next release"
    );
    assert!(r.api.logged("SPURIOUS RESPONSE ID 0000DEAD"));
}
