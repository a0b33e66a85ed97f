//! A model of the C xenstored (Xen 4.17): node tree, permissions, watches, transactions,
//! quotas and domain connections, served over the shared ring page or a Unix socket.
//!
//! The engine is sans-IO: requests come in as [`wire::Message`]s on a [`ConnId`] and the
//! replies and watch events are queued per connection. [`ring`] moves bytes between a guest's
//! `xenstore_domain_interface` page and the engine; [`socket`] serves the Unix-socket protocol.
//! Behaviour follows the real daemon, request by request, including its error choices, the
//! generation counts visible in `XS_DIRECTORY_PART`, and the node-ownership accounting that
//! drives the quotas; `sim/tests/xenstored_conformance.rs` checks it against the real one.
#![forbid(unsafe_code)]

pub mod ring;
pub mod socket;
pub mod wire;

pub mod abi;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use abi as xs;
pub use wire::{Errno, Message};

/// Identifies one connection (a socket client or a domain's ring).
pub type ConnId = u32;

/// Generation of a node that does not exist.
const NO_GENERATION: u64 = u64::MAX;
/// `sizeof(struct xs_tdb_record_hdr)`: the per-node overhead counted by the node-size quota.
const NODE_HDR_SIZE: usize = 24;
/// `sizeof(struct xs_permissions)`.
const PERM_SIZE: usize = 8;
/// Domain id of the control domain (and of the privileged domain).
const DOM0: u32 = 0;

/// Per-domain limits (the C daemon's hard quotas); they apply to unprivileged domains only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quotas {
    /// Nodes a domain may own (`-E`, default 1000).
    pub nodes: u32,
    /// Watches per domain (`-W`, default 128).
    pub watches: u32,
    /// Concurrent transactions per domain (`-t`, default 10).
    pub transactions: u32,
    /// Bytes of one node: header, permissions, data and child names (`-S`, default 2048).
    pub node_size: u32,
    /// Permission entries per node (`-A`, default 5).
    pub perms: u32,
    /// Path length below the domain's home (`-M`, default 2048).
    pub path_len: u32,
    /// Nodes accessed by one transaction (`-Q transaction-nodes=`, default 1024).
    pub transaction_nodes: u32,
}

impl Default for Quotas {
    fn default() -> Self {
        Self {
            nodes: 1000,
            watches: 128,
            transactions: 10,
            node_size: 2048,
            perms: 5,
            path_len: xs::XENSTORE_REL_PATH_MAX as u32,
            transaction_nodes: 1024,
        }
    }
}

/// Daemon configuration.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// Hard quotas.
    pub quotas: Quotas,
    /// Keep (re-own to dom0) rather than delete the nodes of a released domain (`-K`).
    pub keep_orphans: bool,
}

/// One permission entry of a node: a domain and what it may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Perm {
    /// `XS_PERM_*` bits.
    pub perms: u32,
    /// Domain id.
    pub id: u32,
}

impl Perm {
    /// The wire form (`r1`, `b0`, `n5`, `w3`).
    pub fn to_wire(self) -> Option<String> {
        let letter = match self.perms & !xs::XS_PERM_IGNORE {
            x if x == xs::XS_PERM_WRITE => 'w',
            x if x == xs::XS_PERM_READ => 'r',
            x if x == xs::XS_PERM_READ | xs::XS_PERM_WRITE => 'b',
            x if x == xs::XS_PERM_NONE => 'n',
            _ => return None,
        };
        Some(format!("{letter}{}", self.id as i32))
    }
}

/// A node as stored: generation, permissions, data, and its child names NUL-separated.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Node {
    generation: u64,
    perms: Vec<Perm>,
    data: Vec<u8>,
    children: Vec<u8>,
}

impl Node {
    fn owner(&self) -> u32 {
        self.perms.first().map_or(DOM0, |p| p.id)
    }

    fn acc_size(&self) -> usize {
        NODE_HDR_SIZE + self.perms.len() * PERM_SIZE + self.data.len() + self.children.len()
    }

    fn child_names(&self) -> Vec<String> {
        self.children
            .split(|&b| b == 0)
            .filter(|s| !s.is_empty())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect()
    }
}

#[derive(Clone, Debug)]
struct Watch {
    node: String,
    token: String,
    relative_path: Option<String>,
}

/// A node touched by a transaction (`struct accessed_node`).
#[derive(Clone, Debug)]
struct Accessed {
    name: String,
    generation: u64,
    perms: Option<Vec<Perm>>,
    check_gen: bool,
    modified: bool,
    /// The transaction's copy of the node (`ta_node`); `None`: absent in the transaction.
    value: Option<Node>,
    fire_watch: bool,
    watch_exact: bool,
}

#[derive(Clone, Debug)]
struct Transaction {
    id: u32,
    accessed: Vec<Accessed>,
    changed_domains: Vec<(u32, i64)>,
    node_created: bool,
    fail: bool,
}

impl Transaction {
    fn find(&self, name: &str) -> Option<usize> {
        self.accessed.iter().position(|a| a.name == name)
    }
}

/// How a connection reaches the daemon.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnKind {
    /// A client of the Unix socket (privileged, domain 0).
    Socket,
    /// A domain's shared ring.
    Domain(u32),
}

/// What [`Xenstored::connection_state`] reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionState {
    /// Registered watches as (path as given, token).
    pub watches: Vec<(String, String)>,
    /// Open transaction ids.
    pub transactions: Vec<u32>,
}

#[derive(Debug)]
struct Connection {
    id: u32,
    kind: ConnKind,
    watches: Vec<Watch>,
    transactions: Vec<Transaction>,
    next_transaction_id: u32,
    out: VecDeque<Vec<u8>>,
    ignored: Option<u32>,
    target: Option<u32>,
    decoder: wire::Decoder,
}

impl Connection {
    fn new(id: u32, kind: ConnKind) -> Self {
        Self {
            id,
            kind,
            watches: Vec::new(),
            transactions: Vec::new(),
            next_transaction_id: 0,
            out: VecDeque::new(),
            ignored: None,
            target: None,
            decoder: wire::Decoder::default(),
        }
    }
}

/// What the daemon knows about a domain (`struct domain`).
#[derive(Clone, Debug)]
struct Domain {
    generation: u64,
    introduced: bool,
    conn: Option<ConnId>,
    port: u32,
    mfn: u64,
    nodes: i64,
    nbwatch: u32,
}

/// Node access kinds (`enum node_access_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Access {
    Read,
    Write,
    Delete,
}

/// Where an access landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Landed {
    Global,
    Transaction,
    NothingToDelete,
}

/// The connection and transaction a store operation acts for (`conn`, `conn->transaction`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Ctx {
    conn: Option<ConnId>,
    tx: Option<u32>,
}

impl Ctx {
    const INTERNAL: Ctx = Ctx {
        conn: None,
        tx: None,
    };
}

/// A change that happened in the store, for observers (toolstack, backends, tests).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreEvent {
    /// A domain was introduced.
    Introduced(u32),
    /// A domain was released.
    Released(u32),
}

/// The xenstored model.
#[derive(Debug)]
pub struct Xenstored {
    config: Config,
    nodes: HashMap<String, Node>,
    conns: BTreeMap<ConnId, Connection>,
    next_conn: ConnId,
    domains: BTreeMap<u32, Domain>,
    existing: BTreeSet<u32>,
    generation: u64,
    /// Per-request accounting changes (`conn->acc_list`), committed with the reply.
    acc_list: Vec<(u32, i64)>,
    events: Vec<StoreEvent>,
    /// Connections whose output queue grew since the last [`Xenstored::take_dirty`].
    dirty: BTreeSet<ConnId>,
    /// Domains whose ring indices must be zeroed at the next ring pass (re-introduction).
    reset_rings: BTreeSet<u32>,
    /// Permissions of the special watch paths `@releaseDomain` and `@introduceDomain`.
    special_perms: BTreeMap<&'static str, Vec<Perm>>,
    /// The C daemon's `errno` as left by the last failing step: requests whose argument is
    /// malformed (no single NUL-terminated string) are answered with it.
    errno: Errno,
    /// Injected faults.
    faults: Faults,
    /// Domains whose ring connection got output since the last [`Xenstored::take_ring_kicks`].
    ring_dirty: BTreeSet<u32>,
    /// Who serves each domain's ring (called to push queued output promptly).
    ring_kickers: Kickers,
}

/// The registered ring kickers.
#[derive(Default)]
struct Kickers(BTreeMap<u32, RingKicker>);

impl std::fmt::Debug for Kickers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

/// Serves a domain's ring when xenstored has output for it (e.g. a watch event caused by
/// another connection); called without the store lock held.
pub type RingKicker = std::sync::Arc<dyn Fn() + Send + Sync>;

impl std::fmt::Debug for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Faults")
            .field("eagain_commits", &self.eagain_commits)
            .field("ring_delay", &self.ring_delay)
            .finish()
    }
}

/// Faults the simulator can inject (not behaviour of the real daemon).
#[derive(Clone, Default)]
struct Faults {
    /// Commits still to fail with `EAGAIN`, and the domain they are limited to.
    eagain_commits: u32,
    eagain_domain: Option<u32>,
    /// Ring passes replies are held back for ("a slow xenstored").
    ring_delay: u32,
    /// Passes already waited, per domain.
    ring_waited: BTreeMap<u32, u32>,
}

impl Default for Xenstored {
    fn default() -> Self {
        Self::new(Config::default())
    }
}

fn is_child(child: &str, parent: &str) -> bool {
    if parent == "/" {
        return true;
    }
    child.starts_with(parent) && matches!(child.as_bytes().get(parent.len()), None | Some(b'/'))
}

fn get_parent(name: &str) -> String {
    match name.get(1..).and_then(|rest| rest.rfind('/')) {
        Some(pos) => name[..pos + 1].to_string(),
        None => "/".to_string(),
    }
}

fn basename(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

fn valid_chars(path: &[u8]) -> bool {
    path.iter()
        .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'/' | b'_' | b'@'))
}

/// `sscanf(name, "/local/domain/%5u/%n")`: the offset just past the domain home, else 0.
fn local_offset(name: &str) -> usize {
    let Some(rest) = name.strip_prefix("/local/domain/") else {
        return 0;
    };
    let digits = rest
        .bytes()
        .take(5)
        .take_while(|c| c.is_ascii_digit())
        .count();
    if digits == 0 || rest.as_bytes().get(digits) != Some(&b'/') {
        return 0;
    }
    "/local/domain/".len() + digits + 1
}

fn child_name(parent: &str, child: &str) -> String {
    if parent == "/" {
        format!("/{child}")
    } else {
        format!("{parent}/{child}")
    }
}

fn domain_path(domid: u32) -> String {
    format!("/local/domain/{domid}")
}

impl Xenstored {
    /// A daemon after start-up: `/`, `/tool`, `/tool/xenstored`, the special nodes, and dom0
    /// introduced.
    pub fn new(config: Config) -> Self {
        let mut me = Self {
            config,
            nodes: HashMap::new(),
            conns: BTreeMap::new(),
            next_conn: 1,
            domains: BTreeMap::new(),
            existing: BTreeSet::from([DOM0]),
            generation: 0,
            acc_list: Vec::new(),
            events: Vec::new(),
            dirty: BTreeSet::new(),
            reset_rings: BTreeSet::new(),
            special_perms: BTreeMap::new(),
            errno: Errno::ENOENT,
            faults: Faults::default(),
            ring_dirty: BTreeSet::new(),
            ring_kickers: Kickers::default(),
        };
        for special in ["@releaseDomain", "@introduceDomain"] {
            me.special_perms.insert(
                special,
                vec![Perm {
                    perms: xs::XS_PERM_NONE,
                    id: DOM0,
                }],
            );
        }
        me.alloc_domain(DOM0);
        for (name, child) in [
            ("/", Some("tool")),
            ("/tool", Some("xenstored")),
            ("/tool/xenstored", None),
        ] {
            me.generation += 1;
            let mut children = Vec::new();
            if let Some(c) = child {
                children.extend_from_slice(c.as_bytes());
                children.push(0);
            }
            me.nodes.insert(
                name.to_string(),
                Node {
                    generation: me.generation,
                    perms: vec![Perm {
                        perms: xs::XS_PERM_NONE,
                        id: DOM0,
                    }],
                    data: Vec::new(),
                    children,
                },
            );
        }
        if let Some(d) = me.domains.get_mut(&DOM0) {
            d.nodes += 3;
        }
        // dom0's own ring connection exists from start-up (its domain is the "master").
        let conn = me.new_connection(DOM0, ConnKind::Domain(DOM0));
        if let Some(d) = me.domains.get_mut(&DOM0) {
            d.introduced = true;
            d.conn = Some(conn);
        }
        me
    }

    // ----- connections and domains (the toolstack-facing API) -----

    fn new_connection(&mut self, id: u32, kind: ConnKind) -> ConnId {
        let cid = self.next_conn;
        self.next_conn += 1;
        self.conns.insert(cid, Connection::new(id, kind));
        cid
    }

    /// Opens a privileged socket connection (what a client of the Unix socket gets).
    pub fn connect_socket(&mut self) -> ConnId {
        self.new_connection(DOM0, ConnKind::Socket)
    }

    /// Closes a connection: its watches and transactions go away.
    pub fn disconnect(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.remove(&conn) {
            if let ConnKind::Domain(domid) = c.kind {
                if let Some(d) = self.domains.get_mut(&domid) {
                    d.conn = None;
                    d.nbwatch = 0;
                }
            }
        }
    }

    /// Tells the daemon a domain exists (created by the toolstack) or no longer does.
    /// xenstored only accounts nodes to, and honours permissions of, existing domains.
    pub fn set_domain_exists(&mut self, domid: u32, exists: bool) {
        if exists {
            self.existing.insert(domid);
        } else if domid != DOM0 {
            self.existing.remove(&domid);
        }
    }

    /// The ring connection of an introduced domain.
    pub fn domain_connection(&self, domid: u32) -> Option<ConnId> {
        self.domains
            .get(&domid)
            .filter(|d| d.introduced)
            .and_then(|d| d.conn)
    }

    /// The event channel port xenstored bound for an introduced domain (the port the
    /// toolstack named in `XS_INTRODUCE`).
    pub fn domain_port(&self, domid: u32) -> Option<u32> {
        self.domains
            .get(&domid)
            .filter(|d| d.introduced)
            .map(|d| d.port)
    }

    /// Watches registered by a connection and its open transaction ids.
    pub fn connection_state(&self, conn: ConnId) -> Option<ConnectionState> {
        self.conns.get(&conn).map(|c| ConnectionState {
            watches: c
                .watches
                .iter()
                .map(|w| {
                    let path = w.relative_path.as_ref().unwrap_or(&w.node);
                    (path.clone(), w.token.clone())
                })
                .collect(),
            transactions: c.transactions.iter().map(|t| t.id).collect(),
        })
    }

    /// Whether a connection has been cut off after a protocol error, and why
    /// (`XENSTORE_ERROR_*`).
    pub fn connection_error(&self, conn: ConnId) -> Option<u32> {
        self.conns.get(&conn).and_then(|c| c.ignored)
    }

    /// Fault injection: the next `count` transaction commits (of `domain`'s ring only, or
    /// of any connection) fail with `EAGAIN` after discarding the transaction, as a
    /// conflicting writer would make them.
    pub fn inject_commit_eagain(&mut self, count: u32, domain: Option<u32>) {
        self.faults.eagain_commits = count;
        self.faults.eagain_domain = domain;
    }

    /// Fault injection: a slow xenstored. Replies on a ring are written only every
    /// `passes + 1`-th call of [`Xenstored::process_ring`] for that domain, so a guest sees
    /// them late and must keep kicking / polling. 0 restores prompt replies.
    pub fn set_ring_delay(&mut self, passes: u32) {
        self.faults.ring_delay = passes;
        self.faults.ring_waited.clear();
    }

    /// Whether a ring pass for `domid` may write replies now (advances the slow-reply
    /// fault's counter).
    fn ring_may_write(&mut self, domid: u32) -> bool {
        if self.faults.ring_delay == 0 {
            return true;
        }
        let waited = self.faults.ring_waited.entry(domid).or_insert(0);
        if *waited >= self.faults.ring_delay {
            *waited = 0;
            true
        } else {
            *waited += 1;
            false
        }
    }

    /// Drains the store events (introductions, releases) since the last call.
    pub fn take_events(&mut self) -> Vec<StoreEvent> {
        std::mem::take(&mut self.events)
    }

    /// Connections whose output grew since the last call (so a transport can flush them).
    pub fn take_dirty(&mut self) -> Vec<ConnId> {
        std::mem::take(&mut self.dirty).into_iter().collect()
    }

    /// Takes the next queued outgoing message of a connection (encoded).
    pub fn pop_output(&mut self, conn: ConnId) -> Option<Vec<u8>> {
        self.conns.get_mut(&conn)?.out.pop_front()
    }

    /// Puts back a message a transport could not send entirely (its unsent tail).
    pub fn push_front_output(&mut self, conn: ConnId, bytes: Vec<u8>) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.out.push_front(bytes);
        }
    }

    /// Whether a connection has output queued.
    pub fn has_output(&self, conn: ConnId) -> bool {
        self.conns.get(&conn).is_some_and(|c| !c.out.is_empty())
    }

    /// Feeds stream bytes (socket) to a connection and processes every complete request.
    /// An oversized header cuts the connection off (`Err`), as the C daemon drops it.
    pub fn feed(&mut self, conn: ConnId, bytes: &[u8]) -> Result<(), wire::DecodeError> {
        let result = self.feed_bytes(conn, bytes);
        if result.is_err() {
            self.ignore_connection(conn, xs::XENSTORE_ERROR_PROTO);
        }
        result
    }

    /// Appends received bytes to a connection's input and handles every complete request.
    fn feed_bytes(&mut self, conn: ConnId, bytes: &[u8]) -> Result<(), wire::DecodeError> {
        let Some(c) = self.conns.get_mut(&conn) else {
            return Ok(());
        };
        c.decoder.push(bytes);
        loop {
            let next = match self.conns.get_mut(&conn) {
                Some(c) if c.ignored.is_none() => c.decoder.next_message()?,
                _ => return Ok(()),
            };
            match next {
                Some(msg) => self.handle(conn, &msg),
                None => return Ok(()),
            }
        }
    }

    /// Convenience for tests and the toolstack: handles one request on a connection and
    /// returns everything queued on it (the reply and any watch events), decoded.
    pub fn request(&mut self, conn: ConnId, msg: &Message) -> Vec<Message> {
        self.handle(conn, msg);
        self.drain(conn)
    }

    /// Decodes and removes every queued message of a connection.
    pub fn drain(&mut self, conn: ConnId) -> Vec<Message> {
        let mut out = Vec::new();
        while let Some(bytes) = self.pop_output(conn) {
            let mut dec = wire::Decoder::default();
            dec.push(&bytes);
            if let Ok(Some(m)) = dec.next_message() {
                out.push(m);
            }
        }
        out
    }

    fn ignore_connection(&mut self, conn: ConnId, err: u32) {
        let socket = matches!(
            self.conns.get(&conn).map(|c| c.kind),
            Some(ConnKind::Socket)
        );
        if socket {
            self.disconnect(conn);
            return;
        }
        let domid = match self.conns.get_mut(&conn) {
            Some(c) => {
                c.ignored = Some(err);
                c.watches.clear();
                c.transactions.clear();
                c.out.clear();
                c.id
            }
            None => return,
        };
        if let Some(d) = self.domains.get_mut(&domid) {
            d.nbwatch = 0;
        }
    }

    // ----- domains -----

    fn alloc_domain(&mut self, domid: u32) {
        let generation = self.generation;
        self.domains.entry(domid).or_insert(Domain {
            generation,
            introduced: false,
            conn: None,
            port: 0,
            mfn: 0,
            nodes: 0,
            nbwatch: 0,
        });
    }

    fn find_or_alloc_existing_domain(&mut self, domid: u32) -> bool {
        if self.domains.contains_key(&domid) {
            return true;
        }
        if self.existing.contains(&domid) {
            self.alloc_domain(domid);
            return true;
        }
        false
    }

    fn chk_domain_generation(&self, domid: u32, gen: u64) -> bool {
        self.domains
            .get(&domid)
            .is_some_and(|d| d.generation <= gen)
    }

    /// `domain_adjust_node_perms()`: permissions naming domains younger than the node (or
    /// gone) are ignored from now on.
    fn adjust_node_perms(&self, node: &mut Node) {
        let generation = node.generation;
        for p in node.perms.iter_mut().skip(1) {
            if p.perms & xs::XS_PERM_IGNORE != 0 {
                continue;
            }
            if !self.chk_domain_generation(p.id, generation) {
                p.perms |= xs::XS_PERM_IGNORE;
            }
        }
    }

    fn conn_id(&self, conn: Option<ConnId>) -> Option<u32> {
        conn.and_then(|c| self.conns.get(&c)).map(|c| c.id)
    }

    fn is_unprivileged(&self, conn: Option<ConnId>) -> bool {
        match conn.and_then(|c| self.conns.get(&c)) {
            Some(c) => matches!(c.kind, ConnKind::Domain(d) if d != DOM0),
            None => false,
        }
    }

    fn target_id(&self, conn: ConnId) -> Option<u32> {
        self.conns.get(&conn).and_then(|c| c.target)
    }

    fn perm_for_conn(&self, conn: Option<ConnId>, perms: &[Perm]) -> u32 {
        let all = xs::XS_PERM_READ | xs::XS_PERM_WRITE | xs::XS_PERM_OWNER;
        let Some(c) = conn else { return all };
        if !self.is_unprivileged(conn) {
            return all;
        }
        let id = self.conn_id(conn).unwrap_or(DOM0);
        let target = self.target_id(c);
        let Some(owner) = perms.first() else {
            return xs::XS_PERM_NONE;
        };
        if owner.id == id || Some(owner.id) == target {
            return all;
        }
        for p in perms.iter().skip(1) {
            if p.perms & xs::XS_PERM_IGNORE == 0 && (p.id == id || Some(p.id) == target) {
                return p.perms & all;
            }
        }
        owner.perms & all
    }

    fn implicit_path(&self, conn: Option<ConnId>) -> String {
        match conn.and_then(|c| self.conns.get(&c)).map(|c| c.kind) {
            Some(ConnKind::Domain(d)) => domain_path(d),
            _ => domain_path(DOM0),
        }
    }

    // ----- accounting -----

    fn committed_nodes(&self, domid: u32) -> i64 {
        self.domains.get(&domid).map_or(0, |d| d.nodes)
    }

    fn tx_ref(&self, ctx: Ctx) -> Option<&Transaction> {
        let conn = self.conns.get(&ctx.conn?)?;
        conn.transactions.iter().find(|t| Some(t.id) == ctx.tx)
    }

    fn tx_mut(&mut self, ctx: Ctx) -> Option<&mut Transaction> {
        let conn = self.conns.get_mut(&ctx.conn?)?;
        conn.transactions.iter_mut().find(|t| Some(t.id) == ctx.tx)
    }

    fn delta_in(list: &[(u32, i64)], domid: u32) -> i64 {
        list.iter()
            .filter(|(d, _)| *d == domid)
            .map(|(_, v)| *v)
            .sum()
    }

    fn add_delta(list: &mut Vec<(u32, i64)>, domid: u32, delta: i64) {
        if let Some(e) = list.iter_mut().find(|(d, _)| *d == domid) {
            e.1 += delta;
        } else {
            list.push((domid, delta));
        }
    }

    /// `domain_entry()`: nodes owned by the connection's domain as the quota check sees
    /// them — outside a transaction including this request's changes so far, inside one
    /// only the committed count (transaction changes are checked at commit); 0 for
    /// privileged connections.
    fn nbentry(&self, ctx: Ctx) -> i64 {
        if !self.is_unprivileged(ctx.conn) {
            return 0;
        }
        let id = self.conn_id(ctx.conn).unwrap_or(DOM0);
        let pending = if ctx.tx.is_some() {
            0
        } else {
            Self::delta_in(&self.acc_list, id)
        };
        (self.committed_nodes(id) + pending).max(0)
    }

    fn nbentry_change(&mut self, ctx: Ctx, owner: u32, delta: i64) -> Result<(), Errno> {
        if delta > 0 && !self.find_or_alloc_existing_domain(owner) {
            return Err(Errno::ENOMEM);
        }
        if ctx.conn.is_some() {
            Self::add_delta(&mut self.acc_list, owner, delta);
        } else if let Some(d) = self.domains.get_mut(&owner) {
            d.nodes = (d.nodes + delta).max(0);
        }
        Ok(())
    }

    /// `acc_commit()`: the request succeeded; its accounting goes to the transaction or the
    /// domains.
    fn acc_commit(&mut self, ctx: Ctx) {
        let list = std::mem::take(&mut self.acc_list);
        if let Some(tx) = self.tx_mut(ctx) {
            for (d, v) in list {
                Self::add_delta(&mut tx.changed_domains, d, v);
            }
            return;
        }
        for (d, v) in list {
            if let Some(dom) = self.domains.get_mut(&d) {
                dom.nodes = (dom.nodes + v).max(0);
            }
        }
    }

    // ----- node access (read_node, write_node, access_node) -----

    fn access_node(
        &mut self,
        ctx: Ctx,
        kind: Access,
        name: &str,
        node: &mut Node,
    ) -> Result<Landed, Errno> {
        if kind != Access::Read {
            self.generation += 1;
            node.generation = self.generation;
        }
        if ctx.tx.is_none() {
            return Ok(Landed::Global);
        }
        let unpriv = self.is_unprivileged(ctx.conn);
        let limit = self.config.quotas.transaction_nodes as usize;
        let Some(tx) = self.tx_mut(ctx) else {
            return Ok(Landed::Global);
        };
        let mut introduce = false;
        let idx = match tx.find(name) {
            Some(i) => i,
            None => {
                if unpriv && tx.accessed.len() + 1 > limit {
                    tx.fail = true;
                    self.errno = Errno::ENOSPC;
                    return Err(Errno::ENOSPC);
                }
                let mut entry = Accessed {
                    name: name.to_string(),
                    generation: 0,
                    perms: (node.generation != NO_GENERATION && !node.perms.is_empty())
                        .then(|| node.perms.clone()),
                    check_gen: false,
                    modified: false,
                    value: None,
                    fire_watch: false,
                    watch_exact: false,
                };
                if kind == Access::Read {
                    entry.generation = node.generation;
                    entry.check_gen = true;
                    if node.generation != NO_GENERATION {
                        entry.value = Some(node.clone());
                    }
                }
                introduce = true;
                tx.accessed.push(entry);
                tx.accessed.len() - 1
            }
        };
        if kind != Access::Read {
            tx.accessed[idx].modified = true;
        }
        if introduce && kind == Access::Delete {
            return Ok(Landed::NothingToDelete);
        }
        if kind == Access::Delete {
            tx.accessed[idx].value = None;
        }
        Ok(Landed::Transaction)
    }

    fn read_node(&mut self, ctx: Ctx, name: &str) -> Result<Node, Errno> {
        if let Some(tx) = self.tx_ref(ctx) {
            if let Some(i) = tx.find(name) {
                let mut node = tx.accessed[i].value.clone().ok_or(Errno::ENOENT)?;
                self.adjust_node_perms(&mut node);
                return Ok(node);
            }
        }
        match self.nodes.get(name).cloned() {
            None => {
                let mut missing = Node {
                    generation: NO_GENERATION,
                    perms: Vec::new(),
                    data: Vec::new(),
                    children: Vec::new(),
                };
                self.access_node(ctx, Access::Read, name, &mut missing)?;
                self.errno = Errno::ENOENT;
                Err(Errno::ENOENT)
            }
            Some(mut node) => {
                self.adjust_node_perms(&mut node);
                self.access_node(ctx, Access::Read, name, &mut node)?;
                Ok(node)
            }
        }
    }

    fn write_node(
        &mut self,
        ctx: Ctx,
        name: &str,
        node: &mut Node,
        no_quota_check: bool,
    ) -> Result<(), Errno> {
        let landed = self.access_node(ctx, Access::Write, name, node)?;
        self.adjust_node_perms(node);
        if !no_quota_check
            && self.is_unprivileged(ctx.conn)
            && node.acc_size() >= self.config.quotas.node_size as usize
        {
            if let Some(tx) = self.tx_mut(ctx) {
                tx.fail = true;
            }
            self.errno = Errno::ENOSPC;
            return Err(Errno::ENOSPC);
        }
        match landed {
            Landed::Transaction => {
                if let Some(tx) = self.tx_mut(ctx) {
                    if let Some(i) = tx.find(name) {
                        tx.accessed[i].value = Some(node.clone());
                    }
                }
            }
            _ => {
                self.nodes.insert(name.to_string(), node.clone());
            }
        }
        Ok(())
    }

    /// Removes a node written during a failed creation (`destroy_node()`).
    fn destroy_node(&mut self, ctx: Ctx, name: &str) {
        if let Some(tx) = self.tx_mut(ctx) {
            if let Some(i) = tx.find(name) {
                tx.accessed[i].value = None;
            }
            tx.fail = true;
        } else {
            self.nodes.remove(name);
        }
    }

    fn delete_node_single(&mut self, ctx: Ctx, name: &str, node: &mut Node) -> Result<(), Errno> {
        let landed = self.access_node(ctx, Access::Delete, name, node)?;
        if landed == Landed::Global {
            self.nodes.remove(name);
        }
        if landed != Landed::NothingToDelete {
            self.nbentry_change(ctx, node.owner(), -1)?;
        }
        Ok(())
    }

    // ----- path and permission checks -----

    /// `canonicalize()` plus `is_valid_nodename()`: the absolute name, or `None` (EINVAL).
    fn canonicalize(
        &self,
        conn: Option<ConnId>,
        path: &[u8],
        allow_special: bool,
    ) -> Option<String> {
        if !valid_chars(path) {
            return None;
        }
        let path = std::str::from_utf8(path).ok()?;
        if path.starts_with('@') && !allow_special {
            return None;
        }
        let name = if path.starts_with('/') || path.starts_with('@') {
            path.to_string()
        } else {
            format!("{}/{}", self.implicit_path(conn), path)
        };
        if name.ends_with('/') && name != "/" {
            return None;
        }
        if name.contains("//") {
            return None;
        }
        // The path-length limit applies to every connection, dom0 included.
        let local_off = local_offset(&name);
        if name.len() - local_off > self.config.quotas.path_len as usize {
            return None;
        }
        Some(name)
    }

    /// `errno_from_parents()`: hide whether a node exists from those who may not see it.
    fn errno_from_parents(&mut self, ctx: Ctx, name: &str, err: Errno, perm: u32) -> Errno {
        if err == Errno::ENOMEM {
            return err;
        }
        let mut cur = name.to_string();
        let parent = loop {
            cur = get_parent(&cur);
            match self.read_node(ctx, &cur) {
                Ok(node) => break Some(node),
                Err(e) if e == Errno::ENOMEM || e == Errno::ENOSPC => return e,
                Err(_) => {}
            }
            if cur == "/" {
                break None;
            }
        };
        let parent_perm =
            parent.map_or(xs::XS_PERM_NONE, |p| self.perm_for_conn(ctx.conn, &p.perms));
        if parent_perm & perm != 0 {
            err
        } else {
            Errno::EACCES
        }
    }

    /// `get_node()`: canonical name and node, checked for `perm`. The error carries the
    /// canonical name when the path was valid.
    fn get_node(
        &mut self,
        ctx: Ctx,
        path: Option<&[u8]>,
        perm: u32,
        allow_special: bool,
    ) -> Result<(String, Node), (Option<String>, Errno)> {
        let Some(path) = path else {
            // The C daemon looks up a NULL name and answers with whatever errno holds. When
            // that is 0 it sends no reply at all and dies on an assertion; the model answers
            // EINVAL instead.
            let stale = if self.errno == Errno(0) {
                Errno::EINVAL
            } else {
                self.errno
            };
            return Err((None, stale));
        };
        let Some(name) = self.canonicalize(ctx.conn, path, allow_special) else {
            self.errno = Errno::EINVAL;
            return Err((None, Errno::EINVAL));
        };
        match self.read_node(ctx, &name) {
            Ok(node) => {
                if self.perm_for_conn(ctx.conn, &node.perms) & perm != perm {
                    let e = self.errno_from_parents(ctx, &name, Errno::EACCES, perm);
                    self.errno = e;
                    return Err((Some(name), e));
                }
                Ok((name, node))
            }
            Err(e) if e == Errno::ENOMEM || e == Errno::ENOSPC => Err((Some(name), e)),
            Err(e) => {
                let e = self.errno_from_parents(ctx, &name, e, perm);
                self.errno = e;
                Err((Some(name), e))
            }
        }
    }

    // ----- node creation and deletion -----

    fn create_node(&mut self, ctx: Ctx, name: &str, data: &[u8]) -> Result<Node, Errno> {
        // construct_node(): walk up to the first existing ancestor.
        let mut names = vec![name.to_string()];
        let mut parent_name = get_parent(name);
        let mut top = loop {
            match self.read_node(ctx, &parent_name) {
                Ok(p) => break p,
                Err(e) if e != Errno::ENOENT || parent_name == "/" => return Err(e),
                Err(_) => {
                    names.push(parent_name.clone());
                    parent_name = get_parent(&parent_name);
                }
            }
        };
        let unpriv = self.is_unprivileged(ctx.conn);
        let conn_domid = self.conn_id(ctx.conn).unwrap_or(DOM0);
        // Build the chain top-down: chain[0] is the existing ancestor.
        let mut chain: Vec<(String, Node)> = Vec::new();
        let mut parent_perms = top.perms.clone();
        for (level, n) in names.iter().rev().enumerate() {
            let base = basename(n).as_bytes();
            if level == 0 {
                top.children.extend_from_slice(base);
                top.children.push(0);
            } else if let Some((_, p)) = chain.last_mut() {
                p.children.extend_from_slice(base);
                p.children.push(0);
            }
            let mut perms = parent_perms.clone();
            if unpriv {
                if let Some(first) = perms.first_mut() {
                    first.id = conn_domid;
                }
            }
            parent_perms = perms.clone();
            chain.push((
                n.clone(),
                Node {
                    generation: 0,
                    perms,
                    data: Vec::new(),
                    children: Vec::new(),
                },
            ));
        }
        if let Some((_, leaf)) = chain.last_mut() {
            leaf.data = data.to_vec();
        }
        if let Some(tx) = self.tx_mut(ctx) {
            tx.node_created = true;
        }
        // Write bottom-up: new nodes first (quota-checked), then the existing ancestor.
        let mut written: Vec<String> = Vec::new();
        let result = (|| {
            for (n, node) in chain.iter_mut().rev() {
                if unpriv && self.nbentry(ctx) >= i64::from(self.config.quotas.nodes) {
                    return Err(Errno::ENOSPC);
                }
                self.write_node(ctx, n, node, false)?;
                written.push(n.clone());
                self.nbentry_change(ctx, node.owner(), 1)?;
            }
            self.write_node(ctx, &parent_name, &mut top, false)
        })();
        if let Err(e) = result {
            for n in written {
                self.destroy_node(ctx, &n);
            }
            self.errno = e;
            return Err(e);
        }
        Ok(chain.pop().map(|(_, n)| n).unwrap_or(top))
    }

    /// Deletes `name` and everything below it, children first, firing watches as the C
    /// daemon does (exactly on descendants, recursively on the removed root).
    fn delete_subtree(
        &mut self,
        ctx: Ctx,
        name: &str,
        node: &mut Node,
        root: &str,
    ) -> Result<(), Errno> {
        while let Some(first) = node.child_names().into_iter().next() {
            let child_path = child_name(name, &first);
            // A listed child that cannot be read means an inconsistent view (e.g. a
            // transaction's copy of a subtree removed meanwhile): the daemon reports EIO.
            let mut child = self.read_node(ctx, &child_path).map_err(|_| Errno::EIO)?;
            self.delete_subtree(ctx, &child_path, &mut child, root)?;
            // delete_child(): drop the entry from this node and write it back.
            Self::remove_child_entry(node, &first);
            self.write_node(ctx, name, node, true)?;
        }
        let exact = name != root;
        let snapshot = node.clone();
        self.fire_watches(ctx, name, Some(&snapshot), exact, None);
        self.delete_node_single(ctx, name, node)
    }

    fn remove_child_entry(node: &mut Node, child: &str) -> bool {
        let mut offset = 0;
        while offset < node.children.len() {
            let end = node.children[offset..]
                .iter()
                .position(|&b| b == 0)
                .map_or(node.children.len(), |p| offset + p);
            if &node.children[offset..end] == child.as_bytes() {
                let stop = (end + 1).min(node.children.len());
                node.children.drain(offset..stop);
                return true;
            }
            offset = end + 1;
        }
        false
    }

    /// `rm_node()`: removes a subtree and unlinks it from its parent.
    fn rm_node(&mut self, ctx: Ctx, name: &str) -> Result<(), Errno> {
        let parent_name = get_parent(name);
        let mut parent = match self.read_node(ctx, &parent_name) {
            Ok(p) => p,
            Err(e) if e == Errno::ENOMEM || e == Errno::ENOSPC => return Err(e),
            Err(_) => return Err(Errno::EINVAL),
        };
        let mut node = self.read_node(ctx, name)?;
        self.delete_subtree(ctx, name, &mut node, name)?;
        if !Self::remove_child_entry(&mut parent, basename(name)) {
            return Err(Errno::EIO);
        }
        self.write_node(ctx, &parent_name, &mut parent, true)
    }

    // ----- watches -----

    fn check_perms_special(&self, name: &str, conn: ConnId) -> bool {
        match self.special_perms.get(name) {
            Some(p) => self.perm_for_conn(Some(conn), p) & xs::XS_PERM_READ != 0,
            None => false,
        }
    }

    fn watch_permitted(
        &mut self,
        conn: ConnId,
        name: &str,
        node: Option<&Node>,
        old_perms: Option<&[Perm]>,
    ) -> bool {
        let ctx = Ctx {
            conn: Some(conn),
            tx: None,
        };
        if let Some(p) = old_perms {
            if self.perm_for_conn(Some(conn), p) & xs::XS_PERM_READ != 0 {
                return true;
            }
        }
        let node = match node {
            Some(n) => n.clone(),
            None => match self.read_node(ctx, name) {
                Ok(n) => n,
                Err(_) => return false,
            },
        };
        if self.perm_for_conn(Some(conn), &node.perms) & xs::XS_PERM_READ != 0 {
            return true;
        }
        match self.read_node(ctx, &get_parent(name)) {
            Ok(parent) => self.perm_for_conn(Some(conn), &parent.perms) & xs::XS_PERM_READ != 0,
            Err(_) => false,
        }
    }

    fn add_event(&mut self, conn: ConnId, watch: &Watch, name: &str) {
        let mut path = name;
        if let Some(rel) = &watch.relative_path {
            path = path.get(rel.len()..).unwrap_or("");
            if let Some(stripped) = path.strip_prefix('/') {
                path = stripped;
            }
        }
        let payload = Message::strings(&[path, &watch.token]);
        if payload.len() > xs::XENSTORE_PAYLOAD_MAX {
            return;
        }
        let msg = Message::new(xs::XS_WATCH_EVENT, 0, 0, payload);
        // An identical event still waiting to be sent is not queued twice (several watches
        // of one connection can produce the same path and token); special events excepted.
        if !name.starts_with('@') {
            let bytes = msg.to_bytes();
            if self
                .conns
                .get(&conn)
                .is_some_and(|c| c.out.iter().any(|queued| *queued == bytes))
            {
                return;
            }
        }
        self.queue(conn, msg);
    }

    /// `fire_watches()`: queue events for every watch covering `name` (only the exact path
    /// when `exact`), for connections allowed to see the node; inside a transaction the
    /// events wait for the commit.
    fn fire_watches(
        &mut self,
        ctx: Ctx,
        name: &str,
        node: Option<&Node>,
        exact: bool,
        old_perms: Option<&[Perm]>,
    ) {
        if ctx.tx.is_some() {
            if let Some(tx) = self.tx_mut(ctx) {
                match tx.find(name) {
                    None => tx.fail = true,
                    Some(i) => {
                        let a = &mut tx.accessed[i];
                        if !a.fire_watch {
                            a.fire_watch = true;
                            a.watch_exact = exact;
                        } else if !exact {
                            a.watch_exact = false;
                        }
                    }
                }
            }
            return;
        }
        let conns: Vec<ConnId> = self.conns.keys().copied().collect();
        for c in conns {
            if self.conns.get(&c).is_none_or(|cn| cn.ignored.is_some()) {
                continue;
            }
            if name.starts_with('@') {
                if !self.check_perms_special(name, c) {
                    continue;
                }
            } else if !self.watch_permitted(c, name, node, old_perms) {
                continue;
            }
            let watches = self
                .conns
                .get(&c)
                .map(|cn| cn.watches.clone())
                .unwrap_or_default();
            for w in watches {
                let hit = if exact {
                    name == w.node
                } else {
                    is_child(name, &w.node)
                };
                if hit {
                    self.add_event(c, &w, name);
                }
            }
        }
    }

    fn fire_special(&mut self, name: &str) {
        self.fire_watches(Ctx::INTERNAL, name, None, true, None);
    }

    // ----- replies -----

    fn queue(&mut self, conn: ConnId, msg: Message) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.out.push_back(msg.to_bytes());
            self.dirty.insert(conn);
            if let ConnKind::Domain(d) = c.kind {
                self.ring_dirty.insert(d);
            }
        }
    }

    /// Registers who serves `domid`'s ring; see [`Xenstored::take_ring_kicks`].
    pub fn set_ring_kicker(&mut self, domid: u32, kicker: Option<RingKicker>) {
        match kicker {
            Some(k) => {
                self.ring_kickers.0.insert(domid, k);
            }
            None => {
                self.ring_kickers.0.remove(&domid);
            }
        }
    }

    /// The kickers of rings that got output since the last call: the caller runs them after
    /// releasing the store lock, so queued events reach guests as the C daemon's main loop
    /// would write them.
    pub fn take_ring_kicks(&mut self) -> Vec<RingKicker> {
        std::mem::take(&mut self.ring_dirty)
            .into_iter()
            .filter_map(|d| self.ring_kickers.0.get(&d).cloned())
            .collect()
    }

    fn send_reply(&mut self, ctx: Ctx, req: &Message, msg_type: u32, payload: Vec<u8>) {
        self.acc_commit(ctx);
        let Some(conn) = ctx.conn else { return };
        if payload.len() > xs::XENSTORE_PAYLOAD_MAX {
            self.send_error(ctx, req, Errno::E2BIG);
            return;
        }
        self.queue(conn, Message::new(msg_type, req.req_id, req.tx_id, payload));
    }

    fn send_ack(&mut self, ctx: Ctx, req: &Message) {
        self.send_reply(ctx, req, req.msg_type, b"OK\0".to_vec());
    }

    fn send_error(&mut self, ctx: Ctx, req: &Message, err: Errno) {
        self.acc_list.clear();
        let Some(conn) = ctx.conn else { return };
        let payload = Message::strings(&[wire::error_name(err)]);
        self.queue(
            conn,
            Message::new(xs::XS_ERROR, req.req_id, req.tx_id, payload),
        );
    }

    // ----- request dispatch -----

    /// Processes one request from a connection (`process_message()`); the reply and any
    /// watch events are queued on the connections concerned.
    pub fn handle(&mut self, conn: ConnId, msg: &Message) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        if c.ignored.is_some() {
            return;
        }
        let base = Ctx {
            conn: Some(conn),
            tx: None,
        };
        self.acc_list.clear();
        let t = msg.msg_type;
        let (known, notid, privileged) = match t {
            x if x == xs::XS_CONTROL => (true, false, true),
            x if x == xs::XS_DIRECTORY
                || x == xs::XS_READ
                || x == xs::XS_GET_PERMS
                || x == xs::XS_TRANSACTION_START
                || x == xs::XS_TRANSACTION_END
                || x == xs::XS_GET_DOMAIN_PATH
                || x == xs::XS_WRITE
                || x == xs::XS_MKDIR
                || x == xs::XS_RM
                || x == xs::XS_SET_PERMS
                || x == xs::XS_RESET_WATCHES
                || x == xs::XS_DIRECTORY_PART =>
            {
                (true, false, false)
            }
            x if x == xs::XS_WATCH || x == xs::XS_UNWATCH => (true, true, false),
            x if x == xs::XS_INTRODUCE
                || x == xs::XS_RELEASE
                || x == xs::XS_IS_DOMAIN_INTRODUCED
                || x == xs::XS_RESUME
                || x == xs::XS_SET_TARGET =>
            {
                (true, false, true)
            }
            _ => (false, false, false),
        };
        if !known {
            self.send_error(base, msg, Errno::ENOSYS);
            return;
        }
        if privileged && self.is_unprivileged(Some(conn)) {
            self.send_error(base, msg, Errno::EACCES);
            return;
        }
        let mut ctx = base;
        if !notid && msg.tx_id != 0 {
            let exists = self
                .conns
                .get(&conn)
                .is_some_and(|c| c.transactions.iter().any(|t| t.id == msg.tx_id));
            if !exists {
                self.send_error(base, msg, Errno::ENOENT);
                return;
            }
            ctx.tx = Some(msg.tx_id);
        }
        let result = match t {
            x if x == xs::XS_READ => self.do_read(ctx, msg),
            x if x == xs::XS_WRITE => self.do_write(ctx, msg),
            x if x == xs::XS_MKDIR => self.do_mkdir(ctx, msg),
            x if x == xs::XS_RM => self.do_rm(ctx, msg),
            x if x == xs::XS_DIRECTORY => self.do_directory(ctx, msg),
            x if x == xs::XS_DIRECTORY_PART => self.do_directory_part(ctx, msg),
            x if x == xs::XS_GET_PERMS => self.do_get_perms(ctx, msg),
            x if x == xs::XS_SET_PERMS => self.do_set_perms(ctx, msg),
            x if x == xs::XS_WATCH => self.do_watch(ctx, msg),
            x if x == xs::XS_UNWATCH => self.do_unwatch(ctx, msg),
            x if x == xs::XS_TRANSACTION_START => self.do_transaction_start(ctx, msg),
            x if x == xs::XS_TRANSACTION_END => self.do_transaction_end(ctx, msg),
            x if x == xs::XS_GET_DOMAIN_PATH => self.do_get_domain_path(ctx, msg),
            x if x == xs::XS_RESET_WATCHES => self.do_reset_watches(ctx, msg),
            x if x == xs::XS_INTRODUCE => self.do_introduce(ctx, msg),
            x if x == xs::XS_RELEASE => self.do_release(ctx, msg),
            x if x == xs::XS_IS_DOMAIN_INTRODUCED => self.do_is_domain_introduced(ctx, msg),
            x if x == xs::XS_RESUME => self.do_resume(ctx, msg),
            x if x == xs::XS_SET_TARGET => self.do_set_target(ctx, msg),
            _ => self.do_control(ctx, msg),
        };
        if let Err(e) = result {
            self.send_error(ctx, msg, e);
        }
        self.acc_list.clear();
    }

    fn do_read(&mut self, ctx: Ctx, msg: &Message) -> Result<(), Errno> {
        let path = wire::onearg(&msg.payload).map(str::as_bytes);
        let (_, node) = self
            .get_node(ctx, path, xs::XS_PERM_READ, false)
            .map_err(|e| e.1)?;
        self.send_reply(ctx, msg, xs::XS_READ, node.data);
        Ok(())
    }

    fn do_write(&mut self, ctx: Ctx, msg: &Message) -> Result<(), Errno> {
        let strings = wire::get_strings(&msg.payload);
        let Some(path) = strings.first().copied() else {
            return Err(Errno::EINVAL);
        };
        let data = msg.payload[path.len() + 1..].to_vec();
        let (name, node) = match self.get_node(ctx, Some(path), xs::XS_PERM_WRITE, false) {
            Ok((name, mut node)) => {
                node.data = data;
                self.write_node(ctx, &name, &mut node, false)?;
                (name, node)
            }
            Err((Some(name), e)) if e == Errno::ENOENT => {
                let node = self.create_node(ctx, &name, &data)?;
                (name, node)
            }
            Err((_, e)) => return Err(e),
        };
        self.fire_watches(ctx, &name, Some(&node), false, None);
        self.send_ack(ctx, msg);
        Ok(())
    }

    fn do_mkdir(&mut self, ctx: Ctx, msg: &Message) -> Result<(), Errno> {
        let path = wire::onearg(&msg.payload).map(str::as_bytes);
        match self.get_node(ctx, path, xs::XS_PERM_WRITE, false) {
            Ok(_) => {}
            Err((Some(name), e)) if e == Errno::ENOENT => {
                let node = self.create_node(ctx, &name, &[])?;
                self.fire_watches(ctx, &name, Some(&node), false, None);
            }
            Err((None, e)) if e == Errno::ENOENT => return Err(Errno::ENOMEM),
            Err((_, e)) => return Err(e),
        }
        self.send_ack(ctx, msg);
        Ok(())
    }

    fn do_rm(&mut self, ctx: Ctx, msg: &Message) -> Result<(), Errno> {
        let path = wire::onearg(&msg.payload).map(str::as_bytes);
        let name = match self.get_node(ctx, path, xs::XS_PERM_WRITE, false) {
            Ok((name, _)) => name,
            Err((Some(name), e)) if e == Errno::ENOENT => {
                return match self.read_node(ctx, &get_parent(&name)) {
                    Ok(_) => {
                        self.send_ack(ctx, msg);
                        Ok(())
                    }
                    Err(e) if e == Errno::ENOMEM || e == Errno::ENOSPC => Err(e),
                    Err(_) => Err(Errno::ENOENT),
                };
            }
            Err((None, e)) if e == Errno::ENOENT => return Err(Errno::ENOMEM),
            Err((_, e)) => return Err(e),
        };
        if name == "/" {
            return Err(Errno::EINVAL);
        }
        self.rm_node(ctx, &name)?;
        self.send_ack(ctx, msg);
        Ok(())
    }

    fn do_directory(&mut self, ctx: Ctx, msg: &Message) -> Result<(), Errno> {
        let path = wire::onearg(&msg.payload).map(str::as_bytes);
        let (_, node) = self
            .get_node(ctx, path, xs::XS_PERM_READ, false)
            .map_err(|e| e.1)?;
        self.send_reply(ctx, msg, xs::XS_DIRECTORY, node.children);
        Ok(())
    }

    fn do_directory_part(&mut self, ctx: Ctx, msg: &Message) -> Result<(), Errno> {
        if wire::count_strings(&msg.payload) != 2 {
            return Err(Errno::EINVAL);
        }
        let strings = wire::get_strings(&msg.payload);
        let (path, offset) = match strings.as_slice() {
            [p, o, ..] => (*p, *o),
            _ => return Err(Errno::EINVAL),
        };
        let (_, node) = self
            .get_node(ctx, Some(path), xs::XS_PERM_READ, false)
            .map_err(|e| e.1)?;
        let off = wire::atoi(offset).max(0) as usize;
        let off = if wire::atoi(offset) < 0 {
            // atoi() of a negative number becomes a huge unsigned offset.
            usize::MAX
        } else {
            off
        };
        let mut reply = node.generation.to_string().into_bytes();
        reply.push(0);
        let genlen = reply.len();
        let childlen = node.children.len();
        if off >= childlen {
            reply.push(0);
            self.send_reply(ctx, msg, xs::XS_DIRECTORY_PART, reply);
            return Ok(());
        }
        let maxlen = xs::XENSTORE_PAYLOAD_MAX - genlen - 1;
        let children = &node.children;
        let strlen = |at: usize| -> usize {
            children[at..]
                .iter()
                .position(|&b| b == 0)
                .unwrap_or(children.len() - at)
        };
        let mut len = 0usize;
        let mut child = off;
        while len + strlen(child) < maxlen {
            len += strlen(child) + 1;
            child += strlen(child) + 1;
            if off + len >= childlen {
                break;
            }
        }
        reply.extend_from_slice(&children[off..(off + len).min(childlen)]);
        if off + len == childlen {
            reply.push(0);
        }
        self.send_reply(ctx, msg, xs::XS_DIRECTORY_PART, reply);
        Ok(())
    }

    fn do_get_perms(&mut self, ctx: Ctx, msg: &Message) -> Result<(), Errno> {
        let path = wire::onearg(&msg.payload).map(str::as_bytes);
        let (_, node) = self
            .get_node(ctx, path, xs::XS_PERM_READ, false)
            .map_err(|e| e.1)?;
        let mut out = Vec::new();
        for p in &node.perms {
            let s = p.to_wire().ok_or(Errno::EINVAL)?;
            out.extend_from_slice(s.as_bytes());
            out.push(0);
        }
        self.send_reply(ctx, msg, xs::XS_GET_PERMS, out);
        Ok(())
    }

    fn parse_perms(strings: &[u8], num: usize) -> Result<Vec<Perm>, Errno> {
        let mut out = Vec::with_capacity(num);
        let mut p = 0usize;
        for _ in 0..num {
            let letter = strings.get(p).copied().unwrap_or(0);
            let perms = match letter {
                b'r' => xs::XS_PERM_READ,
                b'w' => xs::XS_PERM_WRITE,
                b'b' => xs::XS_PERM_READ | xs::XS_PERM_WRITE,
                b'n' => xs::XS_PERM_NONE,
                _ => return Err(Errno::EINVAL),
            };
            p += 1;
            let rest = strings.get(p..).unwrap_or(&[]);
            if rest.first().copied().unwrap_or(0) == 0 {
                return Err(Errno::EINVAL);
            }
            let (value, used) = wire::strtol0(rest);
            if rest.get(used).copied().unwrap_or(0) != 0 {
                return Err(Errno::EINVAL);
            }
            out.push(Perm {
                perms,
                id: value as u32,
            });
            p += used + 1;
        }
        Ok(out)
    }

    fn do_set_perms(&mut self, ctx: Ctx, msg: &Message) -> Result<(), Errno> {
        let count = wire::count_strings(&msg.payload);
        if count < 2 {
            return Err(Errno::EINVAL);
        }
        let num = count - 1;
        if self.is_unprivileged(ctx.conn) && num > self.config.quotas.perms as usize {
            return Err(Errno::ENOSPC);
        }
        let path_len = msg.payload.iter().position(|&b| b == 0).unwrap_or(0);
        let path = &msg.payload[..path_len];
        let mut perms = Self::parse_perms(&msg.payload[path_len + 1..], num).inspect_err(|e| {
            self.errno = *e;
        })?;
        if path.starts_with(b"@") {
            return self.set_perms_special(ctx, msg, path, perms);
        }
        self.alloc_permrefs(&mut perms);
        if perms[0].perms & xs::XS_PERM_IGNORE != 0 {
            return Err(Errno::ENOENT);
        }
        let (name, mut node) = self
            .get_node(
                ctx,
                Some(path),
                xs::XS_PERM_WRITE | xs::XS_PERM_OWNER,
                false,
            )
            .map_err(|e| e.1)?;
        if self.is_unprivileged(ctx.conn) && perms[0].id != node.owner() {
            return Err(Errno::EPERM);
        }
        let old = node.perms.clone();
        self.nbentry_change(ctx, node.owner(), -1)?;
        node.perms = perms;
        self.nbentry_change(ctx, node.owner(), 1)?;
        self.write_node(ctx, &name, &mut node, false)?;
        self.fire_watches(ctx, &name, Some(&node), false, Some(&old));
        self.send_ack(ctx, msg);
        Ok(())
    }

    /// `domain_alloc_permrefs()`: entries naming unknown domains are ignored, existing
    /// domains get a `struct domain` (and so a generation) now.
    fn alloc_permrefs(&mut self, perms: &mut [Perm]) {
        for p in perms.iter_mut() {
            if !self.domains.contains_key(&p.id) {
                if self.existing.contains(&p.id) {
                    self.alloc_domain(p.id);
                } else {
                    p.perms |= xs::XS_PERM_IGNORE;
                }
            }
        }
    }

    /// `set_perms_special()`: permissions of `@releaseDomain` / `@introduceDomain`, which
    /// decide who sees those watch events.
    fn set_perms_special(
        &mut self,
        ctx: Ctx,
        msg: &Message,
        path: &[u8],
        mut perms: Vec<Perm>,
    ) -> Result<(), Errno> {
        let key = match path {
            b"@releaseDomain" => "@releaseDomain",
            b"@introduceDomain" => "@introduceDomain",
            _ => return Err(Errno::ENOENT),
        };
        let current = self.special_perms.get(key).cloned().unwrap_or_default();
        let need = xs::XS_PERM_WRITE | xs::XS_PERM_OWNER;
        if self.perm_for_conn(ctx.conn, &current) & need != need {
            return Err(Errno::EACCES);
        }
        self.alloc_permrefs(&mut perms);
        self.special_perms.insert(key, perms);
        self.send_ack(ctx, msg);
        Ok(())
    }

    fn do_watch(&mut self, ctx: Ctx, msg: &Message) -> Result<(), Errno> {
        let strings = wire::get_strings(&msg.payload);
        if strings.len() != 2 {
            return Err(Errno::EINVAL);
        }
        let conn = ctx.conn.ok_or(Errno::EINVAL)?;
        let (path, token) = (strings[0], strings[1]);
        // check_watch_path() result lands in errno, success included.
        let (node, relative) = if path.starts_with(b"@") {
            if path.len() > xs::XENSTORE_REL_PATH_MAX {
                self.errno = Errno::EINVAL;
                return Err(Errno::EINVAL);
            }
            (String::from_utf8_lossy(path).into_owned(), false)
        } else {
            let Some(name) = self.canonicalize(ctx.conn, path, false) else {
                self.errno = Errno::EINVAL;
                return Err(Errno::EINVAL);
            };
            (name, !path.starts_with(b"/"))
        };
        self.errno = Errno(0);
        let token = String::from_utf8_lossy(token).into_owned();
        let unpriv = self.is_unprivileged(ctx.conn);
        let implicit = self.implicit_path(ctx.conn);
        let c = self.conns.get(&conn).ok_or(Errno::EINVAL)?;
        if c.watches.iter().any(|w| w.node == node && w.token == token) {
            return Err(Errno::EEXIST);
        }
        let domid = c.id;
        let nbwatch = self.domains.get(&domid).map_or(0, |d| d.nbwatch);
        if unpriv && nbwatch > self.config.quotas.watches {
            return Err(Errno::E2BIG);
        }
        let watch = Watch {
            node,
            token,
            relative_path: relative.then_some(implicit),
        };
        if let Some(c) = self.conns.get_mut(&conn) {
            c.watches.push(watch.clone());
        }
        if matches!(
            self.conns.get(&conn).map(|c| c.kind),
            Some(ConnKind::Domain(_))
        ) {
            if let Some(d) = self.domains.get_mut(&domid) {
                d.nbwatch += 1;
            }
        }
        self.send_ack(ctx, msg);
        let name = watch.node.clone();
        self.add_event(conn, &watch, &name);
        Ok(())
    }

    fn do_unwatch(&mut self, ctx: Ctx, msg: &Message) -> Result<(), Errno> {
        let strings = wire::get_strings(&msg.payload);
        if strings.len() != 2 {
            return Err(Errno::EINVAL);
        }
        let conn = ctx.conn.ok_or(Errno::EINVAL)?;
        let path = String::from_utf8_lossy(strings[0]).into_owned();
        let node = if path.starts_with('/') || path.starts_with('@') {
            path
        } else {
            format!("{}/{}", self.implicit_path(ctx.conn), path)
        };
        let token = String::from_utf8_lossy(strings[1]).into_owned();
        let c = self.conns.get_mut(&conn).ok_or(Errno::EINVAL)?;
        let Some(pos) = c
            .watches
            .iter()
            .position(|w| w.node == node && w.token == token)
        else {
            return Err(Errno::ENOENT);
        };
        c.watches.remove(pos);
        let (kind, domid) = (c.kind, c.id);
        if matches!(kind, ConnKind::Domain(_)) {
            if let Some(d) = self.domains.get_mut(&domid) {
                d.nbwatch = d.nbwatch.saturating_sub(1);
            }
        }
        self.send_ack(ctx, msg);
        Ok(())
    }

    fn do_transaction_start(&mut self, ctx: Ctx, msg: &Message) -> Result<(), Errno> {
        if ctx.tx.is_some() {
            return Err(Errno::EBUSY);
        }
        let conn = ctx.conn.ok_or(Errno::EINVAL)?;
        let unpriv = self.is_unprivileged(ctx.conn);
        let open = self.conns.get(&conn).map_or(0, |c| c.transactions.len());
        if unpriv && open > self.config.quotas.transactions as usize {
            return Err(Errno::ENOSPC);
        }
        self.generation += 1;
        let c = self.conns.get_mut(&conn).ok_or(Errno::EINVAL)?;
        let id = loop {
            let candidate = c.next_transaction_id;
            c.next_transaction_id = c.next_transaction_id.wrapping_add(1);
            if candidate != 0 && !c.transactions.iter().any(|t| t.id == candidate) {
                break candidate;
            }
        };
        c.transactions.push(Transaction {
            id,
            accessed: Vec::new(),
            changed_domains: Vec::new(),
            node_created: false,
            fail: false,
        });
        let payload = Message::strings(&[&id.to_string()]);
        self.send_reply(ctx, msg, xs::XS_TRANSACTION_START, payload);
        Ok(())
    }

    fn do_transaction_end(&mut self, ctx: Ctx, msg: &Message) -> Result<(), Errno> {
        let arg = wire::onearg(&msg.payload);
        let commit = match arg {
            Some("T") => true,
            Some("F") => false,
            _ => return Err(Errno::EINVAL),
        };
        let (Some(conn), Some(id)) = (ctx.conn, ctx.tx) else {
            return Err(Errno::ENOENT);
        };
        let unpriv = self.is_unprivileged(ctx.conn);
        let tx = {
            let c = self.conns.get_mut(&conn).ok_or(Errno::ENOENT)?;
            let pos = c
                .transactions
                .iter()
                .position(|t| t.id == id)
                .ok_or(Errno::ENOENT)?;
            c.transactions.remove(pos)
        };
        // From here on the request runs outside the (now gone) transaction.
        let outside = Ctx {
            conn: Some(conn),
            tx: None,
        };
        if commit {
            if tx.fail {
                return Err(Errno::ENOMEM);
            }
            let conn_domid = self.conn_id(ctx.conn);
            if self.faults.eagain_commits > 0
                && self
                    .faults
                    .eagain_domain
                    .is_none_or(|d| Some(d) == conn_domid)
            {
                self.faults.eagain_commits -= 1;
                return Err(Errno::EAGAIN);
            }
            let chk_quota = tx.node_created && unpriv;
            for (domid, delta) in &tx.changed_domains {
                let _ = self.find_or_alloc_existing_domain(*domid);
                let cnt = if *domid != DOM0 {
                    self.committed_nodes(*domid) + delta
                } else {
                    0
                };
                if chk_quota && cnt >= i64::from(self.config.quotas.nodes) {
                    return Err(Errno::ENOSPC);
                }
            }
            // finalize_transaction(): conflicts first, then apply in access order.
            for a in &tx.accessed {
                if a.check_gen {
                    let now = self
                        .nodes
                        .get(&a.name)
                        .map_or(NO_GENERATION, |n| n.generation);
                    if now != a.generation {
                        return Err(Errno::EAGAIN);
                    }
                }
            }
            for a in tx.accessed.iter().filter(|a| a.modified) {
                match &a.value {
                    Some(node) => {
                        let mut node = node.clone();
                        self.generation += 1;
                        node.generation = self.generation;
                        self.nodes.insert(a.name.clone(), node);
                    }
                    None => {
                        if a.generation != NO_GENERATION {
                            self.nodes.remove(&a.name);
                        }
                    }
                }
                if a.fire_watch {
                    self.fire_watches(outside, &a.name, None, a.watch_exact, a.perms.as_deref());
                }
            }
            for (domid, delta) in &tx.changed_domains {
                if let Some(d) = self.domains.get_mut(domid) {
                    d.nodes = (d.nodes + delta).max(0);
                }
            }
        }
        self.send_ack(outside, msg);
        Ok(())
    }

    fn do_get_domain_path(&mut self, ctx: Ctx, msg: &Message) -> Result<(), Errno> {
        let arg = wire::onearg(&msg.payload).ok_or(Errno::EINVAL)?;
        let domid = wire::atoi(arg.as_bytes()) as u32;
        let payload = Message::strings(&[&domain_path(domid)]);
        self.send_reply(ctx, msg, xs::XS_GET_DOMAIN_PATH, payload);
        Ok(())
    }

    fn do_reset_watches(&mut self, ctx: Ctx, msg: &Message) -> Result<(), Errno> {
        if let Some(conn) = ctx.conn {
            let mut domid = None;
            if let Some(c) = self.conns.get_mut(&conn) {
                c.watches.clear();
                c.transactions.clear();
                if matches!(c.kind, ConnKind::Domain(_)) {
                    domid = Some(c.id);
                }
            }
            if let Some(d) = domid.and_then(|d| self.domains.get_mut(&d)) {
                d.nbwatch = 0;
            }
        }
        let outside = Ctx {
            conn: ctx.conn,
            tx: None,
        };
        self.send_ack(outside, msg);
        Ok(())
    }

    /// Introduces a domain (what `XS_INTRODUCE` does): its ring connection is created and
    /// `@introduceDomain` fires. Returns the connection.
    pub fn introduce(&mut self, domid: u32, mfn: u64, port: u32) -> Result<ConnId, Errno> {
        if port == 0 {
            return Err(Errno::EINVAL);
        }
        let already = self.domains.get(&domid).is_some_and(|d| d.introduced);
        if !already {
            if !self.existing.contains(&domid) {
                // The ring cannot be mapped for a domain that does not exist.
                self.alloc_domain(domid);
                return Err(Errno::ENOENT);
            }
            self.alloc_domain(domid);
            let conn = self.new_connection(domid, ConnKind::Domain(domid));
            if let Some(d) = self.domains.get_mut(&domid) {
                d.introduced = true;
                d.conn = Some(conn);
                d.port = port;
                d.mfn = mfn;
            }
            self.fire_special("@introduceDomain");
            self.events.push(StoreEvent::Introduced(domid));
        } else if let Some(d) = self.domains.get_mut(&domid) {
            d.port = port;
        }
        // domain_conn_reset(): a (re-)introduced ring starts afresh.
        let conn = self.domain_connection(domid).ok_or(Errno::EINVAL)?;
        if let Some(c) = self.conns.get_mut(&conn) {
            c.watches.clear();
            c.transactions.clear();
            c.out.clear();
            c.decoder = wire::Decoder::default();
            // A connection cut off for a protocol error stays cut off (only a release and
            // a new introduction give the domain a new one).
        }
        if let Some(d) = self.domains.get_mut(&domid) {
            d.nbwatch = 0;
        }
        self.reset_rings.insert(domid);
        Ok(conn)
    }

    /// A domain arriving from another host (restore or migration): the destination's
    /// xenstored knows nothing of its old connection, so the domain gets a fresh one (no
    /// watches, no transactions, not cut off) and its ring is reset; its nodes stay.
    pub fn reconnect_domain(&mut self, domid: u32, mfn: u64, port: u32) -> Result<ConnId, Errno> {
        if let Some(old) = self.domain_connection(domid) {
            self.disconnect(old);
            let conn = self.new_connection(domid, ConnKind::Domain(domid));
            if let Some(d) = self.domains.get_mut(&domid) {
                d.conn = Some(conn);
                d.port = port;
                d.mfn = mfn;
                d.nbwatch = 0;
            }
            self.reset_rings.insert(domid);
            self.fire_special("@introduceDomain");
            self.events.push(StoreEvent::Introduced(domid));
            return Ok(conn);
        }
        self.introduce(domid, mfn, port)
    }

    fn do_introduce(&mut self, ctx: Ctx, msg: &Message) -> Result<(), Errno> {
        let strings = wire::get_strings(&msg.payload);
        if strings.len() < 3 {
            return Err(Errno::EINVAL);
        }
        let domid = wire::atoi(strings[0]) as u32;
        let mfn = wire::atoi(strings[1]) as i64 as u64;
        // evtchn_port_t is unsigned: only 0 is refused.
        let port = wire::atoi(strings[2]) as u32;
        if port == 0 {
            return Err(Errno::EINVAL);
        }
        self.introduce(domid, mfn, port)?;
        self.send_ack(ctx, msg);
        Ok(())
    }

    /// Releases an introduced domain (what `XS_RELEASE` does): its connection goes away,
    /// the nodes it owns are deleted (or kept for dom0 with `keep_orphans`) and
    /// `@releaseDomain` fires.
    pub fn release(&mut self, domid: u32) -> Result<(), Errno> {
        if domid == DOM0 {
            return Err(Errno::EINVAL);
        }
        let d = self
            .domains
            .get(&domid)
            .filter(|d| d.introduced)
            .ok_or(Errno::ENOENT)?;
        let conn = d.conn.ok_or(Errno::EINVAL)?;
        self.disconnect(conn);
        self.domain_tree_remove(domid);
        self.domains.remove(&domid);
        self.fire_special("@releaseDomain");
        self.events.push(StoreEvent::Released(domid));
        Ok(())
    }

    /// Deletes (or re-owns) every node owned by a departing domain, top-down.
    fn domain_tree_remove(&mut self, domid: u32) {
        let mut stack = vec!["/".to_string()];
        while let Some(name) = stack.pop() {
            let Some(node) = self.nodes.get(&name).cloned() else {
                continue;
            };
            if node.owner() == domid {
                if self.config.keep_orphans {
                    let mut node = node;
                    if let Some(p) = node.perms.first_mut() {
                        p.id = DOM0;
                    }
                    if let Some(d) = self.domains.get_mut(&DOM0) {
                        d.nodes += 1;
                    }
                    self.nodes.insert(name.clone(), node.clone());
                    for child in node.child_names().into_iter().rev() {
                        stack.push(child_name(&name, &child));
                    }
                } else {
                    let _ = self.rm_node(Ctx::INTERNAL, &name);
                }
                continue;
            }
            for child in node.child_names().into_iter().rev() {
                stack.push(child_name(&name, &child));
            }
        }
    }

    fn do_release(&mut self, ctx: Ctx, msg: &Message) -> Result<(), Errno> {
        let arg = wire::onearg(&msg.payload).ok_or(Errno::EINVAL)?;
        let domid = wire::atoi(arg.as_bytes()) as u32;
        self.release(domid)?;
        self.send_ack(ctx, msg);
        Ok(())
    }

    fn do_is_domain_introduced(&mut self, ctx: Ctx, msg: &Message) -> Result<(), Errno> {
        let arg = wire::onearg(&msg.payload).ok_or(Errno::EINVAL)?;
        let domid = wire::atoi(arg.as_bytes()) as u32;
        let yes = domid == xs::DOMID_SELF || self.domains.get(&domid).is_some_and(|d| d.introduced);
        let payload = if yes {
            b"T\0".to_vec()
        } else {
            b"F\0".to_vec()
        };
        self.send_reply(ctx, msg, xs::XS_IS_DOMAIN_INTRODUCED, payload);
        Ok(())
    }

    fn connected_domain(&self, domid: u32) -> Result<ConnId, Errno> {
        let d = self
            .domains
            .get(&domid)
            .filter(|d| d.introduced)
            .ok_or(Errno::ENOENT)?;
        d.conn.ok_or(Errno::EINVAL)
    }

    fn do_resume(&mut self, ctx: Ctx, msg: &Message) -> Result<(), Errno> {
        let arg = wire::onearg(&msg.payload).ok_or(Errno::EINVAL)?;
        let domid = wire::atoi(arg.as_bytes()) as u32;
        if domid == DOM0 {
            return Err(Errno::EINVAL);
        }
        self.connected_domain(domid)?;
        self.send_ack(ctx, msg);
        Ok(())
    }

    fn do_set_target(&mut self, ctx: Ctx, msg: &Message) -> Result<(), Errno> {
        let strings = wire::get_strings(&msg.payload);
        if strings.len() < 2 {
            return Err(Errno::EINVAL);
        }
        let domid = wire::atoi(strings[0]) as u32;
        let tdomid = wire::atoi(strings[1]) as u32;
        let conn = self.connected_domain(domid)?;
        self.connected_domain(tdomid)?;
        if let Some(c) = self.conns.get_mut(&conn) {
            c.target = Some(tdomid);
        }
        self.send_ack(ctx, msg);
        Ok(())
    }

    /// `XS_CONTROL`: the debug commands that have no effect on the store model.
    fn do_control(&mut self, ctx: Ctx, msg: &Message) -> Result<(), Errno> {
        let strings = wire::get_strings(&msg.payload);
        match strings.first().copied() {
            Some(b"print") | Some(b"check") => {
                self.send_ack(ctx, msg);
                Ok(())
            }
            _ => Err(Errno::EINVAL),
        }
    }

    // ----- inspection helpers for the toolstack, backends and tests -----

    /// Reads a node as dom0 would, outside any transaction.
    pub fn read(&self, path: &str) -> Option<Vec<u8>> {
        self.nodes.get(path).map(|n| n.data.clone())
    }

    /// The children of a node, in creation order.
    pub fn children(&self, path: &str) -> Vec<String> {
        self.nodes
            .get(path)
            .map(Node::child_names)
            .unwrap_or_default()
    }

    /// The permissions of a node.
    pub fn perms(&self, path: &str) -> Option<Vec<Perm>> {
        self.nodes.get(path).map(|n| n.perms.clone())
    }

    /// Every node path below (and including) `root`, depth first, children in order.
    pub fn tree(&self, root: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![root.to_string()];
        while let Some(name) = stack.pop() {
            let Some(node) = self.nodes.get(&name) else {
                continue;
            };
            for child in node.child_names().into_iter().rev() {
                stack.push(child_name(&name, &child));
            }
            out.push(name);
        }
        out
    }

    /// Domains whose ring must be reset (indices zeroed) by the transport after an
    /// (re-)introduction; drained by [`ring`].
    pub fn take_ring_reset(&mut self, domid: u32) -> bool {
        self.reset_rings.remove(&domid)
    }
}

#[cfg(test)]
mod tests;
