//! `bug_check.c`: the bug-check callback — tell Xen the domain crashed
//! (`SCHEDOP_shutdown_code(SHUTDOWN_crash)`), then log the bug check and a decoded report.
#![forbid(unsafe_code)]

use common::hypercall::Hypercall;
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

fn symbol(modules: &Modules, address: usize, log: &dyn Logger, what: &str) {
    match modules.lookup(address) {
        Some((m, offset)) => log.printf(
            LOG_LEVEL_CRITICAL,
            format_args!("BUGCHECK: {what}: {m:?} + {offset:x}\n"),
        ),
        None => log.printf(
            LOG_LEVEL_CRITICAL,
            format_args!("BUGCHECK: {what}: {address:016X}\n"),
        ),
    }
}

/// The callback: `SHUTDOWN_crash` first (so the toolstack sees a crash even if logging
/// hangs), then the report.
pub fn callback(hv: &dyn Hypercall, modules: &Modules, c: u32, p: [usize; 4], log: &dyn Logger) {
    let _ = crate::sched::shutdown_code(hv, ShutdownReason::CRASH.0);
    log.printf(LOG_LEVEL_CRITICAL, format_args!("BUGCHECK: ====>\n"));
    log.printf(
        LOG_LEVEL_CRITICAL,
        format_args!(
            "BUGCHECK: {} ({:08X}): {:016X} {:016X} {:016X} {:016X}\n",
            name(c).unwrap_or("UNKNOWN"),
            c,
            p[0],
            p[1],
            p[2],
            p[3]
        ),
    );
    use code::*;
    match c {
        IRQL_NOT_LESS_OR_EQUAL | DRIVER_IRQL_NOT_LESS_OR_EQUAL => {
            log.printf(
                LOG_LEVEL_CRITICAL,
                format_args!(
                    "BUGCHECK: MEMORY REFERENCED: {:016X} IRQL: {:02X} ACCESS: {}\n",
                    p[0],
                    p[1],
                    match p[2] & 0x9 {
                        0 => "READ",
                        8 => "EXECUTE",
                        _ => "WRITE",
                    }
                ),
            );
            symbol(modules, p[3], log, "ADDRESS");
        }
        SYSTEM_SERVICE_EXCEPTION
        | SYSTEM_THREAD_EXCEPTION_NOT_HANDLED
        | SYSTEM_THREAD_EXCEPTION_NOT_HANDLED_M
        | KERNEL_MODE_EXCEPTION_NOT_HANDLED
        | KERNEL_MODE_EXCEPTION_NOT_HANDLED_M => {
            log.printf(
                LOG_LEVEL_CRITICAL,
                format_args!("BUGCHECK: EXCEPTION: {:08X}\n", p[0] as u32),
            );
            symbol(modules, p[1], log, "EXCEPTION ADDRESS");
        }
        CRITICAL_OBJECT_TERMINATION => log.printf(
            LOG_LEVEL_CRITICAL,
            format_args!(
                "BUGCHECK: OBJECT TYPE: {:X} OBJECT: {:016X} NAME: {:016X} MESSAGE: {:016X}\n",
                p[0], p[1], p[2], p[3]
            ),
        ),
        INACCESSIBLE_BOOT_DEVICE => log.printf(
            LOG_LEVEL_CRITICAL,
            format_args!(
                "BUGCHECK: DEVICE OBJECT OR NAME: {:016X} STATUS: {:08X}\n",
                p[0], p[1] as u32
            ),
        ),
        DRIVER_POWER_STATE_FAILURE => log.printf(
            LOG_LEVEL_CRITICAL,
            format_args!(
                "BUGCHECK: SUBCODE: {:X} DEVICE OBJECT: {:016X} IRP/NOTIFY: {:016X} {:016X}\n",
                p[0], p[1], p[2], p[3]
            ),
        ),
        ASSERTION_FAILURE => log.printf(
            LOG_LEVEL_CRITICAL,
            format_args!(
                "BUGCHECK: ASSERTION TEXT @ {:016X} FILE @ {:016X} LINE {}\n",
                p[0], p[1], p[2] as u32
            ),
        ),
        CRITICAL_PROCESS_DIED => log.printf(
            LOG_LEVEL_CRITICAL,
            format_args!(
                "BUGCHECK: PROCESS OR THREAD: {:016X} SESSION: {:X}\n",
                p[0], p[1]
            ),
        ),
        _ => {}
    }
    log.printf(LOG_LEVEL_CRITICAL, format_args!("BUGCHECK: <====\n"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakeHv;
    use crate::TestLogger;
    use common::os::ModuleInfo;

    #[test]
    fn crash_code_first_then_report() {
        let hv = FakeHv::new(b"GenuineIntel", Some(0x4000_0000));
        let modules = Modules::new();
        modules.add(&ModuleInfo {
            base: 0xF000,
            size: 0x1000,
            name: "XENVIF.SYS".into(),
        });
        let log = TestLogger::default();
        callback(
            &hv,
            &modules,
            code::DRIVER_IRQL_NOT_LESS_OR_EQUAL,
            [0x10, 2, 1, 0xF123],
            &log,
        );
        let calls = hv.calls.lock().unwrap();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].0, 29, "sched_op");
        assert_eq!(calls[0].1[0], 5, "SCHEDOP_shutdown_code");
        let lines = log.lines();
        assert!(
            lines[1].contains("DRIVER_IRQL_NOT_LESS_OR_EQUAL (000000D1)"),
            "{lines:?}"
        );
        assert!(lines[2].contains("ACCESS: WRITE"));
        assert!(lines[3].contains("xenvif.sys + 123"), "{lines:?}");
        assert!(lines.last().unwrap().contains("<===="));
    }

    #[test]
    fn every_decoded_code_has_a_name() {
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
            let log = TestLogger::default();
            let hv = FakeHv::new(b"GenuineIntel", Some(0x4000_0000));
            callback(&hv, &Modules::new(), c, [1, 2, 3, 4], &log);
            assert!(log.lines().len() >= 4, "{c:#x}: {:?}", log.lines());
        }
        assert_eq!(name(0xDEAD), None);
        let log = TestLogger::default();
        let hv = FakeHv::new(b"GenuineIntel", Some(0x4000_0000));
        callback(&hv, &Modules::new(), 0xDEAD, [0; 4], &log);
        assert!(log.lines()[1].contains("UNKNOWN (0000DEAD)"));
    }
}
