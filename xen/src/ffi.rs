//! The C side of the log: calls into dispositions registered by importers, and printf
//! arguments read from a Win64 `va_list`.

use core::ffi::c_void;

use xen_include::api::AnsiString;

use xen_include::api::LogDispositionFn;

use crate::log::{FormatArgs, TextKind, LOG_BUFFER_SIZE};

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

/// printf arguments read from a Win64 `va_list` (or a variadic shim's slot array).
///
/// # Invariants
/// `next` points at `remaining` readable 8-byte slots.
pub struct VaArgs {
    next: *const u64,
    remaining: usize,
}

impl VaArgs {
    /// Walk `remaining` slots at `next`.
    ///
    /// # Safety
    /// `next` points at `remaining` readable 8-byte slots, and every slot a `%s`-like
    /// directive consumes holds a valid pointer of that kind (or null).
    pub unsafe fn new(next: *const u64, remaining: usize) -> Self {
        Self { next, remaining }
    }

    fn slot(&mut self) -> u64 {
        if self.remaining == 0 || self.next.is_null() {
            return 0;
        }
        // SAFETY: type invariant; `remaining` counts the promised slots down.
        let v = unsafe { self.next.read_unaligned() };
        // SAFETY: stays within (or one past) the promised slots.
        self.next = unsafe { self.next.add(1) };
        self.remaining -= 1;
        v
    }
}

/// # Safety
/// `p` points at `n` readable elements.
unsafe fn copy_narrow<T: Copy + Into<u32>>(p: *const T, n: usize, out: &mut [u8]) -> usize {
    let n = n.min(out.len());
    for (i, o) in out.iter_mut().take(n).enumerate() {
        // SAFETY: i < n readable elements.
        *o = unsafe { p.add(i).read_unaligned() }.into() as u8;
    }
    n
}

/// # Safety
/// `p` is a NUL-terminated array of `T`.
unsafe fn terminated_len<T: Copy + Into<u32>>(p: *const T, limit: usize) -> usize {
    let mut n = 0;
    // SAFETY: reads stop at the terminator, which the caller guarantees.
    while n < limit && unsafe { p.add(n).read_unaligned() }.into() != 0 {
        n += 1;
    }
    n
}

impl FormatArgs for VaArgs {
    fn next_slot(&mut self) -> u64 {
        self.slot()
    }

    fn next_text(&mut self, kind: TextKind, out: &mut [u8]) -> Option<usize> {
        let p = self.slot() as usize;
        if p == 0 {
            return None;
        }
        let limit = out.len();
        // SAFETY: printf's contract: `%s`/`%ws` point at NUL-terminated strings, `%Z`/`%wZ`
        // at counted strings whose buffers hold `Length` bytes.
        unsafe {
            Some(match kind {
                TextKind::Ansi => {
                    let s = p as *const u8;
                    copy_narrow(s, terminated_len(s, limit), out)
                }
                TextKind::Wide => {
                    let s = p as *const u16;
                    copy_narrow(s, terminated_len(s, limit), out)
                }
                TextKind::AnsiString => {
                    let a = (p as *const AnsiString).read_unaligned();
                    if a.buffer.is_null() {
                        return None;
                    }
                    copy_narrow(a.buffer as *const u8, usize::from(a.length), out)
                }
                TextKind::UnicodeString => {
                    // UNICODE_STRING has the ANSI_STRING layout with a WCHAR buffer.
                    let u = (p as *const AnsiString).read_unaligned();
                    if u.buffer.is_null() {
                        return None;
                    }
                    copy_narrow(u.buffer as *const u16, usize::from(u.length) / 2, out)
                }
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::{format_slot, slot_count, Slot};

    fn render(format: &core::ffi::CStr, slots: &[u64]) -> String {
        let bytes = format.to_bytes();
        assert_eq!(slot_count(256, bytes), slots.len());
        // SAFETY: the slots hold integers or pointers to live test strings.
        let mut args = unsafe { VaArgs::new(slots.as_ptr(), slot_count(256, bytes)) };
        let mut slot = Slot::default();
        format_slot(&mut slot, 256, bytes, &mut args);
        String::from_utf8(slot.bytes().to_vec()).unwrap()
    }

    #[test]
    fn strings_and_numbers_from_raw_slots() {
        let wide: Vec<u16> = "wide\0".encode_utf16().collect();
        let mut text = *b"counted-not-terminated";
        let ansi = AnsiString {
            length: 7,
            maximum_length: 22,
            buffer: text.as_mut_ptr().cast(),
        };
        let mut wbuf: Vec<u16> = "uni!".encode_utf16().collect();
        let uni = AnsiString {
            length: 6,
            maximum_length: 8,
            buffer: wbuf.as_mut_ptr().cast(),
        };
        let null_buffer = AnsiString {
            length: 3,
            maximum_length: 3,
            buffer: core::ptr::null_mut(),
        };
        let slots = [
            c"narrow".as_ptr() as u64,
            wide.as_ptr() as u64,
            &ansi as *const _ as u64,
            &uni as *const _ as u64,
            0,
            &null_buffer as *const _ as u64,
            0xFFFF_FFFF_FFFF_FFFE,
            0xABCD,
        ];
        assert_eq!(
            render(c"%s|%ws|%Z|%wZ|%s|%Z|%d|%p", &slots),
            "narrow|wide|counted|uni|(null)|(null)|-2|000000000000ABCD"
        );
    }

    #[test]
    fn reads_stop_at_the_promised_slots() {
        // A format asking for more than was promised reads zeros, never past the array.
        let slots = [7u64];
        // SAFETY: one readable slot.
        let mut args = unsafe { VaArgs::new(slots.as_ptr(), 1) };
        assert_eq!(args.next_slot(), 7);
        assert_eq!(args.next_slot(), 0);
        let mut out = [0u8; 8];
        assert_eq!(args.next_text(TextKind::Ansi, &mut out), None);
    }

    #[test]
    fn long_strings_are_cut_at_the_buffer() {
        let long = std::ffi::CString::new("z".repeat(1000)).unwrap();
        let out = render(c"%s", &[long.as_ptr() as u64]);
        assert_eq!(out.len(), 256);
    }
}
