//! Pure encodings of the WDM edges: UTF-16 ID strings and MULTI_SZ lists as the PnP
//! manager hands them out, the UTF-16 answers a driver gives back, and the rewrite of a
//! `DEVICE_RELATIONS` list to the PDOs a filter reports. Host-tested.
#![forbid(unsafe_code)]

use alloc::string::String;
use alloc::vec::Vec;

/// A NUL-terminated UTF-16 string (`BusQueryDeviceID`, `BusQueryInstanceID`, device
/// text): the units before the first NUL, unpaired surrogates shown as `?`.
pub fn parse_sz(units: &[u16]) -> String {
    let end = units.iter().position(|&u| u == 0).unwrap_or(units.len());
    char::decode_utf16(units.iter().copied().take(end))
        .map(|c| c.unwrap_or('?'))
        .collect()
}

/// A UTF-16 MULTI_SZ list (`BusQueryHardwareIDs`, `BusQueryCompatibleIDs`): strings
/// separated by NULs, ended by an empty string (or the end of the buffer).
pub fn parse_multi_sz(units: &[u16]) -> Vec<String> {
    let mut list = Vec::new();
    for piece in units.split(|&u| u == 0) {
        if piece.is_empty() {
            break;
        }
        list.push(parse_sz(piece));
    }
    list
}

/// `text` as UTF-16 with its terminating NUL (the buffer handed back in
/// `IoStatus.Information` for an ID or device-text query).
pub fn utf16z(text: &str) -> Vec<u16> {
    text.encode_utf16().chain(core::iter::once(0)).collect()
}

/// The outcome of rewriting a `DEVICE_RELATIONS` list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rewrite {
    /// The objects to leave in the list, in the bus's order.
    pub keep: Vec<usize>,
    /// The objects taken out of the list (their reference must be dropped).
    pub drop: Vec<usize>,
}

/// Rewrite the relations `current` (as the bus returned them, each holding a reference) so
/// that exactly the members of `report` remain. An object in `report` that the bus did not
/// return is ignored: the filter holds no reference it could pass up for it.
pub fn rewrite_relations(current: &[usize], report: &[usize]) -> Rewrite {
    let mut rewrite = Rewrite::default();
    for &object in current {
        if report.contains(&object) && !rewrite.keep.contains(&object) {
            rewrite.keep.push(object);
        } else {
            rewrite.drop.push(object);
        }
    }
    rewrite
}

#[cfg(test)]
mod tests {
    use super::*;

    fn units(s: &str) -> Vec<u16> {
        s.encode_utf16().collect()
    }

    #[test]
    fn multi_sz_lists() {
        let list = parse_multi_sz(&units("PCI\\VEN_8086&DEV_7010\0PCI\\CC_0101\0\0garbage\0"));
        assert_eq!(list, ["PCI\\VEN_8086&DEV_7010", "PCI\\CC_0101"]);
        // Unterminated final string and an empty list.
        assert_eq!(parse_multi_sz(&units("*PNP0A03")), ["*PNP0A03"]);
        assert!(parse_multi_sz(&units("\0\0")).is_empty());
        assert!(parse_multi_sz(&[]).is_empty());
    }

    #[test]
    fn sz_stops_at_nul_and_shows_bad_surrogates() {
        assert_eq!(parse_sz(&units("3&267a616a&0&18\0tail")), "3&267a616a&0&18");
        assert_eq!(parse_sz(&[0x41, 0xD800, 0x42]), "A?B");
    }

    #[test]
    fn answers_are_nul_terminated_utf16() {
        assert_eq!(utf16z("0.1.0"), [0x30, 0x2E, 0x31, 0x2E, 0x30, 0]);
        assert_eq!(parse_sz(&utf16z("Bus 0, slot 3")), "Bus 0, slot 3");
        assert_eq!(utf16z(""), [0]);
    }

    #[test]
    fn relations_keep_reported_drop_the_rest() {
        let rewrite = rewrite_relations(&[10, 20, 30, 40], &[30, 10]);
        assert_eq!(rewrite.keep, [10, 30]);
        assert_eq!(rewrite.drop, [20, 40]);
        // Hiding every child (filter ENABLED).
        let hidden = rewrite_relations(&[10, 20], &[]);
        assert!(hidden.keep.is_empty());
        assert_eq!(hidden.drop, [10, 20]);
        // A reported object the bus did not return is not invented; duplicates from the
        // bus keep one entry and drop the other reference.
        let odd = rewrite_relations(&[10, 10], &[10, 99]);
        assert_eq!(odd.keep, [10]);
        assert_eq!(odd.drop, [10]);
    }
}
