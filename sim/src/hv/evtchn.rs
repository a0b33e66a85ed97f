//! `event_channel_op`: port tables of every domain, interdomain/VIRQ/IPI bindings, and the
//! 2-level delivery through the shared info bitmaps and `vcpu_info`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;

use super::abi::*;
use super::{copy_from_guest, copy_to_guest, Errno, EventFaultKind, State};

/// State of one event channel port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortState {
    /// Not allocated.
    Free,
    /// Port 0: never allocated.
    Reserved,
    /// Allocated, waiting for `remote` to bind.
    Unbound {
        /// The domain allowed to bind.
        remote: u16,
    },
    /// Connected to `remote_port` of `remote`.
    Interdomain {
        /// The other domain.
        remote: u16,
        /// Its port.
        remote_port: u32,
    },
    /// Bound to a virtual IRQ.
    Virq(Virq),
    /// An inter-processor channel.
    Ipi,
}

/// What `EVTCHNOP_status` (or a test) sees of a port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortStatus {
    /// Binding.
    pub state: PortState,
    /// The vCPU notified.
    pub vcpu: u32,
    /// FIFO priority.
    pub priority: u32,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Port {
    pub state: PortState,
    pub vcpu: u32,
    pub priority: u32,
    /// Pending event not yet reflected in a FIFO event word (array page missing).
    pub pending: bool,
    /// Queue (vcpu, priority) the port was last linked on (FIFO).
    pub last_queue: Option<(u32, u32)>,
}

impl Port {
    fn free() -> Self {
        Port {
            state: PortState::Free,
            vcpu: 0,
            priority: EVTCHN_FIFO_PRIORITY_DEFAULT,
            pending: false,
            last_queue: None,
        }
    }
}

/// Ports per allocation bucket (`EVTCHNS_PER_BUCKET`: a page of 64-byte `struct evtchn`).
const PORTS_PER_BUCKET: usize = 64;

/// One domain's event channels.
pub(crate) struct Domain {
    pub ports: Vec<Port>,
    pub max_port: u32,
    /// (vcpu, virq) → port.
    pub virqs: BTreeMap<(u32, Virq), u32>,
    /// For backend domains: ports notified and not yet taken by the test.
    pub backend_pending: BTreeSet<u32>,
}

impl Domain {
    /// A backend domain's table.
    pub fn new_backend() -> Self {
        Domain::new(4095)
    }

    fn new(max_port: u32) -> Self {
        // Xen allocates port structures in buckets (64 per page on x86_64); every port of
        // an allocated bucket is "valid" (status: closed) even if never used.
        let mut ports = vec![Port::free(); PORTS_PER_BUCKET];
        ports[0].state = PortState::Reserved;
        Domain {
            ports,
            max_port,
            virqs: BTreeMap::new(),
            backend_pending: BTreeSet::new(),
        }
    }

    fn port(&self, port: u32) -> Result<&Port, Errno> {
        self.ports.get(port as usize).ok_or(Errno::EINVAL)
    }

    fn alloc(&mut self, limit: u32) -> Result<u32, Errno> {
        let max = self.max_port.min(limit);
        for p in 1..=max {
            if p as usize >= self.ports.len() {
                let n = self.ports.len() + PORTS_PER_BUCKET;
                self.ports.resize(n, Port::free());
            }
            if self.ports[p as usize].state == PortState::Free {
                return Ok(p);
            }
        }
        Err(Errno::ENOSPC)
    }
}

/// Event channel state of the host.
pub(crate) struct Evtchn {
    pub guest: u16,
    pub domains: BTreeMap<u16, Domain>,
    /// The guest uses the FIFO ABI.
    pub fifo: bool,
    /// FIFO event array pages (machine frames).
    pub fifo_array: Vec<u64>,
}

/// Whether a VIRQ is global (bindable on vCPU 0 only, re-bindable with bind_vcpu).
pub fn virq_is_global(virq: Virq) -> bool {
    !matches!(
        virq,
        Virq::TIMER | Virq::DEBUG | Virq::XENOPROF | Virq::XENPMU
    )
}

impl Evtchn {
    pub fn new(guest: u16, max_port: u32) -> Self {
        let mut domains = BTreeMap::new();
        domains.insert(guest, Domain::new(max_port));
        domains.insert(0, Domain::new(4095));
        Evtchn {
            guest,
            domains,
            fifo: false,
            fifo_array: Vec::new(),
        }
    }

    /// The largest port the guest's ABI can address.
    pub fn abi_limit(&self, dom: u16) -> u32 {
        if dom == self.guest && self.fifo {
            EVTCHN_FIFO_NR_CHANNELS - 1
        } else {
            64 * 64 - 1
        }
    }

    pub fn dom(&self, dom: u16) -> Result<&Domain, Errno> {
        self.domains.get(&dom).ok_or(Errno::ESRCH)
    }

    pub fn dom_mut(&mut self, dom: u16) -> Result<&mut Domain, Errno> {
        self.domains.get_mut(&dom).ok_or(Errno::ESRCH)
    }

    pub fn status(&self, dom: u16, port: u32) -> Result<PortStatus, Errno> {
        let p = self.dom(dom)?.port(port)?;
        Ok(PortStatus {
            state: p.state,
            vcpu: p.vcpu,
            priority: p.priority,
        })
    }
}

impl State {
    fn resolve_dom(&self, dom: DomId) -> u16 {
        if dom == DomId::SELF {
            self.cfg.domid
        } else {
            dom.0
        }
    }

    fn check_vcpu(&self, vcpu: u32) -> Result<(), Errno> {
        if (vcpu as usize) < self.vcpus.len() {
            Ok(())
        } else {
            Err(Errno::ENOENT)
        }
    }

    /// Allocate an unbound port in `dom` that `remote` may bind.
    pub fn evtchn_alloc_unbound(&mut self, dom: u16, remote: u16) -> Result<u32, Errno> {
        let limit = self.evtchn.abi_limit(dom);
        let d = self.evtchn.dom_mut(dom)?;
        let port = d.alloc(limit)?;
        d.ports[port as usize] = Port {
            state: PortState::Unbound { remote },
            last_queue: d.ports[port as usize].last_queue,
            ..Port::free()
        };
        Ok(port)
    }

    /// Bind a new port of `dom` to the unbound `remote_port` of `remote`.
    pub fn evtchn_bind_interdomain(
        &mut self,
        dom: u16,
        remote: u16,
        remote_port: u32,
    ) -> Result<u32, Errno> {
        let rstate = self.evtchn.dom(remote)?.port(remote_port)?.state;
        if rstate != (PortState::Unbound { remote: dom }) {
            return Err(Errno::EINVAL);
        }
        let limit = self.evtchn.abi_limit(dom);
        let lport = self.evtchn.dom_mut(dom)?.alloc(limit)?;
        let d = self.evtchn.dom_mut(dom)?;
        d.ports[lport as usize] = Port {
            state: PortState::Interdomain {
                remote,
                remote_port,
            },
            last_queue: d.ports[lport as usize].last_queue,
            ..Port::free()
        };
        self.evtchn.dom_mut(remote)?.ports[remote_port as usize].state = PortState::Interdomain {
            remote: dom,
            remote_port: lport,
        };
        // Xen conservatively sets the new local port pending: notifications sent to the
        // unbound remote port before the bind would otherwise be lost.
        self.set_pending(dom, lport);
        Ok(lport)
    }

    /// Close a port of `dom`.
    pub fn evtchn_close(&mut self, dom: u16, port: u32) -> Result<(), Errno> {
        let p = *self.evtchn.dom(dom)?.port(port)?;
        match p.state {
            PortState::Free | PortState::Reserved => return Err(Errno::EINVAL),
            PortState::Interdomain {
                remote,
                remote_port,
            } => {
                if let Ok(r) = self.evtchn.dom_mut(remote) {
                    if let Some(rp) = r.ports.get_mut(remote_port as usize) {
                        rp.state = PortState::Unbound { remote: dom };
                    }
                }
            }
            PortState::Virq(_) => {
                let d = self.evtchn.dom_mut(dom)?;
                d.virqs.retain(|_, v| *v != port);
            }
            PortState::Unbound { .. } | PortState::Ipi => {}
        }
        self.clear_pending(dom, port);
        let d = self.evtchn.dom_mut(dom)?;
        // Xen keeps a freed `struct evtchn`'s last queue (`last_vcpu_id`/`last_priority`):
        // a re-allocated port that was a queue's tail still invalidates that tail when it
        // is next linked, so its first event after re-use is not lost.
        d.ports[port as usize] = Port {
            last_queue: p.last_queue,
            ..Port::free()
        };
        d.backend_pending.remove(&port);
        Ok(())
    }

    /// Close every port of `dom` (EVTCHNOP_reset), returning the guest to the 2-level ABI.
    pub fn evtchn_reset(&mut self, dom: u16) -> Result<(), Errno> {
        let n = self.evtchn.dom(dom)?.ports.len() as u32;
        for port in 1..n {
            let _ = self.evtchn_close(dom, port);
        }
        if dom == self.cfg.domid {
            self.fifo_destroy();
        }
        Ok(())
    }

    /// Send on a port of `dom` (EVTCHNOP_send).
    pub fn evtchn_send(&mut self, dom: u16, port: u32) -> Result<(), Errno> {
        let p = *self.evtchn.dom(dom)?.port(port)?;
        match p.state {
            PortState::Interdomain {
                remote,
                remote_port,
            } => self.notify(remote, remote_port),
            PortState::Ipi => self.notify(dom, port),
            PortState::Unbound { .. } => {}
            _ => return Err(Errno::EINVAL),
        }
        Ok(())
    }

    /// Raise a VIRQ on a vCPU of the guest (global VIRQs: any vcpu argument goes to the
    /// binding on vCPU 0). Returns whether a port was bound.
    pub fn raise_virq(&mut self, vcpu: u32, virq: Virq) -> bool {
        let vcpu = if virq_is_global(virq) { 0 } else { vcpu };
        let guest = self.cfg.domid;
        let port = self
            .evtchn
            .dom(guest)
            .ok()
            .and_then(|d| d.virqs.get(&(vcpu, virq)).copied());
        match port {
            Some(port) => {
                self.notify(guest, port);
                true
            }
            None => false,
        }
    }

    /// A notification towards `dom`/`port`, subject to the scripted event faults.
    pub fn notify(&mut self, dom: u16, port: u32) {
        let mut action = None;
        for f in self.event_faults.iter_mut() {
            if f.count > 0 && f.dom.is_none_or(|d| d == dom) && f.port.is_none_or(|p| p == port) {
                f.count -= 1;
                action = Some(f.kind);
                break;
            }
        }
        self.event_faults.retain(|f| f.count > 0);
        match action {
            Some(EventFaultKind::Drop) => {}
            Some(EventFaultKind::Delay) => self.late_events.push((dom, port)),
            None => self.set_pending(dom, port),
        }
    }

    /// Make a port pending in its domain (evtchn_port_set_pending).
    pub fn set_pending(&mut self, dom: u16, port: u32) {
        if dom != self.cfg.domid {
            if let Ok(d) = self.evtchn.dom_mut(dom) {
                if d.ports
                    .get(port as usize)
                    .is_some_and(|p| p.state != PortState::Free)
                {
                    d.backend_pending.insert(port);
                    self.notified_backends.push((dom, port));
                }
            }
            return;
        }
        let Some(p) = self
            .evtchn
            .dom(dom)
            .ok()
            .and_then(|d| d.ports.get(port as usize).copied())
        else {
            return;
        };
        if self.evtchn.fifo {
            self.fifo_set_pending(port, p.vcpu);
        } else {
            self.l2_set_pending(port, p.vcpu);
        }
    }

    fn clear_pending(&mut self, dom: u16, port: u32) {
        if dom != self.cfg.domid {
            return;
        }
        if self.evtchn.fifo {
            self.fifo_clear_pending(port);
        } else {
            let (w, b) = ((port / 64) as usize, port % 64);
            self.mem
                .atomic_u64(self.shared_info_mfn, SHARED_INFO_EVTCHN_PENDING + w * 8)
                .fetch_and(!(1u64 << b), Ordering::SeqCst);
        }
    }

    fn l2_set_pending(&mut self, port: u32, vcpu: u32) {
        let (w, b) = ((port / 64) as usize, port % 64);
        let si = self.shared_info_mfn;
        let bit = 1u64 << b;
        if self
            .mem
            .atomic_u64(si, SHARED_INFO_EVTCHN_PENDING + w * 8)
            .fetch_or(bit, Ordering::SeqCst)
            & bit
            != 0
        {
            return;
        }
        if self
            .mem
            .atomic_u64(si, SHARED_INFO_EVTCHN_MASK + w * 8)
            .load(Ordering::SeqCst)
            & bit
            != 0
        {
            return;
        }
        self.l2_raise_selector(vcpu, w);
    }

    fn l2_raise_selector(&mut self, vcpu: u32, word: usize) {
        if let Some((mfn, off)) = self.vcpu_info_loc(vcpu) {
            let sel = 1u64 << word;
            if self
                .mem
                .atomic_u64(mfn, off + VCPU_INFO_PENDING_SEL)
                .fetch_or(sel, Ordering::SeqCst)
                & sel
                == 0
            {
                self.mark_events_pending(vcpu);
            }
        }
    }

    /// EVTCHNOP_unmask for the guest.
    pub fn evtchn_unmask(&mut self, port: u32) -> Result<(), Errno> {
        let guest = self.cfg.domid;
        let p = *self.evtchn.dom(guest)?.port(port)?;
        if self.evtchn.fifo {
            self.fifo_unmask(port, p.vcpu);
            return Ok(());
        }
        let (w, b) = ((port / 64) as usize, port % 64);
        let si = self.shared_info_mfn;
        let bit = 1u64 << b;
        let was_masked = self
            .mem
            .atomic_u64(si, SHARED_INFO_EVTCHN_MASK + w * 8)
            .fetch_and(!bit, Ordering::SeqCst)
            & bit
            != 0;
        let pending = self
            .mem
            .atomic_u64(si, SHARED_INFO_EVTCHN_PENDING + w * 8)
            .load(Ordering::SeqCst)
            & bit
            != 0;
        if was_masked && pending {
            self.l2_raise_selector(p.vcpu, w);
        }
        Ok(())
    }

    pub(super) fn event_channel_op(&mut self, args: [usize; 5]) -> Result<isize, Errno> {
        let cmd = EvtchnOp(args[0] as u32);
        let arg = args[1];
        let me = self.cfg.domid;
        match cmd {
            EvtchnOp::ALLOC_UNBOUND => {
                // SAFETY: the caller passes its evtchn_alloc_unbound.
                let mut a: EvtchnAllocUnbound = unsafe { copy_from_guest(arg)? };
                self.check_domain(a.dom)?;
                let remote = self.resolve_dom(a.remote_dom);
                a.port = self.evtchn_alloc_unbound(me, remote)?;
                // SAFETY: as above.
                unsafe { copy_to_guest(arg, &a)? };
                Ok(0)
            }
            EvtchnOp::BIND_INTERDOMAIN => {
                // SAFETY: the caller passes its evtchn_bind_interdomain.
                let mut a: EvtchnBindInterdomain = unsafe { copy_from_guest(arg)? };
                let remote = self.resolve_dom(a.remote_dom);
                a.local_port = self.evtchn_bind_interdomain(me, remote, a.remote_port)?;
                // SAFETY: as above.
                unsafe { copy_to_guest(arg, &a)? };
                Ok(0)
            }
            EvtchnOp::BIND_VIRQ => {
                // SAFETY: the caller passes its evtchn_bind_virq.
                let mut a: EvtchnBindVirq = unsafe { copy_from_guest(arg)? };
                if a.virq.0 >= Virq::COUNT {
                    return Err(Errno::EINVAL);
                }
                if virq_is_global(a.virq) && a.vcpu != 0 {
                    return Err(Errno::EINVAL);
                }
                self.check_vcpu(a.vcpu)?;
                if self.evtchn.dom(me)?.virqs.contains_key(&(a.vcpu, a.virq)) {
                    return Err(Errno::EEXIST);
                }
                let limit = self.evtchn.abi_limit(me);
                let d = self.evtchn.dom_mut(me)?;
                let port = d.alloc(limit)?;
                d.ports[port as usize] = Port {
                    state: PortState::Virq(a.virq),
                    vcpu: a.vcpu,
                    last_queue: d.ports[port as usize].last_queue,
                    ..Port::free()
                };
                d.virqs.insert((a.vcpu, a.virq), port);
                a.port = port;
                // SAFETY: as above.
                unsafe { copy_to_guest(arg, &a)? };
                Ok(0)
            }
            EvtchnOp::BIND_IPI => {
                // SAFETY: the caller passes its evtchn_bind_ipi.
                let mut a: EvtchnBindIpi = unsafe { copy_from_guest(arg)? };
                self.check_vcpu(a.vcpu)?;
                let limit = self.evtchn.abi_limit(me);
                let d = self.evtchn.dom_mut(me)?;
                let port = d.alloc(limit)?;
                d.ports[port as usize] = Port {
                    state: PortState::Ipi,
                    vcpu: a.vcpu,
                    last_queue: d.ports[port as usize].last_queue,
                    ..Port::free()
                };
                a.port = port;
                // SAFETY: as above.
                unsafe { copy_to_guest(arg, &a)? };
                Ok(0)
            }
            EvtchnOp::BIND_PIRQ => Err(Errno::ENOSYS),
            EvtchnOp::CLOSE => {
                // SAFETY: the caller passes its evtchn_close.
                let a: EvtchnClose = unsafe { copy_from_guest(arg)? };
                self.evtchn_close(me, a.port)?;
                Ok(0)
            }
            EvtchnOp::SEND => {
                // SAFETY: the caller passes its evtchn_send.
                let a: EvtchnSend = unsafe { copy_from_guest(arg)? };
                self.evtchn_send(me, a.port)?;
                Ok(0)
            }
            EvtchnOp::STATUS => {
                // SAFETY: the caller passes its evtchn_status.
                let mut a: EvtchnStatus = unsafe { copy_from_guest(arg)? };
                // Xen: unknown domain ESRCH, bad port EINVAL, then the XSM check.
                let dom = self.resolve_dom(a.dom);
                self.evtchn.status(dom, a.port)?;
                self.check_domain(a.dom)?;
                let s = self.evtchn.status(me, a.port)?;
                a.vcpu = s.vcpu;
                a.u = [0, 0];
                a.status = match s.state {
                    PortState::Free | PortState::Reserved => EvtchnStatusKind::CLOSED,
                    PortState::Unbound { remote } => {
                        a.u[0] = remote as u32;
                        EvtchnStatusKind::UNBOUND
                    }
                    PortState::Interdomain {
                        remote,
                        remote_port,
                    } => {
                        a.u = [remote as u32, remote_port];
                        EvtchnStatusKind::INTERDOMAIN
                    }
                    PortState::Virq(v) => {
                        a.u[0] = v.0;
                        EvtchnStatusKind::VIRQ
                    }
                    PortState::Ipi => EvtchnStatusKind::IPI,
                };
                // SAFETY: as above.
                unsafe { copy_to_guest(arg, &a)? };
                Ok(0)
            }
            EvtchnOp::BIND_VCPU => {
                // SAFETY: the caller passes its evtchn_bind_vcpu.
                let a: EvtchnBindVcpu = unsafe { copy_from_guest(arg)? };
                self.check_vcpu(a.vcpu)?;
                let d = self.evtchn.dom_mut(me)?;
                let p = d.ports.get_mut(a.port as usize).ok_or(Errno::EINVAL)?;
                match p.state {
                    PortState::Virq(v) if !virq_is_global(v) => Err(Errno::EINVAL),
                    PortState::Virq(_)
                    | PortState::Unbound { .. }
                    | PortState::Interdomain { .. } => {
                        p.vcpu = a.vcpu;
                        Ok(0)
                    }
                    _ => Err(Errno::EINVAL),
                }
            }
            EvtchnOp::UNMASK => {
                // SAFETY: the caller passes its evtchn_unmask.
                let a: EvtchnUnmask = unsafe { copy_from_guest(arg)? };
                self.evtchn_unmask(a.port)?;
                Ok(0)
            }
            EvtchnOp::RESET => {
                // SAFETY: the caller passes its evtchn_reset.
                let a: EvtchnReset = unsafe { copy_from_guest(arg)? };
                self.check_domain(a.dom)?;
                self.evtchn_reset(me)?;
                Ok(0)
            }
            EvtchnOp::INIT_CONTROL => {
                // SAFETY: the caller passes its evtchn_init_control.
                let mut a: EvtchnInitControl = unsafe { copy_from_guest(arg)? };
                self.fifo_init_control(a.control_gfn, a.offset, a.vcpu)?;
                a.link_bits = EVTCHN_FIFO_LINK_BITS as u8;
                // SAFETY: as above.
                unsafe { copy_to_guest(arg, &a)? };
                Ok(0)
            }
            EvtchnOp::EXPAND_ARRAY => {
                // SAFETY: the caller passes its evtchn_expand_array.
                let a: EvtchnExpandArray = unsafe { copy_from_guest(arg)? };
                self.fifo_expand_array(a.array_gfn)?;
                Ok(0)
            }
            EvtchnOp::SET_PRIORITY => {
                // SAFETY: the caller passes its evtchn_set_priority.
                let a: EvtchnSetPriority = unsafe { copy_from_guest(arg)? };
                self.evtchn.status(me, a.port)?; // bad port: EINVAL before the ABI check
                if !self.evtchn.fifo {
                    return Err(Errno::ENOSYS);
                }
                if a.priority as usize >= EVTCHN_FIFO_MAX_QUEUES {
                    return Err(Errno::EINVAL);
                }
                let d = self.evtchn.dom_mut(me)?;
                let p = d.ports.get_mut(a.port as usize).ok_or(Errno::EINVAL)?;
                p.priority = a.priority;
                Ok(0)
            }
            _ => Err(Errno::ENOSYS),
        }
    }
}
