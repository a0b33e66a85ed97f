//! The driver-global filter object (`driver.c`'s context): the bus filters, the filter
//! state machine, the EMULATED provider and the calls into xen.sys (unplug, active-device
//! configuration). The WDM edge and the simulator's PnP manager both drive this object.

use alloc::string::String;
use alloc::vec::Vec;
use core::ffi::CStr;

use xen_include::api::XenApi;

use crate::driver::{
    attach_type, BusType, FilterMachine, FilterState, RelationsDecision, UnplugInputs,
};
use crate::emulated::Activation;
use crate::fdo::{BusFilter, ChildInfo, PdoHandle, ScanOutcome};
use crate::interface::EmulatedProvider;
use crate::pdo::{answer, ActiveIdentity, IdentityQuery};

/// Identity of a bus filter FDO inside the [`Filter`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BusHandle(u32);

/// What the bus filter must pass up for one BusRelations query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Relations {
    /// The child PDOs to report (empty while the filter hides them).
    pub report: Vec<PdoHandle>,
    /// Ask PnP to query relations again.
    pub invalidate: bool,
    /// Whether this query issued the unplug.
    pub unplugged: bool,
    /// The child filters created and destroyed by this scan.
    pub scan: ScanOutcome,
}

/// The filter driver's global state.
pub struct Filter<'a> {
    xen: &'a dyn XenApi,
    machine: FilterMachine,
    buses: Vec<BusFilter>,
    safe_mode: bool,
    /// The EMULATED interface's provider (its record is shared with the bus filters). It is
    /// not owned by the filter: C callers reach it through the interface without taking the
    /// filter's lock, so it lives on its own (a static in the driver).
    pub emulated: &'a EmulatedProvider,
}

fn active_value(xen: &dyn XenApi, key: &CStr) -> Option<String> {
    let mut buffer = [0u8; 512];
    let len = xen.config_get_active(key, &mut buffer).ok()?;
    let bytes = buffer.get(..len)?;
    let text = core::str::from_utf8(bytes).ok()?.trim_end_matches('\0');
    (!text.is_empty()).then(|| String::from(text))
}

impl<'a> Filter<'a> {
    /// The filter of a driver loaded over `xen`, recording emulated devices in `emulated`
    /// (`safe_mode`: Windows booted in safe mode).
    pub fn new(xen: &'a dyn XenApi, emulated: &'a EmulatedProvider, safe_mode: bool) -> Self {
        Self {
            xen,
            machine: FilterMachine::new(),
            buses: Vec::new(),
            safe_mode,
            emulated,
        }
    }

    /// The filter state.
    pub fn state(&self) -> FilterState {
        self.machine.state()
    }

    /// AddDevice: attach a bus filter when the device's IDs name a filtered bus in
    /// `Services\xenfilt\Parameters` (looked up through `parameter`).
    pub fn add_device<'i, F>(
        &mut self,
        hardware_ids: impl IntoIterator<Item = &'i str>,
        compatible_ids: impl IntoIterator<Item = &'i str>,
        parameter: F,
    ) -> Option<BusHandle>
    where
        F: FnMut(&str) -> Option<String>,
    {
        let bus_type = attach_type(hardware_ids, compatible_ids, parameter)?;
        let id = self.machine.add_bus();
        self.buses.push(BusFilter::new(bus_type, id));
        Some(BusHandle(id))
    }

    /// The kind of bus a filter sits on.
    pub fn bus_type(&self, bus: BusHandle) -> Option<BusType> {
        self.bus(bus).map(BusFilter::bus_type)
    }

    fn bus(&self, bus: BusHandle) -> Option<&BusFilter> {
        self.buses.iter().find(|b| b.machine_id == bus.0)
    }

    /// The active-device values recorded by xenbus (through xen.sys's Config*).
    pub fn active_identity(&self) -> ActiveIdentity {
        ActiveIdentity {
            device_id: active_value(self.xen, c"DeviceID"),
            instance_id: active_value(self.xen, c"InstanceID"),
            location: active_value(self.xen, c"LocationInformation"),
        }
    }

    fn unplug_inputs(&self) -> UnplugInputs {
        // The active device comes from the registry (PASSIVE_LEVEL): read it before taking
        // the emulated record's spin lock.
        let active = active_value(self.xen, c"DeviceID");
        let record = self.emulated.record.lock();
        let forced = record.is_device_present(None, None) == Some(Activation::ForceActivated);
        let recorded =
            active.is_some_and(|device| record.is_device_present(Some(&device), None).is_some());
        UnplugInputs {
            active_device_present: forced || recorded,
            safe_mode: self.safe_mode,
        }
    }

    /// The bus below `bus` answered BusRelations with `relations`: reconcile the child
    /// filters, advance the filter state, unplug when it is time, and say what to report.
    pub fn bus_relations<P>(
        &mut self,
        bus: BusHandle,
        relations: &[ChildInfo<'_>],
        precedence: P,
    ) -> Option<Relations>
    where
        P: Fn(&str) -> Option<u32>,
    {
        let position = self.buses.iter().position(|b| b.machine_id == bus.0)?;
        let scan = {
            let mut record = self.emulated.record.lock();
            self.buses
                .get_mut(position)?
                .scan(&mut record, relations, precedence)
        };
        let inputs = self.unplug_inputs();
        let decision: RelationsDecision = self.machine.bus_enumerated(bus.0, || inputs);
        if decision.unplug {
            self.xen.unplug_devices();
        }
        let filter = self.buses.get_mut(position)?;
        let report = if decision.report_children {
            filter.mark_reported();
            filter.reported_children()
        } else {
            Vec::new()
        };
        Some(Relations {
            report,
            invalidate: decision.invalidate,
            unplugged: decision.unplug,
            scan,
        })
    }

    /// The answer of the child filter over `pdo` to an identity query (`None`: pass down).
    pub fn identity(&self, bus: BusHandle, pdo: PdoHandle, query: IdentityQuery) -> Option<String> {
        let child = self.bus(bus)?.child(pdo)?;
        // The registry first (PASSIVE_LEVEL), then the record's spin lock.
        let active = self.active_identity();
        let record = self.emulated.record.lock();
        answer(child, &record, &active, query)
    }

    /// REMOVE_DEVICE reached the child filter over `pdo`.
    pub fn child_removed(&mut self, bus: BusHandle, pdo: PdoHandle) -> bool {
        let mut record = self.emulated.record.lock();
        match self.buses.iter_mut().find(|b| b.machine_id == bus.0) {
            Some(filter) => filter.child_removed(&mut record, pdo),
            None => false,
        }
    }

    /// REMOVE_DEVICE reached a bus filter: its children go with it, and it no longer
    /// holds the filter state back.
    pub fn remove_bus(&mut self, bus: BusHandle) {
        if let Some(position) = self.buses.iter().position(|b| b.machine_id == bus.0) {
            let mut filter = self.buses.swap_remove(position);
            filter.teardown(&mut self.emulated.record.lock());
        }
        self.machine.remove_bus(bus.0);
    }
}
