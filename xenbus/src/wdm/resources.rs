//! What START_DEVICE's resources give the FDO runtime (spec §5.3): the line interrupt's
//! raw vector is the GSI programmed as the callback via; the message interrupts (one per
//! CPU, added at FILTER_RESOURCE_REQUIREMENTS) give the per-CPU upcall vector when they all
//! landed on the same IDT vector; the first memory BAR backs `UseMemoryHole=0`.
#![forbid(unsafe_code)]

use common::wdm::resources::Partial;

use crate::fdo::FdoResources;

/// `PAGE_SHIFT`.
const PAGE_SHIFT: u32 = 12;

/// The runtime's resources from the raw and translated partial descriptors.
pub fn fdo_resources(raw: &[Partial], translated: &[Partial]) -> FdoResources {
    let callback_via = raw
        .iter()
        .find_map(|p| match p {
            Partial::Interrupt(i) if !i.message => Some(u64::from(i.vector)),
            _ => None,
        })
        .unwrap_or(0);
    let mut vectors = translated.iter().filter_map(|p| match p {
        Partial::Interrupt(i) if i.message => Some(i.vector),
        _ => None,
    });
    let upcall_vector = vectors.next().and_then(|first| {
        vectors
            .all(|v| v == first)
            .then(|| u8::try_from(first).ok())
            .flatten()
    });
    let memory_bar = raw.iter().find_map(|p| match p {
        Partial::Memory(start, length) if *length != 0 => {
            Some((start >> PAGE_SHIFT, u64::from(*length) >> PAGE_SHIFT))
        }
        _ => None,
    });
    FdoResources {
        upcall_vector,
        callback_via,
        memory_bar,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::wdm::resources::Interrupt;

    fn interrupt(message: bool, vector: u32, cpu: u32) -> Partial {
        Partial::Interrupt(Interrupt {
            message,
            latched: message,
            shared: !message,
            level: 9,
            group: 0,
            vector,
            affinity: 1 << cpu,
        })
    }

    #[test]
    fn line_gsi_common_message_vector_and_bar() {
        let raw = [
            Partial::Memory(0xF200_0000, 0x0100_0000),
            interrupt(false, 28, 0),
            interrupt(true, 0, 0),
            interrupt(true, 0, 1),
        ];
        let translated = [
            Partial::Memory(0xF200_0000, 0x0100_0000),
            interrupt(false, 0x81, 0),
            interrupt(true, 0x92, 0),
            interrupt(true, 0x92, 1),
        ];
        assert_eq!(
            fdo_resources(&raw, &translated),
            FdoResources {
                upcall_vector: Some(0x92),
                callback_via: 28,
                memory_bar: Some((0xF2000, 0x1000)),
            }
        );
    }

    #[test]
    fn different_vectors_or_none_mean_no_upcall_vector() {
        let raw = [interrupt(false, 28, 0)];
        let split = [interrupt(true, 0x92, 0), interrupt(true, 0x93, 1)];
        let resources = fdo_resources(&raw, &split);
        assert_eq!(resources.upcall_vector, None);
        assert_eq!(resources.callback_via, 28);
        assert_eq!(resources.memory_bar, None);
        assert_eq!(fdo_resources(&[], &[]), FdoResources::default());
        assert_eq!(
            fdo_resources(&[], &[interrupt(true, 0x1FF, 0)]).upcall_vector,
            None
        );
    }
}
