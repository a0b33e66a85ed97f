//! xenbus's own cores inside the rig guest: SHARED_INFO, EVTCHN and GNTTAB brought up the
//! way xenbus.sys's FDO brings them up (over xen.sys's core as the `XenApi`), and the
//! scenarios that use them — an event channel to dom0 and a page granted to dom0 through the
//! cores' calls, and a suspend/resume through `xl save`/`xl restore` driven by the SUSPEND
//! core, after which store, event channel and grant work again.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;

use xen_include::api::XenApi;
use xenbus::evtchn::{ChannelHandle, Evtchn, EvtchnCallback, Kind};
use xenbus::gnttab::Gnttab;
use xenbus::shared_info::SharedInfo;
use xenbus::suspend::{Phase, Suspend, SuspendCallback, TriggerOutcome};

use crate::scenarios::answer_after_delay;
use crate::xs::Xs;
use crate::{fail, pass, wait_for, GuestEnv, Verdict, DOM0_TIMEOUT_MS};

/// `HVM_PARAM_CALLBACK_IRQ` as the guest programs it: the vector type (`2 << 56`) with
/// vector 0xF3. Interrupts stay off in the guest, so the vector is never taken (the guest
/// polls, as the upcall would); the non-zero value tells the toolstack that PV drivers are
/// present, which makes libxl ask for a suspend through `control/shutdown`.
pub const CALLBACK_VIA: u64 = (2 << 56) | 0xF3;

/// The cores, brought up once per guest and kept (they own hole pages Xen maps into).
pub struct Cores {
    /// xen.sys's core.
    pub api: &'static dyn XenApi,
    /// SHARED_INFO.
    pub shared_info: &'static SharedInfo,
    /// EVTCHN (2-level ABI).
    pub evtchn: &'static Evtchn,
    /// GNTTAB.
    pub gnttab: &'static Gnttab,
}

fn leak<T>(value: T) -> &'static T {
    Box::leak(Box::new(value))
}

impl Cores {
    /// The guest's cores, brought up on first use: SHARED_INFO Acquire, EVTCHN with the
    /// callback via programmed, GNTTAB Acquire.
    pub fn get(env: &dyn GuestEnv) -> Result<&Cores, String> {
        if let Some(cores) = env.cores().get() {
            return Ok(cores);
        }
        let api = env.api();
        let os = env.os();
        let shared_info = leak(SharedInfo::new(api, os));
        shared_info
            .acquire()
            .map_err(|s| format!("SHARED_INFO acquire: {s:#x}"))?;
        let evtchn = leak(Evtchn::new(api, os, shared_info));
        evtchn.enable_interrupts(None, CALLBACK_VIA);
        let gnttab = leak(Gnttab::new(api, os));
        gnttab
            .acquire()
            .map_err(|s| format!("GNTTAB acquire: {s:#x}"))?;
        let _ = env.cores().set(Cores {
            api,
            shared_info,
            evtchn,
            gnttab,
        });
        env.cores().get().ok_or_else(|| "cores not kept".into())
    }

    /// Deliver pending events as the upcall would (the guest polls instead of taking the
    /// callback interrupt): the ISR takes vCPU 0's upcall flag and queues CPU 0's delivery
    /// DPC, which this one-vCPU guest's `Os` runs at once, before `interrupt` returns.
    pub fn poll(&self) {
        self.evtchn.interrupt(0);
    }
}

/// A channel callback that only lets EVTCHN count the event.
struct Counted;

impl EvtchnCallback for Counted {
    fn call(&self) -> bool {
        true
    }
}

/// An unbound channel opened through EVTCHN, bound by dom0: dom0's event is delivered by
/// the core's upcall path (count and callback), and the core's Send reaches dom0.
fn echo_through_evtchn(
    env: &dyn GuestEnv,
    cores: &Cores,
    xs: &mut Xs<'_>,
) -> Result<String, String> {
    let evtchn = cores.evtchn;
    let handle: ChannelHandle = evtchn
        .open(Kind::Unbound { remote_domain: 0 }, true, Arc::new(Counted))
        .map_err(|s| format!("EVTCHN Open: {s:#x}"))?;
    let result = (|| {
        let channel = evtchn.channel(handle).ok_or("EVTCHN lost the channel")?;
        let port = channel.port();
        // Channels open masked; a driver unmasks once it is ready for events.
        evtchn.unmask(handle, false, false);
        let sequence = xs.dom0_start(&format!("evtchn-echo {port}"))?;
        let delivered = wait_for(env, DOM0_TIMEOUT_MS, || {
            cores.poll();
            Ok((channel.count() >= 1).then_some(()))
        })?;
        if delivered.is_none() {
            let answer = xs.dom0_answer_now(sequence).unwrap_or_default();
            return Err(format!(
                "EVTCHN delivered nothing on port {port}; dom0 said {answer:?}"
            ));
        }
        let (remote_dom, remote_port) = cores
            .api
            .event_channel_query_inter_domain(port)
            .map_err(|s| format!("status of port {port}: {s:#x}"))?;
        // The channel auto-masked before its callback; unmask it as a driver would.
        evtchn.unmask(handle, false, false);
        let answer = answer_after_delay(env, xs, sequence, || {
            evtchn.send(handle);
            Ok(())
        })?;
        Ok(format!(
            "port {port} bound by dom{remote_dom} port {remote_port}, {} event(s) counted; dom0: {answer}",
            channel.count()
        ))
    })();
    evtchn.close(handle);
    result
}

/// A page granted through GNTTAB's PermitForeignAccess: dom0 maps it with gntdev, reads it
/// and writes back; RevokeForeignAccess succeeds once dom0 has unmapped it.
fn grant_through_gnttab(
    env: &dyn GuestEnv,
    cores: &Cores,
    xs: &mut Xs<'_>,
) -> Result<String, String> {
    let gnttab = cores.gnttab;
    let os = env.os();
    let page = os.alloc_page().ok_or("no page to grant")?;
    let memory = xenbus::shared::map_pfn(os, page.pfn).ok_or("granted page not mappable")?;
    let message = b"rig-gnttab-core";
    memory
        .write_bytes(0, message)
        .map_err(|e| format!("{e:?}"))?;
    let cache = gnttab
        .create_cache(0, 0)
        .map_err(|s| format!("GNTTAB CreateCache: {s:#x}"))?;
    let entry = gnttab
        .permit(cache, 0, page.pfn, false)
        .map_err(|s| format!("GNTTAB PermitForeignAccess: {s:#x}"))?;
    let reference = gnttab.reference(entry).ok_or("GNTTAB lost the entry")?;
    let seen = xs.dom0(&format!("grant-read {reference} {}", message.len()));
    let mut back = [0u8; 5];
    let read_back = memory.read_bytes(message.len(), &mut back);
    let revoked = gnttab.revoke(entry);
    let _ = gnttab.destroy_cache(cache);
    let seen = seen?;
    if seen.as_bytes() != message {
        return Err(format!("dom0 read {seen:?} through ref {reference}"));
    }
    if read_back.is_err() || &back != b"dom0!" {
        return Err(format!("dom0's write not visible: {back:?}"));
    }
    revoked.map_err(|s| format!("GNTTAB RevokeForeignAccess: {s:#x}"))?;
    Ok(format!(
        "ref {reference} (of {} frame(s)): dom0 read {seen:?}, wrote back; revoked",
        gnttab.frames()
    ))
}

macro_rules! check {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return fail!("{e}"),
        }
    };
}

/// EVTCHN: a channel to dom0 through the core (Open, upcall delivery, Unmask, Send, Close).
pub fn evtchn_core(env: &dyn GuestEnv) -> Verdict {
    let cores = check!(Cores::get(env));
    let mut xs = check!(Xs::connect(env));
    let done = check!(echo_through_evtchn(env, cores, &mut xs));
    pass!("EVTCHN core: {done}")
}

/// GNTTAB: a grant to dom0 through the core.
pub fn gnttab_core(env: &dyn GuestEnv) -> Verdict {
    let cores = check!(Cores::get(env));
    let mut xs = check!(Xs::connect(env));
    let done = check!(grant_through_gnttab(env, cores, &mut xs));
    pass!("GNTTAB core: {done}")
}

/// A suspend callback running one closure.
struct Step<F: Fn() + Send + Sync>(F);

impl<F: Fn() + Send + Sync> SuspendCallback for Step<F> {
    fn call(&self) {
        (self.0)()
    }
}

/// The watch event of `control/shutdown`.
const SHUTDOWN_WATCH: usize = 0x5D;

/// Suspend and resume through the toolstack: dom0 runs `xl save` (libxl writes
/// `control/shutdown = suspend`, as it does for an HVM guest whose callback via is set) and
/// then `xl restore`. The guest acknowledges by clearing the node and triggers xenbus's
/// SUSPEND core, whose EARLY callbacks re-map shared info and the grant frames, deactivate
/// every channel and the store's watches, and whose LATE callbacks program the callback via
/// again and resume the store. After the restore (a new domain) store, a new event channel
/// and a new grant work.
pub fn suspend(env: &dyn GuestEnv) -> Verdict {
    let cores = check!(Cores::get(env));
    let api = cores.api;
    let mut xs = check!(Xs::connect(env));
    let old_domid = check!(xs.read("domid"));
    let suspend: &'static Suspend = leak(Suspend::new(api, env.os()));
    let (store_early, store_late) = xs.suspend_callbacks(api);
    let (evtchn, shared_info, gnttab) = (cores.evtchn, cores.shared_info, cores.gnttab);
    let callbacks: [(Phase, Arc<dyn SuspendCallback>); 6] = [
        (Phase::Early, Arc::new(Step(move || evtchn.suspend_early()))),
        (
            Phase::Early,
            Arc::new(Step(move || shared_info.suspend_early())),
        ),
        (Phase::Early, Arc::new(Step(move || gnttab.suspend_early()))),
        (Phase::Early, store_early),
        (
            Phase::Late,
            Arc::new(Step(move || evtchn.enable_interrupts(None, CALLBACK_VIA))),
        ),
        (Phase::Late, store_late),
    ];
    for (phase, callback) in callbacks {
        check!(suspend
            .register(phase, callback)
            .map_err(|s| format!("SUSPEND Register: {s:#x}")));
    }
    // A channel open across the suspend: the resume must leave it inactive.
    let stale = check!(evtchn
        .open(Kind::Unbound { remote_domain: 0 }, true, Arc::new(Counted))
        .map_err(|s| format!("EVTCHN Open: {s:#x}")));
    check!(xs.watch("control/shutdown", SHUTDOWN_WATCH));
    let sequence = check!(xs.dom0_start("save-restore"));
    let requested = check!(wait_for(env, DOM0_TIMEOUT_MS, || {
        if xs.poll_events().contains(&SHUTDOWN_WATCH) {
            let value = xs.read("control/shutdown").unwrap_or_default();
            if value == "suspend" {
                return Ok(Some(()));
            }
        }
        Ok(None)
    }));
    if requested.is_none() {
        let answer = xs.dom0_answer_now(sequence).unwrap_or_default();
        return fail!("control/shutdown never said suspend; dom0 said {answer:?}");
    }
    // Acknowledge (libxl waits for the node to change), then suspend.
    check!(xs.write(None, "control/shutdown", ""));
    let outcome = suspend.trigger_outcome();
    if outcome != TriggerOutcome::Resumed {
        return fail!("SUSPEND Trigger: {outcome:?}");
    }
    let answer = check!(xs.dom0_wait(sequence));
    if !answer.starts_with("ok") {
        return fail!("dom0: {answer}");
    }
    let new_domid = check!(xs.read("domid"));
    check!(xs.write(None, "data/rig/resumed", "yes"));
    let back = check!(xs.read("data/rig/resumed"));
    if back != "yes" {
        return fail!("store after resume read back {back:?}");
    }
    let stale_active = evtchn.channel(stale).is_some_and(|c| c.is_active());
    evtchn.close(stale);
    if stale_active {
        return fail!("a channel opened before the suspend is still active");
    }
    let echoed =
        check!(echo_through_evtchn(env, cores, &mut xs)
            .map_err(|e| format!("evtchn after resume: {e}")));
    let granted =
        check!(grant_through_gnttab(env, cores, &mut xs)
            .map_err(|e| format!("grant after resume: {e}")));
    pass!(
        "dom{old_domid} -> dom{new_domid} (SUSPEND count {}; dom0: {answer}); store ok; evtchn {echoed}; gnttab {granted}",
        suspend.count()
    )
}
