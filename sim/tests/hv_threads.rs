//! Scenario test: host threads acting as two vCPUs hammering each other with IPIs while the
//! interrupt handler consumes them — no deadlock, no lost event.

/// Heap use above DISPATCH_LEVEL panics, as pool use there bug-checks a real kernel.
#[global_allocator]
static ALLOCATOR: common::irql::model::CheckingAllocator =
    common::irql::model::CheckingAllocator::SYSTEM;

mod hvsupport;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use hvsupport::*;
use xen_sim::hv::abi::*;
use xen_sim::machine::Machine;

#[test]
fn concurrent_ipis_are_all_delivered() {
    let m = Arc::new(Machine::new());
    let si = Arc::new(GuestSharedInfo::map(&m));
    // IPI port for each target vCPU.
    let ports: Vec<u32> = (0..2)
        .map(|v| {
            let mut b = EvtchnBindIpi { vcpu: v, port: 0 };
            assert_eq!(evtchn(&m, EvtchnOp::BIND_IPI, &mut b), 0);
            b.port
        })
        .collect();
    for v in 0..2u32 {
        let mut uv = XenHvmEvtchnUpcallVector {
            vcpu: v,
            vector: 0xF3,
        };
        assert_eq!(hvm(&m, HvmOp::SET_EVTCHN_UPCALL_VECTOR, &mut uv), 0);
    }
    let handled: Arc<[AtomicU64; 2]> = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
    {
        let (si, handled, ports) = (si.clone(), handled.clone(), ports.clone());
        m.hv.set_upcall_handler(Some(Arc::new(move |v| {
            // The test's stand-in ISR is no driver: its record is not checked.
            let _host = common::irql::model::HostSide::enter();
            while si.take_upcall(v) {
                si.take_sel(v);
                let p = ports[v as usize];
                if si.pending(p) {
                    si.clear_pending(p);
                    handled[v as usize].fetch_add(1, Ordering::SeqCst);
                }
            }
        })));
    }
    const N: u64 = 2000;
    let threads: Vec<_> = (0..2u32)
        .map(|me| {
            let m = m.clone();
            let target = ports[(1 - me) as usize];
            std::thread::spawn(move || {
                xen_sim::guest::run_on(me, || {
                    for _ in 0..N {
                        assert_eq!(send(&m, target), 0);
                    }
                })
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    m.hv.deliver_upcalls();
    // Sends coalesce while an event is pending, so fewer handled than sent is fine; what
    // must hold is that nothing is left pending and undelivered.
    for v in 0..2u32 {
        assert!(
            !si.pending(ports[v as usize]),
            "vCPU {v} left an event pending"
        );
        assert!(!m.hv.interrupt_pending(v));
        assert!(handled[v as usize].load(Ordering::SeqCst) > 0);
    }
}
