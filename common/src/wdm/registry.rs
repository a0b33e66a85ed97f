//! The byte formats of the registry routines (`Zw*Key`): UTF-16 names and paths, value
//! data by type, and the `KEY_VALUE_PARTIAL_INFORMATION` / `KEY_BASIC_INFORMATION` replies.
//! Pure code: the kernel calls are in [`super::os`]; everything here is tested on the host.
#![forbid(unsafe_code)]

use alloc::string::String;
use alloc::vec::Vec;

use xen_include::status::{NtStatus, STATUS_INVALID_PARAMETER};

use crate::os::RegValue;

/// `REG_SZ`.
pub const REG_SZ: u32 = 1;
/// `REG_EXPAND_SZ`.
pub const REG_EXPAND_SZ: u32 = 2;
/// `REG_BINARY`.
pub const REG_BINARY: u32 = 3;
/// `REG_DWORD`.
pub const REG_DWORD: u32 = 4;
/// `REG_MULTI_SZ`.
pub const REG_MULTI_SZ: u32 = 7;
/// `REG_QWORD`.
pub const REG_QWORD: u32 = 11;
/// `STATUS_OBJECT_TYPE_MISMATCH`: a value of a type the drivers do not read.
pub const STATUS_OBJECT_TYPE_MISMATCH: NtStatus = 0xC000_0024_u32 as i32;
/// Root of `HKEY_LOCAL_MACHINE` in the kernel's object namespace.
pub const MACHINE_ROOT: &str = "\\Registry\\Machine\\";
/// Longest name or path handed to the kernel, in UTF-16 units (a `UNICODE_STRING` holds
/// at most 32767).
pub const MAX_NAME_UNITS: usize = 32_767;

/// `s` as UTF-16 without terminator; `STATUS_INVALID_PARAMETER` when too long for a
/// `UNICODE_STRING`.
pub fn utf16(s: &str) -> Result<Vec<u16>, NtStatus> {
    let units: Vec<u16> = s.encode_utf16().collect();
    if units.len() > MAX_NAME_UNITS {
        return Err(STATUS_INVALID_PARAMETER);
    }
    Ok(units)
}

/// The object name of a key: `path` below `HKLM` when there is no parent key, else `path`
/// relative to the parent.
pub fn key_object_name(relative_to_parent: bool, path: &str) -> Result<Vec<u16>, NtStatus> {
    if relative_to_parent {
        utf16(path)
    } else {
        let mut full = String::from(MACHINE_ROOT);
        full.push_str(path.trim_start_matches('\\'));
        utf16(&full)
    }
}

/// UTF-16 text as a Rust string, unpaired surrogates shown as `?` (the "ANSI view").
pub fn from_utf16(units: &[u16]) -> String {
    char::decode_utf16(units.iter().copied())
        .map(|c| c.unwrap_or('?'))
        .collect()
}

fn units_of(bytes: &[u8]) -> Vec<u16> {
    bytes
        .chunks_exact(2)
        .filter_map(|c| c.try_into().ok().map(u16::from_le_bytes))
        .collect()
}

fn push_utf16z(out: &mut Vec<u8>, s: &str) {
    for unit in s.encode_utf16() {
        out.extend_from_slice(&unit.to_le_bytes());
    }
    out.extend_from_slice(&[0, 0]);
}

/// The registry type and data bytes of `value`.
pub fn encode(value: &RegValue) -> (u32, Vec<u8>) {
    match value {
        RegValue::Dword(v) => (REG_DWORD, v.to_le_bytes().to_vec()),
        RegValue::Qword(v) => (REG_QWORD, v.to_le_bytes().to_vec()),
        RegValue::Sz(s) => {
            let mut out = Vec::new();
            push_utf16z(&mut out, s);
            (REG_SZ, out)
        }
        RegValue::MultiSz(list) => {
            let mut out = Vec::new();
            for s in list {
                push_utf16z(&mut out, s);
            }
            out.extend_from_slice(&[0, 0]);
            (REG_MULTI_SZ, out)
        }
        RegValue::Binary(bytes) => (REG_BINARY, bytes.clone()),
    }
}

/// A value read from the registry. Strings stop at their first NUL (data written by
/// others need not be terminated); a DWORD or QWORD of the wrong size is refused.
pub fn decode(kind: u32, data: &[u8]) -> Result<RegValue, NtStatus> {
    match kind {
        REG_DWORD => data
            .try_into()
            .map(|b: [u8; 4]| RegValue::Dword(u32::from_le_bytes(b)))
            .map_err(|_| STATUS_OBJECT_TYPE_MISMATCH),
        REG_QWORD => data
            .try_into()
            .map(|b: [u8; 8]| RegValue::Qword(u64::from_le_bytes(b)))
            .map_err(|_| STATUS_OBJECT_TYPE_MISMATCH),
        REG_SZ | REG_EXPAND_SZ => {
            let units = units_of(data);
            let end = units.iter().position(|&u| u == 0).unwrap_or(units.len());
            Ok(RegValue::Sz(from_utf16(units.get(..end).unwrap_or(&[]))))
        }
        REG_MULTI_SZ => {
            let units = units_of(data);
            let mut list = Vec::new();
            for piece in units.split(|&u| u == 0) {
                if piece.is_empty() {
                    break;
                }
                list.push(from_utf16(piece));
            }
            Ok(RegValue::MultiSz(list))
        }
        REG_BINARY => Ok(RegValue::Binary(data.to_vec())),
        _ => Err(STATUS_OBJECT_TYPE_MISMATCH),
    }
}

/// Header size of `KEY_VALUE_PARTIAL_INFORMATION` (TitleIndex, Type, DataLength).
pub const PARTIAL_INFORMATION_HEADER: usize = 12;
/// Header size of `KEY_BASIC_INFORMATION` (LastWriteTime, TitleIndex, NameLength).
pub const BASIC_INFORMATION_HEADER: usize = 16;

fn u32_at(buffer: &[u8], offset: usize) -> Option<u32> {
    let bytes = buffer.get(offset..offset.checked_add(4)?)?;
    Some(u32::from_le_bytes(bytes.try_into().ok()?))
}

/// Type and data of a `KEY_VALUE_PARTIAL_INFORMATION` reply of `length` valid bytes.
pub fn parse_partial_information(buffer: &[u8], length: usize) -> Result<(u32, &[u8]), NtStatus> {
    let buffer = buffer.get(..length).ok_or(STATUS_INVALID_PARAMETER)?;
    let kind = u32_at(buffer, 4).ok_or(STATUS_INVALID_PARAMETER)?;
    let data_length = u32_at(buffer, 8).ok_or(STATUS_INVALID_PARAMETER)? as usize;
    let data = PARTIAL_INFORMATION_HEADER
        .checked_add(data_length)
        .and_then(|end| buffer.get(PARTIAL_INFORMATION_HEADER..end))
        .ok_or(STATUS_INVALID_PARAMETER)?;
    Ok((kind, data))
}

/// The key name of a `KEY_BASIC_INFORMATION` reply of `length` valid bytes.
pub fn parse_basic_information(buffer: &[u8], length: usize) -> Result<String, NtStatus> {
    let buffer = buffer.get(..length).ok_or(STATUS_INVALID_PARAMETER)?;
    let name_length = u32_at(buffer, 12).ok_or(STATUS_INVALID_PARAMETER)? as usize;
    let name = BASIC_INFORMATION_HEADER
        .checked_add(name_length)
        .and_then(|end| buffer.get(BASIC_INFORMATION_HEADER..end))
        .ok_or(STATUS_INVALID_PARAMETER)?;
    Ok(from_utf16(&units_of(name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip() {
        let values = [
            RegValue::Dword(0xDEAD_BEEF),
            RegValue::Qword(0x0123_4567_89AB_CDEF),
            RegValue::Sz("Xen Project ü".into()),
            RegValue::MultiSz(vec!["CRITICAL".into(), "ERROR".into()]),
            RegValue::MultiSz(vec![]),
            RegValue::Binary(vec![0, 1, 2, 255]),
        ];
        for value in values {
            let (kind, data) = encode(&value);
            assert_eq!(decode(kind, &data), Ok(value));
        }
    }

    #[test]
    fn encodings_match_the_registry() {
        assert_eq!(
            encode(&RegValue::Sz("ab".into())),
            (REG_SZ, vec![b'a', 0, b'b', 0, 0, 0])
        );
        assert_eq!(
            encode(&RegValue::MultiSz(vec!["a".into(), "b".into()])),
            (REG_MULTI_SZ, vec![b'a', 0, 0, 0, b'b', 0, 0, 0, 0, 0])
        );
        assert_eq!(encode(&RegValue::Dword(1)), (REG_DWORD, vec![1, 0, 0, 0]));
    }

    #[test]
    fn foreign_data_is_validated() {
        assert_eq!(
            decode(REG_DWORD, &[1, 2, 3]),
            Err(STATUS_OBJECT_TYPE_MISMATCH)
        );
        assert_eq!(decode(REG_QWORD, &[0; 4]), Err(STATUS_OBJECT_TYPE_MISMATCH));
        assert_eq!(decode(5, &[0; 4]), Err(STATUS_OBJECT_TYPE_MISMATCH));
        // Unterminated string, odd length, unpaired surrogate.
        assert_eq!(
            decode(REG_SZ, &[b'x', 0, b'y']),
            Ok(RegValue::Sz("x".into()))
        );
        assert_eq!(
            decode(REG_EXPAND_SZ, &[0x00, 0xD8, b'z', 0]),
            Ok(RegValue::Sz("?z".into()))
        );
        assert_eq!(
            decode(REG_SZ, &[b'a', 0, 0, 0, b'b', 0]),
            Ok(RegValue::Sz("a".into()))
        );
        // A MULTI_SZ without the final empty string still yields its strings.
        assert_eq!(
            decode(REG_MULTI_SZ, &[b'a', 0, 0, 0, b'b', 0]),
            Ok(RegValue::MultiSz(vec!["a".into(), "b".into()]))
        );
    }

    #[test]
    fn object_names() {
        assert_eq!(
            from_utf16(
                &key_object_name(false, "SYSTEM\\CurrentControlSet\\Services\\XEN").expect("name")
            ),
            "\\Registry\\Machine\\SYSTEM\\CurrentControlSet\\Services\\XEN"
        );
        assert_eq!(
            from_utf16(&key_object_name(true, "Parameters").expect("name")),
            "Parameters"
        );
        assert_eq!(
            utf16(&"x".repeat(MAX_NAME_UNITS + 1)),
            Err(STATUS_INVALID_PARAMETER)
        );
    }

    #[test]
    fn replies_are_bounds_checked() {
        let mut reply = vec![0u8; 12];
        reply[4..8].copy_from_slice(&REG_DWORD.to_le_bytes());
        reply[8..12].copy_from_slice(&4u32.to_le_bytes());
        reply.extend_from_slice(&7u32.to_le_bytes());
        assert_eq!(
            parse_partial_information(&reply, reply.len()),
            Ok((REG_DWORD, &[7u8, 0, 0, 0][..]))
        );
        // DataLength beyond the reply, length beyond the buffer, truncated header.
        reply[8..12].copy_from_slice(&400u32.to_le_bytes());
        assert_eq!(
            parse_partial_information(&reply, reply.len()),
            Err(STATUS_INVALID_PARAMETER)
        );
        assert_eq!(
            parse_partial_information(&reply, 100),
            Err(STATUS_INVALID_PARAMETER)
        );
        assert_eq!(
            parse_partial_information(&reply, 6),
            Err(STATUS_INVALID_PARAMETER)
        );

        let mut basic = vec![0u8; 16];
        basic[12..16].copy_from_slice(&6u32.to_le_bytes());
        basic.extend_from_slice(&[b'X', 0, b'E', 0, b'N', 0]);
        assert_eq!(
            parse_basic_information(&basic, basic.len()),
            Ok("XEN".to_string())
        );
        basic[12..16].copy_from_slice(&60u32.to_le_bytes());
        assert_eq!(
            parse_basic_information(&basic, basic.len()),
            Err(STATUS_INVALID_PARAMETER)
        );
    }
}
