//! UNPLUG, xenbus side (spec §5.17, §6.4): PV drivers ask for their emulated twins to be
//! unplugged at the next boot, learn whether it happened this boot, and xenbus re-issues
//! the unplug after a resume (early, CPU 0) and after a resume from hibernate.
//!
//! A thin layer over xen.sys's `Unplug*`/`Config*` exports, serialised by one lock as the
//! original's mutex does.
#![forbid(unsafe_code)]

use core::ffi::CStr;

use common::sync::PassiveLock;
use xen_include::api::{KeyHandle, UnplugType, XenApi, UNPLUG_DISKS, UNPLUG_NICS};
use xen_include::interfaces::unplug::UnplugDeviceType;
use xen_include::status::{NtStatus, STATUS_INVALID_PARAMETER, STATUS_NOT_FOUND};

use crate::fdo::start_option;

/// The start option that limits the disk unplug to auxiliary IDE disks.
pub const BOOT_EMULATED_OPTION: &CStr = c"XEN:BOOT_EMULATED=";

/// xen.sys's unplug type for an interface device type (`INVALID` and unknown → `None`).
pub fn unplug_type(device: UnplugDeviceType) -> Option<UnplugType> {
    match device {
        UnplugDeviceType::NICS => Some(UNPLUG_NICS),
        UnplugDeviceType::DISKS => Some(UNPLUG_DISKS),
        _ => None,
    }
}

/// The UNPLUG subsystem of one FDO.
pub struct Unplug<'a> {
    api: &'a dyn XenApi,
    parameters: Option<KeyHandle>,
    /// PASSIVE_LEVEL: serialises the registry updates of `Request`.
    lock: PassiveLock<()>,
}

impl<'a> Unplug<'a> {
    /// Over xen.sys `api`; `parameters` is xenbus's `Parameters` key (for Reboot).
    pub fn new(api: &'a dyn XenApi, parameters: Option<KeyHandle>) -> Self {
        Self {
            api,
            parameters,
            lock: PassiveLock::new(()),
        }
    }

    /// `UnplugRequest(Type, Make)`: Make increments the request count for the next boot,
    /// revoke decrements it (never below zero → `STATUS_INVALID_PARAMETER`).
    pub fn request(&self, device: UnplugDeviceType, make: bool) -> Result<(), NtStatus> {
        let Some(t) = unplug_type(device) else {
            warning!(self.api, "UNPLUG: Request for invalid type {}", device.0);
            return Err(STATUS_INVALID_PARAMETER);
        };
        let _held = self.lock.lock();
        let r = if make {
            self.api.unplug_increment_value(t)
        } else {
            self.api.unplug_decrement_value(t)
        };
        if let Err(e) = r {
            warning!(
                self.api,
                "UNPLUG: Request(type {}, make {}) failed ({:#010x})",
                device.0,
                make,
                e as u32
            );
        }
        r
    }

    /// `UnplugIsRequested`: whether the type was unplugged this boot (xen.sys's snapshot).
    pub fn is_requested(&self, device: UnplugDeviceType) -> bool {
        unplug_type(device).is_some_and(|t| self.api.unplug_get_request(t))
    }

    /// `UnplugBootEmulated`: `XEN:BOOT_EMULATED=TRUE` is among the start options.
    pub fn boot_emulated(&self) -> bool {
        let mut buf = [0u8; 128];
        let Ok(n) = self
            .api
            .config_query_system_start_option(BOOT_EMULATED_OPTION, &mut buf)
        else {
            return false;
        };
        let text = core::str::from_utf8(buf.get(..n).unwrap_or(&[])).unwrap_or("");
        let name = BOOT_EMULATED_OPTION.to_str().unwrap_or("");
        start_option(text, name).is_some_and(|v| v.eq_ignore_ascii_case("TRUE"))
    }

    /// `UnplugReboot(Module)`: ask for a reboot on behalf of `module`.
    pub fn reboot(&self, module: &CStr) -> Result<(), NtStatus> {
        let key = self.parameters.ok_or(STATUS_NOT_FOUND)?;
        let _held = self.lock.lock();
        self.api.config_request_reboot(key, module)
    }

    /// The EARLY suspend callback: re-issue the unplug on CPU 0 (QEMU forgot it across
    /// the migration). Returns whether it was issued.
    pub fn resume_early(&self, cpu: u32) -> bool {
        if cpu != 0 {
            return false;
        }
        self.api.unplug_devices();
        true
    }

    /// S4 → S0 (resume from hibernate): re-issue the unplug.
    pub fn resume_from_hibernate(&self) {
        info!(self.api, "UNPLUG: re-issuing after hibernate");
        self.api.unplug_devices();
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use common::os::RegValue;
    use xen::driver::Xen;
    use xen_sim::machine::Machine;

    pub const HKLM: &str = r"\Registry\Machine";
    pub const XEN_SERVICE: &str = r"SYSTEM\CurrentControlSet\Services\XEN";

    pub fn set(m: &Machine, path: &str, name: &str, v: RegValue) {
        let mut r = m.guest.registry();
        let path = format!("{HKLM}\\{path}");
        r.create_key(&path, false).unwrap();
        r.set_value(&path, name, v).unwrap();
    }

    pub fn get(m: &Machine, path: &str, name: &str) -> Option<RegValue> {
        m.guest
            .registry()
            .query_value(&format!("{HKLM}\\{path}"), name)
            .ok()
    }

    /// A machine with hvmloader-like firmware, ready for xen.sys.
    pub fn machine() -> Machine {
        let m = Machine::new();
        for (address, bytes) in xen::acpi::build::firmware(2) {
            m.guest.set_firmware_bytes(address, bytes);
        }
        m
    }

    /// xen.sys initialised over `m` (the XenApi xenbus imports).
    pub fn xen(m: &Machine) -> Xen<'_> {
        let x = Xen::new(&*m.hv, &*m.guest, None, None);
        x.initialize().unwrap();
        x
    }

    #[test]
    fn request_is_requested_boot_emulated_and_reboot_over_xen_sys() {
        let m = machine();
        m.hv.platform().set_protocol_version(1);
        set(
            &m,
            &format!("{XEN_SERVICE}\\ForceUnplug"),
            "NICS",
            RegValue::Dword(1),
        );
        set(
            &m,
            r"SYSTEM\CurrentControlSet\Control",
            "SystemStartOptions",
            RegValue::Sz("NOEXECUTE=OPTIN XEN:BOOT_EMULATED=TRUE".into()),
        );
        let x = xen(&m);
        let params = r"SYSTEM\CurrentControlSet\Services\xenbus\Parameters";
        let request = r"SYSTEM\CurrentControlSet\Services\xenbus_monitor\Request";
        set(&m, params, "RequestKey", RegValue::Sz(request.into()));
        let key = {
            use common::os::Os;
            m.guest.registry_create(None, params, false).unwrap()
        };
        let u = Unplug::new(&x, Some(key));
        assert!(u.is_requested(UnplugDeviceType::NICS));
        assert!(!u.is_requested(UnplugDeviceType::DISKS));
        assert!(!u.is_requested(UnplugDeviceType::INVALID));
        assert!(u.boot_emulated());
        // Make increments, revoke decrements, never below zero.
        u.request(UnplugDeviceType::DISKS, true).unwrap();
        u.request(UnplugDeviceType::DISKS, true).unwrap();
        assert_eq!(
            get(&m, &format!("{XEN_SERVICE}\\Unplug"), "DISKS"),
            Some(RegValue::Dword(2))
        );
        u.request(UnplugDeviceType::DISKS, false).unwrap();
        u.request(UnplugDeviceType::DISKS, false).unwrap();
        assert_eq!(
            u.request(UnplugDeviceType::DISKS, false),
            Err(STATUS_INVALID_PARAMETER)
        );
        assert_eq!(
            u.request(UnplugDeviceType::INVALID, true),
            Err(STATUS_INVALID_PARAMETER)
        );
        assert_eq!(u.reboot(c"xenvif"), Ok(()));
        assert_eq!(
            get(&m, &format!("{request}\\xenvif"), "Reboot"),
            Some(RegValue::Dword(1))
        );
        assert_eq!(
            Unplug::new(&x, None).reboot(c"xenvif"),
            Err(STATUS_NOT_FOUND)
        );
        // Re-issue after resume only on CPU 0, and after hibernate.
        assert!(!u.resume_early(1));
        assert!(m.hv.platform().unplug_writes().is_empty());
        assert!(u.resume_early(0));
        assert_eq!(m.hv.platform().unplug_writes(), &[0x0002]);
        u.resume_from_hibernate();
        assert_eq!(m.hv.platform().unplug_writes(), &[0x0002, 0x0002]);
        x.unload();
    }

    #[test]
    fn boot_emulated_false_or_absent() {
        let m = machine();
        set(
            &m,
            r"SYSTEM\CurrentControlSet\Control",
            "SystemStartOptions",
            RegValue::Sz("XEN:BOOT_EMULATED=FALSE".into()),
        );
        let x = xen(&m);
        assert!(!Unplug::new(&x, None).boot_emulated());
        x.unload();
        let m = machine();
        let x = xen(&m);
        assert!(!Unplug::new(&x, None).boot_emulated());
        x.unload();
    }
}
