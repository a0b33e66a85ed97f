//! What the new package offers: its services, the interface versions each provider serves
//! and the PDO revisions xenbus.sys reports — all taken from `xen_include::revision` (the
//! single source of truth for the revision table and every interface's MIN/MAX).
use xen_include::{revision, subscription::InterfaceRange};

/// The new package's tables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackageTables {
    /// Service names of the drivers in the package (replaced together, so their own
    /// subscriptions to each other are not checked).
    pub services: Vec<&'static str>,
    /// Every interface version range the package's providers serve.
    pub ranges: Vec<InterfaceRange<'static>>,
    /// Every PDO revision xenbus.sys offers, oldest first.
    pub revisions: Vec<u32>,
    /// The `DriverDesc` this package gives the platform device (`<PRODUCT_NAME> PV Bus`).
    pub bus_description: String,
}

/// Splits a C interface name (`XENBUS_SHARED_INFO_INTERFACE`) into the provider service and
/// the registry interface name (`XENBUS`, `SHARED_INFO`).
pub fn split_interface_name(c_name: &'static str) -> Option<(&'static str, &'static str)> {
    let body = c_name.strip_suffix("_INTERFACE")?;
    let (provider, interface) = body.split_once('_')?;
    (!provider.is_empty() && !interface.is_empty()).then_some((provider, interface))
}

impl PackageTables {
    /// The tables of the package being built.
    pub fn current() -> Self {
        let ranges = revision::COLUMNS
            .iter()
            .filter_map(|&(_, c_name, min, max, _)| {
                let (provider, interface) = split_interface_name(c_name)?;
                Some(InterfaceRange {
                    provider,
                    interface,
                    min: u32::from(min),
                    max: u32::from(max),
                })
            })
            .collect();
        PackageTables {
            services: vec!["XEN", "XENBUS", "XENFILT"],
            ranges,
            revisions: revision::REVISIONS.iter().map(|r| r.number).collect(),
            bus_description: format!("{} PV Bus", xenbus_rs::PRODUCT_NAME),
        }
    }

    /// Whether `service` is one of the package's drivers.
    pub fn is_package_service(&self, service: &str) -> bool {
        self.services
            .iter()
            .any(|s| s.eq_ignore_ascii_case(service))
    }

    /// The newest revision.
    pub fn latest_revision(&self) -> Option<u32> {
        self.revisions.iter().copied().max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_come_from_include() {
        let t = PackageTables::current();
        assert_eq!(t.ranges.len(), revision::COLUMNS.len());
        assert!(t.ranges.iter().all(|r| r.min >= 1 && r.min <= r.max));
        let find = |p: &str, i: &str| {
            t.ranges
                .iter()
                .find(|r| r.provider == p && r.interface == i)
                .map(|r| (r.min, r.max))
        };
        assert_eq!(find("XENBUS", "EVTCHN"), Some((5, 9)));
        assert_eq!(find("XENBUS", "SHARED_INFO"), Some((2, 4)));
        assert_eq!(find("XENFILT", "EMULATED"), Some((1, 3)));
        assert_eq!(t.latest_revision(), Some(revision::LATEST.number));
        assert!(t.revisions.windows(2).all(|w| w[0] < w[1]));
        assert!(t.is_package_service("xenfilt"));
        assert!(!t.is_package_service("xenvif"));
        assert_eq!(
            split_interface_name("XENBUS_RANGE_SET_INTERFACE"),
            Some(("XENBUS", "RANGE_SET"))
        );
        assert_eq!(split_interface_name("XENBUS"), None);
    }
}
