//! The panic handler of every driver: log the message, then bug-check with
//! [`super::BUGCHECK_RUST_PANIC`] (a panic in the kernel cannot be recovered from).

use core::panic::PanicInfo;

use super::log::{component, log, Level};

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    let (file, line) = info.location().map_or(("?", 0), |l| (l.file(), l.line()));
    log(
        Level::Error,
        format_args!("PANIC at {file}:{line}: {}", info.message()),
    );
    // SAFETY: KeBugCheckEx never returns; its parameters are plain numbers (the file name
    // pointer refers to the image's read-only data and is only shown by the debugger).
    unsafe {
        windows_sys::Wdk::System::SystemServices::KeBugCheckEx(
            super::BUGCHECK_RUST_PANIC,
            file.as_ptr() as usize,
            file.len(),
            line as usize,
            component() as usize,
        );
    }
    // KeBugCheckEx is not declared as diverging in the metadata.
    loop {
        core::hint::spin_loop();
    }
}
