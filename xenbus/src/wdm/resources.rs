//! What START_DEVICE's resources give the FDO runtime (spec §5.3): the line interrupt's
//! raw vector is the GSI programmed as the callback via; the message interrupts (one per
//! CPU, added at FILTER_RESOURCE_REQUIREMENTS) give the per-CPU upcall vector when they all
//! landed on the same IDT vector; the first memory BAR backs `UseMemoryHole=0`.
#![forbid(unsafe_code)]

use crate::fdo::FdoResources;
use crate::pnp::fdo::BusResources;

/// `PAGE_SHIFT`.
const PAGE_SHIFT: u32 = 12;

/// The runtime's resources from what START gave the bus.
pub fn fdo_resources(bus: &BusResources) -> FdoResources {
    let mut vectors = bus
        .interrupts
        .iter()
        .filter(|i| i.message)
        .map(|i| i.vector);
    let upcall_vector = vectors.next().and_then(|first| {
        vectors
            .all(|v| v == first)
            .then(|| u8::try_from(first).ok())
            .flatten()
    });
    FdoResources {
        upcall_vector,
        callback_via: bus.line_gsi().map_or(0, u64::from),
        memory_bar: bus
            .memory
            .filter(|&(_, length)| length != 0)
            .map(|(start, length)| (start >> PAGE_SHIFT, u64::from(length) >> PAGE_SHIFT)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pnp::fdo::InterruptConnection;

    fn interrupt(message: bool, vector: u32, cpu: u32, line: Option<u32>) -> InterruptConnection {
        InterruptConnection {
            message,
            latched: message,
            shared: !message,
            vector,
            irql: 9,
            group: 0,
            affinity: 1 << cpu,
            line,
        }
    }

    #[test]
    fn line_gsi_common_message_vector_and_bar() {
        let bus = BusResources {
            interrupts: vec![
                interrupt(false, 0x81, 0, Some(28)),
                interrupt(true, 0x92, 0, None),
                interrupt(true, 0x92, 1, None),
            ],
            memory: Some((0xF200_0000, 0x0100_0000)),
        };
        assert_eq!(
            fdo_resources(&bus),
            FdoResources {
                upcall_vector: Some(0x92),
                callback_via: 28,
                memory_bar: Some((0xF2000, 0x1000)),
            }
        );
    }

    #[test]
    fn different_vectors_or_none_mean_no_upcall_vector() {
        let split = BusResources {
            interrupts: vec![
                interrupt(false, 0x81, 0, Some(28)),
                interrupt(true, 0x92, 0, None),
                interrupt(true, 0x93, 1, None),
            ],
            memory: None,
        };
        let resources = fdo_resources(&split);
        assert_eq!(resources.upcall_vector, None);
        assert_eq!(resources.callback_via, 28);
        assert_eq!(resources.memory_bar, None);
        assert_eq!(
            fdo_resources(&BusResources::default()),
            FdoResources::default()
        );
        let wide = BusResources {
            interrupts: vec![interrupt(true, 0x1FF, 0, None)],
            memory: None,
        };
        assert_eq!(fdo_resources(&wide).upcall_vector, None);
    }
}
