//! A console daemon for a [`Machine`]: dom0's end of the guest's PV console, draining the
//! output ring of `xencons_interface` when the guest notifies and feeding the input ring, as
//! `xenconsoled` does (including giving up on a guest whose ring indices are out of bounds).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use xen_include::xen::io::console::{
    mask_xencons_idx, XenconsInterface, XENCONS_IN_SIZE, XENCONS_OUT_SIZE,
};

use crate::hv::Hypervisor;
use crate::machine::Machine;

const IN_CONS: usize = core::mem::offset_of!(XenconsInterface, in_cons);
const IN_PROD: usize = core::mem::offset_of!(XenconsInterface, in_prod);
const OUT_CONS: usize = core::mem::offset_of!(XenconsInterface, out_cons);
const OUT_PROD: usize = core::mem::offset_of!(XenconsInterface, out_prod);
const INPUT: usize = core::mem::offset_of!(XenconsInterface, input);
const OUTPUT: usize = core::mem::offset_of!(XenconsInterface, output);

struct Inner {
    hv: Arc<Hypervisor>,
    /// dom0's mapping of the ring page (the hypervisor's direct map: stable).
    page: usize,
    output: Mutex<Vec<u8>>,
    broken: Mutex<Option<String>>,
}

/// The console daemon attached to one machine.
#[derive(Clone)]
pub struct Xenconsoled {
    inner: Arc<Inner>,
}

impl Inner {
    fn index(&self, offset: usize) -> &AtomicU32 {
        // SAFETY: `page` is the start of a mapped machine frame that lives as long as the
        // hypervisor (held by `hv`); the index fields are 4-byte aligned inside it.
        unsafe { &*((self.page + offset) as *const AtomicU32) }
    }

    fn read(&self, offset: usize) -> u8 {
        // SAFETY: in bounds of the ring page (offsets are masked by the ring sizes).
        unsafe { ((self.page + offset) as *const u8).read_volatile() }
    }

    fn write(&self, offset: usize, value: u8) {
        // SAFETY: as for `read`.
        unsafe { ((self.page + offset) as *mut u8).write_volatile(value) }
    }
}

impl Xenconsoled {
    /// Serve `machine`'s console: every notification on dom0's console port drains the
    /// output ring.
    pub fn attach(machine: &Machine) -> Self {
        let ring = machine.console();
        let inner = Arc::new(Inner {
            hv: machine.hv.clone(),
            page: machine.ring_ptr(ring.gfn) as usize,
            output: Mutex::new(Vec::new()),
            broken: Mutex::new(None),
        });
        let d = Xenconsoled { inner };
        let me = d.clone();
        machine.hv.set_backend_handler(
            ring.backend_dom,
            ring.backend_port,
            Some(Arc::new(move |_| {
                me.drain();
            })),
        );
        d
    }

    /// Move what the guest produced into the output buffer; returns the bytes taken.
    pub fn drain(&self) -> usize {
        let i = &self.inner;
        if i.broken.lock().unwrap_or_else(|p| p.into_inner()).is_some() {
            return 0;
        }
        let cons = i.index(OUT_CONS).load(Ordering::Acquire);
        let prod = i.index(OUT_PROD).load(Ordering::Acquire);
        let size = prod.wrapping_sub(cons) as usize;
        if size > XENCONS_OUT_SIZE {
            *i.broken.lock().unwrap_or_else(|p| p.into_inner()) = Some(format!(
                "out ring indices out of bounds: cons {cons:#x} prod {prod:#x}"
            ));
            return 0;
        }
        let mut out = i.output.lock().unwrap_or_else(|p| p.into_inner());
        for k in 0..size as u32 {
            out.push(i.read(OUTPUT + mask_xencons_idx(cons.wrapping_add(k), XENCONS_OUT_SIZE)));
        }
        i.index(OUT_CONS).store(prod, Ordering::Release);
        if size > 0 {
            let ring = i.hv.ring_backend(false);
            let _ = i.hv.backend_send(0, ring);
        }
        size
    }

    /// Everything the guest wrote to its console so far.
    pub fn output(&self) -> String {
        String::from_utf8_lossy(&self.inner.output.lock().unwrap_or_else(|p| p.into_inner()))
            .into_owned()
    }

    /// Why the daemon stopped serving the guest, if it did.
    pub fn broken(&self) -> Option<String> {
        self.inner
            .broken
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Type `data` at the console: as much as fits in the input ring; notifies the guest.
    /// Returns the bytes queued.
    pub fn send_input(&self, data: &[u8]) -> usize {
        let i = &self.inner;
        let cons = i.index(IN_CONS).load(Ordering::Acquire);
        let prod = i.index(IN_PROD).load(Ordering::Acquire);
        let used = prod.wrapping_sub(cons) as usize;
        if used > XENCONS_IN_SIZE {
            return 0;
        }
        let n = data.len().min(XENCONS_IN_SIZE - used);
        for (k, b) in data[..n].iter().enumerate() {
            i.write(
                INPUT + mask_xencons_idx(prod.wrapping_add(k as u32), XENCONS_IN_SIZE),
                *b,
            );
        }
        i.index(IN_PROD)
            .store(prod.wrapping_add(n as u32), Ordering::Release);
        if n > 0 {
            let ring = i.hv.ring_backend(false);
            let _ = i.hv.backend_send(0, ring);
        }
        n
    }
}
