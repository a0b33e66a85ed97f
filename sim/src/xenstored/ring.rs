//! The shared-ring transport: moves requests and replies between a guest's
//! `xenstore_domain_interface` page and the engine, as the C daemon's `readchn()` /
//! `writechn()` do, with the same index checks and error reporting.
//!
//! The page is reached through [`RingMemory`], so the machine model can hand over guest
//! memory (with whatever atomics it uses) and tests can use a plain `[u8]`.
#![forbid(unsafe_code)]

use super::abi as xs;
use super::{ConnId, Xenstored};

/// Byte-level access to a 4 KiB `xenstore_domain_interface` page.
pub trait RingMemory {
    /// Reads the little-endian `u32` at `offset`.
    fn load_u32(&self, offset: usize) -> u32;
    /// Writes the little-endian `u32` at `offset`.
    fn store_u32(&mut self, offset: usize, value: u32);
    /// Copies bytes out of the page.
    fn read_bytes(&self, offset: usize, out: &mut [u8]);
    /// Copies bytes into the page.
    fn write_bytes(&mut self, offset: usize, data: &[u8]);
}

impl RingMemory for [u8] {
    fn load_u32(&self, offset: usize) -> u32 {
        match self.get(offset..offset + 4) {
            Some(b) => u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            None => 0,
        }
    }

    fn store_u32(&mut self, offset: usize, value: u32) {
        if let Some(b) = self.get_mut(offset..offset + 4) {
            b.copy_from_slice(&value.to_le_bytes());
        }
    }

    fn read_bytes(&self, offset: usize, out: &mut [u8]) {
        if let Some(src) = self.get(offset..offset + out.len()) {
            out.copy_from_slice(src);
        }
    }

    fn write_bytes(&mut self, offset: usize, data: &[u8]) {
        if let Some(dst) = self.get_mut(offset..offset + data.len()) {
            dst.copy_from_slice(data);
        }
    }
}

/// What one pass over a ring did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingPass {
    /// Request bytes consumed.
    pub bytes_in: usize,
    /// Response bytes produced.
    pub bytes_out: usize,
    /// Event-channel notifications sent to the guest.
    pub notifications: usize,
    /// Set when the connection is (now) cut off: the `XENSTORE_ERROR_*` code.
    pub error: Option<u32>,
}

/// Ring size as an index type.
const RING: u32 = xs::XENSTORE_RING_SIZE;

fn mask(idx: u32) -> usize {
    (idx & (RING - 1)) as usize
}

/// Copies up to `want` request bytes from the ring (one `readchn()` call); `Err` when the
/// indices are corrupt.
fn read_chunk<M: RingMemory + ?Sized>(page: &mut M, want: usize) -> Result<Vec<u8>, ()> {
    let cons = page.load_u32(xs::OFF_REQ_CONS);
    let prod = page.load_u32(xs::OFF_REQ_PROD);
    if prod.wrapping_sub(cons) > RING {
        return Err(());
    }
    let mut len = (RING as usize) - mask(cons);
    len = len.min(prod.wrapping_sub(cons) as usize).min(want);
    let mut buf = vec![0u8; len];
    page.read_bytes(xs::OFF_REQ + mask(cons), &mut buf);
    page.store_u32(xs::OFF_REQ_CONS, cons.wrapping_add(len as u32));
    Ok(buf)
}

/// Copies up to `data.len()` response bytes into the ring (one `writechn()` call); returns
/// how many fitted, `Err` when the indices are corrupt.
fn write_chunk<M: RingMemory + ?Sized>(page: &mut M, data: &[u8]) -> Result<usize, ()> {
    let cons = page.load_u32(xs::OFF_RSP_CONS);
    let prod = page.load_u32(xs::OFF_RSP_PROD);
    if prod.wrapping_sub(cons) > RING {
        return Err(());
    }
    let mut len = (RING as usize) - mask(prod);
    len = len
        .min((RING - prod.wrapping_sub(cons)) as usize)
        .min(data.len());
    page.write_bytes(xs::OFF_RSP + mask(prod), &data[..len]);
    page.store_u32(xs::OFF_RSP_PROD, prod.wrapping_add(len as u32));
    Ok(len)
}

impl Xenstored {
    /// Serves an introduced domain's ring: consumes every complete request the guest put on
    /// it, processes them, and writes queued replies and watch events while there is room.
    /// `notify` is called for each event-channel kick xenstored would send to the guest.
    ///
    /// Call it when the guest signals the store event channel, and again after the guest
    /// consumed responses (queued output waits for room).
    pub fn process_ring<M: RingMemory + ?Sized>(
        &mut self,
        domid: u32,
        page: &mut M,
        notify: &mut dyn FnMut(),
    ) -> RingPass {
        let mut pass = RingPass::default();
        let Some(conn) = self.domain_connection(domid) else {
            return pass;
        };
        let may_write = self.ring_may_write(domid);
        loop {
            if let Some(err) = self.connection_error(conn) {
                pass.error = Some(err);
                return pass;
            }
            let mut progress = false;
            // Input: one message at a time, header first, like handle_input().
            loop {
                let needed = match self.conns.get(&conn).map(|c| c.decoder.needed()) {
                    Some(Ok(n)) => n,
                    Some(Err(_)) => {
                        self.cut_off(conn, page, xs::XENSTORE_ERROR_PROTO, &mut pass);
                        return pass;
                    }
                    None => return pass,
                };
                match read_chunk(page, needed) {
                    Err(()) => {
                        self.cut_off(conn, page, xs::XENSTORE_ERROR_RINGIDX, &mut pass);
                        return pass;
                    }
                    Ok(bytes) if bytes.is_empty() => break,
                    Ok(bytes) => {
                        pass.bytes_in += bytes.len();
                        pass.notifications += 1;
                        notify();
                        progress = true;
                        if self.feed_bytes(conn, &bytes).is_err() {
                            self.cut_off(conn, page, xs::XENSTORE_ERROR_PROTO, &mut pass);
                            return pass;
                        }
                    }
                }
            }
            // Output: whatever fits (unless the slow-reply fault holds it back).
            while let Some(msg) = if may_write {
                self.pop_output(conn)
            } else {
                None
            } {
                match write_chunk(page, &msg) {
                    Err(()) => {
                        self.push_front_output(conn, msg);
                        self.cut_off(conn, page, xs::XENSTORE_ERROR_RINGIDX, &mut pass);
                        return pass;
                    }
                    Ok(0) => {
                        self.push_front_output(conn, msg);
                        break;
                    }
                    Ok(n) => {
                        pass.bytes_out += n;
                        pass.notifications += 1;
                        notify();
                        progress = true;
                        if n < msg.len() {
                            self.push_front_output(conn, msg[n..].to_vec());
                        }
                    }
                }
            }
            if !progress {
                return pass;
            }
        }
    }

    /// Zeroes the four ring indices if the domain was (re-)introduced since the last call:
    /// `XS_INTRODUCE` resets the ring (`domain_conn_reset()`). Whoever owns the page calls
    /// this right after introducing.
    pub fn reset_ring_if_introduced<M: RingMemory + ?Sized>(&mut self, domid: u32, page: &mut M) {
        if self.take_ring_reset(domid) {
            for off in [
                xs::OFF_REQ_CONS,
                xs::OFF_REQ_PROD,
                xs::OFF_RSP_CONS,
                xs::OFF_RSP_PROD,
            ] {
                page.store_u32(off, 0);
            }
        }
    }

    fn cut_off<M: RingMemory + ?Sized>(
        &mut self,
        conn: ConnId,
        page: &mut M,
        err: u32,
        pass: &mut RingPass,
    ) {
        self.ignore_connection(conn, err);
        page.store_u32(xs::OFF_ERROR, err);
        pass.error = Some(err);
    }
}
