//! `vcpu_op`: vcpu_info registration (with Xen's copy and "everything pending" kick) and the
//! periodic timer.

use std::sync::atomic::Ordering;

use super::abi::*;
use super::memory::PAGE_SIZE;
use super::{copy_from_guest, Errno, State};

impl State {
    pub(super) fn vcpu_op(&mut self, args: [usize; 5], now: u64) -> Result<isize, Errno> {
        let cmd = VcpuOp(args[0] as u32);
        let vcpu = args[1] as u32;
        if vcpu as usize >= self.vcpus.len() {
            return Err(Errno::ENOENT);
        }
        match cmd {
            VcpuOp::IS_UP => Ok(1),
            VcpuOp::REGISTER_VCPU_INFO => {
                // SAFETY: the caller passes its vcpu_register_vcpu_info.
                let a: VcpuRegisterVcpuInfo = unsafe { copy_from_guest(args[2])? };
                // Xen 4.17 map_vcpu_info: the area must fit the page and be aligned (ENXIO),
                // be registered once (EINVAL), by the vCPU itself (EINVAL), on RAM (EINVAL).
                let offset = a.offset as usize;
                if offset > PAGE_SIZE - VCPU_INFO_SIZE || !offset.is_multiple_of(8) {
                    return Err(Errno::ENXIO);
                }
                if self.vcpus[vcpu as usize].vcpu_info.is_some() {
                    return Err(Errno::EINVAL);
                }
                if vcpu != crate::guest::current_processor() {
                    return Err(Errno::EINVAL);
                }
                let mfn = self.ram_mfn(a.mfn).ok_or(Errno::EINVAL)?;
                // Copy the current contents over, then mark everything pending so nothing
                // raised in the meantime is lost (the guest sees one spurious upcall).
                let mut cur = [0u8; VCPU_INFO_SIZE];
                if let Some((omfn, ooff)) = self.vcpu_info_loc(vcpu) {
                    self.mem.read(omfn, ooff, &mut cur);
                }
                self.mem.write(mfn, offset, &cur);
                self.vcpus[vcpu as usize].vcpu_info = Some((mfn, offset));
                self.mem
                    .atomic_u64(mfn, offset + VCPU_INFO_PENDING_SEL)
                    .store(!0, Ordering::SeqCst);
                self.mark_events_pending(vcpu);
                Ok(0)
            }
            VcpuOp::SET_PERIODIC_TIMER => {
                // SAFETY: the caller passes its vcpu_set_periodic_timer.
                let a: VcpuSetPeriodicTimer = unsafe { copy_from_guest(args[2])? };
                if a.period_ns < 1_000_000 {
                    return Err(Errno::EINVAL);
                }
                self.vcpus[vcpu as usize].periodic = Some((a.period_ns, now + a.period_ns));
                Ok(0)
            }
            VcpuOp::STOP_PERIODIC_TIMER => {
                self.vcpus[vcpu as usize].periodic = None;
                Ok(0)
            }
            _ => Err(Errno::ENOSYS),
        }
    }
}
