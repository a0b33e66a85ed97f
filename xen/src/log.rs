//! `log.c`: the log ring of xen.sys — 32 slots of 256 bytes, up to 8 dispositions, the
//! printf-style formatter of the `Log*Printf` exports, DbgPrint capture and log levels.
#![forbid(unsafe_code)]

use alloc::vec::Vec;

use common::os::RegValue;
use xen_include::api::{
    LogDispositionFn, LogLevel, LOG_LEVEL_CRITICAL, LOG_LEVEL_ERROR, LOG_LEVEL_INFO,
    LOG_LEVEL_NONE, LOG_LEVEL_TRACE, LOG_LEVEL_WARNING,
};
use xen_include::status::{NtStatus, STATUS_INVALID_PARAMETER, STATUS_UNSUCCESSFUL};

use common::sync::HighLock;

/// Size of one slot's buffer: longer lines are truncated.
pub const LOG_BUFFER_SIZE: usize = 256;
/// Number of slots (lines queued before a forced flush).
pub const LOG_NR_SLOTS: usize = 32;
/// How long a captured DbgPrint line waits for the log lock before it is dropped.
pub const CAPTURE_SPINS: usize = 1 << 16;
/// How long a LogPrintf waits for the log lock before its line is dropped (a same-CPU
/// re-entry can never get it; another CPU's flush of 32 lines through port I/O can take
/// milliseconds).
pub const WRITE_SPINS: usize = 1 << 22;
/// Maximum number of dispositions.
pub const LOG_NR_DISPOSITIONS: usize = 8;

/// The kind of text a `%s`-like directive points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextKind {
    /// `%s`: NUL-terminated `CHAR *`.
    Ansi,
    /// `%ws`: NUL-terminated `WCHAR *` (each character narrowed to its low byte).
    Wide,
    /// `%Z`: `ANSI_STRING *`.
    AnsiString,
    /// `%wZ`: `UNICODE_STRING *` (each character narrowed to its low byte).
    UnicodeString,
}

/// The variable arguments of one printf call, in Win64 `va_list` terms: every argument
/// occupies one 64-bit slot; pointers to text are read by the implementation.
pub trait FormatArgs {
    /// The next argument slot.
    fn next_slot(&mut self) -> u64;
    /// The next argument as text of `kind`: copy at most `out.len()` bytes into `out` and
    /// return how many were copied, or `None` for a NULL pointer.
    fn next_text(&mut self, kind: TextKind, out: &mut [u8]) -> Option<usize>;
}

/// One log line being built or waiting for a flush.
#[derive(Clone, Copy)]
pub struct Slot {
    /// The level mask of the line.
    pub level: LogLevel,
    buffer: [u8; LOG_BUFFER_SIZE],
    offset: usize,
}

impl Default for Slot {
    fn default() -> Self {
        Self {
            level: LOG_LEVEL_NONE,
            buffer: [0; LOG_BUFFER_SIZE],
            offset: 0,
        }
    }
}

impl Slot {
    /// The bytes written so far.
    pub fn bytes(&self) -> &[u8] {
        self.buffer.get(..self.offset).unwrap_or(&[])
    }

    fn put(&mut self, byte: u8) {
        if let Some(b) = self.buffer.get_mut(self.offset) {
            *b = byte;
            self.offset += 1;
        }
    }

    fn put_all(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.put(*b);
        }
    }

    fn pad(&mut self, pad: u8, length: usize, fill: u8) {
        let mut pad = usize::from(pad);
        while pad > length {
            self.put(fill);
            pad -= 1;
        }
    }

    fn clear(&mut self) {
        *self = Self::default();
    }
}

/// Render `value` in `base` into `out`, returning the digits used.
fn format_number(out: &mut [u8; 24], mut value: u64, base: u64, upper: bool) -> &[u8] {
    let mut tmp = [0u8; 24];
    let mut n = 0;
    loop {
        let digit = (value % base) as u8;
        let c = match digit {
            0..=9 => b'0' + digit,
            _ if upper => b'A' + digit - 10,
            _ => b'a' + digit - 10,
        };
        if let Some(t) = tmp.get_mut(n) {
            *t = c;
        }
        n += 1;
        value /= base;
        if value == 0 || n >= tmp.len() {
            break;
        }
    }
    for (dst, src) in out.iter_mut().zip(tmp.iter().take(n).rev()) {
        *dst = *src;
    }
    out.get(..n).unwrap_or(&[])
}

/// Format `format` (bytes up to its NUL) with `args` into `slot`, as `LogWriteSlot` does:
/// `%c %s %d %u %o %x %X %p %Z`, `l`/`ll` length, `w` wide modifier, width, `0` padding
/// and `-` (which right-justifies strings and left-justifies numbers). At most `count`
/// format elements are consumed (`0` = no limit); output stops at 256 bytes.
pub fn format_slot(slot: &mut Slot, count: u32, format: &[u8], args: &mut dyn FormatArgs) {
    let mut remaining: i64 = i64::from(count.min(LOG_BUFFER_SIZE as u32));
    let mut i = 0usize;
    let next = |i: &mut usize| -> Option<u8> {
        let c = format.get(*i).copied().filter(|c| *c != 0);
        *i += 1;
        c
    };
    while let Some(mut c) = next(&mut i) {
        if c != b'%' {
            slot.put(c);
        } else {
            let Some(d) = next(&mut i) else { break };
            c = d;
            let mut opposite = false;
            let mut zero = false;
            let mut pad: u8 = 0;
            let mut long = 0u8;
            let mut wide = false;
            if c == b'-' {
                opposite = true;
                let Some(d) = next(&mut i) else { break };
                c = d;
            }
            if c.is_ascii_digit() {
                zero = c == b'0';
                while c.is_ascii_digit() {
                    pad = pad.wrapping_mul(10).wrapping_add(c - b'0');
                    let Some(d) = next(&mut i) else { return };
                    c = d;
                }
            }
            while c == b'l' {
                long = long.saturating_add(1);
                let Some(d) = next(&mut i) else { return };
                c = d;
            }
            while c == b'w' {
                wide = true;
                let Some(d) = next(&mut i) else { return };
                c = d;
            }
            match c {
                b'c' => {
                    let v = args.next_slot();
                    // A WCHAR or CHAR argument, narrowed to a CHAR either way.
                    let v = if wide { (v as u16) as u8 } else { v as u8 };
                    slot.put(v);
                }
                b'p' | b'd' | b'u' | b'o' | b'x' | b'X' => {
                    if c == b'p' {
                        zero = true;
                        pad = (core::mem::size_of::<u64>() * 2) as u8;
                        long = 2;
                    }
                    let raw = args.next_slot();
                    let mut text = [0u8; 25];
                    let mut len = 0;
                    let (negative, magnitude) = if long >= 2 {
                        let v = raw as i64;
                        if c == b'd' && v < 0 {
                            (true, v.unsigned_abs())
                        } else {
                            (false, raw)
                        }
                    } else {
                        let v = raw as u32 as i32;
                        if c == b'd' && v < 0 {
                            (true, u64::from(v.unsigned_abs()))
                        } else {
                            (false, u64::from(raw as u32))
                        }
                    };
                    if negative {
                        if let Some(t) = text.first_mut() {
                            *t = b'-';
                            len = 1;
                        }
                    }
                    let (base, upper) = match c {
                        b'o' => (8, false),
                        b'd' | b'u' => (10, false),
                        b'x' => (16, false),
                        _ => (16, true),
                    };
                    let mut digits = [0u8; 24];
                    for d in format_number(&mut digits, magnitude, base, upper) {
                        if let Some(t) = text.get_mut(len) {
                            *t = *d;
                            len += 1;
                        }
                    }
                    let text = text.get(..len).unwrap_or(&[]);
                    if !opposite {
                        slot.pad(pad, len, if zero { b'0' } else { b' ' });
                    }
                    slot.put_all(text);
                    if opposite {
                        slot.pad(pad, len, b' ');
                    }
                }
                b's' | b'Z' => {
                    let kind = match (c, wide) {
                        (b's', false) => TextKind::Ansi,
                        (b's', true) => TextKind::Wide,
                        (_, false) => TextKind::AnsiString,
                        (_, true) => TextKind::UnicodeString,
                    };
                    let mut text = [0u8; LOG_BUFFER_SIZE];
                    let len = match args.next_text(kind, &mut text) {
                        Some(n) => n.min(LOG_BUFFER_SIZE),
                        None => {
                            let null = b"(null)";
                            for (dst, src) in text.iter_mut().zip(null) {
                                *dst = *src;
                            }
                            null.len()
                        }
                    };
                    if opposite {
                        slot.pad(pad, len, b' ');
                    }
                    slot.put_all(text.get(..len).unwrap_or(&[]));
                    if !opposite {
                        slot.pad(pad, len, b' ');
                    }
                }
                other => slot.put(other),
            }
        }
        remaining -= 1;
        if remaining == 0 {
            break;
        }
    }
}

/// The number of argument slots `format_slot` consumes for `format` (bounds what the edge
/// reads from a `va_list`).
pub fn slot_count(count: u32, format: &[u8]) -> usize {
    struct Counting(usize);
    impl FormatArgs for Counting {
        fn next_slot(&mut self) -> u64 {
            self.0 += 1;
            0
        }
        fn next_text(&mut self, _: TextKind, _: &mut [u8]) -> Option<usize> {
            self.0 += 1;
            None
        }
    }
    let mut c = Counting(0);
    format_slot(&mut Slot::default(), count, format, &mut c);
    c.0
}

/// Where a disposition sends the lines whose level intersects its mask.
#[derive(Clone, Copy, Debug)]
pub enum DispositionTarget {
    /// Bytes written to an I/O port (0xE9 = Xen debug console, 0x12 = QEMU log).
    Port(u16),
    /// A caller's function `(argument, buffer, length)`.
    Foreign {
        /// The C callback.
        function: LogDispositionFn,
        /// Its opaque argument.
        argument: usize,
    },
}

impl PartialEq for DispositionTarget {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Port(a), Self::Port(b)) => a == b,
            (
                Self::Foreign {
                    function: f,
                    argument: a,
                },
                Self::Foreign {
                    function: g,
                    argument: b,
                },
            ) => *f as usize == *g as usize && a == b,
            _ => false,
        }
    }
}

impl Eq for DispositionTarget {}

#[derive(Clone, Copy)]
struct Disposition {
    mask: LogLevel,
    target: DispositionTarget,
}

struct LogState {
    /// The slots live on the heap: 32 × 256 bytes inline would put an 8 KB log ring in every
    /// stack frame that builds a core (xen.sys's DllInitialize), on a 24 KB kernel stack.
    slots: Vec<Slot>,
    pending: usize,
    dispositions: [Option<Disposition>; LOG_NR_DISPOSITIONS],
}

/// Delivers a flushed line to a disposition target (the edge: port output, C calls).
pub trait Deliver {
    /// Send `line` to `target`.
    fn deliver(&self, target: &DispositionTarget, line: &[u8]);
}

/// The log context: slots and dispositions under one lock.
pub struct Log {
    state: HighLock<LogState>,
}

impl Default for Log {
    fn default() -> Self {
        Self::new()
    }
}

impl Log {
    /// An empty log with no dispositions. If the slots cannot be allocated the log exists
    /// but drops every line (logging must never stop the driver from loading).
    pub fn new() -> Self {
        let mut slots = Vec::new();
        if slots.try_reserve_exact(LOG_NR_SLOTS).is_ok() {
            slots.resize_with(LOG_NR_SLOTS, || Slot {
                level: LOG_LEVEL_NONE,
                buffer: [0; LOG_BUFFER_SIZE],
                offset: 0,
            });
        }
        Self {
            state: HighLock::new(LogState {
                slots,
                pending: 0,
                dispositions: [None; LOG_NR_DISPOSITIONS],
            }),
        }
    }

    fn flush_locked(state: &mut LogState, deliver: &dyn Deliver) {
        let pending = state.pending;
        let LogState {
            slots,
            dispositions,
            ..
        } = state;
        for slot in slots.iter_mut().take(pending) {
            for d in dispositions.iter().flatten() {
                if slot.level & d.mask != 0 {
                    deliver.deliver(&d.target, slot.bytes());
                }
            }
            slot.clear();
        }
        state.pending = 0;
    }

    fn with_new_slot(&self, deliver: &dyn Deliver, fill: impl FnOnce(&mut Slot)) {
        // The lock does not raise IRQL: a DPC or interrupt logging on the CPU whose thread
        // holds it would spin forever, so give up (dropping the line) after a long wait.
        let Some(mut state) = self.lock_spins(WRITE_SPINS) else {
            return;
        };
        if state.pending == LOG_NR_SLOTS {
            Self::flush_locked(&mut state, deliver);
        }
        let index = state.pending;
        state.pending += 1;
        if let Some(slot) = state.slots.get_mut(index) {
            fill(slot);
        }
        Self::flush_locked(&mut state, deliver);
    }

    /// `LogCchVPrintf`: format into a slot and flush every pending slot.
    pub fn printf(
        &self,
        level: LogLevel,
        count: u32,
        format: &[u8],
        args: &mut dyn FormatArgs,
        deliver: &dyn Deliver,
    ) {
        self.with_new_slot(deliver, |slot| {
            slot.level = level;
            format_slot(slot, count, format, args);
        });
    }

    /// Log already formatted text (truncated to one slot) and flush.
    pub fn write(&self, level: LogLevel, text: &[u8], deliver: &dyn Deliver) {
        self.with_new_slot(deliver, |slot| {
            slot.level = level;
            slot.put_all(text);
        });
    }

    /// `LogDebugPrint`: queue a captured DbgPrint line at DPFLTR `level` (flushed later by
    /// [`Log::flush`]). Free builds keep only lines starting with `xen`. Returns whether a
    /// line was queued (the edge then queues the flush DPC).
    pub fn capture(&self, level: u32, text: &[u8], keep_all: bool, deliver: &dyn Deliver) -> bool {
        if text.is_empty() {
            return false;
        }
        if !keep_all && (text.len() < 4 || !text.starts_with(b"xen")) {
            return false;
        }
        // DbgPrint can be re-entered from inside a flush (a disposition that logs through
        // DbgPrint): never spin forever on our own lock, drop the line instead.
        let Some(mut state) = self.lock_bounded() else {
            return false;
        };
        if state.pending == LOG_NR_SLOTS {
            Self::flush_locked(&mut state, deliver);
        }
        let index = state.pending;
        state.pending += 1;
        if let Some(slot) = state.slots.get_mut(index) {
            slot.level = 1u32.checked_shl(level).unwrap_or(0);
            slot.put_all(text);
        }
        true
    }

    fn lock_bounded(&self) -> Option<common::sync::HighGuard<'_, LogState>> {
        self.lock_spins(CAPTURE_SPINS)
    }

    fn lock_spins(&self, spins: usize) -> Option<common::sync::HighGuard<'_, LogState>> {
        for _ in 0..spins {
            if let Some(g) = self.state.try_lock() {
                return Some(g);
            }
            core::hint::spin_loop();
        }
        None
    }

    /// The flush DPC: deliver every queued line.
    pub fn flush(&self, deliver: &dyn Deliver) {
        if let Some(mut state) = self.lock_spins(WRITE_SPINS) {
            Self::flush_locked(&mut state, deliver);
        }
    }

    /// `LogAddDisposition`: `Ok(None)` for an empty mask (nothing registered),
    /// `STATUS_UNSUCCESSFUL` when all 8 are in use. The handle is never 0.
    pub fn add_disposition(
        &self,
        mask: LogLevel,
        target: DispositionTarget,
    ) -> Result<Option<usize>, NtStatus> {
        if mask == LOG_LEVEL_NONE {
            return Ok(None);
        }
        let mut state = self.state.lock();
        for (index, d) in state.dispositions.iter_mut().enumerate() {
            if d.is_none() {
                *d = Some(Disposition { mask, target });
                return Ok(Some(index + 1));
            }
        }
        Err(STATUS_UNSUCCESSFUL)
    }

    /// `LogRemoveDisposition`: unknown handles are ignored.
    pub fn remove_disposition(&self, handle: usize) {
        let mut state = self.state.lock();
        if let Some(d) = handle
            .checked_sub(1)
            .and_then(|i| state.dispositions.get_mut(i))
        {
            *d = None;
        }
    }

    /// Number of dispositions in use.
    pub fn disposition_count(&self) -> usize {
        self.state.lock().dispositions.iter().flatten().count()
    }

    /// Whether a caller's C function is among the dispositions (those must not be called
    /// from a DbgPrint callback at raised IRQL; port output is safe at any IRQL).
    pub fn has_foreign_disposition(&self) -> bool {
        self.lock_bounded().is_some_and(|s| {
            s.dispositions
                .iter()
                .flatten()
                .any(|d| matches!(d.target, DispositionTarget::Foreign { .. }))
        })
    }
}

/// The level names accepted in `XenLogLevel`/`QemuLogLevel` (case-insensitive).
pub const LEVEL_NAMES: [(&str, LogLevel); 5] = [
    ("TRACE", LOG_LEVEL_TRACE),
    ("INFO", LOG_LEVEL_INFO),
    ("WARNING", LOG_LEVEL_WARNING),
    ("ERROR", LOG_LEVEL_ERROR),
    ("CRITICAL", LOG_LEVEL_CRITICAL),
];

/// `LogReadLogLevel` over the value read from the registry: a MULTI_SZ of level names,
/// unknown names ignored. A value of another type is `STATUS_INVALID_PARAMETER`; a read
/// error is passed through.
pub fn parse_log_level(value: Result<RegValue, NtStatus>) -> Result<LogLevel, NtStatus> {
    match value? {
        RegValue::MultiSz(names) => Ok(names.iter().fold(LOG_LEVEL_NONE, |acc, name| {
            LEVEL_NAMES
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map_or(acc, |(_, l)| acc | l)
        })),
        _ => Err(STATUS_INVALID_PARAMETER),
    }
}

/// Default mask of the Xen debug console disposition (port 0xE9).
pub const DEFAULT_XEN_LOG_LEVEL: LogLevel = LOG_LEVEL_CRITICAL;
/// Default mask of the QEMU log disposition (port 0x12).
pub const DEFAULT_QEMU_LOG_LEVEL: LogLevel =
    LOG_LEVEL_INFO | LOG_LEVEL_WARNING | LOG_LEVEL_ERROR | LOG_LEVEL_CRITICAL;

/// Whether DbgPrint capture is enabled given the `XEN:DBG_PRINT=` start option, if any
/// (`OFF` disables; `ON` or anything else keeps it on).
pub fn dbg_print_enabled(option: Option<&str>) -> bool {
    !matches!(
        option.and_then(|o| o.strip_prefix("XEN:DBG_PRINT=")),
        Some("OFF")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// Arguments for the formatter, as a C caller would pass them.
    #[derive(Clone, Debug)]
    pub enum Arg {
        Int(u64),
        Str(Option<&'static str>),
        WStr(Option<Vec<u16>>),
    }

    pub struct VecArgs(pub std::collections::VecDeque<Arg>);

    impl FormatArgs for VecArgs {
        fn next_slot(&mut self) -> u64 {
            match self.0.pop_front() {
                Some(Arg::Int(v)) => v,
                other => panic!("expected an integer, got {other:?}"),
            }
        }
        fn next_text(&mut self, kind: TextKind, out: &mut [u8]) -> Option<usize> {
            let bytes: Vec<u8> = match (self.0.pop_front(), kind) {
                (Some(Arg::Str(s)), TextKind::Ansi | TextKind::AnsiString) => {
                    s?.as_bytes().to_vec()
                }
                (Some(Arg::WStr(w)), TextKind::Wide | TextKind::UnicodeString) => {
                    w?.iter().map(|c| *c as u8).collect()
                }
                (other, kind) => panic!("expected {kind:?}, got {other:?}"),
            };
            let n = bytes.len().min(out.len());
            out[..n].copy_from_slice(&bytes[..n]);
            Some(n)
        }
    }

    fn fmt_count(count: u32, format: &str, args: Vec<Arg>) -> String {
        let mut slot = Slot::default();
        let mut a = VecArgs(args.into());
        format_slot(&mut slot, count, format.as_bytes(), &mut a);
        assert!(a.0.is_empty(), "unused arguments");
        String::from_utf8(slot.bytes().to_vec()).unwrap()
    }

    fn fmt(format: &str, args: Vec<Arg>) -> String {
        fmt_count(256, format, args)
    }

    use Arg::*;

    #[test]
    fn every_directive() {
        let cases: Vec<(&str, Vec<Arg>, &str)> = vec![
            ("plain text", vec![], "plain text"),
            ("%c%c", vec![Int(b'o' as u64), Int(0x1234_0000_006b)], "ok"),
            ("%wc", vec![Int(0x0141)], "A"),
            ("%s|%s", vec![Str(Some("xen")), Str(None)], "xen|(null)"),
            (
                "%ws",
                vec![WStr(Some("wide".encode_utf16().collect()))],
                "wide",
            ),
            ("%ws", vec![WStr(None)], "(null)"),
            ("%Z", vec![Str(Some("ansi"))], "ansi"),
            ("%Z", vec![Str(None)], "(null)"),
            (
                "%wZ",
                vec![WStr(Some("uni".encode_utf16().collect()))],
                "uni",
            ),
            ("%wZ", vec![WStr(None)], "(null)"),
            ("%d", vec![Int(42)], "42"),
            ("%d", vec![Int(0xFFFF_FFFF)], "-1"),
            ("%d", vec![Int(0x8000_0000)], "-2147483648"),
            ("%lld", vec![Int(u64::MAX)], "-1"),
            ("%lld", vec![Int(1 << 63)], "-9223372036854775808"),
            ("%ld", vec![Int(0x1_0000_0005)], "5"),
            ("%u", vec![Int(0xFFFF_FFFF)], "4294967295"),
            ("%llu", vec![Int(u64::MAX)], "18446744073709551615"),
            ("%o", vec![Int(8)], "10"),
            ("%llo", vec![Int(u64::MAX)], "1777777777777777777777"),
            ("%x", vec![Int(0xdead_beef)], "deadbeef"),
            ("%X", vec![Int(0xdead_beef)], "DEADBEEF"),
            ("%x", vec![Int(0x1_0000_0000)], "0"),
            ("%llx", vec![Int(0x1_0000_0000)], "100000000"),
            ("%p", vec![Int(0xfffff800_1234abcd)], "FFFFF8001234ABCD"),
            ("%p", vec![Int(0x10)], "0000000000000010"),
            ("%-p|", vec![Int(0x10)], "10              |"),
            ("%08x", vec![Int(0xab)], "000000ab"),
            ("%8x", vec![Int(0xab)], "      ab"),
            ("%-8x|", vec![Int(0xab)], "ab      |"),
            ("%05d", vec![Int(0xFFFF_FFFD)], "000-3"),
            ("%2d", vec![Int(12345)], "12345"),
            ("%6s|", vec![Str(Some("abc"))], "abc   |"),
            ("%-6s|", vec![Str(Some("abc"))], "   abc|"),
            ("%8s|", vec![Str(None)], "(null)  |"),
            ("%-5Z|", vec![Str(Some("z"))], "    z|"),
            ("100%%", vec![], "100%"),
            ("%q", vec![], "q"),
            ("trailing %", vec![], "trailing "),
        ];
        for (format, args, want) in cases {
            assert_eq!(fmt(format, args), want, "format {format:?}");
        }
    }

    #[test]
    fn slot_counts() {
        assert_eq!(slot_count(256, b"plain %% text"), 0);
        assert_eq!(slot_count(256, b"%d %s %wZ %p %-08llx %c"), 6);
        assert_eq!(slot_count(2, b"%d %s"), 1);
    }

    #[test]
    fn width_wraps_like_a_uchar() {
        // The width accumulates in a UCHAR: 300 wraps to 44.
        let out = fmt("%300d", vec![Int(1)]);
        assert_eq!(out.len(), 44);
    }

    #[test]
    fn truncates_at_256_bytes() {
        let long: &'static str = Box::leak("y".repeat(300).into_boxed_str());
        let out = fmt("%s", vec![Str(Some(long))]);
        assert_eq!(out.len(), 256);
        let out = fmt(&"z".repeat(400), vec![]);
        assert_eq!(out.len(), 256);
        let out = fmt("%255x-more", vec![Int(1)]);
        assert_eq!(out.len(), 256);
        assert!(out.ends_with("1-"));
    }

    #[test]
    fn count_limits_format_elements() {
        assert_eq!(fmt_count(3, "abcdef", vec![]), "abc");
        assert_eq!(fmt_count(2, "%d-%d", vec![Int(1)]), "1-");
        // Zero means no limit beyond the slot size.
        assert_eq!(fmt_count(0, "abcdef", vec![]), "abcdef");
    }

    struct Capture(RefCell<Vec<(DispositionTarget, Vec<u8>)>>);
    impl Deliver for Capture {
        fn deliver(&self, target: &DispositionTarget, line: &[u8]) {
            // A test double (a disposition's sink): its record is not checked.
            let _host = common::irql::model::HostSide::enter();
            self.0.borrow_mut().push((*target, line.to_vec()));
        }
    }

    #[test]
    fn dispositions_filter_by_mask() {
        let log = Log::new();
        let out = Capture(RefCell::new(vec![]));
        assert_eq!(
            log.add_disposition(LOG_LEVEL_NONE, DispositionTarget::Port(1)),
            Ok(None)
        );
        let xen = log
            .add_disposition(LOG_LEVEL_CRITICAL, DispositionTarget::Port(0xE9))
            .unwrap()
            .unwrap();
        let qemu = log
            .add_disposition(DEFAULT_QEMU_LOG_LEVEL, DispositionTarget::Port(0x12))
            .unwrap()
            .unwrap();
        assert_ne!(xen, qemu);
        log.write(LOG_LEVEL_INFO, b"info", &out);
        log.write(LOG_LEVEL_CRITICAL, b"crit", &out);
        log.write(LOG_LEVEL_TRACE, b"trace", &out);
        assert_eq!(
            *out.0.borrow(),
            vec![
                (DispositionTarget::Port(0x12), b"info".to_vec()),
                (DispositionTarget::Port(0xE9), b"crit".to_vec()),
                (DispositionTarget::Port(0x12), b"crit".to_vec()),
            ]
        );
        log.remove_disposition(qemu);
        log.remove_disposition(12345);
        out.0.borrow_mut().clear();
        log.write(LOG_LEVEL_CRITICAL | LOG_LEVEL_INFO, b"x", &out);
        assert_eq!(out.0.borrow().len(), 1);
    }

    #[test]
    fn at_most_eight_dispositions() {
        let log = Log::new();
        for i in 0..LOG_NR_DISPOSITIONS {
            assert!(log
                .add_disposition(1, DispositionTarget::Port(i as u16))
                .unwrap()
                .is_some());
        }
        assert_eq!(
            log.add_disposition(1, DispositionTarget::Port(99)),
            Err(STATUS_UNSUCCESSFUL)
        );
        log.remove_disposition(3);
        assert_eq!(
            log.add_disposition(1, DispositionTarget::Port(99)),
            Ok(Some(3))
        );
    }

    #[test]
    fn captured_lines_wait_for_flush_and_filter_xen() {
        let log = Log::new();
        let out = Capture(RefCell::new(vec![]));
        log.add_disposition(!0, DispositionTarget::Port(0x12))
            .unwrap();
        assert!(log.capture(3, b"xenbus|Fdo: hello", false, &out));
        assert!(!log.capture(3, b"ndis: noise", false, &out));
        assert!(!log.capture(3, b"xen", false, &out));
        assert!(!log.capture(3, b"", true, &out));
        assert!(log.capture(3, b"ndis: noise", true, &out));
        assert!(out.0.borrow().is_empty());
        log.flush(&out);
        let lines: Vec<Vec<u8>> = out.0.borrow().iter().map(|(_, l)| l.clone()).collect();
        assert_eq!(
            lines,
            vec![b"xenbus|Fdo: hello".to_vec(), b"ndis: noise".to_vec()]
        );
        // A captured line at level 0 (ERROR) only reaches masks with bit 0.
        out.0.borrow_mut().clear();
        let log = Log::new();
        log.add_disposition(LOG_LEVEL_INFO, DispositionTarget::Port(1))
            .unwrap();
        log.capture(0, b"xen|error", false, &out);
        log.flush(&out);
        assert!(out.0.borrow().is_empty());
    }

    #[test]
    fn capture_while_the_ring_is_locked_drops_instead_of_deadlocking() {
        let log = Log::new();
        let out = Capture(RefCell::new(vec![]));
        let held = log.state.lock();
        assert!(!log.capture(3, b"xen|re-entered", true, &out));
        drop(held);
        assert!(log.capture(3, b"xen|later", true, &out));
    }

    #[test]
    fn printf_gives_up_on_a_lock_it_can_never_get() {
        // What a DPC logging on the CPU whose thread holds the lock would see.
        let log = Log::new();
        let out = Capture(RefCell::new(vec![]));
        log.add_disposition(!0, DispositionTarget::Port(0x12))
            .unwrap();
        let held = log.state.lock();
        log.write(LOG_LEVEL_INFO, b"dropped", &out);
        log.flush(&out);
        drop(held);
        log.write(LOG_LEVEL_INFO, b"kept", &out);
        let lines: Vec<Vec<u8>> = out.0.borrow().iter().map(|(_, l)| l.clone()).collect();
        assert_eq!(lines, vec![b"kept".to_vec()]);
    }

    #[test]
    fn thirty_two_slots_then_forced_flush() {
        let log = Log::new();
        let out = Capture(RefCell::new(vec![]));
        log.add_disposition(!0, DispositionTarget::Port(0x12))
            .unwrap();
        for i in 0..LOG_NR_SLOTS {
            log.capture(3, format!("xen line {i}").as_bytes(), false, &out);
        }
        assert!(out.0.borrow().is_empty());
        log.capture(3, b"xen line 32", false, &out);
        assert_eq!(out.0.borrow().len(), LOG_NR_SLOTS);
        let mut long = b"xen".to_vec();
        long.resize(1000, b'!');
        assert!(log.capture(3, &long, false, &out));
        log.flush(&out);
        assert_eq!(out.0.borrow().last().unwrap().1.len(), LOG_BUFFER_SIZE);
    }

    #[test]
    fn log_levels_from_multi_sz() {
        let multi = |v: &[&str]| Ok(RegValue::MultiSz(v.iter().map(|s| s.to_string()).collect()));
        assert_eq!(
            parse_log_level(multi(&["info", "Error", "bogus"])),
            Ok(LOG_LEVEL_INFO | LOG_LEVEL_ERROR)
        );
        assert_eq!(
            parse_log_level(multi(&["TRACE", "INFO", "WARNING", "ERROR", "CRITICAL"])),
            Ok(0x8000_000F)
        );
        assert_eq!(parse_log_level(multi(&[])), Ok(LOG_LEVEL_NONE));
        assert_eq!(
            parse_log_level(Ok(RegValue::Dword(1))),
            Err(STATUS_INVALID_PARAMETER)
        );
        let nf = xen_include::status::STATUS_OBJECT_NAME_NOT_FOUND;
        assert_eq!(parse_log_level(Err(nf)), Err(nf));
    }

    #[test]
    fn dbg_print_option() {
        assert!(dbg_print_enabled(None));
        assert!(dbg_print_enabled(Some("XEN:DBG_PRINT=ON")));
        assert!(dbg_print_enabled(Some("XEN:DBG_PRINT=MAYBE")));
        assert!(!dbg_print_enabled(Some("XEN:DBG_PRINT=OFF")));
    }
}
