//! `unplug.c`: the per-boot unplug request decision (ForceUnplug, the one-shot Unplug
//! counters and the `Enum\XENBUS` veto), the emulated-device unplug port protocol and the
//! counters PV drivers bump to request an unplug at the next boot.
#![forbid(unsafe_code)]

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use common::hypercall::{Hypercall, PortWidth};
use common::os::{KeyHandle, Os, RegValue};
use xen_include::api::{UnplugType, LOG_LEVEL_WARNING, UNPLUG_DISKS, UNPLUG_NICS};
use xen_include::status::{NtStatus, STATUS_INVALID_PARAMETER, STATUS_NOT_SUPPORTED};

use crate::registry;
use crate::Logger;
use common::sync::HighLock;

use xen_include::platform::{
    product, UnplugFlags, XEN_PLATFORM_IOPORT_MAGIC, XEN_PLATFORM_IOPORT_VERSION,
    XEN_PLATFORM_MAGIC, XEN_PLATFORM_MAGIC_BLACKLISTED,
};

/// The platform device's unplug/magic/build port.
pub const UNPLUG_PORT: u16 = XEN_PLATFORM_IOPORT_MAGIC;
/// The platform device's version/product port.
pub const VERSION_PORT: u16 = XEN_PLATFORM_IOPORT_VERSION;
/// Product number written to port 0x12 (upstream writes 0xFFFF, marked "FIXME").
pub const PRODUCT_NUMBER: u16 = product::EXPERIMENTAL;

/// `HKLM\SYSTEM\CurrentControlSet\Enum\XENBUS`: PV devices enumerated so far.
pub const ENUM_XENBUS_PATH: &str = "SYSTEM\\CurrentControlSet\\Enum\\XENBUS";

/// The registry value name and the `Enum\XENBUS` name fragment of an unplug type.
pub fn type_names(t: UnplugType) -> Option<(&'static str, &'static str)> {
    match t {
        UNPLUG_DISKS => Some(("DISKS", "VBD")),
        UNPLUG_NICS => Some(("NICS", "VIF")),
        _ => None,
    }
}

/// The outcome of the request decision for one type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Unplug this type this boot.
    pub request: bool,
    /// Delete the one-shot `Unplug\<type>` value.
    pub consume: bool,
    /// The value that decided (logged).
    pub value: u32,
}

/// `UnplugSetRequest` as a pure function: `force` and `unplug` are the DWORDs of
/// `ForceUnplug\<type>` and `Unplug\<type>` (None when absent or unreadable), `enum_keys`
/// the subkeys of `Enum\XENBUS` (None when it cannot be read).
pub fn decide(
    force: Option<u32>,
    unplug: Option<u32>,
    enum_keys: Option<&[String]>,
    enum_name: &str,
) -> Decision {
    if let Some(v) = force.filter(|v| *v != 0) {
        return Decision {
            request: true,
            consume: true,
            value: v,
        };
    }
    let Some(mut value) = unplug else {
        return Decision {
            request: false,
            consume: false,
            value: 0,
        };
    };
    if value != 0 {
        let found = enum_keys.is_some_and(|keys| keys.iter().any(|k| k.contains(enum_name)));
        if !found {
            value = 0;
        }
    }
    Decision {
        request: value != 0,
        consume: true,
        value,
    }
}

/// The port writes of `UnplugDevices` for one type.
pub fn unplug_flags(t: UnplugType, boot_emulated: bool) -> Option<UnplugFlags> {
    match t {
        UNPLUG_DISKS if boot_emulated => Some(UnplugFlags::DISKS_BOOT_EMULATED),
        UNPLUG_DISKS => Some(UnplugFlags::DISKS),
        UNPLUG_NICS => Some(UnplugFlags::NICS),
        _ => None,
    }
}

/// The build number written to port 0x10: `(MAJOR << 16) | (MINOR << 8) | MICRO`.
pub fn build_number() -> u32 {
    xen_include::platform::build_number(
        xenbus_rs::MAJOR_VERSION as u8,
        xenbus_rs::MINOR_VERSION as u8,
        xenbus_rs::MICRO_VERSION as u8,
    )
}

/// `UnplugPreamble`: returns whether QEMU blacklisted the drivers, or
/// `STATUS_NOT_SUPPORTED` when the magic is wrong (no unplug protocol).
pub fn preamble(hv: &dyn Hypercall) -> Result<bool, NtStatus> {
    let magic = hv.port_read(UNPLUG_PORT, PortWidth::Word) as u16;
    if magic == XEN_PLATFORM_MAGIC_BLACKLISTED {
        return Ok(true);
    }
    if magic != XEN_PLATFORM_MAGIC {
        return Err(STATUS_NOT_SUPPORTED);
    }
    let version = hv.port_read(VERSION_PORT, PortWidth::Byte) as u8;
    if version == 0 {
        return Ok(false);
    }
    hv.port_write(VERSION_PORT, PortWidth::Word, u32::from(PRODUCT_NUMBER));
    hv.port_write(UNPLUG_PORT, PortWidth::Dword, build_number());
    let magic = hv.port_read(UNPLUG_PORT, PortWidth::Word) as u16;
    Ok(magic == XEN_PLATFORM_MAGIC_BLACKLISTED)
}

#[derive(Default)]
struct State {
    request: [bool; 2],
    boot_emulated: bool,
    blacklisted: bool,
}

/// The unplug context of xen.sys.
#[derive(Default)]
pub struct Unplug {
    /// HIGH_LEVEL (upstream `HIGH_LOCK`): `UnplugDevices` runs in the resume's HIGH_LEVEL
    /// phase.
    state: HighLock<State>,
}

fn dword(os: &dyn Os, key: KeyHandle, name: &str) -> Option<u32> {
    registry::query_dword(os, key, name).ok()
}

impl Unplug {
    /// A context with no requests.
    pub const fn new() -> Self {
        Self {
            state: HighLock::new(State {
                request: [false; 2],
                boot_emulated: false,
                blacklisted: false,
            }),
        }
    }

    /// `UnplugInitialize`: decide the requests of this boot (consuming the one-shot values)
    /// and read `XEN:BOOT_EMULATED`.
    pub fn initialize(
        &self,
        os: &dyn Os,
        unplug_key: KeyHandle,
        force_key: KeyHandle,
        log: &dyn Logger,
    ) {
        let enum_keys: Option<Vec<String>> = registry::subkeys(os, ENUM_XENBUS_PATH).ok();
        let mut request = [false; 2];
        for (t, slot) in [UNPLUG_DISKS, UNPLUG_NICS]
            .into_iter()
            .zip(request.iter_mut())
        {
            let Some((value_name, enum_name)) = type_names(t) else {
                continue;
            };
            let d = decide(
                dword(os, force_key, value_name),
                dword(os, unplug_key, value_name),
                enum_keys.as_deref(),
                enum_name,
            );
            if d.consume {
                if d.value == 0 && dword(os, unplug_key, value_name).is_some_and(|v| v != 0) {
                    log.info(format_args!("VETO Unplug {enum_name}"));
                }
                let _ = os.registry_delete_value(unplug_key, value_name);
                log.info(format_args!("{value_name} ({})", d.value));
            }
            *slot = d.request;
        }
        let boot_emulated = match registry::start_option_value(os, "XEN:BOOT_EMULATED=").as_deref()
        {
            Some("TRUE") => true,
            Some("FALSE") | None => false,
            Some(other) => {
                log.warning(format_args!(
                    "UNRECOGNIZED VALUE OF XEN:BOOT_EMULATED=: {other}"
                ));
                false
            }
        };
        let mut s = self.state.lock();
        s.request = request;
        s.boot_emulated = boot_emulated;
        s.blacklisted = false;
    }

    /// `UnplugTeardown`.
    pub fn teardown(&self) {
        *self.state.lock() = State::default();
    }

    /// `UnplugGetRequest`.
    pub fn get_request(&self, t: UnplugType) -> bool {
        let s = self.state.lock();
        usize::try_from(t)
            .ok()
            .and_then(|i| s.request.get(i).copied())
            .unwrap_or(false)
    }

    /// Whether the last preamble found the drivers blacklisted.
    pub fn blacklisted(&self) -> bool {
        self.state.lock().blacklisted
    }

    /// `UnplugDevices`: the preamble, then the unplug writes for every requested type.
    /// When the platform does not speak the protocol nothing is written (upstream only
    /// asserts and writes anyway).
    pub fn devices(&self, hv: &dyn Hypercall, log: &dyn Logger) {
        // Runs at HIGH_LEVEL on resume: never spin forever on a preempted holder.
        let Some(mut s) = crate::lock_bounded(&self.state) else {
            log.error(format_args!("UNPLUG: STATE LOCK BUSY"));
            return;
        };
        match preamble(hv) {
            Ok(blacklisted) => s.blacklisted = blacklisted,
            Err(status) => {
                log.error(format_args!(
                    "UNPLUG PROTOCOL NOT SUPPORTED ({:08x})",
                    status as u32
                ));
                return;
            }
        }
        log.printf(
            LOG_LEVEL_WARNING,
            format_args!(
                "UNPLUG: PRE-AMBLE (DRIVERS {})\n",
                if s.blacklisted {
                    "BLACKLISTED"
                } else {
                    "NOT BLACKLISTED"
                }
            ),
        );
        for t in [UNPLUG_DISKS, UNPLUG_NICS] {
            if !s.request.get(t as usize).copied().unwrap_or(false) {
                continue;
            }
            if let Some(flags) = unplug_flags(t, s.boot_emulated) {
                hv.port_write(UNPLUG_PORT, PortWidth::Word, u32::from(flags.bits()));
                let what = match (t, s.boot_emulated) {
                    (UNPLUG_DISKS, true) => "AUX DISKS",
                    (UNPLUG_DISKS, false) => "DISKS",
                    _ => "NICS",
                };
                log.printf(LOG_LEVEL_WARNING, format_args!("UNPLUG: {what}\n"));
            }
        }
    }
}

/// `UnplugIncrementValue`: `Unplug\<type>` += 1 (absent counts as 0).
pub fn increment(
    os: &dyn Os,
    unplug_key: KeyHandle,
    t: UnplugType,
    log: &dyn Logger,
) -> Result<(), NtStatus> {
    let (name, _) = type_names(t).ok_or(STATUS_INVALID_PARAMETER)?;
    let value = dword(os, unplug_key, name).unwrap_or(0).wrapping_add(1);
    os.registry_set(unplug_key, name, &RegValue::Dword(value))?;
    log.info(format_args!("{name} {value}"));
    Ok(())
}

/// `UnplugDecrementValue`: `Unplug\<type>` -= 1; absent fails, below zero is
/// `STATUS_INVALID_PARAMETER`.
pub fn decrement(
    os: &dyn Os,
    unplug_key: KeyHandle,
    t: UnplugType,
    log: &dyn Logger,
) -> Result<(), NtStatus> {
    let (name, _) = type_names(t).ok_or(STATUS_INVALID_PARAMETER)?;
    let value = registry::query_dword(os, unplug_key, name)? as i32;
    let value = value
        .checked_sub(1)
        .filter(|v| *v >= 0)
        .ok_or(STATUS_INVALID_PARAMETER)?;
    os.registry_set(unplug_key, name, &RegValue::Dword(value as u32))?;
    log.info(format_args!("{name} {value}"));
    Ok(())
}

impl fmt::Debug for Unplug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.state.lock();
        f.debug_struct("Unplug")
            .field("request", &s.request)
            .field("boot_emulated", &s.boot_emulated)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{FakeHv, FakeOs};
    use crate::TestLogger;

    fn keys(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn decision_table() {
        let vbd = keys(&["VBD&REV_09", "VIF&REV_09"]);
        let none = keys(&["IFACE&REV_09"]);
        // (force, unplug, enum keys, name) -> (request, consume, value)
        type Case<'a> = (
            Option<u32>,
            Option<u32>,
            Option<&'a [String]>,
            &'a str,
            (bool, bool, u32),
        );
        let cases: Vec<Case> = vec![
            (None, None, Some(&vbd), "VBD", (false, false, 0)),
            (Some(0), None, Some(&vbd), "VBD", (false, false, 0)),
            (Some(1), None, None, "VBD", (true, true, 1)),
            (Some(7), Some(0), Some(&none), "VBD", (true, true, 7)),
            (None, Some(1), Some(&vbd), "VBD", (true, true, 1)),
            (None, Some(2), Some(&vbd), "VIF", (true, true, 2)),
            (None, Some(1), Some(&none), "VBD", (false, true, 0)),
            (None, Some(1), None, "VBD", (false, true, 0)),
            (None, Some(0), Some(&vbd), "VBD", (false, true, 0)),
            (Some(0), Some(3), Some(&vbd), "VBD", (true, true, 3)),
        ];
        for (force, unplug, enum_keys, name, (request, consume, value)) in cases {
            assert_eq!(
                decide(force, unplug, enum_keys, name),
                Decision {
                    request,
                    consume,
                    value
                },
                "force={force:?} unplug={unplug:?} keys={enum_keys:?} {name}"
            );
        }
    }

    fn setup(os: &FakeOs) -> (KeyHandle, KeyHandle) {
        let u = os
            .registry_create(
                None,
                "SYSTEM\\CurrentControlSet\\Services\\XEN\\Unplug",
                false,
            )
            .unwrap();
        let f = os
            .registry_create(
                None,
                "SYSTEM\\CurrentControlSet\\Services\\XEN\\ForceUnplug",
                false,
            )
            .unwrap();
        (u, f)
    }

    #[test]
    fn one_shot_values_are_consumed_and_vetoed() {
        let os = FakeOs::new();
        let (u, f) = setup(&os);
        os.mkkey("SYSTEM\\CurrentControlSet\\Enum\\XENBUS\\VEN_XP0001&DEV_VBD&REV_09");
        os.set(
            "SYSTEM\\CurrentControlSet\\Services\\XEN\\Unplug",
            "DISKS",
            RegValue::Dword(1),
        );
        os.set(
            "SYSTEM\\CurrentControlSet\\Services\\XEN\\Unplug",
            "NICS",
            RegValue::Dword(1),
        );
        let unplug = Unplug::new();
        let log = TestLogger::default();
        unplug.initialize(&os, u, f, &log);
        assert!(unplug.get_request(UNPLUG_DISKS));
        assert!(
            !unplug.get_request(UNPLUG_NICS),
            "no VIF ever enumerated: veto"
        );
        assert!(!unplug.get_request(7));
        assert_eq!(
            os.get("SYSTEM\\CurrentControlSet\\Services\\XEN\\Unplug", "DISKS"),
            None
        );
        assert_eq!(
            os.get("SYSTEM\\CurrentControlSet\\Services\\XEN\\Unplug", "NICS"),
            None
        );
        assert!(log.lines().iter().any(|l| l.contains("VETO Unplug VIF")));
        // Next boot: nothing re-requested, nothing unplugged.
        unplug.initialize(&os, u, f, &log);
        assert!(!unplug.get_request(UNPLUG_DISKS));
        // Forced: no counter, no enum key needed.
        os.set(
            "SYSTEM\\CurrentControlSet\\Services\\XEN\\ForceUnplug",
            "NICS",
            RegValue::Dword(1),
        );
        unplug.initialize(&os, u, f, &log);
        assert!(unplug.get_request(UNPLUG_NICS));
        os.registry_close(u);
        os.registry_close(f);
    }

    #[test]
    fn increment_and_decrement() {
        let os = FakeOs::new();
        let (u, f) = setup(&os);
        let log = TestLogger::default();
        let path = "SYSTEM\\CurrentControlSet\\Services\\XEN\\Unplug";
        assert_eq!(
            decrement(&os, u, UNPLUG_NICS, &log),
            Err(xen_include::status::STATUS_OBJECT_NAME_NOT_FOUND)
        );
        increment(&os, u, UNPLUG_NICS, &log).unwrap();
        increment(&os, u, UNPLUG_NICS, &log).unwrap();
        assert_eq!(os.get(path, "NICS"), Some(RegValue::Dword(2)));
        decrement(&os, u, UNPLUG_NICS, &log).unwrap();
        decrement(&os, u, UNPLUG_NICS, &log).unwrap();
        assert_eq!(os.get(path, "NICS"), Some(RegValue::Dword(0)));
        assert_eq!(
            decrement(&os, u, UNPLUG_NICS, &log),
            Err(STATUS_INVALID_PARAMETER)
        );
        assert_eq!(increment(&os, u, 2, &log), Err(STATUS_INVALID_PARAMETER));
        os.registry_close(u);
        os.registry_close(f);
    }

    fn platform(magic: u16, version: u8) -> FakeHv {
        let hv = FakeHv::new(b"GenuineIntel", Some(0x4000_0000));
        hv.ports
            .lock()
            .unwrap()
            .insert(UNPLUG_PORT, u32::from(magic));
        hv.ports
            .lock()
            .unwrap()
            .insert(VERSION_PORT, u32::from(version));
        hv
    }

    #[test]
    fn preamble_protocol() {
        // Version 0: only the magic is read.
        let hv = platform(XEN_PLATFORM_MAGIC, 0);
        assert_eq!(preamble(&hv), Ok(false));
        assert!(hv.writes.lock().unwrap().is_empty());
        // Version 1: product and build numbers written.
        let hv = platform(XEN_PLATFORM_MAGIC, 1);
        assert_eq!(preamble(&hv), Ok(false));
        assert_eq!(
            *hv.writes.lock().unwrap(),
            vec![
                (VERSION_PORT, PortWidth::Word, 0xFFFF),
                (UNPLUG_PORT, PortWidth::Dword, build_number()),
            ]
        );
        assert_eq!(build_number(), (9 << 16) | (1 << 8));
        assert_eq!(
            preamble(&platform(XEN_PLATFORM_MAGIC_BLACKLISTED, 1)),
            Ok(true)
        );
        assert_eq!(preamble(&platform(0xFFFF, 1)), Err(STATUS_NOT_SUPPORTED));
    }

    #[test]
    fn unplug_writes() {
        let cases = [
            // (disks, nics, boot_emulated, expected writes to port 0x10)
            (true, true, false, vec![0x0009, 0x0002]),
            (true, false, true, vec![0x0004]),
            (false, true, true, vec![0x0002]),
            (false, false, false, vec![]),
        ];
        for (disks, nics, boot_emulated, want) in cases {
            let unplug = Unplug::new();
            {
                let mut s = unplug.state.lock();
                s.request = [disks, nics];
                s.boot_emulated = boot_emulated;
            }
            let hv = platform(XEN_PLATFORM_MAGIC, 0);
            unplug.devices(&hv, &TestLogger::default());
            let got: Vec<u32> = hv.writes.lock().unwrap().iter().map(|w| w.2).collect();
            assert_eq!(got, want);
        }
        // State lock held by a preempted holder: give up with a log line, no writes.
        let unplug = Unplug::new();
        unplug.state.lock().request = [true, true];
        let hv = platform(XEN_PLATFORM_MAGIC, 0);
        let log = TestLogger::default();
        let held = unplug.state.lock();
        unplug.devices(&hv, &log);
        drop(held);
        assert!(hv.writes.lock().unwrap().is_empty());
        assert!(log.lines().iter().any(|l| l.contains("STATE LOCK BUSY")));
        // No protocol: nothing written.
        let unplug = Unplug::new();
        unplug.state.lock().request = [true, true];
        let hv = platform(0x1234, 0);
        unplug.devices(&hv, &TestLogger::default());
        assert!(hv.writes.lock().unwrap().is_empty());
    }

    #[test]
    fn boot_emulated_option() {
        let os = FakeOs::new();
        let (u, f) = setup(&os);
        os.mkkey("SYSTEM\\CurrentControlSet\\Enum\\XENBUS\\VBD");
        os.set(
            "SYSTEM\\CurrentControlSet\\Services\\XEN\\ForceUnplug",
            "DISKS",
            RegValue::Dword(1),
        );
        os.set(
            registry::CONTROL_PATH,
            "SystemStartOptions",
            RegValue::Sz(" XEN:BOOT_EMULATED=TRUE".into()),
        );
        let unplug = Unplug::new();
        unplug.initialize(&os, u, f, &TestLogger::default());
        let hv = platform(XEN_PLATFORM_MAGIC, 0);
        unplug.devices(&hv, &TestLogger::default());
        assert_eq!(hv.writes.lock().unwrap()[0].2, 0x0004);
        os.registry_close(u);
        os.registry_close(f);
    }
}
