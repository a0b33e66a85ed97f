//! The active-device record of spec §5.2 over xen.sys's `Config*Active` exports: the
//! [`crate::fdo::ActiveConfig`] the FDO's decision uses on a real system.
#![forbid(unsafe_code)]

use alloc::ffi::CString;
use alloc::string::String;

use xen_include::api::XenApi;

use crate::fdo::ActiveConfig;

/// `ConfigGetActive`/`ConfigSetActive`/`ConfigUpdateActive` of xen.sys.
pub struct XenApiActive<'a> {
    api: &'a dyn XenApi,
}

impl<'a> XenApiActive<'a> {
    /// The record kept by `api` (xen.sys).
    pub fn new(api: &'a dyn XenApi) -> Self {
        Self { api }
    }
}

fn c_strings(values: [&str; 3]) -> Option<[CString; 3]> {
    let [a, b, c] = values;
    Some([
        CString::new(a).ok()?,
        CString::new(b).ok()?,
        CString::new(c).ok()?,
    ])
}

impl ActiveConfig for XenApiActive<'_> {
    fn active_device_id(&mut self) -> Option<String> {
        let mut buffer = [0u8; 256];
        let length = self.api.config_get_active(c"DeviceID", &mut buffer).ok()?;
        let text = buffer.get(..length)?;
        let end = text.iter().position(|&b| b == 0).unwrap_or(text.len());
        let value = core::str::from_utf8(text.get(..end)?).ok()?;
        (!value.is_empty()).then(|| String::from(value))
    }

    fn set_active(&mut self, device_id: &str, instance_id: &str, location: &str) -> bool {
        let Some([d, i, l]) = c_strings([device_id, instance_id, location]) else {
            return false;
        };
        self.api.config_set_active(&d, &i, &l).is_ok()
    }

    fn update_active(&mut self, device_id: &str, instance_id: &str, location: &str) -> bool {
        let Some([d, i, l]) = c_strings([device_id, instance_id, location]) else {
            return false;
        };
        self.api.config_update_active(&d, &i, &l).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fdo::decide_active;
    use crate::sim::Sim;

    #[test]
    fn the_first_platform_device_is_recorded_through_xen_sys_and_then_recognised() {
        let s = Sim::new(1);
        s.m.guest
            .registry()
            .create_key(
                r"\Registry\Machine\SYSTEM\CurrentControlSet\Services\xenfilt\Parameters",
                false,
            )
            .unwrap();
        let mut config = XenApiActive::new(s.xen);
        assert_eq!(config.active_device_id(), None);
        let id = "PCI\\VEN_5853&DEV_0001&SUBSYS_00015853&REV_01";
        assert!(decide_active(None, id, "3&1&0&10", "slot 2", &mut config));
        assert_eq!(config.active_device_id().as_deref(), Some(id));
        assert!(decide_active(None, id, "3&1&0&10", "slot 2", &mut config));
        let other = "PCI\\VEN_5853&DEV_0002&SUBSYS_00025853&REV_01";
        assert!(!decide_active(
            None,
            other,
            "3&1&0&18",
            "slot 3",
            &mut config
        ));
    }
}
