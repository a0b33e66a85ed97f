//! A read-only view of `HKEY_LOCAL_MACHINE` and an in-memory registry implementing it.
use std::collections::BTreeMap;

/// A registry value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegValue {
    /// REG_SZ.
    Sz(String),
    /// REG_EXPAND_SZ.
    ExpandSz(String),
    /// REG_MULTI_SZ.
    MultiSz(Vec<String>),
    /// REG_DWORD.
    Dword(u32),
    /// REG_QWORD.
    Qword(u64),
    /// REG_BINARY.
    Binary(Vec<u8>),
    /// Any other type, kept raw.
    Other {
        /// The REG_* type number.
        kind: u32,
        /// The raw data.
        data: Vec<u8>,
    },
}

impl RegValue {
    /// A short type name for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            RegValue::Sz(_) => "REG_SZ",
            RegValue::ExpandSz(_) => "REG_EXPAND_SZ",
            RegValue::MultiSz(_) => "REG_MULTI_SZ",
            RegValue::Dword(_) => "REG_DWORD",
            RegValue::Qword(_) => "REG_QWORD",
            RegValue::Binary(_) => "REG_BINARY",
            RegValue::Other { .. } => "another registry type",
        }
    }
}

/// Decodes raw registry data of type `kind` (REG_SZ = 1, REG_EXPAND_SZ = 2, REG_BINARY = 3,
/// REG_DWORD = 4, REG_MULTI_SZ = 7, REG_QWORD = 11); strings are UTF-16LE.
pub fn from_raw(kind: u32, data: &[u8]) -> Result<RegValue, String> {
    let strings = || -> Result<Vec<String>, String> {
        if data.len() & 1 == 1 {
            return Err("UTF-16 string data has an odd number of bytes".into());
        }
        let units: Vec<u16> = data
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        let text =
            String::from_utf16(&units).map_err(|_| "invalid UTF-16 string data".to_string())?;
        let mut parts: Vec<String> = text.split('\0').map(str::to_string).collect();
        while parts.last().is_some_and(String::is_empty) {
            parts.pop();
        }
        Ok(parts)
    };
    let first = |v: Vec<String>| v.into_iter().next().unwrap_or_default();
    Ok(match kind {
        1 => RegValue::Sz(first(strings()?)),
        2 => RegValue::ExpandSz(first(strings()?)),
        3 => RegValue::Binary(data.to_vec()),
        4 => match <[u8; 4]>::try_from(data) {
            Ok(b) => RegValue::Dword(u32::from_le_bytes(b)),
            Err(_) => return Err("REG_DWORD data needs 4 bytes".into()),
        },
        7 => RegValue::MultiSz(strings()?),
        11 => match <[u8; 8]>::try_from(data) {
            Ok(b) => RegValue::Qword(u64::from_le_bytes(b)),
            Err(_) => return Err("REG_QWORD data needs 8 bytes".into()),
        },
        kind => RegValue::Other {
            kind,
            data: data.to_vec(),
        },
    })
}

/// Read access to the keys below `HKEY_LOCAL_MACHINE`. Paths are relative to HKLM, use `\`
/// and compare case-insensitively. A missing key is `Ok(None)`; `Err` is a read failure.
pub trait RegistryView {
    /// The names of the subkeys of `path`.
    fn subkeys(&self, path: &str) -> Result<Option<Vec<String>>, String>;
    /// The values of `path`; the default value has the empty name.
    fn values(&self, path: &str) -> Result<Option<Vec<(String, RegValue)>>, String>;
}

#[derive(Clone, Debug, Default)]
struct Key {
    path: String,
    values: Vec<(String, RegValue)>,
}

/// An in-memory registry (what a `.reg` export describes), keyed case-insensitively.
#[derive(Clone, Debug, Default)]
pub struct MemoryRegistry {
    keys: BTreeMap<String, Key>,
}

fn normalize(path: &str) -> String {
    path.trim_matches('\\').to_ascii_lowercase()
}

impl MemoryRegistry {
    /// Creates `path` and its parents.
    pub fn create_key(&mut self, path: &str) {
        let trimmed = path.trim_matches('\\');
        let mut end = 0;
        for part in trimmed.split('\\') {
            end += part.len();
            let prefix = &trimmed[..end];
            self.keys.entry(normalize(prefix)).or_insert_with(|| Key {
                path: prefix.to_string(),
                values: Vec::new(),
            });
            end += 1;
        }
    }

    /// Sets (or replaces) a value, creating the key.
    pub fn set_value(&mut self, path: &str, name: &str, value: RegValue) {
        self.create_key(path);
        if let Some(key) = self.keys.get_mut(&normalize(path)) {
            match key
                .values
                .iter_mut()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
            {
                Some(slot) => slot.1 = value,
                None => key.values.push((name.to_string(), value)),
            }
        }
    }

    /// Deletes a value if present.
    pub fn delete_value(&mut self, path: &str, name: &str) {
        if let Some(key) = self.keys.get_mut(&normalize(path)) {
            key.values.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        }
    }

    /// Deletes `path` and every key below it.
    pub fn delete_tree(&mut self, path: &str) {
        let base = normalize(path);
        let prefix = format!("{base}\\");
        self.keys
            .retain(|k, _| *k != base && !k.starts_with(&prefix));
    }

    /// Whether any key starts with `path`.
    pub fn has_key(&self, path: &str) -> bool {
        self.keys.contains_key(&normalize(path))
    }

    /// Renames the subtree `from` to `to` (used to read `ControlSet00N` as
    /// `CurrentControlSet`).
    pub fn alias_tree(&mut self, from: &str, to: &str) {
        let from_n = normalize(from);
        let prefix = format!("{from_n}\\");
        let to_trim = to.trim_matches('\\');
        let moved: Vec<(String, Key)> = self
            .keys
            .iter()
            .filter(|(k, _)| **k == from_n || k.starts_with(&prefix))
            .map(|(_, v)| {
                let tail = v.path.get(from_n.len()..).unwrap_or("");
                let path = format!("{to_trim}{tail}");
                (
                    normalize(&path),
                    Key {
                        path,
                        values: v.values.clone(),
                    },
                )
            })
            .collect();
        self.create_key(to_trim);
        for (k, v) in moved {
            self.keys.insert(k, v);
        }
    }

    /// Number of keys held.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

impl RegistryView for MemoryRegistry {
    fn subkeys(&self, path: &str) -> Result<Option<Vec<String>>, String> {
        let base = normalize(path);
        if !self.keys.contains_key(&base) {
            return Ok(None);
        }
        let prefix = format!("{base}\\");
        let mut names: Vec<String> = Vec::new();
        for (k, v) in self.keys.range(prefix.clone()..) {
            if !k.starts_with(&prefix) {
                break;
            }
            let rest = &k[prefix.len()..];
            if !rest.contains('\\') {
                names.push(v.path.rsplit('\\').next().unwrap_or(rest).to_string());
            }
        }
        Ok(Some(names))
    }

    fn values(&self, path: &str) -> Result<Option<Vec<(String, RegValue)>>, String> {
        Ok(self.keys.get(&normalize(path)).map(|k| k.values.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_values_and_case() {
        let mut r = MemoryRegistry::default();
        r.set_value("SYSTEM\\A\\B", "X", RegValue::Dword(1));
        r.set_value("system\\a\\C", "y", RegValue::Sz("s".into()));
        r.set_value("SYSTEM\\A\\B", "x", RegValue::Dword(2));
        assert_eq!(
            r.subkeys("System\\A").unwrap().unwrap(),
            vec!["B".to_string(), "C".to_string()]
        );
        assert_eq!(
            r.values("SYSTEM\\a\\b").unwrap().unwrap(),
            vec![("X".to_string(), RegValue::Dword(2))]
        );
        assert_eq!(r.subkeys("SYSTEM\\Nope").unwrap(), None);
        r.delete_value("SYSTEM\\A\\B", "X");
        assert!(r.values("SYSTEM\\A\\B").unwrap().unwrap().is_empty());
        r.delete_tree("SYSTEM\\A");
        assert!(!r.has_key("SYSTEM\\A\\C"));
        assert!(r.has_key("SYSTEM"));
    }

    #[test]
    fn alias_control_set() {
        let mut r = MemoryRegistry::default();
        r.set_value(
            "SYSTEM\\ControlSet001\\Services\\XENBUS",
            "Start",
            RegValue::Dword(0),
        );
        r.alias_tree("SYSTEM\\ControlSet001", "SYSTEM\\CurrentControlSet");
        assert_eq!(
            r.values("SYSTEM\\CurrentControlSet\\Services\\xenbus")
                .unwrap()
                .unwrap(),
            vec![("Start".to_string(), RegValue::Dword(0))]
        );
        assert_eq!(
            r.subkeys("SYSTEM\\CurrentControlSet\\Services")
                .unwrap()
                .unwrap(),
            vec!["XENBUS".to_string()]
        );
    }
}
