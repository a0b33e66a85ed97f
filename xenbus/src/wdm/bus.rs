//! [`BusServices`] for the bus FDO: what [`crate::pnp::fdo::FdoMachine`] asks of the
//! kernel and the runtime — interrupts, threads, D3↔D0, hibernate, the balloon veto, the
//! scan, the child PDOs, device-state invalidation and the FDO's destruction.

use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicPtr, Ordering};

use common::wdm::interrupt;
use common::wdm::log::{log, Level};
use windows_sys::Wdk::System::SystemServices::IoInvalidateDeviceState;
use windows_sys::Win32::Foundation::STATUS_NO_SUCH_DEVICE;
use windows_sys::Win32::System::Power::{PowerDeviceD0, PowerDeviceD3};
use xen_include::status::NtStatus;

use super::fdo::{fdo_hibernate, set_device_power, Fdo};
use crate::pnp::fdo::{BusResources, BusServices, InterruptConnection};

/// The machine's services, bound to its FDO once the FDO has its final address.
pub struct BusEdge {
    fdo: AtomicPtr<Fdo>,
}

impl BusEdge {
    /// Not bound yet (the FDO is being built).
    pub fn new() -> Self {
        Self {
            fdo: AtomicPtr::new(core::ptr::null_mut()),
        }
    }

    /// Bind to `fdo` (AddDevice, after boxing it).
    pub fn bind(&self, fdo: &Fdo) {
        self.fdo
            .store((fdo as *const Fdo).cast_mut(), Ordering::Release);
    }

    fn fdo(&self) -> Option<&Fdo> {
        // SAFETY: bound in AddDevice to the boxed FDO, which outlives its machine (the box
        // is freed only after REMOVE_DEVICE finished with the machine).
        unsafe { self.fdo.load(Ordering::Acquire).as_ref() }
    }
}

impl Default for BusEdge {
    fn default() -> Self {
        Self::new()
    }
}

impl BusServices for BusEdge {
    fn is_active(&self) -> bool {
        self.fdo().is_some_and(|f| f.runtime().runtime.is_active())
    }

    fn processors(&self) -> Vec<(u16, u8)> {
        interrupt::processors()
    }

    fn connect_interrupts(&self, interrupts: &[InterruptConnection]) -> Result<(), NtStatus> {
        let fdo = self.fdo().ok_or(STATUS_NO_SUCH_DEVICE)?;
        // SAFETY: START_DEVICE at PASSIVE_LEVEL, with the platform PDO of this FDO.
        unsafe { fdo.runtime().connect_interrupts(fdo.pdo(), interrupts) }
    }

    fn disconnect_interrupts(&self) {
        if let Some(fdo) = self.fdo() {
            fdo.runtime().disconnect_interrupts();
        }
    }

    fn start_threads(&self) -> Result<(), NtStatus> {
        self.fdo()
            .ok_or(STATUS_NO_SUCH_DEVICE)?
            .runtime()
            .start_threads()
    }

    fn stop_threads(&self) {
        if let Some(fdo) = self.fdo() {
            fdo.runtime().stop_threads();
        }
    }

    fn power_up(&self, resources: &BusResources) -> Result<(), NtStatus> {
        let fdo = self.fdo().ok_or(STATUS_NO_SUCH_DEVICE)?;
        if let Err(status) = fdo.runtime().power_up(resources) {
            log(
                Level::Error,
                format_args!("FDO D3->D0 failed ({status:#010x})"),
            );
            return Err(status);
        }
        set_device_power(fdo, PowerDeviceD0);
        Ok(())
    }

    fn power_down(&self) {
        if let Some(fdo) = self.fdo() {
            fdo.runtime().runtime.d0_to_d3();
            set_device_power(fdo, PowerDeviceD3);
        }
    }

    fn hibernate_enter(&self) {
        if let Some(fdo) = self.fdo() {
            fdo_hibernate(fdo.runtime().runtime);
        }
    }

    fn hibernate_exit(&self) {
        if let Some(fdo) = self.fdo() {
            fdo.runtime().runtime.s4_to_s3();
        }
    }

    fn after_start(&self) {
        if let Some(fdo) = self.fdo() {
            fdo.runtime().after_start();
        }
    }

    fn balloon_inflated(&self) -> bool {
        self.fdo()
            .is_some_and(|f| f.runtime().runtime.query_stop().is_err())
    }

    fn wait_scan(&self) {
        // A pass now: the child list is current when BusRelations reports it.
        if let Some(fdo) = self.fdo() {
            fdo.runtime().runtime.scan_step();
        }
    }

    fn report_children(&self) -> Vec<String> {
        self.fdo()
            .map(|f| f.runtime().bus_relations())
            .unwrap_or_default()
    }

    fn reap_children(&self) {
        if let Some(fdo) = self.fdo() {
            fdo.reap_children();
        }
    }

    fn surprise_removed(&self) {
        // Upstream `FdoSurpriseRemoval`: every child is Missing ("FDO surprise removed"), so
        // the REMOVE PnP sends each child next deletes it (a surprise-removed child's
        // object goes at once); subsystems stay up until the FDO's own REMOVE.
        log(Level::Warning, format_args!("FDO surprise removed"));
        if let Some(fdo) = self.fdo() {
            fdo.runtime().runtime.children_missing();
        }
    }

    fn remove_children(&self) {
        if let Some(fdo) = self.fdo() {
            fdo.runtime().runtime.children_missing();
            fdo.destroy_children();
        }
    }

    fn invalidate_device_state(&self) {
        if let Some(fdo) = self.fdo() {
            // SAFETY: the platform PDO outlives the attached FDO.
            unsafe { IoInvalidateDeviceState(fdo.pdo()) };
        }
    }

    fn destroy(&self) {
        if let Some(fdo) = self.fdo() {
            fdo.runtime().runtime.destroy();
            fdo.mark_destroyed();
        }
    }
}
