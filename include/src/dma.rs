//! WDK DMA layouts a bus driver wraps (`wdm.h`): `DMA_ADAPTER`, `DMA_OPERATIONS` v1–v3 in
//! field order, the routine and callback signatures, and the sizes that tell the versions
//! apart. Pinned for x86_64 (`extern "C"` is the Win64 convention on the Windows target).
#![forbid(unsafe_code)]

use core::ffi::c_void;
use core::mem::{offset_of, size_of};

use static_assertions::const_assert_eq;

/// `PHYSICAL_ADDRESS` (`LARGE_INTEGER`, returned in RAX on Win64).
pub type PhysicalAddress = i64;
/// `BOOLEAN`.
pub type Boolean = u8;
/// `NTSTATUS`.
pub type NtStatus = i32;
/// `IO_ALLOCATION_ACTION`.
pub type IoAllocationAction = i32;
/// `KeepObject`.
pub const KEEP_OBJECT: IoAllocationAction = 1;
/// `DeallocateObject`.
pub const DEALLOCATE_OBJECT: IoAllocationAction = 2;
/// `DeallocateObjectKeepRegisters`.
pub const DEALLOCATE_OBJECT_KEEP_REGISTERS: IoAllocationAction = 3;

/// Offset of `CurrentIrp` in `DEVICE_OBJECT` (x64: Type, Size, ReferenceCount,
/// DriverObject, NextDevice, AttachedDevice, CurrentIrp).
pub const DEVICE_OBJECT_CURRENT_IRP: usize = 0x20;

/// `DMA_ADAPTER`: the header every adapter object starts with.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct DmaAdapter {
    /// `Version`.
    pub version: u16,
    /// `Size` (`sizeof (DMA_ADAPTER)`).
    pub size: u16,
    /// `DmaOperations`.
    pub dma_operations: *mut DmaOperations,
}

/// `sizeof (DMA_ADAPTER)` on x64.
pub const DMA_ADAPTER_SIZE: u16 = 16;
const_assert_eq!(size_of::<DmaAdapter>(), DMA_ADAPTER_SIZE as usize);
const_assert_eq!(offset_of!(DmaAdapter, dma_operations), 8);

/// `PDRIVER_CONTROL`: an adapter channel's execution routine.
pub type DriverControl = Option<
    unsafe extern "C" fn(
        device: *mut c_void,
        irp: *mut c_void,
        map_register_base: *mut c_void,
        context: *mut c_void,
    ) -> IoAllocationAction,
>;
/// `PDRIVER_LIST_CONTROL`: a scatter/gather list's routine.
pub type DriverListControl = Option<
    unsafe extern "C" fn(
        device: *mut c_void,
        irp: *mut c_void,
        scatter_gather: *mut c_void,
        context: *mut c_void,
    ),
>;
/// `PDMA_COMPLETION_ROUTINE`.
pub type DmaCompletionRoutine = Option<
    unsafe extern "C" fn(
        adapter: *mut DmaAdapter,
        device: *mut c_void,
        completion_context: *mut c_void,
        status: i32,
    ),
>;

type A = *mut DmaAdapter;
type P = *mut c_void;

/// `PPUT_DMA_ADAPTER`.
pub type PutDmaAdapterFn = Option<unsafe extern "C" fn(A)>;
/// `PALLOCATE_COMMON_BUFFER`.
pub type AllocateCommonBufferFn =
    Option<unsafe extern "C" fn(A, u32, *mut PhysicalAddress, Boolean) -> P>;
/// `PFREE_COMMON_BUFFER`.
pub type FreeCommonBufferFn = Option<unsafe extern "C" fn(A, u32, PhysicalAddress, P, Boolean)>;
/// `PALLOCATE_ADAPTER_CHANNEL`.
pub type AllocateAdapterChannelFn =
    Option<unsafe extern "C" fn(A, P, u32, DriverControl, P) -> NtStatus>;
/// `PFLUSH_ADAPTER_BUFFERS`.
pub type FlushAdapterBuffersFn = Option<unsafe extern "C" fn(A, P, P, P, u32, Boolean) -> Boolean>;
/// `PFREE_ADAPTER_CHANNEL`.
pub type FreeAdapterChannelFn = Option<unsafe extern "C" fn(A)>;
/// `PFREE_MAP_REGISTERS`.
pub type FreeMapRegistersFn = Option<unsafe extern "C" fn(A, P, u32)>;
/// `PMAP_TRANSFER`.
pub type MapTransferFn =
    Option<unsafe extern "C" fn(A, P, P, P, *mut u32, Boolean) -> PhysicalAddress>;
/// `PGET_DMA_ALIGNMENT` / `PREAD_DMA_COUNTER`.
pub type AdapterU32Fn = Option<unsafe extern "C" fn(A) -> u32>;
/// `PGET_SCATTER_GATHER_LIST`.
pub type GetScatterGatherListFn =
    Option<unsafe extern "C" fn(A, P, P, P, u32, DriverListControl, P, Boolean) -> NtStatus>;
/// `PPUT_SCATTER_GATHER_LIST`.
pub type PutScatterGatherListFn = Option<unsafe extern "C" fn(A, P, Boolean)>;
/// `PCALCULATE_SCATTER_GATHER_LIST_SIZE`.
pub type CalculateScatterGatherListFn =
    Option<unsafe extern "C" fn(A, P, P, u32, *mut u32, *mut u32) -> NtStatus>;
/// `PBUILD_SCATTER_GATHER_LIST`.
pub type BuildScatterGatherListFn = Option<
    unsafe extern "C" fn(A, P, P, P, u32, DriverListControl, P, Boolean, P, u32) -> NtStatus,
>;
/// `PBUILD_MDL_FROM_SCATTER_GATHER_LIST`.
pub type BuildMdlFromScatterGatherListFn =
    Option<unsafe extern "C" fn(A, P, P, *mut P) -> NtStatus>;
/// `PGET_DMA_ADAPTER_INFO` / `PINITIALIZE_DMA_TRANSFER_CONTEXT` / `PCANCEL_MAPPED_TRANSFER`.
pub type AdapterPtrStatusFn = Option<unsafe extern "C" fn(A, P) -> NtStatus>;
/// `PGET_DMA_TRANSFER_INFO`.
pub type GetDmaTransferInfoFn =
    Option<unsafe extern "C" fn(A, P, u64, u32, Boolean, P) -> NtStatus>;
/// `PALLOCATE_COMMON_BUFFER_EX`.
pub type AllocateCommonBufferExFn = Option<
    unsafe extern "C" fn(A, *mut PhysicalAddress, u32, *mut PhysicalAddress, Boolean, u32) -> P,
>;
/// `PALLOCATE_ADAPTER_CHANNEL_EX`.
pub type AllocateAdapterChannelExFn =
    Option<unsafe extern "C" fn(A, P, P, u32, u32, DriverControl, P, *mut P) -> NtStatus>;
/// `PCONFIGURE_ADAPTER_CHANNEL`.
pub type ConfigureAdapterChannelFn = Option<unsafe extern "C" fn(A, u32, P) -> NtStatus>;
/// `PCANCEL_ADAPTER_CHANNEL`.
pub type CancelAdapterChannelFn = Option<unsafe extern "C" fn(A, P, P) -> Boolean>;
/// `PMAP_TRANSFER_EX`.
pub type MapTransferExFn = Option<
    unsafe extern "C" fn(
        A,
        P,
        P,
        u64,
        u32,
        *mut u32,
        Boolean,
        P,
        u32,
        DmaCompletionRoutine,
        P,
    ) -> NtStatus,
>;
/// `PGET_SCATTER_GATHER_LIST_EX`.
pub type GetScatterGatherListExFn = Option<
    unsafe extern "C" fn(
        A,
        P,
        P,
        P,
        u64,
        u32,
        u32,
        DriverListControl,
        P,
        Boolean,
        DmaCompletionRoutine,
        P,
        *mut P,
    ) -> NtStatus,
>;
/// `PBUILD_SCATTER_GATHER_LIST_EX`.
pub type BuildScatterGatherListExFn = Option<
    unsafe extern "C" fn(
        A,
        P,
        P,
        P,
        u64,
        u32,
        u32,
        DriverListControl,
        P,
        Boolean,
        P,
        u32,
        DmaCompletionRoutine,
        P,
        *mut P,
    ) -> NtStatus,
>;
/// `PFLUSH_ADAPTER_BUFFERS_EX`.
pub type FlushAdapterBuffersExFn =
    Option<unsafe extern "C" fn(A, P, P, u64, u32, Boolean) -> NtStatus>;
/// `PFREE_ADAPTER_OBJECT`.
pub type FreeAdapterObjectFn = Option<unsafe extern "C" fn(A, IoAllocationAction)>;

/// `DMA_OPERATIONS` up to version 3, in the WDK's field order. A table's `Size` says how
/// many routines it holds ([`DMA_OPERATIONS_SIZE1`] … [`DMA_OPERATIONS_SIZE3`]).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct DmaOperations {
    /// `Size` of the table in bytes.
    pub size: u32,
    /// `PutDmaAdapter` (v1).
    pub put_dma_adapter: PutDmaAdapterFn,
    /// `AllocateCommonBuffer`.
    pub allocate_common_buffer: AllocateCommonBufferFn,
    /// `FreeCommonBuffer`.
    pub free_common_buffer: FreeCommonBufferFn,
    /// `AllocateAdapterChannel`.
    pub allocate_adapter_channel: AllocateAdapterChannelFn,
    /// `FlushAdapterBuffers`.
    pub flush_adapter_buffers: FlushAdapterBuffersFn,
    /// `FreeAdapterChannel`.
    pub free_adapter_channel: FreeAdapterChannelFn,
    /// `FreeMapRegisters`.
    pub free_map_registers: FreeMapRegistersFn,
    /// `MapTransfer`.
    pub map_transfer: MapTransferFn,
    /// `GetDmaAlignment`.
    pub get_dma_alignment: AdapterU32Fn,
    /// `ReadDmaCounter`.
    pub read_dma_counter: AdapterU32Fn,
    /// `GetScatterGatherList`.
    pub get_scatter_gather_list: GetScatterGatherListFn,
    /// `PutScatterGatherList`.
    pub put_scatter_gather_list: PutScatterGatherListFn,
    /// `CalculateScatterGatherList` (v2).
    pub calculate_scatter_gather_list: CalculateScatterGatherListFn,
    /// `BuildScatterGatherList` (v2).
    pub build_scatter_gather_list: BuildScatterGatherListFn,
    /// `BuildMdlFromScatterGatherList` (v2).
    pub build_mdl_from_scatter_gather_list: BuildMdlFromScatterGatherListFn,
    /// `GetDmaAdapterInfo` (v3).
    pub get_dma_adapter_info: AdapterPtrStatusFn,
    /// `GetDmaTransferInfo` (v3).
    pub get_dma_transfer_info: GetDmaTransferInfoFn,
    /// `InitializeDmaTransferContext` (v3).
    pub initialize_dma_transfer_context: AdapterPtrStatusFn,
    /// `AllocateCommonBufferEx` (v3).
    pub allocate_common_buffer_ex: AllocateCommonBufferExFn,
    /// `AllocateAdapterChannelEx` (v3).
    pub allocate_adapter_channel_ex: AllocateAdapterChannelExFn,
    /// `ConfigureAdapterChannel` (v3).
    pub configure_adapter_channel: ConfigureAdapterChannelFn,
    /// `CancelAdapterChannel` (v3).
    pub cancel_adapter_channel: CancelAdapterChannelFn,
    /// `MapTransferEx` (v3).
    pub map_transfer_ex: MapTransferExFn,
    /// `GetScatterGatherListEx` (v3).
    pub get_scatter_gather_list_ex: GetScatterGatherListExFn,
    /// `BuildScatterGatherListEx` (v3).
    pub build_scatter_gather_list_ex: BuildScatterGatherListExFn,
    /// `FlushAdapterBuffersEx` (v3).
    pub flush_adapter_buffers_ex: FlushAdapterBuffersExFn,
    /// `FreeAdapterObject` (v3).
    pub free_adapter_object: FreeAdapterObjectFn,
    /// `CancelMappedTransfer` (v3).
    pub cancel_mapped_transfer: AdapterPtrStatusFn,
}

impl DmaOperations {
    /// A table with `Size` 0 and no routine (every slot NULL).
    pub const EMPTY: Self = Self {
        size: 0,
        put_dma_adapter: None,
        allocate_common_buffer: None,
        free_common_buffer: None,
        allocate_adapter_channel: None,
        flush_adapter_buffers: None,
        free_adapter_channel: None,
        free_map_registers: None,
        map_transfer: None,
        get_dma_alignment: None,
        read_dma_counter: None,
        get_scatter_gather_list: None,
        put_scatter_gather_list: None,
        calculate_scatter_gather_list: None,
        build_scatter_gather_list: None,
        build_mdl_from_scatter_gather_list: None,
        get_dma_adapter_info: None,
        get_dma_transfer_info: None,
        initialize_dma_transfer_context: None,
        allocate_common_buffer_ex: None,
        allocate_adapter_channel_ex: None,
        configure_adapter_channel: None,
        cancel_adapter_channel: None,
        map_transfer_ex: None,
        get_scatter_gather_list_ex: None,
        build_scatter_gather_list_ex: None,
        flush_adapter_buffers_ex: None,
        free_adapter_object: None,
        cancel_mapped_transfer: None,
    };
}

/// Version 1 size: `FIELD_OFFSET (DMA_OPERATIONS, CalculateScatterGatherList)`.
pub const DMA_OPERATIONS_SIZE1: u32 =
    offset_of!(DmaOperations, calculate_scatter_gather_list) as u32;
/// Version 2 size: `FIELD_OFFSET (DMA_OPERATIONS, GetDmaAdapterInfo)`.
pub const DMA_OPERATIONS_SIZE2: u32 = offset_of!(DmaOperations, get_dma_adapter_info) as u32;
/// Version 3 size: `sizeof (DMA_OPERATIONS)` of the version-3 WDK.
pub const DMA_OPERATIONS_SIZE3: u32 = size_of::<DmaOperations>() as u32;

const_assert_eq!(DMA_OPERATIONS_SIZE1, 104);
const_assert_eq!(DMA_OPERATIONS_SIZE2, 128);
const_assert_eq!(DMA_OPERATIONS_SIZE3, 232);
const_assert_eq!(offset_of!(DmaOperations, put_dma_adapter), 0x08);
const_assert_eq!(offset_of!(DmaOperations, allocate_adapter_channel), 0x20);
const_assert_eq!(offset_of!(DmaOperations, get_scatter_gather_list), 0x58);
const_assert_eq!(offset_of!(DmaOperations, put_scatter_gather_list), 0x60);
const_assert_eq!(offset_of!(DmaOperations, build_scatter_gather_list), 0x70);
const_assert_eq!(offset_of!(DmaOperations, allocate_adapter_channel_ex), 0xA0);
const_assert_eq!(offset_of!(DmaOperations, cancel_adapter_channel), 0xB0);
const_assert_eq!(offset_of!(DmaOperations, get_scatter_gather_list_ex), 0xC0);
const_assert_eq!(
    offset_of!(DmaOperations, build_scatter_gather_list_ex),
    0xC8
);
const_assert_eq!(offset_of!(DmaOperations, cancel_mapped_transfer), 0xE0);

/// The version of a `DMA_OPERATIONS` table from its `Size`: exactly SIZE1 → 1, SIZE2 → 2,
/// SIZE3 or a larger pointer-multiple (later WDK additions) → 3; any other size → None.
pub fn dma_operations_version(size: u32) -> Option<u32> {
    match size {
        DMA_OPERATIONS_SIZE1 => Some(1),
        DMA_OPERATIONS_SIZE2 => Some(2),
        s if s >= DMA_OPERATIONS_SIZE3 && s % 8 == 0 => Some(3),
        _ => None,
    }
}

/// The `Size` of a table holding `version`'s routines (1–3), else None.
pub fn dma_operations_size(version: u32) -> Option<u32> {
    match version {
        1 => Some(DMA_OPERATIONS_SIZE1),
        2 => Some(DMA_OPERATIONS_SIZE2),
        3 => Some(DMA_OPERATIONS_SIZE3),
        _ => None,
    }
}
