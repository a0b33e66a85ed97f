//! A child PDO's answers (spec §3.2, §3.3): identity text, capabilities, bus information
//! and the per-class removal policy. One PDO exists per child class.
#![forbid(unsafe_code)]

use alloc::format;
use alloc::string::String;

/// `IRP_MN_QUERY_DEVICE_TEXT` types a PDO answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceText {
    /// `DeviceTextDescription`.
    Description,
    /// `DeviceTextLocationInformation`.
    LocationInformation,
}

/// `"<VendorName> XENBUS <CLASS>"` or `"<CLASS>"`; other text types are not supported.
pub fn device_text(vendor_name: &str, class: &str, text: DeviceText) -> String {
    match text {
        DeviceText::Description => format!("{vendor_name} XENBUS {class}"),
        DeviceText::LocationInformation => String::from(class),
    }
}

/// The FDO's own description, `"<VendorName> XENBUS"`.
pub fn fdo_description(vendor_name: &str) -> String {
    format!("{vendor_name} XENBUS")
}

/// The DeviceID of a child: `XENBUS\VEN_<VENDOR_PREFIX>&DEV_<CLASS>`.
pub fn device_id(vendor_prefix: &str, class: &str) -> String {
    format!("XENBUS\\VEN_{vendor_prefix}&DEV_{class}")
}

/// The InstanceID of every child: `_` (capabilities say UniqueID).
pub const INSTANCE_ID: &str = "_";

/// Per-class policy read from `Parameters\<CLASS>` (both default to 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RemovalPolicy {
    /// `AllowPdoRemove`: Removable and SurpriseRemovalOK.
    pub allow_remove: bool,
    /// `AllowPdoEject`: EjectSupported.
    pub allow_eject: bool,
}

impl Default for RemovalPolicy {
    fn default() -> Self {
        Self {
            allow_remove: true,
            allow_eject: true,
        }
    }
}

impl RemovalPolicy {
    /// From the two optional DWORDs (absent → allowed).
    pub fn from_registry(allow_pdo_remove: Option<u32>, allow_pdo_eject: Option<u32>) -> Self {
        Self {
            allow_remove: allow_pdo_remove.is_none_or(|v| v != 0),
            allow_eject: allow_pdo_eject.is_none_or(|v| v != 0),
        }
    }
}

/// Device power states as numbered by Windows (`PowerDeviceD0` = 1 … `D3` = 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DevicePower {
    /// Leave the value the bus stack already put there.
    Untouched,
    /// D0.
    D0,
    /// D3.
    D3,
}

/// The `DEVICE_CAPABILITIES` a child PDO reports (spec §3.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities {
    pub device_d1: bool,
    pub device_d2: bool,
    pub lock_supported: bool,
    pub eject_supported: bool,
    pub removable: bool,
    pub dock_device: bool,
    pub unique_id: bool,
    pub silent_install: bool,
    pub raw_device_ok: bool,
    pub surprise_removal_ok: bool,
    pub address: u32,
    pub ui_number: u32,
    /// `DeviceState[S0..=S5]` plus `[Unspecified]` first: index 0 = PowerSystemUnspecified,
    /// 1 = S0 (Working), 2 = S1, 3 = S2, 4 = S3, 5 = S4 (Hibernate), 6 = Shutdown.
    pub device_state: [DevicePower; 7],
}

/// Why a capabilities query was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CapabilitiesError {
    /// `DEVICE_CAPABILITIES.Version` must be 1 (`STATUS_INVALID_PARAMETER`).
    BadVersion(u16),
}

/// `IRP_MN_QUERY_CAPABILITIES` on a child PDO.
pub fn capabilities(
    version: u16,
    policy: RemovalPolicy,
) -> Result<Capabilities, CapabilitiesError> {
    if version != 1 {
        return Err(CapabilitiesError::BadVersion(version));
    }
    Ok(Capabilities {
        device_d1: false,
        device_d2: false,
        lock_supported: false,
        eject_supported: policy.allow_eject,
        removable: policy.allow_remove,
        dock_device: false,
        unique_id: true,
        silent_install: true,
        raw_device_ok: false,
        surprise_removal_ok: policy.allow_remove,
        address: 0xFFFF_FFFF,
        ui_number: 0xFFFF_FFFF,
        device_state: [
            DevicePower::Untouched, // Unspecified
            DevicePower::D0,        // S0
            DevicePower::Untouched, // S1
            DevicePower::Untouched, // S2
            DevicePower::D3,        // S3
            DevicePower::D3,        // S4
            DevicePower::D3,        // Shutdown
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_strings() {
        assert_eq!(device_id("XP", "VIF"), "XENBUS\\VEN_XP&DEV_VIF");
        assert_eq!(
            device_text("XP0001", "VBD", DeviceText::Description),
            "XP0001 XENBUS VBD"
        );
        assert_eq!(
            device_text("XP0001", "VBD", DeviceText::LocationInformation),
            "VBD"
        );
        assert_eq!(fdo_description("XSC000"), "XSC000 XENBUS");
        assert_eq!(INSTANCE_ID, "_");
    }

    #[test]
    fn capabilities_follow_the_class_policy() {
        let caps = capabilities(1, RemovalPolicy::default()).expect("version 1");
        assert!(
            caps.removable && caps.surprise_removal_ok && caps.eject_supported && caps.unique_id
        );
        assert!(!caps.raw_device_ok && !caps.device_d1 && !caps.device_d2);
        assert_eq!(caps.address, u32::MAX);
        assert_eq!(caps.device_state[1], DevicePower::D0);
        assert_eq!(caps.device_state[5], DevicePower::D3);
        let locked =
            capabilities(1, RemovalPolicy::from_registry(Some(0), Some(0))).expect("version 1");
        assert!(!locked.removable && !locked.surprise_removal_ok && !locked.eject_supported);
        assert_eq!(
            RemovalPolicy::from_registry(None, Some(7)),
            RemovalPolicy::default()
        );
        assert_eq!(
            capabilities(2, RemovalPolicy::default()),
            Err(CapabilitiesError::BadVersion(2))
        );
    }
}
