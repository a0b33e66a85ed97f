//! `config.c`: the active platform device (`Active*` values under
//! `Services\XENFILT\Parameters`) with the legacy-versus-vendor-device veto, reboot
//! requests for the monitor service, and system start options.
#![forbid(unsafe_code)]

use alloc::format;
use alloc::string::String;

use common::os::{KeyHandle, Os, RegValue};
use xen_include::status::{NtStatus, STATUS_UNSUCCESSFUL};

use crate::registry;
use crate::Logger;

/// The canonical location of the active-device values.
pub const ACTIVE_PATH: &str = "SYSTEM\\CurrentControlSet\\Services\\XENFILT\\Parameters";
/// `HKLM\SYSTEM\CurrentControlSet\Enum`.
pub const ENUM_PATH: &str = "SYSTEM\\CurrentControlSet\\Enum";

/// True when `device_id` is not the vendor's own platform device
/// (`PCI\VEN_5853&DEV_<vdi>`, compared case-insensitively). Without a vendor device ID
/// every device is legacy.
pub fn is_legacy(device_id: &str, vendor_device_id: Option<&str>) -> bool {
    let Some(vdi) = vendor_device_id else {
        return true;
    };
    let prefix = format!("PCI\\VEN_5853&DEV_{vdi}");
    !device_id
        .get(..prefix.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(&prefix))
}

/// The `Enum\PCI` subkey of the vendor device, if the build has a vendor device ID.
pub fn vendor_device_key(vendor_device_id: Option<&str>) -> Option<String> {
    vendor_device_id.map(|v| format!("PCI\\VEN_5853&DEV_{v}&SUBSYS_{v}5853&REV_01"))
}

/// Whether the vendor device has ever been enumerated on this system.
pub fn vendor_device_present(os: &dyn Os, vendor_device_id: Option<&str>) -> bool {
    let Some(sub) = vendor_device_key(vendor_device_id) else {
        return false;
    };
    registry::with_key(os, ENUM_PATH, |enum_key| {
        let device = os.registry_open(Some(enum_key), &sub)?;
        os.registry_close(device);
        Ok(())
    })
    .is_ok()
}

/// The active-device configuration of this build.
#[derive(Clone, Copy)]
pub struct Config<'a> {
    /// The kernel.
    pub os: &'a dyn Os,
    /// `VENDOR_DEVICE_ID` of the build.
    pub vendor_device_id: Option<&'a str>,
}

impl Config<'_> {
    fn vetoed(&self, device_id: &str) -> bool {
        is_legacy(device_id, self.vendor_device_id)
            && vendor_device_present(self.os, self.vendor_device_id)
    }

    /// `ConfigGetActive`: the REG_SZ `Active<key>`.
    pub fn get_active(&self, key: &str) -> Result<String, NtStatus> {
        let name = format!("Active{key}");
        registry::with_key(self.os, ACTIVE_PATH, |k| {
            registry::query_sz(self.os, k, &name)
        })
    }

    /// `ConfigSetActive`: write the three values unless a legacy device is proposed while
    /// the vendor device exists (`STATUS_UNSUCCESSFUL`).
    pub fn set_active(
        &self,
        device_id: &str,
        instance_id: &str,
        location: &str,
        log: &dyn Logger,
    ) -> Result<(), NtStatus> {
        let os = self.os;
        registry::with_key(os, ACTIVE_PATH, |k| {
            if self.vetoed(device_id) {
                log.error(format_args!(
                    "{device_id}: LEGACY DEVICE VETOED (VENDOR DEVICE PRESENT)"
                ));
                return Err(STATUS_UNSUCCESSFUL);
            }
            os.registry_set(k, "ActiveDeviceID", &RegValue::Sz(device_id.into()))?;
            os.registry_set(k, "ActiveInstanceID", &RegValue::Sz(instance_id.into()))?;
            os.registry_set(
                k,
                "ActiveLocationInformation",
                &RegValue::Sz(location.into()),
            )?;
            log.info(format_args!("{device_id}\\{instance_id}: {location}"));
            Ok(())
        })
    }

    /// `ConfigUpdateActive`: fill in `ActiveInstanceID` and `ActiveLocationInformation`
    /// only where missing (same veto).
    pub fn update_active(
        &self,
        device_id: &str,
        instance_id: &str,
        location: &str,
        log: &dyn Logger,
    ) -> Result<(), NtStatus> {
        let os = self.os;
        registry::with_key(os, ACTIVE_PATH, |k| {
            if self.vetoed(device_id) {
                log.error(format_args!(
                    "{device_id}: LEGACY DEVICE VETOED (VENDOR DEVICE PRESENT)"
                ));
                return Err(STATUS_UNSUCCESSFUL);
            }
            if self.get_active("InstanceID").is_err() {
                os.registry_set(k, "ActiveInstanceID", &RegValue::Sz(instance_id.into()))?;
            }
            if self.get_active("LocationInformation").is_err() {
                os.registry_set(
                    k,
                    "ActiveLocationInformation",
                    &RegValue::Sz(location.into()),
                )?;
            }
            log.info(format_args!("{device_id}\\{instance_id}: {location}"));
            Ok(())
        })
    }

    /// `ConfigClearActive`: delete `ActiveDeviceID` and `ActiveInstanceID`.
    pub fn clear_active(&self, log: &dyn Logger) -> Result<(), NtStatus> {
        let os = self.os;
        registry::with_key(os, ACTIVE_PATH, |k| {
            os.registry_delete_value(k, "ActiveDeviceID")?;
            os.registry_delete_value(k, "ActiveInstanceID")?;
            log.info(format_args!("DONE"));
            Ok(())
        })
    }
}

/// `ConfigRequestReboot`: read REG_SZ `RequestKey` from `parameters_key`, create
/// `HKLM\<RequestKey>` and its **volatile** subkey `<module>` with DWORD `Reboot` = 1.
pub fn request_reboot(
    os: &dyn Os,
    parameters_key: KeyHandle,
    module: &str,
) -> Result<(), NtStatus> {
    let request_path = registry::query_sz(os, parameters_key, "RequestKey")?;
    let request_key = os.registry_create(None, &request_path, false)?;
    let result = os
        .registry_create(Some(request_key), module, true)
        .and_then(|sub| {
            let r = os.registry_set(sub, "Reboot", &RegValue::Dword(1));
            os.registry_close(sub);
            r
        });
    os.registry_close(request_key);
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakeOs;
    use crate::TestLogger;
    use xen_include::status::{STATUS_INVALID_PARAMETER, STATUS_OBJECT_NAME_NOT_FOUND};

    #[test]
    fn legacy_table() {
        let cases = [
            (
                "PCI\\VEN_5853&DEV_0002&SUBSYS_00025853&REV_01",
                Some("0002"),
                false,
            ),
            ("pci\\ven_5853&dev_0002", Some("0002"), false),
            (
                "PCI\\VEN_5853&DEV_0001&SUBSYS_00015853&REV_01",
                Some("0002"),
                true,
            ),
            ("PCI\\VEN_5853&DEV_0002", None, true),
            ("PCI", Some("0002"), true),
        ];
        for (id, vdi, legacy) in cases {
            assert_eq!(is_legacy(id, vdi), legacy, "{id} {vdi:?}");
        }
        assert_eq!(
            vendor_device_key(Some("C000")).as_deref(),
            Some("PCI\\VEN_5853&DEV_C000&SUBSYS_C0005853&REV_01")
        );
        assert_eq!(vendor_device_key(None), None);
    }

    const LEGACY: &str = "PCI\\VEN_5853&DEV_0001&SUBSYS_00015853&REV_01";
    const VENDOR: &str = "PCI\\VEN_5853&DEV_0002&SUBSYS_00025853&REV_01";

    #[test]
    fn set_active_veto_table() {
        // (vendor device id of the build, vendor device enumerated, proposed id, accepted)
        let cases = [
            (None, false, LEGACY, true),
            (None, true, LEGACY, true),
            (Some("0002"), false, LEGACY, true),
            (Some("0002"), true, LEGACY, false),
            (Some("0002"), true, VENDOR, true),
            (Some("0002"), false, VENDOR, true),
        ];
        for (vdi, present, id, accepted) in cases {
            let os = FakeOs::new();
            os.mkkey(ACTIVE_PATH);
            if present {
                os.mkkey(&format!("{ENUM_PATH}\\{VENDOR}"));
            }
            let c = Config {
                os: &os,
                vendor_device_id: vdi,
            };
            let log = TestLogger::default();
            let r = c.set_active(id, "_", "slot 3", &log);
            assert_eq!(r.is_ok(), accepted, "{vdi:?} {present} {id}");
            let r = c.update_active(id, "_", "slot 3", &log);
            assert_eq!(r.is_ok(), accepted, "{vdi:?} {present} {id}");
            if accepted {
                assert_eq!(c.get_active("DeviceID").unwrap(), id);
            } else {
                assert_eq!(c.get_active("DeviceID"), Err(STATUS_OBJECT_NAME_NOT_FOUND));
                assert_eq!(r, Err(STATUS_UNSUCCESSFUL));
            }
            assert_eq!(os.open_handles(), 0);
        }
    }

    #[test]
    fn update_fills_only_missing_values_and_clear() {
        let os = FakeOs::new();
        os.mkkey(ACTIVE_PATH);
        let c = Config {
            os: &os,
            vendor_device_id: None,
        };
        let log = TestLogger::default();
        os.set(ACTIVE_PATH, "ActiveInstanceID", RegValue::Sz("old".into()));
        c.update_active(LEGACY, "new", "loc", &log).unwrap();
        assert_eq!(c.get_active("InstanceID").unwrap(), "old");
        assert_eq!(c.get_active("LocationInformation").unwrap(), "loc");
        c.set_active(LEGACY, "new", "loc2", &log).unwrap();
        assert_eq!(c.get_active("InstanceID").unwrap(), "new");
        c.clear_active(&log).unwrap();
        assert!(c.get_active("DeviceID").is_err());
        assert!(c.get_active("InstanceID").is_err());
        assert_eq!(c.get_active("LocationInformation").unwrap(), "loc2");
        assert_eq!(c.clear_active(&log), Err(STATUS_OBJECT_NAME_NOT_FOUND));
        os.set(ACTIVE_PATH, "ActiveDeviceID", RegValue::Dword(3));
        assert_eq!(c.get_active("DeviceID"), Err(STATUS_INVALID_PARAMETER));
        assert_eq!(os.open_handles(), 0);
        // Without the XENFILT Parameters key nothing works.
        let os = FakeOs::new();
        let c = Config {
            os: &os,
            vendor_device_id: None,
        };
        assert_eq!(
            c.set_active(LEGACY, "a", "b", &log),
            Err(STATUS_OBJECT_NAME_NOT_FOUND)
        );
    }

    #[test]
    fn reboot_request_is_volatile() {
        let os = FakeOs::new();
        let params = os
            .registry_create(
                None,
                "SYSTEM\\CurrentControlSet\\Services\\xenbus\\Parameters",
                false,
            )
            .unwrap();
        assert_eq!(
            request_reboot(&os, params, "XENBUS"),
            Err(STATUS_OBJECT_NAME_NOT_FOUND)
        );
        os.set(
            "SYSTEM\\CurrentControlSet\\Services\\xenbus\\Parameters",
            "RequestKey",
            RegValue::Sz("SYSTEM\\CurrentControlSet\\Services\\xenbus_monitor\\Request".into()),
        );
        request_reboot(&os, params, "XENBUS").unwrap();
        let req = os
            .key("SYSTEM\\CurrentControlSet\\Services\\xenbus_monitor\\Request")
            .unwrap();
        assert!(!req.volatile);
        let sub = os
            .key("SYSTEM\\CurrentControlSet\\Services\\xenbus_monitor\\Request\\XENBUS")
            .unwrap();
        assert!(sub.volatile);
        assert_eq!(
            os.get(
                "SYSTEM\\CurrentControlSet\\Services\\xenbus_monitor\\Request\\XENBUS",
                "Reboot"
            ),
            Some(RegValue::Dword(1))
        );
        os.registry_close(params);
        assert_eq!(os.open_handles(), 0);
    }
}
