//! The bus filter (spec §6.2): sits above the PCI root bus or an IDE channel, creates a
//! child filter over each new child PDO, registers its EMULATED object, applies
//! precedence, and tracks children that vanished.
#![forbid(unsafe_code)]

use alloc::string::String;
use alloc::vec::Vec;

use crate::driver::BusType;
use crate::emulated::{Activation, Emulated, ObjectId};

/// Opaque identity of a child PDO (its `DEVICE_OBJECT` address on Windows).
pub type PdoHandle = usize;

/// What the bus reported about one child, as queried from below.
#[derive(Clone, Debug, Default)]
pub struct ChildInfo<'a> {
    /// The child PDO.
    pub pdo: PdoHandle,
    /// `BusQueryDeviceID`.
    pub device_id: &'a str,
    /// `BusQueryInstanceID`.
    pub instance_id: &'a str,
    /// `BusQueryCompatibleIDs`.
    pub compatible_ids: &'a [&'a str],
    /// `DeviceTextLocationInformation`, when the bus answers it.
    pub location: Option<&'a str>,
}

/// One child filter device and what it stores about its PDO.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChildFilter {
    /// The PDO it is attached to.
    pub pdo: PdoHandle,
    /// The DeviceID stored at creation.
    pub device_id: String,
    /// The InstanceID stored at creation.
    pub instance_id: String,
    /// The LocationInformation stored at creation.
    pub location: Option<String>,
    /// Its EMULATED object.
    pub object: ObjectId,
    /// It has been passed up to PnP at least once.
    pub reported: bool,
    /// It vanished from the bus after being reported; destroyed at REMOVE_DEVICE.
    pub missing: bool,
}

/// What one scan of the bus's children changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScanOutcome {
    /// Child filters created over these PDOs.
    pub created: Vec<PdoHandle>,
    /// Children seen for the first time that could not be classified (reported as they
    /// are, without a filter).
    pub unfiltered: Vec<PdoHandle>,
    /// Vanished children that were never reported, destroyed now.
    pub destroyed: Vec<PdoHandle>,
    /// Vanished children that were reported, now marked missing.
    pub missing: Vec<PdoHandle>,
}

/// The filter FDO over one bus.
#[derive(Debug)]
pub struct BusFilter {
    bus_type: BusType,
    /// The id the global [`crate::driver::FilterMachine`] knows this bus by.
    pub machine_id: u32,
    children: Vec<ChildFilter>,
    unfiltered: Vec<PdoHandle>,
}

impl BusFilter {
    /// A filter FDO over a bus of `bus_type`.
    pub fn new(bus_type: BusType, machine_id: u32) -> Self {
        Self {
            bus_type,
            machine_id,
            children: Vec::new(),
            unfiltered: Vec::new(),
        }
    }

    /// The bus kind.
    pub fn bus_type(&self) -> BusType {
        self.bus_type
    }

    /// The child filters alive on this bus.
    pub fn children(&self) -> &[ChildFilter] {
        &self.children
    }

    /// The child filter over `pdo`.
    pub fn child(&self, pdo: PdoHandle) -> Option<&ChildFilter> {
        self.children.iter().find(|child| child.pdo == pdo)
    }

    /// Reconcile with the relations the bus just returned. `precedence` maps a compatible
    /// ID to its `Parameters\Precedence` DWORD (FORCE_ACTIVATE builds).
    pub fn scan<F>(
        &mut self,
        emulated: &mut Emulated,
        relations: &[ChildInfo<'_>],
        precedence: F,
    ) -> ScanOutcome
    where
        F: Fn(&str) -> Option<u32>,
    {
        let mut outcome = ScanOutcome::default();

        // Children that vanished.
        let mut kept = Vec::with_capacity(self.children.len());
        for mut child in core::mem::take(&mut self.children) {
            if relations.iter().any(|info| info.pdo == child.pdo) {
                kept.push(child);
            } else if child.reported {
                if !child.missing {
                    child.missing = true;
                    outcome.missing.push(child.pdo);
                }
                kept.push(child);
            } else {
                emulated.remove(child.object);
                outcome.destroyed.push(child.pdo);
            }
        }
        self.children = kept;
        self.unfiltered
            .retain(|pdo| relations.iter().any(|info| info.pdo == *pdo));

        // New children.
        let mut new_pci: Vec<(ObjectId, u32)> = Vec::new();
        for info in relations {
            if self.children.iter().any(|child| child.pdo == info.pdo)
                || self.unfiltered.contains(&info.pdo)
            {
                continue;
            }
            let object = match self.bus_type {
                BusType::Pci => {
                    let object = emulated.add_pci(
                        info.device_id,
                        info.instance_id,
                        info.compatible_ids,
                        Activation::Neutral,
                    );
                    let rank = info
                        .compatible_ids
                        .iter()
                        .filter_map(|id| precedence(id))
                        .max()
                        .unwrap_or(0);
                    new_pci.push((object, rank));
                    Some(object)
                }
                BusType::Ide => emulated.add_ide(info.instance_id).ok(),
            };
            match object {
                Some(object) => {
                    self.children.push(ChildFilter {
                        pdo: info.pdo,
                        device_id: String::from(info.device_id),
                        instance_id: String::from(info.instance_id),
                        location: info.location.map(String::from),
                        object,
                        reported: false,
                        missing: false,
                    });
                    outcome.created.push(info.pdo);
                }
                None => {
                    self.unfiltered.push(info.pdo);
                    outcome.unfiltered.push(info.pdo);
                }
            }
        }

        // Precedence: the highest non-zero rank among the new children is force-activated,
        // every other PCI child force-deactivated.
        if let Some(&(winner, _)) = new_pci
            .iter()
            .filter(|(_, rank)| *rank != 0)
            .max_by_key(|(_, rank)| *rank)
        {
            for child in &self.children {
                let status = if child.object == winner {
                    Activation::ForceActivated
                } else {
                    Activation::ForceDeactivated
                };
                emulated.set_activation(child.object, status);
            }
        }
        outcome
    }

    /// The relations were passed up: every present child counts as reported.
    pub fn mark_reported(&mut self) {
        for child in &mut self.children {
            if !child.missing {
                child.reported = true;
            }
        }
    }

    /// The PDOs to report up when the filter state lets children through.
    pub fn reported_children(&self) -> Vec<PdoHandle> {
        self.children
            .iter()
            .filter(|child| !child.missing)
            .map(|child| child.pdo)
            .chain(self.unfiltered.iter().copied())
            .collect()
    }

    /// IRP_MN_REMOVE_DEVICE reached the child filter over `pdo`: destroy it if it is
    /// missing (surprise-removed children stay until the bus drops them).
    pub fn child_removed(&mut self, emulated: &mut Emulated, pdo: PdoHandle) -> bool {
        let Some(position) = self
            .children
            .iter()
            .position(|child| child.pdo == pdo && child.missing)
        else {
            return false;
        };
        let child = self.children.swap_remove(position);
        emulated.remove(child.object);
        true
    }

    /// The bus filter is being removed: every child filter goes with it.
    pub fn teardown(&mut self, emulated: &mut Emulated) {
        for child in self.children.drain(..) {
            emulated.remove(child.object);
        }
        self.unfiltered.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLATFORM: &str = "PCI\\VEN_5853&DEV_0001&SUBSYS_00015853&REV_01";
    const VENDOR: &str = "PCI\\VEN_5853&DEV_C000&SUBSYS_C0005853&REV_01";

    fn info<'a>(
        pdo: PdoHandle,
        device_id: &'a str,
        instance_id: &'a str,
        compatible: &'a [&'a str],
    ) -> ChildInfo<'a> {
        ChildInfo {
            pdo,
            device_id,
            instance_id,
            compatible_ids: compatible,
            location: Some("PCI bus 0, device 3"),
        }
    }

    #[test]
    fn new_children_get_filters_and_emulated_objects() {
        let mut emulated = Emulated::new();
        let mut bus = BusFilter::new(BusType::Pci, 0);
        let relations = [
            info(1, PLATFORM, "3&1&0&18", &["PCI\\VEN_5853&DEV_0001"]),
            info(2, "PCI\\VEN_8086&DEV_100E", "3&1&0&20", &[]),
        ];
        let outcome = bus.scan(&mut emulated, &relations, |_| None);
        assert_eq!(outcome.created, [1, 2]);
        assert_eq!(emulated.len(), 2);
        assert_eq!(
            emulated.is_device_present(Some(PLATFORM), None),
            Some(Activation::Neutral)
        );
        // A second scan with the same children creates nothing.
        assert_eq!(
            bus.scan(&mut emulated, &relations, |_| None),
            ScanOutcome::default()
        );
    }

    #[test]
    fn vanished_children_are_destroyed_or_marked_missing() {
        let mut emulated = Emulated::new();
        let mut bus = BusFilter::new(BusType::Pci, 0);
        bus.scan(
            &mut emulated,
            &[info(1, "A", "1", &[]), info(2, "B", "2", &[])],
            |_| None,
        );
        bus.mark_reported();
        bus.scan(
            &mut emulated,
            &[
                info(1, "A", "1", &[]),
                info(2, "B", "2", &[]),
                info(3, "C", "3", &[]),
            ],
            |_| None,
        );
        // 3 never reported: destroyed at once. 2 reported: missing until REMOVE_DEVICE.
        let outcome = bus.scan(&mut emulated, &[info(1, "A", "1", &[])], |_| None);
        assert_eq!(outcome.destroyed, [3]);
        assert_eq!(outcome.missing, [2]);
        assert_eq!(bus.reported_children(), [1]);
        assert_eq!(emulated.len(), 2);
        assert!(
            !bus.child_removed(&mut emulated, 1),
            "present children are not destroyed by REMOVE"
        );
        assert!(bus.child_removed(&mut emulated, 2));
        assert_eq!(emulated.len(), 1);
        bus.teardown(&mut emulated);
        assert!(emulated.is_empty());
    }

    #[test]
    fn ide_children_with_unknown_instance_ids_are_reported_unfiltered() {
        let mut emulated = Emulated::new();
        let mut bus = BusFilter::new(BusType::Ide, 0);
        let outcome = bus.scan(
            &mut emulated,
            &[
                info(7, "IDE\\DiskQEMU", "0.1.0", &[]),
                info(8, "IDE\\CdRom", "weird", &[]),
            ],
            |_| None,
        );
        assert_eq!(outcome.created, [7]);
        assert_eq!(outcome.unfiltered, [8]);
        assert!(emulated.is_disk_present(1));
        assert_eq!(bus.reported_children(), [7, 8]);
    }

    #[test]
    fn precedence_force_activates_the_highest_ranked_device() {
        let mut emulated = Emulated::new();
        let mut bus = BusFilter::new(BusType::Pci, 0);
        let precedence = |id: &str| match id {
            "PCI\\VEN_5853&DEV_0001" => Some(1),
            "PCI\\VEN_5853&DEV_0002" => Some(2),
            "PCI\\VEN_5853&DEV_C000" => Some(0xC000),
            _ => None,
        };
        bus.scan(
            &mut emulated,
            &[
                info(1, PLATFORM, "a", &["PCI\\VEN_5853&DEV_0001"]),
                info(2, VENDOR, "b", &["PCI\\VEN_5853&DEV_C000"]),
            ],
            precedence,
        );
        assert_eq!(
            emulated.is_device_present(None, None),
            Some(Activation::ForceActivated)
        );
        assert_eq!(
            emulated.is_device_present(Some(VENDOR), None),
            Some(Activation::ForceActivated)
        );
        assert_eq!(
            emulated.is_device_present(Some(PLATFORM), None),
            Some(Activation::ForceDeactivated)
        );
    }

    #[test]
    fn no_precedence_leaves_every_device_neutral() {
        let mut emulated = Emulated::new();
        let mut bus = BusFilter::new(BusType::Pci, 0);
        bus.scan(
            &mut emulated,
            &[info(1, PLATFORM, "a", &["PCI\\VEN_5853&DEV_0001"])],
            |_| Some(0),
        );
        assert_eq!(
            emulated.is_device_present(Some(PLATFORM), None),
            Some(Activation::Neutral)
        );
        assert_eq!(emulated.is_device_present(None, None), None);
    }
}
