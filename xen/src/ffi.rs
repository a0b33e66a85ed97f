//! Calls out of the core into C code registered by importers: log dispositions.

use core::ffi::c_void;

use xen_include::api::LogDispositionFn;

use crate::log::LOG_BUFFER_SIZE;

/// Call a disposition registered with `LogAddDisposition` with a NUL-terminated private
/// copy of `line` (so the callee may not scribble on the slot).
pub fn call_disposition(function: LogDispositionFn, argument: usize, line: &[u8]) {
    let mut buffer = [0u8; LOG_BUFFER_SIZE + 1];
    let len = line.len().min(LOG_BUFFER_SIZE);
    for (dst, src) in buffer.iter_mut().zip(line.iter().take(len)) {
        *dst = *src;
    }
    // SAFETY: `LogAddDisposition`'s contract: `function` stays callable with its
    // `argument` until `LogRemoveDisposition`, and receives a buffer of `length` bytes
    // (NUL-terminated here) that lives for the duration of the call.
    unsafe {
        function(
            argument as *mut c_void,
            buffer.as_mut_ptr().cast(),
            len as u32,
        )
    }
}
