//! The child filter (spec §6.2): answers identity queries from what it stored at creation,
//! and pins the identity of the active platform device.
#![forbid(unsafe_code)]

use alloc::string::String;

use crate::emulated::{Activation, Emulated};
use crate::fdo::ChildFilter;

/// The active-device values kept under `Services\xenfilt\Parameters`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ActiveIdentity {
    /// `ActiveDeviceID`.
    pub device_id: Option<String>,
    /// `ActiveInstanceID`.
    pub instance_id: Option<String>,
    /// `ActiveLocationInformation`.
    pub location: Option<String>,
}

/// An identity query the child filter overrides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdentityQuery {
    /// `IRP_MN_QUERY_ID(BusQueryDeviceID)`.
    DeviceId,
    /// `IRP_MN_QUERY_ID(BusQueryInstanceID)`.
    InstanceId,
    /// `IRP_MN_QUERY_DEVICE_TEXT(DeviceTextLocationInformation)`.
    LocationInformation,
}

/// True when `child` is the active platform device under neutral activation: its
/// identity is pinned to the stored values so the xenbus instance path survives a move
/// of the platform device to another slot.
pub fn is_pinned(child: &ChildFilter, emulated: &Emulated, active: &ActiveIdentity) -> bool {
    let Some(active_device) = active.device_id.as_deref() else {
        return false;
    };
    active_device.eq_ignore_ascii_case(&child.device_id)
        && emulated.is_device_present(Some(&child.device_id), Some(&child.instance_id))
            == Some(Activation::Neutral)
}

/// The answer the child filter gives to `query`: the stored value, or for a pinned
/// active device the stored active value when one exists. `None` means "pass the
/// request down unchanged" (nothing stored).
pub fn answer(
    child: &ChildFilter,
    emulated: &Emulated,
    active: &ActiveIdentity,
    query: IdentityQuery,
) -> Option<String> {
    let pinned = is_pinned(child, emulated, active);
    match query {
        IdentityQuery::DeviceId => Some(child.device_id.clone()),
        IdentityQuery::InstanceId => match (&active.instance_id, pinned) {
            (Some(instance), true) => Some(instance.clone()),
            _ => Some(child.instance_id.clone()),
        },
        IdentityQuery::LocationInformation => match (&active.location, pinned) {
            (Some(location), true) => Some(location.clone()),
            _ => child.location.clone(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::BusType;
    use crate::fdo::{BusFilter, ChildInfo};

    const PLATFORM: &str = "PCI\\VEN_5853&DEV_0001&SUBSYS_00015853&REV_01";

    #[test]
    fn active_platform_device_keeps_its_instance_and_location_after_moving_slot() {
        let mut emulated = Emulated::new();
        let mut bus = BusFilter::new(BusType::Pci, 0);
        // The device now sits in slot 5; it was recorded active in slot 3.
        bus.scan(
            &mut emulated,
            &[ChildInfo {
                pdo: 1,
                device_id: PLATFORM,
                instance_id: "3&1&0&28",
                compatible_ids: &[],
                location: Some("PCI bus 0, device 5, function 0"),
            }],
            |_| None,
        );
        let active = ActiveIdentity {
            device_id: Some(PLATFORM.to_ascii_lowercase()),
            instance_id: Some("3&1&0&18".into()),
            location: Some("PCI bus 0, device 3, function 0".into()),
        };
        let child = bus.child(1).expect("filtered");
        assert!(is_pinned(child, &emulated, &active));
        assert_eq!(
            answer(child, &emulated, &active, IdentityQuery::InstanceId).as_deref(),
            Some("3&1&0&18")
        );
        assert_eq!(
            answer(
                child,
                &emulated,
                &active,
                IdentityQuery::LocationInformation
            )
            .as_deref(),
            Some("PCI bus 0, device 3, function 0")
        );
        assert_eq!(
            answer(child, &emulated, &active, IdentityQuery::DeviceId).as_deref(),
            Some(PLATFORM)
        );
    }

    #[test]
    fn other_devices_and_forced_activation_are_not_pinned() {
        let mut emulated = Emulated::new();
        let mut bus = BusFilter::new(BusType::Pci, 0);
        bus.scan(
            &mut emulated,
            &[
                ChildInfo {
                    pdo: 1,
                    device_id: PLATFORM,
                    instance_id: "x",
                    compatible_ids: &["PCI\\VEN_5853&DEV_0001"],
                    location: None,
                },
                ChildInfo {
                    pdo: 2,
                    device_id: "PCI\\VEN_8086&DEV_100E",
                    instance_id: "y",
                    compatible_ids: &[],
                    location: Some("slot 4"),
                },
            ],
            |id| (id == "PCI\\VEN_5853&DEV_0001").then_some(1),
        );
        let active = ActiveIdentity {
            device_id: Some(PLATFORM.into()),
            instance_id: Some("old".into()),
            location: None,
        };
        let platform = bus.child(1).expect("filtered");
        assert!(
            !is_pinned(platform, &emulated, &active),
            "forced activation is not neutral"
        );
        assert_eq!(
            answer(platform, &emulated, &active, IdentityQuery::InstanceId).as_deref(),
            Some("x")
        );
        let nic = bus.child(2).expect("filtered");
        assert_eq!(
            answer(nic, &emulated, &active, IdentityQuery::InstanceId).as_deref(),
            Some("y")
        );
        assert_eq!(
            answer(nic, &emulated, &active, IdentityQuery::LocationInformation).as_deref(),
            Some("slot 4")
        );
        assert!(!is_pinned(nic, &emulated, &ActiveIdentity::default()));
    }
}
