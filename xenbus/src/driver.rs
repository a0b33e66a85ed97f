//! `driver.c`'s decisions (spec §5.1): what `DriverEntry` does with the `Parameters` key and
//! the `XenTouch` answer — register the bus driver's routines, or, when xen.sys is of
//! another build, install the filters, ask for a reboot and stay loaded but inert — and the
//! driver-wide list of FDOs, with the filters installed when the first FDO is added and
//! removed when the last one goes.
#![forbid(unsafe_code)]

use alloc::vec::Vec;

use common::os::{KeyHandle, Os};
use xen_include::api::{LogLevel, XenApi, LOG_LEVEL_NONE};
use xen_include::status::{NtStatus, STATUS_INCOMPATIBLE_DRIVER_BLOCKED};

/// The driver's `Parameters` key, relative to `HKLM`.
pub const PARAMETERS_PATH: &str = "SYSTEM\\CurrentControlSet\\Services\\xenbus\\Parameters";
/// The module name given to `XenTouch` and `ConfigRequestReboot` (upstream `__MODULE__`).
pub const MODULE: &core::ffi::CStr = c"XENBUS";
/// The `Parameters` value naming the log levels mirrored to the PV console.
pub const CONSOLE_LOG_LEVEL: &core::ffi::CStr = c"ConsoleLogLevel";

/// What `DriverEntry` registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Registration {
    /// `AddDevice` and the dispatch routines: the bus driver runs.
    Full,
    /// Only `DriverUnload`: `XenTouch` refused this build. `reboot_requested` says whether
    /// the refusal was a version mismatch (filters installed, reboot requested).
    Inert {
        /// The filters were installed and `ConfigRequestReboot` called.
        reboot_requested: bool,
    },
}

/// Driver-wide state from `DriverEntry` to `DriverUnload`.
#[derive(Debug)]
pub struct Driver {
    parameters: KeyHandle,
    console_log_level: LogLevel,
    registration: Registration,
    /// The FDOs, in the order they were added (opaque identities chosen by the edge).
    fdos: Vec<usize>,
}

/// `DriverEntry`'s decisions: open `Parameters` (failure fails the load), read
/// `ConsoleLogLevel` (default: none), `XenTouch` with this build's `version`. A refusal
/// leaves the driver inert but loaded (`DriverEntry` still returns success); a version
/// mismatch (`STATUS_INCOMPATIBLE_DRIVER_BLOCKED`) also installs the filters — `AddDevice`
/// will not run to do it — and asks for the reboot that loads the matching package.
pub fn driver_entry(
    api: &dyn XenApi,
    os: &dyn Os,
    version: (u32, u32, u32, u32),
) -> Result<Driver, NtStatus> {
    let parameters = match os.registry_open(None, PARAMETERS_PATH) {
        Ok(key) => key,
        Err(status) => {
            error!(api, "cannot open {PARAMETERS_PATH} ({:08x})", status as u32);
            return Err(status);
        }
    };
    let console_log_level = api
        .log_read_log_level(parameters, CONSOLE_LOG_LEVEL)
        .unwrap_or(LOG_LEVEL_NONE);
    let (major, minor, micro, build) = version;
    let registration = match api.xen_touch(MODULE, major, minor, micro, build) {
        Ok(()) => Registration::Full,
        Err(status) if status == STATUS_INCOMPATIBLE_DRIVER_BLOCKED => {
            warning!(
                api,
                "XENBUS {major}.{minor}.{micro}.{build} does not match xen.sys: filters installed, reboot requested"
            );
            api.filters_install();
            if let Err(status) = api.config_request_reboot(parameters, MODULE) {
                error!(api, "ConfigRequestReboot failed ({:08x})", status as u32);
            }
            Registration::Inert {
                reboot_requested: true,
            }
        }
        Err(status) => {
            error!(api, "XenTouch failed ({:08x}): inert", status as u32);
            Registration::Inert {
                reboot_requested: false,
            }
        }
    };
    Ok(Driver {
        parameters,
        console_log_level,
        registration,
        fdos: Vec::new(),
    })
}

impl Driver {
    /// What `DriverEntry` registers.
    pub fn registration(&self) -> Registration {
        self.registration
    }

    /// The open `Parameters` key (read by the FDO and PDOs).
    pub fn parameters(&self) -> KeyHandle {
        self.parameters
    }

    /// The log levels mirrored to the PV console (`ConsoleLogLevel`).
    pub fn console_log_level(&self) -> LogLevel {
        self.console_log_level
    }

    /// The FDOs currently in the list.
    pub fn fdos(&self) -> &[usize] {
        &self.fdos
    }

    /// A new FDO joins the list; the first one installs the filters (so xenfilt sits on the
    /// PCI root bus and IDE channels from the next boot on). A duplicate is ignored.
    pub fn add_fdo(&mut self, api: &dyn XenApi, fdo: usize) {
        if self.fdos.contains(&fdo) {
            warning!(api, "FDO {fdo:#x} added twice");
            return;
        }
        self.fdos.push(fdo);
        if self.fdos.len() == 1 {
            api.filters_install();
        }
    }

    /// An FDO leaves the list (destroyed); the last one removes the filters. `false` when
    /// it was not in the list.
    pub fn remove_fdo(&mut self, api: &dyn XenApi, fdo: usize) -> bool {
        let Some(index) = self.fdos.iter().position(|&f| f == fdo) else {
            warning!(api, "FDO {fdo:#x} removed but not in the list");
            return false;
        };
        self.fdos.remove(index);
        if self.fdos.is_empty() {
            api.filters_uninstall();
        }
        true
    }

    /// `DriverUnload`: close `Parameters`. Every FDO is gone by then (PnP removed them);
    /// one still listed is logged.
    pub fn unload(self, api: &dyn XenApi, os: &dyn Os) {
        if !self.fdos.is_empty() {
            error!(api, "unload with {} FDO(s) still listed", self.fdos.len());
        }
        os.registry_close(self.parameters);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::Sim;
    use common::os::RegValue;
    use xen_sim::guest::HKLM;

    const CLASS: &str = "SYSTEM\\CurrentControlSet\\Control\\Class";
    const SYSTEM: &str = "{4D36E97D-E325-11CE-BFC1-08002BE10318}";
    const HDC: &str = "{4D36E96A-E325-11CE-BFC1-08002BE10318}";
    const REQUEST: &str = "SYSTEM\\CurrentControlSet\\Services\\xenbus_monitor\\Request";

    /// A machine with the keys the INF creates: the driver's `Parameters` (with
    /// `RequestKey` and `ConsoleLogLevel`) and the two device classes the filters go in.
    fn installed() -> Sim {
        let s = Sim::new(1);
        let mut r = s.m.guest.registry();
        let parameters = format!("{HKLM}\\{PARAMETERS_PATH}");
        r.create_key(&parameters, false).unwrap();
        r.set_value(&parameters, "RequestKey", RegValue::Sz(REQUEST.into()))
            .unwrap();
        r.set_value(
            &parameters,
            "ConsoleLogLevel",
            RegValue::MultiSz(vec!["ERROR".into(), "WARNING".into()]),
        )
        .unwrap();
        for class in [SYSTEM, HDC] {
            let key = format!("{HKLM}\\{CLASS}\\{class}");
            r.create_key(&key, false).unwrap();
            r.set_value(
                &key,
                "UpperFilters",
                RegValue::MultiSz(vec!["partmgr".into()]),
            )
            .unwrap();
        }
        drop(r);
        s
    }

    fn upper_filters(s: &Sim, class: &str) -> Vec<String> {
        match s
            .m
            .guest
            .registry()
            .query_value(&format!("{HKLM}\\{CLASS}\\{class}"), "UpperFilters")
        {
            Ok(RegValue::MultiSz(list)) => list,
            other => panic!("UpperFilters of {class}: {other:?}"),
        }
    }

    fn reboot_requested(s: &Sim) -> bool {
        s.m.guest
            .registry()
            .query_value(&format!("{HKLM}\\{REQUEST}\\XENBUS"), "Reboot")
            == Ok(RegValue::Dword(1))
    }

    #[test]
    fn matching_build_registers_and_reads_console_log_level() {
        let s = installed();
        let handles = s.m.guest.open_key_handles();
        let driver = driver_entry(s.xen, &*s.m.guest, xenbus_rs::version()).unwrap();
        assert_eq!(driver.registration(), Registration::Full);
        assert_eq!(
            driver.console_log_level(),
            xen_include::api::LOG_LEVEL_ERROR | xen_include::api::LOG_LEVEL_WARNING
        );
        // Nothing installed or requested until an FDO appears.
        assert_eq!(upper_filters(&s, SYSTEM), ["partmgr"]);
        assert!(!reboot_requested(&s));
        driver.unload(s.xen, &*s.m.guest);
        assert_eq!(s.m.guest.open_key_handles(), handles);
    }

    #[test]
    fn mismatch_installs_filters_requests_reboot_and_stays_inert() {
        let s = installed();
        let (a, b, c, d) = xenbus_rs::version();
        let handles = s.m.guest.open_key_handles();
        let driver = driver_entry(s.xen, &*s.m.guest, (a, b, c, d + 1)).unwrap();
        assert_eq!(
            driver.registration(),
            Registration::Inert {
                reboot_requested: true
            }
        );
        assert_eq!(upper_filters(&s, SYSTEM), ["partmgr", "XENFILT"]);
        assert_eq!(upper_filters(&s, HDC), ["partmgr", "XENFILT"]);
        assert!(reboot_requested(&s));
        assert!(driver.fdos().is_empty());
        driver.unload(s.xen, &*s.m.guest);
        assert_eq!(s.m.guest.open_key_handles(), handles);
    }

    #[test]
    fn missing_parameters_key_fails_the_load() {
        let s = Sim::new(1);
        let status = driver_entry(s.xen, &*s.m.guest, xenbus_rs::version()).unwrap_err();
        assert_eq!(status, xen_include::status::STATUS_OBJECT_NAME_NOT_FOUND);
        assert!(!reboot_requested(&s));
    }

    #[test]
    fn filters_follow_the_first_and_last_fdo() {
        let s = installed();
        let mut driver = driver_entry(s.xen, &*s.m.guest, xenbus_rs::version()).unwrap();
        driver.add_fdo(s.xen, 0x1000);
        assert_eq!(upper_filters(&s, SYSTEM), ["partmgr", "XENFILT"]);
        assert_eq!(upper_filters(&s, HDC), ["partmgr", "XENFILT"]);
        // A second platform device (the vendor device beside 0001) changes nothing; an
        // administrator's edit in between is not undone by it.
        s.m.guest
            .registry()
            .set_value(
                &format!("{HKLM}\\{CLASS}\\{HDC}"),
                "UpperFilters",
                RegValue::MultiSz(vec!["partmgr".into()]),
            )
            .unwrap();
        driver.add_fdo(s.xen, 0x2000);
        driver.add_fdo(s.xen, 0x2000);
        assert_eq!(driver.fdos(), [0x1000, 0x2000]);
        assert_eq!(upper_filters(&s, HDC), ["partmgr"]);
        assert!(driver.remove_fdo(s.xen, 0x1000));
        assert_eq!(upper_filters(&s, SYSTEM), ["partmgr", "XENFILT"]);
        assert!(!driver.remove_fdo(s.xen, 0x1000));
        assert!(driver.remove_fdo(s.xen, 0x2000));
        assert_eq!(upper_filters(&s, SYSTEM), ["partmgr"]);
        assert_eq!(upper_filters(&s, HDC), ["partmgr"]);
        // Added again (the device came back): installed again.
        driver.add_fdo(s.xen, 0x3000);
        assert_eq!(upper_filters(&s, SYSTEM), ["partmgr", "XENFILT"]);
        assert!(driver.remove_fdo(s.xen, 0x3000));
        driver.unload(s.xen, &*s.m.guest);
    }
}
