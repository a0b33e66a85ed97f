//! `sched.h`: `SCHEDOP_*` operations — yield, block, shutdown (including suspend), poll and the
//! domain watchdog.

use super::abi::{AbiConstant, GuestHandle};
use super::event_channel::EvtchnPort;
use super::xen::DomId;
use crate::{abi_structs, open_enum};

open_enum! {
    /// `sched_op` sub-operation (`SCHEDOP_*`).
    pub struct SchedOp(u32) {
        /// Give up the rest of the time slice.
        YIELD = 0 => "SCHEDOP_yield",
        /// Block until an event arrives.
        BLOCK = 1 => "SCHEDOP_block",
        /// Shut down (or suspend) this domain; argument [`SchedShutdown`].
        SHUTDOWN = 2 => "SCHEDOP_shutdown",
        /// Poll a set of ports.
        POLL = 3 => "SCHEDOP_poll",
        /// Shut down another domain.
        REMOTE_SHUTDOWN = 4 => "SCHEDOP_remote_shutdown",
        /// Record the shutdown code without shutting down.
        SHUTDOWN_CODE = 5 => "SCHEDOP_shutdown_code",
        /// Arm / disarm a domain watchdog; argument [`SchedWatchdog`].
        WATCHDOG = 6 => "SCHEDOP_watchdog",
        /// Pin to a physical CPU (hardware domain).
        PIN_OVERRIDE = 7 => "SCHEDOP_pin_override",
    }
}

open_enum! {
    /// Shutdown reason (`SHUTDOWN_*`).
    pub struct ShutdownReason(u32) {
        /// Power off.
        POWEROFF = 0 => "SHUTDOWN_poweroff",
        /// Reboot.
        REBOOT = 1 => "SHUTDOWN_reboot",
        /// Suspend (for save / migrate): the hypercall returns on resume.
        SUSPEND = 2 => "SHUTDOWN_suspend",
        /// Crash.
        CRASH = 3 => "SHUTDOWN_crash",
        /// Watchdog expiry.
        WATCHDOG = 4 => "SHUTDOWN_watchdog",
        /// Soft reset.
        SOFT_RESET = 5 => "SHUTDOWN_soft_reset",
    }
}

impl ShutdownReason {
    /// Highest defined reason (`SHUTDOWN_MAX`).
    pub const MAX: Self = Self::SOFT_RESET;
}

abi_structs! {
    /// `SCHEDOP_shutdown` / `SCHEDOP_shutdown_code`.
    #[c("struct sched_shutdown", size = 4, align = 4)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct SchedShutdown {
        /// [`ShutdownReason`].
        @0 pub reason: ShutdownReason,
    }

    /// `SCHEDOP_poll`.
    #[c("struct sched_poll", size = 24, align = 8)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct SchedPoll {
        /// Ports to poll.
        @0 pub ports: GuestHandle<EvtchnPort>,
        /// Number of ports.
        @8 pub nr_ports: u32,
        /// Absolute system time timeout in ns (0 = none).
        @16 pub timeout: u64,
    }

    /// `SCHEDOP_remote_shutdown`.
    #[c("struct sched_remote_shutdown", size = 8, align = 4)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct SchedRemoteShutdown {
        /// The domain.
        @0 pub domain_id: DomId,
        /// [`ShutdownReason`].
        @4 pub reason: ShutdownReason,
    }

    /// `SCHEDOP_watchdog`: `id` 0 with a timeout creates a watchdog (its id is returned),
    /// a non-zero `id` re-arms it, and a zero timeout destroys it.
    #[c("struct sched_watchdog", size = 8, align = 4)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct SchedWatchdog {
        /// Watchdog id (0 = create).
        @0 pub id: u32,
        /// Timeout in seconds (0 = destroy).
        @4 pub timeout: u32,
    }

    /// `SCHEDOP_pin_override`.
    #[c("struct sched_pin_override", size = 4, align = 4)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct SchedPinOverride {
        /// Physical CPU, or -1 to undo.
        @0 pub pcpu: i32,
    }
}

/// Every constant of `sched.h`, for the C conformance probe.
pub const CONSTANTS: &[&[AbiConstant]] = &[
    SchedOp::C_CONSTANTS,
    ShutdownReason::C_CONSTANTS,
    crate::abi_constants!["SHUTDOWN_MAX" => ShutdownReason::MAX.0],
];
