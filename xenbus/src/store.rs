//! STORE (spec §5.10): the XenStore client — requests over the shared ring, responses
//! matched by `req_id`, transactions, watches, suspend/resume and the stall watchdog.
//!
//! [`StoreClient`] is the sans-IO core: it queues encoded requests, copies bytes to and from
//! a [`SharedMemory`] ring (partial copies across the wrap, every index the other side
//! controls validated) and turns complete messages into completions and watch firings.
//! [`Store`] is the subsystem: it owns a client behind a lock, notifies and waits through
//! a [`StoreChannel`] (the store event channel) and signals watch events through the `Os`.
//!
//! Decisions (where upstream asserts or is silent):
//! * A ring whose indices are impossible (`prod - cons > 1024`), a response header with an
//!   unknown type or `len > XENSTORE_PAYLOAD_MAX` desynchronise the stream: the client logs
//!   it, fails every outstanding request with `STATUS_UNEXPECTED_IO_ERROR` and refuses new
//!   ones until the next resume resets it.
//! * A reply whose type is neither the request's nor `XS_ERROR` fails that request with
//!   `STATUS_UNSUCCESSFUL`.
//! * `TransactionEnd` frees the handle on every outcome (upstream keeps it on a non-RETRY
//!   error, where no caller can use it again).
//! * The watch token is `TOK|<address of the watch record, %016X>|<id %04X>`: the record's
//!   address stands in for upstream's caller address (unique while the watch exists).
//! * Requests still outstanding at resume fail with `STATUS_UNSUCCESSFUL` (they cannot be
//!   completed by the new xenstored connection).
//! * A request waits a bounded time (deliberate difference: upstream waits forever and
//!   only logs "TIMED OUT" every 5 s): it re-notifies after every quiet poll period and
//!   fails with `STATUS_IO_TIMEOUT` after 30 s without the rings moving (5 s once xenstored
//!   is unresponsive); its late reply is dropped and its `req_id` stays reserved until then
//!   (see [`Store::request`]).
#![forbid(unsafe_code)]

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::fmt::Write;
use core::mem::offset_of;

use common::os::Os;
use common::sync::{SpinGuard, SpinLock};
use core::sync::atomic::{fence, AtomicBool, Ordering};
use xen_include::api::XenApi;
use xen_include::interfaces::store::{StorePermission, StorePermissionMask};
use xen_include::status::{
    xs_error_to_ntstatus, NtStatus, STATUS_INSUFFICIENT_RESOURCES, STATUS_INVALID_BUFFER_SIZE,
    STATUS_INVALID_PARAMETER, STATUS_IO_TIMEOUT, STATUS_NO_MEMORY, STATUS_OBJECT_PATH_NOT_FOUND,
    STATUS_RETRY, STATUS_SUCCESS, STATUS_UNEXPECTED_IO_ERROR, STATUS_UNSUCCESSFUL,
};
use xen_include::xen::io::xs_wire::{
    XenstoreDomainInterface, XsdSockmsgType, XENSTORE_ABS_PATH_MAX, XENSTORE_PAYLOAD_MAX,
    XENSTORE_REL_PATH_MAX, XENSTORE_RING_SIZE,
};

use crate::log::Line;
use crate::shared::{mb, OutOfBounds, SharedMemory};

/// Size of the `xsd_sockmsg` header.
pub const HEADER_SIZE: usize = 16;
/// How long a submitter waits for the store event before notifying again and polling
/// anyway (5 s in 100 ns, upstream's `XENBUS_STORE_POLL_PERIOD`).
pub const POLL_PERIOD_100NS: u64 = 5 * 10_000_000;
/// Poll periods a request waits for its reply before it fails with `STATUS_IO_TIMEOUT`
/// (30 s; upstream waits forever).
pub const REQUEST_PERIODS: u32 = 6;
/// Poll periods a request waits while xenstored is unresponsive (a request timed out and
/// nothing was heard from xenstored since): one, so a dead xenstored costs each caller 5 s
/// instead of 30 s, while a recovered one answers within it.
pub const UNRESPONSIVE_PERIODS: u32 = 1;
/// Longest value `Printf` may write (the formatted text must fit 1024 bytes with its NUL).
pub const PRINTF_MAX: usize = 1023;
/// Grant reference of the store ring (`XENBUS_GNTTAB_STORE_REFERENCE`).
pub const STORE_REFERENCE: u32 = 1;
/// Length of a watch token `TOK|XXXXXXXXXXXXXXXX|XXXX` (x86_64).
pub const TOKEN_LENGTH: usize = 4 + 16 + 1 + 4;

const REQ: usize = offset_of!(XenstoreDomainInterface, req);
const RSP: usize = offset_of!(XenstoreDomainInterface, rsp);
const REQ_CONS: usize = offset_of!(XenstoreDomainInterface, req_cons);
const REQ_PROD: usize = offset_of!(XenstoreDomainInterface, req_prod);
const RSP_CONS: usize = offset_of!(XenstoreDomainInterface, rsp_cons);
const RSP_PROD: usize = offset_of!(XenstoreDomainInterface, rsp_prod);
const RING: u32 = XENSTORE_RING_SIZE as u32;

/// Reply types upstream accepts and drops (spec §5.10).
fn ignorable(kind: XsdSockmsgType) -> bool {
    matches!(
        kind,
        XsdSockmsgType::DEBUG
            | XsdSockmsgType::GET_PERMS
            | XsdSockmsgType::INTRODUCE
            | XsdSockmsgType::RELEASE
            | XsdSockmsgType::GET_DOMAIN_PATH
            | XsdSockmsgType::MKDIR
            | XsdSockmsgType::IS_DOMAIN_INTRODUCED
            | XsdSockmsgType::RESUME
            | XsdSockmsgType::SET_TARGET
            | XsdSockmsgType::RESTRICT
    )
}

/// Reply types the client understands.
fn handled(kind: XsdSockmsgType) -> bool {
    matches!(
        kind,
        XsdSockmsgType::DIRECTORY
            | XsdSockmsgType::READ
            | XsdSockmsgType::WATCH
            | XsdSockmsgType::UNWATCH
            | XsdSockmsgType::TRANSACTION_START
            | XsdSockmsgType::TRANSACTION_END
            | XsdSockmsgType::WRITE
            | XsdSockmsgType::RM
            | XsdSockmsgType::SET_PERMS
            | XsdSockmsgType::WATCH_EVENT
            | XsdSockmsgType::ERROR
    )
}

/// `Prefix + "/" + Node` (or `Node`), checked against the path limits
/// (`StoreCheckPathLength`): the key with its NUL must fit `XENSTORE_ABS_PATH_MAX` when it
/// is absolute, `XENSTORE_REL_PATH_MAX` otherwise; embedded NULs are refused.
pub fn make_key(prefix: Option<&[u8]>, node: &[u8]) -> Result<Vec<u8>, NtStatus> {
    if node.contains(&0) || prefix.is_some_and(|p| p.contains(&0)) {
        return Err(STATUS_INVALID_PARAMETER);
    }
    let length = prefix.map_or(0, |p| p.len() + 1) + node.len() + 1;
    let absolute = prefix.unwrap_or(node).first() == Some(&b'/');
    let limit = if absolute {
        XENSTORE_ABS_PATH_MAX
    } else {
        XENSTORE_REL_PATH_MAX
    };
    if length > limit {
        return Err(STATUS_INVALID_BUFFER_SIZE);
    }
    let mut key = Vec::new();
    key.try_reserve(length).map_err(|_| STATUS_NO_MEMORY)?;
    if let Some(p) = prefix {
        key.extend_from_slice(p);
        key.push(b'/');
    }
    key.extend_from_slice(node);
    Ok(key)
}

/// The `SET_PERMS` payload after the path: one `<n|r|w|b><domid>` NUL-terminated entry per
/// permission.
pub fn encode_permissions(permissions: &[StorePermission]) -> Result<Vec<u8>, NtStatus> {
    let mut bytes = Vec::new();
    for p in permissions {
        let c = match p.mask {
            StorePermissionMask::NONE => 'n',
            StorePermissionMask::READ => 'r',
            StorePermissionMask::WRITE => 'w',
            m if m.0 == StorePermissionMask::READ.0 | StorePermissionMask::WRITE.0 => 'b',
            _ => return Err(STATUS_INVALID_PARAMETER),
        };
        let mut entry = Line::new();
        let _ = write!(entry, "{c}{}", p.domain);
        bytes
            .try_reserve(entry.as_str().len() + 1)
            .map_err(|_| STATUS_NO_MEMORY)?;
        bytes.extend_from_slice(entry.as_str().as_bytes());
        bytes.push(0);
    }
    Ok(bytes)
}

/// Encode a request: the header then the concatenated segments.
pub fn encode_request(
    kind: XsdSockmsgType,
    req_id: u32,
    tx_id: u32,
    segments: &[&[u8]],
) -> Result<Vec<u8>, NtStatus> {
    let len: usize = segments.iter().map(|s| s.len()).sum();
    if len > XENSTORE_PAYLOAD_MAX {
        return Err(STATUS_INVALID_BUFFER_SIZE);
    }
    let mut bytes = Vec::new();
    bytes
        .try_reserve(HEADER_SIZE + len)
        .map_err(|_| STATUS_NO_MEMORY)?;
    for word in [kind.0, req_id, tx_id, len as u32] {
        bytes.extend_from_slice(&word.to_le_bytes());
    }
    for s in segments {
        bytes.extend_from_slice(s);
    }
    Ok(bytes)
}

/// Format a watch token.
pub fn watch_token(address: usize, id: u16) -> [u8; TOKEN_LENGTH] {
    let mut line = Line::new();
    let _ = write!(line, "TOK|{:016X}|{:04X}", address as u64, id);
    let mut token = [0u8; TOKEN_LENGTH];
    for (d, s) in token.iter_mut().zip(line.as_str().bytes()) {
        *d = s;
    }
    token
}

/// Parse an `XS_WATCH_EVENT` payload strictly: `path NUL token NUL` with a token of
/// exactly [`TOKEN_LENGTH`] characters, the `TOK|` preamble and hexadecimal fields.
/// Returns (path, address, id).
pub fn parse_watch_event(payload: &[u8]) -> Option<(&[u8], u64, u16)> {
    let nul = payload.iter().position(|b| *b == 0)?;
    let path = payload.get(..nul)?;
    let rest = payload.get(nul + 1..)?;
    if rest.len() != TOKEN_LENGTH + 1 || rest.last() != Some(&0) {
        return None;
    }
    let token = core::str::from_utf8(rest.get(..TOKEN_LENGTH)?).ok()?;
    let body = token.strip_prefix("TOK|")?;
    let (address, id) = body.split_once('|')?;
    if address.len() != 16 || id.len() != 4 {
        return None;
    }
    let address = u64::from_str_radix(address, 16).ok()?;
    let id = u16::from_str_radix(id, 16).ok()?;
    Some((path, address, id))
}

/// A complete reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// Its type (`XS_ERROR` or the request's).
    pub kind: XsdSockmsgType,
    /// The payload.
    pub payload: Vec<u8>,
}

impl Response {
    /// The reply as a status: the `XS_ERROR` mapping, or success.
    pub fn check(&self) -> Result<(), NtStatus> {
        if self.kind == XsdSockmsgType::ERROR {
            Err(xs_error_to_ntstatus(&self.payload))
        } else {
            Ok(())
        }
    }
}

/// A request being written to the ring.
struct Outgoing {
    req_id: u32,
    kind: XsdSockmsgType,
    bytes: Vec<u8>,
    offset: usize,
    /// Nobody waits for the reply (its submitter timed out, or the client's own clean-up).
    abandoned: bool,
}

/// A request on the ring, awaiting its reply.
struct Pending {
    req_id: u32,
    kind: XsdSockmsgType,
    abandoned: bool,
    /// The whole encoded request of a WATCH (its path and token), kept so that a late
    /// successful reply to an abandoned one can be undone with the same UNWATCH.
    watch: Vec<u8>,
}

/// Most abandoned requests left on the ring awaiting a reply; beyond it new requests are
/// refused (`STATUS_INSUFFICIENT_RESOURCES`) until replies arrive or a resume resets the
/// stream, so a reply can never be matched to a newer request that reused its `req_id`.
pub const ABANDONED_MAX: usize = 256;

/// What [`StoreClient::abandon`] did with a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Abandoned {
    /// It had not reached the ring: removed, xenstored never sees it.
    NeverSent,
    /// It is (partly) on the ring: its remaining bytes still go out (the stream must stay
    /// whole) and its reply, when it comes, is dropped.
    OnRing,
    /// No such request outstanding.
    Unknown,
}

/// The response being assembled from the ring.
#[derive(Default)]
struct Incoming {
    header: [u8; HEADER_SIZE],
    have: usize,
    payload: Vec<u8>,
    want: Option<usize>,
}

/// An open transaction.
#[derive(Debug)]
struct TransactionRecord {
    id: u32,
    active: bool,
}

/// A registered watch.
#[derive(Debug)]
struct WatchRecord {
    id: u16,
    path: Vec<u8>,
    event: usize,
    active: bool,
}

/// What a poll did.
#[derive(Default)]
pub struct PollOutcome {
    /// Bytes written to the request ring.
    pub written: usize,
    /// Bytes read from the response ring.
    pub read: usize,
    /// Events of watches that fired (to be signalled).
    pub events: Vec<usize>,
    /// Lines worth logging (spurious replies, corrupted ring).
    pub warnings: Vec<Line>,
}

/// Handle of a transaction (the address of its record).
pub type TransactionHandle = usize;
/// Handle of a watch (the address of its record).
pub type WatchHandle = usize;

/// The sans-IO XenStore client.
pub struct StoreClient {
    next_req_id: u16,
    next_watch_id: u16,
    submitted: VecDeque<Outgoing>,
    pending: Vec<Pending>,
    completed: Vec<(u32, Result<Response, NtStatus>)>,
    incoming: Incoming,
    // Boxed: a record's address is its handle and must not move when the Vec grows.
    #[allow(clippy::vec_box)]
    transactions: Vec<Box<TransactionRecord>>,
    #[allow(clippy::vec_box)]
    watches: Vec<Box<WatchRecord>>,
    fault: bool,
    /// A request timed out and no message came from xenstored since.
    unresponsive: bool,
}

fn warn(out: &mut PollOutcome, args: core::fmt::Arguments<'_>) {
    let mut line = Line::new();
    let _ = line.write_fmt(args);
    out.warnings.push(line);
}

impl StoreClient {
    /// A client whose request and watch ids start from `seed`.
    pub fn new(seed: u32) -> Self {
        Self {
            next_req_id: seed as u16,
            next_watch_id: (seed >> 16) as u16,
            submitted: VecDeque::new(),
            pending: Vec::new(),
            completed: Vec::new(),
            incoming: Incoming::default(),
            transactions: Vec::new(),
            watches: Vec::new(),
            fault: false,
            unresponsive: false,
        }
    }

    /// True once the ring stream was found corrupted (until [`StoreClient::resume`]).
    pub fn faulted(&self) -> bool {
        self.fault
    }

    /// Requests queued or awaiting a reply (abandoned ones included).
    pub fn outstanding(&self) -> usize {
        self.submitted.len() + self.pending.len()
    }

    /// Abandoned requests whose reply has not come yet.
    pub fn abandoned(&self) -> usize {
        self.submitted.iter().filter(|o| o.abandoned).count()
            + self.pending.iter().filter(|p| p.abandoned).count()
    }

    /// True after a request timed out until xenstored is heard from again (any message).
    pub fn unresponsive(&self) -> bool {
        self.unresponsive
    }

    fn in_use(&self, id: u32) -> bool {
        self.submitted.iter().any(|o| o.req_id == id)
            || self.pending.iter().any(|p| p.req_id == id)
            || self.completed.iter().any(|(c, _)| *c == id)
    }

    /// The `tx_id` for `transaction`: 0 for none, `STATUS_UNSUCCESSFUL` for an inactive or
    /// unknown one.
    pub fn tx_id(&self, transaction: Option<TransactionHandle>) -> Result<u32, NtStatus> {
        let Some(handle) = transaction else {
            return Ok(0);
        };
        match self.transaction(handle) {
            Some(t) if t.active => Ok(t.id),
            _ => Err(STATUS_UNSUCCESSFUL),
        }
    }

    fn transaction(&self, handle: TransactionHandle) -> Option<&TransactionRecord> {
        self.transactions
            .iter()
            .map(|t| &**t)
            .find(|t| *t as *const TransactionRecord as usize == handle)
    }

    /// Queue a request; returns its `req_id`. Refused while [`ABANDONED_MAX`] abandoned
    /// requests still await their replies.
    pub fn submit(
        &mut self,
        kind: XsdSockmsgType,
        tx_id: u32,
        segments: &[&[u8]],
    ) -> Result<u32, NtStatus> {
        if self.abandoned() >= ABANDONED_MAX {
            return Err(STATUS_INSUFFICIENT_RESOURCES);
        }
        self.queue(kind, tx_id, segments, false)
    }

    fn queue(
        &mut self,
        kind: XsdSockmsgType,
        tx_id: u32,
        segments: &[&[u8]],
        abandoned: bool,
    ) -> Result<u32, NtStatus> {
        if self.fault {
            return Err(STATUS_UNEXPECTED_IO_ERROR);
        }
        // Never an id still outstanding (abandoned ones included): a late reply must not
        // complete a newer request.
        let mut found = None;
        for _ in 0..=u16::MAX {
            let id = u32::from(self.next_req_id);
            self.next_req_id = self.next_req_id.wrapping_add(1);
            if !self.in_use(id) {
                found = Some(id);
                break;
            }
        }
        let req_id = found.ok_or(STATUS_INSUFFICIENT_RESOURCES)?;
        let bytes = encode_request(kind, req_id, tx_id, segments)?;
        self.submitted
            .try_reserve(1)
            .map_err(|_| STATUS_NO_MEMORY)?;
        self.pending.try_reserve(1).map_err(|_| STATUS_NO_MEMORY)?;
        self.completed
            .try_reserve(1)
            .map_err(|_| STATUS_NO_MEMORY)?;
        self.submitted.push_back(Outgoing {
            req_id,
            kind,
            bytes,
            offset: 0,
            abandoned,
        });
        Ok(req_id)
    }

    /// Give up waiting for `req_id` (its submitter timed out). A request not yet on the
    /// ring is removed; one on the ring keeps its place and its reply is dropped when it
    /// comes (the id stays reserved until then). Marks xenstored unresponsive.
    pub fn abandon(&mut self, req_id: u32) -> Abandoned {
        self.unresponsive = true;
        if let Some(i) = self.submitted.iter().position(|o| o.req_id == req_id) {
            let written = self.submitted.get(i).is_some_and(|o| o.offset != 0);
            if !written {
                let _ = self.submitted.remove(i);
                return Abandoned::NeverSent;
            }
            if let Some(o) = self.submitted.get_mut(i) {
                o.abandoned = true;
            }
            return Abandoned::OnRing;
        }
        if let Some(p) = self.pending.iter_mut().find(|p| p.req_id == req_id) {
            p.abandoned = true;
            return Abandoned::OnRing;
        }
        if let Some(i) = self.completed.iter().position(|(id, _)| *id == req_id) {
            let _ = self.completed.swap_remove(i);
        }
        Abandoned::Unknown
    }

    /// The reply to `req_id`, once it arrived (or the request failed).
    pub fn take(&mut self, req_id: u32) -> Option<Result<Response, NtStatus>> {
        let i = self.completed.iter().position(|(id, _)| *id == req_id)?;
        Some(self.completed.swap_remove(i).1)
    }

    /// Fail every queued and pending request with `status` (abandoned ones are dropped:
    /// nobody waits for them).
    fn fail_all(&mut self, status: NtStatus) {
        let ids: Vec<u32> = self
            .submitted
            .drain(..)
            .filter(|o| !o.abandoned)
            .map(|o| o.req_id)
            .chain(
                self.pending
                    .drain(..)
                    .filter(|p| !p.abandoned)
                    .map(|p| p.req_id),
            )
            .collect();
        for id in ids {
            self.completed.push((id, Err(status)));
        }
    }

    fn corrupt(&mut self, out: &mut PollOutcome, args: core::fmt::Arguments<'_>) {
        warn(out, args);
        self.fault = true;
        self.incoming = Incoming::default();
        self.fail_all(STATUS_UNEXPECTED_IO_ERROR);
    }

    /// Copy queued request bytes to the ring; returns bytes written.
    fn send(&mut self, ring: &SharedMemory, out: &mut PollOutcome) -> Result<usize, OutOfBounds> {
        mb();
        let cons = ring.load_u32(REQ_CONS)?;
        let mut prod = ring.load_u32(REQ_PROD)?;
        mb();
        if prod.wrapping_sub(cons) > RING {
            self.corrupt(
                out,
                format_args!("STORE: request ring indices corrupt (cons {cons:#x} prod {prod:#x})"),
            );
            return Ok(0);
        }
        let mut written = 0;
        while let Some(request) = self.submitted.front_mut() {
            while request.offset < request.bytes.len() {
                let available = (cons.wrapping_add(RING).wrapping_sub(prod)) as usize;
                if available == 0 {
                    break;
                }
                let index = (prod % RING) as usize;
                let n = (request.bytes.len() - request.offset)
                    .min(available)
                    .min(XENSTORE_RING_SIZE - index);
                let chunk = request
                    .bytes
                    .get(request.offset..request.offset + n)
                    .unwrap_or(&[]);
                ring.write_bytes(REQ + index, chunk)?;
                request.offset += n;
                prod = prod.wrapping_add(n as u32);
                written += n;
            }
            if request.offset < request.bytes.len() {
                break;
            }
            if let Some(done) = self.submitted.pop_front() {
                let watch = if done.kind == XsdSockmsgType::WATCH {
                    done.bytes
                } else {
                    Vec::new()
                };
                self.pending.push(Pending {
                    req_id: done.req_id,
                    kind: done.kind,
                    abandoned: done.abandoned,
                    watch,
                });
            }
        }
        mb();
        ring.store_u32(REQ_PROD, prod)?;
        mb();
        Ok(written)
    }

    /// Copy up to `want` bytes from the response ring into `into`; returns bytes read.
    fn copy_from_ring(
        ring: &SharedMemory,
        into: &mut [u8],
        cons: &mut u32,
        prod: u32,
    ) -> Result<usize, OutOfBounds> {
        let mut done = 0;
        while done < into.len() {
            let available = prod.wrapping_sub(*cons) as usize;
            if available == 0 {
                break;
            }
            let index = (*cons % RING) as usize;
            let n = (into.len() - done)
                .min(available)
                .min(XENSTORE_RING_SIZE - index);
            if let Some(dst) = into.get_mut(done..done + n) {
                ring.read_bytes(RSP + index, dst)?;
            }
            done += n;
            *cons = cons.wrapping_add(n as u32);
        }
        Ok(done)
    }

    /// Read response bytes; returns bytes read and whether a message completed.
    fn receive(
        &mut self,
        ring: &SharedMemory,
        out: &mut PollOutcome,
    ) -> Result<(usize, bool), OutOfBounds> {
        mb();
        let mut cons = ring.load_u32(RSP_CONS)?;
        let prod = ring.load_u32(RSP_PROD)?;
        mb();
        if prod.wrapping_sub(cons) > RING {
            self.corrupt(
                out,
                format_args!(
                    "STORE: response ring indices corrupt (cons {cons:#x} prod {prod:#x})"
                ),
            );
            return Ok((0, false));
        }
        let mut read = 0;
        let mut complete = false;
        if self.incoming.want.is_none() {
            let have = self.incoming.have;
            let n = Self::copy_from_ring(
                ring,
                self.incoming.header.get_mut(have..).unwrap_or(&mut []),
                &mut cons,
                prod,
            )?;
            self.incoming.have += n;
            read += n;
            if self.incoming.have == HEADER_SIZE {
                let h = &self.incoming.header;
                let word = |i: usize| {
                    let mut w = [0u8; 4];
                    w.copy_from_slice(h.get(i..i + 4).unwrap_or(&[0; 4]));
                    u32::from_le_bytes(w)
                };
                let (kind, len) = (XsdSockmsgType(word(0)), word(12) as usize);
                if !(handled(kind) || ignorable(kind)) || len > XENSTORE_PAYLOAD_MAX {
                    mb();
                    ring.store_u32(RSP_CONS, cons)?;
                    self.corrupt(
                        out,
                        format_args!(
                            "STORE: bad response header (type {:#x} len {len:#x})",
                            kind.0
                        ),
                    );
                    return Ok((read, false));
                }
                self.incoming.payload = Vec::new();
                if self.incoming.payload.try_reserve(len).is_err() {
                    mb();
                    ring.store_u32(RSP_CONS, cons)?;
                    self.corrupt(
                        out,
                        format_args!("STORE: no memory for a {len}-byte response"),
                    );
                    return Ok((read, false));
                }
                self.incoming.payload.resize(len, 0);
                self.incoming.want = Some(0);
            }
        }
        if let Some(got) = self.incoming.want {
            let n = Self::copy_from_ring(
                ring,
                self.incoming.payload.get_mut(got..).unwrap_or(&mut []),
                &mut cons,
                prod,
            )?;
            read += n;
            let got = got + n;
            self.incoming.want = Some(got);
            complete = got == self.incoming.payload.len();
        }
        mb();
        ring.store_u32(RSP_CONS, cons)?;
        mb();
        if complete {
            self.process(out);
        }
        Ok((read, complete))
    }

    /// Dispatch the assembled message.
    fn process(&mut self, out: &mut PollOutcome) {
        let incoming = core::mem::take(&mut self.incoming);
        let h = incoming.header;
        let word = |i: usize| {
            let mut w = [0u8; 4];
            w.copy_from_slice(h.get(i..i + 4).unwrap_or(&[0; 4]));
            u32::from_le_bytes(w)
        };
        let (kind, req_id) = (XsdSockmsgType(word(0)), word(4));
        self.unresponsive = false;
        if ignorable(kind) {
            warn(
                out,
                format_args!("STORE: IGNORING RESPONSE TYPE {:08X}", kind.0),
            );
            return;
        }
        if kind == XsdSockmsgType::WATCH_EVENT {
            self.watch_event(&incoming.payload, out);
            return;
        }
        let Some(i) = self.pending.iter().position(|p| p.req_id == req_id) else {
            warn(
                out,
                format_args!("STORE: SPURIOUS RESPONSE ID {req_id:08X}"),
            );
            return;
        };
        let pending = self.pending.swap_remove(i);
        if pending.abandoned {
            self.late_reply(pending, kind, &incoming.payload, out);
            return;
        }
        let request_kind = pending.kind;
        let result = if kind == request_kind || kind == XsdSockmsgType::ERROR {
            Ok(Response {
                kind,
                payload: incoming.payload,
            })
        } else {
            warn(
                out,
                format_args!(
                    "STORE: response type {:#x} does not match request type {:#x}",
                    kind.0, request_kind.0
                ),
            );
            Err(STATUS_UNSUCCESSFUL)
        };
        self.completed.push((req_id, result));
    }

    /// The reply to an abandoned request: dropped; what it did in xenstored is undone where
    /// the client can (a transaction it started is aborted, a watch it added is removed).
    fn late_reply(
        &mut self,
        request: Pending,
        kind: XsdSockmsgType,
        payload: &[u8],
        out: &mut PollOutcome,
    ) {
        warn(
            out,
            format_args!(
                "STORE: late reply (type {:#x}) to abandoned request {:08X} (type {:#x}) dropped",
                kind.0, request.req_id, request.kind.0
            ),
        );
        if kind != request.kind {
            return;
        }
        let undo = match kind {
            XsdSockmsgType::TRANSACTION_START => {
                let digits = payload.split(|b| *b == 0).next().unwrap_or(&[]);
                match core::str::from_utf8(digits)
                    .ok()
                    .and_then(|d| d.parse().ok())
                {
                    Some(id) if id != 0 => {
                        warn(out, format_args!("STORE: aborting its transaction {id}"));
                        self.queue(XsdSockmsgType::TRANSACTION_END, id, &[b"F\0"], true)
                    }
                    _ => return,
                }
            }
            XsdSockmsgType::WATCH => {
                let body = request.watch.get(HEADER_SIZE..).unwrap_or(&[]);
                warn(out, format_args!("STORE: removing the watch it added"));
                self.queue(XsdSockmsgType::UNWATCH, 0, &[body], true)
            }
            _ => return,
        };
        if let Err(e) = undo {
            warn(out, format_args!("STORE: clean-up not queued ({e:08X})"));
        }
    }

    fn watch_event(&mut self, payload: &[u8], out: &mut PollOutcome) {
        let Some((path, address, id)) = parse_watch_event(payload) else {
            warn(out, format_args!("STORE: malformed watch event ignored"));
            return;
        };
        let watch = self
            .watches
            .iter()
            .map(|w| &**w)
            .find(|w| w.id == id && *w as *const WatchRecord as usize as u64 == address);
        match watch {
            Some(w) if w.active => out.events.push(w.event),
            Some(_) => {}
            None => {
                let path = core::str::from_utf8(path).unwrap_or("?");
                warn(
                    out,
                    format_args!("STORE: SPURIOUS WATCH EVENT ({path}) FOR {address:016X}"),
                );
            }
        }
    }

    /// Move bytes both ways until neither ring moves, calling `notify` after each round
    /// that moved something.
    pub fn poll(&mut self, ring: &SharedMemory, notify: &mut dyn FnMut()) -> PollOutcome {
        let mut out = PollOutcome::default();
        if self.fault {
            return out;
        }
        loop {
            let written = match self.send(ring, &mut out) {
                Ok(n) => n,
                Err(e) => {
                    self.corrupt(&mut out, format_args!("STORE: ring access {e:?}"));
                    0
                }
            };
            if written != 0 {
                notify();
            }
            let read = match self.receive(ring, &mut out) {
                Ok((n, _)) => n,
                Err(e) => {
                    self.corrupt(&mut out, format_args!("STORE: ring access {e:?}"));
                    0
                }
            };
            if read != 0 {
                notify();
            }
            out.written += written;
            out.read += read;
            if (written == 0 && read == 0) || self.fault {
                break;
            }
        }
        out
    }

    /// Record a new transaction `id`; returns its handle.
    pub fn add_transaction(&mut self, id: u32) -> Result<TransactionHandle, NtStatus> {
        self.transactions
            .try_reserve(1)
            .map_err(|_| STATUS_NO_MEMORY)?;
        let record = Box::new(TransactionRecord { id, active: true });
        let handle = &*record as *const TransactionRecord as usize;
        self.transactions.push(record);
        Ok(handle)
    }

    /// Forget a transaction; false when the handle is unknown.
    pub fn remove_transaction(&mut self, handle: TransactionHandle) -> bool {
        let before = self.transactions.len();
        self.transactions
            .retain(|t| &**t as *const TransactionRecord as usize != handle);
        self.transactions.len() != before
    }

    /// Number of open transactions.
    pub fn transactions(&self) -> usize {
        self.transactions.len()
    }

    /// Create an active watch on `path` signalling `event`; returns (handle, token).
    pub fn add_watch(
        &mut self,
        path: Vec<u8>,
        event: usize,
    ) -> Result<(WatchHandle, [u8; TOKEN_LENGTH]), NtStatus> {
        self.watches.try_reserve(1).map_err(|_| STATUS_NO_MEMORY)?;
        let mut id = self.next_watch_id;
        while self.watches.iter().any(|w| w.id == id) {
            id = id.wrapping_add(1);
        }
        self.next_watch_id = id.wrapping_add(1);
        let record = Box::new(WatchRecord {
            id,
            path,
            event,
            active: true,
        });
        let handle = &*record as *const WatchRecord as usize;
        self.watches.push(record);
        Ok((handle, watch_token(handle, id)))
    }

    /// The path, token and active flag of a watch.
    pub fn watch(&self, handle: WatchHandle) -> Option<(Vec<u8>, [u8; TOKEN_LENGTH], bool)> {
        self.watches
            .iter()
            .find(|w| &***w as *const WatchRecord as usize == handle)
            .map(|w| (w.path.clone(), watch_token(handle, w.id), w.active))
    }

    /// Forget a watch; false when the handle is unknown.
    pub fn remove_watch(&mut self, handle: WatchHandle) -> bool {
        let before = self.watches.len();
        self.watches
            .retain(|w| &**w as *const WatchRecord as usize != handle);
        self.watches.len() != before
    }

    /// Number of registered watches.
    pub fn watches(&self) -> usize {
        self.watches.len()
    }

    /// The client's state, one line at a time (for the store's debug dump).
    fn dump(&self, out: &mut dyn FnMut(&str)) {
        let mut line = Line::new();
        let _ = write!(
            line,
            "STORE: submitted {} pending {} abandoned {} unresponsive {} faulted {}",
            self.submitted.len(),
            self.pending.len(),
            self.abandoned(),
            self.unresponsive,
            self.fault
        );
        out(line.as_str());
        for t in &self.transactions {
            let mut line = Line::new();
            let _ = write!(line, "STORE: transaction {} active {}", t.id, t.active);
            out(line.as_str());
        }
        for w in &self.watches {
            let mut line = Line::new();
            let path = core::str::from_utf8(&w.path).unwrap_or("?");
            let _ = write!(line, "STORE: watch {:04X} {path} active {}", w.id, w.active);
            out(line.as_str());
        }
    }

    /// EARLY suspend callback: every transaction and watch becomes inactive.
    pub fn suspend(&mut self) {
        for t in &mut self.transactions {
            t.active = false;
        }
        for w in &mut self.watches {
            w.active = false;
        }
    }

    /// LATE suspend callback: drop the partial response, fail what was outstanding, clear
    /// a fault; returns every watch's event (to be signalled so owners re-add them).
    pub fn resume(&mut self) -> Vec<usize> {
        self.incoming = Incoming::default();
        self.fail_all(STATUS_UNSUCCESSFUL);
        self.fault = false;
        self.unresponsive = false;
        self.watches.iter().map(|w| w.event).collect()
    }
}

/// The store event channel as the client needs it (EVTCHN Send/GetCount/Wait on the
/// channel opened from `HVM_PARAM_STORE_EVTCHN`).
pub trait StoreChannel: Send + Sync {
    /// Notify xenstored.
    fn notify(&self);
    /// Events received on the channel so far.
    fn count(&self) -> u32;
    /// Wait until [`StoreChannel::count`] reaches `count` (signed wrap-around) or
    /// `timeout_100ns` passes (`STATUS_TIMEOUT`).
    fn wait(&self, count: u32, timeout_100ns: u64) -> NtStatus;
}

/// The store channel as EVTCHN provides it: a FIXED channel on `HVM_PARAM_STORE_EVTCHN`
/// whose callback polls the store when nobody else is (upstream queues the store DPC).
pub struct EvtchnStoreChannel {
    evtchn: &'static crate::evtchn::Evtchn,
    handle: crate::evtchn::ChannelHandle,
}

/// The store channel's event callback.
struct StoreEvent(&'static Store);

impl crate::evtchn::EvtchnCallback for StoreEvent {
    fn call(&self) -> bool {
        self.0.poll_if_free();
        true
    }
}

impl EvtchnStoreChannel {
    /// Open the store channel (`HVM_PARAM_STORE_EVTCHN`, FIXED, unmasked with Force) with a
    /// callback polling `store`.
    pub fn open(
        api: &'static dyn XenApi,
        evtchn: &'static crate::evtchn::Evtchn,
        store: &'static Store,
    ) -> Result<Self, NtStatus> {
        let port = api.hvm_get_param(xen_include::xen::hvm::params::HvmParam::STORE_EVTCHN.0)?;
        let port = u32::try_from(port).map_err(|_| STATUS_UNSUCCESSFUL)?;
        let handle = evtchn.open(
            crate::evtchn::Kind::Fixed { port },
            false,
            alloc::sync::Arc::new(StoreEvent(store)),
        )?;
        let _ = evtchn.unmask(handle, false, true);
        Ok(Self { evtchn, handle })
    }

    /// Close the channel (FIXED: no hypercall).
    pub fn close(&self) {
        self.evtchn.close(self.handle);
    }
}

impl StoreChannel for EvtchnStoreChannel {
    fn notify(&self) {
        self.evtchn.send(self.handle);
    }
    fn count(&self) -> u32 {
        self.evtchn.channel(self.handle).map_or(0, |c| c.count())
    }
    fn wait(&self, count: u32, timeout_100ns: u64) -> NtStatus {
        let relative = i64::try_from(timeout_100ns).map_or(i64::MIN, |t| -t);
        self.evtchn
            .wait(self.handle, count, crate::evtchn::Timeout::Value(relative))
    }
}

impl<T: StoreChannel + ?Sized> StoreChannel for &'static T {
    fn notify(&self) {
        (**self).notify()
    }
    fn count(&self) -> u32 {
        (**self).count()
    }
    fn wait(&self, count: u32, timeout_100ns: u64) -> NtStatus {
        (**self).wait(count, timeout_100ns)
    }
}

impl<T: StoreChannel + ?Sized> StoreChannel for alloc::sync::Arc<T> {
    fn notify(&self) {
        (**self).notify()
    }
    fn count(&self) -> u32 {
        (**self).count()
    }
    fn wait(&self, count: u32, timeout_100ns: u64) -> NtStatus {
        (**self).wait(count, timeout_100ns)
    }
}

/// Ring positions seen by the watchdog.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingSnapshot {
    req_cons: u32,
    req_prod: u32,
    rsp_cons: u32,
    rsp_prod: u32,
}

struct Connection {
    ring: SharedMemory,
    channel: alloc::sync::Arc<dyn StoreChannel>,
}

struct State {
    client: StoreClient,
    connection: Option<Connection>,
    watchdog: Option<RingSnapshot>,
}

/// The state lock held through [`Store::lock`]: releasing it runs the poll a store event
/// asked for while it was held (see [`Store::poll_if_free`]). Fields drop in declaration
/// order: the lock is released first, then the check runs.
struct Locked<'a> {
    guard: SpinGuard<'a, State>,
    _after: AfterRelease<'a>,
}

struct AfterRelease<'a>(&'a Store);

impl Drop for AfterRelease<'_> {
    fn drop(&mut self) {
        fence(Ordering::SeqCst);
        if self.0.repoll.load(Ordering::SeqCst) {
            self.0.poll_if_free();
        }
    }
}

impl core::ops::Deref for Locked<'_> {
    type Target = State;
    fn deref(&self) -> &State {
        &self.guard
    }
}

impl core::ops::DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut State {
        &mut self.guard
    }
}

/// The STORE subsystem.
pub struct Store {
    api: &'static dyn XenApi,
    os: &'static dyn Os,
    /// Threads and DPCs (requests allocate under it); above DISPATCH_LEVEL only ever tried
    /// (the store event's poll, the resume's HIGH_LEVEL `suspend_early`, the debug dump),
    /// never spun on.
    state: SpinLock<State>,
    /// A store event found the lock taken: its holder polls when releasing it.
    repoll: AtomicBool,
    /// `suspend_early` found the lock taken: `resume_late` marks transactions and watches
    /// inactive instead.
    suspend_deferred: AtomicBool,
}

impl Store {
    /// A disconnected store; request and watch ids start from `seed`.
    pub fn new(api: &'static dyn XenApi, os: &'static dyn Os, seed: u32) -> Self {
        Self {
            api,
            os,
            state: SpinLock::new(State {
                client: StoreClient::new(seed),
                connection: None,
                watchdog: None,
            }),
            repoll: AtomicBool::new(false),
            suspend_deferred: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> Locked<'_> {
        Locked {
            guard: self.state.lock(),
            _after: AfterRelease(self),
        }
    }

    /// The store event's poll (upstream queues the store DPC, which takes the lock): never
    /// spins on the lock, as it may run inside the notification of a holder on this CPU.
    /// When the lock is taken, the event is recorded and the holder polls on release; the
    /// lock is tried once more after recording it, so a holder that released in between
    /// (and found nothing recorded) cannot leave the event unpolled.
    pub fn poll_if_free(&self) {
        loop {
            let guard = match self.state.try_lock() {
                Some(g) => g,
                None => {
                    self.repoll.store(true, Ordering::SeqCst);
                    fence(Ordering::SeqCst);
                    match self.state.try_lock() {
                        Some(g) => g,
                        None => return,
                    }
                }
            };
            self.repoll.store(false, Ordering::SeqCst);
            let mut guard = guard;
            let outcome = self.poll_locked(&mut guard);
            drop(guard);
            self.finish(outcome);
            fence(Ordering::SeqCst);
            if !self.repoll.load(Ordering::SeqCst) {
                return;
            }
        }
    }

    /// The XenApi edge (for logging by the interface shims).
    pub fn api(&self) -> &'static dyn XenApi {
        self.api
    }

    /// Attach the ring page and event channel (Acquire / after resume), then poll once.
    pub fn connect(&self, ring: SharedMemory, channel: alloc::sync::Arc<dyn StoreChannel>) {
        self.lock().connection = Some(Connection { ring, channel });
        self.poll();
    }

    /// First Acquire (spec §5.10): the ring page is the frame of grant entry 1
    /// (`XENBUS_GNTTAB_STORE_REFERENCE`, written by the toolstack), the channel is the
    /// FIXED store channel; both are attached and polled once.
    pub fn acquire(
        &'static self,
        gnttab: &crate::gnttab::Gnttab,
        evtchn: &'static crate::evtchn::Evtchn,
    ) -> Result<alloc::sync::Arc<EvtchnStoreChannel>, NtStatus> {
        let (frame, _) = gnttab.query_reference(STORE_REFERENCE)?;
        let ring = crate::shared::map_pfn(self.os, frame).ok_or(STATUS_UNSUCCESSFUL)?;
        let channel = alloc::sync::Arc::new(EvtchnStoreChannel::open(self.api, evtchn, self)?);
        self.connect(ring, channel.clone());
        Ok(channel)
    }

    /// Detach the ring (Release); outstanding requests fail.
    pub fn disconnect(&self) {
        let mut s = self.lock();
        s.connection = None;
        s.client.fail_all(STATUS_UNSUCCESSFUL);
    }

    /// True while a ring is attached.
    pub fn connected(&self) -> bool {
        self.lock().connection.is_some()
    }

    fn poll_locked(&self, s: &mut State) -> PollOutcome {
        let State {
            client, connection, ..
        } = s;
        match connection {
            Some(c) => {
                let channel = &c.channel;
                client.poll(&c.ring, &mut || channel.notify())
            }
            None => PollOutcome::default(),
        }
    }

    fn finish(&self, outcome: PollOutcome) {
        for w in &outcome.warnings {
            warning!(self.api, "{}", w.as_str());
        }
        for e in outcome.events {
            self.os.set_event(e);
        }
    }

    /// `StorePoll`: move the rings along and signal fired watches.
    pub fn poll(&self) {
        let _ = self.poll_moved();
    }

    /// The ring positions xenstored moves (request consumer, response producer).
    fn remote_position(&self) -> Option<(u32, u32)> {
        let s = self.lock();
        let ring = &s.connection.as_ref()?.ring;
        mb();
        Some((ring.load_u32(REQ_CONS).ok()?, ring.load_u32(RSP_PROD).ok()?))
    }

    /// [`Store::poll`]; true when bytes moved on either ring.
    fn poll_moved(&self) -> bool {
        let outcome = {
            let mut s = self.lock();
            self.poll_locked(&mut s)
        };
        let moved = outcome.written != 0 || outcome.read != 0;
        self.finish(outcome);
        moved
    }

    /// True after a request timed out until xenstored is heard from again.
    pub fn unresponsive(&self) -> bool {
        self.lock().client.unresponsive()
    }

    /// Abandoned requests whose late replies have not come yet.
    pub fn abandoned(&self) -> usize {
        self.lock().client.abandoned()
    }

    /// Submit one request and wait for its reply (spec §5.10 submission).
    ///
    /// Upstream (`StoreSubmitRequest`) waits on the store channel in 5 s periods, logs
    /// "TIMED OUT" after each and waits again, forever; its store watchdog thread kicks
    /// the channel every 15 s when a ring stalls. This wait is bounded instead — a
    /// deliberate difference: after each period without the reply the channel is notified
    /// again (a lost notification or a xenstored that needs another kick is recovered
    /// here, without the watchdog) and the rings are polled; after [`REQUEST_PERIODS`]
    /// quiet periods (30 s; counted, as each is a real relative wait, not measured by the
    /// wall clock a time sync may step; store events that come without the rings moving
    /// are bounded by the `Os` clock instead, a step back restarting the measure) — or
    /// [`UNRESPONSIVE_PERIODS`] while xenstored is unresponsive — the request fails with
    /// `STATUS_IO_TIMEOUT` and an ERROR line. A period in which either ring moved (bytes
    /// copied by this client, or xenstored's request consumer or response producer
    /// advanced) starts the count again: a slow but working xenstored is waited for. It is abandoned (see
    /// [`StoreClient::abandon`]): never written if it had not reached the ring, else its
    /// reply is dropped when it comes and its `req_id` is not reused before; a late
    /// TRANSACTION_START or WATCH success is undone. The outcome of a timed-out write,
    /// remove or transaction end is unknown to the caller.
    pub fn request(
        &self,
        kind: XsdSockmsgType,
        transaction: Option<TransactionHandle>,
        segments: &[&[u8]],
    ) -> Result<Response, NtStatus> {
        let (req_id, mut channel, mut count, periods, outcome) = {
            let mut s = self.lock();
            let Some(channel) = s.connection.as_ref().map(|c| c.channel.clone()) else {
                return Err(STATUS_UNSUCCESSFUL);
            };
            let tx_id = s.client.tx_id(transaction)?;
            let req_id = match s.client.submit(kind, tx_id, segments) {
                Ok(id) => id,
                Err(e) if e == STATUS_INSUFFICIENT_RESOURCES => {
                    drop(s);
                    error!(
                        self.api,
                        "STORE: {ABANDONED_MAX} abandoned requests still await replies; refused"
                    );
                    return Err(e);
                }
                Err(e) => return Err(e),
            };
            let periods = if s.client.unresponsive() {
                UNRESPONSIVE_PERIODS
            } else {
                REQUEST_PERIODS
            };
            let count = channel.count();
            let outcome = self.poll_locked(&mut s);
            (req_id, channel, count, periods, outcome)
        };
        self.finish(outcome);
        if let Some(result) = self.lock().client.take(req_id) {
            return result;
        }
        let limit = u64::from(periods) * POLL_PERIOD_100NS;
        let mut since = self.os.system_time();
        let mut idle = 0;
        let mut remote = self.remote_position();
        loop {
            let status = channel.wait(count.wrapping_add(1), POLL_PERIOD_100NS);
            // The channel is re-opened at resume: always wait on the current one.
            if let Some(c) = self.lock().connection.as_ref() {
                channel = c.channel.clone();
            }
            count = channel.count();
            let moved = self.poll_moved();
            if let Some(result) = self.lock().client.take(req_id) {
                return result;
            }
            let now = self.remote_position();
            if moved || now != remote {
                // The rings move (xenstored consuming a long request, other replies
                // coming in): not stuck.
                remote = now;
                idle = 0;
                since = self.os.system_time();
                continue;
            }
            if status == STATUS_SUCCESS {
                // Store events without the rings moving: only the clock bounds these. It is
                // the wall clock, which may be set back (time sync, after a resume): a
                // step back restarts the measure instead of reading as an endless wait.
                let now = self.os.system_time();
                if now < since {
                    since = now;
                }
                let elapsed = now.saturating_sub(since) as u64;
                if elapsed >= limit {
                    return self.time_out(req_id, kind, elapsed / 10_000_000);
                }
                continue;
            }
            // A quiet period is a real POLL_PERIOD wait (relative timeouts run on the
            // interrupt clock): counted, not measured by the wall clock, which a time
            // sync may step forward or back by any amount meanwhile.
            idle += 1;
            if idle >= periods {
                return self.time_out(req_id, kind, self.waited(idle, since));
            }
            warning!(
                self.api,
                "STORE: TIMED OUT (request {req_id:08X}, period {idle}/{periods}); notifying again"
            );
            channel.notify();
        }
    }

    /// Seconds a request has waited without the rings moving: its quiet periods, or the
    /// clock since the rings last moved when that is longer (store events came between).
    fn waited(&self, idle: u32, since: i64) -> u64 {
        let periods = u64::from(idle) * POLL_PERIOD_100NS;
        let clock = self.os.system_time().saturating_sub(since).max(0) as u64;
        periods.max(clock.min(u64::from(REQUEST_PERIODS) * POLL_PERIOD_100NS)) / 10_000_000
    }

    /// The end of a request's bounded wait: a last poll, then its reply if it just came,
    /// else abandon it and fail with `STATUS_IO_TIMEOUT`.
    fn time_out(
        &self,
        req_id: u32,
        kind: XsdSockmsgType,
        seconds: u64,
    ) -> Result<Response, NtStatus> {
        let (result, abandoned, outcome) = {
            let mut s = self.lock();
            let outcome = self.poll_locked(&mut s);
            match s.client.take(req_id) {
                Some(r) => (Some(r), Abandoned::Unknown, outcome),
                None => (None, s.client.abandon(req_id), outcome),
            }
        };
        self.finish(outcome);
        if let Some(r) = result {
            return r;
        }
        error!(
            self.api,
            "STORE: request {req_id:08X} (type {:#x}) got no reply in {seconds} s; abandoned ({abandoned:?})",
            kind.0
        );
        self.log_state();
        Err(STATUS_IO_TIMEOUT)
    }

    /// `StoreRead`: the value of `Prefix/Node`.
    pub fn read(
        &self,
        transaction: Option<TransactionHandle>,
        prefix: Option<&[u8]>,
        node: &[u8],
    ) -> Result<Vec<u8>, NtStatus> {
        let key = make_key(prefix, node)?;
        let r = self.request(XsdSockmsgType::READ, transaction, &[&key, b"\0"])?;
        r.check()?;
        Ok(r.payload)
    }

    /// `StorePrintf` once formatted: write `value` (at most [`PRINTF_MAX`] bytes) to
    /// `Prefix/Node`.
    pub fn printf(
        &self,
        transaction: Option<TransactionHandle>,
        prefix: Option<&[u8]>,
        node: &[u8],
        value: &[u8],
    ) -> Result<(), NtStatus> {
        if value.len() > PRINTF_MAX {
            return Err(STATUS_INVALID_BUFFER_SIZE);
        }
        self.write(transaction, prefix, node, value)
    }

    /// Write `value` (not NUL-terminated on the wire) to `Prefix/Node`.
    pub fn write(
        &self,
        transaction: Option<TransactionHandle>,
        prefix: Option<&[u8]>,
        node: &[u8],
        value: &[u8],
    ) -> Result<(), NtStatus> {
        let key = make_key(prefix, node)?;
        self.request(XsdSockmsgType::WRITE, transaction, &[&key, b"\0", value])?
            .check()
    }

    /// `StoreRemove`.
    pub fn remove(
        &self,
        transaction: Option<TransactionHandle>,
        prefix: Option<&[u8]>,
        node: &[u8],
    ) -> Result<(), NtStatus> {
        let key = make_key(prefix, node)?;
        self.request(XsdSockmsgType::RM, transaction, &[&key, b"\0"])?
            .check()
    }

    /// `StoreDirectory`: the children as NUL-separated names (each NUL-terminated); an
    /// empty listing is `STATUS_OBJECT_PATH_NOT_FOUND`.
    pub fn directory(
        &self,
        transaction: Option<TransactionHandle>,
        prefix: Option<&[u8]>,
        node: &[u8],
    ) -> Result<Vec<u8>, NtStatus> {
        let key = make_key(prefix, node)?;
        let r = self.request(XsdSockmsgType::DIRECTORY, transaction, &[&key, b"\0"])?;
        r.check()?;
        if r.payload.is_empty() {
            return Err(STATUS_OBJECT_PATH_NOT_FOUND);
        }
        Ok(r.payload)
    }

    /// `StorePermissionsSet`.
    pub fn permissions_set(
        &self,
        transaction: Option<TransactionHandle>,
        prefix: Option<&[u8]>,
        node: &[u8],
        permissions: &[StorePermission],
    ) -> Result<(), NtStatus> {
        let key = make_key(prefix, node)?;
        let perms = encode_permissions(permissions)?;
        self.request(
            XsdSockmsgType::SET_PERMS,
            transaction,
            &[&key, b"\0", &perms],
        )?
        .check()
    }

    /// `StoreTransactionStart`.
    pub fn transaction_start(&self) -> Result<TransactionHandle, NtStatus> {
        let r = self.request(XsdSockmsgType::TRANSACTION_START, None, &[b"\0"])?;
        r.check()?;
        let digits = r.payload.split(|b| *b == 0).next().unwrap_or(&[]);
        let id = core::str::from_utf8(digits)
            .ok()
            .and_then(|s| s.parse::<u32>().ok())
            .filter(|id| *id != 0);
        let Some(id) = id else {
            error!(
                self.api,
                "STORE: bad transaction id in TRANSACTION_START reply"
            );
            return Err(STATUS_UNSUCCESSFUL);
        };
        self.lock().client.add_transaction(id)
    }

    /// `StoreTransactionEnd`: `STATUS_RETRY` when xenstored saw a conflict (EAGAIN) or a
    /// suspend invalidated the transaction; the handle is freed in every case.
    pub fn transaction_end(&self, handle: TransactionHandle, commit: bool) -> Result<(), NtStatus> {
        let active = {
            let s = self.lock();
            match s.client.transaction(handle) {
                Some(t) => t.active,
                None => return Err(STATUS_INVALID_PARAMETER),
            }
        };
        let result = if active {
            let payload: &[u8] = if commit { b"T\0" } else { b"F\0" };
            self.request(XsdSockmsgType::TRANSACTION_END, Some(handle), &[payload])
                .and_then(|r| r.check())
        } else {
            Err(STATUS_RETRY)
        };
        self.lock().client.remove_transaction(handle);
        result
    }

    /// `StoreWatchAdd`: watch `Prefix/Node`, signalling `event` on every change (and once
    /// immediately, as xenstored fires each new watch).
    pub fn watch_add(
        &self,
        prefix: Option<&[u8]>,
        node: &[u8],
        event: usize,
    ) -> Result<WatchHandle, NtStatus> {
        let key = make_key(prefix, node)?;
        let (handle, token) = self.lock().client.add_watch(key.clone(), event)?;
        let result = self
            .request(XsdSockmsgType::WATCH, None, &[&key, b"\0", &token, b"\0"])
            .and_then(|r| r.check());
        match result {
            Ok(()) => Ok(handle),
            Err(e) => {
                self.lock().client.remove_watch(handle);
                Err(e)
            }
        }
    }

    /// `StoreWatchRemove`: UNWATCH (only for an active watch) then forget it.
    pub fn watch_remove(&self, handle: WatchHandle) -> Result<(), NtStatus> {
        let Some((path, token, active)) = self.lock().client.watch(handle) else {
            return Err(STATUS_INVALID_PARAMETER);
        };
        let result = if active {
            self.request(
                XsdSockmsgType::UNWATCH,
                None,
                &[&path, b"\0", &token, b"\0"],
            )
            .and_then(|r| r.check())
        } else {
            Ok(())
        };
        self.lock().client.remove_watch(handle);
        if let Err(e) = result {
            warning!(self.api, "STORE: UNWATCH failed ({e:08X})");
        }
        result
    }

    /// Open transactions and watches (must be zero at the last Release).
    pub fn outstanding(&self) -> (usize, usize) {
        let s = self.lock();
        (s.client.transactions(), s.client.watches())
    }

    /// EARLY suspend callback (HIGH_LEVEL, every other processor captured at
    /// DISPATCH_LEVEL): mark transactions and watches inactive. It neither spins on the
    /// state lock nor polls when letting it go (a poll notifies xenstored, allocates and
    /// sets events, none allowed at HIGH_LEVEL; a recorded store event waits for the next
    /// release at or below DISPATCH_LEVEL): the lock is only tried, which succeeds here
    /// since no captured processor can hold it; if it ever does not, the marking is left to
    /// [`Store::resume_late`] (nothing runs between the two phases).
    pub fn suspend_early(&self) {
        match self.state.try_lock() {
            Some(mut s) => s.client.suspend(),
            None => {
                self.suspend_deferred.store(true, Ordering::SeqCst);
                warning!(
                    self.api,
                    "STORE: busy at suspend: transactions and watches marked inactive at resume"
                );
            }
        }
    }

    /// LATE suspend callback: reset the stream, re-attach (the channel was re-opened by
    /// the caller) and signal every watch event so owners re-add their watches.
    pub fn resume_late(&self, ring: SharedMemory, channel: alloc::sync::Arc<dyn StoreChannel>) {
        let events = {
            let mut s = self.lock();
            if self.suspend_deferred.swap(false, Ordering::SeqCst) {
                s.client.suspend();
            }
            s.connection = Some(Connection { ring, channel });
            s.watchdog = None;
            s.client.resume()
        };
        for e in events {
            self.os.set_event(e);
        }
        self.poll();
    }

    /// Upstream's `StoreDebugCallback`: the ring indices (not when `crashing`: the ring is
    /// the other side's memory), the requests, transactions and watches, one line at a
    /// time. Never spins on the lock (it may run at bug check with the lock held) and does
    /// not allocate.
    pub fn debug_dump(&self, crashing: bool, out: &mut dyn FnMut(&str)) {
        let Some(s) = self.state.try_lock() else {
            out("STORE: busy");
            return;
        };
        match s.connection.as_ref() {
            None => out("STORE: disconnected"),
            Some(c) if !crashing => {
                let word = |o| c.ring.load_u32(o).unwrap_or(0);
                let mut line = Line::new();
                let _ = write!(
                    line,
                    "STORE: req_cons = {:08x} req_prod = {:08x} rsp_cons = {:08x} rsp_prod = {:08x}",
                    word(REQ_CONS),
                    word(REQ_PROD),
                    word(RSP_CONS),
                    word(RSP_PROD)
                );
                out(line.as_str());
            }
            Some(_) => {}
        }
        s.client.dump(out);
    }

    /// [`Store::debug_dump`] to the log (the watchdog's and a timed-out request's
    /// diagnostics, where upstream triggers its debug callback).
    fn log_state(&self) {
        self.debug_dump(false, &mut |l| warning!(self.api, "{l}"));
    }

    /// One watchdog period (15 s): if either ring's producer moved while its consumer did
    /// not since the last tick, kick the channel and poll. Returns true when it kicked.
    pub fn watchdog_tick(&self) -> bool {
        let stalled = {
            let mut s = self.lock();
            let Some(c) = s.connection.as_ref() else {
                return false;
            };
            let now = RingSnapshot {
                req_cons: c.ring.load_u32(REQ_CONS).unwrap_or(0),
                req_prod: c.ring.load_u32(REQ_PROD).unwrap_or(0),
                rsp_cons: c.ring.load_u32(RSP_CONS).unwrap_or(0),
                rsp_prod: c.ring.load_u32(RSP_PROD).unwrap_or(0),
            };
            // As upstream: the first tick compares against zeros, so a ring already stalled
            // when the watchdog starts is kicked too.
            let stalled = {
                let then = s.watchdog.unwrap_or_default();
                let req = now.req_prod != now.req_cons
                    && now.req_prod != then.req_prod
                    && now.req_cons == then.req_cons;
                let rsp = now.rsp_prod != now.rsp_cons
                    && now.rsp_prod != then.rsp_prod
                    && now.rsp_cons == then.rsp_cons;
                req || rsp
            };
            s.watchdog = Some(now);
            if stalled {
                if let Some(c) = s.connection.as_ref() {
                    c.channel.notify();
                }
            }
            stalled
        };
        if stalled {
            warning!(self.api, "STORE: ring stalled, kicking");
            self.log_state();
            self.poll();
        }
        stalled
    }
}

#[cfg(test)]
#[path = "store_tests.rs"]
pub(crate) mod tests;

#[cfg(test)]
#[path = "store_sim_tests.rs"]
mod sim_tests;
