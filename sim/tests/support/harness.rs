//! Runs scripted XenStore request sequences against a target (the simulator or the real
//! daemon) and records a normalised transcript of everything every connection received.
//!
//! Script syntax (one step per line, `#` comments):
//! ```text
//! case NAME                  start a case (fresh daemon)
//! args -E 20 -W 3            real daemon options; the simulator takes the same quotas
//! domains 1 2                domains that exist (ring files / set_domain_exists)
//! A WRITE "/a\0v"            request on socket connection A (any name not starting with G)
//! G1 READ "name\0"           request on domain 1's ring (attached on first use)
//! A TRANSACTION_END@t1 "T\0" request inside the first transaction started on A
//! A READ@77 "/a\0"           request with a literal transaction id
//! A 99 ""                    request with a numeric message type
//! A raw "\x02\x00..."        raw bytes on the connection (no reply awaited)
//! G1 ring                    record the ring page's indices and error field
//! G1 poke req_prod 5000      store a value in a ring field and kick
//! G1 detach / A close        forget a ring connection / close a socket
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use xen_sim::xenstored::wire::{Decoder, Header, Message};
use xen_sim::xenstored::{Config, ConnId, Quotas, Xenstored};

use super::realxs::{FilePage, RealDaemon};

/// Message type names, in `xsd_sockmsg_type` order.
const TYPE_NAMES: &[(u32, &str)] = &[
    (0, "CONTROL"),
    (1, "DIRECTORY"),
    (2, "READ"),
    (3, "GET_PERMS"),
    (4, "WATCH"),
    (5, "UNWATCH"),
    (6, "TRANSACTION_START"),
    (7, "TRANSACTION_END"),
    (8, "INTRODUCE"),
    (9, "RELEASE"),
    (10, "GET_DOMAIN_PATH"),
    (11, "WRITE"),
    (12, "MKDIR"),
    (13, "RM"),
    (14, "SET_PERMS"),
    (15, "WATCH_EVENT"),
    (16, "ERROR"),
    (17, "IS_DOMAIN_INTRODUCED"),
    (18, "RESUME"),
    (19, "SET_TARGET"),
    (21, "RESET_WATCHES"),
    (22, "DIRECTORY_PART"),
];

fn type_name(t: u32) -> String {
    TYPE_NAMES
        .iter()
        .find(|(n, _)| *n == t)
        .map_or_else(|| t.to_string(), |(_, s)| (*s).to_string())
}

fn type_from_name(s: &str) -> Option<u32> {
    TYPE_NAMES
        .iter()
        .find(|(_, n)| *n == s)
        .map(|(t, _)| *t)
        .or_else(|| s.parse().ok())
}

/// Escapes a payload for the transcript.
pub fn escape(bytes: &[u8]) -> String {
    let mut s = String::new();
    for &b in bytes {
        match b {
            0 => s.push_str("\\0"),
            b'\\' => s.push_str("\\\\"),
            b'"' => s.push_str("\\\""),
            0x20..=0x7e => s.push(b as char),
            _ => {
                let _ = write!(s, "\\x{b:02x}");
            }
        }
    }
    s
}

fn unescape(s: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            let c = *bytes.get(i + 1).ok_or("dangling backslash")?;
            match c {
                b'0' => out.push(0),
                b'n' => out.push(b'\n'),
                b'\\' => out.push(b'\\'),
                b'"' => out.push(b'"'),
                b'x' => {
                    let h = s.get(i + 2..i + 4).ok_or("short \\x")?;
                    out.push(u8::from_str_radix(h, 16).map_err(|e| e.to_string())?);
                    i += 2;
                }
                _ => return Err(format!("bad escape \\{}", c as char)),
            }
            i += 2;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(out)
}

/// Expands `{N*TEXT}` repetitions inside a payload literal (for long paths and values).
fn expand(s: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').ok_or("unclosed {")? + start;
        let inner = &rest[start + 1..end];
        let (n, text) = inner.split_once('*').ok_or("{N*TEXT} expected")?;
        let n: usize = n.parse().map_err(|_| format!("bad count in {{{inner}}}"))?;
        out.push_str(&text.repeat(n));
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Transaction reference of a request.
#[derive(Clone, Copy, Debug)]
pub enum TxRef {
    None,
    Nth(usize),
    Literal(u32),
}

/// One scripted step.
#[derive(Clone, Debug)]
pub enum Step {
    Request {
        conn: String,
        msg_type: u32,
        tx: TxRef,
        payload: Vec<u8>,
    },
    Raw {
        conn: String,
        bytes: Vec<u8>,
    },
    RingState {
        conn: String,
    },
    Poke {
        conn: String,
        field: String,
        value: u32,
    },
    Detach {
        conn: String,
    },
}

/// A scripted case.
#[derive(Clone, Debug, Default)]
pub struct Case {
    pub name: String,
    pub args: Vec<String>,
    pub domains: Vec<u32>,
    pub steps: Vec<Step>,
}

impl Case {
    /// The simulator configuration equivalent to the real daemon's `args`.
    pub fn sim_config(&self) -> Config {
        let mut q = Quotas::default();
        let mut keep = false;
        let mut it = self.args.iter();
        while let Some(a) = it.next() {
            let mut val = || it.next().and_then(|v| v.parse::<u32>().ok()).unwrap_or(0);
            match a.as_str() {
                "-E" => q.nodes = val(),
                "-W" => q.watches = val(),
                "-t" => q.transactions = val(),
                "-S" => q.node_size = val(),
                "-A" => q.perms = val(),
                "-M" => q.path_len = val().min(2048),
                "-K" => keep = true,
                "-Q" => {
                    if let Some((what, v)) = it.next().and_then(|a| a.split_once('=')) {
                        if what == "transaction-nodes" {
                            q.transaction_nodes = v.parse().unwrap_or(0);
                        }
                    }
                }
                _ => {}
            }
        }
        Config {
            quotas: q,
            keep_orphans: keep,
        }
    }
}

fn ring_field(name: &str) -> Option<usize> {
    Some(match name {
        "req_cons" => 2048,
        "req_prod" => 2052,
        "rsp_cons" => 2056,
        "rsp_prod" => 2060,
        "server_features" => 2064,
        "connection" => 2068,
        "error" => 2072,
        _ => return None,
    })
}

/// Parses a script into cases.
pub fn parse(script: &str) -> Result<Vec<Case>, String> {
    let mut cases: Vec<Case> = Vec::new();
    for (lineno, raw) in script.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let err = |m: &str| format!("line {}: {m}: {raw}", lineno + 1);
        if let Some(name) = line.strip_prefix("case ") {
            cases.push(Case {
                name: name.trim().to_string(),
                ..Case::default()
            });
            continue;
        }
        let case = cases
            .last_mut()
            .ok_or_else(|| err("step before any case"))?;
        if let Some(rest) = line.strip_prefix("args ") {
            case.args = rest.split_whitespace().map(String::from).collect();
            continue;
        }
        if let Some(rest) = line.strip_prefix("domains ") {
            case.domains = rest
                .split_whitespace()
                .map(|d| d.parse().map_err(|_| err("bad domid")))
                .collect::<Result<_, _>>()?;
            continue;
        }
        let (conn, rest) = line
            .split_once(' ')
            .ok_or_else(|| err("expected CONN OP"))?;
        let conn = conn.to_string();
        let (op, rest) = match rest.split_once(' ') {
            Some((o, r)) => (o, r.trim()),
            None => (rest, ""),
        };
        let literal = || -> Result<Vec<u8>, String> {
            let body = rest
                .strip_prefix('"')
                .and_then(|r| r.strip_suffix('"'))
                .ok_or_else(|| err("payload must be a quoted string"))?;
            unescape(&expand(body).map_err(|e| err(&e))?).map_err(|e| err(&e))
        };
        let step = match op {
            "raw" => Step::Raw {
                conn,
                bytes: literal()?,
            },
            "ring" => Step::RingState { conn },
            "detach" | "close" => Step::Detach { conn },
            "poke" => {
                let mut it = rest.split_whitespace();
                let field = it
                    .next()
                    .ok_or_else(|| err("poke FIELD VALUE"))?
                    .to_string();
                ring_field(&field).ok_or_else(|| err("unknown ring field"))?;
                let value = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| err("poke FIELD VALUE"))?;
                Step::Poke { conn, field, value }
            }
            _ => {
                let (name, tx) = match op.split_once('@') {
                    None => (op, TxRef::None),
                    Some((n, t)) => {
                        let tx = if let Some(k) = t.strip_prefix('t') {
                            TxRef::Nth(k.parse().map_err(|_| err("bad @tN"))?)
                        } else {
                            TxRef::Literal(t.parse().map_err(|_| err("bad @N"))?)
                        };
                        (n, tx)
                    }
                };
                let msg_type = type_from_name(name).ok_or_else(|| err("unknown message type"))?;
                Step::Request {
                    conn,
                    msg_type,
                    tx,
                    payload: literal()?,
                }
            }
        };
        case.steps.push(step);
    }
    Ok(cases)
}

// ---------------------------------------------------------------------------------------
// Targets

/// What the harness needs from a daemon under test.
pub trait Target {
    /// Opens a socket (dom0) connection.
    fn open_socket(&mut self, name: &str) -> Result<(), String>;
    /// Makes domain `domid`'s ring usable by the harness (after it was introduced).
    fn attach_ring(&mut self, name: &str, domid: u32) -> Result<(), String>;
    /// Sends bytes on a connection.
    fn send(&mut self, name: &str, bytes: &[u8]);
    /// Receives the next message; `Ok(None)` on timeout, `Err` when the connection died
    /// (text says how).
    fn recv(&mut self, name: &str, timeout: Duration) -> Result<Option<Message>, String>;
    /// Reads ring field `offset`.
    fn ring_load(&mut self, name: &str, offset: usize) -> u32;
    /// Writes ring field `offset` and kicks.
    fn ring_store(&mut self, name: &str, offset: usize, value: u32);
    /// Forgets a connection.
    fn detach(&mut self, name: &str);
    /// Called after every step (the simulator applies ring resets caused by INTRODUCE).
    fn settle(&mut self) {}
    /// Gives the daemon time to act on bytes sent on `conn` for which no reply is awaited.
    fn quiesce(&mut self, _conn: &str) {}
}

/// Guest-side ring protocol over a page abstraction.
trait Page {
    fn read(&self, offset: usize, out: &mut [u8]);
    fn write(&mut self, offset: usize, data: &[u8]);
    fn load(&self, offset: usize) -> u32 {
        let mut b = [0u8; 4];
        self.read(offset, &mut b);
        u32::from_le_bytes(b)
    }
    fn store(&mut self, offset: usize, v: u32) {
        self.write(offset, &v.to_le_bytes());
    }
}

impl Page for FilePage {
    fn read(&self, offset: usize, out: &mut [u8]) {
        FilePage::read(self, offset, out)
    }
    fn write(&mut self, offset: usize, data: &[u8]) {
        FilePage::write(self, offset, data)
    }
}

impl Page for Vec<u8> {
    fn read(&self, offset: usize, out: &mut [u8]) {
        out.copy_from_slice(&self[offset..offset + out.len()]);
    }
    fn write(&mut self, offset: usize, data: &[u8]) {
        self[offset..offset + data.len()].copy_from_slice(data);
    }
}

/// Writes as much of `pending` as fits into the request ring; returns bytes written.
fn ring_put(page: &mut dyn Page, pending: &mut Vec<u8>) -> usize {
    let cons = page.load(2048);
    let prod = page.load(2052);
    let space = 1024u32.saturating_sub(prod.wrapping_sub(cons)) as usize;
    let n = space.min(pending.len());
    for (i, b) in pending.iter().take(n).enumerate() {
        let at = (prod.wrapping_add(i as u32) & 1023) as usize;
        page.write(at, &[*b]);
    }
    page.store(2052, prod.wrapping_add(n as u32));
    pending.drain(..n);
    n
}

/// Takes all available response bytes off the ring.
fn ring_take(page: &mut dyn Page) -> Vec<u8> {
    let cons = page.load(2056);
    let prod = page.load(2060);
    let avail = prod.wrapping_sub(cons).min(1024);
    let mut out = Vec::with_capacity(avail as usize);
    for i in 0..avail {
        let at = 1024 + (cons.wrapping_add(i) & 1023) as usize;
        let mut b = [0u8];
        page.read(at, &mut b);
        out.push(b[0]);
    }
    page.store(2056, cons.wrapping_add(avail));
    out
}

/// One guest-side look at a ring.
enum Polled {
    Message(Message),
    /// Bytes moved: the daemon must be kicked.
    Kick,
    Nothing,
}

/// Takes a decoded response if there is one, else moves bytes (responses in, pending
/// requests out); `Err` when the daemon set the ring's error field.
fn ring_poll(
    page: &mut dyn Page,
    pending: &mut Vec<u8>,
    decoder: &mut Decoder,
) -> Result<Polled, String> {
    if let Some(m) = decoder.next_message().map_err(|e| format!("{e:?}"))? {
        return Ok(Polled::Message(m));
    }
    let err = page.load(2072);
    if err != 0 {
        return Err(format!("ring error {err}"));
    }
    let bytes = ring_take(page);
    let mut kick = !bytes.is_empty();
    decoder.push(&bytes);
    if !pending.is_empty() && ring_put(page, pending) > 0 {
        kick = true;
    }
    Ok(if kick { Polled::Kick } else { Polled::Nothing })
}

struct RealRing {
    page: FilePage,
    pending: Vec<u8>,
    decoder: Decoder,
}

enum RealConn {
    Socket(UnixStream, Decoder),
    Ring(RealRing),
}

/// The real daemon as a target.
pub struct RealTarget {
    pub daemon: RealDaemon,
    conns: BTreeMap<String, RealConn>,
}

impl RealTarget {
    pub fn new(daemon: RealDaemon) -> Self {
        Self {
            daemon,
            conns: BTreeMap::new(),
        }
    }
}

impl Target for RealTarget {
    fn open_socket(&mut self, name: &str) -> Result<(), String> {
        let s = UnixStream::connect(self.daemon.socket()).map_err(|e| e.to_string())?;
        self.conns
            .insert(name.to_string(), RealConn::Socket(s, Decoder::default()));
        Ok(())
    }

    fn attach_ring(&mut self, name: &str, domid: u32) -> Result<(), String> {
        let f = self.daemon.ring(domid).map_err(|e| e.to_string())?;
        self.conns.insert(
            name.to_string(),
            RealConn::Ring(RealRing {
                page: FilePage(f),
                pending: Vec::new(),
                decoder: Decoder::default(),
            }),
        );
        Ok(())
    }

    fn send(&mut self, name: &str, bytes: &[u8]) {
        match self.conns.get_mut(name) {
            Some(RealConn::Socket(s, _)) => {
                let _ = s.write_all(bytes);
            }
            Some(RealConn::Ring(r)) => {
                r.pending.extend_from_slice(bytes);
                ring_put(&mut r.page, &mut r.pending);
                self.daemon.kick();
            }
            None => {}
        }
    }

    fn recv(&mut self, name: &str, timeout: Duration) -> Result<Option<Message>, String> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.conns.get_mut(name) {
                Some(RealConn::Socket(s, dec)) => {
                    if let Some(m) = dec.next_message().map_err(|e| format!("{e:?}"))? {
                        return Ok(Some(m));
                    }
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(None);
                    }
                    let _ = s.set_read_timeout(Some(left));
                    let mut buf = [0u8; 8192];
                    match s.read(&mut buf) {
                        Ok(0) => return Err("closed".into()),
                        Ok(n) => dec.push(&buf[..n]),
                        Err(e)
                            if e.kind() == std::io::ErrorKind::WouldBlock
                                || e.kind() == std::io::ErrorKind::TimedOut =>
                        {
                            return Ok(None)
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                            return Err("closed".into())
                        }
                        Err(e) => return Err(format!("socket error {e}")),
                    }
                }
                Some(RealConn::Ring(r)) => {
                    match ring_poll(&mut r.page, &mut r.pending, &mut r.decoder)? {
                        Polled::Message(m) => return Ok(Some(m)),
                        Polled::Kick => self.daemon.kick(),
                        Polled::Nothing if Instant::now() > deadline => return Ok(None),
                        Polled::Nothing => std::thread::sleep(Duration::from_micros(100)),
                    }
                }
                None => return Err("no such connection".into()),
            }
        }
    }

    fn ring_load(&mut self, name: &str, offset: usize) -> u32 {
        match self.conns.get(name) {
            Some(RealConn::Ring(r)) => r.page.load(offset),
            _ => 0,
        }
    }

    fn ring_store(&mut self, name: &str, offset: usize, value: u32) {
        if let Some(RealConn::Ring(r)) = self.conns.get_mut(name) {
            r.page.store(offset, value);
            self.daemon.kick();
        }
    }

    fn detach(&mut self, name: &str) {
        self.conns.remove(name);
    }

    fn quiesce(&mut self, conn: &str) {
        // A ring is settled once the daemon consumed what it will (or cut the guest off);
        // a cut-off ring never settles, so the wait is bounded.
        if let Some(RealConn::Ring(r)) = self.conns.get(conn) {
            let deadline = Instant::now() + Duration::from_secs(1);
            while Instant::now() < deadline {
                if r.page.load(2048) == r.page.load(2052) || r.page.load(2072) != 0 {
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        std::thread::sleep(Duration::from_millis(30));
    }
}

struct SimRing {
    domid: u32,
    page: Vec<u8>,
    pending: Vec<u8>,
    decoder: Decoder,
}

enum SimConn {
    Socket(ConnId),
    Ring(SimRing),
}

/// The simulator as a target (in-process; the ring is a real 4 KiB page).
pub struct SimTarget {
    pub xs: Xenstored,
    conns: BTreeMap<String, SimConn>,
}

impl SimTarget {
    pub fn new(case: &Case) -> Self {
        let mut xs = Xenstored::new(case.sim_config());
        for d in &case.domains {
            xs.set_domain_exists(*d, true);
        }
        Self {
            xs,
            conns: BTreeMap::new(),
        }
    }

    fn kick_ring(&mut self, name: &str) {
        if let Some(SimConn::Ring(r)) = self.conns.get_mut(name) {
            self.xs
                .process_ring(r.domid, r.page.as_mut_slice(), &mut || {});
        }
    }
}

impl Target for SimTarget {
    fn open_socket(&mut self, name: &str) -> Result<(), String> {
        let c = self.xs.connect_socket();
        self.conns.insert(name.to_string(), SimConn::Socket(c));
        Ok(())
    }

    fn attach_ring(&mut self, name: &str, domid: u32) -> Result<(), String> {
        let mut page = vec![0u8; 4096];
        // A reset due by an earlier INTRODUCE already happened to the (zeroed) page.
        self.xs.reset_ring_if_introduced(domid, page.as_mut_slice());
        self.conns.insert(
            name.to_string(),
            SimConn::Ring(SimRing {
                domid,
                page,
                pending: Vec::new(),
                decoder: Decoder::default(),
            }),
        );
        Ok(())
    }

    fn send(&mut self, name: &str, bytes: &[u8]) {
        match self.conns.get_mut(name) {
            Some(SimConn::Socket(c)) => {
                let c = *c;
                if self.xs.feed(c, bytes).is_err() {
                    self.conns.remove(name);
                }
            }
            Some(SimConn::Ring(r)) => {
                r.pending.extend_from_slice(bytes);
                ring_put(&mut r.page, &mut r.pending);
                self.kick_ring(name);
            }
            None => {}
        }
    }

    fn recv(&mut self, name: &str, _timeout: Duration) -> Result<Option<Message>, String> {
        loop {
            match self.conns.get_mut(name) {
                Some(SimConn::Socket(c)) => {
                    let c = *c;
                    return match self.xs.pop_output(c) {
                        Some(bytes) => {
                            let mut d = Decoder::default();
                            d.push(&bytes);
                            Ok(d.next_message().ok().flatten())
                        }
                        None => Ok(None),
                    };
                }
                Some(SimConn::Ring(r)) => {
                    match ring_poll(&mut r.page, &mut r.pending, &mut r.decoder)? {
                        Polled::Message(m) => return Ok(Some(m)),
                        Polled::Kick => self.kick_ring(name),
                        Polled::Nothing => return Ok(None),
                    }
                }
                None => return Err("closed".into()),
            }
        }
    }

    fn ring_load(&mut self, name: &str, offset: usize) -> u32 {
        match self.conns.get(name) {
            Some(SimConn::Ring(r)) => r.page.load(offset),
            _ => 0,
        }
    }

    fn ring_store(&mut self, name: &str, offset: usize, value: u32) {
        if let Some(SimConn::Ring(r)) = self.conns.get_mut(name) {
            r.page.store(offset, value);
        }
        self.kick_ring(name);
    }

    fn detach(&mut self, name: &str) {
        self.conns.remove(name);
    }

    fn settle(&mut self) {
        for conn in self.conns.values_mut() {
            if let SimConn::Ring(r) = conn {
                self.xs
                    .reset_ring_if_introduced(r.domid, r.page.as_mut_slice());
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Running a case

const SYNC_BASE: u32 = 0x5e00_0000;

/// Runs a case on a target and returns its transcript.
pub fn run_case(case: &Case, target: &mut dyn Target, timeout: Duration) -> Vec<String> {
    let mut out = Vec::new();
    let mut live: Vec<String> = Vec::new();
    let mut tx_ids: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    let mut next_req: u32 = 0x100;
    let mut sync_no: u32 = 0;
    // What was sent on each connection, to know whether it stands between two messages.
    let mut sent: BTreeMap<String, Decoder> = BTreeMap::new();
    // Rings the daemon cut off: still attached (their page can be inspected), never synced.
    let mut dead_rings: Vec<String> = Vec::new();
    let note_sent = |sent: &mut BTreeMap<String, Decoder>, conn: &str, bytes: &[u8]| {
        let d = sent.entry(conn.to_string()).or_default();
        d.push(bytes);
        while let Ok(Some(_)) = d.next_message() {}
    };
    let mid_message = |sent: &BTreeMap<String, Decoder>, conn: &str| {
        sent.get(conn).is_some_and(|d| d.pending() > 0)
    };

    let ensure = |target: &mut dyn Target,
                  live: &mut Vec<String>,
                  dead: &[String],
                  conn: &str,
                  out: &mut Vec<String>| {
        if live.iter().any(|c| c == conn) || dead.iter().any(|c| c == conn) {
            return;
        }
        let res = if let Some(d) = conn.strip_prefix('G') {
            match d.parse::<u32>() {
                Ok(domid) => target.attach_ring(conn, domid),
                Err(_) => Err(format!("bad ring connection name {conn}")),
            }
        } else {
            target.open_socket(conn)
        };
        match res {
            Ok(()) => live.push(conn.to_string()),
            Err(e) => out.push(format!("! {conn} cannot open: {e}")),
        }
    };

    for step in &case.steps {
        let mut awaited: Option<(String, u32)> = None;
        match step {
            Step::Request {
                conn,
                msg_type,
                tx,
                payload,
            } => {
                ensure(target, &mut live, &dead_rings, conn, &mut out);
                let tx_id = match tx {
                    TxRef::None => 0,
                    TxRef::Literal(v) => *v,
                    TxRef::Nth(n) => tx_ids
                        .get(conn)
                        .and_then(|v| v.get(n.saturating_sub(1)))
                        .copied()
                        .unwrap_or(0xdead),
                };
                let req_id = next_req;
                next_req += 1;
                let msg = Message::new(*msg_type, req_id, tx_id, payload.clone());
                out.push(format!(
                    "> {conn} {} req={req_id} tx={} \"{}\"",
                    type_name(*msg_type),
                    tx_label(tx),
                    escape(payload)
                ));
                target.send(conn, &msg.to_bytes());
                note_sent(&mut sent, conn, &msg.to_bytes());
                if mid_message(&sent, conn) {
                    target.quiesce(conn);
                } else {
                    awaited = Some((conn.clone(), req_id));
                }
            }
            Step::Raw { conn, bytes } => {
                ensure(target, &mut live, &dead_rings, conn, &mut out);
                out.push(format!("> {conn} raw \"{}\"", escape(bytes)));
                target.send(conn, bytes);
                note_sent(&mut sent, conn, bytes);
                target.quiesce(conn);
            }
            Step::RingState { conn } => {
                let f: Vec<String> = [
                    "req_cons",
                    "req_prod",
                    "rsp_cons",
                    "rsp_prod",
                    "server_features",
                    "connection",
                    "error",
                ]
                .iter()
                .map(|n| format!("{n}={}", target.ring_load(conn, ring_field(n).unwrap_or(0))))
                .collect();
                out.push(format!("= {conn} ring {}", f.join(" ")));
                continue;
            }
            Step::Poke { conn, field, value } => {
                ensure(target, &mut live, &dead_rings, conn, &mut out);
                out.push(format!("> {conn} poke {field}={value}"));
                target.ring_store(conn, ring_field(field).unwrap_or(0), *value);
                target.quiesce(conn);
            }
            Step::Detach { conn } => {
                target.detach(conn);
                live.retain(|c| c != conn);
                continue;
            }
        }
        // Wait for the reply to the request, then drain every live connection with a sync
        // request so that events queued by this step are all collected, in order.
        let mut received: Vec<(String, Message)> = Vec::new();
        let mut dead: Vec<(String, String)> = Vec::new();
        if let Some((conn, req_id)) = &awaited {
            loop {
                match target.recv(conn, timeout) {
                    Ok(Some(m)) => {
                        let done = m.req_id == *req_id && m.msg_type != 15;
                        received.push((conn.clone(), m));
                        if done {
                            break;
                        }
                    }
                    Ok(None) => {
                        dead.push((conn.clone(), "TIMEOUT waiting for reply".into()));
                        break;
                    }
                    Err(e) => {
                        dead.push((conn.clone(), e));
                        break;
                    }
                }
            }
        }
        target.settle();
        for conn in live.clone() {
            if dead.iter().any(|(c, _)| *c == conn) || mid_message(&sent, &conn) {
                continue;
            }
            sync_no += 1;
            let sync_id = SYNC_BASE + sync_no;
            let sync = Message::new(10, sync_id, 0, b"0\0".to_vec());
            target.send(&conn, &sync.to_bytes());
            note_sent(&mut sent, &conn, &sync.to_bytes());
            loop {
                match target.recv(&conn, timeout) {
                    Ok(Some(m)) if m.req_id == sync_id && m.msg_type != 15 => break,
                    Ok(Some(m)) => received.push((conn.clone(), m)),
                    Ok(None) => {
                        dead.push((conn.clone(), "TIMEOUT waiting for sync".into()));
                        break;
                    }
                    Err(e) => {
                        dead.push((conn.clone(), e));
                        break;
                    }
                }
            }
        }
        // Stable order: by connection name, then arrival.
        let mut names: Vec<String> = received.iter().map(|(c, _)| c.clone()).collect();
        names.sort();
        names.dedup();
        for name in names {
            for (c, m) in received.iter().filter(|(c, _)| *c == name) {
                let mut payload = m.payload.clone();
                let mut txl = m.tx_id.to_string();
                if m.msg_type == 6 && m.msg_type != 16 {
                    let id =
                        String::from_utf8_lossy(payload.strip_suffix(b"\0").unwrap_or(&payload))
                            .parse::<u32>()
                            .ok();
                    if let Some(id) = id {
                        let v = tx_ids.entry(c.clone()).or_default();
                        v.push(id);
                        payload = format!("T{}\0", v.len()).into_bytes();
                    }
                }
                if let Some(pos) = tx_ids
                    .get(c)
                    .and_then(|v| v.iter().position(|&t| t == m.tx_id))
                {
                    if m.tx_id != 0 {
                        txl = format!("T{}", pos + 1);
                    }
                }
                out.push(format!(
                    "< {c} {} req={} tx={txl} \"{}\"",
                    type_name(m.msg_type),
                    if m.req_id >= SYNC_BASE {
                        "sync".to_string()
                    } else {
                        m.req_id.to_string()
                    },
                    escape(&payload)
                ));
            }
        }
        for (c, why) in dead {
            out.push(format!("! {c} {why}"));
            live.retain(|l| *l != c);
            sent.remove(&c);
            if c.starts_with('G') {
                dead_rings.push(c);
            } else {
                target.detach(&c);
            }
        }
    }
    out
}

fn tx_label(tx: &TxRef) -> String {
    match tx {
        TxRef::None => "0".into(),
        TxRef::Nth(n) => format!("T{n}"),
        TxRef::Literal(v) => v.to_string(),
    }
}

/// Parses a header out of raw bytes (for scripts building raw messages).
#[allow(dead_code)]
pub fn header(bytes: &[u8]) -> Option<Header> {
    Header::parse(bytes)
}

/// Deterministic random request sequences (well-formed requests over a small set of paths,
/// from dom0 sockets and two guest rings), for differential testing against the real
/// daemon. `seed` picks the sequence.
pub fn random_case(seed: u64, steps: usize) -> Case {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = |n: u64| -> u64 {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) % n.max(1)
    };
    let conns = ["A", "B", "G1", "G2"];
    let rel = [
        "x",
        "x/y",
        "x/y/z",
        "w",
        "data",
        "data/k",
        "device/vif/0/state",
    ];
    let abs = [
        "/local/domain/1/x",
        "/local/domain/2/x",
        "/local/domain/1/data/k",
        "/shared",
        "/shared/k",
        "/local/domain/2",
        "/tool/xenstored",
    ];
    let mut lines = vec![
        "domains 1 2".to_string(),
        "A MKDIR \"/local/domain/1\\0\"".into(),
        "A SET_PERMS \"/local/domain/1\\0n1\\0r2\\0\"".into(),
        "A MKDIR \"/local/domain/2\\0\"".into(),
        "A SET_PERMS \"/local/domain/2\\0n2\\0\"".into(),
        "A MKDIR \"/shared\\0\"".into(),
        "A SET_PERMS \"/shared\\0n0\\0b1\\0r2\\0\"".into(),
        "A INTRODUCE \"1\\04660\\03\\0\"".into(),
        "A INTRODUCE \"2\\04661\\04\\0\"".into(),
    ];
    let mut open_tx: BTreeMap<&str, usize> = BTreeMap::new();
    let mut started: BTreeMap<&str, usize> = BTreeMap::new();
    for _ in 0..steps {
        let conn = conns[next(4) as usize];
        let path = if conn.starts_with('G') && next(2) == 0 {
            rel[next(rel.len() as u64) as usize].to_string()
        } else {
            abs[next(abs.len() as u64) as usize].to_string()
        };
        let tx = match open_tx.get(conn) {
            Some(n) if next(3) != 0 => format!("@t{n}"),
            _ => String::new(),
        };
        let value = format!("v{}", next(100));
        let line = match next(17) {
            0..=3 => format!("{conn} WRITE{tx} \"{path}\\0{value}\""),
            4 | 5 => format!("{conn} READ{tx} \"{path}\\0\""),
            6 => format!("{conn} MKDIR{tx} \"{path}\\0\""),
            7 => format!("{conn} RM{tx} \"{path}\\0\""),
            8 => format!("{conn} DIRECTORY{tx} \"{path}\\0\""),
            9 => {
                let who = ["n0", "n1", "n2", "r1", "b2", "w1"][next(6) as usize];
                let owner = ["n0", "n1", "n2"][next(3) as usize];
                format!("{conn} SET_PERMS{tx} \"{path}\\0{owner}\\0{who}\\0\"")
            }
            10 => format!("{conn} WATCH \"{path}\\0tok{}\\0\"", next(3)),
            11 => format!("{conn} GET_PERMS{tx} \"{path}\\0\""),
            12 => {
                if let Some(n) = open_tx.remove(conn) {
                    let commit = if next(3) == 0 { "F" } else { "T" };
                    format!("{conn} TRANSACTION_END@t{n} \"{commit}\\0\"")
                } else {
                    let n = started.entry(conn).or_insert(0);
                    *n += 1;
                    open_tx.insert(conn, *n);
                    format!("{conn} TRANSACTION_START \"\\0\"")
                }
            }
            13 => format!("{conn} DIRECTORY_PART{tx} \"{path}\\00\\0\""),
            14 => format!("{conn} UNWATCH \"{path}\\0tok{}\\0\"", next(3)),
            15 if next(4) == 0 => {
                open_tx.remove(conn);
                format!("{conn} RESET_WATCHES \"\"")
            }
            15 if next(4) == 0 => {
                // Domain 2 goes away (its nodes with it) and a new domain 2 is introduced.
                open_tx.remove("G2");
                started.remove("G2");
                "G2 detach\nA RELEASE \"2\\0\"\nA INTRODUCE \"2\\04661\\04\\0\"".to_string()
            }
            _ => format!(
                "{conn} WRITE{tx} \"{path}/{}\\0{value}\"",
                ["a", "b"][next(2) as usize]
            ),
        };
        lines.push(line);
    }
    let script = format!("case random sequence seed {seed}\n{}\n", lines.join("\n"));
    parse(&script)
        .ok()
        .and_then(|mut v| v.pop())
        .unwrap_or_default()
}
