//! Kernel notifications and cross-processor work for [`super::os::KernelOs`]: bug-check,
//! process-exit, image-load, DbgPrint, processor-add and power-state callbacks delivered
//! to the driver's
//! [`CallbackSink`], `run_on_processor` through a targeted high-importance DPC, and the
//! suspend-time capture of every processor.

use core::ffi::c_void;
use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};

use windows_sys::Wdk::System::SystemServices::KeQueryActiveProcessorCountEx;
use windows_sys::Win32::Foundation::UNICODE_STRING;
use xen_include::status::{NtStatus, STATUS_INVALID_PARAMETER, STATUS_UNSUCCESSFUL};

use super::log::{log, Level};
use super::ntoskrnl as nt;
use super::os::UnicodeName;
use super::registry;
use crate::os::{CallbackHandle, CallbackSink, KernelCallback, ModuleInfo};

/// `STATUS_OBJECTID_EXISTS`: the callback kind is registered already.
const STATUS_OBJECTID_EXISTS: NtStatus = 0xC000_002A_u32 as i32;
/// `HighImportance`.
const HIGH_IMPORTANCE: i32 = 2;
/// `SystemModeImage` in `IMAGE_INFO.Properties`.
const SYSTEM_MODE_IMAGE: u32 = 1 << 8;

/// Storage of a `KDPC` (0x40 bytes on x64).
#[repr(C, align(16))]
struct Kdpc([u8; 0x40]);
/// Storage of a `KEVENT` (0x18 bytes on x64).
#[repr(C, align(16))]
struct Kevent([u8; 0x18]);

/// The function that finds the driver's sink (installed once by the entry point).
static SINK: AtomicPtr<()> = AtomicPtr::new(ptr::null_mut());
/// Which kinds are registered, one flag per kind.
static BUGCHECK_REGISTERED: AtomicBool = AtomicBool::new(false);
static PROCESS_REGISTERED: AtomicBool = AtomicBool::new(false);
static IMAGE_REGISTERED: AtomicBool = AtomicBool::new(false);
static DEBUG_PRINT_REGISTERED: AtomicBool = AtomicBool::new(false);
static PROCESSOR_CHANGE_REGISTERED: AtomicBool = AtomicBool::new(false);
static POWER_STATE_REGISTERED: AtomicBool = AtomicBool::new(false);
/// `KeRegisterProcessorChangeCallback`'s handle, or null.
static PROCESSOR_CHANGE_HANDLE: AtomicPtr<c_void> = AtomicPtr::new(ptr::null_mut());
/// `ExRegisterCallback`'s registration on `\Callback\PowerState`, and the callback object.
static POWER_STATE_HANDLE: AtomicPtr<c_void> = AtomicPtr::new(ptr::null_mut());
static POWER_STATE_OBJECT: AtomicPtr<c_void> = AtomicPtr::new(ptr::null_mut());

/// `KeProcessorAddCompleteNotify`.
const KE_PROCESSOR_ADD_COMPLETE_NOTIFY: u32 = 1;
/// `PO_CB_SYSTEM_STATE_LOCK`.
const PO_CB_SYSTEM_STATE_LOCK: usize = 3;

/// `KE_PROCESSOR_CHANGE_NOTIFY_CONTEXT` (x64): `State`, `NtNumber`, `Status`,
/// `ProcNumber`.
#[repr(C)]
struct ProcessorChangeNotifyContext {
    state: u32,
    nt_number: u32,
    status: i32,
    proc_number: nt::ProcessorNumber,
}

/// `VOID PROCESSOR_CALLBACK_FUNCTION(PVOID, PKE_PROCESSOR_CHANGE_NOTIFY_CONTEXT, PNTSTATUS)`.
type ProcessorCallback =
    unsafe extern "system" fn(*mut c_void, *const ProcessorChangeNotifyContext, *mut i32);
/// `VOID CALLBACK_FUNCTION(PVOID CallbackContext, PVOID Argument1, PVOID Argument2)`.
type CallbackFunction = unsafe extern "system" fn(*mut c_void, *mut c_void, *mut c_void);

// Registration routines whose `windows-sys` signatures lost their callback types.
#[link(name = "ntoskrnl.exe", kind = "raw-dylib", modifiers = "+verbatim")]
unsafe extern "system" {
    fn KeRegisterProcessorChangeCallback(
        callback: ProcessorCallback,
        context: *mut c_void,
        flags: u32,
    ) -> *mut c_void;
    fn KeDeregisterProcessorChangeCallback(handle: *mut c_void);
    fn ExCreateCallback(
        object: *mut *mut c_void,
        attributes: *const nt::ObjectAttributes,
        create: u8,
        allow_multiple: u8,
    ) -> i32;
    fn ExRegisterCallback(
        object: *mut c_void,
        callback: CallbackFunction,
        context: *mut c_void,
    ) -> *mut c_void;
    fn ExUnregisterCallback(registration: *mut c_void);
    fn ObfDereferenceObject(object: *mut c_void) -> isize;
}
/// Address of the kernel's `KiBugCheckData` (code + four parameters), or 0.
static BUGCHECK_DATA: AtomicUsize = AtomicUsize::new(0);

/// `KBUGCHECK_CALLBACK_RECORD` storage (0x40 bytes), owned by the kernel while registered.
struct BugCheckRecord(core::cell::UnsafeCell<[u64; 8]>);
// SAFETY: only the kernel touches the record while registered; register/deregister are
// serialised by REGISTERED.
unsafe impl Sync for BugCheckRecord {}
static BUGCHECK_RECORD: BugCheckRecord = BugCheckRecord(core::cell::UnsafeCell::new([0; 8]));

/// Install the function that returns the sink kernel notifications are delivered to.
pub fn set_sink(sink: fn() -> Option<&'static dyn CallbackSink>) {
    SINK.store(sink as *mut (), Ordering::Release);
}

fn sink() -> Option<&'static dyn CallbackSink> {
    let f = SINK.load(Ordering::Acquire);
    if f.is_null() {
        return None;
    }
    // SAFETY: SINK only ever holds a `fn() -> Option<&'static dyn CallbackSink>` stored by
    // `set_sink`.
    let f: fn() -> Option<&'static dyn CallbackSink> = unsafe { core::mem::transmute(f) };
    f()
}

fn registered(kind: KernelCallback) -> &'static AtomicBool {
    match kind {
        KernelCallback::BugCheck => &BUGCHECK_REGISTERED,
        KernelCallback::ProcessNotify => &PROCESS_REGISTERED,
        KernelCallback::ImageLoad => &IMAGE_REGISTERED,
        KernelCallback::DebugPrint => &DEBUG_PRINT_REGISTERED,
        KernelCallback::ProcessorChange => &PROCESSOR_CHANGE_REGISTERED,
        KernelCallback::PowerState => &POWER_STATE_REGISTERED,
    }
}

const fn index(kind: KernelCallback) -> usize {
    match kind {
        KernelCallback::BugCheck => 0,
        KernelCallback::ProcessNotify => 1,
        KernelCallback::ImageLoad => 2,
        KernelCallback::DebugPrint => 3,
        KernelCallback::ProcessorChange => 4,
        KernelCallback::PowerState => 5,
    }
}

const KINDS: [KernelCallback; 6] = [
    KernelCallback::BugCheck,
    KernelCallback::ProcessNotify,
    KernelCallback::ImageLoad,
    KernelCallback::DebugPrint,
    KernelCallback::ProcessorChange,
    KernelCallback::PowerState,
];

unsafe extern "system" fn processor_change(
    _context: *mut c_void,
    change: *const ProcessorChangeNotifyContext,
    _status: *mut i32,
) {
    if change.is_null() {
        return;
    }
    // SAFETY: the kernel passes a valid notify context for the call.
    let (state, cpu) = unsafe { ((*change).state, (*change).nt_number) };
    if state != KE_PROCESSOR_ADD_COMPLETE_NOTIFY {
        return;
    }
    if let Some(sink) = sink() {
        sink.processor_added(cpu);
    }
}

unsafe extern "system" fn power_state(
    _context: *mut c_void,
    argument1: *mut c_void,
    argument2: *mut c_void,
) {
    if argument1 as usize != PO_CB_SYSTEM_STATE_LOCK {
        return;
    }
    if let Some(sink) = sink() {
        sink.system_state(!argument2.is_null());
    }
}

/// `ExCreateCallback(\Callback\PowerState)` + `ExRegisterCallback`.
///
/// # Safety
/// At PASSIVE_LEVEL; `power_state` stays valid while registered.
unsafe fn register_power_state() -> NtStatus {
    let mut name = UnicodeName::new("\\Callback\\PowerState".encode_utf16().collect());
    let name = name.as_unicode_string();
    let attributes = nt::ObjectAttributes {
        length: core::mem::size_of::<nt::ObjectAttributes>() as u32,
        root_directory: ptr::null_mut(),
        object_name: &name,
        attributes: nt::OBJ_CASE_INSENSITIVE | nt::OBJ_KERNEL_HANDLE,
        security_descriptor: ptr::null_mut(),
        security_quality_of_service: ptr::null_mut(),
    };
    let mut object: *mut c_void = ptr::null_mut();
    // SAFETY: `attributes` and `name` outlive the call; the kernel writes `object` only.
    let status = unsafe { ExCreateCallback(&mut object, &attributes, 0, 1) };
    if status < 0 {
        return status;
    }
    // SAFETY: `object` was just returned referenced by ExCreateCallback.
    let registration = unsafe { ExRegisterCallback(object, power_state, ptr::null_mut()) };
    if registration.is_null() {
        // SAFETY: drops the reference ExCreateCallback took.
        unsafe { ObfDereferenceObject(object) };
        return STATUS_UNSUCCESSFUL;
    }
    POWER_STATE_OBJECT.store(object, Ordering::Release);
    POWER_STATE_HANDLE.store(registration, Ordering::Release);
    0
}

unsafe extern "system" fn bug_check(_buffer: *mut c_void, _length: u32) {
    let data = BUGCHECK_DATA.load(Ordering::Relaxed) as *const usize;
    let (code, parameters) = if data.is_null() {
        (0, [0; 4])
    } else {
        // SAFETY: KiBugCheckData is the kernel's array of five ULONG_PTRs, filled in before
        // bug-check callbacks run.
        unsafe {
            (
                *data as u32,
                [*data.add(1), *data.add(2), *data.add(3), *data.add(4)],
            )
        }
    };
    if let Some(sink) = sink() {
        sink.bug_check(code, parameters);
    }
}

unsafe extern "system" fn process_notify(_parent: *mut c_void, _process: *mut c_void, create: u8) {
    if create != 0 {
        return;
    }
    // Process-exit notifications run in the context of the exiting process, so CR3 is its
    // page-table root.
    let cr3: u64;
    // SAFETY: reading CR3 at IRQL PASSIVE in kernel mode has no side effects.
    unsafe {
        core::arch::asm!("mov {}, cr3", out(reg) cr3, options(nomem, nostack, preserves_flags))
    };
    if let Some(sink) = sink() {
        sink.process_exit(cr3 & !0xFFF);
    }
}

unsafe extern "system" fn image_loaded(
    name: *const UNICODE_STRING,
    _process: *mut c_void,
    info: *const nt::ImageInfo,
) {
    if info.is_null() {
        return;
    }
    // SAFETY: the kernel passes a valid IMAGE_INFO and (possibly null) name for the call.
    let (properties, base, size) =
        unsafe { ((*info).properties, (*info).image_base, (*info).image_size) };
    if properties & SYSTEM_MODE_IMAGE == 0 {
        return;
    }
    let name = if name.is_null() {
        alloc::string::String::new()
    } else {
        // SAFETY: a counted UTF-16 string valid for the call; Length is in bytes.
        unsafe {
            let units = (*name).Length as usize / 2;
            if (*name).Buffer.is_null() {
                alloc::string::String::new()
            } else {
                registry::from_utf16(core::slice::from_raw_parts((*name).Buffer, units))
            }
        }
    };
    if let Some(sink) = sink() {
        sink.image_loaded(&ModuleInfo {
            base: base as usize,
            size,
            name,
        });
    }
}

unsafe extern "system" fn debug_print(output: *const nt::AnsiString, _component: u32, level: u32) {
    if output.is_null() {
        return;
    }
    // SAFETY: a counted ANSI string valid for the call.
    let text = unsafe {
        if (*output).buffer.is_null() {
            return;
        }
        core::slice::from_raw_parts((*output).buffer, (*output).length as usize)
    };
    if let Some(sink) = sink() {
        sink.debug_print(level, text);
    }
}

/// Register the kernel callback `kind`; one registration per kind.
pub fn register(kind: KernelCallback) -> Result<CallbackHandle, NtStatus> {
    let slot = registered(kind);
    if slot.swap(true, Ordering::AcqRel) {
        return Err(STATUS_OBJECTID_EXISTS);
    }
    // SAFETY: each routine has the signature the kernel expects for its kind and stays
    // valid while the image is loaded; deregistration happens before unload.
    let status = unsafe {
        match kind {
            KernelCallback::BugCheck => {
                let mut name = UnicodeName::new("KiBugCheckData".encode_utf16().collect());
                let name = name.as_unicode_string();
                BUGCHECK_DATA.store(
                    nt::MmGetSystemRoutineAddress(&name) as usize,
                    Ordering::Relaxed,
                );
                let record = BUGCHECK_RECORD.0.get().cast::<c_void>();
                if nt::KeRegisterBugCheckCallback(
                    record,
                    bug_check,
                    ptr::null_mut(),
                    0,
                    c"xen".as_ptr().cast(),
                ) != 0
                {
                    0
                } else {
                    STATUS_UNSUCCESSFUL
                }
            }
            KernelCallback::ProcessNotify => nt::PsSetCreateProcessNotifyRoutine(process_notify, 0),
            KernelCallback::ImageLoad => nt::PsSetLoadImageNotifyRoutine(image_loaded),
            KernelCallback::DebugPrint => nt::DbgSetDebugPrintCallback(debug_print, 1),
            KernelCallback::ProcessorChange => {
                // Without KE_PROCESSOR_CHANGE_ADD_EXISTING: the driver maps the processors
                // active at load itself; only later additions are notified.
                let handle =
                    KeRegisterProcessorChangeCallback(processor_change, ptr::null_mut(), 0);
                if handle.is_null() {
                    STATUS_UNSUCCESSFUL
                } else {
                    PROCESSOR_CHANGE_HANDLE.store(handle, Ordering::Release);
                    0
                }
            }
            KernelCallback::PowerState => register_power_state(),
        }
    };
    if status < 0 {
        slot.store(false, Ordering::Release);
        log(
            Level::Warning,
            format_args!("register_callback({kind:?}) failed ({status:#010x})"),
        );
        return Err(status);
    }
    Ok(CallbackHandle(index(kind) + 1))
}

/// Undo [`register`].
pub fn deregister(handle: CallbackHandle) {
    let Some(kind) = handle.0.checked_sub(1).and_then(|i| KINDS.get(i)).copied() else {
        log(
            Level::Error,
            format_args!("deregister_callback: bad handle {:#x}", handle.0),
        );
        return;
    };
    if !registered(kind).load(Ordering::Acquire) {
        return;
    }
    // SAFETY: the routine was registered by `register` for this kind.
    unsafe {
        match kind {
            KernelCallback::BugCheck => {
                nt::KeDeregisterBugCheckCallback(BUGCHECK_RECORD.0.get().cast());
            }
            KernelCallback::ProcessNotify => {
                nt::PsSetCreateProcessNotifyRoutine(process_notify, 1);
            }
            KernelCallback::ImageLoad => {
                nt::PsRemoveLoadImageNotifyRoutine(image_loaded);
            }
            KernelCallback::DebugPrint => {
                nt::DbgSetDebugPrintCallback(debug_print, 0);
            }
            KernelCallback::ProcessorChange => {
                let handle = PROCESSOR_CHANGE_HANDLE.swap(ptr::null_mut(), Ordering::AcqRel);
                if !handle.is_null() {
                    KeDeregisterProcessorChangeCallback(handle);
                }
            }
            KernelCallback::PowerState => {
                let registration = POWER_STATE_HANDLE.swap(ptr::null_mut(), Ordering::AcqRel);
                if !registration.is_null() {
                    ExUnregisterCallback(registration);
                }
                let object = POWER_STATE_OBJECT.swap(ptr::null_mut(), Ordering::AcqRel);
                if !object.is_null() {
                    ObfDereferenceObject(object);
                }
            }
        }
    }
    registered(kind).store(false, Ordering::Release);
}

/// What the DPC runs, and the event it signals when done.
struct Call<'a> {
    f: &'a mut dyn FnMut(),
    event: *mut Kevent,
}

unsafe extern "system" fn run_call(
    _dpc: *mut c_void,
    context: *mut c_void,
    _a1: *mut c_void,
    _a2: *mut c_void,
) {
    // SAFETY: `context` is the Call of `run_on_processor`, which waits for the event below
    // before its frame goes away.
    unsafe {
        let call = &mut *context.cast::<Call<'_>>();
        (call.f)();
        nt::KeSetEvent(call.event.cast(), 0, 0);
    }
}

/// Run `f` on processor `cpu` in a targeted high-importance DPC and wait for it (IRQL
/// below DISPATCH_LEVEL).
pub fn run_on_processor(cpu: u32, f: &mut dyn FnMut()) -> Result<(), NtStatus> {
    // SAFETY: no preconditions.
    if cpu >= unsafe { KeQueryActiveProcessorCountEx(0xFFFF) } {
        return Err(STATUS_INVALID_PARAMETER);
    }
    let mut number = nt::ProcessorNumber::default();
    // SAFETY: `number` is writable.
    let status = unsafe { nt::KeGetProcessorNumberFromIndex(cpu, &mut number) };
    if status < 0 {
        return Err(status);
    }
    let mut dpc = Kdpc([0; 0x40]);
    let mut event = Kevent([0; 0x18]);
    let mut call = Call {
        f,
        event: &mut event,
    };
    // SAFETY: the DPC, event and call live in this frame until the wait returns, and the
    // kernel stack of a waiting kernel-mode thread stays resident.
    unsafe {
        nt::KeInitializeEvent((&mut event as *mut Kevent).cast(), 0, 0);
        let dpc = (&mut dpc as *mut Kdpc).cast::<c_void>();
        nt::KeInitializeDpc(dpc, run_call, (&mut call as *mut Call<'_>).cast());
        nt::KeSetImportanceDpc(dpc, HIGH_IMPORTANCE);
        let status = nt::KeSetTargetProcessorDpcEx(dpc, &number);
        if status < 0 {
            return Err(status);
        }
        nt::KeInsertQueueDpc(dpc, ptr::null_mut(), ptr::null_mut());
        nt::KeWaitForSingleObject((&mut event as *mut Kevent).cast(), 0, 0, 0, ptr::null());
    }
    Ok(())
}

/// `DISPATCH_LEVEL`.
const DISPATCH_LEVEL: u64 = 2;
/// `HIGH_LEVEL`.
const HIGH_LEVEL: u64 = 15;

/// Phases of a capture, published by the calling processor.
const PHASE_CAPTURE: u32 = 0;
const PHASE_DISABLE: u32 = 1;
const PHASE_ENABLE: u32 = 2;
const PHASE_RELEASE: u32 = 3;

/// Shared by the capturing processor and the captured ones.
struct Capture {
    phase: core::sync::atomic::AtomicU32,
    arrived: core::sync::atomic::AtomicU32,
    disabled: core::sync::atomic::AtomicU32,
    enabled: core::sync::atomic::AtomicU32,
    exited: core::sync::atomic::AtomicU32,
}

fn read_cr8() -> u64 {
    let irql: u64;
    // SAFETY: reading CR8 (the IRQL) in kernel mode has no side effects.
    unsafe {
        core::arch::asm!("mov {}, cr8", out(reg) irql, options(nomem, nostack, preserves_flags))
    };
    irql
}

/// `KeRaiseIrql`/`KeLowerIrql` on x64: the IRQL is CR8.
///
/// # Safety
/// Kernel mode only; callers restore the previous level.
unsafe fn write_cr8(irql: u64) {
    // SAFETY: forwarded contract.
    unsafe {
        core::arch::asm!("mov cr8, {}", in(reg) irql, options(nomem, nostack, preserves_flags))
    };
}

fn wait_for(counter: &core::sync::atomic::AtomicU32, value: u32) {
    while counter.load(Ordering::Acquire) < value {
        core::hint::spin_loop();
    }
}

fn wait_phase(capture: &Capture, phase: u32) {
    while capture.phase.load(Ordering::Acquire) < phase {
        core::hint::spin_loop();
    }
}

unsafe extern "system" fn captured(
    _dpc: *mut c_void,
    context: *mut c_void,
    _a1: *mut c_void,
    _a2: *mut c_void,
) {
    // SAFETY: `context` is the Capture of `capture_processors`, which waits for every
    // captured processor to count itself in `exited` before its frame goes away.
    let capture = unsafe { &*context.cast::<Capture>() };
    capture.arrived.fetch_add(1, Ordering::AcqRel);
    wait_phase(capture, PHASE_DISABLE);
    // SAFETY: at DISPATCH_LEVEL in a DPC; interrupts are re-enabled below before return.
    unsafe { core::arch::asm!("cli", options(nomem, nostack)) };
    capture.disabled.fetch_add(1, Ordering::AcqRel);
    wait_phase(capture, PHASE_ENABLE);
    // SAFETY: undoes the cli above.
    unsafe { core::arch::asm!("sti", options(nomem, nostack)) };
    capture.enabled.fetch_add(1, Ordering::AcqRel);
    wait_phase(capture, PHASE_RELEASE);
    capture.exited.fetch_add(1, Ordering::AcqRel);
}

/// `SyncCapture`/`SyncDisableInterrupts`/`SyncEnableInterrupts`/`SyncRelease`: run
/// `at_high_level` with every processor captured and interrupts off, then
/// `at_dispatch_level` with interrupts back on, then release the others. Called below
/// DISPATCH_LEVEL.
pub fn capture_processors(
    at_high_level: &mut dyn FnMut(),
    at_dispatch_level: &mut dyn FnMut(),
) -> Result<(), NtStatus> {
    use core::sync::atomic::AtomicU32;
    // SAFETY: no preconditions.
    let count = unsafe { KeQueryActiveProcessorCountEx(0xFFFF) };
    let capture = Capture {
        phase: AtomicU32::new(PHASE_CAPTURE),
        arrived: AtomicU32::new(0),
        disabled: AtomicU32::new(0),
        enabled: AtomicU32::new(0),
        exited: AtomicU32::new(0),
    };
    // One DPC per processor, in non-paged pool (the global allocator), freed after every
    // captured processor has left its DPC.
    let mut dpcs: alloc::vec::Vec<Kdpc> = alloc::vec::Vec::new();
    dpcs.try_reserve_exact(count as usize)
        .map_err(|_| xen_include::status::STATUS_INSUFFICIENT_RESOURCES)?;
    let old_irql = read_cr8();
    // SAFETY: raising to DISPATCH_LEVEL pins this thread to the current processor; it is
    // restored before returning.
    unsafe { write_cr8(DISPATCH_LEVEL) };
    // SAFETY: a null PROCESSOR_NUMBER pointer is allowed.
    let me = unsafe {
        windows_sys::Wdk::System::SystemServices::KeGetCurrentProcessorNumberEx(ptr::null_mut())
    };
    let mut others = 0u32;
    for cpu in 0..count {
        if cpu == me {
            continue;
        }
        let mut number = nt::ProcessorNumber::default();
        dpcs.push(Kdpc([0; 0x40]));
        let Some(dpc) = dpcs.last_mut() else { break };
        let dpc = (dpc as *mut Kdpc).cast::<c_void>();
        // SAFETY: `dpc` lives in `dpcs` (capacity reserved: never moves) until every DPC has
        // exited; `capture` outlives them likewise.
        let queued = unsafe {
            nt::KeGetProcessorNumberFromIndex(cpu, &mut number) >= 0 && {
                nt::KeInitializeDpc(
                    dpc,
                    captured,
                    (&capture as *const Capture).cast_mut().cast(),
                );
                nt::KeSetImportanceDpc(dpc, HIGH_IMPORTANCE);
                nt::KeSetTargetProcessorDpcEx(dpc, &number) >= 0
                    && nt::KeInsertQueueDpc(dpc, ptr::null_mut(), ptr::null_mut()) != 0
            }
        };
        if queued {
            others += 1;
        } else {
            log(
                Level::Error,
                format_args!("capture_processors: cannot target processor {cpu}"),
            );
        }
    }
    wait_for(&capture.arrived, others);
    capture.phase.store(PHASE_DISABLE, Ordering::Release);
    // SAFETY: interrupts off on this processor too, then HIGH_LEVEL; both undone below.
    unsafe {
        core::arch::asm!("cli", options(nomem, nostack));
        write_cr8(HIGH_LEVEL);
    }
    wait_for(&capture.disabled, others);
    at_high_level();
    // SAFETY: back to DISPATCH_LEVEL with interrupts on.
    unsafe {
        write_cr8(DISPATCH_LEVEL);
        core::arch::asm!("sti", options(nomem, nostack));
    }
    capture.phase.store(PHASE_ENABLE, Ordering::Release);
    wait_for(&capture.enabled, others);
    at_dispatch_level();
    capture.phase.store(PHASE_RELEASE, Ordering::Release);
    wait_for(&capture.exited, others);
    // SAFETY: restore the caller's IRQL.
    unsafe { write_cr8(old_irql) };
    drop(dpcs);
    Ok(())
}
