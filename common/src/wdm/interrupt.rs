//! Interrupts connected with `IoConnectInterruptEx(CONNECT_FULLY_SPECIFIED[_GROUP])` from
//! a translated resource descriptor, each with a Rust service routine; disconnected in
//! `Drop`. Also the processor enumeration a bus FDO needs to ask for one message interrupt
//! per processor.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::ffi::c_void;
use core::ptr;

use windows_sys::Wdk::Foundation::DEVICE_OBJECT;
use windows_sys::Wdk::System::SystemServices::{
    IoConnectInterruptEx, IoDisconnectInterruptEx, KeGetProcessorIndexFromNumber,
    KeGetProcessorNumberFromIndex, KeQueryActiveProcessorCountEx, Latched, LevelSensitive,
    CONNECT_FULLY_SPECIFIED, CONNECT_FULLY_SPECIFIED_GROUP, IO_CONNECT_INTERRUPT_PARAMETERS,
    IO_DISCONNECT_INTERRUPT_PARAMETERS,
};
use windows_sys::Win32::Foundation::NTSTATUS;
use windows_sys::Win32::System::Kernel::PROCESSOR_NUMBER;

/// One processor: (group, number within the group).
pub type Processor = (u16, u8);

/// A translated interrupt resource to connect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interrupt {
    /// Message-signalled (else the line interrupt).
    pub message: bool,
    /// `Latched` (else level-sensitive).
    pub latched: bool,
    /// `ShareVector`.
    pub shared: bool,
    /// IRQL.
    pub level: u16,
    /// Processor group.
    pub group: u16,
    /// Vector.
    pub vector: u32,
    /// Processors the interrupt targets.
    pub affinity: u64,
}

/// `ALL_PROCESSOR_GROUPS`.
const ALL_PROCESSOR_GROUPS: u16 = 0xFFFF;

/// A service routine with its real signature (`KSERVICE_ROUTINE`).
type ServiceRoutine = unsafe extern "system" fn(interrupt: *mut c_void, context: *mut c_void) -> u8;

/// Every active processor as (group, number), in system-wide index order.
pub fn processors() -> Vec<Processor> {
    // SAFETY: plain queries; `number` is a local the kernel writes.
    unsafe {
        let count = KeQueryActiveProcessorCountEx(ALL_PROCESSOR_GROUPS);
        (0..count)
            .filter_map(|index| {
                let mut number: PROCESSOR_NUMBER = core::mem::zeroed();
                (KeGetProcessorNumberFromIndex(index, &mut number) >= 0)
                    .then_some((number.Group, number.Number))
            })
            .collect()
    }
}

/// The system-wide index of processor `number` of `group`.
pub fn processor_index(group: u16, number: u8) -> u32 {
    let processor = PROCESSOR_NUMBER {
        Group: group,
        Number: number,
        Reserved: 0,
    };
    // SAFETY: a local PROCESSOR_NUMBER read by the kernel.
    unsafe { KeGetProcessorIndexFromNumber(&processor) }
}

/// What the service routine receives.
struct Isr {
    routine: Box<dyn Fn() -> bool + Send + Sync>,
}

unsafe extern "system" fn service(_interrupt: *mut c_void, context: *mut c_void) -> u8 {
    // SAFETY: `context` is the boxed Isr of a ConnectedInterrupt, which disconnects before
    // dropping it.
    let isr = unsafe { &*context.cast::<Isr>() };
    u8::from((isr.routine)())
}

/// A connected interrupt.
pub struct ConnectedInterrupt {
    object: *mut c_void,
    /// Kept alive until disconnected (the kernel holds a pointer to it).
    _isr: Box<Isr>,
    /// The vector as connected (translated).
    pub vector: u32,
}

// SAFETY: an interrupt object may be disconnected from any thread at PASSIVE_LEVEL.
unsafe impl Send for ConnectedInterrupt {}
// SAFETY: no shared mutable state.
unsafe impl Sync for ConnectedInterrupt {}

impl ConnectedInterrupt {
    /// Connect the interrupt `translated` describes on behalf of `pdo`, calling `routine`
    /// at its DIRQL (true = it was ours).
    ///
    /// # Safety
    /// `pdo` is the device's PDO; PASSIVE_LEVEL; `translated` comes from the translated
    /// resources of this device's START_DEVICE.
    pub unsafe fn connect(
        pdo: *mut DEVICE_OBJECT,
        translated: &Interrupt,
        routine: Box<dyn Fn() -> bool + Send + Sync>,
    ) -> Result<ConnectedInterrupt, NTSTATUS> {
        let isr = Box::new(Isr { routine });
        let mut object: *mut c_void = ptr::null_mut();
        let routine: ServiceRoutine = service;
        // SAFETY: zeroed parameters filled as IoConnectInterruptEx documents for the fully
        // specified version; the kernel calls `service` with the context below (the boxed
        // Isr, kept until disconnection) and its real signature.
        let status = unsafe {
            let mut parameters: IO_CONNECT_INTERRUPT_PARAMETERS = core::mem::zeroed();
            parameters.Version = if translated.group != 0 {
                CONNECT_FULLY_SPECIFIED_GROUP
            } else {
                CONNECT_FULLY_SPECIFIED
            };
            let full = &mut parameters.Anonymous.FullySpecified;
            full.PhysicalDeviceObject = pdo;
            full.InterruptObject = (&mut object as *mut *mut c_void).cast();
            full.ServiceRoutine = Some(core::mem::transmute::<
                ServiceRoutine,
                unsafe extern "system" fn() -> bool,
            >(routine));
            full.ServiceContext = (&*isr as *const Isr).cast_mut().cast();
            full.SpinLock = ptr::null_mut();
            full.SynchronizeIrql = translated.level as u8;
            full.FloatingSave = false;
            full.ShareVector = translated.shared;
            full.Vector = translated.vector;
            full.Irql = translated.level as u8;
            full.InterruptMode = if translated.latched {
                Latched
            } else {
                LevelSensitive
            };
            full.ProcessorEnableMask = translated.affinity as usize;
            full.Group = translated.group;
            IoConnectInterruptEx(&mut parameters)
        };
        if status < 0 {
            return Err(status);
        }
        Ok(ConnectedInterrupt {
            object,
            _isr: isr,
            vector: translated.vector,
        })
    }
}

impl Drop for ConnectedInterrupt {
    fn drop(&mut self) {
        // SAFETY: `object` came from IoConnectInterruptEx and is disconnected once; the
        // version matches the fully specified connection.
        unsafe {
            let mut parameters: IO_DISCONNECT_INTERRUPT_PARAMETERS = core::mem::zeroed();
            parameters.Version = CONNECT_FULLY_SPECIFIED;
            parameters.ConnectionContext.InterruptObject = self.object as _;
            IoDisconnectInterruptEx(&parameters);
        }
    }
}
