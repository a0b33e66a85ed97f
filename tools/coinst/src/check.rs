//! The decision: would installing the new package break a subscriber or an installed child?
//!
//! Three sources of veto, read from `HKLM\SYSTEM\CurrentControlSet`:
//! * `Services\{XEN,XENBUS,XENFILT}\AllowUpdate` = 0 (an administrator's lock);
//! * `Services\<PROVIDER>\Interfaces\<CONSUMER>\<INTERFACE>` = version that the new provider
//!   no longer serves (or an interface it no longer has);
//! * `Enum\XENBUS\<device>\<instance>\MatchingDeviceId` naming a PDO revision the new
//!   package no longer offers (the child's INF would no longer match after the upgrade);
//! * a generic platform device (`Enum\PCI\VEN_5853&DEV_0001…`/`DEV_0002…`) bound to another
//!   vendor's bus driver (its `Control\Class\<Driver>\DriverDesc` is not this package's
//!   `<PRODUCT_NAME> PV Bus`): installing over it would take the device from that package.
use xen_include::{
    platform,
    subscription::{check_subscription, revision_of_hardware_id, Incompatibility, Subscription},
};

use crate::{registry::RegValue, tables::PackageTables, RegistryView};

/// The services root relative to HKLM.
const SERVICES: &str = "SYSTEM\\CurrentControlSet\\Services";
/// The enumeration root of xenbus children.
const ENUM_XENBUS: &str = "SYSTEM\\CurrentControlSet\\Enum\\XENBUS";

/// The outcome of a check.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Reasons to refuse the installation, each naming who would break and why.
    pub vetoes: Vec<String>,
    /// Informational findings.
    pub notes: Vec<String>,
    /// How many subscription values were examined.
    pub subscriptions_checked: usize,
    /// How many installed children were examined.
    pub children_checked: usize,
}

/// Runs the check; `Err` only when the registry cannot be read.
pub fn check_upgrade(view: &dyn RegistryView, tables: &PackageTables) -> Result<Report, String> {
    let mut report = Report::default();
    if view.subkeys("SYSTEM\\CurrentControlSet")?.is_none() {
        report.notes.push(
            "the registry holds no SYSTEM\\CurrentControlSet key: nothing is installed to break"
                .into(),
        );
        return Ok(report);
    }
    check_allow_update(view, tables, &mut report)?;
    check_subscriptions(view, tables, &mut report)?;
    check_children(view, tables, &mut report)?;
    check_platform_binding(view, tables, &mut report)?;
    Ok(report)
}

fn check_allow_update(
    view: &dyn RegistryView,
    tables: &PackageTables,
    report: &mut Report,
) -> Result<(), String> {
    for service in &tables.services {
        let Some(values) = view.values(&format!("{SERVICES}\\{service}"))? else {
            continue;
        };
        for (name, value) in values {
            if name.eq_ignore_ascii_case("AllowUpdate") && value == RegValue::Dword(0) {
                report.vetoes.push(format!(
                    "Services\\{service}\\AllowUpdate is 0: an administrator has locked the installed {service} driver against updates"
                ));
            }
        }
    }
    Ok(())
}

fn check_subscriptions(
    view: &dyn RegistryView,
    tables: &PackageTables,
    report: &mut Report,
) -> Result<(), String> {
    for provider in &tables.services {
        let interfaces = format!("{SERVICES}\\{provider}\\Interfaces");
        let Some(consumers) = view.subkeys(&interfaces)? else {
            continue;
        };
        for consumer in consumers {
            let Some(values) = view.values(&format!("{interfaces}\\{consumer}"))? else {
                continue;
            };
            if tables.is_package_service(&consumer) {
                report.notes.push(format!(
                    "{consumer} subscribes to {provider} but is part of this package and is replaced with it"
                ));
                continue;
            }
            for (interface, value) in values {
                if interface.is_empty() {
                    continue;
                }
                report.subscriptions_checked += 1;
                let version = match value {
                    RegValue::Dword(v) => v,
                    other => {
                        report.vetoes.push(format!(
                            "subscriber {consumer}: {provider} interface {interface} is recorded as {} instead of a REG_DWORD version; cannot tell what it needs",
                            other.type_name()
                        ));
                        continue;
                    }
                };
                let subscription = match Subscription::new::<()>(
                    provider, &consumer, &interface, version,
                ) {
                    Ok(s) => s,
                    Err(_) => {
                        report.vetoes.push(format!(
                            "subscriber {consumer}: {provider} interface {interface} version {version} is not a valid subscription"
                        ));
                        continue;
                    }
                };
                match check_subscription(&subscription, &tables.ranges) {
                    Ok(()) => {}
                    Err(Incompatibility::InterfaceRemoved) => report.vetoes.push(format!(
                        "subscriber {consumer} uses {provider} interface {interface} version {version}, which the new package no longer provides at all"
                    )),
                    Err(Incompatibility::VersionRemoved { min, max }) => report.vetoes.push(format!(
                        "subscriber {consumer} uses {provider} interface {interface} version {version}, but the new package serves only versions {min}..{max}"
                    )),
                }
            }
        }
    }
    Ok(())
}

fn check_children(
    view: &dyn RegistryView,
    tables: &PackageTables,
    report: &mut Report,
) -> Result<(), String> {
    let Some(devices) = view.subkeys(ENUM_XENBUS)? else {
        report
            .notes
            .push("no Enum\\XENBUS key: no installed child drivers to check".into());
        return Ok(());
    };
    let latest = tables.latest_revision();
    for device in devices {
        let device_key = format!("{ENUM_XENBUS}\\{device}");
        let Some(instances) = view.subkeys(&device_key)? else {
            continue;
        };
        for instance in instances {
            let Some(values) = view.values(&format!("{device_key}\\{instance}"))? else {
                continue;
            };
            let find = |wanted: &str| {
                values.iter().find_map(|(n, v)| match v {
                    RegValue::Sz(s) if n.eq_ignore_ascii_case(wanted) => Some(s.clone()),
                    _ => None,
                })
            };
            let Some(matching) = find("MatchingDeviceId") else {
                continue;
            };
            report.children_checked += 1;
            let service = find("Service").unwrap_or_else(|| "no service".into());
            let Some(revision) = revision_of_hardware_id(&matching) else {
                continue;
            };
            if !tables.revisions.contains(&revision) {
                report.vetoes.push(format!(
                    "installed child XENBUS\\{device}\\{instance} (service {service}) is bound to revision {revision:08X} ({matching}), which the new package no longer offers"
                ));
            } else if Some(revision) != latest {
                report.notes.push(format!(
                    "child XENBUS\\{device}\\{instance} (service {service}) is bound to older revision {revision:08X}, still offered"
                ));
            }
        }
    }
    Ok(())
}

/// The PCI enumeration root.
const ENUM_PCI: &str = "SYSTEM\\CurrentControlSet\\Enum\\PCI";
/// The device class root.
const CLASS: &str = "SYSTEM\\CurrentControlSet\\Control\\Class";

fn check_platform_binding(
    view: &dyn RegistryView,
    tables: &PackageTables,
    report: &mut Report,
) -> Result<(), String> {
    let Some(devices) = view.subkeys(ENUM_PCI)? else {
        return Ok(());
    };
    let generic = |d: &str| {
        let upper = d.to_ascii_uppercase();
        [
            platform::XEN_PLATFORM_DEVICE_ID,
            platform::XEN_PLATFORM_DEVICE_ID_XENSERVER,
        ]
        .iter()
        .any(|id| {
            upper.starts_with(&format!(
                "VEN_{:04X}&DEV_{id:04X}",
                platform::XEN_PLATFORM_VENDOR_ID
            ))
        })
    };
    for device in devices.into_iter().filter(|d| generic(d)) {
        let device_key = format!("{ENUM_PCI}\\{device}");
        for instance in view.subkeys(&device_key)?.unwrap_or_default() {
            let values = view
                .values(&format!("{device_key}\\{instance}"))?
                .unwrap_or_default();
            let driver = values.iter().find_map(|(n, v)| match v {
                RegValue::Sz(s) if n.eq_ignore_ascii_case("Driver") => Some(s.clone()),
                _ => None,
            });
            let Some(driver) = driver else { continue };
            let description = view
                .values(&format!("{CLASS}\\{driver}"))?
                .unwrap_or_default()
                .into_iter()
                .find_map(|(n, v)| match v {
                    RegValue::Sz(s) if n.eq_ignore_ascii_case("DriverDesc") => Some(s),
                    _ => None,
                });
            match description {
                Some(d) if !d.eq_ignore_ascii_case(&tables.bus_description) => {
                    report.vetoes.push(format!(
                        "platform device PCI\\{device}\\{instance} is bound to \"{d}\", another vendor's bus driver (this package is \"{}\"); remove that package first",
                        tables.bus_description
                    ))
                }
                _ => {}
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::MemoryRegistry;

    fn registry() -> MemoryRegistry {
        let mut r = MemoryRegistry::default();
        r.set_value(&format!("{SERVICES}\\XENBUS"), "Start", RegValue::Dword(0));
        r.create_key(ENUM_XENBUS);
        r
    }

    fn subscribe(r: &mut MemoryRegistry, provider: &str, consumer: &str, iface: &str, v: u32) {
        r.set_value(
            &format!("{SERVICES}\\{provider}\\Interfaces\\{consumer}"),
            iface,
            RegValue::Dword(v),
        );
    }

    fn child(r: &mut MemoryRegistry, class: &str, rev: &str, service: &str) {
        let key = format!("{ENUM_XENBUS}\\VEN_XP&DEV_{class}\\_");
        r.set_value(
            &key,
            "MatchingDeviceId",
            RegValue::Sz(format!("xenbus\\ven_xp0001&dev_{class}&rev_{rev}").to_lowercase()),
        );
        r.set_value(&key, "Service", RegValue::Sz(service.into()));
    }

    #[test]
    fn compatible_upgrade() {
        let mut r = registry();
        subscribe(&mut r, "XENBUS", "XENVIF", "EVTCHN", 9);
        subscribe(&mut r, "XENBUS", "XENVIF", "STORE", 2);
        subscribe(&mut r, "XENFILT", "XENVBD", "EMULATED", 3);
        subscribe(&mut r, "XENFILT", "XENBUS", "EMULATED", 1);
        child(&mut r, "VIF", "0900000C", "xenvif");
        child(&mut r, "VBD", "09000009", "xenvbd");
        let report = check_upgrade(&r, &PackageTables::current()).unwrap();
        assert!(report.vetoes.is_empty(), "{report:#?}");
        assert_eq!(report.subscriptions_checked, 3);
        assert_eq!(report.children_checked, 2);
        assert!(report
            .notes
            .iter()
            .any(|n| n.contains("XENBUS subscribes to XENFILT")));
        assert!(report
            .notes
            .iter()
            .any(|n| n.contains("older revision 09000009")));
    }

    #[test]
    fn removed_interface_version_is_vetoed_naming_subscriber_interface_version() {
        let mut r = registry();
        subscribe(&mut r, "XENBUS", "XENVIF", "EVTCHN", 4);
        subscribe(&mut r, "XENBUS", "XENVIF", "BALLOON", 1);
        let report = check_upgrade(&r, &PackageTables::current()).unwrap();
        assert_eq!(report.vetoes.len(), 2, "{report:#?}");
        assert!(report.vetoes.iter().any(|v| v
            .contains("subscriber XENVIF uses XENBUS interface EVTCHN version 4")
            && v.contains("5..9")));
        assert!(report
            .vetoes
            .iter()
            .any(|v| v.contains("BALLOON version 1") && v.contains("no longer provides")));
    }

    #[test]
    fn retired_revision_is_vetoed() {
        let mut r = registry();
        child(&mut r, "VBD", "09000007", "xenvbd");
        let report = check_upgrade(&r, &PackageTables::current()).unwrap();
        assert_eq!(report.vetoes.len(), 1);
        assert!(report.vetoes[0].contains("service xenvbd"));
        assert!(report.vetoes[0].contains("revision 09000007"));
    }

    #[test]
    fn multiple_subscribers_each_reported() {
        let mut r = registry();
        subscribe(&mut r, "XENBUS", "XENVIF", "GNTTAB", 1);
        subscribe(&mut r, "XENBUS", "XENVBD", "GNTTAB", 4);
        subscribe(&mut r, "XENBUS", "XENIFACE", "SHARED_INFO", 1);
        subscribe(&mut r, "XENFILT", "XENVBD", "EMULATED", 4);
        let report = check_upgrade(&r, &PackageTables::current()).unwrap();
        assert_eq!(report.vetoes.len(), 3, "{report:#?}");
        assert!(report
            .vetoes
            .iter()
            .any(|v| v.contains("XENVIF") && v.contains("GNTTAB version 1")));
        assert!(report
            .vetoes
            .iter()
            .any(|v| v.contains("XENIFACE") && v.contains("SHARED_INFO version 1")));
        assert!(report
            .vetoes
            .iter()
            .any(|v| v.contains("XENVBD") && v.contains("EMULATED version 4")));
        assert!(!report.vetoes.iter().any(|v| v.contains("GNTTAB version 4")));
    }

    #[test]
    fn wrong_types_allow_update_and_empty_registry() {
        let mut r = registry();
        r.set_value(
            &format!("{SERVICES}\\XENBUS\\Interfaces\\XENVIF"),
            "STORE",
            RegValue::Sz("2".into()),
        );
        subscribe(&mut r, "XENBUS", "XENVIF", "CACHE", 0);
        r.set_value(
            &format!("{SERVICES}\\XENFILT"),
            "AllowUpdate",
            RegValue::Dword(0),
        );
        let report = check_upgrade(&r, &PackageTables::current()).unwrap();
        assert_eq!(report.vetoes.len(), 3, "{report:#?}");
        assert!(report
            .vetoes
            .iter()
            .any(|v| v.contains("REG_SZ instead of a REG_DWORD")));
        assert!(report
            .vetoes
            .iter()
            .any(|v| v.contains("version 0 is not a valid")));
        assert!(report
            .vetoes
            .iter()
            .any(|v| v.contains("XENFILT\\AllowUpdate is 0")));
        let empty = MemoryRegistry::default();
        let report = check_upgrade(&empty, &PackageTables::current()).unwrap();
        assert!(report.vetoes.is_empty());
    }

    #[test]
    fn another_vendors_bus_driver_is_vetoed() {
        let mut r = registry();
        let dev = format!("{ENUM_PCI}\\VEN_5853&DEV_0002&SUBSYS_00025853&REV_01\\3&267a616a&0&18");
        r.set_value(
            &dev,
            "Driver",
            RegValue::Sz("{4d36e97d-e325-11ce-bfc1-08002be10318}\\0042".into()),
        );
        let class = format!("{CLASS}\\{{4d36e97d-e325-11ce-bfc1-08002be10318}}\\0042");
        let tables = PackageTables::current();
        r.set_value(
            &class,
            "DriverDesc",
            RegValue::Sz(tables.bus_description.clone()),
        );
        assert!(check_upgrade(&r, &tables).unwrap().vetoes.is_empty());
        r.set_value(&class, "DriverDesc", RegValue::Sz("Other PV Bus".into()));
        let report = check_upgrade(&r, &tables).unwrap();
        assert_eq!(report.vetoes.len(), 1, "{report:#?}");
        assert!(report.vetoes[0].contains("\"Other PV Bus\", another vendor's bus driver"));
        // The vendor device is not checked: it belongs to whoever built for it.
        let vendor = format!("{ENUM_PCI}\\VEN_5853&DEV_C000&SUBSYS_C0005853&REV_01\\3&0");
        r.delete_tree(&dev);
        r.set_value(
            &vendor,
            "Driver",
            RegValue::Sz("{4d36e97d-e325-11ce-bfc1-08002be10318}\\0042".into()),
        );
        assert!(check_upgrade(&r, &tables).unwrap().vetoes.is_empty());
    }

    #[test]
    fn a_changed_table_changes_the_verdict() {
        // Retiring revision 0x09000008 from the tables makes a child bound to it a veto.
        let mut r = registry();
        child(&mut r, "VIF", "09000008", "xenvif");
        let mut tables = PackageTables::current();
        assert!(check_upgrade(&r, &tables).unwrap().vetoes.is_empty());
        tables.revisions.retain(|&rev| rev != 0x0900_0008);
        assert_eq!(check_upgrade(&r, &tables).unwrap().vetoes.len(), 1);
    }
}
