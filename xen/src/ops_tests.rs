//! Every hypercall wrapper against a fake hypervisor that decodes the argument structs
//! and answers like Xen (the simulator scenarios repeat this end to end).

use xen_include::status::*;
use xen_include::xen::event_channel::*;
use xen_include::xen::grant_table::*;
use xen_include::xen::hvm::hvm_op::*;
use xen_include::xen::memory::*;
use xen_include::xen::sched::*;
use xen_include::xen::vcpu::*;
use xen_include::xen::xen::{DomId, HypercallCode};

use crate::testing::{peek, poke, FakeHv};

const EAGAIN: isize = -11;
const EINVAL: isize = -22;
const ENOSYS: isize = -38;
const EPERM: isize = -1;

#[test]
fn errno_mapping() {
    for (rc, want) in [
        (EINVAL, STATUS_INVALID_PARAMETER),
        (EAGAIN, STATUS_RETRY),
        (ENOSYS, STATUS_NOT_IMPLEMENTED),
        (EPERM, STATUS_ACCESS_DENIED),
        (-12, STATUS_NO_MEMORY),
        (-200, STATUS_UNSUCCESSFUL),
        (isize::MIN, STATUS_UNSUCCESSFUL),
    ] {
        let hv = FakeHv::answering(move |_, _| rc);
        assert_eq!(crate::event_channel::send(&hv, 1), Err(want), "rc {rc}");
    }
}

#[test]
fn hvm_params() {
    let hv = FakeHv::answering(|op, a| {
        assert_eq!(op, HypercallCode::HVM_OP.0);
        if a[0] == HvmOp::PAGETABLE_DYING.0 as usize {
            let p: XenHvmPagetableDying = peek(a[1]);
            assert_eq!((p.domid, p.gpa), (DomId::SELF, 0x1234_5000));
            return 0;
        }
        if a[0] == HvmOp::SET_EVTCHN_UPCALL_VECTOR.0 as usize {
            let p: XenHvmEvtchnUpcallVector = peek(a[1]);
            assert_eq!((p.vcpu, p.vector), (3, 0xED));
            return 0;
        }
        let mut p: XenHvmParam = peek(a[1]);
        assert_eq!(p.domid, DomId::SELF);
        match HvmOp(a[0] as u32) {
            HvmOp::SET_PARAM => {
                assert_eq!((p.index.0, p.value), (1, 0xFEFF0));
                0
            }
            HvmOp::GET_PARAM if p.index.0 == 2 => {
                p.value = 42;
                poke(a[1], p);
                0
            }
            _ => EINVAL,
        }
    });
    crate::hvm::set_param(&hv, 1, 0xFEFF0).unwrap();
    assert_eq!(crate::hvm::get_param(&hv, 2), Ok(42));
    assert_eq!(crate::hvm::get_param(&hv, 3), Err(STATUS_INVALID_PARAMETER));
    crate::hvm::pagetable_dying(&hv, 0x1234_5000).unwrap();
    crate::hvm::set_evtchn_upcall_vector(&hv, 3, 0xED).unwrap();
}

#[test]
fn memory_ops() {
    let hv = FakeHv::answering(|op, a| {
        assert_eq!(op, HypercallCode::MEMORY_OP.0);
        match MemoryOp(a[0] as u32) {
            MemoryOp::ADD_TO_PHYSMAP => {
                let p: XenAddToPhysmap = peek(a[1]);
                assert_eq!(
                    (p.domid, p.space, p.idx, p.gpfn),
                    (DomId::SELF, MapSpace::GRANT_TABLE, 5, 0xF0005)
                );
                0
            }
            MemoryOp::REMOVE_FROM_PHYSMAP => {
                let p: XenRemoveFromPhysmap = peek(a[1]);
                assert_eq!(p.gpfn, 0xF0005);
                0
            }
            MemoryOp::DECREASE_RESERVATION | MemoryOp::POPULATE_PHYSMAP => {
                let p: XenMemoryReservation = peek(a[1]);
                assert_eq!(p.domid, DomId::SELF);
                assert_eq!(p.extent_order, 9);
                assert_eq!(p.nr_extents, 3);
                let first: usize = peek(p.extent_start.address() as usize);
                assert_eq!(first, 0x200);
                2
            }
            _ => ENOSYS,
        }
    });
    crate::memory::add_to_physmap(&hv, 0xF0005, MapSpace::GRANT_TABLE.0, 5).unwrap();
    crate::memory::remove_from_physmap(&hv, 0xF0005).unwrap();
    let mut pfns = [0x200usize, 0x400, 0x600];
    assert_eq!(
        crate::memory::decrease_reservation(&hv, 9, &mut pfns),
        Ok(2)
    );
    assert_eq!(crate::memory::populate_physmap(&hv, 9, &mut pfns), Ok(2));
}

#[test]
fn event_channel_ops() {
    let hv = FakeHv::answering(|op, a| {
        assert_eq!(op, HypercallCode::EVENT_CHANNEL_OP.0);
        match EvtchnOp(a[0] as u32) {
            EvtchnOp::ALLOC_UNBOUND => {
                let mut p: EvtchnAllocUnbound = peek(a[1]);
                assert_eq!((p.dom, p.remote_dom), (DomId::SELF, DomId(0)));
                p.port = 7;
                poke(a[1], p);
                0
            }
            EvtchnOp::BIND_INTERDOMAIN => {
                let mut p: EvtchnBindInterdomain = peek(a[1]);
                assert_eq!((p.remote_dom, p.remote_port), (DomId(0), 12));
                p.local_port = 8;
                poke(a[1], p);
                0
            }
            EvtchnOp::BIND_VIRQ => {
                let mut p: EvtchnBindVirq = peek(a[1]);
                assert_eq!((p.virq.0, p.vcpu), (0, 1));
                p.port = 9;
                poke(a[1], p);
                0
            }
            EvtchnOp::STATUS => {
                let mut p: EvtchnStatus = peek(a[1]);
                assert_eq!(p.dom, DomId::SELF);
                if p.port == 8 {
                    p.status = EvtchnStatusKind::INTERDOMAIN;
                    p.u = [0, 12];
                } else {
                    p.status = EvtchnStatusKind::UNBOUND;
                }
                poke(a[1], p);
                0
            }
            EvtchnOp::INIT_CONTROL => {
                let p: EvtchnInitControl = peek(a[1]);
                assert_eq!((p.control_gfn, p.offset, p.vcpu), (0x77, 0, 2));
                0
            }
            EvtchnOp::EXPAND_ARRAY => {
                assert_eq!(peek::<EvtchnExpandArray>(a[1]).array_gfn, 0x78);
                0
            }
            EvtchnOp::RESET => {
                assert_eq!(peek::<EvtchnReset>(a[1]).dom, DomId::SELF);
                0
            }
            EvtchnOp::BIND_VCPU => {
                let p: EvtchnBindVcpu = peek(a[1]);
                assert_eq!((p.port, p.vcpu), (8, 3));
                0
            }
            EvtchnOp::SEND | EvtchnOp::CLOSE | EvtchnOp::UNMASK => {
                assert_eq!(peek::<u32>(a[1]), 8);
                0
            }
            _ => ENOSYS,
        }
    });
    use crate::event_channel as e;
    assert_eq!(e::allocate_unbound(&hv, 0), Ok(7));
    assert_eq!(e::bind_inter_domain(&hv, 0, 12), Ok(8));
    assert_eq!(e::bind_virq(&hv, 0, 1), Ok(9));
    assert_eq!(e::query_inter_domain(&hv, 8), Ok((0, 12)));
    assert_eq!(e::query_inter_domain(&hv, 7), Err(STATUS_INVALID_PARAMETER));
    e::init_control(&hv, 0x77, 2).unwrap();
    e::expand_array(&hv, 0x78).unwrap();
    e::reset(&hv).unwrap();
    e::bind_virtual_cpu(&hv, 8, 3).unwrap();
    e::send(&hv, 8).unwrap();
    e::close(&hv, 8).unwrap();
    e::unmask(&hv, 8).unwrap();
}

#[test]
fn grant_table_ops() {
    let hv = FakeHv::answering(|op, a| {
        assert_eq!(op, HypercallCode::GRANT_TABLE_OP.0);
        match GnttabOp(a[0] as u32) {
            GnttabOp::MAP_GRANT_REF => {
                assert_eq!(a[2], 1);
                let mut p: GnttabMapGrantRef = peek(a[1]);
                assert_eq!(p.dom, DomId(0));
                assert_eq!(p.host_addr, 0xF000_0000);
                if p.reference == 99 {
                    p.status = GrantStatus::BAD_GNTREF;
                } else {
                    let ro = p.flags & GntMapFlags::READONLY.bits() != 0;
                    assert_eq!(
                        p.flags & GntMapFlags::HOST_MAP.bits(),
                        GntMapFlags::HOST_MAP.bits()
                    );
                    p.handle = if ro { 5 } else { 4 };
                }
                poke(a[1], p);
                0
            }
            GnttabOp::UNMAP_GRANT_REF => {
                let mut p: GnttabUnmapGrantRef = peek(a[1]);
                if p.handle != 4 {
                    p.status = GrantStatus::BAD_HANDLE;
                    poke(a[1], p);
                }
                0
            }
            GnttabOp::QUERY_SIZE => {
                let mut p: GnttabQuerySize = peek(a[1]);
                assert_eq!(p.dom, DomId::SELF);
                p.nr_frames = 4;
                p.max_nr_frames = 64;
                poke(a[1], p);
                0
            }
            GnttabOp::GET_VERSION => {
                let mut p: GnttabGetVersion = peek(a[1]);
                p.version = 1;
                poke(a[1], p);
                0
            }
            GnttabOp::SET_VERSION => {
                if peek::<GnttabSetVersion>(a[1]).version == 1 {
                    0
                } else {
                    EINVAL
                }
            }
            GnttabOp::COPY => {
                assert_eq!(a[2], 2);
                let mut p: GnttabCopy = peek(a[1] + core::mem::size_of::<GnttabCopy>());
                p.status = GrantStatus::EAGAIN;
                poke(a[1] + core::mem::size_of::<GnttabCopy>(), p);
                0
            }
            _ => ENOSYS,
        }
    });
    use crate::grant_table as g;
    assert_eq!(g::map_foreign_page(&hv, 0, 10, 0xF000_0000, false), Ok(4));
    assert_eq!(g::map_foreign_page(&hv, 0, 10, 0xF000_0000, true), Ok(5));
    assert_eq!(
        g::map_foreign_page(&hv, 0, 99, 0xF000_0000, true),
        Err(STATUS_UNSUCCESSFUL)
    );
    g::unmap_foreign_page(&hv, 4, 0xF000_0000).unwrap();
    assert_eq!(
        g::unmap_foreign_page(&hv, 6, 0xF000_0000),
        Err(STATUS_INVALID_HANDLE)
    );
    assert_eq!(g::query_size(&hv), Ok((4, 64)));
    assert_eq!(g::get_version(&hv), Ok(1));
    g::set_version(&hv, 1).unwrap();
    assert_eq!(g::set_version(&hv, 2), Err(STATUS_INVALID_PARAMETER));
    let mut ops = [GnttabCopy::default(), GnttabCopy::default()];
    g::copy(&hv, &mut ops).unwrap();
    assert_eq!(ops[1].status, GrantStatus::EAGAIN);
}

#[test]
fn sched_ops() {
    let hv = FakeHv::answering(|op, a| {
        assert_eq!(op, HypercallCode::SCHED_OP.0);
        match SchedOp(a[0] as u32) {
            SchedOp::SHUTDOWN => {
                let p: SchedShutdown = peek(a[1]);
                if p.reason == ShutdownReason::SUSPEND {
                    1
                } else {
                    0
                }
            }
            SchedOp::SHUTDOWN_CODE => {
                assert_eq!(peek::<SchedShutdown>(a[1]).reason, ShutdownReason::CRASH);
                0
            }
            SchedOp::WATCHDOG => {
                let p: SchedWatchdog = peek(a[1]);
                if p.id == 0 {
                    3
                } else {
                    0
                }
            }
            SchedOp::YIELD => {
                assert_eq!(a[1], 0);
                0
            }
            _ => ENOSYS,
        }
    });
    use crate::sched as s;
    assert_eq!(
        s::shutdown(&hv, ShutdownReason::SUSPEND.0),
        Err(STATUS_CANCELLED)
    );
    s::shutdown(&hv, ShutdownReason::REBOOT.0).unwrap();
    s::shutdown_code(&hv, ShutdownReason::CRASH.0).unwrap();
    s::yield_now(&hv);
    let mut id = 0;
    s::watchdog(&hv, &mut id, 30).unwrap();
    assert_eq!(id, 3);
    s::watchdog(&hv, &mut id, 0).unwrap();
    assert_eq!(id, 3, "an existing id is kept");
}

#[test]
fn version_and_vcpu_ops() {
    let hv = FakeHv::answering(|op, a| match op {
        17 if a[0] == 0 => (4 << 16) | 19,
        17 if a[0] == 1 => {
            poke(
                a[1],
                *b"-rc1-with-a-very-long-tail\0\0\0\0\0\0"[..16]
                    .as_array::<16>()
                    .unwrap(),
            );
            0
        }
        24 => match VcpuOp(a[0] as u32) {
            VcpuOp::SET_PERIODIC_TIMER => {
                assert_eq!(a[1], 2);
                assert_eq!(peek::<VcpuSetPeriodicTimer>(a[2]).period_ns, 1_000_000);
                0
            }
            VcpuOp::STOP_PERIODIC_TIMER => 0,
            VcpuOp::REGISTER_VCPU_INFO => {
                let p: VcpuRegisterVcpuInfo = peek(a[2]);
                assert_eq!((a[1], p.mfn, p.offset), (1, 0x55, 64));
                0
            }
            _ => ENOSYS,
        },
        _ => ENOSYS,
    });
    assert_eq!(crate::xen_version::version(&hv), Ok((4, 19)));
    let extra = crate::xen_version::extra(&hv).unwrap();
    assert_eq!(&extra[..15], b"-rc1-with-a-ver");
    assert_eq!(extra[15], 0, "always NUL-terminated");
    crate::vcpu::set_periodic_timer(&hv, 2, Some(10_000)).unwrap();
    crate::vcpu::set_periodic_timer(&hv, 2, None).unwrap();
    crate::vcpu::register_vcpu_info(&hv, 1, 0x55, 64).unwrap();
}
