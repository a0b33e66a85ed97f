//! Scenario test: the guest's PV console through the console daemon — output drained on
//! notification, input delivered with an event, and a guest with corrupt indices abandoned.

/// Heap use above DISPATCH_LEVEL panics, as pool use there bug-checks a real kernel.
#[global_allocator]
static ALLOCATOR: common::irql::model::CheckingAllocator =
    common::irql::model::CheckingAllocator::SYSTEM;

mod hvsupport;

use std::sync::atomic::Ordering;

use hvsupport::*;
use xen_include::xen::io::console::{XenconsInterface, XENCONS_OUT_SIZE};
use xen_sim::hv::abi::*;
use xen_sim::machine::Machine;
use xen_sim::xenconsoled::Xenconsoled;

const OUT: usize = core::mem::offset_of!(XenconsInterface, output);
const OUT_PROD: usize = core::mem::offset_of!(XenconsInterface, out_prod);
const OUT_CONS: usize = core::mem::offset_of!(XenconsInterface, out_cons);
const IN: usize = core::mem::offset_of!(XenconsInterface, input);
const IN_PROD: usize = core::mem::offset_of!(XenconsInterface, in_prod);

/// The guest side: write `text` into the out ring (wrapping) and notify.
fn guest_write(m: &Machine, ring: &GuestPage, port: u32, text: &[u8]) {
    let prod = ring.u32(OUT_PROD).load(Ordering::SeqCst);
    for (k, b) in text.iter().enumerate() {
        let idx = (prod as usize + k) & (XENCONS_OUT_SIZE - 1);
        ring.u8(OUT + idx).store(*b, Ordering::SeqCst);
    }
    ring.u32(OUT_PROD)
        .store(prod.wrapping_add(text.len() as u32), Ordering::SeqCst);
    assert_eq!(send(m, port), 0);
}

#[test]
fn output_input_and_a_broken_guest() {
    let m = Machine::new();
    let cons = Xenconsoled::attach(&m);
    let si = GuestSharedInfo::map(&m);
    let ring = GuestPage::at(&m, m.layout().console_gfn);
    let port = get_param(&m, HvmParam::CONSOLE_EVTCHN).unwrap() as u32;
    guest_write(&m, &ring, port, b"hello ");
    // Wrap around the end of the ring.
    ring.u32(OUT_PROD).store(2046, Ordering::SeqCst);
    ring.u32(OUT_CONS).store(2046, Ordering::SeqCst);
    guest_write(&m, &ring, port, b"world\n");
    assert_eq!(cons.output(), "hello world\n");
    assert_eq!(ring.u32(OUT_CONS).load(Ordering::SeqCst), 2052);
    assert!(si.pending(port), "the daemon signals consumption");
    // Input.
    si.clear_pending(port);
    assert_eq!(cons.send_input(b"ls\r"), 3);
    assert_eq!(ring.u32(IN_PROD).load(Ordering::SeqCst), 3);
    assert_eq!(ring.u8(IN + 2).load(Ordering::SeqCst), b'\r');
    assert!(si.pending(port));
    // A guest that moves its producer beyond the ring size is given up on.
    ring.u32(OUT_PROD).store(2052 + 5000, Ordering::SeqCst);
    assert_eq!(send(&m, port), 0);
    assert!(cons.broken().is_some());
    assert_eq!(cons.output(), "hello world\n");
}
