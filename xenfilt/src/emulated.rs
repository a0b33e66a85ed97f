//! EMULATED: the record of every emulated device the filter has seen (spec §6.2, §6.3).
//!
//! Each child filter on the PCI root bus or an IDE channel registers one object here.
//! The EMULATED interface (served to xenbus and the PV storage/network drivers) answers
//! "is this emulated device still present?" from these records.
#![forbid(unsafe_code)]

use alloc::string::String;
use alloc::vec::Vec;

/// Compatible IDs of QEMU's emulated NVMe controller (with and without `use-intel-id`).
pub const EMULATED_NVME_COMPATIBLE_IDS: [&str; 2] =
    ["PCI\\VEN_8086&DEV_5845", "PCI\\VEN_1B36&DEV_0010"];

/// How the filter wants xenbus to treat a platform PCI device (FORCE_ACTIVATE builds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// No precedence configured: xenbus applies its own active-device rules.
    Neutral,
    /// This device has the highest precedence: xenbus must make it active.
    ForceActivated,
    /// Another device has higher precedence: xenbus must stay inactive on this one.
    ForceDeactivated,
}

/// Handle of one registered object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ObjectId(u32);

/// What kind of emulated device an object describes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EmulatedKind {
    /// A child of the PCI root bus.
    Pci {
        /// `BusQueryDeviceID` as reported by the bus (e.g. `PCI\VEN_5853&DEV_0001&…`).
        device_id: String,
        /// `BusQueryInstanceID`.
        instance_id: String,
        /// Activation decided by precedence.
        activation: Activation,
        /// True for QEMU's emulated NVMe controller.
        is_nvme: bool,
    },
    /// A disk on an emulated IDE channel; `index` is the PV disk number it aliases.
    Ide { index: u32 },
}

/// Why an emulated object could not be registered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EmulatedError {
    /// The IDE InstanceID is not `<controller>.<target>.<lun>` with controller ≤ 1,
    /// target ≤ 1 and lun 0.
    BadIdeInstanceId(String),
}

/// Parse an IDE child's InstanceID `"<controller>.<target>.<lun>"` into the PV disk index
/// `controller * 2 + target`. Only the two legacy controllers with two targets each and
/// LUN 0 exist on the emulated platform; anything else is not an emulated disk we alias.
pub fn parse_ide_index(instance_id: &str) -> Result<u32, EmulatedError> {
    let bad = || EmulatedError::BadIdeInstanceId(String::from(instance_id));
    let mut parts = instance_id.split('.');
    let mut field = || -> Result<u32, EmulatedError> {
        let text = parts.next().ok_or_else(bad)?;
        if text.is_empty() || text.len() > 4 || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        text.parse::<u32>().map_err(|_| bad())
    };
    let controller = field()?;
    let target = field()?;
    let lun = field()?;
    if parts.next().is_some() || controller > 1 || target > 1 || lun != 0 {
        return Err(bad());
    }
    Ok(controller * 2 + target)
}

/// True when any of `compatible_ids` names QEMU's emulated NVMe controller.
pub fn is_emulated_nvme<'a>(compatible_ids: impl IntoIterator<Item = &'a str>) -> bool {
    compatible_ids.into_iter().any(|id| {
        EMULATED_NVME_COMPATIBLE_IDS
            .iter()
            .any(|nvme| id.eq_ignore_ascii_case(nvme))
    })
}

/// The set of emulated objects, in registration order.
#[derive(Debug, Default)]
pub struct Emulated {
    objects: Vec<(ObjectId, EmulatedKind)>,
    next_id: u32,
}

impl Emulated {
    /// An empty record.
    pub const fn new() -> Self {
        Self {
            objects: Vec::new(),
            next_id: 0,
        }
    }

    fn insert(&mut self, kind: EmulatedKind) -> ObjectId {
        let id = ObjectId(self.next_id);
        self.next_id = self.next_id.wrapping_add(1);
        self.objects.push((id, kind));
        id
    }

    /// Register a PCI child.
    pub fn add_pci(
        &mut self,
        device_id: &str,
        instance_id: &str,
        compatible_ids: &[&str],
        activation: Activation,
    ) -> ObjectId {
        self.insert(EmulatedKind::Pci {
            device_id: String::from(device_id),
            instance_id: String::from(instance_id),
            activation,
            is_nvme: is_emulated_nvme(compatible_ids.iter().copied()),
        })
    }

    /// Register an IDE child from its InstanceID.
    pub fn add_ide(&mut self, instance_id: &str) -> Result<ObjectId, EmulatedError> {
        let index = parse_ide_index(instance_id)?;
        Ok(self.insert(EmulatedKind::Ide { index }))
    }

    /// Forget an object (its child PDO was removed). Returns false for an unknown id.
    pub fn remove(&mut self, id: ObjectId) -> bool {
        let before = self.objects.len();
        self.objects.retain(|(object, _)| *object != id);
        self.objects.len() != before
    }

    /// Change the activation of a PCI object (precedence re-evaluated on a new scan).
    pub fn set_activation(&mut self, id: ObjectId, status: Activation) -> bool {
        for (object, kind) in &mut self.objects {
            if *object == id {
                if let EmulatedKind::Pci { activation, .. } = kind {
                    *activation = status;
                    return true;
                }
            }
        }
        false
    }

    /// Number of registered objects (teardown with objects left is a bug upstream).
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// True when nothing is registered.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// The object registered under `id`.
    pub fn get(&self, id: ObjectId) -> Option<&EmulatedKind> {
        self.objects
            .iter()
            .find(|(object, _)| *object == id)
            .map(|(_, kind)| kind)
    }

    /// EMULATED `IsDevicePresent`: is there a PCI object whose DeviceID matches
    /// (`None` = the force-activated object) and whose InstanceID matches (`None` = any)?
    /// Comparisons are case-insensitive. Returns the object's activation status.
    pub fn is_device_present(
        &self,
        device_id: Option<&str>,
        instance_id: Option<&str>,
    ) -> Option<Activation> {
        self.objects.iter().find_map(|(_, kind)| match kind {
            EmulatedKind::Pci {
                device_id: dev,
                instance_id: inst,
                activation,
                ..
            } => {
                let device_matches = match device_id {
                    Some(wanted) => wanted.eq_ignore_ascii_case(dev),
                    None => *activation == Activation::ForceActivated,
                };
                let instance_matches =
                    instance_id.is_none_or(|wanted| wanted.eq_ignore_ascii_case(inst));
                (device_matches && instance_matches).then_some(*activation)
            }
            EmulatedKind::Ide { .. } => None,
        })
    }

    /// EMULATED `IsDiskPresent(Index)`: true if an IDE disk aliases PV disk `index`, or if
    /// any emulated NVMe controller exists (its namespaces may alias any PV disk).
    pub fn is_disk_present(&self, index: u32) -> bool {
        self.objects.iter().any(|(_, kind)| match kind {
            EmulatedKind::Ide { index: disk } => *disk == index,
            EmulatedKind::Pci { is_nvme, .. } => *is_nvme,
        })
    }

    /// EMULATED v1 `IsDiskPresent(Controller, Target, Lun)`: old xenvbd passed the PV disk
    /// index as `Target`, so that is what it means here (compatibility shim).
    pub fn is_disk_present_v1(&self, _controller: u32, target: u32, _lun: u32) -> bool {
        self.is_disk_present(target)
    }

    /// True if any PCI object is the force-activated one.
    pub fn force_activated_present(&self) -> bool {
        self.is_device_present(None, None).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ide_instance_ids_map_to_pv_disk_indices() {
        assert_eq!(parse_ide_index("0.0.0"), Ok(0));
        assert_eq!(parse_ide_index("0.1.0"), Ok(1));
        assert_eq!(parse_ide_index("1.0.0"), Ok(2));
        assert_eq!(parse_ide_index("1.1.0"), Ok(3));
        for bad in [
            "2.0.0",
            "0.2.0",
            "0.0.1",
            "0.0",
            "0.0.0.0",
            "",
            "a.0.0",
            "-1.0.0",
            "0..0",
            "00000.0.0",
        ] {
            assert!(parse_ide_index(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn nvme_is_recognised_by_either_compatible_id() {
        assert!(is_emulated_nvme(["PCI\\VEN_8086&DEV_5845"]));
        assert!(is_emulated_nvme([
            "PCI\\CC_010802",
            "pci\\ven_1b36&dev_0010"
        ]));
        assert!(!is_emulated_nvme(["PCI\\VEN_8086&DEV_7010"]));
    }

    #[test]
    fn device_presence_rules() {
        let mut record = Emulated::new();
        let platform = record.add_pci(
            "PCI\\VEN_5853&DEV_0001&SUBSYS_00015853&REV_01",
            "3&267A616A&0&18",
            &["PCI\\VEN_5853&DEV_0001"],
            Activation::Neutral,
        );
        let _nic = record.add_pci(
            "PCI\\VEN_8086&DEV_100E",
            "3&X&0&20",
            &[],
            Activation::Neutral,
        );
        assert_eq!(
            record.is_device_present(Some("pci\\ven_5853&dev_0001&subsys_00015853&rev_01"), None),
            Some(Activation::Neutral)
        );
        assert_eq!(
            record.is_device_present(
                Some("PCI\\VEN_5853&DEV_0001&SUBSYS_00015853&REV_01"),
                Some("3&267a616a&0&18")
            ),
            Some(Activation::Neutral)
        );
        assert_eq!(
            record.is_device_present(
                Some("PCI\\VEN_5853&DEV_0001&SUBSYS_00015853&REV_01"),
                Some("other")
            ),
            None
        );
        // NULL DeviceID means "the force-activated device": there is none yet.
        assert_eq!(record.is_device_present(None, None), None);
        assert!(record.set_activation(platform, Activation::ForceActivated));
        assert_eq!(
            record.is_device_present(None, None),
            Some(Activation::ForceActivated)
        );
        assert!(record.remove(platform));
        assert!(!record.remove(platform));
        assert_eq!(record.is_device_present(None, None), None);
    }

    #[test]
    fn disk_presence_counts_ide_aliases_and_any_nvme() {
        let mut record = Emulated::new();
        let disk = record.add_ide("1.0.0").expect("valid id");
        assert!(record.is_disk_present(2));
        assert!(!record.is_disk_present(0));
        assert!(
            record.is_disk_present_v1(7, 2, 9),
            "v1 treats Target as the index"
        );
        assert!(record.remove(disk));
        assert!(!record.is_disk_present(2));
        record.add_pci(
            "PCI\\VEN_1B36&DEV_0010",
            "3&1&0&28",
            &["PCI\\VEN_1B36&DEV_0010"],
            Activation::Neutral,
        );
        assert!(record.is_disk_present(0) && record.is_disk_present(5));
        assert!(record.add_ide("0.0.1").is_err());
    }
}
