//! The driver-global filter state (spec §6.1, §6.2): which devices the filter attaches to,
//! and the ENABLED → PENDING → DISABLED machine that hides emulated children until the
//! unplug decision has been made.
#![forbid(unsafe_code)]

/// The kind of bus a filter FDO sits on, from the `Services\xenfilt\Parameters` value data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BusType {
    /// The PCI root bus (`*PNP0A03` = `PCI`).
    Pci,
    /// An ATA/IDE channel (`Internal_IDE_Channel` = `IDE`).
    Ide,
}

impl BusType {
    /// Parse the REG_SZ data of a Parameters value (`PCI` or `IDE`, case-insensitive).
    pub fn from_parameter(data: &str) -> Option<Self> {
        if data.eq_ignore_ascii_case("PCI") {
            Some(Self::Pci)
        } else if data.eq_ignore_ascii_case("IDE") {
            Some(Self::Ide)
        } else {
            None
        }
    }
}

/// AddDevice policy: attach when one of the device's hardware IDs, then compatible IDs, is
/// a value name under `Services\xenfilt\Parameters` whose data is `PCI` or `IDE`.
/// `parameter` looks a value up by name (REG_SZ data, or `None` when absent/not a string).
pub fn attach_type<'a, F>(
    hardware_ids: impl IntoIterator<Item = &'a str>,
    compatible_ids: impl IntoIterator<Item = &'a str>,
    mut parameter: F,
) -> Option<BusType>
where
    F: FnMut(&str) -> Option<alloc::string::String>,
{
    hardware_ids
        .into_iter()
        .chain(compatible_ids)
        .find_map(|id| parameter(id).and_then(|data| BusType::from_parameter(&data)))
}

/// The global filter state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterState {
    /// Not every filtered bus has enumerated yet: every bus reports zero children and
    /// re-invalidates its relations.
    Enabled,
    /// Every bus has enumerated once and the unplug decision was taken; the next
    /// enumeration disables the filter.
    Pending,
    /// Children are reported as the bus reports them.
    Disabled,
}

/// What a bus filter must do with the relations it just received from below.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RelationsDecision {
    /// Pass the bus's children up (`false`: report zero children).
    pub report_children: bool,
    /// Ask PnP to query relations again (`IoInvalidateDeviceRelations`).
    pub invalidate: bool,
    /// Issue `UnplugDevices()` through xen.sys now (emulated devices vanish before their
    /// drivers load).
    pub unplug: bool,
}

/// Inputs of the unplug decision, read when the state reaches PENDING.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnplugInputs {
    /// The active platform device is present (force-activated device present, or
    /// `ActiveDeviceID` among the emulated PCI objects).
    pub active_device_present: bool,
    /// Windows booted in safe mode.
    pub safe_mode: bool,
}

/// The state machine. Buses are identified by small integers handed out by `add_bus`.
#[derive(Debug)]
pub struct FilterMachine {
    state: FilterState,
    /// `(bus id, has enumerated at least once)`.
    buses: alloc::vec::Vec<(u32, bool)>,
    next_bus: u32,
}

impl Default for FilterMachine {
    fn default() -> Self {
        Self::new()
    }
}

impl FilterMachine {
    /// A new driver: filtering enabled, no buses.
    pub const fn new() -> Self {
        Self {
            state: FilterState::Enabled,
            buses: alloc::vec::Vec::new(),
            next_bus: 0,
        }
    }

    /// Current state.
    pub fn state(&self) -> FilterState {
        self.state
    }

    /// A filter FDO was attached to a bus.
    pub fn add_bus(&mut self) -> u32 {
        let id = self.next_bus;
        self.next_bus = self.next_bus.wrapping_add(1);
        self.buses.push((id, false));
        id
    }

    /// A filter FDO went away; a bus that never enumerates must not hold the filter back.
    pub fn remove_bus(&mut self, bus: u32) {
        self.buses.retain(|(id, _)| *id != bus);
    }

    /// Bus `bus` completed a BusRelations query. `unplug_inputs` is consulted only at the
    /// ENABLED → PENDING transition.
    ///
    /// Deliberate difference from upstream: a bus that answered counts as enumerated even
    /// with zero children (upstream waits for at least one child, which hides everything
    /// forever when an IDE channel is empty).
    pub fn bus_enumerated(
        &mut self,
        bus: u32,
        unplug_inputs: impl FnOnce() -> UnplugInputs,
    ) -> RelationsDecision {
        if let Some(entry) = self.buses.iter_mut().find(|(id, _)| *id == bus) {
            entry.1 = true;
        }
        match self.state {
            FilterState::Enabled => {
                let mut unplug = false;
                if self.buses.iter().all(|(_, enumerated)| *enumerated) {
                    let inputs = unplug_inputs();
                    unplug = inputs.active_device_present && !inputs.safe_mode;
                    self.state = FilterState::Pending;
                }
                RelationsDecision {
                    report_children: false,
                    invalidate: true,
                    unplug,
                }
            }
            FilterState::Pending => {
                self.state = FilterState::Disabled;
                RelationsDecision {
                    report_children: true,
                    invalidate: self.buses.len() > 1,
                    unplug: false,
                }
            }
            FilterState::Disabled => RelationsDecision {
                report_children: true,
                invalidate: false,
                unplug: false,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;

    fn params(name: &str) -> Option<String> {
        match name {
            "*PNP0A03" => Some("PCI".into()),
            "Internal_IDE_Channel" => Some("ide".into()),
            "ACPI\\PNP0A03" => Some("bogus".into()),
            _ => None,
        }
    }

    #[test]
    fn attaches_only_to_configured_buses() {
        assert_eq!(
            attach_type(["ACPI\\PNP0A03"], ["*PNP0A03"], params),
            Some(BusType::Pci)
        );
        assert_eq!(
            attach_type(["Internal_IDE_Channel"], [], params),
            Some(BusType::Ide)
        );
        assert_eq!(
            attach_type(["PCI\\VEN_8086&DEV_7010"], ["PCI\\CC_0101"], params),
            None
        );
        assert_eq!(attach_type([], [], params), None);
    }

    #[test]
    fn hides_until_every_bus_enumerated_then_unplugs_then_disables() {
        let mut machine = FilterMachine::new();
        let pci = machine.add_bus();
        let ide = machine.add_bus();
        let present = || UnplugInputs {
            active_device_present: true,
            safe_mode: false,
        };
        let first = machine.bus_enumerated(pci, || panic!("not every bus has enumerated"));
        assert_eq!(
            first,
            RelationsDecision {
                report_children: false,
                invalidate: true,
                unplug: false
            }
        );
        assert_eq!(machine.state(), FilterState::Enabled);
        let second = machine.bus_enumerated(ide, present);
        assert_eq!(
            second,
            RelationsDecision {
                report_children: false,
                invalidate: true,
                unplug: true
            }
        );
        assert_eq!(machine.state(), FilterState::Pending);
        let third = machine.bus_enumerated(pci, present);
        assert!(third.report_children && !third.unplug);
        assert_eq!(machine.state(), FilterState::Disabled);
        assert!(machine.bus_enumerated(ide, present).report_children);
    }

    #[test]
    fn no_unplug_in_safe_mode_or_without_active_device() {
        for inputs in [
            UnplugInputs {
                active_device_present: true,
                safe_mode: true,
            },
            UnplugInputs {
                active_device_present: false,
                safe_mode: false,
            },
        ] {
            let mut machine = FilterMachine::new();
            let bus = machine.add_bus();
            assert!(!machine.bus_enumerated(bus, || inputs).unplug);
            assert_eq!(machine.state(), FilterState::Pending);
        }
    }

    #[test]
    fn a_removed_bus_does_not_block_the_decision() {
        let mut machine = FilterMachine::new();
        let pci = machine.add_bus();
        let gone = machine.add_bus();
        machine.remove_bus(gone);
        let decision = machine.bus_enumerated(pci, || UnplugInputs {
            active_device_present: true,
            safe_mode: false,
        });
        assert!(decision.unplug);
    }
}
