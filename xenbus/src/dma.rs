//! The DMA adapter a child gets through its bus interface (spec §5.18, `dma.c`): with
//! `InterceptDmaAdapter` ≠ 0 the lower (PCI) adapter is wrapped in a private
//! `DMA_OPERATIONS` table of the lower table's version that forwards every routine to the
//! lower adapter, hands the PCI device object down where a routine takes a device
//! object, and gives the caller's own device object (and its `CurrentIrp`) back in the
//! execution and list-control routines.
//!
//! Two shapes (`DmaAdapterType`): SUBSTITUTE hands out a new `DMA_ADAPTER` header whose
//! table is the private one; PASSTHRU hands out the lower adapter itself with its
//! `DmaOperations` pointer patched to the private table (restored at `PutDmaAdapter`).
//! Either way the adapter's table pointer leads back to the wrapper's state (the table is
//! a field of it, checked by a magic), so no global lookup is needed.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::ffi::c_void;
use core::mem::offset_of;
use core::sync::atomic::{AtomicUsize, Ordering};

use common::sync::SpinLock;
use xen_include::dma::{
    dma_operations_version, Boolean, DmaAdapter, DmaCompletionRoutine, DmaOperations,
    DriverControl, DriverListControl, IoAllocationAction, NtStatus, PhysicalAddress,
    DEALLOCATE_OBJECT, DEVICE_OBJECT_CURRENT_IRP, DMA_ADAPTER_SIZE, DMA_OPERATIONS_SIZE3,
};
use xen_include::status::{STATUS_INVALID_PARAMETER, STATUS_NO_MEMORY};

use crate::interface::query::DmaAdapterType;

/// `"XDMA"`: marks a live wrapper (checked before any routine trusts its table pointer).
const MAGIC: u64 = 0x414D_4458_5342_5558;

/// Why an adapter was handed out unwrapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The lower adapter has no `DmaOperations`.
    NoOperations,
    /// The lower table's `Size` is no known version's.
    UnknownSize(u32),
    /// The wrapper could not be allocated.
    NoMemory,
}

/// The private table for `version` (1–3) over a lower table of `lower_size` bytes: every
/// routine of the version is the wrapper's, the rest NULL; `Size` is the lower size capped
/// at version 3's (routines added after version 3 are not offered).
pub fn private_operations(version: u32, lower_size: u32) -> DmaOperations {
    let mut ops = DmaOperations {
        size: lower_size.min(DMA_OPERATIONS_SIZE3),
        put_dma_adapter: Some(put_dma_adapter),
        allocate_common_buffer: Some(allocate_common_buffer),
        free_common_buffer: Some(free_common_buffer),
        allocate_adapter_channel: Some(allocate_adapter_channel),
        flush_adapter_buffers: Some(flush_adapter_buffers),
        free_adapter_channel: Some(free_adapter_channel),
        free_map_registers: Some(free_map_registers),
        map_transfer: Some(map_transfer),
        get_dma_alignment: Some(get_dma_alignment),
        read_dma_counter: Some(read_dma_counter),
        get_scatter_gather_list: Some(get_scatter_gather_list),
        put_scatter_gather_list: Some(put_scatter_gather_list),
        ..DmaOperations::EMPTY
    };
    if version >= 2 {
        ops.calculate_scatter_gather_list = Some(calculate_scatter_gather_list);
        ops.build_scatter_gather_list = Some(build_scatter_gather_list);
        ops.build_mdl_from_scatter_gather_list = Some(build_mdl_from_scatter_gather_list);
    }
    if version >= 3 {
        ops.get_dma_adapter_info = Some(get_dma_adapter_info);
        ops.get_dma_transfer_info = Some(get_dma_transfer_info);
        ops.initialize_dma_transfer_context = Some(initialize_dma_transfer_context);
        ops.allocate_common_buffer_ex = Some(allocate_common_buffer_ex);
        ops.allocate_adapter_channel_ex = Some(allocate_adapter_channel_ex);
        ops.configure_adapter_channel = Some(configure_adapter_channel);
        ops.cancel_adapter_channel = Some(cancel_adapter_channel);
        ops.map_transfer_ex = Some(map_transfer_ex);
        ops.get_scatter_gather_list_ex = Some(get_scatter_gather_list_ex);
        ops.build_scatter_gather_list_ex = Some(build_scatter_gather_list_ex);
        ops.flush_adapter_buffers_ex = Some(flush_adapter_buffers_ex);
        ops.free_adapter_object = Some(free_adapter_object);
        ops.cancel_mapped_transfer = Some(cancel_mapped_transfer);
    }
    ops
}

/// A wrapper's state (`XENBUS_DMA_CONTEXT`). `#[repr(C)]` so the private table's address
/// leads back here.
#[repr(C)]
struct Wrapper {
    /// The SUBSTITUTE adapter header (unused for PASSTHRU).
    substitute: DmaAdapter,
    /// The private table every handed-out adapter points at.
    operations: DmaOperations,
    magic: u64,
    kind: DmaAdapterType,
    lower_adapter: *mut DmaAdapter,
    /// The lower table as it was (for PASSTHRU's restore).
    lower_table: *mut DmaOperations,
    /// A copy of the lower table's first `Size` bytes (later slots NULL).
    lower: DmaOperations,
    /// The PCI device object under the FDO.
    pci_device: *mut c_void,
    /// Execution/list-control records handed to the lower adapter and not yet run.
    pending: SpinLock<Vec<usize>>,
}

/// The routine a [`Control`] calls back.
#[derive(Clone, Copy)]
enum Callback {
    Channel(DriverControl),
    List(DriverListControl),
}

/// One `AllocateAdapterChannel(Ex)` / scatter-gather call in flight
/// (`XENBUS_DMA_CONTROL` / `XENBUS_DMA_LIST_CONTROL`).
struct Control {
    wrapper: *const Wrapper,
    device: *mut c_void,
    transfer_context: *mut c_void,
    callback: Callback,
    argument: *mut c_void,
}

static LIVE: AtomicUsize = AtomicUsize::new(0);

/// Wrappers alive (created and not yet freed by `PutDmaAdapter`).
pub fn live_wrappers() -> usize {
    LIVE.load(Ordering::Acquire)
}

/// Wrap `lower` as `kind` says (`DmaGetAdapter` after the lower bus interface answered).
/// `NoIntercept` and a NULL `lower` give `lower` back; a refused wrap gives `lower` back
/// with the reason.
///
/// # Safety
/// `lower` is NULL or a live adapter from the lower bus interface whose `DmaOperations`
/// holds at least `Size` bytes; nobody else patches its table while wrapped.
pub unsafe fn wrap(
    kind: DmaAdapterType,
    lower: *mut DmaAdapter,
    pci_device: *mut c_void,
) -> (*mut DmaAdapter, Option<Refusal>) {
    if kind == DmaAdapterType::NoIntercept || lower.is_null() {
        return (lower, None);
    }
    // SAFETY: caller contract: a live adapter.
    let (version, size, lower_table) = unsafe {
        let table = (*lower).dma_operations;
        if table.is_null() {
            return (lower, Some(Refusal::NoOperations));
        }
        let size = (*table).size;
        (dma_operations_version(size), size, table)
    };
    let Some(version) = version else {
        return (lower, Some(Refusal::UnknownSize(size)));
    };
    let mut copy = DmaOperations::EMPTY;
    // SAFETY: the lower table holds `size` ≥ the copied bytes (caller contract); `copy`
    // is a `DmaOperations`, every bit pattern of whose slots copied from a valid table is
    // a valid `Option<fn>`.
    unsafe {
        core::ptr::copy_nonoverlapping(
            lower_table.cast::<u8>(),
            (&mut copy as *mut DmaOperations).cast::<u8>(),
            size.min(DMA_OPERATIONS_SIZE3) as usize,
        );
    }
    let mut pending = Vec::new();
    if pending.try_reserve(4).is_err() {
        return (lower, Some(Refusal::NoMemory));
    }
    let Some(wrapper) = try_box(Wrapper {
        substitute: DmaAdapter {
            // SAFETY: caller contract: a live adapter.
            version: unsafe { (*lower).version },
            size: DMA_ADAPTER_SIZE,
            dma_operations: core::ptr::null_mut(),
        },
        operations: private_operations(version, size),
        magic: MAGIC,
        kind,
        lower_adapter: lower,
        lower_table,
        lower: copy,
        pci_device,
        pending: SpinLock::new(pending),
    }) else {
        return (lower, Some(Refusal::NoMemory));
    };
    LIVE.fetch_add(1, Ordering::AcqRel);
    // SAFETY: `wrapper` was just allocated and is ours until `PutDmaAdapter`; the lower
    // adapter is live (caller contract).
    unsafe {
        let table = core::ptr::addr_of_mut!((*wrapper).operations);
        if kind == DmaAdapterType::Substitute {
            (*wrapper).substitute.dma_operations = table;
            (core::ptr::addr_of_mut!((*wrapper).substitute), None)
        } else {
            (*lower).dma_operations = table;
            (lower, None)
        }
    }
}

/// Allocate `value` on the heap, None (not an abort) when memory is short.
fn try_box<T>(value: T) -> Option<*mut T> {
    let layout = core::alloc::Layout::new::<T>();
    // SAFETY: `T` is not zero-sized here (Wrapper and Control are not).
    let ptr = unsafe { alloc::alloc::alloc(layout) }.cast::<T>();
    if ptr.is_null() {
        return None;
    }
    // SAFETY: freshly allocated with `T`'s layout; `Box::from_raw` frees it later.
    unsafe { ptr.write(value) };
    Some(ptr)
}

/// The wrapper behind a handed-out adapter (its table is a wrapper's `operations`).
///
/// # Safety
/// `adapter` is NULL or an adapter whose table is valid to read (a C child calls the
/// routines of the table it got from us with the adapter it got from us).
unsafe fn wrapper<'a>(adapter: *mut DmaAdapter) -> Option<&'a Wrapper> {
    if adapter.is_null() {
        return None;
    }
    // SAFETY: caller contract.
    let table = unsafe { (*adapter).dma_operations };
    if table.is_null() {
        return None;
    }
    let base = table
        .cast::<u8>()
        .wrapping_sub(offset_of!(Wrapper, operations))
        .cast::<Wrapper>();
    // SAFETY: a table of ours is the `operations` field of a live `Wrapper`; the magic
    // confirms it before anything else is read.
    unsafe {
        if core::ptr::addr_of!((*base).magic).read() != MAGIC {
            return None;
        }
        base.as_ref()
    }
}

/// `DeviceObject->CurrentIrp` of the caller's device object (NULL for a NULL device).
///
/// # Safety
/// `device` is NULL or a live `DEVICE_OBJECT`.
unsafe fn current_irp(device: *mut c_void) -> *mut c_void {
    if device.is_null() {
        return core::ptr::null_mut();
    }
    // SAFETY: caller contract; `CurrentIrp` is a pointer at this offset.
    unsafe {
        device
            .cast::<u8>()
            .add(DEVICE_OBJECT_CURRENT_IRP)
            .cast::<*mut c_void>()
            .read()
    }
}

impl Wrapper {
    /// Record a call in flight; None when memory is short.
    fn add_control(
        &self,
        device: *mut c_void,
        transfer_context: *mut c_void,
        callback: Callback,
        argument: *mut c_void,
    ) -> Option<*mut Control> {
        let mut pending = self.pending.lock();
        pending.try_reserve(1).ok()?;
        let control = try_box(Control {
            wrapper: self,
            device,
            transfer_context,
            callback,
            argument,
        })?;
        pending.push(control as usize);
        Some(control)
    }

    /// Run `call` with a new record of the caller's routine (its argument for the lower
    /// routine); the record is dropped again when the lower routine fails.
    fn intercept(
        &self,
        device: *mut c_void,
        transfer_context: *mut c_void,
        callback: Callback,
        argument: *mut c_void,
        call: impl FnOnce(*mut c_void) -> NtStatus,
    ) -> NtStatus {
        let Some(control) = self.add_control(device, transfer_context, callback, argument) else {
            return STATUS_NO_MEMORY;
        };
        let status = call(control.cast());
        if status < 0 {
            self.remove_control(control);
        }
        status
    }

    /// Forget and free `control` if it is still pending (false: not ours).
    fn remove_control(&self, control: *mut Control) -> bool {
        let mut pending = self.pending.lock();
        match pending.iter().position(|&c| c == control as usize) {
            Some(i) => {
                pending.swap_remove(i);
                // SAFETY: a pending record came from `try_box` and leaves the list once.
                drop(unsafe { Box::from_raw(control) });
                true
            }
            None => false,
        }
    }

    /// Free every pending record whose transfer context is `transfer_context`.
    fn cancel_controls(&self, transfer_context: *mut c_void) {
        let mut pending = self.pending.lock();
        pending.retain(|&c| {
            // SAFETY: a pending record is live until it leaves the list.
            let matches = unsafe { (*(c as *const Control)).transfer_context == transfer_context };
            if matches {
                // SAFETY: leaves the list here, freed once.
                drop(unsafe { Box::from_raw(c as *mut Control) });
            }
            !matches
        });
    }
}

/// Take the record of a callback out of its wrapper's list; None if it is not pending.
///
/// # Safety
/// `argument` is the record pointer this module handed to the lower adapter.
unsafe fn take_control(argument: *mut c_void) -> Option<Control> {
    let control = argument.cast::<Control>();
    if control.is_null() {
        return None;
    }
    // SAFETY: caller contract: our record, its wrapper alive while it is pending.
    let (copy, wrapper) = unsafe {
        let c = &*control;
        (
            Control {
                wrapper: c.wrapper,
                device: c.device,
                transfer_context: c.transfer_context,
                callback: c.callback,
                argument: c.argument,
            },
            &*c.wrapper,
        )
    };
    wrapper.remove_control(control).then_some(copy)
}

/// The execution routine handed to the lower adapter (`DmaAdapterControl`).
unsafe extern "C" fn adapter_control(
    _device: *mut c_void,
    _irp: *mut c_void,
    map_register_base: *mut c_void,
    argument: *mut c_void,
) -> IoAllocationAction {
    // SAFETY: the lower adapter calls back with the record we gave it.
    match unsafe { take_control(argument) } {
        Some(Control {
            device,
            callback: Callback::Channel(Some(f)),
            argument,
            ..
        }) => {
            // SAFETY: the child's routine with its own device object, IRP and argument.
            unsafe { f(device, current_irp(device), map_register_base, argument) }
        }
        _ => DEALLOCATE_OBJECT,
    }
}

/// The list-control routine handed to the lower adapter (`DmaAdapterListControl`).
unsafe extern "C" fn adapter_list_control(
    _device: *mut c_void,
    _irp: *mut c_void,
    scatter_gather: *mut c_void,
    argument: *mut c_void,
) {
    // SAFETY: the lower adapter calls back with the record we gave it.
    if let Some(Control {
        device,
        callback: Callback::List(Some(f)),
        argument,
        ..
    }) = unsafe { take_control(argument) }
    {
        // SAFETY: the child's routine with its own device object, IRP and context.
        unsafe { f(device, current_irp(device), scatter_gather, argument) }
    }
}

type A = *mut DmaAdapter;
type P = *mut c_void;

/// A routine forwarded unchanged (lower adapter for ours).
macro_rules! forward {
    ($name:ident, $slot:ident, ($($arg:ident : $ty:ty),*) -> $ret:ty, $fail:expr) => {
        unsafe extern "C" fn $name(adapter: A $(, $arg: $ty)*) -> $ret {
            // SAFETY: `adapter` is one we handed out; the lower routine gets the caller's
            // arguments unchanged with the lower adapter.
            unsafe {
                match wrapper(adapter).and_then(|w| w.lower.$slot.map(|f| (w, f))) {
                    Some((w, f)) => f(w.lower_adapter $(, $arg)*),
                    None => $fail,
                }
            }
        }
    };
}

forward!(allocate_common_buffer, allocate_common_buffer,
    (length: u32, logical: *mut PhysicalAddress, cache: Boolean) -> P, core::ptr::null_mut());
forward!(free_common_buffer, free_common_buffer,
    (length: u32, logical: PhysicalAddress, va: P, cache: Boolean) -> (), ());
forward!(flush_adapter_buffers, flush_adapter_buffers,
    (mdl: P, base: P, va: P, length: u32, write: Boolean) -> Boolean, 0);
forward!(free_adapter_channel, free_adapter_channel, () -> (), ());
forward!(free_map_registers, free_map_registers, (base: P, count: u32) -> (), ());
forward!(map_transfer, map_transfer,
    (mdl: P, base: P, va: P, length: *mut u32, write: Boolean) -> PhysicalAddress, 0);
forward!(get_dma_alignment, get_dma_alignment, () -> u32, 1);
forward!(read_dma_counter, read_dma_counter, () -> u32, 0);
forward!(put_scatter_gather_list, put_scatter_gather_list,
    (list: P, write: Boolean) -> (), ());
forward!(calculate_scatter_gather_list, calculate_scatter_gather_list,
    (mdl: P, va: P, length: u32, list_size: *mut u32, registers: *mut u32) -> NtStatus,
    STATUS_INVALID_PARAMETER);
forward!(build_mdl_from_scatter_gather_list, build_mdl_from_scatter_gather_list,
    (list: P, original: P, target: *mut P) -> NtStatus, STATUS_INVALID_PARAMETER);
forward!(get_dma_adapter_info, get_dma_adapter_info, (info: P) -> NtStatus,
    STATUS_INVALID_PARAMETER);
forward!(get_dma_transfer_info, get_dma_transfer_info,
    (mdl: P, offset: u64, length: u32, write_only: Boolean, info: P) -> NtStatus,
    STATUS_INVALID_PARAMETER);
forward!(initialize_dma_transfer_context, initialize_dma_transfer_context,
    (transfer: P) -> NtStatus, STATUS_INVALID_PARAMETER);
forward!(allocate_common_buffer_ex, allocate_common_buffer_ex,
    (maximum: *mut PhysicalAddress, length: u32, logical: *mut PhysicalAddress,
     cache: Boolean, node: u32) -> P, core::ptr::null_mut());
forward!(configure_adapter_channel, configure_adapter_channel,
    (function: u32, context: P) -> NtStatus, STATUS_INVALID_PARAMETER);
forward!(map_transfer_ex, map_transfer_ex,
    (mdl: P, base: P, offset: u64, device_offset: u32, length: *mut u32, write: Boolean,
     list: P, list_length: u32, completion: DmaCompletionRoutine, completion_context: P)
    -> NtStatus, STATUS_INVALID_PARAMETER);
forward!(flush_adapter_buffers_ex, flush_adapter_buffers_ex,
    (mdl: P, base: P, offset: u64, length: u32, write: Boolean) -> NtStatus,
    STATUS_INVALID_PARAMETER);
forward!(free_adapter_object, free_adapter_object, (action: IoAllocationAction) -> (), ());
forward!(cancel_mapped_transfer, cancel_mapped_transfer, (transfer: P) -> NtStatus,
    STATUS_INVALID_PARAMETER);

/// `PutDmaAdapter`: the lower adapter is put (its table restored first for PASSTHRU) and
/// the wrapper freed with any record still pending.
unsafe extern "C" fn put_dma_adapter(adapter: A) {
    // SAFETY: `adapter` is one we handed out and the child's last use of it.
    let Some(w) = (unsafe { wrapper(adapter) }) else {
        return;
    };
    let w = w as *const Wrapper as *mut Wrapper;
    // SAFETY: the wrapper is ours to free now (no routine of it runs after PutDmaAdapter);
    // it came from `try_box` in `wrap`.
    unsafe {
        let lower = (*w).lower_adapter;
        if (*w).kind == DmaAdapterType::Passthru {
            (*lower).dma_operations = (*w).lower_table;
        }
        if let Some(f) = (*w).lower.put_dma_adapter {
            f(lower);
        }
        (*w).magic = 0;
        let wrapper = Box::from_raw(w);
        for &c in wrapper.pending.lock().iter() {
            drop(Box::from_raw(c as *mut Control));
        }
        drop(wrapper);
    }
    LIVE.fetch_sub(1, Ordering::AcqRel);
}

/// `AllocateAdapterChannel`: the PCI device object goes down; the child's routine runs
/// with its own device object.
unsafe extern "C" fn allocate_adapter_channel(
    adapter: A,
    device: P,
    registers: u32,
    function: DriverControl,
    argument: P,
) -> NtStatus {
    // SAFETY: `adapter` is one we handed out.
    let Some((w, f)) = (unsafe { wrapper(adapter) })
        .and_then(|w| w.lower.allocate_adapter_channel.map(|f| (w, f)))
    else {
        return STATUS_INVALID_PARAMETER;
    };
    w.intercept(
        device,
        core::ptr::null_mut(),
        Callback::Channel(function),
        argument,
        |control| {
            // SAFETY: the lower routine with the lower adapter, the PCI device object and our
            // record (freed by its run, or by `intercept` on failure).
            unsafe {
                f(
                    w.lower_adapter,
                    w.pci_device,
                    registers,
                    Some(adapter_control),
                    control,
                )
            }
        },
    )
}

/// `AllocateAdapterChannelEx` (v3): as `AllocateAdapterChannel`, with a transfer context.
unsafe extern "C" fn allocate_adapter_channel_ex(
    adapter: A,
    device: P,
    transfer: P,
    registers: u32,
    flags: u32,
    function: DriverControl,
    argument: P,
    map_register_base: *mut P,
) -> NtStatus {
    // SAFETY: `adapter` is one we handed out.
    let Some((w, f)) = (unsafe { wrapper(adapter) })
        .and_then(|w| w.lower.allocate_adapter_channel_ex.map(|f| (w, f)))
    else {
        return STATUS_INVALID_PARAMETER;
    };
    w.intercept(
        device,
        transfer,
        Callback::Channel(function),
        argument,
        |control| {
            // SAFETY: as for `allocate_adapter_channel`.
            unsafe {
                f(
                    w.lower_adapter,
                    w.pci_device,
                    transfer,
                    registers,
                    flags,
                    Some(adapter_control),
                    control,
                    map_register_base,
                )
            }
        },
    )
}

/// `CancelAdapterChannel` (v3): cancelled on the PCI device object; the records of that
/// transfer context will never run and are freed.
unsafe extern "C" fn cancel_adapter_channel(adapter: A, _device: P, transfer: P) -> Boolean {
    // SAFETY: `adapter` is one we handed out.
    let Some((w, f)) =
        (unsafe { wrapper(adapter) }).and_then(|w| w.lower.cancel_adapter_channel.map(|f| (w, f)))
    else {
        return 0;
    };
    // SAFETY: the lower routine with the lower adapter and the PCI device object.
    let cancelled = unsafe { f(w.lower_adapter, w.pci_device, transfer) };
    // Records without a transfer context (the non-Ex routines) cannot be cancelled.
    if cancelled != 0 && !transfer.is_null() {
        w.cancel_controls(transfer);
    }
    cancelled
}

/// `GetScatterGatherList`: the PCI device object goes down; the child's list routine runs
/// with its own device object and context.
unsafe extern "C" fn get_scatter_gather_list(
    adapter: A,
    device: P,
    mdl: P,
    va: P,
    length: u32,
    function: DriverListControl,
    argument: P,
    write: Boolean,
) -> NtStatus {
    // SAFETY: `adapter` is one we handed out.
    let Some((w, f)) =
        (unsafe { wrapper(adapter) }).and_then(|w| w.lower.get_scatter_gather_list.map(|f| (w, f)))
    else {
        return STATUS_INVALID_PARAMETER;
    };
    w.intercept(
        device,
        core::ptr::null_mut(),
        Callback::List(function),
        argument,
        |control| {
            // SAFETY: as for `allocate_adapter_channel`.
            unsafe {
                f(
                    w.lower_adapter,
                    w.pci_device,
                    mdl,
                    va,
                    length,
                    Some(adapter_list_control),
                    control,
                    write,
                )
            }
        },
    )
}

/// `BuildScatterGatherList` (v2): as `GetScatterGatherList` into the caller's buffer.
unsafe extern "C" fn build_scatter_gather_list(
    adapter: A,
    device: P,
    mdl: P,
    va: P,
    length: u32,
    function: DriverListControl,
    argument: P,
    write: Boolean,
    buffer: P,
    buffer_length: u32,
) -> NtStatus {
    // SAFETY: `adapter` is one we handed out.
    let Some((w, f)) = (unsafe { wrapper(adapter) })
        .and_then(|w| w.lower.build_scatter_gather_list.map(|f| (w, f)))
    else {
        return STATUS_INVALID_PARAMETER;
    };
    w.intercept(
        device,
        core::ptr::null_mut(),
        Callback::List(function),
        argument,
        |control| {
            // SAFETY: as for `allocate_adapter_channel`.
            unsafe {
                f(
                    w.lower_adapter,
                    w.pci_device,
                    mdl,
                    va,
                    length,
                    Some(adapter_list_control),
                    control,
                    write,
                    buffer,
                    buffer_length,
                )
            }
        },
    )
}

/// `GetScatterGatherListEx` (v3). The completion routine passes through unchanged.
unsafe extern "C" fn get_scatter_gather_list_ex(
    adapter: A,
    device: P,
    transfer: P,
    mdl: P,
    offset: u64,
    length: u32,
    flags: u32,
    function: DriverListControl,
    argument: P,
    write: Boolean,
    completion: DmaCompletionRoutine,
    completion_context: P,
    list: *mut P,
) -> NtStatus {
    // SAFETY: `adapter` is one we handed out.
    let Some((w, f)) = (unsafe { wrapper(adapter) })
        .and_then(|w| w.lower.get_scatter_gather_list_ex.map(|f| (w, f)))
    else {
        return STATUS_INVALID_PARAMETER;
    };
    w.intercept(
        device,
        transfer,
        Callback::List(function),
        argument,
        |control| {
            // SAFETY: as for `allocate_adapter_channel`.
            unsafe {
                f(
                    w.lower_adapter,
                    w.pci_device,
                    transfer,
                    mdl,
                    offset,
                    length,
                    flags,
                    Some(adapter_list_control),
                    control,
                    write,
                    completion,
                    completion_context,
                    list,
                )
            }
        },
    )
}

/// `BuildScatterGatherListEx` (v3).
unsafe extern "C" fn build_scatter_gather_list_ex(
    adapter: A,
    device: P,
    transfer: P,
    mdl: P,
    offset: u64,
    length: u32,
    flags: u32,
    function: DriverListControl,
    argument: P,
    write: Boolean,
    buffer: P,
    buffer_length: u32,
    completion: DmaCompletionRoutine,
    completion_context: P,
    list: *mut P,
) -> NtStatus {
    // SAFETY: `adapter` is one we handed out.
    let Some((w, f)) = (unsafe { wrapper(adapter) })
        .and_then(|w| w.lower.build_scatter_gather_list_ex.map(|f| (w, f)))
    else {
        return STATUS_INVALID_PARAMETER;
    };
    w.intercept(
        device,
        transfer,
        Callback::List(function),
        argument,
        |control| {
            // SAFETY: as for `allocate_adapter_channel`.
            unsafe {
                f(
                    w.lower_adapter,
                    w.pci_device,
                    transfer,
                    mdl,
                    offset,
                    length,
                    flags,
                    Some(adapter_list_control),
                    control,
                    write,
                    buffer,
                    buffer_length,
                    completion,
                    completion_context,
                    list,
                )
            }
        },
    )
}

#[cfg(test)]
#[path = "dma_tests.rs"]
mod tests;
