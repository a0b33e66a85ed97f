//! `bug_check.c`: the bug-check callback — tell Xen the domain crashed
//! (`SCHEDOP_shutdown_code(SHUTDOWN_crash)`), then log the bug check and a decoded report.
#![forbid(unsafe_code)]

use core::fmt;

use common::hypercall::Hypercall;
use common::os::{context_layout, Os, RegisterContext};
use xen_include::api::LOG_LEVEL_CRITICAL;
use xen_include::xen::sched::ShutdownReason;

use crate::module::Modules;
use crate::Logger;

/// Bug-check codes with a decoded report (`bugcodes.h`).
pub mod code {
    /// `IRQL_NOT_LESS_OR_EQUAL`.
    pub const IRQL_NOT_LESS_OR_EQUAL: u32 = 0x0A;
    /// `KERNEL_MODE_EXCEPTION_NOT_HANDLED`.
    pub const KERNEL_MODE_EXCEPTION_NOT_HANDLED: u32 = 0x8E;
    /// `KERNEL_MODE_EXCEPTION_NOT_HANDLED_M`.
    pub const KERNEL_MODE_EXCEPTION_NOT_HANDLED_M: u32 = 0x1000_008E;
    /// `SYSTEM_SERVICE_EXCEPTION`.
    pub const SYSTEM_SERVICE_EXCEPTION: u32 = 0x3B;
    /// `INACCESSIBLE_BOOT_DEVICE`.
    pub const INACCESSIBLE_BOOT_DEVICE: u32 = 0x7B;
    /// `SYSTEM_THREAD_EXCEPTION_NOT_HANDLED`.
    pub const SYSTEM_THREAD_EXCEPTION_NOT_HANDLED: u32 = 0x7E;
    /// `SYSTEM_THREAD_EXCEPTION_NOT_HANDLED_M`.
    pub const SYSTEM_THREAD_EXCEPTION_NOT_HANDLED_M: u32 = 0x1000_007E;
    /// `DRIVER_IRQL_NOT_LESS_OR_EQUAL`.
    pub const DRIVER_IRQL_NOT_LESS_OR_EQUAL: u32 = 0xD1;
    /// `DRIVER_POWER_STATE_FAILURE`.
    pub const DRIVER_POWER_STATE_FAILURE: u32 = 0x9F;
    /// `CRITICAL_OBJECT_TERMINATION`.
    pub const CRITICAL_OBJECT_TERMINATION: u32 = 0xF4;
    /// `CRITICAL_PROCESS_DIED`.
    pub const CRITICAL_PROCESS_DIED: u32 = 0xEF;
    /// `ASSERTION_FAILURE`.
    pub const ASSERTION_FAILURE: u32 = 0x7C;
}

/// The name of a bug-check code, if it is one the report decodes.
pub fn name(c: u32) -> Option<&'static str> {
    use code::*;
    Some(match c {
        IRQL_NOT_LESS_OR_EQUAL => "IRQL_NOT_LESS_OR_EQUAL",
        DRIVER_IRQL_NOT_LESS_OR_EQUAL => "DRIVER_IRQL_NOT_LESS_OR_EQUAL",
        SYSTEM_SERVICE_EXCEPTION => "SYSTEM_SERVICE_EXCEPTION",
        SYSTEM_THREAD_EXCEPTION_NOT_HANDLED => "SYSTEM_THREAD_EXCEPTION_NOT_HANDLED",
        SYSTEM_THREAD_EXCEPTION_NOT_HANDLED_M => "SYSTEM_THREAD_EXCEPTION_NOT_HANDLED_M",
        KERNEL_MODE_EXCEPTION_NOT_HANDLED => "KERNEL_MODE_EXCEPTION_NOT_HANDLED",
        KERNEL_MODE_EXCEPTION_NOT_HANDLED_M => "KERNEL_MODE_EXCEPTION_NOT_HANDLED_M",
        CRITICAL_OBJECT_TERMINATION => "CRITICAL_OBJECT_TERMINATION",
        INACCESSIBLE_BOOT_DEVICE => "INACCESSIBLE_BOOT_DEVICE",
        DRIVER_POWER_STATE_FAILURE => "DRIVER_POWER_STATE_FAILURE",
        ASSERTION_FAILURE => "ASSERTION_FAILURE",
        CRITICAL_PROCESS_DIED => "CRITICAL_PROCESS_DIED",
        _ => return None,
    })
}

/// Most stack frames a report walks (upstream `MAXIMUM_ITERATIONS`).
pub const MAXIMUM_FRAMES: usize = 20;
/// Stack words printed per frame (upstream `PARAMETER_COUNT` on x64).
pub const FRAME_PARAMETERS: usize = 4;
/// Most chained exception records dumped.
pub const MAXIMUM_EXCEPTION_RECORDS: usize = 8;
/// Longest string (assertion text, file, object name) read from a bug-check parameter.
pub const MAXIMUM_STRING: usize = 128;
/// Most IRP stack locations dumped for `DRIVER_POWER_STATE_FAILURE`.
pub const MAXIMUM_IRP_STACK: usize = 16;

/// `EXCEPTION_RECORD` (x64): code, flags, chained record, address, parameter count and
/// up to 15 parameters.
pub mod exception_layout {
    /// `sizeof (EXCEPTION_RECORD)`.
    pub const SIZE: usize = 0x98;
    /// `ExceptionCode`.
    pub const CODE: usize = 0x00;
    /// `ExceptionFlags`.
    pub const FLAGS: usize = 0x04;
    /// `ExceptionRecord` (the chained record).
    pub const RECORD: usize = 0x08;
    /// `ExceptionAddress`.
    pub const ADDRESS: usize = 0x10;
    /// `NumberParameters`.
    pub const NUMBER_PARAMETERS: usize = 0x18;
    /// `ExceptionInformation[EXCEPTION_MAXIMUM_PARAMETERS]`.
    pub const INFORMATION: usize = 0x20;
    /// `EXCEPTION_MAXIMUM_PARAMETERS`.
    pub const MAXIMUM_PARAMETERS: usize = 15;
}

/// `IRP` and `IO_STACK_LOCATION` (x64), for the outstanding-IRP dump.
pub mod irp_layout {
    /// `IRP.StackCount` (`CHAR`).
    pub const STACK_COUNT: usize = 0x42;
    /// `IRP.CurrentLocation` (`CHAR`).
    pub const CURRENT_LOCATION: usize = 0x43;
    /// `IRP.Tail.Overlay.CurrentStackLocation`.
    pub const CURRENT_STACK_LOCATION: usize = 0xB8;
    /// Bytes of the IRP header read.
    pub const HEADER: usize = 0xC0;
    /// `sizeof (IO_STACK_LOCATION)`.
    pub const STACK_LOCATION_SIZE: usize = 0x48;
    /// `IO_STACK_LOCATION.CompletionRoutine`.
    pub const COMPLETION_ROUTINE: usize = 0x38;
    /// `IO_STACK_LOCATION.Context`.
    pub const CONTEXT: usize = 0x40;
}

use context_layout::{u32_at, u64_at};

/// Where a report's stack walk starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContextSource {
    /// The callback's own context (`RtlCaptureContext`).
    Captured,
    /// A `CONTEXT` whose address is a bug-check parameter.
    At(usize),
}

/// What the report reads and writes through.
pub struct Report<'a> {
    /// The kernel (memory reads, context capture, unwinding).
    pub os: &'a dyn Os,
    /// Loaded images, to name addresses.
    pub modules: &'a Modules,
    /// Where lines go (`LogPrintf` at CRITICAL).
    pub log: &'a dyn Logger,
}

impl Report<'_> {
    fn line(&self, args: fmt::Arguments<'_>) {
        self.log
            .printf(LOG_LEVEL_CRITICAL, format_args!("xen|BUGCHECK: {args}\n"));
    }

    /// `<prefix><module> + <offset>` or `<prefix><address>` when no image holds it.
    fn symbol(&self, prefix: &str, address: u64) {
        match usize::try_from(address)
            .ok()
            .and_then(|a| self.modules.lookup(a))
        {
            Some((m, offset)) => self.line(format_args!("{prefix}{m:?} + {offset:016X}")),
            None => self.line(format_args!("{prefix}{address:016X}")),
        }
    }

    fn read_u64(&self, address: u64) -> Option<u64> {
        let mut b = [0u8; 8];
        self.os
            .read_memory(usize::try_from(address).ok()?, &mut b)
            .ok()?;
        Some(u64::from_le_bytes(b))
    }

    /// A NUL-terminated ANSI string at `address`, bounded by [`MAXIMUM_STRING`]; read a
    /// byte at a time so a string ending just before an unreadable page is still shown.
    fn with_string(&self, address: usize, f: impl FnOnce(&str)) {
        if address == 0 {
            return f("(null)");
        }
        let mut buf = [0u8; MAXIMUM_STRING];
        let mut len = 0;
        for (i, slot) in buf.iter_mut().enumerate() {
            let mut b = [0u8; 1];
            if self.os.read_memory(address + i, &mut b).is_err() || b[0] == 0 {
                break;
            }
            *slot = b[0];
            len += 1;
        }
        if len == 0 {
            let mut b = [0u8; 1];
            if self.os.read_memory(address, &mut b).is_err() {
                return f("(unreadable)");
            }
        }
        let text = buf.get(..len).unwrap_or(&[]);
        match core::str::from_utf8(text) {
            Ok(t) => f(t),
            Err(e) => {
                f(core::str::from_utf8(text.get(..e.valid_up_to()).unwrap_or(&[])).unwrap_or(""))
            }
        }
    }

    /// The exception records chained from `address` (`BugCheckDumpExceptionRecord`).
    pub fn exception_records(&self, mut address: usize) {
        use exception_layout::*;
        for _ in 0..MAXIMUM_EXCEPTION_RECORDS {
            if address == 0 {
                return;
            }
            let mut r = [0u8; SIZE];
            if self.os.read_memory(address, &mut r).is_err() {
                self.line(format_args!("EXCEPTION ({address:016X}): UNREADABLE"));
                return;
            }
            self.line(format_args!("EXCEPTION ({address:016X}):"));
            self.line(format_args!("- Code = {:08X}", u32_at(&r, CODE)));
            self.line(format_args!("- Flags = {:08X}", u32_at(&r, FLAGS)));
            self.line(format_args!("- Address = {:016X}", u64_at(&r, ADDRESS)));
            let n = (u32_at(&r, NUMBER_PARAMETERS) as usize).min(MAXIMUM_PARAMETERS);
            for i in 0..n {
                self.line(format_args!(
                    "- Parameter[{i}] = {:016X}",
                    u64_at(&r, INFORMATION + 8 * i)
                ));
            }
            address = usize::try_from(u64_at(&r, RECORD)).unwrap_or(0);
        }
    }

    /// The registers of `c` (`BugCheckDumpContext`).
    pub fn dump_context(&self, c: &RegisterContext) {
        self.line(format_args!("CONTEXT:"));
        for (name, v) in [
            ("GS", c.seg_gs),
            ("FS", c.seg_fs),
            ("ES", c.seg_es),
            ("DS", c.seg_ds),
            ("SS", c.seg_ss),
            ("CS", c.seg_cs),
        ] {
            self.line(format_args!("- {name} = {v:04X}"));
        }
        self.line(format_args!("- EFLAGS = {:08X}", c.eflags));
        // Upstream's order: RDI RSI RBX RDX RCX RAX RBP RIP RSP R8..R15.
        for i in [7usize, 6, 3, 2, 1, 0, 5] {
            self.line(format_args!(
                "- {} = {:016X}",
                context_layout::GPR.get(i).copied().unwrap_or("?"),
                c.gpr.get(i).copied().unwrap_or(0)
            ));
        }
        self.line(format_args!("- RIP = {:016X}", c.rip));
        self.line(format_args!("- RSP = {:016X}", c.rsp()));
        for i in 8..16 {
            self.line(format_args!(
                "- {} = {:016X}",
                context_layout::GPR.get(i).copied().unwrap_or("?"),
                c.gpr.get(i).copied().unwrap_or(0)
            ));
        }
    }

    /// The `CONTEXT` at `address` (a bug-check parameter), or `None` (logged).
    fn context_at(&self, address: usize) -> Option<RegisterContext> {
        let mut bytes = [0u8; context_layout::SIZE];
        if address == 0 || self.os.read_memory(address, &mut bytes).is_err() {
            self.line(format_args!("CONTEXT ({address:016X}): UNREADABLE"));
            return None;
        }
        Some(context_layout::decode(&bytes))
    }

    /// The registers of the context named by `source`, then at most [`MAXIMUM_FRAMES`]
    /// frames (`BugCheckStackDump`): each frame unwinds with the image's unwind data, or
    /// pops the return address for a leaf; the walk stops at a zero RIP or an unreadable
    /// stack. Each frame prints its RSP, the first [`FRAME_PARAMETERS`] stack words and
    /// its RIP as `module + offset`.
    pub fn stack_dump(&self, source: ContextSource) {
        // The captured context describes this function's frame: it is walked here, before
        // this frame returns.
        let context = match source {
            ContextSource::Captured => {
                let c = self.os.capture_context();
                if c.is_none() {
                    self.line(format_args!("NO CONTEXT"));
                }
                c
            }
            ContextSource::At(address) => self.context_at(address),
        };
        let Some(mut c) = context else {
            return;
        };
        self.dump_context(&c);
        self.line(format_args!("STACK:"));
        for _ in 0..MAXIMUM_FRAMES {
            if c.rip == 0 {
                break;
            }
            if !self.os.virtual_unwind(&mut c) {
                let rsp = c.rsp();
                let Some(rip) = self.read_u64(rsp) else {
                    self.line(format_args!("{rsp:016X}: UNREADABLE"));
                    break;
                };
                c.rip = rip;
                c.set_rsp(rsp.wrapping_add(8));
            }
            if c.rip == 0 {
                break;
            }
            let rsp = c.rsp();
            let mut p = [0u64; FRAME_PARAMETERS];
            for (i, v) in p.iter_mut().enumerate() {
                *v = self.read_u64(rsp.wrapping_add(8 * i as u64)).unwrap_or(0);
            }
            let prefix = Frame { rsp, p };
            match usize::try_from(c.rip)
                .ok()
                .and_then(|a| self.modules.lookup(a))
            {
                Some((m, offset)) => self.line(format_args!("{prefix} {m:?} + {offset:016X}")),
                None => self.line(format_args!("{prefix} {:016X}", c.rip)),
            }
        }
    }

    fn irql(&self, p: [usize; 4]) {
        self.line(format_args!("MEMORY REFERENCED: {:016X}", p[0]));
        self.line(format_args!("             IRQL: {:02X}", p[1] as u8));
        self.line(format_args!(
            "           ACCESS: {:016X} ({})",
            p[2],
            match p[2] & 0x9 {
                0 => "READ",
                8 => "EXECUTE",
                _ => "WRITE",
            }
        ));
        self.symbol("          ADDRESS: ", p[3] as u64);
        self.stack_dump(ContextSource::Captured);
    }

    fn exception_at(&self, code: usize, address: usize) {
        match self.modules.lookup(address) {
            Some((m, offset)) => {
                self.line(format_args!("{:08X} AT {m:?} + {offset:016X}", code as u32))
            }
            None => self.line(format_args!("{:08X} AT {address:016X}", code as u32)),
        }
    }

    fn power_state_failure(&self, p: [usize; 4]) {
        use irp_layout::*;
        self.line(format_args!("Code {:08x}", p[0]));
        match p[0] {
            1 => self.line(format_args!(
                "OUTSTANDING IRP (Device Object {:016X})",
                p[1]
            )),
            3 => {
                let irp = p[3];
                self.line(format_args!(
                    "OUTSTANDING IRP {irp:016X} (Device Object {:016X})",
                    p[1]
                ));
                let mut h = [0u8; HEADER];
                if irp == 0 || self.os.read_memory(irp, &mut h).is_err() {
                    self.line(format_args!("IRP {irp:016X}: UNREADABLE"));
                    return;
                }
                let count = h.get(STACK_COUNT).copied().unwrap_or(0) as usize;
                let current = h.get(CURRENT_LOCATION).copied().unwrap_or(0) as usize;
                let mut at = u64_at(&h, CURRENT_STACK_LOCATION) as usize;
                self.line(format_args!("IRP STACK:"));
                // Upstream walks StackCount + 1 locations from the current one.
                for index in 0..=count.min(MAXIMUM_IRP_STACK) {
                    let mut s = [0u8; STACK_LOCATION_SIZE];
                    if self.os.read_memory(at, &mut s).is_err() {
                        self.line(format_args!("[{index}] UNREADABLE"));
                        break;
                    }
                    let mark = if index == current { '>' } else { ' ' };
                    self.line(format_args!(
                        "[{mark}{index}] {:02x} {:02x} {:02x} {:02x}",
                        s[0], s[1], s[2], s[3]
                    ));
                    let routine = u64_at(&s, COMPLETION_ROUTINE);
                    match usize::try_from(routine)
                        .ok()
                        .and_then(|a| self.modules.lookup(a))
                    {
                        Some((m, offset)) => self.line(format_args!(
                            "[{mark}{index}] CompletionRoutine = {m:?} + {offset:016X}"
                        )),
                        None => self.line(format_args!(
                            "[{mark}{index}] CompletionRoutine = {routine:016X}"
                        )),
                    }
                    self.line(format_args!(
                        "[{mark}{index}] Context = {:016X}",
                        u64_at(&s, CONTEXT)
                    ));
                    at = at.wrapping_add(STACK_LOCATION_SIZE);
                }
            }
            _ => {}
        }
    }

    fn inaccessible_boot_device(&self, p: [usize; 4]) {
        // Parameter 1 is a UNICODE_STRING (Length, MaximumLength, Buffer at 8) or a
        // device object; print the name only when it looks like a counted string.
        let mut u = [0u8; 16];
        let name = (p[0] != 0 && self.os.read_memory(p[0], &mut u).is_ok())
            .then(|| {
                let length = u16::from_le_bytes([u[0], u[1]]) as usize;
                let maximum = u16::from_le_bytes([u[2], u[3]]) as usize;
                let buffer = u64_at(&u, 8) as usize;
                (length.is_multiple_of(2)
                    && length <= maximum
                    && length <= 2 * MAXIMUM_STRING
                    && buffer != 0)
                    .then_some((length, buffer))
            })
            .flatten();
        let Some((length, buffer)) = name else {
            self.line(format_args!("DEVICE OBJECT OR NAME: {:016X}", p[0]));
            self.stack_dump(ContextSource::Captured);
            return;
        };
        let mut w = [0u8; 2 * MAXIMUM_STRING];
        let Some(w) = w.get_mut(..length) else {
            return;
        };
        if self.os.read_memory(buffer, w).is_err() {
            self.line(format_args!("DEVICE NAME @ {buffer:016X}: UNREADABLE"));
        } else {
            let mut text = [0u8; MAXIMUM_STRING];
            let mut n = 0;
            for pair in w.chunks_exact(2) {
                let c = u16::from_le_bytes([
                    pair.first().copied().unwrap_or(0),
                    pair.get(1).copied().unwrap_or(0),
                ]);
                if let Some(t) = text.get_mut(n) {
                    *t = if (0x20..0x7F).contains(&c) {
                        c as u8
                    } else {
                        b'?'
                    };
                    n += 1;
                }
            }
            self.line(format_args!(
                "{}",
                core::str::from_utf8(text.get(..n).unwrap_or(&[])).unwrap_or("?")
            ));
        }
        self.stack_dump(ContextSource::Captured);
    }

    /// The decoded report of bug check `c` with parameters `p` (after the header line).
    pub fn decode(&self, c: u32, p: [usize; 4]) {
        use code::*;
        match c {
            IRQL_NOT_LESS_OR_EQUAL | DRIVER_IRQL_NOT_LESS_OR_EQUAL => self.irql(p),
            SYSTEM_SERVICE_EXCEPTION => {
                self.exception_records(p[1]);
                self.stack_dump(ContextSource::At(p[2]));
            }
            SYSTEM_THREAD_EXCEPTION_NOT_HANDLED | SYSTEM_THREAD_EXCEPTION_NOT_HANDLED_M => {
                self.exception_at(p[0], p[1]);
                self.exception_records(p[2]);
                self.stack_dump(ContextSource::At(p[3]));
            }
            KERNEL_MODE_EXCEPTION_NOT_HANDLED | KERNEL_MODE_EXCEPTION_NOT_HANDLED_M => {
                self.exception_at(p[0], p[1]);
                self.line(format_args!("- Code = {:08X}", p[0] as u32));
                self.stack_dump(ContextSource::Captured);
            }
            CRITICAL_OBJECT_TERMINATION => {
                self.line(format_args!("Type = {:08X}", p[0] as u32));
                self.line(format_args!("Object = {:016X}", p[1]));
                self.with_string(p[2], |s| self.line(format_args!("Name = {s}")));
                self.with_string(p[3], |s| self.line(format_args!("Reason = {s}")));
                self.stack_dump(ContextSource::Captured);
            }
            INACCESSIBLE_BOOT_DEVICE => self.inaccessible_boot_device(p),
            DRIVER_POWER_STATE_FAILURE => self.power_state_failure(p),
            ASSERTION_FAILURE => {
                self.with_string(p[1], |file| {
                    self.line(format_args!("FILE: {file} LINE: {}", p[2] as u32))
                });
                self.with_string(p[0], |s| self.line(format_args!("TEXT: {s}")));
                self.stack_dump(ContextSource::Captured);
            }
            CRITICAL_PROCESS_DIED => {
                self.line(format_args!("PROCESS OR THREAD: {:016X}", p[0]));
                self.line(format_args!("SESSION: {:X}", p[1]));
                self.stack_dump(ContextSource::Captured);
            }
            _ => self.stack_dump(ContextSource::Captured),
        }
    }
}

/// The frame prefix `RSP: (P0 P1 P2 P3)`.
struct Frame {
    rsp: u64,
    p: [u64; FRAME_PARAMETERS],
}

impl fmt::Display for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d] = self.p;
        write!(
            f,
            "{:016X}: ({a:016X} {b:016X} {c:016X} {d:016X})",
            self.rsp
        )
    }
}

/// The callback: `SHUTDOWN_crash` first (so the toolstack sees a crash even if logging
/// hangs), then the bug check's name and parameters, its decoded report with the register
/// dump and stack walk, and the closing line. Allocates nothing (runs at HIGH_LEVEL).
pub fn callback(
    hv: &dyn Hypercall,
    os: &dyn Os,
    modules: &Modules,
    c: u32,
    p: [usize; 4],
    log: &dyn Logger,
) {
    let _ = crate::sched::shutdown_code(hv, ShutdownReason::CRASH.0);
    let report = Report { os, modules, log };
    report.line(format_args!("====>"));
    match name(c) {
        Some(n) => report.line(format_args!(
            "{n}: {:016X} {:016X} {:016X} {:016X}",
            p[0], p[1], p[2], p[3]
        )),
        None => report.line(format_args!(
            "{c:08X}: {:016X} {:016X} {:016X} {:016X}",
            p[0], p[1], p[2], p[3]
        )),
    }
    report.decode(c, p);
    report.line(format_args!("<===="));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TestLogger;
    use common::os::ModuleInfo;
    use xen_sim::machine::Machine;

    const XENVIF: usize = 0xFFFF_F801_0000_0000;
    const NTOS: usize = 0xFFFF_F800_0000_0000;
    const STACK: usize = 0xFFFF_A000_0000_1000;

    fn modules() -> Modules {
        let m = Modules::new();
        m.add(&ModuleInfo {
            base: XENVIF,
            size: 0x10000,
            name: "\\SystemRoot\\System32\\drivers\\XENVIF.SYS".into(),
        });
        m.add(&ModuleInfo {
            base: NTOS,
            size: 0x100000,
            name: "\\SystemRoot\\system32\\ntoskrnl.exe".into(),
        });
        m
    }

    /// The report's lines without the `[level] xen|BUGCHECK: ` prefix and newline.
    fn report(m: &Machine, c: u32, p: [usize; 4]) -> Vec<String> {
        let log = TestLogger::default();
        callback(&*m.hv, &*m.guest, &modules(), c, p, &log);
        log.lines()
            .into_iter()
            .map(|l| {
                assert!(l.starts_with("[0x80000000] xen|BUGCHECK: "), "{l:?}");
                assert!(l.ends_with('\n'), "{l:?}");
                l["[0x80000000] xen|BUGCHECK: ".len()..l.len() - 1].to_string()
            })
            .collect()
    }

    fn context(rip: u64, rsp: u64) -> RegisterContext {
        let mut c = RegisterContext {
            seg_gs: 0x2B,
            seg_fs: 0x53,
            seg_es: 0x2B,
            seg_ds: 0x2B,
            seg_ss: 0x18,
            seg_cs: 0x10,
            eflags: 0x246,
            rip,
            ..Default::default()
        };
        for (i, r) in c.gpr.iter_mut().enumerate() {
            *r = 0x1111 * (i as u64 + 1);
        }
        c.set_rsp(rsp);
        c
    }

    /// The lines after `STACK:`.
    fn frames(lines: &[String]) -> Vec<String> {
        let at = lines.iter().position(|l| l == "STACK:").expect("STACK:");
        lines[at + 1..lines.len() - 1].to_vec()
    }

    /// A captured context in xenvif with a three-frame stack: xenvif (unwind data, 0x20
    /// bytes) → ntoskrnl leaf → an address in no image → return address 0.
    fn three_frames(m: &Machine) {
        let rsp = STACK as u64;
        m.guest
            .set_captured_context(Some(context(XENVIF as u64 + 0x1234, rsp)));
        m.guest
            .add_function(XENVIF as u64 + 0x1000, XENVIF as u64 + 0x2000, 0x20);
        let mut words = vec![0u64; 16];
        // xenvif's frame: 4 words of locals, then the return address into ntoskrnl.
        words[..4].copy_from_slice(&[0xA0, 0xA1, 0xA2, 0xA3]);
        words[4] = NTOS as u64 + 0x5678;
        // ntoskrnl (no unwind data: a leaf): its return address is on top.
        words[5] = 0xDEAD_0000_BEEF;
        // The unknown function is a leaf too; its return address is 0: end of stack.
        words[6] = 0;
        m.guest.set_kernel_words(STACK, &words);
    }

    #[test]
    fn crash_code_first_then_report() {
        let m = Machine::new();
        let before = m.hv.call_count(29, 5);
        let lines = report(
            &m,
            code::DRIVER_IRQL_NOT_LESS_OR_EQUAL,
            [0x10, 2, 1, XENVIF + 0x123],
        );
        assert_eq!(m.hv.call_count(29, 5), before + 1, "SCHEDOP_shutdown_code");
        assert_eq!(
            lines[..7],
            [
                "====>",
                "DRIVER_IRQL_NOT_LESS_OR_EQUAL: 0000000000000010 0000000000000002 0000000000000001 FFFFF80100000123",
                "MEMORY REFERENCED: 0000000000000010",
                "             IRQL: 02",
                "           ACCESS: 0000000000000001 (WRITE)",
                "          ADDRESS: xenvif.sys + 0000000000000123",
                "NO CONTEXT",
            ]
        );
        assert_eq!(lines.last().unwrap(), "<====");
    }

    #[test]
    fn register_dump_and_stack_walk() {
        let m = Machine::new();
        three_frames(&m);
        let lines = report(&m, 0xDEAD, [1, 2, 3, 4]);
        assert_eq!(
            lines[1],
            "0000DEAD: 0000000000000001 0000000000000002 0000000000000003 0000000000000004"
        );
        let at = lines.iter().position(|l| l == "CONTEXT:").unwrap();
        assert_eq!(
            lines[at + 1..at + 25],
            [
                "- GS = 002B",
                "- FS = 0053",
                "- ES = 002B",
                "- DS = 002B",
                "- SS = 0018",
                "- CS = 0010",
                "- EFLAGS = 00000246",
                "- RDI = 0000000000008888",
                "- RSI = 0000000000007777",
                "- RBX = 0000000000004444",
                "- RDX = 0000000000003333",
                "- RCX = 0000000000002222",
                "- RAX = 0000000000001111",
                "- RBP = 0000000000006666",
                "- RIP = FFFFF80100001234",
                "- RSP = FFFFA00000001000",
                "- R8 = 0000000000009999",
                "- R9 = 000000000000AAAA",
                "- R10 = 000000000000BBBB",
                "- R11 = 000000000000CCCC",
                "- R12 = 000000000000DDDD",
                "- R13 = 000000000000EEEE",
                "- R14 = 000000000000FFFF",
                "- R15 = 0000000000011110",
            ]
        );
        assert_eq!(
            frames(&lines),
            [
                // Unwound out of xenvif: RSP above its return address, RIP in ntoskrnl.
                "FFFFA00000001028: (0000DEAD0000BEEF 0000000000000000 0000000000000000 0000000000000000) ntoskrnl.exe + 0000000000005678",
                // ntoskrnl was a leaf: its return address popped; no image holds it.
                "FFFFA00000001030: (0000000000000000 0000000000000000 0000000000000000 0000000000000000) 0000DEAD0000BEEF",
                // The unknown function's return address is 0: the walk stops there.
            ]
        );
    }

    #[test]
    fn walk_is_bounded_and_stops_on_unreadable_stack() {
        let m = Machine::new();
        // A function that returns into itself forever: the walk stops after 20 frames.
        let f = NTOS as u64 + 0x100;
        m.guest.add_function(f, f + 0x100, 0);
        m.guest.set_kernel_words(STACK, &vec![f + 8; 64]);
        m.guest.set_captured_context(Some(context(f, STACK as u64)));
        let lines = report(&m, 0xDEAD, [0; 4]);
        let frames = frames(&lines);
        assert_eq!(frames.len(), MAXIMUM_FRAMES);
        assert!(frames
            .iter()
            .all(|l| l.ends_with(") ntoskrnl.exe + 0000000000000108")));
        // A leaf whose stack is not resident: one line, then the walk ends.
        m.guest
            .set_captured_context(Some(context(0x1234, 0xFFFF_B000_0000_0000)));
        let lines = report(&m, 0xDEAD, [0; 4]);
        assert_eq!(frames_of(&lines), ["FFFFB00000000000: UNREADABLE"]);
        // RIP 0 at the start: no frame at all.
        m.guest.set_captured_context(Some(context(0, STACK as u64)));
        let lines = report(&m, 0xDEAD, [0; 4]);
        assert!(frames_of(&lines).is_empty(), "{lines:?}");
    }

    fn frames_of(lines: &[String]) -> Vec<String> {
        frames(lines)
    }

    fn put(b: &mut [u8], o: usize, v: &[u8]) {
        b[o..o + v.len()].copy_from_slice(v);
    }

    #[test]
    fn exception_reports_read_records_and_the_faulting_context() {
        let m = Machine::new();
        let record = 0xFFFF_C000_0000_0000usize;
        let chained = record + 0x100;
        let mut r = vec![0u8; exception_layout::SIZE];
        put(&mut r, 0, &0xC000_0005u32.to_le_bytes());
        put(&mut r, 4, &1u32.to_le_bytes());
        put(&mut r, 8, &(chained as u64).to_le_bytes());
        put(&mut r, 0x10, &(XENVIF as u64 + 0x40).to_le_bytes());
        put(&mut r, 0x18, &99u32.to_le_bytes()); // bounded to 15
        for i in 0..15u64 {
            put(&mut r, 0x20 + 8 * i as usize, &(0x100 + i).to_le_bytes());
        }
        m.guest.set_kernel_memory(record, r);
        let mut r2 = vec![0u8; exception_layout::SIZE];
        put(&mut r2, 0, &0x8000_0003u32.to_le_bytes());
        m.guest.set_kernel_memory(chained, r2);
        // The faulting CONTEXT, in the x64 layout.
        let ctx_at = 0xFFFF_C000_0001_0000usize;
        let mut bytes = vec![0u8; context_layout::SIZE];
        context_layout::encode(&context(NTOS as u64 + 0x42, STACK as u64), &mut bytes);
        m.guest.set_kernel_memory(ctx_at, bytes);
        m.guest.set_kernel_words(STACK, &[0, 0, 0, 0]);

        let lines = report(
            &m,
            code::SYSTEM_THREAD_EXCEPTION_NOT_HANDLED,
            [0xC000_0005, XENVIF + 0x40, record, ctx_at],
        );
        assert_eq!(lines[2], "C0000005 AT xenvif.sys + 0000000000000040");
        assert_eq!(lines[3], format!("EXCEPTION ({record:016X}):"));
        assert_eq!(lines[4], "- Code = C0000005");
        assert_eq!(lines[5], "- Flags = 00000001");
        assert_eq!(lines[6], "- Address = FFFFF80100000040");
        assert_eq!(lines[7], "- Parameter[0] = 0000000000000100");
        assert_eq!(lines[21], "- Parameter[14] = 000000000000010E");
        assert_eq!(lines[22], format!("EXCEPTION ({chained:016X}):"));
        assert_eq!(lines[23], "- Code = 80000003");
        assert!(lines.contains(&"- RIP = FFFFF80000000042".to_string()));
        // The context's RIP is a leaf with a 0 return address: no frame.
        assert!(frames(&lines).is_empty());

        let lines = report(
            &m,
            code::SYSTEM_SERVICE_EXCEPTION,
            [0xC000_0005, record, ctx_at, 0],
        );
        assert_eq!(lines[2], format!("EXCEPTION ({record:016X}):"));
        assert!(lines.contains(&"- RIP = FFFFF80000000042".to_string()));
        // Unreadable record and context pointers are reported, not followed.
        let lines = report(&m, code::SYSTEM_SERVICE_EXCEPTION, [0, 0x1000, 0x2000, 0]);
        assert_eq!(
            lines[2..5],
            [
                "EXCEPTION (0000000000001000): UNREADABLE",
                "CONTEXT (0000000000002000): UNREADABLE",
                "<====",
            ]
        );
    }

    #[test]
    fn every_decoded_code() {
        let m = Machine::new();
        m.guest.set_captured_context(Some(context(0, STACK as u64)));
        let text = 0xFFFF_D000_0000_0000usize;
        m.guest
            .set_kernel_memory(text, b"Irql <= DISPATCH\0".to_vec());
        m.guest.set_kernel_memory(text + 0x100, b"pdo.c\0".to_vec());
        // A UNICODE_STRING naming the boot device.
        let device: Vec<u8> = "\\ArcName\\disk(0)"
            .encode_utf16()
            .flat_map(|u| u.to_le_bytes())
            .collect();
        let mut us = vec![0u8; 16];
        put(&mut us, 0, &(device.len() as u16).to_le_bytes());
        put(&mut us, 2, &(device.len() as u16).to_le_bytes());
        put(&mut us, 8, &((text + 0x200) as u64).to_le_bytes());
        m.guest.set_kernel_memory(text + 0x180, us);
        m.guest.set_kernel_memory(text + 0x200, device);
        // An IRP with 2 stack locations, the current one being index 1.
        let irp = text + 0x1000;
        let mut h = vec![0u8; irp_layout::HEADER];
        h[irp_layout::STACK_COUNT] = 2;
        h[irp_layout::CURRENT_LOCATION] = 1;
        put(
            &mut h,
            irp_layout::CURRENT_STACK_LOCATION,
            &((irp + 0x100) as u64).to_le_bytes(),
        );
        m.guest.set_kernel_memory(irp, h);
        let mut locations = vec![0u8; 3 * irp_layout::STACK_LOCATION_SIZE];
        locations[..4].copy_from_slice(&[0x16, 0x02, 0x00, 0xE0]);
        put(
            &mut locations,
            irp_layout::COMPLETION_ROUTINE,
            &(XENVIF as u64 + 0x800).to_le_bytes(),
        );
        put(&mut locations, irp_layout::CONTEXT, &0x77u64.to_le_bytes());
        m.guest.set_kernel_memory(irp + 0x100, locations);

        use code::*;
        let cases: Vec<(u32, [usize; 4], Vec<&str>)> = vec![
            (
                IRQL_NOT_LESS_OR_EQUAL,
                [0x8, 0xFF, 8, 0x42],
                vec![
                    "MEMORY REFERENCED: 0000000000000008",
                    "             IRQL: FF",
                    "           ACCESS: 0000000000000008 (EXECUTE)",
                    "          ADDRESS: 0000000000000042",
                ],
            ),
            (
                KERNEL_MODE_EXCEPTION_NOT_HANDLED,
                [0x8000_0003, NTOS + 0x10, 0, 0],
                vec![
                    "80000003 AT ntoskrnl.exe + 0000000000000010",
                    "- Code = 80000003",
                ],
            ),
            (
                KERNEL_MODE_EXCEPTION_NOT_HANDLED_M,
                [0xC000_001D, 0x99, 0, 0],
                vec!["C000001D AT 0000000000000099", "- Code = C000001D"],
            ),
            (
                SYSTEM_THREAD_EXCEPTION_NOT_HANDLED_M,
                [0xC000_0005, 0x99, 0, 0],
                vec![
                    "C0000005 AT 0000000000000099",
                    "CONTEXT (0000000000000000): UNREADABLE",
                ],
            ),
            (
                CRITICAL_OBJECT_TERMINATION,
                [3, 0xABC, text + 0x100, 0],
                vec![
                    "Type = 00000003",
                    "Object = 0000000000000ABC",
                    "Name = pdo.c",
                    "Reason = (null)",
                ],
            ),
            (
                INACCESSIBLE_BOOT_DEVICE,
                [text + 0x180, 0, 0, 0],
                vec!["\\ArcName\\disk(0)"],
            ),
            (
                INACCESSIBLE_BOOT_DEVICE,
                [0x5000, 0, 0, 0],
                vec!["DEVICE OBJECT OR NAME: 0000000000005000"],
            ),
            (
                DRIVER_POWER_STATE_FAILURE,
                [1, 0xD0, 0, 0],
                vec![
                    "Code 00000001",
                    "OUTSTANDING IRP (Device Object 00000000000000D0)",
                ],
            ),
            (
                DRIVER_POWER_STATE_FAILURE,
                [3, 0xD0, 0, irp],
                vec![
                    "Code 00000003",
                    "OUTSTANDING IRP FFFFD00000001000 (Device Object 00000000000000D0)",
                    "IRP STACK:",
                    "[ 0] 16 02 00 e0",
                    "[ 0] CompletionRoutine = xenvif.sys + 0000000000000800",
                    "[ 0] Context = 0000000000000077",
                    "[>1] 00 00 00 00",
                    "[>1] CompletionRoutine = 0000000000000000",
                    "[>1] Context = 0000000000000000",
                    "[ 2] 00 00 00 00",
                    "[ 2] CompletionRoutine = 0000000000000000",
                    "[ 2] Context = 0000000000000000",
                ],
            ),
            (
                ASSERTION_FAILURE,
                [text, text + 0x100, 1234, 0],
                vec!["FILE: pdo.c LINE: 1234", "TEXT: Irql <= DISPATCH"],
            ),
            (
                ASSERTION_FAILURE,
                [0x10, 0, 7, 0],
                vec!["FILE: (null) LINE: 7", "TEXT: (unreadable)"],
            ),
            (
                CRITICAL_PROCESS_DIED,
                [0xFFFF_E000_0000_0080, 1, 0, 0],
                vec!["PROCESS OR THREAD: FFFFE00000000080", "SESSION: 1"],
            ),
        ];
        for (c, p, want) in cases {
            let lines = report(&m, c, p);
            assert_eq!(lines[0], "====>");
            assert!(lines[1].starts_with(name(c).unwrap()), "{lines:?}");
            assert_eq!(lines[2..2 + want.len()], want[..], "{c:#x}: {lines:?}");
            let rest = &lines[2 + want.len()..];
            // Every report but the IRP dump and the unreadable context ends with the
            // register dump of the captured context and an (empty) stack.
            if c == DRIVER_POWER_STATE_FAILURE || c == SYSTEM_THREAD_EXCEPTION_NOT_HANDLED_M {
                assert_eq!(rest, ["<===="], "{c:#x}");
            } else {
                assert_eq!(rest[0], "CONTEXT:", "{c:#x}");
                assert_eq!(rest[rest.len() - 2..], ["STACK:", "<===="], "{c:#x}");
            }
        }
        for c in [
            0x0A,
            0xD1,
            0x3B,
            0x7E,
            0x1000_007E,
            0x8E,
            0x1000_008E,
            0xF4,
            0x7B,
            0x9F,
            0x7C,
            0xEF,
        ] {
            assert!(name(c).is_some(), "{c:#x}");
        }
        assert_eq!(name(0xDEAD), None);
    }

    #[test]
    fn context_layout_round_trips() {
        let c = context(0x1234_5678, 0x9ABC);
        let mut bytes = vec![0u8; context_layout::SIZE];
        context_layout::encode(&c, &mut bytes);
        assert_eq!(&bytes[0xF8..0x100], &0x1234_5678u64.to_le_bytes());
        assert_eq!(&bytes[0x98..0xA0], &0x9ABCu64.to_le_bytes());
        assert_eq!(context_layout::decode(&bytes), c);
    }
}
