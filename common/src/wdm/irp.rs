//! IRP stack-location helpers: the `FORCEINLINE` routines of `wdm.h`
//! (`IoGetCurrentIrpStackLocation`, `IoSkipCurrentIrpStackLocation`,
//! `IoCopyCurrentIrpStackLocationToNext`, `IoSetCompletionRoutine`, `IoMarkIrpPending`, …)
//! written in Rust, since they are not kernel exports.
//!
//! An IRP is followed in memory by `StackCount` stack locations. The I/O manager keeps
//! `CurrentLocation` (1-based, counting down) and `Tail.Overlay.CurrentStackLocation` in step;
//! `IofCallDriver` moves both one location down before calling the next driver.

use core::mem::offset_of;
use core::ptr;

use windows_sys::Wdk::Foundation::{DEVICE_OBJECT, IO_STACK_LOCATION, IRP};
use windows_sys::Wdk::System::SystemServices::{
    SL_INVOKE_ON_CANCEL, SL_INVOKE_ON_ERROR, SL_INVOKE_ON_SUCCESS, SL_PENDING_RETURNED,
};
use windows_sys::Win32::Foundation::NTSTATUS;

/// A completion routine with its real signature (the metadata's `PIO_COMPLETION_ROUTINE`
/// lost its parameters).
pub type CompletionRoutine = unsafe extern "system" fn(
    device: *const DEVICE_OBJECT,
    irp: *mut IRP,
    context: *mut core::ffi::c_void,
) -> NTSTATUS;

/// `STATUS_CONTINUE_COMPLETION`: a completion routine lets completion carry on.
pub const STATUS_CONTINUE_COMPLETION: NTSTATUS = 0;
/// `STATUS_MORE_PROCESSING_REQUIRED`: a completion routine keeps ownership of the IRP.
pub const STATUS_MORE_PROCESSING_REQUIRED: NTSTATUS = 0xC000_0016_u32 as i32;
/// `IO_NO_INCREMENT`: priority boost for [`complete_request`].
pub const IO_NO_INCREMENT: i8 = 0;

/// When a completion routine is called (`IoSetCompletionRoutine`'s three flags).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvokeOn {
    /// Call it when the IRP succeeds.
    pub success: bool,
    /// Call it when the IRP fails.
    pub error: bool,
    /// Call it when the IRP is cancelled.
    pub cancel: bool,
}

impl InvokeOn {
    /// Call the routine in every case (the usual choice for PnP IRPs).
    pub const ALWAYS: InvokeOn = InvokeOn {
        success: true,
        error: true,
        cancel: true,
    };

    /// The `Control` bits (`SL_INVOKE_ON_*`) for these flags.
    pub const fn control_bits(self) -> u8 {
        let mut bits = 0;
        if self.success {
            bits |= SL_INVOKE_ON_SUCCESS;
        }
        if self.error {
            bits |= SL_INVOKE_ON_ERROR;
        }
        if self.cancel {
            bits |= SL_INVOKE_ON_CANCEL;
        }
        bits as u8
    }
}

/// `IoGetCurrentIrpStackLocation`.
///
/// # Safety
/// `irp` must point to a valid IRP owned by the caller.
pub unsafe fn current_stack_location(irp: *mut IRP) -> *mut IO_STACK_LOCATION {
    // SAFETY: the caller guarantees `irp` is valid; reading the union field the I/O manager
    // maintains for the current location is how wdm.h's inline does it.
    unsafe {
        (*irp)
            .Tail
            .Overlay
            .Anonymous2
            .Anonymous
            .CurrentStackLocation
    }
}

/// `IoGetNextIrpStackLocation`: the location the next-lower driver will see.
///
/// # Safety
/// `irp` must point to a valid IRP owned by the caller that has a location below the
/// current one (`CurrentLocation > 1`).
pub unsafe fn next_stack_location(irp: *mut IRP) -> *mut IO_STACK_LOCATION {
    // SAFETY: the caller guarantees a lower location exists, so the pointer stays inside
    // the IRP's stack-location array.
    unsafe { current_stack_location(irp).sub(1) }
}

/// `IoSkipCurrentIrpStackLocation`: pass the IRP down with the current location unchanged
/// (the lower driver sees this driver's parameters; no completion routine is involved).
///
/// # Safety
/// `irp` must point to a valid IRP owned by the caller, about to be passed to
/// [`call_driver`].
pub unsafe fn skip_current_stack_location(irp: *mut IRP) {
    // SAFETY: the caller owns the IRP; `IofCallDriver` moves the location back down, so the
    // pointer is one past the current location only transiently, exactly as in wdm.h.
    unsafe {
        (*irp).CurrentLocation += 1;
        let overlay = &mut (*irp).Tail.Overlay.Anonymous2.Anonymous;
        overlay.CurrentStackLocation = overlay.CurrentStackLocation.add(1);
    }
}

/// `IoCopyCurrentIrpStackLocationToNext`: copy everything up to (not including) the
/// completion routine into the next location, and clear its `Control` flags.
///
/// # Safety
/// As for [`next_stack_location`].
pub unsafe fn copy_current_stack_location_to_next(irp: *mut IRP) {
    // SAFETY: both locations are distinct elements of the IRP's stack-location array (the
    // caller guarantees the lower one exists); the copied prefix lies inside each element.
    unsafe {
        let current = current_stack_location(irp);
        let next = next_stack_location(irp);
        ptr::copy_nonoverlapping(
            current.cast::<u8>(),
            next.cast::<u8>(),
            offset_of!(IO_STACK_LOCATION, CompletionRoutine),
        );
        (*next).Control = 0;
    }
}

/// `IoSetCompletionRoutine`: register `routine` in the next location, called with `context`
/// when the lower driver completes the IRP under the conditions in `when`.
///
/// # Safety
/// As for [`next_stack_location`]; `context` must stay valid until the routine runs.
pub unsafe fn set_completion_routine(
    irp: *mut IRP,
    routine: CompletionRoutine,
    context: *mut core::ffi::c_void,
    when: InvokeOn,
) {
    // SAFETY: the lower location exists (caller contract). The kernel calls the stored
    // pointer with the three-argument completion signature, which is `routine`'s real type;
    // only the metadata's type for the field lacks the parameters.
    unsafe {
        let next = next_stack_location(irp);
        (*next).CompletionRoutine = Some(core::mem::transmute::<
            CompletionRoutine,
            unsafe extern "system" fn() -> NTSTATUS,
        >(routine));
        (*next).Context = context;
        (*next).Control = when.control_bits();
    }
}

/// `IoMarkIrpPending`: the dispatch routine will return `STATUS_PENDING`.
///
/// # Safety
/// `irp` must point to a valid IRP owned by the caller.
pub unsafe fn mark_pending(irp: *mut IRP) {
    // SAFETY: the caller owns the IRP and its current location.
    unsafe { (*current_stack_location(irp)).Control |= SL_PENDING_RETURNED as u8 }
}

/// True when a lower driver returned `STATUS_PENDING` for this IRP (`Irp->PendingReturned`),
/// so a completion routine must propagate the pending mark.
///
/// # Safety
/// `irp` must point to a valid IRP.
pub unsafe fn pending_returned(irp: *mut IRP) -> bool {
    // SAFETY: the caller guarantees `irp` is valid.
    unsafe { (*irp).PendingReturned }
}

/// Set the IRP's final status and information (`Irp->IoStatus`).
///
/// # Safety
/// `irp` must point to a valid IRP owned by the caller.
pub unsafe fn set_status(irp: *mut IRP, status: NTSTATUS, information: usize) {
    // SAFETY: the caller owns the IRP.
    unsafe {
        (*irp).IoStatus.Anonymous.Status = status;
        (*irp).IoStatus.Information = information;
    }
}

/// The IRP's current status (`Irp->IoStatus.Status`).
///
/// # Safety
/// `irp` must point to a valid IRP.
pub unsafe fn status(irp: *mut IRP) -> NTSTATUS {
    // SAFETY: the caller guarantees `irp` is valid; every IoStatus variant is an NTSTATUS
    // or a pointer of the same size, and IRPs carry a status here.
    unsafe { (*irp).IoStatus.Anonymous.Status }
}

/// `IoCallDriver`: pass the IRP to `device` (the I/O manager moves to the next location).
///
/// # Safety
/// `irp` must be owned by the caller and set up for the lower driver (skipped or copied);
/// after the call the caller no longer owns it unless a completion routine gives it back.
#[cfg(windows)]
pub unsafe fn call_driver(device: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    // SAFETY: forwarded caller contract; IofCallDriver is the exported form of IoCallDriver.
    unsafe { windows_sys::Wdk::System::SystemServices::IofCallDriver(device, irp) }
}

/// `IoCompleteRequest`: complete the IRP with the status already set by [`set_status`].
///
/// # Safety
/// `irp` must be owned by the caller; it is gone after the call.
#[cfg(windows)]
pub unsafe fn complete_request(irp: *mut IRP, boost: i8) {
    // SAFETY: forwarded caller contract; IofCompleteRequest is the export behind the macro.
    unsafe { windows_sys::Wdk::System::SystemServices::IofCompleteRequest(irp, boost) }
}

/// Completion routine of [`forward_and_wait`]: wake the waiter, keep the IRP.
#[cfg(windows)]
unsafe extern "system" fn signal(
    _device: *const DEVICE_OBJECT,
    _irp: *mut IRP,
    context: *mut core::ffi::c_void,
) -> NTSTATUS {
    // SAFETY: `context` is the Event `forward_and_wait` waits on before it goes away.
    unsafe { (*context.cast::<super::kernel::Event>()).set() };
    STATUS_MORE_PROCESSING_REQUIRED
}

/// Pass `irp` (owned by the caller's dispatch routine) to `lower` and wait until it comes
/// back; the caller owns it again and completes it. PASSIVE_LEVEL only.
///
/// # Safety
/// `irp` is owned by the caller and has a location below the current one; `lower` is the
/// device below the caller's.
#[cfg(windows)]
pub unsafe fn forward_and_wait(lower: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    let event = super::kernel::Event::notification();
    // SAFETY: the event outlives the wait; the IRP comes back through `signal`
    // (MORE_PROCESSING_REQUIRED) before this frame returns.
    unsafe {
        copy_current_stack_location_to_next(irp);
        set_completion_routine(
            irp,
            signal,
            (&*event as *const super::kernel::Event).cast_mut().cast(),
            InvokeOn::ALWAYS,
        );
        let mut result = call_driver(lower, irp);
        if result == windows_sys::Win32::Foundation::STATUS_PENDING {
            event.wait(None);
            result = status(irp);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::size_of;

    /// An IRP with `count` stack locations laid out as `IoAllocateIrp` does, positioned as a
    /// driver sees it in its dispatch routine (current = top location).
    struct TestIrp {
        buffer: Vec<u64>,
        count: usize,
    }

    impl TestIrp {
        fn new(count: usize) -> Self {
            let bytes = size_of::<IRP>() + count * size_of::<IO_STACK_LOCATION>();
            let mut irp = TestIrp {
                buffer: vec![0u64; bytes.div_ceil(8)],
                count,
            };
            let first = irp.location(0);
            let raw = irp.raw();
            // SAFETY: raw points to our zeroed buffer large enough for the IRP and stack.
            unsafe {
                (*raw).StackCount = count as i8;
                // Dispatch routine of the top driver: location count, 1-based.
                (*raw).CurrentLocation = count as i8;
                (*raw)
                    .Tail
                    .Overlay
                    .Anonymous2
                    .Anonymous
                    .CurrentStackLocation = first.add(count - 1);
            }
            irp
        }
        fn raw(&mut self) -> *mut IRP {
            self.buffer.as_mut_ptr().cast()
        }
        /// Location `i` of the array (0 = the lowest driver's).
        fn location(&mut self, i: usize) -> *mut IO_STACK_LOCATION {
            assert!(i < self.count);
            // SAFETY: the array follows the IRP inside the buffer.
            unsafe { self.raw().add(1).cast::<IO_STACK_LOCATION>().add(i) }
        }
        /// What IofCallDriver does before calling the next driver.
        fn advance(&mut self) {
            let raw = self.raw();
            // SAFETY: test IRP with a lower location.
            unsafe {
                (*raw).CurrentLocation -= 1;
                let o = &mut (*raw).Tail.Overlay.Anonymous2.Anonymous;
                o.CurrentStackLocation = o.CurrentStackLocation.sub(1);
            }
        }
    }

    unsafe extern "system" fn routine(
        _device: *const DEVICE_OBJECT,
        _irp: *mut IRP,
        context: *mut core::ffi::c_void,
    ) -> NTSTATUS {
        // SAFETY: tests pass a pointer to a u32.
        unsafe { *context.cast::<u32>() += 1 };
        STATUS_MORE_PROCESSING_REQUIRED
    }

    #[test]
    fn layouts_match_x64_windows() {
        assert_eq!(size_of::<IRP>(), 0xD0);
        assert_eq!(size_of::<IO_STACK_LOCATION>(), 0x48);
        assert_eq!(offset_of!(IO_STACK_LOCATION, CompletionRoutine), 0x38);
    }

    #[test]
    fn current_and_next() {
        let mut irp = TestIrp::new(3);
        let (top, middle) = (irp.location(2), irp.location(1));
        // SAFETY: valid test IRP.
        unsafe {
            assert_eq!(current_stack_location(irp.raw()), top);
            assert_eq!(next_stack_location(irp.raw()), middle);
        }
    }

    #[test]
    fn skip_makes_lower_driver_see_same_location() {
        let mut irp = TestIrp::new(3);
        let top = irp.location(2);
        // SAFETY: valid test IRP.
        unsafe {
            (*top).MajorFunction = 27;
            (*top).MinorFunction = 7;
            skip_current_stack_location(irp.raw());
            assert_eq!((*irp.raw()).CurrentLocation, 4);
            irp.advance();
            assert_eq!(current_stack_location(irp.raw()), top);
            assert_eq!((*irp.raw()).CurrentLocation, 3);
        }
    }

    #[test]
    fn copy_to_next_copies_parameters_not_completion() {
        let mut irp = TestIrp::new(2);
        let (top, lower) = (irp.location(1), irp.location(0));
        let mut other = 0u32;
        // SAFETY: valid test IRP; the lower location holds a stale completion routine.
        unsafe {
            (*top).MajorFunction = 27;
            (*top).MinorFunction = 0x13;
            (*top).Flags = 5;
            (*top).Control = 0xE1;
            (*top).Parameters.Others.Argument1 = 0x1234 as *mut _;
            (*top).DeviceObject = 0x55 as *mut _;
            (*lower).Context = (&mut other as *mut u32).cast();
            copy_current_stack_location_to_next(irp.raw());
            assert_eq!((*lower).MajorFunction, 27);
            assert_eq!((*lower).MinorFunction, 0x13);
            assert_eq!((*lower).Flags, 5);
            assert_eq!((*lower).Control, 0);
            assert_eq!((*lower).Parameters.Others.Argument1 as usize, 0x1234);
            assert_eq!((*lower).DeviceObject as usize, 0x55);
            // Completion routine and context are not part of the copy.
            assert_eq!((*lower).Context, (&mut other as *mut u32).cast());
        }
    }

    #[test]
    fn completion_routine_is_stored_in_next_location_and_callable() {
        let mut irp = TestIrp::new(2);
        let lower = irp.location(0);
        let mut calls = 0u32;
        // SAFETY: valid test IRP; the routine is called with its real signature.
        unsafe {
            set_completion_routine(
                irp.raw(),
                routine,
                (&mut calls as *mut u32).cast(),
                InvokeOn {
                    success: true,
                    error: false,
                    cancel: true,
                },
            );
            assert_eq!(
                (*lower).Control,
                (SL_INVOKE_ON_SUCCESS | SL_INVOKE_ON_CANCEL) as u8
            );
            let stored = (*lower).CompletionRoutine.expect("routine stored");
            let stored: CompletionRoutine = core::mem::transmute(stored);
            let status = stored(ptr::null(), irp.raw(), (*lower).Context);
            assert_eq!(status, STATUS_MORE_PROCESSING_REQUIRED);
        }
        assert_eq!(calls, 1);
        assert_eq!(InvokeOn::ALWAYS.control_bits(), 0xE0);
    }

    #[test]
    fn mark_pending_and_status() {
        let mut irp = TestIrp::new(1);
        let top = irp.location(0);
        // SAFETY: valid test IRP.
        unsafe {
            (*top).Control = SL_INVOKE_ON_SUCCESS as u8;
            mark_pending(irp.raw());
            assert_eq!(
                (*top).Control,
                (SL_INVOKE_ON_SUCCESS | SL_PENDING_RETURNED) as u8
            );
            set_status(irp.raw(), STATUS_MORE_PROCESSING_REQUIRED, 9);
            assert_eq!(status(irp.raw()), STATUS_MORE_PROCESSING_REQUIRED);
            assert_eq!((*irp.raw()).IoStatus.Information, 9);
            assert!(!pending_returned(irp.raw()));
        }
    }
}
