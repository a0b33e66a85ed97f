//! The Unix-socket transport: the privileged protocol stock tools speak (`xenstore-ls`,
//! `xenstore-read`, … with `XENSTORED_PATH` pointing at the socket). One thread reads each
//! client; every request is handled under one lock, and whatever the request queued on any
//! connection (its reply, other clients' watch events) is written out before the lock is
//! released, so clients see events in the daemon's order.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use super::{ConnId, Xenstored};

/// The daemon and the write side of every client socket.
#[derive(Debug)]
pub struct Shared {
    /// The store.
    pub store: Xenstored,
    streams: HashMap<ConnId, UnixStream>,
}

impl Shared {
    /// Writes every queued message of every connection that has output.
    fn flush(&mut self) {
        for conn in self.store.take_dirty() {
            while let Some(bytes) = self.store.pop_output(conn) {
                let ok = self
                    .streams
                    .get_mut(&conn)
                    .is_some_and(|s| s.write_all(&bytes).is_ok());
                if !ok {
                    self.streams.remove(&conn);
                    self.store.disconnect(conn);
                    break;
                }
            }
        }
    }
}

/// A running socket server.
#[derive(Debug)]
pub struct SocketServer {
    path: PathBuf,
    shared: Arc<Mutex<Shared>>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    match shared.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

fn serve_client(shared: Arc<Mutex<Shared>>, conn: ConnId, mut stream: UnixStream) {
    let mut buf = [0u8; 4096];
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut s = lock(&shared);
        let fed = s.store.feed(conn, &buf[..n]);
        s.flush();
        if fed.is_err() {
            s.streams.remove(&conn);
            break;
        }
    }
    let mut s = lock(&shared);
    s.streams.remove(&conn);
    s.store.disconnect(conn);
}

impl SocketServer {
    /// Binds `path` (replacing a stale socket file) and serves `store` on it in background
    /// threads.
    pub fn start(path: &Path, store: Xenstored) -> io::Result<Self> {
        if path.exists() {
            std::fs::remove_file(path)?;
        }
        let listener = UnixListener::bind(path)?;
        listener.set_nonblocking(true)?;
        let shared = Arc::new(Mutex::new(Shared {
            store,
            streams: HashMap::new(),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let acceptor = {
            let shared = Arc::clone(&shared);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let Ok(writer) = stream.try_clone() else {
                                continue;
                            };
                            if stream.set_nonblocking(false).is_err() {
                                continue;
                            }
                            let conn = {
                                let mut s = lock(&shared);
                                let conn = s.store.connect_socket();
                                s.streams.insert(conn, writer);
                                conn
                            };
                            let shared = Arc::clone(&shared);
                            std::thread::spawn(move || serve_client(shared, conn, stream));
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(5));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        };
        Ok(Self {
            path: path.to_path_buf(),
            shared,
            stop,
            acceptor: Some(acceptor),
        })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on the store under the server lock, then flushes whatever it queued.
    pub fn with_store<R>(&self, f: impl FnOnce(&mut Xenstored) -> R) -> R {
        let mut s = lock(&self.shared);
        let r = f(&mut s.store);
        s.flush();
        r
    }

    /// Blocks serving until the process is killed.
    pub fn wait(mut self) {
        if let Some(h) = self.acceptor.take() {
            let _ = h.join();
        }
    }

    /// Stops accepting, closes every client and removes the socket file.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.acceptor.take() {
            let _ = h.join();
        }
        let mut s = lock(&self.shared);
        for (_, stream) in s.streams.drain() {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Drop for SocketServer {
    fn drop(&mut self) {
        if self.acceptor.is_some() {
            self.shutdown();
        }
    }
}
