//! CONSOLE (spec §5.12): the PV console ring (`xencons_interface`) shared with
//! xenconsoled — byte streams in both directions, a notification on the console event
//! channel when anything moved, wakeup events set on every console event, and the
//! console as a log disposition (`\n` → `\r\n`).
//!
//! The ring page (from grant entry 0) and the channel (from `HVM_PARAM_CONSOLE_EVTCHN`)
//! are handed in by the FDO at Acquire and again after resume ([`Console::connect`]).
//! Indices come from the other side: a producer more than a ring ahead of its consumer,
//! or a consumer ahead of its producer, is refused (nothing copied, logged once per
//! connection) instead of trusted.
#![forbid(unsafe_code)]

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::mem::offset_of;

use common::sync::{HighLock, SpinLock};
use xen_include::api::XenApi;
use xen_include::status::{NtStatus, STATUS_INVALID_PARAMETER, STATUS_NO_MEMORY};
use xen_include::xen::io::console::{
    mask_xencons_idx, XenconsInterface, XENCONS_IN_SIZE, XENCONS_OUT_SIZE,
};

use crate::shared::{mb, rmb, wmb, SharedMemory};

const IN: usize = offset_of!(XenconsInterface, input);
const OUT: usize = offset_of!(XenconsInterface, output);
const IN_CONS: usize = offset_of!(XenconsInterface, in_cons);
const IN_PROD: usize = offset_of!(XenconsInterface, in_prod);
const OUT_CONS: usize = offset_of!(XenconsInterface, out_cons);
const OUT_PROD: usize = offset_of!(XenconsInterface, out_prod);

/// Size of the log disposition's staging buffer.
pub const LOG_STAGING_SIZE: usize = 1024;

/// The console event channel as the console needs it (EVTCHN `Send`).
pub trait ConsoleChannel: Send + Sync {
    /// Notify xenconsoled.
    fn notify(&self);
}

/// Where wakeup events are set (`KeSetEvent` on the registered `PKEVENT`s).
pub trait WakeupSink: Send + Sync {
    /// Signal `event`.
    fn set_event(&self, event: usize);
}

struct Connection {
    ring: SharedMemory,
    channel: Arc<dyn ConsoleChannel>,
    hostile_logged: bool,
}

/// The CONSOLE subsystem.
pub struct Console<'a> {
    api: &'a dyn XenApi,
    /// HIGH_LEVEL: `ConsoleWrite` runs from xen.sys's log dispositions under its
    /// HIGH_LEVEL log lock.
    connection: HighLock<Option<Connection>>,
    /// Read by the console channel's event callback (in the event-channel DPC, at
    /// DISPATCH_LEVEL, where KeSetEvent is allowed); `WakeupAdd` grows it under the lock.
    wakeups: SpinLock<Vec<(usize, usize)>>,
    next_wakeup: SpinLock<usize>,
    sink: &'a dyn WakeupSink,
}

/// Why the ring was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hostile {
    In(u32, u32),
    Out(u32, u32),
}

impl<'a> Console<'a> {
    /// A disconnected console logging through `api`, signalling wakeups through `sink`.
    pub fn new(api: &'a dyn XenApi, sink: &'a dyn WakeupSink) -> Self {
        Self {
            api,
            connection: HighLock::new(None),
            wakeups: SpinLock::new(Vec::new()),
            next_wakeup: SpinLock::new(1),
            sink,
        }
    }

    /// Attach the ring and the channel (Acquire, and the LATE resume callback, which
    /// re-opens the channel). The ring must cover a whole `xencons_interface`.
    pub fn connect(
        &self,
        ring: SharedMemory,
        channel: Arc<dyn ConsoleChannel>,
    ) -> Result<(), NtStatus> {
        if ring.len() < core::mem::size_of::<XenconsInterface>() {
            return Err(STATUS_INVALID_PARAMETER);
        }
        let new = Some(Connection {
            ring,
            channel,
            hostile_logged: false,
        });
        // Any old connection (its channel, its ring) goes after the HIGH_LEVEL lock.
        let old = core::mem::replace(&mut *self.connection.lock(), new);
        drop(old);
        Ok(())
    }

    /// Detach (Release, and the suspend path before the channel goes stale).
    pub fn disconnect(&self) {
        let old = self.connection.lock().take();
        drop(old);
    }

    /// Whether a ring is attached.
    pub fn connected(&self) -> bool {
        self.connection.lock().is_some()
    }

    fn report(&self, c: &mut Connection, h: Hostile) {
        if !c.hostile_logged {
            c.hostile_logged = true;
            error!(
                self.api,
                "CONSOLE: hostile ring indices {:?}: ring ignored", h
            );
        }
    }

    /// Validated `(cons, prod)` of the input ring.
    fn in_indices(c: &Connection) -> Result<(u32, u32), Hostile> {
        let cons = c.ring.load_u32(IN_CONS).unwrap_or(0);
        let prod = c.ring.load_u32(IN_PROD).unwrap_or(0);
        rmb();
        if prod.wrapping_sub(cons) as usize > XENCONS_IN_SIZE {
            return Err(Hostile::In(cons, prod));
        }
        Ok((cons, prod))
    }

    /// Validated `(cons, prod)` of the output ring.
    fn out_indices(c: &Connection) -> Result<(u32, u32), Hostile> {
        let cons = c.ring.load_u32(OUT_CONS).unwrap_or(0);
        let prod = c.ring.load_u32(OUT_PROD).unwrap_or(0);
        mb();
        if prod.wrapping_sub(cons) as usize > XENCONS_OUT_SIZE {
            return Err(Hostile::Out(cons, prod));
        }
        Ok((cons, prod))
    }

    /// `ConsoleCanRead`: input is waiting.
    pub fn can_read(&self) -> bool {
        let mut guard = self.connection.lock();
        let Some(c) = guard.as_mut() else {
            return false;
        };
        match Self::in_indices(c) {
            Ok((cons, prod)) => cons != prod,
            Err(h) => {
                self.report(c, h);
                false
            }
        }
    }

    /// `ConsoleRead`: copy what is waiting into `data`; bytes copied (0 when disconnected).
    pub fn read(&self, data: &mut [u8]) -> usize {
        let mut guard = self.connection.lock();
        let Some(c) = guard.as_mut() else {
            return 0;
        };
        let (mut cons, prod) = match Self::in_indices(c) {
            Ok(i) => i,
            Err(h) => {
                self.report(c, h);
                return 0;
            }
        };
        let mut done = 0;
        while cons != prod && done < data.len() {
            let offset = mask_xencons_idx(cons, XENCONS_IN_SIZE);
            let run = (XENCONS_IN_SIZE - offset)
                .min(prod.wrapping_sub(cons) as usize)
                .min(data.len() - done);
            let Some(dst) = data.get_mut(done..done + run) else {
                break;
            };
            if c.ring.read_bytes(IN + offset, dst).is_err() {
                break;
            }
            cons = cons.wrapping_add(run as u32);
            done += run;
        }
        if done > 0 {
            mb();
            let _ = c.ring.store_u32(IN_CONS, cons);
            c.channel.notify();
        }
        done
    }

    /// `ConsoleCanWrite`: there is room in the output ring.
    pub fn can_write(&self) -> bool {
        let mut guard = self.connection.lock();
        let Some(c) = guard.as_mut() else {
            return false;
        };
        match Self::out_indices(c) {
            Ok((cons, prod)) => (prod.wrapping_sub(cons) as usize) < XENCONS_OUT_SIZE,
            Err(h) => {
                self.report(c, h);
                false
            }
        }
    }

    /// `ConsoleWrite`: copy as much of `data` as fits; bytes copied (0 when disconnected).
    pub fn write(&self, data: &[u8]) -> usize {
        let mut guard = self.connection.lock();
        let Some(c) = guard.as_mut() else {
            return 0;
        };
        let (cons, mut prod) = match Self::out_indices(c) {
            Ok(i) => i,
            Err(h) => {
                self.report(c, h);
                return 0;
            }
        };
        let mut done = 0;
        while done < data.len() {
            let free = XENCONS_OUT_SIZE - prod.wrapping_sub(cons) as usize;
            if free == 0 {
                break;
            }
            let offset = mask_xencons_idx(prod, XENCONS_OUT_SIZE);
            let run = (XENCONS_OUT_SIZE - offset).min(free).min(data.len() - done);
            let Some(src) = data.get(done..done + run) else {
                break;
            };
            if c.ring.write_bytes(OUT + offset, src).is_err() {
                break;
            }
            prod = prod.wrapping_add(run as u32);
            done += run;
        }
        if done > 0 {
            wmb();
            let _ = c.ring.store_u32(OUT_PROD, prod);
            c.channel.notify();
        }
        done
    }

    /// A console event arrived: set every registered wakeup event (the original's DPC).
    pub fn event(&self) {
        let wakeups = self.wakeups.lock();
        for (_, event) in wakeups.iter() {
            self.sink.set_event(*event);
        }
    }

    /// `ConsoleWakeupAdd`: a handle (non-zero) for `event`.
    pub fn wakeup_add(&self, event: usize) -> Result<usize, NtStatus> {
        if event == 0 {
            return Err(STATUS_INVALID_PARAMETER);
        }
        let id = {
            let mut n = self.next_wakeup.lock();
            let id = *n;
            *n = n.wrapping_add(1).max(1);
            id
        };
        let mut w = self.wakeups.lock();
        w.try_reserve(1).map_err(|_| STATUS_NO_MEMORY)?;
        w.push((id, event));
        Ok(id)
    }

    /// `ConsoleWakeupRemove`.
    pub fn wakeup_remove(&self, id: usize) -> Result<(), NtStatus> {
        let mut w = self.wakeups.lock();
        let i = w
            .iter()
            .position(|(i, _)| *i == id)
            .ok_or(STATUS_INVALID_PARAMETER)?;
        w.remove(i);
        Ok(())
    }

    /// The log disposition: `text` with `\n` expanded to `\r\n`, staged through a 1 KiB
    /// buffer and written without waiting (what does not fit is dropped). Bytes of the
    /// expanded text written.
    pub fn log(&self, text: &[u8]) -> usize {
        let mut staging = [0u8; LOG_STAGING_SIZE];
        let mut len = 0;
        let mut written = 0;
        for &b in text {
            let expanded: &[u8] = if b == b'\n' {
                b"\r\n"
            } else {
                core::slice::from_ref(&b)
            };
            if len + expanded.len() > LOG_STAGING_SIZE {
                let chunk = staging.get(..len).unwrap_or(&[]);
                let n = self.write(chunk);
                written += n;
                if n < len {
                    return written;
                }
                len = 0;
            }
            for &e in expanded {
                if let Some(slot) = staging.get_mut(len) {
                    *slot = e;
                    len += 1;
                }
            }
        }
        written + self.write(staging.get(..len).unwrap_or(&[]))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::shared::OwnedPage;
    use crate::testing::TestApi;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Mutex;

    #[derive(Default)]
    pub struct Notes(pub AtomicU32);
    impl ConsoleChannel for Notes {
        fn notify(&self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    #[derive(Default)]
    pub struct Events(pub Mutex<Vec<usize>>);
    impl WakeupSink for Events {
        fn set_event(&self, e: usize) {
            self.0.lock().unwrap().push(e);
        }
    }

    /// xenconsoled's side of a ring page.
    pub struct Backend(pub SharedMemory);
    impl Backend {
        pub fn drain_out(&self) -> Vec<u8> {
            let m = &self.0;
            let (mut cons, prod) = (m.load_u32(OUT_CONS).unwrap(), m.load_u32(OUT_PROD).unwrap());
            let mut v = Vec::new();
            while cons != prod {
                v.push(
                    m.load_u8(OUT + mask_xencons_idx(cons, XENCONS_OUT_SIZE))
                        .unwrap(),
                );
                cons = cons.wrapping_add(1);
            }
            m.store_u32(OUT_CONS, cons).unwrap();
            v
        }
        /// Feed input; returns how much fitted.
        pub fn feed_in(&self, data: &[u8]) -> usize {
            let m = &self.0;
            let (cons, mut prod) = (m.load_u32(IN_CONS).unwrap(), m.load_u32(IN_PROD).unwrap());
            let mut n = 0;
            for b in data {
                if prod.wrapping_sub(cons) as usize == XENCONS_IN_SIZE {
                    break;
                }
                m.store_u8(IN + mask_xencons_idx(prod, XENCONS_IN_SIZE), *b)
                    .unwrap();
                prod = prod.wrapping_add(1);
                n += 1;
            }
            m.store_u32(IN_PROD, prod).unwrap();
            n
        }
    }

    fn setup(
        start: u32,
    ) -> (
        &'static TestApi,
        Console<'static>,
        Backend,
        Arc<Notes>,
        &'static Events,
    ) {
        let api = TestApi::leak();
        let events: &'static Events = Box::leak(Box::default());
        let console = Console::new(api, events);
        let page = OwnedPage::new();
        let ring = page.view();
        for i in [IN_CONS, IN_PROD, OUT_CONS, OUT_PROD] {
            ring.store_u32(i, start).unwrap();
        }
        let notes = Arc::new(Notes::default());
        console.connect(ring, notes.clone()).unwrap();
        (api, console, Backend(page.view()), notes, events)
    }

    #[test]
    fn disconnected_console_moves_nothing() {
        let api = TestApi::leak();
        let events = Events::default();
        let c = Console::new(api, &events);
        assert!(!c.can_read() && !c.can_write());
        assert_eq!(c.read(&mut [0; 8]), 0);
        assert_eq!(c.write(b"x"), 0);
        let short = crate::shared::sub_view(&OwnedPage::new().view(), 0, 3000).unwrap();
        assert_eq!(
            c.connect(short, Arc::new(Notes::default())),
            Err(STATUS_INVALID_PARAMETER)
        );
    }

    #[test]
    fn full_ring_both_ways_across_index_wrap() {
        // Indices start just below the 32-bit wrap.
        let (_api, c, be, notes, _) = setup(u32::MAX - 100);
        let data: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        // Output: only a ring's worth fits until the backend drains.
        assert!(c.can_write());
        assert_eq!(c.write(&data), XENCONS_OUT_SIZE);
        assert!(!c.can_write());
        assert_eq!(c.write(&data), 0);
        let n1 = notes.0.load(Ordering::SeqCst);
        assert_eq!(n1, 1, "notify only when something moved");
        assert_eq!(be.drain_out(), data[..XENCONS_OUT_SIZE]);
        assert_eq!(c.write(&data[XENCONS_OUT_SIZE..]), XENCONS_OUT_SIZE);
        assert_eq!(be.drain_out(), data[XENCONS_OUT_SIZE..2 * XENCONS_OUT_SIZE]);
        // Input: the backend fills the ring; small reads drain it in order.
        assert!(!c.can_read());
        assert_eq!(be.feed_in(&data), XENCONS_IN_SIZE);
        assert_eq!(be.feed_in(&data), 0);
        assert!(c.can_read());
        let mut got = Vec::new();
        let mut buf = [0u8; 300];
        loop {
            let n = c.read(&mut buf);
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, data[..XENCONS_IN_SIZE]);
        assert!(!c.can_read());
        assert_eq!(notes.0.load(Ordering::SeqCst), 2 + 4);
    }

    #[test]
    fn hostile_indices_are_refused_and_logged_once() {
        let (api, c, be, _, _) = setup(0);
        be.0.store_u32(IN_PROD, 5000).unwrap();
        assert!(!c.can_read());
        assert_eq!(c.read(&mut [0; 64]), 0);
        // Consumer ahead of producer on the output ring.
        be.0.store_u32(OUT_CONS, 10).unwrap();
        assert!(!c.can_write());
        assert_eq!(c.write(b"hello"), 0);
        let hostile = api
            .logs
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, l)| l.contains("hostile ring indices"))
            .count();
        assert_eq!(hostile, 1);
        // Sane again: works (a re-connect re-arms the log).
        be.0.store_u32(IN_PROD, 0).unwrap();
        be.0.store_u32(OUT_CONS, 0).unwrap();
        assert_eq!(c.write(b"hello"), 5);
        assert_eq!(be.drain_out(), b"hello");
    }

    #[test]
    fn wakeups_and_log_disposition() {
        let (_api, c, be, _, events) = setup(7);
        let a = c.wakeup_add(0x1000).unwrap();
        let b = c.wakeup_add(0x2000).unwrap();
        assert_eq!(c.wakeup_add(0), Err(STATUS_INVALID_PARAMETER));
        c.event();
        assert_eq!(*events.0.lock().unwrap(), vec![0x1000, 0x2000]);
        c.wakeup_remove(a).unwrap();
        assert_eq!(c.wakeup_remove(a), Err(STATUS_INVALID_PARAMETER));
        c.event();
        assert_eq!(events.0.lock().unwrap().len(), 3);
        c.wakeup_remove(b).unwrap();
        assert_eq!(c.log(b"XENBUS|line one\nline two\n"), 27);
        assert_eq!(be.drain_out(), b"XENBUS|line one\r\nline two\r\n");
        // Longer than the staging buffer: staged in chunks, nothing lost while it fits.
        let long = vec![b'\n'; 900];
        assert_eq!(c.log(&long), 1800);
        assert_eq!(be.drain_out(), b"\r\n".repeat(900));
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Whatever xenconsoled writes into the indices, the guest never panics, never
            /// copies more than the caller's buffer or the ring holds, moves its own index
            /// only by what it copied, and refuses (0) whenever the indices are impossible.
            #[test]
            fn any_indices_are_survived(
                in_cons in any::<u32>(), in_delta in prop_oneof![0u32..=1100, any::<u32>()],
                out_cons in any::<u32>(), out_delta in prop_oneof![0u32..=2100, any::<u32>()],
                read_len in 0usize..3000, write_len in 0usize..5000,
            ) {
                let (_api, c, be, _notes, _) = setup(0);
                let ring = &be.0;
                ring.store_u32(IN_CONS, in_cons).unwrap();
                ring.store_u32(IN_PROD, in_cons.wrapping_add(in_delta)).unwrap();
                ring.store_u32(OUT_CONS, out_cons).unwrap();
                ring.store_u32(OUT_PROD, out_cons.wrapping_add(out_delta)).unwrap();
                let mut buf = vec![0u8; read_len];
                let n = c.read(&mut buf);
                if in_delta as usize > XENCONS_IN_SIZE {
                    prop_assert_eq!(n, 0);
                } else {
                    prop_assert_eq!(n, read_len.min(in_delta as usize));
                }
                prop_assert_eq!(ring.load_u32(IN_CONS).unwrap(), in_cons.wrapping_add(n as u32));
                let data = vec![0x5Au8; write_len];
                let w = c.write(&data);
                if out_delta as usize > XENCONS_OUT_SIZE {
                    prop_assert_eq!(w, 0);
                } else {
                    prop_assert_eq!(w, write_len.min(XENCONS_OUT_SIZE - out_delta as usize));
                }
                prop_assert_eq!(
                    ring.load_u32(OUT_PROD).unwrap(),
                    out_cons.wrapping_add(out_delta).wrapping_add(w as u32)
                );
            }
        }
    }
}
