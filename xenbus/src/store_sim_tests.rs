//! STORE, EVTCHN, SHARED_INFO and SUSPEND together on the simulated machine, talking to
//! the simulator's xenstored over the real ring page and store event channel.

use super::*;
use crate::evtchn::Evtchn;
use crate::shared_info::SharedInfo;
use crate::sim::Sim;
use crate::suspend::{Phase, Suspend, SuspendCallback};
use alloc::sync::Arc;
use std::sync::{Mutex, OnceLock};
use xen_include::xen::hvm::params::HvmParam;
use xen_sim::hv::SuspendOutcome;
use xen_sim::toolstack::machine::{HvGrants, StoreService};
use xen_sim::toolstack::{ShutdownRequest, Toolstack};
use xen_sim::xenstored::Xenstored;

struct World {
    s: Sim,
    si: &'static SharedInfo,
    evtchn: &'static Evtchn,
    store: &'static Store,
    channel: &'static Mutex<Option<&'static EvtchnStoreChannel>>,
    ts: Mutex<Toolstack>,
    domid: u32,
}

fn leak<T>(t: T) -> &'static T {
    Box::leak(Box::new(t))
}

fn world() -> &'static World {
    let s = Sim::new(2);
    let xs = Arc::new(Mutex::new(Xenstored::default()));
    let svc = StoreService::attach(s.m, &xs);
    s.m.hv.set_suspend_hook(Some(svc.suspend_hook()));
    let mut ts = Toolstack::new(&xs, Box::new(HvGrants::new(s.m.hv.clone())));
    let cfg = StoreService::domain_config(s.m);
    ts.create_domain(&cfg).unwrap();
    let si = leak(SharedInfo::new(s.xen, &*s.m.guest));
    si.acquire().unwrap();
    let evtchn = leak(Evtchn::new(s.xen, &*s.m.guest, si));
    let slot: &'static OnceLock<&'static Evtchn> = leak(OnceLock::new());
    slot.set(evtchn).ok();
    s.m.hv.set_upcall_handler(Some(Arc::new(move |vcpu| {
        if let Some(e) = slot.get() {
            e.interrupt(vcpu);
        }
    })));
    evtchn.enable_interrupts(None, 28);
    let store = leak(Store::new(s.xen, &*s.m.guest, 0x4242_0001));
    let channel = leak(EvtchnStoreChannel::open(s.xen, evtchn, store).unwrap());
    let ring = crate::shared::map_pfn(&*s.m.guest, s.m.layout().store_gfn).unwrap();
    store.connect(ring, Arc::new(channel));
    leak(World {
        s,
        si,
        evtchn,
        store,
        channel: leak(Mutex::new(Some(channel))),
        ts: Mutex::new(ts),
        domid: cfg.domid,
    })
}

#[test]
fn reads_writes_directories_and_transactions_against_xenstored() {
    let w = world();
    let name = w.store.read(None, None, b"name").unwrap();
    assert!(!name.is_empty());
    w.store
        .write(None, Some(b"data"), b"greeting", b"hello")
        .unwrap();
    assert_eq!(
        w.store.read(None, Some(b"data"), b"greeting").unwrap(),
        b"hello"
    );
    let dir = w.store.directory(None, None, b"data").unwrap();
    assert_eq!(dir, b"greeting\0");
    assert_eq!(
        w.store.read(None, None, b"data/missing"),
        Err(xen_include::status::STATUS_OBJECT_NAME_NOT_FOUND)
    );
    // A transaction that conflicts with a concurrent write is retried by the caller.
    let t = w.store.transaction_start().unwrap();
    let v = w.store.read(Some(t), None, b"data/greeting").unwrap();
    w.store.write(None, None, b"data/greeting", b"bye").unwrap();
    w.store.write(Some(t), None, b"data/copy", &v).unwrap();
    assert_eq!(w.store.transaction_end(t, true), Err(STATUS_RETRY));
    let t = w.store.transaction_start().unwrap();
    let v = w.store.read(Some(t), None, b"data/greeting").unwrap();
    w.store.write(Some(t), None, b"data/copy", &v).unwrap();
    w.store.transaction_end(t, true).unwrap();
    assert_eq!(w.store.read(None, None, b"data/copy").unwrap(), b"bye");
    // Absolute paths and the path limit.
    let home = format!("/local/domain/{}/data/greeting", w.domid);
    assert_eq!(w.store.read(None, None, home.as_bytes()).unwrap(), b"bye");
    assert_eq!(
        w.store.read(None, None, &vec![b'a'; 3000]),
        Err(xen_include::status::STATUS_INVALID_BUFFER_SIZE)
    );
}

struct Hits(std::sync::atomic::AtomicUsize);

impl crate::evtchn::EvtchnCallback for Hits {
    fn call(&self) -> bool {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        true
    }
}

struct Step(
    &'static str,
    &'static Mutex<Vec<&'static str>>,
    Box<dyn Fn() + Send + Sync>,
);

impl SuspendCallback for Step {
    fn call(&self) {
        // The test's record, not the driver's: runs at HIGH_LEVEL in the early phase.
        let _host = common::irql::model::HostSide::enter();
        self.1.lock().unwrap().push(self.0);
        (self.2)();
    }
}

#[test]
fn a_watch_fires_then_a_suspend_resume_leaves_everything_working() {
    let w = world();
    let event = 0x5000usize;
    let watch = w.store.watch_add(None, b"control/shutdown", event).unwrap();
    assert_eq!(w.s.m.guest.event_sets(event), 1, "initial fire");
    w.ts.lock()
        .unwrap()
        .request_shutdown(w.domid, ShutdownRequest::Suspend)
        .unwrap();
    // The toolstack's write reaches us through an event: the store callback polls.
    assert_eq!(w.s.m.guest.event_sets(event), 2);
    assert_eq!(
        w.store.read(None, None, b"control/shutdown").unwrap(),
        b"suspend"
    );
    w.store.write(None, None, b"control/shutdown", b"").unwrap();
    assert_eq!(w.s.m.guest.event_sets(event), 3, "our own write fires too");

    // Register the resume sequence in upstream order.
    let order: &'static Mutex<Vec<&'static str>> = leak(Mutex::new(Vec::new()));
    let suspend = leak(Suspend::new(w.s.xen, &*w.s.m.guest));
    let (e, si, st, api, chan) = (w.evtchn, w.si, w.store, w.s.xen, w.channel);
    let gfn = w.s.m.layout().store_gfn;
    let guest = &*w.s.m.guest;
    let g: &'static crate::gnttab::Gnttab =
        leak(crate::gnttab::Gnttab::new(w.s.xen, &*w.s.m.guest));
    g.acquire().unwrap();
    let grants = g.create_cache(0, 0).unwrap();
    let steps: Vec<(Phase, Step)> = vec![
        (
            Phase::Early,
            Step("evtchn", order, Box::new(move || e.suspend_early())),
        ),
        (
            Phase::Early,
            Step("shared_info", order, Box::new(move || si.suspend_early())),
        ),
        (
            Phase::Early,
            Step("gnttab", order, Box::new(move || g.suspend_early())),
        ),
        (
            Phase::Early,
            Step("store", order, Box::new(move || st.suspend_early())),
        ),
        (
            Phase::Late,
            Step(
                "evtchn",
                order,
                Box::new(move || e.enable_interrupts(None, 28)),
            ),
        ),
        (
            Phase::Late,
            Step(
                "store",
                order,
                Box::new(move || {
                    let mut c = chan.lock().unwrap();
                    if let Some(old) = c.take() {
                        old.close();
                    }
                    let new = leak(EvtchnStoreChannel::open(api, e, st).unwrap());
                    *c = Some(new);
                    let ring = crate::shared::map_pfn(guest, gfn).unwrap();
                    st.resume_late(ring, Arc::new(new));
                }),
            ),
        ),
    ];
    for (phase, step) in steps {
        suspend.register(phase, Arc::new(step)).unwrap();
    }
    let old_port = w.s.xen.hvm_get_param(HvmParam::STORE_EVTCHN.0).unwrap();
    w.s.m.hv.set_suspend_outcome(SuspendOutcome::Resume);
    assert_eq!(
        suspend.trigger_outcome(),
        crate::suspend::TriggerOutcome::Resumed
    );
    assert_eq!(
        *order.lock().unwrap(),
        [
            "evtchn",
            "shared_info",
            "gnttab",
            "store",
            "evtchn",
            "store"
        ]
    );
    // Grants work on the new host: a backend maps a page we grant.
    let page = common::os::Os::alloc_page(&*w.s.m.guest).unwrap();
    let entry = g.permit(grants, 0, page.pfn, false).unwrap();
    let r = g.reference(entry).unwrap();
    let (handle, _) = w.s.m.hv.backend_map_grant(0, r, false).unwrap();
    w.s.m.hv.backend_unmap_grant(0, handle).unwrap();
    g.revoke(entry).unwrap();
    // Event channels work on the new host.
    let hits = Arc::new(Hits(std::sync::atomic::AtomicUsize::new(0)));
    let ch = e
        .open(
            crate::evtchn::Kind::Unbound { remote_domain: 0 },
            false,
            hits.clone(),
        )
        .unwrap();
    let port = e.channel(ch).unwrap().port();
    let dom0 =
        w.s.m
            .hv
            .backend_bind_interdomain(0, w.s.m.hv.domid(), port)
            .unwrap();
    e.abi_ack(port);
    e.abi_unmask(port);
    w.s.m.hv.backend_send(0, dom0).unwrap();
    assert_eq!(hits.0.load(std::sync::atomic::Ordering::SeqCst), 1);
    e.close(ch);
    assert_eq!(suspend.count(), 1);
    // The store channel was re-opened on the port the toolstack re-created.
    let new_port = w.s.xen.hvm_get_param(HvmParam::STORE_EVTCHN.0).unwrap();
    let reopened = w.channel.lock().unwrap().unwrap();
    assert_eq!(
        u64::from(w.evtchn.channel(reopened.handle).unwrap().port()),
        new_port
    );
    let _ = old_port;
    // Every watch event was set at resume; the watch is inactive; the store works.
    assert_eq!(w.s.m.guest.event_sets(event), 4);
    w.store
        .write(None, None, b"control/shutdown", b"x")
        .unwrap();
    assert_eq!(
        w.s.m.guest.event_sets(event),
        4,
        "inactive watch stays quiet"
    );
    w.store.watch_remove(watch).unwrap();
    let watch = w.store.watch_add(None, b"control/shutdown", event).unwrap();
    assert_eq!(w.s.m.guest.event_sets(event), 5, "re-added: initial fire");
    w.store
        .write(None, None, b"control/shutdown", b"y")
        .unwrap();
    assert_eq!(w.s.m.guest.event_sets(event), 6);
    w.store.watch_remove(watch).unwrap();
    // A cancelled suspend runs no callback and keeps the count.
    w.s.m.hv.set_suspend_outcome(SuspendOutcome::Cancel);
    order.lock().unwrap().clear();
    assert!(matches!(
        suspend.trigger_outcome(),
        crate::suspend::TriggerOutcome::NotSuspended(_)
    ));
    assert!(order.lock().unwrap().is_empty());
    assert_eq!(suspend.count(), 1);
    assert_eq!(w.store.read(None, None, b"control/shutdown").unwrap(), b"y");
}

#[test]
fn two_threads_share_the_ring() {
    let w = world();
    let threads: Vec<_> = (0..2u32)
        .map(|t| {
            let store = w.store;
            std::thread::spawn(move || {
                xen_sim::guest::run_on(t, || {
                    for i in 0..40u32 {
                        let key = format!("data/t{t}/k{i}");
                        let value = format!("{t}-{i}");
                        store
                            .write(None, None, key.as_bytes(), value.as_bytes())
                            .unwrap();
                        assert_eq!(
                            store.read(None, None, key.as_bytes()).unwrap(),
                            value.as_bytes()
                        );
                    }
                })
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let dir = w.store.directory(None, None, b"data/t1").unwrap();
    assert_eq!(dir.split(|b| *b == 0).filter(|n| !n.is_empty()).count(), 40);
}
