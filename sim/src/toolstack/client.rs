//! The toolstack's privileged XenStore client: requests on its own dom0 connection to the
//! in-process xenstored, with libxl's retry of transactions that end in `EAGAIN`.
#![forbid(unsafe_code)]

use std::sync::{Arc, Mutex, MutexGuard};

use crate::xenstored::abi as xs;
use crate::xenstored::wire::Message;
use crate::xenstored::{ConnId, Errno, Xenstored};

/// A store shared by the toolstack, the backends and the transports.
pub type SharedStore = Arc<Mutex<Xenstored>>;

/// Locks a shared store (a poisoned lock is still usable: the store has no invariants a
/// panicking holder could break half-way).
pub fn lock(store: &SharedStore) -> MutexGuard<'_, Xenstored> {
    match store.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// Pushes output queued for guest rings (watch events caused by this request) to the rings
/// now, as the C daemon's main loop does right after a request.
pub fn kick_rings(store: &SharedStore) {
    let kicks = lock(store).take_ring_kicks();
    for kick in kicks {
        kick();
    }
}

/// A failed store request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreError {
    /// xenstored answered `XS_ERROR` with this errno.
    Errno(Errno),
    /// The reply was not the expected kind.
    Protocol(String),
}

impl From<Errno> for StoreError {
    fn from(e: Errno) -> Self {
        StoreError::Errno(e)
    }
}

/// A watch event received by a client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchEvent {
    /// The path that changed (relative if the watch was).
    pub path: String,
    /// The watch's token.
    pub token: String,
}

/// A dom0 client connection.
#[derive(Debug)]
pub struct StoreClient {
    store: SharedStore,
    conn: ConnId,
    next_req: u32,
    events: Vec<WatchEvent>,
}

impl StoreClient {
    /// Opens a privileged connection.
    pub fn connect(store: &SharedStore) -> Self {
        let conn = lock(store).connect_socket();
        Self {
            store: Arc::clone(store),
            conn,
            next_req: 1,
            events: Vec::new(),
        }
    }

    /// The store this client talks to.
    pub fn store(&self) -> &SharedStore {
        &self.store
    }

    fn call(&mut self, msg_type: u32, tx: u32, payload: Vec<u8>) -> Result<Vec<u8>, StoreError> {
        let req_id = self.next_req;
        self.next_req = self.next_req.wrapping_add(1);
        let replies =
            lock(&self.store).request(self.conn, &Message::new(msg_type, req_id, tx, payload));
        kick_rings(&self.store);
        let mut answer = None;
        for m in replies {
            if m.msg_type == xs::XS_WATCH_EVENT {
                let parts = crate::xenstored::wire::get_strings(&m.payload);
                if let [path, token, ..] = parts.as_slice() {
                    self.events.push(WatchEvent {
                        path: String::from_utf8_lossy(path).into_owned(),
                        token: String::from_utf8_lossy(token).into_owned(),
                    });
                }
            } else if m.req_id == req_id {
                answer = Some(m);
            }
        }
        let m = answer.ok_or_else(|| StoreError::Protocol("no reply".into()))?;
        if m.msg_type == xs::XS_ERROR {
            let name = String::from_utf8_lossy(m.payload.strip_suffix(b"\0").unwrap_or(&m.payload))
                .into_owned();
            let e = crate::xenstored::wire::error_from_name(&name)
                .ok_or_else(|| StoreError::Protocol(format!("unknown error {name}")))?;
            return Err(StoreError::Errno(e));
        }
        Ok(m.payload)
    }

    /// Watch events that arrived since the last call (also those queued by other
    /// connections' requests).
    pub fn take_events(&mut self) -> Vec<WatchEvent> {
        let queued = lock(&self.store).drain(self.conn);
        for m in queued {
            if m.msg_type == xs::XS_WATCH_EVENT {
                let parts = crate::xenstored::wire::get_strings(&m.payload);
                if let [path, token, ..] = parts.as_slice() {
                    self.events.push(WatchEvent {
                        path: String::from_utf8_lossy(path).into_owned(),
                        token: String::from_utf8_lossy(token).into_owned(),
                    });
                }
            }
        }
        std::mem::take(&mut self.events)
    }

    /// Reads a node.
    pub fn read(&mut self, tx: u32, path: &str) -> Result<Vec<u8>, StoreError> {
        self.call(xs::XS_READ, tx, Message::strings(&[path]))
    }

    /// Reads a node as text.
    pub fn read_string(&mut self, tx: u32, path: &str) -> Result<String, StoreError> {
        Ok(String::from_utf8_lossy(&self.read(tx, path)?).into_owned())
    }

    /// Writes a node (creating parents).
    pub fn write(&mut self, tx: u32, path: &str, value: &[u8]) -> Result<(), StoreError> {
        let mut payload = Message::strings(&[path]);
        payload.extend_from_slice(value);
        self.call(xs::XS_WRITE, tx, payload).map(|_| ())
    }

    /// Creates a directory node.
    pub fn mkdir(&mut self, tx: u32, path: &str) -> Result<(), StoreError> {
        self.call(xs::XS_MKDIR, tx, Message::strings(&[path]))
            .map(|_| ())
    }

    /// Removes a subtree.
    pub fn rm(&mut self, tx: u32, path: &str) -> Result<(), StoreError> {
        self.call(xs::XS_RM, tx, Message::strings(&[path]))
            .map(|_| ())
    }

    /// Removes a subtree if it exists (no error when its parent is missing either).
    pub fn rm_if_exists(&mut self, tx: u32, path: &str) -> Result<(), StoreError> {
        match self.rm(tx, path) {
            Err(StoreError::Errno(e)) if e == Errno::ENOENT => Ok(()),
            r => r,
        }
    }

    /// Lists children.
    pub fn directory(&mut self, tx: u32, path: &str) -> Result<Vec<String>, StoreError> {
        let raw = self.call(xs::XS_DIRECTORY, tx, Message::strings(&[path]))?;
        Ok(crate::xenstored::wire::get_strings(&raw)
            .into_iter()
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect())
    }

    /// Sets permissions (`["n0", "r5"]`).
    pub fn set_perms(&mut self, tx: u32, path: &str, perms: &[&str]) -> Result<(), StoreError> {
        let mut parts = vec![path];
        parts.extend_from_slice(perms);
        self.call(xs::XS_SET_PERMS, tx, Message::strings(&parts))
            .map(|_| ())
    }

    /// Registers a watch (its initial event lands in [`StoreClient::take_events`]).
    pub fn watch(&mut self, path: &str, token: &str) -> Result<(), StoreError> {
        self.call(xs::XS_WATCH, 0, Message::strings(&[path, token]))
            .map(|_| ())
    }

    /// Removes a watch.
    pub fn unwatch(&mut self, path: &str, token: &str) -> Result<(), StoreError> {
        self.call(xs::XS_UNWATCH, 0, Message::strings(&[path, token]))
            .map(|_| ())
    }

    /// Sends `XS_INTRODUCE`.
    pub fn introduce(&mut self, domid: u32, mfn: u64, port: u32) -> Result<(), StoreError> {
        let (d, m, p) = (domid.to_string(), mfn.to_string(), port.to_string());
        self.call(xs::XS_INTRODUCE, 0, Message::strings(&[&d, &m, &p]))
            .map(|_| ())
    }

    /// Sends `XS_RELEASE`.
    pub fn release(&mut self, domid: u32) -> Result<(), StoreError> {
        let d = domid.to_string();
        self.call(xs::XS_RELEASE, 0, Message::strings(&[&d]))
            .map(|_| ())
    }

    /// Runs `body` in a transaction, retrying from the start while the commit answers
    /// `EAGAIN` (at most `attempts` times), as libxl does. Returns the attempts used.
    pub fn transaction<F>(&mut self, attempts: u32, mut body: F) -> Result<u32, StoreError>
    where
        F: FnMut(&mut StoreClient, u32) -> Result<(), StoreError>,
    {
        for attempt in 1..=attempts.max(1) {
            let id = self.call(xs::XS_TRANSACTION_START, 0, b"\0".to_vec())?;
            let tx: u32 = String::from_utf8_lossy(id.strip_suffix(b"\0").unwrap_or(&id))
                .parse()
                .map_err(|_| StoreError::Protocol("bad transaction id".into()))?;
            if let Err(e) = body(self, tx) {
                let _ = self.call(xs::XS_TRANSACTION_END, tx, b"F\0".to_vec());
                return Err(e);
            }
            match self.call(xs::XS_TRANSACTION_END, tx, b"T\0".to_vec()) {
                Ok(_) => return Ok(attempt),
                Err(StoreError::Errno(e)) if e == Errno::EAGAIN && attempt < attempts => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Errno(Errno::EAGAIN))
    }
}
