//! A parser for regedit exports: `REGEDIT4` (ANSI) and `Windows Registry Editor Version 5.00`
//! (UTF-16LE with BOM, as regedit and `reg export` write it; UTF-8 is accepted too).
//!
//! Only `HKEY_LOCAL_MACHINE` keys are kept, relative to HKLM. An export of `ControlSet00N`
//! without `CurrentControlSet` is read as `CurrentControlSet` (the set `SYSTEM\Select\Current`
//! names, else the lowest).
use std::fmt;

use crate::registry::{from_raw, MemoryRegistry, RegValue, RegistryView};

/// A parse failure, with its 1-based line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegFileError {
    /// The line the problem is on (0: the whole file).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for RegFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "malformed registry export: {}", self.message)
        } else {
            write!(
                f,
                "malformed registry export, line {}: {}",
                self.line, self.message
            )
        }
    }
}

impl std::error::Error for RegFileError {}

fn error<T>(line: usize, message: impl Into<String>) -> Result<T, RegFileError> {
    Err(RegFileError {
        line,
        message: message.into(),
    })
}

/// The export format, which decides how `hex(2)`/`hex(7)` strings are encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Regedit4,
    Version5,
}

fn decode(bytes: &[u8]) -> Result<String, RegFileError> {
    let text = if let Some(body) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        if body.len() & 1 == 1 {
            return error(0, "UTF-16LE text has an odd number of bytes");
        }
        let units: Vec<u16> = body
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        String::from_utf16(&units).map_err(|_| RegFileError {
            line: 0,
            message: "invalid UTF-16LE text".into(),
        })?
    } else if bytes.starts_with(&[0xFE, 0xFF]) {
        return error(0, "UTF-16BE is not a regedit export encoding");
    } else {
        let body = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(bytes);
        match std::str::from_utf8(body) {
            Ok(s) => s.to_string(),
            // REGEDIT4 files are in the ANSI code page; read them as Latin-1.
            Err(_) => body.iter().map(|&b| b as char).collect(),
        }
    };
    if text.contains('\0') {
        return error(0, "NUL character in text (UTF-16 without BOM?)");
    }
    Ok(text)
}

/// Parses a quoted string starting at `s[0] == '"'`; returns the text and the rest.
fn quoted(s: &str, line: usize) -> Result<(String, &str), RegFileError> {
    let mut out = String::new();
    let mut chars = s.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, e)) => out.push(e),
                None => return error(line, "unterminated escape in string"),
            },
            '"' => return Ok((out, &s[i + 1..])),
            _ => out.push(c),
        }
    }
    error(line, "unterminated quoted string")
}

fn hex_bytes(s: &str, line: usize) -> Result<Vec<u8>, RegFileError> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(Vec::new());
    }
    s.split(',')
        .map(|b| {
            let b = b.trim();
            if b.is_empty() || b.len() > 2 {
                return error(line, format!("bad hex byte {b:?}"));
            }
            u8::from_str_radix(b, 16).or_else(|_| error(line, format!("bad hex byte {b:?}")))
        })
        .collect()
}

/// Parses the data part of a value line (after `=`); `None` means "delete the value".
fn value(data: &str, format: Format, line: usize) -> Result<Option<RegValue>, RegFileError> {
    let data = data.trim();
    if data == "-" {
        return Ok(None);
    }
    if data.starts_with('"') {
        let (s, rest) = quoted(data, line)?;
        if !rest.trim().is_empty() {
            return error(line, format!("text after string value: {:?}", rest.trim()));
        }
        return Ok(Some(RegValue::Sz(s)));
    }
    let lower = data.to_ascii_lowercase();
    if let Some(hex) = lower.strip_prefix("dword:") {
        let hex = hex.trim();
        if hex.is_empty() || hex.len() > 8 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return error(
                line,
                format!("bad dword {hex:?} (1 to 8 hex digits expected)"),
            );
        }
        return u32::from_str_radix(hex, 16)
            .map(|v| Some(RegValue::Dword(v)))
            .or_else(|_| error(line, "bad dword"));
    }
    let (kind, bytes) = if let Some(rest) = lower.strip_prefix("hex:") {
        (3, hex_bytes(rest, line)?)
    } else if let Some(rest) = lower.strip_prefix("hex(") {
        let Some((kind, rest)) = rest.split_once("):") else {
            return error(line, "bad hex(type): value");
        };
        let kind = u32::from_str_radix(kind, 16)
            .or_else(|_| error(line, format!("bad value type {kind:?}")))?;
        (kind, hex_bytes(rest, line)?)
    } else {
        return error(line, format!("unknown value data {data:?}"));
    };
    // REGEDIT4 strings are ANSI bytes; widen them to the UTF-16LE the registry stores.
    let bytes = if format == Format::Regedit4 && matches!(kind, 1 | 2 | 7) {
        bytes.iter().flat_map(|&b| [b, 0]).collect()
    } else {
        bytes
    };
    from_raw(kind, &bytes).map(Some).or_else(|e| error(line, e))
}

/// Splits `[HKEY_LOCAL_MACHINE\path]` into the path relative to HKLM, or `None` for another
/// root hive.
fn hklm_path(key: &str) -> Option<&str> {
    let (root, rest) = key.split_once('\\').unwrap_or((key, ""));
    if root.eq_ignore_ascii_case("HKEY_LOCAL_MACHINE") || root.eq_ignore_ascii_case("HKLM") {
        Some(rest)
    } else {
        None
    }
}

/// Parses a regedit export into an in-memory registry.
pub fn parse(bytes: &[u8]) -> Result<MemoryRegistry, RegFileError> {
    let text = decode(bytes)?;
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    let format =
        loop {
            match lines.next() {
                None => return error(
                    0,
                    "empty file: no REGEDIT4 or \"Windows Registry Editor Version 5.00\" header",
                ),
                Some((_, l)) if l.trim().is_empty() => continue,
                Some((_, l)) if l.trim() == "REGEDIT4" => break Format::Regedit4,
                Some((_, l)) if l.trim() == "Windows Registry Editor Version 5.00" => {
                    break Format::Version5
                }
                Some((n, l)) => {
                    return error(
                        n,
                        format!(
                    "header {:?} is neither REGEDIT4 nor \"Windows Registry Editor Version 5.00\"",
                    l.trim()
                ),
                    )
                }
            }
        };
    let mut registry = MemoryRegistry::default();
    // None: no key yet; Some(None): a key of another hive (values ignored).
    let mut current: Option<Option<String>> = None;
    let mut pending = String::new();
    let mut pending_line = 0;
    for (number, raw) in lines {
        let trimmed_end = raw.trim_end();
        if pending.is_empty() {
            pending_line = number;
            let t = trimmed_end.trim_start();
            if t.is_empty() || t.starts_with(';') {
                continue;
            }
            if t.starts_with('[') {
                let Some(inner) = t.strip_prefix('[').and_then(|t| t.strip_suffix(']')) else {
                    return error(number, format!("malformed key line {t:?}"));
                };
                let (delete, key) = match inner.strip_prefix('-') {
                    Some(k) => (true, k),
                    None => (false, inner),
                };
                if key.trim().is_empty() {
                    return error(number, "empty key name");
                }
                match hklm_path(key) {
                    Some(path) if delete => {
                        registry.delete_tree(path);
                        current = Some(None);
                    }
                    Some(path) => {
                        if !path.is_empty() {
                            registry.create_key(path);
                        }
                        current = Some(Some(path.to_string()));
                    }
                    None => current = Some(None),
                }
                continue;
            }
        }
        // A value line, possibly continued with a trailing backslash (hex data only).
        let piece = trimmed_end.trim_start();
        if let Some(cont) = piece.strip_suffix('\\') {
            let mut joined = pending.clone();
            joined.push_str(cont);
            if joined.to_ascii_lowercase().contains("=hex") {
                pending = joined;
                continue;
            }
        }
        pending.push_str(piece);
        let logical = std::mem::take(&mut pending);
        let Some(key) = &current else {
            return error(pending_line, "value line before the first [key] line");
        };
        let (name, data) = if let Some(rest) = logical.strip_prefix('@') {
            (String::new(), rest.trim_start())
        } else if logical.starts_with('"') {
            let (name, rest) = quoted(&logical, pending_line)?;
            (name, rest.trim_start())
        } else {
            return error(
                pending_line,
                format!("expected a \"name\"=value or @=value line, found {logical:?}"),
            );
        };
        let Some(data) = data.strip_prefix('=') else {
            return error(
                pending_line,
                format!("missing '=' after value name {name:?}"),
            );
        };
        let parsed = value(data, format, pending_line)?;
        if let Some(path) = key {
            match parsed {
                Some(v) => registry.set_value(path, &name, v),
                None => registry.delete_value(path, &name),
            }
        }
    }
    if !pending.is_empty() {
        return error(pending_line, "file ends inside a continued value");
    }
    alias_current_control_set(&mut registry);
    Ok(registry)
}

/// Reads `SYSTEM\ControlSet00N` as `SYSTEM\CurrentControlSet` when the export lacks the
/// latter.
fn alias_current_control_set(registry: &mut MemoryRegistry) {
    if registry.has_key("SYSTEM\\CurrentControlSet") {
        return;
    }
    let Ok(Some(sets)) = registry.subkeys("SYSTEM") else {
        return;
    };
    let mut numbered: Vec<(u32, String)> = sets
        .iter()
        .filter_map(|s| {
            s.get(..10)
                .filter(|p| p.eq_ignore_ascii_case("ControlSet"))?;
            s.get(10..)?.parse::<u32>().ok().map(|n| (n, s.clone()))
        })
        .collect();
    numbered.sort();
    let selected = registry
        .values("SYSTEM\\Select")
        .ok()
        .flatten()
        .and_then(|vals| {
            vals.into_iter().find_map(|(n, v)| match v {
                RegValue::Dword(d) if n.eq_ignore_ascii_case("Current") => Some(d),
                _ => None,
            })
        });
    let chosen = numbered
        .iter()
        .find(|(n, _)| Some(*n) == selected)
        .or_else(|| numbered.first());
    if let Some((_, name)) = chosen.cloned() {
        registry.alias_tree(&format!("SYSTEM\\{name}"), "SYSTEM\\CurrentControlSet");
    }
}

/// Encodes text as UTF-16LE with BOM, the way regedit writes version 5 exports (for tests
/// and tools that produce exports).
pub fn utf16le_with_bom(text: &str) -> Vec<u8> {
    let mut out = vec![0xFF, 0xFE];
    for unit in text.encode_utf16() {
        out.extend_from_slice(&unit.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const V5: &str = "Windows Registry Editor Version 5.00\r\n\r\n\
[HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Services\\XENBUS\\Interfaces\\XENVIF]\r\n\
\"EVTCHN\"=dword:00000009\r\n\
\"STORE\"=dword:2\r\n\
@=\"default\"\r\n\
\r\n\
[HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Enum\\XENBUS\\VEN_XP&DEV_VIF\\_]\r\n\
\"MatchingDeviceId\"=\"xenbus\\\\ven_xp0001&dev_vif&rev_0900000c\"\r\n\
\"HardwareID\"=hex(7):58,00,45,00,4e,00,00,00,41,00,00,00,00,00\r\n\
\"Path\"=hex(2):25,00,53,00,00,00\r\n\
\"Blob\"=hex:01,02,\\\r\n  03\r\n\
\"Q\"=hex(b):01,00,00,00,00,00,00,00\r\n\
\"D4\"=hex(4):0c,00,00,00\r\n\
[HKEY_CURRENT_USER\\Software\\Ignored]\r\n\
\"X\"=dword:00000001\r\n";

    fn get(r: &MemoryRegistry, path: &str, name: &str) -> Option<RegValue> {
        r.values(path)
            .unwrap()?
            .into_iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    #[test]
    fn version5_utf16_export() {
        let r = parse(&utf16le_with_bom(V5)).unwrap();
        let k = "SYSTEM\\CurrentControlSet\\Services\\XENBUS\\Interfaces\\XENVIF";
        assert_eq!(get(&r, k, "EVTCHN"), Some(RegValue::Dword(9)));
        assert_eq!(get(&r, k, "STORE"), Some(RegValue::Dword(2)));
        assert_eq!(get(&r, k, ""), Some(RegValue::Sz("default".into())));
        let c = "SYSTEM\\CurrentControlSet\\Enum\\XENBUS\\VEN_XP&DEV_VIF\\_";
        assert_eq!(
            get(&r, c, "MatchingDeviceId"),
            Some(RegValue::Sz(
                "xenbus\\ven_xp0001&dev_vif&rev_0900000c".into()
            ))
        );
        assert_eq!(
            get(&r, c, "HardwareID"),
            Some(RegValue::MultiSz(vec!["XEN".into(), "A".into()]))
        );
        assert_eq!(get(&r, c, "Path"), Some(RegValue::ExpandSz("%S".into())));
        assert_eq!(get(&r, c, "Blob"), Some(RegValue::Binary(vec![1, 2, 3])));
        assert_eq!(get(&r, c, "Q"), Some(RegValue::Qword(1)));
        assert_eq!(get(&r, c, "D4"), Some(RegValue::Dword(12)));
        assert!(!r.has_key("Software\\Ignored"));
    }

    #[test]
    fn regedit4_and_deletions_and_control_sets() {
        let text = "REGEDIT4\n\n\
[HKEY_LOCAL_MACHINE\\SYSTEM\\Select]\n\"Current\"=dword:00000002\n\
[HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet001\\Services\\XENBUS]\n\"Start\"=dword:00000003\n\
[HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet002\\Services\\XENBUS]\n\"Start\"=dword:00000000\n\"Gone\"=dword:1\n\"Gone\"=-\n\
\"M\"=hex(7):41,00,42,00,00,00\n\
[HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet002\\Services\\Old]\n\
[-HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet002\\Services\\Old]\n";
        let r = parse(text.as_bytes()).unwrap();
        let k = "SYSTEM\\CurrentControlSet\\Services\\XENBUS";
        assert_eq!(get(&r, k, "Start"), Some(RegValue::Dword(0)));
        assert_eq!(get(&r, k, "Gone"), None);
        assert_eq!(
            get(&r, k, "M"),
            Some(RegValue::MultiSz(vec!["A".into(), "B".into()]))
        );
        assert!(!r.has_key("SYSTEM\\CurrentControlSet\\Services\\Old"));
    }

    #[test]
    fn malformed_exports_give_clear_errors() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "empty file"),
            (b"hello\n", "neither REGEDIT4"),
            (b"REGEDIT4\n\"X\"=dword:1\n", "before the first [key]"),
            (b"REGEDIT4\n[HKEY_LOCAL_MACHINE\\A\n", "malformed key line"),
            (
                b"REGEDIT4\n[HKEY_LOCAL_MACHINE\\A]\n\"X\"=dword:123456789\n",
                "bad dword",
            ),
            (
                b"REGEDIT4\n[HKEY_LOCAL_MACHINE\\A]\n\"X\"=dword:zz\n",
                "bad dword",
            ),
            (
                b"REGEDIT4\n[HKEY_LOCAL_MACHINE\\A]\n\"X\"=hex:1g\n",
                "bad hex byte",
            ),
            (
                b"REGEDIT4\n[HKEY_LOCAL_MACHINE\\A]\n\"X\"=hex(4):01,02\n",
                "REG_DWORD data needs 4 bytes",
            ),
            (
                b"REGEDIT4\n[HKEY_LOCAL_MACHINE\\A]\n\"X=dword:1\n",
                "unterminated",
            ),
            (
                b"REGEDIT4\n[HKEY_LOCAL_MACHINE\\A]\n\"X\"dword:1\n",
                "missing '='",
            ),
            (
                b"REGEDIT4\n[HKEY_LOCAL_MACHINE\\A]\nX=dword:1\n",
                "expected a \"name\"=value",
            ),
            (
                b"REGEDIT4\n[HKEY_LOCAL_MACHINE\\A]\n\"X\"=str:1\n",
                "unknown value data",
            ),
            (
                b"REGEDIT4\n[HKEY_LOCAL_MACHINE\\A]\n\"X\"=\"a\" b\n",
                "text after string",
            ),
            (
                b"REGEDIT4\n[HKEY_LOCAL_MACHINE\\A]\n\"X\"=hex:01,\\\n",
                "ends inside",
            ),
            (b"REGEDIT4\n[]\n", "empty key name"),
            (&[0xFF, 0xFE, 0x41], "odd number"),
            (&[0xFE, 0xFF, 0x00, 0x41], "UTF-16BE"),
            (b"R\0E\0G\0", "NUL"),
        ];
        for (bytes, expect) in cases {
            let e = parse(bytes).unwrap_err();
            assert!(
                e.to_string().contains(expect),
                "{:?}: expected {expect:?}, got {e}",
                String::from_utf8_lossy(bytes)
            );
            assert!(e.to_string().starts_with("malformed registry export"));
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A cheap deterministic fuzz: every prefix and single-byte corruption of a valid file.
        let base = V5.as_bytes();
        for cut in 0..base.len() {
            let _ = parse(&base[..cut]);
        }
        let mut seed: u32 = 0x1234_5678;
        for _ in 0..2000 {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let mut copy = base.to_vec();
            let pos = (seed as usize >> 8) % copy.len();
            copy[pos] = (seed >> 24) as u8;
            let _ = parse(&copy);
        }
    }
}
