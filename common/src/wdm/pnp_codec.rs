//! The byte layouts behind [`crate::pnp`]'s typed requests and answers (x64): resource
//! lists (`CM_RESOURCE_LIST`, wdm.h's `#pragma pack(4)`), requirements lists
//! (`IO_RESOURCE_REQUIREMENTS_LIST`), `DEVICE_CAPABILITIES` and `PNP_BUS_INFORMATION` —
//! decoded from what the PnP manager or a lower driver hands over and encoded into what
//! goes back in `IoStatus.Information` or the caller's structure. Host-tested.
#![forbid(unsafe_code)]

use alloc::vec::Vec;

use crate::pnp::{
    resource_type, Assigned, AssignedInterrupt, AssignedResource, BusInformation,
    DeviceCapabilities, DevicePower, IrqPolicy, Requirement, RequirementDescriptor, ResourceList,
    ResourceRequirements, Share, SystemPower,
};

/// Why a list could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodecError {
    /// Shorter than its header or counts say.
    Truncated,
    /// More than one full descriptor in a resource list.
    FullDescriptors(u32),
}

fn u16_at(data: &[u8], at: usize) -> Result<u16, CodecError> {
    Ok(u16::from_le_bytes(
        data.get(at..at + 2)
            .ok_or(CodecError::Truncated)?
            .try_into()
            .map_err(|_| CodecError::Truncated)?,
    ))
}

fn u32_at(data: &[u8], at: usize) -> Result<u32, CodecError> {
    Ok(u32::from_le_bytes(
        data.get(at..at + 4)
            .ok_or(CodecError::Truncated)?
            .try_into()
            .map_err(|_| CodecError::Truncated)?,
    ))
}

fn u64_at(data: &[u8], at: usize) -> Result<u64, CodecError> {
    Ok(u64::from_le_bytes(
        data.get(at..at + 8)
            .ok_or(CodecError::Truncated)?
            .try_into()
            .map_err(|_| CodecError::Truncated)?,
    ))
}

/// `CM_RESOURCE_LIST.List[0].PartialResourceList.Count`.
const CM_COUNT: usize = 16;
/// First partial descriptor.
const CM_DESCRIPTORS: usize = 20;
/// `sizeof(CM_PARTIAL_RESOURCE_DESCRIPTOR)`.
const CM_DESCRIPTOR: usize = 20;
/// `Version`/`Revision` of the partial list written by [`encode_resource_list`].
const CM_VERSION: u16 = 1;

/// The byte length of a one-descriptor `CM_RESOURCE_LIST` of `count` partials.
pub const fn resource_list_size(count: usize) -> usize {
    CM_DESCRIPTORS + count * CM_DESCRIPTOR
}

/// Decode a `CM_RESOURCE_LIST` with one full descriptor (none at all = empty). Message
/// interrupts of a raw list carry `MessageCount` instead of level and group.
pub fn decode_resource_list(data: &[u8], translated: bool) -> Result<ResourceList, CodecError> {
    let full = u32_at(data, 0)?;
    if full == 0 {
        return Ok(Vec::new());
    }
    if full != 1 {
        return Err(CodecError::FullDescriptors(full));
    }
    let count = u32_at(data, CM_COUNT)? as usize;
    if data.len() < resource_list_size(count) {
        return Err(CodecError::Truncated);
    }
    let mut list = Vec::with_capacity(count);
    for index in 0..count {
        let at = CM_DESCRIPTORS + index * CM_DESCRIPTOR;
        let kind = *data.get(at).ok_or(CodecError::Truncated)?;
        let share = Share::from_raw(*data.get(at + 1).ok_or(CodecError::Truncated)?);
        let flags = u16_at(data, at + 2)?;
        let words = [
            u32_at(data, at + 4)?,
            u32_at(data, at + 8)?,
            u32_at(data, at + 12)?,
        ];
        let resource = match kind {
            resource_type::PORT | resource_type::MEMORY => {
                let start = u64_at(data, at + 4)?;
                let length = u32_at(data, at + 12)?;
                if kind == resource_type::PORT {
                    AssignedResource::Port { start, length }
                } else {
                    AssignedResource::Memory { start, length }
                }
            }
            resource_type::INTERRUPT => {
                let message = flags & crate::pnp::flags::INTERRUPT_MESSAGE != 0;
                let (first, second) = (u16_at(data, at + 4)?, u16_at(data, at + 6)?);
                let raw_message = message && !translated;
                AssignedResource::Interrupt(AssignedInterrupt {
                    flags,
                    vector: u32_at(data, at + 8)?,
                    level: if raw_message { 0 } else { u32::from(first) },
                    group: if raw_message { 0 } else { second },
                    affinity: u64_at(data, at + 12)?,
                    message_count: if raw_message { second } else { 0 },
                })
            }
            resource_type::DEVICE_PRIVATE => AssignedResource::DevicePrivate(words),
            other => AssignedResource::Other {
                kind: other,
                data: words,
            },
        };
        list.push(Assigned {
            share,
            resource,
            flags,
        });
    }
    Ok(list)
}

/// Encode `list` as a one-descriptor `CM_RESOURCE_LIST` on `interface_type`/`bus`.
pub fn encode_resource_list(list: &[Assigned], interface_type: u32, bus: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(resource_list_size(list.len()));
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&interface_type.to_le_bytes());
    out.extend_from_slice(&bus.to_le_bytes());
    out.extend_from_slice(&CM_VERSION.to_le_bytes());
    out.extend_from_slice(&CM_VERSION.to_le_bytes());
    out.extend_from_slice(&(list.len() as u32).to_le_bytes());
    for assigned in list {
        let mut d = [0u8; CM_DESCRIPTOR];
        d[1] = assigned.share.raw();
        d[2..4].copy_from_slice(&assigned.flags.to_le_bytes());
        match assigned.resource {
            AssignedResource::Port { start, length }
            | AssignedResource::Memory { start, length } => {
                d[0] = if matches!(assigned.resource, AssignedResource::Port { .. }) {
                    resource_type::PORT
                } else {
                    resource_type::MEMORY
                };
                d[4..12].copy_from_slice(&start.to_le_bytes());
                d[12..16].copy_from_slice(&length.to_le_bytes());
            }
            AssignedResource::Interrupt(i) => {
                d[0] = resource_type::INTERRUPT;
                if i.is_message() && i.message_count != 0 {
                    d[6..8].copy_from_slice(&i.message_count.to_le_bytes());
                } else {
                    d[4..6].copy_from_slice(&(i.level as u16).to_le_bytes());
                    d[6..8].copy_from_slice(&i.group.to_le_bytes());
                }
                d[8..12].copy_from_slice(&i.vector.to_le_bytes());
                d[12..20].copy_from_slice(&i.affinity.to_le_bytes());
            }
            AssignedResource::DevicePrivate(words)
            | AssignedResource::Other { data: words, .. } => {
                d[0] = match assigned.resource {
                    AssignedResource::Other { kind, .. } => kind,
                    _ => resource_type::DEVICE_PRIVATE,
                };
                for (slot, word) in d[4..16].chunks_exact_mut(4).zip(words) {
                    slot.copy_from_slice(&word.to_le_bytes());
                }
            }
        }
        out.extend_from_slice(&d);
    }
    out
}

/// `IO_RESOURCE_REQUIREMENTS_LIST` header size (up to `List`).
const REQ_HEADER: usize = 32;
/// `IO_RESOURCE_LIST` header (Version, Revision, Count).
const REQ_LIST_HEADER: usize = 8;
/// `sizeof(IO_RESOURCE_DESCRIPTOR)`.
const IO_DESCRIPTOR: usize = 32;

/// Decode an `IO_RESOURCE_REQUIREMENTS_LIST`.
pub fn decode_requirements(data: &[u8]) -> Result<ResourceRequirements, CodecError> {
    let size = u32_at(data, 0)? as usize;
    if data.len() < size {
        return Err(CodecError::Truncated);
    }
    let data = data.get(..size).ok_or(CodecError::Truncated)?;
    let mut requirements = ResourceRequirements {
        interface_type: u32_at(data, 4)?,
        bus_number: u32_at(data, 8)?,
        slot_number: u32_at(data, 12)?,
        alternatives: Vec::new(),
    };
    let mut at = REQ_HEADER;
    for _ in 0..u32_at(data, 28)? {
        let count = u32_at(data, at + 4)? as usize;
        at += REQ_LIST_HEADER;
        let mut list = Vec::with_capacity(count.min(64));
        for _ in 0..count {
            list.push(decode_requirement(data, at)?);
            at += IO_DESCRIPTOR;
        }
        requirements.alternatives.push(list);
    }
    Ok(requirements)
}

fn decode_requirement(data: &[u8], at: usize) -> Result<RequirementDescriptor, CodecError> {
    let kind = *data.get(at + 1).ok_or(CodecError::Truncated)?;
    let requirement = match kind {
        resource_type::PORT | resource_type::MEMORY => {
            let (length, alignment) = (u32_at(data, at + 8)?, u32_at(data, at + 12)?);
            let (minimum, maximum) = (u64_at(data, at + 16)?, u64_at(data, at + 24)?);
            if kind == resource_type::PORT {
                Requirement::Port {
                    length,
                    alignment,
                    minimum,
                    maximum,
                }
            } else {
                Requirement::Memory {
                    length,
                    alignment,
                    minimum,
                    maximum,
                }
            }
        }
        resource_type::INTERRUPT => Requirement::Interrupt {
            flags: u16_at(data, at + 4)?,
            minimum_vector: u32_at(data, at + 8)?,
            maximum_vector: u32_at(data, at + 12)?,
            policy: IrqPolicy::from_raw(u32::from(u16_at(data, at + 16)?)),
            group: u16_at(data, at + 18)?,
            targeted: u64_at(data, at + 24)?,
        },
        resource_type::DEVICE_PRIVATE => Requirement::DevicePrivate([
            u32_at(data, at + 8)?,
            u32_at(data, at + 12)?,
            u32_at(data, at + 16)?,
        ]),
        other => {
            let mut words = [0u32; 6];
            for (index, word) in words.iter_mut().enumerate() {
                *word = u32_at(data, at + 8 + 4 * index)?;
            }
            Requirement::Other {
                kind: other,
                data: words,
            }
        }
    };
    Ok(RequirementDescriptor {
        option: *data.get(at).ok_or(CodecError::Truncated)?,
        share: Share::from_raw(*data.get(at + 2).ok_or(CodecError::Truncated)?),
        flags: u16_at(data, at + 4)?,
        requirement,
    })
}

/// Encode an `IO_RESOURCE_REQUIREMENTS_LIST` (its `ListSize` is the returned length).
pub fn encode_requirements(requirements: &ResourceRequirements) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&requirements.interface_type.to_le_bytes());
    out.extend_from_slice(&requirements.bus_number.to_le_bytes());
    out.extend_from_slice(&requirements.slot_number.to_le_bytes());
    out.extend_from_slice(&[0u8; 12]);
    out.extend_from_slice(&(requirements.alternatives.len() as u32).to_le_bytes());
    for list in &requirements.alternatives {
        out.extend_from_slice(&1u16.to_le_bytes());
        out.extend_from_slice(&1u16.to_le_bytes());
        out.extend_from_slice(&(list.len() as u32).to_le_bytes());
        for descriptor in list {
            let mut d = [0u8; IO_DESCRIPTOR];
            d[0] = descriptor.option;
            d[2] = descriptor.share.raw();
            d[4..6].copy_from_slice(&descriptor.flags.to_le_bytes());
            match descriptor.requirement {
                Requirement::Port {
                    length,
                    alignment,
                    minimum,
                    maximum,
                }
                | Requirement::Memory {
                    length,
                    alignment,
                    minimum,
                    maximum,
                } => {
                    d[1] = if matches!(descriptor.requirement, Requirement::Port { .. }) {
                        resource_type::PORT
                    } else {
                        resource_type::MEMORY
                    };
                    d[8..12].copy_from_slice(&length.to_le_bytes());
                    d[12..16].copy_from_slice(&alignment.to_le_bytes());
                    d[16..24].copy_from_slice(&minimum.to_le_bytes());
                    d[24..32].copy_from_slice(&maximum.to_le_bytes());
                }
                Requirement::Interrupt {
                    flags,
                    minimum_vector,
                    maximum_vector,
                    policy,
                    targeted,
                    group,
                } => {
                    d[1] = resource_type::INTERRUPT;
                    d[4..6].copy_from_slice(&flags.to_le_bytes());
                    d[8..12].copy_from_slice(&minimum_vector.to_le_bytes());
                    d[12..16].copy_from_slice(&maximum_vector.to_le_bytes());
                    d[16..18].copy_from_slice(&(policy.raw() as u16).to_le_bytes());
                    d[18..20].copy_from_slice(&group.to_le_bytes());
                    d[24..32].copy_from_slice(&targeted.to_le_bytes());
                }
                Requirement::DevicePrivate(words) => {
                    d[1] = resource_type::DEVICE_PRIVATE;
                    for (slot, word) in d[8..20].chunks_exact_mut(4).zip(words) {
                        slot.copy_from_slice(&word.to_le_bytes());
                    }
                }
                Requirement::Other { kind, data } => {
                    d[1] = kind;
                    for (slot, word) in d[8..32].chunks_exact_mut(4).zip(data) {
                        slot.copy_from_slice(&word.to_le_bytes());
                    }
                }
            }
            out.extend_from_slice(&d);
        }
    }
    let size = out.len() as u32;
    if let Some(head) = out.get_mut(0..4) {
        head.copy_from_slice(&size.to_le_bytes());
    }
    out
}

/// `sizeof(DEVICE_CAPABILITIES)`.
pub const CAPABILITIES_SIZE: usize = 64;

/// The bit-field order of `DEVICE_CAPABILITIES` (bit 0 first).
fn capability_bits(c: &DeviceCapabilities) -> [bool; 10] {
    [
        c.device_d1,
        c.device_d2,
        c.lock_supported,
        c.eject_supported,
        c.removable,
        c.dock_device,
        c.unique_id,
        c.silent_install,
        c.raw_device_ok,
        c.surprise_removal_ok,
    ]
}

/// Decode a `DEVICE_CAPABILITIES` (bits beyond SurpriseRemovalOK are not modelled).
pub fn decode_capabilities(data: &[u8]) -> Result<DeviceCapabilities, CodecError> {
    let bits = u32_at(data, 4)?;
    let bit = |n: u32| bits & (1 << n) != 0;
    let mut device_state = [DevicePower::Unspecified; 7];
    for (index, state) in device_state.iter_mut().enumerate() {
        *state = DevicePower::from_raw(u32_at(data, 16 + 4 * index)?)
            .unwrap_or(DevicePower::Unspecified);
    }
    Ok(DeviceCapabilities {
        size: u16_at(data, 0)?,
        version: u16_at(data, 2)?,
        device_d1: bit(0),
        device_d2: bit(1),
        lock_supported: bit(2),
        eject_supported: bit(3),
        removable: bit(4),
        dock_device: bit(5),
        unique_id: bit(6),
        silent_install: bit(7),
        raw_device_ok: bit(8),
        surprise_removal_ok: bit(9),
        address: u32_at(data, 8)?,
        ui_number: u32_at(data, 12)?,
        device_state,
        system_wake: SystemPower::from_raw(u32_at(data, 44)?).unwrap_or(SystemPower::Unspecified),
        device_wake: DevicePower::from_raw(u32_at(data, 48)?).unwrap_or(DevicePower::Unspecified),
        latencies: [u32_at(data, 52)?, u32_at(data, 56)?, u32_at(data, 60)?],
    })
}

/// Write `capabilities` over the caller's `DEVICE_CAPABILITIES` in `data`, keeping the bits
/// this model does not know (WakeFromD0…, HardwareDisabled, NonDynamic, …).
pub fn encode_capabilities(
    capabilities: &DeviceCapabilities,
    data: &mut [u8],
) -> Result<(), CodecError> {
    if data.len() < CAPABILITIES_SIZE {
        return Err(CodecError::Truncated);
    }
    let mut bits = u32_at(data, 4)? & !0x3FF;
    for (index, set) in capability_bits(capabilities).into_iter().enumerate() {
        if set {
            bits |= 1 << index;
        }
    }
    let mut words: Vec<u32> = Vec::with_capacity(15);
    words.push(bits);
    words.push(capabilities.address);
    words.push(capabilities.ui_number);
    words.extend(capabilities.device_state.iter().map(|s| s.raw()));
    words.push(capabilities.system_wake.raw());
    words.push(capabilities.device_wake.raw());
    words.extend(capabilities.latencies);
    let body = data
        .get_mut(4..CAPABILITIES_SIZE)
        .ok_or(CodecError::Truncated)?;
    for (slot, word) in body.chunks_exact_mut(4).zip(words) {
        slot.copy_from_slice(&word.to_le_bytes());
    }
    Ok(())
}

/// Encode a `PNP_BUS_INFORMATION`.
pub fn encode_bus_information(information: &BusInformation) -> [u8; 24] {
    let mut out = [0u8; 24];
    out[..16].copy_from_slice(&information.bus_type.to_le_bytes());
    out[16..20].copy_from_slice(&information.legacy_bus_type.to_le_bytes());
    out[20..24].copy_from_slice(&information.bus_number.to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pnp::flags;
    use core::mem::{offset_of, size_of};
    use windows_sys::Wdk::System::SystemServices::DEVICE_CAPABILITIES;

    fn interrupt(message: bool, vector: u32, level: u32, count: u16) -> Assigned {
        let f = if message {
            flags::INTERRUPT_MESSAGE | flags::INTERRUPT_LATCHED
        } else {
            flags::INTERRUPT_LEVEL_SENSITIVE
        };
        Assigned {
            share: if message {
                Share::DeviceExclusive
            } else {
                Share::Shared
            },
            resource: AssignedResource::Interrupt(AssignedInterrupt {
                flags: f,
                vector,
                level,
                group: 0,
                affinity: 2,
                message_count: count,
            }),
            flags: f,
        }
    }

    #[test]
    fn resource_lists_round_trip() {
        let translated = vec![
            Assigned {
                share: Share::DeviceExclusive,
                resource: AssignedResource::Memory {
                    start: 0xF200_0000,
                    length: 0x0100_0000,
                },
                flags: flags::MEMORY_PREFETCHABLE,
            },
            Assigned {
                share: Share::DeviceExclusive,
                resource: AssignedResource::Port {
                    start: 0xC000,
                    length: 0x100,
                },
                flags: 0,
            },
            interrupt(false, 0x81, 9, 0),
            interrupt(true, 0x92, 9, 0),
            Assigned {
                share: Share::Undetermined,
                resource: AssignedResource::DevicePrivate([1, 2, 3]),
                flags: 0,
            },
        ];
        let bytes = encode_resource_list(&translated, 5, 0);
        assert_eq!(bytes.len(), resource_list_size(5));
        assert_eq!(decode_resource_list(&bytes, true).unwrap(), translated);
        // A raw message interrupt carries MessageCount where the translated one has level
        // and group.
        let raw = vec![interrupt(true, 0, 0, 1)];
        let bytes = encode_resource_list(&raw, 5, 0);
        assert_eq!(u16_at(&bytes, CM_DESCRIPTORS + 6), Ok(1));
        assert_eq!(decode_resource_list(&bytes, false).unwrap(), raw);
        assert_eq!(
            decode_resource_list(&bytes[..30], false),
            Err(CodecError::Truncated)
        );
        assert_eq!(decode_resource_list(&[0; 4], false), Ok(Vec::new()));
        let mut two = bytes.clone();
        two[0] = 2;
        assert_eq!(
            decode_resource_list(&two, false),
            Err(CodecError::FullDescriptors(2))
        );
    }

    #[test]
    fn requirements_round_trip() {
        let requirements = ResourceRequirements {
            interface_type: 5,
            bus_number: 0,
            slot_number: 3,
            alternatives: vec![vec![
                RequirementDescriptor {
                    option: 0,
                    share: Share::DeviceExclusive,
                    flags: 0,
                    requirement: Requirement::Memory {
                        length: 0x0100_0000,
                        alignment: 0x1000,
                        minimum: 0,
                        maximum: u64::MAX,
                    },
                },
                RequirementDescriptor {
                    option: 0,
                    share: Share::DeviceExclusive,
                    flags: 7,
                    requirement: Requirement::Interrupt {
                        flags: 7,
                        minimum_vector: crate::pnp::INTERRUPT_MESSAGE_TOKEN,
                        maximum_vector: crate::pnp::INTERRUPT_MESSAGE_TOKEN,
                        policy: IrqPolicy::SpecifiedProcessors,
                        targeted: 1 << 3,
                        group: 1,
                    },
                },
            ]],
        };
        let bytes = encode_requirements(&requirements);
        assert_eq!(
            bytes.len(),
            REQ_HEADER + REQ_LIST_HEADER + 2 * IO_DESCRIPTOR
        );
        assert_eq!(u32_at(&bytes, 0), Ok(bytes.len() as u32));
        assert_eq!(decode_requirements(&bytes).unwrap(), requirements);
        assert_eq!(
            decode_requirements(&bytes[..40]),
            Err(CodecError::Truncated)
        );
    }

    #[test]
    fn capabilities_round_trip_and_keep_unknown_bits() {
        assert_eq!(size_of::<DEVICE_CAPABILITIES>(), CAPABILITIES_SIZE);
        assert_eq!(offset_of!(DEVICE_CAPABILITIES, DeviceState), 16);
        assert_eq!(offset_of!(DEVICE_CAPABILITIES, SystemWake), 44);
        let mut caps = DeviceCapabilities::blank();
        caps.removable = true;
        caps.surprise_removal_ok = true;
        caps.unique_id = true;
        caps.address = 7;
        caps.device_state[1] = DevicePower::D0;
        caps.device_state[5] = DevicePower::D3;
        caps.system_wake = SystemPower::Sleeping3;
        caps.latencies = [1, 2, 3];
        let mut data = [0u8; CAPABILITIES_SIZE];
        data[4..8].copy_from_slice(&(1u32 << 20).to_le_bytes()); // HardwareDisabled-range bit
        encode_capabilities(&caps, &mut data).unwrap();
        assert_eq!(
            u32_at(&data, 4),
            Ok((1 << 20) | (1 << 4) | (1 << 6) | (1 << 9))
        );
        data[0..4].copy_from_slice(&[64, 0, 1, 0]);
        assert_eq!(decode_capabilities(&data).unwrap(), caps);
        assert_eq!(
            encode_capabilities(&caps, &mut [0u8; 10]),
            Err(CodecError::Truncated)
        );
    }

    #[test]
    fn bus_information_layout() {
        let info = BusInformation {
            bus_type: crate::pnp::GUID_BUS_TYPE_INTERNAL,
            legacy_bus_type: 0,
            bus_number: 2,
        };
        let bytes = encode_bus_information(&info);
        assert_eq!(&bytes[..4], &0x1530EA73u32.to_le_bytes());
        assert_eq!(&bytes[20..], &2u32.to_le_bytes());
    }
}
