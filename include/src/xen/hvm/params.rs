//! `hvm/params.h`: HVM parameter indices (`HVM_PARAM_*`) read and written with
//! `HVMOP_{get,set}_param`, and the encoding of `HVM_PARAM_CALLBACK_IRQ`.

use super::super::abi::AbiConstant;
use crate::{abi_constants, open_enum};

open_enum! {
    /// An HVM parameter index (`HVM_PARAM_*`).
    pub struct HvmParam(u32) {
        /// How event upcalls are delivered; see [`CallbackVia`].
        CALLBACK_IRQ = 0 => "HVM_PARAM_CALLBACK_IRQ",
        /// Frame of the xenstore ring.
        STORE_PFN = 1 => "HVM_PARAM_STORE_PFN",
        /// Event channel of the xenstore ring.
        STORE_EVTCHN = 2 => "HVM_PARAM_STORE_EVTCHN",
        /// Frame of the ioreq page.
        IOREQ_PFN = 5 => "HVM_PARAM_IOREQ_PFN",
        /// Frame of the buffered ioreq page.
        BUFIOREQ_PFN = 6 => "HVM_PARAM_BUFIOREQ_PFN",
        /// Viridian enlightenments.
        VIRIDIAN = 9 => "HVM_PARAM_VIRIDIAN",
        /// Timer mode (`HVMPTM_*`).
        TIMER_MODE = 10 => "HVM_PARAM_TIMER_MODE",
        /// HPET enabled.
        HPET_ENABLED = 11 => "HVM_PARAM_HPET_ENABLED",
        /// Identity page table.
        IDENT_PT = 12 => "HVM_PARAM_IDENT_PT",
        /// ACPI S state.
        ACPI_S_STATE = 14 => "HVM_PARAM_ACPI_S_STATE",
        /// VM86 TSS.
        VM86_TSS = 15 => "HVM_PARAM_VM86_TSS",
        /// Virtual platform timer alignment.
        VPT_ALIGN = 16 => "HVM_PARAM_VPT_ALIGN",
        /// Frame of the PV console ring.
        CONSOLE_PFN = 17 => "HVM_PARAM_CONSOLE_PFN",
        /// Event channel of the PV console ring.
        CONSOLE_EVTCHN = 18 => "HVM_PARAM_CONSOLE_EVTCHN",
        /// ACPI PM I/O port location.
        ACPI_IOPORTS_LOCATION = 19 => "HVM_PARAM_ACPI_IOPORTS_LOCATION",
        /// Paging ring frame.
        PAGING_RING_PFN = 27 => "HVM_PARAM_PAGING_RING_PFN",
        /// Monitor ring frame.
        MONITOR_RING_PFN = 28 => "HVM_PARAM_MONITOR_RING_PFN",
        /// Sharing ring frame.
        SHARING_RING_PFN = 29 => "HVM_PARAM_SHARING_RING_PFN",
        /// Triple fault reason.
        TRIPLE_FAULT_REASON = 31 => "HVM_PARAM_TRIPLE_FAULT_REASON",
        /// First ioreq server frame.
        IOREQ_SERVER_PFN = 32 => "HVM_PARAM_IOREQ_SERVER_PFN",
        /// Number of ioreq server frames.
        NR_IOREQ_SERVER_PAGES = 33 => "HVM_PARAM_NR_IOREQ_SERVER_PAGES",
        /// VM generation id address.
        VM_GENERATION_ID_ADDR = 34 => "HVM_PARAM_VM_GENERATION_ID_ADDR",
        /// altp2m mode.
        ALTP2M = 35 => "HVM_PARAM_ALTP2M",
        /// x87 FIP width.
        X87_FIP_WIDTH = 36 => "HVM_PARAM_X87_FIP_WIDTH",
        /// VM86 TSS with size.
        VM86_TSS_SIZED = 37 => "HVM_PARAM_VM86_TSS_SIZED",
        /// MCA capabilities.
        MCA_CAP = 38 => "HVM_PARAM_MCA_CAP",
    }
}

/// Number of HVM parameters (`HVM_NR_PARAMS`).
pub const HVM_NR_PARAMS: u32 = 39;

/// Mask of the delivery type in `HVM_PARAM_CALLBACK_IRQ` (`HVM_PARAM_CALLBACK_IRQ_TYPE_MASK`).
pub const HVM_PARAM_CALLBACK_IRQ_TYPE_MASK: u64 = 0xFF00_0000_0000_0000;
/// Shift of the delivery type in `HVM_PARAM_CALLBACK_IRQ`.
pub const HVM_PARAM_CALLBACK_IRQ_TYPE_SHIFT: u32 = 56;
/// Delivery type: an ISA / IOAPIC GSI (`HVM_PARAM_CALLBACK_TYPE_GSI`).
pub const HVM_PARAM_CALLBACK_TYPE_GSI: u64 = 0;
/// Delivery type: a PCI INTx line (`HVM_PARAM_CALLBACK_TYPE_PCI_INTX`).
pub const HVM_PARAM_CALLBACK_TYPE_PCI_INTX: u64 = 1;
/// Delivery type: an IDT vector (`HVM_PARAM_CALLBACK_TYPE_VECTOR`).
pub const HVM_PARAM_CALLBACK_TYPE_VECTOR: u64 = 2;

/// A decoded `HVM_PARAM_CALLBACK_IRQ` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallbackVia {
    /// Upcalls disabled (value 0).
    None,
    /// Level-triggered GSI `val[55:0]`.
    Gsi(u32),
    /// PCI INTx line: domain `val[47:32]`, bus `val[31:16]`, devfn `val[15:8]`, pin `val[1:0]`.
    PciIntx {
        /// PCI segment.
        domain: u16,
        /// Bus.
        bus: u16,
        /// Device and function.
        devfn: u8,
        /// INTx pin (0 = A).
        pin: u8,
    },
    /// IDT vector `val[7:0]`.
    Vector(u8),
    /// A type this ABI revision does not define (raw value kept).
    Unknown(u64),
}

impl CallbackVia {
    /// The parameter value.
    pub const fn encode(self) -> u64 {
        let shift = HVM_PARAM_CALLBACK_IRQ_TYPE_SHIFT;
        match self {
            CallbackVia::None => 0,
            CallbackVia::Gsi(gsi) => (HVM_PARAM_CALLBACK_TYPE_GSI << shift) | gsi as u64,
            CallbackVia::PciIntx {
                domain,
                bus,
                devfn,
                pin,
            } => {
                (HVM_PARAM_CALLBACK_TYPE_PCI_INTX << shift)
                    | (domain as u64) << 32
                    | (bus as u64) << 16
                    | (devfn as u64) << 8
                    | (pin & 3) as u64
            }
            CallbackVia::Vector(vector) => {
                (HVM_PARAM_CALLBACK_TYPE_VECTOR << shift) | vector as u64
            }
            CallbackVia::Unknown(raw) => raw,
        }
    }

    /// Decodes a parameter value.
    pub const fn decode(value: u64) -> Self {
        if value == 0 {
            return CallbackVia::None;
        }
        let low = value & !HVM_PARAM_CALLBACK_IRQ_TYPE_MASK;
        match value >> HVM_PARAM_CALLBACK_IRQ_TYPE_SHIFT {
            HVM_PARAM_CALLBACK_TYPE_GSI if low <= u32::MAX as u64 => CallbackVia::Gsi(low as u32),
            HVM_PARAM_CALLBACK_TYPE_PCI_INTX => CallbackVia::PciIntx {
                domain: (low >> 32) as u16,
                bus: (low >> 16) as u16,
                devfn: (low >> 8) as u8,
                pin: (low & 3) as u8,
            },
            HVM_PARAM_CALLBACK_TYPE_VECTOR if low <= u8::MAX as u64 => {
                CallbackVia::Vector(low as u8)
            }
            _ => CallbackVia::Unknown(value),
        }
    }
}

open_enum! {
    /// `HVM_PARAM_TIMER_MODE` values (`HVMPTM_*`).
    pub struct HvmTimerMode(u64) {
        /// Delay for missed ticks.
        DELAY_FOR_MISSED_TICKS = 0 => "HVMPTM_delay_for_missed_ticks",
        /// No delay for missed ticks.
        NO_DELAY_FOR_MISSED_TICKS = 1 => "HVMPTM_no_delay_for_missed_ticks",
        /// No missed ticks pending.
        NO_MISSED_TICKS_PENDING = 2 => "HVMPTM_no_missed_ticks_pending",
        /// One missed tick pending.
        ONE_MISSED_TICK_PENDING = 3 => "HVMPTM_one_missed_tick_pending",
    }
}

/// Every constant of `hvm/params.h`, for the C conformance probe.
pub const CONSTANTS: &[&[AbiConstant]] = &[
    HvmParam::C_CONSTANTS,
    HvmTimerMode::C_CONSTANTS,
    abi_constants![
        "HVM_NR_PARAMS" => HVM_NR_PARAMS,
        "HVM_PARAM_CALLBACK_IRQ_TYPE_MASK" => HVM_PARAM_CALLBACK_IRQ_TYPE_MASK,
        "HVM_PARAM_CALLBACK_TYPE_GSI" => HVM_PARAM_CALLBACK_TYPE_GSI,
        "HVM_PARAM_CALLBACK_TYPE_PCI_INTX" => HVM_PARAM_CALLBACK_TYPE_PCI_INTX,
        "HVM_PARAM_CALLBACK_TYPE_VECTOR" => HVM_PARAM_CALLBACK_TYPE_VECTOR,
    ],
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_via_round_trips() {
        for via in [
            CallbackVia::None,
            CallbackVia::Gsi(28),
            CallbackVia::Vector(0xF3),
            CallbackVia::PciIntx {
                domain: 0,
                bus: 0,
                devfn: 3 << 3,
                pin: 0,
            },
        ] {
            assert_eq!(CallbackVia::decode(via.encode()), via);
        }
        assert_eq!(CallbackVia::Gsi(28).encode(), 28);
        assert_eq!(CallbackVia::Vector(0xF3).encode(), 0x0200_0000_0000_00F3);
        assert_eq!(
            CallbackVia::decode(0x0700_0000_0000_0001),
            CallbackVia::Unknown(0x0700_0000_0000_0001)
        );
        assert_eq!(
            CallbackVia::decode(0x0200_0000_0000_0100),
            CallbackVia::Unknown(0x0200_0000_0000_0100)
        );
    }
}
