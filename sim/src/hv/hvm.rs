//! `hvm_op`: HVM parameters (with the guest's read/write permissions), the per-vCPU upcall
//! vector and `pagetable_dying`.

use super::abi::*;
use super::{copy_from_guest, copy_to_guest, Errno, State};

/// Parameters a guest may write about itself.
fn guest_may_set(index: HvmParam) -> bool {
    matches!(
        index,
        HvmParam::CALLBACK_IRQ
            | HvmParam::VM86_TSS
            | HvmParam::VM86_TSS_SIZED
            | HvmParam::ACPI_IOPORTS_LOCATION
            | HvmParam::VM_GENERATION_ID_ADDR
            | HvmParam::STORE_EVTCHN
            | HvmParam::CONSOLE_EVTCHN
            | HvmParam::X87_FIP_WIDTH
    )
}

/// Parameters a guest may read about itself.
fn guest_may_get(index: HvmParam) -> bool {
    guest_may_set(index)
        || matches!(
            index,
            HvmParam::STORE_PFN | HvmParam::CONSOLE_PFN | HvmParam::ALTP2M
        )
}

impl State {
    pub(super) fn hvm_op(&mut self, args: [usize; 5]) -> Result<isize, Errno> {
        let cmd = HvmOp(args[0] as u32);
        let arg = args[1];
        match cmd {
            HvmOp::SET_PARAM | HvmOp::GET_PARAM => {
                // SAFETY: the caller passes its xen_hvm_param.
                let mut a: XenHvmParam = unsafe { copy_from_guest(arg)? };
                self.check_domain(a.domid)?;
                if a.index.0 >= HVM_NR_PARAMS {
                    return Err(Errno::EINVAL);
                }
                if cmd == HvmOp::SET_PARAM {
                    if a.index == HvmParam::ALTP2M {
                        return Err(Errno::EEXIST); // read-only
                    }
                    if !guest_may_set(a.index) {
                        return Err(Errno::EPERM);
                    }
                    self.params[a.index.0 as usize] = a.value;
                } else {
                    if !guest_may_get(a.index) {
                        return Err(Errno::EPERM);
                    }
                    a.value = self.params[a.index.0 as usize];
                    // SAFETY: as above.
                    unsafe { copy_to_guest(arg, &a)? };
                }
                Ok(0)
            }
            HvmOp::SET_EVTCHN_UPCALL_VECTOR => {
                if !self.cfg.upcall_vector_supported {
                    return Err(Errno::ENOSYS);
                }
                // SAFETY: the caller passes its xen_hvm_evtchn_upcall_vector.
                let a: XenHvmEvtchnUpcallVector = unsafe { copy_from_guest(arg)? };
                if a.vector < 0x10 {
                    return Err(Errno::EINVAL);
                }
                let v = self.vcpus.get_mut(a.vcpu as usize).ok_or(Errno::ENOENT)?;
                v.upcall_vector = a.vector;
                Ok(0)
            }
            HvmOp::PAGETABLE_DYING => {
                // SAFETY: the caller passes its xen_hvm_pagetable_dying.
                let a: XenHvmPagetableDying = unsafe { copy_from_guest(arg)? };
                if !self.is_self(a.domid) {
                    return Err(if self.evtchn.domains.contains_key(&a.domid.0) {
                        Errno::EOPNOTSUPP
                    } else {
                        Errno::ESRCH
                    });
                }
                // Only shadow paging has anything to do; with HAP Xen says EINVAL.
                if !self.cfg.shadow_paging {
                    return Err(Errno::EINVAL);
                }
                self.pagetable_dying.push(a.gpa);
                Ok(0)
            }
            _ => Err(Errno::ENOSYS),
        }
    }
}
