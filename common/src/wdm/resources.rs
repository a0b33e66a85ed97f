//! Resource lists of a PCI function as the PnP manager hands them over (x64 layouts):
//! the `IO_RESOURCE_REQUIREMENTS_LIST` a bus FDO edits in
//! `IRP_MN_FILTER_RESOURCE_REQUIREMENTS` (one message interrupt per processor appended, the
//! line interrupt pinned to CPU 0) and the raw/translated `CM_RESOURCE_LIST`s of
//! `IRP_MN_START_DEVICE` (decoded, and the extra message interrupts hidden from PCI.sys as
//! `CmResourceTypeDevicePrivate`). Byte-level and host-tested; the `IO_RESOURCE_*` offsets
//! are checked against `windows-sys`, the `CM_*` ones are wdm.h's `#pragma pack(4)` layout
//! (both with the processor-group fields of `NT_PROCESSOR_GROUPS`).
#![forbid(unsafe_code)]

use alloc::vec::Vec;

/// `CmResourceTypeInterrupt`.
pub const TYPE_INTERRUPT: u8 = 2;
/// `CmResourceTypeMemory`.
pub const TYPE_MEMORY: u8 = 3;
/// `CmResourceTypeDevicePrivate`.
pub const TYPE_DEVICE_PRIVATE: u8 = 0x81;
/// `CM_RESOURCE_INTERRUPT_LATCHED`.
pub const INTERRUPT_LATCHED: u16 = 1;
/// `CM_RESOURCE_INTERRUPT_MESSAGE`.
pub const INTERRUPT_MESSAGE: u16 = 2;
/// `CM_RESOURCE_INTERRUPT_POLICY_INCLUDED`.
pub const INTERRUPT_POLICY_INCLUDED: u16 = 4;
/// `CM_RESOURCE_INTERRUPT_MESSAGE_TOKEN`.
pub const INTERRUPT_MESSAGE_TOKEN: u32 = 0xFFFF_FFFE;
/// `CmResourceShareDeviceExclusive`.
pub const SHARE_DEVICE_EXCLUSIVE: u8 = 1;
/// `CmResourceShareShared`.
pub const SHARE_SHARED: u8 = 3;
/// `IrqPolicySpecifiedProcessors`.
pub const POLICY_SPECIFIED_PROCESSORS: u16 = 4;

/// `IO_RESOURCE_REQUIREMENTS_LIST.AlternativeLists`.
const REQ_ALTERNATIVES: usize = 28;
/// `IO_RESOURCE_REQUIREMENTS_LIST.List[0].Count`.
const REQ_COUNT: usize = 32 + 4;
/// `IO_RESOURCE_REQUIREMENTS_LIST.List[0].Descriptors`.
const REQ_DESCRIPTORS: usize = 32 + 8;
/// `sizeof(IO_RESOURCE_DESCRIPTOR)`.
const IO_DESCRIPTOR: usize = 32;

/// `CM_RESOURCE_LIST.List[0].PartialResourceList.Count`.
const CM_COUNT: usize = 4 + 8 + 4;
/// `CM_RESOURCE_LIST.List[0].PartialResourceList.PartialDescriptors`.
const CM_DESCRIPTORS: usize = 4 + 8 + 8;
/// `sizeof(CM_PARTIAL_RESOURCE_DESCRIPTOR)` (`#pragma pack(4)`).
const CM_DESCRIPTOR: usize = 20;

/// Why a resource list was not usable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResourceError {
    /// Shorter than its header or its counts say.
    Truncated,
    /// Not exactly one alternative list / full descriptor (upstream asserts one).
    Alternatives(u32),
}

fn u16_at(data: &[u8], offset: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        data.get(offset..offset + 2)?.try_into().ok()?,
    ))
}

fn u32_at(data: &[u8], offset: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        data.get(offset..offset + 4)?.try_into().ok()?,
    ))
}

fn u64_at(data: &[u8], offset: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        data.get(offset..offset + 8)?.try_into().ok()?,
    ))
}

fn put(data: &mut [u8], offset: usize, bytes: &[u8]) -> Option<()> {
    data.get_mut(offset..offset + bytes.len())?
        .copy_from_slice(bytes);
    Some(())
}

/// One processor: (group, number within the group).
pub type Processor = (u16, u8);

/// `IRP_MN_FILTER_RESOURCE_REQUIREMENTS` (spec §5.3): a copy of `old` (its `ListSize`
/// bytes) where every interrupt descriptor targets group 0 / CPU 0 with
/// `IrqPolicySpecifiedProcessors`, followed by one required, device-exclusive, latched
/// message interrupt per processor in `processors`, each targeting exactly that processor.
pub fn filter_requirements(old: &[u8], processors: &[Processor]) -> Result<Vec<u8>, ResourceError> {
    let size = u32_at(old, 0).ok_or(ResourceError::Truncated)? as usize;
    let alternatives = u32_at(old, REQ_ALTERNATIVES).ok_or(ResourceError::Truncated)?;
    if alternatives != 1 {
        return Err(ResourceError::Alternatives(alternatives));
    }
    let count = u32_at(old, REQ_COUNT).ok_or(ResourceError::Truncated)? as usize;
    let used = REQ_DESCRIPTORS + count * IO_DESCRIPTOR;
    if size < used || old.len() < size {
        return Err(ResourceError::Truncated);
    }
    let mut new = Vec::with_capacity(used + processors.len() * IO_DESCRIPTOR);
    new.extend_from_slice(old.get(..used).ok_or(ResourceError::Truncated)?);
    for index in 0..count {
        let at = REQ_DESCRIPTORS + index * IO_DESCRIPTOR;
        if new.get(at + 1) != Some(&TYPE_INTERRUPT) {
            continue;
        }
        let flags = u16_at(&new, at + 4).ok_or(ResourceError::Truncated)?;
        put(
            &mut new,
            at + 4,
            &(flags | INTERRUPT_POLICY_INCLUDED).to_le_bytes(),
        );
        put(
            &mut new,
            at + 16,
            &POLICY_SPECIFIED_PROCESSORS.to_le_bytes(),
        );
        put(&mut new, at + 18, &0u16.to_le_bytes());
        put(&mut new, at + 24, &1u64.to_le_bytes());
    }
    for &(group, number) in processors {
        let mut descriptor = [0u8; IO_DESCRIPTOR];
        descriptor[1] = TYPE_INTERRUPT;
        descriptor[2] = SHARE_DEVICE_EXCLUSIVE;
        let flags = INTERRUPT_LATCHED | INTERRUPT_MESSAGE | INTERRUPT_POLICY_INCLUDED;
        descriptor[4..6].copy_from_slice(&flags.to_le_bytes());
        descriptor[8..12].copy_from_slice(&INTERRUPT_MESSAGE_TOKEN.to_le_bytes());
        descriptor[12..16].copy_from_slice(&INTERRUPT_MESSAGE_TOKEN.to_le_bytes());
        descriptor[16..18].copy_from_slice(&POLICY_SPECIFIED_PROCESSORS.to_le_bytes());
        descriptor[18..20].copy_from_slice(&group.to_le_bytes());
        // PriorityPolicy = IrqPriorityUndefined (0).
        let affinity = 1u64.checked_shl(u32::from(number)).unwrap_or(0);
        descriptor[24..32].copy_from_slice(&affinity.to_le_bytes());
        new.extend_from_slice(&descriptor);
    }
    let total = u32::try_from(new.len()).map_err(|_| ResourceError::Truncated)?;
    let new_count =
        u32::try_from(count + processors.len()).map_err(|_| ResourceError::Truncated)?;
    put(&mut new, 0, &total.to_le_bytes());
    put(&mut new, REQ_COUNT, &new_count.to_le_bytes());
    Ok(new)
}

/// An interrupt of a `CM_RESOURCE_LIST` (line or message; translated values when read from
/// the translated list).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interrupt {
    /// `CM_RESOURCE_INTERRUPT_MESSAGE`.
    pub message: bool,
    /// `CM_RESOURCE_INTERRUPT_LATCHED` (else level-sensitive).
    pub latched: bool,
    /// `CmResourceShareShared`.
    pub shared: bool,
    /// IRQL (translated) — zero in a raw message descriptor.
    pub level: u16,
    /// Processor group.
    pub group: u16,
    /// Vector (raw: the GSI of a line interrupt).
    pub vector: u32,
    /// Processors the interrupt targets.
    pub affinity: u64,
}

impl Interrupt {
    /// The processor (number within its group) the interrupt targets: the highest set bit
    /// of the affinity, as upstream; `None` for an empty mask.
    pub fn processor(&self) -> Option<u8> {
        63u32
            .checked_sub(self.affinity.leading_zeros())
            .and_then(|bit| u8::try_from(bit).ok())
    }
}

/// One partial descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Partial {
    /// `CmResourceTypeInterrupt`.
    Interrupt(Interrupt),
    /// `CmResourceTypeMemory`: (physical start, length in bytes).
    Memory(u64, u32),
    /// Any other type.
    Other(u8),
}

fn partial_count(list: &[u8]) -> Result<usize, ResourceError> {
    let full = u32_at(list, 0).ok_or(ResourceError::Truncated)?;
    if full != 1 {
        return Err(ResourceError::Alternatives(full));
    }
    let count = u32_at(list, CM_COUNT).ok_or(ResourceError::Truncated)? as usize;
    if list.len() < CM_DESCRIPTORS + count * CM_DESCRIPTOR {
        return Err(ResourceError::Truncated);
    }
    Ok(count)
}

/// The byte length of a `CM_RESOURCE_LIST` with one full descriptor of `count` partials.
pub const fn resource_list_size(count: usize) -> usize {
    CM_DESCRIPTORS + count * CM_DESCRIPTOR
}

/// Offset of the partial-descriptor count, to size a list before copying it.
pub const RESOURCE_LIST_COUNT_OFFSET: usize = CM_COUNT;

/// The partial descriptors of a `CM_RESOURCE_LIST` (exactly one full descriptor).
pub fn partials(list: &[u8]) -> Result<Vec<Partial>, ResourceError> {
    let count = partial_count(list)?;
    let mut out = Vec::with_capacity(count);
    for index in 0..count {
        let at = CM_DESCRIPTORS + index * CM_DESCRIPTOR;
        let kind = *list.get(at).ok_or(ResourceError::Truncated)?;
        let partial = match kind {
            TYPE_INTERRUPT => {
                let flags = u16_at(list, at + 2).ok_or(ResourceError::Truncated)?;
                Partial::Interrupt(Interrupt {
                    message: flags & INTERRUPT_MESSAGE != 0,
                    latched: flags & INTERRUPT_LATCHED != 0,
                    shared: list.get(at + 1) == Some(&SHARE_SHARED),
                    level: u16_at(list, at + 4).ok_or(ResourceError::Truncated)?,
                    group: u16_at(list, at + 6).ok_or(ResourceError::Truncated)?,
                    vector: u32_at(list, at + 8).ok_or(ResourceError::Truncated)?,
                    affinity: u64_at(list, at + 12).ok_or(ResourceError::Truncated)?,
                })
            }
            TYPE_MEMORY => Partial::Memory(
                u64_at(list, at + 4).ok_or(ResourceError::Truncated)?,
                u32_at(list, at + 12).ok_or(ResourceError::Truncated)?,
            ),
            other => Partial::Other(other),
        };
        out.push(partial);
    }
    Ok(out)
}

/// START_DEVICE before forwarding: turn every message interrupt of `list` into
/// `CmResourceTypeDevicePrivate` so PCI.sys ignores the ones this driver added; returns how
/// many were hidden.
pub fn hide_message_interrupts(list: &mut [u8]) -> Result<usize, ResourceError> {
    let count = partial_count(list)?;
    let mut hidden = 0;
    for index in 0..count {
        let at = CM_DESCRIPTORS + index * CM_DESCRIPTOR;
        let flags = u16_at(list, at + 2).ok_or(ResourceError::Truncated)?;
        let kind = list.get_mut(at).ok_or(ResourceError::Truncated)?;
        if *kind == TYPE_INTERRUPT && flags & INTERRUPT_MESSAGE != 0 {
            *kind = TYPE_DEVICE_PRIVATE;
            hidden += 1;
        }
    }
    Ok(hidden)
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{offset_of, size_of};
    use windows_sys::Wdk::System::SystemServices::{
        IO_RESOURCE_DESCRIPTOR, IO_RESOURCE_LIST, IO_RESOURCE_REQUIREMENTS_LIST,
    };

    #[test]
    fn offsets_match_the_x64_layouts() {
        assert_eq!(
            offset_of!(IO_RESOURCE_REQUIREMENTS_LIST, AlternativeLists),
            REQ_ALTERNATIVES
        );
        assert_eq!(
            offset_of!(IO_RESOURCE_REQUIREMENTS_LIST, List) + offset_of!(IO_RESOURCE_LIST, Count),
            REQ_COUNT
        );
        assert_eq!(
            offset_of!(IO_RESOURCE_REQUIREMENTS_LIST, List)
                + offset_of!(IO_RESOURCE_LIST, Descriptors),
            REQ_DESCRIPTORS
        );
        assert_eq!(size_of::<IO_RESOURCE_DESCRIPTOR>(), IO_DESCRIPTOR);
        assert_eq!(offset_of!(IO_RESOURCE_DESCRIPTOR, u), 8);
        // The CM_* structures are `#pragma pack(4)` in wdm.h (a partial descriptor is 0x14
        // bytes on x64); the windows-sys metadata lays them out naturally aligned, so the
        // offsets above them are the packed ones, spelled out: Count(4), InterfaceType(4),
        // BusNumber(4), Version(2), Revision(2), Count(4), then 20-byte descriptors.
        assert_eq!((CM_COUNT, CM_DESCRIPTORS, CM_DESCRIPTOR), (16, 20, 20));
    }

    /// A requirements list as PCI.sys reports the platform device: a memory BAR, an I/O
    /// port BAR and a line interrupt.
    fn requirements() -> Vec<u8> {
        let mut list = vec![0u8; REQ_DESCRIPTORS + 3 * IO_DESCRIPTOR];
        let len = list.len() as u32;
        list[0..4].copy_from_slice(&len.to_le_bytes());
        list[4..8].copy_from_slice(&5u32.to_le_bytes()); // PCIBus
        list[REQ_ALTERNATIVES..REQ_ALTERNATIVES + 4].copy_from_slice(&1u32.to_le_bytes());
        list[32..34].copy_from_slice(&1u16.to_le_bytes());
        list[REQ_COUNT..REQ_COUNT + 4].copy_from_slice(&3u32.to_le_bytes());
        for (index, kind) in [3u8, 1, 2].into_iter().enumerate() {
            let at = REQ_DESCRIPTORS + index * IO_DESCRIPTOR;
            list[at + 1] = kind;
            list[at + 2] = 3;
            list[at + 8] = 0x1C; // a vector / start byte to prove it is kept
        }
        list
    }

    #[test]
    fn requirements_gain_one_message_interrupt_per_processor() {
        let old = requirements();
        let new = filter_requirements(&old, &[(0, 0), (0, 1), (1, 3)]).unwrap();
        assert_eq!(new.len(), old.len() + 3 * IO_DESCRIPTOR);
        assert_eq!(u32_at(&new, 0), Some(new.len() as u32));
        assert_eq!(u32_at(&new, REQ_COUNT), Some(6));
        // The memory and port descriptors are untouched.
        assert_eq!(
            new[REQ_DESCRIPTORS..REQ_DESCRIPTORS + 2 * IO_DESCRIPTOR],
            old[REQ_DESCRIPTORS..REQ_DESCRIPTORS + 2 * IO_DESCRIPTOR]
        );
        // The line interrupt is pinned to group 0 / CPU 0.
        let line = REQ_DESCRIPTORS + 2 * IO_DESCRIPTOR;
        assert_eq!(u16_at(&new, line + 4), Some(INTERRUPT_POLICY_INCLUDED));
        assert_eq!(u16_at(&new, line + 16), Some(POLICY_SPECIFIED_PROCESSORS));
        assert_eq!(u16_at(&new, line + 18), Some(0));
        assert_eq!(u64_at(&new, line + 24), Some(1));
        assert_eq!(new[line + 8], 0x1C);
        for (index, (group, number)) in [(0u16, 0u8), (0, 1), (1, 3)].into_iter().enumerate() {
            let at = REQ_DESCRIPTORS + (3 + index) * IO_DESCRIPTOR;
            assert_eq!(new[at], 0, "required");
            assert_eq!(new[at + 1], TYPE_INTERRUPT);
            assert_eq!(new[at + 2], SHARE_DEVICE_EXCLUSIVE);
            assert_eq!(u16_at(&new, at + 4), Some(7));
            assert_eq!(u32_at(&new, at + 8), Some(INTERRUPT_MESSAGE_TOKEN));
            assert_eq!(u32_at(&new, at + 12), Some(INTERRUPT_MESSAGE_TOKEN));
            assert_eq!(u16_at(&new, at + 16), Some(POLICY_SPECIFIED_PROCESSORS));
            assert_eq!(u16_at(&new, at + 18), Some(group));
            assert_eq!(u32_at(&new, at + 20), Some(0));
            assert_eq!(u64_at(&new, at + 24), Some(1 << number));
        }
    }

    #[test]
    fn bad_requirements_are_refused() {
        let old = requirements();
        assert_eq!(
            filter_requirements(&old[..20], &[(0, 0)]),
            Err(ResourceError::Truncated)
        );
        let mut two = old.clone();
        two[REQ_ALTERNATIVES] = 2;
        assert_eq!(
            filter_requirements(&two, &[]),
            Err(ResourceError::Alternatives(2))
        );
        let mut lying = old.clone();
        lying[REQ_COUNT] = 200;
        assert_eq!(
            filter_requirements(&lying, &[]),
            Err(ResourceError::Truncated)
        );
    }

    /// A START_DEVICE list: memory BAR, line interrupt (GSI 28), two message interrupts.
    fn resources(translated: bool) -> Vec<u8> {
        let mut list = vec![0u8; resource_list_size(4)];
        list[0..4].copy_from_slice(&1u32.to_le_bytes());
        list[CM_COUNT..CM_COUNT + 4].copy_from_slice(&4u32.to_le_bytes());
        let mut at = CM_DESCRIPTORS;
        list[at] = TYPE_MEMORY;
        list[at + 4..at + 12].copy_from_slice(&0xF200_0000u64.to_le_bytes());
        list[at + 12..at + 16].copy_from_slice(&0x0100_0000u32.to_le_bytes());
        at += CM_DESCRIPTOR;
        list[at] = TYPE_INTERRUPT;
        list[at + 1] = SHARE_SHARED;
        list[at + 8..at + 12]
            .copy_from_slice(&(if translated { 0x81u32 } else { 28 }).to_le_bytes());
        list[at + 12..at + 20].copy_from_slice(&1u64.to_le_bytes());
        for cpu in 0..2u64 {
            at += CM_DESCRIPTOR;
            list[at] = TYPE_INTERRUPT;
            list[at + 1] = SHARE_DEVICE_EXCLUSIVE;
            list[at + 2..at + 4]
                .copy_from_slice(&(INTERRUPT_MESSAGE | INTERRUPT_LATCHED).to_le_bytes());
            list[at + 4..at + 6]
                .copy_from_slice(&(if translated { 9u16 } else { 0 }).to_le_bytes());
            list[at + 8..at + 12].copy_from_slice(&0x92u32.to_le_bytes());
            list[at + 12..at + 20].copy_from_slice(&(1u64 << cpu).to_le_bytes());
        }
        list
    }

    #[test]
    fn start_resources_decode_and_message_interrupts_hide() {
        let mut list = resources(true);
        let decoded = partials(&list).unwrap();
        assert_eq!(decoded[0], Partial::Memory(0xF200_0000, 0x0100_0000));
        let Partial::Interrupt(line) = decoded[1] else {
            panic!("{decoded:?}")
        };
        assert!(!line.message && line.shared && !line.latched);
        assert_eq!((line.vector, line.processor()), (0x81, Some(0)));
        let Partial::Interrupt(second) = decoded[3] else {
            panic!("{decoded:?}")
        };
        assert!(second.message && second.latched);
        assert_eq!(
            (second.level, second.vector, second.processor()),
            (9, 0x92, Some(1))
        );
        assert_eq!(hide_message_interrupts(&mut list), Ok(2));
        let after = partials(&list).unwrap();
        assert_eq!(after[1], decoded[1]);
        assert_eq!(after[2], Partial::Other(TYPE_DEVICE_PRIVATE));
        assert_eq!(after[3], Partial::Other(TYPE_DEVICE_PRIVATE));
        assert_eq!(hide_message_interrupts(&mut list), Ok(0));
        let raw = resources(false);
        let Partial::Interrupt(gsi) = partials(&raw).unwrap()[1] else {
            panic!()
        };
        assert_eq!(gsi.vector, 28);
        assert_eq!(partials(&raw[..30]), Err(ResourceError::Truncated));
        let mut lying = raw.clone();
        lying[CM_COUNT] = 9;
        assert_eq!(partials(&lying), Err(ResourceError::Truncated));
        assert_eq!(
            Interrupt {
                affinity: 0,
                ..line
            }
            .processor(),
            None
        );
    }
}
