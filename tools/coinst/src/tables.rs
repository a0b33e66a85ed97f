//! What the new package offers: its services, the interface versions each provider serves
//! and the PDO revisions xenbus.sys reports.
//!
//! The numbers are those of spec §2.2 and §3.1. They move to `xen_include::interfaces` and
//! `xen_include::revision` (the single source of truth) once those modules exist; this
//! module then only collects them.
use xen_include::subscription::InterfaceRange;

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
}

/// (name, min, max) of the XENBUS interfaces offered to child drivers.
const XENBUS_INTERFACES: &[(&str, u32, u32)] = &[
    ("SUSPEND", 1, 1),
    ("SHARED_INFO", 2, 4),
    ("EVTCHN", 5, 9),
    ("DEBUG", 1, 1),
    ("STORE", 2, 2),
    ("RANGE_SET", 1, 1),
    ("CACHE", 1, 2),
    ("GNTTAB", 2, 4),
    ("UNPLUG", 1, 3),
    ("CONSOLE", 1, 1),
];

/// (name, min, max) of the XENFILT interfaces.
const XENFILT_INTERFACES: &[(&str, u32, u32)] = &[("EMULATED", 1, 3)];

/// The PDO revisions of this package.
const REVISIONS: &[u32] = &[
    0x0900_0008,
    0x0900_0009,
    0x0900_000A,
    0x0900_000B,
    0x0900_000C,
];

impl PackageTables {
    /// The tables of the package being built.
    pub fn current() -> Self {
        let mut ranges = Vec::new();
        for (provider, list) in [
            ("XENBUS", XENBUS_INTERFACES),
            ("XENFILT", XENFILT_INTERFACES),
        ] {
            for &(interface, min, max) in list {
                ranges.push(InterfaceRange {
                    provider,
                    interface,
                    min,
                    max,
                });
            }
        }
        PackageTables {
            services: vec!["XEN", "XENBUS", "XENFILT"],
            ranges,
            revisions: REVISIONS.to_vec(),
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
    fn tables_are_consistent() {
        let t = PackageTables::current();
        assert!(t.ranges.iter().all(|r| r.min >= 1 && r.min <= r.max));
        assert_eq!(t.latest_revision(), Some(0x0900_000C));
        assert!(t.revisions.windows(2).all(|w| w[0] < w[1]));
        assert!(t.is_package_service("xenfilt"));
        assert!(!t.is_package_service("xenvif"));
    }
}
