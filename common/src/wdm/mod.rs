//! The real kernel edge: WDM helpers, pool allocator, panic handler, logging and the
//! Windows implementation of [`crate::os::Os`], on `windows-sys`.
//!
//! Layout-only helpers (IRP stack locations, allocator arithmetic, log-line formatting)
//! compile on every host so they are unit-tested on Linux against the real `windows-sys`
//! layouts; everything that calls into `ntoskrnl.exe` is built for Windows only.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::todo,
        clippy::unimplemented
    )
)]

pub mod codec;
pub mod irp;
pub mod log;
pub mod modules;
pub mod pnp_codec;
pub mod pool;
pub mod registry;
pub mod remove_lock;

#[cfg(windows)]
pub mod callbacks;
#[cfg(windows)]
pub mod device;
#[cfg(windows)]
pub mod interrupt;
#[cfg(windows)]
pub mod irql;
#[cfg(windows)]
pub mod kernel;
#[cfg(windows)]
pub mod ntoskrnl;
#[cfg(windows)]
pub mod os;
#[cfg(windows)]
pub mod pnp_irp;
#[cfg(windows)]
pub mod request;
#[cfg(all(windows, feature = "xen-imports"))]
pub mod xen_imports;

#[cfg(all(windows, feature = "kernel-runtime"))]
mod crt;
#[cfg(all(windows, feature = "kernel-runtime"))]
mod panic;

pub use windows_sys::Wdk::Foundation::{DEVICE_OBJECT, DRIVER_OBJECT, IO_STACK_LOCATION, IRP};
pub use windows_sys::Win32::Foundation::{NTSTATUS, UNICODE_STRING};

/// Bug-check code raised by the panic handler of every driver of the package: `0x58454E50`
/// (ASCII `"XENP"`). Parameters: 1 = address of the panicking source file name (NUL-free
/// bytes), 2 = its length, 3 = line number, 4 = the driver's [`log::Component`] number
/// (0 = xen, 1 = xenbus, 2 = xenfilt).
pub const BUGCHECK_RUST_PANIC: u32 = 0x5845_4E50;
