//! Scenario tests: vcpu_op, timers and the watchdog, xen_version, console_io, CPUID and the
//! platform ports reached through the `Hypercall` edge.

/// Heap use above DISPATCH_LEVEL panics, as pool use there bug-checks a real kernel.
#[global_allocator]
static ALLOCATOR: common::irql::model::CheckingAllocator =
    common::irql::model::CheckingAllocator::SYSTEM;

mod hvsupport;

use std::sync::atomic::Ordering;

use common::hypercall::{Hypercall, PortWidth};
use common::os::Os;
use hvsupport::*;
use xen_sim::hv::abi::*;
use xen_sim::hv::{CpuVendor, HvConfig};
use xen_sim::machine::{Machine, MachineConfig};
use xen_sim::platform::{Bar, DeviceKind};

fn machine(f: impl FnOnce(&mut HvConfig)) -> Machine {
    let mut cfg = MachineConfig::default();
    f(&mut cfg.hv);
    Machine::with_config(cfg)
}

#[test]
fn register_vcpu_info_copies_and_marks_everything_pending() {
    let m = Machine::new();
    let si = GuestSharedInfo::map(&m);
    let (port, bport) = dom0_channel(&m);
    let mut bv = EvtchnBindVcpu { port, vcpu: 1 };
    assert_eq!(evtchn(&m, EvtchnOp::BIND_VCPU, &mut bv), 0);
    // Something in the legacy slot to be copied.
    si.page
        .u8(VCPU_INFO_SIZE + core::mem::offset_of!(VcpuInfo, evtchn_upcall_mask))
        .store(1, Ordering::SeqCst);
    let page = m.guest.alloc_page().unwrap();
    let vi = GuestPage { va: page.va + 128 };
    let mut r = VcpuRegisterVcpuInfo {
        mfn: page.pfn,
        offset: 128,
        rsvd: 0,
    };
    // Only the vCPU itself may register (Xen 4.17).
    assert_eq!(
        vcpu(&m, VcpuOp::REGISTER_VCPU_INFO, 1, &mut r),
        err(Errno::EINVAL)
    );
    let on1 = |r: &mut VcpuRegisterVcpuInfo| {
        xen_sim::guest::run_on(1, || vcpu(&m, VcpuOp::REGISTER_VCPU_INFO, 1, r))
    };
    assert_eq!(on1(&mut r), 0);
    assert_eq!(
        vi.u8(core::mem::offset_of!(VcpuInfo, evtchn_upcall_mask))
            .load(Ordering::SeqCst),
        1
    );
    assert_eq!(vi.u8(VCPU_INFO_UPCALL_PENDING).swap(0, Ordering::SeqCst), 1);
    assert_eq!(vi.u64(VCPU_INFO_PENDING_SEL).swap(0, Ordering::SeqCst), !0);
    assert_eq!(on1(&mut r), err(Errno::EINVAL), "registered once");
    // Events for vCPU 1 now land in the registered area, not the legacy slot.
    m.hv.backend_send(0, bport).unwrap();
    assert_eq!(vi.u8(VCPU_INFO_UPCALL_PENDING).load(Ordering::SeqCst), 1);
    assert!(!si.take_upcall(1));
    // Time is published there too (1 GHz simulated TSC).
    let time = VCPU_INFO_TIME;
    assert_eq!(
        vi.u32(time + core::mem::offset_of!(VcpuTimeInfo, tsc_to_system_mul))
            .load(Ordering::SeqCst),
        1 << 31
    );
    assert!(
        vi.u64(time + core::mem::offset_of!(VcpuTimeInfo, system_time))
            .load(Ordering::SeqCst)
            > 0
    );
    assert_eq!(
        vi.u32(time).load(Ordering::SeqCst) % 2,
        0,
        "version is even between updates"
    );
    // Bad arguments.
    let mut bad = VcpuRegisterVcpuInfo {
        mfn: page.pfn,
        offset: 4096 - 32,
        rsvd: 0,
    };
    assert_eq!(
        vcpu(&m, VcpuOp::REGISTER_VCPU_INFO, 0, &mut bad),
        err(Errno::ENXIO)
    );
    bad.offset = 4;
    assert_eq!(
        vcpu(&m, VcpuOp::REGISTER_VCPU_INFO, 0, &mut bad),
        err(Errno::ENXIO)
    );
    bad.offset = 0;
    bad.mfn = m.layout().hole.start;
    assert_eq!(
        vcpu(&m, VcpuOp::REGISTER_VCPU_INFO, 0, &mut bad),
        err(Errno::EINVAL)
    );
    assert_eq!(
        vcpu(&m, VcpuOp::REGISTER_VCPU_INFO, 7, &mut bad),
        err(Errno::ENOENT)
    );
    let mut none = 0u64;
    assert_eq!(vcpu(&m, VcpuOp::IS_UP, 1, &mut none), 1);
    assert_eq!(vcpu(&m, VcpuOp::SEND_NMI, 1, &mut none), err(Errno::ENOSYS));
}

#[test]
fn periodic_timer_raises_virq_timer_on_its_vcpu() {
    let m = Machine::new();
    m.clock.set_step(0);
    let si = GuestSharedInfo::map(&m);
    let mut v = EvtchnBindVirq {
        virq: Virq::TIMER,
        vcpu: 1,
        port: 0,
    };
    assert_eq!(evtchn(&m, EvtchnOp::BIND_VIRQ, &mut v), 0);
    let mut t = VcpuSetPeriodicTimer { period_ns: 999_999 };
    assert_eq!(
        vcpu(&m, VcpuOp::SET_PERIODIC_TIMER, 1, &mut t),
        err(Errno::EINVAL)
    );
    t.period_ns = 10_000_000;
    assert_eq!(vcpu(&m, VcpuOp::SET_PERIODIC_TIMER, 1, &mut t), 0);
    m.hv.advance_time(9_000_000);
    assert!(!si.pending(v.port));
    m.hv.advance_time(1_000_000);
    assert!(si.pending(v.port));
    assert!(si.take_upcall(1));
    si.clear_pending(v.port);
    si.take_sel(1);
    let mut none = 0u64;
    assert_eq!(vcpu(&m, VcpuOp::STOP_PERIODIC_TIMER, 1, &mut none), 0);
    m.hv.advance_time(50_000_000);
    assert!(!si.pending(v.port));
}

#[test]
fn watchdog_slots_reset_and_expiry() {
    let m = Machine::new();
    m.clock.set_step(0);
    let mut w = SchedWatchdog { id: 0, timeout: 30 };
    assert_eq!(sched(&m, SchedOp::WATCHDOG, &mut w), 1);
    assert_eq!(sched(&m, SchedOp::WATCHDOG, &mut w), 2);
    assert_eq!(sched(&m, SchedOp::WATCHDOG, &mut w), err(Errno::ENOSPC));
    // Kill slot 2; slot 1 is patted, then left to expire.
    let mut kill = SchedWatchdog { id: 2, timeout: 0 };
    assert_eq!(sched(&m, SchedOp::WATCHDOG, &mut kill), 0);
    assert_eq!(sched(&m, SchedOp::WATCHDOG, &mut kill), err(Errno::EINVAL));
    m.hv.advance_time(20_000_000_000);
    let mut pat = SchedWatchdog { id: 1, timeout: 30 };
    assert_eq!(sched(&m, SchedOp::WATCHDOG, &mut pat), 0);
    m.hv.advance_time(20_000_000_000);
    assert_eq!(m.hv.shutdown_state().reason, None);
    m.hv.advance_time(11_000_000_000);
    assert_eq!(m.hv.shutdown_state().reason, Some(ShutdownReason::WATCHDOG));
    let mut none = 0u64;
    assert_eq!(sched(&m, SchedOp::YIELD, &mut none), 0);
    assert_eq!(m.hv.shutdown_state().yields, 1);
}

#[test]
fn xen_version_and_console_io() {
    let m = Machine::new();
    let mut none = 0u64;
    assert_eq!(
        op(
            &m,
            HypercallCode::XEN_VERSION,
            XenVersionOp::VERSION.0,
            &mut none
        ),
        0x4_0011
    );
    let mut extra = [0u8; XEN_EXTRAVERSION_LEN];
    assert_eq!(
        op(
            &m,
            HypercallCode::XEN_VERSION,
            XenVersionOp::EXTRAVERSION.0,
            &mut extra
        ),
        0
    );
    assert_eq!(&extra[..3], b".0\0");
    let mut f = XenFeatureInfo {
        submap_idx: 0,
        submap: 0,
    };
    assert_eq!(
        op(
            &m,
            HypercallCode::XEN_VERSION,
            XenVersionOp::GET_FEATURES.0,
            &mut f
        ),
        0
    );
    assert_ne!(f.submap & (1 << XenFeature::HVM_CALLBACK_VECTOR.0), 0);
    assert_eq!(
        op(
            &m,
            HypercallCode::XEN_VERSION,
            XenVersionOp::PAGESIZE.0,
            &mut none
        ),
        4096
    );
    let mut caps = [0u8; XEN_CAPABILITIES_INFO_LEN];
    assert_eq!(
        op(
            &m,
            HypercallCode::XEN_VERSION,
            XenVersionOp::CAPABILITIES.0,
            &mut caps
        ),
        0
    );
    assert!(caps.starts_with(b"hvm-3.0-x86_32"));
    // A release hypervisor refuses console_io from a guest; a debug one prints it.
    let text = b"hello\n";
    let call = |m: &Machine| {
        m.hv.hypercall(
            HypercallCode::CONSOLE_IO.0,
            [
                ConsoleIoOp::WRITE.0 as usize,
                text.len(),
                text.as_ptr() as usize,
                0,
                0,
            ],
        )
    };
    assert_eq!(call(&m), err(Errno::EPERM));
    let dbg = machine(|c| c.console_io_allowed = true);
    assert_eq!(call(&dbg), 0);
    assert_eq!(dbg.hv.console_output(), "hello\n");
    let mut cmdline = [0u8; 1024];
    assert_eq!(
        op(
            &m,
            HypercallCode::XEN_VERSION,
            XenVersionOp::COMMANDLINE.0,
            &mut cmdline
        ),
        err(Errno::EPERM)
    );
    let mut pp = XenPlatformParameters { virt_start: 0 };
    assert_eq!(
        op(
            &m,
            HypercallCode::XEN_VERSION,
            XenVersionOp::PLATFORM_PARAMETERS.0,
            &mut pp
        ),
        0
    );
    assert_ne!(pp.virt_start, 0);
    assert_eq!(m.hv.hypercall(99, [0; 5]), err(Errno::ENOSYS));
}

#[test]
fn cpuid_signature_vendor_and_viridian_shift() {
    let m = Machine::new();
    let leaf0 = m.hv.cpuid(0, 0);
    let vendor: Vec<u8> = [leaf0.ebx, leaf0.edx, leaf0.ecx]
        .iter()
        .flat_map(|r| r.to_le_bytes())
        .collect();
    assert_eq!(&vendor, CPU_VENDOR_INTEL);
    let base = m.hv.cpuid(XEN_CPUID_FIRST_LEAF, 0);
    assert_eq!(
        (base.ebx, base.ecx, base.edx),
        (
            XEN_CPUID_SIGNATURE_EBX,
            XEN_CPUID_SIGNATURE_ECX,
            XEN_CPUID_SIGNATURE_EDX
        )
    );
    assert!(base.eax >= XEN_CPUID_FIRST_LEAF + 2);
    assert_eq!(m.hv.cpuid(XEN_CPUID_FIRST_LEAF + 1, 0).eax, 0x4_0011);
    let hvm = xen_sim::guest::run_on(1, || {
        m.hv.cpuid(XEN_CPUID_FIRST_LEAF + XEN_CPUID_LEAF_HVM, 0)
    });
    assert_ne!(hvm.eax & XenHvmCpuidFeatures::VCPU_ID_PRESENT.bits(), 0);
    assert_eq!(hvm.ebx, 1);
    assert_eq!(hvm.ecx, m.hv.domid() as u32);
    let v = machine(|c| {
        c.viridian = true;
        c.vendor = CpuVendor::Amd;
    });
    let hv0 = v.hv.cpuid(XEN_CPUID_FIRST_LEAF, 0);
    assert_ne!(
        hv0.ebx, XEN_CPUID_SIGNATURE_EBX,
        "Hyper-V leaves come first"
    );
    let shifted = v.hv.cpuid(XEN_CPUID_FIRST_LEAF + XEN_CPUID_LEAF_STRIDE, 0);
    assert_eq!(shifted.ebx, XEN_CPUID_SIGNATURE_EBX);
    let l0 = v.hv.cpuid(0, 0);
    let vendor: Vec<u8> = [l0.ebx, l0.edx, l0.ecx]
        .iter()
        .flat_map(|r| r.to_le_bytes())
        .collect();
    assert_eq!(&vendor, CPU_VENDOR_AMD);
    let o = machine(|c| c.vendor = CpuVendor::Other("VIA VIA VIA ".into()));
    let l0 = o.hv.cpuid(0, 0);
    assert_eq!(l0.ebx.to_le_bytes(), *b"VIA ");
}

#[test]
fn platform_ports_through_the_hypercall_edge() {
    let m = Machine::new();
    let hv: &dyn Hypercall = &*m.hv;
    assert_eq!(
        hv.port_read(XEN_PLATFORM_IOPORT_MAGIC, PortWidth::Word),
        XEN_PLATFORM_MAGIC as u32
    );
    assert_eq!(
        hv.port_read(XEN_PLATFORM_IOPORT_VERSION, PortWidth::Byte),
        1
    );
    hv.port_write(XEN_PLATFORM_IOPORT_PRODUCT, PortWidth::Word, 0xFFFF);
    hv.port_write(
        XEN_PLATFORM_IOPORT_BUILD,
        PortWidth::Dword,
        build_number(9, 1, 0),
    );
    hv.port_write(
        XEN_PLATFORM_IOPORT_UNPLUG,
        PortWidth::Word,
        UnplugFlags::DISKS.bits() as u32,
    );
    let p = m.hv.platform();
    assert_eq!(
        p.driver_identity(),
        (Some(0xFFFF), Some(build_number(9, 1, 0)))
    );
    assert!(!p
        .devices()
        .iter()
        .any(|d| matches!(d.kind, DeviceKind::IdeDisk { .. } | DeviceKind::Nvme)));
    assert!(p.devices().iter().any(|d| d.kind == DeviceKind::Nic));
    let xen = p
        .devices()
        .iter()
        .find(|d| d.kind == DeviceKind::XenPlatform)
        .unwrap();
    let hole = m.layout().hole.clone();
    assert_eq!(
        xen.bars[1],
        Bar::Memory {
            base: hole.start * 4096,
            len: (hole.end - hole.start) * 4096
        },
        "the memory BAR covers the unpopulated hole"
    );
    assert_eq!(
        (xen.vendor, xen.device, xen.class.0),
        (0x5853, 0x0001, 0xFF)
    );
    drop(p);
    for b in b"XEN|up\n" {
        hv.port_write(XEN_DEBUG_CONSOLE_IOPORT, PortWidth::Byte, *b as u32);
    }
    assert_eq!(m.hv.platform().debug_port_output(), "XEN|up\n");
}
