//! Host tests of the DMA adapter wrapper: a fake lower adapter whose routines record their
//! arguments, every routine of every version called through the wrapper's table.
use super::*;
use std::cell::RefCell;
use std::string::{String, ToString};
use std::sync::Mutex;
use std::vec;
use xen_include::dma::{DMA_OPERATIONS_SIZE1, DMA_OPERATIONS_SIZE2, KEEP_OBJECT};

/// The tests share `LIVE`: run them one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

thread_local! {
    static CALLS: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    /// What the fake lower adapter does with a callback: run it now or keep it.
    static DEFER: RefCell<bool> = const { RefCell::new(false) };
    static KEPT: RefCell<Vec<(Callback, P)>> = const { RefCell::new(Vec::new()) };
    static FAIL: RefCell<NtStatus> = const { RefCell::new(0) };
}

fn record(s: String) {
    CALLS.with(|c| c.borrow_mut().push(s));
}

fn calls() -> Vec<String> {
    CALLS.with(|c| core::mem::take(&mut *c.borrow_mut()))
}

const PCI: usize = 0x9C1_0000;
const PCI_IRP: usize = 0x9C1_1111;

/// A fake `DEVICE_OBJECT`: `CurrentIrp` at 0x20.
fn device_object(irp: usize) -> Box<[usize; 8]> {
    let mut d = Box::new([0usize; 8]);
    d[DEVICE_OBJECT_CURRENT_IRP / 8] = irp;
    d
}

/// The lower adapter calls (or keeps) an execution routine as the HAL would: with its own
/// device object (the PCI one) and that device's IRP.
unsafe fn lower_callback(callback: Callback, argument: P, base_or_list: usize) -> i32 {
    if DEFER.with(|d| *d.borrow()) {
        KEPT.with(|k| k.borrow_mut().push((callback, argument)));
        return 0;
    }
    let action = unsafe { run_callback(callback, argument, base_or_list) };
    record(format!("action {action}"));
    0
}

unsafe fn run_callback(callback: Callback, argument: P, base_or_list: usize) -> i32 {
    match callback {
        Callback::Channel(Some(f)) => unsafe {
            f(PCI as P, PCI_IRP as P, base_or_list as P, argument)
        },
        Callback::List(Some(f)) => {
            unsafe { f(PCI as P, PCI_IRP as P, base_or_list as P, argument) };
            0
        }
        _ => -1,
    }
}

fn fail() -> NtStatus {
    FAIL.with(|f| *f.borrow())
}

unsafe extern "C" fn l_put(a: A) {
    record(format!("put {a:p}"));
}
unsafe extern "C" fn l_alloc_common(
    a: A,
    len: u32,
    logical: *mut PhysicalAddress,
    cache: Boolean,
) -> P {
    unsafe { *logical = 0x7000 };
    record(format!("alloc_common {a:p} {len} {cache}"));
    0xB0F as P
}
unsafe extern "C" fn l_free_common(
    a: A,
    len: u32,
    logical: PhysicalAddress,
    va: P,
    cache: Boolean,
) {
    record(format!(
        "free_common {a:p} {len} {logical:#x} {va:p} {cache}"
    ));
}
unsafe extern "C" fn l_alloc_channel(a: A, d: P, n: u32, f: DriverControl, arg: P) -> NtStatus {
    record(format!("alloc_channel {a:p} {d:p} {n}"));
    if fail() != 0 {
        return fail();
    }
    unsafe { lower_callback(Callback::Channel(f), arg, 0x3000) }
}
unsafe extern "C" fn l_flush(a: A, mdl: P, base: P, va: P, len: u32, w: Boolean) -> Boolean {
    record(format!("flush {a:p} {mdl:p} {base:p} {va:p} {len} {w}"));
    1
}
unsafe extern "C" fn l_free_channel(a: A) {
    record(format!("free_channel {a:p}"));
}
unsafe extern "C" fn l_free_registers(a: A, base: P, n: u32) {
    record(format!("free_registers {a:p} {base:p} {n}"));
}
unsafe extern "C" fn l_map(
    a: A,
    mdl: P,
    base: P,
    va: P,
    len: *mut u32,
    w: Boolean,
) -> PhysicalAddress {
    let l = unsafe { *len };
    unsafe { *len = l / 2 };
    record(format!("map {a:p} {mdl:p} {base:p} {va:p} {l} {w}"));
    0x1234_5000
}
unsafe extern "C" fn l_alignment(a: A) -> u32 {
    record(format!("alignment {a:p}"));
    64
}
unsafe extern "C" fn l_counter(a: A) -> u32 {
    record(format!("counter {a:p}"));
    77
}
unsafe extern "C" fn l_get_sg(
    a: A,
    d: P,
    mdl: P,
    va: P,
    len: u32,
    f: DriverListControl,
    arg: P,
    w: Boolean,
) -> NtStatus {
    record(format!("get_sg {a:p} {d:p} {mdl:p} {va:p} {len} {w}"));
    if fail() != 0 {
        return fail();
    }
    unsafe { lower_callback(Callback::List(f), arg, 0x5600) }
}
unsafe extern "C" fn l_put_sg(a: A, list: P, w: Boolean) {
    record(format!("put_sg {a:p} {list:p} {w}"));
}
unsafe extern "C" fn l_calc_sg(
    a: A,
    mdl: P,
    va: P,
    len: u32,
    size: *mut u32,
    regs: *mut u32,
) -> NtStatus {
    unsafe {
        *size = 48;
        *regs = 3;
    }
    record(format!("calc_sg {a:p} {mdl:p} {va:p} {len}"));
    0
}
unsafe extern "C" fn l_build_sg(
    a: A,
    d: P,
    mdl: P,
    va: P,
    len: u32,
    f: DriverListControl,
    arg: P,
    w: Boolean,
    buf: P,
    blen: u32,
) -> NtStatus {
    record(format!(
        "build_sg {a:p} {d:p} {mdl:p} {va:p} {len} {w} {buf:p} {blen}"
    ));
    unsafe { lower_callback(Callback::List(f), arg, buf as usize) }
}
unsafe extern "C" fn l_build_mdl(a: A, list: P, orig: P, target: *mut P) -> NtStatus {
    unsafe { *target = 0x3D1 as P };
    record(format!("build_mdl {a:p} {list:p} {orig:p}"));
    0
}
unsafe extern "C" fn l_adapter_info(a: A, info: P) -> NtStatus {
    record(format!("adapter_info {a:p} {info:p}"));
    0
}
unsafe extern "C" fn l_transfer_info(
    a: A,
    mdl: P,
    off: u64,
    len: u32,
    wo: Boolean,
    info: P,
) -> NtStatus {
    record(format!(
        "transfer_info {a:p} {mdl:p} {off:#x} {len} {wo} {info:p}"
    ));
    0
}
unsafe extern "C" fn l_init_transfer(a: A, t: P) -> NtStatus {
    record(format!("init_transfer {a:p} {t:p}"));
    0
}
unsafe extern "C" fn l_alloc_common_ex(
    a: A,
    max: *mut PhysicalAddress,
    len: u32,
    logical: *mut PhysicalAddress,
    cache: Boolean,
    node: u32,
) -> P {
    let m = unsafe { *max };
    unsafe { *logical = 0x8000 };
    record(format!("alloc_common_ex {a:p} {m:#x} {len} {cache} {node}"));
    0xB1F as P
}
unsafe extern "C" fn l_alloc_channel_ex(
    a: A,
    d: P,
    t: P,
    n: u32,
    flags: u32,
    f: DriverControl,
    arg: P,
    base: *mut P,
) -> NtStatus {
    record(format!(
        "alloc_channel_ex {a:p} {d:p} {t:p} {n} {flags} {}",
        !base.is_null()
    ));
    unsafe { lower_callback(Callback::Channel(f), arg, 0x3100) }
}
unsafe extern "C" fn l_configure(a: A, n: u32, c: P) -> NtStatus {
    record(format!("configure {a:p} {n} {c:p}"));
    0
}
unsafe extern "C" fn l_cancel(a: A, d: P, t: P) -> Boolean {
    record(format!("cancel {a:p} {d:p} {t:p}"));
    1
}
unsafe extern "C" fn l_map_ex(
    a: A,
    mdl: P,
    base: P,
    off: u64,
    doff: u32,
    len: *mut u32,
    w: Boolean,
    list: P,
    llen: u32,
    c: DmaCompletionRoutine,
    cc: P,
) -> NtStatus {
    let l = unsafe { *len };
    record(format!(
        "map_ex {a:p} {mdl:p} {base:p} {off:#x} {doff} {l} {w} {list:p} {llen} {} {cc:p}",
        c.is_some()
    ));
    0
}
unsafe extern "C" fn l_get_sg_ex(
    a: A,
    d: P,
    t: P,
    mdl: P,
    off: u64,
    len: u32,
    flags: u32,
    f: DriverListControl,
    arg: P,
    w: Boolean,
    c: DmaCompletionRoutine,
    cc: P,
    out: *mut P,
) -> NtStatus {
    record(format!(
        "get_sg_ex {a:p} {d:p} {t:p} {mdl:p} {off:#x} {len} {flags} {w} {} {cc:p} {}",
        c.is_some(),
        !out.is_null()
    ));
    unsafe { lower_callback(Callback::List(f), arg, 0x5700) }
}
unsafe extern "C" fn l_build_sg_ex(
    a: A,
    d: P,
    t: P,
    mdl: P,
    off: u64,
    len: u32,
    flags: u32,
    f: DriverListControl,
    arg: P,
    w: Boolean,
    buf: P,
    blen: u32,
    c: DmaCompletionRoutine,
    cc: P,
    out: *mut P,
) -> NtStatus {
    record(format!("build_sg_ex {a:p} {d:p} {t:p} {mdl:p} {off:#x} {len} {flags} {w} {buf:p} {blen} {} {cc:p} {}", c.is_some(), !out.is_null()));
    unsafe { lower_callback(Callback::List(f), arg, buf as usize) }
}
unsafe extern "C" fn l_flush_ex(a: A, mdl: P, base: P, off: u64, len: u32, w: Boolean) -> NtStatus {
    record(format!(
        "flush_ex {a:p} {mdl:p} {base:p} {off:#x} {len} {w}"
    ));
    0
}
unsafe extern "C" fn l_free_object(a: A, action: IoAllocationAction) {
    record(format!("free_object {a:p} {action}"));
}
unsafe extern "C" fn l_cancel_mapped(a: A, t: P) -> NtStatus {
    record(format!("cancel_mapped {a:p} {t:p}"));
    0
}
unsafe extern "C" fn completion(_a: A, _d: P, _c: P, _s: i32) {}

fn lower_table(size: u32) -> Box<DmaOperations> {
    Box::new(DmaOperations {
        size,
        put_dma_adapter: Some(l_put),
        allocate_common_buffer: Some(l_alloc_common),
        free_common_buffer: Some(l_free_common),
        allocate_adapter_channel: Some(l_alloc_channel),
        flush_adapter_buffers: Some(l_flush),
        free_adapter_channel: Some(l_free_channel),
        free_map_registers: Some(l_free_registers),
        map_transfer: Some(l_map),
        get_dma_alignment: Some(l_alignment),
        read_dma_counter: Some(l_counter),
        get_scatter_gather_list: Some(l_get_sg),
        put_scatter_gather_list: Some(l_put_sg),
        calculate_scatter_gather_list: Some(l_calc_sg),
        build_scatter_gather_list: Some(l_build_sg),
        build_mdl_from_scatter_gather_list: Some(l_build_mdl),
        get_dma_adapter_info: Some(l_adapter_info),
        get_dma_transfer_info: Some(l_transfer_info),
        initialize_dma_transfer_context: Some(l_init_transfer),
        allocate_common_buffer_ex: Some(l_alloc_common_ex),
        allocate_adapter_channel_ex: Some(l_alloc_channel_ex),
        configure_adapter_channel: Some(l_configure),
        cancel_adapter_channel: Some(l_cancel),
        map_transfer_ex: Some(l_map_ex),
        get_scatter_gather_list_ex: Some(l_get_sg_ex),
        build_scatter_gather_list_ex: Some(l_build_sg_ex),
        flush_adapter_buffers_ex: Some(l_flush_ex),
        free_adapter_object: Some(l_free_object),
        cancel_mapped_transfer: Some(l_cancel_mapped),
    })
}

/// What the child's routines saw.
static CHILD: Mutex<Vec<String>> = Mutex::new(Vec::new());

unsafe extern "C" fn child_control(d: P, irp: P, base: P, arg: P) -> IoAllocationAction {
    CHILD
        .lock()
        .unwrap()
        .push(format!("control {d:p} {irp:p} {base:p} {arg:p}"));
    KEEP_OBJECT
}
unsafe extern "C" fn child_list(d: P, irp: P, list: P, arg: P) {
    CHILD
        .lock()
        .unwrap()
        .push(format!("list {d:p} {irp:p} {list:p} {arg:p}"));
}

fn child_calls() -> Vec<String> {
    core::mem::take(&mut *CHILD.lock().unwrap())
}

struct Lower {
    table: Box<DmaOperations>,
    adapter: Box<DmaAdapter>,
}

fn lower(size: u32) -> Lower {
    let mut table = lower_table(size);
    let adapter = Box::new(DmaAdapter {
        version: 1,
        size: DMA_ADAPTER_SIZE,
        dma_operations: &mut *table,
    });
    Lower { table, adapter }
}

fn p(v: usize) -> P {
    v as P
}

/// Call every routine the table of `adapter` holds, as a C child would; returns the
/// lower's records and the child's.
unsafe fn call_everything(adapter: A, version: u32, child: P) {
    let ops = unsafe { *(*adapter).dma_operations };
    let mut logical = 0i64;
    let mut len = 4096u32;
    unsafe {
        assert_eq!(
            (ops.allocate_common_buffer.unwrap())(adapter, 512, &mut logical, 1),
            p(0xB0F)
        );
        assert_eq!(logical, 0x7000);
        (ops.free_common_buffer.unwrap())(adapter, 512, 0x7000, p(0xB0F), 1);
        assert_eq!(
            (ops.allocate_adapter_channel.unwrap())(
                adapter,
                child,
                2,
                Some(child_control),
                p(0xA1)
            ),
            0
        );
        assert_eq!(
            (ops.flush_adapter_buffers.unwrap())(adapter, p(0x3D), p(0x3000), p(0x4000), 100, 1),
            1
        );
        (ops.free_adapter_channel.unwrap())(adapter);
        (ops.free_map_registers.unwrap())(adapter, p(0x3000), 2);
        assert_eq!(
            (ops.map_transfer.unwrap())(adapter, p(0x3D), p(0x3000), p(0x4000), &mut len, 0),
            0x1234_5000
        );
        assert_eq!(len, 2048);
        assert_eq!((ops.get_dma_alignment.unwrap())(adapter), 64);
        assert_eq!((ops.read_dma_counter.unwrap())(adapter), 77);
        assert_eq!(
            (ops.get_scatter_gather_list.unwrap())(
                adapter,
                child,
                p(0x3D),
                p(0x4000),
                100,
                Some(child_list),
                p(0xA2),
                1
            ),
            0
        );
        (ops.put_scatter_gather_list.unwrap())(adapter, p(0x5600), 1);
        if version >= 2 {
            let (mut size, mut regs) = (0u32, 0u32);
            assert_eq!(
                (ops.calculate_scatter_gather_list.unwrap())(
                    adapter,
                    p(0x3D),
                    p(0x4000),
                    100,
                    &mut size,
                    &mut regs
                ),
                0
            );
            assert_eq!((size, regs), (48, 3));
            assert_eq!(
                (ops.build_scatter_gather_list.unwrap())(
                    adapter,
                    child,
                    p(0x3D),
                    p(0x4000),
                    100,
                    Some(child_list),
                    p(0xA3),
                    0,
                    p(0x5800),
                    64
                ),
                0
            );
            let mut target = core::ptr::null_mut();
            assert_eq!(
                (ops.build_mdl_from_scatter_gather_list.unwrap())(
                    adapter,
                    p(0x5600),
                    p(0x3D),
                    &mut target
                ),
                0
            );
            assert_eq!(target, p(0x3D1));
        }
        if version >= 3 {
            assert_eq!((ops.get_dma_adapter_info.unwrap())(adapter, p(0x1F0)), 0);
            assert_eq!(
                (ops.get_dma_transfer_info.unwrap())(adapter, p(0x3D), 0x10, 100, 1, p(0x1F1)),
                0
            );
            assert_eq!(
                (ops.initialize_dma_transfer_context.unwrap())(adapter, p(0x7C)),
                0
            );
            let mut max = 0xFFFF_FFFFi64;
            assert_eq!(
                (ops.allocate_common_buffer_ex.unwrap())(
                    adapter,
                    &mut max,
                    256,
                    &mut logical,
                    0,
                    2
                ),
                p(0xB1F)
            );
            assert_eq!(logical, 0x8000);
            let mut base = core::ptr::null_mut();
            assert_eq!(
                (ops.allocate_adapter_channel_ex.unwrap())(
                    adapter,
                    child,
                    p(0x7C),
                    4,
                    1,
                    Some(child_control),
                    p(0xA4),
                    &mut base
                ),
                0
            );
            assert_eq!(
                (ops.configure_adapter_channel.unwrap())(adapter, 9, p(0xC0)),
                0
            );
            assert_eq!(
                (ops.cancel_adapter_channel.unwrap())(adapter, child, p(0x7C)),
                1
            );
            let mut len = 100u32;
            assert_eq!(
                (ops.map_transfer_ex.unwrap())(
                    adapter,
                    p(0x3D),
                    p(0x3000),
                    0x20,
                    8,
                    &mut len,
                    1,
                    p(0x5900),
                    96,
                    Some(completion),
                    p(0xCC)
                ),
                0
            );
            let mut out = core::ptr::null_mut();
            assert_eq!(
                (ops.get_scatter_gather_list_ex.unwrap())(
                    adapter,
                    child,
                    p(0x7C),
                    p(0x3D),
                    0x30,
                    100,
                    0,
                    Some(child_list),
                    p(0xA5),
                    1,
                    Some(completion),
                    p(0xCC),
                    &mut out
                ),
                0
            );
            assert_eq!(
                (ops.build_scatter_gather_list_ex.unwrap())(
                    adapter,
                    child,
                    p(0x7C),
                    p(0x3D),
                    0x40,
                    100,
                    0,
                    Some(child_list),
                    p(0xA6),
                    0,
                    p(0x5A00),
                    64,
                    None,
                    p(0xCD),
                    &mut out
                ),
                0
            );
            assert_eq!(
                (ops.flush_adapter_buffers_ex.unwrap())(adapter, p(0x3D), p(0x3000), 0x50, 100, 1),
                0
            );
            (ops.free_adapter_object.unwrap())(adapter, KEEP_OBJECT);
            assert_eq!((ops.cancel_mapped_transfer.unwrap())(adapter, p(0x7C)), 0);
        }
    }
}

fn expected_lower(a: usize, version: u32) -> Vec<String> {
    let a = format!("{:#x}", a);
    let pci = format!("{PCI:#x}");
    let mut v = vec![
        format!("alloc_common {a} 512 1"),
        format!("free_common {a} 512 0x7000 0xb0f 1"),
        format!("alloc_channel {a} {pci} 2"),
        "action 1".to_string(),
        format!("flush {a} 0x3d 0x3000 0x4000 100 1"),
        format!("free_channel {a}"),
        format!("free_registers {a} 0x3000 2"),
        format!("map {a} 0x3d 0x3000 0x4000 4096 0"),
        format!("alignment {a}"),
        format!("counter {a}"),
        format!("get_sg {a} {pci} 0x3d 0x4000 100 1"),
        "action 0".to_string(),
        format!("put_sg {a} 0x5600 1"),
    ];
    if version >= 2 {
        v.extend([
            format!("calc_sg {a} 0x3d 0x4000 100"),
            format!("build_sg {a} {pci} 0x3d 0x4000 100 0 0x5800 64"),
            "action 0".to_string(),
            format!("build_mdl {a} 0x5600 0x3d"),
        ]);
    }
    if version >= 3 {
        v.extend([
            format!("adapter_info {a} 0x1f0"),
            format!("transfer_info {a} 0x3d 0x10 100 1 0x1f1"),
            format!("init_transfer {a} 0x7c"),
            format!("alloc_common_ex {a} 0xffffffff 256 0 2"),
            format!("alloc_channel_ex {a} {pci} 0x7c 4 1 true"),
            "action 1".to_string(),
            format!("configure {a} 9 0xc0"),
            format!("cancel {a} {pci} 0x7c"),
            format!("map_ex {a} 0x3d 0x3000 0x20 8 100 1 0x5900 96 true 0xcc"),
            format!("get_sg_ex {a} {pci} 0x7c 0x3d 0x30 100 0 1 true 0xcc true"),
            "action 0".to_string(),
            format!("build_sg_ex {a} {pci} 0x7c 0x3d 0x40 100 0 0 0x5a00 64 false 0xcd true"),
            "action 0".to_string(),
            format!("flush_ex {a} 0x3d 0x3000 0x50 100 1"),
            format!("free_object {a} 1"),
            format!("cancel_mapped {a} 0x7c"),
        ]);
    }
    v
}

fn expected_child(child: usize, irp: usize, version: u32) -> Vec<String> {
    let d = format!("{child:#x} {irp:#x}");
    let mut v = vec![
        format!("control {d} 0x3000 0xa1"),
        format!("list {d} 0x5600 0xa2"),
    ];
    if version >= 2 {
        v.push(format!("list {d} 0x5800 0xa3"));
    }
    if version >= 3 {
        v.extend([
            format!("control {d} 0x3100 0xa4"),
            format!("list {d} 0x5700 0xa5"),
            format!("list {d} 0x5a00 0xa6"),
        ]);
    }
    v
}

#[test]
fn every_routine_of_every_version_forwards_with_the_pci_device_and_calls_back_the_child() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for kind in [DmaAdapterType::Substitute, DmaAdapterType::Passthru] {
        for (version, size) in [
            (1, DMA_OPERATIONS_SIZE1),
            (2, DMA_OPERATIONS_SIZE2),
            (3, DMA_OPERATIONS_SIZE3),
            (3, 280),
        ] {
            let mut l = lower(size);
            let lower_ptr: A = &mut *l.adapter;
            let lower_table: *mut DmaOperations = &mut *l.table;
            let live = live_wrappers();
            let (adapter, refusal) = unsafe { wrap(kind, lower_ptr, PCI as P) };
            assert_eq!(refusal, None);
            assert_eq!(live_wrappers(), live + 1);
            let ops = unsafe { *(*adapter).dma_operations };
            // The private table: the lower's version (a later, larger table offered as v3).
            assert_eq!(
                ops.size,
                size.min(DMA_OPERATIONS_SIZE3),
                "{kind:?} v{version}"
            );
            assert_eq!(ops.calculate_scatter_gather_list.is_some(), version >= 2);
            assert_eq!(ops.cancel_mapped_transfer.is_some(), version >= 3);
            assert_ne!(unsafe { (*adapter).dma_operations }, lower_table);
            match kind {
                DmaAdapterType::Substitute => {
                    assert_ne!(adapter, lower_ptr);
                    assert_eq!(unsafe { ((*adapter).version, (*adapter).size) }, (1, 16));
                    assert_eq!(l.adapter.dma_operations, lower_table, "lower untouched");
                }
                _ => assert_eq!(adapter, lower_ptr, "PASSTHRU hands out the lower adapter"),
            }
            let child = device_object(0x0C11_D1EE);
            let child_ptr = &*child as *const [usize; 8] as P;
            calls();
            child_calls();
            unsafe { call_everything(adapter, version, child_ptr) };
            assert_eq!(
                calls(),
                expected_lower(lower_ptr as usize, version),
                "{kind:?} v{version}"
            );
            assert_eq!(
                child_calls(),
                expected_child(child_ptr as usize, 0x0C11_D1EE, version)
            );
            assert_eq!(
                unsafe { wrapper(adapter) }.unwrap().pending.lock().len(),
                0,
                "{kind:?} v{version}"
            );
            unsafe { (ops.put_dma_adapter.unwrap())(adapter) };
            assert_eq!(calls(), [format!("put {lower_ptr:p}")]);
            assert_eq!(live_wrappers(), live, "PutDmaAdapter frees the wrapper");
            assert_eq!(
                l.adapter.dma_operations, lower_table,
                "the lower table is back"
            );
        }
    }
}

#[test]
fn deferred_callbacks_failures_and_cancel() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut l = lower(DMA_OPERATIONS_SIZE3);
    let lower_ptr: A = &mut *l.adapter;
    let (adapter, _) = unsafe { wrap(DmaAdapterType::Substitute, lower_ptr, PCI as P) };
    let ops = unsafe { *(*adapter).dma_operations };
    let child = device_object(0x1A);
    let child_ptr = &*child as *const [usize; 8] as P;
    let pending = || unsafe { wrapper(adapter) }.unwrap().pending.lock().len();
    // The lower refuses: the record is dropped, the status comes back.
    FAIL.with(|f| *f.borrow_mut() = -0x3FFF_FF66);
    let s = unsafe {
        (ops.allocate_adapter_channel.unwrap())(adapter, child_ptr, 1, Some(child_control), p(0xB1))
    };
    assert_eq!((s, pending()), (-0x3FFF_FF66, 0));
    let s = unsafe {
        (ops.get_scatter_gather_list.unwrap())(
            adapter,
            child_ptr,
            p(1),
            p(2),
            3,
            Some(child_list),
            p(0xB2),
            0,
        )
    };
    assert_eq!((s, pending()), (-0x3FFF_FF66, 0));
    FAIL.with(|f| *f.borrow_mut() = 0);
    // The lower keeps the routines and runs them later (as the HAL does when map
    // registers are short): the child still gets its own device object and context.
    DEFER.with(|d| *d.borrow_mut() = true);
    unsafe {
        (ops.get_scatter_gather_list.unwrap())(
            adapter,
            child_ptr,
            p(1),
            p(2),
            3,
            Some(child_list),
            p(0xB3),
            0,
        );
        (ops.allocate_adapter_channel_ex.unwrap())(
            adapter,
            child_ptr,
            p(0x7D),
            1,
            0,
            Some(child_control),
            p(0xB4),
            core::ptr::null_mut(),
        );
        (ops.get_scatter_gather_list_ex.unwrap())(
            adapter,
            child_ptr,
            p(0x7D),
            p(1),
            0,
            3,
            0,
            Some(child_list),
            p(0xB5),
            0,
            None,
            core::ptr::null_mut(),
            core::ptr::null_mut(),
        );
    }
    DEFER.with(|d| *d.borrow_mut() = false);
    assert_eq!(pending(), 3);
    let kept = KEPT.with(|k| core::mem::take(&mut *k.borrow_mut()));
    child_calls();
    unsafe { run_callback(kept[0].0, kept[0].1, 0x5B00) };
    assert_eq!(
        child_calls(),
        [format!("list {child_ptr:p} 0x1a 0x5b00 0xb3")]
    );
    assert_eq!(pending(), 2);
    // CancelAdapterChannel succeeds for transfer context 0x7d: the lower will never run
    // its two records, so they are freed.
    // A cancel naming no transfer context leaves the non-Ex records alone.
    DEFER.with(|d| *d.borrow_mut() = true);
    unsafe {
        (ops.get_scatter_gather_list.unwrap())(
            adapter,
            child_ptr,
            p(1),
            p(2),
            3,
            Some(child_list),
            p(0xB6),
            0,
        );
        (ops.cancel_adapter_channel.unwrap())(adapter, child_ptr, core::ptr::null_mut());
    }
    DEFER.with(|d| *d.borrow_mut() = false);
    assert_eq!(pending(), 3);
    unsafe { (ops.cancel_adapter_channel.unwrap())(adapter, child_ptr, p(0x7D)) };
    assert_eq!(pending(), 1);
    calls();
    let live = live_wrappers();
    unsafe { (ops.put_dma_adapter.unwrap())(adapter) };
    assert_eq!(live_wrappers(), live - 1);
    assert_eq!(calls(), [format!("put {lower_ptr:p}")]);
    // A NULL adapter is refused by every routine without touching anything.
    unsafe {
        (ops.free_adapter_channel.unwrap())(core::ptr::null_mut());
        assert_eq!((ops.get_dma_alignment.unwrap())(core::ptr::null_mut()), 1);
    }
    assert!(calls().is_empty());
}

#[test]
fn refused_wraps_hand_out_the_lower_adapter() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let live = live_wrappers();
    let (a, r) = unsafe { wrap(DmaAdapterType::Passthru, core::ptr::null_mut(), PCI as P) };
    assert_eq!((a, r), (core::ptr::null_mut(), None));
    for kind in [
        DmaAdapterType::NoIntercept,
        DmaAdapterType::Substitute,
        DmaAdapterType::Passthru,
    ] {
        let mut l = lower(112);
        let lower_ptr: A = &mut *l.adapter;
        let table: *mut DmaOperations = &mut *l.table;
        let (a, r) = unsafe { wrap(kind, lower_ptr, PCI as P) };
        assert_eq!(a, lower_ptr);
        assert_eq!(l.adapter.dma_operations, table);
        let expected = (kind != DmaAdapterType::NoIntercept).then_some(Refusal::UnknownSize(112));
        assert_eq!(r, expected);
    }
    let mut l = lower(DMA_OPERATIONS_SIZE3);
    l.adapter.dma_operations = core::ptr::null_mut();
    let lower_ptr: A = &mut *l.adapter;
    let (a, r) = unsafe { wrap(DmaAdapterType::Substitute, lower_ptr, PCI as P) };
    assert_eq!((a, r), (lower_ptr, Some(Refusal::NoOperations)));
    // InterceptDmaAdapter = 0: the lower adapter as it is, its own table.
    let mut l = lower(DMA_OPERATIONS_SIZE3);
    let lower_ptr: A = &mut *l.adapter;
    let (a, r) = unsafe { wrap(DmaAdapterType::NoIntercept, lower_ptr, PCI as P) };
    assert_eq!((a, r), (lower_ptr, None));
    assert_eq!(
        l.adapter.dma_operations,
        &mut *l.table as *mut DmaOperations
    );
    assert_eq!(live_wrappers(), live);
}
