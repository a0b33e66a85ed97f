//! `xen-sim demo`: boots a simulated domain (hypervisor model, xenstored, toolstack, a vif
//! backend) and prints what its guest sees: its XenStore tree read over the real ring, an
//! event delivered through its event channel, a grant mapped by the backend, and a
//! suspend/resume.
#![forbid(unsafe_code)]

use std::io::{self, Write};
use std::sync::{Arc, Mutex};

use common::hypercall::Hypercall;
use xen_include::xen::event_channel::{EvtchnOp, EvtchnSend};
use xen_include::xen::grant_table::GrantEntryFlags;
use xen_include::xen::sched::{SchedOp, SchedShutdown, ShutdownReason};
use xen_include::xen::xen::{HypercallCode, SharedInfo};

use crate::machine::Machine;
use crate::toolstack::machine::{HvGrants, StoreService};
use crate::toolstack::{BackendMode, DeviceClass, ShutdownRequest, Toolstack};
use crate::xenstored::abi as xs;
use crate::xenstored::wire::{self, Decoder, Message};
use crate::xenstored::Xenstored;

fn err(e: impl std::fmt::Debug) -> io::Error {
    io::Error::other(format!("{e:?}"))
}

/// The guest's XenStore client for the demo: requests written into the ring page through
/// the hypervisor's view of guest memory, signalled with `EVTCHNOP_send`.
struct GuestStore<'a> {
    m: &'a Machine,
    next: u32,
    decoder: Decoder,
    events: Vec<Message>,
}

impl<'a> GuestStore<'a> {
    fn new(m: &'a Machine) -> Self {
        Self {
            m,
            next: 1,
            decoder: Decoder::default(),
            events: Vec::new(),
        }
    }

    fn gfn(&self) -> u64 {
        self.m.layout().store_gfn
    }

    fn load(&self, off: usize) -> io::Result<u32> {
        let mut b = [0u8; 4];
        self.m.hv.read_guest(self.gfn(), off, &mut b).map_err(err)?;
        Ok(u32::from_le_bytes(b))
    }

    fn store(&self, off: usize, v: u32) -> io::Result<()> {
        self.m
            .hv
            .write_guest(self.gfn(), off, &v.to_le_bytes())
            .map_err(err)
    }

    fn notify(&self) -> io::Result<()> {
        let mut send = EvtchnSend {
            port: self.m.store().guest_port,
        };
        let r = self.m.hv.hypercall(
            HypercallCode::EVENT_CHANNEL_OP.0,
            [
                EvtchnOp::SEND.0 as usize,
                &mut send as *mut _ as usize,
                0,
                0,
                0,
            ],
        );
        if r != 0 {
            return Err(err(format!("EVTCHNOP_send returned {r}")));
        }
        Ok(())
    }

    /// Takes whatever xenstored wrote to the response ring.
    fn poll(&mut self) -> io::Result<Vec<Message>> {
        let (cons, prod) = (self.load(2056)?, self.load(2060)?);
        for i in cons..prod {
            let mut b = [0u8];
            self.m
                .hv
                .read_guest(self.gfn(), 1024 + (i as usize & 1023), &mut b)
                .map_err(err)?;
            self.decoder.push(&b);
        }
        self.store(2056, prod)?;
        let mut out = Vec::new();
        while let Ok(Some(m)) = self.decoder.next_message() {
            out.push(m);
        }
        Ok(out)
    }

    fn call(&mut self, t: u32, payload: Vec<u8>) -> io::Result<Message> {
        let id = self.next;
        self.next += 1;
        let bytes = Message::new(t, id, 0, payload).to_bytes();
        let prod = self.load(2052)?;
        for (i, b) in bytes.iter().enumerate() {
            let at = (prod as usize + i) & 1023;
            self.m.hv.write_guest(self.gfn(), at, &[*b]).map_err(err)?;
        }
        self.store(2052, prod.wrapping_add(bytes.len() as u32))?;
        self.notify()?;
        let mut reply = None;
        for m in self.poll()? {
            if m.msg_type == xs::XS_WATCH_EVENT {
                self.events.push(m);
            } else if m.req_id == id {
                reply = Some(m);
            }
        }
        reply.ok_or_else(|| err("no reply on the ring"))
    }

    fn read(&mut self, path: &str) -> io::Result<Result<Vec<u8>, String>> {
        let m = self.call(xs::XS_READ, Message::strings(&[path]))?;
        Ok(if m.msg_type == xs::XS_ERROR {
            Err(String::from_utf8_lossy(&m.payload)
                .trim_end_matches('\0')
                .to_string())
        } else {
            Ok(m.payload)
        })
    }

    fn list(&mut self, path: &str) -> io::Result<Vec<String>> {
        let m = self.call(xs::XS_DIRECTORY, Message::strings(&[path]))?;
        if m.msg_type == xs::XS_ERROR {
            return Ok(Vec::new());
        }
        Ok(wire::get_strings(&m.payload)
            .into_iter()
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect())
    }

    fn perms(&mut self, path: &str) -> io::Result<String> {
        let m = self.call(xs::XS_GET_PERMS, Message::strings(&[path]))?;
        Ok(wire::get_strings(&m.payload)
            .into_iter()
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect::<Vec<_>>()
            .join(" "))
    }

    fn write(&mut self, path: &str, value: &str) -> io::Result<()> {
        let mut p = Message::strings(&[path]);
        p.extend_from_slice(value.as_bytes());
        let m = self.call(xs::XS_WRITE, p)?;
        if m.msg_type == xs::XS_ERROR {
            return Err(err(format!(
                "write {path}: {:?}",
                String::from_utf8_lossy(&m.payload)
            )));
        }
        Ok(())
    }

    /// Prints the subtree the guest can see, depth first.
    fn print_tree(&mut self, out: &mut dyn Write, path: &str, depth: usize) -> io::Result<()> {
        let value = match self.read(path)? {
            Ok(v) => format!("{:?}", String::from_utf8_lossy(&v)),
            Err(e) => format!("<{e}>"),
        };
        let name = if depth == 0 {
            path
        } else {
            path.rsplit('/').next().unwrap_or(path)
        };
        let perms = self.perms(path)?;
        writeln!(
            out,
            "{:indent$}{name} = {value}   ({perms})",
            "",
            indent = depth * 2
        )?;
        for child in self.list(path)? {
            self.print_tree(out, &format!("{path}/{child}"), depth + 1)?;
        }
        Ok(())
    }
}

fn pending_bit(m: &Machine, port: u32) -> bool {
    let si = m.hv.shared_info_bytes();
    let base = core::mem::offset_of!(SharedInfo, evtchn_pending);
    let word = base + (port as usize / 64) * 8;
    si.get(word..word + 8)
        .map(|b| {
            let mut w = [0u8; 8];
            w.copy_from_slice(b);
            u64::from_le_bytes(w) & (1 << (port % 64)) != 0
        })
        .unwrap_or(false)
}

fn flags_text(flags: u16) -> String {
    let f = GrantEntryFlags::from_bits_retain(flags);
    let mut names = Vec::new();
    for (bit, name) in [
        (GrantEntryFlags::PERMIT_ACCESS, "permit_access"),
        (GrantEntryFlags::READING, "reading"),
        (GrantEntryFlags::WRITING, "writing"),
    ] {
        if f.contains(bit) {
            names.push(name);
        }
    }
    format!("{flags:#06x} ({})", names.join("|"))
}

/// Runs the demo, writing its report to `out`.
pub fn run(out: &mut dyn Write) -> io::Result<()> {
    let m = Machine::new();
    let store = Arc::new(Mutex::new(Xenstored::default()));
    let svc = StoreService::attach(&m, &store);
    let mut ts = Toolstack::new(&store, Box::new(HvGrants::new(m.hv.clone())));
    let cfg = StoreService::domain_config(&m);
    ts.create_domain(&cfg).map_err(err)?;
    let domid = cfg.domid;
    let home = cfg.home();
    let mut g = GuestStore::new(&m);

    writeln!(out, "== xen-sim demo: domain {domid} \"{}\" ==", cfg.name)?;
    writeln!(
        out,
        "store ring at gfn {:#x}, guest event channel {} (dom0 port {})",
        cfg.store_gfn,
        cfg.store_port,
        m.store().backend_port
    )?;

    writeln!(
        out,
        "\n-- 1. XenStore as the guest sees it (read over its ring) --"
    )?;
    g.print_tree(out, &home, 0)?;
    let vm = g.read("vm")?.map_err(err)?;
    g.print_tree(out, &String::from_utf8_lossy(&vm), 0)?;
    match g.read("/local/domain/0")? {
        Ok(_) => writeln!(out, "/local/domain/0 readable")?,
        Err(e) => writeln!(
            out,
            "/local/domain/0 = <{e}> (dom0's home is not the guest's)"
        )?,
    }

    writeln!(out, "\n-- 2. An event delivered to the guest --")?;
    let w = g.call(
        xs::XS_WATCH,
        Message::strings(&["memory/target", "balloon"]),
    )?;
    writeln!(
        out,
        "guest: WATCH memory/target -> {:?}",
        String::from_utf8_lossy(&w.payload).trim_end_matches('\0')
    )?;
    g.events.clear();
    let port = cfg.store_port;
    let sent = svc.notifications();
    ts.set_balloon_target(domid, 1_048_576).map_err(err)?;
    writeln!(out, "toolstack: memory/target = 1048576")?;
    writeln!(
        out,
        "xenstored wrote the event to the ring and signalled event channel {port} ({} \
         notification); pending in shared_info: {}",
        svc.notifications() - sent,
        pending_bit(&m, port)
    )?;
    for ev in g.poll()? {
        let parts = wire::get_strings(&ev.payload);
        if let [path, token, ..] = parts.as_slice() {
            writeln!(
                out,
                "guest ring: WATCH_EVENT path {:?} token {:?}",
                String::from_utf8_lossy(path),
                String::from_utf8_lossy(token)
            )?;
        }
    }
    let target = g.read("memory/target")?.map_err(err)?;
    writeln!(
        out,
        "guest reads memory/target = {}",
        String::from_utf8_lossy(&target)
    )?;

    writeln!(out, "\n-- 3. A grant mapped by a backend --")?;
    let dev = ts
        .add_device(
            domid,
            DeviceClass::Vif {
                mac: "00:16:3e:5a:5a:01".into(),
            },
            0,
            BackendMode::Normal,
        )
        .map_err(err)?;
    let be = format!("/local/domain/0/backend/vif/{domid}/0");
    let state = |ts: &mut Toolstack| ts.state(&be).map_or(0, |s| s.0);
    writeln!(
        out,
        "toolstack: added vif 0, backend {be} state {}",
        state(&mut ts)
    )?;
    let ram = m.layout().ram.clone();
    m.hv.toolstack_seed_grant(8, 0, ram.start + 16);
    m.hv.toolstack_seed_grant(9, 0, ram.start + 17);
    let flags_before = m.hv.grant_entry(8).map_or(0, |e| e.0);
    for (k, v) in [
        ("tx-ring-ref", "8"),
        ("rx-ring-ref", "9"),
        ("event-channel", "5"),
        ("state", "4"),
    ] {
        g.write(&format!("device/vif/0/{k}"), v)?;
    }
    writeln!(
        out,
        "guest: granted frames {:#x}/{:#x} as refs 8/9, frontend state 4 (Connected)",
        ram.start + 16,
        ram.start + 17
    )?;
    ts.run().map_err(err)?;
    let mapped = ts.backend(&dev).map_or(0, |b| b.mapped.len());
    let flags_after = m.hv.grant_entry(8).map_or(0, |e| e.0);
    writeln!(
        out,
        "backend: mapped {mapped} grants, state {}",
        state(&mut ts)
    )?;
    writeln!(
        out,
        "grant 8 flags: {} -> {}",
        flags_text(flags_before),
        flags_text(flags_after)
    )?;

    writeln!(out, "\n-- 4. Suspend and resume --")?;
    g.call(xs::XS_WATCH, Message::strings(&["control/shutdown", "ctl"]))?;
    g.events.clear();
    ts.request_shutdown(domid, ShutdownRequest::Suspend)
        .map_err(err)?;
    let req = g.read("control/shutdown")?.map_err(err)?;
    writeln!(
        out,
        "toolstack: control/shutdown = {:?}; guest watch events: {}",
        String::from_utf8_lossy(&req),
        g.events.len() + g.poll()?.len()
    )?;
    g.write("control/shutdown", "")?;
    m.hv.set_suspend_hook(Some(svc.suspend_hook()));
    let port_before = m.store().guest_port;
    let mut shutdown = SchedShutdown {
        reason: ShutdownReason::SUSPEND,
    };
    let r = m.hv.hypercall(
        HypercallCode::SCHED_OP.0,
        [
            SchedOp::SHUTDOWN.0 as usize,
            &mut shutdown as *mut _ as usize,
            0,
            0,
            0,
        ],
    );
    writeln!(
        out,
        "guest: SCHEDOP_shutdown(suspend) returned {r} ({})",
        match r {
            0 => "resumed on a new host",
            1 => "suspend cancelled",
            _ => "error",
        }
    )?;
    writeln!(
        out,
        "store event channel {} -> {} (dom0 port {}), suspends so far: {}",
        port_before,
        m.store().guest_port,
        m.store().backend_port,
        m.hv.shutdown_state().suspends
    )?;
    writeln!(
        out,
        "new host: xenstored introduced the domain afresh; ring indices now req {}/{} rsp {}/{}",
        g.load(2048)?,
        g.load(2052)?,
        g.load(2056)?,
        g.load(2060)?
    )?;
    g.decoder = Decoder::default();
    let name = g.read("name")?.map_err(err)?;
    writeln!(
        out,
        "guest re-reads its name over the ring after resume: {:?}",
        String::from_utf8_lossy(&name)
    )?;
    ts.set_balloon_target(domid, 2_097_152).map_err(err)?;
    writeln!(
        out,
        "toolstack changes memory/target again: watch events the guest gets: {} (its watches \
         did not survive the move; it must register them again)",
        g.poll()?.len()
    )?;
    writeln!(out, "\n== demo done ==")?;
    Ok(())
}
