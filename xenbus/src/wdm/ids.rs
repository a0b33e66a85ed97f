//! The platform device's identity as its bus reports it: the PCI vendor and device of a
//! `PCI\VEN_xxxx&DEV_yyyy…` DeviceID (upstream reads them from the PCI common header
//! through `GUID_BUS_INTERFACE_STANDARD`; the DeviceID carries the same two fields).
#![forbid(unsafe_code)]

/// `(vendor, device)` of a PCI DeviceID, case-insensitive; `None` for another bus or a
/// malformed ID.
pub fn pci_ids(device_id: &str) -> Option<(u16, u16)> {
    let upper = device_id.to_ascii_uppercase();
    let rest = upper.strip_prefix("PCI\\VEN_")?;
    let vendor = u16::from_str_radix(rest.get(..4)?, 16).ok()?;
    let rest = rest.get(4..)?.strip_prefix("&DEV_")?;
    let device = u16::from_str_radix(rest.get(..4)?, 16).ok()?;
    match rest.get(4..)? {
        "" => Some((vendor, device)),
        tail if tail.starts_with('&') => Some((vendor, device)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_device_ids() {
        assert_eq!(pci_ids("PCI\\VEN_5853&DEV_0001"), Some((0x5853, 0x0001)));
        assert_eq!(
            pci_ids("pci\\ven_5853&dev_c000&SUBSYS_C0005853&REV_01"),
            Some((0x5853, 0xC000))
        );
        assert_eq!(pci_ids("PCI\\VEN_8086&DEV_7010"), Some((0x8086, 0x7010)));
        for bad in [
            "ACPI\\PNP0A03",
            "PCI\\VEN_58&DEV_0001",
            "PCI\\VEN_5853&DEV_00012",
            "PCI\\VEN_ZZZZ&DEV_0001",
            "PCI\\VEN_5853",
            "",
        ] {
            assert_eq!(pci_ids(bad), None, "{bad}");
        }
    }
}
