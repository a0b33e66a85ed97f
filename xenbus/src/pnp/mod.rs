//! The PnP and power state machines of xenbus.sys's devices (spec §5.3, §5.4, §3.2–3.3):
//! the bus FDO over the platform PCI device ([`fdo`]) and the child PDOs ([`pdo`]). They
//! take typed requests ([`common::pnp`]) and reach the runtime only through a trait each
//! ([`fdo::BusServices`], [`pdo::ChildServices`]).
#![forbid(unsafe_code)]

pub mod fdo;
pub mod pdo;
pub mod power;

#[cfg(test)]
mod tests;

/// Where a device is in its PnP life (`DEVICE_PNP_STATE` of the C driver).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PnpState {
    /// Created, not yet reported to PnP (PDO) / attached, not started (FDO).
    Present,
    /// Reported in a BusRelations answer (PDO).
    Enumerated,
    /// START_DEVICE succeeded.
    Started,
    /// QUERY_STOP succeeded.
    StopPending,
    /// STOP_DEVICE done.
    Stopped,
    /// QUERY_REMOVE succeeded.
    RemovePending,
    /// SURPRISE_REMOVAL received.
    SurpriseRemovePending,
    /// REMOVE_DEVICE done.
    Deleted,
}

/// The current and previous PnP state (QUERY_* sets a pending state, CANCEL_* restores).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PnpStates {
    current: PnpState,
    previous: PnpState,
}

impl PnpStates {
    /// Starting in `state`.
    pub const fn new(state: PnpState) -> Self {
        Self {
            current: state,
            previous: state,
        }
    }

    /// The current state.
    pub const fn current(&self) -> PnpState {
        self.current
    }

    /// The state before the current one.
    pub const fn previous(&self) -> PnpState {
        self.previous
    }

    /// Move to `state`, remembering the current one.
    pub fn set(&mut self, state: PnpState) {
        self.previous = self.current;
        self.current = state;
    }

    /// CANCEL_STOP/CANCEL_REMOVE: go back to the previous state if `pending` is current.
    pub fn restore(&mut self, pending: PnpState) {
        if self.current == pending {
            self.current = self.previous;
        }
    }
}
