//! The scenario list. Each scenario is self-contained: it maps what it needs and leaves
//! the guest in a state the next one can start from.

use alloc::format;
use alloc::string::String;

use common::hypercall::PortWidth;
use xen_include::platform::UnplugFlags;
use xen_include::xen::grant_table::GrantEntryFlags;
use xen_include::xen::hvm::params::HvmParam;
use xen_include::xen::memory::MapSpace;
use xenbus::shared::{rmb, wmb, SharedMemory};

use crate::xs::Xs;
use crate::{fail, pass, wait_for, GuestEnv, Scenario, Verdict, DOM0_TIMEOUT_MS, REPLY_TIMEOUT_MS};

/// Every scenario, in the order the rig runs them.
pub const SCENARIOS: &[(&str, Scenario)] = &[
    ("discovery", discovery),
    ("hvm-params", hvm_params),
    ("shared-info", shared_info),
    ("store", store),
    ("grant-table", grant_table),
    ("evtchn", evtchn),
    ("unplug", unplug),
    ("balloon", crate::balloon::balloon),
    ("evtchn-core", crate::cores::evtchn_core),
    ("gnttab-core", crate::cores::gnttab_core),
    ("suspend", crate::cores::suspend),
    // Last: once the FIFO ABI is on, the domain stays on it.
    ("evtchn-fifo", evtchn_fifo),
];

/// Scratch pages: 0 = shared_info, 1 = grant table frame 0, 2 = the granted page.
const SHARED_INFO_PAGE: usize = 0;
const GRANT_FRAME_PAGE: usize = 1;
const GRANTED_PAGE: usize = 2;
/// The grant reference the scenario publishes (references below 32 are never used).
const GRANT_REF: u32 = 40;
/// `shared_info` offsets (64-bit layout, pinned in xen_include).
const EVTCHN_PENDING: usize = 2048;
const WC_VERSION: usize = 3072;
const WC_SEC: usize = 3076;

macro_rules! check {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return fail!("{e}"),
        }
    };
}

/// Find Xen through CPUID and ask its version, with the `xen` crate's discovery.
fn discovery(env: &dyn GuestEnv) -> Verdict {
    let hv = env.hv();
    let found = check!(xen::hypercall::discover(hv).map_err(|e| format!("discovery: {e:?}")));
    let (major, minor) =
        check!(xen::xen_version::version(hv).map_err(|s| format!("XENVER_version: {s:#x}")));
    let extra =
        check!(xen::xen_version::extra(hv).map_err(|s| format!("XENVER_extraversion: {s:#x}")));
    let extra_len = extra.iter().position(|b| *b == 0).unwrap_or(extra.len());
    let extra = String::from_utf8_lossy(extra.get(..extra_len).unwrap_or_default());
    if major < 4 {
        return fail!("implausible version {major}.{minor}");
    }
    pass!(
        "base {:#x} {:?} version {major}.{minor}{extra}",
        found.base,
        found.instruction
    )
}

/// The HVM parameters the toolstack set for the store and console rings.
fn hvm_params(env: &dyn GuestEnv) -> Verdict {
    let hv = env.hv();
    let mut values = [0u64; 4];
    for (slot, param) in values.iter_mut().zip([
        HvmParam::STORE_PFN,
        HvmParam::STORE_EVTCHN,
        HvmParam::CONSOLE_PFN,
        HvmParam::CONSOLE_EVTCHN,
    ]) {
        *slot = check!(xen::hvm::get_param(hv, param.0).map_err(|s| format!("{param:?}: {s:#x}")));
    }
    let [store_pfn, store_port, console_pfn, console_port] = values;
    if store_pfn == 0 || store_port == 0 || console_pfn == 0 || store_pfn == console_pfn {
        return fail!("store pfn {store_pfn:#x} port {store_port}, console pfn {console_pfn:#x} port {console_port}");
    }
    pass!("store pfn {store_pfn:#x} port {store_port}; console pfn {console_pfn:#x} port {console_port}")
}

fn map_shared_info(env: &dyn GuestEnv) -> Result<SharedMemory, String> {
    let pfn = env.scratch_pfn(SHARED_INFO_PAGE).ok_or("no scratch page")?;
    // Setting the callback (here: none) is among the first things a PV driver does; Xen
    // latches the shared_info layout (64-bit for a long-mode guest) at that point and only
    // then publishes the wallclock in that layout.
    xen::hvm::set_param(env.hv(), HvmParam::CALLBACK_IRQ.0, 0)
        .map_err(|s| format!("HVM_PARAM_CALLBACK_IRQ: {s:#x}"))?;
    xen::memory::add_to_physmap(env.hv(), pfn as usize, MapSpace::SHARED_INFO.0, 0)
        .map_err(|s| format!("add_to_physmap(shared_info): {s:#x}"))?;
    env.frame(pfn)
        .ok_or_else(|| "shared_info frame not reachable".into())
}

/// Map shared_info and read a consistent wallclock.
fn shared_info(env: &dyn GuestEnv) -> Verdict {
    let page = check!(map_shared_info(env));
    for _ in 0..1000 {
        let before = check!(page.load_u32(WC_VERSION).map_err(|e| format!("{e:?}")));
        rmb();
        let seconds = check!(page.load_u32(WC_SEC).map_err(|e| format!("{e:?}")));
        rmb();
        let after = check!(page.load_u32(WC_VERSION).map_err(|e| format!("{e:?}")));
        if before == after && before % 2 == 0 {
            // 2020-01-01 and 2100-01-01: a real wallclock, in the 64-bit layout.
            if !(1_577_836_800..4_102_444_800).contains(&seconds) {
                return fail!("wc_sec {seconds} is not a plausible wallclock (version {before})");
            }
            return pass!("wc_sec {seconds} wc_version {before}");
        }
    }
    fail!("wallclock version never settled")
}

/// Read, write, directory, a transaction and a watch fired by a dom0 write, all through
/// the xenbus STORE client over the real ring.
fn store(env: &dyn GuestEnv) -> Verdict {
    let mut xs = check!(Xs::connect(env));
    let name = check!(xs.read("name"));
    let domid = check!(xs.read("domid"));
    check!(xs.write(None, "data/rig/probe", "hello"));
    let back = check!(xs.read("data/rig/probe"));
    if back != "hello" {
        return fail!("read back {back:?}");
    }
    let children = check!(xs.directory("data/rig"));
    if !children.iter().any(|c| c == "probe") {
        return fail!("directory data/rig lacks probe: {children:?}");
    }
    // A transaction that commits.
    let tx = check!(xs.transaction_start());
    check!(xs.write(Some(tx), "data/rig/tx", "committed"));
    check!(xs.transaction_end(tx, true));
    let committed = check!(xs.read("data/rig/tx"));
    if committed != "committed" {
        return fail!("transaction value {committed:?}");
    }
    // A watch: the initial fire, then the one caused by dom0's write.
    check!(xs.write(None, "data/rig/watched", "initial"));
    check!(xs.watch("data/rig/watched", 7));
    // Wait for dom0's answer first: by then its write has happened and xenstored has queued
    // the event, so the poll below is not racing dom0's (slow, emulated) tools.
    let answer = check!(xs.dom0(&format!(
        "write /local/domain/{domid}/data/rig/watched from-dom0"
    )));
    // Both events are normally in hand already (they precede the reply on the ring).
    let mut fired = 0;
    let _ = wait_for(env, REPLY_TIMEOUT_MS, || {
        fired += xs.poll_events().iter().filter(|e| **e == 7).count();
        Ok((fired >= 2).then_some(()))
    });
    if fired < 2 {
        return fail!("watch fired {fired} time(s); dom0 said {answer:?}");
    }
    let value = check!(xs.read("data/rig/watched"));
    if value != "from-dom0" {
        return fail!("watched value {value:?}");
    }
    pass!("name={name} domid={domid}; write/read/directory/transaction ok; watch fired {fired}x")
}

/// Grant a page to dom0, which maps it with gntdev, reads it and writes back.
fn grant_table(env: &dyn GuestEnv) -> Verdict {
    let hv = env.hv();
    let (frames, max) =
        check!(xen::grant_table::query_size(hv).map_err(|s| format!("query_size: {s:#x}")));
    let table_pfn = check!(env.scratch_pfn(GRANT_FRAME_PAGE).ok_or("no scratch page"));
    check!(
        xen::memory::add_to_physmap(hv, table_pfn as usize, MapSpace::GRANT_TABLE.0, 0)
            .map_err(|s| format!("add_to_physmap(grant_table 0): {s:#x}"))
    );
    let table = check!(env.frame(table_pfn).ok_or("grant frame not reachable"));
    let data_pfn = check!(env.scratch_pfn(GRANTED_PAGE).ok_or("no scratch page"));
    let data = check!(env.frame(data_pfn).ok_or("data page not reachable"));
    let message = b"rig-grant-ok";
    check!(data.write_bytes(0, message).map_err(|e| format!("{e:?}")));
    let entry = GRANT_REF as usize * 8;
    // Publish: domid and frame first, then the flags, as a real frontend must.
    check!(table.store_u16(entry + 2, 0).map_err(|e| format!("{e:?}")));
    check!(table
        .store_u32(entry + 4, data_pfn as u32)
        .map_err(|e| format!("{e:?}")));
    wmb();
    check!(table
        .store_u16(entry, GrantEntryFlags::PERMIT_ACCESS.bits())
        .map_err(|e| format!("{e:?}")));
    let mut xs = check!(Xs::connect(env));
    let seen = check!(xs.dom0(&format!("grant-read {GRANT_REF} {}", message.len())));
    let mut back = [0u8; 5];
    check!(data
        .read_bytes(message.len(), &mut back)
        .map_err(|e| format!("{e:?}")));
    // Revoke: the mapping is gone again, so the reading/writing bits must be clear.
    let flags = check!(table.load_u16(entry).map_err(|e| format!("{e:?}")));
    check!(table.store_u16(entry, 0).map_err(|e| format!("{e:?}")));
    if seen.as_bytes() != message {
        return fail!("dom0 read {seen:?}");
    }
    if &back != b"dom0!" {
        return fail!("dom0's write not visible: {back:?}");
    }
    let busy = GrantEntryFlags::from_bits_truncate(flags)
        & (GrantEntryFlags::READING | GrantEntryFlags::WRITING);
    if !busy.is_empty() {
        return fail!("entry still {busy:?} after dom0 unmapped");
    }
    pass!("frames {frames}/{max}; dom0 mapped ref {GRANT_REF}, read {seen:?} and wrote back")
}

fn pending(shared: &SharedMemory, port: u32) -> Result<bool, String> {
    let word = EVTCHN_PENDING + (port as usize / 64) * 8;
    let bits = shared.load_u64(word).map_err(|e| format!("{e:?}"))?;
    Ok(bits & (1u64 << (port % 64)) != 0)
}

fn clear_pending(shared: &SharedMemory, port: u32) -> Result<(), String> {
    let word = EVTCHN_PENDING + (port as usize / 64) * 8;
    shared
        .and_u64(word, !(1u64 << (port % 64)))
        .map(|_| ())
        .map_err(|e| format!("{e:?}"))
}

/// An unbound channel offered to dom0: dom0 binds and notifies, the guest sees the
/// 2-level pending bit and notifies back.
fn evtchn(env: &dyn GuestEnv) -> Verdict {
    let hv = env.hv();
    let shared = check!(map_shared_info(env));
    let port =
        check!(xen::event_channel::allocate_unbound(hv, 0)
            .map_err(|s| format!("alloc_unbound: {s:#x}")));
    let mut xs = check!(Xs::connect(env));
    let sequence = check!(xs.dom0_start(&format!("evtchn-echo {port}")));
    let seen = check!(wait_for(env, DOM0_TIMEOUT_MS, || Ok(pending(
        &shared, port
    )?
    .then_some(()))));
    if seen.is_none() {
        let answer = xs.dom0_answer_now(sequence).unwrap_or_default();
        return fail!("no event from dom0 on port {port}; dom0 said {answer:?}");
    }
    check!(clear_pending(&shared, port));
    let (remote_dom, remote_port) = check!(
        xen::event_channel::query_inter_domain(hv, port).map_err(|s| format!("status: {s:#x}"))
    );
    let answer = check!(answer_after_delay(env, &mut xs, sequence, || {
        xen::event_channel::send(hv, port).map_err(|s| format!("send: {s:#x}"))
    }));
    let _ = xen::event_channel::close(hv, port);
    pass!("port {port} bound by dom{remote_dom} port {remote_port}; both directions delivered (2-level); dom0: {answer}")
}

/// How long the guest holds its notification back, so dom0's "after <s>" proves the event
/// it saw is the guest's and not one raised by the hypervisor or its own kernel.
const NOTIFY_DELAY_MS: u64 = 1_000;

/// Wait [`NOTIFY_DELAY_MS`], `notify` dom0 and take its `evtchn-echo` answer, which must be
/// `ok <port> after <seconds>s` with the seconds covering the delay.
pub(crate) fn answer_after_delay(
    env: &dyn GuestEnv,
    xs: &mut Xs<'_>,
    sequence: u32,
    notify: impl FnOnce() -> Result<(), String>,
) -> Result<String, String> {
    let _ = wait_for(env, NOTIFY_DELAY_MS, || Ok(None::<()>));
    notify()?;
    let answer = xs.dom0_wait(sequence)?;
    let waited = answer
        .strip_prefix("ok ")
        .and_then(|rest| rest.split(" after ").nth(1))
        .and_then(|s| s.trim_end_matches('s').parse::<f64>().ok());
    match waited {
        Some(seconds) if seconds * 1000.0 >= NOTIFY_DELAY_MS as f64 * 0.9 => Ok(answer),
        Some(_) => Err(format!(
            "dom0 saw an event before the guest's delayed notification: {answer}"
        )),
        None => Err(format!("dom0: {answer}")),
    }
}

const PCI_ADDRESS: u16 = 0xCF8;
const PCI_DATA: u16 = 0xCFC;

/// Count PCI functions on bus 0 with base class `class`.
fn count_pci_class(env: &dyn GuestEnv, class: u8) -> u32 {
    let hv = env.hv();
    let mut count = 0;
    for slot in 0..32u32 {
        hv.port_write(PCI_ADDRESS, PortWidth::Dword, 0x8000_0000 | (slot << 11));
        let id = hv.port_read(PCI_DATA, PortWidth::Dword);
        if id == 0xFFFF_FFFF || id == 0 {
            continue;
        }
        hv.port_write(
            PCI_ADDRESS,
            PortWidth::Dword,
            0x8000_0000 | (slot << 11) | 0x08,
        );
        if (hv.port_read(PCI_DATA, PortWidth::Dword) >> 24) as u8 == class {
            count += 1;
        }
    }
    count
}

/// ATA status of the primary master (DRDY set when a disk is attached).
fn primary_master_status(env: &dyn GuestEnv) -> u8 {
    let hv = env.hv();
    hv.port_write(0x1F6, PortWidth::Byte, 0xA0);
    hv.port_read(0x1F7, PortWidth::Byte) as u8
}

/// The unplug protocol on the platform device: the emulated NIC leaves the PCI bus and
/// the emulated IDE disk leaves its channel, seen from the guest and from dom0.
fn unplug(env: &dyn GuestEnv) -> Verdict {
    let hv = env.hv();
    let nics_before = count_pci_class(env, 0x02);
    let ide_before = primary_master_status(env);
    let blacklisted = check!(xen::unplug::preamble(hv).map_err(|s| format!("preamble: {s:#x}")));
    if blacklisted {
        return fail!("QEMU blacklisted the drivers");
    }
    for flags in [
        UnplugFlags::IDE_SCSI_DISKS | UnplugFlags::NVME_DISKS,
        UnplugFlags::ALL_NICS,
    ] {
        hv.port_write(
            xen_include::platform::XEN_PLATFORM_IOPORT_UNPLUG,
            PortWidth::Word,
            u32::from(flags.bits()),
        );
    }
    let nics_after = count_pci_class(env, 0x02);
    let ide_after = primary_master_status(env);
    let mut xs = check!(Xs::connect(env));
    let dom0_view = xs.dom0("qemu info pci").unwrap_or_else(|e| e);
    if nics_before == 0 || ide_before & 0x40 == 0 {
        return fail!("nothing to unplug: {nics_before} NIC(s), IDE status {ide_before:#x}");
    }
    if nics_after != 0 || ide_after & 0x40 != 0 {
        return fail!("still present: {nics_after} NIC(s), IDE status {ide_after:#x}");
    }
    if dom0_view.contains("Ethernet controller") {
        return fail!("dom0's device model still lists a NIC: {dom0_view}");
    }
    let dom0_checked = dom0_view.contains("Bus") || dom0_view.contains("bus");
    pass!(
        "NICs {nics_before}->{nics_after}, IDE status {ide_before:#x}->{ide_after:#x}; dom0 view {}",
        if dom0_checked { "agrees" } else { "unavailable" }
    )
}

/// Scratch pages of the FIFO scenario: the vCPU 0 control block and the first event array
/// page (event words of ports 0–1023).
const FIFO_CONTROL_PAGE: usize = 3;
const FIFO_ARRAY_PAGE: usize = 4;

/// Switch to the FIFO event-channel ABI (where the hypervisor offers it) and repeat the
/// two-way exchange with dom0, watching the port's FIFO event word.
fn evtchn_fifo(env: &dyn GuestEnv) -> Verdict {
    use xen_include::xen::event_channel::EVTCHN_FIFO_PENDING;
    let hv = env.hv();
    let control = check!(env.scratch_pfn(FIFO_CONTROL_PAGE).ok_or("no scratch page"));
    let array_pfn = check!(env.scratch_pfn(FIFO_ARRAY_PAGE).ok_or("no scratch page"));
    check!(xen::event_channel::init_control(hv, control as usize, 0)
        .map_err(|s| format!("init_control: {s:#x}")));
    check!(xen::event_channel::expand_array(hv, array_pfn as usize)
        .map_err(|s| format!("expand_array: {s:#x}")));
    let array = check!(env.frame(array_pfn).ok_or("event array not reachable"));
    let port =
        check!(xen::event_channel::allocate_unbound(hv, 0)
            .map_err(|s| format!("alloc_unbound: {s:#x}")));
    if port >= 1024 {
        return fail!("port {port} beyond the first event array page");
    }
    let word = port as usize * 4;
    let pending_bit = 1u32 << EVTCHN_FIFO_PENDING;
    let mut xs = check!(Xs::connect(env));
    let sequence = check!(xs.dom0_start(&format!("evtchn-echo {port}")));
    let seen = check!(wait_for(env, DOM0_TIMEOUT_MS, || {
        let value = array.load_u32(word).map_err(|e| format!("{e:?}"))?;
        Ok((value & pending_bit != 0).then_some(value))
    }));
    let Some(seen) = seen else {
        let answer = xs.dom0_answer_now(sequence).unwrap_or_default();
        return fail!("no FIFO event from dom0 on port {port}; dom0 said {answer:?}");
    };
    check!(array
        .and_u32(word, !pending_bit)
        .map(|_| ())
        .map_err(|e| format!("{e:?}")));
    let answer = check!(answer_after_delay(env, &mut xs, sequence, || {
        xen::event_channel::send(hv, port).map_err(|s| format!("send: {s:#x}"))
    }));
    let _ = xen::event_channel::close(hv, port);
    pass!("FIFO ABI on; port {port} event word {seen:#010x}; both directions delivered; dom0: {answer}")
}
