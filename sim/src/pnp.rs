//! The PnP manager's view of the emulated platform: the children the PCI root bus and the
//! IDE channels report, with the identities Windows gives them (DeviceID, InstanceID,
//! CompatibleIDs, LocationInformation). Filter and bus-driver tests drive their cores with
//! these exactly as PnP would.

use crate::platform::{Device, DeviceKind};

/// One child as PnP sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PnpChild {
    /// A stable stand-in for the child's PDO address.
    pub pdo: usize,
    /// `BusQueryDeviceID`.
    pub device_id: String,
    /// `BusQueryInstanceID`.
    pub instance_id: String,
    /// `BusQueryCompatibleIDs`.
    pub compatible: Vec<String>,
    /// `DeviceTextLocationInformation`.
    pub location: String,
    /// The emulated device behind it.
    pub kind: DeviceKind,
}

/// The children of the PCI root bus (every device but the IDE drives behind the controller).
pub fn pci_children(devices: &[Device]) -> Vec<PnpChild> {
    devices
        .iter()
        .filter(|d| {
            !matches!(
                d.kind,
                DeviceKind::IdeDisk { .. } | DeviceKind::IdeCdrom { .. }
            )
        })
        .map(|d| {
            let subsystem = if d.vendor == 0x5853 {
                format!("{:04X}5853", d.device)
            } else {
                "00000000".into()
            };
            PnpChild {
                pdo: 0x1000 + usize::from(d.slot),
                device_id: format!(
                    "PCI\\VEN_{:04X}&DEV_{:04X}&SUBSYS_{subsystem}&REV_{:02X}",
                    d.vendor, d.device, d.revision
                ),
                instance_id: format!("3&267a616a&0&{:02X}", d.slot * 8),
                compatible: vec![format!("PCI\\VEN_{:04X}&DEV_{:04X}", d.vendor, d.device)],
                location: format!("PCI bus 0, device {}, function 0", d.slot),
                kind: d.kind.clone(),
            }
        })
        .collect()
}

/// The children of IDE channel `channel` (InstanceID `<channel>.<position>.0`).
pub fn ide_children(devices: &[Device], channel: u8) -> Vec<PnpChild> {
    devices
        .iter()
        .filter_map(|d| match d.kind {
            DeviceKind::IdeDisk {
                channel: c,
                position,
            }
            | DeviceKind::IdeCdrom {
                channel: c,
                position,
            } if c == channel => {
                let disk = matches!(d.kind, DeviceKind::IdeDisk { .. });
                Some(PnpChild {
                    pdo: 0x2000 + usize::from(channel) * 16 + usize::from(position),
                    device_id: if disk {
                        "IDE\\DiskQEMU_HARDDISK".into()
                    } else {
                        "IDE\\CdRomQEMU_DVD-ROM".into()
                    },
                    instance_id: format!("{channel}.{position}.0"),
                    compatible: vec![],
                    location: format!("Channel {channel}, Target {position}, Lun 0"),
                    kind: d.kind.clone(),
                })
            }
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::Platform;

    #[test]
    fn default_platform_children() {
        let p = Platform::new();
        let pci = pci_children(p.devices());
        assert!(pci
            .iter()
            .any(|c| c.device_id == "PCI\\VEN_5853&DEV_0001&SUBSYS_00015853&REV_01"));
        assert!(pci
            .iter()
            .all(|c| !matches!(c.kind, DeviceKind::IdeDisk { .. })));
        let primary = ide_children(p.devices(), 0);
        assert_eq!(
            primary
                .iter()
                .map(|c| c.instance_id.as_str())
                .collect::<Vec<_>>(),
            ["0.0.0", "0.1.0"]
        );
        assert_eq!(ide_children(p.devices(), 1).len(), 1, "the CD-ROM");
    }
}
