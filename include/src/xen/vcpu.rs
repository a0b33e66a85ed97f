//! `vcpu.h`: `VCPUOP_*` operations — registering a `vcpu_info` outside the shared info page,
//! timers, runstate.

use super::abi::AbiConstant;
use crate::{abi_constants, abi_structs, open_enum};

open_enum! {
    /// `vcpu_op` sub-operation (`VCPUOP_*`).
    pub struct VcpuOp(u32) {
        /// Initialise a vCPU's context (PV).
        INITIALISE = 0 => "VCPUOP_initialise",
        /// Bring a vCPU up.
        UP = 1 => "VCPUOP_up",
        /// Take a vCPU down.
        DOWN = 2 => "VCPUOP_down",
        /// Is the vCPU up?
        IS_UP = 3 => "VCPUOP_is_up",
        /// Fills a [`VcpuRunstateInfo`].
        GET_RUNSTATE_INFO = 4 => "VCPUOP_get_runstate_info",
        /// Register a runstate area.
        REGISTER_RUNSTATE_MEMORY_AREA = 5 => "VCPUOP_register_runstate_memory_area",
        /// Start the periodic timer; argument [`VcpuSetPeriodicTimer`].
        SET_PERIODIC_TIMER = 6 => "VCPUOP_set_periodic_timer",
        /// Stop the periodic timer.
        STOP_PERIODIC_TIMER = 7 => "VCPUOP_stop_periodic_timer",
        /// Arm the single-shot timer.
        SET_SINGLESHOT_TIMER = 8 => "VCPUOP_set_singleshot_timer",
        /// Disarm the single-shot timer.
        STOP_SINGLESHOT_TIMER = 9 => "VCPUOP_stop_singleshot_timer",
        /// Move a vCPU's `vcpu_info`; argument [`VcpuRegisterVcpuInfo`].
        REGISTER_VCPU_INFO = 10 => "VCPUOP_register_vcpu_info",
        /// Send an NMI.
        SEND_NMI = 11 => "VCPUOP_send_nmi",
        /// Physical id (hardware domain).
        GET_PHYSID = 12 => "VCPUOP_get_physid",
        /// Register a secondary time area.
        REGISTER_VCPU_TIME_MEMORY_AREA = 13 => "VCPUOP_register_vcpu_time_memory_area",
    }
}

open_enum! {
    /// `vcpu_runstate_info.state` (`RUNSTATE_*`).
    pub struct RunstateState(i32) {
        /// Running.
        RUNNING = 0 => "RUNSTATE_running",
        /// Runnable but not running.
        RUNNABLE = 1 => "RUNSTATE_runnable",
        /// Blocked.
        BLOCKED = 2 => "RUNSTATE_blocked",
        /// Offline.
        OFFLINE = 3 => "RUNSTATE_offline",
    }
}

/// `XEN_RUNSTATE_UPDATE`: set in `state_entry_time` while Xen updates a runstate area.
pub const XEN_RUNSTATE_UPDATE: u64 = 1 << 63;
/// `VCPU_SSHOTTMR_future`: fail if the single-shot timeout is in the past.
pub const VCPU_SSHOTTMR_FUTURE: u32 = 1;

abi_structs! {
    /// `VCPUOP_get_runstate_info`.
    #[c("struct vcpu_runstate_info", size = 48, align = 8)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct VcpuRunstateInfo {
        /// Current [`RunstateState`].
        @0 pub state: RunstateState,
        /// System time of entry into `state`.
        @8 pub state_entry_time: u64,
        /// Time spent in each state.
        @16 pub time: [u64; 4],
    }

    /// `VCPUOP_register_runstate_memory_area` (`addr` is a guest address union).
    #[c("struct vcpu_register_runstate_memory_area", size = 8, align = 8)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct VcpuRegisterRunstateMemoryArea {
        /// Guest virtual address of a [`VcpuRunstateInfo`].
        @0 pub addr: u64,
    }

    /// `VCPUOP_set_periodic_timer`.
    #[c("struct vcpu_set_periodic_timer", size = 8, align = 8)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct VcpuSetPeriodicTimer {
        /// Period in ns.
        @0 pub period_ns: u64,
    }

    /// `VCPUOP_set_singleshot_timer`.
    #[c("struct vcpu_set_singleshot_timer", size = 16, align = 8)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct VcpuSetSingleshotTimer {
        /// Absolute system time in ns.
        @0 pub timeout_abs_ns: u64,
        /// [`VCPU_SSHOTTMR_FUTURE`].
        @8 pub flags: u32,
    }

    /// `VCPUOP_register_vcpu_info`: place the vCPU's `vcpu_info` at `offset` in frame `mfn`.
    #[c("struct vcpu_register_vcpu_info", size = 16, align = 8)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct VcpuRegisterVcpuInfo {
        /// Guest frame.
        @0 pub mfn: u64,
        /// Byte offset (the `vcpu_info` must not cross the page).
        @8 pub offset: u32,
        /// Reserved.
        @12 pub rsvd: u32,
    }

    /// `VCPUOP_get_physid`.
    #[c("struct vcpu_get_physid", size = 8, align = 8)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct VcpuGetPhysid {
        /// APIC id (low 32 bits) and ACPI id (high 32 bits).
        @0 pub phys_id: u64,
    }

    /// `VCPUOP_register_vcpu_time_memory_area` (`addr` is a guest address union).
    #[c("struct vcpu_register_time_memory_area", size = 8, align = 8)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct VcpuRegisterTimeMemoryArea {
        /// Guest virtual address of a `vcpu_time_info`.
        @0 pub addr: u64,
    }
}

/// Every constant of `vcpu.h`, for the C conformance probe.
pub const CONSTANTS: &[&[AbiConstant]] = &[
    VcpuOp::C_CONSTANTS,
    RunstateState::C_CONSTANTS,
    abi_constants![
        "XEN_RUNSTATE_UPDATE" => XEN_RUNSTATE_UPDATE,
        "VCPU_SSHOTTMR_future" => VCPU_SSHOTTMR_FUTURE,
    ],
];
