//! The bus FDO's decisions (spec §3.4, §5.2, §5.3, §5.19): which child classes exist,
//! how the child list is reconciled, whether this FDO is the active one, start options,
//! and the `drivers/<n>` distribution record; the runtime owning the active FDO's
//! subsystems ([`Fdo`]) and its thread steps live in the submodules.
#![forbid(unsafe_code)]

mod runtime;
#[cfg(test)]
#[path = "tests.rs"]
mod runtime_tests;
mod services;
#[cfg(test)]
mod services_tests;
mod threads;

pub use runtime::{
    BalloonParts, Fdo, FdoBugCheck, FdoConfig, FdoKernel, FdoResources, FdoSetup, FdoThread,
    OsBalloonMemory, Subsystems,
};
pub use services::{BusEdge, ChildEdge, FdoServices, PdoServices, PASS_WAIT_SECONDS};
pub use threads::SuspendStep;

use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// The child classes of this scan: the upper-cased names under `device` plus the
/// `SyntheticClasses`, keeping only those that match a `SupportedClasses` entry (prefix
/// compare, case-insensitive, as upstream), without duplicates and in discovery order.
pub fn child_classes<'a>(
    device_dir: impl IntoIterator<Item = &'a str>,
    synthetic: impl IntoIterator<Item = &'a str>,
    supported: &[&str],
) -> Vec<String> {
    let mut classes: Vec<String> = Vec::new();
    for name in device_dir.into_iter().chain(synthetic) {
        let upper = name.to_ascii_uppercase();
        if upper.is_empty() || classes.contains(&upper) {
            continue;
        }
        let allowed = supported.iter().any(|class| {
            upper.len() >= class.len()
                && upper
                    .get(..class.len())
                    .is_some_and(|prefix| prefix.eq_ignore_ascii_case(class))
        });
        if allowed {
            classes.push(upper);
        }
    }
    classes
}

/// Where a child PDO is in its life as far as the FDO's list is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChildState {
    /// Created, not yet reported to PnP.
    Present,
    /// Reported in a BusRelations answer.
    Enumerated,
    /// Its class vanished after it was reported; PnP will remove it.
    Missing,
}

/// One child PDO (one per class).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Child {
    /// The upper-case class name (`VIF`, `VBD`, …).
    pub class: String,
    /// Its state.
    pub state: ChildState,
}

/// What a reconciliation changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// Classes that got a new PDO.
    pub created: Vec<String>,
    /// Classes whose never-reported PDO was destroyed at once.
    pub destroyed: Vec<String>,
    /// Classes whose reported PDO is now missing (awaiting REMOVE_DEVICE).
    pub missing: Vec<String>,
}

impl Reconciled {
    /// Any change → `IoInvalidateDeviceRelations(BusRelations)`.
    pub fn changed(&self) -> bool {
        !(self.created.is_empty() && self.destroyed.is_empty() && self.missing.is_empty())
    }
}

/// The FDO's child list.
#[derive(Clone, Debug, Default)]
pub struct Children {
    children: Vec<Child>,
}

impl Children {
    /// An empty list.
    pub const fn new() -> Self {
        Self {
            children: Vec::new(),
        }
    }

    /// All children, in creation order.
    pub fn all(&self) -> &[Child] {
        &self.children
    }

    /// Reconcile with the classes of a scan (`FdoEnumerate`). With `enumerate == false`
    /// (`Parameters\Enumerate` = 0) nothing changes.
    pub fn reconcile(&mut self, classes: &[String], enumerate: bool) -> Reconciled {
        let mut outcome = Reconciled::default();
        if !enumerate {
            return outcome;
        }
        let mut kept = Vec::with_capacity(self.children.len());
        for mut child in core::mem::take(&mut self.children) {
            let wanted = classes.contains(&child.class);
            match (wanted, child.state) {
                (true, ChildState::Missing) => {
                    // The class came back before PnP removed the old PDO: keep the old one
                    // missing and create a fresh PDO below.
                    kept.push(child);
                }
                (true, _) => kept.push(child),
                (false, ChildState::Present) => outcome.destroyed.push(child.class),
                (false, ChildState::Enumerated) => {
                    child.state = ChildState::Missing;
                    outcome.missing.push(child.class.clone());
                    kept.push(child);
                }
                (false, ChildState::Missing) => kept.push(child),
            }
        }
        self.children = kept;
        for class in classes {
            let exists = self
                .children
                .iter()
                .any(|child| &child.class == class && child.state != ChildState::Missing);
            if !exists {
                self.children.push(Child {
                    class: class.clone(),
                    state: ChildState::Present,
                });
                outcome.created.push(class.clone());
            }
        }
        outcome
    }

    /// A BusRelations answer: every non-missing child is reported (Present → Enumerated).
    pub fn report(&mut self) -> Vec<String> {
        let mut reported = Vec::new();
        for child in &mut self.children {
            if child.state != ChildState::Missing {
                child.state = ChildState::Enumerated;
                reported.push(child.class.clone());
            }
        }
        reported
    }

    /// REMOVE_DEVICE on the PDO of `class`: a missing PDO is destroyed (returns true); a
    /// present one goes back to Enumerated (PnP may start it again).
    pub fn removed(&mut self, class: &str) -> bool {
        if let Some(position) = self
            .children
            .iter()
            .position(|child| child.class == class && child.state == ChildState::Missing)
        {
            self.children.remove(position);
            return true;
        }
        false
    }

    /// SURPRISE_REMOVAL or REMOVE of the FDO: every child is missing.
    pub fn mark_all_missing(&mut self) {
        for child in &mut self.children {
            child.state = ChildState::Missing;
        }
    }

    /// IRP_MN_EJECT on the PDO of `class`: it is missing ("device ejected").
    pub fn eject(&mut self, class: &str) -> bool {
        match self
            .children
            .iter_mut()
            .find(|child| child.class == class && child.state != ChildState::Missing)
        {
            Some(child) => {
                child.state = ChildState::Missing;
                true
            }
            None => false,
        }
    }
}

/// What xenfilt's EMULATED v3 said about this platform device, if xenfilt is below.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterActivation {
    /// No precedence: xenbus decides.
    Neutral,
    /// Precedence makes this device the active one.
    ForceActivated,
    /// Precedence makes another device the active one.
    ForceDeactivated,
}

/// The configuration calls the active-device decision makes (`Config*` of xen.sys).
pub trait ActiveConfig {
    /// `ConfigGetActive("DeviceID")`.
    fn active_device_id(&mut self) -> Option<String>;
    /// `ConfigSetActive`: fails (false) for a legacy device while the vendor device exists.
    fn set_active(&mut self, device_id: &str, instance_id: &str, location: &str) -> bool;
    /// `ConfigUpdateActive`: fills missing InstanceID/LocationInformation.
    fn update_active(&mut self, device_id: &str, instance_id: &str, location: &str) -> bool;
}

/// Decide whether this FDO is the active one (spec §5.2 steps 4–5).
pub fn decide_active(
    filter: Option<FilterActivation>,
    device_id: &str,
    instance_id: &str,
    location: &str,
    config: &mut dyn ActiveConfig,
) -> bool {
    match filter {
        Some(FilterActivation::ForceActivated) => {
            config.set_active(device_id, instance_id, location);
            true
        }
        Some(FilterActivation::ForceDeactivated) => false,
        Some(FilterActivation::Neutral) | None => match config.active_device_id() {
            Some(active) => {
                let is_active = active.eq_ignore_ascii_case(device_id);
                if is_active {
                    config.update_active(device_id, instance_id, location);
                }
                is_active
            }
            None => config.set_active(device_id, instance_id, location),
        },
    }
}

/// The vendor name of the platform device: `<VENDOR_PREFIX><PCI device id as 4 hex>`.
pub fn vendor_name(prefix: &str, pci_device_id: u16) -> String {
    alloc::format!("{prefix}{pci_device_id:04X}")
}

/// Why FDO creation refused a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FdoError {
    /// The PCI vendor is not 0x5853 (`STATUS_NOT_SUPPORTED`).
    NotXenPlatform(u16),
}

/// The PCI vendor of the platform device must be 0x5853 ('XS').
pub fn check_platform_vendor(vendor: u16) -> Result<(), FdoError> {
    if vendor == 0x5853 {
        Ok(())
    } else {
        Err(FdoError::NotXenPlatform(vendor))
    }
}

/// Find option `name` (e.g. `XEN:WATCHDOG=`) in `SystemStartOptions` and return its value
/// (up to the next space).
pub fn start_option<'a>(options: &'a str, name: &str) -> Option<&'a str> {
    options.split_ascii_whitespace().find_map(|word| {
        let word = word.strip_prefix('/').unwrap_or(word);
        let head = word.get(..name.len())?;
        head.eq_ignore_ascii_case(name)
            .then(|| word.get(name.len()..))
            .flatten()
    })
}

/// Parse `XEN:WATCHDOG=<seconds>` with C's base auto-detection (`0x` hex, leading `0`
/// octal, else decimal); non-zero values below 10 are rounded up to 10. `None` when the
/// option is absent, malformed or zero.
pub fn watchdog_seconds(options: &str) -> Option<u32> {
    let value = start_option(options, "XEN:WATCHDOG=")?;
    let (digits, radix) = if let Some(hex) = value
        .strip_prefix("0x")
        .or_else(|| value.strip_prefix("0X"))
    {
        (hex, 16)
    } else if value.len() > 1 && value.starts_with('0') {
        (value.get(1..)?, 8)
    } else {
        (value, 10)
    };
    let seconds = u32::from_str_radix(digits, radix).ok()?;
    match seconds {
        0 => None,
        1..=9 => Some(10),
        _ => Some(seconds),
    }
}

/// The `drivers/<n>` distribution record: `"<VENDOR_NAME with non-alphanumerics → _>
/// XENBUS <maj>.<min>.<micro>.<build>"`.
pub fn distribution_record(vendor_name: &str, version: (u32, u32, u32, u32)) -> String {
    let vendor: String = vendor_name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let (major, minor, micro, build) = version;
    alloc::format!("{vendor} XENBUS {major}.{minor}.{micro}.{build}")
}

/// The first free `drivers/<n>` slot (0–255) given the existing entries' names.
pub fn free_distribution_slot<'a>(existing: impl IntoIterator<Item = &'a str>) -> Option<u32> {
    let taken: Vec<u32> = existing
        .into_iter()
        .filter_map(|name| name.parse::<u32>().ok())
        .collect();
    (0..=255).find(|slot| !taken.contains(slot))
}

/// The classes that a default INF configures (spec §5.20).
pub fn default_supported_classes() -> Vec<String> {
    ["VIF", "VBD", "VKBD", "IFACE", "CONS"]
        .iter()
        .map(|class| class.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUPPORTED: [&str; 5] = ["VIF", "VBD", "VKBD", "IFACE", "CONS"];

    #[test]
    fn classes_are_device_dirs_plus_synthetic_filtered_by_supported() {
        let classes = child_classes(["vif", "vbd", "9pfs", "vif"], ["IFACE", "CONS"], &SUPPORTED);
        assert_eq!(classes, ["VIF", "VBD", "IFACE", "CONS"]);
        assert_eq!(child_classes([], [], &SUPPORTED), Vec::<String>::new());
        assert_eq!(child_classes(["vkbd"], [], &["VIF"]), Vec::<String>::new());
    }

    #[test]
    fn reconciliation_creates_reports_and_retires_children() {
        let mut children = Children::new();
        let first = children.reconcile(&["VIF".into(), "IFACE".into()], true);
        assert_eq!(first.created, ["VIF", "IFACE"]);
        assert_eq!(children.report(), ["VIF", "IFACE"]);
        // VBD appears and vanishes before being reported: destroyed at once.
        children.reconcile(&["VIF".into(), "IFACE".into(), "VBD".into()], true);
        let gone = children.reconcile(&["IFACE".into()], true);
        assert_eq!(gone.destroyed, ["VBD"]);
        assert_eq!(gone.missing, ["VIF"]);
        assert!(gone.changed());
        assert_eq!(children.report(), ["IFACE"]);
        assert!(children.removed("VIF"));
        assert!(!children.removed("IFACE"));
        assert!(!children.reconcile(&["IFACE".into()], true).changed());
    }

    #[test]
    fn enumerate_zero_suppresses_changes() {
        let mut children = Children::new();
        assert!(!children.reconcile(&["VIF".into()], false).changed());
        assert!(children.all().is_empty());
    }

    #[test]
    fn a_class_that_returns_before_removal_gets_a_new_pdo() {
        let mut children = Children::new();
        children.reconcile(&["VIF".into()], true);
        children.report();
        children.reconcile(&[], true);
        let back = children.reconcile(&["VIF".into()], true);
        assert_eq!(back.created, ["VIF"]);
        assert_eq!(children.all().len(), 2);
        assert!(children.removed("VIF"));
        assert_eq!(children.report(), ["VIF"]);
    }

    #[test]
    fn eject_and_surprise_removal_mark_children_missing() {
        let mut children = Children::new();
        children.reconcile(&["VIF".into(), "VBD".into()], true);
        children.report();
        assert!(children.eject("VBD"));
        assert!(!children.eject("VBD"));
        assert_eq!(children.report(), ["VIF"]);
        children.mark_all_missing();
        assert!(children.report().is_empty());
    }

    #[derive(Default)]
    struct FakeConfig {
        active: Option<String>,
        vendor_device_present: bool,
        sets: u32,
        updates: u32,
    }

    impl ActiveConfig for FakeConfig {
        fn active_device_id(&mut self) -> Option<String> {
            self.active.clone()
        }
        fn set_active(&mut self, device_id: &str, _instance: &str, _location: &str) -> bool {
            self.sets += 1;
            let legacy = !device_id
                .to_ascii_uppercase()
                .starts_with("PCI\\VEN_5853&DEV_C000");
            if legacy && self.vendor_device_present {
                return false;
            }
            self.active = Some(device_id.into());
            true
        }
        fn update_active(&mut self, _device_id: &str, _instance: &str, _location: &str) -> bool {
            self.updates += 1;
            true
        }
    }

    const LEGACY: &str = "PCI\\VEN_5853&DEV_0001&SUBSYS_00015853&REV_01";
    const VENDOR: &str = "PCI\\VEN_5853&DEV_C000&SUBSYS_C0005853&REV_01";

    #[test]
    fn first_device_becomes_active_and_is_recorded() {
        let mut config = FakeConfig::default();
        assert!(decide_active(None, LEGACY, "i", "l", &mut config));
        assert_eq!(config.active.as_deref(), Some(LEGACY));
        // The next boot: recorded → active again, values updated.
        assert!(decide_active(
            Some(FilterActivation::Neutral),
            &LEGACY.to_lowercase(),
            "i",
            "l",
            &mut config
        ));
        assert_eq!(config.updates, 1);
    }

    #[test]
    fn legacy_device_is_refused_while_the_vendor_device_exists() {
        let mut config = FakeConfig {
            vendor_device_present: true,
            ..FakeConfig::default()
        };
        assert!(!decide_active(None, LEGACY, "i", "l", &mut config));
        assert!(decide_active(None, VENDOR, "i", "l", &mut config));
        assert!(
            !decide_active(None, LEGACY, "i", "l", &mut config),
            "recorded vendor device wins"
        );
    }

    #[test]
    fn precedence_overrides_the_record() {
        let mut config = FakeConfig {
            active: Some(LEGACY.into()),
            ..FakeConfig::default()
        };
        assert!(!decide_active(
            Some(FilterActivation::ForceDeactivated),
            LEGACY,
            "i",
            "l",
            &mut config
        ));
        assert!(decide_active(
            Some(FilterActivation::ForceActivated),
            VENDOR,
            "i",
            "l",
            &mut config
        ));
        assert_eq!(config.active.as_deref(), Some(VENDOR));
    }

    #[test]
    fn platform_vendor_and_names() {
        assert_eq!(check_platform_vendor(0x5853), Ok(()));
        assert_eq!(
            check_platform_vendor(0x8086),
            Err(FdoError::NotXenPlatform(0x8086))
        );
        assert_eq!(vendor_name("XP", 0x0001), "XP0001");
        assert_eq!(vendor_name("XS", 0xC000), "XSC000");
    }

    #[test]
    fn watchdog_start_option() {
        assert_eq!(
            watchdog_seconds("NOEXECUTE=OPTIN XEN:WATCHDOG=30"),
            Some(30)
        );
        assert_eq!(watchdog_seconds("/xen:watchdog=5"), Some(10));
        assert_eq!(watchdog_seconds("XEN:WATCHDOG=0x20"), Some(32));
        assert_eq!(watchdog_seconds("XEN:WATCHDOG=010"), Some(10));
        assert_eq!(watchdog_seconds("XEN:WATCHDOG=0"), None);
        assert_eq!(watchdog_seconds("XEN:WATCHDOG=abc"), None);
        assert_eq!(watchdog_seconds("XEN:BALLOON=OFF"), None);
        assert_eq!(
            start_option("A XEN:BALLOON=OFF", "XEN:BALLOON="),
            Some("OFF")
        );
    }

    #[test]
    fn distribution_record_and_slot() {
        assert_eq!(
            distribution_record("Xen Project", (9, 1, 0, 42)),
            "Xen_Project XENBUS 9.1.0.42"
        );
        assert_eq!(free_distribution_slot(["0", "1", "3"]), Some(2));
        assert_eq!(free_distribution_slot([]), Some(0));
        let all: Vec<String> = (0..=255).map(|n: u32| n.to_string()).collect();
        assert_eq!(free_distribution_slot(all.iter().map(String::as_str)), None);
    }
}
