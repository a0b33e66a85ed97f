//! Kernel dispatcher objects owned by Rust code: events, system threads with a wake event
//! and an alert flag (upstream `thread.c`), work items, DPCs targeted at one processor and
//! timers. Each object lives in a `Box` (the kernel keeps pointers into it) and is torn down
//! in `Drop` in the order the kernel requires.

use alloc::boxed::Box;
use alloc::sync::Arc;
use core::cell::UnsafeCell;
use core::ffi::c_void;
use core::ptr;
use core::sync::atomic::{AtomicBool, Ordering};

use windows_sys::Wdk::Foundation::{DEVICE_OBJECT, KEVENT};
use windows_sys::Wdk::System::SystemServices::{DelayedWorkQueue, KTIMER};
use windows_sys::Win32::Foundation::{NTSTATUS, STATUS_TIMEOUT};
use windows_sys::Win32::System::Kernel::{
    NotificationEvent, NotificationTimer, SynchronizationEvent,
};

use super::log::{log, Level};
use super::ntoskrnl::{self as nt, ProcessorNumber};
use crate::os::{DpcHandle, DpcRoutine};

/// `STATUS_INSUFFICIENT_RESOURCES`.
const STATUS_INSUFFICIENT_RESOURCES: NTSTATUS = 0xC000_009A_u32 as i32;
/// `THREAD_ALL_ACCESS` (`STANDARD_RIGHTS_ALL | SPECIFIC_RIGHTS_ALL`).
const THREAD_ALL_ACCESS: u32 = 0x001F_FFFF;
/// `SYNCHRONIZE`.
const SYNCHRONIZE: u32 = 0x0010_0000;
/// `Executive` wait reason.
const EXECUTIVE: i32 = 0;
/// `KernelMode`.
const KERNEL_MODE: i8 = 0;

/// A system thread's start routine.
type StartRoutine = unsafe extern "system" fn(context: *mut c_void);
/// A work item's routine.
type WorkItemRoutine = unsafe extern "system" fn(device: *mut DEVICE_OBJECT, context: *mut c_void);

#[link(name = "ntoskrnl.exe", kind = "raw-dylib", modifiers = "+verbatim")]
unsafe extern "system" {
    fn PsCreateSystemThread(
        handle: *mut *mut c_void,
        access: u32,
        attributes: *const c_void,
        process: *mut c_void,
        client_id: *mut c_void,
        start: StartRoutine,
        context: *mut c_void,
    ) -> NTSTATUS;
    fn PsTerminateSystemThread(status: NTSTATUS) -> NTSTATUS;
    fn ObReferenceObjectByHandle(
        handle: *mut c_void,
        access: u32,
        object_type: *mut c_void,
        mode: i8,
        object: *mut *mut c_void,
        information: *mut c_void,
    ) -> NTSTATUS;
    fn ObfDereferenceObject(object: *mut c_void) -> isize;
    fn KeClearEvent(event: *mut KEVENT);
    fn KeInitializeTimerEx(timer: *mut KTIMER, kind: i32);
    fn KeSetTimerEx(timer: *mut KTIMER, due: i64, period: i32, dpc: *mut c_void) -> u8;
    fn KeCancelTimer(timer: *mut KTIMER) -> u8;
    fn KeRemoveQueueDpc(dpc: *mut c_void) -> u8;
    fn KeFlushQueuedDpcs();
    fn IoAllocateWorkItem(device: *mut DEVICE_OBJECT) -> *mut c_void;
    fn IoQueueWorkItem(
        item: *mut c_void,
        routine: WorkItemRoutine,
        queue: i32,
        context: *mut c_void,
    );
    fn IoFreeWorkItem(item: *mut c_void);
}

/// A `KEVENT`; boxed so its address is stable.
pub struct Event {
    raw: UnsafeCell<KEVENT>,
}

// SAFETY: a KEVENT is designed to be signalled and waited on from any thread; every access
// goes through the kernel's Ke* routines, which synchronise internally.
unsafe impl Sync for Event {}
// SAFETY: as above; the event is not tied to the creating thread.
unsafe impl Send for Event {}

impl Event {
    fn new(kind: i32) -> Box<Event> {
        // SAFETY: a zeroed KEVENT is plain storage; KeInitializeEvent initialises it in place
        // at its final (boxed) address.
        unsafe {
            let event = Box::new(Event {
                raw: UnsafeCell::new(core::mem::zeroed()),
            });
            nt::KeInitializeEvent(event.raw.get().cast(), kind, 0);
            event
        }
    }

    /// A notification event (stays signalled until cleared), not signalled.
    pub fn notification() -> Box<Event> {
        Self::new(NotificationEvent)
    }

    /// A synchronization event (one waiter released per signal), not signalled.
    pub fn synchronization() -> Box<Event> {
        Self::new(SynchronizationEvent)
    }

    /// The `KEVENT` address (for `Os::set_event` and kernel routines).
    pub fn as_ptr(&self) -> *mut KEVENT {
        self.raw.get()
    }

    /// `KeSetEvent`.
    pub fn set(&self) {
        // SAFETY: the event was initialised in `new` and lives as long as `self`.
        unsafe { nt::KeSetEvent(self.as_ptr().cast(), 0, 0) };
    }

    /// `KeClearEvent`.
    pub fn clear(&self) {
        // SAFETY: as in `set`.
        unsafe { KeClearEvent(self.as_ptr()) };
    }

    /// Wait (PASSIVE_LEVEL, or DISPATCH_LEVEL with a zero timeout) for the event;
    /// `timeout_100ns` relative, `None` = forever. `false` on timeout.
    pub fn wait(&self, timeout_100ns: Option<u64>) -> bool {
        let relative = timeout_100ns.map(|t| -(i64::try_from(t).unwrap_or(i64::MAX)));
        let timeout = relative.as_ref().map_or(ptr::null(), |t| t as *const i64);
        // SAFETY: as in `set`; `timeout` is null or points to a local that outlives the call.
        let status = unsafe {
            nt::KeWaitForSingleObject(self.as_ptr().cast(), EXECUTIVE, KERNEL_MODE, 0, timeout)
        };
        status != STATUS_TIMEOUT
    }
}

/// What a system thread's body sees: its wake event and alert flag (upstream
/// `ThreadGetEvent`/`ThreadIsAlerted`).
pub struct ThreadControl {
    event: ThreadEvent,
    alerted: AtomicBool,
}

/// The wake event of a thread: its own, or one made earlier (and never freed) because
/// other code must be able to signal it before the thread exists.
enum ThreadEvent {
    Own(Box<Event>),
    Static(&'static Event),
}

impl core::ops::Deref for ThreadEvent {
    type Target = Event;
    fn deref(&self) -> &Event {
        match self {
            ThreadEvent::Own(event) => event,
            ThreadEvent::Static(event) => event,
        }
    }
}

impl ThreadControl {
    /// Wait until woken or alerted (timeout relative, in 100 ns units), clearing the wake
    /// event; `false` once alerted (the body returns).
    pub fn wait(&self, timeout_100ns: Option<u64>) -> bool {
        self.event.wait(timeout_100ns);
        self.event.clear();
        !self.alerted.load(Ordering::Acquire)
    }

    /// `ThreadWake`.
    pub fn wake(&self) {
        self.event.set();
    }

    /// True once [`SystemThread::join`] alerted the thread.
    pub fn alerted(&self) -> bool {
        self.alerted.load(Ordering::Acquire)
    }

    /// The wake event's address (handed to subsystems that signal it through
    /// `Os::set_event`, e.g. a store watch).
    pub fn event(&self) -> *mut KEVENT {
        self.event.as_ptr()
    }
}

/// What the start routine receives.
struct Start {
    control: Arc<ThreadControl>,
    body: Box<dyn FnOnce(&ThreadControl) + Send>,
}

/// A system thread (upstream `ThreadCreate`): runs `body` with its [`ThreadControl`];
/// [`SystemThread::join`] alerts it and waits for it to return.
pub struct SystemThread {
    control: Arc<ThreadControl>,
    /// The referenced thread object (null once joined).
    object: *mut c_void,
}

// SAFETY: the thread object reference may be used and dropped from any thread.
unsafe impl Send for SystemThread {}
// SAFETY: `&SystemThread` only reaches the shared, internally synchronised control block.
unsafe impl Sync for SystemThread {}

unsafe extern "system" fn thread_start(context: *mut c_void) {
    // SAFETY: `context` is the `Box<Start>` leaked by `spawn`, handed over exactly once.
    let start = unsafe { Box::from_raw(context.cast::<Start>()) };
    let Start { control, body } = *start;
    body(&control);
    drop(control);
    // SAFETY: called on the system thread itself, as its last action.
    unsafe { PsTerminateSystemThread(0) };
}

impl SystemThread {
    /// Create the thread (PASSIVE_LEVEL) with a wake event of its own.
    pub fn spawn(body: Box<dyn FnOnce(&ThreadControl) + Send>) -> Result<SystemThread, NTSTATUS> {
        Self::start(ThreadEvent::Own(Event::notification()), body)
    }

    /// Create the thread (PASSIVE_LEVEL) woken by `event`, which may be signalled before
    /// and after the thread's life.
    pub fn spawn_on(
        event: &'static Event,
        body: Box<dyn FnOnce(&ThreadControl) + Send>,
    ) -> Result<SystemThread, NTSTATUS> {
        Self::start(ThreadEvent::Static(event), body)
    }

    fn start(
        event: ThreadEvent,
        body: Box<dyn FnOnce(&ThreadControl) + Send>,
    ) -> Result<SystemThread, NTSTATUS> {
        let control = Arc::new(ThreadControl {
            event,
            alerted: AtomicBool::new(false),
        });
        let start = Box::into_raw(Box::new(Start {
            control: control.clone(),
            body,
        }));
        let mut handle: *mut c_void = ptr::null_mut();
        // SAFETY: `start` is handed to the new thread, which takes ownership; on failure it
        // is reclaimed here (no thread was created).
        let status = unsafe {
            PsCreateSystemThread(
                &mut handle,
                THREAD_ALL_ACCESS,
                ptr::null(),
                ptr::null_mut(),
                ptr::null_mut(),
                thread_start,
                start.cast(),
            )
        };
        if status < 0 {
            // SAFETY: no thread took `start`.
            drop(unsafe { Box::from_raw(start) });
            log(
                Level::Error,
                format_args!("PsCreateSystemThread failed ({status:#010x})"),
            );
            return Err(status);
        }
        let mut object: *mut c_void = ptr::null_mut();
        // SAFETY: `handle` is the kernel handle just returned; a null object type skips the
        // type check (the handle is a thread by construction).
        let status = unsafe {
            ObReferenceObjectByHandle(
                handle,
                SYNCHRONIZE,
                ptr::null_mut(),
                KERNEL_MODE,
                &mut object,
                ptr::null_mut(),
            )
        };
        // SAFETY: the handle is ours; the thread keeps running without it.
        unsafe { nt::ZwClose(handle) };
        if status < 0 {
            // The thread runs but cannot be waited for: stop it as soon as it looks.
            control.alerted.store(true, Ordering::Release);
            control.wake();
            return Err(status);
        }
        Ok(SystemThread { control, object })
    }

    /// The thread's control block (to wake it).
    pub fn control(&self) -> &ThreadControl {
        &self.control
    }

    /// `ThreadWake`.
    pub fn wake(&self) {
        self.control.wake();
    }

    /// `ThreadAlert` + `ThreadJoin`: ask the body to return and wait for the thread to end
    /// (PASSIVE_LEVEL, not from the thread itself).
    pub fn join(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if self.object.is_null() {
            return;
        }
        self.control.alerted.store(true, Ordering::Release);
        self.control.wake();
        // SAFETY: `object` is the referenced thread object; waiting on a thread object
        // returns when it terminates; the reference is dropped once.
        unsafe {
            nt::KeWaitForSingleObject(self.object, EXECUTIVE, KERNEL_MODE, 0, ptr::null());
            ObfDereferenceObject(self.object);
        }
        self.object = ptr::null_mut();
    }
}

impl Drop for SystemThread {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The shared part of a work item: whether it is queued.
struct WorkState {
    queued: AtomicBool,
}

/// What a queued work item's routine receives.
struct WorkContext {
    state: Arc<WorkState>,
    work: Box<dyn FnOnce() + Send>,
}

unsafe extern "system" fn work_item_routine(_device: *mut DEVICE_OBJECT, context: *mut c_void) {
    // SAFETY: `context` is the `Box<WorkContext>` leaked by `queue`, handed over once.
    let context = unsafe { Box::from_raw(context.cast::<WorkContext>()) };
    let WorkContext { state, work } = *context;
    state.queued.store(false, Ordering::Release);
    work();
}

/// An `IO_WORKITEM` of a device: runs one closure at a time at PASSIVE_LEVEL in a system
/// worker thread (the device stays referenced while it is queued).
pub struct WorkItem {
    item: *mut c_void,
    state: Arc<WorkState>,
}

// SAFETY: an IO_WORKITEM may be queued and freed from any thread.
unsafe impl Send for WorkItem {}
// SAFETY: `queue` is guarded by the atomic `queued` flag.
unsafe impl Sync for WorkItem {}

impl WorkItem {
    /// `IoAllocateWorkItem` for `device`.
    ///
    /// # Safety
    /// `device` is a valid device object that outlives the work item.
    pub unsafe fn new(device: *mut DEVICE_OBJECT) -> Result<WorkItem, NTSTATUS> {
        // SAFETY: forwarded caller contract.
        let item = unsafe { IoAllocateWorkItem(device) };
        if item.is_null() {
            return Err(STATUS_INSUFFICIENT_RESOURCES);
        }
        Ok(WorkItem {
            item,
            state: Arc::new(WorkState {
                queued: AtomicBool::new(false),
            }),
        })
    }

    /// Queue `work` (DelayedWorkQueue); `false` (and `work` dropped) while the previous one
    /// has not started yet.
    pub fn queue(&self, work: Box<dyn FnOnce() + Send>) -> bool {
        if self.state.queued.swap(true, Ordering::AcqRel) {
            return false;
        }
        self.enqueue(work);
        true
    }

    /// Queue `work`, or run it here (with a log line) while the previous one has not
    /// started yet: a request that must not be lost (a power IRP) goes on either way.
    /// `true` when queued.
    pub fn queue_or_run(&self, work: Box<dyn FnOnce() + Send>) -> bool {
        if self.state.queued.swap(true, Ordering::AcqRel) {
            log(
                Level::Error,
                format_args!("work item busy: running the work in place"),
            );
            work();
            return false;
        }
        self.enqueue(work);
        true
    }

    /// `IoQueueWorkItem` once the `queued` flag is ours.
    fn enqueue(&self, work: Box<dyn FnOnce() + Send>) {
        let context = Box::into_raw(Box::new(WorkContext {
            state: self.state.clone(),
            work,
        }));
        // SAFETY: the item is allocated and not queued (the caller set the flag); the
        // routine takes ownership of `context`.
        unsafe {
            IoQueueWorkItem(
                self.item,
                work_item_routine,
                DelayedWorkQueue,
                context.cast(),
            )
        };
    }

    /// True while queued and not yet started.
    pub fn is_queued(&self) -> bool {
        self.state.queued.load(Ordering::Acquire)
    }
}

impl Drop for WorkItem {
    fn drop(&mut self) {
        if self.is_queued() {
            // Freeing a queued item would corrupt the worker queue: keep it (a leak of one
            // small block) and say so.
            log(
                Level::Error,
                format_args!("work item dropped while queued: not freed"),
            );
            return;
        }
        // SAFETY: allocated in `new`, not queued.
        unsafe { IoFreeWorkItem(self.item) };
    }
}

/// Storage of a `KDPC` (0x40 bytes on x64).
#[repr(C, align(16))]
struct Kdpc([u8; 0x40]);

/// A DPC running `routine` (at DISPATCH_LEVEL), optionally on one processor.
pub struct Dpc {
    raw: UnsafeCell<Kdpc>,
    routine: Box<dyn Fn() + Send + Sync>,
}

// SAFETY: a KDPC is queued and removed through the kernel, which synchronises; the routine
// is Send + Sync.
unsafe impl Sync for Dpc {}
// SAFETY: as above.
unsafe impl Send for Dpc {}

unsafe extern "system" fn dpc_routine(
    _dpc: *mut c_void,
    context: *mut c_void,
    _argument1: *mut c_void,
    _argument2: *mut c_void,
) {
    // SAFETY: `context` is the boxed Dpc that initialised this KDPC; its Drop removes the
    // DPC from the queue and flushes running ones before the box goes away.
    let dpc = unsafe { &*context.cast::<Dpc>() };
    (dpc.routine)();
}

impl Dpc {
    /// `KeInitializeDpc`, targeted at processor `cpu` (system-wide index) when given.
    pub fn new(
        routine: Box<dyn Fn() + Send + Sync>,
        cpu: Option<u32>,
    ) -> Result<Box<Dpc>, NTSTATUS> {
        let dpc = Box::new(Dpc {
            raw: UnsafeCell::new(Kdpc([0; 0x40])),
            routine,
        });
        let context = (&*dpc as *const Dpc).cast_mut().cast::<c_void>();
        // SAFETY: the KDPC storage is at its final (boxed) address and the context is the
        // box itself, valid until Drop.
        unsafe { nt::KeInitializeDpc(dpc.raw.get().cast(), dpc_routine, context) };
        if let Some(cpu) = cpu {
            let mut number = ProcessorNumber::default();
            // SAFETY: `number` is a local written by the kernel; the DPC is not queued yet.
            unsafe {
                let status = nt::KeGetProcessorNumberFromIndex(cpu, &mut number);
                if status < 0 {
                    return Err(status);
                }
                let status = nt::KeSetTargetProcessorDpcEx(dpc.raw.get().cast(), &number);
                if status < 0 {
                    return Err(status);
                }
            }
        }
        Ok(dpc)
    }

    /// `KeInsertQueueDpc`; `false` when it was already queued.
    pub fn queue(&self) -> bool {
        // SAFETY: initialised in `new`, alive while `self` is.
        unsafe {
            nt::KeInsertQueueDpc(self.raw.get().cast(), ptr::null_mut(), ptr::null_mut()) != 0
        }
    }

    fn as_ptr(&self) -> *mut c_void {
        self.raw.get().cast()
    }
}

impl Drop for Dpc {
    fn drop(&mut self) {
        // SAFETY: a queued DPC is removed; one already running finishes before
        // KeFlushQueuedDpcs returns (PASSIVE_LEVEL, which is where DPC owners are dropped).
        unsafe {
            KeRemoveQueueDpc(self.as_ptr());
            KeFlushQueuedDpcs();
        }
    }
}

/// `HighImportance`.
const HIGH_IMPORTANCE: i32 = 2;
/// Marks a live [`OsDpc`] (`"XenOsDpc"`); cleared before the block is freed.
const OS_DPC_MAGIC: u64 = u64::from_le_bytes(*b"XenOsDpc");

/// The pool block behind a [`DpcHandle`] of [`crate::os::Os::dpc_create`]: the `KDPC`
/// (first, so the kernel's pointer is the block's), the routine and its processor.
#[repr(C)]
struct OsDpc {
    raw: UnsafeCell<Kdpc>,
    magic: core::sync::atomic::AtomicU64,
    routine: &'static dyn DpcRoutine,
    cpu: u32,
}

/// The `PKDEFERRED_ROUTINE` of every [`OsDpc`]: runs at DISPATCH_LEVEL on the DPC's
/// processor.
unsafe extern "system" fn os_dpc_routine(
    _dpc: *mut c_void,
    context: *mut c_void,
    _argument1: *mut c_void,
    _argument2: *mut c_void,
) {
    // SAFETY: `context` is the OsDpc block whose KDPC this is; `os_dpc_destroy` removes the
    // DPC from the queue and flushes running instances before freeing the block.
    let dpc = unsafe { &*context.cast::<OsDpc>() };
    dpc.routine.run(dpc.cpu);
}

/// [`crate::os::Os::dpc_create`]: a pool block holding a `KDPC` initialised for
/// `routine`, high importance, targeted at processor `cpu` (system-wide index).
pub fn os_dpc_create(cpu: u32, routine: &'static dyn DpcRoutine) -> Result<DpcHandle, NTSTATUS> {
    let mut number = ProcessorNumber::default();
    // SAFETY: `number` is a local the kernel writes; an index beyond the maximum processor
    // count fails with an error status.
    let status = unsafe { nt::KeGetProcessorNumberFromIndex(cpu, &mut number) };
    if status < 0 {
        log(
            Level::Error,
            format_args!("dpc_create: processor {cpu} out of range ({status:#010x})"),
        );
        return Err(status);
    }
    let layout = core::alloc::Layout::new::<OsDpc>();
    // SAFETY: the layout has a non-zero size.
    let block = unsafe { alloc::alloc::alloc(layout) }.cast::<OsDpc>();
    if block.is_null() {
        log(
            Level::Error,
            format_args!("dpc_create: no pool for the DPC"),
        );
        return Err(STATUS_INSUFFICIENT_RESOURCES);
    }
    // SAFETY: `block` is a fresh allocation of an OsDpc's layout; the KDPC is initialised
    // in place at its final address before anything can queue it, and freed again (never
    // queued) when targeting fails.
    unsafe {
        block.write(OsDpc {
            raw: UnsafeCell::new(Kdpc([0; 0x40])),
            magic: core::sync::atomic::AtomicU64::new(OS_DPC_MAGIC),
            routine,
            cpu,
        });
        let kdpc = (*block).raw.get().cast::<c_void>();
        nt::KeInitializeDpc(kdpc, os_dpc_routine, block.cast());
        nt::KeSetImportanceDpc(kdpc, HIGH_IMPORTANCE);
        let status = nt::KeSetTargetProcessorDpcEx(kdpc, &number);
        if status < 0 {
            log(
                Level::Error,
                format_args!("dpc_create: cannot target processor {cpu} ({status:#010x})"),
            );
            block.drop_in_place();
            alloc::alloc::dealloc(block.cast(), layout);
            return Err(status);
        }
    }
    Ok(DpcHandle(block as usize))
}

/// The live [`OsDpc`] behind `handle`, or `None` (logged) for a null, misaligned or
/// destroyed one.
fn os_dpc(handle: DpcHandle, what: &str) -> Option<&'static OsDpc> {
    let block = handle.0 as *const OsDpc;
    if block.is_null() || !block.is_aligned() {
        log(
            Level::Error,
            format_args!("{what}: invalid DPC handle {:#x}", handle.0),
        );
        return None;
    }
    // SAFETY: handles are only made by `os_dpc_create`; the drivers never use one after
    // `os_dpc_destroy`, which clears the magic first, so a stale handle is caught while
    // its pool block is not reused.
    let dpc = unsafe { &*block };
    if dpc.magic.load(Ordering::Acquire) != OS_DPC_MAGIC {
        log(
            Level::Error,
            format_args!("{what}: unknown DPC handle {:#x}", handle.0),
        );
        return None;
    }
    Some(dpc)
}

/// [`crate::os::Os::dpc_queue`]: `KeInsertQueueDpc`, at any IRQL.
pub fn os_dpc_queue(handle: DpcHandle) -> bool {
    let Some(dpc) = os_dpc(handle, "dpc_queue") else {
        return false;
    };
    // SAFETY: the KDPC was initialised by `os_dpc_create` and lives until `os_dpc_destroy`.
    unsafe { nt::KeInsertQueueDpc(dpc.raw.get().cast(), ptr::null_mut(), ptr::null_mut()) != 0 }
}

/// [`crate::os::Os::dpc_destroy`]: `KeRemoveQueueDpc` + `KeFlushQueuedDpcs`, then free the
/// block. PASSIVE_LEVEL; the caller queues it no more.
pub fn os_dpc_destroy(handle: DpcHandle) {
    crate::irql::check_at_most(
        crate::irql::PASSIVE_LEVEL,
        "dpc_destroy (KeFlushQueuedDpcs)",
    );
    let Some(dpc) = os_dpc(handle, "dpc_destroy") else {
        return;
    };
    dpc.magic.store(0, Ordering::Release);
    let block = (dpc as *const OsDpc).cast_mut();
    // SAFETY: the DPC is taken off its queue, and KeFlushQueuedDpcs (PASSIVE_LEVEL) returns
    // only once every running instance finished, so nothing uses the block when it is
    // dropped and freed with the layout it was allocated with.
    unsafe {
        KeRemoveQueueDpc(dpc.raw.get().cast());
        KeFlushQueuedDpcs();
        block.drop_in_place();
        alloc::alloc::dealloc(block.cast(), core::alloc::Layout::new::<OsDpc>());
    }
}

/// A notification `KTIMER` whose expiry queues a [`Dpc`].
pub struct Timer {
    raw: Box<UnsafeCell<KTIMER>>,
    dpc: Box<Dpc>,
}

// SAFETY: a KTIMER is set and cancelled through the kernel, which synchronises.
unsafe impl Sync for Timer {}
// SAFETY: as above.
unsafe impl Send for Timer {}

impl Timer {
    /// `KeInitializeTimerEx(NotificationTimer)` with `routine` as its DPC.
    pub fn new(routine: Box<dyn Fn() + Send + Sync>) -> Result<Timer, NTSTATUS> {
        let dpc = Dpc::new(routine, None)?;
        // SAFETY: zeroed storage initialised in place at its boxed address.
        let raw = unsafe {
            let raw = Box::new(UnsafeCell::new(core::mem::zeroed::<KTIMER>()));
            KeInitializeTimerEx(raw.get(), NotificationTimer);
            raw
        };
        Ok(Timer { raw, dpc })
    }

    /// `KeSetTimerEx`: fire after `due_100ns` (relative), then every `period_ms` (0 = once).
    /// `true` when the timer was already set (and is now re-armed).
    pub fn set(&self, due_100ns: u64, period_ms: u32) -> bool {
        let due = -(i64::try_from(due_100ns).unwrap_or(i64::MAX));
        let period = i32::try_from(period_ms).unwrap_or(i32::MAX);
        // SAFETY: timer and DPC are initialised and alive while `self` is.
        unsafe { KeSetTimerEx(self.raw.get(), due, period, self.dpc.as_ptr()) != 0 }
    }

    /// `KeCancelTimer`; `true` when it was set.
    pub fn cancel(&self) -> bool {
        // SAFETY: as in `set`.
        unsafe { KeCancelTimer(self.raw.get()) != 0 }
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        self.cancel();
        // The DPC's own Drop removes and flushes a DPC the timer already queued.
    }
}
